//! Facts: what a host has now, gathered in one command per host. Everything the plan needs
//! to decide "no change" comes from here, so a no-op apply costs one round trip per host.

use crate::render::{InitSystem, Service, ServiceDef};
use crate::transport::quote;
use std::collections::BTreeMap;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Facts {
    /// `apt`, `dnf`, `yum` or `none`.
    pub package_manager: String,
    pub init: Option<InitSystem>,
    /// First line of `java -version`, if any java runs.
    pub java: Option<String>,
    /// `<sha256> <mode>:<owner>:<group>` of each managed path that exists.
    pub files: BTreeMap<String, String>,
    pub myid: Option<i64>,
    /// Whether the zoo.cfg on the host serves clients over TLS (`None`: no zoo.cfg).
    pub zk_tls: Option<bool>,
    /// broker.id (ZooKeeper mode) or node.id (KRaft) from meta.properties.
    pub broker_id: Option<i64>,
    /// KRaft cluster.id from meta.properties: the host is formatted.
    pub cluster_id: Option<String>,
    /// directory.id of the first log dir's meta.properties: the KRaft metadata log's
    /// directory (`metadata.log.dir` is not set), which with the node id names a voter.
    pub directory_id: Option<String>,
    /// KRaft: the cluster's finalized `kraft.version` as a broker reported it (0: a static
    /// quorum, 1: dynamic), the same on every host's facts; `None` when no broker answered.
    pub cluster_kraft_version: Option<i16>,
    /// `inter.broker.protocol.version` in the host's current server.properties.
    pub ibp: Option<String>,
    /// The host's current server.properties, when it has one: a changed file is compared
    /// key by key (engine::live) to apply what Kafka can change at runtime without a restart.
    pub server_properties: Option<String>,
    /// Content of `<dir>/.clusterctl-sha512` per install dir that has one.
    pub installed: BTreeMap<String, String>,
    /// Target of each stable symlink (`/opt/kafka` -> `kafka_2.13-3.9.1`).
    pub links: BTreeMap<String, String>,
    /// PID of each running service (verified against its main class).
    pub pids: BTreeMap<Service, u32>,
    /// Services whose new files went live for a restart that has not completed (the run that
    /// wrote them was interrupted): the running process still has the old ones.
    pub restart_owed: std::collections::BTreeSet<Service>,
    /// On systemd hosts, what systemd says of each service's unit.
    pub units: BTreeMap<Service, UnitState>,
    pub users: Vec<String>,
    /// The host's own IPv4 address for its inventory address (a name resolved on the host).
    pub ip: Option<String>,
    /// `<mode>:<owner>:<group>` of each managed directory that exists.
    pub dirs: BTreeMap<String, String>,
    /// `version` of meta.properties: 0 = a ZooKeeper-mode broker, 1 = a KRaft node.
    pub meta_version: Option<u32>,
    /// The SLF4J binding jars (see render::logging) of each install dir, by name.
    pub jars: BTreeMap<String, Vec<String>>,
    /// What pre-flight checks (engine::preflight) look at.
    pub host: HostFacts,
    /// Services clusterctl installed here that the inventory no longer gives this host.
    pub retired: BTreeMap<Service, Retired>,
    /// A controller beside the broker (`kafka-controller`) clusterctl installed on this
    /// machine, asked of hosts the inventory gives none.
    pub side_controller: Option<Retired>,
}

/// A service whose init script or unit clusterctl installed on a host that no longer runs it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Retired {
    /// Started at boot (rc links or `systemctl is-enabled`).
    pub enabled: bool,
    pub pid: Option<u32>,
    /// Kafka's `process.roles` in its last server.properties (empty in ZooKeeper mode).
    pub roles: Option<String>,
}

impl Retired {
    /// Something for apply to do: stop it, or keep it from starting at boot.
    pub fn pending(&self) -> bool {
        self.enabled || self.pid.is_some()
    }
}

/// `systemctl show` of a service's unit.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UnitState {
    /// `active`, `activating` (also while waiting to restart), `failed`, `inactive`...
    pub active_state: String,
    /// Restarts systemd made on its own (Restart=on-failure) since the unit was last started
    /// or stopped by hand (clusterctl's `systemctl start`/`stop` reset it).
    pub restarts: u32,
}

