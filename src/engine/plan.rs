//! Desired state per host (from the inventory) against facts (from the host): the diff that
//! drives both `apply` and `apply --dry-run`.

use super::change::{Change, Planned, When};
use super::facts::{self, Facts, Query};
use crate::artifacts::{self, Product};
use crate::inventory::{Flavor, Host, Inventory, JdkMethod, ZkSource, ids};
use crate::render::{
    Backend, Ids, InitSystem, Logging, ManagedFile, Renderer, Service, ServiceDef, logging,
};
use crate::transport::Session;
use anyhow::{Context, Result, bail};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};

pub struct HostPlan {
    pub host: Host,
    pub facts: Facts,
    pub init: InitSystem,
    pub files: Vec<ManagedFile>,
    /// Kafka node.id: broker.id for brokers and combined nodes, else the controller's id.
    pub broker_id: Option<i64>,
    /// What apply will change on this host, in order; items leave the list as they are made.
    pub changes: Vec<Planned>,
    /// The logging library of each product, which decided the logging configs in `files`.
    pub logging: Logging,
    /// A running broker's changed server.properties: live or with the roll, per key
    /// (engine::live), decided with what the broker says before the plan is made.
    pub live: Option<super::live::Decision>,
}

impl HostPlan {
    /// `<sha256> <mode>:<owner>:<group>` as the facts script reports it.
    pub fn fingerprint(f: &ManagedFile) -> String {
        let sha = hex::encode(Sha256::digest(f.content.as_bytes()));
        format!("{sha} {:o}:{}:{}", f.mode, f.owner, f.group)
    }

    pub fn file_differs(&self, f: &ManagedFile) -> bool {
        self.facts.files.get(&f.path) != Some(&Self::fingerprint(f))
    }

    /// Files whose content, mode or ownership differ from what is wanted.
    pub fn changed_files(&self) -> Vec<&ManagedFile> {
        self.files.iter().filter(|f| self.file_differs(f)).collect()
    }

    pub fn install_dir(inv: &Inventory, product: Product) -> (String, String, String) {
        let version = match product {
            Product::Kafka => &inv.kafka.version,
            Product::ZooKeeper => &inv.zookeeper.version,
        };
        let (_, _, name) = artifacts::layout(product, version, &inv.kafka.scala_version);
        let link = match product {
            Product::Kafka => "kafka",
            Product::ZooKeeper => "zookeeper",
        };
        (
            format!("{}/{name}", inv.install_dir),
            format!("{}/{link}", inv.install_dir),
            name,
        )
    }

    /// The versioned directory is missing, or the stable symlink points elsewhere.
    pub fn needs_install(&self, inv: &Inventory, product: Product) -> bool {
        let (dir, link, name) = Self::install_dir(inv, product);
        !self.facts.installed.contains_key(&dir) || self.facts.links.get(&link) != Some(&name)
    }

    pub fn running(&self, svc: Service) -> Option<u32> {
        self.facts.pids.get(&svc).copied()
    }

    pub fn restart_pending(&self, svc: Service) -> bool {
        let planned = self
            .changes
            .iter()
            .any(|c| c.change == Change::Restart(svc));
        planned && self.running(svc).is_some()
    }

    /// After a (re)start: nothing owed to `svc` any more.
    pub fn clear_changed(&mut self, svc: Service) {
        self.changes
            .retain(|c| !matches!(c.change, Change::Restart(s) | Change::Start(s) if s == svc));
    }

    /// Take the planned changes `pick` selects out of the plan, to be made now.
    pub fn take(&mut self, pick: impl Fn(&Planned) -> bool) -> Vec<Change> {
        let (taken, kept): (Vec<Planned>, Vec<Planned>) = std::mem::take(&mut self.changes)
            .into_iter()
            .partition(pick);
        self.changes = kept;
        taken.into_iter().map(|p| p.change).collect()
    }

    /// Changes still waiting for the roller to take this host for `svc`.
    pub fn staged(&self, svc: Service) -> bool {
        self.changes
            .iter()
            .any(|c| c.when == When::WithRestart(svc) && !matches!(c.change, Change::Restart(_)))
    }
}

/// The `java` the services will run, for the facts query.
pub fn java_cmd(inv: &Inventory) -> String {
    match crate::render::java_home(inv) {
        Some(home) => format!("{home}/bin/java"),
        None => "java".into(),
    }
}

