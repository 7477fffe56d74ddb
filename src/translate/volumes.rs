//! `volumes`, `mountPoints`, `volumesFrom`, `linuxParameters.sharedMemorySize` and `tmpfs` → pod volumes
//! and volume mounts.
//!
//! Only volumes some container mounts become pod volumes, so a declared but unused host path never
//! appears in the pod.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::{
    EmptyDirVolumeSource, HostPathVolumeSource, PersistentVolumeClaimVolumeSource, Volume,
    VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use super::TranslateError;
use super::names::{NameAllocator, is_dns_subdomain};
use super::not_honoured::{container_path, nh};
use crate::api::task_definition::{
    self as ecs, ContainerDefinition, NotHonouredField, TaskDefinitionSpec,
};

/// `dockerVolumeConfiguration.driver` that selects a PersistentVolumeClaim.
pub const PVC_DRIVER: &str = "persistentVolumeClaim";

/// Pod volumes and each container's mounts.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct VolumePlan {
    /// Pod volumes: the definition's volumes that are mounted (in definition order), then the generated
    /// shared-memory and tmpfs volumes.
    pub volumes: Vec<Volume>,
    /// Mounts of each container, in task definition order.
    pub mounts: Vec<Vec<VolumeMount>>,
    /// Volume settings with no Kubernetes effect.
    pub not_honoured: Vec<NotHonouredField>,
}

/// One mount before it gets a Kubernetes volume name: volume index, path, read-only.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Mount {
    volume: usize,
    path: String,
    read_only: bool,
}

/// Map the volumes of `td`; `k8s_names` are the containers' Kubernetes names (for generated volumes).
pub(crate) fn plan(
    td: &TaskDefinitionSpec,
    k8s_names: &[String],
) -> Result<VolumePlan, TranslateError> {
    let mut out = VolumePlan::default();
    let mut names = NameAllocator::new();
    let declared: &[ecs::Volume] = td.volumes.as_deref().unwrap_or_default();
    let mut by_name = BTreeMap::new();
    let mut pod_volumes = Vec::with_capacity(declared.len());
    for (i, v) in declared.iter().enumerate() {
        by_name.entry(v.name.as_str()).or_insert(i);
        let mut volume = source(v, &format!("volumes[{i}]"), &mut out.not_honoured)?;
        volume.name = names.allocate(&v.name, "volume");
        pod_volumes.push(volume);
    }

    let containers = &td.container_definitions;
    let own = containers
        .iter()
        .enumerate()
        .map(|(i, c)| own_mounts(c, i, &by_name))
        .collect::<Result<Vec<_>, _>>()?;
    let copied = copied_mounts(td, &own)?;
    let mut referenced = BTreeSet::new();
    let mut generated = Vec::new();
    for (i, c) in containers.iter().enumerate() {
        let path = container_path(i);
        let mut mounts: Vec<VolumeMount> = Vec::new();
        let mut paths = BTreeSet::new();
        for m in &own[i] {
            referenced.insert(m.volume);
            paths.insert(m.path.clone());
            mounts.push(mount(&pod_volumes[m.volume].name, &m.path, m.read_only));
        }
        let k8s_name = &k8s_names[i];
        if let Some(lp) = &c.linux_parameters {
            if let Some(size) = lp.shared_memory_size.filter(|s| *s > 0) {
                let field = format!("{path}.linuxParameters.sharedMemorySize");
                claim_path(&mut paths, "/dev/shm", &field)?;
                let name = names.allocate(&format!("{k8s_name}-shm"), "shm");
                mounts.push(mount(&name, "/dev/shm", false));
                generated.push(memory_volume(name, size));
            }
            for (j, t) in lp.tmpfs.iter().flatten().enumerate() {
                let field = format!("{path}.linuxParameters.tmpfs[{j}].containerPath");
                if t.container_path.is_empty() {
                    return Err(TranslateError::invalid(
                        field,
                        "",
                        "a tmpfs mount needs a containerPath",
                    ));
                }
                if t.size <= 0 {
                    return Err(TranslateError::invalid(
                        format!("{path}.linuxParameters.tmpfs[{j}].size"),
                        t.size.to_string(),
                        "a tmpfs size is a positive number of MiB",
                    ));
                }
                claim_path(&mut paths, &t.container_path, &field)?;
                let name = names.allocate(&format!("{k8s_name}-tmpfs-{j}"), "tmpfs");
                mounts.push(mount(&name, &t.container_path, false));
                generated.push(memory_volume(name, t.size));
            }
        }
        // Docker lets a container's own mounts win over those it copies from another container.
        for m in &copied[i][own[i].len()..] {
            if paths.insert(m.path.clone()) {
                referenced.insert(m.volume);
                mounts.push(mount(&pod_volumes[m.volume].name, &m.path, m.read_only));
            }
        }
        out.mounts.push(mounts);
    }
    out.volumes = pod_volumes
        .into_iter()
        .enumerate()
        .filter(|(i, _)| referenced.contains(i))
        .map(|(_, v)| v)
        .chain(generated)
        .collect();
    Ok(out)
}

