//! Which weights an HTTPRoute's backendRefs get for a traffic split, and the JSON patch that writes only
//! them. Pure: the route comes in as JSON, the patch goes out as JSON.

use serde_json::{Value, json};

/// The weights of one split add up to this: per-mille, so a shift in steps of 0.1 % (ECS's
/// `canaryPercent` and `stepPercent` are multiples of 0.1) is exact. Gateway API weights are relative
/// integers (0..=1,000,000), not percentages.
pub const TOTAL_WEIGHT: i64 = 1000;

/// Why the weights of a route cannot be written. Each says what to change.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TrafficError {
    #[error(
        "listener rule '{0}' names no HTTPRoute: give the route's name, or an ARN whose last '/' segment is the name of an HTTPRoute in this namespace"
    )]
    InvalidListenerRule(String),
    #[error("traffic percent {0} is outside 0..=100")]
    InvalidPercent(f64),
    #[error(
        "HTTPRoute {namespace}/{name} does not exist: create it, or name an existing route in the listener rule"
    )]
    RouteNotFound { namespace: String, name: String },
    #[error(
        "HTTPRoute {route} references neither Service '{blue}' nor '{green}': add both as backendRefs of the rule that serves the service"
    )]
    ServicesNotInRoute {
        route: String,
        blue: String,
        green: String,
    },
    #[error(
        "rule {rule} of HTTPRoute {route} references Service '{present}' but not '{missing}': add a backendRef for '{missing}' (weight 0) to that rule"
    )]
    ServiceMissingFromRule {
        route: String,
        rule: usize,
        present: String,
        missing: String,
    },
    #[error(
        "rule {rule} of HTTPRoute {route} references Service '{service}' more than once: keep one backendRef per Service"
    )]
    DuplicateBackend {
        route: String,
        rule: usize,
        service: String,
    },
}

impl TrafficError {
    /// The condition/Event reason (bounded).
    pub fn reason(&self) -> &'static str {
        match self {
            TrafficError::InvalidListenerRule(_) => "InvalidListenerRule",
            TrafficError::InvalidPercent(_) => "InvalidTrafficPercent",
            TrafficError::RouteNotFound { .. } => "HTTPRouteNotFound",
            TrafficError::ServicesNotInRoute { .. }
            | TrafficError::ServiceMissingFromRule { .. }
            | TrafficError::DuplicateBackend { .. } => "HTTPRouteBackendsInvalid",
        }
    }
}

/// The HTTPRoute a listener rule names: the name itself, or the last `/` segment of an ARN-like string
/// (`arn:aws:elasticloadbalancing:…:listener-rule/app/lb/…/web-prod` → `web-prod`). Always in the
/// Service's own namespace: a route elsewhere cannot be named.
pub fn route_name(listener_rule: &str) -> Result<String, TrafficError> {
    let name = listener_rule.rsplit('/').next().unwrap_or_default();
    if is_dns_subdomain(name) {
        Ok(name.to_string())
    } else {
        Err(TrafficError::InvalidListenerRule(listener_rule.to_string()))
    }
}

/// An RFC 1123 subdomain, as Kubernetes object names are.
fn is_dns_subdomain(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

/// The weights of the production (blue) and the alternate (green) Service in every rule that serves them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Split {
    pub blue: i64,
    pub green: i64,
}

impl Split {
    /// `green_percent` of the traffic to green, the rest to blue, rounded to 0.1 %.
    pub fn from_green_percent(green_percent: f64) -> Result<Split, TrafficError> {
        if !(0.0..=100.0).contains(&green_percent) {
            return Err(TrafficError::InvalidPercent(green_percent));
        }
        let green = (green_percent * (TOTAL_WEIGHT as f64) / 100.0).round() as i64;
        Ok(Split {
            blue: TOTAL_WEIGHT - green,
            green,
        })
    }
}

