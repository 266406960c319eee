//! The plan of one apply: every change on every host, computed from desired state plus facts
//! before any host is touched. `--dry-run` prints this list and apply executes it, item by
//! item, so what would change and what runs are one value.

use super::facts::Facts;
use super::plan::HostPlan;
use crate::artifacts::Product;
use crate::inventory::{Host, Inventory, JdkMethod, ZkSource};
use crate::render::{ManagedFile, Service};

#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// The JDK from the OS package manager.
    Package(String),
    User(String),
    /// A directory with its owner (user and group) and mode.
    Dir {
        path: String,
        owner: String,
        mode: u32,
    },
    /// The JDK tarball, unpacked into its directory with `<install_dir>/jdk` linked to it.
    Jdk(super::actions::JdkTarball),
    /// A tarball unpacked into a new versioned directory: inert until a link or an env file
    /// points at it.
    Unpack {
        product: Product,
        dir: String,
    },
    /// The stable symlink of a product moved to a versioned directory.
    Link {
        product: Product,
        link: String,
        target: String,
    },
    File(ManagedFile),
    /// nisshi: the broker binary pushed, checked on the host (`--version`), moved into its
    /// versioned directory, the stable link swapped (the env file names the versioned path).
    Binary {
        dir: String,
    },
    /// nisshi: a change to the storage host's PostgreSQL (package, service, certificate,
    /// password, role), made by the storage step.
    Storage(String),
    /// KRaft storage formatted (a host never formatted before).
    Format {
        cluster_id: String,
        quorum: QuorumInit,
    },
    /// ZooKeeper mode: the SCRAM users brokers and clusterctl log in as, created in ZooKeeper
    /// before a broker's first start (users already there are kept).
    ZkUsers(Vec<String>),
    /// A controller that follows the metadata log as an observer becomes a voter of the
    /// dynamic quorum (AddRaftVoter), once it has caught up.
    AddVoter {
        id: i64,
    },
    /// Per-broker dynamic configs set or deleted on a running broker (IncrementalAlterConfigs,
    /// checked with DescribeConfigs): a change applied live, or overrides made to follow
    /// server.properties around a roll or a start (engine::live).
    LiveConfig(super::live::LiveConfig),
    Start(Service),
    Restart(Service),
    /// A service the inventory no longer gives this host: stopped (through the roller's
    /// rules) and kept from starting at boot; its files and data stay.
    Retire(Service),
}

/// How a host's KRaft storage is formatted for the controller quorum.
#[derive(Debug, Clone, PartialEq)]
pub enum QuorumInit {
    /// `controller.quorum.voters` in server.properties names the voters: no flag.
    Static,
    /// A controller of a dynamic quorum formed now: `--initial-controllers` with this value
    /// (the same on every controller).
    Initial(String),
    /// A broker, or a controller joining a running dynamic quorum: `--no-initial-controllers`.
    Joining,
}

/// When a change may go live on its host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum When {
    /// In its step: nothing running depends on it (a stopped service, a new directory).
    Now,
    /// When the roller takes this host for that service: written, then restarted.
    WithRestart(Service),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Planned {
    pub change: Change,
    pub when: When,
}

impl Change {
    /// One line of the plan, as `--dry-run` prints it.
    pub fn describe(&self) -> String {
        match self {
            Change::Package(p) => format!("install package {p}"),
            Change::User(u) => format!("create system user {u}"),
            Change::Dir { path, owner, mode } => {
                format!("directory {path} ({owner}:{owner}, mode {mode:o})")
            }
            Change::Jdk(j) => format!("unpack the JDK tarball into {}", j.dir),
            Change::Unpack { product, dir } => format!("unpack {product:?} into {dir}"),
            Change::Link { link, target, .. } => format!("link {link} -> {target}"),
            Change::File(f) => format!(
                "file {} (mode {:o}, {}:{})",
                f.path, f.mode, f.owner, f.group
            ),
            Change::Binary { dir } => format!("push the nisshi binary into {dir}"),
            Change::Storage(what) => what.clone(),
            Change::Format { cluster_id, quorum } => format!(
                "format the KRaft log dirs for cluster {cluster_id}{}",
                match quorum {
                    QuorumInit::Static => String::new(),
                    QuorumInit::Initial(v) => format!(" (dynamic quorum, initial controllers {v})"),
                    QuorumInit::Joining => " (joining the dynamic quorum)".into(),
                }
            ),
            Change::ZkUsers(users) => format!(
                "create SCRAM user(s) {} in ZooKeeper unless there (before Kafka's first start)",
                users.join(", ")
            ),
            Change::AddVoter { id } => format!(
                "add controller {id} to the KRaft quorum once it has caught up (AddRaftVoter)"
            ),
            Change::LiveConfig(c) => c.describe(),
            Change::Start(s) => format!("start {s}"),
            Change::Restart(s) => format!("restart {s} (one host at a time, through the roller)"),
            Change::Retire(s) => format!(
                "retire {s}: no longer in the inventory for this host; stop it and disable it at \
                 boot (one host at a time; its data and files are kept)"
            ),
        }
    }
}

