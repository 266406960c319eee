//! Where a migration from ZooKeeper to KRaft stands, read from the hosts alone: each
//! node's server.properties says which stage it was written for, and a restart the hosts
//! still owe says it is not live yet. Pure, so every phase and every mix an interrupted run
//! can leave is tested on fabricated states.

use crate::inventory::MigrationStage;

/// What one broker's server.properties is written for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BrokerFile {
    /// No server.properties: not installed.
    Absent,
    /// ZooKeeper mode, no migration flag.
    Zookeeper,
    /// ZooKeeper mode with `zookeeper.metadata.migration.enable=true`.
    Migrating,
    /// `process.roles=broker`.
    Kraft,
}

/// What one controller's server.properties is written for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ControllerFile {
    Absent,
    /// A KRaft controller that also writes to ZooKeeper.
    Migrating,
    /// A KRaft controller without the migration flag: finalized.
    Kraft,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Node<F> {
    pub host: String,
    pub file: F,
    /// Runs, with no restart owed: what its file says is live.
    pub live: bool,
}

/// The hosts as the facts show them.
#[derive(Debug, Clone, Default)]
pub struct Observed {
    pub brokers: Vec<Node<BrokerFile>>,
    pub controllers: Vec<Node<ControllerFile>>,
}

/// The cluster's place in the migration, as `status` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Not begun: ZooKeeper-mode brokers, no controller configured.
    Zookeeper,
    /// Phase 2: controllers being set up in migration mode.
    Controllers,
    /// Phase 3: brokers being rolled into migration mode.
    BrokersMigrating,
    /// Phase 4: brokers being rolled into KRaft.
    BrokersKraft,
    /// Phase 4 done: every broker in KRaft, controllers still writing to ZooKeeper.
    Soak,
    /// Controllers being rolled without ZooKeeper (`--finalize`, not reversible).
    Finalizing,
    /// Migrated: KRaft only.
    Kraft,
    /// `--rollback` under way: the controllers are gone, some brokers still carry the
    /// migration flag.
    RollingBack,
}

impl Phase {
    /// The `mode` of `status` (also its JSON `"mode"`).
    pub fn mode(self) -> String {
        match self {
            Phase::Zookeeper => "zookeeper".into(),
            Phase::Kraft => "kraft".into(),
            p => format!("migrating: {}", p.name()),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Phase::Zookeeper => "zookeeper",
            Phase::Controllers => "controllers",
            Phase::BrokersMigrating => "brokers-migrating",
            Phase::BrokersKraft => "brokers-kraft",
            Phase::Soak => "soak",
            Phase::Finalizing => "finalizing",
            Phase::Kraft => "kraft",
            Phase::RollingBack => "rolling-back",
        }
    }

    /// The first stage `migrate` runs from here: the one whose files some node already
    /// has (an interrupted run converges it), or the next one.
    pub fn resume(self) -> Option<MigrationStage> {
        match self {
            Phase::Zookeeper | Phase::Controllers => Some(MigrationStage::Controllers),
            Phase::BrokersMigrating => Some(MigrationStage::BrokersMigrating),
            Phase::BrokersKraft | Phase::Soak => Some(MigrationStage::BrokersKraft),
            Phase::Finalizing | Phase::Kraft | Phase::RollingBack => None,
        }
    }
}

