//! BLUE_GREEN, CANARY and LINEAR deployments on the local control plane: what the production and
//! test load balancer Services' EndpointSlices show through a deployment, bake time, clean-up,
//! rollback and the task bound. One bake-time minute lasts one second here
//! (`Config::deployment_minute`).

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ecs_operator::api::service::{
    RolloutState, ServiceDeploymentLifecycleStage, ServiceDeploymentStatus,
};
use ecs_operator::api::task::LastStatus;
use ecs_operator::api::{Service, Task, TaskDefinition};
use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::ResourceExt;
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::runtime::watcher;
use serde_json::json;
use support::{Operator, TestNamespace, client, install_crds, wait_for, wait_for_within};

const DEADLINE: Duration = Duration::from_secs(150);
const BLUE_TG: &str =
    "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web-blue/1a2b";
const GREEN_TG: &str =
    "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web-green/3c4d";

struct Setup {
    ns: TestNamespace,
    tds: Api<TaskDefinition>,
    services: Api<Service>,
    pods: Api<Pod>,
    _operator: Operator,
}

async fn setup(prefix: &str) -> Setup {
    setup_with(prefix, Duration::from_secs(1)).await
}

/// `healthy_after_running`: how long a task without a health check must run to count as healthy.
async fn setup_with(prefix: &str, healthy_after_running: Duration) -> Setup {
    let client = client().await;
    install_crds(&client).await;
    let ns = TestNamespace::new(&client, prefix).await;
    let operator = Operator::start_with(
        &client,
        &ns.name,
        ecs_operator::context::Config {
            healthy_after_running,
            deployment_minute: Duration::from_secs(1),
            ..Default::default()
        },
    );
    Setup {
        tds: ns.api(),
        services: ns.api(),
        pods: ns.api(),
        ns,
        _operator: operator,
    }
}

impl Setup {
    async fn register(&self, image: &str, revision: i64) {
        let td: TaskDefinition = serde_json::from_value(json!({
            "apiVersion": "ecs.operator.dev/v1alpha1", "kind": "TaskDefinition",
            "metadata": {"name": "web"},
            "spec": {"containerDefinitions": [{"name": "web", "image": image, "portMappings": [{"containerPort": 80}]}]}
        }))
        .unwrap();
        self.tds
            .patch(
                "web",
                &PatchParams::apply("test").force(),
                &Patch::Apply(&td),
            )
            .await
            .unwrap();
        wait_for(&self.tds, "web", move |td: Option<&TaskDefinition>| {
            td.and_then(|t| t.status.as_ref()?.latest_revision) == Some(revision)
        })
        .await;
    }

    /// Service `web` with `desired` tasks, `config` as its deploymentConfiguration, and a load
    /// balancer whose production target group is web-blue and alternate one web-green.
    async fn apply_service(&self, desired: i32, config: serde_json::Value) {
        let svc: Service = serde_json::from_value(json!({
            "apiVersion": "ecs.operator.dev/v1alpha1", "kind": "Service",
            "metadata": {"name": "web"},
            "spec": {"taskDefinition": "web", "desiredCount": desired, "deploymentConfiguration": config,
                "loadBalancers": [{"containerName": "web", "containerPort": 80, "targetGroupArn": BLUE_TG,
                    "advancedConfiguration": {"alternateTargetGroupArn": GREEN_TG,
                        "roleArn": "arn:aws:iam::123456789012:role/ecs-lb"}}]}
        }))
        .unwrap();
        self.services
            .patch(
                "web",
                &PatchParams::apply("test").force(),
                &Patch::Apply(&svc),
            )
            .await
            .unwrap();
    }

