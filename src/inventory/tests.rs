//! Every validation rule, with its message and its line:column.

use super::*;

const GOOD: &str = "\
hosts:
  n1:
    address: 10.0.0.1
  n2:
    address: 10.0.0.2
  n3:
    address: 10.0.0.3
groups:
  zookeeper: [n1, n2, n3]
  kafka: [n1, n2, n3]
";

fn errors(text: &str) -> Vec<Diag> {
    match parse(Path::new("inv.yaml"), text) {
        Ok(_) => panic!("expected an error for:\n{text}"),
        Err(e) => e.diags,
    }
}

/// Asserts exactly one error whose message contains `msg`, at `line:col`.
fn assert_error(text: &str, msg: &str, line: u64, col: u64) {
    let diags = errors(text);
    let hit: Vec<_> = diags.iter().filter(|d| d.message.contains(msg)).collect();
    assert_eq!(
        hit.len(),
        1,
        "want one error containing {msg:?}, got {diags:#?}"
    );
    let d = hit[0];
    assert_eq!(d.severity, Severity::Error);
    assert_eq!((d.line, d.column), (line, col), "location of {msg:?}: {d}");
    assert!(d.hint.is_some(), "every error has a hint: {d}");
    assert!(
        d.to_string()
            .starts_with(&format!("inv.yaml:{line}:{col}: error: ")),
        "{d}"
    );
}

#[test]
fn reference_inventory_resolves_with_defaults() {
    let inv = parse(Path::new("inv.yaml"), GOOD).unwrap();
    assert_eq!(inv.hosts.len(), 3);
    assert!(inv.warnings.is_empty(), "{:?}", inv.warnings);
    assert_eq!(inv.zookeeper.client_port, 2181);
    assert_eq!(inv.zookeeper.version, DEFAULT_ZOOKEEPER_VERSION);
    assert_eq!(inv.kafka.version, DEFAULT_KAFKA_VERSION);
    assert_eq!(inv.kafka.default_replication_factor, 3);
    assert_eq!(inv.kafka.min_insync_replicas, 2);
    assert_eq!(
        inv.zookeeper_connect(),
        "10.0.0.1:2181,10.0.0.2:2181,10.0.0.3:2181"
    );
    assert_eq!(inv.hosts[0].ssh.user, "root");
    assert_eq!(inv.hosts[0].ssh.port, 22);
    assert!(inv.hosts.iter().all(|h| h.in_kafka && h.in_zookeeper));
}

#[test]
fn published_example_is_valid() {
    let text = include_str!("../../inventories/example.yaml");
    // The example names a key file that only exists on a real operator machine.
    let text = text.replace("  key: ~/.ssh/id_ed25519", "");
    let inv = parse(Path::new("inventories/example.yaml"), &text).unwrap();
    assert_eq!(inv.hosts[0].myid, Some(1));
    assert_eq!(inv.hosts[2].rack.as_deref(), Some("rack-c"));
    assert_eq!(inv.hosts[2].kafka.properties["num.io.threads"], "16");
}

#[test]
fn racks_are_on_every_broker_or_none() {
    let racked = GOOD
        .replace("10.0.0.1\n", "10.0.0.1\n    rack: eu-west-1a\n")
        .replace("10.0.0.2\n", "10.0.0.2\n    rack: eu-west-1b\n")
        .replace("10.0.0.3\n", "10.0.0.3\n    rack: eu-west-1a\n");
    let inv = parse(Path::new("inv.yaml"), &racked).unwrap();
    let racks: Vec<_> = inv.hosts.iter().map(|h| h.rack.as_deref()).collect();
    assert_eq!(
        racks,
        [Some("eu-west-1a"), Some("eu-west-1b"), Some("eu-west-1a")]
    );
    assert!(
        parse(Path::new("inv.yaml"), GOOD).unwrap().hosts[0]
            .rack
            .is_none()
    );
    // A mix: Kafka's rack-aware assignment would refuse to place replicas.
    let mixed = GOOD.replace("10.0.0.2\n", "10.0.0.2\n    rack: r1\n");
    assert_error(
        &mixed,
        "host n2 sets a rack but broker(s) n1, n3 do not",
        10,
        3,
    );
    // Only brokers have racks, and a rack is a plain name.
    let not_a_broker = racked.replace("kafka: [n1, n2, n3]", "kafka: [n1, n2]");
    assert_error(
        &not_a_broker,
        "host n3 sets a rack but is not in group kafka",
        10,
        11,
    );
    let spaced = racked.replace("rack: eu-west-1b", "rack: \"eu west\"");
    assert_error(
        &spaced,
        "host n2: rack `eu west` is not a plain name",
        7,
        11,
    );
    // broker.rack is clusterctl's: a property setting it is refused.
    let prop = format!("{GOOD}kafka:\n  properties:\n    broker.rack: r1\n");
    let d = errors(&prop);
    assert!(
        d.iter().any(|d| d
            .message
            .contains("sets `broker.rack`, which clusterctl manages")
            && d.hint.as_deref() == Some("set hosts.<name>.rack instead")),
        "{d:#?}"
    );
}

#[test]
fn unknown_key() {
    let text = GOOD.replace("    address: 10.0.0.2", "    adress: 10.0.0.2");
    assert_error(&text, "unknown field `adress`", 5, 5);
}

#[test]
fn wrong_type() {
    let text = format!("{GOOD}kafka:\n  port: lots\n");
    let d = &errors(&text)[0];
    assert_eq!((d.line, d.column), (12, 9), "{d}");
}

#[test]
fn duplicate_host() {
    let text = GOOD.replace("  n3:\n", "  n1:\n");
    let d = &errors(&text)[0];
    assert!(d.message.contains("duplicate"), "{d}");
    assert_eq!(d.line, 6, "{d}");
}

#[test]
fn duplicate_address() {
    let text = GOOD.replace("10.0.0.3", "10.0.0.1");
    assert_error(&text, "same address 10.0.0.1 as host n1", 7, 14);
}

#[test]
fn duplicate_and_out_of_range_ids() {
    let text = GOOD
        .replace("10.0.0.1\n", "10.0.0.1\n    myid: 7\n    broker_id: 4\n")
        .replace("10.0.0.2\n", "10.0.0.2\n    myid: 7\n    broker_id: 4\n")
        .replace("10.0.0.3\n", "10.0.0.3\n    myid: 256\n");
    assert_error(&text, "myid 7 is already used by host n1", 8, 11);
    assert_error(&text, "broker_id 4 is already used by host n1", 9, 16);
    assert_error(&text, "myid 256 is out of range", 12, 11);
}

