//! The reassignment plan behind `clusterctl rebalance` and `clusterctl drain`: a pure function
//! of the cluster's metadata, the reassignments already under way and the brokers to empty.
//!
//! It moves as few replicas as it can: first every replica off a broker being drained, then
//! one replica at a time from the fullest broker to the emptiest until their counts differ by
//! at most one. Leaders are balanced without moving data, by reordering replica lists so each
//! broker comes first (the preferred leader) about equally often. A move never lowers the
//! number of racks a partition spans when brokers report racks.

use crate::health::kafka::ClusterMetadata;
use std::collections::{BTreeMap, BTreeSet};

/// (topic, partition).
pub type Tp = (String, i32);

/// One partition whose replica list changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Move {
    pub topic: String,
    pub partition: i32,
    pub from: Vec<i32>,
    pub to: Vec<i32>,
}

impl Move {
    /// Brokers that get a copy of the data (empty: only the preferred leader changes).
    pub fn adding(&self) -> Vec<i32> {
        self.to
            .iter()
            .copied()
            .filter(|b| !self.from.contains(b))
            .collect()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Plan {
    pub moves: Vec<Move>,
    /// Replicas per broker and preferred leaders per broker once the plan is done.
    pub replicas: BTreeMap<i32, usize>,
    pub leaders: BTreeMap<i32, usize>,
}

impl Plan {
    /// How many replicas get copied to a new broker.
    pub fn copies(&self) -> usize {
        self.moves.iter().map(|m| m.adding().len()).sum()
    }
}

/// Before planning: a cluster that is already short of replicas is not shuffled further.
/// Partitions under way (`ongoing`) may lag: their new replicas are still catching up.
pub fn gate(meta: &ClusterMetadata, ongoing: &BTreeMap<Tp, Vec<i32>>) -> Result<(), String> {
    let offline = meta.offline();
    if !offline.is_empty() {
        return Err(format!(
            "{} partition(s) have no live leader: {}; bring their brokers back first",
            offline.len(),
            names(&offline)
        ));
    }
    let lagging: Vec<Tp> = meta
        .under_replicated()
        .into_iter()
        .filter(|tp| !ongoing.contains_key(tp))
        .collect();
    if !lagging.is_empty() {
        return Err(format!(
            "{} partition(s) are under-replicated: {}; moving replicas now would lean on the \
             few in sync (wait for the ISR to be whole)",
            lagging.len(),
            names(&lagging)
        ));
    }
    Ok(())
}

fn names(tps: &[Tp]) -> String {
    let mut v: Vec<String> = tps
        .iter()
        .take(5)
        .map(|(t, p)| format!("{t}-{p}"))
        .collect();
    if tps.len() > 5 {
        v.push(format!("and {} more", tps.len() - 5));
    }
    v.join(", ")
}

/// The plan. `ongoing`: partitions being reassigned now, with their target replicas; they are
/// left to finish and counted at their target. `drain`: brokers to empty.
pub fn plan(
    meta: &ClusterMetadata,
    ongoing: &BTreeMap<Tp, Vec<i32>>,
    drain: &[i32],
) -> Result<Plan, String> {
    let targets: BTreeSet<i32> = meta
        .brokers
        .iter()
        .map(|b| b.id)
        .filter(|b| !drain.contains(b))
        .collect();
    let racks: BTreeMap<i32, String> = meta
        .brokers
        .iter()
        .filter_map(|b| Some((b.id, b.rack.clone()?)))
        .collect();
    // Racks count only when every broker that may hold a replica has one, as in Kafka's own
    // rack-aware placement.
    let racks = if targets.iter().all(|b| racks.contains_key(b)) {
        racks
    } else {
        BTreeMap::new()
    };
    let mut state: BTreeMap<Tp, Vec<i32>> = BTreeMap::new();
    let mut fixed: BTreeSet<Tp> = BTreeSet::new();
    for t in &meta.topics {
        for p in &t.partitions {
            let tp = (t.name.clone(), p.id);
            match ongoing.get(&tp) {
                Some(to) => {
                    state.insert(tp.clone(), to.clone());
                    fixed.insert(tp);
                }
                None => {
                    state.insert(tp, p.replicas.clone());
                }
            }
        }
    }
    for (tp, to) in &state {
        if fixed.contains(tp) {
            continue;
        }
        if to.len() > targets.len() {
            return Err(format!(
                "{}-{} has {} replicas but only {} broker(s) would remain ({:?})",
                tp.0,
                tp.1,
                to.len(),
                targets.len(),
                targets
            ));
        }
    }
    let spread = |rs: &[i32]| -> usize {
        if racks.is_empty() {
            return rs.len();
        }
        rs.iter()
            .filter_map(|b| racks.get(b))
            .collect::<BTreeSet<_>>()
            .len()
    };
    let mut count = counts(&state, &targets);

    // 1. Empty the drained brokers (and any broker no longer alive in metadata that a
    //    partition still names is left alone: only `drain` is moved off).
    for (tp, rs) in state.iter_mut() {
        if fixed.contains(tp) {
            continue;
        }
        for i in 0..rs.len() {
            if !drain.contains(&rs[i]) {
                continue;
            }
            let best = targets
                .iter()
                .copied()
                .filter(|b| !rs.contains(b))
                .max_by_key(|&b| {
                    let mut next = rs.clone();
                    next[i] = b;
                    // More racks first, then the emptiest broker, then the lowest id.
                    (
                        spread(&next),
                        std::cmp::Reverse(count[&b]),
                        std::cmp::Reverse(b),
                    )
                })
                .ok_or_else(|| format!("{}-{}: no broker left to take its replica", tp.0, tp.1))?;
            rs[i] = best;
            *count.get_mut(&best).unwrap() += 1;
        }
    }

    // 2. Even the replica counts: fullest to emptiest, one replica at a time. Each move
    //    lowers the spread between them, so this ends; the bound is a guard.
    for _ in 0..state.len() * 4 + 16 {
        let Some(mv) = best_move(&state, &fixed, &count, &spread) else {
            break;
        };
        let (tp, i, to) = mv;
        let rs = state.get_mut(&tp).unwrap();
        *count.get_mut(&rs[i]).unwrap() -= 1;
        rs[i] = to;
        *count.get_mut(&to).unwrap() += 1;
    }

    // 3. Even the preferred leaders by reordering replica lists (no data moves).
    let mut leads = leaders(&state, &targets);
    for _ in 0..state.len() * 4 + 16 {
        let (Some((&most, &hi)), Some((&least, &lo))) = (
            leads
                .iter()
                .max_by_key(|(b, n)| (**n, std::cmp::Reverse(**b))),
            leads.iter().min_by_key(|(b, n)| (**n, **b)),
        ) else {
            break;
        };
        if hi <= lo + 1 {
            break;
        }
        let swap = state
            .iter()
            .find(|(tp, rs)| {
                !fixed.contains(*tp) && rs.first() == Some(&most) && rs.contains(&least)
            })
            .map(|(tp, _)| tp.clone());
        let Some(tp) = swap else { break };
        let rs = state.get_mut(&tp).unwrap();
        let j = rs.iter().position(|&b| b == least).unwrap();
        rs.swap(0, j);
        *leads.get_mut(&most).unwrap() -= 1;
        *leads.get_mut(&least).unwrap() += 1;
    }

    let mut moves = Vec::new();
    for t in &meta.topics {
        for p in &t.partitions {
            let tp = (t.name.clone(), p.id);
            if fixed.contains(&tp) {
                continue;
            }
            let to = &state[&tp];
            if *to != p.replicas {
                moves.push(Move {
                    topic: t.name.clone(),
                    partition: p.id,
                    from: p.replicas.clone(),
                    to: to.clone(),
                });
            }
        }
    }
    moves.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
    Ok(Plan {
        moves,
        replicas: counts(&state, &targets),
        leaders: leaders(&state, &targets),
    })
}

/// Replicas per target broker (brokers outside `targets` are not counted).
fn counts(state: &BTreeMap<Tp, Vec<i32>>, targets: &BTreeSet<i32>) -> BTreeMap<i32, usize> {
    let mut c: BTreeMap<i32, usize> = targets.iter().map(|&b| (b, 0)).collect();
    for b in state.values().flatten() {
        if let Some(n) = c.get_mut(b) {
            *n += 1;
        }
    }
    c
}

fn leaders(state: &BTreeMap<Tp, Vec<i32>>, targets: &BTreeSet<i32>) -> BTreeMap<i32, usize> {
    let mut c: BTreeMap<i32, usize> = targets.iter().map(|&b| (b, 0)).collect();
    for rs in state.values() {
        if let Some(n) = rs.first().and_then(|b| c.get_mut(b)) {
            *n += 1;
        }
    }
    c
}

/// A replica to move from the fullest broker to the emptiest one that may take it, when their
/// counts differ by more than one: (partition, position, new broker).
fn best_move(
    state: &BTreeMap<Tp, Vec<i32>>,
    fixed: &BTreeSet<Tp>,
    count: &BTreeMap<i32, usize>,
    spread: &dyn Fn(&[i32]) -> usize,
) -> Option<(Tp, usize, i32)> {
    let mut by_count: Vec<(usize, i32)> = count.iter().map(|(&b, &n)| (n, b)).collect();
    by_count.sort();
    // Fullest first; for each, the emptiest receiver that a partition of it allows.
    for &(hi, from) in by_count.iter().rev() {
        for &(lo, to) in &by_count {
            if hi <= lo + 1 {
                break;
            }
            for (tp, rs) in state {
                if fixed.contains(tp) || rs.contains(&to) {
                    continue;
                }
                let Some(i) = rs.iter().position(|&b| b == from) else {
                    continue;
                };
                let mut next = rs.clone();
                next[i] = to;
                if spread(&next) >= spread(rs) {
                    return Some((tp.clone(), i, to));
                }
            }
        }
    }
    None
}

/// The throttled-replica lists for one topic's moves, as the topic configs
/// `leader.replication.throttled.replicas` (the replicas that serve the copy: the current
/// ones) and `follower.replication.throttled.replicas` (the ones being added), in Kafka's
/// `partition:broker,...` form; the same lists kafka-reassign-partitions sets.
pub fn throttled_replicas<'a>(
    moves: impl IntoIterator<Item = (i32, &'a [i32], &'a [i32])>,
) -> (String, String) {
    let mut leader = BTreeSet::new();
    let mut follower = BTreeSet::new();
    for (p, from, to) in moves {
        for &b in from {
            leader.insert((p, b));
        }
        for &b in to.iter().filter(|b| !from.contains(b)) {
            follower.insert((p, b));
        }
    }
    let join = |s: BTreeSet<(i32, i32)>| {
        s.into_iter()
            .map(|(p, b)| format!("{p}:{b}"))
            .collect::<Vec<_>>()
            .join(",")
    };
    (join(leader), join(follower))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::kafka::fixtures::{broker, partition};
    use crate::health::kafka::{BrokerInfo, TopicInfo};

    fn meta(brokers: Vec<BrokerInfo>, parts: &[&[i32]]) -> ClusterMetadata {
        ClusterMetadata {
            brokers,
            controller_id: 1,
            cluster_id: None,
            topics: vec![TopicInfo {
                name: "t".into(),
                error: None,
                partitions: parts
                    .iter()
                    .enumerate()
                    .map(|(i, rs)| partition(i as i32, rs[0], rs, rs))
                    .collect(),
            }],
        }
    }

    fn racked(id: i32, rack: &str) -> BrokerInfo {
        BrokerInfo {
            rack: Some(rack.into()),
            ..broker(id)
        }
    }

    /// The final replica lists: the moves applied to the metadata.
    fn after(m: &ClusterMetadata, p: &Plan) -> Vec<Vec<i32>> {
        let mut out: Vec<Vec<i32>> = m.topics[0]
            .partitions
            .iter()
            .map(|x| x.replicas.clone())
            .collect();
        for mv in &p.moves {
            out[mv.partition as usize] = mv.to.clone();
        }
        out
    }

    fn spread(c: &BTreeMap<i32, usize>) -> usize {
        c.values().max().unwrap() - c.values().min().unwrap()
    }

    /// 12 partitions RF 3 on brokers 1-3, balanced there.
    fn three_broker_parts() -> Vec<Vec<i32>> {
        (0..12)
            .map(|i| (0..3).map(|k| (i + k) % 3 + 1).collect())
            .collect()
    }

    #[test]
    fn a_new_empty_broker_gets_its_share_of_replicas_and_leaders() {
        let parts = three_broker_parts();
        let refs: Vec<&[i32]> = parts.iter().map(|v| v.as_slice()).collect();
        let m = meta((1..=4).map(broker).collect(), &refs);
        let p = plan(&m, &BTreeMap::new(), &[]).unwrap();
        assert_eq!(p.replicas, BTreeMap::from([(1, 9), (2, 9), (3, 9), (4, 9)]));
        assert_eq!(p.leaders, BTreeMap::from([(1, 3), (2, 3), (3, 3), (4, 3)]));
        // Fewest copies: broker 4 needs 9 replicas, and nothing else moves data.
        assert_eq!(p.copies(), 9);
        for rs in after(&m, &p) {
            let set: BTreeSet<_> = rs.iter().collect();
            assert_eq!(
                set.len(),
                3,
                "a partition keeps 3 distinct replicas: {rs:?}"
            );
        }
    }

    #[test]
    fn a_balanced_cluster_needs_no_move() {
        let parts = three_broker_parts();
        let refs: Vec<&[i32]> = parts.iter().map(|v| v.as_slice()).collect();
        let m = meta((1..=3).map(broker).collect(), &refs);
        let p = plan(&m, &BTreeMap::new(), &[]).unwrap();
        assert!(p.moves.is_empty(), "{:?}", p.moves);
    }

    #[test]
    fn uneven_brokers_are_evened_within_one() {
        // Broker 1 holds everything, 5 has nothing, 2-4 some.
        let m = meta(
            (1..=5).map(broker).collect(),
            &[
                &[1, 2],
                &[1, 3],
                &[1, 4],
                &[1, 2],
                &[1, 3],
                &[1, 2],
                &[1, 4],
            ],
        );
        let p = plan(&m, &BTreeMap::new(), &[]).unwrap();
        assert!(spread(&p.replicas) <= 1, "{:?}", p.replicas);
        assert!(spread(&p.leaders) <= 1, "{:?}", p.leaders);
        assert_eq!(p.replicas.values().sum::<usize>(), 14);
    }

    #[test]
    fn a_drained_broker_ends_empty_and_the_rest_stay_even() {
        let parts: Vec<Vec<i32>> = (0..12)
            .map(|i| (0..3).map(|k| (i + k) % 4 + 1).collect())
            .collect();
        let refs: Vec<&[i32]> = parts.iter().map(|v| v.as_slice()).collect();
        let m = meta((1..=4).map(broker).collect(), &refs);
        let p = plan(&m, &BTreeMap::new(), &[4]).unwrap();
        assert!(!p.replicas.contains_key(&4));
        for rs in after(&m, &p) {
            assert!(!rs.contains(&4), "{rs:?}");
            assert_eq!(rs.iter().collect::<BTreeSet<_>>().len(), 3);
        }
        assert_eq!(p.replicas, BTreeMap::from([(1, 12), (2, 12), (3, 12)]));
        assert!(spread(&p.leaders) <= 1, "{:?}", p.leaders);
        // Exactly the 9 replicas on broker 4 are copied elsewhere.
        assert_eq!(p.copies(), 9);
    }

    #[test]
    fn draining_below_the_replication_factor_is_refused() {
        let m = meta((1..=3).map(broker).collect(), &[&[1, 2, 3]]);
        let why = plan(&m, &BTreeMap::new(), &[3]).unwrap_err();
        assert!(
            why.contains("t-0 has 3 replicas but only 2 broker(s)"),
            "{why}"
        );
    }

    #[test]
    fn racks_stay_spread() {
        // Racks a: 1,2  b: 3,4  c: 5,6; partitions span the three racks.
        let brokers = vec![
            racked(1, "a"),
            racked(2, "a"),
            racked(3, "b"),
            racked(4, "b"),
            racked(5, "c"),
            racked(6, "c"),
        ];
        let m = meta(
            brokers,
            &[
                &[1, 3, 5],
                &[1, 3, 5],
                &[1, 3, 5],
                &[1, 3, 5],
                &[3, 5, 1],
                &[5, 1, 3],
            ],
        );
        let rack = |b: i32| ["a", "a", "b", "b", "c", "c"][b as usize - 1];
        let p = plan(&m, &BTreeMap::new(), &[]).unwrap();
        assert!(spread(&p.replicas) <= 1, "{:?}", p.replicas);
        for rs in after(&m, &p) {
            let rs_racks: BTreeSet<_> = rs.iter().map(|&b| rack(b)).collect();
            assert_eq!(rs_racks.len(), 3, "{rs:?} spans {rs_racks:?}");
        }
        // Draining rack a's broker 1 moves its replicas to 2, the other broker in rack a.
        let p = plan(&m, &BTreeMap::new(), &[1]).unwrap();
        for rs in after(&m, &p) {
            assert!(!rs.contains(&1));
            let rs_racks: BTreeSet<_> = rs.iter().map(|&b| rack(b)).collect();
            assert_eq!(rs_racks.len(), 3, "{rs:?} spans {rs_racks:?}");
        }
    }

    #[test]
    fn racks_are_ignored_unless_every_broker_has_one() {
        let brokers = vec![racked(1, "a"), racked(2, "a"), broker(3), broker(4)];
        let m = meta(brokers, &[&[1, 2], &[1, 2], &[1, 2], &[1, 2]]);
        let p = plan(&m, &BTreeMap::new(), &[]).unwrap();
        assert_eq!(p.replicas, BTreeMap::from([(1, 2), (2, 2), (3, 2), (4, 2)]));
    }

    #[test]
    fn partitions_already_moving_are_left_to_finish_and_counted_at_their_target() {
        let parts = three_broker_parts();
        let refs: Vec<&[i32]> = parts.iter().map(|v| v.as_slice()).collect();
        let mut m = meta((1..=4).map(broker).collect(), &refs);
        // t-0 is moving from [1,2,3] to [4,2,3]: broker 4 is being added, not yet in sync.
        let p0 = &mut m.topics[0].partitions[0];
        p0.replicas = vec![4, 2, 3, 1];
        p0.isr = vec![2, 3, 1];
        let ongoing = BTreeMap::from([(("t".to_string(), 0), vec![4, 2, 3])]);
        assert_eq!(gate(&m, &ongoing), Ok(()));
        let p = plan(&m, &ongoing, &[]).unwrap();
        assert!(p.moves.iter().all(|mv| mv.partition != 0), "{:?}", p.moves);
        assert_eq!(p.replicas, BTreeMap::from([(1, 9), (2, 9), (3, 9), (4, 9)]));
        // One replica fewer to copy than from scratch: t-0's is under way.
        assert_eq!(p.copies(), 8);
        // Without knowing it moves, the lagging partition blocks.
        let why = gate(&m, &BTreeMap::new()).unwrap_err();
        assert!(
            why.contains("1 partition(s) are under-replicated: t-0"),
            "{why}"
        );
    }

    #[test]
    fn an_offline_partition_blocks() {
        let mut m = meta((1..=3).map(broker).collect(), &[&[1, 2, 3]]);
        m.topics[0].partitions[0].leader = -1;
        let why = gate(&m, &BTreeMap::new()).unwrap_err();
        assert!(why.contains("no live leader: t-0"), "{why}");
    }

    #[test]
    fn throttled_replica_lists_name_sources_and_new_copies() {
        let (l, f) = throttled_replicas([
            (0, &[1, 2, 3][..], &[4, 2, 3][..]),
            (1, &[2, 3][..], &[3, 2][..]),
        ]);
        assert_eq!(l, "0:1,0:2,0:3,1:2,1:3");
        assert_eq!(f, "0:4");
    }
}
