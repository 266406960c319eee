//! The cluster CA clusterctl manages on the operator's machine, and the host certificates it
//! issues: ECDSA P-256, PEM, keys as unencrypted PKCS#8 (what Kafka's PEM key store reads).
//! Files are written atomically with their final mode from the start; keys are 0600 and never
//! printed (the types' Debug leaves them out).

use std::fmt;
use std::io::Write;
use std::net::IpAddr;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, anyhow, bail, ensure};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, PKCS_ECDSA_P256_SHA256, SanType, SerialNumber,
};
use time::OffsetDateTime;
use x509_parser::prelude::{FromDer, GeneralName, ParsedExtension, X509Certificate};

/// Host certificates are renewed inside their last this many days.
pub const RENEW_WITHIN_DAYS: u64 = 30;

/// Clocks of hosts and clients may lag this machine's: certificates start this much earlier.
const SKEW: Duration = Duration::from_secs(3600);

pub struct Ca {
    pub cert_pem: String,
    key_pem: String,
}

impl fmt::Debug for Ca {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ca").finish_non_exhaustive()
    }
}

pub struct HostCert {
    pub cert_pem: String,
    pub key_pem: String,
    pub not_after: SystemTime,
}

impl fmt::Debug for HostCert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HostCert")
            .field("not_after", &self.not_after)
            .finish_non_exhaustive()
    }
}

fn to_offset(t: SystemTime) -> OffsetDateTime {
    OffsetDateTime::from(t)
}

fn days(n: u32) -> Duration {
    Duration::from_secs(u64::from(n) * 86_400)
}

/// The CA in `dir` (`ca.crt`, `ca.key`), created when neither exists.
pub fn load_or_create_ca(dir: &Path, validity_days: u32, name: &str) -> Result<(Ca, bool)> {
    if let Some(ca) = load_ca(dir)? {
        return Ok((ca, false));
    }
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
    let now = SystemTime::now();
    let mut params = CertificateParams::default();
    params
        .distinguished_name
        .push(DnType::CommonName, format!("clusterctl CA {name}"));
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params.not_before = to_offset(now - SKEW);
    params.not_after = to_offset(now + days(validity_days));
    params.serial_number = Some(serial()?);
    let cert = params.self_signed(&key)?;
    private_dir(dir)?;
    // The key first: a crash between the two leaves a key without a certificate, which
    // load_ca reports, rather than a certificate nobody can sign with.
    write_atomic(&dir.join("ca.key"), key.serialize_pem().as_bytes(), 0o600)?;
    write_atomic(&dir.join("ca.crt"), cert.pem().as_bytes(), 0o644)?;
    Ok((
        Ca {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        },
        true,
    ))
}

/// The CA in `dir`, if there is one; half of one is an error.
pub fn load_ca(dir: &Path) -> Result<Option<Ca>> {
    let (crt, key) = (dir.join("ca.crt"), dir.join("ca.key"));
    match (crt.exists(), key.exists()) {
        (false, false) => Ok(None),
        (true, false) => bail!(
            "{} exists but {} does not: the CA cannot sign; restore the key, or move both \
             away to create a new CA (every host certificate is then reissued)",
            crt.display(),
            key.display()
        ),
        (false, true) => bail!(
            "{} exists but {} does not: restore the certificate, or move the key away to \
             create a new CA",
            key.display(),
            crt.display()
        ),
        (true, true) => {
            refuse_readable(&key)?;
            let cert_pem = std::fs::read_to_string(&crt)
                .with_context(|| format!("reading {}", crt.display()))?;
            let key_pem = std::fs::read_to_string(&key)
                .with_context(|| format!("reading {}", key.display()))?;
            let ca = Ca { cert_pem, key_pem };
            ensure!(
                key_matches(&ca.cert_pem, &ca.key_pem).unwrap_or(false),
                "{} is not the key of {}",
                key.display(),
                crt.display()
            );
            Ok(Some(ca))
        }
    }
}

/// A key file others can read is refused: it would already have leaked.
fn refuse_readable(path: &Path) -> Result<()> {
    let mode = std::fs::metadata(path)
        .with_context(|| format!("reading {}", path.display()))?
        .permissions()
        .mode();
    ensure!(
        mode & 0o077 == 0,
        "{} is readable by others (mode {:o}); run `chmod 600 {}`",
        path.display(),
        mode & 0o777,
        path.display()
    );
    Ok(())
}

