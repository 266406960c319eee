//! End-to-end tests of `transport::Session` against a throwaway OpenSSH `sshd` on 127.0.0.1.
//!
//! Each test starts its own sshd (temp host key, temp client key, free port; harness in
//! tests/support/sshd.rs) and kills it by PID when done. Requires /usr/sbin/sshd
//! (openssh-server, installed by scripts/setup-machine.sh). ssh-agent authentication is
//! tested in tests/ssh_agent.rs, which needs its own process to set $SSH_AUTH_SOCK.

// The crate is a binary, so the module is compiled into this test directly.
#[allow(dead_code)]
#[path = "../src/transport/mod.rs"]
mod transport;
// The transport quotes shell words with the crate's one quoting helper.
#[path = "../src/quote.rs"]
#[allow(dead_code, unused_imports)]
mod quote;

// The service-port dialer: direct, or through a jump host's SSH connection.
#[allow(dead_code)]
#[path = "../src/net.rs"]
mod net;

#[path = "support/sshd.rs"]
mod sshd;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use sshd::{Sshd, free_port, keygen};
use transport::{HostKeyPolicy, Session, quote};

fn sha256(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// Deterministic incompressible bytes (xorshift), so no test data is checked in.
fn pseudo_random(len: usize, mut seed: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        out.extend_from_slice(&seed.to_le_bytes());
    }
    out.truncate(len);
    out
}

#[tokio::test]
async fn strict_unknown_host_fails_with_fingerprint_and_writes_nothing() {
    let sshd = Sshd::start();
    let kh = sshd.path("empty/known_hosts");
    let err = Session::connect(&sshd.target(&kh), HostKeyPolicy::Strict)
        .await
        .unwrap_err();
    let msg = format!("{err:#}");
    eprintln!("strict, unknown host: {msg}");
    assert!(msg.contains("--accept-new-host-keys"), "{msg}");
    assert!(msg.contains("fingerprint SHA256:"), "{msg}");
    assert!(msg.contains("loop1") && msg.contains("127.0.0.1"), "{msg}");
    assert!(!kh.exists(), "strict mode must not write {}", kh.display());
}

