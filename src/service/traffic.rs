//! Traffic for BLUE_GREEN, LINEAR and CANARY services through Kubernetes Services: the task pods
//! carry their deployment ([`DEPLOYMENT`]) and, while production traffic is split, whether they
//! serve it ([`PRODUCTION`]); the load balancer Services select on those labels
//! ([`production_selector`], [`test_selector`]). A switch of all production traffic is one write of
//! the Service's selector, so its endpoints change in one EndpointSlice update.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;
use kube::api::{Api, ListParams, Patch, PatchParams};

use super::strategy::{Traffic, split};
use crate::api::{Service, Task};
use crate::error::{Error, is_not_found};
use crate::labels;

/// On a service's pods (BLUE_GREEN, LINEAR, CANARY): the deployment of its task, `ecs-svc-N`.
pub const DEPLOYMENT: &str = "ecs.operator.dev/deployment";
/// On a service's pods while production traffic is split between two deployments: `true` on those
/// serving it.
pub const PRODUCTION: &str = "ecs.operator.dev/production-traffic";

const MANAGER: &str = "ecs-operator/service-traffic";

/// `ecs-svc/N` as a label value.
pub fn deployment_label(id: &str) -> String {
    id.replace('/', "-")
}

/// The production Service's selector: one deployment's tasks, or while split the tasks labelled
/// [`PRODUCTION`] — or, when an HTTPRoute's weights carry the split (`routed`), blue's tasks (the
/// alternate Service has green's).
pub fn production_selector(
    service: &Service,
    traffic: &Traffic,
    routed: bool,
) -> BTreeMap<String, String> {
    let mut s = BTreeMap::from([(labels::SERVICE.to_string(), service.name_any())]);
    match traffic.production.as_slice() {
        [(only, _)] => s.insert(DEPLOYMENT.into(), deployment_label(only)),
        [(blue, _), ..] if routed => s.insert(DEPLOYMENT.into(), deployment_label(blue)),
        _ => s.insert(PRODUCTION.into(), "true".into()),
    };
    s
}

/// The share of an HTTPRoute's production traffic for the alternate Service (which selects
/// `traffic.test`): none while the production Service selects the same deployment.
pub fn alternate_share(traffic: &Traffic) -> f64 {
    match traffic.production.as_slice() {
        [_] => 0.0,
        entries => entries
            .iter()
            .find(|(d, _)| *d == traffic.test)
            .map_or(0.0, |(_, p)| *p),
    }
}

/// The test Service's selector: the tasks of the deployment taking test traffic.
pub fn test_selector(service: &Service, traffic: &Traffic) -> BTreeMap<String, String> {
    BTreeMap::from([
        (labels::SERVICE.to_string(), service.name_any()),
        (DEPLOYMENT.to_string(), deployment_label(&traffic.test)),
    ])
}

/// The labels each pod should carry: its deployment and, while production is split, whether it
/// serves production (ready pods only, as many of each side as [`split::counts`] says; pods already
/// serving keep serving first, so a step moves as few connections as it can).
pub fn wanted_labels(
    pods: &[PodView],
    traffic: &Traffic,
    split_by_endpoints: bool,
) -> BTreeMap<String, (String, Option<&'static str>)> {
    let mut out: BTreeMap<String, (String, Option<&'static str>)> = pods
        .iter()
        .map(|p| (p.name.clone(), (deployment_label(&p.deployment), None)))
        .collect();
    if let [(blue, blue_percent), (green, _)] = traffic.production.as_slice()
        && split_by_endpoints
    {
        let ready = |id: &str| {
            let mut v: Vec<&PodView> = pods
                .iter()
                .filter(|p| p.deployment == id && p.ready)
                .collect();
            v.sort_by_key(|p| (!p.serving, p.name.clone()));
            v
        };
        let (b, g) = (ready(blue), ready(green));
        let (nb, ng) = split::counts(b.len(), g.len(), 100.0 - blue_percent);
        for p in b.iter().take(nb).chain(g.iter().take(ng)) {
            if let Some(entry) = out.get_mut(&p.name) {
                entry.1 = Some("true");
            }
        }
    }
    out
}

/// What [`wanted_labels`] needs of a pod.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PodView {
    pub name: String,
    pub deployment: String,
    pub ready: bool,
    /// Carries [`PRODUCTION`] now.
    pub serving: bool,
}

