//! Off the happy path on the local control plane: pods the API server refuses, and names that are
//! already taken. The operator never adopts, changes or deletes an object it did not create, and a
//! refusal is a visible, counted failure rather than a silent retry.

mod support;

use std::time::Duration;

use ecs_operator::api::service::RolloutState;
use ecs_operator::api::task::{LastStatus, StopCode};
use ecs_operator::api::{Service, Task, TaskDefinition};
use k8s_openapi::api::apps::v1::ControllerRevision;
use k8s_openapi::api::core::v1::{Pod, ResourceQuota, Service as KubeService};
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Resource, ResourceExt};
use serde_json::json;
use support::{
    Operator, TestNamespace, client, install_crds, wait_for, wait_for_within, wait_gone,
};

struct Setup {
    ns: TestNamespace,
    tds: Api<TaskDefinition>,
    tasks: Api<Task>,
    services: Api<Service>,
    pods: Api<Pod>,
    kube_services: Api<KubeService>,
    _operator: Operator,
}

async fn setup(prefix: &str) -> Setup {
    let client = client().await;
    install_crds(&client).await;
    let ns = TestNamespace::new(&client, prefix).await;
    let operator = Operator::start_with(
        &client,
        &ns.name,
        ecs_operator::context::Config {
            healthy_after_running: Duration::from_secs(1),
            ..Default::default()
        },
    );
    Setup {
        tds: ns.api(),
        tasks: ns.api(),
        services: ns.api(),
        pods: ns.api(),
        kube_services: ns.api(),
        ns,
        _operator: operator,
    }
}

fn object<K: serde::de::DeserializeOwned>(kind: &str, name: &str, spec: serde_json::Value) -> K {
    serde_json::from_value(json!({
        "apiVersion": "ecs.operator.dev/v1alpha1", "kind": kind,
        "metadata": {"name": name}, "spec": spec
    }))
    .unwrap()
}

fn web() -> serde_json::Value {
    json!({"containerDefinitions": [{"name": "web", "image": "nginx:1.27",
        "portMappings": [{"containerPort": 80}]}]})
}

impl Setup {
    async fn register(&self, family: &str, spec: serde_json::Value, revision: i64) {
        self.tds
            .patch(
                family,
                &PatchParams::apply("test").force(),
                &Patch::Apply(object::<TaskDefinition>("TaskDefinition", family, spec)),
            )
            .await
            .unwrap();
        wait_for(&self.tds, family, move |td: Option<&TaskDefinition>| {
            td.and_then(|t| t.status.as_ref()?.latest_revision) == Some(revision)
        })
        .await;
    }

    /// Creates a standalone Task.
    async fn create_task(&self, name: &str, spec: serde_json::Value) -> Task {
        self.tasks
            .create(&PostParams::default(), &object::<Task>("Task", name, spec))
            .await
            .unwrap()
    }

    /// A ResourceQuota allowing `pods` pods, once the quota controller has counted what is used (the
    /// admission plugin refuses everything until then).
    async fn pod_quota(&self, pods: &str) {
        let quotas: Api<ResourceQuota> = self.ns.api();
        let quota: ResourceQuota = serde_json::from_value(json!({
            "metadata": {"name": "pods"}, "spec": {"hard": {"pods": pods}}
        }))
        .unwrap();
        quotas.create(&PostParams::default(), &quota).await.unwrap();
        wait_for(&quotas, "pods", |q: Option<&ResourceQuota>| {
            q.and_then(|q| q.status.as_ref()?.used.as_ref())
                .is_some_and(|u| u.contains_key("pods"))
        })
        .await;
    }

