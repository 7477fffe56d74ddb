//! The Helm chart against the local cluster (`cargo xtask test` starts it and sets KUBECONFIG and PATH
//! with kubectl and helm): lint, rendering, a server-side dry run, an install into a namespace that
//! enforces the restricted Pod Security Standard, and the RBAC it grants, checked by impersonation.
//! Each test works in namespaces of its own and removes them (and its releases) at the end.

use std::io::Write;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value as Json;

/// Label on every namespace a test creates (as in tests/support), so leftovers can be found.
const TEST_LABEL: &str = "ecs.operator.dev/test";

const CHART: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/charts/ecs-operator");
const CHART_CRDS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/charts/ecs-operator/crds");

/// Fails loudly (never skips) when the cluster or the tools are missing.
fn require_cluster() {
    assert!(
        std::env::var_os("KUBECONFIG").is_some(),
        "chart tests need the local cluster: run `cargo xtask test`, or `eval \"$(cargo xtask cluster up | head -n 2)\"` first"
    );
    for tool in ["kubectl", "helm"] {
        let found = Command::new(tool)
            .arg("version")
            .output()
            .is_ok_and(|o| o.status.success());
        assert!(
            found,
            "`{tool}` is not on PATH (or cannot reach the cluster): `cargo xtask cluster env` prints the PATH to use"
        );
    }
}

fn run(program: &str, args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(program)
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
    }
    child.wait_with_output().unwrap()
}

/// Runs and fails the test with the command's output unless it succeeds; returns stdout.
fn ok(program: &str, args: &[&str], stdin: Option<&str>) -> String {
    let out = run(program, args, stdin);
    assert!(
        out.status.success(),
        "{program} {} failed:\n{}{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn unique(prefix: &str) -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos(),
    );
    format!("{prefix}-{:08x}", h.finish() as u32)
}

/// A namespace for one test, deleted with its contents when dropped.
struct Namespace(String);

impl Namespace {
    fn new(prefix: &str, labels: &[&str]) -> Self {
        let name = unique(prefix);
        ok("kubectl", &["create", "namespace", &name], None);
        let ns = Self(name);
        let mut args = vec!["label", "namespace", ns.0.as_str()];
        let test_label = format!("{TEST_LABEL}=true");
        args.push(&test_label);
        args.extend_from_slice(labels);
        ok("kubectl", &args, None);
        ns
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        let _ = run(
            "kubectl",
            &["delete", "namespace", &self.0, "--wait=false"],
            None,
        );
    }
}

/// A Helm release, uninstalled when dropped (its ClusterRoles and bindings are not namespaced).
struct Release {
    name: String,
    namespace: String,
}

impl Release {
    fn install(namespace: &Namespace, set: &[&str]) -> Self {
        install_crds();
        let name = unique("ecs");
        let mut args = vec![
            "install",
            name.as_str(),
            CHART,
            "--namespace",
            namespace.0.as_str(),
            "--wait",
            "--timeout",
            "120s",
        ];
        for s in set {
            args.extend(["--set", s]);
        }
        ok("helm", &args, None);
        Self {
            name,
            namespace: namespace.0.clone(),
        }
    }

    /// The ServiceAccount the chart made, as `kubectl --as` names it.
    fn service_account(&self) -> String {
        format!(
            "system:serviceaccount:{}:{}-ecs-operator",
            self.namespace, self.name
        )
    }
}

impl Drop for Release {
    fn drop(&mut self) {
        let _ = run(
            "helm",
            &[
                "uninstall",
                &self.name,
                "--namespace",
                &self.namespace,
                "--wait=false",
            ],
            None,
        );
    }
}

/// The chart's CRDs, as `docs/install.md` says to install and upgrade them. Idempotent.
fn install_crds() {
    ok(
        "kubectl",
        &[
            "apply",
            "--server-side",
            "--force-conflicts",
            "--field-manager=ecs-operator-tests",
            "-f",
            CHART_CRDS,
        ],
        None,
    );
    ok(
        "kubectl",
        &[
            "wait",
            "--for=condition=Established",
            "--timeout=60s",
            "-f",
            CHART_CRDS,
        ],
        None,
    );
}

