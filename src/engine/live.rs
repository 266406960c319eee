//! A running broker's changed server.properties, compared with the file it has key by key:
//! when every changed key is one Kafka updates at runtime (engine::dynamic), apply sets them
//! live with IncrementalAlterConfigs on the broker's own resource (BROKER, name = its id),
//! checks with DescribeConfigs that they took, and writes the file for the next start: no
//! restart. Otherwise the whole file goes live with the roll, as any other config change.
//!
//! Kafka keeps a per-broker dynamic config in ZooKeeper (or the KRaft metadata log), and it
//! outranks server.properties from then on, across restarts. So clusterctl owns the
//! overrides it sets: each one always holds what the broker's server.properties says. A later
//! change of that key sets the override again (live) or, when the change has to roll anyway,
//! updates or deletes it just before the restart; a key removed from the inventory deletes
//! it. A broker that was stopped while its file changed gets the same treatment once it has
//! started. clusterctl never sets cluster-wide defaults; one set by hand outranks every
//! broker's server.properties (the dry run names it).

use super::dynamic;
use super::plan::HostPlan;
use crate::health::kafka::{BrokerConfig, KafkaClient};
use crate::inventory::Inventory;
use crate::render::{Service, is_secret_key};
use anyhow::{Context, Result, bail};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

pub const SERVER_PROPERTIES: &str = "/etc/kafka/server.properties";
/// How long a broker may take to show a live change in DescribeConfigs (ZooKeeper mode and
/// KRaft both apply it asynchronously, after the request returns).
const APPLIED_WITHIN: Duration = Duration::from_secs(30);
/// How long a broker that apply has just started may take to answer the admin API.
const ANSWERS_WITHIN: Duration = Duration::from_secs(120);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Per-broker dynamic configs to set (key, value) and to delete.
pub type Ops = (Vec<(String, String)>, Vec<String>);

/// One key whose value differs between the host's server.properties and the wanted one.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyChange {
    pub key: String,
    pub old: Option<String>,
    pub new: Option<String>,
    /// `Ok`: applied live; `Err`: why it needs a roll.
    pub verdict: Result<(), String>,
}

/// What apply does with one running broker's changed server.properties.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub keys: Vec<KeyChange>,
    /// Every changed key is applied live (or none changed): the file is written, no restart.
    pub live: bool,
    /// Per-broker dynamic configs to set and delete: the change itself when live; else the
    /// overrides that would outrank the new file, made to follow it before the restart.
    pub set: Vec<(String, String)>,
    pub delete: Vec<String>,
}

/// What a `Change::LiveConfig` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LiveKind {
    /// The change, made live instead of a restart.
    Live,
    /// Just before the roll restarts the broker: overrides set live earlier follow the file.
    BeforeRestart,
    /// Once a broker that was stopped has started: any override of these keys (set live
    /// earlier) follows the file; keys without one are left alone.
    AfterStart,
}

/// Per-broker dynamic configs of one broker to set and delete (`Change::LiveConfig`).
#[derive(Debug, Clone, PartialEq)]
pub struct LiveConfig {
    pub kind: LiveKind,
    pub broker: i32,
    /// `host:port` of the broker itself: Kafka takes a broker's own configs only from it.
    pub addr: String,
    pub set: Vec<(String, String)>,
    pub delete: Vec<String>,
}

impl LiveConfig {
    pub fn describe(&self) -> String {
        let ops = ops_text(&self.set, &self.delete);
        match self.kind {
            LiveKind::Live => format!(
                "apply live on broker {} (IncrementalAlterConfigs, no restart): {ops}",
                self.broker
            ),
            LiveKind::BeforeRestart => format!(
                "before the restart, the per-broker overrides of broker {} follow the file \
                 (set live earlier, they outrank server.properties): {ops}",
                self.broker
            ),
            LiveKind::AfterStart => format!(
                "once kafka has started, any per-broker override of broker {} (set live \
                 earlier, it outranks server.properties) follows the file: {ops}",
                self.broker
            ),
        }
    }
}