#[test]
fn host_in_no_group() {
    let text = GOOD
        .replace("kafka: [n1, n2, n3]", "kafka: [n1, n2]")
        .replace("zookeeper: [n1, n2, n3]", "zookeeper: [n1, n2]");
    // Kept for apply to retire what clusterctl ran there: a warning at the host, not an error.
    let inv = parse(Path::new("inv.yaml"), &text).unwrap();
    let w: Vec<String> = inv.warnings.iter().map(|w| w.to_string()).collect();
    assert!(
        w.iter().any(|w| w.starts_with(
            "inv.yaml:6:3: warning: host n3 is in no group: apply stops and disables"
        )),
        "{w:?}"
    );
    assert!(!inv.host("n3").unwrap().in_kafka);
}

#[test]
fn group_names_unknown_host() {
    let text = GOOD.replace("kafka: [n1, n2, n3]", "kafka: [n1, n2, n3, n4]");
    assert_error(&text, "names `n4`, which is not a host", 10, 23);
}

#[test]
fn replication_factor_above_brokers() {
    let text = GOOD.replace("kafka: [n1, n2, n3]", "kafka: [n1, n2]")
        + "kafka:\n  offsets_topic_replication_factor: 3\n";
    assert_error(
        &text,
        "kafka.offsets_topic_replication_factor is 3 but group kafka has only 2 broker(s)",
        12,
        37,
    );
}

#[test]
fn port_out_of_range_and_clash() {
    let text = format!("{GOOD}zookeeper:\n  client_port: 70000\n  peer_port: 9092\n");
    assert_error(&text, "zookeeper.client_port 70000 is out of range", 12, 16);
    assert_error(
        &text,
        "kafka.port 9092 is the same port as zookeeper.peer_port",
        9,
        3,
    );
}

#[test]
fn missing_key_file() {
    let text = format!("ssh:\n  key: /nonexistent/id_ed25519\n{GOOD}");
    assert_error(
        &text,
        "ssh key file /nonexistent/id_ed25519 does not exist",
        2,
        8,
    );
}

#[test]
fn unknown_jump_host() {
    let text = GOOD.replace("10.0.0.2\n", "10.0.0.2\n    ssh:\n      jump: bastion\n");
    assert_error(&text, "jump host `bastion` is not a host", 7, 13);
}

#[test]
fn even_and_single_ensembles_warn() {
    let four = GOOD
        .replace(
            "  n3:\n    address: 10.0.0.3\n",
            "  n3:\n    address: 10.0.0.3\n  n4:\n    address: 10.0.0.4\n",
        )
        .replace("zookeeper: [n1, n2, n3]", "zookeeper: [n1, n2, n3, n4]")
        .replace("kafka: [n1, n2, n3]", "kafka: [n1, n2, n3, n4]");
    let inv = parse(Path::new("inv.yaml"), &four).unwrap();
    assert_eq!(inv.warnings.len(), 1);
    assert!(
        inv.warnings[0].message.contains("even-sized"),
        "{}",
        inv.warnings[0]
    );
    let one = GOOD.replace("zookeeper: [n1, n2, n3]", "zookeeper: [n1]");
    let inv = parse(Path::new("inv.yaml"), &one).unwrap();
    assert!(
        inv.warnings[0].message.contains("1-node"),
        "{}",
        inv.warnings[0]
    );
}

#[test]
fn bad_version_and_relative_dir() {
    let text = format!("{GOOD}kafka:\n  version: latest\n  log_dirs: [data]\n");
    assert_error(
        &text,
        "kafka.version `latest` is not a release version",
        12,
        12,
    );
    assert_error(&text, "`data` is not an absolute path", 13, 13);
}

#[test]
fn jdk_method_needs_its_setting() {
    let text = format!("{GOOD}jdk:\n  method: tarball\n");
    assert_error(
        &text,
        "jdk.method is tarball but jdk.tarball is not set",
        12,
        11,
    );
}

#[test]
fn all_errors_are_reported_at_once() {
    let text = GOOD
        .replace("10.0.0.3", "10.0.0.1")
        .replace("kafka: [n1, n2, n3]", "kafka: [n1, n2, n9]");
    assert!(errors(&text).len() >= 2);
}

const MIGRATING: &str = "\
hosts:
  n1:
    address: 10.0.0.1
  n2:
    address: 10.0.0.2
  n3:
    address: 10.0.0.3
  c1:
    address: 10.0.0.11
groups:
  zookeeper: [n1, n2, n3]
  kafka: [n1, n2, n3]
  controller: [c1]
";

#[test]
fn controllers_beside_zookeeper_are_a_migration() {
    let inv = parse(Path::new("inv.yaml"), MIGRATING).unwrap();
    assert!(inv.kafka.migrating);
    // ZooKeeper holds the metadata until the migration is finalized.
    assert!(!inv.kafka.kraft);
    assert!(!inv.kafka.dynamic_quorum);
    assert_eq!(inv.kafka.stage, None);
    assert!(!parse(Path::new("inv.yaml"), GOOD).unwrap().kafka.migrating);
}

#[test]
fn a_migration_needs_kafka_39_and_controllers_of_their_own() {
    assert_error(
        &MIGRATING.replace("  controller: [c1]", "  controller: [n1]"),
        "host n1 is in groups.kafka and groups.controller of a cluster being migrated",
        13,
        16,
    );
    assert_error(
        &format!("{MIGRATING}kafka:\n  version: 3.8.1\n"),
        "a migration to KRaft, which needs Kafka 3.9 (kafka.version is 3.8.1)",
        15,
        12,
    );
}

