//! `ecs-operator import task-definition` on real ECS task definitions (tests/fixtures/ecs, sources in
//! SOURCES.md). No cluster needed: the manifests are checked by round trip (through serde and through
//! kubectl's own YAML reader, offline), not by applying them.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use ecs_operator::api::TaskDefinition;
use ecs_operator::import::{self, Options, READ_ONLY_FIELDS};
use serde_json::{Map, Value, json};

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/ecs")
}

/// Every valid fixture, by file name, sorted.
fn fixtures() -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = std::fs::read_dir(fixture_dir())
        .expect("fixture directory")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read_to_string(&p).expect("readable fixture"))
        })
        .collect();
    out.sort();
    out
}

/// The metadata.name each fixture must get, and so which families are renamed.
fn expected_names() -> BTreeMap<&'static str, &'static str> {
    BTreeMap::from([
        (
            "appmesh-envoy-sidecar.json",
            "appmesh-firelens-colorteller-black",
        ),
        ("cloudwatch-agent-daemon.json", "ecs-cwagent-daemon-service"),
        ("containerhandson-register-output.json", "containerhandson"),
        ("cwagent-statsd-fargate.json", "ecs-cwagent-sidecar-fargate"),
        ("datadog-agent-daemon.json", "datadog-agent-task"),
        (
            "ecs-agent-container-ordering-healthy.json",
            "ecsftest-container-ordering-complete-condition",
        ),
        ("ecspresso-appmesh-wrapped.json", "katsubushi"),
        ("ecspresso-secrets-fargate.json", "ecspresso-test"),
        (
            "firelens-datadog-secret-options.json",
            "firelens-example-datadog",
        ),
        ("firelens-efs-wrapped.json", "firelens-efs-example"),
        ("firelens-healthcheck.json", "firelens-example-cloudwatch"),
        ("fluent-bit-daemon.json", "fluent-bit-daemon-service"),
        (
            "hiringcandidate-console-export.json",
            "hiringcandidate-command",
        ),
        ("newrelic-infra-host-network.json", "newrelic-infra"),
        ("signalfx-agent-host-network.json", "signalfx-agent"),
        ("sleep360-register-output.json", "sleep360"),
        ("web-timer-host-volume.json", "web-timer"),
    ])
}

fn strip_nulls(value: &mut Value) {
    match value {
        Value::Object(fields) => {
            fields.retain(|_, v| !v.is_null());
            fields.values_mut().for_each(strip_nulls);
        }
        Value::Array(items) => items.iter_mut().for_each(strip_nulls),
        _ => {}
    }
}

/// What the imported spec must serialize to, worked out independently of the importer: the input
/// minus the DescribeTaskDefinition wrapper and read-only fields, with its resource tags in
/// `tags`, `null` meaning absent, `essential` at its ECS (and CRD schema) default of true, and without
/// `family` when the family could not be the object name as is.
fn expected_spec(input: &str, name: &str) -> Value {
    let document: Map<String, Value> = serde_json::from_str(input).unwrap();
    let mut spec = match document.get("taskDefinition") {
        Some(Value::Object(inner)) => {
            let mut inner = inner.clone();
            if let Some(Value::Array(outer)) = document.get("tags")
                && !outer.is_empty()
            {
                let tags = inner.entry("tags").or_insert_with(|| json!([]));
                for tag in outer {
                    let tags = tags.as_array_mut().unwrap();
                    match tags.iter_mut().find(|t| t["key"] == tag["key"]) {
                        Some(t) => *t = tag.clone(),
                        None => tags.push(tag.clone()),
                    }
                }
            }
            inner
        }
        _ => document,
    };
    for field in READ_ONLY_FIELDS {
        spec.remove(*field);
    }
    if spec.get("family").and_then(Value::as_str) != Some(name) {
        spec.remove("family");
    }
    let mut spec = Value::Object(spec);
    strip_nulls(&mut spec);
    for container in spec["containerDefinitions"].as_array_mut().unwrap() {
        container
            .as_object_mut()
            .unwrap()
            .entry("essential")
            .or_insert(json!(true));
    }
    spec
}

