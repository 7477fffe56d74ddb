//! Many small services (`BENCH_SERVICES=500x4`): S Deployments of R replicas, then S ECS Services of R
//! tasks (one task definition), each created at once; the time until all S × R pods are Ready, and,
//! with the S services converged, the operator's reads per node update that concerns none of them.

use std::time::{Duration, Instant};

use anyhow::Result;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;

use crate::pods::{Pods, ready};
use crate::{DEADLINE, Env, IMAGE_1, Operator, drop_namespace, fresh_namespace, meters};

/// The node whose labels change: tainted, so that it runs no pod.
const SPARE: &str = "bench-spare";

/// `500x4` → (500, 4).
pub fn parse(spec: &str) -> Option<(usize, usize)> {
    let (s, r) = spec.split_once('x')?;
    Some((s.trim().parse().ok()?, r.trim().parse().ok()?))
}

/// One side's figures.
#[derive(Debug, Default)]
pub struct Many {
    pub time_to_all: f64,
    pub reads_per_node_update: Option<f64>,
    pub rss_at_all_mb: Option<f64>,
}

pub async fn deployments(env: &Env, services: usize, replicas: usize) -> Result<Many> {
    let ns = format!("bench-deploy-many-{services}x{replicas}");
    fresh_namespace(&env.client, &ns).await?;
    let pods = Pods::watch(&env.client, &ns);
    let api: Api<Deployment> = Api::namespaced(env.client.clone(), &ns);
    let t0 = Instant::now();
    for i in 0..services {
        let name = format!("web-{i}");
        let d: Deployment = serde_json::from_value(json!({
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": {"app": name}},
                "template": {"metadata": {"labels": {"app": name}},
                    "spec": {"containers": [{"name": "web", "image": IMAGE_1}]}}
            }
        }))?;
        api.patch(&name, &PatchParams::apply("bench"), &Patch::Apply(&d))
            .await?;
    }
    let done = pods
        .until(DEADLINE, |p| ready(p, None) >= services * replicas)
        .await?;
    let f = Many {
        time_to_all: (done - t0).as_secs_f64(),
        reads_per_node_update: Some(0.0),
        rss_at_all_mb: None,
    };
    drop(pods);
    drop_namespace(&env.client, &ns).await?;
    Ok(f)
}

pub async fn services(env: &Env, services: usize, tasks: usize) -> Result<Many> {
    let ns = format!("bench-ecs-many-{services}x{tasks}");
    fresh_namespace(&env.client, &ns).await?;
    let operator = Operator::start(env, &ns)?;
    let pid = operator.0.id();
    let pods = Pods::watch(&env.client, &ns);
    let tds: Api<ecs_operator::api::TaskDefinition> = Api::namespaced(env.client.clone(), &ns);
    let td = json!({"apiVersion": "ecs.operator.dev/v1alpha1", "kind": "TaskDefinition",
        "metadata": {"name": "web"},
        "spec": {"containerDefinitions": [{"name": "web", "image": IMAGE_1}]}});
    tds.patch("web", &PatchParams::apply("bench"), &Patch::Apply(td))
        .await?;
    crate::wait(DEADLINE, || async {
        Ok(tds
            .get("web")
            .await?
            .status
            .and_then(|s| s.latest_active_revision)
            == Some(1))
    })
    .await?;
    let api: Api<ecs_operator::api::Service> = Api::namespaced(env.client.clone(), &ns);
    let t0 = Instant::now();
    for i in 0..services {
        let name = format!("web-{i}");
        let svc = json!({"apiVersion": "ecs.operator.dev/v1alpha1", "kind": "Service",
            "metadata": {"name": name},
            "spec": {"taskDefinition": "web", "desiredCount": tasks,
                "deploymentConfiguration": {"maximumPercent": 200, "minimumHealthyPercent": 100}}});
        api.patch(&name, &PatchParams::apply("bench"), &Patch::Apply(svc))
            .await?;
    }
    let done = pods
        .until(DEADLINE, |p| ready(p, None) >= services * tasks)
        .await?;
    let mut f = Many {
        time_to_all: (done - t0).as_secs_f64(),
        ..Many::default()
    };
    f.rss_at_all_mb = Some(meters::process(pid)?.0);
    // Converged: every service's status counts its tasks.
    crate::wait(DEADLINE, || async {
        let list = api.list(&Default::default()).await?;
        Ok(list.items.len() == services
            && list.items.iter().all(|s| {
                s.status
                    .as_ref()
                    .is_some_and(|st| st.running_count as usize == tasks)
            }))
    })
    .await?;
    tokio::time::sleep(Duration::from_secs(5)).await;
    // A label on a node that runs no task (tainted: no pod goes there): no service can be affected.
    let nodes: Api<Node> = Api::all(env.client.clone());
    let spare: Node = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": SPARE, "annotations": {"kwok.x-k8s.io/node": "fake"}, "labels": {
            "kubernetes.io/hostname": SPARE, "type": "kwok", "topology.kubernetes.io/zone": "zone-a"}},
        "spec": {"taints": [{"key": "bench.ecs-operator.dev/spare", "effect": "NoSchedule"}]}
    }))?;
    match nodes.create(&PostParams::default(), &spare).await {
        Ok(_) => {}
        Err(kube::Error::Api(e)) if e.code == 409 => {}
        Err(e) => return Err(e.into()),
    }
    tokio::time::sleep(Duration::from_secs(5)).await;
    let r0 = meters::reads(&env.client).await?;
    tokio::time::sleep(Duration::from_secs(10)).await;
    let r1 = meters::reads(&env.client).await?;
    for i in 0..10 {
        let patch = json!({"metadata": {"labels": {"bench.ecs-operator.dev/tick": i.to_string()}}});
        nodes
            .patch(SPARE, &PatchParams::default(), &Patch::Merge(&patch))
            .await?;
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let r2 = meters::reads(&env.client).await?;
    let baseline = (r1 - r0) * 1.3;
    f.reads_per_node_update = Some(((r2 - r1 - baseline) / 10.0).max(0.0));
    nodes.delete(SPARE, &Default::default()).await?;
    drop(pods);
    drop(operator);
    drop_namespace(&env.client, &ns).await?;
    Ok(f)
}

/// The table rows of the scenario.
pub fn rows(services: usize, tasks: usize, d: &Many, e: &Many) -> String {
    let label = format!("{services}×{tasks}");
    let fmt = |v: Option<f64>, unit: &str| v.map_or("—".to_string(), |v| format!("{v:.1}{unit}"));
    let ratio = |d: f64, e: f64| {
        if d > 0.0 {
            format!("{:.2}×", e / d)
        } else {
            "—".into()
        }
    };
    format!(
        "| time until all tasks are ready ({}) | {label} | {:.1} s | {:.1} s | {} |\n\
         | operator reads per irrelevant node update | {label} | 0 | {} | — |\n\
         | operator RSS with all tasks running | {label} | — | {} | — |\n",
        services * tasks,
        d.time_to_all,
        e.time_to_all,
        ratio(d.time_to_all, e.time_to_all),
        fmt(e.reads_per_node_update, ""),
        fmt(e.rss_at_all_mb, " MB"),
    )
}