#[test]
fn a_migration_on_the_brokers_hosts_needs_separate_controller_processes() {
    let beside = MIGRATING.replace("  controller: [c1]", "  controller: [n1, n2, n3]");
    assert_error(
        &format!("{beside}kafka:\n  controller_process: combined\n"),
        "host n2 is in groups.kafka and groups.controller of a cluster being migrated",
        15,
        23,
    );
    let inv = parse(
        Path::new("inv.yaml"),
        &format!("{beside}kafka:\n  controller_process: separate\n"),
    )
    .unwrap();
    assert!(inv.kafka.migrating);
    let names: Vec<&str> = inv.hosts.iter().map(|h| h.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "n1",
            "n1-controller",
            "n2",
            "n2-controller",
            "n3",
            "n3-controller",
            "c1"
        ]
    );
    let (broker, side) = (&inv.hosts[0], &inv.hosts[1]);
    assert!(broker.in_kafka && broker.in_zookeeper && !broker.in_controller);
    assert_eq!(broker.side_of, None);
    assert_eq!(broker.kafka_name(), "kafka");
    assert!(side.in_controller && !side.in_kafka && !side.in_zookeeper);
    assert_eq!(side.side_of.as_deref(), Some("n1"));
    assert_eq!(
        (side.address.as_str(), &side.ssh.host),
        ("10.0.0.1", &broker.ssh.host)
    );
    assert_eq!(side.kafka_name(), "kafka-controller");
    assert_eq!(
        side.server_properties(),
        "/etc/kafka-controller/server.properties"
    );
    assert_eq!(inv.kafka_log_dirs(side), ["/var/lib/kafka-controller/data"]);
    assert_eq!(inv.kafka_log_dirs(broker), ["/var/lib/kafka/data"]);
    assert_eq!(inv.controller_hosts().count(), 3);
    assert_eq!(inv.kafka_hosts().count(), 3);
}

#[test]
fn a_separate_controller_may_pin_its_id_and_needs_a_free_name() {
    let kraft = GOOD.replace(
        "  zookeeper: [n1, n2, n3]\n",
        "  controller: [n1, n2, n3]\n",
    ) + "kafka:\n  controller_process: separate\n";
    let pinned = kraft.replace(
        "    address: 10.0.0.1\n",
        "    address: 10.0.0.1\n    controller_id: 3007\n",
    );
    let inv = parse(Path::new("inv.yaml"), &pinned).unwrap();
    assert_eq!(inv.hosts[0].controller_id, None);
    assert_eq!(inv.hosts[1].controller_id, Some(3007));
    assert!(inv.kafka.kraft);
    // Combined, the same pin is refused: node.id is the broker's.
    assert_error(
        &pinned.replace("separate", "combined"),
        "host n1 pins a controller_id but is not a dedicated controller",
        4,
        20,
    );
    let taken = kraft.replace(
        "  n3:\n    address: 10.0.0.3\n",
        "  n3:\n    address: 10.0.0.3\n  n1-controller:\n    address: 10.0.0.9\n",
    );
    assert_error(
        &taken,
        "host name n1-controller is the name clusterctl gives the controller beside host n1",
        8,
        3,
    );
}

#[test]
fn kafka_4_needs_kraft() {
    let text = format!("{GOOD}kafka:\n  version: 4.4.0\n");
    assert_error(&text, "Kafka 4.4.0 has no ZooKeeper mode", 12, 12);
    let kraft = text.replace(
        "  zookeeper: [n1, n2, n3]\n",
        "  controller: [n1, n2, n3]\n",
    );
    let inv = parse(Path::new("inv.yaml"), &kraft).unwrap();
    assert!(inv.kafka.kraft && inv.hosts.iter().all(|h| h.in_controller && h.in_kafka));
}

#[test]
fn controller_id_only_on_dedicated_controllers() {
    let text = GOOD
        .replace(
            "  zookeeper: [n1, n2, n3]\n",
            "  controller: [n1, n2, n3]\n",
        )
        .replace("10.0.0.1\n", "10.0.0.1\n    controller_id: 7\n");
    assert_error(
        &text,
        "host n1 pins a controller_id but is not a dedicated controller",
        4,
        20,
    );
}

#[test]
fn bad_cluster_id() {
    let text = format!("{GOOD}kafka:\n  cluster_id: not-an-id\n");
    assert_error(
        &text,
        "kafka.cluster_id `not-an-id` is not a Kafka cluster id",
        12,
        15,
    );
}

#[test]
fn declared_topics() {
    let text = format!(
        "{GOOD}topics:\n  orders:\n    partitions: 6\n    configs:\n      retention.ms: 60000\n  bad/name:\n    replication_factor: 4\n  __mine: {{}}\n"
    );
    assert_error(&text, "topic name `bad/name` is not valid", 16, 3);
    assert_error(
        &text,
        "topic bad/name: replication_factor 4 but group kafka has 3 broker(s)",
        17,
        25,
    );
    assert_error(&text, "topic `__mine` is internal", 18, 3);
    let ok = format!(
        "{GOOD}topics:\n  orders:\n    partitions: 6\n    configs:\n      retention.ms: 60000\n"
    );
    let inv = parse(Path::new("inv.yaml"), &ok).unwrap();
    let t = &inv.topics[0];
    assert_eq!(
        (t.name.as_str(), t.partitions, t.replication_factor),
        ("orders", 6, 3)
    );
    assert_eq!(t.configs["retention.ms"], "60000");
}

#[test]
fn properties_cannot_override_what_clusterctl_manages() {
    let text = format!(
        "{GOOD}kafka:\n  properties:\n    broker.id: 7\n    auto.create.topics.enable: false\nzookeeper:\n  properties:\n    server.9: 10.0.0.9:2888:3888\n"
    );
    assert_error(
        &text,
        "kafka.properties sets `broker.id`, which clusterctl manages",
        13,
        5,
    );
    assert_error(
        &text,
        "zookeeper.properties sets `server.9`, which clusterctl manages",
        17,
        5,
    );
    let host = GOOD.replace(
        "10.0.0.2\n",
        "10.0.0.2\n    kafka:\n      properties:\n        listeners: PLAINTEXT://0.0.0.0:9092\n",
    );
    assert_error(
        &host,
        "kafka.properties sets `listeners`, which clusterctl manages",
        8,
        9,
    );
    let errs = errors(&text);
    let d = errs
        .iter()
        .find(|d| d.message.contains("broker.id"))
        .unwrap();
    assert_eq!(
        d.hint.as_deref(),
        Some("set hosts.<name>.broker_id instead")
    );
}

const NISSHI: &str = "\
flavor: nisshi
hosts:
  pg:
    address: 10.0.0.9
  b1:
    address: 10.0.0.1
  b2:
    address: 10.0.0.2
