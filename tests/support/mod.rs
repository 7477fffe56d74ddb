//! Shared helpers for the integration tests: they run against the local control plane
//! (`cargo xtask cluster up`; `cargo xtask test` sets KUBECONFIG), each test in its own namespace.
#![allow(dead_code)] // each test binary uses a different subset

pub mod cluster;
pub mod endpoints;
pub mod invariants;
pub mod process;
pub mod setup;

use std::time::Duration;

use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::wait::{Condition, await_condition, conditions};
use kube::{Client, Resource};
use serde::de::DeserializeOwned;

/// Label on every namespace a test creates, so leftovers can be found and deleted.
pub const TEST_LABEL: &str = "ecs.operator.dev/test";

/// Default deadline for anything the cluster has to do.
pub const DEADLINE: Duration = Duration::from_secs(60);

/// A client for the test cluster. Fails loudly (never skips) when no cluster is configured.
pub async fn client() -> Client {
    assert!(
        std::env::var_os("KUBECONFIG").is_some(),
        "integration tests need the local cluster: run `cargo xtask test`, or `eval \"$(cargo xtask cluster up | head -n 2)\"` first"
    );
    Client::try_default()
        .await
        .expect("a client for the cluster in KUBECONFIG")
}

/// Installs (server-side apply, idempotent) every CRD and waits until each is Established.
pub async fn install_crds(client: &Client) {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    let pp = PatchParams::apply("ecs-operator-tests").force();
    for (_, crd) in ecs_operator::crd::all() {
        let name = crd.meta().name.clone().unwrap();
        api.patch(&name, &pp, &Patch::Apply(&crd))
            .await
            .unwrap_or_else(|e| panic!("CRD {name} rejected by the API server: {e}"));
        wait_for(&api, &name, conditions::is_crd_established()).await;
    }
}

/// A namespace of its own for one test, deleted (with everything in it) when dropped.
pub struct TestNamespace {
    pub name: String,
    client: Client,
}

impl TestNamespace {
    /// Creates `<prefix>-<random>` and waits for its default ServiceAccount (pods need it).
    pub async fn new(client: &Client, prefix: &str) -> Self {
        let name = format!("{prefix}-{:08x}", rand_u32());
        let ns: Namespace = serde_json::from_value(serde_json::json!({
            "metadata": { "name": name, "labels": { TEST_LABEL: "true" } }
        }))
        .unwrap();
        Api::<Namespace>::all(client.clone())
            .create(&PostParams::default(), &ns)
            .await
            .expect("create test namespace");
        let sas: Api<ServiceAccount> = Api::namespaced(client.clone(), &name);
        wait_for(&sas, "default", |sa: Option<&ServiceAccount>| sa.is_some()).await;
        Self {
            name,
            client: client.clone(),
        }
    }

    pub fn api<K>(&self) -> Api<K>
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope>,
        <K as Resource>::DynamicType: Default,
    {
        Api::namespaced(self.client.clone(), &self.name)
    }
}

impl Drop for TestNamespace {
    fn drop(&mut self) {
        // Best effort and asynchronous on the server: the namespace controller removes the contents.
        let api: Api<Namespace> = Api::all(self.client.clone());
        let name = self.name.clone();
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            handle.spawn(async move {
                let _ = api.delete(&name, &DeleteParams::background()).await;
            });
        }
    }
}

/// Waits until `condition` holds for the named object, or fails the test after [`DEADLINE`].
pub async fn wait_for<K>(api: &Api<K>, name: &str, condition: impl Condition<K>) -> K
where
    K: Clone + std::fmt::Debug + DeserializeOwned + Resource + Send + 'static,
{
    wait_for_within(api, name, condition, DEADLINE).await
}

/// [`wait_for`] with its own deadline. A watch that breaks (e.g. `410 Expired` after an etcd
/// compaction) is started again: only the deadline ends the wait.
pub async fn wait_for_within<K>(
    api: &Api<K>,
    name: &str,
    condition: impl Condition<K>,
    deadline: Duration,
) -> K
where
    K: Clone + std::fmt::Debug + DeserializeOwned + Resource + Send + 'static,
{
    let until = tokio::time::Instant::now() + deadline;
    let condition = &condition;
    loop {
        let watch = await_condition(api.clone(), name, |o: Option<&K>| {
            condition.matches_object(o)
        });
        match tokio::time::timeout_at(until, watch).await {
            Ok(Ok(Some(obj))) => return obj,
            Ok(Ok(None)) => panic!("{name} was deleted while waiting for it"),
            Ok(Err(_)) => continue,
            Err(_) => {
                let last = api.get_opt(name).await.ok().flatten();
                panic!("timed out after {deadline:?} waiting for {name}; last seen: {last:#?}")
            }
        }
    }
}

