//! How clusterctl's client reaches a secured listener: TLS (rustls, trusting only the cluster
//! CA) and SASL (SCRAM or PLAIN) after ApiVersions. A command installs the settings of each
//! port once ([`install`]), like `net::install` for tunnels, so every probe, gate and admin
//! call deep in the tool is secured without a parameter. Passwords appear in no error and no
//! Debug output.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use bytes::Bytes;
use kafka_protocol::messages::{SaslAuthenticateRequest, SaslHandshakeRequest};
use kafka_protocol::protocol::StrBytes;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};

use super::KafkaClient;
use super::scram::Scram;
use crate::net::BoxStream;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum SaslMechanism {
    Plain,
    ScramSha256,
    ScramSha512,
}

impl SaslMechanism {
    pub fn kafka_name(self) -> &'static str {
        match self {
            SaslMechanism::Plain => "PLAIN",
            SaslMechanism::ScramSha256 => "SCRAM-SHA-256",
            SaslMechanism::ScramSha512 => "SCRAM-SHA-512",
        }
    }

    /// Kafka's ScramMechanism code (DescribeUserScramCredentials, AlterUserScramCredentials).
    pub fn scram_code(self) -> i8 {
        match self {
            SaslMechanism::Plain => 0,
            SaslMechanism::ScramSha256 => 1,
            SaslMechanism::ScramSha512 => 2,
        }
    }

    pub fn from_scram_code(c: i8) -> Option<SaslMechanism> {
        match c {
            1 => Some(SaslMechanism::ScramSha256),
            2 => Some(SaslMechanism::ScramSha512),
            _ => None,
        }
    }
}

/// A user and password to log in with.
#[derive(Clone)]
pub struct SaslLogin {
    pub mechanism: SaslMechanism,
    pub user: String,
    pub password: String,
}

impl fmt::Debug for SaslLogin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SaslLogin")
            .field("mechanism", &self.mechanism)
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

/// What one listener asks of a client; the default is PLAINTEXT.
#[derive(Clone, Default)]
pub struct ListenerAuth {
    pub tls: Option<Arc<rustls::ClientConfig>>,
    pub sasl: Option<SaslLogin>,
}

/// A login the broker refused: retrying with the same password cannot help.
#[derive(Debug)]
pub struct AuthFailed(pub String);

impl fmt::Display for AuthFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for AuthFailed {}

pub fn is_auth_failure(e: &anyhow::Error) -> bool {
    e.chain().any(|c| c.is::<AuthFailed>())
}

/// A TLS client trusting exactly the CA certificates in `ca_pems` (several during a CA
/// rotation), presenting no certificate of its own.
pub fn tls_config(ca_pems: &[String]) -> Result<Arc<rustls::ClientConfig>> {
    Ok(Arc::new(tls_builder(ca_pems)?.with_no_client_auth()))
}

/// [`tls_config`] that also shows a certificate (PEM chain and PKCS#8 key): ZooKeeper's TLS
/// port admits only clients with a certificate of the cluster CA.
pub fn tls_config_with_certificate(
    ca_pems: &[String],
    cert_pem: &str,
    key_pem: &str,
) -> Result<Arc<rustls::ClientConfig>> {
    let chain = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| anyhow!("the client certificate: {e}"))?;
    let key = rustls::pki_types::PrivateKeyDer::from_pem_slice(key_pem.as_bytes())
        .map_err(|_| anyhow!("the client certificate's key is not a PEM private key"))?;
    let cfg = tls_builder(ca_pems)?
        .with_client_auth_cert(chain, key)
        .context("the client certificate")?;
    Ok(Arc::new(cfg))
}

fn tls_builder(
    ca_pems: &[String],
) -> Result<rustls::ConfigBuilder<rustls::ClientConfig, rustls::client::WantsClientCert>> {
    let mut roots = rustls::RootCertStore::empty();
    for pem in ca_pems {
        for c in CertificateDer::pem_slice_iter(pem.as_bytes()) {
            let c = c.map_err(|e| anyhow!("the cluster CA file: {e}"))?;
            roots
                .add(c)
                .map_err(|e| anyhow!("the cluster CA certificate: {e}"))?;
        }
    }
    anyhow::ensure!(!roots.is_empty(), "no CA certificate to trust");
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS versions")?
        .with_root_certificates(roots))
}

