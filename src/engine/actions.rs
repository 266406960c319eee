//! The built-in actions. Each looks at the plan (desired state + facts), does only what
//! differs, and returns what it changed; an empty list means "no change".

use super::change::{Change, QuorumInit};
use super::facts::Facts;
use super::plan::HostPlan;
use crate::artifacts::{Artifact, Product};
use crate::inventory::Inventory;
use crate::render::{InitSystem, ManagedFile, Service, ServiceDef};
use crate::report::Reporter;
use crate::transport::{Session, quote};
use anyhow::{Context, Result, bail};
use std::time::Duration;

const INSTALL_TIMEOUT: Duration = Duration::from_secs(900);

/// System users and the directories the services own: the plan's `User` and `Dir` changes.
pub async fn prepare(inv: &Inventory, s: &Session, changes: &[Change]) -> Result<Vec<String>> {
    if changes.is_empty() {
        return Ok(vec![]);
    }
    let mut script = String::from(
        "set -e\n\
         mkuser() { id -u \"$1\" >/dev/null 2>&1 && return 0; \
           useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin \"$1\" 2>/dev/null \
           || useradd -r -M -s /sbin/nologin \"$1\"; }\n",
    );
    script.push_str(&format!("mkdir -p {}\n", quote(&inv.install_dir)));
    let mut done = Vec::new();
    for c in changes {
        match c {
            Change::User(u) => {
                script.push_str(&format!("mkuser {}\nmkdir -p /etc/{u}\n", quote(u)));
                done.push(format!("created user {u}"));
            }
            Change::Dir { path, owner, mode } => {
                script.push_str(&format!(
                    "install -d -o {o} -g {o} -m {mode:o} {d}\n",
                    o = quote(owner),
                    d = quote(path)
                ));
                done.push(format!("directory {path}"));
            }
            other => bail!("prepare cannot make {other:?}"),
        }
    }
    s.exec_ok(&script).await?;
    Ok(done)
}

pub fn jdk_package(inv: &Inventory, f: &Facts) -> String {
    inv.jdk.package.clone().unwrap_or_else(|| {
        match f.package_manager.as_str() {
            "apt" => "openjdk-17-jre-headless",
            _ => "java-17-openjdk-headless",
        }
        .to_string()
    })
}

/// The JDK tarball of `jdk.method: tarball`, hashed once per apply.
#[derive(Debug, Clone, PartialEq)]
pub struct JdkTarball {
    /// `/opt/jdk-<sha12>`: unpacked into a directory named by its bytes.
    pub dir: String,
    /// `jdk-<sha12>`, the target of `<install_dir>/jdk`.
    pub name: String,
    pub sha512: String,
}

pub async fn jdk_tarball(inv: &Inventory) -> Result<JdkTarball> {
    let tarball = inv.jdk.tarball.as_ref().context("jdk.tarball")?;
    let sha512 = crate::artifacts::hash_file(tarball).await?;
    let name = format!("jdk-{}", &sha512[..12]);
    Ok(JdkTarball {
        dir: format!("{}/{name}", inv.install_dir),
        name,
        sha512,
    })
}

/// How long an install waits for another package manager run to finish.
const PACKAGE_LOCK_WAIT: Duration = Duration::from_secs(300);

/// Package manager processes that hold (or are about to take) its lock.
const PACKAGE_MANAGERS: &str = "apt|apt-get|aptitude|dpkg|unattended-upgr|dnf|yum|rpm";

/// Prints the first running package manager process (`pid args`), if any.
fn package_manager_busy(names: &str) -> String {
    format!("command -v pgrep >/dev/null 2>&1 && pgrep -a -x '{names}' | head -n 1; true")
}

/// Waits while a package manager runs, at most `limit`; then fails naming it.
fn wait_for_package_manager(limit: Duration, names: &str) -> String {
    format!(
        "if command -v pgrep >/dev/null 2>&1; then i=0; \
         while pgrep -x '{names}' >/dev/null; do \
         if [ \"$i\" -ge {secs} ]; then echo \"the package manager is still busy after {secs}s: $(pgrep -a -x '{names}' | head -n 1)\" >&2; exit 75; fi; \
         sleep 1; i=$((i+1)); done; fi\n",
        secs = limit.as_secs()
    )
}