fn mount(name: &str, path: &str, read_only: bool) -> VolumeMount {
    VolumeMount {
        name: name.to_string(),
        mount_path: path.to_string(),
        read_only: read_only.then_some(true),
        ..Default::default()
    }
}

fn claim_path(paths: &mut BTreeSet<String>, path: &str, field: &str) -> Result<(), TranslateError> {
    if paths.insert(path.to_string()) {
        Ok(())
    } else {
        Err(TranslateError::invalid(
            field,
            path,
            "another mount of this container already uses this path; give each mount its own path",
        ))
    }
}

/// A memory-backed emptyDir of `mib` MiB (tmpfs, /dev/shm). It counts against the container's memory.
fn memory_volume(name: String, mib: i32) -> Volume {
    Volume {
        name,
        empty_dir: Some(EmptyDirVolumeSource {
            medium: Some("Memory".into()),
            size_limit: Some(Quantity(format!("{mib}Mi"))),
        }),
        ..Default::default()
    }
}

fn empty_dir() -> Volume {
    Volume {
        empty_dir: Some(EmptyDirVolumeSource::default()),
        ..Default::default()
    }
}

/// The Kubernetes source of one declared volume (name left empty).
fn source(
    v: &ecs::Volume,
    path: &str,
    report: &mut Vec<NotHonouredField>,
) -> Result<Volume, TranslateError> {
    const SCRATCH: &str = "the volume is an empty scratch directory (emptyDir) for the task's life";
    if v.efs_volume_configuration.is_some() {
        report.push(nh(
            format!("{path}.efsVolumeConfiguration"),
            format!(
                "Amazon EFS is not mounted directly; {SCRATCH}. Use dockerVolumeConfiguration with driver {PVC_DRIVER} and an EFS-backed claim"
            ),
        ));
        return Ok(empty_dir());
    }
    if v.fsx_windows_file_server_volume_configuration.is_some() {
        report.push(nh(
            format!("{path}.fsxWindowsFileServerVolumeConfiguration"),
            format!(
                "FSx for Windows File Server is not mounted directly; {SCRATCH}. Use dockerVolumeConfiguration with driver {PVC_DRIVER}"
            ),
        ));
        return Ok(empty_dir());
    }
    if v.configured_at_launch == Some(true) {
        report.push(nh(
            format!("{path}.configuredAtLaunch"),
            format!(
                "volumes configured at launch are not provided; {SCRATCH}. Use dockerVolumeConfiguration with driver {PVC_DRIVER}"
            ),
        ));
        return Ok(empty_dir());
    }
    if let Some(d) = &v.docker_volume_configuration {
        let p = format!("{path}.dockerVolumeConfiguration");
        if d.labels.as_ref().is_some_and(|l| !l.is_empty()) {
            report.push(nh(
                format!("{p}.labels"),
                "Kubernetes volumes of a pod have no labels",
            ));
        }
        if d.driver.as_deref() == Some(PVC_DRIVER) {
            return claim(d, &p, report);
        }
        if d.scope.as_deref() == Some("shared") {
            report.push(nh(
                format!("{p}.scope"),
                format!(
                    "shared: a Docker volume that outlives the task does not exist on Kubernetes; {SCRATCH}. Use driver {PVC_DRIVER} for data that outlives the task"
                ),
            ));
        }
        if d.autoprovision == Some(true) {
            report.push(nh(
                format!("{p}.autoprovision"),
                format!("Docker volumes are not created on Kubernetes; {SCRATCH}"),
            ));
        }
        if let Some(driver) = d.driver.as_deref().filter(|d| *d != "local") {
            report.push(nh(
                format!("{p}.driver"),
                format!(
                    "{driver}: Docker volume plugins do not exist on Kubernetes; {SCRATCH}. Use driver {PVC_DRIVER} with a claim of a matching storage class"
                ),
            ));
        }
        if d.driver_opts.as_ref().is_some_and(|o| !o.is_empty()) {
            report.push(nh(
                format!("{p}.driverOpts"),
                format!("Docker volume driver options have no effect; {SCRATCH}"),
            ));
        }
        return Ok(empty_dir());
    }
    match v.host.as_ref().and_then(|h| h.source_path.as_deref()) {
        Some(source_path) if !source_path.is_empty() => {
            if source_path.split('/').any(|part| part == "..") {
                return Err(TranslateError::invalid(
                    format!("{path}.host.sourcePath"),
                    source_path,
                    "a host path must not contain '..'; write the path it resolves to",
                ));
            }
            Ok(Volume {
                host_path: Some(HostPathVolumeSource {
                    path: source_path.to_string(),
                    type_: None,
                }),
                ..Default::default()
            })
        }
        _ => Ok(empty_dir()),
    }
}

