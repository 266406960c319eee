//! The container engine (podman, else docker) and the one way this module runs commands:
//! every failure names the command line and carries its stderr.

use anyhow::{Context, Result, anyhow, bail};
use serde::{Deserialize, Serialize};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Engine {
    Podman,
    Docker,
}

impl Engine {
    /// podman when installed (it needs no daemon), docker otherwise.
    pub fn detect() -> Result<Engine> {
        if on_path("podman").is_some() {
            Ok(Engine::Podman)
        } else if on_path("docker").is_some() {
            Ok(Engine::Docker)
        } else {
            bail!("neither podman nor docker is on PATH (scripts/setup-machine.sh installs podman)")
        }
    }

    pub fn program(self) -> &'static str {
        match self {
            Engine::Podman => "podman",
            Engine::Docker => "docker",
        }
    }

    pub fn cmd(self) -> Command {
        Command::new(self.program())
    }

    /// Flags for anything that starts a container (run, build). crun, podman's default, fails on
    /// hosts with hybrid cgroups ("cgroups in hybrid mode not supported") where runc works, and
    /// podman's default rlimits can exceed the host's hard limits ("setrlimit RLIMIT_NOFILE:
    /// Operation not permitted"). Passed explicitly so no containers.conf is needed.
    pub fn start_flags(self) -> Result<Vec<String>> {
        let (nofile, nproc) = host_limits()?;
        let mut flags = crate::lab::render::ulimit_flags(nofile, nproc);
        if self == Engine::Podman && on_path("runc").is_some() {
            flags.extend(["--runtime".to_string(), "runc".to_string()]);
        }
        Ok(flags)
    }

    pub fn image_exists(self, name: &str) -> Result<bool> {
        match self {
            Engine::Podman => self.exists(&["image", "exists", name]),
            Engine::Docker => self.exists(&["image", "inspect", name]),
        }
    }

    pub fn container_exists(self, name: &str) -> Result<bool> {
        match self {
            Engine::Podman => self.exists(&["container", "exists", name]),
            Engine::Docker => self.exists(&["container", "inspect", name]),
        }
    }

    pub fn network_exists(self, name: &str) -> Result<bool> {
        match self {
            Engine::Podman => self.exists(&["network", "exists", name]),
            Engine::Docker => self.exists(&["network", "inspect", name]),
        }
    }

    /// Distinguishes "absent" from "the engine failed", so a broken engine never reads as
    /// "nothing to remove". podman's `exists` exits 1 for absent; docker's `inspect` says
    /// "No such ...".
    fn exists(self, args: &[&str]) -> Result<bool> {
        let mut cmd = self.cmd();
        cmd.args(args);
        let out = cmd
            .output()
            .with_context(|| format!("cannot run `{}`", describe(&cmd)))?;
        let stderr = String::from_utf8_lossy(&out.stderr);
        match (self, out.status.code()) {
            (_, Some(0)) => Ok(true),
            (Engine::Podman, Some(1)) => Ok(false),
            (Engine::Docker, Some(_)) if stderr.contains("No such") => Ok(false),
            _ => Err(failure(&cmd, &out.status.to_string(), &stderr)),
        }
    }
}

/// Full path of an executable found on PATH.
pub fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    p.metadata()
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// The command line as a person would type it (for error messages).
pub fn describe(cmd: &Command) -> String {
    let mut parts = vec![cmd.get_program().to_string_lossy().into_owned()];
    for a in cmd.get_args() {
        let a = a.to_string_lossy();
        if a.is_empty() || a.contains(|c: char| c.is_whitespace() || "'\"$`\\".contains(c)) {
            parts.push(format!("'{}'", a.replace('\'', r"'\''")));
        } else {
            parts.push(a.into_owned());
        }
    }
    parts.join(" ")
}

fn failure(cmd: &Command, status: &str, stderr: &str) -> anyhow::Error {
    // The end is where the cause is (debootstrap and builds print hundreds of lines first).
    const KEEP: usize = 40;
    let lines: Vec<&str> = stderr.trim().lines().collect();
    let stderr = if lines.len() > KEEP {
        format!("...\n{}", lines[lines.len() - KEEP..].join("\n"))
    } else {
        lines.join("\n")
    };
    if stderr.is_empty() {
        anyhow!("`{}` failed ({status}) with no stderr", describe(cmd))
    } else {
        anyhow!("`{}` failed ({status}): {stderr}", describe(cmd))
    }
}

