//! The local test cluster: etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok and
//! metrics-server, all on 127.0.0.1, daemonised so they outlive `cargo xtask`, with six kwok nodes in three
//! zones. kwok simulates the nodes' resource usage; metrics-server serves it as `metrics.k8s.io` through the
//! apiserver's aggregation layer, so `kubectl top` and HorizontalPodAutoscalers work.
//!
//! State lives in `$ECS_OPERATOR_CLUSTER_DIR` (default `~/.cache/ecs-operator/cluster`): the PKI, the admin
//! kubeconfig, one log file per process and a `state` file with the pids. etcd keeps its data in /dev/shm.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::util::{self, Fnv};
use crate::{build, gateway_api, node, pki, proc};

/// Environment variable naming the state directory.
pub const DIR_ENV: &str = "ECS_OPERATOR_CLUSTER_DIR";

/// What a caller needs to use the cluster.
#[derive(Debug, Clone)]
pub struct ClusterInfo {
    /// Admin kubeconfig (system:masters), for kubectl, helm, the operator and the tests.
    pub kubeconfig: PathBuf,
    /// Directory with kubectl, helm, kwok and the control-plane binaries.
    pub bin_dir: PathBuf,
    /// The apiserver's URL, `https://127.0.0.1:<port>`.
    pub server: String,
    /// The state directory (logs are `<state_dir>/<process>.log`).
    pub state_dir: PathBuf,
    /// False when `up` found a running cluster and reused it.
    pub started_now: bool,
}

impl ClusterInfo {
    /// The lines `cluster up` and `cluster env` print: shell exports, then the kubeconfig path alone last.
    pub fn env_lines(&self) -> String {
        format!(
            "export PATH={}:$PATH\nexport KUBECONFIG={}\n{}\n",
            self.bin_dir.display(),
            self.kubeconfig.display(),
            self.kubeconfig.display()
        )
    }

    /// A `kubectl` command using this cluster's kubeconfig.
    pub fn kubectl(&self) -> Command {
        let mut cmd = Command::new(self.bin_dir.join("kubectl"));
        cmd.arg("--kubeconfig").arg(&self.kubeconfig);
        cmd
    }
}

/// Start order; `down` stops in reverse.
const PROCESSES: &[&str] = &[
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kwok",
    "metrics-server",
];

/// The apiserver's audit policy and log, in the state directory. A policy file also marks a cluster
/// started with the audit log: one without it is restarted by `up`.
const AUDIT_POLICY: &str = "audit-policy.yaml";
const AUDIT_POLICY_YAML: &str = include_str!("../audit-policy.yaml");
const AUDIT_LOG: &str = "audit.log";
/// Rotated at this size (MB) into `audit-<time>.log`, keeping this many old files.
const AUDIT_LOG_MAX_MB: &str = "50";
const AUDIT_LOG_BACKUPS: &str = "2";

/// Pod CIDR handed to kwok; each node gets a /24 of it as its podCIDR, from which kwok assigns pod IPs.
const POD_CIDR: &str = "10.244.0.0/16";
const SERVICE_CIDR: &str = "10.96.0.0/16";

/// Seconds before the controller-manager marks a silent node Unknown, and its check interval.
const NODE_MONITOR_GRACE: &str = "20s";
const NODE_MONITOR_PERIOD: &str = "2s";
/// Default tolerations for not-ready/unreachable added to every pod: eviction this long after the taint.
const EVICTION_TOLERATION_SECONDS: &str = "10";
/// kwok renews each node's Lease every quarter of this; must stay well inside NODE_MONITOR_GRACE.
const NODE_LEASE_SECONDS: &str = "20";

/// How often the HPA controller recomputes (default 15s), so autoscaling tests converge in seconds.
const HPA_SYNC_PERIOD: &str = "5s";
/// Default scale-in stabilisation of HPAs without `behavior` (default 5m).
const HPA_DOWNSCALE_STABILIZATION: &str = "15s";
/// Until a pod is this old its CPU sample counts only once it is Ready for a full metrics window
/// (default 5m): kwok pods are Ready at once, so a short period loses nothing.
const HPA_CPU_INITIALIZATION_PERIOD: &str = "30s";
/// metrics-server scrapes every node this often; 10s is its minimum. A CPU rate needs two scrapes.
const METRIC_RESOLUTION: &str = "10s";
/// The address every node offers metrics-server: kwok's server, which serves all nodes' endpoints.
const KUBELET_ADDRESS: &str = "127.0.0.1";

pub struct NodeSpec {
    pub name: &'static str,
    pub zone: &'static str,
}