fn host_paths(dir: &Path, host: &str) -> Result<(PathBuf, PathBuf)> {
    ensure!(
        !host.is_empty()
            && host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            && !host.starts_with('.'),
        "host name {host:?} cannot name a certificate file"
    );
    let d = dir.join("hosts");
    Ok((d.join(format!("{host}.crt")), d.join(format!("{host}.key"))))
}

/// `host`'s certificate for exactly `sans`, reused while valid; else a new one. Returns the
/// reason it was issued, if it was.
pub fn ensure_host_cert(
    dir: &Path,
    ca: &Ca,
    host: &str,
    sans: &[String],
    validity_days: u32,
    now: SystemTime,
) -> Result<(HostCert, Option<String>)> {
    let (crt, key) = host_paths(dir, host)?;
    let reason = match (std::fs::read_to_string(&crt), std::fs::read_to_string(&key)) {
        (Ok(c), Ok(k)) => match reissue_reason(&c, &k, ca, sans, now) {
            None => {
                refuse_readable(&key)?;
                let not_after = not_after_pem(&c)?;
                return Ok((
                    HostCert {
                        cert_pem: c,
                        key_pem: k,
                        not_after,
                    },
                    None,
                ));
            }
            Some(r) => r,
        },
        _ => "no certificate yet".to_string(),
    };
    let cert = issue(ca, sans, validity_days, now)?;
    private_dir(dir)?;
    private_dir(&dir.join("hosts"))?;
    write_atomic(&key, cert.key_pem.as_bytes(), 0o600)?;
    write_atomic(&crt, cert.cert_pem.as_bytes(), 0o644)?;
    Ok((cert, Some(reason)))
}

/// A new certificate for `sans`, signed by `ca`: serverAuth and clientAuth (brokers are
/// clients of each other and of the controllers).
fn issue(ca: &Ca, sans: &[String], validity_days: u32, now: SystemTime) -> Result<HostCert> {
    ensure!(!sans.is_empty(), "a certificate needs at least one name");
    let ca_key = KeyPair::from_pem(&ca.key_pem).context("the CA key")?;
    let issuer = Issuer::from_ca_cert_pem(&ca.cert_pem, ca_key).context("the CA certificate")?;
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
    let mut params = CertificateParams::default();
    params.subject_alt_names = sans
        .iter()
        .map(|s| match s.parse::<IpAddr>() {
            Ok(ip) => Ok(SanType::IpAddress(ip)),
            Err(_) => Ok(SanType::DnsName(s.clone().try_into()?)),
        })
        .collect::<Result<Vec<_>, rcgen::Error>>()
        .with_context(|| format!("the names {sans:?}"))?;
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.distinguished_name.push(DnType::CommonName, &sans[0]);
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    params.use_authority_key_identifier_extension = true;
    let ca_end = not_after_pem(&ca.cert_pem)?;
    let end = (now + days(validity_days)).min(ca_end);
    params.not_before = to_offset(now - SKEW);
    params.not_after = to_offset(end);
    params.serial_number = Some(serial()?);
    let cert = params.signed_by(&key, &issuer)?;
    Ok(HostCert {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
        not_after: not_after_pem(&cert.pem())?,
    })
}

/// Why the pair on disk must not be used any longer; `None`: it is fine.
pub fn reissue_reason(
    cert_pem: &str,
    key_pem: &str,
    ca: &Ca,
    sans: &[String],
    now: SystemTime,
) -> Option<String> {
    let Ok(der) = pem_der(cert_pem) else {
        return Some("the certificate file does not parse".into());
    };
    let Ok((_, cert)) = X509Certificate::from_der(&der) else {
        return Some("the certificate file does not parse".into());
    };
    if !key_matches(cert_pem, key_pem).unwrap_or(false) {
        return Some("the key does not match the certificate".into());
    }
    if !signed_by(&cert, &ca.cert_pem) {
        return Some("signed by another CA".into());
    }
    let have = cert_sans(&cert);
    let mut want: Vec<String> = sans.iter().map(|s| normal(s)).collect();
    want.sort();
    want.dedup();
    if have != want {
        return Some(format!(
            "SANs differ (wanted {}; has {})",
            want.join(", "),
            have.join(", ")
        ));
    }
    let left = days_left(
        UNIX_EPOCH + Duration::from_secs(cert.validity().not_after.timestamp().max(0) as u64),
        now,
    );
    if left < RENEW_WITHIN_DAYS as i64 {
        return Some(format!("expires in {left} days"));
    }
    None
}

