//! Every scalar of the inventory, keys included, with its location: one pass that refuses
//! control characters wherever they are, since any value may end up on a host.

use super::diag::Diags;
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::Spanned;
use std::fmt;

/// One YAML node; scalars are collected, as text, by the visitor.
struct Node(Vec<(String, serde_saphyr::Location)>);

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(NodeVisitor)
    }
}

/// A node with its location; scalars become one entry.
fn flatten(n: Spanned<Node>, out: &mut Vec<(String, serde_saphyr::Location)>) {
    let mut inner = n.value.0;
    for e in &mut inner {
        if e.1 == serde_saphyr::Location::UNKNOWN {
            e.1 = n.referenced;
        }
    }
    out.extend(inner);
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any YAML value")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Node, E> {
        Ok(Node(vec![(v.to_string(), serde_saphyr::Location::UNKNOWN)]))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Node, E> {
        Ok(Node(vec![(v, serde_saphyr::Location::UNKNOWN)]))
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Node, E> {
        Ok(Node(vec![]))
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Node, E> {
        Ok(Node(vec![]))
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Node, E> {
        Ok(Node(vec![]))
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Node, E> {
        Ok(Node(vec![]))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Node, E> {
        Ok(Node(vec![]))
    }
    fn visit_none<E: de::Error>(self) -> Result<Node, E> {
        Ok(Node(vec![]))
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Node, D::Error> {
        Node::deserialize(d)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<Node, A::Error> {
        let mut out = Vec::new();
        while let Some(n) = a.next_element::<Spanned<Node>>()? {
            flatten(n, &mut out);
        }
        Ok(Node(out))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Node, A::Error> {
        let mut out = Vec::new();
        while let Some((k, v)) = a.next_entry::<Spanned<Node>, Spanned<Node>>()? {
            flatten(k, &mut out);
            flatten(v, &mut out);
        }
        Ok(Node(out))
    }
}

/// Refuses every scalar holding a control character (newline, tab, NUL, escape...), with its
/// location. Such a value written into a properties line or an env file could add a line.
pub fn refuse_control_chars(d: &mut Diags, text: &str) {
    let Ok(root) = serde_saphyr::from_str::<Spanned<Node>>(text) else {
        return; // the typed parse reports syntax errors
    };
    let mut all = Vec::new();
    flatten(root, &mut all);
    for (value, at) in all {
        if let Some(c) = crate::quote::control_char(&value) {
            d.error(
                &at,
                format!(
                    "the value {:?} holds the control character {c:?}",
                    shorten(&value)
                ),
                "values that reach a host must be one line of printable characters; remove it \
                 (a block scalar `|` or an escape such as \\n in double quotes makes one)",
            );
        }
    }
}

fn shorten(v: &str) -> String {
    if v.chars().count() > 60 {
        format!("{}…", v.chars().take(60).collect::<String>())
    } else {
        v.to_string()
    }
}
