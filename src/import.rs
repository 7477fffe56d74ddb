//! `ecs-operator import task-definition`: turn an ECS task definition (JSON) into a TaskDefinition
//! manifest.
//!
//! The input is what people already have: the RegisterTaskDefinition input (`--cli-input-json`), the
//! console's JSON view, or DescribeTaskDefinition output (`{"taskDefinition": {...}, "tags": [...]}`).
//! The import is strict: every field must survive the trip into `TaskDefinitionSpec`, because a
//! real ECS field that our types lack must be reported, never silently dropped. Checks that the API
//! server would run (the CRD's schema bounds and CEL rules) run here too, so mistakes show before
//! `kubectl apply`.
//!
//! [`task_definition`] is pure (text in, manifest out); [`run`] is the command-line edge around it.

use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::OnceLock;

use clap::Subcommand;
use kube::CustomResourceExt;
use serde_json::{Map, Value};

mod cel;
mod lenient;
pub mod service;
mod yaml;

use crate::api::TaskDefinition;
use crate::api::task_definition::TaskDefinitionSpec;

/// What `ecs-operator import` can convert.
#[derive(Subcommand, Debug, Clone)]
pub enum ImportCommand {
    /// Convert an ECS task definition (RegisterTaskDefinition input or DescribeTaskDefinition output)
    /// into a TaskDefinition manifest, printed on stdout.
    TaskDefinition {
        /// The JSON file to read, or `-` for stdin.
        file: PathBuf,
        /// metadata.namespace of the manifest (omitted when not given).
        #[arg(long)]
        namespace: Option<String>,
        /// metadata.name of the manifest. Defaults to the family, lowercased with `_` → `-`.
        #[arg(long)]
        name: Option<String>,
        /// Drop keys that no TaskDefinition field has (a deploy tool's own keys, such as a top-level
        /// `Tags`), listing them on stderr, instead of refusing the input.
        #[arg(long)]
        drop_unknown_fields: bool,
    },
    /// Convert an ECS service (CreateService input, DescribeServices output with one or more
    /// services, or a deploy tool's service definition) into Service manifests, printed on stdout.
    Service {
        /// The JSON file to read, or `-` for stdin.
        file: PathBuf,
        /// metadata.namespace of the manifests (omitted when not given).
        #[arg(long)]
        namespace: Option<String>,
        /// metadata.name (one service only). Defaults to serviceName, lowercased with `_` → `-`.
        #[arg(long)]
        name: Option<String>,
        /// The task definition (`family`, `family:revision` or an ARN), when the input leaves it out.
        #[arg(long)]
        task_definition: Option<String>,
        /// Drop keys that no Service field has, listing them on stderr, instead of refusing them.
        #[arg(long)]
        drop_unknown_fields: bool,
    },
    /// Convert a RunTask request into Task manifests (`count: N` gives N Tasks), printed on stdout.
    Task {
        /// The JSON file to read, or `-` for stdin.
        file: PathBuf,
        /// metadata.namespace of the manifests (omitted when not given).
        #[arg(long)]
        namespace: Option<String>,
        /// metadata.name (`<name>-1` … with a count). Defaults to the task definition's family.
        #[arg(long)]
        name: Option<String>,
        /// The task definition (`family`, `family:revision` or an ARN), when the input leaves it out.
        #[arg(long)]
        task_definition: Option<String>,
        /// Drop keys that no Task field has, listing them on stderr, instead of refusing them.
        #[arg(long)]
        drop_unknown_fields: bool,
    },
}

/// Where the manifest goes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Options {
    /// metadata.name; derived from `family` when absent.
    pub name: Option<String>,
    /// metadata.namespace; omitted when absent.
    pub namespace: Option<String>,
    /// Drop keys no TaskDefinition field has (with a note naming them) instead of refusing them.
    pub drop_unknown_fields: bool,
}

/// A successful import.
#[derive(Debug, Clone)]
pub struct Imported<K = TaskDefinition> {
    /// The manifest as an object.
    pub manifest: K,
    /// The manifest as YAML, ready for `kubectl apply -f -`.
    pub yaml: String,
    /// Things the user should know that are not errors (dropped read-only fields, renamed family).
    pub notes: Vec<String>,
}

