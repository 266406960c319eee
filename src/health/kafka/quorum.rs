//! The KRaft controller quorum, as [`KafkaClient`] methods and the rules read from it:
//! DescribeQuorum (who votes, who leads, who has caught up), AddRaftVoter and
//! RemoveRaftVoter (KIP-853, dynamic quorums; a broker forwards them to the active
//! controller), and the pure decisions on a [`QuorumInfo`]: may a voter restart, be added,
//! be removed.

use anyhow::{Context, Result};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{
    AddRaftVoterRequest, AddRaftVoterResponse, ApiKey, DescribeQuorumRequest,
    RemoveRaftVoterRequest, RemoveRaftVoterResponse, add_raft_voter_request,
    describe_quorum_request, describe_quorum_response,
};
use kafka_protocol::protocol::StrBytes;
use uuid::Uuid;

use super::{Call, KafkaClient, topic_name};

calls! {
    AddRaftVoterRequest => AddRaftVoterResponse, AddRaftVoter;
    RemoveRaftVoterRequest => RemoveRaftVoterResponse, RemoveRaftVoter;
}

/// How long the quorum leader may take to commit a voter change before answering.
const VOTER_CHANGE_TIMEOUT_MS: i32 = 30_000;

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
    /// The id of the replica's metadata log directory (DescribeQuorum v2+, KIP-853): with
    /// the node id it names a voter. `None` when unknown.
    pub directory_id: Option<Uuid>,
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

impl QuorumInfo {
    pub fn observer(&self, id: i32) -> Option<&ReplicaState> {
        self.observers.iter().find(|o| o.id == id)
    }

    /// May controller `id`, now following the log as an observer, become a voter (KIP-853
    /// AddRaftVoter)? The leader must be known, `id` must have caught up (same rule as a
    /// voter's), and the voters caught up with it must be a majority of the set with it, so
    /// that the change commits and the quorum keeps a majority throughout. `Err` says why not.
    pub fn can_add_voter(&self, id: i32, fetch_timeout_ms: i64) -> Result<(), String> {
        if self.leader_id < 0 {
            return Err("the quorum has no leader".into());
        }
        if self.voter(id).is_some() {
            return Err(format!("controller {id} is a voter already"));
        }
        let Some(o) = self.observer(id) else {
            return Err(format!(
                "controller {id} does not follow the metadata log yet (not among the observers {:?})",
                self.observers.iter().map(|o| o.id).collect::<Vec<_>>()
            ));
        };
        if o.directory_id.is_none() {
            return Err(format!(
                "the leader does not report controller {id}'s directory id (a Kafka before 3.9?)"
            ));
        }
        if !self.is_caught_up(o, fetch_timeout_ms) {
            return Err(format!(
                "controller {id} has not caught up: {}",
                self.lag(o)
            ));
        }
        let caught_up = self
            .voters
            .iter()
            .filter(|v| self.is_caught_up(v, fetch_timeout_ms))
            .count();
        let new_size = self.voters.len() + 1;
        if caught_up + 1 < new_size / 2 + 1 {
            return Err(format!(
                "only {caught_up} of the {} voters {:?} have caught up: with controller {id}, \
                 {} of {new_size} are needed",
                self.voters.len(),
                self.voter_ids(),
                new_size / 2 + 1
            ));
        }
        Ok(())
    }

    /// May voter `id` leave the quorum (KIP-853 RemoveRaftVoter)? The leader must be known,
    /// `id` must not be the last voter, and the other voters caught up must be a majority of
    /// the set without it. `Err` says why not.
    pub fn can_remove_voter(&self, id: i32, fetch_timeout_ms: i64) -> Result<(), String> {
        if self.leader_id < 0 {
            return Err("the quorum has no leader".into());
        }
        if self.voter(id).is_none() {
            return Err(format!(
                "controller {id} is not a voter (voters: {:?})",
                self.voter_ids()
            ));
        }
        let rest = self.voters.len() - 1;
        if rest == 0 {
            return Err(format!("controller {id} is the only voter"));
        }
        let caught_up: Vec<i32> = self
            .voters
            .iter()
            .filter(|v| v.id != id && self.is_caught_up(v, fetch_timeout_ms))
            .map(|v| v.id)
            .collect();
        if caught_up.len() < rest / 2 + 1 {
            return Err(format!(
                "without controller {id}, {} of the {rest} voters that stay have caught up \
                 ({caught_up:?}), {} needed",
                caught_up.len(),
                rest / 2 + 1
            ));
        }
        Ok(())
    }
}

