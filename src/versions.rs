//! The supported-versions matrix, in one table, and the rules that refuse a pair known not to
//! work before any host changes: at validate where the inventory says enough, and at facts
//! time from `java -version` on each host (or the JDK about to be installed). Sources: the
//! releases' notes and docs (Kafka's "Java version" section of ops.html per release;
//! ZooKeeper's admin guide "Required Software"), and what was tried here (docs/lab.md).

/// The Java release of the JDK package clusterctl installs by default (Debian's and Red Hat's
/// `openjdk-17` / `java-17-openjdk` packages).
pub const DEFAULT_JAVA: u32 = 17;

/// A `major.minor[.patch]` version, compared numerically.
pub fn parse(v: &str) -> (u32, u32, u32) {
    let mut it = v.split('.').map(|p| {
        p.chars()
            .take_while(|c| c.is_ascii_digit())
            .collect::<String>()
            .parse()
            .unwrap_or(0)
    });
    (
        it.next().unwrap_or(0),
        it.next().unwrap_or(0),
        it.next().unwrap_or(0),
    )
}

/// One row of the matrix: a component at versions `from..=to` (major.minor), and the Java
/// releases its project supports.
pub struct Row {
    pub component: &'static str,
    pub from: (u32, u32),
    pub to: (u32, u32),
    pub java: &'static [u32],
    pub note: &'static str,
}

/// What clusterctl installs and runs. The README's matrix is this table.
pub const MATRIX: &[Row] = &[
    Row {
        component: "ZooKeeper (own tarball)",
        from: (3, 5),
        to: (3, 7),
        java: &[8, 11],
        note: "logs through log4j 1.2 / reload4j; runs on 17 (tried: 3.6.4)",
    },
    Row {
        component: "ZooKeeper (own tarball)",
        from: (3, 8),
        to: (3, 9),
        java: &[8, 11, 17],
        note: "logs through logback",
    },
    Row {
        component: "ZooKeeper (Kafka's tarball)",
        from: (2, 4),
        to: (3, 9),
        java: &[8, 11, 17],
        note: "the release Kafka ships (3.5 to 3.8), on Kafka's logging; Kafka 2.0 to 2.3 ship 3.4: Java 8 and 11 only",
    },
    Row {
        component: "Kafka, ZooKeeper mode",
        from: (2, 0),
        to: (2, 3),
        java: &[8, 11],
        note: "its ZooKeeper 3.4 client cannot connect under Java 14+",
    },
    Row {
        component: "Kafka, ZooKeeper mode",
        from: (2, 4),
        to: (2, 8),
        java: &[8, 11],
        note: "runs on 17 (tried: 2.8.2)",
    },
    Row {
        component: "Kafka, ZooKeeper mode",
        from: (3, 0),
        to: (3, 6),
        java: &[8, 11, 17],
        note: "",
    },
    Row {
        component: "Kafka, ZooKeeper mode",
        from: (3, 7),
        to: (3, 9),
        java: &[8, 11, 17, 21],
        note: "3.9 is the last release with ZooKeeper mode",
    },
    Row {
        component: "Kafka, KRaft",
        from: (3, 3),
        to: (3, 6),
        java: &[8, 11, 17],
        note: "KRaft before 3.3 was early access",
    },
    Row {
        component: "Kafka, KRaft",
        from: (3, 7),
        to: (3, 9),
        java: &[8, 11, 17, 21],
        note: "",
    },
    Row {
        component: "Kafka, KRaft",
        from: (4, 0),
        to: (4, 99),
        java: &[17, 21],
        note: "brokers and controllers need Java 17+",
    },
];

/// Which row speaks for a component, if the version is in the matrix.
fn row(component: &str, version: &str) -> Option<&'static Row> {
    let (ma, mi, _) = parse(version);
    MATRIX
        .iter()
        .find(|r| r.component == component && (ma, mi) >= r.from && (ma, mi) <= r.to)
}

