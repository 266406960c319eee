//! Retired services: a ZooKeeper or Kafka that clusterctl installed on a host the inventory no
//! longer gives it is stopped and kept from starting at boot, one host at a time, under the
//! same rules as a roll (ops::roller decides). Nothing is deleted: data, logs, configs and
//! the init script stay, so putting the host back in its group brings the service back.

use super::change::Change;
use super::plan::HostPlan;
use super::{Summary, actions, gates};
use crate::health::{kafka, zookeeper};
use crate::inventory::Inventory;
use crate::ops::roller;
use crate::render::{Service, ServiceDef};
use crate::report::Reporter;
use crate::transport::Session;
use anyhow::{Context, Result, bail};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// How long the old ensemble may take to be whole before a member leaves it.
const SETTLE: Duration = Duration::from_secs(60);
const POLL: Duration = Duration::from_millis(500);

fn retiring(plans: &[HostPlan], svc: Service) -> impl Iterator<Item = &HostPlan> {
    plans
        .iter()
        .filter(move |p| p.changes.iter().any(|c| c.change == Change::Retire(svc)))
}

/// Before any host is touched: why a planned retirement may not happen (empty: it may).
/// Reads the cluster only when a broker is to retire.
pub async fn refusals(inv: &Inventory, plans: &[HostPlan]) -> Vec<String> {
    let mut why = Vec::new();
    let zk = retiring(plans, Service::ZooKeeper).count();
    // In KRaft mode nothing uses ZooKeeper any more: the whole old ensemble may go.
    if zk > 0
        && !inv.kafka.kraft
        && let Err(e) = roller::can_retire_zookeeper(inv.zookeeper_hosts().count(), zk)
    {
        why.push(e);
    }
    let brokers: Vec<&HostPlan> = retiring(plans, Service::Kafka).collect();
    if brokers.is_empty() {
        return why;
    }
    let metadata = gates::metadata(inv).await;
    let dynamic = dynamic_quorum(inv, plans);
    let controllers = brokers.iter().any(|p| is_controller(p));
    let quorum = if dynamic && controllers {
        Some(gates::quorum(inv).await)
    } else {
        None
    };
    for p in brokers {
        let r = &p.facts.retired[&Service::Kafka];
        let id = p.facts.broker_id.map(|i| i as i32);
        let drain = drain_cmd(inv, &p.host.name);
        let roles = r.roles.as_deref();
        let mut verdict = match (&metadata, id) {
            (Ok(m), _) => {
                roller::can_retire_broker(m.topics.as_slice(), id, roles, dynamic, &drain)
            }
            // A broker that never had an id holds nothing: only its roles matter.
            (Err(_), None) => roller::can_retire_broker(&[], None, roles, dynamic, &drain),
            (Err(e), Some(_)) => Err(format!(
                "cannot read the cluster's state to judge it: {e:#}"
            )),
        };
        // A voter of a dynamic quorum leaves it first, keeping a majority.
        if verdict.is_ok()
            && is_controller(p)
            && let (Some(q), Some(id)) = (&quorum, id)
        {
            verdict = match q {
                Ok(q) if q.voter(id).is_none() => Ok(()),
                Ok(q) => q.can_remove_voter(id, gates::FETCH_TIMEOUT_MS),
                Err(e) => Err(format!("cannot read the KRaft quorum to judge it: {e:#}")),
            };
        }
        if let Err(e) = verdict {
            why.push(format!("kafka on {} cannot retire: {e}", p.host.name));
        }
    }
    why
}

fn dynamic_quorum(inv: &Inventory, plans: &[HostPlan]) -> bool {
    let facts: Vec<_> = plans.iter().map(|p| p.facts.clone()).collect();
    super::quorum::dynamic(inv, &facts)
}

/// The retiring Kafka on `p`'s host last ran a KRaft controller.
fn is_controller(p: &HostPlan) -> bool {
    has_role(p, "controller")
}

fn has_role(p: &HostPlan, role: &str) -> bool {
    p.facts
        .retired
        .get(&Service::Kafka)
        .and_then(|r| r.roles.as_deref())
        .is_some_and(|r| r.split(',').any(|x| x.trim() == role))
}

/// For the dry run of `apply --delete-data`: what it deletes.
pub fn data_deletions(inv: &Inventory, plans: &[HostPlan]) -> Vec<String> {
    retiring(plans, Service::Kafka)
        .map(|p| {
            format!(
                "{}: --delete-data: once its broker has stopped, delete {}",
                p.host.name,
                inv.kafka_log_dirs(&p.host).join(" ")
            )
        })
        .collect()
}

