//! What `security:` adds to a Kafka node's files: named listeners with their protocols, the
//! PEM key store and trust store, the SASL login modules (passwords inside, so only in files
//! of mode 0640 for the service's group), and the authorizer with its super users.

use super::{ACL_AUTHORIZER, ManagedFile, STANDARD_AUTHORIZER, ServiceDef};
use crate::inventory::security::{BROKER, CLIENT, CONTROLLER};
use crate::inventory::{Host, Inventory, Security};
use crate::quote::jaas;
use crate::security::Material;
use anyhow::Result;

/// The listener lines and extra properties of one Kafka node.
pub struct Listeners {
    pub protocol_map: String,
    pub listeners: String,
    pub advertised: String,
    pub inter_broker: String,
    pub extra: Vec<(String, String)>,
}

const SCRAM: &str = "org.apache.kafka.common.security.scram.ScramLoginModule required";
const PLAIN: &str = "org.apache.kafka.common.security.plain.PlainLoginModule required";

/// Where a node keeps its key store (private key + chain) and trust store.
pub fn keystore_path(svc: &ServiceDef) -> String {
    format!("/etc/{}/tls/server.pem", svc.name)
}

pub fn truststore_path(svc: &ServiceDef) -> String {
    format!("/etc/{}/tls/ca.pem", svc.name)
}

/// Whether a managed file is a node's key store or trust store (what `certs rotate` changes):
/// Kafka's, a side controller's or ZooKeeper's.
pub fn is_tls_file(path: &str) -> bool {
    let mut parts = path.rsplit('/');
    matches!(parts.next(), Some("server.pem" | "ca.pem"))
        && parts.next() == Some("tls")
        && parts
            .next()
            .is_some_and(|s| s.starts_with("kafka") || s == "zookeeper")
        && parts.next() == Some("etc")
}

