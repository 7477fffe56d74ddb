//! `cargo xtask test`: every check, in the order that fails fastest — formatting, lints, then unit and
//! integration tests against the local cluster (which also check CRD drift, the chart and the examples).

use std::process::Command;

use anyhow::{Result, bail};

use crate::cluster::{self, ClusterInfo};

/// Label on the namespaces the integration tests create (see tests/support/mod.rs).
const TEST_NAMESPACE_LABEL: &str = "ecs.operator.dev/test=true";

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
    let info = cluster::up()?;
    let result = tests(&info);
    // A cluster this run started is stopped again; a developer's running cluster is left as it was.
    if info.started_now && std::env::var_os("ECS_OPERATOR_KEEP_CLUSTER").is_none() {
        eprintln!("stopping the cluster this run started");
        cluster::down()?;
    }
    result
}

fn tests(info: &ClusterInfo) -> Result<()> {
    // A demo operator watches every namespace and would act on the tests' objects too.
    crate::demo::stop_operator(info);
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
    test.args(["test", "--workspace", "--all-targets"])
        .env("KUBECONFIG", &info.kubeconfig)
        .env("PATH", path);
    step("cargo test (unit and integration, local cluster)", || {
        test.status()
    })
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
