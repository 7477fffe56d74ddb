//! The Argo CD health script, `deploy/argocd/health.lua`, run as Argo CD runs it: the object in the
//! global `obj`, the returned table's `status` and `message` read back. Each fixture in
//! `tests/fixtures/argocd/` is an object and the health Argo CD must show for it.

use std::path::{Path, PathBuf};

use mlua::{Lua, LuaOptions, StdLib, Table, Value};
use serde_json::Value as Json;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn script() -> String {
    std::fs::read_to_string(root().join("deploy/argocd/health.lua"))
        .expect("deploy/argocd/health.lua")
}

/// JSON → Lua as Argo CD converts it: gopher-lua has only float numbers, and JSON null is nil.
fn to_lua(lua: &Lua, value: &Json) -> mlua::Result<Value> {
    Ok(match value {
        Json::Null => Value::Nil,
        Json::Bool(b) => Value::Boolean(*b),
        Json::Number(n) => Value::Number(n.as_f64().expect("a JSON number")),
        Json::String(s) => Value::String(lua.create_string(s)?),
        Json::Array(items) => {
            let t = lua.create_table()?;
            for (i, item) in items.iter().enumerate() {
                t.raw_set(i + 1, to_lua(lua, item)?)?;
            }
            Value::Table(t)
        }
        Json::Object(fields) => {
            let t = lua.create_table()?;
            for (k, v) in fields {
                t.raw_set(k.as_str(), to_lua(lua, v)?)?;
            }
            Value::Table(t)
        }
    })
}

/// (status, message) the script returns for `obj`.
fn health(obj: &Json) -> Result<(String, String), String> {
    // Argo CD opens only these libraries: a script using io, os or utf8 would fail there.
    let lua = Lua::new_with(
        StdLib::TABLE | StdLib::STRING | StdLib::MATH,
        LuaOptions::default(),
    )
    .map_err(|e| e.to_string())?;
    let run = || -> mlua::Result<(String, String)> {
        lua.globals().set("obj", to_lua(&lua, obj)?)?;
        let hs: Table = lua.load(script()).set_name("health.lua").eval()?;
        Ok((
            hs.get("status")?,
            hs.get::<Option<String>>("message")?.unwrap_or_default(),
        ))
    };
    run().map_err(|e| e.to_string())
}

struct Fixture {
    path: PathBuf,
    object: Json,
    status: String,
    message: String,
}

fn fixtures() -> Vec<Fixture> {
    let dir = root().join("tests/fixtures/argocd");
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("tests/fixtures/argocd")
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path).unwrap();
            let doc: Json = serde_yaml_ng::from_str(&text)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let expected = &doc["expected"];
            Fixture {
                object: doc["object"].clone(),
                status: expected["status"]
                    .as_str()
                    .expect("expected.status")
                    .to_string(),
                message: expected["message"]
                    .as_str()
                    .expect("expected.message")
                    .to_string(),
                path,
            }
        })
        .collect()
}

