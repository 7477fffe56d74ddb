//! Services when nodes fail: a zone goes NotReady (its tasks are replaced in the other zones) and comes
//! back (AZ rebalancing moves tasks back); DAEMON services follow nodes as they go and return.
//!
//! These tests take nodes down, which every test on the cluster shares: they live in their own test
//! binary (cargo runs binaries one after another) and take turns through a lock.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use ecs_operator::api::task::{LastStatus, StopCode};
use ecs_operator::api::{Service, Task};
use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, ListParams, Patch, PatchParams};
use serde_json::json;
use support::setup::Setup;
use support::{TestNamespace, wait_for};

static NODES: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
const NOT_READY: &str = "node-not-ready.stage.kwok.x-k8s.io";
const DEADLINE: Duration = Duration::from_secs(120);

/// Makes nodes NotReady through kwok's chaos stage; brings them back when dropped, even on failure.
struct Outage {
    nodes: Api<Node>,
    names: Vec<String>,
}

impl Outage {
    async fn start(client: &kube::Client, names: &[&str]) -> Self {
        let nodes: Api<Node> = Api::all(client.clone());
        for name in names {
            let patch = json!({"metadata": {"labels": {NOT_READY: "true"}}});
            nodes
                .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
                .unwrap();
        }
        Self {
            nodes,
            names: names.iter().map(|n| n.to_string()).collect(),
        }
    }

    async fn end(mut self) {
        for name in std::mem::take(&mut self.names) {
            restore(&self.nodes, &name).await;
            wait_for(&self.nodes, &name, |n: Option<&Node>| {
                n.is_some_and(schedulable)
            })
            .await;
        }
    }
}

async fn restore(nodes: &Api<Node>, name: &str) {
    let patch = json!({"metadata": {"labels": {NOT_READY: null}}});
    let _ = nodes
        .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await;
}

impl Drop for Outage {
    fn drop(&mut self) {
        // Synchronously, with kubectl: after a panic the test's runtime is shutting down and a spawned
        // task would never run, leaving shared nodes NotReady for every later test.
        for name in std::mem::take(&mut self.names) {
            let _ = std::process::Command::new("kubectl")
                .args(["label", "node", &name, &format!("{NOT_READY}-")])
                .output();
        }
    }
}

fn schedulable(n: &Node) -> bool {
    ecs_operator::service::nodes::is_eligible(n)
}

async fn register(s: &Setup, service: serde_json::Value) {
    register_with(
        s,
        json!({"containerDefinitions": [{"name": "web", "image": "nginx"}]}),
        service,
    )
    .await;
}

/// Task definition `web` with `definition` as its spec, and service `web` running it.
async fn register_with(s: &Setup, definition: serde_json::Value, service: serde_json::Value) {
    s.register("web", definition, 1).await;
    s.apply_service("web", service).await;
}

/// RUNNING, not-stopping tasks per zone (and per node).
async fn placement(ns: &TestNamespace) -> (BTreeMap<String, usize>, BTreeMap<String, usize>) {
    let tasks: Api<Task> = ns.api();
    let mut zones = BTreeMap::new();
    let mut nodes = BTreeMap::new();
    for t in tasks.list(&ListParams::default()).await.unwrap().items {
        let Some(s) = t.status else { continue };
        if s.last_status == Some(LastStatus::Running) && t.spec.desired_status == Default::default()
        {
            *zones
                .entry(s.availability_zone.unwrap_or_default())
                .or_default() += 1;
            *nodes
                .entry(s.container_instance.unwrap_or_default())
                .or_default() += 1;
        }
    }
    (zones, nodes)
}

