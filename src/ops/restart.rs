//! The roller: restarts a service host by host without taking the cluster below its safety
//! margins. `clusterctl restart --rolling` and the config-change path of `apply` share it.

use super::roller::{self, KafkaView, Policy};
use crate::engine::change::{Change, When};
use crate::engine::{HostPlan, actions, gates};
use crate::health::kafka::ClusterMetadata;
use crate::inventory::Inventory;
use crate::render::Service;
use crate::report::Reporter;
use crate::transport::Session;
use anyhow::{Context, Result, bail};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// How long one node may wait to be allowed down, and to come back in sync.
const NODE_TIMEOUT: Duration = Duration::from_secs(300);
const POLL: Duration = Duration::from_millis(250);
/// "Back in the ISR" must hold for this many polls in a row (ISR can flap right after a start).
const STABLE_POLLS: u32 = 3;

pub struct RollOptions {
    pub policy: Policy,
    /// Roll even if pre-flight finds the cluster degraded.
    pub force: bool,
    pub sigkill_after: Option<u64>,
    /// How long pre-flight may wait for a healthy cluster before refusing: `apply` has just
    /// started services that need a moment to join; `restart` answers at once.
    pub settle: Duration,
}

/// One node's restart, with the parts the benchmark sums.
#[derive(Debug, Clone)]
pub struct NodeRoll {
    pub host: String,
    pub service: Service,
    pub message: String,
    pub stop: Duration,
    pub start: Duration,
    pub catch_up: Duration,
}

pub struct Roller<'a> {
    inv: &'a Inventory,
    sessions: &'a BTreeMap<String, Session>,
    rep: &'a Reporter,
    opts: RollOptions,
    /// Topics' own min.insync.replicas, read once per topic (configs do not change mid-roll).
    topic_min_isr: std::sync::Mutex<BTreeMap<String, Option<usize>>>,
}

impl<'a> Roller<'a> {
    pub fn new(
        inv: &'a Inventory,
        sessions: &'a BTreeMap<String, Session>,
        rep: &'a Reporter,
        opts: RollOptions,
    ) -> Self {
        Roller {
            inv,
            sessions,
            rep,
            opts,
            topic_min_isr: Default::default(),
        }
    }

    /// Restart `svc` on the hosts `todo` (indexes into `plans`), one at a time: pre-flight,
    /// then for each node: wait until it may go, stop, start, wait until it is back in sync.
    /// The ZooKeeper leader / controller broker is re-read before each node and goes last.
    pub async fn roll(
        &self,
        plans: &mut [HostPlan],
        svc: Service,
        todo: Vec<usize>,
    ) -> Result<Vec<NodeRoll>> {
        if todo.is_empty() {
            return Ok(vec![]);
        }
        let restarting: Vec<i32> = todo
            .iter()
            .filter(|&&i| plans[i].host.in_kafka)
            .filter_map(|&i| plans[i].broker_id.map(|id| id as i32))
            .collect();
        self.preflight(plans, svc, &restarting).await?;
        let first_leader = gates::leader_host(self.inv, plans, svc).await;
        let last = match (&first_leader, svc) {
            (_, Service::Nisshi) => "(stateless brokers: no leader to keep for last)".to_string(),
            (Some(l), Service::ZooKeeper) => format!("{l} (leader) last"),
            (Some(l), _) => format!("{l} (controller) last"),
            (None, _) => "the leader last".to_string(),
        };
        self.rep.line(&format!(
            "  restarting {svc} on {} host(s), one at a time, {last}",
            todo.len(),
        ));
        let mut left = todo;
        let mut done = Vec::new();
        while !left.is_empty() {
            let leader = gates::leader_host(self.inv, plans, svc).await;
            // KRaft controllers before pure brokers; within each, the leader last.
            let pure_broker = |i: usize| plans[i].host.in_kafka && !plans[i].host.in_controller;
            let (controllers, brokers): (Vec<usize>, Vec<usize>) =
                left.iter().partition(|&&i| !pure_broker(i));
            let group = if controllers.is_empty() {
                brokers
            } else {
                controllers
            };
            let names: Vec<&str> = group.iter().map(|&i| plans[i].host.name.as_str()).collect();
            let next_name = roller::order_last(&names, leader.as_deref())[0].to_string();
            let pos = left
                .iter()
                .position(|&i| plans[i].host.name == next_name)
                .unwrap();
            let i = left.remove(pos);
            let role = match (&leader, svc) {
                (Some(l), Service::ZooKeeper) if *l == next_name => " (leader)",
                (Some(l), Service::Kafka) if *l == next_name => " (controller)",
                _ => "",
            };
            self.rep
                .host_busy(&next_name, &format!("waiting until {svc} may restart"));
            self.wait_can_roll(plans, svc, i).await?;
            self.rep.host_busy(&next_name, &format!("restarting {svc}"));
            let s = &self.sessions[&next_name];
            // Apply's changes for this host go live now, just before its restart.
            let staged = plans[i].take(|c| {
                c.when == When::WithRestart(svc) && !matches!(c.change, Change::Restart(_))
            });
            let wrote = actions::go_live(&mut plans[i], s, staged)
                .await
                .with_context(|| format!("{next_name}: writing {svc}'s new files"))?;
            let r = actions::restart(self.inv, &mut plans[i], s, svc, self.opts.sigkill_after)
                .await
                .with_context(|| format!("{next_name}: restarting {svc}"))?;
            self.rep
                .host_busy(&next_name, &format!("{svc}: waiting until back in sync"));
            let def = crate::render::ServiceDef::new(svc, self.inv, &plans[i].host);
            let catch_up = tokio::select! {
                r = self.wait_ready(plans, svc, i) => r,
                dead = actions::process_gone(s, &def, &next_name) => Err(dead),
            }
            .with_context(|| {
                format!(
                    "after restarting {svc} on {next_name}: it did not come back; stopping here"
                )
            })?;
            let message = format!(
                "{}{role} (stop {:.1}s, start {:.1}s, {} {:.1}s){}",
                r.message,
                r.stop.as_secs_f64(),
                r.start.as_secs_f64(),
                if svc == Service::Nisshi {
                    "answering again after"
                } else {
                    "back in sync"
                },
                catch_up.as_secs_f64(),
                if wrote.is_empty() {
                    String::new()
                } else {
                    format!(", with {}", wrote.join(", "))
                },
            );
            self.rep.host_done(&next_name, &message);
            done.push(NodeRoll {
                host: next_name,
                service: svc,
                message,
                stop: r.stop,
                start: r.start,
                catch_up,
            });
        }
        Ok(done)
    }

