//! The secrets and certificates a secured inventory needs, gathered on the operator's machine
//! before any host is touched: users' passwords (files, environment), the cluster CA and each
//! host's certificate (issued by the managed CA, or the operator's own, checked). A command
//! loads them once ([`install`]); rendering and clusterctl's own Kafka client read them from
//! there. Nothing here prints a password or a private key.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::OnceLock;
use std::time::SystemTime;

use anyhow::{Context, Result, anyhow, bail};

use crate::health::kafka::{ListenerAuth, SaslLogin, SaslMechanism, tls_config};
use crate::inventory::{Host, Inventory, SaslMech, Tls};

/// One host's key and certificate chain, as Kafka's PEM keystore holds them.
#[derive(Clone)]
pub struct HostTls {
    pub cert_pem: String,
    pub key_pem: String,
    pub not_after: Option<SystemTime>,
}

impl fmt::Debug for HostTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HostTls")
            .field("not_after", &self.not_after)
            .finish_non_exhaustive()
    }
}

pub struct Material {
    passwords: BTreeMap<String, String>,
    /// The CA certificates hosts and clients trust (PEM), in order.
    pub ca_pems: Vec<String>,
    hosts: BTreeMap<String, HostTls>,
    /// What loading decided (a CA created, a certificate issued), for the command to report.
    pub notes: Vec<String>,
    /// The managed CA directory's files that keep what loading decided: written by
    /// [`Material::commit`] when the command is about to touch hosts (never by a dry run).
    writes: Vec<crate::pki::Write>,
    /// The CA rotation under way, as this material renders it.
    rotation: Option<crate::pki::Rotation>,
    /// KRaft format's `--add-scram` arguments (salted, one per line): the admin and broker
    /// users exist from the first start, before any admin call could create them.
    pub bootstrap_scram: String,
}

impl fmt::Debug for Material {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Material")
            .field("users", &self.passwords.keys().collect::<Vec<_>>())
            .field("hosts", &self.hosts.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

static MATERIAL: OnceLock<Material> = OnceLock::new();

/// Sets this process's material (one command run); a second call is ignored.
pub fn install(m: Material) {
    let _ = MATERIAL.set(m);
}

/// The installed material; `None` before [`install`] (an inventory without `security`).
pub fn installed() -> Option<&'static Material> {
    MATERIAL.get()
}

/// The names a host's certificate must carry: every address clients and peers dial it at.
pub fn sans(host: &Host) -> Vec<String> {
    let mut out = vec![host.address.clone()];
    for n in [Some(host.name.as_str()), host.advertised_address.as_deref()]
        .into_iter()
        .flatten()
    {
        if !out.iter().any(|s| s == n) {
            out.push(n.to_string());
        }
    }
    out
}

/// The hosts that get a certificate: every Kafka process (a side controller is its own), and
/// the ZooKeeper members when they speak TLS (one certificate per host for both services).
fn tls_hosts(inv: &Inventory) -> impl Iterator<Item = &Host> {
    let zk_tls = inv.security.as_ref().is_some_and(|s| s.zookeeper_tls);
    inv.hosts
        .iter()
        .filter(move |h| h.runs_kafka() || (zk_tls && h.in_zookeeper))
}

impl Material {
    /// Reads every password and makes sure every host has a valid certificate (creating the
    /// managed CA on first use). Fails, naming the file or variable, before any host is touched.
    pub fn load(inv: &Inventory, renew: Renew) -> Result<Material> {
        let mut m = Material {
            passwords: BTreeMap::new(),
            ca_pems: vec![],
            hosts: BTreeMap::new(),
            notes: vec![],
            bootstrap_scram: String::new(),
            writes: vec![],
            rotation: None,
        };
        let Some(sec) = &inv.security else {
            return Ok(m);
        };
        for u in &inv.users {
            m.passwords
                .insert(u.name.clone(), u.password.read(&u.name)?);
        }
        for u in bootstrap_users(inv) {
            m.bootstrap_scram
                .push_str(&scram_arg(&u.name, u.mechanism, m.password(&u.name)?)?);
        }
        let now = SystemTime::now();
        match &sec.tls {
            None => {}
            Some(Tls::Managed { dir, validity_days }) => {
                let name = ca_name(inv);
                let (mut cas, writes) = crate::pki::load_cas(dir, *validity_days, &name)?;
                if !writes.is_empty() {
                    m.notes.push(format!(
                        "a new cluster CA in {} (key mode 0600; `clusterctl certs ca` prints the certificate)",
                        dir.display()
                    ));
                }
                m.writes.extend(writes);
                if renew == Renew::Ca {
                    let (next, writes, what) =
                        crate::pki::advance(dir, cas, *validity_days, &name)?;
                    cas = next;
                    m.writes.extend(writes);
                    m.notes.push(format!("CA rotation, {what}"));
                }
                m.rotation = cas.rotation.clone();
                let issuer = cas.issuer();
                for h in tls_hosts(inv) {
                    let (cert, why, writes) = crate::pki::host_cert(
                        dir,
                        issuer,
                        &h.name,
                        &sans(h),
                        *validity_days,
                        now,
                        renew == Renew::HostCertificates,
                    )
                    .with_context(|| format!("certificate for {}", h.name))?;
                    m.writes.extend(writes);
                    if let Some(why) = why {
                        m.notes
                            .push(format!("{}: a new certificate ({why})", h.name));
                    }
                    m.hosts.insert(
                        h.name.clone(),
                        HostTls {
                            cert_pem: format!("{}{}", cert.cert_pem, issuer.cert_pem),
                            key_pem: cert.key_pem.clone(),
                            not_after: Some(cert.not_after),
                        },
                    );
                }
                m.ca_pems
                    .extend(cas.trusted().into_iter().map(|c| c.cert_pem.clone()));
            }
            Some(Tls::Provided {
                ca_file,
                cert_file,
                key_file,
            }) => {
                let ca = std::fs::read_to_string(ca_file)
                    .with_context(|| format!("security.tls.ca_file {}", ca_file.display()))?;
                m.ca_pems.push(ca.clone());
                for h in tls_hosts(inv) {
                    let cert_path = cert_file.replace("{host}", &h.name);
                    let key_path = key_file.replace("{host}", &h.name);
                    let cert = std::fs::read_to_string(&cert_path).with_context(|| {
                        format!("security.tls.cert_file for {}: {cert_path}", h.name)
                    })?;
                    let key = std::fs::read_to_string(&key_path).with_context(|| {
                        format!("security.tls.key_file for {}: {key_path}", h.name)
                    })?;
                    crate::pki::check_provided(&cert, &key, std::slice::from_ref(&ca), &sans(h))
                        .with_context(|| format!("{} ({cert_path})", h.name))?;
                    let not_after = crate::pki::not_after_pem(&cert).ok();
                    m.hosts.insert(
                        h.name.clone(),
                        HostTls {
                            cert_pem: cert,
                            key_pem: key,
                            not_after,
                        },
                    );
                }
            }
        }
        Ok(m)
    }

