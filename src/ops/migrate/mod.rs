//! `clusterctl migrate`: a ZooKeeper-mode cluster moved to KRaft (KIP-866, Kafka 3.9's
//! `ops.html#kraft_zk_migration`), phase by phase up to the soak point, each phase gated.
//!
//! Each phase is an apply of the inventory at one `MigrationStage`: the engine decides every
//! change before touching a host and rolls brokers one at a time through the roller, each
//! back in every ISR before the next. Where the cluster stands is read from the hosts
//! (phase::detect), so a re-run resumes where an interrupted one stopped.

pub mod phase;

use crate::engine::facts::Facts;
use crate::engine::{self, ApplyOptions, HostPlan, plan};
use crate::health::znode;
use crate::inventory::{Host, Inventory, MigrationStage};
use crate::ops::restart::{RollOptions, Roller};
use crate::ops::roller::{self, Policy};
use crate::render::{Service, ServiceDef};
use crate::report::Reporter;
use crate::transport::HostKeyPolicy;
use crate::transport::quote;
use anyhow::{Context, Result, bail};
use phase::{MigrationZnode, Observed, Phase, RollbackStep};
use std::time::{Duration, Instant};

pub struct MigrateOptions {
    pub policy: HostKeyPolicy,
    /// `--finalize`: from the soak point, the controllers rolled without ZooKeeper.
    pub finalize: bool,
    /// `--rollback`: from any phase before finalize, back to ZooKeeper mode.
    pub rollback: bool,
}

/// What the hosts and ZooKeeper say, read without changing anything.
pub struct Standing {
    pub phase: Phase,
    pub plans: Vec<HostPlan>,
}

/// The phase of a migrating inventory's cluster, from its hosts' facts.
pub fn observe<'a>(hosts: impl Iterator<Item = (&'a Host, &'a Facts)> + Clone) -> Observed {
    let live = |f: &Facts| {
        f.pids.contains_key(&Service::Kafka) && !f.restart_owed.contains(&Service::Kafka)
    };
    Observed {
        brokers: hosts
            .clone()
            .filter(|(h, _)| h.in_kafka)
            .map(|(h, f)| phase::Node {
                host: h.name.clone(),
                file: phase::broker_file(f.server_properties.as_deref()),
                live: live(f),
            })
            .collect(),
        controllers: hosts
            .filter(|(h, _)| h.in_controller)
            .map(|(h, f)| phase::Node {
                host: h.name.clone(),
                file: phase::controller_file(
                    f.server_properties.as_deref(),
                    f.cluster_id.is_some(),
                ),
                live: live(f),
            })
            .collect(),
    }
}

/// Connects, gathers facts, and says where the migration stands.
pub async fn standing(inv: &Inventory, policy: HostKeyPolicy) -> Result<Standing> {
    let sessions = engine::connect_all(inv, policy).await?;
    let plans = plan::plan_all_with(inv, &sessions, false).await?;
    for s in sessions.values() {
        s.close().await;
    }
    let phase = phase::detect(&observe(plans.iter().map(|p| (&p.host, &p.facts))))
        .map_err(|e| anyhow::anyhow!("the hosts are in no phase of a migration: {e}"))?;
    Ok(Standing { phase, plans })
}

