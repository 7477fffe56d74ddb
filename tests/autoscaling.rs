//! Service Auto Scaling on the local control plane: a HorizontalPodAutoscaler on CPU scales an ECS Service
//! through its scale subresource. kwok simulates each task's CPU use from a pod annotation and
//! metrics-server serves it as `metrics.k8s.io` (docs/test-cluster.md, docs/services.md).

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use ecs_operator::api::task::LastStatus;
use ecs_operator::api::{Service, Task, TaskDefinition};
use futures::StreamExt;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::json;
use support::{Operator, TestNamespace, client, install_crds, wait_for, wait_for_within};

/// The pod annotation kwok reads each container's simulated CPU use from (xtask/kwok/usage-from-annotation.yaml).
const USAGE_CPU: &str = "kwok.x-k8s.io/usage-cpu";

/// Scaling waits for metrics-server (two scrapes, 10 s apart) and the HPA controller (every 5 s), then
/// for the tasks to start or stop.
const SCALE_DEADLINE: Duration = Duration::from_secs(150);

/// Keeps the simulated CPU use of every pod of the service at the current load, new pods included: the
/// load a load generator would put on each task. Stops when dropped.
struct Load {
    cpu: Arc<Mutex<String>>,
    pods: Api<Pod>,
    selector: String,
    task: tokio::task::JoinHandle<()>,
}

impl Load {
    fn start(pods: Api<Pod>, service: &str, cpu: &str) -> Self {
        let cpu = Arc::new(Mutex::new(cpu.to_string()));
        let selector = format!("ecs.operator.dev/service={service}");
        let task = {
            let (cpu, pods, selector) = (cpu.clone(), pods.clone(), selector.clone());
            tokio::spawn(async move {
                let config = watcher::Config::default().labels(&selector);
                let mut events = watcher(pods.clone(), config)
                    .default_backoff()
                    .applied_objects()
                    .boxed();
                // Every change to a pod comes back here, so a pod annotated with a load that has since
                // changed is annotated again.
                while let Some(event) = events.next().await {
                    if let Ok(pod) = event {
                        let want = cpu.lock().unwrap().clone();
                        annotate(&pods, &pod, &want).await;
                    }
                }
            })
        };
        Self {
            cpu,
            pods,
            selector,
            task,
        }
    }

