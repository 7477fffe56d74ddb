//! Tasks on the local control plane: one pod per task, the ECS lifecycle in status, ECS stop rules.

mod support;

use ecs_operator::api::task::{
    ContainerLastStatus, DesiredStatus, HealthStatus, LastStatus, StopCode,
};
use ecs_operator::api::task_definition::TaskDefinitionState;
use ecs_operator::api::{Task, TaskDefinition};
use k8s_openapi::api::apps::v1::ControllerRevision;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;
use support::{
    Operator, TestNamespace, client, install_crds, make_container_exit, wait_for, wait_for_within,
    wait_gone,
};

fn task_definition(name: &str, spec: serde_json::Value) -> TaskDefinition {
    serde_json::from_value(json!({
        "apiVersion": "ecs.operator.dev/v1alpha1", "kind": "TaskDefinition",
        "metadata": {"name": name}, "spec": spec
    }))
    .unwrap()
}

fn task(name: &str, spec: serde_json::Value) -> Task {
    serde_json::from_value(json!({
        "apiVersion": "ecs.operator.dev/v1alpha1", "kind": "Task",
        "metadata": {"name": name}, "spec": spec
    }))
    .unwrap()
}

fn web_spec() -> serde_json::Value {
    json!({"containerDefinitions": [
        {"name": "web", "image": "nginx:1.27", "entryPoint": ["nginx"], "command": ["-g", "daemon off;"],
         "cpu": 512, "memory": 256, "memoryReservation": 128,
         "environment": [{"name": "MODE", "value": "prod"}],
         "portMappings": [{"containerPort": 80, "name": "http"}],
         "healthCheck": {"command": ["CMD-SHELL", "curl -f http://localhost/"], "interval": 10, "timeout": 3, "retries": 2}},
        {"name": "logs", "image": "busybox:1.37", "essential": false, "command": ["sleep", "infinity"]}
    ]})
}

fn last_status(t: Option<&Task>) -> Option<LastStatus> {
    t?.status.as_ref()?.last_status
}

fn is(status: LastStatus) -> impl Fn(Option<&Task>) -> bool {
    move |t| last_status(t) == Some(status)
}

fn ready_reason(t: Option<&Task>, reason: &'static str) -> bool {
    t.and_then(|t| t.status.as_ref())
        .and_then(|s| s.conditions.iter().find(|c| c.type_ == "Ready"))
        .is_some_and(|c| c.reason == reason)
}

struct Setup {
    ns: TestNamespace,
    tds: Api<TaskDefinition>,
    tasks: Api<Task>,
    pods: Api<Pod>,
    _operator: Operator,
}

async fn setup(prefix: &str) -> Setup {
    setup_with(prefix, ecs_operator::context::Config::default()).await
}

impl Setup {
    async fn registered(&self, name: &str, spec: serde_json::Value, revision: i64) {
        self.tds
            .patch(
                name,
                &PatchParams::apply("test").force(),
                &Patch::Apply(task_definition(name, spec)),
            )
            .await
            .unwrap();
        wait_for(&self.tds, name, move |td: Option<&TaskDefinition>| {
            td.and_then(|t| t.status.as_ref()?.latest_revision) == Some(revision)
        })
        .await;
    }

    async fn run(&self, name: &str, spec: serde_json::Value) -> Task {
        self.tasks
            .create(&PostParams::default(), &task(name, spec))
            .await
            .unwrap();
        wait_for(&self.tasks, name, is(LastStatus::Running)).await
    }
}

