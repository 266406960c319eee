//! The inventory: parsed from YAML, checked before any host is touched, resolved into the
//! cluster model the rest of the tool works from.

mod diag;
pub mod ids;
mod model;
mod nisshi;
mod scalars;
pub mod security;
mod ssh_config;
mod validate;

pub use diag::{Diag, Severity};
#[cfg(test)]
pub use model::Protocol;
pub use model::{ControllerProcess, Flavor, JdkMethod, ZkSource};
#[cfg(test)]
pub use security::SecretSource;
pub use security::{SaslMech, Security, Tls, User};

use crate::transport::SshTarget;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub const DEFAULT_MIRROR: &str = "https://archive.apache.org/dist";
pub const DEFAULT_ZOOKEEPER_VERSION: &str = "3.8.4";
pub const DEFAULT_KAFKA_VERSION: &str = "3.9.1";

#[derive(Debug, Clone)]
pub struct Inventory {
    pub file: PathBuf,
    pub install_dir: String,
    pub templates_dir: Option<PathBuf>,
    pub hosts: Vec<Host>,
    pub artifacts: Artifacts,
    pub jdk: Jdk,
    pub zookeeper: ZkConfig,
    pub kafka: KafkaConfig,
    pub topics: Vec<TopicSpec>,
    pub flavor: Flavor,
    /// Set exactly when `flavor` is nisshi.
    pub nisshi: Option<NisshiConfig>,
    /// `None`: every listener PLAINTEXT, no authentication (the files as before `security`).
    pub security: Option<Security>,
    pub users: Vec<User>,
    /// Declared ACLs, one binding per operation.
    pub acls: Vec<crate::health::kafka::AclBinding>,
    pub warnings: Vec<Diag>,
}

pub const DEFAULT_NISSHI_VERSION: &str = "0.8.1";

