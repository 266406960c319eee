//! Semantic checks and resolution of defaults. Every rule reports file:line:column and a hint;
//! all problems are collected so the user fixes them in one pass.

use super::diag::Diags;
use super::model::{self, Flavor, HealthChecks, RawInventory, S, SshSettings};
use super::*;
use serde_saphyr::Location;
use std::collections::{BTreeMap, BTreeSet};

/// `ssh_config`: the operator's OpenSSH client config, parsed, or why it could not be.
pub fn resolve(
    path: &Path,
    raw: RawInventory,
    ssh_config: Result<Option<ssh2_config::SshConfig>, String>,
) -> Result<Inventory, InventoryError> {
    let mut d = Diags::new(path);
    let host_names: Vec<&str> = raw.hosts.iter().map(|(n, _)| n.value.as_str()).collect();
    let flavor = raw.flavor.as_ref().map_or(Flavor::Jvm, |f| f.value);
    let (no_zk, no_kafka, no_jdk) = Default::default();
    let z: &model::ZkSettings = raw.zookeeper.as_ref().map_or(&no_zk, |s| &s.value);
    let k: &model::KafkaSettings = raw.kafka.as_ref().map_or(&no_kafka, |s| &s.value);
    let j: &model::JdkSettings = raw.jdk.as_ref().map_or(&no_jdk, |s| &s.value);

    check_hosts(&mut d, path, &raw);
    let (zk_members, kafka_members, controllers, storage) =
        check_groups(&mut d, &raw, &host_names, flavor);

    let mut zookeeper = zk_config(&mut d, z, k.version.as_ref());
    let brokers = kafka_members.len() as i64;
    // Controllers beside a ZooKeeper ensemble: a cluster being migrated, still ZooKeeper mode.
    let migrating = flavor == Flavor::Jvm && !controllers.is_empty() && !zk_members.is_empty();
    let mut kafka = kafka_config(&mut d, k, brokers, !controllers.is_empty() && !migrating);
    kafka.migrating = migrating;
    let heaps = |group: &Option<S<String>>, host: fn(&model::RawHost) -> &Option<S<String>>| {
        let mut v: Vec<String> = group.iter().map(|h| h.value.clone()).collect();
        v.extend(
            raw.hosts
                .iter()
                .filter_map(|(_, h)| host(h).as_ref().map(|s| s.value.clone())),
        );
        v
    };
    zookeeper.limits = limits(
        &mut d,
        &z.limits,
        "zookeeper",
        &zookeeper.heap,
        &heaps(&z.heap, |h| &h.zookeeper.heap),
    );
    kafka.limits = limits(
        &mut d,
        &k.limits,
        "kafka",
        &kafka.heap,
        &heaps(&k.heap, |h| &h.kafka.heap),
    );
    let nisshi = match flavor {
        Flavor::Jvm => {
            super::nisshi::reject_in_jvm(&mut d, &raw);
            check_mode(&mut d, &raw, &kafka);
            check_ports(&mut d, &raw, z, k, &zookeeper, &kafka);
            if kafka.kraft || kafka.migrating {
                check_quorum(&mut d, &raw, controllers.len(), "KRaft controller quorum");
            }
            if !kafka.kraft {
                check_quorum(&mut d, &raw, zk_members.len(), "ZooKeeper ensemble");
            }
            None
        }
        Flavor::Nisshi => {
            let n = super::nisshi::resolve(&mut d, path, &raw, brokers as usize, storage.len());
            // The Kafka-protocol code (gates, topics) finds brokers at kafka.port; nisshi has
            // no replicas, so topics default to replication factor 1.
            kafka.port = n.port;
            kafka.default_replication_factor = 1;
            kafka.min_insync_replicas = 1;
            Some(n)
        }
    };
    let artifacts = artifacts(&mut d, path, &raw.artifacts);
    let jdk = jdk(&mut d, path, j);
    if flavor == Flavor::Jvm {
        let groups = raw.groups.referenced;
        let at = VersionsAt {
            zookeeper: z.version.as_ref().map_or(groups, |v| v.referenced),
            kafka: k.version.as_ref().map_or(groups, |v| v.referenced),
        };
        check_stack(&mut d, at, &zookeeper, &kafka, &jdk, zk_members.len());
    }

    let install_dir = raw
        .install_dir
        .as_ref()
        .map(|s| absolute(&mut d, s, "install_dir"))
        .unwrap_or_else(|| "/opt".into());

    let topics = topics(&mut d, &raw, &kafka, brokers);
    let (security, users) =
        super::security::resolve(&mut d, path, &raw, &kafka, &zookeeper, flavor);
    let acls = super::security::acls(&mut d, &raw, &users);
    let templates_dir = raw.templates_dir.as_ref().map(|t| {
        let p = expand_path(path, &t.value);
        if !p.is_dir() {
            d.error(
                &t.referenced,
                format!("templates_dir {} is not a directory", p.display()),
                "give a directory holding template overrides (same file names as templates/)",
            );
        }
        p
    });

    let ssh_cfg = match ssh_config {
        Ok(c) => c,
        Err(e) => {
            d.warn(
                &Location::UNKNOWN,
                format!("{e}; its settings are not used"),
                "fix the file, or set CLUSTERCTL_SSH_CONFIG to another one (empty: none)",
            );
            None
        }
    };
    let mut hosts = Vec::new();
    for (name, h) in &raw.hosts {
        let (ssh, ssh_from_config) = ssh_target(path, &raw, &name.value, h, ssh_cfg.as_ref());
        let own = h.ssh.health_checks.as_ref();
        // Tunnelled by default: a cluster behind a bastion is usually unreachable otherwise.
        let tunnel_checks = ssh.jump.is_some()
            && own.or(raw.ssh.health_checks.as_ref()).map(|c| c.value)
                != Some(HealthChecks::Direct);
        if let Some(c) = own
            && c.value == HealthChecks::Tunnel
            && ssh.jump.is_none()
        {
            d.error(
                &c.referenced,
                format!(
                    "host {}: ssh.health_checks is tunnel but the host has no jump host",
                    name.value
                ),
                "set ssh.jump (or ProxyJump in ~/.ssh/config), or remove health_checks",
            );
        }
        hosts.push(Host {
            name: name.value.clone(),
            address: h.address.value.clone(),
            ssh,
            ssh_from_config,
            tunnel_checks,
            in_zookeeper: zk_members.contains(name.value.as_str()),
            in_kafka: kafka_members.contains(name.value.as_str()),
            in_controller: controllers.contains(name.value.as_str()),
            in_storage: storage.contains(name.value.as_str()),
            myid: h.myid.as_ref().map(|s| s.value),
            broker_id: h.broker_id.as_ref().map(|s| s.value),
            controller_id: h.controller_id.as_ref().map(|s| s.value),
            rack: h.rack.as_ref().map(|s| s.value.trim().to_string()),
            advertised_address: h.advertised_address.as_ref().map(|a| {
                if !valid_address(&a.value) {
                    d.error(
                        &a.referenced,
                        format!(
                            "host {}: advertised_address {:?} is not a host name or IP",
                            name.value, a.value
                        ),
                        "give the name or address clients reach this broker at",
                    );
                }
                a.value.clone()
            }),
            side_of: None,
            zookeeper: ServiceOverride {
                heap: heap(&mut d, &h.zookeeper.heap, "zookeeper.heap"),
                jvm_opts: jvm_opts(&mut d, &h.zookeeper.jvm_opts, "zookeeper.jvm_opts"),
                properties: props(&mut d, &h.zookeeper.properties, ZK_MANAGED, "zookeeper"),
            },
            kafka: ServiceOverride {
                heap: heap(&mut d, &h.kafka.heap, "kafka.heap"),
                jvm_opts: jvm_opts(&mut d, &h.kafka.jvm_opts, "kafka.jvm_opts"),
                properties: props(&mut d, &h.kafka.properties, KAFKA_MANAGED, "kafka"),
            },
        });
    }

    if kafka.controller_process == ControllerProcess::Separate {
        hosts = side_controllers(&mut d, &raw, hosts);
    }
    if let Some(c) = &raw.ssh.health_checks
        && c.value == HealthChecks::Tunnel
        && hosts.iter().all(|h| h.ssh.jump.is_none())
    {
        d.error(
            &c.referenced,
            "ssh.health_checks is tunnel but no host has a jump host",
            "set ssh.jump (or ProxyJump in ~/.ssh/config), or remove health_checks",
        );
    }
    if d.has_errors() {
        return Err(InventoryError { diags: d.items });
    }
    Ok(Inventory {
        file: path.to_path_buf(),
        install_dir,
        templates_dir,
        hosts,
        artifacts,
        jdk,
        zookeeper,
        kafka,
        topics,
        flavor,
        nisshi,
        security,
        users,
        acls,
        warnings: d.items,
    })
}

