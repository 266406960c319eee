//! One russh connection per host, shared by every command and upload to that host.

use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use russh::client::{self, Handle};
use russh::keys::{Algorithm, PrivateKeyWithHashAlg, PublicKey, PublicKeyOrCertificate};
use russh::{ChannelMsg, ChannelReadHalf, ChannelWriteHalf, Disconnect, Preferred};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;
use tokio::time::timeout;

use super::{HostKeyPolicy, Output, SshTarget, known_hosts, quote};

/// Default limit for one remote command; package installs can be slow.
pub const DEFAULT_EXEC_TIMEOUT: Duration = Duration::from_secs(10 * 60);
/// Limit for one upload (100 MB tarballs over slow links).
pub const UPLOAD_TIMEOUT: Duration = Duration::from_secs(30 * 60);
/// Keeps NAT/firewall state alive during long quiet installs and detects dead peers
/// (3 unanswered keepalives, russh's `keepalive_max` default, drop the connection).
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(15);
/// sshd's default MaxSessions is 10 channels per connection; stay below it.
const MAX_CHANNELS: usize = 8;
/// Suffix of the temp file an upload writes before renaming it into place.
pub const UPLOAD_TMP_SUFFIX: &str = ".clusterctl-tmp";

/// A live, authenticated SSH connection. Clones share the connection.
#[derive(Clone)]
pub struct Session {
    inner: Arc<Inner>,
}

struct Inner {
    target: SshTarget,
    handle: Handle<Client>,
    channels: Semaphore,
    /// Keeps the jump host's connection (carrying our tunnel) alive as long as we are.
    _jump: Option<Session>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Session({})", self.label())
    }
}

impl Session {
    /// Connects and authenticates; see the module docs of `transport` for the policy.
    /// TCP connect, key exchange and authentication together within `connect_timeout` (a
    /// host that accepts TCP but never speaks SSH costs no more than one that is down); with a
    /// jump host, its own connection gets a budget of its own on top.
    pub async fn connect(target: &SshTarget, policy: HostKeyPolicy) -> Result<Session> {
        let budget = target.connect_timeout * if target.jump.is_some() { 2 } else { 1 };
        // Boxed because a jump host is connected through this same function.
        timeout(budget, Box::pin(connect_inner(target, policy)))
            .await
            .map_err(|_| {
                anyhow!(
                    "ssh {}: no SSH session within {budget:?} (TCP connect, handshake and \
                     authentication; ssh.connect_timeout_secs sets it)",
                    label(target)
                )
            })?
    }

    /// Runs `cmd` (through `sudo -n` when `become_` applies) with the default timeout.
    /// A non-zero exit status is *not* an error; see [`Session::exec_ok`].
    pub async fn exec(&self, cmd: &str) -> Result<Output> {
        self.exec_timeout(cmd, DEFAULT_EXEC_TIMEOUT).await
    }

    pub async fn exec_timeout(&self, cmd: &str, limit: Duration) -> Result<Output> {
        self.run(cmd, tokio::io::empty(), limit).await
    }

    /// Like [`Session::exec`], but a non-zero exit status becomes an error naming the command
    /// and its stderr.
    pub async fn exec_ok(&self, cmd: &str) -> Result<Output> {
        let out = self.exec(cmd).await?;
        self.check_status(cmd, out)
    }

    /// [`Session::exec_ok`] with an explicit time limit (package installs, unpacking).
    pub async fn exec_ok_timeout(&self, cmd: &str, limit: Duration) -> Result<Output> {
        let out = self.exec_timeout(cmd, limit).await?;
        self.check_status(cmd, out)
    }

    /// [`Session::exec_with_input`], failing on a non-zero exit status.
    pub async fn exec_with_input_ok(&self, cmd: &str, input: &[u8]) -> Result<Output> {
        let out = self.exec_with_input(cmd, input).await?;
        self.check_status(cmd, out)
    }

    /// [`Session::exec_with_input_ok`] under `limit`.
    pub async fn exec_with_input_ok_timeout(
        &self,
        cmd: &str,
        input: &[u8],
        limit: Duration,
    ) -> Result<Output> {
        let out = self.run(cmd, input, limit).await?;
        self.check_status(cmd, out)
    }

