//! The roller: restarts a service host by host without taking the cluster below its safety
//! margins. `clusterctl restart --rolling` and the config-change path of `apply` share it.

use super::roller::{self, KafkaView, Policy};
use crate::engine::change::{Change, When};
use crate::engine::{HostPlan, actions, gates};
use crate::health::kafka::ClusterMetadata;
use crate::inventory::Inventory;
use crate::render::{Service, ServiceDef};
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
    /// Kafka: restart the brokers of a rack together where every partition keeps its
    /// min.insync.replicas in the other racks (`restart --rolling --by-rack`).
    pub by_rack: bool,
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
    /// With `by_rack` (Kafka), the brokers of a rack go together where that is safe.
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
        if self.opts.by_rack && svc == Service::Kafka {
            return self.roll_by_rack(plans, todo).await;
        }
        self.one_at_a_time(plans, svc, todo).await
    }

    /// `todo` one node at a time, the leader / controller last (re-read before each node).
    async fn one_at_a_time(
        &self,
        plans: &mut [HostPlan],
        svc: Service,
        todo: Vec<usize>,
    ) -> Result<Vec<NodeRoll>> {
        let first_leader = gates::leader_host(self.inv, plans, svc).await;
        // Only a leader among these hosts is kept for last (`--limit`, one rack of --by-rack).
        let among = first_leader
            .as_ref()
            .filter(|l| todo.iter().any(|&i| plans[i].host.name == **l));
        let last = match (among, svc) {
            (_, Service::Nisshi) => ", (stateless brokers: no leader to keep for last)".to_string(),
            (Some(l), Service::ZooKeeper) => format!(", {l} (leader) last"),
            (Some(l), _) => format!(", {l} (controller) last"),
            (None, _) if first_leader.is_none() => ", the leader last".to_string(),
            (None, _) => String::new(),
        };
        self.rep.line(&format!(
            "  restarting {svc} on {} host(s), one at a time{last}",
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
            done.push(self.roll_node(plans, svc, i, role).await?);
        }
        Ok(done)
    }

    /// One node: wait until it may go, write what is staged for it, restart, wait until back.
    async fn roll_node(
        &self,
        plans: &mut [HostPlan],
        svc: Service,
        i: usize,
        role: &str,
    ) -> Result<NodeRoll> {
        let next_name = plans[i].host.name.clone();
        self.rep
            .host_busy(&next_name, &format!("waiting until {svc} may restart"));
        self.wait_can_roll(plans, svc, i).await?;
        self.rep.host_busy(&next_name, &format!("restarting {svc}"));
        let s = &self.sessions[&next_name];
        let (wrote, r) = self.restart_one(&mut plans[i], svc).await?;
        self.rep
            .host_busy(&next_name, &format!("{svc}: waiting until back in sync"));
        let def = crate::render::ServiceDef::new(svc, self.inv, &plans[i].host);
        let catch_up = tokio::select! {
            r = self.wait_ready(plans, svc, i) => r,
            dead = actions::process_gone(s, &def, &next_name) => Err(dead),
        }
        .with_context(|| {
            format!("after restarting {svc} on {next_name}: it did not come back; stopping here")
        })?;
        let message = roll_message(svc, &r, role, catch_up, &wrote);
        self.rep.host_done(&next_name, &message);
        Ok(NodeRoll {
            host: next_name,
            service: svc,
            message,
            stop: r.stop,
            start: r.start,
            catch_up,
        })
    }

    /// Apply's changes for this host go live (just before its restart), then the restart.
    async fn restart_one(
        &self,
        p: &mut HostPlan,
        svc: Service,
    ) -> Result<(Vec<String>, actions::Restarted)> {
        let name = p.host.name.clone();
        let s = &self.sessions[&name];
        let staged =
            p.take(|c| c.when == When::WithRestart(svc) && !matches!(c.change, Change::Restart(_)));
        if !staged.is_empty() {
            actions::owe_restart(s, &ServiceDef::new(svc, self.inv, &p.host))
                .await
                .with_context(|| format!("{name}: marking {svc}'s restart as owed"))?;
        }
        let wrote = actions::go_live(p, s, staged)
            .await
            .with_context(|| format!("{name}: writing {svc}'s new files"))?;
        let r = actions::restart(self.inv, p, s, svc, self.opts.sigkill_after)
            .await
            .with_context(|| format!("{name}: restarting {svc}"))?;
        Ok((wrote, r))
    }

    /// `restart --rolling --by-rack`: KRaft controllers one at a time (the quorum keeps its
    /// majority), then the brokers rack by rack, the controller's rack last: a rack's brokers
    /// stop and start together once every partition keeps min.insync.replicas in-sync
    /// replicas outside it (roller::can_roll_rack), and all are back in sync before the next
    /// rack. A rack where the placement of some partition never allows that rolls one broker
    /// at a time, saying why; so do brokers without a rack.
    async fn roll_by_rack(
        &self,
        plans: &mut [HostPlan],
        todo: Vec<usize>,
    ) -> Result<Vec<NodeRoll>> {
        let svc = Service::Kafka;
        let (controllers, brokers): (Vec<usize>, Vec<usize>) =
            todo.into_iter().partition(|&i| plans[i].host.in_controller);
        let mut done = Vec::new();
        if !controllers.is_empty() {
            self.rep.line(
                "  --by-rack: KRaft controllers roll one at a time (the quorum keeps its \
                 majority), then the brokers by rack",
            );
            done.extend(self.one_at_a_time(plans, svc, controllers).await?);
        }
        if brokers.is_empty() {
            return Ok(done);
        }
        let mut left = brokers;
        let mut said = false;
        while !left.is_empty() {
            // The controller is re-read before each rack, so its rack stays last.
            let leader = gates::leader_host(self.inv, plans, svc).await;
            let named: Vec<(&str, Option<&str>)> = left
                .iter()
                .map(|&i| (plans[i].host.name.as_str(), plans[i].host.rack.as_deref()))
                .collect();
            let Some(racks) = roller::racks_in_order(&named, leader.as_deref()) else {
                self.rep.line(
                    "  --by-rack: not every broker has a rack (hosts.<name>.rack): one broker \
                     at a time",
                );
                done.extend(self.one_at_a_time(plans, svc, left).await?);
                return Ok(done);
            };
            if !said {
                let order: Vec<String> = racks
                    .iter()
                    .map(|(r, hosts)| format!("{r} ({})", hosts.join(", ")))
                    .collect();
                self.rep.line(&format!(
                    "  restarting kafka by rack: {}{}",
                    order.join(", then "),
                    leader
                        .as_ref()
                        .filter(|l| named.iter().any(|(h, _)| h == *l))
                        .map_or(String::new(), |l| format!(
                            "; the rack of {l} (controller) last"
                        ))
                ));
                said = true;
            }
            let (rack, hosts) = (racks[0].0.to_string(), racks[0].1.clone());
            let group: Vec<usize> = hosts
                .iter()
                .map(|h| *left.iter().find(|&&i| plans[i].host.name == *h).unwrap())
                .collect();
            left.retain(|i| !group.contains(i));
            let ids: Vec<i32> = group
                .iter()
                .filter_map(|&i| plans[i].broker_id.map(|id| id as i32))
                .collect();
            if let [only] = group[..] {
                let role = if leader.as_deref() == Some(plans[only].host.name.as_str()) {
                    " (controller)"
                } else {
                    ""
                };
                let role = format!("{role} (rack {rack}, alone in it)");
                done.push(self.roll_node(plans, svc, only, &role).await?);
                continue;
            }
            {
                let view = self.kafka_view(plans).await?;
                let never = roller::rack_placement_blockers(&view, &ids, self.opts.policy);
                if never.is_empty() {
                    done.extend(self.roll_rack(plans, &rack, &group, &ids).await?);
                    continue;
                }
                self.rep.line(&format!(
                    "  --by-rack: rack {rack} ({}) rolls one broker at a time: its brokers cannot \
                     go down together: {}",
                    hosts.join(", "),
                    short(&never)
                ));
            }
            done.extend(self.one_at_a_time(plans, svc, group).await?);
        }
        Ok(done)
    }

    /// One rack's brokers together: wait until the other racks keep every partition at
    /// min.insync.replicas, stop and start them all, wait until all are back in sync.
    async fn roll_rack(
        &self,
        plans: &mut [HostPlan],
        rack: &str,
        group: &[usize],
        ids: &[i32],
    ) -> Result<Vec<NodeRoll>> {
        let svc = Service::Kafka;
        let names: Vec<String> = group.iter().map(|&i| plans[i].host.name.clone()).collect();
        for n in &names {
            self.rep
                .host_busy(n, &format!("waiting until rack {rack} may restart"));
        }
        {
            let shared: &[HostPlan] = plans;
            self.poll(
                &format!("rack {rack} ({}) may restart together", names.join(", ")),
                || async move {
                    let v = self
                        .kafka_view(shared)
                        .await
                        .map_err(|e| format!("{e:#}"))?;
                    roller::can_roll_rack(&v, ids, self.opts.policy).map_err(|w| w.join("; "))
                },
            )
            .await?;
        }
        for n in &names {
            self.rep
                .host_busy(n, &format!("restarting kafka (rack {rack}, together)"));
        }
        // Every restart runs to its end, failed or not: none is dropped half-way.
        let restarts = plans
            .iter_mut()
            .enumerate()
            .filter(|(i, _)| group.contains(i))
            .map(|(_, p)| async move { self.restart_one(p, svc).await });
        let mut restarted = Vec::new();
        for r in futures::future::join_all(restarts).await {
            restarted.push(r?);
        }
        for n in &names {
            self.rep
                .host_busy(n, "kafka: waiting until the rack is back in sync");
        }
        let shared: &[HostPlan] = plans;
        let waits = group
            .iter()
            .map(|&i| async move { self.wait_ready(shared, svc, i).await });
        let watches: Vec<_> = group
            .iter()
            .map(|&i| {
                let def = crate::render::ServiceDef::new(svc, self.inv, &shared[i].host);
                let name = shared[i].host.name.clone();
                let s = &self.sessions[&name];
                Box::pin(async move { actions::process_gone(s, &def, &name).await })
            })
            .collect();
        let catch_ups = tokio::select! {
            r = futures::future::try_join_all(waits) => r,
            dead = futures::future::select_all(watches) => Err(dead.0),
        }
        .with_context(|| {
            format!(
                "after restarting kafka on rack {rack} ({}): not all came back; stopping here",
                names.join(", ")
            )
        })?;
        let mut done = Vec::new();
        for (k, ((wrote, r), catch_up)) in restarted.into_iter().zip(catch_ups).enumerate() {
            let others: Vec<&str> = names
                .iter()
                .filter(|n| **n != names[k])
                .map(String::as_str)
                .collect();
            let role = format!(" (rack {rack}, together with {})", others.join(", "));
            let message = roll_message(svc, &r, &role, catch_up, &wrote);
            self.rep.host_done(&names[k], &message);
            done.push(NodeRoll {
                host: names[k].clone(),
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
    pub async fn kafka_view(&self, plans: &[HostPlan]) -> Result<KafkaView> {
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

/// One node's line: its restart, role, the parts' times and what went live with it.
fn roll_message(
    svc: Service,
    r: &actions::Restarted,
    role: &str,
    catch_up: Duration,
    wrote: &[String],
) -> String {
    format!(
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
    )
}

fn short(v: &[String]) -> String {
    if v.len() <= 5 {
        v.join("; ")
    } else {
        format!("{} and {} more", v[..5].join("; "), v.len() - 5)
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