    /// Every node of the service up and the cluster whole; otherwise refuse (or warn, forced).
    /// A blocker that waiting cannot clear refuses at once; others are waited for up to
    /// `settle`, saying what for.
    async fn preflight(&self, plans: &[HostPlan], svc: Service, restarting: &[i32]) -> Result<()> {
        let start = Instant::now();
        let mut said = Vec::new();
        let (lasting, transient) = loop {
            let (lasting, transient) = self.blockers(plans, svc, restarting).await;
            if (lasting.is_empty() && transient.is_empty())
                || !lasting.is_empty()
                || start.elapsed() >= self.opts.settle
            {
                break (lasting, transient);
            }
            if transient != said {
                self.rep.line(&format!(
                    "  waiting up to {}s before rolling {svc}: {}",
                    self.opts.settle.saturating_sub(start.elapsed()).as_secs(),
                    transient.join("; ")
                ));
                said = transient;
            }
            tokio::time::sleep(POLL * 4).await;
        };
        let blockers: Vec<String> = lasting.into_iter().chain(transient).collect();
        if blockers.is_empty() {
            return Ok(());
        }
        if self.opts.force {
            self.rep.line(&format!(
                "WARNING: --force: rolling {svc} although the cluster is degraded: {}",
                blockers.join("; ")
            ));
            return Ok(());
        }
        bail!(
            "refusing to roll {svc}: the cluster is not healthy (nothing was restarted):\n  {}\nfix these first, or pass --force to roll anyway",
            blockers.join("\n  ")
        )
    }

    /// Before apply touches any host: what would make the roll of `svc` it plans refuse, and
    /// waiting would not clear. The cluster must answer: a roll cannot be judged blind.
    pub async fn lasting_blockers(&self, plans: &[HostPlan], svc: Service) -> Vec<String> {
        let mut v: Vec<String> = plans
            .iter()
            .filter(|p| member(p, svc) && p.running(svc).is_none())
            .filter(|p| !p.changes.iter().any(|c| c.change == Change::Start(svc)))
            .map(|p| {
                format!(
                    "{svc} on {} is not running, and this apply does not start it (outside --limit)",
                    p.host.name
                )
            })
            .collect();
        if svc == Service::Kafka {
            let restarting: Vec<i32> = plans
                .iter()
                .filter(|p| p.host.in_kafka && p.restart_pending(svc))
                .filter_map(|p| p.broker_id.map(|id| id as i32))
                .collect();
            match self.kafka_view(plans).await {
                Ok(view) => v.extend(roller::lasting_blockers(
                    &view,
                    &restarting,
                    self.opts.policy,
                )),
                Err(e) => v.push(format!(
                    "cannot read the cluster's state to judge the roll: {e:#}"
                )),
            }
        }
        v
    }

