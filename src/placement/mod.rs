//! Placement: the ECS cluster query language and the mapping of ECS placement to Kubernetes scheduling.