groups:
  storage: [pg]
  kafka: [b1, b2]
";

#[test]
fn nisshi_inventory_resolves_with_defaults() {
    let inv = parse(Path::new("inv.yaml"), NISSHI).unwrap();
    assert_eq!(inv.flavor, Flavor::Nisshi);
    let n = inv.nisshi.as_ref().unwrap();
    assert_eq!(n.version, DEFAULT_NISSHI_VERSION);
    assert_eq!((n.port, n.cluster_id.as_str()), (9092, "nisshi_cluster"));
    assert_eq!(n.storage, Storage::ManagedPostgres);
    assert_eq!(n.binary, BinarySource::Cargo);
    assert_eq!(inv.storage_host().unwrap().name, "pg");
    assert_eq!(inv.kafka_hosts().count(), 2);
    // Topics default to no replicas: nisshi keeps none.
    assert_eq!(inv.kafka.default_replication_factor, 1);
    assert!(inv.warnings.is_empty(), "{:?}", inv.warnings);
}

#[test]
fn nisshi_verbose_log_warns() {
    for (log, warns) in [
        ("warn", false),
        ("error", false),
        ("warn,tokio_postgres=debug", false),
        ("info", true),
        ("warn,nisshi_storage_sql=debug", true),
        ("nisshi_broker", true),
        ("DEBUG", true),
    ] {
        let inv = parse(
            Path::new("inv.yaml"),
            &format!("{NISSHI}nisshi:\n  log: \"{log}\"\n"),
        )
        .unwrap();
        assert_eq!(
            inv.warnings.len(),
            usize::from(warns),
            "{log}: {:?}",
            inv.warnings
        );
        if warns {
            let w = &inv.warnings[0];
            assert!(w.message.contains("every span"), "{w}");
            assert_eq!((w.line, w.column), (13, 8), "{w}");
        }
    }
}

#[test]
fn nisshi_rejects_jvm_settings_and_bad_storage() {
    assert_error(
        &format!("{NISSHI}kafka:\n  heap: 1g\n"),
        "`kafka:` settings belong to the jvm flavor",
        13,
        3,
    );
    assert_error(
        &NISSHI.replace(
            "  kafka: [b1, b2]\n",
            "  kafka: [b1, b2]\n  zookeeper: [b1]\n",
        ),
        "groups.zookeeper has no meaning",
        12,
        15,
    );
    assert_error(
        &NISSHI.replace("  storage: [pg]\n", ""),
        "exactly one host in groups.storage",
        10,
        3,
    );
    assert_error(
        &format!("{NISSHI}nisshi:\n  storage: sqlite\n"),
        "sqlite storage with 2 brokers",
        13,
        12,
    );
    assert_error(
        &format!("{NISSHI}nisshi:\n  storage_url: postgres://u:p@db/x\n"),
        "groups.storage and nisshi.storage_url are both set",
        10,
        13,
    );
    assert_error(
        &format!("{NISSHI}nisshi:\n  url: https://example.org/nisshi\n"),
        "nisshi.url needs nisshi.sha256",
        13,
        8,
    );
    assert_error(
        &format!("{NISSHI}nisshi:\n  environment:\n    STORAGE_ENGINE: x\n"),
        "sets STORAGE_ENGINE, which clusterctl manages",
        14,
        5,
    );
    assert_error(
        &format!("{NISSHI}topics:\n  t:\n    replication_factor: 3\n"),
        "nisshi keeps no replicas",
        14,
        25,
    );
    assert_error(
        &NISSHI.replace(
            "    address: 10.0.0.1\n",
            "    address: 10.0.0.1\n    broker_id: 4\n",
        ),
        "nisshi brokers have no broker ids",
        7,
        16,
    );
    assert_error(
        &NISSHI.replace(
            "    address: 10.0.0.1\n",
            "    address: 10.0.0.1\n    rack: r1\n",
        ),
        "nisshi brokers have no racks",
        7,
        11,
    );
    // A nisshi section without the flavor is a mistake worth naming.
    assert_error(
        &format!("{GOOD}nisshi:\n  version: 0.8.1\n"),
        "`nisshi:` settings need `flavor: nisshi`",
        12,
        3,
    );
}

#[test]
fn an_external_storage_url_is_never_echoed() {
    let diags = errors(&format!(
        "{}nisshi:\n  storage_url: \"mysql://u:hunter2@db/x\"\n",
        NISSHI
            .replace("  storage: [pg]\n", "")
            .replace("  pg:\n    address: 10.0.0.9\n", "")
    ));
    assert!(!diags.is_empty());
    assert!(
        diags.iter().all(|d| !d.to_string().contains("hunter2")),
        "{diags:#?}"
    );
}

#[test]
fn published_nisshi_example_is_valid() {
    let text = include_str!("../../inventories/nisshi.yaml");
    let text = text.replace("  key: ~/.ssh/id_ed25519", "");
    let inv = parse(Path::new("inventories/nisshi.yaml"), &text).unwrap();
    assert_eq!(inv.storage_host().unwrap().name, "pg1");
    assert_eq!(inv.kafka_hosts().count(), 3);
    assert_eq!(inv.topics[0].replication_factor, 1);
}

