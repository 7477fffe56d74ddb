//! The operator under hostile conditions: an object our types cannot read (the others keep working, and
//! it is told why), a node cache that cannot load (no DAEMON task is stopped for it, and /healthz says
//! the watch is wedged), and creates refused part-way (the failure is reported on the Service).

mod support;

use std::sync::Arc;
use std::time::Duration;

use ecs_operator::api::{Service, Task, TaskDefinition};
use k8s_openapi::api::core::v1::ResourceQuota;
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use serde_json::json;
use support::{DEADLINE, TestNamespace, client, install_crds, wait_for};

/// A timestamp the API server's date-time format accepts (ten fraction digits) but our types refuse
/// (nine at most): the lever for storing an object the operator cannot decode.
const UNREADABLE_TIME: &str = "2026-01-01T00:00:00.1234567890Z";

async fn apply<K>(api: &Api<K>, body: serde_json::Value) -> K
where
    K: kube::Resource + Clone + std::fmt::Debug + serde::de::DeserializeOwned + serde::Serialize,
{
    let name = body["metadata"]["name"].as_str().unwrap().to_string();
    api.patch(&name, &PatchParams::apply("test"), &Patch::Apply(&body))
        .await
        .unwrap_or_else(|e| panic!("apply {name}: {e}"))
}

async fn task_definition(ns: &TestNamespace) {
    let tds: Api<TaskDefinition> = ns.api();
    apply(
        &tds,
        json!({"apiVersion": "ecs.operator.dev/v1alpha1", "kind": "TaskDefinition",
               "metadata": {"name": "web"},
               "spec": {"containerDefinitions": [{"name": "web", "image": "nginx"}]}}),
    )
    .await;
}

async fn service(ns: &TestNamespace, name: &str, spec: serde_json::Value) -> Service {
    let services: Api<Service> = ns.api();
    apply(
        &services,
        json!({"apiVersion": "ecs.operator.dev/v1alpha1", "kind": "Service",
               "metadata": {"name": name}, "spec": spec}),
    )
    .await
}

/// Polls (with a deadline) until a Warning Event of `reason` about `name` exists; returns its note.
async fn warning(ns: &TestNamespace, name: &str, reason: &str) -> String {
    let events: Api<Event> = ns.api();
    let until = tokio::time::Instant::now() + DEADLINE;
    loop {
        let found = events
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .into_iter()
            .find(|e| {
                e.type_.as_deref() == Some("Warning")
                    && e.reason.as_deref() == Some(reason)
                    && e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name)
            });
        if let Some(e) = found {
            return e.note.unwrap_or_default();
        }
        assert!(
            tokio::time::Instant::now() < until,
            "no Warning {reason} event about {name} within {DEADLINE:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The operator's controllers for one namespace, running as `client`, with its admin state.
struct InProcess {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    handle: tokio::task::JoinHandle<()>,
    admin: Arc<ecs_operator::admin::Admin>,
}

impl InProcess {
    fn start(client: Client, ns: &str, config: ecs_operator::context::Config) -> Self {
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let admin = Arc::new(ecs_operator::admin::Admin::default());
        let options = ecs_operator::run::Options {
            namespaces: vec![ns.to_string()],
            config,
            admin: admin.clone(),
        };
        let handle = tokio::spawn(ecs_operator::run::run(client, options, async move {
            let _ = stopped.await;
        }));
        Self {
            stop: Some(stop),
            handle,
            admin,
        }
    }

    /// Stops it and waits until it has.
    async fn stop(mut self) {
        let _ = self.stop.take().map(|s| s.send(()));
        let _ = tokio::time::timeout(DEADLINE, &mut self.handle).await;
    }

    /// `/healthz` as the kubelet sees it: status code and body, over HTTP.
    async fn healthz(&self) -> (u16, String) {
        let listener = ecs_operator::admin::bind("127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(ecs_operator::admin::serve(
            listener,
            self.admin.clone(),
            async move {
                let _ = stopped.await;
            },
        ));
        let response = tokio::task::spawn_blocking(move || {
            use std::io::{Read, Write};
            let mut s = std::net::TcpStream::connect(addr).unwrap();
            s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                .unwrap();
            let mut out = String::new();
            s.read_to_string(&mut out).unwrap();
            out
        })
        .await
        .unwrap();
        let _ = stop.send(());
        let _ = server.await;
        let code = response
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        let body = response
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_string())
            .unwrap_or_default();
        (code, body)
    }

    /// Reconciles of `controller` started, and how many are running now.
    fn reconciles(&self, controller: &'static str) -> (u64, i64) {
        let labels = ecs_operator::admin::ControllerLabels { controller };
        let m = &self.admin.metrics;
        (
            m.reconciles.get_or_create(&labels).get(),
            m.in_flight.get_or_create(&labels).get(),
        )
    }
}