    /// Changes the load and applies it to every pod at once.
    async fn set(&self, cpu: &str) {
        *self.cpu.lock().unwrap() = cpu.to_string();
        let pods = self
            .pods
            .list(&ListParams::default().labels(&self.selector))
            .await
            .unwrap();
        for pod in &pods.items {
            annotate(&self.pods, pod, cpu).await;
        }
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn annotate(pods: &Api<Pod>, pod: &Pod, cpu: &str) {
    let current = pod
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(USAGE_CPU));
    if current.map(String::as_str) == Some(cpu) || pod.metadata.deletion_timestamp.is_some() {
        return;
    }
    let name = pod.metadata.name.as_deref().unwrap();
    let patch = json!({"metadata": {"annotations": {USAGE_CPU: cpu}}});
    // A pod deleted meanwhile is no longer load.
    let _ = pods
        .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await;
}

/// Tasks of the service that are RUNNING and meant to stay so.
async fn running(tasks: &Api<Task>, service: &str) -> usize {
    let list = tasks
        .list(&ListParams::default().labels(&format!("ecs.operator.dev/service={service}")))
        .await
        .unwrap();
    list.items
        .iter()
        .filter(|t| {
            t.status.as_ref().and_then(|s| s.last_status) == Some(LastStatus::Running)
                && t.spec.desired_status == Default::default()
        })
        .count()
}

/// desiredCount is `count` and so many tasks are RUNNING.
fn scaled_to(count: i32) -> impl Fn(Option<&Service>) -> bool {
    move |s: Option<&Service>| {
        s.is_some_and(|s| {
            s.spec.desired_count == Some(count)
                && s.status
                    .as_ref()
                    .is_some_and(|st| st.running_count == count && st.desired_count == Some(count))
        })
    }
}

#[tokio::test]
async fn hpa_on_cpu_scales_a_service_out_and_back_in() {
    let client = client().await;
    install_crds(&client).await;
    let ns = TestNamespace::new(&client, "hpa").await;
    let _operator = Operator::start_with(
        &client,
        &ns.name,
        ecs_operator::context::Config {
            healthy_after_running: Duration::from_secs(1),
            ..Default::default()
        },
    );
    let tds: Api<TaskDefinition> = ns.api();
    let services: Api<Service> = ns.api();
    let tasks: Api<Task> = ns.api();
    let pods: Api<Pod> = ns.api();
    let hpas: Api<HorizontalPodAutoscaler> = ns.api();
    let apply = PatchParams::apply("test").force();

    // 256 CPU units: a quarter vCPU, the pod's CPU request that utilization is measured against.
    let td: TaskDefinition = serde_json::from_value(json!({
        "apiVersion": "ecs.operator.dev/v1alpha1", "kind": "TaskDefinition",
        "metadata": {"name": "web"},
        "spec": {"cpu": "256", "memory": "512",
                 "containerDefinitions": [{"name": "web", "image": "nginx:1.27"}]}
    }))
    .unwrap();
    tds.patch("web", &apply, &Patch::Apply(&td)).await.unwrap();
    let svc: Service = serde_json::from_value(json!({
        "apiVersion": "ecs.operator.dev/v1alpha1", "kind": "Service",
        "metadata": {"name": "web"},
        "spec": {"taskDefinition": "web", "desiredCount": 1}
    }))
    .unwrap();
    services
        .patch("web", &apply, &Patch::Apply(&svc))
        .await
        .unwrap();
    let svc = wait_for_within(&services, "web", scaled_to(1), SCALE_DEADLINE).await;
    let selector = svc.status.unwrap().selector.expect("status.selector");

    let task_pods = pods
        .list(&ListParams::default().labels(&selector))
        .await
        .unwrap();
    assert_eq!(
        task_pods.items.len(),
        1,
        "the selector finds the task's pod"
    );
    let requests = task_pods.items[0]
        .spec
        .as_ref()
        .and_then(|s| s.resources.as_ref())
        .and_then(|r| r.requests.as_ref())
        .and_then(|r| r.get("cpu"))
        .map(|q| q.0.clone());
    assert_eq!(
        requests.as_deref(),
        Some("250m"),
        "the task size is the pod's CPU request"
    );

    // Each task idles at 10m: 4% of its request.
    let load = Load::start(pods.clone(), "web", "10m");
    let hpa: HorizontalPodAutoscaler = serde_json::from_value(json!({
        "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "web"},
        "spec": {
            "scaleTargetRef": {"apiVersion": "ecs.operator.dev/v1alpha1", "kind": "Service", "name": "web"},
            "minReplicas": 1, "maxReplicas": 4,
            "metrics": [{"type": "Resource", "resource": {
                "name": "cpu", "target": {"type": "Utilization", "averageUtilization": 50}}}],
            // ECS's scale-in cooldown, shortened for the test.
            "behavior": {"scaleDown": {"stabilizationWindowSeconds": 5}}
        }
    }))
    .unwrap();
    hpas.patch("web", &apply, &Patch::Apply(&hpa))
        .await
        .unwrap();

    // The HPA reads the metric through metrics.k8s.io and reports it.
    let hpa = wait_for_within(
        &hpas,
        "web",
        |h: Option<&HorizontalPodAutoscaler>| cpu_utilization(h).is_some(),
        SCALE_DEADLINE,
    )
    .await;
    let idle = cpu_utilization(Some(&hpa)).unwrap();
    assert!(idle < 50, "idle tasks are below the target: {idle}%");
    assert_eq!(
        services.get("web").await.unwrap().spec.desired_count,
        Some(1),
        "below the target the HPA keeps the minimum"
    );

    // 500m per task: 200% of the request, four times the target → the maximum of 4 tasks.
    load.set("500m").await;
    wait_for_within(&services, "web", scaled_to(4), SCALE_DEADLINE).await;
    assert_eq!(running(&tasks, "web").await, 4);
    // The HPA's status shows the four tasks and the load above the target.
    wait_for_within(
        &hpas,
        "web",
        |h: Option<&HorizontalPodAutoscaler>| {
            cpu_utilization(h).is_some_and(|u| u > 50)
                && h.and_then(|h| h.status.as_ref()?.current_replicas) == Some(4)
        },
        SCALE_DEADLINE,
    )
    .await;

    // Back to idle → scale in to the minimum.
    load.set("10m").await;
    wait_for_within(&services, "web", scaled_to(1), SCALE_DEADLINE).await;
    let hpa = wait_for(&hpas, "web", |h: Option<&HorizontalPodAutoscaler>| {
        h.and_then(|h| h.status.as_ref())
            .map(|s| s.desired_replicas)
            == Some(1)
    })
    .await;
    assert!(
        hpa.status
            .unwrap()
            .conditions
            .unwrap_or_default()
            .iter()
            .any(|c| c.type_ == "ScalingActive" && c.status == "True"),
        "the HPA can read the Service's scale and metrics"
    );
    assert_eq!(running(&tasks, "web").await, 1);
}

/// The CPU utilization the HPA last measured, from its status.
fn cpu_utilization(hpa: Option<&HorizontalPodAutoscaler>) -> Option<i32> {
    hpa?.status
        .as_ref()?
        .current_metrics
        .as_ref()?
        .iter()
        .find_map(|m| {
            let r = m.resource.as_ref()?;
            (r.name == "cpu").then_some(r.current.average_utilization)?
        })
}
