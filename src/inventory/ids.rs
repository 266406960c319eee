//! Stable id assignment for ZooKeeper `myid` and Kafka `broker.id`.
//!
//! Precedence: what a host already has on disk (its myid file, meta.properties) wins, then an id
//! pinned in the inventory, then the smallest free id, handed out in host-name order. Because
//! facts win, adding, removing or reordering hosts never changes the id of a host that has one.

use std::collections::{BTreeMap, BTreeSet};

/// Assign ids to `hosts`. `pinned` and `existing` map host name to id. `first` is the lowest id
/// handed out (1 for both myid and broker.id, as the classic runbooks number them).
pub fn assign(
    hosts: &[String],
    pinned: &BTreeMap<String, i64>,
    existing: &BTreeMap<String, i64>,
    first: i64,
) -> Result<BTreeMap<String, i64>, String> {
    let mut out = BTreeMap::new();
    let mut used: BTreeMap<i64, String> = BTreeMap::new();
    let mut take = |host: &str, id: i64, why: &str| -> Result<(), String> {
        if let Some(other) = used.get(&id) {
            return Err(format!(
                "id {id} of host {host} ({why}) is already used by host {other}"
            ));
        }
        used.insert(id, host.to_string());
        out.insert(host.to_string(), id);
        Ok(())
    };
    for h in hosts {
        match (existing.get(h), pinned.get(h)) {
            (Some(e), Some(p)) if e != p => {
                return Err(format!(
                    "host {h} already has id {e} on disk but the inventory pins {p}; \
                     changing a live id loses its data: remove the pin or wipe the host's data"
                ));
            }
            (Some(e), _) => take(h, *e, "on disk")?,
            _ => {}
        }
    }
    for h in hosts {
        if let (None, Some(p)) = (existing.get(h), pinned.get(h)) {
            take(h, *p, "pinned")?;
        }
    }
    let mut rest: Vec<&String> = hosts.iter().filter(|h| !out.contains_key(*h)).collect();
    rest.sort();
    let taken: BTreeSet<i64> = out.values().copied().collect();
    let mut next = (first..).filter(|i| !taken.contains(i));
    for h in rest {
        let id = next.next().expect("unbounded range");
        out.insert(h.clone(), id);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    fn map(v: &[(&str, i64)]) -> BTreeMap<String, i64> {
        v.iter().map(|(k, i)| (k.to_string(), *i)).collect()
    }

    #[test]
    fn fresh_hosts_are_numbered_by_name() {
        let ids = assign(&names(&["c", "a", "b"]), &map(&[]), &map(&[]), 1).unwrap();
        assert_eq!(ids, map(&[("a", 1), ("b", 2), ("c", 3)]));
    }

    #[test]
    fn reordering_changes_nothing() {
        let a = assign(&names(&["a", "b", "c"]), &map(&[]), &map(&[]), 1).unwrap();
        let b = assign(&names(&["c", "b", "a"]), &map(&[]), &map(&[]), 1).unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn adding_a_host_keeps_existing_ids() {
        let first = assign(&names(&["b", "c", "d"]), &map(&[]), &map(&[]), 1).unwrap();
        // "a" sorts first; without facts it would shift everyone. With facts nobody moves.
        let second = assign(&names(&["a", "b", "c", "d"]), &map(&[]), &first, 1).unwrap();
        for (h, id) in &first {
            assert_eq!(second[h], *id, "{h} changed id");
        }
        assert_eq!(second["a"], 4);
    }

    #[test]
    fn removing_a_host_keeps_the_others_and_does_not_reuse_on_the_spot() {
        let first = assign(&names(&["a", "b", "c"]), &map(&[]), &map(&[]), 1).unwrap();
        let existing = map(&[("a", first["a"]), ("c", first["c"])]);
        let second = assign(&names(&["a", "c"]), &map(&[]), &existing, 1).unwrap();
        assert_eq!(second, map(&[("a", 1), ("c", 3)]));
        // A new host later gets the freed id, never one in use.
        let third = assign(&names(&["a", "c", "z"]), &map(&[]), &second, 1).unwrap();
        assert_eq!(third["z"], 2);
    }

    #[test]
    fn pins_are_reserved_before_free_ids() {
        let ids = assign(&names(&["a", "b", "c"]), &map(&[("c", 1)]), &map(&[]), 1).unwrap();
        assert_eq!(ids, map(&[("a", 2), ("b", 3), ("c", 1)]));
    }

    #[test]
    fn disk_wins_and_conflicts_are_errors() {
        let err = assign(&names(&["a"]), &map(&[("a", 1)]), &map(&[("a", 2)]), 1).unwrap_err();
        assert!(
            err.contains("already has id 2 on disk but the inventory pins 1"),
            "{err}"
        );
        let err = assign(&names(&["a", "b"]), &map(&[("b", 5)]), &map(&[("a", 5)]), 1).unwrap_err();
        assert!(err.contains("already used by host a"), "{err}");
    }

    #[test]
    fn broker_ids_can_start_at_zero() {
        let ids = assign(&names(&["x", "y"]), &map(&[]), &map(&[]), 0).unwrap();
        assert_eq!(ids, map(&[("x", 0), ("y", 1)]));
    }
}