/// `rm -rf` of a retired broker's log dirs. Only absolute paths below `/` (validated in the
/// inventory; checked again as the command is destructive).
fn delete_data_cmd(dirs: &[String]) -> Result<String> {
    for d in dirs {
        let parts = d.split('/').filter(|x| !x.is_empty() && *x != ".").count();
        if !d.starts_with('/') || parts == 0 || d.split('/').any(|x| x == "..") {
            bail!("refusing to delete {d:?}: not an absolute directory below /");
        }
    }
    Ok(format!("rm -rf -- {}", crate::quote::sh_words(dirs)))
}

/// The step: each host with `svc` to retire, one at a time, checked again just before its
/// stop (the cluster may have moved since the plan). `delete_data`: `apply --delete-data`.
#[allow(clippy::too_many_arguments)] // the runner's state, passed as every step gets it
pub async fn step(
    inv: &Inventory,
    plans: &mut [HostPlan],
    selected: &[usize],
    svc: Service,
    sessions: &BTreeMap<String, Session>,
    rep: &Reporter,
    summary: &mut Summary,
    delete_data: bool,
) -> Result<()> {
    let todo: Vec<usize> = selected
        .iter()
        .copied()
        .filter(|&i| {
            plans[i]
                .changes
                .iter()
                .any(|c| c.change == Change::Retire(svc))
        })
        .collect();
    for i in todo {
        let name = plans[i].host.name.clone();
        rep.host_busy(&name, &format!("retiring {svc}"));
        if plans[i].facts.retired[&svc].pid.is_some() {
            match svc {
                Service::ZooKeeper if !inv.kafka.kraft => {
                    wait_old_ensemble_whole(inv, plans, rep).await?
                }
                Service::ZooKeeper => {}
                _ => {
                    let m = gates::metadata(inv).await?;
                    let r = &plans[i].facts.retired[&svc];
                    let id = plans[i].facts.broker_id.map(|i| i as i32);
                    let drain = drain_cmd(inv, &name);
                    let dynamic = dynamic_quorum(inv, plans);
                    if let Err(e) = roller::can_retire_broker(
                        &m.topics,
                        id,
                        r.roles.as_deref(),
                        dynamic,
                        &drain,
                    ) {
                        bail!("{name}: refusing to retire kafka: {e}");
                    }
                }
            }
        }
        // A voter leaves a dynamic quorum before it stops on Kafka 4.0+ (pre-vote, KIP-996,
        // keeps a removed voter from disturbing the quorum); before, Kafka's guide stops it
        // first.
        let voter =
            (svc == Service::Kafka && is_controller(&plans[i]) && dynamic_quorum(inv, plans))
                .then(|| plans[i].facts.broker_id.map(|id| id as i32))
                .flatten();
        let first = crate::versions::parse(&inv.kafka.version) >= (4, 0, 0);
        let mut left = None;
        if let Some(id) = voter
            && first
        {
            left = super::voters::remove(inv, &plans[i], id, rep)
                .await
                .map_err(|e| e.context(format!("{name}: retiring {svc}")))?;
        }
        let s = &sessions[&name];
        let broker = !is_controller(&plans[i]) || has_role(&plans[i], "broker");
        let p = &mut plans[i];
        p.take(|c| c.change == Change::Retire(svc));
        let mut done = retire(inv, p, s, svc, broker, delete_data && svc == Service::Kafka)
            .await
            .map_err(|e| e.context(format!("{name}: retiring {svc}")))?;
        if let Some(id) = voter
            && !first
        {
            left = super::voters::remove(inv, &plans[i], id, rep)
                .await
                .map_err(|e| e.context(format!("{name}: retiring {svc}")))?;
        }
        if let Some(l) = left {
            done = if first {
                format!("{l}, then {done}")
            } else {
                format!("{done}, then {l}")
            };
        }
        rep.host_done(&name, &done);
        summary.changes.get_mut(&name).unwrap().push(done);
    }
    Ok(())
}

/// What empties the broker of `host`, spelled for this inventory.
fn drain_cmd(inv: &Inventory, host: &str) -> String {
    format!(
        "clusterctl drain {} {}",
        crate::quote::sh(&inv.file.display().to_string()),
        host
    )
}

