//! `dependsOn` → where each container runs in the pod, and in what order.
//!
//! Kubernetes starts init containers one after the other, then all regular containers together. A
//! native sidecar (an init container with `restartPolicy: Always`) lets the next container start as soon
//! as it has started, or once its startup probe passed; a plain init container must exit successfully
//! first. So:
//!
//! | depended on with | becomes |
//! |---|---|
//! | `START` or `HEALTHY` (only) | a native sidecar; for `HEALTHY` it gets a startup probe equal to its health check |
//! | `COMPLETE` or `SUCCESS` (any dependent) | a run-to-completion init container |
//! | nothing | a regular container |
//!
//! Sidecars and init containers are placed in a topological order of the dependencies (ties in task
//! definition order), so every container starts after all it depends on. Every dependency graph without
//! a cycle can be expressed this way, because only containers that others depend on are moved into the
//! init sequence. On shutdown Kubernetes stops regular containers first, then sidecars in reverse order:
//! the reverse dependency order ECS uses.

use std::collections::{BTreeMap, BTreeSet};

use super::not_honoured::{container_path, nh};
use super::{ContainerRole, TranslateError};
use crate::api::task_definition::{DependencyCondition, NotHonouredField, TaskDefinitionSpec};

/// The placement of every container of the task.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Plan {
    /// Role of each container, in task definition order.
    pub roles: Vec<ContainerRole>,
    /// Sidecars and init containers (indices into `containerDefinitions`) in start order.
    pub init_order: Vec<usize>,
    /// Containers that others wait on with `HEALTHY`.
    pub healthy_gate: Vec<bool>,
    /// Dependencies that hold only in a stronger form.
    pub not_honoured: Vec<NotHonouredField>,
}

/// One dependency: `dependent` waits for `target`.
struct Edge {
    target: usize,
    dependent: usize,
    index: usize,
    condition: DependencyCondition,
}

/// Place the containers of `td`.
pub(crate) fn plan(td: &TaskDefinitionSpec) -> Result<Plan, TranslateError> {
    let containers = &td.container_definitions;
    let n = containers.len();
    let mut by_name = BTreeMap::new();
    for (i, c) in containers.iter().enumerate() {
        by_name.entry(c.name.as_str()).or_insert(i);
    }
    let mut edges = Vec::new();
    for (i, c) in containers.iter().enumerate() {
        for (k, d) in c.depends_on.iter().flatten().enumerate() {
            let field = format!("{}.dependsOn[{k}]", container_path(i));
            let target = *by_name.get(d.container_name.as_str()).ok_or_else(|| {
                TranslateError::UnknownContainer {
                    field: format!("{field}.containerName"),
                    name: d.container_name.clone(),
                }
            })?;
            if d.condition == DependencyCondition::Healthy
                && containers[target]
                    .health_check
                    .as_ref()
                    .is_none_or(super::health::ignored)
            {
                return Err(TranslateError::HealthyWithoutHealthCheck {
                    field,
                    container: d.container_name.clone(),
                });
            }
            edges.push(Edge {
                target,
                dependent: i,
                index: k,
                condition: d.condition,
            });
        }
    }

    let mut roles = vec![ContainerRole::Regular; n];
    let mut healthy_gate = vec![false; n];
    for e in &edges {
        match e.condition {
            DependencyCondition::Complete | DependencyCondition::Success => {
                roles[e.target] = ContainerRole::Init;
            }
            DependencyCondition::Start | DependencyCondition::Healthy => {
                if roles[e.target] == ContainerRole::Regular {
                    roles[e.target] = ContainerRole::Sidecar;
                }
                healthy_gate[e.target] |= e.condition == DependencyCondition::Healthy;
            }
        }
    }

    let order =
        topological_order(n, &edges).map_err(|containers| TranslateError::DependencyCycle {
            containers: containers
                .into_iter()
                .map(|i| td.container_definitions[i].name.clone())
                .collect(),
        })?;
    let init_order = order
        .into_iter()
        .filter(|i| roles[*i] != ContainerRole::Regular)
        .collect();

    let mut not_honoured = Vec::new();
    for e in &edges {
        if roles[e.target] != ContainerRole::Init {
            continue;
        }
        let field = format!(
            "{}.dependsOn[{}].condition",
            container_path(e.dependent),
            e.index
        );
        let target = &containers[e.target].name;
        match e.condition {
            DependencyCondition::Start => not_honoured.push(nh(
                field,
                format!(
                    "START: another container waits for {target:?} to complete, so it runs to completion as an init container and this container starts only after it exited"
                ),
            )),
            DependencyCondition::Healthy => not_honoured.push(nh(
                field,
                format!(
                    "HEALTHY: another container waits for {target:?} to complete, so it runs to completion as an init container (which cannot have probes) and this container starts after it exited, without a health check"
                ),
            )),
            DependencyCondition::Complete | DependencyCondition::Success => {}
        }
    }
    // An init container has exited before anything after it starts: there is nothing to gate.
    for (gate, role) in healthy_gate.iter_mut().zip(&roles) {
        *gate &= *role != ContainerRole::Init;
    }

    Ok(Plan {
        roles,
        init_order,
        healthy_gate,
        not_honoured,
    })
}