#[test]
fn every_fixture_gets_its_expected_health() {
    let all = fixtures();
    let mut wrong = Vec::new();
    for f in &all {
        match health(&f.object) {
            Ok((status, message)) if status == f.status && message == f.message => {}
            Ok((status, message)) => wrong.push(format!(
                "{}: got {status} {message:?}, expected {} {:?}",
                f.path.display(),
                f.status,
                f.message
            )),
            Err(e) => wrong.push(format!("{}: the script failed: {e}", f.path.display())),
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn fixtures_cover_every_kind_and_outcome() {
    let all = fixtures();
    assert!(all.len() >= 12, "only {} fixtures", all.len());
    for kind in ["TaskDefinition", "Task", "Service"] {
        for status in ["Healthy", "Progressing", "Degraded"] {
            assert!(
                all.iter()
                    .any(|f| f.object["kind"] == kind && f.status == status),
                "no {kind} fixture that is {status}"
            );
        }
    }
    assert!(
        all.iter().any(|f| f.status == "Suspended"),
        "no Suspended fixture"
    );
}

/// A fixture's status must use the field names the operator writes, or the script would be tested
/// against fields that never exist: every field in it survives a round trip through the Rust type.
#[test]
fn fixture_statuses_use_the_operator_field_names() {
    use ecs_operator::api::{ServiceStatus, TaskDefinitionStatus, TaskStatus};

    fn round_trip<T: serde::de::DeserializeOwned + serde::Serialize>(status: &Json) -> Json {
        serde_json::to_value(serde_json::from_value::<T>(status.clone()).expect("a valid status"))
            .unwrap()
    }
    fn missing(fixture: &Json, typed: &Json, at: &str, out: &mut Vec<String>) {
        match (fixture, typed) {
            (Json::Object(f), Json::Object(t)) => {
                for (k, v) in f {
                    match t.get(k) {
                        Some(tv) => missing(v, tv, &format!("{at}.{k}"), out),
                        None => out.push(format!("{at}.{k}")),
                    }
                }
            }
            (Json::Array(f), Json::Array(t)) => {
                for (i, (fv, tv)) in f.iter().zip(t).enumerate() {
                    missing(fv, tv, &format!("{at}[{i}]"), out);
                }
            }
            _ => {}
        }
    }

    let mut dropped = Vec::new();
    for f in fixtures() {
        let status = &f.object["status"];
        if status.is_null() {
            continue;
        }
        let typed = match f.object["kind"].as_str() {
            Some("TaskDefinition") => round_trip::<TaskDefinitionStatus>(status),
            Some("Task") => round_trip::<TaskStatus>(status),
            Some("Service") => round_trip::<ServiceStatus>(status),
            other => panic!("{}: unexpected kind {other:?}", f.path.display()),
        };
        let mut out = Vec::new();
        missing(status, &typed, "status", &mut out);
        dropped.extend(
            out.into_iter()
                .map(|p| format!("{}: {p}", f.path.display())),
        );
    }
    assert!(
        dropped.is_empty(),
        "fields the operator does not write:\n{}",
        dropped.join("\n")
    );
}

/// `deploy/argocd/argocd-cm.yaml`: the script under one key per kind.
fn argocd_cm(script: &str) -> String {
    let mut out = String::from(
        "# Argo CD health checks for ecs-operator's kinds: merge into the argocd-cm ConfigMap, e.g.
#   kubectl -n argocd patch configmap argocd-cm --type merge --patch-file deploy/argocd/argocd-cm.yaml
# Each key holds deploy/argocd/health.lua; generated from it by `UPDATE_ARGOCD_CM=1 cargo test --test argocd_health`.
apiVersion: v1
kind: ConfigMap
metadata:
  name: argocd-cm
  namespace: argocd
  labels:
    app.kubernetes.io/name: argocd-cm
    app.kubernetes.io/part-of: argocd
data:
",
    );
    for kind in ["TaskDefinition", "Task", "Service"] {
        out.push_str(&format!(
            "  resource.customizations.health.ecs.operator.dev_{kind}: |\n"
        ));
        for line in script.lines() {
            if !line.is_empty() {
                out.push_str("    ");
                out.push_str(line);
            }
            out.push('\n');
        }
    }
    out
}

#[test]
fn argocd_cm_holds_the_script_for_each_kind() {
    let path = root().join("deploy/argocd/argocd-cm.yaml");
    let script = script();
    let expected = argocd_cm(&script);
    if std::env::var_os("UPDATE_ARGOCD_CM").is_some() {
        std::fs::write(&path, &expected).unwrap();
    }
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(
        text == expected,
        "deploy/argocd/argocd-cm.yaml is stale: UPDATE_ARGOCD_CM=1 cargo test --test argocd_health"
    );
    // And YAML reads each key back as the script itself.
    let cm: Json = serde_yaml_ng::from_str(&text).unwrap();
    for kind in ["TaskDefinition", "Task", "Service"] {
        let key = format!("resource.customizations.health.ecs.operator.dev_{kind}");
        assert_eq!(cm["data"][&key].as_str(), Some(script.as_str()), "{key}");
    }
}

/// Whatever is missing from a half-written object, the script answers instead of failing (a Lua error
/// shows in Argo CD as a health-check error on every object of the kind).
#[test]
fn sparse_objects_never_fail_the_script() {
    let shapes = [
        serde_json::json!({}),
        serde_json::json!({"status": {}}),
        serde_json::json!({"metadata": {}, "status": {"observedGeneration": 1}}),
        serde_json::json!({"metadata": {"generation": 1}, "spec": {}, "status": {"observedGeneration": 1, "conditions": []}}),
        serde_json::json!({"metadata": {"generation": 1}, "status": {"observedGeneration": 1, "lastStatus": "STOPPED"}}),
        serde_json::json!({"metadata": {"generation": 1}, "status": {"observedGeneration": 1, "lastStatus": "STOPPED", "stopCode": "EssentialContainerExited", "containers": [{"name": "a"}]}}),
        serde_json::json!({"metadata": {"generation": 1}, "status": {"observedGeneration": 1, "lastStatus": "RUNNING", "conditions": [{"type": "Ready"}]}}),
        serde_json::json!({"metadata": {"generation": 1}, "spec": {"desiredCount": 0}, "status": {"observedGeneration": 1, "deployments": [{}]}}),
    ];
    for kind in ["TaskDefinition", "Task", "Service"] {
        for shape in &shapes {
            let mut obj = shape.clone();
            obj["apiVersion"] = "ecs.operator.dev/v1alpha1".into();
            obj["kind"] = kind.into();
            let (status, _) = health(&obj).unwrap_or_else(|e| panic!("{kind} {shape}: {e}"));
            assert!(
                ["Healthy", "Progressing", "Degraded", "Suspended"].contains(&status.as_str()),
                "{kind} {shape}: {status}"
            );
        }
    }
}

#[test]
fn another_kind_is_unknown() {
    let (status, _) = health(&serde_json::json!({"kind": "Pod", "metadata": {}})).unwrap();
    assert_eq!(status, "Unknown");
}
