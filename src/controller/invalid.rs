//! Reporting an object that does not decode, on the object itself: a Warning Event naming the bad
//! value's path and the error, and a `Ready=False` condition (reason `InvalidObject`) written with a
//! JSON merge patch on the status subresource (our status type may be what cannot read it, so the
//! patch is built from the stored JSON). Written only when it changes.

use std::fmt::Debug;

use k8s_openapi::NamespaceResourceScope;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::events::Recorder;
use kube::{Resource, ResourceExt};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use tracing::warn;

use super::decode::{Decoded, Undecodable};
use crate::error::Error;

/// Condition reason (and Event reason) of an object the operator cannot read.
pub const REASON: &str = "InvalidObject";
const MANAGER: &str = "ecs-operator/invalid-object";

/// The message for `bad`, an object of kind `kind`.
pub fn message(kind: &str, bad: &Undecodable) -> String {
    format!(
        "the operator cannot read this {kind}: {bad}; it leaves the object alone until the value is fixed (other objects are not affected)"
    )
}

/// The stored conditions with `Ready` set to False for `message`, or None when they already say so.
/// `lastTransitionTime` moves only when Ready was not False already.
pub fn conditions(
    status: Option<&Value>,
    message: &str,
    generation: Option<i64>,
    now: &Value,
) -> Option<Vec<Value>> {
    let mut list: Vec<Value> = status
        .and_then(|s| s.get("conditions"))
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let at = list.iter().position(|c| c["type"] == "Ready");
    let previous = at.map(|i| list[i].clone());
    let transition = match &previous {
        Some(p) if p["status"] == "False" && !p["lastTransitionTime"].is_null() => {
            p["lastTransitionTime"].clone()
        }
        _ => now.clone(),
    };
    let mut ready = json!({
        "type": "Ready",
        "status": "False",
        "reason": REASON,
        "message": message,
        "lastTransitionTime": transition,
    });
    if let Some(g) = generation {
        ready["observedGeneration"] = g.into();
    }
    if previous.as_ref() == Some(&ready) {
        return None;
    }
    match at {
        Some(i) => list[i] = ready,
        None => list.push(ready),
    }
    Some(list)
}

/// Reports `bad` on the object `obj`: a condition when it changed, and then an Event.
pub async fn report<K>(
    client: &kube::Client,
    recorder: &Recorder,
    obj: &Decoded<K>,
    bad: &Undecodable,
) -> Result<(), Error>
where
    K: Resource<DynamicType = (), Scope = NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + Debug,
{
    let kind = K::kind(&());
    let message = message(&kind, bad);
    let now = serde_json::to_value(crate::time::now()).expect("a time serializes");
    let Some(conditions) = conditions(bad.status.as_ref(), &message, bad.metadata.generation, &now)
    else {
        return Ok(());
    };
    warn!(kind = %kind, object = %obj.name_any(), path = %bad.path, error = %bad.message, "cannot decode object");
    let api: Api<Decoded<K>> =
        Api::namespaced(client.clone(), &obj.namespace().unwrap_or_default());
    let patch = json!({ "status": { "conditions": conditions } });
    let written = api
        .patch_status(
            &obj.name_any(),
            &PatchParams {
                field_manager: Some(MANAGER.into()),
                ..Default::default()
            },
            &Patch::Merge(&patch),
        )
        .await;
    match written {
        Ok(_) => {}
        // The object went away, or its schema refuses even this: the Event still says why.
        Err(kube::Error::Api(s)) if s.code == 404 || s.code == 422 => {
            warn!(kind = %kind, object = %obj.name_any(), error = %s, "cannot write the InvalidObject condition")
        }
        Err(e) => return Err(e.into()),
    }
    crate::apply::event(recorder, obj, true, REASON, &message, "Decode").await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> Value {
        json!("2026-01-01T00:00:00Z")
    }

    #[test]
    fn ready_false_is_added_and_others_kept() {
        let status = json!({"runningCount": "x", "conditions": [
            {"type": "Progressing", "status": "True", "reason": "r", "message": "", "lastTransitionTime": "2025-01-01T00:00:00Z"},
            {"type": "Ready", "status": "True", "reason": "SteadyState", "message": "", "lastTransitionTime": "2025-01-01T00:00:00Z"}
        ]});
        let list = conditions(Some(&status), "m", Some(3), &now()).unwrap();
        assert_eq!(list.len(), 2);
        assert_eq!(list[0]["type"], "Progressing");
        assert_eq!(
            list[1],
            json!({"type": "Ready", "status": "False", "reason": REASON, "message": "m",
                   "lastTransitionTime": "2026-01-01T00:00:00Z", "observedGeneration": 3})
        );
    }

    #[test]
    fn nothing_to_write_when_it_already_says_so() {
        let first = conditions(None, "m", Some(1), &now()).unwrap();
        let status = json!({ "conditions": first });
        let later = json!("2026-02-01T00:00:00Z");
        assert_eq!(conditions(Some(&status), "m", Some(1), &later), None);
        // A new error message is written, keeping the transition time (Ready was False already).
        let changed = conditions(Some(&status), "other", Some(1), &later).unwrap();
        assert_eq!(changed[0]["lastTransitionTime"], now());
        assert_eq!(changed[0]["message"], "other");
    }

    #[test]
    fn the_message_names_the_path_and_the_error() {
        let bad = Undecodable {
            metadata: Default::default(),
            path: "status.runningCount".into(),
            message: "invalid type: string \"x\", expected i32".into(),
            status: None,
        };
        assert_eq!(
            message("Service", &bad),
            "the operator cannot read this Service: status.runningCount: invalid type: string \"x\", expected i32; it leaves the object alone until the value is fixed (other objects are not affected)"
        );
    }
}