    /// Waits for an Event about `name` with `reason`, and returns its note.
    async fn event(&self, name: &str, reason: &str) -> String {
        let events: Api<Event> = self.ns.api();
        let deadline = tokio::time::Instant::now() + support::DEADLINE;
        loop {
            let found = events
                .list(&ListParams::default())
                .await
                .unwrap()
                .items
                .into_iter()
                .find(|e| {
                    e.reason.as_deref() == Some(reason)
                        && e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name)
                });
            if let Some(e) = found {
                return e.note.unwrap_or_default();
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no {reason} Event about {name}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

fn stopped(t: Option<&Task>) -> bool {
    t.and_then(|t| t.status.as_ref())
        .is_some_and(|s| s.last_status == Some(LastStatus::Stopped))
}

fn running(t: Option<&Task>) -> bool {
    t.and_then(|t| t.status.as_ref())
        .is_some_and(|s| s.last_status == Some(LastStatus::Running))
}

fn ready_reason(t: &Task) -> Option<String> {
    let status = t.status.as_ref()?;
    let c = status.conditions.iter().find(|c| c.type_ == "Ready")?;
    Some(c.reason.clone())
}

#[tokio::test]
async fn a_pod_refused_by_a_resource_quota_stops_the_task_with_the_api_message() {
    let s = setup("own-quota").await;
    s.register("web", web(), 1).await;
    s.pod_quota("0").await;
    s.create_task("refused", json!({"taskDefinition": "web"}))
        .await;
    let t = wait_for(&s.tasks, "refused", stopped).await;
    let st = t.status.clone().unwrap();
    assert_eq!(st.stop_code, Some(StopCode::TaskFailedToStart));
    let reason = st.stopped_reason.unwrap_or_default();
    assert!(
        reason.starts_with("CannotCreatePodError: ") && reason.contains("exceeded quota"),
        "{reason}"
    );
    assert_eq!(ready_reason(&t).as_deref(), Some("TaskFailedToStart"));
    assert!(st.stopped_at.is_some());
    let note = s.event("refused", "FailedCreate").await;
    assert!(note.contains("exceeded quota"), "{note}");
    assert!(s.pods.get_opt("refused").await.unwrap().is_none());
}

#[tokio::test]
async fn a_service_whose_pods_are_refused_trips_the_circuit_breaker() {
    let s = setup("own-quota-svc").await;
    // An independent watcher of the invariants (bounds, one pod per task, owners, lifecycle order).
    let inv = support::invariants::Invariants::watch(&client().await, &s.ns.name);
    s.register("web", web(), 1).await;
    s.pod_quota("1").await;
    s.services
        .patch(
            "web",
            &PatchParams::apply("test").force(),
            &Patch::Apply(object::<Service>(
                "Service",
                "web",
                json!({"taskDefinition": "web", "desiredCount": 3,
                    "deploymentConfiguration": {"deploymentCircuitBreaker": {"enable": true, "rollback": true}}}),
            )),
        )
        .await
        .unwrap();
    // Two refused tasks, the launch backoff, two more: the breaker's threshold for 3 tasks is 3.
    let svc = wait_for_within(
        &s.services,
        "web",
        |svc: Option<&Service>| {
            svc.and_then(|s| s.status.as_ref())
                .and_then(|st| st.deployments.first())
                .is_some_and(|d| d.rollout_state == Some(RolloutState::Failed))
        },
        Duration::from_secs(120),
    )
    .await;
    let st = svc.status.unwrap();
    assert!(st.deployments[0].failed_tasks >= 3, "{:#?}", st.deployments);
    assert!(
        st.events.iter().any(|e| e.message.starts_with(
            "(service web) was unable to place a task. Reason: CannotCreatePodError:"
        ) && e.message.contains("exceeded quota")),
        "{:#?}",
        st.events
    );
    let note = s.event("web", "UnableToPlaceTask").await;
    assert!(note.contains("exceeded quota"), "{note}");
    // Each refused task is STOPPED with the reason, none left waiting without a status.
    let tasks = s.tasks.list(&ListParams::default()).await.unwrap().items;
    for t in &tasks {
        let last = t.status.as_ref().and_then(|s| s.last_status);
        assert!(last.is_some(), "{} has no lastStatus", t.name_any());
    }
    let refused = tasks
        .iter()
        .filter(|t| {
            t.status.as_ref().is_some_and(|s| {
                s.stop_code == Some(StopCode::TaskFailedToStart)
                    && s.stopped_reason
                        .as_deref()
                        .is_some_and(|r| r.contains("exceeded quota"))
            })
        })
        .count();
    assert!(refused >= 3, "{refused} refused tasks");
    // The quota's one task keeps serving: a failed deployment stops only what fails.
    let running_now = s
        .tasks
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .iter()
        .filter(|t| running(Some(t)) && t.spec.desired_status == Default::default())
        .count();
    assert_eq!(running_now, 1);
    // Stalled: once every task is RUNNING or STOPPED, nothing more is written (a silent retry loop
    // would write Task statuses and Events).
    // The service's own last write (the count of the last STOPPED task, its Event) can land just after
    // that task's: the window starts once nothing has been written for a second.
    inv.wait_until(
        "no task between states, a second without writes",
        support::DEADLINE,
        |v| {
            v.tasks().iter().all(|t| {
                matches!(
                    t.last_status,
                    Some(LastStatus::Running | LastStatus::Stopped)
                )
            }) && v.since_last_write() >= Duration::from_secs(1)
        },
    )
    .await;
    let writes = inv.quiet(Duration::from_secs(5)).await;
    let report = inv.finish();
    report.assert_ok();
    assert_eq!(writes, 0, "{report}");
}

#[tokio::test]
async fn a_task_applied_again_waits_for_the_earlier_tasks_pod_to_go() {
    let s = setup("own-again").await;
    s.register("web", web(), 1).await;
    let create = || s.create_task("t", json!({"taskDefinition": "web"}));
    let first = create().await;
    wait_for(&s.tasks, "t", running).await;
    // Hold the first pod while it terminates, as a slow kubelet or a finalizer would.
    let hold = json!({"metadata": {"finalizers": ["ecs.operator.dev/test-hold"]}});
    s.pods
        .patch("t", &PatchParams::default(), &Patch::Merge(&hold))
        .await
        .unwrap();
    s.tasks
        .delete("t", &DeleteParams::background())
        .await
        .unwrap();
    wait_gone(&s.tasks, "t").await;

    let second = create().await;
    assert_ne!(first.uid(), second.uid());
    let waiting = wait_for(&s.tasks, "t", |t: Option<&Task>| {
        t.is_some_and(|t| ready_reason(t).as_deref() == Some("WaitingForEarlierPod"))
    })
    .await;
    assert_eq!(
        waiting.status.as_ref().unwrap().last_status,
        Some(LastStatus::Provisioning),
        "waiting, not stopped"
    );

    let release = json!({"metadata": {"finalizers": null}});
    s.pods
        .patch("t", &PatchParams::default(), &Patch::Merge(&release))
        .await
        .unwrap();
    let t = wait_for(&s.tasks, "t", running).await;
    assert_eq!(t.uid(), second.uid());
    let pod = s.pods.get("t").await.unwrap();
    let owner = pod
        .owner_references()
        .iter()
        .find(|o| o.controller == Some(true));
    assert_eq!(owner.map(|o| o.uid.clone()), second.uid());
}

#[tokio::test]
async fn a_pod_of_someone_else_named_like_the_task_is_never_touched() {
    let s = setup("own-pod").await;
    s.register("web", web(), 1).await;
    let theirs: Pod = serde_json::from_value(json!({
        "metadata": {"name": "t", "labels": {"app": "theirs"}},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]}
    }))
    .unwrap();
    let theirs = s
        .pods
        .create(&PostParams::default(), &theirs)
        .await
        .unwrap();
    s.create_task("t", json!({"taskDefinition": "web"})).await;
    let t = wait_for(&s.tasks, "t", stopped).await;
    let st = t.status.unwrap();
    assert_eq!(st.stop_code, Some(StopCode::TaskFailedToStart));
    assert!(
        st.stopped_reason
            .as_deref()
            .is_some_and(|r| r.contains("does not belong to this task")),
        "{:?}",
        st.stopped_reason
    );
    assert!(
        st.pod_name.is_none(),
        "the pod is not recorded as the task's"
    );
    let after = s.pods.get("t").await.unwrap();
    assert_eq!(after.metadata.deletion_timestamp, None);
    assert!(after.owner_references().is_empty());
    // The API server copies the node's topology labels onto a bound pod; nothing else may change.
    let mut labels = after.labels().clone();
    labels.retain(|k, _| !k.starts_with("topology.kubernetes.io/"));
    assert_eq!(&labels, theirs.labels());
    assert_eq!(after.uid(), theirs.uid());
}

#[tokio::test]
async fn a_load_balancer_name_taken_by_a_users_service_is_left_untouched() {
    let s = setup("own-lb").await;
    s.register("web", web(), 1).await;
    let theirs: KubeService = serde_json::from_value(json!({
        "metadata": {"name": "frontend", "labels": {"app": "theirs"}},
        "spec": {"type": "ClusterIP", "selector": {"app": "theirs"},
            "ports": [{"port": 8080, "targetPort": 8080}]}
    }))
    .unwrap();
    let theirs = s
        .kube_services
        .create(&PostParams::default(), &theirs)
        .await
        .unwrap();
    s.services
        .patch(
            "web",
            &PatchParams::apply("test").force(),
            &Patch::Apply(object::<Service>(
                "Service",
                "web",
                json!({"taskDefinition": "web", "desiredCount": 2,
                    "loadBalancers": [{"loadBalancerName": "frontend", "containerName": "web", "containerPort": 80}]}),
            )),
        )
        .await
        .unwrap();
    let svc = wait_for(&s.services, "web", |svc: Option<&Service>| {
        svc.and_then(|s| s.status.as_ref()).is_some_and(|st| {
            st.running_count == 2
                && st.conditions.iter().any(|c| {
                    c.type_ == "Degraded"
                        && c.status == "True"
                        && c.reason == "LoadBalancerNameConflict"
                })
        })
    })
    .await;
    let ready = svc
        .status
        .unwrap()
        .conditions
        .into_iter()
        .find(|c| c.type_ == "Ready")
        .unwrap();
    assert_eq!(
        (ready.status.as_str(), ready.reason.as_str()),
        ("False", "LoadBalancerNameConflict")
    );
    assert!(ready.message.contains("frontend"), "{}", ready.message);
    let note = s.event("web", "LoadBalancerNameConflict").await;
    assert!(note.contains("frontend"), "{note}");

    let unchanged = |after: &KubeService| {
        assert_eq!(after.uid(), theirs.uid());
        assert_eq!(after.resource_version(), theirs.resource_version());
        assert!(after.owner_references().is_empty());
        assert_eq!(after.spec, theirs.spec);
    };
    unchanged(&s.kube_services.get("frontend").await.unwrap());

    // Deleting the ECS Service (and so its tasks) leaves the user's Service where it was.
    s.services
        .delete("web", &DeleteParams::foreground())
        .await
        .unwrap();
    wait_gone(&s.services, "web").await;
    unchanged(&s.kube_services.get("frontend").await.unwrap());
}

#[tokio::test]
async fn a_task_definition_applied_again_after_an_orphaning_delete_numbers_after_the_orphans() {
    let s = setup("own-rev").await;
    s.register("web", web(), 1).await;
    let mut v2 = web();
    v2["containerDefinitions"][0]["image"] = "nginx:1.28".into();
    s.register("web", v2, 2).await;
    let revisions: Api<ControllerRevision> = s.ns.api();
    s.tds.delete("web", &DeleteParams::orphan()).await.unwrap();
    wait_gone(&s.tds, "web").await;
    // The garbage collector takes the ownerReferences off the orphans.
    let mut orphans = Vec::new();
    for name in ["web-1", "web-2"] {
        orphans.push(
            wait_for(&revisions, name, |r: Option<&ControllerRevision>| {
                r.is_some_and(|r| r.owner_references().is_empty())
            })
            .await,
        );
    }

    let mut v3 = web();
    v3["containerDefinitions"][0]["image"] = "nginx:1.29".into();
    s.register("web", v3, 3).await;
    let td = s.tds.get("web").await.unwrap();
    let all: Vec<_> = revisions
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|r| (r.name_any(), r.revision, r.owner_references().to_vec()))
        .collect();
    let r3 = revisions
        .get_opt("web-3")
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("no web-3: {all:#?}\n{td:#?}"));
    assert!(
        r3.owner_references()
            .iter()
            .any(|o| o.controller == Some(true) && Some(&o.uid) == td.meta().uid.as_ref())
    );
    let st = td.status.unwrap();
    assert_eq!(
        st.revisions.iter().map(|r| r.revision).collect::<Vec<_>>(),
        vec![3],
        "the orphans are not adopted"
    );
    for orphan in orphans {
        let now = revisions.get(&orphan.name_any()).await.unwrap();
        assert_eq!(now.resource_version(), orphan.resource_version());
        assert!(now.owner_references().is_empty());
    }
}