#[test]
fn every_fixture_round_trips_without_losing_fields() {
    let names = expected_names();
    let fixtures = fixtures();
    assert!(fixtures.len() >= 8, "only {} fixtures", fixtures.len());
    for (file, input) in &fixtures {
        let want_name = names
            .get(file.as_str())
            .unwrap_or_else(|| panic!("{file}: add it to expected_names()"));
        let imported = import::task_definition(input, &Options::default())
            .unwrap_or_else(|e| panic!("{file} does not import:\n{e}"));

        // The YAML is what users apply: parse it back rather than trusting `imported.manifest`.
        let yaml: serde_yaml_ng::Value = serde_yaml_ng::from_str(&imported.yaml).unwrap();
        assert_eq!(yaml["apiVersion"], "ecs.operator.dev/v1alpha1", "{file}");
        assert_eq!(yaml["kind"], "TaskDefinition", "{file}");
        let manifest: TaskDefinition = serde_yaml_ng::from_str(&imported.yaml)
            .unwrap_or_else(|e| panic!("{file}: YAML does not parse back: {e}"));
        assert_eq!(
            manifest.metadata.name.as_deref(),
            Some(*want_name),
            "{file}"
        );
        assert_eq!(manifest.metadata.namespace, None, "{file}");

        let got = serde_json::to_value(&manifest.spec).unwrap();
        let want = expected_spec(input, want_name);
        assert_eq!(
            got,
            want,
            "{file}: spec differs from the input\n got: {}\nwant: {}",
            serde_json::to_string_pretty(&got).unwrap(),
            serde_json::to_string_pretty(&want).unwrap()
        );
    }
}

