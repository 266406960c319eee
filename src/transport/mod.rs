//! How commands reach a host. SSH (russh) is the only transport for real hosts.

mod known_hosts;
mod ssh;

#[allow(unused_imports)] // used by engine
pub use ssh::{DEFAULT_EXEC_TIMEOUT, Session, UPLOAD_TIMEOUT, UPLOAD_TMP_SUFFIX};

use std::path::PathBuf;
use std::time::Duration;

/// Everything needed to open one SSH connection, resolved from the inventory.
#[derive(Debug, Clone, PartialEq)]
pub struct SshTarget {
    /// Inventory name of the host (used in messages).
    pub host: String,
    pub address: String,
    pub port: u16,
    pub user: String,
    /// Private key file; `None` means ssh-agent via $SSH_AUTH_SOCK.
    pub key: Option<PathBuf>,
    pub known_hosts: PathBuf,
    /// Run commands through `sudo -n` (only meaningful for non-root users).
    pub become_: bool,
    pub connect_timeout: Duration,
    /// Tunnel through this host first (direct-tcpip).
    pub jump: Option<Box<SshTarget>>,
}

/// Host-key policy: strict by default; `AcceptNew` learns unknown hosts. A changed key is
/// always refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostKeyPolicy {
    Strict,
    AcceptNew,
}

/// Result of one remote command.
#[derive(Debug, Clone)]
pub struct Output {
    pub status: u32,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    pub fn ok(&self) -> bool {
        self.status == 0
    }
}

/// Quotes `s` as one POSIX shell word: wrapped in single quotes, with each embedded `'`
/// written as `'\''` (close quote, escaped quote, reopen). Nothing inside single quotes is
/// special to `sh`, so this is safe for any byte string.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        if c == '\'' {
            out.push_str("'\\''");
        } else {
            out.push(c);
        }
    }
    out.push('\'');
    out
}

#[cfg(test)]
mod tests {
    use super::quote;

    #[test]
    fn quote_plain_and_empty() {
        assert_eq!(quote("abc"), "'abc'");
        assert_eq!(quote(""), "''");
    }

    #[test]
    fn quote_embedded_single_quotes() {
        assert_eq!(quote("it's"), r"'it'\''s'");
        assert_eq!(quote("'"), r"''\'''");
    }

    #[test]
    fn quote_keeps_shell_metacharacters_literal() {
        assert_eq!(
            quote("a b;$(rm -rf /)`x`\"\\\n*"),
            "'a b;$(rm -rf /)`x`\"\\\n*'"
        );
    }

    /// The real test: `sh` must hand the quoted word back byte for byte.
    #[test]
    fn quote_round_trips_through_sh() {
        let nasty = "a'b\"c $HOME `id` \\ ' '' \n\t* ? ~ ! # ; & | < > ( ) { }";
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("printf %s {}", quote(nasty)))
            .output()
            .expect("run sh");
        assert_eq!(String::from_utf8(out.stdout).unwrap(), nasty);
    }
}
