//! `ecs-operator import service` and `import task`: an ECS service or a RunTask request as Service or
//! Task manifests.
//!
//! Service input: CreateService input (`--cli-input-json`), DescribeServices output (every service
//! in it, read-only fields dropped), or a deploy tool's service definition file (which may leave
//! `serviceName` and `taskDefinition` to the tool: give `--name` / `--task-definition`). Task input:
//! RunTask input; `count: N` becomes N Tasks. As for task definitions, nothing is silently dropped,
//! and names that cannot be Kubernetes names are mapped the same way everywhere: lowercased, `_` →
//! `-` (the task definition reference too, so it names the TaskDefinition that import gave).

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use super::{
    FieldError, ImportError, Imported, Options, join, lenient, lost_fields_of, matches_name_rule,
    schema_errors, yaml,
};
use crate::api::{Service, ServiceSpec, Task, TaskSpec};

/// DescribeServices fields that describe the running service, not a request.
pub const SERVICE_READ_ONLY_FIELDS: &[&str] = &[
    "serviceArn",
    "status",
    "runningCount",
    "pendingCount",
    "deployments",
    "taskSets",
    "events",
    "createdAt",
    "createdBy",
    "platformFamily",
    "currentServiceDeployment",
    "currentServiceRevisions",
    "resourceManagementType",
];

/// What a Service or Task import may be told besides the input.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RefOptions {
    /// Name, namespace and leniency, as for task definitions.
    pub options: Options,
    /// The task definition, when the input leaves it to a deploy tool.
    pub task_definition: Option<String>,
}

/// Imports the services of `json`: one manifest each, in input order.
pub fn services(json: &str, options: &RefOptions) -> Result<Vec<Imported<Service>>, ImportError> {
    let document = object(
        json,
        "a service (CreateService input or DescribeServices output)",
    )?;
    let (items, base): (Vec<Map<String, Value>>, &str) = match document.get("services") {
        Some(Value::Array(list)) => {
            let mut items = Vec::new();
            for (i, s) in list.iter().enumerate() {
                match s {
                    Value::Object(s) => items.push(s.clone()),
                    _ => {
                        return Err(ImportError::one(
                            format!("services[{i}]"),
                            "expected an object",
                        ));
                    }
                }
            }
            if items.is_empty() {
                return Err(ImportError::one("services", "no service to import"));
            }
            if items.len() > 1 && options.options.name.is_some() {
                return Err(ImportError::one(
                    "--name",
                    "names one service, but the input has several",
                ));
            }
            (items, "services")
        }
        _ => (vec![document], ""),
    };
    let wrapped = !base.is_empty();
    let mut out = Vec::new();
    let mut errors = Vec::new();
    for (i, mut item) in items.into_iter().enumerate() {
        let at = if wrapped {
            format!("{base}[{i}]")
        } else {
            String::new()
        };
        let mut notes = Vec::new();
        // DescribeServices spells two request fields differently.
        for (described, request) in [("roleArn", "role"), ("clusterArn", "cluster")] {
            if let Some(v) = item.remove(described) {
                item.entry(request).or_insert(v);
            }
        }
        let dropped: Vec<&str> = SERVICE_READ_ONLY_FIELDS
            .iter()
            .copied()
            .filter(|f| item.remove(*f).is_some())
            .collect();
        if !dropped.is_empty() {
            notes.push(format!(
                "dropped read-only fields (they describe the running service): {}",
                dropped.join(", ")
            ));
        }
        let name_field = item
            .get("serviceName")
            .and_then(Value::as_str)
            .map(str::to_string);
        match service(item, name_field, options, &at, notes) {
            Ok(imported) => out.push(imported),
            Err(e) => errors.extend(e.errors),
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(ImportError { errors })
    }
}

fn service(
    mut item: Map<String, Value>,
    service_name: Option<String>,
    options: &RefOptions,
    at: &str,
    mut notes: Vec<String>,
) -> Result<Imported<Service>, ImportError> {
    let mut errors = Vec::new();
    reference(&mut item, options, &mut notes, &mut errors);
    let name = object_name(
        options.options.name.as_deref(),
        service_name.as_deref(),
        "serviceName",
        52,
        &mut errors,
    );
    if let Some(name) = &name
        && service_name.as_deref().is_some_and(|s| s != name)
    {
        item.remove("serviceName");
        notes.push(format!(
            "serviceName \"{}\" becomes metadata.name \"{name}\"; spec.serviceName is left out because it must equal metadata.name",
            service_name.unwrap_or_default()
        ));
    }
    let spec: Option<ServiceSpec> = typed(item, &options.options, &mut notes, &mut errors);
    finish(errors, at, || {
        let mut manifest = Service::new(&name.expect("no errors"), spec.expect("no errors"));
        manifest.metadata.namespace = options.options.namespace.clone();
        manifest
    })
    .map(|manifest| imported(manifest, notes))
}

/// Imports a RunTask request: `count` Tasks (1 when absent), named `<name>` or `<name>-1` … `<name>-N`.
pub fn tasks(json: &str, options: &RefOptions) -> Result<Vec<Imported<Task>>, ImportError> {
    let mut item = object(json, "a RunTask request")?;
    let mut notes = Vec::new();
    let mut errors = Vec::new();
    let count = match item.remove("count") {
        None | Some(Value::Null) => 1,
        Some(Value::Number(n)) if n.as_u64().is_some_and(|n| (1..=10).contains(&n)) => {
            n.as_u64().unwrap_or(1) as usize
        }
        Some(other) => {
            return Err(ImportError::one(
                "count",
                format!("{other} is not a task count (1 to 10, as in RunTask)"),
            ));
        }
    };
    let family = reference(&mut item, options, &mut notes, &mut errors);
    let base = object_name(
        options.options.name.as_deref(),
        family.as_deref(),
        "taskDefinition",
        if count > 1 { 60 } else { 63 },
        &mut errors,
    );
    let spec: Option<TaskSpec> = typed(item, &options.options, &mut notes, &mut errors);
    let manifests = finish(errors, "", || {
        let base = base.expect("no errors");
        (1..=count)
            .map(|i| {
                let name = if count > 1 {
                    format!("{base}-{i}")
                } else {
                    base.clone()
                };
                let mut task = Task::new(&name, spec.clone().expect("no errors"));
                task.metadata.namespace = options.options.namespace.clone();
                task
            })
            .collect::<Vec<_>>()
    })?;
    if count > 1 {
        notes.push(format!(
            "count {count} becomes {count} Tasks (one Task is one task)"
        ));
    }
    Ok(manifests
        .into_iter()
        .map(|m| imported(m, notes.clone()))
        .collect())
}

fn object(json: &str, what: &str) -> Result<Map<String, Value>, ImportError> {
    match serde_json::from_str(json) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(ImportError::one(
            "",
            format!("expected a JSON object ({what})"),
        )),
        Err(e) => Err(ImportError::one("", format!("not valid JSON: {e}"))),
    }
}