/// Two nodes in each of three zones.
pub const NODES: &[NodeSpec] = &[
    NodeSpec {
        name: "node-a1",
        zone: "us-east-1a",
    },
    NodeSpec {
        name: "node-a2",
        zone: "us-east-1a",
    },
    NodeSpec {
        name: "node-b1",
        zone: "us-east-1b",
    },
    NodeSpec {
        name: "node-b2",
        zone: "us-east-1b",
    },
    NodeSpec {
        name: "node-c1",
        zone: "us-east-1c",
    },
    NodeSpec {
        name: "node-c2",
        zone: "us-east-1c",
    },
];
pub const REGION: &str = "us-east-1";
pub const INSTANCE_TYPE: &str = "m5.large";

/// The kwok stages: copied from the kwok module, plus some of our own (see xtask/kwok/README.md).
const STAGES: &[&str] = &[
    include_str!("../kwok/node-initialize.yaml"),
    include_str!("../kwok/node-heartbeat-with-lease.yaml"),
    include_str!("../kwok/node-not-ready.yaml"),
    include_str!("../kwok/pod-ready.yaml"),
    include_str!("../kwok/pod-complete.yaml"),
    include_str!("../kwok/pod-delete.yaml"),
    include_str!("../kwok/pod-container-running-failed.yaml"),
    include_str!("../kwok/pod-init-container-running-failed.yaml"),
    include_str!("../kwok/pod-complete-on-demand.yaml"),
    include_str!("../kwok/pod-crash-image.yaml"),
    include_str!("../kwok/pod-succeed-image.yaml"),
    include_str!("../kwok/pod-unhealthy-image.yaml"),
    include_str!("../kwok/pod-unhealthy-on-demand.yaml"),
];

/// kwok's `--config` file in the state directory; a running cluster whose file differs from
/// [`kwok_config_yaml`] (stages added since it started) is restarted by `up`.
const KWOK_CONFIG: &str = "kwok.yaml";

/// kwok's simulated resource usage: a kubelet-style `/metrics/resource` per node, and pod usage read from
/// the annotations `kwok.x-k8s.io/usage-cpu` and `kwok.x-k8s.io/usage-memory` (see xtask/kwok/README.md).
const METRICS: &[&str] = &[
    include_str!("../kwok/metrics-resource.yaml"),
    include_str!("../kwok/usage-from-annotation.yaml"),
];

pub fn state_dir() -> Result<PathBuf> {
    match std::env::var_os(DIR_ENV) {
        Some(d) if !d.is_empty() => Ok(PathBuf::from(d)),
        _ => Ok(util::cache_root()?.join("cluster")),
    }
}

fn lock_path(dir: &Path) -> PathBuf {
    let mut name = dir.file_name().unwrap_or_default().to_owned();
    name.push(".lock");
    dir.with_file_name(name)
}

/// etcd's data on tmpfs; derived from the state dir so two state dirs never share it.
fn etcd_data_dir(dir: &Path) -> PathBuf {
    let key = Fnv::new()
        .update(dir.as_os_str().as_encoded_bytes())
        .hex(12);
    let shm = Path::new("/dev/shm");
    if shm.is_dir() {
        shm.join(format!("ecs-operator-etcd-{key}"))
    } else {
        dir.join("etcd-data")
    }
}

/// The `state` file: `key=value` lines, rewritten after every change so that an interrupted start can be
/// cleaned up.
struct State {
    dir: PathBuf,
    bin_dir: PathBuf,
    /// The real node's binaries, when the cluster has one.
    node_dir: Option<PathBuf>,
    server: String,
    pids: BTreeMap<String, u32>,
    ready: bool,
}

impl State {
    fn path(dir: &Path) -> PathBuf {
        dir.join("state")
    }

