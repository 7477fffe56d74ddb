//! Translation: a TaskDefinition (with a task's overrides) → the spec of the task's pod.
//!
//! Pure: no Kubernetes client, no I/O. [`translate`] builds a [`PodTemplate`]; [`not_honoured`] lists the
//! fields of a definition that have no Kubernetes effect (for `TaskDefinition` status). Pod metadata
//! (name, labels, owner) and placement are added by the callers. The full field-by-field mapping, with
//! the reason for every field that is not honoured, is in `docs/translation.md`.
//!
//! One private module per concern: `names` (DNS names), `env` and `secrets`, `resources`, `health`,
//! `dependencies` (which container runs where), `volumes`, `security`, `ports`, `network`, `pod`
//! (pod-wide settings), `restart`, `annotations`, `overrides` and `not_honoured`.

mod annotations;
mod dependencies;
mod env;
mod error;
mod health;
mod names;
mod network;
mod not_honoured;
mod overrides;
mod pod;
mod ports;
mod resources;
mod restart;
mod secrets;
mod security;
mod volumes;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Container, PodSecurityContext, PodSpec};

pub use annotations::{
    CONTAINER_NAMES_ANNOTATION, DOCKER_LABELS_PREFIX, TAGS_ANNOTATION, docker_labels_annotation,
};
pub use error::TranslateError;
/// `runtimePlatform` → the node labels a task's pod requires (`kubernetes.io/arch`, `kubernetes.io/os`).
pub use pod::node_selector as runtime_platform_labels;
pub use resources::GPU_RESOURCE;
pub use volumes::PVC_DRIVER;

use crate::api::task::TaskOverride;
use crate::api::task_definition::{DependencyCondition, NotHonouredField, TaskDefinitionSpec};
use names::NameAllocator;
use not_honoured::container_path;

/// The pod of a task, without metadata name, labels, owner or placement.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PodTemplate {
    /// The pod spec.
    pub spec: PodSpec,
    /// Pod annotations: the container name map, docker labels and tags.
    pub annotations: BTreeMap<String, String>,
    /// One entry per ECS container, in task definition order.
    pub containers: Vec<ContainerInfo>,
    /// Fields of the definition and of the overrides that have no effect, sorted and deduplicated.
    pub not_honoured: Vec<NotHonouredField>,
}

/// How one ECS container appears in the pod.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContainerInfo {
    /// The ECS container name.
    pub ecs_name: String,
    /// The container's name in the pod (a DNS label).
    pub k8s_name: String,
    /// ECS `essential` (default true): when it stops, the task stops. Enforced by the task controller.
    pub essential: bool,
    /// Where the container runs in the pod.
    pub role: ContainerRole,
    /// Whether the container has a readiness probe carrying its ECS health check.
    pub health_check: bool,
    /// ECS `startTimeout`: seconds this container may take, from its own start, to reach the condition
    /// the containers that depend on it wait for ([`ContainerInfo::awaited`]); enforced by the task
    /// controller.
    pub start_timeout: Option<i32>,
    /// What the containers that depend on this one wait for, when that is a condition `startTimeout`
    /// bounds: `COMPLETE` (it exits: an init container; `SUCCESS` too) or `HEALTHY`.
    pub awaited: Option<DependencyCondition>,
    /// ECS `restartPolicy` is enabled and honoured (regular container or sidecar): an exit the kubelet
    /// restarts is not the container stopping. Exits with an ignored exit code are not restarted.
    pub restart_in_place: bool,
    /// ECS `restartPolicy.ignoredExitCodes`: exits ECS never restarts.
    pub ignored_exit_codes: Vec<i32>,
    /// ECS `restartPolicy.restartAttemptPeriod` (default 300): ECS restarts a container only when it
    /// ran at least this many seconds; the task controller enforces it.
    pub restart_attempt_period: i32,
}

/// ECS's default `restartPolicy.restartAttemptPeriod`.
pub const DEFAULT_RESTART_ATTEMPT_PERIOD: i32 = 300;