#[tokio::test]
async fn task_reaches_running_and_reports_its_zone() {
    let s = setup("task-running").await;
    s.registered("web", web_spec(), 1).await;
    let t = s.run("web-1", json!({"taskDefinition": "web"})).await;
    let st = t.status.unwrap();
    assert_eq!(st.task_definition.as_deref(), Some("web:1"));
    assert_eq!(st.desired_status, Some(DesiredStatus::Running));
    assert_eq!(st.group.as_deref(), Some("family:web"));
    let zone = st.availability_zone.expect("a zone");
    assert!(zone.starts_with("us-east-1"), "{zone}");
    assert!(st.started_at.is_some() && st.created_at.is_some());
    assert_eq!(st.containers.len(), 2);
    assert!(
        st.containers
            .iter()
            .all(|c| c.last_status == Some(ContainerLastStatus::Running))
    );
    // The web container has a passing health check (kwok marks it ready); logs has none.
    assert_eq!(st.containers[0].health_status, Some(HealthStatus::Healthy));
    assert_eq!(st.health_status, Some(HealthStatus::Healthy));

    let pod = s.pods.get("web-1").await.unwrap();
    let owner = &pod.metadata.owner_references.as_ref().unwrap()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.controller),
        ("Task", Some(true))
    );
    assert_eq!(
        pod.spec.as_ref().unwrap().restart_policy.as_deref(),
        Some("Never")
    );
    assert_eq!(
        s.pods
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .len(),
        1,
        "one pod per task"
    );
}

/// A task whose pod starts within moments writes its status once (RUNNING), not once per step on the
/// way (PROVISIONING with the pod created, PENDING, ACTIVATING).
#[tokio::test]
async fn a_task_whose_pod_starts_at_once_writes_its_status_once() {
    use futures::{StreamExt, TryStreamExt};
    use kube::runtime::watcher;

    let s = setup("task-writes").await;
    s.registered(
        "web",
        json!({"containerDefinitions": [{"name": "web", "image": "nginx"}]}),
        1,
    )
    .await;
    // Every version of the task from its creation on: the watch is listening before the create.
    let mut events = watcher(
        s.tasks.clone(),
        watcher::Config::default().fields("metadata.name=web-1"),
    )
    .boxed();
    while !matches!(
        events.try_next().await.unwrap(),
        Some(watcher::Event::InitDone)
    ) {}
    s.tasks
        .create(
            &PostParams::default(),
            &task("web-1", json!({"taskDefinition": "web"})),
        )
        .await
        .unwrap();
    let mut written = Vec::new();
    let seen = tokio::time::timeout(std::time::Duration::from_secs(60), async {
        while let Some(event) = events.try_next().await.unwrap() {
            let watcher::Event::Apply(t) = event else {
                continue;
            };
            if t.status.is_some() && written.last() != Some(&t.status) {
                written.push(t.status.clone());
            }
            if is(LastStatus::Running)(Some(&t)) {
                return;
            }
        }
    })
    .await;
    assert!(seen.is_ok(), "not RUNNING within 60 s: {written:?}");
    // kwok starts containers at once; on a loaded machine the pod may take longer than the moment a
    // brief state waits for, and then PENDING or ACTIVATING is rightly written too.
    let pod = s.pods.get("web-1").await.unwrap();
    let created = pod.metadata.creation_timestamp.clone().unwrap().0;
    let ready = pod
        .status
        .and_then(|st| st.conditions)
        .into_iter()
        .flatten()
        .find(|c| c.type_ == "Ready" && c.status == "True")
        .and_then(|c| c.last_transition_time)
        .expect("the pod is Ready")
        .0;
    let took = ready.duration_since(created).as_secs();
    let steps: Vec<_> = written
        .iter()
        .map(|s| s.as_ref().and_then(|s| s.last_status))
        .collect();
    if took < 1 {
        assert_eq!(steps, vec![Some(LastStatus::Running)], "{written:#?}");
    } else {
        eprintln!("the pod took {took} s to be Ready: statuses written {steps:?}");
        assert!(steps.len() <= 3, "{steps:?}");
    }
}

