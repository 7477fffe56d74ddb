//! `cargo xtask bench`: the ECS Service side by side with the Deployment controller, on a local
//! cluster of the benchmark's own (its own state directory, so a test cluster is left alone), with
//! the operator built in release mode and run as a separate process. The results table goes to
//! stdout and to `<target>/bench/results.md`.

use std::process::Command;

use anyhow::{Result, bail};

use crate::cluster;
use crate::demo::workspace_root;
use crate::util;

/// The operator's client request budget for the run; `None`: the operator's default.
pub struct Budget {
    pub qps: Option<f64>,
    pub burst: Option<u32>,
}

pub fn run(
    sizes: &str,
    replacements: usize,
    services: Option<&str>,
    keep: bool,
    budget: Budget,
) -> Result<()> {
    // A cluster of its own: the test cluster's leftovers would weigh on the figures.
    if std::env::var_os(cluster::DIR_ENV).is_none() {
        let dir = util::cache_root()?.join("bench-cluster");
        // SAFETY: set before any thread is started.
        unsafe { std::env::set_var(cluster::DIR_ENV, &dir) };
    }
    let root = workspace_root();
    eprintln!("==> building the operator and the benchmark (release)");
    let status = Command::new(env!("CARGO"))
        .args(["build", "--release", "--package", "ecs-operator"])
        .args(["--bin", "ecs-operator", "--example", "side_by_side"])
        .current_dir(&root)
        .status()?;
    if !status.success() {
        bail!("cargo build failed");
    }
    let release = crate::demo::profile_dir("release");

    let info = cluster::up(false)?;
    eprintln!("==> benchmark on {} (sizes {sizes})", info.server);
    let path = format!(
        "{}:{}",
        info.bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut bench = Command::new(release.join("examples/side_by_side"));
    // The operator the benchmark starts reads them from its environment.
    if let Some(qps) = budget.qps {
        bench.env("KUBE_API_QPS", qps.to_string());
    }
    if let Some(burst) = budget.burst {
        bench.env("KUBE_API_BURST", burst.to_string());
    }
    if let Some(services) = services {
        bench.env("BENCH_SERVICES", services);
    }
    let output = bench
        .env("KUBECONFIG", &info.kubeconfig)
        .env("PATH", path)
        .env("BENCH_OPERATOR", release.join("ecs-operator"))
        .env("BENCH_AUDIT_LOG", info.state_dir.join("audit.log"))
        .env("BENCH_SIZES", sizes)
        .env("BENCH_REPLACEMENTS", replacements.to_string())
        .stderr(std::process::Stdio::inherit())
        .output()?;
    let table = String::from_utf8_lossy(&output.stdout).into_owned();
    print!("{table}");
    let out_dir = release.parent().unwrap_or(&release).join("bench");
    std::fs::create_dir_all(&out_dir)?;
    util::write_file(&out_dir.join("results.md"), &table)?;
    if !keep {
        cluster::down()?;
    }
    if !output.status.success() {
        bail!("the benchmark failed");
    }
    Ok(())
}