static BY_PORT: OnceLock<BTreeMap<u16, ListenerAuth>> = OnceLock::new();

/// Sets the listeners' settings for this process (one command run); a second call is ignored.
pub fn install_auth(by_port: BTreeMap<u16, ListenerAuth>) {
    let _ = BY_PORT.set(by_port);
}

/// The installed settings for `addr`'s port; PLAINTEXT when none.
pub(super) fn for_addr(addr: &str) -> ListenerAuth {
    let port = addr
        .rsplit_once(':')
        .and_then(|(_, p)| p.parse::<u16>().ok());
    match (BY_PORT.get(), port) {
        (Some(m), Some(p)) => m.get(&p).cloned().unwrap_or_default(),
        _ => ListenerAuth::default(),
    }
}

/// The TLS handshake on a dialed stream, when the listener wants TLS; the broker's leaf
/// certificate (DER) with it.
pub(super) async fn secure(
    stream: BoxStream,
    addr: &str,
    auth: &ListenerAuth,
    limit: Duration,
) -> Result<(BoxStream, Option<Vec<u8>>)> {
    let Some(cfg) = &auth.tls else {
        return Ok((stream, None));
    };
    handshake(stream, "Kafka", addr, cfg, limit).await
}

/// The TLS handshake with `service` at `addr` (its host is the name the certificate must
/// carry); the peer's leaf certificate (DER) with it.
pub async fn handshake(
    stream: BoxStream,
    service: &str,
    addr: &str,
    cfg: &Arc<rustls::ClientConfig>,
    limit: Duration,
) -> Result<(BoxStream, Option<Vec<u8>>)> {
    let host = addr
        .rsplit_once(':')
        .map_or(addr, |(h, _)| h)
        .trim_start_matches('[')
        .trim_end_matches(']');
    let name = ServerName::try_from(host.to_string())
        .map_err(|_| anyhow!("{service} {addr}: {host:?} is not a TLS server name"))?;
    let tls = tokio::time::timeout(
        limit,
        tokio_rustls::TlsConnector::from(cfg.clone()).connect(name, stream),
    )
    .await
    .map_err(|_| anyhow!("{service} {addr}: no TLS handshake within {limit:?}"))?
    .map_err(|e| anyhow!("{service} {addr}: TLS handshake failed: {e}"))?;
    let peer = tls
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|c| c.first())
        .map(|c| c.as_ref().to_vec());
    Ok((Box::new(tls), peer))
}

impl KafkaClient {
    /// The broker's TLS certificate (DER) when the connection is TLS.
    pub fn peer_certificate(&self) -> Option<Vec<u8>> {
        self.peer_cert.clone()
    }

    /// SaslHandshake, then SaslAuthenticate rounds until the mechanism is done.
    pub(super) async fn authenticate(&mut self, login: &SaslLogin) -> Result<()> {
        let mech = login.mechanism.kafka_name();
        let who = format!(
            "Kafka {}: SASL {mech} authentication as {}",
            self.addr, login.user
        );
        let hs = self
            .call(
                &SaslHandshakeRequest::default().with_mechanism(StrBytes::from_static_str(mech)),
                self.timeout,
            )
            .await
            .with_context(|| who.clone())?;
        if hs.error_code != 0 {
            let offered: Vec<String> = hs.mechanisms.iter().map(|m| m.to_string()).collect();
            return Err(AuthFailed(format!(
                "{who} failed: the listener offers {} only",
                offered.join(", ")
            ))
            .into());
        }
        match login.mechanism {
            SaslMechanism::Plain => {
                let msg = format!("\0{}\0{}", login.user, login.password);
                self.sasl_round(msg.into_bytes(), &who).await?;
            }
            SaslMechanism::ScramSha256 | SaslMechanism::ScramSha512 => {
                let mut s = Scram::new(login.mechanism, &login.user, &login.password)?;
                let first = self.sasl_round(s.client_first().into_bytes(), &who).await?;
                let first = String::from_utf8(first.to_vec())
                    .map_err(|_| anyhow!("{who}: the server-first message is not UTF-8"))?;
                let fin = s.client_final(&first).with_context(|| who.clone())?;
                let last = self.sasl_round(fin.into_bytes(), &who).await?;
                let last = String::from_utf8(last.to_vec())
                    .map_err(|_| anyhow!("{who}: the server-final message is not UTF-8"))?;
                s.verify_server_final(&last)
                    .map_err(|e| AuthFailed(format!("{who} failed: {e}")))?;
            }
        }
        Ok(())
    }

