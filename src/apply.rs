//! The operator's writes that every controller shares: status through the status subresource with
//! server-side apply under the controller's own field manager, and Kubernetes Events.

use k8s_openapi::NamespaceResourceScope;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::events::{Event, EventType, Recorder};
use kube::{Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tracing::warn;

/// Applies `status` to the named object's status subresource (server-side apply, forced: the field
/// manager is this controller's and nobody else writes status), if the object is still the version
/// `obj` was read at. Returns the object as written (its new resourceVersion).
pub async fn status<K>(
    client: &kube::Client,
    obj: &K,
    manager: &str,
    status: &impl Serialize,
) -> Result<K, kube::Error>
where
    K: Resource<DynamicType = (), Scope = NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + std::fmt::Debug,
{
    let api: Api<K> = Api::namespaced(client.clone(), &obj.namespace().unwrap_or_default());
    let mut patch = serde_json::json!({
        "apiVersion": K::api_version(&()),
        "kind": K::kind(&()),
        "status": status,
    });
    // The resourceVersion the decision was made on is a precondition (409 otherwise, and the
    // reconcile runs again on fresh data): a status decided for an object that has since changed, or
    // been deleted and created again under the same name, is never written over it.
    if let Some(rv) = obj.resource_version() {
        patch["metadata"] = serde_json::json!({ "resourceVersion": rv });
    }
    api.patch_status(
        &obj.name_any(),
        &PatchParams::apply(manager).force(),
        &Patch::Apply(&patch),
    )
    .await
}

/// Publishes an Event about `obj`; a failure is logged, never fatal (events are best effort).
pub async fn event<K>(
    recorder: &Recorder,
    obj: &K,
    warning: bool,
    reason: &str,
    note: &str,
    action: &str,
) where
    K: Resource<DynamicType = ()>,
{
    let event = Event {
        type_: if warning {
            EventType::Warning
        } else {
            EventType::Normal
        },
        reason: reason.to_string(),
        // The Events API caps notes at 1 kB.
        note: Some(note.chars().take(1000).collect()),
        action: action.to_string(),
        secondary: None,
    };
    if let Err(e) = recorder.publish(&event, &obj.object_ref(&())).await {
        warn!(error = %e, reason, "cannot publish event");
    }
}
