//! Pod annotations: the Kubernetes → ECS container name map, each container's `dockerLabels`, and the
//! definition's `tags` (pods have no per-container labels, and tags keys may not be valid label keys).

use std::collections::BTreeMap;

use super::TranslateError;
use super::names::{is_qualified_name, stable_hash, truncate};
use crate::api::task_definition::TaskDefinitionSpec;

/// JSON object: Kubernetes container name → ECS container name.
pub const CONTAINER_NAMES_ANNOTATION: &str = "ecs.operator.dev/container-names";
/// JSON object of the definition's tags, key → value.
pub const TAGS_ANNOTATION: &str = "ecs.operator.dev/tags";
/// Prefix of the per-container docker labels annotations (see [`docker_labels_annotation`]).
pub const DOCKER_LABELS_PREFIX: &str = "ecs.operator.dev/docker-labels.";

/// The API server's limit on the total size of an object's annotations.
const MAX_ANNOTATIONS_BYTES: usize = 256 * 1024;

/// The annotation holding the docker labels of the container named `k8s_name` in the pod, as JSON.
/// The part after `/` of an annotation key has at most 63 characters, so a long container name is cut
/// and suffixed with a hash of itself.
pub fn docker_labels_annotation(k8s_name: &str) -> String {
    let (prefix, part) =
        DOCKER_LABELS_PREFIX.split_at(DOCKER_LABELS_PREFIX.find('/').unwrap_or(0) + 1);
    let full = format!("{part}{k8s_name}");
    if is_qualified_name(&full) {
        return format!("{prefix}{full}");
    }
    let hash = stable_hash(k8s_name);
    let room = 63 - part.len() - hash.len() - 1;
    format!("{prefix}{part}{}-{hash}", truncate(k8s_name, room))
}

/// The pod annotations of `td`, whose containers are named `k8s_names` in the pod.
pub(crate) fn annotations(
    td: &TaskDefinitionSpec,
    k8s_names: &[String],
) -> Result<BTreeMap<String, String>, TranslateError> {
    let mut out = BTreeMap::new();
    let names: BTreeMap<&str, &str> = k8s_names
        .iter()
        .map(String::as_str)
        .zip(td.container_definitions.iter().map(|c| c.name.as_str()))
        .collect();
    out.insert(CONTAINER_NAMES_ANNOTATION.to_string(), json(&names));
    for (c, k8s_name) in td.container_definitions.iter().zip(k8s_names) {
        if let Some(labels) = c.docker_labels.as_ref().filter(|l| !l.is_empty()) {
            out.insert(docker_labels_annotation(k8s_name), json(labels));
        }
    }
    let tags: BTreeMap<&str, &str> = td
        .tags
        .iter()
        .flatten()
        .filter_map(|t| {
            let key = t.key.as_deref().filter(|k| !k.is_empty())?;
            Some((key, t.value.as_deref().unwrap_or_default()))
        })
        .collect();
    if !tags.is_empty() {
        out.insert(TAGS_ANNOTATION.to_string(), json(&tags));
    }
    let size: usize = out.iter().map(|(k, v)| k.len() + v.len()).sum();
    if size > MAX_ANNOTATIONS_BYTES {
        return Err(TranslateError::conflict(
            "containerDefinitions[].dockerLabels",
            format!(
                "the docker labels and tags add up to {size} bytes of pod annotations, more than the {MAX_ANNOTATIONS_BYTES} Kubernetes allows; shorten them"
            ),
        ));
    }
    Ok(out)
}

fn json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).expect("string maps always serialize")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::common::Tag;
    use crate::api::task_definition::ContainerDefinition;

    fn c(name: &str, labels: &[(&str, &str)]) -> ContainerDefinition {
        ContainerDefinition {
            name: name.into(),
            image: "img".into(),
            docker_labels: (!labels.is_empty()).then(|| {
                labels
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn container_names_map_k8s_to_ecs() {
        let td = TaskDefinitionSpec {
            container_definitions: vec![c("Web_App", &[]), c("db", &[])],
            ..Default::default()
        };
        let a = annotations(&td, &["web-app".into(), "db".into()]).unwrap();
        assert_eq!(
            a[CONTAINER_NAMES_ANNOTATION],
            r#"{"db":"db","web-app":"Web_App"}"#
        );
        assert_eq!(a.len(), 1);
    }

    #[test]
    fn docker_labels_per_container() {
        let td = TaskDefinitionSpec {
            container_definitions: vec![
                c(
                    "web",
                    &[("com.example.team", "payments"), ("tier", "front")],
                ),
                c("db", &[]),
            ],
            ..Default::default()
        };
        let a = annotations(&td, &["web".into(), "db".into()]).unwrap();
        assert_eq!(
            a["ecs.operator.dev/docker-labels.web"],
            r#"{"com.example.team":"payments","tier":"front"}"#
        );
        assert!(!a.contains_key("ecs.operator.dev/docker-labels.db"));
    }

    #[test]
    fn long_container_names_give_valid_keys() {
        let name = "a".repeat(63);
        let key = docker_labels_annotation(&name);
        let (prefix, part) = key.split_once('/').unwrap();
        assert_eq!(prefix, "ecs.operator.dev");
        assert!(is_qualified_name(part), "{part}");
        assert!(part.starts_with("docker-labels.aaa"));
        assert_ne!(key, docker_labels_annotation(&"a".repeat(62)));
        assert_eq!(
            docker_labels_annotation("web"),
            "ecs.operator.dev/docker-labels.web"
        );
    }

    #[test]
    fn tags_as_json() {
        let td = TaskDefinitionSpec {
            container_definitions: vec![c("web", &[])],
            tags: Some(vec![
                Tag {
                    key: Some("team".into()),
                    value: Some("payments".into()),
                },
                Tag {
                    key: Some("empty".into()),
                    value: None,
                },
                Tag {
                    key: None,
                    value: Some("lost".into()),
                },
            ]),
            ..Default::default()
        };
        let a = annotations(&td, &["web".into()]).unwrap();
        assert_eq!(a[TAGS_ANNOTATION], r#"{"empty":"","team":"payments"}"#);
    }

    #[test]
    fn oversized_annotations_are_an_error() {
        let big = "x".repeat(MAX_ANNOTATIONS_BYTES);
        let td = TaskDefinitionSpec {
            container_definitions: vec![c("web", &[("big", &big)])],
            ..Default::default()
        };
        assert!(annotations(&td, &["web".into()]).is_err());
    }
}
