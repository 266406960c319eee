//! Pre-flight: whether each host can take what apply is about to put there, judged from the
//! facts already gathered (the same one round trip). Every finding of every host is reported
//! at once, before any change; a check the operator knows better is skipped by name.

use super::plan::{HostPlan, host_services};
use crate::inventory::{Flavor, Host, Inventory, JdkMethod};
use crate::render::{InitSystem, Service};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum)]
pub enum Check {
    /// Free space in data, log and install dirs.
    Disk,
    /// Memory against the heaps that will run.
    Memory,
    /// The ports clusterctl's services listen on, taken by another process.
    Ports,
    /// Clock offset between hosts.
    Clock,
    /// Open files and processes limits.
    Limits,
    /// A supported OS and package manager.
    Os,
}

impl Check {
    pub fn name(self) -> &'static str {
        match self {
            Check::Disk => "disk",
            Check::Memory => "memory",
            Check::Ports => "ports",
            Check::Clock => "clock",
            Check::Limits => "limits",
            Check::Os => "os",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub host: String,
    pub check: Check,
    /// Refuses the apply (else a warning).
    pub refuse: bool,
    /// What is wrong and how to fix it.
    pub message: String,
}

const MIB: u64 = 1024;
const GIB: u64 = 1024 * 1024;
/// Hosts whose clocks differ by more than this from the others' are refused: ZooKeeper
/// sessions and Kafka's log retention and timestamps assume clocks agree.
const CLOCK_SKEW_MS: i64 = 2_000;
/// Kafka's docs ask for at least 100000 open files; below the floor a JVM cannot work.
const NOFILE_ADVISED: u64 = 100_000;
const NOFILE_FLOOR: u64 = 4_096;
const NPROC_FLOOR: u64 = 4_096;
const OS_TRIED: &[&str] = &[
    "debian",
    "ubuntu",
    "rhel",
    "centos",
    "rocky",
    "almalinux",
    "ol",
    "fedora",
    "amzn",
];

/// The directories whose filesystem must have room, each with its floor in KiB.
pub fn space_dirs(inv: &Inventory, host: &Host) -> Vec<(String, u64)> {
    let mut out: Vec<(String, u64)> = Vec::new();
    let mut add = |d: &str, floor: u64| {
        if !out.iter().any(|(x, _)| x == d) {
            out.push((d.to_string(), floor));
        }
    };
    if inv.flavor == Flavor::Nisshi {
        if host.in_kafka {
            add(crate::render::services::NISSHI_DATA_DIR, GIB);
            add("/var/log/nisshi", 256 * MIB);
            add(&inv.install_dir, 256 * MIB);
        }
        return out;
    }
    if host.runs_kafka() {
        for d in inv.kafka_log_dirs(host) {
            add(&d, GIB);
        }
        add(&format!("/var/log/{}", host.kafka_name()), 256 * MIB);
    }
    if host.in_zookeeper {
        add(&inv.zookeeper.data_dir, 512 * MIB);
        add(&inv.zookeeper.data_log_dir, 512 * MIB);
        add("/var/log/zookeeper", 256 * MIB);
    }
    if (host.runs_kafka() || host.in_zookeeper) && host.side_of.is_none() {
        // A release unpacked beside the running one, plus its pushed tarball.
        add(&inv.install_dir, 512 * MIB);
    }
    out
}

/// Reads `HostFacts` from each host `changing` selects, in parallel (one round trip each; a
/// no-op apply asks nothing), with each clock's offset against the round trip's midpoint.
pub async fn gather(
    inv: &Inventory,
    plans: &mut [HostPlan],
    sessions: &std::collections::BTreeMap<String, crate::transport::Session>,
    changing: &dyn Fn(&HostPlan) -> bool,
) -> anyhow::Result<()> {
    use anyhow::Context;
    let now_ms = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64)
    };
    let asked: Vec<usize> = (0..plans.len()).filter(|&i| changing(&plans[i])).collect();
    let answers = futures::future::join_all(asked.iter().map(|&i| {
        let host = &plans[i].host;
        let dirs: Vec<String> = space_dirs(inv, host).into_iter().map(|(d, _)| d).collect();
        let s = &sessions[&host.name];
        async move {
            let sent = now_ms();
            let out = s
                .exec_ok(&super::facts::host_script(&dirs))
                .await
                .with_context(|| format!("{}: reading pre-flight facts", host.name))?;
            let mid = (sent + now_ms()) / 2;
            let mut f = super::facts::parse(&out.stdout).host;
            f.clock_offset_ms = f.clock_ms.map(|c| c - mid);
            anyhow::Ok(f)
        }
    }))
    .await;
    for (i, f) in asked.into_iter().zip(answers) {
        plans[i].facts.host = f?;
    }
    Ok(())
}

