//! What the benchmark waits on: the pods of one namespace, as a watch sees them.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::api::Api;
use kube::runtime::watcher::{self, Event};
use kube::{Client, ResourceExt};
use tokio::sync::Notify;

#[derive(Clone, Debug)]
pub struct PodInfo {
    pub ready: bool,
    pub deleting: bool,
    pub image: String,
    /// When the watch first saw it.
    pub seen: Instant,
}

#[derive(Clone)]
pub struct Pods {
    state: Arc<Mutex<BTreeMap<String, PodInfo>>>,
    changed: Arc<Notify>,
    task: Arc<tokio::task::JoinHandle<()>>,
}

impl Drop for Pods {
    fn drop(&mut self) {
        if Arc::strong_count(&self.task) == 1 {
            self.task.abort();
        }
    }
}

impl Pods {
    pub fn watch(client: &Client, ns: &str) -> Self {
        let api: Api<Pod> = Api::namespaced(client.clone(), ns);
        let state: Arc<Mutex<BTreeMap<String, PodInfo>>> = Arc::default();
        let changed = Arc::new(Notify::new());
        let (s, c) = (state.clone(), changed.clone());
        let task = tokio::spawn(async move {
            let mut stream = watcher::watcher(api, watcher::Config::default()).boxed();
            while let Some(event) = stream.next().await {
                let Ok(event) = event else { continue };
                let mut st = s.lock().unwrap();
                match event {
                    Event::Apply(p) | Event::InitApply(p) => {
                        let name = p.name_any();
                        let seen = st.get(&name).map_or_else(Instant::now, |i| i.seen);
                        st.insert(name, info(&p, seen));
                    }
                    Event::Delete(p) => {
                        st.remove(&p.name_any());
                    }
                    Event::Init | Event::InitDone => {}
                }
                drop(st);
                c.notify_waiters();
            }
        });
        Self {
            state,
            changed,
            task: Arc::new(task),
        }
    }

    /// Waits until `f` holds for the pods, up to `deadline`; returns when it did.
    pub async fn until(
        &self,
        deadline: Duration,
        f: impl Fn(&BTreeMap<String, PodInfo>) -> bool,
    ) -> anyhow::Result<Instant> {
        let end = Instant::now() + deadline;
        loop {
            let notified = self.changed.notified();
            if f(&self.state.lock().unwrap()) {
                return Ok(Instant::now());
            }
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                anyhow::bail!("timed out after {deadline:?}");
            }
            let _ = tokio::time::timeout(left.min(Duration::from_millis(200)), notified).await;
        }
    }

    pub fn snapshot(&self) -> BTreeMap<String, PodInfo> {
        self.state.lock().unwrap().clone()
    }
}

fn info(p: &Pod, seen: Instant) -> PodInfo {
    let ready = p
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
    PodInfo {
        ready,
        deleting: p.metadata.deletion_timestamp.is_some(),
        image: p
            .spec
            .as_ref()
            .and_then(|s| s.containers.first())
            .and_then(|c| c.image.clone())
            .unwrap_or_default(),
        seen,
    }
}

/// Ready pods not being deleted, with `image` if given.
pub fn ready(pods: &BTreeMap<String, PodInfo>, image: Option<&str>) -> usize {
    pods.values()
        .filter(|p| p.ready && !p.deleting && image.is_none_or(|i| p.image == i))
        .count()
}
