//! The state dir beside an inventory (`<stem>.lab/`): what `lab up` created, so `lab down`
//! removes exactly that and nothing else.

use super::Init;
use super::engine::Engine;
use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

pub const STATE_FILE: &str = "state.json";
pub const KEY_FILE: &str = "id_ed25519";
pub const PUB_KEY_FILE: &str = "id_ed25519.pub";
pub const KNOWN_HOSTS_FILE: &str = "known_hosts";
/// Every file `lab up` may write into the state dir; `down` deletes only these.
pub const FILES: [&str; 4] = [KEY_FILE, PUB_KEY_FILE, KNOWN_HOSTS_FILE, STATE_FILE];

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct State {
    pub runtime: Engine,
    pub prefix: String,
    pub network: String,
    /// Recorded before any of them is created, so `down` can undo a half-finished `up`.
    pub containers: Vec<String>,
    pub image: String,
    /// What the nodes run as PID 1; absent (SysV) in records of labs made before systemd nodes.
    #[serde(default, skip_serializing_if = "is_sysv")]
    pub init: Init,
    /// Filled once the nodes answer; informational (tests may `exec` into a node by name).
    #[serde(default)]
    pub hosts: Vec<HostState>,
    /// `lab up --bastion` only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bastion: Option<BastionState>,
}

/// What `--bastion` adds: a network the bastion shares with this machine, and a route that
/// makes the nodes' internal network unreachable from here.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct BastionState {
    pub edge_network: String,
    /// `ip route add unreachable SUBNET`: without a route to it, this machine would send the
    /// internal network's traffic to its default gateway; recorded before it is added.
    #[serde(default)]
    pub blocked_subnet: Option<String>,
}

fn is_sysv(init: &Init) -> bool {
    *init == Init::Sysv
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct HostState {
    pub name: String,
    pub container: String,
    pub address: String,
}

/// Absolute inventory path (relative paths resolve against the current directory, so the
/// paths written into the inventory work from anywhere).
pub fn absolute(inventory: &Path) -> Result<PathBuf> {
    std::path::absolute(inventory)
        .with_context(|| format!("cannot resolve {}", inventory.display()))
}

/// `dir/x.yaml` -> `dir/x.lab/`.
pub fn state_dir(inventory: &Path) -> Result<PathBuf> {
    let Some(stem) = inventory.file_stem().filter(|s| !s.is_empty()) else {
        bail!("{} has no file name", inventory.display());
    };
    let mut name = stem.to_os_string();
    name.push(".lab");
    Ok(inventory.with_file_name(name))
}

impl State {
    pub fn load(dir: &Path) -> Result<Option<State>> {
        let path = dir.join(STATE_FILE);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        serde_json::from_str(&text)
            .map(Some)
            .with_context(|| format!("{} is not a lab state file", path.display()))
    }

    /// Written through a temporary file and a rename, so a crash never leaves half a record.
    pub fn save(&self, dir: &Path) -> Result<()> {
        let text = serde_json::to_string_pretty(self)? + "\n";
        write_atomic(&dir.join(STATE_FILE), text.as_bytes())
    }
}

pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut tmp = path.as_os_str().to_os_string();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    std::fs::write(&tmp, bytes).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path)
        .with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))
}

/// `dir/name`, a random password (mode 0600, in a 0700 dir), made once and then kept.
pub fn ensure_secret(dir: &Path, name: &str) -> Result<()> {
    crate::pki::private_dir(dir)?;
    let path = dir.join(name);
    if path.exists() {
        return Ok(());
    }
    let mut raw = [0u8; 18];
    aws_lc_rs::rand::fill(&mut raw).map_err(|_| anyhow::anyhow!("no random bytes"))?;
    use base64::Engine;
    let pw = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw);
    crate::pki::write_atomic(&path, pw.as_bytes(), 0o600)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lab_secret_is_made_once_and_private() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        let dir = d.path().join("secrets");
        ensure_secret(&dir, "app.password").unwrap();
        let p = dir.join("app.password");
        let first = std::fs::read_to_string(&p).unwrap();
        assert_eq!(first.len(), 24);
        assert_eq!(
            std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(
            std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777,
            0o700
        );
        ensure_secret(&dir, "app.password").unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), first);
        ensure_secret(&dir, "other.password").unwrap();
        assert_ne!(
            std::fs::read_to_string(dir.join("other.password")).unwrap(),
            first
        );
    }

    #[test]
    fn state_dir_sits_beside_the_inventory() {
        assert_eq!(
            state_dir(Path::new("/a/b/three.yaml")).unwrap(),
            Path::new("/a/b/three.lab")
        );
        assert_eq!(
            state_dir(Path::new("/a/inv")).unwrap(),
            Path::new("/a/inv.lab")
        );
        assert!(state_dir(Path::new("/")).is_err());
    }

    #[test]
    fn state_round_trips_and_absent_is_none() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(State::load(dir.path()).unwrap(), None);
        let s = State {
            runtime: Engine::Podman,
            prefix: "clusterctl-x-000001".into(),
            network: "clusterctl-x-000001-net".into(),
            containers: vec!["clusterctl-x-000001-n1".into()],
            image: "localhost/clusterctl-node:t".into(),
            init: Init::Sysv,
            hosts: vec![],
            bastion: Some(BastionState {
                edge_network: "clusterctl-x-000001-edge".into(),
                blocked_subnet: Some("10.89.3.0/24".into()),
            }),
        };
        s.save(dir.path()).unwrap();
        let text = std::fs::read_to_string(dir.path().join(STATE_FILE)).unwrap();
        assert!(text.contains("\"runtime\": \"podman\""), "{text}");
        assert!(
            !text.contains("init"),
            "SysV records stay as they were: {text}"
        );
        assert_eq!(State::load(dir.path()).unwrap(), Some(s.clone()));
        let s = State {
            init: Init::Systemd,
            ..s
        };
        s.save(dir.path()).unwrap();
        let text = std::fs::read_to_string(dir.path().join(STATE_FILE)).unwrap();
        assert!(text.contains("\"init\": \"systemd\""), "{text}");
        assert_eq!(State::load(dir.path()).unwrap(), Some(s));
    }
}