/// The manifest as kubectl reads it: its YAML 1.1 reader, offline (`annotate --local` parses the file
/// and prints it back as JSON without a server).
fn read_with_kubectl(yaml: &str) -> Value {
    let mut child = Command::new("kubectl")
        .args([
            "annotate",
            "--local",
            "-f",
            "-",
            "-o",
            "json",
            "read-by=kubectl",
        ])
        .env("KUBECONFIG", "/dev/null")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kubectl on PATH (cargo xtask cluster up prints the PATH line)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(yaml.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "kubectl cannot read the manifest: {}\n{yaml}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut read: Value = serde_json::from_slice(&out.stdout).unwrap();
    read["metadata"]
        .as_object_mut()
        .unwrap()
        .remove("annotations");
    read
}

/// kubectl reads YAML 1.1, where `on`, `off`, `yes`, `no`, `y` and `n` are booleans: a value such as
/// FireLens's `"TLS": "on"` must reach the API server as the string it is.
#[test]
fn kubectl_reads_every_imported_manifest_as_the_importer_wrote_it() {
    let mut saw_yaml11_word = false;
    for (file, input) in &fixtures() {
        let imported = import::task_definition(input, &Options::default())
            .unwrap_or_else(|e| panic!("{file} does not import:\n{e}"));
        saw_yaml11_word |= imported.yaml.contains("\"on\"");
        let mut read = read_with_kubectl(&imported.yaml);
        read["metadata"]
            .as_object_mut()
            .unwrap()
            .remove("annotations");
        let want = serde_json::to_value(&imported.manifest).unwrap();
        assert_eq!(
            read, want,
            "{file}: kubectl reads something else\n{}",
            imported.yaml
        );
    }
    assert!(
        saw_yaml11_word,
        "no fixture has a YAML 1.1 boolean word as a string value"
    );
}

#[test]
fn every_fixture_is_listed_in_sources() {
    let sources = std::fs::read_to_string(fixture_dir().join("SOURCES.md")).unwrap();
    let mut files: Vec<String> = fixtures().into_iter().map(|(f, _)| f).collect();
    for entry in std::fs::read_dir(fixture_dir().join("invalid"))
        .unwrap()
        .flatten()
    {
        files.push(format!("invalid/{}", entry.file_name().to_string_lossy()));
    }
    for file in files {
        assert!(
            sources.contains(&format!("`{file}`")),
            "{file} is not listed in SOURCES.md"
        );
    }
}

/// The fixtures, together, exercise every shape the importer must handle.
#[test]
fn fixtures_cover_the_shapes_that_matter() {
    let docs: Vec<(String, Value)> = fixtures()
        .into_iter()
        .map(|(f, text)| (f, serde_json::from_str(&text).unwrap()))
        .collect();
    let spec = |doc: &Value| doc.get("taskDefinition").cloned().unwrap_or(doc.clone());
    let containers = |doc: &Value| {
        spec(doc)["containerDefinitions"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    };
    let volumes = |doc: &Value| spec(doc)["volumes"].as_array().cloned().unwrap_or_default();
    let secret_from = |doc: &Value, prefix: &str| {
        containers(doc).iter().any(|c| {
            c["secrets"].as_array().into_iter().flatten().any(|s| {
                s["valueFrom"]
                    .as_str()
                    .is_some_and(|v| v.starts_with(prefix))
            })
        })
    };
    type Check<'a> = Box<dyn Fn(&Value) -> bool + 'a>;
    let checks: Vec<(&str, Check)> = vec![
        (
            "dependsOn",
            Box::new(|d| containers(d).iter().any(|c| c.get("dependsOn").is_some())),
        ),
        (
            "healthCheck",
            Box::new(|d| containers(d).iter().any(|c| c["healthCheck"].is_object())),
        ),
        (
            "Secrets Manager secret",
            Box::new(|d| secret_from(d, "arn:aws:secretsmanager:")),
        ),
        ("SSM secret", Box::new(|d| secret_from(d, "arn:aws:ssm:"))),
        (
            "host volume",
            Box::new(|d| volumes(d).iter().any(|v| v["host"].is_object())),
        ),
        (
            "docker volume",
            Box::new(|d| {
                volumes(d)
                    .iter()
                    .any(|v| v["dockerVolumeConfiguration"].is_object())
            }),
        ),
        (
            "efs volume",
            Box::new(|d| {
                volumes(d)
                    .iter()
                    .any(|v| v["efsVolumeConfiguration"].is_object())
            }),
        ),
        (
            "host network mode",
            Box::new(|d| spec(d)["networkMode"] == "host"),
        ),
        (
            "FireLens",
            Box::new(|d| {
                containers(d)
                    .iter()
                    .any(|c| c["firelensConfiguration"].is_object())
            }),
        ),
        (
            "Fargate with cpu/memory strings",
            Box::new(|d| {
                let s = spec(d);
                s["requiresCompatibilities"]
                    .as_array()
                    .is_some_and(|r| r.contains(&json!("FARGATE")))
                    && s["cpu"].is_string()
                    && s["memory"].is_string()
            }),
        ),
        (
            "DescribeTaskDefinition output with read-only fields",
            Box::new(|d| d["taskDefinition"]["taskDefinitionArn"].is_string()),
        ),
        (
            "DescribeTaskDefinition output with tags",
            Box::new(|d| d["tags"].as_array().is_some_and(|t| !t.is_empty())),
        ),
    ];
    for (what, check) in checks {
        assert!(docs.iter().any(|(_, d)| check(d)), "no fixture has {what}");
    }
}

#[test]
fn describe_output_notes_dropped_fields_and_renamed_family() {
    let input =
        std::fs::read_to_string(fixture_dir().join("containerhandson-register-output.json"))
            .unwrap();
    let imported = import::task_definition(&input, &Options::default()).unwrap();
    assert_eq!(
        imported.notes,
        [
            "dropped read-only fields (they describe a registered revision): taskDefinitionArn, revision, status, registeredAt, registeredBy, requiresAttributes, compatibilities",
            "family \"ContainerHandsOn\" becomes metadata.name \"containerhandson\"; spec.family is left out because it must equal metadata.name",
        ]
    );
    let tags = serde_json::to_value(&imported.manifest.spec.tags).unwrap();
    assert_eq!(tags, json!([{"key": "Name", "value": "ContainerHandsOn"}]));
}

// --- the binary -------------------------------------------------------------------------------

fn ecs_operator(args: &[&str], stdin: Option<&str>) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_ecs-operator"));
    command
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().expect("ecs-operator runs");
    if let Some(text) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
    }
    child.wait_with_output().unwrap()
}