    /// Waits until deployment `id` has rollout state `state` and the service is Ready.
    async fn settled(&self, id: &str, state: RolloutState) -> Service {
        let id = id.to_string();
        wait_for_within(
            &self.services,
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

    /// Pod IPs of a deployment's live tasks (`ecs-svc-N`).
    async fn ips_of(&self, deployment: &str) -> BTreeSet<String> {
        self.pods
            .list(
                &ListParams::default().labels(&format!("ecs.operator.dev/deployment={deployment}")),
            )
            .await
            .unwrap()
            .items
            .into_iter()
            .filter(|p| p.metadata.deletion_timestamp.is_none())
            .filter_map(|p| p.status?.pod_ip)
            .collect()
    }

    fn service_messages(svc: &Service) -> Vec<String> {
        // Oldest first.
        let mut m: Vec<String> = svc
            .status
            .iter()
            .flat_map(|s| &s.events)
            .map(|e| e.message.clone())
            .collect();
        m.reverse();
        m
    }
}

/// Every distinct set of ready endpoint addresses a Kubernetes Service's EndpointSlices showed, in
/// order (recorded by a watch until dropped).
struct Endpoints {
    seen: Arc<Mutex<Vec<BTreeSet<String>>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Endpoints {
    fn watch(ns: &TestNamespace, service: &str) -> Self {
        let api: Api<EndpointSlice> = ns.api();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let record = seen.clone();
        let config =
            watcher::Config::default().labels(&format!("kubernetes.io/service-name={service}"));
        let task = tokio::spawn(async move {
            let mut slices: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
            let mut stream = watcher(api, config).boxed();
            while let Some(event) = stream.next().await {
                let ready = |s: &EndpointSlice| -> BTreeSet<String> {
                    s.endpoints
                        .iter()
                        .flatten()
                        .filter(|e| e.conditions.as_ref().and_then(|c| c.ready) == Some(true))
                        .flat_map(|e| e.addresses.clone())
                        .collect()
                };
                match event {
                    Ok(watcher::Event::Apply(s)) | Ok(watcher::Event::InitApply(s)) => {
                        slices.insert(s.name_any(), ready(&s));
                    }
                    Ok(watcher::Event::Delete(s)) => {
                        slices.remove(&s.name_any());
                    }
                    Ok(watcher::Event::Init) => slices.clear(),
                    _ => continue,
                }
                let now: BTreeSet<String> = slices.values().flatten().cloned().collect();
                let mut seen = record.lock().unwrap();
                if seen.last() != Some(&now) {
                    seen.push(now);
                }
            }
        });
        Endpoints { seen, task }
    }

    fn seen(&self) -> Vec<BTreeSet<String>> {
        self.seen.lock().unwrap().clone()
    }

    /// Waits until the endpoints are exactly `ips`.
    async fn wait_for(&self, ips: &BTreeSet<String>) {
        let until = tokio::time::Instant::now() + DEADLINE;
        while self.seen().last() != Some(ips) {
            assert!(
                tokio::time::Instant::now() < until,
                "endpoints {:?} never became {ips:?}",
                self.seen().last()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Endpoints {
    fn drop(&mut self) {
        self.task.abort();
    }
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
    s.register("nginx:1.27", 1).await;
    s.apply_service(3, json!({"strategy": "BLUE_GREEN", "bakeTimeInMinutes": 4}))
        .await;
    s.settled("ecs-svc/1", RolloutState::Completed).await;
    let blue = s.ips_of("ecs-svc-1").await;
    assert_eq!(blue.len(), 3);
    let production = Endpoints::watch(&s.ns, "web-blue");
    let test = Endpoints::watch(&s.ns, "web-green");
    production.wait_for(&blue).await;
    test.wait_for(&blue).await;
    let bound = TaskBound::watch(&s.ns);

    s.register("nginx:1.28", 2).await;
    let svc = s.settled("ecs-svc/2", RolloutState::Completed).await;
    let green = s.ips_of("ecs-svc-2").await;
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
    let messages = Setup::service_messages(&svc);
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
    s.register("nginx:1.27", 1).await;
    s.apply_service(
        4,
        json!({"strategy": "CANARY",
            "canaryConfiguration": {"canaryPercent": 25.0, "canaryBakeTimeInMinutes": 5}}),
    )
    .await;
    s.settled("ecs-svc/1", RolloutState::Completed).await;
    let blue = s.ips_of("ecs-svc-1").await;
    let production = Endpoints::watch(&s.ns, "web-blue");
    production.wait_for(&blue).await;
    let bound = TaskBound::watch(&s.ns);

    s.register("nginx:1.28", 2).await;
    s.settled("ecs-svc/2", RolloutState::Completed).await;
    let green = s.ips_of("ecs-svc-2").await;
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
    s.register("nginx:1.27", 1).await;
    s.apply_service(
        4,
        json!({"strategy": "LINEAR",
            "linearConfiguration": {"stepPercent": 25.0, "stepBakeTimeInMinutes": 10}}),
    )
    .await;
    s.settled("ecs-svc/1", RolloutState::Completed).await;
    let blue = s.ips_of("ecs-svc-1").await;
    let production = Endpoints::watch(&s.ns, "web-blue");
    production.wait_for(&blue).await;

    s.register("nginx:1.28", 2).await;
    let svc = s.settled("ecs-svc/2", RolloutState::Completed).await;
    let green = s.ips_of("ecs-svc-2").await;
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
    let messages = Setup::service_messages(&svc);
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
    s.register("nginx:1.27", 1).await;
    s.apply_service(
        3,
        json!({"strategy": "BLUE_GREEN", "bakeTimeInMinutes": 600}),
    )
    .await;
    s.settled("ecs-svc/1", RolloutState::Completed).await;
    let blue = s.ips_of("ecs-svc-1").await;
    let production = Endpoints::watch(&s.ns, "web-blue");
    production.wait_for(&blue).await;

    s.register("nginx:1.28", 2).await;
    wait_for_within(
        &s.services,
        "web",
        |svc: Option<&Service>| {
            svc.and_then(|s| s.status.as_ref()?.deployments.first().cloned())
                .is_some_and(|d| {
                    d.lifecycle_stage == Some(ServiceDeploymentLifecycleStage::BakeTime)
                })
        },
        DEADLINE,
    )
    .await;
    let green = s.ips_of("ecs-svc-2").await;
    production.wait_for(&green).await;
    let switched = production.seen().len();

    let patch =
        json!({"metadata": {"annotations": {"ecs.operator.dev/stop-deployment": "ecs-svc/2"}}});
    s.services
        .patch("web", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    production.wait_for(&blue).await;
    let after = &production.seen()[switched..];
    assert_eq!(
        after,
        std::slice::from_ref(&blue),
        "straight back to all of blue"
    );
    let svc = wait_for_within(
        &s.services,
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
        DEADLINE,
    )
    .await;
    let st = svc.status.unwrap();
    assert_eq!(st.deployments[0].id, "ecs-svc/1");
    assert_eq!(st.task_definition.as_deref(), Some("web:1"));
    let degraded = st
        .conditions
        .iter()
        .find(|c| c.type_ == "Degraded")
        .unwrap();
    assert_eq!(degraded.status, "True", "{degraded:?}");
    assert!(s.ips_of("ecs-svc-2").await.is_empty(), "green scaled away");
    assert_eq!(
        s.ips_of("ecs-svc-1").await,
        blue,
        "blue's own tasks serve again"
    );
}

#[tokio::test]
async fn the_circuit_breaker_keeps_production_on_blue_and_returns_to_it_without_redeploying() {
    // Crashing tasks must not count as healthy before they crash (kwok crashes them within seconds).
    let s = setup_with("bg-breaker", Duration::from_secs(10)).await;
    s.register("nginx:1.27", 1).await;
    s.apply_service(
        3,
        json!({"strategy": "BLUE_GREEN",
            "deploymentCircuitBreaker": {"enable": true, "rollback": true}}),
    )
    .await;
    s.settled("ecs-svc/1", RolloutState::Completed).await;
    let blue = s.ips_of("ecs-svc-1").await;
    let production = Endpoints::watch(&s.ns, "web-blue");
    production.wait_for(&blue).await;

    // Revision 2 crashes wherever it runs.
    s.register("ecs-operator.test/crash", 2).await;
    let svc = wait_for_within(
        &s.services,
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
        Duration::from_secs(180),
    )
    .await;
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
    assert_eq!(s.ips_of("ecs-svc-1").await, blue);
}

/// The route `web-prod` as a user writes it: blue (web-blue) and green (web-green) backends of one rule.
fn production_route() -> kube::api::DynamicObject {
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
    let routes: Api<kube::api::DynamicObject> = Api::namespaced_with(
        s.services.clone().into_client(),
        &s.ns.name,
        &ecs_operator::traffic::httproute::api_resource(),
    );
    routes
        .create(&kube::api::PostParams::default(), &production_route())
        .await
        .expect("the Gateway API CRDs (cargo xtask cluster up installs them)");
    s.register("nginx:1.27", 1).await;
    let svc: Service = serde_json::from_value(json!({
        "apiVersion": "ecs.operator.dev/v1alpha1", "kind": "Service",
        "metadata": {"name": "web"},
        "spec": {"taskDefinition": "web", "desiredCount": 4,
            "deploymentConfiguration": {"strategy": "CANARY",
                "canaryConfiguration": {"canaryPercent": 5.0, "canaryBakeTimeInMinutes": 6}},
            "loadBalancers": [{"containerName": "web", "containerPort": 80, "targetGroupArn": BLUE_TG,
                "advancedConfiguration": {"alternateTargetGroupArn": GREEN_TG,
                    "productionListenerRule": "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener-rule/app/lb/1/2/web-prod"}}]}
    }))
    .unwrap();
    s.services
        .patch(
            "web",
            &PatchParams::apply("test").force(),
            &Patch::Apply(&svc),
        )
        .await
        .unwrap();
    s.settled("ecs-svc/1", RolloutState::Completed).await;
    let weights = |r: &kube::api::DynamicObject| -> Vec<i64> {
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
    let blue = s.ips_of("ecs-svc-1").await;
    let production = Endpoints::watch(&s.ns, "web-blue");
    production.wait_for(&blue).await;

    s.register("nginx:1.28", 2).await;
    wait_for_within(
        &s.services,
        "web",
        |svc: Option<&Service>| {
            svc.and_then(|s| s.status.as_ref()?.deployments.first().cloned())
                .is_some_and(|d| d.production_traffic_percent == Some(5.0))
        },
        DEADLINE,
    )
    .await;
    let route = wait_for_within(
        &routes,
        "web-prod",
        |r: Option<&kube::api::DynamicObject>| r.is_some_and(|r| weights(r) == vec![950, 50]),
        Duration::from_secs(30),
    )
    .await;
    assert_eq!(weights(&route), vec![950, 50]);
    // The canary's share is the route's: the production Service still shows all of blue, and the
    // alternate one green.
    assert_eq!(production.seen().last(), Some(&blue));
    s.settled("ecs-svc/2", RolloutState::Completed).await;
    let green = s.ips_of("ecs-svc-2").await;
    production.wait_for(&green).await;
    let route = routes.get("web-prod").await.unwrap();
    assert_eq!(
        weights(&route),
        vec![1000, 0],
        "back to the production Service, now green"
    );
    assert!(
        production
            .seen()
            .iter()
            .all(|ips| ips.is_subset(&blue) || ips.is_subset(&green)),
        "no endpoint mix: the route carries the split {:?}",
        production.seen()
    );
}

/// Lifecycle hooks: TaskDefinition `check` runs `image` (the hook's task).
impl Setup {
    async fn register_check(&self, image: &str) {
        let td: TaskDefinition = serde_json::from_value(json!({
            "apiVersion": "ecs.operator.dev/v1alpha1", "kind": "TaskDefinition",
            "metadata": {"name": "check"},
            "spec": {"containerDefinitions": [{"name": "check", "image": image}]}
        }))
        .unwrap();
        self.tds
            .patch(
                "check",
                &PatchParams::apply("test").force(),
                &Patch::Apply(&td),
            )
            .await
            .unwrap();
        wait_for(&self.tds, "check", |td: Option<&TaskDefinition>| {
            td.and_then(|t| t.status.as_ref()?.latest_revision) == Some(1)
        })
        .await;
    }

    /// A BLUE_GREEN service whose blue (ecs-svc/1, nginx:1.27) is COMPLETED and serving, with
    /// `hooks` as its lifecycleHooks from then on (so they run for ecs-svc/2); returns blue's IPs and
    /// a watch of production endpoints.
    async fn blue_with_hooks(&self, hooks: serde_json::Value) -> (BTreeSet<String>, Endpoints) {
        self.register("nginx:1.27", 1).await;
        self.apply_service(3, json!({"strategy": "BLUE_GREEN"}))
            .await;
        self.settled("ecs-svc/1", RolloutState::Completed).await;
        let blue = self.ips_of("ecs-svc-1").await;
        let production = Endpoints::watch(&self.ns, "web-blue");
        production.wait_for(&blue).await;
        self.apply_service(
            3,
            json!({"strategy": "BLUE_GREEN", "lifecycleHooks": hooks}),
        )
        .await;
        (blue, production)
    }

    /// Waits until ecs-svc/2 was rolled back to blue.
    async fn rolled_back(&self) -> Service {
        wait_for_within(
            &self.services,
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
            DEADLINE,
        )
        .await
    }

    async fn annotate(&self, key: &str, value: &str) {
        let patch = json!({"metadata": {"annotations": {key: value}}});
        self.services
            .patch("web", &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .unwrap();
    }
}

fn green_of(svc: &Service) -> ecs_operator::api::service::Deployment {
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
    s.register_check("ecs-operator.test/crash").await;
    let (blue, production) = s
        .blue_with_hooks(json!([{"hookTargetArn": "check", "lifecycleStages": ["POST_SCALE_UP"]}]))
        .await;

    s.register("nginx:1.28", 2).await;
    let svc = s.rolled_back().await;
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
    let messages = Setup::service_messages(&svc);
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
    assert_eq!(s.ips_of("ecs-svc-1").await, blue);
}

#[tokio::test]
async fn a_hook_task_exiting_0_lets_the_deployment_complete() {
    let s = setup("hook-ok").await;
    s.register_check("ecs-operator.test/succeed").await;
    let (_, production) = s
        .blue_with_hooks(json!([{"hookTargetArn": "check", "lifecycleStages": ["POST_SCALE_UP"]}]))
        .await;

    s.register("nginx:1.28", 2).await;
    let svc = s.settled("ecs-svc/2", RolloutState::Completed).await;
    production.wait_for(&s.ips_of("ecs-svc-2").await).await;
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
    let messages = Setup::service_messages(&svc);
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
    let (blue, production) = s
        .blue_with_hooks(
            json!([{"targetType": "PAUSE", "lifecycleStages": ["POST_TEST_TRAFFIC_SHIFT"]}]),
        )
        .await;
    s.register("nginx:1.28", 2).await;
    let svc = wait_for_within(
        &s.services,
        "web",
        |svc: Option<&Service>| {
            svc.and_then(|s| s.status.as_ref()?.deployments.first().cloned())
                .is_some_and(|d| {
                    d.id == "ecs-svc/2"
                        && d.lifecycle_stage
                            == Some(ServiceDeploymentLifecycleStage::PostTestTrafficShift)
                        && !d.lifecycle_hook_details.is_empty()
                })
        },
        DEADLINE,
    )
    .await;
    let hook = &green_of(&svc).lifecycle_hook_details[0];
    assert_eq!(
        serde_json::to_value(hook.status).unwrap(),
        json!("AWAITING_ACTION")
    );
    let messages = Setup::service_messages(&svc);
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
    s.annotate("ecs.operator.dev/lifecycle-hook-action", "ecs-svc/2=GO")
        .await;
    let svc = wait_for_within(
        &s.services,
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

    s.annotate(
        "ecs.operator.dev/lifecycle-hook-action",
        "ecs-svc/2/POST_TEST_TRAFFIC_SHIFT=CONTINUE",
    )
    .await;
    let svc = s.settled("ecs-svc/2", RolloutState::Completed).await;
    let green = s.ips_of("ecs-svc-2").await;
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
    s.annotate(
        "ecs.operator.dev/lifecycle-hook-action",
        "ecs-svc/2/POST_TEST_TRAFFIC_SHIFT=ROLLBACK",
    )
    .await;
    let svc = s.rolled_back().await;
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
    let (blue, production) = s
        .blue_with_hooks(json!([
            {"targetType": "PAUSE", "lifecycleStages": ["POST_SCALE_UP"],
                "timeoutConfiguration": {"timeoutInMinutes": 1, "action": "CONTINUE"}},
            {"targetType": "PAUSE", "lifecycleStages": ["POST_TEST_TRAFFIC_SHIFT"],
                "timeoutConfiguration": {"timeoutInMinutes": 1, "action": "ROLLBACK"}}
        ]))
        .await;
    s.register("nginx:1.28", 2).await;
    let svc = wait_for_within(
        &s.services,
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
        Duration::from_secs(240),
    )
    .await;
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
    let messages = Setup::service_messages(&svc);
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
