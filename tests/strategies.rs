//! BLUE_GREEN, CANARY and LINEAR deployments on the local control plane: what the production and
//! test load balancer Services' EndpointSlices show through a deployment, bake time, clean-up,
//! rollback and the task bound. One bake-time minute lasts one second here
//! (`Config::deployment_minute`).

mod support;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ecs_operator::api::service::{
    Deployment, RolloutState, ServiceDeploymentLifecycleStage, ServiceDeploymentStatus,
};
use ecs_operator::api::task::LastStatus;
use ecs_operator::api::{Service, Task};
use futures::StreamExt;
use kube::ResourceExt;
use kube::api::{Api, DynamicObject, PostParams};
use kube::runtime::watcher;
use serde_json::json;
use support::endpoints::Endpoints;
use support::setup::{Setup, SetupBuilder, service_messages, td_spec};
use support::{TestNamespace, wait_for_within};

const DEADLINE: Duration = Duration::from_secs(150);
const BLUE_TG: &str =
    "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web-blue/1a2b";
const GREEN_TG: &str =
    "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web-green/3c4d";

/// How a test's operator runs: one bake-time minute lasts one second.
fn setup(prefix: &str) -> SetupBuilder {
    Setup::start(prefix).deployment_minute(Duration::from_secs(1))
}

/// Service `web` with `desired` tasks, `config` as its deploymentConfiguration, and a load balancer
/// whose production target group is web-blue and alternate one web-green.
fn web(desired: i32, config: serde_json::Value) -> serde_json::Value {
    json!({"taskDefinition": "web", "desiredCount": desired, "deploymentConfiguration": config,
        "loadBalancers": [{"containerName": "web", "containerPort": 80, "targetGroupArn": BLUE_TG,
            "advancedConfiguration": {"alternateTargetGroupArn": GREEN_TG,
                "roleArn": "arn:aws:iam::123456789012:role/ecs-lb"}}]})
}

/// Service `web` (see [`web`]) on nginx:1.27 with its first deployment (blue, ecs-svc/1) COMPLETED and
/// all of it behind the production Service: blue's IPs and a watch of production's endpoints.
async fn blue(s: &Setup, desired: i32, config: serde_json::Value) -> (BTreeSet<String>, Endpoints) {
    s.register("web", td_spec("nginx:1.27"), 1).await;
    s.apply_service("web", web(desired, config)).await;
    settled(s, "ecs-svc/1", RolloutState::Completed).await;
    let blue = ips_of(s, "ecs-svc-1").await;
    let production = Endpoints::watch(&s.ns, "web-blue", DEADLINE);
    production.wait_for(&blue).await;
    (blue, production)
}

/// Waits until deployment `id` of `web` has rollout state `state` and the service is Ready.
async fn settled(s: &Setup, id: &str, state: RolloutState) -> Service {
    let id = id.to_string();
    s.wait_service(
        "web",
        move |s: Option<&Service>| {
            let Some(st) = s.and_then(|s| s.status.as_ref()) else {
                return false;
            };
            st.deployments
                .iter()
                .any(|d| d.id == id && d.rollout_state == Some(state))
                && st
                    .conditions
                    .iter()
                    .any(|c| c.type_ == "Ready" && c.status == "True")
        },
        DEADLINE,
    )
    .await
}

/// Waits until ecs-svc/2 of `web` was rolled back to blue.
async fn rolled_back(s: &Setup, within: Duration) -> Service {
    s.wait_service(
        "web",
        |svc: Option<&Service>| {
            svc.and_then(|s| s.status.as_ref()).is_some_and(|st| {
                st.deployments.iter().any(|d| {
                    d.id == "ecs-svc/2"
                        && d.service_deployment_status
                            == Some(ServiceDeploymentStatus::RollbackSuccessful)
                })
            })
        },
        within,
    )
    .await
}