/// Every field that reaches a host, given a hostile value holding a control character: each
/// is refused at its own line and column (the value's, so the user finds it).
#[test]
fn control_characters_are_refused_wherever_they_are() {
    let cases: &[(&str, &str, u64, u64)] = &[
        // (inventory text after GOOD, what is named, line, column)
        (
            "kafka:\n  properties:\n    foo: \"x\\nbroker.id=7\"\n",
            "x\\nbroker.id=7",
            13,
            10,
        ),
        ("kafka:\n  properties:\n    \"a\\tb\": 1\n", "a\\tb", 13, 5),
        ("kafka:\n  jvm_opts: [\"-Dx=\\u0000\"]\n", "-Dx=\\0", 12, 14),
        (
            "zookeeper:\n  jvm_opts: \"-Da=1\\n-Db=2\"\n",
            "-Da=1\\n-Db=2",
            12,
            13,
        ),
        (
            "kafka:\n  properties:\n    banner: |\n      two\n      lines\n",
            "two\\nlines\\n",
            14,
            7,
        ),
        (
            "topics:\n  t:\n    configs:\n      cleanup.policy: \"compact\\r\"\n",
            "compact\\r",
            14,
            23,
        ),
        (
            "install_dir: \"/opt/\\x1b[31m\"\n",
            "/opt/\\u{1b}[31m",
            11,
            14,
        ),
    ];
    for (extra, shown, line, col) in cases {
        let text = format!("{GOOD}{extra}");
        let diags = errors(&text);
        let hit: Vec<_> = diags
            .iter()
            .filter(|d| d.message.contains("control character"))
            .collect();
        assert_eq!(hit.len(), 1, "{extra}: {diags:#?}");
        assert!(hit[0].message.contains(shown), "{extra}: {}", hit[0]);
        assert_eq!(
            (hit[0].line, hit[0].column),
            (*line, *col),
            "{extra}: {}",
            hit[0]
        );
        assert!(hit[0].hint.is_some());
    }
    // The host address (under hosts:, before the groups).
    let text = GOOD.replace("address: 10.0.0.2", "address: \"10.0.0.2\\n\"");
    let diags = errors(&text);
    assert!(
        diags
            .iter()
            .any(|d| d.message.contains("control character") && d.line == 5),
        "{diags:#?}"
    );
}

#[test]
fn heap_must_be_a_jvm_size() {
    for bad in ["1 g", "lots", "512mb", "-1g", "0m", "1g -XX:+Foo"] {
        let text = format!("{GOOD}kafka:\n  heap: \"{bad}\"\n");
        assert_error(&text, "is not a JVM memory size", 12, 9);
    }
    for good in ["512m", "2g", "2G", "1048576", "64k"] {
        let text = format!("{GOOD}kafka:\n  heap: {good}\n");
        assert_eq!(
            parse(Path::new("inv.yaml"), &text).unwrap().kafka.heap,
            good
        );
    }
    let text = GOOD.replace(
        "    address: 10.0.0.1\n",
        "    address: 10.0.0.1\n    zookeeper:\n      heap: big\n",
    );
    assert_error(
        &text,
        "zookeeper.heap `big` is not a JVM memory size",
        5,
        13,
    );
}

#[test]
fn jvm_opts_are_a_list_and_a_string_is_split_with_a_warning() {
    let text = format!("{GOOD}kafka:\n  jvm_opts: [\"-Dx=a b\", -XX:+AlwaysPreTouch]\n");
    let inv = parse(Path::new("inv.yaml"), &text).unwrap();
    assert_eq!(inv.kafka.jvm_opts, ["-Dx=a b", "-XX:+AlwaysPreTouch"]);
    assert!(inv.warnings.is_empty(), "{:?}", inv.warnings);

    let text = format!("{GOOD}kafka:\n  jvm_opts: \"-Dx='a b' -XX:+AlwaysPreTouch\"\n");
    let inv = parse(Path::new("inv.yaml"), &text).unwrap();
    assert_eq!(inv.kafka.jvm_opts, ["-Dx=a b", "-XX:+AlwaysPreTouch"]);
    assert_eq!(inv.warnings.len(), 1);
    let w = &inv.warnings[0];
    assert!(
        w.message
            .contains("split as shell words into 2 argument(s): `-Dx=a b`, `-XX:+AlwaysPreTouch`"),
        "{w}"
    );
    assert_eq!((w.line, w.column), (12, 13));

    let text = format!("{GOOD}kafka:\n  jvm_opts: \"-Dx='unclosed\"\n");
    assert_error(&text, "cannot be split into arguments", 12, 13);
    let text = format!("{GOOD}kafka:\n  jvm_opts: [-Xss1m, \"touch /tmp/x\"]\n");
    assert_error(&text, "`touch /tmp/x` is not a JVM option", 12, 13);
    // A shell would read this line as one word: it stays one literal argument (whose
    // rendering is proven inert in render::tests), and the user is told how it was read.
    let text = format!("{GOOD}kafka:\n  jvm_opts: \"-Dx=1'; touch /tmp/x; echo '\"\n");
    let inv = parse(Path::new("inv.yaml"), &text).unwrap();
    assert_eq!(inv.kafka.jvm_opts, ["-Dx=1; touch /tmp/x; echo "]);
    assert!(inv.warnings[0].message.contains("into 1 argument(s)"));
}

#[test]
fn host_paths_and_addresses_are_plain() {
    assert_error(
        &format!("{GOOD}install_dir: \"/opt/my apps\"\n"),
        "install_dir `/opt/my apps` is not an absolute path of plain characters",
        11,
        14,
    );
    assert_error(
        &format!("{GOOD}zookeeper:\n  data_dir: \"/data/zk:1\"\n"),
        "zookeeper.data_dir `/data/zk:1` is not an absolute path",
        12,
        13,
    );
    assert_error(
        &format!("{GOOD}kafka:\n  log_dirs: [\"/d1,/d2\"]\n"),
        "kafka.log_dirs entry `/d1,/d2`",
        12,
        13,
    );
    assert_error(
        &format!("{GOOD}jdk:\n  method: none\n  java_home: \"/usr/lib/jvm/$(id)\"\n"),
        "jdk.java_home",
        13,
        14,
    );
    assert_error(
        &GOOD.replace("address: 10.0.0.3", "address: \"n3;reboot\""),
        "address `n3;reboot` is not valid",
        7,
        14,
    );
    parse(
        Path::new("inv.yaml"),
        &GOOD.replace("address: 10.0.0.3", "address: kafka-3.dc1.example.com"),
    )
    .unwrap();
}

