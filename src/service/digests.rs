//! ECS `versionConsistency`: every task of one service deployment runs the same image digest. Pure.
//!
//! ECS resolves each container's image tag to a digest when a deployment starts. Kubernetes resolves a
//! tag only when a kubelet pulls it, and says which digest it got in the pod's
//! `status.containerStatuses[].imageID` (the task's `containers[].imageDigest`). So a deployment is
//! pinned to the digests its first RUNNING task reports ([`pins_from_task`]), recorded in
//! `deployments[].pinnedImages`; the deployment's later tasks (replacements, scale-out), and a circuit
//! breaker rollback to the same task definition ([`inherited`]), run `image@sha256:…`. A container with
//! `versionConsistency: disabled`, or whose image already names a digest, keeps its image. Standalone
//! tasks are never pinned.

use std::collections::BTreeMap;

use crate::api::service::Deployment;
use crate::api::task::{LastStatus, TaskStatus};
use crate::api::task_definition::{TaskDefinitionSpec, VersionConsistency};

/// `image` pinned to the repository digest in `image_id` (`repo@sha256:…` or
/// `docker-pullable://repo@sha256:…`): the image's repository without tag, `@`, the digest. None when
/// `image_id` holds no repository digest: a bare `sha256:…` is the image's own ID (its config's
/// digest), which the runtime reports for an image it did not pull (loaded onto the node), and no
/// registry serves a manifest by it.
pub fn pinned_image(image: &str, image_id: &str) -> Option<String> {
    let (_, digest) = image_id.rsplit_once('@')?;
    let hex = digest.strip_prefix("sha256:")?;
    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let repo = image.split('@').next().unwrap_or(image);
    // A tag follows the last ':' after the last '/' (a ':' before it is a registry port).
    let name_start = repo.rfind('/').map_or(0, |i| i + 1);
    let repo = match repo[name_start..].find(':') {
        Some(i) => &repo[..name_start + i],
        None => repo,
    };
    Some(format!("{repo}@{digest}"))
}

/// The containers of `spec` whose image a deployment pins: `versionConsistency` not `disabled`, and
/// an image that names no digest yet.
fn pinnable(spec: &TaskDefinitionSpec) -> impl Iterator<Item = (&str, &str)> {
    spec.container_definitions
        .iter()
        .filter(|c| c.version_consistency != Some(VersionConsistency::Disabled))
        .filter(|c| !c.image.contains('@'))
        .map(|c| (c.name.as_str(), c.image.as_str()))
}

/// The pins a RUNNING task of a deployment of `spec` gives: every pinnable container with the digest
/// its pod reports. None while the task is not RUNNING or a digest is not known yet; an empty map when
/// nothing is to be pinned.
pub fn pins_from_task(
    spec: &TaskDefinitionSpec,
    task: &TaskStatus,
) -> Option<BTreeMap<String, String>> {
    if task.last_status != Some(LastStatus::Running) {
        return None;
    }
    pinnable(spec)
        .filter_map(|(name, image)| {
            let digest = task
                .containers
                .iter()
                .find(|c| c.name == name)
                .and_then(|c| c.image_digest.as_deref());
            // Not known yet: no pins from this task. Known but no repository digest: the container
            // keeps its tag, as a pin would name nothing the kubelet can pull.
            let Some(digest) = digest else {
                return Some(None);
            };
            pinned_image(image, digest).map(|pin| Some((name.to_string(), pin)))
        })
        .collect()
}

