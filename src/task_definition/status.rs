//! The status of a TaskDefinition from its registered revisions: pure.

use std::collections::BTreeSet;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::api::task_definition::{NotHonouredField, RevisionStatus, TaskDefinitionState};
use crate::api::{TaskDefinition, TaskDefinitionStatus};
use crate::conditions;

/// What the driver found: registered revisions (number, registration time), oldest first.
pub struct Registered<'a> {
    pub revisions: &'a [(i64, Option<Time>)],
    /// From the inactive-revisions annotation, or why it could not be read.
    pub inactive: Result<BTreeSet<i64>, String>,
    pub not_honoured: Vec<NotHonouredField>,
    /// Why the definition cannot become a pod on Kubernetes, if it cannot.
    pub invalid: Option<String>,
}

/// Computes the status; equal inputs give an equal status (no timestamps move without a change).
pub fn compute(td: &TaskDefinition, found: Registered<'_>) -> TaskDefinitionStatus {
    let prev = td.status.clone().unwrap_or_default();
    let generation = td.metadata.generation;
    let inactive = found.inactive.clone().unwrap_or_default();
    let revisions: Vec<RevisionStatus> = found
        .revisions
        .iter()
        .map(|(revision, registered_at)| {
            let was = prev.revisions.iter().find(|r| r.revision == *revision);
            let is_inactive = inactive.contains(revision);
            RevisionStatus {
                revision: *revision,
                status: if is_inactive {
                    TaskDefinitionState::Inactive
                } else {
                    TaskDefinitionState::Active
                },
                registered_at: registered_at.clone(),
                deregistered_at: match was {
                    Some(w) if is_inactive && w.status == TaskDefinitionState::Inactive => {
                        w.deregistered_at.clone()
                    }
                    _ if is_inactive => Some(crate::time::now()),
                    _ => None,
                },
            }
        })
        .collect();
    let latest = revisions.last().map(|r| r.revision);
    let latest_active = revisions
        .iter()
        .rev()
        .find(|r| r.status == TaskDefinitionState::Active)
        .map(|r| r.revision);
    let mut conditions = prev.conditions.clone();
    let name = td.metadata.name.as_deref().unwrap_or_default();
    match (&found.invalid, &found.inactive, latest_active) {
        (Some(why), _, _) => conditions::set(
            &mut conditions,
            "Ready",
            false,
            "InvalidTaskDefinition",
            format!("task definition {name} cannot run on Kubernetes: {why}"),
            generation,
        ),
        (_, Err(why), _) => conditions::set(
            &mut conditions,
            "Ready",
            false,
            "InvalidInactiveRevisions",
            format!("annotation {}: {why}", crate::labels::INACTIVE_REVISIONS),
            generation,
        ),
        (_, _, None) => conditions::set(
            &mut conditions,
            "Ready",
            false,
            "NoActiveRevision",
            format!("task definition {name} has no ACTIVE revision: new tasks cannot use it"),
            generation,
        ),
        (_, _, Some(r)) => conditions::set(
            &mut conditions,
            "Ready",
            true,
            "Registered",
            format!("{name}:{r} is the latest ACTIVE revision"),
            generation,
        ),
    }
    TaskDefinitionStatus {
        observed_generation: generation,
        latest_revision: latest,
        latest_active_revision: latest_active,
        status: latest.map(|l| {
            if Some(l) == latest_active {
                TaskDefinitionState::Active
            } else {
                TaskDefinitionState::Inactive
            }
        }),
        revisions,
        not_honoured: found.not_honoured,
        conditions,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn td(status: Option<TaskDefinitionStatus>) -> TaskDefinition {
        let mut td = TaskDefinition::new("web", Default::default());
        td.metadata.generation = Some(3);
        td.status = status;
        td
    }

    #[test]
    fn family_resolves_to_the_latest_active_revision() {
        let revs = [(1, None), (2, None), (3, None)];
        let s = compute(
            &td(None),
            Registered {
                revisions: &revs,
                inactive: Ok(BTreeSet::from([3])),
                not_honoured: vec![],
                invalid: None,
            },
        );
        assert_eq!(s.latest_revision, Some(3));
        assert_eq!(s.latest_active_revision, Some(2));
        assert_eq!(s.status, Some(TaskDefinitionState::Inactive));
        assert_eq!(s.revisions[2].status, TaskDefinitionState::Inactive);
        assert!(s.revisions[2].deregistered_at.is_some());
        assert_eq!(s.observed_generation, Some(3));
        let ready = conditions::get(&s.conditions, "Ready").unwrap();
        assert_eq!(
            (ready.status.as_str(), ready.reason.as_str()),
            ("True", "Registered")
        );
    }

    #[test]
    fn recomputing_changes_nothing() {
        let revs = [(1, None), (2, None)];
        let found = || Registered {
            revisions: &revs,
            inactive: Ok(BTreeSet::from([1])),
            not_honoured: vec![],
            invalid: None,
        };
        let first = compute(&td(None), found());
        let second = compute(&td(Some(first.clone())), found());
        assert_eq!(first, second);
    }

    #[test]
    fn no_active_revision_and_bad_annotation_are_conditions() {
        let revs = [(1, None)];
        let s = compute(
            &td(None),
            Registered {
                revisions: &revs,
                inactive: Ok(BTreeSet::from([1])),
                not_honoured: vec![],
                invalid: None,
            },
        );
        assert_eq!(
            conditions::get(&s.conditions, "Ready").unwrap().reason,
            "NoActiveRevision"
        );
        let s = compute(
            &td(None),
            Registered {
                revisions: &revs,
                inactive: Err("\"x\" is not a revision number".into()),
                not_honoured: vec![],
                invalid: None,
            },
        );
        assert_eq!(
            conditions::get(&s.conditions, "Ready").unwrap().reason,
            "InvalidInactiveRevisions"
        );
    }
}