/// One problem, named by the path of the field in the input (`containerDefinitions[0].name`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// JSON path in the input; empty for the document as a whole.
    pub path: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

/// Why an import failed: every problem found, in input order where there is one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ImportError {
    /// At least one.
    pub errors: Vec<FieldError>,
}

impl fmt::Display for ImportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.errors.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl ImportError {
    fn one(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            errors: vec![FieldError {
                path: path.into(),
                message: message.into(),
            }],
        }
    }
}

/// Fields that DescribeTaskDefinition returns but RegisterTaskDefinition does not accept: they
/// describe a registered revision, which the operator assigns itself.
pub const READ_ONLY_FIELDS: &[&str] = &[
    "taskDefinitionArn",
    "revision",
    "status",
    "registeredAt",
    "registeredBy",
    "deregisteredAt",
    "requiresAttributes",
    "compatibilities",
];

/// The shape Kubernetes object names must have, and the CRD's rule for metadata.name.
const NAME_RULE: &str = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$";

/// Import one task definition from JSON text.
pub fn task_definition(json: &str, options: &Options) -> Result<Imported, ImportError> {
    let document: Value = serde_json::from_str(json)
        .map_err(|e| ImportError::one("", format!("not valid JSON: {e}")))?;
    let Value::Object(mut document) = document else {
        return Err(ImportError::one(
            "",
            "expected a JSON object (a task definition or DescribeTaskDefinition output)",
        ));
    };
    let mut notes = Vec::new();

    // DescribeTaskDefinition output: unwrap it and fold its resource tags into the spec.
    let (mut input, base) = match document.remove("taskDefinition") {
        None => (document, String::new()),
        Some(Value::Object(inner)) => {
            let mut inner = inner;
            let outer_tags = document.remove("tags");
            if options.drop_unknown_fields {
                let mut dropped = Vec::new();
                lenient::drop_wrapper_keys(&mut document, &mut dropped);
                if !dropped.is_empty() {
                    notes.push(format!("dropped unknown fields: {}", dropped.join(", ")));
                }
            }
            if let Some(key) = document.keys().next() {
                return Err(ImportError::one(
                    key.clone(),
                    "unknown field next to taskDefinition (DescribeTaskDefinition output has only taskDefinition and tags)",
                ));
            }
            merge_tags(&mut inner, outer_tags)?;
            (inner, "taskDefinition".to_string())
        }
        Some(_) => {
            return Err(ImportError::one(
                "taskDefinition",
                "expected an object (DescribeTaskDefinition output)",
            ));
        }
    };
    let at = |path: &str| join(&base, path);

    let dropped: Vec<&str> = READ_ONLY_FIELDS
        .iter()
        .copied()
        .filter(|f| input.remove(*f).is_some())
        .collect();
    if !dropped.is_empty() {
        notes.push(format!(
            "dropped read-only fields (they describe a registered revision): {}",
            dropped.join(", ")
        ));
    }

    let mut input = Value::Object(input);
    if options.drop_unknown_fields {
        let mut dropped = Vec::new();
        lenient::drop_unknown(&mut input, spec_schema(), &base, &mut dropped);
        if !dropped.is_empty() {
            notes.push(format!("dropped unknown fields: {}", dropped.join(", ")));
        }
    }
    lenient::coerce_scalars(&mut input, spec_schema(), &base, &mut notes);
    let mut spec: TaskDefinitionSpec = serde_path_to_error::deserialize(&input).map_err(|e| {
        let path = e.path().to_string();
        let path = if path == "." { String::new() } else { path };
        // serde quotes with backticks; the rest of the tool (and kubectl) uses double quotes.
        ImportError::one(at(&path), e.inner().to_string().replace('`', "\""))
    })?;

    let mut errors = Vec::new();
    let output = serde_json::to_value(&spec).expect("a spec always serializes");
    lost_fields(&input, &output, "", &mut errors);

    let name = match resolve_name(&spec, options) {
        Ok(name) => Some(name),
        Err(e) => {
            errors.push(e);
            None
        }
    };
    if let Some(name) = &name {
        if name.len() > 63 {
            notes.push(format!(
                "metadata.name \"{name}\" is longer than 63 characters; names of the task's pods and labels may not fit"
            ));
        }
        if let Some(family) = spec.family.take() {
            if family == *name {
                spec.family = Some(family);
            } else {
                notes.push(format!(
                    "family \"{family}\" becomes metadata.name \"{name}\"; spec.family is left out because it must equal metadata.name"
                ));
            }
        }
    }
    if let Some(namespace) = &options.namespace
        && !is_dns_label(namespace)
    {
        errors.push(FieldError {
            path: "--namespace".into(),
            message: format!(
                "\"{namespace}\" is not a namespace name: lowercase letters, digits and hyphens, at most 63, starting and ending with a letter or digit"
            ),
        });
    }

    let output = serde_json::to_value(&spec).expect("a spec always serializes");
    schema_errors(&output, spec_schema(), "", &mut errors);
    notes.extend(ignored_health_checks(&spec).map(|path| {
        format!(
            "{}: starts with neither CMD nor CMD-SHELL; ECS accepts it and Docker ignores the health check, so the container has no health check",
            at(&path)
        )
    }));

    if !errors.is_empty() {
        for e in &mut errors {
            if !e.path.starts_with("--") {
                e.path = at(&e.path);
            }
        }
        return Err(ImportError { errors });
    }

    let name = name.expect("no errors means a name");
    let mut manifest = TaskDefinition::new(&name, spec);
    manifest.metadata.namespace = options.namespace.clone();
    let yaml = yaml::to_string(&manifest);
    Ok(Imported {
        manifest,
        yaml,
        notes,
    })
}