pub async fn migrate(inv: &Inventory, opts: &MigrateOptions, rep: &Reporter) -> Result<()> {
    if !inv.kafka.migrating {
        bail!(
            "{} is not a migration: add groups.controller (hosts of their own) to this \
             ZooKeeper-mode inventory, with kafka.version 3.9.x",
            inv.file.display()
        );
    }
    rep.line("reading where the cluster stands");
    let st = standing(inv, opts.policy).await?;
    rep.clear();
    println!("migrate: the cluster is in phase `{}`", st.phase.name());
    if opts.finalize {
        return finalize(inv, opts, &st, rep).await;
    }
    if opts.rollback {
        return rollback(inv, opts, &st, rep).await;
    }
    let Some(first) = st.phase.resume() else {
        if st.phase == Phase::RollingBack {
            bail!(
                "a rollback was started (the controllers are gone, brokers still carry the \
                 migration flag): finish it with clusterctl migrate --rollback {}",
                inv.file.display()
            );
        }
        if st.phase == Phase::Finalizing {
            bail!(
                "a finalize was started (some controllers run without ZooKeeper): finish it with \
                 clusterctl migrate --finalize {}",
                inv.file.display()
            );
        }
        bail!(
            "the migration is finalized (phase `{}`): nothing is left to migrate; remove \
             groups.zookeeper from {} and run clusterctl apply",
            st.phase.name(),
            inv.file.display()
        );
    };
    if st.phase == Phase::Zookeeper {
        let mut plans = st.plans;
        precheck(inv, &mut plans, opts, rep).await?;
    }
    let stages = [
        MigrationStage::Controllers,
        MigrationStage::BrokersMigrating,
        MigrationStage::BrokersKraft,
    ];
    let mut changed = false;
    for stage in stages.into_iter().filter(|s| *s >= first) {
        changed |= run_phase(inv, stage, opts, rep).await?;
    }
    println!(
        "migrate: {}; soak point: every broker runs in KRaft and the controllers still write \
         to ZooKeeper, so the cluster can still go back to ZooKeeper mode",
        if changed {
            "done"
        } else {
            "no change, the cluster was already at the soak point"
        }
    );
    Ok(())
}

/// One phase: the apply of the inventory at `stage`, then its gate. Whether it changed a host.
async fn run_phase(
    inv: &Inventory,
    stage: MigrationStage,
    opts: &MigrateOptions,
    rep: &Reporter,
) -> Result<bool> {
    let t0 = Instant::now();
    println!("migrate: phase {}", describe(stage));
    let mut at = inv.clone();
    at.kafka.stage = Some(stage);
    let summary = engine::apply(&at, &apply_options(opts), rep)
        .await
        .with_context(|| format!("phase `{}`", describe(stage)))?;
    rep.clear();
    print_changes(&summary);
    let t_gate = Instant::now();
    let gate = gate(&at, stage, opts.policy, rep)
        .await
        .with_context(|| format!("gate after phase `{}`", describe(stage)))?;
    rep.clear();
    // The gate's own wait, apart: what the benchmark counts as unavoidable.
    println!(
        "  gate: {gate} (waited {}; {} for the phase)",
        fmt_secs(t_gate.elapsed()),
        fmt_secs(t0.elapsed())
    );
    Ok(summary.changed())
}

fn print_changes(summary: &engine::Summary) {
    for (host, lines) in &summary.changes {
        for l in lines {
            println!("  {host}: {l}");
        }
    }
}

fn describe(stage: MigrationStage) -> &'static str {
    match stage {
        MigrationStage::Controllers => "2: KRaft controllers in migration mode",
        MigrationStage::BrokersMigrating => "3: brokers into migration mode",
        MigrationStage::BrokersKraft => "4: brokers into KRaft",
        MigrationStage::Finalized => "5: controllers without ZooKeeper (finalize)",
    }
}

