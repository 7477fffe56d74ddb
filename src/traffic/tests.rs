use proptest::prelude::*;
use serde_json::{Value, json};

use super::weights::{Split, TOTAL_WEIGHT, TrafficError, json_patch, plan, route_name};

fn route(rules: Value) -> Value {
    json!({
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": "web", "namespace": "shop"},
        "spec": {"parentRefs": [{"name": "gw"}], "rules": rules}
    })
}

fn two_backends(blue_weight: i64, green_weight: i64) -> Value {
    route(json!([{
        "matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
        "backendRefs": [
            {"name": "web-blue", "port": 80, "weight": blue_weight},
            {"group": "", "kind": "Service", "name": "web-green", "port": 80, "weight": green_weight}
        ]
    }]))
}

/// The route after the patch, applied here as the apiserver would.
fn patched(route: &Value, blue: &str, green: &str, percent: f64) -> Value {
    let split = Split::from_green_percent(percent).unwrap();
    let changes = plan(route, blue, green, split).unwrap();
    let patch: json_patch::Patch = serde_json::from_value(json_patch(&changes)).unwrap();
    let mut out = route.clone();
    json_patch::patch(&mut out, &patch).unwrap();
    out
}

#[test]
fn listener_rules_name_a_route_by_name_or_arn_tail() {
    assert_eq!(route_name("web-prod").unwrap(), "web-prod");
    assert_eq!(
        route_name(
            "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener-rule/app/lb/50dc6c495c0c9188/f2f7dc8efc522ab2/web-prod"
        )
        .unwrap(),
        "web-prod"
    );
    for bad in ["", "arn:aws:x/", "Web", "other/ns/-x", "a_b"] {
        assert!(
            matches!(route_name(bad), Err(TrafficError::InvalidListenerRule(_))),
            "{bad}"
        );
    }
}

#[test]
fn splits_are_per_mille_and_exact_at_tenths() {
    assert_eq!(
        Split::from_green_percent(5.0).unwrap(),
        Split {
            blue: 950,
            green: 50
        }
    );
    assert_eq!(
        Split::from_green_percent(0.1).unwrap(),
        Split {
            blue: 999,
            green: 1
        }
    );
    assert_eq!(
        Split::from_green_percent(33.3).unwrap(),
        Split {
            blue: 667,
            green: 333
        }
    );
    assert!(Split::from_green_percent(100.1).is_err());
    assert!(Split::from_green_percent(-1.0).is_err());
    assert!(Split::from_green_percent(f64::NAN).is_err());
}

#[test]
fn only_the_weights_change() {
    let before = two_backends(1, 0);
    let after = patched(&before, "web-blue", "web-green", 5.0);
    let refs = &after["spec"]["rules"][0]["backendRefs"];
    assert_eq!(refs[0]["weight"], 950);
    assert_eq!(refs[1]["weight"], 50);
    let mut without = after.clone();
    without["spec"]["rules"][0]["backendRefs"][0]["weight"] = json!(1);
    without["spec"]["rules"][0]["backendRefs"][1]["weight"] = json!(0);
    assert_eq!(without, before);
}

#[test]
fn a_route_with_the_weights_needs_no_write() {
    let route = two_backends(950, 50);
    let split = Split::from_green_percent(5.0).unwrap();
    assert!(
        plan(&route, "web-blue", "web-green", split)
            .unwrap()
            .is_empty()
    );
}

#[test]
fn an_absent_weight_counts_as_one() {
    let route = route(json!([{"backendRefs": [
        {"name": "web-blue", "port": 80},
        {"name": "web-green", "port": 80}
    ]}]));
    let after = patched(&route, "web-blue", "web-green", 0.0);
    assert_eq!(
        after["spec"]["rules"][0]["backendRefs"][0]["weight"],
        TOTAL_WEIGHT
    );
    assert_eq!(after["spec"]["rules"][0]["backendRefs"][1]["weight"], 0);
}

#[test]
fn every_rule_serving_the_service_is_weighted_and_others_are_left_alone() {
    let route = route(json!([
        {"backendRefs": [{"name": "web-green", "port": 80, "weight": 3}, {"name": "web-blue", "port": 80, "weight": 7}]},
        {"backendRefs": [{"name": "other", "port": 80, "weight": 5}]},
        {"backendRefs": [{"name": "web-blue", "port": 8080, "weight": 1}, {"name": "web-green", "port": 8080, "weight": 1}, {"name": "mirror", "port": 80, "weight": 2}]}
    ]));
    let after = patched(&route, "web-blue", "web-green", 100.0);
    let rules = &after["spec"]["rules"];
    assert_eq!(rules[0]["backendRefs"][0]["weight"], TOTAL_WEIGHT);
    assert_eq!(rules[0]["backendRefs"][1]["weight"], 0);
    assert_eq!(rules[1], route["spec"]["rules"][1]);
    assert_eq!(rules[2]["backendRefs"][0]["weight"], 0);
    assert_eq!(rules[2]["backendRefs"][1]["weight"], TOTAL_WEIGHT);
    assert_eq!(rules[2]["backendRefs"][2]["weight"], 2);
}

