//! Changing a dynamic KRaft quorum's voters (KIP-853), one voter at a time: a new controller,
//! started as an observer, is added once it has caught up (the `voters` step); a controller
//! that leaves is removed before it stops (by the retire step). Each change is checked just
//! before it is made with the pure rules on [`QuorumInfo`], and waited for until the quorum
//! reports it.

use super::plan::HostPlan;
use super::{Summary, gates};
use crate::health::kafka::{self, QuorumInfo};
use crate::inventory::Inventory;
use crate::report::Reporter;
use anyhow::{Context, Result, bail};
use std::time::{Duration, Instant};

/// How long a new controller may take to catch up, and the quorum to report a change.
const CATCH_UP: Duration = Duration::from_secs(120);
const SETTLE: Duration = Duration::from_secs(60);
const POLL: Duration = Duration::from_millis(500);

/// The listener a voter is reached on (`controller.listener.names`).
const CONTROLLER_LISTENER: &str = "CONTROLLER";

fn voter_ids(q: &QuorumInfo) -> Vec<i32> {
    q.voters.iter().map(|v| v.id).collect()
}

/// Polls DescribeQuorum until `done` says the quorum is there (`Ok(true)`), a refusal comes
/// (`Err`), or `limit` passes; `Ok(false)` is "not yet", with `why` shown while waiting.
async fn poll_quorum(
    inv: &Inventory,
    rep: &Reporter,
    host: &str,
    what: &str,
    limit: Duration,
    mut done: impl FnMut(&QuorumInfo) -> std::result::Result<bool, String>,
) -> Result<QuorumInfo> {
    let start = Instant::now();
    let mut last = String::new();
    loop {
        let why = match gates::quorum(inv).await {
            Ok(q) => match done(&q) {
                Ok(true) => return Ok(q),
                Ok(false) => String::new(),
                Err(why) => why,
            },
            Err(e) => format!("{e:#}"),
        };
        if why != last && !why.is_empty() {
            rep.host_busy(host, &format!("{what}: {why}"));
            last = why;
        }
        if start.elapsed() >= limit {
            bail!("{what} not reached within {} s: {last}", limit.as_secs());
        }
        tokio::time::sleep(POLL).await;
    }
}

/// The `voters` step: each host with an `AddVoter` change, one at a time.
pub async fn add_step(
    inv: &Inventory,
    plans: &mut [HostPlan],
    selected: &[usize],
    rep: &Reporter,
    summary: &mut Summary,
) -> Result<()> {
    for &i in selected {
        let Some(id) = plans[i].changes.iter().find_map(|c| match c.change {
            super::change::Change::AddVoter { id } => Some(id as i32),
            _ => None,
        }) else {
            continue;
        };
        let name = plans[i].host.name.clone();
        let done = add(inv, &plans[i], id, rep)
            .await
            .with_context(|| format!("{name}: adding controller {id} to the KRaft quorum"))?;
        plans[i].take(|c| matches!(c.change, super::change::Change::AddVoter { .. }));
        rep.host_done(&name, &done);
        summary.changes.get_mut(&name).unwrap().push(done);
    }
    Ok(())
}

async fn add(inv: &Inventory, p: &HostPlan, id: i32, rep: &Reporter) -> Result<String> {
    let host = &p.host.name;
    let cluster_id = p
        .facts
        .cluster_id
        .clone()
        .context("the host is not formatted")?;
    let q = poll_quorum(
        inv,
        rep,
        host,
        "caught up to join the quorum",
        CATCH_UP,
        |q| {
            if q.voter(id).is_some() {
                return Ok(true);
            }
            q.can_add_voter(id, gates::FETCH_TIMEOUT_MS).map(|()| true)
        },
    )
    .await?;
    if q.voter(id).is_some() {
        return Ok(format!(
            "controller {id} votes already (voters: {:?})",
            voter_ids(&q)
        ));
    }
    let dir = q
        .observer(id)
        .and_then(|o| o.directory_id)
        .context("the quorum leader lost the new controller's directory id")?;
    let mut c = kafka::connect_any(&gates::bootstrap(inv), gates::PROBE_TIMEOUT).await?;
    c.add_raft_voter(
        &cluster_id,
        id,
        dir,
        CONTROLLER_LISTENER,
        &p.host.address,
        inv.kafka.controller_port,
    )
    .await?;
    let q = poll_quorum(inv, rep, host, "voting", SETTLE, |q| {
        Ok(q.voter(id).is_some())
    })
    .await?;
    Ok(format!(
        "added controller {id} to the KRaft quorum (AddRaftVoter; voters now {:?})",
        voter_ids(&q)
    ))
}

/// Removes voter `id` (the controller on `p`'s host, which is leaving) from the quorum, if it
/// is one: checked again with the rule first, then waited for. `Ok(None)`: it was no voter.
pub async fn remove(
    inv: &Inventory,
    p: &HostPlan,
    id: i32,
    rep: &Reporter,
) -> Result<Option<String>> {
    let host = &p.host.name;
    let q = gates::quorum(inv).await?;
    let Some(v) = q.voter(id) else {
        return Ok(None);
    };
    if let Err(why) = q.can_remove_voter(id, gates::FETCH_TIMEOUT_MS) {
        bail!("refusing to remove controller {id} from the KRaft quorum: {why}");
    }
    let dir = v
        .directory_id
        .context("the quorum leader does not report the voter's directory id")?;
    let cluster_id = p
        .facts
        .cluster_id
        .clone()
        .context("the host is not formatted")?;
    let mut c = kafka::connect_any(&gates::bootstrap(inv), gates::PROBE_TIMEOUT).await?;
    c.remove_raft_voter(&cluster_id, id, dir).await?;
    let q = poll_quorum(inv, rep, host, "leaving the voters", SETTLE, |q| {
        Ok(q.voter(id).is_none() && q.leader_id >= 0)
    })
    .await?;
    Ok(Some(format!(
        "removed from the KRaft quorum (RemoveRaftVoter; voters now {:?})",
        voter_ids(&q)
    )))
}