/// Read the input: a file, or stdin for `-`.
pub fn read_input(path: &Path) -> std::io::Result<String> {
    if path == Path::new("-") {
        let mut text = String::new();
        std::io::stdin().read_to_string(&mut text)?;
        Ok(text)
    } else {
        std::fs::read_to_string(path)
    }
}

/// The command-line edge: read, import, print the manifests on stdout and notes/errors on stderr.
pub fn run(command: ImportCommand) -> ExitCode {
    let services = matches!(command, ImportCommand::Service { .. });
    let (file, result) = match command {
        ImportCommand::TaskDefinition {
            file,
            namespace,
            name,
            drop_unknown_fields,
        } => {
            let options = Options {
                name,
                namespace,
                drop_unknown_fields,
            };
            let result = read(&file)
                .and_then(|text| task_definition(&text, &options).map(|i| vec![(i.yaml, i.notes)]));
            (file, result)
        }
        ImportCommand::Service {
            file,
            namespace,
            name,
            task_definition,
            drop_unknown_fields,
        }
        | ImportCommand::Task {
            file,
            namespace,
            name,
            task_definition,
            drop_unknown_fields,
        } => {
            let options = service::RefOptions {
                options: Options {
                    name,
                    namespace,
                    drop_unknown_fields,
                },
                task_definition,
            };
            let result = read(&file).and_then(|text| {
                if services {
                    service::services(&text, &options)
                        .map(|all| all.into_iter().map(|i| (i.yaml, i.notes)).collect())
                } else {
                    service::tasks(&text, &options)
                        .map(|all| all.into_iter().map(|i| (i.yaml, i.notes)).collect())
                }
            });
            (file, result)
        }
    };
    match result {
        Ok(documents) => {
            let mut seen = std::collections::BTreeSet::new();
            for (_, notes) in &documents {
                for note in notes.iter().filter(|n| seen.insert(n.as_str())) {
                    eprintln!("note: {note}");
                }
            }
            let yaml: Vec<&str> = documents.iter().map(|(y, _)| y.as_str()).collect();
            print!("{}", yaml.join("---\n"));
            ExitCode::SUCCESS
        }
        Err(e) => {
            for error in &e.errors {
                if error.path == "--read" {
                    eprintln!("error: cannot read {}: {}", file.display(), error.message);
                } else {
                    eprintln!("error: {error}");
                }
            }
            ExitCode::FAILURE
        }
    }
}

fn read(file: &Path) -> Result<String, ImportError> {
    read_input(file).map_err(|e| ImportError::one("--read", e.to_string()))
}

fn join(base: &str, path: &str) -> String {
    match (base.is_empty(), path.is_empty()) {
        (true, _) => path.to_string(),
        (false, true) => base.to_string(),
        (false, false) if path.starts_with('[') => format!("{base}{path}"),
        (false, false) => format!("{base}.{path}"),
    }
}