/// `kafka.controller_process: separate`: a host in both groups.kafka and groups.controller
/// becomes its broker plus a host `<name>-controller` for the controller beside it, so every
/// step, gate and roll treats the two processes as the nodes they are.
fn side_controllers(d: &mut Diags, raw: &RawInventory, hosts: Vec<Host>) -> Vec<Host> {
    let names: BTreeSet<String> = hosts.iter().map(|h| h.name.clone()).collect();
    let mut out = Vec::new();
    for mut h in hosts {
        if !(h.in_kafka && h.in_controller) {
            out.push(h);
            continue;
        }
        let side_name = format!("{}-controller", h.name);
        if names.contains(&side_name) {
            let at = raw
                .hosts
                .iter()
                .find(|(n, _)| n.value == side_name)
                .map_or(&raw.groups.referenced, |(n, _)| &n.referenced);
            d.error(
                at,
                format!(
                    "host name {side_name} is the name clusterctl gives the controller beside host {}'s broker",
                    h.name
                ),
                "rename that host",
            );
        }
        h.in_controller = false;
        let side = Host {
            name: side_name,
            address: h.address.clone(),
            ssh: h.ssh.clone(),
            ssh_from_config: h.ssh_from_config.clone(),
            tunnel_checks: h.tunnel_checks,
            in_zookeeper: false,
            in_kafka: false,
            in_controller: true,
            in_storage: false,
            myid: None,
            broker_id: None,
            controller_id: h.controller_id.take(),
            rack: None,
            advertised_address: None,
            zookeeper: ServiceOverride::default(),
            // The host's kafka settings are its broker's.
            kafka: ServiceOverride::default(),
            side_of: Some(h.name.clone()),
        };
        out.push(h);
        out.push(side);
    }
    out
}

fn check_hosts(d: &mut Diags, path: &Path, raw: &RawInventory) {
    if raw.hosts.is_empty() {
        d.error(
            &raw.groups.referenced,
            "the inventory has no hosts",
            "add at least one host under `hosts:`",
        );
    }
    let mut addresses: BTreeMap<&str, &str> = BTreeMap::new();
    let mut myids: BTreeMap<i64, &str> = BTreeMap::new();
    let mut broker_ids: BTreeMap<i64, &str> = BTreeMap::new();
    let names: BTreeSet<&str> = raw.hosts.iter().map(|(n, _)| n.value.as_str()).collect();
    for (name, h) in &raw.hosts {
        let n = name.value.as_str();
        if !valid_name(n) {
            d.error(
                &name.referenced,
                format!("host name `{n}` is not valid"),
                "use letters, digits, `-`, `_` and `.` only",
            );
        }
        let addr = h.address.value.trim();
        if !valid_address(addr) {
            d.error(
                &h.address.referenced,
                format!("host {n}: address `{}` is not valid", h.address.value),
                "give an IP address or a DNS name",
            );
        } else if let Some(other) = addresses.insert(addr, n) {
            d.error(
                &h.address.referenced,
                format!("host {n} has the same address {addr} as host {other}"),
                "every host needs its own address",
            );
        }
        if let Some(id) = &h.myid {
            if !(1..=255).contains(&id.value) {
                d.error(
                    &id.referenced,
                    format!("host {n}: myid {} is out of range", id.value),
                    "ZooKeeper myid must be between 1 and 255",
                );
            } else if let Some(other) = myids.insert(id.value, n) {
                d.error(
                    &id.referenced,
                    format!(
                        "host {n}: myid {} is already used by host {other}",
                        id.value
                    ),
                    "every ZooKeeper member needs its own myid",
                );
            }
        }
        if let Some(id) = &h.broker_id {
            if !(0..=i32::MAX as i64).contains(&id.value) {
                d.error(
                    &id.referenced,
                    format!("host {n}: broker_id {} is out of range", id.value),
                    "Kafka broker.id must be between 0 and 2147483647",
                );
            } else if let Some(other) = broker_ids.insert(id.value, n) {
                d.error(
                    &id.referenced,
                    format!(
                        "host {n}: broker_id {} is already used by host {other}",
                        id.value
                    ),
                    "every broker needs its own broker_id",
                );
            }
        }
        check_ssh(d, path, &h.ssh, &names);
    }
    check_ssh(d, path, &raw.ssh, &names);
}