/// What to ask one host: every path we might manage under either init system, install
/// markers, symlinks, service PIDs, ids on disk.
pub fn query_for<'a>(
    inv: &Inventory,
    host: &Host,
    services: &'a [ServiceDef],
) -> Result<Query<'a>> {
    if inv.flavor == Flavor::Nisshi {
        return Ok(super::nisshi::query(inv, host, services));
    }
    let r = Renderer::new(inv)?;
    // Paths do not depend on ids: render with placeholders to learn them.
    let placeholder = Ids {
        myid: inv.hosts.iter().map(|h| (h.name.clone(), 0)).collect(),
        broker_id: inv.hosts.iter().map(|h| (h.name.clone(), 0)).collect(),
        controller_id: BTreeMap::new(),
    };
    let mut paths = BTreeSet::new();
    for init in [InitSystem::SysV, InitSystem::Systemd] {
        for b in Backend::ALL {
            let logging = Logging {
                zookeeper: b,
                kafka: b,
            };
            for f in r.host_files(inv, host, &placeholder, init, logging)? {
                paths.insert(f.path);
            }
        }
    }
    let mut install_dirs = Vec::new();
    let mut links = Vec::new();
    let mut products = Vec::new();
    if host.runs_kafka() || (host.in_zookeeper && inv.zookeeper.source == ZkSource::Kafka) {
        products.push(Product::Kafka);
    }
    if host.in_zookeeper && inv.zookeeper.source == ZkSource::Tarball {
        products.push(Product::ZooKeeper);
    }
    for p in products {
        let (dir, link, _) = HostPlan::install_dir(inv, p);
        install_dirs.push(dir);
        links.push(link);
    }
    if inv.jdk.method == JdkMethod::Tarball {
        links.push(format!("{}/jdk", inv.install_dir));
    }
    Ok(Query {
        paths: paths.into_iter().collect(),
        dirs: super::change::dirs(inv, host)
            .into_iter()
            .map(|(d, _, _)| d)
            .collect(),
        install_dirs,
        links,
        services: services.iter().collect(),
        retired: retired_candidates(inv, host)
            .into_iter()
            .map(|svc| ServiceDef::new(svc, inv, host))
            .chain(side_left(inv, host))
            .collect(),
        myid_file: host
            .in_zookeeper
            .then(|| format!("{}/myid", inv.zookeeper.data_dir)),
        // Also on hosts without Kafka: a retired broker's id names the replicas it holds.
        meta_properties: inv
            .kafka_log_dirs(host)
            .iter()
            .map(|d| format!("{d}/meta.properties"))
            .collect(),
        server_properties: host.runs_kafka().then(|| host.server_properties()),
        java_cmd: java_cmd(inv),
        resolve: None,
    })
}

pub async fn gather(inv: &Inventory, host: &Host, s: &Session) -> Result<Facts> {
    let services: Vec<ServiceDef> = host_services(inv, host)
        .into_iter()
        .map(|svc| ServiceDef::new(svc, inv, host))
        .collect();
    let q = query_for(inv, host, &services)?;
    let out = s
        .exec_ok(&facts::script(&q))
        .await
        .with_context(|| format!("{}: gathering facts", host.name))?;
    Ok(facts::parse(&out.stdout))
}

/// The services clusterctl runs on `host`.
pub fn host_services(inv: &Inventory, host: &Host) -> Vec<Service> {
    match inv.flavor {
        Flavor::Nisshi if host.in_kafka => vec![Service::Nisshi],
        Flavor::Nisshi => vec![],
        Flavor::Jvm => [
            (host.in_zookeeper, Service::ZooKeeper),
            (host.runs_kafka(), Service::Kafka),
        ]
        .into_iter()
        .filter_map(|(runs, svc)| runs.then_some(svc))
        .collect(),
    }
}

/// The JVM services this host does not run: if clusterctl installed one here before, apply
/// stops and disables it.
pub fn retired_candidates(inv: &Inventory, host: &Host) -> Vec<Service> {
    // A side controller's machine is its broker's host's to retire on.
    if inv.flavor != Flavor::Jvm || host.side_of.is_some() {
        return vec![];
    }
    let runs = host_services(inv, host);
    [Service::ZooKeeper, Service::Kafka]
        .into_iter()
        .filter(|s| !runs.contains(s))
        .collect()
}

/// On a machine the inventory gives no controller beside a broker: the one clusterctl may
/// have installed there before, which nothing retires (guard::check refuses while it runs).
fn side_left(inv: &Inventory, host: &Host) -> Option<ServiceDef> {
    let has_side = inv
        .hosts
        .iter()
        .any(|h| h.side_of.as_deref() == Some(host.name.as_str()));
    if inv.flavor != Flavor::Jvm || host.side_of.is_some() || has_side {
        return None;
    }
    let side = Host {
        side_of: Some(host.name.clone()),
        ..host.clone()
    };
    Some(ServiceDef::new(Service::Kafka, inv, &side))
}

