//! `kubectl ecs` against the local control plane: kubectl finds the plugin on PATH, the verbs act on
//! the operator's objects, and the output has the AWS CLI's JSON shapes.

mod support;

use std::path::Path;
use std::time::Duration;

use ecs_operator::api::task::LastStatus;
use ecs_operator::api::{Task, TaskDefinition};
use kube::api::{Api, Patch, PatchParams};
use serde_json::{Value, json};
use support::{Operator, TestNamespace, client, install_crds, wait_for_within};

/// `kubectl ecs <args>` with the plugin's directory first on PATH: (exit code, stdout JSON or null,
/// stderr).
async fn kubectl_ecs(ns: &str, args: &[&str]) -> (i32, Value, String) {
    let (code, out, err) = kubectl_ecs_text(ns, args).await;
    (code, serde_json::from_str(&out).unwrap_or(Value::Null), err)
}

/// `kubectl ecs <args>`: (exit code, stdout, stderr).
async fn kubectl_ecs_text(ns: &str, args: &[&str]) -> (i32, String, String) {
    let plugin_dir = Path::new(env!("CARGO_BIN_EXE_kubectl-ecs"))
        .parent()
        .unwrap();
    let path = format!(
        "{}:{}",
        plugin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = tokio::process::Command::new("kubectl")
        .arg("ecs")
        .args(args)
        .args(["-n", ns])
        .env("PATH", path)
        .output()
        .await
        .expect("kubectl on PATH (cargo xtask cluster up prints the PATH line)");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

async fn ok(ns: &str, args: &[&str]) -> Value {
    let (code, out, err) = kubectl_ecs(ns, args).await;
    assert_eq!(code, 0, "kubectl ecs {args:?}: {err}");
    out
}

async fn setup(prefix: &str) -> (kube::Client, TestNamespace, Operator) {
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
    let tds: Api<TaskDefinition> = ns.api();
    let td: TaskDefinition = serde_json::from_value(json!({
        "apiVersion": "ecs.operator.dev/v1alpha1", "kind": "TaskDefinition",
        "metadata": {"name": "web"},
        "spec": {"containerDefinitions": [{"name": "app", "image": "nginx:1.27", "portMappings": [{"containerPort": 80}]}]}
    }))
    .unwrap();
    tds.patch("web", &PatchParams::apply("test"), &Patch::Apply(&td))
        .await
        .unwrap();
    wait_for_within(
        &tds,
        "web",
        |td: Option<&TaskDefinition>| {
            td.and_then(|t| t.status.as_ref())
                .and_then(|s| s.latest_active_revision)
                == Some(1)
        },
        support::DEADLINE,
    )
    .await;
    (client, ns, operator)
}

#[tokio::test]
async fn run_describe_list_and_stop_a_task() {
    let (_client, ns, _operator) = setup("plugin-task").await;
    let ran = ok(
        &ns.name,
        &["run-task", "--task-definition", "web", "--started-by", "ci"],
    )
    .await;
    assert_eq!(ran["failures"], json!([]));
    let arn = ran["tasks"][0]["taskArn"].as_str().unwrap().to_string();
    assert!(
        arn.starts_with(&format!(
            "arn:aws:ecs:kubernetes:000000000000:task/{}/web-",
            ns.name
        )),
        "{arn}"
    );
    let name = arn.rsplit('/').next().unwrap().to_string();

    let tasks: Api<Task> = ns.api();
    let (code, _, progress) = kubectl_ecs(
        &ns.name,
        &["wait", "tasks-running", "--tasks", &arn, "--timeout", "60"],
    )
    .await;
    assert_eq!(code, 0, "{progress}");
    assert!(
        progress.contains(&format!("{name}: RUNNING")),
        "the waiter shows its progress: {progress}"
    );
    // Described by ARN or by name alike, in the DescribeTasks shape.
    let described = ok(
        &ns.name,
        &["describe-tasks", "--tasks", &arn, "missing-task"],
    )
    .await;
    let task = &described["tasks"][0];
    assert_eq!(task["lastStatus"], "RUNNING");
    assert_eq!(task["startedBy"], "ci");
    assert_eq!(
        task["taskDefinitionArn"],
        "arn:aws:ecs:kubernetes:000000000000:task-definition/web:1"
    );
    assert_eq!(task["containers"][0]["name"], "app");
    assert_eq!(described["failures"][0]["reason"], "MISSING");

    let listed = ok(&ns.name, &["list-tasks", "--family", "web"]).await;
    assert_eq!(listed["taskArns"], json!([arn]));

    let stopped = ok(
        &ns.name,
        &["stop-task", "--task", &name, "--reason", "done for today"],
    )
    .await;
    assert_eq!(stopped["task"]["desiredStatus"], "STOPPED");
    let (code, _, progress) = kubectl_ecs(
        &ns.name,
        &["wait", "tasks-stopped", "--tasks", &name, "--timeout", "60"],
    )
    .await;
    assert_eq!(code, 0, "{progress}");
    // A stopped task can never run again: the running waiter fails at once (exit 255).
    let (code, _, err) = kubectl_ecs(
        &ns.name,
        &["wait", "tasks-running", "--tasks", &name, "--timeout", "60"],
    )
    .await;
    assert_eq!(code, 255, "{err}");
    assert!(err.contains("is STOPPED: done for today"), "{err}");
    let (code, table, _) = kubectl_ecs_text(
        &ns.name,
        &["describe-tasks", "--tasks", &name, "--output", "table"],
    )
    .await;
    assert_eq!(code, 0);
    assert!(table.contains("stopped: done for today"), "{table}");
    let task = wait_for_within(
        &tasks,
        &name,
        |t: Option<&Task>| {
            t.and_then(|t| t.status.as_ref())
                .and_then(|s| s.last_status)
                == Some(LastStatus::Stopped)
        },
        support::DEADLINE,
    )
    .await;
    assert_eq!(
        task.status.unwrap().stopped_reason.as_deref(),
        Some("done for today")
    );
    let listed = ok(&ns.name, &["list-tasks", "--desired-status", "STOPPED"]).await;
    assert_eq!(listed["taskArns"], json!([arn]));

    let td = ok(
        &ns.name,
        &["describe-task-definition", "--task-definition", "web"],
    )
    .await;
    assert_eq!(td["taskDefinition"]["revision"], 1);
    assert_eq!(td["taskDefinition"]["status"], "ACTIVE");
    assert_eq!(
        td["taskDefinition"]["containerDefinitions"][0]["image"],
        "nginx:1.27"
    );
}

#[tokio::test]
async fn update_service_and_wait_until_stable() {
    let (client, ns, _operator) = setup("plugin-svc").await;
    let services: Api<ecs_operator::api::Service> = Api::namespaced(client.clone(), &ns.name);
    let svc: ecs_operator::api::Service = serde_json::from_value(json!({
        "apiVersion": "ecs.operator.dev/v1alpha1", "kind": "Service",
        "metadata": {"name": "web"},
        "spec": {"taskDefinition": "web", "desiredCount": 2}
    }))
    .unwrap();
    services
        .patch("web", &PatchParams::apply("test"), &Patch::Apply(&svc))
        .await
        .unwrap();

    let (code, _, progress) = kubectl_ecs(
        &ns.name,
        &[
            "wait",
            "services-stable",
            "--services",
            "web",
            "--timeout",
            "120",
        ],
    )
    .await;
    assert_eq!(code, 0, "{progress}");
    assert!(progress.contains("web: 2/2 running"), "{progress}");

    let updated = ok(
        &ns.name,
        &[
            "update-service",
            "--service",
            "web",
            "--desired-count",
            "3",
            "--force-new-deployment",
        ],
    )
    .await;
    assert_eq!(updated["service"]["desiredCount"], 3);
    let (code, _, progress) = kubectl_ecs(
        &ns.name,
        &[
            "wait",
            "services-stable",
            "--services",
            "web",
            "--timeout",
            "120",
        ],
    )
    .await;
    assert_eq!(code, 0, "{progress}");
    let described = ok(
        &ns.name,
        &["describe-services", "--services", "web", "gone"],
    )
    .await;
    let web = &described["services"][0];
    assert_eq!(web["runningCount"], 3);
    assert_eq!(web["deployments"].as_array().unwrap().len(), 1);
    assert_eq!(
        web["deployments"][0]["id"]
            .as_str()
            .map(|id| id.starts_with("ecs-svc/")),
        Some(true)
    );
    // The forced deployment is the PRIMARY now: the first deployment is no longer listed.
    assert!(web["events"].as_array().is_some_and(|e| !e.is_empty()));
    assert_eq!(
        described["failures"],
        json!([{"arn": format!("arn:aws:ecs:kubernetes:000000000000:service/{}/gone", ns.name), "reason": "MISSING"}])
    );
    let listed = ok(&ns.name, &["list-tasks", "--service-name", "web"]).await;
    assert_eq!(listed["taskArns"].as_array().unwrap().len(), 3, "{listed}");

    // The console's view: counts, the deployment with its progress, the events; MISSING on stderr.
    let (code, table, err) = kubectl_ecs_text(
        &ns.name,
        &[
            "describe-services",
            "--services",
            "web",
            "gone",
            "-o",
            "table",
        ],
    )
    .await;
    assert_eq!(code, 0, "{err}");
    assert!(table.starts_with("Service web  ACTIVE\n"), "{table}");
    assert!(table.contains("3 desired, 3 running, 0 pending"), "{table}");
    assert!(
        table.contains("PRIMARY") && table.contains("[##########]"),
        "{table}"
    );
    assert!(table.contains("has reached a steady state."), "{table}");
    assert!(
        err.contains("service/") && err.contains("/gone: MISSING"),
        "{err}"
    );

    // A missing service fails the waiter as the AWS CLI does (exit 255).
    let (code, _, err) = kubectl_ecs(
        &ns.name,
        &[
            "wait",
            "services-stable",
            "--services",
            "gone",
            "--timeout",
            "5",
        ],
    )
    .await;
    assert_eq!(code, 255, "{err}");
    assert!(err.contains("MISSING"), "{err}");
}

#[tokio::test]
async fn task_protection_and_stopping_a_deployment() {
    let (client, ns, _operator) = setup("plugin-protect").await;
    let services: Api<ecs_operator::api::Service> = Api::namespaced(client.clone(), &ns.name);
    let svc: ecs_operator::api::Service = serde_json::from_value(json!({
        "apiVersion": "ecs.operator.dev/v1alpha1", "kind": "Service",
        "metadata": {"name": "web"},
        "spec": {"taskDefinition": "web", "desiredCount": 2}
    }))
    .unwrap();
    services
        .patch("web", &PatchParams::apply("test"), &Patch::Apply(&svc))
        .await
        .unwrap();
    let (code, _, progress) = kubectl_ecs(
        &ns.name,
        &[
            "wait",
            "services-stable",
            "--services",
            "web",
            "--timeout",
            "120",
        ],
    )
    .await;
    assert_eq!(code, 0, "{progress}");
    let listed = ok(&ns.name, &["list-tasks", "--service-name", "web"]).await;
    let arns: Vec<String> = listed["taskArns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_string())
        .collect();
    assert_eq!(arns.len(), 2);

    let updated = ok(
        &ns.name,
        &[
            "update-task-protection",
            "--tasks",
            &arns[0],
            "--protection-enabled",
            "--expires-in-minutes",
            "60",
        ],
    )
    .await;
    assert_eq!(updated["failures"], json!([]));
    let protected = &updated["protectedTasks"][0];
    assert_eq!(protected["taskArn"], arns[0].as_str());
    assert_eq!(protected["protectionEnabled"], true);
    let expires: k8s_openapi::jiff::Timestamp = protected["expirationDate"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let in_minutes = expires
        .duration_since(k8s_openapi::jiff::Timestamp::now())
        .as_secs()
        / 60;
    assert!((58..=60).contains(&in_minutes), "{expires}");
    let tasks: Api<Task> = ns.api();
    let name = arns[0].rsplit('/').next().unwrap();
    let task = tasks.get(name).await.unwrap();
    assert_eq!(
        task.metadata.annotations.unwrap()["ecs.operator.dev/scale-in-protection"],
        protected["expirationDate"].as_str().unwrap()
    );

    let got = ok(
        &ns.name,
        &["get-task-protection", "--tasks", &arns[0], &arns[1], "gone"],
    )
    .await;
    assert_eq!(got["protectedTasks"][0]["protectionEnabled"], true);
    assert_eq!(
        got["protectedTasks"][1],
        json!({"taskArn": arns[1], "protectionEnabled": false})
    );
    assert_eq!(got["failures"][0]["reason"], "MISSING");

    let removed = ok(
        &ns.name,
        &[
            "update-task-protection",
            "--tasks",
            name,
            "--no-protection-enabled",
        ],
    )
    .await;
    assert_eq!(removed["protectedTasks"][0]["protectionEnabled"], false);
    let task = tasks.get(name).await.unwrap();
    assert!(
        !task
            .metadata
            .annotations
            .unwrap_or_default()
            .contains_key("ecs.operator.dev/scale-in-protection")
    );
    // ECS bounds: 1 to 2,880 minutes; standalone tasks cannot be protected.
    let (code, _, err) = kubectl_ecs(
        &ns.name,
        &[
            "update-task-protection",
            "--tasks",
            name,
            "--protection-enabled",
            "--expires-in-minutes",
            "2881",
        ],
    )
    .await;
    assert_ne!(code, 0, "{err}");
    let ran = ok(&ns.name, &["run-task", "--task-definition", "web"]).await;
    let standalone = ran["tasks"][0]["taskArn"].as_str().unwrap();
    let refused = ok(
        &ns.name,
        &[
            "update-task-protection",
            "--tasks",
            standalone,
            "--protection-enabled",
        ],
    )
    .await;
    assert_eq!(refused["protectedTasks"], json!([]));
    assert_eq!(refused["failures"][0]["reason"], "TASK_NOT_VALID");

    let deployment = services
        .get("web")
        .await
        .unwrap()
        .status
        .unwrap()
        .deployments[0]
        .id
        .clone();
    let n = deployment.strip_prefix("ecs-svc/").unwrap();
    let arn = format!(
        "arn:aws:ecs:kubernetes:000000000000:service-deployment/{}/web/{n}",
        ns.name
    );
    let stopped = ok(
        &ns.name,
        &[
            "stop-service-deployment",
            "--service-deployment-arn",
            &arn,
            "--stop-type",
            "ROLLBACK",
        ],
    )
    .await;
    assert_eq!(stopped, json!({"serviceDeploymentArn": arn}));
    let annotations = services
        .get("web")
        .await
        .unwrap()
        .metadata
        .annotations
        .unwrap();
    assert_eq!(annotations["ecs.operator.dev/stop-deployment"], deployment);
    assert_eq!(
        annotations["ecs.operator.dev/stop-deployment-type"],
        "ROLLBACK"
    );

    // ContinueServiceDeployment: the paused hook's stage, answered on the Service.
    let hook_id = format!("{deployment}/POST_TEST_TRAFFIC_SHIFT/0");
    let continued = ok(
        &ns.name,
        &[
            "continue-service-deployment",
            "--service-deployment-arn",
            &arn,
            "--hook-id",
            &hook_id,
            "--action",
            "ROLLBACK",
        ],
    )
    .await;
    assert_eq!(continued, json!({"serviceDeploymentArn": arn}));
    let annotations = services
        .get("web")
        .await
        .unwrap()
        .metadata
        .annotations
        .unwrap();
    assert_eq!(
        annotations["ecs.operator.dev/lifecycle-hook-action"],
        format!("{deployment}/POST_TEST_TRAFFIC_SHIFT=ROLLBACK")
    );
    let (code, _, err) = kubectl_ecs(
        &ns.name,
        &[
            "continue-service-deployment",
            "--service-deployment-arn",
            &arn,
            "--hook-id",
            "ecs-svc/999/POST_TEST_TRAFFIC_SHIFT/0",
        ],
    )
    .await;
    assert_ne!(code, 0, "a hook of another deployment: {err}");
    assert!(err.contains("is not a hook of"), "{err}");
}
