//! High availability: two operator processes with leader election; only the leader works, a standby
//! takes over when the leader dies, a graceful shutdown hands the lease over at once, and a leader frozen
//! past its lease (SIGSTOP) writes nothing once it resumes — checked in the API server's audit log.

mod support;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ecs_operator::api::service::{Deployment, DeploymentStatus, RolloutState};
use ecs_operator::api::task::LastStatus;
use ecs_operator::api::{Service, Task, TaskDefinition};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;
use support::{TestNamespace, client, install_crds, wait_for, wait_for_within};

/// An operator process with leader election, watching one namespace; killed when dropped.
struct Process(Child);

/// SIGTERM, SIGSTOP and SIGCONT on Linux.
const SIGTERM: i32 = 15;
const SIGSTOP: i32 = 19;
const SIGCONT: i32 = 18;

impl Process {
    /// A 6 s lease through the original flags: renew deadline 6 - 2 = 4 s, retry period 2 s (default).
    fn start(ns: &str, identity: &str) -> Self {
        Self::start_with(
            ns,
            identity,
            &[
                "--lease-duration-seconds",
                "6",
                "--lease-grace-seconds",
                "2",
            ],
        )
    }

    fn start_with(ns: &str, identity: &str, args: &[&str]) -> Self {
        Self::start_logging(ns, identity, args, Stdio::null())
    }

    /// With its log (warnings and errors, on stdout) going to `log`.
    fn start_logging(ns: &str, identity: &str, args: &[&str], log: Stdio) -> Self {
        let child = Command::new(env!("CARGO_BIN_EXE_ecs-operator"))
            .args([
                "run",
                "--namespace",
                ns,
                "--leader-election",
                "--lease-namespace",
                ns,
            ])
            .args(args)
            .args(if args.contains(&"--admin-address") {
                &[][..]
            } else {
                &["--admin-address", "127.0.0.1:0"][..]
            })
            .args(["--log-level", "warn"])
            .env("POD_NAME", identity)
            .stdout(log)
            .stderr(Stdio::null())
            .spawn()
            .expect("start the operator binary");
        Self(child)
    }

    fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }

    fn signal(&self, signal: i32) {
        // SAFETY: kill(2) on our own child's pid.
        let rc = unsafe { libc_kill(self.0.id() as i32, signal) };
        assert_eq!(rc, 0, "kill({}, {signal}) failed", self.0.id());
    }

    /// Waits (at most `within`) for the process to exit.
    async fn exited(&mut self, within: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.0.try_wait().expect("the operator's status") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "the operator did not exit within {within:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// SIGTERM, as Kubernetes stops a pod, and wait (at most 30 s, as a pod's grace period) for the exit.
    async fn terminate(&mut self) {
        self.signal(SIGTERM);
        self.exited(Duration::from_secs(30)).await;
    }
}

unsafe extern "C" {
    #[link_name = "kill"]
    fn libc_kill(pid: i32, sig: i32) -> i32;
}

impl Drop for Process {
    fn drop(&mut self) {
        // SIGKILL ends a stopped process too.
        self.kill();
    }
}

fn holder(lease: Option<&Lease>) -> Option<String> {
    lease?
        .spec
        .as_ref()?
        .holder_identity
        .clone()
        .filter(|h| !h.is_empty())
}

async fn run_task(ns: &TestNamespace, name: &str) -> Duration {
    let tasks: Api<Task> = ns.api();
    let start = Instant::now();
    let task: Task = serde_json::from_value(json!({
        "apiVersion": "ecs.operator.dev/v1alpha1", "kind": "Task",
        "metadata": {"name": name}, "spec": {"taskDefinition": "web"}
    }))
    .unwrap();
    tasks.create(&PostParams::default(), &task).await.unwrap();
    wait_for_within(
        &tasks,
        name,
        |t: Option<&Task>| {
            t.and_then(|t| t.status.as_ref()?.last_status) == Some(LastStatus::Running)
        },
        Duration::from_secs(60),
    )
    .await;
    start.elapsed()
}

