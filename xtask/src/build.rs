//! Builds the cluster's binaries once from the pinned Go wrapper modules in `xtask/go/`, and caches them in
//! `~/.cache/ecs-operator/bin-<key>/`.
//!
//! The key hashes everything that determines the output (the go.mod/go.sum files, `go version`, the etcd
//! crate and the build flags), so bumping a pin builds into a new directory and a warm cache is a no-op.
//! A stamp file written last marks a complete build; without it the directory is rebuilt in place. Go's own
//! module and build caches stay at their defaults, so a rebuild after a small change mostly just links.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::util::{self, Fnv};

/// The pinned versions, read from the wrapper modules' go.mod files (the single place they are set).
pub struct Versions {
    pub k8s: String,
    pub kwok: String,
    pub helm: String,
    pub metrics_server: String,
}

impl Versions {
    pub fn read() -> Result<Versions> {
        let dir = go_modules_dir();
        Ok(Versions {
            k8s: required_version(&dir.join("k8s"), "k8s.io/kubernetes")?,
            kwok: required_version(&dir.join("kwok"), "sigs.k8s.io/kwok")?,
            helm: required_version(&dir.join("helm"), "helm.sh/helm/v3")?,
            metrics_server: required_version(
                &dir.join("metrics-server"),
                "sigs.k8s.io/metrics-server",
            )?,
        })
    }

    /// ("1", "36") for v1.36.5.
    fn k8s_major_minor(&self) -> Result<(&str, &str)> {
        let mut parts = self.k8s.trim_start_matches('v').split('.');
        match (parts.next(), parts.next()) {
            (Some(major), Some(minor)) => Ok((major, minor)),
            _ => bail!("cannot parse Kubernetes version {}", self.k8s),
        }
    }
}

/// The version of `module` in the require lines of `<dir>/go.mod`.
fn required_version(dir: &Path, module: &str) -> Result<String> {
    let path = dir.join("go.mod");
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    text.lines()
        .find_map(|line| {
            let mut words = line
                .trim()
                .trim_start_matches("require ")
                .split_whitespace();
            if words.next() == Some(module) {
                words.next().map(str::to_string)
            } else {
                None
            }
        })
        .with_context(|| format!("{module} is not required in {}", path.display()))
}

/// The binaries `cluster up` needs, all found in the bin dir afterwards.
pub const BINARIES: &[&str] = &[
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kubectl",
    "kubelet",
    "kwok",
    "helm",
    "metrics-server",
];

const STAMP: &str = ".complete";

const K8S_TAGS: &str = "selinux,notest,grpcnotrace";
pub const K8S_PACKAGES: &[&str] = &[
    "k8s.io/kubernetes/cmd/kube-apiserver",
    "k8s.io/kubernetes/cmd/kube-controller-manager",
    "k8s.io/kubernetes/cmd/kube-scheduler",
    "k8s.io/kubernetes/cmd/kubectl",
    "k8s.io/kubernetes/cmd/kubelet",
];

/// Without the version variables `/version` reports v0.0.0-master, which breaks version checks in
/// kubectl, helm and kwok. The fixed commit and date keep the build reproducible.
fn k8s_ldflags(v: &Versions) -> Result<String> {
    let (major, minor) = v.k8s_major_minor()?;
    let mut ld = String::from("-s -w");
    for pkg in [
        "k8s.io/component-base/version",
        "k8s.io/client-go/pkg/version",
    ] {
        for (var, value) in [
            ("gitVersion", v.k8s.as_str()),
            ("gitMajor", major),
            ("gitMinor", minor),
            ("gitCommit", "0000000000000000000000000000000000000000"),
            ("gitTreeState", "clean"),
            ("buildDate", "2026-01-01T00:00:00Z"),
        ] {
            ld.push_str(&format!(" -X {pkg}.{var}={value}"));
        }
    }
    Ok(ld)
}

/// kwok's version (consts.Version) is a source constant in its module, so it needs no ldflags.
const KWOK_LDFLAGS: &str = "-s -w";

/// helm's default Capabilities.KubeVersion (chartutil) and its lint deprecation target (lint/rules) are
/// v1.20 unless set at link time; its own version would otherwise read "v3.22" with no patch.
fn helm_ldflags(v: &Versions) -> Result<String> {
    let (major, minor) = v.k8s_major_minor()?;
    Ok(format!(
        "-s -w -X helm.sh/helm/v3/internal/version.version={helm} \
         -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor={major} \
         -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor={minor} \
         -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor={major} \
         -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor={minor}",
        helm = v.helm
    ))
}

/// metrics-server reads its version from client-go's version package, like kubectl; it only shows in logs.
fn metrics_server_ldflags(v: &Versions) -> String {
    format!(
        "-s -w -X k8s.io/client-go/pkg/version.gitVersion={} \
         -X k8s.io/client-go/pkg/version.gitCommit=0000000000000000000000000000000000000000 \
         -X k8s.io/client-go/pkg/version.buildDate=2026-01-01T00:00:00Z",
        v.metrics_server
    )
}