/// Polls (with a deadline) until the placement satisfies `ok`.
async fn until_placement(
    ns: &TestNamespace,
    ok: impl Fn(&BTreeMap<String, usize>, &BTreeMap<String, usize>) -> bool,
) -> BTreeMap<String, usize> {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        let (zones, nodes) = placement(ns).await;
        if ok(&zones, &nodes) {
            return zones;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "placement never settled: zones {zones:?}, nodes {nodes:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[tokio::test]
async fn a_zone_outage_moves_tasks_away_and_they_rebalance_when_it_returns() {
    let _turn = NODES.lock().await;
    let s = Setup::start("zone-outage").await;
    register(&s, json!({"taskDefinition": "web", "desiredCount": 6})).await;
    until_placement(&s.ns, |z, _| {
        z.values().copied().collect::<Vec<_>>() == [2, 2, 2]
    })
    .await;

    // Zone c goes dark: its tasks are evicted and replaced in a and b.
    let outage = Outage::start(&s.client, &["node-c1", "node-c2"]).await;
    let zones = until_placement(&s.ns, |z, _| {
        z.values().sum::<usize>() == 6 && !z.contains_key("us-east-1c")
    })
    .await;
    assert_eq!(
        zones.values().copied().collect::<Vec<_>>(),
        [3, 3],
        "{zones:?}"
    );
    let evicted: Vec<_> = s
        .tasks
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|t| t.status)
        .filter(|s| {
            s.availability_zone.as_deref() == Some("us-east-1c")
                && s.last_status == Some(LastStatus::Stopped)
        })
        .collect();
    assert!(!evicted.is_empty());
    assert!(
        evicted
            .iter()
            .all(|s| s.stop_code == Some(StopCode::InfrastructureHealth)),
        "{:?}",
        evicted.iter().map(|s| &s.stop_code).collect::<Vec<_>>()
    );

    // Zone c returns: AZ rebalancing starts tasks there and stops them in the long zones.
    outage.end().await;
    until_placement(&s.ns, |z, _| {
        z.values().copied().collect::<Vec<_>>() == [2, 2, 2]
    })
    .await;
    let events = s.services.get("web").await.unwrap().status.unwrap().events;
    assert!(
        events
            .iter()
            .any(|e| e.message.contains("is not AZ balanced")),
        "{:#?}",
        events
    );
}

#[tokio::test]
async fn a_daemon_service_follows_the_nodes() {
    let _turn = NODES.lock().await;
    let s = Setup::start("daemon").await;
    register(
        &s,
        json!({"taskDefinition": "web", "schedulingStrategy": "DAEMON"}),
    )
    .await;
    let one_per_node = |_: &BTreeMap<String, usize>, n: &BTreeMap<String, usize>| {
        n.len() == 6 && n.values().all(|c| *c == 1)
    };
    until_placement(&s.ns, one_per_node).await;

    let outage = Outage::start(&s.client, &["node-b2"]).await;
    until_placement(&s.ns, |_, n| {
        n.len() == 5 && !n.contains_key("node-b2") && n.values().all(|c| *c == 1)
    })
    .await;
    outage.end().await;
    until_placement(&s.ns, one_per_node).await;
    s.wait_service(
        "web",
        |s: Option<&Service>| {
            s.and_then(|s| s.status.as_ref())
                .is_some_and(|st| st.desired_count == Some(6) && st.running_count == 6)
        },
        DEADLINE,
    )
    .await;
}

#[tokio::test]
async fn distinct_instance_and_member_of_constrain_placement() {
    let _turn = NODES.lock().await;
    let s = Setup::start("placement").await;
    register(
        &s,
        json!({"taskDefinition": "web", "desiredCount": 2, "placementConstraints": [
        {"type": "distinctInstance"},
        {"type": "memberOf", "expression": "attribute:ecs.availability-zone == us-east-1a"}]}),
    )
    .await;
    let zones = until_placement(&s.ns, |z, n| {
        z.values().sum::<usize>() == 2 && n.values().all(|c| *c == 1)
    })
    .await;
    assert_eq!(zones.keys().collect::<Vec<_>>(), ["us-east-1a"]);
    // A third task has nowhere to go: zone a has two nodes and each already runs one.
    s.scale("web", 3).await;
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        let pending = s
            .tasks
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .into_iter()
            .filter(|t| t.status.as_ref().and_then(|s| s.last_status) == Some(LastStatus::Pending))
            .count();
        if pending == 1 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no task left PENDING"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let (zones, nodes) = placement(&s.ns).await;
    assert_eq!((zones.values().sum::<usize>(), nodes.len()), (2, 2));
}

/// Cordons a node (`kubectl cordon`); uncordons it when dropped, even on failure.
struct Cordon(String);

impl Cordon {
    async fn start(client: &kube::Client, name: &str) -> Self {
        let nodes: Api<Node> = Api::all(client.clone());
        let patch = json!({"spec": {"unschedulable": true}});
        nodes
            .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .unwrap();
        Self(name.to_string())
    }
}

impl Drop for Cordon {
    fn drop(&mut self) {
        let _ = std::process::Command::new("kubectl")
            .args(["uncordon", &self.0])
            .output();
    }
}

#[tokio::test]
async fn a_daemon_task_on_a_cordoned_node_keeps_running() {
    let _turn = NODES.lock().await;
    let s = Setup::start("daemon-cordon").await;
    register(
        &s,
        json!({"taskDefinition": "web", "schedulingStrategy": "DAEMON"}),
    )
    .await;
    let one_per_node = |_: &BTreeMap<String, usize>, n: &BTreeMap<String, usize>| {
        n.len() == 6 && n.values().all(|c| *c == 1)
    };
    until_placement(&s.ns, one_per_node).await;
    s.wait_service(
        "web",
        |s: Option<&Service>| {
            s.and_then(|s| s.status.as_ref()).is_some_and(|st| {
                st.running_count == 6
                    && st
                        .conditions
                        .iter()
                        .any(|c| c.type_ == "Ready" && c.status == "True")
            })
        },
        DEADLINE,
    )
    .await;

    let operator = s.operator();
    let before = operator.service_reconciles();
    let cordon = Cordon::start(&s.client, "node-c1").await;
    // The node event reaches the service: a reconcile after it has finished.
    let deadline = tokio::time::Instant::now() + DEADLINE;
    operator.service_pass_after(before, deadline).await;
    // And for a few seconds more (an observation window, not a wait): nothing is stopped.
    let until = tokio::time::Instant::now() + Duration::from_secs(3);
    while tokio::time::Instant::now() < until {
        let (_, nodes) = placement(&s.ns).await;
        assert_eq!(
            nodes.get("node-c1"),
            Some(&1),
            "the cordoned node's task was stopped"
        );
        let st = s.services.get("web").await.unwrap().status.unwrap();
        assert_eq!(st.desired_count, Some(6));
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    drop(cordon);
    until_placement(&s.ns, one_per_node).await;
}

/// Labels nodes; takes the label away when dropped, even on failure.
struct NodeLabel {
    key: String,
    names: Vec<String>,
}

impl NodeLabel {
    async fn start(client: &kube::Client, key: &str, value: &str, names: &[&str]) -> Self {
        let nodes: Api<Node> = Api::all(client.clone());
        for name in names {
            let patch = json!({"metadata": {"labels": {key: value}}});
            nodes
                .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
                .unwrap();
        }
        Self {
            key: key.to_string(),
            names: names.iter().map(|n| n.to_string()).collect(),
        }
    }
}

impl Drop for NodeLabel {
    fn drop(&mut self) {
        for name in &self.names {
            let _ = std::process::Command::new("kubectl")
                .args(["label", "node", name, &format!("{}-", self.key)])
                .output();
        }
    }
}

/// Gives nodes an extended resource (capacity and allocatable, as a device plugin would); takes it
/// away when dropped, even on failure.
struct ExtendedResource {
    resource: String,
    names: Vec<String>,
}

impl ExtendedResource {
    async fn start(client: &kube::Client, resource: &str, count: &str, names: &[&str]) -> Self {
        let nodes: Api<Node> = Api::all(client.clone());
        for name in names {
            let patch = json!({"status": {"capacity": {resource: count}, "allocatable": {resource: count}}});
            nodes
                .patch_status(name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
                .unwrap();
        }
        Self {
            resource: resource.to_string(),
            names: names.iter().map(|n| n.to_string()).collect(),
        }
    }
}

impl Drop for ExtendedResource {
    fn drop(&mut self) {
        let patch = json!({"status": {"capacity": {&self.resource: null}, "allocatable": {&self.resource: null}}});
        for name in &self.names {
            let _ = std::process::Command::new("kubectl")
                .args([
                    "patch",
                    "node",
                    name,
                    "--subresource=status",
                    "--type=merge",
                    "-p",
                    &patch.to_string(),
                ])
                .output();
        }
    }
}

/// Every task of the namespace that is not STOPPED: (name, lastStatus, node).
async fn alive_tasks(ns: &TestNamespace) -> Vec<(String, Option<LastStatus>, String)> {
    let tasks: Api<Task> = ns.api();
    tasks
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|t| {
            let s = t.status.unwrap_or_default();
            let last = s.last_status;
            (last != Some(LastStatus::Stopped)).then(|| {
                (
                    t.metadata.name.unwrap_or_default(),
                    last,
                    s.container_instance.unwrap_or_default(),
                )
            })
        })
        .collect()
}

#[tokio::test]
async fn a_daemon_service_runs_only_on_the_nodes_its_task_definition_allows() {
    let _turn = NODES.lock().await;
    let s = Setup::start("daemon-td").await;
    let _ssd = NodeLabel::start(&s.client, "ecs-test-disk", "ssd", &["node-a1", "node-c2"]).await;
    register_with(
        &s,
        json!({"containerDefinitions": [{"name": "web", "image": "nginx"}],
            "placementConstraints": [{"type": "memberOf", "expression": "attribute:ecs-test-disk == ssd"}]}),
        json!({"taskDefinition": "web", "schedulingStrategy": "DAEMON"}),
    )
    .await;
    // The nodes without the label do not count: two tasks, none waiting for a node it can never use.
    s.wait_service(
        "web",
        |s: Option<&Service>| {
            s.and_then(|s| s.status.as_ref()).is_some_and(|st| {
                st.desired_count == Some(2) && st.running_count == 2 && st.pending_count == 0
            })
        },
        DEADLINE,
    )
    .await;
    let mut alive = alive_tasks(&s.ns).await;
    alive.sort_by(|a, b| a.2.cmp(&b.2));
    let nodes: Vec<&str> = alive.iter().map(|t| t.2.as_str()).collect();
    assert_eq!(nodes, ["node-a1", "node-c2"], "{alive:?}");
}

/// Makes the operator look at service `web` again (an annotation changes; its spec does not), and
/// waits until that pass has finished.
async fn reconcile_now(s: &Setup) {
    let operator = s.operator();
    let before = operator.service_reconciles();
    s.annotate_service("web", "ecs-test/poke", &before.to_string())
        .await;
    let deadline = tokio::time::Instant::now() + DEADLINE;
    operator.service_pass_after(before, deadline).await;
}

#[tokio::test]
async fn a_task_definition_excluding_a_zone_is_balanced_over_the_other_two() {
    let _turn = NODES.lock().await;
    let s = Setup::start("td-zones").await;
    register_with(
        &s,
        json!({"containerDefinitions": [{"name": "web", "image": "nginx"}],
            "placementConstraints": [{"type": "memberOf",
                "expression": "attribute:ecs.availability-zone != us-east-1c"}]}),
        json!({"taskDefinition": "web", "desiredCount": 4}),
    )
    .await;
    until_placement(&s.ns, |z, _| {
        z.iter().map(|(k, v)| (k.as_str(), *v)).collect::<Vec<_>>()
            == [("us-east-1a", 2), ("us-east-1b", 2)]
    })
    .await;
    s.wait_service(
        "web",
        |s: Option<&Service>| {
            s.and_then(|s| s.status.as_ref()).is_some_and(|st| {
                st.running_count == 4
                    && st
                        .conditions
                        .iter()
                        .any(|c| c.type_ == "Ready" && c.status == "True")
            })
        },
        DEADLINE,
    )
    .await;
    // Rebalancing would start in any pass once the service is steady: make one run, then watch for a
    // few seconds (an observation window, not a wait) that no task is started for zone c.
    reconcile_now(&s).await;
    let until = tokio::time::Instant::now() + Duration::from_secs(3);
    while tokio::time::Instant::now() < until {
        let alive = alive_tasks(&s.ns).await;
        assert!(
            alive.len() == 4 && alive.iter().all(|t| t.1 == Some(LastStatus::Running)),
            "a task was started to rebalance into the excluded zone: {alive:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let st = s.services.get("web").await.unwrap().status.unwrap();
    assert_eq!(
        st.availability_zone_rebalancing,
        Some(ecs_operator::api::service::AvailabilityZoneRebalancing::Enabled),
        "the ECS default for a service without a placement strategy"
    );
    assert!(
        !st.events
            .iter()
            .any(|e| e.message.contains("not AZ balanced")),
        "{:#?}",
        st.events
    );
}

/// Four GPUs on each node of zones b and c and none in zone a, and service `web` (`service`) whose tasks
/// need one each; the GPUs go when the result is dropped.
async fn gpu_service(s: &Setup, service: serde_json::Value) -> ExtendedResource {
    let gpus = ExtendedResource::start(
        &s.client,
        ecs_operator::translate::GPU_RESOURCE,
        "4",
        &["node-b1", "node-b2", "node-c1", "node-c2"],
    )
    .await;
    register_with(
        s,
        json!({"containerDefinitions": [{"name": "web", "image": "nginx",
            "resourceRequirements": [{"type": "GPU", "value": "1"}]}]}),
        service,
    )
    .await;
    gpus
}

#[tokio::test]
async fn a_full_zone_does_not_hold_back_replacements() {
    let _turn = NODES.lock().await;
    let s = Setup::start("full-zone").await;
    // Zone a has no GPU: counted as a zone (its nodes are Ready), but no task fits there. Every task
    // started prefers the zone with the fewest tasks, rebalancing or not; without rebalancing, no task
    // is pinned to zone a to wait there when the scheduler puts both first tasks in one zone.
    let _gpus = gpu_service(
        &s,
        json!({"taskDefinition": "web", "desiredCount": 2, "availabilityZoneRebalancing": "DISABLED"}),
    )
    .await;
    until_placement(&s.ns, |z, _| z.values().sum::<usize>() == 2).await;
    s.wait_service(
        "web",
        |s: Option<&Service>| {
            s.and_then(|s| s.status.as_ref())
                .is_some_and(|st| st.running_count == 2)
        },
        DEADLINE,
    )
    .await;

    // A task dies: its replacement prefers the shortest zone, a, which has no room, and starts in
    // another zone instead of waiting there.
    let before = alive_tasks(&s.ns).await;
    s.pods
        .delete(&before[0].0, &Default::default())
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + DEADLINE;
    let replacement = loop {
        let alive = alive_tasks(&s.ns).await;
        let new: Vec<_> = alive
            .iter()
            .filter(|t| !before.iter().any(|b| b.0 == t.0) && t.1 == Some(LastStatus::Running))
            .cloned()
            .collect();
        if let Some(t) = new.first()
            && alive
                .iter()
                .filter(|t| t.1 == Some(LastStatus::Running))
                .count()
                == 2
        {
            break t.clone();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no replacement RUNNING: {alive:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let (zones, _) = placement(&s.ns).await;
    assert!(!zones.contains_key("us-east-1a"), "{zones:?}");
    let task = s.tasks.get(&replacement.0).await.unwrap();
    assert_eq!(
        task.metadata
            .annotations
            .unwrap_or_default()
            .get(ecs_operator::labels::PREFERRED_ZONE)
            .map(String::as_str),
        Some("us-east-1a"),
        "the replacement preferred the full zone"
    );
}

#[tokio::test]
async fn a_rebalancing_task_with_no_room_does_not_hold_back_self_healing() {
    let _turn = NODES.lock().await;
    let s = Setup::start("full-zone-rebalance").await;
    let _gpus = gpu_service(&s, json!({"taskDefinition": "web", "desiredCount": 4})).await;
    // Zones b and c take the four tasks; zone a (0 tasks) gets a task pinned to it to rebalance,
    // which the scheduler cannot place.
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        let all = s.tasks.list(&ListParams::default()).await.unwrap().items;
        let stuck = all.iter().any(|t| {
            t.status.as_ref().is_some_and(|s| {
                s.last_status == Some(LastStatus::Pending)
                    && s.conditions
                        .iter()
                        .any(|c| c.type_ == "Ready" && c.reason == "Unschedulable")
            })
        });
        let running = alive_tasks(&s.ns).await;
        if stuck
            && running
                .iter()
                .filter(|t| t.1 == Some(LastStatus::Running))
                .count()
                == 4
        {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no rebalancing task waiting for zone a: {running:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    // A task dies: it is replaced now, not once the stuck task has failed to start.
    let before = alive_tasks(&s.ns).await;
    let victim = before
        .iter()
        .find(|t| t.1 == Some(LastStatus::Running))
        .unwrap()
        .0
        .clone();
    s.pods.delete(&victim, &Default::default()).await.unwrap();
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        let alive = alive_tasks(&s.ns).await;
        let running = alive
            .iter()
            .filter(|t| t.1 == Some(LastStatus::Running) && t.0 != victim)
            .count();
        if running == 4 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the lost task was not replaced: {alive:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