/// The plan's JDK changes: a package, or the pushed tarball and its `java.sh`; then
/// `java -version` must answer.
pub async fn jdk(
    inv: &Inventory,
    p: &mut HostPlan,
    s: &Session,
    changes: Vec<Change>,
    rep: &Reporter,
) -> Result<Vec<String>> {
    let mut done = Vec::new();
    for c in changes {
        match c {
            Change::Package(pkg) => {
                let install = match p.facts.package_manager.as_str() {
                    "apt" => format!(
                        "export DEBIAN_FRONTEND=noninteractive; apt-get -o DPkg::Lock::Timeout={secs} update -qq && \
                         apt-get -o DPkg::Lock::Timeout={secs} install -y -qq --no-install-recommends {} >/dev/null",
                        quote(&pkg),
                        secs = PACKAGE_LOCK_WAIT.as_secs()
                    ),
                    "dnf" | "yum" => {
                        format!("{} install -y -q {}", p.facts.package_manager, quote(&pkg))
                    }
                    other => bail!(
                        "no supported package manager (found {other}); set jdk.method to tarball or none"
                    ),
                };
                // Another install (an interrupted apply's apt-get, unattended-upgrades) holds
                // the lock: wait for it, boundedly, and say so.
                let busy = s.exec(&package_manager_busy(PACKAGE_MANAGERS)).await?;
                if let Some(who) = busy.stdout.lines().next().filter(|l| !l.trim().is_empty()) {
                    rep.line(&format!(
                        "  {}: the package manager is busy ({}); waiting up to {}s",
                        p.host.name,
                        who.trim(),
                        PACKAGE_LOCK_WAIT.as_secs()
                    ));
                }
                let cmd = format!(
                    "{}{install}",
                    wait_for_package_manager(PACKAGE_LOCK_WAIT, PACKAGE_MANAGERS)
                );
                s.exec_ok_timeout(&cmd, INSTALL_TIMEOUT + PACKAGE_LOCK_WAIT)
                    .await?;
                done.push(format!("installed package {pkg}"));
            }
            Change::Jdk(jdk) => {
                let tarball = inv.jdk.tarball.as_ref().context("jdk.tarball")?;
                let link = format!("{}/jdk", inv.install_dir);
                let remote = format!("{}/.clusterctl-jdk.tar.gz", inv.install_dir);
                let dir = &jdk.dir;
                s.upload(tarball, &remote, 0o600).await?;
                s.exec_ok_timeout(
                    &unpack_script(&remote, dir, &jdk.sha512, &link, &jdk.name),
                    INSTALL_TIMEOUT,
                )
                .await?;
                done.push(format!("unpacked JDK into {dir}"));
            }
            Change::File(f) => done.push(write_file(p, s, &f).await?),
            other => bail!("the JDK step cannot make {other:?}"),
        }
    }
    // A host in no group (a bastion, one whose services retire) has nothing to check.
    let jvm = !super::plan::host_services(inv, &p.host).is_empty();
    if done.is_empty() && (p.facts.java.is_some() || !jvm) {
        return Ok(done);
    }
    let java = super::plan::java_cmd(inv);
    let out = s.exec(&format!("{} -version 2>&1", quote(&java))).await?;
    if !out.ok() {
        bail!(
            "`{java} -version` failed after the JDK step: {}",
            out.stdout.trim()
        );
    }
    p.facts.java = out.stdout.lines().next().map(str::to_string);
    if let Some(line) = &p.facts.java {
        super::guard::check_installed_java(inv, &p.host.name, line)?;
    }
    Ok(done)
}

/// The plan's `Unpack` and `Link` changes of one product: push the tarball (skipped if the
/// same bytes are there), unpack into a fresh versioned dir, swap the stable symlink atomically.
pub async fn install(
    inv: &Inventory,
    p: &mut HostPlan,
    s: &Session,
    changes: Vec<Change>,
    artifact: Option<&Artifact>,
) -> Result<Vec<String>> {
    let mut done = Vec::new();
    for c in changes {
        match c {
            Change::Unpack { dir, product } => {
                let a = artifact.context("artifact not resolved")?;
                let remote = format!("{}/.clusterctl-{}", inv.install_dir, a.file_name);
                s.upload(&a.path, &remote, 0o600).await?;
                s.exec_ok_timeout(
                    &unpack_script_only(&remote, &dir, &a.sha512),
                    INSTALL_TIMEOUT,
                )
                .await?;
                p.facts.installed.insert(dir.clone(), a.sha512.clone());
                done.push(format!("unpacked {} into {dir}", a.file_name));
                check_logging(p, s, product, &dir, &a.file_name).await?;
            }
            c @ Change::Link { .. } => done.extend(go_live(p, s, vec![c]).await?),
            other => bail!("the install step cannot make {other:?}"),
        }
    }
    Ok(done)
}