impl Planned {
    pub fn describe(&self) -> String {
        match self.when {
            When::WithRestart(svc) if !matches!(self.change, Change::Restart(_)) => format!(
                "{} (goes live when the roller restarts {svc} here)",
                self.change.describe()
            ),
            _ => self.change.describe(),
        }
    }
}

/// The services on `p`'s host that use `product`'s files.
fn users_of(inv: &Inventory, host: &Host, product: Product) -> Vec<Service> {
    let mut v = Vec::new();
    match product {
        Product::Kafka => {
            if host.in_zookeeper && inv.zookeeper.source == ZkSource::Kafka {
                v.push(Service::ZooKeeper);
            }
            if host.runs_kafka() {
                v.push(Service::Kafka);
            }
        }
        Product::ZooKeeper => {
            if host.in_zookeeper && inv.zookeeper.source == ZkSource::Tarball {
                v.push(Service::ZooKeeper);
            }
        }
    }
    v
}

/// The products `p`'s host needs unpacked.
pub fn products(inv: &Inventory, host: &Host) -> Vec<Product> {
    [Product::ZooKeeper, Product::Kafka]
        .into_iter()
        .filter(|&pr| !users_of(inv, host, pr).is_empty())
        .collect()
}

/// A nisshi broker's working and log directories.
pub fn nisshi_dirs() -> Vec<(String, &'static str, u32)> {
    vec![
        (
            crate::render::services::NISSHI_DATA_DIR.into(),
            "nisshi",
            0o750,
        ),
        ("/var/log/nisshi".into(), "nisshi", 0o750),
    ]
}

/// Directories clusterctl creates on `host`, with owner and mode.
pub fn dirs(inv: &Inventory, host: &Host) -> Vec<(String, &'static str, u32)> {
    let mut v = Vec::new();
    if host.in_zookeeper {
        let z = &inv.zookeeper;
        for d in [&z.data_dir, &z.data_log_dir] {
            v.push((d.clone(), "zookeeper", 0o750));
        }
        v.push(("/var/log/zookeeper".into(), "zookeeper", 0o750));
    }
    if host.runs_kafka() {
        for d in inv.kafka_log_dirs(host) {
            v.push((d, "kafka", 0o750));
        }
        v.push((format!("/var/log/{}", host.kafka_name()), "kafka", 0o750));
    }
    v.dedup_by(|a, b| a.0 == b.0);
    v
}

/// What the plan needs beyond one host's facts, computed once per apply.
#[derive(Debug, Default, Clone)]
pub struct Inputs {
    /// KRaft: the cluster's one id (inventory, hosts, or fresh).
    pub cluster_id: Option<String>,
    /// `jdk.method: tarball`: the tarball, hashed once.
    pub jdk: Option<super::actions::JdkTarball>,
    /// KRaft: how the controller quorum is formed and changed.
    pub quorum: Option<QuorumInputs>,
}

/// The KRaft quorum's part of the plan's inputs.
#[derive(Debug, Clone, Default)]
pub struct QuorumInputs {
    pub dynamic: bool,
    /// The initial quorum is being formed: unformatted controllers join it at format time.
    pub forming: bool,
    /// `--initial-controllers` for the controllers of a quorum being formed.
    pub initial: String,
    /// The voters now, as the running quorum reports them (`None`: not known).
    pub voters: Option<std::collections::BTreeSet<i32>>,
}