#[tokio::test]
async fn a_standby_takes_over_when_the_leader_dies() {
    let client = client().await;
    install_crds(&client).await;
    let ns = TestNamespace::new(&client, "leader").await;
    let tds: Api<TaskDefinition> = ns.api();
    let td: TaskDefinition = serde_json::from_value(json!({
        "apiVersion": "ecs.operator.dev/v1alpha1", "kind": "TaskDefinition", "metadata": {"name": "web"},
        "spec": {"containerDefinitions": [{"name": "web", "image": "nginx"}]}
    }))
    .unwrap();
    tds.patch("web", &PatchParams::apply("test"), &Patch::Apply(&td))
        .await
        .unwrap();
    let leases: Api<Lease> = ns.api();

    let mut a = Process::start(&ns.name, "replica-a");
    wait_for(&leases, "ecs-operator", |l: Option<&Lease>| {
        holder(l).as_deref() == Some("replica-a")
    })
    .await;
    let mut b = Process::start(&ns.name, "replica-b");
    run_task(&ns, "first").await;
    let lease = leases.get("ecs-operator").await.unwrap();
    assert_eq!(
        holder(Some(&lease)).as_deref(),
        Some("replica-a"),
        "the standby did not take the lease"
    );

    // The leader dies without releasing its lease: the standby waits for expiry, then converges.
    a.kill();
    let killed = Instant::now();
    wait_for_within(
        &leases,
        "ecs-operator",
        |l: Option<&Lease>| holder(l).as_deref() == Some("replica-b"),
        Duration::from_secs(30),
    )
    .await;
    let takeover = killed.elapsed();
    run_task(&ns, "second").await;
    let failover = killed.elapsed();
    eprintln!(
        "failover after SIGKILL: lease taken over in {takeover:?}, new task RUNNING after {failover:?}"
    );
    assert!(
        takeover <= Duration::from_secs(20),
        "took {takeover:?} with a 6 s lease"
    );

    // A graceful shutdown releases the lease: a new standby gets it well before the lease would expire.
    let mut c = Process::start(&ns.name, "replica-c");
    b.terminate().await;
    let stopped = Instant::now();
    // b has exited: its lease must already be released, not left to expire.
    let lease = leases.get("ecs-operator").await.unwrap();
    assert_ne!(
        holder(Some(&lease)).as_deref(),
        Some("replica-b"),
        "SIGTERM did not release the lease"
    );
    wait_for_within(
        &leases,
        "ecs-operator",
        |l: Option<&Lease>| holder(l).as_deref() == Some("replica-c"),
        Duration::from_secs(30),
    )
    .await;
    eprintln!("handover after SIGTERM: {:?}", stopped.elapsed());
    run_task(&ns, "third").await;
    c.kill();
}

/// The API server's audit log of the local cluster (`docs/test-cluster.md`, "Audit log"): one JSON line
/// per write, in the state directory, which also holds the kubeconfig.
fn audit_files() -> Vec<PathBuf> {
    let kubeconfig = PathBuf::from(std::env::var_os("KUBECONFIG").expect("KUBECONFIG"));
    let dir = kubeconfig
        .parent()
        .expect("the kubeconfig's directory")
        .to_path_buf();
    let current = dir.join("audit.log");
    assert!(
        current.exists(),
        "{} does not exist: this test needs the local cluster's audit log (`cargo xtask cluster up` restarts a cluster started without one)",
        current.display()
    );
    // Rotated files (audit-<time>.log) first, so the entries come in order.
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p != &current
                && p.file_name().is_some_and(|n| {
                    let n = n.to_string_lossy();
                    n.starts_with("audit-") && n.ends_with(".log")
                })
        })
        .collect();
    files.sort();
    files.push(current);
    files
}

/// One write as the audit log records it.
#[derive(Debug)]
struct Write {
    verb: String,
    resource: String,
    name: String,
    code: i64,
    received: Timestamp,
}

/// Every audited write whose User-Agent names `identity` (`ecs-operator/<version> (<identity>)`).
fn writes_by(identity: &str) -> Vec<Write> {
    let marker = format!("({identity})");
    let mut writes = Vec::new();
    for file in audit_files() {
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        for line in text.lines().filter(|l| l.contains(&marker)) {
            let Ok(e) = serde_json::from_str::<serde_json::Value>(line) else {
                continue; // a line being written
            };
            if !e["userAgent"]
                .as_str()
                .is_some_and(|ua| ua.contains(&marker))
            {
                continue;
            }
            let str_of = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_string();
            writes.push(Write {
                verb: str_of(&e["verb"]),
                resource: str_of(&e["objectRef"]["resource"]),
                name: str_of(&e["objectRef"]["name"]),
                code: e["responseStatus"]["code"].as_i64().unwrap_or_default(),
                received: str_of(&e["requestReceivedTimestamp"])
                    .parse()
                    .expect("requestReceivedTimestamp"),
            });
        }
    }
    writes
}

