//! Rendered files for the reference topology (ZooKeeper 3.8.x, Kafka 3.9.x in ZooKeeper mode),
//! checked value by value.

use super::*;
use crate::inventory;
use std::path::Path;

const REFERENCE: &str = "\
hosts:
  zk1:
    address: 10.0.0.1
  zk2:
    address: 10.0.0.2
  zk3:
    address: 10.0.0.3
groups:
  zookeeper: [zk1, zk2, zk3]
  kafka: [zk1, zk2, zk3]
zookeeper:
  version: 3.8.4
kafka:
  version: 3.9.1
  properties:
    auto.create.topics.enable: false
    ssl.keystore.password: hunter2
";

fn setup(text: &str) -> (Inventory, Ids) {
    let inv = inventory::parse(Path::new("inv.yaml"), text).unwrap();
    let no_facts = vec![Default::default(); inv.hosts.len()];
    let ids = crate::engine::plan::resolve_ids(&inv, &no_facts).unwrap();
    (inv, ids)
}

fn files(
    inv: &Inventory,
    ids: &Ids,
    host: usize,
    init: InitSystem,
) -> BTreeMap<String, ManagedFile> {
    Renderer::new(inv)
        .unwrap()
        .host_files(
            inv,
            &inv.hosts[host],
            ids,
            init,
            crate::engine::plan::logging_for(inv, &[]),
        )
        .unwrap()
        .into_iter()
        .map(|f| (f.path.clone(), f))
        .collect()
}

/// What a real `sh` holds in `var` after sourcing `env` (as the init script does).
fn sourced(env: &str, var: &str) -> String {
    let d = tempfile::tempdir().unwrap();
    let f = d.path().join("x.env");
    std::fs::write(&f, env).unwrap();
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(". {}; printf %s \"${var}\"", f.display()))
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout).unwrap()
}

/// The words a list variable (JVM_OPTS, MAIN_ARGS) of `env` stands for, as run-java evals it.
fn sourced_words(env: &str, var: &str) -> Vec<String> {
    let d = tempfile::tempdir().unwrap();
    let f = d.path().join("x.env");
    std::fs::write(&f, env).unwrap();
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            ". {}; eval \"set -- ${var}\"; printf '%s\\0' \"$@\"",
            f.display()
        ))
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout)
        .unwrap()
        .split_terminator('\0')
        .map(String::from)
        .collect()
}

/// Parse `key=value` lines (comments and blanks skipped), failing on a duplicated key.
fn props(text: &str) -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    for l in text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let (k, v) = l
            .split_once('=')
            .unwrap_or_else(|| panic!("not key=value: {l}"));
        assert!(
            m.insert(k.to_string(), v.to_string()).is_none(),
            "duplicate key {k}"
        );
    }
    m
}

#[test]
fn zoo_cfg_reference_values() {
    let (inv, ids) = setup(REFERENCE);
    let f = files(&inv, &ids, 1, InitSystem::SysV);
    let zoo = &f["/etc/zookeeper/zoo.cfg"];
    let p = props(&zoo.content);
    assert_eq!(p["tickTime"], "2000");
    assert_eq!(p["initLimit"], "10");
    assert_eq!(p["syncLimit"], "5");
    assert_eq!(p["clientPort"], "2181");
    assert_eq!(p["dataDir"], "/var/lib/zookeeper");
    assert_eq!(p["dataLogDir"], "/var/lib/zookeeper/txlog");
    assert_eq!(p["server.1"], "10.0.0.1:2888:3888");
    assert_eq!(p["server.2"], "10.0.0.2:2888:3888");
    assert_eq!(p["server.3"], "10.0.0.3:2888:3888");
    assert_eq!(p["4lw.commands.whitelist"], "srvr,mntr,ruok,conf,isro");
    assert_eq!(
        (zoo.mode, zoo.owner.as_str(), zoo.group.as_str()),
        (0o640, "root", "zookeeper")
    );
    assert_eq!(zoo.restarts, Some(Service::ZooKeeper));
    let myid = &f["/var/lib/zookeeper/myid"];
    assert_eq!(myid.content, "2\n");
    assert_eq!(myid.owner, "zookeeper");
}

#[test]
fn alternative_election_ports() {
    let text = REFERENCE.replace(
        "  version: 3.8.4\n",
        "  version: 3.8.4\n  peer_port: 3188\n  election_port: 3288\n",
    );
    let (inv, ids) = setup(&text);
    let p = props(&files(&inv, &ids, 0, InitSystem::SysV)["/etc/zookeeper/zoo.cfg"].content);
    assert_eq!(p["server.3"], "10.0.0.3:3188:3288");
}

#[test]
fn server_properties_reference_values() {
    let (inv, ids) = setup(REFERENCE);
    for (i, addr) in ["10.0.0.1", "10.0.0.2", "10.0.0.3"].iter().enumerate() {
        let f = files(&inv, &ids, i, InitSystem::SysV);
        let sp = &f["/etc/kafka/server.properties"];
        let p = props(&sp.content);
        assert_eq!(p["broker.id"], (i + 1).to_string());
        assert_eq!(p["listeners"], format!("PLAINTEXT://{addr}:9092"));
        assert_eq!(
            p["advertised.listeners"],
            format!("PLAINTEXT://{addr}:9092")
        );
        assert_eq!(p["log.dirs"], "/var/lib/kafka/data");
        assert_eq!(
            p["zookeeper.connect"],
            "10.0.0.1:2181,10.0.0.2:2181,10.0.0.3:2181"
        );
        assert_eq!(p["num.partitions"], "3");
        assert_eq!(p["offsets.topic.replication.factor"], "3");
        assert_eq!(p["default.replication.factor"], "3");
        assert_eq!(p["min.insync.replicas"], "2");
        assert_eq!(p["log.retention.hours"], "168");
        assert_eq!(p["log.segment.bytes"], "1073741824");
        assert_eq!(p["auto.create.topics.enable"], "false");
        assert_eq!(p["unclean.leader.election.enable"], "false");
        assert_eq!((sp.mode, sp.group.as_str()), (0o640, "kafka"));
    }
}

