//! Moving replicas (KIP-455) as more [`KafkaClient`] methods: AlterPartitionReassignments,
//! ListPartitionReassignments, ElectLeaders, UnregisterBroker, and the replication throttle
//! configs on broker and topic resources (IncrementalAlterConfigs).
//!
//! ZooKeeper-mode brokers answer the reassignment and election APIs only on the controller;
//! KRaft brokers forward them. Callers send them through [`KafkaClient::controller`].

use anyhow::{Context, Result, bail};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::alter_partition_reassignments_request::{
    ReassignablePartition, ReassignableTopic,
};
use kafka_protocol::messages::elect_leaders_request::TopicPartitions;
use kafka_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource, AlterableConfig,
};
use kafka_protocol::messages::{
    AlterPartitionReassignmentsRequest, AlterPartitionReassignmentsResponse, ApiKey, BrokerId,
    ElectLeadersRequest, ElectLeadersResponse, IncrementalAlterConfigsRequest,
    ListPartitionReassignmentsRequest, ListPartitionReassignmentsResponse, UnregisterBrokerRequest,
    UnregisterBrokerResponse,
};
use kafka_protocol::protocol::StrBytes;
use std::collections::BTreeMap;

use super::{Call, KafkaClient, code_name, millis_i32, topic_name};

calls! {
    AlterPartitionReassignmentsRequest => AlterPartitionReassignmentsResponse, AlterPartitionReassignments;
    ListPartitionReassignmentsRequest => ListPartitionReassignmentsResponse, ListPartitionReassignments;
    ElectLeadersRequest => ElectLeadersResponse, ElectLeaders;
    UnregisterBrokerRequest => UnregisterBrokerResponse, UnregisterBroker;
}

/// `ConfigResource.Type` TOPIC and BROKER.
pub const RESOURCE_TOPIC: i8 = 2;
pub const RESOURCE_BROKER: i8 = 4;
/// `ElectionType.PREFERRED`.
const ELECTION_PREFERRED: i8 = 0;

/// A partition and its new replica list (`None`: cancel the move under way).
pub type Reassignment = ((String, i32), Option<Vec<i32>>);

/// A partition being reassigned, as the controller reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ongoing {
    /// Every replica now: the target ones plus those still to be removed.
    pub replicas: Vec<i32>,
    pub adding: Vec<i32>,
    pub removing: Vec<i32>,
}

impl Ongoing {
    /// Where the partition ends up.
    pub fn target(&self) -> Vec<i32> {
        self.replicas
            .iter()
            .copied()
            .filter(|b| !self.removing.contains(b))
            .collect()
    }
}

fn ids(v: &[BrokerId]) -> Vec<i32> {
    v.iter().map(|b| b.0).collect()
}

impl KafkaClient {
    /// A connection to the controller this broker names (in KRaft mode any live broker,
    /// which forwards).
    pub async fn controller(&mut self) -> Result<KafkaClient> {
        self.connect_controller().await
    }

    /// Every reassignment under way, by (topic, partition).
    pub async fn list_reassignments(&mut self) -> Result<BTreeMap<(String, i32), Ongoing>> {
        let req = ListPartitionReassignmentsRequest::default()
            .with_timeout_ms(millis_i32(self.timeout))
            .with_topics(None);
        let resp = self.call(&req, self.timeout * 2).await?;
        if resp.error_code != 0 {
            return Err(self
                .api_error(
                    ApiKey::ListPartitionReassignments,
                    "cluster",
                    resp.error_code,
                    resp.error_message.as_ref(),
                )
                .into());
        }
        let mut out = BTreeMap::new();
        for t in &resp.topics {
            for p in &t.partitions {
                out.insert(
                    (t.name.0.to_string(), p.partition_index),
                    Ongoing {
                        replicas: ids(&p.replicas),
                        adding: ids(&p.adding_replicas),
                        removing: ids(&p.removing_replicas),
                    },
                );
            }
        }
        Ok(out)
    }

