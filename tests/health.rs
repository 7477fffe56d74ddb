//! Container health on the local control plane. kwok marks every container ready, so two stages of our
//! own (xtask/kwok/README.md) make health checks fail: the image `ecs-operator.test/unhealthy` (its
//! containers with a readiness probe never pass it) and the pod label
//! `pod-unhealthy-on-demand.stage.kwok.x-k8s.io=true` (a ready pod's probed containers turn unready).

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use ecs_operator::api::service::RolloutState;
use ecs_operator::api::task::{HealthStatus, LastStatus, StopCode};
use ecs_operator::api::{Service, Task, TaskDefinition};
use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::{Value, json};
use support::{Operator, TestNamespace, client, install_crds, wait_for, wait_for_within};

const DEADLINE: Duration = Duration::from_secs(180);
const UNHEALTHY_ON_DEMAND: &str = "pod-unhealthy-on-demand.stage.kwok.x-k8s.io";

struct Setup {
    ns: TestNamespace,
    tds: Api<TaskDefinition>,
    services: Api<Service>,
    tasks: Api<Task>,
    pods: Api<Pod>,
    _operator: Operator,
}

async fn setup(prefix: &str) -> Setup {
    let client = client().await;
    install_crds(&client).await;
    let ns = TestNamespace::new(&client, prefix).await;
    let operator = Operator::start(&client, &ns.name);
    Setup {
        tds: ns.api(),
        services: ns.api(),
        tasks: ns.api(),
        pods: ns.api(),
        ns,
        _operator: operator,
    }
}

/// A health check that decides quickly: UNHEALTHY 7 s after a start without passing.
fn check() -> Value {
    json!({"command": ["CMD-SHELL", "curl -f http://localhost/ || exit 1"],
           "interval": 5, "timeout": 2, "retries": 1})
}

fn web(image: &str) -> Value {
    json!({"name": "web", "image": image, "portMappings": [{"containerPort": 80}],
           "healthCheck": check()})
}

