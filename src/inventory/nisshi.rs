//! Rules of the nisshi flavor: a Kafka-compatible broker in Rust, stateless, sharing one store.
//! It has no JDK, ZooKeeper, controllers, broker ids or replicas, so those settings are errors
//! here rather than silently ignored.

use super::diag::Diags;
use super::model::{self, RawInventory, StorageKind};
use super::validate::{port, version};
use super::*;

/// Variables clusterctl sets in the broker's environment file.
const MANAGED_ENV: &[(&str, &str)] = &[
    ("CLUSTER_ID", "nisshi.cluster_id"),
    ("LISTENER_URL", "the host's address and nisshi.port"),
    (
        "ADVERTISED_LISTENER_URL",
        "the host's address and nisshi.port",
    ),
    ("STORAGE_ENGINE", "nisshi.storage / nisshi.storage_url"),
    ("RUST_LOG", "nisshi.log"),
];

/// A nisshi section or storage group in a JVM inventory is a mistake worth naming.
pub(super) fn reject_in_jvm(d: &mut Diags, raw: &RawInventory) {
    if let Some(n) = &raw.nisshi {
        d.error(
            &n.referenced,
            "`nisshi:` settings need `flavor: nisshi`",
            "add `flavor: nisshi` at the top, or remove the `nisshi:` section",
        );
    }
    if let Some(s) = raw.groups.value.storage.first() {
        d.error(
            &s.referenced,
            "groups.storage is for the nisshi flavor's PostgreSQL",
            "remove it, or set `flavor: nisshi`",
        );
    }
}

