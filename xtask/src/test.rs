//! `cargo xtask test`: every check, in the order that fails fastest — formatting, lints, then unit and
//! integration tests against the local cluster (which also check CRD drift, the chart and the examples).

use std::io::Write;
use std::process::Command;

use anyhow::{Result, bail};

use crate::cluster::{self, ClusterInfo};
use crate::node;

/// Label on the namespaces the integration tests create (see tests/support/mod.rs).
const TEST_NAMESPACE_LABEL: &str = "ecs.operator.dev/test=true";

/// The Helm chart, whose RBAC the least-privilege run uses.
const CHART: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../charts/ecs-operator");

/// Tells tests/real_node.rs that the real node must be there (it fails, not skips, without it).
const REAL_NODE_ENV: &str = "ECS_TEST_REAL_NODE";

/// Where the chart's ServiceAccount lives for the least-privilege run.
const OPERATOR_NAMESPACE: &str = "ecs-operator-system";

pub fn run() -> Result<()> {
    step("cargo fmt --check", || {
        cargo(&["fmt", "--all", "--", "--check"])
    })?;
    step("cargo clippy", || {
        cargo(&[
            "clippy",
            "--workspace",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ])
    })?;
    // The real node joins wherever it can run (root, cgroups, Debian's tools); elsewhere its tests skip.
    let real_node = node::supported("tests/real_node.rs will skip");
    let info = cluster::up(real_node)?;
    let result = tests(&info, real_node);
    // A cluster this run started is stopped again; a developer's running cluster is left as it was.
    if info.started_now && std::env::var_os("ECS_OPERATOR_KEEP_CLUSTER").is_none() {
        eprintln!("stopping the cluster this run started");
        cluster::down()?;
    }
    result
}

fn tests(info: &ClusterInfo, real_node: bool) -> Result<()> {
    // A demo operator watches every namespace and would act on the tests' objects too.
    crate::demo::stop_operator(info);
    // Faults an interrupted earlier run may have left on the shared nodes.
    let _ = info
        .kubectl()
        .args([
            "label",
            "nodes",
            "--all",
            "node-not-ready.stage.kwok.x-k8s.io-",
        ])
        .output();
    // Namespaces left by an interrupted earlier run would only cost time.
    let _ = info
        .kubectl()
        .args([
            "delete",
            "namespace",
            "-l",
            TEST_NAMESPACE_LABEL,
            "--wait=false",
        ])
        .output();
    let path = format!(
        "{}:{}",
        info.bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut test = Command::new(env!("CARGO"));
    test.args(["test", "--workspace", "--all-targets", "--no-fail-fast"])
        .env("KUBECONFIG", &info.kubeconfig)
        .env("PATH", &path);
    if real_node {
        test.env(REAL_NODE_ENV, "1");
    }
    step("cargo test (unit and integration, local cluster)", || {
        test.status()
    })?;

    // Least privilege, proven: the chart's ServiceAccount and RBAC, and the task, service and
    // autoscaling tests again with the operator impersonating that account.
    step("install the chart's ServiceAccount and RBAC", || {
        let _ = info
            .kubectl()
            .args(["create", "namespace", OPERATOR_NAMESPACE])
            .output();
        let rendered = Command::new(info.bin_dir.join("helm"))
            .args(["template", "ecs-operator", CHART])
            .args(["--namespace", OPERATOR_NAMESPACE])
            .args(["--show-only", "templates/serviceaccount.yaml"])
            .args(["--show-only", "templates/rbac.yaml"])
            .output()?;
        if !rendered.status.success() {
            return Ok(rendered.status);
        }
        let mut apply = info
            .kubectl()
            .args([
                "apply",
                "--server-side",
                "--field-manager=ecs-operator-tests",
                "-f",
                "-",
            ])
            .stdin(std::process::Stdio::piped())
            .spawn()?;
        apply
            .stdin
            .take()
            .expect("piped")
            .write_all(&rendered.stdout)?;
        apply.wait()
    })?;
    let mut least_privilege = Command::new(env!("CARGO"));
    least_privilege
        .args([
            "test",
            "--no-fail-fast",
            "--test",
            "tasks",
            "--test",
            "services",
            "--test",
            "strategies",
            "--test",
            "autoscaling",
        ])
        .env("KUBECONFIG", &info.kubeconfig)
        .env("PATH", &path)
        .env(
            "ECS_TEST_OPERATOR_IDENTITY",
            format!("system:serviceaccount:{OPERATOR_NAMESPACE}:ecs-operator"),
        );
    step(
        "task, service, strategy and autoscaling tests as the chart's ServiceAccount",
        || least_privilege.status(),
    )
}

fn cargo(args: &[&str]) -> std::io::Result<std::process::ExitStatus> {
    Command::new(env!("CARGO")).args(args).status()
}

fn step(name: &str, run: impl FnOnce() -> std::io::Result<std::process::ExitStatus>) -> Result<()> {
    eprintln!("==> {name}");
    match run() {
        Ok(s) if s.success() => Ok(()),
        Ok(s) => bail!("{name} failed ({s})"),
        Err(e) => bail!("{name} could not run: {e}"),
    }
}
