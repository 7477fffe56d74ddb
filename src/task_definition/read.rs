//! Task definitions as a controller reads them: references resolved on the TaskDefinition cache, and
//! registered revision specs from an in-memory map. No request on the way, except the first read of a
//! revision: a ControllerRevision never changes once registered, so one GET serves every later task.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use k8s_openapi::api::apps::v1::ControllerRevision;
use kube::api::Api;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Client, ResourceExt};

use super::Unresolved;
use super::revision::{TaskDefinitionRef, object_name};
use crate::api::{TaskDefinition, TaskDefinitionSpec};
use crate::controller::decode::Decoded;
use crate::error::Error;

/// A revision as registered: the UID of the TaskDefinition that registered it, and its spec.
type Registered = (Option<String>, Arc<TaskDefinitionSpec>);

/// Reads task definitions from the controller's caches.
pub struct Reader {
    client: Client,
    definitions: Store<Decoded<TaskDefinition>>,
    /// `(namespace, ControllerRevision name)` → what it holds.
    revisions: Mutex<HashMap<(String, String), Registered>>,
}

impl Reader {
    pub fn new(client: Client, definitions: Store<Decoded<TaskDefinition>>) -> Self {
        Self {
            client,
            definitions,
            revisions: Mutex::default(),
        }
    }

    /// The cache of TaskDefinitions this reader resolves on.
    pub fn definitions(&self) -> &Store<Decoded<TaskDefinition>> {
        &self.definitions
    }

    /// The TaskDefinition of `family` in `ns`, if the cache holds it (and it decodes).
    pub fn definition(&self, ns: &str, family: &str) -> Option<Arc<TaskDefinition>> {
        let found = self.definitions.get(&ObjectRef::new(family).within(ns))?;
        found.0.as_ref().ok().cloned()
    }

    /// Resolves `reference` in `ns` on the cache (see [`super::resolve_on`]): `(family, revision)` or
    /// why it cannot be used now.
    pub fn resolve(
        &self,
        ns: &str,
        reference: &str,
        in_use: Option<i64>,
    ) -> Result<(String, i64), Unresolved> {
        let td = TaskDefinitionRef::parse(reference).and_then(|r| self.definition(ns, &r.family));
        super::resolve_on(reference, td.as_deref(), ns, in_use)
    }

    /// The spec registered as `family:revision` in `ns`. Read once, then kept: a revision is
    /// immutable. The entry is trusted only while the family's TaskDefinition is the one that
    /// registered it (a family deleted and created again registers its numbers anew).
    pub async fn spec(
        &self,
        ns: &str,
        family: &str,
        revision: i64,
    ) -> Result<Option<Arc<TaskDefinitionSpec>>, Error> {
        let key = (ns.to_string(), object_name(family, revision));
        let owner = self.definition(ns, family).and_then(|td| td.uid());
        if let Some((registered_by, spec)) = self.lock().get(&key)
            && (owner.is_none() || *registered_by == owner)
        {
            return Ok(Some(spec.clone()));
        }
        let api: Api<ControllerRevision> = Api::namespaced(self.client.clone(), ns);
        let Some(object) = api.get_opt(&key.1).await? else {
            self.lock().remove(&key);
            return Ok(None);
        };
        let registered_by = object
            .owner_references()
            .iter()
            .find(|o| o.controller == Some(true))
            .map(|o| o.uid.clone());
        let data = object.data.map(|d| d.0).unwrap_or_default();
        let spec: Arc<TaskDefinitionSpec> = serde_json::from_value(data["spec"].clone())
            .map(Arc::new)
            .map_err(|source| Error::Decode {
                what: format!("revision {family}:{revision}"),
                source,
            })?;
        self.lock().insert(key, (registered_by, spec.clone()));
        Ok(Some(spec))
    }

    /// Forgets the revisions of TaskDefinitions the cache no longer holds.
    pub fn prune(&self) {
        let live: std::collections::HashSet<String> = self
            .definitions
            .state()
            .iter()
            .filter_map(|td| td.0.as_ref().ok()?.uid())
            .collect();
        self.lock()
            .retain(|_, (owner, _)| owner.as_ref().is_some_and(|o| live.contains(o)));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(String, String), Registered>> {
        self.revisions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
