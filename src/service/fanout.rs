//! Which services a node event can affect: pure.
//!
//! A node's heartbeat (a new `lastHeartbeatTime`, a new resourceVersion) changes nothing a service
//! decides on, so it reconciles none. A node added or deleted, or a change of what eligibility and
//! placement read ([`Fingerprint`]), reconciles the services it can affect: DAEMON services, services
//! with placement constraints (theirs or their task definition's), services with tasks on that node
//! or tasks not placed yet, and every service when the set of zones with eligible nodes changes.

use std::collections::{BTreeMap, BTreeSet};

use std::sync::Arc;

use futures::{Stream, StreamExt};
use k8s_openapi::api::core::v1::Node;
use kube::ResourceExt;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;

use super::cache::Caches;
use crate::api::Service;
use crate::controller::decode::Decoded;

use crate::placement::ZONE_LABEL;

/// What service decisions read of a node: labels (zones, constraints' attributes), schedulability,
/// taints, readiness and allocatable resources. Everything else is ignored.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Fingerprint {
    pub labels: BTreeMap<String, String>,
    pub eligible: bool,
    pub unschedulable: bool,
    pub taints: Vec<(String, Option<String>, String)>,
    pub ready: bool,
    pub allocatable: BTreeMap<String, String>,
}

impl Fingerprint {
    pub fn of(node: &Node) -> Self {
        let spec = node.spec.as_ref();
        let status = node.status.as_ref();
        let mut taints: Vec<_> = spec
            .and_then(|s| s.taints.as_ref())
            .into_iter()
            .flatten()
            .map(|t| (t.key.clone(), t.value.clone(), t.effect.clone()))
            .collect();
        taints.sort();
        Fingerprint {
            labels: node.labels().clone(),
            eligible: super::nodes::is_eligible(node),
            unschedulable: spec.and_then(|s| s.unschedulable).unwrap_or(false),
            taints,
            ready: status
                .and_then(|s| s.conditions.as_ref())
                .into_iter()
                .flatten()
                .any(|c| c.type_ == "Ready" && c.status == "True"),
            allocatable: status
                .and_then(|s| s.allocatable.as_ref())
                .map(|a| a.iter().map(|(k, v)| (k.clone(), v.0.clone())).collect())
                .unwrap_or_default(),
        }
    }

    /// The zone it adds to the services' zones: eligible nodes only.
    fn zone(&self) -> Option<&str> {
        self.eligible
            .then(|| self.labels.get(ZONE_LABEL).map(String::as_str))
            .flatten()
    }
}

/// What the last reconcile of a service learnt that node events are matched against.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    pub daemon: bool,
    /// Placement constraints of the service or of its task definition (attributes, memberOf).
    pub constrained: bool,
    /// Nodes its alive tasks run on or are pinned to.
    pub nodes: BTreeSet<String>,
    /// It has tasks not placed yet, which a node change may let the scheduler place.
    pub pending: bool,
}

/// The zones with eligible nodes, from the fingerprints of all nodes.
pub fn zones<'a>(nodes: impl IntoIterator<Item = &'a Fingerprint>) -> BTreeSet<String> {
    nodes
        .into_iter()
        .filter_map(|f| f.zone().map(str::to_owned))
        .collect()
}

/// The services (keys of `services`) to reconcile after node `node` went from `before` to `after`
/// (`None`: absent), given the fingerprints of the other nodes (`others`). Services not summarized
/// yet are the caller's to add.
pub fn affected<'a, K: Clone + 'a>(
    node: &str,
    before: Option<&Fingerprint>,
    after: Option<&Fingerprint>,
    others: &BTreeSet<String>,
    services: impl IntoIterator<Item = (&'a K, &'a Summary)>,
) -> Vec<K> {
    if before == after {
        return Vec::new();
    }
    let zone = |f: Option<&Fingerprint>| f.and_then(Fingerprint::zone).map(str::to_owned);
    let zones_change = zone(before) != zone(after)
        && [zone(before), zone(after)]
            .into_iter()
            .flatten()
            .any(|z| !others.contains(&z));
    services
        .into_iter()
        .filter(|(_, s)| {
            zones_change || s.daemon || s.constrained || s.pending || s.nodes.contains(node)
        })
        .map(|(k, _)| k.clone())
        .collect()
}

/// The services to reconcile for each node event of `events`: [`affected`] against the fingerprints
/// of the nodes seen so far (kept in `caches`), plus the services not reconciled yet (no summary).
/// A relist that no longer has a node is its delete.
pub fn triggers(
    events: impl Stream<Item = Result<watcher::Event<Node>, watcher::Error>> + Send + 'static,
    services: Store<Decoded<Service>>,
    caches: Arc<Caches>,
) -> impl Stream<Item = ObjectRef<Decoded<Service>>> + Send + 'static {
    let mut listed: Option<BTreeSet<String>> = None;
    events
        .filter_map(|e| std::future::ready(e.ok()))
        .flat_map(move |event| {
            let changes: Vec<(String, Option<Fingerprint>)> = match event {
                watcher::Event::Init => {
                    listed = Some(BTreeSet::new());
                    Vec::new()
                }
                watcher::Event::InitApply(n) => {
                    listed.get_or_insert_default().insert(n.name_any());
                    vec![(n.name_any(), Some(Fingerprint::of(&n)))]
                }
                watcher::Event::InitDone => {
                    let listed = listed.take().unwrap_or_default();
                    let known = caches.fingerprints.lock().expect("not poisoned");
                    known
                        .keys()
                        .filter(|n| !listed.contains(*n))
                        .map(|n| (n.clone(), None))
                        .collect()
                }
                watcher::Event::Apply(n) => vec![(n.name_any(), Some(Fingerprint::of(&n)))],
                watcher::Event::Delete(n) => vec![(n.name_any(), None)],
            };
            let mut refs = std::collections::HashSet::new();
            for (node, after) in changes {
                refs.extend(node_changed(&caches, &services, &node, after));
            }
            futures::stream::iter(refs)
        })
}

