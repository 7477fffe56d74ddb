//! Which stopped tasks of a service to delete. ECS keeps stopped tasks visible for at least an hour;
//! a crash-looping service must not pile up thousands of them, so beyond a bound the oldest go
//! first, whatever their age.

use std::time::Duration;

use k8s_openapi::jiff::Timestamp;

use super::plan::{TaskState, TaskView};

/// The stopped tasks a service keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Retention {
    /// Each stopped task is kept this long after it stopped (ECS: at least one hour).
    pub keep_for: Duration,
    /// At least this many stopped tasks may be kept (desiredCount when it is larger).
    pub min_bound: usize,
}

/// What to delete now, and when the next kept task's retention ends.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Cleanup {
    /// Names, oldest first.
    pub delete: Vec<String>,
    /// Time until the oldest kept stopped task reaches its retention.
    pub next: Option<Duration>,
}

/// Deletes the stopped tasks older than the retention, and beyond max(desired, `min_bound`) stopped
/// tasks the oldest first. Tasks that are not STOPPED are never deleted.
pub fn select(tasks: &[TaskView], desired: usize, retention: Retention, now: Timestamp) -> Cleanup {
    let mut stopped: Vec<&TaskView> = tasks
        .iter()
        .filter(|t| t.state == TaskState::Stopped)
        .collect();
    stopped.sort_by(|a, b| (a.stop_time(), &a.name).cmp(&(b.stop_time(), &b.name)));
    let bound = desired.max(retention.min_bound);
    let excess = stopped.len().saturating_sub(bound);
    let age = |t: &TaskView| {
        Duration::try_from(now.duration_since(t.stop_time())).unwrap_or(Duration::ZERO)
    };
    let expired = |i: usize, t: &TaskView| i < excess || age(t) >= retention.keep_for;
    Cleanup {
        delete: stopped
            .iter()
            .enumerate()
            .filter(|(i, t)| expired(*i, t))
            .map(|(_, t)| t.name.clone())
            .collect(),
        next: stopped
            .iter()
            .enumerate()
            .filter(|(i, t)| !expired(*i, t))
            .map(|(_, t)| retention.keep_for.saturating_sub(age(t)))
            .min(),
    }
}

#[cfg(test)]
mod tests;