fn shown(key: &str, value: &str) -> String {
    if is_secret_key(key) {
        "********".into()
    } else {
        value.into()
    }
}

fn ops_text(set: &[(String, String)], delete: &[String]) -> String {
    let mut parts: Vec<String> = set
        .iter()
        .map(|(k, v)| format!("set {k}={}", shown(k, v)))
        .collect();
    parts.extend(delete.iter().map(|k| format!("delete {k}")));
    parts.join(", ")
}

impl KeyChange {
    /// One line of the dry run: the key, its old and new value, and the verdict.
    pub fn describe(&self) -> String {
        let v = |x: &Option<String>| {
            x.as_deref()
                .map_or("(unset)".into(), |v| shown(&self.key, v))
        };
        let verdict = match &self.verdict {
            Ok(()) => "applied live".to_string(),
            Err(why) => why.clone(),
        };
        format!(
            "{}: {} -> {}: {verdict}",
            self.key,
            v(&self.old),
            v(&self.new)
        )
    }
}

/// Keys a running node needs no restart for: read only at startup, and what they point to
/// the node keeps up with by itself (the quorum's bootstrap list: the voters are in the log).
const NEXT_START_ONLY: &[&str] = &[super::quorum::BOOTSTRAP_KEY];

/// Whether `old` and `new` differ, and only in [`NEXT_START_ONLY`] keys; or, once a static
/// quorum has become dynamic (kraft.version 1, so `new` names the bootstrap list), also in
/// the voters line it drops: the voters are in the log by then.
pub fn only_next_start_keys(old: &str, new: &str) -> bool {
    use super::quorum::{BOOTSTRAP_KEY, VOTERS_KEY};
    let changed = changed_keys(old, new);
    let dynamic_now = changed
        .iter()
        .any(|(k, _, new)| k == BOOTSTRAP_KEY && new.is_some())
        && changed
            .iter()
            .any(|(k, _, new)| k == VOTERS_KEY && new.is_none());
    !changed.is_empty()
        && changed.iter().all(|(k, _, _)| {
            NEXT_START_ONLY.contains(&k.as_str()) || (dynamic_now && k == VOTERS_KEY)
        })
}

