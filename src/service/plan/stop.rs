//! Stopping a deployment on request (ECS StopServiceDeployment), declared by the Service annotations
//! `ecs.operator.dev/stop-deployment: ecs-svc/N` and `ecs.operator.dev/stop-deployment-type`.
//!
//! ECS accepts `stopType` ROLLBACK only (the API model also lists ABORT, which ECS documents as not
//! available): the deployment is stopped and the previous service revision deployed again, even
//! without `rollback` in the circuit breaker. A request is acted on once: the status records its
//! deployment id ([`crate::api::service::ServiceStatus::handled_stop_request`]).

use crate::api::service::{Deployment, DeploymentStatus, RolloutState};

use super::deployments::{is_rollback, is_rollout};
use super::{breaker, events};

/// The stop type ECS accepts (and the default).
pub const ROLLBACK: &str = "ROLLBACK";

/// A stop request, as the annotations give it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StopRequest {
    /// The deployment id, `ecs-svc/N`.
    pub deployment: String,
    /// `stopType`; None means ROLLBACK.
    pub stop_type: Option<String>,
}

/// What to do about a request not handled yet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Decision {
    /// Roll the PRIMARY back to the last COMPLETED deployment.
    RollBack,
    /// The deployment is already being rolled back: ECS continues that rollback.
    AlreadyRollingBack,
    /// Not acted on, and why.
    Rejected(String),
}

/// Decides on `request` against the deployments (PRIMARY first).
pub(crate) fn decide(request: &StopRequest, deployments: &[Deployment]) -> Decision {
    let stop_type = request.stop_type.as_deref().unwrap_or(ROLLBACK);
    if stop_type != ROLLBACK {
        return Decision::Rejected(format!(
            "stopType {stop_type:?} is not supported: ECS stops a deployment with ROLLBACK only"
        ));
    }
    let Some(d) = deployments.iter().find(|d| d.id == request.deployment) else {
        return Decision::Rejected(format!(
            "deployment {} is not a deployment of this service",
            request.deployment
        ));
    };
    if d.status != DeploymentStatus::Primary || !is_rollout(d, RolloutState::InProgress) {
        return Decision::Rejected(format!(
            "deployment {} is not in progress ({} {}): only an ongoing deployment can be stopped",
            d.id,
            d.status,
            d.rollout_state.map_or("UNKNOWN", RolloutState::as_str)
        ));
    }
    if is_rollback(d) {
        return Decision::AlreadyRollingBack;
    }
    if breaker::rollback_target(deployments, &d.id).is_none() {
        return Decision::Rejected(format!(
            "deployment {} has no previous COMPLETED deployment to roll back to",
            d.id
        ));
    }
    Decision::RollBack
}

/// `rolloutStateReason` of a deployment stopped by a ROLLBACK request.
pub fn stopped_reason(deployment: &str) -> String {
    format!("ECS deployment {deployment} stopped: rollback requested.")
}

/// `rolloutStateReason` of the deployment a ROLLBACK request starts.
pub fn rollback_reason(to: &str) -> String {
    format!(
        "{} deploymentId {to}.",
        events::REQUESTED_ROLLBACK_REASON_PREFIX
    )
}
