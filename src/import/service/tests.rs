use serde_json::{Value, json};

use super::*;

fn one(input: Value, options: &RefOptions) -> Imported<Service> {
    let mut all = services(&input.to_string(), options).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(all.len(), 1);
    all.remove(0)
}

fn errors(input: Value, options: &RefOptions) -> Vec<String> {
    let e = services(&input.to_string(), options).expect_err("should fail");
    e.errors.iter().map(ToString::to_string).collect()
}

/// The CreateService input of the AWS CLI documentation's example with every field ECS has.
fn create_service() -> Value {
    json!({
        "cluster": "MyCluster",
        "serviceName": "ecs-simple-service-elb",
        "taskDefinition": "ecs-demo:3",
        "loadBalancers": [{
            "targetGroupArn": "arn:aws:elasticloadbalancing:us-west-2:123456789012:targetgroup/MyTargets/1234567890123456",
            "containerName": "simple-app",
            "containerPort": 80
        }],
        "desiredCount": 10,
        "launchType": "FARGATE",
        "platformVersion": "LATEST",
        "role": "ecsServiceRole",
        "deploymentConfiguration": {
            "maximumPercent": 200,
            "minimumHealthyPercent": 100,
            "deploymentCircuitBreaker": {"enable": true, "rollback": true}
        },
        "networkConfiguration": {"awsvpcConfiguration": {
            "subnets": ["subnet-12344321"], "securityGroups": ["sg-12344321"], "assignPublicIp": "ENABLED"
        }},
        "healthCheckGracePeriodSeconds": 60,
        "schedulingStrategy": "REPLICA",
        "deploymentController": {"type": "ECS"},
        "placementStrategy": [{"type": "spread", "field": "attribute:ecs.availability-zone"}],
        "tags": [{"key": "team", "value": "web"}],
        "enableECSManagedTags": true,
        "propagateTags": "SERVICE",
        "enableExecuteCommand": false,
        "availabilityZoneRebalancing": "ENABLED",
        "clientToken": "abc"
    })
}

#[test]
fn create_service_input_imports_with_every_field_kept() {
    let imported = one(create_service(), &RefOptions::default());
    let m = &imported.manifest;
    assert_eq!(m.metadata.name.as_deref(), Some("ecs-simple-service-elb"));
    // Revision 3 on ECS is not revision 3 here: the service follows the family.
    assert_eq!(m.spec.task_definition, "ecs-demo");
    assert_eq!(m.spec.desired_count, Some(10));
    assert_eq!(m.spec.enable_ecs_managed_tags, Some(true));
    assert_eq!(m.spec.cluster.as_deref(), Some("MyCluster"));
    // Written as ECS spells it, so the manifest reads like the input.
    assert!(
        imported.yaml.contains("  enableECSManagedTags: true\n"),
        "{}",
        imported.yaml
    );
    assert_eq!(
        imported.notes,
        [
            "taskDefinition \"ecs-demo:3\" becomes \"ecs-demo\" (its latest revision): revision numbers are not carried over (an imported task definition registers as revision 1); pass --task-definition ecs-demo:N to pin a revision registered here"
        ]
    );
}