fn path_arg(file: &str) -> String {
    fixture_dir().join(file).to_string_lossy().into_owned()
}

#[test]
fn binary_imports_a_file_and_stdin_alike() {
    let file = path_arg("containerhandson-register-output.json");
    let from_file = ecs_operator(
        &["import", "task-definition", &file, "--namespace", "demo"],
        None,
    );
    assert!(from_file.status.success(), "{from_file:?}");
    let stderr = String::from_utf8(from_file.stderr.clone()).unwrap();
    assert!(
        stderr.contains("note: dropped read-only fields"),
        "{stderr}"
    );
    assert!(
        stderr.contains("note: family \"ContainerHandsOn\""),
        "{stderr}"
    );
    let manifest: TaskDefinition = serde_yaml_ng::from_slice(&from_file.stdout).unwrap();
    assert_eq!(manifest.metadata.name.as_deref(), Some("containerhandson"));
    assert_eq!(manifest.metadata.namespace.as_deref(), Some("demo"));

    let text = std::fs::read_to_string(&file).unwrap();
    let from_stdin = ecs_operator(
        &["import", "task-definition", "-", "--namespace", "demo"],
        Some(&text),
    );
    assert!(from_stdin.status.success(), "{from_stdin:?}");
    assert_eq!(from_stdin.stdout, from_file.stdout);

    // The same input always prints the same manifest, byte for byte, and as the library does.
    let again = ecs_operator(
        &["import", "task-definition", &file, "--namespace", "demo"],
        None,
    );
    assert_eq!(again.stdout, from_file.stdout);
    let options = Options {
        namespace: Some("demo".into()),
        ..Default::default()
    };
    let library = import::task_definition(&text, &options).unwrap();
    assert_eq!(library.yaml.as_bytes(), from_file.stdout);
}

#[test]
fn binary_rejects_invalid_input_naming_the_field() {
    let cases = [
        (
            "invalid/portmapping-protocol-http.json",
            "error: containerDefinitions[0].portMappings[0].protocol: unknown variant \"http\", expected \"tcp\" or \"udp\"",
        ),
        (
            "invalid/container-network-mode.json",
            "error: containerDefinitions[0].networkMode: unknown field \"networkMode\"",
        ),
        (
            "invalid/depends-on-missing-container.json",
            "error: containerDefinitions[0].dependsOn[0]: dependsOn containerName must name a container of this task definition",
        ),
        (
            "invalid/datadog-fargate-placeholder-family.json",
            "error: family: \"<TASK_NAME>\" cannot become metadata.name",
        ),
    ];
    for (file, want) in cases {
        for stdin in [false, true] {
            let text = std::fs::read_to_string(fixture_dir().join(file)).unwrap();
            let out = if stdin {
                ecs_operator(&["import", "task-definition", "-"], Some(&text))
            } else {
                ecs_operator(&["import", "task-definition", &path_arg(file)], None)
            };
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(!out.status.success(), "{file} was accepted");
            assert!(out.stdout.is_empty(), "{file}: printed a manifest anyway");
            assert!(stderr.contains(want), "{file}: stderr was\n{stderr}");
        }
    }
}

