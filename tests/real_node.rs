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

use ecs_operator::api::task::{ContainerLastStatus, HealthStatus, LastStatus, StopCode};
use ecs_operator::api::{Service, Task, TaskDefinition, TaskStatus};
use ecs_operator::labels;
use k8s_openapi::api::core::v1::{ContainerStatus, Namespace, Node, Pod, Secret};
use kube::Client;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use support::{
    Operator, TestNamespace, client, install_crds, wait_for, wait_for_within, yaml_documents,
};

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
    services: Api<Service>,
    secrets: Api<Secret>,
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
        services: ns.api(),
        secrets: ns.api(),
        _ns: ns,
        _operator: operator,
    })
}

impl Setup {
    /// Registers revision 1 of a one-container definition placed on the real node.
    async fn register(&self, name: &str, container: Value) {
        self.register_spec(name, json!({"containerDefinitions": [container]}))
            .await;
    }

    /// Registers revision 1 of a definition (`spec` without placement) placed on the real node.
    async fn register_spec(&self, name: &str, mut spec: Value) {
        spec["placementConstraints"] = json!([
            {"type": "memberOf", "expression": format!("attribute:{LABEL} == true")}
        ]);
        let td: TaskDefinition = serde_json::from_value(json!({
            "apiVersion": "ecs.operator.dev/v1alpha1", "kind": "TaskDefinition",
            "metadata": {"name": name}, "spec": spec
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

    /// Waits for the task's status to satisfy `f`.
    async fn task_until(
        &self,
        name: &str,
        deadline: Duration,
        f: impl Fn(&TaskStatus) -> bool,
    ) -> TaskStatus {
        wait_for_within(
            &self.tasks,
            name,
            |t: Option<&Task>| t.and_then(|t| t.status.as_ref()).is_some_and(&f),
            deadline,
        )
        .await
        .status
        .unwrap()
    }

    /// Polls the Service's tasks until `f` holds.
    async fn service_tasks_until(&self, service: &str, f: impl Fn(&[Task]) -> bool) -> Vec<Task> {
        let params = ListParams::default().labels(&format!("{}={service}", labels::SERVICE));
        let deadline = tokio::time::Instant::now() + DEADLINE;
        loop {
            let tasks = self.tasks.list(&params).await.unwrap().items;
            if f(&tasks) {
                return tasks;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "service {service}'s tasks: {tasks:#?}"
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// Asks the task to stop and measures the time until its container `main` has ended (or its pod is
    /// gone, which comes later).
    async fn stop_and_time(&self, task: &str) -> Duration {
        let start = tokio::time::Instant::now();
        self.tasks
            .patch(
                task,
                &PatchParams::default(),
                &Patch::Merge(json!({"spec": {"desiredStatus": "STOPPED"}})),
            )
            .await
            .unwrap();
        loop {
            let pod = self.pods.get_opt(task).await.unwrap();
            let ended = pod.as_ref().is_none_or(|p| {
                container(p, "main")
                    .is_some_and(|c| c.state.as_ref().is_some_and(|s| s.terminated.is_some()))
            });
            if ended {
                return start.elapsed();
            }
            assert!(start.elapsed() < DEADLINE, "{task} still runs: {pod:#?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits for the pod to satisfy `f`.
    async fn pod_until(&self, name: &str, f: impl Fn(&Pod) -> bool) -> Pod {
        wait_for_within(
            &self.pods,
            name,
            |p: Option<&Pod>| p.is_some_and(&f),
            DEADLINE,
        )
        .await
    }
}

fn last_status(st: &TaskStatus) -> Option<LastStatus> {
    st.last_status
}

/// A container's status in the pod, init containers (sidecars, run-to-completion) included.
fn container<'a>(pod: &'a Pod, name: &str) -> Option<&'a ContainerStatus> {
    let status = pod.status.as_ref()?;
    status
        .container_statuses
        .iter()
        .chain(status.init_container_statuses.iter())
        .flatten()
        .find(|c| c.name == name)
}

fn started_at(pod: &Pod, name: &str) -> Option<i64> {
    let state = container(pod, name)?.state.as_ref()?;
    let time = match (&state.running, &state.terminated) {
        (Some(r), _) => r.started_at.as_ref()?,
        (_, Some(t)) => t.started_at.as_ref()?,
        _ => return None,
    };
    Some(time.0.as_second())
}

fn finished_at(pod: &Pod, name: &str) -> Option<i64> {
    let t = container(pod, name)?.state.as_ref()?.terminated.as_ref()?;
    Some(t.finished_at.as_ref()?.0.as_second())
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
            t.and_then(|t| t.status.as_ref()?.last_status) == Some(LastStatus::Stopped)
        },
        DEADLINE,
    )
    .await;
    let st = t.status.unwrap();
    assert_eq!(st.container_instance.as_deref(), Some(NODE));
    assert_eq!(st.stop_code, Some(StopCode::EssentialContainerExited));
    let main = st.containers.iter().find(|c| c.name == "main").unwrap();
    assert_eq!(main.exit_code, Some(3), "{st:#?}");
}

/// Runs a task on the real node whose one container runs `check` as its CMD-SHELL health check, and
/// waits until the task's health is `expected`: the container's own, the task's, on real-1.
async fn health_check_gives(
    prefix: &str,
    check: &str,
    expected: HealthStatus,
) -> Option<TaskStatus> {
    let s = setup(prefix).await?;
    s.register(
        "checked",
        json!({"name": "main", "image": IMAGE, "entryPoint": ["sleep"], "command": ["300"],
               "healthCheck": {"command": ["CMD-SHELL", check],
                               "interval": 5, "timeout": 2, "retries": 1}}),
    )
    .await;
    s.run("checked-1", "checked").await;
    let st = s
        .task_until("checked-1", DEADLINE, |st| {
            st.health_status == Some(expected)
        })
        .await;
    assert_eq!(st.container_instance.as_deref(), Some(NODE));
    let main = st.containers.iter().find(|c| c.name == "main").unwrap();
    assert_eq!(main.health_status, Some(expected), "{st:#?}");
    Some(st)
}

#[tokio::test]
async fn a_failing_health_check_makes_the_task_unhealthy() {
    if let Some(st) = health_check_gives("real-health", "exit 1", HealthStatus::Unhealthy).await {
        assert_eq!(st.last_status, Some(LastStatus::Running), "{st:#?}");
    }
}

#[tokio::test]
async fn a_passing_health_check_makes_the_task_healthy() {
    health_check_gives("real-healthy", "test -x /bin/sh", HealthStatus::Healthy).await;
}

/// A Service replaces a task whose container fails its health check: the unhealthy task stops with
/// ECS's reason and a new task runs in its place.
#[tokio::test]
async fn a_service_replaces_a_task_that_fails_its_health_check() {
    let Some(s) = setup("real-svc-health").await else {
        return;
    };
    s.register(
        "sick",
        json!({"name": "main", "image": IMAGE, "entryPoint": ["sleep"], "command": ["300"],
               "healthCheck": {"command": ["CMD-SHELL", "exit 1"],
                               "interval": 5, "timeout": 2, "retries": 1}}),
    )
    .await;
    // No room above desiredCount: the unhealthy task is stopped before its replacement starts
    // (with room, the replacement would have to become healthy first, which it never does).
    let svc: Service = serde_json::from_value(json!({
        "apiVersion": "ecs.operator.dev/v1alpha1", "kind": "Service",
        "metadata": {"name": "sick"},
        "spec": {"taskDefinition": "sick", "desiredCount": 1,
                 "deploymentConfiguration": {"minimumHealthyPercent": 0, "maximumPercent": 100}}
    }))
    .unwrap();
    s.services
        .patch(
            "sick",
            &PatchParams::apply("test").force(),
            &Patch::Apply(&svc),
        )
        .await
        .unwrap();
    let first = s.service_tasks_until("sick", |ts| !ts.is_empty()).await[0]
        .metadata
        .name
        .clone()
        .unwrap();
    let st = s
        .task_until(&first, DEADLINE, |st| {
            last_status(st) == Some(LastStatus::Stopped)
        })
        .await;
    assert_eq!(st.container_instance.as_deref(), Some(NODE));
    assert_eq!(st.health_status, Some(HealthStatus::Unhealthy), "{st:#?}");
    assert_eq!(st.stop_code, Some(StopCode::ServiceSchedulerInitiated));
    assert_eq!(
        st.stopped_reason.as_deref(),
        Some("Task failed container health checks")
    );
    let replacements = s
        .service_tasks_until("sick", |ts| {
            ts.iter().any(|t| {
                t.metadata.name.as_deref() != Some(&first)
                    && t.status.as_ref().and_then(last_status) == Some(LastStatus::Running)
            })
        })
        .await;
    let replacement = replacements
        .iter()
        .find(|t| t.metadata.name.as_deref() != Some(&first))
        .unwrap();
    let rst = replacement.status.as_ref().unwrap();
    assert_eq!(rst.container_instance.as_deref(), Some(NODE));
    assert_ne!(rst.health_status, Some(HealthStatus::Healthy), "{rst:#?}");
}

/// dependsOn on real start times: `app` starts only after `init` exited 0 (SUCCESS), `check` exited
/// (COMPLETE) and `web`'s health check passed (HEALTHY), which takes `web` at least 3 s.
#[tokio::test]
async fn depends_on_orders_the_containers_real_starts() {
    let Some(s) = setup("real-deps").await else {
        return;
    };
    s.register_spec(
        "ordered",
        json!({"containerDefinitions": [
            {"name": "init", "image": IMAGE, "essential": false,
             "entryPoint": ["sh", "-c"], "command": ["sleep 2"]},
            {"name": "web", "image": IMAGE, "entryPoint": ["sh", "-c"],
             "command": ["sleep 3; touch /tmp/ready; exec sleep 300"],
             "healthCheck": {"command": ["CMD-SHELL", "test -f /tmp/ready"],
                             "interval": 5, "timeout": 2, "retries": 1}},
            {"name": "check", "image": IMAGE, "essential": false,
             "entryPoint": ["sh", "-c"], "command": ["sleep 1"]},
            {"name": "app", "image": IMAGE, "entryPoint": ["sleep"], "command": ["300"],
             "dependsOn": [{"containerName": "init", "condition": "SUCCESS"},
                           {"containerName": "check", "condition": "COMPLETE"},
                           {"containerName": "web", "condition": "HEALTHY"}]}
        ]}),
    )
    .await;
    s.run("ordered-1", "ordered").await;
    let st = s
        .task_until("ordered-1", DEADLINE, |st| {
            last_status(st) == Some(LastStatus::Running)
        })
        .await;
    assert_eq!(st.container_instance.as_deref(), Some(NODE));
    let pod = s.pods.get("ordered-1").await.unwrap();
    let at = |f: fn(&Pod, &str) -> Option<i64>, c: &str| {
        f(&pod, c).unwrap_or_else(|| panic!("no time for {c}: {:#?}", pod.status))
    };
    let exit = container(&pod, "init")
        .and_then(|c| c.state.as_ref()?.terminated.as_ref())
        .map(|t| t.exit_code);
    assert_eq!(exit, Some(0), "{:#?}", pod.status);
    let (init_start, init_end) = (at(started_at, "init"), at(finished_at, "init"));
    let (web_start, app_start) = (at(started_at, "web"), at(started_at, "app"));
    eprintln!(
        "init {init_start}..{init_end}, web from {web_start}, app from {app_start} (unix seconds)"
    );
    assert!(init_end - init_start >= 2, "init ran its 2 s");
    assert!(app_start >= init_end, "app started before init exited");
    assert!(
        app_start >= at(finished_at, "check"),
        "app started before check completed"
    );
    // Start times are whole seconds, truncated: web's check cannot pass before its 3 s sleep.
    assert!(
        app_start - web_start >= 3,
        "app started {}s after web, before web's health check could pass",
        app_start - web_start
    );
    let app = st.containers.iter().find(|c| c.name == "app").unwrap();
    assert_eq!(
        app.last_status,
        Some(ContainerLastStatus::Running),
        "{st:#?}"
    );
}

/// The documented difference (docs/translation.md, dependsOn): a `COMPLETE` dependency runs as an init
/// container, so a non-zero exit fails the pod where ECS would go on. The task says so honestly.
#[tokio::test]
async fn a_complete_dependency_exiting_non_zero_fails_the_task_with_its_reason() {
    let Some(s) = setup("real-complete").await else {
        return;
    };
    s.register_spec(
        "checked",
        json!({"containerDefinitions": [
            {"name": "check", "image": IMAGE, "essential": false,
             "entryPoint": ["sh", "-c"], "command": ["exit 1"]},
            {"name": "app", "image": IMAGE, "entryPoint": ["sleep"], "command": ["300"],
             "dependsOn": [{"containerName": "check", "condition": "COMPLETE"}]}
        ]}),
    )
    .await;
    s.run("checked-1", "checked").await;
    let st = s
        .task_until("checked-1", DEADLINE, |st| {
            last_status(st) == Some(LastStatus::Stopped)
        })
        .await;
    assert_eq!(st.stop_code, Some(StopCode::TaskFailedToStart), "{st:#?}");
    assert_eq!(
        st.stopped_reason.as_deref(),
        Some(
            "Container check exited with code 1 before the containers that depend on it could start"
        ),
        "{st:#?}"
    );
    let check = st.containers.iter().find(|c| c.name == "check").unwrap();
    assert_eq!(check.exit_code, Some(1), "{st:#?}");
}

/// stopTimeout is the time between SIGTERM and SIGKILL: a container that ignores SIGTERM is killed
/// after its 3 s, one that exits on SIGTERM stops at once although its stopTimeout is the default 30 s.
#[tokio::test]
async fn stop_timeout_bounds_a_container_that_ignores_sigterm() {
    let Some(s) = setup("real-stop").await else {
        return;
    };
    s.register(
        "stubborn",
        json!({"name": "main", "image": IMAGE, "entryPoint": ["sh", "-c"],
               "command": ["trap '' TERM; while :; do sleep 1; done"], "stopTimeout": 3}),
    )
    .await;
    s.register(
        "prompt",
        json!({"name": "main", "image": IMAGE, "entryPoint": ["sh", "-c"],
               "command": ["trap 'exit 0' TERM; sleep 300 & wait"]}),
    )
    .await;
    s.run("stubborn-1", "stubborn").await;
    s.run("prompt-1", "prompt").await;
    for task in ["stubborn-1", "prompt-1"] {
        s.task_until(task, DEADLINE, |st| {
            last_status(st) == Some(LastStatus::Running)
        })
        .await;
    }
    let (stubborn, prompt) =
        tokio::join!(s.stop_and_time("stubborn-1"), s.stop_and_time("prompt-1"));
    eprintln!("stop request to the container's end: stubborn {stubborn:?}, prompt {prompt:?}");
    assert!(
        stubborn >= Duration::from_secs(3),
        "killed before its stopTimeout: {stubborn:?}"
    );
    assert!(
        stubborn < Duration::from_secs(15),
        "not killed after its stopTimeout: {stubborn:?}"
    );
    assert!(
        prompt < Duration::from_secs(10),
        "SIGTERM did not stop it: {prompt:?}"
    );
    for task in ["stubborn-1", "prompt-1"] {
        let st = s
            .task_until(task, DEADLINE, |st| {
                last_status(st) == Some(LastStatus::Stopped)
            })
            .await;
        assert_eq!(st.stop_code, Some(StopCode::UserInitiated), "{st:#?}");
    }
}

/// restartPolicy on real exits: the essential container exiting 3 after running longer than its
/// restartAttemptPeriod restarts in place, a non-essential one exiting 4 restarts too, and one exiting
/// with its ignored code 7 stays stopped; the task stays RUNNING throughout.
#[tokio::test]
async fn restart_policy_restarts_a_container_in_place() {
    let Some(s) = setup("real-restart").await else {
        return;
    };
    let policy = json!({"enabled": true, "ignoredExitCodes": [7], "restartAttemptPeriod": 60});
    s.register_spec(
        "restarts",
        json!({"containerDefinitions": [
            {"name": "main", "image": IMAGE, "entryPoint": ["sh", "-c"],
             "command": ["sleep 61; exit 3"], "restartPolicy": policy},
            {"name": "flaky", "image": IMAGE, "essential": false, "entryPoint": ["sh", "-c"],
             "command": ["sleep 5; exit 4"], "restartPolicy": policy},
            {"name": "done", "image": IMAGE, "essential": false, "entryPoint": ["sh", "-c"],
             "command": ["sleep 5; exit 7"], "restartPolicy": policy}
        ]}),
    )
    .await;
    s.run("restarts-1", "restarts").await;
    let running = s
        .task_until("restarts-1", DEADLINE, |st| {
            last_status(st) == Some(LastStatus::Running)
        })
        .await;
    let restarted = |pod: &Pod, name: &str, code: i32| {
        container(pod, name).is_some_and(|c| {
            c.restart_count >= 1
                && c.last_state
                    .as_ref()
                    .and_then(|s| s.terminated.as_ref())
                    .map(|t| t.exit_code)
                    == Some(code)
                && c.state.as_ref().is_some_and(|s| s.running.is_some())
        })
    };
    s.pod_until("restarts-1", |p| restarted(p, "flaky", 4))
        .await;
    let pod = wait_for_within(
        &s.pods,
        "restarts-1",
        |p: Option<&Pod>| p.is_some_and(|p| restarted(p, "main", 3)),
        Duration::from_secs(61) + DEADLINE,
    )
    .await;
    // Long after `done` exited (5 s in, while `main` ran 61 s), it has not been restarted.
    let done = container(&pod, "done").unwrap();
    assert_eq!(done.restart_count, 0, "{done:#?}");
    let exit = done
        .state
        .as_ref()
        .and_then(|s| s.terminated.as_ref())
        .map(|t| t.exit_code);
    assert_eq!(exit, Some(7), "{done:#?}");
    let st = s.tasks.get("restarts-1").await.unwrap().status.unwrap();
    assert_eq!(last_status(&st), Some(LastStatus::Running), "{st:#?}");
    assert_eq!(
        st.version, running.version,
        "lastStatus changed meanwhile: {st:#?}"
    );
    assert_eq!(st.stop_code, None);
    let done = st.containers.iter().find(|c| c.name == "done").unwrap();
    assert_eq!(
        (done.last_status, done.exit_code),
        (Some(ContainerLastStatus::Stopped), Some(7))
    );
}

/// A task definition's secrets reach the container's environment from Kubernetes Secrets, named both
/// ways: `name:key` and a Secrets Manager ARN. The container exits 0 only if both values are right.
#[tokio::test]
async fn secrets_reach_the_container_environment() {
    let Some(s) = setup("real-secret").await else {
        return;
    };
    let secret: Secret = serde_json::from_value(json!({
        "metadata": {"name": "db"}, "stringData": {"password": "s3cret value", "user": "admin"}
    }))
    .unwrap();
    s.secrets
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();
    s.register(
        "reads-secret",
        json!({"name": "main", "image": IMAGE, "entryPoint": ["sh", "-c"],
        "command": ["[ \"$DB_PASSWORD\" = 's3cret value' ] && [ \"$DB_USER\" = admin ]"],
        "secrets": [
            {"name": "DB_PASSWORD", "valueFrom": "db:password"},
            {"name": "DB_USER",
             "valueFrom": "arn:aws:secretsmanager:us-east-1:123456789012:secret:db-AbC123:user"}
        ]}),
    )
    .await;
    s.run("reads-secret-1", "reads-secret").await;
    let st = s
        .task_until("reads-secret-1", DEADLINE, |st| {
            last_status(st) == Some(LastStatus::Stopped)
        })
        .await;
    assert_eq!(
        st.stop_code,
        Some(StopCode::EssentialContainerExited),
        "{st:#?}"
    );
    let main = st.containers.iter().find(|c| c.name == "main").unwrap();
    assert_eq!(
        main.exit_code,
        Some(0),
        "the container saw other values: {st:#?}"
    );
}

/// `kubectl logs` and `kubectl exec` reach a task's container on the real node: the API server
/// calls the kubelet with its client cert, at the node's InternalIP.
#[tokio::test]
async fn a_tasks_logs_and_exec_go_through_the_api_server() {
    let Some(s) = setup("real-logs").await else {
        return;
    };
    s.register(
        "talks",
        json!({"name": "main", "image": IMAGE, "entryPoint": ["sh", "-c"],
        "command": ["echo hello from the task; exec sleep 300"]}),
    )
    .await;
    s.run("talks-1", "talks").await;
    s.task_until("talks-1", DEADLINE, |st| {
        last_status(st) == Some(LastStatus::Running)
    })
    .await;
    let params = kube::api::LogParams {
        container: Some("main".into()),
        ..Default::default()
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let logs = loop {
        match s.pods.logs("talks-1", &params).await {
            Ok(logs) if logs.contains("hello from the task") => break logs,
            other if tokio::time::Instant::now() > deadline => {
                panic!("no log line from the task: {other:?}")
            }
            _ => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    };
    assert_eq!(logs.trim(), "hello from the task");
    let ns = s.pods.namespace().unwrap_or_default().to_string();
    let out = std::process::Command::new("kubectl")
        .args(["exec", "-n", &ns, "talks-1", "-c", "main", "--"])
        .args(["sh", "-c", "echo exec in $(hostname)"])
        .output()
        .expect("kubectl runs");
    assert!(
        out.status.success(),
        "kubectl exec: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "exec in talks-1"
    );
}

/// A task volume shared through mountPoints and volumesFrom: `writer` writes a file, `reader` (after
/// it, dependsOn SUCCESS, mounting read-only) finds it and cannot write; exit codes say.
#[tokio::test]
async fn containers_share_a_task_volume() {
    let Some(s) = setup("real-volume").await else {
        return;
    };
    s.register_spec(
        "shares",
        json!({
            "volumes": [{"name": "shared"}],
            "containerDefinitions": [
                {"name": "writer", "image": IMAGE, "essential": false,
                 "entryPoint": ["sh", "-c"], "command": ["echo hello > /data/msg"],
                 "mountPoints": [{"sourceVolume": "shared", "containerPath": "/data"}]},
                {"name": "reader", "image": IMAGE, "entryPoint": ["sh", "-c"],
                 "command": ["[ \"$(cat /data/msg)\" = hello ] && ! touch /data/other"],
                 "volumesFrom": [{"sourceContainer": "writer", "readOnly": true}],
                 "dependsOn": [{"containerName": "writer", "condition": "SUCCESS"}]}
            ]
        }),
    )
    .await;
    s.run("shares-1", "shares").await;
    let st = s
        .task_until("shares-1", DEADLINE, |st| {
            last_status(st) == Some(LastStatus::Stopped)
        })
        .await;
    assert_eq!(
        st.stop_code,
        Some(StopCode::EssentialContainerExited),
        "{st:#?}"
    );
    let code = |name: &str| {
        st.containers
            .iter()
            .find(|c| c.name == name)
            .unwrap()
            .exit_code
    };
    assert_eq!(code("writer"), Some(0), "{st:#?}");
    assert_eq!(code("reader"), Some(0), "{st:#?}");
}

/// `examples/real-node/http-task.yaml`, which `cargo xtask demo` runs on the real node: busybox httpd
/// in an ECS task answers HTTP on the pod IP (the node's bridge is reachable from this machine).
#[tokio::test]
async fn a_task_serves_http_on_its_pod_ip() {
    let Some(s) = setup("real-http").await else {
        return;
    };
    let file = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/real-node/http-task.yaml"
    );
    for doc in yaml_documents(&std::fs::read_to_string(file).unwrap()) {
        let name = doc["metadata"]["name"].as_str().unwrap().to_string();
        let params = PatchParams::apply("test").force();
        match doc["kind"].as_str() {
            Some("TaskDefinition") => s
                .tds
                .patch(&name, &params, &Patch::Apply(&doc))
                .await
                .map(drop),
            Some("Task") => s
                .tasks
                .patch(&name, &params, &Patch::Apply(&doc))
                .await
                .map(drop),
            other => panic!("{file}: unexpected kind {other:?}"),
        }
        .unwrap();
    }
    s.task_until("hello-http-1", DEADLINE, |st| {
        last_status(st) == Some(LastStatus::Running)
    })
    .await;
    let pod = s
        .pod_until("hello-http-1", |p| {
            p.status.as_ref().is_some_and(|s| s.pod_ip.is_some())
        })
        .await;
    assert_eq!(pod.spec.as_ref().unwrap().node_name.as_deref(), Some(NODE));
    let ip = pod.status.unwrap().pod_ip.unwrap();
    // RUNNING means the process started; httpd binds its port a moment later.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let response = loop {
        match http_get(&format!("{ip}:8080")).await {
            Ok(r) => break r,
            Err(e) if tokio::time::Instant::now() < deadline => {
                eprintln!("{ip}:8080 not answering yet: {e}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("{ip}:8080: {e}"),
        }
    };
    assert!(response.starts_with("HTTP/1.1 200 OK\r\n"), "{response}");
    assert!(
        response.ends_with("\r\n\r\nhello from an ECS task on real-1\n"),
        "{response}"
    );
}

/// A plain HTTP/1.0 GET of `/`: the whole response.
async fn http_get(address: &str) -> std::io::Result<String> {
    use std::io::{Read, Write};
    let address: std::net::SocketAddr = address.parse().expect("an IP address and port");
    tokio::task::spawn_blocking(move || {
        let timeout = Duration::from_secs(5);
        let mut stream = std::net::TcpStream::connect_timeout(&address, timeout)?;
        stream.set_read_timeout(Some(timeout))?;
        stream.write_all(b"GET / HTTP/1.0\r\n\r\n")?;
        let mut response = String::new();
        stream.read_to_string(&mut response)?;
        Ok(response)
    })
    .await
    .unwrap()
}