/// Describe output carries resource tags beside `taskDefinition`; they belong in `spec.tags`.
/// A tag given in both places keeps the outer value (it is the one AWS reports for the resource).
fn merge_tags(inner: &mut Map<String, Value>, outer: Option<Value>) -> Result<(), ImportError> {
    let outer = match outer {
        None | Some(Value::Null) => return Ok(()),
        Some(Value::Array(outer)) => outer,
        Some(_) => {
            return Err(ImportError::one(
                "tags",
                "expected an array of {key, value}",
            ));
        }
    };
    if outer.is_empty() {
        return Ok(());
    }
    let tags = inner
        .entry("tags")
        .or_insert_with(|| Value::Array(Vec::new()));
    if tags.is_null() {
        *tags = Value::Array(Vec::new());
    }
    let Value::Array(tags) = tags else {
        return Err(ImportError::one(
            "taskDefinition.tags",
            "expected an array of {key, value}",
        ));
    };
    for tag in outer {
        let key = tag.get("key").cloned();
        match tags
            .iter_mut()
            .find(|t| key.is_some() && t.get("key") == key.as_ref())
        {
            Some(existing) => *existing = tag,
            None => tags.push(tag),
        }
    }
    Ok(())
}

/// Every field of `input` that did not come back in `output`: an ECS field our types lack (or a
/// typo), which a plain serde deserialization would silently drop. `null` counts as absent.
fn lost_fields(input: &Value, output: &Value, path: &str, errors: &mut Vec<FieldError>) {
    lost_fields_of("TaskDefinition", input, output, path, errors)
}

fn lost_fields_of(
    kind: &str,
    input: &Value,
    output: &Value,
    path: &str,
    errors: &mut Vec<FieldError>,
) {
    match (input, output) {
        (Value::Null, _) => {}
        (Value::Object(input), Value::Object(output)) => {
            for (key, value) in input {
                let here = join(path, key);
                match output.get(key) {
                    _ if value.is_null() => {}
                    Some(out) => lost_fields_of(kind, value, out, &here, errors),
                    None => errors.push(FieldError {
                        path: here,
                        message: format!(
                            "unknown field \"{key}\": the {kind} API has no such field, so importing would lose it"
                        ),
                    }),
                }
            }
        }
        (Value::Array(input), Value::Array(output)) if input.len() == output.len() => {
            for (i, (a, b)) in input.iter().zip(output).enumerate() {
                lost_fields_of(kind, a, b, &format!("{path}[{i}]"), errors);
            }
        }
        (input, output) if input == output => {}
        (input, output) => errors.push(FieldError {
            path: path.to_string(),
            message: format!("value {input} would change to {output} on import"),
        }),
    }
}

fn is_dns_label(s: &str) -> bool {
    s.len() <= 63 && matches_name_rule(s)
}

/// The CRD's name rule (`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`), without the length bound.
fn matches_name_rule(s: &str) -> bool {
    let bytes = s.as_bytes();
    let ok = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    !bytes.is_empty()
        && ok(&bytes[0])
        && ok(&bytes[bytes.len() - 1])
        && bytes.iter().all(|b| ok(b) || *b == b'-')
}

/// metadata.name: `--name`, or the family lowercased with `_` → `-` (ECS families allow both,
/// Kubernetes names neither).
fn resolve_name(spec: &TaskDefinitionSpec, options: &Options) -> Result<String, FieldError> {
    let rule = format!(
        "lowercase letters, digits and hyphens, starting and ending with a letter or digit ({NAME_RULE})"
    );
    if let Some(name) = &options.name {
        return if matches_name_rule(name) {
            Ok(name.clone())
        } else {
            Err(FieldError {
                path: "--name".into(),
                message: format!("\"{name}\" is not a valid TaskDefinition name: {rule}"),
            })
        };
    }
    let Some(family) = &spec.family else {
        return Err(FieldError {
            path: "family".into(),
            message: "missing: the family becomes metadata.name; add it or pass --name".into(),
        });
    };
    let name = family.to_lowercase().replace('_', "-");
    if matches_name_rule(&name) {
        Ok(name)
    } else {
        Err(FieldError {
            path: "family".into(),
            message: format!(
                "\"{family}\" cannot become metadata.name (\"{name}\" is not {rule}); pass --name"
            ),
        })
    }
}

