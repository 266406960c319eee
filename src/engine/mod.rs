//! The playbook runner behind `apply`: connect, gather facts, plan, then run each step over
//! its hosts (in parallel within a step), gated by health checks.

pub mod actions;
pub mod change;
mod dry_run;
pub mod dynamic;
pub mod facts;
pub mod gates;
mod guard;
pub mod live;
mod nisshi;
pub mod plan;
pub mod playbook;
pub mod preflight;
pub mod quorum;
pub mod retire;
mod voters;

pub use nisshi::storage_online;
pub use plan::HostPlan;

use crate::artifacts::{self, Artifact, Product};
use crate::inventory::Inventory;
use crate::ops::restart::{RollOptions, Roller};
use crate::ops::roller::Policy;
use crate::render::Service;
use crate::report::Reporter;
use crate::transport::{HostKeyPolicy, Session};
use anyhow::{Context, Result, bail};
use change::{Change, Planned, When};
use playbook::{Action, Hosts, Step};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Duration;

pub struct ApplyOptions {
    pub dry_run: bool,
    /// Second phase of an upgrade: drop the old inter-broker protocol pin (ZooKeeper mode) or
    /// raise metadata.version (KRaft) once every node runs the new version.
    pub finalize_upgrade: bool,
    /// Delete every non-internal topic the inventory does not declare.
    pub prune_topics: bool,
    /// Delete the SCRAM users and ACLs the inventory does not declare.
    pub prune_access: bool,
    pub limit: Option<Vec<String>>,
    pub policy: HostKeyPolicy,
    pub playbook: Option<PathBuf>,
    /// Pre-flight checks not to make.
    pub skip_preflight: Vec<preflight::Check>,
    /// Delete a retired broker's log dirs once it has stopped.
    pub delete_data: bool,
    /// `certs rotate`: the run may change the nodes' key and trust files (and roll them in),
    /// nothing else; other pending changes refuse it.
    pub certificates_only: bool,
}

/// What one apply did, per host: human-readable changes.
#[derive(Debug, Default)]
pub struct Summary {
    pub changes: BTreeMap<String, Vec<String>>,
}

impl Summary {
    pub fn changed(&self) -> bool {
        self.changes.values().any(|c| !c.is_empty())
    }
}

/// Connect to every host in parallel; one connection per host for the whole run.
pub async fn connect_all(
    inv: &Inventory,
    policy: HostKeyPolicy,
) -> Result<BTreeMap<String, Session>> {
    let results = futures::future::join_all(
        inv.hosts
            .iter()
            .map(|h| async move { (h.name.clone(), Session::connect(&h.ssh, policy).await) }),
    )
    .await;
    let mut out = BTreeMap::new();
    let mut errors = Vec::new();
    for (name, r) in results {
        match r {
            Ok(s) => {
                out.insert(name, s);
            }
            Err(e) => errors.push(format!("{name}: cannot connect: {e:#}")),
        }
    }
    if !errors.is_empty() {
        bail!("{}", errors.join("\n"));
    }
    Ok(out)
}

