use serde_json::json;

use super::*;

/// The cells of the first line whose first cell is `first`.
fn row<'a>(out: &'a str, first: &str) -> Vec<&'a str> {
    out.lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|cells| cells.first() == Some(&first))
        .unwrap_or_else(|| panic!("no row {first}: {out}"))
}

fn rolling_service() -> Value {
    let events: Vec<Value> = (0..12)
        .rev()
        .map(|i| {
            json!({
                "id": format!("e{i}"),
                "createdAt": format!("2026-01-01T00:00:{i:02}Z"),
                "message": format!("(service web) event {i}."),
            })
        })
        .collect();
    json!({
        "serviceName": "web",
        "status": "ACTIVE",
        "taskDefinition": "arn:aws:ecs:kubernetes:000000000000:task-definition/web:4",
        "desiredCount": 4,
        "runningCount": 5,
        "pendingCount": 1,
        "deploymentConfiguration": {"minimumHealthyPercent": 100, "maximumPercent": 200},
        "deployments": [
            {"id": "ecs-svc/5", "status": "PRIMARY",
             "taskDefinition": "arn:aws:ecs:kubernetes:000000000000:task-definition/web:4",
             "desiredCount": 4, "runningCount": 1, "pendingCount": 1, "failedTasks": 2,
             "rolloutState": "IN_PROGRESS", "rolloutStateReason": "ECS deployment ecs-svc/5 in progress."},
            {"id": "ecs-svc/4", "status": "ACTIVE",
             "taskDefinition": "arn:aws:ecs:kubernetes:000000000000:task-definition/web:3",
             "desiredCount": 4, "runningCount": 4, "pendingCount": 0, "failedTasks": 0,
             "rolloutState": "COMPLETED"},
        ],
        "events": events,
    })
}

#[test]
fn a_service_shows_counts_deployments_with_progress_and_the_latest_events() {
    let out = service(&rolling_service());
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "Service web  ACTIVE");
    assert!(out.contains("Task definition  web:4"), "{out}");
    assert!(out.contains("4 desired, 5 running, 1 pending"), "{out}");
    assert!(out.contains("REPLICA, rolling 100%–200%"), "{out}");
    assert_eq!(
        row(&out, "ecs-svc/5"),
        [
            "ecs-svc/5",
            "PRIMARY",
            "web:4",
            "1",
            "4",
            "1",
            "2",
            "IN_PROGRESS",
            "[##........]"
        ]
    );
    assert!(
        out.contains("[##########]"),
        "the old deployment is full: {out}"
    );
    assert!(out.contains("ecs-svc/5: ECS deployment ecs-svc/5 in progress."));
    // Newest first, and only the first ten.
    assert!(out.contains("Events (latest 10 of 12)"), "{out}");
    let first_event = out.find("event 11.").unwrap();
    assert!(first_event < out.find("event 10.").unwrap());
    assert!(out.contains("event 2."));
    assert!(!out.contains("event 1."), "{out}");
}

#[test]
fn columns_line_up_whatever_the_cell_widths() {
    let out = service(&rolling_service());
    let header = out.lines().find(|l| l.contains("STATUS")).unwrap();
    let column = header.find("STATUS").unwrap();
    for line in out
        .lines()
        .filter(|l| l.contains("ecs-svc/") && l.contains('['))
    {
        let status = line
            .find("PRIMARY")
            .or_else(|| line.find("ACTIVE"))
            .unwrap();
        assert_eq!(status, column, "{out}");
    }
}

#[test]
fn a_service_without_status_yet_prints_dashes_not_nulls() {
    let out = service(&json!({"serviceName": "new", "desiredCount": 2}));
    assert!(!out.contains("null"), "{out}");
    assert!(out.contains("Service new  -"), "{out}");
    assert!(out.contains("2 desired, 0 running, 0 pending"), "{out}");
    assert!(out.contains("Events (latest 0 of 0)"), "{out}");
}

#[test]
fn tasks_show_stop_codes_reasons_and_container_exit_codes() {
    let out = tasks(&[json!({
        "taskArn": "arn:aws:ecs:kubernetes:000000000000:task/shop/web-7",
        "taskDefinitionArn": "arn:aws:ecs:kubernetes:000000000000:task-definition/web:3",
        "lastStatus": "STOPPED", "desiredStatus": "STOPPED", "healthStatus": "UNKNOWN",
        "availabilityZone": "zone-a", "stopCode": "EssentialContainerExited",
        "stoppedReason": "Essential container in task exited",
        "containers": [{"name": "app", "image": "nginx:1.27", "lastStatus": "STOPPED", "exitCode": 3}],
    })]);
    assert_eq!(
        row(&out, "web-7"),
        [
            "web-7",
            "web:3",
            "STOPPED",
            "STOPPED",
            "UNKNOWN",
            "zone-a",
            "EssentialContainerExited"
        ]
    );
    assert!(out.contains("stopped: Essential container in task exited"));
    let app = row(&out, "app");
    assert_eq!(app, ["app", "nginx:1.27", "STOPPED", "-", "3", "-"]);
}

#[test]
fn a_task_definition_lists_its_containers_essential_by_default() {
    let out = task_definition(&json!({"taskDefinition": {
        "family": "web", "revision": 3, "status": "ACTIVE", "cpu": "256", "memory": "512",
        "containerDefinitions": [
            {"name": "app", "image": "nginx", "portMappings": [{"containerPort": 80}]},
            {"name": "log", "image": "fluent-bit", "essential": false},
        ],
    }}));
    assert!(out.starts_with("Task definition web:3  ACTIVE\n"), "{out}");
    let app = row(&out, "app");
    assert_eq!(app, ["app", "nginx", "true", "80/tcp"]);
    let log = row(&out, "log");
    assert_eq!(log, ["log", "fluent-bit", "false", "-"]);
}

#[test]
fn bars_stay_in_bounds() {
    assert_eq!(bar(0, 4, 4), "[....]");
    assert_eq!(bar(9, 4, 4), "[####]");
    assert_eq!(bar(-1, 4, 4), "[....]");
    assert_eq!(bar(0, 0, 4), "[####]");
}

#[test]
fn failures_print_one_line_each() {
    let out = failures(&json!([{"arn": "arn:x/service/shop/gone", "reason": "MISSING"}]));
    assert_eq!(out, "arn:x/service/shop/gone: MISSING\n");
    assert_eq!(failures(&json!([])), "");
}
