//! The one place a value is quoted for where it goes on a host: a POSIX shell word (commands,
//! env files that `sh` sources and systemd reads), a list of shell words (JVM_OPTS), or a
//! Java properties line (server.properties, zoo.cfg). Templates reach these as the minijinja
//! filters `sh`, `shwords`, `propkey` and `prop`.

/// A single POSIX shell word that means exactly `s`: single quotes, each `'` as `'\''`. The
/// same text is one value in a systemd EnvironmentFile, whose parser joins quoted runs too.
pub fn sh(s: &str) -> String {
    if !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"@%+=:,./_-".contains(&b))
    {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        if c == '\'' {
            out.push_str("'\\''");
        } else {
            out.push(c);
        }
    }
    out.push('\'');
    out
}

/// Words joined as a shell would split them back: `eval "set -- $X"` gives exactly `words`.
pub fn sh_words<S: AsRef<str>>(words: &[S]) -> String {
    words
        .iter()
        .map(|w| sh(w.as_ref()))
        .collect::<Vec<_>>()
        .join(" ")
}

/// A JAAS option value (`password="..."` in `sasl.jaas.config`): double quotes, with `\` and
/// `"` escaped as the JAAS parser (a StreamTokenizer) reads them back.
pub fn jaas(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        if c == '\\' || c == '"' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// A Java properties key: java.util.Properties ends a key at an unescaped `=`, `:` or blank.
pub fn prop_key(s: &str) -> String {
    escape_prop(s, true)
}

/// A Java properties value, on one line, read back by `Properties.load` as exactly `s`.
/// Kafka and ZooKeeper load their files as ISO 8859-1, so anything else is a \u escape.
pub fn prop_value(s: &str) -> String {
    escape_prop(s, false)
}

fn escape_prop(s: &str, key: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for (i, c) in s.chars().enumerate() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\x0c' => out.push_str("\\f"),
            // Leading blanks of a value are skipped by the loader; inside a key a blank ends it.
            ' ' if key || i == 0 => out.push_str("\\ "),
            '=' | ':' | '#' | '!' if key => {
                out.push('\\');
                out.push(c);
            }
            c if (' '..='~').contains(&c) => out.push(c),
            c => {
                let mut units = [0u16; 2];
                for u in c.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{u:04x}"));
                }
            }
        }
    }
    out
}

/// A `.properties` text as `java.util.Properties.load` reads it: `#` and `!` comments,
/// `=`, `:` or blanks between key and value, lines continued by a trailing `\`, the escapes
/// `prop_key` and `prop_value` write (and `\uXXXX`). A key given twice keeps its last value.
pub fn parse_properties(text: &str) -> std::collections::BTreeMap<String, String> {
    let blank = |c: char| matches!(c, ' ' | '\t' | '\x0c');
    let mut out = std::collections::BTreeMap::new();
    let mut logical = String::new();
    let mut continuing = false;
    for natural in text.split(['\n', '\r']) {
        let line = natural.trim_start_matches(blank);
        if !continuing && (line.is_empty() || line.starts_with(['#', '!'])) {
            continue;
        }
        let trailing = line.len() - line.trim_end_matches('\\').len();
        continuing = trailing % 2 == 1;
        logical.push_str(if continuing {
            &line[..line.len() - 1]
        } else {
            line
        });
        if !continuing {
            let (k, v) = split_property(&logical);
            out.insert(unescape_prop(k), unescape_prop(v));
            logical.clear();
        }
    }
    if !logical.is_empty() {
        let (k, v) = split_property(&logical);
        out.insert(unescape_prop(k), unescape_prop(v));
    }
    out
}

