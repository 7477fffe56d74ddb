//! CPU, memory, GPU and ephemeral storage: container resources and the pod-level task size.
//!
//! ECS container `cpu` is a relative share, not a cap: it becomes a CPU request only. `memory` is the
//! hard limit and `memoryReservation` the soft one. The task size (`cpu`, `memory` of the definition) is
//! a hard cap on the whole task: it becomes pod-level resources (`PodSpec.resources`, on by default
//! since Kubernetes 1.34) with requests equal to limits.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ResourceRequirements;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use super::TranslateError;
use crate::api::task_definition::{ContainerDefinition, TaskDefinitionSpec};

/// Extended resource name of NVIDIA GPUs (the NVIDIA device plugin).
pub const GPU_RESOURCE: &str = "nvidia.com/gpu";

/// CPU units (1024 per vCPU) → millicores, rounded up so a container never gets less than it asked for.
pub(crate) fn cpu_millis(units: i64) -> i64 {
    (units * 1000 + 1023) / 1024
}

/// The task size in Kubernetes terms.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct TaskSize {
    /// CPU: ECS units (rounded up) and millicores.
    pub cpu: Option<TaskCpu>,
    /// Memory in MiB.
    pub memory_mib: Option<i64>,
}

/// A parsed task CPU.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct TaskCpu {
    /// ECS CPU units, rounded up.
    pub units: i64,
    /// Millicores, rounded up.
    pub millis: i64,
}

/// Parse the task size of the definition (already carrying any override).
pub(crate) fn task_size(td: &TaskDefinitionSpec) -> Result<TaskSize, TranslateError> {
    let cpu = match &td.cpu {
        Some(s) => Some(parse_task_cpu(s).ok_or_else(|| {
            TranslateError::invalid(
                "cpu",
                s,
                "not an ECS task CPU; write CPU units such as \"256\" or \"1024\", or vCPUs such as \"0.5 vCPU\" or \"2 vCPU\"",
            )
        })?),
        None => None,
    };
    let memory_mib = match &td.memory {
        Some(s) => Some(parse_task_memory(s).ok_or_else(|| {
            TranslateError::invalid(
                "memory",
                s,
                "not an ECS task memory; write MiB such as \"512\", or GB (GiB) such as \"1GB\", \"1 GB\" or \"0.5GB\"",
            )
        })?),
        None => None,
    };
    Ok(TaskSize { cpu, memory_mib })
}

/// A decimal number `digits / 10^scale` with at most 15 significant digits, so arithmetic cannot
/// overflow.
fn decimal(s: &str) -> Option<(i64, u32)> {
    let (int, frac) = match s.split_once('.') {
        Some((i, f)) => (i, f),
        None => (s, ""),
    };
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    if !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit())
        || int.len() + frac.len() > 15
        || (s.contains('.') && frac.is_empty())
    {
        return None;
    }
    let digits: i64 = format!("{int}{frac}").parse().ok()?;
    Some((digits, u32::try_from(frac.len()).ok()?))
}

fn ceil_div(a: i64, b: i64) -> i64 {
    (a + b - 1) / b
}

/// `"256"`, `"1024"` (units) or `"1 vCPU"`, `"0.5 vcpu"`, `"2vCPU"` (case-insensitive).
pub(crate) fn parse_task_cpu(s: &str) -> Option<TaskCpu> {
    let lower = s.trim().to_ascii_lowercase();
    let cpu = if let Some(n) = lower.strip_suffix("vcpu") {
        let (digits, scale) = decimal(n.trim_end())?;
        let pow = 10i64.pow(scale);
        TaskCpu {
            units: ceil_div(digits * 1024, pow),
            millis: ceil_div(digits * 1000, pow),
        }
    } else {
        let (units, 0) = decimal(&lower)? else {
            return None;
        };
        TaskCpu {
            units,
            millis: cpu_millis(units),
        }
    };
    (cpu.units > 0).then_some(cpu)
}

/// `"512"` (MiB), `"1GB"`, `"1 GB"`, `"0.5GB"` (GB in ECS means GiB), case-insensitive; also `GiB`,
/// `MB` and `MiB`. A whole number of MiB.
pub(crate) fn parse_task_memory(s: &str) -> Option<i64> {
    let lower = s.trim().to_ascii_lowercase();
    let (number, mib_per_unit) = if let Some(n) = lower
        .strip_suffix("gib")
        .or_else(|| lower.strip_suffix("gb"))
    {
        (n.trim_end(), 1024)
    } else if let Some(n) = lower
        .strip_suffix("mib")
        .or_else(|| lower.strip_suffix("mb"))
    {
        (n.trim_end(), 1)
    } else {
        (lower.as_str(), 1)
    };
    let (digits, scale) = decimal(number)?;
    let pow = 10i64.pow(scale);
    let scaled = digits * mib_per_unit;
    (scaled % pow == 0 && scaled > 0).then_some(scaled / pow)
}