/// Labels the service's pods as [`wanted_labels`] says, writing only those that differ.
pub async fn label_pods(
    client: &kube::Client,
    service: &Service,
    tasks: &[Arc<Task>],
    traffic: &Traffic,
) -> Result<(), Error> {
    // Endpoint counts carry a split unless every load balancer has an HTTPRoute doing it.
    let split_by_endpoints = !service
        .spec
        .load_balancers
        .iter()
        .flatten()
        .all(super::build::routed);
    let ns = service.namespace().unwrap_or_default();
    let api: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let pods = api
        .list(&ListParams::default().labels(&format!("{}={}", labels::SERVICE, service.name_any())))
        .await?
        .items;
    let deployment_of: BTreeMap<String, String> = tasks
        .iter()
        .filter_map(|t| Some((t.name_any(), t.spec.started_by.clone()?)))
        .collect();
    let views: Vec<PodView> = pods
        .iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .filter_map(|p| {
            let task = p.labels().get(labels::TASK)?;
            Some(PodView {
                name: p.name_any(),
                deployment: deployment_of.get(task)?.clone(),
                ready: p
                    .status
                    .as_ref()
                    .and_then(|s| s.conditions.as_ref())
                    .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True")),
                serving: p.labels().get(PRODUCTION).map(String::as_str) == Some("true"),
            })
        })
        .collect();
    let wanted = wanted_labels(&views, traffic, split_by_endpoints);
    for pod in &pods {
        let Some((deployment, production)) = wanted.get(&pod.name_any()) else {
            continue;
        };
        let l = pod.labels();
        if l.get(DEPLOYMENT) == Some(deployment)
            && l.get(PRODUCTION).map(String::as_str) == *production
        {
            continue;
        }
        let patch = serde_json::json!({"metadata": {"labels": {
            DEPLOYMENT: deployment,
            PRODUCTION: production,
        }}});
        match api
            .patch(
                &pod.name_any(),
                &PatchParams {
                    field_manager: Some(MANAGER.into()),
                    ..Default::default()
                },
                &Patch::Merge(&patch),
            )
            .await
        {
            Ok(_) => {}
            Err(e) if is_not_found(&e) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(name: &str, deployment: &str, ready: bool) -> PodView {
        PodView {
            name: name.into(),
            deployment: deployment.into(),
            ready,
            serving: false,
        }
    }

    #[test]
    fn a_split_labels_the_share_of_ready_pods_and_every_pod_gets_its_deployment() {
        let pods: Vec<PodView> = (0..10)
            .map(|i| pod(&format!("b{i}"), "ecs-svc/1", true))
            .chain((0..10).map(|i| pod(&format!("g{i}"), "ecs-svc/2", i != 9)))
            .collect();
        let traffic = Traffic {
            production: vec![("ecs-svc/1".into(), 80.0), ("ecs-svc/2".into(), 20.0)],
            test: "ecs-svc/2".into(),
        };
        let wanted = wanted_labels(&pods, &traffic, true);
        let serving = |prefix: &str| {
            wanted
                .iter()
                .filter(|(n, (_, p))| n.starts_with(prefix) && p.is_some())
                .count()
        };
        assert_eq!((serving("b"), serving("g")), (8, 2));
        assert_eq!(
            wanted["g9"],
            ("ecs-svc-2".into(), None),
            "not ready: not chosen"
        );
    }

    #[test]
    fn pods_already_serving_keep_serving() {
        let mut pods = [
            pod("b0", "ecs-svc/1", true),
            pod("b1", "ecs-svc/1", true),
            pod("g0", "ecs-svc/2", true),
            pod("g1", "ecs-svc/2", true),
        ];
        pods[3].serving = true;
        let traffic = Traffic {
            production: vec![("ecs-svc/1".into(), 50.0), ("ecs-svc/2".into(), 50.0)],
            test: "ecs-svc/2".into(),
        };
        let wanted = wanted_labels(&pods[..], &traffic, true);
        assert_eq!(wanted["g1"].1, Some("true"));
    }

    #[test]
    fn one_deployment_is_selected_by_its_label() {
        let svc: Service = serde_json::from_value(serde_json::json!({
            "apiVersion": "ecs.operator.dev/v1alpha1", "kind": "Service",
            "metadata": {"name": "web"}, "spec": {"taskDefinition": "web", "desiredCount": 1}
        }))
        .unwrap();
        let t = Traffic::all_to("ecs-svc/4");
        assert_eq!(
            production_selector(&svc, &t, false)[DEPLOYMENT],
            "ecs-svc-4"
        );
        let split = Traffic {
            production: vec![("ecs-svc/4".into(), 95.0), ("ecs-svc/5".into(), 5.0)],
            test: "ecs-svc/5".into(),
        };
        assert_eq!(production_selector(&svc, &split, false)[PRODUCTION], "true");
        // An HTTPRoute carries the split: blue behind the production Service, 5 % by weight.
        assert_eq!(
            production_selector(&svc, &split, true)[DEPLOYMENT],
            "ecs-svc-4"
        );
        assert_eq!(alternate_share(&split), 5.0);
        assert_eq!(alternate_share(&t), 0.0);
        assert_eq!(test_selector(&svc, &t)[DEPLOYMENT], "ecs-svc-4");
    }
}