/// Every change `p`'s host needs (JVM flavor), from its rendered files and facts. A change
/// that a running service would pick up at its next restart waits for the roller
/// (`When::WithRestart`); everything else is made in its step.
pub fn plan_host(inv: &Inventory, p: &HostPlan, inputs: &Inputs) -> Vec<Planned> {
    let f: &Facts = &p.facts;
    let running = |svc: Service| f.pids.contains_key(&svc);
    let mut out: Vec<Planned> = Vec::new();
    let now = |change| Planned {
        change,
        when: When::Now,
    };
    // A side controller's machine-wide needs (user, JDK, unpacked release) are its
    // machine's host's changes: made once, in the step before any of its own.
    let side = p.host.side_of.is_some();
    let mut users: Vec<&str> = Vec::new();
    if p.host.in_zookeeper {
        users.push("zookeeper");
    }
    if p.host.runs_kafka() && !side {
        users.push("kafka");
    }
    for u in users {
        if !f.users.iter().any(|x| x == u) {
            out.push(now(Change::User(u.into())));
        }
    }
    for (path, owner, mode) in dirs(inv, &p.host) {
        if f.dirs.get(&path) != Some(&format!("{mode:o}:{owner}:{owner}")) {
            out.push(now(Change::Dir {
                path,
                owner: owner.into(),
                mode,
            }));
        }
    }
    // A host in no group (a bastion, or one whose services retire) needs no JDK.
    let jvm = !super::plan::host_services(inv, &p.host).is_empty();
    match inv.jdk.method {
        _ if !jvm || side => {}
        JdkMethod::Package if f.java.is_none() => {
            out.push(now(Change::Package(super::actions::jdk_package(inv, f))))
        }
        JdkMethod::Tarball => {
            if let Some(jdk) = &inputs.jdk
                && f.links.get(&format!("{}/jdk", inv.install_dir)) != Some(&jdk.name)
            {
                out.push(now(Change::Jdk(jdk.clone())));
            }
        }
        _ => {}
    }
    // Restarts owed per service; a running service's changed files and links go live with it.
    let mut restart: Vec<Service> = Vec::new();
    let mut stage = |svcs: &[Service], out: &mut Vec<Planned>, change: Change| {
        let live: Vec<Service> = svcs.iter().copied().filter(|&s| running(s)).collect();
        for &s in &live {
            if !restart.contains(&s) {
                restart.push(s);
            }
        }
        // ZooKeeper rolls before Kafka, so a link both use moves with the first.
        let when = live.first().map_or(When::Now, |&s| When::WithRestart(s));
        out.push(Planned { change, when });
    };
    for product in products(inv, &p.host) {
        if side {
            continue;
        }
        let (dir, link, name) = HostPlan::install_dir(inv, product);
        let svcs = users_of(inv, &p.host, product);
        if !f.installed.contains_key(&dir) {
            out.push(now(Change::Unpack {
                product,
                dir: dir.clone(),
            }));
        }
        if f.links.get(&link) != Some(&name) {
            stage(
                &svcs,
                &mut out,
                Change::Link {
                    product,
                    link,
                    target: name,
                },
            );
        }
    }
    let mut after_start = None;
    for file in p.changed_files() {
        let svcs: Vec<Service> = file.restarts.into_iter().collect();
        // Only the quorum's bootstrap list changed (a controller added or removed): a running
        // node follows the voter set in the metadata log and reads the list only to find the
        // quorum at its next start, so the file is written without a restart.
        if file.path == p.host.server_properties()
            && running(Service::Kafka)
            && let Some(old) = &f.server_properties
            && super::live::only_next_start_keys(old, &file.content)
        {
            out.push(now(Change::File(file.clone())));
            continue;
        }
        if file.path == super::live::SERVER_PROPERTIES && p.host.in_kafka {
            let live_config = |kind, set: &[(String, String)], delete: &[String]| {
                Change::LiveConfig(super::live::LiveConfig {
                    kind,
                    broker: p.broker_id.unwrap_or(-1) as i32,
                    addr: format!("{}:{}", p.host.address, inv.kafka.port),
                    set: set.to_vec(),
                    delete: delete.to_vec(),
                })
            };
            match &p.live {
                // A running broker whose file changes only in what Kafka updates at runtime:
                // set live, then the file is written for the next start. No restart.
                Some(d) if d.live && running(Service::Kafka) => {
                    if !d.set.is_empty() || !d.delete.is_empty() {
                        out.push(now(live_config(
                            super::live::LiveKind::Live,
                            &d.set,
                            &d.delete,
                        )));
                    }
                    out.push(now(Change::File(file.clone())));
                    continue;
                }
                // With the roll; overrides set live earlier follow the file just before it.
                Some(d)
                    if running(Service::Kafka) && (!d.set.is_empty() || !d.delete.is_empty()) =>
                {
                    stage(
                        &svcs,
                        &mut out,
                        live_config(super::live::LiveKind::BeforeRestart, &d.set, &d.delete),
                    );
                }
                _ if !running(Service::Kafka) => {
                    after_start = super::live::after_start(inv, p).map(|(set, delete)| {
                        live_config(super::live::LiveKind::AfterStart, &set, &delete)
                    });
                }
                _ => {}
            }
        }
        stage(&svcs, &mut out, Change::File(file.clone()));
    }
    let q = inputs.quorum.clone().unwrap_or_default();
    if let Some(id) = &inputs.cluster_id
        && p.host.runs_kafka()
        && f.cluster_id.is_none()
        // A migrating cluster's brokers keep the storage they have in ZooKeeper mode.
        && (!inv.kafka.migrating || !p.host.in_kafka)
    {
        let quorum = match (q.dynamic, q.forming && p.host.in_controller) {
            (false, _) => QuorumInit::Static,
            (true, true) => QuorumInit::Initial(q.initial.clone()),
            (true, false) => QuorumInit::Joining,
        };
        out.push(now(Change::Format {
            cluster_id: id.to_string(),
            quorum,
        }));
    }
    let bootstrap: Vec<String> = crate::security::bootstrap_users(inv)
        .map(|u| u.name.clone())
        .collect();
    if !inv.kafka.kraft
        && !inv.kafka.migrating
        && p.host.in_kafka
        && f.cluster_id.is_none()
        && !bootstrap.is_empty()
    {
        out.push(now(Change::ZkUsers(bootstrap)));
    }
    for (&svc, r) in &f.retired {
        if r.pending() {
            out.push(now(Change::Retire(svc)));
        }
    }
    for svc in super::plan::host_services(inv, &p.host) {
        if !running(svc) {
            out.push(now(Change::Start(svc)));
            if svc == Service::Kafka {
                out.extend(after_start.take().map(now));
            }
        } else if restart.contains(&svc) || f.restart_owed.contains(&svc) {
            out.push(Planned {
                change: Change::Restart(svc),
                when: When::WithRestart(svc),
            });
        }
    }
    // A controller of a running dynamic quorum that does not vote yet: new (formatted now
    // to join), or left an observer by an interrupted apply.
    if q.dynamic
        && !q.forming
        && p.host.in_controller
        && let Some(id) = p.broker_id
        && (f.cluster_id.is_none() || q.voters.as_ref().is_some_and(|v| !v.contains(&(id as i32))))
    {
        out.push(now(Change::AddVoter { id }));
    }
    out
}