/// Phase 5: from the soak point, healthy, the controllers rolled without ZooKeeper (the active
/// one last), gated on the metadata log's migration state.
async fn finalize(
    inv: &Inventory,
    opts: &MigrateOptions,
    st: &Standing,
    rep: &Reporter,
) -> Result<()> {
    phase::finalize_from(st.phase)
        .map_err(|e| anyhow::anyhow!("refusing to finalize: {e}; nothing was changed"))?;
    if st.phase == Phase::Soak {
        rep.line("pre-check: Kafka and the KRaft quorum");
        let mut why = kafka_problems(inv, &st.plans, rep).await;
        match engine::gates::quorum(inv).await {
            Ok(q) => why.extend(
                q.problems(
                    &engine::gates::expected_voters(&st.plans),
                    engine::gates::FETCH_TIMEOUT_MS,
                )
                .into_iter()
                .map(|p| format!("KRaft quorum: {p}")),
            ),
            Err(e) => why.push(format!("KRaft quorum: {e:#}")),
        }
        rep.clear();
        if !why.is_empty() {
            bail!(
                "refusing to finalize: the cluster is not healthy; nothing was changed on any \
                 host:\n  {}",
                why.join("\n  ")
            );
        }
        println!(
            "migrate: finalizing: the controllers stop writing to ZooKeeper; this cannot be \
             undone: from here the cluster cannot go back to ZooKeeper mode"
        );
    }
    let changed = run_phase(inv, MigrationStage::Finalized, opts, rep).await?;
    println!(
        "migrate: {}; the cluster runs in KRaft. Next: remove groups.zookeeper from {} and run \
         clusterctl apply: it stops ZooKeeper on those hosts and keeps it from starting at boot \
         (its data and files stay)",
        if changed {
            "finalized"
        } else {
            "no change, the migration was already finalized"
        },
        inv.file.display()
    );
    Ok(())
}

/// Back to ZooKeeper mode from any phase before finalize, after Kafka 3.9's "Reverting to
/// ZooKeeper mode During the Migration": each step resumable, as the phase is read again.
async fn rollback(
    inv: &Inventory,
    opts: &MigrateOptions,
    st: &Standing,
    rep: &Reporter,
) -> Result<()> {
    let steps = phase::rollback_from(st.phase)
        .map_err(|e| anyhow::anyhow!("refusing to roll back: {e}; nothing was changed"))?;
    let next = format!(
        "remove groups.controller from {} (a later clusterctl migrate starts over)",
        inv.file.display()
    );
    if steps.is_empty() {
        println!("migrate: no change, the cluster runs in ZooKeeper mode; {next}");
        return Ok(());
    }
    rep.line("pre-check: ZooKeeper");
    let (_, zk) = engine::gates::zk_probe(inv).await;
    rep.clear();
    if !zk.healthy {
        bail!(
            "refusing to roll back: the cluster goes back to ZooKeeper, which is not healthy; \
             nothing was changed on any host:\n  {}",
            zk.problems.join("\n  ")
        );
    }
    for step in steps {
        let t0 = Instant::now();
        let what = match step {
            RollbackStep::BrokersMigrating => {
                "brokers back into ZooKeeper mode (migration flag kept)"
            }
            RollbackStep::Deprovision => "controllers stopped, their metadata deleted",
            RollbackStep::BrokersZookeeper => "brokers without the migration flag",
        };
        println!("migrate: rollback: {what}");
        let at = match step {
            RollbackStep::Deprovision => {
                deprovision(inv, opts.policy, rep)
                    .await
                    .with_context(|| format!("rollback: {what}"))?;
                None
            }
            RollbackStep::BrokersMigrating => {
                let mut at = inv.clone();
                at.kafka.stage = Some(MigrationStage::BrokersMigrating);
                Some(at)
            }
            RollbackStep::BrokersZookeeper => Some(zookeeper_inventory(inv)),
        };
        if let Some(at) = at {
            let summary = engine::apply(&at, &apply_options(opts), rep)
                .await
                .with_context(|| format!("rollback: {what}"))?;
            rep.clear();
            print_changes(&summary);
        }
        println!("  done ({})", fmt_secs(t0.elapsed()));
    }
    println!("migrate: rolled back: the cluster runs in ZooKeeper mode; {next}");
    Ok(())
}

/// The inventory as it was before the migration: no controllers.
fn zookeeper_inventory(inv: &Inventory) -> Inventory {
    let mut zk = inv.clone();
    for h in &mut zk.hosts {
        h.in_controller = false;
    }
    zk.kafka.migrating = false;
    zk.kafka.stage = None;
    zk
}

