//! Services on the local control plane (3 zones × 2 kwok nodes): desired count and self-healing, zone
//! balance, rolling deployments within the ECS bounds, the circuit breaker, and the load balancer.

mod support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use ecs_operator::api::service::{Deployment, RolloutState, ServiceStatus};
use ecs_operator::api::task::LastStatus;
use ecs_operator::api::{Service, Task, TaskDefinition};
use ecs_operator::context::Config;
use futures::StreamExt;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::json;
use support::setup::{Setup, steady, td_spec};
use support::{make_container_exit, wait_for};

const ROLLOUT_DEADLINE: Duration = Duration::from_secs(120);

/// Waits until service `name` is steady (see [`steady`]).
async fn until_steady(s: &Setup, name: &str) -> Service {
    s.wait_service(name, steady, ROLLOUT_DEADLINE).await
}

/// Waits until the service has a deployment of `task_definition` in rollout state `state`: the
/// service's status then, and that deployment.
async fn rollout(
    s: &Setup,
    name: &str,
    task_definition: &str,
    state: RolloutState,
    within: Duration,
) -> (ServiceStatus, Deployment) {
    let of =
        |d: &Deployment| d.task_definition == task_definition && d.rollout_state == Some(state);
    let svc = s
        .wait_service(
            name,
            |svc: Option<&Service>| {
                svc.and_then(|s| s.status.as_ref())
                    .is_some_and(|st| st.deployments.iter().any(of))
            },
            within,
        )
        .await;
    let status = svc.status.unwrap();
    let deployment = status.deployments.iter().find(|d| of(d)).unwrap().clone();
    (status, deployment)
}

/// RUNNING tasks of the service, with their zone and task definition.
async fn running_tasks(s: &Setup, name: &str) -> Vec<(String, String, String)> {
    let tasks = s
        .tasks
        .list(&ListParams::default().labels(&format!("ecs.operator.dev/service={name}")))
        .await
        .unwrap();
    tasks
        .items
        .into_iter()
        .filter_map(|t| {
            let s = t.status?;
            (s.last_status == Some(LastStatus::Running)
                && t.spec.desired_status == Default::default())
            .then(|| {
                (
                    t.metadata.name.unwrap(),
                    s.availability_zone.unwrap_or_default(),
                    s.task_definition.unwrap_or_default(),
                )
            })
        })
        .collect()
}

/// Steady, and running `task_definition` (`name:revision`).
fn steady_on(task_definition: &str) -> impl Fn(Option<&Service>) -> bool + '_ {
    move |svc| {
        steady(svc)
            && svc.and_then(|s| s.status.as_ref()?.task_definition.as_deref())
                == Some(task_definition)
    }
}

/// Steady, with `running` tasks RUNNING.
fn steady_at(running: i32) -> impl Fn(Option<&Service>) -> bool {
    move |svc| {
        steady(svc) && svc.is_some_and(|s| s.status.as_ref().unwrap().running_count == running)
    }
}

fn per_zone(running: &[(String, String, String)]) -> BTreeMap<String, usize> {
    let mut zones = BTreeMap::new();
    for (_, zone, _) in running {
        *zones.entry(zone.clone()).or_default() += 1;
    }
    zones
}

#[tokio::test]
async fn desired_count_is_spread_evenly_over_the_zones() {
    let s = Setup::start("svc-zones").await;
    s.register("web", td_spec("nginx:1.27"), 1).await;
    s.apply_service("web", json!({"taskDefinition": "web", "desiredCount": 6}))
        .await;
    let svc = until_steady(&s, "web").await;
    let st = svc.status.unwrap();
    assert_eq!((st.running_count, st.pending_count), (6, 0));
    assert_eq!(st.task_definition.as_deref(), Some("web:1"));
    assert_eq!(st.deployments.len(), 1);
    assert_eq!(
        st.deployments[0].rollout_state,
        Some(RolloutState::Completed)
    );
    assert_eq!(st.selector.as_deref(), Some("ecs.operator.dev/service=web"));
    let zones = per_zone(&running_tasks(&s, "web").await);
    assert_eq!(
        zones.values().copied().collect::<Vec<_>>(),
        [2, 2, 2],
        "{zones:?}"
    );
    assert!(
        st.events
            .iter()
            .any(|e| e.message == "(service web) has reached a steady state."),
        "{:?}",
        st.events
    );
}

