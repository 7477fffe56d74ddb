//! The closed sets of words in a service's status (ECS DescribeServices and
//! DescribeServiceDeployments): the service's status, a deployment's status, rolloutState and
//! ServiceDeployment status and lifecycle stage. The CRD schema accepts these words only.

use super::words::ecs_words;

ecs_words! {
    /// ECS service `status`.
    pub enum ServiceState {
        Active = "ACTIVE",
        Draining = "DRAINING",
        Inactive = "INACTIVE",
    }
}

ecs_words! {
    /// ECS deployment `status`: PRIMARY (the newest), ACTIVE (being replaced) or INACTIVE.
    #[derive(Default)]
    pub enum DeploymentStatus {
        #[default]
        Primary = "PRIMARY",
        Active = "ACTIVE",
        Inactive = "INACTIVE",
    }
}

ecs_words! {
    /// ECS deployment `rolloutState`.
    pub enum RolloutState {
        InProgress = "IN_PROGRESS",
        Completed = "COMPLETED",
        Failed = "FAILED",
    }
}

ecs_words! {
    /// ECS ServiceDeployment `status` (DescribeServiceDeployments).
    pub enum ServiceDeploymentStatus {
        Pending = "PENDING",
        Successful = "SUCCESSFUL",
        Stopped = "STOPPED",
        StopRequested = "STOP_REQUESTED",
        InProgress = "IN_PROGRESS",
        RollbackRequested = "ROLLBACK_REQUESTED",
        RollbackInProgress = "ROLLBACK_IN_PROGRESS",
        RollbackSuccessful = "ROLLBACK_SUCCESSFUL",
        RollbackFailed = "ROLLBACK_FAILED",
    }
}

ecs_words! {
    /// ECS ServiceDeployment lifecycle stage of a BLUE_GREEN, LINEAR or CANARY deployment, in ECS
    /// order (the order is the stages' order).
    #[derive(PartialOrd, Ord)]
    pub enum ServiceDeploymentLifecycleStage {
        ReconcileService = "RECONCILE_SERVICE",
        PreScaleUp = "PRE_SCALE_UP",
        ScaleUp = "SCALE_UP",
        PostScaleUp = "POST_SCALE_UP",
        TestTrafficShift = "TEST_TRAFFIC_SHIFT",
        PostTestTrafficShift = "POST_TEST_TRAFFIC_SHIFT",
        PreProductionTrafficShift = "PRE_PRODUCTION_TRAFFIC_SHIFT",
        ProductionTrafficShift = "PRODUCTION_TRAFFIC_SHIFT",
        PostProductionTrafficShift = "POST_PRODUCTION_TRAFFIC_SHIFT",
        BakeTime = "BAKE_TIME",
        CleanUp = "CLEAN_UP",
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::api::service::ServiceStatus;

    const SERVICE: [&str; 3] = ["ACTIVE", "DRAINING", "INACTIVE"];
    const DEPLOYMENT: [&str; 3] = ["PRIMARY", "ACTIVE", "INACTIVE"];
    const ROLLOUT: [&str; 3] = ["IN_PROGRESS", "COMPLETED", "FAILED"];
    const SERVICE_DEPLOYMENT: [&str; 9] = [
        "PENDING",
        "SUCCESSFUL",
        "STOPPED",
        "STOP_REQUESTED",
        "IN_PROGRESS",
        "ROLLBACK_REQUESTED",
        "ROLLBACK_IN_PROGRESS",
        "ROLLBACK_SUCCESSFUL",
        "ROLLBACK_FAILED",
    ];
    const STAGE: [&str; 11] = [
        "RECONCILE_SERVICE",
        "PRE_SCALE_UP",
        "SCALE_UP",
        "POST_SCALE_UP",
        "TEST_TRAFFIC_SHIFT",
        "POST_TEST_TRAFFIC_SHIFT",
        "PRE_PRODUCTION_TRAFFIC_SHIFT",
        "PRODUCTION_TRAFFIC_SHIFT",
        "POST_PRODUCTION_TRAFFIC_SHIFT",
        "BAKE_TIME",
        "CLEAN_UP",
    ];

    fn status(i: usize) -> Value {
        let at = |all: &[&'static str]| all[i % all.len()];
        json!({
            "status": at(&SERVICE),
            "runningCount": 0,
            "pendingCount": 0,
            "rolloutState": at(&ROLLOUT),
            "deployments": [{
                "id": "ecs-svc/1",
                "status": at(&DEPLOYMENT),
                "taskDefinition": "web:1",
                "desiredCount": 0,
                "pendingCount": 0,
                "runningCount": 0,
                "failedTasks": 0,
                "rolloutState": at(&ROLLOUT),
                "lifecycleStage": at(&STAGE),
                "serviceDeploymentStatus": at(&SERVICE_DEPLOYMENT),
            }],
        })
    }

    #[test]
    fn every_stored_word_decodes_and_is_written_back_unchanged() {
        // 11 stages and 9 ServiceDeployment statuses: every word of every set is met.
        for i in 0..STAGE.len().max(SERVICE_DEPLOYMENT.len()) {
            let stored = status(i);
            let decoded: ServiceStatus = serde_json::from_value(stored.clone()).unwrap();
            assert_eq!(serde_json::to_value(&decoded).unwrap(), stored, "{i}");
        }
    }

    #[test]
    fn each_word_is_its_own_text() {
        fn texts<T: ToString>(all: &[T]) -> Vec<String> {
            all.iter().map(ToString::to_string).collect()
        }
        assert_eq!(texts(&ServiceState::ALL), SERVICE);
        assert_eq!(texts(&DeploymentStatus::ALL), DEPLOYMENT);
        assert_eq!(texts(&RolloutState::ALL), ROLLOUT);
        assert_eq!(texts(&ServiceDeploymentStatus::ALL), SERVICE_DEPLOYMENT);
        assert_eq!(texts(&ServiceDeploymentLifecycleStage::ALL), STAGE);
    }

    #[test]
    fn a_word_outside_the_set_does_not_decode() {
        let mut stored = status(0);
        stored["deployments"][0]["rolloutState"] = json!("ROLLED_BACK");
        assert!(serde_json::from_value::<ServiceStatus>(stored).is_err());
    }
}