/// Every controller stopped (the active one last) and its metadata deleted, then, at once,
/// the znodes that keep the brokers from electing a controller of their own.
async fn deprovision(inv: &Inventory, policy: HostKeyPolicy, rep: &Reporter) -> Result<()> {
    let sessions = engine::connect_all(inv, policy).await?;
    let result = async {
        let plans = plan::plan_all_with(inv, &sessions, false).await?;
        let active = engine::gates::leader_host(inv, &plans, Service::Kafka).await;
        let names: Vec<&str> = plans
            .iter()
            .filter(|p| p.host.in_controller)
            .map(|p| p.host.name.as_str())
            .collect();
        for name in roller::order_last(&names, active.as_deref()) {
            let p = plans.iter().find(|p| p.host.name == name).unwrap();
            rep.host_busy(name, "stopping the controller");
            let done = engine::retire::deprovision_controller(inv, p, &sessions[name])
                .await
                .with_context(|| format!("{name}: deprovisioning the KRaft controller"))?;
            rep.host_done(name, &done);
            println!("  {name}: {done}");
        }
        let brokers: Vec<i64> = plans
            .iter()
            .filter(|p| p.host.in_kafka)
            .filter_map(|p| p.broker_id)
            .collect();
        if let Some(z) = read_znode(inv, "/controller").await? {
            let data = String::from_utf8_lossy(&z.data);
            if phase::kraft_holds_controller(&z.data, &brokers).map_err(anyhow::Error::msg)? {
                delete_znode(inv, "/controller", z.version).await?;
                println!("  deleted /controller ({data}): a broker becomes the controller");
            } else {
                println!("  kept /controller ({data}): a broker holds it");
            }
        }
        if let Some(z) = read_znode(inv, "/migration").await? {
            delete_znode(inv, "/migration", z.version).await?;
            // Kafka's guide keeps what it held: useful to debug the attempt.
            println!(
                "  deleted /migration (it held {})",
                String::from_utf8_lossy(&z.data)
            );
        }
        Ok(())
    }
    .await;
    for s in sessions.values() {
        s.close().await;
    }
    result
}

/// The lines of each controller's Kafka log (rotated files too) that say the migration is
/// complete, polled until one does.
async fn finalize_gate(inv: &Inventory, policy: HostKeyPolicy, rep: &Reporter) -> Result<String> {
    let mut sessions = Vec::new();
    for h in inv.controller_hosts() {
        let s = crate::transport::Session::connect(&h.ssh, policy)
            .await
            .with_context(|| format!("{}: cannot connect", h.name))?;
        let log = ServiceDef::new(Service::Kafka, inv, h)
            .log_file
            .with_context(|| format!("{}: Kafka writes no log file", h.name))?;
        let cmd = format!(
            // The current file first, and the first line found is enough: a large rotated
            // log is read only while no newer file holds the answer.
            "set -- {log} {log}.*; for f; do [ -f \"$f\" ] || continue; grep -h -m 1 -F -e {} \
             -e {} -- \"$f\"; r=$?; [ $r -eq 0 ] && exit 0; [ $r -eq 1 ] || exit 2; done; exit 0",
            quote(phase::COMPLETED),
            quote(phase::POST_MIGRATION),
            log = quote(&log),
        );
        sessions.push((h.name.clone(), s, cmd));
    }
    let deadline = Instant::now() + GATE_TIMEOUT;
    let result = loop {
        let mut logs = Vec::new();
        for (host, s, cmd) in &sessions {
            let r = match s.exec_timeout(cmd, LOG_READ_TIMEOUT).await {
                Ok(o) if o.ok() => Ok(o.stdout),
                Ok(o) => Err(format!("{cmd}: exit {}: {}", o.status, o.stderr.trim())),
                Err(e) => Err(format!("{e:#}")),
            };
            logs.push((host.clone(), r));
        }
        let why = match phase::migration_finalized(&logs) {
            Ok(msg) => break Ok(msg),
            Err(why) => why,
        };
        if Instant::now() >= deadline {
            break Err(anyhow::anyhow!(
                "not reached within {}s: {why}; the controllers' logs (clusterctl logs INVENTORY \
                 HOST kafka) say why; a re-run of migrate --finalize resumes here",
                GATE_TIMEOUT.as_secs()
            ));
        }
        rep.line(&format!("  waiting: {why}"));
        tokio::time::sleep(Duration::from_secs(2)).await;
    };
    for (_, s, _) in &sessions {
        s.close().await;
    }
    result
}

