//! End-to-end tests of the translation, and properties over generated task definitions.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::{Container, PodSpec};
use proptest::prelude::*;

use super::*;
use crate::api::common::KeyValuePair;
use crate::api::task::ContainerOverride;
use crate::api::task_definition::*;

fn container(name: &str) -> ContainerDefinition {
    ContainerDefinition {
        name: name.into(),
        image: format!("example/{}", name.to_lowercase()),
        essential: Some(true),
        ..Default::default()
    }
}

fn td(containers: Vec<ContainerDefinition>) -> TaskDefinitionSpec {
    TaskDefinitionSpec {
        container_definitions: containers,
        ..Default::default()
    }
}

fn dep(name: &str, condition: DependencyCondition) -> ContainerDependency {
    ContainerDependency {
        container_name: name.into(),
        condition,
    }
}

fn health() -> HealthCheck {
    HealthCheck {
        command: vec![
            "CMD-SHELL".into(),
            "curl -f http://localhost/ || exit 1".into(),
        ],
        ..Default::default()
    }
}

fn kv(name: &str, value: &str) -> KeyValuePair {
    KeyValuePair {
        name: Some(name.into()),
        value: Some(value.into()),
    }
}

fn all_containers(spec: &PodSpec) -> Vec<&Container> {
    spec.init_containers
        .iter()
        .flatten()
        .chain(&spec.containers)
        .collect()
}

fn find<'a>(spec: &'a PodSpec, name: &str) -> &'a Container {
    all_containers(spec)
        .into_iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no container {name}"))
}

fn fields(v: &[NotHonouredField]) -> Vec<&str> {
    v.iter().map(|f| f.field.as_str()).collect()
}

#[test]
fn minimal_definition() {
    let pod = translate(&td(vec![container("web")]), None).unwrap();
    let spec = &pod.spec;
    assert_eq!(spec.containers.len(), 1);
    assert_eq!(spec.init_containers, None);
    assert_eq!(spec.containers[0].name, "web");
    assert_eq!(spec.containers[0].image.as_deref(), Some("example/web"));
    assert_eq!(spec.restart_policy.as_deref(), Some("Never"));
    assert_eq!(spec.termination_grace_period_seconds, Some(30));
    assert_eq!(spec.resources, None);
    assert_eq!(
        pod.annotations[CONTAINER_NAMES_ANNOTATION],
        r#"{"web":"web"}"#
    );
    assert_eq!(
        pod.containers,
        vec![ContainerInfo {
            ecs_name: "web".into(),
            k8s_name: "web".into(),
            essential: true,
            role: ContainerRole::Regular,
            health_check: false,
            start_timeout: None,
            awaited: None,
            restart_in_place: false,
            ignored_exit_codes: vec![],
            restart_attempt_period: 300,
        }]
    );
    assert!(pod.not_honoured.is_empty());
}

#[test]
fn no_privilege_is_added_that_was_not_asked_for() {
    let mut t = td(vec![container("web")]);
    t.volumes = Some(vec![Volume {
        name: "scratch".into(),
        ..Default::default()
    }]);
    t.container_definitions[0].mount_points = Some(vec![MountPoint {
        source_volume: Some("scratch".into()),
        container_path: Some("/scratch".into()),
        read_only: None,
    }]);
    let pod = translate(&t, None).unwrap();
    let s = &pod.spec;
    assert_eq!((s.host_network, s.host_pid, s.host_ipc), (None, None, None));
    assert_eq!(s.share_process_namespace, None);
    assert_eq!(s.security_context, None);
    assert_eq!(s.service_account_name, None);
    assert!(s.volumes.iter().flatten().all(|v| v.host_path.is_none()));
    let c = &s.containers[0];
    assert_eq!(c.security_context, None);
    assert!(c.ports.iter().flatten().all(|p| p.host_port.is_none()));
}