/// Waits until the primary deployment of `web` satisfies `f`.
async fn primary_until(s: &Setup, f: impl Fn(&Deployment) -> bool) -> Service {
    s.wait_service(
        "web",
        move |svc: Option<&Service>| {
            svc.and_then(|s| s.status.as_ref()?.deployments.first())
                .is_some_and(&f)
        },
        DEADLINE,
    )
    .await
}

/// Pod IPs of a deployment's live tasks (`ecs-svc-N`).
async fn ips_of(s: &Setup, deployment: &str) -> BTreeSet<String> {
    s.pod_ips(&format!("ecs.operator.dev/deployment={deployment}"))
        .await
}

/// The most tasks of service `web` alive (not STOPPED) at once, watched until dropped.
struct TaskBound {
    max: Arc<Mutex<usize>>,
    task: tokio::task::JoinHandle<()>,
}

impl TaskBound {
    fn watch(ns: &TestNamespace) -> Self {
        let api: Api<Task> = ns.api();
        let max = Arc::new(Mutex::new(0));
        let record = max.clone();
        let task = tokio::spawn(async move {
            let mut alive: BTreeSet<String> = BTreeSet::new();
            let mut stream = watcher(api, watcher::Config::default()).boxed();
            while let Some(event) = stream.next().await {
                match event {
                    Ok(watcher::Event::Apply(t)) | Ok(watcher::Event::InitApply(t)) => {
                        let stopped = t.status.as_ref().and_then(|s| s.last_status)
                            == Some(LastStatus::Stopped);
                        if stopped {
                            alive.remove(&t.name_any());
                        } else {
                            alive.insert(t.name_any());
                        }
                    }
                    Ok(watcher::Event::Delete(t)) => {
                        alive.remove(&t.name_any());
                    }
                    _ => continue,
                }
                let mut max = record.lock().unwrap();
                *max = (*max).max(alive.len());
            }
        });
        TaskBound { max, task }
    }

    fn max(&self) -> usize {
        *self.max.lock().unwrap()
    }
}

