//! The services clusterctl runs, and how each is launched: main class, classpath from the
//! unpacked jars, its own user, PID file, logs. Shared by rendering, the engine and status.

use crate::artifacts::{Product, layout};
use crate::inventory::{Host, Inventory, ZkSource};

/// `/opt/kafka_2.13-3.9.1`: where this inventory's version of a product is unpacked.
pub fn install_path(inv: &Inventory, product: Product) -> String {
    let version = match product {
        Product::Kafka => &inv.kafka.version,
        Product::ZooKeeper => &inv.zookeeper.version,
    };
    let (_, _, name) = layout(product, version, &inv.kafka.scala_version);
    format!("{}/{name}", inv.install_dir)
}
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum Service {
    ZooKeeper,
    Kafka,
    /// The nisshi broker (flavor nisshi).
    Nisshi,
}

impl Service {
    pub fn name(self) -> &'static str {
        match self {
            Service::ZooKeeper => "zookeeper",
            Service::Kafka => "kafka",
            Service::Nisshi => "nisshi",
        }
    }
}

impl std::fmt::Display for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct ServiceDef {
    #[serde(skip)]
    pub service: Service,
    pub name: &'static str,
    pub user: &'static str,
    pub description: &'static str,
    /// What the live process's command line contains: the JVM main class, or `nisshi broker`.
    pub main_class: &'static str,
    /// The command the init script runs, as words (after sourcing the env file).
    pub launch: Vec<String>,
    /// systemd's ExecStart (plain words: install paths are validated to plain characters).
    pub exec_start: String,
    /// The process's working directory (nisshi resolves a sqlite path against it).
    pub work_dir: String,
    pub classpath: String,
    pub args: Vec<String>,
    pub heap: String,
    /// The inventory's JVM arguments (the renderer adds heap, GC and logging ones).
    pub jvm_opts: Vec<String>,
    pub log_dir: String,
    /// The file the service's logging library writes (`None`: only stdout, in `<name>.out`).
    pub log_file: Option<String>,
    pub env_file: String,
    pub pid_file: String,
    pub stop_timeout: u32,
    /// systemd's LimitNOFILE and MemoryMax (the inventory's `<service>.limits`).
    pub nofile: u64,
    pub memory_max: Option<String>,
    /// SysV priorities: ZooKeeper starts before and stops after Kafka.
    pub start_priority: u32,
    pub stop_priority: u32,
    /// The service this one starts after ("" for none).
    pub after: &'static str,
}

/// `/opt/nisshi-0.8.1/nisshi`: a versioned path, so a new version changes the env file (and
/// restarts the broker) while the running one keeps its binary.
pub fn nisshi_binary(inv: &Inventory) -> String {
    let version = inv.nisshi.as_ref().map_or("", |n| &n.version);
    format!("{}/nisshi-{version}/nisshi", inv.install_dir)
}

pub const NISSHI_DATA_DIR: &str = "/var/lib/nisshi";

/// Starts a JVM service from its env file (templates/run-java.sh.j2).
pub fn jvm_launcher(name: &str) -> String {
    format!("/usr/local/lib/clusterctl/run-{name}")
}

