//! RunTask `overrides` → the task definition the task actually runs.
//!
//! Overrides are applied to a copy of the definition before it is translated, so every mapping sees the
//! values the task runs with.

use super::TranslateError;
use super::not_honoured::nh;
use crate::api::task::TaskOverride;
use crate::api::task_definition::{NotHonouredField, TaskDefinitionSpec};

/// `td` with `o` applied: `command` replaces the container's command (Kubernetes `args`), `environment`
/// entries are added and win over the container's variables and secrets of the same name, and `cpu`,
/// `memory`, `memoryReservation` and `resourceRequirements` replace the container's; the task's `cpu`,
/// `memory`, `taskRoleArn` and `ephemeralStorage` replace the definition's.
pub(crate) fn apply(
    td: &TaskDefinitionSpec,
    o: &TaskOverride,
) -> Result<TaskDefinitionSpec, TranslateError> {
    let mut td = td.clone();
    for (k, co) in o.container_overrides.iter().flatten().enumerate() {
        let c = td
            .container_definitions
            .iter_mut()
            .find(|c| c.name == co.name)
            .ok_or_else(|| TranslateError::UnknownContainer {
                field: format!("overrides.containerOverrides[{k}].name"),
                name: co.name.clone(),
            })?;
        if let Some(command) = &co.command {
            c.command = Some(command.clone());
        }
        if let Some(env) = co.environment.as_ref().filter(|e| !e.is_empty()) {
            if let Some(secrets) = &mut c.secrets {
                secrets.retain(|s| {
                    !env.iter()
                        .any(|e| e.name.as_deref() == Some(s.name.as_str()))
                });
            }
            c.environment
                .get_or_insert_with(Vec::new)
                .extend(env.iter().cloned());
        }
        if co.cpu.is_some() {
            c.cpu = co.cpu;
        }
        if co.memory.is_some() {
            c.memory = co.memory;
        }
        if co.memory_reservation.is_some() {
            c.memory_reservation = co.memory_reservation;
        }
        if let Some(rr) = &co.resource_requirements {
            c.resource_requirements = Some(rr.clone());
        }
    }
    if o.cpu.is_some() {
        td.cpu.clone_from(&o.cpu);
    }
    if o.memory.is_some() {
        td.memory.clone_from(&o.memory);
    }
    if o.task_role_arn.is_some() {
        td.task_role_arn.clone_from(&o.task_role_arn);
    }
    if o.ephemeral_storage.is_some() {
        td.ephemeral_storage.clone_from(&o.ephemeral_storage);
    }
    Ok(td)
}