    /// What forbids a roll of `svc` on `restarting` (broker ids) now: (what waiting cannot
    /// clear, roller::lasting_blockers; the rest), from one reading of the cluster.
    async fn blockers(
        &self,
        plans: &[HostPlan],
        svc: Service,
        restarting: &[i32],
    ) -> (Vec<String>, Vec<String>) {
        let mut lasting = Vec::new();
        let mut blockers: Vec<String> = plans
            .iter()
            .filter(|p| member(p, svc) && p.running(svc).is_none())
            .map(|p| format!("{svc} on {} is not running", p.host.name))
            .collect();
        match svc {
            Service::ZooKeeper => {
                let (_, v) = gates::zk_probe(self.inv).await;
                blockers.extend(v.problems.into_iter().map(|p| format!("ZooKeeper: {p}")));
            }
            Service::Kafka => {
                match self.kafka_view(plans).await {
                    Ok(v) => {
                        lasting = roller::lasting_blockers(&v, restarting, self.opts.policy);
                        blockers.extend(roller::kafka_preflight(&v, self.opts.policy));
                    }
                    Err(e) => blockers.push(format!("{e:#}")),
                }
                if self.inv.kafka.kraft {
                    match gates::quorum(self.inv).await {
                        Ok(q) => blockers.extend(
                            q.problems(&gates::expected_voters(plans), gates::FETCH_TIMEOUT_MS)
                                .into_iter()
                                .map(|p| format!("KRaft quorum: {p}")),
                        ),
                        Err(e) => blockers.push(format!("{e:#}")),
                    }
                }
            }
            Service::Nisshi => blockers.extend(gates::nisshi_problems(self.inv, None).await),
        }
        (lasting, blockers)
    }

    async fn wait_can_roll(&self, plans: &[HostPlan], svc: Service, i: usize) -> Result<()> {
        let host = &plans[i].host.name;
        let members = plans.iter().filter(|p| member(p, svc)).count();
        self.poll(
            &format!("{svc} on {host} may restart"),
            move || async move {
                match svc {
                    Service::ZooKeeper => {
                        let (_, v) = gates::zk_probe(self.inv).await;
                        // A healthy verdict already includes "leader has members-1 synced followers".
                        let synced = v.healthy.then_some(members - 1);
                        roller::can_roll_zookeeper(v.healthy, members, synced)
                            .map_err(|e| format!("{e}: {}", v.problems.join("; ")))
                    }
                    Service::Kafka => {
                        let host = &plans[i].host;
                        let id = plans[i].broker_id.unwrap_or(-1) as i32;
                        if host.in_controller {
                            let q = gates::quorum(self.inv)
                                .await
                                .map_err(|e| format!("{e:#}"))?;
                            q.can_restart_voter(id, gates::FETCH_TIMEOUT_MS)?;
                        }
                        if host.in_kafka {
                            let v = self.kafka_view(plans).await.map_err(|e| format!("{e:#}"))?;
                            roller::can_roll_broker(&v, id, self.opts.policy)
                                .map_err(|w| w.join("; "))?;
                        }
                        Ok(())
                    }
                    // Clients need another broker to go to while this one restarts.
                    Service::Nisshi => {
                        let p = gates::nisshi_problems(self.inv, Some(host)).await;
                        if p.is_empty() {
                            Ok(())
                        } else {
                            Err(p.join("; "))
                        }
                    }
                }
            },
        )
        .await
    }

