//! Which broker properties Kafka can change at runtime, per release: a changed property in
//! this table is applied live by `apply` (IncrementalAlterConfigs, no restart); any other
//! makes the new server.properties go live with a restart through the roller.
//!
//! Source: Kafka's "Updating Broker Configs" (docs section 3.1.1: `read-only` needs a restart,
//! `per-broker` and `cluster-wide` can be updated live), which Kafka generates from
//! `DynamicBrokerConfig.dynamicConfigUpdateModes()`. The rows below are that method's answer
//! in the jars of Kafka 2.8.2, 3.8.1, 3.9.1 and 4.4.0 (the releases the test fixtures hold; a
//! unit test asks those jars again when they are at hand). `since` and `last` are the first and
//! the last of those releases that list the key: a release between two that were read gets
//! the smaller set (a key first seen in 3.8 is treated as read-only on 3.0 to 3.7), and Kafka
//! before 2.8 applies nothing live. Being wrong that way costs a restart, never a setting that
//! silently did not take: the broker checks every live change itself (validate-only) first.
//!
//! Some keys Kafka lists are still rolled (`NEEDS_ROLL`): their live update has caveats that
//! a restart does not have.

use crate::versions;

/// How Kafka's docs say a key may be updated. clusterctl sets both kinds per broker
/// (resource BROKER, name = the broker's id), as each broker's server.properties says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Only per broker.
    PerBroker,
    /// As a cluster-wide default, or per broker.
    ClusterWide,
}

use Mode::{ClusterWide, PerBroker};

struct Row {
    key: &'static str,
    mode: Mode,
    /// The first release read that lists the key (major, minor).
    since: (u32, u32),
    /// The last release read that lists it, if it is gone from the newest one.
    last: Option<(u32, u32)>,
}

const fn row(key: &'static str, mode: Mode, since: (u32, u32), last: Option<(u32, u32)>) -> Row {
    Row {
        key,
        mode,
        since,
        last,
    }
}

