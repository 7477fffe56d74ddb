//! The real node (`cluster up --real-node`): containerd and the pinned kubelet on this machine, joined to
//! the local cluster as `real-1`, so that containers really run: exit codes, health checks, dependsOn
//! order, restart policies and stop timeouts are decided by a kubelet, not simulated.
//!
//! It runs as root with cgroupfs (cgroup v1 hosts included), a bridge network of its own and no
//! registry: the images are imported from archives made locally (node_image.rs). Its taint keeps every
//! pod off it except those of namespaces that tolerate it: the PodTolerationRestriction admission plugin,
//! enabled with the real node, gives their pods the toleration named in the namespace annotation
//! `scheduler.alpha.kubernetes.io/defaultTolerations` (ECS has no tolerations for the operator to write).
//! State lives in `<cluster dir>/node/`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

use crate::pki::{NODE_NAME, Pki};
use crate::{node_image, util};

/// Start order after the control plane; stopped in reverse before it.
pub const PROCESSES: &[&str] = &["containerd", "kubelet"];

/// The node's label and taint key: tests select the node with a memberOf constraint on
/// `attribute:ecs-operator.dev/real-node == true`, and their namespace tolerates the taint.
pub const LABEL: &str = "ecs-operator.dev/real-node";
pub const ZONE: &str = "us-east-1a";

/// The pods' bridge and subnet: local to this machine, never routed.
const BRIDGE: &str = "ecsop0";
const POD_SUBNET: &str = "10.245.0.0/24";

/// Whether the real node can run here; if not, says why and what goes without it (`otherwise`).
pub fn supported(otherwise: &str) -> bool {
    match unsupported_reason() {
        None => true,
        Some(reason) => {
            eprintln!("no real node: {reason}; {otherwise}");
            false
        }
    }
}

/// Why the real node cannot run on this machine, if it cannot.
pub fn unsupported_reason() -> Option<String> {
    // SAFETY: plain syscall.
    if unsafe { libc::geteuid() } != 0 {
        return Some("it needs root (mounts, cgroups and network namespaces)".into());
    }
    if !Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
        && !Path::new("/sys/fs/cgroup/memory").is_dir()
    {
        return Some("no cgroup filesystem under /sys/fs/cgroup".into());
    }
    for tool in ["apt-get", "dpkg-deb", "cc", "ip"] {
        let found = std::env::var_os("PATH")
            .map(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
            .unwrap_or(false);
        if !found {
            return Some(format!("`{tool}` is not installed"));
        }
    }
    if host_address().is_none() {
        return Some(
            "no IPv4 address other than loopback (the kubelet refuses a loopback node IP)".into(),
        );
    }
    None
}

/// The node's address: the machine's first global IPv4 address, not the pods' bridge. The kubelet
/// listens there only (not on every interface), and the apiserver reaches it there (the node's
/// InternalIP) for `kubectl logs`, `exec` and `port-forward`.
pub fn host_address() -> Option<String> {
    let out = Command::new("ip")
        .args(["-4", "-o", "addr", "show", "scope", "global"])
        .stdin(Stdio::null())
        .output()
        .ok()?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|line| line.split_whitespace().nth(1) != Some(BRIDGE))
        .find_map(|line| {
            let mut words = line.split_whitespace();
            words.find(|w| *w == "inet")?;
            Some(words.next()?.split('/').next()?.to_string())
        })
}

pub fn state_dir(cluster_dir: &Path) -> PathBuf {
    cluster_dir.join("node")
}

pub fn containerd_socket(cluster_dir: &Path) -> PathBuf {
    state_dir(cluster_dir).join("containerd.sock")
}

/// Writes the configs and returns the (containerd, kubelet) arguments.
pub fn prepare(
    cluster_dir: &Path,
    node_bin: &Path,
    node_ip: &str,
    pki: &Pki,
    server: &str,
    kubelet_port: u16,
) -> Result<(Vec<String>, Vec<String>)> {
    let dir = state_dir(cluster_dir);
    std::fs::create_dir_all(dir.join("cni"))?;
    let containerd_config = dir.join("containerd.toml");
    util::write_file(&containerd_config, containerd_toml(&dir, node_bin))?;
    util::write_file(
        &dir.join("cni/10-ecs-operator.conflist"),
        cni_conflist(&dir),
    )?;
    let kubeconfig = dir.join("kubelet.kubeconfig");
    util::write_private(&kubeconfig, pki.kubelet_kubeconfig(server))?;
    let kubelet_config = dir.join("kubelet.yaml");
    util::write_file(
        &kubelet_config,
        kubelet_yaml(
            &dir,
            pki,
            &cluster_dir.join("pki/ca.crt"),
            node_ip,
            kubelet_port,
        ),
    )?;
    let containerd_args = vec![format!("--config={}", containerd_config.display())];
    let kubelet_args = vec![
        format!("--config={}", kubelet_config.display()),
        format!("--kubeconfig={}", kubeconfig.display()),
        format!("--root-dir={}", dir.join("kubelet").display()),
        format!("--hostname-override={NODE_NAME}"),
        format!("--node-ip={node_ip}"),
        format!(
            "--node-labels=topology.kubernetes.io/region={},topology.kubernetes.io/zone={ZONE},\
             node.kubernetes.io/instance-type={},type=real,{LABEL}=true",
            crate::cluster::REGION,
            crate::cluster::INSTANCE_TYPE
        ),
    ];
    Ok((containerd_args, kubelet_args))
}