/// Facts from every host, ids resolved (disk wins, then pins, then free ids), files rendered.
pub async fn plan_all(
    inv: &Inventory,
    sessions: &BTreeMap<String, Session>,
) -> Result<Vec<HostPlan>> {
    plan_all_with(inv, sessions, false).await
}

/// `finalize`: drop the inter-broker protocol pin an upgrade left (the second phase).
pub async fn plan_all_with(
    inv: &Inventory,
    sessions: &BTreeMap<String, Session>,
    finalize: bool,
) -> Result<Vec<HostPlan>> {
    let gathered = futures::future::join_all(
        inv.hosts
            .iter()
            .map(|h| async move { gather(inv, h, &sessions[&h.name]).await }),
    )
    .await;
    let mut all_facts = Vec::new();
    for r in gathered {
        all_facts.push(r?);
    }
    // What the running cluster says of its quorum outranks the files: a static quorum may
    // have been upgraded to a dynamic one (Kafka 4.1+, kraft.version 1).
    if inv.kafka.kraft
        && inv.flavor == Flavor::Jvm
        && all_facts
            .iter()
            .any(|f| f.cluster_id.is_some() && f.pids.contains_key(&Service::Kafka))
        && let Some(level) = super::gates::kraft_version(inv).await
    {
        for f in &mut all_facts {
            f.cluster_kraft_version = Some(level);
        }
    }
    plans_from_facts(inv, all_facts, finalize)
}

/// Ids resolved (disk wins, then pins, then free ids) and files rendered, from gathered facts
/// (one per host, in inventory order). Pure: unit tests feed it fabricated facts.
pub fn plans_from_facts(
    inv: &Inventory,
    all_facts: Vec<Facts>,
    finalize: bool,
) -> Result<Vec<HostPlan>> {
    if inv.flavor == Flavor::Nisshi {
        // No ids; files need the storage password, rendered once the storage step has it.
        return Ok(inv
            .hosts
            .iter()
            .zip(all_facts)
            .map(|(host, facts)| HostPlan {
                host: host.clone(),
                init: facts.init.unwrap_or(InitSystem::SysV),
                facts,
                files: vec![],
                broker_id: None,
                changes: vec![],
                logging: logging_for(inv, &[]),
                live: None,
            })
            .collect());
    }
    let ids = resolve_ids(inv, &all_facts)?;
    // The inventory as rendered: with the protocol pin of an upgrade in progress.
    let mut effective = inv.clone();
    if let Some(v) = protocol_pin(inv, &all_facts, finalize) {
        effective
            .kafka
            .properties
            .entry("inter.broker.protocol.version".into())
            .or_insert(v);
    }
    effective.kafka.dynamic_quorum = super::quorum::dynamic(inv, &all_facts);
    let renderer = Renderer::new(&effective)?;
    let logging = logging_for(inv, &all_facts);
    let mut plans = Vec::new();
    for (host, facts) in inv.hosts.iter().zip(all_facts) {
        let init = facts.init.unwrap_or(InitSystem::SysV);
        let files = renderer.host_files(&effective, host, &ids, init, logging)?;
        plans.push(HostPlan {
            broker_id: ids.node_id(&host.name),
            host: host.clone(),
            facts,
            init,
            files,
            changes: vec![],
            logging,
            live: None,
        });
    }
    Ok(plans)
}

/// The logging library of each product: read from the jars of its install dir on a host that
/// has it unpacked, else what its official release ships (the install step checks that).
pub fn logging_for(inv: &Inventory, facts: &[Facts]) -> Logging {
    let backend = |product: Product, version: &str| {
        let (dir, _, _) = HostPlan::install_dir(inv, product);
        facts
            .iter()
            .find_map(|f| f.jars.get(&dir).and_then(|j| logging::from_jars(j)))
            .unwrap_or_else(|| logging::by_release(product, version))
    };
    let kafka = backend(Product::Kafka, &inv.kafka.version);
    Logging {
        kafka,
        zookeeper: match inv.zookeeper.source {
            ZkSource::Kafka => kafka,
            ZkSource::Tarball => backend(Product::ZooKeeper, &inv.zookeeper.version),
        },
    }
}