/// Shell that sets `$p` to `def`'s main PID, empty when none: systemd's MainPID on a systemd
/// host, else the PID file the init script writes.
pub fn main_pid_script(def: &ServiceDef) -> String {
    format!(
        "if [ -d /run/systemd/system ]; then p=$(systemctl show -p MainPID --value {n} 2>/dev/null);          [ \"$p\" = 0 ] && p=; else p=$(cat {pf} 2>/dev/null); fi",
        n = quote(def.name),
        pf = quote(&def.pid_file)
    )
}

/// The host itself: room, memory, ports, clock, limits, OS.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HostFacts {
    /// Per asked directory: KiB available on its filesystem, and that filesystem's mount
    /// point (the directory may not exist yet: its nearest existing parent is measured).
    pub free_kib: BTreeMap<String, (u64, String)>,
    pub mem_total_kib: Option<u64>,
    /// TCP ports something listens on (IPv4 and IPv6).
    pub listening: Vec<u16>,
    /// The host's clock, milliseconds since the epoch, when it ran the facts script.
    pub clock_ms: Option<i64>,
    /// That clock minus this machine's at the middle of the round trip.
    pub clock_offset_ms: Option<i64>,
    /// Soft and hard limits of a root shell (`None` = unlimited).
    pub nofile: Option<(Option<u64>, Option<u64>)>,
    pub nproc: Option<(Option<u64>, Option<u64>)>,
    /// `ID` and `VERSION_ID` of /etc/os-release.
    pub os: Option<(String, String)>,
}

/// What to ask a host about.
pub struct Query<'a> {
    pub paths: Vec<String>,
    /// Directories clusterctl creates, with their owner and mode.
    pub dirs: Vec<String>,
    pub install_dirs: Vec<String>,
    pub links: Vec<String>,
    pub services: Vec<&'a ServiceDef>,
    /// Services this host no longer runs, asked about only if clusterctl installed them.
    pub retired: Vec<ServiceDef>,
    pub myid_file: Option<String>,
    pub meta_properties: Vec<String>,
    pub server_properties: Option<String>,
    pub java_cmd: String,
    /// A name to resolve to an IPv4 address on the host itself.
    pub resolve: Option<String>,
}

