//! What the hosts already are decides what an inventory may change: a running cluster is not
//! switched between ZooKeeper mode and KRaft by editing groups (that is a migration), and a
//! formatted KRaft cluster keeps its id. Checked on facts, before any host is touched.

use super::change::Change;
use super::plan::HostPlan;
use crate::inventory::{Inventory, ZkSource};
use crate::versions;
use anyhow::{Result, bail};
use std::collections::BTreeMap;

/// `Err` names the hosts, what they have and what the inventory asks.
pub fn check(inv: &Inventory, plans: &[HostPlan]) -> Result<()> {
    // A controller beside a broker leaves the quorum only by an operator's decision.
    let left: Vec<String> = plans
        .iter()
        .filter_map(|p| {
            let r = p.facts.side_controller.as_ref()?;
            (r.pid.is_some() || r.enabled).then(|| match r.pid {
                Some(pid) => format!("{} (pid {pid})", p.host.name),
                None => format!("{} (stopped, started at boot)", p.host.name),
            })
        })
        .collect();
    if !left.is_empty() {
        bail!(
            "{} run a KRaft controller beside the broker (service kafka-controller) that the \
             inventory no longer has, and clusterctl does not remove a controller from a quorum \
             that way: put the host back in groups.controller with kafka.controller_process: \
             separate",
            left.join(", ")
        );
    }
    listeners_kept(plans)?;
    zookeeper_tls_kept(inv, plans)?;
    // A migration has both kinds of node by design; `migrate` checks its phases itself.
    if inv.kafka.migrating {
        return Ok(());
    }
    // A broker migrated from ZooKeeper keeps meta.properties version 0 (Kafka 3.9 only adds a
    // directory.id): its server.properties says it runs in KRaft.
    let kraft_node = |p: &HostPlan| match p.facts.meta_version {
        Some(1) => Some(true),
        Some(0) => Some(
            p.facts
                .server_properties
                .as_deref()
                .is_some_and(|t| t.lines().any(|l| l.starts_with("process.roles="))),
        ),
        _ => None,
    };
    let named = |kraft: bool| -> Vec<String> {
        plans
            .iter()
            .filter(|p| p.host.runs_kafka() && kraft_node(p) == Some(kraft))
            .map(|p| match p.facts.broker_id {
                Some(id) => format!("{} (id {id})", p.host.name),
                None => p.host.name.clone(),
            })
            .collect()
    };
    if inv.kafka.kraft {
        let zk_mode = named(false);
        if !zk_mode.is_empty() {
            bail!(
                "the inventory asks for KRaft (groups.controller), but {} run Kafka in ZooKeeper mode \
                 (meta.properties version 0 with broker.id); a running cluster is not switched by \
                 editing its groups: restore groups.zookeeper, and move to KRaft with clusterctl \
                 migrate",
                zk_mode.join(", ")
            );
        }
    } else {
        let kraft = named(true);
        if !kraft.is_empty() {
            bail!(
                "the inventory asks for ZooKeeper mode (groups.zookeeper), but {} are KRaft nodes \
                 (process.roles in server.properties, or meta.properties version 1 with node.id); \
                 a KRaft cluster cannot go back to ZooKeeper mode: restore groups.controller",
                kraft.join(", ")
            );
        }
    }
    Ok(())
}

/// A formatted node keeps its listeners' protocols: securing (or unsecuring) a running
/// cluster needs a staged roll (both listeners side by side, clients moved, then the old one
/// dropped) that clusterctl does not make yet, and a plain restart with the new files would
/// split the brokers between protocols mid-roll.
fn listeners_kept(plans: &[HostPlan]) -> Result<()> {
    const MAP: &str = "listener.security.protocol.map";
    let map = |text: &str| crate::quote::parse_properties(text).get(MAP).cloned();
    let secured = |m: &Option<String>| {
        m.as_deref()
            .is_some_and(|m| m.split(',').any(|e| !e.ends_with(":PLAINTEXT")))
    };
    let mut changed = Vec::new();
    for p in plans.iter().filter(|p| p.facts.meta_version.is_some()) {
        let (Some(now), Some(wanted)) = (
            p.facts.server_properties.as_deref(),
            p.files
                .iter()
                .find(|f| f.path == p.host.server_properties())
                .map(|f| f.content.as_str()),
        ) else {
            continue;
        };
        let (now, wanted) = (map(now), map(wanted));
        if now != wanted && (secured(&now) || secured(&wanted)) {
            changed.push(format!(
                "{} ({} -> {})",
                p.host.name,
                now.as_deref().unwrap_or("PLAINTEXT"),
                wanted.as_deref().unwrap_or("PLAINTEXT")
            ));
        }
    }
    if !changed.is_empty() {
        bail!(
            "the inventory changes the listeners' protocols of running Kafka nodes: {}; \
             clusterctl secures a cluster at its first install only so far (a running one needs \
             a staged roll it does not make yet): keep `security` as the hosts run it",
            changed.join(", ")
        );
    }
    Ok(())
}

