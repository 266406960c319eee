//! Pure parts of `lab up`: names, limits, known_hosts and inventory text.

use anyhow::{Result, bail};
use std::path::Path;

/// What a JVM-per-service node wants; capped at the host's hard limits because a container
/// cannot raise them ("setrlimit ...: Operation not permitted").
const WANT_NOFILE: u64 = 65536;
const WANT_NPROC: u64 = 16384;

/// Prefix for every container and the network of one lab: readable (inventory stem) and unique
/// (random suffix), and a valid container name whatever the file is called.
pub fn prefix(inventory_stem: &str, random: u64) -> String {
    let mut stem: String = inventory_stem
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    // Collapse and trim dashes, keep names short enough to read in `podman ps`.
    while stem.contains("--") {
        stem = stem.replace("--", "-");
    }
    let stem: String = stem.trim_matches('-').chars().take(20).collect();
    let stem = stem.trim_end_matches('-');
    let suffix = format!("{:06x}", random & 0xff_ffff);
    if stem.is_empty() {
        format!("clusterctl-{suffix}")
    } else {
        format!("clusterctl-{stem}-{suffix}")
    }
}

/// Inventory host name of node `k` (1-based); also its container hostname and DNS alias.
pub fn host_name(k: usize) -> String {
    format!("n{k}")
}

pub fn container_name(prefix: &str, k: usize) -> String {
    format!("{prefix}-{}", host_name(k))
}

pub fn network_name(prefix: &str) -> String {
    format!("{prefix}-net")
}

/// `--ulimit` flags at or below the hard limits (`None` = unlimited).
pub fn ulimit_flags(hard_nofile: Option<u64>, hard_nproc: Option<u64>) -> Vec<String> {
    let cap = |hard: Option<u64>, want: u64| hard.map_or(want, |h| h.min(want));
    let nofile = cap(hard_nofile, WANT_NOFILE);
    let nproc = cap(hard_nproc, WANT_NPROC);
    vec![
        "--ulimit".into(),
        format!("nofile={nofile}:{nofile}"),
        "--ulimit".into(),
        format!("nproc={nproc}:{nproc}"),
    ]
}

/// One known_hosts line from a host's `ssh_host_ed25519_key.pub` (comment dropped, since it
/// names the container's hostname at key generation, not the address we connect to).
pub fn known_hosts_line(address: &str, host_pub_key: &str) -> Result<String> {
    let mut fields = host_pub_key.split_whitespace();
    match (fields.next(), fields.next()) {
        (Some(kind @ "ssh-ed25519"), Some(key)) => Ok(format!("{address} {kind} {key}")),
        _ => bail!("not an ed25519 public key: {:?}", host_pub_key.trim()),
    }
}

/// One lab node as the inventory names it.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub name: String,
    pub address: String,
}

/// What `lab up` lays out on its nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Every node runs Kafka; the first three (or all, if fewer) run ZooKeeper.
    ZooKeeper,
    /// Every node runs Kafka; the first three (or all) are combined KRaft controllers.
    Kraft,
    /// The first node runs PostgreSQL; the others run the nisshi broker.
    Nisshi,
}

/// The inventory `lab up` writes for `kind`, with small heaps so several JVMs fit one machine.
pub fn inventory(key: &Path, known_hosts: &Path, nodes: &[Node], kind: Kind) -> String {
    let names: Vec<&str> = nodes.iter().map(|n| n.name.as_str()).collect();
    let zk = &names[..names.len().min(3)];
    let mut s = String::new();
    s.push_str(INVENTORY_HEADER);
    s.push('\n');
    s.push_str("ssh:\n  user: root\n");
    s.push_str(&format!("  key: {}\n", scalar(&key.to_string_lossy())));
    s.push_str(&format!(
        "  known_hosts: {}\n",
        scalar(&known_hosts.to_string_lossy())
    ));
    s.push_str("hosts:\n");
    for n in nodes {
        s.push_str(&format!(
            "  {}:\n    address: {}\n",
            scalar(&n.name),
            scalar(&n.address)
        ));
    }
    s.push_str("groups:\n");
    match kind {
        Kind::Nisshi => {
            s.push_str(&format!("  storage: [{}]\n", names[0]));
            s.push_str(&format!("  kafka: [{}]\n", names[1..].join(", ")));
            // The broker is built once with cargo and cached (scripts/nisshi.sh).
            s.push_str(&format!(
                "flavor: nisshi\nnisshi:\n  version: {}\n",
                crate::inventory::DEFAULT_NISSHI_VERSION
            ));
        }
        Kind::ZooKeeper | Kind::Kraft => {
            let quorum = if kind == Kind::Kraft {
                "controller"
            } else {
                "zookeeper"
            };
            s.push_str(&format!("  {quorum}: [{}]\n", zk.join(", ")));
            s.push_str(&format!("  kafka: [{}]\n", names.join(", ")));
            if kind == Kind::ZooKeeper {
                s.push_str("zookeeper:\n  heap: 128m\n");
            }
            s.push_str("kafka:\n  heap: 256m\n");
        }
    }
    s
}