pub(super) fn resolve(
    d: &mut Diags,
    path: &Path,
    raw: &RawInventory,
    brokers: usize,
    storage_hosts: usize,
) -> NisshiConfig {
    let groups_at = raw.groups.referenced;
    for (section, at) in [
        ("kafka", raw.kafka.as_ref().map(|s| s.referenced)),
        ("zookeeper", raw.zookeeper.as_ref().map(|s| s.referenced)),
        ("jdk", raw.jdk.as_ref().map(|s| s.referenced)),
    ] {
        if let Some(at) = at {
            d.error(
                &at,
                format!("`{section}:` settings belong to the jvm flavor"),
                "the nisshi broker is configured under `nisshi:`",
            );
        }
    }
    let g = &raw.groups.value;
    for (group, list) in [("zookeeper", &g.zookeeper), ("controller", &g.controller)] {
        if let Some(m) = list.first() {
            d.error(
                &m.referenced,
                format!("groups.{group} has no meaning for the nisshi broker"),
                "nisshi needs no ZooKeeper or controllers: list brokers under groups.kafka and the PostgreSQL host under groups.storage",
            );
        }
    }
    for (name, h) in &raw.hosts {
        if let Some(id) = &h.broker_id {
            d.error(
                &id.referenced,
                format!("host {}: nisshi brokers have no broker ids", name.value),
                "remove `broker_id` (every nisshi broker answers as node 111)",
            );
        }
        if let Some(rack) = &h.rack {
            d.error(
                &rack.referenced,
                format!("host {}: nisshi brokers have no racks", name.value),
                "remove `rack` (nisshi keeps no replicas to spread over racks)",
            );
        }
    }
    let default = model::NisshiSettings::default();
    let n = raw.nisshi.as_ref().map_or(&default, |s| &s.value);

    let binary = match (&n.binary, &n.url) {
        (Some(b), Some(u)) => {
            d.error(
                &u.referenced,
                "nisshi.binary and nisshi.url are both set",
                "give one: a local binary, or a URL with its sha256",
            );
            BinarySource::Path {
                path: expand_path(path, &b.value),
                sha256: None,
            }
        }
        (Some(b), None) => {
            let p = expand_path(path, &b.value);
            if !p.is_file() {
                d.error(
                    &b.referenced,
                    format!("nisshi.binary {} is not a file", p.display()),
                    "give the path of a built `nisshi` binary, or leave it out to build one with cargo",
                );
            }
            BinarySource::Path {
                path: p,
                sha256: n.sha256.as_ref().map(|s| sha256(d, s)),
            }
        }
        (None, Some(u)) => {
            if !(u.value.starts_with("https://") || u.value.starts_with("http://")) {
                d.error(
                    &u.referenced,
                    format!("nisshi.url `{}` is not an http(s) URL", u.value),
                    "give the URL of a nisshi binary",
                );
            }
            let sha = match &n.sha256 {
                Some(s) => sha256(d, s),
                None => {
                    d.error(
                        &u.referenced,
                        "nisshi.url needs nisshi.sha256",
                        "add the binary's sha256 (`sha256sum nisshi`): a download is never trusted unchecked",
                    );
                    String::new()
                }
            };
            BinarySource::Url {
                url: u.value.clone(),
                sha256: sha,
            }
        }
        (None, None) => {
            if let Some(s) = &n.sha256 {
                d.error(
                    &s.referenced,
                    "nisshi.sha256 without nisshi.binary or nisshi.url",
                    "the sha256 checks a given binary; a cargo build needs none",
                );
            }
            BinarySource::Cargo
        }
    };

    let kind = n
        .storage
        .as_ref()
        .map_or(StorageKind::Postgres, |s| s.value);
    let kind_at = n.storage.as_ref().map_or(groups_at, |s| s.referenced);
    let storage = match (kind, &n.storage_url) {
        (StorageKind::Sqlite, url) => {
            if let Some(u) = url {
                d.error(
                    &u.referenced,
                    "nisshi.storage_url is for PostgreSQL, but nisshi.storage is sqlite",
                    "remove storage_url, or use `storage: postgres`",
                );
            }
            if brokers > 1 {
                d.error(
                    &kind_at,
                    format!(
                        "sqlite storage with {brokers} brokers: each broker would keep its own data"
                    ),
                    "use `storage: postgres` (shared) for more than one broker",
                );
            }
            if let Some(s) = g.storage.first() {
                d.error(
                    &s.referenced,
                    "groups.storage with sqlite storage",
                    "sqlite lives on the broker; remove groups.storage",
                );
            }
            Storage::Sqlite
        }
        (StorageKind::Postgres, Some(u)) => {
            let ok = (u.value.starts_with("postgres://") || u.value.starts_with("postgresql://"))
                && !u
                    .value
                    .contains(|c: char| c.is_whitespace() || c == '\'' || c == '"');
            if !ok {
                // The URL holds a password: never echo it.
                d.error(
                    &u.referenced,
                    "nisshi.storage_url is not a postgres:// URL without quotes or spaces",
                    "use postgres://USER:PASSWORD@HOST:PORT/DB?sslmode=... (percent-encode special characters)",
                );
            }
            if let Some(s) = g.storage.first() {
                d.error(
                    &s.referenced,
                    "groups.storage and nisshi.storage_url are both set",
                    "clusterctl runs PostgreSQL on groups.storage, or uses your storage_url: pick one",
                );
            }
            Storage::ExternalPostgres(u.value.clone())
        }
        (StorageKind::Postgres, None) => {
            if storage_hosts != 1 {
                let at = g.storage.get(1).map_or(groups_at, |s| s.referenced);
                d.error(
                    &at,
                    format!("PostgreSQL storage needs exactly one host in groups.storage, not {storage_hosts}"),
                    "list one host under groups.storage, or set nisshi.storage_url to an external PostgreSQL",
                );
            }
            Storage::ManagedPostgres
        }
    };

    let cluster_id = n.cluster_id.as_ref().map_or("nisshi_cluster".into(), |c| {
        let ok = !c.value.is_empty()
            && c.value.len() <= 64
            && c.value
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if !ok {
            d.error(
                &c.referenced,
                format!("nisshi.cluster_id `{}` is not valid", c.value),
                "use up to 64 letters, digits, `_` and `-`",
            );
        }
        c.value.clone()
    });
    let log = n.log.as_ref().map_or("warn".into(), |l| {
        if l.value.contains(|c: char| c.is_whitespace() || c == '\'') {
            d.error(
                &l.referenced,
                format!("nisshi.log `{}` is not a RUST_LOG filter", l.value),
                "use a level or filter such as `warn` or `warn,nisshi_broker=debug`",
            );
        } else if logs_spans(&l.value) {
            d.warn(
                &l.referenced,
                format!(
                    "nisshi.log `{}` makes nisshi log every span it enters and leaves",
                    l.value
                ),
                "nisshi 0.8.1 writes gigabytes in minutes this way, and its fetches slow \
                 until consumers get empty answers: use it briefly to diagnose, then `warn`",
            );
        }
        l.value.clone()
    });
    let mut environment = BTreeMap::new();
    for (k, v) in &n.environment {
        let key = k.value.as_str();
        if let Some((_, instead)) = MANAGED_ENV.iter().find(|(m, _)| *m == key) {
            d.error(
                &k.referenced,
                format!("nisshi.environment sets {key}, which clusterctl manages"),
                &format!("set it through {instead}"),
            );
        } else if key.is_empty()
            || key.starts_with(|c: char| c.is_ascii_digit())
            || !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            d.error(
                &k.referenced,
                format!("`{key}` is not an environment variable name"),
                "use letters, digits and `_`",
            );
        }
        // Quoted as a shell word when rendered; control characters are refused at parse.
        environment.insert(key.to_string(), v.to_string());
    }
    for (name, t) in &raw.topics {
        if let Some(rf) = t.replication_factor.as_ref().filter(|r| r.value != 1) {
            d.error(
                &rf.referenced,
                format!("topic {}: nisshi keeps no replicas", name.value),
                "leave replication_factor out (or 1): durability comes from the shared storage",
            );
        }
        if !t.configs.is_empty() {
            d.error(
                &name.referenced,
                format!(
                    "topic {}: configs cannot be kept converged on nisshi",
                    name.value
                ),
                "the nisshi broker reports no topic configs (DescribeConfigs), so remove `configs`",
            );
        }
    }

    NisshiConfig {
        version: n
            .version
            .as_ref()
            .map_or(DEFAULT_NISSHI_VERSION.into(), |v| {
                version(d, v, "nisshi.version")
            }),
        binary,
        port: n.port.as_ref().map_or(9092, |p| port(d, p, "nisshi.port")),
        cluster_id,
        storage,
        log,
        environment,
    }
}

