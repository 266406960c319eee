//! `clusterctl rebalance` and `clusterctl drain`: move replicas with Kafka's own reassignment
//! (KIP-455) so brokers hold even shares, or so one broker holds nothing and can retire.
//!
//! Decide, then touch: the cluster is read, gated and the whole plan printed before anything
//! is submitted. A re-run after an interruption finds the reassignments still under way
//! (ListPartitionReassignments), plans only around them and waits for them too; `--cancel`
//! stops them. Throttles are set before the moves and removed once they are done.

use crate::engine::gates;
use crate::health::kafka::{self, ClusterMetadata, KafkaClient, RESOURCE_BROKER, RESOURCE_TOPIC};
use crate::inventory::Inventory;
use crate::ops::rebalance::{self, Move, Tp};
use crate::report::Reporter;
use anyhow::{Context, Result, bail};
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

/// (partition, replicas now, replicas wanted) of one topic.
type PartitionMove = (i32, Vec<i32>, Vec<i32>);

const CALL_TIMEOUT: Duration = Duration::from_secs(15);
const POLL: Duration = Duration::from_secs(1);
/// Give up waiting when no partition has finished for this long; the moves go on in Kafka
/// and a re-run waits for them again.
const STALL: Duration = Duration::from_secs(600);
/// How long the cluster may take to look the same twice and pass the gate before planning.
const SETTLE: Duration = Duration::from_secs(30);
/// How long a preferred replica that just finished catching up may take to be electable.
const ELECT_FOR: Duration = Duration::from_secs(30);

const LEADER_RATE: &str = "leader.replication.throttled.rate";
const FOLLOWER_RATE: &str = "follower.replication.throttled.rate";
const LEADER_REPLICAS: &str = "leader.replication.throttled.replicas";
const FOLLOWER_REPLICAS: &str = "follower.replication.throttled.replicas";

pub struct Options {
    /// Replication throttle in MB/s (10^6 bytes), per broker and direction.
    pub throttle: Option<f64>,
    pub dry_run: bool,
    pub cancel: bool,
    /// The host whose broker is emptied (`drain`).
    pub drain: Option<String>,
}

/// Checks what needs no cluster: a throttle that is a positive number.
pub fn check_options(o: &Options) -> Result<(), String> {
    match o.throttle {
        Some(t) if !(t.is_finite() && t > 0.0) => Err(format!(
            "--throttle {t}: expected a positive number of MB/s"
        )),
        _ => Ok(()),
    }
}