/// The keys whose values differ between `old` and `new` (server.properties texts), by name.
pub fn changed_keys(old: &str, new: &str) -> Vec<(String, Option<String>, Option<String>)> {
    let (old, new) = (
        crate::quote::parse_properties(old),
        crate::quote::parse_properties(new),
    );
    let mut keys: Vec<&String> = old.keys().chain(new.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter(|k| old.get(*k) != new.get(*k))
        .map(|k| (k.clone(), old.get(k).cloned(), new.get(k).cloned()))
        .collect()
}

/// Live or roll, per key and for the file, for broker `broker` of Kafka `version`: `state`
/// is what the broker said of the changed keys (DescribeConfigs), or why it could not be
/// asked; `anyway` says why the broker restarts regardless (another file, a new version).
/// Pure: unit tests feed it fabricated states.
pub fn decide(
    version: &str,
    broker: i32,
    changes: &[(String, Option<String>, Option<String>)],
    state: Result<&BTreeMap<String, BrokerConfig>, &str>,
    anyway: Option<&str>,
) -> Decision {
    let none = BTreeMap::new();
    let configs = state.unwrap_or(&none);
    let mut keys: Vec<KeyChange> = changes
        .iter()
        .map(|(key, old, new)| {
            let verdict = match (dynamic::live_update(key, version), &state, anyway) {
                (Err(why), _, _) => Err(why),
                (Ok(_), _, Some(why)) => Err(format!("needs a roll: {why}")),
                (Ok(_), Err(e), _) => Err(format!(
                    "needs a roll: broker {broker} did not say how it runs {key} ({e})"
                )),
                (Ok(_), Ok(_), None) => match (new, configs.get(key)) {
                    (
                        None,
                        Some(BrokerConfig {
                            static_value: Some(v),
                            ..
                        }),
                    ) => Err(format!(
                        "needs a roll: broker {broker} started with {key}={} in its file; only a \
                         restart unsets it",
                        shown(key, v)
                    )),
                    _ => Ok(()),
                },
            };
            KeyChange {
                key: key.clone(),
                old: old.clone(),
                new: new.clone(),
                verdict,
            }
        })
        .collect();
    let live = keys.iter().all(|k| k.verdict.is_ok());
    if !live {
        let rolled: Vec<String> = keys
            .iter()
            .filter(|k| k.verdict.is_err())
            .map(|k| k.key.clone())
            .collect();
        for k in keys.iter_mut().filter(|k| k.verdict.is_ok()) {
            k.verdict = Err(format!(
                "needs a roll: dynamic, but the file goes live with the restart {} needs",
                rolled.join(", ")
            ));
        }
        for k in &mut keys {
            if let Some(BrokerConfig {
                cluster_default: Some(d),
                ..
            }) = configs.get(&k.key)
            {
                k.verdict = k.verdict.clone().map_err(|why| {
                    format!(
                        "{why}; note: a cluster-wide dynamic default {}={} (not clusterctl's) \
                         outranks server.properties",
                        k.key,
                        shown(&k.key, d)
                    )
                });
            }
        }
    }
    // Live: the change itself. Rolled: only overrides that exist, so the file wins after it.
    let mut set = Vec::new();
    let mut delete = Vec::new();
    for k in &keys {
        let overridden = configs.get(&k.key).is_some_and(|c| c.per_broker.is_some());
        if live || overridden {
            match &k.new {
                Some(v) => set.push((k.key.clone(), v.clone())),
                None => delete.push(k.key.clone()),
            }
        }
    }
    Decision {
        keys,
        live,
        set,
        delete,
    }
}

impl Decision {
    /// The broker refused the live change (validate-only): everything rolls, overrides that
    /// exist still follow the file.
    pub fn refused(&self, broker: i32, why: &str, state: &BTreeMap<String, BrokerConfig>) -> Self {
        let mut keys = self.keys.clone();
        for k in &mut keys {
            k.verdict = Err(format!(
                "needs a roll: broker {broker} refused to change it live ({why})"
            ));
        }
        let overridden = |k: &str| state.get(k).is_some_and(|c| c.per_broker.is_some());
        Decision {
            live: false,
            set: self
                .set
                .iter()
                .filter(|(k, _)| overridden(k))
                .cloned()
                .collect(),
            delete: self
                .delete
                .iter()
                .filter(|k| overridden(k))
                .cloned()
                .collect(),
            keys,
        }
    }

    /// Lines for the dry run, under the file's line.
    pub fn lines(&self) -> Vec<String> {
        if self.keys.is_empty() {
            return vec![
                "no property changed (only layout or comments): written without a restart".into(),
            ];
        }
        self.keys.iter().map(KeyChange::describe).collect()
    }
}

/// For a broker that is stopped while its file changes: the changed keys that Kafka could
/// hold a per-broker override of, as (set, delete) for a `LiveKind::AfterStart` change.
pub fn after_start(inv: &Inventory, p: &HostPlan) -> Option<Ops> {
    let new = p.files.iter().find(|f| f.path == SERVER_PROPERTIES)?;
    let old = p.facts.server_properties.as_deref()?;
    if !p.host.in_kafka || !p.file_differs(new) {
        return None;
    }
    let mut set = Vec::new();
    let mut delete = Vec::new();
    for (key, _, value) in changed_keys(old, &new.content) {
        if dynamic::live_update(&key, &inv.kafka.version).is_err() {
            continue;
        }
        match value {
            Some(v) => set.push((key, v)),
            None => delete.push(key),
        }
    }
    (!set.is_empty() || !delete.is_empty()).then_some((set, delete))
}

/// Why Kafka restarts on this host whatever server.properties says: another of its files
/// changed, or its version's link moves.
fn restarts_anyway(inv: &Inventory, p: &HostPlan) -> Option<String> {
    if p.needs_install(inv, crate::artifacts::Product::Kafka) {
        return Some(format!(
            "kafka restarts here anyway (Kafka {} goes live)",
            inv.kafka.version
        ));
    }
    p.changed_files()
        .into_iter()
        .find(|f| f.restarts == Some(Service::Kafka) && f.path != SERVER_PROPERTIES)
        .map(|f| format!("kafka restarts here anyway ({} changed)", f.path))
}

/// The decision for each running broker in `selected` whose server.properties changes, made
/// with what the broker itself says (one connection each, in parallel; none when no broker's
/// file changes). Brokers whose changed keys are all read-only are not asked.
pub async fn decide_all(
    inv: &Inventory,
    plans: &mut [HostPlan],
    selected: &dyn Fn(&HostPlan) -> bool,
) {
    let jobs: Vec<_> = plans
        .iter()
        .enumerate()
        .filter(|(_, p)| selected(p))
        .filter_map(|(i, p)| {
            let new = p.files.iter().find(|f| f.path == SERVER_PROPERTIES)?;
            let old = p.facts.server_properties.clone()?;
            let broker = p.broker_id? as i32;
            if !p.host.in_kafka || p.running(Service::Kafka).is_none() || !p.file_differs(new) {
                return None;
            }
            if only_next_start_keys(&old, &new.content) {
                return None;
            }
            let changes: Vec<_> = changed_keys(&old, &new.content)
                .into_iter()
                .filter(|(k, _, _)| !NEXT_START_ONLY.contains(&k.as_str()))
                .collect();
            let anyway = restarts_anyway(inv, p);
            let addr = format!("{}:{}", p.host.address, inv.kafka.port);
            Some(async move { (i, decide_one(inv, broker, &addr, &changes, anyway).await) })
        })
        .collect();
    for (i, d) in futures::future::join_all(jobs).await {
        plans[i].live = Some(d);
    }
}

async fn decide_one(
    inv: &Inventory,
    broker: i32,
    addr: &str,
    changes: &[(String, Option<String>, Option<String>)],
    anyway: Option<String>,
) -> Decision {
    let version = &inv.kafka.version;
    // Only keys Kafka lists as dynamic can have an override, or go live.
    let ask = changes.iter().any(|(k, _, _)| dynamic::known(k));
    if changes.is_empty() || !ask {
        let empty = BTreeMap::new();
        return decide(version, broker, changes, Ok(&empty), anyway.as_deref());
    }
    let keys: Vec<String> = changes.iter().map(|(k, _, _)| k.clone()).collect();
    let asked = async {
        let mut c = KafkaClient::connect(addr, CONNECT_TIMEOUT).await?;
        let state = c.describe_broker_configs(broker, &keys).await?;
        anyhow::Ok((c, state))
    }
    .await;
    let (mut client, state) = match asked {
        Ok(x) => x,
        Err(e) => {
            let e = format!("{e:#}");
            return decide(version, broker, changes, Err(&e), anyway.as_deref());
        }
    };
    let d = decide(version, broker, changes, Ok(&state), anyway.as_deref());
    if !d.live || (d.set.is_empty() && d.delete.is_empty()) {
        return d;
    }
    // The broker checks the change against its running config (a thread count may only
    // halve or double at a time, for one): what it would refuse rolls instead.
    match client
        .alter_broker_configs(broker, &d.set, &d.delete, true)
        .await
    {
        Ok(()) => d,
        Err(e) => d.refused(broker, &api_message(&e), &state),
    }
}

/// The broker's own words for a refused call, else the whole error.
fn api_message(e: &anyhow::Error) -> String {
    match e.downcast_ref::<crate::health::kafka::ApiError>() {
        Some(api) => match &api.message {
            Some(m) if !m.is_empty() => format!("{}: {m}", api.error),
            _ => api.error.to_string(),
        },
        None => format!("{e:#}"),
    }
}

/// Makes `c` on its broker and checks with DescribeConfigs that it took. Returns what was
/// done, for the summary.
pub async fn make(c: &LiveConfig) -> Result<Option<String>> {
    let mut client = match c.kind {
        LiveKind::AfterStart => connect_when_answering(&c.addr).await?,
        _ => KafkaClient::connect(&c.addr, CONNECT_TIMEOUT).await?,
    };
    let (mut set, mut delete) = (c.set.clone(), c.delete.clone());
    if c.kind == LiveKind::AfterStart {
        let keys: Vec<String> = set
            .iter()
            .map(|(k, _)| k.clone())
            .chain(delete.clone())
            .collect();
        let state = client.describe_broker_configs(c.broker, &keys).await?;
        let overridden = |k: &str| state.get(k).is_some_and(|s| s.per_broker.is_some());
        set.retain(|(k, _)| overridden(k));
        delete.retain(|k| overridden(k));
        if set.is_empty() && delete.is_empty() {
            return Ok(None);
        }
    }
    client
        .alter_broker_configs(c.broker, &set, &delete, false)
        .await
        .with_context(|| format!("broker {}: {}", c.broker, ops_text(&set, &delete)))?;
    confirm(&mut client, c.broker, &set, &delete).await?;
    let what = match c.kind {
        LiveKind::Live => "applied live",
        LiveKind::BeforeRestart | LiveKind::AfterStart => "per-broker overrides follow the file",
    };
    Ok(Some(format!(
        "{what} on broker {}: {} (DescribeConfigs confirms)",
        c.broker,
        ops_text(&set, &delete)
    )))
}

/// Polls DescribeConfigs until each set key's per-broker value is in effect and each deleted
/// key has none (Kafka applies a change after the request returns).
async fn confirm(
    client: &mut KafkaClient,
    broker: i32,
    set: &[(String, String)],
    delete: &[String],
) -> Result<()> {
    let keys: Vec<String> = set
        .iter()
        .map(|(k, _)| k.clone())
        .chain(delete.to_vec())
        .collect();
    let start = Instant::now();
    loop {
        let state = client.describe_broker_configs(broker, &keys).await?;
        let pending: Vec<String> = set
            .iter()
            .filter(|(k, v)| {
                let c = state.get(k);
                c.and_then(|c| c.per_broker.as_ref()) != Some(v)
                    || c.is_none_or(|c| c.source != crate::health::kafka::SOURCE_DYNAMIC_BROKER)
            })
            .map(|(k, v)| format!("{k}={}", shown(k, v)))
            .chain(
                delete
                    .iter()
                    .filter(|k| state.get(*k).is_some_and(|c| c.per_broker.is_some()))
                    .map(|k| format!("no override of {k}")),
            )
            .collect();
        if pending.is_empty() {
            return Ok(());
        }
        if start.elapsed() > APPLIED_WITHIN {
            bail!(
                "broker {broker} accepted the change but DescribeConfigs does not show {} after {}s",
                pending.join(", "),
                APPLIED_WITHIN.as_secs()
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A broker apply has just started answers the admin API once it has joined the cluster.
async fn connect_when_answering(addr: &str) -> Result<KafkaClient> {
    let start = Instant::now();
    loop {
        match KafkaClient::connect(addr, CONNECT_TIMEOUT).await {
            Ok(c) => return Ok(c),
            Err(e) if start.elapsed() > ANSWERS_WITHIN => {
                return Err(e.context(format!(
                    "the broker did not answer within {}s of its start",
                    ANSWERS_WITHIN.as_secs()
                )));
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(
        k: &str,
        old: Option<&str>,
        new: Option<&str>,
    ) -> (String, Option<String>, Option<String>) {
        (k.into(), old.map(Into::into), new.map(Into::into))
    }

    fn started_with(
        pairs: &[(&str, Option<&str>, Option<&str>)],
    ) -> BTreeMap<String, BrokerConfig> {
        pairs
            .iter()
            .map(|(k, stat, over)| {
                (
                    k.to_string(),
                    BrokerConfig {
                        value: over.or(*stat).map(Into::into),
                        source: if over.is_some() { 2 } else { 4 },
                        per_broker: over.map(Into::into),
                        cluster_default: None,
                        static_value: stat.map(Into::into),
                    },
                )
            })
            .collect()
    }

    #[test]
    fn changed_keys_compare_values_not_lines() {
        let old = "# Managed by clusterctl\na=1\nb=2\nc=3\n";
        let new = "# Managed by clusterctl: new wording\nb = 2\na=1\nc=4\nd=5\n";
        assert_eq!(
            changed_keys(old, new),
            [
                change("c", Some("3"), Some("4")),
                change("d", None, Some("5"))
            ]
        );
        assert_eq!(
            changed_keys(old, "a=1\n"),
            [change("b", Some("2"), None), change("c", Some("3"), None)]
        );
        assert!(changed_keys(old, old).is_empty());
    }

    #[test]
    fn dynamic_changes_go_live_and_say_so() {
        let changes = [
            change("message.max.bytes", Some("1048588"), Some("2000000")),
            change("log.cleaner.threads", None, Some("2")),
        ];
        let state = started_with(&[
            ("message.max.bytes", Some("1048588"), None),
            ("log.cleaner.threads", None, None),
        ]);
        let d = decide("3.9.1", 1, &changes, Ok(&state), None);
        assert!(d.live);
        assert_eq!(
            d.set,
            [
                ("message.max.bytes".to_string(), "2000000".to_string()),
                ("log.cleaner.threads".to_string(), "2".to_string())
            ]
        );
        assert!(d.delete.is_empty());
        assert_eq!(
            d.lines(),
            [
                "message.max.bytes: 1048588 -> 2000000: applied live",
                "log.cleaner.threads: (unset) -> 2: applied live"
            ]
        );
    }

    #[test]
    fn one_read_only_key_rolls_the_whole_file() {
        let changes = [
            change("message.max.bytes", Some("1048588"), Some("2000000")),
            change("queued.max.requests", Some("500"), Some("600")),
        ];
        let state = started_with(&[("message.max.bytes", Some("1048588"), None)]);
        let d = decide("3.9.1", 1, &changes, Ok(&state), None);
        assert!(!d.live);
        // No override to reconcile: the file wins after the restart by itself.
        assert!(d.set.is_empty() && d.delete.is_empty(), "{d:?}");
        let lines = d.lines();
        assert!(lines[0].starts_with("message.max.bytes: 1048588 -> 2000000: needs a roll: dynamic, but the file goes live with the restart queued.max.requests needs"), "{lines:?}");
        assert!(lines[1].contains("needs a roll: read-only"), "{lines:?}");
    }

    /// An override clusterctl set live earlier outranks server.properties: when the key then
    /// changes with a roll, the override is set to the new value (or deleted) before it.
    #[test]
    fn overrides_follow_the_file_through_a_roll() {
        let changes = [
            change("message.max.bytes", Some("2000000"), Some("3000000")),
            change("log.cleaner.threads", Some("2"), None),
            change("queued.max.requests", Some("500"), Some("600")),
        ];
        let state = started_with(&[
            ("message.max.bytes", Some("1048588"), Some("2000000")),
            ("log.cleaner.threads", None, Some("2")),
        ]);
        let d = decide("3.9.1", 1, &changes, Ok(&state), None);
        assert!(!d.live);
        assert_eq!(
            d.set,
            [("message.max.bytes".to_string(), "3000000".to_string())]
        );
        assert_eq!(d.delete, ["log.cleaner.threads"]);
    }

    /// A removed key goes live (its override deleted) only if the broker did not read it from
    /// its file at startup: deleting the override would bring that old value back.
    #[test]
    fn a_removed_key_is_live_only_if_the_broker_did_not_start_with_it() {
        let changes = [change("message.max.bytes", Some("2000000"), None)];
        let set_live = started_with(&[("message.max.bytes", None, Some("2000000"))]);
        let d = decide("3.9.1", 2, &changes, Ok(&set_live), None);
        assert!(d.live, "{d:?}");
        assert_eq!(d.delete, ["message.max.bytes"]);
        let from_file = started_with(&[("message.max.bytes", Some("2000000"), None)]);
        let d = decide("3.9.1", 2, &changes, Ok(&from_file), None);
        assert!(!d.live);
        assert!(
            d.keys[0]
                .describe()
                .contains("broker 2 started with message.max.bytes=2000000 in its file"),
            "{d:?}"
        );
        // Restarted since it was set live: both layers; the override still has to go.
        let both = started_with(&[("message.max.bytes", Some("2000000"), Some("2000000"))]);
        let d = decide("3.9.1", 2, &changes, Ok(&both), None);
        assert!(!d.live);
        assert_eq!(d.delete, ["message.max.bytes"]);
    }

    #[test]
    fn a_broker_that_cannot_be_asked_or_refuses_rolls() {
        let changes = [change("num.io.threads", Some("8"), Some("1"))];
        let d = decide("3.9.1", 3, &changes, Err("connect failed"), None);
        assert!(!d.live);
        assert!(
            d.keys[0]
                .describe()
                .contains("broker 3 did not say how it runs num.io.threads (connect failed)")
        );
        let state = started_with(&[("num.io.threads", Some("8"), None)]);
        let d = decide("3.9.1", 3, &changes, Ok(&state), None);
        assert!(d.live);
        let r = d.refused(
            3,
            "InvalidRequest: value should be at least half the current value 8",
            &state,
        );
        assert!(!r.live && r.set.is_empty());
        assert!(r.keys[0].describe().ends_with("needs a roll: broker 3 refused to change it live (InvalidRequest: value should be at least half the current value 8)"));
        // Restarting anyway (a new version, another file): everything goes with the roll.
        let d = decide(
            "3.9.1",
            3,
            &changes,
            Ok(&state),
            Some("kafka restarts here anyway (/etc/kafka/kafka.env changed)"),
        );
        assert!(!d.live);
        assert!(
            d.keys[0].describe().ends_with(
                "needs a roll: kafka restarts here anyway (/etc/kafka/kafka.env changed)"
            )
        );
    }

    #[test]
    fn a_cluster_wide_default_is_named_when_it_would_shadow_the_file() {
        let changes = [change("log.retention.hours", Some("168"), Some("24"))];
        let mut state = BTreeMap::new();
        state.insert(
            "log.retention.hours".to_string(),
            BrokerConfig {
                cluster_default: Some("72".into()),
                ..Default::default()
            },
        );
        let d = decide("3.9.1", 1, &changes, Ok(&state), None);
        assert!(d.keys[0].describe().contains("a cluster-wide dynamic default log.retention.hours=72 (not clusterctl's) outranks server.properties"));
    }

    #[test]
    fn only_layout_changed() {
        let d = decide("3.9.1", 1, &[], Ok(&BTreeMap::new()), None);
        assert!(d.live && d.set.is_empty());
        assert!(d.lines()[0].starts_with("no property changed"));
    }

    #[test]
    fn secrets_stay_masked() {
        let changes = [change(
            "my.plugin.password",
            Some("old-secret"),
            Some("new-secret"),
        )];
        let d = decide("3.9.1", 1, &changes, Ok(&BTreeMap::new()), None);
        let line = d.keys[0].describe();
        assert!(!line.contains("secret"), "{line}");
        let c = LiveConfig {
            kind: LiveKind::Live,
            broker: 1,
            addr: "x:9092".into(),
            set: vec![("sasl.password".into(), "hunter2".into())],
            delete: vec![],
        };
        assert!(!c.describe().contains("hunter2"));
    }
}
