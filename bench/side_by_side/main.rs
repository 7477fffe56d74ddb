//! The ECS Service side by side with the Deployment controller, on the local cluster: time to N ready
//! pods, replacement latency after a pod delete, rollout time, writes per pod started (from the API
//! server's audit log), idle writes, reads per node update, and the operator's memory and CPU.
//!
//! Run by `cargo xtask bench` (which starts a cluster of its own, builds the release binary and sets
//! the environment below); the results are printed as a Markdown table for docs/benchmarks.md.
//!
//! - `BENCH_OPERATOR`: the `ecs-operator` binary to run (a separate process, as in production).
//! - `BENCH_AUDIT_LOG`: the API server's audit log.
//! - `BENCH_SIZES`: comma-separated task counts (default `100,1000`).
//! - `BENCH_REPLACEMENTS`: pod deletes per size for the replacement latency (default 20).
//! - `BENCH_SERVICES`: `SxR`, many services: S Services of R tasks side by side with S Deployments of
//!   R replicas ([`many`]); not run when unset.

mod many;
mod meters;
mod pods;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Namespace, Node};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::{Client, Resource};
use serde_json::json;

use pods::{Pods, ready};

const IMAGE_1: &str = "registry.invalid/bench/web:1";
const IMAGE_2: &str = "registry.invalid/bench/web:2";
const DEADLINE: Duration = Duration::from_secs(600);
/// Extra kwok nodes, two per zone, so that N and a 100 % surge fit.
const BENCH_NODES: &[(&str, &str)] = &[
    ("bench-a1", "zone-a"),
    ("bench-a2", "zone-a"),
    ("bench-b1", "zone-b"),
    ("bench-b2", "zone-b"),
    ("bench-c1", "zone-c"),
    ("bench-c2", "zone-c"),
];

struct Env {
    client: Client,
    operator: PathBuf,
    audit_log: PathBuf,
    replacements: usize,
}

/// One controller's figures at one size.
#[derive(Default, Debug)]
struct Figures {
    time_to_n: f64,
    replace_p50_ms: f64,
    replace_p99_ms: f64,
    rollout: f64,
    /// Writes during the time-to-N phase, by resource.
    writes: BTreeMap<String, usize>,
    idle_writes: Option<usize>,
    reads_per_node_update: Option<f64>,
    rss_idle_mb: Option<f64>,
    rss_at_n_mb: Option<f64>,
    rss_peak_mb: Option<f64>,
    cpu_per_1000: Option<f64>,
}

