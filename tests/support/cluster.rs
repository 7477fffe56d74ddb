//! Faults of the shared control plane itself: restarting kube-apiserver and compacting etcd.
//!
//! The cluster is the one `cargo xtask cluster up` started (xtask/src/cluster.rs): its state directory
//! is the kubeconfig's directory, and its `state` file records each process's pid as `pid.<name>=<pid>`.
//! A restarted apiserver runs the same command line as before, appends to the same log, and its new pid
//! is written back to the state file, so `cargo xtask cluster up/down` keep managing it.

use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::process::{SIGKILL, SIGTERM, signal_group};

unsafe extern "C" {
    fn setsid() -> i32;
    fn flock(fd: i32, operation: i32) -> i32;
}
const LOCK_EX: i32 = 2;

/// The cluster's state directory: where the kubeconfig lives.
pub fn state_dir() -> PathBuf {
    let kubeconfig = std::env::var_os("KUBECONFIG").expect("KUBECONFIG names the test cluster");
    Path::new(&kubeconfig)
        .parent()
        .expect("the kubeconfig lives in the cluster's state directory")
        .to_path_buf()
}

fn read_state(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("state")).expect("the cluster's state file")
}

/// The recorded pid of one of the cluster's processes.
pub fn pid_of(name: &str) -> u32 {
    let key = format!("pid.{name}=");
    read_state(&state_dir())
        .lines()
        .find_map(|l| l.strip_prefix(&key)?.parse().ok())
        .unwrap_or_else(|| panic!("no {name} pid in the cluster state file"))
}

/// The command line of a running process (argv, from /proc).
fn cmdline(pid: u32) -> Option<Vec<String>> {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let args: Vec<String> = raw
        .split(|b| *b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    (!args.is_empty()).then_some(args)
}

/// Alive and not a zombie.
fn is_running(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    !matches!(
        stat.rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next()),
        Some("Z" | "X") | None
    )
}

/// The recorded apiserver pid runs the apiserver (not a zombie, not a reused pid).
fn apiserver_running() -> bool {
    let pid = pid_of("kube-apiserver");
    is_running(pid) && cmdline(pid).is_some_and(|a| a[0].ends_with("/kube-apiserver"))
}

