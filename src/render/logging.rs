//! Which logging library a release logs through, and the config that makes it write a rotated
//! file under the service's log dir. ZooKeeper 3.5 to 3.7 and Kafka 2.x/3.x bind SLF4J to
//! log4j 1.2 (reload4j in late releases: the same config format), ZooKeeper 3.8+ to logback,
//! Kafka 4 to log4j2. The jars on a host decide; the release's known layout stands in for a
//! version that is not unpacked yet, and the install step checks it once it is.

use crate::artifacts::Product;
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Backend {
    /// log4j 1.2 or reload4j: `log4j.properties`, `-Dlog4j.configuration`.
    Log4j1,
    /// logback: `logback.xml`, `-Dlogback.configurationFile`.
    Logback,
    /// log4j2: `log4j2.properties`, `-Dlog4j2.configurationFile`.
    Log4j2,
}

impl Backend {
    pub const ALL: [Backend; 3] = [Backend::Log4j1, Backend::Logback, Backend::Log4j2];

    pub fn name(self) -> &'static str {
        match self {
            Backend::Log4j1 => "log4j 1.2",
            Backend::Logback => "logback",
            Backend::Log4j2 => "log4j2",
        }
    }

    /// The config file's name in the service's config dir.
    pub fn file_name(self) -> &'static str {
        match self {
            Backend::Log4j1 => "log4j.properties",
            Backend::Logback => "logback.xml",
            Backend::Log4j2 => "log4j2.properties",
        }
    }

    pub fn template(self) -> &'static str {
        match self {
            Backend::Log4j1 => "log4j.properties.j2",
            Backend::Logback => "logback.xml.j2",
            Backend::Log4j2 => "log4j2.properties.j2",
        }
    }

    /// The JVM argument that points the library at `path`.
    pub fn jvm_arg(self, path: &str) -> String {
        match self {
            Backend::Log4j1 => format!("-Dlog4j.configuration=file:{path}"),
            Backend::Logback => format!("-Dlogback.configurationFile={path}"),
            Backend::Log4j2 => format!("-Dlog4j2.configurationFile={path}"),
        }
    }
}

/// The SLF4J binding among a release's jar names decides (a release may carry bridges of
/// the others, such as Kafka 4's log4j-1.2-api).
pub fn from_jars<S: AsRef<str>>(names: &[S]) -> Option<Backend> {
    let has = |prefixes: &[&str]| {
        names
            .iter()
            .any(|n| prefixes.iter().any(|p| n.as_ref().starts_with(p)))
    };
    if has(&["slf4j-log4j12-", "slf4j-reload4j-"]) {
        Some(Backend::Log4j1)
    } else if has(&["logback-classic-"]) {
        Some(Backend::Logback)
    } else if has(&["log4j-slf4j-impl-", "log4j-slf4j2-impl-"]) {
        Some(Backend::Log4j2)
    } else {
        None
    }
}

/// The jar names `from_jars` looks at: what the facts script lists of an install dir.
pub const BINDING_GLOBS: &[&str] = &[
    "slf4j-log4j12-*",
    "slf4j-reload4j-*",
    "logback-classic-*",
    "log4j-slf4j-impl-*",
    "log4j-slf4j2-impl-*",
];

/// What the official release of `product` at `version` ships.
pub fn by_release(product: Product, version: &str) -> Backend {
    let (ma, mi, _) = crate::versions::parse(version);
    let at_least = |major: u32, minor: u32| (ma, mi) >= (major, minor);
    match product {
        Product::ZooKeeper if at_least(3, 8) => Backend::Logback,
        Product::ZooKeeper => Backend::Log4j1,
        Product::Kafka if at_least(4, 0) => Backend::Log4j2,
        Product::Kafka => Backend::Log4j1,
    }
}

/// The backend of each product this inventory runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Logging {
    pub zookeeper: Backend,
    pub kafka: Backend,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_binding_decides() {
        // ZooKeeper 3.6.4's lib/ and Kafka 2.8.2's libs/.
        assert_eq!(
            from_jars(&[
                "log4j-1.2.17.jar",
                "slf4j-api-1.7.25.jar",
                "slf4j-log4j12-1.7.25.jar"
            ]),
            Some(Backend::Log4j1)
        );
        // Kafka 3.9: reload4j.
        assert_eq!(
            from_jars(&["reload4j-1.2.25.jar", "slf4j-reload4j-1.7.36.jar"]),
            Some(Backend::Log4j1)
        );
        // ZooKeeper 3.8.
        assert_eq!(
            from_jars(&["logback-classic-1.2.13.jar", "logback-core-1.2.13.jar"]),
            Some(Backend::Logback)
        );
        // Kafka 4: log4j2, with the log4j 1.2 bridge beside it.
        assert_eq!(
            from_jars(&[
                "log4j-1.2-api-2.24.3.jar",
                "log4j-core-2.24.3.jar",
                "log4j-slf4j-impl-2.24.3.jar"
            ]),
            Some(Backend::Log4j2)
        );
        assert_eq!(from_jars(&["kafka-clients-3.9.1.jar"]), None);
    }

    #[test]
    fn releases() {
        use Product::*;
        assert_eq!(by_release(ZooKeeper, "3.5.10"), Backend::Log4j1);
        assert_eq!(by_release(ZooKeeper, "3.7.2"), Backend::Log4j1);
        assert_eq!(by_release(ZooKeeper, "3.8.4"), Backend::Logback);
        assert_eq!(by_release(ZooKeeper, "3.9.3"), Backend::Logback);
        assert_eq!(by_release(Kafka, "2.8.2"), Backend::Log4j1);
        assert_eq!(by_release(Kafka, "3.9.1"), Backend::Log4j1);
        assert_eq!(by_release(Kafka, "4.0.0"), Backend::Log4j2);
    }
}
