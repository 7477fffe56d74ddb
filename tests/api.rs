//! The CRDs against the real API server: they install, accept valid ECS objects with schema defaults,
//! reject invalid ones at apply time with ECS-worded messages, and support `kubectl scale`.

mod support;

use std::path::Path;

use ecs_operator::api::task::{LastStatus, StopCode};
use ecs_operator::api::{Service, Task, TaskDefinition};
use kube::api::{Api, ApiResource, DynamicObject, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use support::{TestNamespace, client, install_crds, yaml_documents};

#[tokio::test]
async fn crds_install_and_become_established() {
    let client = client().await;
    // install_crds applies every CRD and fails unless each becomes Established.
    install_crds(&client).await;
    let discovery = kube::Discovery::new(client.clone())
        .filter(&["ecs.operator.dev"])
        .run()
        .await
        .unwrap();
    let mut kinds: Vec<String> = discovery
        .groups()
        .flat_map(|g| g.recommended_resources())
        .map(|(ar, caps)| {
            assert!(caps.subresources.iter().any(|(s, _)| s.plural == "status"));
            ar.kind
        })
        .collect();
    kinds.sort();
    assert_eq!(kinds, ["Service", "Task", "TaskDefinition"]);
}

fn td(name: &str, spec: Value) -> Value {
    json!({"apiVersion": "ecs.operator.dev/v1alpha1", "kind": "TaskDefinition", "metadata": {"name": name}, "spec": spec})
}

fn task(name: &str, spec: Value) -> Value {
    json!({"apiVersion": "ecs.operator.dev/v1alpha1", "kind": "Task", "metadata": {"name": name}, "spec": spec})
}

fn service(name: &str, spec: Value) -> Value {
    json!({"apiVersion": "ecs.operator.dev/v1alpha1", "kind": "Service", "metadata": {"name": name}, "spec": spec})
}

fn web() -> Value {
    json!({"name": "web", "image": "nginx:1.27"})
}

fn resource_of(obj: &Value) -> ApiResource {
    match obj["kind"].as_str().unwrap() {
        "TaskDefinition" => ApiResource::erase::<TaskDefinition>(&()),
        "Task" => ApiResource::erase::<Task>(&()),
        "Service" => ApiResource::erase::<Service>(&()),
        "HorizontalPodAutoscaler" => {
            ApiResource::erase::<k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler>(&())
        }
        other => panic!("unexpected kind {other}"),
    }
}

async fn create(
    client: &kube::Client,
    ns: &str,
    obj: &Value,
) -> Result<DynamicObject, kube::Error> {
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &resource_of(obj));
    let obj: DynamicObject = serde_json::from_value(obj.clone()).unwrap();
    api.create(&PostParams::default(), &obj).await
}