    /// Runs `cmd` with `input` as its stdin.
    pub async fn exec_with_input(&self, cmd: &str, input: &[u8]) -> Result<Output> {
        self.run(cmd, input, DEFAULT_EXEC_TIMEOUT).await
    }

    /// Streams `input` into `cmd`'s stdin (window-limited, so memory stays flat for big files).
    pub async fn exec_with_reader<R>(&self, cmd: &str, input: R, limit: Duration) -> Result<Output>
    where
        R: AsyncRead + Unpin + Send,
    {
        self.run(cmd, input, limit).await
    }

    /// Installs `local` at `remote` with `mode`, atomically and only if needed.
    /// Returns `false` when the remote file already had the same content and mode.
    pub async fn upload(&self, local: &Path, remote: &str, mode: u32) -> Result<bool> {
        self.upload_inner(local, remote, mode)
            .await
            .with_context(|| format!("{}: upload {} -> {remote}", self.label(), local.display()))
    }

    /// Best-effort polite disconnect; the connection also ends when the last clone drops.
    pub async fn close(&self) {
        let _ = self
            .inner
            .handle
            .disconnect(Disconnect::ByApplication, "", "en")
            .await;
        if let Some(jump) = &self.inner._jump {
            Box::pin(jump.close()).await;
        }
    }

    /// A TCP connection from this host to `address:port` (direct-tcpip), as a byte stream:
    /// how clusterctl reaches service ports that only the jump host can reach.
    pub async fn open_tunnel(
        &self,
        address: &str,
        port: u16,
    ) -> Result<impl tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + use<>> {
        let channel = self
            .inner
            .handle
            .channel_open_direct_tcpip(address, u32::from(port), "127.0.0.1", 0)
            .await
            .map_err(anyhow::Error::from)
            .with_context(|| {
                format!(
                    "jump host {}: tunnel to {address}:{port} refused",
                    self.label()
                )
            })?;
        Ok(channel.into_stream())
    }

    /// Whether the connection is gone (dropped by the peer, keepalives unanswered).
    pub fn is_closed(&self) -> bool {
        self.inner.handle.is_closed()
    }

    /// `host (user@address:port)`, the prefix of every error.
    pub fn label(&self) -> String {
        label(&self.inner.target)
    }

    fn check_status(&self, cmd: &str, out: Output) -> Result<Output> {
        if out.ok() {
            return Ok(out);
        }
        bail!(
            "{}: command `{cmd}` exited with status {}; stderr: {}",
            self.label(),
            out.status,
            out.stderr.trim_end()
        )
    }

    /// Runs `cmd` with its stdout copied to `out` as it arrives and its stderr to ours, until
    /// it exits (`clusterctl logs -f`: until the user stops us). Returns its exit status.
    pub async fn stream(&self, cmd: &str, out: &mut (dyn std::io::Write + Send)) -> Result<u32> {
        let context = || format!("{}: command `{cmd}`", self.label());
        let channel = self
            .inner
            .handle
            .channel_open_session()
            .await
            .map_err(anyhow::Error::from)
            .with_context(context)?;
        let (mut rx, tx) = channel.split();
        tx.exec(true, wrap_become(&self.inner.target, cmd).as_bytes())
            .await
            .with_context(context)?;
        let mut status = None;
        while let Some(msg) = rx.wait().await {
            match msg {
                ChannelMsg::Data { data } => {
                    out.write_all(&data)?;
                    out.flush()?;
                }
                ChannelMsg::ExtendedData { data, ext: 1 } => {
                    std::io::Write::write_all(&mut std::io::stderr(), &data)?
                }
                ChannelMsg::ExitStatus { exit_status } => status = Some(exit_status),
                ChannelMsg::Failure => bail!("{}: server refused to run the command", context()),
                _ => {}
            }
        }
        status.ok_or_else(|| anyhow!("{}: channel closed without an exit status", context()))
    }

