//! High availability: two operator processes with leader election; only the leader works, a standby
//! takes over when the leader dies, and a graceful shutdown hands the lease over at once.

mod support;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ecs_operator::api::{Task, TaskDefinition};
use k8s_openapi::api::coordination::v1::Lease;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;
use support::{TestNamespace, client, install_crds, wait_for, wait_for_within};

/// An operator process with leader election, watching one namespace; killed when dropped.
struct Process(Child);

impl Process {
    fn start(ns: &str, identity: &str) -> Self {
        let child = Command::new(env!("CARGO_BIN_EXE_ecs-operator"))
            .args([
                "run",
                "--namespace",
                ns,
                "--leader-election",
                "--lease-namespace",
                ns,
            ])
            .args([
                "--lease-duration-seconds",
                "6",
                "--lease-grace-seconds",
                "2",
            ])
            .args(["--admin-address", "127.0.0.1:0", "--log-level", "warn"])
            .env("POD_NAME", identity)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the operator binary");
        Self(child)
    }

    fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }

    /// SIGTERM, as Kubernetes stops a pod, and wait (at most 30 s, as a pod's grace period) for the exit.
    async fn terminate(&mut self) {
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc_kill(self.0.id() as i32, 15) };
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.0.try_wait().ok().flatten().is_none() {
            assert!(
                Instant::now() < deadline,
                "the operator did not exit within 30 s of SIGTERM"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

unsafe extern "C" {
    #[link_name = "kill"]
    fn libc_kill(pid: i32, sig: i32) -> i32;
}

impl Drop for Process {
    fn drop(&mut self) {
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
            t.and_then(|t| t.status.as_ref()?.last_status.clone())
                .as_deref()
                == Some("RUNNING")
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