/// `512m` -> KiB.
fn size_kib(heap: &str) -> Option<u64> {
    let (digits, unit) = heap.split_at(heap.trim_end_matches(char::is_alphabetic).len());
    let n: u64 = digits.parse().ok()?;
    Some(match unit.to_ascii_lowercase().as_str() {
        "" => n / 1024,
        "k" => n,
        "m" => n * MIB,
        "g" => n * GIB,
        "t" => n * GIB * 1024,
        _ => return None,
    })
}

fn ports(inv: &Inventory, host: &Host, svc: Service) -> Vec<(u16, &'static str)> {
    match svc {
        Service::ZooKeeper => vec![
            (inv.zookeeper.client_port, "zookeeper.client_port"),
            (inv.zookeeper.peer_port, "zookeeper.peer_port"),
            (inv.zookeeper.election_port, "zookeeper.election_port"),
        ],
        Service::Kafka => {
            let mut v = Vec::new();
            if host.in_kafka {
                v.push((inv.kafka.port, "kafka.port"));
            }
            if host.in_controller {
                v.push((inv.kafka.controller_port, "kafka.controller_port"));
            }
            v
        }
        Service::Nisshi => inv
            .nisshi
            .as_ref()
            .map(|n| vec![(n.port, "nisshi.port")])
            .unwrap_or_default(),
    }
}

fn mib(kib: u64) -> String {
    if kib >= GIB {
        format!("{:.1} GiB", kib as f64 / GIB as f64)
    } else {
        format!("{} MiB", kib / MIB)
    }
}