const ROWS: &[Row] = &[
    row("advertised.listeners", PerBroker, (2, 8), Some((3, 9))),
    row("background.threads", ClusterWide, (2, 8), None),
    row("compression.gzip.level", ClusterWide, (3, 8), None),
    row("compression.lz4.level", ClusterWide, (3, 8), None),
    row("compression.type", ClusterWide, (2, 8), None),
    row("compression.zstd.level", ClusterWide, (3, 8), None),
    row("config.providers", ClusterWide, (4, 4), None),
    row("cordoned.log.dirs", PerBroker, (4, 4), None),
    row(
        "errors.deadletterqueue.auto.create.topics.enable",
        ClusterWide,
        (4, 4),
        None,
    ),
    row(
        "errors.deadletterqueue.topic.name.prefix",
        ClusterWide,
        (4, 4),
        None,
    ),
    row(
        "follower.fetch.last.tiered.offset.enable",
        ClusterWide,
        (4, 4),
        None,
    ),
    row(
        "follower.replication.throttled.rate",
        ClusterWide,
        (4, 4),
        None,
    ),
    row(
        "group.consumer.assignment.interval.ms",
        ClusterWide,
        (4, 4),
        None,
    ),
    row(
        "group.consumer.assignor.offload.enable",
        ClusterWide,
        (4, 4),
        None,
    ),
    row(
        "group.coordinator.cached.buffer.max.bytes",
        ClusterWide,
        (4, 4),
        None,
    ),
    row(
        "group.share.assignment.interval.ms",
        ClusterWide,
        (4, 4),
        None,
    ),
    row(
        "group.share.assignor.offload.enable",
        ClusterWide,
        (4, 4),
        None,
    ),
    row(
        "group.streams.assignment.interval.ms",
        ClusterWide,
        (4, 4),
        None,
    ),
    row(
        "group.streams.assignor.offload.enable",
        ClusterWide,
        (4, 4),
        None,
    ),
    row(
        "leader.replication.throttled.rate",
        ClusterWide,
        (4, 4),
        None,
    ),
    row("listener.security.protocol.map", PerBroker, (2, 8), None),
    row("listeners", PerBroker, (2, 8), None),
    row("log.cleaner.backoff.ms", ClusterWide, (2, 8), None),
    row("log.cleaner.dedupe.buffer.size", ClusterWide, (2, 8), None),
    row("log.cleaner.delete.retention.ms", ClusterWide, (2, 8), None),
    row(
        "log.cleaner.io.buffer.load.factor",
        ClusterWide,
        (2, 8),
        None,
    ),
    row("log.cleaner.io.buffer.size", ClusterWide, (2, 8), None),
    row(
        "log.cleaner.io.max.bytes.per.second",
        ClusterWide,
        (2, 8),
        None,
    ),
    row(
        "log.cleaner.max.compaction.lag.ms",
        ClusterWide,
        (2, 8),
        None,
    ),
    row("log.cleaner.min.cleanable.ratio", ClusterWide, (2, 8), None),
    row(
        "log.cleaner.min.compaction.lag.ms",
        ClusterWide,
        (2, 8),
        None,
    ),
    row("log.cleaner.threads", ClusterWide, (2, 8), None),
    row("log.cleanup.policy", ClusterWide, (2, 8), None),
    row("log.flush.interval.messages", ClusterWide, (2, 8), None),
    row("log.flush.interval.ms", ClusterWide, (2, 8), None),
    row("log.index.interval.bytes", ClusterWide, (2, 8), None),
    row("log.index.size.max.bytes", ClusterWide, (2, 8), None),
    row("log.local.retention.bytes", ClusterWide, (3, 8), None),
    row("log.local.retention.ms", ClusterWide, (3, 8), None),
    row(
        "log.message.downconversion.enable",
        ClusterWide,
        (2, 8),
        Some((3, 9)),
    ),
    row(
        "log.message.timestamp.after.max.ms",
        ClusterWide,
        (3, 8),
        None,
    ),
    row(
        "log.message.timestamp.before.max.ms",
        ClusterWide,
        (3, 8),
        None,
    ),
    row(
        "log.message.timestamp.difference.max.ms",
        ClusterWide,
        (2, 8),
        Some((3, 9)),
    ),
    row("log.message.timestamp.type", ClusterWide, (2, 8), None),
    row("log.preallocate", ClusterWide, (2, 8), None),
    row("log.remote.copy.lag.bytes", ClusterWide, (4, 4), None),
    row("log.remote.copy.lag.ms", ClusterWide, (4, 4), None),
    row("log.retention.bytes", ClusterWide, (2, 8), None),
    row("log.retention.ms", ClusterWide, (2, 8), None),
    row("log.roll.jitter.ms", ClusterWide, (2, 8), None),
    row("log.roll.ms", ClusterWide, (2, 8), None),
    row("log.segment.bytes", ClusterWide, (2, 8), None),
    row("log.segment.delete.delay.ms", ClusterWide, (2, 8), None),
    row("max.connection.creation.rate", ClusterWide, (2, 8), None),
    row("max.connections", ClusterWide, (2, 8), None),
    row("max.connections.per.ip", ClusterWide, (2, 8), None),
    row(
        "max.connections.per.ip.overrides",
        ClusterWide,
        (2, 8),
        None,
    ),
    row("max.decompressed.message.bytes", ClusterWide, (4, 4), None),
    row("message.max.bytes", ClusterWide, (2, 8), None),
    row("metric.reporters", ClusterWide, (2, 8), None),
    row("min.insync.replicas", ClusterWide, (2, 8), None),
    row("num.io.threads", ClusterWide, (2, 8), None),
    row("num.network.threads", ClusterWide, (2, 8), None),
    row(
        "num.recovery.threads.per.data.dir",
        ClusterWide,
        (2, 8),
        None,
    ),
    row("num.replica.fetchers", ClusterWide, (2, 8), None),
    row("principal.builder.class", PerBroker, (2, 8), None),
    row("producer.id.expiration.ms", ClusterWide, (3, 8), None),
    row("remote.fetch.max.wait.ms", ClusterWide, (3, 8), None),
    row(
        "remote.list.offsets.request.timeout.ms",
        ClusterWide,
        (4, 4),
        None,
    ),
    row(
        "remote.log.index.file.cache.total.size.bytes",
        ClusterWide,
        (3, 8),
        None,
    ),
    row(
        "remote.log.manager.copier.thread.pool.size",
        ClusterWide,
        (4, 4),
        None,
    ),
    row(
        "remote.log.manager.copy.max.bytes.per.second",
        ClusterWide,
        (3, 8),
        None,
    ),
    row(
        "remote.log.manager.expiration.thread.pool.size",
        ClusterWide,
        (4, 4),
        None,
    ),
    row(
        "remote.log.manager.fetch.max.bytes.per.second",
        ClusterWide,
        (3, 8),
        None,
    ),
    row(
        "remote.log.manager.follower.thread.pool.size",
        ClusterWide,
        (4, 4),
        None,
    ),
    row("remote.log.reader.threads", ClusterWide, (4, 4), None),
    row(
        "replica.alter.log.dirs.io.max.bytes.per.second",
        ClusterWide,
        (4, 4),
        None,
    ),
    row("sasl.enabled.mechanisms", PerBroker, (2, 8), None),
    row("sasl.jaas.config", PerBroker, (2, 8), None),
    row("sasl.kerberos.kinit.cmd", PerBroker, (2, 8), None),
    row(
        "sasl.kerberos.min.time.before.relogin",
        PerBroker,
        (2, 8),
        None,
    ),
    row(
        "sasl.kerberos.principal.to.local.rules",
        PerBroker,
        (2, 8),
        None,
    ),
    row("sasl.kerberos.service.name", PerBroker, (2, 8), None),
    row("sasl.kerberos.ticket.renew.jitter", PerBroker, (2, 8), None),
    row(
        "sasl.kerberos.ticket.renew.window.factor",
        PerBroker,
        (2, 8),
        None,
    ),
    row("sasl.login.refresh.buffer.seconds", PerBroker, (2, 8), None),
    row(
        "sasl.login.refresh.min.period.seconds",
        PerBroker,
        (2, 8),
        None,
    ),
    row("sasl.login.refresh.window.factor", PerBroker, (2, 8), None),
    row("sasl.login.refresh.window.jitter", PerBroker, (2, 8), None),
    row(
        "sasl.mechanism.inter.broker.protocol",
        PerBroker,
        (2, 8),
        None,
    ),
    row(
        "share.coordinator.cached.buffer.max.bytes",
        ClusterWide,
        (4, 4),
        None,
    ),
    row("ssl.cipher.suites", PerBroker, (2, 8), None),
    row("ssl.client.auth", PerBroker, (2, 8), None),
    row("ssl.enabled.protocols", PerBroker, (2, 8), None),
    row(
        "ssl.endpoint.identification.algorithm",
        PerBroker,
        (2, 8),
        None,
    ),
    row("ssl.engine.factory.class", PerBroker, (2, 8), None),
    row("ssl.key.password", PerBroker, (2, 8), None),
    row("ssl.keymanager.algorithm", PerBroker, (2, 8), None),
    row("ssl.keystore.certificate.chain", PerBroker, (2, 8), None),
    row("ssl.keystore.key", PerBroker, (2, 8), None),
    row("ssl.keystore.location", PerBroker, (2, 8), None),
    row("ssl.keystore.password", PerBroker, (2, 8), None),
    row("ssl.keystore.type", PerBroker, (2, 8), None),
    row("ssl.protocol", PerBroker, (2, 8), None),
    row("ssl.provider", PerBroker, (2, 8), None),
    row("ssl.secure.random.implementation", PerBroker, (2, 8), None),
    row("ssl.trustmanager.algorithm", PerBroker, (2, 8), None),
    row("ssl.truststore.certificates", PerBroker, (2, 8), None),
    row("ssl.truststore.location", PerBroker, (2, 8), None),
    row("ssl.truststore.password", PerBroker, (2, 8), None),
    row("ssl.truststore.type", PerBroker, (2, 8), None),
    row(
        "transaction.partition.verification.enable",
        ClusterWide,
        (3, 8),
        None,
    ),
    row("unclean.leader.election.enable", ClusterWide, (2, 8), None),
];