struct GoBuild {
    module: &'static str,
    tags: Option<&'static str>,
    ldflags: String,
    packages: &'static [&'static str],
    /// runc's nsenter is C; everything else is pure Go and built static.
    cgo: bool,
}

fn go_builds() -> Result<Vec<GoBuild>> {
    let v = Versions::read()?;
    Ok(vec![
        GoBuild {
            module: "k8s",
            tags: Some(K8S_TAGS),
            ldflags: k8s_ldflags(&v)?,
            packages: K8S_PACKAGES,
            cgo: false,
        },
        GoBuild {
            module: "kwok",
            tags: None,
            ldflags: KWOK_LDFLAGS.into(),
            packages: &["sigs.k8s.io/kwok/cmd/kwok"],
            cgo: false,
        },
        GoBuild {
            module: "helm",
            tags: None,
            ldflags: helm_ldflags(&v)?,
            packages: &["helm.sh/helm/v3/cmd/helm"],
            cgo: false,
        },
        GoBuild {
            module: "metrics-server",
            tags: None,
            ldflags: metrics_server_ldflags(&v),
            packages: &["sigs.k8s.io/metrics-server/cmd/metrics-server"],
            cgo: false,
        },
    ])
}

/// The real node's runtime (`cluster up --real-node`), cached apart from [`BINARIES`] so that a cluster
/// of kwok nodes alone never builds it: containerd, its runc shim, ctr, runc and the CNI plugins.
pub const NODE_BINARIES: &[&str] = &[
    "containerd",
    "containerd-shim-runc-v2",
    "ctr",
    "runc",
    "bridge",
    "host-local",
    "loopback",
];

/// Built with the seccomp tag: containerd gives every pod sandbox the RuntimeDefault seccomp profile,
/// which a runc without libseccomp refuses to start.
const RUNC_TAGS: &str = "seccomp";

fn node_builds() -> Result<Vec<GoBuild>> {
    let containerd = required_version(&go_modules_dir().join("node"), CONTAINERD_MODULE)?;
    Ok(vec![
        GoBuild {
            module: "node",
            tags: None,
            // Without it containerd reports version "dev" to the kubelet.
            ldflags: format!("-s -w -X {CONTAINERD_MODULE}/version.Version={containerd}"),
            packages: &[
                "github.com/containerd/containerd/v2/cmd/containerd",
                "github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2",
                "github.com/containerd/containerd/v2/cmd/ctr",
                "github.com/containernetworking/plugins/plugins/main/bridge",
                "github.com/containernetworking/plugins/plugins/ipam/host-local",
                "github.com/containernetworking/plugins/plugins/main/loopback",
            ],
            cgo: false,
        },
        GoBuild {
            module: "node",
            tags: Some(RUNC_TAGS),
            ldflags: "-s -w".into(),
            packages: &["github.com/opencontainers/runc"],
            cgo: true,
        },
    ])
}

const CONTAINERD_MODULE: &str = "github.com/containerd/containerd/v2";

pub fn go_modules_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("go")
}

/// `go`, from PATH or the usual install location (non-login shells often lack /usr/local/go/bin).
pub fn go_binary() -> PathBuf {
    if let Some(go) = std::env::var_os("GO") {
        return go.into();
    }
    let on_path = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join("go").is_file()))
        .unwrap_or(false);
    if !on_path && Path::new("/usr/local/go/bin/go").is_file() {
        return "/usr/local/go/bin/go".into();
    }
    "go".into()
}

fn go_command(go: &Path, dir: &Path, cgo: bool) -> Command {
    let mut cmd = Command::new(go);
    cmd.current_dir(dir)
        // sum.golang.org is unreachable here; go.sum is committed and -mod=readonly checks against it.
        .env("GOSUMDB", "off")
        .env("GOTOOLCHAIN", "local")
        .env("CGO_ENABLED", if cgo { "1" } else { "0" })
        .env("GOFLAGS", "-mod=readonly");
    cmd
}