    /// Stand-ins for `render`, which previews files without reading a secret.
    pub fn placeholder(inv: &Inventory) -> Material {
        Material {
            passwords: inv
                .users
                .iter()
                .map(|u| (u.name.clone(), format!("<password of {}>", u.name)))
                .collect(),
            ca_pems: vec!["<cluster CA certificate>\n".into()],
            hosts: tls_hosts(inv)
                .map(|h| {
                    let t = HostTls {
                        cert_pem: format!("<certificate of {}>\n", h.name),
                        key_pem: format!("<private key of {}: written by apply>\n", h.name),
                        not_after: None,
                    };
                    (h.name.clone(), t)
                })
                .collect(),
            notes: vec![],
            bootstrap_scram: String::new(),
            writes: vec![],
            rotation: None,
        }
    }

    /// Writes the CA directory's new files (the hosts are about to get what they hold);
    /// repeating it rewrites the same.
    pub fn commit(&self) -> Result<()> {
        crate::pki::commit(&self.writes)
    }

    /// What `status` says about the certificates this machine holds: a CA rotation under way
    /// (and what to run next), a CA near its end.
    pub fn status_notes(&self, inv: &Inventory, now: std::time::SystemTime) -> Vec<String> {
        let mut notes = vec![];
        let f = inv.file.display();
        if let Some(r) = &self.rotation {
            let next = match (r.stage, r.done) {
                (s, false) => format!(
                    "its roll did not finish: run `clusterctl certs rotate {f} --ca` to finish stage {}",
                    s.number()
                ),
                (crate::pki::Stage::Trust, true) => format!(
                    "give every client the bundle `clusterctl certs ca {f}` prints, then run `clusterctl certs rotate {f} --ca`"
                ),
                (_, true) => format!("run `clusterctl certs rotate {f} --ca` for the next stage"),
            };
            notes.push(format!(
                "a CA rotation is under way: stage {} of 3 ({}) {}; {next}",
                r.stage.number(),
                r.stage.describe(),
                if r.done { "is done" } else { "has begun" },
            ));
        }
        let managed = matches!(
            inv.security.as_ref().and_then(|s| s.tls.as_ref()),
            Some(Tls::Managed { .. })
        );
        for pem in &self.ca_pems {
            let Ok(end) = crate::pki::not_after_pem(pem) else {
                continue;
            };
            let left = crate::pki::days_left(end, now);
            if left < crate::pki::RENEW_WITHIN_DAYS as i64 {
                notes.push(if managed {
                    format!(
                        "the cluster CA expires in {left} days: replace it with `clusterctl certs rotate {f} --ca` (three rolls; clients need the new CA between the first and the second)"
                    )
                } else {
                    format!(
                        "the CA in security.tls expires in {left} days: add the new CA to its file, roll it in with `clusterctl certs rotate {f}`, then the new certificates"
                    )
                });
            }
        }
        notes
    }

