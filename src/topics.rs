//! `clusterctl topics list|describe|create|delete|alter`, over Kafka's own
//! admin APIs (Metadata, CreateTopics, DeleteTopics, CreatePartitions,
//! DescribeConfigs, IncrementalAlterConfigs): no JVM on the operator's machine.
//!
//! Mutations are idempotent where Kafka allows it: creating a topic that
//! already exists exactly as asked, setting a config to its current value or
//! growing a topic to its current partition count changes nothing and says
//! so. Each mutation waits (bounded) until the broker's metadata shows its
//! effect and then prints the topic as `describe` would.

use std::collections::BTreeMap;
use std::fmt;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde::Serialize;

use crate::health::kafka::{self, ClusterMetadata, KafkaClient, PartitionInfo, TopicInfo};

/// Bound on connecting and on each broker call.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a mutation waits for metadata to show its effect.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(15);
const SETTLE_POLL: Duration = Duration::from_millis(200);
/// Kafka's own topics: deleting them breaks consumer groups or transactions.
const KAFKA_OWN_TOPICS: &[&str] = &[
    "__consumer_offsets",
    "__transaction_state",
    "__cluster_metadata",
];
/// Kafka's limit on topic name length.
const MAX_TOPIC_NAME: usize = 249;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TopicCommand {
    /// Every topic with its partition count, replication factor and health;
    /// internal topics (names starting with `__`) are marked.
    List,
    /// Partitions (leader, replicas, ISR, offline replicas, flags) and
    /// topic-level configs of one topic, or of every topic.
    Describe {
        topic: Option<String>,
    },
    Create {
        topic: String,
        partitions: i32,
        replication_factor: i16,
        configs: Vec<(String, String)>,
    },
    Delete {
        topic: String,
    },
    /// Grow the partition count, set configs, remove config overrides.
    Alter {
        topic: String,
        partitions: Option<i32>,
        set: Vec<(String, String)>,
        delete: Vec<String>,
    },
}

/// Arguments that are wrong whatever the cluster says (the CLI's exit 2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidArgs(pub String);

impl fmt::Display for InvalidArgs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for InvalidArgs {}

/// Parses a `--config KEY=VALUE` argument (usable as a clap `value_parser`).
pub fn parse_config_arg(arg: &str) -> Result<(String, String), String> {
    let Some((key, value)) = arg.split_once('=') else {
        return Err(format!(
            "expected KEY=VALUE (e.g. retention.ms=86400000), got {arg:?}"
        ));
    };
    let key = parse_config_key(key.trim())?;
    if value.is_empty() {
        return Err(format!(
            "{key} has an empty value; to remove a topic's override of {key}, delete it instead"
        ));
    }
    Ok((key, value.to_string()))
}

/// Parses a config name (`--delete-config KEY`; usable as a clap `value_parser`).
pub fn parse_config_key(key: &str) -> Result<String, String> {
    if key.is_empty() {
        return Err("empty config name".to_string());
    }
    if key.contains('=') {
        return Err(format!(
            "expected a config name without a value, got {key:?}"
        ));
    }
    if let Some(c) = key
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(format!(
            "config name {key:?} contains {c:?}; Kafka config names use letters, digits, '.', '_' and '-'"
        ));
    }
    Ok(key.to_string())
}

/// Kafka's topic name rules (`org.apache.kafka.common.internals.Topic`).
fn check_topic_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("topic name is empty".into());
    }
    if name == "." || name == ".." {
        return Err(format!("topic name {name:?} is not allowed"));
    }
    if name.len() > MAX_TOPIC_NAME {
        return Err(format!(
            "topic name is {} characters long; Kafka allows at most {MAX_TOPIC_NAME}",
            name.len()
        ));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(format!(
            "topic name {name:?} contains {c:?}; Kafka topic names use ASCII letters, digits, '.', '_' and '-'"
        ));
    }
    Ok(())
}

/// Names starting with `__` are internal: Kafka's own (`__consumer_offsets`,
/// `__transaction_state`) and clusterctl's `__clusterctl_smoke`.
pub fn is_internal(name: &str) -> bool {
    name.starts_with("__")
}

/// Checks what can be checked without a cluster.
fn check_args(cmd: &TopicCommand) -> Result<(), InvalidArgs> {
    let bad = |m: String| Err(InvalidArgs(m));
    let topic = match cmd {
        TopicCommand::List | TopicCommand::Describe { topic: None } => return Ok(()),
        TopicCommand::Describe { topic: Some(t) }
        | TopicCommand::Create { topic: t, .. }
        | TopicCommand::Delete { topic: t }
        | TopicCommand::Alter { topic: t, .. } => t,
    };
    check_topic_name(topic).or_else(bad)?;
    match cmd {
        TopicCommand::Create {
            partitions,
            replication_factor,
            configs,
            ..
        } => {
            if *partitions < 1 {
                return bad(format!("partitions must be at least 1, got {partitions}"));
            }
            if *replication_factor < 1 {
                return bad(format!(
                    "replication factor must be at least 1, got {replication_factor}"
                ));
            }
            if let Some(k) = first_duplicate(configs.iter().map(|(k, _)| k)) {
                return bad(format!("config {k} is given more than once"));
            }
        }
        TopicCommand::Delete { topic } if KAFKA_OWN_TOPICS.contains(&topic.as_str()) => {
            return bad(format!(
                "{topic} is one of Kafka's internal topics; clusterctl does not delete it"
            ));
        }
        TopicCommand::Alter {
            partitions,
            set,
            delete,
            ..
        } => {
            if partitions.is_none() && set.is_empty() && delete.is_empty() {
                return bad(
                    "nothing to alter: give a partition count, configs to set or configs to delete"
                        .into(),
                );
            }
            if let Some(p) = partitions.filter(|p| *p < 1) {
                return bad(format!("partitions must be at least 1, got {p}"));
            }
            if let Some(k) = first_duplicate(set.iter().map(|(k, _)| k)) {
                return bad(format!("config {k} is given more than once"));
            }
            if let Some(k) = set.iter().map(|(k, _)| k).find(|k| delete.contains(k)) {
                return bad(format!("config {k} is both set and deleted"));
            }
        }
        _ => {}
    }
    Ok(())
}

