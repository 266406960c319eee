//! Host-key verification against an OpenSSH `known_hosts` file.
//!
//! We use our own verifier instead of `russh::keys::check_known_hosts_path` because that one
//! ignores `@revoked`, has no wildcard/negation support and miscounts line numbers.
//!
//! Supported syntax: `[@revoked|@cert-authority] patterns keytype base64 [comment]`, where
//! patterns are comma-separated plain names, `[host]:port`, `*`/`?` globs, `!negations`, or one
//! hashed `|1|salt|hmac` entry. Blank lines and `#` comments are skipped; unparsable lines
//! are skipped too (as OpenSSH does), but still count for line numbers.

use std::fs;
use std::io::{ErrorKind, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::Path;
use std::sync::Mutex;

use anyhow::{Context, Result, bail};
use hmac::{Hmac, KeyInit, Mac};
use russh::keys::ssh_encoding::base64::{Base64, Encoding};
use russh::keys::{Algorithm, HashAlg, PublicKey};
use sha1::Sha1;

use super::HostKeyPolicy;

/// Serialises read-check-append, so parallel connects that learn keys into the same file
/// neither interleave writes nor add the same host twice.
static FILE_LOCK: Mutex<()> = Mutex::new(());

/// Name a host is recorded under: `host` for port 22, `[host]:port` otherwise (OpenSSH rule).
/// Lower-cased because OpenSSH compares (and hashes) host names case-insensitively.
pub fn host_name(address: &str, port: u16) -> String {
    let address = address.to_ascii_lowercase();
    if port == 22 {
        address
    } else {
        format!("[{address}]:{port}")
    }
}

/// `SHA256:<base64>`, the format `ssh-keygen -l` and OpenSSH error messages use.
pub fn fingerprint(key: &PublicKey) -> String {
    key.fingerprint(HashAlg::Sha256).to_string()
}

/// Checks `key` for host `name` (see [`host_name`]) against `file` and applies `policy`.
/// A missing file counts as empty. Unknown hosts are learned only under `AcceptNew`;
/// changed or revoked keys are always an error.
pub fn verify(file: &Path, name: &str, key: &PublicKey, policy: HostKeyPolicy) -> Result<()> {
    let _guard = FILE_LOCK
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let text = read_or_empty(file)?;
    match lookup(&text, &file.display().to_string(), name, key)? {
        Lookup::Match => Ok(()),
        Lookup::Unknown if policy == HostKeyPolicy::AcceptNew => append(file, &text, name, key),
        Lookup::Unknown => bail!(
            "host key for {name} not in {}; run with --accept-new-host-keys to learn it \
             (fingerprint {})",
            file.display(),
            fingerprint(key)
        ),
    }
}

/// Key algorithms already recorded for `name`, in file order. Offering these first during key
/// exchange (as OpenSSH does) makes the server present the key type we can actually check,
/// instead of a different type that would look like a changed key.
pub fn known_algorithms(file: &Path, name: &str) -> Vec<Algorithm> {
    let text = read_or_empty(file).unwrap_or_default();
    let mut algs: Vec<Algorithm> = Vec::new();
    for line in text.lines() {
        if let Some(entry) = parse_line(line)
            && entry.marker == Marker::None
            && hosts_match(entry.hosts, name)
            && !algs.contains(&entry.key.algorithm())
        {
            algs.push(entry.key.algorithm());
        }
    }
    algs
}

/// Outcome of a lookup that did not fail outright.
#[derive(Debug, PartialEq, Eq)]
pub enum Lookup {
    Match,
    Unknown,
}

/// Pure lookup over file contents; `label` names the file in error messages.
pub fn lookup(text: &str, label: &str, name: &str, key: &PublicKey) -> Result<Lookup> {
    let mut matched = false;
    let mut mismatch: Option<(usize, PublicKey)> = None;
    // Line numbers are 1-based and count every line, comments and blanks included, so
    // `file:line` can be opened in an editor directly.
    for (index, line) in text.lines().enumerate() {
        let Some(entry) = parse_line(line) else {
            continue;
        };
        if !hosts_match(entry.hosts, name) {
            continue;
        }
        let same = entry.key.key_data() == key.key_data();
        match entry.marker {
            Marker::Revoked if same => bail!(
                "host key {} for {name} is marked @revoked in {label}:{}",
                fingerprint(key),
                index + 1
            ),
            // We do not negotiate host certificates, so CA lines never apply.
            Marker::Revoked | Marker::CertAuthority => {}
            Marker::None if same => matched = true,
            Marker::None => {
                mismatch.get_or_insert((index + 1, entry.key));
            }
        }
    }
    if matched {
        return Ok(Lookup::Match);
    }
    if let Some((line, known)) = mismatch {
        bail!(
            "HOST KEY MISMATCH for {name}: {label}:{line} has {} {}, but the server offered {} {}; \
             this may be a man-in-the-middle attack. If the host was reinstalled, delete that \
             line and reconnect",
            known.algorithm(),
            fingerprint(&known),
            key.algorithm(),
            fingerprint(key)
        );
    }
    Ok(Lookup::Unknown)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Marker {
    None,
    Revoked,
    CertAuthority,
}

struct Entry<'a> {
    marker: Marker,
    hosts: &'a str,
    key: PublicKey,
}

/// Parses one line; `None` for blanks, comments, unknown markers and unreadable keys.
fn parse_line(line: &str) -> Option<Entry<'_>> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let mut fields = line.split_whitespace();
    let mut hosts = fields.next()?;
    let marker = if hosts.starts_with('@') {
        let marker = match hosts {
            "@revoked" => Marker::Revoked,
            "@cert-authority" => Marker::CertAuthority,
            _ => return None,
        };
        hosts = fields.next()?;
        marker
    } else {
        Marker::None
    };
    let (key_type, blob) = (fields.next()?, fields.next()?);
    let key = PublicKey::from_openssh(&format!("{key_type} {blob}")).ok()?;
    Some(Entry { marker, hosts, key })
}