/// An ensemble keeps its TLS setting: turning it on or off for running members needs a
/// staged roll (ZooKeeper's portUnification, then the brokers, then plaintext dropped) that
/// clusterctl does not make yet; a plain roll would cut the brokers off mid-way.
fn zookeeper_tls_kept(inv: &Inventory, plans: &[HostPlan]) -> Result<()> {
    let wanted = inv.security.as_ref().is_some_and(|s| s.zookeeper_tls);
    let changed: Vec<String> = plans
        .iter()
        .filter(|p| p.host.in_zookeeper && p.facts.myid.is_some())
        .filter(|p| p.facts.zk_tls.is_some_and(|now| now != wanted))
        .map(|p| p.host.name.clone())
        .collect();
    if !changed.is_empty() {
        bail!(
            "the inventory turns {} ZooKeeper's TLS for running members: {}; clusterctl secures \
             an ensemble at its first install only so far (a running one needs a staged roll it \
             does not make yet): keep security.zookeeper_tls as the hosts run it",
            if wanted { "on" } else { "off" },
            changed.join(", ")
        );
    }
    Ok(())
}

/// The versions this inventory runs, as the matrix (crate::versions) takes them.
pub fn stack(inv: &Inventory) -> versions::Stack<'_> {
    versions::Stack {
        kafka: &inv.kafka.version,
        kraft: inv.kafka.kraft,
        zookeeper: (!inv.kafka.kraft && inv.zookeeper_hosts().next().is_some()).then_some((
            inv.zookeeper.version.as_str(),
            inv.zookeeper.source == ZkSource::Kafka,
        )),
    }
}

/// The Java a JVM service on this host will run: what `java -version` answers there now, or
/// the release of the JDK package the plan installs. `None`: a JDK tarball not pushed yet
/// (checked by the JDK step once it answers).
fn java_of(p: &HostPlan) -> Option<u32> {
    if let Some(line) = &p.facts.java {
        return versions::java_major(line);
    }
    p.changes.iter().find_map(|c| match &c.change {
        Change::Package(name) => versions::java_major_from_name(name),
        _ => None,
    })
}

/// The version matrix against each JVM host's Java: `Err` lists the hosts of a pair known not
/// to work, with the versions and the fix; `Ok` carries the warnings of unlisted pairs.
pub fn check_java(inv: &Inventory, plans: &[HostPlan]) -> Result<Vec<String>> {
    let stack = stack(inv);
    let mut refused: BTreeMap<String, Vec<&str>> = BTreeMap::new();
    let mut warned: BTreeMap<String, Vec<&str>> = BTreeMap::new();
    for p in plans
        .iter()
        .filter(|p| p.host.in_zookeeper || p.host.runs_kafka())
    {
        let Some(java) = java_of(p) else { continue };
        for v in versions::check_java(&stack, java) {
            let (map, m) = match v {
                versions::Verdict::Refuse(m) => (&mut refused, m),
                versions::Verdict::Warn(m) => (&mut warned, m),
            };
            map.entry(m).or_default().push(&p.host.name);
        }
    }
    let lines = |m: BTreeMap<String, Vec<&str>>| -> Vec<String> {
        m.into_iter()
            .map(|(m, hosts)| format!("{}: {m}", hosts.join(", ")))
            .collect()
    };
    if !refused.is_empty() {
        bail!("{}", lines(refused).join("\n  "));
    }
    Ok(lines(warned))
}