#[tokio::test]
async fn a_pod_refused_by_pod_security_admission_stops_the_task() {
    let s = setup("own-psa").await;
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client().await);
    let enforce =
        json!({"metadata": {"labels": {"pod-security.kubernetes.io/enforce": "baseline"}}});
    namespaces
        .patch(&s.ns.name, &PatchParams::default(), &Patch::Merge(&enforce))
        .await
        .unwrap();
    let mut privileged = web();
    privileged["containerDefinitions"][0]["privileged"] = true.into();
    s.register("priv", privileged, 1).await;
    s.create_task("priv", json!({"taskDefinition": "priv"}))
        .await;
    let t = wait_for(&s.tasks, "priv", stopped).await;
    let st = t.status.unwrap();
    assert_eq!(st.stop_code, Some(StopCode::TaskFailedToStart));
    let reason = st.stopped_reason.unwrap_or_default();
    assert!(
        reason.starts_with("CannotCreatePodError: ") && reason.contains("PodSecurity"),
        "{reason}"
    );
    let note = s.event("priv", "FailedCreate").await;
    assert!(note.contains("privileged"), "{note}");
}

#[tokio::test]
async fn a_status_decided_for_an_earlier_object_of_the_same_name_is_not_written() {
    let s = setup("own-uid").await;
    let first = s
        .create_task(
            "t",
            json!({"taskDefinition": "missing", "desiredStatus": "STOPPED"}),
        )
        .await;
    // A Task of the same name again, as a GitOps tool deleting and re-creating it would.
    s.tasks
        .delete("t", &DeleteParams::background())
        .await
        .unwrap();
    wait_gone(&s.tasks, "t").await;
    let second = s
        .create_task(
            "t",
            json!({"taskDefinition": "missing", "desiredStatus": "STOPPED"}),
        )
        .await;
    let stale = ecs_operator::api::TaskStatus {
        stopped_reason: Some("decided for the earlier task".into()),
        ..Default::default()
    };
    let client = client().await;
    let refused = ecs_operator::apply::status(&client, &first, "ecs-operator/test", &stale).await;
    assert!(refused.is_err(), "a write for another UID must fail");
    let now = s.tasks.get("t").await.unwrap();
    assert_eq!(now.uid(), second.uid());
    assert_ne!(
        now.status.and_then(|st| st.stopped_reason).as_deref(),
        Some("decided for the earlier task")
    );
}