/// Replaces `pid.<name>=…` in the state file, under the lock xtask takes for `up`/`down`.
fn record_pid(name: &str, pid: u32) {
    let dir = state_dir();
    let mut lock_name = dir.file_name().unwrap_or_default().to_owned();
    lock_name.push(".lock");
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.with_file_name(lock_name))
        .expect("open the cluster lock");
    // SAFETY: flock on a descriptor we own; released when `lock` is closed.
    unsafe { flock(std::os::fd::AsRawFd::as_raw_fd(&lock), LOCK_EX) };
    let key = format!("pid.{name}=");
    let text: String = read_state(&dir)
        .lines()
        .map(|l| {
            if l.starts_with(&key) {
                format!("{key}{pid}\n")
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    let tmp = dir.join("state.tmp");
    std::fs::write(&tmp, text).expect("write the cluster state");
    std::fs::rename(&tmp, dir.join("state")).expect("replace the cluster state");
    drop(lock);
}

/// How long a stopping apiserver gets before SIGKILL. It stops accepting connections at once, then
/// lingers about 20 s draining while serving nothing: waiting for that would only lengthen the outage.
pub const STOP_GRACE: Duration = Duration::from_secs(5);

/// The API server's command line, saved before it is stopped so that it can always be started again.
#[derive(Clone, Debug)]
pub struct ApiServer {
    args: Vec<String>,
    log: PathBuf,
}

impl ApiServer {
    /// The apiserver of the test cluster. Its command line is read from /proc while it runs and kept
    /// in `<state dir>/kube-apiserver.cmdline`, so that it can be started again even after a test binary
    /// died while the apiserver was down.
    pub fn current() -> Self {
        let saved = state_dir().join("kube-apiserver.cmdline");
        let args = match cmdline(pid_of("kube-apiserver")).filter(|_| apiserver_running()) {
            Some(args) => {
                std::fs::write(&saved, args.join("\0")).expect("save the apiserver command line");
                args
            }
            None => std::fs::read_to_string(&saved)
                .expect("kube-apiserver is not running and its command line was never saved")
                .split('\0')
                .map(String::from)
                .collect(),
        };
        Self {
            args,
            log: state_dir().join("kube-apiserver.log"),
        }
    }

    /// The etcd client URL the apiserver uses (plain HTTP on 127.0.0.1, see xtask/src/cluster.rs).
    pub fn etcd_url(&self) -> String {
        self.args
            .iter()
            .find_map(|a| a.strip_prefix("--etcd-servers="))
            .expect("--etcd-servers on the apiserver's command line")
            .split(',')
            .next()
            .unwrap()
            .to_string()
    }

    /// SIGTERM and wait for the exit, SIGKILL after [`STOP_GRACE`]. Returns how long the shutdown took
    /// and whether it needed SIGKILL. (It stops listening at once but drains for about 20 s more.)
    pub fn stop(&self) -> (Duration, bool) {
        let pid = pid_of("kube-apiserver");
        assert!(apiserver_running(), "kube-apiserver is not running");
        let start = Instant::now();
        // Each daemon leads its own process group.
        signal_group(pid, SIGTERM);
        let until = start + STOP_GRACE;
        let mut killed = false;
        while is_running(pid) {
            if !killed && Instant::now() > until {
                signal_group(pid, SIGKILL);
                killed = true;
            }
            // The apiserver is not our child: /proc is the only way to see it go.
            std::thread::sleep(Duration::from_millis(20));
        }
        (start.elapsed(), killed)
    }

    /// Starts it again with the same command line (own session, output appended to its log) and
    /// records the new pid. Does not wait for readiness (see [`wait_ready`]).
    pub fn start(&self) -> u32 {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("open the apiserver log");
        let err = log.try_clone().unwrap();
        let mut cmd = Command::new(&self.args[0]);
        cmd.args(&self.args[1..])
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(err));
        // SAFETY: setsid is async-signal-safe; as xtask does, so that it outlives the test binary.
        unsafe {
            cmd.pre_exec(|| {
                if setsid() < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd.spawn().expect("start kube-apiserver");
        let pid = child.id();
        // Deliberately not waited on: it must outlive this process, like the daemons xtask starts.
        std::mem::forget(child);
        record_pid("kube-apiserver", pid);
        pid
    }

    /// Starts it again if the recorded process is not running (after a test that failed mid-outage), and
    /// waits until it is ready; false if it is not ready within a minute.
    pub fn ensure_running(&self) -> bool {
        if !apiserver_running() {
            eprintln!("kube-apiserver is down: starting it again");
            self.start();
        }
        wait_ready_blocking(Duration::from_secs(60))
    }
}

/// A stopped apiserver that is started again (and awaited) when dropped, even if the test fails.
pub struct Outage {
    server: Option<ApiServer>,
}

impl Outage {
    /// Stops the apiserver (SIGTERM, wait).
    pub fn begin(server: &ApiServer) -> Self {
        let (took, killed) = server.stop();
        eprintln!(
            "kube-apiserver stopped in {took:?}{}",
            if killed {
                " (SIGKILL after the grace)"
            } else {
                ""
            }
        );
        Self {
            server: Some(server.clone()),
        }
    }

    /// Starts it again and waits for /readyz; returns how long readiness took.
    pub async fn end(mut self) -> Duration {
        let server = self.server.take().unwrap();
        let start = Instant::now();
        server.start();
        wait_ready(Duration::from_secs(60)).await;
        start.elapsed()
    }
}

impl Drop for Outage {
    fn drop(&mut self) {
        // Synchronously: after a panic the runtime may never run a spawned task, and every later test
        // binary needs the apiserver.
        if let Some(server) = self.server.take()
            && !server.ensure_running()
        {
            eprintln!("kube-apiserver did not come back within a minute");
        }
    }
}

/// Waits until the apiserver answers /readyz with ok; fails the test after `deadline`. Polls (there is
/// nothing to watch while it is down), through kubectl as `cargo xtask cluster up` does.
pub async fn wait_ready(deadline: Duration) {
    let ready = tokio::task::spawn_blocking(move || wait_ready_blocking(deadline))
        .await
        .unwrap();
    assert!(ready, "kube-apiserver not ready within {deadline:?}");
}

/// [`wait_ready`] without a runtime (for Drop). False if not ready within `deadline`.
pub fn wait_ready_blocking(deadline: Duration) -> bool {
    let until = Instant::now() + deadline;
    while Instant::now() < until {
        let ok = Command::new("kubectl")
            .args(["get", "--raw", "/readyz", "--request-timeout=5s"])
            .output()
            .is_ok_and(|o| o.status.success() && o.stdout.starts_with(b"ok"));
        if ok {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

/// One HTTP/1.1 POST of a JSON body to etcd's v3 gateway; returns the response body.
fn etcd_post(url: &str, path: &str, body: &str) -> serde_json::Value {
    let addr = url
        .strip_prefix("http://")
        .expect("etcd serves plain HTTP on 127.0.0.1");
    let mut s = std::net::TcpStream::connect(addr).expect("connect to etcd");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = String::new();
    s.read_to_string(&mut response).expect("etcd's answer");
    let (head, body) = response
        .split_once("\r\n\r\n")
        .expect("an HTTP response from etcd");
    assert!(head.starts_with("HTTP/1.1 200"), "etcd {path}: {response}");
    // The gateway answers with a chunked body only for streams; a plain JSON body otherwise.
    serde_json::from_str(body.trim()).unwrap_or_else(|e| panic!("etcd {path}: {e}: {body}"))
}

/// Compacts etcd to its current revision (physically), so that every older resourceVersion is gone:
/// a watch or list from one is answered 410 Gone. Returns the revision.
pub fn compact_etcd(etcd_url: &str) -> u64 {
    // Any key will do: the response header carries the store's current revision. ("AA==" is "\0".)
    let range = etcd_post(etcd_url, "/v3/kv/range", r#"{"key":"AA==","limit":"1"}"#);
    let revision: u64 = range["header"]["revision"]
        .as_str()
        .and_then(|r| r.parse().ok())
        .unwrap_or_else(|| panic!("no revision in {range}"));
    etcd_post(
        etcd_url,
        "/v3/kv/compaction",
        &format!(r#"{{"revision":"{revision}","physical":true}}"#),
    );
    revision
}
