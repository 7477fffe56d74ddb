//! `cargo xtask demo`: from nothing to ECS objects running on the local cluster — cluster up, CRDs
//! installed, the operator running in the background, the examples applied, the result shown. On a
//! cluster with the real node (`cluster up --real-node`), also a task serving HTTP there, fetched with curl.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::cluster::{self, ClusterInfo};
use crate::node::LABEL;
use crate::pki::NODE_NAME;
use crate::proc;

/// Where the demo's resources go.
const NAMESPACE: &str = "ecs-demo";
/// The task of `examples/real-node/http-task.yaml`, and its pod.
const HTTP_TASK: &str = "hello-http-1";

pub fn run() -> Result<()> {
    // Where it can run, the real node serves a page from a task (examples/real-node/).
    let info = cluster::up(crate::node::supported("the demo runs on kwok nodes only"))?;
    let root = workspace_root();

    eprintln!("==> building the operator");
    let status = Command::new(env!("CARGO"))
        .args([
            "build",
            "--package",
            "ecs-operator",
            "--bin",
            "ecs-operator",
        ])
        .current_dir(&root)
        .status()?;
    if !status.success() {
        bail!("cargo build failed");
    }

    eprintln!("==> installing the CRDs");
    kubectl(
        &info,
        &[
            "apply",
            "--server-side",
            "-f",
            &root.join("crds").display().to_string(),
        ],
    )?;
    kubectl(
        &info,
        &[
            "wait",
            "--for=condition=Established",
            "--timeout=60s",
            "crd/taskdefinitions.ecs.operator.dev",
            "crd/tasks.ecs.operator.dev",
            "crd/services.ecs.operator.dev",
        ],
    )?;

    eprintln!(
        "==> starting the operator (log: {})",
        log_path(&info).display()
    );
    stop_operator(&info);
    let pid = proc::spawn_daemon(
        &profile_dir("debug").join("ecs-operator"),
        &[
            "run".into(),
            "--kubeconfig".into(),
            info.kubeconfig.display().to_string(),
            "--admin-address".into(),
            "127.0.0.1:18080".into(),
        ],
        &log_path(&info),
        None,
    )
    .context("start the operator")?;
    // The binary's path too: `cluster down` or `test` from another checkout must recognise the process.
    let binary = profile_dir("debug").join("ecs-operator");
    std::fs::write(pid_path(&info), format!("{pid}\n{}\n", binary.display()))?;

    eprintln!("==> applying examples/ into namespace {NAMESPACE}");
    let _ = kubectl(&info, &["create", "namespace", NAMESPACE]);
    kubectl(
        &info,
        &[
            "apply",
            "-n",
            NAMESPACE,
            "-f",
            &root.join("examples").display().to_string(),
        ],
    )?;

    let real_node = has_real_node(&info);
    if real_node {
        eprintln!("==> applying examples/real-node/ (a task on the real node {NODE_NAME})");
        // The operator writes no toleration (ECS has none): the namespace gives its pods the node's.
        let tolerations = format!(
            "scheduler.alpha.kubernetes.io/defaultTolerations=[{{\"key\":\"{LABEL}\",\"operator\":\"Exists\",\"effect\":\"NoSchedule\"}}]"
        );
        kubectl(
            &info,
            &[
                "annotate",
                "--overwrite",
                "namespace",
                NAMESPACE,
                &tolerations,
            ],
        )?;
        kubectl(
            &info,
            &[
                "apply",
                "-n",
                NAMESPACE,
                "-f",
                &root.join("examples/real-node").display().to_string(),
            ],
        )?;
    }

    eprintln!("==> waiting for the tasks to run");
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let out = info
            .kubectl()
            .args([
                "get",
                "ecstask",
                "-n",
                NAMESPACE,
                "-o",
                "jsonpath={.items[*].status.lastStatus}",
            ])
            .output()?;
        let states = String::from_utf8_lossy(&out.stdout).to_string();
        let states: Vec<&str> = states.split_whitespace().collect();
        if !states.is_empty() && states.iter().all(|s| *s == "RUNNING" || *s == "STOPPED") {
            break;
        }
        if Instant::now() > deadline {
            eprintln!("(tasks not all RUNNING yet: {states:?}; see the operator log)");
            break;
        }
        std::thread::sleep(Duration::from_secs(1));
    }

    for args in [
        &["get", "ecs", "-n", NAMESPACE][..],
        &["get", "ecstask", "-n", NAMESPACE, "-o", "wide"][..],
        &[
            "get",
            "pods",
            "-n",
            NAMESPACE,
            "-o",
            "wide",
            "-L",
            "ecs.operator.dev/task",
        ][..],
    ] {
        println!("\n$ kubectl {}", args.join(" "));
        let out = info.kubectl().args(args).output()?;
        print!("{}", String::from_utf8_lossy(&out.stdout));
    }
    if real_node {
        show_http_task(&info)?;
    }
    println!(
        "\nThe operator runs in the background (log: {log}).\nTry it yourself:\n  {env}\n  kubectl get ecs -n {NAMESPACE}\n  kubectl patch ecstask report-2026-11 -n {NAMESPACE} --type merge -p '{{\"spec\":{{\"desiredStatus\":\"STOPPED\",\"reason\":\"done\"}}}}'\nStop everything with: cargo xtask cluster down",
        log = log_path(&info).display(),
        env = info
            .env_lines()
            .lines()
            .take(2)
            .collect::<Vec<_>>()
            .join("\n  "),
    );
    Ok(())
}