/// The nisshi broker: one binary per host, stateless, sharing one store.
#[derive(Debug, Clone)]
pub struct NisshiConfig {
    pub version: String,
    pub binary: BinarySource,
    pub port: u16,
    pub cluster_id: String,
    pub storage: Storage,
    pub log: String,
    /// Extra environment variables for the broker.
    pub environment: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum BinarySource {
    /// A binary on the operator's machine, optionally with the sha256 it must have.
    Path {
        path: PathBuf,
        sha256: Option<String>,
    },
    Url {
        url: String,
        sha256: String,
    },
    /// `cargo install nisshi --version V --locked`, once, cached under artifacts.cache_dir.
    Cargo,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Storage {
    /// PostgreSQL installed and run by clusterctl on the `storage` group's host.
    ManagedPostgres,
    /// A PostgreSQL URL the operator runs (a secret: never printed).
    ExternalPostgres(String),
    /// A file in the broker's working directory: one broker only.
    Sqlite,
}

/// A topic the inventory declares.
#[derive(Debug, Clone, PartialEq)]
pub struct TopicSpec {
    pub name: String,
    pub partitions: i32,
    pub replication_factor: i16,
    pub configs: BTreeMap<String, String>,
}

#[derive(Debug, Clone)]
pub struct Host {
    pub name: String,
    pub address: String,
    pub ssh: SshTarget,
    /// The `~/.ssh/config` keywords that gave `ssh` a setting (for `validate -v`).
    pub ssh_from_config: Vec<&'static str>,
    /// Reach this host's service ports through `ssh.jump` (`ssh.health_checks: tunnel`).
    pub tunnel_checks: bool,
    pub in_zookeeper: bool,
    /// A Kafka broker (group `kafka`).
    pub in_kafka: bool,
    /// A KRaft controller (group `controller`); combined when also a broker.
    pub in_controller: bool,
    /// Runs the PostgreSQL that nisshi brokers share (group `storage`).
    pub in_storage: bool,
    pub myid: Option<i64>,
    pub broker_id: Option<i64>,
    pub controller_id: Option<i64>,
    /// `broker.rack` of a broker; either every broker has one or none does.
    pub rack: Option<String>,
    /// What `advertised.listeners` names for the client listener (default: `address`).
    pub advertised_address: Option<String>,
    pub zookeeper: ServiceOverride,
    pub kafka: ServiceOverride,
    /// `Some(machine)`: the KRaft controller process that `kafka.controller_process: separate`
    /// runs beside the broker of host `machine` (same SSH target and address, service
    /// `kafka-controller` with its own files, dirs and node.id). The machine's own host does
    /// the machine-wide steps (users, JDK, unpacking) for both.
    pub side_of: Option<String>,
}

/// The service (and directories) of a controller beside a broker on one machine.
pub const SIDE_CONTROLLER: &str = "kafka-controller";

/// What a host overrides of its group's settings.
#[derive(Debug, Clone, Default)]
pub struct ServiceOverride {
    pub heap: Option<String>,
    pub jvm_opts: Option<Vec<String>>,
    pub properties: BTreeMap<String, String>,
}

impl Host {
    /// Runs the Kafka process: as a broker, a KRaft controller, or both.
    pub fn runs_kafka(&self) -> bool {
        self.in_kafka || self.in_controller
    }

    /// The name of this host's Kafka service, its unit and its directories' last part.
    pub fn kafka_name(&self) -> &'static str {
        match self.side_of {
            Some(_) => SIDE_CONTROLLER,
            None => "kafka",
        }
    }

    /// `/etc/kafka/server.properties` (or the side controller's).
    pub fn server_properties(&self) -> String {
        format!("/etc/{}/server.properties", self.kafka_name())
    }

    /// The address clients reach this broker at: `advertised_address`, else `address`.
    pub fn client_address(&self) -> &str {
        self.advertised_address.as_deref().unwrap_or(&self.address)
    }

    /// False for a host that is only a jump host: no step touches it.
    pub fn in_a_group(&self) -> bool {
        self.in_zookeeper || self.runs_kafka() || self.in_storage
    }
}

#[derive(Debug, Clone)]
pub struct Artifacts {
    pub mirror: String,
    pub cache_dir: PathBuf,
    pub kafka_tarball: Option<PathBuf>,
    pub zookeeper_tarball: Option<PathBuf>,
}

#[derive(Debug, Clone)]
pub struct Jdk {
    pub method: JdkMethod,
    /// Package name override; `None` picks the default for the host's package manager.
    pub package: Option<String>,
    pub tarball: Option<PathBuf>,
    pub java_home: Option<String>,
}

#[derive(Debug, Clone)]
pub struct ZkConfig {
    pub version: String,
    pub source: ZkSource,
    pub client_port: u16,
    pub peer_port: u16,
    pub election_port: u16,
    pub data_dir: String,
    pub data_log_dir: String,
    pub tick_time: u32,
    pub init_limit: u32,
    pub sync_limit: u32,
    pub max_client_cnxns: u32,
    pub heap: String,
    pub jvm_opts: Vec<String>,
    pub limits: Limits,
    pub properties: BTreeMap<String, String>,
}

/// A service's resource limits, as its systemd unit sets them (the SysV init script raises
/// the soft open-files limit to the hard one instead).
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    pub nofile: u64,
    /// systemd's MemoryMax, as systemd writes sizes (`2G`); `None`: no memory limit.
    pub memory_max: Option<String>,
}

/// What the unit had before the inventory could say: a file per segment and connection.
pub const DEFAULT_NOFILE: u64 = 100_000;