fn go_version(go: &Path) -> Result<String> {
    let out = Command::new(go)
        .arg("version")
        .env("GOTOOLCHAIN", "local")
        .output()
        .with_context(|| format!("running `{} version`: is Go installed?", go.display()))?;
    if !out.status.success() {
        bail!(
            "`go version` failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn etcd_source() -> Result<&'static Path> {
    etcd_bin_vendored::etcd_bin_path().map_err(|e| anyhow::anyhow!("{e}"))
}

fn cache_key(go_version: &str) -> Result<String> {
    let mut h = builds_key(&go_builds()?)?;
    h.update(go_version.as_bytes());
    // The crate's path in the cargo registry names its version (etcd-bin-vendored-linux-amd64-3.7.2).
    h.update(etcd_source()?.to_string_lossy().as_bytes());
    Ok(h.hex(12))
}

fn builds_key(builds: &[GoBuild]) -> Result<Fnv> {
    let mut h = Fnv::new();
    let dir = go_modules_dir();
    for build in builds {
        for file in ["go.mod", "go.sum"] {
            let path = dir.join(build.module).join(file);
            let data =
                std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
            h.update(build.module.as_bytes()).update(&data);
        }
        h.update(build.tags.unwrap_or("").as_bytes())
            .update(build.ldflags.as_bytes())
            .update(build.packages.join(" ").as_bytes())
            .update(if build.cgo { b"cgo" } else { b"" });
    }
    Ok(h)
}

/// Returns the directory holding every binary in [`BINARIES`], building it first if needed.
pub fn ensure_binaries() -> Result<PathBuf> {
    let go = go_binary();
    let version = go_version(&go)?;
    let key = cache_key(&version)?;
    let root = util::cache_root()?;
    let bin = root.join(format!("bin-{key}"));
    if bin.join(STAMP).is_file() {
        return Ok(bin);
    }
    let _lock = util::FileLock::acquire(&root.join(format!("bin-{key}.lock")))?;
    // Another run may have finished the build while we waited for the lock.
    if bin.join(STAMP).is_file() {
        return Ok(bin);
    }
    std::fs::create_dir_all(&bin)?;
    eprintln!(
        "building cluster binaries into {} ({version})",
        bin.display()
    );
    eprintln!("a cold build takes about 16 minutes on 2 cores; later runs reuse this directory");
    let start = Instant::now();
    for build in go_builds()? {
        run_go_build(&go, &build, &bin)?;
    }
    let etcd = bin.join("etcd");
    std::fs::copy(etcd_source()?, &etcd)
        .context("copying etcd out of the etcd-bin-vendored crate")?;
    for name in BINARIES {
        if !bin.join(name).is_file() {
            bail!("build finished but {} is missing", bin.join(name).display());
        }
    }
    let took = start.elapsed();
    util::write_file(
        &bin.join(STAMP),
        format!("{version}\nbuilt in {}s\n", took.as_secs()),
    )?;
    eprintln!("built cluster binaries in {}s", took.as_secs());
    Ok(bin)
}

/// Returns the directory holding every binary in [`NODE_BINARIES`] and the real node's images, building
/// them first if needed (`node-<key>/` beside the `bin-<key>/` directories).
pub fn ensure_node_binaries() -> Result<PathBuf> {
    let go = go_binary();
    let version = go_version(&go)?;
    let builds = node_builds()?;
    let mut h = builds_key(&builds)?;
    h.update(version.as_bytes())
        .update(crate::node_image::KEY.as_bytes());
    let key = h.hex(12);
    let root = util::cache_root()?;
    let dir = root.join(format!("node-{key}"));
    if dir.join(STAMP).is_file() {
        return Ok(dir);
    }
    let _lock = util::FileLock::acquire(&root.join(format!("node-{key}.lock")))?;
    if dir.join(STAMP).is_file() {
        return Ok(dir);
    }
    std::fs::create_dir_all(&dir)?;
    eprintln!("building the real node's runtime into {}", dir.display());
    let start = Instant::now();
    crate::debian::ensure_installed(&[("libseccomp-dev", "/usr/include/seccomp.h")])?;
    for build in &builds {
        run_go_build(&go, build, &dir)?;
    }
    for name in NODE_BINARIES {
        if !dir.join(name).is_file() {
            bail!("build finished but {} is missing", dir.join(name).display());
        }
    }
    crate::node_image::build(&dir)?;
    let took = start.elapsed();
    util::write_file(
        &dir.join(STAMP),
        format!("{version}\nbuilt in {}s\n", took.as_secs()),
    )?;
    eprintln!("built the real node's runtime in {}s", took.as_secs());
    Ok(dir)
}

fn run_go_build(go: &Path, build: &GoBuild, out: &Path) -> Result<()> {
    let dir = go_modules_dir().join(build.module);
    let mut cmd = go_command(go, &dir, build.cgo);
    cmd.args(["build", "-trimpath"]);
    if let Some(tags) = build.tags {
        cmd.args(["-tags", tags]);
    }
    // A trailing slash makes `-o` a directory, as needed when building several packages.
    let mut out_arg = out.as_os_str().to_owned();
    out_arg.push("/");
    cmd.arg("-ldflags")
        .arg(&build.ldflags)
        .arg("-o")
        .arg(out_arg)
        .args(build.packages)
        .stdin(Stdio::null())
        // go prints errors on stderr and nothing on success; keep stdout free for the caller.
        .stdout(Stdio::from(std::io::stderr()));
    let names: Vec<&str> = build
        .packages
        .iter()
        .map(|p| p.rsplit('/').next().unwrap_or(p))
        .collect();
    eprintln!("go build ({}): {}", build.module, names.join(", "));
    let start = Instant::now();
    let mut child = cmd
        .spawn()
        .with_context(|| format!("spawning {}", go.display()))?;
    // go build is silent for many minutes on a cold cache: show that it is alive.
    let mut next_report = Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        std::thread::sleep(Duration::from_millis(200));
        if start.elapsed() >= next_report {
            eprintln!(
                "  still building {} ({}s)",
                build.module,
                next_report.as_secs()
            );
            next_report += Duration::from_secs(60);
        }
    };
    if !status.success() {
        bail!("go build in {} failed ({status})", dir.display());
    }
    eprintln!("  done in {}s", start.elapsed().as_secs());
    Ok(())
}
