//! ECS fields that are accepted but have no effect on Kubernetes, each with the reason.
//!
//! [`scan`] covers the fields that are never honoured, whatever the rest of the definition says. Fields
//! whose fate depends on the translation (a port name that is not a valid Kubernetes name, a health check
//! on a container that runs as an init container, …) are reported by the module that maps them.

use crate::api::task_definition::{
    ContainerDefinition, IpcMode, NetworkMode, NotHonouredField, TaskDefinitionSpec,
};

/// One not-honoured field.
pub(crate) fn nh(field: impl Into<String>, reason: impl Into<String>) -> NotHonouredField {
    NotHonouredField {
        field: field.into(),
        reason: reason.into(),
    }
}

/// Sorted and without duplicates, as `status.notHonoured` shows it.
pub(crate) fn normalise(mut fields: Vec<NotHonouredField>) -> Vec<NotHonouredField> {
    fields.sort();
    fields.dedup();
    fields
}

/// JSON path of container `i`.
pub(crate) fn container_path(i: usize) -> String {
    format!("containerDefinitions[{i}]")
}

fn present<T>(v: &Option<Vec<T>>) -> bool {
    v.as_ref().is_some_and(|v| !v.is_empty())
}

/// Fields of the definition that have no Kubernetes effect in any translation.
pub(crate) fn scan(td: &TaskDefinitionSpec) -> Vec<NotHonouredField> {
    let mut out = Vec::new();
    if td.execution_role_arn.is_some() {
        out.push(nh(
            "executionRoleArn",
            "the kubelet pulls images (give the task's ServiceAccount imagePullSecrets) and secrets are read by the kubelet from Kubernetes Secrets, so there is no agent identity",
        ));
    }
    if present(&td.requires_compatibilities) {
        out.push(nh(
            "requiresCompatibilities",
            "Kubernetes nodes are the only capacity; launch type compatibility is not checked",
        ));
    }
    if td.proxy_configuration.is_some() {
        out.push(nh(
            "proxyConfiguration",
            "App Mesh proxy configuration has no Kubernetes equivalent; run the proxy as a container of the task or use a service mesh",
        ));
    }
    if present(&td.inference_accelerators) {
        out.push(nh(
            "inferenceAccelerators",
            "Elastic Inference accelerators do not exist on Kubernetes",
        ));
    }
    if td.enable_fault_injection == Some(true) {
        out.push(nh(
            "enableFaultInjection",
            "the AWS Fault Injection Service endpoints do not exist on Kubernetes",
        ));
    }
    if td.network_mode == Some(NetworkMode::None) {
        out.push(nh(
            "networkMode",
            "none: a pod always has its own network namespace with the cluster network; it cannot be started without networking",
        ));
    }
    if td.ipc_mode == Some(IpcMode::None) {
        out.push(nh(
            "ipcMode",
            "none: a pod always has a private IPC namespace shared by its containers; it cannot be turned off",
        ));
    }
    for (i, tag) in td.tags.iter().flatten().enumerate() {
        if tag.key.as_deref().unwrap_or_default().is_empty() {
            out.push(nh(
                format!("tags[{i}]"),
                "a tag without a key cannot be copied to the pod's tags annotation",
            ));
        }
    }
    for (i, c) in td.container_definitions.iter().enumerate() {
        scan_container(&container_path(i), c, &mut out);
    }
    out
}

