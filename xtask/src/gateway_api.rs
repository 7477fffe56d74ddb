//! The Gateway API CRDs (standard channel) on the local cluster, so that a Service's traffic shifts can be
//! written to HTTPRoutes. No Gateway implementation runs here: routes are stored and validated by the
//! apiserver, and the tests read the weights the operator writes.
//!
//! The CRDs come from the Go module `sigs.k8s.io/gateway-api` (`config/crd/standard/`) through the module
//! proxy, pinned below with the module's hash (sum.golang.org is unreachable here, so the hash is checked
//! against the pin instead), and are copied to `~/.cache/ecs-operator/gateway-api-<version>/` so that a
//! cluster start needs no network once they are cached.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

use crate::build;
use crate::cluster::ClusterInfo;
use crate::util;

pub const MODULE: &str = "sigs.k8s.io/gateway-api";
/// v1.7.0 needs a newer Go than the one the cluster binaries are built with.
pub const VERSION: &str = "v1.6.3";
/// `Sum` of `go mod download -json sigs.k8s.io/gateway-api@v1.6.3` (the go.sum `h1:` hash of the zip).
const SUM: &str = "h1:lKpJa5bGlraC/QeACvCpsHLdmO6y0iKfzVl6gzaFEYc=";
const STAMP: &str = ".complete";
const FIELD_MANAGER: &str = "ecs-operator-xtask";

/// Installs (or updates) the CRDs on the cluster and waits until HTTPRoute is served; a cluster that
/// has this version already is left as it is (a reused cluster's `up` stays fast).
pub fn install(info: &ClusterInfo) -> Result<()> {
    let installed = info
        .kubectl()
        .args([
            "get",
            "crd",
            "httproutes.gateway.networking.k8s.io",
            "--ignore-not-found",
            r"-o=jsonpath={.metadata.annotations.gateway\.networking\.k8s\.io/bundle-version}",
        ])
        .stdin(Stdio::null())
        .output()
        .context("running kubectl get crd")?;
    if installed.status.success() && installed.stdout == VERSION.as_bytes() {
        return Ok(());
    }
    let dir = ensure_crds()?;
    let out = info
        .kubectl()
        .args(["apply", "--server-side", "--force-conflicts"])
        .arg(format!("--field-manager={FIELD_MANAGER}"))
        .arg("-f")
        .arg(&dir)
        .stdin(Stdio::null())
        .output()
        .context("running kubectl apply")?;
    if !out.status.success() {
        bail!(
            "installing the Gateway API CRDs from {} failed: {}",
            dir.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let out = info
        .kubectl()
        .args([
            "wait",
            "--for=condition=Established",
            "--timeout=60s",
            "crd/httproutes.gateway.networking.k8s.io",
        ])
        .stdin(Stdio::null())
        .output()
        .context("running kubectl wait")?;
    if !out.status.success() {
        bail!(
            "the HTTPRoute CRD is not established: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

/// The cached directory of the standard-channel manifests, filled from the module cache if needed.
fn ensure_crds() -> Result<PathBuf> {
    let dir = util::cache_root()?.join(format!("gateway-api-{VERSION}"));
    if dir.join(STAMP).is_file() {
        return Ok(dir);
    }
    let source = download()?.join("config/crd/standard");
    std::fs::create_dir_all(&dir)?;
    let mut copied = 0;
    for entry in
        std::fs::read_dir(&source).with_context(|| format!("reading {}", source.display()))?
    {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "yaml") {
            let name = path.file_name().context("a file name")?;
            std::fs::copy(&path, dir.join(name))
                .with_context(|| format!("copying {}", path.display()))?;
            copied += 1;
        }
    }
    if !dir
        .join("gateway.networking.k8s.io_httproutes.yaml")
        .is_file()
    {
        bail!("{} has no HTTPRoute CRD", source.display());
    }
    util::write_file(
        &dir.join(STAMP),
        format!("{MODULE}@{VERSION}: {copied} files\n"),
    )?;
    Ok(dir)
}

/// The module's directory in the Go module cache, downloaded through the module proxy if absent.
fn download() -> Result<PathBuf> {
    let go = build::go_binary();
    let module = format!("{MODULE}@{VERSION}");
    eprintln!("fetching {module} (Gateway API CRDs)");
    let out = Command::new(&go)
        .args(["mod", "download", "-json", &module])
        // Outside any module: the download needs no go.mod, and GOFLAGS from a caller must not apply.
        .current_dir(std::env::temp_dir())
        .env("GOSUMDB", "off")
        .env("GOTOOLCHAIN", "local")
        .env("GOFLAGS", "")
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("running `{} mod download`: is Go installed?", go.display()))?;
    let json = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        bail!("go mod download {module} failed: {json}");
    }
    let sum = field(&json, "Sum").context("no Sum in go mod download output")?;
    if sum != SUM {
        bail!("{module} has hash {sum}, the pin says {SUM}: refusing to install it");
    }
    let dir = field(&json, "Dir").context("no Dir in go mod download output")?;
    Ok(Path::new(&dir).to_path_buf())
}

/// A string field of `go mod download -json`; module cache paths and hashes need no JSON unescaping.
fn field(json: &str, name: &str) -> Option<String> {
    let prefix = format!("\"{name}\": \"");
    json.lines()
        .find_map(|l| l.trim().strip_prefix(prefix.as_str()))
        .and_then(|rest| rest.strip_suffix("\",").or_else(|| rest.strip_suffix('"')))
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_of_go_mod_download_json() {
        let json = "{\n\t\"Path\": \"sigs.k8s.io/gateway-api\",\n\t\"Dir\": \"/m/sigs.k8s.io/gateway-api@v1.6.3\",\n\t\"Sum\": \"h1:x=\"\n}\n";
        assert_eq!(
            field(json, "Dir").as_deref(),
            Some("/m/sigs.k8s.io/gateway-api@v1.6.3")
        );
        assert_eq!(field(json, "Sum").as_deref(), Some("h1:x="));
        assert_eq!(field(json, "GoMod"), None);
    }
}