fn mib(n: i64) -> Quantity {
    Quantity(format!("{n}Mi"))
}

fn millicores(n: i64) -> Quantity {
    Quantity(format!("{n}m"))
}

/// The container's resources: cpu → CPU request, memory → memory limit, memoryReservation → memory
/// request, GPU → `nvidia.com/gpu` limit, and `ephemeral_gib` (the task's ephemeral storage, given to
/// the first essential container) → `ephemeral-storage` limit.
pub(crate) fn container_resources(
    c: &ContainerDefinition,
    path: &str,
    ephemeral_gib: Option<i32>,
) -> Result<Option<ResourceRequirements>, TranslateError> {
    let mut requests = BTreeMap::new();
    let mut limits = BTreeMap::new();
    if let Some(units) = c.cpu.filter(|u| *u > 0) {
        requests.insert("cpu".to_string(), millicores(cpu_millis(units.into())));
    }
    if let (Some(limit), Some(reservation)) = (c.memory, c.memory_reservation)
        && reservation > limit
    {
        return Err(TranslateError::conflict(
            format!("{path}.memoryReservation"),
            format!(
                "the reservation ({reservation} MiB) exceeds memory ({limit} MiB); the soft limit must not be above the hard limit"
            ),
        ));
    }
    if let Some(m) = c.memory {
        limits.insert("memory".to_string(), mib(m.into()));
    }
    if let Some(m) = c.memory_reservation {
        requests.insert("memory".to_string(), mib(m.into()));
    }
    let mut gpus: i64 = 0;
    for (j, r) in c.resource_requirements.iter().flatten().enumerate() {
        if r.type_ != "GPU" {
            continue;
        }
        let n: i64 = r
            .value
            .trim()
            .parse()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| {
                TranslateError::invalid(
                    format!("{path}.resourceRequirements[{j}].value"),
                    &r.value,
                    "a GPU requirement must be a positive whole number of GPUs",
                )
            })?;
        gpus = gpus.saturating_add(n);
    }
    if gpus > 0 {
        limits.insert(GPU_RESOURCE.to_string(), Quantity(gpus.to_string()));
    }
    if let Some(gib) = ephemeral_gib {
        limits.insert(
            "ephemeral-storage".to_string(),
            Quantity(format!("{gib}Gi")),
        );
    }
    if requests.is_empty() && limits.is_empty() {
        return Ok(None);
    }
    Ok(Some(ResourceRequirements {
        requests: (!requests.is_empty()).then_some(requests),
        limits: (!limits.is_empty()).then_some(limits),
        ..Default::default()
    }))
}

