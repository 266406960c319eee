//! The KRaft controller quorum, as [`KafkaClient`] methods and the rules read from it:
//! DescribeQuorum (who votes, who leads, who has caught up), AddRaftVoter and
//! RemoveRaftVoter (KIP-853, dynamic quorums; a broker forwards them to the active
//! controller), and the pure decisions on a [`QuorumInfo`]: may a voter restart, be added,
//! be removed.

use anyhow::{Context, Result};
use kafka_protocol::messages::{
    ApiKey, DescribeQuorumRequest, describe_quorum_request, describe_quorum_response,
};

use super::{KafkaClient, topic_name};

/// The KRaft metadata log; DescribeQuorum asks about its partition 0.
const CLUSTER_METADATA_TOPIC: &str = "__cluster_metadata";

/// One replica of the KRaft metadata log, as the quorum leader sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaState {
    pub id: i32,
    /// -1 when unknown.
    pub log_end_offset: i64,
    /// Leader wall-clock time of the replica's last fetch. `None` when
    /// unknown, for the leader itself, and from DescribeQuorum v0.
    pub last_fetch_ms: Option<i64>,
    /// Leader wall-clock append time of the offset the replica last fetched
    /// up to; the leader reports the current time for itself. `None` when
    /// unknown and from DescribeQuorum v0.
    pub last_caught_up_ms: Option<i64>,
}

/// The KRaft controller quorum, from DescribeQuorum on `__cluster_metadata`
/// partition 0 (answered by the controllers; a broker forwards it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuorumInfo {
    /// -1 when no leader is known (an election is in progress, or no
    /// majority of voters is up).
    pub leader_id: i32,
    pub leader_epoch: i32,
    pub high_watermark: i64,
    /// The controllers that vote.
    pub voters: Vec<ReplicaState>,
    /// Replicas that follow the log without voting: the brokers, and
    /// controllers not (yet) added as voters.
    pub observers: Vec<ReplicaState>,
}

impl QuorumInfo {
    pub fn voter(&self, id: i32) -> Option<&ReplicaState> {
        self.voters.iter().find(|v| v.id == id)
    }

    fn leader_caught_up_ms(&self) -> Option<i64> {
        self.voter(self.leader_id)?.last_caught_up_ms
    }

    /// Strimzi's definition (`KafkaQuorumCheck`): a voter is caught up when
    /// it has a last-caught-up timestamp and is the leader, or trails the
    /// leader's by less than `controller.quorum.fetch.timeout.ms`. A missing
    /// timestamp (also the leader's) means not caught up.
    pub fn is_caught_up(&self, voter: &ReplicaState, fetch_timeout_ms: i64) -> bool {
        let Some(at) = voter.last_caught_up_ms else {
            return false;
        };
        if self.leader_id < 0 {
            return false;
        }
        if voter.id == self.leader_id {
            return true;
        }
        self.leader_caught_up_ms()
            .is_some_and(|leader| leader.saturating_sub(at) < fetch_timeout_ms)
    }

    /// Why `voter` is not caught up, for messages.
    fn lag(&self, voter: &ReplicaState) -> String {
        let offsets = format!(
            "log end offset {}, high watermark {}",
            voter.log_end_offset, self.high_watermark
        );
        match (voter.last_caught_up_ms, self.leader_caught_up_ms()) {
            (None, _) => format!("no last-caught-up time; {offsets}"),
            (Some(_), None) => format!("leader {} has no last-caught-up time", self.leader_id),
            (Some(at), Some(leader)) => format!(
                "{} ms behind leader {}; {offsets}",
                leader.saturating_sub(at),
                self.leader_id
            ),
        }
    }

    /// Everything wrong with the quorum (empty = healthy): no leader, an
    /// expected voter missing, a voter not caught up (see
    /// [`QuorumInfo::is_caught_up`]). Messages name the node ids.
    pub fn problems(&self, expected_voters: &[i32], fetch_timeout_ms: i64) -> Vec<String> {
        let mut out = Vec::new();
        if self.leader_id < 0 {
            out.push(format!(
                "controller quorum has no leader (epoch {}): an election is in progress or \
                 no majority of the voters is up",
                self.leader_epoch
            ));
        } else if self.voter(self.leader_id).is_none() {
            out.push(format!(
                "quorum leader {} is not among the voters {:?}",
                self.leader_id,
                self.voter_ids()
            ));
        }
        let missing: Vec<i32> = expected_voters
            .iter()
            .copied()
            .filter(|&id| self.voter(id).is_none())
            .collect();
        if !missing.is_empty() {
            out.push(format!(
                "controller(s) {missing:?} are not voters of the quorum (voters: {:?})",
                self.voter_ids()
            ));
        }
        if self.leader_id >= 0 {
            for v in &self.voters {
                if !self.is_caught_up(v, fetch_timeout_ms) {
                    out.push(format!(
                        "voter {} has not caught up with leader {} within {fetch_timeout_ms} ms ({})",
                        v.id,
                        self.leader_id,
                        self.lag(v)
                    ));
                }
            }
        }
        out
    }