/// The CRD's OpenAPI schema of `spec`, as JSON.
fn spec_schema() -> &'static Value {
    static SCHEMA: OnceLock<Value> = OnceLock::new();
    SCHEMA.get_or_init(|| crd_spec_schema(TaskDefinition::crd()))
}

fn crd_spec_schema(
    crd: k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
) -> Value {
    let crd = serde_json::to_value(crd).expect("a CRD always serializes");
    crd.pointer("/spec/versions/0/schema/openAPIV3Schema/properties/spec")
        .cloned()
        .expect("every CRD has a spec schema")
}

/// What the API server checks from the schema: ranges, lengths, item counts, enums, and every CEL
/// rule (`x-kubernetes-validations`, evaluated by [`cel`]; a rule it cannot evaluate is left to the
/// API server).
fn schema_errors(value: &Value, schema: &Value, path: &str, errors: &mut Vec<FieldError>) {
    // A field already reported (while converting it) keeps that, more specific, error alone.
    let reported: Vec<String> = errors.iter().map(|e| e.path.clone()).collect();
    check_schema(value, schema, path, &reported, errors);
}

fn check_schema(
    value: &Value,
    schema: &Value,
    path: &str,
    reported: &[String],
    errors: &mut Vec<FieldError>,
) {
    let mut fail = |message: String| {
        errors.push(FieldError {
            path: path.to_string(),
            message,
        })
    };
    let num = |key: &str| schema.get(key).and_then(Value::as_f64);
    let count = |key: &str| schema.get(key).and_then(Value::as_u64);
    match value {
        Value::Number(n) => {
            let n = n.as_f64().unwrap_or_default();
            if let Some(min) = num("minimum")
                && n < min
            {
                fail(format!("{n} must be greater than or equal to {min}"));
            }
            if let Some(max) = num("maximum")
                && n > max
            {
                fail(format!("{n} must be less than or equal to {max}"));
            }
        }
        Value::String(s) => {
            let len = s.chars().count() as u64;
            if let Some(min) = count("minLength")
                && len < min
            {
                fail(format!("must be at least {min} characters long"));
            }
            if let Some(max) = count("maxLength")
                && len > max
            {
                fail(format!(
                    "may not be longer than {max} characters (is {len})"
                ));
            }
            if let Some(allowed) = schema.get("enum").and_then(Value::as_array)
                && !allowed.iter().any(|a| a.as_str() == Some(s))
            {
                let allowed: Vec<String> = allowed.iter().map(|a| a.to_string()).collect();
                fail(format!(
                    "unsupported value \"{s}\": supported values: {}",
                    allowed.join(", ")
                ));
            }
            // A JSON string is a CEL string literal.
            if let Some(pattern) = schema.get("pattern")
                && matches!(
                    cel::check(&format!("self.matches({pattern})"), value),
                    cel::Verdict::Fails(_)
                )
            {
                fail(format!("\"{s}\" must match {pattern}"));
            }
        }
        Value::Array(items) => {
            let len = items.len() as u64;
            if let Some(min) = count("minItems")
                && len < min
            {
                fail(format!("must have at least {min} items"));
            }
            if let Some(max) = count("maxItems")
                && len > max
            {
                fail(format!("must have at most {max} items (has {len})"));
            }
        }
        Value::Object(_) | Value::Null | Value::Bool(_) => {}
    }
    for rule in schema
        .get("x-kubernetes-validations")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let text = rule.get("rule").and_then(Value::as_str).unwrap_or_default();
        let message = rule.get("message").and_then(Value::as_str).unwrap_or(text);
        if let cel::Verdict::Fails(places) = cel::check(text, value) {
            for place in places {
                let path = join(path, place.strip_prefix('.').unwrap_or(&place));
                if reported.contains(&path) {
                    continue;
                }
                let message = match value {
                    Value::String(s) if place.is_empty() => format!("\"{s}\": {message}"),
                    _ => message.to_string(),
                };
                errors.push(FieldError { path, message });
            }
        }
    }
    match value {
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items") {
                for (i, item) in items.iter().enumerate() {
                    check_schema(item, item_schema, &format!("{path}[{i}]"), reported, errors);
                }
            }
        }
        Value::Object(fields) => {
            let properties = schema.get("properties").and_then(Value::as_object);
            let additional = schema.get("additionalProperties").filter(|s| s.is_object());
            for (key, field) in fields {
                let field_schema = properties.and_then(|p| p.get(key)).or(additional);
                if let Some(field_schema) = field_schema {
                    check_schema(field, field_schema, &join(path, key), reported, errors);
                }
            }
        }
        _ => {}
    }
}