/// A nisshi broker's plan (made once its store's URL is known): changed files, staged for the
/// roller while the broker runs, then a start, or a restart when files or the binary changed.
pub fn plan_broker(p: &HostPlan, binary: Option<&str>) -> Vec<Planned> {
    let svc = Service::Nisshi;
    let running = p.facts.pids.contains_key(&svc);
    let when = if running {
        When::WithRestart(svc)
    } else {
        When::Now
    };
    let now = |change| Planned {
        change,
        when: When::Now,
    };
    let mut out = Vec::new();
    if !p.facts.users.iter().any(|u| u == "nisshi") {
        out.push(now(Change::User("nisshi".into())));
    }
    for (path, owner, mode) in nisshi_dirs() {
        if p.facts.dirs.get(&path) != Some(&format!("{mode:o}:{owner}:{owner}")) {
            out.push(now(Change::Dir {
                path,
                owner: owner.into(),
                mode,
            }));
        }
    }
    // A new binary lands in its own versioned directory, inert until the env file names it.
    out.extend(binary.map(|dir| now(Change::Binary { dir: dir.into() })));
    let binary_changed = binary.is_some();
    let files: Vec<Planned> = p
        .changed_files()
        .into_iter()
        .map(|f| Planned {
            change: Change::File(f.clone()),
            when,
        })
        .collect();
    let files_changed = !files.is_empty();
    out.extend(files);
    if !running {
        out.push(Planned {
            change: Change::Start(svc),
            when,
        });
    } else if binary_changed || files_changed {
        out.push(Planned {
            change: Change::Restart(svc),
            when,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::engine::tests::inv;

    fn plan(inv: &Inventory, facts: Vec<Facts>) -> Vec<HostPlan> {
        crate::engine::plan::plans_from_facts(inv, facts, false).unwrap()
    }

    /// Facts of a host where `inv` is fully applied and both services run.
    fn converged(inv: &Inventory) -> Vec<Facts> {
        let empty = plan(inv, vec![Facts::default(); 3]);
        empty
            .iter()
            .map(|p| {
                let mut f = Facts::default();
                for file in &p.files {
                    f.files
                        .insert(file.path.clone(), HostPlan::fingerprint(file));
                }
                for (d, o, m) in dirs(inv, &p.host) {
                    f.dirs.insert(d, format!("{m:o}:{o}:{o}"));
                }
                for pr in products(inv, &p.host) {
                    let (dir, link, name) = HostPlan::install_dir(inv, pr);
                    f.installed.insert(dir, "sha".into());
                    f.links.insert(link, name);
                }
                f.users = vec!["zookeeper".into(), "kafka".into()];
                f.java = Some("openjdk 17".into());
                f.pids.insert(Service::ZooKeeper, 10);
                f.pids.insert(Service::Kafka, 20);
                f.myid = p.host.myid;
                f
            })
            .collect()
    }

    fn lines(v: &[Planned]) -> Vec<String> {
        v.iter().map(Planned::describe).collect()
    }

    #[test]
    fn a_converged_host_has_an_empty_plan() {
        let inv = inv("");
        let plans = plan(&inv, converged(&inv));
        for p in &plans {
            assert_eq!(
                plan_host(&inv, p, &Inputs::default()),
                vec![],
                "{}",
                p.host.name
            );
        }
    }

    #[test]
    fn a_jump_host_in_no_group_gets_nothing() {
        let text = concat!(
            "ssh:\n  jump: j\nhosts:\n  j: { address: 10.0.1.1 }\n",
            "  a: { address: 10.0.0.1 }\n  b: { address: 10.0.0.2 }\n  c: { address: 10.0.0.3 }\n",
            "groups:\n  zookeeper: [a, b, c]\n  kafka: [a, b, c]\n",
        );
        let inv = crate::inventory::parse(std::path::Path::new("i.yaml"), text).unwrap();
        let apt = Facts {
            package_manager: "apt".into(),
            ..Facts::default()
        };
        let plans = plan(&inv, vec![apt; 4]);
        let changes = |name: &str| {
            let p = plans.iter().find(|p| p.host.name == name).unwrap();
            lines(&plan_host(&inv, p, &Inputs::default()))
        };
        assert_eq!(changes("j"), Vec::<String>::new());
        assert!(
            changes("a").contains(&"install package openjdk-17-jre-headless".to_string()),
            "{:?}",
            changes("a")
        );
    }

    /// ZooKeeper mode with SASL: a broker never started asks for the admin and broker users
    /// in ZooKeeper; one that has run (a cluster id on disk) does not, nor does KRaft.
    #[test]
    fn a_new_secured_zookeeper_mode_broker_bootstraps_its_users() {
        let text = include_str!("../../inventories/secure-zookeeper.yaml");
        let zk = crate::inventory::parse(std::path::Path::new("s.yaml"), text).unwrap();
        crate::security::install(crate::security::Material::placeholder(&zk));
        let fresh = plan(&zk, vec![Facts::default(); 3]);
        let v = plan_host(&zk, &fresh[0], &Inputs::default());
        let asked: Vec<&Planned> = v
            .iter()
            .filter(|c| matches!(c.change, Change::ZkUsers(_)))
            .collect();
        assert_eq!(asked.len(), 1, "{:?}", lines(&v));
        assert_eq!(
            asked[0].change,
            Change::ZkUsers(vec!["admin".into(), "broker".into()])
        );
        assert_eq!(asked[0].when, When::Now);
        let started = Facts {
            cluster_id: Some("x".into()),
            ..Facts::default()
        };
        let ran = plan(&zk, vec![started; 3]);
        let v = plan_host(&zk, &ran[0], &Inputs::default());
        assert!(
            !v.iter().any(|c| matches!(c.change, Change::ZkUsers(_))),
            "{:?}",
            lines(&v)
        );
        let text = include_str!("../../inventories/secure.yaml");
        let kraft = crate::inventory::parse(std::path::Path::new("k.yaml"), text).unwrap();
        let plans = plan(&kraft, vec![Facts::default(); 3]);
        let v = plan_host(&kraft, &plans[0], &Inputs::default());
        assert!(
            !v.iter().any(|c| matches!(c.change, Change::ZkUsers(_))),
            "{:?}",
            lines(&v)
        );
    }

    #[test]
    fn a_first_install_does_everything_now() {
        let inv = inv("");
        let apt = Facts {
            package_manager: "apt".into(),
            ..Facts::default()
        };
        let plans = plan(&inv, vec![apt; 3]);
        let v = plan_host(&inv, &plans[0], &Inputs::default());
        assert!(v.iter().all(|c| c.when == When::Now), "{:?}", lines(&v));
        let l = lines(&v);
        for want in [
            "create system user zookeeper",
            "create system user kafka",
            "install package openjdk-17-jre-headless",
            "link /opt/kafka -> kafka_2.13-3.9.1",
            "start zookeeper",
            "start kafka",
        ] {
            assert!(l.iter().any(|x| x == want), "{want} in {l:#?}");
        }
        assert!(
            l.iter()
                .any(|x| x.starts_with("file /etc/kafka/server.properties"))
        );
    }

    /// A changed Kafka property on running brokers: server.properties waits for the roller,
    /// ZooKeeper is left alone.
    #[test]
    fn a_changed_property_is_staged_for_the_roller() {
        let before = inv("");
        let facts = converged(&before);
        let after = inv("kafka:\n  properties:\n    num.io.threads: 4\n");
        let plans = plan(&after, facts);
        let v = plan_host(&after, &plans[1], &Inputs::default());
        let server = v
            .iter()
            .find(|c| matches!(&c.change, Change::File(f) if f.path == "/etc/kafka/server.properties"))
            .expect("server.properties changes");
        assert_eq!(server.when, When::WithRestart(Service::Kafka));
        assert_eq!(v.len(), 2, "{:?}", lines(&v));
        assert_eq!(
            v[1],
            Planned {
                change: Change::Restart(Service::Kafka),
                when: When::WithRestart(Service::Kafka)
            }
        );
    }

    /// `converged` facts, each host's current server.properties content included (as the
    /// facts script reads it), and the plans of `after` on them.
    fn on_converged(before: &Inventory, after: &Inventory) -> Vec<HostPlan> {
        let old = plan(before, converged(before));
        let mut facts = converged(before);
        for (f, p) in facts.iter_mut().zip(&old) {
            f.server_properties = p
                .files
                .iter()
                .find(|f| f.path == crate::engine::live::SERVER_PROPERTIES)
                .map(|f| f.content.clone());
        }
        plan(after, facts)
    }

    /// What `live::decide_all` would decide for a broker that says `state` of its keys.
    fn decided(
        p: &mut HostPlan,
        inv: &Inventory,
        state: &std::collections::BTreeMap<String, crate::health::kafka::BrokerConfig>,
    ) {
        let new = p
            .files
            .iter()
            .find(|f| f.path == crate::engine::live::SERVER_PROPERTIES)
            .unwrap();
        let changes = crate::engine::live::changed_keys(
            p.facts.server_properties.as_deref().unwrap(),
            &new.content,
        );
        p.live = Some(crate::engine::live::decide(
            &inv.kafka.version,
            p.broker_id.unwrap() as i32,
            &changes,
            Ok(state),
            None,
        ));
    }

    /// A property Kafka updates at runtime, on running brokers: set live, then the file is
    /// written in the configure step. Nothing restarts.
    #[test]
    fn a_dynamic_property_goes_live_without_a_restart() {
        let before = inv("");
        let after = inv("kafka:\n  properties:\n    message.max.bytes: 2000000\n");
        let mut plans = on_converged(&before, &after);
        decided(&mut plans[1], &after, &Default::default());
        let v = plan_host(&after, &plans[1], &Inputs::default());
        assert!(v.iter().all(|c| c.when == When::Now), "{:?}", lines(&v));
        assert_eq!(
            lines(&v),
            [
                "apply live on broker 2 (IncrementalAlterConfigs, no restart): set message.max.bytes=2000000",
                "file /etc/kafka/server.properties (mode 640, root:kafka)"
            ]
        );
        let Change::LiveConfig(c) = &v[0].change else {
            panic!()
        };
        assert_eq!(c.addr, "10.0.0.2:9092");
        // Undecided (the plan of `restart`, or a broker not asked): the roll, as before.
        let v = plan_host(&after, &plans[0], &Inputs::default());
        assert_eq!(v.last().unwrap().change, Change::Restart(Service::Kafka));
    }

    /// A read-only property beside it: the whole file goes with the roll, and an override set
    /// live earlier is made to follow the file just before the restart.
    #[test]
    fn a_read_only_property_rolls_and_overrides_follow_the_file() {
        let before = inv("kafka:\n  properties:\n    message.max.bytes: 2000000\n");
        let after = inv(
            "kafka:\n  properties:\n    message.max.bytes: 3000000\n    queued.max.requests: 600\n",
        );
        let mut plans = on_converged(&before, &after);
        let state = std::collections::BTreeMap::from([(
            "message.max.bytes".to_string(),
            crate::health::kafka::BrokerConfig {
                per_broker: Some("2000000".into()),
                ..Default::default()
            },
        )]);
        decided(&mut plans[0], &after, &state);
        let v = plan_host(&after, &plans[0], &Inputs::default());
        assert!(
            v.iter()
                .all(|c| c.when == When::WithRestart(Service::Kafka)),
            "{:?}",
            lines(&v)
        );
        assert!(lines(&v)[0].starts_with(
            "before the restart, the per-broker overrides of broker 1 follow the file"
        ));
        assert!(
            lines(&v)[0].contains(": set message.max.bytes=3000000 (goes live when the roller"),
            "{:?}",
            lines(&v)
        );
        assert_eq!(v[2].change, Change::Restart(Service::Kafka));
    }

    /// A broker stopped while its file changes: the file at once, the start, then (once it
    /// answers) any override of a changed dynamic key follows the file.
    #[test]
    fn a_stopped_broker_gets_its_overrides_reconciled_after_its_start() {
        let before = inv("");
        let after = inv(
            "kafka:\n  properties:\n    message.max.bytes: 2000000\n    queued.max.requests: 600\n",
        );
        let mut plans = on_converged(&before, &after);
        plans[2].facts.pids.remove(&Service::Kafka);
        let v = plan_host(&after, &plans[2], &Inputs::default());
        assert!(v.iter().all(|c| c.when == When::Now), "{:?}", lines(&v));
        let l = lines(&v);
        assert_eq!(l[l.len() - 2], "start kafka");
        assert!(
            l[l.len() - 1]
                .starts_with("once kafka has started, any per-broker override of broker 3")
                && l[l.len() - 1].ends_with(": set message.max.bytes=2000000"),
            "{l:#?}"
        );
        // A first install has no old file: nothing to reconcile.
        let fresh = plan(&after, vec![Facts::default(); 3]);
        let v = plan_host(&after, &fresh[2], &Inputs::default());
        assert!(!v.iter().any(|c| matches!(c.change, Change::LiveConfig(_))));
    }

    /// With a stopped broker, its files go out at once and it is started, not rolled.
    #[test]
    fn a_stopped_service_gets_its_files_at_once() {
        let before = inv("");
        let mut facts = converged(&before);
        facts[2].pids.remove(&Service::Kafka);
        let after = inv("kafka:\n  properties:\n    num.io.threads: 4\n");
        let plans = plan(&after, facts);
        let v = plan_host(&after, &plans[2], &Inputs::default());
        assert!(v.iter().all(|c| c.when == When::Now), "{:?}", lines(&v));
        assert_eq!(v.last().unwrap().change, Change::Start(Service::Kafka));
    }

    /// A version change: the new directory is unpacked at once (inert), the link moves with
    /// the restart; with ZooKeeper running from Kafka's jars, with ZooKeeper's (it rolls first).
    #[test]
    fn an_upgrade_moves_the_link_with_the_first_restart() {
        let base = "zookeeper:\n  source: kafka\nkafka:\n  version: 3.8.1\n";
        let before = inv(base);
        let facts = converged(&before);
        let after = inv(&base.replace("3.8.1", "3.9.1"));
        let plans = plan(&after, facts);
        let v = plan_host(&after, &plans[0], &Inputs::default());
        let unpack = v
            .iter()
            .find(|c| matches!(c.change, Change::Unpack { .. }))
            .unwrap();
        assert_eq!(unpack.when, When::Now);
        let link = v
            .iter()
            .find(|c| matches!(c.change, Change::Link { .. }))
            .unwrap();
        assert_eq!(link.when, When::WithRestart(Service::ZooKeeper));
        let restarts: Vec<&Change> = v
            .iter()
            .filter(|c| matches!(c.change, Change::Restart(_)))
            .map(|c| &c.change)
            .collect();
        assert_eq!(
            restarts,
            [
                &Change::Restart(Service::ZooKeeper),
                &Change::Restart(Service::Kafka)
            ]
        );
    }

    /// `controller_process: separate`: the side controller gets its own service, files, dirs
    /// and node.id; the machine-wide steps (user, JDK, unpack, link, java.sh) only once, by
    /// the broker's host.
    #[test]
    fn a_separate_controller_has_its_own_files_and_leaves_the_machine_to_its_broker() {
        let text = "hosts:\n  a: { address: 10.0.0.1 }\n  b: { address: 10.0.0.2 }\n  c: { address: 10.0.0.3 }\n\
                    groups:\n  controller: [a, b, c]\n  kafka: [a, b, c]\n\
                    kafka:\n  version: 4.4.0\n  controller_process: separate\njdk:\n  method: tarball\n  tarball: /etc/passwd\n";
        let inv = crate::inventory::parse(std::path::Path::new("i.yaml"), text).unwrap();
        let apt = Facts {
            package_manager: "apt".into(),
            ..Facts::default()
        };
        let plans = plan(&inv, vec![apt; 6]);
        let (broker, side) = (&plans[0], &plans[1]);
        assert_eq!(side.host.name, "a-controller");
        assert_eq!((broker.broker_id, side.broker_id), (Some(1), Some(3001)));
        let inputs = Inputs {
            cluster_id: Some("AAAAAAAAAAAAAAAAAAAAAA".into()),
            jdk: Some(crate::engine::actions::JdkTarball {
                name: "jdk-17".into(),
                dir: "/opt/jdk-17".into(),
                sha512: String::new(),
            }),
            quorum: None,
        };
        let b = lines(&plan_host(&inv, broker, &inputs));
        let c = lines(&plan_host(&inv, side, &inputs));
        for machine in [
            "create system user kafka",
            "unpack the JDK tarball into /opt/jdk-17",
            "link /opt/kafka -> kafka_2.13-4.4.0",
        ] {
            assert!(b.iter().any(|x| x == machine), "{machine} in {b:#?}");
            assert!(!c.iter().any(|x| x == machine), "{machine} in {c:#?}");
        }
        assert!(
            !c.iter()
                .any(|x| x.starts_with("unpack ") || x.contains("java.sh")),
            "{c:#?}"
        );
        for own in [
            "directory /var/lib/kafka-controller/data (kafka:kafka, mode 750)",
            "directory /var/log/kafka-controller (kafka:kafka, mode 750)",
            "file /etc/kafka-controller/server.properties (mode 640, root:kafka)",
            "file /etc/init.d/kafka-controller (mode 755, root:root)",
            "start kafka",
        ] {
            assert!(c.iter().any(|x| x == own), "{own} in {c:#?}");
        }
        assert!(
            c.iter().any(|x| x.starts_with("format the KRaft log dirs")),
            "{c:#?}"
        );
        let props = |p: &HostPlan| {
            let f = p
                .files
                .iter()
                .find(|f| f.path == p.host.server_properties())
                .unwrap();
            crate::quote::parse_properties(&f.content)
        };
        let (bp, cp) = (props(broker), props(side));
        assert_eq!(bp["process.roles"], "broker");
        assert_eq!(bp["node.id"], "1");
        assert_eq!(bp["listeners"], "PLAINTEXT://10.0.0.1:9092");
        assert_eq!(cp["process.roles"], "controller");
        assert_eq!(cp["node.id"], "3001");
        assert_eq!(cp["listeners"], "CONTROLLER://10.0.0.1:9093");
        assert_eq!(cp["log.dirs"], "/var/lib/kafka-controller/data");
        let env = side
            .files
            .iter()
            .find(|f| f.path == "/etc/kafka-controller/kafka-controller.env")
            .unwrap();
        assert!(
            env.content
                .contains("PID_FILE=/var/run/kafka-controller/kafka-controller.pid"),
            "{}",
            env.content
        );
        assert!(
            env.content.contains("LOG_DIR=/var/log/kafka-controller"),
            "{}",
            env.content
        );
        // Both processes of one machine are planned apart: neither's files are the other's.
        let paths = |p: &HostPlan| {
            p.files
                .iter()
                .map(|f| f.path.clone())
                .collect::<std::collections::BTreeSet<_>>()
        };
        assert!(paths(broker).is_disjoint(&paths(side)), "{:?}", paths(side));
    }

    #[test]
    fn an_unformatted_kraft_host_is_formatted() {
        let text = "hosts:\n  a: { address: 10.0.0.1 }\n  b: { address: 10.0.0.2 }\n  c: { address: 10.0.0.3 }\n\
                    groups:\n  controller: [a, b, c]\n  kafka: [a, b, c]\nkafka:\n  version: 4.4.0\n";
        let inv = crate::inventory::parse(std::path::Path::new("i.yaml"), text).unwrap();
        let plans = plan(&inv, vec![Facts::default(); 3]);
        let v = plan_host(
            &inv,
            &plans[0],
            &Inputs {
                cluster_id: Some("AAAAAAAAAAAAAAAAAAAAAA".into()),
                jdk: None,
                quorum: None,
            },
        );
        assert!(v.contains(&Planned {
            change: Change::Format {
                cluster_id: "AAAAAAAAAAAAAAAAAAAAAA".into(),
                quorum: QuorumInit::Static,
            },
            when: When::Now
        }));
    }
}