/// OpenSSH pattern-list semantics: some positive pattern must match and no `!pattern` may.
fn hosts_match(patterns: &str, name: &str) -> bool {
    if let Some(hashed) = patterns.strip_prefix("|1|") {
        return hashed_match(hashed, name);
    }
    let name = name.to_ascii_lowercase();
    let mut matched = false;
    for pattern in patterns.split(',') {
        let (negated, pattern) = match pattern.strip_prefix('!') {
            Some(rest) => (true, rest),
            None => (false, pattern),
        };
        if glob(pattern.to_ascii_lowercase().as_bytes(), name.as_bytes()) {
            if negated {
                return false;
            }
            matched = true;
        }
    }
    matched
}

/// `salt|hash` (both base64): the entry matches if HMAC-SHA1(salt, name) == hash.
fn hashed_match(salt_and_hash: &str, name: &str) -> bool {
    let Some((salt, hash)) = salt_and_hash.split_once('|') else {
        return false;
    };
    let (Ok(salt), Ok(hash)) = (Base64::decode_vec(salt), Base64::decode_vec(hash)) else {
        return false;
    };
    let Ok(mut mac) = Hmac::<Sha1>::new_from_slice(&salt) else {
        return false;
    };
    mac.update(name.to_ascii_lowercase().as_bytes());
    mac.verify_slice(&hash).is_ok()
}

/// Glob with `*` (any run, also empty) and `?` (one byte); everything else is literal.
fn glob(pattern: &[u8], text: &[u8]) -> bool {
    match pattern.split_first() {
        None => text.is_empty(),
        Some((b'*', rest)) => (0..=text.len()).any(|skip| glob(rest, &text[skip..])),
        Some((&p, rest)) => match text.split_first() {
            Some((&t, text_rest)) if p == b'?' || p == t => glob(rest, text_rest),
            _ => false,
        },
    }
}