/// `helm template` with `--set` values, as parsed documents.
fn render(release: &str, namespace: &str, set: &[&str]) -> (String, Vec<Json>) {
    let mut args = vec!["template", release, CHART, "--namespace", namespace];
    for s in set {
        args.extend(["--set", s]);
    }
    let yaml = ok("helm", &args, None);
    let docs = documents(&yaml);
    (yaml, docs)
}

fn documents(yaml: &str) -> Vec<Json> {
    use serde::Deserialize;
    serde_yaml_ng::Deserializer::from_str(yaml)
        .map(|doc| Json::deserialize(doc).expect("valid YAML"))
        .filter(|v| !v.is_null())
        .collect()
}

fn of_kind<'a>(docs: &'a [Json], kind: &str) -> Vec<&'a Json> {
    docs.iter().filter(|d| d["kind"] == kind).collect()
}

fn env_of(deployment: &Json, name: &str) -> Option<Json> {
    deployment["spec"]["template"]["spec"]["containers"][0]["env"]
        .as_array()?
        .iter()
        .find(|e| e["name"] == name)
        .cloned()
}

/// `kubectl auth can-i` as `user` (impersonation), in `namespace`.
fn can(user: &str, namespace: &str, verb: &str, resource: &str, subresource: Option<&str>) -> bool {
    let sub = subresource.map(|s| format!("--subresource={s}"));
    let as_user = format!("--as={user}");
    let mut args = vec![
        "auth",
        "can-i",
        verb,
        resource,
        as_user.as_str(),
        "--namespace",
        namespace,
    ];
    args.extend(sub.as_deref());
    let out = run("kubectl", &args, None);
    let answer = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(
        answer == "yes" || answer == "no",
        "kubectl {}: {answer} {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    answer == "yes"
}

/// Waits (RBAC aggregation is asynchronous) until `can` gives `expected`.
fn eventually_can(user: &str, namespace: &str, verb: &str, resource: &str, expected: bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while can(user, namespace, verb, resource, None) != expected {
        assert!(
            Instant::now() < deadline,
            "{user} {} {verb} {resource} in {namespace} after 60s",
            if expected {
                "still cannot"
            } else {
                "still can"
            }
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[test]
fn lint_is_clean_for_every_value_set() {
    require_cluster();
    for set in [
        &[][..],
        &["watchNamespaces={team-a,team-b}"],
        &["replicas=2"],
        &["metrics.serviceMonitor.enabled=true", "logFormat=json"],
    ] {
        let mut args = vec!["lint", "--strict", CHART];
        for s in set {
            args.extend(["--set", s]);
        }
        let out = ok("helm", &args, None);
        assert!(out.contains("0 chart(s) failed"), "{out}");
    }
}

#[test]
fn invalid_values_are_refused() {
    require_cluster();
    for (set, why) in [
        ("logFormat=xml", "logFormat"),
        ("replicas=2,leaderElection.enabled=false", "leaderElection"),
        (
            "leaderElection.renewDeadlineSeconds=15",
            "renewDeadlineSeconds < leaseDurationSeconds",
        ),
        ("watchNamespaces={Not_A_Namespace}", "watchNamespaces"),
        ("replica=2", "replica"),
        (
            "kubeApi.qps=20,kubeApi.burst=0",
            "kubeApi.burst must be at least 1",
        ),
        ("kubeApi.qps=-1", "kubeApi/qps"),
    ] {
        let out = run("helm", &["template", "x", CHART, "--set", set], None);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "--set {set} was accepted");
        assert!(err.contains(why), "--set {set}: {err}");
    }
}

/// What every rendering must hold, whatever the values.
fn common_checks(docs: &[Json]) {
    for d in docs {
        let labels = &d["metadata"]["labels"];
        for key in [
            "app.kubernetes.io/name",
            "app.kubernetes.io/instance",
            "app.kubernetes.io/version",
            "helm.sh/chart",
        ] {
            assert!(
                labels[key].is_string(),
                "{} {} has no {key} label",
                d["kind"],
                d["metadata"]["name"]
            );
        }
    }
    let deployments = of_kind(docs, "Deployment");
    assert_eq!(deployments.len(), 1);
    let pod = &deployments[0]["spec"]["template"]["spec"];
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(pod["securityContext"]["runAsUser"], 65532);
    assert_eq!(
        pod["securityContext"]["seccompProfile"]["type"],
        "RuntimeDefault"
    );
    let c = &pod["containers"][0];
    assert_eq!(c["args"], serde_json::json!(["run"]));
    assert_eq!(c["securityContext"]["readOnlyRootFilesystem"], true);
    assert_eq!(c["securityContext"]["allowPrivilegeEscalation"], false);
    assert_eq!(
        c["securityContext"]["capabilities"]["drop"],
        serde_json::json!(["ALL"])
    );
    assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert_eq!(c["ports"][0]["containerPort"], 8080);
    assert_eq!(c["ports"][0]["name"], "http-metrics");
    assert_eq!(
        env_of(deployments[0], "POD_NAME").unwrap()["valueFrom"]["fieldRef"]["fieldPath"],
        "metadata.name"
    );
    assert!(env_of(deployments[0], "LOG_LEVEL").is_some());
    assert!(env_of(deployments[0], "LEADER_ELECTION").is_some());
    assert_eq!(
        env_of(deployments[0], "KUBE_API_QPS").unwrap()["value"],
        "0"
    );
    assert_eq!(
        env_of(deployments[0], "KUBE_API_BURST").unwrap()["value"],
        "30"
    );

    // No role the chart ships reads or writes Secrets, and only the aggregated edit role has write
    // verbs on the ECS kinds for users.
    for role in of_kind(docs, "ClusterRole")
        .into_iter()
        .chain(of_kind(docs, "Role"))
    {
        for rule in role["rules"].as_array().unwrap() {
            let resources = rule["resources"].as_array().unwrap();
            assert!(
                !resources.iter().any(|r| r == "secrets" || r == "*"),
                "{} grants {rule}",
                role["metadata"]["name"]
            );
            assert!(
                !rule["verbs"].as_array().unwrap().iter().any(|v| v == "*"),
                "{rule}"
            );
        }
    }
    let view = of_kind(docs, "ClusterRole")
        .into_iter()
        .find(|r| r["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-view"] == "true")
        .expect("an aggregate-to-view ClusterRole");
    for rule in view["rules"].as_array().unwrap() {
        for verb in rule["verbs"].as_array().unwrap() {
            assert!(
                ["get", "list", "watch"].contains(&verb.as_str().unwrap()),
                "view grants {verb}"
            );
        }
    }
    let metrics = of_kind(docs, "Service");
    assert_eq!(metrics.len(), 1);
    assert_eq!(metrics[0]["spec"]["ports"][0]["name"], "http-metrics");
    assert_eq!(metrics[0]["spec"]["ports"][0]["port"], 8080);
    assert_eq!(
        metrics[0]["spec"]["selector"],
        deployments[0]["spec"]["selector"]["matchLabels"]
    );
}

/// Server-side dry run of everything but the ServiceMonitor (its CRD belongs to the Prometheus
/// Operator, which this cluster does not run); Pod Security warnings count as failures. Every object
/// names its namespace (the release's, or a watched one for RoleBindings).
fn dry_run(docs: &[Json]) {
    let stream: String = docs
        .iter()
        .filter(|d| d["kind"] != "ServiceMonitor")
        .map(|d| format!("---\n{}", serde_yaml_ng::to_string(d).unwrap()))
        .collect();
    let out = run(
        "kubectl",
        &[
            "apply",
            "--server-side",
            "--dry-run=server",
            "--field-manager=ecs-operator-tests",
            "-f",
            "-",
        ],
        Some(&stream),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "server-side dry run failed:\n{stderr}"
    );
    assert!(
        !stderr.contains("Warning"),
        "server-side dry run warned:\n{stderr}"
    );
}

#[test]
fn default_values_render_and_pass_a_server_dry_run() {
    require_cluster();
    let ns = Namespace::new(
        "chart-render",
        &["pod-security.kubernetes.io/warn=restricted"],
    );
    let (_, docs) = render("ecs-operator", &ns.0, &[]);
    common_checks(&docs);
    let deployment = of_kind(&docs, "Deployment")[0];
    assert!(
        env_of(deployment, "WATCH_NAMESPACES").is_none(),
        "all namespaces: WATCH_NAMESPACES unset"
    );
    assert_eq!(
        env_of(deployment, "LEADER_ELECTION").unwrap()["value"],
        "true"
    );
    assert_eq!(
        env_of(deployment, "STOPPED_SERVICE_TASKS_KEPT").unwrap()["value"],
        "100"
    );
    assert!(
        of_kind(&docs, "PodDisruptionBudget").is_empty(),
        "a PDB for one replica blocks node drains"
    );
    assert!(of_kind(&docs, "ServiceMonitor").is_empty());
    let bindings: Vec<_> = of_kind(&docs, "ClusterRoleBinding")
        .iter()
        .map(|b| b["roleRef"]["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(bindings, ["ecs-operator-nodes", "ecs-operator"]);
    let leases = of_kind(&docs, "Role");
    assert_eq!(leases.len(), 1);
    assert_eq!(leases[0]["metadata"]["namespace"], ns.0.as_str());
    assert_eq!(
        leases[0]["rules"][0]["resources"],
        serde_json::json!(["leases"])
    );
    // A release named ecs-operator gets the aggregated role names the docs give.
    let names: Vec<_> = of_kind(&docs, "ClusterRole")
        .iter()
        .map(|r| r["metadata"]["name"].clone())
        .collect();
    assert!(
        names.contains(&"ecs-operator-edit".into()) && names.contains(&"ecs-operator-view".into()),
        "{names:?}"
    );
    dry_run(&docs);
}

#[test]
fn watch_namespaces_render_role_bindings_and_pass_a_server_dry_run() {
    require_cluster();
    let ns = Namespace::new(
        "chart-watch",
        &["pod-security.kubernetes.io/warn=restricted"],
    );
    let team_a = Namespace::new("chart-team-a", &[]);
    let team_b = Namespace::new("chart-team-b", &[]);
    let set = format!("watchNamespaces={{{},{}}}", team_a.0, team_b.0);
    let (_, docs) = render("ops", &ns.0, &[&set]);
    common_checks(&docs);
    let deployment = of_kind(&docs, "Deployment")[0];
    assert_eq!(
        env_of(deployment, "WATCH_NAMESPACES").unwrap()["value"],
        format!("{},{}", team_a.0, team_b.0)
    );
    let controller_bindings: Vec<_> = of_kind(&docs, "RoleBinding")
        .into_iter()
        .filter(|b| b["roleRef"]["kind"] == "ClusterRole")
        .map(|b| b["metadata"]["namespace"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(controller_bindings, [team_a.0.clone(), team_b.0.clone()]);
    let cluster_bindings: Vec<_> = of_kind(&docs, "ClusterRoleBinding")
        .iter()
        .map(|b| b["roleRef"]["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        cluster_bindings,
        ["ops-ecs-operator-nodes"],
        "only nodes are granted cluster-wide"
    );
    dry_run(&docs);
}

#[test]
fn two_replicas_render_a_disruption_budget_and_pass_a_server_dry_run() {
    require_cluster();
    let ns = Namespace::new("chart-ha", &["pod-security.kubernetes.io/warn=restricted"]);
    let (_, docs) = render("ha", &ns.0, &["replicas=2"]);
    common_checks(&docs);
    let pdbs = of_kind(&docs, "PodDisruptionBudget");
    assert_eq!(pdbs.len(), 1);
    let deployment = of_kind(&docs, "Deployment")[0];
    assert_eq!(deployment["spec"]["replicas"], 2);
    assert_eq!(
        pdbs[0]["spec"]["selector"]["matchLabels"],
        deployment["spec"]["selector"]["matchLabels"]
    );
    assert_eq!(pdbs[0]["spec"]["maxUnavailable"], 1);
    dry_run(&docs);
}

#[test]
fn service_monitor_renders_and_the_rest_passes_a_server_dry_run() {
    require_cluster();
    let ns = Namespace::new(
        "chart-monitor",
        &["pod-security.kubernetes.io/warn=restricted"],
    );
    let (_, docs) = render(
        "mon",
        &ns.0,
        &[
            "metrics.serviceMonitor.enabled=true",
            "metrics.serviceMonitor.labels.release=prometheus",
        ],
    );
    common_checks(&docs);
    let monitors = of_kind(&docs, "ServiceMonitor");
    assert_eq!(monitors.len(), 1);
    let m = monitors[0];
    assert_eq!(m["apiVersion"], "monitoring.coreos.com/v1");
    assert_eq!(m["metadata"]["labels"]["release"], "prometheus");
    assert_eq!(m["spec"]["endpoints"][0]["port"], "http-metrics");
    assert_eq!(m["spec"]["endpoints"][0]["path"], "/metrics");
    assert_eq!(
        m["spec"]["namespaceSelector"]["matchNames"],
        serde_json::json!([ns.0])
    );
    // It must select the metrics Service.
    let service_labels = &of_kind(&docs, "Service")[0]["metadata"]["labels"];
    for (k, v) in m["spec"]["selector"]["matchLabels"].as_object().unwrap() {
        assert_eq!(
            &service_labels[k], v,
            "ServiceMonitor selects {k}={v}; the Service has {service_labels}"
        );
    }
    dry_run(&docs);
}

/// The CRDs in the chart are accepted by the API server (a dry run of what `helm install` creates).
#[test]
fn chart_crds_pass_a_server_dry_run() {
    require_cluster();
    ok(
        "kubectl",
        &[
            "apply",
            "--server-side",
            "--dry-run=server",
            "--force-conflicts",
            "--field-manager=ecs-operator-tests",
            "-f",
            CHART_CRDS,
        ],
        None,
    );
}

#[test]
fn installs_and_becomes_available_under_restricted_pod_security() {
    require_cluster();
    // Enforced: a pod that is not restricted-compliant is refused, and `--wait` times out.
    let ns = Namespace::new(
        "chart-install",
        &["pod-security.kubernetes.io/enforce=restricted"],
    );
    let release = Release::install(&ns, &["logFormat=json"]);
    let deployment = format!("{}-ecs-operator", release.name);
    let available = ok(
        "kubectl",
        &[
            "get",
            "deployment",
            &deployment,
            "--namespace",
            &ns.0,
            "-o",
            "jsonpath={.status.availableReplicas}",
        ],
        None,
    );
    assert_eq!(available, "1");
    let status = ok(
        "helm",
        &["status", &release.name, "--namespace", &ns.0, "-o", "json"],
        None,
    );
    let status: Json = serde_json::from_str(&status).unwrap();
    assert_eq!(status["info"]["status"], "deployed");
}

#[test]
fn operator_service_account_can_do_its_work_and_read_no_secrets() {
    require_cluster();
    let ns = Namespace::new("chart-rbac", &[]);
    let release = Release::install(&ns, &[]);
    let sa = release.service_account();
    let elsewhere = "default";
    for (verb, resource, sub) in [
        ("create", "pods", None),
        ("delete", "pods", None),
        ("watch", "pods", None),
        // The deployment and production-traffic labels of BLUE_GREEN, LINEAR and CANARY services.
        ("patch", "pods", None),
        ("create", "tasks.ecs.operator.dev", None),
        ("delete", "tasks.ecs.operator.dev", None),
        ("patch", "tasks.ecs.operator.dev", Some("status")),
        ("patch", "taskdefinitions.ecs.operator.dev", Some("status")),
        ("patch", "services.ecs.operator.dev", Some("status")),
        ("watch", "services.ecs.operator.dev", None),
        ("create", "controllerrevisions.apps", None),
        ("list", "controllerrevisions.apps", None),
        ("create", "services", None),
        ("create", "events.events.k8s.io", None),
        ("patch", "events.events.k8s.io", None),
        ("get", "httproutes.gateway.networking.k8s.io", None),
        ("watch", "httproutes.gateway.networking.k8s.io", None),
        ("patch", "httproutes.gateway.networking.k8s.io", None),
    ] {
        for namespace in [ns.0.as_str(), elsewhere] {
            assert!(
                can(&sa, namespace, verb, resource, sub),
                "{sa} cannot {verb} {resource} {sub:?} in {namespace}"
            );
        }
    }
    assert!(
        can(&sa, &ns.0, "list", "nodes", None),
        "{sa} cannot list nodes"
    );
    assert!(
        can(&sa, &ns.0, "watch", "nodes", None),
        "{sa} cannot watch nodes"
    );
    assert!(can(
        &sa,
        &ns.0,
        "update",
        "leases.coordination.k8s.io",
        None
    ));
    assert!(can(
        &sa,
        &ns.0,
        "create",
        "leases.coordination.k8s.io",
        None
    ));
    for (verb, resource, sub, namespace) in [
        ("get", "secrets", None, ns.0.as_str()),
        ("list", "secrets", None, ns.0.as_str()),
        ("get", "secrets", None, elsewhere),
        ("list", "secrets", None, elsewhere),
        ("watch", "secrets", None, elsewhere),
        ("create", "pods", Some("exec"), elsewhere),
        (
            "update",
            "taskdefinitions.ecs.operator.dev",
            None,
            elsewhere,
        ),
        ("delete", "nodes", None, elsewhere),
        ("create", "leases.coordination.k8s.io", None, elsewhere),
        ("create", "configmaps", None, elsewhere),
        ("create", "roles.rbac.authorization.k8s.io", None, elsewhere),
        // Only the weights of routes the user made: never a new route, a Gateway or a deletion.
        (
            "create",
            "httproutes.gateway.networking.k8s.io",
            None,
            elsewhere,
        ),
        (
            "update",
            "httproutes.gateway.networking.k8s.io",
            None,
            elsewhere,
        ),
        (
            "delete",
            "httproutes.gateway.networking.k8s.io",
            None,
            elsewhere,
        ),
        (
            "patch",
            "httproutes.gateway.networking.k8s.io",
            Some("status"),
            elsewhere,
        ),
        (
            "patch",
            "gateways.gateway.networking.k8s.io",
            None,
            elsewhere,
        ),
    ] {
        assert!(
            !can(&sa, namespace, verb, resource, sub),
            "{sa} CAN {verb} {resource} {sub:?} in {namespace}"
        );
    }
}

#[test]
fn watched_namespaces_confine_the_operator() {
    require_cluster();
    let ns = Namespace::new("chart-confined", &[]);
    let watched = Namespace::new("chart-watched", &[]);
    let other = Namespace::new("chart-unwatched", &[]);
    let set = format!("watchNamespaces={{{}}}", watched.0);
    let release = Release::install(&ns, &[&set]);
    let sa = release.service_account();
    assert!(can(&sa, &watched.0, "create", "pods", None));
    assert!(can(
        &sa,
        &watched.0,
        "patch",
        "tasks.ecs.operator.dev",
        Some("status")
    ));
    assert!(can(
        &sa,
        &watched.0,
        "create",
        "controllerrevisions.apps",
        None
    ));
    assert!(
        can(&sa, &ns.0, "list", "nodes", None),
        "nodes stay readable: zones come from them"
    );
    assert!(can(
        &sa,
        &ns.0,
        "update",
        "leases.coordination.k8s.io",
        None
    ));
    for namespace in [other.0.as_str(), ns.0.as_str()] {
        assert!(
            !can(&sa, namespace, "create", "pods", None),
            "pods in unwatched {namespace}"
        );
        assert!(
            !can(&sa, namespace, "list", "tasks.ecs.operator.dev", None),
            "tasks in unwatched {namespace}"
        );
    }
    assert!(!can(&sa, &watched.0, "get", "secrets", None));
}

#[test]
fn edit_can_create_ecs_objects_and_view_cannot() {
    require_cluster();
    let ns = Namespace::new("chart-users", &[]);
    let _release = Release::install(&ns, &[]);
    let editor = unique("editor");
    let viewer = unique("viewer");
    ok(
        "kubectl",
        &[
            "create",
            "rolebinding",
            "editors",
            "--clusterrole=edit",
            &format!("--user={editor}"),
            "-n",
            &ns.0,
        ],
        None,
    );
    ok(
        "kubectl",
        &[
            "create",
            "rolebinding",
            "viewers",
            "--clusterrole=view",
            &format!("--user={viewer}"),
            "-n",
            &ns.0,
        ],
        None,
    );
    for resource in [
        "tasks.ecs.operator.dev",
        "services.ecs.operator.dev",
        "taskdefinitions.ecs.operator.dev",
    ] {
        eventually_can(&editor, &ns.0, "create", resource, true);
        eventually_can(&editor, &ns.0, "delete", resource, true);
        eventually_can(&viewer, &ns.0, "list", resource, true);
        eventually_can(&viewer, &ns.0, "get", resource, true);
        for verb in ["create", "update", "patch", "delete", "deletecollection"] {
            assert!(
                !can(&viewer, &ns.0, verb, resource, None),
                "view can {verb} {resource}"
            );
        }
        // Status is the operator's: users edit spec only.
        assert!(
            !can(&editor, &ns.0, "patch", resource, Some("status")),
            "edit can patch {resource}/status"
        );
    }
    assert!(
        can(
            &editor,
            &ns.0,
            "patch",
            "services.ecs.operator.dev",
            Some("scale")
        ),
        "kubectl scale"
    );
    assert!(!can(
        &viewer,
        &ns.0,
        "patch",
        "services.ecs.operator.dev",
        Some("scale")
    ));
    // The binding is namespaced: nothing elsewhere.
    assert!(!can(
        &editor,
        "default",
        "create",
        "tasks.ecs.operator.dev",
        None
    ));
}

/// Every variable the chart sets is one `ecs-operator run` reads (a misspelt name would be ignored
/// silently), and the values it renders parse.
#[test]
fn the_operator_reads_every_variable_the_chart_sets() {
    require_cluster();
    let binary = env!("CARGO_BIN_EXE_ecs-operator");
    let help = ok(binary, &["run", "--help"], None);
    let (_, docs) = render(
        "env",
        "ops",
        &["watchNamespaces={team-a,team-b}", "logFormat=json"],
    );
    let deployment = of_kind(&docs, "Deployment")[0];
    let env = deployment["spec"]["template"]["spec"]["containers"][0]["env"]
        .as_array()
        .unwrap();
    let mut cmd = Command::new(binary);
    // No cluster configuration: a run that gets past argument parsing stops at once.
    cmd.arg("run")
        .env_clear()
        .env("KUBECONFIG", "/nonexistent/kubeconfig");
    for e in env {
        let name = e["name"].as_str().unwrap();
        // POD_NAME is read directly, as the Events' reporting instance.
        assert!(
            name == "POD_NAME" || help.contains(&format!("[env: {name}=")),
            "the chart sets {name}, which `ecs-operator run` does not read:\n{help}"
        );
        let value = e["value"].as_str().unwrap_or("from-the-downward-api");
        cmd.env(name, value);
    }
    let out = cmd.stdin(Stdio::null()).output().unwrap();
    // clap exits 2 on an argument it cannot parse.
    assert_ne!(
        out.status.code(),
        Some(2),
        "ecs-operator refused the chart's environment:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