pub async fn apply(inv: &Inventory, opts: &ApplyOptions, rep: &Reporter) -> Result<Summary> {
    let nisshi = inv.flavor == crate::inventory::Flavor::Nisshi;
    if nisshi && opts.finalize_upgrade {
        bail!(
            "--finalize-upgrade is for Kafka's two-phase upgrades; nisshi brokers upgrade in one roll"
        );
    }
    if inv.kafka.migrating && inv.kafka.stage.is_none() {
        bail!(
            "refusing to apply: {}: groups.controller beside groups.zookeeper moves this \
             cluster from ZooKeeper to KRaft: run `clusterctl migrate {}` (apply runs the cluster once it is in KRaft and \
             groups.zookeeper is gone); nothing was changed on any host",
            inv.file.display(),
            inv.file.display()
        );
    }
    let steps = playbook::load(inv.flavor, opts.playbook.as_deref())?;
    check_limit(inv, opts)?;
    rep.line(&format!("connecting to {} host(s)", inv.hosts.len()));
    let sessions = connect_all(inv, opts.policy).await?;
    rep.line("gathering facts");
    // Decide: every change on every host, and whether it may be made, before touching any.
    let mut plans = plan::plan_all_with(inv, &sessions, opts.finalize_upgrade)
        .await
        .map_err(refusal)?;
    let in_limit = |h: &str| opts.limit.as_ref().is_none_or(|l| l.iter().any(|x| x == h));
    // The flavor's part of the plan: the nisshi brokers' and storage host's changes, or the
    // JVM services' after the mode and identity guard.
    let mut prepared = None;
    if nisshi {
        prepared = Some(nisshi::plan(inv, &sessions, &mut plans, &in_limit, rep).await?);
        preflight_gate(inv, &mut plans, &sessions, opts, rep).await?;
    } else {
        guard::check(inv, &plans).map_err(refusal)?;
        if opts.finalize_upgrade {
            finalize_preflight(inv, &plans)?;
        }
        // A migration formats its controllers with the id the ZooKeeper-mode brokers have.
        let cluster_id = if inv.kafka.kraft || inv.kafka.migrating {
            Some(plan::resolve_cluster_id(inv, &plans).map_err(refusal)?)
        } else {
            None
        };
        let quorum = match &cluster_id {
            // Kafka migrates with a static quorum (controller.quorum.voters) only.
            Some(_) if inv.kafka.migrating => Some(change::QuorumInputs::default()),
            Some(id) => Some(quorum_inputs(inv, &plans, id).await?),
            None => None,
        };
        let inputs = change::Inputs {
            cluster_id,
            quorum,
            jdk: match inv.jdk.method {
                crate::inventory::JdkMethod::Tarball => Some(actions::jdk_tarball(inv).await?),
                _ => None,
            },
        };
        // A running broker's changed server.properties: what it can take live, asked of it.
        live::decide_all(inv, &mut plans, &|p: &HostPlan| in_limit(&p.host.name)).await;
        for p in plans.iter_mut().filter(|p| in_limit(&p.host.name)) {
            p.changes = change::plan_host(inv, p, &inputs);
        }
        for w in guard::check_java(inv, &plans).map_err(refusal)? {
            rep.line(&format!("warning: {w}"));
        }
        preflight_gate(inv, &mut plans, &sessions, opts, rep).await?;
        let why = retire::refusals(inv, &plans).await;
        if !why.is_empty() {
            bail!(
                "refusing to apply: a service the inventory no longer gives a host must stop, and \
                 may not yet; nothing was changed on any host:\n  {}",
                why.join("\n  ")
            );
        }
    }
    let topics = plan_topics(inv, opts).await.map_err(refusal)?;
    let access = plan_access(inv, opts).await.map_err(refusal)?;
    if opts.certificates_only {
        certificates_only(&plans, topics.as_deref(), access.as_ref())?;
    }
    let finalize = (opts.finalize_upgrade && inv.kafka.kraft).then(|| {
        format!(
            "raise metadata.version to release {}",
            crate::versions::major_minor(&inv.kafka.version)
        )
    });
    let material = crate::security::installed().filter(|_| inv.security.is_some());
    if opts.dry_run {
        rep.clear();
        for n in material.map(|m| m.notes.as_slice()).unwrap_or_default() {
            println!("this machine: {n} (not written: dry run)");
        }
        dry_run::print(&plans, &sessions, &topics, &access, finalize.as_deref()).await?;
        if opts.delete_data {
            for line in retire::data_deletions(inv, &plans) {
                println!("{line}");
            }
        }
        return Ok(Summary::default());
    }
    let roller = Roller::new(inv, &sessions, rep, apply_roll_options());
    for svc in [Service::ZooKeeper, Service::Kafka] {
        let hosts: Vec<&str> = plans
            .iter()
            .filter(|p| p.restart_pending(svc))
            .map(|p| p.host.name.as_str())
            .collect();
        if hosts.is_empty() {
            continue;
        }
        let blockers = roller.lasting_blockers(&plans, svc).await;
        if !blockers.is_empty() {
            bail!(
                "refusing to apply: this change restarts {svc} on {}, and the roll would be refused \
                 (waiting would not help); nothing was changed on any host:\n  {}\n\
                 fix these, then run apply again",
                hosts.join(", "),
                blockers.join("\n  ")
            );
        }
    }
    // Touch: first this machine's CA directory (what the hosts are about to get is kept),
    // then each step makes its part of the plan.
    if let Some(m) = material {
        for n in &m.notes {
            rep.line(&format!("this machine: {n}"));
        }
        m.commit()?;
    }
    let mut artifacts: BTreeMap<Product, Artifact> = BTreeMap::new();
    let mut summary = Summary::default();
    for p in &plans {
        summary.changes.insert(p.host.name.clone(), Vec::new());
    }
    // A retire or voters step is listed only when it has something to do.
    let steps: Vec<&Step> = steps
        .iter()
        .filter(|s| applies(inv, s))
        .filter(|s| {
            s.action != Action::Voters
                || plans.iter().any(|p| {
                    p.changes
                        .iter()
                        .any(|c| matches!(c.change, Change::AddVoter { .. }))
                })
        })
        .filter(|s| {
            s.action != Action::Retire
                || plans.iter().any(|p| {
                    p.changes.iter().any(
                        |c| matches!(c.change, Change::Retire(svc) if Some(svc) == s.service()),
                    )
                })
        })
        .collect();
    let total = steps.len();
    for (i, step) in steps.iter().enumerate() {
        rep.step(i + 1, total, &step.name);
        let selected: Vec<usize> = plans
            .iter()
            .enumerate()
            .filter(|(_, p)| in_group(step, p) && in_limit(&p.host.name))
            .map(|(i, _)| i)
            .collect();
        match step.action {
            Action::Storage => {
                let p = prepared
                    .as_mut()
                    .context("a storage step drives the nisshi flavor")?;
                for (host, changes) in
                    nisshi::storage_step(inv, &mut plans, &sessions, p, &in_limit, rep, &step.name)
                        .await?
                {
                    summary.changes.get_mut(&host).unwrap().extend(changes);
                }
            }
            Action::Install if nisshi => {
                let prepared = prepared.as_ref().unwrap();
                run_hosts(&mut plans, &selected, &step.name, rep, &mut summary, |p| {
                    let s = sessions[&p.host.name].clone();
                    let todo = p.take(|c| claims(inv, step, c));
                    async move { nisshi::install_step(inv, p, &s, prepared, todo).await }
                })
                .await?;
            }
            Action::Install => {
                let product = step_product(inv, step);
                let mine = |c: &Planned| claims(inv, step, c);
                let needs = selected.iter().any(|&i| {
                    plans[i]
                        .changes
                        .iter()
                        .any(|c| mine(c) && matches!(c.change, Change::Unpack { .. }))
                });
                if needs && !artifacts.contains_key(&product) {
                    rep.line(&format!("  resolving the {product:?} tarball"));
                    let a = artifacts::fetch(inv, product).await?;
                    artifacts.insert(product, a);
                }
                run_hosts(&mut plans, &selected, &step.name, rep, &mut summary, |p| {
                    let a = artifacts.get(&product).cloned();
                    let s = sessions[&p.host.name].clone();
                    let todo = p.take(mine);
                    async move { actions::install(inv, p, &s, todo, a.as_ref()).await }
                })
                .await?;
            }
            Action::Prepare => {
                run_hosts(&mut plans, &selected, &step.name, rep, &mut summary, |p| {
                    let s = sessions[&p.host.name].clone();
                    let todo = p.take(|c| claims(inv, step, c));
                    async move { actions::prepare(inv, &s, &todo).await }
                })
                .await?
            }
            Action::Jdk => {
                run_hosts(&mut plans, &selected, &step.name, rep, &mut summary, |p| {
                    let s = sessions[&p.host.name].clone();
                    let todo = p.take(|c| claims(inv, step, c));
                    async move { actions::jdk(inv, p, &s, todo, rep).await }
                })
                .await?
            }
            Action::Configure => {
                run_hosts(&mut plans, &selected, &step.name, rep, &mut summary, |p| {
                    let s = sessions[&p.host.name].clone();
                    let todo = p.take(|c| claims(inv, step, c));
                    async move { actions::go_live(p, &s, todo).await }
                })
                .await?
            }
            Action::Format => {
                run_hosts(&mut plans, &selected, &step.name, rep, &mut summary, |p| {
                    let s = sessions[&p.host.name].clone();
                    let todo = p.take(|c| claims(inv, step, c));
                    async move {
                        let mut done = Vec::new();
                        for c in todo {
                            if let Change::Format { cluster_id, quorum } = c {
                                done.extend(
                                    actions::format(inv, p, &s, &cluster_id, &quorum).await?,
                                );
                            }
                        }
                        Ok(done)
                    }
                })
                .await?
            }
            Action::Start => {
                let svc = step.service().unwrap();
                let ctx = StepContext {
                    inv,
                    sessions: &sessions,
                    rep,
                };
                start_step(&ctx, &mut plans, &selected, &step.name, svc, &mut summary).await?;
            }
            Action::Voters => {
                voters::add_step(inv, &mut plans, &selected, rep, &mut summary).await?;
            }
            Action::Retire => {
                let svc = step.service().unwrap();
                retire::step(
                    inv,
                    &mut plans,
                    &selected,
                    svc,
                    &sessions,
                    rep,
                    &mut summary,
                    opts.delete_data,
                )
                .await?;
            }
            Action::Wait => {
                let gate = step.gate.unwrap();
                let svc = match gate {
                    playbook::Gate::ZookeeperQuorum => Service::ZooKeeper,
                    playbook::Gate::KraftQuorum | playbook::Gate::BrokersRegistered => {
                        Service::Kafka
                    }
                    playbook::Gate::BrokersAnswering => Service::Nisshi,
                };
                // A crashed process fails the gate at once, with its log, instead of at the deadline.
                let msg = tokio::select! {
                    r = gates::wait(inv, &plans, gate, timeout(step, 120), rep) => r,
                    dead = watch_processes(inv, &plans, &sessions, svc) => Err(dead),
                }
                .with_context(|| format!("step '{}'", step.name))?;
                rep.line(&format!("  {msg}"));
            }
            Action::Topics => {
                // Planned before any host was touched; on a first install the cluster did not
                // answer yet, so the plan is made now, against the brokers just started.
                let todo = match &topics {
                    Some(t) => t.clone(),
                    None => {
                        let mut c = crate::health::kafka::connect_any(
                            &gates::bootstrap(inv),
                            Duration::from_secs(10),
                        )
                        .await
                        .with_context(|| format!("step '{}'", step.name))?;
                        crate::topics::plan(&mut c, &inv.topics, opts.prune_topics)
                            .await
                            .with_context(|| format!("step '{}'", step.name))?
                    }
                };
                let changes = crate::topics::execute(&gates::bootstrap(inv), &todo)
                    .await
                    .with_context(|| format!("step '{}'", step.name))?;
                if changes.is_empty() {
                    rep.line(&format!(
                        "  {} declared topic(s) as wanted",
                        inv.topics.len()
                    ));
                }
                let (access, kept) = converge_access(inv, opts, &access)
                    .await
                    .with_context(|| format!("step '{}'", step.name))?;
                for k in kept {
                    rep.line(&format!("  note: {k}"));
                }
                // Topic and access changes belong to the cluster, reported under the first
                // broker.
                let first = plans.iter().find(|p| p.host.in_kafka).unwrap();
                for c in changes.into_iter().chain(access) {
                    rep.line(&format!("  {c}"));
                    summary.changes.get_mut(&first.host.name).unwrap().push(c);
                }
            }
            Action::Smoke => {
                if !summary.changed() {
                    rep.line("  nothing changed: smoke test skipped (the gates above passed)");
                    continue;
                }
                let msg = if nisshi {
                    nisshi::smoke(inv, timeout(step, 120)).await
                } else {
                    gates::smoke(inv, &plans, timeout(step, 120)).await
                }
                .with_context(|| format!("step '{}'", step.name))?;
                rep.line(&format!("  {msg}"));
            }
        }
    }
    if finalize.is_some() {
        let msg = finalize_kraft(inv, &plans, &sessions).await?;
        rep.line(&format!("  {msg}"));
        let first = plans.iter().find(|p| p.host.in_kafka).unwrap();
        summary.changes.get_mut(&first.host.name).unwrap().push(msg);
    }
    rep.clear();
    // A playbook without some step leaves that step's part of the plan undone: say so.
    for p in &plans {
        for c in &p.changes {
            rep.line(&format!(
                "WARNING: {}: not done (no step of this playbook makes it): {}",
                p.host.name,
                c.describe()
            ));
        }
    }
    for s in sessions.values() {
        s.close().await;
    }
    Ok(summary)
}

