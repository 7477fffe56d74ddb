//! The closed sets of words in a task's status (ECS DescribeTasks): lastStatus, healthStatus,
//! stopCode and a container's lastStatus. The CRD schema accepts these words only.

use super::words::ecs_words;

ecs_words! {
    /// ECS task `lastStatus`: where the task is in its lifecycle (docs/tasks.md).
    pub enum LastStatus {
        Provisioning = "PROVISIONING",
        Pending = "PENDING",
        Activating = "ACTIVATING",
        Running = "RUNNING",
        Deactivating = "DEACTIVATING",
        Stopping = "STOPPING",
        // Kept for ECS's set; the operator never reports it (the pod's network goes with the pod).
        Deprovisioning = "DEPROVISIONING",
        Stopped = "STOPPED",
    }
}

impl LastStatus {
    /// On the way out or out: the task is stopping or stopped and will not run again.
    pub fn is_stopping(self) -> bool {
        matches!(
            self,
            LastStatus::Deactivating
                | LastStatus::Stopping
                | LastStatus::Deprovisioning
                | LastStatus::Stopped
        )
    }

    /// Not yet RUNNING and not stopping: the task is on its way up.
    pub fn is_starting(self) -> bool {
        matches!(
            self,
            LastStatus::Provisioning | LastStatus::Pending | LastStatus::Activating
        )
    }
}

ecs_words! {
    /// ECS container `lastStatus`.
    pub enum ContainerLastStatus {
        Pending = "PENDING",
        Running = "RUNNING",
        Stopped = "STOPPED",
    }
}

ecs_words! {
    /// ECS `healthStatus` of a task or a container.
    pub enum HealthStatus {
        Healthy = "HEALTHY",
        Unhealthy = "UNHEALTHY",
        Unknown = "UNKNOWN",
    }
}

ecs_words! {
    /// ECS `stopCode`: why a task stopped, spelled as ECS does.
    pub enum StopCode {
        TaskFailedToStart = "TaskFailedToStart",
        EssentialContainerExited = "EssentialContainerExited",
        UserInitiated = "UserInitiated",
        ServiceSchedulerInitiated = "ServiceSchedulerInitiated",
        // Kept for ECS's set; Kubernetes has no Spot interruption notice the operator reads.
        SpotInterruption = "SpotInterruption",
        TerminationNotice = "TerminationNotice",
        InfrastructureHealth = "InfrastructureHealth",
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::api::task::{DesiredStatus, TaskStatus};

    /// Every word a stored task status can hold, spelled as earlier versions wrote them.
    const LAST: [&str; 8] = [
        "PROVISIONING",
        "PENDING",
        "ACTIVATING",
        "RUNNING",
        "DEACTIVATING",
        "STOPPING",
        "DEPROVISIONING",
        "STOPPED",
    ];
    const HEALTH: [&str; 3] = ["HEALTHY", "UNHEALTHY", "UNKNOWN"];
    const CONTAINER_LAST: [&str; 3] = ["PENDING", "RUNNING", "STOPPED"];
    const STOP_CODES: [&str; 7] = [
        "TaskFailedToStart",
        "EssentialContainerExited",
        "UserInitiated",
        "ServiceSchedulerInitiated",
        "SpotInterruption",
        "TerminationNotice",
        "InfrastructureHealth",
    ];

    fn status(last: &str, desired: &str, health: &str, code: &str, container: &str) -> Value {
        json!({
            "lastStatus": last,
            "desiredStatus": desired,
            "healthStatus": health,
            "stopCode": code,
            "containers": [{"name": "web", "lastStatus": container, "healthStatus": health}],
        })
    }

    /// Decodes `stored` and checks it is written back byte for byte.
    fn round_trip(stored: Value) -> TaskStatus {
        let decoded: TaskStatus = serde_json::from_value(stored.clone()).unwrap();
        assert_eq!(serde_json::to_value(&decoded).unwrap(), stored);
        decoded
    }

    #[test]
    fn every_stored_word_decodes_and_is_written_back_unchanged() {
        for (i, last) in LAST.iter().enumerate() {
            let health = HEALTH[i % HEALTH.len()];
            let code = STOP_CODES[i % STOP_CODES.len()];
            let container = CONTAINER_LAST[i % CONTAINER_LAST.len()];
            let desired = ["RUNNING", "STOPPED"][i % 2];
            round_trip(status(last, desired, health, code, container));
        }
        // The ones the loop above did not pair with every other.
        for code in STOP_CODES {
            let decoded = round_trip(status("STOPPED", "STOPPED", "UNKNOWN", code, "STOPPED"));
            assert_eq!(decoded.stop_code.map(StopCode::as_str), Some(code));
        }
        for health in HEALTH {
            round_trip(status(
                "RUNNING",
                "RUNNING",
                health,
                "UserInitiated",
                "RUNNING",
            ));
        }
        for container in CONTAINER_LAST {
            round_trip(status(
                "RUNNING",
                "RUNNING",
                "HEALTHY",
                "UserInitiated",
                container,
            ));
        }
    }

    #[test]
    fn each_word_is_its_own_text() {
        fn texts<T: ToString>(all: &[T]) -> Vec<String> {
            all.iter().map(ToString::to_string).collect()
        }
        assert_eq!(texts(&LastStatus::ALL), LAST);
        assert_eq!(texts(&HealthStatus::ALL), HEALTH);
        assert_eq!(texts(&StopCode::ALL), STOP_CODES);
        assert_eq!(texts(&ContainerLastStatus::ALL), CONTAINER_LAST);
        for w in LAST {
            assert_eq!(LastStatus::parse(w).map(LastStatus::as_str), Some(w));
        }
        assert_eq!(LastStatus::parse("Running"), None);
        assert_eq!(DesiredStatus::Stopped.to_string(), "STOPPED");
    }

    #[test]
    fn a_word_outside_the_set_does_not_decode() {
        // What a newer operator might have written: refused here, so the object is reported
        // (src/controller/decode.rs) instead of being acted on with a guess.
        let stored = status("PAUSED", "RUNNING", "HEALTHY", "UserInitiated", "RUNNING");
        assert!(serde_json::from_value::<TaskStatus>(stored).is_err());
    }

    #[test]
    fn starting_and_stopping_split_the_lifecycle_around_running() {
        let starting: Vec<_> = LastStatus::ALL
            .into_iter()
            .filter(|s| s.is_starting())
            .collect();
        let stopping: Vec<_> = LastStatus::ALL
            .into_iter()
            .filter(|s| s.is_stopping())
            .collect();
        assert_eq!(
            starting,
            [
                LastStatus::Provisioning,
                LastStatus::Pending,
                LastStatus::Activating
            ]
        );
        assert_eq!(
            stopping,
            [
                LastStatus::Deactivating,
                LastStatus::Stopping,
                LastStatus::Deprovisioning,
                LastStatus::Stopped
            ]
        );
    }
}