#[test]
fn describe_services_output_gives_one_manifest_per_service() {
    let mut described = create_service();
    let obj = described.as_object_mut().unwrap();
    obj.remove("role");
    obj.remove("cluster");
    obj.remove("clientToken");
    obj.insert(
        "serviceArn".into(),
        json!("arn:aws:ecs:us-west-2:123456789012:service/MyCluster/ecs-simple-service-elb"),
    );
    obj.insert(
        "clusterArn".into(),
        json!("arn:aws:ecs:us-west-2:123456789012:cluster/MyCluster"),
    );
    obj.insert(
        "roleArn".into(),
        json!("arn:aws:iam::123456789012:role/ecsServiceRole"),
    );
    obj.insert(
        "taskDefinition".into(),
        json!("arn:aws:ecs:us-west-2:123456789012:task-definition/Ecs_Demo:3"),
    );
    obj.insert("status".into(), json!("ACTIVE"));
    obj.insert("runningCount".into(), json!(10));
    obj.insert("pendingCount".into(), json!(0));
    obj.insert(
        "deployments".into(),
        json!([{"id": "ecs-svc/1", "status": "PRIMARY"}]),
    );
    obj.insert(
        "events".into(),
        json!([{"id": "e", "message": "(service x) has reached a steady state."}]),
    );
    obj.insert("createdAt".into(), json!("2025-01-01T00:00:00Z"));
    let mut second = described.clone();
    second["serviceName"] = json!("Worker_Queue");
    second["loadBalancers"] = json!([]);
    let all = services(
        &json!({"services": [described, second], "failures": []}).to_string(),
        &RefOptions::default(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(all.len(), 2);
    let first = &all[0];
    assert_eq!(first.manifest.spec.task_definition, "ecs-demo");
    assert_eq!(
        first.manifest.spec.role.as_deref(),
        Some("arn:aws:iam::123456789012:role/ecsServiceRole")
    );
    assert!(first.notes.iter().any(|n| n.starts_with("dropped read-only fields (they describe the running service): status, runningCount, pendingCount, deployments, events, createdAt")
        || n.contains("serviceArn")), "{:?}", first.notes);
    assert!(
        first.notes.iter().any(|n| n.starts_with("taskDefinition \"arn:aws:ecs:us-west-2:123456789012:task-definition/Ecs_Demo:3\" becomes \"ecs-demo\" (its latest revision)")),
        "{:?}",
        first.notes
    );
    assert_eq!(
        all[1].manifest.metadata.name.as_deref(),
        Some("worker-queue")
    );
    assert_eq!(all[1].manifest.spec.service_name, None);
    assert!(all[1].notes.iter().any(|n| {
        n.contains("serviceName \"Worker_Queue\" becomes metadata.name \"worker-queue\"")
    }));
}

#[test]
fn a_deploy_tools_service_definition_takes_name_and_task_definition_from_options() {
    let mut def = create_service();
    let obj = def.as_object_mut().unwrap();
    obj.remove("serviceName");
    obj.remove("taskDefinition");
    obj.remove("cluster");
    let errs = errors(def.clone(), &RefOptions::default());
    assert_eq!(
        errs,
        [
            "taskDefinition: missing: add it to the input or pass --task-definition",
            "serviceName: missing: serviceName gives metadata.name; add it or pass --name"
        ]
    );
    let options = RefOptions {
        options: Options {
            name: Some("web".into()),
            namespace: Some("shop".into()),
            ..Default::default()
        },
        task_definition: Some("Web_App".into()),
    };
    let imported = one(def, &options);
    assert_eq!(imported.manifest.metadata.name.as_deref(), Some("web"));
    assert_eq!(
        imported.manifest.metadata.namespace.as_deref(),
        Some("shop")
    );
    assert_eq!(imported.manifest.spec.task_definition, "web-app");

    // A revision given on the command line is one of this cluster's: kept.
    let pinned = RefOptions {
        task_definition: Some("Web_App:7".into()),
        ..options
    };
    let imported = one(
        {
            let mut def = create_service();
            def.as_object_mut().unwrap().remove("taskDefinition");
            def
        },
        &pinned,
    );
    assert_eq!(imported.manifest.spec.task_definition, "web-app:7");
}

#[test]
fn unknown_fields_bounds_and_rules_are_reported_before_apply() {
    let mut bad = create_service();
    bad["desiredCounts"] = json!(3);
    bad["healthCheckGracePeriodSeconds"] = json!(-1);
    let errs = errors(bad, &RefOptions::default());
    assert!(
        errs.iter()
            .any(|e| e.starts_with("desiredCounts: unknown field")),
        "{errs:?}"
    );
    assert!(
        errs.iter().any(|e| e
            .starts_with("healthCheckGracePeriodSeconds: -1 must be greater than or equal to 0")),
        "{errs:?}"
    );
    let mut no_count = create_service();
    no_count.as_object_mut().unwrap().remove("desiredCount");
    assert_eq!(
        errors(no_count, &RefOptions::default()),
        ["desiredCount: desiredCount is required for a REPLICA service"]
    );
    let mut wrapped = json!({"services": [create_service()]});
    wrapped["services"][0]["taskDefinition"] = json!("web:0");
    assert_eq!(
        errors(wrapped, &RefOptions::default()),
        ["services[0].taskDefinition: \"web:0\": \"0\" is not a revision number"]
    );
}

#[test]
fn task_definition_references_map_like_task_definition_names() {
    for (given, want) in [
        ("web", ("web", "web")),
        ("web:12", ("web", "web:12")),
        ("My_App:3", ("my-app", "my-app:3")),
        (
            "arn:aws:ecs:eu-west-1:123456789012:task-definition/My_App:7",
            ("my-app", "my-app:7"),
        ),
    ] {
        let (family, reference) = task_definition_ref(given).unwrap();
        assert_eq!((family.as_str(), reference.as_str()), want, "{given}");
    }
    for bad in [
        "arn:aws:ecs:eu-west-1:1:service/x",
        "web:01",
        "web:x",
        "we b",
        "",
    ] {
        assert!(task_definition_ref(bad).is_err(), "{bad}");
    }
}

#[test]
fn run_task_count_becomes_that_many_tasks() {
    let input = json!({
        "cluster": "default",
        "taskDefinition": "arn:aws:ecs:us-east-1:123456789012:task-definition/Nightly_Report:4",
        "count": 3,
        "startedBy": "cron",
        "launchType": "EC2",
        "overrides": {"containerOverrides": [{"name": "report", "environment": [{"name": "DAY", "value": "no"}]}]},
        "enableECSManagedTags": false
    });
    let all = tasks(&input.to_string(), &RefOptions::default()).unwrap_or_else(|e| panic!("{e}"));
    let names: Vec<_> = all
        .iter()
        .map(|t| t.manifest.metadata.name.clone().unwrap())
        .collect();
    assert_eq!(
        names,
        ["nightly-report-1", "nightly-report-2", "nightly-report-3"]
    );
    for t in &all {
        assert_eq!(t.manifest.spec.task_definition, "nightly-report");
        assert_eq!(t.manifest.spec.count, None);
        assert_eq!(t.manifest.spec.started_by.as_deref(), Some("cron"));
        assert!(t.yaml.contains("value: \"no\""), "{}", t.yaml);
    }
    assert!(
        all[0]
            .notes
            .iter()
            .any(|n| n == "count 3 becomes 3 Tasks (one Task is one task)")
    );

    let one = tasks(
        &json!({"taskDefinition": "web"}).to_string(),
        &RefOptions::default(),
    )
    .unwrap();
    assert_eq!(one.len(), 1);
    assert_eq!(one[0].manifest.metadata.name.as_deref(), Some("web"));

    let e = tasks(
        &json!({"taskDefinition": "web", "count": 11}).to_string(),
        &RefOptions::default(),
    )
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "count: 11 is not a task count (1 to 10, as in RunTask)"
    );
}