fn web_service(desired: i32) -> Service {
    object::<Service>(
        "Service",
        "web",
        json!({"taskDefinition": "web", "desiredCount": desired}),
    )
}

fn controlled_by(t: &Task, svc: &Service) -> bool {
    t.owner_references()
        .iter()
        .any(|o| o.controller == Some(true) && Some(&o.uid) == svc.meta().uid.as_ref())
}

async fn running_of(s: &Setup, svc: &Service) -> usize {
    s.tasks
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .iter()
        .filter(|t| controlled_by(t, svc) && running(Some(t)))
        .count()
}

#[tokio::test]
async fn a_service_applied_again_after_an_orphaning_delete_starts_its_own_tasks() {
    let s = setup("own-svc-again").await;
    s.register("web", web(), 1).await;
    let pp = PatchParams::apply("test").force();
    s.services
        .patch("web", &pp, &Patch::Apply(web_service(2)))
        .await
        .unwrap();
    let first = wait_for(&s.services, "web", |svc: Option<&Service>| {
        svc.and_then(|s| s.status.as_ref())
            .is_some_and(|st| st.running_count == 2)
    })
    .await;
    let orphans: Vec<Task> = s
        .tasks
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|t| controlled_by(t, &first))
        .collect();
    assert_eq!(orphans.len(), 2, "{orphans:#?}");
    s.services
        .delete("web", &DeleteParams::orphan())
        .await
        .unwrap();
    wait_gone(&s.services, "web").await;
    for o in &orphans {
        wait_for(&s.tasks, &o.name_any(), |t: Option<&Task>| {
            t.is_some_and(|t| t.owner_references().is_empty())
        })
        .await;
    }

    // The same service again: the orphans' names (web-1-0, web-1-1) are taken, not adopted.
    let second = s
        .services
        .patch("web", &pp, &Patch::Apply(web_service(2)))
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + support::DEADLINE;
    while running_of(&s, &second).await < 2 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the new service never ran its own tasks"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    for o in &orphans {
        let now = s.tasks.get(&o.name_any()).await.unwrap();
        assert!(now.owner_references().is_empty(), "not adopted");
        assert_eq!(now.spec.desired_status, Default::default(), "not stopped");
    }
}