/// The one shell command that gathers everything in `q`. Each answer is one tagged line.
pub fn script(q: &Query) -> String {
    let mut s = String::from(
        "pm=none; for m in apt-get dnf yum; do command -v $m >/dev/null 2>&1 && { pm=${m%-get}; break; }; done; echo \"pm $pm\"\n\
         if [ -d /run/systemd/system ]; then echo 'init systemd'; else echo 'init sysv'; fi\n",
    );
    s.push_str(&format!(
        "j=$({} -version 2>&1 | head -n 1); [ -n \"$j\" ] && command -v {} >/dev/null 2>&1 && echo \"java $j\"\n",
        quote(&q.java_cmd),
        quote(&q.java_cmd)
    ));
    for p in &q.paths {
        s.push_str(&format!(
            "[ -f {p} ] && printf 'file %s %s %s\\n' {p} \"$(sha256sum < {p} | cut -d' ' -f1)\" \"$(stat -c '%a:%U:%G' {p})\"\n",
            p = quote(p)
        ));
    }
    for d in &q.dirs {
        s.push_str(&format!(
            "[ -d {d} ] && printf 'dir %s %s\\n' {d} \"$(stat -c '%a:%U:%G' {d})\"\n",
            d = quote(d)
        ));
    }
    for d in &q.install_dirs {
        s.push_str(&format!(
            "[ -f {m} ] && printf 'installed %s %s\\n' {d} \"$(cat {m})\"\n",
            m = quote(&format!("{d}/.clusterctl-sha512")),
            d = quote(d)
        ));
        s.push_str(&jars_script(d));
    }
    for l in &q.links {
        s.push_str(&format!(
            "[ -L {q} ] && printf 'link %s %s\\n' {q} \"$(readlink {q})\"\n",
            q = quote(l)
        ));
    }
    if let Some(f) = &q.myid_file {
        s.push_str(&format!(
            "[ -f {f} ] && echo \"myid $(cat {f})\"\n",
            f = quote(f)
        ));
        s.push_str(
            "[ -f /etc/zookeeper/zoo.cfg ] && sed -n 's/^secureClientPort=.*/zk_tls true/p; s/^clientPort=.*/zk_tls false/p' /etc/zookeeper/zoo.cfg\n",
        );
    }
    for m in &q.meta_properties {
        s.push_str(&format!(
            "[ -f {m} ] && sed -n 's/^broker.id=/broker_id /p; s/^node.id=/broker_id /p; s/^cluster.id=/cluster_id /p; s/^version=/meta_version /p; s/^directory.id=/directory_id /p' {m}\n",
            m = quote(m)
        ));
    }
    if let Some(sp) = &q.server_properties {
        s.push_str(&format!(
            "[ -f {p} ] && sed -n 's/^inter.broker.protocol.version=/ibp /p' {p}\n",
            p = quote(sp)
        ));
        // Every line tagged; the closing echo ends a last line that lacks its newline.
        s.push_str(&format!(
            "[ -f {p} ] && {{ echo sp_file; sed 's/^/sp /' {p}; echo; }}\n",
            p = quote(sp)
        ));
    }
    for svc in &q.services {
        s.push_str(&format!(
            "[ -d /run/systemd/system ] && echo \"unit {name} $(systemctl show -p ActiveState -p NRestarts {name} 2>/dev/null | tr '\\n' ' ')\"\n",
            name = svc.name
        ));
        s.push_str(&pid_script(svc, "pid"));
        s.push_str(&format!(
            "[ -f {m} ] && echo \"owed {name}\"\n",
            m = quote(&restart_owed_marker(svc.name)),
            name = svc.name
        ));
        s.push_str(&format!(
            "id -u {u} >/dev/null 2>&1 && echo \"user {u}\"\n",
            u = svc.user
        ));
    }
    for svc in &q.retired {
        s.push_str(&retired_script(svc));
    }
    if let Some(name) = &q.resolve {
        s.push_str(&format!(
            "getent ahostsv4 {} | awk 'NR==1 {{print \"ip \" $1}}'\n",
            quote(name)
        ));
    }
    s.push_str("true\n");
    s
}

/// Present from just before a roll writes a service's new files until its restart has
/// completed: a run killed in between leaves it, and the next plan owes the restart.
pub fn restart_owed_marker(service: &str) -> String {
    format!("/var/lib/clusterctl/restart-owed-{service}")
}

/// `<tag> <name> <pid>` if the service's main PID (systemd's, or the PID file's) is a live
/// process whose command line has its main class.
fn pid_script(svc: &ServiceDef, tag: &str) -> String {
    format!(
        "{}; [ -n \"$p\" ] && [ -r /proc/$p/cmdline ] && tr '\\0' ' ' < /proc/$p/cmdline | grep -q -- {mc} && echo \"{tag} {name} $p\"\n",
        main_pid_script(svc),
        mc = quote(svc.main_class),
        name = svc.name
    )
}

/// For a service this host no longer runs, only when clusterctl's init script or unit for it
/// is there: `retired <name>`, then whether it starts at boot, its PID, and (Kafka) its roles.
fn retired_script(svc: &ServiceDef) -> String {
    let n = svc.name;
    let mut s = format!(
        "if [ -f /etc/init.d/{n} ] || [ -f /etc/systemd/system/{n}.service ]; then echo \"retired {n}\"\n\
         if [ -d /run/systemd/system ] && [ -f /etc/systemd/system/{n}.service ]; then \
         systemctl is-enabled -q {n} 2>/dev/null && echo \"retired_enabled {n}\"; \
         else for l in /etc/rc[2345].d/S*{n}; do [ -e \"$l\" ] && {{ echo \"retired_enabled {n}\"; break; }}; done; fi\n",
    );
    s.push_str(&pid_script(svc, "retired_pid"));
    if svc.service == Service::Kafka {
        let conf = format!("/etc/{n}/server.properties");
        s.push_str(&format!(
            "[ -f {conf} ] && sed -n 's/^process.roles=/retired_roles {n} /p' {conf}\n"
        ));
    }
    s.push_str("fi\n");
    s
}