/// driver `persistentVolumeClaim`: driverOpts `claimName` (a claim of the task's namespace) and
/// optionally `readOnly: "true"`.
fn claim(
    d: &ecs::DockerVolumeConfiguration,
    p: &str,
    report: &mut Vec<NotHonouredField>,
) -> Result<Volume, TranslateError> {
    let opts = d.driver_opts.clone().unwrap_or_default();
    let Some(claim_name) = opts.get("claimName") else {
        return Err(TranslateError::conflict(
            format!("{p}.driverOpts"),
            format!(
                "driver {PVC_DRIVER} needs driverOpts.claimName naming a PersistentVolumeClaim in the task's namespace"
            ),
        ));
    };
    if !is_dns_subdomain(claim_name) {
        return Err(TranslateError::invalid(
            format!("{p}.driverOpts.claimName"),
            claim_name,
            "not a valid PersistentVolumeClaim name (lowercase letters, digits, '-' and '.')",
        ));
    }
    let read_only = match opts.get("readOnly").map(String::as_str) {
        None | Some("false") => None,
        Some("true") => Some(true),
        Some(other) => {
            return Err(TranslateError::invalid(
                format!("{p}.driverOpts.readOnly"),
                other,
                "write \"true\" or \"false\"",
            ));
        }
    };
    for key in opts
        .keys()
        .filter(|k| *k != "claimName" && *k != "readOnly")
    {
        report.push(nh(
            format!("{p}.driverOpts.{key}"),
            format!("driver {PVC_DRIVER} takes only claimName and readOnly"),
        ));
    }
    if d.autoprovision == Some(true) {
        report.push(nh(
            format!("{p}.autoprovision"),
            "the PersistentVolumeClaim is not created: it must exist in the task's namespace",
        ));
    }
    Ok(Volume {
        persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
            claim_name: claim_name.clone(),
            read_only,
        }),
        ..Default::default()
    })
}

/// The container's `mountPoints`.
fn own_mounts(
    c: &ContainerDefinition,
    i: usize,
    by_name: &BTreeMap<&str, usize>,
) -> Result<Vec<Mount>, TranslateError> {
    let mut out = Vec::new();
    let mut paths = BTreeSet::new();
    for (j, m) in c.mount_points.iter().flatten().enumerate() {
        let field = format!("{}.mountPoints[{j}]", container_path(i));
        let source = m.source_volume.as_deref().unwrap_or_default();
        let volume = *by_name.get(source).ok_or_else(|| {
            TranslateError::invalid(
                format!("{field}.sourceVolume"),
                source,
                "there is no volume with this name in volumes; name one of the task definition's volumes",
            )
        })?;
        let path = m.container_path.as_deref().unwrap_or_default();
        if path.is_empty() {
            return Err(TranslateError::invalid(
                format!("{field}.containerPath"),
                path,
                "a mount point needs the path in the container to mount the volume at",
            ));
        }
        claim_path(&mut paths, path, &format!("{field}.containerPath"))?;
        out.push(Mount {
            volume,
            path: path.to_string(),
            read_only: m.read_only == Some(true),
        });
    }
    Ok(out)
}