    fn load(dir: &Path) -> Result<Option<State>> {
        let text = match std::fs::read_to_string(Self::path(dir)) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).context("reading cluster state"),
        };
        let mut state = State {
            dir: dir.to_path_buf(),
            bin_dir: PathBuf::new(),
            node_dir: None,
            server: String::new(),
            pids: BTreeMap::new(),
            ready: false,
        };
        for line in text.lines() {
            let Some((k, v)) = line.split_once('=') else {
                continue;
            };
            match k {
                "bin_dir" => state.bin_dir = v.into(),
                "node_dir" => state.node_dir = Some(v.into()),
                "server" => state.server = v.into(),
                "ready" => state.ready = v == "true",
                _ => {
                    if let Some(name) = k.strip_prefix("pid.") {
                        state
                            .pids
                            .insert(name.into(), v.parse().context("bad pid in cluster state")?);
                    }
                }
            }
        }
        Ok(Some(state))
    }

    fn save(&self) -> Result<()> {
        let mut s = String::new();
        writeln!(s, "bin_dir={}", self.bin_dir.display())?;
        if let Some(node_dir) = &self.node_dir {
            writeln!(s, "node_dir={}", node_dir.display())?;
        }
        writeln!(s, "server={}", self.server)?;
        for (name, pid) in &self.pids {
            writeln!(s, "pid.{name}={pid}")?;
        }
        writeln!(s, "ready={}", self.ready)?;
        let tmp = self.dir.join("state.tmp");
        util::write_file(&tmp, s)?;
        std::fs::rename(&tmp, Self::path(&self.dir))?;
        Ok(())
    }

    fn info(&self, started_now: bool) -> ClusterInfo {
        ClusterInfo {
            kubeconfig: self.dir.join("kubeconfig"),
            bin_dir: self.bin_dir.clone(),
            server: self.server.clone(),
            state_dir: self.dir.clone(),
            started_now,
        }
    }

    fn program(&self, name: &str) -> PathBuf {
        match &self.node_dir {
            // The kubelet comes with the other Kubernetes binaries, containerd with the node's.
            Some(node_dir) if name == "containerd" => node_dir.join(name),
            _ => self.bin_dir.join(name),
        }
    }

    /// Every process of this cluster, in start order.
    fn processes(&self) -> Vec<&'static str> {
        let mut all = PROCESSES.to_vec();
        if self.node_dir.is_some() {
            all.extend(node::PROCESSES);
        }
        all
    }

    /// The first recorded process that is not running, if any.
    fn first_dead(&self) -> Option<&'static str> {
        self.processes()
            .into_iter()
            .find(|name| match self.pids.get(*name) {
                Some(pid) => !proc::is_running(*pid, &self.program(name)),
                None => true,
            })
    }

    /// Running processes in reverse start order, for stopping.
    fn stop_list(&self) -> Vec<(String, u32, PathBuf)> {
        self.processes()
            .into_iter()
            .rev()
            .filter_map(|name| {
                self.pids
                    .get(name)
                    .map(|pid| (name.to_string(), *pid, self.program(name)))
            })
            .collect()
    }
}

/// Starts the cluster, or reuses the one already running. Builds the binaries first if needed. With
/// `real_node`, the cluster also has the real node (node.rs); a running cluster without one is restarted.
pub fn up(real_node: bool) -> Result<ClusterInfo> {
    let node_dir = if real_node {
        if let Some(reason) = node::unsupported_reason() {
            bail!("the real node cannot run on this machine: {reason}");
        }
        Some(build::ensure_node_binaries()?)
    } else {
        None
    };
    let bin_dir = build::ensure_binaries()?;
    let dir = state_dir()?;
    let _lock = util::FileLock::acquire(&lock_path(&dir))?;
    if let Some(state) = State::load(&dir)? {
        if state.bin_dir != bin_dir {
            eprintln!(
                "the running cluster uses other binaries ({}): restarting it",
                state.bin_dir.display()
            );
        } else if node_dir.is_some() && state.node_dir != node_dir {
            eprintln!(
                "the running cluster has no real node, or another build of it: restarting it"
            );
        } else if !state.ready {
            eprintln!("found the state of an unfinished start: cleaning up");
        } else if !dir.join(AUDIT_POLICY).exists() {
            eprintln!("the running cluster has no audit log (an older start): restarting it");
        } else if std::fs::read_to_string(dir.join(KWOK_CONFIG)).ok() != Some(kwok_config_yaml()) {
            eprintln!(
                "the running cluster's kwok has other stages (an older start): restarting it"
            );
        } else if let Some(dead) = state.first_dead() {
            eprintln!("{dead} of the recorded cluster is not running: cleaning up");
        } else if readyz(&state.info(false)) {
            eprintln!("reusing the running cluster at {}", state.server);
            let info = state.info(false);
            // A cluster started before the Gateway API CRDs were part of it gets them now.
            gateway_api::install(&info)?;
            return Ok(info);
        } else {
            eprintln!("the recorded cluster does not answer /readyz: restarting it");
        }
        stop(&dir, Some(&state))?;
    } else if dir.exists() {
        stop(&dir, None)?;
    }
    start(&bin_dir, node_dir.as_deref(), &dir)
}

/// Stops the cluster and removes its state. A no-op when nothing is running.
pub fn down() -> Result<()> {
    let dir = state_dir()?;
    let _lock = util::FileLock::acquire(&lock_path(&dir))?;
    let state = State::load(&dir)?;
    if state.is_none() && !dir.exists() {
        eprintln!("no cluster state in {}", dir.display());
    }
    stop(&dir, state.as_ref())?;
    eprintln!("cluster stopped");
    Ok(())
}

/// The running cluster's details, without starting anything; fails if it is not running and ready.
pub fn env() -> Result<ClusterInfo> {
    let dir = state_dir()?;
    let Some(state) = State::load(&dir)? else {
        bail!(
            "no cluster in {}: run `cargo xtask cluster up`",
            dir.display()
        );
    };
    if !state.ready {
        bail!(
            "the cluster in {} is not ready: run `cargo xtask cluster up`",
            dir.display()
        );
    }
    if let Some(dead) = state.first_dead() {
        bail!("{dead} is not running: run `cargo xtask cluster up` to restart the cluster");
    }
    let info = state.info(false);
    if !readyz(&info) {
        bail!("the apiserver at {} is not ready", info.server);
    }
    Ok(info)
}

