//! The rolling-restart decisions, as pure functions over a snapshot of cluster state, so every
//! rule is unit-tested on fabricated states. Orchestration (src/ops/restart.rs) only asks.
//!
//! Rules (after Strimzi's KafkaAvailability, made stricter by default):
//! - pre-flight: every broker registered, 0 offline partitions, 0 under-min-ISR, and (strict)
//!   0 under-replicated; the ZooKeeper ensemble healthy;
//! - a broker may go down only if no partition it is in sync for would fall below its
//!   min.insync.replicas; a partition whose replication factor is at or below min ISR can never
//!   keep producing with acks=all while one replica is down, so it blocks unless the operator
//!   opts in;
//! - order: ZooKeeper followers, then the leader; brokers with the controller last.

use crate::health::kafka::{ClusterMetadata, TopicInfo};
use std::collections::BTreeMap;

/// What the roller knows about Kafka at one instant.
#[derive(Debug, Clone)]
pub struct KafkaView {
    pub metadata: ClusterMetadata,
    /// Broker ids that must be registered.
    pub expected: Vec<i32>,
    /// Effective min.insync.replicas per topic (cluster default where the topic sets none).
    pub min_isr: BTreeMap<String, usize>,
    pub default_min_isr: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Refuse to start while any partition is under-replicated (default), not only under min ISR.
    pub strict: bool,
    /// Accept that topics with replication factor <= min.insync.replicas stop taking acks=all
    /// writes while one of their replicas restarts.
    pub allow_unavailable_low_rf: bool,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            strict: true,
            allow_unavailable_low_rf: false,
        }
    }
}

impl KafkaView {
    fn min_isr_of(&self, topic: &str) -> usize {
        self.min_isr
            .get(topic)
            .copied()
            .unwrap_or(self.default_min_isr)
    }

    /// Every (topic, partition, replicas, isr, leader) with its min ISR.
    fn partitions(&self) -> impl Iterator<Item = (&str, i32, &[i32], &[i32], i32, usize)> {
        self.metadata.topics.iter().flat_map(move |t| {
            t.partitions.iter().map(move |p| {
                (
                    t.name.as_str(),
                    p.id,
                    p.replicas.as_slice(),
                    p.isr.as_slice(),
                    p.leader,
                    self.min_isr_of(&t.name),
                )
            })
        })
    }
}

/// Reasons the whole roll must not start. Empty means go.
pub fn kafka_preflight(v: &KafkaView, policy: Policy) -> Vec<String> {
    let mut blockers = Vec::new();
    let live: Vec<i32> = v.metadata.brokers.iter().map(|b| b.id).collect();
    let missing: Vec<String> = v
        .expected
        .iter()
        .filter(|id| !live.contains(id))
        .map(|id| id.to_string())
        .collect();
    if !missing.is_empty() {
        blockers.push(format!("brokers not registered: {}", missing.join(", ")));
    }
    let mut offline = Vec::new();
    let mut under_min = Vec::new();
    let mut under_rep = Vec::new();
    for (topic, id, replicas, isr, leader, min_isr) in v.partitions() {
        let name = format!("{topic}-{id}");
        if leader < 0 || !live.contains(&leader) {
            offline.push(name);
        } else if isr.len() < min_isr.min(replicas.len()) {
            under_min.push(format!(
                "{name} (ISR {isr:?} < min.insync.replicas {min_isr})"
            ));
        } else if isr.len() < replicas.len() {
            under_rep.push(format!("{name} (replicas {replicas:?}, ISR {isr:?})"));
        }
    }
    if !offline.is_empty() {
        blockers.push(format!("offline partitions: {}", short(&offline)));
    }
    if !under_min.is_empty() {
        blockers.push(format!("under-min-ISR partitions: {}", short(&under_min)));
    }
    if policy.strict && !under_rep.is_empty() {
        blockers.push(format!(
            "under-replicated partitions: {}",
            short(&under_rep)
        ));
    }
    blockers
}