fn scan_container(p: &str, c: &ContainerDefinition, out: &mut Vec<NotHonouredField>) {
    if present(&c.links) {
        out.push(nh(
            format!("{p}.links"),
            "containers of a task share the pod's network namespace: reach another container on localhost",
        ));
    }
    if present(&c.environment_files) {
        out.push(nh(
            format!("{p}.environmentFiles"),
            "environment files live in S3, which the operator does not read; use environment, or secrets backed by a Kubernetes Secret",
        ));
    }
    if c.repository_credentials.is_some() {
        out.push(nh(
            format!("{p}.repositoryCredentials"),
            "the kubelet pulls images; give the task's ServiceAccount an imagePullSecret instead",
        ));
    }
    if c.disable_networking == Some(true) {
        out.push(nh(
            format!("{p}.disableNetworking"),
            "every container of a pod shares the pod's network; it cannot be cut off",
        ));
    }
    if present(&c.docker_security_options) {
        out.push(nh(
            format!("{p}.dockerSecurityOptions"),
            "Docker security options are not translated; SELinux, AppArmor and seccomp are set in a pod's securityContext",
        ));
    }
    if present(&c.ulimits) {
        out.push(nh(
            format!("{p}.ulimits"),
            "Kubernetes has no per-container ulimits; the container runtime's defaults apply",
        ));
    }
    if c.log_configuration.is_some() {
        out.push(nh(
            format!("{p}.logConfiguration"),
            "log drivers do not exist on Kubernetes: container output goes to the node's log pipeline (kubectl logs)",
        ));
    }
    if c.firelens_configuration.is_some() {
        out.push(nh(
            format!("{p}.firelensConfiguration"),
            "FireLens log routing does not exist on Kubernetes; run a log collector on the nodes",
        ));
    }
    if present(&c.credential_specs) {
        out.push(nh(
            format!("{p}.credentialSpecs"),
            "Active Directory credential specs are not translated",
        ));
    }
    for (j, pm) in c.port_mappings.iter().flatten().enumerate() {
        if pm.container_port_range.is_some() {
            out.push(nh(
                format!("{p}.portMappings[{j}].containerPortRange"),
                "Kubernetes container ports are single ports; list each port as a containerPort",
            ));
        }
    }
    if let Some(lp) = &c.linux_parameters {
        if present(&lp.devices) {
            out.push(nh(
                format!("{p}.linuxParameters.devices"),
                "host devices reach Kubernetes containers through device plugins and resource requests (resourceRequirements GPU), not by path",
            ));
        }
        if lp.max_swap.is_some() {
            out.push(nh(
                format!("{p}.linuxParameters.maxSwap"),
                "swap is configured per node (the kubelet's swap behaviour), not per container",
            ));
        }
        if lp.swappiness.is_some() {
            out.push(nh(
                format!("{p}.linuxParameters.swappiness"),
                "swap is configured per node (the kubelet's swap behaviour), not per container",
            ));
        }
        for (j, t) in lp.tmpfs.iter().flatten().enumerate() {
            if present(&t.mount_options) {
                out.push(nh(
                    format!("{p}.linuxParameters.tmpfs[{j}].mountOptions"),
                    "the tmpfs becomes a memory-backed emptyDir, which takes no mount options",
                ));
            }
        }
    }
    for (j, r) in c.resource_requirements.iter().flatten().enumerate() {
        match r.type_.as_str() {
            "GPU" => {}
            "InferenceAccelerator" => out.push(nh(
                format!("{p}.resourceRequirements[{j}]"),
                "Elastic Inference accelerators do not exist on Kubernetes",
            )),
            _ => out.push(nh(
                format!("{p}.resourceRequirements[{j}].type"),
                "only GPU is mapped (to an nvidia.com/gpu limit)",
            )),
        }
    }
    // An essential container that exits before restartAttemptPeriod stops its task, as in ECS (the task
    // controller decides it from the exit); a non-essential one cannot be left stopped on its own.
    if c.restart_policy.as_ref().is_some_and(|rp| rp.enabled) && c.essential == Some(false) {
        out.push(nh(
            format!("{p}.restartPolicy.restartAttemptPeriod"),
            "the container is not essential: when it exits before running restartAttemptPeriod seconds, ECS leaves it stopped, but the kubelet restarts it (with an exponential back-off of 10 s doubling up to 5 min) and a single container of a pod cannot be stopped",
        ));
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::api::common::{KeyValuePair, Tag};
    use crate::api::task_definition::*;

    fn fields(td: &TaskDefinitionSpec) -> Vec<String> {
        scan(td).into_iter().map(|f| f.field).collect()
    }

    #[test]
    fn a_plain_definition_has_nothing_to_report() {
        let td = TaskDefinitionSpec {
            container_definitions: vec![ContainerDefinition {
                name: "web".into(),
                image: "nginx".into(),
                disable_networking: Some(false),
                version_consistency: Some(VersionConsistency::Disabled),
                ..Default::default()
            }],
            enable_fault_injection: Some(false),
            network_mode: Some(NetworkMode::Bridge),
            ..Default::default()
        };
        assert!(scan(&td).is_empty());
    }

    #[test]
    fn every_unsupported_field_is_reported() {
        let c = ContainerDefinition {
            name: "web".into(),
            image: "nginx".into(),
            links: Some(vec!["db".into()]),
            environment_files: Some(vec![EnvironmentFile {
                value: "arn:aws:s3:::b/k.env".into(),
                type_: "s3".into(),
            }]),
            repository_credentials: Some(RepositoryCredentials {
                credentials_parameter: "arn".into(),
            }),
            disable_networking: Some(true),
            docker_security_options: Some(vec!["no-new-privileges".into()]),
            ulimits: Some(vec![Ulimit {
                name: "nofile".into(),
                soft_limit: 1,
                hard_limit: 2,
            }]),
            log_configuration: Some(LogConfiguration {
                log_driver: "awslogs".into(),
                ..Default::default()
            }),
            firelens_configuration: Some(FirelensConfiguration {
                type_: "fluentbit".into(),
                options: Some(BTreeMap::new()),
            }),
            credential_specs: Some(vec!["credentialspec:arn".into()]),
            version_consistency: Some(VersionConsistency::Enabled),
            port_mappings: Some(vec![PortMapping {
                container_port_range: Some("8000-8010".into()),
                ..Default::default()
            }]),
            linux_parameters: Some(LinuxParameters {
                devices: Some(vec![Device {
                    host_path: "/dev/fuse".into(),
                    ..Default::default()
                }]),
                max_swap: Some(0),
                swappiness: Some(10),
                tmpfs: Some(vec![Tmpfs {
                    container_path: "/tmp".into(),
                    size: 64,
                    mount_options: Some(vec!["noexec".into()]),
                }]),
                ..Default::default()
            }),
            resource_requirements: Some(vec![
                ResourceRequirement {
                    value: "1".into(),
                    type_: "GPU".into(),
                },
                ResourceRequirement {
                    value: "device_1".into(),
                    type_: "InferenceAccelerator".into(),
                },
                ResourceRequirement {
                    value: "1".into(),
                    type_: "FPGA".into(),
                },
            ]),
            restart_policy: Some(ContainerRestartPolicy {
                enabled: true,
                ignored_exit_codes: None,
                restart_attempt_period: Some(60),
            }),
            environment: Some(vec![KeyValuePair::default()]),
            ..Default::default()
        };
        let td = TaskDefinitionSpec {
            container_definitions: vec![c],
            execution_role_arn: Some("arn:aws:iam::1:role/exec".into()),
            requires_compatibilities: Some(vec![Compatibility::Fargate]),
            proxy_configuration: Some(ProxyConfiguration {
                container_name: "envoy".into(),
                ..Default::default()
            }),
            inference_accelerators: Some(vec![InferenceAccelerator {
                device_name: "d".into(),
                device_type: "eia2.medium".into(),
            }]),
            enable_fault_injection: Some(true),
            network_mode: Some(NetworkMode::None),
            ipc_mode: Some(IpcMode::None),
            tags: Some(vec![Tag {
                key: None,
                value: Some("v".into()),
            }]),
            ..Default::default()
        };
        let got = fields(&td);
        for want in [
            "executionRoleArn",
            "requiresCompatibilities",
            "proxyConfiguration",
            "inferenceAccelerators",
            "enableFaultInjection",
            "networkMode",
            "ipcMode",
            "tags[0]",
            "containerDefinitions[0].links",
            "containerDefinitions[0].environmentFiles",
            "containerDefinitions[0].repositoryCredentials",
            "containerDefinitions[0].disableNetworking",
            "containerDefinitions[0].dockerSecurityOptions",
            "containerDefinitions[0].ulimits",
            "containerDefinitions[0].logConfiguration",
            "containerDefinitions[0].firelensConfiguration",
            "containerDefinitions[0].credentialSpecs",
            "containerDefinitions[0].portMappings[0].containerPortRange",
            "containerDefinitions[0].linuxParameters.devices",
            "containerDefinitions[0].linuxParameters.maxSwap",
            "containerDefinitions[0].linuxParameters.swappiness",
            "containerDefinitions[0].linuxParameters.tmpfs[0].mountOptions",
            "containerDefinitions[0].resourceRequirements[1]",
            "containerDefinitions[0].resourceRequirements[2].type",
        ] {
            assert!(got.iter().any(|f| f == want), "{want} missing from {got:?}");
        }
        assert!(
            !got.iter()
                .any(|f| f == "containerDefinitions[0].resourceRequirements[0]")
        );
        assert!(scan(&td).iter().all(|f| !f.reason.is_empty()));
    }

    #[test]
    fn restart_attempt_period_of_a_disabled_policy_is_moot() {
        let td = TaskDefinitionSpec {
            container_definitions: vec![ContainerDefinition {
                name: "web".into(),
                image: "nginx".into(),
                restart_policy: Some(ContainerRestartPolicy {
                    enabled: false,
                    ignored_exit_codes: None,
                    restart_attempt_period: Some(60),
                }),
                ..Default::default()
            }],
            ..Default::default()
        };
        assert!(scan(&td).is_empty());
    }

    #[test]
    fn restart_attempt_period_is_reported_only_for_non_essential_containers() {
        let container = |essential: Option<bool>| ContainerDefinition {
            name: "web".into(),
            image: "nginx".into(),
            essential,
            restart_policy: Some(ContainerRestartPolicy {
                enabled: true,
                ignored_exit_codes: None,
                restart_attempt_period: None,
            }),
            ..Default::default()
        };
        for essential in [None, Some(true)] {
            let td = TaskDefinitionSpec {
                container_definitions: vec![container(essential)],
                ..Default::default()
            };
            assert!(scan(&td).is_empty(), "{essential:?}");
        }
        let td = TaskDefinitionSpec {
            container_definitions: vec![container(Some(false))],
            ..Default::default()
        };
        assert_eq!(
            fields(&td),
            ["containerDefinitions[0].restartPolicy.restartAttemptPeriod"]
        );
    }

    #[test]
    fn normalise_sorts_and_dedups() {
        let v = normalise(vec![nh("b", "r"), nh("a", "r"), nh("b", "r")]);
        assert_eq!(v, vec![nh("a", "r"), nh("b", "r")]);
    }
}
