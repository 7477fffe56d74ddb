//! The CRD's CEL rules (`x-kubernetes-validations`), evaluated on the imported object before it is
//! applied: the import refuses exactly what the API server would, with the rule's own message,
//! because it runs the rules themselves rather than a hand-written copy of them.
//!
//! A rule that fails is also located where it can be: for `self.list.all(x, …)` (optionally behind
//! `!has(self.list) ||`), the items that fail are named (`containerDefinitions[2]`), recursively, so
//! a nested rule points at `containerDefinitions[0].dependsOn[1]`.

use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};
use serde_json::Value;

/// What a rule says about a value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Holds,
    /// The rule fails; the paths (relative to the rule's node, `.list[i]…`) of the items that make
    /// it fail, or one empty path when the failure cannot be narrowed down.
    Fails(Vec<String>),
    /// The rule cannot be evaluated here (a function this interpreter lacks, an evaluation error):
    /// left to the API server.
    Unknown,
}

/// Evaluate `rule` with `self` bound to `value`.
pub fn check(rule: &str, value: &Value) -> Verdict {
    let bindings = [Binding {
        name: "self".into(),
        value: value.clone(),
        path: String::new(),
    }];
    match eval(rule, &bindings) {
        Some(true) => Verdict::Holds,
        Some(false) => {
            let mut paths = Vec::new();
            locate(rule, &bindings, &mut paths);
            if paths.is_empty() {
                paths.push(String::new());
            }
            Verdict::Fails(paths)
        }
        None => Verdict::Unknown,
    }
}

/// A variable in scope: `self` or a macro's iteration variable, with where its value sits.
#[derive(Clone)]
struct Binding {
    name: String,
    value: Value,
    path: String,
}

fn eval(expression: &str, bindings: &[Binding]) -> Option<bool> {
    let program = cel::Program::compile(expression).ok()?;
    let mut context = cel::Context::default();
    for b in bindings {
        context.add_variable(b.name.clone(), Ints(&b.value)).ok()?;
    }
    match program.execute(&context).ok()? {
        cel::Value::Bool(b) => Some(b),
        _ => None,
    }
}

/// Push the paths of what makes `expression` (false under `bindings`) fail. A false disjunction has
/// every disjunct false; the disjuncts of the shape `v.f.all(x, body)` name their failing items
/// (recursively). In the rule itself (not inside an `all`, where the item is the place), those of
/// the shape `v.f.exists(…)` / `v.f.exists_one(…)` name the list `v.f`, and `has(v.f)` the field.
fn locate(expression: &str, bindings: &[Binding], out: &mut Vec<String>) {
    let top = bindings.len() == 1;
    for disjunct in disjuncts(expression) {
        if top
            && let Some((variable, field)) = disjunct
                .strip_prefix("has(")
                .and_then(|d| d.strip_suffix(')'))
                .and_then(|d| d.split_once('.'))
            && variable == "self"
            && is_ident(field)
        {
            out.push(format!(".{field}"));
            return;
        }
        let Some(call) = ListCall::parse(disjunct) else {
            continue;
        };
        // Inside an `all`, only the item's own lists narrow the place down.
        if !top && call.variable == "self" {
            continue;
        }
        let Some(owner) = bindings.iter().rev().find(|b| b.name == call.variable) else {
            continue;
        };
        let list = format!("{}.{}", owner.path, call.field);
        if call.function != "all" {
            if top {
                out.push(list);
                return;
            }
            continue;
        }
        let Some(Value::Array(items)) = owner.value.get(call.field) else {
            continue;
        };
        let Some((item, body)) = call.arguments.split_once(',') else {
            continue;
        };
        let (item, body) = (item.trim(), body.trim());
        if !is_ident(item) {
            continue;
        }
        let before = out.len();
        for (i, value) in items.iter().enumerate() {
            let mut inner = bindings.to_vec();
            inner.push(Binding {
                name: item.into(),
                value: value.clone(),
                path: format!("{list}[{i}]"),
            });
            if eval(body, &inner) == Some(false) {
                let deeper = out.len();
                locate(body, &inner, out);
                if out.len() == deeper {
                    out.push(format!("{list}[{i}]"));
                }
            }
        }
        if out.len() > before {
            return;
        }
    }
}