/// The mounts each container has to give through `volumesFrom`: its own mountPoints, then, as Docker
/// does, those it copies from its sources (an entry's `readOnly` makes the copies read-only), one mount
/// per path (the first wins). Each container's list is computed once and copied by reference count,
/// never re-walked along every path of the graph: at most one mount per distinct path, whatever the
/// shape of the graph. A cycle is an error: Docker creates a source container before the containers
/// that take its volumes, so no container of a cycle could ever be created.
fn copied_mounts(
    td: &TaskDefinitionSpec,
    own: &[Vec<Mount>],
) -> Result<Vec<Vec<Mount>>, TranslateError> {
    let n = td.container_definitions.len();
    let mut walk = Walk {
        td,
        own,
        done: vec![None; n],
        stack: Vec::new(),
    };
    for i in 0..n {
        walk.visit(i)?;
    }
    Ok(walk
        .done
        .into_iter()
        .map(|m| m.expect("every container visited"))
        .collect())
}

/// A depth-first walk of the volumesFrom graph, memoised per container.
struct Walk<'a> {
    td: &'a TaskDefinitionSpec,
    own: &'a [Vec<Mount>],
    done: Vec<Option<Vec<Mount>>>,
    /// Containers being visited, outermost first: a source found here closes a cycle.
    stack: Vec<usize>,
}

