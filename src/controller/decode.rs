//! A watched object that may not decode: one bad TaskDefinition, Task or Service (a value our types
//! refuse, e.g. left by an older version, or status written by hand) must not stop the watch of its
//! whole kind. [`Decoded`] always deserializes: to the object, or to its metadata and the decode
//! error with the JSON path of the bad value.
//!
//! kube's `DeserializeGuard` does the same, but keeps only the error's text (no path: it goes through
//! `serde_value`) and drops the stored status, which the `InvalidObject` condition is built from.

use std::borrow::Cow;
use std::sync::Arc;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Resource;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};

/// An object of kind `K` as stored: decoded, or why not.
#[derive(Debug)]
pub struct Decoded<K>(pub Result<Arc<K>, Arc<Undecodable>>);

// Cheap (two Arcs); derive would ask `K: Clone`.
impl<K> Clone for Decoded<K> {
    fn clone(&self) -> Self {
        Self(self.0.clone())
    }
}

/// An object that does not decode into its Rust type.
#[derive(Clone, Debug, PartialEq)]
pub struct Undecodable {
    pub metadata: ObjectMeta,
    /// JSON path of the value refused, e.g. `status.runningCount` (`.` for the object itself).
    pub path: String,
    /// What is wrong with it.
    pub message: String,
    /// The stored `status`, as JSON: the conditions to keep when reporting the problem there.
    pub status: Option<serde_json::Value>,
}

impl std::fmt::Display for Undecodable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

impl<'de, K: DeserializeOwned> Deserialize<'de> for Decoded<K> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = serde_json::Value::deserialize(deserializer)?;
        Ok(Decoded(decode(value)))
    }
}

/// Decodes `value` as a `K`, or says where and why it cannot. Fails only without readable metadata:
/// then not even the object's name is known. Such an object is kept as an error with empty metadata.
pub fn decode<K: DeserializeOwned>(
    mut value: serde_json::Value,
) -> Result<Arc<K>, Arc<Undecodable>> {
    match serde_path_to_error::deserialize::<_, K>(&value) {
        Ok(obj) => Ok(Arc::new(obj)),
        Err(e) => {
            let path = e.path().to_string();
            let message = e.into_inner().to_string();
            let metadata = value
                .get_mut("metadata")
                .map(serde_json::Value::take)
                .and_then(|m| serde_json::from_value(m).ok())
                .unwrap_or_default();
            let status = value.get_mut("status").map(serde_json::Value::take);
            Err(Arc::new(Undecodable {
                metadata,
                path,
                message,
                status,
            }))
        }
    }
}

impl<K: Resource<DynamicType = ()> + Clone> Resource for Decoded<K> {
    type DynamicType = ();
    type Scope = K::Scope;

    fn kind(dt: &()) -> Cow<'_, str> {
        K::kind(dt)
    }

    fn group(dt: &()) -> Cow<'_, str> {
        K::group(dt)
    }

    fn version(dt: &()) -> Cow<'_, str> {
        K::version(dt)
    }

    fn plural(dt: &()) -> Cow<'_, str> {
        K::plural(dt)
    }

    fn meta(&self) -> &ObjectMeta {
        match &self.0 {
            Ok(obj) => obj.meta(),
            Err(bad) => &bad.metadata,
        }
    }

    fn meta_mut(&mut self) -> &mut ObjectMeta {
        // A reflector store writes nothing into its objects; kept for the trait, at the cost of a copy
        // of a shared object when called.
        match &mut self.0 {
            Ok(obj) => Arc::make_mut(obj).meta_mut(),
            Err(bad) => &mut Arc::make_mut(bad).metadata,
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::api::Service;

    fn service(created_at: &str) -> serde_json::Value {
        json!({
            "apiVersion": "ecs.operator.dev/v1alpha1", "kind": "Service",
            "metadata": {"name": "web", "namespace": "ns", "generation": 2},
            "spec": {"taskDefinition": "web"},
            "status": {"events": [{"id": "x", "message": "m", "createdAt": created_at}]}
        })
    }

    #[test]
    fn a_good_object_decodes() {
        let d: Decoded<Service> =
            serde_json::from_value(service("2026-01-01T00:00:00.123456789Z")).unwrap();
        assert_eq!(d.0.unwrap().spec.task_definition, "web");
    }

    #[test]
    fn a_bad_value_is_kept_with_its_path_and_the_metadata() {
        // The API server's date-time accepts ten fraction digits; our timestamps take nine.
        let d: Decoded<Service> =
            serde_json::from_value(service("2026-01-01T00:00:00.1234567890Z")).unwrap();
        let bad = d.0.unwrap_err();
        assert_eq!(bad.path, "status.events[0].createdAt");
        assert!(!bad.message.is_empty());
        assert_eq!(bad.metadata.name.as_deref(), Some("web"));
        assert_eq!(bad.metadata.generation, Some(2));
        assert_eq!(bad.status.as_ref().unwrap()["events"][0]["id"], "x");
        // It is still an object of its kind, with its name, for the controller's queue.
        let d: Decoded<Service> = Decoded(Err(bad));
        assert_eq!(d.meta().namespace.as_deref(), Some("ns"));
        assert_eq!(Decoded::<Service>::kind(&()), "Service");
    }

    #[test]
    fn a_status_word_this_version_does_not_know_is_reported_not_guessed() {
        // E.g. written by a newer operator before a downgrade: the object is kept as undecodable
        // (an InvalidObject condition), its watch and the other objects go on.
        let task = json!({
            "apiVersion": "ecs.operator.dev/v1alpha1", "kind": "Task",
            "metadata": {"name": "web-1", "namespace": "ns"},
            "spec": {"taskDefinition": "web"},
            "status": {"lastStatus": "PAUSED", "podName": "web-1"}
        });
        let d: Decoded<crate::api::Task> = serde_json::from_value(task).unwrap();
        let bad = d.0.unwrap_err();
        assert_eq!(bad.path, "status.lastStatus");
        assert!(bad.message.contains("PAUSED"), "{}", bad.message);
        assert_eq!(bad.status.as_ref().unwrap()["podName"], "web-1");
    }

    #[test]
    fn a_list_with_one_bad_object_still_decodes() {
        let list: Vec<Decoded<Service>> = serde_json::from_value(json!([
            service("2026-01-01T00:00:00Z"),
            service("2026-01-01T00:00:00.1234567890Z"),
            service("2026-01-01T00:00:00Z"),
        ]))
        .unwrap();
        let good: Vec<bool> = list.iter().map(|d| d.0.is_ok()).collect();
        assert_eq!(good, [true, false, true]);
    }
}