    /// Opens a channel, runs the command, feeds stdin, collects the result.
    async fn run<R>(&self, cmd: &str, input: R, limit: Duration) -> Result<Output>
    where
        R: AsyncRead + Unpin + Send,
    {
        let context = || format!("{}: command `{cmd}`", self.label());
        if super::verbose() {
            eprintln!(
                "{} $ {}",
                self.inner.target.host,
                cmd.trim_end().replace('\n', "\n    ")
            );
        }
        // Queueing time is not counted against `limit`: it is bounded by the commands ahead.
        let _permit = self.inner.channels.acquire().await?;
        let channel = self
            .inner
            .handle
            .channel_open_session()
            .await
            .map_err(anyhow::Error::from)
            .with_context(|| format!("{}: opening channel", context()))?;
        let (mut rx, tx) = channel.split();
        let wrapped = wrap_become(&self.inner.target, cmd);
        let result = timeout(limit, exec_on_channel(&wrapped, input, &mut rx, &tx)).await;
        match result {
            Ok(output) => output.with_context(context),
            Err(_) => {
                // Only close on this path: closing after a normal exit can hang russh.
                let _ = tx.close().await;
                Err(anyhow!("timed out after {limit:?}")).with_context(context)
            }
        }
    }

    async fn upload_inner(&self, local: &Path, remote: &str, mode: u32) -> Result<bool> {
        let (dir, _) = split_remote(remote)?;
        let local_sum = sha256_file(local).await?;
        let mode = format!("{:o}", mode & 0o7777);
        let (remote_sum, remote_mode) = self.remote_state(remote).await?;
        if remote_sum.as_deref() == Some(local_sum.as_str()) {
            if remote_mode.as_deref() == Some(mode.as_str()) {
                return Ok(false);
            }
            // Same content, wrong mode: fix in place, no transfer.
            self.exec_ok(&format!("chmod {mode} -- {}", quote(remote)))
                .await?;
            return Ok(true);
        }
        let tmp = format!("{remote}{UPLOAD_TMP_SUFFIX}");
        let sent = self
            .send_file(local, &dir, &tmp, &local_sum, &mode, remote)
            .await;
        if sent.is_err() {
            // Leave no stray temp file behind; the real file was never touched.
            let _ = self.exec(&format!("rm -f -- {}", quote(&tmp))).await;
        }
        sent.map(|()| true)
    }

    /// `(sha256, octal mode)` of `remote`, or `(None, None)` if it does not exist.
    async fn remote_state(&self, remote: &str) -> Result<(Option<String>, Option<String>)> {
        let q = quote(remote);
        let out = self
            .exec_ok(&format!(
                "if [ -e {q} ]; then sha256sum < {q} && stat -c %a -- {q}; fi"
            ))
            .await?;
        let mut words = out.stdout.split_whitespace();
        let sum = words.next().map(str::to_string);
        // sha256sum prints "<hash>  -" when reading stdin.
        let mode = words.nth(1).map(str::to_string);
        Ok((sum, mode))
    }

    /// Streams the file to `tmp` (umask 077, so secrets are never world-readable), then
    /// verifies the checksum remotely, sets the mode and renames into place in one command.
    async fn send_file(
        &self,
        local: &Path,
        dir: &str,
        tmp: &str,
        sum: &str,
        mode: &str,
        remote: &str,
    ) -> Result<()> {
        let file = tokio::fs::File::open(local)
            .await
            .with_context(|| format!("opening {}", local.display()))?;
        let (qdir, qtmp) = (quote(dir), quote(tmp));
        let cmd = format!("umask 077 && mkdir -p -- {qdir} && cat > {qtmp}");
        let out = self.exec_with_reader(&cmd, file, UPLOAD_TIMEOUT).await?;
        self.check_status(&cmd, out)?;
        let install = format!(
            "sum=$(sha256sum < {qtmp}) && [ \"${{sum%% *}}\" = {sum} ] \
             || {{ echo \"checksum mismatch after transfer: $sum\" >&2; exit 1; }}; \
             chmod {mode} -- {qtmp} && mv -f -- {qtmp} {}",
            quote(remote)
        );
        self.exec_ok(&install).await.map(drop)
    }
}