#[tokio::test]
async fn a_task_of_someone_else_named_like_a_service_task_is_skipped_and_reported() {
    let s = setup("own-task-name").await;
    s.register("web", web(), 1).await;
    // A standalone Task with the name the service's first task would get.
    s.create_task("web-1-0", json!({"taskDefinition": "web"}))
        .await;
    let theirs = wait_for(&s.tasks, "web-1-0", running).await;
    s.services
        .patch(
            "web",
            &PatchParams::apply("test").force(),
            &Patch::Apply(web_service(2)),
        )
        .await
        .unwrap();
    // The service works around the name (other names are used) and says so once, in an Event.
    let svc = wait_for(&s.services, "web", |svc: Option<&Service>| {
        svc.and_then(|s| s.status.as_ref()).is_some_and(|st| {
            st.running_count == 2
                && st
                    .conditions
                    .iter()
                    .any(|c| c.type_ == "Ready" && c.status == "True")
        })
    })
    .await;
    assert_eq!(running_of(&s, &svc).await, 2);
    let note = s.event("web", "TaskNameConflict").await;
    assert!(note.contains("web-1-0"), "{note}");
    let after = s.tasks.get("web-1-0").await.unwrap();
    assert_eq!(after.uid(), theirs.uid());
    assert!(after.owner_references().is_empty());
    assert_eq!(after.spec.desired_status, Default::default());
}
