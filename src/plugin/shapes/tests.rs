use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use serde_json::json;

use super::*;
use crate::api::service::{Deployment, DeploymentStatus, ServiceEvent, ServiceStatus};
use crate::api::task::{
    ContainerLastStatus, ContainerStatus, DesiredStatus, LastStatus, StopCode, TaskStatus,
};
use crate::api::task_definition::TaskDefinitionState;

fn at(s: &str) -> Option<Time> {
    Some(Time(s.parse().unwrap()))
}

fn web_task() -> Task {
    let mut t: Task = serde_json::from_value(json!({
        "apiVersion": "ecs.operator.dev/v1alpha1", "kind": "Task",
        "metadata": {"name": "web-7", "namespace": "shop"},
        "spec": {"taskDefinition": "web", "startedBy": "ecs-svc/2", "group": "service:web"}
    }))
    .unwrap();
    t.status = Some(TaskStatus {
        task_definition: Some("web:3".into()),
        last_status: Some(LastStatus::Stopped),
        desired_status: Some(DesiredStatus::Stopped),
        stop_code: Some(StopCode::EssentialContainerExited),
        stopped_reason: Some("Essential container in task exited".into()),
        availability_zone: Some("zone-a".into()),
        started_at: at("2026-01-01T00:00:05Z"),
        stopped_at: at("2026-01-01T00:01:00Z"),
        containers: vec![ContainerStatus {
            name: "app".into(),
            image: Some("nginx:1.27".into()),
            last_status: Some(ContainerLastStatus::Stopped),
            exit_code: Some(3),
            ..Default::default()
        }],
        ..Default::default()
    });
    t
}

#[test]
fn a_task_reads_like_describe_tasks_output() {
    let d = task(&web_task());
    assert_eq!(
        d["taskArn"],
        "arn:aws:ecs:kubernetes:000000000000:task/shop/web-7"
    );
    assert_eq!(
        d["clusterArn"],
        "arn:aws:ecs:kubernetes:000000000000:cluster/shop"
    );
    assert_eq!(
        d["taskDefinitionArn"],
        "arn:aws:ecs:kubernetes:000000000000:task-definition/web:3"
    );
    assert_eq!(d["lastStatus"], "STOPPED");
    assert_eq!(d["stopCode"], "EssentialContainerExited");
    assert_eq!(d["containers"][0]["exitCode"], 3);
    assert_eq!(d["containers"][0]["taskArn"], d["taskArn"]);
    assert_eq!(d["startedAt"], "2026-01-01T00:00:05Z");
    assert_eq!(d["startedBy"], "ecs-svc/2");
    // Absent fields are left out, as the AWS CLI does.
    assert!(d.get("stoppingAt").is_none());
    assert!(d.get("healthStatus").is_some());
    assert!(d["containers"][0].get("networkBindings").is_none());
}

#[test]
fn a_service_lists_live_deployments_and_events_newest_first() {
    let mut s: Service = serde_json::from_value(json!({
        "apiVersion": "ecs.operator.dev/v1alpha1", "kind": "Service",
        "metadata": {"name": "web", "namespace": "shop", "generation": 4},
        "spec": {"taskDefinition": "web", "desiredCount": 3}
    }))
    .unwrap();
    let deployment = |id: &str, status: &str, td: &str| Deployment {
        id: id.into(),
        status: DeploymentStatus::parse(status).unwrap(),
        task_definition: td.into(),
        ..Default::default()
    };
    s.status = Some(ServiceStatus {
        observed_generation: Some(4),
        running_count: 3,
        desired_count: Some(3),
        task_definition: Some("web:3".into()),
        deployments: vec![
            deployment("ecs-svc/3", "PRIMARY", "web:3"),
            deployment("ecs-svc/1", "INACTIVE", "web:1"),
        ],
        events: vec![
            ServiceEvent {
                id: "1".into(),
                created_at: at("2026-01-01T00:00:00Z"),
                message: "old".into(),
            },
            ServiceEvent {
                id: "2".into(),
                created_at: at("2026-01-01T00:05:00Z"),
                message: "new".into(),
            },
        ],
        ..Default::default()
    });
    let d = service(&s);
    assert_eq!(
        d["serviceArn"],
        "arn:aws:ecs:kubernetes:000000000000:service/shop/web"
    );
    assert_eq!(d["serviceName"], "web");
    assert_eq!(d["status"], "ACTIVE");
    assert_eq!(d["deployments"].as_array().unwrap().len(), 1);
    assert_eq!(
        d["deployments"][0]["taskDefinition"],
        "arn:aws:ecs:kubernetes:000000000000:task-definition/web:3"
    );
    assert_eq!(d["events"][0]["message"], "new");
    assert!(is_stable(&d, true));
    assert!(
        !is_stable(&d, false),
        "a status of an older generation is not stable"
    );
    assert_eq!(
        progress(&d),
        "web: 3/3 running, 0 pending; ecs-svc/3 PRIMARY "
    );

    let mut rolling = s.clone();
    let st = rolling.status.as_mut().unwrap();
    st.deployments
        .push(deployment("ecs-svc/4", "ACTIVE", "web:4"));
    assert!(!is_stable(&service(&rolling), true));
    let mut short = s.clone();
    short.status.as_mut().unwrap().running_count = 2;
    assert!(!is_stable(&service(&short), true));
}