/// Records a node's new fingerprint (`None`: gone) and returns the services the change affects.
fn node_changed(
    caches: &Caches,
    services: &Store<Decoded<Service>>,
    node: &str,
    after: Option<Fingerprint>,
) -> Vec<ObjectRef<Decoded<Service>>> {
    let mut known = caches.fingerprints.lock().expect("not poisoned");
    let before = match &after {
        Some(f) => known.insert(node.to_string(), f.clone()),
        None => known.remove(node),
    };
    if before == after {
        return Vec::new();
    }
    let others = zones(known.iter().filter(|(n, _)| *n != node).map(|(_, f)| f));
    drop(known);
    let summaries = caches.summaries.lock().expect("not poisoned");
    let mut refs = affected(
        node,
        before.as_ref(),
        after.as_ref(),
        &others,
        summaries.iter(),
    );
    // Not reconciled yet: nothing known to rule it out.
    refs.extend(
        services
            .state()
            .iter()
            .map(|s| ObjectRef::from_obj(s.as_ref()))
            .filter(|k| !summaries.contains_key(k)),
    );
    refs
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn node(labels: serde_json::Value, ready: bool, heartbeat: &str) -> Node {
        serde_json::from_value(json!({
            "metadata": {"name": "n1", "labels": labels, "resourceVersion": heartbeat},
            "spec": {},
            "status": {
                "allocatable": {"cpu": "4", "memory": "8Gi"},
                "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" },
                                "lastHeartbeatTime": format!("2026-12-01T00:00:0{heartbeat}Z")}]
            }
        }))
        .unwrap()
    }

    fn services() -> BTreeMap<&'static str, Summary> {
        BTreeMap::from([
            ("plain", Summary::default()),
            (
                "daemon",
                Summary {
                    daemon: true,
                    ..Default::default()
                },
            ),
            (
                "constrained",
                Summary {
                    constrained: true,
                    ..Default::default()
                },
            ),
            (
                "pending",
                Summary {
                    pending: true,
                    ..Default::default()
                },
            ),
            (
                "on-n1",
                Summary {
                    nodes: BTreeSet::from(["n1".to_string()]),
                    ..Default::default()
                },
            ),
            (
                "on-n2",
                Summary {
                    nodes: BTreeSet::from(["n2".to_string()]),
                    ..Default::default()
                },
            ),
        ])
    }

    fn run(before: Option<&Node>, after: Option<&Node>, others: &[&str]) -> Vec<&'static str> {
        let (b, a) = (before.map(Fingerprint::of), after.map(Fingerprint::of));
        let others = others.iter().map(|z| z.to_string()).collect();
        affected("n1", b.as_ref(), a.as_ref(), &others, &services())
    }

    #[test]
    fn a_heartbeat_reconciles_nothing() {
        let labels = json!({ZONE_LABEL: "a"});
        let (b, a) = (node(labels.clone(), true, "1"), node(labels, true, "2"));
        assert!(run(Some(&b), Some(&a), &["a"]).is_empty());
    }

    #[test]
    fn a_change_reaches_only_the_services_it_can_affect() {
        let b = node(json!({ZONE_LABEL: "a"}), true, "1");
        let a = node(json!({ZONE_LABEL: "a", "bench/irrelevant": "x"}), true, "2");
        assert_eq!(
            run(Some(&b), Some(&a), &["a"]),
            ["constrained", "daemon", "on-n1", "pending"]
        );
        let not_ready = node(json!({ZONE_LABEL: "a"}), false, "2");
        assert_eq!(
            run(Some(&b), Some(&not_ready), &["a"]),
            ["constrained", "daemon", "on-n1", "pending"]
        );
    }

    #[test]
    fn a_zone_appearing_or_going_reaches_every_service() {
        let n = node(json!({ZONE_LABEL: "c"}), true, "1");
        assert_eq!(run(None, Some(&n), &["a", "b"]).len(), services().len());
        assert_eq!(run(Some(&n), None, &["a", "b"]).len(), services().len());
        // Another node keeps the zone: only the services the node itself matters to.
        assert_eq!(
            run(None, Some(&n), &["a", "c"]),
            ["constrained", "daemon", "on-n1", "pending"]
        );
        // A node that goes NotReady takes its zone away if it was the zone's last one.
        let down = node(json!({ZONE_LABEL: "c"}), false, "2");
        assert_eq!(run(Some(&n), Some(&down), &["a"]).len(), services().len());
    }
}