fn containerd_toml(dir: &Path, node_bin: &Path) -> String {
    let d = dir.display();
    let b = node_bin.display();
    format!(
        r#"version = 3
root = "{d}/containerd/root"
state = "{d}/containerd/state"
[grpc]
  address = "{d}/containerd.sock"
[ttrpc]
  address = "{d}/containerd.sock.ttrpc"
[plugins.'io.containerd.cri.v1.images']
  snapshotter = "overlayfs"
  [plugins.'io.containerd.cri.v1.images'.pinned_images]
    sandbox = "{pause}"
[plugins.'io.containerd.cri.v1.runtime']
  # Without CAP_SYS_RESOURCE (some VMs and containers) runc cannot lower oom_score_adj below ours.
  restrict_oom_score_adj = true
  # Pod network namespaces under our state dir, not /var/run/netns: `cluster down` finds them.
  netns_mounts_under_state_dir = true
  [plugins.'io.containerd.cri.v1.runtime'.containerd]
    default_runtime_name = "runc"
    [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
        BinaryName = "{b}/runc"
        Root = "{d}/runc"
        SystemdCgroup = false
  [plugins.'io.containerd.cri.v1.runtime'.cni]
    bin_dirs = ["{b}"]
    conf_dir = "{d}/cni"
[plugins.'io.containerd.nri.v1.nri']
  disable = true
"#,
        pause = node_image::PAUSE_IMAGE,
    )
}

fn cni_conflist(dir: &Path) -> String {
    format!(
        r#"{{"cniVersion": "1.0.0", "name": "ecs-operator", "plugins": [
  {{"type": "bridge", "bridge": "{BRIDGE}", "isGateway": true, "ipMasq": false,
   "ipam": {{"type": "host-local", "ranges": [[{{"subnet": "{POD_SUBNET}"}}]], "dataDir": "{}/cni-ipam"}}}},
  {{"type": "loopback"}}]}}
"#,
        dir.display()
    )
}

fn kubelet_yaml(dir: &Path, pki: &Pki, ca: &Path, address: &str, port: u16) -> String {
    format!(
        r#"apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
# Kubernetes 1.35+ refuses cgroup v1 hosts unless told otherwise.
failCgroupV1: false
cgroupDriver: cgroupfs
containerRuntimeEndpoint: unix://{d}/containerd.sock
address: {address}
port: {port}
readOnlyPort: 0
healthzPort: 0
tlsCertFile: {cert}
tlsPrivateKeyFile: {key}
authentication:
  anonymous: {{enabled: false}}
  webhook: {{enabled: true}}
  x509: {{clientCAFile: {ca}}}
authorization: {{mode: Webhook}}
registerWithTaints:
- {{key: {LABEL}, value: "true", effect: NoSchedule}}
failSwapOn: false
# The imported images are the only ones: never collect them, never evict for a busy shared disk.
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {{memory.available: "1Mi", nodefs.available: "1%", imagefs.available: "1%", nodefs.inodesFree: "1%"}}
serializeImagePulls: false
podLogsDir: {d}/pod-logs
"#,
        d = dir.display(),
        cert = pki.kubelet_serving_cert.display(),
        key = pki.kubelet_serving_key.display(),
        ca = ca.display(),
    )
}

fn ctr(node_bin: &Path, cluster_dir: &Path) -> Command {
    let mut cmd = Command::new(node_bin.join("ctr"));
    cmd.arg("--address")
        .arg(containerd_socket(cluster_dir))
        .args(["--namespace", "k8s.io"])
        .stdin(Stdio::null());
    cmd
}

