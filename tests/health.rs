//! Container health on the local control plane. kwok marks every container ready, so two stages of our
//! own (xtask/kwok/README.md) make health checks fail: the image `ecs-operator.test/unhealthy` (its
//! containers with a readiness probe never pass it) and the pod label
//! `pod-unhealthy-on-demand.stage.kwok.x-k8s.io=true` (a ready pod's probed containers turn unready).

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use ecs_operator::api::service::RolloutState;
use ecs_operator::api::task::{HealthStatus, LastStatus, StopCode};
use ecs_operator::api::{Service, Task};
use ecs_operator::context::Config;
use futures::StreamExt;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::{Value, json};
use support::setup::{Setup, SetupBuilder, steady};
use support::wait_for_within;

const DEADLINE: Duration = Duration::from_secs(180);
const UNHEALTHY_ON_DEMAND: &str = "pod-unhealthy-on-demand.stage.kwok.x-k8s.io";

/// The operator with its own defaults: a task without a health check is healthy 40 s after RUNNING,
/// as in ECS (these tests are about health checks).
fn setup(prefix: &str) -> SetupBuilder {
    Setup::start(prefix).config(|_| Config::default())
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

/// A task definition spec of `containers`.
fn td(containers: Value) -> Value {
    json!({"containerDefinitions": containers})
}

/// Waits until service `name` is steady.
async fn until_steady(s: &Setup, name: &str) -> Service {
    s.wait_service(name, steady, DEADLINE).await
}

/// The service's tasks that are RUNNING and meant to run.
async fn running_tasks(s: &Setup, service: &str) -> Vec<Task> {
    s.tasks
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

/// One endpoint as a slice showed it: address, ready, terminating.
type EndpointState = (String, Option<bool>, Option<bool>);

fn health(t: &Task) -> Option<HealthStatus> {
    t.status.as_ref()?.health_status
}

#[tokio::test]
async fn an_unhealthy_task_leaves_the_load_balancer_and_is_replaced_first() {
    let s = setup("health-replace").await;
    s.register("web", td(json!([web("nginx:1.27")])), 1).await;
    s.apply_service(
        "web",
        json!({"taskDefinition": "web", "desiredCount": 3,
        "deploymentConfiguration": {"minimumHealthyPercent": 100, "maximumPercent": 200},
        "loadBalancers": [{"containerName": "web", "containerPort": 80}]}),
    )
    .await;
    until_steady(&s, "web").await;
    let before = running_tasks(&s, "web").await;
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
    let svc = until_steady(&s, "web").await;
    let after = running_tasks(&s, "web").await;
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
        let (pods, endpoints) = (
            s.service_pod_ips("web").await,
            s.ready_endpoints("web-80").await,
        );
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
    s.register("web", td(json!([web("nginx:1.27")])), 1).await;
    s.apply_service(
        "web",
        json!({"taskDefinition": "web", "desiredCount": 3,
        "deploymentConfiguration": {"minimumHealthyPercent": 100, "maximumPercent": 200,
            "deploymentCircuitBreaker": {"enable": true, "rollback": true}}}),
    )
    .await;
    until_steady(&s, "web").await;
    // Revision 2 runs everywhere but never passes its health check.
    s.register("web", td(json!([web("ecs-operator.test/unhealthy")])), 2)
        .await;
    let svc = s
        .wait_service(
            "web",
            |svc: Option<&Service>| {
                svc.and_then(|s| s.status.as_ref()).is_some_and(|st| {
                    st.deployments.iter().any(|d| {
                        d.task_definition == "web:2"
                            && d.rollout_state == Some(RolloutState::Failed)
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
    let svc = until_steady(&s, "web").await;
    assert_eq!(
        svc.status.unwrap().task_definition.as_deref(),
        Some("web:1")
    );
    let running = running_tasks(&s, "web").await;
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
        td(json!([web("nginx:1.27"),
               {"name": "metrics", "image": "ecs-operator.test/unhealthy", "essential": false,
                "healthCheck": check()}])),
        1,
    )
    .await;
    s.apply_service(
        "web",
        json!({"taskDefinition": "web", "desiredCount": 2,
        "loadBalancers": [{"containerName": "web", "containerPort": 80}]}),
    )
    .await;
    until_steady(&s, "web").await;
    let first: Vec<String> = running_tasks(&s, "web")
        .await
        .iter()
        .map(|t| t.metadata.name.clone().unwrap())
        .collect();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let (pods, endpoints) = (
            s.service_pod_ips("web").await,
            s.ready_endpoints("web-80").await,
        );
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
        let tasks = running_tasks(&s, "web").await;
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
        let (pods, endpoints) = (
            s.service_pod_ips("web").await,
            s.ready_endpoints("web-80").await,
        );
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