fn check_ssh(d: &mut Diags, path: &Path, s: &SshSettings, names: &BTreeSet<&str>) {
    if let Some(p) = &s.port {
        port(d, p, "ssh.port");
    }
    if let Some(k) = &s.key {
        let p = expand_path(path, &k.value);
        if !p.is_file() {
            d.error(
                &k.referenced,
                format!("ssh key file {} does not exist", p.display()),
                "give the path of a private key, or remove `key` to use ssh-agent",
            );
        }
    }
    if let Some(j) = &s.jump
        && !names.contains(j.value.as_str())
    {
        d.error(
            &j.referenced,
            format!("jump host `{}` is not a host of this inventory", j.value),
            "list the bastion under `hosts:` (it needs no group)",
        );
    }
    if let Some(u) = &s.user
        && u.value.trim().is_empty()
    {
        d.error(&u.referenced, "ssh.user is empty", "give a login user name");
    }
}

type Members<'a> = BTreeSet<&'a str>;

fn check_groups<'a>(
    d: &mut Diags,
    raw: &'a RawInventory,
    names: &[&str],
    flavor: Flavor,
) -> (Members<'a>, Members<'a>, Members<'a>, Members<'a>) {
    let separate = raw
        .kafka
        .as_ref()
        .and_then(|k| k.value.controller_process.as_ref())
        .is_some_and(|c| c.value == ControllerProcess::Separate);
    let mut member = |list: &'a [S<String>], group: &str| {
        let mut set = BTreeSet::new();
        for m in list {
            if !names.contains(&m.value.as_str()) {
                d.error(
                    &m.referenced,
                    format!("group {group} names `{}`, which is not a host", m.value),
                    "add it under `hosts:` or fix the spelling",
                );
            } else if !set.insert(m.value.as_str()) {
                d.error(
                    &m.referenced,
                    format!("host {} is listed twice in group {group}", m.value),
                    "list each host once",
                );
            }
        }
        set
    };
    let zk = member(&raw.groups.value.zookeeper, "zookeeper");
    let kafka = member(&raw.groups.value.kafka, "kafka");
    let controllers = member(&raw.groups.value.controller, "controller");
    let storage = member(&raw.groups.value.storage, "storage");
    let jumps: BTreeSet<&str> = raw
        .hosts
        .iter()
        .filter_map(|(_, h)| h.ssh.jump.as_ref())
        .chain(raw.ssh.jump.as_ref())
        .map(|j| j.value.as_str())
        .collect();
    for (name, h) in &raw.hosts {
        let n = name.value.as_str();
        let grouped = [&zk, &kafka, &controllers, &storage, &jumps];
        if !grouped.iter().any(|g| g.contains(n)) {
            match flavor {
                // Kept in `hosts` for apply to retire what clusterctl runs there.
                Flavor::Jvm => d.warn(
                    &name.referenced,
                    format!(
                        "host {n} is in no group: apply stops and disables the ZooKeeper and Kafka \
                         clusterctl installed there (their data is kept)"
                    ),
                    "remove it from hosts once that is done, or add it to a group",
                ),
                Flavor::Nisshi => d.error(
                    &name.referenced,
                    format!("host {n} is in no group"),
                    "add it to groups.kafka or groups.storage, or remove it",
                ),
            }
        }
        if let Some(id) = &h.controller_id {
            if !controllers.contains(n) || (kafka.contains(n) && !separate) {
                d.error(
                    &id.referenced,
                    format!("host {n} pins a controller_id but is not a dedicated controller"),
                    "controller_id is for hosts only in groups.controller, or in both groups with \
                     kafka.controller_process: separate; combined nodes use broker_id as node.id",
                );
            } else if !(0..=i32::MAX as i64).contains(&id.value) {
                d.error(
                    &id.referenced,
                    format!("host {n}: controller_id {} is out of range", id.value),
                    "use 0..2147483647",
                );
            }
        }
        if let Some(id) = &h.myid
            && !zk.contains(n)
        {
            d.error(
                &id.referenced,
                format!("host {n} pins a myid but is not in group zookeeper"),
                "remove `myid` or add the host to groups.zookeeper",
            );
        }
        if let Some(id) = &h.broker_id
            && !kafka.contains(n)
        {
            d.error(
                &id.referenced,
                format!("host {n} pins a broker_id but is not in group kafka"),
                "remove `broker_id` or add the host to groups.kafka",
            );
        }
    }
    check_racks(d, raw, &kafka);
    if kafka.is_empty() {
        d.error(
            &raw.groups.referenced,
            "group kafka is empty",
            "list the hosts that run a Kafka broker under groups.kafka",
        );
    }
    if flavor == Flavor::Jvm && zk.is_empty() && controllers.is_empty() {
        d.error(
            &raw.groups.referenced,
            "no ZooKeeper ensemble and no KRaft controllers",
            "list 3 hosts under groups.zookeeper (ZooKeeper mode) or groups.controller (KRaft)",
        );
    }
    (zk, kafka, controllers, storage)
}

/// `rack` is a broker's `broker.rack`: only on brokers, of plain characters, and on every
/// broker or none (Kafka's rack-aware replica assignment refuses a mix).
fn check_racks(d: &mut Diags, raw: &RawInventory, kafka: &Members) {
    let mut without = Vec::new();
    let mut with = None;
    for (name, h) in &raw.hosts {
        let n = name.value.as_str();
        let Some(rack) = &h.rack else {
            if kafka.contains(n) {
                without.push(n);
            }
            continue;
        };
        if !kafka.contains(n) {
            d.error(
                &rack.referenced,
                format!("host {n} sets a rack but is not in group kafka"),
                "rack is a broker's broker.rack: remove it or add the host to groups.kafka",
            );
            continue;
        }
        let r = rack.value.trim();
        if r.is_empty()
            || !r
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | ':' | '/'))
        {
            d.error(
                &rack.referenced,
                format!("host {n}: rack `{}` is not a plain name", rack.value),
                "use letters, digits, `.`, `_`, `-`, `:` and `/` (e.g. eu-west-1a)",
            );
        }
        with.get_or_insert(n);
    }
    if let Some(first) = with
        && !without.is_empty()
    {
        d.error(
            &raw.groups.referenced,
            format!(
                "host {first} sets a rack but broker(s) {} do not",
                without.join(", ")
            ),
            "give every broker in groups.kafka a rack, or none: Kafka's rack-aware replica \
             assignment refuses brokers without one once any has one",
        );
    }
}