#[test]
fn binary_name_option_rescues_a_placeholder_family() {
    let out = ecs_operator(
        &[
            "import",
            "task-definition",
            &path_arg("invalid/datadog-fargate-placeholder-family.json"),
            "--name",
            "datadog-agent",
        ],
        None,
    );
    assert!(out.status.success(), "{out:?}");
    let manifest: TaskDefinition = serde_yaml_ng::from_slice(&out.stdout).unwrap();
    assert_eq!(manifest.metadata.name.as_deref(), Some("datadog-agent"));
    assert_eq!(manifest.spec.family, None);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("note: family \"<TASK_NAME>\" becomes metadata.name \"datadog-agent\""),
        "{stderr}"
    );
}

#[test]
fn binary_reports_unreadable_files_and_bad_json() {
    let out = ecs_operator(&["import", "task-definition", "/nonexistent/td.json"], None);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("error: cannot read /nonexistent/td.json")
    );

    let out = ecs_operator(&["import", "task-definition", "-"], Some("{\"family\": "));
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("error: not valid JSON"));
}

fn lenient_path(file: &str) -> String {
    fixture_dir()
        .join("lenient")
        .join(file)
        .to_string_lossy()
        .into_owned()
}

/// CloudFormation templates and deploy tools write numbers and booleans as strings (and a task-level
/// cpu as a number): accepted, typed as the API wants, each conversion named on stderr.
#[test]
fn numbers_and_booleans_written_as_strings_are_typed_and_reported() {
    let out = ecs_operator(
        &[
            "import",
            "task-definition",
            &lenient_path("cloudformation-string-numbers.json"),
        ],
        None,
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    for note in [
        "cpu: the number 512 is read as the string \"512\"",
        "containerDefinitions[0].cpu: the string \"256\" is read as 256",
        "containerDefinitions[0].essential: the string \"true\" is read as true",
        "containerDefinitions[0].portMappings[0].containerPort: the string \"8080\" is read as 8080",
        "containerDefinitions[0].healthCheck.retries: the string \"3\" is read as 3",
    ] {
        assert!(stderr.contains(note), "missing note {note:?} in\n{stderr}");
    }
    let read = read_with_kubectl(&String::from_utf8_lossy(&out.stdout));
    let c = &read["spec"]["containerDefinitions"][0];
    assert_eq!(read["spec"]["cpu"], json!("512"));
    assert_eq!(read["spec"]["memory"], json!("1024"));
    assert_eq!(c["cpu"], json!(256));
    assert_eq!(c["memoryReservation"], json!(256));
    assert_eq!(c["essential"], json!(true));
    assert_eq!(c["healthCheck"]["interval"], json!(30));
    // Log driver options are strings in ECS: left as they are, "on" included.
    assert_eq!(c["logConfiguration"]["options"]["TLS"], json!("on"));
    assert_eq!(c["logConfiguration"]["options"]["Port"], json!("443"));
}

/// boto3's DescribeTaskDefinition output carries `ResponseMetadata`; deploy tools add keys such as
/// `Tags`. Refused by default (naming them), dropped with --drop-unknown-fields (listing them).
#[test]
fn keys_no_field_has_are_refused_or_dropped_on_request() {
    let file = lenient_path("boto3-describe-output.json");
    let refused = ecs_operator(&["import", "task-definition", &file], None);
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("ResponseMetadata"), "{stderr}");

    let out = ecs_operator(
        &["import", "task-definition", &file, "--drop-unknown-fields"],
        None,
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("note: dropped unknown fields: ResponseMetadata"),
        "{stderr}"
    );
    assert!(
        stderr.contains("note: dropped unknown fields: taskDefinition.Tags"),
        "{stderr}"
    );
    let read = read_with_kubectl(&String::from_utf8_lossy(&out.stdout));
    assert_eq!(read["metadata"]["name"], json!("billing-worker"));
    assert_eq!(
        read["spec"]["tags"],
        json!([{"key": "cost-center", "value": "42"}])
    );
    assert_eq!(
        read["spec"]["containerDefinitions"][0]["environment"][1],
        json!({"name": "VERBOSE", "value": "no"})
    );
}