/// After the JDK step: the Java that now answers must not be a pair known to fail.
pub fn check_installed_java(inv: &Inventory, host: &str, version_line: &str) -> Result<()> {
    let Some(java) = versions::java_major(version_line) else {
        return Ok(());
    };
    let refused: Vec<String> = versions::check_java(&stack(inv), java)
        .into_iter()
        .filter_map(|v| match v {
            versions::Verdict::Refuse(m) => Some(m),
            versions::Verdict::Warn(_) => None,
        })
        .collect();
    if !refused.is_empty() {
        bail!(
            "{host}: the JDK now installed answers `{version_line}`: {}; no service was configured \
             or started",
            refused.join("; ")
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::facts::Facts;

    fn inv(groups: &str) -> Inventory {
        let text = format!(
            "hosts:\n  a: {{ address: 10.0.0.1 }}\n  b: {{ address: 10.0.0.2 }}\n  c: {{ address: 10.0.0.3 }}\n\
             groups:\n{groups}kafka:\n  version: 4.4.0\n"
        );
        crate::inventory::parse(std::path::Path::new("i.yaml"), &text).unwrap()
    }

    fn meta(version: u32, id: i64) -> Facts {
        Facts {
            meta_version: Some(version),
            broker_id: Some(id),
            ..Facts::default()
        }
    }

    #[test]
    fn a_zookeeper_mode_cluster_is_not_switched_to_kraft() {
        let kraft = inv("  controller: [a, b, c]\n  kafka: [a, b, c]\n");
        let facts = vec![meta(0, 1), meta(0, 2), meta(0, 3)];
        let plans = crate::engine::plan::plans_from_facts(&kraft, facts, false).unwrap();
        let e = check(&kraft, &plans).unwrap_err().to_string();
        assert!(
            e.contains("a (id 1), b (id 2), c (id 3) run Kafka in ZooKeeper mode"),
            "{e}"
        );
        // A first install, or a KRaft cluster, passes.
        let plans = crate::engine::plan::plans_from_facts(&kraft, vec![Facts::default(); 3], false)
            .unwrap();
        check(&kraft, &plans).unwrap();
        let facts = vec![meta(1, 1), meta(1, 2), meta(1, 3)];
        let plans = crate::engine::plan::plans_from_facts(&kraft, facts, false).unwrap();
        check(&kraft, &plans).unwrap();
    }

    /// Migrated brokers keep meta.properties version 0 and run `process.roles=broker`: the
    /// KRaft inventory that follows the migration is theirs, a ZooKeeper-mode one is not.
    #[test]
    fn migrated_brokers_are_kraft_nodes_with_meta_version_0() {
        let migrated = |id: i64| Facts {
            server_properties: Some(format!("process.roles=broker\nnode.id={id}\n")),
            ..meta(0, id)
        };
        let kraft = inv("  controller: [a]\n  kafka: [b, c]\n");
        let facts = vec![meta(1, 3001), migrated(1), migrated(2)];
        let plans = crate::engine::plan::plans_from_facts(&kraft, facts, false).unwrap();
        check(&kraft, &plans).unwrap();
        let text = "hosts:\n  a: { address: 10.0.0.1 }\n  b: { address: 10.0.0.2 }\n  c: { address: 10.0.0.3 }\n\
                    groups:\n  zookeeper: [a, b, c]\n  kafka: [b, c]\nkafka:\n  version: 3.9.1\n";
        let zk = crate::inventory::parse(std::path::Path::new("i.yaml"), text).unwrap();
        let facts = vec![Facts::default(), migrated(1), meta(0, 2)];
        let plans = crate::engine::plan::plans_from_facts(&zk, facts, false).unwrap();
        let e = check(&zk, &plans).unwrap_err().to_string();
        assert!(e.contains("but b (id 1) are KRaft nodes"), "{e}");
    }

    /// Adding `security` to a formatted PLAINTEXT cluster is refused before any host is
    /// touched; a first install and an unchanged secured cluster pass.
    #[test]
    fn a_running_cluster_is_not_secured_by_an_edit() {
        let text = include_str!("../../inventories/secure.yaml");
        let secure = crate::inventory::parse(std::path::Path::new("s.yaml"), text).unwrap();
        crate::security::install(crate::security::Material::placeholder(&secure));
        let plain_file =
            "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT\n";
        let running = |props: &str| Facts {
            server_properties: Some(props.to_string()),
            ..meta(1, 1)
        };
        let facts = vec![running(plain_file), Facts::default(), Facts::default()];
        let plans = crate::engine::plan::plans_from_facts(&secure, facts, false).unwrap();
        let e = check(&secure, &plans).unwrap_err().to_string();
        assert!(
            e.contains("kafka1 (PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT -> CLIENT:SASL_SSL,"),
            "{e}"
        );
        let plans =
            crate::engine::plan::plans_from_facts(&secure, vec![Facts::default(); 3], false)
                .unwrap();
        check(&secure, &plans).unwrap();
        let wanted = plans[0]
            .files
            .iter()
            .find(|f| f.path == "/etc/kafka/server.properties")
            .unwrap()
            .content
            .clone();
        let facts = vec![running(&wanted), Facts::default(), Facts::default()];
        let plans = crate::engine::plan::plans_from_facts(&secure, facts, false).unwrap();
        check(&secure, &plans).unwrap();
    }

    /// ZooKeeper's TLS is set at an ensemble's first install: flipping it for a member that
    /// runs with the other setting is refused; a new member, or the same setting, passes.
    #[test]
    fn a_running_ensemble_keeps_its_tls_setting() {
        let text = include_str!("../../inventories/secure-zookeeper.yaml");
        let inv = crate::inventory::parse(std::path::Path::new("s.yaml"), text).unwrap();
        crate::security::install(crate::security::Material::placeholder(&inv));
        let member = |id: i64, tls: Option<bool>| Facts {
            myid: Some(id),
            zk_tls: tls,
            ..Facts::default()
        };
        let facts = vec![member(1, Some(false)), member(2, None), Facts::default()];
        let plans = crate::engine::plan::plans_from_facts(&inv, facts, false).unwrap();
        let e = zookeeper_tls_kept(&inv, &plans).unwrap_err().to_string();
        assert!(
            e.contains("turns on ZooKeeper's TLS for running members: kafka1;"),
            "{e}"
        );
        let facts = vec![member(1, Some(true)), member(2, None), Facts::default()];
        let plans = crate::engine::plan::plans_from_facts(&inv, facts, false).unwrap();
        zookeeper_tls_kept(&inv, &plans).unwrap();
    }

    /// A controller beside a broker that the inventory dropped is refused while it runs or
    /// starts at boot; one a rollback stopped and disabled is not.
    #[test]
    fn a_controller_beside_a_broker_is_not_dropped_by_an_edit() {
        let kraft = inv("  controller: [a, b, c]\n  kafka: [a, b, c]\n");
        let left = |pid, enabled| Facts {
            side_controller: Some(crate::engine::facts::Retired {
                enabled,
                pid,
                roles: Some("controller".into()),
            }),
            ..Facts::default()
        };
        let facts = vec![left(Some(42), true), Facts::default(), left(None, true)];
        let plans = crate::engine::plan::plans_from_facts(&kraft, facts, false).unwrap();
        let e = check(&kraft, &plans).unwrap_err().to_string();
        assert!(
            e.starts_with(
                "a (pid 42), c (stopped, started at boot) run a KRaft controller beside the broker"
            ),
            "{e}"
        );
        let facts = vec![left(None, false), Facts::default(), Facts::default()];
        let plans = crate::engine::plan::plans_from_facts(&kraft, facts, false).unwrap();
        check(&kraft, &plans).unwrap();
    }

    #[test]
    fn a_kraft_cluster_does_not_go_back_to_zookeeper() {
        let text = "hosts:\n  a: { address: 10.0.0.1 }\n  b: { address: 10.0.0.2 }\n  c: { address: 10.0.0.3 }\n\
                    groups:\n  zookeeper: [a, b, c]\n  kafka: [a, b, c]\nkafka:\n  version: 3.9.1\n";
        let zk = crate::inventory::parse(std::path::Path::new("i.yaml"), text).unwrap();
        let facts = vec![meta(1, 1), meta(0, 2), Facts::default()];
        let plans = crate::engine::plan::plans_from_facts(&zk, facts, false).unwrap();
        let e = check(&zk, &plans).unwrap_err().to_string();
        assert!(e.contains("but a (id 1) are KRaft nodes"), "{e}");
    }

    #[test]
    fn java_on_the_hosts_meets_the_matrix() {
        let kraft = inv("  controller: [a, b, c]\n  kafka: [a, b, c]\n");
        let java = |v: &str| Facts {
            java: Some(format!("openjdk version \"{v}\" 2024-10-15")),
            ..Facts::default()
        };
        let plans = crate::engine::plan::plans_from_facts(
            &kraft,
            vec![java("17.0.13"), java("11.0.25"), java("11.0.25")],
            false,
        )
        .unwrap();
        let e = check_java(&kraft, &plans).unwrap_err().to_string();
        assert!(
            e.starts_with(
                "b, c: Kafka 4.4.0 needs Java 17 or later on brokers and controllers; \
                           this host runs Java 11"
            ),
            "{e}"
        );
        let plans =
            crate::engine::plan::plans_from_facts(&kraft, vec![java("21.0.5"); 3], false).unwrap();
        assert!(check_java(&kraft, &plans).unwrap().is_empty());
        // No java yet, and no package planned (a JDK tarball): left to the JDK step.
        let plans = crate::engine::plan::plans_from_facts(&kraft, vec![Facts::default(); 3], false)
            .unwrap();
        assert!(check_java(&kraft, &plans).unwrap().is_empty());
        assert!(check_installed_java(&kraft, "a", "openjdk version \"11.0.2\"").is_err());
        assert!(check_installed_java(&kraft, "a", "openjdk version \"17.0.2\"").is_ok());
    }
}
