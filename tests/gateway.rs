//! Traffic shifts through a Gateway API HTTPRoute: the weights the operator writes to a route on the local
//! cluster (its Gateway API CRDs come with `cargo xtask cluster up`; no Gateway implementation runs, so
//! the weights are what is checked), that nothing else of the user's route changes, and that a route the
//! split does not fit gets an error instead of a write.

mod support;

use ecs_operator::traffic::ShiftOutcome;
use ecs_operator::traffic::httproute::{ShiftError, api_resource, shift};
use ecs_operator::traffic::weights::{self, Split, TrafficError};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use kube::runtime::wait::conditions;
use serde_json::{Value, json};
use support::{TestNamespace, client, wait_for};

async fn routes(client: &kube::Client, ns: &TestNamespace) -> Api<DynamicObject> {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    assert!(
        crds.get_opt("httproutes.gateway.networking.k8s.io")
            .await
            .unwrap()
            .is_some(),
        "the HTTPRoute CRD is missing: `cargo xtask cluster up` installs the Gateway API CRDs"
    );
    wait_for(
        &crds,
        "httproutes.gateway.networking.k8s.io",
        conditions::is_crd_established(),
    )
    .await;
    Api::namespaced_with(client.clone(), &ns.name, &api_resource())
}

/// A route as a user writes it: more than the two weighted backends.
fn user_route(name: &str, backends: Value) -> DynamicObject {
    serde_json::from_value(json!({
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {
            "name": name,
            "labels": {"team": "shop"},
            "annotations": {"note": "the user's"}
        },
        "spec": {
            "parentRefs": [{"name": "public", "sectionName": "https"}],
            "hostnames": ["shop.example.com"],
            "rules": [
                {
                    "matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
                    "filters": [{"type": "RequestHeaderModifier",
                                 "requestHeaderModifier": {"add": [{"name": "x-shop", "value": "1"}]}}],
                    "backendRefs": backends
                },
                {
                    "matches": [{"path": {"type": "PathPrefix", "value": "/static"}}],
                    "backendRefs": [{"name": "static", "port": 80, "weight": 7}]
                }
            ]
        }
    }))
    .unwrap()
}

/// The route as JSON without what every write changes, and with the weights of rule 0 taken out.
fn without_weights(route: &DynamicObject) -> Value {
    let mut v = serde_json::to_value(route).unwrap();
    let meta = v["metadata"].as_object_mut().unwrap();
    for volatile in ["resourceVersion", "managedFields", "generation"] {
        meta.remove(volatile);
    }
    for r in v["spec"]["rules"][0]["backendRefs"].as_array_mut().unwrap() {
        r.as_object_mut().unwrap().remove("weight");
    }
    v
}