    fn voter_ids(&self) -> Vec<i32> {
        self.voters.iter().map(|v| v.id).collect()
    }

    /// Whether controller `candidate` can be restarted without costing the
    /// quorum its majority (Strimzi's `KafkaQuorumCheck` rule): the leader
    /// must be known; count the caught-up voters other than `candidate`;
    /// with 1 voter allow, with 2 allow iff the other is caught up, else
    /// allow iff that count >= (N + 2) / 2 (a majority without `candidate`).
    /// `Err` says why not, naming node ids.
    pub fn can_restart_voter(&self, candidate: i32, fetch_timeout_ms: i64) -> Result<(), String> {
        if self.leader_id < 0 {
            return Err(format!(
                "cannot restart controller {candidate}: the quorum has no leader"
            ));
        }
        let n = self.voters.len();
        let (caught_up, behind): (Vec<&ReplicaState>, Vec<&ReplicaState>) = self
            .voters
            .iter()
            .filter(|v| v.id != candidate)
            .partition(|v| self.is_caught_up(v, fetch_timeout_ms));
        let needed = match n {
            0 => {
                return Err(format!(
                    "cannot restart controller {candidate}: the quorum reports no voters"
                ));
            }
            1 => 0,
            2 => 1,
            _ => (n + 2) / 2,
        };
        if caught_up.len() >= needed {
            return Ok(());
        }
        let ids = |vs: &[&ReplicaState]| vs.iter().map(|v| v.id).collect::<Vec<_>>();
        let behind: Vec<String> = behind
            .iter()
            .map(|v| format!("{} ({})", v.id, self.lag(v)))
            .collect();
        Err(format!(
            "cannot restart controller {candidate}: {} of the other voters {:?} have caught up \
             with leader {} within {fetch_timeout_ms} ms, {needed} needed out of {n}; \
             caught up: {:?}; behind: [{}]",
            caught_up.len(),
            self.voters
                .iter()
                .map(|v| v.id)
                .filter(|&id| id != candidate)
                .collect::<Vec<_>>(),
            self.leader_id,
            ids(&caught_up),
            behind.join(", ")
        ))
    }
}

fn replica_state(r: &describe_quorum_response::ReplicaState) -> ReplicaState {
    let known = |t: i64| (t >= 0).then_some(t);
    ReplicaState {
        id: r.replica_id.0,
        log_end_offset: r.log_end_offset,
        last_fetch_ms: known(r.last_fetch_timestamp),
        last_caught_up_ms: known(r.last_caught_up_timestamp),
    }
}

fn to_quorum_info(p: &describe_quorum_response::PartitionData) -> QuorumInfo {
    QuorumInfo {
        leader_id: p.leader_id.0,
        leader_epoch: p.leader_epoch,
        high_watermark: p.high_watermark,
        voters: p.current_voters.iter().map(replica_state).collect(),
        observers: p.observers.iter().map(replica_state).collect(),
    }
}