#[tokio::test]
async fn the_pod_runs_what_the_task_definition_says() {
    let s = setup("task-pod").await;
    s.registered("web", web_spec(), 1).await;
    s.run(
        "web-1",
        json!({"taskDefinition": "web:1", "overrides": {"containerOverrides": [
            {"name": "web", "environment": [{"name": "MODE", "value": "canary"}]}]}}),
    )
    .await;
    let pod = s.pods.get("web-1").await.unwrap();
    let spec = pod.spec.unwrap();
    let web = spec
        .containers
        .iter()
        .find(|c| c.name == "web")
        .expect("web container");
    assert_eq!(
        web.command.as_deref(),
        Some(&["nginx".to_string()][..]),
        "entryPoint → command"
    );
    assert_eq!(
        web.args.as_deref(),
        Some(&["-g".to_string(), "daemon off;".to_string()][..]),
        "command → args"
    );
    let resources = web.resources.as_ref().unwrap();
    assert_eq!(resources.requests.as_ref().unwrap()["cpu"].0, "500m");
    assert_eq!(resources.requests.as_ref().unwrap()["memory"].0, "128Mi");
    assert_eq!(resources.limits.as_ref().unwrap()["memory"].0, "256Mi");
    let env = web.env.as_ref().unwrap();
    assert_eq!(
        env.iter()
            .find(|e| e.name == "MODE")
            .unwrap()
            .value
            .as_deref(),
        Some("canary")
    );
    let probe = web
        .readiness_probe
        .as_ref()
        .expect("healthCheck → readinessProbe");
    assert_eq!(probe.period_seconds, Some(10));
    assert_eq!(probe.failure_threshold, Some(2));
    assert_eq!(
        probe.exec.as_ref().unwrap().command.as_deref().unwrap()[..2],
        ["/bin/sh".to_string(), "-c".to_string()]
    );
    assert!(
        web.liveness_probe.is_none(),
        "ECS never restarts an unhealthy container in place"
    );
}

#[tokio::test]
async fn an_essential_container_exit_stops_the_task() {
    let s = setup("task-essential").await;
    s.registered("web", web_spec(), 1).await;
    s.run("web-1", json!({"taskDefinition": "web"})).await;
    make_container_exit(&s.pods, "web-1", Some("web"), 3).await;
    let t = wait_for(&s.tasks, "web-1", is(LastStatus::Stopped)).await;
    let st = t.status.unwrap();
    assert_eq!(st.stop_code, Some(StopCode::EssentialContainerExited));
    assert_eq!(
        st.stopped_reason.as_deref(),
        Some("Essential container in task exited")
    );
    let web = st.containers.iter().find(|c| c.name == "web").unwrap();
    assert_eq!(web.exit_code, Some(3));
    assert!(st.stopped_at.is_some() && st.stopping_at.is_some());
    // The other containers were stopped with the pod, and the task is not replaced.
    wait_gone(&s.pods, "web-1").await;
    assert!(
        s.pods
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
}

#[tokio::test]
async fn a_non_essential_container_exit_does_not_stop_the_task() {
    let s = setup("task-nonessential").await;
    s.registered("web", web_spec(), 1).await;
    s.run("web-1", json!({"taskDefinition": "web"})).await;
    make_container_exit(&s.pods, "web-1", Some("logs"), 0).await;
    let t = wait_for(&s.tasks, "web-1", |t: Option<&Task>| {
        t.and_then(|t| t.status.as_ref())
            .and_then(|s| s.containers.iter().find(|c| c.name == "logs"))
            .is_some_and(|c| c.last_status == Some(ContainerLastStatus::Stopped))
    })
    .await;
    let st = t.status.unwrap();
    assert_eq!(st.last_status, Some(LastStatus::Running));
    assert_eq!(st.stop_code, None);
    assert_eq!(
        st.containers
            .iter()
            .find(|c| c.name == "logs")
            .unwrap()
            .exit_code,
        Some(0)
    );
    assert!(s.pods.get_opt("web-1").await.unwrap().is_some());
}

#[tokio::test]
async fn desired_status_stopped_stops_the_task_with_the_reason_given() {
    let s = setup("task-stop").await;
    s.registered("web", web_spec(), 1).await;
    s.run("web-1", json!({"taskDefinition": "web"})).await;
    s.tasks
        .patch(
            "web-1",
            &PatchParams::default(),
            &Patch::Merge(
                json!({"spec": {"desiredStatus": "STOPPED", "reason": "maintenance window"}}),
            ),
        )
        .await
        .unwrap();
    let t = wait_for(&s.tasks, "web-1", is(LastStatus::Stopped)).await;
    let st = t.status.unwrap();
    assert_eq!(st.stop_code, Some(StopCode::UserInitiated));
    assert_eq!(st.stopped_reason.as_deref(), Some("maintenance window"));
    wait_gone(&s.pods, "web-1").await;
}

#[tokio::test]
async fn a_deleted_pod_stops_the_task_and_it_is_not_replaced() {
    let s = setup("task-podgone").await;
    s.registered("web", web_spec(), 1).await;
    s.run("web-1", json!({"taskDefinition": "web"})).await;
    s.pods
        .delete("web-1", &DeleteParams::default())
        .await
        .unwrap();
    let t = wait_for(&s.tasks, "web-1", is(LastStatus::Stopped)).await;
    let st = t.status.unwrap();
    assert_eq!(st.stop_code, Some(StopCode::UserInitiated));
    assert!(
        st.stopped_reason
            .unwrap()
            .contains("deleted outside ecs-operator")
    );
    // Give the controller every chance to (wrongly) recreate it: re-trigger a reconcile and look again.
    s.tasks
        .patch(
            "web-1",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"annotations": {"poke": "1"}}})),
        )
        .await
        .unwrap();
    wait_for(&s.tasks, "web-1", |t: Option<&Task>| {
        t.is_some_and(|t| {
            t.metadata
                .annotations
                .as_ref()
                .is_some_and(|a| a.contains_key("poke"))
        })
    })
    .await;
    let mut w = s.tasks.get("web-1").await.unwrap();
    for _ in 0..3 {
        w = wait_for(&s.tasks, "web-1", is(LastStatus::Stopped)).await;
    }
    assert_eq!(last_status(Some(&w)), Some(LastStatus::Stopped));
    assert!(
        s.pods.get_opt("web-1").await.unwrap().is_none(),
        "a stopped task is never restarted"
    );
}

