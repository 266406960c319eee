//! `clusterctl status`: the truth about a running cluster, per host and service, with a
//! one-line verdict. Unreachable hosts are reported, not fatal.

use crate::engine::facts::Facts;
use crate::engine::{gates, plan};
use crate::health::kafka::{ClusterMetadata, QuorumInfo};
use crate::inventory::Inventory;
use crate::render::Service;
use crate::transport::{HostKeyPolicy, Session};
use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Debug, Serialize)]
pub struct Status {
    pub healthy: bool,
    pub verdict: String,
    pub hosts: Vec<HostStatus>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub zookeeper: Option<ZkStatus>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kraft: Option<QuorumStatus>,
    pub kafka: KafkaStatus,
}

/// The KRaft metadata quorum as DescribeQuorum reports it.
#[derive(Debug, Serialize)]
pub struct QuorumStatus {
    /// The active controller's node id (-1: none).
    pub leader: i32,
    pub leader_epoch: i32,
    pub high_watermark: i64,
    pub voters: Vec<VoterStatus>,
    pub error: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct VoterStatus {
    pub id: i32,
    pub host: Option<String>,
    pub log_end_offset: i64,
    /// Records behind the leader's log end.
    pub lag: i64,
    pub caught_up: bool,
}

#[derive(Debug, Serialize)]
pub struct HostStatus {
    pub name: String,
    pub address: String,
    pub reachable: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub services: Vec<ServiceStatus>,
}

#[derive(Debug, Serialize)]
pub struct ServiceStatus {
    pub service: String,
    pub running: bool,
    pub pid: Option<u32>,
    /// ZooKeeper: leader/follower/...; Kafka: registered/not registered.
    pub state: String,
}

#[derive(Debug, Serialize)]
pub struct ZkStatus {
    pub leader: Option<String>,
    pub members: Vec<ZkMember>,
    pub problems: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct ZkMember {
    pub host: String,
    pub mode: Option<String>,
    pub zxid: Option<String>,
    pub error: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct KafkaStatus {
    pub registered: Vec<i32>,
    pub expected: BTreeMap<String, i32>,
    pub controller: Option<i32>,
    pub topics: Vec<String>,
    pub under_replicated: Vec<String>,
    pub offline: Vec<String>,
    pub error: Option<String>,
}

pub async fn collect(inv: &Inventory, policy: HostKeyPolicy) -> Status {
    let reach = futures::future::join_all(inv.hosts.iter().map(|h| async move {
        let s = Session::connect(&h.ssh, policy).await?;
        let f = plan::gather(inv, h, &s).await;
        s.close().await;
        f
    }));
    let (facts, zk_probe, metadata, quorum) =
        tokio::join!(reach, zk_members(inv), gates::metadata(inv), async {
            match inv.kafka.kraft {
                true => Some(gates::quorum(inv).await),
                false => None,
            }
        });
    let facts: Vec<Result<Facts, String>> = facts
        .into_iter()
        .map(|r| r.map_err(|e| format!("{e:#}")))
        .collect();
    let mut problems = Vec::new();

    // Expected broker ids: meta.properties on disk, else what apply would assign.
    let known: Vec<Facts> = facts
        .iter()
        .map(|f| f.as_ref().cloned().unwrap_or_default())
        .collect();
    let ids = plan::resolve_ids(inv, &known).unwrap_or_default();

    let mut hosts = Vec::new();
    for (h, f) in inv.hosts.iter().zip(&facts) {
        let mut services = Vec::new();
        let (reachable, error) = match f {
            Ok(_) => (true, None),
            Err(e) => {
                problems.push(format!("{} unreachable", h.name));
                (false, Some(e.clone()))
            }
        };
        for (svc, member) in [
            (Service::ZooKeeper, h.in_zookeeper),
            (Service::Kafka, h.runs_kafka()),
        ] {
            if !member {
                continue;
            }
            let pid = f.as_ref().ok().and_then(|f| f.pids.get(&svc).copied());
            if reachable && pid.is_none() {
                problems.push(format!("{svc} on {} is not running", h.name));
            }
            let state = match svc {
                Service::ZooKeeper => zk_probe
                    .members
                    .iter()
                    .find(|m| m.host == h.name)
                    .and_then(|m| m.mode.clone())
                    .unwrap_or_else(|| "not answering".into()),
                Service::Kafka if !h.in_kafka => {
                    let id = ids.node_id(&h.name).unwrap_or(-1) as i32;
                    match &quorum {
                        Some(Ok(q)) if q.leader_id == id => format!("controller {id}, active"),
                        Some(Ok(q)) if q.voter(id).is_some() => format!("controller {id}, voter"),
                        _ => format!("controller {id}, not in the quorum"),
                    }
                }
                Service::Kafka => {
                    let id = ids.broker_id.get(&h.name).map(|i| *i as i32);
                    let kraft_leader = match &quorum {
                        Some(Ok(q)) => Some(q.leader_id),
                        _ => None,
                    };
                    match (&metadata, id) {
                        (Ok(m), Some(id)) if m.broker(id).is_some() => {
                            // In KRaft, Metadata's controller id is any broker: ask the quorum.
                            let c = match kraft_leader {
                                Some(l) if l == id => ", active controller",
                                Some(_) => "",
                                None if m.controller_id == id => ", controller",
                                None => "",
                            };
                            format!("broker {id} registered{c}")
                        }
                        (_, Some(id)) => format!("broker {id} not registered"),
                        _ => "unknown".into(),
                    }
                }
            };
            services.push(ServiceStatus {
                service: svc.name().into(),
                running: pid.is_some(),
                pid,
                state,
            });
        }
        hosts.push(HostStatus {
            name: h.name.clone(),
            address: h.address.clone(),
            reachable,
            error,
            services,
        });
    }

    if !inv.kafka.kraft {
        problems.extend(zk_probe.problems.iter().cloned());
    }
    let kraft = quorum.map(|q| quorum_status(inv, &ids, q, &mut problems));
    let expected: BTreeMap<String, i32> = inv
        .kafka_hosts()
        .filter_map(|h| {
            ids.broker_id
                .get(&h.name)
                .map(|i| (h.name.clone(), *i as i32))
        })
        .collect();
    let kafka = kafka_status(&metadata, &expected, &mut problems);
    let healthy = problems.is_empty();
    let verdict = if healthy {
        let quorum = match &kraft {
            Some(q) => format!(
                "KRaft quorum with active controller {}",
                q.voters
                    .iter()
                    .find(|v| v.id == q.leader)
                    .and_then(|v| v.host.clone())
                    .unwrap_or_else(|| q.leader.to_string())
            ),
            None => format!(
                "ZooKeeper quorum with leader {}",
                zk_probe.leader.clone().unwrap_or_default()
            ),
        };
        format!(
            "HEALTHY: {quorum}, {}/{} brokers registered, 0 under-replicated, 0 offline partitions",
            kafka.registered.len(),
            expected.len()
        )
    } else {
        format!("UNHEALTHY: {}", problems.join("; "))
    };
    Status {
        healthy,
        verdict,
        hosts,
        zookeeper: (!inv.kafka.kraft).then_some(zk_probe),
        kraft,
        kafka,
    }
}

fn quorum_status(
    inv: &Inventory,
    ids: &crate::render::Ids,
    q: anyhow::Result<QuorumInfo>,
    problems: &mut Vec<String>,
) -> QuorumStatus {
    let q = match q {
        Ok(q) => q,
        Err(e) => {
            problems.push(format!("KRaft: {e:#}"));
            return QuorumStatus {
                leader: -1,
                leader_epoch: -1,
                high_watermark: -1,
                voters: vec![],
                error: Some(format!("{e:#}")),
            };
        }
    };
    let host_of = |id: i32| {
        inv.controller_hosts()
            .find(|h| ids.node_id(&h.name) == Some(id as i64))
            .map(|h| h.name.clone())
    };
    let expected: Vec<i32> = inv
        .controller_hosts()
        .filter_map(|h| ids.node_id(&h.name).map(|i| i as i32))
        .collect();
    problems.extend(
        q.problems(&expected, gates::FETCH_TIMEOUT_MS)
            .into_iter()
            .map(|p| format!("KRaft quorum: {p}")),
    );
    let leader_end = q
        .voter(q.leader_id)
        .map_or(q.high_watermark, |l| l.log_end_offset);
    QuorumStatus {
        leader: q.leader_id,
        leader_epoch: q.leader_epoch,
        high_watermark: q.high_watermark,
        voters: q
            .voters
            .iter()
            .map(|v| VoterStatus {
                id: v.id,
                host: host_of(v.id),
                log_end_offset: v.log_end_offset,
                lag: (leader_end - v.log_end_offset).max(0),
                caught_up: q.is_caught_up(v, gates::FETCH_TIMEOUT_MS),
            })
            .collect(),
        error: None,
    }
}

async fn zk_members(inv: &Inventory) -> ZkStatus {
    let (answers, verdict) = gates::zk_probe(inv).await;
    ZkStatus {
        leader: verdict.leader.clone(),
        members: answers
            .into_iter()
            .map(|(host, r)| match r {
                Ok(s) => ZkMember {
                    host,
                    mode: Some(s.mode.to_string()),
                    zxid: Some(format!("0x{:x}", s.zxid)),
                    error: None,
                },
                Err(e) => ZkMember {
                    host,
                    mode: None,
                    zxid: None,
                    error: Some(format!("{e:#}")),
                },
            })
            .collect(),
        problems: verdict
            .problems
            .iter()
            .map(|p| format!("ZooKeeper: {p}"))
            .collect(),
    }
}

fn kafka_status(
    metadata: &anyhow::Result<ClusterMetadata>,
    expected: &BTreeMap<String, i32>,
    problems: &mut Vec<String>,
) -> KafkaStatus {
    let m = match metadata {
        Ok(m) => m,
        Err(e) => {
            problems.push(format!("Kafka: {e:#}"));
            return KafkaStatus {
                registered: vec![],
                expected: expected.clone(),
                controller: None,
                topics: vec![],
                under_replicated: vec![],
                offline: vec![],
                error: Some(format!("{e:#}")),
            };
        }
    };
    let registered: Vec<i32> = m.brokers.iter().map(|b| b.id).collect();
    for (host, id) in expected {
        if !registered.contains(id) {
            problems.push(format!("broker {id} ({host}) is not registered"));
        }
    }
    if m.controller_id < 0 {
        problems.push("Kafka has no active controller".into());
    }
    let fmt = |v: Vec<(String, i32)>| {
        v.into_iter()
            .map(|(t, p)| format!("{t}-{p}"))
            .collect::<Vec<_>>()
    };
    let under_replicated = fmt(m.under_replicated());
    let offline = fmt(m.offline());
    if !under_replicated.is_empty() {
        problems.push(format!(
            "under-replicated partitions: {}",
            list(&under_replicated)
        ));
    }
    if !offline.is_empty() {
        problems.push(format!("offline partitions: {}", list(&offline)));
    }
    let offline_replicas = fmt(m.with_offline_replicas());
    if !offline_replicas.is_empty() {
        problems.push(format!(
            "partitions with offline replicas: {}",
            list(&offline_replicas)
        ));
    }
    KafkaStatus {
        registered,
        expected: expected.clone(),
        controller: (m.controller_id >= 0).then_some(m.controller_id),
        topics: m.topics.iter().map(|t| t.name.clone()).collect(),
        under_replicated,
        offline,
        error: None,
    }
}

/// At most 10 items, then a count: a broken 1000-partition cluster stays readable.
fn list(v: &[String]) -> String {
    if v.len() <= 10 {
        v.join(", ")
    } else {
        format!("{} and {} more", v[..10].join(", "), v.len() - 10)
    }
}

pub fn print_text(s: &Status) {
    println!("{:<12} {:<16} {:<5} SERVICES", "HOST", "ADDRESS", "SSH");
    for h in &s.hosts {
        let svcs: Vec<String> = h
            .services
            .iter()
            .map(|svc| match svc.pid {
                Some(pid) => format!("{} pid {pid} ({})", svc.service, svc.state),
                None => format!("{} STOPPED ({})", svc.service, svc.state),
            })
            .collect();
        println!(
            "{:<12} {:<16} {:<5} {}",
            h.name,
            h.address,
            if h.reachable { "ok" } else { "DOWN" },
            if h.reachable {
                svcs.join("; ")
            } else {
                h.error.clone().unwrap_or_default()
            }
        );
    }
    if let Some(z) = &s.zookeeper {
        let zk: Vec<String> = z
            .members
            .iter()
            .map(|m| match (&m.mode, &m.zxid) {
                (Some(mode), Some(z)) => format!("{} {mode} zxid {z}", m.host),
                _ => format!("{} not answering", m.host),
            })
            .collect();
        println!("zookeeper: {}", zk.join(", "));
    }
    if let Some(q) = &s.kraft {
        let voters: Vec<String> = q
            .voters
            .iter()
            .map(|v| {
                format!(
                    "{} (node {}{}, lag {}{})",
                    v.host.as_deref().unwrap_or("?"),
                    v.id,
                    if v.id == q.leader { ", active" } else { "" },
                    v.lag,
                    if v.caught_up { "" } else { ", NOT caught up" }
                )
            })
            .collect();
        match &q.error {
            Some(e) => println!("kraft quorum: {e}"),
            None => println!(
                "kraft quorum: leader node {} epoch {}, high watermark {}; voters: {}",
                q.leader,
                q.leader_epoch,
                q.high_watermark,
                voters.join(", ")
            ),
        }
    }
    let k = &s.kafka;
    match &k.error {
        Some(e) => println!("kafka: {e}"),
        None => println!(
            "kafka: {}/{} brokers registered{}, {} topic(s), {} under-replicated, {} offline partition(s)",
            k.registered.len(),
            k.expected.len(),
            // In KRaft the active controller is the quorum leader, printed above.
            match (&s.kraft, k.controller) {
                (Some(_), _) => String::new(),
                (None, Some(c)) => format!(", controller broker {c}"),
                (None, None) => ", NO controller".into(),
            },
            k.topics.len(),
            k.under_replicated.len(),
            k.offline.len()
        ),
    }
    println!("{}", s.verdict);
}