impl Default for Limits {
    fn default() -> Self {
        Limits {
            nofile: DEFAULT_NOFILE,
            // No cap by default: Kafka leans on the page cache, which a cgroup limit counts
            // and would squeeze, and a cap derived from the heap would OOM-kill a JVM whose
            // off-heap use (direct buffers, metaspace, threads) grows with load.
            memory_max: None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct KafkaConfig {
    pub version: String,
    pub scala_version: String,
    /// KRaft mode (group `controller` is not empty) rather than ZooKeeper mode.
    pub kraft: bool,
    /// KRaft with a dynamic controller quorum (KIP-853: `controller.quorum.bootstrap.servers`,
    /// voters changed with AddRaftVoter/RemoveRaftVoter). Not an inventory key: a new cluster
    /// gets one on Kafka 3.9+, and an existing cluster keeps what its hosts run (set by the
    /// plan from the facts).
    pub dynamic_quorum: bool,
    /// ZooKeeper to KRaft: groups.zookeeper and groups.controller are both set, a cluster
    /// `clusterctl migrate` moves (`kraft` is false: ZooKeeper holds the metadata until then).
    pub migrating: bool,
    /// The migration stage the files are rendered for: set by `clusterctl migrate` for each
    /// phase it runs; `None` renders the first (controllers added, brokers as they were).
    pub stage: Option<MigrationStage>,
    pub port: u16,
    pub controller_port: u16,
    /// Hosts in both groups.kafka and groups.controller: one process, or a controller beside
    /// the broker (expanded into a host of its own, `Host::side_of`).
    pub controller_process: ControllerProcess,
    pub cluster_id: Option<String>,
    pub log_dirs: Vec<String>,
    pub heap: String,
    pub jvm_opts: Vec<String>,
    pub num_partitions: u32,
    pub default_replication_factor: u32,
    pub offsets_topic_replication_factor: u32,
    pub transaction_state_log_replication_factor: u32,
    pub min_insync_replicas: u32,
    pub log_retention_hours: u32,
    pub log_segment_bytes: u64,
    pub limits: Limits,
    pub properties: BTreeMap<String, String>,
}

/// What the files of a migrating cluster say, phase by phase (Kafka 3.9's
/// `ops.html#kraft_zk_migration`). Ordered: a later stage is further along.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum MigrationStage {
    /// Controllers in migration mode (`zookeeper.metadata.migration.enable`); brokers as
    /// they were, in ZooKeeper mode.
    Controllers,
    /// Brokers still in ZooKeeper mode with the migration flag and the controller quorum.
    BrokersMigrating,
    /// Brokers in KRaft (`process.roles=broker`); controllers still write to ZooKeeper: the
    /// soak point, the last one from which a rollback is possible.
    BrokersKraft,
    /// Controllers without ZooKeeper: the files a KRaft inventory of the same hosts renders.
    /// Not reversible once the controllers run them.
    Finalized,
}

impl KafkaConfig {
    /// Whether Kafka on `host` runs as a KRaft node: always in KRaft mode; during a migration,
    /// a controller from the start and a broker from BrokersKraft on.
    pub fn kraft_on(&self, host: &Host) -> bool {
        let stage = self.stage.unwrap_or(MigrationStage::Controllers);
        self.kraft
            || (self.migrating && (host.in_controller || stage >= MigrationStage::BrokersKraft))
    }
}

impl Inventory {
    pub fn zookeeper_hosts(&self) -> impl Iterator<Item = &Host> {
        self.hosts.iter().filter(|h| h.in_zookeeper)
    }

    pub fn kafka_hosts(&self) -> impl Iterator<Item = &Host> {
        self.hosts.iter().filter(|h| h.in_kafka)
    }

    pub fn controller_hosts(&self) -> impl Iterator<Item = &Host> {
        self.hosts.iter().filter(|h| h.in_controller)
    }

    /// Where Kafka on `host` keeps its log dirs: `kafka.log_dirs`, or the side controller's
    /// own metadata log.
    pub fn kafka_log_dirs(&self, host: &Host) -> Vec<String> {
        match host.side_of {
            Some(_) => vec![format!("/var/lib/{SIDE_CONTROLLER}/data")],
            None => self.kafka.log_dirs.clone(),
        }
    }

    /// (address, jump host) of every host whose service ports are reached through its bastion.
    pub fn tunnels(&self) -> Vec<(String, SshTarget)> {
        self.hosts
            .iter()
            .filter(|h| h.tunnel_checks)
            .filter_map(|h| Some((h.address.clone(), h.ssh.jump.as_deref()?.clone())))
            .collect()
    }

    pub fn storage_host(&self) -> Option<&Host> {
        self.hosts.iter().find(|h| h.in_storage)
    }

    pub fn host(&self, name: &str) -> Option<&Host> {
        self.hosts.iter().find(|h| h.name == name)
    }

    /// `host1:2181,host2:2181,...` in inventory order.
    pub fn zookeeper_connect(&self) -> String {
        self.zookeeper_hosts()
            .map(|h| format!("{}:{}", h.address, self.zookeeper.client_port))
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// Every problem found, errors and warnings, in file order.
#[derive(Debug)]
pub struct InventoryError {
    pub diags: Vec<Diag>,
}

impl std::fmt::Display for InventoryError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, d) in self.diags.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

impl std::error::Error for InventoryError {}

/// Where the inventory is when the user names none: $CLUSTERCTL_INVENTORY, else ./inventory.yaml.
pub fn default_path(given: Option<PathBuf>) -> PathBuf {
    given
        .or_else(|| std::env::var_os("CLUSTERCTL_INVENTORY").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("inventory.yaml"))
}

/// Read, parse, validate and resolve an inventory. Touches no network.
pub fn load(path: &Path) -> Result<Inventory, InventoryError> {
    let text = std::fs::read_to_string(path).map_err(|e| InventoryError {
        diags: vec![Diag {
            severity: Severity::Error,
            file: path.to_path_buf(),
            line: 0,
            column: 0,
            message: format!("cannot read the inventory: {e}"),
            hint: Some(
                "pass the inventory path, set $CLUSTERCTL_INVENTORY, or create ./inventory.yaml"
                    .into(),
            ),
        }],
    })?;
    parse(path, &text)
}

/// Parse and validate inventory text; `path` is used for messages and relative paths.
pub fn parse(path: &Path, text: &str) -> Result<Inventory, InventoryError> {
    let raw: model::RawInventory = serde_saphyr::from_str(text).map_err(|e| InventoryError {
        diags: vec![parse_diag(path, &e)],
    })?;
    let ssh_config = match ssh_config::default_path() {
        Some(p) => ssh_config::load(&p),
        None => Ok(None),
    };
    resolve_checked(path, text, raw, ssh_config)
}

/// `parse` with the operator's SSH config given as text (tests).
#[cfg(test)]
pub fn parse_with_ssh_config(
    path: &Path,
    text: &str,
    ssh_config: &str,
) -> Result<Inventory, InventoryError> {
    let raw: model::RawInventory = serde_saphyr::from_str(text).map_err(|e| InventoryError {
        diags: vec![parse_diag(path, &e)],
    })?;
    resolve_checked(path, text, raw, ssh_config::parse(ssh_config).map(Some))
}

fn resolve_checked(
    path: &Path,
    text: &str,
    raw: model::RawInventory,
    ssh_config: Result<Option<ssh2_config::SshConfig>, String>,
) -> Result<Inventory, InventoryError> {
    let mut d = diag::Diags::new(path);
    scalars::refuse_control_chars(&mut d, text);
    match validate::resolve(path, raw, ssh_config) {
        Ok(inv) if d.items.is_empty() => Ok(inv),
        Ok(_) => Err(InventoryError { diags: d.items }),
        Err(mut e) => {
            d.items.append(&mut e.diags);
            Err(InventoryError { diags: d.items })
        }
    }
}

fn parse_diag(path: &Path, e: &serde_saphyr::Error) -> Diag {
    let loc = e.location();
    let mut message = e.without_snippet().to_string();
    // The parser prefixes "line X column Y: " itself; we print file:line:col in front instead.
    if let Some(rest) = message.strip_prefix("line ")
        && let Some(i) = rest.find(": ")
    {
        message = rest[i + 2..].to_string();
    }
    if let Some(i) = message.rfind(" at line ") {
        message.truncate(i);
    }
    let hint = if message.contains("unknown field") {
        "check the spelling; inventories/example.yaml lists every key"
    } else if message.contains("duplicate") {
        "each host name and key may appear only once"
    } else {
        "see inventories/example.yaml for the format"
    };
    Diag {
        severity: Severity::Error,
        file: path.to_path_buf(),
        line: loc.map(|l| l.line()).unwrap_or(0),
        column: loc.map(|l| l.column()).unwrap_or(0),
        message,
        hint: Some(hint.into()),
    }
}

/// `~/x` and paths relative to the inventory's directory become absolute.
pub fn expand_path(inventory: &Path, p: &str) -> PathBuf {
    if let Some(rest) = p.strip_prefix("~/")
        && let Some(home) = std::env::var_os("HOME")
    {
        return PathBuf::from(home).join(rest);
    }
    let pb = PathBuf::from(p);
    if pb.is_absolute() {
        pb
    } else {
        inventory
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."))
            .join(pb)
    }
}

pub(crate) fn default_connect_timeout() -> Duration {
    Duration::from_secs(10)
}

#[cfg(test)]
mod tests;