/// Quorums need a majority: 1 member tolerates no failure, an even size no more than one less.
fn check_quorum(d: &mut Diags, raw: &RawInventory, n: usize, what: &str) {
    let at = &raw.groups.referenced;
    if n == 1 {
        d.warn(
            at,
            format!("a 1-node {what} has no fault tolerance"),
            "use 3 or 5 members in production",
        );
    } else if n > 0 && n.is_multiple_of(2) {
        d.warn(
            at,
            format!(
                "an even-sized {what} ({n}) tolerates no more failures than {}",
                n - 1
            ),
            "use an odd number of members (3 or 5)",
        );
    }
}

/// ZooKeeper mode and KRaft exclude each other, except while `clusterctl migrate` moves a
/// cluster: then Kafka is 3.9 (the one release that migrates) and the controllers run on
/// hosts of their own (Kafka migrates only with dedicated controllers).
fn check_mode(d: &mut Diags, raw: &RawInventory, kafka: &KafkaConfig) {
    if !kafka.migrating {
        return;
    }
    let at = &raw.groups.referenced;
    if crate::versions::parse(&kafka.version) < (3, 9, 0)
        || crate::versions::parse(&kafka.version) >= (4, 0, 0)
    {
        let at = raw
            .kafka
            .as_ref()
            .and_then(|k| k.value.version.as_ref())
            .map_or(at, |v| &v.referenced);
        d.error(
            at,
            format!(
                "groups.controller beside groups.zookeeper is a migration to KRaft, which needs Kafka 3.9 (kafka.version is {})",
                kafka.version
            ),
            "upgrade the cluster to 3.9.x first (apply, then apply --finalize-upgrade), or remove groups.controller",
        );
    }
    let g = &raw.groups.value;
    let process = raw
        .kafka
        .as_ref()
        .and_then(|k| k.value.controller_process.as_ref());
    for c in &g.controller {
        if kafka.controller_process != ControllerProcess::Separate
            && g.kafka.iter().any(|k| k.value == c.value)
        {
            d.error(
                process.map_or(&c.referenced, |p| &p.referenced),
                format!(
                    "host {} is in groups.kafka and groups.controller of a cluster being migrated to KRaft, \
                     which needs its controllers in processes of their own",
                    c.value
                ),
                "set kafka.controller_process: separate (a controller process beside the broker), \
                 or name hosts in groups.controller that are not brokers",
            );
        }
    }
}

/// The supported-versions matrix (crate::versions), as far as the inventory tells: the
/// versions themselves, and Java where the JDK is a package whose name says its release.
/// Where a version-related problem is reported: zookeeper.version and kafka.version, or
/// the groups when a version is the default.
struct VersionsAt {
    zookeeper: Location,
    kafka: Location,
}

fn check_stack(
    d: &mut Diags,
    at: VersionsAt,
    zookeeper: &ZkConfig,
    kafka: &KafkaConfig,
    jdk: &Jdk,
    zk_members: usize,
) {
    let (zk_at, kafka_at) = (at.zookeeper, at.kafka);
    let stack = crate::versions::Stack {
        kafka: &kafka.version,
        kraft: kafka.kraft,
        zookeeper: (!kafka.kraft && zk_members > 0).then_some((
            zookeeper.version.as_str(),
            zookeeper.source == ZkSource::Kafka,
        )),
    };
    let mut verdicts: Vec<_> = crate::versions::check_versions(&stack)
        .into_iter()
        .map(|v| (v, "see the supported versions in the README"))
        .collect();
    let java = match jdk.method {
        JdkMethod::Package => Some(match &jdk.package {
            Some(name) => crate::versions::java_major_from_name(name),
            None => Some(crate::versions::DEFAULT_JAVA),
        }),
        _ => None,
    }
    .flatten();
    if verdicts.is_empty()
        && let Some(java) = java
    {
        verdicts.extend(
            crate::versions::check_java(&stack, java)
                .into_iter()
                .map(|v| (v, "set jdk.package to another release, or change versions")),
        );
    }
    for (v, hint) in verdicts {
        match v {
            crate::versions::Verdict::Refuse(m) => {
                let at = if m.starts_with("ZooKeeper") {
                    zk_at
                } else {
                    kafka_at
                };
                d.error(&at, m, hint);
            }
            crate::versions::Verdict::Warn(m) => {
                let at = if m.starts_with("ZooKeeper") {
                    zk_at
                } else {
                    kafka_at
                };
                d.warn(&at, m, "");
            }
        }
    }
}

fn zk_config(d: &mut Diags, z: &model::ZkSettings, kafka_version: Option<&S<String>>) -> ZkConfig {
    let version = match (&z.version, z.source) {
        (Some(v), _) => version(d, v, "zookeeper.version"),
        // Bundled ZooKeeper: its version is whatever the Kafka tarball carries.
        (None, ZkSource::Kafka) => kafka_version
            .map(|v| v.value.clone())
            .unwrap_or_else(|| DEFAULT_KAFKA_VERSION.into()),
        (None, ZkSource::Tarball) => DEFAULT_ZOOKEEPER_VERSION.into(),
    };
    ZkConfig {
        version,
        source: z.source,
        client_port: z
            .client_port
            .as_ref()
            .map_or(2181, |p| port(d, p, "zookeeper.client_port")),
        peer_port: z
            .peer_port
            .as_ref()
            .map_or(2888, |p| port(d, p, "zookeeper.peer_port")),
        election_port: z
            .election_port
            .as_ref()
            .map_or(3888, |p| port(d, p, "zookeeper.election_port")),
        data_dir: z
            .data_dir
            .as_ref()
            .map_or("/var/lib/zookeeper".into(), |s| {
                absolute(d, s, "zookeeper.data_dir")
            }),
        data_log_dir: z
            .data_log_dir
            .as_ref()
            .map_or("/var/lib/zookeeper/txlog".into(), |s| {
                absolute(d, s, "zookeeper.data_log_dir")
            }),
        tick_time: z.tick_time.unwrap_or(2000),
        init_limit: z.init_limit.unwrap_or(10),
        sync_limit: z.sync_limit.unwrap_or(5),
        max_client_cnxns: z.max_client_cnxns.unwrap_or(60),
        heap: heap(d, &z.heap, "zookeeper.heap").unwrap_or_else(|| "256m".into()),
        jvm_opts: jvm_opts(d, &z.jvm_opts, "zookeeper.jvm_opts").unwrap_or_default(),
        // Set by `limits` once the hosts' heaps are known.
        limits: Limits::default(),
        properties: props(d, &z.properties, ZK_MANAGED, "zookeeper"),
    }
}