fn services_path(file: &str) -> String {
    fixture_dir()
        .join("services")
        .join(file)
        .to_string_lossy()
        .into_owned()
}

/// Each YAML document of a multi-document output, as kubectl reads it.
fn documents_read_with_kubectl(yaml: &str) -> Vec<Value> {
    yaml.split("---\n").map(read_with_kubectl).collect()
}

#[test]
fn describe_services_output_imports_as_service_manifests() {
    let out = ecs_operator(
        &[
            "import",
            "service",
            &services_path("describe-services-output.json"),
            "--namespace",
            "shop",
        ],
        None,
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("note: dropped read-only fields (they describe the running service): serviceArn, status, runningCount, pendingCount, deployments, events, createdAt, createdBy, platformFamily"), "{stderr}");
    // ECS's revision 42 is revision 1 here: the service follows the family, and says why.
    assert!(stderr.contains("note: taskDefinition \"arn:aws:ecs:eu-west-1:123456789012:task-definition/Checkout_API:42\" becomes \"checkout-api\" (its latest revision): revision numbers are not carried over"), "{stderr}");
    let docs = documents_read_with_kubectl(&String::from_utf8_lossy(&out.stdout));
    assert_eq!(docs.len(), 1);
    let svc = &docs[0];
    assert_eq!(svc["kind"], json!("Service"));
    assert_eq!(
        svc["metadata"],
        json!({"name": "checkout-api", "namespace": "shop"})
    );
    assert_eq!(svc["spec"]["taskDefinition"], json!("checkout-api"));
    assert_eq!(
        svc["spec"]["cluster"],
        json!("arn:aws:ecs:eu-west-1:123456789012:cluster/prod")
    );
    assert_eq!(svc["spec"]["enableECSManagedTags"], json!(true));
    assert_eq!(
        svc["spec"]["loadBalancers"][0]["containerPort"],
        json!(8080)
    );
    assert!(svc["spec"].get("serviceName").is_none());
}

#[test]
fn a_deploy_tools_service_definition_imports_with_name_and_task_definition_given() {
    let file = services_path("ecspresso-service-def.json");
    let refused = ecs_operator(&["import", "service", &file], None);
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains(
            "error: taskDefinition: missing: add it to the input or pass --task-definition"
        ),
        "{stderr}"
    );
    let out = ecs_operator(
        &[
            "import",
            "service",
            &file,
            "--name",
            "web",
            "--task-definition",
            "web:3",
        ],
        None,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let svc = &documents_read_with_kubectl(&String::from_utf8_lossy(&out.stdout))[0];
    assert_eq!(svc["metadata"]["name"], json!("web"));
    assert_eq!(svc["spec"]["taskDefinition"], json!("web:3"));
    assert_eq!(svc["spec"]["desiredCount"], json!(2));
    assert_eq!(
        svc["spec"]["loadBalancers"][0]["targetGroupArn"],
        json!("{{ tfstate `aws_lb_target_group.web.arn` }}")
    );
}

#[test]
fn run_task_input_imports_as_one_task_manifest_per_count() {
    let out = ecs_operator(
        &["import", "task", &services_path("run-task-input.json")],
        None,
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("note: count 2 becomes 2 Tasks"), "{stderr}");
    let docs = documents_read_with_kubectl(&String::from_utf8_lossy(&out.stdout));
    let names: Vec<&Value> = docs.iter().map(|d| &d["metadata"]["name"]).collect();
    assert_eq!(
        names,
        [&json!("nightly-report-1"), &json!("nightly-report-2")]
    );
    for task in &docs {
        assert_eq!(task["kind"], json!("Task"));
        assert_eq!(task["spec"]["taskDefinition"], json!("nightly-report"));
        assert!(task["spec"].get("count").is_none());
        assert_eq!(
            task["spec"]["overrides"]["containerOverrides"][0]["environment"][0]["value"],
            json!("no")
        );
    }
}
