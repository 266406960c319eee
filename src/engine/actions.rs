//! The built-in actions. Each looks at the plan (desired state + facts), does only what
//! differs, and returns what it changed; an empty list means "no change".

use super::facts::Facts;
use super::plan::HostPlan;
use crate::artifacts::{Artifact, Product};
use crate::inventory::{Inventory, JdkMethod};
use crate::render::{InitSystem, ManagedFile, Service, ServiceDef};
use crate::transport::{Session, quote};
use anyhow::{Context, Result, bail};
use std::time::Duration;

const INSTALL_TIMEOUT: Duration = Duration::from_secs(900);

/// System users and the directories the services own.
pub async fn prepare(inv: &Inventory, p: &mut HostPlan, s: &Session) -> Result<Vec<String>> {
    let mut script = String::from(
        "set -e\n\
         mkuser() { id -u \"$1\" >/dev/null 2>&1 && return 0; \
           useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin \"$1\" 2>/dev/null \
           || useradd -r -M -s /sbin/nologin \"$1\"; echo \"created user $1\"; }\n\
         mkdir_owned() { [ -d \"$1\" ] || echo \"created $1\"; install -d -o \"$2\" -g \"$2\" -m \"$3\" \"$1\"; }\n",
    );
    script.push_str(&format!("mkdir -p {}\n", quote(&inv.install_dir)));
    if p.host.in_zookeeper {
        let z = &inv.zookeeper;
        script.push_str("mkuser zookeeper\nmkdir -p /etc/zookeeper\n");
        for d in [
            &z.data_dir,
            &z.data_log_dir,
            &"/var/log/zookeeper".to_string(),
        ] {
            script.push_str(&format!("mkdir_owned {} zookeeper 0750\n", quote(d)));
        }
    }
    if p.host.runs_kafka() {
        script.push_str("mkuser kafka\nmkdir -p /etc/kafka\n");
        for d in inv
            .kafka
            .log_dirs
            .iter()
            .chain(Some(&"/var/log/kafka".to_string()))
        {
            script.push_str(&format!("mkdir_owned {} kafka 0750\n", quote(d)));
        }
    }
    let out = s.exec_ok(&script).await?;
    Ok(out.stdout.lines().map(str::to_string).collect())
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

/// A JDK from the OS package, a pushed tarball, or one already there (`none`).
pub async fn jdk(inv: &Inventory, p: &mut HostPlan, s: &Session) -> Result<Vec<String>> {
    let mut changes = Vec::new();
    match inv.jdk.method {
        JdkMethod::Package => {
            if p.facts.java.is_none() {
                let pkg = jdk_package(inv, &p.facts);
                let cmd = match p.facts.package_manager.as_str() {
                    "apt" => format!(
                        "export DEBIAN_FRONTEND=noninteractive; apt-get update -qq && \
                         apt-get install -y -qq --no-install-recommends {} >/dev/null",
                        quote(&pkg)
                    ),
                    "dnf" | "yum" => {
                        format!("{} install -y -q {}", p.facts.package_manager, quote(&pkg))
                    }
                    other => bail!(
                        "no supported package manager (found {other}); set jdk.method to tarball or none"
                    ),
                };
                s.exec_ok_timeout(&cmd, INSTALL_TIMEOUT).await?;
                changes.push(format!("installed package {pkg}"));
            }
        }
        JdkMethod::Tarball => {
            let tarball = inv.jdk.tarball.as_ref().context("jdk.tarball")?;
            let sha = crate::artifacts::hash_file(tarball).await?;
            let dir = format!("{}/jdk-{}", inv.install_dir, &sha[..12]);
            let link = format!("{}/jdk", inv.install_dir);
            let name = dir.rsplit('/').next().unwrap().to_string();
            if p.facts.links.get(&link) != Some(&name) {
                let remote = format!("{}/.clusterctl-jdk.tar.gz", inv.install_dir);
                s.upload(tarball, &remote, 0o600).await?;
                s.exec_ok_timeout(
                    &unpack_script(&remote, &dir, &sha, &link, &name),
                    INSTALL_TIMEOUT,
                )
                .await?;
                changes.push(format!("unpacked JDK into {dir}"));
            }
            changes.extend(write_files(p, s, |f| f.path == "/etc/profile.d/java.sh").await?);
        }
        JdkMethod::None => {}
    }
    if changes.is_empty() && p.facts.java.is_some() {
        return Ok(changes);
    }
    let java = super::plan::java_cmd(inv);
    let out = s.exec(&format!("{java} -version 2>&1")).await?;
    if !out.ok() {
        bail!(
            "`{java} -version` failed after the JDK step: {}",
            out.stdout.trim()
        );
    }
    p.facts.java = out.stdout.lines().next().map(str::to_string);
    Ok(changes)
}

/// Push the tarball (skipped if the same bytes are there), unpack into a fresh versioned dir,
/// then swap the stable symlink atomically.
pub async fn install(
    inv: &Inventory,
    p: &mut HostPlan,
    s: &Session,
    product: Product,
    artifact: Option<&Artifact>,
) -> Result<Vec<String>> {
    if !p.needs_install(inv, product) {
        return Ok(vec![]);
    }
    let (dir, link, name) = HostPlan::install_dir(inv, product);
    let a = artifact.context("artifact not resolved")?;
    let mut changes = Vec::new();
    if p.facts.installed.get(&dir) != Some(&a.sha512) {
        let remote = format!("{}/.clusterctl-{}", inv.install_dir, a.file_name);
        s.upload(&a.path, &remote, 0o600).await?;
        s.exec_ok_timeout(
            &unpack_script(&remote, &dir, &a.sha512, &link, &name),
            INSTALL_TIMEOUT,
        )
        .await?;
        p.facts.installed.insert(dir.clone(), a.sha512.clone());
        changes.push(format!("unpacked {} into {dir}", a.file_name));
    } else {
        s.exec_ok(&link_script(&link, &name)).await?;
    }
    p.facts.links.insert(link.clone(), name.clone());
    changes.push(format!("{link} -> {name}"));
    // A new version on disk means the running process is stale.
    for svc in [Service::ZooKeeper, Service::Kafka] {
        let uses = match (product, svc) {
            (Product::Kafka, Service::Kafka) => true,
            (Product::Kafka, Service::ZooKeeper) => {
                inv.zookeeper.source == crate::inventory::ZkSource::Kafka && p.host.in_zookeeper
            }
            (Product::ZooKeeper, Service::ZooKeeper) => true,
            _ => false,
        };
        if uses {
            p.mark_changed(svc);
        }
    }
    Ok(changes)
}

fn unpack_script(tarball: &str, dir: &str, sha512: &str, link: &str, name: &str) -> String {
    let tmp = format!("{dir}.clusterctl-new");
    format!(
        "set -e\nrm -rf {tmp}\nmkdir -p {tmp}\ntar -xzf {tb} -C {tmp} --strip-components=1 --no-same-owner\n\
         chmod -R u=rwX,go=rX {tmp}\necho {sha} > {tmp}/.clusterctl-sha512\n\
         rm -rf {dir}\nmv {tmp} {dir}\nrm -f {tb}\n{link}",
        tmp = quote(&tmp),
        tb = quote(tarball),
        sha = quote(sha512),
        dir = quote(dir),
        link = link_script(link, name)
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

/// Write the changed files of one service atomically (temp file in the same directory,
/// owner and mode set, then rename).
pub async fn configure(p: &mut HostPlan, s: &Session, svc: Service) -> Result<Vec<String>> {
    let changes = write_files(p, s, |f| f.restarts == Some(svc)).await?;
    if !changes.is_empty() {
        p.mark_changed(svc);
        if p.init == InitSystem::Systemd {
            s.exec_ok("systemctl daemon-reload").await?;
        }
    }
    Ok(changes)
}

async fn write_files(
    p: &mut HostPlan,
    s: &Session,
    which: impl Fn(&ManagedFile) -> bool,
) -> Result<Vec<String>> {
    let todo: Vec<ManagedFile> = p
        .changed_files()
        .into_iter()
        .filter(|f| which(f))
        .cloned()
        .collect();
    let mut changes = Vec::new();
    for f in todo {
        s.exec_with_input_ok(&write_script(&f, false), f.content.as_bytes())
            .await
            .with_context(|| format!("writing {}", f.path))?;
        p.facts
            .files
            .insert(f.path.clone(), HostPlan::fingerprint(&f));
        changes.push(format!("wrote {}", f.path));
    }
    Ok(changes)
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

/// KRaft: format the log dirs once, as the kafka user, with the cluster's one id. A host
/// whose meta.properties exists is never formatted again (and `--ignore-formatted` guards
/// the other dirs).
pub async fn format(
    inv: &Inventory,
    p: &mut HostPlan,
    s: &Session,
    cluster_id: &str,
) -> Result<Vec<String>> {
    if p.facts.cluster_id.is_some() {
        return Ok(vec![]);
    }
    let def = ServiceDef::new(Service::Kafka, inv, &p.host);
    let cmd = format!(
        "set -e\nset -a\n. {env}\nset +a\nrunuser -u kafka -- sh -c '\"${{JAVA_HOME:+$JAVA_HOME/bin/}}java\" -Xmx256m \
         -Dlog4j.configuration=file:/etc/kafka/log4j.properties -Dkafka.logs.dir=/var/log/kafka \
         -cp \"$CLASSPATH\" kafka.tools.StorageTool format --ignore-formatted -t {id} -c /etc/kafka/server.properties'",
        env = quote(&def.env_file),
        id = quote(cluster_id)
    );
    s.exec_ok_timeout(&cmd, Duration::from_secs(120)).await?;
    p.facts.cluster_id = Some(cluster_id.to_string());
    Ok(vec![format!(
        "formatted {} for cluster {cluster_id}",
        inv.kafka.log_dirs.join(",")
    )])
}

fn service_cmd(p: &HostPlan, svc: &ServiceDef, verb: &str) -> String {
    match p.init {
        InitSystem::SysV => format!("/etc/init.d/{} {verb}", svc.name),
        InitSystem::Systemd => format!("systemctl {verb} {}", svc.name),
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
            "if command -v update-rc.d >/dev/null 2>&1; then update-rc.d {n} defaults >/dev/null; \
             elif command -v chkconfig >/dev/null 2>&1; then chkconfig --add {n}; fi\n",
            n = def.name
        ),
        InitSystem::Systemd => format!("systemctl enable -q {}\n", def.name),
    };
    s.exec_ok(&format!("{enable}{}", service_cmd(p, &def, "start")))
        .await?;
    let pid = read_pid(s, &def).await?;
    p.facts.pids.insert(svc, pid);
    p.clear_changed(svc);
    Ok(vec![format!("started {} (pid {pid})", def.name)])
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
        _ => service_cmd(p, &def, "stop"),
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
        s.exec_ok(&format!(
            "p=$(cat {pf}); kill -KILL $p; while [ -d /proc/$p ]; do sleep 0.2; done; rm -f {pf}",
            pf = quote(&def.pid_file)
        ))
        .await?;
    }
    let stopped = t0.elapsed();
    let t1 = std::time::Instant::now();
    s.exec_ok(&service_cmd(p, &def, "start")).await?;
    let pid = read_pid(s, &def).await?;
    p.facts.pids.insert(svc, pid);
    p.clear_changed(svc);
    Ok(Restarted {
        message: format!("restarted {} (pid {old} -> {pid})", def.name),
        stop: stopped,
        start: t1.elapsed(),
    })
}

/// The PID the init system recorded, checked to be our live java process.
async fn read_pid(s: &Session, def: &ServiceDef) -> Result<u32> {
    let cmd = format!(
        "p=$(cat {pf}); tr '\\0' ' ' < /proc/$p/cmdline | grep -q -- {mc} && echo $p",
        pf = quote(&def.pid_file),
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
        "{} did not stay up: no live process in {}; see {}/{}.out on the host",
        def.name,
        def.pid_file,
        def.log_dir,
        def.name
    )
}

#[cfg(test)]
mod tests {
    use super::*;

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