#[test]
fn a_brokers_rack_is_broker_rack() {
    let (inv, ids) = setup(REFERENCE);
    let p = props(&files(&inv, &ids, 0, InitSystem::SysV)["/etc/kafka/server.properties"].content);
    assert!(!p.contains_key("broker.rack"), "no rack, no broker.rack");
    let racked = REFERENCE
        .replace(
            "    address: 10.0.0.1\n",
            "    address: 10.0.0.1\n    rack: a\n",
        )
        .replace(
            "    address: 10.0.0.2\n",
            "    address: 10.0.0.2\n    rack: b\n",
        )
        .replace(
            "    address: 10.0.0.3\n",
            "    address: 10.0.0.3\n    rack: \"zone:c/1\"\n",
        );
    let (inv, ids) = setup(&racked);
    for (i, rack) in ["a", "b", "zone:c/1"].iter().enumerate() {
        let sp = &files(&inv, &ids, i, InitSystem::SysV)["/etc/kafka/server.properties"];
        assert_eq!(props(&sp.content)["broker.rack"], *rack, "host {i}");
    }
    // KRaft: brokers have racks; a dedicated controller is not a broker and has none.
    let kraft = KRAFT
        .replace("  controller: [k1, k2, k3]", "  controller: [c1]")
        .replace("{ address: 10.0.0.1 }", "{ address: 10.0.0.1, rack: a }")
        .replace("{ address: 10.0.0.2 }", "{ address: 10.0.0.2, rack: b }")
        .replace("{ address: 10.0.0.3 }", "{ address: 10.0.0.3, rack: c }");
    let (inv, ids) = setup(&kraft);
    let p =
        |i| props(&files(&inv, &ids, i, InitSystem::SysV)["/etc/kafka/server.properties"].content);
    assert_eq!(p(2)["broker.rack"], "c");
    assert!(!p(3).contains_key("broker.rack"));
}

#[test]
fn host_override_wins_over_cluster_setting() {
    let text = REFERENCE.replace(
        "    address: 10.0.0.3\n",
        "    address: 10.0.0.3\n    kafka:\n      heap: 1g\n      properties:\n        num.io.threads: 16\n",
    );
    let (inv, ids) = setup(&text);
    let f = files(&inv, &ids, 2, InitSystem::SysV);
    assert_eq!(
        props(&f["/etc/kafka/server.properties"].content)["num.io.threads"],
        "16"
    );
    assert!(f["/etc/kafka/kafka.env"].content.contains("-Xmx1g"));
    let other = files(&inv, &ids, 0, InitSystem::SysV);
    assert!(other["/etc/kafka/kafka.env"].content.contains("-Xmx512m"));
}

#[test]
fn init_scripts_run_java_directly_as_service_users() {
    let (inv, ids) = setup(REFERENCE);
    let f = files(&inv, &ids, 0, InitSystem::SysV);
    let zk = &f["/etc/init.d/zookeeper"];
    let kafka = &f["/etc/init.d/kafka"];
    assert_eq!(zk.mode, 0o755);
    assert!(zk.content.contains("# chkconfig: 2345 20 80"));
    assert!(kafka.content.contains("# chkconfig: 2345 30 70"));
    assert!(
        kafka
            .content
            .contains("Required-Start:    $network $remote_fs zookeeper")
    );
    let env = props(&f["/etc/kafka/kafka.env"].content);
    assert_eq!(env["MAIN_CLASS"], "kafka.Kafka");
    assert_eq!(env["CLASSPATH"], "'/opt/kafka_2.13-3.9.1/libs/*'");
    assert_eq!(env["SERVICE_USER"], "kafka");
    assert_eq!(env["PID_FILE"], "/var/run/kafka/kafka.pid");
    let zenv = props(&f["/etc/zookeeper/zookeeper.env"].content);
    assert_eq!(
        zenv["MAIN_CLASS"],
        "org.apache.zookeeper.server.quorum.QuorumPeerMain"
    );
    assert_eq!(
        zenv["CLASSPATH"],
        "'/etc/zookeeper:/opt/zookeeper-3.8.4/lib/*'"
    );
    assert!(
        !env.contains_key("JAVA_HOME"),
        "package JDK uses java from PATH"
    );
    assert!(!f.contains_key("/etc/systemd/system/kafka.service"));
}