#[test]
fn entry_point_is_command_and_command_is_args() {
    let c = ContainerDefinition {
        entry_point: Some(vec!["/docker-entrypoint.sh".into()]),
        command: Some(vec!["nginx".into(), "-g".into(), "daemon off;".into()]),
        ..container("web")
    };
    let pod = translate(&td(vec![c]), None).unwrap();
    let k = &pod.spec.containers[0];
    assert_eq!(k.command, Some(vec!["/docker-entrypoint.sh".to_string()]));
    assert_eq!(
        k.args,
        Some(vec!["nginx".to_string(), "-g".into(), "daemon off;".into()])
    );

    let only_command = ContainerDefinition {
        command: Some(vec!["sh".into(), "-c".into(), "echo $HOME".into()]),
        ..container("web")
    };
    let pod = translate(&td(vec![only_command]), None).unwrap();
    let k = &pod.spec.containers[0];
    assert_eq!(k.command, None);
    assert_eq!(
        k.args,
        Some(vec!["sh".to_string(), "-c".into(), "echo $$HOME".into()])
    );
}

#[test]
fn a_web_service_definition() {
    let mut t = td(vec![ContainerDefinition {
        cpu: Some(256),
        memory: Some(512),
        memory_reservation: Some(256),
        port_mappings: Some(vec![PortMapping {
            container_port: Some(80),
            name: Some("HTTP".into()),
            ..Default::default()
        }]),
        environment: Some(vec![kv("MODE", "prod")]),
        secrets: Some(vec![Secret {
            name: "DB_PASSWORD".into(),
            value_from:
                "arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/db-AbCdEf:password::"
                    .into(),
        }]),
        health_check: Some(HealthCheck {
            start_period: Some(60),
            ..health()
        }),
        working_directory: Some("/srv".into()),
        interactive: Some(true),
        pseudo_terminal: Some(true),
        docker_labels: Some([("team".to_string(), "web".to_string())].into()),
        ..container("Web_Server")
    }]);
    t.cpu = Some("512".into());
    t.memory = Some("1GB".into());
    t.task_role_arn = Some("arn:aws:iam::123456789012:role/web-server".into());
    t.tags = Some(vec![crate::api::common::Tag {
        key: Some("env".into()),
        value: Some("prod".into()),
    }]);
    let err = translate(&t, None).unwrap_err();
    // "prod/db" is no Secret name: the error says which field and why.
    assert!(
        err.to_string()
            .starts_with("containerDefinitions[0].secrets[0].valueFrom"),
        "{err}"
    );
    t.container_definitions[0].secrets.as_mut().unwrap()[0].value_from =
        "arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod-db-AbCdEf:password::".into();
    let pod = translate(&t, None).unwrap();
    let k = &pod.spec.containers[0];
    assert_eq!(k.name, "web-server");
    assert_eq!(k.working_dir.as_deref(), Some("/srv"));
    assert_eq!((k.stdin, k.tty), (Some(true), Some(true)));
    let port = &k.ports.as_ref().unwrap()[0];
    assert_eq!(
        (port.container_port, port.name.as_deref(), port.host_port),
        (80, Some("http"), None)
    );
    let env = k.env.as_ref().unwrap();
    assert_eq!(env[0].value.as_deref(), Some("prod"));
    let secret = env[1]
        .value_from
        .as_ref()
        .unwrap()
        .secret_key_ref
        .as_ref()
        .unwrap();
    assert_eq!(
        (secret.name.as_str(), secret.key.as_str()),
        ("prod-db", "password")
    );
    let r = k.resources.as_ref().unwrap();
    assert_eq!(r.requests.as_ref().unwrap()["cpu"].0, "250m");
    assert_eq!(r.requests.as_ref().unwrap()["memory"].0, "256Mi");
    assert_eq!(r.limits.as_ref().unwrap()["memory"].0, "512Mi");
    assert!(k.readiness_probe.is_some());
    assert_eq!(
        k.startup_probe, None,
        "a start period is no probe that could stop the container"
    );
    assert_eq!(k.liveness_probe, None);
    let pr = pod.spec.resources.as_ref().unwrap();
    assert_eq!(pr.requests.as_ref().unwrap()["cpu"].0, "500m");
    assert_eq!(pr.limits.as_ref().unwrap()["memory"].0, "1024Mi");
    assert_eq!(pod.spec.service_account_name.as_deref(), Some("web-server"));
    assert_eq!(
        pod.annotations["ecs.operator.dev/docker-labels.web-server"],
        r#"{"team":"web"}"#
    );
    assert_eq!(pod.annotations[TAGS_ANNOTATION], r#"{"env":"prod"}"#);
    assert_eq!(
        pod.annotations[CONTAINER_NAMES_ANNOTATION],
        r#"{"web-server":"Web_Server"}"#
    );
    assert!(pod.containers[0].health_check);
}

#[test]
fn dependencies_place_sidecars_and_init_containers_in_order() {
    let t = td(vec![
        ContainerDefinition {
            depends_on: Some(vec![
                dep("envoy", DependencyCondition::Healthy),
                dep("migrate", DependencyCondition::Success),
                dep("log", DependencyCondition::Start),
            ]),
            start_timeout: Some(120),
            health_check: Some(health()),
            ..container("app")
        },
        ContainerDefinition {
            essential: Some(false),
            depends_on: Some(vec![dep("envoy", DependencyCondition::Healthy)]),
            health_check: Some(health()),
            ..container("migrate")
        },
        ContainerDefinition {
            health_check: Some(health()),
            ..container("envoy")
        },
        container("log"),
    ]);
    let pod = translate(&t, None).unwrap();
    let init: Vec<_> = pod
        .spec
        .init_containers
        .as_ref()
        .unwrap()
        .iter()
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(init, ["envoy", "migrate", "log"]);
    let regular: Vec<_> = pod
        .spec
        .containers
        .iter()
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(regular, ["app"]);
    let roles: Vec<_> = pod.containers.iter().map(|c| c.role).collect();
    assert_eq!(
        roles,
        [
            ContainerRole::Regular,
            ContainerRole::Init,
            ContainerRole::Sidecar,
            ContainerRole::Sidecar
        ]
    );
    assert_eq!(pod.containers[0].start_timeout, Some(120));
    // What the containers waiting for each one need: what its own startTimeout bounds.
    let awaited: Vec<_> = pod.containers.iter().map(|c| c.awaited).collect();
    assert_eq!(
        awaited,
        [
            None,
            Some(DependencyCondition::Complete),
            Some(DependencyCondition::Healthy),
            None
        ]
    );

    let envoy = find(&pod.spec, "envoy");
    assert_eq!(envoy.restart_policy.as_deref(), Some("Always"));
    let gate = envoy
        .startup_probe
        .as_ref()
        .expect("HEALTHY gates on the startup probe");
    assert_eq!(
        gate.failure_threshold,
        Some(i32::MAX),
        "the gate never stops the container"
    );
    assert!(envoy.readiness_probe.is_some());
    let log = find(&pod.spec, "log");
    assert_eq!(log.restart_policy.as_deref(), Some("Always"));
    assert_eq!(log.startup_probe, None);
    let migrate = find(&pod.spec, "migrate");
    assert_eq!(migrate.restart_policy, None);
    assert_eq!(migrate.readiness_probe, None);
    assert_eq!(migrate.startup_probe, None);
    assert!(!pod.containers[1].health_check);
    assert!(!pod.containers[1].essential);
    assert!(fields(&pod.not_honoured).contains(&"containerDefinitions[1].healthCheck"));
}

#[test]
fn a_start_dependency_sidecar_with_a_start_period_does_not_hold_back_others() {
    let t = td(vec![
        ContainerDefinition {
            depends_on: Some(vec![dep("proxy", DependencyCondition::Start)]),
            ..container("app")
        },
        ContainerDefinition {
            health_check: Some(HealthCheck {
                start_period: Some(30),
                ..health()
            }),
            ..container("proxy")
        },
    ]);
    let pod = translate(&t, None).unwrap();
    let proxy = find(&pod.spec, "proxy");
    assert!(proxy.readiness_probe.is_some());
    assert_eq!(proxy.startup_probe, None);
}

#[test]
fn dependency_errors() {
    let cycle = td(vec![
        ContainerDefinition {
            depends_on: Some(vec![dep("b", DependencyCondition::Start)]),
            ..container("a")
        },
        ContainerDefinition {
            depends_on: Some(vec![dep("a", DependencyCondition::Start)]),
            ..container("b")
        },
    ]);
    assert!(matches!(
        translate(&cycle, None),
        Err(TranslateError::DependencyCycle { .. })
    ));
    let unhealthy = td(vec![
        ContainerDefinition {
            depends_on: Some(vec![dep("b", DependencyCondition::Healthy)]),
            ..container("a")
        },
        container("b"),
    ]);
    assert!(matches!(
        translate(&unhealthy, None),
        Err(TranslateError::HealthyWithoutHealthCheck { .. })
    ));
}

#[test]
fn overrides_apply() {
    let t = TaskDefinitionSpec {
        cpu: Some("256".into()),
        memory: Some("512".into()),
        ..td(vec![ContainerDefinition {
            entry_point: Some(vec!["/bin/app".into()]),
            command: Some(vec!["serve".into()]),
            environment: Some(vec![kv("LEVEL", "info"), kv("KEEP", "1")]),
            cpu: Some(128),
            ..container("app")
        }])
    };
    let o = TaskOverride {
        container_overrides: Some(vec![ContainerOverride {
            name: "app".into(),
            command: Some(vec!["migrate".into()]),
            environment: Some(vec![kv("LEVEL", "debug")]),
            cpu: Some(512),
            memory: Some(1024),
            environment_files: Some(vec![EnvironmentFile {
                value: "arn:aws:s3:::b/x.env".into(),
                type_: "s3".into(),
            }]),
            ..Default::default()
        }]),
        cpu: Some("1 vCPU".into()),
        memory: Some("2GB".into()),
        task_role_arn: Some("runner".into()),
        ephemeral_storage: Some(EphemeralStorage { size_in_gi_b: 40 }),
        execution_role_arn: Some("arn:aws:iam::1:role/exec".into()),
        ..Default::default()
    };
    let pod = translate(&t, Some(&o)).unwrap();
    let k = &pod.spec.containers[0];
    assert_eq!(k.command, Some(vec!["/bin/app".to_string()]));
    assert_eq!(k.args, Some(vec!["migrate".to_string()]));
    let env: Vec<_> = k
        .env
        .iter()
        .flatten()
        .map(|e| (e.name.as_str(), e.value.as_deref().unwrap()))
        .collect();
    assert_eq!(env, [("LEVEL", "debug"), ("KEEP", "1")]);
    let r = k.resources.as_ref().unwrap();
    assert_eq!(r.requests.as_ref().unwrap()["cpu"].0, "500m");
    assert_eq!(r.limits.as_ref().unwrap()["memory"].0, "1024Mi");
    assert_eq!(r.limits.as_ref().unwrap()["ephemeral-storage"].0, "40Gi");
    let pr = pod.spec.resources.as_ref().unwrap();
    assert_eq!(pr.limits.as_ref().unwrap()["cpu"].0, "1000m");
    assert_eq!(pr.limits.as_ref().unwrap()["memory"].0, "2048Mi");
    assert_eq!(pod.spec.service_account_name.as_deref(), Some("runner"));
    assert_eq!(
        fields(&pod.not_honoured),
        [
            "overrides.containerOverrides[0].environmentFiles",
            "overrides.executionRoleArn"
        ]
    );
    // Without the overrides the task size would not fit the container.
    let too_small = TaskOverride {
        cpu: Some("0.125 vCPU".into()),
        container_overrides: Some(vec![ContainerOverride {
            name: "app".into(),
            cpu: Some(512),
            ..Default::default()
        }]),
        ..Default::default()
    };
    assert!(translate(&t, Some(&too_small)).is_err());
    let unknown = TaskOverride {
        container_overrides: Some(vec![ContainerOverride {
            name: "ghost".into(),
            ..Default::default()
        }]),
        ..Default::default()
    };
    assert!(matches!(
        translate(&t, Some(&unknown)),
        Err(TranslateError::UnknownContainer { .. })
    ));
}

#[test]
fn ephemeral_storage_goes_to_the_first_essential_container() {
    let mut t = td(vec![
        ContainerDefinition {
            essential: Some(false),
            ..container("helper")
        },
        container("main"),
        container("other"),
    ]);
    t.ephemeral_storage = Some(EphemeralStorage { size_in_gi_b: 21 });
    let pod = translate(&t, None).unwrap();
    let limit = |name: &str| {
        find(&pod.spec, name)
            .resources
            .as_ref()
            .and_then(|r| r.limits.as_ref())
            .and_then(|l| l.get("ephemeral-storage"))
            .map(|q| q.0.clone())
    };
    assert_eq!(limit("helper"), None);
    assert_eq!(limit("main").as_deref(), Some("21Gi"));
    assert_eq!(limit("other"), None);
}

#[test]
fn host_network_task() {
    let mut t = td(vec![ContainerDefinition {
        port_mappings: Some(vec![PortMapping {
            container_port: Some(8080),
            ..Default::default()
        }]),
        ..container("web")
    }]);
    t.network_mode = Some(NetworkMode::Host);
    t.pid_mode = Some(PidMode::Host);
    t.ipc_mode = Some(IpcMode::Host);
    let pod = translate(&t, None).unwrap();
    let s = &pod.spec;
    assert_eq!(s.host_network, Some(true));
    assert_eq!(s.host_pid, Some(true));
    assert_eq!(s.host_ipc, Some(true));
    assert_eq!(s.dns_policy.as_deref(), Some("ClusterFirstWithHostNet"));
    assert_eq!(
        s.containers[0].ports.as_ref().unwrap()[0].host_port,
        Some(8080)
    );

    // Two containers on the same host port cannot share the node's network.
    t.container_definitions.push(ContainerDefinition {
        port_mappings: t.container_definitions[0].port_mappings.clone(),
        ..container("web2")
    });
    assert!(matches!(
        translate(&t, None),
        Err(TranslateError::Conflict { .. })
    ));
}

#[test]
fn linux_parameters_and_pod_settings() {
    let mut t = td(vec![
        ContainerDefinition {
            user: Some("1000:1000".into()),
            readonly_root_filesystem: Some(true),
            linux_parameters: Some(LinuxParameters {
                init_process_enabled: Some(true),
                shared_memory_size: Some(64),
                capabilities: Some(KernelCapabilities {
                    add: None,
                    drop: Some(vec!["ALL".into()]),
                }),
                ..Default::default()
            }),
            system_controls: Some(vec![SystemControl {
                namespace: Some("net.core.somaxconn".into()),
                value: Some("1024".into()),
            }]),
            stop_timeout: Some(90),
            ..container("app")
        },
        ContainerDefinition {
            extra_hosts: Some(vec![HostEntry {
                hostname: "db".into(),
                ip_address: "10.0.0.5".into(),
            }]),
            privileged: Some(true),
            ..container("agent")
        },
    ]);
    t.runtime_platform = Some(RuntimePlatform {
        cpu_architecture: Some("ARM64".into()),
        operating_system_family: Some("LINUX".into()),
    });
    let pod = translate(&t, None).unwrap();
    let s = &pod.spec;
    assert_eq!(s.share_process_namespace, Some(true));
    assert_eq!(s.termination_grace_period_seconds, Some(90));
    let sysctls = s
        .security_context
        .as_ref()
        .unwrap()
        .sysctls
        .as_ref()
        .unwrap();
    assert_eq!(sysctls[0].name, "net.core.somaxconn");
    assert_eq!(s.host_aliases.as_ref().unwrap()[0].ip, "10.0.0.5");
    assert_eq!(
        s.node_selector.as_ref().unwrap()["kubernetes.io/arch"],
        "arm64"
    );
    let app = find(s, "app");
    let sc = app.security_context.as_ref().unwrap();
    assert_eq!((sc.run_as_user, sc.run_as_group), (Some(1000), Some(1000)));
    assert_eq!(sc.privileged, None);
    let shm = app.volume_mounts.as_ref().unwrap();
    assert_eq!(shm[0].mount_path, "/dev/shm");
    let agent = find(s, "agent");
    assert_eq!(
        agent.security_context.as_ref().unwrap().privileged,
        Some(true)
    );
}

#[test]
fn user_names_are_refused() {
    let t = td(vec![
        container("web"),
        ContainerDefinition {
            user: Some("nginx".into()),
            ..container("proxy")
        },
    ]);
    assert_eq!(
        translate(&t, None).unwrap_err().to_string(),
        "containerDefinitions[1].user \"nginx\": a user name cannot be resolved before the container starts on Kubernetes; use a numeric uid or uid:gid"
    );
}

#[test]
fn restart_policy_restarts_regular_containers_in_place() {
    let t = td(vec![ContainerDefinition {
        restart_policy: Some(ContainerRestartPolicy {
            enabled: true,
            ignored_exit_codes: Some(vec![0]),
            restart_attempt_period: Some(60),
        }),
        ..container("worker")
    }]);
    let pod = translate(&t, None).unwrap();
    let k = &pod.spec.containers[0];
    assert_eq!(k.restart_policy.as_deref(), Some("Never"));
    assert_eq!(k.restart_policy_rules.as_ref().unwrap().len(), 1);
    assert_eq!(pod.spec.restart_policy.as_deref(), Some("Never"));
    assert!(pod.containers[0].restart_in_place);
    // The task controller enforces both on an essential container.
    assert_eq!(pod.containers[0].ignored_exit_codes, [0]);
    assert_eq!(pod.containers[0].restart_attempt_period, 60);
    assert!(pod.not_honoured.is_empty(), "{:?}", pod.not_honoured);
}

#[test]
fn colliding_names_stay_unique_and_mapped() {
    let t = td(vec![container("Web"), container("web"), container("WEB_")]);
    let pod = translate(&t, None).unwrap();
    let names: BTreeSet<_> = pod.spec.containers.iter().map(|c| c.name.clone()).collect();
    assert_eq!(names.len(), 3);
    assert_eq!(pod.containers[0].k8s_name, "web");
    let map: BTreeMap<String, String> =
        serde_json::from_str(&pod.annotations[CONTAINER_NAMES_ANNOTATION]).unwrap();
    for info in &pod.containers {
        assert_eq!(map[&info.k8s_name], info.ecs_name);
    }
}

#[test]
fn not_honoured_matches_translate_and_survives_errors() {
    let mut t = td(vec![ContainerDefinition {
        log_configuration: Some(LogConfiguration {
            log_driver: "awslogs".into(),
            ..Default::default()
        }),
        ulimits: Some(vec![Ulimit {
            name: "nofile".into(),
            soft_limit: 1024,
            hard_limit: 4096,
        }]),
        port_mappings: Some(vec![PortMapping {
            container_port: Some(80),
            name: Some("not_valid".into()),
            ..Default::default()
        }]),
        ..container("web")
    }]);
    t.execution_role_arn = Some("arn:aws:iam::1:role/exec".into());
    t.requires_compatibilities = Some(vec![Compatibility::Fargate]);
    let list = not_honoured(&t);
    assert_eq!(list, translate(&t, None).unwrap().not_honoured);
    assert_eq!(
        fields(&list),
        [
            "containerDefinitions[0].logConfiguration",
            "containerDefinitions[0].portMappings[0].name",
            "containerDefinitions[0].ulimits",
            "executionRoleArn",
            "requiresCompatibilities",
        ]
    );
    // An untranslatable definition still reports what is never honoured.
    t.container_definitions[0].user = Some("nginx".into());
    let list = not_honoured(&t);
    assert!(fields(&list).contains(&"containerDefinitions[0].logConfiguration"));
    assert!(fields(&list).contains(&"executionRoleArn"));
}

#[test]
fn empty_definition_is_an_error() {
    assert!(translate(&td(vec![]), None).is_err());
}

// Properties over generated definitions.

const CONDITIONS: [DependencyCondition; 4] = [
    DependencyCondition::Start,
    DependencyCondition::Complete,
    DependencyCondition::Success,
    DependencyCondition::Healthy,
];

fn arb_task_cpu() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        Just(None),
        prop::sample::select(vec![
            "256", "512", "1024", "4096", "1 vCPU", "0.5 vcpu", "2 vCPU"
        ])
        .prop_map(|s| Some(s.to_string())),
        "[0-9a-zA-Z. ]{0,8}".prop_map(Some),
    ]
}

