//! What the operator's OpenSSH client config (`~/.ssh/config`) says of a host, for the
//! settings the inventory leaves unsaid (the inventory always wins). Parsed by the
//! `ssh2-config` crate; a host is looked up by its inventory name (what `ssh NAME` would use),
//! then by its address.

use ssh2_config::{ParseRule, SshConfig};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The settings clusterctl honours, as the config gives them for one host.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FromConfig {
    pub host_name: Option<String>,
    pub user: Option<String>,
    pub port: Option<u16>,
    pub identity_file: Option<PathBuf>,
    /// The first hop of ProxyJump, as written (`[user@]host[:port]`); `none` is no jump.
    pub proxy_jump: Option<String>,
    pub known_hosts: Option<PathBuf>,
    /// StrictHostKeyChecking, lowercased.
    pub strict_host_key_checking: Option<String>,
    pub connect_timeout: Option<Duration>,
}

/// `$CLUSTERCTL_SSH_CONFIG` if set (empty: none), else `~/.ssh/config`.
pub fn default_path() -> Option<PathBuf> {
    match std::env::var_os("CLUSTERCTL_SSH_CONFIG") {
        Some(p) if p.is_empty() => None,
        Some(p) => Some(PathBuf::from(p)),
        None => std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".ssh/config")),
    }
}

/// The parsed file; `Ok(None)` when there is none. Unknown keywords are allowed, as
/// OpenSSH versions differ in what they know.
pub fn load(path: &Path) -> Result<Option<SshConfig>, String> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("reading {}: {e}", path.display())),
    };
    parse(&text)
        .map(Some)
        .map_err(|e| format!("{}: {e}", path.display()))
}

pub fn parse(text: &str) -> Result<SshConfig, String> {
    let mut reader = std::io::BufReader::new(text.as_bytes());
    SshConfig::default()
        .parse(
            &mut reader,
            ParseRule::ALLOW_UNKNOWN_FIELDS | ParseRule::ALLOW_UNSUPPORTED_FIELDS,
        )
        .map_err(|e| e.to_string())
}

/// What the config says for `name` (then `address`, for what `name` leaves unsaid).
pub fn lookup(cfg: &SshConfig, name: &str, address: &str) -> FromConfig {
    let mut p = cfg.query(name);
    if address != name {
        p.overwrite_if_none(&cfg.query(address));
    }
    let first = |key: &str| -> Option<String> {
        // Keywords clusterctl reads that the crate keeps as raw arguments.
        [&p.unsupported_fields, &p.ignored_fields]
            .iter()
            .find_map(|m| {
                m.iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(key))
                    .and_then(|(_, v)| v.first().cloned())
            })
    };
    FromConfig {
        host_name: p.host_name.clone(),
        user: p.user.clone(),
        port: p.port,
        identity_file: p
            .identity_file
            .as_ref()
            .and_then(|files| files.first().cloned()),
        proxy_jump: p.proxy_jump.as_ref().and_then(|hops| hops.first().cloned()),
        known_hosts: first("userknownhostsfile").map(|f| expand_home(&f)),
        strict_host_key_checking: first("stricthostkeychecking").map(|v| v.to_ascii_lowercase()),
        connect_timeout: p.connect_timeout,
    }
}

fn expand_home(p: &str) -> PathBuf {
    match (p.strip_prefix("~/"), std::env::var_os("HOME")) {
        (Some(rest), Some(home)) => PathBuf::from(home).join(rest),
        _ => PathBuf::from(p),
    }
}

/// `[user@]host[:port]` of a ProxyJump hop.
pub fn split_hop(hop: &str) -> (Option<String>, String, Option<u16>) {
    let (user, rest) = match hop.rsplit_once('@') {
        Some((u, r)) => (Some(u.to_string()), r),
        None => (None, hop),
    };
    match rest.rsplit_once(':') {
        Some((h, p)) if p.parse::<u16>().is_ok() => (user, h.to_string(), p.parse().ok()),
        _ => (user, rest.to_string(), None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = "\
Host kafka1
    HostName 10.1.0.11
    User deploy
    Port 2222
    IdentityFile /keys/kafka
    ProxyJump ops@bastion.example:2200

Host kafka*
    User fallback
    ConnectTimeout 4
    UserKnownHostsFile /etc/ssh/cluster_known_hosts
    StrictHostKeyChecking accept-new

Host 10.2.*
    User byaddress

Host *
    Port 22
";

    #[test]
    fn an_alias_then_patterns_first_match_wins() {
        let cfg = parse(CONFIG).unwrap();
        let k1 = lookup(&cfg, "kafka1", "10.0.0.11");
        assert_eq!(
            k1,
            FromConfig {
                host_name: Some("10.1.0.11".into()),
                user: Some("deploy".into()),
                port: Some(2222),
                identity_file: Some("/keys/kafka".into()),
                proxy_jump: Some("ops@bastion.example:2200".into()),
                known_hosts: Some("/etc/ssh/cluster_known_hosts".into()),
                strict_host_key_checking: Some("accept-new".into()),
                connect_timeout: Some(Duration::from_secs(4)),
            }
        );
        // A pattern match only: the later block's user, `Host *`'s port.
        let k2 = lookup(&cfg, "kafka2", "10.0.0.12");
        assert_eq!(k2.user.as_deref(), Some("fallback"));
        assert_eq!(k2.port, Some(22));
        assert_eq!(k2.host_name, None);
        // Nothing for the name: the address's block answers.
        let z = lookup(&cfg, "zk1", "10.2.0.5");
        assert_eq!(z.user.as_deref(), Some("byaddress"));
        let none = lookup(&cfg, "other", "192.168.1.1");
        assert_eq!(none.user, None);
        assert_eq!(none.port, Some(22));
    }

    #[test]
    fn hops() {
        assert_eq!(
            split_hop("ops@bastion:2200"),
            (Some("ops".into()), "bastion".into(), Some(2200))
        );
        assert_eq!(split_hop("bastion"), (None, "bastion".into(), None));
    }

    #[test]
    fn a_missing_file_is_no_config() {
        assert!(
            load(Path::new("/nonexistent/ssh/config"))
                .unwrap()
                .is_none()
        );
    }
}