impl ServiceDef {
    pub fn new(service: Service, inv: &Inventory, host: &Host) -> Self {
        let name = match service {
            Service::Kafka => host.kafka_name(),
            _ => service.name(),
        };
        let log_dir = format!("/var/log/{name}");
        match service {
            Service::Nisshi => {
                let bin = nisshi_binary(inv);
                ServiceDef {
                    service,
                    name,
                    user: "nisshi",
                    description: "nisshi Kafka-compatible broker",
                    main_class: "nisshi broker",
                    launch: vec![super::SUPERVISE.into(), bin.clone(), "broker".into()],
                    exec_start: format!("{bin} broker"),
                    work_dir: NISSHI_DATA_DIR.into(),
                    classpath: String::new(),
                    args: vec![],
                    heap: String::new(),
                    jvm_opts: vec![],
                    log_dir,
                    log_file: None,
                    env_file: "/etc/nisshi/nisshi.env".into(),
                    pid_file: "/var/run/nisshi/nisshi.pid".into(),
                    // It waits at most 5 s for open connections on SIGTERM.
                    stop_timeout: 30,
                    nofile: crate::inventory::DEFAULT_NOFILE,
                    memory_max: None,
                    start_priority: 30,
                    stop_priority: 70,
                    after: "",
                }
            }
            Service::ZooKeeper => {
                // The versioned directory, not the stable symlink: a running JVM keeps finding its
                // jars while an upgrade swaps the symlink, and a new version changes this file,
                // which is what restarts the service.
                let lib = match inv.zookeeper.source {
                    ZkSource::Tarball => format!("{}/lib/*", install_path(inv, Product::ZooKeeper)),
                    ZkSource::Kafka => format!("{}/libs/*", install_path(inv, Product::Kafka)),
                };
                ServiceDef {
                    service,
                    name,
                    user: "zookeeper",
                    description: "Apache ZooKeeper",
                    main_class: "org.apache.zookeeper.server.quorum.QuorumPeerMain",
                    launch: vec![jvm_launcher(name)],
                    exec_start: jvm_launcher(name),
                    work_dir: log_dir.clone(),
                    classpath: format!("/etc/zookeeper:{lib}"),
                    args: vec!["/etc/zookeeper/zoo.cfg".into()],
                    heap: host
                        .zookeeper
                        .heap
                        .clone()
                        .unwrap_or_else(|| inv.zookeeper.heap.clone()),
                    jvm_opts: host
                        .zookeeper
                        .jvm_opts
                        .clone()
                        .unwrap_or_else(|| inv.zookeeper.jvm_opts.clone()),
                    log_file: Some(format!("{log_dir}/zookeeper.log")),
                    log_dir,
                    env_file: "/etc/zookeeper/zookeeper.env".into(),
                    pid_file: "/var/run/zookeeper/zookeeper.pid".into(),
                    stop_timeout: 60,
                    nofile: inv.zookeeper.limits.nofile,
                    memory_max: inv.zookeeper.limits.memory_max.clone(),
                    start_priority: 20,
                    stop_priority: 80,
                    after: "",
                }
            }
            Service::Kafka => ServiceDef {
                service,
                name,
                user: "kafka",
                description: match (host.in_kafka, host.in_controller) {
                    (true, true) => "Apache Kafka broker and KRaft controller",
                    (false, true) => "Apache Kafka KRaft controller",
                    _ => "Apache Kafka broker",
                },
                main_class: "kafka.Kafka",
                launch: vec![jvm_launcher(name)],
                exec_start: jvm_launcher(name),
                work_dir: log_dir.clone(),
                classpath: format!("{}/libs/*", install_path(inv, Product::Kafka)),
                args: vec![host.server_properties()],
                heap: host
                    .kafka
                    .heap
                    .clone()
                    .unwrap_or_else(|| inv.kafka.heap.clone()),
                jvm_opts: host
                    .kafka
                    .jvm_opts
                    .clone()
                    .unwrap_or_else(|| inv.kafka.jvm_opts.clone()),
                log_file: Some(format!("{log_dir}/server.log")),
                log_dir,
                env_file: format!("/etc/{name}/{name}.env"),
                pid_file: format!("/var/run/{name}/{name}.pid"),
                // Controlled shutdown moves leadership away first; it can take a while.
                stop_timeout: 180,
                nofile: inv.kafka.limits.nofile,
                memory_max: inv.kafka.limits.memory_max.clone(),
                start_priority: 30,
                stop_priority: 70,
                // Only a ZooKeeper-mode broker needs its ensemble member up first.
                after: if host.in_zookeeper && !inv.kafka.kraft_on(host) {
                    "zookeeper"
                } else {
                    ""
                },
            },
        }
    }
}
