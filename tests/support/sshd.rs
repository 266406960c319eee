//! Shared harness for the loopback SSH tests: a throwaway OpenSSH `sshd` on 127.0.0.1 with a
//! temp host key, a temp client key and a free port, killed by PID when dropped.
//!
//! Included with `#[path = "support/sshd.rs"] mod sshd;` by `tests/ssh_loopback.rs` and
//! `tests/ssh_agent.rs`; both declare `mod transport` at their crate root, which this uses.
//! Requires /usr/sbin/sshd (openssh-server, installed by scripts/setup-machine.sh).

use std::fs;
use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::transport::{HostKeyPolicy, Session, SshTarget};

pub const SSHD: &str = "/usr/sbin/sshd";

/// A running sshd plus its temp dir; killed (by PID) and cleaned up on drop.
pub struct Sshd {
    child: Child,
    dir: TempDir,
    pub port: u16,
}

impl Drop for Sshd {
    fn drop(&mut self) {
        stop(&mut self.child);
    }
}

/// sshd -D forks one child per connection into its own process group (we made the listener a
/// group leader), so signal the group, then make sure the leader is gone.
fn stop(child: &mut Child) {
    let _ = Command::new("kill")
        .args(["-TERM", "--", &format!("-{}", child.id())])
        .stderr(Stdio::null())
        .status();
    let _ = child.kill();
    let _ = child.wait();
}

impl Sshd {
    pub fn start() -> Sshd {
        assert!(
            Path::new(SSHD).exists(),
            "{SSHD} not found: install openssh-server by running scripts/setup-machine.sh"
        );
        // sshd refuses to start without its privilege-separation dir (absent in containers).
        if !Path::new("/run/sshd").exists() {
            let _ = fs::create_dir_all("/run/sshd");
        }
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        keygen(&d.join("host_ed25519"));
        keygen(&d.join("client_key"));
        fs::copy(d.join("client_key.pub"), d.join("authorized_keys")).unwrap();
        // The port is free when picked but may be taken before sshd binds it (other tests pick
        // ports too), so a start whose sshd exits is retried on a new port.
        let mut last = String::new();
        for _ in 0..5 {
            let port = free_port();
            let config = d.join("sshd_config");
            fs::write(&config, sshd_config(d, port)).unwrap();
            let log = fs::File::create(d.join("sshd.log")).unwrap();
            let mut child = std::os::unix::process::CommandExt::process_group(
                Command::new(SSHD)
                    .arg("-D")
                    .arg("-e")
                    .arg("-f")
                    .arg(&config),
                0,
            )
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn sshd");
            match wait_ready(&mut child, port, &d.join("sshd.log")) {
                Ok(()) => return Sshd { child, dir, port },
                Err(why) => {
                    stop(&mut child);
                    last = why;
                }
            }
        }
        panic!("sshd did not start on any of 5 ports; the last attempt: {last}");
    }

    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("sshd.log")).unwrap_or_default()
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The server's host key line body (`ssh-ed25519 AAAA...`).
    pub fn host_key(&self) -> String {
        let text = fs::read_to_string(self.path("host_ed25519.pub")).unwrap();
        let mut words = text.split_whitespace();
        format!("{} {}", words.next().unwrap(), words.next().unwrap())
    }

    /// A target for this server that authenticates with the temp client key file.
    pub fn target(&self, known_hosts: &Path) -> SshTarget {
        SshTarget {
            host: "loop1".into(),
            address: "127.0.0.1".into(),
            port: self.port,
            user: current_user(),
            key: Some(self.path("client_key")),
            known_hosts: known_hosts.to_path_buf(),
            // Running as root in CI, so no sudo wrapping is exercised here.
            become_: false,
            connect_timeout: Duration::from_secs(5),
            accept_new: false,
            jump: None,
        }
    }

    /// A known_hosts file that already trusts this server.
    pub fn trusted_known_hosts(&self) -> PathBuf {
        let file = self.path("known_hosts");
        fs::write(
            &file,
            format!("[127.0.0.1]:{} {}\n", self.port, self.host_key()),
        )
        .unwrap();
        file
    }

    /// A connected session (key file auth, strict host key check).
    pub async fn session(&self) -> Session {
        let kh = self.trusted_known_hosts();
        Session::connect(&self.target(&kh), HostKeyPolicy::Strict)
            .await
            .unwrap_or_else(|e| panic!("connect: {e:#}\nsshd log:\n{}", self.log()))
    }
}

/// Waits for sshd's `SSH-` banner: a TCP connect alone can succeed with no listener on
/// loopback (a socket that picked the port as its own source connects to itself).
fn wait_ready(child: &mut Child, port: u16, log: &Path) -> Result<(), String> {
    let read_log = || fs::read_to_string(log).unwrap_or_default();
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait().unwrap() {
            return Err(format!("sshd exited with {status}:\n{}", read_log()));
        }
        if let Ok(mut conn) = TcpStream::connect(("127.0.0.1", port)) {
            let _ = conn.set_read_timeout(Some(Duration::from_secs(2)));
            let mut banner = [0u8; 4];
            if conn.read_exact(&mut banner).is_ok() && &banner == b"SSH-" {
                return Ok(());
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Err(format!(
        "sshd did not answer on {port} within 10 s:\n{}",
        read_log()
    ))
}

fn sshd_config(dir: &Path, port: u16) -> String {
    let d = dir.display();
    format!(
        "Port {port}\nListenAddress 127.0.0.1\nHostKey {d}/host_ed25519\nPidFile {d}/sshd.pid\n\
         AuthorizedKeysFile {d}/authorized_keys\nStrictModes no\nUsePAM no\n\
         PasswordAuthentication no\nKbdInteractiveAuthentication no\nPubkeyAuthentication yes\n\
         PermitRootLogin prohibit-password\nAllowTcpForwarding yes\nMaxSessions 10\n\
         LogLevel ERROR\n"
    )
}

/// Writes a passphrase-less ed25519 key pair to `path` and `path.pub`.
pub fn keygen(path: &Path) {
    let status = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "", "-f"])
        .arg(path)
        .status()
        .expect("run ssh-keygen (openssh-client)");
    assert!(status.success(), "ssh-keygen failed for {}", path.display());
}

/// Binding port 0 lets the kernel pick a free port; the listener is dropped before sshd binds.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn current_user() -> String {
    let out = Command::new("id").arg("-un").output().unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}
