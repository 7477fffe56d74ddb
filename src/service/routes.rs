//! BLUE_GREEN, LINEAR, CANARY with a Gateway API HTTPRoute as the listener rule: the production
//! listener rule's route gets the alternate Service's share of production traffic as weights, the test
//! listener rule's route sends everything to the alternate Service (the test target group), through
//! [`crate::traffic::shift`].

use kube::ResourceExt;

use super::build;
use super::strategy::Traffic;
use super::traffic::alternate_share;
use crate::api::Service;
use crate::error::Error;
use crate::traffic::httproute::ShiftError;

/// Writes the weights of every load balancer's listener rules. A route that cannot carry them is a
/// problem (condition reason, message) for the service, with nothing written.
pub async fn shift(
    client: &kube::Client,
    service: &Service,
    traffic: &Traffic,
) -> Result<Vec<(&'static str, String)>, Error> {
    let ns = service.namespace().unwrap_or_default();
    let mut problems = Vec::new();
    let lbs = service.spec.load_balancers.iter().flatten();
    for (lb, (production, alternate)) in lbs.zip(build::target_groups(service)) {
        let (Some(advanced), Some(alternate)) = (&lb.advanced_configuration, alternate) else {
            continue;
        };
        let rules = [
            (&advanced.production_listener_rule, alternate_share(traffic)),
            (&advanced.test_listener_rule, 100.0),
        ];
        for (rule, share) in rules {
            let Some(rule) = rule else { continue };
            match crate::traffic::shift(client, &ns, rule, &production, &alternate, share).await {
                Ok(_) => {}
                Err(ShiftError::Route(e)) => problems.push((e.reason(), e.to_string())),
                Err(ShiftError::Kube(e)) => return Err(e.into()),
            }
        }
    }
    Ok(problems)
}
