//! Health gates: predicates polled with a deadline. The same probes serve `status`.

use super::HostPlan;
use super::playbook::Gate;
use crate::health::kafka::{self, ClusterMetadata, KafkaClient, QuorumInfo};
use crate::health::zookeeper;
use crate::inventory::Inventory;
use crate::render::Service;
use crate::report::Reporter;
use anyhow::{Result, bail};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

pub(crate) const PROBE_TIMEOUT: Duration = Duration::from_secs(3);
const POLL: Duration = Duration::from_millis(500);

pub fn zk_members(inv: &Inventory) -> Vec<(String, String)> {
    inv.zookeeper_hosts()
        .map(|h| {
            (
                h.name.clone(),
                format!("{}:{}", h.address, inv.zookeeper.client_port),
            )
        })
        .collect()
}

pub type ZkAnswers = Vec<(String, Result<zookeeper::Srvr>)>;

/// One probe of the ensemble: `srvr` on every member, `mntr` on the leader.
pub async fn zk_probe(inv: &Inventory) -> (ZkAnswers, zookeeper::EnsembleVerdict) {
    zookeeper::probe_ensemble(&zk_members(inv), PROBE_TIMEOUT).await
}

pub fn bootstrap(inv: &Inventory) -> Vec<String> {
    inv.kafka_hosts()
        .map(|h| format!("{}:{}", h.address, inv.kafka.port))
        .collect()
}

/// Metadata from the first broker that answers.
pub async fn metadata(inv: &Inventory) -> Result<ClusterMetadata> {
    let mut errors = Vec::new();
    for addr in bootstrap(inv) {
        match KafkaClient::connect(&addr, PROBE_TIMEOUT).await {
            Ok(mut c) => match c.metadata(None).await {
                Ok(m) => return Ok(m),
                Err(e) => errors.push(format!("{addr}: {e:#}")),
            },
            Err(e) => errors.push(format!("{addr}: {e:#}")),
        }
    }
    bail!("no broker answered Metadata: {}", errors.join("; "))
}

/// The cluster's finalized `kraft.version` (0: a static quorum, 1: dynamic) from the
/// ApiVersions of any broker; `None` when none answered.
pub async fn kraft_version(inv: &Inventory) -> Option<i16> {
    let c = crate::health::kafka::connect_any(&bootstrap(inv), PROBE_TIMEOUT)
        .await
        .ok()?;
    Some(
        c.finalized_feature(super::quorum::KRAFT_VERSION)
            .unwrap_or(0),
    )
}

fn expected_brokers(plans: &[HostPlan]) -> BTreeSet<i32> {
    plans
        .iter()
        .filter(|p| p.host.in_kafka)
        .filter_map(|p| p.broker_id.map(|i| i as i32))
        .collect()
}

/// Every expected broker registered (by id), as seen by a live broker, and every partition
/// fully replicated again: a broker that was just (re)started must have caught up before
/// apply calls the cluster healthy.
fn brokers_problem(m: &ClusterMetadata, plans: &[HostPlan]) -> Option<String> {
    let seen: BTreeSet<i32> = m.brokers.iter().map(|b| b.id).collect();
    let missing: Vec<String> = plans
        .iter()
        .filter(|p| p.host.in_kafka)
        .filter_map(|p| p.broker_id.map(|id| (p, id as i32)))
        .filter(|(_, id)| !seen.contains(id))
        .map(|(p, id)| format!("{} (broker.id {id})", p.host.name))
        .collect();
    if !missing.is_empty() {
        return Some(format!("not registered: {}", missing.join(", ")));
    }
    if m.controller_id < 0 {
        return Some("no active controller".into());
    }
    let lagging = m.under_replicated();
    let offline = m.offline();
    if !lagging.is_empty() || !offline.is_empty() {
        return Some(format!(
            "{} under-replicated, {} offline partition(s)",
            lagging.len(),
            offline.len()
        ));
    }
    None
}

/// Poll `probe` until it returns Ok(None) (healthy) or the deadline passes.
pub(super) async fn poll<F, Fut>(
    what: &str,
    timeout: Duration,
    rep: &Reporter,
    mut probe: F,
) -> Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<String>>,
{
    let start = Instant::now();
    let mut last = String::new();
    loop {
        match probe().await {
            None => return Ok(()),
            Some(problem) => {
                if problem != last {
                    rep.host_busy("gate", &format!("{what}: {problem}"));
                    last = problem;
                }
            }
        }
        if start.elapsed() >= timeout {
            rep.clear();
            bail!("{what} not reached within {}s: {last}", timeout.as_secs());
        }
        tokio::time::sleep(POLL).await;
    }
}