impl Walk<'_> {
    fn visit(&mut self, i: usize) -> Result<(), TranslateError> {
        if self.done[i].is_some() {
            return Ok(());
        }
        let containers = &self.td.container_definitions;
        self.stack.push(i);
        let mut out = self.own[i].clone();
        let mut paths: BTreeSet<String> = out.iter().map(|m| m.path.clone()).collect();
        for (k, vf) in containers[i].volumes_from.iter().flatten().enumerate() {
            let field = format!("{}.volumesFrom[{k}].sourceContainer", container_path(i));
            let source = containers
                .iter()
                .position(|c| c.name == vf.source_container)
                .ok_or_else(|| TranslateError::UnknownContainer {
                    field: field.clone(),
                    name: vf.source_container.clone(),
                })?;
            if let Some(at) = self.stack.iter().position(|s| *s == source) {
                let names: Vec<&str> = self.stack[at..]
                    .iter()
                    .chain([&source])
                    .map(|c| containers[*c].name.as_str())
                    .collect();
                return Err(TranslateError::conflict(
                    field,
                    format!(
                        "volumesFrom forms a cycle ({}); Docker creates a source container before the containers that take its volumes, so none of these could start; remove one of these entries",
                        names.join(" → ")
                    ),
                ));
            }
            self.visit(source)?;
            let force_read_only = vf.read_only == Some(true);
            for m in self.done[source].as_ref().expect("visited") {
                if paths.insert(m.path.clone()) {
                    out.push(Mount {
                        read_only: m.read_only || force_read_only,
                        ..m.clone()
                    });
                }
            }
        }
        self.stack.pop();
        self.done[i] = Some(out);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::task_definition::{
        DockerVolumeConfiguration, EfsVolumeConfiguration, HostVolumeProperties, LinuxParameters,
        MountPoint, Tmpfs, VolumeFrom,
    };

    fn vol(name: &str) -> ecs::Volume {
        ecs::Volume {
            name: name.into(),
            ..Default::default()
        }
    }

    fn mp(volume: &str, path: &str, ro: bool) -> MountPoint {
        MountPoint {
            source_volume: Some(volume.into()),
            container_path: Some(path.into()),
            read_only: ro.then_some(true),
        }
    }

    fn container(name: &str, mounts: Vec<MountPoint>) -> ContainerDefinition {
        ContainerDefinition {
            name: name.into(),
            image: "img".into(),
            mount_points: (!mounts.is_empty()).then_some(mounts),
            ..Default::default()
        }
    }

    fn run(td: &TaskDefinitionSpec) -> Result<VolumePlan, TranslateError> {
        let names: Vec<String> = td
            .container_definitions
            .iter()
            .map(|c| c.name.to_lowercase())
            .collect();
        plan(td, &names)
    }

    fn td(volumes: Vec<ecs::Volume>, containers: Vec<ContainerDefinition>) -> TaskDefinitionSpec {
        TaskDefinitionSpec {
            container_definitions: containers,
            volumes: Some(volumes),
            ..Default::default()
        }
    }

    fn mounts(p: &VolumePlan, i: usize) -> Vec<(String, String, bool)> {
        p.mounts[i]
            .iter()
            .map(|m| {
                (
                    m.name.clone(),
                    m.mount_path.clone(),
                    m.read_only == Some(true),
                )
            })
            .collect()
    }

    #[test]
    fn host_source_path_is_a_host_path() {
        let mut v = vol("Logs_Dir");
        v.host = Some(HostVolumeProperties {
            source_path: Some("/var/log".into()),
        });
        let p = run(&td(
            vec![v],
            vec![container("a", vec![mp("Logs_Dir", "/logs", true)])],
        ))
        .unwrap();
        assert_eq!(p.volumes.len(), 1);
        assert_eq!(p.volumes[0].name, "logs-dir");
        assert_eq!(p.volumes[0].host_path.as_ref().unwrap().path, "/var/log");
        assert_eq!(
            mounts(&p, 0),
            vec![("logs-dir".into(), "/logs".into(), true)]
        );
        assert!(p.not_honoured.is_empty());
    }

    #[test]
    fn host_path_with_backsteps_is_an_error() {
        let mut v = vol("x");
        v.host = Some(HostVolumeProperties {
            source_path: Some("/var/../etc".into()),
        });
        let e = run(&td(
            vec![v],
            vec![container("a", vec![mp("x", "/x", false)])],
        ))
        .unwrap_err();
        assert!(e.to_string().starts_with("volumes[0].host.sourcePath"));
    }

    #[test]
    fn scratch_volumes_are_empty_dirs() {
        let mut host_only = vol("h");
        host_only.host = Some(HostVolumeProperties { source_path: None });
        let mut task_scoped = vol("d");
        task_scoped.docker_volume_configuration = Some(DockerVolumeConfiguration {
            scope: Some("task".into()),
            driver: Some("local".into()),
            ..Default::default()
        });
        let p = run(&td(
            vec![vol("e"), host_only, task_scoped],
            vec![container(
                "a",
                vec![
                    mp("e", "/e", false),
                    mp("h", "/h", false),
                    mp("d", "/d", false),
                ],
            )],
        ))
        .unwrap();
        assert_eq!(p.volumes.len(), 3);
        assert!(
            p.volumes
                .iter()
                .all(|v| v.empty_dir.is_some() && v.host_path.is_none())
        );
        assert!(p.not_honoured.is_empty(), "{:?}", p.not_honoured);
    }

    #[test]
    fn unused_volumes_are_left_out() {
        let mut v = vol("host");
        v.host = Some(HostVolumeProperties {
            source_path: Some("/".into()),
        });
        let p = run(&td(
            vec![v, vol("used")],
            vec![container("a", vec![mp("used", "/u", false)])],
        ))
        .unwrap();
        assert_eq!(p.volumes.len(), 1);
        assert_eq!(p.volumes[0].name, "used");
    }

    #[test]
    fn persistent_volume_claims() {
        let mut v = vol("data");
        v.docker_volume_configuration = Some(DockerVolumeConfiguration {
            driver: Some(PVC_DRIVER.into()),
            driver_opts: Some(
                [
                    ("claimName".to_string(), "pg-data".to_string()),
                    ("readOnly".into(), "true".into()),
                ]
                .into(),
            ),
            scope: Some("shared".into()),
            ..Default::default()
        });
        let p = run(&td(
            vec![v],
            vec![container("a", vec![mp("data", "/data", false)])],
        ))
        .unwrap();
        let pvc = p.volumes[0].persistent_volume_claim.as_ref().unwrap();
        assert_eq!(pvc.claim_name, "pg-data");
        assert_eq!(pvc.read_only, Some(true));
        assert!(p.not_honoured.is_empty());
    }

    #[test]
    fn persistent_volume_claim_needs_a_valid_claim_name() {
        for opts in [
            vec![],
            vec![("claimName", "Bad_Name")],
            vec![("claimName", "ok"), ("readOnly", "yes")],
        ] {
            let mut v = vol("data");
            v.docker_volume_configuration = Some(DockerVolumeConfiguration {
                driver: Some(PVC_DRIVER.into()),
                driver_opts: Some(
                    opts.iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                ),
                ..Default::default()
            });
            let e = run(&td(
                vec![v],
                vec![container("a", vec![mp("data", "/d", false)])],
            ))
            .unwrap_err();
            assert!(
                e.to_string()
                    .starts_with("volumes[0].dockerVolumeConfiguration.driverOpts"),
                "{e}"
            );
        }
    }

    #[test]
    fn persistent_volume_claim_extras_are_reported() {
        let mut v = vol("data");
        v.docker_volume_configuration = Some(DockerVolumeConfiguration {
            driver: Some(PVC_DRIVER.into()),
            driver_opts: Some(
                [
                    ("claimName".to_string(), "c".to_string()),
                    ("size".into(), "1Gi".into()),
                ]
                .into(),
            ),
            autoprovision: Some(true),
            labels: Some([("a".to_string(), "b".to_string())].into()),
            ..Default::default()
        });
        let p = run(&td(
            vec![v],
            vec![container("a", vec![mp("data", "/d", false)])],
        ))
        .unwrap();
        let fields: Vec<_> = p.not_honoured.iter().map(|f| f.field.as_str()).collect();
        assert_eq!(
            fields,
            vec![
                "volumes[0].dockerVolumeConfiguration.labels",
                "volumes[0].dockerVolumeConfiguration.driverOpts.size",
                "volumes[0].dockerVolumeConfiguration.autoprovision",
            ]
        );
    }

    #[test]
    fn unsupported_docker_volumes_are_scratch_and_reported() {
        let mut v = vol("shared");
        v.docker_volume_configuration = Some(DockerVolumeConfiguration {
            scope: Some("shared".into()),
            autoprovision: Some(true),
            driver: Some("rexray/ebs".into()),
            driver_opts: Some([("size".to_string(), "10".to_string())].into()),
            labels: None,
        });
        let p = run(&td(
            vec![v],
            vec![container("a", vec![mp("shared", "/s", false)])],
        ))
        .unwrap();
        assert!(p.volumes[0].empty_dir.is_some());
        let fields: Vec<_> = p.not_honoured.iter().map(|f| f.field.as_str()).collect();
        assert_eq!(
            fields,
            vec![
                "volumes[0].dockerVolumeConfiguration.scope",
                "volumes[0].dockerVolumeConfiguration.autoprovision",
                "volumes[0].dockerVolumeConfiguration.driver",
                "volumes[0].dockerVolumeConfiguration.driverOpts",
            ]
        );
    }

    #[test]
    fn efs_fsx_and_launch_volumes_are_scratch_and_reported() {
        let mut efs = vol("efs");
        efs.efs_volume_configuration = Some(EfsVolumeConfiguration {
            file_system_id: "fs-1".into(),
            ..Default::default()
        });
        let mut fsx = vol("fsx");
        fsx.fsx_windows_file_server_volume_configuration = Some(Default::default());
        let mut launch = vol("ebs");
        launch.configured_at_launch = Some(true);
        let p = run(&td(vec![efs, fsx, launch], vec![container("a", vec![])])).unwrap();
        let fields: Vec<_> = p.not_honoured.iter().map(|f| f.field.as_str()).collect();
        assert_eq!(
            fields,
            vec![
                "volumes[0].efsVolumeConfiguration",
                "volumes[1].fsxWindowsFileServerVolumeConfiguration",
                "volumes[2].configuredAtLaunch",
            ]
        );
        assert!(p.volumes.is_empty());
    }

    #[test]
    fn volumes_from_copies_mounts_transitively() {
        let p = run(&td(
            vec![vol("a"), vol("b")],
            vec![
                container("data", vec![mp("a", "/a", false), mp("b", "/b", true)]),
                ContainerDefinition {
                    volumes_from: Some(vec![VolumeFrom {
                        source_container: "data".into(),
                        read_only: None,
                    }]),
                    ..container("mid", vec![])
                },
                ContainerDefinition {
                    volumes_from: Some(vec![VolumeFrom {
                        source_container: "mid".into(),
                        read_only: Some(true),
                    }]),
                    ..container("reader", vec![mp("a", "/own", false)])
                },
            ],
        ))
        .unwrap();
        assert_eq!(
            mounts(&p, 1),
            vec![
                ("a".into(), "/a".into(), false),
                ("b".into(), "/b".into(), true)
            ]
        );
        assert_eq!(
            mounts(&p, 2),
            vec![
                ("a".into(), "/own".into(), false),
                ("a".into(), "/a".into(), true),
                ("b".into(), "/b".into(), true)
            ]
        );
    }

    #[test]
    fn own_mounts_win_over_copied_ones() {
        let p = run(&td(
            vec![vol("a"), vol("b")],
            vec![
                container("src", vec![mp("a", "/x", false)]),
                ContainerDefinition {
                    volumes_from: Some(vec![VolumeFrom {
                        source_container: "src".into(),
                        read_only: None,
                    }]),
                    ..container("dst", vec![mp("b", "/x", false)])
                },
            ],
        ))
        .unwrap();
        assert_eq!(mounts(&p, 1), vec![("b".into(), "/x".into(), false)]);
    }

    #[test]
    fn volumes_from_cycles_are_errors() {
        let from = |source: &str| {
            Some(vec![VolumeFrom {
                source_container: source.into(),
                read_only: None,
            }])
        };
        let e = run(&td(
            vec![vol("a")],
            vec![
                ContainerDefinition {
                    volumes_from: from("y"),
                    ..container("x", vec![mp("a", "/a", false)])
                },
                ContainerDefinition {
                    volumes_from: from("x"),
                    ..container("y", vec![])
                },
            ],
        ))
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "containerDefinitions[1].volumesFrom[0].sourceContainer: volumesFrom forms a cycle (x → y → x); Docker creates a source container before the containers that take its volumes, so none of these could start; remove one of these entries"
        );
        let e = run(&td(
            vec![],
            vec![ContainerDefinition {
                volumes_from: from("self"),
                ..container("self", vec![])
            }],
        ))
        .unwrap_err();
        assert!(
            e.to_string()
                .starts_with("containerDefinitions[0].volumesFrom[0].sourceContainer: volumesFrom forms a cycle (self → self)"),
            "{e}"
        );
    }

    #[test]
    fn unknown_references_are_errors() {
        let e = run(&td(
            vec![],
            vec![container("a", vec![mp("ghost", "/g", false)])],
        ))
        .unwrap_err();
        assert!(
            e.to_string()
                .starts_with("containerDefinitions[0].mountPoints[0].sourceVolume")
        );
        let e = run(&td(
            vec![],
            vec![ContainerDefinition {
                volumes_from: Some(vec![VolumeFrom {
                    source_container: "ghost".into(),
                    read_only: None,
                }]),
                ..container("a", vec![])
            }],
        ))
        .unwrap_err();
        assert!(matches!(e, TranslateError::UnknownContainer { .. }));
        let e = run(&td(
            vec![vol("v")],
            vec![container(
                "a",
                vec![MountPoint {
                    source_volume: Some("v".into()),
                    container_path: None,
                    read_only: None,
                }],
            )],
        ))
        .unwrap_err();
        assert!(
            e.to_string()
                .starts_with("containerDefinitions[0].mountPoints[0].containerPath")
        );
    }

    #[test]
    fn duplicate_paths_are_errors() {
        let e = run(&td(
            vec![vol("a"), vol("b")],
            vec![container(
                "c",
                vec![mp("a", "/x", false), mp("b", "/x", false)],
            )],
        ))
        .unwrap_err();
        assert!(
            e.to_string()
                .starts_with("containerDefinitions[0].mountPoints[1].containerPath")
        );
    }

    #[test]
    fn shared_memory_and_tmpfs_are_memory_backed() {
        let c = ContainerDefinition {
            linux_parameters: Some(LinuxParameters {
                shared_memory_size: Some(256),
                tmpfs: Some(vec![
                    Tmpfs {
                        container_path: "/run".into(),
                        size: 64,
                        mount_options: None,
                    },
                    Tmpfs {
                        container_path: "/tmp".into(),
                        size: 128,
                        mount_options: None,
                    },
                ]),
                ..Default::default()
            }),
            ..container("web", vec![])
        };
        let p = run(&td(vec![vol("web-shm")], vec![c])).unwrap();
        let names: Vec<_> = p.volumes.iter().map(|v| v.name.as_str()).collect();
        assert_eq!(names.len(), 3);
        // The declared volume keeps its name; the generated one gets a hashed one.
        assert!(names[0].starts_with("web-shm-"), "{names:?}");
        assert_eq!(names[1..], ["web-tmpfs-0", "web-tmpfs-1"]);
        for (v, size) in p.volumes.iter().zip(["256Mi", "64Mi", "128Mi"]) {
            let e = v.empty_dir.as_ref().unwrap();
            assert_eq!(e.medium.as_deref(), Some("Memory"));
            assert_eq!(e.size_limit.as_ref().unwrap().0, size);
        }
        let paths: Vec<_> = p.mounts[0].iter().map(|m| m.mount_path.as_str()).collect();
        assert_eq!(paths, ["/dev/shm", "/run", "/tmp"]);
    }

    #[test]
    fn tmpfs_over_a_mount_point_is_an_error() {
        let c = ContainerDefinition {
            linux_parameters: Some(LinuxParameters {
                tmpfs: Some(vec![Tmpfs {
                    container_path: "/data".into(),
                    size: 64,
                    mount_options: None,
                }]),
                ..Default::default()
            }),
            ..container("web", vec![mp("v", "/data", false)])
        };
        let e = run(&td(vec![vol("v")], vec![c])).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("containerDefinitions[0].linuxParameters.tmpfs[0].containerPath")
        );
    }
}

