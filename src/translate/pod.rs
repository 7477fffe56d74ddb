//! Pod-wide settings that come from the task: process and IPC namespaces, sysctls, the ServiceAccount
//! (task role), node selectors (runtime platform) and the termination grace period (stop timeouts).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Sysctl;

use super::TranslateError;
use super::names::is_dns_subdomain;
use super::not_honoured::{container_path, nh};
use crate::api::task_definition::{IpcMode, NotHonouredField, PidMode, TaskDefinitionSpec};

/// Docker's default time between SIGTERM and SIGKILL.
const DEFAULT_STOP_TIMEOUT: i64 = 30;

/// Node labels of the runtime platform.
pub(crate) const ARCH_LABEL: &str = "kubernetes.io/arch";
pub(crate) const OS_LABEL: &str = "kubernetes.io/os";

/// The pod's process and IPC namespaces.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Namespaces {
    pub host_pid: bool,
    pub host_ipc: bool,
    pub share_process_namespace: bool,
}

/// `pidMode` host → hostPID, task → shareProcessNamespace; `ipcMode` host → hostIPC (task is what a
/// pod does anyway); `initProcessEnabled` → shareProcessNamespace, because then the pod's pause
/// container is PID 1 and reaps zombies, the job Docker's init does.
pub(crate) fn namespaces(
    td: &TaskDefinitionSpec,
    report: &mut Vec<NotHonouredField>,
) -> Namespaces {
    let host_pid = td.pid_mode == Some(PidMode::Host);
    let mut share = td.pid_mode == Some(PidMode::Task);
    for (i, c) in td.container_definitions.iter().enumerate() {
        if c.linux_parameters
            .as_ref()
            .and_then(|lp| lp.init_process_enabled)
            == Some(true)
        {
            if host_pid {
                report.push(nh(
                    format!("{}.linuxParameters.initProcessEnabled", container_path(i)),
                    "with pidMode host the task uses the node's PID namespace, and Kubernetes cannot also give the pod its own init process",
                ));
            } else {
                share = true;
            }
        }
    }
    Namespaces {
        host_pid,
        host_ipc: td.ipc_mode == Some(IpcMode::Host),
        share_process_namespace: share,
    }
}

/// `systemControls` of every container → the pod's sysctls (a pod has one set for all its containers).
pub(crate) fn sysctls(
    td: &TaskDefinitionSpec,
    ns: Namespaces,
    host_network: bool,
    report: &mut Vec<NotHonouredField>,
) -> Result<Vec<Sysctl>, TranslateError> {
    let mut out: Vec<Sysctl> = Vec::new();
    let mut first_field: BTreeMap<String, String> = BTreeMap::new();
    for (i, c) in td.container_definitions.iter().enumerate() {
        for (j, sc) in c.system_controls.iter().flatten().enumerate() {
            let field = format!("{}.systemControls[{j}]", container_path(i));
            let (Some(name), Some(value)) = (sc.namespace.as_deref(), sc.value.as_deref()) else {
                report.push(nh(
                    field,
                    "a system control needs both namespace (the sysctl name) and value",
                ));
                continue;
            };
            if !is_sysctl_name(name) {
                return Err(TranslateError::invalid(
                    format!("{field}.namespace"),
                    name,
                    "not a sysctl name such as net.core.somaxconn",
                ));
            }
            if host_network && name.starts_with("net.") {
                return Err(TranslateError::invalid(
                    format!("{field}.namespace"),
                    name,
                    "with networkMode host a net.* sysctl would change the node's network; remove it or use another network mode",
                ));
            }
            if ns.host_ipc && is_ipc_sysctl(name) {
                return Err(TranslateError::invalid(
                    format!("{field}.namespace"),
                    name,
                    "with ipcMode host an IPC sysctl would change the node's IPC namespace; remove it or use another ipcMode",
                ));
            }
            match out.iter().find(|s| s.name == name) {
                Some(existing) if existing.value != value => {
                    return Err(TranslateError::conflict(
                        field,
                        format!(
                            "sysctl {name} is {value:?} here but {:?} in {}; the containers of a task share one value, so make them agree",
                            existing.value, first_field[name]
                        ),
                    ));
                }
                Some(_) => {}
                None => {
                    first_field.insert(name.to_string(), field);
                    out.push(Sysctl {
                        name: name.to_string(),
                        value: value.to_string(),
                    });
                }
            }
        }
    }
    Ok(out)
}