pub async fn run(inv: &Inventory, o: &Options, rep: &Reporter) -> Result<()> {
    let mut ctl = reconnect(inv).await?;
    let (meta, ongoing) = settled(&mut ctl, rep).await?;
    if o.cancel {
        return cancel(&meta, &mut ctl, &ongoing, o.dry_run, rep).await;
    }
    let drain: Vec<i32> = match &o.drain {
        Some(host) => vec![broker_of(inv, &meta, host)?],
        None => vec![],
    };
    let targets: BTreeMap<Tp, Vec<i32>> = ongoing
        .iter()
        .map(|(tp, g)| (tp.clone(), g.target()))
        .collect();
    rebalance::gate(&meta, &targets)
        .map_err(|e| anyhow::anyhow!("refusing to move replicas: {e}"))?;
    let plan = rebalance::plan(&meta, &targets, &drain)
        .map_err(|e| anyhow::anyhow!("refusing to move replicas: {e}"))?;

    print_plan(&plan, &ongoing, &drain);
    if o.dry_run {
        return Ok(());
    }
    if plan.moves.is_empty() && ongoing.is_empty() {
        // An interrupted run whose moves all finished since may have left its throttles.
        let topics: Vec<String> = meta.topics.iter().map(|t| t.name.clone()).collect();
        remove_throttles(&meta, &mut ctl, topics.iter()).await?;
        elect(&mut ctl, &all_partitions(&meta), rep).await?;
        println!("nothing to move; preferred leaders elected");
        return Ok(());
    }

    // Throttle the replicas that copy, then submit.
    let mut per_topic: BTreeMap<String, Vec<PartitionMove>> = BTreeMap::new();
    for m in &plan.moves {
        per_topic.entry(m.topic.clone()).or_default().push((
            m.partition,
            m.from.clone(),
            m.to.clone(),
        ));
    }
    for ((t, p), g) in &ongoing {
        let from: Vec<i32> = g
            .replicas
            .iter()
            .copied()
            .filter(|b| !g.adding.contains(b))
            .collect();
        per_topic
            .entry(t.clone())
            .or_default()
            .push((*p, from, g.target()));
    }
    if let Some(mb) = o.throttle {
        let rate = ((mb * 1_000_000.0) as u64).max(1).to_string();
        for b in &meta.brokers {
            let mut c = KafkaClient::connect(&b.addr(), CALL_TIMEOUT).await?;
            c.alter_resource_configs(
                RESOURCE_BROKER,
                &b.id.to_string(),
                &[
                    (LEADER_RATE, Some(rate.clone())),
                    (FOLLOWER_RATE, Some(rate.clone())),
                ],
            )
            .await
            .with_context(|| format!("throttling broker {}", b.id))?;
        }
        for (t, ms) in &per_topic {
            let (l, f) = rebalance::throttled_replicas(
                ms.iter()
                    .map(|(p, from, to)| (*p, from.as_slice(), to.as_slice())),
            );
            ctl.alter_resource_configs(
                RESOURCE_TOPIC,
                t,
                &[(LEADER_REPLICAS, Some(l)), (FOLLOWER_REPLICAS, Some(f))],
            )
            .await
            .with_context(|| format!("throttling topic {t}"))?;
        }
        rep.line(&format!(
            "throttle: {mb} MB/s per broker for the replicas that copy"
        ));
    }
    if !plan.moves.is_empty() {
        let changes: Vec<kafka::Reassignment> = plan
            .moves
            .iter()
            .map(|m| ((m.topic.clone(), m.partition), Some(m.to.clone())))
            .collect();
        ctl.alter_reassignments(&changes).await?;
        rep.line(&format!("submitted {} reassignment(s)", changes.len()));
    }

    let mut pending: BTreeMap<Tp, String> = plan
        .moves
        .iter()
        .map(|m| ((m.topic.clone(), m.partition), describe(m)))
        .collect();
    for (tp, g) in &ongoing {
        pending.insert(
            tp.clone(),
            format!("{:?} (under way before this run)", g.target()),
        );
    }
    let moved: Vec<Tp> = pending.keys().cloned().collect();
    wait(inv, &mut ctl, &mut pending, rep).await?;

    // Every topic, not only this run's: an interrupted run may have throttled a topic whose
    // move finished before this one started.
    let topics: Vec<String> = meta.topics.iter().map(|t| t.name.clone()).collect();
    remove_throttles(&meta, &mut ctl, topics.iter()).await?;
    elect(&mut ctl, &moved, rep).await?;
    let after = ctl.metadata(None).await?;
    println!("done: {} partition(s) moved", moved.len());
    print_counts(&after);
    Ok(())
}

/// The broker id of an inventory host: its pinned `broker_id`, else the live broker that
/// advertises the host's address.
fn broker_of(inv: &Inventory, meta: &ClusterMetadata, host: &str) -> Result<i32> {
    let h = inv
        .hosts
        .iter()
        .find(|h| h.name == host)
        .with_context(|| format!("no host {host:?} in {}", inv.file.display()))?;
    if let Some(id) = h.broker_id {
        return Ok(id as i32);
    }
    match meta
        .brokers
        .iter()
        .find(|b| b.host == h.address || b.host == h.name)
    {
        Some(b) => Ok(b.id),
        None => bail!(
            "no live broker advertises {} (host {host}); is its Kafka running? (pin \
             hosts.{host}.broker_id to drain a stopped one)",
            h.address
        ),
    }
}

fn describe(m: &Move) -> String {
    let add = m.adding();
    if add.is_empty() {
        format!("{:?} -> {:?} (leader order only)", m.from, m.to)
    } else {
        format!("{:?} -> {:?} (copy to {:?})", m.from, m.to, add)
    }
}