#[cfg(test)]
mod bounds {
    //! Hostile `volumesFrom` graphs at the CRD's bounds (10 containers, 40 mountPoints and 5
    //! volumesFrom each, 50 volumes) translate quickly into a bounded number of mounts.

    use super::*;
    use crate::api::task_definition::{MountPoint, VolumeFrom};

    const CONTAINERS: usize = 10;
    const MOUNTS: usize = 40;
    const VOLUMES_FROM: usize = 5;

    /// Every container mounts 40 paths of its own and takes volumes from five containers before it,
    /// chosen by `sources(i, k)`.
    fn graph(sources: impl Fn(usize, usize) -> usize) -> TaskDefinitionSpec {
        let containers = (0..CONTAINERS)
            .map(|i| ContainerDefinition {
                name: format!("c{i}"),
                image: "img".into(),
                mount_points: Some(
                    (0..MOUNTS)
                        .map(|j| MountPoint {
                            source_volume: Some(format!("v{}", (i * MOUNTS + j) % 50)),
                            container_path: Some(format!("/c{i}/m{j}")),
                            read_only: Some(j % 2 == 0),
                        })
                        .collect(),
                ),
                volumes_from: (i > 0).then(|| {
                    (0..VOLUMES_FROM)
                        .map(|k| VolumeFrom {
                            source_container: format!("c{}", sources(i, k)),
                            read_only: Some(k % 2 == 1),
                        })
                        .collect()
                }),
                ..Default::default()
            })
            .collect();
        TaskDefinitionSpec {
            container_definitions: containers,
            volumes: Some(
                (0..50)
                    .map(|v| ecs::Volume {
                        name: format!("v{v}"),
                        ..Default::default()
                    })
                    .collect(),
            ),
            ..Default::default()
        }
    }