/// Sends the command, pumps stdin, and drains output until the channel is gone.
async fn exec_on_channel<R>(
    cmd: &str,
    input: R,
    rx: &mut ChannelReadHalf,
    tx: &ChannelWriteHalf<client::Msg>,
) -> Result<Output>
where
    R: AsyncRead + Unpin + Send,
{
    tx.exec(true, cmd.as_bytes()).await?;
    // Stdin and stdout must flow concurrently: a command like `cat` stops reading when its
    // output is not consumed, and then our writes would wait forever for window space.
    let send = async {
        tx.data(input).await?;
        tx.eof().await
    };
    let drain = drain(rx);
    tokio::pin!(send, drain);
    let mut send_error = None;
    let mut sending = true;
    let output = loop {
        tokio::select! {
            sent = &mut send, if sending => {
                sending = false;
                send_error = sent.err();
            }
            // The command may exit without reading all input; its result is what matters.
            output = &mut drain => break output?,
        }
    };
    match send_error {
        Some(e) if output.ok() => Err(anyhow!("sending stdin failed: {e}")),
        _ => Ok(output),
    }
}

/// Collects stdout/stderr/exit status until russh reports the channel closed. Eof, exit
/// status and close may arrive in any order, so we never stop early.
async fn drain(rx: &mut ChannelReadHalf) -> Result<Output> {
    let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
    let mut status = None;
    let mut signal = None;
    while let Some(msg) = rx.wait().await {
        match msg {
            ChannelMsg::Data { data } => stdout.extend_from_slice(&data),
            ChannelMsg::ExtendedData { data, ext: 1 } => stderr.extend_from_slice(&data),
            ChannelMsg::ExitStatus { exit_status } => status = Some(exit_status),
            ChannelMsg::ExitSignal {
                signal_name,
                error_message,
                ..
            } => signal = Some(format!("{signal_name:?} {error_message}")),
            ChannelMsg::Failure => bail!("server refused to run the command"),
            _ => {}
        }
    }
    let stderr = String::from_utf8_lossy(&stderr).into_owned();
    if let Some(signal) = signal {
        bail!(
            "killed by signal {}; stderr: {}",
            signal.trim_end(),
            stderr.trim_end()
        );
    }
    // sshd's ChannelTimeout or a dropped connection closes channels without a status.
    let status = status.ok_or_else(|| {
        anyhow!(
            "channel closed without an exit status; stderr: {}",
            stderr.trim_end()
        )
    })?;
    Ok(Output {
        status,
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr,
    })
}

/// russh callbacks: only host-key checking is ours.
struct Client {
    known_hosts: PathBuf,
    name: String,
    policy: HostKeyPolicy,
}

impl client::Handler for Client {
    type Error = anyhow::Error;

    async fn check_server_key(&mut self, key: &PublicKeyOrCertificate) -> Result<bool> {
        // We never advertise certificate algorithms, but if one shows up, pin its key.
        let key: Cow<'_, PublicKey> = match key {
            PublicKeyOrCertificate::PublicKey { key, .. } => Cow::Borrowed(key),
            PublicKeyOrCertificate::Certificate(cert) => {
                Cow::Owned(PublicKey::new(cert.public_key().clone(), ""))
            }
        };
        known_hosts::verify(&self.known_hosts, &self.name, &key, self.policy)?;
        Ok(true)
    }
}

/// `sudo -n` (never prompt: a password prompt would hang a non-interactive run) for
/// non-root users that need root.
fn wrap_become(t: &SshTarget, cmd: &str) -> String {
    if t.become_ && t.user != "root" {
        format!("sudo -n sh -c {}", quote(cmd))
    } else {
        cmd.to_string()
    }
}

fn label(t: &SshTarget) -> String {
    format!("{} ({}@{}:{})", t.host, t.user, t.address, t.port)
}