/// Pins for a deployment that has none from another deployment: a rollback runs the digests the
/// deployment it returns to ran (the newest other deployment of the same task definition with pins).
pub fn inherited<'a>(
    deployment: &Deployment,
    deployments: &'a [Deployment],
) -> Option<&'a BTreeMap<String, String>> {
    deployment.rolled_back_from.as_ref()?;
    deployments
        .iter()
        .filter(|d| d.id != deployment.id && d.task_definition == deployment.task_definition)
        .filter(|d| !d.pinned_images.is_empty())
        .max_by_key(|d| d.created_at.as_ref().map(|t| t.0))
        .map(|d| &d.pinned_images)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::task::ContainerStatus;
    use crate::api::task_definition::ContainerDefinition;

    const D: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn images_are_pinned_without_their_tag() {
        let id = format!("docker.io/library/nginx@{D}");
        for (image, want) in [
            ("nginx:1.27", "nginx"),
            ("nginx", "nginx"),
            ("registry:5000/team/web:v2", "registry:5000/team/web"),
            ("registry:5000/team/web", "registry:5000/team/web"),
            (
                "public.ecr.aws/nginx/nginx:latest",
                "public.ecr.aws/nginx/nginx",
            ),
        ] {
            assert_eq!(
                pinned_image(image, &id),
                Some(format!("{want}@{D}")),
                "{image}"
            );
        }
        assert_eq!(
            pinned_image("nginx:1.27", &format!("docker-pullable://nginx@{D}")),
            Some(format!("nginx@{D}"))
        );
        let image_ids = [D.to_string(), format!("docker://{D}")];
        for id in ["", "nginx:1.27", "sha256:abc", "docker.io/nginx@sha512:00"]
            .into_iter()
            .chain(image_ids.iter().map(String::as_str))
        {
            assert_eq!(pinned_image("nginx:1.27", id), None, "{id}");
        }
    }

    fn spec() -> TaskDefinitionSpec {
        TaskDefinitionSpec {
            container_definitions: vec![
                ContainerDefinition {
                    name: "web".into(),
                    image: "nginx:1.27".into(),
                    ..Default::default()
                },
                ContainerDefinition {
                    name: "log".into(),
                    image: "fluent-bit:3".into(),
                    version_consistency: Some(VersionConsistency::Disabled),
                    ..Default::default()
                },
                ContainerDefinition {
                    name: "proxy".into(),
                    image: format!("envoy@{D}"),
                    ..Default::default()
                },
            ],
            ..Default::default()
        }
    }

    fn task(last_status: &str, web_digest: Option<&str>) -> TaskStatus {
        let container = |name: &str, digest: Option<&str>| ContainerStatus {
            name: name.into(),
            image_digest: digest.map(str::to_owned),
            ..Default::default()
        };
        TaskStatus {
            last_status: LastStatus::parse(last_status),
            containers: vec![
                container("web", web_digest),
                container("log", Some(&format!("fluent-bit@{D}"))),
                container("proxy", Some(&format!("envoy@{D}"))),
            ],
            ..Default::default()
        }
    }

    #[test]
    fn a_running_task_pins_the_containers_that_ask_for_it() {
        let id = format!("docker.io/library/nginx@{D}");
        let pins = pins_from_task(&spec(), &task("RUNNING", Some(&id))).unwrap();
        assert_eq!(
            pins,
            BTreeMap::from([("web".to_string(), format!("nginx@{D}"))]),
            "disabled and digest images keep their image"
        );
        assert_eq!(
            pins_from_task(&spec(), &task("ACTIVATING", Some(&id))),
            None
        );
        assert_eq!(pins_from_task(&spec(), &task("RUNNING", None)), None);
        assert_eq!(
            pins_from_task(&spec(), &task("RUNNING", Some(D))),
            Some(BTreeMap::new()),
            "an image the node did not pull (a bare image ID) keeps its tag"
        );
        let mut all_disabled = spec();
        all_disabled.container_definitions.truncate(1);
        all_disabled.container_definitions[0].version_consistency =
            Some(VersionConsistency::Disabled);
        assert_eq!(
            pins_from_task(&all_disabled, &task("RUNNING", None)),
            Some(BTreeMap::new())
        );
    }

    #[test]
    fn a_rollback_inherits_the_pins_of_the_deployment_it_returns_to() {
        use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
        use k8s_openapi::jiff::Timestamp;
        let pins = BTreeMap::from([("web".to_string(), format!("nginx@{D}"))]);
        let at = |s| Some(Time(Timestamp::from_second(s).unwrap()));
        let old = Deployment {
            id: "ecs-svc/1".into(),
            task_definition: "web:1".into(),
            pinned_images: pins.clone(),
            created_at: at(1),
            ..Default::default()
        };
        let failed = Deployment {
            id: "ecs-svc/2".into(),
            task_definition: "web:2".into(),
            created_at: at(2),
            ..Default::default()
        };
        let rollback = Deployment {
            id: "ecs-svc/3".into(),
            task_definition: "web:1".into(),
            rolled_back_from: Some("web:2".into()),
            created_at: at(3),
            ..Default::default()
        };
        let all = vec![rollback.clone(), failed.clone(), old.clone()];
        assert_eq!(inherited(&rollback, &all), Some(&pins));
        assert_eq!(inherited(&failed, &all), None);
        let redeploy = Deployment {
            rolled_back_from: None,
            ..rollback.clone()
        };
        assert_eq!(
            inherited(&redeploy, &all),
            None,
            "a new deployment resolves its images again"
        );
    }
}