pub fn listeners(
    inv: &Inventory,
    host: &Host,
    sec: &Security,
    m: &Material,
    svc: &ServiceDef,
) -> Result<Listeners> {
    let k = &inv.kafka;
    let map = sec
        .listeners()
        .iter()
        .map(|(n, l)| format!("{n}:{}", l.protocol.name()))
        .collect::<Vec<_>>()
        .join(",");
    let mut listeners = Vec::new();
    let mut advertised = Vec::new();
    if host.in_kafka {
        listeners.push(format!("{CLIENT}://{}:{}", host.address, k.port));
        advertised.push(format!("{CLIENT}://{}:{}", host.client_address(), k.port));
        if let Some(ib) = sec.inter_broker {
            listeners.push(format!("{BROKER}://{}:{}", host.address, ib.port));
            advertised.push(format!("{BROKER}://{}:{}", host.address, ib.port));
        }
    }
    if host.in_controller {
        listeners.push(format!(
            "{CONTROLLER}://{}:{}",
            host.address, k.controller_port
        ));
    }

    let mut extra: Vec<(String, String)> = Vec::new();
    let mut put = |k: &str, v: String| extra.push((k.to_string(), v));
    if sec.any_tls() {
        put("ssl.keystore.type", "PEM".into());
        put("ssl.keystore.location", keystore_path(svc));
        put("ssl.truststore.type", "PEM".into());
        put("ssl.truststore.location", truststore_path(svc));
    }
    let ib = sec.inter_broker_listener();
    let ib_name = sec.inter_broker_name().to_ascii_lowercase();
    let mech = sec.sasl_mechanism.name();
    if sec.client.protocol.sasl() {
        // Users may have either SCRAM mechanism; the server side needs no options.
        put(
            "listener.name.client.sasl.enabled.mechanisms",
            "SCRAM-SHA-256,SCRAM-SHA-512".into(),
        );
        if sec.inter_broker.is_some() || !ib.protocol.sasl() {
            for m in ["scram-sha-256", "scram-sha-512"] {
                put(
                    &format!("listener.name.client.{m}.sasl.jaas.config"),
                    format!("{SCRAM};"),
                );
            }
        }
    }
    if ib.protocol.sasl() {
        let user = sec.inter_broker_user.as_deref().unwrap_or_default();
        let login = format!(
            "{SCRAM} username={} password={};",
            jaas(user),
            jaas(m.password(user)?)
        );
        if sec.inter_broker.is_some() {
            put(
                &format!("listener.name.{ib_name}.sasl.enabled.mechanisms"),
                mech.into(),
            );
            put(
                &format!(
                    "listener.name.{ib_name}.{}.sasl.jaas.config",
                    mech.to_ascii_lowercase()
                ),
                login,
            );
        } else {
            // One listener for clients and brokers: the brokers' login under both mechanisms'
            // names (the server side ignores username and password).
            for m in ["SCRAM-SHA-256", "SCRAM-SHA-512"] {
                let line = if m == mech {
                    login.clone()
                } else {
                    format!("{SCRAM};")
                };
                put(
                    &format!(
                        "listener.name.client.{}.sasl.jaas.config",
                        m.to_ascii_lowercase()
                    ),
                    line,
                );
            }
        }
        put("sasl.mechanism.inter.broker.protocol", mech.into());
    }
    if sec.controller.is_some_and(|c| c.protocol.sasl()) {
        // KRaft's controller listener cannot use SCRAM (its credentials live in the metadata
        // the controllers serve): PLAIN, with the accepted users in the login module itself.
        let user = sec.inter_broker_user.as_deref().unwrap_or_default();
        let pw = m.password(user)?;
        let mut login = format!("{PLAIN} username={} password={}", jaas(user), jaas(pw));
        login.push_str(&format!(" user_{user}={}", jaas(pw)));
        if let Some(admin) = &sec.admin_user {
            login.push_str(&format!(" user_{admin}={}", jaas(m.password(admin)?)));
        }
        login.push(';');
        put(
            "listener.name.controller.sasl.enabled.mechanisms",
            "PLAIN".into(),
        );
        put("listener.name.controller.plain.sasl.jaas.config", login);
        put("sasl.mechanism.controller.protocol", "PLAIN".into());
    }
    if sec.zookeeper_tls && !k.kraft {
        // Kafka's ZooKeeper client (2.5+): Netty with TLS, the host's certificate as its own.
        put("zookeeper.ssl.client.enable", "true".into());
        put(
            "zookeeper.clientCnxnSocket",
            "org.apache.zookeeper.ClientCnxnSocketNetty".into(),
        );
        put("zookeeper.ssl.keystore.location", keystore_path(svc));
        put("zookeeper.ssl.keystore.type", "PEM".into());
        put("zookeeper.ssl.truststore.location", truststore_path(svc));
        put("zookeeper.ssl.truststore.type", "PEM".into());
    }
    if sec.any_sasl() {
        // ZooKeeper mode keeps ACLs in ZooKeeper (AclAuthorizer), KRaft in the metadata log.
        let authorizer = match k.kraft {
            true => STANDARD_AUTHORIZER,
            false => ACL_AUTHORIZER,
        };
        put("authorizer.class.name", authorizer.into());
        let supers = [&sec.admin_user, &sec.inter_broker_user]
            .into_iter()
            .flatten()
            .map(|u| format!("User:{u}"))
            .collect::<Vec<_>>()
            .join(";");
        put("super.users", supers);
    }
    Ok(Listeners {
        protocol_map: map,
        listeners: listeners.join(","),
        advertised: advertised.join(","),
        inter_broker: sec.inter_broker_name().into(),
        extra,
    })
}

/// The key store (secret: mode 0640 for the service's group) and the trust store.
pub fn tls_files(
    host: &Host,
    sec: &Security,
    m: &Material,
    svc: &ServiceDef,
) -> Result<Vec<ManagedFile>> {
    if !sec.any_tls() {
        return Ok(vec![]);
    }
    let t = m.host_tls(&host.name)?;
    let mut key = super::config_file(
        &keystore_path(svc),
        format!("{}{}", t.key_pem, t.cert_pem),
        svc,
    );
    key.secret = true;
    let mut trust = super::config_file(&truststore_path(svc), m.trust_pem(), svc);
    trust.mode = 0o644;
    Ok(vec![key, trust])
}

#[cfg(test)]
mod tests {
    #[test]
    fn tls_files_are_the_key_and_trust_stores_only() {
        for p in [
            "/etc/kafka/tls/server.pem",
            "/etc/kafka-controller/tls/ca.pem",
            "/etc/zookeeper/tls/ca.pem",
        ] {
            assert!(super::is_tls_file(p), "{p}");
        }
        for p in [
            "/etc/kafka/server.properties",
            "/etc/kafka/tls/other.pem",
            "/etc/zookeeper/zoo.cfg",
            "/etc/zookeeperx/tls/ca.pem",
            "/tmp/etc/kafka/tls/ca.pem/x",
            "ca.pem",
        ] {
            assert!(!super::is_tls_file(p), "{p}");
        }
    }
}