/// The top-level operands of `a || b || …` (one operand when there is no top-level `||`).
fn disjuncts(expression: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut depth, mut quote, mut start) = (0i32, None, 0);
    let bytes = expression.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i] as char;
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"') => quote = Some(c),
            (None, '(' | '[') => depth += 1,
            (None, ')' | ']') => depth -= 1,
            (None, '|') if depth == 0 && bytes.get(i + 1) == Some(&b'|') => {
                parts.push(expression[start..i].trim());
                start = i + 2;
                i += 1;
            }
            _ => {}
        }
        i += 1;
    }
    parts.push(expression[start..].trim());
    parts
}

/// `variable.field.function(arguments)`, the whole expression.
#[derive(Debug, PartialEq)]
struct ListCall<'a> {
    variable: &'a str,
    field: &'a str,
    function: &'a str,
    arguments: &'a str,
}

impl<'a> ListCall<'a> {
    fn parse(expression: &'a str) -> Option<Self> {
        let open = expression.find('(')?;
        let mut path = expression[..open].split('.');
        let (variable, field, function) = (path.next()?, path.next()?, path.next()?);
        if path.next().is_some()
            || !is_ident(variable)
            || !is_ident(field)
            || !matches!(function, "all" | "exists" | "exists_one")
        {
            return None;
        }
        let arguments = expression[open + 1..].strip_suffix(')')?;
        // The last parenthesis must close the call's own.
        balanced(arguments).then_some(Self {
            variable,
            field,
            function,
            arguments,
        })
    }
}

fn is_ident(s: &str) -> bool {
    !s.is_empty()
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !s.starts_with(|c: char| c.is_ascii_digit())
}

/// Parentheses balance, outside string literals.
fn balanced(s: &str) -> bool {
    let mut depth = 0i32;
    let mut quote = None;
    for c in s.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"') => quote = Some(c),
            (None, '(') => depth += 1,
            (None, ')') => {
                depth -= 1;
                if depth < 0 {
                    return false;
                }
            }
            _ => {}
        }
    }
    depth == 0
}

/// JSON as the API server gives it to CEL: integers are `int` (serde_json would say `uint` for
/// every non-negative one, and CEL does not compare `uint` with an `int` literal).
struct Ints<'a>(&'a Value);

