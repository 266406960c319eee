//! The KRaft controller quorum as the plan sees it (KIP-853): static (`controller.quorum.voters`,
//! fixed for the cluster's life before Kafka 4.1) or dynamic (`controller.quorum.bootstrap.
//! servers`, the voter set kept in the metadata log and changed with AddRaftVoter and
//! RemoveRaftVoter). A new cluster on Kafka 3.9+ is formatted dynamic; an existing one keeps
//! what its hosts run. Pure: decided from facts before any host is touched.

use super::facts::Facts;
use super::plan::HostPlan;
use crate::inventory::Inventory;
use crate::render::Service;
use sha2::{Digest, Sha256};
use std::collections::BTreeSet;

pub const BOOTSTRAP_KEY: &str = "controller.quorum.bootstrap.servers";
pub const VOTERS_KEY: &str = "controller.quorum.voters";

/// The feature that says whether the quorum is dynamic (level 1, KIP-853).
pub const KRAFT_VERSION: &str = "kraft.version";

/// Whether the quorum on the hosts is dynamic: what the running cluster reports
/// (`kraft.version`), else what a formatted KRaft host's server.properties says; `None` when
/// neither says.
pub fn on_hosts<'a>(facts: impl IntoIterator<Item = &'a Facts> + Clone) -> Option<bool> {
    if let Some(level) = facts
        .clone()
        .into_iter()
        .find_map(|f| f.cluster_kraft_version)
    {
        return Some(level >= 1);
    }
    let mut kind = None;
    for f in facts {
        let (Some(_), Some(sp)) = (&f.cluster_id, &f.server_properties) else {
            continue;
        };
        let props = crate::quote::parse_properties(sp);
        if props.contains_key(BOOTSTRAP_KEY) {
            return Some(true);
        }
        if props.contains_key(VOTERS_KEY) {
            kind = Some(false);
        }
    }
    kind
}

/// Whether this cluster runs (or will be formatted with) a dynamic quorum.
pub fn dynamic(inv: &Inventory, facts: &[Facts]) -> bool {
    inv.kafka.kraft && on_hosts(facts).unwrap_or(inv.kafka.dynamic_quorum)
}

/// The metadata directory id clusterctl gives controller `node` of cluster `cluster_id` when
/// it formats the initial quorum: derived, not random, so that a format interrupted on some
/// hosts is finished on a re-run with the same `--initial-controllers`. Kafka's Uuid string
/// form (16 bytes, URL-safe base64 without padding), never starting with `-` (StorageTool would
/// read it as an option).
pub fn directory_id(cluster_id: &str, node: i64) -> String {
    let mut seed = format!("clusterctl directory {cluster_id} {node}");
    loop {
        let digest = Sha256::digest(seed.as_bytes());
        let id = super::plan::base64url(&digest[..16]);
        if !id.starts_with('-') {
            return id;
        }
        seed.push('+');
    }
}