impl Drop for InProcess {
    fn drop(&mut self) {
        let _ = self.stop.take().map(|s| s.send(()));
        self.handle.abort();
    }
}

#[tokio::test]
async fn an_unreadable_service_is_reported_on_itself_and_others_keep_reconciling() {
    let client = client().await;
    install_crds(&client).await;
    let ns = TestNamespace::new(&client, "undecodable").await;
    let services: Api<Service> = ns.api();
    // Stored before the operator starts, so its first list already holds it.
    service(
        &ns,
        "bad",
        json!({"taskDefinition": "web", "desiredCount": 0}),
    )
    .await;
    let status =
        json!({"status": {"events": [{"id": "1", "message": "m", "createdAt": UNREADABLE_TIME}]}});
    let raw: Api<kube::core::DynamicObject> = Api::namespaced_with(
        client.clone(),
        &ns.name,
        &kube::discovery::ApiResource::erase::<Service>(&()),
    );
    raw.patch_status("bad", &PatchParams::default(), &Patch::Merge(&status))
        .await
        .expect("the API server accepts the value");
    assert_eq!(
        raw.get("bad").await.unwrap().data["status"]["events"][0]["createdAt"],
        UNREADABLE_TIME
    );
    assert!(services.get("bad").await.is_err(), "our type refuses it");
    // A list (what a watch starts with) fails as a whole with our type: one object would blind the
    // controller to every Service.
    assert!(services.list(&ListParams::default()).await.is_err());

    let _operator = support::Operator::start(&client, &ns.name);
    service(
        &ns,
        "good",
        json!({"taskDefinition": "web", "desiredCount": 0}),
    )
    .await;
    let good = wait_for(&services, "good", |s: Option<&Service>| {
        s.and_then(|s| s.status.as_ref())
            .is_some_and(|st| st.observed_generation.is_some())
    })
    .await;
    assert_eq!(
        good.status.unwrap().observed_generation,
        good.metadata.generation
    );

    let note = warning(&ns, "bad", "InvalidObject").await;
    assert!(note.contains("status.events[0].createdAt"), "{note}");
    assert!(note.contains("Service"), "{note}");
    // The condition, written through the status subresource (read raw: our type cannot).
    let until = tokio::time::Instant::now() + DEADLINE;
    loop {
        let obj = raw.get("bad").await.unwrap();
        let ready = obj.data["status"]["conditions"]
            .as_array()
            .and_then(|c| c.iter().find(|c| c["type"] == "Ready").cloned());
        if let Some(ready) = ready {
            assert_eq!(ready["status"], "False");
            assert_eq!(ready["reason"], "InvalidObject");
            assert!(
                ready["message"]
                    .as_str()
                    .unwrap()
                    .contains("status.events[0].createdAt")
            );
            // Its spec is the user's: untouched.
            assert_eq!(obj.data["spec"]["desiredCount"], 0);
            break;
        }
        assert!(
            tokio::time::Instant::now() < until,
            "no Ready condition: {obj:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Writes a status condition the API server accepts but our types refuse (its `lastTransitionTime`),
/// through the raw API.
async fn make_unreadable<K: kube::Resource<DynamicType = ()>>(
    client: &Client,
    ns: &TestNamespace,
    name: &str,
) {
    let raw: Api<kube::core::DynamicObject> = Api::namespaced_with(
        client.clone(),
        &ns.name,
        &kube::discovery::ApiResource::erase::<K>(&()),
    );
    let status = json!({"status": {"conditions": [{"type": "Imported", "status": "True",
        "reason": "Imported", "message": "", "lastTransitionTime": UNREADABLE_TIME}]}});
    raw.patch_status(name, &PatchParams::default(), &Patch::Merge(&status))
        .await
        .expect("the API server accepts the value");
}

#[tokio::test]
async fn unreadable_task_definitions_and_tasks_leave_the_others_working() {
    let client = client().await;
    install_crds(&client).await;
    let ns = TestNamespace::new(&client, "undecodable-tasks").await;
    let tds: Api<TaskDefinition> = ns.api();
    let tasks: Api<Task> = ns.api();
    let td = |name: &str| {
        json!({"apiVersion": "ecs.operator.dev/v1alpha1", "kind": "TaskDefinition",
               "metadata": {"name": name},
               "spec": {"containerDefinitions": [{"name": "web", "image": "nginx"}]}})
    };
    let task = |name: &str| {
        json!({"apiVersion": "ecs.operator.dev/v1alpha1", "kind": "Task",
               "metadata": {"name": name}, "spec": {"taskDefinition": "web"}})
    };
    apply(&tds, td("broken")).await;
    make_unreadable::<TaskDefinition>(&client, &ns, "broken").await;
    apply(&tasks, task("broken")).await;
    make_unreadable::<Task>(&client, &ns, "broken").await;

    let _operator = support::Operator::start(&client, &ns.name);
    apply(&tds, td("web")).await;
    apply(&tasks, task("good")).await;
    wait_for(&tds, "web", |t: Option<&TaskDefinition>| {
        t.and_then(|t| t.status.as_ref())
            .is_some_and(|s| s.latest_revision == Some(1))
    })
    .await;
    wait_for(&tasks, "good", |t: Option<&Task>| {
        t.and_then(|t| t.status.as_ref())
            .is_some_and(|s| s.pod_name.is_some())
    })
    .await;
    for kind in ["TaskDefinition", "Task"] {
        let events: Api<Event> = ns.api();
        let until = tokio::time::Instant::now() + DEADLINE;
        let note = loop {
            let found = events
                .list(&ListParams::default())
                .await
                .unwrap()
                .items
                .into_iter()
                .find(|e| {
                    e.reason.as_deref() == Some("InvalidObject")
                        && e.regarding.as_ref().and_then(|r| r.kind.as_deref()) == Some(kind)
                });
            if let Some(e) = found {
                break e.note.unwrap_or_default();
            }
            assert!(
                tokio::time::Instant::now() < until,
                "no InvalidObject event for the {kind}"
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        };
        assert!(
            note.contains(&format!(
                "cannot read this {kind}: status.conditions[0].lastTransitionTime"
            )),
            "{note}"
        );
    }
}

/// A client acting as a user who may do anything in `ns` but nothing outside it: it cannot list
/// nodes (cluster-scoped).
async fn namespace_only_client(client: &Client, ns: &TestNamespace) -> Client {
    let user = format!("robust-{}", ns.name);
    let roles: Api<Role> = ns.api();
    let role: Role = serde_json::from_value(json!({
        "metadata": {"name": "everything"},
        "rules": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]
    }))
    .unwrap();
    roles.create(&PostParams::default(), &role).await.unwrap();
    let bindings: Api<RoleBinding> = ns.api();
    let binding: RoleBinding = serde_json::from_value(json!({
        "metadata": {"name": "everything"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "everything"},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}]
    }))
    .unwrap();
    bindings
        .create(&PostParams::default(), &binding)
        .await
        .unwrap();
    let _ = client;
    let mut config = kube::Config::infer().await.unwrap();
    config.auth_info.impersonate = Some(user);
    let limited = Client::try_from(config).unwrap();
    let nodes: Api<k8s_openapi::api::core::v1::Node> = Api::all(limited.clone());
    let refused = nodes.list(&ListParams::default()).await.unwrap_err();
    assert!(
        matches!(&refused, kube::Error::Api(s) if s.code == 403),
        "{refused}"
    );
    limited
}

/// The names of the tasks that run and are meant to.
async fn running_tasks(ns: &TestNamespace) -> Vec<String> {
    let tasks: Api<Task> = ns.api();
    let mut names: Vec<String> = tasks
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|t| t.spec.desired_status == Default::default())
        .map(|t| t.name_any())
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn without_the_node_list_no_daemon_task_is_stopped_and_healthz_fails() {
    let client = client().await;
    install_crds(&client).await;
    let ns = TestNamespace::new(&client, "nonodes").await;
    task_definition(&ns).await;
    let config = || ecs_operator::context::Config {
        healthy_after_running: Duration::from_secs(1),
        watch_failure_limit: Duration::from_secs(3),
        ..Default::default()
    };

    // A DAEMON service at steady state under an operator that sees the nodes.
    let first = InProcess::start(client.clone(), &ns.name, config());
    service(
        &ns,
        "web",
        json!({"taskDefinition": "web", "schedulingStrategy": "DAEMON"}),
    )
    .await;
    let services: Api<Service> = ns.api();
    wait_for(&services, "web", |s: Option<&Service>| {
        s.and_then(|s| s.status.as_ref()).is_some_and(|st| {
            st.running_count > 0
                && st
                    .conditions
                    .iter()
                    .any(|c| c.type_ == "Ready" && c.status == "True")
        })
    })
    .await;
    assert_eq!(first.healthz().await, (200, "ok".to_string()));
    first.stop().await;
    let before = running_tasks(&ns).await;
    assert!(!before.is_empty());

    // The next operator cannot list nodes: its node cache never loads.
    let blind = InProcess::start(
        namespace_only_client(&client, &ns).await,
        &ns.name,
        config(),
    );
    // Its Service controller has finished reconciles of the service (each one reads the nodes).
    let until = tokio::time::Instant::now() + DEADLINE;
    loop {
        let (started, in_flight) = blind.reconciles("service");
        if started >= 2 && in_flight == 0 {
            break;
        }
        assert!(tokio::time::Instant::now() < until, "no service reconcile");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(running_tasks(&ns).await, before, "no task was stopped");

    // The node watch keeps failing: past the limit, /healthz says so.
    let until = tokio::time::Instant::now() + DEADLINE;
    let (code, body) = loop {
        let (code, body) = blind.healthz().await;
        if code != 200 {
            break (code, body);
        }
        assert!(
            tokio::time::Instant::now() < until,
            "/healthz stayed ok: {:?}",
            blind.admin.watches
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert_eq!(code, 503, "{body}");
    assert!(body.contains("/api/v1/nodes"), "{body}");
    assert!(body.contains("forbidden"), "{body}");
    assert_eq!(running_tasks(&ns).await, before, "no task was stopped");
}

#[tokio::test]
async fn creates_refused_by_a_quota_stop_the_pass_and_are_reported() {
    let client = client().await;
    install_crds(&client).await;
    let ns = TestNamespace::new(&client, "quota").await;
    let quotas: Api<ResourceQuota> = ns.api();
    let quota: ResourceQuota = serde_json::from_value(json!({
        "metadata": {"name": "tasks"},
        "spec": {"hard": {"count/tasks.ecs.operator.dev": "3"}}
    }))
    .unwrap();
    quotas.create(&PostParams::default(), &quota).await.unwrap();
    // The quota controller must have counted before admission enforces it.
    wait_for(&quotas, "tasks", |q: Option<&ResourceQuota>| {
        q.and_then(|q| q.status.as_ref())
            .and_then(|s| s.hard.as_ref())
            .is_some()
    })
    .await;
    task_definition(&ns).await;
    let _operator = support::Operator::start(&client, &ns.name);
    service(
        &ns,
        "web",
        json!({"taskDefinition": "web", "desiredCount": 10}),
    )
    .await;

    let note = warning(&ns, "web", "ReconcileError").await;
    assert!(note.contains("exceeded quota"), "{note}");
    let tasks: Api<Task> = ns.api();
    let made = tasks
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .len();
    assert_eq!(made, 3, "the quota's worth of tasks, no more");
}
