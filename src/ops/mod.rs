//! Day-2 operations over a running cluster: rolling restarts.

pub mod migrate;
pub mod rebalance;
pub mod restart;
pub mod roller;

use crate::engine::{self, plan};
use crate::inventory::Inventory;
use crate::render::Service;
use crate::report::Reporter;
use crate::transport::HostKeyPolicy;
use anyhow::{Result, bail};
use restart::{NodeRoll, RollOptions, Roller};

/// What `restart --rolling --service` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    ZooKeeper,
    /// KRaft controllers only (dedicated and combined nodes).
    Controllers,
    /// Every host running Kafka: controllers first, then brokers.
    Kafka,
}

/// `clusterctl restart --rolling`: every requested target on every (or each `limit`ed) host,
/// ZooKeeper before Kafka.
pub async fn restart_rolling(
    inv: &Inventory,
    targets: &[Target],
    limit: Option<&[String]>,
    opts: RollOptions,
    rep: &Reporter,
) -> Result<Vec<NodeRoll>> {
    if targets.contains(&Target::Controllers) && !inv.kafka.kraft {
        bail!(
            "--service controller: this cluster runs in ZooKeeper mode and has no KRaft controllers"
        );
    }
    if let Some(l) = limit {
        for name in l {
            if inv.host(name).is_none() {
                bail!(
                    "--limit names `{name}`, which is not a host of {}",
                    inv.file.display()
                );
            }
        }
    }
    let nisshi = inv.flavor == crate::inventory::Flavor::Nisshi;
    if nisshi && !targets.contains(&Target::Kafka) {
        bail!("--service: a nisshi cluster runs only brokers (no ZooKeeper, no controllers)");
    }
    let sessions = engine::connect_all(inv, HostKeyPolicy::Strict).await?;
    let mut plans = plan::plan_all(inv, &sessions).await?;
    let roller = Roller::new(inv, &sessions, rep, opts);
    let mut done = Vec::new();
    for target in [Target::ZooKeeper, Target::Controllers, Target::Kafka] {
        if !targets.contains(&target) {
            continue;
        }
        let svc = match target {
            _ if nisshi => Service::Nisshi,
            Target::ZooKeeper => Service::ZooKeeper,
            Target::Controllers | Target::Kafka => Service::Kafka,
        };
        let todo: Vec<usize> = plans
            .iter()
            .enumerate()
            .filter(|(_, p)| match target {
                _ if nisshi => p.host.in_kafka && target == Target::Kafka,
                Target::ZooKeeper => p.host.in_zookeeper,
                Target::Controllers => p.host.in_controller,
                Target::Kafka => p.host.runs_kafka(),
            })
            .filter(|(_, p)| limit.is_none_or(|l| l.contains(&p.host.name)))
            .map(|(i, _)| i)
            .collect();
        if todo.is_empty() {
            continue;
        }
        rep.line(&format!("rolling restart of {svc}"));
        done.extend(roller.roll(&mut plans, svc, todo).await?);
    }
    for s in sessions.values() {
        s.close().await;
    }
    Ok(done)
}