#[tokio::main]
async fn main() -> Result<()> {
    if std::env::args().any(|a| a == "--help" || a == "-h") {
        eprintln!("run with `cargo xtask bench`");
        return Ok(());
    }
    let env = Env {
        client: Client::try_default().await?,
        operator: std::env::var_os("BENCH_OPERATOR")
            .context("BENCH_OPERATOR: the ecs-operator binary (cargo xtask bench sets it)")?
            .into(),
        audit_log: std::env::var_os("BENCH_AUDIT_LOG")
            .context("BENCH_AUDIT_LOG: the API server's audit log (cargo xtask bench sets it)")?
            .into(),
        replacements: std::env::var("BENCH_REPLACEMENTS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(20),
    };
    let sizes: Vec<usize> = std::env::var("BENCH_SIZES")
        .unwrap_or_else(|_| "100,1000".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    install_crds(&env.client).await?;
    add_nodes(&env.client).await?;
    let mut results = Vec::new();
    // BENCH_SERVICE_ONLY=1: the ECS Service alone, to compare the operator with itself quickly
    // (the ratios then mean nothing).
    let service_only = std::env::var_os("BENCH_SERVICE_ONLY").is_some_and(|v| !v.is_empty());
    for &n in &sizes {
        let deployment = if service_only {
            Figures::default()
        } else {
            eprintln!("== {n} tasks: Deployment");
            run_deployment(&env, n).await?
        };
        eprintln!("{deployment:?}");
        eprintln!("== {n} tasks: ECS Service");
        let ecs = run_service(&env, n).await?;
        eprintln!("{ecs:?}");
        results.push((n, deployment, ecs));
    }
    let mut out = table(&results);
    if let Some((s, r)) = std::env::var("BENCH_SERVICES")
        .ok()
        .and_then(|v| many::parse(&v))
    {
        eprintln!("== {s} × {r}: Deployments");
        let d = many::deployments(&env, s, r).await?;
        eprintln!("{d:?}");
        eprintln!("== {s} × {r}: ECS Services");
        let e = many::services(&env, s, r).await?;
        eprintln!("{e:?}");
        out.push_str(&many::rows(s, r, &d, &e));
    }
    print!("{out}");
    Ok(())
}

async fn install_crds(client: &Client) -> Result<()> {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    for (_, crd) in ecs_operator::crd::all() {
        let name = crd.meta().name.clone().unwrap_or_default();
        api.patch(
            &name,
            &PatchParams::apply("bench").force(),
            &Patch::Apply(&crd),
        )
        .await?;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    Ok(())
}

async fn add_nodes(client: &Client) -> Result<()> {
    let api: Api<Node> = Api::all(client.clone());
    for (i, (name, zone)) in BENCH_NODES.iter().enumerate() {
        let node: Node = serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "annotations": {"kwok.x-k8s.io/node": "fake"}, "labels": {
                "kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
                "topology.kubernetes.io/zone": zone, "type": "kwok"}},
            "spec": {"podCIDR": format!("10.245.{i}.0/24")},
            "status": {"allocatable": {"cpu": "1000", "memory": "4000Gi", "pods": "1000"},
                       "capacity": {"cpu": "1000", "memory": "4000Gi", "pods": "1000"}}
        }))?;
        match api.create(&PostParams::default(), &node).await {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 409 => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

async fn fresh_namespace(client: &Client, name: &str) -> Result<()> {
    let api: Api<Namespace> = Api::all(client.clone());
    let _ = api.delete(name, &DeleteParams::default()).await;
    let start = Instant::now();
    while api.get_opt(name).await?.is_some() {
        anyhow::ensure!(start.elapsed() < DEADLINE, "namespace {name} not deleted");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": name}}))?;
    api.create(&PostParams::default(), &ns).await?;
    Ok(())
}

async fn drop_namespace(client: &Client, name: &str) -> Result<()> {
    let api: Api<Namespace> = Api::all(client.clone());
    api.delete(name, &DeleteParams::default()).await?;
    let start = Instant::now();
    while api.get_opt(name).await?.is_some() {
        anyhow::ensure!(start.elapsed() < DEADLINE, "namespace {name} not deleted");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Ok(())
}

async fn run_deployment(env: &Env, n: usize) -> Result<Figures> {
    let ns = format!("bench-deploy-{n}");
    fresh_namespace(&env.client, &ns).await?;
    let pods = Pods::watch(&env.client, &ns);
    let api: Api<Deployment> = Api::namespaced(env.client.clone(), &ns);
    let deployment = |image: &str| -> Result<Deployment> {
        Ok(serde_json::from_value(json!({
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
            "spec": {
                "replicas": n,
                "selector": {"matchLabels": {"app": "web"}},
                "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "100%", "maxUnavailable": 0}},
                "template": {"metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{"name": "web", "image": image}]}}
            }
        }))?)
    };
    let mut f = Figures::default();
    let (wall0, t0) = (Timestamp::now(), Instant::now());
    api.patch(
        "web",
        &PatchParams::apply("bench"),
        &Patch::Apply(&deployment(IMAGE_1)?),
    )
    .await?;
    let done = pods.until(DEADLINE, |p| ready(p, None) >= n).await?;
    f.time_to_n = (done - t0).as_secs_f64();
    f.writes = meters::writes(
        &env.audit_log,
        "kube-controller-manager",
        &[&ns],
        wall0,
        Timestamp::now(),
    )?;
    (f.replace_p50_ms, f.replace_p99_ms) = replacements(env, &ns, &pods, n).await?;
    let t0 = Instant::now();
    api.patch(
        "web",
        &PatchParams::apply("bench"),
        &Patch::Apply(&deployment(IMAGE_2)?),
    )
    .await?;
    let done = pods
        .until(DEADLINE, |p| {
            ready(p, Some(IMAGE_2)) >= n && p.values().all(|p| p.image == IMAGE_2)
        })
        .await?;
    f.rollout = (done - t0).as_secs_f64();
    drop(pods);
    drop_namespace(&env.client, &ns).await?;
    Ok(f)
}

/// The operator as its own process, watching one namespace.
struct Operator(Child);

impl Operator {
    fn start(env: &Env, ns: &str) -> Result<Self> {
        Ok(Operator(
            Command::new(&env.operator)
                .args(["run", "--namespace", ns, "--admin-address", "127.0.0.1:0"])
                // Healthy as soon as RUNNING, like a Deployment's minReadySeconds 0 (ECS waits 40 s).
                .args([
                    "--healthy-after-running-seconds",
                    "0",
                    "--log-level",
                    "warn",
                ])
                .stdout(Stdio::null())
                .stderr(Stdio::inherit())
                .spawn()
                .context("starting the operator")?,
        ))
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn run_service(env: &Env, n: usize) -> Result<Figures> {
    let ns = format!("bench-ecs-{n}");
    fresh_namespace(&env.client, &ns).await?;
    let operator = Operator::start(env, &ns)?;
    let pid = operator.0.id();
    let pods = Pods::watch(&env.client, &ns);
    let td = |image: &str| {
        json!({"apiVersion": "ecs.operator.dev/v1alpha1", "kind": "TaskDefinition",
            "metadata": {"name": "web"},
            "spec": {"containerDefinitions": [{"name": "web", "image": image}]}})
    };
    let tds: Api<ecs_operator::api::TaskDefinition> = Api::namespaced(env.client.clone(), &ns);
    tds.patch(
        "web",
        &PatchParams::apply("bench"),
        &Patch::Apply(td(IMAGE_1)),
    )
    .await?;
    wait(DEADLINE, || async {
        Ok(tds
            .get("web")
            .await?
            .status
            .and_then(|s| s.latest_active_revision)
            == Some(1))
    })
    .await?;
    let mut f = Figures::default();
    let (rss0, cpu0) = meters::process(pid)?;
    f.rss_idle_mb = Some(rss0);
    let services: Api<ecs_operator::api::Service> = Api::namespaced(env.client.clone(), &ns);
    let service = json!({"apiVersion": "ecs.operator.dev/v1alpha1", "kind": "Service",
        "metadata": {"name": "web"},
        "spec": {"taskDefinition": "web", "desiredCount": n,
            "deploymentConfiguration": {"maximumPercent": 200, "minimumHealthyPercent": 100}}});
    let (wall0, t0) = (Timestamp::now(), Instant::now());
    services
        .patch("web", &PatchParams::apply("bench"), &Patch::Apply(service))
        .await?;
    let done = pods.until(DEADLINE, |p| ready(p, None) >= n).await?;
    f.time_to_n = (done - t0).as_secs_f64();
    let (rss_n, cpu_n) = meters::process(pid)?;
    f.rss_at_n_mb = Some(rss_n);
    f.cpu_per_1000 = Some((cpu_n - cpu0) / n as f64 * 1000.0);
    // The service's own status catches up after the last pod: count its writes once it has.
    wait(DEADLINE, || async {
        Ok(services
            .get("web")
            .await?
            .status
            .is_some_and(|s| s.running_count as usize == n))
    })
    .await?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    f.writes = meters::writes(
        &env.audit_log,
        "ecs-operator/",
        &[&ns],
        wall0,
        Timestamp::now(),
    )?;

    // Idle: nothing to do, nothing written.
    let idle_from = Timestamp::now();
    tokio::time::sleep(Duration::from_secs(20)).await;
    let idle = meters::writes(
        &env.audit_log,
        "ecs-operator/",
        &[&ns],
        idle_from,
        Timestamp::now(),
    )?;
    f.idle_writes = Some(idle.values().sum());

    // Reads per node update that concerns no service: a label nobody selects on.
    let nodes: Api<Node> = Api::all(env.client.clone());
    let r0 = meters::reads(&env.client).await?;
    tokio::time::sleep(Duration::from_secs(10)).await;
    let r1 = meters::reads(&env.client).await?;
    for i in 0..10 {
        let patch = json!({"metadata": {"labels": {"bench.ecs-operator.dev/tick": i.to_string()}}});
        nodes
            .patch("node-a1", &PatchParams::default(), &Patch::Merge(&patch))
            .await?;
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let r2 = meters::reads(&env.client).await?;
    // The bench's own reads are the two metrics GETs (not counted: /metrics is no resource).
    let baseline = (r1 - r0) * 1.3;
    f.reads_per_node_update = Some(((r2 - r1 - baseline) / 10.0).max(0.0));

    (f.replace_p50_ms, f.replace_p99_ms) = replacements(env, &ns, &pods, n).await?;
    let t0 = Instant::now();
    tds.patch(
        "web",
        &PatchParams::apply("bench"),
        &Patch::Apply(td(IMAGE_2)),
    )
    .await?;
    let done = pods
        .until(DEADLINE, |p| {
            ready(p, Some(IMAGE_2)) >= n && p.values().all(|p| p.image == IMAGE_2)
        })
        .await?;
    f.rollout = (done - t0).as_secs_f64();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    f.rss_peak_mb = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse::<f64>().ok())
        .map(|kb| kb / 1024.0);
    drop(pods);
    drop(operator);
    drop_namespace(&env.client, &ns).await?;
    Ok(f)
}

/// Deletes `env.replacements` ready pods one after another; for each, the time from the delete to
/// the replacement pod's first sight. Returns p50 and p99 in ms.
async fn replacements(env: &Env, ns: &str, pods: &Pods, n: usize) -> Result<(f64, f64)> {
    let api: Api<k8s_openapi::api::core::v1::Pod> = Api::namespaced(env.client.clone(), ns);
    let mut samples = Vec::new();
    for _ in 0..env.replacements {
        pods.until(DEADLINE, |p| ready(p, None) >= n).await?;
        let before = pods.snapshot();
        let victim = before
            .iter()
            .find(|(_, p)| p.ready && !p.deleting)
            .map(|(name, _)| name.clone())
            .context("no ready pod")?;
        let t0 = Instant::now();
        api.delete(&victim, &DeleteParams::default()).await?;
        let seen = pods
            .until(DEADLINE, |p| p.keys().any(|k| !before.contains_key(k)))
            .await?;
        samples.push((seen - t0).as_secs_f64() * 1000.0);
    }
    Ok((
        meters::percentile(&samples, 50.0),
        meters::percentile(&samples, 99.0),
    ))
}

async fn wait<F, Fut>(deadline: Duration, f: F) -> Result<()>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<bool>>,
{
    let start = Instant::now();
    while !f().await? {
        anyhow::ensure!(start.elapsed() < deadline, "timed out after {deadline:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Ok(())
}

fn table(results: &[(usize, Figures, Figures)]) -> String {
    // The operator inherits the environment: its request budget is the one set there, or its default.
    let setting = |name: &str| std::env::var(name).unwrap_or_else(|_| "default".into());
    let mut out = format!(
        "Operator client request budget: KUBE_API_QPS {}, KUBE_API_BURST {}\n\n",
        setting("KUBE_API_QPS"),
        setting("KUBE_API_BURST")
    );
    out.push_str("| figure | tasks | Deployment | ECS Service | ratio |\n|---|---|---|---|---|\n");
    let mut row = |what: &str, n: usize, d: Option<f64>, e: Option<f64>, unit: &str| {
        let fmt = |v: Option<f64>| v.map_or("—".to_string(), |v| format!("{v:.1}{unit}"));
        let ratio = match (d, e) {
            (Some(d), Some(e)) if d > 0.0 => format!("{:.2}×", e / d),
            _ => "—".into(),
        };
        out.push_str(&format!(
            "| {what} | {n} | {} | {} | {ratio} |\n",
            fmt(d),
            fmt(e)
        ));
    };
    for (n, d, e) in results {
        let n = *n;
        row(
            "time to N ready pods",
            n,
            Some(d.time_to_n),
            Some(e.time_to_n),
            " s",
        );
        row(
            "replacement created after a pod delete, p50",
            n,
            Some(d.replace_p50_ms),
            Some(e.replace_p50_ms),
            " ms",
        );
        row(
            "replacement created after a pod delete, p99",
            n,
            Some(d.replace_p99_ms),
            Some(e.replace_p99_ms),
            " ms",
        );
        row(
            "rollout (new image, 200 %/100 %)",
            n,
            Some(d.rollout),
            Some(e.rollout),
            " s",
        );
        let per = |w: &BTreeMap<String, usize>, key: &str| w.get(key).map(|c| *c as f64 / n as f64);
        row(
            "pod creates per pod started",
            n,
            per(&d.writes, "pods"),
            per(&e.writes, "pods"),
            "",
        );
        row(
            "Task status writes per task started",
            n,
            None,
            per(&e.writes, "tasks/status"),
            "",
        );
        row(
            "Task writes (all) per task started",
            n,
            None,
            Some(
                e.writes
                    .iter()
                    .filter(|(k, _)| k.starts_with("tasks"))
                    .map(|(_, v)| *v)
                    .sum::<usize>() as f64
                    / n as f64,
            ),
            "",
        );
        let total = |w: &BTreeMap<String, usize>| Some(w.values().sum::<usize>() as f64 / n as f64);
        row(
            "controller writes (all) per pod started",
            n,
            total(&d.writes),
            total(&e.writes),
            "",
        );
        row(
            "operator writes in 20 s idle",
            n,
            None,
            e.idle_writes.map(|v| v as f64),
            "",
        );
        row(
            "operator reads per irrelevant node update",
            n,
            Some(0.0),
            e.reads_per_node_update,
            "",
        );
        row(
            "operator RSS idle / at N / peak",
            n,
            None,
            e.rss_idle_mb,
            " MB",
        );
        row("", n, None, e.rss_at_n_mb, " MB");
        row("", n, None, e.rss_peak_mb, " MB");
        row(
            "operator CPU seconds per 1,000 tasks started",
            n,
            None,
            e.cpu_per_1000,
            " s",
        );
    }
    out
}