/// Override fields with no Kubernetes effect.
pub(crate) fn not_honoured(o: &TaskOverride) -> Vec<NotHonouredField> {
    let mut out = Vec::new();
    for (k, co) in o.container_overrides.iter().flatten().enumerate() {
        if co.environment_files.as_ref().is_some_and(|f| !f.is_empty()) {
            out.push(nh(
                format!("overrides.containerOverrides[{k}].environmentFiles"),
                "environment files live in S3, which the operator does not read; use environment",
            ));
        }
    }
    if o.execution_role_arn.is_some() {
        out.push(nh(
            "overrides.executionRoleArn",
            "the kubelet pulls images and reads Secrets itself, so there is no agent identity to override",
        ));
    }
    if o.inference_accelerator_overrides
        .as_ref()
        .is_some_and(|v| !v.is_empty())
    {
        out.push(nh(
            "overrides.inferenceAcceleratorOverrides",
            "Elastic Inference accelerators do not exist on Kubernetes",
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::common::KeyValuePair;
    use crate::api::task::{ContainerOverride, InferenceAcceleratorOverride};
    use crate::api::task_definition::{
        ContainerDefinition, EnvironmentFile, EphemeralStorage, ResourceRequirement, Secret,
    };

    fn kv(name: &str, value: &str) -> KeyValuePair {
        KeyValuePair {
            name: Some(name.into()),
            value: Some(value.into()),
        }
    }

    fn td() -> TaskDefinitionSpec {
        TaskDefinitionSpec {
            container_definitions: vec![
                ContainerDefinition {
                    name: "web".into(),
                    image: "nginx".into(),
                    entry_point: Some(vec!["/entry".into()]),
                    command: Some(vec!["serve".into()]),
                    environment: Some(vec![kv("A", "1"), kv("B", "2")]),
                    secrets: Some(vec![
                        Secret {
                            name: "B".into(),
                            value_from: "s:b".into(),
                        },
                        Secret {
                            name: "C".into(),
                            value_from: "s:c".into(),
                        },
                    ]),
                    cpu: Some(256),
                    memory: Some(512),
                    ..Default::default()
                },
                ContainerDefinition {
                    name: "side".into(),
                    image: "busybox".into(),
                    ..Default::default()
                },
            ],
            cpu: Some("512".into()),
            memory: Some("1GB".into()),
            task_role_arn: Some("web".into()),
            ..Default::default()
        }
    }

    #[test]
    fn no_overrides_no_change() {
        assert_eq!(apply(&td(), &TaskOverride::default()).unwrap(), td());
    }

    #[test]
    fn container_overrides_replace_and_merge() {
        let o = TaskOverride {
            container_overrides: Some(vec![ContainerOverride {
                name: "web".into(),
                command: Some(vec!["migrate".into()]),
                environment: Some(vec![kv("B", "override"), kv("D", "4")]),
                cpu: Some(128),
                memory: Some(1024),
                memory_reservation: Some(256),
                resource_requirements: Some(vec![ResourceRequirement {
                    value: "1".into(),
                    type_: "GPU".into(),
                }]),
                ..Default::default()
            }]),
            ..Default::default()
        };
        let out = apply(&td(), &o).unwrap();
        let web = &out.container_definitions[0];
        assert_eq!(web.entry_point, Some(vec!["/entry".to_string()]));
        assert_eq!(web.command, Some(vec!["migrate".to_string()]));
        assert_eq!(
            web.environment.as_ref().unwrap(),
            &vec![
                kv("A", "1"),
                kv("B", "2"),
                kv("B", "override"),
                kv("D", "4")
            ]
        );
        // The override of B wins over the secret B too.
        let secrets: Vec<_> = web
            .secrets
            .iter()
            .flatten()
            .map(|s| s.name.as_str())
            .collect();
        assert_eq!(secrets, ["C"]);
        assert_eq!(
            (web.cpu, web.memory, web.memory_reservation),
            (Some(128), Some(1024), Some(256))
        );
        assert_eq!(web.resource_requirements.as_ref().unwrap().len(), 1);
        assert_eq!(out.container_definitions[1], td().container_definitions[1]);
    }

    #[test]
    fn task_overrides_replace() {
        let o = TaskOverride {
            cpu: Some("1 vCPU".into()),
            memory: Some("2048".into()),
            task_role_arn: Some("arn:aws:iam::1:role/other".into()),
            ephemeral_storage: Some(EphemeralStorage { size_in_gi_b: 50 }),
            ..Default::default()
        };
        let out = apply(&td(), &o).unwrap();
        assert_eq!(out.cpu.as_deref(), Some("1 vCPU"));
        assert_eq!(out.memory.as_deref(), Some("2048"));
        assert_eq!(
            out.task_role_arn.as_deref(),
            Some("arn:aws:iam::1:role/other")
        );
        assert_eq!(out.ephemeral_storage.unwrap().size_in_gi_b, 50);
    }

    #[test]
    fn unknown_container_is_an_error() {
        let o = TaskOverride {
            container_overrides: Some(vec![
                ContainerOverride {
                    name: "web".into(),
                    ..Default::default()
                },
                ContainerOverride {
                    name: "Web".into(),
                    ..Default::default()
                },
            ]),
            ..Default::default()
        };
        assert_eq!(
            apply(&td(), &o).unwrap_err(),
            TranslateError::UnknownContainer {
                field: "overrides.containerOverrides[1].name".into(),
                name: "Web".into()
            }
        );
    }

    #[test]
    fn unsupported_overrides_are_reported() {
        let o = TaskOverride {
            container_overrides: Some(vec![ContainerOverride {
                name: "web".into(),
                environment_files: Some(vec![EnvironmentFile {
                    value: "arn:aws:s3:::b/k".into(),
                    type_: "s3".into(),
                }]),
                ..Default::default()
            }]),
            execution_role_arn: Some("arn:aws:iam::1:role/exec".into()),
            inference_accelerator_overrides: Some(vec![InferenceAcceleratorOverride::default()]),
            ..Default::default()
        };
        let fields: Vec<_> = not_honoured(&o).into_iter().map(|f| f.field).collect();
        assert_eq!(
            fields,
            [
                "overrides.containerOverrides[0].environmentFiles",
                "overrides.executionRoleArn",
                "overrides.inferenceAcceleratorOverrides"
            ]
        );
        assert!(not_honoured(&TaskOverride::default()).is_empty());
    }
}
