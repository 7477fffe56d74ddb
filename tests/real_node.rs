//! Tasks on the real node (`cargo xtask cluster up --real-node`): a kubelet and containerd run the
//! containers, so exit codes and health checks are the containers' own, not kwok's stages.
//!
//! The node `real-1` is tainted `ecs-operator.dev/real-node=true:NoSchedule`; the test namespace
//! tolerates it through the PodTolerationRestriction annotation, and the task definitions ask for it
//! with a memberOf constraint on its label. Without the node the tests skip, unless
//! `ECS_TEST_REAL_NODE` says it must be there (`cargo xtask test` sets it when it started one): then
//! they fail.

mod support;

use std::time::Duration;

use ecs_operator::api::{Task, TaskDefinition};
use k8s_openapi::api::core::v1::{Namespace, Node, Pod};
use kube::Client;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use support::{Operator, TestNamespace, client, install_crds, wait_for, wait_for_within};

const NODE: &str = "real-1";
const LABEL: &str = "ecs-operator.dev/real-node";
/// The busybox image imported on the node (xtask/src/node_image.rs); there is no registry.
const IMAGE: &str = "ecs-operator.test/busybox:1.35";
const EXPECTED_ENV: &str = "ECS_TEST_REAL_NODE";
/// Real containers: scheduling, a sandbox with its network, then the container itself.
const DEADLINE: Duration = Duration::from_secs(120);

/// Whether the real node is there and Ready; panics if it is expected but is not.
async fn real_node(client: &Client) -> bool {
    let expected = std::env::var_os(EXPECTED_ENV).is_some();
    let node = Api::<Node>::all(client.clone())
        .get_opt(NODE)
        .await
        .unwrap();
    let ready = node
        .as_ref()
        .and_then(|n| n.status.as_ref()?.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
    match (node.is_some(), ready, expected) {
        (true, true, _) => true,
        (false, _, false) => {
            eprintln!(
                "skipped: no node {NODE} (start one with `cargo xtask cluster up --real-node`)"
            );
            false
        }
        (false, _, true) => panic!("{EXPECTED_ENV} is set but the cluster has no node {NODE}"),
        (true, false, _) => panic!("node {NODE} is not Ready: {node:#?}"),
    }
}

struct Setup {
    tds: Api<TaskDefinition>,
    tasks: Api<Task>,
    pods: Api<Pod>,
    _ns: TestNamespace,
    _operator: Operator,
}

async fn setup(prefix: &str) -> Option<Setup> {
    let client = client().await;
    if !real_node(&client).await {
        return None;
    }
    install_crds(&client).await;
    let ns = TestNamespace::new(&client, prefix).await;
    let toleration = json!([{"key": LABEL, "operator": "Exists", "effect": "NoSchedule"}]);
    Api::<Namespace>::all(client.clone())
        .patch(
            &ns.name,
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"annotations": {
                "scheduler.alpha.kubernetes.io/defaultTolerations": toleration.to_string()
            }}})),
        )
        .await
        .unwrap();
    let operator = Operator::start(&client, &ns.name);
    Some(Setup {
        tds: ns.api(),
        tasks: ns.api(),
        pods: ns.api(),
        _ns: ns,
        _operator: operator,
    })
}

impl Setup {
    /// Registers revision 1 of a one-container definition placed on the real node.
    async fn register(&self, name: &str, container: Value) {
        let td: TaskDefinition = serde_json::from_value(json!({
            "apiVersion": "ecs.operator.dev/v1alpha1", "kind": "TaskDefinition",
            "metadata": {"name": name},
            "spec": {
                "containerDefinitions": [container],
                "placementConstraints": [
                    {"type": "memberOf", "expression": format!("attribute:{LABEL} == true")}
                ]
            }
        }))
        .unwrap();
        self.tds
            .patch(
                name,
                &PatchParams::apply("test").force(),
                &Patch::Apply(&td),
            )
            .await
            .unwrap();
        wait_for(&self.tds, name, |td: Option<&TaskDefinition>| {
            td.and_then(|t| t.status.as_ref()?.latest_revision) == Some(1)
        })
        .await;
    }

    async fn run(&self, name: &str, task_definition: &str) {
        let task: Task = serde_json::from_value(json!({
            "apiVersion": "ecs.operator.dev/v1alpha1", "kind": "Task",
            "metadata": {"name": name}, "spec": {"taskDefinition": task_definition}
        }))
        .unwrap();
        self.tasks
            .create(&PostParams::default(), &task)
            .await
            .unwrap();
    }
}