/// A refusal before any host was touched.
/// Pre-flight host checks on the hosts this apply changes: warnings printed, refusals all
/// at once before any change.
async fn preflight_gate(
    inv: &Inventory,
    plans: &mut [HostPlan],
    sessions: &BTreeMap<String, Session>,
    opts: &ApplyOptions,
    rep: &Reporter,
) -> Result<()> {
    let changing = |p: &HostPlan| !p.changes.is_empty();
    preflight::gather(inv, plans, sessions, &changing).await?;
    let findings = preflight::check(inv, plans, &changing, &opts.skip_preflight);
    let (refused, warned): (Vec<_>, Vec<_>) = findings.iter().partition(|f| f.refuse);
    for w in preflight::lines(inv, &warned) {
        rep.line(&format!("warning: pre-flight: {w}"));
    }
    if !refused.is_empty() {
        bail!(
            "refusing to apply: pre-flight checks failed; nothing was changed on any host:\n  {}\n\
             fix these and run apply again (--skip-preflight CHECK skips one you know better)",
            preflight::lines(inv, &refused).join("\n  ")
        );
    }
    Ok(())
}

/// The KRaft quorum's inputs to the plan, and the refusals they bring: the quorum's kind
/// and whether it is being formed from the facts; the voters now from the running quorum
/// (a dynamic quorum's voters must each be a host of the inventory, so apply can remove it).
async fn quorum_inputs(
    inv: &Inventory,
    plans: &[HostPlan],
    cluster_id: &str,
) -> Result<change::QuorumInputs> {
    let facts: Vec<facts::Facts> = plans.iter().map(|p| p.facts.clone()).collect();
    let dynamic = quorum::dynamic(inv, &facts);
    let forming = dynamic && quorum::forming(plans, cluster_id);
    let mut why = quorum::refusals(inv, plans, dynamic);
    let voters = if dynamic && !forming {
        gates::quorum(inv)
            .await
            .ok()
            .map(|q| q.voters.iter().map(|v| v.id).collect::<BTreeSet<i32>>())
    } else {
        None
    };
    for v in voters.iter().flatten() {
        if !plans.iter().any(|p| p.facts.broker_id == Some(*v as i64)) {
            why.push(format!(
                "controller {v} votes in the KRaft quorum but is on no host of the inventory: keep \
                 its host in `hosts` (in no group, to remove it from the quorum and stop it) or \
                 in groups.controller"
            ));
        }
    }
    if !why.is_empty() {
        bail!(
            "refusing to apply: the KRaft controllers cannot become what the inventory asks; \
             nothing was changed on any host:\n  {}",
            why.join("\n  ")
        );
    }
    Ok(change::QuorumInputs {
        dynamic,
        forming,
        initial: quorum::initial_controllers(inv, plans, cluster_id),
        voters,
    })
}

fn refusal(e: anyhow::Error) -> anyhow::Error {
    anyhow::anyhow!("refusing to apply: {e:#}; nothing was changed on any host")
}

/// The roller as apply uses it: default safety policy, and pre-flight may wait a minute for
/// services this run has just started to join.
fn apply_roll_options() -> RollOptions {
    RollOptions {
        policy: Policy::default(),
        force: false,
        sigkill_after: None,
        settle: Duration::from_secs(60),
        by_rack: false,
    }
}

/// The declared topics' changes, planned while the cluster answers; `None` when no broker
/// answers yet (a first install: planned once the brokers run). A change that cannot be made
/// (a replication factor change, fewer partitions) is an error here, before any host changes.
async fn plan_topics(
    inv: &Inventory,
    opts: &ApplyOptions,
) -> Result<Option<Vec<crate::topics::TopicChange>>> {
    if inv.topics.is_empty() && !opts.prune_topics {
        return Ok(Some(vec![]));
    }
    let Ok(mut client) =
        crate::health::kafka::connect_any(&gates::bootstrap(inv), Duration::from_secs(3)).await
    else {
        return Ok(None);
    };
    crate::topics::plan(&mut client, &inv.topics, opts.prune_topics)
        .await
        .map(Some)
}