/// Paths of the health check commands Docker ignores (neither `CMD` nor `CMD-SHELL` first).
fn ignored_health_checks(spec: &TaskDefinitionSpec) -> impl Iterator<Item = String> + '_ {
    spec.container_definitions
        .iter()
        .enumerate()
        .filter(|(_, c)| {
            c.health_check.as_ref().is_some_and(|h| {
                !matches!(
                    h.command.first().map(String::as_str),
                    Some("CMD" | "CMD-SHELL")
                )
            })
        })
        .map(|(i, _)| format!("containerDefinitions[{i}].healthCheck.command"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn import(value: Value) -> Result<Imported, ImportError> {
        task_definition(&value.to_string(), &Options::default())
    }

    fn errors(value: Value) -> Vec<String> {
        import(value)
            .expect_err("should fail")
            .errors
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    fn minimal() -> Value {
        json!({"family": "web", "containerDefinitions": [{"name": "app", "image": "nginx"}]})
    }

    #[test]
    fn minimal_definition_becomes_a_manifest() {
        let imported = import(minimal()).unwrap();
        assert_eq!(imported.manifest.metadata.name.as_deref(), Some("web"));
        assert_eq!(imported.manifest.spec.family.as_deref(), Some("web"));
        assert!(imported.notes.is_empty());
        assert!(imported.yaml.starts_with("apiVersion: ecs.operator.dev/v1alpha1\nkind: TaskDefinition\nmetadata:\n  name: web\nspec:\n"), "{}", imported.yaml);
        assert!(!imported.yaml.contains("status"), "{}", imported.yaml);
    }

    #[test]
    fn type_errors_name_the_field_path() {
        let mut td = minimal();
        td["containerDefinitions"][0]["portMappings"] =
            json!([{"containerPort": 80, "protocol": "http"}]);
        assert_eq!(
            errors(td),
            [
                "containerDefinitions[0].portMappings[0].protocol: unknown variant \"http\", expected \"tcp\" or \"udp\""
            ]
        );
    }

    #[test]
    fn missing_required_fields_are_named() {
        let td = json!({"family": "web", "containerDefinitions": [{"name": "app"}]});
        assert_eq!(
            errors(td),
            ["containerDefinitions[0]: missing field \"image\""]
        );
    }

    #[test]
    fn unknown_fields_are_errors_not_silently_dropped() {
        let mut td = minimal();
        td["containerDefinitions"][0]["networkMode"] = json!("host");
        td["volumez"] = json!([]);
        let errs = errors(td);
        assert_eq!(errs.len(), 2, "{errs:?}");
        assert!(errs[0].starts_with("containerDefinitions[0].networkMode: unknown field"));
        assert!(errs[1].starts_with("volumez: unknown field"));
    }

    #[test]
    fn nulls_count_as_absent() {
        let mut td = minimal();
        td["cpu"] = Value::Null;
        td["containerDefinitions"][0]["healthCheck"] = Value::Null;
        let imported = import(td).unwrap();
        assert_eq!(imported.manifest.spec.cpu, None);
    }

    #[test]
    fn describe_output_is_unwrapped_read_only_fields_dropped_and_tags_merged() {
        let mut inner = minimal();
        inner["revision"] = json!(3);
        inner["status"] = json!("ACTIVE");
        inner["compatibilities"] = json!(["EC2"]);
        inner["tags"] = json!([{"key": "team", "value": "a"}, {"key": "env", "value": "dev"}]);
        let doc = json!({"taskDefinition": inner, "tags": [{"key": "env", "value": "prod"}, {"key": "x", "value": "y"}]});
        let imported = import(doc).unwrap();
        let tags = serde_json::to_value(&imported.manifest.spec.tags).unwrap();
        assert_eq!(
            tags,
            json!([{"key": "team", "value": "a"}, {"key": "env", "value": "prod"}, {"key": "x", "value": "y"}])
        );
        assert_eq!(
            imported.notes,
            [
                "dropped read-only fields (they describe a registered revision): revision, status, compatibilities"
            ]
        );
    }

    #[test]
    fn describe_output_errors_are_prefixed_and_other_top_level_keys_rejected() {
        let mut inner = minimal();
        inner["containerDefinitions"][0]["cpu"] = json!("a quarter");
        let errs = errors(json!({"taskDefinition": inner}));
        assert_eq!(
            errs,
            [
                "taskDefinition.containerDefinitions[0].cpu: invalid type: string \"a quarter\", expected i32"
            ]
        );
        let errs = errors(json!({"taskDefinition": minimal(), "failures": []}));
        assert!(errs[0].starts_with("failures: unknown field"), "{errs:?}");
    }

    #[test]
    fn family_with_uppercase_and_underscores_is_renamed_and_left_out() {
        let mut td = minimal();
        td["family"] = json!("My_Web_App");
        let imported = import(td).unwrap();
        assert_eq!(
            imported.manifest.metadata.name.as_deref(),
            Some("my-web-app")
        );
        assert_eq!(imported.manifest.spec.family, None);
        assert_eq!(imported.notes.len(), 1);
        assert!(imported.notes[0].contains("\"My_Web_App\" becomes metadata.name \"my-web-app\""));
    }

    #[test]
    fn name_and_namespace_options() {
        let options = Options {
            name: Some("other".into()),
            namespace: Some("team-a".into()),
            ..Default::default()
        };
        let imported = task_definition(&minimal().to_string(), &options).unwrap();
        assert_eq!(imported.manifest.metadata.name.as_deref(), Some("other"));
        assert_eq!(
            imported.manifest.metadata.namespace.as_deref(),
            Some("team-a")
        );
        assert_eq!(imported.manifest.spec.family, None);

        let bad = Options {
            name: Some("Bad_Name".into()),
            namespace: Some("Team".into()),
            ..Default::default()
        };
        let err = task_definition(&minimal().to_string(), &bad).unwrap_err();
        let paths: Vec<&str> = err.errors.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(paths, ["--name", "--namespace"]);
    }

    #[test]
    fn a_family_that_cannot_be_a_name_asks_for_name() {
        let mut td = minimal();
        td["family"] = json!("<TASK_NAME>");
        let errs = errors(td.clone());
        assert!(
            errs[0].starts_with("family: \"<TASK_NAME>\" cannot become metadata.name"),
            "{errs:?}"
        );
        assert!(errs[0].ends_with("pass --name"));
        let options = Options {
            name: Some("datadog".into()),
            ..Default::default()
        };
        assert!(task_definition(&td.to_string(), &options).is_ok());

        td.as_object_mut().unwrap().remove("family");
        assert_eq!(
            errors(td),
            ["family: missing: the family becomes metadata.name; add it or pass --name"]
        );
    }

    #[test]
    fn cel_rules_are_checked_before_apply() {
        let td = json!({
            "family": "web",
            "networkMode": "awsvpc",
            "containerDefinitions": [
                {"name": "app", "image": "a", "essential": false,
                 "dependsOn": [{"containerName": "sidecar", "condition": "START"},
                               {"containerName": "init", "condition": "SUCCESS"},
                               {"containerName": "app", "condition": "START"}],
                 "portMappings": [{"containerPort": 80, "hostPort": 8080}],
                 "mountPoints": [{"sourceVolume": "nope", "containerPath": "/x"}],
                 "memory": 128, "memoryReservation": 256,
                 "healthCheck": {"command": ["CMD"]}},
                {"name": "init", "image": "b",
                 "volumesFrom": [{"sourceContainer": "gone"}]},
                {"name": "app", "image": "c", "essential": false}
            ],
            "volumes": [{"name": "v"}, {"name": "v"}],
            "placementConstraints": [{"type": "distinctInstance"}]
        });
        let errs = errors(td);
        // The CRD's own rules and messages, located at the items that break them.
        let expected = [
            "containerDefinitions[0]: container names must be unique within a task definition",
            "containerDefinitions[2]: container names must be unique within a task definition",
            "volumes[0]: volume names must be unique within a task definition",
            "volumes[1]: volume names must be unique within a task definition",
            "containerDefinitions[0].dependsOn[0]: dependsOn containerName must name a container of this task definition",
            "containerDefinitions[0].dependsOn[1]: a dependsOn condition of COMPLETE or SUCCESS requires the dependency container to be non-essential",
            "containerDefinitions[0].dependsOn[2]: a container cannot depend on itself",
            "containerDefinitions[0].mountPoints[0]: mountPoints sourceVolume must name a volume of this task definition",
            "containerDefinitions[0]: memory must be greater than memoryReservation when both are set",
            "containerDefinitions[0].portMappings[0]: with networkMode host or awsvpc, hostPort must be omitted or equal to containerPort",
            "containerDefinitions[0].healthCheck: healthCheck command needs a command after CMD or CMD-SHELL",
            "containerDefinitions[1].volumesFrom[0]: volumesFrom sourceContainer must name a container of this task definition",
            "placementConstraints[0]: task definition placementConstraints support only type memberOf",
        ];
        for want in expected {
            assert!(
                errs.iter().any(|e| e.starts_with(want)),
                "missing {want:?} in {errs:#?}"
            );
        }
        assert_eq!(errs.len(), expected.len(), "{errs:#?}");
    }

    #[test]
    fn health_checks_docker_ignores_are_imported_with_a_note() {
        let mut td = minimal();
        td["containerDefinitions"][0]["healthCheck"] = json!({"command": ["NONE"]});
        let imported = import(td).expect("ECS accepts it");
        assert_eq!(
            imported.manifest.spec.container_definitions[0]
                .health_check
                .as_ref()
                .unwrap()
                .command,
            ["NONE"]
        );
        assert!(
            imported.notes.iter().any(|n| n.starts_with(
                "containerDefinitions[0].healthCheck.command: starts with neither CMD nor CMD-SHELL"
            )),
            "{:?}",
            imported.notes
        );
    }

    #[test]
    fn at_least_one_container_and_one_essential_container() {
        let mut td = minimal();
        td["containerDefinitions"][0]["essential"] = json!(false);
        assert_eq!(
            errors(td.clone()),
            [
                "containerDefinitions: at least one essential container is required: set essential to true on one container"
            ]
        );
        td["containerDefinitions"] = json!([]);
        // Both rules fail on an empty list, as the API server reports them.
        assert_eq!(
            errors(td),
            [
                "containerDefinitions: at least one essential container is required: set essential to true on one container",
                "containerDefinitions: containerDefinitions needs at least one container",
            ]
        );
    }

    #[test]
    fn schema_bounds_are_checked_before_apply() {
        let td = json!({
            "family": "web",
            "ephemeralStorage": {"sizeInGiB": 20},
            "containerDefinitions": [{
                "name": "app.v1", "image": "a",
                "healthCheck": {"command": ["CMD", "true"], "interval": 1},
                "dnsServers": ["1.1.1.1", "8.8.8.8", "9.9.9.9", "1.0.0.1"]
            }]
        });
        let errs = errors(td);
        assert_eq!(
            errs,
            [
                "containerDefinitions[0].dnsServers: must have at most 3 items (has 4)",
                "containerDefinitions[0].healthCheck.interval: 1 must be greater than or equal to 5",
                "containerDefinitions[0].name: \"app.v1\": container name may contain only letters, digits, hyphens and underscores",
                "ephemeralStorage.sizeInGiB: 20 must be greater than or equal to 21",
            ]
        );
    }

    #[test]
    fn not_json_or_not_an_object() {
        assert!(
            task_definition("{", &Options::default())
                .unwrap_err()
                .errors[0]
                .message
                .starts_with("not valid JSON")
        );
        assert!(
            task_definition("[]", &Options::default())
                .unwrap_err()
                .errors[0]
                .message
                .starts_with("expected a JSON object")
        );
    }

    #[test]
    fn output_is_deterministic() {
        let mut td = minimal();
        td["containerDefinitions"][0]["dockerLabels"] = json!({"b": "2", "a": "1", "c": "3"});
        let first = import(td.clone()).unwrap().yaml;
        assert_eq!(first, import(td).unwrap().yaml);
        let a = first.find("a: \"1\"").expect("labels are printed");
        assert!(a < first.find("b: \"2\"").unwrap());
    }
}
