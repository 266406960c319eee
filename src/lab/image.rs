//! Builds the node image: from `lab/Dockerfile` where a registry is reachable, else from a
//! debootstrap root filesystem (build machines without a registry). Both give the same image.

use super::engine::{self, Engine, Timed};
use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub const BASE_IMAGE: &str = "docker.io/library/debian:bookworm-slim";
const DOCKERFILE: &str = include_str!("../../lab/Dockerfile");
const SYSTEMD_DOCKERFILE: &str = include_str!("../../lab/Dockerfile.systemd");
/// Installed in both build paths (minbase already has tar and gzip; listed for clarity).
pub const PACKAGES: [&str; 8] = [
    "openssh-server",
    "iproute2",
    "procps",
    "netcat-openbsd",
    "ca-certificates",
    "tar",
    "gzip",
    "sudo",
];
/// Fresh host keys per container, then sshd in the foreground logging to stderr.
pub const NODE_CMD: &str =
    r#"["/bin/sh", "-c", "mkdir -p /run/sshd && ssh-keygen -A && exec /usr/sbin/sshd -D -e"]"#;
const SUITE: &str = "bookworm";
const DEBIAN_MIRROR: &str = "http://deb.debian.org/debian";
/// What debian:bookworm-slim configures too: release, point updates, security.
const SOURCES_LIST: &str = "\
deb http://deb.debian.org/debian bookworm main
deb http://deb.debian.org/debian bookworm-updates main
deb http://deb.debian.org/debian-security bookworm-security main
";
/// A registry that answers does so within seconds; one that drops packets must not stall us.
const PROBE_TIMEOUT: Duration = Duration::from_secs(20);
/// Set to `dockerfile` or `debootstrap` to skip the registry probe.
const SOURCE_ENV: &str = "CLUSTERCTL_LAB_IMAGE_SOURCE";

#[derive(Debug, PartialEq)]
enum Source {
    Dockerfile,
    Debootstrap,
}

pub fn build(engine: Engine, name: &str) -> Result<()> {
    let started = Instant::now();
    match choose_source(engine)? {
        Source::Dockerfile => build_from_dockerfile(engine, name)?,
        Source::Debootstrap => build_from_debootstrap(engine, name)?,
    }
    eprintln!(
        "lab image: built {name} in {} s",
        started.elapsed().as_secs()
    );
    Ok(())
}

fn choose_source(engine: Engine) -> Result<Source> {
    match std::env::var(SOURCE_ENV).as_deref() {
        Ok("dockerfile") => {
            eprintln!("lab image: {SOURCE_ENV}=dockerfile: building from lab/Dockerfile");
            return Ok(Source::Dockerfile);
        }
        Ok("debootstrap") => {
            eprintln!(
                "lab image: {SOURCE_ENV}=debootstrap: building from a debootstrap root filesystem"
            );
            return Ok(Source::Debootstrap);
        }
        Ok(other) => bail!("{SOURCE_ENV}={other:?}: expected \"dockerfile\" or \"debootstrap\""),
        Err(_) => {}
    }
    if engine.image_exists(BASE_IMAGE)? {
        eprintln!("lab image: {BASE_IMAGE} is present locally: building from lab/Dockerfile");
        return Ok(Source::Dockerfile);
    }
    let mut pull = engine.cmd();
    pull.args(["pull", "-q", BASE_IMAGE]);
    eprintln!(
        "lab image: probing the registry: `{}` (at most {} s)",
        engine::describe(&pull),
        PROBE_TIMEOUT.as_secs()
    );
    let why = match engine::run_with_timeout(&mut pull, PROBE_TIMEOUT)? {
        Timed::Ok => {
            eprintln!("lab image: registry reachable: building from lab/Dockerfile");
            return Ok(Source::Dockerfile);
        }
        Timed::Failed(stderr) => stderr
            .lines()
            .rfind(|l| !l.trim().is_empty())
            .unwrap_or("no message")
            .trim()
            .to_string(),
        Timed::Expired => format!("no answer within {} s", PROBE_TIMEOUT.as_secs()),
    };
    eprintln!("lab image: registry not reachable ({why})");
    eprintln!("lab image: building from a debootstrap root filesystem instead");
    Ok(Source::Debootstrap)
}