/// A logical line's raw key and value: the key ends at its first unescaped `=`, `:` or blank;
/// blanks and one `=` or `:` after it are skipped.
fn split_property(line: &str) -> (&str, &str) {
    let blank = |c: char| matches!(c, ' ' | '\t' | '\x0c');
    let mut escaped = false;
    let mut end = line.len();
    let mut sep = false;
    for (i, c) in line.char_indices() {
        if !escaped && (c == '=' || c == ':' || blank(c)) {
            end = i;
            sep = c != ' ' && c != '\t' && c != '\x0c';
            break;
        }
        escaped = c == '\\' && !escaped;
    }
    let key = &line[..end];
    let mut rest = line[end..].chars();
    if end < line.len() {
        rest.next();
    }
    let mut value = rest.as_str();
    loop {
        let mut it = value.chars();
        match it.next() {
            Some(c) if blank(c) => value = it.as_str(),
            Some('=' | ':') if !sep => {
                sep = true;
                value = it.as_str();
            }
            _ => break,
        }
    }
    (key, value)
}

/// `\t`, `\n`, `\r`, `\f`, `\uXXXX` (UTF-16, surrogate pairs joined) and `\x` for any other x.
fn unescape_prop(s: &str) -> String {
    let mut units: Vec<u16> = Vec::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        let c = if c != '\\' {
            c
        } else {
            match chars.next() {
                None => break,
                Some('t') => '\t',
                Some('n') => '\n',
                Some('r') => '\r',
                Some('f') => '\x0c',
                Some('u') => {
                    let hex: String = chars.by_ref().take(4).collect();
                    match u16::from_str_radix(&hex, 16) {
                        Ok(u) => units.push(u),
                        Err(_) => units.extend(hex.encode_utf16()),
                    }
                    continue;
                }
                Some(other) => other,
            }
        };
        let mut buf = [0u16; 2];
        units.extend_from_slice(c.encode_utf16(&mut buf));
    }
    String::from_utf16_lossy(&units)
}

/// The first control character in `s` (newline, tab and NUL included), if any: such a value
/// could end a line or a string early wherever it is written, so inventories may not hold one.
pub fn control_char(s: &str) -> Option<char> {
    s.chars().find(|c| c.is_control())
}

/// Registers the filters on a template environment.
pub fn add_filters(env: &mut minijinja::Environment<'_>) {
    env.add_filter("sh", |v: minijinja::Value| sh(&text(&v)));
    env.add_filter("shwords", |v: Vec<minijinja::Value>| {
        sh_words(&v.iter().map(text).collect::<Vec<_>>())
    });
    env.add_filter("propkey", |v: minijinja::Value| prop_key(&text(&v)));
    env.add_filter("prop", |v: minijinja::Value| prop_value(&text(&v)));
}