/// Findings for every host this apply changes (`changing`), and the cluster's clocks, with
/// the checks in `skip` left out. Pure: unit tests feed fabricated facts.
pub fn check(
    inv: &Inventory,
    plans: &[HostPlan],
    changing: &dyn Fn(&HostPlan) -> bool,
    skip: &[Check],
) -> Vec<Finding> {
    let mut out = Vec::new();
    let mut push = |host: &str, check: Check, refuse: bool, message: String| {
        if !skip.contains(&check) {
            out.push(Finding {
                host: host.to_string(),
                check,
                refuse,
                message,
            });
        }
    };
    for p in plans.iter().filter(|p| changing(p)) {
        let h = &p.host;
        let f = &p.facts.host;
        let services = host_services(inv, h);
        for (dir, floor) in space_dirs(inv, h) {
            if let Some((free, mount)) = f.free_kib.get(&dir)
                && *free < floor
            {
                push(
                    &h.name,
                    Check::Disk,
                    true,
                    format!(
                        "{dir} has {} free (filesystem {mount}), below the {} it needs: free \
                         space there or move it to a larger filesystem",
                        mib(*free),
                        mib(floor)
                    ),
                );
            }
        }
        let heaps: Vec<(Service, String)> = services
            .iter()
            .filter(|s| **s != Service::Nisshi)
            .map(|&s| (s, crate::render::ServiceDef::new(s, inv, h).heap))
            .collect();
        // A JVM takes about a quarter more than its heap (metaspace, threads, buffers).
        let need: u64 = heaps
            .iter()
            .filter_map(|(_, heap)| size_kib(heap))
            .map(|k| k + k / 4 + 64 * MIB)
            .sum();
        if let Some(total) = f.mem_total_kib
            && need > total
        {
            push(
                &h.name,
                Check::Memory,
                true,
                format!(
                    "it has {} of memory; its heaps ({}) need about {}: lower the heap \
                     settings or give the host more memory",
                    mib(total),
                    heaps
                        .iter()
                        .map(|(s, heap)| format!("{s} {heap}"))
                        .collect::<Vec<_>>()
                        .join(", "),
                    mib(need)
                ),
            );
        }
        for &svc in &services {
            if p.running(svc).is_some() {
                continue; // its own ports are in use by itself
            }
            for (port, key) in ports(inv, h, svc) {
                if f.listening.contains(&port) {
                    push(
                        &h.name,
                        Check::Ports,
                        true,
                        format!(
                            "port {port} ({key}, for {svc}) is taken by another process: find it \
                             with `ss -ltnp 'sport = :{port}'` and stop it, or choose another {key}"
                        ),
                    );
                }
            }
        }
        if !services.is_empty() {
            // systemd units set LimitNOFILE themselves; the SysV init script raises the soft
            // limit to the hard one, so the hard limit is what a service gets.
            if p.init == InitSystem::SysV
                && let Some((_, Some(hard))) = f.nofile
            {
                if hard < NOFILE_FLOOR {
                    push(
                        &h.name,
                        Check::Limits,
                        true,
                        format!(
                            "open files are limited to {hard}; a broker or ZooKeeper needs at \
                             least {NOFILE_FLOOR}: raise `nofile` in /etc/security/limits.conf"
                        ),
                    );
                } else if hard < NOFILE_ADVISED && h.runs_kafka() {
                    push(
                        &h.name,
                        Check::Limits,
                        false,
                        format!(
                            "open files are limited to {hard}; Kafka's docs ask for at least \
                             {NOFILE_ADVISED} (each segment and connection holds one)"
                        ),
                    );
                }
            }
            if let Some((_, Some(hard))) = f.nproc
                && hard < NPROC_FLOOR
            {
                push(
                    &h.name,
                    Check::Limits,
                    true,
                    format!(
                        "processes are limited to {hard}; a broker's threads need at least \
                         {NPROC_FLOOR}: raise `nproc` in /etc/security/limits.conf"
                    ),
                );
            }
        }
        if let Some((id, version)) = &f.os
            && !OS_TRIED.contains(&id.as_str())
        {
            push(
                &h.name,
                Check::Os,
                false,
                format!("{id} {version} is not an OS clusterctl has been tried on"),
            );
        }
        let needs_package = inv.flavor == Flavor::Jvm
            && inv.jdk.method == JdkMethod::Package
            && p.facts.java.is_none()
            && !services.is_empty();
        if needs_package && !matches!(p.facts.package_manager.as_str(), "apt" | "dnf" | "yum") {
            push(
                &h.name,
                Check::Os,
                true,
                "it has no Java and no apt, dnf or yum to install one: set jdk.method to \
                 tarball (a JDK pushed from here) or none (with jdk.java_home)"
                    .into(),
            );
        }
    }
    // Clocks: each against the median of all hosts (one host may be the odd one out).
    let mut offsets: Vec<(&str, i64)> = plans
        .iter()
        .filter_map(|p| {
            p.facts
                .host
                .clock_offset_ms
                .map(|o| (p.host.name.as_str(), o))
        })
        .collect();
    if offsets.len() >= 2 {
        offsets.sort_by_key(|(_, o)| *o);
        let median = offsets[offsets.len() / 2].1;
        for (host, o) in &offsets {
            let d = o - median;
            if d.abs() > CLOCK_SKEW_MS {
                push(
                    host,
                    Check::Clock,
                    true,
                    format!(
                        "its clock is {:.1} s {} the other hosts': run NTP (chrony or \
                         systemd-timesyncd) on every host",
                        d.abs() as f64 / 1000.0,
                        if d > 0 { "ahead of" } else { "behind" }
                    ),
                );
            }
        }
    }
    out
}