impl Drop for TaskBound {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Green's share of a set of endpoints.
fn green_share(ips: &BTreeSet<String>, green: &BTreeSet<String>) -> f64 {
    if ips.is_empty() {
        return 0.0;
    }
    ips.intersection(green).count() as f64 / ips.len() as f64
}

#[tokio::test]
async fn blue_green_switches_production_endpoints_at_once_after_the_test_service_and_bake_time() {
    let s = setup("bg").await;
    let (blue, production) = blue(
        &s,
        3,
        json!({"strategy": "BLUE_GREEN", "bakeTimeInMinutes": 4}),
    )
    .await;
    assert_eq!(blue.len(), 3);
    let test = Endpoints::watch(&s.ns, "web-green", DEADLINE);
    test.wait_for(&blue).await;
    let bound = TaskBound::watch(&s.ns);

    s.register("web", td_spec("nginx:1.28"), 2).await;
    let svc = settled(&s, "ecs-svc/2", RolloutState::Completed).await;
    let green = ips_of(&s, "ecs-svc-2").await;
    assert_eq!(green.len(), 3);
    production.wait_for(&green).await;

    // Production: blue, then green, never a mix.
    let seen = production.seen();
    let mixed: Vec<_> = seen
        .iter()
        .filter(|ips| !ips.is_disjoint(&green) && !ips.is_disjoint(&blue))
        .collect();
    assert!(
        mixed.is_empty(),
        "production mixed blue and green: {seen:?}"
    );
    assert!(
        seen.contains(&blue) && seen.last() == Some(&green),
        "{seen:?}"
    );
    // The test Service showed all of green while production still showed blue.
    let test_seen = test.seen();
    assert!(test_seen.contains(&green), "{test_seen:?}");
    // The stages in ECS order, bake time between the shift and clean-up, blue stopped in clean-up.
    let messages = service_messages(&svc);
    let at = |needle: &str| {
        messages
            .iter()
            .position(|m| m.contains(needle))
            .unwrap_or_else(|| panic!("no {needle:?} in {messages:#?}"))
    };
    let order = [
        "entered the RECONCILE_SERVICE",
        "entered the SCALE_UP",
        "entered the TEST_TRAFFIC_SHIFT",
        "entered the PRODUCTION_TRAFFIC_SHIFT",
        "entered the BAKE_TIME",
        "entered the CLEAN_UP",
        "(deployment ecs-svc/2) deployment completed",
    ];
    let positions: Vec<usize> = order.iter().map(|n| at(n)).collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{messages:#?}");
    let time_of = |needle: &str| {
        svc.status
            .as_ref()
            .unwrap()
            .events
            .iter()
            .find(|e| e.message.contains(needle))
            .and_then(|e| e.created_at.clone())
            .unwrap()
            .0
    };
    let baked = time_of("entered the CLEAN_UP").duration_since(time_of("entered the BAKE_TIME"));
    assert!(
        baked.as_secs() >= 4,
        "bake time of 4 (test) minutes, was {baked:?}"
    );
    let stopped_blue = messages
        .iter()
        .position(|m| m.contains("has stopped 3 running tasks"))
        .expect("blue stopped");
    assert!(stopped_blue > at("entered the CLEAN_UP"), "{messages:#?}");
    assert!(bound.max() <= 6, "{} tasks alive at once", bound.max());
    let deployment = &svc.status.as_ref().unwrap().deployments[0];

    assert_eq!(
        deployment.lifecycle_stage,
        Some(ServiceDeploymentLifecycleStage::CleanUp)
    );
    assert_eq!(
        deployment.service_deployment_status,
        Some(ServiceDeploymentStatus::Successful)
    );
    assert_eq!(deployment.production_traffic_percent, Some(100.0));
}

#[tokio::test]
async fn canary_shows_canary_percent_of_endpoints_on_green_then_all() {
    let s = setup("canary").await;
    let (_, production) = blue(
        &s,
        4,
        json!({"strategy": "CANARY",
            "canaryConfiguration": {"canaryPercent": 25.0, "canaryBakeTimeInMinutes": 5}}),
    )
    .await;
    let bound = TaskBound::watch(&s.ns);

    s.register("web", td_spec("nginx:1.28"), 2).await;
    settled(&s, "ecs-svc/2", RolloutState::Completed).await;
    let green = ips_of(&s, "ecs-svc-2").await;
    production.wait_for(&green).await;
    let seen = production.seen();
    let canary = seen
        .iter()
        .position(|ips| ips.len() == 4 && ips.intersection(&green).count() == 1)
        .unwrap_or_else(|| panic!("no endpoint set of 3 blue and 1 green: {seen:?}"));
    assert!(
        seen[..canary]
            .iter()
            .all(|ips| green_share(ips, &green) <= 0.25),
        "{seen:?}"
    );
    assert!(bound.max() <= 8, "{} tasks alive at once", bound.max());
}

#[tokio::test]
async fn linear_moves_endpoints_to_green_step_by_step() {
    let s = setup("linear").await;
    let (blue, production) = blue(
        &s,
        4,
        json!({"strategy": "LINEAR",
            "linearConfiguration": {"stepPercent": 25.0, "stepBakeTimeInMinutes": 10}}),
    )
    .await;

    s.register("web", td_spec("nginx:1.28"), 2).await;
    let svc = settled(&s, "ecs-svc/2", RolloutState::Completed).await;
    let green = ips_of(&s, "ecs-svc-2").await;
    production.wait_for(&green).await;
    // 25 % (1 of 4), 50 % (4 of 8), 75 % (3 of 4) in order, each a full set of ready endpoints. The
    // labels of a step are written one pod at a time, so shares in between show up too; a step lasts
    // long enough (10 s) for the EndpointSlice controller to catch up with each.
    let seen = production.seen();
    let steps: Vec<f64> = seen
        .iter()
        .filter(|ips| !ips.is_empty() && ips.is_subset(&blue.union(&green).cloned().collect()))
        .map(|ips| green_share(ips, &green))
        .collect();
    // Green's share passes through a step between none and all before it reaches all, and ends there.
    // (Which steps the EndpointSlice controller shows depends on its pace: under load it may skip
    // one, and a step's labels, written one pod at a time, show shares in between; the operator's own
    // record of every step is the events below.)
    let is_step = |share: &f64| [0.25, 0.5, 0.75].iter().any(|w| (w - share).abs() < 1e-9);
    let first_step = steps.iter().position(is_step);
    let first_all = steps.iter().position(|s| (s - 1.0).abs() < 1e-9);
    assert!(
        matches!((first_step, first_all), (Some(step), Some(all)) if step < all),
        "no step between none and all before all: {steps:?}"
    );
    assert_eq!(steps.last(), Some(&1.0), "green's shares {steps:?}");
    let messages = service_messages(&svc);
    for percent in ["25.0%", "50.0%", "75.0%"] {
        assert!(
            messages
                .iter()
                .any(|m| m.contains(&format!("shifted {percent} of production traffic"))),
            "{messages:#?}"
        );
    }
}

#[tokio::test]
async fn a_stop_request_in_bake_time_returns_production_to_blue_at_once() {
    let s = setup("bg-stop").await;
    let (blue, production) = blue(
        &s,
        3,
        json!({"strategy": "BLUE_GREEN", "bakeTimeInMinutes": 600}),
    )
    .await;

    s.register("web", td_spec("nginx:1.28"), 2).await;
    primary_until(&s, |d| {
        d.lifecycle_stage == Some(ServiceDeploymentLifecycleStage::BakeTime)
    })
    .await;
    let green = ips_of(&s, "ecs-svc-2").await;
    production.wait_for(&green).await;
    let switched = production.seen().len();

    s.annotate_service("web", "ecs.operator.dev/stop-deployment", "ecs-svc/2")
        .await;
    production.wait_for(&blue).await;
    let after = &production.seen()[switched..];
    assert_eq!(
        after,
        std::slice::from_ref(&blue),
        "straight back to all of blue"
    );
    let svc = rolled_back(&s, DEADLINE).await;
    let st = svc.status.unwrap();
    assert_eq!(st.deployments[0].id, "ecs-svc/1");
    assert_eq!(st.task_definition.as_deref(), Some("web:1"));
    let degraded = st
        .conditions
        .iter()
        .find(|c| c.type_ == "Degraded")
        .unwrap();
    assert_eq!(degraded.status, "True", "{degraded:?}");
    assert!(
        ips_of(&s, "ecs-svc-2").await.is_empty(),
        "green scaled away"
    );
    assert_eq!(
        ips_of(&s, "ecs-svc-1").await,
        blue,
        "blue's own tasks serve again"
    );
}

#[tokio::test]
async fn the_circuit_breaker_keeps_production_on_blue_and_returns_to_it_without_redeploying() {
    // Crashing tasks must not count as healthy before they crash (kwok crashes them within seconds).
    let s = setup("bg-breaker")
        .healthy_after_running(Duration::from_secs(10))
        .await;
    let (blue, production) = blue(
        &s,
        3,
        json!({"strategy": "BLUE_GREEN",
            "deploymentCircuitBreaker": {"enable": true, "rollback": true}}),
    )
    .await;

    // Revision 2 crashes wherever it runs.
    s.register("web", td_spec("ecs-operator.test/crash"), 2)
        .await;
    let svc = rolled_back(&s, Duration::from_secs(180)).await;
    let st = svc.status.unwrap();
    assert_eq!(st.deployments[0].id, "ecs-svc/1", "{:#?}", st.deployments);
    assert!(
        st.deployments.iter().all(|d| d.id != "ecs-svc/3"),
        "blue's tasks still run: nothing is redeployed"
    );
    let green = st.deployments.iter().find(|d| d.id == "ecs-svc/2").unwrap();
    assert_eq!(green.rollout_state, Some(RolloutState::Failed));
    assert_eq!(green.failed_tasks, 3);
    // Production never left blue's own tasks.
    assert!(
        production.seen().iter().all(|ips| ips.is_subset(&blue)),
        "{:?}",
        production.seen()
    );
    assert_eq!(ips_of(&s, "ecs-svc-1").await, blue);
}

/// The route `web-prod` as a user writes it: blue (web-blue) and green (web-green) backends of one rule.
fn production_route() -> DynamicObject {
    serde_json::from_value(json!({
        "apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
        "metadata": {"name": "web-prod"},
        "spec": {
            "parentRefs": [{"name": "public"}],
            "rules": [{"backendRefs": [
                {"name": "web-blue", "port": 80, "weight": 1},
                {"name": "web-green", "port": 80, "weight": 0}
            ]}]
        }
    }))
    .unwrap()
}

#[tokio::test]
async fn canary_through_an_httproute_writes_the_weights_and_keeps_blue_behind_the_production_service()
 {
    let s = setup("canary-route").await;
    let routes = s.routes();
    routes
        .create(&PostParams::default(), &production_route())
        .await
        .expect("the Gateway API CRDs (cargo xtask cluster up installs them)");
    s.register("web", td_spec("nginx:1.27"), 1).await;
    s.apply_service(
        "web",
        json!({"taskDefinition": "web", "desiredCount": 4,
            "deploymentConfiguration": {"strategy": "CANARY",
                "canaryConfiguration": {"canaryPercent": 5.0, "canaryBakeTimeInMinutes": 6}},
            "loadBalancers": [{"containerName": "web", "containerPort": 80, "targetGroupArn": BLUE_TG,
                "advancedConfiguration": {"alternateTargetGroupArn": GREEN_TG,
                    "productionListenerRule": "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener-rule/app/lb/1/2/web-prod"}}]}),
    )
    .await;
    settled(&s, "ecs-svc/1", RolloutState::Completed).await;
    let weights = |r: &DynamicObject| -> Vec<i64> {
        r.data["spec"]["rules"][0]["backendRefs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b["weight"].as_i64().unwrap_or(1))
            .collect()
    };
    let route = routes.get("web-prod").await.unwrap();
    assert_eq!(
        weights(&route),
        vec![1000, 0],
        "all to the production Service"
    );
    let blue = ips_of(&s, "ecs-svc-1").await;
    let production = Endpoints::watch(&s.ns, "web-blue", DEADLINE);
    production.wait_for(&blue).await;

    s.register("web", td_spec("nginx:1.28"), 2).await;
    primary_until(&s, |d| d.production_traffic_percent == Some(5.0)).await;
    let route = wait_for_within(
        &routes,
        "web-prod",
        |r: Option<&DynamicObject>| r.is_some_and(|r| weights(r) == vec![950, 50]),
        Duration::from_secs(30),
    )
    .await;
    assert_eq!(weights(&route), vec![950, 50]);
    // The canary's share is the route's: the production Service still shows all of blue, and the
    // alternate one green.
    assert_eq!(production.seen().last(), Some(&blue));
    settled(&s, "ecs-svc/2", RolloutState::Completed).await;
    let green = ips_of(&s, "ecs-svc-2").await;
    production.wait_for(&green).await;
    let route = routes.get("web-prod").await.unwrap();
    assert_eq!(
        weights(&route),
        vec![1000, 0],
        "back to the production Service, now green"
    );
    // Up to the switch: later, a task replaced (or moved by AZ rebalancing) may take an address a
    // blue pod had, and count as neither set.
    let seen = production.seen();
    let switched = seen
        .iter()
        .position(|ips| *ips == green)
        .expect("green seen");
    assert!(
        seen[..=switched]
            .iter()
            .all(|ips| ips.is_subset(&blue) || ips.is_subset(&green)),
        "no endpoint mix: the route carries the split {seen:?}"
    );
}

/// Lifecycle hooks: TaskDefinition `check` runs `image` (the hook's task).
async fn register_check(s: &Setup, image: &str) {
    s.register(
        "check",
        json!({"containerDefinitions": [{"name": "check", "image": image}]}),
        1,
    )
    .await;
}

/// A BLUE_GREEN service whose blue (ecs-svc/1, nginx:1.27) is COMPLETED and serving, with `hooks` as
/// its lifecycleHooks from then on (so they run for ecs-svc/2); returns blue's IPs and a watch of
/// production endpoints.
async fn blue_with_hooks(s: &Setup, hooks: serde_json::Value) -> (BTreeSet<String>, Endpoints) {
    let (blue, production) = blue(s, 3, json!({"strategy": "BLUE_GREEN"})).await;
    s.apply_service(
        "web",
        web(
            3,
            json!({"strategy": "BLUE_GREEN", "lifecycleHooks": hooks}),
        ),
    )
    .await;
    (blue, production)
}

/// Answers a PAUSE hook (or tries to) through the action annotation.
async fn hook_action(s: &Setup, action: &str) {
    s.annotate_service("web", "ecs.operator.dev/lifecycle-hook-action", action)
        .await;
}

fn green_of(svc: &Service) -> Deployment {
    svc.status
        .as_ref()
        .unwrap()
        .deployments
        .iter()
        .find(|d| d.id == "ecs-svc/2")
        .cloned()
        .unwrap()
}

#[tokio::test]
async fn a_hook_task_exiting_1_at_post_scale_up_rolls_back_with_production_never_leaving_blue() {
    let s = setup("hook-fail").await;
    register_check(&s, "ecs-operator.test/crash").await;
    let (blue, production) = blue_with_hooks(
        &s,
        json!([{"hookTargetArn": "check", "lifecycleStages": ["POST_SCALE_UP"]}]),
    )
    .await;

    s.register("web", td_spec("nginx:1.28"), 2).await;
    let svc = rolled_back(&s, DEADLINE).await;
    let st = svc.status.as_ref().unwrap();
    assert_eq!(st.deployments[0].id, "ecs-svc/1", "{:#?}", st.deployments);
    let green = green_of(&svc);
    assert_eq!(green.rollout_state, Some(RolloutState::Failed));
    assert_eq!(
        green.lifecycle_stage,
        Some(ServiceDeploymentLifecycleStage::PostScaleUp)
    );
    let hook = &green.lifecycle_hook_details[0];
    assert_eq!(hook.hook_id, "ecs-svc/2/POST_SCALE_UP/0");
    assert_eq!(
        serde_json::to_value(hook.status).unwrap(),
        json!("FAILED"),
        "{hook:?}"
    );
    assert!(
        hook.reason
            .as_deref()
            .is_some_and(|r| r.contains("exited with 1")),
        "{hook:?}"
    );
    // The hook ran as a standalone task of `check`, owned by the Service (not as its controller).
    let task: Task =
        s.ns.api()
            .get(hook.task_name.as_deref().unwrap())
            .await
            .unwrap();
    assert_eq!(task.spec.task_definition, "check:1");
    let owner = &task.owner_references()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.controller),
        ("Service", Some(false))
    );
    let messages = service_messages(&svc);
    assert!(
        messages.iter().any(
            |m| m.contains("lifecycle hook ecs-svc/2/POST_SCALE_UP/0 at POST_SCALE_UP started")
        ),
        "{messages:#?}"
    );
    assert!(
        production.seen().iter().all(|ips| ips.is_subset(&blue)),
        "production left blue: {:?}",
        production.seen()
    );
    assert_eq!(ips_of(&s, "ecs-svc-1").await, blue);
}

#[tokio::test]
async fn a_hook_task_exiting_0_lets_the_deployment_complete() {
    let s = setup("hook-ok").await;
    register_check(&s, "ecs-operator.test/succeed").await;
    let (_, production) = blue_with_hooks(
        &s,
        json!([{"hookTargetArn": "check", "lifecycleStages": ["POST_SCALE_UP"]}]),
    )
    .await;

    s.register("web", td_spec("nginx:1.28"), 2).await;
    let svc = settled(&s, "ecs-svc/2", RolloutState::Completed).await;
    production.wait_for(&ips_of(&s, "ecs-svc-2").await).await;
    let green = green_of(&svc);
    assert_eq!(
        green.service_deployment_status,
        Some(ServiceDeploymentStatus::Successful)
    );
    let hook = &green.lifecycle_hook_details[0];
    assert_eq!(
        serde_json::to_value(hook.status).unwrap(),
        json!("SUCCEEDED")
    );
    assert!(hook.ended_at.is_some());
    let messages = service_messages(&svc);
    let at = |needle: &str| {
        messages
            .iter()
            .position(|m| m.contains(needle))
            .unwrap_or_else(|| panic!("no {needle:?} in {messages:#?}"))
    };
    // The stage waited for its hook.
    assert!(
        at("at POST_SCALE_UP succeeded")
            < at("(deployment ecs-svc/2) entered the TEST_TRAFFIC_SHIFT"),
        "{messages:#?}"
    );
}

/// ecs-svc/2 paused by a PAUSE hook at POST_TEST_TRAFFIC_SHIFT (the last stage before production
/// traffic moves: ECS takes no hook at PRE_PRODUCTION_TRAFFIC_SHIFT); checks that it stays there with
/// production on blue for a while. Returns blue's IPs and the production endpoints watch.
async fn paused(s: &Setup) -> (BTreeSet<String>, Endpoints) {
    let (blue, production) = blue_with_hooks(
        s,
        json!([{"targetType": "PAUSE", "lifecycleStages": ["POST_TEST_TRAFFIC_SHIFT"]}]),
    )
    .await;
    s.register("web", td_spec("nginx:1.28"), 2).await;
    let svc = primary_until(s, |d| {
        d.id == "ecs-svc/2"
            && d.lifecycle_stage == Some(ServiceDeploymentLifecycleStage::PostTestTrafficShift)
            && !d.lifecycle_hook_details.is_empty()
    })
    .await;
    let hook = &green_of(&svc).lifecycle_hook_details[0];
    assert_eq!(
        serde_json::to_value(hook.status).unwrap(),
        json!("AWAITING_ACTION")
    );
    let messages = service_messages(&svc);
    assert!(
        messages.iter().any(|m| m.contains(&format!(
            "kubectl ecs continue-service-deployment -n {} --service-deployment-arn arn:aws:ecs:kubernetes:000000000000:service-deployment/{}/web/2 --hook-id ecs-svc/2/POST_TEST_TRAFFIC_SHIFT/0 --action CONTINUE",
            s.ns.name, s.ns.name
        ))),
        "{messages:#?}"
    );
    // Held: 5 (test) minutes later the stage is the same and production is still blue's.
    let until = tokio::time::Instant::now() + Duration::from_secs(5);
    while tokio::time::Instant::now() < until {
        let svc = s.services.get("web").await.unwrap();
        let d = green_of(&svc);
        assert_eq!(
            d.lifecycle_stage,
            Some(ServiceDeploymentLifecycleStage::PostTestTrafficShift)
        );
        assert_eq!(d.production_traffic_percent, Some(0.0));
        assert_eq!(production.seen().last(), Some(&blue));
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    (blue, production)
}

#[tokio::test]
async fn a_pause_hook_holds_the_deployment_until_continue() {
    let s = setup("hook-pause").await;
    let (blue, production) = paused(&s).await;

    // Not an action: reported, nothing else changes.
    hook_action(&s, "ecs-svc/2=GO").await;
    let svc = s
        .wait_service(
            "web",
            |svc: Option<&Service>| {
                svc.and_then(|s| s.status.as_ref()).is_some_and(|st| {
                    st.conditions.iter().any(|c| {
                        c.type_ == "Degraded"
                            && c.status == "True"
                            && c.reason == "InvalidLifecycleHookAction"
                    })
                })
            },
            DEADLINE,
        )
        .await;
    let d = green_of(&svc);
    assert_eq!(
        d.lifecycle_stage,
        Some(ServiceDeploymentLifecycleStage::PostTestTrafficShift)
    );
    assert_eq!(
        serde_json::to_value(d.lifecycle_hook_details[0].status).unwrap(),
        json!("AWAITING_ACTION")
    );

    hook_action(&s, "ecs-svc/2/POST_TEST_TRAFFIC_SHIFT=CONTINUE").await;
    let svc = settled(&s, "ecs-svc/2", RolloutState::Completed).await;
    let green = ips_of(&s, "ecs-svc-2").await;
    production.wait_for(&green).await;
    assert!(production.seen().contains(&blue));
    let hook = &green_of(&svc).lifecycle_hook_details[0];
    assert_eq!(
        serde_json::to_value(hook.status).unwrap(),
        json!("SUCCEEDED")
    );
    assert_eq!(
        serde_json::to_value(hook.action).unwrap(),
        json!("CONTINUE")
    );
}

#[tokio::test]
async fn a_pause_hook_rolls_back_on_rollback() {
    let s = setup("hook-rollback").await;
    let (blue, production) = paused(&s).await;
    hook_action(&s, "ecs-svc/2/POST_TEST_TRAFFIC_SHIFT=ROLLBACK").await;
    let svc = rolled_back(&s, DEADLINE).await;
    assert_eq!(svc.status.as_ref().unwrap().deployments[0].id, "ecs-svc/1");
    let hook = &green_of(&svc).lifecycle_hook_details[0];
    assert_eq!(serde_json::to_value(hook.status).unwrap(), json!("FAILED"));
    assert!(
        production.seen().iter().all(|ips| ips.is_subset(&blue)),
        "{:?}",
        production.seen()
    );
}

#[tokio::test]
async fn hook_timeouts_follow_their_action_continue_then_rollback() {
    // timeoutInMinutes is at least 1 and counts real minutes: this test takes two of them.
    let s = setup("hook-timeout").await;
    let (blue, production) = blue_with_hooks(
        &s,
        json!([
            {"targetType": "PAUSE", "lifecycleStages": ["POST_SCALE_UP"],
                "timeoutConfiguration": {"timeoutInMinutes": 1, "action": "CONTINUE"}},
            {"targetType": "PAUSE", "lifecycleStages": ["POST_TEST_TRAFFIC_SHIFT"],
                "timeoutConfiguration": {"timeoutInMinutes": 1, "action": "ROLLBACK"}}
        ]),
    )
    .await;
    s.register("web", td_spec("nginx:1.28"), 2).await;
    let svc = rolled_back(&s, Duration::from_secs(240)).await;
    let details = green_of(&svc).lifecycle_hook_details;
    let status = |stage: &str| {
        let d = details
            .iter()
            .find(|d| {
                d.hook_id
                    == format!(
                        "ecs-svc/2/{stage}/{}",
                        usize::from(stage != "POST_SCALE_UP")
                    )
            })
            .unwrap_or_else(|| panic!("no hook at {stage}: {details:#?}"));
        serde_json::to_value(d.status).unwrap()
    };
    assert_eq!(status("POST_SCALE_UP"), json!("TIMED_OUT"));
    assert_eq!(status("POST_TEST_TRAFFIC_SHIFT"), json!("TIMED_OUT"));
    let messages = service_messages(&svc);
    let at = |needle: &str| {
        messages
            .iter()
            .position(|m| m.contains(needle))
            .unwrap_or_else(|| panic!("no {needle:?} in {messages:#?}"))
    };
    // CONTINUE went on to the next stages; ROLLBACK went back to blue.
    assert!(
        at("at POST_SCALE_UP timed out")
            < at("(deployment ecs-svc/2) entered the TEST_TRAFFIC_SHIFT")
    );
    assert!(
        at("at POST_TEST_TRAFFIC_SHIFT timed out")
            < at("lifecycle hook failed in POST_TEST_TRAFFIC_SHIFT")
    );
    assert!(
        production.seen().iter().all(|ips| ips.is_subset(&blue)),
        "{:?}",
        production.seen()
    );
}