/// What would stop a roll of `restarting` (broker ids) that waiting cannot clear, so apply
/// refuses before it touches a host instead of waiting out every node's timeout:
/// - a partition on a restarting broker whose replication factor is at or below its
///   min.insync.replicas (acks=all writes stop while that broker is down);
/// - a replica on a broker that is neither registered nor in the inventory (it never catches up).
pub fn lasting_blockers(v: &KafkaView, restarting: &[i32], policy: Policy) -> Vec<String> {
    let live: Vec<i32> = v.metadata.brokers.iter().map(|b| b.id).collect();
    let mut low_rf = Vec::new();
    let mut stranded = Vec::new();
    for (topic, id, replicas, _, _, min_isr) in v.partitions() {
        let name = format!("{topic}-{id}");
        let on: Vec<i32> = replicas
            .iter()
            .copied()
            .filter(|r| restarting.contains(r))
            .collect();
        if !policy.allow_unavailable_low_rf && !on.is_empty() && replicas.len() <= min_isr {
            low_rf.push(format!(
                "{name}: replication factor {} <= min.insync.replicas {min_isr}: acks=all writes \
                 stop while broker {} restarts (raise its replication factor or lower its \
                 min.insync.replicas)",
                replicas.len(),
                on[0]
            ));
        }
        let gone: Vec<i32> = replicas
            .iter()
            .copied()
            .filter(|r| !live.contains(r) && !v.expected.contains(r))
            .collect();
        if !gone.is_empty() {
            stranded.push(format!(
                "{name}: replica on broker {gone:?}, which is neither registered nor in the inventory \
                 (it will not catch up: move the replica with kafka-reassign-partitions)"
            ));
        }
    }
    low_rf.extend(stranded);
    low_rf
}

/// May `broker` go down now? `Err` lists the partitions that forbid it.
pub fn can_roll_broker(v: &KafkaView, broker: i32, policy: Policy) -> Result<(), Vec<String>> {
    let mut why = Vec::new();
    for (topic, id, replicas, isr, _, min_isr) in v.partitions() {
        if !replicas.contains(&broker) {
            continue;
        }
        let name = format!("{topic}-{id}");
        if replicas.len() <= min_isr {
            if !policy.allow_unavailable_low_rf {
                why.push(format!(
                    "{name}: replication factor {} <= min.insync.replicas {min_isr}: acks=all writes stop while broker {broker} restarts (opt in with --allow-unavailable-topics)",
                    replicas.len()
                ));
            }
            continue;
        }
        let in_sync = isr.contains(&broker);
        let remaining = isr.len() - usize::from(in_sync);
        if remaining < min_isr {
            why.push(format!(
                "{name}: ISR {isr:?} would fall below min.insync.replicas {min_isr} without broker {broker}"
            ));
        }
    }
    if why.is_empty() { Ok(()) } else { Err(why) }
}

/// May the brokers `rack` (ids: one rack's brokers) go down together? Every partition with a
/// replica among them must keep at least its min.insync.replicas in-sync replicas on brokers
/// outside them, so acks=all writes go on and a leader can be elected from the ISR. A
/// partition whose replication factor is at or below min ISR blocks as for one broker.
/// `Err` lists the partitions that forbid it.
pub fn can_roll_rack(v: &KafkaView, rack: &[i32], policy: Policy) -> Result<(), Vec<String>> {
    let mut why = Vec::new();
    for (topic, id, replicas, isr, _, min_isr) in v.partitions() {
        let inside: Vec<i32> = replicas
            .iter()
            .copied()
            .filter(|r| rack.contains(r))
            .collect();
        if inside.is_empty() {
            continue;
        }
        let name = format!("{topic}-{id}");
        if replicas.len() <= min_isr {
            if !policy.allow_unavailable_low_rf {
                why.push(format!(
                    "{name}: replication factor {} <= min.insync.replicas {min_isr}: acks=all \
                     writes stop while broker {} restarts (opt in with --allow-unavailable-topics)",
                    replicas.len(),
                    inside[0]
                ));
            }
            continue;
        }
        let outside: Vec<i32> = isr.iter().copied().filter(|r| !rack.contains(r)).collect();
        if outside.len() < min_isr {
            why.push(format!(
                "{name}: {} of its in-sync replicas {isr:?} are outside brokers {rack:?}, below \
                 min.insync.replicas {min_isr}",
                outside.len()
            ));
        }
    }
    if why.is_empty() { Ok(()) } else { Err(why) }
}