/// `certs rotate` changes key and trust files and rolls them in; anything else the inventory
/// would change refuses it, so a rotation never carries an unreviewed change.
fn certificates_only(
    plans: &[HostPlan],
    topics: Option<&[crate::topics::TopicChange]>,
    access: Option<&crate::access::AccessPlan>,
) -> Result<()> {
    let mut other: Vec<String> = Vec::new();
    for p in plans {
        for c in &p.changes {
            let ok = match &c.change {
                Change::File(f) => crate::render::security::is_tls_file(&f.path),
                Change::Restart(_) => true,
                _ => false,
            };
            if !ok {
                other.push(format!("{}: {}", p.host.name, c.change.describe()));
            }
        }
    }
    other.extend(topics.unwrap_or_default().iter().map(|t| t.describe()));
    other.extend(
        access
            .map(|a| a.changes.as_slice())
            .unwrap_or_default()
            .iter()
            .map(|a| a.describe()),
    );
    if other.is_empty() {
        return Ok(());
    }
    bail!(
        "refusing to rotate: the inventory also changes other things; run `clusterctl apply` \
         first (a rotation rolls in certificates only); nothing was changed on any host:\n  {}",
        other.join("\n  ")
    )
}

/// The users' and ACLs' changes of a secured cluster, planned while it answers (like topics);
/// `None` when no broker answers yet.
async fn plan_access(
    inv: &Inventory,
    opts: &ApplyOptions,
) -> Result<Option<crate::access::AccessPlan>> {
    let Some(m) = crate::security::installed().filter(|_| inv.security.is_some()) else {
        return Ok(Some(crate::access::AccessPlan::default()));
    };
    let bootstrap = gates::bootstrap(inv);
    let Ok(mut client) =
        crate::health::kafka::connect_any(&bootstrap, Duration::from_secs(3)).await
    else {
        return Ok(None);
    };
    crate::access::plan(inv, m, &mut client, &bootstrap, opts.prune_access)
        .await
        .map(Some)
}

/// Makes the planned access changes (planning them now on a first install). Returns the
/// change lines and the notes on what is kept undeclared.
async fn converge_access(
    inv: &Inventory,
    opts: &ApplyOptions,
    planned: &Option<crate::access::AccessPlan>,
) -> Result<(Vec<String>, Vec<String>)> {
    let Some(m) = crate::security::installed().filter(|_| inv.security.is_some()) else {
        return Ok((vec![], vec![]));
    };
    let bootstrap = gates::bootstrap(inv);
    let mut client = crate::health::kafka::connect_any(&bootstrap, Duration::from_secs(10)).await?;
    let fresh;
    let plan = match planned {
        Some(p) => p,
        None => {
            fresh = crate::access::plan(inv, m, &mut client, &bootstrap, opts.prune_access).await?;
            &fresh
        }
    };
    let done = crate::access::execute(inv, m, &mut client, &plan.changes).await?;
    Ok((done, plan.kept.clone()))
}

/// The product an install step unpacks: ZooKeeper bundled in Kafka (`zookeeper.source:
/// kafka`) runs from the Kafka tarball.
fn step_product(inv: &Inventory, step: &Step) -> Product {
    match step.service() {
        Some(Service::ZooKeeper) if inv.zookeeper.source == crate::inventory::ZkSource::Tarball => {
            Product::ZooKeeper
        }
        _ => Product::Kafka,
    }
}

/// Whether `step` makes the planned change `c` (the start step: its starts, and through the
/// roller its restarts with what they stage). Every step takes its part of the plan through
/// this one predicate, so what runs is what `--dry-run` printed.
fn claims(inv: &Inventory, step: &Step, c: &Planned) -> bool {
    let now = c.when == When::Now;
    match (step.action, &c.change) {
        (Action::Storage, Change::Storage(_) | Change::File(_)) => true,
        (Action::Prepare, Change::User(_) | Change::Dir { .. }) => true,
        (Action::Install, Change::Binary { .. }) => true,
        (Action::Jdk, Change::Package(_) | Change::Jdk(_)) => true,
        (Action::Jdk, Change::File(f)) => f.restarts.is_none(),
        (Action::Install, Change::Unpack { product, .. } | Change::Link { product, .. }) => {
            now && *product == step_product(inv, step)
        }
        (Action::Configure, Change::File(f)) => {
            now && f.restarts.is_some() && f.restarts == step.service()
        }
        // Set live just before the file it goes with is written.
        (Action::Configure, Change::LiveConfig(l)) => {
            now && l.kind == live::LiveKind::Live && step.service() == Some(Service::Kafka)
        }
        // Once the broker this step starts answers.
        (Action::Start, Change::LiveConfig(l)) if now => {
            l.kind == live::LiveKind::AfterStart && step.service() == Some(Service::Kafka)
        }
        (Action::Format, Change::Format { .. }) => true,
        (Action::Voters, Change::AddVoter { .. }) => true,
        (Action::Start, Change::Start(svc)) => Some(*svc) == step.service(),
        (Action::Retire, Change::Retire(svc)) => Some(*svc) == step.service(),
        (Action::Start, _) => {
            c.when != When::Now && c.when == step.service().map_or(When::Now, When::WithRestart)
        }
        _ => false,
    }
}

/// Steps that have nothing to do in this cluster's mode are neither run nor listed.
fn applies(inv: &Inventory, step: &Step) -> bool {
    // Retiring ZooKeeper also applies in KRaft mode: a migrated cluster's old ensemble.
    let zookeeper = (step.service() == Some(Service::ZooKeeper) && step.action != Action::Retire)
        || step.hosts == Some(Hosts::Zookeeper)
        || step.gate == Some(playbook::Gate::ZookeeperQuorum);
    let kraft = matches!(step.action, Action::Format | Action::Voters)
        || step.gate == Some(playbook::Gate::KraftQuorum);
    (!zookeeper || !inv.kafka.kraft) && (!kraft || inv.kafka.kraft || inv.kafka.migrating)
}

/// What every step of an apply works with.
struct StepContext<'a> {
    inv: &'a Inventory,
    sessions: &'a BTreeMap<String, Session>,
    rep: &'a Reporter,
}

