//! What no decision reads is dropped from cached objects: a cache holds every object of its kind, and
//! `managedFields` (the field owners, a JSON tree per writer) is most of a small object's size.

use std::sync::Arc;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Resource;

use super::decode::Decoded;

/// `kubectl apply`'s copy of the whole object.
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// Drops `managedFields` and the last-applied annotation.
pub fn meta(meta: &mut ObjectMeta) {
    meta.managed_fields = None;
    if let Some(a) = meta.annotations.as_mut() {
        a.remove(LAST_APPLIED);
    }
}

/// [`meta`] of a watched object, decoded or not.
pub fn decoded<K: Resource + Clone>(obj: &mut Decoded<K>) {
    match &mut obj.0 {
        // Fresh from the watch, the Arc is not shared yet: nothing is copied.
        Ok(k) => meta(Arc::make_mut(k).meta_mut()),
        Err(bad) => meta(&mut Arc::make_mut(bad).metadata),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::Task;

    #[test]
    fn field_owners_and_the_applied_copy_go_the_rest_stays() {
        let task: Task = serde_json::from_value(serde_json::json!({
            "apiVersion": "ecs.operator.dev/v1alpha1", "kind": "Task",
            "metadata": {"name": "web", "labels": {"a": "1"},
                "annotations": {(LAST_APPLIED): "{}", "ecs.operator.dev/preferred-zone": "a"},
                "managedFields": [{"manager": "kubectl", "operation": "Apply"}]},
            "spec": {"taskDefinition": "web"}
        }))
        .unwrap();
        let mut obj = Decoded(Ok(Arc::new(task.clone())));
        decoded(&mut obj);
        let trimmed = obj.0.unwrap();
        assert_eq!(trimmed.metadata.managed_fields, None);
        let annotations = trimmed.metadata.annotations.clone().unwrap();
        assert_eq!(annotations.len(), 1);
        assert_eq!(annotations["ecs.operator.dev/preferred-zone"], "a");
        assert_eq!(trimmed.metadata.labels, task.metadata.labels);
        assert_eq!(trimmed.spec, task.spec);
    }
}
