//! Desired files per host, rendered from templates embedded in the binary (or overridden from
//! the inventory's `templates_dir`). Pure: no network, so `render` and `--dry-run` are offline.

pub mod logging;
pub mod security;
pub mod services;

pub use logging::{Backend, Logging};
pub use services::{Service, ServiceDef};

use crate::inventory::{Host, Inventory, JdkMethod, MigrationStage};
use anyhow::{Context, Result};
use minijinja::{Environment, UndefinedBehavior, context};
use std::collections::BTreeMap;

pub const ACL_AUTHORIZER: &str = "kafka.security.authorizer.AclAuthorizer";
pub const STANDARD_AUTHORIZER: &str = "org.apache.kafka.metadata.authorizer.StandardAuthorizer";

/// Restarts a process that fails, on hosts without systemd (see templates/supervise.sh.j2).
pub const SUPERVISE: &str = "/usr/local/lib/clusterctl/supervise";

/// The managed PostgreSQL's certificate, the only one a nisshi broker trusts for its store.
pub const STORAGE_CA: &str = "/etc/nisshi/storage-ca.pem";

/// How a nisshi broker reaches its store: STORAGE_ENGINE (holds the password) and the
/// certificate to trust for it, if clusterctl made one.
#[derive(Debug, Clone)]
pub struct StorageAccess {
    pub url: String,
    pub ca_pem: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ManagedFile {
    pub path: String,
    pub content: String,
    pub mode: u32,
    pub owner: String,
    pub group: String,
    /// The service to restart when this file changes.
    pub restarts: Option<Service>,
    /// Whole content secret (a private key): plans and diffs never show it.
    pub secret: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InitSystem {
    Systemd,
    SysV,
}

/// Per-host ids, resolved before rendering (facts on the hosts win; see inventory::ids).
#[derive(Debug, Clone, Default)]
pub struct Ids {
    pub myid: BTreeMap<String, i64>,
    pub broker_id: BTreeMap<String, i64>,
    /// KRaft node.id of dedicated controllers (brokers and combined nodes use `broker_id`).
    pub controller_id: BTreeMap<String, i64>,
}

impl Ids {
    /// Kafka's node.id (broker.id in ZooKeeper mode) of a host running Kafka.
    pub fn node_id(&self, host: &str) -> Option<i64> {
        self.broker_id
            .get(host)
            .or_else(|| self.controller_id.get(host))
            .copied()
    }
}

const EMBEDDED: &[(&str, &str)] = &[
    ("zoo.cfg.j2", include_str!("../../templates/zoo.cfg.j2")),
    ("myid.j2", include_str!("../../templates/myid.j2")),
    (
        "server.properties.j2",
        include_str!("../../templates/server.properties.j2"),
    ),
    (
        "log4j.properties.j2",
        include_str!("../../templates/log4j.properties.j2"),
    ),
    (
        "logback.xml.j2",
        include_str!("../../templates/logback.xml.j2"),
    ),
    (
        "log4j2.properties.j2",
        include_str!("../../templates/log4j2.properties.j2"),
    ),
    (
        "run-java.sh.j2",
        include_str!("../../templates/run-java.sh.j2"),
    ),
    (
        "service.env.j2",
        include_str!("../../templates/service.env.j2"),
    ),
    ("init.sh.j2", include_str!("../../templates/init.sh.j2")),
    (
        "unit.service.j2",
        include_str!("../../templates/unit.service.j2"),
    ),
    ("java.sh.j2", include_str!("../../templates/java.sh.j2")),
    (
        "nisshi.env.j2",
        include_str!("../../templates/nisshi.env.j2"),
    ),
    (
        "supervise.sh.j2",
        include_str!("../../templates/supervise.sh.j2"),
    ),
];

pub struct Renderer {
    env: Environment<'static>,
}

impl Renderer {
    /// Embedded templates, each replaced by a same-named file in `inv.templates_dir` if present.
    pub fn new(inv: &Inventory) -> Result<Self> {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_keep_trailing_newline(true);
        crate::quote::add_filters(&mut env);
        for (name, text) in EMBEDDED {
            let text = match &inv.templates_dir {
                Some(dir) if dir.join(name).is_file() => std::fs::read_to_string(dir.join(name))
                    .with_context(|| format!("reading {}", dir.join(name).display()))?,
                _ => text.to_string(),
            };
            env.add_template_owned(name.to_string(), text)
                .with_context(|| format!("template {name}"))?;
        }
        Ok(Renderer { env })
    }

    fn render(&self, name: &str, ctx: minijinja::Value) -> Result<String> {
        let t = self.env.get_template(name)?;
        t.render(ctx)
            .with_context(|| format!("rendering template {name}"))
    }

    /// Every file clusterctl manages on `host`.
    pub fn host_files(
        &self,
        inv: &Inventory,
        host: &Host,
        ids: &Ids,
        init: InitSystem,
        logging: Logging,
    ) -> Result<Vec<ManagedFile>> {
        if inv.flavor == crate::inventory::Flavor::Nisshi {
            // Offline preview (`render`): apply fills in the store's URL, which holds the
            // password kept on the storage host, and the address resolved on the host.
            return match host.in_kafka {
                true => {
                    let access = StorageAccess {
                        url: "<set by apply>".into(),
                        ca_pem: None,
                    };
                    self.nisshi_files(inv, host, &host.address, &access, init)
                }
                false => Ok(vec![]),
            };
        }
        let mut files = Vec::new();
        let java_home = java_home(inv);
        // Only where a JVM service runs: a host in no group gets nothing, and a side controller
        // shares its machine's.
        if inv.jdk.method == JdkMethod::Tarball
            && (host.in_zookeeper || host.runs_kafka())
            && host.side_of.is_none()
        {
            files.push(root_file(
                "/etc/profile.d/java.sh",
                self.render("java.sh.j2", context! { java_home })?,
                0o644,
                None,
            ));
        }
        if host.in_zookeeper {
            let svc = ServiceDef::new(Service::ZooKeeper, inv, host);
            files.extend(self.zookeeper_files(inv, host, ids)?);
            files.extend(self.jvm_service_files(&svc, init, &java_home, logging.zookeeper)?);
        }
        if host.runs_kafka() {
            let svc = ServiceDef::new(Service::Kafka, inv, host);
            files.extend(self.kafka_files(inv, host, ids)?);
            files.extend(self.jvm_service_files(&svc, init, &java_home, logging.kafka)?);
        }
        Ok(files)
    }

    fn zookeeper_files(&self, inv: &Inventory, host: &Host, ids: &Ids) -> Result<Vec<ManagedFile>> {
        let zk = &inv.zookeeper;
        let svc = ServiceDef::new(Service::ZooKeeper, inv, host);
        let myid = *ids
            .myid
            .get(&host.name)
            .with_context(|| format!("no myid assigned to {}", host.name))?;
        let servers: Vec<_> = inv
            .zookeeper_hosts()
            .map(|h| context! { myid => ids.myid.get(&h.name).copied(), address => h.address })
            .collect();
        let secured = inv
            .security
            .as_ref()
            .filter(|s| s.zookeeper_tls)
            .map(|sec| {
                crate::security::installed()
                    .context("internal: the security material was not loaded before rendering")
                    .map(|m| (sec, m))
            })
            .transpose()?;
        let tls = secured.map(|_| {
            context! {
                keystore => security::keystore_path(&svc),
                truststore => security::truststore_path(&svc),
            }
        });
        let mut properties = zk.properties.clone();
        properties.extend(
            host.zookeeper
                .properties
                .iter()
                .map(|(k, v)| (k.clone(), v.to_string())),
        );
        let mut files = vec![
            config_file(
                "/etc/zookeeper/zoo.cfg",
                self.render(
                    "zoo.cfg.j2",
                    context! { zk => context!{
                        tick_time => zk.tick_time, init_limit => zk.init_limit,
                        sync_limit => zk.sync_limit, data_dir => zk.data_dir,
                        data_log_dir => zk.data_log_dir, client_port => zk.client_port,
                        max_client_cnxns => zk.max_client_cnxns, peer_port => zk.peer_port,
                        election_port => zk.election_port,
                    }, servers, properties, tls },
                )?,
                &svc,
            ),
            ManagedFile {
                path: format!("{}/myid", zk.data_dir),
                content: self.render("myid.j2", context! { myid })?,
                mode: 0o644,
                owner: svc.user.into(),
                group: svc.user.into(),
                restarts: Some(Service::ZooKeeper),
                secret: false,
            },
        ];
        if let Some((sec, m)) = secured {
            files.extend(security::tls_files(host, sec, m, &svc)?);
        }
        Ok(files)
    }

    /// The logging config, env file, launcher and init script or unit of a JVM service.
    fn jvm_service_files(
        &self,
        svc: &ServiceDef,
        init: InitSystem,
        java_home: &Option<String>,
        backend: Backend,
    ) -> Result<Vec<ManagedFile>> {
        let log_conf = format!("{}/{}", config_dir(svc), backend.file_name());
        let (pattern, loggers): (&str, &[(&str, &str)]) = match svc.service {
            Service::ZooKeeper => (
                "%d{ISO8601} [myid:%X{myid}] - %-5p [%t:%C{1}@%L] - %m%n",
                &[],
            ),
            _ => (
                "[%d] %p %m (%c)%n",
                &[
                    ("kafka.request.logger", "WARN"),
                    ("state.change.logger", "INFO"),
                    ("org.apache.zookeeper", "INFO"),
                ],
            ),
        };
        let log_file = svc.log_file.clone().unwrap_or_default();
        let mut files = vec![config_file(
            &log_conf,
            self.render(
                backend.template(),
                context! { service => svc.name, file => log_file, pattern, loggers },
            )?,
            svc,
        )];
        let mut jvm_args = vec![
            format!("-Xms{}", svc.heap),
            format!("-Xmx{}", svc.heap),
            "-XX:+UseG1GC".into(),
            "-XX:MaxGCPauseMillis=20".into(),
            "-XX:InitiatingHeapOccupancyPercent=35".into(),
            "-XX:+ExplicitGCInvokesConcurrent".into(),
            "-Djava.awt.headless=true".into(),
            backend.jvm_arg(&log_conf),
        ];
        jvm_args.extend(svc.jvm_opts.iter().cloned());
        let env = self.render(
            "service.env.j2",
            context! { svc => svc, java_home, jvm_args },
        )?;
        files.push(root_file(
            &services::jvm_launcher(svc.name),
            self.render("run-java.sh.j2", context! { svc => svc })?,
            0o755,
            Some(svc.service),
        ));
        files.extend(self.service_files(svc, init, env)?);
        Ok(files)
    }

    fn kafka_files(&self, inv: &Inventory, host: &Host, ids: &Ids) -> Result<Vec<ManagedFile>> {
        let k = &inv.kafka;
        let svc = ServiceDef::new(Service::Kafka, inv, host);
        let node_id = ids
            .node_id(&host.name)
            .with_context(|| format!("no node id assigned to {}", host.name))?;
        let voters: Vec<String> = inv
            .controller_hosts()
            .map(|h| {
                let id = ids.node_id(&h.name).unwrap_or(-1);
                format!("{id}@{}:{}", h.address, k.controller_port)
            })
            .collect();
        let mut listeners = Vec::new();
        let mut roles = Vec::new();
        if host.in_kafka {
            listeners.push(format!("PLAINTEXT://{}:{}", host.address, k.port));
            roles.push("broker");
        }
        if host.in_controller {
            listeners.push(format!(
                "CONTROLLER://{}:{}",
                host.address, k.controller_port
            ));
            roles.push("controller");
        }
        let mut properties = k.properties.clone();
        properties.extend(
            host.kafka
                .properties
                .iter()
                .map(|(key, v)| (key.clone(), v.to_string())),
        );
        // A migrating cluster's hosts as its stage has them: controllers are KRaft nodes from
        // the start, brokers from BrokersKraft on; brokers talk to ZooKeeper until then, and
        // controllers until finalized.
        let stage = k.stage.unwrap_or(MigrationStage::Controllers);
        let kraft = k.kraft_on(host);
        let zk_migration = k.migrating
            && if host.in_controller {
                stage < MigrationStage::Finalized
            } else {
                host.in_kafka && stage == MigrationStage::BrokersMigrating
            };
        if k.migrating {
            // Pinned by the migration for ZooKeeper-mode brokers; a KRaft node has none.
            properties.remove("inter.broker.protocol.version");
        }
        // Kafka's ZooKeeper-mode authorizer does not run in KRaft: its KRaft counterpart reads
        // the same ACLs from the metadata log (migrated from ZooKeeper).
        if kraft
            && properties.get("authorizer.class.name").map(String::as_str) == Some(ACL_AUTHORIZER)
        {
            properties.insert("authorizer.class.name".into(), STANDARD_AUTHORIZER.into());
        }
        let secured = match &inv.security {
            Some(sec) => {
                let m = crate::security::installed()
                    .context("internal: the security material was not loaded before rendering")?;
                Some((sec, m, security::listeners(inv, host, sec, m, &svc)?))
            }
            None => None,
        };
        let plain = |addr: &str| format!("PLAINTEXT://{addr}:{}", k.port);
        let server = self.render(
            "server.properties.j2",
            context! {
                protocol_map => secured.as_ref().map_or("PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT".into(), |(_, _, l)| l.protocol_map.clone()),
                advertised => secured.as_ref().map_or(plain(&host.address), |(_, _, l)| l.advertised.clone()),
                inter_broker_listener => secured.as_ref().map_or("PLAINTEXT".into(), |(_, _, l)| l.inter_broker.clone()),
                security => secured.as_ref().map(|(_, _, l)| l.extra.clone()),
                secured => secured.is_some(),
                kraft,
                zk_migration,
                ibp => crate::versions::major_minor(&k.version),
                node_id,
                roles => roles.join(","),
                broker => host.in_kafka,
                voters => voters.join(","),
                dynamic_quorum => k.dynamic_quorum && !k.migrating,
                bootstrap_servers => inv
                    .controller_hosts()
                    .map(|h| format!("{}:{}", h.address, k.controller_port))
                    .collect::<Vec<_>>()
                    .join(","),
                listeners => secured.as_ref().map_or(listeners.join(","), |(_, _, l)| l.listeners.clone()),
                host => context!{ name => host.name, address => host.address, rack => host.rack },
                kafka => context!{
                    port => k.port, log_dirs => inv.kafka_log_dirs(host), num_partitions => k.num_partitions,
                    default_replication_factor => k.default_replication_factor,
                    min_insync_replicas => k.min_insync_replicas,
                    offsets_topic_replication_factor => k.offsets_topic_replication_factor,
                    transaction_state_log_replication_factor => k.transaction_state_log_replication_factor,
                    log_retention_hours => k.log_retention_hours,
                    log_segment_bytes => k.log_segment_bytes,
                },
                zookeeper_connect => inv.zookeeper_connect(),
                properties,
            },
        )?;
        let mut files = vec![config_file(&host.server_properties(), server, &svc)];
        if let Some((sec, m, _)) = secured {
            files.extend(security::tls_files(host, sec, m, &svc)?);
        }
        Ok(files)
    }

    /// A nisshi broker's env file, launcher, and the certificate it trusts for its store.
    /// `listen_ip` is the host's address as an IP (the broker does not resolve names).
    pub fn nisshi_files(
        &self,
        inv: &Inventory,
        host: &Host,
        listen_ip: &str,
        access: &StorageAccess,
        init: InitSystem,
    ) -> Result<Vec<ManagedFile>> {
        let n = inv.nisshi.as_ref().context("not a nisshi inventory")?;
        let svc = ServiceDef::new(Service::Nisshi, inv, host);
        let env = self.render(
            "nisshi.env.j2",
            context! {
                svc => svc, cluster_id => n.cluster_id, listen_ip, address => host.address,
                port => n.port, storage_engine => access.url, log => n.log,
                ca_file => access.ca_pem.as_ref().map(|_| STORAGE_CA),
                environment => n.environment,
            },
        )?;
        let mut files = self.service_files(&svc, init, env)?;
        if let Some(pem) = &access.ca_pem {
            files.push(root_file(
                STORAGE_CA,
                pem.clone(),
                0o644,
                Some(Service::Nisshi),
            ));
        }
        if init == InitSystem::SysV {
            // The broker exits when its store is unreachable (after a reboot, PostgreSQL may
            // come up later): without systemd, a small supervisor restarts it.
            files.push(root_file(
                SUPERVISE,
                self.render("supervise.sh.j2", context! { delay => 2 })?,
                0o755,
                Some(Service::Nisshi),
            ));
        }
        Ok(files)
    }

    /// The launch environment plus the init script or systemd unit of one service.
    fn service_files(
        &self,
        svc: &ServiceDef,
        init: InitSystem,
        env: String,
    ) -> Result<Vec<ManagedFile>> {
        let ctx = context! { svc => svc };
        let env = config_file(&svc.env_file, env, svc);
        let launcher = match init {
            InitSystem::SysV => root_file(
                &format!("/etc/init.d/{}", svc.name),
                self.render("init.sh.j2", ctx)?,
                0o755,
                Some(svc.service),
            ),
            InitSystem::Systemd => root_file(
                &format!("/etc/systemd/system/{}.service", svc.name),
                self.render("unit.service.j2", ctx)?,
                0o644,
                Some(svc.service),
            ),
        };
        Ok(vec![env, launcher])
    }
}

/// `/etc/kafka`: where a service's config files live.
fn config_dir(svc: &ServiceDef) -> String {
    format!("/etc/{}", svc.name)
}

/// Config files: owned by root, readable by the service's group only (they may hold secrets).
fn config_file(path: &str, content: String, svc: &ServiceDef) -> ManagedFile {
    ManagedFile {
        path: path.into(),
        content,
        mode: 0o640,
        owner: "root".into(),
        group: svc.user.into(),
        restarts: Some(svc.service),
        secret: false,
    }
}

fn root_file(path: &str, content: String, mode: u32, restarts: Option<Service>) -> ManagedFile {
    ManagedFile {
        path: path.into(),
        content,
        mode,
        owner: "root".into(),
        group: "root".into(),
        restarts,
        secret: false,
    }
}

/// JAVA_HOME for the launch environment; `None` means `java` from the OS package on PATH.
pub fn java_home(inv: &Inventory) -> Option<String> {
    match inv.jdk.method {
        JdkMethod::Package => None,
        JdkMethod::Tarball => Some(format!("{}/jdk", inv.install_dir)),
        JdkMethod::None => inv.jdk.java_home.clone(),
    }
}

/// Property keys whose values never reach a terminal or a log.
pub fn is_secret_key(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    [
        "password",
        "secret",
        "jaas",
        "token",
        "credential",
        "storage_engine",
    ]
    .iter()
    .any(|s| k.contains(s))
}

/// `key=value` lines with secret values replaced, for diffs and dry runs.
pub fn mask_secrets(text: &str) -> String {
    let mut out = text
        .lines()
        .map(|l| match l.split_once('=') {
            Some((k, _)) if !l.trim_start().starts_with('#') && is_secret_key(k) => {
                format!("{k}=********")
            }
            _ => l.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n");
    // Keep the last newline, or every diff would end in "No newline at end of file".
    if text.ends_with('\n') {
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests;
