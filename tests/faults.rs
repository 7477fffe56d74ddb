//! Fault injection against the real control plane, with the operator as a separate process: SIGKILL
//! mid-rollout, an API server restart, watch expiry (410 Gone) after an etcd compaction, and a storm of
//! conflicting /scale writes. An independent watcher (support::invariants) records every breach of the
//! invariants throughout; each scenario ends converged, with zero writes for a quiet window, and prints
//! its figures. docs/reliability.md has the results.
//!
//! Some scenarios restart the API server every test shares: the tests take turns through a lock, and
//! the cluster is healthy again when each ends, even on failure (support::cluster::Outage).

mod support;

use std::time::{Duration, Instant};

use ecs_operator::api::task::LastStatus;
use ecs_operator::api::{Service, TaskDefinition};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;
use support::cluster::{self, ApiServer, Outage};
use support::invariants::{Invariants, TaskInfo};
use support::process::OperatorProcess;
use support::setup::{Setup, td_spec};
use support::{TestNamespace, wait_for};

/// One scenario at a time: some restart the API server under everyone's feet.
static CLUSTER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Bound on convergence once the faults stop (a fault-free rollout of 4–5 tasks takes 10–20 s here).
const CONVERGE: Duration = Duration::from_secs(90);
/// Bound on convergence once the API server is back after a restart: the operator's watches retry
/// within 5 s (`src/controller/watches.rs`), but the restarted server holds some watches for up to
/// ~40 s while its watch cache fills (its answer is then 410 Gone), and the simulated kubelet recovers
/// too; then the rollout itself (10–20 s here).
const RECOVER: Duration = Duration::from_secs(90);
/// Zero writes are required for this long once converged.
const QUIET: Duration = Duration::from_secs(10);
/// Each scenario as a whole.
const SCENARIO: Duration = Duration::from_secs(300);

/// A [`Setup`] whose operator is a separate process, watched by the invariant watcher.
struct Scenario {
    setup: Setup,
    inv: Invariants,
    operator: OperatorProcess,
    /// When the scenario started (for the figures).
    started: Instant,
}

impl std::ops::Deref for Scenario {
    type Target = Setup;

    fn deref(&self) -> &Setup {
        &self.setup
    }
}

/// A namespace, the operator process, the invariant watcher, and service `web` converged on
/// `desired` tasks of web:1 with the given percents.
async fn scenario(prefix: &str, desired: i32, min: i32, max: i32) -> Scenario {
    let setup = Setup::start(prefix).without_operator().await;
    let inv = Invariants::watch(&setup.client, &setup.ns.name);
    let operator = OperatorProcess::start(&setup.ns.name, &[]);
    let s = Scenario {
        setup,
        inv,
        operator,
        started: Instant::now(),
    };
    s.register("web", td_spec("nginx:1.27"), 1).await;
    s.apply_service(
        "web",
        json!({"taskDefinition": "web", "desiredCount": desired,
            "deploymentConfiguration": {"minimumHealthyPercent": min, "maximumPercent": max}}),
    )
    .await;
    s.inv
        .wait_converged("web", "web:1", desired as usize, CONVERGE)
        .await;
    s
}

impl Scenario {
    /// Restarts the operator process after a crash (as a Deployment would, at once).
    fn restart(&mut self) {
        self.operator = OperatorProcess::start(&self.setup.ns.name, &[]);
    }

    /// Converged on `desired` × `task_definition`, then zero writes for [`QUIET`]; asserts every
    /// invariant held and prints the figures.
    async fn end(
        self,
        name: &str,
        task_definition: &str,
        desired: usize,
        since: Instant,
        bound: Duration,
    ) {
        let converge = self
            .inv
            .wait_converged("web", task_definition, desired, bound)
            .await;
        let recovered = since.elapsed();
        let ids = deployment_ids(&self.inv);
        let writes = self.inv.quiet(QUIET).await;
        let report = self.inv.finish();
        eprintln!(
            "FIGURES {name}: converged {:.1}s after the last fault (waited {:.1}s), scenario {:.1}s, deployments {ids:?}, {writes} writes in the {QUIET:?} after; {report}",
            recovered.as_secs_f64(),
            converge.as_secs_f64(),
            self.started.elapsed().as_secs_f64()
        );
        report.assert_ok();
    }
}