/// What no waiting can change about rolling `rack` together: partitions with fewer than
/// min.insync.replicas replicas outside it (by placement, not by the ISR of the moment).
/// Such a rack rolls one broker at a time.
pub fn rack_placement_blockers(v: &KafkaView, rack: &[i32], policy: Policy) -> Vec<String> {
    let mut why = Vec::new();
    for (topic, id, replicas, _, _, min_isr) in v.partitions() {
        if !replicas.iter().any(|r| rack.contains(r)) {
            continue;
        }
        if replicas.len() <= min_isr && policy.allow_unavailable_low_rf {
            continue;
        }
        let outside = replicas.iter().filter(|r| !rack.contains(r)).count();
        if outside < min_isr {
            why.push(format!(
                "{topic}-{id}: {outside} of its replicas {replicas:?} are outside brokers \
                 {rack:?}, below min.insync.replicas {min_isr}"
            ));
        }
    }
    why
}

/// The racks of `brokers` (host name, rack), each with its hosts in the given order; the
/// rack holding `last` (the controller) at the end, the others by name. `None` when any
/// broker has no rack.
pub fn racks_in_order<'a>(
    brokers: &[(&'a str, Option<&'a str>)],
    last: Option<&str>,
) -> Option<Vec<(&'a str, Vec<&'a str>)>> {
    let mut racks: Vec<(&str, Vec<&str>)> = Vec::new();
    for (host, rack) in brokers {
        let rack = (*rack)?;
        match racks.iter_mut().find(|(r, _)| *r == rack) {
            Some((_, hosts)) => hosts.push(host),
            None => racks.push((rack, vec![host])),
        }
    }
    racks.sort_by_key(|(r, hosts)| (last.is_some_and(|l| hosts.contains(&l)), *r));
    Some(racks)
}

/// Back to normal after a restart: registered, and in the ISR of every partition it replicates.
pub fn broker_caught_up(v: &KafkaView, broker: i32) -> Result<(), String> {
    if v.metadata.broker(broker).is_none() {
        return Err(format!("broker {broker} is not registered yet"));
    }
    let behind: Vec<String> = v
        .partitions()
        .filter(|(_, _, replicas, isr, _, _)| replicas.contains(&broker) && !isr.contains(&broker))
        .map(|(t, p, ..)| format!("{t}-{p}"))
        .collect();
    if behind.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "broker {broker} not yet in sync for {}",
            short(&behind)
        ))
    }
}

/// Roll order for `members` (host names): the `last` one (ZooKeeper leader or controller broker)
/// at the end, the others in their given order.
pub fn order_last<'a>(members: &[&'a str], last: Option<&str>) -> Vec<&'a str> {
    let mut v: Vec<&str> = members.to_vec();
    v.sort_by_key(|m| Some(*m) == last);
    v
}

/// May this ZooKeeper member go down? The ensemble must be whole (one leader, every other
/// member synced) so a majority survives without it.
pub fn can_roll_zookeeper(
    healthy: bool,
    members: usize,
    synced_followers: Option<usize>,
) -> Result<(), String> {
    if !healthy {
        return Err("the ZooKeeper ensemble is not healthy".into());
    }
    if members > 1 && synced_followers != Some(members - 1) {
        return Err(format!(
            "the leader has {} synced follower(s), expected {}",
            synced_followers.map_or("unknown".into(), |n| n.to_string()),
            members - 1
        ));
    }
    Ok(())
}

/// May the broker of a host that left `groups.kafka` stop for good? Not while it holds a
/// replica (stopping it would leave those partitions under-replicated for ever), and not a
/// controller of a static KRaft quorum (its voters are fixed). A dynamic quorum's controller
/// leaves the voters first (`QuorumInfo::can_remove_voter` decides). `broker`: its id on
/// disk, if it was ever formatted; `roles`: its last `process.roles`; `dynamic`: the quorum is
/// dynamic; `drain`: the command that empties it.
pub fn can_retire_broker(
    topics: &[TopicInfo],
    broker: Option<i32>,
    roles: Option<&str>,
    dynamic: bool,
    drain: &str,
) -> Result<(), String> {
    if let Some(r) = roles.filter(|r| r.split(',').any(|x| x.trim() == "controller"))
        && !dynamic
    {
        return Err(format!(
            "it is a KRaft controller (process.roles={r}) of a static quorum \
             (controller.quorum.voters), whose voters cannot change; keep the host in \
             groups.controller"
        ));
    }
    let Some(id) = broker else { return Ok(()) };
    let held: Vec<String> = topics
        .iter()
        .flat_map(|t| {
            t.partitions
                .iter()
                .filter(|p| p.replicas.contains(&id))
                .map(move |p| format!("{}-{}", t.name, p.id))
        })
        .collect();
    if held.is_empty() {
        return Ok(());
    }
    Err(format!(
        "broker {id} still holds replicas of {} partition(s): {}; move them to the brokers that \
         stay with `{drain}`, then run apply again (its data is kept)",
        held.len(),
        short(&held)
    ))
}