fn kafka_config(d: &mut Diags, k: &model::KafkaSettings, brokers: i64, kraft: bool) -> KafkaConfig {
    let default_rf = brokers.clamp(1, 3);
    let mut rf = |v: &Option<S<i64>>, key: &str| -> u32 {
        let Some(v) = v else {
            return default_rf as u32;
        };
        if v.value < 1 {
            d.error(
                &v.referenced,
                format!("{key} must be at least 1"),
                "use 1..=brokers",
            );
        } else if brokers > 0 && v.value > brokers {
            d.error(
                &v.referenced,
                format!(
                    "{key} is {} but group kafka has only {brokers} broker(s)",
                    v.value
                ),
                "lower it to at most the number of brokers, or add brokers",
            );
        }
        v.value.max(1) as u32
    };
    let default_replication_factor = rf(
        &k.default_replication_factor,
        "kafka.default_replication_factor",
    );
    let offsets = rf(
        &k.offsets_topic_replication_factor,
        "kafka.offsets_topic_replication_factor",
    );
    let txn = rf(
        &k.transaction_state_log_replication_factor,
        "kafka.transaction_state_log_replication_factor",
    );
    let min_isr = match &k.min_insync_replicas {
        None => (default_rf as u32).min(2),
        Some(v) => {
            if v.value < 1 || v.value > default_replication_factor as i64 {
                d.error(
                    &v.referenced,
                    format!(
                        "kafka.min_insync_replicas is {} but the default replication factor is {default_replication_factor}",
                        v.value
                    ),
                    "min.insync.replicas must be between 1 and the replication factor (usually RF-1)",
                );
            }
            v.value.max(1) as u32
        }
    };
    let log_dirs = match &k.log_dirs {
        None => vec!["/var/lib/kafka/data".to_string()],
        Some(v) => {
            if v.value.is_empty() {
                d.error(
                    &v.referenced,
                    "kafka.log_dirs is empty",
                    "give at least one directory",
                );
            }
            for dir in &v.value {
                if !safe_path(dir) {
                    d.error(
                        &v.referenced,
                        format!("kafka.log_dirs entry `{dir}` is not an absolute path of plain characters"),
                        "use absolute paths such as /var/lib/kafka/data (letters, digits, `.`, `_`, `-`, `/`)",
                    );
                }
            }
            v.value.clone()
        }
    };
    let mut cfg = KafkaConfig {
        version: k
            .version
            .as_ref()
            .map_or(DEFAULT_KAFKA_VERSION.into(), |v| {
                version(d, v, "kafka.version")
            }),
        scala_version: k.scala_version.clone().unwrap_or_else(|| "2.13".into()),
        kraft,
        port: k.port.as_ref().map_or(9092, |p| port(d, p, "kafka.port")),
        controller_port: k
            .controller_port
            .as_ref()
            .map_or(9093, |p| port(d, p, "kafka.controller_port")),
        controller_process: k
            .controller_process
            .as_ref()
            .map_or(ControllerProcess::Combined, |c| c.value),
        cluster_id: k.cluster_id.as_ref().map(|c| {
            if !valid_cluster_id(&c.value) {
                d.error(
                    &c.referenced,
                    format!("kafka.cluster_id `{}` is not a Kafka cluster id", c.value),
                    "a cluster id is 22 characters of URL-safe base64 (16 bytes), as `kafka-storage random-uuid` prints",
                );
            }
            c.value.clone()
        }),
        log_dirs,
        heap: heap(d, &k.heap, "kafka.heap").unwrap_or_else(|| "512m".into()),
        jvm_opts: jvm_opts(d, &k.jvm_opts, "kafka.jvm_opts").unwrap_or_default(),
        num_partitions: k.num_partitions.unwrap_or(3),
        default_replication_factor,
        offsets_topic_replication_factor: offsets,
        transaction_state_log_replication_factor: txn,
        min_insync_replicas: min_isr,
        log_retention_hours: k.log_retention_hours.unwrap_or(168),
        log_segment_bytes: k.log_segment_bytes.unwrap_or(1_073_741_824),
        limits: Limits::default(),
        properties: props(d, &k.properties, KAFKA_MANAGED, "kafka"),
        dynamic_quorum: false,
        migrating: false,
        stage: None,
    };
    // KIP-853: formatting with a dynamic quorum came with Kafka 3.9.
    cfg.dynamic_quorum = kraft && crate::versions::parse(&cfg.version) >= (3, 9, 0);
    cfg
}

fn topics(d: &mut Diags, raw: &RawInventory, kafka: &KafkaConfig, brokers: i64) -> Vec<TopicSpec> {
    let mut out = Vec::new();
    for (name, t) in &raw.topics {
        let n = &name.value;
        let valid = !n.is_empty()
            && n.len() <= 249
            && n != "."
            && n != ".."
            && n.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
        if !valid {
            d.error(
                &name.referenced,
                format!("topic name `{n}` is not valid"),
                "Kafka topic names use up to 249 ASCII letters, digits, '.', '_' and '-'",
            );
        }
        if n.starts_with("__") {
            d.error(
                &name.referenced,
                format!("topic `{n}` is internal (names starting with `__` belong to Kafka)"),
                "choose another name",
            );
        }
        let partitions = t
            .partitions
            .as_ref()
            .map_or(kafka.num_partitions as i64, |p| {
                if p.value < 1 {
                    d.error(
                        &p.referenced,
                        format!("topic {n}: partitions must be at least 1"),
                        "use 1 or more",
                    );
                }
                p.value
            });
        let rf = t.replication_factor.as_ref().map_or(kafka.default_replication_factor as i64, |r| {
            if r.value < 1 || (brokers > 0 && r.value > brokers) {
                d.error(
                    &r.referenced,
                    format!("topic {n}: replication_factor {} but group kafka has {brokers} broker(s)", r.value),
                    "use 1..=brokers (3 is usual)",
                );
            }
            r.value
        });
        out.push(TopicSpec {
            name: n.clone(),
            partitions: partitions.clamp(1, i32::MAX as i64) as i32,
            replication_factor: rf.clamp(1, i16::MAX as i64) as i16,
            configs: t
                .configs
                .iter()
                .map(|(k, v)| (k.clone(), v.to_string()))
                .collect(),
        });
    }
    out
}