    /// Runs the plan on another thread: a regression shows as a failed test, not a hung run.
    fn plan_within(td: TaskDefinitionSpec) -> VolumePlan {
        let (done, result) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let names: Vec<String> = td
                .container_definitions
                .iter()
                .map(|c| c.name.clone())
                .collect();
            let _ = done.send(plan(&td, &names));
        });
        result
            .recv_timeout(std::time::Duration::from_secs(30))
            .expect("the volume plan of a bounded task definition finishes")
            .expect("a valid task definition")
    }

    fn assert_bounded(p: &VolumePlan) {
        // Container i sees its own 40 paths and the 40 of every container before it: one mount each.
        for (i, mounts) in p.mounts.iter().enumerate() {
            assert_eq!(mounts.len(), MOUNTS * (i + 1), "container c{i}");
            let paths: BTreeSet<_> = mounts.iter().map(|m| m.mount_path.as_str()).collect();
            assert_eq!(paths.len(), mounts.len(), "one mount per path in c{i}");
        }
        assert_eq!(p.volumes.len(), 50);
    }

    #[test]
    fn the_worst_case_is_the_crd_bound() {
        use kube::CustomResourceExt;
        let crd = serde_json::to_value(crate::api::TaskDefinition::crd()).unwrap();
        let spec = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"];
        let containers = &spec["properties"]["containerDefinitions"];
        let container = &containers["items"]["properties"];
        assert_eq!(containers["maxItems"], CONTAINERS);
        assert_eq!(container["mountPoints"]["maxItems"], MOUNTS);
        assert_eq!(container["volumesFrom"]["maxItems"], VOLUMES_FROM);
        assert_eq!(spec["properties"]["volumes"]["maxItems"], 50);
    }

    #[test]
    fn each_container_taking_from_the_five_before_it_is_bounded() {
        let p = plan_within(graph(|i, k| i.saturating_sub(k + 1)));
        assert_bounded(&p);
    }

    #[test]
    fn the_same_source_named_five_times_at_every_level_is_bounded() {
        // Copying along every path would make 5^9 copies of the first container's 40 mounts.
        let p = plan_within(graph(|i, _| i - 1));
        assert_bounded(&p);
        // Read-only once taken read-only along any entry: the first entry of each level is read-write.
        let first = &p.mounts[CONTAINERS - 1];
        assert!(first.iter().any(|m| m.read_only != Some(true)));
    }
}
