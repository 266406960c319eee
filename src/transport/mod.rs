//! How commands reach a host. SSH (russh) is the only transport for real hosts.

mod known_hosts;
mod ssh;

#[allow(unused_imports)] // used by engine
pub use ssh::{DEFAULT_EXEC_TIMEOUT, Session, UPLOAD_TIMEOUT, UPLOAD_TMP_SUFFIX};

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

static VERBOSE: AtomicBool = AtomicBool::new(false);

/// `-v`: print each remote command on stderr as it starts. Commands never carry secrets
/// (those travel on stdin), so printing them reveals none.
pub fn set_verbose(on: bool) {
    VERBOSE.store(on, Ordering::Relaxed);
}

pub fn verbose() -> bool {
    VERBOSE.load(Ordering::Relaxed)
}

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
    /// Learn this host's key if known_hosts has none (StrictHostKeyChecking accept-new in
    /// ~/.ssh/config), as --accept-new-host-keys does for every host.
    pub accept_new: bool,
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

/// One POSIX shell word for `s` (see `crate::quote`).
pub use crate::quote::sh as quote;
