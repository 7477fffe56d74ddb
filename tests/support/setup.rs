//! One test's world: a namespace of its own, the operator watching it, the APIs a test reads and
//! writes, and task definitions and services applied from JSON bodies as a user would write them.
//!
//! `Setup::start("prefix").await` is the usual start; builder options say what differs (the operator's
//! timing, no operator at all), e.g. `Setup::start("bg").deployment_minute(Duration::from_secs(1)).await`.

use std::collections::BTreeSet;
use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::time::Duration;

use ecs_operator::api::{Service, Task, TaskDefinition};
use ecs_operator::context::Config;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, DynamicObject, ListParams, Patch, PatchParams};
use kube::runtime::wait::Condition;
use kube::{Client, Resource};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;

use super::{Operator, TestNamespace, client, install_crds, wait_for, wait_for_within};

/// The field manager of everything a test applies (the user's manager, not the operator's).
const MANAGER: &str = "test";

pub struct Setup {
    pub client: Client,
    pub ns: TestNamespace,
    pub tds: Api<TaskDefinition>,
    pub services: Api<Service>,
    pub tasks: Api<Task>,
    pub pods: Api<Pod>,
    /// The operator in this process; None without one (or once a test has taken it away).
    pub operator: Option<Operator>,
}

/// What a [`Setup`] starts with; `.await` it to start.
pub struct SetupBuilder {
    prefix: String,
    /// The in-process operator's configuration, or None for no operator.
    config: Option<Config>,
}

impl Setup {
    /// A namespace `<prefix>-<random>` and the operator watching it, with tasks without a health check
    /// healthy 1 s after RUNNING (ECS: 40 s) so that tests do not wait for them.
    pub fn start(prefix: &str) -> SetupBuilder {
        SetupBuilder {
            prefix: prefix.to_string(),
            config: Some(Config {
                healthy_after_running: Duration::from_secs(1),
                ..Default::default()
            }),
        }
    }
}

impl SetupBuilder {
    /// How long a task without a health check must run to count as healthy.
    pub fn healthy_after_running(self, after: Duration) -> Self {
        self.config(|c| Config {
            healthy_after_running: after,
            ..c
        })
    }

    /// How long one ECS minute of bake time and hook timeouts lasts (`--deployment-minute-seconds`).
    pub fn deployment_minute(self, minute: Duration) -> Self {
        self.config(|c| Config {
            deployment_minute: minute,
            ..c
        })
    }

    /// Any other change to the operator's configuration.
    pub fn config(mut self, change: impl FnOnce(Config) -> Config) -> Self {
        self.config = self.config.map(change);
        self
    }

    /// No operator in this process: the test runs one of its own (a separate process), or none.
    pub fn without_operator(mut self) -> Self {
        self.config = None;
        self
    }

    async fn run(self) -> Setup {
        let client = client().await;
        install_crds(&client).await;
        let ns = TestNamespace::new(&client, &self.prefix).await;
        let operator = self
            .config
            .map(|config| Operator::start_with(&client, &ns.name, config));
        Setup {
            tds: ns.api(),
            services: ns.api(),
            tasks: ns.api(),
            pods: ns.api(),
            ns,
            operator,
            client,
        }
    }
}

impl IntoFuture for SetupBuilder {
    type Output = Setup;
    type IntoFuture = Pin<Box<dyn Future<Output = Setup> + Send>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.run())
    }
}

/// A task definition spec of one container `web` running `image`, listening on port 80.
pub fn td_spec(image: &str) -> serde_json::Value {
    json!({"containerDefinitions": [{"name": "web", "image": image, "portMappings": [{"containerPort": 80}]}]})
}

impl Setup {
    /// Applies task definition `name` with `spec` and waits until it has registered `revision`.
    pub async fn register(&self, name: &str, spec: serde_json::Value, revision: i64) {
        let td: TaskDefinition = serde_json::from_value(json!({
            "apiVersion": "ecs.operator.dev/v1alpha1", "kind": "TaskDefinition",
            "metadata": {"name": name}, "spec": spec
        }))
        .unwrap();
        apply(&self.tds, name, &td).await;
        wait_for(&self.tds, name, move |td: Option<&TaskDefinition>| {
            td.and_then(|t| t.status.as_ref()?.latest_revision) == Some(revision)
        })
        .await;
    }