/// A small deterministic generator for the fault timings; the seed is printed so a run can be repeated
/// (`ECS_FAULTS_SEED`).
struct Rng(u64);

impl Rng {
    fn new(what: &str) -> Self {
        let seed = std::env::var("ECS_FAULTS_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos() as u64
            });
        eprintln!("{what}: ECS_FAULTS_SEED={seed}");
        Self(seed | 1)
    }

    fn below(&mut self, n: u64) -> u64 {
        // xorshift64
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}

/// The service's deployment ids as the watcher last saw them, PRIMARY first.
fn deployment_ids(inv: &Invariants) -> Vec<String> {
    inv.view(|v| {
        v.service("web")
            .and_then(|svc| svc.status.as_ref())
            .map(|st| st.deployments.iter().map(|d| d.id.clone()).collect())
            .unwrap_or_default()
    })
}

fn of_revision<'a>(tasks: &'a [TaskInfo], td: &'a str) -> impl Iterator<Item = &'a TaskInfo> {
    tasks.iter().filter(move |t| t.task_definition == td)
}

/// Runs one scenario when its turn comes, within [`SCENARIO`].
async fn deadline<F: std::future::Future>(what: &str, f: F) -> F::Output {
    let _turn = CLUSTER.lock().await;
    // An earlier run of this binary that died mid-outage may have left the apiserver down.
    let server = ApiServer::current();
    let up = tokio::task::spawn_blocking(move || server.ensure_running())
        .await
        .unwrap();
    assert!(up, "kube-apiserver is not ready");
    tokio::time::timeout(SCENARIO, f)
        .await
        .unwrap_or_else(|_| panic!("{what} did not finish within {SCENARIO:?}"))
}

#[tokio::test]
async fn sigkill_at_random_points_of_a_rollout_converges_without_breaking_invariants() {
    deadline("the SIGKILL scenario", async {
        // 100/150 with 5 tasks: at most 7 alive and 5 healthy, so the rollout goes in steps of two,
        // each a create-then-stop that a crash can cut in the middle.
        let mut s = scenario("faults-sigkill", 5, 100, 150).await;
        let mut rng = Rng::new("sigkill");
        s.register("web", td_spec("nginx:1.28"), 2).await;
        let mut kills = Vec::new();

        // 1. The moment a task of the new deployment exists, before the operator can record it.
        s.inv
            .wait_until("a task of web:2", CONVERGE, |v| {
                of_revision(&v.tasks(), "web:2").count() > 0
            })
            .await;
        s.operator.sigkill();
        kills.push("first web:2 task created");
        s.restart();

        // 2. The moment the operator asks an old task to stop (between stopping old and starting new).
        s.inv
            .wait_until("an old task asked to stop", CONVERGE, |v| {
                of_revision(&v.tasks(), "web:1").any(|t| t.desired_stopped)
            })
            .await;
        s.operator.sigkill();
        kills.push("first web:1 task asked to stop");
        s.restart();

        // 3. A random moment within 3 s of the restart: startup (cache sync, first passes) included.
        let delay = Duration::from_millis(rng.below(3000));
        tokio::time::sleep(delay).await;
        s.operator.sigkill();
        kills.push("random point");
        eprintln!("kill 3 after {delay:?}");
        s.restart();

        // 4. The next wave: one more web:2 task appears (two at a time fit in 150%).
        let before = s.inv.view(|v| of_revision(&v.tasks(), "web:2").count());
        if before < 5 {
            s.inv
                .wait_until("another web:2 task", CONVERGE, |v| {
                    of_revision(&v.tasks(), "web:2").count() > before
                })
                .await;
            s.operator.sigkill();
            kills.push("another web:2 task created");
            s.restart();
        }

        // 5. Once more at random, then leave it alone.
        let delay = Duration::from_millis(rng.below(2000));
        tokio::time::sleep(delay).await;
        s.operator.sigkill();
        kills.push("random point");
        s.restart();
        let last = Instant::now();
        eprintln!("{} kills: {kills:?}", kills.len());
        s.inv.wait_converged("web", "web:2", 5, CONVERGE).await;
        // The deployment was recorded before its first task existed: the crash right after that
        // task was created did not cost a second deployment of the same revision.
        let ids = deployment_ids(&s.inv);
        assert_eq!(
            ids.first().map(String::as_str),
            Some("ecs-svc/2"),
            "{ids:?}"
        );
        s.end("sigkill", "web:2", 5, last, CONVERGE).await;
    })
    .await;
}