fn build_from_dockerfile(engine: Engine, name: &str) -> Result<()> {
    podman_build(engine, DOCKERFILE, &[], name)
}

/// The systemd node: `base` plus systemd from Debian's registry (which nodes reach; ~10 s).
pub fn build_systemd(engine: Engine, base: &str, name: &str) -> Result<()> {
    let started = Instant::now();
    podman_build(
        engine,
        SYSTEMD_DOCKERFILE,
        &["--build-arg".into(), format!("BASE={base}")],
        name,
    )?;
    eprintln!(
        "lab image: built {name} in {} s",
        started.elapsed().as_secs()
    );
    Ok(())
}

fn podman_build(engine: Engine, dockerfile: &str, args: &[String], name: &str) -> Result<()> {
    // The Dockerfile is compiled in, so the binary builds the image from any directory.
    let ctx = cache_dir()?.join(format!("build-{}", std::process::id()));
    std::fs::create_dir_all(&ctx).with_context(|| format!("creating {}", ctx.display()))?;
    std::fs::write(ctx.join("Dockerfile"), dockerfile)
        .with_context(|| format!("writing {}/Dockerfile", ctx.display()))?;
    let mut cmd = engine.cmd();
    cmd.arg("build")
        .args(engine.start_flags()?)
        .args(args)
        .args(["-t", name])
        .arg(&ctx);
    let result = engine::run_visible(&mut cmd);
    let _ = std::fs::remove_dir_all(&ctx);
    result
}

fn build_from_debootstrap(engine: Engine, name: &str) -> Result<()> {
    let rootfs = cached_rootfs()?;
    prepare_rootfs(&rootfs)?;
    import(engine, &rootfs, name)
}

/// `~/.cache/clusterctl-lab` (or under $XDG_CACHE_HOME): outside any repository, and apart
/// from the artifact cache (`~/.cache/clusterctl`), which gets wiped to test downloads.
fn cache_dir() -> Result<PathBuf> {
    let base = match std::env::var_os("XDG_CACHE_HOME").filter(|v| !v.is_empty()) {
        Some(x) => PathBuf::from(x),
        None => match std::env::var_os("HOME").filter(|v| !v.is_empty()) {
            Some(h) => PathBuf::from(h).join(".cache"),
            None => bail!("neither XDG_CACHE_HOME nor HOME is set: no place for the lab cache"),
        },
    };
    Ok(base.join("clusterctl-lab"))
}

/// The pristine debootstrap output, built once (~30 s) and reused: the directory appears under
/// its final name only when debootstrap has finished.
fn cached_rootfs() -> Result<PathBuf> {
    let dir = cache_dir()?.join(format!("rootfs-{SUITE}-minbase-{:016x}", recipe_hash()));
    if dir.is_dir() {
        eprintln!("lab image: using cached root filesystem {}", dir.display());
        return Ok(dir);
    }
    if engine::run(Command::new("id").arg("-u"))?.trim() != "0" {
        bail!(
            "building the node image with debootstrap needs root (run `clusterctl lab image` as root)"
        );
    }
    if engine::on_path("debootstrap").is_none() {
        bail!("debootstrap is not on PATH (scripts/setup-machine.sh installs it)");
    }
    let partial = dir.with_extension("partial");
    if partial.exists() {
        remove_tree(&partial)?;
    }
    std::fs::create_dir_all(&partial).with_context(|| format!("creating {}", partial.display()))?;
    let mut cmd = Command::new("debootstrap");
    cmd.arg("--variant=minbase")
        .arg(format!("--include={}", PACKAGES.join(",")))
        .arg(SUITE)
        .arg(&partial)
        .arg(DEBIAN_MIRROR);
    eprintln!("lab image: `{}` (about 30 s)", engine::describe(&cmd));
    engine::run(&mut cmd)?;
    std::fs::rename(&partial, &dir)
        .with_context(|| format!("renaming {} to {}", partial.display(), dir.display()))?;
    Ok(dir)
}

