//! `security:` and `users:`: which protocol each listener speaks, where certificates come
//! from, and the SCRAM users. Checked with locations like the rest; passwords are only
//! located here (a file or an environment variable), read when a command needs them.

use super::diag::Diags;
use super::model::{self, CaKind, Protocol, RawInventory, S};
use super::validate::port;
use super::{Flavor, KafkaConfig, expand_path};
use crate::health::kafka::{AclBinding, AclOperation, AclPattern, AclPermission, AclResourceType};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The listener names clusterctl renders when `security` is set.
pub const CLIENT: &str = "CLIENT";
pub const BROKER: &str = "BROKER";
pub const CONTROLLER: &str = "CONTROLLER";

#[derive(Debug, Clone, PartialEq)]
pub struct Security {
    pub client: Listener,
    /// `None`: brokers replicate over the client listener.
    pub inter_broker: Option<Listener>,
    /// KRaft's controller listener; `None` in ZooKeeper mode.
    pub controller: Option<Listener>,
    pub tls: Option<Tls>,
    pub sasl_mechanism: SaslMech,
    /// Set when any listener uses SASL: the user clusterctl logs in as.
    pub admin_user: Option<String>,
    /// Set when brokers or controllers authenticate to each other.
    pub inter_broker_user: Option<String>,
    /// ZooKeeper mode: TLS on the ensemble's client port (TLS only, client certificates
    /// required) and between its members.
    pub zookeeper_tls: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Listener {
    pub protocol: Protocol,
    pub port: u16,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Tls {
    /// A CA clusterctl keeps in `dir` on this machine and issues host certificates from.
    Managed { dir: PathBuf, validity_days: u32 },
    /// PEM files the operator gives; `{host}` in the certificate and key paths is the host.
    Provided {
        ca_file: PathBuf,
        cert_file: String,
        key_file: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum SaslMech {
    ScramSha256,
    ScramSha512,
}

impl SaslMech {
    pub fn parse(s: &str) -> Option<SaslMech> {
        match s {
            "SCRAM-SHA-256" => Some(SaslMech::ScramSha256),
            "SCRAM-SHA-512" => Some(SaslMech::ScramSha512),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            SaslMech::ScramSha256 => "SCRAM-SHA-256",
            SaslMech::ScramSha512 => "SCRAM-SHA-512",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct User {
    pub name: String,
    pub password: SecretSource,
    pub mechanism: SaslMech,
}

/// Where a secret is read from when a command needs it; never the inventory text.
#[derive(Debug, Clone, PartialEq)]
pub enum SecretSource {
    File(PathBuf),
    Env(String),
}

impl SecretSource {
    /// The secret, without a trailing newline. Errors name the source, never the value.
    pub fn read(&self, user: &str) -> anyhow::Result<String> {
        let raw = match self {
            SecretSource::File(p) => std::fs::read_to_string(p).map_err(|e| {
                anyhow::anyhow!(
                    "users.{user}.password_file {}: {e}; create it (mode 0600) with the password",
                    p.display()
                )
            })?,
            SecretSource::Env(v) => std::env::var(v).map_err(|_| {
                anyhow::anyhow!(
                    "users.{user}.password_env: ${v} is not set; export it with the password"
                )
            })?,
        };
        let pw = raw.strip_suffix('\n').unwrap_or(&raw);
        let pw = pw.strip_suffix('\r').unwrap_or(pw);
        anyhow::ensure!(!pw.is_empty(), "users.{user}: the password is empty");
        anyhow::ensure!(
            !pw.chars().any(char::is_control),
            "users.{user}: the password holds a control character (a line break inside?); \
             a password is one line"
        );
        Ok(pw.to_string())
    }
}

impl Protocol {
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Plaintext => "PLAINTEXT",
            Protocol::Ssl => "SSL",
            Protocol::SaslPlaintext => "SASL_PLAINTEXT",
            Protocol::SaslSsl => "SASL_SSL",
        }
    }

    pub fn tls(self) -> bool {
        matches!(self, Protocol::Ssl | Protocol::SaslSsl)
    }

    pub fn sasl(self) -> bool {
        matches!(self, Protocol::SaslPlaintext | Protocol::SaslSsl)
    }
}

impl Security {
    /// Every listener of the cluster, name first, in the order they are rendered.
    pub fn listeners(&self) -> Vec<(&'static str, Listener)> {
        let mut out = vec![(CLIENT, self.client)];
        out.extend(self.inter_broker.map(|l| (BROKER, l)));
        out.extend(self.controller.map(|l| (CONTROLLER, l)));
        out
    }

    /// The listener brokers replicate over.
    pub fn inter_broker_name(&self) -> &'static str {
        if self.inter_broker.is_some() {
            BROKER
        } else {
            CLIENT
        }
    }

    pub fn inter_broker_listener(&self) -> Listener {
        self.inter_broker.unwrap_or(self.client)
    }

    /// Whether anything needs the certificates: a TLS listener or ZooKeeper's TLS.
    pub fn any_tls(&self) -> bool {
        self.zookeeper_tls || self.listeners().iter().any(|(_, l)| l.protocol.tls())
    }

    pub fn any_sasl(&self) -> bool {
        self.listeners().iter().any(|(_, l)| l.protocol.sasl())
    }
}

/// Keys a `security` inventory renders itself: set in `kafka.properties` they would fight it.
const SECURITY_MANAGED: &[&str] = &[
    "listener.security.protocol.map",
    "listener.name.",
    "sasl.",
    "ssl.",
    "security.inter.broker.protocol",
    "super.users",
];

/// What zookeeper_tls renders into server.properties (Kafka's ZooKeeper client).
const ZK_CLIENT_TLS_MANAGED: &[&str] = &["zookeeper.ssl.", "zookeeper.clientCnxnSocket"];

/// Whether `key` is one of `list` (an entry ending in `.` is a prefix).
fn managed(list: &[&str], key: &str) -> bool {
    list.iter()
        .any(|m| key == *m || (m.ends_with('.') && key.starts_with(m)))
}

pub(super) fn resolve(
    d: &mut Diags,
    path: &Path,
    raw: &RawInventory,
    kafka: &KafkaConfig,
    zookeeper: &super::ZkConfig,
    flavor: Flavor,
) -> (Option<Security>, Vec<User>) {
    let zookeeper_version = zookeeper.version.as_str();
    let users = users(d, path, raw);
    let Some(sec) = &raw.security else {
        if let Some((name, _)) = raw.users.first() {
            d.error(
                &name.referenced,
                "users are declared but there is no `security` section: no listener asks for a password",
                "add security.listeners with SASL_SSL (see inventories/secure.yaml), or remove users",
            );
        }
        return (None, users);
    };
    let at = sec.referenced;
    let s = &sec.value;
    if flavor == Flavor::Nisshi {
        d.error(
            &at,
            "security is not available for the nisshi flavor yet",
            "remove the security section",
        );
    }
    if kafka.migrating {
        d.error(
            &at,
            "security is not supported during a migration to KRaft yet",
            "migrate the cluster without the security section, then secure the KRaft cluster",
        );
    }
    let plaintext = |port| Listener {
        protocol: Protocol::Plaintext,
        port,
    };
    let listener = |d: &mut Diags, l: &Option<S<model::RawListener>>, key: &str, dflt: u16| match l
    {
        None => plaintext(dflt),
        Some(l) => Listener {
            protocol: l.value.protocol.value,
            port: l.value.port.as_ref().map_or(dflt, |p| {
                port(d, p, &format!("security.listeners.{key}.port"))
            }),
        },
    };
    let client = listener(d, &s.listeners.client, "client", kafka.port);
    let inter_broker = s
        .listeners
        .inter_broker
        .as_ref()
        .map(|_| listener(d, &s.listeners.inter_broker, "inter_broker", 0));
    if let Some(l) = &s.listeners.inter_broker
        && l.value.port.is_none()
    {
        d.error(
            &l.referenced,
            "security.listeners.inter_broker needs its own port",
            "add port: (e.g. 9094), distinct from kafka.port and kafka.controller_port",
        );
    }
    if let Some(l) = &s.listeners.controller
        && !kafka.kraft
        && !kafka.migrating
    {
        d.error(
            &l.referenced,
            "security.listeners.controller is for KRaft: a ZooKeeper-mode cluster has no controller listener",
            "remove it (the brokers' controller talks to them over the inter-broker listener)",
        );
    }
    if let Some(l) = &s.listeners.controller
        && let Some(p) = &l.value.port
    {
        d.error(
            &p.referenced,
            "the controller listener's port is kafka.controller_port",
            "remove port here and set kafka.controller_port",
        );
    }
    let controller = kafka.kraft.then(|| {
        listener(
            d,
            &s.listeners.controller,
            "controller",
            kafka.controller_port,
        )
    });

    // Two listeners on one port, or one on a port another key already uses.
    let mut ports: BTreeMap<u16, &str> = BTreeMap::new();
    if kafka.kraft {
        ports.insert(kafka.controller_port, "kafka.controller_port");
    }
    for (key, l, raw_l) in [
        ("security.listeners.client", client, &s.listeners.client),
        (
            "security.listeners.inter_broker",
            inter_broker.unwrap_or(client),
            &s.listeners.inter_broker,
        ),
    ] {
        if l.port == 0 {
            continue;
        }
        if let Some(other) = ports.get(&l.port)
            && !(key.ends_with("inter_broker") && inter_broker.is_none())
        {
            let loc = raw_l.as_ref().map_or(at, |r| r.referenced);
            d.error(
                &loc,
                format!("{key} uses port {}, the same as {other}", l.port),
                "each listener needs a port of its own",
            );
        }
        ports.insert(l.port, key);
    }

    let mechanism = match &s.sasl_mechanism {
        None => SaslMech::ScramSha512,
        Some(m) => SaslMech::parse(&m.value).unwrap_or_else(|| {
            d.error(
                &m.referenced,
                format!(
                    "security.sasl_mechanism {:?} is not one clusterctl sets up",
                    m.value
                ),
                "use SCRAM-SHA-512 or SCRAM-SHA-256",
            );
            SaslMech::ScramSha512
        }),
    };
    let tls = s.tls.as_ref().map(|t| tls(d, path, t));
    let sec = Security {
        client,
        inter_broker,
        controller,
        tls,
        sasl_mechanism: mechanism,
        admin_user: s.admin_user.as_ref().map(|u| u.value.clone()),
        inter_broker_user: s.inter_broker_user.as_ref().map(|u| u.value.clone()),
        zookeeper_tls: s.zookeeper_tls.as_ref().is_some_and(|t| t.value),
    };
    if let Some(t) = &s.zookeeper_tls
        && t.value
    {
        if kafka.kraft {
            d.error(
                &t.referenced,
                "security.zookeeper_tls is for ZooKeeper mode: a KRaft cluster has no ZooKeeper",
                "remove it",
            );
        } else if crate::versions::parse(&kafka.version) < (2, 5, 0) {
            d.error(
                &t.referenced,
                format!(
                    "brokers reach ZooKeeper over TLS from Kafka 2.5 on; this is {}",
                    kafka.version
                ),
                "use kafka.version 2.5 or later, or remove zookeeper_tls",
            );
        } else if crate::versions::parse(zookeeper_version) < (3, 5, 5) {
            d.error(
                &t.referenced,
                format!(
                    "ZooKeeper's TLS needs ZooKeeper 3.5.5+ here (PEM key files); this is {zookeeper_version}"
                ),
                "use zookeeper.version 3.5.5 or later, or remove zookeeper_tls",
            );
        }
    }

    if sec.any_tls() && sec.tls.is_none() {
        d.error(
            &at,
            "a listener uses SSL or SASL_SSL, or zookeeper_tls is set, but no security.tls says where the certificates come from",
            "add security.tls with ca: managed (clusterctl's own CA) or ca: provided",
        );
    }
    if !sec.any_tls()
        && let Some(t) = &s.tls
    {
        d.warn(
            &t.referenced,
            "security.tls is set but no listener uses SSL or SASL_SSL and zookeeper_tls is not set: the certificates go unused",
            "set a listener's protocol to SASL_SSL or SSL, or remove tls",
        );
    }
    if sec.listeners().iter().any(|(_, l)| l.protocol.tls())
        && crate::versions::parse(&kafka.version) < (3, 5, 0)
    {
        d.error(
            &at,
            format!(
                "TLS listeners need Kafka 3.5+ here (PEM key files without a password); this is {}",
                kafka.version
            ),
            "use kafka.version 3.5 or later, or PLAINTEXT/SASL_PLAINTEXT listeners",
        );
    }
    if sec.any_sasl() && crate::versions::parse(&kafka.version) < (2, 7, 0) {
        d.error(
            &at,
            format!(
                "SCRAM users need Kafka 2.7+ here (clusterctl manages them over AlterUserScramCredentials); this is {}",
                kafka.version
            ),
            "use kafka.version 2.7 or later, or listeners without SASL",
        );
    }
    // SASL only on the client listener: brokers and controllers still log in to each other
    // only where their own listeners ask for it.
    let internal_sasl = sec.inter_broker_listener().protocol.sasl()
        || sec.controller.is_some_and(|c| c.protocol.sasl());
    let declared = |name: &str| users.iter().any(|u| u.name == name);
    let need_user = |d: &mut Diags, v: &Option<S<String>>, key: &str, why: &str| match v {
        None => d.error(
            &at,
            format!("security.{key} is not set, and {why}"),
            &format!("add security.{key}: NAME and declare NAME under users"),
        ),
        Some(u) if !declared(&u.value) => d.error(
            &u.referenced,
            format!("security.{key} {} is not declared under users", u.value),
            "declare the user under users: with its password_file or password_env",
        ),
        Some(_) => {}
    };
    if sec.any_sasl() {
        if users.is_empty() {
            d.error(
                &at,
                "a listener uses SASL but no users are declared",
                "declare users: with password_file or password_env (see inventories/secure.yaml)",
            );
        }
        need_user(
            d,
            &s.admin_user,
            "admin_user",
            "clusterctl needs a user to log in to SASL listeners",
        );
    }
    if internal_sasl {
        need_user(
            d,
            &s.inter_broker_user,
            "inter_broker_user",
            "brokers and controllers log in to each other",
        );
    }
    if let (Some(a), Some(b)) = (&s.admin_user, &s.inter_broker_user)
        && a.value == b.value
    {
        d.error(
            &b.referenced,
            "security.inter_broker_user is the same user as admin_user",
            "give the brokers a user of their own",
        );
    }
    // What zookeeper_tls renders into zoo.cfg.
    const ZK_TLS_MANAGED: &[&str] = &[
        "ssl.",
        "secureClientPort",
        "clientPort",
        "sslQuorum",
        "serverCnxnFactory",
        "portUnification",
    ];
    if sec.zookeeper_tls {
        for (key, _) in raw
            .zookeeper
            .iter()
            .flat_map(|z| z.value.properties.iter())
            .chain(
                raw.hosts
                    .iter()
                    .flat_map(|(_, h)| h.zookeeper.properties.iter()),
            )
        {
            if managed(ZK_TLS_MANAGED, &key.value) {
                d.error(
                    &key.referenced,
                    format!(
                        "zookeeper.properties sets `{}`, which security.zookeeper_tls manages",
                        key.value
                    ),
                    "remove it",
                );
            }
        }
    }
    for (key, _) in raw
        .kafka
        .iter()
        .flat_map(|k| k.value.properties.iter())
        .chain(
            raw.hosts
                .iter()
                .flat_map(|(_, h)| h.kafka.properties.iter()),
        )
    {
        if managed(SECURITY_MANAGED, &key.value)
            || (sec.zookeeper_tls && managed(ZK_CLIENT_TLS_MANAGED, &key.value))
        {
            d.error(
                &key.referenced,
                format!(
                    "kafka.properties sets `{}`, which the security section manages",
                    key.value
                ),
                "set it through security: (listeners, tls, users), or remove it",
            );
        }
    }
    (Some(sec), users)
}

fn tls(d: &mut Diags, path: &Path, t: &S<model::RawTls>) -> Tls {
    let v = &t.value;
    let unused = |d: &mut Diags, key: &str, s: &Option<S<String>>, kind: &str| {
        if let Some(s) = s {
            d.error(
                &s.referenced,
                format!("security.tls.{key} has no use with ca: {kind}"),
                "remove it",
            );
        }
    };
    match v.ca.value {
        CaKind::Managed => {
            unused(d, "ca_file", &v.ca_file, "managed");
            unused(d, "cert_file", &v.cert_file, "managed");
            unused(d, "key_file", &v.key_file, "managed");
            let validity_days = match &v.validity_days {
                None => 365,
                Some(n) if (31..=3650).contains(&n.value) => n.value as u32,
                Some(n) => {
                    d.error(
                        &n.referenced,
                        format!("security.tls.validity_days {} is out of range", n.value),
                        "give 31 to 3650 days (certificates renew inside their last 30)",
                    );
                    365
                }
            };
            let dir = v.dir.as_ref().map_or("pki", |s| s.value.as_str());
            Tls::Managed {
                dir: expand_path(path, dir),
                validity_days,
            }
        }
        CaKind::Provided => {
            if let Some(n) = &v.validity_days {
                d.error(
                    &n.referenced,
                    "security.tls.validity_days has no use with ca: provided",
                    "remove it; your CA decides how long certificates last",
                );
            }
            unused(d, "dir", &v.dir, "provided");
            let mut need = |key: &str, s: &Option<S<String>>| match s {
                Some(s) => s.value.clone(),
                None => {
                    d.error(
                        &t.referenced,
                        format!("security.tls with ca: provided needs {key}"),
                        "give ca_file, cert_file and key_file (PEM; {host} stands for the host)",
                    );
                    String::new()
                }
            };
            let ca_file = need("ca_file", &v.ca_file);
            let cert_file = need("cert_file", &v.cert_file);
            let key_file = need("key_file", &v.key_file);
            Tls::Provided {
                ca_file: expand_path(path, &ca_file),
                cert_file: expand_path(path, &cert_file).to_string_lossy().into_owned(),
                key_file: expand_path(path, &key_file).to_string_lossy().into_owned(),
            }
        }
    }
}

fn users(d: &mut Diags, path: &Path, raw: &RawInventory) -> Vec<User> {
    let default_mech = raw
        .security
        .as_ref()
        .and_then(|s| s.value.sasl_mechanism.as_ref())
        .and_then(|m| SaslMech::parse(&m.value))
        .unwrap_or(SaslMech::ScramSha512);
    let mut out = Vec::new();
    for (name, u) in &raw.users {
        let n = &name.value;
        if n.is_empty()
            || n == "."
            || n == ".."
            || !n
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        {
            d.error(
                &name.referenced,
                format!("user name {n:?} is not allowed"),
                "use letters, digits, '-', '_' and '.'",
            );
        }
        let password = match (&u.password_file, &u.password_env) {
            (Some(f), None) => SecretSource::File(expand_path(path, &f.value)),
            (None, Some(e)) => {
                if e.value.is_empty()
                    || !e
                        .value
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_')
                {
                    d.error(
                        &e.referenced,
                        format!(
                            "users.{n}.password_env {:?} is not a variable name",
                            e.value
                        ),
                        "give the name of an environment variable (letters, digits, '_')",
                    );
                }
                SecretSource::Env(e.value.clone())
            }
            (Some(_), Some(e)) => {
                d.error(
                    &e.referenced,
                    format!("users.{n} has both password_file and password_env"),
                    "keep one",
                );
                SecretSource::Env(e.value.clone())
            }
            (None, None) => {
                d.error(
                    &name.referenced,
                    format!("users.{n} has no password_file or password_env"),
                    "passwords never go in the inventory: name a file (mode 0600) or a variable",
                );
                SecretSource::Env(String::new())
            }
        };
        let mechanism = match &u.mechanism {
            None => default_mech,
            Some(m) => SaslMech::parse(&m.value).unwrap_or_else(|| {
                d.error(
                    &m.referenced,
                    format!("users.{n}.mechanism {:?} is not a SCRAM mechanism", m.value),
                    "use SCRAM-SHA-512 or SCRAM-SHA-256",
                );
                default_mech
            }),
        };
        out.push(User {
            name: n.clone(),
            password,
            mechanism,
        });
    }
    out
}

/// `acls:` as bindings (one per operation), each checked with its location.
pub(super) fn acls(d: &mut Diags, raw: &RawInventory, users: &[User]) -> Vec<AclBinding> {
    let mut out = Vec::new();
    if raw.security.is_none()
        && let Some((name, _)) = raw.acls.first()
    {
        d.error(
            &name.referenced,
            "acls are declared but there is no `security` section: no authorizer runs",
            "add security with SASL listeners and users, or remove acls",
        );
    }
    for (user, entries) in &raw.acls {
        if !users.iter().any(|u| u.name == user.value) {
            d.error(
                &user.referenced,
                format!("acls.{} names a user not declared under users", user.value),
                "declare the user under users:, or fix the name",
            );
        }
        for e in entries {
            let a = &e.value;
            let resources: Vec<(AclResourceType, String)> = [
                a.topic
                    .as_ref()
                    .map(|t| (AclResourceType::Topic, t.value.clone())),
                a.group
                    .as_ref()
                    .map(|t| (AclResourceType::Group, t.value.clone())),
                a.transactional_id
                    .as_ref()
                    .map(|t| (AclResourceType::TransactionalId, t.value.clone())),
                a.cluster
                    .as_ref()
                    .filter(|c| c.value)
                    .map(|_| (AclResourceType::Cluster, "kafka-cluster".to_string())),
            ]
            .into_iter()
            .flatten()
            .collect();
            if resources.len() != 1 {
                d.error(
                    &e.referenced,
                    format!(
                        "acls.{}: an entry names {} resources",
                        user.value,
                        resources.len()
                    ),
                    "give exactly one of topic:, group:, transactional_id: or cluster: true",
                );
                continue;
            }
            let (resource_type, resource_name) = resources.into_iter().next().unwrap();
            if resource_name.is_empty() {
                d.error(
                    &e.referenced,
                    format!("acls.{}: an empty resource name", user.value),
                    "name the resource",
                );
            }
            let pattern = match a.pattern.as_ref().map(|p| p.value.as_str()) {
                None => AclPattern::Literal,
                Some(p) if AclPattern::parse(p).is_some() => AclPattern::parse(p).unwrap(),
                Some(other) => {
                    d.error(
                        &a.pattern.as_ref().unwrap().referenced,
                        format!(
                            "acls.{}: pattern {other:?} is not literal or prefixed",
                            user.value
                        ),
                        "use literal (the exact name) or prefixed (every name starting with it)",
                    );
                    AclPattern::Literal
                }
            };
            let permission = match a.permission.as_ref().map(|p| p.value.as_str()) {
                None => AclPermission::Allow,
                Some(p) if AclPermission::parse(p).is_some() => AclPermission::parse(p).unwrap(),
                Some(other) => {
                    d.error(
                        &a.permission.as_ref().unwrap().referenced,
                        format!(
                            "acls.{}: permission {other:?} is not allow or deny",
                            user.value
                        ),
                        "use allow or deny",
                    );
                    AclPermission::Allow
                }
            };
            let host = a.host.as_ref().map_or("*".to_string(), |h| h.value.clone());
            if a.operations.value.is_empty() {
                d.error(
                    &a.operations.referenced,
                    format!("acls.{}: no operations", user.value),
                    "list what the user may do, e.g. [read, describe]",
                );
            }
            for op in &a.operations.value {
                let Some(operation) = AclOperation::parse(op) else {
                    d.error(
                        &a.operations.referenced,
                        format!("acls.{}: unknown operation {op:?}", user.value),
                        "use read, write, create, delete, alter, describe, describe_configs, \
                         alter_configs, cluster_action, idempotent_write or all",
                    );
                    continue;
                };
                out.push(AclBinding {
                    resource_type,
                    resource_name: resource_name.clone(),
                    pattern,
                    principal: format!("User:{}", user.value),
                    host: host.clone(),
                    operation,
                    permission,
                });
            }
        }
    }
    out
}
