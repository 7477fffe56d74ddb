//! `--output table`: the describe shapes drawn for people, as the ECS console shows a service — its
//! counts, its deployments with their progress, and the latest events — instead of JSON. Rendered from
//! the same JSON the scripts get ([`super::shapes`]), so the two views never disagree.

use serde_json::Value;

/// Events a service view shows (the console's first page; `--output json` has all of them).
const EVENTS_SHOWN: usize = 10;

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    }
}

/// The last path segment of an ARN: the object's name here, `family:revision` for a definition.
fn short(v: &Value) -> String {
    let s = text(v);
    s.rsplit('/').next().unwrap_or(&s).to_string()
}

/// Columns padded to their widest cell; the last column is not padded.
fn columns(rows: &[Vec<String>], indent: &str) -> String {
    let widths: Vec<usize> = (0..rows.first().map_or(0, Vec::len))
        .map(|i| {
            rows.iter()
                .map(|r| r.get(i).map_or(0, |c| c.chars().count()))
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        let mut line = indent.to_string();
        for (i, cell) in row.iter().enumerate() {
            if i + 1 == row.len() {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<width$}  ", width = widths[i]));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// A bar of `width` cells, `done` of `total` filled: a deployment's running tasks of its desired.
fn bar(done: i64, total: i64, width: usize) -> String {
    let filled = if total <= 0 {
        width
    } else {
        ((done.clamp(0, total) as usize) * width) / total as usize
    };
    format!("[{}{}]", "#".repeat(filled), ".".repeat(width - filled))
}

/// A DescribeServices `services[]` entry as the console's service page.
pub fn service(s: &Value) -> String {
    let mut out = format!(
        "Service {}  {}\n",
        text(&s["serviceName"]),
        text(&s["status"])
    );
    out.push_str(&columns(
        &[
            vec!["Task definition".into(), short(&s["taskDefinition"])],
            vec![
                "Tasks".into(),
                format!(
                    "{} desired, {} running, {} pending",
                    text(&s["desiredCount"]),
                    s["runningCount"].as_i64().unwrap_or(0),
                    s["pendingCount"].as_i64().unwrap_or(0)
                ),
            ],
            vec!["Scheduling".into(), scheduling(s)],
        ],
        "  ",
    ));
    let deployments = s["deployments"].as_array().cloned().unwrap_or_default();
    out.push_str("\n  Deployments\n");
    let mut rows = vec![
        [
            "ID",
            "STATUS",
            "TASK DEFINITION",
            "RUNNING",
            "DESIRED",
            "PENDING",
            "FAILED",
            "ROLLOUT",
            "",
        ]
        .map(String::from)
        .to_vec(),
    ];
    for d in &deployments {
        let running = d["runningCount"].as_i64().unwrap_or(0);
        let desired = d["desiredCount"].as_i64().unwrap_or(0);
        rows.push(vec![
            text(&d["id"]),
            text(&d["status"]),
            short(&d["taskDefinition"]),
            running.to_string(),
            desired.to_string(),
            d["pendingCount"].as_i64().unwrap_or(0).to_string(),
            d["failedTasks"].as_i64().unwrap_or(0).to_string(),
            text(&d["rolloutState"]),
            bar(running, desired, 10),
        ]);
    }
    out.push_str(&columns(&rows, "    "));
    for d in &deployments {
        if let Some(reason) = d["rolloutStateReason"].as_str() {
            out.push_str(&format!("    {}: {reason}\n", text(&d["id"])));
        }
    }
    let events = s["events"].as_array().cloned().unwrap_or_default();
    out.push_str(&format!(
        "\n  Events (latest {} of {})\n",
        events.len().min(EVENTS_SHOWN),
        events.len()
    ));
    // Already newest first, as ECS lists them.
    let rows: Vec<Vec<String>> = events
        .iter()
        .take(EVENTS_SHOWN)
        .map(|e| vec![text(&e["createdAt"]), text(&e["message"])])
        .collect();
    out.push_str(&columns(&rows, "    "));
    out
}

fn scheduling(s: &Value) -> String {
    let strategy = s["schedulingStrategy"].as_str().unwrap_or("REPLICA");
    let config = &s["deploymentConfiguration"];
    let min = config["minimumHealthyPercent"].as_i64();
    let max = config["maximumPercent"].as_i64();
    match (min, max) {
        (Some(min), Some(max)) => format!("{strategy}, rolling {min}%–{max}%"),
        _ => strategy.to_string(),
    }
}

/// DescribeTasks `tasks[]` as one table: a row per task, then its containers.
pub fn tasks(tasks: &[Value]) -> String {
    let mut rows = vec![
        [
            "TASK",
            "DEFINITION",
            "LAST",
            "DESIRED",
            "HEALTH",
            "ZONE",
            "STOP",
        ]
        .map(String::from)
        .to_vec(),
    ];
    let mut details = String::new();
    for t in tasks {
        rows.push(vec![
            short(&t["taskArn"]),
            short(&t["taskDefinitionArn"]),
            text(&t["lastStatus"]),
            text(&t["desiredStatus"]),
            text(&t["healthStatus"]),
            text(&t["availabilityZone"]),
            text(&t["stopCode"]),
        ]);
        let mut containers = vec![
            ["  CONTAINER", "IMAGE", "LAST", "HEALTH", "EXIT", "REASON"]
                .map(String::from)
                .to_vec(),
        ];
        for c in t["containers"].as_array().into_iter().flatten() {
            containers.push(vec![
                format!("  {}", text(&c["name"])),
                text(&c["image"]),
                text(&c["lastStatus"]),
                text(&c["healthStatus"]),
                text(&c["exitCode"]),
                text(&c["reason"]),
            ]);
        }
        details.push_str(&format!("\n{}\n", short(&t["taskArn"])));
        if let Some(reason) = t["stoppedReason"].as_str() {
            details.push_str(&format!("  stopped: {reason}\n"));
        }
        details.push_str(&columns(&containers, ""));
    }
    columns(&rows, "") + &details
}

/// A DescribeTaskDefinition answer: the revision and its containers.
pub fn task_definition(answer: &Value) -> String {
    let td = &answer["taskDefinition"];
    let mut out = format!(
        "Task definition {}:{}  {}\n",
        text(&td["family"]),
        text(&td["revision"]),
        text(&td["status"])
    );
    out.push_str(&columns(
        &[
            vec!["CPU".into(), text(&td["cpu"])],
            vec!["Memory".into(), text(&td["memory"])],
            vec!["Network mode".into(), text(&td["networkMode"])],
            vec!["Registered".into(), text(&td["registeredAt"])],
        ],
        "  ",
    ));
    let mut rows = vec![
        ["CONTAINER", "IMAGE", "ESSENTIAL", "PORTS"]
            .map(String::from)
            .to_vec(),
    ];
    for c in td["containerDefinitions"].as_array().into_iter().flatten() {
        let ports: Vec<String> = c["portMappings"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|p| {
                format!(
                    "{}/{}",
                    text(&p["containerPort"]),
                    p["protocol"].as_str().unwrap_or("tcp")
                )
            })
            .collect();
        rows.push(vec![
            text(&c["name"]),
            text(&c["image"]),
            // ECS: a container is essential unless it says otherwise.
            c["essential"].as_bool().unwrap_or(true).to_string(),
            if ports.is_empty() {
                "-".into()
            } else {
                ports.join(",")
            },
        ]);
    }
    out.push('\n');
    out.push_str(&columns(&rows, "  "));
    out
}

/// A verb's answer drawn for people: what goes to stdout and what to stderr (`failures[]`), or `None`
/// for shapes with no table (printed as JSON instead).
pub fn render(answer: &Value) -> Option<(String, String)> {
    let out = if let Some(services) = answer["services"].as_array() {
        services.iter().map(service).collect::<Vec<_>>().join("\n")
    } else if answer["service"].is_object() {
        service(&answer["service"])
    } else if let Some(found) = answer["tasks"].as_array() {
        tasks(found)
    } else if answer["task"].is_object() {
        tasks(std::slice::from_ref(&answer["task"]))
    } else if answer["taskDefinition"].is_object() {
        task_definition(answer)
    } else if let Some(arns) = answer["taskArns"]
        .as_array()
        .or(answer["serviceArns"].as_array())
    {
        arns.iter().map(|a| format!("{}\n", text(a))).collect()
    } else {
        return None;
    };
    Some((out, failures(&answer["failures"])))
}

/// `failures[]` of a describe answer, one line each (empty when there are none).
pub fn failures(failures: &Value) -> String {
    failures
        .as_array()
        .into_iter()
        .flatten()
        .map(|f| format!("{}: {}\n", text(&f["arn"]), text(&f["reason"])))
        .collect()
}

#[cfg(test)]
mod tests;
