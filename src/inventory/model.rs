//! The inventory file as written by the user. Every struct denies unknown keys so a typo is an
//! error with a location, never a silently ignored setting.

use serde::Deserialize;
use serde_saphyr::Spanned;
use std::collections::BTreeMap;

pub type S<T> = Spanned<T>;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawInventory {
    /// What runs the brokers: the JVM stack (default) or the nisshi broker.
    pub flavor: Option<S<Flavor>>,
    #[serde(default)]
    pub ssh: SshSettings,
    #[serde(default)]
    pub install_dir: Option<S<String>>,
    /// A directory whose files replace the embedded templates of the same name.
    #[serde(default)]
    pub templates_dir: Option<S<String>>,
    #[serde(deserialize_with = "ordered::deserialize")]
    pub hosts: Vec<(S<String>, RawHost)>,
    pub groups: S<RawGroups>,
    #[serde(default)]
    pub artifacts: ArtifactSettings,
    /// The JVM flavor's sections: absent (not merely empty) in a nisshi inventory.
    pub jdk: Option<S<JdkSettings>>,
    pub zookeeper: Option<S<ZkSettings>>,
    pub kafka: Option<S<KafkaSettings>>,
    pub nisshi: Option<S<NisshiSettings>>,
    /// Topics `apply` creates or grows (it never deletes one unless told to).
    #[serde(default, deserialize_with = "ordered::deserialize")]
    pub topics: Vec<(S<String>, RawTopic)>,
    /// Listener protocols, certificates and the SASL users clusterctl itself logs in as.
    pub security: Option<S<RawSecurity>>,
    /// SCRAM users `apply` creates and updates (passwords from files or the environment).
    #[serde(default, deserialize_with = "ordered::deserialize")]
    pub users: Vec<(S<String>, RawUser)>,
    /// ACLs per user (principal `User:<name>`), converged by `apply`.
    #[serde(default, deserialize_with = "ordered::deserialize")]
    pub acls: Vec<(S<String>, Vec<S<RawAcl>>)>,
}

