//! What the hosts already are decides what an inventory may change: a running cluster is not
//! switched between ZooKeeper mode and KRaft by editing groups (that is a migration), and a
//! formatted KRaft cluster keeps its id. Checked on facts, before any host is touched.

use super::plan::HostPlan;
use crate::inventory::Inventory;
use anyhow::{Result, bail};

/// `Err` names the hosts, what they have and what the inventory asks.
pub fn check(inv: &Inventory, plans: &[HostPlan]) -> Result<()> {
    let mode = |version: u32| -> Vec<String> {
        plans
            .iter()
            .filter(|p| p.host.runs_kafka() && p.facts.meta_version == Some(version))
            .map(|p| match p.facts.broker_id {
                Some(id) => format!("{} (id {id})", p.host.name),
                None => p.host.name.clone(),
            })
            .collect()
    };
    if inv.kafka.kraft {
        let zk_mode = mode(0);
        if !zk_mode.is_empty() {
            bail!(
                "the inventory asks for KRaft (groups.controller), but {} run Kafka in ZooKeeper mode \
                 (meta.properties version 0 with broker.id); a running cluster is not switched by \
                 editing its groups: restore groups.zookeeper and drop groups.controller, and move \
                 to KRaft with a migration",
                zk_mode.join(", ")
            );
        }
    } else {
        let kraft = mode(1);
        if !kraft.is_empty() {
            bail!(
                "the inventory asks for ZooKeeper mode (groups.zookeeper), but {} are KRaft nodes \
                 (meta.properties version 1 with node.id); a KRaft cluster cannot go back to \
                 ZooKeeper mode: restore groups.controller",
                kraft.join(", ")
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::facts::Facts;

    fn inv(groups: &str) -> Inventory {
        let text = format!(
            "hosts:\n  a: {{ address: 10.0.0.1 }}\n  b: {{ address: 10.0.0.2 }}\n  c: {{ address: 10.0.0.3 }}\n\
             groups:\n{groups}kafka:\n  version: 4.4.0\n"
        );
        crate::inventory::parse(std::path::Path::new("i.yaml"), &text).unwrap()
    }

    fn meta(version: u32, id: i64) -> Facts {
        Facts {
            meta_version: Some(version),
            broker_id: Some(id),
            ..Facts::default()
        }
    }

    #[test]
    fn a_zookeeper_mode_cluster_is_not_switched_to_kraft() {
        let kraft = inv("  controller: [a, b, c]\n  kafka: [a, b, c]\n");
        let facts = vec![meta(0, 1), meta(0, 2), meta(0, 3)];
        let plans = crate::engine::plan::plans_from_facts(&kraft, facts, false).unwrap();
        let e = check(&kraft, &plans).unwrap_err().to_string();
        assert!(
            e.contains("a (id 1), b (id 2), c (id 3) run Kafka in ZooKeeper mode"),
            "{e}"
        );
        // A first install, or a KRaft cluster, passes.
        let plans = crate::engine::plan::plans_from_facts(&kraft, vec![Facts::default(); 3], false)
            .unwrap();
        check(&kraft, &plans).unwrap();
        let facts = vec![meta(1, 1), meta(1, 2), meta(1, 3)];
        let plans = crate::engine::plan::plans_from_facts(&kraft, facts, false).unwrap();
        check(&kraft, &plans).unwrap();
    }

    #[test]
    fn a_kraft_cluster_does_not_go_back_to_zookeeper() {
        let text = "hosts:\n  a: { address: 10.0.0.1 }\n  b: { address: 10.0.0.2 }\n  c: { address: 10.0.0.3 }\n\
                    groups:\n  zookeeper: [a, b, c]\n  kafka: [a, b, c]\nkafka:\n  version: 3.9.1\n";
        let zk = crate::inventory::parse(std::path::Path::new("i.yaml"), text).unwrap();
        let facts = vec![meta(1, 1), meta(0, 2), Facts::default()];
        let plans = crate::engine::plan::plans_from_facts(&zk, facts, false).unwrap();
        let e = check(&zk, &plans).unwrap_err().to_string();
        assert!(e.contains("but a (id 1) are KRaft nodes"), "{e}");
    }
}