#[test]
fn systemd_hosts_get_units() {
    let (inv, ids) = setup(REFERENCE);
    let f = files(&inv, &ids, 0, InitSystem::Systemd);
    let unit = &f["/etc/systemd/system/kafka.service"].content;
    assert!(unit.contains("User=kafka"));
    assert!(unit.contains("EnvironmentFile=/etc/kafka/kafka.env"));
    assert!(unit.contains("After=network-online.target zookeeper.service"));
    assert!(!f.contains_key("/etc/init.d/kafka"));
    // systemd holds the PID (MainPID); a JVM's exit after SIGTERM is a clean stop.
    assert!(!unit.contains("ExecStartPost"), "{unit}");
    for line in [
        "SuccessExitStatus=143",
        "Restart=on-failure",
        "RestartSec=5",
    ] {
        assert!(unit.contains(&format!("\n{line}\n")), "{line}: {unit}");
    }
    assert!(unit.contains("\nLimitNOFILE=100000\n\n[Install]"), "{unit}");
    assert!(!unit.contains("MemoryMax"), "no memory cap unless asked");

    // The inventory's limits, per service; sizes as systemd reads them.
    let text = REFERENCE
        .replace(
            "  version: 3.9.1\n",
            "  version: 3.9.1\n  limits:\n    nofile: 200000\n    memory_max: 2g\n",
        )
        .replace(
            "  version: 3.8.4\n",
            "  version: 3.8.4\n  limits:\n    nofile: 4096\n",
        );
    let (inv, ids) = setup(&text);
    let f = files(&inv, &ids, 0, InitSystem::Systemd);
    let unit = &f["/etc/systemd/system/kafka.service"].content;
    assert!(
        unit.contains("\nLimitNOFILE=200000\nMemoryMax=2G\n\n[Install]"),
        "{unit}"
    );
    let zk = &f["/etc/systemd/system/zookeeper.service"].content;
    assert!(zk.contains("\nLimitNOFILE=4096\n\n[Install]"), "{zk}");
}

#[test]
fn zookeeper_from_the_kafka_tarball() {
    let text = REFERENCE.replace("  version: 3.8.4\n", "  source: kafka\n");
    let (inv, ids) = setup(&text);
    let f = files(&inv, &ids, 0, InitSystem::SysV);
    let env = props(&f["/etc/zookeeper/zookeeper.env"].content);
    assert_eq!(
        env["CLASSPATH"],
        "'/etc/zookeeper:/opt/kafka_2.13-3.9.1/libs/*'"
    );
    assert!(f.contains_key("/etc/zookeeper/log4j.properties"));
    assert_eq!(inv.zookeeper.version, "3.9.1");
}

#[test]
fn jdk_tarball_sets_java_home() {
    let dir = tempfile::tempdir().unwrap();
    let jdk = dir.path().join("jdk.tar.gz");
    std::fs::write(&jdk, b"x").unwrap();
    let text = format!(
        "{REFERENCE}jdk:\n  method: tarball\n  tarball: {}\n",
        jdk.display()
    );
    let (inv, ids) = setup(&text);
    let f = files(&inv, &ids, 0, InitSystem::SysV);
    assert!(
        f["/etc/profile.d/java.sh"]
            .content
            .contains("export JAVA_HOME=/opt/jdk")
    );
    assert_eq!(
        props(&f["/etc/kafka/kafka.env"].content)["JAVA_HOME"],
        "/opt/jdk"
    );
}

#[test]
fn secrets_are_masked() {
    let (inv, ids) = setup(REFERENCE);
    let sp = &files(&inv, &ids, 0, InitSystem::SysV)["/etc/kafka/server.properties"];
    assert!(sp.content.contains("ssl.keystore.password=hunter2"));
    let masked = mask_secrets(&sp.content);
    assert!(!masked.contains("hunter2"));
    assert!(masked.contains("ssl.keystore.password=********"));
}

#[test]
fn template_override_directory() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("myid.j2"), "custom {{ myid }}\n").unwrap();
    let text = format!("templates_dir: {}\n{REFERENCE}", dir.path().display());
    let (inv, ids) = setup(&text);
    assert_eq!(
        files(&inv, &ids, 0, InitSystem::SysV)["/var/lib/zookeeper/myid"].content,
        "custom 1\n"
    );
}

#[test]
fn strict_undefined_variables() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("myid.j2"), "{{ no_such_variable }}\n").unwrap();
    let text = format!("templates_dir: {}\n{REFERENCE}", dir.path().display());
    let (inv, ids) = setup(&text);
    let err = Renderer::new(&inv)
        .unwrap()
        .host_files(
            &inv,
            &inv.hosts[0],
            &ids,
            InitSystem::SysV,
            crate::engine::plan::logging_for(&inv, &[]),
        )
        .unwrap_err();
    assert!(format!("{err:#}").contains("undefined"), "{err:#}");
}

const KRAFT: &str = "\
hosts:
  k1: { address: 10.0.0.1 }
  k2: { address: 10.0.0.2 }
  k3: { address: 10.0.0.3 }
  c1: { address: 10.0.0.11 }
groups:
  kafka: [k1, k2, k3]
  controller: [k1, k2, k3]
kafka:
  version: 4.4.0
";