#[tokio::test]
async fn failed_tasks_are_replaced() {
    let s = Setup::start("svc-heal").await;
    s.register("web", td_spec("nginx:1.27"), 1).await;
    s.apply_service("web", json!({"taskDefinition": "web", "desiredCount": 3}))
        .await;
    until_steady(&s, "web").await;
    let before = running_tasks(&s, "web").await;
    // One pod deleted from outside, one essential container exiting.
    s.pods
        .delete(&before[0].0, &DeleteParams::default())
        .await
        .unwrap();
    make_container_exit(&s.pods, &before[1].0, Some("web"), 137).await;
    for (gone, _, _) in &before[..2] {
        wait_for(&s.tasks, gone, |t: Option<&Task>| {
            t.is_none_or(|t| {
                t.status.as_ref().and_then(|s| s.last_status) == Some(LastStatus::Stopped)
            })
        })
        .await;
    }
    // Steady again, with replacements: started tasks that were not there before.
    let original: Vec<String> = before
        .iter()
        .map(|(n, _, _)| format!("(task {n})"))
        .collect();
    let replaced = move |svc: Option<&Service>| {
        steady(svc)
            && svc.and_then(|s| s.status.as_ref()).is_some_and(|st| {
                st.events.iter().any(|e| {
                    e.message.contains("has started")
                        && !original.iter().any(|o| e.message.contains(o.as_str()))
                })
            })
    };
    s.wait_service("web", replaced, ROLLOUT_DEADLINE).await;
    let svc = s.wait_service("web", steady, ROLLOUT_DEADLINE).await;
    assert_eq!(svc.status.unwrap().running_count, 3);
    let after = running_tasks(&s, "web").await;
    assert_eq!(after.len(), 3);
    assert!(
        !after
            .iter()
            .any(|(n, _, _)| n == &before[0].0 || n == &before[1].0),
        "replacements are new tasks"
    );
}

