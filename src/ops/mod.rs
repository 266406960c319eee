//! Day-2 operations over a running cluster: rolling restarts.

pub mod restart;
pub mod roller;

use crate::engine::{self, plan};
use crate::inventory::Inventory;
use crate::render::Service;
use crate::report::Reporter;
use crate::transport::HostKeyPolicy;
use anyhow::{Result, bail};
use restart::{NodeRoll, RollOptions, Roller};

/// `clusterctl restart --rolling`: every requested service on every (or each `limit`ed) host,
/// ZooKeeper before Kafka.
pub async fn restart_rolling(
    inv: &Inventory,
    services: &[Service],
    limit: Option<&[String]>,
    opts: RollOptions,
    rep: &Reporter,
) -> Result<Vec<NodeRoll>> {
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
    let sessions = engine::connect_all(inv, HostKeyPolicy::Strict).await?;
    let mut plans = plan::plan_all(inv, &sessions).await?;
    let roller = Roller {
        inv,
        sessions: &sessions,
        rep,
        opts,
    };
    let mut done = Vec::new();
    for svc in [Service::ZooKeeper, Service::Kafka] {
        if !services.contains(&svc) {
            continue;
        }
        let todo: Vec<usize> = plans
            .iter()
            .enumerate()
            .filter(|(_, p)| match svc {
                Service::ZooKeeper => p.host.in_zookeeper,
                Service::Kafka => p.host.runs_kafka(),
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