#[test]
fn kraft_combined_nodes() {
    let (inv, ids) = setup(&KRAFT.replace("  c1: { address: 10.0.0.11 }\n", ""));
    assert!(inv.kafka.kraft);
    let f = files(&inv, &ids, 1, InitSystem::SysV);
    let p = props(&f["/etc/kafka/server.properties"].content);
    assert_eq!(p["process.roles"], "broker,controller");
    assert_eq!(p["node.id"], "2");
    // A new cluster on Kafka 3.9+ gets a dynamic quorum (KIP-853): the controllers to ask,
    // not the voters, which live in the metadata log.
    assert_eq!(
        p["controller.quorum.bootstrap.servers"],
        "10.0.0.1:9093,10.0.0.2:9093,10.0.0.3:9093"
    );
    assert!(!p.contains_key("controller.quorum.voters"));
    // One that runs a static quorum (or a Kafka before 3.9) keeps the voters.
    let mut stat = inv.clone();
    stat.kafka.dynamic_quorum = false;
    let s = props(&files(&stat, &ids, 1, InitSystem::SysV)["/etc/kafka/server.properties"].content);
    assert_eq!(
        s["controller.quorum.voters"],
        "1@10.0.0.1:9093,2@10.0.0.2:9093,3@10.0.0.3:9093"
    );
    assert!(!s.contains_key("controller.quorum.bootstrap.servers"));
    let (old, _) = setup(
        &KRAFT
            .replace("4.4.0", "3.8.1")
            .replace("  c1: { address: 10.0.0.11 }\n", ""),
    );
    assert!(!old.kafka.dynamic_quorum, "3.8 has no dynamic quorum");
    assert_eq!(
        p["listeners"],
        "PLAINTEXT://10.0.0.2:9092,CONTROLLER://10.0.0.2:9093"
    );
    assert_eq!(p["advertised.listeners"], "PLAINTEXT://10.0.0.2:9092");
    assert_eq!(p["controller.listener.names"], "CONTROLLER");
    assert_eq!(
        p["listener.security.protocol.map"],
        "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT"
    );
    assert_eq!(p["inter.broker.listener.name"], "PLAINTEXT");
    assert!(!p.contains_key("zookeeper.connect") && !p.contains_key("broker.id"));
    assert!(!f.contains_key("/etc/zookeeper/zoo.cfg"));
}

#[test]
fn kraft_dedicated_controllers_get_disjoint_ids() {
    let text = KRAFT.replace("  controller: [k1, k2, k3]", "  controller: [c1]");
    let (inv, ids) = setup(&text);
    let c = files(&inv, &ids, 3, InitSystem::SysV);
    let p = props(&c["/etc/kafka/server.properties"].content);
    assert_eq!(p["process.roles"], "controller");
    assert_eq!(p["node.id"], "3001");
    assert_eq!(p["listeners"], "CONTROLLER://10.0.0.11:9093");
    assert!(
        !p.contains_key("advertised.listeners"),
        "controllers advertise no broker listener"
    );
    let b = files(&inv, &ids, 0, InitSystem::SysV);
    let p = props(&b["/etc/kafka/server.properties"].content);
    assert_eq!(p["process.roles"], "broker");
    assert_eq!(p["node.id"], "1");
    assert_eq!(p["controller.quorum.bootstrap.servers"], "10.0.0.11:9093");
    assert_eq!(p["listeners"], "PLAINTEXT://10.0.0.1:9092");
}

#[test]
fn nisshi_env_and_launchers() {
    let inv = inventory::parse(
        Path::new("inv.yaml"),
        concat!(
            "flavor: nisshi\nhosts:\n  pg: {address: 10.0.0.9}\n  b1: {address: b1.example}\n",
            "groups:\n  storage: [pg]\n  kafka: [b1]\n",
            "nisshi:\n  cluster_id: prod\n  port: 9095\n",
            "  environment:\n    GROUP_POLL_INTERVAL: 250ms\n",
        ),
    )
    .unwrap();
    let r = Renderer::new(&inv).unwrap();
    let url = "postgres://nisshi:pw@10.0.0.9:5432/nisshi?sslmode=require";
    let access = StorageAccess {
        url: url.into(),
        ca_pem: Some("-----BEGIN CERTIFICATE-----\n".into()),
    };
    let by_path = |init| -> BTreeMap<String, ManagedFile> {
        r.nisshi_files(&inv, &inv.hosts[1], "10.0.0.1", &access, init)
            .unwrap()
            .into_iter()
            .map(|f| (f.path.clone(), f))
            .collect()
    };
    let f = by_path(InitSystem::SysV);
    let env = &f["/etc/nisshi/nisshi.env"];
    assert_eq!(
        (env.mode, env.owner.as_str(), env.group.as_str()),
        (0o640, "root", "nisshi"),
        "it holds the database password"
    );
    let var = |v: &str| sourced(&env.content, v);
    assert_eq!(var("CLUSTER_ID"), "prod");
    // Listen on the IP (the broker resolves no names), advertise the inventory address.
    assert_eq!(var("LISTENER_URL"), "tcp://10.0.0.1:9095");
    assert_eq!(var("ADVERTISED_LISTENER_URL"), "tcp://b1.example:9095");
    assert_eq!(var("STORAGE_ENGINE"), url);
    assert_eq!(var("RUST_LOG"), "warn");
    assert_eq!(var("GROUP_POLL_INTERVAL"), "250ms");
    // The store's certificate, and only it, is what the broker trusts for TLS to it.
    assert_eq!(var("SSL_CERT_FILE"), STORAGE_CA);
    assert_eq!(f[STORAGE_CA].content, "-----BEGIN CERTIFICATE-----\n");
    assert_eq!(f[STORAGE_CA].restarts, Some(Service::Nisshi));
    assert!(env.content.ends_with("GROUP_POLL_INTERVAL=250ms\n"));
    assert!(!mask_secrets(&env.content).contains("pw@"));
    let init = &f["/etc/init.d/nisshi"].content;
    assert!(init.contains(
        "WORK_DIR=/var/lib/nisshi\nLAUNCH='/usr/local/lib/clusterctl/supervise /opt/nisshi-0.8.1/nisshi broker'\n"
    ));
    assert_eq!(f[SUPERVISE].mode, 0o755);
    assert!(init.contains("grep -q -- 'nisshi broker'"));
    assert!(
        init.contains("set -a\n. /etc/nisshi/nisshi.env\nset +a"),
        "exported to the broker"
    );
    let units = by_path(InitSystem::Systemd);
    assert!(!units.contains_key(SUPERVISE), "systemd restarts it itself");
    let unit = &units["/etc/systemd/system/nisshi.service"].content;
    assert!(unit.contains("User=nisshi"));
    assert!(unit.contains("WorkingDirectory=/var/lib/nisshi"));
    assert!(unit.contains("ExecStart=/opt/nisshi-0.8.1/nisshi broker\n"));
    assert!(unit.contains("Restart=on-failure"));
}