impl Serialize for Ints<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Value::Number(n) => match n.as_i64() {
                Some(i) => s.serialize_i64(i),
                None => s.serialize_f64(n.as_f64().unwrap_or_default()),
            },
            Value::Array(items) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(&Ints(item))?;
                }
                seq.end()
            }
            Value::Object(fields) => {
                let mut map = s.serialize_map(Some(fields.len()))?;
                for (k, v) in fields {
                    map.serialize_entry(k, &Ints(v))?;
                }
                map.end()
            }
            other => other.serialize(s),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_rule_that_holds_or_fails() {
        let v = json!({"memory": 128, "memoryReservation": 256});
        let rule = "!has(self.memory) || !has(self.memoryReservation) || self.memory > self.memoryReservation";
        assert_eq!(check(rule, &v), Verdict::Fails(vec![String::new()]));
        assert_eq!(check(rule, &json!({"memory": 512})), Verdict::Holds);
    }

    #[test]
    fn integers_compare_with_int_literals() {
        assert_eq!(
            check("self.value <= 100", &json!({"value": 50})),
            Verdict::Holds
        );
        assert_eq!(
            check("size(self) >= 1", &json!([])),
            Verdict::Fails(vec![String::new()])
        );
    }

    #[test]
    fn failing_items_are_located_through_nested_all() {
        let spec = json!({"containerDefinitions": [
            {"name": "a", "dependsOn": [{"containerName": "b"}, {"containerName": "nope"}]},
            {"name": "b"},
            {"name": "c", "dependsOn": [{"containerName": "gone"}]},
        ]});
        let rule = "self.containerDefinitions.all(c, !has(c.dependsOn) || c.dependsOn.all(d, self.containerDefinitions.exists(o, o.name == d.containerName)))";
        assert_eq!(
            check(rule, &spec),
            Verdict::Fails(vec![
                ".containerDefinitions[0].dependsOn[1]".into(),
                ".containerDefinitions[2].dependsOn[0]".into(),
            ])
        );
    }

    #[test]
    fn a_guarded_list_may_be_absent() {
        let rule = "!has(self.volumes) || self.volumes.all(v, self.volumes.exists_one(o, o.name == v.name))";
        assert_eq!(check(rule, &json!({})), Verdict::Holds);
        assert_eq!(
            check(
                rule,
                &json!({"volumes": [{"name": "x"}, {"name": "y"}, {"name": "x"}]})
            ),
            Verdict::Fails(vec![".volumes[0]".into(), ".volumes[2]".into()])
        );
    }

    #[test]
    fn matches_and_in_work_as_in_the_api_server() {
        assert_eq!(
            check("self.matches('^[A-Za-z0-9_-]+$')", &json!("app.v1")),
            Verdict::Fails(vec![String::new()])
        );
        assert_eq!(
            check(
                "!(self.command[0] in ['CMD', 'CMD-SHELL']) || size(self.command) >= 2",
                &json!({"command": ["CMD"]})
            ),
            Verdict::Fails(vec![String::new()])
        );
    }

    #[test]
    fn what_cannot_be_evaluated_is_left_to_the_api_server() {
        assert_eq!(check("self.(", &json!({})), Verdict::Unknown);
        assert_eq!(check("self.missing > 1", &json!({})), Verdict::Unknown);
        assert_eq!(check("unknownFunction(self)", &json!({})), Verdict::Unknown);
    }

    #[test]
    fn a_disjunction_is_located_in_its_list_operand() {
        let rule = "!has(self.networkMode) || !(self.networkMode in ['host', 'awsvpc']) || self.containerDefinitions.all(c, !has(c.portMappings) || c.portMappings.all(p, !has(p.hostPort) || p.hostPort == p.containerPort))";
        let spec = json!({"networkMode": "awsvpc", "containerDefinitions": [
            {"name": "a", "portMappings": [{"containerPort": 80}, {"containerPort": 80, "hostPort": 8080}]},
        ]});
        assert_eq!(
            check(rule, &spec),
            Verdict::Fails(vec![".containerDefinitions[0].portMappings[1]".into()])
        );
    }

    #[test]
    fn an_exists_rule_names_its_list() {
        let rule = "self.containerDefinitions.exists(c, !has(c.essential) || c.essential)";
        assert_eq!(
            check(
                rule,
                &json!({"containerDefinitions": [{"essential": false}]})
            ),
            Verdict::Fails(vec![".containerDefinitions".into()])
        );
    }

    #[test]
    fn only_whole_list_calls_are_taken_apart() {
        assert_eq!(
            ListCall::parse("self.a.all(x, x.b == (1))"),
            Some(ListCall {
                variable: "self",
                field: "a",
                function: "all",
                arguments: "x, x.b == (1)"
            })
        );
        assert_eq!(
            ListCall::parse("self.a.all(x, x) && self.b.all(y, y)"),
            None
        );
        assert_eq!(ListCall::parse("self.a.map(x, x)"), None);
        assert_eq!(ListCall::parse("size(self.a)"), None);
        assert_eq!(
            disjuncts("!has(self.a) || self.b.all(x, x == 'a||b' || x == (1 || 2))"),
            [
                "!has(self.a)",
                "self.b.all(x, x == 'a||b' || x == (1 || 2))"
            ]
        );
    }
}
