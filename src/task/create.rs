//! What a failed pod create means for the task: pure.
//!
//! The API server refuses a pod for good when admission says no (ResourceQuota, LimitRange, Pod
//! Security, a validating webhook) or the pod is invalid: the task then fails to start, as an ECS
//! task that cannot be launched does, instead of retrying the same refused pod forever. A name that is
//! already taken is only ours if the existing pod's controller is this very Task (by UID): a pod left
//! by an earlier Task of the same name is waited for, anyone else's pod is never touched.

use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;
use kube::core::Status;

use crate::api::Task;
use kube::Resource;

/// Prefix of the stoppedReason of a task whose pod the API refused (ECS words: `Cannot…Error: detail`).
pub const CANNOT_CREATE_POD: &str = "CannotCreatePodError";

/// What to do after `POST pods` failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CreateFailure {
    /// The name is taken: read the existing pod and [`classify_existing`] it.
    NameTaken,
    /// Refused for good: the task fails to start with this stoppedReason.
    Refused { stopped_reason: String },
    /// Worth retrying (throttling, an unavailable API server or webhook, an authentication hiccup).
    Transient { message: String },
}

/// Classifies the API's answer to a pod create.
pub fn classify_error(error: &kube::Error) -> CreateFailure {
    match error {
        kube::Error::Api(status) => classify_status(status),
        other => CreateFailure::Transient {
            message: other.to_string(),
        },
    }
}

fn classify_status(status: &Status) -> CreateFailure {
    match status.code {
        409 => CreateFailure::NameTaken,
        // 400 bad request, 403 admission (quota, LimitRange, Pod Security, webhooks, RBAC), 404 a
        // namespace being deleted, 413 too large, 422 invalid: the same pod will be refused again.
        400 | 403 | 404 | 413 | 422 => CreateFailure::Refused {
            stopped_reason: format!("{CANNOT_CREATE_POD}: {}", status.message),
        },
        // 401, 429, 5xx (including a webhook that cannot be called): the same pod may be accepted later.
        _ => CreateFailure::Transient {
            message: format!("{} ({})", status.message, status.code),
        },
    }
}

/// Who holds a pod name the task wants.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Existing {
    /// This Task's own pod (a replay after a lost status write): carry on.
    Ours,
    /// The pod of an earlier Task with the same name (deleted, its pod still terminating or waiting
    /// for garbage collection): wait until it is gone.
    EarlierTask,
    /// Someone else's pod: never adopted, never deleted.
    Foreign,
}

/// Classifies the pod found under the task's pod name.
pub fn classify_existing(pod: &Pod, task: &Task) -> Existing {
    let controller = pod
        .owner_references()
        .iter()
        .find(|o| o.controller == Some(true));
    match controller {
        Some(o) if Some(&o.uid) == task.meta().uid.as_ref() => Existing::Ours,
        Some(o) if o.kind == Task::kind(&()) && o.api_version == Task::api_version(&()) => {
            Existing::EarlierTask
        }
        _ => Existing::Foreign,
    }
}

/// The stoppedReason of a task whose pod name is held by a pod it does not own.
pub fn foreign_reason(pod_name: &str) -> String {
    format!(
        "{CANNOT_CREATE_POD}: a pod named {pod_name} already exists and does not belong to this task; it was left untouched"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;

    fn status(code: u16, message: &str) -> kube::Error {
        let mut s = Status::failure(message, "");
        s.code = code;
        kube::Error::Api(Box::new(s))
    }

    #[test]
    fn admission_refusals_fail_the_task_with_the_api_message() {
        for (code, message) in [
            (
                403,
                "pods \"t\" is forbidden: exceeded quota: one, requested: pods=1, used: pods=1, limited: pods=1",
            ),
            (
                403,
                "pods \"t\" is forbidden: violates PodSecurity \"restricted:latest\": privileged",
            ),
            (
                400,
                "admission webhook \"deny.example.com\" denied the request: no",
            ),
            (
                422,
                "Pod \"t\" is invalid: spec.containers[0].image: Required value",
            ),
        ] {
            assert_eq!(
                classify_error(&status(code, message)),
                CreateFailure::Refused {
                    stopped_reason: format!("CannotCreatePodError: {message}")
                },
                "{code}"
            );
        }
    }

    #[test]
    fn throttling_outages_and_unreachable_webhooks_are_retried() {
        for code in [401, 429, 500, 503, 504] {
            assert!(
                matches!(
                    classify_error(&status(code, "later")),
                    CreateFailure::Transient { .. }
                ),
                "{code}"
            );
        }
    }

    #[test]
    fn a_taken_name_is_looked_at_not_assumed_ours() {
        assert_eq!(
            classify_error(&status(409, "already exists")),
            CreateFailure::NameTaken
        );
    }

    fn task(uid: &str) -> Task {
        let mut t: Task = serde_json::from_value(serde_json::json!({
            "apiVersion": "ecs.operator.dev/v1alpha1", "kind": "Task",
            "metadata": {"name": "t", "namespace": "ns", "uid": uid},
            "spec": {"taskDefinition": "f"}
        }))
        .unwrap();
        t.metadata.uid = Some(uid.into());
        t
    }

    fn pod(owner: Option<(&str, &str, &str, bool)>) -> Pod {
        let mut p = Pod::default();
        p.metadata.name = Some("t".into());
        p.metadata.owner_references = owner.map(|(api_version, kind, uid, controller)| {
            vec![OwnerReference {
                api_version: api_version.into(),
                kind: kind.into(),
                name: "t".into(),
                uid: uid.into(),
                controller: Some(controller),
                ..Default::default()
            }]
        });
        p
    }

    #[test]
    fn only_a_pod_controlled_by_this_task_uid_is_ours() {
        let t = task("new");
        let api = Task::api_version(&()).to_string();
        assert_eq!(
            classify_existing(&pod(Some((&api, "Task", "new", true))), &t),
            Existing::Ours
        );
        assert_eq!(
            classify_existing(&pod(Some((&api, "Task", "old", true))), &t),
            Existing::EarlierTask
        );
        assert_eq!(classify_existing(&pod(None), &t), Existing::Foreign);
        assert_eq!(
            classify_existing(&pod(Some(("apps/v1", "ReplicaSet", "rs", true))), &t),
            Existing::Foreign
        );
        // An owner that is not the controller does not make the pod ours.
        assert_eq!(
            classify_existing(&pod(Some((&api, "Task", "new", false))), &t),
            Existing::Foreign
        );
    }
}