/// ~/.ssh/config fills what the inventory leaves unsaid; the inventory always wins.
#[test]
fn ssh_config_settings_under_the_inventory() {
    let cfg = "\
Host n1
    HostName 10.9.0.1
    User deploy
    Port 2222
    IdentityFile /keys/n1
    ConnectTimeout 3
Host n*
    User fallback
    UserKnownHostsFile /etc/ssh/cluster_known_hosts
    StrictHostKeyChecking accept-new
    ProxyJump ops@bastion.example:2200
Host 10.0.0.3
    Port 2203
    ProxyJump n1
";
    let text = GOOD.replace(
        "  n2:\n    address: 10.0.0.2\n",
        "  n2:\n    address: 10.0.0.2\n    ssh: { user: admin, port: 22, known_hosts: /kh }\n",
    );
    let inv = parse_with_ssh_config(Path::new("inv.yaml"), &text, cfg).unwrap();
    let n1 = &inv.hosts[0];
    assert_eq!(
        (n1.ssh.address.as_str(), n1.ssh.user.as_str(), n1.ssh.port),
        ("10.9.0.1", "deploy", 2222)
    );
    assert_eq!(
        n1.address, "10.0.0.1",
        "Kafka and ZooKeeper keep the inventory address"
    );
    assert_eq!(n1.ssh.key.as_deref(), Some(Path::new("/keys/n1")));
    assert_eq!(n1.ssh.connect_timeout, std::time::Duration::from_secs(3));
    assert!(n1.ssh.accept_new);
    let jump = n1.ssh.jump.as_ref().unwrap();
    assert_eq!(
        (jump.address.as_str(), jump.user.as_str(), jump.port),
        ("bastion.example", "ops", 2200)
    );
    assert_eq!(
        n1.ssh_from_config,
        [
            "User",
            "Port",
            "IdentityFile",
            "UserKnownHostsFile",
            "ConnectTimeout",
            "HostName",
            "StrictHostKeyChecking",
            "ProxyJump"
        ]
    );
    // The inventory's own settings win over every matching block.
    let n2 = &inv.hosts[1];
    assert_eq!((n2.ssh.user.as_str(), n2.ssh.port), ("admin", 22));
    assert_eq!(n2.ssh.known_hosts, Path::new("/kh"));
    // n3: its name's block (n*) first, then its address's; a jump to an inventory host
    // takes that host's settings.
    let n3 = &inv.hosts[2];
    assert_eq!((n3.ssh.user.as_str(), n3.ssh.port), ("fallback", 2203));
    assert_eq!(n3.ssh.jump.as_ref().unwrap().address, "bastion.example");
    // An inventory `jump` wins over ProxyJump.
    let text = GOOD.replace("hosts:\n", "ssh:\n  jump: n2\nhosts:\n");
    let inv = parse_with_ssh_config(Path::new("inv.yaml"), &text, cfg).unwrap();
    assert_eq!(inv.hosts[0].ssh.jump.as_ref().unwrap().host, "n2");
    // No config: the built-in defaults.
    let inv = parse_with_ssh_config(Path::new("inv.yaml"), GOOD, "").unwrap();
    assert_eq!(
        (inv.hosts[0].ssh.user.as_str(), inv.hosts[0].ssh.port),
        ("root", 22)
    );
    assert!(inv.hosts[0].ssh_from_config.is_empty());
}

#[test]
fn health_checks_are_tunnelled_behind_a_jump_host_unless_direct() {
    let bastion = GOOD.replace(
        "hosts:\n",
        "ssh:\n  jump: j\nhosts:\n  j:\n    address: 192.0.2.9\n",
    );
    let inv = parse(Path::new("inv.yaml"), &bastion).unwrap();
    let tunnelled: Vec<_> = inv
        .hosts
        .iter()
        .map(|h| (h.name.as_str(), h.tunnel_checks))
        .collect();
    assert_eq!(
        tunnelled,
        [("j", false), ("n1", true), ("n2", true), ("n3", true)]
    );
    let routes = inv.tunnels();
    assert_eq!(routes.len(), 3);
    assert!(routes.iter().all(|(_, jump)| jump.address == "192.0.2.9"));
    assert_eq!(routes[0].0, "10.0.0.1", "routed by the service address");

    // Global direct, one host back to tunnel.
    let text = bastion
        .replace("  jump: j\n", "  jump: j\n  health_checks: direct\n")
        .replace(
            "10.0.0.2\n",
            "10.0.0.2\n    ssh:\n      health_checks: tunnel\n",
        );
    let inv = parse(Path::new("inv.yaml"), &text).unwrap();
    let tunnelled: Vec<_> = inv
        .hosts
        .iter()
        .filter(|h| h.tunnel_checks)
        .map(|h| h.name.as_str())
        .collect();
    assert_eq!(tunnelled, ["n2"]);
    // Without a jump host nothing is tunnelled.
    assert!(
        parse(Path::new("inv.yaml"), GOOD)
            .unwrap()
            .tunnels()
            .is_empty()
    );
}

#[test]
fn health_checks_tunnel_needs_a_jump_host() {
    let text = GOOD.replace(
        "10.0.0.2\n",
        "10.0.0.2\n    ssh:\n      health_checks: tunnel\n",
    );
    assert_error(
        &text,
        "host n2: ssh.health_checks is tunnel but the host has no jump host",
        7,
        22,
    );
    let text = format!("ssh:\n  health_checks: tunnel\n{GOOD}");
    assert_error(
        &text,
        "ssh.health_checks is tunnel but no host has a jump host",
        2,
        18,
    );
    let text = format!("ssh:\n  health_checks: always\n{GOOD}");
    let diags = errors(&text);
    assert!(
        diags
            .iter()
            .any(|d| d.line == 2 && d.message.contains("tunnel") && d.message.contains("direct")),
        "{diags:#?}"
    );
}

#[test]
fn limits_are_checked_where_written() {
    let inv = parse(Path::new("inv.yaml"), GOOD).unwrap();
    assert_eq!(inv.kafka.limits, Limits::default());
    assert_eq!(inv.kafka.limits.nofile, DEFAULT_NOFILE);
    assert_eq!(inv.zookeeper.limits.memory_max, None);

    let text =
        format!("{GOOD}kafka:\n  heap: 1g\n  limits:\n    nofile: 65536\n    memory_max: 1536m\n");
    let inv = parse(Path::new("inv.yaml"), &text).unwrap();
    assert_eq!(
        inv.kafka.limits,
        Limits {
            nofile: 65536,
            memory_max: Some("1536M".into())
        }
    );

    let text = format!("{GOOD}kafka:\n  limits:\n    nofile: 100\n");
    assert_error(&text, "kafka.limits.nofile 100 is out of range", 13, 13);
    let text = format!("{GOOD}zookeeper:\n  limits:\n    memory_max: lots\n");
    assert_error(
        &text,
        "zookeeper.limits.memory_max `lots` is not a JVM memory size",
        13,
        17,
    );
    // At or below the heap (the default one, or a host's own) leaves the JVM no room.
    let text = format!("{GOOD}kafka:\n  limits:\n    memory_max: 512m\n");
    assert_error(
        &text,
        "kafka.limits.memory_max 512m is not above kafka's heap (512m)",
        13,
        17,
    );
    let text = GOOD.replace(
        "    address: 10.0.0.1\n",
        "    address: 10.0.0.1\n    kafka:\n      heap: 4g\n",
    ) + "kafka:\n  limits:\n    memory_max: 2g\n";
    let diags = errors(&text);
    assert!(
        diags
            .iter()
            .any(|d| d.message.contains("not above kafka's heap (4g)")),
        "{diags:#?}"
    );
    let text = format!("{GOOD}kafka:\n  limits:\n    nofiles: 1\n");
    assert!(errors(&text).iter().any(|d| d.message.contains("nofiles")));
}