/// Waits until the audit log holds a write by `identity` received after `after`.
async fn audited_after(identity: &str, after: Timestamp, within: Duration) {
    let deadline = Instant::now() + within;
    while !writes_by(identity).iter().any(|w| w.received > after) {
        assert!(
            Instant::now() < deadline,
            "no write by {identity} in the audit log after {after} within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A free port for a process's admin endpoints.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// GET `path` on the admin port: (status code, body).
fn get(port: u16, path: &str) -> Option<(u16, String)> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let code = response.split_whitespace().nth(1)?.parse().ok()?;
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())?;
    Some((code, body))
}

/// Waits (at most 20 s) until the `leader` gauge on `port` reads `value`, and /readyz answers `ready`.
async fn gauge_reads(port: u16, value: u8, ready: u16) {
    let line = format!("ecs_operator_leader {value}");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let metrics = get(port, "/metrics");
        let readyz = get(port, "/readyz").map(|r| r.0);
        if metrics
            .as_ref()
            .is_some_and(|(_, body)| body.lines().any(|l| l == line))
            && readyz == Some(ready)
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "port {port}: wanted `{line}` and /readyz {ready}; got /readyz {readyz:?}, {metrics:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn deployment<'a>(svc: &'a Service, task_definition: &str) -> Option<&'a Deployment> {
    svc.status
        .as_ref()?
        .deployments
        .iter()
        .find(|d| d.task_definition == task_definition)
}

/// The rollback to web:1 is complete: web:1 PRIMARY with every task RUNNING, web:2 FAILED with none.
fn rolled_back(svc: Option<&Service>) -> bool {
    let Some(svc) = svc else { return false };
    let Some(st) = &svc.status else { return false };
    let primary = st.deployments.first();
    st.observed_generation == svc.metadata.generation
        && primary.is_some_and(|d| {
            d.task_definition == "web:1"
                && d.status == DeploymentStatus::Primary
                && d.running_count == 3
        })
        && deployment(svc, "web:2").is_some_and(|d| {
            d.rollout_state == Some(RolloutState::Failed) && d.running_count + d.pending_count == 0
        })
        && st.running_count == 3
}

async fn register(tds: &Api<TaskDefinition>, image: &str, revision: i64) {
    let td: TaskDefinition = serde_json::from_value(json!({
        "apiVersion": "ecs.operator.dev/v1alpha1", "kind": "TaskDefinition", "metadata": {"name": "web"},
        "spec": {"containerDefinitions": [{"name": "web", "image": image}]}
    }))
    .unwrap();
    tds.patch(
        "web",
        &PatchParams::apply("test").force(),
        &Patch::Apply(&td),
    )
    .await
    .unwrap();
    wait_for(tds, "web", move |td: Option<&TaskDefinition>| {
        td.and_then(|t| t.status.as_ref()?.latest_revision) == Some(revision)
    })
    .await;
}

#[tokio::test]
async fn a_leader_frozen_past_its_lease_writes_nothing_after_it_resumes() {
    let client = client().await;
    install_crds(&client).await;
    let ns = TestNamespace::new(&client, "leader-freeze").await;
    audit_files();
    let (tds, services, tasks, leases): (Api<TaskDefinition>, Api<Service>, Api<Task>, Api<Lease>) =
        (ns.api(), ns.api(), ns.api(), ns.api());
    // Unique per run: the audit log outlives the namespace.
    let (id_a, id_b) = (format!("{}-a", ns.name), format!("{}-b", ns.name));
    // A 6 s lease, renewed every second, given up 3 s after the last successful renewal. Crashing tasks
    // must not count as healthy before they crash (as in the services' circuit-breaker test).
    let args = [
        "--lease-duration-seconds",
        "6",
        "--lease-renew-deadline-seconds",
        "3",
        "--lease-retry-period-seconds",
        "1",
        "--healthy-after-running-seconds",
        "10",
    ];
    let (port_a, port_b) = (free_port(), free_port());
    let (addr_a, addr_b) = (format!("127.0.0.1:{port_a}"), format!("127.0.0.1:{port_b}"));
    let with_admin = |addr| -> Vec<&str> {
        args.iter()
            .copied()
            .chain(["--admin-address", addr])
            .collect()
    };
    let log_a = std::env::temp_dir().join(format!("{id_a}.log"));
    let log = std::fs::File::create(&log_a).unwrap();
    let mut a = Process::start_logging(&ns.name, &id_a, &with_admin(&addr_a), log.into());
    wait_for(&leases, "ecs-operator", |l: Option<&Lease>| {
        holder(l).as_deref() == Some(id_a.as_str())
    })
    .await;
    let mut b = Process::start_with(&ns.name, &id_b, &with_admin(&addr_b));
    // What an operator sees: the leader's gauge 1, the standby's 0 and the standby ready.
    gauge_reads(port_b, 0, 200).await;
    gauge_reads(port_a, 1, 200).await;

    register(&tds, "nginx:1.27", 1).await;
    let svc: Service = serde_json::from_value(json!({
        "apiVersion": "ecs.operator.dev/v1alpha1", "kind": "Service", "metadata": {"name": "web"},
        "spec": {"taskDefinition": "web", "desiredCount": 3,
            "deploymentConfiguration": {"minimumHealthyPercent": 100, "maximumPercent": 200,
                "deploymentCircuitBreaker": {"enable": true, "rollback": true}}}
    }))
    .unwrap();
    services
        .patch(
            "web",
            &PatchParams::apply("test").force(),
            &Patch::Apply(&svc),
        )
        .await
        .unwrap();
    wait_for_within(
        &services,
        "web",
        |s: Option<&Service>| {
            s.and_then(|s| s.status.as_ref()).is_some_and(|st| {
                st.running_count == 3
                    && st
                        .conditions
                        .iter()
                        .any(|c| c.type_ == "Ready" && c.status == "True")
            })
        },
        Duration::from_secs(120),
    )
    .await;

    // Revision 2 crashes wherever it runs. Freeze the leader as soon as its tasks start failing: what A
    // has in memory then is a deployment of web:2 in progress.
    register(&tds, "ecs-operator.test/crash", 2).await;
    let at_freeze = wait_for_within(
        &services,
        "web",
        |s: Option<&Service>| {
            s.and_then(|s| deployment(s, "web:2"))
                .is_some_and(|d| d.failed_tasks >= 1)
        },
        Duration::from_secs(120),
    )
    .await;
    a.signal(SIGSTOP);
    let frozen = Instant::now();
    let frozen_at = Timestamp::now();
    eprintln!(
        "froze the leader with web:2 {:?}, {} failed task(s)",
        deployment(&at_freeze, "web:2").and_then(|d| d.rollout_state),
        deployment(&at_freeze, "web:2").map_or(0, |d| d.failed_tasks)
    );

    // B waits out A's lease by its own clock, takes over, and trips the breaker / finishes the rollback.
    wait_for_within(
        &leases,
        "ecs-operator",
        |l: Option<&Lease>| holder(l).as_deref() == Some(id_b.as_str()),
        Duration::from_secs(30),
    )
    .await;
    let takeover = frozen.elapsed();
    gauge_reads(port_b, 1, 200).await;
    wait_for_within(&services, "web", rolled_back, Duration::from_secs(180)).await;
    let rollback = frozen.elapsed();

    // A wakes up long past its renew deadline, with web:2 in progress in its caches.
    let resumed_at = Timestamp::now();
    a.signal(SIGCONT);
    let resumed = Instant::now();
    let status = a.exited(Duration::from_secs(30)).await;
    let exited_after = resumed.elapsed();
    let exited_at = Timestamp::now();
    eprintln!(
        "SIGSTOP -> B holds the lease: {takeover:?}; -> rollback complete: {rollback:?}; SIGCONT -> A exited: {exited_after:?}"
    );
    assert!(
        !status.success(),
        "a replica that lost leadership exits non-zero (restart = clean standby): {status}"
    );
    // It stopped for the deadline, not because a renewal failed: it never got to try one.
    let log = std::fs::read_to_string(&log_a).unwrap();
    let _ = std::fs::remove_file(&log_a);
    assert!(
        log.contains("stepping down: no successful lease renewal within the renew deadline"),
        "{log}"
    );

    // The audit log is written before each response: once it shows B writing after A's exit, everything
    // A ever sent is in it.
    audited_after(&id_b, exited_at, Duration::from_secs(30)).await;
    let by_a = writes_by(&id_a);
    let by_b = writes_by(&id_b);
    // The marker works: A's lease renewals and service writes before the freeze are there.
    assert!(
        by_a.iter()
            .any(|w| w.resource == "services" && w.received < frozen_at),
        "no service write by A before the freeze in the audit log: {by_a:#?}"
    );
    assert!(
        by_a.iter().any(|w| {
            w.resource == "leases"
                && w.verb == "update"
                && w.name == "ecs-operator"
                && w.code == 200
        }),
        "no lease renewal by A in the audit log: {by_a:#?}"
    );
    // Every attempt counts, whatever its answer: not even a lease write refused with 409 is allowed.
    let after_resume: Vec<&Write> = by_a.iter().filter(|w| w.received >= resumed_at).collect();
    assert!(
        after_resume.is_empty(),
        "A wrote after it was resumed: {after_resume:#?}"
    );
    // One writer: nothing of A's reached the API server once B had taken the lease.
    let b_took_over = by_b
        .iter()
        .filter(|w| w.resource == "leases" && (200..300).contains(&w.code))
        .map(|w| w.received)
        .min()
        .expect("B's lease acquisition in the audit log");
    let overlap: Vec<&Write> = by_a.iter().filter(|w| w.received >= b_took_over).collect();
    assert!(
        overlap.is_empty(),
        "A wrote after B took the lease at {b_took_over}: {overlap:#?}"
    );
    let last_a = by_a.iter().map(|w| w.received).max().unwrap();
    eprintln!(
        "A's last write reached the API server {:?} before B's takeover ({} writes by A, {} by B)",
        last_a.duration_until(b_took_over),
        by_a.len(),
        by_b.len()
    );

    // The rollback survives A's return: web:1 PRIMARY, web:2 still FAILED, no web:2 task running.
    let svc = services.get("web").await.unwrap();
    assert!(rolled_back(Some(&svc)), "{:#?}", svc.status);
    let running_web2 = tasks
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|t| {
            t.status.as_ref().is_some_and(|s| {
                s.task_definition.as_deref() == Some("web:2")
                    && s.last_status != Some(LastStatus::Stopped)
            })
        })
        .count();
    assert_eq!(running_web2, 0, "a web:2 task is not stopped");
    assert_eq!(
        holder(leases.get("ecs-operator").await.ok().as_ref()).as_deref(),
        Some(id_b.as_str())
    );
    b.kill();
}

