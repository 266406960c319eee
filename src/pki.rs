//! The cluster CA clusterctl manages on the operator's machine, the host certificates it
//! issues, and the CA's rotation: ECDSA P-256, PEM, keys as unencrypted PKCS#8 (what Kafka's
//! PEM key store reads). Loading decides; nothing is written until the command commits its
//! [`Write`]s, just before it touches a host. Files are written atomically with their final
//! mode from the start; keys are 0600 and never printed (the types' Debug leaves them out).

use std::fmt;
use std::io::Write as _;
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

/// A CA lives this many times its host certificates' validity, so that renewing a host
/// certificate is never cut short by the CA's own end (which only `certs rotate --ca` moves).
pub const CA_LIFETIMES: u32 = 10;

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

/// A file of the managed CA's directory to write (or, `bytes: None`, to remove), once the
/// command commits.
pub struct Write {
    pub path: PathBuf,
    bytes: Option<Vec<u8>>,
    mode: u32,
}

impl fmt::Debug for Write {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Write")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl Write {
    fn file(path: PathBuf, bytes: &str, mode: u32) -> Write {
        Write {
            path,
            bytes: Some(bytes.as_bytes().to_vec()),
            mode,
        }
    }
}

/// Makes `writes`, in order (a key before its certificate: a crash between them leaves a key
/// without a certificate, which loading reports, not a certificate nobody can sign with).
pub fn commit(writes: &[Write]) -> Result<()> {
    for w in writes {
        if let Some(parent) = w.path.parent() {
            private_dir(parent)?;
        }
        match &w.bytes {
            Some(b) => write_atomic(&w.path, b, w.mode)?,
            None => match std::fs::remove_file(&w.path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e).with_context(|| format!("removing {}", w.path.display())),
            },
        }
    }
    Ok(())
}

fn to_offset(t: SystemTime) -> OffsetDateTime {
    OffsetDateTime::from(t)
}

fn days(n: u32) -> Duration {
    Duration::from_secs(u64::from(n) * 86_400)
}

/// A new self-signed CA valid for `CA_LIFETIMES * validity_days`.
fn new_ca(validity_days: u32, name: &str) -> Result<Ca> {
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
    let now = SystemTime::now();
    let mut params = CertificateParams::default();
    params
        .distinguished_name
        .push(DnType::CommonName, format!("clusterctl CA {name}"));
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params.not_before = to_offset(now - SKEW);
    params.not_after = to_offset(now + days(validity_days.saturating_mul(CA_LIFETIMES)));
    params.serial_number = Some(serial()?);
    let cert = params.self_signed(&key)?;
    Ok(Ca {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    })
}

fn ca_writes(dir: &Path, ca: &Ca) -> Vec<Write> {
    vec![
        Write::file(dir.join("ca.key"), &ca.key_pem, 0o600),
        Write::file(dir.join("ca.crt"), &ca.cert_pem, 0o644),
    ]
}

/// The CA in `dir` (`ca.crt`, `ca.key`), or a new one with the writes that keep it.
pub fn ca_or_new(dir: &Path, validity_days: u32, name: &str) -> Result<(Ca, Vec<Write>)> {
    if let Some(ca) = load_ca(dir)? {
        return Ok((ca, vec![]));
    }
    let ca = new_ca(validity_days, name)?;
    let w = ca_writes(dir, &ca);
    Ok((ca, w))
}

/// [`ca_or_new`], written at once.
#[cfg(test)]
pub fn load_or_create_ca(dir: &Path, validity_days: u32, name: &str) -> Result<(Ca, bool)> {
    let (ca, w) = ca_or_new(dir, validity_days, name)?;
    commit(&w)?;
    Ok((ca, !w.is_empty()))
}

/// The CA in `dir`, if there is one; half of one is an error.
pub fn load_ca(dir: &Path) -> Result<Option<Ca>> {
    load_ca_files(&dir.join("ca.crt"), &dir.join("ca.key"))
}

fn load_ca_files(crt: &Path, key: &Path) -> Result<Option<Ca>> {
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
            refuse_readable(key)?;
            let cert_pem = std::fs::read_to_string(crt)
                .with_context(|| format!("reading {}", crt.display()))?;
            let key_pem = std::fs::read_to_string(key)
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

/// Where a CA rotation stands. Each stage is one roll of every host; a stage is `done` once
/// its roll finished, and only then may the next begin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// The new CA is trusted beside the old one; certificates are still the old CA's.
    Trust,
    /// Host certificates are issued by the new CA; both are still trusted.
    Issue,
    /// Only the new CA is trusted; the old one is being moved to `retired/`.
    Drop,
}