/// ZooKeeper mode: the users brokers log in as go into ZooKeeper before the first broker
/// starts (once, however many new brokers asked for it).
async fn bootstrap_zk_users(
    ctx: &StepContext<'_>,
    plans: &mut [HostPlan],
    selected: &[usize],
    summary: &mut Summary,
) -> Result<()> {
    let mut asked = Vec::new();
    for &i in selected {
        if !plans[i]
            .take(|c| matches!(c.change, Change::ZkUsers(_)))
            .is_empty()
        {
            asked.push(plans[i].host.name.clone());
        }
    }
    let Some(first) = asked.first() else {
        return Ok(());
    };
    let m = crate::security::installed()
        .context("internal: the security material was not loaded before apply")?;
    let created = crate::access::bootstrap_in_zookeeper(ctx.inv, m)
        .await
        .context("creating the brokers' SCRAM users in ZooKeeper before Kafka's first start")?;
    let msg = match created.is_empty() {
        true => "SCRAM users already in ZooKeeper".to_string(),
        false => format!("created SCRAM user(s) {} in ZooKeeper", created.join(", ")),
    };
    ctx.rep.line(&format!("  {msg}"));
    if !created.is_empty() {
        summary.changes.get_mut(first).unwrap().push(msg);
    }
    Ok(())
}

/// The hosts `start_step` starts, in waves. KRaft controllers of their own first, when they
/// and brokers are both stopped: the brokers go once the controllers have a quorum, since a
/// broker that cannot register in time (`initial.broker.registration.timeout.ms`) exits.
fn start_waves(
    inv: &Inventory,
    plans: &[HostPlan],
    selected: &[usize],
    svc: Service,
) -> Vec<Vec<usize>> {
    let stopped = |i: &usize| plans[*i].running(svc).is_none();
    let dedicated = |i: &usize| plans[*i].host.in_controller && !plans[*i].host.in_kafka;
    // The quorum gate between the waves asks the controllers themselves (Kafka 3.7+).
    let controllers_first = svc == Service::Kafka
        && (inv.kafka.kraft || inv.kafka.migrating)
        && gates::controllers_answer_quorum(inv)
        && selected.iter().any(|i| stopped(i) && dedicated(i))
        && selected.iter().any(|i| stopped(i) && !dedicated(i));
    if !controllers_first {
        return vec![selected.to_vec()];
    }
    let (controllers, rest) = selected.iter().partition(|i| dedicated(i));
    vec![controllers, rest]
}

/// Start what is stopped (together: a new ensemble needs its members at once), then restart
/// what changed one host at a time through the roller: pre-flight, leader/controller last,
/// each host's staged files going live as the roller takes it, back before the next.
async fn start_step(
    ctx: &StepContext<'_>,
    plans: &mut [HostPlan],
    selected: &[usize],
    step: &str,
    svc: Service,
    summary: &mut Summary,
) -> Result<()> {
    let (inv, sessions) = (ctx.inv, ctx.sessions);
    if svc == Service::Kafka {
        bootstrap_zk_users(ctx, plans, selected, summary).await?;
    }
    let waves = start_waves(inv, plans, selected, svc);
    for (n, wave) in waves.iter().enumerate() {
        if n > 0 {
            let msg = gates::wait(
                inv,
                plans,
                playbook::Gate::KraftQuorum,
                Duration::from_secs(120),
                ctx.rep,
            )
            .await
            .with_context(|| {
                format!("step '{step}': the controllers started before the brokers")
            })?;
            ctx.rep.line(&format!("  {msg}"));
        }
        run_hosts(plans, wave, step, ctx.rep, summary, |p| {
            let s = sessions[&p.host.name].clone();
            async move {
                let mut done = actions::start_if_stopped(inv, p, &s, svc).await?;
                // A broker stopped while its file changed: overrides set live earlier follow it.
                let after = p.take(|c| {
                    svc == Service::Kafka
                        && matches!(&c.change, Change::LiveConfig(l) if l.kind == live::LiveKind::AfterStart)
                });
                done.extend(actions::go_live(p, &s, after).await?);
                Ok(done)
            }
        })
        .await?;
    }
    let pending: Vec<usize> = selected
        .iter()
        .copied()
        .filter(|&i| plans[i].restart_pending(svc))
        .collect();
    let roller = Roller::new(inv, sessions, ctx.rep, apply_roll_options());
    let rolled = roller.roll(plans, svc, pending).await;
    let rolled = match rolled {
        Ok(r) => r,
        Err(e) => {
            let left: Vec<&str> = plans
                .iter()
                .filter(|p| p.staged(svc))
                .map(|p| p.host.name.as_str())
                .collect();
            return Err(e.context(format!(
                "step '{step}': the roll of {svc} stopped; still on their old files: {}",
                if left.is_empty() {
                    "none".to_string()
                } else {
                    left.join(", ")
                }
            )));
        }
    };
    for r in rolled {
        summary.changes.get_mut(&r.host).unwrap().push(r.message);
    }
    Ok(())
}

fn check_limit(inv: &Inventory, opts: &ApplyOptions) -> Result<()> {
    for name in opts.limit.iter().flatten() {
        if inv.host(name).is_none() {
            bail!(
                "--limit names `{name}`, which is not a host of {}",
                inv.file.display()
            );
        }
    }
    Ok(())
}

/// Finalizing is one-way: every Kafka host must already run this inventory's version.
fn finalize_preflight(inv: &Inventory, plans: &[HostPlan]) -> Result<()> {
    let behind: Vec<String> = plans
        .iter()
        .filter(|p| p.host.runs_kafka() && p.needs_install(inv, Product::Kafka))
        .map(|p| p.host.name.clone())
        .collect();
    if !behind.is_empty() {
        bail!(
            "--finalize-upgrade: {} not on Kafka {} yet; run `clusterctl apply` first (finalizing cannot be undone)",
            behind.join(", "),
            inv.kafka.version
        );
    }
    Ok(())
}

/// KRaft: raise metadata.version to this release's, with Kafka's own FeatureCommand run on
/// a broker host (the operator's machine needs no JVM).
async fn finalize_kraft(
    inv: &Inventory,
    plans: &[HostPlan],
    sessions: &BTreeMap<String, Session>,
) -> Result<String> {
    let p = plans.iter().find(|p| p.host.in_kafka).unwrap();
    let def = crate::render::ServiceDef::new(Service::Kafka, inv, &p.host);
    let release = crate::versions::major_minor(&inv.kafka.version);
    // `upgrade --release-version` also raises kraft.version, turning a static quorum dynamic
    // for good while every node's file still names the voters (KAFKA-21426): a static
    // quorum's features are raised one by one, all but kraft.version (Kafka 4.0+, whose
    // FeatureCommand has `version-mapping`; 3.9 cannot raise kraft.version).
    let keep_static = p.facts.cluster_kraft_version.unwrap_or(0) == 0
        && crate::versions::parse(&inv.kafka.version) >= (4, 0, 0);
    let bootstrap = format!("{}:{}", p.host.address, inv.kafka.port);
    let upgrade = features_upgrade_cmd(&release, &bootstrap, keep_static);
    let cmd = format!(
        "set -a; . {env}; set +a; {upgrade}",
        env = crate::transport::quote(&def.env_file),
    );
    let out = sessions[&p.host.name]
        .exec_ok(&cmd)
        .await
        .context("finalizing the upgrade (kafka-features upgrade)")?;
    Ok(format!(
        "metadata.version raised to release {release}{}: {}",
        if keep_static {
            " (kraft.version kept at 0: the quorum stays static)"
        } else {
            ""
        },
        out.stdout.trim()
    ))
}