/// One resource (exactly one of topic, group, transactional_id, cluster) and what the user
/// may do with it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAcl {
    pub topic: Option<S<String>>,
    pub group: Option<S<String>>,
    pub transactional_id: Option<S<String>>,
    pub cluster: Option<S<bool>>,
    /// `literal` (default) or `prefixed`: the name is a prefix.
    pub pattern: Option<S<String>>,
    pub operations: S<Vec<String>>,
    /// `allow` (default) or `deny`.
    pub permission: Option<S<String>>,
    /// The client address the rule applies to; default every host (`*`).
    pub host: Option<S<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSecurity {
    #[serde(default)]
    pub listeners: RawListeners,
    pub tls: Option<S<RawTls>>,
    /// The SCRAM mechanism of the client and inter-broker listeners.
    pub sasl_mechanism: Option<S<String>>,
    /// The user clusterctl's own client logs in as (a super user).
    pub admin_user: Option<S<String>>,
    /// The user brokers and controllers log in to each other as (a super user).
    pub inter_broker_user: Option<S<String>>,
    /// ZooKeeper mode: the ensemble's client port and quorum ports speak TLS only, and every
    /// client shows a certificate of the cluster CA.
    pub zookeeper_tls: Option<S<bool>>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawListeners {
    pub client: Option<S<RawListener>>,
    /// Absent: brokers talk to each other on the client listener.
    pub inter_broker: Option<S<RawListener>>,
    pub controller: Option<S<RawListener>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawListener {
    pub protocol: S<Protocol>,
    pub port: Option<S<i64>>,
}

/// Kafka's `security.protocol` names.
#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Protocol {
    #[serde(rename = "PLAINTEXT")]
    Plaintext,
    #[serde(rename = "SSL")]
    Ssl,
    #[serde(rename = "SASL_PLAINTEXT")]
    SaslPlaintext,
    #[serde(rename = "SASL_SSL")]
    SaslSsl,
}

#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum CaKind {
    Managed,
    Provided,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTls {
    pub ca: S<CaKind>,
    /// managed: where the CA and the issued host certificates live on this machine.
    pub dir: Option<S<String>>,
    pub validity_days: Option<S<i64>>,
    /// provided: PEM files; `{host}` in cert_file and key_file stands for the host's name.
    pub ca_file: Option<S<String>>,
    pub cert_file: Option<S<String>>,
    pub key_file: Option<S<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawUser {
    pub password_file: Option<S<String>>,
    pub password_env: Option<S<String>>,
    pub mechanism: Option<S<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTopic {
    pub partitions: Option<S<i64>>,
    pub replication_factor: Option<S<i64>>,
    #[serde(default)]
    pub configs: BTreeMap<String, PropValue>,
}

#[derive(Debug, Deserialize, Default, Clone)]
#[serde(deny_unknown_fields)]
pub struct SshSettings {
    pub user: Option<S<String>>,
    pub port: Option<S<i64>>,
    pub key: Option<S<String>>,
    pub known_hosts: Option<S<String>>,
    #[serde(rename = "become")]
    pub become_: Option<bool>,
    pub connect_timeout_secs: Option<S<u64>>,
    pub jump: Option<S<String>>,
    /// How ZooKeeper and Kafka ports are reached; default `tunnel` when `jump` applies.
    pub health_checks: Option<S<HealthChecks>>,
}

/// `ssh.health_checks`: every connection clusterctl makes to a host's service ports (probes,
/// the Kafka protocol, the smoke test) goes straight to the address, or through the host's
/// SSH jump host (direct-tcpip).
#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum HealthChecks {
    Tunnel,
    Direct,
}

/// How a host in both groups.kafka and groups.controller runs Kafka.
#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ControllerProcess {
    /// One process with `process.roles=broker,controller`.
    Combined,
    /// A controller process (`kafka-controller`) beside the broker: own port, dirs, node.id.
    Separate,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHost {
    pub address: S<String>,
    #[serde(default)]
    pub ssh: SshSettings,
    pub myid: Option<S<i64>>,
    pub broker_id: Option<S<i64>>,
    /// KRaft `node.id` of a dedicated controller (combined nodes use `broker_id`).
    pub controller_id: Option<S<i64>>,
    /// The broker's rack (`broker.rack`): a failure domain, for rack-aware replica placement
    /// and `restart --rolling --by-rack`.
    pub rack: Option<S<String>>,
    /// The address clients are told to use for this broker, when not `address` (NAT, DNS).
    pub advertised_address: Option<S<String>>,
    #[serde(default)]
    pub zookeeper: HostServiceOverride,
    #[serde(default)]
    pub kafka: HostServiceOverride,
}

/// What a host may override of its group's settings.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct HostServiceOverride {
    pub heap: Option<S<String>>,
    pub jvm_opts: Option<S<JvmOpts>>,
    #[serde(default, deserialize_with = "ordered::deserialize")]
    pub properties: Props,
}

/// Extra `key: value` lines, each key with its location (to reject keys clusterctl manages).
pub type Props = Vec<(S<String>, PropValue)>;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawGroups {
    #[serde(default)]
    pub zookeeper: Vec<S<String>>,
    #[serde(default)]
    pub kafka: Vec<S<String>>,
    /// KRaft controllers; a host also in `kafka` runs combined (broker,controller).
    #[serde(default)]
    pub controller: Vec<S<String>>,
    /// The PostgreSQL host the nisshi brokers share.
    #[serde(default)]
    pub storage: Vec<S<String>>,
}

#[derive(Debug, Deserialize, Default, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Flavor {
    #[default]
    Jvm,
    Nisshi,
}

