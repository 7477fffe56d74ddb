//! ECS versionConsistency on the local control plane: a service deployment pins each container's image to
//! the digest its first RUNNING task reports, and its later tasks run `image@sha256:…`. kwok reports no
//! `imageID`, so the test writes it into the pod's status as a kubelet would after pulling.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use ecs_operator::api::Service;
use kube::api::{ListParams, Patch, PatchParams};
use serde_json::json;
use support::setup::{Setup, steady};

const DEADLINE: Duration = Duration::from_secs(120);
const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

#[tokio::test]
async fn a_deployment_runs_the_digest_its_first_task_pulled() {
    let s = Setup::start("digests").await;
    let (tasks, pods) = (&s.tasks, &s.pods);
    s.register(
        "web",
        json!({"containerDefinitions": [
            {"name": "web", "image": "nginx:1.27"},
            {"name": "log", "image": "busybox:1", "essential": false, "versionConsistency": "disabled"}]}),
        1,
    )
    .await;
    s.apply_service("web", json!({"taskDefinition": "web", "desiredCount": 1}))
        .await;
    s.wait_service("web", steady, DEADLINE).await;
    let first = tasks
        .list(&ListParams::default().labels("ecs.operator.dev/service=web"))
        .await
        .unwrap()
        .items
        .remove(0);
    let first = first.metadata.name.unwrap();

    // The kubelet pulled the tags and reports what they resolved to.
    let pod = pods.get(&first).await.unwrap();
    let mut statuses =
        serde_json::to_value(pod.status.unwrap().container_statuses.unwrap()).unwrap();
    for s in statuses.as_array_mut().unwrap() {
        let repo = if s["name"] == "web" {
            "docker.io/library/nginx"
        } else {
            "docker.io/library/busybox"
        };
        s["imageID"] = json!(format!("{repo}@{DIGEST}"));
    }
    pods.patch_status(
        &first,
        &PatchParams::default(),
        &Patch::Merge(json!({"status": {"containerStatuses": statuses}})),
    )
    .await
    .unwrap();

    // The deployment is pinned to the web container's digest; log opted out.
    let pinned = format!("nginx@{DIGEST}");
    let want = BTreeMap::from([("web".to_string(), pinned.clone())]);
    s.wait_service(
        "web",
        |s: Option<&Service>| {
            s.and_then(|s| s.status.as_ref())
                .and_then(|st| st.deployments.first())
                .is_some_and(|d| d.pinned_images == want)
        },
        DEADLINE,
    )
    .await;

    // A later task of the deployment runs the digest; the first keeps what it runs.
    s.apply_service("web", json!({"taskDefinition": "web", "desiredCount": 2}))
        .await;
    s.wait_service("web", steady, DEADLINE).await;
    let all = pods
        .list(&ListParams::default().labels("ecs.operator.dev/service=web"))
        .await
        .unwrap()
        .items;
    assert_eq!(all.len(), 2);
    for pod in all {
        let name = pod.metadata.name.clone().unwrap();
        let images: Vec<String> = pod
            .spec
            .unwrap()
            .containers
            .into_iter()
            .map(|c| c.image.unwrap())
            .collect();
        if name == first {
            assert_eq!(images, ["nginx:1.27", "busybox:1"]);
        } else {
            assert_eq!(images, [pinned.as_str(), "busybox:1"], "{name}");
        }
    }
}

#[tokio::test]
async fn a_rollback_runs_the_digests_of_the_deployment_it_returns_to() {
    // Crashing tasks must not count as healthy before they crash.
    let s = Setup::start("digests-rollback")
        .healthy_after_running(Duration::from_secs(10))
        .await;
    let (tasks, pods) = (&s.tasks, &s.pods);
    let web = |image: &str| json!({"containerDefinitions": [{"name": "web", "image": image}]});
    s.register("web", web("nginx:1.27"), 1).await;
    s.apply_service(
        "web",
        json!({"taskDefinition": "web", "desiredCount": 2,
            "deploymentConfiguration": {"minimumHealthyPercent": 100, "maximumPercent": 200,
                "deploymentCircuitBreaker": {"enable": true, "rollback": true}}}),
    )
    .await;
    s.wait_service("web", steady, DEADLINE).await;
    for t in tasks
        .list(&ListParams::default().labels("ecs.operator.dev/service=web"))
        .await
        .unwrap()
    {
        let name = t.metadata.name.unwrap();
        let pod = pods.get(&name).await.unwrap();
        let mut statuses =
            serde_json::to_value(pod.status.unwrap().container_statuses.unwrap()).unwrap();
        statuses[0]["imageID"] = json!(format!("docker.io/library/nginx@{DIGEST}"));
        pods.patch_status(
            &name,
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"containerStatuses": statuses}})),
        )
        .await
        .unwrap();
    }
    let pinned = format!("nginx@{DIGEST}");
    let want = BTreeMap::from([("web".to_string(), pinned.clone())]);
    s.wait_service(
        "web",
        |s: Option<&Service>| {
            s.and_then(|s| s.status.as_ref())
                .and_then(|st| st.deployments.first())
                .is_some_and(|d| d.pinned_images == want)
        },
        DEADLINE,
    )
    .await;

    // Revision 2 crashes: the breaker rolls back to web:1, with the digests web:1 ran.
    s.register("web", web("ecs-operator.test/crash"), 2).await;
    let svc = s
        .wait_service(
            "web",
            |s: Option<&Service>| {
                s.and_then(|s| s.status.as_ref())
                    .and_then(|st| st.deployments.first())
                    .is_some_and(|d| d.rolled_back_from.is_some())
            },
            Duration::from_secs(180),
        )
        .await;
    let rollback = svc.status.unwrap().deployments[0].clone();
    assert_eq!(rollback.task_definition, "web:1");
    assert_eq!(rollback.pinned_images, want);
    // Every task the rollback starts runs the digest.
    s.wait_service("web", steady, DEADLINE).await;
    let mut started = 0;
    for t in tasks
        .list(&ListParams::default().labels("ecs.operator.dev/service=web"))
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|t| t.spec.started_by.as_deref() == Some(rollback.id.as_str()))
    {
        let name = t.metadata.name.unwrap();
        let pod = pods.get(&name).await.unwrap();
        assert_eq!(
            pod.spec.unwrap().containers[0].image.as_deref(),
            Some(pinned.as_str()),
            "{name}"
        );
        started += 1;
    }
    assert!(started > 0, "the rollback started tasks");
}