/// The supervisor under a real `sh`: a failing command starts again, a clean exit ends it,
/// SIGTERM reaches the child and ends the loop.
#[test]
fn supervise_restarts_on_failure_and_passes_sigterm() {
    let inv = inventory::parse(Path::new("inv.yaml"), REFERENCE).unwrap();
    let script = Renderer::new(&inv)
        .unwrap()
        .render("supervise.sh.j2", context! { delay => 0 })
        .unwrap();
    let d = tempfile::tempdir().unwrap();
    let sup = d.path().join("supervise");
    std::fs::write(&sup, script).unwrap();
    // Fails twice, then succeeds.
    let runs = d.path().join("runs");
    let cmd = format!(
        "echo x >> {r}; [ $(wc -l < {r}) -ge 3 ]",
        r = runs.display()
    );
    let out = std::process::Command::new("sh")
        .arg(&sup)
        .args(["sh", "-c", &cmd])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(std::fs::read_to_string(&runs).unwrap().lines().count(), 3);
    assert!(String::from_utf8_lossy(&out.stderr).contains("exited with status 1"));

    let started = std::time::Instant::now();
    let mut child = std::process::Command::new("sh")
        .arg(&sup)
        .args(["sleep", "30"])
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(10),
        "SIGTERM ended the child, not its 30 s sleep"
    );
}

