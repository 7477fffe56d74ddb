//! What the operator's load balancer Services route to, as the EndpointSlice controller shows it,
//! recorded by a watch for as long as a test runs.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::ResourceExt;
use kube::api::Api;
use kube::runtime::watcher;

use super::TestNamespace;

/// Every distinct set of ready endpoint addresses a Kubernetes Service's EndpointSlices showed, in
/// order (recorded by a watch until dropped).
pub struct Endpoints {
    seen: Arc<Mutex<Vec<BTreeSet<String>>>>,
    task: tokio::task::JoinHandle<()>,
    /// How long [`Self::wait_for`] waits.
    deadline: Duration,
}

impl Endpoints {
    /// Watches the endpoints of Service `service`; [`Self::wait_for`] fails after `deadline`.
    pub fn watch(ns: &TestNamespace, service: &str, deadline: Duration) -> Self {
        let api: Api<EndpointSlice> = ns.api();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let record = seen.clone();
        let config =
            watcher::Config::default().labels(&format!("kubernetes.io/service-name={service}"));
        let task = tokio::spawn(async move {
            let mut slices: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
            let mut stream = watcher(api, config).boxed();
            while let Some(event) = stream.next().await {
                let ready = |s: &EndpointSlice| -> BTreeSet<String> {
                    s.endpoints
                        .iter()
                        .flatten()
                        .filter(|e| e.conditions.as_ref().and_then(|c| c.ready) == Some(true))
                        .flat_map(|e| e.addresses.clone())
                        .collect()
                };
                match event {
                    Ok(watcher::Event::Apply(s)) | Ok(watcher::Event::InitApply(s)) => {
                        slices.insert(s.name_any(), ready(&s));
                    }
                    Ok(watcher::Event::Delete(s)) => {
                        slices.remove(&s.name_any());
                    }
                    Ok(watcher::Event::Init) => slices.clear(),
                    _ => continue,
                }
                let now: BTreeSet<String> = slices.values().flatten().cloned().collect();
                let mut seen = record.lock().unwrap();
                if seen.last() != Some(&now) {
                    seen.push(now);
                }
            }
        });
        Endpoints {
            seen,
            task,
            deadline,
        }
    }

    pub fn seen(&self) -> Vec<BTreeSet<String>> {
        self.seen.lock().unwrap().clone()
    }

    /// Waits until the endpoints are exactly `ips`.
    pub async fn wait_for(&self, ips: &BTreeSet<String>) {
        let until = tokio::time::Instant::now() + self.deadline;
        while self.seen().last() != Some(ips) {
            assert!(
                tokio::time::Instant::now() < until,
                "endpoints {:?} never became {ips:?}",
                self.seen().last()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Endpoints {
    fn drop(&mut self) {
        self.task.abort();
    }
}