/// `[a-z0-9]([-_a-z0-9]*[a-z0-9])?` segments joined by `.` or `/`, at most 253 characters.
fn is_sysctl_name(s: &str) -> bool {
    s.len() <= 253
        && s.split(['.', '/']).all(|seg| {
            let b = seg.as_bytes();
            !b.is_empty()
                && b.iter().all(|c| {
                    c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-' || *c == b'_'
                })
                && b[0].is_ascii_alphanumeric()
                && b[b.len() - 1].is_ascii_alphanumeric()
        })
}

fn is_ipc_sysctl(name: &str) -> bool {
    matches!(
        name,
        "kernel.shmmax"
            | "kernel.shmall"
            | "kernel.shmmni"
            | "kernel.shm_rmid_forced"
            | "kernel.msgmax"
            | "kernel.msgmnb"
            | "kernel.msgmni"
            | "kernel.sem"
    ) || name.starts_with("fs.mqueue.")
}

/// `taskRoleArn` → the pod's ServiceAccount: a plain name, or the role name (last path segment) of an
/// IAM role ARN, lowercased with `_` as `-`.
pub(crate) fn service_account(role: &str, field: &str) -> Result<String, TranslateError> {
    let name = if let Some(rest) = role.strip_prefix("arn:") {
        // arn:PARTITION:iam::ACCOUNT:role/PATH/NAME
        let parts: Vec<&str> = rest.splitn(5, ':').collect();
        match parts.as_slice() {
            [_, "iam", _, _, resource] if resource.starts_with("role/") => {
                resource.rsplit('/').next().unwrap_or_default()
            }
            _ => {
                return Err(TranslateError::invalid(
                    field,
                    role,
                    "only an IAM role ARN (arn:aws:iam::ACCOUNT:role/NAME) or a ServiceAccount name can name the task's identity",
                ));
            }
        }
    } else {
        role
    };
    let sa = name.to_ascii_lowercase().replace('_', "-");
    if is_dns_subdomain(&sa) {
        Ok(sa)
    } else {
        Err(TranslateError::invalid(
            field,
            role,
            format!(
                "the ServiceAccount name {sa:?} it maps to is not valid (lowercase letters, digits, '-' and '.'); name a ServiceAccount of the task's namespace"
            ),
        ))
    }
}

/// `runtimePlatform` → node selectors on `kubernetes.io/arch` and `kubernetes.io/os`.
pub fn node_selector(td: &TaskDefinitionSpec) -> Result<BTreeMap<String, String>, TranslateError> {
    let mut out = BTreeMap::new();
    let Some(rp) = &td.runtime_platform else {
        return Ok(out);
    };
    if let Some(arch) = &rp.cpu_architecture {
        let label = match arch.as_str() {
            "X86_64" => "amd64",
            "ARM64" => "arm64",
            _ => {
                return Err(TranslateError::invalid(
                    "runtimePlatform.cpuArchitecture",
                    arch,
                    "write X86_64 or ARM64",
                ));
            }
        };
        out.insert(ARCH_LABEL.to_string(), label.to_string());
    }
    if let Some(os) = &rp.operating_system_family {
        let label = if os == "LINUX" {
            "linux"
        } else if os.starts_with("WINDOWS_SERVER_") {
            "windows"
        } else {
            return Err(TranslateError::invalid(
                "runtimePlatform.operatingSystemFamily",
                os,
                "write LINUX or a WINDOWS_SERVER_… family",
            ));
        };
        out.insert(OS_LABEL.to_string(), label.to_string());
    }
    Ok(out)
}