fn weights_of(route: &DynamicObject) -> Vec<i64> {
    route.data["spec"]["rules"][0]["backendRefs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["weight"].as_i64().unwrap())
        .collect()
}

#[tokio::test]
async fn traffic_shifts_write_only_the_weights_of_the_route() {
    let client = client().await;
    let ns = TestNamespace::new(&client, "gateway-shift").await;
    let api = routes(&client, &ns).await;
    let backends = json!([
        {"name": "web-blue", "port": 80},
        {"name": "web-green", "port": 80}
    ]);
    let created = api
        .create(&PostParams::default(), &user_route("web", backends))
        .await
        .unwrap();
    // The CRD's default: a backendRef without a weight has weight 1.
    assert_eq!(weights_of(&created), [1, 1]);
    let before = without_weights(&created);

    // By name and by an ARN-like listener rule whose last segment is the name.
    let arn = "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener-rule/app/lb/1/2/web";
    for (rule, percent, expected) in [
        ("web", 0.0, [1000, 0]),
        (arn, 5.0, [950, 50]),
        ("web", 100.0, [0, 1000]),
    ] {
        let outcome = shift(&client, &ns.name, rule, "web-blue", "web-green", percent)
            .await
            .unwrap();
        assert_eq!(outcome, ShiftOutcome::Written(2), "at {percent} %");
        let after = api.get("web").await.unwrap();
        assert_eq!(weights_of(&after), expected, "at {percent} %");
        assert_eq!(
            without_weights(&after),
            before,
            "at {percent} %: more than weights changed"
        );
        assert_eq!(
            after.data["spec"]["rules"][1]["backendRefs"][0]["weight"], 7,
            "a rule without the service keeps its weights"
        );
    }

    // Converged: the same split again writes nothing.
    let rv = api.get("web").await.unwrap().metadata.resource_version;
    let outcome = shift(&client, &ns.name, "web", "web-blue", "web-green", 100.0)
        .await
        .unwrap();
    assert_eq!(outcome, ShiftOutcome::Unchanged);
    assert_eq!(api.get("web").await.unwrap().metadata.resource_version, rv);
}

#[tokio::test]
async fn a_route_the_split_does_not_fit_gets_an_error_and_no_write() {
    let client = client().await;
    let ns = TestNamespace::new(&client, "gateway-refuse").await;
    let api = routes(&client, &ns).await;
    let neither = api
        .create(
            &PostParams::default(),
            &user_route("other", json!([{"name": "other-svc", "port": 80}])),
        )
        .await
        .unwrap();
    let only_blue = api
        .create(
            &PostParams::default(),
            &user_route("half", json!([{"name": "web-blue", "port": 80}])),
        )
        .await
        .unwrap();

    let err = shift(&client, &ns.name, "other", "web-blue", "web-green", 5.0)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            ShiftError::Route(TrafficError::ServicesNotInRoute { .. })
        ),
        "{err}"
    );
    let err = shift(&client, &ns.name, "half", "web-blue", "web-green", 5.0)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            ShiftError::Route(TrafficError::ServiceMissingFromRule { .. })
        ),
        "{err}"
    );
    let err = shift(&client, &ns.name, "missing", "web-blue", "web-green", 5.0)
        .await
        .unwrap_err();
    assert!(
        matches!(err, ShiftError::Route(TrafficError::RouteNotFound { .. })),
        "{err}"
    );
    for (name, created) in [("other", &neither), ("half", &only_blue)] {
        assert_eq!(
            api.get(name).await.unwrap().metadata.resource_version,
            created.metadata.resource_version,
            "{name} was written"
        );
    }
}

/// The patch a shift writes was planned from one read of the route; a user's edit of a weighted
/// backendRef in between makes the API server refuse it whole, and the edit stays.
#[tokio::test]
async fn a_concurrent_edit_of_a_backend_is_not_overwritten() {
    let client = client().await;
    let ns = TestNamespace::new(&client, "gateway-race").await;
    let api = routes(&client, &ns).await;
    let backends = json!([
        {"name": "web-blue", "port": 80, "weight": 1000},
        {"name": "web-green", "port": 80, "weight": 0}
    ]);
    let read = api
        .create(&PostParams::default(), &user_route("web", backends))
        .await
        .unwrap();
    let changes = weights::plan(
        &serde_json::to_value(&read).unwrap(),
        "web-blue",
        "web-green",
        Split::from_green_percent(5.0).unwrap(),
    )
    .unwrap();

    // The user moves blue to another port meanwhile.
    let edit =
        json!([{"op": "replace", "path": "/spec/rules/0/backendRefs/0/port", "value": 8080}]);
    api.patch(
        "web",
        &PatchParams::default(),
        &Patch::Json::<Value>(serde_json::from_value(edit).unwrap()),
    )
    .await
    .unwrap();

    let stale: json_patch::Patch = serde_json::from_value(weights::json_patch(&changes)).unwrap();
    let err = api
        .patch("web", &PatchParams::default(), &Patch::Json::<Value>(stale))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, kube::Error::Api(s) if s.code == 422),
        "a failed test is 422: {err}"
    );
    let now = api.get("web").await.unwrap();
    assert_eq!(now.data["spec"]["rules"][0]["backendRefs"][0]["port"], 8080);
    assert_eq!(weights_of(&now), [1000, 0]);

    // A shift reads again and writes on top of the edit.
    shift(&client, &ns.name, "web", "web-blue", "web-green", 5.0)
        .await
        .unwrap();
    let now = api.get("web").await.unwrap();
    assert_eq!(now.data["spec"]["rules"][0]["backendRefs"][0]["port"], 8080);
    assert_eq!(weights_of(&now), [950, 50]);
}