#[tokio::test]
async fn a_new_revision_does_not_touch_running_tasks() {
    let s = setup("task-revision").await;
    s.registered("web", web_spec(), 1).await;
    s.run("web-1", json!({"taskDefinition": "web"})).await;
    let before = s.pods.get("web-1").await.unwrap();
    let mut spec = web_spec();
    spec["containerDefinitions"][0]["image"] = json!("nginx:1.28");
    s.registered("web", spec, 2).await;
    // New tasks naming the family get revision 2; the running one keeps revision 1 and its pod.
    let t2 = s.run("web-2", json!({"taskDefinition": "web"})).await;
    assert_eq!(t2.status.unwrap().task_definition.as_deref(), Some("web:2"));
    let after = s.pods.get("web-1").await.unwrap();
    assert_eq!(before.metadata.uid, after.metadata.uid);
    assert_eq!(
        after.spec.unwrap().containers[0].image.as_deref(),
        Some("nginx:1.27")
    );
    assert_eq!(
        s.tasks
            .get("web-1")
            .await
            .unwrap()
            .status
            .unwrap()
            .task_definition
            .as_deref(),
        Some("web:1")
    );
    let revisions: Api<ControllerRevision> = s.ns.api();
    let mut names: Vec<_> = revisions
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|r| (r.metadata.name.unwrap(), r.revision))
        .collect();
    names.sort();
    assert_eq!(names, [("web-1".to_string(), 1), ("web-2".to_string(), 2)]);
}