/// What pre-flight looks at (`HostFacts`), asked only of hosts an apply changes: room in
/// `space_dirs`, memory, listening ports, clock, limits, OS.
pub fn host_script(space_dirs: &[String]) -> String {
    let mut s = String::from(HOST_SCRIPT);
    for d in space_dirs {
        // The nearest existing parent: the dir may be made by this apply.
        s.push_str(&format!(
            "d={q}; while [ ! -e \"$d\" ]; do d=$(dirname \"$d\"); done; \
             df -Pk \"$d\" 2>/dev/null | awk -v p={q} 'NR==2 {{print \"df\", p, $4, $6}}'\n",
            q = quote(d)
        ));
    }
    s.push_str("true\n");
    s
}

/// Memory, listening ports, clock, limits and OS, for pre-flight. /proc and POSIX tools
/// only: `ss`, GNU `date +%N` and the like may be missing (then that fact is absent).
const HOST_SCRIPT: &str = "\
awk '/^MemTotal:/ {print \"mem\", $2}' /proc/meminfo 2>/dev/null
for f in /proc/net/tcp /proc/net/tcp6; do [ -r $f ] && while read -r _ l _ st _; do \
[ \"$st\" = 0A ] && printf 'listen %d\\n' \"0x${l##*:}\"; done < $f; done
t=$(date +%s%3N 2>/dev/null); case $t in *[!0-9]*|'') ;; *) echo \"clock $t\";; esac
awk '/^Max open files/ {print \"nofile\", $4, $5} /^Max processes/ {print \"nproc\", $3, $4}' /proc/self/limits 2>/dev/null
[ -r /etc/os-release ] && (. /etc/os-release; echo \"os ${ID:-unknown} ${VERSION_ID:-?}\")
";

/// `jar <dir> <name>` for each SLF4J binding jar in `dir`'s lib/ or libs/: the logging
/// library this release binds to decides which config it reads.
pub fn jars_script(dir: &str) -> String {
    let globs: Vec<String> = crate::render::logging::BINDING_GLOBS
        .iter()
        .flat_map(|g| {
            [
                format!("{}/lib/{g}", quote(dir)),
                format!("{}/libs/{g}", quote(dir)),
            ]
        })
        .collect();
    format!(
        "for j in {}; do if [ -f \"$j\" ]; then printf 'jar %s %s\\n' {} \"${{j##*/}}\"; fi; done\n",
        globs.join(" "),
        quote(dir)
    )
}

pub fn parse(out: &str) -> Facts {
    let mut f = Facts::default();
    for line in out.lines() {
        // Content, kept as it is (a value's trailing blanks are part of it).
        if let Some(content) = line.strip_prefix("sp ").or((line == "sp").then_some("")) {
            let sp = f.server_properties.get_or_insert_with(String::new);
            sp.push_str(content);
            sp.push('\n');
            continue;
        }
        let (tag, rest) = line.split_once(' ').unwrap_or((line, ""));
        let rest = rest.trim();
        match tag {
            "pm" => f.package_manager = rest.to_string(),
            "init" => {
                f.init = Some(if rest == "systemd" {
                    InitSystem::Systemd
                } else {
                    InitSystem::SysV
                })
            }
            "java" => f.java = Some(rest.to_string()),
            "file" | "installed" | "link" | "dir" => {
                if let Some((k, v)) = rest.split_once(' ') {
                    let map = match tag {
                        "file" => &mut f.files,
                        "installed" => &mut f.installed,
                        "dir" => &mut f.dirs,
                        _ => &mut f.links,
                    };
                    map.insert(k.to_string(), v.trim().to_string());
                }
            }
            "jar" => {
                if let Some((dir, name)) = rest.split_once(' ') {
                    f.jars
                        .entry(dir.to_string())
                        .or_default()
                        .push(name.trim().to_string());
                }
            }
            "df" => {
                let w: Vec<&str> = rest.split_whitespace().collect();
                if let [dir, kib, mount] = w[..]
                    && let Ok(kib) = kib.parse()
                {
                    f.host.free_kib.insert(dir.into(), (kib, mount.into()));
                }
            }
            "mem" => f.host.mem_total_kib = rest.parse().ok(),
            "listen" => {
                if let Ok(p) = rest.parse()
                    && !f.host.listening.contains(&p)
                {
                    f.host.listening.push(p);
                }
            }
            "clock" => f.host.clock_ms = rest.parse().ok(),
            "nofile" | "nproc" => {
                let lim = |v: &str| v.parse::<u64>().ok();
                let w: Vec<&str> = rest.split_whitespace().collect();
                if let [soft, hard] = w[..] {
                    let v = Some((lim(soft), lim(hard)));
                    if tag == "nofile" {
                        f.host.nofile = v;
                    } else {
                        f.host.nproc = v;
                    }
                }
            }
            "os" => {
                if let Some((id, v)) = rest.split_once(' ') {
                    f.host.os = Some((id.to_string(), v.to_string()));
                }
            }
            "myid" => f.myid = rest.parse().ok(),
            "zk_tls" => f.zk_tls = Some(rest == "true"),
            "broker_id" => f.broker_id = f.broker_id.or(rest.parse().ok()),
            "cluster_id" => f.cluster_id = f.cluster_id.clone().or(Some(rest.to_string())),
            "ibp" => f.ibp = Some(rest.to_string()),
            "sp_file" => {
                f.server_properties.get_or_insert_with(String::new);
            }
            "meta_version" => f.meta_version = f.meta_version.or(rest.parse().ok()),
            "directory_id" => f.directory_id = f.directory_id.clone().or(Some(rest.to_string())),
            "pid" => {
                if let Some((name, pid)) = rest.split_once(' ')
                    && let Ok(pid) = pid.trim().parse()
                {
                    f.pids.insert(service_named(name), pid);
                }
            }
            "unit" => {
                let (name, props) = rest.split_once(' ').unwrap_or((rest, ""));
                let mut u = UnitState::default();
                for kv in props.split_whitespace() {
                    match kv.split_once('=') {
                        Some(("ActiveState", v)) => u.active_state = v.to_string(),
                        Some(("NRestarts", v)) => u.restarts = v.parse().unwrap_or(0),
                        _ => {}
                    }
                }
                f.units.insert(service_named(name), u);
            }
            "retired" | "retired_enabled" | "retired_pid" | "retired_roles" => {
                let (name, value) = rest.split_once(' ').unwrap_or((rest, ""));
                let r = match name {
                    "zookeeper" => f.retired.entry(Service::ZooKeeper).or_default(),
                    "kafka" => f.retired.entry(Service::Kafka).or_default(),
                    crate::inventory::SIDE_CONTROLLER => {
                        f.side_controller.get_or_insert_with(Retired::default)
                    }
                    _ => continue,
                };
                match tag {
                    "retired_enabled" => r.enabled = true,
                    "retired_pid" => r.pid = value.trim().parse().ok(),
                    "retired_roles" => r.roles = Some(value.trim().to_string()),
                    _ => {}
                }
            }
            "owed" => {
                f.restart_owed.insert(service_named(rest.trim()));
            }
            "user" => f.users.push(rest.to_string()),
            "ip" => f.ip = Some(rest.to_string()),
            _ => {}
        }
    }
    f
}

fn service_named(name: &str) -> Service {
    match name {
        "zookeeper" => Service::ZooKeeper,
        "nisshi" => Service::Nisshi,
        _ => Service::Kafka,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retired_services_parse() {
        let f = parse(
            "retired zookeeper\nretired_enabled zookeeper\nretired kafka\nretired_pid kafka 4242\n\
             retired_roles kafka broker,controller\n",
        );
        let zk = &f.retired[&Service::ZooKeeper];
        assert!(zk.enabled && zk.pid.is_none() && zk.pending());
        let k = &f.retired[&Service::Kafka];
        assert!(!k.enabled);
        assert_eq!(k.pid, Some(4242));
        assert_eq!(k.roles.as_deref(), Some("broker,controller"));
        // Installed once, now stopped and disabled: nothing to do.
        let f = parse("retired kafka\n");
        assert!(!f.retired[&Service::Kafka].pending());
        assert!(f.pids.is_empty());
    }

    #[test]
    fn parses_every_tag() {
        let out = "pm apt\ninit sysv\njava openjdk version \"17.0.13\" 2024-10-15\n\
                   file /etc/kafka/server.properties abc123\n\
                   installed /opt/kafka_2.13-3.9.1 deadbeef\nlink /opt/kafka kafka_2.13-3.9.1\n\
                   myid 2\nbroker_id 3\npid kafka 4242\npid zookeeper 77\nuser kafka\n\
                   unit kafka ActiveState=active NRestarts=2 \nunit zookeeper \n";
        let f = parse(out);
        assert_eq!(f.package_manager, "apt");
        assert_eq!(f.init, Some(InitSystem::SysV));
        assert!(f.java.unwrap().contains("17.0.13"));
        assert_eq!(f.files["/etc/kafka/server.properties"], "abc123");
        assert_eq!(f.installed["/opt/kafka_2.13-3.9.1"], "deadbeef");
        assert_eq!(f.links["/opt/kafka"], "kafka_2.13-3.9.1");
        assert_eq!((f.myid, f.broker_id), (Some(2), Some(3)));
        assert_eq!(f.pids[&Service::Kafka], 4242);
        assert_eq!(f.pids[&Service::ZooKeeper], 77);
        assert_eq!(f.users, vec!["kafka"]);
        assert_eq!(
            f.units[&Service::Kafka],
            UnitState {
                active_state: "active".into(),
                restarts: 2
            }
        );
        assert_eq!(f.units[&Service::ZooKeeper], UnitState::default());
    }

    /// The real script under a real `sh`, against files made here.
    #[test]
    fn script_reports_what_is_on_disk() {
        let d = tempfile::tempdir().unwrap();
        let p = |n: &str| d.path().join(n).to_str().unwrap().to_string();
        std::fs::write(p("server.properties"), "hello\n").unwrap();
        let chmod = |f: &str, m: &str| {
            assert!(
                std::process::Command::new("chmod")
                    .args([m, f])
                    .status()
                    .unwrap()
                    .success()
            )
        };
        chmod(&p("server.properties"), "640");
        std::fs::create_dir(p("kafka_2.13-3.9.1")).unwrap();
        chmod(&p("kafka_2.13-3.9.1"), "755");
        std::fs::write(p("kafka_2.13-3.9.1/.clusterctl-sha512"), "abc\n").unwrap();
        std::fs::create_dir(p("kafka_2.13-3.9.1/libs")).unwrap();
        for jar in [
            "slf4j-reload4j-1.7.36.jar",
            "reload4j-1.2.25.jar",
            "kafka-clients-3.9.1.jar",
        ] {
            std::fs::write(p(&format!("kafka_2.13-3.9.1/libs/{jar}")), "").unwrap();
        }
        std::os::unix::fs::symlink("kafka_2.13-3.9.1", p("kafka")).unwrap();
        std::fs::write(p("myid"), "7\n").unwrap();
        std::fs::write(p("meta.properties"), "version=0\nbroker.id=5\n").unwrap();
        let q = Query {
            paths: vec![p("server.properties"), p("missing.cfg")],
            dirs: vec![p("kafka_2.13-3.9.1"), p("no-such-dir")],
            install_dirs: vec![p("kafka_2.13-3.9.1"), p("zookeeper-3.8.4")],
            links: vec![p("kafka"), p("zookeeper")],
            services: vec![],
            retired: vec![],
            myid_file: Some(p("myid")),
            meta_properties: vec![p("meta.properties")],
            server_properties: Some(p("server.properties")),
            java_cmd: "no-such-java-here".into(),
            resolve: Some("localhost".into()),
        };
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!(
                "{}{}",
                script(&q),
                host_script(&[p("no-such-dir/below")])
            ))
            .output()
            .unwrap();
        drop(listener);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let f = parse(&String::from_utf8_lossy(&out.stdout));
        let who = std::process::Command::new("id")
            .args(["-un"])
            .output()
            .unwrap();
        let grp = std::process::Command::new("id")
            .args(["-gn"])
            .output()
            .unwrap();
        let owner = format!(
            "{}:{}",
            String::from_utf8_lossy(&who.stdout).trim(),
            String::from_utf8_lossy(&grp.stdout).trim()
        );
        // sha256 of "hello\n".
        let want =
            format!("5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03 640:{owner}");
        assert_eq!(f.files.get(&p("server.properties")), Some(&want));
        assert_eq!(f.files.len(), 1, "a missing file is not reported");
        assert_eq!(f.server_properties.as_deref(), Some("hello\n"));
        // Measured at the nearest existing parent; this machine's own limits and memory.
        let (kib, mount) = &f.host.free_kib[&p("no-such-dir/below")];
        assert!(*kib > 0 && mount.starts_with('/'), "{kib} {mount}");
        assert!(f.host.mem_total_kib.unwrap() > 1024);
        assert!(f.host.nofile.is_some() && f.host.nproc.is_some());
        assert!(f.host.clock_ms.unwrap() > 1_700_000_000_000);
        assert!(f.host.os.is_some());
        assert!(f.host.listening.contains(&port), "{:?}", f.host.listening);
        assert_eq!(
            f.jars,
            BTreeMap::from([(
                p("kafka_2.13-3.9.1"),
                vec!["slf4j-reload4j-1.7.36.jar".to_string()]
            )]),
            "only the binding, of dirs that exist"
        );
        assert_eq!(
            f.installed.get(&p("kafka_2.13-3.9.1")).map(String::as_str),
            Some("abc")
        );
        assert_eq!(f.installed.len(), 1);
        assert_eq!(
            f.links.get(&p("kafka")).map(String::as_str),
            Some("kafka_2.13-3.9.1")
        );
        assert_eq!(f.links.len(), 1);
        assert_eq!((f.myid, f.broker_id), (Some(7), Some(5)));
        assert_eq!(f.meta_version, Some(0));
        assert_eq!(
            f.dirs.get(&p("kafka_2.13-3.9.1")).map(String::as_str),
            Some(format!("755:{owner}").as_str())
        );
        assert_eq!(f.dirs.len(), 1, "a missing dir is not reported");
        assert_eq!(f.java, None);
        assert_eq!(f.ip.as_deref(), Some("127.0.0.1"));
        assert!(matches!(
            f.package_manager.as_str(),
            "apt" | "dnf" | "yum" | "none"
        ));
    }

    /// server.properties comes back line by line as the host has it, blanks kept, whether or
    /// not its last line ends in a newline, and an empty file is still a file.
    #[test]
    fn server_properties_content_round_trips() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("server.properties");
        for content in ["a=1\n  b = 2  \n\nsp x\n", "no newline at the end", ""] {
            std::fs::write(&path, content).unwrap();
            let q = Query {
                paths: vec![],
                dirs: vec![],
                install_dirs: vec![],
                links: vec![],
                services: vec![],
                retired: vec![],
                myid_file: None,
                meta_properties: vec![],
                server_properties: Some(path.to_str().unwrap().into()),
                java_cmd: "no-such-java-here".into(),
                resolve: None,
            };
            let out = std::process::Command::new("sh")
                .arg("-c")
                .arg(format!("{}echo pm apt\n", script(&q)))
                .output()
                .unwrap();
            let f = parse(&String::from_utf8_lossy(&out.stdout));
            let want = match content {
                "no newline at the end" => "no newline at the end\n",
                c => c,
            };
            assert_eq!(f.server_properties.as_deref(), Some(want), "{content:?}");
            assert_eq!(f.package_manager, "apt", "the next tag is intact");
        }
        assert_eq!(parse("pm apt\n").server_properties, None);
    }

    #[test]
    fn empty_host_has_no_facts() {
        let f = parse("pm none\ninit sysv\n");
        assert!(f.java.is_none() && f.files.is_empty() && f.pids.is_empty());
        assert_eq!(f.myid, None);
    }
}