#[test]
fn names_arns_and_task_definition_references_are_read_back() {
    assert_eq!(name_of(&task_arn("shop", "web-7")), "web-7");
    assert_eq!(name_of(&service_arn("shop", "web")), "web");
    assert_eq!(name_of(&cluster_arn("shop")), "shop");
    assert_eq!(name_of("web"), "web");
    assert_eq!(task_definition_of(&task_definition_arn("web:3")), "web:3");
    assert_eq!(
        task_definition_of("arn:aws:ecs:eu-west-1:1:task-definition/web:3"),
        "web:3"
    );
    assert_eq!(task_definition_of("web"), "web");
}

#[test]
fn a_task_definition_reads_like_describe_task_definition_output() {
    let spec: TaskDefinitionSpec = serde_json::from_value(json!({
        "containerDefinitions": [{"name": "app", "image": "nginx"}],
        "cpu": "256",
        "tags": [{"key": "team", "value": "web"}]
    }))
    .unwrap();
    let status = TaskDefinitionStatus {
        revisions: vec![crate::api::task_definition::RevisionStatus {
            revision: 2,
            status: TaskDefinitionState::Inactive,
            registered_at: at("2026-01-01T00:00:00Z"),
            deregistered_at: at("2026-01-02T00:00:00Z"),
        }],
        ..Default::default()
    };
    let d = task_definition("web", 2, &spec, &status);
    assert_eq!(d["taskDefinition"]["family"], "web");
    assert_eq!(d["taskDefinition"]["revision"], 2);
    assert_eq!(d["taskDefinition"]["status"], "INACTIVE");
    assert_eq!(
        d["taskDefinition"]["deregisteredAt"],
        "2026-01-02T00:00:00Z"
    );
    assert_eq!(
        d["taskDefinition"]["containerDefinitions"][0]["image"],
        "nginx"
    );
    assert_eq!(d["tags"], json!([{"key": "team", "value": "web"}]));
    assert!(d["taskDefinition"].get("tags").is_none());
}

#[test]
fn service_deployment_arns_round_trip() {
    let arn = service_deployment_arn("shop", "web", "ecs-svc/3");
    assert_eq!(
        arn,
        "arn:aws:ecs:kubernetes:000000000000:service-deployment/shop/web/3"
    );
    assert_eq!(
        service_deployment_of(&arn),
        Some(("web", "ecs-svc/3".into()))
    );
    assert_eq!(
        service_deployment_of(&format!("{PREFIX}:service-deployment/shop/web/ecs-svc/3")),
        Some(("web", "ecs-svc/3".into()))
    );
    assert_eq!(service_deployment_of("ecs-svc/3"), None);
    assert_eq!(
        service_deployment_of(&format!("{PREFIX}:service-deployment/shop/web/x")),
        None
    );
}

#[test]
fn protected_task_has_the_ecs_shape() {
    let mut t = web_task();
    let now: k8s_openapi::jiff::Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
    assert_eq!(
        protected_task(&t, now),
        json!({"taskArn": "arn:aws:ecs:kubernetes:000000000000:task/shop/web-7", "protectionEnabled": false})
    );
    t.annotations_mut().insert(
        crate::labels::SCALE_IN_PROTECTION.into(),
        "2026-01-01T02:00:00Z".into(),
    );
    assert_eq!(
        protected_task(&t, now),
        json!({
            "taskArn": "arn:aws:ecs:kubernetes:000000000000:task/shop/web-7",
            "protectionEnabled": true,
            "expirationDate": "2026-01-01T02:00:00Z",
        })
    );
}