    pub fn password(&self, user: &str) -> Result<&str> {
        self.passwords
            .get(user)
            .map(String::as_str)
            .ok_or_else(|| anyhow!("no password loaded for user {user}"))
    }

    pub fn host_tls(&self, host: &str) -> Result<&HostTls> {
        self.hosts
            .get(host)
            .ok_or_else(|| anyhow!("no certificate loaded for host {host}"))
    }

    /// The PEM file every host and client trusts.
    pub fn trust_pem(&self) -> String {
        self.ca_pems.concat()
    }

    /// How clusterctl's own client speaks to each port of a secured cluster: the client port
    /// as the admin user with its SCRAM mechanism, the controllers' port with PLAIN.
    /// (See [`Material::zookeeper_tls`] for ZooKeeper's port.)
    /// With `security.zookeeper_tls`: how clusterctl reaches ZooKeeper, trusting the cluster
    /// CA and showing a ZooKeeper member's own certificate (this machine holds every host's
    /// key already; ZooKeeper checks only that the CA issued it).
    pub fn zookeeper_tls(
        &self,
        inv: &Inventory,
    ) -> Result<Option<std::sync::Arc<rustls::ClientConfig>>> {
        if !inv.security.as_ref().is_some_and(|s| s.zookeeper_tls) {
            return Ok(None);
        }
        let host = inv
            .zookeeper_hosts()
            .next()
            .context("zookeeper_tls without ZooKeeper hosts")?;
        let t = self.host_tls(&host.name)?;
        crate::health::kafka::tls_config_with_certificate(&self.ca_pems, &t.cert_pem, &t.key_pem)
            .map(Some)
    }

    pub fn listener_auth(&self, inv: &Inventory) -> Result<BTreeMap<u16, ListenerAuth>> {
        let mut out = BTreeMap::new();
        let Some(sec) = &inv.security else {
            return Ok(out);
        };
        let tls = match sec.any_tls() {
            true => Some(tls_config(&self.ca_pems)?),
            false => None,
        };
        let admin = |mechanism| -> Result<Option<SaslLogin>> {
            let Some(user) = &sec.admin_user else {
                return Ok(None);
            };
            Ok(Some(SaslLogin {
                mechanism,
                user: user.clone(),
                password: self.password(user)?.to_string(),
            }))
        };
        let admin_mech = sec
            .admin_user
            .as_ref()
            .and_then(|a| inv.users.iter().find(|u| &u.name == a))
            .map_or(sec.sasl_mechanism, |u| u.mechanism);
        let client = (sec.client.port, sec.client.protocol, scram(admin_mech));
        let controller = sec
            .controller
            .map(|c| (c.port, c.protocol, SaslMechanism::Plain));
        for (port, protocol, mech) in std::iter::once(client).chain(controller) {
            out.insert(
                port,
                ListenerAuth {
                    tls: protocol.tls().then(|| tls.clone()).flatten(),
                    sasl: match protocol.sasl() {
                        true => admin(mech)?,
                        false => None,
                    },
                },
            );
        }
        Ok(out)
    }
}

/// SCRAM iterations of the credentials clusterctl makes (Kafka's own default and minimum).
pub const SCRAM_ITERATIONS: u32 = 4096;

/// One `--add-scram` argument pair for StorageTool, salted here so the password itself is in
/// no file on the host (Kafka splits the value on `,`, which a password may hold).
fn scram_arg(user: &str, mech: SaslMech, password: &str) -> Result<String> {
    use base64::Engine;
    let mut salt = [0u8; 32];
    aws_lc_rs::rand::fill(&mut salt).map_err(|_| anyhow!("no random bytes for a SCRAM salt"))?;
    let salted =
        crate::health::kafka::salted_password(scram(mech), password, &salt, SCRAM_ITERATIONS);
    let b64 = base64::engine::general_purpose::STANDARD;
    Ok(format!(
        "--add-scram\n{}=[name={user},salt={},saltedpassword={},iterations={SCRAM_ITERATIONS}]\n",
        mech.name(),
        b64.encode(salt),
        b64.encode(salted),
    ))
}

/// The users that must exist before the first broker starts: the brokers log in to each
/// other as the inter-broker user, and clusterctl's own calls log in as the admin user.
pub fn bootstrap_users(inv: &Inventory) -> impl Iterator<Item = &crate::inventory::User> {
    let sec = inv.security.as_ref().filter(|s| s.any_sasl());
    inv.users.iter().filter(move |u| {
        sec.is_some_and(|s| {
            [&s.admin_user, &s.inter_broker_user]
                .iter()
                .any(|b| b.as_deref() == Some(u.name.as_str()))
        })
    })
}

/// ZooKeeper mode: a user's credential as Kafka keeps it in `/config/users/NAME` (what
/// `kafka-configs --zookeeper --add-config SCRAM-...` writes): salt, StoredKey and ServerKey,
/// never the password.
pub fn zk_scram_znode(mech: SaslMech, password: &str) -> Result<String> {
    let mut salt = [0u8; 32];
    aws_lc_rs::rand::fill(&mut salt).map_err(|_| anyhow!("no random bytes for a SCRAM salt"))?;
    Ok(zk_scram_znode_salted(mech, password, &salt))
}

fn zk_scram_znode_salted(mech: SaslMech, password: &str, salt: &[u8]) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    let salted =
        crate::health::kafka::salted_password(scram(mech), password, salt, SCRAM_ITERATIONS);
    let (stored, server) = crate::health::kafka::server_keys(scram(mech), &salted);
    format!(
        r#"{{"version":1,"config":{{"{}":"salt={},stored_key={},server_key={},iterations={SCRAM_ITERATIONS}"}}}}"#,
        mech.name(),
        b64.encode(salt),
        b64.encode(stored),
        b64.encode(server),
    )
}

