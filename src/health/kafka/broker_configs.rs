//! A broker's own configs over the admin API, as [`KafkaClient`] methods: DescribeConfigs
//! (with synonyms, so the value a broker started with shows beside its dynamic overrides) and
//! IncrementalAlterConfigs on resource BROKER with the broker's id as name (a per-broker
//! dynamic config, stored by Kafka in ZooKeeper or the KRaft metadata log).
//!
//! Kafka answers both only on the broker itself: a BROKER resource naming another broker's id
//! is refused (`Unexpected broker id`), so the client must be connected to that broker.
//! DescribeConfigs and IncrementalAlterConfigs are registered as [`super::Call`]s by the
//! topic admin module (an impl is crate-wide), and sent through the same `KafkaClient::call`.

use std::collections::BTreeMap;

use anyhow::{Context, Result};
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::describe_configs_response::DescribeConfigsResult;
use kafka_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource, AlterableConfig,
};
use kafka_protocol::messages::{ApiKey, DescribeConfigsRequest, IncrementalAlterConfigsRequest};
use kafka_protocol::protocol::StrBytes;

use super::KafkaClient;

/// `ConfigResource.Type.BROKER`.
const RESOURCE_BROKER: i8 = 4;
/// `DescribeConfigsResponse.ConfigSource`.
pub const SOURCE_DYNAMIC_BROKER: i8 = 2;
pub const SOURCE_DYNAMIC_DEFAULT_BROKER: i8 = 3;
pub const SOURCE_STATIC_BROKER: i8 = 4;
/// `AlterConfigOp.OpType` SET and DELETE.
const OP_SET: i8 = 0;
const OP_DELETE: i8 = 1;

/// One config of one broker, with where each layer of it comes from. Kafka's precedence:
/// per-broker dynamic, then cluster-wide dynamic default, then server.properties as read at
/// startup, then the built-in default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BrokerConfig {
    /// The value in effect; `None` for a sensitive config (never returned) or one unset.
    pub value: Option<String>,
    /// Where the value in effect comes from (`SOURCE_*`).
    pub source: i8,
    /// The per-broker dynamic override (DYNAMIC_BROKER_CONFIG) of this very name.
    pub per_broker: Option<String>,
    /// The cluster-wide dynamic default (DYNAMIC_DEFAULT_BROKER_CONFIG) of this name.
    pub cluster_default: Option<String>,
    /// What the broker read for this name from its server.properties when it started.
    pub static_value: Option<String>,
}

impl KafkaClient {
    /// The configs `keys` of broker `broker`, which this client must be connected to. A key
    /// the broker does not know is absent from the answer.
    pub async fn describe_broker_configs(
        &mut self,
        broker: i32,
        keys: &[String],
    ) -> Result<BTreeMap<String, BrokerConfig>> {
        let name = broker.to_string();
        let req = describe_request(&name, keys);
        let resp = self.call(&req, self.timeout).await?;
        let result = resp
            .results
            .iter()
            .find(|r| r.resource_type == RESOURCE_BROKER && r.resource_name.as_str() == name)
            .with_context(|| {
                format!(
                    "Kafka {}: DescribeConfigs response lacks broker {name}",
                    self.addr
                )
            })?;
        if result.error_code != 0 {
            return Err(self
                .api_error(
                    ApiKey::DescribeConfigs,
                    &format!("broker {name}"),
                    result.error_code,
                    result.error_message.as_ref(),
                )
                .into());
        }
        Ok(broker_configs(result))
    }

    /// Sets and deletes per-broker dynamic configs of `broker` (this client's broker) in one
    /// IncrementalAlterConfigs call; the broker validates the whole change against its running
    /// config and applies all or nothing. `validate_only`: only ask whether it would.
    pub async fn alter_broker_configs(
        &mut self,
        broker: i32,
        set: &[(String, String)],
        delete: &[String],
        validate_only: bool,
    ) -> Result<()> {
        let name = broker.to_string();
        let req = alter_request(&name, set, delete, validate_only);
        let resp = self.call(&req, self.timeout).await?;
        let result = resp
            .responses
            .iter()
            .find(|r| r.resource_type == RESOURCE_BROKER && r.resource_name.as_str() == name)
            .with_context(|| {
                format!(
                    "Kafka {}: IncrementalAlterConfigs response lacks broker {name}",
                    self.addr
                )
            })?;
        if result.error_code != 0 {
            return Err(self
                .api_error(
                    ApiKey::IncrementalAlterConfigs,
                    &format!("broker {name}"),
                    result.error_code,
                    result.error_message.as_ref(),
                )
                .into());
        }
        Ok(())
    }
}

fn describe_request(name: &str, keys: &[String]) -> DescribeConfigsRequest {
    let resource = DescribeConfigsResource::default()
        .with_resource_type(RESOURCE_BROKER)
        .with_resource_name(StrBytes::from_string(name.to_string()))
        .with_configuration_keys(Some(
            keys.iter()
                .map(|k| StrBytes::from_string(k.clone()))
                .collect(),
        ));
    DescribeConfigsRequest::default()
        .with_resources(vec![resource])
        .with_include_synonyms(true)
}