impl Stage {
    pub fn number(self) -> u8 {
        match self {
            Stage::Trust => 1,
            Stage::Issue => 2,
            Stage::Drop => 3,
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            Stage::Trust => "the new CA is trusted beside the old one",
            Stage::Issue => "host certificates are issued by the new CA (both CAs trusted)",
            Stage::Drop => "only the new CA is trusted (the old one is dropped)",
        }
    }

    fn word(self) -> &'static str {
        match self {
            Stage::Trust => "trust",
            Stage::Issue => "issue",
            Stage::Drop => "drop",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rotation {
    pub stage: Stage,
    pub done: bool,
    /// The name the old CA's files get in `retired/` (its serial number, hex).
    retired: String,
}

impl Rotation {
    fn text(&self) -> String {
        format!(
            "stage={} done={} retired={}\n",
            self.stage.word(),
            if self.done { "yes" } else { "no" },
            self.retired
        )
    }

    fn write(&self, dir: &Path) -> Write {
        Write::file(dir.join("rotation"), &self.text(), 0o644)
    }
}

/// The rotation recorded in `dir/rotation`, if one is under way.
pub fn rotation(dir: &Path) -> Result<Option<Rotation>> {
    let path = dir.join("rotation");
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    let bad = || anyhow!("{} does not parse: {:?}", path.display(), text.trim());
    let mut stage = None;
    let mut done = None;
    let mut retired = None;
    for word in text.split_whitespace() {
        match word.split_once('=').ok_or_else(bad)? {
            ("stage", "trust") => stage = Some(Stage::Trust),
            ("stage", "issue") => stage = Some(Stage::Issue),
            ("stage", "drop") => stage = Some(Stage::Drop),
            ("done", "yes") => done = Some(true),
            ("done", "no") => done = Some(false),
            ("retired", r) if !r.is_empty() && r.chars().all(|c| c.is_ascii_hexdigit()) => {
                retired = Some(r.to_string())
            }
            _ => return Err(bad()),
        }
    }
    Ok(Some(Rotation {
        stage: stage.ok_or_else(bad)?,
        done: done.ok_or_else(bad)?,
        retired: retired.ok_or_else(bad)?,
    }))
}

/// The managed CAs as they stand: the one in use, the incoming one during a rotation, and
/// which of them issues host certificates.
#[derive(Debug)]
pub struct CaSet {
    pub current: Ca,
    /// The incoming CA (stages Trust and Issue).
    pub next: Option<Ca>,
    pub rotation: Option<Rotation>,
}

impl CaSet {
    /// The CA that signs host certificates now.
    pub fn issuer(&self) -> &Ca {
        match (&self.rotation, &self.next) {
            (Some(r), Some(n)) if r.stage == Stage::Issue => n,
            _ => &self.current,
        }
    }

    /// The CAs hosts and clients trust, the current one first.
    pub fn trusted(&self) -> Vec<&Ca> {
        std::iter::once(&self.current).chain(&self.next).collect()
    }
}

/// The CAs in `dir`, creating the first one (as writes) when there is none. In stage Drop
/// the incoming CA's files are moved over the old ones file by file; each file is read from
/// `next/` while it is still there, so an interrupted move still loads the new CA.
pub fn load_cas(dir: &Path, validity_days: u32, name: &str) -> Result<(CaSet, Vec<Write>)> {
    let rotation = rotation(dir)?;
    let next_dir = dir.join("next");
    match rotation.as_ref().map(|r| r.stage) {
        None => {
            let (current, w) = ca_or_new(dir, validity_days, name)?;
            Ok((
                CaSet {
                    current,
                    next: None,
                    rotation,
                },
                w,
            ))
        }
        Some(Stage::Trust | Stage::Issue) => {
            let missing = |what: &Path| {
                anyhow!(
                    "{} records a CA rotation, but {} has no CA: restore it, or remove {} to \
                     abandon the rotation (then run `apply` to converge the hosts)",
                    dir.join("rotation").display(),
                    what.display(),
                    dir.join("rotation").display()
                )
            };
            let current = load_ca(dir)?.ok_or_else(|| missing(dir))?;
            let next = load_ca(&next_dir)?.ok_or_else(|| missing(&next_dir))?;
            Ok((
                CaSet {
                    current,
                    next: Some(next),
                    rotation,
                },
                vec![],
            ))
        }
        Some(Stage::Drop) => {
            let pick = |f: &str| {
                let n = next_dir.join(f);
                if n.exists() { n } else { dir.join(f) }
            };
            let current = load_ca_files(&pick("ca.crt"), &pick("ca.key"))?
                .ok_or_else(|| anyhow!("{} has no CA", dir.display()))?;
            Ok((
                CaSet {
                    current,
                    next: None,
                    rotation,
                },
                vec![],
            ))
        }
    }
}

/// `certs rotate --ca`: the next stage (or the unfinished one again), as the CAs it makes
/// and the writes that record it, with what it does.
pub fn advance(
    dir: &Path,
    set: CaSet,
    validity_days: u32,
    name: &str,
) -> Result<(CaSet, Vec<Write>, String)> {
    let mut writes = vec![];
    let set = match &set.rotation {
        Some(r) if !r.done => {
            let again = format!(
                "stage {} of 3 again (its roll did not finish): {}",
                r.stage.number(),
                r.stage.describe()
            );
            return Ok((set, writes, again));
        }
        None => {
            let next = new_ca(validity_days, name)?;
            writes.extend(ca_writes(&dir.join("next"), &next));
            let r = begin(
                dir,
                Stage::Trust,
                serial_hex(&set.current.cert_pem)?,
                &mut writes,
            );
            CaSet {
                current: set.current,
                next: Some(next),
                rotation: Some(r),
            }
        }
        Some(r) if r.stage == Stage::Trust => {
            let r = begin(dir, Stage::Issue, r.retired.clone(), &mut writes);
            CaSet {
                rotation: Some(r),
                ..set
            }
        }
        Some(r) if r.stage == Stage::Issue => {
            let r = begin(dir, Stage::Drop, r.retired.clone(), &mut writes);
            CaSet {
                current: set.next.context("stage Issue without the incoming CA")?,
                next: None,
                rotation: Some(r),
            }
        }
        Some(_) => bail!(
            "{} says stage 3 is done: remove it",
            dir.join("rotation").display()
        ),
    };
    let r = set.rotation.as_ref().unwrap();
    let what = format!("stage {} of 3: {}", r.stage.number(), r.stage.describe());
    Ok((set, writes, what))
}

/// A stage begun (not yet done), with the write that records it.
fn begin(dir: &Path, stage: Stage, retired: String, writes: &mut Vec<Write>) -> Rotation {
    let r = Rotation {
        stage,
        done: false,
        retired,
    };
    writes.push(r.write(dir));
    r
}

/// After a stage's roll: the stage is recorded as done; after stage Drop, the old CA moves to
/// `retired/`, the new one takes its place and the rotation ends. Safe to repeat.
pub fn finish(dir: &Path) -> Result<Option<Stage>> {
    let Some(mut r) = rotation(dir)? else {
        return Ok(None);
    };
    if r.stage != Stage::Drop {
        r.done = true;
        commit(&[r.write(dir)])?;
        return Ok(Some(r.stage));
    }
    let (next, retired) = (dir.join("next"), dir.join("retired"));
    private_dir(&retired)?;
    for (f, ext) in [("ca.crt", "crt"), ("ca.key", "key")] {
        let (top, new, old) = (
            dir.join(f),
            next.join(f),
            retired.join(format!("ca-{}.{ext}", r.retired)),
        );
        if !new.exists() {
            continue;
        }
        if top.exists() && !old.exists() {
            std::fs::rename(&top, &old)
                .with_context(|| format!("moving {} to {}", top.display(), old.display()))?;
        }
        if !top.exists() {
            std::fs::rename(&new, &top)
                .with_context(|| format!("moving {} to {}", new.display(), top.display()))?;
        }
    }
    if next.exists() {
        std::fs::remove_dir(&next).with_context(|| format!("removing {}", next.display()))?;
    }
    sync_dir(dir)?;
    commit(&[Write {
        path: dir.join("rotation"),
        bytes: None,
        mode: 0,
    }])?;
    sync_dir(dir)?;
    Ok(Some(Stage::Drop))
}

/// A CA certificate's serial number in hex (names its files once it is retired).
fn serial_hex(pem: &str) -> Result<String> {
    let der = pem_der(pem)?;
    let (_, cert) =
        X509Certificate::from_der(&der).map_err(|e| anyhow!("not a certificate: {e}"))?;
    let hex: String = cert
        .raw_serial()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    Ok(if hex.is_empty() { "0".into() } else { hex })
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

/// A file's text, `None` when there is no such file; any other failure is an error (an
/// unreadable certificate is not silently replaced).
fn read_if_exists(path: &Path) -> Result<Option<String>> {
    match std::fs::read_to_string(path) {
        Ok(t) => Ok(Some(t)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

/// `host`'s certificate for exactly `sans`: the one on disk while valid (unless `renew`), else
/// a new one from `ca` with the writes that keep it. Returns why it was issued, if it was.
pub fn host_cert(
    dir: &Path,
    ca: &Ca,
    host: &str,
    sans: &[String],
    validity_days: u32,
    now: SystemTime,
    renew: bool,
) -> Result<(HostCert, Option<String>, Vec<Write>)> {
    let (crt, key) = host_paths(dir, host)?;
    let reason = match (read_if_exists(&crt)?, read_if_exists(&key)?) {
        (Some(c), Some(k)) => match reissue_reason(&c, &k, ca, sans, now) {
            None if renew => "renewed by `certs rotate`".to_string(),
            None => {
                refuse_readable(&key)?;
                let not_after = not_after_pem(&c)?;
                let cert = HostCert {
                    cert_pem: c,
                    key_pem: k,
                    not_after,
                };
                return Ok((cert, None, vec![]));
            }
            Some(r) => r,
        },
        _ => "no certificate yet".to_string(),
    };
    let cert = issue(ca, sans, validity_days, now)?;
    let writes = vec![
        Write::file(key, &cert.key_pem, 0o600),
        Write::file(crt, &cert.cert_pem, 0o644),
    ];
    Ok((cert, Some(reason), writes))
}

/// [`host_cert`], written at once.
#[cfg(test)]
pub fn ensure_host_cert(
    dir: &Path,
    ca: &Ca,
    host: &str,
    sans: &[String],
    validity_days: u32,
    now: SystemTime,
) -> Result<(HostCert, Option<String>)> {
    let (c, why, w) = host_cert(dir, ca, host, sans, validity_days, now, false)?;
    commit(&w)?;
    Ok((c, why))
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
    let end = UNIX_EPOCH + Duration::from_secs(cert.validity().not_after.timestamp().max(0) as u64);
    let left = days_left(end, now);
    // Capped at the CA's own end, a new certificate would last no longer: renewing it on every
    // run would only churn the hosts (status warns about the CA instead).
    let ca_end = not_after_pem(&ca.cert_pem).unwrap_or(end);
    if left < RENEW_WITHIN_DAYS as i64 && end + Duration::from_secs(86_400) < ca_end {
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
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
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
    r.with_context(|| format!("writing {}", path.display()))?;
    sync_dir(dir)
}

/// Makes a rename in `dir` durable (a crash after it returns keeps the new name).
fn sync_dir(dir: &Path) -> Result<()> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("syncing {}", dir.display()))
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
        // Ten host lifetimes.
        let left = days_left(not_after_pem(&ca.cert_pem).unwrap(), SystemTime::now());
        assert!((3648..=3650).contains(&left), "{left}");
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

    fn stage_of(dir: &Path) -> Option<(Stage, bool)> {
        rotation(dir).unwrap().map(|r| (r.stage, r.done))
    }

    /// One `certs rotate --ca` run: decide, commit, (the roll), finish.
    fn rotate_once(dir: &Path, host: &str) -> (CaSet, HostCert, Option<Stage>) {
        let (set, w) = load_cas(dir, 100, "x").unwrap();
        assert!(w.is_empty(), "{w:?}");
        let (set, w, _) = advance(dir, set, 100, "x").unwrap();
        commit(&w).unwrap();
        let (cert, _, w) = host_cert(
            dir,
            set.issuer(),
            host,
            &names(&["n1"]),
            100,
            SystemTime::now(),
            false,
        )
        .unwrap();
        commit(&w).unwrap();
        (set, cert, finish(dir).unwrap())
    }

    #[test]
    fn a_ca_rotation_trusts_then_issues_then_drops() {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path().join("pki");
        let (old, _) = load_or_create_ca(&dir, 100, "x").unwrap();
        let (first, _) =
            ensure_host_cert(&dir, &old, "n1", &names(&["n1"]), 100, SystemTime::now()).unwrap();

        // Deciding writes nothing: a refused or dry run leaves the directory as it was.
        let (set, _) = load_cas(&dir, 100, "x").unwrap();
        let (_, w, what) = advance(&dir, set, 100, "x").unwrap();
        assert_eq!(
            what,
            "stage 1 of 3: the new CA is trusted beside the old one"
        );
        assert_eq!(w.len(), 3);
        assert!(!dir.join("next").exists() && stage_of(&dir).is_none());

        // 1: both trusted, the old CA still issues; host certificates stay.
        let (set, cert, done) = rotate_once(&dir, "n1");
        assert_eq!(done, Some(Stage::Trust));
        let new = set.next.as_ref().unwrap().cert_pem.clone();
        let trusted: Vec<&str> = set.trusted().iter().map(|c| c.cert_pem.as_str()).collect();
        assert_eq!(trusted, [old.cert_pem.as_str(), new.as_str()]);
        assert_eq!(set.issuer().cert_pem, old.cert_pem);
        assert_eq!(cert.cert_pem, first.cert_pem);
        assert_eq!(mode(&dir.join("next")), 0o700);
        assert_eq!(mode(&dir.join("next/ca.key")), 0o600);
        assert_eq!(stage_of(&dir), Some((Stage::Trust, true)));

        // 2: the new CA issues; both still trusted.
        let (set, cert, done) = rotate_once(&dir, "n1");
        assert_eq!(done, Some(Stage::Issue));
        assert_eq!(set.issuer().cert_pem, new);
        assert_eq!(set.trusted().len(), 2);
        assert!(
            reissue_reason(
                &cert.cert_pem,
                &cert.key_pem,
                set.issuer(),
                &names(&["n1"]),
                SystemTime::now()
            )
            .is_none()
        );
        assert_ne!(cert.cert_pem, first.cert_pem);

        // 3: only the new CA; the old one retired under its serial, the rotation over.
        let (set, again, done) = rotate_once(&dir, "n1");
        assert_eq!(done, Some(Stage::Drop));
        assert_eq!(set.trusted().len(), 1);
        assert_eq!(set.current.cert_pem, new);
        assert_eq!(again.cert_pem, cert.cert_pem);
        assert_eq!(load_ca(&dir).unwrap().unwrap().cert_pem, new);
        let serial = serial_hex(&old.cert_pem).unwrap();
        let retired = dir.join(format!("retired/ca-{serial}.crt"));
        assert_eq!(std::fs::read_to_string(&retired).unwrap(), old.cert_pem);
        assert_eq!(mode(&dir.join(format!("retired/ca-{serial}.key"))), 0o600);
        assert!(!dir.join("next").exists() && stage_of(&dir).is_none());
        // Finishing again is a no-op; the next `--ca` starts a new rotation.
        assert_eq!(finish(&dir).unwrap(), None);
    }

    #[test]
    fn an_unfinished_stage_is_run_again_and_an_interrupted_drop_completes() {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path().to_path_buf();
        let (old, _) = load_or_create_ca(&dir, 100, "x").unwrap();
        let (set, _) = load_cas(&dir, 100, "x").unwrap();
        let (_, w, _) = advance(&dir, set, 100, "x").unwrap();
        commit(&w).unwrap();
        // The roll failed: no finish. The next run repeats stage 1 with the same new CA.
        let (set, _) = load_cas(&dir, 100, "x").unwrap();
        let new = set.next.as_ref().unwrap().cert_pem.clone();
        let (set, w, what) = advance(&dir, set, 100, "x").unwrap();
        assert!(w.is_empty());
        assert!(what.starts_with("stage 1 of 3 again"), "{what}");
        assert_eq!(set.next.unwrap().cert_pem, new);
        finish(&dir).unwrap();
        for _ in 0..2 {
            let (set, _) = load_cas(&dir, 100, "x").unwrap();
            let (_, w, _) = advance(&dir, set, 100, "x").unwrap();
            commit(&w).unwrap();
            if stage_of(&dir) == Some((Stage::Issue, false)) {
                finish(&dir).unwrap();
            }
        }
        assert_eq!(stage_of(&dir), Some((Stage::Drop, false)));
        // Stage 3's move stopped after the certificate: the new CA still loads as current.
        let serial = serial_hex(&old.cert_pem).unwrap();
        std::fs::create_dir(dir.join("retired")).unwrap();
        std::fs::rename(
            dir.join("ca.crt"),
            dir.join(format!("retired/ca-{serial}.crt")),
        )
        .unwrap();
        std::fs::rename(dir.join("next/ca.crt"), dir.join("ca.crt")).unwrap();
        let (set, _) = load_cas(&dir, 100, "x").unwrap();
        assert_eq!(set.current.cert_pem, new);
        assert_eq!(set.trusted().len(), 1);
        assert_eq!(finish(&dir).unwrap(), Some(Stage::Drop));
        assert_eq!(load_ca(&dir).unwrap().unwrap().cert_pem, new);
        assert!(dir.join(format!("retired/ca-{serial}.key")).exists());
        assert!(!dir.join("next").exists() && stage_of(&dir).is_none());
    }

    #[test]
    fn a_broken_rotation_record_is_an_error_that_says_what_to_do() {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path().to_path_buf();
        load_or_create_ca(&dir, 100, "x").unwrap();
        std::fs::write(dir.join("rotation"), "stage=sideways done=no retired=ab\n").unwrap();
        let e = load_cas(&dir, 100, "x").unwrap_err().to_string();
        assert!(e.contains("rotation does not parse"), "{e}");
        std::fs::write(dir.join("rotation"), "stage=issue done=no retired=ab\n").unwrap();
        let e = load_cas(&dir, 100, "x").unwrap_err().to_string();
        assert!(
            e.contains("has no CA") && e.contains("abandon the rotation"),
            "{e}"
        );
        std::fs::write(dir.join("rotation"), "stage=drop done=yes retired=ab\n").unwrap();
        let (set, _) = load_cas(&dir, 100, "x").unwrap();
        assert!(advance(&dir, set, 100, "x").is_err());
    }

    #[test]
    fn an_unreadable_host_certificate_is_an_error_not_a_reissue() {
        let d = tempfile::tempdir().unwrap();
        let (ca, _) = load_or_create_ca(d.path(), 100, "x").unwrap();
        std::fs::create_dir_all(d.path().join("hosts/n1.crt")).unwrap();
        let e = format!(
            "{:#}",
            host_cert(
                d.path(),
                &ca,
                "n1",
                &names(&["n1"]),
                100,
                SystemTime::now(),
                false
            )
            .unwrap_err()
        );
        assert!(e.contains("reading") && e.contains("n1.crt"), "{e}");
    }

    #[test]
    fn renewal_capped_by_the_ca_does_not_churn() {
        let d = tempfile::tempdir().unwrap();
        let (ca, _) = load_or_create_ca(d.path(), 2, "x").unwrap();
        let now = SystemTime::now();
        // The CA lives 20 days: a host certificate asked for 100 ends with it, and renewing
        // inside its last 30 would issue the same end again on every run.
        let c = issue(&ca, &names(&["n1"]), 100, now).unwrap();
        assert_eq!(
            reissue_reason(&c.cert_pem, &c.key_pem, &ca, &names(&["n1"]), now),
            None
        );
        let (_, _, w) = host_cert(d.path(), &ca, "n1", &names(&["n1"]), 100, now, false).unwrap();
        commit(&w).unwrap();
        let (_, why, w) = host_cert(d.path(), &ca, "n1", &names(&["n1"]), 100, now, false).unwrap();
        assert_eq!((why, w.len()), (None, 0));
        // `certs rotate` asks for one regardless.
        let (_, why, w) = host_cert(d.path(), &ca, "n1", &names(&["n1"]), 100, now, true).unwrap();
        assert_eq!(
            (why.as_deref(), w.len()),
            (Some("renewed by `certs rotate`"), 2)
        );
    }

    #[test]
    fn days_left_counts_whole_days_and_goes_negative() {
        let now = UNIX_EPOCH + Duration::from_secs(1_000_000_000);
        assert_eq!(days_left(now + Duration::from_secs(86_400 * 3 + 5), now), 3);
        assert_eq!(days_left(now - Duration::from_secs(10), now), -1);
    }
}