fn arb_task_memory() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        Just(None),
        prop::sample::select(vec!["512", "1024", "4096", "1GB", "2 GB", "0.5GB", "30GB"])
            .prop_map(|s| Some(s.to_string())),
        "[0-9a-zA-Z. ]{0,8}".prop_map(Some),
    ]
}

/// One generated container: name, cpu, memory, reservation, essential, health check, start period,
/// dependencies (index, condition), user.
type Generated = (
    String,
    Option<i32>,
    Option<i32>,
    Option<i32>,
    bool,
    bool,
    Option<i32>,
    Vec<(usize, usize)>,
    Option<String>,
);

fn arb_container() -> impl Strategy<Value = Generated> {
    (
        "[A-Za-z0-9_-]{1,70}",
        prop::option::of(0..5000i32),
        prop::option::of(6..4096i32),
        prop::option::of(6..4096i32),
        any::<bool>(),
        any::<bool>(),
        prop::option::of(0..300i32),
        prop::collection::vec((0..6usize, 0..4usize), 0..3),
        prop::option::of(prop_oneof![
            "[0-9]{1,5}",
            "[0-9]{1,4}:[0-9]{1,4}",
            "[a-z]{1,8}"
        ]),
    )
}

fn arb_definition() -> impl Strategy<Value = TaskDefinitionSpec> {
    (
        prop::collection::vec(arb_container(), 1..6),
        arb_task_cpu(),
        arb_task_memory(),
    )
        .prop_map(|(generated, cpu, memory)| {
            let names: Vec<String> = generated.iter().map(|g| g.0.clone()).collect();
            let container_definitions = generated
                .into_iter()
                .map(
                    |(name, cpu, memory, reservation, essential, hc, start_period, deps, user)| {
                        ContainerDefinition {
                            image: "img".into(),
                            cpu,
                            memory,
                            memory_reservation: reservation,
                            essential: Some(essential),
                            health_check: hc.then(|| HealthCheck {
                                start_period,
                                ..health()
                            }),
                            depends_on: (!deps.is_empty()).then(|| {
                                deps.iter()
                                    .map(|(target, cond)| ContainerDependency {
                                        container_name: names[target % names.len()].clone(),
                                        condition: CONDITIONS[*cond],
                                    })
                                    .collect()
                            }),
                            user,
                            name,
                            ..Default::default()
                        }
                    },
                )
                .collect();
            TaskDefinitionSpec {
                container_definitions,
                cpu,
                memory,
                ..Default::default()
            }
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn translate_never_panics_and_places_every_container_once(def in arb_definition()) {
        let result = translate(&def, None);
        // not_honoured must not panic either, and agree with translate when it succeeds.
        let listed = not_honoured(&def);
        let mut sorted = listed.clone();
        sorted.sort();
        sorted.dedup();
        prop_assert_eq!(&listed, &sorted);
        let Ok(pod) = result else { return Ok(()); };
        prop_assert_eq!(&listed, &pod.not_honoured);
        prop_assert_eq!(pod.containers.len(), def.container_definitions.len());
        let placed: Vec<&str> = all_containers(&pod.spec).iter().map(|c| c.name.as_str()).collect();
        prop_assert_eq!(placed.len(), def.container_definitions.len());
        for info in &pod.containers {
            prop_assert_eq!(placed.iter().filter(|n| **n == info.k8s_name).count(), 1);
            prop_assert!(names::is_dns_label(&info.k8s_name), "{}", info.k8s_name);
        }
        prop_assert!(!pod.spec.containers.is_empty());
        // Every dependency is met by the start order: a dependency is an init container placed before
        // its dependent, or the dependent is a regular container (which starts after all of them).
        let position = |name: &str| {
            pod.spec.init_containers.iter().flatten().position(|c| c.name == name)
        };
        for (i, c) in def.container_definitions.iter().enumerate() {
            for d in c.depends_on.iter().flatten() {
                let target = def
                    .container_definitions
                    .iter()
                    .position(|o| o.name == d.container_name)
                    .unwrap();
                let target_at = position(&pod.containers[target].k8s_name);
                prop_assert!(target_at.is_some(), "a dependency must be an init container");
                if let Some(me) = position(&pod.containers[i].k8s_name) {
                    prop_assert!(target_at.unwrap() < me);
                }
            }
        }
    }

    #[test]
    fn container_names_are_unique_dns_labels(raw in prop::collection::vec("[A-Za-z0-9_-]{1,80}", 1..10)) {
        let def = td(raw.iter().map(|n| container(n)).collect());
        let pod = translate(&def, None).unwrap();
        let names: BTreeSet<_> = pod.containers.iter().map(|c| c.k8s_name.clone()).collect();
        prop_assert_eq!(names.len(), raw.len());
        for n in &names {
            prop_assert!(names::is_dns_label(n));
        }
    }
}

#[test]
fn only_essential_containers_have_readiness_probes() {
    let t = td(vec![
        ContainerDefinition {
            depends_on: Some(vec![dep("db", DependencyCondition::Healthy)]),
            health_check: Some(health()),
            ..container("web")
        },
        ContainerDefinition {
            essential: Some(false),
            health_check: Some(health()),
            ..container("metrics")
        },
        ContainerDefinition {
            essential: Some(false),
            health_check: Some(health()),
            ..container("db")
        },
    ]);
    let pod = translate(&t, None).unwrap();
    let web = find(&pod.spec, "web");
    assert!(web.readiness_probe.is_some());
    assert_eq!(web.liveness_probe, None);
    assert!(pod.containers[0].health_check);
    // A non-essential container's check would take the pod out of the load balancer.
    let metrics = find(&pod.spec, "metrics");
    assert_eq!(
        (&metrics.readiness_probe, &metrics.startup_probe),
        (&None, &None)
    );
    assert!(!pod.containers[1].health_check);
    // A non-essential HEALTHY dependency still gates the containers waiting for it.
    let db = find(&pod.spec, "db");
    assert_eq!(db.readiness_probe, None);
    assert!(db.startup_probe.is_some());
    assert!(!pod.containers[2].health_check);
    let f = fields(&pod.not_honoured);
    assert!(f.contains(&"containerDefinitions[1].healthCheck"), "{f:?}");
    assert!(f.contains(&"containerDefinitions[2].healthCheck"), "{f:?}");
    assert!(!f.contains(&"containerDefinitions[0].healthCheck"), "{f:?}");
    for c in pod
        .spec
        .containers
        .iter()
        .chain(pod.spec.init_containers.iter().flatten())
    {
        assert_eq!(c.liveness_probe, None, "{}", c.name);
    }
}

#[test]
fn health_checks_docker_ignores_are_accepted_and_reported() {
    for command in [&["NONE"][..], &["curl", "-f", "http://localhost/"][..]] {
        let t = td(vec![ContainerDefinition {
            health_check: Some(HealthCheck {
                command: command.iter().map(|s| s.to_string()).collect(),
                ..Default::default()
            }),
            ..container("web")
        }]);
        let pod = translate(&t, None).unwrap();
        let web = &pod.spec.containers[0];
        assert_eq!(
            (
                &web.readiness_probe,
                &web.startup_probe,
                &web.liveness_probe
            ),
            (&None, &None, &None)
        );
        assert!(!pod.containers[0].health_check);
        assert_eq!(
            fields(&pod.not_honoured),
            ["containerDefinitions[0].healthCheck.command"]
        );
        assert!(pod.not_honoured[0].reason.contains("Docker ignores"));
    }
    // Waiting for such a container to be HEALTHY waits for a check that never runs.
    let t = td(vec![
        ContainerDefinition {
            depends_on: Some(vec![dep("db", DependencyCondition::Healthy)]),
            ..container("web")
        },
        ContainerDefinition {
            health_check: Some(HealthCheck {
                command: vec!["NONE".into()],
                ..Default::default()
            }),
            ..container("db")
        },
    ]);
    assert!(matches!(
        translate(&t, None),
        Err(TranslateError::HealthyWithoutHealthCheck { .. })
    ));
}
