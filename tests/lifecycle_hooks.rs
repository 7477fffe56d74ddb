//! Deployment lifecycle hooks on the local cluster: the CRD rules of a hook (as the API server applies
//! them to the type), and hook Tasks run through the evaluator and its I/O as a deployment's stage does —
//! a hook task whose container exits 0 makes its hook SUCCEEDED, one exiting 1 FAILED — without the
//! service ever counting them as its tasks.

mod support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use ecs_operator::api::lifecycle_hook::{LifecycleHook, LifecycleHookDetail, LifecycleHookStatus};
use ecs_operator::api::task::StopCode;
use ecs_operator::api::{LifecycleStage, Service, Task, TaskDefinition};
use ecs_operator::context::{Config, Context};
use ecs_operator::service::hooks::{self, HookTask, StageInput, StageOutcome};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ApiResource, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::wait::conditions;
use kube::{CustomResource, CustomResourceExt, ResourceExt};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use support::{Operator, TestNamespace, client, install_crds, wait_for, wait_for_within};

/// A kind of this test's own holding hooks, so the API server applies the hook type's schema and CEL
/// rules as they will be inside a Service's deploymentConfiguration.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, JsonSchema)]
#[kube(
    group = "test.ecs.operator.dev",
    version = "v1",
    kind = "HookProbe",
    namespaced
)]
struct HookProbeSpec {
    /// As many as `deploymentConfiguration.lifecycleHooks` takes: the CEL cost budget counts them.
    #[schemars(length(max = 10))]
    hooks: Vec<LifecycleHook>,
}

/// The probes, untyped: invalid ones must reach the API server to be refused there.
async fn probes(client: &kube::Client, ns: &TestNamespace) -> Api<DynamicObject> {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let crd = HookProbe::crd();
    let name = crd.name_any();
    crds.patch(
        &name,
        &PatchParams::apply("ecs-operator-tests").force(),
        &Patch::Apply(&crd),
    )
    .await
    .expect("the hook type's schema is accepted by the API server");
    wait_for(&crds, &name, conditions::is_crd_established()).await;
    Api::namespaced_with(
        client.clone(),
        &ns.name,
        &ApiResource::erase::<HookProbe>(&()),
    )
}

async fn create_probe(api: &Api<DynamicObject>, hook: Value) -> Result<(), String> {
    let probe: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "test.ecs.operator.dev/v1", "kind": "HookProbe",
        "metadata": {"generateName": "probe-"},
        "spec": {"hooks": [hook]}
    }))
    .unwrap();
    let dry = PostParams {
        dry_run: true,
        ..PostParams::default()
    };
    api.create(&dry, &probe)
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}

#[tokio::test]
async fn the_crd_refuses_hooks_that_cannot_run() {
    let client = client().await;
    let ns = TestNamespace::new(&client, "hook-schema").await;
    let api = probes(&client, &ns).await;
    for ok in [
        json!({"hookTargetArn": "smoke", "lifecycleStages": ["POST_SCALE_UP"], "hookDetails": {"suite": "smoke"}}),
        json!({"hookTargetArn": "arn:aws:ecs:us-east-1:123456789012:task-definition/smoke:3",
               "targetType": "AWS_LAMBDA", "roleArn": "arn:aws:iam::123456789012:role/hooks",
               "lifecycleStages": ["PRE_SCALE_UP", "POST_PRODUCTION_TRAFFIC_SHIFT"],
               "timeoutConfiguration": {"timeoutInMinutes": 20160, "action": "CONTINUE"}}),
        json!({"targetType": "PAUSE", "lifecycleStages": ["POST_TEST_TRAFFIC_SHIFT"],
               "timeoutConfiguration": {"timeoutInMinutes": 1, "action": "ROLLBACK"}}),
    ] {
        create_probe(&api, ok.clone())
            .await
            .unwrap_or_else(|e| panic!("{ok} refused: {e}"));
    }
    for (bad, why) in [
        (
            json!({"targetType": "PAUSE", "hookTargetArn": "smoke", "lifecycleStages": ["POST_SCALE_UP"]}),
            "a PAUSE hook names no hookTargetArn",
        ),
        (
            json!({"lifecycleStages": ["POST_SCALE_UP"]}),
            "every other hook needs one",
        ),
        (
            json!({"targetType": "PAUSE", "hookDetails": {"a": 1}, "lifecycleStages": ["POST_SCALE_UP"]}),
            "a PAUSE hook runs none",
        ),
        (
            json!({"hookTargetArn": "arn:aws:lambda:us-east-1:123456789012:function:smoke", "lifecycleStages": ["POST_SCALE_UP"]}),
            "Lambda functions are not supported",
        ),
        (
            json!({"hookTargetArn": "smoke", "lifecycleStages": ["BAKE_TIME"]}),
            "Unsupported value: \"BAKE_TIME\"",
        ),
        (
            json!({"hookTargetArn": "smoke", "lifecycleStages": []}),
            "should have at least 1 items",
        ),
        (
            json!({"hookTargetArn": "smoke", "lifecycleStages": ["PRE_SCALE_UP", "PRE_SCALE_UP"]}),
            "Duplicate value: \"PRE_SCALE_UP\"",
        ),
        (
            json!({"hookTargetArn": "smoke", "lifecycleStages": ["PRE_SCALE_UP"], "timeoutConfiguration": {"timeoutInMinutes": 0}}),
            "should be greater than or equal to 1",
        ),
        (
            json!({"hookTargetArn": "smoke", "lifecycleStages": ["PRE_SCALE_UP"], "timeoutConfiguration": {"timeoutInMinutes": 20161}}),
            "should be less than or equal to 20160",
        ),
        (
            json!({"hookTargetArn": "smoke", "lifecycleStages": ["PRE_SCALE_UP"], "timeoutConfiguration": {"action": "STOP"}}),
            "Unsupported value: \"STOP\"",
        ),
        (
            json!({"hookTargetArn": "smoke", "lifecycleStages": ["PRE_SCALE_UP"], "hookDetails": "smoke"}),
            "must be of type object",
        ),
        (
            json!({"targetType": "LAMBDA", "hookTargetArn": "smoke", "lifecycleStages": ["PRE_SCALE_UP"]}),
            "Unsupported value: \"LAMBDA\"",
        ),
    ] {
        let err = create_probe(&api, bad.clone())
            .await
            .expect_err(&format!("{bad} was accepted"));
        assert!(err.contains(why), "{bad}: {err}");
    }
}