fn sha256(d: &mut Diags, s: &model::S<String>) -> String {
    let v = s.value.trim().to_ascii_lowercase();
    if v.len() != 64 || !v.chars().all(|c| c.is_ascii_hexdigit()) {
        d.error(
            &s.referenced,
            "nisshi.sha256 is not a sha256 (64 hex digits)",
            "copy it from `sha256sum nisshi`",
        );
    }
    v
}

/// Whether a RUST_LOG filter enables `info` or lower for nisshi's own code. nisshi 0.8.1's
/// text log records each span's new/enter/exit/close (`FmtSpan::FULL`), and its spans are
/// `info`, so at that level it logs several lines per request and per SQL statement.
fn logs_spans(filter: &str) -> bool {
    filter.split(',').any(|directive| {
        let directive = directive.trim();
        let (target, level) = match directive.rsplit_once('=') {
            Some((target, level)) => (target, level),
            // A bare level sets the default; a bare target enables all of its levels.
            None if LEVELS.iter().any(|l| directive.eq_ignore_ascii_case(l)) => ("", directive),
            None => (directive, "trace"),
        };
        let verbose = ["info", "debug", "trace"]
            .iter()
            .any(|l| level.eq_ignore_ascii_case(l));
        let target = target.split('[').next().unwrap_or_default();
        verbose && (target.is_empty() || target.starts_with("nisshi"))
    })
}

const LEVELS: &[&str] = &["off", "error", "warn", "info", "debug", "trace"];