/// Keys (or prefixes, ending in `.`) Kafka could update live that clusterctl rolls instead,
/// and why.
const NEEDS_ROLL: &[(&str, &str)] = &[
    (
        "listeners",
        "Kafka adds or removes a listener live only with its listener-prefixed security configs",
    ),
    (
        "advertised.listeners",
        "Kafka adds or removes a listener live only with its listener-prefixed security configs",
    ),
    (
        "listener.security.protocol.map",
        "Kafka adds or removes a listener live only with its listener-prefixed security configs",
    ),
    (
        "ssl.",
        "Kafka updates a security config live only with a listener.name.<listener>. prefix \
         (and, in ZooKeeper mode, password.encoder.secret for passwords)",
    ),
    (
        "sasl.",
        "Kafka updates a security config live only with a listener.name.<listener>. prefix \
         (and, in ZooKeeper mode, password.encoder.secret for passwords)",
    ),
    (
        "principal.builder.class",
        "Kafka updates a security config live only with a listener.name.<listener>. prefix",
    ),
    (
        "metric.reporters",
        "it loads plugin classes whose own settings are not dynamic",
    ),
    (
        "config.providers",
        "it loads plugin classes whose own settings are not dynamic",
    ),
];

/// Whether some release Kafka lists `key` as dynamic (so a broker may hold a per-broker
/// override of it).
pub fn known(key: &str) -> bool {
    ROWS.iter().any(|r| r.key == key)
}