fn fmt_secs(d: Duration) -> String {
    format!("{:.1}s", d.as_secs_f64())
}

fn apply_options(opts: &MigrateOptions) -> ApplyOptions {
    ApplyOptions {
        dry_run: false,
        finalize_upgrade: false,
        prune_topics: false,
        prune_access: false,
        limit: None,
        policy: opts.policy,
        playbook: None,
        skip_preflight: vec![],
        delete_data: false,
        certificates_only: false,
    }
}

/// Phase 1, changing nothing: the versions, the protocol, ZooKeeper's and Kafka's health,
/// and the cluster id in ZooKeeper against the brokers' own.
async fn precheck(
    inv: &Inventory,
    plans: &mut [HostPlan],
    opts: &MigrateOptions,
    rep: &Reporter,
) -> Result<()> {
    rep.line("pre-check: versions, health, cluster id, the controllers' hosts");
    let (_, zk) = engine::gates::zk_probe(inv).await;
    let kafka = kafka_problems(inv, plans, rep).await;
    let zk_id = zk_cluster_id(inv).await;
    let controller_hosts = controller_host_problems(inv, plans, opts.policy).await?;
    let input = phase::Precheck {
        brokers: plans
            .iter()
            .filter(|p| p.host.in_kafka)
            .map(|p| phase::BrokerCheck {
                host: p.host.name.clone(),
                runs_target: !p.needs_install(inv, crate::artifacts::Product::Kafka),
                ibp: p.facts.ibp.clone(),
                cluster_id: p.facts.cluster_id.clone(),
            })
            .collect(),
        version: inv.kafka.version.clone(),
        zookeeper: if zk.healthy {
            vec![]
        } else {
            zk.problems.clone()
        },
        kafka,
        zk_cluster_id: zk_id,
        controller_hosts,
    };
    rep.clear();
    let why = phase::precheck(&input);
    if !why.is_empty() {
        bail!(
            "refusing to migrate: the pre-check failed; nothing was changed on any host:\n  {}",
            why.join("\n  ")
        );
    }
    println!(
        "migrate: pre-check passed: {} broker(s) on {} with the 3.9 protocol, ZooKeeper and \
         Kafka healthy, cluster id {}",
        input.brokers.len(),
        inv.kafka.version,
        input
            .zk_cluster_id
            .as_ref()
            .map_or("?", |r| r.as_deref().unwrap_or("?"))
    );
    Ok(())
}

/// The pre-flight refusals of the controllers' hosts, as apply would find them in phase 2
/// (engine::preflight, the same facts): a controller port another process holds, too little
/// disk or memory for the controller.
async fn controller_host_problems(
    inv: &Inventory,
    plans: &mut [HostPlan],
    policy: HostKeyPolicy,
) -> Result<Vec<String>> {
    let sessions = engine::connect_all(inv, policy).await?;
    let controller = |p: &HostPlan| p.host.in_controller;
    let gathered = engine::preflight::gather(inv, plans, &sessions, &controller).await;
    for s in sessions.values() {
        s.close().await;
    }
    gathered?;
    let findings = engine::preflight::check(inv, plans, &controller, &[]);
    let refused: Vec<_> = findings.iter().filter(|f| f.refuse).collect();
    Ok(engine::preflight::lines(inv, &refused))
}