const KRAFT: &str = "\
hosts:
  n1:
    address: 10.0.0.1
  n2:
    address: 10.0.0.2
  n3:
    address: 10.0.0.3
groups:
  controller: [n1, n2, n3]
  kafka: [n1, n2, n3]
kafka:
  version: 4.1.1
";

#[test]
fn published_zookeeper_mode_secure_example_is_valid() {
    let text = include_str!("../../inventories/secure-zookeeper.yaml");
    let inv = parse(Path::new("inventories/secure-zookeeper.yaml"), text).unwrap();
    assert!(inv.warnings.is_empty(), "{:?}", inv.warnings);
    assert!(!inv.kafka.kraft);
    let sec = inv.security.as_ref().unwrap();
    assert!(sec.zookeeper_tls && sec.controller.is_none());
    assert_eq!(sec.inter_broker.unwrap().protocol, Protocol::SaslSsl);
    // One binding per operation: three on the topic, one on the group prefix.
    assert_eq!(inv.acls.len(), 4);
}

#[test]
fn published_secure_example_is_valid() {
    let text = include_str!("../../inventories/secure.yaml");
    let inv = parse(Path::new("inventories/secure.yaml"), text).unwrap();
    assert!(inv.warnings.is_empty(), "{:?}", inv.warnings);
    let sec = inv.security.as_ref().unwrap();
    assert_eq!(sec.client.protocol, Protocol::SaslSsl);
    assert_eq!(sec.client.port, 9092);
    assert_eq!(sec.inter_broker.unwrap().port, 9094);
    assert_eq!(sec.controller.unwrap().port, 9093);
    assert_eq!(sec.sasl_mechanism, SaslMech::ScramSha512);
    assert_eq!(
        sec.tls,
        Some(Tls::Managed {
            dir: PathBuf::from("inventories/pki"),
            validity_days: 365
        })
    );
    let app = inv.users.iter().find(|u| u.name == "app").unwrap();
    assert_eq!(app.mechanism, SaslMech::ScramSha256);
    assert_eq!(app.password, SecretSource::Env("APP_PASSWORD".into()));
    assert_eq!(
        inv.users[0].password,
        SecretSource::File(PathBuf::from("inventories/secrets/admin.password"))
    );
    assert_eq!(inv.hosts[1].client_address(), "kafka2.example.com");
    assert_eq!(inv.acls.len(), 4);
    assert_eq!(
        inv.acls[3].to_string(),
        "User:app allow read on group app-* from *"
    );
    assert_eq!(inv.hosts[0].client_address(), "10.0.0.11");
}

#[test]
fn sasl_without_users() {
    let text = format!(
        "{KRAFT}security:\n  listeners:\n    client: {{ protocol: SASL_PLAINTEXT }}\n  admin_user: admin\n"
    );
    assert_error(
        &text,
        "a listener uses SASL but no users are declared",
        14,
        3,
    );
    assert_error(
        &text,
        "security.admin_user admin is not declared under users",
        16,
        15,
    );
}

#[test]
fn sasl_needs_admin_and_broker_users() {
    let text = format!(
        "{KRAFT}security:\n  listeners:\n    client: {{ protocol: SASL_PLAINTEXT }}\n    controller: {{ protocol: SASL_PLAINTEXT }}\nusers:\n  app: {{ password_env: APP }}\n"
    );
    assert_error(&text, "security.admin_user is not set", 14, 3);
    assert_error(&text, "security.inter_broker_user is not set", 14, 3);
}

#[test]
fn tls_without_certificates() {
    let text = format!("{KRAFT}security:\n  listeners:\n    client: {{ protocol: SSL }}\n");
    assert_error(
        &text,
        "no security.tls says where the certificates come from",
        14,
        3,
    );
}

#[test]
fn a_listener_port_used_twice() {
    let text = format!(
        "{KRAFT}security:\n  listeners:\n    inter_broker: {{ protocol: PLAINTEXT, port: 9093 }}\n"
    );
    assert_error(
        &text,
        "security.listeners.inter_broker uses port 9093, the same as kafka.controller_port",
        15,
        19,
    );
    let text = format!(
        "{KRAFT}security:\n  listeners:\n    inter_broker: {{ protocol: PLAINTEXT, port: 9092 }}\n"
    );
    assert_error(
        &text,
        "security.listeners.inter_broker uses port 9092, the same as security.listeners.client",
        15,
        19,
    );
    let text = format!("{KRAFT}security:\n  listeners:\n    inter_broker: {{ protocol: SSL }}\n");
    assert_error(&text, "needs its own port", 15, 19);
}

#[test]
fn unknown_protocol_and_mechanism() {
    let text = format!("{KRAFT}security:\n  listeners:\n    client: {{ protocol: TLS }}\n");
    let e = errors(&text);
    assert!(
        e[0].message.contains("unknown variant") && e[0].line == 15,
        "{e:#?}"
    );
    let text = format!("{KRAFT}security:\n  sasl_mechanism: GSSAPI\n");
    assert_error(&text, "security.sasl_mechanism \"GSSAPI\"", 14, 19);
}

#[test]
fn passwords_come_from_a_file_or_the_environment_only() {
    let base = format!(
        "{KRAFT}security:\n  listeners:\n    client: {{ protocol: SASL_PLAINTEXT }}\n  admin_user: admin\nusers:\n"
    );
    assert_error(
        &format!("{base}  admin: {{}}\n"),
        "users.admin has no password_file or password_env",
        18,
        3,
    );
    assert_error(
        &format!("{base}  admin: {{ password_file: a, password_env: B }}\n"),
        "users.admin has both password_file and password_env",
        18,
        44,
    );
    let e = errors(&format!("{base}  admin: {{ password: hunter2 }}\n"));
    assert!(e[0].message.contains("unknown field"), "{e:#?}");
    assert!(
        !e.iter().any(|d| d.to_string().contains("hunter2")),
        "a password written into the inventory is not echoed: {e:#?}"
    );
}