/// Each entry: what is wrong, the object, and a fragment the API server's message must contain.
fn invalid_objects() -> Vec<(&'static str, Value, &'static str)> {
    vec![
        (
            "no containers",
            td("t1", json!({"containerDefinitions": []})),
            "containerDefinitions needs at least one container",
        ),
        (
            "duplicate container names",
            td("t2", json!({"containerDefinitions": [web(), web()]})),
            "container names must be unique within a task definition",
        ),
        (
            "no essential container",
            td(
                "t3",
                json!({"containerDefinitions": [
            {"name": "a", "image": "busybox", "essential": false}]}),
            ),
            "at least one essential container is required",
        ),
        (
            "container name charset",
            td(
                "t4",
                json!({"containerDefinitions": [
            {"name": "my app", "image": "busybox"}]}),
            ),
            "container name may contain only letters, digits, hyphens and underscores",
        ),
        (
            "portMappings protocol http",
            td(
                "t5",
                json!({"containerDefinitions": [
            {"name": "web", "image": "nginx", "portMappings": [{"containerPort": 80, "protocol": "http"}]}]}),
            ),
            r#"Unsupported value: "http": supported values: "tcp", "udp""#,
        ),
        (
            "healthCheck interval below 5",
            td(
                "t6",
                json!({"containerDefinitions": [
            {"name": "web", "image": "nginx", "healthCheck": {"command": ["CMD", "true"], "interval": 3}}]}),
            ),
            "healthCheck.interval: Invalid value: 3: spec.containerDefinitions[0].healthCheck.interval in body should be greater than or equal to 5",
        ),
        (
            "healthCheck timeout above 60",
            td(
                "t7",
                json!({"containerDefinitions": [
            {"name": "web", "image": "nginx", "healthCheck": {"command": ["CMD", "true"], "timeout": 61}}]}),
            ),
            "healthCheck.timeout in body should be less than or equal to 60",
        ),
        (
            "healthCheck retries above 10",
            td(
                "t8",
                json!({"containerDefinitions": [
            {"name": "web", "image": "nginx", "healthCheck": {"command": ["CMD", "true"], "retries": 11}}]}),
            ),
            "healthCheck.retries in body should be less than or equal to 10",
        ),
        (
            "healthCheck startPeriod above 300",
            td(
                "t9",
                json!({"containerDefinitions": [
            {"name": "web", "image": "nginx", "healthCheck": {"command": ["CMD", "true"], "startPeriod": 301}}]}),
            ),
            "healthCheck.startPeriod in body should be less than or equal to 300",
        ),
        (
            "healthCheck CMD without a command",
            td(
                "t10",
                json!({"containerDefinitions": [
            {"name": "web", "image": "nginx", "healthCheck": {"command": ["CMD"]}}]}),
            ),
            "healthCheck command needs a command after CMD or CMD-SHELL",
        ),
        (
            "dependsOn an unknown container",
            td(
                "t11",
                json!({"containerDefinitions": [
            {"name": "web", "image": "nginx", "dependsOn": [{"containerName": "db", "condition": "START"}]}]}),
            ),
            "dependsOn containerName must name a container of this task definition",
        ),
        (
            "dependsOn with an unknown condition",
            td(
                "t12",
                json!({"containerDefinitions": [
            {"name": "init", "image": "busybox", "essential": false},
            {"name": "web", "image": "nginx", "dependsOn": [{"containerName": "init", "condition": "READY"}]}]}),
            ),
            r#"Unsupported value: "READY""#,
        ),
        (
            "SUCCESS dependency on an essential container",
            td(
                "t13",
                json!({"containerDefinitions": [
            {"name": "migrate", "image": "busybox"},
            {"name": "web", "image": "nginx", "dependsOn": [{"containerName": "migrate", "condition": "SUCCESS"}]}]}),
            ),
            "requires the dependency container to be non-essential",
        ),
        (
            "family differs from the name",
            td(
                "t14",
                json!({"family": "other", "containerDefinitions": [web()]}),
            ),
            "family must match metadata.name",
        ),
        (
            "family with a dot",
            td("web.v2", json!({"containerDefinitions": [web()]})),
            "the task definition family is metadata.name: it may contain only lowercase letters, digits and hyphens",
        ),
        (
            "memory not above memoryReservation",
            td(
                "t16",
                json!({"containerDefinitions": [
            {"name": "web", "image": "nginx", "memory": 256, "memoryReservation": 512}]}),
            ),
            "memory must be greater than memoryReservation when both are set",
        ),
        (
            "mountPoints of an unknown volume",
            td(
                "t17",
                json!({"containerDefinitions": [
            {"name": "web", "image": "nginx", "mountPoints": [{"sourceVolume": "data", "containerPath": "/data"}]}]}),
            ),
            "mountPoints sourceVolume must name a volume of this task definition",
        ),
        (
            "portMappings with networkMode none",
            td(
                "t18",
                json!({"networkMode": "none", "containerDefinitions": [
            {"name": "web", "image": "nginx", "portMappings": [{"containerPort": 80}]}]}),
            ),
            "portMappings are not supported when networkMode is none",
        ),
        (
            "awsvpc hostPort differs from containerPort",
            td(
                "t19",
                json!({"networkMode": "awsvpc", "containerDefinitions": [
            {"name": "web", "image": "nginx", "portMappings": [{"containerPort": 80, "hostPort": 8080}]}]}),
            ),
            "hostPort must be omitted or equal to containerPort",
        ),
        (
            "task definition placement distinctInstance",
            td(
                "t20",
                json!({"containerDefinitions": [web()],
            "placementConstraints": [{"type": "distinctInstance"}]}),
            ),
            "task definition placementConstraints support only type memberOf",
        ),
        (
            "task names a malformed task definition",
            task("k1", json!({"taskDefinition": "Web App:1"})),
            "taskDefinition must be 'family' or 'family:revision'",
        ),
        (
            "task with revision 0",
            task("k2", json!({"taskDefinition": "web:0"})),
            "taskDefinition must be 'family' or 'family:revision'",
        ),
        (
            "task with count 3",
            task("k3", json!({"taskDefinition": "web", "count": 3})),
            "count must be 1",
        ),
        (
            "task desiredStatus PAUSED",
            task(
                "k4",
                json!({"taskDefinition": "web", "desiredStatus": "PAUSED"}),
            ),
            r#"Unsupported value: "PAUSED""#,
        ),
        (
            "memberOf without expression",
            task(
                "k5",
                json!({"taskDefinition": "web",
            "placementConstraints": [{"type": "memberOf"}]}),
            ),
            "a memberOf placement constraint needs an expression",
        ),
        (
            "unknown placement strategy",
            task(
                "k6",
                json!({"taskDefinition": "web",
            "placementStrategy": [{"type": "pack", "field": "cpu"}]}),
            ),
            r#"Unsupported value: "pack""#,
        ),
        (
            "minimumHealthyPercent above maximumPercent",
            service(
                "s1",
                json!({"taskDefinition": "web", "desiredCount": 2,
            "deploymentConfiguration": {"minimumHealthyPercent": 100, "maximumPercent": 50}}),
            ),
            "minimumHealthyPercent must be less than or equal to maximumPercent",
        ),
        (
            "negative desiredCount",
            service("s2", json!({"taskDefinition": "web", "desiredCount": -1})),
            "desiredCount in body should be greater than or equal to 0",
        ),
        (
            "REPLICA without desiredCount",
            service("s3", json!({"taskDefinition": "web"})),
            "desiredCount is required for a REPLICA service",
        ),
        (
            "loadBalancer without containerPort",
            service(
                "s4",
                json!({"taskDefinition": "web", "desiredCount": 1,
            "loadBalancers": [{"containerName": "web"}]}),
            ),
            "containerPort: Required value",
        ),
        (
            "serviceName differs from the name",
            service(
                "s5",
                json!({"serviceName": "api", "taskDefinition": "web", "desiredCount": 1}),
            ),
            "serviceName must match metadata.name",
        ),
        (
            "unknown schedulingStrategy",
            service(
                "s6",
                json!({"taskDefinition": "web", "desiredCount": 1, "schedulingStrategy": "SINGLETON"}),
            ),
            r#"Unsupported value: "SINGLETON""#,
        ),
        (
            "DAEMON with a placement strategy",
            service(
                "s7",
                json!({"taskDefinition": "web", "schedulingStrategy": "DAEMON",
            "placementStrategy": [{"type": "spread", "field": "host"}]}),
            ),
            "placementStrategy is not supported for a DAEMON service",
        ),
        (
            "circuit breaker without rollback",
            service(
                "s8",
                json!({"taskDefinition": "web", "desiredCount": 1,
            "deploymentConfiguration": {"deploymentCircuitBreaker": {"enable": true}}}),
            ),
            "rollback: Required value",
        ),
        (
            "circuit breaker threshold percent above 100",
            service(
                "s9",
                json!({"taskDefinition": "web", "desiredCount": 1,
            "deploymentConfiguration": {"deploymentCircuitBreaker": {"enable": true, "rollback": true,
                "thresholdConfiguration": {"type": "UNBOUNDED_PERCENT", "value": 150}}}}),
            ),
            "thresholdConfiguration value is a percentage (1-100)",
        ),
        (
            "circuit breaker threshold count of 0",
            service(
                "s10",
                json!({"taskDefinition": "web", "desiredCount": 1,
            "deploymentConfiguration": {"deploymentCircuitBreaker": {"enable": true, "rollback": true,
                "thresholdConfiguration": {"type": "COUNT", "value": 0}}}}),
            ),
            "value in body should be greater than or equal to 1",
        ),
        (
            "unknown circuit breaker threshold type",
            service(
                "s11",
                json!({"taskDefinition": "web", "desiredCount": 1,
            "deploymentConfiguration": {"deploymentCircuitBreaker": {"enable": true, "rollback": true,
                "thresholdConfiguration": {"type": "PERCENT", "value": 10}}}}),
            ),
            r#"Unsupported value: "PERCENT""#,
        ),
        (
            "canary percent not a multiple of 0.1",
            service(
                "s12",
                json!({"taskDefinition": "web", "desiredCount": 1,
            "deploymentConfiguration": {"strategy": "CANARY", "canaryConfiguration": {"canaryPercent": 5.05}}}),
            ),
            "canaryPercent must be a multiple of 0.1",
        ),
        (
            "canary percent of 0",
            service(
                "s13",
                json!({"taskDefinition": "web", "desiredCount": 1,
            "deploymentConfiguration": {"strategy": "CANARY", "canaryConfiguration": {"canaryPercent": 0}}}),
            ),
            "must be greater than or equal to 0.1",
        ),
        (
            "linear step below 3 %",
            service(
                "s14",
                json!({"taskDefinition": "web", "desiredCount": 1,
            "deploymentConfiguration": {"strategy": "LINEAR", "linearConfiguration": {"stepPercent": 2.9}}}),
            ),
            "stepPercent in body should be greater than or equal to 3",
        ),
        (
            "step bake time above a day",
            service(
                "s15",
                json!({"taskDefinition": "web", "desiredCount": 1,
            "deploymentConfiguration": {"strategy": "LINEAR", "linearConfiguration": {"stepBakeTimeInMinutes": 1441}}}),
            ),
            "stepBakeTimeInMinutes in body should be less than or equal to 1440",
        ),
        (
            "bake time above a day",
            service(
                "s16",
                json!({"taskDefinition": "web", "desiredCount": 1,
            "deploymentConfiguration": {"strategy": "BLUE_GREEN", "bakeTimeInMinutes": 1441}}),
            ),
            "bakeTimeInMinutes in body should be less than or equal to 1440",
        ),
        (
            "canaryConfiguration without strategy CANARY",
            service(
                "s17",
                json!({"taskDefinition": "web", "desiredCount": 1,
            "deploymentConfiguration": {"strategy": "LINEAR", "canaryConfiguration": {"canaryPercent": 10}}}),
            ),
            "canaryConfiguration is only valid with strategy CANARY",
        ),
        (
            "linearConfiguration without strategy LINEAR",
            service(
                "s18",
                json!({"taskDefinition": "web", "desiredCount": 1,
            "deploymentConfiguration": {"linearConfiguration": {"stepPercent": 10}}}),
            ),
            "linearConfiguration is only valid with strategy LINEAR",
        ),
        (
            "blue/green load balancer without advancedConfiguration",
            service(
                "s19",
                json!({"taskDefinition": "web", "desiredCount": 1,
            "deploymentConfiguration": {"strategy": "BLUE_GREEN"},
            "loadBalancers": [{"containerName": "web", "containerPort": 80}]}),
            ),
            "each loadBalancers entry needs advancedConfiguration",
        ),
        (
            "advancedConfiguration without alternateTargetGroupArn",
            service(
                "s20",
                json!({"taskDefinition": "web", "desiredCount": 1,
            "deploymentConfiguration": {"strategy": "BLUE_GREEN"},
            "loadBalancers": [{"containerName": "web", "containerPort": 80, "advancedConfiguration": {}}]}),
            ),
            "alternateTargetGroupArn: Required value",
        ),
        (
            "blue/green with the CODE_DEPLOY controller",
            service(
                "s21",
                json!({"taskDefinition": "web", "desiredCount": 1,
            "deploymentConfiguration": {"strategy": "BLUE_GREEN"}, "deploymentController": {"type": "CODE_DEPLOY"}}),
            ),
            "need deploymentController ECS",
        ),
        (
            "canary on a DAEMON service",
            service(
                "s22",
                json!({"taskDefinition": "web", "schedulingStrategy": "DAEMON",
            "deploymentConfiguration": {"strategy": "CANARY"}}),
            ),
            "need schedulingStrategy REPLICA",
        ),
    ]
}

