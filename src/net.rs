//! How clusterctl reaches the hosts' service ports (ZooKeeper's four-letter words, the Kafka
//! protocol): straight to the address, or through the host's SSH jump host (direct-tcpip)
//! when the cluster sits on a network only the bastion reaches (`ssh.health_checks`).
//!
//! A command installs one [`Dialer`] for its whole run ([`install`]), so the probes deep in
//! health, gates and the roller need no extra parameter; none installed (unit tests) means
//! direct. Each bastion gets one SSH connection, opened on first use and shared by every probe.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use futures::FutureExt;
use futures::future::{BoxFuture, Shared};
use tokio::io::{AsyncRead, AsyncWrite};

use crate::transport::{HostKeyPolicy, Session, SshTarget};

/// A byte stream to a service port, direct or tunnelled.
pub trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

pub type BoxStream = Box<dyn Stream>;

/// The connection to a bastion, as every probe may await it.
type Connecting = Shared<BoxFuture<'static, Result<Session, String>>>;

/// One jump host and its lazily opened connection.
struct Bastion {
    target: SshTarget,
    session: Mutex<Option<Connecting>>,
}

pub struct Dialer {
    policy: HostKeyPolicy,
    /// Destination address (the inventory's, as Kafka advertises it) -> its host's bastion.
    routes: BTreeMap<String, Arc<Bastion>>,
}

static DIALER: OnceLock<Dialer> = OnceLock::new();

impl Dialer {
    /// `routes`: (address, jump host) for every host whose ports are tunnelled.
    pub fn new(routes: Vec<(String, SshTarget)>, policy: HostKeyPolicy) -> Dialer {
        let mut bastions: Vec<Arc<Bastion>> = Vec::new();
        let mut by_address = BTreeMap::new();
        for (address, jump) in routes {
            // Hosts behind the same bastion share its one connection.
            let bastion = match bastions.iter().find(|b| b.target == jump) {
                Some(b) => b.clone(),
                None => {
                    let b = Arc::new(Bastion {
                        target: jump,
                        session: Mutex::new(None),
                    });
                    bastions.push(b.clone());
                    b
                }
            };
            by_address.insert(address, bastion);
        }
        Dialer {
            policy,
            routes: by_address,
        }
    }

    /// Connects to `addr` (`host:port`) within `limit`, through its bastion if it has one.
    pub async fn dial(&self, addr: &str, limit: Duration) -> Result<BoxStream> {
        let (host, port) = split(addr)?;
        let Some(bastion) = self.routes.get(host) else {
            return direct(addr, limit).await;
        };
        let tunnel = async {
            let session = self
                .session(bastion)
                .await
                .with_context(|| format!("jump host {}", bastion.target.host))?;
            session.open_tunnel(host, port).await
        };
        let stream = tokio::time::timeout(limit, tunnel).await.map_err(|_| {
            anyhow!(
                "no tunnel to {addr} through jump host {} within {limit:?}",
                bastion.target.host
            )
        })??;
        Ok(Box::new(stream))
    }

    /// The bastion's connection, opened on first use and again if it failed or dropped. The
    /// connect is shared, not owned by one probe: a probe that times out leaves it running for
    /// the next (a slow bastion handshake must not lose to every short probe timeout).
    async fn session(&self, bastion: &Bastion) -> Result<Session> {
        let connecting = {
            let mut slot = bastion.session.lock().unwrap_or_else(|e| e.into_inner());
            let usable = match slot.as_ref().map(|f| f.peek()) {
                Some(Some(Ok(s))) => !s.is_closed(),
                Some(Some(Err(_))) | None => false,
                Some(None) => true,
            };
            if !usable {
                let (target, policy) = (bastion.target.clone(), self.policy);
                let connect = async move {
                    Session::connect(&target, policy)
                        .await
                        .map_err(|e| format!("{e:#}"))
                };
                *slot = Some(connect.boxed().shared());
            }
            slot.clone().expect("set above")
        };
        connecting.await.map_err(|e| anyhow!(e))
    }
}

/// Sets the dialer for this process (one command run). A second call is ignored: the first
/// command's inventory is the one every probe belongs to.
pub fn install(dialer: Dialer) {
    let _ = DIALER.set(dialer);
}

/// Connects to `addr` (`host:port`) as the installed dialer routes it (direct if none).
pub async fn dial(addr: &str, limit: Duration) -> Result<BoxStream> {
    match DIALER.get() {
        Some(d) => d.dial(addr, limit).await,
        None => direct(addr, limit).await,
    }
}

async fn direct(addr: &str, limit: Duration) -> Result<BoxStream> {
    let stream = tokio::time::timeout(limit, tokio::net::TcpStream::connect(addr))
        .await
        .map_err(|_| anyhow!("connect timed out after {limit:?}"))??;
    // Small request/response exchanges: do not wait for Nagle.
    stream.set_nodelay(true).ok();
    Ok(Box::new(stream))
}

/// `host:port` or `[v6]:port` -> (host, port).
fn split(addr: &str) -> Result<(&str, u16)> {
    let (host, port) = addr
        .rsplit_once(':')
        .ok_or_else(|| anyhow!("{addr}: expected host:port"))?;
    let port = port
        .parse()
        .map_err(|_| anyhow!("{addr}: bad port {port:?}"))?;
    Ok((host.trim_start_matches('[').trim_end_matches(']'), port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_host_and_port() {
        assert_eq!(split("10.0.0.1:9092").unwrap(), ("10.0.0.1", 9092));
        assert_eq!(split("[fd00::1]:2181").unwrap(), ("fd00::1", 2181));
        assert!(split("10.0.0.1").is_err());
        assert!(split("h:99999").is_err());
    }

    #[tokio::test]
    async fn unrouted_addresses_connect_directly() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        // A route for another address must not capture this one.
        let jump = SshTarget {
            host: "bastion".into(),
            address: "192.0.2.7".into(),
            port: 22,
            user: "root".into(),
            key: None,
            known_hosts: "kh".into(),
            become_: false,
            connect_timeout: Duration::from_secs(1),
            accept_new: false,
            jump: None,
        };
        let d = Dialer::new(vec![("10.0.0.9".into(), jump)], HostKeyPolicy::Strict);
        let (dialed, accepted) =
            tokio::join!(d.dial(&addr, Duration::from_secs(2)), listener.accept());
        dialed.unwrap();
        accepted.unwrap();
    }
}
