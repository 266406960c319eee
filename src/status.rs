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
    /// `zookeeper`, `migrating: <phase>` or `kraft` (JVM flavor only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    pub hosts: Vec<HostStatus>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub zookeeper: Option<ZkStatus>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kraft: Option<QuorumStatus>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kafka: Option<KafkaStatus>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nisshi: Option<NisshiStatus>,
    /// Each TLS listener's certificate, as the node presents it.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub certificates: Vec<CertStatus>,
}

#[derive(Debug, Serialize)]
pub struct CertStatus {
    pub host: String,
    /// `kafka` or `zookeeper`: whose TLS port presented it.
    pub service: &'static str,
    pub address: String,
    /// Seconds since the Unix epoch; `None` when the node did not answer.
    pub not_after: Option<u64>,
    pub days_left: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The certificate each Kafka node presents on its TLS listener (the client port of a broker,
/// the controller port of a controller), and each ZooKeeper member on its client port with
/// `zookeeper_tls`: what clients see, whatever the files say.
async fn certificates(inv: &Inventory) -> Vec<CertStatus> {
    let Some(sec) = &inv.security else {
        return vec![];
    };
    let timeout = std::time::Duration::from_secs(5);
    let kafka = inv.hosts.iter().filter(|h| h.runs_kafka()).filter_map(|h| {
        let (port, tls) = match h.in_kafka {
            true => (inv.kafka.port, sec.client.protocol.tls()),
            false => (
                inv.kafka.controller_port,
                sec.controller.is_some_and(|c| c.protocol.tls()),
            ),
        };
        tls.then_some((h, "kafka", port))
    });
    let zookeeper = inv
        .zookeeper_hosts()
        .filter(|_| sec.zookeeper_tls && !inv.kafka.kraft)
        .map(|h| (h, "zookeeper", inv.zookeeper.client_port));
    let probes = kafka.chain(zookeeper).map(|(h, service, port)| async move {
        let addr = format!("{}:{port}", h.address);
        let now = std::time::SystemTime::now();
        let got = async {
            let der = match service {
                "kafka" => crate::health::kafka::KafkaClient::connect(&addr, timeout)
                    .await?
                    .peer_certificate(),
                _ => crate::health::zookeeper::peer_certificate(&addr, timeout).await?,
            };
            let der = der.ok_or_else(|| anyhow::anyhow!("no certificate presented"))?;
            crate::pki::not_after_der(&der)
        }
        .await;
        match got {
            Ok(t) => CertStatus {
                host: h.name.clone(),
                service,
                address: addr,
                not_after: t
                    .duration_since(std::time::UNIX_EPOCH)
                    .ok()
                    .map(|d| d.as_secs()),
                days_left: Some(crate::pki::days_left(t, now)),
                error: None,
            },
            Err(e) => CertStatus {
                host: h.name.clone(),
                service,
                address: addr,
                not_after: None,
                days_left: None,
                error: Some(format!("{e:#}")),
            },
        }
    });
    futures::future::join_all(probes).await
}

/// The nisshi flavor: each broker asked itself (they do not know each other), and the store.
#[derive(Debug, Serialize)]
pub struct NisshiStatus {
    pub brokers: Vec<NisshiBroker>,
    /// The managed PostgreSQL's host and whether it runs (`None`: external or sqlite).
    pub storage: Option<StorageStatus>,
    pub topics: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct NisshiBroker {
    pub host: String,
    pub answering: bool,
    /// How many Kafka APIs it offers (ApiVersions).
    pub apis: Option<usize>,
    pub topics: Option<usize>,
    pub error: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct StorageStatus {
    pub host: String,
    pub online: bool,
    pub error: Option<String>,
}

/// The KRaft metadata quorum as DescribeQuorum reports it.
#[derive(Debug, Serialize)]
pub struct QuorumStatus {
    /// `static` (controller.quorum.voters) or `dynamic` (KIP-853, kraft.version 1); `None`
    /// when neither the cluster nor a host's files say.
    pub kind: Option<&'static str>,
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
    /// systemd hosts: the unit's ActiveState, and how often systemd restarted the service
    /// on its own (a crash) since clusterctl last started or stopped it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub systemd_state: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restarted_by_systemd: Option<u32>,
}

/// `(state, restarts)` of `svc`'s unit when the host runs systemd, with a note for a
/// service systemd restarted (running again, so not a problem, but a crash to look into).
fn systemd_facts(
    f: Option<&Facts>,
    (svc, name): (Service, &str),
    host: &str,
    notes: &mut Vec<String>,
) -> (Option<String>, Option<u32>) {
    let Some(u) = f.and_then(|f| f.units.get(&svc)) else {
        return (None, None);
    };
    if u.restarts > 0 {
        notes.push(format!(
            "{name} on {host} was restarted by systemd {} since clusterctl started it (see `journalctl -u {name}`)",
            times(u.restarts)
        ));
    }
    (Some(u.active_state.clone()), Some(u.restarts))
}

fn times(n: u32) -> String {
    match n {
        1 => "1 time".into(),
        n => format!("{n} times"),
    }
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
    /// The active controller: the controller broker in ZooKeeper mode, the quorum leader's
    /// node id in KRaft and during a migration.
    pub controller: Option<i32>,
    pub topics: Vec<String>,
    pub under_replicated: Vec<String>,
    pub offline: Vec<String>,
    pub error: Option<String>,
}

pub async fn collect(inv: &Inventory, policy: HostKeyPolicy) -> Status {
    if inv.flavor == crate::inventory::Flavor::Nisshi {
        return collect_nisshi(inv, policy).await;
    }
    let reach = futures::future::join_all(inv.hosts.iter().map(|h| async move {
        let s = Session::connect(&h.ssh, policy).await?;
        let f = plan::gather(inv, h, &s).await;
        s.close().await;
        f
    }));
    let (facts, zk_probe, metadata, certificates, (quorum, level)) = tokio::join!(
        reach,
        zk_members(inv),
        gates::metadata(inv),
        certificates(inv),
        async {
            match inv.kafka.kraft || inv.kafka.migrating {
                true => {
                    let (q, level) = tokio::join!(gates::quorum(inv), gates::kraft_version(inv));
                    (Some(q), level)
                }
                false => (None, None),
            }
        }
    );
    let facts: Vec<Result<Facts, String>> = facts
        .into_iter()
        .map(|r| r.map_err(|e| format!("{e:#}")))
        .collect();
    let mut problems = Vec::new();
    let mut notes = Vec::new();

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
            // A controller beside a broker is its own service, `kafka-controller`.
            let name = match svc {
                Service::Kafka => h.kafka_name(),
                _ => svc.name(),
            };
            let pid = f.as_ref().ok().and_then(|f| f.pids.get(&svc).copied());
            let (systemd_state, restarted_by_systemd) =
                systemd_facts(f.as_ref().ok(), (svc, name), &h.name, &mut notes);
            if reachable && pid.is_none() {
                problems.push(match &systemd_state {
                    Some(st) => format!("{name} on {} is not running (systemd: {st})", h.name),
                    None => format!("{name} on {} is not running", h.name),
                });
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
                // A broker (this loop never sees the nisshi flavor's service).
                _ => {
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
                service: name.into(),
                running: pid.is_some(),
                pid,
                state,
                systemd_state,
                restarted_by_systemd,
            });
        }
        // A service the inventory no longer gives this host, still running or enabled: shown
        // (the host is not as declared) but not a problem of the cluster's health.
        for (svc, r) in f.iter().flat_map(|f| &f.retired) {
            if r.pending() {
                services.push(ServiceStatus {
                    service: svc.name().into(),
                    running: r.pid.is_some(),
                    pid: r.pid,
                    state: format!(
                        "retired (not in the inventory for this host), still {}: apply stops and disables it",
                        if r.pid.is_some() { "running" } else { "enabled at boot" }
                    ),
                    systemd_state: None,
                    restarted_by_systemd: None,
                });
            }
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
    let mode = if inv.kafka.kraft {
        "kraft".to_string()
    } else if inv.kafka.migrating {
        let reached: Vec<(&crate::inventory::Host, &Facts)> = inv
            .hosts
            .iter()
            .zip(&facts)
            .filter_map(|(h, f)| Some((h, f.as_ref().ok()?)))
            .collect();
        match crate::ops::migrate::phase::detect(&crate::ops::migrate::observe(
            reached.iter().copied(),
        )) {
            Ok(p) => p.mode(),
            Err(e) => {
                problems.push(format!("migration: {e}"));
                "migrating: inconsistent".into()
            }
        }
    } else {
        "zookeeper".into()
    };
    let kraft = quorum.map(|q| {
        let mut st = quorum_status(inv, &ids, q, &mut problems);
        // The running cluster's word, else the formatted hosts' files.
        let dynamic = level.map(|l| l >= 1).or_else(|| {
            crate::engine::quorum::on_hosts(facts.iter().filter_map(|f| f.as_ref().ok()))
        });
        st.kind = dynamic.map(|d| if d { "dynamic" } else { "static" });
        st
    });
    let expected: BTreeMap<String, i32> = inv
        .kafka_hosts()
        .filter_map(|h| {
            ids.broker_id
                .get(&h.name)
                .map(|i| (h.name.clone(), *i as i32))
        })
        .collect();
    let mut kafka = kafka_status(&metadata, &expected, &mut problems);
    // Metadata's controller id in KRaft is any live broker, not the controller.
    if let Some(q) = &kraft {
        kafka.controller = (q.leader >= 0).then_some(q.leader);
    }
    for c in &certificates {
        match c.days_left {
            Some(d) if d < 0 => problems.push(format!(
                "the {} certificate of {} has expired",
                c.service, c.host
            )),
            Some(d) if d < crate::pki::RENEW_WITHIN_DAYS as i64 => notes.push(format!(
                "the {} certificate of {} expires in {d} days: `apply` renews a managed one inside its last 30 (`certs rotate` at once)",
                c.service, c.host
            )),
            _ => {}
        }
    }
    if let Some(m) = crate::security::installed().filter(|_| inv.security.is_some()) {
        notes.extend(m.status_notes(inv, std::time::SystemTime::now()));
    }
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
            "HEALTHY: {quorum}, {}/{} brokers registered, 0 under-replicated, 0 offline partitions{}",
            kafka.registered.len(),
            expected.len(),
            notes
                .iter()
                .map(|n| format!("; note: {n}"))
                .collect::<String>()
        )
    } else {
        format!("UNHEALTHY: {}", problems.join("; "))
    };
    Status {
        healthy,
        verdict,
        mode: Some(mode),
        hosts,
        zookeeper: (!inv.kafka.kraft).then_some(zk_probe),
        kraft,
        kafka: Some(kafka),
        nisshi: None,
        certificates,
    }
}

/// SSH facts (is the process there), each broker's own answer, the storage host's PostgreSQL.
async fn collect_nisshi(inv: &Inventory, policy: HostKeyPolicy) -> Status {
    let reach = futures::future::join_all(inv.hosts.iter().map(|h| async move {
        let s = Session::connect(&h.ssh, policy).await?;
        let f = plan::gather(inv, h, &s).await;
        let online = match h.in_storage {
            true => Some(crate::engine::storage_online(&s).await),
            false => None,
        };
        s.close().await;
        Ok::<_, anyhow::Error>((f?, online))
    }));
    let answers =
        futures::future::join_all(inv.kafka_hosts().map(|h| gates::nisshi_answer(inv, h)));
    let (reach, answers) = tokio::join!(reach, answers);
    let mut problems = Vec::new();
    let mut notes = Vec::new();
    let mut hosts = Vec::new();
    let mut storage = None;
    let mut brokers = Vec::new();
    let mut answers = answers.into_iter();
    for (h, r) in inv.hosts.iter().zip(reach) {
        let (facts, online, error) = match r {
            Ok((f, online)) => (Some(f), online, None),
            Err(e) => {
                problems.push(format!("{} unreachable", h.name));
                (None, None, Some(format!("{e:#}")))
            }
        };
        if h.in_storage {
            let (online, err) = match online {
                Some(Ok(o)) => (o, None),
                Some(Err(e)) => (false, Some(format!("{e:#}"))),
                None => (false, error.clone()),
            };
            if !online {
                problems.push(format!("PostgreSQL on {} is not running", h.name));
            }
            storage = Some(StorageStatus {
                host: h.name.clone(),
                online,
                error: err,
            });
        }
        let mut services = Vec::new();
        if h.in_kafka {
            let pid = facts
                .as_ref()
                .and_then(|f| f.pids.get(&Service::Nisshi).copied());
            if facts.is_some() && pid.is_none() {
                problems.push(format!("nisshi on {} is not running", h.name));
            }
            let a = answers.next().expect("one answer per broker");
            let state = match &a {
                Ok(a) => format!(
                    "answering as {}, {} APIs, {} topics",
                    a.advertised, a.apis, a.topics
                ),
                Err(e) => {
                    problems.push(format!("nisshi on {} not answering", h.name));
                    format!("not answering: {e:#}")
                }
            };
            brokers.push(NisshiBroker {
                host: h.name.clone(),
                answering: a.is_ok(),
                apis: a.as_ref().ok().map(|a| a.apis),
                topics: a.as_ref().ok().map(|a| a.topics),
                error: a.as_ref().err().map(|e| format!("{e:#}")),
            });
            let (systemd_state, restarted_by_systemd) = systemd_facts(
                facts.as_ref(),
                (Service::Nisshi, "nisshi"),
                &h.name,
                &mut notes,
            );
            services.push(ServiceStatus {
                service: "nisshi".into(),
                running: pid.is_some(),
                pid,
                state,
                systemd_state,
                restarted_by_systemd,
            });
        }
        hosts.push(HostStatus {
            name: h.name.clone(),
            address: h.address.clone(),
            reachable: error.is_none(),
            error,
            services,
        });
    }
    let topics = match gates::metadata(inv).await {
        Ok(m) => m.topics.iter().map(|t| t.name.clone()).collect(),
        Err(_) => vec![],
    };
    let healthy = problems.is_empty();
    let verdict = if healthy {
        format!(
            "HEALTHY: {}/{} nisshi brokers answering{}{}",
            brokers.len(),
            brokers.len(),
            match &storage {
                Some(s) => format!(", PostgreSQL on {} running", s.host),
                None => String::new(),
            },
            notes
                .iter()
                .map(|n| format!("; note: {n}"))
                .collect::<String>()
        )
    } else {
        format!("UNHEALTHY: {}", problems.join("; "))
    };
    Status {
        mode: None,
        healthy,
        verdict,
        hosts,
        zookeeper: None,
        kraft: None,
        kafka: None,
        certificates: vec![],
        nisshi: Some(NisshiStatus {
            brokers,
            storage,
            topics,
        }),
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
                kind: None,
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
        kind: None,
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
            .map(|svc| {
                let restarted = match svc.restarted_by_systemd {
                    Some(n) if n > 0 => format!("; restarted by systemd {}", times(n)),
                    _ => String::new(),
                };
                match (svc.pid, &svc.systemd_state) {
                    (Some(pid), _) => {
                        format!("{} pid {pid} ({}{restarted})", svc.service, svc.state)
                    }
                    (None, Some(st)) => format!(
                        "{} STOPPED (systemd: {st}; {}{restarted})",
                        svc.service, svc.state
                    ),
                    (None, None) => format!("{} STOPPED ({})", svc.service, svc.state),
                }
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
    if let Some(m) = &s.mode {
        println!("mode: {m}");
    }
    if !s.certificates.is_empty() {
        let certs: Vec<String> = s
            .certificates
            .iter()
            .map(|c| {
                // Kafka's are named by host as before; ZooKeeper's say so.
                let who = match c.service {
                    "zookeeper" => format!("{} (zookeeper)", c.host),
                    _ => c.host.clone(),
                };
                match (c.days_left, &c.error) {
                    (Some(d), _) => format!("{who} expires in {d} days"),
                    (None, Some(e)) => format!("{who} unknown ({e})"),
                    (None, None) => format!("{who} unknown"),
                }
            })
            .collect();
        println!("certificates: {}", certs.join(", "));
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
                "kraft quorum{}: leader node {} epoch {}, high watermark {}; voters: {}",
                q.kind.map_or(String::new(), |k| format!(" ({k})")),
                q.leader,
                q.leader_epoch,
                q.high_watermark,
                voters.join(", ")
            ),
        }
    }
    if let Some(n) = &s.nisshi {
        if let Some(st) = &n.storage {
            println!(
                "storage: PostgreSQL on {} {}",
                st.host,
                if st.online { "running" } else { "NOT running" }
            );
        }
        println!("topics: {}", list(&n.topics));
    }
    match &s.kafka {
        None => {}
        Some(KafkaStatus { error: Some(e), .. }) => println!("kafka: {e}"),
        Some(k) => println!(
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