/// Changes to what debootstrap is asked for give a new cache entry, never a stale one.
fn recipe_hash() -> u64 {
    // FNV-1a: stable across Rust versions, unlike std's hashers.
    let recipe = format!("{SUITE}|{DEBIAN_MIRROR}|{}", PACKAGES.join(","));
    recipe.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// `rm -rf --one-file-system`: a debootstrap killed mid-way can leave /proc or /sys mounted
/// inside its target, and those must never be recursed into.
fn remove_tree(dir: &Path) -> Result<()> {
    engine::run(
        Command::new("rm")
            .arg("-rf")
            .arg("--one-file-system")
            .arg(dir),
    )
    .map(drop)
}

/// Idempotent finishing touches, applied on every import: apt sources as the slim image has
/// them, no host keys (each container makes its own), no package lists (stale at once and
/// 40+ MB; nodes run `apt-get update` like on the slim image), sshd's runtime dir.
fn prepare_rootfs(root: &Path) -> Result<()> {
    let write = |rel: &str, text: &str| {
        let p = root.join(rel);
        std::fs::write(&p, text).with_context(|| format!("writing {}", p.display()))
    };
    write("etc/apt/sources.list", SOURCES_LIST)?;
    remove_files(&root.join("etc/ssh"), |n| n.starts_with("ssh_host_"))?;
    remove_files(&root.join("var/lib/apt/lists"), |n| n != "lock")?;
    remove_files(&root.join("var/cache/apt/archives"), |n| {
        n.ends_with(".deb")
    })?;
    remove_files(&root.join("var/cache/apt"), |n| n.ends_with(".bin"))?;
    for (rel, mode) in [("root/.ssh", 0o700), ("run/sshd", 0o755)] {
        let p = root.join(rel);
        std::fs::create_dir_all(&p).with_context(|| format!("creating {}", p.display()))?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode))
            .with_context(|| format!("chmod {} {mode:o}", p.display()))?;
    }
    Ok(())
}

/// Removes the regular files (not directories) of `dir` whose names match.
fn remove_files(dir: &Path, matches: impl Fn(&str) -> bool) -> Result<()> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e).with_context(|| format!("listing {}", dir.display())),
    };
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name();
        if entry.file_type()?.is_file() && matches(&name.to_string_lossy()) {
            std::fs::remove_file(entry.path())
                .with_context(|| format!("removing {}", entry.path().display()))?;
        }
    }
    Ok(())
}

