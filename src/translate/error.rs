//! Why a task definition cannot be turned into a pod.

/// A task definition (with its overrides) that cannot run on Kubernetes as written.
///
/// Every message names the ECS field (its JSON path) and says what to change, because it ends up in a
/// status condition and an Event that the author of the task definition reads.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TranslateError {
    /// A field holds a value that has no faithful Kubernetes form.
    #[error("{field} {value:?}: {reason}")]
    Invalid {
        /// JSON path of the field, e.g. `containerDefinitions[1].user`.
        field: String,
        /// The value as written.
        value: String,
        /// Why, and what to write instead.
        reason: String,
    },
    /// Fields that are each valid but cannot hold together on Kubernetes.
    #[error("{field}: {reason}")]
    Conflict {
        /// JSON path of the (first) field involved.
        field: String,
        /// What conflicts, and what to change.
        reason: String,
    },
    /// A container name that names no container of the task definition.
    #[error(
        "{field}: there is no container named {name:?} in containerDefinitions; use the name of one of its containers"
    )]
    UnknownContainer {
        /// JSON path of the reference, e.g. `containerDefinitions[0].dependsOn[1].containerName`.
        field: String,
        /// The name as written.
        name: String,
    },
    /// `dependsOn` with `HEALTHY` on a container that has no `healthCheck`.
    #[error(
        "{field}: condition HEALTHY needs a healthCheck on container {container:?}, which has none; add a healthCheck to it or use condition START"
    )]
    HealthyWithoutHealthCheck {
        /// JSON path of the dependency.
        field: String,
        /// The ECS name of the container depended on.
        container: String,
    },
    /// `dependsOn` forms a cycle, so no container of the cycle could ever start.
    #[error(
        "containerDefinitions dependsOn forms a cycle: {} waits for {}; remove one of these dependencies",
        .containers.join(" waits for "),
        .containers.first().map(String::as_str).unwrap_or_default()
    )]
    DependencyCycle {
        /// ECS container names in waiting order: each waits for the next, the last for the first.
        containers: Vec<String>,
    },
}

impl TranslateError {
    pub(crate) fn invalid(
        field: impl Into<String>,
        value: impl Into<String>,
        reason: impl Into<String>,
    ) -> Self {
        TranslateError::Invalid {
            field: field.into(),
            value: value.into(),
            reason: reason.into(),
        }
    }

    pub(crate) fn conflict(field: impl Into<String>, reason: impl Into<String>) -> Self {
        TranslateError::Conflict {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_quotes_the_value_after_the_field() {
        let e = TranslateError::invalid(
            "containerDefinitions[1].user",
            "nginx",
            "a user name cannot be resolved before the container starts on Kubernetes; use a numeric uid or uid:gid",
        );
        assert_eq!(
            e.to_string(),
            "containerDefinitions[1].user \"nginx\": a user name cannot be resolved before the container starts on Kubernetes; use a numeric uid or uid:gid"
        );
    }

    #[test]
    fn cycle_names_every_container_and_closes_the_loop() {
        let e = TranslateError::DependencyCycle {
            containers: vec!["web".into(), "db".into()],
        };
        assert_eq!(
            e.to_string(),
            "containerDefinitions dependsOn forms a cycle: web waits for db waits for web; remove one of these dependencies"
        );
        let e = TranslateError::DependencyCycle {
            containers: vec!["solo".into()],
        };
        assert!(e.to_string().contains("solo waits for solo"));
    }
}
