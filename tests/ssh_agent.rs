//! ssh-agent authentication (`SshTarget::key == None`) against a throwaway OpenSSH `sshd`.
//!
//! russh finds the agent through $SSH_AUTH_SOCK, and changing the environment of a
//! multi-threaded process is unsound, so this target runs without the libtest harness
//! (`harness = false` in Cargo.toml): `main` sets the variable while the process is still
//! single-threaded and only then starts the tokio runtime. Requires /usr/sbin/sshd
//! (openssh-server) and ssh-agent/ssh-add (openssh-client).

// The crate is a binary, so the module is compiled into this test directly. Cargo sets
// cfg(test) here but, without libtest, drops the `#[test]` fns of the module's own unit-test
// modules (run by tests/ssh_loopback.rs), which leaves their imports unused.
#[allow(dead_code, unused_imports)]
#[path = "../src/transport/mod.rs"]
mod transport;
// The transport quotes shell words with the crate's one quoting helper.
#[path = "../src/quote.rs"]
#[allow(dead_code, unused_imports)]
mod quote;

#[allow(dead_code)]
#[path = "support/sshd.rs"]
mod sshd;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sshd::{Sshd, current_user};
use transport::{HostKeyPolicy, Session, SshTarget};

/// `ssh-agent -D` listening on a socket; killed by PID on drop (also when a check panics).
struct Agent(Child);

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Agent {
    fn start(sock: &Path) -> Agent {
        let child = Command::new("ssh-agent")
            .arg("-D")
            .arg("-a")
            .arg(sock)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .expect("run ssh-agent (openssh-client)");
        let mut agent = Agent(child);
        let deadline = Instant::now() + Duration::from_secs(5);
        while !sock.exists() {
            if let Some(status) = agent.0.try_wait().unwrap() {
                panic!(
                    "ssh-agent exited with {status} before creating {}",
                    sock.display()
                );
            }
            assert!(
                Instant::now() < deadline,
                "ssh-agent did not create {} within 5 s",
                sock.display()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        agent
    }

    fn add(&self, sock: &Path, key: &Path) {
        let out = Command::new("ssh-add")
            .arg("-q")
            .arg(key)
            .env("SSH_AUTH_SOCK", sock)
            .stdin(Stdio::null())
            .output()
            .expect("run ssh-add (openssh-client)");
        assert!(
            out.status.success(),
            "ssh-add {} failed ({}): {}",
            key.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

fn main() {
    // Everything up to the runtime below only spawns child processes; no thread exists yet.
    let sshd = Sshd::start();
    let sock = sshd.path("agent.sock");
    let agent = Agent::start(&sock);
    agent.add(&sock, &sshd.path("client_key"));
    // SAFETY: the process is still single-threaded here (no tokio runtime, no std::thread
    // spawned, no test harness), so no other thread can read the environment concurrently.
    unsafe { std::env::set_var("SSH_AUTH_SOCK", &sock) };

    let target = SshTarget {
        host: "agent".into(),
        address: "127.0.0.1".into(),
        port: sshd.port,
        user: current_user(),
        // No key file: authentication must go through the agent.
        key: None,
        known_hosts: sshd.trusted_known_hosts(),
        become_: false,
        connect_timeout: Duration::from_secs(5),
        accept_new: false,
        jump: None,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("build tokio runtime");
    let stdout = runtime.block_on(async {
        let s = Session::connect(&target, HostKeyPolicy::Strict)
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "ssh_agent: connect with ssh-agent auth: {e:#}\nsshd log:\n{}",
                    sshd.log()
                )
            });
        let out = s
            .exec("echo agent")
            .await
            .unwrap_or_else(|e| panic!("ssh_agent: exec `echo agent`: {e:#}"));
        s.close().await;
        out.stdout
    });
    drop(runtime);
    assert_eq!(
        stdout, "agent\n",
        "ssh_agent: unexpected output of `echo agent`"
    );

    drop(agent);
    drop(sshd);
    println!("ssh_agent: agent authentication ok");
}