/// Every node Ready, and kwok renewing their Leases after `since` (kwok reconnected).
async fn nodes_recovered(client: &kube::Client, since: k8s_openapi::jiff::Timestamp) {
    let nodes: Api<Node> = Api::all(client.clone());
    let leases: Api<Lease> = Api::namespaced(client.clone(), "kube-node-lease");
    for node in nodes.list(&ListParams::default()).await.unwrap().items {
        let name = node.metadata.name.clone().unwrap();
        wait_for(&nodes, &name, |n: Option<&Node>| {
            n.and_then(|n| n.status.as_ref()?.conditions.clone())
                .into_iter()
                .flatten()
                .any(|c| c.type_ == "Ready" && c.status == "True")
        })
        .await;
        wait_for(&leases, &name, move |l: Option<&Lease>| {
            l.and_then(|l| l.spec.as_ref()?.renew_time.as_ref())
                .is_some_and(|t| t.0 > since)
        })
        .await;
    }
}

#[tokio::test]
async fn an_api_server_restart_mid_rollout_is_survived() {
    deadline("the API server restart scenario", async {
        // 50/100 with 4 tasks: old tasks stop first, then new ones start; the outage lands in between.
        let s = scenario("faults-apiserver", 4, 50, 100).await;
        s.register("web", td_spec("nginx:1.28"), 2).await;
        s.inv
            .wait_until("a task of web:2", CONVERGE, |v| {
                of_revision(&v.tasks(), "web:2").count() > 0
            })
            .await;
        let server = ApiServer::current();
        let down_at = k8s_openapi::jiff::Timestamp::now();
        let outage = Outage::begin(&server);
        let ready = outage.end().await;
        let back = Instant::now();
        eprintln!("kube-apiserver ready again {ready:?} after its restart");
        // The other components reconnect too: kwok renews node leases, and the controller-manager's
        // ServiceAccount controller serves a new namespace.
        nodes_recovered(&s.client, down_at).await;
        let probe = TestNamespace::new(&s.client, "faults-probe").await;
        drop(probe);
        let errors =
            s.operator.log_count("watcher error") + s.operator.log_count("watchevent error");
        eprintln!("operator logged {errors} watch errors");
        s.end("apiserver-restart", "web:2", 4, back, RECOVER).await;
    })
    .await;
}

/// Compacts etcd, cuts every watch (an apiserver restart), then changes the service at once (a new
/// revision and a scale-out); asserts it converges within `bound` of the change.
async fn watch_expiry(prefix: &str, bound: Duration) {
    let s = scenario(prefix, 3, 100, 200).await;
    let server = ApiServer::current();
    let gone_before = s.operator.log_count("code: 410");
    // Every resourceVersion the operator's watches hold is now compacted away.
    let revision = cluster::compact_etcd(&server.etcd_url());
    eprintln!("etcd compacted at revision {revision}");
    // An established watch is not affected by a compaction (the watch cache keeps serving it): cut
    // them. They resume from their old resourceVersions on a watch cache that starts at the compacted
    // revision, and are answered 410 Gone; anything that reads etcd at an old revision gets 410 too.
    let outage = Outage::begin(&server);
    let ready = outage.end().await;
    eprintln!("kube-apiserver ready again {ready:?} after its restart");
    // Changes made afterwards are reconciled: a new revision and a scale-out.
    let changed = Instant::now();
    let td: TaskDefinition = serde_json::from_value(json!({
        "apiVersion": "ecs.operator.dev/v1alpha1", "kind": "TaskDefinition",
        "metadata": {"name": "web"}, "spec": td_spec("nginx:1.28")
    }))
    .unwrap();
    s.tds
        .patch(
            "web",
            &PatchParams::apply("test").force(),
            &Patch::Apply(&td),
        )
        .await
        .unwrap();
    s.services
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"desiredCount": 5}})),
        )
        .await
        .unwrap();
    let started = s
        .inv
        .wait_until("the rollout to start", bound, |v| {
            of_revision(&v.tasks(), "web:2").count() > 0
        })
        .await;
    let gone = s.operator.log_count("code: 410") - gone_before;
    eprintln!("first web:2 task {started:?} after the change; operator saw {gone} × 410 Gone");
    assert!(
        gone > 0,
        "the operator's watches were never answered 410 Gone: the fault did not happen"
    );
    s.end(
        "watch-expiry",
        "web:2",
        5,
        changed,
        bound.saturating_sub(started),
    )
    .await;
}

