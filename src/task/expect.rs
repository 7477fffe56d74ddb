//! What a pass does about the task's pod, from what the pod cache shows and what this controller
//! remembers having created: pure.
//!
//! The pod's name is the task's, so a second create can never make a second pod; the expectation
//! spares the request and the 409 while the first create's watch event is on its way.

use std::time::Duration;

use super::settle::SETTLE;

/// The step to take.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PodStep {
    /// The cache holds the pod: decide on it.
    Observe,
    /// The pod was created a moment ago and its event is on its way: look again after this long.
    Wait(Duration),
    /// The pod was created and has not shown up for a while (its watch lags): read it from the API
    /// server and decide on that.
    ReadCreated,
    /// No pod was ever created: resolve the task definition and create it.
    Start,
    /// Status records a pod the cache does not hold: gone, or never seen by this cache (an earlier
    /// leader created it). Read it from the API server.
    Confirm,
}

/// `cached`: the pod cache holds the task's pod; `created`: how long ago this controller created it,
/// if status does not record it yet; `recorded`: status records a pod.
pub fn pod_step(cached: bool, created: Option<Duration>, recorded: bool) -> PodStep {
    match (cached, created, recorded) {
        (true, _, _) => PodStep::Observe,
        (false, _, true) => PodStep::Confirm,
        (false, Some(ago), false) if ago < SETTLE => {
            PodStep::Wait((SETTLE - ago).max(Duration::from_millis(50)))
        }
        (false, Some(_), false) => PodStep::ReadCreated,
        (false, None, false) => PodStep::Start,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const JUST: Option<Duration> = Some(Duration::from_millis(100));
    const LONG: Option<Duration> = Some(Duration::from_secs(5));

    #[test]
    fn a_pod_created_and_not_seen_yet_is_not_created_again() {
        assert_eq!(
            pod_step(false, JUST, false),
            PodStep::Wait(SETTLE - Duration::from_millis(100))
        );
        assert_eq!(pod_step(false, LONG, false), PodStep::ReadCreated);
        // Only a task that never had a pod starts one.
        assert_eq!(pod_step(false, None, false), PodStep::Start);
    }

    #[test]
    fn a_pod_in_the_cache_is_decided_on() {
        for (created, recorded) in [(None, false), (JUST, false), (None, true), (LONG, true)] {
            assert_eq!(pod_step(true, created, recorded), PodStep::Observe);
        }
    }

    #[test]
    fn a_recorded_pod_missing_from_the_cache_is_asked_for_not_taken_for_gone() {
        assert_eq!(pod_step(false, None, true), PodStep::Confirm);
        assert_eq!(pod_step(false, JUST, true), PodStep::Confirm);
    }
}