/// The users `lab up --secure` declares: clusterctl's, the brokers', and one application's.
pub const SECURE_USERS: [&str; 3] = ["admin", "broker", "app"];

/// `lab up --secure`: SASL_SSL on every listener, a CA kept in the lab's directory, passwords
/// in files there (mode 0600). In ZooKeeper mode no controller listener, and ZooKeeper over TLS.
pub fn secure_section(dir: &Path, secrets: &Path, kind: Kind) -> String {
    let file = |u: &str| scalar(&secrets.join(format!("{u}.password")).to_string_lossy());
    let (controller, zookeeper) = match kind {
        Kind::Kraft => ("    controller: { protocol: SASL_SSL }\n", ""),
        _ => ("", "  zookeeper_tls: true\n"),
    };
    let mut s = format!(
        "security:\n  listeners:\n    client: {{ protocol: SASL_SSL }}\n    \
         inter_broker: {{ protocol: SASL_SSL, port: 9094 }}\n{controller}  \
         tls: {{ ca: managed, dir: {} }}\n  sasl_mechanism: SCRAM-SHA-512\n  \
         admin_user: admin\n  inter_broker_user: broker\n{zookeeper}users:\n",
        scalar(&dir.join("pki").to_string_lossy())
    );
    for u in SECURE_USERS {
        s.push_str(&format!("  {u}: {{ password_file: {} }}\n", file(u)));
    }
    s
}

/// Inventory host name (and container hostname) of the `--bastion` lab's jump host.
pub const BASTION: &str = "bastion";

pub fn bastion_container_name(prefix: &str) -> String {
    format!("{prefix}-{BASTION}")
}

/// The network the bastion shares with this machine (the nodes' own network is internal).
pub fn edge_network_name(prefix: &str) -> String {
    format!("{prefix}-edge")
}

/// [`inventory`] for nodes reachable only through `bastion`: the bastion is a host in no group
/// and every node's `ssh.jump` (so health checks are tunnelled by default).
pub fn inventory_behind(
    key: &Path,
    known_hosts: &Path,
    nodes: &[Node],
    kind: Kind,
    bastion: &Node,
) -> String {
    let text = inventory(key, known_hosts, nodes, kind);
    let host = format!(
        "hosts:\n  {}:\n    address: {}\n",
        scalar(&bastion.name),
        scalar(&bastion.address)
    );
    text.replacen(
        "ssh:\n  user: root\n",
        &format!("ssh:\n  user: root\n  jump: {}\n", scalar(&bastion.name)),
        1,
    )
    .replacen("hosts:\n", &host, 1)
}

/// First line of every inventory `lab up` writes; `up` only ever overwrites such files.
pub const INVENTORY_HEADER: &str = "# written by clusterctl lab up";