#[tokio::test]
async fn watches_expired_by_an_etcd_compaction_resume_and_later_changes_converge() {
    watch_expiry_within(RECOVER).await;
}

async fn watch_expiry_within(bound: Duration) {
    deadline(
        "the watch expiry scenario",
        watch_expiry("faults-expiry", bound),
    )
    .await;
}

#[tokio::test]
async fn a_storm_of_conflicting_scale_writes_mid_rollout_ends_at_the_last_desired_count() {
    deadline("the 409 storm scenario", async {
        // 100/150: the bound moves with every flip (desired 2 → at most 3 alive, 6 → 9).
        let s = scenario("faults-conflicts", 4, 100, 150).await;
        s.register("web", td_spec("nginx:1.28"), 2).await;
        let storm = Duration::from_secs(10);
        let until = Instant::now() + storm;
        // Two writers, as an HPA does: read /scale, write it back with its resourceVersion; they
        // conflict with each other and with the operator's status writes.
        let writer = |seed: u64| {
            let services = s.services.clone();
            tokio::spawn(async move {
                let mut rng = Rng(seed | 1);
                let (mut writes, mut conflicts) = (0u32, 0u32);
                while Instant::now() < until {
                    let mut scale = services.get_scale("web").await.unwrap();
                    let replicas = [2, 6, 3, 5][rng.below(4) as usize];
                    scale.spec.get_or_insert_default().replicas = Some(replicas);
                    // Half the time with a stale read: a guaranteed conflict if anything wrote since.
                    if rng.below(2) == 0 {
                        tokio::time::sleep(Duration::from_millis(50 + rng.below(150))).await;
                    }
                    match services
                        .replace_scale("web", &PostParams::default(), &scale)
                        .await
                    {
                        Ok(_) => writes += 1,
                        Err(kube::Error::Api(e)) if e.code == 409 => conflicts += 1,
                        Err(e) => panic!("writing /scale: {e}"),
                    }
                }
                (writes, conflicts)
            })
        };
        let (a, b) = (writer(7), writer(11));
        let (a, b) = (a.await.unwrap(), b.await.unwrap());
        // The last word: 5, retried through conflicts like any client would.
        loop {
            let mut scale = s.services.get_scale("web").await.unwrap();
            scale.spec.get_or_insert_default().replicas = Some(5);
            match s
                .services
                .replace_scale("web", &PostParams::default(), &scale)
                .await
            {
                Ok(_) => break,
                Err(kube::Error::Api(e)) if e.code == 409 => continue,
                Err(e) => panic!("writing /scale: {e}"),
            }
        }
        let last = Instant::now();
        let operator_conflicts = s.operator.log_count("409");
        eprintln!(
            "storm {storm:?}: {} writes and {} conflicts (409) of the writers, {operator_conflicts} log lines of the operator mention 409",
            a.0 + b.0,
            a.1 + b.1
        );
        assert!(a.1 + b.1 > 0, "the writers never conflicted: no 409 storm");
        s.end("409-storm", "web:2", 5, last, CONVERGE).await;
    })
    .await;
}

