//! Playbooks are data: an ordered list of typed steps over host groups.

use crate::render::Service;
use anyhow::{Context, Result, bail};
use serde::Deserialize;
use std::path::Path;

pub const APPLY: &str = include_str!("../../playbooks/apply.yaml");

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Prepare,
    Jdk,
    Install,
    Configure,
    /// KRaft only: format the log dirs of hosts that have never been formatted.
    Format,
    Start,
    Wait,
    /// Create or grow the topics the inventory declares.
    Topics,
    Smoke,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Hosts {
    All,
    Zookeeper,
    Kafka,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Gate {
    ZookeeperQuorum,
    KraftQuorum,
    BrokersRegistered,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ServiceName {
    Zookeeper,
    Kafka,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    pub name: String,
    pub action: Action,
    pub hosts: Option<Hosts>,
    pub service: Option<ServiceName>,
    pub gate: Option<Gate>,
    pub timeout_secs: Option<u64>,
}

impl Step {
    pub fn service(&self) -> Option<Service> {
        self.service.map(|s| match s {
            ServiceName::Zookeeper => Service::ZooKeeper,
            ServiceName::Kafka => Service::Kafka,
        })
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Playbook {
    steps: Vec<Step>,
}

/// Parse and check a playbook: each action gets exactly the fields it needs.
pub fn parse(name: &str, text: &str) -> Result<Vec<Step>> {
    let pb: Playbook = serde_saphyr::from_str(text)
        .map_err(|e| anyhow::anyhow!("{name}: {}", e.without_snippet()))?;
    for (i, s) in pb.steps.iter().enumerate() {
        let at = || format!("{name}: step {} ({:?})", i + 1, s.name);
        let needs_service = matches!(
            s.action,
            Action::Install | Action::Configure | Action::Format | Action::Start
        );
        if s.action == Action::Format && s.service != Some(ServiceName::Kafka) {
            bail!("{}: action format needs `service: kafka`", at());
        }
        if needs_service && s.service.is_none() {
            bail!("{}: action {:?} needs `service`", at(), s.action);
        }
        if !needs_service && s.service.is_some() {
            bail!("{}: action {:?} takes no `service`", at(), s.action);
        }
        if (s.action == Action::Wait) != s.gate.is_some() {
            bail!("{}: `gate` goes with action wait, and only there", at());
        }
        let hostless = matches!(s.action, Action::Wait | Action::Topics | Action::Smoke);
        if hostless == s.hosts.is_some() {
            bail!(
                "{}: action {:?} {} `hosts`",
                at(),
                s.action,
                if hostless { "takes no" } else { "needs" }
            );
        }
    }
    if pb.steps.is_empty() {
        bail!("{name}: no steps");
    }
    Ok(pb.steps)
}

pub fn load(path: Option<&Path>) -> Result<Vec<Step>> {
    match path {
        None => parse("playbooks/apply.yaml", APPLY),
        Some(p) => {
            let text =
                std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
            parse(&p.display().to_string(), &text)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_playbook_order() {
        let steps = parse("apply.yaml", APPLY).unwrap();
        let kinds: Vec<_> = steps.iter().map(|s| (s.action, s.service())).collect();
        use Action::*;
        assert_eq!(
            kinds,
            vec![
                (Prepare, None),
                (Jdk, None),
                (Install, Some(Service::ZooKeeper)),
                (Configure, Some(Service::ZooKeeper)),
                (Start, Some(Service::ZooKeeper)),
                (Wait, None),
                (Install, Some(Service::Kafka)),
                (Configure, Some(Service::Kafka)),
                (Format, Some(Service::Kafka)),
                (Start, Some(Service::Kafka)),
                (Wait, None),
                (Wait, None),
                (Topics, None),
                (Smoke, None),
            ]
        );
        assert_eq!(steps[5].gate, Some(Gate::ZookeeperQuorum));
        assert_eq!(steps[10].gate, Some(Gate::KraftQuorum));
        assert_eq!(steps[11].gate, Some(Gate::BrokersRegistered));
    }

    #[test]
    fn rejects_malformed_steps() {
        let bad = [
            (
                "steps:\n  - name: x\n    action: install\n    hosts: all\n",
                "needs `service`",
            ),
            (
                "steps:\n  - name: x\n    action: wait\n",
                "`gate` goes with action wait",
            ),
            (
                "steps:\n  - name: x\n    action: smoke\n    hosts: all\n",
                "takes no `hosts`",
            ),
            (
                "steps:\n  - name: x\n    action: prepare\n",
                "needs `hosts`",
            ),
            (
                "steps:\n  - name: x\n    action: reboot\n    hosts: all\n",
                "reboot",
            ),
            (
                "steps:\n  - name: x\n    action: jdk\n    hosts: all\n    serial: 1\n",
                "serial",
            ),
            ("steps: []\n", "no steps"),
        ];
        for (text, want) in bad {
            let err = format!("{:#}", parse("p.yaml", text).unwrap_err());
            assert!(err.contains(want), "{text}: {err}");
        }
    }
}