pub fn scram(m: SaslMech) -> SaslMechanism {
    match m {
        SaslMech::ScramSha256 => SaslMechanism::ScramSha256,
        SaslMech::ScramSha512 => SaslMechanism::ScramSha512,
    }
}

/// What a command renews beyond what has expired or changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Renew {
    #[default]
    AsNeeded,
    /// `certs rotate`: every host certificate, from the CA that issues now.
    HostCertificates,
    /// `certs rotate --ca`: the next stage of the CA's rotation.
    Ca,
}

/// The managed CA's name: the inventory's (its subject says which cluster it is for).
fn ca_name(inv: &Inventory) -> String {
    inv.file
        .file_stem()
        .map_or("cluster".into(), |s| s.to_string_lossy().into_owned())
}

/// Loads and installs the material and the client's listener settings for this command.
/// Returns what loading decided, for the command to print.
pub fn prepare(inv: &Inventory, renew: Renew) -> Result<Vec<String>> {
    if inv.security.is_none() {
        return Ok(vec![]);
    }
    let m = Material::load(inv, renew)?;
    crate::health::kafka::install_auth(m.listener_auth(inv)?);
    if let Some(cfg) = m.zookeeper_tls(inv)? {
        crate::health::zookeeper::install_tls(cfg);
    }
    let notes = m.notes.clone();
    install(m);
    Ok(notes)
}

pub fn ensure_secured(inv: &Inventory) -> Result<&crate::inventory::Security> {
    match &inv.security {
        Some(s) => Ok(s),
        None => bail!(
            "{} has no security section: the cluster has no TLS or users",
            inv.file.display()
        ),
    }
}