fn text(v: &minijinja::Value) -> String {
    match v.as_str() {
        Some(s) => s.to_string(),
        None => v.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    /// What `sh` makes of `script`'s stdout.
    fn run_sh(script: &str) -> String {
        let out = Command::new("sh").arg("-c").arg(script).output().unwrap();
        assert!(out.status.success(), "{script}: {out:?}");
        String::from_utf8(out.stdout).unwrap()
    }

    const HOSTILE: &[&str] = &[
        "plain",
        "",
        "a b",
        "it's",
        "'",
        "''\\'",
        "$(touch /tmp/clusterctl-quote-test)",
        "`touch /tmp/clusterctl-quote-test`",
        "${HOME}",
        "a\"b",
        "x; rm -rf /tmp/nothing",
        "-Dx='a b'",
        "tab\there",
        "new\nline",
        "*",
        "~root",
        "ünïcødé",
    ];

    #[test]
    fn a_shell_word_is_exactly_its_value_under_a_real_sh() {
        for v in HOSTILE {
            assert_eq!(run_sh(&format!("printf %s {}", sh(v))), *v, "{v:?}");
        }
        assert!(!std::path::Path::new("/tmp/clusterctl-quote-test").exists());
        assert_eq!(sh("/opt/kafka_2.13-3.9.1"), "/opt/kafka_2.13-3.9.1");
        assert_eq!(sh("a b"), "'a b'");
    }

    #[test]
    fn words_come_back_as_the_same_arguments() {
        let words: Vec<&str> = HOSTILE.to_vec();
        // As an env file holds it: the joined words, quoted once more as one value.
        let line = format!("X={}", sh(&sh_words(&words)));
        let out = run_sh(&format!(
            "{line}\neval \"set -- $X\"; printf '%s\\0' \"$@\""
        ));
        let got: Vec<&str> = out.split_terminator('\0').collect();
        assert_eq!(got, words);
    }

    #[test]
    fn property_lines_stay_one_line() {
        for v in HOSTILE {
            let line = format!("{}={}", prop_key(v), prop_value(v));
            assert!(!line.contains('\n') && !line.contains('\r'), "{line:?}");
            assert!(line.is_ascii(), "{line:?}");
        }
        assert_eq!(prop_value("x\nbroker.id=7"), "x\\nbroker.id=7");
        assert_eq!(prop_value(" lead"), "\\ lead");
        assert_eq!(prop_value("C:\\dir"), "C:\\\\dir");
        assert_eq!(prop_key("a=b c"), "a\\=b\\ c");
        assert_eq!(prop_value("é😀"), "\\u00e9\\ud83d\\ude00");
        assert_eq!(prop_value("a=b:c #d"), "a=b:c #d");
    }

    #[test]
    fn properties_read_back_what_was_written() {
        let mut text = String::from("# Managed by clusterctl\n");
        for (i, v) in HOSTILE.iter().enumerate() {
            text.push_str(&format!(
                "{}={}\n",
                prop_key(&format!("k{i} {v}")),
                prop_value(v)
            ));
        }
        let back = parse_properties(&text);
        assert_eq!(back.len(), HOSTILE.len());
        for (i, v) in HOSTILE.iter().enumerate() {
            assert_eq!(back[&format!("k{i} {v}")], *v, "{v:?}");
        }
    }

    /// What `Properties.load` does with hand-written files, checked against Java itself where
    /// a JDK is on PATH (the lab machine has one).
    #[test]
    fn properties_parse_as_java_loads_them() {
        let text = "! bang comment\n  # indented comment\n\n\
                    a=1\nb = 2 \nc:3\nd 4\ne\t=\t:5\nf\n\
                    g=one \\\n    two\\\n   three\nh=ends\\\\\nsame=x\nsame=y\n\
                    i\\=j=k\nl=\\u00e9\\t\nm=#not a comment\n  n=indented\r\no=crlf\r\n";
        let got = parse_properties(text);
        let want: Vec<(&str, &str)> = vec![
            ("a", "1"),
            ("b", "2 "),
            ("c", "3"),
            ("d", "4"),
            ("e", ":5"),
            ("f", ""),
            ("g", "one twothree"),
            ("h", "ends\\"),
            ("i=j", "k"),
            ("l", "é\t"),
            ("m", "#not a comment"),
            ("n", "indented"),
            ("o", "crlf"),
            ("same", "y"),
        ];
        let want: std::collections::BTreeMap<String, String> = want
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert_eq!(got, want);
        if Command::new("java").arg("-version").output().is_err() {
            return;
        }
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("t.properties"), text).unwrap();
        std::fs::write(
            d.path().join("P.java"),
            "public class P { public static void main(String[] a) throws Exception {\n\
             var p = new java.util.Properties(); p.load(new java.io.FileInputStream(a[0]));\n\
             new java.util.TreeSet<>(p.stringPropertyNames()).forEach(k -> \
             System.out.print(k + \"\\0\" + p.getProperty(k) + \"\\0\")); } }\n",
        )
        .unwrap();
        let out = Command::new("java")
            .arg(d.path().join("P.java"))
            .arg(d.path().join("t.properties"))
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        let java = String::from_utf8(out.stdout).unwrap();
        let fields: Vec<&str> = java.split_terminator('\0').collect();
        let java: std::collections::BTreeMap<String, String> = fields
            .chunks(2)
            .map(|kv| (kv[0].to_string(), kv[1].to_string()))
            .collect();
        assert_eq!(got, java, "as java.util.Properties.load reads it");
    }

    #[test]
    fn control_characters_are_found() {
        assert_eq!(control_char("ok value"), None);
        assert_eq!(control_char("a\nb"), Some('\n'));
        assert_eq!(control_char("a\0"), Some('\0'));
        assert_eq!(control_char("\u{1b}[31m"), Some('\u{1b}'));
    }
}
