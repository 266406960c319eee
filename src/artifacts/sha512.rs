//! Apache publishes `.sha512` files in several formats over the years:
//! `sha512sum` (`<hex>  file`), `gpg --print-md SHA512` (`file: 953D3C04 EE6FD2FA ...`, upper case,
//! grouped, wrapped over lines), BSD (`SHA512 (file) = <hex>`) and bare hex.

use anyhow::{Result, bail};

/// Extract the lowercase 128-hex-digit digest from any of the formats above.
pub fn parse_sha512(text: &str) -> Result<String> {
    let text = text.trim();
    // gpg and BSD styles put the digest after the last ':' or '='; sha512sum puts it first.
    let body = match text.rfind([':', '=']) {
        Some(i) => &text[i + 1..],
        None => text.split_whitespace().next().unwrap_or(""),
    };
    let hex: String = body
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_ascii_lowercase();
    if hex.len() != 128 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        bail!(
            "not a SHA-512 checksum file (expected 128 hex digits, found {:?})",
            truncate(text, 80)
        );
    }
    Ok(hex)
}

/// Constant-time comparison of two hex digests.
pub fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| {
            acc | (x.to_ascii_lowercase() ^ y.to_ascii_lowercase())
        }) == 0
}

fn truncate(s: &str, n: usize) -> &str {
    match s.char_indices().nth(n) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "953d3c04ee6fd2fa0123456789abcdef0123456789abcdef0123456789abcdef\
                       0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn sha512sum_format() {
        let t = format!("{HEX}  apache-zookeeper-3.8.4-bin.tar.gz\n");
        assert_eq!(parse_sha512(&t).unwrap(), HEX);
    }

    #[test]
    fn sha512sum_binary_marker() {
        let t = format!("{HEX} *kafka_2.13-3.9.1.tgz\n");
        assert_eq!(parse_sha512(&t).unwrap(), HEX);
    }

    #[test]
    fn gpg_print_md_format_wrapped() {
        let up = HEX.to_uppercase();
        let groups: Vec<&str> = (0..16).map(|i| &up[i * 8..i * 8 + 8]).collect();
        let t = format!(
            "kafka_2.13-3.9.1.tgz: {}\n                      {}\n",
            groups[..8].join(" "),
            groups[8..].join(" ")
        );
        assert_eq!(parse_sha512(&t).unwrap(), HEX);
    }

    #[test]
    fn bsd_format() {
        let t = format!("SHA512 (kafka_2.13-3.9.1.tgz) = {HEX}\n");
        assert_eq!(parse_sha512(&t).unwrap(), HEX);
    }

    #[test]
    fn bare_hex() {
        assert_eq!(parse_sha512(&format!("{HEX}\n")).unwrap(), HEX);
    }

    #[test]
    fn rejects_garbage_and_short_digests() {
        assert!(parse_sha512("<html>404 Not Found</html>").is_err());
        assert!(parse_sha512(&HEX[..64]).is_err());
        let t = format!("{}  file", &HEX[..127]);
        assert!(parse_sha512(&t).is_err());
    }

    #[test]
    fn comparison_ignores_case_only() {
        assert!(same(HEX, &HEX.to_uppercase()));
        assert!(!same(HEX, &HEX.replace('9', "8")));
        assert!(!same(HEX, &HEX[..120]));
    }
}