fn task_definition(name: &str, image: &str) -> TaskDefinition {
    serde_json::from_value(json!({
        "apiVersion": "ecs.operator.dev/v1alpha1", "kind": "TaskDefinition",
        "metadata": {"name": name},
        "spec": {"containerDefinitions": [
            {"name": "check", "image": image, "cpu": 64, "memory": 64},
            {"name": "logs", "image": "busybox:1.37", "essential": false, "memory": 32}
        ]}
    }))
    .unwrap()
}

fn hook(target: &str, stage: LifecycleStage) -> LifecycleHook {
    serde_json::from_value(json!({
        "hookTargetArn": target,
        "lifecycleStages": [stage],
        "hookDetails": {"suite": "smoke", "retries": 2}
    }))
    .unwrap()
}

/// Runs one stage of `ecs-svc/1` as the stage machine does (list the hook tasks, evaluate, create what
/// it asks for, store the details) until it succeeds or fails; returns the outcome and the details.
async fn run_stage(
    ctx: &Context,
    svc: &Service,
    hooks_: &[LifecycleHook],
    stage: LifecycleStage,
) -> (StageOutcome, Vec<LifecycleHookDetail>) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let mut previous: Vec<LifecycleHookDetail> = Vec::new();
    let mut not_created: BTreeMap<String, HookTask> = BTreeMap::new();
    let mut interval = tokio::time::interval(Duration::from_millis(250));
    loop {
        interval.tick().await;
        let mut seen = hooks::tasks::hook_tasks(ctx, svc).await.unwrap();
        seen.extend(not_created.clone());
        let out = hooks::evaluate(&StageInput {
            service: &svc.name_any(),
            deployment: "ecs-svc/1",
            stage,
            hooks: hooks_,
            tasks: &seen,
            previous: &previous,
            action: None,
            now: k8s_openapi::jiff::Timestamp::now(),
        });
        previous = out.details.clone();
        match out.outcome {
            StageOutcome::Run(tasks) => {
                not_created.extend(hooks::tasks::create(ctx, svc, &tasks).await.unwrap());
            }
            StageOutcome::Wait { .. } => {}
            done => return (done, previous),
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "stage {stage} did not end: {previous:#?}"
        );
    }
}