fn first_duplicate<'a>(keys: impl Iterator<Item = &'a String>) -> Option<&'a String> {
    let mut seen = std::collections::BTreeSet::new();
    keys.into_iter().find(|k| !seen.insert(*k))
}

/// Runs one topic command against the cluster reachable through `bootstrap`
/// (`host:port` of brokers; the first that answers is used, admin requests
/// are redirected to the controller where Kafka needs it) and returns what to
/// print: text, or pretty JSON when `json`. Argument errors are [`InvalidArgs`]
/// and are reported before any connection is made.
pub async fn run(bootstrap: &[String], cmd: TopicCommand, json: bool) -> Result<String> {
    check_args(&cmd)?;
    let mut client = kafka::connect_any(bootstrap, CALL_TIMEOUT).await?;
    match cmd {
        TopicCommand::List => {
            let meta = client.metadata(None).await?;
            let entries = list_entries(&meta);
            if json {
                return to_json(&ListOutput { topics: entries });
            }
            Ok(format_list(&entries))
        }
        TopicCommand::Describe { topic } => {
            let descriptions = match topic {
                Some(t) => vec![describe(&mut client, &t).await?],
                None => {
                    let meta = client.metadata(None).await?;
                    let mut out = Vec::new();
                    for t in sorted_topics(&meta) {
                        let configs = client.describe_topic_configs(&t.name).await?;
                        out.push(description(&meta, t, configs));
                    }
                    out
                }
            };
            if json {
                return to_json(&ListOutput {
                    topics: descriptions,
                });
            }
            if descriptions.is_empty() {
                return Ok("no topics".into());
            }
            Ok(descriptions
                .iter()
                .map(format_description)
                .collect::<Vec<_>>()
                .join("\n\n"))
        }
        TopicCommand::Create {
            topic,
            partitions,
            replication_factor,
            configs,
        } => {
            let outcome = create(
                &mut client,
                &topic,
                partitions,
                replication_factor,
                &configs,
            )
            .await?;
            finish(&mut client, outcome, json).await
        }
        TopicCommand::Delete { topic } => {
            let outcome = delete(&mut client, &topic).await?;
            finish(&mut client, outcome, json).await
        }
        TopicCommand::Alter {
            topic,
            partitions,
            set,
            delete,
        } => {
            let outcome = alter(&mut client, &topic, partitions, &set, &delete).await?;
            finish(&mut client, outcome, json).await
        }
    }
}

fn to_json<T: Serialize>(v: &T) -> Result<String> {
    serde_json::to_string_pretty(v).context("encoding JSON")
}

// ---------------------------------------------------------------------------
// Views
// ---------------------------------------------------------------------------