/// A SAN as compared: IPs in their canonical form, names lowercased.
fn normal(s: &str) -> String {
    match s.parse::<IpAddr>() {
        Ok(ip) => ip.to_string(),
        Err(_) => s.to_ascii_lowercase(),
    }
}

fn cert_sans(cert: &X509Certificate<'_>) -> Vec<String> {
    let mut out = Vec::new();
    for ext in cert.extensions() {
        if let ParsedExtension::SubjectAlternativeName(san) = ext.parsed_extension() {
            for n in &san.general_names {
                match n {
                    GeneralName::DNSName(d) => out.push(d.to_ascii_lowercase()),
                    GeneralName::IPAddress(b) => {
                        let ip = match b.len() {
                            4 => IpAddr::from(<[u8; 4]>::try_from(*b).unwrap()),
                            16 => IpAddr::from(<[u8; 16]>::try_from(*b).unwrap()),
                            _ => continue,
                        };
                        out.push(ip.to_string());
                    }
                    _ => {}
                }
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

/// Whether `cert`'s signature verifies with the public key of the CA in `ca_pem`.
fn signed_by(cert: &X509Certificate<'_>, ca_pem: &str) -> bool {
    let Ok(ca_der) = pem_der(ca_pem) else {
        return false;
    };
    let Ok((_, ca)) = X509Certificate::from_der(&ca_der) else {
        return false;
    };
    cert.issuer() == ca.subject() && cert.verify_signature(Some(ca.public_key())).is_ok()
}

/// Whether the private key in `key_pem` belongs to the certificate in `cert_pem`.
fn key_matches(cert_pem: &str, key_pem: &str) -> Result<bool> {
    let key = KeyPair::from_pem(key_pem).map_err(|_| anyhow!("the key does not parse"))?;
    let der = pem_der(cert_pem)?;
    let (_, cert) = X509Certificate::from_der(&der).map_err(|_| anyhow!("not a certificate"))?;
    Ok(cert.public_key().subject_public_key.data.as_ref() == key.public_key_raw())
}

/// The DER of the first certificate in a PEM text.
fn pem_der(pem: &str) -> Result<Vec<u8>> {
    let (_, p) = x509_parser::pem::parse_x509_pem(pem.as_bytes())
        .map_err(|_| anyhow!("no PEM certificate"))?;
    ensure!(
        p.label == "CERTIFICATE",
        "PEM block is a {}, not a CERTIFICATE",
        p.label
    );
    Ok(p.contents)
}

pub fn not_after_der(der: &[u8]) -> Result<SystemTime> {
    let (_, cert) =
        X509Certificate::from_der(der).map_err(|e| anyhow!("not a certificate: {e}"))?;
    let t = cert.validity().not_after.timestamp();
    Ok(UNIX_EPOCH + Duration::from_secs(t.max(0) as u64))
}

pub fn not_after_pem(pem: &str) -> Result<SystemTime> {
    not_after_der(&pem_der(pem)?)
}

/// Whole days from `now` to `not_after`; negative once expired.
pub fn days_left(not_after: SystemTime, now: SystemTime) -> i64 {
    match not_after.duration_since(now) {
        Ok(d) => (d.as_secs() / 86_400) as i64,
        Err(e) => -(e.duration().as_secs().div_ceil(86_400) as i64),
    }
}

/// An operator's certificate: its key, a CA that signed it, and every name it must carry.
pub fn check_provided(
    cert_pem: &str,
    key_pem: &str,
    ca_pems: &[String],
    sans: &[String],
) -> Result<()> {
    let der = pem_der(cert_pem).context("the certificate")?;
    let (_, cert) = X509Certificate::from_der(&der).map_err(|e| anyhow!("the certificate: {e}"))?;
    ensure!(
        key_matches(cert_pem, key_pem).context("the key (PKCS#8 PEM, unencrypted)")?,
        "the key does not belong to the certificate"
    );
    ensure!(
        ca_pems.iter().any(|ca| signed_by(&cert, ca)),
        "the certificate is not signed by the CA in security.tls.ca_file"
    );
    let have = cert_sans(&cert);
    let missing: Vec<String> = sans
        .iter()
        .map(|s| normal(s))
        .filter(|s| !have.contains(s))
        .collect();
    ensure!(
        missing.is_empty(),
        "the certificate lacks the names {} (it has {})",
        missing.join(", "),
        have.join(", ")
    );
    Ok(())
}

fn serial() -> Result<SerialNumber> {
    let mut b = [0u8; 16];
    aws_lc_rs::rand::fill(&mut b).map_err(|_| anyhow!("no random bytes for a serial number"))?;
    b[0] &= 0x7f; // positive
    Ok(SerialNumber::from_slice(&b))
}

/// `dir` and its parents, created mode 0700 (where keys and passwords live).
pub fn private_dir(dir: &Path) -> Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("creating {}", dir.display()))
}

/// Writes `path` via a temp file in the same directory, created with `mode` (never briefly
/// readable by others), synced, renamed: a crash leaves the old file or the new one.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().map_or("x".into(), |n| n.to_string_lossy());
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    let r = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(mode))?;
        std::fs::rename(&tmp, path)
    })();
    if r.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    r.with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_ca_is_made_once_with_private_key_files() {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path().join("pki");
        let (ca, created) = load_or_create_ca(&dir, 365, "lab").unwrap();
        assert!(created);
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&dir.join("ca.key")), 0o600);
        assert_eq!(mode(&dir.join("ca.crt")), 0o644);
        let (again, created) = load_or_create_ca(&dir, 365, "lab").unwrap();
        assert!(!created);
        assert_eq!(again.cert_pem, ca.cert_pem);
        let der = pem_der(&ca.cert_pem).unwrap();
        let (_, c) = X509Certificate::from_der(&der).unwrap();
        assert!(c.is_ca());
        assert_eq!(
            c.subject()
                .iter_common_name()
                .next()
                .unwrap()
                .as_str()
                .unwrap(),
            "clusterctl CA lab"
        );
        let left = days_left(not_after_pem(&ca.cert_pem).unwrap(), SystemTime::now());
        assert!((363..=365).contains(&left), "{left}");
        assert!(!format!("{ca:?}").contains("PRIVATE"));
    }

    #[test]
    fn half_a_ca_and_a_readable_key_are_refused() {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path().to_path_buf();
        load_or_create_ca(&dir, 365, "x").unwrap();
        std::fs::set_permissions(dir.join("ca.key"), std::fs::Permissions::from_mode(0o640))
            .unwrap();
        let e = load_ca(&dir).unwrap_err().to_string();
        assert!(
            e.contains("readable by others") && e.contains("chmod 600"),
            "{e}"
        );
        std::fs::remove_file(dir.join("ca.crt")).unwrap();
        let e = load_or_create_ca(&dir, 365, "x").unwrap_err().to_string();
        assert!(e.contains("ca.crt does not"), "{e}");
    }

    #[test]
    fn host_certificates_carry_exactly_their_names() {
        let d = tempfile::tempdir().unwrap();
        let (ca, _) = load_or_create_ca(d.path(), 365, "x").unwrap();
        let now = SystemTime::now();
        let sans = names(&["10.0.0.5", "kafka1", "Kafka1.Example.com"]);
        let (c, why) = ensure_host_cert(d.path(), &ca, "kafka1", &sans, 90, now).unwrap();
        assert_eq!(why.as_deref(), Some("no certificate yet"));
        let der = pem_der(&c.cert_pem).unwrap();
        let (_, x) = X509Certificate::from_der(&der).unwrap();
        assert_eq!(
            cert_sans(&x),
            names(&["10.0.0.5", "kafka1", "kafka1.example.com"])
        );
        // The address is an IP SAN, not a DNS name "10.0.0.5".
        let ip_sans = x
            .subject_alternative_name()
            .unwrap()
            .unwrap()
            .value
            .general_names
            .iter()
            .filter(|n| matches!(n, GeneralName::IPAddress(_)))
            .count();
        assert_eq!(ip_sans, 1);
        assert!(signed_by(&x, &ca.cert_pem));
        assert_eq!(mode(&d.path().join("hosts/kafka1.key")), 0o600);
        assert!(!format!("{c:?}").contains("PRIVATE"));
        let left = days_left(c.not_after, now);
        assert!((89..=90).contains(&left), "{left}");

        // Unchanged: the same files. Another name: a new certificate, saying why.
        let (same, why) = ensure_host_cert(d.path(), &ca, "kafka1", &sans, 90, now).unwrap();
        assert_eq!((same.cert_pem.as_str(), why), (c.cert_pem.as_str(), None));
        let moved = names(&["10.0.0.6", "kafka1"]);
        let (n, why) = ensure_host_cert(d.path(), &ca, "kafka1", &moved, 90, now).unwrap();
        assert!(
            why.unwrap()
                .starts_with("SANs differ (wanted 10.0.0.6, kafka1;")
        );
        assert_ne!(n.cert_pem, c.cert_pem);
        assert!(ensure_host_cert(d.path(), &ca, "../x", &moved, 90, now).is_err());
    }

    #[test]
    fn another_ca_or_near_expiry_reissues() {
        let d = tempfile::tempdir().unwrap();
        let (ca, _) = load_or_create_ca(&d.path().join("a"), 365, "a").unwrap();
        let (other, _) = load_or_create_ca(&d.path().join("b"), 365, "b").unwrap();
        let now = SystemTime::now();
        let sans = names(&["10.0.0.5"]);
        let c = issue(&ca, &sans, 10, now).unwrap();
        assert_eq!(
            reissue_reason(&c.cert_pem, &c.key_pem, &ca, &sans, now).as_deref(),
            Some("expires in 9 days")
        );
        let c = issue(&ca, &sans, 300, now).unwrap();
        assert_eq!(
            reissue_reason(&c.cert_pem, &c.key_pem, &ca, &sans, now),
            None
        );
        assert_eq!(
            reissue_reason(&c.cert_pem, &c.key_pem, &other, &sans, now).as_deref(),
            Some("signed by another CA")
        );
        let foreign = issue(&ca, &sans, 300, now).unwrap();
        assert_eq!(
            reissue_reason(&c.cert_pem, &foreign.key_pem, &ca, &sans, now).as_deref(),
            Some("the key does not match the certificate")
        );
        // Never beyond the CA's own end.
        let long = issue(&ca, &sans, 3650, now).unwrap();
        assert!(long.not_after <= not_after_pem(&ca.cert_pem).unwrap());
    }

    #[test]
    fn provided_certificates_are_checked() {
        let d = tempfile::tempdir().unwrap();
        let (ca, _) = load_or_create_ca(&d.path().join("a"), 365, "a").unwrap();
        let (other, _) = load_or_create_ca(&d.path().join("b"), 365, "b").unwrap();
        let now = SystemTime::now();
        let c = issue(&ca, &names(&["10.0.0.5", "kafka1", "extra"]), 300, now).unwrap();
        let cas = [ca.cert_pem.clone()];
        check_provided(
            &c.cert_pem,
            &c.key_pem,
            &cas,
            &names(&["kafka1", "10.0.0.5"]),
        )
        .unwrap();
        let e = check_provided(&c.cert_pem, &c.key_pem, &cas, &names(&["kafka2"]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("lacks the names kafka2"), "{e}");
        let e = check_provided(
            &c.cert_pem,
            &c.key_pem,
            std::slice::from_ref(&other.cert_pem),
            &[],
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("not signed by the CA"), "{e}");
        let k2 = issue(&ca, &names(&["x"]), 300, now).unwrap().key_pem;
        let e = format!(
            "{:#}",
            check_provided(&c.cert_pem, &k2, &cas, &[]).unwrap_err()
        );
        assert!(e.contains("does not belong"), "{e}");
    }

    #[test]
    fn days_left_counts_whole_days_and_goes_negative() {
        let now = UNIX_EPOCH + Duration::from_secs(1_000_000_000);
        assert_eq!(days_left(now + Duration::from_secs(86_400 * 3 + 5), now), 3);
        assert_eq!(days_left(now - Duration::from_secs(10), now), -1);
    }
}