/// Kafka's two-phase upgrade in ZooKeeper mode: while brokers move to a new version, they keep
/// speaking the old inter-broker protocol (`major.minor` of the oldest version running), so a
/// half-upgraded cluster, or a rollback, works. The pin stays, read back from the hosts, until
/// `apply --finalize-upgrade`. An explicit property in the inventory always wins (the caller
/// inserts the pin only where none is set).
pub fn protocol_pin(inv: &Inventory, facts: &[Facts], finalize: bool) -> Option<String> {
    if inv.kafka.kraft || finalize {
        return None;
    }
    let link = format!("{}/kafka", inv.install_dir);
    let mm = crate::versions::major_minor;
    let want = mm(&inv.kafka.version);
    let mut pins: Vec<String> = inv
        .hosts
        .iter()
        .zip(facts)
        .filter(|(h, _)| h.in_kafka)
        .flat_map(|(_, f)| {
            // `kafka_2.13-3.8.1` -> 3.8: a host still on another version.
            let running = f
                .links
                .get(&link)
                .and_then(|n| n.rsplit('-').next())
                .map(mm);
            // A pin at the running protocol itself (what a migration's phase 3 writes, read
            // back after a rollback) holds nothing back: it is no upgrade in progress.
            running
                .filter(|r| *r != want)
                .into_iter()
                .chain(f.ibp.clone().filter(|p| mm(p) != want))
        })
        .collect();
    pins.sort_by_key(|v| {
        v.split('.')
            .map(|p| p.parse::<u32>().unwrap_or(0))
            .collect::<Vec<_>>()
    });
    pins.into_iter().next()
}

pub fn resolve_ids(inv: &Inventory, facts: &[Facts]) -> Result<Ids> {
    #[derive(Default)]
    struct Set {
        hosts: Vec<String>,
        pinned: BTreeMap<String, i64>,
        disk: BTreeMap<String, i64>,
    }
    impl Set {
        fn add(&mut self, host: &str, pin: Option<i64>, disk: Option<i64>) {
            self.hosts.push(host.to_string());
            self.pinned.extend(pin.map(|p| (host.to_string(), p)));
            self.disk.extend(disk.map(|d| (host.to_string(), d)));
        }
        fn assign(&self, first: i64, what: &str) -> Result<BTreeMap<String, i64>> {
            ids::assign(&self.hosts, &self.pinned, &self.disk, first)
                .map_err(|e| anyhow::anyhow!("{what}: {e}"))
        }
    }
    let (mut zk, mut brokers, mut controllers) = (Set::default(), Set::default(), Set::default());
    for (h, f) in inv.hosts.iter().zip(facts) {
        if h.in_zookeeper {
            zk.add(&h.name, h.myid, f.myid);
        }
        if h.in_kafka {
            brokers.add(&h.name, h.broker_id, f.broker_id);
        } else if h.in_controller {
            controllers.add(&h.name, h.controller_id, f.broker_id);
        }
    }
    let myid = zk.assign(1, "myid")?;
    let broker_id = brokers.assign(1, "broker.id")?;
    // Dedicated controllers number from 3001 (as Kafka's own system tests do): never a broker's id.
    let controller_id = controllers.assign(3001, "controller node.id")?;
    if let Some((h, id)) = myid.iter().find(|(_, id)| !(1..=255).contains(*id)) {
        bail!("host {h} has myid {id} on disk, outside 1..255; fix or remove its myid file");
    }
    for (c, id) in &controller_id {
        if let Some((b, _)) = broker_id.iter().find(|(_, b)| *b == id) {
            bail!(
                "node.id {id} is used by controller {c} and broker {b}; KRaft node ids must be unique"
            );
        }
    }
    Ok(Ids {
        myid,
        broker_id,
        controller_id,
    })
}