/// Why Kafka is not healthy enough to roll (strict: not even one partition under-replicated).
async fn kafka_problems(inv: &Inventory, plans: &[HostPlan], rep: &Reporter) -> Vec<String> {
    // The view needs no host session: Metadata and DescribeConfigs go to the brokers.
    let none = std::collections::BTreeMap::new();
    let roller = Roller::new(
        inv,
        &none,
        rep,
        RollOptions {
            policy: Policy::default(),
            force: false,
            sigkill_after: None,
            settle: Duration::ZERO,
            by_rack: false,
        },
    );
    match roller.kafka_view(plans).await {
        Ok(v) => roller::kafka_preflight(&v, Policy::default()),
        Err(e) => vec![format!("the brokers did not answer: {e:#}")],
    }
}

const ZK_TIMEOUT: Duration = Duration::from_secs(5);

/// A znode from the first ZooKeeper member that answers.
async fn read_znode(inv: &Inventory, path: &str) -> Result<Option<znode::Znode>> {
    let mut errors = Vec::new();
    for (_, addr) in engine::gates::zk_members(inv) {
        match znode::get(&addr, path, ZK_TIMEOUT).await {
            Ok(z) => return Ok(z),
            Err(e) => errors.push(format!("{e:#}")),
        }
    }
    bail!("no ZooKeeper member answered: {}", errors.join("; "))
}

/// Deletes `path` at `version` through the first ZooKeeper member that answers.
async fn delete_znode(inv: &Inventory, path: &str, version: i32) -> Result<()> {
    let mut errors = Vec::new();
    for (_, addr) in engine::gates::zk_members(inv) {
        match znode::delete(&addr, path, version, ZK_TIMEOUT).await {
            Ok(_) => return Ok(()),
            Err(e) => errors.push(format!("{e:#}")),
        }
    }
    bail!("no ZooKeeper member deleted {path}: {}", errors.join("; "))
}

/// `/cluster/id`'s `id`: `Ok(None)` when ZooKeeper has none.
async fn zk_cluster_id(inv: &Inventory) -> Result<Option<String>, String> {
    let z = read_znode(inv, "/cluster/id")
        .await
        .map_err(|e| format!("{e:#}"))?;
    z.map(|z| phase::parse_cluster_id(&z.data)).transpose()
}

async fn migration_znode(inv: &Inventory) -> Result<Option<MigrationZnode>, String> {
    let z = read_znode(inv, "/migration")
        .await
        .map_err(|e| format!("{e:#}"))?;
    z.map(|z| phase::parse_migration_znode(&z.data)).transpose()
}

/// What must hold after a phase before the next may start (the apply of each phase has
/// already waited for the KRaft quorum and for every broker and partition).
async fn gate(
    inv: &Inventory,
    stage: MigrationStage,
    policy: HostKeyPolicy,
    rep: &Reporter,
) -> Result<String> {
    let decide: fn(Option<&MigrationZnode>) -> Result<String, String> = match stage {
        MigrationStage::Controllers => phase::controllers_ready,
        MigrationStage::BrokersMigrating | MigrationStage::BrokersKraft => phase::metadata_migrated,
        // The controllers no longer write to ZooKeeper: their logs say so.
        MigrationStage::Finalized => return finalize_gate(inv, policy, rep).await,
    };
    let deadline = Instant::now() + GATE_TIMEOUT;
    loop {
        let why = match migration_znode(inv).await {
            Ok(z) => match decide(z.as_ref()) {
                Ok(msg) => return Ok(msg),
                Err(why) => why,
            },
            Err(e) => e,
        };
        if Instant::now() >= deadline {
            bail!(
                "not reached within {}s: {why}; the controllers' logs (clusterctl logs INVENTORY \
                 HOST kafka) say why; a re-run of migrate resumes here",
                GATE_TIMEOUT.as_secs()
            );
        }
        rep.line(&format!("  waiting: {why}"));
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

const GATE_TIMEOUT: Duration = Duration::from_secs(300);
/// Reading a controller's logs, rotated files included (Kafka keeps up to 5 x 100 MB).
const LOG_READ_TIMEOUT: Duration = Duration::from_secs(60);