#[derive(Debug, Deserialize, Default, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum StorageKind {
    #[default]
    Postgres,
    Sqlite,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct NisshiSettings {
    pub version: Option<S<String>>,
    /// A local binary; or `url` + `sha256`; neither: built with `cargo install` and cached.
    pub binary: Option<S<String>>,
    pub url: Option<S<String>>,
    pub sha256: Option<S<String>>,
    pub port: Option<S<i64>>,
    pub cluster_id: Option<S<String>>,
    pub storage: Option<S<StorageKind>>,
    /// An external PostgreSQL instead of the `storage` group's.
    pub storage_url: Option<S<String>>,
    /// RUST_LOG of the brokers.
    pub log: Option<S<String>>,
    #[serde(default, deserialize_with = "ordered::deserialize")]
    pub environment: Vec<(S<String>, PropValue)>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ArtifactSettings {
    pub mirror: Option<String>,
    pub cache_dir: Option<String>,
    pub kafka_tarball: Option<S<String>>,
    pub zookeeper_tarball: Option<S<String>>,
}

#[derive(Debug, Deserialize, Default, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum JdkMethod {
    #[default]
    Package,
    Tarball,
    None,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct JdkSettings {
    pub method: Option<S<JdkMethod>>,
    pub package: Option<String>,
    pub tarball: Option<S<String>>,
    pub java_home: Option<S<String>>,
}

#[derive(Debug, Deserialize, Default, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ZkSource {
    #[default]
    Tarball,
    Kafka,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ZkSettings {
    pub version: Option<S<String>>,
    #[serde(default)]
    pub source: ZkSource,
    pub client_port: Option<S<i64>>,
    pub peer_port: Option<S<i64>>,
    pub election_port: Option<S<i64>>,
    pub data_dir: Option<S<String>>,
    pub data_log_dir: Option<S<String>>,
    pub tick_time: Option<u32>,
    pub init_limit: Option<u32>,
    pub sync_limit: Option<u32>,
    pub max_client_cnxns: Option<u32>,
    pub heap: Option<S<String>>,
    pub jvm_opts: Option<S<JvmOpts>>,
    #[serde(default)]
    pub limits: LimitSettings,
    #[serde(default, deserialize_with = "ordered::deserialize")]
    pub properties: Props,
}

/// What the service's systemd unit gets as LimitNOFILE and MemoryMax.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct LimitSettings {
    pub nofile: Option<S<i64>>,
    pub memory_max: Option<S<String>>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct KafkaSettings {
    pub version: Option<S<String>>,
    pub scala_version: Option<String>,
    pub port: Option<S<i64>>,
    /// KRaft controller listener port.
    pub controller_port: Option<S<i64>>,
    pub controller_process: Option<S<ControllerProcess>>,
    /// KRaft cluster id; generated on first install when not given, then read from the hosts.
    pub cluster_id: Option<S<String>>,
    pub log_dirs: Option<S<Vec<String>>>,
    pub heap: Option<S<String>>,
    pub jvm_opts: Option<S<JvmOpts>>,
    pub num_partitions: Option<u32>,
    pub default_replication_factor: Option<S<i64>>,
    pub offsets_topic_replication_factor: Option<S<i64>>,
    pub transaction_state_log_replication_factor: Option<S<i64>>,
    pub min_insync_replicas: Option<S<i64>>,
    pub log_retention_hours: Option<u32>,
    pub log_segment_bytes: Option<u64>,
    #[serde(default)]
    pub limits: LimitSettings,
    #[serde(default, deserialize_with = "ordered::deserialize")]
    pub properties: Props,
}

/// JVM arguments: a list (each item one argument), or a line split as a shell would.
#[derive(Debug, Deserialize, Clone, PartialEq)]
#[serde(untagged)]
pub enum JvmOpts {
    List(Vec<String>),
    Line(String),
}

/// A property value as YAML gives it; rendered as text into .properties / zoo.cfg.
#[derive(Debug, Deserialize, Clone, PartialEq)]
#[serde(untagged)]
pub enum PropValue {
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
}

impl std::fmt::Display for PropValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PropValue::Bool(b) => write!(f, "{b}"),
            PropValue::Int(i) => write!(f, "{i}"),
            PropValue::Float(x) => write!(f, "{x}"),
            PropValue::Str(s) => f.write_str(s),
        }
    }
}

/// Hosts and topics keep the order of the file (a map would sort them); duplicate names are
/// already rejected by the YAML parser.
mod ordered {
    use super::S;
    use serde::Deserialize;
    use serde::de::{Deserializer, MapAccess, Visitor};
    use std::fmt;
    use std::marker::PhantomData;

    pub fn deserialize<'de, D, V>(d: D) -> Result<Vec<(S<String>, V)>, D::Error>
    where
        D: Deserializer<'de>,
        V: Deserialize<'de>,
    {
        struct Entries<V>(PhantomData<V>);
        impl<'de, V: Deserialize<'de>> Visitor<'de> for Entries<V> {
            type Value = Vec<(S<String>, V)>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a map of names to settings")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::new();
                while let Some(entry) = m.next_entry()? {
                    out.push(entry);
                }
                Ok(out)
            }
        }
        d.deserialize_map(Entries(PhantomData))
    }
}