/// The FeatureCommand line that finalizes an upgrade to `release`; `keep_static`: every
/// feature at the release's level but kraft.version.
fn features_upgrade_cmd(release: &str, bootstrap: &str, keep_static: bool) -> String {
    let tool = "\"${JAVA_HOME:+$JAVA_HOME/bin/}java\" -Xmx128m \
         -Dlog4j.configuration=file:/etc/kafka/log4j.properties -Dkafka.logs.dir=/tmp \
         -cp \"$CLASSPATH\" org.apache.kafka.tools.FeatureCommand";
    let bootstrap = crate::transport::quote(bootstrap);
    if keep_static {
        format!(
            "set -e; m=$({tool} version-mapping --release-version {r}); \
             f=$(printf '%s\\n' \"$m\" | sed -n 's/^\\([a-z.]*\\)=\\([0-9]*\\).*/--feature \\1=\\2/p' \
             | grep -v '^--feature kraft.version='); \
             [ -n \"$f\" ] || {{ echo \"no feature levels in: $m\" >&2; exit 1; }}; \
             {tool} --bootstrap-server {bootstrap} upgrade $f",
            r = crate::transport::quote(release),
        )
    } else {
        format!(
            "{tool} --bootstrap-server {bootstrap} upgrade --release-version {}",
            crate::transport::quote(release)
        )
    }
}

/// Returns (only) when a service process that should run on some host is gone, with the
/// tail of its logs.
async fn watch_processes(
    inv: &Inventory,
    plans: &[HostPlan],
    sessions: &BTreeMap<String, Session>,
    svc: Service,
) -> anyhow::Error {
    let watches = plans.iter().filter(|p| p.running(svc).is_some()).map(|p| {
        let def = crate::render::ServiceDef::new(svc, inv, &p.host);
        let s = &sessions[&p.host.name];
        Box::pin(async move { actions::process_gone(s, &def, &p.host.name).await })
    });
    let watches: Vec<_> = watches.collect();
    if watches.is_empty() {
        return futures::future::pending().await;
    }
    futures::future::select_all(watches).await.0
}

fn timeout(step: &Step, default: u64) -> Duration {
    Duration::from_secs(step.timeout_secs.unwrap_or(default))
}

fn in_group(step: &Step, p: &HostPlan) -> bool {
    match step.hosts {
        // A host in no group (a bastion, or one whose services retire) gets only retirements.
        Some(Hosts::All) | None => p.host.in_a_group() || step.action == Action::Retire,
        Some(Hosts::Zookeeper) => p.host.in_zookeeper,
        Some(Hosts::Kafka) => p.host.runs_kafka(),
        Some(Hosts::Storage) => p.host.in_storage,
    }
}