impl Setup {
    async fn register(&self, name: &str, containers: Value, revision: i64) {
        let td: TaskDefinition = serde_json::from_value(json!({
            "apiVersion": "ecs.operator.dev/v1alpha1", "kind": "TaskDefinition",
            "metadata": {"name": name}, "spec": {"containerDefinitions": containers}
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
        wait_for(&self.tds, name, move |td: Option<&TaskDefinition>| {
            td.and_then(|t| t.status.as_ref()?.latest_revision) == Some(revision)
        })
        .await;
    }

    async fn apply_service(&self, name: &str, spec: Value) {
        let svc: Service = serde_json::from_value(json!({
            "apiVersion": "ecs.operator.dev/v1alpha1", "kind": "Service",
            "metadata": {"name": name}, "spec": spec
        }))
        .unwrap();
        self.services
            .patch(
                name,
                &PatchParams::apply("test").force(),
                &Patch::Apply(&svc),
            )
            .await
            .unwrap();
    }

    async fn steady(&self, name: &str) -> Service {
        wait_for_within(&self.services, name, steady, DEADLINE).await
    }

    /// The service's tasks that are RUNNING and meant to run.
    async fn running(&self, service: &str) -> Vec<Task> {
        self.tasks
            .list(&ListParams::default().labels(&format!("ecs.operator.dev/service={service}")))
            .await
            .unwrap()
            .items
            .into_iter()
            .filter(|t| {
                t.spec.desired_status == Default::default()
                    && t.status.as_ref().and_then(|s| s.last_status) == Some(LastStatus::Running)
            })
            .collect()
    }

    /// IPs of the ready endpoints of the load balancer Service `lb`.
    async fn ready_endpoints(&self, lb: &str) -> Vec<String> {
        let slices: Api<EndpointSlice> = self.ns.api();
        let mut ips: Vec<String> = slices
            .list(&ListParams::default().labels(&format!("kubernetes.io/service-name={lb}")))
            .await
            .unwrap()
            .items
            .into_iter()
            .flat_map(|s| s.endpoints.unwrap_or_default())
            .filter(|e| e.conditions.as_ref().and_then(|c| c.ready) == Some(true))
            .flat_map(|e| e.addresses)
            .collect();
        ips.sort();
        ips
    }

    /// IPs of the service's pods that are not being deleted.
    async fn pod_ips(&self, service: &str) -> Vec<String> {
        let mut ips: Vec<String> = self
            .pods
            .list(&ListParams::default().labels(&format!("ecs.operator.dev/service={service}")))
            .await
            .unwrap()
            .items
            .into_iter()
            .filter(|p| p.metadata.deletion_timestamp.is_none())
            .filter_map(|p| p.status?.pod_ip)
            .collect();
        ips.sort();
        ips
    }
}

fn steady(s: Option<&Service>) -> bool {
    let Some(s) = s else { return false };
    let Some(st) = &s.status else { return false };
    st.observed_generation == s.metadata.generation
        && st
            .conditions
            .iter()
            .any(|c| c.type_ == "Ready" && c.status == "True")
        && st.running_count == s.spec.desired_count.unwrap_or(0)
}

/// One endpoint as a slice showed it: address, ready, terminating.
type EndpointState = (String, Option<bool>, Option<bool>);

fn health(t: &Task) -> Option<HealthStatus> {
    t.status.as_ref()?.health_status
}

#[tokio::test]
async fn an_unhealthy_task_leaves_the_load_balancer_and_is_replaced_first() {
    let s = setup("health-replace").await;
    s.register("web", json!([web("nginx:1.27")]), 1).await;
    s.apply_service(
        "web",
        json!({"taskDefinition": "web", "desiredCount": 3,
        "deploymentConfiguration": {"minimumHealthyPercent": 100, "maximumPercent": 200},
        "loadBalancers": [{"containerName": "web", "containerPort": 80}]}),
    )
    .await;
    s.steady("web").await;
    let before = s.running("web").await;
    assert_eq!(before.len(), 3);
    assert!(
        before
            .iter()
            .all(|t| health(t) == Some(HealthStatus::Healthy))
    );
    let victim = before[0].metadata.name.clone().unwrap();
    let victim_ip = s
        .pods
        .get(&victim)
        .await
        .unwrap()
        .status
        .unwrap()
        .pod_ip
        .unwrap();

    // Every state of the load balancer's endpoints from now on.
    let slices: Api<EndpointSlice> = s.ns.api();
    let seen: Arc<Mutex<Vec<EndpointState>>> = Arc::default();
    let recorder = {
        let seen = seen.clone();
        tokio::spawn(async move {
            let mut stream = watcher(
                slices,
                watcher::Config::default().labels("kubernetes.io/service-name=web-80"),
            )
            .default_backoff()
            .applied_objects()
            .boxed();
            // A watch error (an API server busy under load) must not end the recording.
            while let Some(event) = stream.next().await {
                let Ok(slice) = event else { continue };
                let mut seen = seen.lock().unwrap();
                for e in slice.endpoints.unwrap_or_default() {
                    let c = e.conditions.unwrap_or_default();
                    for ip in e.addresses {
                        seen.push((ip, c.ready, c.terminating));
                    }
                }
            }
        })
    };

    // The recorder has seen the endpoints as they are before anything changes.
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while !seen
        .lock()
        .unwrap()
        .iter()
        .any(|(ip, ready, _)| *ip == victim_ip && *ready == Some(true))
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the recorder never saw {victim_ip} ready"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // The victim's health check starts failing.
    s.pods
        .patch(
            &victim,
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {UNHEALTHY_ON_DEMAND: "true"}}})),
        )
        .await
        .unwrap();

    // It is stopped for its health, and replaced.
    let stopped = wait_for_within(
        &s.tasks,
        &victim,
        |t: Option<&Task>| {
            t.and_then(|t| t.status.as_ref())
                .is_some_and(|s| s.last_status == Some(LastStatus::Stopped))
        },
        DEADLINE,
    )
    .await;
    let st = stopped.status.unwrap();
    assert_eq!(st.health_status, Some(HealthStatus::Unhealthy));
    assert_eq!(st.stop_code, Some(StopCode::ServiceSchedulerInitiated));
    assert_eq!(
        st.stopped_reason.as_deref(),
        Some("Task failed container health checks")
    );
    let svc = s.steady("web").await;
    let after = s.running("web").await;
    assert_eq!(after.len(), 3);
    assert!(
        after
            .iter()
            .all(|t| health(t) == Some(HealthStatus::Healthy))
    );
    // maximumPercent 200 leaves room: the replacement ran before the unhealthy task was stopped.
    let stopping_at = st.stopping_at.expect("a stop time").0;
    let replacement = after
        .iter()
        .find(|t| !before.iter().any(|b| b.metadata.name == t.metadata.name))
        .expect("a replacement");
    let started = replacement
        .status
        .as_ref()
        .and_then(|s| s.started_at.clone())
        .unwrap()
        .0;
    assert!(
        started <= stopping_at,
        "the replacement started at {started}, after the unhealthy task was stopped at {stopping_at}"
    );
    assert!(
        svc.status.unwrap().events.iter().any(|e| e.message
            == format!("(service web) (task {victim}) failed container health checks.")),
        "the service says why"
    );

    // The load balancer took the victim out while it was unhealthy, before it was being deleted.
    recorder.abort();
    let seen = seen.lock().unwrap().clone();
    assert!(
        seen.iter().any(|(ip, ready, terminating)| *ip == victim_ip
            && *ready == Some(false)
            && *terminating != Some(true)),
        "{victim_ip} was never an unready endpoint: {seen:?}"
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let (pods, endpoints) = (s.pod_ips("web").await, s.ready_endpoints("web-80").await);
        if pods.len() == 3 && pods == endpoints {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "endpoints {endpoints:?} never matched the task pods {pods:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test]
async fn an_unhealthy_deployment_trips_the_circuit_breaker_and_rolls_back() {
    let s = setup("health-breaker").await;
    s.register("web", json!([web("nginx:1.27")]), 1).await;
    s.apply_service(
        "web",
        json!({"taskDefinition": "web", "desiredCount": 3,
        "deploymentConfiguration": {"minimumHealthyPercent": 100, "maximumPercent": 200,
            "deploymentCircuitBreaker": {"enable": true, "rollback": true}}}),
    )
    .await;
    s.steady("web").await;
    // Revision 2 runs everywhere but never passes its health check.
    s.register("web", json!([web("ecs-operator.test/unhealthy")]), 2)
        .await;
    let svc = wait_for_within(
        &s.services,
        "web",
        |svc: Option<&Service>| {
            svc.and_then(|s| s.status.as_ref()).is_some_and(|st| {
                st.deployments.iter().any(|d| {
                    d.task_definition == "web:2" && d.rollout_state == Some(RolloutState::Failed)
                })
            })
        },
        DEADLINE,
    )
    .await;
    let st = svc.status.unwrap();
    let failed = st
        .deployments
        .iter()
        .find(|d| d.task_definition == "web:2")
        .unwrap();
    assert_eq!(failed.failed_tasks, 3, "threshold for desiredCount 3 is 3");
    assert_eq!(
        st.deployments[0].task_definition, "web:1",
        "rolled back to the last COMPLETED revision"
    );
    // The unhealthy tasks ran: stage 2 of the breaker (health checks) tripped it.
    let unhealthy: Vec<Task> = s
        .tasks
        .list(&ListParams::default().labels("ecs.operator.dev/service=web"))
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|t| t.status.as_ref().and_then(|s| s.task_definition.as_deref()) == Some("web:2"))
        .collect();
    assert!(
        unhealthy
            .iter()
            .filter(|t| health(t) == Some(HealthStatus::Unhealthy))
            .count()
            >= 3,
        "{:#?}",
        unhealthy.iter().map(|t| &t.status).collect::<Vec<_>>()
    );
    let svc = s.steady("web").await;
    assert_eq!(
        svc.status.unwrap().task_definition.as_deref(),
        Some("web:1")
    );
    let running = s.running("web").await;
    assert_eq!(running.len(), 3);
    assert!(running.iter().all(|t| {
        t.status.as_ref().and_then(|s| s.task_definition.as_deref()) == Some("web:1")
    }));
}

#[tokio::test]
async fn a_non_essential_container_failing_its_check_leaves_the_task_healthy_and_served() {
    let s = setup("health-essential").await;
    s.register(
        "web",
        json!([web("nginx:1.27"),
               {"name": "metrics", "image": "ecs-operator.test/unhealthy", "essential": false,
                "healthCheck": check()}]),
        1,
    )
    .await;
    s.apply_service(
        "web",
        json!({"taskDefinition": "web", "desiredCount": 2,
        "loadBalancers": [{"containerName": "web", "containerPort": 80}]}),
    )
    .await;
    s.steady("web").await;
    let first: Vec<String> = s
        .running("web")
        .await
        .iter()
        .map(|t| t.metadata.name.clone().unwrap())
        .collect();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let (pods, endpoints) = (s.pod_ips("web").await, s.ready_endpoints("web-80").await);
        if pods.len() == 2 && pods == endpoints {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "endpoints {endpoints:?} never matched the task pods {pods:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // Watched past the check's deadline (7 s after start): the same tasks stay HEALTHY and behind the
    // load balancer.
    let until = tokio::time::Instant::now() + Duration::from_secs(12);
    while tokio::time::Instant::now() < until {
        let tasks = s.running("web").await;
        let names: Vec<String> = tasks
            .iter()
            .map(|t| t.metadata.name.clone().unwrap())
            .collect();
        assert_eq!(names, first, "no task was replaced");
        for t in &tasks {
            assert_eq!(health(t), Some(HealthStatus::Healthy));
            let metrics = t
                .status
                .as_ref()
                .unwrap()
                .containers
                .iter()
                .find(|c| c.name == "metrics")
                .unwrap();
            assert_eq!(metrics.health_status, Some(HealthStatus::Unknown));
        }
        let (pods, endpoints) = (s.pod_ips("web").await, s.ready_endpoints("web-80").await);
        assert_eq!(pods.len(), 2);
        assert_eq!(endpoints, pods, "every task is served");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // The definition says the check is not run as a readiness probe.
    let td = s.tds.get("web").await.unwrap();
    let st = serde_json::to_value(td.status.unwrap()).unwrap();
    assert!(
        st.to_string()
            .contains("containerDefinitions[1].healthCheck"),
        "{st}"
    );
}