/// Pod-level resources for the task size, after checking the containers fit in it as ECS does (the API
/// server would otherwise reject the pod).
///
/// The CPU request is raised to the sum of the containers' rounded-up millicores when that is a few
/// millicores above the task size, so rounding alone never makes a valid ECS definition invalid.
pub(crate) fn pod_resources(
    size: TaskSize,
    containers: &[ContainerDefinition],
) -> Result<Option<ResourceRequirements>, TranslateError> {
    let mut requests = BTreeMap::new();
    let mut limits = BTreeMap::new();
    if let Some(cpu) = size.cpu {
        let units: i64 = containers
            .iter()
            .map(|c| i64::from(c.cpu.unwrap_or(0).max(0)))
            .sum();
        if units > cpu.units {
            return Err(TranslateError::conflict(
                "containerDefinitions[].cpu",
                format!(
                    "the containers' cpu adds up to {units} units, more than the task cpu of {} units; raise the task cpu or lower the containers'",
                    cpu.units
                ),
            ));
        }
        let container_millis: i64 = containers
            .iter()
            .map(|c| cpu_millis(c.cpu.unwrap_or(0).max(0).into()))
            .sum();
        let millis = cpu.millis.max(container_millis);
        requests.insert("cpu".to_string(), millicores(millis));
        limits.insert("cpu".to_string(), millicores(millis));
    }
    if let Some(task_mib) = size.memory_mib {
        for (i, c) in containers.iter().enumerate() {
            if let Some(m) = c.memory.filter(|m| i64::from(*m) > task_mib) {
                return Err(TranslateError::conflict(
                    format!("containerDefinitions[{i}].memory"),
                    format!(
                        "{m} MiB is more than the task memory of {task_mib} MiB; a container cannot have more memory than its task"
                    ),
                ));
            }
        }
        // A container with only a hard limit is requested at that limit (Kubernetes defaults the request
        // to the limit).
        let reserved: i64 = containers
            .iter()
            .map(|c| i64::from(c.memory_reservation.or(c.memory).unwrap_or(0)))
            .sum();
        if reserved > task_mib {
            return Err(TranslateError::conflict(
                "containerDefinitions[].memoryReservation",
                format!(
                    "the containers reserve {reserved} MiB (memoryReservation, else memory), more than the task memory of {task_mib} MiB; raise the task memory or lower the containers'"
                ),
            ));
        }
        requests.insert("memory".to_string(), mib(task_mib));
        limits.insert("memory".to_string(), mib(task_mib));
    }
    if requests.is_empty() {
        return Ok(None);
    }
    Ok(Some(ResourceRequirements {
        requests: Some(requests),
        limits: Some(limits),
        ..Default::default()
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::task_definition::ResourceRequirement;

    fn q(r: &Option<BTreeMap<String, Quantity>>, k: &str) -> Option<String> {
        r.as_ref().and_then(|m| m.get(k)).map(|q| q.0.clone())
    }

    #[test]
    fn cpu_units_round_up_to_millicores() {
        for (units, millis) in [
            (1024, 1000),
            (512, 500),
            (256, 250),
            (128, 125),
            (10, 10),
            (1, 1),
            (2, 2),
            (100, 98),
            (2048, 2000),
            (4096, 4000),
            (196_608, 192_000),
        ] {
            assert_eq!(cpu_millis(units), millis, "{units}");
        }
    }

    #[test]
    fn container_cpu_is_a_request_only() {
        let c = ContainerDefinition {
            cpu: Some(512),
            ..Default::default()
        };
        let r = container_resources(&c, "c", None).unwrap().unwrap();
        assert_eq!(q(&r.requests, "cpu").as_deref(), Some("500m"));
        assert_eq!(r.limits, None);
        let zero = ContainerDefinition {
            cpu: Some(0),
            ..Default::default()
        };
        assert_eq!(container_resources(&zero, "c", None).unwrap(), None);
        assert_eq!(
            container_resources(&ContainerDefinition::default(), "c", None).unwrap(),
            None
        );
    }

    #[test]
    fn memory_is_the_limit_and_reservation_the_request() {
        let both = ContainerDefinition {
            memory: Some(512),
            memory_reservation: Some(256),
            ..Default::default()
        };
        let r = container_resources(&both, "c", None).unwrap().unwrap();
        assert_eq!(q(&r.limits, "memory").as_deref(), Some("512Mi"));
        assert_eq!(q(&r.requests, "memory").as_deref(), Some("256Mi"));

        let limit_only = ContainerDefinition {
            memory: Some(300),
            ..Default::default()
        };
        let r = container_resources(&limit_only, "c", None)
            .unwrap()
            .unwrap();
        assert_eq!(q(&r.limits, "memory").as_deref(), Some("300Mi"));
        assert_eq!(r.requests, None);

        let soft_only = ContainerDefinition {
            memory_reservation: Some(128),
            ..Default::default()
        };
        let r = container_resources(&soft_only, "c", None).unwrap().unwrap();
        assert_eq!(q(&r.requests, "memory").as_deref(), Some("128Mi"));
        assert_eq!(r.limits, None);
    }

    #[test]
    fn reservation_above_limit_is_an_error() {
        let c = ContainerDefinition {
            memory: Some(128),
            memory_reservation: Some(256),
            ..Default::default()
        };
        let e = container_resources(&c, "containerDefinitions[0]", None).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("containerDefinitions[0].memoryReservation")
        );
    }

    #[test]
    fn gpus_and_ephemeral_storage_are_limits() {
        let c = ContainerDefinition {
            resource_requirements: Some(vec![
                ResourceRequirement {
                    value: "2".into(),
                    type_: "GPU".into(),
                },
                ResourceRequirement {
                    value: "dev".into(),
                    type_: "InferenceAccelerator".into(),
                },
            ]),
            ..Default::default()
        };
        let r = container_resources(&c, "c", Some(30)).unwrap().unwrap();
        assert_eq!(q(&r.limits, GPU_RESOURCE).as_deref(), Some("2"));
        assert_eq!(q(&r.limits, "ephemeral-storage").as_deref(), Some("30Gi"));
        let bad = ContainerDefinition {
            resource_requirements: Some(vec![ResourceRequirement {
                value: "one".into(),
                type_: "GPU".into(),
            }]),
            ..Default::default()
        };
        let e = container_resources(&bad, "containerDefinitions[3]", None).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("containerDefinitions[3].resourceRequirements[0].value")
        );
    }

    #[test]
    fn task_cpu_forms() {
        let cases = [
            ("256", 256, 250),
            ("1024", 1024, 1000),
            ("4096", 4096, 4000),
            (" 512 ", 512, 500),
            ("1 vCPU", 1024, 1000),
            ("1 vcpu", 1024, 1000),
            ("1vCPU", 1024, 1000),
            ("0.5 vcpu", 512, 500),
            ("0.25 VCPU", 256, 250),
            ("2 vCPU", 2048, 2000),
            ("16 vCPU", 16384, 16000),
            (".5 vCPU", 512, 500),
        ];
        for (s, units, millis) in cases {
            assert_eq!(parse_task_cpu(s), Some(TaskCpu { units, millis }), "{s}");
        }
    }

    #[test]
    fn task_cpu_rejects_everything_else() {
        for s in [
            "",
            "0",
            "0 vCPU",
            "-256",
            "256.5",
            "1.",
            "one",
            "1 cpu",
            "1 vCPUs",
            "1,5 vCPU",
            "vCPU",
            "1e3",
            "99999999999999999999",
            "0x100",
            "1 2",
        ] {
            assert_eq!(parse_task_cpu(s), None, "{s}");
        }
    }

    #[test]
    fn task_memory_forms() {
        let cases = [
            ("512", 512),
            ("2048", 2048),
            ("1GB", 1024),
            ("1 GB", 1024),
            ("1gb", 1024),
            ("0.5GB", 512),
            ("0.5 GB", 512),
            ("2 GiB", 2048),
            ("30GB", 30720),
            ("512 MB", 512),
            ("512MiB", 512),
            ("0.25GB", 256),
        ];
        for (s, mib) in cases {
            assert_eq!(parse_task_memory(s), Some(mib), "{s}");
        }
    }

    #[test]
    fn task_memory_rejects_everything_else() {
        for s in [
            "", "0", "0GB", "-512", "1.3GB", "512.5", "1 TB", "lots", "GB", "1,5GB", "1e3",
            "0.5 MB",
        ] {
            assert_eq!(parse_task_memory(s), None, "{s}");
        }
    }

    #[test]
    fn unparseable_task_size_names_the_field() {
        let td = TaskDefinitionSpec {
            cpu: Some("lots".into()),
            ..Default::default()
        };
        assert!(
            task_size(&td)
                .unwrap_err()
                .to_string()
                .starts_with("cpu \"lots\"")
        );
        let td = TaskDefinitionSpec {
            memory: Some("1TB".into()),
            ..Default::default()
        };
        assert!(
            task_size(&td)
                .unwrap_err()
                .to_string()
                .starts_with("memory \"1TB\"")
        );
    }

    #[test]
    fn pod_resources_are_the_task_size_as_requests_and_limits() {
        let size = TaskSize {
            cpu: parse_task_cpu("512"),
            memory_mib: parse_task_memory("1GB"),
        };
        let r = pod_resources(size, &[ContainerDefinition::default()])
            .unwrap()
            .unwrap();
        assert_eq!(q(&r.requests, "cpu").as_deref(), Some("500m"));
        assert_eq!(q(&r.limits, "cpu").as_deref(), Some("500m"));
        assert_eq!(q(&r.requests, "memory").as_deref(), Some("1024Mi"));
        assert_eq!(q(&r.limits, "memory").as_deref(), Some("1024Mi"));
        assert_eq!(pod_resources(TaskSize::default(), &[]).unwrap(), None);
    }

    #[test]
    fn pod_cpu_absorbs_rounding_of_container_cpu() {
        // 1 + 255 units fit in 256, but round up to 1m + 250m > 250m.
        let containers = [
            ContainerDefinition {
                cpu: Some(1),
                ..Default::default()
            },
            ContainerDefinition {
                cpu: Some(255),
                ..Default::default()
            },
        ];
        let size = TaskSize {
            cpu: parse_task_cpu("256"),
            memory_mib: None,
        };
        let r = pod_resources(size, &containers).unwrap().unwrap();
        assert_eq!(q(&r.requests, "cpu").as_deref(), Some("251m"));
        assert_eq!(q(&r.requests, "memory"), None);
    }

    #[test]
    fn containers_larger_than_the_task_are_errors() {
        let size = TaskSize {
            cpu: parse_task_cpu("256"),
            memory_mib: Some(512),
        };
        let cpu = [ContainerDefinition {
            cpu: Some(512),
            ..Default::default()
        }];
        assert!(
            pod_resources(size, &cpu)
                .unwrap_err()
                .to_string()
                .contains("512 units")
        );
        let mem = [ContainerDefinition {
            memory: Some(1024),
            ..Default::default()
        }];
        assert!(
            pod_resources(size, &mem)
                .unwrap_err()
                .to_string()
                .starts_with("containerDefinitions[0].memory")
        );
        let reserved = [
            ContainerDefinition {
                memory_reservation: Some(300),
                ..Default::default()
            },
            ContainerDefinition {
                memory: Some(300),
                ..Default::default()
            },
        ];
        assert!(
            pod_resources(size, &reserved)
                .unwrap_err()
                .to_string()
                .contains("600 MiB")
        );
    }
}
