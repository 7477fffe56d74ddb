//! Launch backoff: after tasks fail to start, wait longer before each new launch.

use std::time::Duration;

use k8s_openapi::jiff::Timestamp;

use super::health::{add, until};
use super::tasks::{Failure, TaskView};

/// The wait after the first failure to start; it doubles with each consecutive one.
pub const BACKOFF_BASE: Duration = Duration::from_secs(10);
/// The longest wait: ECS's service throttle logic waits up to 27 minutes between launches.
pub const BACKOFF_CAP: Duration = Duration::from_secs(27 * 60);

/// How long launches for `deployment` must still wait, if at all. Consecutive failures to start are
/// those since the deployment's last task reached RUNNING; they are read from the stopped tasks, so
/// the backoff forgets failures whose tasks are gone.
pub(crate) fn launch_wait(
    deployment: &str,
    tasks: &[TaskView],
    now: Timestamp,
) -> Option<Duration> {
    let mine = || tasks.iter().filter(|t| t.deployment == deployment);
    let last_start = mine().filter_map(|t| t.started_at).max();
    let failures: Vec<Timestamp> = mine()
        .filter(|t| t.failure() == Some(Failure::FailedToStart))
        .map(TaskView::stop_time)
        .filter(|at| last_start.is_none_or(|s| *at > s))
        .collect();
    let latest = *failures.iter().max()?;
    let resume = add(latest, delay(failures.len()));
    (now < resume).then(|| until(now, resume))
}

/// 10 s, 20 s, 40 s … up to 27 min, for the n-th consecutive failure.
pub fn delay(consecutive_failures: usize) -> Duration {
    let doublings = u32::try_from(consecutive_failures.saturating_sub(1))
        .unwrap_or(u32::MAX)
        .min(16);
    BACKOFF_BASE.saturating_mul(1 << doublings).min(BACKOFF_CAP)
}