/// The plan rendered the logging config of the library this release is known to ship; the
/// jars now unpacked must agree, or its services would log nothing. Before any config goes
/// live: a re-run reads the jars from the host and renders the right one.
async fn check_logging(
    p: &HostPlan,
    s: &Session,
    product: Product,
    dir: &str,
    tarball: &str,
) -> Result<()> {
    let out = s.exec_ok(&super::facts::jars_script(dir)).await?;
    let jars = super::facts::parse(&out.stdout)
        .jars
        .remove(dir)
        .unwrap_or_default();
    let planned = match product {
        Product::Kafka => p.logging.kafka,
        Product::ZooKeeper => p.logging.zookeeper,
    };
    match crate::render::logging::from_jars(&jars) {
        Some(found) if found != planned => bail!(
            "{tarball} unpacked into {dir} logs through {}, but this apply planned a {} config \
             (what the official release ships); nothing else was changed: run apply again, it \
             reads the jars on the host and writes the matching config",
            found.name(),
            planned.name()
        ),
        _ => Ok(()),
    }
}

fn unpack_script(tarball: &str, dir: &str, sha512: &str, link: &str, name: &str) -> String {
    format!(
        "{}{}",
        unpack_script_only(tarball, dir, sha512),
        link_script(link, name)
    )
}

/// Unpack beside whatever runs: a temp dir renamed into place, with its checksum marker.
fn unpack_script_only(tarball: &str, dir: &str, sha512: &str) -> String {
    let tmp = format!("{dir}.clusterctl-new");
    format!(
        "set -e\nrm -rf {tmp}\nmkdir -p {tmp}\ntar -xzf {tb} -C {tmp} --strip-components=1 --no-same-owner\n\
         chmod -R u=rwX,go=rX {tmp}\necho {sha} > {tmp}/.clusterctl-sha512\n\
         rm -rf {dir}\nmv {tmp} {dir}\nrm -f {tb}\n",
        tmp = quote(&tmp),
        tb = quote(tarball),
        sha = quote(sha512),
        dir = quote(dir),
    )
}

/// `ln -sfn` then rename: readers never see a missing link.
fn link_script(link: &str, name: &str) -> String {
    let tmp = format!("{link}.clusterctl-new");
    format!(
        "ln -sfn {name} {tmp} && mv -Tf {tmp} {link}\n",
        name = quote(name),
        tmp = quote(&tmp),
        link = quote(link)
    )
}

/// Make the plan's file and link changes on one host (a service's config step, or the roller
/// taking the host): per-broker dynamic configs set, files written atomically, links swapped,
/// systemd told of changed units.
/// Before a roll writes `svc`'s new files on a host: until its restart completes, the host
/// says the restart is owed (facts::restart_owed_marker), so an interrupted run resumes it.
pub async fn owe_restart(s: &Session, def: &ServiceDef) -> Result<()> {
    let m = super::facts::restart_owed_marker(def.name);
    s.exec_ok(&format!(
        "mkdir -p /var/lib/clusterctl && : > {}",
        quote(&m)
    ))
    .await?;
    Ok(())
}

pub async fn go_live(p: &mut HostPlan, s: &Session, changes: Vec<Change>) -> Result<Vec<String>> {
    let mut done = Vec::new();
    let mut unit = false;
    for c in changes {
        match c {
            Change::File(f) => {
                unit |= f.path.starts_with("/etc/systemd/");
                done.push(write_file(p, s, &f).await?);
            }
            Change::Link { link, target, .. } => {
                s.exec_ok(&link_script(&link, &target)).await?;
                p.facts.links.insert(link.clone(), target.clone());
                done.push(format!("{link} -> {target}"));
            }
            // Before the file it goes with: a refused change leaves the old file in place.
            Change::LiveConfig(c) => {
                done.extend(super::live::make(&c).await?);
            }
            other => bail!("cannot make {other:?} while writing files"),
        }
    }
    if unit && p.init == InitSystem::Systemd {
        s.exec_ok("systemctl daemon-reload").await?;
    }
    Ok(done)
}

async fn write_file(p: &mut HostPlan, s: &Session, f: &ManagedFile) -> Result<String> {
    s.exec_with_input_ok(&write_script(f, false), f.content.as_bytes())
        .await
        .with_context(|| format!("writing {}", f.path))?;
    p.facts
        .files
        .insert(f.path.clone(), HostPlan::fingerprint(f));
    Ok(format!("wrote {}", f.path))
}