pub async fn wait(
    inv: &Inventory,
    plans: &[HostPlan],
    gate: Gate,
    timeout: Duration,
    rep: &Reporter,
) -> Result<String> {
    let start = Instant::now();
    match gate {
        Gate::ZookeeperQuorum if zk_members(inv).is_empty() => {
            Ok("no ZooKeeper ensemble (KRaft): skipped".into())
        }
        Gate::KraftQuorum if !inv.kafka.kraft && !inv.kafka.migrating => {
            Ok("ZooKeeper mode: no KRaft quorum".into())
        }
        Gate::KraftQuorum => {
            let voters = expected_voters(plans);
            let leader = &std::sync::atomic::AtomicI32::new(-1);
            let voters = &voters;
            poll("KRaft quorum", timeout, rep, move || async move {
                match quorum(inv).await {
                    Ok(q) => {
                        leader.store(q.leader_id, std::sync::atomic::Ordering::Relaxed);
                        let p = q.problems(voters, FETCH_TIMEOUT_MS);
                        (!p.is_empty()).then(|| p.join("; "))
                    }
                    Err(e) => Some(format!("{e:#}")),
                }
            })
            .await?;
            rep.clear();
            Ok(format!(
                "KRaft quorum: active controller {}, {} voter(s) caught up ({:.1}s)",
                leader.load(std::sync::atomic::Ordering::Relaxed),
                voters.len(),
                start.elapsed().as_secs_f64()
            ))
        }
        Gate::ZookeeperQuorum => {
            let leader = &std::sync::Mutex::new(None);
            poll("ZooKeeper quorum", timeout, rep, move || async move {
                let (_, v) = zk_probe(inv).await;
                *leader.lock().unwrap() = v.leader.clone();
                (!v.healthy).then(|| v.problems.join("; "))
            })
            .await?;
            rep.clear();
            let leader = leader.lock().unwrap().take();
            let n = zk_members(inv).len();
            Ok(format!(
                "ZooKeeper quorum: leader {}, {} follower(s) in sync ({:.1}s)",
                leader.unwrap_or_default(),
                n - 1,
                start.elapsed().as_secs_f64()
            ))
        }
        Gate::BrokersAnswering => {
            poll("brokers answering", timeout, rep, || async {
                let problems = nisshi_problems(inv, None).await;
                (!problems.is_empty()).then(|| problems.join("; "))
            })
            .await?;
            rep.clear();
            Ok(format!(
                "{} broker(s) answer ApiVersions and Metadata ({:.1}s)",
                inv.kafka_hosts().count(),
                start.elapsed().as_secs_f64()
            ))
        }
        Gate::BrokersRegistered => {
            let controller = &std::sync::atomic::AtomicI32::new(-1);
            poll("brokers registered", timeout, rep, move || async move {
                match metadata(inv).await {
                    Ok(m) => {
                        controller.store(m.controller_id, std::sync::atomic::Ordering::Relaxed);
                        brokers_problem(&m, plans)
                    }
                    Err(e) => Some(format!("{e:#}")),
                }
            })
            .await?;
            rep.clear();
            let controller = controller.load(std::sync::atomic::Ordering::Relaxed);
            // Metadata's controller id names the controller only in ZooKeeper mode: a KRaft
            // broker answers with any live broker (the quorum gate names the active one).
            let controller = if inv.kafka.kraft || inv.kafka.migrating {
                String::new()
            } else {
                format!(", controller is broker {controller}")
            };
            Ok(format!(
                "{} broker(s) registered, every partition fully replicated{controller} ({:.1}s)",
                expected_brokers(plans).len(),
                start.elapsed().as_secs_f64()
            ))
        }
    }
}

/// The host whose restart forces an election: the ZooKeeper leader, the KRaft active
/// controller (DescribeQuorum's leader; Metadata's controller id is not it in KRaft), or the
/// ZooKeeper-mode controller broker.
pub async fn leader_host(inv: &Inventory, plans: &[HostPlan], svc: Service) -> Option<String> {
    let id = match svc {
        Service::ZooKeeper => return zk_probe(inv).await.1.leader,
        // Stateless brokers: none leads anything.
        Service::Nisshi => return None,
        // A migration's controllers are KRaft from the start: the active one is the quorum's
        // leader there too.
        Service::Kafka if inv.kafka.kraft || inv.kafka.migrating => {
            quorum(inv).await.ok()?.leader_id
        }
        Service::Kafka => metadata(inv).await.ok()?.controller_id,
    };
    plans
        .iter()
        .find(|p| p.host.runs_kafka() && p.broker_id == Some(id as i64))
        .map(|p| p.host.name.clone())
}