/// Hostile JVM options reach the JVM as exactly the listed arguments: the rendered env file
/// and launcher run under a real `sh`, with a stand-in `java` that prints its arguments.
#[test]
fn hostile_jvm_options_are_literal_arguments_of_the_jvm() {
    let d = tempfile::tempdir().unwrap();
    let marker = d.path().join("pwned");
    let hostile = [
        format!("-Dx=1'; touch {}; echo '", marker.display()),
        "-Dy=a b".to_string(),
        format!("-Dz=$(touch {})", marker.display()),
        format!("-Dw=`touch {}`", marker.display()),
        "-Dq=\"double\" \\ back".to_string(),
    ];
    let list = hostile
        .iter()
        .map(|o| format!("    - {}\n", serde_json::to_string(o).unwrap()))
        .collect::<String>();
    let text = REFERENCE.replace(
        "kafka:\n  version: 3.9.1\n",
        &format!("kafka:\n  version: 3.9.1\n  jvm_opts:\n{list}"),
    );
    let (inv, ids) = setup(&text);
    let f = files(&inv, &ids, 0, InitSystem::SysV);
    let env = &f["/etc/kafka/kafka.env"].content;
    let words = sourced_words(env, "JVM_OPTS");
    assert_eq!(&words[words.len() - hostile.len()..], &hostile[..]);
    assert!(words.contains(&"-Dlog4j.configuration=file:/etc/kafka/log4j.properties".into()));

    // The launcher itself, as the init script runs it: env exported, then run-java.
    let bin = d.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    std::fs::write(bin.join("java"), "#!/bin/sh\nprintf '%s\\0' \"$@\"\n").unwrap();
    std::process::Command::new("chmod")
        .args(["+x", bin.join("java").to_str().unwrap()])
        .status()
        .unwrap();
    std::fs::write(d.path().join("kafka.env"), env).unwrap();
    std::fs::write(
        d.path().join("run"),
        &f["/usr/local/lib/clusterctl/run-kafka"].content,
    )
    .unwrap();
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg("set -a; . ./kafka.env; set +a; PATH=\"$PWD/bin:$PATH\" sh ./run")
        .current_dir(d.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let argv: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .split_terminator('\0')
        .map(String::from)
        .collect();
    let tail = [
        "-cp",
        "/opt/kafka_2.13-3.9.1/libs/*",
        "kafka.Kafka",
        "/etc/kafka/server.properties",
    ];
    assert_eq!(&argv[argv.len() - 4..], &tail[..]);
    assert_eq!(
        &argv[argv.len() - 4 - hostile.len()..argv.len() - 4],
        &hostile[..]
    );
    assert!(!marker.exists(), "a value ran as a command");
}

/// Property keys and values as Java's own Properties.load (ISO 8859-1, as Kafka and
/// ZooKeeper read their files) reads them back from the rendered server.properties.
#[test]
fn hostile_property_values_read_back_by_java_as_written() {
    let values = [
        ("x.quote", "it's \"quoted\""),
        ("x.backslash", "C:\\dir\\n"),
        ("x.unicode", "ünïcødé 😀"),
        ("x.lead", "  leading blanks"),
        ("x.specials", "a=b:c #not a comment !"),
        ("x.shell", "$(id) `id` ${HOME}"),
    ];
    let props_yaml: String = values
        .iter()
        .map(|(k, v)| format!("    {k}: {}\n", serde_json::to_string(v).unwrap()))
        .collect();
    let text = REFERENCE.replace("  properties:\n", &format!("  properties:\n{props_yaml}"));
    let (inv, ids) = setup(&text);
    let f = files(&inv, &ids, 0, InitSystem::SysV);
    let d = tempfile::tempdir().unwrap();
    std::fs::write(
        d.path().join("server.properties"),
        &f["/etc/kafka/server.properties"].content,
    )
    .unwrap();
    // Prints each asked key's value in hex of its UTF-8 bytes: no quoting on the way back.
    std::fs::write(
        d.path().join("Read.java"),
        "import java.io.*; import java.util.*;\n\
         public class Read { public static void main(String[] a) throws Exception {\n\
           Properties p = new Properties();\n\
           try (InputStream in = new FileInputStream(a[0])) { p.load(in); }\n\
           for (int i = 1; i < a.length; i++) {\n\
             StringBuilder sb = new StringBuilder();\n\
             for (byte b : p.getProperty(a[i], \"<missing>\").getBytes(\"UTF-8\")) sb.append(String.format(\"%02x\", b));\n\
             System.out.println(sb);\n\
           }\n\
           System.out.println(p.getProperty(\"broker.id\"));\n\
         } }\n",
    )
    .unwrap();
    let out = std::process::Command::new("java")
        .arg("Read.java")
        .arg("server.properties")
        .args(values.iter().map(|(k, _)| *k))
        .current_dir(d.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    for (i, (k, v)) in values.iter().enumerate() {
        assert_eq!(lines[i], hex::encode(v.as_bytes()), "{k}");
    }
    assert_eq!(
        lines[values.len()],
        "1",
        "the managed broker.id is untouched"
    );
}

/// nisshi's env file, which the init script sources as root: hostile environment values and
/// a storage URL with shell characters come back from a real `sh` exactly as given.
#[test]
fn hostile_nisshi_environment_values_stay_values() {
    let d = tempfile::tempdir().unwrap();
    let marker = d.path().join("pwned");
    let values = [
        format!("x'; touch {}; echo '", marker.display()),
        format!("$(touch {})", marker.display()),
        format!("`touch {}`", marker.display()),
        "a \"b\" \\c $HOME".to_string(),
    ];
    let env_yaml: String = values
        .iter()
        .enumerate()
        .map(|(i, v)| format!("    V{i}: {}\n", serde_json::to_string(v).unwrap()))
        .collect();
    let inv = inventory::parse(
        Path::new("inv.yaml"),
        &format!(
            "flavor: nisshi\nhosts:\n  pg: {{address: 10.0.0.9}}\n  b1: {{address: 10.0.0.1}}\n\
             groups:\n  storage: [pg]\n  kafka: [b1]\nnisshi:\n  environment:\n{env_yaml}"
        ),
    )
    .unwrap();
    let url = "postgres://nisshi:p'w$(x)@10.0.0.9:5432/nisshi?sslmode=require&a=b";
    let access = StorageAccess {
        url: url.into(),
        ca_pem: None,
    };
    let f = Renderer::new(&inv)
        .unwrap()
        .nisshi_files(&inv, &inv.hosts[1], "10.0.0.1", &access, InitSystem::SysV)
        .unwrap();
    let env = &f
        .iter()
        .find(|f| f.path == "/etc/nisshi/nisshi.env")
        .unwrap()
        .content;
    for (i, v) in values.iter().enumerate() {
        assert_eq!(sourced(env, &format!("V{i}")), *v);
    }
    assert_eq!(sourced(env, "STORAGE_ENGINE"), url);
    assert!(!marker.exists(), "a value ran as a command");
}

/// A migration's files, stage by stage: controllers in migration mode throughout, brokers in
/// ZooKeeper mode, then with the migration flag, then KRaft brokers with their old ids.
#[test]
fn migration_stages() {
    let text = "\
hosts:
  zk1: { address: 10.0.0.1 }
  zk2: { address: 10.0.0.2 }
  zk3: { address: 10.0.0.3 }
  c1: { address: 10.0.0.11 }
groups:
  zookeeper: [zk1, zk2, zk3]
  kafka: [zk1, zk2, zk3]
  controller: [c1]
kafka:
  version: 3.9.1
  properties:
    authorizer.class.name: kafka.security.authorizer.AclAuthorizer
";
    let (mut inv, ids) = setup(text);
    assert!(inv.kafka.migrating);
    let at = |inv: &Inventory, host: usize| {
        props(&files(inv, &ids, host, InitSystem::SysV)["/etc/kafka/server.properties"].content)
    };
    for stage in [None, Some(MigrationStage::Controllers)] {
        inv.kafka.stage = stage;
        let c = at(&inv, 3);
        assert_eq!(c["process.roles"], "controller");
        assert_eq!(c["node.id"], "3001");
        assert_eq!(c["zookeeper.metadata.migration.enable"], "true");
        assert_eq!(
            c["zookeeper.connect"],
            "10.0.0.1:2181,10.0.0.2:2181,10.0.0.3:2181"
        );
        assert_eq!(c["inter.broker.listener.name"], "PLAINTEXT");
        // Kafka migrates with a static quorum only.
        assert_eq!(c["controller.quorum.voters"], "3001@10.0.0.11:9093");
        assert!(!c.contains_key("controller.quorum.bootstrap.servers"));
        assert_eq!(
            c["authorizer.class.name"],
            "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
        );
        let b = at(&inv, 0);
        assert_eq!(b["broker.id"], "1");
        assert!(!b.contains_key("zookeeper.metadata.migration.enable"));
        assert!(!b.contains_key("controller.quorum.voters"));
        assert_eq!(
            b["authorizer.class.name"],
            "kafka.security.authorizer.AclAuthorizer"
        );
    }
    inv.kafka.stage = Some(MigrationStage::BrokersMigrating);
    let b = at(&inv, 0);
    assert_eq!(b["broker.id"], "1");
    assert_eq!(
        b["zookeeper.connect"],
        "10.0.0.1:2181,10.0.0.2:2181,10.0.0.3:2181"
    );
    assert_eq!(b["zookeeper.metadata.migration.enable"], "true");
    assert_eq!(b["inter.broker.protocol.version"], "3.9");
    assert_eq!(b["controller.quorum.voters"], "3001@10.0.0.11:9093");
    assert_eq!(b["controller.listener.names"], "CONTROLLER");
    assert_eq!(
        b["listener.security.protocol.map"],
        "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT"
    );
    assert_eq!(b["listeners"], "PLAINTEXT://10.0.0.1:9092");
    inv.kafka.stage = Some(MigrationStage::BrokersKraft);
    let b = at(&inv, 1);
    assert_eq!(b["process.roles"], "broker");
    assert_eq!(b["node.id"], "2", "a broker keeps its id as node.id");
    assert_eq!(b["controller.quorum.voters"], "3001@10.0.0.11:9093");
    for gone in [
        "broker.id",
        "zookeeper.connect",
        "zookeeper.metadata.migration.enable",
        "inter.broker.protocol.version",
    ] {
        assert!(!b.contains_key(gone), "{gone} in {b:?}");
    }
    assert_eq!(
        b["authorizer.class.name"],
        "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
    );
    let c = at(&inv, 3);
    assert_eq!(
        c["zookeeper.metadata.migration.enable"], "true",
        "until finalize"
    );
}

/// Finalized, a migration's files are those of the same cluster as a KRaft inventory (its
/// groups.zookeeper removed, the static quorum the hosts run), so the apply that retires
/// ZooKeeper afterwards changes nothing on Kafka.
#[test]
fn a_finalized_migration_renders_the_kraft_inventory_files() {
    let text = "\
hosts:
  b1: { address: 10.0.0.1 }
  b2: { address: 10.0.0.2 }
  b3: { address: 10.0.0.3 }
  c1: { address: 10.0.0.11 }
  c2: { address: 10.0.0.12 }
  c3: { address: 10.0.0.13 }
groups:
  zookeeper: [b1, b2, b3]
  kafka: [b1, b2, b3]
  controller: [c1, c2, c3]
kafka:
  version: 3.9.1
  properties:
    authorizer.class.name: kafka.security.authorizer.AclAuthorizer
";
    let (mut inv, ids) = setup(text);
    inv.kafka.stage = Some(MigrationStage::Finalized);
    let (mut kraft, _) = setup(&text.replace("  zookeeper: [b1, b2, b3]\n", ""));
    assert!(kraft.kafka.kraft && !kraft.kafka.migrating);
    // What the plan reads from hosts formatted with a static quorum.
    kraft.kafka.dynamic_quorum = false;
    let c =
        props(&files(&inv, &ids, 3, InitSystem::Systemd)["/etc/kafka/server.properties"].content);
    assert!(
        !c.contains_key("zookeeper.metadata.migration.enable"),
        "{c:?}"
    );
    assert!(!c.contains_key("zookeeper.connect"), "{c:?}");
    for host in 0..6 {
        let want = files(&kraft, &ids, host, InitSystem::Systemd);
        let got = files(&inv, &ids, host, InitSystem::Systemd);
        for (path, f) in &want {
            assert_eq!(
                got.get(path).map(|g| &g.content),
                Some(&f.content),
                "{} {path}",
                inv.hosts[host].name
            );
        }
    }
}

/// A secured KRaft node: named listeners, the PEM stores, SCRAM and PLAIN logins with the
/// passwords (placeholders here) quoted for JAAS, the authorizer; the key file is secret.
#[test]
fn secured_kraft_node() {
    let text = include_str!("../../inventories/secure.yaml");
    let inv = inventory::parse(Path::new("inventories/secure.yaml"), text).unwrap();
    let no_facts = vec![Default::default(); inv.hosts.len()];
    let ids = crate::engine::plan::resolve_ids(&inv, &no_facts).unwrap();
    crate::security::install(crate::security::Material::placeholder(&inv));
    let f = files(&inv, &ids, 1, InitSystem::Systemd);
    let sp = &f["/etc/kafka/server.properties"];
    let p = crate::quote::parse_properties(&sp.content);
    assert_eq!(
        p["listener.security.protocol.map"],
        "CLIENT:SASL_SSL,BROKER:SASL_SSL,CONTROLLER:SASL_SSL"
    );
    assert_eq!(
        p["listeners"],
        "CLIENT://10.0.0.12:9092,BROKER://10.0.0.12:9094,CONTROLLER://10.0.0.12:9093"
    );
    assert_eq!(
        p["advertised.listeners"],
        "CLIENT://kafka2.example.com:9092,BROKER://10.0.0.12:9094"
    );
    assert_eq!(p["inter.broker.listener.name"], "BROKER");
    assert_eq!(p["controller.listener.names"], "CONTROLLER");
    assert_eq!(p["ssl.keystore.type"], "PEM");
    assert_eq!(p["ssl.keystore.location"], "/etc/kafka/tls/server.pem");
    assert_eq!(p["sasl.mechanism.inter.broker.protocol"], "SCRAM-SHA-512");
    assert_eq!(p["sasl.mechanism.controller.protocol"], "PLAIN");
    assert_eq!(
        p["listener.name.broker.scram-sha-512.sasl.jaas.config"],
        "org.apache.kafka.common.security.scram.ScramLoginModule required \
         username=\"broker\" password=\"<password of broker>\";"
    );
    assert_eq!(
        p["listener.name.controller.plain.sasl.jaas.config"],
        "org.apache.kafka.common.security.plain.PlainLoginModule required \
         username=\"broker\" password=\"<password of broker>\" \
         user_broker=\"<password of broker>\" user_admin=\"<password of admin>\";"
    );
    assert_eq!(p["super.users"], "User:admin;User:broker");
    assert_eq!(p["authorizer.class.name"], STANDARD_AUTHORIZER);
    assert_eq!((sp.mode, sp.group.as_str()), (0o640, "kafka"));
    assert!(!mask_secrets(&sp.content).contains("<password of"));

    let key = &f["/etc/kafka/tls/server.pem"];
    assert!(key.secret && key.mode == 0o640 && key.owner == "root" && key.group == "kafka");
    assert!(key.content.starts_with("<private key of kafka2"));
    let ca = &f["/etc/kafka/tls/ca.pem"];
    assert!(!ca.secret && ca.mode == 0o644);
}

/// The same cluster in ZooKeeper mode: no controller listener or login, the ZooKeeper-mode
/// authorizer, the same super users.
#[test]
fn secured_zookeeper_mode_broker() {
    let text = include_str!("../../inventories/secure-zookeeper.yaml");
    let inv = inventory::parse(Path::new("inventories/secure-zookeeper.yaml"), text).unwrap();
    let no_facts = vec![Default::default(); inv.hosts.len()];
    let ids = crate::engine::plan::resolve_ids(&inv, &no_facts).unwrap();
    crate::security::install(crate::security::Material::placeholder(&inv));
    let f = files(&inv, &ids, 1, InitSystem::Systemd);
    let p = crate::quote::parse_properties(&f["/etc/kafka/server.properties"].content);
    assert_eq!(
        p["listener.security.protocol.map"],
        "CLIENT:SASL_SSL,BROKER:SASL_SSL"
    );
    assert_eq!(
        p["listeners"],
        "CLIENT://10.0.0.12:9092,BROKER://10.0.0.12:9094"
    );
    assert_eq!(p["inter.broker.listener.name"], "BROKER");
    assert_eq!(p["authorizer.class.name"], ACL_AUTHORIZER);
    assert_eq!(p["super.users"], "User:admin;User:broker");
    assert_eq!(
        p["zookeeper.connect"],
        "10.0.0.11:2181,10.0.0.12:2181,10.0.0.13:2181"
    );
    assert!(
        p.keys().all(|k| !k.contains("controller")),
        "{:?}",
        p.keys().collect::<Vec<_>>()
    );
    // zookeeper_tls: the brokers' ZooKeeper client over TLS with the host's certificate...
    assert_eq!(p["zookeeper.ssl.client.enable"], "true");
    assert_eq!(
        p["zookeeper.clientCnxnSocket"],
        "org.apache.zookeeper.ClientCnxnSocketNetty"
    );
    assert_eq!(
        p["zookeeper.ssl.keystore.location"],
        "/etc/kafka/tls/server.pem"
    );
    assert_eq!(p["zookeeper.ssl.truststore.type"], "PEM");
    // ...and ZooKeeper serving TLS only on its client port, and between members.
    let z = crate::quote::parse_properties(&f["/etc/zookeeper/zoo.cfg"].content);
    assert_eq!(z["secureClientPort"], "2181");
    assert!(!z.contains_key("clientPort"), "{z:?}");
    assert_eq!(z["ssl.clientAuth"], "need");
    assert_eq!(z["sslQuorum"], "true");
    assert_eq!(
        z["ssl.quorum.keyStore.location"],
        "/etc/zookeeper/tls/server.pem"
    );
    assert_eq!(z["ssl.trustStore.location"], "/etc/zookeeper/tls/ca.pem");
    let key = &f["/etc/zookeeper/tls/server.pem"];
    assert!(key.secret && key.mode == 0o640 && key.group == "zookeeper");
    assert_eq!(key.restarts, Some(Service::ZooKeeper));
    assert!(f.contains_key("/etc/zookeeper/tls/ca.pem"));
}

#[test]
fn jaas_values_round_trip_quotes_and_backslashes() {
    assert_eq!(crate::quote::jaas(r#"a"b\c"#), r#""a\"b\\c""#);
    assert_eq!(crate::quote::jaas("plain"), "\"plain\"");
}