/// The KRaft cluster id: the inventory's, else what the hosts' meta.properties say (they
/// must agree), else a fresh one for a first install.
pub fn resolve_cluster_id(inv: &Inventory, plans: &[HostPlan]) -> Result<String> {
    let on_disk: BTreeMap<&str, &str> = plans
        .iter()
        .filter_map(|p| {
            p.facts
                .cluster_id
                .as_deref()
                .map(|c| (p.host.name.as_str(), c))
        })
        .collect();
    let mut distinct: Vec<&str> = on_disk.values().copied().collect();
    distinct.sort();
    distinct.dedup();
    if distinct.len() > 1 {
        bail!(
            "the hosts disagree on the KRaft cluster id (meta.properties): {}; they are not one cluster",
            on_disk
                .iter()
                .map(|(h, c)| format!("{h}={c}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    match (&inv.kafka.cluster_id, distinct.first()) {
        (Some(want), Some(have)) if want != have => bail!(
            "kafka.cluster_id is {want}, but the hosts were formatted with cluster id {have}; \
             a formatted cluster keeps its id: set kafka.cluster_id to {have} or remove it"
        ),
        (_, Some(have)) => Ok(have.to_string()),
        (Some(want), None) => Ok(want.clone()),
        (None, None) => new_cluster_id(),
    }
}

/// 16 random bytes as unpadded URL-safe base64, the form `kafka-storage random-uuid` prints.
/// Like Kafka's own generator, never one starting with `-`: command-line parsers (Kafka's
/// StorageTool among them) would take it for an option.
fn new_cluster_id() -> Result<String> {
    loop {
        let id = base64url(&random_bytes::<16>()?);
        if !id.starts_with('-') {
            return Ok(id);
        }
    }
}

pub(crate) fn random_bytes<const N: usize>() -> Result<[u8; N]> {
    use std::io::Read;
    let mut b = [0u8; N];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut b)?;
    Ok(b)
}

pub(crate) fn base64url(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().fold(0u32, |acc, &b| (acc << 8) | b as u32) << (8 * (3 - chunk.len()));
        for i in 0..=chunk.len() {
            out.push(A[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zk_mode(version: &str) -> Inventory {
        let text = format!(
            "hosts:\n  a: {{ address: 10.0.0.1 }}\n  b: {{ address: 10.0.0.2 }}\n\
             groups:\n  zookeeper: [a]\n  kafka: [a, b]\nkafka:\n  version: {version}\n"
        );
        crate::inventory::parse(std::path::Path::new("i.yaml"), &text).unwrap()
    }

    fn on(version: &str, ibp: Option<&str>) -> Facts {
        let mut f = Facts::default();
        f.links
            .insert("/opt/kafka".into(), format!("kafka_2.13-{version}"));
        f.ibp = ibp.map(str::to_string);
        f
    }

    #[test]
    fn upgrade_pins_the_old_protocol_until_finalized() {
        let inv = zk_mode("3.9.1");
        // First install: nothing to pin.
        assert_eq!(
            protocol_pin(&inv, &[Facts::default(), Facts::default()], false),
            None
        );
        // Hosts still on 3.8.1: pin 3.8 while they move.
        let facts = [on("3.8.1", None), on("3.8.1", None)];
        assert_eq!(protocol_pin(&inv, &facts, false).as_deref(), Some("3.8"));
        // Half-way, and after every host moved, the pin read back from the hosts stays.
        let facts = [on("3.9.1", Some("3.8")), on("3.8.1", Some("3.8"))];
        assert_eq!(protocol_pin(&inv, &facts, false).as_deref(), Some("3.8"));
        let facts = [on("3.9.1", Some("3.8")), on("3.9.1", Some("3.8"))];
        assert_eq!(protocol_pin(&inv, &facts, false).as_deref(), Some("3.8"));
        // Finalized: no pin; a cluster on one version with no pin stays unpinned.
        assert_eq!(protocol_pin(&inv, &facts, true), None);
        assert_eq!(
            protocol_pin(&inv, &[on("3.9.1", None), on("3.9.1", None)], false),
            None
        );
        // A pin at the target's own protocol (a migration rolled back from phase 3) is none.
        let facts = [on("3.9.1", Some("3.9")), on("3.9.1", None)];
        assert_eq!(protocol_pin(&inv, &facts, false), None);
        // The oldest version wins (3.7 and 3.8 hosts while going to 3.9).
        let facts = [on("3.8.1", None), on("3.7.2", None)];
        assert_eq!(protocol_pin(&inv, &facts, false).as_deref(), Some("3.7"));
    }

    #[test]
    fn cluster_ids_look_like_kafkas() {
        assert_eq!(base64url(&[0u8; 16]), "AAAAAAAAAAAAAAAAAAAAAA");
        assert_eq!(base64url(&[0xff; 16]), "_____________________w");
        let id = new_cluster_id().unwrap();
        assert_eq!(id.len(), 22);
        assert_ne!(id, new_cluster_id().unwrap());
        // One draw in 64 would start with `-` without the guard: 5000 draws miss it with
        // probability (63/64)^5000, about 1e-34.
        for _ in 0..5000 {
            let id = new_cluster_id().unwrap();
            assert!(!id.starts_with('-'), "{id}");
            assert_eq!(id.len(), 22, "{id}");
            assert!(
                id.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
                "{id}"
            );
        }
    }
}