/// Waits until the named object is gone, or fails the test after [`DEADLINE`]; re-watches like
/// [`wait_for_within`].
pub async fn wait_gone<K>(api: &Api<K>, name: &str)
where
    K: Clone + std::fmt::Debug + DeserializeOwned + Resource + Send + 'static,
{
    let until = tokio::time::Instant::now() + DEADLINE;
    loop {
        let gone = await_condition(api.clone(), name, |o: Option<&K>| o.is_none());
        match tokio::time::timeout_at(until, gone).await {
            Ok(Ok(_)) => return,
            Ok(Err(_)) => continue,
            Err(_) => {
                let last = api.get_opt(name).await.ok().flatten();
                panic!(
                    "timed out after {DEADLINE:?} waiting for {name} to be deleted; last seen: {last:#?}"
                )
            }
        }
    }
}

/// Parses a multi-document YAML string into JSON values (empty documents skipped).
pub fn yaml_documents(yaml: &str) -> Vec<serde_json::Value> {
    use serde::Deserialize;
    serde_yaml_ng::Deserializer::from_str(yaml)
        .map(|doc| serde_json::Value::deserialize(doc).expect("valid YAML"))
        .filter(|v| !v.is_null())
        .collect()
}

fn rand_u32() -> u32 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos(),
    );
    h.finish() as u32
}

/// The operator's controllers running in this test process, watching one namespace only (so tests run
/// in parallel without seeing each other). Stopped when dropped.
///
/// It cannot crash: aborting its outer task leaves the controllers' spawned tasks running until they
/// shut down gracefully. A test that needs a crash runs the real binary instead and SIGKILLs it
/// ([`process::OperatorProcess`]).
pub struct Operator {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    handle: Option<tokio::task::JoinHandle<()>>,
    /// Its metrics and readiness, as /metrics and /readyz would show them.
    pub admin: std::sync::Arc<ecs_operator::admin::Admin>,
}

impl Operator {
    pub fn start(client: &Client, namespace: &str) -> Self {
        Self::start_with(client, namespace, ecs_operator::context::Config::default())
    }

    pub fn start_with(
        client: &Client,
        namespace: &str,
        config: ecs_operator::context::Config,
    ) -> Self {
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let admin = std::sync::Arc::new(ecs_operator::admin::Admin::default());
        let options = ecs_operator::run::Options {
            namespaces: vec![namespace.to_string()],
            config,
            admin: admin.clone(),
        };
        let admin_client = client.clone();
        let handle = tokio::spawn(async move {
            let client = operator_client(admin_client).await;
            ecs_operator::run::run(client, options, async move {
                let _ = stopped.await;
            })
            .await
        });
        Self {
            stop: Some(stop),
            handle: Some(handle),
            admin,
        }
    }
}

impl Operator {
    /// Service reconciles finished so far.
    pub fn service_reconciles(&self) -> u64 {
        self.admin
            .metrics
            .reconciles
            .get_or_create(&ecs_operator::admin::ControllerLabels {
                controller: "service",
            })
            .get()
    }

    /// Waits until a Service reconcile has finished since [`Self::service_reconciles`] was `before`
    /// and none is in flight; fails the test at `deadline`. Polls: the counters are in memory.
    pub async fn service_pass_after(&self, before: u64, deadline: tokio::time::Instant) {
        while self.service_reconciles() <= before || self.admin.metrics.reconciles_in_flight() > 0 {
            assert!(tokio::time::Instant::now() < deadline, "no reconcile");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(h) = self.handle.take() {
            h.abort();
        }
    }
}

/// Environment variable naming the identity the in-process operator runs as, e.g. the chart's
/// ServiceAccount `system:serviceaccount:ecs-operator-system:ecs-operator` (`cargo xtask test` runs the
/// task and service tests again that way, to prove the chart's RBAC is enough).
pub const OPERATOR_IDENTITY: &str = "ECS_TEST_OPERATOR_IDENTITY";

/// The operator's client: the test's admin client, or one impersonating [`OPERATOR_IDENTITY`].
async fn operator_client(admin: Client) -> Client {
    let Ok(user) = std::env::var(OPERATOR_IDENTITY) else {
        return admin;
    };
    let mut config = kube::Config::infer()
        .await
        .expect("the cluster in KUBECONFIG");
    config.auth_info.impersonate = Some(user);
    Client::try_from(config).expect("an impersonating client")
}

/// Makes a kwok-simulated container of `pod` exit with `exit_code` (all containers when `container` is
/// None), through kwok's pod-container-running-failed chaos stage.
pub async fn make_container_exit(
    pods: &Api<k8s_openapi::api::core::v1::Pod>,
    pod: &str,
    container: Option<&str>,
    exit_code: i32,
) {
    let stage = "pod-container-running-failed.stage.kwok.x-k8s.io";
    let mut annotations = serde_json::json!({
        format!("{stage}/exit-code"): exit_code.to_string(),
        format!("{stage}/delay"): "0ms",
        format!("{stage}/jitter-delay"): "0ms",
    });
    if let Some(c) = container {
        annotations[format!("{stage}/container-name")] = c.into();
    }
    let patch =
        serde_json::json!({"metadata": {"annotations": annotations, "labels": {stage: "true"}}});
    pods.patch(pod, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("label the pod for the kwok failure stage");
}