/// Imports the node's images into containerd's CRI namespace.
pub fn import_images(node_bin: &Path, cluster_dir: &Path) -> Result<()> {
    for archive in node_image::archives(node_bin) {
        let out = ctr(node_bin, cluster_dir)
            .args(["images", "import"])
            .arg(&archive)
            .output()
            .context("running ctr images import")?;
        if !out.status.success() {
            bail!(
                "ctr images import {} failed: {}",
                archive.display(),
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
    Ok(())
}

/// Before containerd stops: kill and delete every container's task (sandboxes included), which the
/// shims would otherwise keep running; a shim whose last task is deleted exits and removes its socket.
/// Best effort: containerd may already be gone.
pub fn kill_containers(node_bin: &Path, cluster_dir: &Path) {
    let Ok(out) = ctr(node_bin, cluster_dir)
        .args(["tasks", "ls", "-q"])
        .output()
    else {
        return;
    };
    for id in String::from_utf8_lossy(&out.stdout).split_whitespace() {
        let _ = ctr(node_bin, cluster_dir)
            .args(["tasks", "delete", "--force", id])
            .output();
    }
}

/// After containerd and the kubelet stopped: end leftover shims (ours: they name our socket), unmount
/// what the node mounted under its state dir and remove its bridge, so the state dir can be deleted.
pub fn clean_up(cluster_dir: &Path, node_bin: Option<&Path>) {
    if !state_dir(cluster_dir).exists() {
        return;
    }
    if let Some(node_bin) = node_bin {
        let socket = containerd_socket(cluster_dir);
        let shim = node_bin.join("containerd-shim-runc-v2");
        for (pid, id) in shims(&shim, &socket) {
            // SAFETY: plain syscall on a pid we just read from /proc.
            unsafe {
                libc::kill(pid as libc::pid_t, libc::SIGKILL);
            }
            // A killed shim leaves its socket, named as containerd names it (shim.SocketAddress).
            if let Some(id) = id
                && let Some(hash) = sha256_hex(&format!("{}/k8s.io/{id}", socket.display()))
            {
                let _ = std::fs::remove_file(Path::new("/run/containerd/s").join(hash));
            }
        }
    }
    unmount_under(&state_dir(cluster_dir));
    remove_log_links(&state_dir(cluster_dir));
    let _ = Command::new("ip")
        .args(["link", "delete", BRIDGE])
        .stderr(Stdio::null())
        .status();
}

/// The shims (`program`) serving containerd at `socket`: pid and `-id` argument.
fn shims(program: &Path, socket: &Path) -> Vec<(u32, Option<String>)> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let program = program.as_os_str().as_encoded_bytes();
    let socket = socket.as_os_str().as_encoded_bytes();
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
            let words: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
            if words.first() != Some(&program) || !words.contains(&socket) {
                return None;
            }
            let id = words
                .windows(2)
                .find(|w| w[0] == b"-id")
                .map(|w| String::from_utf8_lossy(w[1]).into_owned());
            Some((pid, id))
        })
        .collect()
}

fn sha256_hex(text: &str) -> Option<String> {
    let mut child = Command::new("sha256sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .ok()?;
    std::io::Write::write_all(&mut child.stdin.take()?, text.as_bytes()).ok()?;
    let out = child.wait_with_output().ok()?;
    let hex = String::from_utf8_lossy(&out.stdout);
    hex.split_whitespace().next().map(str::to_string)
}

/// The kubelet links each container's log into /var/log/containers (a fixed path); drop our links.
fn remove_log_links(dir: &Path) {
    let Ok(entries) = std::fs::read_dir("/var/log/containers") else {
        return;
    };
    for link in entries.filter_map(|e| Some(e.ok()?.path())) {
        if std::fs::read_link(&link).is_ok_and(|target| target.starts_with(dir)) {
            let _ = std::fs::remove_file(&link);
        }
    }
}

/// Lazily unmounts every mount point under `dir`, deepest first.
fn unmount_under(dir: &Path) {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return;
    };
    let prefix = dir.as_os_str().as_encoded_bytes();
    let mut points: Vec<&str> = info
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|p| p.as_bytes().starts_with(prefix))
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.len()));
    for point in points {
        // mountinfo escapes spaces as \040; our paths have none, so a failed unmount is only logged.
        let Ok(c) = std::ffi::CString::new(point) else {
            continue;
        };
        // SAFETY: a valid NUL-terminated path.
        if unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) } != 0 {
            eprintln!(
                "could not unmount {point}: {}",
                std::io::Error::last_os_error()
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubelet_config_allows_cgroup_v1_and_taints_the_node() {
        let pki_dir = std::env::temp_dir().join(format!("xtask-node-pki-{}", std::process::id()));
        let pki = crate::pki::generate(&pki_dir, Some("192.0.2.7")).unwrap();
        let yaml = kubelet_yaml(
            Path::new("/s/node"),
            &pki,
            Path::new("/s/pki/ca.crt"),
            "192.0.2.7",
            1,
        );
        std::fs::remove_dir_all(&pki_dir).unwrap();
        assert!(yaml.contains("failCgroupV1: false\n"));
        assert!(yaml.contains("cgroupDriver: cgroupfs\n"));
        assert!(
            yaml.contains("key: ecs-operator.dev/real-node, value: \"true\", effect: NoSchedule")
        );
        assert!(yaml.contains("containerRuntimeEndpoint: unix:///s/node/containerd.sock\n"));
        // Where the apiserver reaches it for logs and exec; never every interface.
        assert!(yaml.contains("address: 192.0.2.7\n"));
    }

    #[test]
    fn containerd_uses_our_runc_and_pause_image() {
        let toml = containerd_toml(Path::new("/s/node"), Path::new("/b"));
        assert!(toml.contains("BinaryName = \"/b/runc\""));
        assert!(toml.contains("sandbox = \"ecs-operator.test/pause:1\""));
        assert!(toml.contains("SystemdCgroup = false"));
    }
}