/// Writes stdin to `f.path` atomically with `f`'s owner and mode. `if_changed`: leave a file
/// with the same content, mode and owner alone, and print `changed` otherwise.
pub(super) fn write_script(f: &ManagedFile, if_changed: bool) -> String {
    let dir = f
        .path
        .rsplit_once('/')
        .map_or("/", |(d, _)| if d.is_empty() { "/" } else { d });
    let path = quote(&f.path);
    let (check, report) = if if_changed {
        let want = quote(&format!("{:o}:{}:{}", f.mode, f.owner, f.group));
        (
            format!(
                "if cmp -s \"$t\" {path} && [ \"$(stat -c '%a:%U:%G' {path})\" = {want} ]; then exit 0; fi\n"
            ),
            "echo changed\n",
        )
    } else {
        (String::new(), "")
    };
    format!(
        "set -e\nmkdir -p {dir}\nt=$(mktemp {dir}/.clusterctl.XXXXXX)\ntrap 'rm -f \"$t\"' EXIT\n\
         cat > \"$t\"\n{check}chown {o}:{g} \"$t\"\nchmod {m:o} \"$t\"\nmv -f \"$t\" {path}\ntrap - EXIT\n{report}",
        dir = quote(dir),
        o = f.owner,
        g = f.group,
        m = f.mode,
    )
}

/// KRaft: format the log dirs once, as the kafka user, with the cluster's one id. Planned
/// only for a host with no meta.properties (and `--ignore-formatted` guards the other dirs).
/// `quorum`: the dynamic quorum's flag (KIP-853), none for a static one.
pub async fn format(
    inv: &Inventory,
    p: &mut HostPlan,
    s: &Session,
    cluster_id: &str,
    quorum: &QuorumInit,
) -> Result<Vec<String>> {
    let def = ServiceDef::new(Service::Kafka, inv, &p.host);
    // Values reach the tool through the environment, not nested inside sh -c's quotes.
    let (env, flag, what) = match quorum {
        QuorumInit::Static => (String::new(), "", ""),
        QuorumInit::Initial(v) => (
            format!("export CLUSTERCTL_INITIAL_CONTROLLERS={}\n", quote(v)),
            " --initial-controllers \"$CLUSTERCTL_INITIAL_CONTROLLERS\"",
            ", dynamic quorum",
        ),
        QuorumInit::Joining => (
            String::new(),
            " --no-initial-controllers",
            ", to join the dynamic quorum",
        ),
    };
    // The SCRAM users of a secured cluster: salted credentials on stdin into a file only the
    // kafka user reads, handed over as StorageTool's `@file` (never in a process's arguments).
    let scram = crate::security::installed()
        .map(|m| m.bootstrap_scram.clone())
        .unwrap_or_default();
    let (args_file, args) = match scram.is_empty() {
        true => ("", ""),
        false => (
            "a=$(mktemp /tmp/clusterctl-scram.XXXXXX)\ntrap 'rm -f \"$a\"' EXIT\ncat > \"$a\"\n\
             chown kafka \"$a\"\nchmod 600 \"$a\"\nexport CLUSTERCTL_ARGS=\"$a\"\n",
            " \"@$CLUSTERCTL_ARGS\"",
        ),
    };
    let cmd = format!(
        "set -e\nset -a\n. {env_file}\nset +a\nexport CLUSTERCTL_CLUSTER_ID={id}\n{env}{args_file}\
         runuser -u kafka -- sh -c '\"${{JAVA_HOME:+$JAVA_HOME/bin/}}java\" -Xmx256m \
         -Dlog4j.configuration=file:/etc/{name}/log4j.properties -Dkafka.logs.dir={log_dir} \
         -cp \"$CLASSPATH\" kafka.tools.StorageTool format --ignore-formatted \
         --cluster-id=\"$CLUSTERCTL_CLUSTER_ID\"{flag} -c {conf}{args}'",
        env_file = quote(&def.env_file),
        id = quote(cluster_id),
        name = def.name,
        log_dir = def.log_dir,
        conf = p.host.server_properties(),
    );
    s.exec_with_input_ok_timeout(&cmd, scram.as_bytes(), Duration::from_secs(120))
        .await?;
    p.facts.cluster_id = Some(cluster_id.to_string());
    Ok(vec![format!(
        "formatted {} for cluster {cluster_id}{what}",
        inv.kafka_log_dirs(&p.host).join(",")
    )])
}

pub(super) fn service_cmd(p: &HostPlan, svc: &ServiceDef, verb: &str) -> String {
    match p.init {
        InitSystem::SysV => format!("/etc/init.d/{} {verb}", svc.name),
        InitSystem::Systemd => format!("systemctl {verb} {}", svc.name),
    }
}

