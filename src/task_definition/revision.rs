//! Revisions of a task definition: pure rules, no I/O.
//!
//! Each registered revision is stored as an apps/v1 ControllerRevision named `<family>-<revision>`,
//! owned by the TaskDefinition and holding the spec as registered. The deterministic name means a
//! stale cache can never register the same revision twice (the second create gets 409).

use std::collections::BTreeSet;

use crate::api::{TaskDefinition, TaskDefinitionSpec};
use k8s_openapi::api::apps::v1::ControllerRevision;
use kube::Resource;

/// A reference to a task definition: `family` or `family:revision`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskDefinitionRef {
    pub family: String,
    pub revision: Option<i64>,
}

impl TaskDefinitionRef {
    /// Parses `family` or `family:revision` (the CRD schema already validated the shape).
    pub fn parse(s: &str) -> Option<Self> {
        match s.split_once(':') {
            None if !s.is_empty() => Some(Self {
                family: s.to_string(),
                revision: None,
            }),
            Some((family, rev)) if !family.is_empty() => {
                let revision = rev.parse::<i64>().ok().filter(|r| *r > 0)?;
                Some(Self {
                    family: family.to_string(),
                    revision: Some(revision),
                })
            }
            _ => None,
        }
    }
}

impl std::fmt::Display for TaskDefinitionRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.revision {
            Some(r) => write!(f, "{}:{r}", self.family),
            None => f.write_str(&self.family),
        }
    }
}

/// The ControllerRevision name of `family:revision`.
pub fn object_name(family: &str, revision: i64) -> String {
    format!("{family}-{revision}")
}

/// A stable fingerprint of a spec: FNV-1a over its canonical JSON (struct fields in declaration order,
/// maps sorted), so the same spec always gives the same hash across restarts and versions of Rust.
pub fn spec_hash(spec: &TaskDefinitionSpec) -> String {
    let json = serde_json::to_vec(spec).expect("a spec always serializes");
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in json {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{hash:016x}")
}

/// Parses the inactive-revisions annotation: revision numbers separated by commas (spaces allowed).
pub fn parse_inactive(value: Option<&str>) -> Result<BTreeSet<i64>, String> {
    let Some(value) = value else {
        return Ok(BTreeSet::new());
    };
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<i64>()
                .ok()
                .filter(|r| *r > 0)
                .ok_or_else(|| format!("{s:?} is not a revision number"))
        })
        .collect()
}

/// Whether `revision` was registered by this very TaskDefinition (its controller UID): a revision
/// left by an earlier TaskDefinition of the same family, or anyone else's object, is not.
pub fn controlled_by(revision: &ControllerRevision, td: &TaskDefinition) -> bool {
    revision
        .metadata
        .owner_references
        .iter()
        .flatten()
        .any(|o| o.controller == Some(true) && Some(&o.uid) == td.meta().uid.as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_references() {
        assert_eq!(
            TaskDefinitionRef::parse("web"),
            Some(TaskDefinitionRef {
                family: "web".into(),
                revision: None
            })
        );
        assert_eq!(
            TaskDefinitionRef::parse("web:12").unwrap().revision,
            Some(12)
        );
        assert_eq!(TaskDefinitionRef::parse("web:0"), None);
        assert_eq!(TaskDefinitionRef::parse("web:x"), None);
        assert_eq!(TaskDefinitionRef::parse(":3"), None);
        assert_eq!(TaskDefinitionRef::parse(""), None);
        assert_eq!(
            TaskDefinitionRef::parse("web:12").unwrap().to_string(),
            "web:12"
        );
    }

    #[test]
    fn hash_changes_with_the_spec_only() {
        let mut spec: TaskDefinitionSpec = serde_json::from_value(serde_json::json!({
            "containerDefinitions": [{"name": "web", "image": "nginx:1"}]
        }))
        .unwrap();
        let a = spec_hash(&spec);
        assert_eq!(a, spec_hash(&spec.clone()));
        spec.container_definitions[0].image = "nginx:2".into();
        assert_ne!(a, spec_hash(&spec));
    }

    #[test]
    fn parses_inactive_revisions() {
        assert_eq!(parse_inactive(None).unwrap(), BTreeSet::new());
        assert_eq!(
            parse_inactive(Some("1, 3,5")).unwrap(),
            BTreeSet::from([1, 3, 5])
        );
        assert!(parse_inactive(Some("1,two")).unwrap_err().contains("two"));
        assert!(parse_inactive(Some("0")).is_err());
    }
}