/// The phase the hosts are in, or why their states are no phase a migration passes
/// through (then nothing should touch them until an operator has looked).
pub fn detect(o: &Observed) -> Result<Phase, String> {
    let count = |f: BrokerFile| o.brokers.iter().filter(|b| b.file == f).count();
    let names = |f: BrokerFile| hosts_where(&o.brokers, |b| b.file == f);
    let cnames = |f: ControllerFile| hosts_where(&o.controllers, |c| c.file == f);
    let n = o.brokers.len();
    let (zk, mig, kraft) = (
        count(BrokerFile::Zookeeper),
        count(BrokerFile::Migrating),
        count(BrokerFile::Kraft),
    );
    if count(BrokerFile::Absent) > 0 {
        return Err(format!(
            "broker host(s) {} run no Kafka yet: a migration moves a running cluster; install \
             brokers before (without groups.controller) or after it",
            names(BrokerFile::Absent)
        ));
    }
    let c_absent = o
        .controllers
        .iter()
        .filter(|c| c.file == ControllerFile::Absent)
        .count();
    let c_kraft = o
        .controllers
        .iter()
        .filter(|c| c.file == ControllerFile::Kraft)
        .count();
    let all_live = |c: bool| c && o.controllers.iter().all(|c| c.live);
    if zk > 0 && kraft > 0 {
        return Err(format!(
            "broker(s) {} run in KRaft while {} run in ZooKeeper mode without the migration flag: \
             no phase of a migration has both",
            names(BrokerFile::Kraft),
            names(BrokerFile::Zookeeper)
        ));
    }
    if c_kraft > 0 && kraft < n {
        return Err(format!(
            "controller(s) {} were finalized (no migration flag) while broker(s) {} are not in \
             KRaft yet",
            cnames(ControllerFile::Kraft),
            hosts_where(&o.brokers, |b| b.file != BrokerFile::Kraft)
        ));
    }
    if c_absent > 0 && kraft > 0 {
        return Err(format!(
            "controller host(s) {} have no controller while brokers are already in KRaft: a \
             controller cannot join in the middle of a migration",
            cnames(ControllerFile::Absent)
        ));
    }
    Ok(if zk == n && c_absent == o.controllers.len() {
        Phase::Zookeeper
    } else if c_absent > 0 && mig > 0 {
        // Only a rollback takes controllers away while brokers carry the flag.
        Phase::RollingBack
    } else if zk == n {
        Phase::Controllers
    } else if kraft == 0 {
        Phase::BrokersMigrating
    } else if kraft < n || !o.brokers.iter().all(|b| b.live) {
        Phase::BrokersKraft
    } else if c_kraft == 0 {
        Phase::Soak
    } else if all_live(c_kraft == o.controllers.len()) {
        Phase::Kraft
    } else {
        Phase::Finalizing
    })
}

