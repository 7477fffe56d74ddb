//! The operator's own endpoints and its API manners: /healthz, /readyz and /metrics are served and
//! scraped; a converged task costs no API writes; a node update no service can be affected by
//! reconciles none.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ecs_operator::admin::ControllerLabels;
use ecs_operator::api::task::LastStatus;
use ecs_operator::api::{Service, Task, TaskDefinition};
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;
use support::{Operator, TestNamespace, client, install_crds, wait_for};

async fn task_definition_and_task(ns: &TestNamespace) -> (Api<TaskDefinition>, Api<Task>) {
    let tds: Api<TaskDefinition> = ns.api();
    let td: TaskDefinition = serde_json::from_value(json!({
        "apiVersion": "ecs.operator.dev/v1alpha1", "kind": "TaskDefinition", "metadata": {"name": "web"},
        "spec": {"containerDefinitions": [{"name": "web", "image": "nginx"}]}
    }))
    .unwrap();
    tds.patch("web", &PatchParams::apply("test"), &Patch::Apply(&td))
        .await
        .unwrap();
    let tasks: Api<Task> = ns.api();
    let task: Task = serde_json::from_value(json!({
        "apiVersion": "ecs.operator.dev/v1alpha1", "kind": "Task",
        "metadata": {"name": "web-1"}, "spec": {"taskDefinition": "web"}
    }))
    .unwrap();
    tasks.create(&PostParams::default(), &task).await.unwrap();
    (tds, tasks)
}

fn running(t: Option<&Task>) -> bool {
    t.and_then(|t| t.status.as_ref()?.last_status) == Some(LastStatus::Running)
}

/// GET over plain HTTP/1.0; returns (status code, body).
fn get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let code = response.split_whitespace().nth(1)?.parse().ok()?;
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())?;
    Some((code, body))
}

struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn metrics_health_and_readiness_are_served() {
    let client = client().await;
    install_crds(&client).await;
    let ns = TestNamespace::new(&client, "metrics").await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let _operator = Process(
        Command::new(env!("CARGO_BIN_EXE_ecs-operator"))
            .args([
                "run",
                "--namespace",
                &ns.name,
                "--admin-address",
                &format!("127.0.0.1:{port}"),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let (_, tasks) = task_definition_and_task(&ns).await;
    wait_for(&tasks, "web-1", running).await;

    // Poll (with a deadline) until the scrape shows the running task: the gauges refresh periodically.
    let deadline = Instant::now() + Duration::from_secs(40);
    let metrics = loop {
        if let Some((200, body)) = get(port, "/metrics")
            && body.contains(r#"ecs_operator_tasks{state="RUNNING"} 1"#)
        {
            break body;
        }
        assert!(
            Instant::now() < deadline,
            "metrics never showed the running task: {:?}",
            get(port, "/metrics")
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    for expected in [
        r#"ecs_operator_reconciles_total{controller="task"}"#,
        r#"ecs_operator_reconciles_total{controller="taskdefinition"}"#,
        r#"ecs_operator_reconcile_duration_seconds_bucket{le="#,
        "ecs_operator_leader 1",
        "# EOF",
    ] {
        assert!(
            metrics.contains(expected),
            "{expected} missing from:\n{metrics}"
        );
    }
    assert!(
        !metrics.contains("web-1"),
        "metric labels must not name objects"
    );
    assert_eq!(get(port, "/healthz").map(|r| r.0), Some(200));
    assert_eq!(get(port, "/readyz").map(|r| r.0), Some(200));
    assert_eq!(get(port, "/nope").map(|r| r.0), Some(404));
}

#[tokio::test]
async fn a_converged_task_costs_no_writes() {
    let client = client().await;
    install_crds(&client).await;
    let ns = TestNamespace::new(&client, "zero-writes").await;
    let operator = Operator::start(&client, &ns.name);
    let (_, tasks) = task_definition_and_task(&ns).await;
    wait_for(&tasks, "web-1", running).await;
    let pods: Api<Pod> = ns.api();
    let pod_version = pods.get("web-1").await.unwrap().metadata.resource_version;

    // Make the controller look again without changing anything it owns: a metadata-only edit.
    let reconciles = || {
        operator
            .admin
            .metrics
            .reconciles
            .get_or_create(&ControllerLabels { controller: "task" })
            .get()
    };
    let before = reconciles();
    let poked = tasks
        .patch(
            "web-1",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"poke": "1"}}})),
        )
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while reconciles() <= before {
        assert!(
            Instant::now() < deadline,
            "the poke did not trigger a reconcile"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The reconcile has run (and returned): it wrote neither the task's status nor the pod.
    let in_flight = || {
        operator
            .admin
            .metrics
            .in_flight
            .get_or_create(&ControllerLabels { controller: "task" })
            .get()
    };
    while in_flight() > 0 {
        assert!(Instant::now() < deadline, "reconcile never finished");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let after = tasks.get("web-1").await.unwrap();
    assert_eq!(
        after.metadata.resource_version, poked.metadata.resource_version,
        "the task was written"
    );
    assert_eq!(
        pods.get("web-1").await.unwrap().metadata.resource_version,
        pod_version,
        "the pod was written"
    );
}

#[tokio::test]
async fn a_converged_service_costs_no_writes() {
    let client = client().await;
    install_crds(&client).await;
    let ns = TestNamespace::new(&client, "zero-writes-svc").await;
    let config = ecs_operator::context::Config {
        healthy_after_running: Duration::from_secs(1),
        ..Default::default()
    };
    let operator = Operator::start_with(&client, &ns.name, config);
    let tds: Api<TaskDefinition> = ns.api();
    let td: TaskDefinition = serde_json::from_value(json!({
        "apiVersion": "ecs.operator.dev/v1alpha1", "kind": "TaskDefinition", "metadata": {"name": "web"},
        "spec": {"containerDefinitions": [{"name": "web", "image": "nginx", "portMappings": [{"containerPort": 80}]}]}
    }))
    .unwrap();
    tds.patch("web", &PatchParams::apply("test"), &Patch::Apply(&td))
        .await
        .unwrap();
    let services: Api<Service> = ns.api();
    let svc: Service = serde_json::from_value(json!({
        "apiVersion": "ecs.operator.dev/v1alpha1", "kind": "Service", "metadata": {"name": "web"},
        "spec": {"taskDefinition": "web", "desiredCount": 3,
                 "loadBalancers": [{"containerName": "web", "containerPort": 80}]}
    }))
    .unwrap();
    services
        .patch("web", &PatchParams::apply("test"), &Patch::Apply(&svc))
        .await
        .unwrap();
    wait_for(&services, "web", |s: Option<&Service>| {
        s.and_then(|s| s.status.as_ref()).is_some_and(|st| {
            st.running_count == 3
                && st
                    .conditions
                    .iter()
                    .any(|c| c.type_ == "Ready" && c.status == "True")
        })
    })
    .await;

    let tasks: Api<Task> = ns.api();
    let task_versions = || async {
        let mut v: Vec<(String, Option<String>)> = tasks
            .list(&Default::default())
            .await
            .unwrap()
            .items
            .into_iter()
            .map(|t| (t.metadata.name.unwrap(), t.metadata.resource_version))
            .collect();
        v.sort();
        v
    };
    let lbs: Api<k8s_openapi::api::core::v1::Service> = ns.api();
    let tasks_before = task_versions().await;
    let lb_before = lbs.get("web-80").await.unwrap().metadata.resource_version;
    let labels = ControllerLabels {
        controller: "service",
    };
    let reconciles = || {
        operator
            .admin
            .metrics
            .reconciles
            .get_or_create(&labels)
            .get()
    };
    let in_flight = || {
        operator
            .admin
            .metrics
            .in_flight
            .get_or_create(&labels)
            .get()
    };
    let before = reconciles();
    // A metadata-only edit makes the controller look again without changing anything it acts on.
    let poked = services
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"poke": "1"}}})),
        )
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while reconciles() <= before || in_flight() > 0 {
        assert!(
            Instant::now() < deadline,
            "the poke did not trigger a finished reconcile"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let after = services.get("web").await.unwrap();
    assert_eq!(
        after.metadata.resource_version, poked.metadata.resource_version,
        "the service status was written"
    );
    assert_eq!(task_versions().await, tasks_before, "a task was written");
    assert_eq!(
        lbs.get("web-80").await.unwrap().metadata.resource_version,
        lb_before,
        "the load balancer was written"
    );
}

/// Node labels written by [`a_node_update_reconciles_only_the_services_it_can_affect`], removed when
/// dropped (even on failure): the nodes are shared by every test on the cluster.
struct NodeLabel {
    names: Vec<String>,
}

const IRRELEVANT: &str = "bench/irrelevant";

impl Drop for NodeLabel {
    fn drop(&mut self) {
        // Synchronously, with kubectl: the test's runtime cannot run a request while it drops this.
        for name in &self.names {
            let _ = Command::new("kubectl")
                .args(["label", "node", name, &format!("{IRRELEVANT}-")])
                .output();
        }
    }
}

#[tokio::test]
async fn a_node_update_reconciles_only_the_services_it_can_affect() {
    let client = client().await;
    install_crds(&client).await;
    let ns = TestNamespace::new(&client, "node-fanout").await;
    let config = ecs_operator::context::Config {
        healthy_after_running: Duration::from_secs(1),
        ..Default::default()
    };
    let operator = Operator::start_with(&client, &ns.name, config);
    let tds: Api<TaskDefinition> = ns.api();
    let td: TaskDefinition = serde_json::from_value(json!({
        "apiVersion": "ecs.operator.dev/v1alpha1", "kind": "TaskDefinition", "metadata": {"name": "web"},
        "spec": {"containerDefinitions": [{"name": "web", "image": "nginx"}]}
    }))
    .unwrap();
    tds.patch("web", &PatchParams::apply("test"), &Patch::Apply(&td))
        .await
        .unwrap();
    let services: Api<Service> = ns.api();
    let svc: Service = serde_json::from_value(json!({
        "apiVersion": "ecs.operator.dev/v1alpha1", "kind": "Service", "metadata": {"name": "web"},
        "spec": {"taskDefinition": "web", "desiredCount": 1}
    }))
    .unwrap();
    services
        .patch("web", &PatchParams::apply("test"), &Patch::Apply(&svc))
        .await
        .unwrap();
    wait_for(&services, "web", |s: Option<&Service>| {
        s.and_then(|s| s.status.as_ref()).is_some_and(|st| {
            st.running_count == 1
                && st
                    .conditions
                    .iter()
                    .any(|c| c.type_ == "Ready" && c.status == "True")
        })
    })
    .await;
    let tasks: Api<Task> = ns.api();
    let placed = tasks
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .find_map(|t| t.status?.container_instance)
        .expect("the running task has a node");
    let nodes: Api<Node> = Api::all(client.clone());
    let other = nodes
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(ecs_operator::service::nodes::is_eligible)
        .map(|n| n.metadata.name.unwrap())
        .find(|n| *n != placed)
        .expect("another schedulable node");
    let _restore = NodeLabel {
        names: vec![other.clone(), placed.clone()],
    };

    let labels = ControllerLabels {
        controller: "service",
    };
    let reconciles = || {
        operator
            .admin
            .metrics
            .reconciles
            .get_or_create(&labels)
            .get()
    };
    let in_flight = || {
        operator
            .admin
            .metrics
            .in_flight
            .get_or_create(&labels)
            .get()
    };
    let label = |node: String, value: String| {
        let nodes = nodes.clone();
        async move {
            nodes
                .patch(
                    &node,
                    &PatchParams::default(),
                    &Patch::Merge(json!({"metadata": {"labels": {IRRELEVANT: value}}})),
                )
                .await
                .unwrap();
        }
    };
    // Settled: nothing in flight and the count unchanged over a few polls (a pass requeued for the
    // health check's first judgement may still be due).
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut stable = (reconciles(), 0);
    while stable.1 < 20 || in_flight() > 0 {
        assert!(Instant::now() < deadline, "the service never settled");
        tokio::time::sleep(Duration::from_millis(100)).await;
        let now = reconciles();
        stable = if now == stable.0 {
            (now, stable.1 + 1)
        } else {
            (now, 0)
        };
    }
    let before = reconciles();
    // Label changes on a node the service has no task on, and heartbeats meanwhile: nothing to do.
    for i in 0..5 {
        label(other.clone(), format!("{}-{i}", ns.name)).await;
    }
    // Then a change on the node its task runs on, which reconciles it: node events are handled in
    // order, so once that reconcile has finished the five before it have been handled too.
    label(placed.clone(), ns.name.clone()).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while reconciles() == before || in_flight() > 0 {
        assert!(
            Instant::now() < deadline,
            "a label change on the task's node did not reconcile the service"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        reconciles() - before,
        1,
        "node updates the service cannot be affected by reconciled it"
    );
}