#[tokio::test]
async fn an_inactive_revision_is_refused_for_new_tasks() {
    let s = setup("task-inactive").await;
    s.registered("web", web_spec(), 1).await;
    s.run("web-1", json!({"taskDefinition": "web:1"})).await;
    s.tds
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(
                json!({"metadata": {"annotations": {"ecs.operator.dev/inactive-revisions": "1"}}}),
            ),
        )
        .await
        .unwrap();
    wait_for(&s.tds, "web", |td: Option<&TaskDefinition>| {
        td.and_then(|t| t.status.as_ref()).is_some_and(|s| {
            s.revisions
                .first()
                .is_some_and(|r| r.status == TaskDefinitionState::Inactive)
        })
    })
    .await;
    s.tasks
        .create(
            &PostParams::default(),
            &task("web-2", json!({"taskDefinition": "web:1"})),
        )
        .await
        .unwrap();
    let t = wait_for(&s.tasks, "web-2", |t: Option<&Task>| {
        ready_reason(t, "TaskDefinitionInactive")
    })
    .await;
    let ready = t
        .status
        .unwrap()
        .conditions
        .into_iter()
        .find(|c| c.type_ == "Ready")
        .unwrap();
    assert!(
        ready.message.contains("web:1 is INACTIVE"),
        "{}",
        ready.message
    );
    assert!(s.pods.get_opt("web-2").await.unwrap().is_none());
    // The running task of the deregistered revision keeps running.
    assert_eq!(
        last_status(s.tasks.get("web-1").await.ok().as_ref()),
        Some(LastStatus::Running)
    );
}

#[tokio::test]
async fn a_missing_task_definition_is_a_condition_and_other_tasks_keep_working() {
    let s = setup("task-missing").await;
    s.tasks
        .create(
            &PostParams::default(),
            &task("orphan", json!({"taskDefinition": "nope:3"})),
        )
        .await
        .unwrap();
    let t = wait_for(&s.tasks, "orphan", |t: Option<&Task>| {
        ready_reason(t, "TaskDefinitionNotFound")
    })
    .await;
    let ready = t
        .status
        .unwrap()
        .conditions
        .into_iter()
        .find(|c| c.type_ == "Ready")
        .unwrap();
    assert!(
        ready.message.contains("nope:3"),
        "names the task definition: {}",
        ready.message
    );
    s.registered("web", web_spec(), 1).await;
    s.run("web-1", json!({"taskDefinition": "web"})).await;
    // A task waiting for a definition that is applied later (GitOps order) starts when it appears.
    s.tasks
        .create(
            &PostParams::default(),
            &task("early", json!({"taskDefinition": "late"})),
        )
        .await
        .unwrap();
    wait_for(&s.tasks, "early", |t: Option<&Task>| {
        ready_reason(t, "TaskDefinitionNotFound")
    })
    .await;
    s.registered("late", web_spec(), 1).await;
    // Well within the 60 s retry: the TaskDefinition watch starts it, not the retry.
    let early = wait_for_within(
        &s.tasks,
        "early",
        is(LastStatus::Running),
        std::time::Duration::from_secs(20),
    )
    .await;
    assert_eq!(
        early.status.unwrap().task_definition.as_deref(),
        Some("late:1")
    );
    // The orphan still names a revision that does not exist: it keeps waiting, with its condition.
    let orphan = s.tasks.get("orphan").await.unwrap();
    assert!(ready_reason(Some(&orphan), "TaskDefinitionNotFound"));
}

async fn setup_with(prefix: &str, config: ecs_operator::context::Config) -> Setup {
    let client = client().await;
    install_crds(&client).await;
    let ns = TestNamespace::new(&client, prefix).await;
    let operator = Operator::start_with(&client, &ns.name, config);
    Setup {
        tds: ns.api(),
        tasks: ns.api(),
        pods: ns.api(),
        ns,
        _operator: operator,
    }
}

#[tokio::test]
async fn stopped_standalone_tasks_are_deleted_after_the_retention_period() {
    let config = ecs_operator::context::Config {
        stopped_task_retention: std::time::Duration::from_secs(3),
        ..Default::default()
    };
    let s = setup_with("task-retention", config).await;
    s.registered("web", web_spec(), 1).await;
    s.run("web-1", json!({"taskDefinition": "web"})).await;
    s.tasks
        .patch(
            "web-1",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"desiredStatus": "STOPPED"}})),
        )
        .await
        .unwrap();
    let stopped = wait_for(&s.tasks, "web-1", is(LastStatus::Stopped)).await;
    assert_eq!(
        stopped.status.unwrap().stopped_reason.as_deref(),
        Some("Task stopped by user")
    );
    wait_gone(&s.tasks, "web-1").await;
}