/// Findings as lines `host: check: message`, grouped by host in inventory order.
pub fn lines(inv: &Inventory, findings: &[&Finding]) -> Vec<String> {
    let mut by_host: BTreeMap<usize, Vec<String>> = BTreeMap::new();
    for f in findings {
        let i = inv
            .hosts
            .iter()
            .position(|h| h.name == f.host)
            .unwrap_or(usize::MAX);
        by_host.entry(i).or_default().push(format!(
            "{}: {}: {}",
            f.host,
            f.check.name(),
            f.message
        ));
    }
    by_host.into_values().flatten().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::facts::{Facts, HostFacts};

    fn inv(extra: &str) -> Inventory {
        crate::engine::tests::inv(extra)
    }

    /// A host with room, memory and limits to spare, on Debian, with apt.
    fn roomy(inv: &Inventory, host: &Host) -> Facts {
        Facts {
            package_manager: "apt".into(),
            host: HostFacts {
                free_kib: space_dirs(inv, host)
                    .into_iter()
                    .map(|(d, _)| (d, (100 * GIB, "/".to_string())))
                    .collect(),
                mem_total_kib: Some(16 * GIB),
                listening: vec![22],
                clock_ms: Some(0),
                clock_offset_ms: Some(5),
                nofile: Some((Some(1024), Some(1_048_576))),
                nproc: Some((Some(63_000), Some(63_000))),
                os: Some(("debian".into(), "12".into())),
            },
            ..Facts::default()
        }
    }

    fn plans(inv: &Inventory, tweak: impl Fn(usize, &mut HostFacts, &mut Facts)) -> Vec<HostPlan> {
        let facts = inv
            .hosts
            .iter()
            .enumerate()
            .map(|(i, h)| {
                let mut f = roomy(inv, h);
                let mut hf = std::mem::take(&mut f.host);
                tweak(i, &mut hf, &mut f);
                f.host = hf;
                f
            })
            .collect();
        crate::engine::plan::plans_from_facts(inv, facts, false).unwrap()
    }

    fn all(_: &HostPlan) -> bool {
        true
    }

    #[test]
    fn nisshi_brokers_are_checked_too() {
        let inv = crate::inventory::parse(
            std::path::Path::new("i.yaml"),
            "flavor: nisshi\nhosts:\n  pg: { address: 10.0.0.9 }\n  b1: { address: 10.0.0.1 }\n\
             groups:\n  storage: [pg]\n  kafka: [b1]\nnisshi:\n  version: 0.8.1\n",
        )
        .unwrap();
        let b1 = inv.host("b1").unwrap();
        assert!(
            space_dirs(&inv, b1)
                .iter()
                .any(|(d, _)| d == "/var/lib/nisshi")
        );
        let plans = plans(&inv, |i, hf, _| {
            if i == 1 {
                hf.free_kib.insert(
                    "/var/lib/nisshi".into(),
                    (8 * MIB, "/var/lib/nisshi".into()),
                );
                hf.listening.push(9092);
            }
        });
        let found: Vec<String> = check(&inv, &plans, &all, &[])
            .iter()
            .map(|f| format!("{} {}: {}", f.host, f.check.name(), f.message))
            .collect();
        assert_eq!(found.len(), 2, "{found:#?}");
        assert!(
            found[0].starts_with("b1 disk: /var/lib/nisshi has 8 MiB free"),
            "{found:#?}"
        );
        assert!(
            found[1].starts_with("b1 ports: port 9092 (nisshi.port, for nisshi)"),
            "{found:#?}"
        );
    }

    #[test]
    fn a_roomy_cluster_passes() {
        let inv = inv("");
        assert_eq!(check(&inv, &plans(&inv, |_, _, _| {}), &all, &[]), []);
    }

    #[test]
    fn every_problem_of_every_host_at_once() {
        let inv = inv("kafka:\n  heap: 2g\n");
        let p = plans(&inv, |i, h, f| match i {
            0 => {
                h.free_kib.insert(
                    "/var/lib/kafka/data".into(),
                    (8 * MIB, "/var/lib/kafka".into()),
                );
                h.listening.push(9092);
            }
            1 => {
                h.mem_total_kib = Some(2 * GIB);
                h.clock_offset_ms = Some(9_000);
                h.nofile = Some((Some(1024), Some(1024)));
            }
            _ => {
                h.os = Some(("gentoo".into(), "2.15".into()));
                f.package_manager = "none".into();
            }
        });
        let found = check(&inv, &p, &all, &[]);
        let got: Vec<(String, Check, bool)> = found
            .iter()
            .map(|f| (f.host.clone(), f.check, f.refuse))
            .collect();
        assert_eq!(
            got,
            [
                ("a".into(), Check::Disk, true),
                ("a".into(), Check::Ports, true),
                ("b".into(), Check::Memory, true),
                ("b".into(), Check::Limits, true),
                ("c".into(), Check::Os, false),
                ("c".into(), Check::Os, true),
                ("b".into(), Check::Clock, true),
            ]
        );
        let text = lines(&inv, &found.iter().collect::<Vec<_>>()).join("\n");
        assert!(text.contains(
            "a: disk: /var/lib/kafka/data has 8 MiB free (filesystem /var/lib/kafka), below the 1.0 GiB it needs"
        ), "{text}");
        assert!(
            text.contains(
                "a: ports: port 9092 (kafka.port, for kafka) is taken by another process"
            ),
            "{text}"
        );
        assert!(text.contains("b: memory: it has 2.0 GiB of memory; its heaps (zookeeper 256m, kafka 2g) need about 2.9 GiB"), "{text}");
        assert!(
            text.contains("b: clock: its clock is 9.0 s ahead of the other hosts'"),
            "{text}"
        );
        assert!(
            text.contains("c: os: it has no Java and no apt, dnf or yum"),
            "{text}"
        );

        // Skipped checks are left out; hosts this apply does not change are not judged.
        let found = check(&inv, &p, &all, &[Check::Disk, Check::Clock, Check::Os]);
        assert!(
            found
                .iter()
                .all(|f| !matches!(f.check, Check::Disk | Check::Clock | Check::Os))
        );
        let only_c = |p: &HostPlan| p.host.name == "c";
        let found = check(&inv, &p, &only_c, &[Check::Clock]);
        assert!(found.iter().all(|f| f.host == "c"), "{found:?}");
    }

    #[test]
    fn a_running_service_owns_its_ports_and_low_limits_warn() {
        let inv = inv("");
        let p = plans(&inv, |i, h, f| {
            h.listening.extend([2181, 2888, 3888, 9092]);
            if i == 0 {
                f.pids.insert(Service::ZooKeeper, 10);
                f.pids.insert(Service::Kafka, 11);
                h.nofile = Some((Some(1024), Some(20_000)));
            }
        });
        let found = check(&inv, &p, &all, &[]);
        assert!(
            found
                .iter()
                .all(|f| f.host != "a" || f.check == Check::Limits),
            "{found:?}"
        );
        let a: Vec<&Finding> = found.iter().filter(|f| f.host == "a").collect();
        assert_eq!(a.len(), 1);
        assert!(
            !a[0].refuse && a[0].message.contains("at least 100000"),
            "{a:?}"
        );
        assert_eq!(
            found.iter().filter(|f| f.check == Check::Ports).count(),
            8,
            "{found:?}"
        );
    }

    #[test]
    fn heap_sizes() {
        assert_eq!(size_kib("512m"), Some(512 * MIB));
        assert_eq!(size_kib("2G"), Some(2 * GIB));
        assert_eq!(size_kib("64k"), Some(64));
        assert_eq!(size_kib("1048576"), Some(1024));
        assert_eq!(size_kib("x"), None);
    }
}