fn stop(dir: &Path, state: Option<&State>) -> Result<()> {
    if let Some(state) = state {
        let list = state.stop_list();
        let procs: Vec<(String, u32, &Path)> = list
            .iter()
            .map(|(n, pid, p)| (n.clone(), *pid, p.as_path()))
            .collect();
        let killed = stop_processes(state, &procs, Duration::from_secs(15));
        if !killed.is_empty() {
            eprintln!("killed after the grace period: {}", killed.join(", "));
        }
        let left: Vec<&str> = procs
            .iter()
            .filter(|(_, pid, p)| proc::is_running(*pid, p))
            .map(|(n, _, _)| n.as_str())
            .collect();
        if !left.is_empty() {
            bail!("could not stop: {}", left.join(", "));
        }
    }
    // Also without a state: the mounts of an interrupted start would keep the directory from going.
    node::clean_up(dir, state.and_then(|s| s.node_dir.as_deref()));
    let data = etcd_data_dir(dir);
    if data.exists() {
        std::fs::remove_dir_all(&data).with_context(|| format!("removing {}", data.display()))?;
    }
    if dir.exists() {
        std::fs::remove_dir_all(dir).with_context(|| format!("removing {}", dir.display()))?;
    }
    Ok(())
}

/// [`proc::stop_all`], with the real node's containers deleted between the kubelet (first in `procs`,
/// which would start them again) and containerd.
fn stop_processes(state: &State, procs: &[(String, u32, &Path)], grace: Duration) -> Vec<String> {
    let Some(node_dir) = &state.node_dir else {
        return proc::stop_all(procs, grace);
    };
    let (kubelet, rest): (Vec<_>, Vec<_>) =
        procs.iter().cloned().partition(|(n, _, _)| n == "kubelet");
    let mut killed = proc::stop_all(&kubelet, grace);
    node::kill_containers(node_dir, &state.dir);
    killed.extend(proc::stop_all(&rest, grace));
    killed
}

