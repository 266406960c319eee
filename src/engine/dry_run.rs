//! `apply --dry-run`: the plan apply would execute, printed per host. Files show as unified
//! diffs against what the host has, secrets masked. Nothing here decides anything.

use super::change::{Change, Planned};
use super::live::{Decision, SERVER_PROPERTIES};
use super::plan::HostPlan;
use crate::render::mask_secrets;
use crate::topics::TopicChange;
use crate::transport::{Session, quote};
use anyhow::Result;
use std::collections::BTreeMap;

/// The plan's lines for one host: each change, a file's diff under its line. `old` gives a
/// file's current content (read from the host only for changed files).
pub fn host_lines(
    changes: &[Planned],
    old: &BTreeMap<String, String>,
    live: Option<&Decision>,
) -> Vec<String> {
    let mut lines = Vec::new();
    for c in changes {
        lines.push(format!("  {}", c.describe()));
        if let Change::File(f) = &c.change {
            // server.properties of a running broker: each changed property, live or rolled.
            if f.path == SERVER_PROPERTIES
                && let Some(d) = live
            {
                lines.extend(d.lines().into_iter().map(|l| format!("    {l}")));
            }
            if f.secret {
                lines.push("    (secret content, not shown)".into());
                continue;
            }
            let before = mask_secrets(old.get(&f.path).map_or("", String::as_str));
            let after = mask_secrets(&f.content);
            let diff = similar::TextDiff::from_lines(&before, &after);
            for line in diff
                .unified_diff()
                .context_radius(1)
                .header(
                    &format!("{} (now)", f.path),
                    &format!("{} (wanted)", f.path),
                )
                .to_string()
                .lines()
            {
                lines.push(format!("    {line}"));
            }
        }
    }
    lines
}

/// Current content of the plan's changed files on one host.
pub async fn old_contents(p: &HostPlan, s: &Session) -> Result<BTreeMap<String, String>> {
    let mut old = BTreeMap::new();
    for c in &p.changes {
        if let Change::File(f) = &c.change
            && p.facts.files.contains_key(&f.path)
            && !f.secret
        {
            let out = s
                .exec(&format!("cat {} 2>/dev/null", quote(&f.path)))
                .await?;
            old.insert(f.path.clone(), out.stdout);
        }
    }
    Ok(old)
}

pub async fn print(
    plans: &[HostPlan],
    sessions: &BTreeMap<String, Session>,
    topics: &Option<Vec<TopicChange>>,
    access: &Option<crate::access::AccessPlan>,
    finalize: Option<&str>,
) -> Result<()> {
    let mut any = false;
    for p in plans {
        let old = old_contents(p, &sessions[&p.host.name]).await?;
        any |= print_host(&p.host.name, &host_lines(&p.changes, &old, p.live.as_ref()));
    }
    let mut cluster: Vec<String> = match topics {
        Some(t) => t.iter().map(|c| format!("  {}", c.describe())).collect(),
        None => vec!["  declared topics: planned once the brokers answer (none do yet)".into()],
    };
    match access {
        Some(a) => {
            cluster.extend(a.changes.iter().map(|c| format!("  {}", c.describe())));
        }
        None => cluster.push("  users and ACLs: planned once the brokers answer".into()),
    }
    cluster.extend(finalize.map(|f| format!("  {f}")));
    if !cluster.is_empty() {
        any = true;
        println!("cluster: would change");
        for l in cluster {
            println!("{l}");
        }
    }
    println!(
        "{}",
        if any {
            "dry run: nothing was changed"
        } else {
            "dry run: every host is up to date"
        }
    );
    Ok(())
}

/// Prints one host's lines; whether it has any.
pub fn print_host(name: &str, lines: &[String]) -> bool {
    if lines.is_empty() {
        println!("{name}: no change");
        false
    } else {
        println!("{name}: would change");
        for l in lines {
            println!("{l}");
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::change::When;
    use crate::render::{ManagedFile, Service};

    #[test]
    fn a_file_change_prints_its_masked_diff_under_its_line() {
        let f = ManagedFile {
            path: "/etc/kafka/server.properties".into(),
            content: "a=1\nsasl.jaas.config=secret\n".into(),
            mode: 0o640,
            owner: "root".into(),
            group: "kafka".into(),
            restarts: Some(Service::Kafka),
            secret: false,
        };
        let plan = vec![
            Planned {
                change: Change::File(f),
                when: When::WithRestart(Service::Kafka),
            },
            Planned {
                change: Change::Restart(Service::Kafka),
                when: When::WithRestart(Service::Kafka),
            },
        ];
        let old = BTreeMap::from([(
            "/etc/kafka/server.properties".to_string(),
            "a=0\n".to_string(),
        )]);
        let lines = host_lines(&plan, &old, None);
        assert_eq!(
            lines[0],
            "  file /etc/kafka/server.properties (mode 640, root:kafka) (goes live when the roller restarts kafka here)"
        );
        assert!(lines.contains(&"    -a=0".to_string()), "{lines:#?}");
        assert!(lines.contains(&"    +a=1".to_string()), "{lines:#?}");
        assert!(lines.iter().all(|l| !l.contains("secret")), "{lines:#?}");
        assert_eq!(
            lines.last().unwrap(),
            "  restart kafka (one host at a time, through the roller)"
        );
    }

    /// A running broker's server.properties: each changed property says whether it is applied
    /// live or needs a roll, under the file's line and above its diff.
    #[test]
    fn each_changed_property_says_live_or_roll() {
        let f = ManagedFile {
            path: SERVER_PROPERTIES.into(),
            content: "message.max.bytes=2000000\nqueued.max.requests=600\n".into(),
            mode: 0o640,
            owner: "root".into(),
            group: "kafka".into(),
            restarts: Some(Service::Kafka),
            secret: false,
        };
        let old = "queued.max.requests=500\n";
        let changes = crate::engine::live::changed_keys(old, &f.content);
        let d = crate::engine::live::decide("3.9.1", 1, &changes, Ok(&BTreeMap::new()), None);
        let plan = vec![Planned {
            change: Change::File(f),
            when: When::WithRestart(Service::Kafka),
        }];
        let old = BTreeMap::from([(SERVER_PROPERTIES.to_string(), old.to_string())]);
        let lines = host_lines(&plan, &old, Some(&d));
        assert!(
            lines[1].starts_with(
                "    message.max.bytes: (unset) -> 2000000: needs a roll: dynamic, but"
            ),
            "{lines:#?}"
        );
        assert!(
            lines[2].starts_with("    queued.max.requests: 500 -> 600: needs a roll: read-only"),
            "{lines:#?}"
        );
        assert!(lines[3].starts_with("    --- "), "{lines:#?}");
        let live =
            crate::engine::live::decide("3.9.1", 1, &changes[..1], Ok(&BTreeMap::new()), None);
        let lines = host_lines(&plan, &BTreeMap::new(), Some(&live));
        assert_eq!(
            lines[1],
            "    message.max.bytes: (unset) -> 2000000: applied live"
        );
    }
}