fn print_plan(plan: &rebalance::Plan, ongoing: &BTreeMap<Tp, kafka::Ongoing>, drain: &[i32]) {
    if !drain.is_empty() {
        println!("draining broker {}", drain[0]);
    }
    for ((t, p), g) in ongoing {
        println!("  {t}-{p}: under way to {:?}; waited for", g.target());
    }
    for m in &plan.moves {
        println!("  {}-{}: {}", m.topic, m.partition, describe(m));
    }
    println!(
        "plan: {} partition(s) to change, {} replica copies; afterwards replicas per broker {}, \
         preferred leaders {}",
        plan.moves.len(),
        plan.copies(),
        fmt_counts(&plan.replicas),
        fmt_counts(&plan.leaders)
    );
}

fn fmt_counts(c: &BTreeMap<i32, usize>) -> String {
    c.iter()
        .map(|(b, n)| format!("{b}:{n}"))
        .collect::<Vec<_>>()
        .join(" ")
}

fn print_counts(m: &ClusterMetadata) {
    let mut replicas: BTreeMap<i32, usize> = m.brokers.iter().map(|b| (b.id, 0)).collect();
    let mut leaders = replicas.clone();
    for p in m.topics.iter().flat_map(|t| &t.partitions) {
        for b in &p.replicas {
            *replicas.entry(*b).or_default() += 1;
        }
        if p.leader >= 0 {
            *leaders.entry(p.leader).or_default() += 1;
        }
    }
    println!(
        "replicas per broker {}; leaders {}",
        fmt_counts(&replicas),
        fmt_counts(&leaders)
    );
}

fn all_partitions(m: &ClusterMetadata) -> Vec<Tp> {
    m.topics
        .iter()
        .flat_map(|t| t.partitions.iter().map(move |p| (t.name.clone(), p.id)))
        .collect()
}