/// Kahn's algorithm, ready containers taken in task definition order. On a cycle, the containers of one
/// cycle in waiting order.
fn topological_order(n: usize, edges: &[Edge]) -> Result<Vec<usize>, Vec<usize>> {
    let mut waiting_for = vec![0usize; n];
    for e in edges {
        waiting_for[e.dependent] += 1;
    }
    let mut ready: BTreeSet<usize> = (0..n).filter(|i| waiting_for[*i] == 0).collect();
    let mut order = Vec::with_capacity(n);
    while let Some(i) = ready.pop_first() {
        order.push(i);
        for e in edges.iter().filter(|e| e.target == i) {
            waiting_for[e.dependent] -= 1;
            if waiting_for[e.dependent] == 0 {
                ready.insert(e.dependent);
            }
        }
    }
    if order.len() == n {
        return Ok(order);
    }
    // Every container left waits for another one left: follow those until one repeats.
    let left: BTreeSet<usize> = (0..n).filter(|i| waiting_for[*i] > 0).collect();
    let mut path: Vec<usize> = Vec::new();
    let mut current = *left.first().expect("a cycle leaves containers waiting");
    loop {
        if let Some(at) = path.iter().position(|p| *p == current) {
            return Err(path.split_off(at));
        }
        path.push(current);
        current = edges
            .iter()
            .filter(|e| e.dependent == current && left.contains(&e.target))
            .map(|e| e.target)
            .min()
            .expect("a container left waiting waits for another container left");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::task_definition::{ContainerDefinition, ContainerDependency, HealthCheck};
    use ContainerRole::*;
    use DependencyCondition::*;

    fn c(name: &str, deps: &[(&str, DependencyCondition)]) -> ContainerDefinition {
        ContainerDefinition {
            name: name.into(),
            image: "img".into(),
            depends_on: (!deps.is_empty()).then(|| {
                deps.iter()
                    .map(|(n, cond)| ContainerDependency {
                        container_name: (*n).into(),
                        condition: *cond,
                    })
                    .collect()
            }),
            health_check: Some(HealthCheck {
                command: vec!["CMD".into(), "true".into()],
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn td(containers: Vec<ContainerDefinition>) -> TaskDefinitionSpec {
        TaskDefinitionSpec {
            container_definitions: containers,
            ..Default::default()
        }
    }

    #[test]
    fn no_dependencies_all_regular() {
        let p = plan(&td(vec![c("a", &[]), c("b", &[])])).unwrap();
        assert_eq!(p.roles, vec![Regular, Regular]);
        assert!(p.init_order.is_empty());
        assert!(p.not_honoured.is_empty());
    }

    #[test]
    fn start_makes_a_sidecar() {
        let p = plan(&td(vec![c("app", &[("proxy", Start)]), c("proxy", &[])])).unwrap();
        assert_eq!(p.roles, vec![Regular, Sidecar]);
        assert_eq!(p.init_order, vec![1]);
        assert_eq!(p.healthy_gate, vec![false, false]);
    }

    #[test]
    fn healthy_makes_a_gated_sidecar() {
        let p = plan(&td(vec![c("app", &[("db", Healthy)]), c("db", &[])])).unwrap();
        assert_eq!(p.roles, vec![Regular, Sidecar]);
        assert_eq!(p.healthy_gate, vec![false, true]);
    }

    #[test]
    fn complete_and_success_make_init_containers() {
        let p = plan(&td(vec![
            c("app", &[("migrate", Success), ("fetch", Complete)]),
            c("migrate", &[]),
            c("fetch", &[]),
        ]))
        .unwrap();
        assert_eq!(p.roles, vec![Regular, Init, Init]);
        assert_eq!(p.init_order, vec![1, 2]);
    }

    #[test]
    fn init_sequence_is_topological_with_ties_in_definition_order() {
        // app waits for proxy (START) and migrate (SUCCESS); migrate waits for proxy (START) and
        // config (COMPLETE); config is listed last but must run first among those it precedes.
        let p = plan(&td(vec![
            c("app", &[("proxy", Start), ("migrate", Success)]),
            c("migrate", &[("proxy", Start), ("config", Complete)]),
            c("proxy", &[]),
            c("config", &[]),
        ]))
        .unwrap();
        assert_eq!(p.roles, vec![Regular, Init, Sidecar, Init]);
        assert_eq!(p.init_order, vec![2, 3, 1]);
    }

    #[test]
    fn a_chain_of_sidecars_keeps_its_order() {
        let p = plan(&td(vec![
            c("a", &[("b", Healthy)]),
            c("b", &[("c", Start)]),
            c("c", &[]),
        ]))
        .unwrap();
        assert_eq!(p.roles, vec![Regular, Sidecar, Sidecar]);
        assert_eq!(p.init_order, vec![2, 1]);
    }

    #[test]
    fn complete_wins_over_start_and_is_reported() {
        let p = plan(&td(vec![
            c("a", &[("job", Complete)]),
            c("b", &[("job", Start)]),
            c("d", &[("job", Healthy)]),
            c("job", &[]),
        ]))
        .unwrap();
        assert_eq!(p.roles[3], Init);
        assert!(!p.healthy_gate[3]);
        let fields: Vec<_> = p.not_honoured.iter().map(|f| f.field.as_str()).collect();
        assert_eq!(
            fields,
            vec![
                "containerDefinitions[1].dependsOn[0].condition",
                "containerDefinitions[2].dependsOn[0].condition"
            ]
        );
    }

    #[test]
    fn healthy_needs_a_health_check() {
        let mut db = c("db", &[]);
        db.health_check = None;
        let e = plan(&td(vec![c("app", &[("db", Healthy)]), db])).unwrap_err();
        assert_eq!(
            e,
            TranslateError::HealthyWithoutHealthCheck {
                field: "containerDefinitions[0].dependsOn[0]".into(),
                container: "db".into()
            }
        );
    }

    #[test]
    fn unknown_dependency_is_an_error() {
        let e = plan(&td(vec![c("app", &[("ghost", Start)])])).unwrap_err();
        assert_eq!(
            e,
            TranslateError::UnknownContainer {
                field: "containerDefinitions[0].dependsOn[0].containerName".into(),
                name: "ghost".into()
            }
        );
    }

    #[test]
    fn cycles_are_named() {
        let e = plan(&td(vec![c("a", &[("b", Start)]), c("b", &[("a", Start)])])).unwrap_err();
        assert_eq!(
            e,
            TranslateError::DependencyCycle {
                containers: vec!["a".into(), "b".into()]
            }
        );
        let e = plan(&td(vec![
            c("x", &[("a", Start)]),
            c("a", &[("b", Complete)]),
            c("b", &[("c", Healthy)]),
            c("c", &[("a", Start)]),
        ]))
        .unwrap_err();
        let TranslateError::DependencyCycle { containers } = e else {
            panic!("{e}")
        };
        let mut sorted = containers.clone();
        sorted.sort();
        assert_eq!(sorted, vec!["a", "b", "c"]);
        let e = plan(&td(vec![c("self", &[("self", Start)])])).unwrap_err();
        assert_eq!(
            e,
            TranslateError::DependencyCycle {
                containers: vec!["self".into()]
            }
        );
    }
}