    async fn sasl_round(&mut self, bytes: Vec<u8>, who: &str) -> Result<Bytes> {
        let r = self
            .call(
                &SaslAuthenticateRequest::default().with_auth_bytes(Bytes::from(bytes)),
                self.timeout,
            )
            .await
            .with_context(|| who.to_string())?;
        if r.error_code != 0 {
            let why = r
                .error_message
                .as_ref()
                .map_or_else(|| format!("error code {}", r.error_code), |m| m.to_string());
            bail!(AuthFailed(format!("{who} failed: {why}")));
        }
        Ok(r.auth_bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    /// A CA and a server certificate for 127.0.0.1, made with rcgen.
    fn server_cert() -> (String, rustls::ServerConfig) {
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca_params = rcgen::CertificateParams::default();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let issuer = rcgen::Issuer::new(ca_params, ca_key);
        let key = rcgen::KeyPair::generate().unwrap();
        let leaf = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()])
            .unwrap()
            .signed_by(&key, &issuer)
            .unwrap();
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let cfg = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![leaf.der().clone()],
                rustls::pki_types::PrivateKeyDer::try_from(key.serialize_der()).unwrap(),
            )
            .unwrap();
        (ca.pem(), cfg)
    }

    async fn handshake(ca_pem: String, server: rustls::ServerConfig) -> Result<Option<Vec<u8>>> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server));
        let srv = tokio::spawn(async move {
            let (s, _) = listener.accept().await.unwrap();
            let _ = acceptor.accept(s).await;
        });
        let stream = crate::net::dial(&addr, Duration::from_secs(5))
            .await
            .unwrap();
        let auth = ListenerAuth {
            tls: Some(tls_config(&[ca_pem]).unwrap()),
            sasl: None,
        };
        let r = secure(stream, &addr, &auth, Duration::from_secs(5)).await;
        srv.abort();
        r.map(|(_, peer)| peer)
    }

    #[tokio::test]
    async fn tls_trusts_the_cluster_ca_only() {
        let (ca, server) = server_cert();
        let peer = handshake(ca, server).await.unwrap().unwrap();
        assert!(crate::pki::not_after_der(&peer).is_ok());
        let (other_ca, _) = server_cert();
        let (_, server) = server_cert();
        let e = handshake(other_ca, server).await.unwrap_err().to_string();
        assert!(
            e.contains("127.0.0.1") && e.contains("TLS handshake failed"),
            "{e}"
        );
    }

    #[test]
    fn no_ca_is_an_error_and_passwords_stay_out_of_debug() {
        assert!(tls_config(&["not a pem".into()]).is_err());
        let l = SaslLogin {
            mechanism: SaslMechanism::ScramSha512,
            user: "admin".into(),
            password: "hunter2".into(),
        };
        assert!(!format!("{l:?}").contains("hunter2"));
    }

    #[test]
    fn listener_settings_follow_the_port() {
        // Nothing installed in unit tests: every address is PLAINTEXT.
        let a = for_addr("10.0.0.1:9092");
        assert!(a.tls.is_none() && a.sasl.is_none());
    }
}
