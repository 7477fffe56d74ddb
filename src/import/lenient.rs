//! What ECS's own tooling accepts that the API's JSON types do not: numbers and booleans written as
//! strings (CloudFormation templates and many deploy tools write `"cpu": "256"`, `"essential":
//! "true"`), and, on request, keys no TaskDefinition field has (such as a deploy tool's top-level
//! `Tags`). Both walk the input beside the CRD's schema of `spec`, so they follow the types exactly.

use serde_json::{Map, Value};

use super::join;

/// Rewrites, in place, each string that stands where the schema wants an integer, a number or a
/// boolean and reads as one (`"256"`, `"-1"`, `"0.5"`, `"true"`, `"False"`), and each number where
/// it wants a string (task-level `"cpu": 256`). Returns a note per rewritten field; values that do
/// not read as the type are left for the type check to report.
pub fn coerce_scalars(value: &mut Value, schema: &Value, path: &str, notes: &mut Vec<String>) {
    let wanted = schema.get("type").and_then(Value::as_str);
    if let Value::Number(n) = value
        && wanted == Some("string")
    {
        notes.push(format!(
            "{path}: the number {n} is read as the string \"{n}\" (the TaskDefinition API wants a string)"
        ));
        *value = Value::String(n.to_string());
        return;
    }
    if let Value::String(s) = value
        && let Some(read) = read_as(s, wanted)
    {
        let kind = match wanted {
            Some("integer") => "an integer",
            Some("boolean") => "a boolean",
            _ => "a number",
        };
        notes.push(format!(
            "{path}: the string \"{s}\" is read as {read} (ECS tools such as CloudFormation accept it; the TaskDefinition API wants {kind})"
        ));
        *value = read;
        return;
    }
    walk(value, schema, path, &mut |v, s, p| {
        coerce_scalars(v, s, p, notes)
    });
}

fn read_as(s: &str, wanted: Option<&str>) -> Option<Value> {
    // Only exact spellings: " 256" or "1e3" would not survive the API's own parsing either.
    let t = s;
    match wanted? {
        "integer" => t.parse::<i64>().ok().map(Value::from),
        "number" => {
            let n = t.parse::<f64>().ok().filter(|n| {
                n.is_finite() && t.bytes().all(|b| b.is_ascii_digit() || b"-.".contains(&b))
            })?;
            Some(
                t.parse::<i64>()
                    .map_or_else(|_| Value::from(n), Value::from),
            )
        }
        "boolean" => match t.to_ascii_lowercase().as_str() {
            "true" => Some(Value::Bool(true)),
            "false" => Some(Value::Bool(false)),
            _ => None,
        },
        _ => None,
    }
}

/// Removes every key that the schema does not know where it lists the fields (objects whose
/// schema keeps unknown fields, or maps any key, are left alone). Returns the removed paths.
pub fn drop_unknown(value: &mut Value, schema: &Value, path: &str, dropped: &mut Vec<String>) {
    if let Value::Object(fields) = value
        && let Some(known) = schema.get("properties").and_then(Value::as_object)
        && !keeps_unknown(schema)
    {
        let unknown: Vec<String> = fields
            .keys()
            .filter(|k| !known.contains_key(*k))
            .cloned()
            .collect();
        for key in unknown {
            fields.remove(&key);
            dropped.push(join(path, &key));
        }
    }
    walk(value, schema, path, &mut |v, s, p| {
        drop_unknown(v, s, p, dropped)
    });
}

fn keeps_unknown(schema: &Value) -> bool {
    schema.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true))
        || schema
            .get("additionalProperties")
            .is_some_and(|a| a != &Value::Bool(false))
}

/// Calls `f` on each child value with its schema and path.
fn walk(
    value: &mut Value,
    schema: &Value,
    path: &str,
    f: &mut dyn FnMut(&mut Value, &Value, &str),
) {
    match value {
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items") {
                for (i, item) in items.iter_mut().enumerate() {
                    f(item, item_schema, &format!("{path}[{i}]"));
                }
            }
        }
        Value::Object(fields) => {
            let properties = schema.get("properties").and_then(Value::as_object);
            let additional = schema.get("additionalProperties").filter(|s| s.is_object());
            for (key, field) in fields.iter_mut() {
                if let Some(field_schema) = properties.and_then(|p| p.get(key)).or(additional) {
                    f(field, field_schema, &join(path, key));
                }
            }
        }
        _ => {}
    }
}

/// Keys next to `taskDefinition` in a wrapped document other than `tags`, dropped on request.
pub fn drop_wrapper_keys(document: &mut Map<String, Value>, dropped: &mut Vec<String>) {
    let keys: Vec<String> = document.keys().filter(|k| *k != "tags").cloned().collect();
    for key in keys {
        document.remove(&key);
        dropped.push(key);
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn schema() -> Value {
        json!({
            "type": "object",
            "properties": {
                "cpu": {"type": "string"},
                "containerDefinitions": {"type": "array", "items": {
                    "type": "object",
                    "properties": {
                        "cpu": {"type": "integer"},
                        "essential": {"type": "boolean"},
                        "dockerLabels": {"type": "object", "additionalProperties": {"type": "string"}},
                        "weight": {"type": "number"}
                    }
                }}
            }
        })
    }

    #[test]
    fn numbers_and_booleans_written_as_strings_take_the_schema_type() {
        let mut v = json!({"cpu": 256, "containerDefinitions": [
            {"cpu": "128", "essential": "TRUE", "weight": "0.5", "dockerLabels": {"n": "1"}},
            {"cpu": "lots", "essential": "yes"}
        ]});
        let mut notes = Vec::new();
        coerce_scalars(&mut v, &schema(), "", &mut notes);
        assert_eq!(
            v,
            json!({"cpu": "256", "containerDefinitions": [
                {"cpu": 128, "essential": true, "weight": 0.5, "dockerLabels": {"n": "1"}},
                {"cpu": "lots", "essential": "yes"}
            ]})
        );
        assert_eq!(notes.len(), 4, "{notes:?}");
        for note in [
            "cpu: the number 256 is read as the string \"256\"",
            "containerDefinitions[0].cpu: the string \"128\" is read as 128 (ECS tools such as CloudFormation accept it; the TaskDefinition API wants an integer)",
            "containerDefinitions[0].essential: the string \"TRUE\" is read as true",
        ] {
            assert!(
                notes.iter().any(|n| n.starts_with(note)),
                "{note} not in {notes:?}"
            );
        }
    }

    #[test]
    fn unknown_keys_are_dropped_and_named_but_map_keys_are_kept() {
        let mut v = json!({"Tags": [], "containerDefinitions": [{"cpu": 1, "Extra": 1, "dockerLabels": {"any": "x"}}]});
        let mut dropped = Vec::new();
        drop_unknown(&mut v, &schema(), "", &mut dropped);
        assert_eq!(
            v,
            json!({"containerDefinitions": [{"cpu": 1, "dockerLabels": {"any": "x"}}]})
        );
        assert_eq!(dropped, ["Tags", "containerDefinitions[0].Extra"]);
    }
}