/// What the cluster runs, as far as versions go.
#[derive(Debug, Clone, Copy)]
pub struct Stack<'a> {
    pub kafka: &'a str,
    pub kraft: bool,
    /// `Some` for ZooKeeper mode: its version, and whether it is the Kafka tarball's.
    pub zookeeper: Option<(&'a str, bool)>,
}

/// A pair known not to work (refused), or one not known to (a warning).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Refuse(String),
    Warn(String),
}

fn kafka_component(kraft: bool) -> &'static str {
    if kraft {
        "Kafka, KRaft"
    } else {
        "Kafka, ZooKeeper mode"
    }
}

/// Versions alone: outside the matrix is refused (with what to use instead).
pub fn check_versions(st: &Stack) -> Vec<Verdict> {
    let mut out = Vec::new();
    let (kma, kmi, _) = parse(st.kafka);
    if row(kafka_component(st.kraft), st.kafka).is_none() {
        out.push(Verdict::Refuse(match (st.kraft, kma) {
            (false, 4..) => format!(
                "Kafka {} has no ZooKeeper mode; list KRaft controllers under groups.controller",
                st.kafka
            ),
            (true, _) if (kma, kmi) < (3, 3) => format!(
                "KRaft needs Kafka 3.3 or later, not {}; use a newer Kafka or ZooKeeper mode",
                st.kafka
            ),
            _ => format!(
                "Kafka {} is outside what clusterctl supports (2.0 to 3.9 in ZooKeeper mode, \
                 3.3+ in KRaft); upgrade it by hand to 2.x first",
                st.kafka
            ),
        }));
    }
    if let Some((zk, false)) = st.zookeeper
        && row("ZooKeeper (own tarball)", zk).is_none()
    {
        out.push(Verdict::Refuse(format!(
            "ZooKeeper {zk} is outside what clusterctl supports (3.5 to 3.9 from its own tarball); \
             set zookeeper.version to a 3.5+ release (3.8 or 3.9 are current)"
        )));
    }
    out
}

/// The Java major version a `java -version` first line names: `openjdk version "17.0.13"`,
/// `java version "1.8.0_392"`, `openjdk version "21" 2023-09-19`.
pub fn java_major(version_line: &str) -> Option<u32> {
    let start = version_line.find('"')? + 1;
    let rest = &version_line[start..];
    let v = &rest[..rest.find('"')?];
    let (ma, mi, _) = parse(v);
    match ma {
        1 => Some(mi),
        0 => None,
        m => Some(m),
    }
}

/// A JDK's major version guessed from a package or tarball name: `openjdk-17-jre-headless`,
/// `java-11-openjdk-headless`, `OpenJDK21U-jdk_x64_linux_hotspot_21.0.5_11.tar.gz`,
/// `zulu8.82.0.21-ca-jdk8.0.432-linux_x64.tar.gz`. `None` when no number looks like one.
pub fn java_major_from_name(name: &str) -> Option<u32> {
    name.split(|c: char| !c.is_ascii_digit())
        .filter_map(|d| d.parse::<u32>().ok())
        .find(|n| (8..=40).contains(n))
}