/// Sets `taskDefinition` to the reference the TaskDefinition import gives: a family is mapped like a
/// task definition's name, an ARN gives its family. A revision number in the input is not kept:
/// revisions are numbered by the cluster that registers them (the imported task definition is
/// revision 1 here, whatever it was on ECS), so `family:42` would name a revision that does not
/// exist and the service would never start. `--task-definition family:N` is taken as given, for a
/// revision of this cluster. Returns the mapped family.
fn reference(
    item: &mut Map<String, Value>,
    options: &RefOptions,
    notes: &mut Vec<String>,
    errors: &mut Vec<FieldError>,
) -> Option<String> {
    if let Some(given) = &options.task_definition {
        item.insert("taskDefinition".into(), Value::String(given.clone()));
    }
    let Some(Value::String(given)) = item.get("taskDefinition").cloned() else {
        let message = match item.get("taskDefinition") {
            None | Some(Value::Null) => "missing: add it to the input or pass --task-definition",
            Some(_) => "expected a string: family, family:revision or a task definition ARN",
        };
        errors.push(FieldError {
            path: "taskDefinition".into(),
            message: message.into(),
        });
        // A stand-in, so that the rest of the input is still checked (and reported) in one go.
        item.insert("taskDefinition".into(), Value::String("missing".into()));
        return None;
    };
    match task_definition_ref(&given) {
        Ok((family, mapped)) => {
            let from_input = options.task_definition.is_none();
            if from_input && mapped != family {
                notes.push(format!(
                    "taskDefinition \"{given}\" becomes \"{family}\" (its latest revision): revision numbers are not carried over (an imported task definition registers as revision 1); pass --task-definition {family}:N to pin a revision registered here"
                ));
                item.insert("taskDefinition".into(), Value::String(family.clone()));
            } else if mapped != given {
                notes.push(format!("taskDefinition \"{given}\" becomes \"{mapped}\""));
                item.insert("taskDefinition".into(), Value::String(mapped));
            }
            Some(family)
        }
        Err(message) => {
            errors.push(FieldError {
                path: "taskDefinition".into(),
                message,
            });
            None
        }
    }
}

