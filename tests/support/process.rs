//! The operator as a real, separate process (the `ecs-operator` binary of this build), so that a test can
//! crash it for real: SIGKILL ends every task of it at once, with no graceful shutdown, no lease release
//! and no in-flight reconcile finished — exactly what an OOM kill or a node loss does to a pod.
//!
//! Its output goes to a file under the target directory (printed at start, and its tail at the end of a
//! failing test) so that a failure can be diagnosed after the fact.

use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

/// SIGKILL, SIGTERM, SIGSTOP, SIGCONT on Linux.
pub const SIGKILL: i32 = 9;
pub const SIGTERM: i32 = 15;
pub const SIGSTOP: i32 = 19;
pub const SIGCONT: i32 = 18;

unsafe extern "C" {
    #[link_name = "kill"]
    fn libc_kill(pid: i32, sig: i32) -> i32;
}

/// Sends `sig` to `pid`; false if the process does not exist (any more).
pub fn signal(pid: u32, sig: i32) -> bool {
    // SAFETY: kill(2) takes plain integers and touches no memory of ours.
    unsafe { libc_kill(pid as i32, sig) == 0 }
}

/// Sends `sig` to the process group `pid` leads, or to `pid` alone if there is no such group.
pub fn signal_group(pid: u32, sig: i32) -> bool {
    // SAFETY: as in [`signal`].
    unsafe { libc_kill(-(pid as i32), sig) == 0 || libc_kill(pid as i32, sig) == 0 }
}

/// A running `ecs-operator run --namespace <ns> …` process; SIGKILLed when dropped.
pub struct OperatorProcess {
    child: Child,
    /// Where its stdout and stderr go.
    pub log: PathBuf,
    /// Paused with SIGSTOP and not resumed yet.
    stopped: bool,
}

impl OperatorProcess {
    /// Starts the operator for `namespace`, with the arguments tests usually want (tasks without a health
    /// check are healthy 1 s after RUNNING, an admin port of its own, info logs) followed by `extra`.
    pub fn start(namespace: &str, extra: &[&str]) -> Self {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("operator-logs");
        std::fs::create_dir_all(&dir).expect("create the operator log directory");
        let log = dir.join(format!(
            "{namespace}-{}.log",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_millis()
        ));
        let out = std::fs::File::create(&log).expect("create the operator log file");
        let err = out.try_clone().expect("clone the log file handle");
        let mut cmd = Command::new(binary());
        cmd.args(["run", "--namespace", namespace]);
        if let Ok(identity) = std::env::var(super::OPERATOR_IDENTITY) {
            cmd.arg("--kubeconfig")
                .arg(impersonating_kubeconfig(&dir, &identity));
        }
        let child = cmd
            .args(["--healthy-after-running-seconds", "1"])
            .args(["--admin-address", "127.0.0.1:0"])
            .args(["--log-level", "info,kube_runtime=debug"])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            .spawn()
            .expect("start the operator binary");
        eprintln!(
            "operator pid {} ({}) for {namespace}, log {}",
            child.id(),
            binary().display(),
            log.display()
        );
        Self {
            child,
            log,
            stopped: false,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// True while the process has not exited.
    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().ok().flatten().is_none()
    }

    /// Crashes it: SIGKILL, then reaps it (returns once the process is gone).
    pub fn sigkill(&mut self) {
        signal(self.pid(), SIGKILL);
        let _ = self.child.wait();
        self.stopped = false;
    }

    /// Freezes it (SIGSTOP): it keeps its connections and leases but does nothing.
    pub fn pause(&mut self) {
        assert!(signal(self.pid(), SIGSTOP), "SIGSTOP the operator");
        self.stopped = true;
    }

    /// Thaws it (SIGCONT).
    pub fn resume(&mut self) {
        assert!(signal(self.pid(), SIGCONT), "SIGCONT the operator");
        self.stopped = false;
    }

    /// SIGTERM, as Kubernetes stops a pod, then waits for the exit; fails the test after `within`.
    pub async fn terminate(&mut self, within: Duration) -> ExitStatus {
        if self.stopped {
            self.resume();
        }
        signal(self.pid(), SIGTERM);
        let until = tokio::time::Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait for the operator") {
                return status;
            }
            assert!(
                tokio::time::Instant::now() < until,
                "the operator did not exit within {within:?} of SIGTERM; log {}",
                self.log.display()
            );
            // Polling our own child's exit status: there is nothing to watch.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The last `lines` lines of its log.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// How many log lines contain `needle` (e.g. a watch error the test wants to be sure happened).
    pub fn log_count(&self, needle: &str) -> usize {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains(needle))
            .count()
    }
}

/// Environment variable naming the operator binary to run instead of this build's (a release build, or
/// a copy that other builds sharing the target directory cannot overwrite while the tests run).
pub const BINARY_ENV: &str = "ECS_OPERATOR_BIN";

fn binary() -> PathBuf {
    std::env::var_os(BINARY_ENV)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_ecs-operator")))
}

/// A copy of $KUBECONFIG whose users act as `identity` (`as:`), so that the process runs with that
/// identity's RBAC, as [`super::Operator`] does for [`super::OPERATOR_IDENTITY`].
fn impersonating_kubeconfig(dir: &std::path::Path, identity: &str) -> PathBuf {
    let source = std::env::var_os("KUBECONFIG").expect("KUBECONFIG");
    let text = std::fs::read_to_string(&source).expect("read the kubeconfig");
    let mut config: serde_json::Value = serde_yaml_ng::from_str(&text).expect("a YAML kubeconfig");
    for user in config["users"].as_array_mut().into_iter().flatten() {
        user["user"]["as"] = identity.into();
    }
    let path = dir.join(format!("kubeconfig-as-{}", identity.replace(':', "_")));
    std::fs::write(&path, serde_json::to_string(&config).unwrap()).expect("write the kubeconfig");
    path
}

impl Drop for OperatorProcess {
    fn drop(&mut self) {
        if self.is_running() {
            signal(self.pid(), SIGKILL);
            let _ = self.child.wait();
        }
        if std::thread::panicking() {
            eprintln!(
                "--- last lines of the operator log {} ---\n{}",
                self.log.display(),
                self.log_tail(40)
            );
        }
    }
}