/// The stdout of a finished command, or its failure with stderr.
fn stdout_of(cmd: &Command, out: std::process::Output) -> Result<String> {
    if !out.status.success() {
        return Err(failure(
            cmd,
            &out.status.to_string(),
            &String::from_utf8_lossy(&out.stderr),
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Runs to completion; returns stdout. Failure = the command line plus its stderr.
pub fn run(cmd: &mut Command) -> Result<String> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("cannot run `{}`", describe(cmd)))?;
    stdout_of(cmd, out)
}

/// Like [`run`], with `input` on stdin.
pub fn run_with_input(cmd: &mut Command, input: &[u8]) -> Result<String> {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot run `{}`", describe(cmd)))?;
    // Written then dropped so the command sees end of input; inputs here are small.
    child
        .stdin
        .take()
        .expect("stdin is piped")
        .write_all(input)
        .with_context(|| format!("writing stdin of `{}`", describe(cmd)))?;
    let out = child
        .wait_with_output()
        .with_context(|| format!("waiting for `{}`", describe(cmd)))?;
    stdout_of(cmd, out)
}

/// Runs with inherited stdout/stderr so long jobs (debootstrap, build) show progress.
pub fn run_visible(cmd: &mut Command) -> Result<()> {
    let status = cmd
        .stdin(Stdio::null())
        .status()
        .with_context(|| format!("cannot run `{}`", describe(cmd)))?;
    if !status.success() {
        bail!("`{}` failed ({status}); its output is above", describe(cmd));
    }
    Ok(())
}

/// Outcome of [`run_with_timeout`].
pub enum Timed {
    Ok,
    Failed(String),
    Expired,
}

/// Runs with a deadline; the child is killed (by its own handle) when the time is up.
/// Used to probe a registry that may hang instead of refusing.
pub fn run_with_timeout(cmd: &mut Command, limit: Duration) -> Result<Timed> {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot run `{}`", describe(cmd)))?;
    let stderr = drain(&mut child);
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait()? {
            let err = stderr.join().unwrap_or_default();
            return Ok(if status.success() {
                Timed::Ok
            } else {
                Timed::Failed(err)
            });
        }
        if start.elapsed() >= limit {
            let _ = child.kill();
            let _ = child.wait();
            return Ok(Timed::Expired);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Reads a child's stderr on a thread so a chatty child never blocks on a full pipe.
pub fn drain(child: &mut Child) -> std::thread::JoinHandle<String> {
    let mut pipe = child.stderr.take();
    std::thread::spawn(move || {
        let mut s = String::new();
        if let Some(p) = pipe.as_mut() {
            let _ = p.read_to_string(&mut s);
        }
        s
    })
}

/// Hard limits (RLIMIT_NOFILE, RLIMIT_NPROC) of this process; `None` = unlimited. Read from
/// /proc (std has no getrlimit; dash's `ulimit` lacks -u; two numbers do not justify libc).
fn host_limits() -> Result<(Option<u64>, Option<u64>)> {
    let text = std::fs::read_to_string("/proc/self/limits")
        .context("reading /proc/self/limits (the lab needs Linux)")?;
    Ok((
        hard_limit(&text, "Max open files")?,
        hard_limit(&text, "Max processes")?,
    ))
}

/// The "Hard Limit" column of one row of /proc/<pid>/limits.
fn hard_limit(limits: &str, row: &str) -> Result<Option<u64>> {
    let line = limits
        .lines()
        .find(|l| l.starts_with(row))
        .with_context(|| format!("/proc/self/limits has no {row:?} row"))?;
    let hard = line[row.len()..]
        .split_whitespace()
        .nth(1)
        .unwrap_or_default();
    if hard == "unlimited" {
        return Ok(None);
    }
    hard.parse()
        .map(Some)
        .with_context(|| format!("/proc/self/limits: {row}: hard limit {hard:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describe_quotes_only_what_needs_it() {
        let mut cmd = Command::new("podman");
        cmd.args(["exec", "c1", "sh", "-c", "cat /x", "it's", ""]);
        assert_eq!(
            describe(&cmd),
            r#"podman exec c1 sh -c 'cat /x' 'it'\''s' ''"#
        );
    }

    #[test]
    fn run_failure_names_command_and_stderr() {
        let err = run(Command::new("sh").args(["-c", "echo boom >&2; exit 3"])).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("sh -c 'echo boom >&2; exit 3'"), "{msg}");
        assert!(msg.contains("boom"), "{msg}");
    }

    #[test]
    fn run_with_input_feeds_stdin() {
        let out = run_with_input(&mut Command::new("cat"), b"hello").unwrap();
        assert_eq!(out, "hello");
    }

    #[test]
    fn hard_limits_from_proc() {
        let text = "Limit                     Soft Limit           Hard Limit           Units     \n\
Max processes             96365                96365                processes \n\
Max open files            1024                 20000                files     \n\
Max locked memory         unlimited            unlimited            bytes     \n";
        assert_eq!(hard_limit(text, "Max open files").unwrap(), Some(20000));
        assert_eq!(hard_limit(text, "Max processes").unwrap(), Some(96365));
        assert_eq!(hard_limit(text, "Max locked memory").unwrap(), None);
        assert!(hard_limit(text, "Max nothing").is_err());
        let (nofile, _) = host_limits().unwrap();
        assert!(nofile.is_none_or(|n| n > 0));
    }

    #[test]
    fn timeout_kills_a_slow_command() {
        let t =
            run_with_timeout(Command::new("sleep").arg("5"), Duration::from_millis(200)).unwrap();
        assert!(matches!(t, Timed::Expired));
    }
}