fn check_ports(
    d: &mut Diags,
    raw: &RawInventory,
    z: &model::ZkSettings,
    k: &model::KafkaSettings,
    zk: &ZkConfig,
    kafka: &KafkaConfig,
) {
    let named = [
        (
            z.client_port.as_ref(),
            zk.client_port,
            "zookeeper.client_port",
        ),
        (z.peer_port.as_ref(), zk.peer_port, "zookeeper.peer_port"),
        (
            z.election_port.as_ref(),
            zk.election_port,
            "zookeeper.election_port",
        ),
        (k.port.as_ref(), kafka.port, "kafka.port"),
        (
            k.controller_port.as_ref(),
            kafka.controller_port,
            "kafka.controller_port",
        ),
    ];
    let mut seen: BTreeMap<u16, &str> = BTreeMap::new();
    for (spanned, value, key) in named {
        if value == 0 {
            continue; // already reported as out of range
        }
        if let Some(other) = seen.insert(value, key) {
            let at = spanned
                .map(|s| s.referenced)
                .unwrap_or(raw.groups.referenced);
            d.error(
                &at,
                format!("{key} {value} is the same port as {other}"),
                "a host running ZooKeeper and Kafka needs distinct ports",
            );
        }
    }
}

fn artifacts(d: &mut Diags, path: &Path, a: &model::ArtifactSettings) -> Artifacts {
    let local = |d: &mut Diags, v: &Option<S<String>>, key: &str| {
        v.as_ref().map(|s| {
            let p = expand_path(path, &s.value);
            if !p.is_file() {
                d.error(
                    &s.referenced,
                    format!("{key} {} does not exist", p.display()),
                    "give the path of a downloaded tarball, or remove the key to use the mirror",
                );
            }
            p
        })
    };
    let mirror = std::env::var("CLUSTERCTL_MIRROR")
        .ok()
        .filter(|m| !m.is_empty())
        .or_else(|| a.mirror.clone())
        .unwrap_or_else(|| DEFAULT_MIRROR.into());
    Artifacts {
        mirror: mirror.trim_end_matches('/').to_string(),
        cache_dir: expand_path(
            path,
            a.cache_dir.as_deref().unwrap_or("~/.cache/clusterctl"),
        ),
        kafka_tarball: local(d, &a.kafka_tarball, "artifacts.kafka_tarball"),
        zookeeper_tarball: local(d, &a.zookeeper_tarball, "artifacts.zookeeper_tarball"),
    }
}

fn jdk(d: &mut Diags, path: &Path, j: &model::JdkSettings) -> Jdk {
    let at = j
        .method
        .as_ref()
        .map_or(Location::UNKNOWN, |m| m.referenced);
    let method = j.method.as_ref().map_or(JdkMethod::Package, |m| m.value);
    match method {
        JdkMethod::Tarball if j.tarball.is_none() => d.error(
            &at,
            "jdk.method is tarball but jdk.tarball is not set",
            "give the path of a JDK .tar.gz under jdk.tarball",
        ),
        JdkMethod::None if j.java_home.is_none() => d.error(
            &at,
            "jdk.method is none but jdk.java_home is not set",
            "give the JDK directory already installed on the hosts under jdk.java_home",
        ),
        _ => {}
    }
    let tarball = j.tarball.as_ref().map(|s| {
        let p = expand_path(path, &s.value);
        if !p.is_file() {
            d.error(
                &s.referenced,
                format!("jdk.tarball {} does not exist", p.display()),
                "give the path of a JDK .tar.gz",
            );
        }
        p
    });
    Jdk {
        method,
        package: j.package.clone(),
        tarball,
        java_home: j
            .java_home
            .as_ref()
            .map(|s| absolute(d, s, "jdk.java_home")),
    }
}