    /// Submits new replica lists (`Some`) or cancels the reassignment under way (`None`), in
    /// one call. Fails listing every partition the controller refused.
    pub async fn alter_reassignments(&mut self, changes: &[Reassignment]) -> Result<()> {
        let mut by_topic: BTreeMap<&str, Vec<ReassignablePartition>> = BTreeMap::new();
        for ((t, p), to) in changes {
            by_topic.entry(t).or_default().push(
                ReassignablePartition::default()
                    .with_partition_index(*p)
                    .with_replicas(
                        to.as_ref()
                            .map(|v| v.iter().map(|&b| BrokerId(b)).collect()),
                    ),
            );
        }
        let topics = by_topic
            .into_iter()
            .map(|(t, ps)| {
                ReassignableTopic::default()
                    .with_name(topic_name(t))
                    .with_partitions(ps)
            })
            .collect();
        let req = AlterPartitionReassignmentsRequest::default()
            .with_timeout_ms(millis_i32(self.timeout))
            .with_allow_replication_factor_change(false)
            .with_topics(topics);
        let resp = self.call(&req, self.timeout * 2).await?;
        if resp.error_code != 0 {
            return Err(self
                .api_error(
                    ApiKey::AlterPartitionReassignments,
                    "cluster",
                    resp.error_code,
                    resp.error_message.as_ref(),
                )
                .into());
        }
        let mut failed = Vec::new();
        for t in &resp.responses {
            for p in &t.partitions {
                // Cancelling a partition that just finished is no failure.
                let cancel_done = p.error_code == ResponseError::NoReassignmentInProgress.code();
                if p.error_code != 0 && !cancel_done {
                    failed.push(format!(
                        "{}-{}: {}{}",
                        t.name.0,
                        p.partition_index,
                        code_name(p.error_code),
                        p.error_message
                            .as_ref()
                            .map(|m| format!(": {m}"))
                            .unwrap_or_default()
                    ));
                }
            }
        }
        if !failed.is_empty() {
            bail!(
                "Kafka {}: AlterPartitionReassignments refused {} partition(s): {}",
                self.addr,
                failed.len(),
                failed.join("; ")
            );
        }
        Ok(())
    }

    /// Elects the preferred (first) replica leader of each partition; a partition already led
    /// by it is fine. Returns the partitions whose election failed, with why (a preferred
    /// replica not in sync yet cannot lead).
    pub async fn elect_preferred(
        &mut self,
        tps: &[(String, i32)],
    ) -> Result<Vec<((String, i32), String)>> {
        let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
        for (t, p) in tps {
            by_topic.entry(t).or_default().push(*p);
        }
        let parts = by_topic
            .into_iter()
            .map(|(t, ps)| {
                TopicPartitions::default()
                    .with_topic(topic_name(t))
                    .with_partitions(ps)
            })
            .collect();
        let req = ElectLeadersRequest::default()
            .with_election_type(ELECTION_PREFERRED)
            .with_topic_partitions(Some(parts))
            .with_timeout_ms(millis_i32(self.timeout));
        let resp = self.call(&req, self.timeout * 2).await?;
        if resp.error_code != 0 {
            return Err(self
                .api_error(ApiKey::ElectLeaders, "cluster", resp.error_code, None)
                .into());
        }
        let mut failed = Vec::new();
        for t in &resp.replica_election_results {
            for p in &t.partition_result {
                let fine =
                    p.error_code == 0 || p.error_code == ResponseError::ElectionNotNeeded.code();
                if !fine {
                    failed.push((
                        (t.topic.0.to_string(), p.partition_id),
                        code_name(p.error_code),
                    ));
                }
            }
        }
        Ok(failed)
    }

    /// Removes a stopped broker's registration (KRaft only), so the cluster stops listing it
    /// as a fenced broker. A broker already gone is success.
    pub async fn unregister_broker(&mut self, id: i32) -> Result<()> {
        let req = UnregisterBrokerRequest::default().with_broker_id(BrokerId(id));
        let resp = self.call(&req, self.timeout).await?;
        match ResponseError::try_from_code(resp.error_code) {
            None | Some(ResponseError::BrokerIdNotRegistered) => Ok(()),
            Some(_) => Err(self
                .api_error(
                    ApiKey::UnregisterBroker,
                    &format!("broker {id}"),
                    resp.error_code,
                    resp.error_message.as_ref(),
                )
                .into()),
        }
    }

    /// Sets (`Some`) or deletes (`None`) configs of one resource (`RESOURCE_TOPIC` or
    /// `RESOURCE_BROKER`; a broker's own configs must be sent to that broker). Deleting a
    /// config that is not set is no error.
    pub async fn alter_resource_configs(
        &mut self,
        resource_type: i8,
        name: &str,
        changes: &[(&str, Option<String>)],
    ) -> Result<()> {
        let configs = changes
            .iter()
            .map(|(k, v)| {
                AlterableConfig::default()
                    .with_name(StrBytes::from_string(k.to_string()))
                    .with_config_operation(if v.is_some() { 0 } else { 1 })
                    .with_value(v.clone().map(StrBytes::from_string))
            })
            .collect();
        let resource = AlterConfigsResource::default()
            .with_resource_type(resource_type)
            .with_resource_name(StrBytes::from_string(name.to_string()))
            .with_configs(configs);
        let req = IncrementalAlterConfigsRequest::default().with_resources(vec![resource]);
        let resp = self.call(&req, self.timeout).await?;
        let r = resp
            .responses
            .iter()
            .find(|r| r.resource_type == resource_type && r.resource_name.as_str() == name)
            .with_context(|| {
                format!(
                    "Kafka {}: IncrementalAlterConfigs response lacks {name}",
                    self.addr
                )
            })?;
        if r.error_code != 0 {
            return Err(self
                .api_error(
                    ApiKey::IncrementalAlterConfigs,
                    name,
                    r.error_code,
                    r.error_message.as_ref(),
                )
                .into());
        }
        Ok(())
    }
}