    /// Applies service `name` with `spec` (not waiting for anything).
    pub async fn apply_service(&self, name: &str, spec: serde_json::Value) {
        let svc: Service = serde_json::from_value(json!({
            "apiVersion": "ecs.operator.dev/v1alpha1", "kind": "Service",
            "metadata": {"name": name}, "spec": spec
        }))
        .unwrap();
        apply(&self.services, name, &svc).await;
    }

    /// Waits until service `name` satisfies `condition`, or fails the test after `within`.
    pub async fn wait_service(
        &self,
        name: &str,
        condition: impl Condition<Service>,
        within: Duration,
    ) -> Service {
        wait_for_within(&self.services, name, condition, within).await
    }

    /// Merge-patches `spec.desiredCount` of service `name`, as `kubectl patch` would.
    pub async fn scale(&self, name: &str, desired: i32) {
        let patch = json!({"spec": {"desiredCount": desired}});
        self.services
            .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .unwrap();
    }

    /// Merge-patches one annotation of service `name`.
    pub async fn annotate_service(&self, name: &str, key: &str, value: &str) {
        let patch = json!({"metadata": {"annotations": {key: value}}});
        self.services
            .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .unwrap();
    }

    /// IPs of the live (not terminating) pods matching `selector`.
    pub async fn pod_ips(&self, selector: &str) -> BTreeSet<String> {
        self.pods
            .list(&ListParams::default().labels(selector))
            .await
            .unwrap()
            .items
            .into_iter()
            .filter(|p| p.metadata.deletion_timestamp.is_none())
            .filter_map(|p| p.status?.pod_ip)
            .collect()
    }

    /// IPs of service `service`'s live pods, in order (to compare with [`Self::ready_endpoints`]).
    pub async fn service_pod_ips(&self, service: &str) -> Vec<String> {
        let ips = self
            .pod_ips(&format!("ecs.operator.dev/service={service}"))
            .await;
        ips.into_iter().collect()
    }

    /// IPs of the ready endpoints of the load balancer Service `lb`, in order (an address two slices
    /// show is there twice).
    pub async fn ready_endpoints(&self, lb: &str) -> Vec<String> {
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

    /// The namespace's Gateway API HTTPRoutes (untyped, as the operator reads them).
    pub fn routes(&self) -> Api<DynamicObject> {
        Api::namespaced_with(
            self.client.clone(),
            &self.ns.name,
            &ecs_operator::traffic::httproute::api_resource(),
        )
    }

    /// The in-process operator (the test started one).
    pub fn operator(&self) -> &Operator {
        self.operator
            .as_ref()
            .expect("the operator runs in this test")
    }
}

/// Server-side applies `object` as the test's field manager, taking over any field it sets.
async fn apply<K>(api: &Api<K>, name: &str, object: &K)
where
    K: Resource + Clone + std::fmt::Debug + DeserializeOwned + Serialize,
{
    api.patch(
        name,
        &PatchParams::apply(MANAGER).force(),
        &Patch::Apply(object),
    )
    .await
    .unwrap_or_else(|e| panic!("apply {name}: {e}"));
}

/// Steady: the service's status is of its current generation, Ready, and runs desiredCount tasks.
pub fn steady(s: Option<&Service>) -> bool {
    let Some(s) = s else { return false };
    let Some(st) = &s.status else { return false };
    st.observed_generation == s.metadata.generation
        && st
            .conditions
            .iter()
            .any(|c| c.type_ == "Ready" && c.status == "True")
        && st.running_count == s.spec.desired_count.unwrap_or(0)
}

/// The service's event messages, oldest first (status keeps them newest first).
pub fn service_messages(svc: &Service) -> Vec<String> {
    let mut m: Vec<String> = svc
        .status
        .iter()
        .flat_map(|s| &s.events)
        .map(|e| e.message.clone())
        .collect();
    m.reverse();
    m
}