async fn connect_inner(target: &SshTarget, policy: HostKeyPolicy) -> Result<Session> {
    let policy = if target.accept_new {
        HostKeyPolicy::AcceptNew
    } else {
        policy
    };
    let context = || format!("ssh {}", label(target));
    let name = known_hosts::host_name(&target.address, target.port);
    let config = Arc::new(client_config(&target.known_hosts, &name));
    let handler = Client {
        known_hosts: target.known_hosts.clone(),
        name,
        policy,
    };
    let (handle, jump) = match &target.jump {
        Some(jump) => via_jump(target, jump, policy, config, handler).await,
        None => direct(target, config, handler).await,
    }
    .with_context(context)?;
    let mut handle = handle;
    authenticate(&mut handle, target)
        .await
        .with_context(context)?;
    Ok(Session {
        inner: Arc::new(Inner {
            target: target.clone(),
            handle,
            channels: Semaphore::new(MAX_CHANNELS),
            _jump: jump,
        }),
    })
}

fn client_config(known_hosts: &Path, name: &str) -> client::Config {
    client::Config {
        keepalive_interval: Some(KEEPALIVE_INTERVAL),
        nodelay: true,
        preferred: Preferred {
            key: Cow::Owned(host_key_order(&known_hosts::known_algorithms(
                known_hosts,
                name,
            ))),
            ..Preferred::DEFAULT
        },
        ..Default::default()
    }
}

/// russh's default host-key algorithms, with the families already in known_hosts first.
fn host_key_order(known: &[Algorithm]) -> Vec<Algorithm> {
    let is_rsa = |a: &Algorithm| matches!(a, Algorithm::Rsa { .. });
    let same_family = |a: &Algorithm| known.iter().any(|k| k == a || (is_rsa(k) && is_rsa(a)));
    let (mut first, rest): (Vec<_>, Vec<_>) = Preferred::DEFAULT
        .key
        .iter()
        .cloned()
        .partition(same_family);
    first.extend(rest);
    first
}

async fn direct(
    target: &SshTarget,
    config: Arc<client::Config>,
    handler: Client,
) -> Result<(Handle<Client>, Option<Session>)> {
    let addr = (target.address.as_str(), target.port);
    let tcp = TcpStream::connect(addr).await.context("TCP connect")?;
    tcp.set_nodelay(true)?;
    let handle = handshake(config, tcp, handler).await?;
    Ok((handle, None))
}

async fn via_jump(
    target: &SshTarget,
    jump: &SshTarget,
    policy: HostKeyPolicy,
    config: Arc<client::Config>,
    handler: Client,
) -> Result<(Handle<Client>, Option<Session>)> {
    let jump = Session::connect(jump, policy)
        .await
        .context("connecting to jump host")?;
    let stream = jump.open_tunnel(&target.address, target.port).await?;
    let handle = handshake(config, stream, handler).await?;
    Ok((handle, Some(jump)))
}

async fn handshake<S>(
    config: Arc<client::Config>,
    stream: S,
    handler: Client,
) -> Result<Handle<Client>>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    client::connect_stream(config, stream, handler).await
}

async fn authenticate(handle: &mut Handle<Client>, target: &SshTarget) -> Result<()> {
    let ok = match &target.key {
        Some(path) => auth_key_file(handle, &target.user, path).await?,
        None => auth_agent(handle, &target.user).await?,
    };
    if !ok {
        bail!("authentication as {} was rejected", target.user);
    }
    Ok(())
}

async fn auth_key_file(handle: &mut Handle<Client>, user: &str, path: &Path) -> Result<bool> {
    let key = russh::keys::load_secret_key(path, None).with_context(|| {
        format!(
            "loading private key {} (passphrase-protected keys must go through ssh-agent)",
            path.display()
        )
    })?;
    let hash = rsa_hash(handle, key.algorithm().is_rsa()).await?;
    let key = PrivateKeyWithHashAlg::new(Arc::new(key), hash);
    let result = handle.authenticate_publickey(user, key).await?;
    Ok(result.success())
}

/// Tries each agent identity in turn, like OpenSSH.
async fn auth_agent(handle: &mut Handle<Client>, user: &str) -> Result<bool> {
    let mut agent = russh::keys::agent::client::AgentClient::connect_env()
        .await
        .context("no key file given and ssh-agent is unreachable ($SSH_AUTH_SOCK)")?;
    let identities = agent
        .request_identities()
        .await
        .context("listing ssh-agent keys")?;
    if identities.is_empty() {
        bail!("ssh-agent holds no keys");
    }
    for identity in identities {
        let key = identity.public_key().into_owned();
        let hash = rsa_hash(handle, key.algorithm().is_rsa()).await?;
        let result = handle
            .authenticate_publickey_with(user, key, hash, &mut agent)
            .await?;
        if result.success() {
            return Ok(true);
        }
    }
    Ok(false)
}