/// Keep the service from starting at boot; its init script or unit stays.
pub(super) fn disable_cmd(p: &HostPlan, def: &ServiceDef) -> String {
    match p.init {
        InitSystem::SysV => format!(
            "if command -v update-rc.d >/dev/null 2>&1; then update-rc.d {n} disable >/dev/null 2>&1; \
             elif command -v chkconfig >/dev/null 2>&1; then chkconfig {n} off; fi\n\
             for l in /etc/rc[2345].d/S*{n}; do [ -e \"$l\" ] && rm -f \"$l\"; done; true\n",
            n = def.name
        ),
        InitSystem::Systemd => format!("systemctl disable -q {}\n", def.name),
    }
}

/// Start the service if it is not running, and enable it at boot.
pub async fn start_if_stopped(
    inv: &Inventory,
    p: &mut HostPlan,
    s: &Session,
    svc: Service,
) -> Result<Vec<String>> {
    if p.running(svc).is_some() {
        return Ok(vec![]);
    }
    let def = ServiceDef::new(svc, inv, &p.host);
    let enable = match p.init {
        InitSystem::SysV => format!(
            // `enable` too: `defaults` leaves a service disabled by a retirement disabled.
            "if command -v update-rc.d >/dev/null 2>&1; then update-rc.d {n} defaults >/dev/null && \
             update-rc.d {n} enable >/dev/null; \
             elif command -v chkconfig >/dev/null 2>&1; then chkconfig --add {n} && chkconfig {n} on; fi\n",
            n = def.name
        ),
        InitSystem::Systemd => format!("systemctl enable -q {}\n", def.name),
    };
    let pid = start(p, s, &def, &enable).await?;
    Ok(vec![format!("started {} (pid {pid})", def.name)])
}

/// Starts `def` (after the shell `before`) and records it running. Started on the files as
/// they are now, so a restart an earlier run owed is made: the marker goes. A failed start
/// names the command and shows the service's log (the init script's own tail is of stdout
/// only; the cause is often in the log file).
async fn start(p: &mut HostPlan, s: &Session, def: &ServiceDef, before: &str) -> Result<u32> {
    let start = service_cmd(p, def, "start");
    let cmd = format!(
        "{before}{start} && rm -f {}",
        quote(&super::facts::restart_owed_marker(def.name))
    );
    let out = s.exec(&cmd).await?;
    if !out.ok() {
        bail!(
            "{} on {}: `{}` failed (exit {}): {}\nits logs:\n{}",
            def.name,
            p.host.name,
            start.trim(),
            out.status,
            out.stderr.lines().next().unwrap_or("").trim(),
            log_tail(s, def).await
        );
    }
    let pid = read_pid(s, def).await?;
    p.facts.restart_owed.remove(&def.service);
    p.facts.pids.insert(def.service, pid);
    p.clear_changed(def.service);
    Ok(pid)
}