/// `tar -C ROOTFS -c . | podman import --change CMD... - NAME`, streamed (no 240 MB temp file).
fn import(engine: Engine, rootfs: &Path, name: &str) -> Result<()> {
    let mut tar_cmd = Command::new("tar");
    tar_cmd
        .args(["--numeric-owner", "-C"])
        .arg(rootfs)
        .args(["-c", "."]);
    let mut tar = tar_cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot run `{}`", engine::describe(&tar_cmd)))?;
    let tar_stderr = engine::drain(&mut tar);
    let mut import = engine.cmd();
    import.args([
        "import",
        "--change",
        &format!("CMD {NODE_CMD}"),
        "--change",
        "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "-",
        name,
    ]);
    eprintln!(
        "lab image: `{} | {}`",
        engine::describe(&tar_cmd),
        engine::describe(&import)
    );
    let out = import
        .stdin(Stdio::from(tar.stdout.take().expect("stdout is piped")))
        .output()
        .with_context(|| format!("cannot run `{}`", engine::describe(&import)))?;
    let tar_status = tar.wait()?;
    let tar_err = tar_stderr.join().unwrap_or_default();
    if !tar_status.success() {
        bail!(
            "`{}` failed ({tar_status}): {}",
            engine::describe(&tar_cmd),
            tar_err.trim()
        );
    }
    if !out.status.success() {
        bail!(
            "`{}` failed ({}): {}",
            engine::describe(&import),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The two build paths must give the same image.
    #[test]
    fn dockerfile_matches_the_debootstrap_recipe() {
        let install = DOCKERFILE
            .split("apt-get install")
            .nth(1)
            .and_then(|rest| rest.split("&&").next())
            .expect("Dockerfile installs packages");
        let mut listed: Vec<&str> = install
            .split_whitespace()
            .filter(|w| !w.starts_with('-') && *w != "\\")
            .collect();
        listed.sort();
        let mut wanted = PACKAGES.to_vec();
        wanted.sort();
        assert_eq!(listed, wanted);
        assert!(
            DOCKERFILE.contains(&format!("\nCMD {NODE_CMD}\n")),
            "Dockerfile CMD differs from NODE_CMD"
        );
        assert!(DOCKERFILE.contains(&format!("FROM {BASE_IMAGE}\n")));
        assert!(DOCKERFILE.contains("rm -f /etc/ssh/ssh_host_*"));
    }

    /// Built on the plain node (its packages and sshd setup), booting systemd with sshd as a
    /// unit whose host keys are made at boot.
    #[test]
    fn systemd_dockerfile_extends_the_node_image() {
        assert!(SYSTEMD_DOCKERFILE.contains("ARG BASE\nFROM ${BASE}\n"));
        assert!(SYSTEMD_DOCKERFILE.contains("systemd systemd-sysv dbus"));
        assert!(SYSTEMD_DOCKERFILE.contains("'ExecStart=/usr/bin/ssh-keygen -A'"));
        assert!(
            SYSTEMD_DOCKERFILE.contains("systemctl enable clusterctl-hostkeys.service ssh.service")
        );
        assert!(SYSTEMD_DOCKERFILE.ends_with("\nCMD [\"/sbin/init\"]\n"));
    }

    #[test]
    fn node_cmd_is_a_json_exec_form() {
        let v: Vec<String> = serde_json::from_str(NODE_CMD).unwrap();
        assert_eq!(v[0], "/bin/sh");
        assert!(v[2].contains("ssh-keygen -A") && v[2].ends_with("exec /usr/sbin/sshd -D -e"));
    }

    #[test]
    fn prepare_rootfs_removes_host_keys_and_sets_sources() {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        for d in ["etc/ssh", "etc/apt", "var/lib/apt/lists/partial"] {
            std::fs::create_dir_all(r.join(d)).unwrap();
        }
        for f in [
            "etc/ssh/ssh_host_ed25519_key",
            "etc/ssh/ssh_host_ed25519_key.pub",
            "etc/ssh/sshd_config",
            "var/lib/apt/lists/deb.debian.org_debian_dists_bookworm_InRelease",
            "var/lib/apt/lists/lock",
        ] {
            std::fs::write(r.join(f), "x").unwrap();
        }
        prepare_rootfs(r).unwrap();
        prepare_rootfs(r).unwrap(); // idempotent
        assert!(!r.join("etc/ssh/ssh_host_ed25519_key").exists());
        assert!(!r.join("etc/ssh/ssh_host_ed25519_key.pub").exists());
        assert!(r.join("etc/ssh/sshd_config").exists());
        assert!(r.join("var/lib/apt/lists/lock").exists());
        assert!(r.join("var/lib/apt/lists/partial").is_dir());
        let sources = std::fs::read_to_string(r.join("etc/apt/sources.list")).unwrap();
        for suite in [
            "bookworm main",
            "bookworm-updates main",
            "bookworm-security main",
        ] {
            assert!(sources.contains(suite), "{sources}");
        }
        assert!(r.join("root/.ssh").is_dir() && r.join("run/sshd").is_dir());
    }
}