#[tokio::test]
async fn the_fenced_client_refuses_writes_once_the_fence_closes_and_still_reads() {
    use ecs_operator::fence::{Fence, Refused};
    use ecs_operator::leader::clock::Moment;
    use k8s_openapi::api::core::v1::ConfigMap;

    let client = client().await;
    let ns = TestNamespace::new(&client, "leader-fence").await;
    let config = kube::Config::infer().await.unwrap();
    let fence = Fence::closed();
    let fenced = ecs_operator::leader::client::fenced(&config, fence.clone()).unwrap();
    let cms: Api<ConfigMap> = Api::namespaced(fenced, &ns.name);
    let cm = |name: &str| -> ConfigMap {
        serde_json::from_value(json!({"metadata": {"name": name}})).unwrap()
    };

    // Open: the stack (TLS, credentials, base URI) works for writes and reads.
    fence.open_until(Moment::now() + Duration::from_secs(60));
    cms.create(&PostParams::default(), &cm("open"))
        .await
        .unwrap();
    // Closed (the validity ran out): refused before it is sent; reads go on.
    fence.open_until(Moment::now());
    let err = cms
        .create(&PostParams::default(), &cm("closed"))
        .await
        .unwrap_err();
    let kube::Error::Service(source) = &err else {
        panic!("expected the fence's error, got {err:?}")
    };
    assert!(source.downcast_ref::<Refused>().is_some(), "{err:?}");
    assert!(cms.get_opt("open").await.unwrap().is_some());
    assert!(
        Api::<ConfigMap>::namespaced(client, &ns.name)
            .get_opt("closed")
            .await
            .unwrap()
            .is_none(),
        "the refused create reached the API server"
    );
}