fn free_port() -> Result<u16> {
    // Bound and released at once; the small race with other programs is acceptable for a test cluster.
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn start(bin_dir: &Path, node_dir: Option<&Path>, dir: &Path) -> Result<ClusterInfo> {
    let t0 = Instant::now();
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut state = State {
        dir: dir.to_path_buf(),
        bin_dir: bin_dir.to_path_buf(),
        node_dir: node_dir.map(Path::to_path_buf),
        server: String::new(),
        pids: BTreeMap::new(),
        ready: false,
    };
    match start_processes(&mut state, t0) {
        Ok(()) => {
            state.ready = true;
            state.save()?;
            eprintln!("cluster ready in {:.1}s", t0.elapsed().as_secs_f64());
            Ok(state.info(true))
        }
        Err(e) => {
            eprintln!(
                "cluster start failed: stopping what was started (logs stay in {})",
                dir.display()
            );
            let list = state.stop_list();
            let procs: Vec<(String, u32, &Path)> = list
                .iter()
                .map(|(n, pid, p)| (n.clone(), *pid, p.as_path()))
                .collect();
            stop_processes(&state, &procs, Duration::from_secs(10));
            node::clean_up(dir, node_dir);
            let _ = std::fs::remove_dir_all(etcd_data_dir(dir));
            // Without a state file the next `up` removes the directory and starts afresh.
            let _ = std::fs::remove_file(State::path(dir));
            Err(e)
        }
    }
}

fn arg(k: &str, v: impl AsRef<std::ffi::OsStr>) -> String {
    format!("--{k}={}", v.as_ref().to_string_lossy())
}

fn spawn(state: &mut State, name: &str, args: Vec<String>) -> Result<()> {
    spawn_with_path(state, name, args, None)
}

/// `spawn`, with `path_dir` first on the process's PATH (containerd finds its shim there).
fn spawn_with_path(
    state: &mut State,
    name: &str,
    args: Vec<String>,
    path_dir: Option<&Path>,
) -> Result<()> {
    let log = state.dir.join(format!("{name}.log"));
    let path = path_dir.map(|d| {
        format!(
            "{}:{}",
            d.display(),
            std::env::var("PATH").unwrap_or_default()
        )
    });
    let pid = proc::spawn_daemon(&state.program(name), &args, &log, path.as_deref())?;
    state.pids.insert(name.to_string(), pid);
    state.save()
}

/// Fails with the tail of the process's log if it has exited.
fn check_alive(state: &State, name: &str) -> Result<()> {
    let pid = state.pids[name];
    if !proc::is_running(pid, &state.program(name)) {
        let log = state.dir.join(format!("{name}.log"));
        bail!(
            "{name} exited; last lines of {}:\n{}",
            log.display(),
            util::tail(&log, 30)
        );
    }
    Ok(())
}

fn start_processes(state: &mut State, t0: Instant) -> Result<()> {
    let dir = state.dir.clone();
    let step = |what: &str| eprintln!("[{:5.1}s] {what}", t0.elapsed().as_secs_f64());

    step("generating PKI");
    let node_ip = match &state.node_dir {
        Some(_) => Some(node::host_address().context("the real node needs an IPv4 address")?),
        None => None,
    };
    let pki = pki::generate(&dir.join("pki"), node_ip.as_deref())?;
    let etcd_port = free_port()?;
    let peer_port = free_port()?;
    let api_port = free_port()?;
    let kwok_port = free_port()?;
    let metrics_port = free_port()?;
    state.server = format!("https://127.0.0.1:{api_port}");
    let kubeconfig = dir.join("kubeconfig");
    util::write_private(&kubeconfig, pki.kubeconfig(&state.server))?;

    let data = etcd_data_dir(&dir);
    if data.exists() {
        std::fs::remove_dir_all(&data)?;
    }
    step("starting etcd");
    let etcd_url = format!("http://127.0.0.1:{etcd_port}");
    let peer_url = format!("http://127.0.0.1:{peer_port}");
    spawn(
        state,
        "etcd",
        vec![
            arg("name", "default"),
            arg("data-dir", &data),
            arg("listen-client-urls", &etcd_url),
            arg("advertise-client-urls", &etcd_url),
            arg("listen-peer-urls", &peer_url),
            arg("initial-advertise-peer-urls", &peer_url),
            arg("initial-cluster", format!("default={peer_url}")),
            // Test data only: skipping fsync makes every write far cheaper.
            arg("unsafe-no-fsync", "true"),
            arg("log-level", "warn"),
        ],
    )?;
    util::wait_for("etcd /health", Duration::from_secs(30), || {
        check_alive(state, "etcd")?;
        Ok(etcd_healthy(etcd_port))
    })?;

    step("starting kube-apiserver");
    let audit_policy = dir.join(AUDIT_POLICY);
    util::write_file(&audit_policy, AUDIT_POLICY_YAML)?;
    let mut apiserver_args = vec![
        arg("etcd-servers", &etcd_url),
        // Mandatory on a machine without a default route: the apiserver cannot guess an address.
        arg("bind-address", "127.0.0.1"),
        arg("advertise-address", "127.0.0.1"),
        arg("secure-port", api_port.to_string()),
        arg("tls-cert-file", &pki.serving_cert),
        arg("tls-private-key-file", &pki.serving_key),
        arg("client-ca-file", &pki.ca_cert),
        arg(
            "service-account-issuer",
            "https://kubernetes.default.svc.cluster.local",
        ),
        arg("service-account-key-file", &pki.sa_pub),
        arg("service-account-signing-key-file", &pki.sa_key),
        arg("service-cluster-ip-range", SERVICE_CIDR),
        arg("authorization-mode", "Node,RBAC"),
        // No kube-proxy or real endpoints: don't publish the apiserver in the `kubernetes` Service.
        arg("endpoint-reconciler-type", "none"),
        arg(
            "default-not-ready-toleration-seconds",
            EVICTION_TOLERATION_SECONDS,
        ),
        arg(
            "default-unreachable-toleration-seconds",
            EVICTION_TOLERATION_SECONDS,
        ),
        arg("allow-privileged", "true"),
        arg("profiling", "false"),
        // Every write, for tests that must know who wrote what (docs/test-cluster.md, "Audit log").
        arg("audit-policy-file", &audit_policy),
        arg("audit-log-path", dir.join(AUDIT_LOG)),
        arg("audit-log-format", "json"),
        // Written before the response is sent: a client that got its answer finds the entry.
        arg("audit-log-mode", "blocking"),
        arg("audit-log-maxsize", AUDIT_LOG_MAX_MB),
        arg("audit-log-maxbackup", AUDIT_LOG_BACKUPS),
        // The aggregation layer (metrics.k8s.io): the apiserver proxies with the front-proxy client
        // cert and passes the user in these headers, which aggregated servers trust from that CA only.
        arg("requestheader-client-ca-file", &pki.front_proxy_ca_cert),
        arg("requestheader-allowed-names", pki::FRONT_PROXY_CLIENT),
        arg("requestheader-username-headers", "X-Remote-User"),
        arg("requestheader-uid-headers", "X-Remote-Uid"),
        arg("requestheader-group-headers", "X-Remote-Group"),
        arg("requestheader-extra-headers-prefix", "X-Remote-Extra-"),
        arg("proxy-client-cert-file", &pki.front_proxy_client_cert),
        arg("proxy-client-key-file", &pki.front_proxy_client_key),
        // No --enable-aggregator-routing: it resolves APIServices through EndpointSlices only, which
        // refuse loopback addresses; service routing dials an ExternalName as it is (metrics_api_json).
        // `kubectl logs`/`exec`/`port-forward`: the apiserver calls the node's kubelet, verified by the
        // cluster CA, at its ExternalIP (kwok's server for kwok nodes) or InternalIP (the real node).
        arg(
            "kubelet-client-certificate",
            &pki.apiserver_kubelet_client_cert,
        ),
        arg("kubelet-client-key", &pki.apiserver_kubelet_client_key),
        arg("kubelet-certificate-authority", &pki.ca_cert),
        arg(
            "kubelet-preferred-address-types",
            "ExternalIP,InternalIP,Hostname",
        ),
    ];
    if state.node_dir.is_some() {
        // Namespaces that run on the real node tolerate its taint by annotation (node.rs).
        apiserver_args.push(arg("enable-admission-plugins", "PodTolerationRestriction"));
    }
    spawn(state, "kube-apiserver", apiserver_args)?;
    let info = state.info(true);
    util::wait_for("kube-apiserver /readyz", Duration::from_secs(60), || {
        check_alive(state, "kube-apiserver")?;
        Ok(readyz(&info))
    })?;

    step("starting kube-controller-manager, kube-scheduler, kwok");
    spawn(
        state,
        "kube-controller-manager",
        vec![
            arg("kubeconfig", &kubeconfig),
            arg("leader-elect", "false"),
            arg("controllers", "*"),
            // Each controller acts as its own ServiceAccount, so its API writes can be told apart.
            arg("use-service-account-credentials", "true"),
            arg("root-ca-file", &pki.ca_cert),
            arg("service-account-private-key-file", &pki.sa_key),
            arg("cluster-signing-cert-file", &pki.ca_cert),
            arg("cluster-signing-key-file", dir.join("pki/ca.key")),
            arg("node-monitor-grace-period", NODE_MONITOR_GRACE),
            arg("node-monitor-period", NODE_MONITOR_PERIOD),
            // Nodes get their podCIDR at creation.
            arg("allocate-node-cidrs", "false"),
            arg("horizontal-pod-autoscaler-sync-period", HPA_SYNC_PERIOD),
            arg(
                "horizontal-pod-autoscaler-downscale-stabilization",
                HPA_DOWNSCALE_STABILIZATION,
            ),
            arg(
                "horizontal-pod-autoscaler-cpu-initialization-period",
                HPA_CPU_INITIALIZATION_PERIOD,
            ),
            // No HTTPS endpoint: nothing scrapes it, and a fixed default port would clash between clusters.
            arg("secure-port", "0"),
            arg("profiling", "false"),
        ],
    )?;
    spawn(
        state,
        "kube-scheduler",
        vec![
            arg("kubeconfig", &kubeconfig),
            arg("leader-elect", "false"),
            arg("secure-port", "0"),
            arg("profiling", "false"),
        ],
    )?;
    let kwok_config = dir.join(KWOK_CONFIG);
    util::write_file(&kwok_config, kwok_config_yaml())?;
    spawn(
        state,
        "kwok",
        vec![
            arg("kubeconfig", &kubeconfig),
            arg("config", &kwok_config),
            arg(
                "manage-nodes-with-annotation-selector",
                "kwok.x-k8s.io/node=fake",
            ),
            arg("cidr", POD_CIDR),
            // The nodes' kubelet endpoints (metrics), over TLS with a cert from the cluster CA.
            arg("server-address", format!("{KUBELET_ADDRESS}:{kwok_port}")),
            arg("tls-cert-file", &pki.kwok_cert),
            arg("tls-private-key-file", &pki.kwok_key),
        ],
    )?;
    spawn(
        state,
        "metrics-server",
        vec![
            arg("bind-address", "127.0.0.1"),
            arg("secure-port", metrics_port.to_string()),
            arg("tls-cert-file", &pki.metrics_server_cert),
            arg("tls-private-key-file", &pki.metrics_server_key),
            arg("kubeconfig", &kubeconfig),
            // Reads the front-proxy CA and header names from kube-system/extension-apiserver-authentication.
            arg("authentication-kubeconfig", &kubeconfig),
            arg("authorization-kubeconfig", &kubeconfig),
            arg("kubelet-preferred-address-types", "ExternalIP"),
            arg("kubelet-port", kwok_port.to_string()),
            arg("kubelet-certificate-authority", &pki.ca_cert),
            arg("kubelet-request-timeout", "5s"),
            arg("metric-resolution", METRIC_RESOLUTION),
            arg("profiling", "false"),
        ],
    )?;

    step("creating nodes");
    let out = run(
        info.kubectl().args(["create", "-f", "-"]),
        Some(&nodes_json()),
    )?;
    if !out.status.success() {
        bail!(
            "creating nodes failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let out = run(
        info.kubectl().args(["create", "-f", "-"]),
        Some(&metrics_api_json(metrics_port, &pki.ca_bundle())),
    )?;
    if !out.status.success() {
        bail!(
            "registering metrics.k8s.io failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    util::wait_for("6 Ready nodes", Duration::from_secs(60), || {
        for name in [
            "kube-controller-manager",
            "kube-scheduler",
            "kwok",
            "metrics-server",
        ] {
            check_alive(state, name)?;
        }
        Ok(ready_nodes(&info)? == NODES.len())
    })?;
    if let (Some(node_dir), Some(node_ip)) = (state.node_dir.clone(), &node_ip) {
        step("starting the real node (containerd, kubelet)");
        start_real_node(state, &node_dir, node_ip, &pki, &info)?;
    }
    step("installing the Gateway API CRDs");
    gateway_api::install(&info)?;
    step("nodes ready; waiting for the default ServiceAccount");
    util::wait_for(
        "ServiceAccount default/default",
        Duration::from_secs(60),
        || {
            check_alive(state, "kube-controller-manager")?;
            let out = run(
                info.kubectl().args([
                    "get",
                    "serviceaccount",
                    "default",
                    "-n",
                    "default",
                    "-o",
                    "name",
                ]),
                None,
            )?;
            Ok(out.status.success())
        },
    )?;
    Ok(())
}

fn start_real_node(
    state: &mut State,
    node_dir: &Path,
    node_ip: &str,
    pki: &pki::Pki,
    info: &ClusterInfo,
) -> Result<()> {
    let dir = state.dir.clone();
    let (containerd_args, kubelet_args) =
        node::prepare(&dir, node_dir, node_ip, pki, &state.server, free_port()?)?;
    spawn_with_path(state, "containerd", containerd_args, Some(node_dir))?;
    let socket = node::containerd_socket(&dir);
    util::wait_for("containerd's socket", Duration::from_secs(30), || {
        check_alive(state, "containerd")?;
        Ok(socket.exists())
    })?;
    node::import_images(node_dir, &dir)?;
    spawn(state, "kubelet", kubelet_args)?;
    util::wait_for(
        &format!("node {} Ready", pki::NODE_NAME),
        Duration::from_secs(90),
        || {
            check_alive(state, "containerd")?;
            check_alive(state, "kubelet")?;
            let out = run(
                info.kubectl().args([
                    "get",
                    "node",
                    pki::NODE_NAME,
                    "-o",
                    r#"jsonpath={.status.conditions[?(@.type=="Ready")].status}"#,
                ]),
                None,
            )?;
            Ok(out.status.success() && out.stdout == b"True")
        },
    )
}

fn run(cmd: &mut Command, stdin: Option<&str>) -> Result<Output> {
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd.spawn().context("running kubectl")?;
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .expect("piped")
            .write_all(input.as_bytes())?;
    }
    Ok(child.wait_with_output()?)
}

fn etcd_healthy(port: u16) -> bool {
    let get = || -> std::io::Result<String> {
        let mut s = TcpStream::connect(("127.0.0.1", port))?;
        s.set_read_timeout(Some(Duration::from_secs(2)))?;
        s.write_all(b"GET /health HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")?;
        let mut body = String::new();
        s.read_to_string(&mut body)?;
        Ok(body)
    };
    get()
        .map(|b| b.contains(r#""health":"true""#))
        .unwrap_or(false)
}

fn readyz(info: &ClusterInfo) -> bool {
    run(
        info.kubectl()
            .args(["get", "--raw", "/readyz", "--request-timeout=5s"]),
        None,
    )
    .map(|o| o.status.success() && o.stdout.starts_with(b"ok"))
    .unwrap_or(false)
}

fn ready_nodes(info: &ClusterInfo) -> Result<usize> {
    let out = run(
        info.kubectl().args([
            "get",
            "nodes",
            "-o",
            r#"jsonpath={range .items[*]}{.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}"#,
        ]),
        None,
    )?;
    if !out.status.success() {
        return Ok(0);
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| *l == "True")
        .count())
}

fn kwok_config_yaml() -> String {
    // kwok applies no defaults to a KwokConfiguration read from --config (only to the one it makes up when
    // there is none), so every option it needs is spelled out; zero parallelism makes it exit at start.
    let mut s = format!(
        "apiVersion: config.kwok.x-k8s.io/v1alpha1
kind: KwokConfiguration
options:
  cidr: {POD_CIDR}
  manageNodesWithAnnotationSelector: kwok.x-k8s.io/node=fake
  nodeLeaseDurationSeconds: {NODE_LEASE_SECONDS}
  nodeLeaseParallelism: 4
  nodePlayStageParallelism: 4
  podPlayStageParallelism: 4
  podsOnNodeSyncParallelism: 1
  enablePodsOnNodeSyncListPager: true
  enablePodsOnNodeSyncStreamWatch: false
"
    );
    for stage in STAGES.iter().chain(METRICS) {
        s.push_str("---\n");
        s.push_str(stage.trim_end());
        s.push('\n');
    }
    s
}

fn nodes_json() -> String {
    let items: Vec<String> = NODES
        .iter()
        .enumerate()
        .map(|(i, n)| {
            format!(
                r#"{{"apiVersion":"v1","kind":"Node","metadata":{{"name":"{name}",
"labels":{{"kubernetes.io/hostname":"{name}","kubernetes.io/os":"linux","kubernetes.io/arch":"amd64",
"topology.kubernetes.io/region":"{REGION}","topology.kubernetes.io/zone":"{zone}",
"node.kubernetes.io/instance-type":"{INSTANCE_TYPE}","type":"kwok"}},
"annotations":{{"kwok.x-k8s.io/node":"fake",
"metrics.k8s.io/resource-metrics-path":"/metrics/nodes/{name}/metrics/resource"}}}},
"spec":{{"podCIDR":"10.244.{i}.0/24","podCIDRs":["10.244.{i}.0/24"]}},
"status":{{"allocatable":{{"cpu":"4","memory":"16Gi","pods":"110"}},
"capacity":{{"cpu":"4","memory":"16Gi","pods":"110"}},
"addresses":[{{"type":"InternalIP","address":"192.0.2.{ip}"}},{{"type":"Hostname","address":"{name}"}},
{{"type":"ExternalIP","address":"{KUBELET_ADDRESS}"}}]}}}}"#,
                name = n.name,
                zone = n.zone,
                ip = i + 11,
            )
        })
        .collect();
    format!(
        r#"{{"apiVersion":"v1","kind":"List","items":[{}]}}"#,
        items.join(",")
    )
}