/// The pair of this stack and a Java major version: the known failures are refused, a pair
/// the projects do not list is a warning.
pub fn check_java(st: &Stack, java: u32) -> Vec<Verdict> {
    let mut out = Vec::new();
    let (kma, kmi, _) = parse(st.kafka);
    let zk34 = |zk: &str| parse(zk) < (3, 5, 0);
    if (kma, kmi) >= (4, 0) && java < 17 {
        out.push(Verdict::Refuse(format!(
            "Kafka {} needs Java 17 or later on brokers and controllers; this host runs Java {java}: \
             install Java 17 or 21 (jdk.package, jdk.tarball) or stay on Kafka 3.9",
            st.kafka
        )));
    }
    if !st.kraft && (kma, kmi) >= (2, 0) && (kma, kmi) <= (2, 3) && java >= 14 {
        out.push(Verdict::Refuse(format!(
            "Kafka {} ships the ZooKeeper 3.4 client, which cannot connect under Java 14+ \
             (it logs `<unresolved>` addresses and times out); this host runs Java {java}: \
             use Java 8 or 11, or Kafka 2.4 or later",
            st.kafka
        )));
    }
    if let Some((zk, bundled)) = st.zookeeper
        && !bundled
        && zk34(zk)
        && java >= 14
    {
        out.push(Verdict::Refuse(format!(
            "ZooKeeper {zk} cannot run under Java 14+ (this host runs Java {java}): use ZooKeeper 3.5 or later"
        )));
    }
    if !out.is_empty() {
        return out;
    }
    let mut listed = vec![row(kafka_component(st.kraft), st.kafka)];
    if let Some((zk, false)) = st.zookeeper {
        listed.push(row("ZooKeeper (own tarball)", zk));
    }
    for r in listed.into_iter().flatten() {
        if !r.java.contains(&java) {
            let version = if r.component.starts_with("ZooKeeper") {
                st.zookeeper.map_or("", |z| z.0)
            } else {
                st.kafka
            };
            out.push(Verdict::Warn(format!(
                "{} {version} is not listed for Java {java} by its project (listed: {}){}",
                r.component
                    .split(',')
                    .next()
                    .unwrap_or(r.component)
                    .trim_end_matches(" (own tarball)"),
                r.java
                    .iter()
                    .map(|j| j.to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
                if r.note.is_empty() {
                    String::new()
                } else {
                    format!("; {}", r.note)
                }
            )));
        }
    }
    out
}

/// `3.9.1` -> `3.9`: a release's line, as `inter.broker.protocol.version` and
/// `--release-version` name it.
pub fn major_minor(v: &str) -> String {
    v.split('.').take(2).collect::<Vec<_>>().join(".")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The matrix as the README shows it.
    fn markdown() -> String {
        let mut s = String::from("| component | versions | Java | notes |\n|---|---|---|---|\n");
        for r in MATRIX {
            let to = if r.to.1 == 99 {
                format!("{}.x", r.to.0)
            } else {
                format!("{}.{}", r.to.0, r.to.1)
            };
            s.push_str(&format!(
                "| {} | {}.{} to {to} | {} | {} |\n",
                r.component,
                r.from.0,
                r.from.1,
                r.java
                    .iter()
                    .map(|j| j.to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
                r.note
            ));
        }
        s
    }

    /// The README shows this table, row for row.
    #[test]
    fn the_readme_has_the_matrix() {
        let readme = include_str!("../README.md");
        assert!(
            readme.contains(&markdown()),
            "README lacks:\n{}",
            markdown()
        );
    }

    fn zk_mode<'a>(kafka: &'a str, zk: &'a str) -> Stack<'a> {
        Stack {
            kafka,
            kraft: false,
            zookeeper: Some((zk, false)),
        }
    }

    fn refusals(v: &[Verdict]) -> Vec<&str> {
        v.iter()
            .filter_map(|x| match x {
                Verdict::Refuse(m) => Some(m.as_str()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn java_versions_are_read_from_java_and_names() {
        assert_eq!(
            java_major("openjdk version \"17.0.13\" 2024-10-15"),
            Some(17)
        );
        assert_eq!(java_major("java version \"1.8.0_392\""), Some(8));
        assert_eq!(java_major("openjdk version \"21\" 2023-09-19"), Some(21));
        assert_eq!(java_major("bash: java: command not found"), None);
        assert_eq!(java_major_from_name("openjdk-17-jre-headless"), Some(17));
        assert_eq!(java_major_from_name("java-11-openjdk-headless"), Some(11));
        assert_eq!(
            java_major_from_name("OpenJDK21U-jdk_x64_linux_hotspot_21.0.5_11.tar.gz"),
            Some(21)
        );
        assert_eq!(
            java_major_from_name("zulu8.82.0.21-ca-jdk8.0.432-linux_x64.tar.gz"),
            Some(8)
        );
        assert_eq!(java_major_from_name("jdk.tar.gz"), None);
    }

    #[test]
    fn known_failures_are_refused_with_versions_and_fix() {
        let r = check_java(&zk_mode("2.2.1", "3.8.4"), 17);
        assert_eq!(
            refusals(&r),
            [
                "Kafka 2.2.1 ships the ZooKeeper 3.4 client, which cannot connect under Java 14+ \
              (it logs `<unresolved>` addresses and times out); this host runs Java 17: \
              use Java 8 or 11, or Kafka 2.4 or later"
            ]
        );
        let kraft4 = Stack {
            kafka: "4.0.0",
            kraft: true,
            zookeeper: None,
        };
        assert_eq!(
            refusals(&check_java(&kraft4, 11)),
            [
                "Kafka 4.0.0 needs Java 17 or later on brokers and controllers; this host runs Java 11: \
              install Java 17 or 21 (jdk.package, jdk.tarball) or stay on Kafka 3.9"
            ]
        );
        assert!(check_java(&kraft4, 17).is_empty());
        assert!(check_java(&kraft4, 21).is_empty());
        // The bundled ZooKeeper of Kafka 2.0-2.3 is the same 3.4 code: the Kafka rule names it.
        let bundled = Stack {
            kafka: "2.1.0",
            kraft: false,
            zookeeper: Some(("2.1.0", true)),
        };
        assert_eq!(refusals(&check_java(&bundled, 17)).len(), 1);
        assert!(refusals(&check_java(&bundled, 11)).is_empty());
    }

    #[test]
    fn unlisted_pairs_warn() {
        let r = check_java(&zk_mode("2.8.2", "3.6.4"), 17);
        assert_eq!(
            r,
            [
                Verdict::Warn(
                    "Kafka 2.8.2 is not listed for Java 17 by its project (listed: 8, 11); \
                     runs on 17 (tried: 2.8.2)"
                        .into()
                ),
                Verdict::Warn(
                    "ZooKeeper 3.6.4 is not listed for Java 17 by its project (listed: 8, 11); \
                     logs through log4j 1.2 / reload4j; runs on 17 (tried: 3.6.4)"
                        .into()
                ),
            ]
        );
        assert!(check_java(&zk_mode("3.9.1", "3.8.4"), 17).is_empty());
        assert!(check_java(&zk_mode("3.9.1", "3.8.4"), 8).is_empty());
    }

    #[test]
    fn versions_outside_the_matrix_are_refused() {
        assert_eq!(
            refusals(&check_versions(&zk_mode("1.1.1", "3.8.4"))),
            [
                "Kafka 1.1.1 is outside what clusterctl supports (2.0 to 3.9 in ZooKeeper mode, \
              3.3+ in KRaft); upgrade it by hand to 2.x first"
            ]
        );
        assert_eq!(
            refusals(&check_versions(&zk_mode("2.8.2", "3.4.14"))),
            [
                "ZooKeeper 3.4.14 is outside what clusterctl supports (3.5 to 3.9 from its own \
              tarball); set zookeeper.version to a 3.5+ release (3.8 or 3.9 are current)"
            ]
        );
        let kraft32 = Stack {
            kafka: "3.2.3",
            kraft: true,
            zookeeper: None,
        };
        assert_eq!(refusals(&check_versions(&kraft32)).len(), 1);
        assert!(check_versions(&zk_mode("2.0.0", "3.5.10")).is_empty());
        assert!(check_versions(&zk_mode("3.9.1", "3.9.3")).is_empty());
        assert!(
            check_versions(&Stack {
                kafka: "4.4.0",
                kraft: true,
                zookeeper: None
            })
            .is_empty()
        );
        // A bundled ZooKeeper is whatever the Kafka tarball carries: no row of its own.
        assert!(
            check_versions(&Stack {
                kafka: "3.9.1",
                kraft: false,
                zookeeper: Some(("3.9.1", true))
            })
            .is_empty()
        );
    }
}