/// The hosts of the nodes `pick` selects, for a message.
fn hosts_where<F>(nodes: &[Node<F>], pick: impl Fn(&Node<F>) -> bool) -> String {
    nodes
        .iter()
        .filter(|n| pick(n))
        .map(|n| n.host.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// A broker's server.properties, classified.
pub fn broker_file(props: Option<&str>) -> BrokerFile {
    let Some(text) = props else {
        return BrokerFile::Absent;
    };
    let has = |k: &str, v: &str| text.lines().any(|l| l.trim() == format!("{k}={v}"));
    if text.lines().any(|l| l.starts_with("process.roles=")) {
        BrokerFile::Kraft
    } else if has("zookeeper.metadata.migration.enable", "true") {
        BrokerFile::Migrating
    } else {
        BrokerFile::Zookeeper
    }
}

/// A dedicated controller's server.properties, classified.
pub fn controller_file(props: Option<&str>, formatted: bool) -> ControllerFile {
    match props {
        None => ControllerFile::Absent,
        // Written but never formatted: the controller does not exist yet.
        Some(_) if !formatted => ControllerFile::Absent,
        Some(t)
            if t.lines()
                .any(|l| l.trim() == "zookeeper.metadata.migration.enable=true") =>
        {
            ControllerFile::Migrating
        }
        Some(_) => ControllerFile::Kraft,
    }
}

/// `/migration` in ZooKeeper, written by the active KRaft controller of a migration.
#[derive(Debug, Clone, PartialEq)]
pub struct MigrationZnode {
    pub controller_id: i64,
    /// -1 until ZooKeeper's metadata has been copied into the metadata log.
    pub metadata_offset: i64,
}

pub fn parse_migration_znode(data: &[u8]) -> Result<MigrationZnode, String> {
    let v: serde_json::Value =
        serde_json::from_slice(data).map_err(|e| format!("/migration is not JSON: {e}"))?;
    let int = |k: &str| {
        v.get(k)
            .and_then(|x| x.as_i64())
            .ok_or_else(|| format!("/migration has no {k}: {v}"))
    };
    Ok(MigrationZnode {
        controller_id: int("kraft_controller_id")?,
        metadata_offset: int("kraft_metadata_offset")?,
    })
}

/// Gate after phase 2: the elected controller runs the migration (it wrote `/migration`)
/// and waits for the brokers: Kafka's "pre-migration".
pub fn controllers_ready(z: Option<&MigrationZnode>) -> Result<String, String> {
    match z {
        None => Err(
            "no /migration in ZooKeeper yet: no KRaft controller has taken up the \
                     migration"
                .into(),
        ),
        Some(z) => Ok(format!(
            "controller {} runs the migration and waits for the brokers (pre-migration)",
            z.controller_id
        )),
    }
}

/// Gate after phase 3: the controller copied ZooKeeper's metadata into the metadata log, which
/// it does only once every ZooKeeper-mode broker has registered with it.
pub fn metadata_migrated(z: Option<&MigrationZnode>) -> Result<String, String> {
    match z {
        Some(z) if z.metadata_offset >= 0 => Ok(format!(
            "metadata migrated from ZooKeeper to KRaft by controller {} (metadata log offset {}); \
             the controllers write to both",
            z.controller_id, z.metadata_offset
        )),
        Some(z) => Err(format!(
            "controller {} has not copied ZooKeeper's metadata yet (it waits until every broker \
             has registered with it)",
            z.controller_id
        )),
        None => Err("no /migration in ZooKeeper: no KRaft controller runs the migration".into()),
    }
}

/// Where `--finalize` may start: at the soak point, or where an interrupted finalize left the
/// controllers (resumed), or after it (a re-run, which changes nothing).
pub fn finalize_from(p: Phase) -> Result<(), String> {
    match p {
        Phase::Soak | Phase::Finalizing | Phase::Kraft => Ok(()),
        p => Err(format!(
            "the cluster is in phase `{}`, not at the soak point: finalize only once every \
             broker runs in KRaft; run clusterctl migrate first",
            p.name()
        )),
    }
}

/// One step of `--rollback`, after Kafka 3.9's "Reverting to ZooKeeper mode During the
/// Migration" (ops.html).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RollbackStep {
    /// Brokers rolled from KRaft back into ZooKeeper mode, keeping the migration flag (it
    /// stays until the second roll).
    BrokersMigrating,
    /// The controllers stopped and their metadata deleted, then `/controller` (held by a KRaft
    /// controller) and `/migration` deleted, so a broker becomes the controller again.
    Deprovision,
    /// Brokers rolled without the migration flag and the quorum: plain ZooKeeper mode.
    BrokersZookeeper,
}

/// The steps that take the cluster from phase `p` back to ZooKeeper mode (empty: it is
/// there), or why it cannot go back.
pub fn rollback_from(p: Phase) -> Result<Vec<RollbackStep>, String> {
    use RollbackStep::*;
    match p {
        Phase::Zookeeper => Ok(vec![]),
        Phase::Controllers => Ok(vec![Deprovision]),
        Phase::BrokersMigrating | Phase::RollingBack => Ok(vec![Deprovision, BrokersZookeeper]),
        Phase::BrokersKraft | Phase::Soak => {
            Ok(vec![BrokersMigrating, Deprovision, BrokersZookeeper])
        }
        Phase::Finalizing | Phase::Kraft => Err(format!(
            "the cluster is in phase `{}`: finalize has begun, the controllers no longer write \
             to ZooKeeper, and a cluster cannot go back to ZooKeeper mode from there",
            p.name()
        )),
    }
}

/// Whether `/controller` names a KRaft controller (a node id that is no broker's), which a
/// rollback deletes so that a ZooKeeper-mode broker takes the role; a broker holding it keeps
/// it.
pub fn kraft_holds_controller(data: &[u8], broker_ids: &[i64]) -> Result<bool, String> {
    let v: serde_json::Value =
        serde_json::from_slice(data).map_err(|e| format!("/controller is not JSON: {e}"))?;
    let id = v
        .get("brokerid")
        .and_then(|x| x.as_i64())
        .ok_or_else(|| format!("/controller has no brokerid: {v}"))?;
    Ok(!broker_ids.contains(&id))
}

/// What a KRaft controller of Kafka 3.9 logs when it takes over as the active controller
/// (ActivationRecordsGenerator, logged at WARN): the first, when a controller without the
/// migration flag finds the migration still running and ends it; the second, on any later
/// activation. Kafka's own system test (zookeeper_migration_test.py) reads the same lines.
pub const COMPLETED: &str = "Completing the ZK migration since";
pub const POST_MIGRATION: &str = "Loaded ZK migration state of POST_MIGRATION";

/// Gate after finalize: a controller's log says the metadata log holds the migration state
/// POST_MIGRATION, which nothing undoes. `logs` holds, per controller host, the lines of its
/// log that carry either marker (or why they could not be read).
pub fn migration_finalized(logs: &[(String, Result<String, String>)]) -> Result<String, String> {
    for (host, lines) in logs {
        if let Ok(text) = lines
            && let Some(line) = text
                .lines()
                .find(|l| l.contains(COMPLETED) || l.contains(POST_MIGRATION))
        {
            let what = if line.contains(COMPLETED) {
                "completed the migration"
            } else {
                "loaded the state post-migration"
            };
            return Ok(format!(
                "migration state post-migration: controller on {host} {what}; the controllers \
                 no longer write to ZooKeeper"
            ));
        }
    }
    let unread: Vec<String> = logs
        .iter()
        .filter_map(|(h, r)| r.as_ref().err().map(|e| format!("{h}: {e}")))
        .collect();
    Err(if unread.is_empty() {
        "no controller has logged the migration state post-migration yet".into()
    } else {
        format!(
            "no controller has logged the migration state post-migration yet (unread: {})",
            unread.join("; ")
        )
    })
}

/// `/cluster/id` in ZooKeeper: `{"version":"1","id":"..."}`.
pub fn parse_cluster_id(data: &[u8]) -> Result<String, String> {
    let v: serde_json::Value =
        serde_json::from_slice(data).map_err(|e| format!("/cluster/id is not JSON: {e}"))?;
    v.get("id")
        .and_then(|x| x.as_str())
        .map(str::to_string)
        .ok_or_else(|| format!("/cluster/id has no id: {v}"))
}

/// One broker, as the pre-check sees it.
#[derive(Debug, Clone)]
pub struct BrokerCheck {
    pub host: String,
    /// Runs the inventory's Kafka version (its install and link are in place).
    pub runs_target: bool,
    /// `inter.broker.protocol.version` in its server.properties.
    pub ibp: Option<String>,
    /// `cluster.id` of its meta.properties.
    pub cluster_id: Option<String>,
}

/// Phase 1's inputs: facts, and what ZooKeeper and the brokers answered.
#[derive(Debug, Clone)]
pub struct Precheck {
    pub brokers: Vec<BrokerCheck>,
    pub version: String,
    /// The ensemble's problems (empty: healthy).
    pub zookeeper: Vec<String>,
    /// Reasons Kafka is not healthy enough to roll (roller::kafka_preflight), or that it did
    /// not answer.
    pub kafka: Vec<String>,
    /// `/cluster/id`, `Ok(None)` when absent, `Err` when ZooKeeper did not answer.
    pub zk_cluster_id: Result<Option<String>, String>,
    /// The pre-flight refusals (engine::preflight) of the controllers' hosts, `host: check:
    /// why`: a controller port taken, too little disk or memory.
    pub controller_hosts: Vec<String>,
}

/// Why the migration may not start; empty: it may.
pub fn precheck(c: &Precheck) -> Vec<String> {
    let mut why = Vec::new();
    let mm = crate::versions::major_minor(&c.version);
    for b in &c.brokers {
        if !b.runs_target {
            why.push(format!(
                "broker {} does not run Kafka {}: upgrade first (without groups.controller: \
                 apply, then apply --finalize-upgrade)",
                b.host, c.version
            ));
        }
        if let Some(ibp) = &b.ibp
            && ibp != &mm
            && !ibp.starts_with(&format!("{mm}-"))
        {
            why.push(format!(
                "broker {} pins inter.broker.protocol.version={ibp}: an upgrade is in progress; \
                 finish it (without groups.controller: apply --finalize-upgrade)",
                b.host
            ));
        }
    }
    for p in &c.zookeeper {
        why.push(format!("ZooKeeper: {p}"));
    }
    for p in &c.kafka {
        why.push(format!("Kafka: {p}"));
    }
    for p in &c.controller_hosts {
        why.push(format!("controller host {p}"));
    }
    match &c.zk_cluster_id {
        Err(e) => why.push(format!("cannot read the cluster id from ZooKeeper: {e}")),
        Ok(None) => why.push(
            "ZooKeeper has no /cluster/id: no broker of this cluster has registered there".into(),
        ),
        Ok(Some(id)) => {
            for b in &c.brokers {
                match &b.cluster_id {
                    Some(own) if own != id => why.push(format!(
                        "broker {} has cluster id {own} in meta.properties, ZooKeeper has {id}: \
                         it belongs to another cluster",
                        b.host
                    )),
                    None => why.push(format!(
                        "broker {} has no cluster id in meta.properties",
                        b.host
                    )),
                    _ => {}
                }
            }
        }
    }
    why
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(host: &str, file: BrokerFile, live: bool) -> Node<BrokerFile> {
        Node {
            host: host.into(),
            file,
            live,
        }
    }
    fn c(host: &str, file: ControllerFile, live: bool) -> Node<ControllerFile> {
        Node {
            host: host.into(),
            file,
            live,
        }
    }
    fn obs(brokers: &[BrokerFile], controllers: &[ControllerFile]) -> Observed {
        Observed {
            brokers: brokers
                .iter()
                .enumerate()
                .map(|(i, f)| b(&format!("n{}", i + 1), *f, true))
                .collect(),
            controllers: controllers
                .iter()
                .enumerate()
                .map(|(i, f)| c(&format!("c{}", i + 1), *f, true))
                .collect(),
        }
    }
    use BrokerFile as B;
    use ControllerFile as C;

    #[test]
    fn every_phase_from_consistent_hosts() {
        let cases = [
            (obs(&[B::Zookeeper; 3], &[C::Absent; 3]), Phase::Zookeeper),
            (
                obs(&[B::Zookeeper; 3], &[C::Migrating, C::Absent, C::Absent]),
                Phase::Controllers,
            ),
            (
                obs(&[B::Zookeeper; 3], &[C::Migrating; 3]),
                Phase::Controllers,
            ),
            (
                obs(
                    &[B::Migrating, B::Zookeeper, B::Zookeeper],
                    &[C::Migrating; 3],
                ),
                Phase::BrokersMigrating,
            ),
            (
                obs(&[B::Migrating; 3], &[C::Migrating; 3]),
                Phase::BrokersMigrating,
            ),
            (
                obs(&[B::Kraft, B::Migrating, B::Migrating], &[C::Migrating; 3]),
                Phase::BrokersKraft,
            ),
            (obs(&[B::Kraft; 3], &[C::Migrating; 3]), Phase::Soak),
            (
                obs(&[B::Kraft; 3], &[C::Kraft, C::Migrating, C::Migrating]),
                Phase::Finalizing,
            ),
            (obs(&[B::Kraft; 3], &[C::Kraft; 3]), Phase::Kraft),
        ];
        for (o, want) in cases {
            assert_eq!(detect(&o), Ok(want), "{o:?}");
        }
    }

    #[test]
    fn a_run_killed_mid_roll_resumes_the_stage_it_was_in() {
        // n2's new file is written, its restart owed: still phase 3, resumed there.
        let mut o = obs(
            &[B::Migrating, B::Migrating, B::Zookeeper],
            &[C::Migrating; 3],
        );
        o.brokers[1].live = false;
        let p = detect(&o).unwrap();
        assert_eq!(p, Phase::BrokersMigrating);
        assert_eq!(p.resume(), Some(MigrationStage::BrokersMigrating));
        // The last broker's KRaft file written, not restarted: not yet the soak point.
        let mut o = obs(&[B::Kraft; 3], &[C::Migrating; 3]);
        o.brokers[2].live = false;
        assert_eq!(detect(&o), Ok(Phase::BrokersKraft));
        // A controller set up but down: phase 2 again (its apply starts it).
        let mut o = obs(&[B::Zookeeper; 3], &[C::Migrating; 3]);
        o.controllers[0].live = false;
        assert_eq!(
            detect(&o).unwrap().resume(),
            Some(MigrationStage::Controllers)
        );
    }

    #[test]
    fn mixes_no_migration_passes_through_are_refused_naming_hosts() {
        let e = detect(&obs(
            &[B::Kraft, B::Zookeeper, B::Migrating],
            &[C::Migrating; 3],
        ))
        .unwrap_err();
        assert!(e.contains("n1") && e.contains("n2"), "{e}");
        let e = detect(&obs(&[B::Kraft, B::Migrating, B::Kraft], &[C::Kraft; 3])).unwrap_err();
        assert!(e.contains("finalized") && e.contains("n2"), "{e}");
        let e = detect(&obs(
            &[B::Kraft; 3],
            &[C::Migrating, C::Migrating, C::Absent],
        ))
        .unwrap_err();
        assert!(e.contains("c3"), "{e}");
        let e = detect(&obs(&[B::Zookeeper, B::Absent], &[C::Absent])).unwrap_err();
        assert!(e.contains("n2") && e.contains("no Kafka"), "{e}");
    }

    #[test]
    fn modes_as_status_names_them() {
        assert_eq!(Phase::Zookeeper.mode(), "zookeeper");
        assert_eq!(
            Phase::BrokersMigrating.mode(),
            "migrating: brokers-migrating"
        );
        assert_eq!(Phase::Soak.mode(), "migrating: soak");
        assert_eq!(Phase::Kraft.mode(), "kraft");
        assert_eq!(Phase::Kraft.resume(), None);
    }

    #[test]
    fn files_classified_by_what_they_say() {
        assert_eq!(broker_file(None), B::Absent);
        assert_eq!(
            broker_file(Some("broker.id=1\nzookeeper.connect=z:2181\n")),
            B::Zookeeper
        );
        assert_eq!(
            broker_file(Some(
                "broker.id=1\nzookeeper.metadata.migration.enable=true\n"
            )),
            B::Migrating
        );
        // A value other than true is no migration flag.
        assert_eq!(
            broker_file(Some("zookeeper.metadata.migration.enable=false\n")),
            B::Zookeeper
        );
        assert_eq!(
            broker_file(Some("process.roles=broker\nnode.id=1\n")),
            B::Kraft
        );
        let mig = "process.roles=controller\nzookeeper.metadata.migration.enable=true\n";
        assert_eq!(controller_file(Some(mig), true), C::Migrating);
        assert_eq!(controller_file(Some(mig), false), C::Absent);
        assert_eq!(
            controller_file(Some("process.roles=controller\n"), true),
            C::Kraft
        );
        assert_eq!(controller_file(None, false), C::Absent);
    }

    fn healthy() -> Precheck {
        Precheck {
            brokers: (1..=3)
                .map(|i| BrokerCheck {
                    host: format!("n{i}"),
                    runs_target: true,
                    ibp: None,
                    cluster_id: Some("abc".into()),
                })
                .collect(),
            version: "3.9.1".into(),
            zookeeper: vec![],
            kafka: vec![],
            zk_cluster_id: Ok(Some("abc".into())),
            controller_hosts: vec![],
        }
    }

    #[test]
    fn precheck_passes_a_healthy_39_cluster_and_names_every_blocker() {
        assert!(precheck(&healthy()).is_empty());
        let mut c = healthy();
        c.brokers[0].ibp = Some("3.9".into());
        c.brokers[1].ibp = Some("3.9-IV0".into());
        assert!(precheck(&c).is_empty(), "{:?}", precheck(&c));
        c.brokers[2].ibp = Some("3.8".into());
        c.brokers[1].runs_target = false;
        c.brokers[0].cluster_id = Some("other".into());
        c.zookeeper = vec!["n3 is not serving".into()];
        c.kafka = vec!["under-replicated partitions: t-0".into()];
        c.controller_hosts = vec!["n5: ports: port 9093 (kafka.controller_port) is taken".into()];
        let why = precheck(&c);
        assert_eq!(why.len(), 6, "{why:#?}");
        assert!(why[0].contains("n2") && why[0].contains("3.9.1"), "{why:?}");
        assert!(why[1].contains("n3") && why[1].contains("=3.8"), "{why:?}");
        assert!(why[2].starts_with("ZooKeeper: "), "{why:?}");
        assert!(why[3].starts_with("Kafka: under-replicated"), "{why:?}");
        assert!(
            why[4].starts_with("controller host n5: ports: port 9093"),
            "{why:?}"
        );
        assert!(why[5].contains("n1") && why[5].contains("other"), "{why:?}");
        let mut c = healthy();
        c.zk_cluster_id = Err("connection refused".into());
        assert!(precheck(&c)[0].contains("connection refused"));
        c.zk_cluster_id = Ok(None);
        assert!(precheck(&c)[0].contains("no /cluster/id"));
    }

    #[test]
    fn finalize_starts_only_at_the_soak_point_or_resumes() {
        for p in [Phase::Soak, Phase::Finalizing, Phase::Kraft] {
            assert_eq!(finalize_from(p), Ok(()), "{p:?}");
        }
        for p in [
            Phase::Zookeeper,
            Phase::Controllers,
            Phase::BrokersMigrating,
            Phase::BrokersKraft,
        ] {
            let e = finalize_from(p).unwrap_err();
            assert!(
                e.contains(p.name()) && e.contains("clusterctl migrate"),
                "{e}"
            );
        }
    }

    #[test]
    fn finalize_gate_reads_the_controllers_logs() {
        let staying = "[2026-12-03 06:00:00,001] WARN [QuorumController id=3001] Performing \
            controller activation. Loaded ZK migration state of MIGRATION. Staying in ZK \
            migration mode since 'zookeeper.metadata.migration.enable' is still 'true'.";
        let completing = "[2026-12-03 06:01:00,001] WARN [QuorumController id=3002] Performing \
            controller activation. Loaded ZK migration state of MIGRATION. Completing the ZK \
            migration since this controller was configured with \
            'zookeeper.metadata.migration.enable' set to 'false'.";
        let later = "[2026-12-03 06:02:00,001] WARN [QuorumController id=3003] Performing \
            controller activation. Loaded ZK migration state of POST_MIGRATION.";
        let at = |v: &[(&str, Result<&str, &str>)]| {
            migration_finalized(
                &v.iter()
                    .map(|(h, r)| (h.to_string(), r.map(str::to_string).map_err(str::to_string)))
                    .collect::<Vec<_>>(),
            )
        };
        assert!(at(&[("c1", Ok(staying)), ("c2", Ok(""))]).is_err());
        let ok = at(&[("c1", Ok(staying)), ("c2", Ok(completing))]).unwrap();
        assert!(ok.contains("c2") && ok.contains("completed"), "{ok}");
        assert!(at(&[("c3", Ok(later))]).unwrap().contains("c3"));
        // One unreadable log does not hide another's answer, and is named when none answers.
        assert!(at(&[("c1", Err("timed out")), ("c3", Ok(later))]).is_ok());
        let e = at(&[("c1", Err("timed out")), ("c2", Ok(staying))]).unwrap_err();
        assert!(e.contains("c1: timed out"), "{e}");
    }

    #[test]
    fn rollback_follows_kafkas_revert_table_and_resumes() {
        use RollbackStep::*;
        assert_eq!(rollback_from(Phase::Zookeeper), Ok(vec![]));
        assert_eq!(rollback_from(Phase::Controllers), Ok(vec![Deprovision]));
        assert_eq!(
            rollback_from(Phase::BrokersMigrating),
            Ok(vec![Deprovision, BrokersZookeeper])
        );
        for p in [Phase::BrokersKraft, Phase::Soak] {
            assert_eq!(
                rollback_from(p),
                Ok(vec![BrokersMigrating, Deprovision, BrokersZookeeper])
            );
        }
        for p in [Phase::Finalizing, Phase::Kraft] {
            assert!(rollback_from(p).unwrap_err().contains("cannot go back"));
        }
        // Killed after the controllers went: the brokers still carry the flag, some or all.
        let o = obs(&[B::Migrating, B::Zookeeper, B::Migrating], &[C::Absent; 3]);
        assert_eq!(detect(&o), Ok(Phase::RollingBack));
        assert_eq!(
            rollback_from(Phase::RollingBack),
            Ok(vec![Deprovision, BrokersZookeeper])
        );
        assert_eq!(Phase::RollingBack.resume(), None);
        // Killed during the deprovision: one controller gone, two still there.
        let o = obs(&[B::Migrating; 3], &[C::Absent, C::Migrating, C::Migrating]);
        assert_eq!(detect(&o), Ok(Phase::RollingBack));
        // Done: ZooKeeper mode, the controllers' data deleted.
        assert_eq!(
            detect(&obs(&[B::Zookeeper; 3], &[C::Absent; 3])),
            Ok(Phase::Zookeeper)
        );
    }

    #[test]
    fn rollback_deletes_controller_only_when_a_kraft_controller_holds_it() {
        let kraft = br#"{"version":2,"brokerid":3001,"timestamp":"1","kraftControllerEpoch":4}"#;
        assert_eq!(kraft_holds_controller(kraft, &[1, 2, 3]), Ok(true));
        let broker = br#"{"version":2,"brokerid":2,"timestamp":"1"}"#;
        assert_eq!(kraft_holds_controller(broker, &[1, 2, 3]), Ok(false));
        assert!(kraft_holds_controller(b"{}", &[1]).is_err());
    }

    #[test]
    fn cluster_id_znode() {
        assert_eq!(
            parse_cluster_id(br#"{"version":"1","id":"Jd1lG3XyQnqlBxg8KqPGHw"}"#),
            Ok("Jd1lG3XyQnqlBxg8KqPGHw".to_string())
        );
        assert!(parse_cluster_id(br#"{"version":"1"}"#).is_err());
    }

    #[test]
    fn gates_read_the_migration_znode() {
        let z = parse_migration_znode(
            br#"{"version":0,"kraft_controller_id":3001,"kraft_controller_epoch":1,"kraft_metadata_offset":-1,"kraft_metadata_epoch":-1}"#,
        )
        .unwrap();
        assert_eq!(
            z,
            MigrationZnode {
                controller_id: 3001,
                metadata_offset: -1
            }
        );
        assert!(controllers_ready(Some(&z)).is_ok());
        assert!(controllers_ready(None).is_err());
        assert!(metadata_migrated(Some(&z)).unwrap_err().contains("3001"));
        let done = MigrationZnode {
            controller_id: 3002,
            metadata_offset: 41,
        };
        assert!(
            metadata_migrated(Some(&done))
                .unwrap()
                .contains("offset 41")
        );
        assert!(metadata_migrated(None).is_err());
        assert!(parse_migration_znode(b"{}").is_err());
        assert!(parse_migration_znode(b"not json").is_err());
    }
}