/// A host's SSH settings: the host's own, then the inventory's, then what `~/.ssh/config`
/// says of it (`cfg`), then the defaults. Also returns the config keywords that were used.
fn ssh_target(
    path: &Path,
    raw: &RawInventory,
    name: &str,
    h: &model::RawHost,
    cfg: Option<&ssh2_config::SshConfig>,
) -> (SshTarget, Vec<&'static str>) {
    let address = h.address.value.trim().to_string();
    let from = cfg.map_or_else(Default::default, |c| {
        super::ssh_config::lookup(c, name, &address)
    });
    let mut used = Vec::new();
    let mut take = |key: &'static str, v: bool| {
        if v {
            used.push(key);
        }
    };
    let pick = |f: fn(&SshSettings) -> Option<String>| f(&h.ssh).or_else(|| f(&raw.ssh));
    let user = pick(|s| s.user.as_ref().map(|v| v.value.clone()));
    take("User", user.is_none() && from.user.is_some());
    let user = user.or(from.user.clone()).unwrap_or_else(|| "root".into());
    let port = h
        .ssh
        .port
        .as_ref()
        .or(raw.ssh.port.as_ref())
        .map(|p| p.value.clamp(0, 65535) as u16);
    take("Port", port.is_none() && from.port.is_some());
    let port = port.or(from.port).unwrap_or(22);
    let key = pick(|s| s.key.as_ref().map(|v| v.value.clone())).map(|k| expand_path(path, &k));
    take(
        "IdentityFile",
        key.is_none() && from.identity_file.is_some(),
    );
    let key = key.or(from.identity_file.clone());
    let known_hosts = pick(|s| s.known_hosts.as_ref().map(|v| v.value.clone()));
    take(
        "UserKnownHostsFile",
        known_hosts.is_none() && from.known_hosts.is_some(),
    );
    let known_hosts = match (known_hosts, &from.known_hosts) {
        (Some(k), _) => expand_path(path, &k),
        (None, Some(k)) => k.clone(),
        (None, None) => expand_path(path, "~/.ssh/known_hosts"),
    };
    let become_ = h.ssh.become_.or(raw.ssh.become_).unwrap_or(false);
    let timeout = h
        .ssh
        .connect_timeout_secs
        .as_ref()
        .or(raw.ssh.connect_timeout_secs.as_ref())
        .map(|s| Duration::from_secs(s.value.max(1)));
    take(
        "ConnectTimeout",
        timeout.is_none() && from.connect_timeout.is_some(),
    );
    let connect_timeout = timeout
        .or(from.connect_timeout)
        .unwrap_or_else(default_connect_timeout);
    // The inventory has no SSH address of its own: HostName says where SSH goes.
    take("HostName", from.host_name.is_some());
    let ssh_address = from.host_name.clone().unwrap_or(address);
    // Host keys are always checked: only accept-new is taken from the config.
    let accept_new = from.strict_host_key_checking.as_deref() == Some("accept-new");
    take("StrictHostKeyChecking", accept_new);
    // A jump host is resolved one level deep; a bastion's own `jump` is ignored on purpose.
    let inventory_jump = pick(|s| s.jump.as_ref().map(|v| v.value.clone()));
    let jump = match (&inventory_jump, &from.proxy_jump) {
        (Some(j), _) => raw
            .hosts
            .iter()
            .find(|(n, _)| n.value == *j && n.value != name)
            .map(|(n, jh)| ssh_target(path, raw, &n.value, jh, cfg).0),
        (None, Some(hop)) if hop != "none" => {
            take("ProxyJump", true);
            let (hop_user, hop_host, hop_port) = super::ssh_config::split_hop(hop);
            match raw.hosts.iter().find(|(n, _)| n.value == hop_host) {
                // A host of the inventory, with its own settings.
                Some((n, jh)) => Some(ssh_target(path, raw, &n.value, jh, cfg).0),
                // Any other bastion: as the config describes it.
                None => {
                    let b = cfg.map_or_else(Default::default, |c| {
                        super::ssh_config::lookup(c, &hop_host, &hop_host)
                    });
                    Some(SshTarget {
                        host: hop_host.clone(),
                        address: b.host_name.clone().unwrap_or(hop_host),
                        port: hop_port.or(b.port).unwrap_or(22),
                        user: hop_user.or(b.user.clone()).unwrap_or_else(|| user.clone()),
                        key: b.identity_file.clone().or(key.clone()),
                        known_hosts: b.known_hosts.clone().unwrap_or(known_hosts.clone()),
                        become_: false,
                        connect_timeout,
                        accept_new: b.strict_host_key_checking.as_deref() == Some("accept-new"),
                        jump: None,
                    })
                }
            }
        }
        _ => None,
    }
    .map(|mut t| {
        t.jump = None;
        Box::new(t)
    });
    (
        SshTarget {
            host: name.to_string(),
            address: ssh_address,
            port,
            user,
            key,
            known_hosts,
            become_,
            connect_timeout,
            accept_new,
            jump,
        },
        used,
    )
}

pub(super) fn port(d: &mut Diags, p: &S<i64>, key: &str) -> u16 {
    if !(1..=65535).contains(&p.value) {
        d.error(
            &p.referenced,
            format!("{key} {} is out of range", p.value),
            "ports are 1..65535",
        );
        return 0;
    }
    p.value as u16
}

pub(super) fn version(d: &mut Diags, v: &S<String>, key: &str) -> String {
    let ok = v.value.split('.').count() >= 2
        && v.value
            .split('.')
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()));
    if !ok {
        d.error(
            &v.referenced,
            format!("{key} `{}` is not a release version", v.value),
            "use a version such as 3.9.1",
        );
    }
    v.value.clone()
}

/// A directory on the hosts. It goes into classpaths (`:`), `log.dirs` (`,`), unit files and
/// commands, so only plain characters are accepted rather than quoted in five ways.
fn absolute(d: &mut Diags, s: &S<String>, key: &str) -> String {
    if !safe_path(&s.value) {
        d.error(
            &s.referenced,
            format!(
                "{key} `{}` is not an absolute path of plain characters",
                s.value
            ),
            "use an absolute path of letters, digits, `.`, `_`, `-` and `/`",
        );
    }
    s.value.trim_end_matches('/').to_string()
}

fn safe_path(p: &str) -> bool {
    p.starts_with('/')
        && p.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '.' | '_' | '-'))
        && !p.split('/').any(|part| part == "..")
}

/// A JVM heap size as -Xmx takes it: digits and an optional unit (k, m, g, t).
fn heap(d: &mut Diags, v: &Option<S<String>>, key: &str) -> Option<String> {
    let v = v.as_ref()?;
    let digits = v
        .value
        .trim_end_matches(['k', 'K', 'm', 'M', 'g', 'G', 't', 'T']);
    let ok = !digits.is_empty()
        && v.value.len() - digits.len() <= 1
        && digits.chars().all(|c| c.is_ascii_digit())
        && digits.parse::<u64>().is_ok_and(|n| n > 0);
    if !ok {
        d.error(
            &v.referenced,
            format!("{key} `{}` is not a JVM memory size", v.value),
            "write digits and a unit, as -Xmx takes them: 512m, 2g",
        );
    }
    Some(v.value.clone())
}

/// Bytes of a size in -Xmx's syntax (already checked by [`heap`]).
fn size_bytes(v: &str) -> Option<u64> {
    let (digits, shift) = match v.chars().last()?.to_ascii_lowercase() {
        'k' => (&v[..v.len() - 1], 10),
        'm' => (&v[..v.len() - 1], 20),
        'g' => (&v[..v.len() - 1], 30),
        't' => (&v[..v.len() - 1], 40),
        _ => (v, 0),
    };
    digits.parse::<u64>().ok()?.checked_mul(1 << shift)
}