/// A killed ZooKeeper-mode broker's session keeps its registration until the session expires,
/// and a start before that fails (`NodeExists` at /brokers/ids). Waits until the live brokers
/// no longer list it: at most the session timeout and a margin; without an answering broker,
/// the session timeout.
async fn wait_registration_gone(inv: &Inventory, id: i32) -> Result<()> {
    let session = Duration::from_millis(
        inv.kafka
            .properties
            .get("zookeeper.session.timeout.ms")
            .and_then(|v| v.parse().ok())
            .unwrap_or(18_000),
    );
    let limit = session + Duration::from_secs(30);
    let t0 = std::time::Instant::now();
    loop {
        match super::gates::metadata(inv).await {
            Ok(m) if m.broker(id).is_none() => return Ok(()),
            Err(_) if t0.elapsed() >= session => return Ok(()),
            Ok(_) if t0.elapsed() >= limit => bail!(
                "broker {id} is still registered {} s after it was killed: its ZooKeeper session \
                 did not expire; not starting it again",
                limit.as_secs()
            ),
            _ => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    }
}

/// What one restart cost, for the roller's log and the benchmark.
pub struct Restarted {
    pub message: String,
    pub stop: Duration,
    pub start: Duration,
}

/// Stop gracefully (SIGTERM to the recorded PID, then wait), start, record the new PID.
/// With `sigkill_after`, a process still alive after that many seconds is killed.
pub async fn restart(
    inv: &Inventory,
    p: &mut HostPlan,
    s: &Session,
    svc: Service,
    sigkill_after: Option<u64>,
) -> Result<Restarted> {
    let def = ServiceDef::new(svc, inv, &p.host);
    let old = p.running(svc).unwrap_or(0);
    let wait = sigkill_after.unwrap_or(def.stop_timeout as u64);
    let stop = match (p.init, sigkill_after) {
        (InitSystem::SysV, Some(n)) => format!(
            "CLUSTERCTL_STOP_TIMEOUT={n} {}",
            service_cmd(p, &def, "stop")
        ),
        (InitSystem::SysV, None) => service_cmd(p, &def, "stop"),
        (InitSystem::Systemd, _) => systemd_stop(&def, wait),
    };
    let t0 = std::time::Instant::now();
    let out = s
        .exec_timeout(&stop, Duration::from_secs(wait + 60))
        .await?;
    if !out.ok() {
        if sigkill_after.is_none() {
            bail!(
                "{} on {} did not stop gracefully: {}; nothing was killed (pass --sigkill-after SECS to allow SIGKILL)",
                def.name,
                p.host.name,
                out.stderr.trim()
            );
        }
        let kill = match p.init {
            InitSystem::SysV => format!(
                // Bounded: a process stuck in the kernel (D state) outlives SIGKILL.
                "p=$(cat {pf}); kill -KILL $p; n=0; while [ -d /proc/$p ] && [ $n -lt 300 ]; do sleep 0.2; n=$((n+1)); done; \
                 [ -d /proc/$p ] && {{ echo \"pid $p still alive 60 s after SIGKILL\" >&2; exit 1; }}; rm -f {pf}",
                pf = quote(&def.pid_file)
            ),
            // Its stop job is still pending, so systemd does not restart what dies of this.
            InitSystem::Systemd => format!(
                "{}\nsystemctl kill -s KILL {n}\n{}",
                super::facts::main_pid_script(&def),
                wait_inactive(&def, KILLED_WAIT.as_secs()),
                n = def.name
            ),
        };
        s.exec_ok(&kill).await?;
        if svc == Service::Kafka
            && !inv.kafka.kraft
            && let Some(id) = p.broker_id
        {
            wait_registration_gone(inv, id as i32).await?;
        }
    }
    let stopped = t0.elapsed();
    let t1 = std::time::Instant::now();
    let pid = start(p, s, &def, "").await?;
    Ok(Restarted {
        message: format!("restarted {} (pid {old} -> {pid})", def.name),
        stop: stopped,
        start: t1.elapsed(),
    })
}

/// How long a SIGKILLed service may take to be gone (the kernel frees a JVM's memory).
const KILLED_WAIT: Duration = Duration::from_secs(30);

/// Shell that waits (polling 5 times a second) at most `secs` for `def`'s unit to be
/// inactive and its old main PID gone, else fails saying so.
fn wait_inactive(def: &ServiceDef, secs: u64) -> String {
    format!(
        "i=0; while [ \"$i\" -lt {ticks} ]; do \
         case $(systemctl show -p ActiveState --value {n}) in inactive|failed) \
         {{ [ -z \"$p\" ] || [ ! -d /proc/$p ]; }} && exit 0;; esac; sleep 0.2; i=$((i+1)); done\n\
         echo \"{n} (pid $p) did not stop within {secs}s\" >&2; exit 1\n",
        ticks = secs * 5,
        n = def.name
    )
}

/// A graceful stop through systemd (SIGTERM, TimeoutStopSec, no SIGKILL), waited for here
/// at most `secs` (`--sigkill-after` may shorten the unit's own timeout). A stop job: systemd
/// does not restart what it stops.
fn systemd_stop(def: &ServiceDef, secs: u64) -> String {
    format!(
        "{}\nsystemctl stop --no-block {n}\n{}",
        super::facts::main_pid_script(def),
        wait_inactive(def, secs),
        n = def.name
    )
}

/// The logs that hold a failed start's cause: the service's stdout file, and the log its
/// logging config writes (where Kafka puts a bad setting's ConfigException).
/// stdout/stderr (where the JVM writes what happens before logging is up), then the file
/// its logging library writes.
fn log_files(def: &ServiceDef) -> Vec<String> {
    let mut v = vec![format!("{}/{}.out", def.log_dir, def.name)];
    v.extend(def.log_file.clone());
    v
}

/// The last lines of each of `def`'s logs (and their ERROR lines, which a stack trace would
/// push out of the tail), as text for an error message.
pub async fn log_tail(s: &Session, def: &ServiceDef) -> String {
    let mut cmd = String::new();
    for f in log_files(def) {
        cmd.push_str(&format!(
            "if [ -s {f} ]; then echo \"--- {f}:\"; grep -E 'ERROR|FATAL' {f} | tail -n 5; \
             echo '(last lines)'; tail -n 15 {f}; fi\n",
            f = quote(&f)
        ));
    }
    // Under systemd the process's stdout and stderr (a JVM's startup errors) go to the journal.
    cmd.push_str(&format!(
        "if [ -d /run/systemd/system ]; then echo '--- journalctl -u {n}:'; \
         journalctl -u {n} -n 15 --no-pager -o cat 2>&1; fi\n",
        n = def.name
    ));
    match s.exec(&cmd).await {
        Ok(out) if !out.stdout.trim().is_empty() => out.stdout.trim_end().to_string(),
        Ok(_) => format!("(no output in {})", log_files(def).join(" or ")),
        Err(e) => format!("(could not read its logs: {e:#})"),
    }
}

/// Returns (only) when `def`'s process on this host is gone, with its log tail. On systemd,
/// a new main PID counts as gone too: systemd restarted what exited.
pub async fn process_gone(s: &Session, def: &ServiceDef, host: &str) -> anyhow::Error {
    // The PID watched is the one running now; `None` until a read of it succeeds.
    let read = format!("{}; echo \"$p\"", super::facts::main_pid_script(def));
    let mut watched: Option<Option<u32>> = None;
    loop {
        let alive = match watched {
            None => match s.exec(&read).await {
                Ok(out) if out.ok() => {
                    let pid = out.stdout.trim().parse::<u32>().ok();
                    watched = Some(pid);
                    Some(pid.is_some())
                }
                _ => None,
            },
            Some(None) => Some(false),
            Some(Some(pid)) => match s
                .exec(&format!("[ -d /proc/{pid} ] && echo alive; true"))
                .await
            {
                Ok(out) if out.ok() => Some(out.stdout.trim() == "alive"),
                _ => None,
            },
        };
        if alive == Some(false) {
            return anyhow::anyhow!(
                "{} on {host} exited after starting; its logs:\n{}",
                def.name,
                log_tail(s, def).await
            );
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

/// The PID the init system recorded, checked to be our live java process.
async fn read_pid(s: &Session, def: &ServiceDef) -> Result<u32> {
    let cmd = format!(
        "{}; [ -n \"$p\" ] && tr '\\0' ' ' < /proc/$p/cmdline | grep -q -- {mc} && echo $p",
        super::facts::main_pid_script(def),
        mc = quote(def.main_class)
    );
    for _ in 0..10 {
        let out = s.exec(&cmd).await?;
        if let Ok(pid) = out.stdout.trim().parse() {
            return Ok(pid);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    bail!(
        "{} did not stay up: no live process in {} (or systemd's MainPID); its logs:\n{}",
        def.name,
        def.pid_file,
        log_tail(s, def).await
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The wait under a real `sh`: a process of a watched name (a copy of `sleep`, under a
    /// name of its own: this machine may run real package managers, in labs too) holds it
    /// until it exits; with a shorter limit it fails naming it.
    #[test]
    fn an_install_waits_for_a_busy_package_manager_boundedly() {
        let d = tempfile::tempdir().unwrap();
        let name = format!("cctl-pm-{}", std::process::id() % 100000);
        let fake = d.path().join(&name);
        std::fs::copy("/bin/sleep", &fake).unwrap();
        // Started in the background of a shell that exits at once: init reaps it when it
        // ends (a child of this test would linger as a zombie, which pgrep still lists).
        let detached = |secs: &str| -> String {
            let out = std::process::Command::new("sh")
                .arg("-c")
                .arg(format!(
                    "{} {secs} >/dev/null 2>&1 & echo $!",
                    fake.display()
                ))
                .output()
                .unwrap();
            String::from_utf8(out.stdout).unwrap().trim().to_string()
        };
        detached("2");
        let started = std::time::Instant::now();
        let run = |limit: u64| {
            std::process::Command::new("sh")
                .arg("-c")
                .arg(format!(
                    "{}echo done",
                    wait_for_package_manager(Duration::from_secs(limit), &name)
                ))
                .output()
                .unwrap()
        };
        let shown = std::process::Command::new("sh")
            .arg("-c")
            .arg(package_manager_busy(&name))
            .output()
            .unwrap();
        assert!(
            String::from_utf8_lossy(&shown.stdout).contains(&name),
            "{shown:?}"
        );
        let out = run(30);
        assert!(out.status.success(), "{out:?}");
        assert_eq!(String::from_utf8_lossy(&out.stdout), "done\n");
        assert!(
            started.elapsed() >= Duration::from_millis(1500),
            "it waited"
        );

        let pid = detached("5");
        let out = run(1);
        std::process::Command::new("kill")
            .arg(&pid)
            .status()
            .unwrap();
        assert_eq!(out.status.code(), Some(75));
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("still busy after 1s"),
            "{out:?}"
        );
    }

    /// The systemd stop under a real `sh`, against a stand-in `systemctl` that answers from a
    /// file: done once the unit is inactive and its old PID gone, else a bounded failure.
    #[test]
    fn a_systemd_stop_waits_for_the_unit_boundedly() {
        let d = tempfile::tempdir().unwrap();
        let state = d.path().join("state");
        let log = d.path().join("calls");
        std::fs::write(
            d.path().join("systemctl"),
            format!(
                "#!/bin/sh\necho \"$*\" >> {log}\ncase \"$*\" in\n\
                 'show -p ActiveState --value kafka') cat {state} ;;\n\
                 'show -p MainPID --value kafka') echo 0 ;;\nesac\n",
                log = log.display(),
                state = state.display()
            ),
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(
            d.path().join("systemctl"),
            std::fs::Permissions::from_mode(0o755),
        )
        .unwrap();
        let inv = crate::inventory::parse(
            std::path::Path::new("inv.yaml"),
            "hosts:\n  a:\n    address: 10.0.0.1\n  b:\n    address: 10.0.0.2\n  c:\n    address: 10.0.0.3\n\
             groups:\n  zookeeper: [a, b, c]\n  kafka: [a, b, c]\n",
        )
        .unwrap();
        let def = ServiceDef::new(Service::Kafka, &inv, &inv.hosts[0]);
        let path = format!("{}:{}", d.path().display(), std::env::var("PATH").unwrap());
        // `p` set as main_pid_script would: a live PID (this test's shell) keeps it waiting.
        let run = |pid: &str, secs: u64| {
            std::process::Command::new("sh")
                .arg("-c")
                .arg(format!("p={pid}\n{}", wait_inactive(&def, secs)))
                .env("PATH", &path)
                .output()
                .unwrap()
        };
        std::fs::write(&state, "deactivating\n").unwrap();
        let started = std::time::Instant::now();
        let out = run("", 1);
        assert_eq!(out.status.code(), Some(1));
        assert!(started.elapsed() >= Duration::from_millis(900), "it waited");
        assert_eq!(
            String::from_utf8_lossy(&out.stderr),
            "kafka (pid ) did not stop within 1s\n"
        );
        std::fs::write(&state, "inactive\n").unwrap();
        assert_eq!(run("", 1).status.code(), Some(0));
        assert_eq!(
            run("$$", 1).status.code(),
            Some(1),
            "its process still lives"
        );
        std::fs::write(&state, "failed\n").unwrap();
        assert_eq!(run("999999999", 1).status.code(), Some(0));
        // The whole stop: a stop job that does not block, then the wait.
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(systemd_stop(&def, 1))
            .env("PATH", &path)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        let calls = std::fs::read_to_string(&log).unwrap();
        assert!(calls.contains("stop --no-block kafka\n"), "{calls}");
    }

    /// The real script under `sh`: written once, then left alone until content or mode differ.
    #[test]
    fn write_if_changed_writes_only_a_difference() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("sub/f.conf");
        let who = |flag: &str| {
            let o = std::process::Command::new("id").arg(flag).output().unwrap();
            String::from_utf8_lossy(&o.stdout).trim().to_string()
        };
        let mut f = ManagedFile {
            path: path.to_str().unwrap().into(),
            content: "a = 1\n".into(),
            mode: 0o640,
            owner: who("-un"),
            group: who("-gn"),
            restarts: None,
            secret: false,
        };
        let run = |f: &ManagedFile| {
            let mut c = std::process::Command::new("sh")
                .arg("-c")
                .arg(write_script(f, true))
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            use std::io::Write;
            c.stdin
                .take()
                .unwrap()
                .write_all(f.content.as_bytes())
                .unwrap();
            let out = c.wait_with_output().unwrap();
            assert!(out.status.success());
            String::from_utf8_lossy(&out.stdout).trim().to_string()
        };
        assert_eq!(run(&f), "changed");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "a = 1\n");
        assert_eq!(run(&f), "", "same content and mode: left alone");
        f.mode = 0o600;
        assert_eq!(run(&f), "changed");
        f.content = "a = 2\n".into();
        assert_eq!(run(&f), "changed");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "a = 2\n");
        assert_eq!(
            std::fs::read_dir(path.parent().unwrap()).unwrap().count(),
            1,
            "no temp file left behind"
        );
    }
}