/// The node itself, without the operator: a pod's container runs and its exit code is reported.
#[tokio::test]
async fn a_pod_on_the_real_node_exits_with_its_own_code() {
    let Some(s) = setup("real-pod").await else {
        return;
    };
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": "exit7"},
        "spec": {
            "restartPolicy": "Never",
            "nodeSelector": {LABEL: "true"},
            "containers": [{"name": "main", "image": IMAGE, "imagePullPolicy": "Never",
                            "command": ["sh", "-c", "exit 7"]}]
        }
    }))
    .unwrap();
    s.pods.create(&PostParams::default(), &pod).await.unwrap();
    let pod = wait_for_within(
        &s.pods,
        "exit7",
        |p: Option<&Pod>| {
            p.and_then(|p| p.status.as_ref()?.phase.clone()).as_deref() == Some("Failed")
        },
        DEADLINE,
    )
    .await;
    let status = pod.status.unwrap();
    let terminated = status.container_statuses.as_ref().unwrap()[0]
        .state
        .as_ref()
        .and_then(|s| s.terminated.as_ref())
        .cloned();
    assert_eq!(terminated.map(|t| t.exit_code), Some(7), "{status:#?}");
    assert_eq!(pod.spec.unwrap().node_name.as_deref(), Some(NODE));
}

#[tokio::test]
async fn an_essential_container_exit_code_is_the_containers_own() {
    let Some(s) = setup("real-exit").await else {
        return;
    };
    s.register(
        "exit3",
        json!({"name": "main", "image": IMAGE, "entryPoint": ["sh", "-c"], "command": ["exit 3"]}),
    )
    .await;
    s.run("exit3-1", "exit3").await;
    let t = wait_for_within(
        &s.tasks,
        "exit3-1",
        |t: Option<&Task>| {
            t.and_then(|t| t.status.as_ref()?.last_status.clone())
                .as_deref()
                == Some("STOPPED")
        },
        DEADLINE,
    )
    .await;
    let st = t.status.unwrap();
    assert_eq!(st.container_instance.as_deref(), Some(NODE));
    assert_eq!(st.stop_code.as_deref(), Some("EssentialContainerExited"));
    let main = st.containers.iter().find(|c| c.name == "main").unwrap();
    assert_eq!(main.exit_code, Some(3), "{st:#?}");
}

#[tokio::test]
async fn a_failing_health_check_makes_the_task_unhealthy() {
    let Some(s) = setup("real-health").await else {
        return;
    };
    s.register(
        "sick",
        json!({"name": "main", "image": IMAGE, "entryPoint": ["sleep"], "command": ["300"],
               "healthCheck": {"command": ["CMD-SHELL", "exit 1"],
                               "interval": 5, "timeout": 2, "retries": 1}}),
    )
    .await;
    s.run("sick-1", "sick").await;
    let t = wait_for_within(
        &s.tasks,
        "sick-1",
        |t: Option<&Task>| {
            t.and_then(|t| t.status.as_ref()?.health_status.clone())
                .as_deref()
                == Some("UNHEALTHY")
        },
        DEADLINE,
    )
    .await;
    let st = t.status.unwrap();
    assert_eq!(st.container_instance.as_deref(), Some(NODE));
    assert_eq!(st.last_status.as_deref(), Some("RUNNING"), "{st:#?}");
    let main = st.containers.iter().find(|c| c.name == "main").unwrap();
    assert_eq!(main.health_status.as_deref(), Some("UNHEALTHY"), "{st:#?}");
}

#[tokio::test]
async fn a_passing_health_check_makes_the_task_healthy() {
    let Some(s) = setup("real-healthy").await else {
        return;
    };
    s.register(
        "well",
        json!({"name": "main", "image": IMAGE, "entryPoint": ["sleep"], "command": ["300"],
               "healthCheck": {"command": ["CMD-SHELL", "test -x /bin/sh"],
                               "interval": 5, "timeout": 2, "retries": 1}}),
    )
    .await;
    s.run("well-1", "well").await;
    let t = wait_for_within(
        &s.tasks,
        "well-1",
        |t: Option<&Task>| {
            t.and_then(|t| t.status.as_ref()?.health_status.clone())
                .as_deref()
                == Some("HEALTHY")
        },
        DEADLINE,
    )
    .await;
    let st = t.status.unwrap();
    assert_eq!(st.container_instance.as_deref(), Some(NODE));
    let main = st.containers.iter().find(|c| c.name == "main").unwrap();
    assert_eq!(main.health_status.as_deref(), Some("HEALTHY"), "{st:#?}");
}