fn read_or_empty(file: &Path) -> Result<String> {
    match fs::read_to_string(file) {
        Ok(text) => Ok(text),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(String::new()),
        Err(e) => Err(e).with_context(|| format!("reading known_hosts {}", file.display())),
    }
}

/// Appends `name keytype base64`, creating the parent dir (0700) and the file (0600) as needed.
/// `current` is the file content just checked, to repair a missing final newline.
fn append(file: &Path, current: &str, name: &str, key: &PublicKey) -> Result<()> {
    let context = || format!("learning host key for {name} into {}", file.display());
    if let Some(parent) = file.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(parent)
            .with_context(context)?;
    }
    let mut key = key.clone();
    key.set_comment("");
    let encoded = key.to_openssh().with_context(context)?;
    let separator = if current.is_empty() || current.ends_with('\n') {
        ""
    } else {
        "\n"
    };
    let mut out = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(file)
        .with_context(context)?;
    // One write call, so a concurrent reader never sees half a line.
    out.write_all(format!("{separator}{name} {}\n", encoded.trim_end()).as_bytes())
        .with_context(context)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    // Fixed sample keys (generated once with ssh-keygen).
    const KEY_A: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGTDf5fCJk1GBJfV7bu80a7P8Uf+LCaxb5FKPmxcwcKD";
    const FP_A: &str = "SHA256:wNCd3t8HoSk47MZN5cwgKEykJ5HBvbtZ3Ssp/GGNjFU";
    const KEY_B: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEV3X7RS9p+/E3OCKHFZt71iYu96U9/JadyFXvy3+j/X";
    const FP_B: &str = "SHA256:1Ed+zOq2eWoCL9LAFu7wVir0ax58gNkGlvWknKti8PU";
    const KEY_EC: &str = "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBNOg1ue3LJGHBm5IH8L312h3pqqvxJFPWL7NEsP0dySODWzQsHHEvm9B94R2YylTAboxZKUb3CHLzV6vgmqvJoI=";
    // `ssh-keygen -H` output for "10.0.0.5" and "[10.0.0.5]:2222" with KEY_A.
    const HASHED_22: &str = "|1|aI6xhAG3utag3SEPYZTO4zT9/vg=|HDJrT18POpp+z251SDpJ0tPYi7Q=";
    const HASHED_2222: &str = "|1|GKiAkoZdoCVQ4pSDzhilWxz48Ls=|A785OLdKrcAdJLCAYxspMxsqbhY=";

    fn key(s: &str) -> PublicKey {
        PublicKey::from_openssh(s).unwrap()
    }

    fn look(text: &str, name: &str, k: &str) -> Result<Lookup> {
        lookup(text, "kh", name, &key(k))
    }

    #[test]
    fn fingerprint_matches_ssh_keygen() {
        assert_eq!(fingerprint(&key(KEY_A)), FP_A);
        assert_eq!(fingerprint(&key(KEY_B)), FP_B);
    }

    #[test]
    fn host_name_brackets_non_default_ports() {
        assert_eq!(host_name("Db1.Example", 22), "db1.example");
        assert_eq!(host_name("10.0.0.5", 2222), "[10.0.0.5]:2222");
    }

    #[test]
    fn plain_entry_matches() {
        let text = format!("10.0.0.5 {KEY_A} some comment\n");
        assert_eq!(look(&text, "10.0.0.5", KEY_A).unwrap(), Lookup::Match);
        assert_eq!(look(&text, "10.0.0.6", KEY_A).unwrap(), Lookup::Unknown);
    }

    #[test]
    fn port_entries_need_brackets() {
        let text = format!("[10.0.0.5]:2222 {KEY_A}\n");
        assert_eq!(
            look(&text, "[10.0.0.5]:2222", KEY_A).unwrap(),
            Lookup::Match
        );
        assert_eq!(look(&text, "10.0.0.5", KEY_A).unwrap(), Lookup::Unknown);
        // A port-22 line does not cover other ports either.
        let text = format!("10.0.0.5 {KEY_A}\n");
        assert_eq!(
            look(&text, "[10.0.0.5]:2222", KEY_A).unwrap(),
            Lookup::Unknown
        );
    }

    #[test]
    fn comma_separated_patterns_and_case() {
        let text = format!("web1,10.0.0.5,[Web1.Example]:2200 {KEY_A}\n");
        assert_eq!(look(&text, "10.0.0.5", KEY_A).unwrap(), Lookup::Match);
        assert_eq!(look(&text, "WEB1", KEY_A).unwrap(), Lookup::Match);
        assert_eq!(
            look(&text, "[web1.example]:2200", KEY_A).unwrap(),
            Lookup::Match
        );
        assert_eq!(look(&text, "web", KEY_A).unwrap(), Lookup::Unknown);
    }

    #[test]
    fn wildcards_and_negation() {
        let text = format!("*.kafka.internal,!bad.kafka.internal,10.0.0.? {KEY_A}\n");
        assert_eq!(
            look(&text, "b1.kafka.internal", KEY_A).unwrap(),
            Lookup::Match
        );
        assert_eq!(look(&text, "10.0.0.7", KEY_A).unwrap(), Lookup::Match);
        assert_eq!(look(&text, "10.0.0.17", KEY_A).unwrap(), Lookup::Unknown);
        assert_eq!(
            look(&text, "bad.kafka.internal", KEY_A).unwrap(),
            Lookup::Unknown
        );
    }

    #[test]
    fn hashed_entries() {
        let text = format!("{HASHED_22} {KEY_A}\n{HASHED_2222} {KEY_A}\n");
        assert_eq!(look(&text, "10.0.0.5", KEY_A).unwrap(), Lookup::Match);
        assert_eq!(
            look(&text, "[10.0.0.5]:2222", KEY_A).unwrap(),
            Lookup::Match
        );
        assert_eq!(look(&text, "10.0.0.6", KEY_A).unwrap(), Lookup::Unknown);
        let err = look(&text, "[10.0.0.5]:2222", KEY_B)
            .unwrap_err()
            .to_string();
        assert!(err.contains("kh:2"), "{err}");
        // Garbage after |1| must not panic or match.
        assert_eq!(
            look(&format!("|1|!!|?? {KEY_A}"), "x", KEY_A).unwrap(),
            Lookup::Unknown
        );
    }

    #[test]
    fn mismatch_names_file_line_and_both_fingerprints() {
        let text = format!("# managed by hand\n\n   \nother {KEY_A}\n10.0.0.5 {KEY_A}\n");
        let err = look(&text, "10.0.0.5", KEY_B).unwrap_err().to_string();
        assert!(err.contains("kh:5"), "{err}");
        assert!(err.contains(FP_A) && err.contains(FP_B), "{err}");
        assert!(err.contains("MISMATCH"), "{err}");
    }

    #[test]
    fn another_key_type_for_the_host_is_a_mismatch_unless_one_line_matches() {
        let only_ec = format!("10.0.0.5 {KEY_EC}\n");
        assert!(look(&only_ec, "10.0.0.5", KEY_A).is_err());
        let both = format!("10.0.0.5 {KEY_EC}\n10.0.0.5 {KEY_A}\n");
        assert_eq!(look(&both, "10.0.0.5", KEY_A).unwrap(), Lookup::Match);
    }

    #[test]
    fn revoked_key_is_refused_even_if_also_listed() {
        let text = format!("10.0.0.5 {KEY_A}\n@revoked * {KEY_A}\n");
        let err = look(&text, "10.0.0.5", KEY_A).unwrap_err().to_string();
        assert!(err.contains("@revoked") && err.contains("kh:2"), "{err}");
        // Revocation of another key does not affect this one.
        let text = format!("10.0.0.5 {KEY_A}\n@revoked * {KEY_B}\n");
        assert_eq!(look(&text, "10.0.0.5", KEY_A).unwrap(), Lookup::Match);
    }

    #[test]
    fn cert_authority_unknown_markers_and_garbage_are_skipped() {
        let text = format!(
            "@cert-authority * {KEY_B}\n@bogus 10.0.0.5 {KEY_B}\n10.0.0.5 ssh-ed25519 notbase64\n\
             10.0.0.5\n10.0.0.5 {KEY_A}\n"
        );
        assert_eq!(look(&text, "10.0.0.5", KEY_A).unwrap(), Lookup::Match);
    }

    #[test]
    fn strict_unknown_fails_with_hint_and_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("known_hosts");
        let err = verify(&file, "10.0.0.5", &key(KEY_A), HostKeyPolicy::Strict)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("not in") && err.contains("--accept-new-host-keys"),
            "{err}"
        );
        assert!(err.contains(FP_A), "{err}");
        assert!(!file.exists());
    }

    #[test]
    fn accept_new_creates_dir_and_file_0600_then_strict_matches() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("sub/dir/known_hosts");
        let name = host_name("10.0.0.5", 2222);
        verify(&file, &name, &key(KEY_A), HostKeyPolicy::AcceptNew).unwrap();
        assert_eq!(
            fs::read_to_string(&file).unwrap(),
            format!("[10.0.0.5]:2222 {KEY_A}\n")
        );
        assert_eq!(
            fs::metadata(&file).unwrap().permissions().mode() & 0o777,
            0o600
        );
        verify(&file, &name, &key(KEY_A), HostKeyPolicy::Strict).unwrap();
        // Learning again is a no-op: still one line.
        verify(&file, &name, &key(KEY_A), HostKeyPolicy::AcceptNew).unwrap();
        assert_eq!(fs::read_to_string(&file).unwrap().lines().count(), 1);
    }

    #[test]
    fn accept_new_repairs_missing_final_newline() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("known_hosts");
        fs::write(&file, format!("other {KEY_B}")).unwrap();
        verify(&file, "10.0.0.5", &key(KEY_A), HostKeyPolicy::AcceptNew).unwrap();
        let text = fs::read_to_string(&file).unwrap();
        assert_eq!(text, format!("other {KEY_B}\n10.0.0.5 {KEY_A}\n"));
    }

    #[test]
    fn accept_new_never_overrides_mismatch_or_revocation() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("known_hosts");
        let original = format!("10.0.0.5 {KEY_A}\n@revoked 10.0.0.6 {KEY_B}\n");
        fs::write(&file, &original).unwrap();
        let err = verify(&file, "10.0.0.5", &key(KEY_B), HostKeyPolicy::AcceptNew).unwrap_err();
        assert!(err.to_string().contains(":1 has"), "{err}");
        assert!(verify(&file, "10.0.0.6", &key(KEY_B), HostKeyPolicy::AcceptNew).is_err());
        assert_eq!(fs::read_to_string(&file).unwrap(), original);
    }

    #[test]
    fn known_algorithms_lists_types_for_the_host_only() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("known_hosts");
        fs::write(
            &file,
            format!("h {KEY_EC}\nother {KEY_A}\nh {KEY_B}\n@revoked h {KEY_A}\n"),
        )
        .unwrap();
        let algs = known_algorithms(&file, "h");
        assert_eq!(algs, vec![key(KEY_EC).algorithm(), Algorithm::Ed25519]);
        assert!(known_algorithms(&dir.path().join("missing"), "h").is_empty());
    }

    #[test]
    fn glob_basics() {
        assert!(glob(b"*", b""));
        assert!(glob(b"a*c", b"abbbc"));
        assert!(!glob(b"a?c", b"ac"));
        assert!(glob(b"[h]:22*", b"[h]:2222"));
    }
}