/// May `retiring` ZooKeeper members leave an ensemble whose `remaining` members stay? The
/// remaining ones must be a majority of the old ensemble, or the last stop loses the quorum.
pub fn can_retire_zookeeper(remaining: usize, retiring: usize) -> Result<(), String> {
    if remaining > retiring {
        return Ok(());
    }
    Err(format!(
        "removing {retiring} of {} ZooKeeper members at once leaves {remaining}, not a majority \
         of the old ensemble: remove fewer members per apply",
        remaining + retiring
    ))
}

fn short(v: &[String]) -> String {
    if v.len() <= 10 {
        v.join(", ")
    } else {
        format!("{} and {} more", v[..10].join(", "), v.len() - 10)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::kafka::PartitionInfo;
    use crate::health::kafka::fixtures::{broker, partition as part};

    fn view(brokers: &[i32], topics: Vec<(&str, Vec<PartitionInfo>)>) -> KafkaView {
        KafkaView {
            metadata: ClusterMetadata {
                brokers: brokers.iter().map(|&i| broker(i)).collect(),
                controller_id: brokers.first().copied().unwrap_or(-1),
                cluster_id: None,
                topics: topics
                    .into_iter()
                    .map(|(n, p)| TopicInfo {
                        name: n.into(),
                        error: None,
                        partitions: p,
                    })
                    .collect(),
            },
            expected: vec![1, 2, 3],
            min_isr: BTreeMap::new(),
            default_min_isr: 2,
        }
    }

    fn healthy() -> KafkaView {
        view(
            &[1, 2, 3],
            vec![(
                "orders",
                vec![
                    part(0, 1, &[1, 2, 3], &[1, 2, 3]),
                    part(1, 2, &[2, 3, 1], &[2, 3, 1]),
                ],
            )],
        )
    }

    #[test]
    fn a_broker_leaves_only_empty_and_a_controller_only_a_dynamic_quorum() {
        let v = healthy();
        let why = can_retire_broker(
            &v.metadata.topics,
            Some(2),
            None,
            false,
            "clusterctl drain inv.yaml n2",
        )
        .unwrap_err();
        assert!(
            why.contains("broker 2 still holds replicas of 2 partition(s): orders-0, orders-1"),
            "{why}"
        );
        assert!(why.contains("with `clusterctl drain inv.yaml n2`"), "{why}");
        assert_eq!(
            can_retire_broker(&v.metadata.topics, Some(4), None, false, ""),
            Ok(())
        );
        // Never formatted: it cannot hold anything.
        assert_eq!(
            can_retire_broker(&v.metadata.topics, None, Some(""), false, ""),
            Ok(())
        );
        assert_eq!(
            can_retire_broker(&v.metadata.topics, Some(4), Some("broker"), false, ""),
            Ok(())
        );
        let why = can_retire_broker(
            &v.metadata.topics,
            Some(4),
            Some("broker,controller"),
            false,
            "",
        )
        .unwrap_err();
        assert!(
            why.contains("KRaft controller") && why.contains("static"),
            "{why}"
        );
        // A dynamic quorum's controller may go (once it has left the voters); a combined one
        // still only once it holds no replica.
        assert_eq!(
            can_retire_broker(&v.metadata.topics, Some(3001), Some("controller"), true, ""),
            Ok(())
        );
        let why = can_retire_broker(
            &v.metadata.topics,
            Some(2),
            Some("broker,controller"),
            true,
            "",
        )
        .unwrap_err();
        assert!(why.contains("still holds replicas"), "{why}");
    }

    #[test]
    fn zookeeper_members_leave_only_with_a_majority_staying() {
        assert_eq!(can_retire_zookeeper(2, 1), Ok(()));
        assert_eq!(can_retire_zookeeper(3, 2), Ok(()));
        let why = can_retire_zookeeper(1, 2).unwrap_err();
        assert!(why.contains("removing 2 of 3 ZooKeeper members"), "{why}");
        assert!(can_retire_zookeeper(2, 2).is_err());
    }

    #[test]
    fn healthy_cluster_rolls_every_broker() {
        let v = healthy();
        assert!(kafka_preflight(&v, Policy::default()).is_empty());
        for b in [1, 2, 3] {
            assert_eq!(can_roll_broker(&v, b, Policy::default()), Ok(()));
        }
    }

    #[test]
    fn offline_partition_blocks_preflight() {
        let v = view(
            &[1, 2, 3],
            vec![("orders", vec![part(0, -1, &[1, 2, 3], &[])])],
        );
        let b = kafka_preflight(&v, Policy::default());
        assert!(
            b.iter()
                .any(|m| m.starts_with("offline partitions: orders-0")),
            "{b:?}"
        );
    }

    #[test]
    fn stopped_broker_blocks_and_names_the_partitions() {
        let v = view(
            &[1, 3],
            vec![(
                "orders",
                vec![
                    part(0, 1, &[1, 2, 3], &[1, 3]),
                    part(1, 3, &[2, 3, 1], &[3, 1]),
                ],
            )],
        );
        let b = kafka_preflight(&v, Policy::default());
        assert!(
            b.contains(&"brokers not registered: 2".to_string()),
            "{b:?}"
        );
        let urp = b
            .iter()
            .find(|m| m.starts_with("under-replicated"))
            .unwrap();
        assert!(
            urp.contains("orders-0") && urp.contains("orders-1"),
            "{urp}"
        );
        // Not strict: under-replicated alone is tolerated, a missing broker is not.
        let lax = Policy {
            strict: false,
            ..Policy::default()
        };
        assert_eq!(
            kafka_preflight(&v, lax),
            vec!["brokers not registered: 2".to_string()]
        );
    }

    #[test]
    fn under_min_isr_always_blocks() {
        let v = view(
            &[1, 2, 3],
            vec![("orders", vec![part(0, 1, &[1, 2, 3], &[1])])],
        );
        let lax = Policy {
            strict: false,
            ..Policy::default()
        };
        let b = kafka_preflight(&v, lax);
        assert!(
            b[0].starts_with("under-min-ISR partitions: orders-0"),
            "{b:?}"
        );
    }

    #[test]
    fn a_broker_at_min_isr_cannot_go() {
        // ISR {1,2} with min ISR 2: neither 1 nor 2 may leave; 3 (out of sync) may.
        let v = view(
            &[1, 2, 3],
            vec![("orders", vec![part(0, 1, &[1, 2, 3], &[1, 2])])],
        );
        let err = can_roll_broker(&v, 1, Policy::default()).unwrap_err();
        assert!(
            err[0].contains("orders-0: ISR [1, 2] would fall below min.insync.replicas 2"),
            "{err:?}"
        );
        assert!(can_roll_broker(&v, 2, Policy::default()).is_err());
        assert_eq!(can_roll_broker(&v, 3, Policy::default()), Ok(()));
    }

    #[test]
    fn replication_factor_at_or_below_min_isr_needs_opt_in() {
        let mut v = view(
            &[1, 2, 3],
            vec![("audit", vec![part(0, 1, &[1, 2], &[1, 2])])],
        );
        let err = can_roll_broker(&v, 1, Policy::default()).unwrap_err();
        assert!(
            err[0].contains("replication factor 2 <= min.insync.replicas 2"),
            "{err:?}"
        );
        let opt_in = Policy {
            allow_unavailable_low_rf: true,
            ..Policy::default()
        };
        assert_eq!(can_roll_broker(&v, 1, opt_in), Ok(()));
        // A topic-level min ISR of 1 makes the same topic safe.
        v.min_isr.insert("audit".into(), 1);
        assert_eq!(can_roll_broker(&v, 1, Policy::default()), Ok(()));
    }

    #[test]
    fn lasting_blockers_are_low_replication_and_stranded_replicas() {
        let mut v = view(
            &[1, 2, 3],
            vec![
                ("ok", vec![part(0, 1, &[1, 2, 3], &[1, 2, 3])]),
                ("tight", vec![part(0, 2, &[2, 3], &[2, 3])]),
            ],
        );
        v.min_isr.insert("tight".into(), 2);
        let b = lasting_blockers(&v, &[1, 2, 3], Policy::default());
        assert_eq!(b.len(), 1, "{b:?}");
        assert!(
            b[0].starts_with("tight-0: replication factor 2 <= min.insync.replicas 2"),
            "{b:?}"
        );
        // Only restarting brokers count; the operator may opt in.
        assert!(lasting_blockers(&v, &[1], Policy::default()).is_empty());
        let opt_in = Policy {
            allow_unavailable_low_rf: true,
            ..Policy::default()
        };
        assert!(lasting_blockers(&v, &[2], opt_in).is_empty());
        // A replica on broker 9, gone from the cluster and the inventory, never catches up;
        // one on a stopped broker of the inventory (3) is the roller's transient business.
        let v = view(
            &[1, 2],
            vec![
                ("t", vec![part(0, 1, &[1, 2, 9], &[1, 2])]),
                ("u", vec![part(0, 1, &[1, 2, 3], &[1, 2])]),
            ],
        );
        let b = lasting_blockers(&v, &[1], Policy::default());
        assert_eq!(b.len(), 1, "{b:?}");
        assert!(b[0].starts_with("t-0: replica on broker [9]"), "{b:?}");
    }

    #[test]
    fn brokers_not_hosting_a_partition_are_unaffected() {
        let v = view(
            &[1, 2, 3, 4],
            vec![("orders", vec![part(0, 1, &[1, 2, 3], &[1, 2])])],
        );
        assert_eq!(can_roll_broker(&v, 4, Policy::default()), Ok(()));
    }

    #[test]
    fn caught_up_means_registered_and_in_every_isr() {
        let v = view(
            &[1, 3],
            vec![("orders", vec![part(0, 1, &[1, 2, 3], &[1, 3])])],
        );
        assert!(
            broker_caught_up(&v, 2)
                .unwrap_err()
                .contains("not registered")
        );
        let v = view(
            &[1, 2, 3],
            vec![("orders", vec![part(0, 1, &[1, 2, 3], &[1, 3])])],
        );
        assert!(broker_caught_up(&v, 2).unwrap_err().contains("orders-0"));
        assert_eq!(broker_caught_up(&healthy(), 2), Ok(()));
    }

    /// Racks a = {1, 2}, b = {3, 4}, c = {5, 6}; replication factor 3, min ISR 2.
    fn racked(partitions: Vec<PartitionInfo>) -> KafkaView {
        let mut v = view(&[1, 2, 3, 4, 5, 6], vec![("orders", partitions)]);
        v.expected = vec![1, 2, 3, 4, 5, 6];
        v
    }

    #[test]
    fn a_rack_rolls_together_when_the_other_racks_keep_min_isr() {
        // Rack-aware placement: one replica per rack.
        let v = racked(vec![
            part(0, 1, &[1, 3, 5], &[1, 3, 5]),
            part(1, 4, &[4, 6, 2], &[4, 6, 2]),
        ]);
        for rack in [[1, 2], [3, 4], [5, 6]] {
            assert_eq!(
                can_roll_rack(&v, &rack, Policy::default()),
                Ok(()),
                "{rack:?}"
            );
            assert!(rack_placement_blockers(&v, &rack, Policy::default()).is_empty());
        }
        // A replica outside the rack out of sync: this rack must wait, waiting can clear it.
        let v = racked(vec![part(0, 1, &[1, 3, 5], &[1, 3])]);
        let why = can_roll_rack(&v, &[1, 2], Policy::default()).unwrap_err();
        assert!(
            why[0].contains("orders-0: 1 of its in-sync replicas [1, 3] are outside brokers [1, 2], below min.insync.replicas 2"),
            "{why:?}"
        );
        assert!(rack_placement_blockers(&v, &[1, 2], Policy::default()).is_empty());
        // The out-of-sync replica in the rack itself does not matter.
        assert_eq!(can_roll_rack(&v, &[5, 6], Policy::default()), Ok(()));
    }

    #[test]
    fn two_replicas_in_one_rack_make_it_roll_one_broker_at_a_time() {
        // Placed before the racks were set: two replicas in rack a.
        let v = racked(vec![part(0, 1, &[1, 2, 3], &[1, 2, 3])]);
        let why = rack_placement_blockers(&v, &[1, 2], Policy::default());
        assert_eq!(
            why,
            [
                "orders-0: 1 of its replicas [1, 2, 3] are outside brokers [1, 2], below min.insync.replicas 2"
            ]
        );
        assert!(can_roll_rack(&v, &[1, 2], Policy::default()).is_err());
        // The other racks hold at most one of its replicas.
        assert_eq!(can_roll_rack(&v, &[3, 4], Policy::default()), Ok(()));
        // A topic that accepts one in-sync replica (min ISR 1) lets rack a go too.
        let mut v = v;
        v.min_isr.insert("orders".into(), 1);
        assert_eq!(can_roll_rack(&v, &[1, 2], Policy::default()), Ok(()));
        assert!(rack_placement_blockers(&v, &[1, 2], Policy::default()).is_empty());
    }

    #[test]
    fn low_replication_blocks_a_rack_as_it_blocks_a_broker() {
        let v = racked(vec![part(0, 1, &[1, 3], &[1, 3])]);
        let why = can_roll_rack(&v, &[1, 2], Policy::default()).unwrap_err();
        assert!(
            why[0].contains("replication factor 2 <= min.insync.replicas 2"),
            "{why:?}"
        );
        assert!(!rack_placement_blockers(&v, &[1, 2], Policy::default()).is_empty());
        let opt_in = Policy {
            allow_unavailable_low_rf: true,
            ..Policy::default()
        };
        assert_eq!(can_roll_rack(&v, &[1, 2], opt_in), Ok(()));
        assert!(rack_placement_blockers(&v, &[1, 2], opt_in).is_empty());
        // Racks without a replica of it are not concerned.
        assert_eq!(can_roll_rack(&v, &[5, 6], Policy::default()), Ok(()));
    }

    #[test]
    fn racks_go_in_name_order_with_the_controllers_last() {
        let brokers = [
            ("n1", Some("b")),
            ("n2", Some("a")),
            ("n3", Some("b")),
            ("n4", Some("c")),
        ];
        assert_eq!(
            racks_in_order(&brokers, Some("n2")).unwrap(),
            [
                ("b", vec!["n1", "n3"]),
                ("c", vec!["n4"]),
                ("a", vec!["n2"])
            ]
        );
        assert_eq!(
            racks_in_order(&brokers, None).unwrap(),
            [
                ("a", vec!["n2"]),
                ("b", vec!["n1", "n3"]),
                ("c", vec!["n4"])
            ]
        );
        assert_eq!(
            racks_in_order(&[("n1", Some("a")), ("n2", None)], None),
            None
        );
    }

    #[test]
    fn leader_goes_last_even_when_it_moves() {
        assert_eq!(
            order_last(&["n1", "n2", "n3"], Some("n1")),
            vec!["n2", "n3", "n1"]
        );
        assert_eq!(
            order_last(&["n1", "n2", "n3"], None),
            vec!["n1", "n2", "n3"]
        );
        // The orchestrator re-reads the leader before each node: a leader change mid-roll
        // (n1 -> n3 after n2 restarted) still puts the new leader last among those left.
        assert_eq!(order_last(&["n3", "n1"], Some("n3")), vec!["n1", "n3"]);
    }

    #[test]
    fn zookeeper_member_needs_a_whole_ensemble() {
        assert_eq!(can_roll_zookeeper(true, 3, Some(2)), Ok(()));
        assert!(
            can_roll_zookeeper(true, 3, Some(1))
                .unwrap_err()
                .contains("1 synced")
        );
        assert!(can_roll_zookeeper(false, 3, Some(2)).is_err());
        assert_eq!(can_roll_zookeeper(true, 1, None), Ok(()));
    }
}