/// Until every pending partition has left the controller's list of reassignments, each shown
/// while it moves and reported when done.
async fn wait(
    inv: &Inventory,
    ctl: &mut KafkaClient,
    pending: &mut BTreeMap<Tp, String>,
    rep: &Reporter,
) -> Result<()> {
    let total = pending.len();
    let mut last_done = Instant::now();
    for ((t, p), what) in pending.iter() {
        rep.host_busy(&format!("{t}-{p}"), &format!("moving {what}"));
    }
    while !pending.is_empty() {
        tokio::time::sleep(POLL).await;
        let now = match ctl.list_reassignments().await {
            Ok(n) => n,
            // The controller may have moved (ZooKeeper mode) or the connection broken: ask
            // again through whichever broker answers.
            Err(first) => {
                *ctl = reconnect(inv)
                    .await
                    .with_context(|| format!("after {first:#}"))?;
                ctl.list_reassignments().await?
            }
        };
        let finished: Vec<Tp> = pending
            .keys()
            .filter(|tp| !now.contains_key(*tp))
            .cloned()
            .collect();
        for tp in finished {
            let what = pending.remove(&tp).unwrap();
            rep.host_done(
                &format!("{}-{}", tp.0, tp.1),
                &format!("moved {what} ({}/{total})", total - pending.len()),
            );
            last_done = Instant::now();
        }
        if !pending.is_empty() && last_done.elapsed() >= STALL {
            rep.clear();
            bail!(
                "{} partition(s) still moving and none finished in {} s: {}; they go on in \
                 Kafka (throttles stay set): re-run to wait for them, or --cancel",
                pending.len(),
                STALL.as_secs(),
                pending
                    .keys()
                    .map(|(t, p)| format!("{t}-{p}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
    }
    Ok(())
}

/// Metadata and the reassignments under way, read until they agree: a move the controller has
/// just finished can still show its old replica set in a broker's metadata for a moment, and
/// would otherwise look like an under-replicated partition (or be planned with too many
/// replicas). Two reads a second apart must match, and pass the gate, within `SETTLE`;
/// otherwise the last reads are returned for the gate to refuse with its reason.
async fn settled(
    ctl: &mut KafkaClient,
    rep: &Reporter,
) -> Result<(ClusterMetadata, BTreeMap<Tp, kafka::Ongoing>)> {
    let start = Instant::now();
    let mut said = false;
    loop {
        let ongoing = ctl.list_reassignments().await?;
        let meta = ctl.metadata(None).await?;
        tokio::time::sleep(POLL).await;
        let ongoing_again = ctl.list_reassignments().await?;
        let meta_again = ctl.metadata(None).await?;
        let targets: BTreeMap<Tp, Vec<i32>> = ongoing
            .iter()
            .map(|(tp, g)| (tp.clone(), g.target()))
            .collect();
        let stable = ongoing == ongoing_again && same_replicas(&meta, &meta_again);
        let verdict = rebalance::gate(&meta_again, &targets);
        if (stable && verdict.is_ok()) || start.elapsed() >= SETTLE {
            return Ok((meta_again, ongoing_again));
        }
        if !said {
            rep.line(&format!(
                "waiting up to {} s for the cluster to settle: {}",
                SETTLE.as_secs(),
                verdict
                    .err()
                    .unwrap_or_else(|| "metadata still changing".into())
            ));
            said = true;
        }
    }
}

fn same_replicas(a: &ClusterMetadata, b: &ClusterMetadata) -> bool {
    let sets = |m: &ClusterMetadata| -> BTreeMap<Tp, Vec<i32>> {
        m.topics
            .iter()
            .flat_map(|t| {
                t.partitions
                    .iter()
                    .map(move |p| ((t.name.clone(), p.id), p.replicas.clone()))
            })
            .collect()
    };
    sets(a) == sets(b)
}

async fn reconnect(inv: &Inventory) -> Result<KafkaClient> {
    let mut c = kafka::connect_any(&gates::bootstrap(inv), CALL_TIMEOUT).await?;
    c.controller().await
}

/// Deletes the rates on every live broker and the throttled-replica lists on `topics`.
async fn remove_throttles<'a>(
    meta: &ClusterMetadata,
    ctl: &mut KafkaClient,
    topics: impl Iterator<Item = &'a String>,
) -> Result<()> {
    for b in &meta.brokers {
        let mut c = KafkaClient::connect(&b.addr(), CALL_TIMEOUT).await?;
        c.alter_resource_configs(
            RESOURCE_BROKER,
            &b.id.to_string(),
            &[(LEADER_RATE, None), (FOLLOWER_RATE, None)],
        )
        .await
        .with_context(|| format!("removing broker {}'s throttle", b.id))?;
    }
    for t in topics {
        ctl.alter_resource_configs(
            RESOURCE_TOPIC,
            t,
            &[(LEADER_REPLICAS, None), (FOLLOWER_REPLICAS, None)],
        )
        .await
        .with_context(|| format!("removing topic {t}'s throttle"))?;
    }
    Ok(())
}

/// Preferred leaders for `tps`, retried for a while: a replica that just joined may not be
/// electable at once.
async fn elect(ctl: &mut KafkaClient, tps: &[Tp], rep: &Reporter) -> Result<()> {
    let start = Instant::now();
    let mut todo: Vec<Tp> = tps.to_vec();
    loop {
        let failed = ctl.elect_preferred(&todo).await?;
        if failed.is_empty() {
            return Ok(());
        }
        if start.elapsed() >= ELECT_FOR {
            let why: Vec<String> = failed
                .iter()
                .map(|((t, p), e)| format!("{t}-{p}: {e}"))
                .collect();
            rep.line(&format!(
                "warning: preferred leader not elected for {} partition(s): {}",
                failed.len(),
                why.join("; ")
            ));
            return Ok(());
        }
        let again: BTreeSet<Tp> = failed.into_iter().map(|(tp, _)| tp).collect();
        todo.retain(|tp| again.contains(tp));
        tokio::time::sleep(POLL).await;
    }
}

async fn cancel(
    meta: &ClusterMetadata,
    ctl: &mut KafkaClient,
    ongoing: &BTreeMap<Tp, kafka::Ongoing>,
    dry_run: bool,
    rep: &Reporter,
) -> Result<()> {
    for ((t, p), g) in ongoing {
        println!("  {t}-{p}: cancel the move to {:?}", g.target());
    }
    println!(
        "cancel: {} reassignment(s) under way; the throttles on every broker and topic are removed",
        ongoing.len()
    );
    if dry_run {
        return Ok(());
    }
    if !ongoing.is_empty() {
        let changes: Vec<kafka::Reassignment> =
            ongoing.keys().map(|tp| (tp.clone(), None)).collect();
        ctl.alter_reassignments(&changes).await?;
    }
    let topics: Vec<String> = meta.topics.iter().map(|t| t.name.clone()).collect();
    remove_throttles(meta, ctl, topics.iter()).await?;
    rep.line("cancelled; throttles removed");
    Ok(())
}