/// The ensemble as it still runs (the members that stay plus the running ones leaving) has
/// one leader with every other member synced, so one leaving keeps a majority.
async fn wait_old_ensemble_whole(
    inv: &Inventory,
    plans: &[HostPlan],
    rep: &Reporter,
) -> Result<()> {
    let mut members = gates::zk_members(inv);
    for p in retiring(plans, Service::ZooKeeper)
        .filter(|p| p.facts.retired[&Service::ZooKeeper].pid.is_some())
    {
        members.push((
            p.host.name.clone(),
            format!("{}:{}", p.host.address, inv.zookeeper.client_port),
        ));
    }
    let start = Instant::now();
    let mut said = false;
    loop {
        let (_, v) = zookeeper::probe_ensemble(&members, gates::PROBE_TIMEOUT).await;
        if v.healthy {
            return Ok(());
        }
        if start.elapsed() >= SETTLE {
            bail!(
                "refusing to stop a ZooKeeper member that leaves: the ensemble it leaves is not whole \
                 (nothing was stopped):\n  {}",
                v.problems.join("\n  ")
            );
        }
        if !said {
            rep.line(&format!(
                "  waiting up to {} s for the ensemble to be whole: {}",
                SETTLE.as_secs(),
                v.problems.join("; ")
            ));
            said = true;
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Stop (gracefully, within the service's stop timeout) and disable at boot.
async fn retire(
    inv: &Inventory,
    p: &mut HostPlan,
    s: &Session,
    svc: Service,
    broker: bool,
    delete_data: bool,
) -> Result<String> {
    let r = p.facts.retired.get(&svc).cloned().unwrap_or_default();
    let done = stop_for_good(inv, p, s, svc, &r, broker, delete_data).await?;
    p.facts.retired.remove(&svc);
    Ok(done)
}

/// A migration's KRaft controller on `p`, taken away by a rollback: stopped, disabled at boot,
/// its metadata log deleted (a copy of ZooKeeper's metadata that would be stale by the time a
/// later migration started it again). Also for a controller already stopped or deleted.
pub async fn deprovision_controller(inv: &Inventory, p: &HostPlan, s: &Session) -> Result<String> {
    let r = crate::engine::facts::Retired {
        enabled: true,
        pid: p.facts.pids.get(&Service::Kafka).copied(),
        roles: Some("controller".into()),
    };
    stop_for_good(inv, p, s, Service::Kafka, &r, false, true).await
}

async fn stop_for_good(
    inv: &Inventory,
    p: &HostPlan,
    s: &Session,
    svc: Service,
    r: &crate::engine::facts::Retired,
    broker: bool,
    delete_data: bool,
) -> Result<String> {
    let def = ServiceDef::new(svc, inv, &p.host);
    let mut what = Vec::new();
    if r.pid.is_some() {
        let stop = actions::service_cmd(p, &def, "stop");
        let out = s
            .exec_timeout(&stop, Duration::from_secs(def.stop_timeout as u64 + 60))
            .await?;
        if !out.ok() {
            bail!(
                "`{stop}` failed (exit {}): {}; it is still running and was not killed",
                out.status,
                out.stderr.trim()
            );
        }
        what.push("stopped");
    }
    if r.enabled {
        s.exec_ok(&actions::disable_cmd(p, &def)).await?;
        what.push("disabled at boot");
    }
    // A stopped KRaft broker stays registered (fenced) until told otherwise.
    if svc == Service::Kafka
        && inv.kafka.kraft
        && broker
        && let Some(id) = p.facts.broker_id
    {
        let mut c = kafka::connect_any(&gates::bootstrap(inv), gates::PROBE_TIMEOUT).await?;
        c.unregister_broker(id as i32)
            .await
            .context("unregistering the broker")?;
        what.push("unregistered");
    }
    let data = if delete_data {
        let dirs = inv.kafka_log_dirs(&p.host);
        s.exec_ok(&delete_data_cmd(&dirs)?).await?;
        format!("data deleted: {}", dirs.join(" "))
    } else {
        "data kept".to_string()
    };
    Ok(format!("retired {svc} ({}; {data})", what.join(", ")))
}

#[cfg(test)]
mod tests {
    use super::delete_data_cmd;

    #[test]
    fn only_absolute_directories_below_root_are_deleted() {
        assert_eq!(
            delete_data_cmd(&["/var/lib/kafka/data".into(), "/d 2".into()]).unwrap(),
            "rm -rf -- /var/lib/kafka/data '/d 2'"
        );
        for bad in ["/", "//", "data", "/var/../", "/./"] {
            assert!(delete_data_cmd(&[bad.into()]).is_err(), "{bad}");
        }
    }
}
