//! What the Service controller wrote that its caches have not shown yet: pure.
//!
//! The controller decides on reflector caches, which lag its own writes by a watch event. Two kinds of
//! record close that gap, as kube-controller-manager's ReplicaSet controller keeps its expectations:
//! - [`Expected`]: per task, the object a create or a stop returned (counted as it was written until
//!   the cache shows that version or a later one) or a delete (counted as gone until the cache loses
//!   the task);
//! - [`Written`]: per service, the status last written and the resourceVersion the write returned:
//!   while the cached service is older, decisions are made on what was written, so the breaker
//!   state and the deployments in status never go back in time.
//!
//! Each record expires after [`EXPIRY`]: a watch event that never comes (a relist that skipped it, a
//! task deleted by someone else) cannot hold a wrong view for longer.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kube::ResourceExt;

use crate::api::Task;
use crate::api::service::ServiceStatus;
use crate::controller::version::caught_up;

/// How long a write may go unseen by the cache before its record is dropped.
pub const EXPIRY: Duration = Duration::from_secs(60);

/// What this controller wrote about one task.
#[derive(Clone, Debug)]
pub enum Wrote {
    /// Created: the object the create returned (counted PENDING until the cache has it).
    Created(Task),
    /// Changed (a stop): the object the API returned.
    Updated(Task),
    /// Deleted: counted as gone while the cache still has it.
    Deleted,
}

/// One task's record.
#[derive(Clone, Debug)]
pub struct Entry {
    pub wrote: Wrote,
    pub at: Instant,
}

/// A service's task records, by task name.
pub type Expected = BTreeMap<String, Entry>;

/// Records a write over what was expected of the same task: a task created and then stopped before
/// the cache saw it stays one the cache has not seen.
pub fn record(expected: &mut Expected, name: &str, wrote: Wrote, at: Instant) {
    let wrote = match (expected.get(name).map(|e| &e.wrote), wrote) {
        (Some(Wrote::Created(_)), Wrote::Updated(t)) => Wrote::Created(t),
        (_, w) => w,
    };
    expected.insert(name.to_string(), Entry { wrote, at });
}

/// The tasks to decide on: the cache's (`seen`, this service's) merged with what was written and not
/// seen yet; and the records still waiting (met and expired ones dropped).
pub fn merge<T: Into<Arc<Task>>>(
    seen: Vec<T>,
    expected: &Expected,
    now: Instant,
) -> (Vec<Arc<Task>>, Expected) {
    // Shared, not copied: a pass over thousands of tasks would otherwise clone each one.
    let mut tasks: BTreeMap<String, Arc<Task>> = seen
        .into_iter()
        .map(|t| {
            let t = t.into();
            (t.name_any(), t)
        })
        .collect();
    let mut waiting = Expected::new();
    for (name, entry) in expected {
        if now.saturating_duration_since(entry.at) > EXPIRY {
            continue;
        }
        let cached = tasks.get(name);
        match (&entry.wrote, cached) {
            (Wrote::Created(w) | Wrote::Updated(w), Some(c)) => {
                // Another object under the name (deleted and created again): the cache is right.
                if c.uid() != w.uid()
                    || caught_up(
                        c.resource_version().as_deref(),
                        w.resource_version().as_deref(),
                    )
                {
                    continue;
                }
                tasks.insert(name.clone(), Arc::new(w.clone()));
            }
            (Wrote::Created(w), None) => {
                tasks.insert(name.clone(), Arc::new(w.clone()));
            }
            // Changed by us, gone from the cache since: deleted by someone else.
            (Wrote::Updated(_), None) => continue,
            (Wrote::Deleted, Some(_)) => {
                tasks.remove(name);
            }
            (Wrote::Deleted, None) => continue,
        }
        waiting.insert(name.clone(), entry.clone());
    }
    (tasks.into_values().collect(), waiting)
}

/// The status last written for a service, with the resourceVersion the write returned.
#[derive(Clone, Debug)]
pub struct Written {
    pub resource_version: String,
    pub status: ServiceStatus,
    pub at: Instant,
}