/// One weight to write: a backendRef as it was read, and its new weight.
#[derive(Debug, Clone, PartialEq)]
pub struct WeightChange {
    /// JSON pointer of the backendRef, `/spec/rules/<i>/backendRefs/<j>`.
    pub path: String,
    /// The backendRef as read: the patch tests it is still exactly this.
    pub current: Value,
    pub weight: i64,
}

/// The weights `route` needs for `split`: the changes (empty when it already has them), or why the
/// route cannot carry the split. Every rule that references blue or green must reference both, once
/// each; other backendRefs keep their weights.
pub fn plan(
    route: &Value,
    blue: &str,
    green: &str,
    split: Split,
) -> Result<Vec<WeightChange>, TrafficError> {
    let namespace = route["metadata"]["namespace"].as_str().unwrap_or_default();
    let route_name = format!(
        "{namespace}/{}",
        route["metadata"]["name"].as_str().unwrap_or_default()
    );
    let rules = route["spec"]["rules"].as_array().map(Vec::as_slice);
    let mut changes = Vec::new();
    let mut served = false;
    for (i, rule) in rules.unwrap_or_default().iter().enumerate() {
        let refs = rule["backendRefs"].as_array().map(Vec::as_slice);
        let refs = refs.unwrap_or_default();
        let find = |service: &str| -> Result<Option<usize>, TrafficError> {
            let mut found = refs
                .iter()
                .enumerate()
                .filter(|(_, r)| is_service(r, namespace, service))
                .map(|(j, _)| j);
            match (found.next(), found.next()) {
                (first, None) => Ok(first),
                _ => Err(TrafficError::DuplicateBackend {
                    route: route_name.clone(),
                    rule: i,
                    service: service.to_string(),
                }),
            }
        };
        let (b, g) = match (find(blue)?, find(green)?) {
            (None, None) => continue,
            (Some(b), Some(g)) => (b, g),
            (b, _) => {
                let (present, missing) = if b.is_some() {
                    (blue, green)
                } else {
                    (green, blue)
                };
                return Err(TrafficError::ServiceMissingFromRule {
                    route: route_name,
                    rule: i,
                    present: present.to_string(),
                    missing: missing.to_string(),
                });
            }
        };
        served = true;
        for (j, weight) in [(b, split.blue), (g, split.green)] {
            let current = &refs[j];
            // An absent weight is 1 (the CRD's default; the apiserver fills it in on write).
            if current["weight"].as_i64().unwrap_or(1) != weight {
                changes.push(WeightChange {
                    path: format!("/spec/rules/{i}/backendRefs/{j}"),
                    current: current.clone(),
                    weight,
                });
            }
        }
    }
    if !served {
        return Err(TrafficError::ServicesNotInRoute {
            route: route_name,
            blue: blue.to_string(),
            green: green.to_string(),
        });
    }
    Ok(changes)
}

/// A backendRef to the core Service `name` in the route's own namespace (any port).
fn is_service(backend: &Value, namespace: &str, name: &str) -> bool {
    let group = backend["group"].as_str().unwrap_or("");
    let kind = backend["kind"].as_str().unwrap_or("Service");
    let ns = backend["namespace"].as_str().unwrap_or(namespace);
    group.is_empty() && kind == "Service" && ns == namespace && backend["name"] == name
}

/// The JSON patch (RFC 6902) writing `changes`: for each backendRef, a `test` that it is still exactly
/// as read, then the weight. A concurrent edit of that backendRef, or of the rules' order, fails the
/// test and so the whole patch (422): nothing the user wrote meanwhile is overwritten, and the caller
/// reads the route again. Edits anywhere else in the route are kept.
pub fn json_patch(changes: &[WeightChange]) -> Value {
    let ops: Vec<Value> = changes
        .iter()
        .flat_map(|c| {
            [
                json!({"op": "test", "path": c.path, "value": c.current}),
                // `add` sets a member whether or not it exists; the test above pins which.
                json!({"op": "add", "path": format!("{}/weight", c.path), "value": c.weight}),
            ]
        })
        .collect();
    Value::Array(ops)
}