/// The APIService for `metrics.k8s.io` and its Service. There is no kube-proxy, so no ClusterIP works,
/// and Endpoints and EndpointSlices refuse loopback addresses: the Service is an ExternalName naming
/// 127.0.0.1, which the aggregator dials as it is, with the APIService's port.
fn metrics_api_json(port: u16, ca_bundle: &str) -> String {
    format!(
        r#"{{"apiVersion":"v1","kind":"List","items":[
{{"apiVersion":"v1","kind":"Service","metadata":{{"name":"metrics-server","namespace":"kube-system"}},
"spec":{{"type":"ExternalName","externalName":"127.0.0.1"}}}},
{{"apiVersion":"apiregistration.k8s.io/v1","kind":"APIService","metadata":{{"name":"v1beta1.metrics.k8s.io"}},
"spec":{{"group":"metrics.k8s.io","version":"v1beta1","groupPriorityMinimum":100,"versionPriority":100,
"caBundle":"{ca_bundle}","service":{{"namespace":"kube-system","name":"metrics-server","port":{port}}}}}}}]}}"#
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_lines_end_with_kubeconfig_alone() {
        let info = ClusterInfo {
            kubeconfig: "/s/kubeconfig".into(),
            bin_dir: "/b".into(),
            server: "https://127.0.0.1:1".into(),
            state_dir: "/s".into(),
            started_now: true,
        };
        assert_eq!(
            info.env_lines(),
            "export PATH=/b:$PATH\nexport KUBECONFIG=/s/kubeconfig\n/s/kubeconfig\n"
        );
    }

    #[test]
    fn kwok_config_has_every_stage() {
        let yaml = kwok_config_yaml();
        assert_eq!(yaml.matches("\nkind: Stage\n").count(), STAGES.len());
        assert!(yaml.contains("name: pod-container-running-failed"));
        assert!(yaml.contains("name: node-not-ready"));
        assert!(yaml.contains("name: pod-succeed-image"));
        assert!(yaml.contains("\nkind: Metric\n"));
        assert!(yaml.contains("\nkind: ClusterResourceUsage\n"));
    }

    #[test]
    fn nodes_and_metrics_api_are_json() {
        let nodes: serde_json::Value = serde_json::from_str(&nodes_json()).unwrap();
        let first = &nodes["items"][0];
        assert_eq!(
            first["metadata"]["annotations"]["metrics.k8s.io/resource-metrics-path"],
            "/metrics/nodes/node-a1/metrics/resource"
        );
        let api: serde_json::Value = serde_json::from_str(&metrics_api_json(4443, "Q0E=")).unwrap();
        assert_eq!(api["items"][1]["spec"]["service"]["port"], 4443);
    }
}
