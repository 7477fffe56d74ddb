//! YAML that every reader reads back as the same JSON.
//!
//! kubectl reads manifests with a YAML 1.1 parser (go-yaml v2 under sigs.k8s.io/yaml), where `on`,
//! `off`, `yes`, `no`, `y` and `n` are booleans and `1:20` can be a number. A YAML 1.2 emitter leaves
//! such strings unquoted, so a task definition with `"TLS": "on"` reached the API server as
//! `TLS: true` and was refused with a type error. Here a string is written plain only when it cannot
//! be anything but a string in YAML 1.1 and 1.2; otherwise it is double-quoted (JSON's escapes are
//! YAML's). Multi-line strings become literal blocks, so scripts stay readable.

use serde::Serialize;
use serde_yaml_ng::{Mapping, Value};

/// `value` as a YAML document (fields in declaration order, block style, sequences not indented
/// under their key, as kubectl writes them).
pub fn to_string(value: &impl Serialize) -> String {
    let value = serde_yaml_ng::to_value(value).expect("a manifest always serializes");
    let mut out = String::new();
    match &value {
        Value::Mapping(map) if !map.is_empty() => mapping(&mut out, map, 0),
        Value::Sequence(items) if !items.is_empty() => sequence(&mut out, items, 0),
        scalar => {
            out.push_str(&inline(scalar, 2));
            out.push('\n');
        }
    }
    out
}

fn mapping(out: &mut String, map: &Mapping, indent: usize) {
    for (i, (key, value)) in map.iter().enumerate() {
        // The first key of a sequence item follows its "- " on the same line.
        if i > 0 || !out.ends_with("- ") {
            push_indent(out, indent);
        }
        out.push_str(&key_text(key));
        out.push(':');
        entry(out, value, indent, indent + 2);
    }
}

fn sequence(out: &mut String, items: &[Value], indent: usize) {
    for item in items {
        if !out.ends_with("- ") {
            push_indent(out, indent);
        }
        out.push_str("- ");
        match item {
            Value::Mapping(map) if !map.is_empty() => mapping(out, map, indent + 2),
            Value::Sequence(inner) if !inner.is_empty() => {
                out.push('\n');
                sequence(out, inner, indent + 2)
            }
            scalar => {
                out.push_str(&inline(scalar, indent + 2));
                out.push('\n');
            }
        }
    }
}

/// What follows `key:`. A mapping nests `nested` deep; a sequence stays at the key's column.
fn entry(out: &mut String, value: &Value, indent: usize, nested: usize) {
    match value {
        Value::Mapping(map) if !map.is_empty() => {
            out.push('\n');
            mapping(out, map, nested);
        }
        Value::Sequence(items) if !items.is_empty() => {
            out.push('\n');
            sequence(out, items, indent);
        }
        scalar => {
            out.push(' ');
            out.push_str(&inline(scalar, nested));
            out.push('\n');
        }
    }
}

/// A scalar, or an empty collection, on the current line.
fn inline(value: &Value, indent: usize) -> String {
    match value {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => string(s, indent),
        Value::Sequence(_) => "[]".into(),
        Value::Mapping(_) => "{}".into(),
        // Manifests carry no tags; written as the tagged value alone.
        Value::Tagged(tagged) => inline(&tagged.value, indent),
    }
}

/// A key is plain or double-quoted: a block cannot be a key.
fn key_text(key: &Value) -> String {
    match key {
        Value::String(s) if is_plain_safe(s) => s.clone(),
        Value::String(s) => serde_json::to_string(s).expect("a string always serializes"),
        other => inline(other, 0),
    }
}

fn string(s: &str, indent: usize) -> String {
    if is_plain_safe(s) {
        s.to_string()
    } else if let Some(block) = literal_block(s, indent) {
        block
    } else {
        serde_json::to_string(s).expect("a string always serializes")
    }
}

/// Strings that YAML 1.1 resolves to something else when plain, compared case-insensitively.
const YAML11_SPECIAL: &[&str] = &[
    "y", "yes", "n", "no", "true", "false", "on", "off", "null", "~",
];

/// Plain only when no YAML 1.1 or 1.2 reader can take it for anything but this string: it starts
/// with a letter, `/` or `_` (so no number, date, sexagesimal, `.inf`, indicator or merge key), uses
/// a conservative set of characters, has no `: ` or ` #`, does not end with `:` and is not a
/// boolean or null word.
pub fn is_plain_safe(s: &str) -> bool {
    let Some(first) = s.chars().next() else {
        return false;
    };
    let allowed = |c: char| c.is_ascii_alphanumeric() || "_./-@=+,()%:[]{} |>!&*?'\"".contains(c);
    (first.is_ascii_alphabetic() || first == '/' || first == '_')
        && s.chars().all(allowed)
        && !s.ends_with([':', ' '])
        && !s.contains(": ")
        && !s.contains(" #")
        && !s.contains("  ")
        && !YAML11_SPECIAL.contains(&s.to_ascii_lowercase().as_str())
}

/// A literal block (`|`, `|-`) for text with line breaks that a block can carry exactly: printable
/// characters, no carriage return or tab, a first line not starting with a space (the indentation
/// would be ambiguous) and at most one trailing line break.
fn literal_block(s: &str, indent: usize) -> Option<String> {
    let body = s.strip_suffix('\n').unwrap_or(s);
    let exact = body.contains('\n')
        && !body.ends_with('\n')
        && !body.starts_with([' ', '\n'])
        && body
            .chars()
            .all(|c| c == '\n' || (!c.is_control() && c != '\u{feff}'))
        && body.lines().all(|l| !l.ends_with(' '));
    if !exact {
        return None;
    }
    let mut out = String::from(if s.ends_with('\n') { "|" } else { "|-" });
    for line in body.split('\n') {
        out.push('\n');
        if !line.is_empty() {
            push_indent(&mut out, indent);
            out.push_str(line);
        }
    }
    Some(out)
}

fn push_indent(out: &mut String, indent: usize) {
    out.extend(std::iter::repeat_n(' ', indent));
}

#[cfg(test)]
mod tests;