#[test]
fn a_route_without_both_services_is_an_error() {
    let split = Split::from_green_percent(5.0).unwrap();
    let neither = route(json!([{"backendRefs": [{"name": "other", "port": 80}]}]));
    let err = plan(&neither, "web-blue", "web-green", split).unwrap_err();
    assert!(
        matches!(err, TrafficError::ServicesNotInRoute { .. }),
        "{err}"
    );
    assert_eq!(err.reason(), "HTTPRouteBackendsInvalid");
    assert!(err.to_string().contains("shop/web"), "{err}");

    let no_rules = route(json!(null));
    assert!(matches!(
        plan(&no_rules, "web-blue", "web-green", split),
        Err(TrafficError::ServicesNotInRoute { .. })
    ));

    let only_blue = route(json!([{"backendRefs": [{"name": "web-blue", "port": 80}]}]));
    let err = plan(&only_blue, "web-blue", "web-green", split).unwrap_err();
    assert_eq!(
        err,
        TrafficError::ServiceMissingFromRule {
            route: "shop/web".into(),
            rule: 0,
            present: "web-blue".into(),
            missing: "web-green".into()
        }
    );
    assert!(err.to_string().contains("add a backendRef for 'web-green'"));

    let twice = route(json!([{"backendRefs": [
        {"name": "web-blue", "port": 80}, {"name": "web-green", "port": 80}, {"name": "web-blue", "port": 81}
    ]}]));
    assert!(matches!(
        plan(&twice, "web-blue", "web-green", split),
        Err(TrafficError::DuplicateBackend { .. })
    ));
}

#[test]
fn backends_of_another_namespace_or_kind_are_not_the_service() {
    let split = Split::from_green_percent(5.0).unwrap();
    let route = route(json!([{"backendRefs": [
        {"name": "web-blue", "namespace": "elsewhere", "port": 80},
        {"name": "web-green", "kind": "ServiceImport", "group": "multicluster.x-k8s.io", "port": 80}
    ]}]));
    assert!(matches!(
        plan(&route, "web-blue", "web-green", split),
        Err(TrafficError::ServicesNotInRoute { .. })
    ));
}

#[test]
fn the_patch_tests_each_backend_before_writing_its_weight() {
    let route = two_backends(1000, 0);
    let split = Split::from_green_percent(5.0).unwrap();
    let changes = plan(&route, "web-blue", "web-green", split).unwrap();
    let patch = json_patch(&changes);
    assert_eq!(patch[0]["op"], "test");
    assert_eq!(patch[0]["path"], "/spec/rules/0/backendRefs/0");
    assert_eq!(patch[1]["op"], "add");
    assert_eq!(patch[1]["path"], "/spec/rules/0/backendRefs/0/weight");
    // A concurrent edit of a weighted backendRef fails the whole patch.
    let mut edited = route.clone();
    edited["spec"]["rules"][0]["backendRefs"][0]["port"] = json!(8080);
    let patch: json_patch::Patch = serde_json::from_value(patch).unwrap();
    assert!(json_patch::patch(&mut edited.clone(), &patch).is_err());
}

proptest! {
    #[test]
    fn weights_always_sum_to_the_total(tenths in 0u32..=1000, blue0 in 0i64..=1_000_000, green0 in 0i64..=1_000_000) {
        let percent = f64::from(tenths) / 10.0;
        let split = Split::from_green_percent(percent).unwrap();
        prop_assert_eq!(split.blue + split.green, TOTAL_WEIGHT);
        prop_assert_eq!(split.blue == 0, tenths == 1000);
        prop_assert_eq!(split.green == 0, tenths == 0);
        prop_assert_eq!(split.green, i64::from(tenths));
        let after = patched(&two_backends(blue0, green0), "web-blue", "web-green", percent);
        let refs = &after["spec"]["rules"][0]["backendRefs"];
        prop_assert_eq!(refs[0]["weight"].as_i64().unwrap() + refs[1]["weight"].as_i64().unwrap(), TOTAL_WEIGHT);
        prop_assert_eq!(refs[0]["weight"].as_i64().unwrap() == 0, refs[1]["weight"].as_i64().unwrap() == TOTAL_WEIGHT);
    }

    #[test]
    fn any_percent_in_range_sums_to_the_total(percent in 0.0f64..=100.0) {
        let split = Split::from_green_percent(percent).unwrap();
        prop_assert_eq!(split.blue + split.green, TOTAL_WEIGHT);
        prop_assert!(split.blue >= 0 && split.green >= 0);
    }
}