#[tokio::test]
async fn a_task_that_cannot_be_placed_fails_to_start() {
    let config = ecs_operator::context::Config {
        start_timeout: std::time::Duration::from_secs(5),
        ..Default::default()
    };
    let s = setup_with("task-unplaceable", config).await;
    s.registered("web", web_spec(), 1).await;
    s.tasks
        .create(
            &PostParams::default(),
            &task(
                "nowhere",
                json!({"taskDefinition": "web", "placementConstraints": [
                    {"type": "memberOf", "expression": "attribute:ecs.availability-zone == eu-west-3a"}]}),
            ),
        )
        .await
        .unwrap();
    let pending = wait_for(&s.tasks, "nowhere", is(LastStatus::Pending)).await;
    assert_eq!(pending.status.unwrap().availability_zone, None);
    let t = wait_for(&s.tasks, "nowhere", is(LastStatus::Stopped)).await;
    let st = t.status.unwrap();
    assert_eq!(st.stop_code, Some(StopCode::TaskFailedToStart));
    let reason = st.stopped_reason.unwrap();
    assert!(reason.contains("could not be placed"), "{reason}");
    assert!(
        reason.contains("node affinity"),
        "the scheduler's reason is kept: {reason}"
    );
    // The constraint reached the pod as required node affinity on the zone label.
    assert!(s.pods.get_opt("nowhere").await.unwrap().is_none());
}

#[tokio::test]
async fn a_definition_kubernetes_cannot_run_fails_the_task_with_the_reason() {
    let s = setup("task-untranslatable").await;
    s.registered(
        "named-user",
        json!({"containerDefinitions": [{"name": "web", "image": "nginx", "user": "nginx"}]}),
        1,
    )
    .await;
    let td = s.tds.get("named-user").await.unwrap();
    let ready = td
        .status
        .unwrap()
        .conditions
        .into_iter()
        .find(|c| c.type_ == "Ready")
        .unwrap();
    assert_eq!(ready.reason, "InvalidTaskDefinition");
    s.tasks
        .create(
            &PostParams::default(),
            &task("web-1", json!({"taskDefinition": "named-user"})),
        )
        .await
        .unwrap();
    let t = wait_for(&s.tasks, "web-1", is(LastStatus::Stopped)).await;
    let st = t.status.unwrap();
    assert_eq!(st.stop_code, Some(StopCode::TaskFailedToStart));
    assert!(
        st.stopped_reason.unwrap().contains("user"),
        "names the field"
    );
}

#[tokio::test]
async fn fields_kubernetes_cannot_honour_are_reported() {
    let s = setup("task-nothonoured").await;
    s.registered(
        "logged",
        json!({"containerDefinitions": [{"name": "web", "image": "nginx",
            "logConfiguration": {"logDriver": "awslogs", "options": {"awslogs-group": "/ecs/web"}},
            "ulimits": [{"name": "nofile", "softLimit": 1024, "hardLimit": 4096}]}]}),
        1,
    )
    .await;
    let td = s.tds.get("logged").await.unwrap();
    let fields: Vec<String> = td
        .status
        .unwrap()
        .not_honoured
        .into_iter()
        .map(|f| f.field)
        .collect();
    assert!(
        fields.iter().any(|f| f.contains("logConfiguration")),
        "{fields:?}"
    );
    assert!(fields.iter().any(|f| f.contains("ulimits")), "{fields:?}");
    // Kept as written in the spec: accepted, never silently dropped.
    let spec = serde_json::to_value(s.tds.get("logged").await.unwrap().spec).unwrap();
    assert_eq!(
        spec["containerDefinitions"][0]["logConfiguration"]["logDriver"],
        "awslogs"
    );
}