/// Where an ECS container runs in the pod (decided by `dependsOn`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ContainerRole {
    /// A regular container: nothing depends on it.
    Regular,
    /// A native sidecar (init container with `restartPolicy: Always`): others depend on it with
    /// `START` or `HEALTHY`.
    Sidecar,
    /// A run-to-completion init container: others depend on it with `COMPLETE` or `SUCCESS`.
    Init,
}

/// Translate a task definition, with a task's overrides, into its pod.
pub fn translate(
    td: &TaskDefinitionSpec,
    overrides: Option<&TaskOverride>,
) -> Result<PodTemplate, TranslateError> {
    let mut report = Vec::new();
    let effective;
    let td = match overrides {
        Some(o) => {
            report.extend(overrides::not_honoured(o));
            effective = overrides::apply(td, o)?;
            &effective
        }
        None => td,
    };
    if td.container_definitions.is_empty() {
        return Err(TranslateError::conflict(
            "containerDefinitions",
            "a task definition needs at least one container",
        ));
    }
    report.extend(not_honoured::scan(td));

    let plan = dependencies::plan(td)?;
    report.extend(plan.not_honoured.iter().cloned());
    let mut names = NameAllocator::new();
    let k8s_names: Vec<String> = td
        .container_definitions
        .iter()
        .map(|c| names.allocate(&c.name, "container"))
        .collect();
    let volumes = volumes::plan(td, &k8s_names)?;
    report.extend(volumes.not_honoured.iter().cloned());
    let network = network::network(td, &mut report)?;
    let size = resources::task_size(td)?;
    let ephemeral_gib = td.ephemeral_storage.as_ref().map(|e| e.size_in_gi_b);
    let ephemeral_holder = td
        .container_definitions
        .iter()
        .position(|c| c.essential.unwrap_or(true))
        .unwrap_or(0);

    let mut built = Vec::with_capacity(td.container_definitions.len());
    let mut infos = Vec::with_capacity(td.container_definitions.len());
    for (i, c) in td.container_definitions.iter().enumerate() {
        let path = container_path(i);
        let role = plan.roles[i];
        let mut k8s = Container {
            name: k8s_names[i].clone(),
            image: Some(c.image.clone()),
            command: c.entry_point.as_deref().map(env::literals),
            args: c.command.as_deref().map(env::literals),
            working_dir: c.working_directory.clone(),
            stdin: c.interactive.filter(|b| *b),
            tty: c.pseudo_terminal.filter(|b| *b),
            ..Default::default()
        };
        let vars = env::env(c, &path, &mut report)?;
        k8s.env = (!vars.is_empty()).then_some(vars);
        let ports = ports::ports(c, &path, network.host_network, &mut report)?;
        k8s.ports = (!ports.is_empty()).then_some(ports);
        k8s.resources = resources::container_resources(
            c,
            &path,
            ephemeral_gib.filter(|_| i == ephemeral_holder),
        )?;
        k8s.security_context = security::security_context(c, &path)?;
        let mounts = &volumes.mounts[i];
        k8s.volume_mounts = (!mounts.is_empty()).then(|| mounts.clone());
        let health_field = format!("{path}.healthCheck");
        let essential = c.essential.unwrap_or(true);
        let mut health_check = false;
        match &c.health_check {
            None => {}
            Some(hc) if health::ignored(hc) => report.push(not_honoured::nh(
                format!("{health_field}.command"),
                "the command starts with neither CMD nor CMD-SHELL, so Docker ignores the health check: the container has no health check and its healthStatus is UNKNOWN",
            )),
            Some(_) if role == ContainerRole::Init => report.push(not_honoured::nh(
                &health_field,
                "other containers wait for this one to complete, so it runs as an init container, which cannot have probes",
            )),
            Some(hc) => {
                if essential {
                    k8s.readiness_probe = Some(health::readiness_probe(hc, &health_field)?);
                    health_check = true;
                } else {
                    report.push(not_honoured::nh(
                        &health_field,
                        "the container is not essential: ECS lets only essential containers decide the task's health and load balancer membership, and a readiness probe would take the whole pod out of the load balancer, so the check is not run as one and the container's healthStatus is UNKNOWN (it still gates the containers that wait for it to be HEALTHY)",
                    ));
                }
                // A startup probe holds back the containers after it: only a HEALTHY dependency asks
                // for that.
                if role == ContainerRole::Sidecar && plan.healthy_gate[i] {
                    k8s.startup_probe = Some(health::startup_gate(hc, &health_field)?);
                }
            }
        }
        if role == ContainerRole::Sidecar {
            k8s.restart_policy = Some("Always".into());
        }
        restart::apply(c, role, &path, &mut k8s, &mut report);
        infos.push(ContainerInfo {
            ecs_name: c.name.clone(),
            k8s_name: k8s_names[i].clone(),
            essential,
            role,
            health_check,
            start_timeout: c.start_timeout,
            awaited: match role {
                ContainerRole::Init => Some(DependencyCondition::Complete),
                ContainerRole::Sidecar if plan.healthy_gate[i] => {
                    Some(DependencyCondition::Healthy)
                }
                _ => None,
            },
            restart_in_place: role != ContainerRole::Init
                && c.restart_policy.as_ref().is_some_and(|rp| rp.enabled),
            ignored_exit_codes: c
                .restart_policy
                .as_ref()
                .and_then(|rp| rp.ignored_exit_codes.clone())
                .unwrap_or_default(),
            restart_attempt_period: c
                .restart_policy
                .as_ref()
                .and_then(|rp| rp.restart_attempt_period)
                .unwrap_or(DEFAULT_RESTART_ATTEMPT_PERIOD),
        });
        built.push(Some(k8s));
    }
    ports::check_host_ports(
        built
            .iter()
            .enumerate()
            .filter_map(|(i, c)| c.as_ref().map(|c| (c, container_path(i)))),
    )?;

    let init_containers: Vec<Container> = plan
        .init_order
        .iter()
        .filter_map(|i| built[*i].take())
        .collect();
    let containers: Vec<Container> = built.into_iter().flatten().collect();
    let ns = pod::namespaces(td, &mut report);
    let sysctls = pod::sysctls(td, ns, network.host_network, &mut report)?;
    let node_selector = pod::node_selector(td)?;
    let service_account_name = td
        .task_role_arn
        .as_deref()
        .map(|r| pod::service_account(r, "taskRoleArn"))
        .transpose()?;

    let spec = PodSpec {
        containers,
        init_containers: (!init_containers.is_empty()).then_some(init_containers),
        volumes: (!volumes.volumes.is_empty()).then_some(volumes.volumes),
        restart_policy: Some("Never".into()),
        termination_grace_period_seconds: Some(pod::termination_grace_period(td)),
        resources: resources::pod_resources(size, &td.container_definitions)?,
        host_network: network.host_network.then_some(true),
        dns_policy: network.dns_policy,
        dns_config: network.dns_config,
        host_aliases: network.host_aliases,
        hostname: network.hostname,
        host_pid: ns.host_pid.then_some(true),
        host_ipc: ns.host_ipc.then_some(true),
        share_process_namespace: ns.share_process_namespace.then_some(true),
        security_context: (!sysctls.is_empty()).then(|| PodSecurityContext {
            sysctls: Some(sysctls),
            ..Default::default()
        }),
        service_account_name,
        node_selector: (!node_selector.is_empty()).then_some(node_selector),
        ..Default::default()
    };
    Ok(PodTemplate {
        spec,
        annotations: annotations::annotations(td, &k8s_names)?,
        containers: infos,
        not_honoured: not_honoured::normalise(report),
    })
}

/// The fields of `td` that are accepted but have no effect on Kubernetes, sorted and deduplicated (what
/// `TaskDefinition` status shows). For a definition that cannot be translated at all, the fields that are
/// never honoured whatever the rest says.
pub fn not_honoured(td: &TaskDefinitionSpec) -> Vec<NotHonouredField> {
    match translate(td, None) {
        Ok(pod) => pod.not_honoured,
        Err(_) => not_honoured::normalise(not_honoured::scan(td)),
    }
}