/// `<service>.limits`: open files within what Linux allows a process (fs.nr_open's default),
/// and a memory cap in the heap's syntax above the largest heap of the service (the group's,
/// else its default, and every host's own).
fn limits(
    d: &mut Diags,
    l: &model::LimitSettings,
    service: &str,
    group_heap: &str,
    heaps: &[String],
) -> Limits {
    let mut out = Limits::default();
    if let Some(n) = &l.nofile {
        if !(1024..=1_048_576).contains(&n.value) {
            d.error(
                &n.referenced,
                format!("{service}.limits.nofile {} is out of range", n.value),
                "use 1024..=1048576 (Kafka's docs ask for 100000 or more)",
            );
        }
        out.nofile = n.value.clamp(1024, 1_048_576) as u64;
    }
    if let Some(m) = &l.memory_max {
        let key = format!("{service}.limits.memory_max");
        heap(d, &Some(m.clone()), &key);
        let largest = std::iter::once(group_heap)
            .chain(heaps.iter().map(String::as_str))
            .filter_map(|h| Some((size_bytes(h)?, h)))
            .max();
        if let (Some(max), Some((h, heap))) = (size_bytes(&m.value), largest)
            && max <= h
        {
            d.error(
                &m.referenced,
                format!("{key} {} is not above {service}'s heap ({heap})", m.value),
                "the JVM needs memory beyond its heap (metaspace, threads, buffers): give at least heap + 256m",
            );
        }
        // systemd reads only upper-case unit letters (K, M, G, T).
        out.memory_max = Some(m.value.to_ascii_uppercase());
    }
    out
}

/// JVM arguments, each one word of the java command line. A single string is split as a
/// shell would (and the user is told so): a list says exactly what is meant.
fn jvm_opts(d: &mut Diags, v: &Option<S<model::JvmOpts>>, key: &str) -> Option<Vec<String>> {
    let v = v.as_ref()?;
    let args = match &v.value {
        model::JvmOpts::List(args) => args.clone(),
        model::JvmOpts::Line(line) => match shlex::split(line) {
            Some(args) => {
                if args.len() > 1 || args.first().is_some_and(|a| a != line) {
                    d.warn(
                        &v.referenced,
                        format!(
                            "{key} is a string; it is split as shell words into {} argument(s): {}",
                            args.len(),
                            args.iter()
                                .map(|a| format!("`{a}`"))
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                        "write it as a list, one argument per item, to say exactly what you mean",
                    );
                }
                args
            }
            None => {
                d.error(
                    &v.referenced,
                    format!("{key} `{line}` cannot be split into arguments (an unclosed quote?)"),
                    "write it as a list, one JVM argument per item",
                );
                return None;
            }
        },
    };
    for a in &args {
        if !a.starts_with('-') {
            d.error(
                &v.referenced,
                format!("{key}: `{a}` is not a JVM option (they start with `-`)"),
                "give JVM options such as -XX:+AlwaysPreTouch or -Dname=value",
            );
        }
    }
    Some(args)
}

fn valid_cluster_id(id: &str) -> bool {
    id.len() == 22
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// An IP address or a DNS name: it is written into listeners, zoo.cfg and commands.
fn valid_address(a: &str) -> bool {
    a.parse::<std::net::IpAddr>().is_ok()
        || (!a.is_empty()
            && a.len() <= 253
            && a.split('.').all(|l| {
                !l.is_empty()
                    && !l.starts_with('-')
                    && l.chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'))
            }))
}

fn valid_name(n: &str) -> bool {
    !n.is_empty()
        && n.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// Keys clusterctl writes itself, and what to set instead. An extra property with one of
/// these names would silently override (Java Properties: the last line wins) an id, a
/// listener or a directory that the rest of the tool relies on.
const KAFKA_MANAGED: &[(&str, &str)] = &[
    ("broker.id", "hosts.<name>.broker_id"),
    ("node.id", "hosts.<name>.broker_id or controller_id"),
    ("process.roles", "groups.kafka and groups.controller"),
    (
        "listeners",
        "kafka.port, kafka.controller_port and the hosts' addresses",
    ),
    (
        "advertised.listeners",
        "kafka.port and the hosts' addresses",
    ),
    ("controller.quorum.voters", "groups.controller"),
    ("controller.quorum.bootstrap.servers", "groups.controller"),
    ("controller.listener.names", "groups.controller"),
    ("zookeeper.metadata.migration.enable", "clusterctl migrate"),
    ("inter.broker.listener.name", "kafka.port"),
    (
        "zookeeper.connect",
        "groups.zookeeper and zookeeper.client_port",
    ),
    ("log.dirs", "kafka.log_dirs"),
    ("num.partitions", "kafka.num_partitions"),
    (
        "default.replication.factor",
        "kafka.default_replication_factor",
    ),
    ("min.insync.replicas", "kafka.min_insync_replicas"),
    (
        "offsets.topic.replication.factor",
        "kafka.offsets_topic_replication_factor",
    ),
    (
        "transaction.state.log.replication.factor",
        "kafka.transaction_state_log_replication_factor",
    ),
    ("log.retention.hours", "kafka.log_retention_hours"),
    ("log.segment.bytes", "kafka.log_segment_bytes"),
    ("broker.rack", "hosts.<name>.rack"),
];

const ZK_MANAGED: &[(&str, &str)] = &[
    ("dataDir", "zookeeper.data_dir"),
    ("dataLogDir", "zookeeper.data_log_dir"),
    ("clientPort", "zookeeper.client_port"),
    ("tickTime", "zookeeper.tick_time"),
    ("initLimit", "zookeeper.init_limit"),
    ("syncLimit", "zookeeper.sync_limit"),
    ("maxClientCnxns", "zookeeper.max_client_cnxns"),
    (
        "4lw.commands.whitelist",
        "nothing: clusterctl's health checks need exactly these",
    ),
    (
        "server.",
        "groups.zookeeper, zookeeper.peer_port and zookeeper.election_port",
    ),
];

fn props(
    d: &mut Diags,
    m: &model::Props,
    managed: &[(&str, &str)],
    section: &str,
) -> BTreeMap<String, String> {
    for (k, _) in m {
        let hit = managed.iter().find(|(name, _)| {
            k.value == *name || (name.ends_with('.') && k.value.starts_with(name))
        });
        if let Some((_, instead)) = hit {
            d.error(
                &k.referenced,
                format!(
                    "{section}.properties sets `{}`, which clusterctl manages",
                    k.value
                ),
                &format!("set {instead} instead"),
            );
        }
    }
    m.iter()
        .map(|(k, v)| (k.value.clone(), v.to_string()))
        .collect()
}