fn replica_state(r: &describe_quorum_response::ReplicaState) -> ReplicaState {
    let known = |t: i64| (t >= 0).then_some(t);
    ReplicaState {
        id: r.replica_id.0,
        log_end_offset: r.log_end_offset,
        last_fetch_ms: known(r.last_fetch_timestamp),
        last_caught_up_ms: known(r.last_caught_up_timestamp),
        directory_id: (!r.replica_directory_id.is_nil()).then_some(r.replica_directory_id),
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

    /// Makes controller `id` (an observer of the metadata log, formatted with
    /// `--no-initial-controllers`) a voter, reachable at `host:port` on `listener`. Kafka
    /// answers once the new voter set is committed. Already a voter with this directory: Ok.
    pub async fn add_raft_voter(
        &mut self,
        cluster_id: &str,
        id: i32,
        directory_id: Uuid,
        listener: &str,
        host: &str,
        port: u16,
    ) -> Result<()> {
        let req = AddRaftVoterRequest::default()
            .with_cluster_id(Some(StrBytes::from_string(cluster_id.to_string())))
            .with_timeout_ms(VOTER_CHANGE_TIMEOUT_MS)
            .with_voter_id(id)
            .with_voter_directory_id(directory_id)
            .with_listeners(vec![
                add_raft_voter_request::Listener::default()
                    .with_name(StrBytes::from_string(listener.to_string()))
                    .with_host(StrBytes::from_string(host.to_string()))
                    .with_port(port),
            ]);
        let resp = self.call(&req, self.voter_change_timeout()).await?;
        self.voter_change_result(
            ApiKey::AddRaftVoter,
            id,
            resp.error_code,
            resp.error_message.as_ref(),
            ResponseError::DuplicateVoter,
        )
    }

    /// Removes voter `id` (with its metadata directory `directory_id`) from the quorum. Kafka
    /// answers once the new voter set is committed. Not a voter any more: Ok.
    pub async fn remove_raft_voter(
        &mut self,
        cluster_id: &str,
        id: i32,
        directory_id: Uuid,
    ) -> Result<()> {
        let req = RemoveRaftVoterRequest::default()
            .with_cluster_id(Some(StrBytes::from_string(cluster_id.to_string())))
            .with_voter_id(id)
            .with_voter_directory_id(directory_id);
        let resp = self.call(&req, self.voter_change_timeout()).await?;
        self.voter_change_result(
            ApiKey::RemoveRaftVoter,
            id,
            resp.error_code,
            resp.error_message.as_ref(),
            ResponseError::VoterNotFound,
        )
    }

    /// The client's timeout, but never shorter than Kafka's own for a voter change (it
    /// answers once the new voter set is committed).
    fn voter_change_timeout(&self) -> std::time::Duration {
        self.timeout.max(std::time::Duration::from_millis(
            VOTER_CHANGE_TIMEOUT_MS as u64 + 5_000,
        ))
    }

    /// A voter change's answer: `done` (the change was already made) counts as success.
    fn voter_change_result(
        &self,
        api: ApiKey,
        id: i32,
        code: i16,
        message: Option<&StrBytes>,
        done: ResponseError,
    ) -> Result<()> {
        match ResponseError::try_from_code(code) {
            None => Ok(()),
            Some(e) if e == done => Ok(()),
            Some(_) => Err(self
                .api_error(api, &format!("controller {id}"), code, message)
                .into()),
        }
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
            directory_id: None,
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

    fn with_dir(mut r: ReplicaState) -> ReplicaState {
        r.directory_id = Some(Uuid::from_u128(r.id as u128 + 1000));
        r
    }

    #[test]
    fn a_controller_joins_once_caught_up_with_a_majority_of_the_new_set() {
        let all = || vec![voter(1, Some(0)), voter(2, Some(10)), voter(3, Some(10))];
        let mut q = quorum(1, all());
        q.observers = vec![with_dir(voter(3001, Some(100)))];
        assert_eq!(q.can_add_voter(3001, FETCH_TIMEOUT_MS), Ok(()));
        // Behind, unknown, already voting, no leader, no directory id: not yet, and why.
        q.observers = vec![with_dir(voter(3001, Some(5000)))];
        let why = q.can_add_voter(3001, FETCH_TIMEOUT_MS).unwrap_err();
        assert!(
            why.contains("has not caught up") && why.contains("5000 ms behind"),
            "{why}"
        );
        let why = q.can_add_voter(3002, FETCH_TIMEOUT_MS).unwrap_err();
        assert!(why.contains("does not follow the metadata log"), "{why}");
        assert!(
            q.can_add_voter(2, FETCH_TIMEOUT_MS)
                .unwrap_err()
                .contains("a voter already")
        );
        q.observers = vec![voter(3001, Some(0))];
        let why = q.can_add_voter(3001, FETCH_TIMEOUT_MS).unwrap_err();
        assert!(why.contains("directory id"), "{why}");
        let mut leaderless = quorum(-1, all());
        leaderless.observers = vec![with_dir(voter(3001, Some(0)))];
        assert!(leaderless.can_add_voter(3001, FETCH_TIMEOUT_MS).is_err());
        // 3 voters, 2 down: with the newcomer 2 of 4 are caught up, 3 are needed.
        let mut q = quorum(
            1,
            vec![voter(1, Some(0)), voter(2, None), voter(3, Some(9000))],
        );
        q.observers = vec![with_dir(voter(3001, Some(0)))];
        let why = q.can_add_voter(3001, FETCH_TIMEOUT_MS).unwrap_err();
        assert!(
            why.contains("only 1 of the 3 voters") && why.contains("3 of 4"),
            "{why}"
        );
        // One of 3 down: 3 of 4 with the newcomer (how a dead controller is replaced).
        let mut q = quorum(
            1,
            vec![voter(1, Some(0)), voter(2, Some(0)), voter(3, None)],
        );
        q.observers = vec![with_dir(voter(3001, Some(0)))];
        assert_eq!(q.can_add_voter(3001, FETCH_TIMEOUT_MS), Ok(()));
    }

    #[test]
    fn a_voter_leaves_only_while_the_rest_keep_a_majority() {
        let four = vec![
            voter(1, Some(0)),
            voter(2, Some(10)),
            voter(3, Some(10)),
            voter(3001, Some(10)),
        ];
        let q = quorum(1, four.clone());
        assert_eq!(q.can_remove_voter(3001, FETCH_TIMEOUT_MS), Ok(()));
        // The leader may leave too: Kafka hands over once the change is committed.
        assert_eq!(q.can_remove_voter(1, FETCH_TIMEOUT_MS), Ok(()));
        assert!(
            q.can_remove_voter(7, FETCH_TIMEOUT_MS)
                .unwrap_err()
                .contains("not a voter")
        );
        // Two of the three that stay are behind: 1 of 3 is no majority.
        let mut behind = four;
        behind[1] = voter(2, None);
        behind[2] = voter(3, Some(9000));
        let why = quorum(1, behind)
            .can_remove_voter(3001, FETCH_TIMEOUT_MS)
            .unwrap_err();
        assert!(
            why.contains("1 of the 3 voters that stay") && why.contains("2 needed"),
            "{why}"
        );
        let why = quorum(1, vec![voter(1, Some(0))])
            .can_remove_voter(1, FETCH_TIMEOUT_MS)
            .unwrap_err();
        assert!(why.contains("only voter"), "{why}");
        assert!(
            quorum(-1, vec![voter(1, Some(0)), voter(2, Some(0))])
                .can_remove_voter(2, FETCH_TIMEOUT_MS)
                .is_err()
        );
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
                    directory_id: None,
                },
                ReplicaState {
                    id: 3002,
                    log_end_offset: -1,
                    last_fetch_ms: None,
                    last_caught_up_ms: None,
                    directory_id: None,
                },
            ]
        );
        assert_eq!(q.observers[0].last_fetch_ms, Some(NOW - 5));
        assert_eq!(q.observers[0].last_caught_up_ms, Some(NOW - 10));
    }
}