/// What to decide on: `None` when the cached service (at `cached_version`) has caught up with the
/// write (the record can go), else the written status and version (the cache lags our write).
pub fn status_to_decide_on<'a>(
    cached_version: Option<&str>,
    written: &'a Written,
    now: Instant,
) -> Option<&'a Written> {
    if now.saturating_duration_since(written.at) > EXPIRY
        || caught_up(cached_version, Some(&written.resource_version))
    {
        None
    } else {
        Some(written)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::task::DesiredStatus;
    use serde_json::json;

    fn task(name: &str, uid: &str, rv: &str, stopped: bool) -> Task {
        serde_json::from_value(json!({
            "apiVersion": "ecs.operator.dev/v1alpha1", "kind": "Task",
            "metadata": {"name": name, "uid": uid, "resourceVersion": rv},
            "spec": {"taskDefinition": "web:1", "desiredStatus": if stopped { "STOPPED" } else { "RUNNING" }}
        }))
        .unwrap()
    }

    fn names(tasks: &[Arc<Task>]) -> Vec<String> {
        tasks.iter().map(|t| t.name_any()).collect()
    }

    fn versions(tasks: &[Arc<Task>]) -> Vec<String> {
        tasks.iter().filter_map(|t| t.resource_version()).collect()
    }

    #[test]
    fn a_created_task_counts_until_the_cache_has_it() {
        let t0 = Instant::now();
        let mut expected = Expected::new();
        record(
            &mut expected,
            "web-1-0",
            Wrote::Created(task("web-1-0", "u0", "10", false)),
            t0,
        );
        let (tasks, waiting) = merge(Vec::<Task>::new(), &expected, t0);
        assert_eq!(names(&tasks), ["web-1-0"]);
        assert_eq!(waiting.len(), 1);
        // Seen (at the created version or a later one): the cache's copy, the record dropped.
        let cached = task("web-1-0", "u0", "12", false);
        let (tasks, waiting) = merge(vec![cached], &expected, t0);
        assert_eq!(versions(&tasks), ["12"]);
        assert!(waiting.is_empty());
    }

    #[test]
    fn a_stop_counts_until_the_cache_shows_it() {
        let t0 = Instant::now();
        let mut expected = Expected::new();
        record(
            &mut expected,
            "a",
            Wrote::Updated(task("a", "u", "20", true)),
            t0,
        );
        let before = task("a", "u", "15", false);
        let (tasks, waiting) = merge(vec![before], &expected, t0);
        assert_eq!(tasks[0].spec.desired_status, DesiredStatus::Stopped);
        assert_eq!(waiting.len(), 1);
        let (tasks, waiting) = merge(vec![task("a", "u", "20", true)], &expected, t0);
        assert_eq!(tasks[0].resource_version().as_deref(), Some("20"));
        assert!(waiting.is_empty());
        // Gone from the cache: deleted by someone else, not brought back.
        let (tasks, waiting) = merge(Vec::<Task>::new(), &expected, t0);
        assert!(tasks.is_empty() && waiting.is_empty());
    }

    #[test]
    fn a_task_created_then_stopped_unseen_still_counts() {
        let t0 = Instant::now();
        let mut expected = Expected::new();
        record(
            &mut expected,
            "a",
            Wrote::Created(task("a", "u", "10", false)),
            t0,
        );
        record(
            &mut expected,
            "a",
            Wrote::Updated(task("a", "u", "11", true)),
            t0,
        );
        let (tasks, _) = merge(Vec::<Task>::new(), &expected, t0);
        assert_eq!(tasks.len(), 1);
        assert_eq!(tasks[0].spec.desired_status, DesiredStatus::Stopped);
    }

    #[test]
    fn a_deleted_task_is_gone_at_once() {
        let t0 = Instant::now();
        let mut expected = Expected::new();
        record(&mut expected, "a", Wrote::Deleted, t0);
        let (tasks, waiting) = merge(
            vec![task("a", "u", "5", true), task("b", "v", "6", false)],
            &expected,
            t0,
        );
        assert_eq!(names(&tasks), ["b"]);
        assert_eq!(waiting.len(), 1);
        let (_, waiting) = merge(vec![task("b", "v", "6", false)], &expected, t0);
        assert!(waiting.is_empty());
    }

    #[test]
    fn another_object_under_the_name_is_the_cache_s() {
        let t0 = Instant::now();
        let mut expected = Expected::new();
        record(
            &mut expected,
            "a",
            Wrote::Updated(task("a", "old", "20", true)),
            t0,
        );
        let replaced = task("a", "new", "3", false);
        let (tasks, waiting) = merge(vec![replaced], &expected, t0);
        assert_eq!(versions(&tasks), ["3"]);
        assert!(waiting.is_empty());
    }

    #[test]
    fn records_expire() {
        let t0 = Instant::now();
        let mut expected = Expected::new();
        record(
            &mut expected,
            "a",
            Wrote::Created(task("a", "u", "10", false)),
            t0,
        );
        record(&mut expected, "b", Wrote::Deleted, t0);
        let later = t0 + EXPIRY + Duration::from_secs(1);
        let (tasks, waiting) = merge(vec![task("b", "v", "1", true)], &expected, later);
        assert_eq!(names(&tasks), ["b"]);
        assert!(waiting.is_empty());
    }

    #[test]
    fn a_status_written_is_decided_on_until_the_cache_catches_up() {
        let t0 = Instant::now();
        let written = Written {
            resource_version: "100".into(),
            status: ServiceStatus::default(),
            at: t0,
        };
        assert!(status_to_decide_on(Some("99"), &written, t0).is_some());
        assert!(status_to_decide_on(Some("100"), &written, t0).is_none());
        assert!(status_to_decide_on(Some("130"), &written, t0).is_none());
        assert!(status_to_decide_on(Some("99"), &written, t0 + EXPIRY * 2).is_none());
    }
}