#[tokio::test]
async fn hook_tasks_decide_their_hooks_and_are_not_service_tasks() {
    let client = client().await;
    install_crds(&client).await;
    let ns = TestNamespace::new(&client, "hook-tasks").await;
    let _operator = Operator::start(&client, &ns.name);
    let tds: Api<TaskDefinition> = ns.api();
    let pp = PatchParams::apply("test").force();
    for (name, image) in [
        ("web", "nginx:1.27"),
        ("hook-ok", "ecs-operator.test/succeed"),
        ("hook-bad", "ecs-operator.test/crash"),
    ] {
        tds.patch(name, &pp, &Patch::Apply(task_definition(name, image)))
            .await
            .unwrap();
        wait_for(&tds, name, |td: Option<&TaskDefinition>| {
            td.and_then(|t| t.status.as_ref()?.latest_active_revision) == Some(1)
        })
        .await;
    }
    let services: Api<Service> = ns.api();
    let svc: Service = serde_json::from_value(json!({
        "apiVersion": "ecs.operator.dev/v1alpha1", "kind": "Service",
        "metadata": {"name": "web"},
        "spec": {"taskDefinition": "web", "desiredCount": 1}
    }))
    .unwrap();
    services
        .patch("web", &pp, &Patch::Apply(&svc))
        .await
        .unwrap();
    let steady = |s: Option<&Service>| {
        s.and_then(|s| s.status.as_ref())
            .is_some_and(|st| st.running_count == 1 && st.pending_count == 0)
    };
    let svc = wait_for_within(&services, "web", steady, Duration::from_secs(90)).await;

    let (nodes, _writer) = kube::runtime::reflector::store();
    let ctx = Context::new(
        client.clone(),
        Config::default(),
        nodes,
        Arc::new(ecs_operator::admin::Admin::default()),
        0,
    );

    // Exit 0: SUCCEEDED; the payload is in the task's environment.
    let ok = [hook("hook-ok", LifecycleStage::PostScaleUp)];
    let (outcome, details) = run_stage(&ctx, &svc, &ok, LifecycleStage::PostScaleUp).await;
    assert_eq!(outcome, StageOutcome::Succeeded, "{details:#?}");
    assert_eq!(details[0].status, LifecycleHookStatus::Succeeded);
    let name = details[0].task_name.clone().expect("the hook's task");
    assert_eq!(name, "web-1-hook-postscaleup-0");
    let tasks: Api<Task> = ns.api();
    let task = tasks.get(&name).await.unwrap();
    let status = task.status.unwrap();
    assert_eq!(status.task_definition.as_deref(), Some("hook-ok:1"));
    assert_eq!(status.started_by.as_deref(), Some("ecs-svc/1"));
    let pods: Api<Pod> = ns.api();
    let pod = pods.get(status.pod_name.as_deref().unwrap()).await.unwrap();
    let env: BTreeMap<String, String> = pod.spec.unwrap().containers[0]
        .env
        .iter()
        .flatten()
        .filter_map(|e| Some((e.name.clone(), e.value.clone()?)))
        .collect();
    assert_eq!(env["ECS_LIFECYCLE_STAGE"], "POST_SCALE_UP");
    assert_eq!(env["ECS_SERVICE_NAME"], "web");
    assert_eq!(env["ECS_SERVICE_DEPLOYMENT_ID"], "ecs-svc/1");
    assert_eq!(env["ECS_LIFECYCLE_HOOK_ID"], "ecs-svc/1/POST_SCALE_UP/0");
    assert_eq!(
        serde_json::from_str::<Value>(&env["ECS_LIFECYCLE_HOOK_DETAILS"]).unwrap(),
        json!({"suite": "smoke", "retries": 2})
    );

    // Exit 1 (named by its ECS ARN): FAILED, with the exit code in the reason.
    let bad = [hook(
        "arn:aws:ecs:us-east-1:123456789012:task-definition/hook-bad:1",
        LifecycleStage::PreScaleUp,
    )];
    let (outcome, details) = run_stage(&ctx, &svc, &bad, LifecycleStage::PreScaleUp).await;
    let StageOutcome::Failed { reason } = outcome else {
        panic!("{outcome:?}")
    };
    assert!(reason.contains("check exited with 1"), "{reason}");
    assert_eq!(details[0].status, LifecycleHookStatus::Failed);

    // A task definition that does not exist: FAILED without a task.
    let missing = [hook("nowhere", LifecycleStage::TestTrafficShift)];
    let (outcome, _) = run_stage(&ctx, &svc, &missing, LifecycleStage::TestTrafficShift).await;
    assert!(
        matches!(&outcome, StageOutcome::Failed { reason } if reason.contains("not found")),
        "{outcome:?}"
    );

    // The service's own tasks: its one task, never a hook's; it still runs its one.
    let own = tasks
        .list(&ListParams::default().labels("ecs.operator.dev/service=web"))
        .await
        .unwrap();
    assert_eq!(
        own.items.len(),
        1,
        "{:?}",
        own.items.iter().map(|t| t.name_any()).collect::<Vec<_>>()
    );
    assert!(!hooks::is_hook_task(&own.items[0]));
    let svc = services.get("web").await.unwrap();
    let st = svc.status.unwrap();
    assert_eq!((st.running_count, st.pending_count), (1, 0));
    // The hook tasks stopped by themselves, not by the service.
    for t in tasks
        .list(&ListParams::default().labels("ecs.operator.dev/lifecycle-hook-of=web"))
        .await
        .unwrap()
    {
        let s = t.status.clone().unwrap_or_default();
        assert_eq!(
            s.stop_code,
            Some(StopCode::EssentialContainerExited),
            "{}",
            t.name_any()
        );
    }
}