/// `family`, `family:revision` or a task definition ARN → (family, reference), both mapped as a
/// TaskDefinition's name is.
pub fn task_definition_ref(given: &str) -> Result<(String, String), String> {
    let tail = match given.strip_prefix("arn:") {
        Some(_) => given
            .split_once(":task-definition/")
            .map(|(_, t)| t)
            .ok_or_else(|| format!("\"{given}\" is not a task definition ARN"))?,
        None => given,
    };
    let (family, revision) = match tail.rsplit_once(':') {
        Some((f, r)) => (f, Some(r)),
        None => (tail, None),
    };
    let mapped = family.to_lowercase().replace('_', "-");
    if !matches_name_rule(&mapped) || mapped.len() > 255 {
        return Err(format!(
            "\"{given}\": the family \"{family}\" cannot name a TaskDefinition (lowercase letters, digits and hyphens)"
        ));
    }
    match revision {
        None => Ok((mapped.clone(), mapped)),
        Some(r) if !r.starts_with('0') && r.len() <= 9 && r.bytes().all(|b| b.is_ascii_digit()) => {
            Ok((mapped.clone(), format!("{mapped}:{r}")))
        }
        Some(r) => Err(format!("\"{given}\": \"{r}\" is not a revision number")),
    }
}

/// metadata.name: `--name`, or `from` mapped (lowercased, `_` → `-`), at most `max` characters.
fn object_name(
    option: Option<&str>,
    from: Option<&str>,
    field: &str,
    max: usize,
    errors: &mut Vec<FieldError>,
) -> Option<String> {
    let (path, name) = match (option, from) {
        (Some(n), _) => ("--name", n.to_string()),
        (None, Some(f)) => (field, f.to_lowercase().replace('_', "-")),
        (None, None) => {
            errors.push(FieldError {
                path: field.into(),
                message: format!("missing: {field} gives metadata.name; add it or pass --name"),
            });
            return None;
        }
    };
    if matches_name_rule(&name) && name.len() <= max {
        Some(name)
    } else {
        errors.push(FieldError {
            path: path.into(),
            message: format!(
                "\"{name}\" cannot be metadata.name: lowercase letters, digits and hyphens, starting and ending with a letter or digit, at most {max} characters; pass --name"
            ),
        });
        None
    }
}

/// The spec, typed, with nothing lost and the schema's bounds checked.
fn typed<S>(
    item: Map<String, Value>,
    options: &Options,
    notes: &mut Vec<String>,
    errors: &mut Vec<FieldError>,
) -> Option<S>
where
    S: DeserializeOwned + Serialize + SpecSchema,
{
    let schema = S::schema();
    let mut input = Value::Object(item);
    if options.drop_unknown_fields {
        let mut dropped = Vec::new();
        lenient::drop_unknown(&mut input, schema, "", &mut dropped);
        if !dropped.is_empty() {
            notes.push(format!("dropped unknown fields: {}", dropped.join(", ")));
        }
    }
    lenient::coerce_scalars(&mut input, schema, "", notes);
    let spec: S = match serde_path_to_error::deserialize(&input) {
        Ok(s) => s,
        Err(e) => {
            let path = e.path().to_string();
            errors.push(FieldError {
                path: if path == "." { String::new() } else { path },
                message: e.inner().to_string().replace('`', "\""),
            });
            return None;
        }
    };
    let output = serde_json::to_value(&spec).expect("a spec always serializes");
    lost_fields_of(S::KIND, &input, &output, "", errors);
    schema_errors(&output, schema, "", errors);
    Some(spec)
}

fn finish<T>(
    mut errors: Vec<FieldError>,
    at: &str,
    build: impl FnOnce() -> T,
) -> Result<T, ImportError> {
    if errors.is_empty() {
        return Ok(build());
    }
    for e in &mut errors {
        if !e.path.starts_with("--") {
            e.path = join(at, &e.path);
        }
    }
    Err(ImportError { errors })
}

fn imported<K: Serialize>(manifest: K, notes: Vec<String>) -> Imported<K> {
    let yaml = yaml::to_string(&manifest);
    Imported {
        manifest,
        yaml,
        notes,
    }
}

/// The CRD's OpenAPI schema of a spec type.
pub trait SpecSchema {
    const KIND: &'static str;
    fn schema() -> &'static Value;
}

macro_rules! spec_schema {
    ($spec:ty, $kind:ty) => {
        impl SpecSchema for $spec {
            const KIND: &'static str = stringify!($kind);
            fn schema() -> &'static Value {
                static SCHEMA: std::sync::OnceLock<Value> = std::sync::OnceLock::new();
                SCHEMA.get_or_init(|| {
                    super::crd_spec_schema(<$kind as kube::CustomResourceExt>::crd())
                })
            }
        }
    };
}
spec_schema!(ServiceSpec, Service);
spec_schema!(TaskSpec, Task);

#[cfg(test)]
mod tests;