/// RSA needs an explicit signature hash; ask the server (rsa-sha2-512/256 over legacy SHA-1).
async fn rsa_hash(handle: &Handle<Client>, is_rsa: bool) -> Result<Option<russh::keys::HashAlg>> {
    if !is_rsa {
        return Ok(None);
    }
    Ok(handle.best_supported_rsa_hash().await?.flatten())
}

/// `(parent dir, file name)` of an upload target; the dir is created before writing.
fn split_remote(remote: &str) -> Result<(String, String)> {
    match remote.rsplit_once('/') {
        _ if remote.is_empty() || remote.ends_with('/') => {
            bail!("remote path {remote:?} must name a file")
        }
        Some(("", file)) => Ok(("/".into(), file.into())),
        Some((dir, file)) => Ok((dir.into(), file.into())),
        None => Ok((".".into(), remote.into())),
    }
}

/// Streaming sha256 so large tarballs are never read into memory at once.
async fn sha256_file(path: &Path) -> Result<String> {
    let mut file = tokio::fs::File::open(path)
        .await
        .with_context(|| format!("opening {}", path.display()))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = file
            .read(&mut buf)
            .await
            .with_context(|| format!("reading {}", path.display()))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_is_send_sync_clone() {
        fn check<T: Send + Sync + Clone + 'static>() {}
        check::<Session>();
    }

    /// Never run; compiling it proves the futures can go to `tokio::spawn`.
    fn _futures_are_send(s: &Session, t: &SshTarget) {
        fn send<T: Send>(_: T) {}
        send(Session::connect(t, HostKeyPolicy::Strict));
        send(s.exec("true"));
        send(s.exec_with_input("cat", b"x"));
        send(s.exec_with_reader("cat", tokio::io::empty(), DEFAULT_EXEC_TIMEOUT));
        send(s.upload(Path::new("f"), "/tmp/f", 0o644));
        send(s.close());
    }

    #[test]
    fn become_wraps_only_non_root() {
        let mut t = SshTarget {
            host: "h".into(),
            address: "a".into(),
            port: 22,
            user: "deploy".into(),
            key: None,
            known_hosts: PathBuf::from("kh"),
            become_: true,
            connect_timeout: Duration::from_secs(1),
            accept_new: false,
            jump: None,
        };
        assert_eq!(
            wrap_become(&t, "echo 'hi'"),
            r"sudo -n sh -c 'echo '\''hi'\'''"
        );
        t.user = "root".into();
        assert_eq!(wrap_become(&t, "id"), "id");
        t.user = "deploy".into();
        t.become_ = false;
        assert_eq!(wrap_become(&t, "id"), "id");
    }

    #[test]
    fn split_remote_paths() {
        assert_eq!(
            split_remote("/etc/kafka/server.properties").unwrap().0,
            "/etc/kafka"
        );
        assert_eq!(split_remote("/x").unwrap(), ("/".into(), "x".into()));
        assert_eq!(split_remote("x").unwrap().0, ".");
        assert!(split_remote("/etc/").is_err());
        assert!(split_remote("").is_err());
    }

    #[test]
    fn known_host_key_types_go_first() {
        let order = host_key_order(&[Algorithm::Rsa { hash: None }]);
        let rsa = |a: &Algorithm| matches!(a, Algorithm::Rsa { .. });
        assert!(order[..3].iter().all(rsa), "{order:?}");
        assert_eq!(order.len(), Preferred::DEFAULT.key.len());
        assert_eq!(host_key_order(&[]), Preferred::DEFAULT.key.to_vec());
    }

    #[tokio::test]
    async fn sha256_of_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"abc").unwrap();
        assert_eq!(
            sha256_file(&path).await.unwrap(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