    /// Returns how long the node took to catch up: until the first of the in-sync polls that
    /// confirmed it (the confirming polls are the roller's own cost, not the node's).
    async fn wait_ready(&self, plans: &[HostPlan], svc: Service, i: usize) -> Result<Duration> {
        let host = &plans[i].host.name;
        let start = Instant::now();
        match svc {
            // Stateless: back means answering ApiVersions and Metadata (it has nothing to sync).
            Service::Nisshi => {
                let only = plans[i].host.clone();
                self.poll(&format!("nisshi on {host} answering"), move || {
                    let only = only.clone();
                    async move {
                        match gates::nisshi_answer(self.inv, &only).await {
                            Ok(_) => Ok(()),
                            Err(e) => Err(format!("{e:#}")),
                        }
                    }
                })
                .await?;
                Ok(start.elapsed())
            }
            Service::ZooKeeper => {
                self.poll(
                    &format!("ZooKeeper on {host} following, ensemble whole"),
                    move || async move {
                        let (_, v) = gates::zk_probe(self.inv).await;
                        if v.healthy {
                            Ok(())
                        } else {
                            Err(v.problems.join("; "))
                        }
                    },
                )
                .await?;
                Ok(start.elapsed())
            }
            Service::Kafka => {
                let id = plans[i].broker_id.unwrap_or(-1) as i32;
                let (controller, broker) = (plans[i].host.in_controller, plans[i].host.in_kafka);
                let streak = std::sync::atomic::AtomicU32::new(0);
                let streak = &streak;
                let first_in_sync = &std::sync::Mutex::new(None);
                self.poll(&format!("node {id} ({host}) back in sync"), || async move {
                    let quorum_ok = if controller {
                        match gates::quorum(self.inv).await {
                            Ok(q) => {
                                let p = q.problems(
                                    &gates::expected_voters(plans),
                                    gates::FETCH_TIMEOUT_MS,
                                );
                                if p.is_empty() {
                                    Ok(())
                                } else {
                                    Err(p.join("; "))
                                }
                            }
                            Err(e) => Err(format!("{e:#}")),
                        }
                    } else {
                        Ok(())
                    };
                    let caught_up = if broker {
                        self.kafka_view(plans)
                            .await
                            .map_err(|e| format!("{e:#}"))
                            .and_then(|v| roller::broker_caught_up(&v, id))
                    } else {
                        Ok(())
                    };
                    match quorum_ok.and(caught_up) {
                        Ok(()) => {
                            let n = streak.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                            if n == 1 {
                                *first_in_sync.lock().unwrap() = Some(start.elapsed());
                            }
                            if n >= STABLE_POLLS {
                                Ok(())
                            } else {
                                Err(format!("in sync, confirming ({n}/{STABLE_POLLS})"))
                            }
                        }
                        Err(e) => {
                            streak.store(0, std::sync::atomic::Ordering::Relaxed);
                            Err(e)
                        }
                    }
                })
                .await?;
                let caught_up = first_in_sync.lock().unwrap().take();
                Ok(caught_up.unwrap_or_else(|| start.elapsed()))
            }
        }
    }

    /// Metadata plus what the roller needs to judge it.
    async fn kafka_view(&self, plans: &[HostPlan]) -> Result<KafkaView> {
        let metadata: ClusterMetadata = gates::metadata(self.inv).await?;
        let min_isr = self.topic_min_isr(&metadata).await?;
        Ok(KafkaView {
            metadata,
            expected: plans
                .iter()
                .filter(|p| p.host.in_kafka)
                .filter_map(|p| p.broker_id.map(|i| i as i32))
                .collect(),
            min_isr,
            default_min_isr: default_min_isr(self.inv),
        })
    }

    /// Per-topic min.insync.replicas overrides (DescribeConfigs), for topics not seen yet.
    async fn topic_min_isr(&self, m: &ClusterMetadata) -> Result<BTreeMap<String, usize>> {
        let unknown: Vec<String> = {
            let cache = self.topic_min_isr.lock().unwrap();
            m.topics
                .iter()
                .filter(|t| !cache.contains_key(&t.name))
                .map(|t| t.name.clone())
                .collect()
        };
        if !unknown.is_empty() {
            let mut client = crate::health::kafka::connect_any(
                &gates::bootstrap(self.inv),
                Duration::from_secs(10),
            )
            .await?;
            for topic in unknown {
                let configs = client.describe_topic_configs(&topic).await?;
                let v = configs
                    .iter()
                    .find(|(k, _)| k == "min.insync.replicas")
                    .and_then(|(_, v)| v.parse().ok());
                self.topic_min_isr.lock().unwrap().insert(topic, v);
            }
        }
        let cache = self.topic_min_isr.lock().unwrap();
        Ok(cache
            .iter()
            .filter_map(|(t, v)| v.map(|v| (t.clone(), v)))
            .collect())
    }

    async fn poll<F, Fut>(&self, what: &str, mut probe: F) -> Result<()>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<(), String>>,
    {
        let start = Instant::now();
        loop {
            match probe().await {
                Ok(()) => return Ok(()),
                Err(why) => {
                    if start.elapsed() > NODE_TIMEOUT {
                        bail!("{what}: not within {}s: {why}", NODE_TIMEOUT.as_secs());
                    }
                }
            }
            tokio::time::sleep(POLL).await;
        }
    }
}

fn member(p: &HostPlan, svc: Service) -> bool {
    match svc {
        Service::ZooKeeper => p.host.in_zookeeper,
        Service::Kafka => p.host.runs_kafka(),
        Service::Nisshi => p.host.in_kafka,
    }
}

/// The brokers' min.insync.replicas (a topic's own setting overrides it).
fn default_min_isr(inv: &Inventory) -> usize {
    inv.kafka.min_insync_replicas as usize
}