/// Run `f` on the selected hosts in parallel; the first failure stops the run, naming the
/// host and step (the transport adds the command and its stderr).
async fn run_hosts<'a, F, Fut>(
    plans: &'a mut [HostPlan],
    selected: &[usize],
    step: &str,
    rep: &Reporter,
    summary: &mut Summary,
    f: F,
) -> Result<()>
where
    F: Fn(&'a mut HostPlan) -> Fut,
    Fut: std::future::Future<Output = Result<Vec<String>>> + 'a,
{
    // A controller beside a broker goes after the machine's own host, which makes what
    // both need (the kafka user, the release) in the same step.
    let (machines, sides): (Vec<&'a mut HostPlan>, Vec<&'a mut HostPlan>) = plans
        .iter_mut()
        .enumerate()
        .filter(|(i, _)| selected.contains(i))
        .map(|(_, p)| p)
        .partition(|p| p.host.side_of.is_none());
    let wave = |hosts: Vec<&'a mut HostPlan>| {
        futures::future::join_all(hosts.into_iter().map(|p| {
            let name = p.host.name.clone();
            rep.host_busy(&name, step);
            let fut = f(p);
            async move { (name, fut.await) }
        }))
    };
    let mut results = wave(machines).await;
    if results.iter().all(|(_, r)| r.is_ok()) && !sides.is_empty() {
        results.extend(wave(sides).await);
    }
    let mut errors = Vec::new();
    for (name, r) in results {
        match r {
            Ok(changes) => {
                let msg = if changes.is_empty() {
                    "ok (no change)".to_string()
                } else {
                    changes.join("; ")
                };
                rep.host_done(&name, &msg);
                summary.changes.get_mut(&name).unwrap().extend(changes);
            }
            Err(e) => {
                rep.host_done(&name, "FAILED");
                errors.push(format!("{name}: step '{step}': {e:#}"));
            }
        }
    }
    if !errors.is_empty() {
        bail!("{}", errors.join("\n"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::facts::Facts;

    /// Three hosts running ZooKeeper and Kafka, `extra` appended (shared with change.rs).
    pub(super) fn inv(extra: &str) -> Inventory {
        let text = format!(
            "hosts:\n  a: {{ address: 10.0.0.1 }}\n  b: {{ address: 10.0.0.2 }}\n  c: {{ address: 10.0.0.3 }}\n\
             groups:\n  zookeeper: [a, b, c]\n  kafka: [a, b, c]\n{extra}"
        );
        crate::inventory::parse(std::path::Path::new("i.yaml"), &text).unwrap()
    }

    #[test]
    fn a_rotation_refuses_any_change_but_key_and_trust_files() {
        let inv = inv("");
        let mut plans = plan::plans_from_facts(&inv, vec![Facts::default(); 3], false).unwrap();
        let file = |path: &str| crate::render::ManagedFile {
            path: path.into(),
            content: String::new(),
            mode: 0o600,
            owner: "kafka".into(),
            group: "kafka".into(),
            restarts: Some(Service::Kafka),
            secret: true,
        };
        let planned = |change| change::Planned {
            change,
            when: change::When::WithRestart(Service::Kafka),
        };
        plans[0].changes = vec![
            planned(Change::File(file("/etc/kafka/tls/server.pem"))),
            planned(Change::File(file("/etc/kafka-controller/tls/ca.pem"))),
            planned(Change::Restart(Service::Kafka)),
        ];
        certificates_only(&plans, None, None).unwrap();
        plans[1].changes = vec![planned(Change::File(file("/etc/kafka/server.properties")))];
        let e = certificates_only(&plans, None, None)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("refusing to rotate")
                && e.contains("b: file /etc/kafka/server.properties")
                && !e.contains("a: "),
            "{e}"
        );
    }

    /// The default playbook's steps, in order, each taking its claims from the plan as apply
    /// does, leave nothing: the plan that `--dry-run` prints holds no change apply would not
    /// make. Returns how many changes there were.
    fn each_change_has_one_step(inv: &Inventory, facts: Vec<Facts>) -> usize {
        each_change_has_one_step_with(inv, facts, |_| {}).0
    }

    /// The same, with `decide` filling in each plan's live decision first; also returns the
    /// kinds of live config changes planned.
    fn each_change_has_one_step_with(
        inv: &Inventory,
        facts: Vec<Facts>,
        decide: impl Fn(&mut HostPlan),
    ) -> (usize, Vec<live::LiveKind>) {
        let steps = playbook::load(inv.flavor, None).unwrap();
        let steps: Vec<&Step> = steps.iter().filter(|s| applies(inv, s)).collect();
        let mut plans = plan::plans_from_facts(inv, facts, false).unwrap();
        plans.iter_mut().for_each(&decide);
        let mut kinds = Vec::new();
        let inputs = change::Inputs {
            cluster_id: inv
                .kafka
                .kraft
                .then(|| "AAAAAAAAAAAAAAAAAAAAAA".to_string()),
            jdk: None,
            quorum: None,
        };
        let mut n = 0;
        for p in &mut plans {
            p.changes = change::plan_host(inv, p, &inputs);
            n += p.changes.len();
            kinds.extend(p.changes.iter().filter_map(|c| match &c.change {
                Change::LiveConfig(l) => Some(l.kind),
                _ => None,
            }));
            for s in &steps {
                if in_group(s, p) {
                    p.take(|c| claims(inv, s, c));
                }
            }
            let left: Vec<String> = p.changes.iter().map(|c| c.describe()).collect();
            assert!(left.is_empty(), "{}: no step makes {left:#?}", p.host.name);
        }
        (n, kinds)
    }

    #[test]
    fn a_static_quorum_keeps_kraft_version_when_an_upgrade_is_finalized() {
        // A stand-in for java that prints Kafka 4.4's version mapping and echoes an upgrade.
        let java = "java() { case \"$*\" in *version-mapping*) printf 'metadata.version=33 (4.4)\\nkraft.version=1\\ngroup.version=1\\n' ;; *) echo \"$*\" | sed 's/.*FeatureCommand //' ;; esac; }; JAVA_HOME=";
        let run = |keep| {
            let cmd = features_upgrade_cmd("4.4", "10.0.0.1:9092", keep)
                .replace("\"${JAVA_HOME:+$JAVA_HOME/bin/}java\"", "java");
            let out = std::process::Command::new("sh")
                .arg("-c")
                .arg(format!("{java}\n{cmd}"))
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8(out.stdout).unwrap().trim().to_string()
        };
        assert_eq!(
            run(true),
            "--bootstrap-server 10.0.0.1:9092 upgrade --feature metadata.version=33 --feature group.version=1"
        );
        assert_eq!(
            run(false),
            "--bootstrap-server 10.0.0.1:9092 upgrade --release-version 4.4"
        );
    }

    #[test]
    fn the_default_playbook_makes_every_planned_change_once() {
        let fresh = inv("");
        assert!(each_change_has_one_step(&fresh, vec![Facts::default(); 3]) > 40);
        // Running, then a changed property and a new version (staged for the roller).
        let mut running = Facts::default();
        running.pids.insert(Service::ZooKeeper, 1);
        running.pids.insert(Service::Kafka, 2);
        running
            .links
            .insert("/opt/kafka".into(), "kafka_2.13-3.8.1".into());
        let changed =
            inv("zookeeper:\n  source: kafka\nkafka:\n  properties:\n    num.io.threads: 4\n");
        assert!(each_change_has_one_step(&changed, vec![running.clone(); 3]) > 20);
        // Live configs: the change itself (configure), overrides following the file before a
        // roll (the roller) and after the start of a broker that was stopped (start).
        let sp = |inv: &Inventory| {
            let p = &plan::plans_from_facts(inv, vec![Facts::default(); 3], false).unwrap()[0];
            p.files
                .iter()
                .find(|f| f.path == live::SERVER_PROPERTIES)
                .unwrap()
                .content
                .clone()
        };
        let dynamic = inv("kafka:\n  properties:\n    message.max.bytes: 2000000\n");
        let mut on = running.clone();
        on.links.clear();
        on.server_properties = Some(sp(&inv("")));
        let mut stopped = on.clone();
        stopped.pids.remove(&Service::Kafka);
        let (n, kinds) = each_change_has_one_step_with(
            &dynamic,
            vec![on.clone(), on.clone(), stopped],
            |p: &mut HostPlan| {
                let Some(old) = p.facts.server_properties.clone() else {
                    return;
                };
                let new = &p
                    .files
                    .iter()
                    .find(|f| f.path == live::SERVER_PROPERTIES)
                    .unwrap()
                    .content;
                let changes = live::changed_keys(&old, new);
                let overridden = std::collections::BTreeMap::from([(
                    "message.max.bytes".to_string(),
                    crate::health::kafka::BrokerConfig {
                        per_broker: Some("1".into()),
                        ..Default::default()
                    },
                )]);
                // Broker 1 takes it live; broker 2 rolls (a restart owed anyway).
                let anyway = (p.broker_id == Some(2)).then_some("test");
                p.live = Some(live::decide(
                    &dynamic.kafka.version,
                    p.broker_id.unwrap() as i32,
                    &changes,
                    Ok(&overridden),
                    anyway,
                ));
            },
        );
        assert!(n > 10, "{n}");
        assert_eq!(
            kinds,
            [
                live::LiveKind::Live,
                live::LiveKind::BeforeRestart,
                live::LiveKind::AfterStart
            ]
        );
        // KRaft: formatting is planned and made too.
        let kraft = crate::inventory::parse(
            std::path::Path::new("i.yaml"),
            "hosts:\n  a: { address: 10.0.0.1 }\n  b: { address: 10.0.0.2 }\n  c: { address: 10.0.0.3 }\n\
             groups:\n  controller: [a, b, c]\n  kafka: [a, b, c]\nkafka:\n  version: 4.4.0\n",
        )
        .unwrap();
        assert!(each_change_has_one_step(&kraft, vec![Facts::default(); 3]) > 30);
        // A host that left both groups, and (KRaft) the ZooKeeper of a migrated cluster:
        // retired by the retire steps, in either mode.
        let mut left = Facts::default();
        for svc in [Service::ZooKeeper, Service::Kafka] {
            left.retired.insert(
                svc,
                facts::Retired {
                    enabled: true,
                    pid: Some(9),
                    roles: None,
                },
            );
        }
        let four = |groups: &str| {
            crate::inventory::parse(
                std::path::Path::new("i.yaml"),
                &format!(
                    "hosts:\n  a: {{ address: 10.0.0.1 }}\n  b: {{ address: 10.0.0.2 }}\n  c: {{ address: 10.0.0.3 }}\n  d: {{ address: 10.0.0.4 }}\n\
                     groups:\n{groups}kafka:\n  version: 3.9.1\n"
                ),
            )
            .unwrap()
        };
        let zk = four("  zookeeper: [a, b, c]\n  kafka: [a, b, c]\n");
        let facts = vec![
            Facts::default(),
            Facts::default(),
            Facts::default(),
            left.clone(),
        ];
        each_change_has_one_step(&zk, facts.clone());
        let kraft = four("  controller: [a, b, c]\n  kafka: [a, b, c]\n");
        each_change_has_one_step(&kraft, facts);
        let mut plans = plan::plans_from_facts(
            &zk,
            vec![Facts::default(), Facts::default(), Facts::default(), left],
            false,
        )
        .unwrap();
        plans[3].changes = change::plan_host(&zk, &plans[3], &change::Inputs::default());
        let retired: Vec<&Change> = plans[3].changes.iter().map(|c| &c.change).collect();
        assert_eq!(
            retired,
            [
                &Change::Retire(Service::ZooKeeper),
                &Change::Retire(Service::Kafka)
            ]
        );
    }

    /// nisshi runs through the same runner: its playbook's steps make every planned change of
    /// a first install, on the brokers and on the storage host.
    #[test]
    fn the_nisshi_playbook_makes_every_planned_change() {
        let inv = crate::inventory::parse(
            std::path::Path::new("i.yaml"),
            "flavor: nisshi\nhosts:\n  pg: { address: 10.0.0.9 }\n  b1: { address: 10.0.0.1 }\n  b2: { address: 10.0.0.2 }\n\
             groups:\n  storage: [pg]\n  kafka: [b1, b2]\nnisshi:\n  version: 0.8.1\n",
        )
        .unwrap();
        let steps = playbook::load(inv.flavor, None).unwrap();
        let mut plans = plan::plans_from_facts(&inv, vec![Facts::default(); 3], false).unwrap();
        let r = crate::render::Renderer::new(&inv).unwrap();
        let access = crate::render::StorageAccess {
            url: "postgres://x".into(),
            ca_pem: Some("PEM".into()),
        };
        for p in plans.iter_mut().filter(|p| p.host.in_kafka) {
            p.files = r
                .nisshi_files(&inv, &p.host, &p.host.address, &access, p.init)
                .unwrap();
            p.changes = change::plan_broker(p, Some("/opt/nisshi-0.8.1"));
        }
        let storage = plans.iter_mut().find(|p| p.host.in_storage).unwrap();
        storage.changes = vec![
            Planned {
                change: Change::Storage("install package postgresql".into()),
                when: When::Now,
            },
            Planned {
                change: Change::File(crate::render::ManagedFile {
                    path: "/etc/postgresql/15/main/clusterctl_hba.conf".into(),
                    content: String::new(),
                    mode: 0o640,
                    owner: "postgres".into(),
                    group: "postgres".into(),
                    restarts: None,
                    secret: false,
                }),
                when: When::Now,
            },
        ];
        for p in &mut plans {
            assert!(!p.changes.is_empty(), "{}", p.host.name);
            for s in &steps {
                if in_group(s, p) {
                    p.take(|c| claims(&inv, s, c));
                }
            }
            let left: Vec<String> = p.changes.iter().map(|c| c.describe()).collect();
            assert!(left.is_empty(), "{}: no step makes {left:#?}", p.host.name);
        }
    }

    /// Stopped dedicated controllers (here: beside the brokers) start before stopped brokers,
    /// in a wave of their own; running ones, or combined nodes, do not split the start.
    #[test]
    fn controllers_of_their_own_start_before_the_brokers() {
        let text = "hosts:\n  a: { address: 10.0.0.1 }\n  b: { address: 10.0.0.2 }\n  c: { address: 10.0.0.3 }\n\
                    groups:\n  controller: [a, b, c]\n  kafka: [a, b, c]\n\
                    kafka:\n  version: 4.4.0\n  controller_process: separate\n";
        let beside = crate::inventory::parse(std::path::Path::new("i.yaml"), text).unwrap();
        let all: Vec<usize> = (0..6).collect();
        let plans = plan::plans_from_facts(&beside, vec![Facts::default(); 6], false).unwrap();
        assert_eq!(
            start_waves(&beside, &plans, &all, Service::Kafka),
            vec![vec![1, 3, 5], vec![0, 2, 4]]
        );
        assert_eq!(
            start_waves(&beside, &plans, &all, Service::ZooKeeper),
            vec![all.clone()]
        );
        // The controllers already run: one wave.
        let mut facts = vec![Facts::default(); 6];
        for i in [1, 3, 5] {
            facts[i].pids.insert(Service::Kafka, 7);
        }
        let plans = plan::plans_from_facts(&beside, facts, false).unwrap();
        assert_eq!(
            start_waves(&beside, &plans, &all, Service::Kafka),
            vec![all.clone()]
        );
        let combined = crate::inventory::parse(
            std::path::Path::new("i.yaml"),
            &text.replace("  controller_process: separate\n", ""),
        )
        .unwrap();
        let plans = plan::plans_from_facts(&combined, vec![Facts::default(); 3], false).unwrap();
        assert_eq!(
            start_waves(&combined, &plans, &[0, 1, 2], Service::Kafka),
            vec![vec![0, 1, 2]]
        );
        // Before KIP-919 (3.7) the gate between the waves could not ask the controllers.
        let old = crate::inventory::parse(
            std::path::Path::new("i.yaml"),
            &text.replace("4.4.0", "3.6.2"),
        )
        .unwrap();
        let plans = plan::plans_from_facts(&old, vec![Facts::default(); 6], false).unwrap();
        assert_eq!(
            start_waves(&old, &plans, &all, Service::Kafka),
            vec![all.clone()]
        );
    }

    #[test]
    fn steps_of_the_other_mode_are_not_listed() {
        let steps = playbook::load(crate::inventory::Flavor::Jvm, None).unwrap();
        let zk = inv("");
        let names = |inv: &Inventory| -> Vec<String> {
            steps
                .iter()
                .filter(|s| applies(inv, s))
                .map(|s| s.name.clone())
                .collect()
        };
        assert!(
            names(&zk).iter().all(|n| !n.contains("KRaft")),
            "{:?}",
            names(&zk)
        );
        let kraft = crate::inventory::parse(
            std::path::Path::new("i.yaml"),
            "hosts:\n  a: { address: 10.0.0.1 }\n  b: { address: 10.0.0.2 }\n  c: { address: 10.0.0.3 }\n\
             groups:\n  controller: [a, b, c]\n  kafka: [a, b, c]\nkafka:\n  version: 4.4.0\n",
        )
        .unwrap();
        // Retiring a migrated cluster's ZooKeeper is the one ZooKeeper step of KRaft mode.
        assert!(
            names(&kraft)
                .iter()
                .all(|n| !n.contains("ZooKeeper") || n.starts_with("retire ZooKeeper")),
            "{:?}",
            names(&kraft)
        );
        assert!(names(&kraft).iter().any(|n| n.contains("format KRaft")));
    }
}
