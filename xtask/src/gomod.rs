//! `cargo xtask go-mod-update`: regenerates the Go wrapper modules in `xtask/go/` for new pins.
//!
//! `go install k8s.io/kubernetes/cmd/...@vX` is refused because the release's go.mod replaces each staging
//! module (k8s.io/api, k8s.io/client-go, ...) with a local path. The wrapper requires k8s.io/kubernetes and
//! replaces every staging module with its published v0.Y.Z instead; `go mod tidy` then fills in the rest
//! and go.sum. kwok, helm and metrics-server need no replaces, only the pin and a `tool` line.

use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

use crate::build::{self, Versions};

pub fn update(pins: &Versions) -> Result<()> {
    let dir = build::go_modules_dir();
    let go = build::go_binary();

    let upstream = download_go_mod(&go, &dir.join("k8s"), "k8s.io/kubernetes", &pins.k8s)?;
    let staging_version = staging_version(&pins.k8s)?;
    let go_line = upstream
        .lines()
        .find(|l| l.starts_with("go "))
        .context("no go directive in the kubernetes go.mod")?;
    // Only the main module's godebug counts, so the release's own setting must be repeated here.
    let godebug = upstream
        .lines()
        .find(|l| l.starts_with("godebug "))
        .map(|l| format!("{l}\n\n"))
        .unwrap_or_default();
    let mut replaces = String::new();
    for line in upstream.lines() {
        let line = line.trim();
        if let Some((module, target)) = line.split_once(" => ")
            && target.starts_with("./staging/")
        {
            replaces.push_str(&format!("\t{module} => {module} {staging_version}\n"));
        }
    }
    if replaces.is_empty() {
        bail!("found no staging replaces in the kubernetes go.mod");
    }
    let tools: String = build::K8S_PACKAGES
        .iter()
        .map(|p| format!("\t{p}\n"))
        .collect();
    let k8s = format!(
        "// Wrapper module: builds the pinned upstream Kubernetes binaries used by the local test cluster.
// The upstream go.mod replaces its staging modules with local paths; these replaces point them at
// the published module versions instead. Regenerate with: cargo xtask go-mod-update (see xtask/src/gomod.rs).
module ecs-operator.dev/testcluster/k8s

{go_line}

{godebug}require k8s.io/kubernetes {k8s_version}

replace (
{replaces})

tool (
{tools})
",
        k8s_version = pins.k8s,
    );
    write_and_tidy(&go, &dir.join("k8s"), &k8s)?;

    let kwok = format!(
        "// Wrapper module: pins kwok (simulated nodes for the local test cluster) and its dependencies.
module ecs-operator.dev/testcluster/kwok

{go_line}

require sigs.k8s.io/kwok {}

tool sigs.k8s.io/kwok/cmd/kwok
",
        pins.kwok
    );
    write_and_tidy(&go, &dir.join("kwok"), &kwok)?;

    let helm = format!(
        "// Wrapper module: pins helm (chart checks in the test suite) and its dependencies.
module ecs-operator.dev/testcluster/helm

{go_line}

require helm.sh/helm/v3 {}

tool helm.sh/helm/v3/cmd/helm
",
        pins.helm
    );
    write_and_tidy(&go, &dir.join("helm"), &helm)?;

    let metrics_server = format!(
        "// Wrapper module: pins metrics-server (the resource metrics API for the local test cluster) and its dependencies.
module ecs-operator.dev/testcluster/metrics-server

{go_line}

require sigs.k8s.io/metrics-server {}

tool sigs.k8s.io/metrics-server/cmd/metrics-server
",
        pins.metrics_server
    );
    write_and_tidy(&go, &dir.join("metrics-server"), &metrics_server)?;
    eprintln!("updated xtask/go/*; `cargo xtask cluster up` builds the new binaries");
    Ok(())
}

/// v1.36.5 -> v0.36.5: the staging modules are tagged with major version 0.
fn staging_version(k8s: &str) -> Result<String> {
    match k8s.strip_prefix("v1.") {
        Some(rest) => Ok(format!("v0.{rest}")),
        None => bail!("expected a Kubernetes version like v1.36.5, got {k8s}"),
    }
}

fn go_cmd(go: &Path, dir: &Path) -> Command {
    let mut cmd = Command::new(go);
    cmd.current_dir(dir)
        .env("GOSUMDB", "off")
        .env("GOTOOLCHAIN", "local")
        .env("GOFLAGS", "-mod=mod")
        .stdin(Stdio::null());
    cmd
}

/// The go.mod of `module@version`, through the module proxy and the module cache.
fn download_go_mod(go: &Path, dir: &Path, module: &str, version: &str) -> Result<String> {
    let out = go_cmd(go, dir)
        .args(["mod", "download", "-json", &format!("{module}@{version}")])
        .stderr(Stdio::inherit())
        .output()
        .context("running go mod download")?;
    let json = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        bail!("go mod download {module}@{version} failed: {json}");
    }
    // `"GoMod": "/path/to/v1.36.5.mod",`: a path from the module cache needs no JSON unescaping.
    let path = json
        .lines()
        .find_map(|l| l.trim().strip_prefix("\"GoMod\": \""))
        .and_then(|rest| rest.strip_suffix("\","))
        .context("no GoMod in go mod download output")?;
    std::fs::read_to_string(path).with_context(|| format!("reading {path}"))
}

fn write_and_tidy(go: &Path, dir: &Path, go_mod: &str) -> Result<()> {
    std::fs::write(dir.join("go.mod"), go_mod)?;
    eprintln!("go mod tidy in {}", dir.display());
    let status = go_cmd(go, dir)
        .args(["mod", "tidy"])
        .stdout(Stdio::from(std::io::stderr()))
        .status()
        .context("running go mod tidy")?;
    if !status.success() {
        bail!("go mod tidy in {} failed", dir.display());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn staging_versions_use_major_zero() {
        assert_eq!(staging_version("v1.36.5").unwrap(), "v0.36.5");
        assert!(staging_version("1.36.5").is_err());
    }
}