/// The service's STOPPED tasks, by name.
async fn stopped_tasks(tasks: &Api<Task>, service: &str) -> Vec<String> {
    let mut names: Vec<String> = tasks
        .list(&ListParams::default().labels(&format!("ecs.operator.dev/service={service}")))
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|t| t.status.as_ref().and_then(|s| s.last_status) == Some(LastStatus::Stopped))
        .filter_map(|t| t.metadata.name)
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn stopped_tasks_are_kept_for_the_retention_within_a_bound() {
    const RETENTION: Duration = Duration::from_secs(45);
    let s = Setup::start("svc-retention")
        .config(|c| Config {
            stopped_task_retention: RETENTION,
            stopped_service_tasks_kept: 2,
            ..c
        })
        .await;
    s.register("web", td_spec("nginx:1.27"), 1).await;
    s.apply_service("web", json!({"taskDefinition": "web", "desiredCount": 1}))
        .await;
    until_steady(&s, "web").await;
    // Four tasks stop one after the other (their pods deleted from outside), each replaced.
    let mut killed = Vec::new();
    let mut stops = Vec::new();
    for _ in 0..4 {
        let running = wait_running_one(&s, &killed).await;
        s.pods
            .delete(&running, &DeleteParams::default())
            .await
            .unwrap();
        wait_for(&s.tasks, &running, |t: Option<&Task>| {
            t.is_none_or(|t| {
                t.status.as_ref().and_then(|s| s.last_status) == Some(LastStatus::Stopped)
            })
        })
        .await;
        stops.push(std::time::Instant::now());
        killed.push(running);
    }
    let last_stop = stops[3];
    // Beyond max(desiredCount 1, 2) stopped tasks, the oldest went first: the two newest stay.
    let mut newest = killed[2..].to_vec();
    newest.sort();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let stopped = stopped_tasks(&s.tasks, "web").await;
        if stopped == newest {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "stopped tasks {stopped:?}, expected {newest:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // They stay for the retention, then go.
    let deadline = last_stop + RETENTION + Duration::from_secs(60);
    loop {
        let stopped = stopped_tasks(&s.tasks, "web").await;
        if stopped.is_empty() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "stopped tasks {stopped:?} outlived their retention"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(
        last_stop.elapsed() + Duration::from_secs(2) >= RETENTION,
        "the newest stopped task was deleted after {:?}, before its retention",
        last_stop.elapsed()
    );
}

/// The service's one RUNNING task, once it is not one of `gone`.
async fn wait_running_one(s: &Setup, gone: &[String]) -> String {
    let deadline = std::time::Instant::now() + ROLLOUT_DEADLINE;
    loop {
        let running = running_tasks(s, "web").await;
        if let [(name, _, _)] = running.as_slice()
            && !gone.contains(name)
        {
            return name.clone();
        }
        assert!(std::time::Instant::now() < deadline, "running: {running:?}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test]
async fn scaling_in_keeps_the_zones_balanced() {
    let s = Setup::start("svc-scale").await;
    s.register("web", td_spec("nginx:1.27"), 1).await;
    s.apply_service("web", json!({"taskDefinition": "web", "desiredCount": 6}))
        .await;
    until_steady(&s, "web").await;
    s.scale("web", 3).await;
    s.wait_service("web", steady_at(3), ROLLOUT_DEADLINE).await;
    let zones = per_zone(&running_tasks(&s, "web").await);
    assert_eq!(
        zones.values().copied().collect::<Vec<_>>(),
        [1, 1, 1],
        "{zones:?}"
    );
}

/// Watches the service's tasks during a rollout and records the most alive (RUNNING or PENDING) and
/// the fewest RUNNING-and-not-stopping tasks seen at any moment.
fn watch_bounds(
    tasks: Api<Task>,
    service: &str,
) -> (
    Arc<AtomicUsize>,
    Arc<AtomicUsize>,
    tokio::task::JoinHandle<()>,
) {
    let max_alive = Arc::new(AtomicUsize::new(0));
    let min_running = Arc::new(AtomicUsize::new(usize::MAX));
    let (a, m) = (max_alive.clone(), min_running.clone());
    let cfg = watcher::Config::default().labels(&format!("ecs.operator.dev/service={service}"));
    let handle = tokio::spawn(async move {
        let (store, writer) = kube::runtime::reflector::store::<Task>();
        let mut stream = kube::runtime::reflector(writer, watcher(tasks, cfg))
            .applied_objects()
            .boxed();
        while stream.next().await.is_some() {
            let state = store.state();
            let status = |t: &Task| t.status.as_ref().and_then(|s| s.last_status);
            let alive = state
                .iter()
                .filter(|t| status(t) != Some(LastStatus::Stopped))
                .count();
            let running = state
                .iter()
                .filter(|t| {
                    status(t) == Some(LastStatus::Running)
                        && t.spec.desired_status == Default::default()
                })
                .count();
            a.fetch_max(alive, Ordering::SeqCst);
            if !state.is_empty() {
                m.fetch_min(running, Ordering::SeqCst);
            }
        }
    });
    (max_alive, min_running, handle)
}

async fn rolling_deployment(prefix: &str, min: i32, max: i32) {
    let s = Setup::start(prefix).await;
    s.register("web", td_spec("nginx:1.27"), 1).await;
    s.apply_service(
        "web",
        json!({"taskDefinition": "web", "desiredCount": 4,
        "deploymentConfiguration": {"minimumHealthyPercent": min, "maximumPercent": max}}),
    )
    .await;
    until_steady(&s, "web").await;
    let (max_alive, min_running, watch) = watch_bounds(s.tasks.clone(), "web");
    s.register("web", td_spec("nginx:1.28"), 2).await;
    let svc = s
        .wait_service("web", steady_on("web:2"), ROLLOUT_DEADLINE)
        .await;
    watch.abort();
    let st = svc.status.unwrap();
    assert_eq!(
        st.deployments[0].rollout_state,
        Some(RolloutState::Completed)
    );
    assert_eq!(
        st.deployments[0].rollout_state_reason.as_deref(),
        Some(format!("ECS deployment {} completed.", st.deployments[0].id).as_str())
    );
    assert!(
        running_tasks(&s, "web")
            .await
            .iter()
            .all(|(_, _, td)| td == "web:2")
    );
    let upper = (4 * max / 100) as usize;
    let lower = (4 * min as usize).div_ceil(100);
    let (seen_max, seen_min) = (
        max_alive.load(Ordering::SeqCst),
        min_running.load(Ordering::SeqCst),
    );
    eprintln!(
        "{min}/{max}: at most {seen_max} alive (bound {upper}), at least {seen_min} running (bound {lower})"
    );
    assert!(
        seen_max <= upper,
        "{seen_max} tasks alive, maximumPercent allows {upper}"
    );
    assert!(
        seen_min >= lower,
        "{seen_min} tasks running, minimumHealthyPercent needs {lower}"
    );
}

#[tokio::test]
async fn a_rolling_deployment_100_200_stays_within_bounds() {
    rolling_deployment("svc-roll-100-200", 100, 200).await;
}

#[tokio::test]
async fn a_rolling_deployment_50_100_stays_within_bounds() {
    rolling_deployment("svc-roll-50-100", 50, 100).await;
}

#[tokio::test]
async fn a_broken_revision_trips_the_circuit_breaker_and_rolls_back() {
    // Crashing tasks must not count as healthy before they crash (kwok crashes them within a second or two).
    let s = Setup::start("svc-breaker")
        .healthy_after_running(Duration::from_secs(10))
        .await;
    s.register("web", td_spec("nginx:1.27"), 1).await;
    s.apply_service(
        "web",
        json!({"taskDefinition": "web", "desiredCount": 3,
        "deploymentConfiguration": {"minimumHealthyPercent": 100, "maximumPercent": 200,
            "deploymentCircuitBreaker": {"enable": true, "rollback": true}}}),
    )
    .await;
    until_steady(&s, "web").await;
    // Revision 2 crashes wherever it runs.
    s.register("web", td_spec("ecs-operator.test/crash"), 2)
        .await;
    let (st, failed) = rollout(
        &s,
        "web",
        "web:2",
        RolloutState::Failed,
        Duration::from_secs(180),
    )
    .await;
    assert_eq!(failed.failed_tasks, 3, "threshold for desiredCount 3 is 3");
    assert_eq!(
        st.deployments[0].task_definition, "web:1",
        "rolled back to the last COMPLETED revision"
    );
    // The old revision keeps serving throughout, and the rollback converges.
    let svc = until_steady(&s, "web").await;
    assert_eq!(
        svc.status.unwrap().task_definition.as_deref(),
        Some("web:1")
    );
    let running = running_tasks(&s, "web").await;
    assert_eq!(running.len(), 3);
    assert!(running.iter().all(|(_, _, td)| td == "web:1"));
    // The rollback stays put: the breaker's FAILED deployment never resumes by itself.
    let st = s.services.get("web").await.unwrap().status.unwrap();
    assert_eq!(
        st.deployments[0].task_definition, "web:1",
        "{:#?}",
        st.deployments
    );
    assert!(
        st.deployments
            .iter()
            .any(|d| d.task_definition == "web:2" && d.rollout_state == Some(RolloutState::Failed)),
        "{:#?}",
        st.deployments
    );
}

#[tokio::test]
async fn a_circuit_breaker_count_threshold_of_one_fails_the_deployment_at_its_first_failed_task() {
    let s = Setup::start("svc-breaker-count")
        .healthy_after_running(Duration::from_secs(10))
        .await;
    s.register("web", td_spec("nginx:1.27"), 1).await;
    // 100/134 with 3 tasks: one new task at a time, so failures come one by one (the default
    // threshold would wait for 3).
    s.apply_service(
        "web",
        json!({"taskDefinition": "web", "desiredCount": 3,
        "deploymentConfiguration": {"minimumHealthyPercent": 100, "maximumPercent": 134,
            "deploymentCircuitBreaker": {"enable": true, "rollback": false,
                "thresholdConfiguration": {"type": "COUNT", "value": 1}}}}),
    )
    .await;
    until_steady(&s, "web").await;
    s.register("web", td_spec("ecs-operator.test/crash"), 2)
        .await;
    let (st, failed) = rollout(
        &s,
        "web",
        "web:2",
        RolloutState::Failed,
        Duration::from_secs(120),
    )
    .await;
    assert_eq!(failed.failed_tasks, 1, "{:#?}", st.deployments);
    // The failed deployment launched nothing after its first task; the old tasks keep serving.
    let launched = s
        .tasks
        .list(&ListParams::default().labels("ecs.operator.dev/service=web"))
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|t| t.spec.started_by.as_deref() == Some(failed.id.as_str()))
        .count();
    assert_eq!(launched, 1);
    let running = running_tasks(&s, "web").await;
    assert_eq!(running.len(), 3);
    assert!(running.iter().all(|(_, _, td)| td == "web:1"));
}

#[tokio::test]
async fn during_a_deployment_a_stopped_old_task_is_replaced_with_the_old_revision() {
    let s = Setup::start("svc-old-replaced").await;
    s.register("web", td_spec("nginx:1.27"), 1).await;
    s.apply_service("web", json!({"taskDefinition": "web", "desiredCount": 2}))
        .await;
    until_steady(&s, "web").await;
    // Revision 2 cannot be placed anywhere: its deployment stays in progress, its tasks PENDING.
    let mut unplaceable = td_spec("nginx:1.28");
    unplaceable["placementConstraints"] = json!([{"type": "memberOf",
        "expression": "attribute:ecs.availability-zone == nowhere"}]);
    s.register("web", unplaceable, 2).await;
    s.wait_service(
        "web",
        |svc: Option<&Service>| {
            svc.and_then(|s| s.status.as_ref()).is_some_and(|st| {
                st.deployments
                    .iter()
                    .any(|d| d.task_definition == "web:2" && d.pending_count == 2)
            })
        },
        Duration::from_secs(60),
    )
    .await;
    let old = running_tasks(&s, "web").await;
    assert_eq!(old.len(), 2);
    assert!(old.iter().all(|(_, _, td)| td == "web:1"), "{old:?}");
    s.pods
        .delete(&old[0].0, &DeleteParams::default())
        .await
        .unwrap();
    // Its replacement runs web:1, started by the old deployment; web:2's tasks are still waiting.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let replacement = loop {
        let running = running_tasks(&s, "web").await;
        if let Some((name, _, td)) = running
            .iter()
            .find(|(n, _, _)| n != &old[0].0 && n != &old[1].0)
        {
            break (name.clone(), td.clone());
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no replacement RUNNING: {running:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert_eq!(replacement.1, "web:1");
    let task = s.tasks.get(&replacement.0).await.unwrap();
    let st = s.services.get("web").await.unwrap().status.unwrap();
    let old_deployment = st
        .deployments
        .iter()
        .find(|d| d.task_definition == "web:1")
        .unwrap();
    assert_eq!(
        task.spec.started_by.as_deref(),
        Some(old_deployment.id.as_str())
    );
    assert_eq!(old_deployment.desired_count, 2, "{:#?}", st.deployments);
    assert_eq!(
        st.deployments[0].rollout_state,
        Some(RolloutState::InProgress),
        "{:#?}",
        st.deployments
    );
}

#[tokio::test]
async fn the_load_balancer_sends_traffic_to_the_ready_tasks_only() {
    let s = Setup::start("svc-lb").await;
    s.register("web", td_spec("nginx:1.27"), 1).await;
    s.apply_service(
        "web",
        json!({"taskDefinition": "web", "desiredCount": 3,
        "loadBalancers": [{"containerName": "web", "containerPort": 80}]}),
    )
    .await;
    until_steady(&s, "web").await;
    let kube_services: Api<k8s_openapi::api::core::v1::Service> = s.ns.api();
    let lb = kube_services
        .get("web-80")
        .await
        .expect("a load balancer Service");
    let spec = lb.spec.unwrap();
    // Nothing is exposed outside the cluster unless the service asks for it.
    assert_eq!(spec.type_.as_deref(), Some("ClusterIP"));
    assert_eq!(spec.selector.unwrap()["ecs.operator.dev/service"], "web");
    let svc = s.services.get("web").await.unwrap().status.unwrap();
    assert_eq!(svc.registered_targets, Some(3));
    assert!(
        svc.events
            .iter()
            .any(|e| e.message.starts_with("(service web) registered")
                && e.message.ends_with("targets in (target-group web-80)")),
        "{:#?}",
        svc.events
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
async fn the_operator_killed_mid_rollout_converges_within_bounds_after_restart() {
    // A crash needs a real process: none runs in this one.
    let s = Setup::start("svc-restart").without_operator().await;
    let mut operator = support::process::OperatorProcess::start(&s.ns.name, &[]);
    s.register("web", td_spec("nginx:1.27"), 1).await;
    s.apply_service(
        "web",
        json!({"taskDefinition": "web", "desiredCount": 4,
        "deploymentConfiguration": {"minimumHealthyPercent": 50, "maximumPercent": 150}}),
    )
    .await;
    until_steady(&s, "web").await;
    let (max_alive, _, watch) = watch_bounds(s.tasks.clone(), "web");
    let invariants = support::invariants::Invariants::watch(&s.client, &s.ns.name);
    s.register("web", td_spec("nginx:1.28"), 2).await;
    // Kill the operator as soon as the rollout has started new tasks.
    wait_for(&s.services, "web", |svc: Option<&Service>| {
        svc.and_then(|s| s.status.as_ref())
            .is_some_and(|st| st.deployments.len() >= 2)
    })
    .await;
    operator.sigkill();
    let _operator = support::process::OperatorProcess::start(&s.ns.name, &[]);
    s.wait_service("web", steady_on("web:2"), ROLLOUT_DEADLINE)
        .await;
    watch.abort();
    invariants.finish().assert_ok();
    assert!(
        max_alive.load(Ordering::SeqCst) <= 6,
        "more than floor(4 × 150%) tasks alive"
    );
    let ids: Vec<String> = s
        .services
        .get("web")
        .await
        .unwrap()
        .status
        .unwrap()
        .deployments
        .iter()
        .map(|d| d.id.clone())
        .collect();
    assert_eq!(
        ids.iter().collect::<std::collections::BTreeSet<_>>().len(),
        ids.len(),
        "deployment ids unique: {ids:?}"
    );
}

#[tokio::test]
async fn kubectl_scale_drives_the_service() {
    let s = Setup::start("svc-kubectl-scale").await;
    s.register("web", td_spec("nginx:1.27"), 1).await;
    s.apply_service("web", json!({"taskDefinition": "web", "desiredCount": 1}))
        .await;
    until_steady(&s, "web").await;
    let out = std::process::Command::new("kubectl")
        .args(["scale", "ecssvc/web", "--replicas=4", "-n", &s.ns.name])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    s.wait_service("web", steady_at(4), ROLLOUT_DEADLINE).await;
    let scale = s.services.get_scale("web").await.unwrap();
    assert_eq!(scale.status.unwrap().replicas, 4);
}

#[tokio::test]
async fn a_deregistered_revision_keeps_its_service_running_scaling_and_healing() {
    let s = Setup::start("svc-inactive").await;
    s.register("web", td_spec("nginx:1.27"), 1).await;
    s.register("web", td_spec("nginx:1.28"), 2).await;
    s.apply_service("web", json!({"taskDefinition": "web", "desiredCount": 2}))
        .await;
    until_steady(&s, "web").await;

    // Deregister the revision the service runs (the newest): no deployment of web:1 follows.
    let deregister =
        json!({"metadata": {"annotations": {"ecs.operator.dev/inactive-revisions": "2"}}});
    s.tds
        .patch("web", &PatchParams::default(), &Patch::Merge(&deregister))
        .await
        .unwrap();
    wait_for(&s.tds, "web", |td: Option<&TaskDefinition>| {
        td.and_then(|t| t.status.as_ref()?.latest_active_revision) == Some(1)
    })
    .await;
    // Scale out and lose a task: both need new tasks of the INACTIVE web:2.
    s.services
        .patch(
            "web",
            &PatchParams::apply("test").force(),
            &Patch::Apply(
                json!({"apiVersion": "ecs.operator.dev/v1alpha1", "kind": "Service",
                "metadata": {"name": "web"}, "spec": {"taskDefinition": "web", "desiredCount": 3}}),
            ),
        )
        .await
        .unwrap();
    let victim = running_tasks(&s, "web").await[0].0.clone();
    s.pods
        .delete(&victim, &DeleteParams::default())
        .await
        .unwrap();
    let svc = s.wait_service("web", steady_at(3), ROLLOUT_DEADLINE).await;
    let st = svc.status.unwrap();
    let deployments: Vec<(&str, &str)> = st
        .deployments
        .iter()
        .map(|d| (d.id.as_str(), d.task_definition.as_str()))
        .collect();
    assert_eq!(
        deployments,
        vec![("ecs-svc/1", "web:2")],
        "no new deployment"
    );
    let running = running_tasks(&s, "web").await;
    assert_eq!(running.len(), 3);
    assert!(
        running.iter().all(|(_, _, td)| td == "web:2"),
        "{running:?}"
    );
    assert!(running.iter().all(|(name, _, _)| *name != victim));
}

/// Merge-patches the task's scale-in protection annotation (None removes it).
async fn protect(tasks: &Api<Task>, name: &str, until: Option<String>) {
    tasks
        .patch(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"annotations": {
                "ecs.operator.dev/scale-in-protection": until
            }}})),
        )
        .await
        .unwrap();
}

fn protection_enabled(t: Option<&Task>) -> Option<bool> {
    Some(t?.status.as_ref()?.protection.as_ref()?.protection_enabled)
}

#[tokio::test]
async fn a_protected_task_survives_scale_in_until_its_protection_is_removed() {
    let s = Setup::start("svc-protect").await;
    s.register("web", td_spec("nginx:1.27"), 1).await;
    s.apply_service("web", json!({"taskDefinition": "web", "desiredCount": 3}))
        .await;
    until_steady(&s, "web").await;
    // The newest task is the one scale-in would take first: protect it.
    let mut running = running_tasks(&s, "web").await;
    running.sort();
    let kept = running.last().unwrap().0.clone();
    let until = k8s_openapi::jiff::Timestamp::from_second(
        k8s_openapi::jiff::Timestamp::now().as_second() + 3600,
    )
    .unwrap()
    .to_string();
    protect(&s.tasks, &kept, Some(until.clone())).await;
    let task = wait_for(&s.tasks, &kept, |t: Option<&Task>| {
        protection_enabled(t) == Some(true)
    })
    .await;
    assert_eq!(
        task.status.unwrap().protection.unwrap().expiration_date,
        Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
            until.parse().unwrap()
        )),
        "status.protection is ECS's ProtectedTask"
    );

    // An annotation that is not a time: a condition and a Warning Event, and no protection.
    let invalid = running[0].0.clone();
    protect(&s.tasks, &invalid, Some("soon".into())).await;
    wait_for(&s.tasks, &invalid, |t: Option<&Task>| {
        t.and_then(|t| t.status.as_ref()).is_some_and(|st| {
            st.conditions
                .iter()
                .any(|c| c.type_ == "ScaleInProtection" && c.reason == "InvalidScaleInProtection")
        })
    })
    .await;
    let events: Api<k8s_openapi::api::events::v1::Event> = s.ns.api();
    let until = tokio::time::Instant::now() + support::DEADLINE;
    while !events
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .iter()
        .any(|e| {
            e.type_.as_deref() == Some("Warning")
                && e.reason.as_deref() == Some("InvalidScaleInProtection")
                && e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(invalid.as_str())
        })
    {
        assert!(
            tokio::time::Instant::now() < until,
            "no Warning event about {invalid}'s annotation"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    s.scale("web", 1).await;
    s.wait_service("web", steady_at(1), ROLLOUT_DEADLINE).await;
    let left = running_tasks(&s, "web").await;
    assert_eq!(
        left.iter().map(|(n, _, _)| n.as_str()).collect::<Vec<_>>(),
        [kept.as_str()],
        "the protected task is never chosen for scale-in"
    );

    // Scaled to zero while protected: the service sees it and still keeps the task.
    s.scale("web", 0).await;
    wait_for(&s.services, "web", |svc: Option<&Service>| {
        svc.and_then(|s| s.status.as_ref())
            .is_some_and(|st| st.desired_count == Some(0))
    })
    .await;
    let task = s.tasks.get(&kept).await.unwrap();
    assert_eq!(
        task.spec.desired_status,
        Default::default(),
        "a protected task is not stopped by scale-in"
    );
    // Protection removed: it may go, and does.
    protect(&s.tasks, &kept, None).await;
    wait_for(&s.tasks, &kept, |t: Option<&Task>| {
        t.is_some_and(|t| t.spec.desired_status != Default::default())
            && protection_enabled(t) == Some(false)
    })
    .await;
    s.wait_service("web", steady_at(0), ROLLOUT_DEADLINE).await;
}

#[tokio::test]
async fn a_deployment_stopped_by_annotation_rolls_back_to_the_previous_revision() {
    let s = Setup::start("svc-stopdep").await;
    s.register("web", td_spec("nginx:1.27"), 1).await;
    // No circuit breaker: a crashing revision would be retried for ever.
    s.apply_service(
        "web",
        json!({"taskDefinition": "web", "desiredCount": 2,
        "deploymentConfiguration": {"minimumHealthyPercent": 100, "maximumPercent": 200,
            "deploymentCircuitBreaker": {"enable": false, "rollback": false}}}),
    )
    .await;
    until_steady(&s, "web").await;
    s.register("web", td_spec("ecs-operator.test/crash"), 2)
        .await;
    let svc = wait_for(&s.services, "web", |svc: Option<&Service>| {
        svc.and_then(|s| s.status.as_ref()).is_some_and(|st| {
            st.deployments.first().is_some_and(|d| {
                d.task_definition == "web:2" && d.rollout_state == Some(RolloutState::InProgress)
            })
        })
    })
    .await;
    let stuck = svc.status.unwrap().deployments[0].id.clone();
    let stop = "ecs.operator.dev/stop-deployment";
    s.annotate_service("web", stop, &stuck).await;
    let svc = s
        .wait_service("web", steady_on("web:1"), ROLLOUT_DEADLINE)
        .await;
    let st = svc.status.unwrap();
    assert_eq!(st.handled_stop_request.as_deref(), Some(stuck.as_str()));
    let stopped = st.deployments.iter().find(|d| d.id == stuck).unwrap();
    assert_eq!(stopped.rollout_state, Some(RolloutState::Failed));
    assert_eq!(
        stopped.rollout_state_reason.as_deref(),
        Some(format!("ECS deployment {stuck} stopped: rollback requested.").as_str())
    );
    assert_ne!(st.deployments[0].id, stuck);
    assert!(
        st.events
            .iter()
            .any(|e| e.message.contains("deployment stopped: rollback requested")),
        "{:#?}",
        st.events
    );
    let running = running_tasks(&s, "web").await;
    assert_eq!(running.len(), 2);
    assert!(
        running.iter().all(|(_, _, td)| td == "web:1"),
        "{running:?}"
    );

    // A request for a deployment that is not in progress: a condition, and nothing else.
    let completed = st.deployments[0].id.clone();
    s.annotate_service("web", stop, &completed).await;
    let svc = wait_for(&s.services, "web", |svc: Option<&Service>| {
        svc.and_then(|s| s.status.as_ref()).is_some_and(|st| {
            st.conditions
                .iter()
                .any(|c| c.type_ == "Degraded" && c.reason == "InvalidStopRequest")
        })
    })
    .await;
    let st = svc.status.unwrap();
    assert_eq!(st.deployments[0].id, completed);
    assert_eq!(st.task_definition.as_deref(), Some("web:1"));
    assert_eq!(st.handled_stop_request.as_deref(), Some(stuck.as_str()));
}

#[tokio::test]
async fn a_task_no_node_can_take_is_reported_once_and_cleared_when_scaled_to_zero() {
    let s = Setup::start("svc-unplaceable").await;
    // 64 GiB: more memory than any node has.
    s.register(
        "big",
        json!({"containerDefinitions": [{"name": "web", "image": "nginx", "memory": 65536}]}),
        1,
    )
    .await;
    s.apply_service("big", json!({"taskDefinition": "big", "desiredCount": 1}))
        .await;
    let placed = |s: &Service| {
        s.status
            .as_ref()
            .and_then(|st| st.conditions.iter().find(|c| c.type_ == "TasksPlaced"))
            .cloned()
    };
    // The scheduler's own count of nodes follows the cluster (a real node may have joined).
    let prefix = "(service big) was unable to place a task because no container instance met all of its requirements. Reason: 0/";
    let unplaced = move |s: Option<&Service>| {
        s.is_some_and(|s| {
            placed(s).is_some_and(|c| {
                c.status == "False"
                    && c.reason == "NoContainerInstance"
                    && c.message.contains("Insufficient memory")
                    && c.observed_generation == s.metadata.generation
            }) && s
                .status
                .as_ref()
                .is_some_and(|st| st.events.iter().any(|e| e.message.starts_with(prefix)))
        })
    };
    s.wait_service("big", unplaced, ROLLOUT_DEADLINE).await;

    // One more task that cannot be placed is the same episode: no second event.
    s.apply_service("big", json!({"taskDefinition": "big", "desiredCount": 2}))
        .await;
    let deadline = tokio::time::Instant::now() + ROLLOUT_DEADLINE;
    loop {
        let unschedulable = s
            .tasks
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .iter()
            .filter(|t| {
                t.status.as_ref().is_some_and(|st| {
                    st.conditions
                        .iter()
                        .any(|c| c.type_ == "Ready" && c.reason == "Unschedulable")
                })
            })
            .count();
        if unschedulable == 2 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no second unschedulable task"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // The service has seen the second task's verdict: a reconcile after it has finished.
    let operator = s.operator();
    operator
        .service_pass_after(operator.service_reconciles(), deadline)
        .await;
    let svc = s.wait_service("big", unplaced, ROLLOUT_DEADLINE).await;
    let events = &svc.status.as_ref().unwrap().events;
    assert_eq!(
        events
            .iter()
            .filter(|e| e.message.starts_with(prefix))
            .count(),
        1,
        "{events:#?}"
    );
    // Not steady, the service is looked at again every few seconds: each pass writes nothing.
    operator
        .service_pass_after(operator.service_reconciles(), deadline)
        .await;
    let again = s.services.get("big").await.unwrap();
    assert_eq!(
        again.metadata.resource_version, svc.metadata.resource_version,
        "a pass that found nothing new wrote the service"
    );

    // Nothing left to place: the condition clears.
    s.apply_service("big", json!({"taskDefinition": "big", "desiredCount": 0}))
        .await;
    s.wait_service(
        "big",
        move |s: Option<&Service>| {
            s.and_then(placed).is_some_and(|c| {
                c.status == "True" && c.observed_generation == s.unwrap().metadata.generation
            })
        },
        ROLLOUT_DEADLINE,
    )
    .await;
}