/// A YAML scalar: plain when it is unambiguous (paths, addresses, names), else double-quoted
/// (a JSON string is a valid YAML double-quoted scalar).
fn scalar(s: &str) -> String {
    let plain = s
        .chars()
        .next()
        .is_some_and(|c| c == '/' || c.is_ascii_alphanumeric())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-".contains(c))
        && !matches!(s, "true" | "false" | "null" | "yes" | "no" | "on" | "off");
    if plain {
        s.to_string()
    } else {
        serde_json::to_string(s).expect("a string always serializes")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn nodes(n: usize) -> Vec<Node> {
        (1..=n)
            .map(|k| Node {
                name: host_name(k),
                address: format!("10.89.0.{}", k + 1),
            })
            .collect()
    }

    #[test]
    fn inventory_text_is_exact() {
        let text = inventory(
            &PathBuf::from("/abs/path/x.lab/id_ed25519"),
            &PathBuf::from("/abs/path/x.lab/known_hosts"),
            &nodes(4),
            Kind::ZooKeeper,
        );
        assert_eq!(
            text,
            "# written by clusterctl lab up
ssh:
  user: root
  key: /abs/path/x.lab/id_ed25519
  known_hosts: /abs/path/x.lab/known_hosts
hosts:
  n1:
    address: 10.89.0.2
  n2:
    address: 10.89.0.3
  n3:
    address: 10.89.0.4
  n4:
    address: 10.89.0.5
groups:
  zookeeper: [n1, n2, n3]
  kafka: [n1, n2, n3, n4]
zookeeper:
  heap: 128m
kafka:
  heap: 256m
"
        );
    }

    #[test]
    fn fewer_than_three_nodes_all_run_zookeeper() {
        let text = inventory(
            Path::new("/k"),
            Path::new("/kh"),
            &nodes(2),
            Kind::ZooKeeper,
        );
        assert!(text.contains("  zookeeper: [n1, n2]\n"), "{text}");
        assert!(text.contains("  kafka: [n1, n2]\n"), "{text}");
    }

    #[test]
    fn kraft_lab_has_combined_controllers_and_no_zookeeper() {
        let text = inventory(Path::new("/k"), Path::new("/kh"), &nodes(4), Kind::Kraft);
        assert!(text.contains("  controller: [n1, n2, n3]\n"), "{text}");
        assert!(text.contains("  kafka: [n1, n2, n3, n4]\n"), "{text}");
        assert!(!text.contains("zookeeper"), "{text}");
    }

    #[test]
    fn nisshi_lab_has_one_storage_node_and_brokers() {
        let d = tempfile::tempdir().unwrap();
        let key = d.path().join("k");
        std::fs::write(&key, "").unwrap();
        let text = inventory(&key, Path::new("/kh"), &nodes(4), Kind::Nisshi);
        assert!(text.contains("  storage: [n1]\n"), "{text}");
        assert!(text.contains("  kafka: [n2, n3, n4]\n"), "{text}");
        assert!(text.contains("flavor: nisshi\n"), "{text}");
        assert!(
            !text.contains("zookeeper") && !text.contains("heap"),
            "{text}"
        );
        let inv = crate::inventory::parse(Path::new("/x/lab.yaml"), &text).unwrap();
        assert_eq!(inv.storage_host().unwrap().name, "n1");
    }

    #[test]
    fn secure_lab_is_a_valid_sasl_ssl_inventory() {
        let d = tempfile::tempdir().unwrap();
        let key = d.path().join("k");
        std::fs::write(&key, "").unwrap();
        let lab = d.path().join("lab.lab");
        // ZooKeeper mode: the same, without a controller listener.
        let mut zk = inventory(&key, Path::new("/kh"), &nodes(3), Kind::ZooKeeper);
        zk.push_str(&secure_section(&lab, &lab.join("secrets"), Kind::ZooKeeper));
        let zk = crate::inventory::parse(&d.path().join("lab.yaml"), &zk).unwrap();
        let names: Vec<&str> = zk
            .security
            .as_ref()
            .unwrap()
            .listeners()
            .iter()
            .map(|(n, _)| *n)
            .collect();
        assert_eq!(names, ["CLIENT", "BROKER"]);
        assert!(zk.security.as_ref().unwrap().zookeeper_tls);
        let mut text = inventory(&key, Path::new("/kh"), &nodes(3), Kind::Kraft);
        text.push_str(&secure_section(&lab, &lab.join("secrets"), Kind::Kraft));
        let inv = crate::inventory::parse(&d.path().join("lab.yaml"), &text).unwrap();
        let sec = inv.security.unwrap();
        assert_eq!(sec.listeners().len(), 3);
        assert!(
            sec.listeners()
                .iter()
                .all(|(_, l)| l.protocol == crate::inventory::Protocol::SaslSsl),
            "{text}"
        );
        assert_eq!(
            sec.tls,
            Some(crate::inventory::Tls::Managed {
                dir: lab.join("pki"),
                validity_days: 365
            })
        );
        let users: Vec<&str> = inv.users.iter().map(|u| u.name.as_str()).collect();
        assert_eq!(users, SECURE_USERS);
        assert_eq!(
            inv.users[2].password,
            crate::inventory::SecretSource::File(lab.join("secrets/app.password"))
        );
    }

    #[test]
    fn odd_paths_are_quoted() {
        let text = inventory(
            Path::new("/home/a b/x.lab/id_ed25519"),
            Path::new("/k: \"h\""),
            &nodes(1),
            Kind::ZooKeeper,
        );
        assert!(
            text.contains("  key: \"/home/a b/x.lab/id_ed25519\"\n"),
            "{text}"
        );
        assert!(text.contains(r#"  known_hosts: "/k: \"h\"""#), "{text}");
    }

    #[test]
    fn behind_a_bastion_every_node_jumps_through_it() {
        let bastion = Node {
            name: BASTION.into(),
            address: "10.89.1.2".into(),
        };
        let d = tempfile::tempdir().unwrap();
        let key = d.path().join("k");
        std::fs::write(&key, "").unwrap();
        let text = inventory_behind(&key, Path::new("/kh"), &nodes(3), Kind::Kraft, &bastion);
        assert!(
            text.starts_with(&format!(
                "{INVENTORY_HEADER}\nssh:\n  user: root\n  jump: bastion\n"
            )),
            "{text}"
        );
        assert!(
            text.contains("hosts:\n  bastion:\n    address: 10.89.1.2\n  n1:\n"),
            "{text}"
        );
        let inv = crate::inventory::parse(Path::new("/x/lab.yaml"), &text).unwrap();
        let b = inv.hosts.iter().find(|h| h.name == BASTION).unwrap();
        assert!(b.ssh.jump.is_none() && !b.runs_kafka() && !b.tunnel_checks);
        let n1 = inv.hosts.iter().find(|h| h.name == "n1").unwrap();
        assert_eq!(n1.ssh.jump.as_ref().unwrap().address, "10.89.1.2");
        assert!(n1.tunnel_checks, "tunnelled by default behind a jump host");
        assert_eq!(inv.tunnels().len(), 3);
    }

    #[test]
    fn prefix_is_readable_unique_and_a_valid_name() {
        assert_eq!(prefix("three", 0xabc123), "clusterctl-three-abc123");
        assert_eq!(
            prefix("My Lab__Inv.v2", 0x1_000001),
            "clusterctl-my-lab-inv-v2-000001"
        );
        assert_eq!(prefix("---", 7), "clusterctl-000007");
        assert_eq!(
            prefix("a-very-long-inventory-name-indeed", 1),
            "clusterctl-a-very-long-inventor-000001"
        );
        let p = prefix("x", 0xfeed);
        assert_eq!(container_name(&p, 2), "clusterctl-x-00feed-n2");
        assert_eq!(network_name(&p), "clusterctl-x-00feed-net");
        assert_ne!(prefix("x", 1), prefix("x", 2));
    }

    #[test]
    fn ulimits_never_exceed_hard_limits() {
        assert_eq!(
            ulimit_flags(Some(20000), Some(96365)),
            [
                "--ulimit",
                "nofile=20000:20000",
                "--ulimit",
                "nproc=16384:16384"
            ]
        );
        assert_eq!(
            ulimit_flags(None, Some(1024)),
            [
                "--ulimit",
                "nofile=65536:65536",
                "--ulimit",
                "nproc=1024:1024"
            ]
        );
    }

    #[test]
    fn known_hosts_line_drops_comment_and_checks_type() {
        assert_eq!(
            known_hosts_line("10.89.0.2", "ssh-ed25519 AAAAC3Nz root@n1\n").unwrap(),
            "10.89.0.2 ssh-ed25519 AAAAC3Nz"
        );
        assert!(known_hosts_line("10.89.0.2", "ssh-rsa AAAAB3 root@n1").is_err());
        assert!(known_hosts_line("10.89.0.2", "").is_err());
    }
}