/// `certs ca`: the CA certificate clients trust, on stdout (never the key).
pub fn print_ca(inv: &Inventory) -> Result<()> {
    let sec = ensure_secured(inv)?;
    match &sec.tls {
        None => bail!("security.tls is not set: there is no CA"),
        Some(Tls::Managed { dir, validity_days }) => {
            let (cas, writes) = crate::pki::load_cas(dir, *validity_days, &ca_name(inv))?;
            crate::pki::commit(&writes)?;
            if !writes.is_empty() {
                eprintln!("a new cluster CA in {} (key mode 0600)", dir.display());
            }
            for ca in cas.trusted() {
                print!("{}", ca.cert_pem);
            }
        }
        Some(Tls::Provided { ca_file, .. }) => {
            let pem = std::fs::read_to_string(ca_file)
                .with_context(|| format!("security.tls.ca_file {}", ca_file.display()))?;
            print!("{pem}");
        }
    }
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientFormat {
    /// Java clients' properties (`--command-config`, `--producer.config`).
    Java,
    /// librdkafka's `key=value` file (`kcat -F`).
    Librdkafka,
}

/// `client-config`: a client's settings for `user`, written 0600 (it holds the password), and
/// the CA it trusts beside it as `<out>.ca.pem`. Returns what was written.
pub fn client_config(
    inv: &Inventory,
    user: &str,
    format: ClientFormat,
    out: &std::path::Path,
) -> Result<String> {
    let sec = ensure_secured(inv)?;
    let u = inv.users.iter().find(|u| u.name == user).ok_or_else(|| {
        anyhow!(
            "no user {user:?} under users in {}; declared: {}",
            inv.file.display(),
            inv.users
                .iter()
                .map(|u| u.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )
    })?;
    let m = Material::load(inv, Renew::AsNeeded)?;
    // The CA the file trusts must be the one the hosts will get.
    m.commit()?;
    let protocol = sec.client.protocol;
    let bootstrap = inv
        .kafka_hosts()
        .map(|h| format!("{}:{}", h.client_address(), inv.kafka.port))
        .collect::<Vec<_>>()
        .join(",");
    let ca_path = {
        let mut p = out.as_os_str().to_os_string();
        p.push(".ca.pem");
        std::path::PathBuf::from(p)
    };
    let ca_abs = std::path::absolute(&ca_path).unwrap_or(ca_path.clone());
    let ca_str = ca_abs.to_string_lossy().into_owned();
    let mut lines: Vec<(String, String)> = vec![
        ("bootstrap.servers".into(), bootstrap),
        ("security.protocol".into(), protocol.name().into()),
    ];
    let pw = m.password(&u.name)?;
    match format {
        ClientFormat::Java => {
            if protocol.sasl() {
                lines.push(("sasl.mechanism".into(), u.mechanism.name().into()));
                lines.push((
                    "sasl.jaas.config".into(),
                    format!(
                        "org.apache.kafka.common.security.scram.ScramLoginModule required username={} password={};",
                        crate::quote::jaas(&u.name),
                        crate::quote::jaas(pw)
                    ),
                ));
            }
            if protocol.tls() {
                lines.push(("ssl.truststore.type".into(), "PEM".into()));
                lines.push(("ssl.truststore.location".into(), ca_str.clone()));
            }
        }
        ClientFormat::Librdkafka => {
            if protocol.sasl() {
                lines.push(("sasl.mechanisms".into(), u.mechanism.name().into()));
                lines.push(("sasl.username".into(), u.name.clone()));
                lines.push(("sasl.password".into(), pw.to_string()));
            }
            if protocol.tls() {
                lines.push(("ssl.ca.location".into(), ca_str.clone()));
            }
        }
    }
    let text: String = lines
        .iter()
        .map(|(k, v)| match format {
            ClientFormat::Java => format!(
                "{}={}\n",
                crate::quote::prop_key(k),
                crate::quote::prop_value(v)
            ),
            // librdkafka reads the rest of the line as the value, as is.
            ClientFormat::Librdkafka => format!("{k}={v}\n"),
        })
        .collect();
    let mut wrote = vec![];
    if protocol.tls() {
        crate::pki::write_atomic(&ca_path, m.trust_pem().as_bytes(), 0o644)?;
        wrote.push(format!("{} (the CA, public)", ca_path.display()));
    }
    crate::pki::write_atomic(out, text.as_bytes(), 0o600)?;
    wrote.insert(
        0,
        format!("{} (mode 0600: holds {user}'s password)", out.display()),
    );
    Ok(format!("wrote {}", wrote.join(" and ")))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7677's credential in the form Kafka's ScramCredentialUtils reads from ZooKeeper.
    #[test]
    fn zookeeper_credential_holds_the_keys_not_the_password() {
        use base64::Engine;
        let salt = base64::engine::general_purpose::STANDARD
            .decode("W22ZaJ0SNY7soEsUEjb6gQ==")
            .unwrap();
        let z = zk_scram_znode_salted(SaslMech::ScramSha256, "pencil", &salt);
        assert_eq!(
            z,
            r#"{"version":1,"config":{"SCRAM-SHA-256":"salt=W22ZaJ0SNY7soEsUEjb6gQ==,stored_key=WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=,server_key=wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=,iterations=4096"}}"#
        );
        let fresh = zk_scram_znode(SaslMech::ScramSha512, "pencil").unwrap();
        assert!(fresh.contains(r#""SCRAM-SHA-512":"salt="#) && !fresh.contains("pencil"));
        assert_ne!(
            fresh,
            zk_scram_znode(SaslMech::ScramSha512, "pencil").unwrap()
        );
    }
}