fn alter_request(
    name: &str,
    set: &[(String, String)],
    delete: &[String],
    validate_only: bool,
) -> IncrementalAlterConfigsRequest {
    let configs = set
        .iter()
        .map(|(k, v)| {
            AlterableConfig::default()
                .with_name(StrBytes::from_string(k.clone()))
                .with_config_operation(OP_SET)
                .with_value(Some(StrBytes::from_string(v.clone())))
        })
        .chain(delete.iter().map(|k| {
            AlterableConfig::default()
                .with_name(StrBytes::from_string(k.clone()))
                .with_config_operation(OP_DELETE)
                .with_value(None)
        }))
        .collect();
    let resource = AlterConfigsResource::default()
        .with_resource_type(RESOURCE_BROKER)
        .with_resource_name(StrBytes::from_string(name.to_string()))
        .with_configs(configs);
    IncrementalAlterConfigsRequest::default()
        .with_resources(vec![resource])
        .with_validate_only(validate_only)
}

/// Each config by name, its layers read from its synonyms (those of the same name: a synonym
/// such as `log.retention.hours` for `log.retention.ms` is another key of server.properties).
fn broker_configs(result: &DescribeConfigsResult) -> BTreeMap<String, BrokerConfig> {
    result
        .configs
        .iter()
        .map(|c| {
            let layer = |source: i8| {
                c.synonyms
                    .iter()
                    .find(|s| s.source == source && s.name == c.name)
                    .map(|s| s.value.as_ref().map_or(String::new(), |v| v.to_string()))
            };
            let entry = BrokerConfig {
                value: c.value.as_ref().map(|v| v.to_string()),
                source: c.config_source,
                per_broker: layer(SOURCE_DYNAMIC_BROKER),
                cluster_default: layer(SOURCE_DYNAMIC_DEFAULT_BROKER),
                static_value: layer(SOURCE_STATIC_BROKER),
            };
            (c.name.to_string(), entry)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::encode_request;
    use super::*;
    use kafka_protocol::messages::describe_configs_response::{
        DescribeConfigsResourceResult, DescribeConfigsSynonym,
    };

    /// A built-in default.
    const SOURCE_DEFAULT: i8 = 5;

    fn s(v: &str) -> StrBytes {
        StrBytes::from_string(v.to_string())
    }

    #[test]
    fn describe_asks_for_the_keys_of_one_broker_with_synonyms() {
        let req = describe_request("3", &["message.max.bytes".into()]);
        let r = &req.resources[0];
        assert_eq!((r.resource_type, r.resource_name.as_str()), (4, "3"));
        let keys: Vec<&str> = r
            .configuration_keys
            .as_ref()
            .unwrap()
            .iter()
            .map(|k| k.as_str())
            .collect();
        assert_eq!(keys, ["message.max.bytes"]);
        assert!(req.include_synonyms);
        // v1 (Kafka 2.0) to v4, every version a supported broker may pick.
        for v in 1..=4 {
            assert!(encode_request(&req, v, 1).is_ok(), "v{v}");
        }
    }

    #[test]
    fn alter_sets_and_deletes_on_the_brokers_own_resource() {
        let req = alter_request(
            "2",
            &[("log.cleaner.threads".into(), "2".into())],
            &["message.max.bytes".into()],
            true,
        );
        assert!(req.validate_only);
        let r = &req.resources[0];
        assert_eq!((r.resource_type, r.resource_name.as_str()), (4, "2"));
        let ops: Vec<_> = r
            .configs
            .iter()
            .map(|c| {
                (
                    c.name.as_str(),
                    c.config_operation,
                    c.value.as_ref().map(|v| v.as_str()),
                )
            })
            .collect();
        assert_eq!(
            ops,
            [
                ("log.cleaner.threads", OP_SET, Some("2")),
                ("message.max.bytes", OP_DELETE, None)
            ]
        );
        for v in 0..=1 {
            assert!(encode_request(&req, v, 1).is_ok(), "v{v}");
        }
    }

    #[test]
    fn layers_come_from_synonyms_of_the_same_name() {
        let syn = |name: &str, value: &str, source: i8| {
            DescribeConfigsSynonym::default()
                .with_name(s(name))
                .with_value(Some(s(value)))
                .with_source(source)
        };
        let result = DescribeConfigsResult::default().with_configs(vec![
            DescribeConfigsResourceResult::default()
                .with_name(s("message.max.bytes"))
                .with_value(Some(s("2000000")))
                .with_config_source(SOURCE_DYNAMIC_BROKER)
                .with_synonyms(vec![
                    syn("message.max.bytes", "2000000", SOURCE_DYNAMIC_BROKER),
                    syn(
                        "message.max.bytes",
                        "1500000",
                        SOURCE_DYNAMIC_DEFAULT_BROKER,
                    ),
                    syn("message.max.bytes", "1000012", SOURCE_STATIC_BROKER),
                    syn("message.max.bytes", "1048588", SOURCE_DEFAULT),
                ]),
            DescribeConfigsResourceResult::default()
                .with_name(s("log.retention.ms"))
                .with_value(None)
                .with_config_source(SOURCE_STATIC_BROKER)
                .with_synonyms(vec![syn(
                    "log.retention.hours",
                    "168",
                    SOURCE_STATIC_BROKER,
                )]),
        ]);
        let c = broker_configs(&result);
        assert_eq!(
            c["message.max.bytes"],
            BrokerConfig {
                value: Some("2000000".into()),
                source: SOURCE_DYNAMIC_BROKER,
                per_broker: Some("2000000".into()),
                cluster_default: Some("1500000".into()),
                static_value: Some("1000012".into()),
            }
        );
        // Its value comes from log.retention.hours: log.retention.ms itself is not in the file.
        let r = &c["log.retention.ms"];
        assert_eq!(
            (r.per_broker.as_ref(), r.static_value.as_ref()),
            (None, None)
        );
    }
}