fn has_real_node(info: &ClusterInfo) -> bool {
    info.kubectl()
        .args(["get", "node", NODE_NAME, "-o", "name"])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Fetches the page the real node's task serves, as a user would: curl on its pod IP.
fn show_http_task(info: &ClusterInfo) -> Result<()> {
    let out = info
        .kubectl()
        .args([
            "get",
            "pod",
            "-n",
            NAMESPACE,
            HTTP_TASK,
            "-o",
            "jsonpath={.status.podIP}",
        ])
        .output()?;
    let ip = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if ip.is_empty() {
        eprintln!("(task {HTTP_TASK} has no pod IP yet; see the operator log)");
        return Ok(());
    }
    let url = format!("http://{ip}:8080/");
    println!("\n$ curl -s {url}");
    // httpd binds its port a moment after the task is RUNNING.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let out = Command::new("curl")
            .args(["-s", "--max-time", "5", &url])
            .output()
            .context("run curl")?;
        if out.status.success() {
            print!("{}", String::from_utf8_lossy(&out.stdout));
            return Ok(());
        }
        if Instant::now() > deadline {
            eprintln!("(no answer from {url}: curl exited with {})", out.status);
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Stops the operator a demo started, if any (`cluster down` calls this too).
pub fn stop_operator(info: &ClusterInfo) {
    let Ok(pid) = std::fs::read_to_string(pid_path(info)) else {
        return;
    };
    let mut lines = pid.lines();
    let pid = lines.next().and_then(|p| p.trim().parse::<u32>().ok());
    let binary = lines
        .next()
        .map(PathBuf::from)
        .unwrap_or_else(|| profile_dir("debug").join("ecs-operator"));
    if let Some(pid) = pid {
        proc::stop_all(
            &[("ecs-operator".into(), pid, binary.as_path())],
            Duration::from_secs(10),
        );
    }
    let _ = std::fs::remove_file(pid_path(info));
}

fn kubectl(info: &ClusterInfo, args: &[&str]) -> Result<()> {
    let status = info.kubectl().args(args).status()?;
    if !status.success() {
        bail!("kubectl {} failed", args.join(" "));
    }
    Ok(())
}

fn log_path(info: &ClusterInfo) -> PathBuf {
    info.state_dir.join("operator.log")
}

fn pid_path(info: &ClusterInfo) -> PathBuf {
    info.state_dir.join("operator.pid")
}

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .to_path_buf()
}

/// Where cargo puts `profile`'s binaries: `$CARGO_TARGET_DIR` (relative to the workspace when
/// relative) or the workspace's `target/`.
pub fn profile_dir(profile: &str) -> PathBuf {
    let root = workspace_root();
    std::env::var_os("CARGO_TARGET_DIR")
        .map(|t| root.join(t))
        .unwrap_or_else(|| root.join("target"))
        .join(profile)
}