/// KRaft's default controller.quorum.fetch.timeout.ms: a voter further behind is not caught up.
pub const FETCH_TIMEOUT_MS: i64 = 2000;

/// Node ids of the KRaft voters.
pub fn expected_voters(plans: &[HostPlan]) -> Vec<i32> {
    plans
        .iter()
        .filter(|p| p.host.in_controller)
        .filter_map(|p| p.broker_id.map(|i| i as i32))
        .collect()
}

/// DescribeQuorum through the first broker that answers (brokers forward it to the controller).
pub async fn quorum(inv: &Inventory) -> Result<QuorumInfo> {
    let mut errors = Vec::new();
    // While brokers are in ZooKeeper mode they know no quorum; the controllers answer
    // DescribeQuorum themselves (KIP-919, Kafka 3.7+).
    // Nor do brokers not started yet (controllers start first): then the controllers.
    let controllers = inv
        .controller_hosts()
        .map(|h| format!("{}:{}", h.address, inv.kafka.controller_port));
    let addrs: Vec<String> = if inv.kafka.migrating {
        controllers.collect()
    } else if controllers_answer_quorum(inv) {
        bootstrap(inv).into_iter().chain(controllers).collect()
    } else {
        bootstrap(inv)
    };
    for addr in addrs {
        match KafkaClient::connect(&addr, PROBE_TIMEOUT).await {
            Ok(mut c) => match c.describe_quorum().await {
                Ok(q) => return Ok(q),
                Err(e) => errors.push(format!("{addr}: {e:#}")),
            },
            Err(e) => errors.push(format!("{addr}: {e:#}")),
        }
    }
    bail!("no node answered DescribeQuorum: {}", errors.join("; "))
}

/// KIP-919 (Kafka 3.7+): a controller answers DescribeQuorum on its own listener.
pub fn controllers_answer_quorum(inv: &Inventory) -> bool {
    crate::versions::parse(&inv.kafka.version) >= (3, 7, 0)
}

pub const SMOKE_TOPIC: &str = "__clusterctl_smoke";

/// A replicated topic, one record produced with acks=all and read back.
pub async fn smoke(inv: &Inventory, plans: &[HostPlan], timeout: Duration) -> Result<String> {
    let brokers = expected_brokers(plans).len();
    let rf = brokers.clamp(1, 3) as i16;
    let r = kafka::smoke(&bootstrap(inv), SMOKE_TOPIC, rf, timeout).await?;
    Ok(format!(
        "smoke: topic {} (replication factor {rf}, ISR {:?}): record produced at offset {} through leader {} and read back ({:.1}s)",
        r.topic,
        r.isr,
        r.offset,
        r.leader_id,
        r.elapsed.as_secs_f64()
    ))
}

/// What one nisshi broker answered.
#[derive(Debug, Clone)]
pub struct NisshiAnswer {
    /// Kafka APIs it offers (ApiVersions).
    pub apis: usize,
    pub topics: usize,
    /// The broker Metadata names (every nisshi broker calls itself node 111).
    pub advertised: String,
}

/// ApiVersions and Metadata asked of one nisshi broker directly: brokers do not know each
/// other, so "the cluster answers" proves nothing about any one of them.
pub async fn nisshi_answer(inv: &Inventory, host: &crate::inventory::Host) -> Result<NisshiAnswer> {
    let addr = format!("{}:{}", host.address, inv.kafka.port);
    let mut c = KafkaClient::connect(&addr, PROBE_TIMEOUT).await?;
    let m = c.metadata(None).await?;
    let b = m
        .brokers
        .first()
        .ok_or_else(|| anyhow::anyhow!("Kafka {addr}: Metadata names no broker"))?;
    Ok(NisshiAnswer {
        apis: c.api_count(),
        topics: m.topics.len(),
        advertised: b.addr(),
    })
}

/// Brokers (all but `except`) that do not answer, each with why.
pub async fn nisshi_problems(inv: &Inventory, except: Option<&str>) -> Vec<String> {
    let hosts: Vec<_> = inv
        .kafka_hosts()
        .filter(|h| Some(h.name.as_str()) != except)
        .collect();
    let answers = futures::future::join_all(hosts.iter().map(|h| nisshi_answer(inv, h))).await;
    hosts
        .iter()
        .zip(answers)
        .filter_map(|(h, a)| a.err().map(|e| format!("nisshi on {}: {e:#}", h.name)))
        .collect()
}