/// Whether `key` can be applied live on Kafka `version` (`Err`: why it needs a restart).
pub fn live_update(key: &str, version: &str) -> Result<Mode, String> {
    let (major, minor, _) = versions::parse(version);
    let v = (major, minor);
    if let Some((_, why)) = NEEDS_ROLL
        .iter()
        .find(|(k, _)| key == *k || (k.ends_with('.') && key.starts_with(k)))
    {
        return Err(format!("needs a roll: {why}"));
    }
    match ROWS.iter().find(|r| r.key == key) {
        Some(r) if v < (2, 8) => Err(format!(
            "needs a roll: clusterctl applies nothing live before Kafka 2.8 (this is {major}.{minor}); {} is dynamic from Kafka {}.{} at the latest",
            r.key, r.since.0, r.since.1
        )),
        Some(r) if v >= r.since && r.last.is_none_or(|l| v <= l) => Ok(r.mode),
        Some(r) => Err(format!(
            "needs a roll: read-only in Kafka {major}.{minor} (dynamic in Kafka {}.{}{})",
            r.since.0,
            r.since.1,
            r.last
                .map_or(" and later".to_string(), |l| format!(" to {}.{}", l.0, l.1))
        )),
        None => Err(format!(
            "needs a roll: read-only (not a dynamic broker config of Kafka {major}.{minor})"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_examples() {
        assert_eq!(live_update("log.cleaner.threads", "3.9.1"), Ok(ClusterWide));
        assert_eq!(live_update("message.max.bytes", "4.4.0"), Ok(ClusterWide));
        assert_eq!(live_update("num.io.threads", "2.8.2"), Ok(ClusterWide));
        assert_eq!(live_update("min.insync.replicas", "3.9.1"), Ok(ClusterWide));
        assert_eq!(live_update("cordoned.log.dirs", "4.4.0"), Ok(PerBroker));
        // Read-only: a restart.
        for key in [
            "queued.max.requests",
            "log.retention.hours",
            "broker.rack",
            "num.partitions",
        ] {
            let why = live_update(key, "3.9.1").unwrap_err();
            assert!(why.contains("read-only"), "{key}: {why}");
        }
        // Gone in Kafka 4 (ZooKeeper-era message format settings).
        assert!(live_update("log.message.timestamp.difference.max.ms", "3.9.1").is_ok());
        let why = live_update("log.message.timestamp.difference.max.ms", "4.0.0").unwrap_err();
        assert!(why.contains("dynamic in Kafka 2.8 to 3.9"), "{why}");
        // New in 3.8: rolled on the 3.x releases before it, which were not read.
        assert!(live_update("compression.gzip.level", "3.8.1").is_ok());
        assert!(live_update("compression.gzip.level", "3.7.2").is_err());
        // Before 2.8 nothing is applied live.
        let why = live_update("message.max.bytes", "2.7.2").unwrap_err();
        assert!(why.contains("before Kafka 2.8"), "{why}");
    }

    #[test]
    fn listener_and_security_keys_roll_although_kafka_lists_them() {
        for key in [
            "listeners",
            "advertised.listeners",
            "ssl.keystore.location",
            "ssl.client.auth",
            "sasl.jaas.config",
            "principal.builder.class",
            "metric.reporters",
            "config.providers",
        ] {
            let why = live_update(key, "4.4.0").unwrap_err();
            assert!(why.starts_with("needs a roll: "), "{key}: {why}");
            assert!(!why.contains("read-only"), "{key}: {why}");
        }
        // A listener-prefixed key is not in Kafka's list as such: rolled too.
        assert!(live_update("listener.name.plaintext.ssl.keystore.location", "3.9.1").is_err());
    }

    #[test]
    fn rows_are_sorted_unique_and_spans_ordered() {
        for w in ROWS.windows(2) {
            assert!(w[0].key < w[1].key, "{} then {}", w[0].key, w[1].key);
        }
        for r in ROWS {
            assert!(r.last.is_none_or(|l| r.since <= l), "{}", r.key);
        }
    }

    /// `dynamicConfigUpdateModes()` of the Kafka release in `tgz`, by the compiled `Modes`
    /// class in `dir`.
    fn kafka_modes(
        dir: &std::path::Path,
        version: &str,
        tgz: &std::path::Path,
    ) -> Vec<(String, Mode)> {
        let name = format!("kafka_2.13-{version}");
        let libs = dir.join(version);
        std::fs::create_dir_all(&libs).unwrap();
        let st = std::process::Command::new("tar")
            .arg("-xzf")
            .arg(tgz)
            .arg("-C")
            .arg(&libs)
            .args(["--strip-components=2", &format!("{name}/libs")])
            .status()
            .unwrap();
        assert!(st.success(), "unpacking {}", tgz.display());
        let out = std::process::Command::new("java")
            .arg("-cp")
            .arg(format!("{}:{}/*", dir.display(), libs.display()))
            .arg("Modes")
            .output()
            .unwrap();
        assert!(out.status.success(), "{version}: {out:?}");
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(|l| {
                let (k, m) = l.split_once(' ').unwrap();
                let mode = if m == "per-broker" {
                    PerBroker
                } else {
                    ClusterWide
                };
                (k.to_string(), mode)
            })
            .collect()
    }

    /// The table against Kafka itself: `DynamicBrokerConfig.dynamicConfigUpdateModes()` from
    /// the jars of each fixture release at hand (scripts/fixtures.sh), run on this machine's
    /// JDK. Without fixtures or a JDK there is nothing to compare against.
    #[test]
    fn the_table_is_what_the_kafka_jars_say() {
        let Some(home) = std::env::var_os("HOME") else {
            return;
        };
        let base = std::env::var_os("CLUSTERCTL_FIXTURES")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| std::path::Path::new(&home).join(".cache/clusterctl-fixtures"));
        let javac = std::process::Command::new("javac").arg("-version").output();
        if javac.is_err() {
            return;
        }
        let d = tempfile::tempdir().unwrap();
        std::fs::write(
            d.path().join("Modes.java"),
            "import java.util.*;\n\
             public class Modes { public static void main(String[] a) throws Exception {\n\
             Map<?, ?> m;\n\
             try { m = (Map<?, ?>) Class.forName(\"org.apache.kafka.server.config.DynamicBrokerConfig\")\
             .getMethod(\"dynamicConfigUpdateModes\").invoke(null); }\n\
             catch (ClassNotFoundException e) { Class<?> c = Class.forName(\"kafka.server.DynamicBrokerConfig$\");\n\
             m = (Map<?, ?>) c.getMethod(\"dynamicConfigUpdateModes\").invoke(c.getField(\"MODULE$\").get(null)); }\n\
             for (var e : new TreeMap<>(m).entrySet()) System.out.println(e.getKey() + \" \" + e.getValue()); } }\n",
        )
        .unwrap();
        let built = std::process::Command::new("javac")
            .arg("-d")
            .arg(d.path())
            .arg(d.path().join("Modes.java"))
            .status()
            .unwrap();
        assert!(built.success());
        // Each release unpacked and asked in its own thread: most of the time is gunzip.
        let answers: Vec<(&str, Vec<(String, Mode)>)> = std::thread::scope(|scope| {
            let jobs: Vec<_> = ["2.8.2", "3.8.1", "3.9.1", "4.4.0"]
                .into_iter()
                .filter_map(|version| {
                    let name = format!("kafka_2.13-{version}");
                    let tgz = base.join(format!("mirror/kafka/{version}/{name}.tgz"));
                    if !tgz.is_file() {
                        return None;
                    }
                    let dir = d.path();
                    Some(scope.spawn(move || (version, kafka_modes(dir, version, &tgz))))
                })
                .collect();
            jobs.into_iter().map(|j| j.join().unwrap()).collect()
        });
        for (version, kafka) in &answers {
            let (major, minor, _) = versions::parse(version);
            let v = (major, minor);
            let ours: Vec<(String, Mode)> = ROWS
                .iter()
                .filter(|r| v >= r.since && r.last.is_none_or(|l| v <= l))
                .map(|r| (r.key.to_string(), r.mode))
                .collect();
            assert_eq!(&ours, kafka, "Kafka {version}'s dynamic broker configs");
        }
        let compared = answers.len();
        eprintln!("compared the table with {compared} Kafka release(s)");
    }
}