/// `--initial-controllers`: every controller of the inventory as `id@host:port:directory`.
pub fn initial_controllers(inv: &Inventory, plans: &[HostPlan], cluster_id: &str) -> String {
    plans
        .iter()
        .filter(|p| p.host.in_controller)
        .filter_map(|p| {
            let id = p.broker_id?;
            Some(format!(
                "{id}@{}:{}:{}",
                p.host.address,
                inv.kafka.controller_port,
                directory_id(cluster_id, id)
            ))
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// Is the quorum still being formed for the first time? No controller runs Kafka, and every
/// controller already formatted has the directory id of the initial quorum: then the
/// controllers not formatted yet belong to it too (`--initial-controllers`), rather than
/// joining a running quorum (`--no-initial-controllers`, then AddRaftVoter).
pub fn forming(plans: &[HostPlan], cluster_id: &str) -> bool {
    let controllers: Vec<&HostPlan> = plans.iter().filter(|p| p.host.in_controller).collect();
    controllers
        .iter()
        .all(|p| p.running(Service::Kafka).is_none())
        && controllers
            .iter()
            .all(|p| match (&p.facts.cluster_id, p.broker_id) {
                (None, _) => true,
                (Some(_), Some(id)) => {
                    p.facts.directory_id.as_deref() == Some(directory_id(cluster_id, id).as_str())
                }
                (Some(_), None) => false,
            })
}

/// The voter ids a static quorum was started with (its formatted hosts' voters line).
pub fn static_voters(plans: &[HostPlan]) -> Option<BTreeSet<i64>> {
    plans.iter().find_map(|p| {
        p.facts.cluster_id.as_ref()?;
        let props = crate::quote::parse_properties(p.facts.server_properties.as_deref()?);
        let voters = props.get(VOTERS_KEY)?;
        Some(
            voters
                .split(',')
                .filter_map(|v| v.split_once('@')?.0.trim().parse().ok())
                .collect(),
        )
    })
}

/// The roles a host's current server.properties gives it (`process.roles`).
fn roles_on_disk(p: &HostPlan) -> Option<String> {
    let props = crate::quote::parse_properties(p.facts.server_properties.as_deref()?);
    props.get("process.roles").cloned()
}

fn has_role(roles: &str, role: &str) -> bool {
    roles.split(',').any(|r| r.trim() == role)
}

/// Why the inventory's controllers may not be what it asks (empty: they may), checked on the
/// facts before any host is touched: a static quorum's voters are fixed, and a formatted
/// host does not change between broker-only and controller.
pub fn refusals(inv: &Inventory, plans: &[HostPlan], dynamic: bool) -> Vec<String> {
    if !inv.kafka.kraft {
        return vec![];
    }
    let mut why = Vec::new();
    for p in plans.iter().filter(|p| p.facts.cluster_id.is_some()) {
        let Some(roles) = roles_on_disk(p) else {
            continue;
        };
        let was_controller = has_role(&roles, "controller");
        let was_broker = has_role(&roles, "broker");
        if p.host.in_kafka && was_controller != p.host.in_controller {
            why.push(format!(
                "{} is formatted as process.roles={roles}, and the inventory makes it {}: a \
                 formatted host does not gain or lose the controller role; put a new controller \
                 on a fresh host (or keep {} {} groups.controller)",
                p.host.name,
                if p.host.in_controller {
                    "broker,controller"
                } else {
                    "broker"
                },
                p.host.name,
                if was_controller { "in" } else { "out of" },
            ));
        }
        if p.host.in_controller && !p.host.in_kafka && was_broker && !was_controller {
            why.push(format!(
                "{} is a formatted broker (process.roles={roles}) and the inventory makes it a \
                 controller only: a formatted host does not change roles; put the controller on a \
                 fresh host, or delete the broker's data first (`apply --delete-data` once it \
                 has left groups.kafka)",
                p.host.name
            ));
        }
    }
    if !dynamic && let Some(voters) = static_voters(plans) {
        let wanted: BTreeSet<i64> = plans
            .iter()
            .filter(|p| p.host.in_controller)
            .filter_map(|p| p.broker_id)
            .collect();
        if wanted != voters {
            let upgrade = if crate::versions::parse(&inv.kafka.version) >= (4, 1, 0) {
                let first = plans.iter().find(|p| p.host.in_kafka).map_or_else(
                    || "BROKER:PORT".to_string(),
                    |p| format!("{}:{}", p.host.address, inv.kafka.port),
                );
                format!(
                    "; on Kafka {} a static quorum can become dynamic, irreversibly: run \
                     `kafka-features.sh --bootstrap-server {first} upgrade --feature \
                     kraft.version=1` (Kafka's operations guide, KRaft, Upgrade), then apply \
                     again: the nodes' files move to the bootstrap list without a restart",
                    inv.kafka.version
                )
            } else {
                "; Kafka 4.1+ can make a static quorum dynamic (kraft.version 1): upgrade first"
                    .to_string()
            };
            why.push(format!(
                "the KRaft controller quorum is static (controller.quorum.voters, voters {voters:?}), \
                 and the inventory's controllers are {wanted:?}: a static quorum's voters cannot \
                 change; keep groups.controller as the hosts with node ids {voters:?}{upgrade}"
            ));
        }
    }
    why
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::change::{self, Change, QuorumInit};
    use crate::engine::plan::plans_from_facts;

    const CID: &str = "AAAAAAAAAAAAAAAAAAAAAA";

    /// n1..n3 combined, n4 in `controller` when `four`; Kafka `version`.
    fn kraft(version: &str, four: bool) -> Inventory {
        let text = format!(
            "hosts:\n  n1: {{ address: 10.0.0.1 }}\n  n2: {{ address: 10.0.0.2 }}\n  n3: {{ address: 10.0.0.3 }}\n  n4: {{ address: 10.0.0.4 }}\n\
             groups:\n  kafka: [n1, n2, n3]\n  controller: [n1, n2, n3{}]\nkafka:\n  version: {version}\n",
            if four { ", n4" } else { "" }
        );
        crate::inventory::parse(std::path::Path::new("i.yaml"), &text).unwrap()
    }

    /// A formatted node `id` running Kafka (or not), its file naming the quorum by `key`.
    fn node(id: i64, running: bool, key: &str, dir: Option<String>) -> Facts {
        let mut f = Facts {
            broker_id: Some(id),
            cluster_id: Some(CID.into()),
            directory_id: dir,
            server_properties: Some(format!(
                "process.roles=broker,controller\nnode.id={id}\n{key}=1@10.0.0.1:9093\n"
            )),
            ..Facts::default()
        };
        if running {
            f.pids.insert(Service::Kafka, 100 + id as u32);
        }
        f
    }

    #[test]
    fn the_hosts_decide_the_kind_and_a_new_cluster_the_version() {
        let fresh = vec![Facts::default(); 4];
        assert!(dynamic(&kraft("4.4.0", false), &fresh));
        assert!(dynamic(&kraft("3.9.1", false), &fresh));
        assert!(!dynamic(&kraft("3.8.1", false), &fresh));
        // A static cluster stays static after an upgrade to 3.9+ (swapping the key for the
        // bootstrap list would not start); a dynamic one stays dynamic.
        let static_ = vec![node(1, true, VOTERS_KEY, None), Facts::default()];
        assert!(!dynamic(&kraft("4.4.0", false), &static_));
        let dynamic_ = vec![node(1, true, BOOTSTRAP_KEY, None)];
        assert!(dynamic(&kraft("4.4.0", false), &dynamic_));
        // What the running cluster reports wins: a static quorum upgraded to kraft.version 1
        // (Kafka 4.1+) is dynamic though its files still name the voters.
        let mut upgraded = static_.clone();
        for f in &mut upgraded {
            f.cluster_kraft_version = Some(1);
        }
        assert!(dynamic(&kraft("4.4.0", false), &upgraded));
        let mut reported_static = dynamic_.clone();
        reported_static[0].cluster_kraft_version = Some(0);
        assert!(!dynamic(&kraft("4.4.0", false), &reported_static));
        // Its files then trade the voters line for the bootstrap list without a restart; a
        // static cluster's voters line alone still rolls.
        let old = "process.roles=broker,controller\ncontroller.quorum.voters=1@a:9093\n";
        let new = "process.roles=broker,controller\ncontroller.quorum.bootstrap.servers=a:9093\n";
        assert!(crate::engine::live::only_next_start_keys(old, new));
        assert!(!crate::engine::live::only_next_start_keys(
            old,
            "process.roles=broker,controller\ncontroller.quorum.voters=1@b:9093\n"
        ));
        assert!(!crate::engine::live::only_next_start_keys(
            old,
            "process.roles=broker\ncontroller.quorum.bootstrap.servers=a:9093\n"
        ));
        // An unformatted host's file says nothing.
        let mut unformatted = node(1, false, VOTERS_KEY, None);
        unformatted.cluster_id = None;
        assert_eq!(on_hosts([&unformatted]), None);
    }

    #[test]
    fn directory_ids_are_kafka_uuids_derived_per_cluster_and_node() {
        let a = directory_id(CID, 1);
        assert_eq!(
            a,
            directory_id(CID, 1),
            "derived, so a re-run formats the same"
        );
        assert_ne!(a, directory_id(CID, 2));
        assert_ne!(a, directory_id("BBBBBBBBBBBBBBBBBBBBBB", 1));
        for n in 0..2000 {
            let d = directory_id(CID, n);
            assert_eq!(d.len(), 22, "{d}");
            assert!(!d.starts_with('-'), "{d}");
            assert!(
                d.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            );
        }
    }

    #[test]
    fn a_new_quorum_forms_with_initial_controllers_and_a_running_one_is_joined() {
        let inv = kraft("4.4.0", true);
        let plans = plans_from_facts(&inv, vec![Facts::default(); 4], false).unwrap();
        assert!(forming(&plans, CID));
        let initial = initial_controllers(&inv, &plans, CID);
        assert_eq!(
            initial,
            format!(
                "1@10.0.0.1:9093:{},2@10.0.0.2:9093:{},3@10.0.0.3:9093:{},3001@10.0.0.4:9093:{}",
                directory_id(CID, 1),
                directory_id(CID, 2),
                directory_id(CID, 3),
                directory_id(CID, 3001)
            )
        );
        // Interrupted after formatting n1 (nothing started): the others still form it.
        let mut facts = vec![Facts::default(); 4];
        facts[0] = node(1, false, BOOTSTRAP_KEY, Some(directory_id(CID, 1)));
        let plans = plans_from_facts(&inv, facts.clone(), false).unwrap();
        assert!(forming(&plans, CID));
        // Once a controller runs, or one was formatted otherwise, new controllers join.
        facts[0] = node(1, true, BOOTSTRAP_KEY, Some(directory_id(CID, 1)));
        assert!(!forming(
            &plans_from_facts(&inv, facts.clone(), false).unwrap(),
            CID
        ));
        facts[0] = node(
            1,
            false,
            BOOTSTRAP_KEY,
            Some("xxxxxxxxxxxxxxxxxxxxxx".into()),
        );
        assert!(!forming(
            &plans_from_facts(&inv, facts, false).unwrap(),
            CID
        ));
    }

    #[test]
    fn joining_controllers_format_to_join_and_are_added_as_voters() {
        let inv = kraft("4.4.0", true);
        let dir = |id| Some(directory_id(CID, id));
        let facts = vec![
            node(1, true, BOOTSTRAP_KEY, dir(1)),
            node(2, true, BOOTSTRAP_KEY, dir(2)),
            node(3, true, BOOTSTRAP_KEY, dir(3)),
            Facts::default(),
        ];
        let plans = plans_from_facts(&inv, facts, false).unwrap();
        let inputs = change::Inputs {
            cluster_id: Some(CID.into()),
            jdk: None,
            quorum: Some(change::QuorumInputs {
                dynamic: true,
                forming: forming(&plans, CID),
                initial: initial_controllers(&inv, &plans, CID),
                voters: Some([1, 2, 3].into()),
            }),
        };
        let n4: Vec<Change> = change::plan_host(&inv, &plans[3], &inputs)
            .into_iter()
            .map(|c| c.change)
            .collect();
        assert!(n4.contains(&Change::Format {
            cluster_id: CID.into(),
            quorum: QuorumInit::Joining
        }));
        assert!(n4.contains(&Change::AddVoter { id: 3001 }));
        // The voters know it: nothing to add; a voter missing from a running quorum is added.
        let n1: Vec<Change> = change::plan_host(&inv, &plans[0], &inputs)
            .into_iter()
            .map(|c| c.change)
            .collect();
        assert!(
            !n1.iter().any(|c| matches!(c, Change::AddVoter { .. })),
            "{n1:?}"
        );
        let mut missing = inputs.clone();
        missing.quorum.as_mut().unwrap().voters = Some([2, 3].into());
        assert!(
            change::plan_host(&inv, &plans[0], &missing)
                .iter()
                .any(|c| c.change == Change::AddVoter { id: 1 })
        );
    }

    #[test]
    fn a_new_bootstrap_list_is_written_without_a_restart() {
        let inv = kraft("4.4.0", true);
        let three = kraft("4.4.0", false);
        let mut facts = vec![Facts::default(); 4];
        // n1 runs with the file rendered for three controllers.
        let before = plans_from_facts(&three, facts.clone(), false).unwrap();
        let old = before[0]
            .files
            .iter()
            .find(|f| f.path == crate::engine::live::SERVER_PROPERTIES)
            .unwrap()
            .content
            .clone();
        facts[0] = node(1, true, BOOTSTRAP_KEY, Some(directory_id(CID, 1)));
        facts[0].server_properties = Some(old.clone());
        let mut plans = plans_from_facts(&inv, facts, false).unwrap();
        // Everything else on n1 is as wanted.
        let (dir, link, name) = HostPlan::install_dir(&inv, crate::artifacts::Product::Kafka);
        let p = &mut plans[0];
        p.facts.installed.insert(dir, String::new());
        p.facts.links.insert(link, name);
        for f in p.files.clone() {
            if f.path != crate::engine::live::SERVER_PROPERTIES {
                p.facts
                    .files
                    .insert(f.path.clone(), HostPlan::fingerprint(&f));
            }
        }
        let new = &plans[0]
            .files
            .iter()
            .find(|f| f.path == crate::engine::live::SERVER_PROPERTIES)
            .unwrap()
            .content;
        assert!(
            crate::engine::live::only_next_start_keys(&old, new),
            "{old}\n{new}"
        );
        let inputs = change::Inputs {
            cluster_id: Some(CID.into()),
            ..Default::default()
        };
        let planned = change::plan_host(&inv, &plans[0], &inputs);
        let file = planned
            .iter()
            .find(|c| matches!(&c.change, Change::File(f) if f.path == crate::engine::live::SERVER_PROPERTIES))
            .unwrap();
        assert_eq!(file.when, change::When::Now);
        assert!(
            !planned
                .iter()
                .any(|c| c.change == Change::Restart(Service::Kafka)),
            "{planned:?}"
        );
    }

    #[test]
    fn static_voters_are_fixed_and_formatted_roles_stay() {
        let inv = kraft("4.4.0", true);
        let facts = vec![
            node(1, true, VOTERS_KEY, None),
            node(2, true, VOTERS_KEY, None),
            node(3, true, VOTERS_KEY, None),
            Facts::default(),
        ];
        let plans = plans_from_facts(&inv, facts.clone(), false).unwrap();
        let why = refusals(&inv, &plans, false);
        assert_eq!(why.len(), 1, "{why:?}");
        assert!(
            why[0].contains("static")
                && why[0].contains("voters {1}")
                && why[0].contains("{1, 2, 3, 3001}"),
            "{why:?}"
        );
        // On 4.1+ the refusal names the documented upgrade; before, that it needs 4.1.
        assert!(
            why[0].contains("upgrade --feature kraft.version=1"),
            "{why:?}"
        );
        let old = kraft("3.9.1", true);
        let plans39 = plans_from_facts(&old, facts.clone(), false).unwrap();
        let why = refusals(&old, &plans39, false);
        assert!(
            why[0].contains("Kafka 4.1+ can make a static quorum dynamic"),
            "{why:?}"
        );
        // Dynamic: adding is fine; a combined node may not lose its controller role.
        assert!(refusals(&inv, &plans, true).is_empty());
        let text = "hosts:\n  n1: { address: 10.0.0.1 }\n  n2: { address: 10.0.0.2 }\n  n3: { address: 10.0.0.3 }\n  n4: { address: 10.0.0.4 }\n\
                    groups:\n  kafka: [n1, n2, n3]\n  controller: [n2, n3, n4]\nkafka:\n  version: 4.4.0\n";
        let moved = crate::inventory::parse(std::path::Path::new("i.yaml"), text).unwrap();
        let plans = plans_from_facts(&moved, facts, false).unwrap();
        let why = refusals(&moved, &plans, true);
        assert!(
            why.len() == 1 && why[0].contains("n1 is formatted as process.roles=broker,controller"),
            "{why:?}"
        );
    }
}
