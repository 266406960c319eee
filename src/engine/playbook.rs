//! Playbooks are data: an ordered list of typed steps over host groups.

use crate::inventory::Flavor;
use crate::render::Service;
use anyhow::{Context, Result, bail};
use serde::Deserialize;
use std::path::Path;

pub const APPLY: &str = include_str!("../../playbooks/apply.yaml");
pub const NISSHI: &str = include_str!("../../playbooks/nisshi.yaml");

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// nisshi: the PostgreSQL the brokers share, on the storage host.
    Storage,
    Prepare,
    Jdk,
    Install,
    Configure,
    /// KRaft only: format the log dirs of hosts that have never been formatted.
    Format,
    Start,
    /// Stop and disable `service` on hosts the inventory no longer gives it.
    Retire,
    /// KRaft, dynamic quorum: make new controllers voters once they have caught up.
    Voters,
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
    Storage,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Gate {
    ZookeeperQuorum,
    KraftQuorum,
    BrokersRegistered,
    /// nisshi: every broker answers ApiVersions and Metadata itself.
    BrokersAnswering,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ServiceName {
    Zookeeper,
    Kafka,
    Nisshi,
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
            ServiceName::Nisshi => Service::Nisshi,
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
            Action::Install | Action::Configure | Action::Format | Action::Start | Action::Retire
        );
        if s.action == Action::Format && s.service != Some(ServiceName::Kafka) {
            bail!("{}: action format needs `service: kafka`", at());
        }
        if s.action == Action::Retire
            && !matches!(s.service, Some(ServiceName::Zookeeper | ServiceName::Kafka))
        {
            bail!(
                "{}: action retire needs `service: zookeeper` or `service: kafka`",
                at()
            );
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

/// The flavor's playbook (`path` replaces the embedded one), checked to drive that flavor.
pub fn load(flavor: Flavor, path: Option<&Path>) -> Result<Vec<Step>> {
    let (name, steps) = match (path, flavor) {
        (None, Flavor::Jvm) => (
            "playbooks/apply.yaml".to_string(),
            parse("playbooks/apply.yaml", APPLY)?,
        ),
        (None, Flavor::Nisshi) => (
            "playbooks/nisshi.yaml".to_string(),
            parse("playbooks/nisshi.yaml", NISSHI)?,
        ),
        (Some(p), _) => {
            let text =
                std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
            let name = p.display().to_string();
            let steps = parse(&name, &text)?;
            (name, steps)
        }
    };
    for (i, s) in steps.iter().enumerate() {
        let nisshi_only = s.action == Action::Storage
            || s.service == Some(ServiceName::Nisshi)
            || s.hosts == Some(Hosts::Storage)
            || s.gate == Some(Gate::BrokersAnswering);
        let jvm_only = matches!(s.action, Action::Jdk | Action::Format | Action::Voters)
            || matches!(s.service, Some(ServiceName::Zookeeper | ServiceName::Kafka))
            || s.hosts == Some(Hosts::Zookeeper)
            || matches!(
                s.gate,
                Some(Gate::ZookeeperQuorum | Gate::KraftQuorum | Gate::BrokersRegistered)
            );
        let wrong = match flavor {
            Flavor::Jvm => nisshi_only,
            Flavor::Nisshi => jvm_only,
        };
        if wrong {
            bail!(
                "{name}: step {} ({:?}) belongs to the other flavor's playbook (this inventory's flavor is {})",
                i + 1,
                s.name,
                match flavor {
                    Flavor::Jvm => "jvm",
                    Flavor::Nisshi => "nisshi",
                }
            );
        }
    }
    Ok(steps)
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
                (Retire, Some(Service::ZooKeeper)),
                (Start, Some(Service::ZooKeeper)),
                (Wait, None),
                (Install, Some(Service::Kafka)),
                (Configure, Some(Service::Kafka)),
                (Format, Some(Service::Kafka)),
                (Retire, Some(Service::Kafka)),
                (Start, Some(Service::Kafka)),
                (Voters, None),
                (Wait, None),
                (Wait, None),
                (Topics, None),
                (Smoke, None),
            ]
        );
        assert_eq!(steps[6].gate, Some(Gate::ZookeeperQuorum));
        assert_eq!(steps[13].gate, Some(Gate::KraftQuorum));
        assert_eq!(steps[14].gate, Some(Gate::BrokersRegistered));
    }

    #[test]
    fn each_flavor_gets_its_own_playbook() {
        let steps = load(Flavor::Nisshi, None).unwrap();
        let kinds: Vec<_> = steps.iter().map(|s| s.action).collect();
        use Action::*;
        assert_eq!(
            kinds,
            [
                Storage, Prepare, Install, Configure, Start, Wait, Topics, Smoke
            ]
        );
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("p.yaml");
        std::fs::write(&f, APPLY).unwrap();
        let e = load(Flavor::Nisshi, Some(&f)).unwrap_err().to_string();
        assert!(e.contains("belongs to the other flavor's playbook"), "{e}");
        std::fs::write(&f, NISSHI).unwrap();
        assert!(load(Flavor::Jvm, Some(&f)).is_err());
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