/// The watcher is not vacuous: with no operator running, objects written by hand to break each
/// invariant are reported.
#[tokio::test]
async fn the_invariant_watcher_reports_each_kind_of_breach() {
    deadline("the watcher self-check", async {
        use ecs_operator::api::Task;
        use k8s_openapi::api::core::v1::Pod;
        let s = Setup::start("faults-watcher").without_operator().await;
        let inv = Invariants::watch(&s.client, &s.ns.name);
        let (services, tasks, pods) = (&s.services, &s.tasks, &s.pods);
        let svc: Service = serde_json::from_value(json!({
            "apiVersion": "ecs.operator.dev/v1alpha1", "kind": "Service", "metadata": {"name": "web"},
            "spec": {"taskDefinition": "web", "desiredCount": 2,
                "deploymentConfiguration": {"minimumHealthyPercent": 100, "maximumPercent": 100}}
        }))
        .unwrap();
        let svc = services.create(&PostParams::default(), &svc).await.unwrap();
        let owner = json!([{"apiVersion": "ecs.operator.dev/v1alpha1", "kind": "Service", "name": "web",
            "uid": svc.metadata.uid, "controller": true}]);
        let status = |v: serde_json::Value| Patch::Merge(json!({ "status": v }));
        let pp = PatchParams::default();
        // observedGeneration and deployment ids going back.
        services.patch_status("web", &pp, &status(json!({"observedGeneration": 2,
            "deployments": [{"id": "ecs-svc/3", "status": "PRIMARY", "taskDefinition": "web:1"}]}))).await.unwrap();
        // The watcher must see the first value before the second, or there is nothing going back.
        inv.wait_until("observedGeneration 2 seen", CONVERGE, |v| {
            v.service("web")
                .and_then(|s| s.status.as_ref()?.observed_generation)
                == Some(2)
        })
        .await;
        services.patch_status("web", &pp, &status(json!({"observedGeneration": 1,
            "deployments": [{"id": "ecs-svc/2", "status": "PRIMARY", "taskDefinition": "web:1"}]}))).await.unwrap();
        // Three RUNNING tasks where maximumPercent allows two; one without an owner.
        let mut uids = Vec::new();
        for i in 0..3 {
            let task: Task = serde_json::from_value(json!({
                "apiVersion": "ecs.operator.dev/v1alpha1", "kind": "Task",
                "metadata": {"name": format!("web-{i}"), "labels": {"ecs.operator.dev/service": "web"},
                    "ownerReferences": if i < 2 { owner.clone() } else { json!([]) }},
                "spec": {"taskDefinition": "web:1", "startedBy": "ecs-svc/3"}
            }))
            .unwrap();
            let t = tasks.create(&PostParams::default(), &task).await.unwrap();
            uids.push(t.metadata.uid.unwrap());
            tasks.patch_status(&format!("web-{i}"), &pp, &status(json!({"lastStatus": "RUNNING"}))).await.unwrap();
        }
        inv.wait_until("three RUNNING tasks seen", CONVERGE, |v| {
            v.tasks()
                .iter()
                .filter(|t| t.last_status == Some(LastStatus::Running))
                .count()
                == 3
        })
        .await;
        // A lifecycle going back, and two healthy tasks stopped where 100% of 2 must stay healthy.
        tasks.patch_status("web-2", &pp, &status(json!({"lastStatus": "PENDING"}))).await.unwrap();
        for name in ["web-0", "web-1"] {
            tasks.patch(name, &pp, &Patch::Merge(json!({"spec": {"desiredStatus": "STOPPED"}}))).await.unwrap();
        }
        // Two live pods for one task.
        for i in 0..2 {
            let pod: Pod = serde_json::from_value(json!({
                "metadata": {"name": format!("web-0-{i}"), "ownerReferences": [{"apiVersion": "ecs.operator.dev/v1alpha1",
                    "kind": "Task", "name": "web-0", "uid": uids[0], "controller": true}]},
                "spec": {"containers": [{"name": "web", "image": "nginx"}]}
            }))
            .unwrap();
            pods.create(&PostParams::default(), &pod).await.unwrap();
        }
        inv.wait_until("every write seen", Duration::from_secs(30), |v| {
            v.live_pods(&uids[0]) == 2
                && v.tasks().iter().filter(|t| t.desired_stopped).count() == 2
        })
        .await;
        // Writes during a quiet window are reported too: one lands inside a 2 s window.
        let touch = Patch::Merge(json!({"metadata": {"labels": {"touched": "yes"}}}));
        let (writes, patched) = tokio::join!(
            inv.quiet(Duration::from_secs(2)),
            services.patch("web", &pp, &touch)
        );
        patched.unwrap();
        assert!(writes >= 1, "a write inside the quiet window went unseen");
        let report = inv.finish();
        eprintln!("{report}");
        let expect = [
            "observedGeneration went back",
            "deployment ecs-svc/2 appeared after ecs-svc/3",
            "3 tasks alive",
            "want exactly one Service",
            "lastStatus went back from RUNNING to PENDING",
            "minimumHealthyPercent needs 2",
            "2 live pods at once",
            "write(s) during the 2s after convergence",
        ];
        for e in expect {
            assert!(
                report.violations.iter().any(|v| v.contains(e)),
                "no violation mentioning {e:?}: {report}"
            );
        }
    })
    .await;
}