#[derive(Debug, Serialize)]
struct ListOutput<T> {
    topics: Vec<T>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
struct ListEntry {
    name: String,
    internal: bool,
    partitions: usize,
    replication_factor: usize,
    under_replicated: usize,
    offline: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
struct Description {
    name: String,
    internal: bool,
    partition_count: usize,
    replication_factor: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    /// Topic-level overrides only; everything else is the broker's default.
    configs: BTreeMap<String, String>,
    partitions: Vec<PartitionView>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
struct PartitionView {
    partition: i32,
    /// `None` when the partition has no leader.
    leader: Option<i32>,
    replicas: Vec<i32>,
    isr: Vec<i32>,
    offline_replicas: Vec<i32>,
    /// ISR smaller than the replica set.
    under_replicated: bool,
    /// No leader, or a leader that is not a live broker: clients cannot use it.
    offline: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

fn sorted_topics(meta: &ClusterMetadata) -> Vec<&TopicInfo> {
    let mut topics: Vec<&TopicInfo> = meta.topics.iter().filter(|t| t.exists()).collect();
    topics.sort_by(|a, b| a.name.cmp(&b.name));
    topics
}

/// Replication factor as `kafka-topics` reports it: the first partition's.
fn topic_rf(t: &TopicInfo) -> usize {
    t.partitions
        .iter()
        .min_by_key(|p| p.id)
        .map_or(0, |p| p.replicas.len())
}

fn partition_view(meta: &ClusterMetadata, p: &PartitionInfo) -> PartitionView {
    PartitionView {
        partition: p.id,
        leader: (p.leader >= 0).then_some(p.leader),
        replicas: p.replicas.clone(),
        isr: p.isr.clone(),
        offline_replicas: p.offline.clone(),
        under_replicated: p.isr.len() < p.replicas.len(),
        offline: p.leader < 0 || meta.broker(p.leader).is_none(),
        error: p.error.clone(),
    }
}

fn list_entries(meta: &ClusterMetadata) -> Vec<ListEntry> {
    sorted_topics(meta)
        .into_iter()
        .map(|t| {
            let views: Vec<PartitionView> = t
                .partitions
                .iter()
                .map(|p| partition_view(meta, p))
                .collect();
            ListEntry {
                name: t.name.clone(),
                internal: is_internal(&t.name),
                partitions: t.partitions.len(),
                replication_factor: topic_rf(t),
                under_replicated: views.iter().filter(|v| v.under_replicated).count(),
                offline: views.iter().filter(|v| v.offline).count(),
                error: t.error.clone(),
            }
        })
        .collect()
}

fn description(
    meta: &ClusterMetadata,
    t: &TopicInfo,
    configs: Vec<(String, String)>,
) -> Description {
    let mut partitions: Vec<PartitionView> = t
        .partitions
        .iter()
        .map(|p| partition_view(meta, p))
        .collect();
    partitions.sort_by_key(|p| p.partition);
    Description {
        name: t.name.clone(),
        internal: is_internal(&t.name),
        partition_count: t.partitions.len(),
        replication_factor: topic_rf(t),
        error: t.error.clone(),
        configs: configs.into_iter().collect(),
        partitions,
    }
}

/// `1,2,3`, or `-` for none.
fn ids(v: &[i32]) -> String {
    if v.is_empty() {
        return "-".into();
    }
    v.iter().map(i32::to_string).collect::<Vec<_>>().join(",")
}

/// Left-aligned columns two spaces apart, without trailing blanks.
fn table(indent: &str, header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        format!("{indent}{}", padded.join("  ").trim_end())
    };
    std::iter::once(line(header.to_vec()))
        .chain(
            rows.iter()
                .map(|r| line(r.iter().map(String::as_str).collect())),
        )
        .collect::<Vec<_>>()
        .join("\n")
}

fn list_status(e: &ListEntry) -> String {
    let mut parts = Vec::new();
    if let Some(err) = &e.error {
        parts.push(err.clone());
    }
    if e.under_replicated > 0 {
        parts.push(format!("{} under-replicated", e.under_replicated));
    }
    if e.offline > 0 {
        parts.push(format!("{} offline", e.offline));
    }
    if parts.is_empty() {
        "ok".into()
    } else {
        parts.join(", ")
    }
}

fn format_list(entries: &[ListEntry]) -> String {
    if entries.is_empty() {
        return "no topics".into();
    }
    let rows: Vec<Vec<String>> = entries
        .iter()
        .map(|e| {
            vec![
                e.name.clone(),
                e.partitions.to_string(),
                e.replication_factor.to_string(),
                if e.internal { "yes" } else { "-" }.to_string(),
                list_status(e),
            ]
        })
        .collect();
    table(
        "",
        &["TOPIC", "PARTITIONS", "RF", "INTERNAL", "STATUS"],
        &rows,
    )
}

fn partition_status(p: &PartitionView) -> String {
    let mut flags = Vec::new();
    if let Some(e) = &p.error {
        flags.push(e.clone());
    }
    if p.under_replicated {
        flags.push("UNDER-REPLICATED".to_string());
    }
    if p.offline {
        flags.push("OFFLINE".to_string());
    }
    if flags.is_empty() {
        "ok".into()
    } else {
        flags.join(", ")
    }
}

fn format_description(d: &Description) -> String {
    let mut head = format!(
        "Topic: {}  PartitionCount: {}  ReplicationFactor: {}",
        d.name, d.partition_count, d.replication_factor
    );
    if d.internal {
        head.push_str("  Internal: yes");
    }
    if let Some(e) = &d.error {
        head.push_str(&format!("  Error: {e}"));
    }
    let configs = if d.configs.is_empty() {
        "Configs: none (broker defaults)".to_string()
    } else {
        let kv: Vec<String> = d.configs.iter().map(|(k, v)| format!("{k}={v}")).collect();
        format!("Configs: {}", kv.join(","))
    };
    let rows: Vec<Vec<String>> = d
        .partitions
        .iter()
        .map(|p| {
            vec![
                p.partition.to_string(),
                p.leader.map_or("none".into(), |l| l.to_string()),
                ids(&p.replicas),
                ids(&p.isr),
                ids(&p.offline_replicas),
                partition_status(p),
            ]
        })
        .collect();
    let parts = table(
        "  ",
        &[
            "PARTITION",
            "LEADER",
            "REPLICAS",
            "ISR",
            "OFFLINE",
            "STATUS",
        ],
        &rows,
    );
    format!("{head}\n{configs}\n{parts}")
}

// ---------------------------------------------------------------------------
// Operations
// ---------------------------------------------------------------------------

/// What a mutation did, then the topic as it is now (`None` once deleted).
#[derive(Debug, Serialize)]
struct Outcome {
    topic: String,
    changed: bool,
    /// One line: what happened.
    summary: String,
    /// Per requested change: done, or already so.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    details: Vec<String>,
    /// Anything the operator should know (e.g. metadata still settling).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    notes: Vec<String>,
    #[serde(skip)]
    describe_after: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<Description>,
}

async fn finish(client: &mut KafkaClient, mut outcome: Outcome, json: bool) -> Result<String> {
    if outcome.describe_after {
        outcome.description = Some(describe(client, &outcome.topic).await?);
    }
    if json {
        return to_json(&outcome);
    }
    Ok(format_outcome(&outcome))
}

fn format_outcome(outcome: &Outcome) -> String {
    let mut text = outcome.summary.clone();
    for d in &outcome.details {
        text.push_str(&format!("\n  {d}"));
    }
    for n in &outcome.notes {
        text.push_str(&format!("\nnote: {n}"));
    }
    if let Some(d) = &outcome.description {
        text.push_str("\n\n");
        text.push_str(&format_description(d));
    }
    text
}

/// Metadata for one topic; an error naming it when it does not exist.
async fn topic_metadata(
    client: &mut KafkaClient,
    topic: &str,
) -> Result<(ClusterMetadata, TopicInfo)> {
    let meta = client.metadata(Some(&[topic.to_string()])).await?;
    let info = find_topic(&meta, topic)?.clone();
    Ok((meta, info))
}

fn find_topic<'a>(meta: &'a ClusterMetadata, topic: &str) -> Result<&'a TopicInfo> {
    match meta.topics.iter().find(|t| t.name == topic) {
        Some(t) if t.exists() => Ok(t),
        _ => bail!("topic {topic} does not exist"),
    }
}

async fn describe(client: &mut KafkaClient, topic: &str) -> Result<Description> {
    let (meta, info) = topic_metadata(client, topic).await?;
    let configs = client.describe_topic_configs(topic).await?;
    Ok(description(&meta, &info, configs))
}

/// Polls metadata for `topic` until `done` holds or [`SETTLE_TIMEOUT`]
/// passes; returns whether it held.
async fn settle(
    client: &mut KafkaClient,
    topic: &str,
    done: impl Fn(Option<&TopicInfo>) -> bool,
) -> Result<bool> {
    let deadline = Instant::now() + SETTLE_TIMEOUT;
    loop {
        let meta = client.metadata(Some(&[topic.to_string()])).await?;
        let info = meta.topics.iter().find(|t| t.name == topic && t.exists());
        if done(info) {
            return Ok(true);
        }
        if Instant::now() + SETTLE_POLL >= deadline {
            return Ok(false);
        }
        tokio::time::sleep(SETTLE_POLL).await;
    }
}

/// Whether the topic's overrides show every change of `changes`.
fn configs_applied(current: &[(String, String)], changes: &[(String, Option<String>)]) -> bool {
    changes.iter().all(|(k, want)| {
        let now = current.iter().find(|(c, _)| c == k).map(|(_, v)| v);
        now == want.as_ref()
    })
}

/// Polls the topic's configs until they show `changes` (brokers in KRaft
/// mode learn them from the metadata log a moment after the controller).
async fn settle_configs(
    client: &mut KafkaClient,
    topic: &str,
    changes: &[(String, Option<String>)],
) -> Result<bool> {
    let deadline = Instant::now() + SETTLE_TIMEOUT;
    loop {
        if configs_applied(&client.describe_topic_configs(topic).await?, changes) {
            return Ok(true);
        }
        if Instant::now() + SETTLE_POLL >= deadline {
            return Ok(false);
        }
        tokio::time::sleep(SETTLE_POLL).await;
    }
}

/// Every partition up to `count` present, each with a leader.
fn has_leaders(t: Option<&TopicInfo>, count: usize) -> bool {
    t.is_some_and(|t| {
        t.error.is_none()
            && t.partitions.len() >= count
            && t.partitions.iter().all(|p| p.leader >= 0)
    })
}

fn config_list(configs: &[(String, String)]) -> String {
    configs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// How an existing topic differs from what `create` asks for.
fn create_differences(
    existing: &TopicInfo,
    current_configs: &[(String, String)],
    partitions: i32,
    replication_factor: i16,
    configs: &[(String, String)],
) -> Vec<String> {
    let mut diffs = Vec::new();
    if existing.partitions.len() != partitions as usize {
        diffs.push(format!(
            "it has {} partitions, not {partitions}",
            existing.partitions.len()
        ));
    }
    let rf = topic_rf(existing);
    if rf != replication_factor as usize {
        diffs.push(format!(
            "its replication factor is {rf}, not {replication_factor}"
        ));
    }
    let current: BTreeMap<&str, &str> = current_configs
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    for (k, v) in configs {
        match current.get(k.as_str()) {
            Some(cur) if cur == v => {}
            Some(cur) => diffs.push(format!("its {k} is {cur}, not {v}")),
            None => diffs.push(format!("{k} is not set on it (asked {v})")),
        }
    }
    diffs
}

async fn create(
    client: &mut KafkaClient,
    topic: &str,
    partitions: i32,
    replication_factor: i16,
    configs: &[(String, String)],
) -> Result<Outcome> {
    let meta = client.metadata(Some(&[topic.to_string()])).await?;
    if let Ok(existing) = find_topic(&meta, topic) {
        let current = client.describe_topic_configs(topic).await?;
        let diffs = create_differences(existing, &current, partitions, replication_factor, configs);
        if !diffs.is_empty() {
            bail!(
                "topic {topic} already exists and differs: {}; change partitions and configs with `topics alter` (a replication factor change needs a partition reassignment)",
                diffs.join("; ")
            );
        }
        return Ok(Outcome {
            topic: topic.into(),
            changed: false,
            summary: format!("topic {topic} already exists as asked: no change"),
            details: vec![],
            notes: vec![],
            describe_after: true,
            description: None,
        });
    }
    client
        .create_topic(topic, partitions, replication_factor, configs)
        .await
        .with_context(|| format!("creating topic {topic}"))?;
    let summary = format!(
        "created topic {topic}: {partitions} partition(s), replication factor {replication_factor}{}",
        if configs.is_empty() {
            String::new()
        } else {
            format!(", configs {}", config_list(configs))
        }
    );
    let mut notes = vec![];
    if !settle(client, topic, |t| has_leaders(t, partitions as usize)).await? {
        notes.push(format!(
            "not every partition of {topic} had a leader within {SETTLE_TIMEOUT:?}"
        ));
    }
    Ok(Outcome {
        topic: topic.into(),
        changed: true,
        summary,
        details: vec![],
        notes,
        describe_after: true,
        description: None,
    })
}

async fn delete(client: &mut KafkaClient, topic: &str) -> Result<Outcome> {
    topic_metadata(client, topic).await?;
    client
        .delete_topic(topic)
        .await
        .with_context(|| format!("deleting topic {topic}"))?;
    let gone = settle(client, topic, |t| t.is_none()).await?;
    let notes = if gone {
        vec![]
    } else {
        vec![format!(
            "the broker still lists {topic} after {SETTLE_TIMEOUT:?}: deletion in progress"
        )]
    };
    Ok(Outcome {
        topic: topic.into(),
        changed: true,
        summary: format!("deleted topic {topic}"),
        details: vec![],
        notes,
        describe_after: false,
        description: None,
    })
}

/// What `alter` will send, from the topic's current state.
#[derive(Debug, Default, PartialEq, Eq)]
struct AlterPlan {
    /// New total partition count.
    partitions: Option<i32>,
    configs: Vec<(String, Option<String>)>,
    /// One line per requested change, done or already so.
    lines: Vec<String>,
}

fn plan_alter(
    topic: &str,
    current_partitions: usize,
    current_configs: &[(String, String)],
    partitions: Option<i32>,
    set: &[(String, String)],
    delete: &[String],
) -> Result<AlterPlan> {
    let mut plan = AlterPlan::default();
    let current: BTreeMap<&str, &str> = current_configs
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    for (k, v) in set {
        match current.get(k.as_str()) {
            Some(cur) if cur == v => plan.lines.push(format!("{k} is already {v}")),
            Some(cur) => {
                plan.lines.push(format!("set {k}={v} (was {cur})"));
                plan.configs.push((k.clone(), Some(v.clone())));
            }
            None => {
                plan.lines.push(format!("set {k}={v} (was the default)"));
                plan.configs.push((k.clone(), Some(v.clone())));
            }
        }
    }
    for k in delete {
        match current.get(k.as_str()) {
            Some(cur) => {
                plan.lines
                    .push(format!("deleted {k} (was {cur}; now the default)"));
                plan.configs.push((k.clone(), None));
            }
            None => plan
                .lines
                .push(format!("{k} is not set on {topic}; nothing to delete")),
        }
    }
    if let Some(n) = partitions {
        let n_usize = usize::try_from(n).unwrap_or(0);
        if n_usize < current_partitions {
            bail!(
                "topic {topic} has {current_partitions} partitions and Kafka cannot reduce a topic's partition count (asked for {n}); to get fewer partitions, create a new topic and move the data to it"
            );
        }
        if n_usize == current_partitions {
            plan.lines
                .push(format!("{topic} already has {n} partitions"));
        } else {
            plan.lines
                .push(format!("partitions {current_partitions} -> {n}"));
            plan.partitions = Some(n);
        }
    }
    Ok(plan)
}

async fn alter(
    client: &mut KafkaClient,
    topic: &str,
    partitions: Option<i32>,
    set: &[(String, String)],
    delete: &[String],
) -> Result<Outcome> {
    let (_, info) = topic_metadata(client, topic).await?;
    let current = client.describe_topic_configs(topic).await?;
    let plan = plan_alter(
        topic,
        info.partitions.len(),
        &current,
        partitions,
        set,
        delete,
    )?;
    if !plan.configs.is_empty() {
        client
            .alter_topic_configs(topic, &plan.configs)
            .await
            .with_context(|| format!("altering configs of topic {topic}"))?;
    }
    if let Some(n) = plan.partitions {
        client
            .create_partitions(topic, n)
            .await
            .with_context(|| format!("adding partitions to topic {topic}"))?;
    }
    let changed = !plan.configs.is_empty() || plan.partitions.is_some();
    let summary = if changed {
        format!("altered topic {topic}:")
    } else {
        format!("topic {topic} is already as asked: no change")
    };
    let mut notes = vec![];
    if !plan.configs.is_empty() && !settle_configs(client, topic, &plan.configs).await? {
        notes.push(format!(
            "the broker did not show the new configs of {topic} within {SETTLE_TIMEOUT:?}"
        ));
    }
    if let Some(n) = plan.partitions
        && !settle(client, topic, |t| has_leaders(t, n as usize)).await?
    {
        notes.push(format!(
            "not every new partition of {topic} had a leader within {SETTLE_TIMEOUT:?}"
        ));
    }
    Ok(Outcome {
        topic: topic.into(),
        changed,
        summary,
        details: plan.lines,
        notes,
        describe_after: true,
        description: None,
    })
}

/// One change to the declared topics, planned before it is made.
#[derive(Debug, Clone, PartialEq)]
pub enum TopicChange {
    Create(crate::inventory::TopicSpec),
    Grow {
        topic: String,
        from: i32,
        to: i32,
    },
    SetConfigs {
        topic: String,
        set: Vec<(String, String)>,
    },
    Delete(String),
}

impl TopicChange {
    pub fn describe(&self) -> String {
        match self {
            TopicChange::Create(s) => format!(
                "create topic {} ({} partitions, replication factor {})",
                s.name, s.partitions, s.replication_factor
            ),
            TopicChange::Grow { topic, from, to } => {
                format!("topic {topic}: partitions {from} -> {to}")
            }
            TopicChange::SetConfigs { topic, set } => set
                .iter()
                .map(|(k, v)| format!("topic {topic}: set {k}={v}"))
                .collect::<Vec<_>>()
                .join("; "),
            TopicChange::Delete(t) => format!("delete undeclared topic {t}"),
        }
    }
}

/// What the declared topics need (and, with `prune`, which undeclared topics go), read from the
/// cluster without changing it. A replication factor change or fewer partitions is an error.
pub async fn plan(
    client: &mut kafka::KafkaClient,
    specs: &[crate::inventory::TopicSpec],
    prune: bool,
) -> Result<Vec<TopicChange>> {
    let meta = client.metadata(None).await?;
    let mut changes = Vec::new();
    for spec in specs {
        let Some(t) = meta
            .topics
            .iter()
            .find(|t| t.name == spec.name && t.exists())
        else {
            changes.push(TopicChange::Create(spec.clone()));
            continue;
        };
        let (have, rf) = (t.partitions.len() as i32, topic_rf(t));
        if rf != spec.replication_factor as usize {
            bail!(
                "topic {}: replication factor is {rf}, the inventory says {}; clusterctl does not \
                 reassign replicas (use kafka-reassign-partitions), so fix the inventory",
                spec.name,
                spec.replication_factor
            );
        }
        if spec.partitions < have {
            bail!(
                "topic {} has {have} partitions, the inventory says {}; Kafka cannot remove \
                 partitions: raise the inventory's count",
                spec.name,
                spec.partitions
            );
        }
        if spec.partitions > have {
            changes.push(TopicChange::Grow {
                topic: spec.name.clone(),
                from: have,
                to: spec.partitions,
            });
        }
        let current: BTreeMap<String, String> = client
            .describe_topic_configs(&spec.name)
            .await?
            .into_iter()
            .collect();
        let set: Vec<(String, String)> = spec
            .configs
            .iter()
            .filter(|(k, v)| current.get(*k) != Some(*v))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        if !set.is_empty() {
            changes.push(TopicChange::SetConfigs {
                topic: spec.name.clone(),
                set,
            });
        }
    }
    if prune {
        for t in sorted_topics(&meta) {
            if !is_internal(&t.name) && !specs.iter().any(|s| s.name == t.name) {
                changes.push(TopicChange::Delete(t.name.clone()));
            }
        }
    }
    Ok(changes)
}

/// Make planned topic changes; returns what was done.
pub async fn execute(bootstrap: &[String], changes: &[TopicChange]) -> Result<Vec<String>> {
    if changes.is_empty() {
        return Ok(vec![]);
    }
    let mut client = kafka::connect_any(bootstrap, CALL_TIMEOUT).await?;
    let mut done = Vec::new();
    for c in changes {
        match c {
            TopicChange::Create(spec) => {
                let configs: Vec<(String, String)> = spec
                    .configs
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                client
                    .create_topic(
                        &spec.name,
                        spec.partitions,
                        spec.replication_factor,
                        &configs,
                    )
                    .await?;
            }
            TopicChange::Grow { topic, to, .. } => client.create_partitions(topic, *to).await?,
            TopicChange::SetConfigs { topic, set } => {
                let set: Vec<(String, Option<String>)> = set
                    .iter()
                    .map(|(k, v)| (k.clone(), Some(v.clone())))
                    .collect();
                client.alter_topic_configs(topic, &set).await?;
            }
            TopicChange::Delete(t) => client.delete_topic(t).await?,
        }
        done.push(match c {
            TopicChange::Create(s) => format!(
                "created topic {} ({} partitions, replication factor {})",
                s.name, s.partitions, s.replication_factor
            ),
            TopicChange::Delete(t) => format!("deleted undeclared topic {t}"),
            other => other.describe(),
        });
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::kafka::BrokerInfo;
    use crate::health::kafka::fixtures::partition;

    fn topic(name: &str, partitions: Vec<PartitionInfo>) -> TopicInfo {
        TopicInfo {
            name: name.into(),
            error: None,
            partitions,
        }
    }

    fn cluster(brokers: &[i32], topics: Vec<TopicInfo>) -> ClusterMetadata {
        ClusterMetadata {
            brokers: brokers
                .iter()
                .map(|&id| BrokerInfo {
                    id,
                    host: format!("kafka{id}"),
                    port: 9092,
                    rack: None,
                })
                .collect(),
            controller_id: brokers[0],
            cluster_id: None,
            topics,
        }
    }

    fn sample() -> ClusterMetadata {
        let mut lost = partition(2, -1, &[3], &[]);
        lost.offline = vec![3];
        cluster(
            &[1, 2],
            vec![
                topic(
                    "orders",
                    vec![
                        partition(1, 2, &[2, 3, 1], &[2, 1]),
                        partition(0, 1, &[1, 2, 3], &[1, 2, 3]),
                        lost,
                    ],
                ),
                topic("__consumer_offsets", vec![partition(0, 1, &[1], &[1])]),
                TopicInfo {
                    name: "gone".into(),
                    error: Some("UnknownTopicOrPartition (3)".into()),
                    partitions: vec![],
                },
            ],
        )
    }

    #[test]
    fn config_args_parse_as_key_value() {
        let ok = |s: &str| parse_config_arg(s).unwrap();
        assert_eq!(
            ok("retention.ms=1000"),
            ("retention.ms".into(), "1000".into())
        );
        // Only the first '=' splits: values may contain '='.
        assert_eq!(
            ok("message.timestamp.type=a=b"),
            ("message.timestamp.type".into(), "a=b".into())
        );
        assert_eq!(ok(" cleanup.policy=compact,delete").1, "compact,delete");
        let err = |s: &str| parse_config_arg(s).unwrap_err();
        assert!(
            err("retention.ms").contains("expected KEY=VALUE"),
            "{}",
            err("x")
        );
        assert!(err("=5").contains("empty config name"));
        assert!(err("retention.ms=").contains("delete it instead"));
        assert!(err("retention ms=5").contains("contains ' '"));
        assert_eq!(
            parse_config_key("min.insync.replicas").unwrap(),
            "min.insync.replicas"
        );
        assert!(
            parse_config_key("a=b")
                .unwrap_err()
                .contains("without a value")
        );
    }

    #[test]
    fn topic_names_follow_kafka_rules() {
        assert!(check_topic_name("orders.v1_a-b").is_ok());
        assert!(check_topic_name("").is_err());
        assert!(check_topic_name("..").is_err());
        assert!(
            check_topic_name(&"a".repeat(250))
                .unwrap_err()
                .contains("249")
        );
        assert!(check_topic_name("a/b").unwrap_err().contains("'/'"));
        assert!(is_internal("__consumer_offsets") && is_internal("__clusterctl_smoke"));
        assert!(!is_internal("_schemas"));
    }

    #[test]
    fn arguments_are_checked_before_connecting() {
        let create = |partitions, rf| TopicCommand::Create {
            topic: "t".into(),
            partitions,
            replication_factor: rf,
            configs: vec![],
        };
        assert!(check_args(&create(3, 1)).is_ok());
        assert!(
            check_args(&create(0, 1))
                .unwrap_err()
                .0
                .contains("partitions")
        );
        assert!(
            check_args(&create(1, 0))
                .unwrap_err()
                .0
                .contains("replication factor")
        );
        let alter = |partitions, set: &[(&str, &str)], delete: &[&str]| TopicCommand::Alter {
            topic: "t".into(),
            partitions,
            set: set
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            delete: delete.iter().map(|k| k.to_string()).collect(),
        };
        assert!(
            check_args(&alter(None, &[], &[]))
                .unwrap_err()
                .0
                .contains("nothing to alter")
        );
        assert!(
            check_args(&alter(None, &[("a", "1")], &["a"]))
                .unwrap_err()
                .0
                .contains("both set and deleted")
        );
        assert!(
            check_args(&alter(None, &[("a", "1"), ("a", "2")], &[]))
                .unwrap_err()
                .0
                .contains("more than once")
        );
        assert!(check_args(&alter(Some(0), &[], &[])).is_err());
        assert!(check_args(&alter(Some(4), &[], &["a"])).is_ok());
        let del = |t: &str| TopicCommand::Delete { topic: t.into() };
        assert!(
            check_args(&del("__consumer_offsets"))
                .unwrap_err()
                .0
                .contains("internal")
        );
        assert!(check_args(&del("__clusterctl_smoke")).is_ok());
        assert!(
            check_args(&TopicCommand::Describe {
                topic: Some("a b".into())
            })
            .is_err()
        );
        assert!(check_args(&TopicCommand::List).is_ok());
    }

    #[tokio::test]
    async fn invalid_arguments_fail_before_any_connection() {
        // No bootstrap brokers at all: the argument error must come first.
        let err = run(
            &[],
            TopicCommand::Delete {
                topic: "a/b".into(),
            },
            false,
        )
        .await
        .unwrap_err();
        assert!(err.is::<InvalidArgs>(), "{err:#}");
    }

    #[test]
    fn list_marks_internal_topics_and_counts_problems() {
        let entries = list_entries(&sample());
        let names: Vec<&str> = entries.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, vec!["__consumer_offsets", "orders"]);
        let orders = &entries[1];
        assert_eq!(
            (
                orders.partitions,
                orders.replication_factor,
                orders.under_replicated,
                orders.offline
            ),
            (3, 3, 2, 1)
        );
        assert!(entries[0].internal && !orders.internal);
        assert_eq!(
            format_list(&entries),
            "TOPIC               PARTITIONS  RF  INTERNAL  STATUS\n\
             __consumer_offsets  1           1   yes       ok\n\
             orders              3           3   -         2 under-replicated, 1 offline"
        );
        assert_eq!(format_list(&[]), "no topics");
        let json = serde_json::to_value(ListOutput { topics: entries }).unwrap();
        assert_eq!(json["topics"][1]["under_replicated"], 2);
        assert_eq!(json["topics"][0]["internal"], true);
        assert!(json["topics"][0].get("error").is_none());
    }

    #[test]
    fn describe_shows_partitions_flags_and_configs() {
        let meta = sample();
        let orders = find_topic(&meta, "orders").unwrap();
        let d = description(
            &meta,
            orders,
            vec![
                ("retention.ms".into(), "60000".into()),
                ("cleanup.policy".into(), "compact".into()),
            ],
        );
        assert_eq!(
            format_description(&d),
            "Topic: orders  PartitionCount: 3  ReplicationFactor: 3\n\
             Configs: cleanup.policy=compact,retention.ms=60000\n\
             \x20 PARTITION  LEADER  REPLICAS  ISR    OFFLINE  STATUS\n\
             \x20 0          1       1,2,3     1,2,3  -        ok\n\
             \x20 1          2       2,3,1     2,1    -        UNDER-REPLICATED\n\
             \x20 2          none    3         -      3        UNDER-REPLICATED, OFFLINE"
        );
        let json = serde_json::to_value(&d).unwrap();
        assert_eq!(json["partitions"][2]["leader"], serde_json::Value::Null);
        assert_eq!(json["partitions"][2]["offline"], true);
        assert_eq!(
            json["partitions"][2]["offline_replicas"],
            serde_json::json!([3])
        );
        assert_eq!(json["configs"]["retention.ms"], "60000");

        let offsets = find_topic(&meta, "__consumer_offsets").unwrap();
        let text = format_description(&description(&meta, offsets, vec![]));
        assert!(text.starts_with("Topic: __consumer_offsets  PartitionCount: 1  ReplicationFactor: 1  Internal: yes\nConfigs: none (broker defaults)\n"), "{text}");
        assert!(
            text.ends_with("  0          1       1         1    -        ok"),
            "{text}"
        );

        let err = find_topic(&meta, "gone").unwrap_err();
        assert_eq!(err.to_string(), "topic gone does not exist");
        assert!(find_topic(&meta, "never").is_err());
    }

    #[test]
    fn table_pads_columns_and_trims_lines() {
        let rows = vec![
            vec!["a".to_string(), "".to_string()],
            vec!["bbb".into(), "c".into()],
        ];
        assert_eq!(table("> ", &["X", "Y"], &rows), "> X    Y\n> a\n> bbb  c");
        assert_eq!(ids(&[]), "-");
        assert_eq!(ids(&[3, 1]), "3,1");
    }

    #[test]
    fn existing_topic_must_match_create() {
        let meta = sample();
        let orders = find_topic(&meta, "orders").unwrap();
        let current = vec![("retention.ms".to_string(), "60000".to_string())];
        let want = |k: &str, v: &str| vec![(k.to_string(), v.to_string())];
        assert!(
            create_differences(orders, &current, 3, 3, &want("retention.ms", "60000")).is_empty()
        );
        assert!(create_differences(orders, &current, 3, 3, &[]).is_empty());
        let diffs = create_differences(orders, &current, 6, 1, &want("retention.ms", "1"));
        assert_eq!(
            diffs,
            vec![
                "it has 3 partitions, not 6",
                "its replication factor is 3, not 1",
                "its retention.ms is 60000, not 1",
            ]
        );
        let diffs = create_differences(orders, &current, 3, 3, &want("cleanup.policy", "compact"));
        assert_eq!(
            diffs,
            vec!["cleanup.policy is not set on it (asked compact)"]
        );
    }

    #[test]
    fn alter_plan_changes_only_what_differs_and_never_shrinks() {
        let current = vec![
            ("cleanup.policy".to_string(), "compact".to_string()),
            ("retention.ms".to_string(), "60000".to_string()),
        ];
        let set = vec![
            ("retention.ms".to_string(), "60000".to_string()),
            ("segment.ms".to_string(), "1000".to_string()),
            ("cleanup.policy".to_string(), "delete".to_string()),
        ];
        let del = vec!["max.message.bytes".to_string()];
        let plan = plan_alter("t", 3, &current, Some(6), &set, &del).unwrap();
        assert_eq!(plan.partitions, Some(6));
        assert_eq!(
            plan.configs,
            vec![
                ("segment.ms".to_string(), Some("1000".to_string())),
                ("cleanup.policy".to_string(), Some("delete".to_string())),
            ]
        );
        assert_eq!(
            plan.lines,
            vec![
                "retention.ms is already 60000",
                "set segment.ms=1000 (was the default)",
                "set cleanup.policy=delete (was compact)",
                "max.message.bytes is not set on t; nothing to delete",
                "partitions 3 -> 6",
            ]
        );
        let plan = plan_alter("t", 3, &current, Some(3), &[], &["retention.ms".into()]).unwrap();
        assert_eq!(plan.partitions, None);
        assert_eq!(plan.configs, vec![("retention.ms".to_string(), None)]);
        assert_eq!(plan.lines[1], "t already has 3 partitions");

        let err = plan_alter("t", 3, &current, Some(2), &[], &[]).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("has 3 partitions")
                && msg.contains("cannot reduce")
                && msg.contains("asked for 2"),
            "{msg}"
        );
    }

    #[test]
    fn outcome_text_and_json() {
        let meta = sample();
        let offsets = find_topic(&meta, "__consumer_offsets").unwrap();
        let mut o = Outcome {
            topic: "t".into(),
            changed: true,
            summary: "altered topic t:".into(),
            details: vec!["partitions 1 -> 2".into()],
            notes: vec!["slow".into()],
            describe_after: true,
            description: Some(description(&meta, offsets, vec![])),
        };
        let text = format_outcome(&o);
        assert!(
            text.starts_with(
                "altered topic t:\n  partitions 1 -> 2\nnote: slow\n\nTopic: __consumer_offsets"
            ),
            "{text}"
        );
        o.description = None;
        o.notes.clear();
        assert_eq!(format_outcome(&o), "altered topic t:\n  partitions 1 -> 2");
        let json = serde_json::to_value(&o).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "topic": "t",
                "changed": true,
                "summary": "altered topic t:",
                "details": ["partitions 1 -> 2"],
            })
        );
    }

    #[test]
    fn applied_configs_are_recognised() {
        let current = vec![("retention.ms".to_string(), "5".to_string())];
        let set = |k: &str, v: &str| (k.to_string(), Some(v.to_string()));
        let del = |k: &str| (k.to_string(), None);
        assert!(configs_applied(
            &current,
            &[set("retention.ms", "5"), del("cleanup.policy")]
        ));
        assert!(!configs_applied(&current, &[set("retention.ms", "6")]));
        assert!(!configs_applied(&current, &[del("retention.ms")]));
        assert!(configs_applied(&current, &[]));
    }

    #[test]
    fn settled_topic_needs_every_partition_led() {
        let meta = sample();
        let orders = find_topic(&meta, "orders").unwrap();
        assert!(!has_leaders(Some(orders), 3)); // partition 2 has none
        let offsets = find_topic(&meta, "__consumer_offsets").unwrap();
        assert!(has_leaders(Some(offsets), 1));
        assert!(!has_leaders(Some(offsets), 2));
        assert!(!has_leaders(None, 1));
    }
}