#[tokio::test]
async fn accept_new_learns_key_then_strict_connects() {
    let sshd = Sshd::start();
    let kh = sshd.path("new/dir/known_hosts");
    let target = sshd.target(&kh);
    let s = Session::connect(&target, HostKeyPolicy::AcceptNew)
        .await
        .unwrap();
    s.close().await;
    let text = fs::read_to_string(&kh).unwrap();
    assert_eq!(
        text,
        format!("[127.0.0.1]:{} {}\n", sshd.port, sshd.host_key())
    );
    assert_eq!(
        fs::metadata(&kh).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let s = Session::connect(&target, HostKeyPolicy::Strict)
        .await
        .unwrap();
    assert_eq!(s.exec("echo hi").await.unwrap().stdout, "hi\n");
    // Connecting again in accept-new mode must not duplicate the line.
    Session::connect(&target, HostKeyPolicy::AcceptNew)
        .await
        .unwrap();
    assert_eq!(fs::read_to_string(&kh).unwrap().lines().count(), 1);
}

#[tokio::test]
async fn changed_host_key_is_refused_even_with_accept_new() {
    let sshd = Sshd::start();
    keygen(&sshd.path("other_key"));
    let other = fs::read_to_string(sshd.path("other_key.pub")).unwrap();
    let kh = sshd.path("known_hosts");
    let original = format!("# pinned\n[127.0.0.1]:{} {}", sshd.port, other.trim());
    fs::write(&kh, &original).unwrap();
    let err = Session::connect(&sshd.target(&kh), HostKeyPolicy::AcceptNew)
        .await
        .unwrap_err();
    let msg = format!("{err:#}");
    eprintln!("changed key: {msg}");
    assert!(msg.contains("MISMATCH"), "{msg}");
    assert!(msg.contains(&format!("{}:2", kh.display())), "{msg}");
    assert_eq!(fs::read_to_string(&kh).unwrap(), original);
}

#[tokio::test]
async fn exec_returns_stdout_stderr_and_status() {
    let sshd = Sshd::start();
    let s = sshd.session().await;
    let out = s.exec("echo out; echo err >&2; exit 3").await.unwrap();
    assert_eq!(
        (out.status, out.stdout.as_str(), out.stderr.as_str()),
        (3, "out\n", "err\n")
    );
    assert!(!out.ok());

    let err = s.exec_ok("echo boom >&2; false").await.unwrap_err();
    let msg = format!("{err:#}");
    eprintln!("failed command: {msg}");
    assert!(msg.contains("loop1") && msg.contains("127.0.0.1"), "{msg}");
    assert!(
        msg.contains("`echo boom >&2; false`") && msg.contains("boom"),
        "{msg}"
    );

    let err = s.exec("kill -KILL $$").await.unwrap_err();
    assert!(format!("{err:#}").contains("signal"), "{err:#}");

    let err = s
        .exec_timeout("sleep 5", Duration::from_millis(300))
        .await
        .unwrap_err();
    assert!(format!("{err:#}").contains("timed out"), "{err:#}");
    // The connection is still usable after a timeout.
    assert_eq!(s.exec("echo still").await.unwrap().stdout, "still\n");
}

#[tokio::test]
async fn many_execs_share_one_connection() {
    let sshd = Sshd::start();
    let s = sshd.session().await;
    let started = Instant::now();
    for i in 0..20 {
        let out = s.exec(&format!("echo {i}")).await.unwrap();
        assert_eq!(out.stdout, format!("{i}\n"));
    }
    let per_exec = started.elapsed() / 20;
    // 16 concurrent commands exceed sshd's MaxSessions 10; the semaphore must queue them.
    // Each command marks itself running in a shared dir and reports how many are running.
    let dir = quote(sshd.path("running").to_str().unwrap());
    let started = Instant::now();
    let runs = (0..16).map(|i| {
        let s = s.clone();
        let cmd = format!(
            "mkdir -p {dir} && touch {dir}/{i} && sleep 0.5 && ls {dir} | wc -l && rm {dir}/{i}"
        );
        tokio::spawn(async move { s.exec_ok(&cmd).await })
    });
    let mut peak = 0;
    for run in futures::future::join_all(runs).await {
        let running: usize = run.unwrap().unwrap().stdout.trim().parse().unwrap();
        peak = peak.max(running);
    }
    let concurrent = started.elapsed();
    eprintln!(
        "exec round trip: {per_exec:?} each (20 sequential); \
         16 x sleep 0.5 concurrent: {concurrent:?}, peak {peak} channels"
    );
    assert!(
        (2..=8).contains(&peak),
        "peak concurrency {peak}, want 2..=8"
    );
}

#[tokio::test]
async fn exec_with_input_round_trips_5mb() {
    let sshd = Sshd::start();
    let s = sshd.session().await;
    // Binary data: the remote checksum proves every byte arrived.
    let data = pseudo_random(5 << 20, 42);
    let out = s.exec_with_input("sha256sum", &data).await.unwrap();
    assert_eq!(out.stdout.split_whitespace().next().unwrap(), sha256(&data));
    // Text data echoed back by `cat`: input and output flow at the same time.
    let text = hex::encode(pseudo_random(5 << 19, 7)).into_bytes();
    let started = Instant::now();
    let out = s.exec_with_input("cat", &text).await.unwrap();
    eprintln!("5 MiB through cat and back: {:?}", started.elapsed());
    assert_eq!(out.stdout.len(), text.len());
    assert_eq!(sha256(out.stdout.as_bytes()), sha256(&text));
    // A command that exits without reading its input still reports its status.
    let out = s.exec_with_input("exit 4", &data).await.unwrap();
    assert_eq!(out.status, 4);
}

#[tokio::test]
async fn upload_sends_once_and_installs_atomically() {
    let sshd = Sshd::start();
    let s = sshd.session().await;
    let local = sshd.path("payload.bin");
    fs::write(&local, pseudo_random(3 << 20, 1)).unwrap();
    // loopback: the "remote" file system is ours, so results can be checked directly.
    let remote = sshd.path("remote/deep/dir/payload.bin");
    let remote_str = remote.to_str().unwrap();

    assert!(
        s.upload(&local, remote_str, 0o640).await.unwrap(),
        "first upload sends"
    );
    assert_eq!(fs::read(&remote).unwrap(), fs::read(&local).unwrap());
    assert_eq!(
        fs::metadata(&remote).unwrap().permissions().mode() & 0o7777,
        0o640
    );
    assert!(
        !s.upload(&local, remote_str, 0o640).await.unwrap(),
        "unchanged upload skipped"
    );

    // Same content, other mode: fixed without a transfer.
    assert!(s.upload(&local, remote_str, 0o600).await.unwrap());
    assert_eq!(
        fs::metadata(&remote).unwrap().permissions().mode() & 0o7777,
        0o600
    );

    fs::write(&local, b"new content\n").unwrap();
    assert!(s.upload(&local, remote_str, 0o600).await.unwrap());
    assert_eq!(fs::read(&remote).unwrap(), b"new content\n");

    let leftovers: Vec<_> = fs::read_dir(remote.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(leftovers, vec!["payload.bin".to_string()]);

    let err = s
        .upload(&local, "/proc/no/such/dir/x", 0o644)
        .await
        .unwrap_err();
    let msg = format!("{err:#}");
    assert!(
        msg.contains("loop1") && msg.contains("/proc/no/such/dir/x"),
        "{msg}"
    );
}

#[tokio::test]
async fn upload_64mb_streams() {
    let sshd = Sshd::start();
    let s = sshd.session().await;
    let local = sshd.path("big.bin");
    let data = pseudo_random(64 << 20, 9);
    fs::write(&local, &data).unwrap();
    let remote = sshd.path("big-remote.bin");
    let started = Instant::now();
    assert!(
        s.upload(&local, remote.to_str().unwrap(), 0o644)
            .await
            .unwrap()
    );
    let took = started.elapsed();
    eprintln!("64 MiB upload (hash, send, verify, rename): {took:?}");
    assert_eq!(sha256(&fs::read(&remote).unwrap()), sha256(&data));
    let started = Instant::now();
    assert!(
        !s.upload(&local, remote.to_str().unwrap(), 0o644)
            .await
            .unwrap()
    );
    eprintln!(
        "64 MiB unchanged upload (hash compare only): {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn jump_host_tunnels_to_target() {
    let sshd = Sshd::start();
    let kh = sshd.trusted_known_hosts();
    // The jump host and the target are the same sshd: direct-tcpip to its own port.
    let mut target = sshd.target(&kh);
    target.host = "behind-bastion".into();
    let mut jump = sshd.target(&kh);
    jump.host = "bastion".into();
    target.jump = Some(Box::new(jump));
    let s = Session::connect(&target, HostKeyPolicy::Strict)
        .await
        .unwrap();
    let out = s.exec("echo via jump").await.unwrap();
    assert_eq!(out.stdout, "via jump\n");
    s.close().await;

    // A broken jump host is named in the error.
    let mut bad = target.clone();
    let mut jump = sshd.target(&kh);
    jump.host = "bastion".into();
    jump.port = free_port();
    bad.jump = Some(Box::new(jump));
    let err = Session::connect(&bad, HostKeyPolicy::Strict)
        .await
        .unwrap_err();
    assert!(format!("{err:#}").contains("bastion"), "{err:#}");
}

/// Service ports behind a bastion: each dial is a direct-tcpip channel on the bastion's one
/// connection; a refused port and a broken bastion are named, and never fall back to direct.
#[tokio::test]
async fn service_ports_tunnel_through_the_jump_host() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    // An echo server stands in for a broker's port.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let echo = tokio::spawn(async move {
        while let Ok((mut c, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (mut r, mut w) = c.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });
    let sshd = Sshd::start();
    let kh = sshd.trusted_known_hosts();
    let mut jump = sshd.target(&kh);
    jump.host = "bastion".into();
    let limit = Duration::from_secs(5);
    let d = net::Dialer::new(
        vec![("127.0.0.1".into(), jump.clone())],
        HostKeyPolicy::Strict,
    );
    let addr = format!("127.0.0.1:{port}");
    for i in 0..3 {
        let mut s = d.dial(&addr, limit).await.unwrap();
        let msg = format!("probe {i}");
        s.write_all(msg.as_bytes()).await.unwrap();
        let mut back = vec![0; msg.len()];
        s.read_exact(&mut back).await.unwrap();
        assert_eq!(back, msg.as_bytes());
    }

    // ZooKeeper's four-letter words: the server answers and closes; EOF must come through.
    let zk = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let zk_addr = zk.local_addr().unwrap().to_string();
    let server = tokio::spawn(async move {
        let (mut c, _) = zk.accept().await.unwrap();
        let mut cmd = [0; 4];
        c.read_exact(&mut cmd).await.unwrap();
        c.write_all(b"Mode: leader\n").await.unwrap();
        cmd
    });
    let mut s = d.dial(&zk_addr, limit).await.unwrap();
    s.write_all(b"srvr").await.unwrap();
    let mut reply = String::new();
    tokio::time::timeout(limit, s.read_to_string(&mut reply))
        .await
        .expect("the server's close ends the reply")
        .unwrap();
    assert_eq!(reply, "Mode: leader\n");
    assert_eq!(&server.await.unwrap(), b"srvr");

    let closed = free_port();
    let err = d
        .dial(&format!("127.0.0.1:{closed}"), limit)
        .await
        .err()
        .expect("a closed port through the tunnel");
    let msg = format!("{err:#}");
    eprintln!("closed port through the tunnel: {msg}");
    assert!(
        msg.contains(&format!("127.0.0.1:{closed}")) && msg.contains("jump host bastion"),
        "{msg}"
    );

    // The echo port is up, but its bastion is not: the dial fails, naming the bastion.
    let mut down = jump;
    down.port = free_port();
    let d = net::Dialer::new(vec![("127.0.0.1".into(), down)], HostKeyPolicy::Strict);
    let err = d
        .dial(&addr, limit)
        .await
        .err()
        .expect("no bastion, no tunnel");
    let msg = format!("{err:#}");
    assert!(msg.contains("jump host bastion"), "{msg}");
    echo.abort();
}

/// A host that accepts TCP but never speaks SSH (a hung sshd): connect gives up within
/// connect_timeout, handshake included, and names the host.
#[tokio::test]
async fn a_host_that_accepts_but_never_answers_costs_connect_timeout() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    // Accepts and holds each connection, silent.
    let hold = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((c, _)) = listener.accept().await {
            held.push(c);
        }
    });
    let sshd = Sshd::start();
    let mut target = sshd.target(&sshd.trusted_known_hosts());
    target.port = port;
    target.connect_timeout = Duration::from_secs(2);
    let started = Instant::now();
    let Err(err) = Session::connect(&target, HostKeyPolicy::Strict).await else {
        panic!("a silent host is not a session");
    };
    let took = started.elapsed();
    hold.abort();
    let msg = format!("{err:#}");
    assert!(
        msg.contains("loop1") && msg.contains("no SSH session within 2s"),
        "{msg}"
    );
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(5),
        "{took:?}"
    );
}