#[tokio::test]
async fn deployment_strategies_in_ecs_json_are_accepted() {
    let client = client().await;
    install_crds(&client).await;
    let ns = TestNamespace::new(&client, "strategies").await;
    let advanced = json!({"alternateTargetGroupArn": "arn:aws:elasticloadbalancing:us-east-1:123:targetgroup/web-green/1",
        "productionListenerRule": "arn:aws:elasticloadbalancing:us-east-1:123:listener-rule/app/lb/1/2/3",
        "testListenerRule": "arn:aws:elasticloadbalancing:us-east-1:123:listener-rule/app/lb/1/2/4",
        "roleArn": "arn:aws:iam::123:role/ecs-lb"});
    for (name, config) in [
        (
            "bg",
            json!({"strategy": "BLUE_GREEN", "bakeTimeInMinutes": 0}),
        ),
        // Whole numbers as ECS JSON often has them, tenths, and the bounds.
        (
            "canary-int",
            json!({"strategy": "CANARY", "canaryConfiguration": {"canaryPercent": 5, "canaryBakeTimeInMinutes": 1440}}),
        ),
        (
            "canary-tenths",
            json!({"strategy": "CANARY", "canaryConfiguration": {"canaryPercent": 0.3}}),
        ),
        (
            "linear",
            json!({"strategy": "LINEAR", "bakeTimeInMinutes": 1440,
            "linearConfiguration": {"stepPercent": 3.3, "stepBakeTimeInMinutes": 0}}),
        ),
        (
            "linear-all",
            json!({"strategy": "LINEAR", "linearConfiguration": {"stepPercent": 100.0}}),
        ),
        (
            "rolling",
            json!({"strategy": "ROLLING", "bakeTimeInMinutes": 5}),
        ),
    ] {
        create(
            &client,
            &ns.name,
            &service(
                name,
                json!({"taskDefinition": "web", "desiredCount": 1, "deploymentConfiguration": config,
                    "loadBalancers": [{"containerName": "web", "containerPort": 80, "advancedConfiguration": advanced}]}),
            ),
        )
        .await
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

#[tokio::test]
async fn invalid_objects_are_rejected_with_ecs_messages() {
    let client = client().await;
    install_crds(&client).await;
    let ns = TestNamespace::new(&client, "invalid").await;
    let table = invalid_objects();
    assert!(table.len() >= 15);
    let mut failures = Vec::new();
    for (what, obj, expected) in table {
        match create(&client, &ns.name, &obj).await {
            Ok(_) => failures.push(format!(
                "{what}: accepted, expected a rejection containing {expected:?}"
            )),
            Err(kube::Error::Api(status))
                if status.code == 422 && status.message.contains(expected) => {}
            Err(e) => failures.push(format!("{what}: expected {expected:?}, got {e}")),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[tokio::test]
async fn valid_objects_get_ecs_defaults_from_the_schema() {
    let client = client().await;
    install_crds(&client).await;
    let ns = TestNamespace::new(&client, "defaults").await;

    let created = create(
        &client,
        &ns.name,
        &td("web", json!({"containerDefinitions": [web()]})),
    )
    .await
    .expect("a minimal task definition is valid");
    assert_eq!(
        created.data["spec"]["containerDefinitions"][0]["essential"],
        json!(true)
    );
    // ECS accepts a health check command without CMD or CMD-SHELL (Docker ignores the check).
    for (name, command) in [
        ("ignored-none", json!(["NONE"])),
        ("ignored-plain", json!(["curl", "-f", "localhost"])),
    ] {
        create(
            &client,
            &ns.name,
            &td(
                name,
                json!({"containerDefinitions": [
                    {"name": "web", "image": "nginx", "healthCheck": {"command": command}}]}),
            ),
        )
        .await
        .unwrap_or_else(|e| panic!("{command} is accepted: {e:?}"));
    }

    let created = create(
        &client,
        &ns.name,
        &task("once", json!({"taskDefinition": "web:1"})),
    )
    .await
    .expect("a minimal task is valid");
    assert_eq!(created.data["spec"]["desiredStatus"], json!("RUNNING"));

    let created = create(
        &client,
        &ns.name,
        &service("web", json!({"taskDefinition": "web", "desiredCount": 3})),
    )
    .await
    .expect("a minimal service is valid");
    assert_eq!(created.data["spec"]["schedulingStrategy"], json!("REPLICA"));
    // Not defaulted by the schema: ECS decides it from the placement strategy (status shows it).
    assert_eq!(
        created.data["spec"]["availabilityZoneRebalancing"],
        json!(null)
    );
}

#[tokio::test]
async fn task_updates_follow_ecs_rules() {
    let client = client().await;
    install_crds(&client).await;
    let ns = TestNamespace::new(&client, "task-updates").await;
    let tasks: Api<Task> = ns.api();
    create(
        &client,
        &ns.name,
        &task("job", json!({"taskDefinition": "web:1"})),
    )
    .await
    .unwrap();
    let pp = PatchParams::default();

    let err = tasks
        .patch(
            "job",
            &pp,
            &Patch::Merge(json!({"spec": {"taskDefinition": "web:2"}})),
        )
        .await
        .expect_err("taskDefinition is immutable");
    assert!(
        err.to_string()
            .contains("taskDefinition of a task cannot change"),
        "{err}"
    );

    tasks
        .patch(
            "job",
            &pp,
            &Patch::Merge(json!({"spec": {"desiredStatus": "STOPPED", "reason": "done"}})),
        )
        .await
        .expect("a task can be stopped");
    let err = tasks
        .patch(
            "job",
            &pp,
            &Patch::Merge(json!({"spec": {"desiredStatus": "RUNNING"}})),
        )
        .await
        .expect_err("a stopped task cannot run again");
    assert!(
        err.to_string()
            .contains("a stopped task cannot be started again"),
        "{err}"
    );
}

#[tokio::test]
async fn status_words_outside_the_ecs_sets_are_refused() {
    let client = client().await;
    install_crds(&client).await;
    let ns = TestNamespace::new(&client, "status-words").await;
    create(
        &client,
        &ns.name,
        &task("job", json!({"taskDefinition": "web"})),
    )
    .await
    .unwrap();
    create(
        &client,
        &ns.name,
        &service("svc", json!({"taskDefinition": "web", "desiredCount": 1})),
    )
    .await
    .unwrap();
    let tasks: Api<Task> = ns.api();
    let services: Api<Service> = ns.api();
    let pp = PatchParams::default();

    // An ECS word is accepted, as the operator writes it.
    let written = tasks
        .patch_status(
            "job",
            &pp,
            &Patch::Merge(
                json!({"status": {"lastStatus": "RUNNING", "stopCode": "UserInitiated"}}),
            ),
        )
        .await
        .expect("ECS words are accepted");
    let st = written.status.unwrap();
    assert_eq!(st.last_status, Some(LastStatus::Running));
    assert_eq!(st.stop_code, Some(StopCode::UserInitiated));

    for (what, patch) in [
        ("lastStatus", json!({"status": {"lastStatus": "PAUSED"}})),
        ("stopCode", json!({"status": {"stopCode": "Preempted"}})),
        (
            "healthStatus",
            json!({"status": {"healthStatus": "healthy"}}),
        ),
    ] {
        let err = tasks
            .patch_status("job", &pp, &Patch::Merge(patch))
            .await
            .expect_err(what);
        let text = err.to_string();
        assert!(
            text.contains(what) && text.contains("Unsupported value"),
            "{what}: {text}"
        );
    }
    let err = services
        .patch_status(
            "svc",
            &pp,
            &Patch::Merge(json!({"status": {"rolloutState": "ROLLED_BACK"}})),
        )
        .await
        .expect_err("rolloutState");
    assert!(err.to_string().contains("rolloutState"), "{err}");
    // The refused writes left the stored status as it was.
    let st = tasks.get_status("job").await.unwrap().status.unwrap();
    assert_eq!(st.last_status, Some(LastStatus::Running));
}

#[tokio::test]
async fn every_example_applies() {
    let client = client().await;
    install_crds(&client).await;
    let ns = TestNamespace::new(&client, "examples").await;
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "examples/ has manifests");
    let mut applied = 0;
    for file in files {
        for doc in yaml_documents(&std::fs::read_to_string(&file).unwrap()) {
            let name = doc["metadata"]["name"].as_str().unwrap().to_string();
            let api: Api<DynamicObject> =
                Api::namespaced_with(client.clone(), &ns.name, &resource_of(&doc));
            api.patch(
                &name,
                &PatchParams::apply("ecs-operator-tests"),
                &Patch::Apply(&doc),
            )
            .await
            .unwrap_or_else(|e| panic!("{} ({name}) does not apply: {e}", file.display()));
            applied += 1;
        }
    }
    assert!(applied >= 4);
    // The README's canary with a pause hook keeps its hook through the schema.
    let services: Api<Service> = Api::namespaced(client.clone(), &ns.name);
    let cart = services.get("cart").await.unwrap();
    let hooks = cart
        .spec
        .deployment_configuration
        .and_then(|c| c.lifecycle_hooks)
        .unwrap_or_default();
    assert!(hooks.first().is_some_and(|h| h.is_pause()), "{hooks:?}");
}

#[tokio::test]
async fn kubectl_scale_changes_desired_count() {
    let client = client().await;
    install_crds(&client).await;
    let ns = TestNamespace::new(&client, "scale").await;
    create(
        &client,
        &ns.name,
        &service("web", json!({"taskDefinition": "web", "desiredCount": 2})),
    )
    .await
    .unwrap();
    let out = std::process::Command::new("kubectl")
        .args(["scale", "ecssvc/web", "--replicas=5", "-n", &ns.name])
        .output()
        .expect("kubectl on PATH (cargo xtask cluster up prints the PATH line)");
    assert!(
        out.status.success(),
        "kubectl scale: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let services: Api<Service> = ns.api();
    assert_eq!(
        services.get("web").await.unwrap().spec.desired_count,
        Some(5)
    );
    // The scale subresource reads back what HPA reads.
    let scale = services.get_scale("web").await.unwrap();
    assert_eq!(scale.spec.and_then(|s| s.replicas), Some(5));
}

/// What `ecs-operator import` prints is accepted by the API server as it is (schema and CEL rules):
/// every task definition fixture, the service and RunTask fixtures, through kubectl's server-side
/// dry run.
#[tokio::test]
async fn imported_manifests_pass_a_server_side_dry_run() {
    let client = client().await;
    install_crds(&client).await;
    let ns = TestNamespace::new(&client, "import-dry-run").await;
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/ecs");
    let mut runs: Vec<(&str, std::path::PathBuf, Vec<&str>)> = Vec::new();
    for entry in std::fs::read_dir(&fixtures).unwrap().flatten() {
        if entry.path().extension().is_some_and(|e| e == "json") {
            runs.push(("task-definition", entry.path(), vec![]));
        }
    }
    runs.push((
        "task-definition",
        fixtures.join("lenient/cloudformation-string-numbers.json"),
        vec![],
    ));
    runs.push((
        "service",
        fixtures.join("services/describe-services-output.json"),
        vec![],
    ));
    runs.push((
        "service",
        fixtures.join("services/ecspresso-service-def.json"),
        vec!["--name", "web", "--task-definition", "web"],
    ));
    runs.push((
        "task",
        fixtures.join("services/run-task-input.json"),
        vec![],
    ));
    assert!(runs.len() >= 12, "{} fixtures", runs.len());
    for (what, file, extra) in &runs {
        let file = file.to_string_lossy();
        let mut args = vec!["import", what, &file, "--namespace", &ns.name];
        args.extend(extra);
        let imported = std::process::Command::new(env!("CARGO_BIN_EXE_ecs-operator"))
            .args(&args)
            .output()
            .unwrap();
        assert!(
            imported.status.success(),
            "{file}: {}",
            String::from_utf8_lossy(&imported.stderr)
        );
        let mut kubectl = std::process::Command::new("kubectl")
            .args(["create", "--dry-run=server", "-o", "name", "-f", "-"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("kubectl on PATH (cargo xtask cluster up prints the PATH line)");
        use std::io::Write;
        kubectl
            .stdin
            .take()
            .unwrap()
            .write_all(&imported.stdout)
            .unwrap();
        let out = kubectl.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{file}: the API server refuses the manifest: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&imported.stdout)
        );
    }
}

/// The importer runs the CRDs' own rules: every spec the API server refuses above is refused by
/// `import` too, before anything is applied, and where a CEL rule refuses it, with that rule's
/// message. (No cluster: the API server's verdicts are the test above.)
#[test]
fn the_importer_refuses_every_spec_the_api_server_refuses() {
    use ecs_operator::import::{self, Options, service::RefOptions};
    use kube::CustomResourceExt;
    // What the importer converts on purpose instead of refusing: the family or serviceName becomes
    // metadata.name (with a note), and RunTask's `count` becomes that many Tasks.
    let converted = [
        "family differs from the name",
        "family with a dot",
        "serviceName differs from the name",
        "task with count 3",
    ];
    // A task definition reference (an ARN, `family:N`) is converted first, and refused there with
    // a message that says which part is wrong.
    let refused_converting = [
        "task names a malformed task definition",
        "task with revision 0",
    ];
    let mut rule_messages = Vec::new();
    for crd in [TaskDefinition::crd(), Service::crd(), Task::crd()] {
        collect_rule_messages(&serde_json::to_value(crd).unwrap(), &mut rule_messages);
    }
    let options = RefOptions {
        options: Options {
            name: Some("imported".into()),
            ..Options::default()
        },
        task_definition: None,
    };
    let (mut checked, mut by_rule) = (0, 0);
    let mut failures = Vec::new();
    for (what, obj, expected) in invalid_objects() {
        if converted.contains(&what) {
            continue;
        }
        let spec = obj["spec"].to_string();
        let result = match obj["kind"].as_str() {
            Some("TaskDefinition") => import::task_definition(&spec, &options.options).map(|_| ()),
            Some("Service") => import::service::services(&spec, &options).map(|_| ()),
            Some("Task") => import::service::tasks(&spec, &options).map(|_| ()),
            _ => continue,
        };
        checked += 1;
        let from_rule = rule_messages.iter().any(|m| m.contains(expected));
        match result {
            Ok(()) => failures.push(format!("{what}: imported, the API server refuses it")),
            Err(e)
                if from_rule
                    && !refused_converting.contains(&what)
                    && !e.to_string().contains(expected) =>
            {
                failures.push(format!("{what}: expected {expected:?}, got {e}"))
            }
            Err(_) => by_rule += usize::from(from_rule),
        }
    }
    assert!(
        checked >= 30 && by_rule >= 15,
        "only {checked} specs, {by_rule} by rule"
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

fn collect_rule_messages(schema: &Value, out: &mut Vec<String>) {
    match schema {
        Value::Object(fields) => {
            for (key, value) in fields {
                if key == "x-kubernetes-validations" {
                    out.extend(
                        value
                            .as_array()
                            .into_iter()
                            .flatten()
                            .filter_map(|r| r["message"].as_str().map(String::from)),
                    );
                } else {
                    collect_rule_messages(value, out);
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|i| collect_rule_messages(i, out)),
        _ => {}
    }
}