impl KafkaClient {
    /// The KRaft controller quorum (DescribeQuorum on `__cluster_metadata`
    /// partition 0). Controllers answer it; a broker forwards it to the
    /// active controller. ZooKeeper-mode brokers do not support the API.
    pub async fn describe_quorum(&mut self) -> Result<QuorumInfo> {
        let api = ApiKey::DescribeQuorum;
        let req = DescribeQuorumRequest::default().with_topics(vec![
            describe_quorum_request::TopicData::default()
                .with_topic_name(topic_name(CLUSTER_METADATA_TOPIC))
                .with_partitions(vec![
                    describe_quorum_request::PartitionData::default().with_partition_index(0),
                ]),
        ]);
        let resp = self.call(&req, self.timeout).await?;
        let resource = format!("{CLUSTER_METADATA_TOPIC}-0");
        if resp.error_code != 0 {
            let message = resp.error_message.as_ref();
            return Err(self
                .api_error(api, &resource, resp.error_code, message)
                .into());
        }
        let partition = resp
            .topics
            .iter()
            .filter(|t| t.topic_name.0.as_str() == CLUSTER_METADATA_TOPIC)
            .flat_map(|t| &t.partitions)
            .find(|p| p.partition_index == 0)
            .with_context(|| {
                format!(
                    "Kafka {}: DescribeQuorum response lacks {resource}",
                    self.addr
                )
            })?;
        if partition.error_code != 0 {
            let message = partition.error_message.as_ref();
            return Err(self
                .api_error(api, &resource, partition.error_code, message)
                .into());
        }
        Ok(to_quorum_info(partition))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::BrokerId;

    const FETCH_TIMEOUT_MS: i64 = 2000;
    const NOW: i64 = 1_700_000_000_000;

    /// A voter that caught up `behind_ms` before the leader did (`None`: no
    /// timestamp).
    fn voter(id: i32, behind_ms: Option<i64>) -> ReplicaState {
        ReplicaState {
            id,
            log_end_offset: 100,
            last_fetch_ms: behind_ms.map(|b| NOW - b),
            last_caught_up_ms: behind_ms.map(|b| NOW - b),
        }
    }

    fn quorum(leader: i32, voters: Vec<ReplicaState>) -> QuorumInfo {
        QuorumInfo {
            leader_id: leader,
            leader_epoch: 7,
            high_watermark: 100,
            voters,
            observers: vec![voter(4, Some(0))],
        }
    }

    #[test]
    fn healthy_quorum_has_no_problems() {
        let q = quorum(
            1,
            vec![voter(1, Some(0)), voter(2, Some(10)), voter(3, Some(1999))],
        );
        assert_eq!(
            q.problems(&[1, 2, 3], FETCH_TIMEOUT_MS),
            Vec::<String>::new()
        );
        assert!(q.is_caught_up(&q.voters[2], FETCH_TIMEOUT_MS));
        // A single-node (combined) quorum: the leader is caught up by definition.
        let q = quorum(1, vec![voter(1, Some(0))]);
        assert!(q.problems(&[1], FETCH_TIMEOUT_MS).is_empty());
    }

    #[test]
    fn quorum_problems_name_the_nodes() {
        let q = quorum(
            1,
            vec![voter(1, Some(0)), voter(2, Some(2000)), voter(3, None)],
        );
        let p = q.problems(&[1, 2, 3, 5], FETCH_TIMEOUT_MS);
        assert_eq!(p.len(), 3, "{p:#?}");
        assert!(
            p[0].contains("[5]") && p[0].contains("[1, 2, 3]"),
            "{}",
            p[0]
        );
        assert!(
            p[1].starts_with("voter 2 ") && p[1].contains("2000 ms behind leader 1"),
            "{}",
            p[1]
        );
        assert!(
            p[2].starts_with("voter 3 ") && p[2].contains("no last-caught-up time"),
            "{}",
            p[2]
        );

        // No leader: reported once, caught-up checks are meaningless then.
        let q = quorum(-1, vec![voter(1, None), voter(2, None), voter(3, None)]);
        let p = q.problems(&[1, 2, 3], FETCH_TIMEOUT_MS);
        assert_eq!(p.len(), 1, "{p:#?}");
        assert!(p[0].contains("no leader"), "{}", p[0]);

        // The leader without a timestamp (DescribeQuorum v0): nobody is caught up.
        let q = quorum(1, vec![voter(1, None), voter(2, Some(0))]);
        let p = q.problems(&[1, 2], FETCH_TIMEOUT_MS);
        assert_eq!(p.len(), 2, "{p:#?}");
        assert!(
            p[1].contains("leader 1 has no last-caught-up time"),
            "{}",
            p[1]
        );

        // A leader that is not a voter.
        let q = quorum(9, vec![voter(1, Some(0))]);
        let p = q.problems(&[1], FETCH_TIMEOUT_MS);
        assert!(
            p[0].contains("leader 9 is not among the voters [1]"),
            "{p:#?}"
        );
    }

    #[test]
    fn can_restart_voter_follows_strimzi() {
        let up = |id| voter(id, Some(0));
        let behind = |id| voter(id, Some(5000));

        // No leader: never.
        let q = quorum(-1, vec![up(1), up(2), up(3)]);
        let err = q.can_restart_voter(2, FETCH_TIMEOUT_MS).unwrap_err();
        assert!(
            err.contains("controller 2") && err.contains("no leader"),
            "{err}"
        );

        // N = 1: always allowed (there is nothing to keep).
        assert_eq!(
            quorum(1, vec![up(1)]).can_restart_voter(1, FETCH_TIMEOUT_MS),
            Ok(())
        );

        // N = 2: allowed iff the other voter is caught up.
        let q = quorum(1, vec![up(1), up(2)]);
        assert_eq!(q.can_restart_voter(1, FETCH_TIMEOUT_MS), Ok(()));
        assert_eq!(q.can_restart_voter(2, FETCH_TIMEOUT_MS), Ok(()));
        let q = quorum(1, vec![up(1), behind(2)]);
        assert_eq!(q.can_restart_voter(2, FETCH_TIMEOUT_MS), Ok(()));
        let err = q.can_restart_voter(1, FETCH_TIMEOUT_MS).unwrap_err();
        assert!(err.contains("behind: [2 (5000 ms behind leader 1"), "{err}");

        // N = 3: two caught-up voters besides the candidate.
        let q = quorum(1, vec![up(1), up(2), up(3)]);
        for id in [1, 2, 3] {
            assert_eq!(q.can_restart_voter(id, FETCH_TIMEOUT_MS), Ok(()), "{id}");
        }
        let q = quorum(1, vec![up(1), up(2), behind(3)]);
        assert_eq!(q.can_restart_voter(3, FETCH_TIMEOUT_MS), Ok(()));
        let err = q.can_restart_voter(2, FETCH_TIMEOUT_MS).unwrap_err();
        assert!(
            err.contains("1 of the other voters [1, 3]")
                && err.contains("2 needed out of 3")
                && err.contains("caught up: [1]"),
            "{err}"
        );
        assert!(q.can_restart_voter(1, FETCH_TIMEOUT_MS).is_err());

        // N = 4 needs 3 others, N = 5 needs 3 others.
        let q = quorum(1, vec![up(1), up(2), up(3), behind(4)]);
        assert_eq!(q.can_restart_voter(4, FETCH_TIMEOUT_MS), Ok(()));
        assert!(q.can_restart_voter(3, FETCH_TIMEOUT_MS).is_err());
        let q = quorum(1, vec![up(1), up(2), up(3), behind(4), voter(5, None)]);
        assert_eq!(q.can_restart_voter(4, FETCH_TIMEOUT_MS), Ok(()));
        assert!(q.can_restart_voter(2, FETCH_TIMEOUT_MS).is_err());
        let q = quorum(1, vec![up(1), up(2), behind(3), behind(4), up(5)]);
        assert!(q.can_restart_voter(2, FETCH_TIMEOUT_MS).is_err());
        assert_eq!(q.can_restart_voter(3, FETCH_TIMEOUT_MS), Ok(()));

        // The fetch timeout is exclusive: exactly 2000 ms behind is not caught up.
        let q = quorum(1, vec![up(1), up(2), voter(3, Some(2000))]);
        assert!(q.can_restart_voter(2, FETCH_TIMEOUT_MS).is_err());
        assert_eq!(q.can_restart_voter(2, 2001), Ok(()));
    }

    #[test]
    fn describe_quorum_partition_is_converted() {
        use describe_quorum_response::{PartitionData, ReplicaState as Wire};
        let p = PartitionData::default()
            .with_leader_id(BrokerId(3001))
            .with_leader_epoch(5)
            .with_high_watermark(42)
            .with_current_voters(vec![
                Wire::default()
                    .with_replica_id(BrokerId(3001))
                    .with_log_end_offset(42)
                    .with_last_fetch_timestamp(-1)
                    .with_last_caught_up_timestamp(NOW),
                Wire::default()
                    .with_replica_id(BrokerId(3002))
                    .with_log_end_offset(-1),
            ])
            .with_observers(vec![
                Wire::default()
                    .with_replica_id(BrokerId(1))
                    .with_log_end_offset(40)
                    .with_last_fetch_timestamp(NOW - 5)
                    .with_last_caught_up_timestamp(NOW - 10),
            ]);
        let q = to_quorum_info(&p);
        assert_eq!(q.leader_id, 3001);
        assert_eq!(q.leader_epoch, 5);
        assert_eq!(q.high_watermark, 42);
        assert_eq!(
            q.voters,
            vec![
                ReplicaState {
                    id: 3001,
                    log_end_offset: 42,
                    last_fetch_ms: None,
                    last_caught_up_ms: Some(NOW),
                },
                ReplicaState {
                    id: 3002,
                    log_end_offset: -1,
                    last_fetch_ms: None,
                    last_caught_up_ms: None,
                },
            ]
        );
        assert_eq!(q.observers[0].last_fetch_ms, Some(NOW - 5));
        assert_eq!(q.observers[0].last_caught_up_ms, Some(NOW - 10));
    }
}