/// The longest `stopTimeout` (default 30 s): the pod's containers get SIGTERM together, and the slowest
/// one must have its full time before SIGKILL.
pub(crate) fn termination_grace_period(td: &TaskDefinitionSpec) -> i64 {
    td.container_definitions
        .iter()
        .map(|c| {
            c.stop_timeout
                .map_or(DEFAULT_STOP_TIMEOUT, |t| i64::from(t.max(0)))
        })
        .max()
        .unwrap_or(DEFAULT_STOP_TIMEOUT)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::task_definition::{
        ContainerDefinition, LinuxParameters, RuntimePlatform, SystemControl,
    };

    fn c() -> ContainerDefinition {
        ContainerDefinition {
            name: "c".into(),
            image: "img".into(),
            ..Default::default()
        }
    }

    fn with_init(on: bool) -> ContainerDefinition {
        ContainerDefinition {
            linux_parameters: Some(LinuxParameters {
                init_process_enabled: Some(on),
                ..Default::default()
            }),
            ..c()
        }
    }

    fn td(containers: Vec<ContainerDefinition>) -> TaskDefinitionSpec {
        TaskDefinitionSpec {
            container_definitions: containers,
            ..Default::default()
        }
    }

    #[test]
    fn pid_and_ipc_modes() {
        let mut t = td(vec![c()]);
        assert_eq!(namespaces(&t, &mut vec![]), Namespaces::default());
        t.pid_mode = Some(PidMode::Host);
        t.ipc_mode = Some(IpcMode::Host);
        assert_eq!(
            namespaces(&t, &mut vec![]),
            Namespaces {
                host_pid: true,
                host_ipc: true,
                share_process_namespace: false
            }
        );
        t.pid_mode = Some(PidMode::Task);
        t.ipc_mode = Some(IpcMode::Task);
        assert_eq!(
            namespaces(&t, &mut vec![]),
            Namespaces {
                share_process_namespace: true,
                ..Default::default()
            }
        );
    }

    #[test]
    fn init_process_shares_the_process_namespace() {
        let t = td(vec![c(), with_init(true)]);
        assert!(namespaces(&t, &mut vec![]).share_process_namespace);
        let t = td(vec![with_init(false)]);
        assert!(!namespaces(&t, &mut vec![]).share_process_namespace);
        let mut t = td(vec![with_init(true)]);
        t.pid_mode = Some(PidMode::Host);
        let mut report = vec![];
        let ns = namespaces(&t, &mut report);
        assert!(ns.host_pid && !ns.share_process_namespace);
        assert_eq!(
            report[0].field,
            "containerDefinitions[0].linuxParameters.initProcessEnabled"
        );
    }

    fn sc(name: Option<&str>, value: Option<&str>) -> SystemControl {
        SystemControl {
            namespace: name.map(Into::into),
            value: value.map(Into::into),
        }
    }

    fn with_sysctls(v: Vec<SystemControl>) -> ContainerDefinition {
        ContainerDefinition {
            system_controls: Some(v),
            ..c()
        }
    }

    #[test]
    fn sysctls_are_merged() {
        let t = td(vec![
            with_sysctls(vec![sc(Some("net.core.somaxconn"), Some("1024"))]),
            with_sysctls(vec![
                sc(Some("net.core.somaxconn"), Some("1024")),
                sc(Some("kernel.shm_rmid_forced"), Some("1")),
                sc(None, Some("1")),
            ]),
        ]);
        let mut report = vec![];
        let s = sysctls(&t, Namespaces::default(), false, &mut report).unwrap();
        let pairs: Vec<_> = s
            .iter()
            .map(|s| (s.name.as_str(), s.value.as_str()))
            .collect();
        assert_eq!(
            pairs,
            [
                ("net.core.somaxconn", "1024"),
                ("kernel.shm_rmid_forced", "1")
            ]
        );
        assert_eq!(report[0].field, "containerDefinitions[1].systemControls[2]");
    }

    #[test]
    fn conflicting_sysctls_are_an_error() {
        let t = td(vec![
            with_sysctls(vec![sc(Some("net.core.somaxconn"), Some("1024"))]),
            with_sysctls(vec![sc(Some("net.core.somaxconn"), Some("4096"))]),
        ]);
        let e = sysctls(&t, Namespaces::default(), false, &mut vec![]).unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.starts_with("containerDefinitions[1].systemControls[0]"),
            "{msg}"
        );
        assert!(
            msg.contains("containerDefinitions[0].systemControls[0]"),
            "{msg}"
        );
    }

    #[test]
    fn sysctls_that_would_reach_the_node_are_errors() {
        let t = td(vec![with_sysctls(vec![sc(
            Some("net.ipv4.ip_forward"),
            Some("1"),
        )])]);
        assert!(sysctls(&t, Namespaces::default(), true, &mut vec![]).is_err());
        assert!(sysctls(&t, Namespaces::default(), false, &mut vec![]).is_ok());
        let t = td(vec![with_sysctls(vec![sc(
            Some("kernel.shmmax"),
            Some("1"),
        )])]);
        let host_ipc = Namespaces {
            host_ipc: true,
            ..Default::default()
        };
        assert!(sysctls(&t, host_ipc, false, &mut vec![]).is_err());
        let t = td(vec![with_sysctls(vec![sc(Some("Net.Core"), Some("1"))])]);
        assert!(sysctls(&t, Namespaces::default(), false, &mut vec![]).is_err());
    }

    #[test]
    fn service_accounts() {
        for (role, sa) in [
            ("my-app", "my-app"),
            ("My_App", "my-app"),
            ("arn:aws:iam::123456789012:role/web-server", "web-server"),
            (
                "arn:aws:iam::123456789012:role/teams/payments/Billing_API",
                "billing-api",
            ),
            ("arn:aws-us-gov:iam::123456789012:role/app.v2", "app.v2"),
        ] {
            assert_eq!(service_account(role, "taskRoleArn").unwrap(), sa, "{role}");
        }
        for bad in [
            "arn:aws:iam::123456789012:user/bob",
            "arn:aws:s3:::bucket",
            "arn:aws:iam::123456789012:role/a+b",
            "has space",
            "",
            "arn:aws:iam::1:role/",
        ] {
            let e = service_account(bad, "taskRoleArn").unwrap_err();
            assert!(e.to_string().starts_with("taskRoleArn"), "{bad}: {e}");
        }
    }

    #[test]
    fn runtime_platform_selects_nodes() {
        let mut t = td(vec![c()]);
        assert!(node_selector(&t).unwrap().is_empty());
        t.runtime_platform = Some(RuntimePlatform {
            cpu_architecture: Some("ARM64".into()),
            operating_system_family: Some("LINUX".into()),
        });
        let s = node_selector(&t).unwrap();
        assert_eq!(s[ARCH_LABEL], "arm64");
        assert_eq!(s[OS_LABEL], "linux");
        t.runtime_platform = Some(RuntimePlatform {
            cpu_architecture: Some("X86_64".into()),
            operating_system_family: Some("WINDOWS_SERVER_2022_CORE".into()),
        });
        let s = node_selector(&t).unwrap();
        assert_eq!(s[ARCH_LABEL], "amd64");
        assert_eq!(s[OS_LABEL], "windows");
        t.runtime_platform = Some(RuntimePlatform {
            cpu_architecture: Some("riscv".into()),
            operating_system_family: None,
        });
        assert!(node_selector(&t).is_err());
        t.runtime_platform = Some(RuntimePlatform {
            cpu_architecture: None,
            operating_system_family: Some("MACOS".into()),
        });
        assert!(node_selector(&t).is_err());
    }

    #[test]
    fn grace_period_is_the_longest_stop_timeout() {
        assert_eq!(termination_grace_period(&td(vec![c()])), 30);
        let quick = ContainerDefinition {
            stop_timeout: Some(5),
            ..c()
        };
        let slow = ContainerDefinition {
            stop_timeout: Some(120),
            ..c()
        };
        assert_eq!(termination_grace_period(&td(vec![quick.clone()])), 5);
        assert_eq!(termination_grace_period(&td(vec![quick.clone(), c()])), 30);
        assert_eq!(termination_grace_period(&td(vec![quick, slow])), 120);
    }
}