#[test]
fn users_without_security_and_security_outside_kraft() {
    let text = format!("{GOOD}users:\n  app: {{ password_env: APP }}\n");
    assert_error(
        &text,
        "users are declared but there is no `security` section",
        12,
        3,
    );
    let text = format!(
        "{MIGRATING}kafka:\n  version: 3.9.1\nsecurity:\n  listeners:\n    client: {{ protocol: PLAINTEXT }}\n"
    );
    assert_error(
        &text,
        "security is not supported during a migration to KRaft yet",
        17,
        3,
    );
    let text =
        format!("{GOOD}security:\n  listeners:\n    controller: {{ protocol: PLAINTEXT }}\n");
    assert_error(
        &text,
        "security.listeners.controller is for KRaft: a ZooKeeper-mode cluster has no controller listener",
        13,
        17,
    );
}

#[test]
fn zookeeper_tls_needs_zookeeper_mode_and_its_versions() {
    let kraft = format!("{KRAFT}security:\n  zookeeper_tls: true\n  tls: {{ ca: managed }}\n");
    assert_error(
        &kraft,
        "security.zookeeper_tls is for ZooKeeper mode",
        14,
        18,
    );
    let old = format!(
        "{GOOD}zookeeper:\n  version: 3.5.4\nsecurity:\n  zookeeper_tls: true\n  tls: {{ ca: managed }}\n"
    );
    assert_error(&old, "ZooKeeper's TLS needs ZooKeeper 3.5.5+", 14, 18);
    let no_tls = format!("{GOOD}security:\n  zookeeper_tls: true\n");
    assert_error(&no_tls, "zookeeper_tls is set, but no security.tls", 12, 3);
    let managed = format!(
        "{GOOD}zookeeper:\n  properties:\n    ssl.clientAuth: none\nsecurity:\n  zookeeper_tls: true\n  tls: {{ ca: managed }}\n"
    );
    assert_error(&managed, "which security.zookeeper_tls manages", 13, 5);
}

/// ZooKeeper mode: client and inter-broker listeners, no controller listener, and the
/// controller port is free for a listener.
#[test]
fn zookeeper_mode_is_secured_without_a_controller_listener() {
    let text = format!(
        "{GOOD}kafka:\n  version: 3.9.1\nsecurity:\n  listeners:\n    client: {{ protocol: SASL_SSL }}\n    \
         inter_broker: {{ protocol: SASL_SSL, port: 9093 }}\n  tls: {{ ca: managed }}\n  \
         admin_user: admin\n  inter_broker_user: broker\nusers:\n  admin: {{ password_env: A }}\n  \
         broker: {{ password_env: B }}\n"
    );
    let inv = parse(Path::new("inv.yaml"), &text).unwrap();
    let sec = inv.security.unwrap();
    assert_eq!(sec.controller, None);
    let names: Vec<&str> = sec.listeners().iter().map(|(n, _)| *n).collect();
    assert_eq!(names, ["CLIENT", "BROKER"]);
}

#[test]
fn security_keys_in_properties_are_refused() {
    let text = format!(
        "{KRAFT}  properties:\n    ssl.keystore.location: /x\nsecurity:\n  listeners:\n    client: {{ protocol: PLAINTEXT }}\n"
    );
    assert_error(
        &text,
        "sets `ssl.keystore.location`, which the security section",
        14,
        5,
    );
}

#[test]
fn old_kafka_is_refused_for_scram() {
    let text = format!(
        "{GOOD}kafka:\n  version: 2.6.3\nsecurity:\n  listeners:\n    client: {{ protocol: SASL_PLAINTEXT }}\n  \
         admin_user: admin\nusers:\n  admin: {{ password_env: A }}\n"
    );
    assert_error(&text, "SCRAM users need Kafka 2.7+", 14, 3);
}

#[test]
fn old_kafka_is_refused_for_tls() {
    let text = format!(
        "{}security:\n  listeners:\n    client: {{ protocol: SSL }}\n  tls: {{ ca: managed }}\n",
        KRAFT.replace("4.1.1", "3.4.1")
    );
    assert_error(&text, "TLS listeners need Kafka 3.5+", 14, 3);
}

#[test]
fn a_secret_file_holds_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("pw");
    std::fs::write(&p, "s3cret\n").unwrap();
    assert_eq!(SecretSource::File(p.clone()).read("u").unwrap(), "s3cret");
    std::fs::write(&p, "a\nb\n").unwrap();
    let e = SecretSource::File(p.clone())
        .read("u")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("users.u: the password holds a control character"),
        "{e}"
    );
    let e = SecretSource::Env("CLUSTERCTL_TEST_UNSET_VAR".into())
        .read("u")
        .unwrap_err()
        .to_string();
    assert!(e.contains("$CLUSTERCTL_TEST_UNSET_VAR is not set"), "{e}");
}

#[test]
fn acl_entries_are_checked() {
    let base = format!(
        "{KRAFT}security:\n  listeners:\n    client: {{ protocol: SASL_PLAINTEXT }}\n  admin_user: admin\nusers:\n  admin: {{ password_env: A }}\nacls:\n"
    );
    assert_error(
        &format!("{base}  bob:\n    - {{ topic: t, operations: [read] }}\n"),
        "acls.bob names a user not declared under users",
        20,
        3,
    );
    assert_error(
        &format!("{base}  admin:\n    - {{ topic: t, group: g, operations: [read] }}\n"),
        "acls.admin: an entry names 2 resources",
        21,
        7,
    );
    assert_error(
        &format!("{base}  admin:\n    - {{ topic: t, operations: [reed] }}\n"),
        "acls.admin: unknown operation \"reed\"",
        21,
        31,
    );
    assert_error(
        &format!("{base}  admin:\n    - {{ topic: t, pattern: glob, operations: [read] }}\n"),
        "pattern \"glob\" is not literal or prefixed",
        21,
        28,
    );
}
