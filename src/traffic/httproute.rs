//! Reads an HTTPRoute and writes the weights of a traffic split to it.
//!
//! The route is the user's object: only the weights are written, by a JSON patch whose `test`
//! operations pin each backendRef to what was read. Server-side apply does not fit: `spec.rules` and each
//! rule's `backendRefs` are `x-kubernetes-list-type: atomic` in the Gateway API CRD, so applying a weight
//! means applying the whole rules list, which would make this field manager an owner of every rule
//! (conflicting with the user's next `kubectl apply`) and write back whatever it read. A merge patch with a
//! resourceVersion precondition would be safe too, but fails on every unrelated write (a Gateway
//! implementation updating status), where the tests fail only when a weighted backendRef changed.

use kube::Api;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams};
use serde_json::Value;

use super::weights::{self, Split, TrafficError};

/// The field manager of weight patches.
pub const FIELD_MANAGER: &str = "ecs-operator/traffic";

/// Attempts when a patch's test fails because the route changed between read and write.
const ATTEMPTS: usize = 3;

/// What [`shift`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShiftOutcome {
    /// The route already had the weights: nothing was written.
    Unchanged,
    /// This many backendRefs got a new weight.
    Written(usize),
}

/// Why a shift failed: the route (the user can fix it) or the API (retry).
#[derive(Debug, thiserror::Error)]
pub enum ShiftError {
    #[error(transparent)]
    Route(#[from] TrafficError),
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
}

/// The HTTPRoute kind, `gateway.networking.k8s.io/v1`.
pub fn api_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("gateway.networking.k8s.io", "v1", "HTTPRoute"),
        "httproutes",
    )
}

/// Sends `green_percent` of the traffic of every rule of the route named by `listener_rule` (in
/// `namespace`) to the Kubernetes Service `green`, the rest to `blue`. Writes nothing when the route
/// already has these weights, or when it cannot carry them (the error says why).
pub async fn shift(
    client: &kube::Client,
    namespace: &str,
    listener_rule: &str,
    blue: &str,
    green: &str,
    green_percent: f64,
) -> Result<ShiftOutcome, ShiftError> {
    let name = weights::route_name(listener_rule)?;
    let split = Split::from_green_percent(green_percent)?;
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, &api_resource());
    let mut attempt = 0;
    loop {
        attempt += 1;
        let Some(route) = api.get_opt(&name).await? else {
            return Err(TrafficError::RouteNotFound {
                namespace: namespace.to_string(),
                name,
            }
            .into());
        };
        let route = serde_json::to_value(&route).map_err(kube::Error::SerdeError)?;
        let changes = weights::plan(&route, blue, green, split)?;
        if changes.is_empty() {
            return Ok(ShiftOutcome::Unchanged);
        }
        let patch: json_patch::Patch = serde_json::from_value(weights::json_patch(&changes))
            .map_err(kube::Error::SerdeError)?;
        let params = PatchParams {
            field_manager: Some(FIELD_MANAGER.into()),
            ..PatchParams::default()
        };
        match api
            .patch(&name, &params, &Patch::Json::<Value>(patch))
            .await
        {
            Ok(_) => return Ok(ShiftOutcome::Written(changes.len())),
            // A failed `test`: the route changed since it was read. Read it again.
            Err(kube::Error::Api(s)) if s.code == 422 && attempt < ATTEMPTS => continue,
            Err(e) => return Err(e.into()),
        }
    }
}
