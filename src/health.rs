//! Whether the operator's watches work. A watch that keeps failing (its RBAC removed, the API server
//! unreachable, a list that cannot be read) leaves the operator blind while it looks alive: once one
//! has failed without a success for longer than a bound, `/healthz` answers 503 with the reason, so the
//! kubelet restarts the operator. A healthy idle watch reports nothing and never trips it.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A failure streak ends when no failure has come for this long. It exceeds the longest pause
/// between two retries of a failing watch (kube-runtime's backoff caps at 30 s, and its jitter adds up
/// to as much again), so a watch that keeps failing stays in one streak, while one that recovered
/// without a visible success (a re-watch from the last resourceVersion emits nothing) leaves it.
pub const QUIET: Duration = Duration::from_secs(90);

/// Default bound on how long a watch may keep failing.
pub const DEFAULT_LIMIT: Duration = Duration::from_secs(60);

/// The failures of every watch, by name.
#[derive(Debug)]
pub struct Watches {
    limit: Mutex<Duration>,
    streaks: Mutex<BTreeMap<String, Streak>>,
}

#[derive(Clone, Debug)]
struct Streak {
    first: Instant,
    last: Instant,
    error: String,
}

impl Default for Watches {
    fn default() -> Self {
        Self {
            limit: Mutex::new(DEFAULT_LIMIT),
            streaks: Mutex::default(),
        }
    }
}

impl Watches {
    /// Sets how long a watch may keep failing before the operator counts as unhealthy.
    pub fn set_limit(&self, limit: Duration) {
        *self.limit.lock().expect("not poisoned") = limit;
    }

    /// The watch delivered something: it works.
    pub fn succeeded(&self, watch: &str) {
        let mut streaks = self.streaks.lock().expect("not poisoned");
        if !streaks.is_empty() {
            streaks.remove(watch);
        }
    }

    /// The watch failed now.
    pub fn failed(&self, watch: &str, error: &dyn std::fmt::Display) {
        self.failed_at(watch, error.to_string(), Instant::now());
    }

    /// The watch failed at `now`.
    pub fn failed_at(&self, watch: &str, error: String, now: Instant) {
        let mut streaks = self.streaks.lock().expect("not poisoned");
        match streaks.get_mut(watch) {
            Some(s) if now.saturating_duration_since(s.last) < QUIET => {
                s.last = now;
                s.error = error;
            }
            _ => {
                streaks.insert(
                    watch.to_string(),
                    Streak {
                        first: now,
                        last: now,
                        error,
                    },
                );
            }
        }
    }

    /// Ok, or why the operator is unhealthy now: each watch failing, without a success in between,
    /// for at least the limit.
    pub fn check(&self) -> Result<(), String> {
        self.check_at(Instant::now())
    }

    /// [`Self::check`] at `now`.
    pub fn check_at(&self, now: Instant) -> Result<(), String> {
        let limit = *self.limit.lock().expect("not poisoned");
        let streaks = self.streaks.lock().expect("not poisoned");
        let wedged: Vec<String> = streaks
            .iter()
            .filter(|(_, s)| {
                s.last.saturating_duration_since(s.first) >= limit
                    && now.saturating_duration_since(s.last) < QUIET
            })
            .map(|(watch, s)| {
                format!(
                    "watch {watch} failing for {}s: {}",
                    s.last.saturating_duration_since(s.first).as_secs(),
                    s.error
                )
            })
            .collect();
        if wedged.is_empty() {
            Ok(())
        } else {
            Err(wedged.join("\n"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn watches(limit: u64) -> (Watches, Instant) {
        let w = Watches::default();
        w.set_limit(Duration::from_secs(limit));
        (w, Instant::now())
    }

    fn at(t0: Instant, secs: u64) -> Instant {
        t0 + Duration::from_secs(secs)
    }

    #[test]
    fn a_watch_that_never_failed_is_healthy() {
        let (w, t0) = watches(60);
        w.succeeded("tasks");
        assert_eq!(w.check_at(at(t0, 3600)), Ok(()));
    }

    #[test]
    fn failing_without_success_past_the_limit_is_unhealthy() {
        let (w, t0) = watches(60);
        // Retries back off up to 60 s apart (30 s and jitter): still one streak.
        for s in [0, 1, 3, 7, 15, 31, 61] {
            assert_eq!(w.check_at(at(t0, s)), Ok(()), "at {s}s");
            w.failed_at("nodes", format!("403 at {s}"), at(t0, s));
        }
        let why = w.check_at(at(t0, 61)).unwrap_err();
        assert_eq!(why, "watch nodes failing for 61s: 403 at 61");
        // Other watches are named only if they fail too.
        w.failed_at("tasks", "x".into(), at(t0, 61));
        assert!(!w.check_at(at(t0, 62)).unwrap_err().contains("tasks"));
    }

    #[test]
    fn a_success_ends_the_streak() {
        let (w, t0) = watches(60);
        for s in [0, 30, 59] {
            w.failed_at("nodes", "e".into(), at(t0, s));
        }
        w.succeeded("nodes");
        w.failed_at("nodes", "e".into(), at(t0, 70));
        assert_eq!(w.check_at(at(t0, 70)), Ok(()));
    }

    #[test]
    fn an_isolated_failure_never_trips_it() {
        // A watch that failed once and came back quietly (a re-watch emits nothing).
        let (w, t0) = watches(60);
        w.failed_at("tasks", "connection reset".into(), t0);
        for s in [1, 59, 60, 61, 120, 3600] {
            assert_eq!(w.check_at(at(t0, s)), Ok(()), "at {s}s");
        }
    }

    #[test]
    fn failures_a_quiet_period_apart_are_separate_streaks() {
        let (w, t0) = watches(60);
        let gap = QUIET.as_secs();
        w.failed_at("tasks", "e".into(), t0);
        w.failed_at("tasks", "e".into(), at(t0, gap));
        w.failed_at("tasks", "e".into(), at(t0, 2 * gap));
        assert_eq!(w.check_at(at(t0, 2 * gap)), Ok(()));
    }

    #[test]
    fn a_wedged_watch_that_stops_failing_recovers_after_the_quiet_period() {
        let (w, t0) = watches(10);
        for s in 0..=10 {
            w.failed_at("tasks", "e".into(), at(t0, s));
        }
        assert!(w.check_at(at(t0, 11)).is_err());
        assert_eq!(w.check_at(at(t0, 10 + QUIET.as_secs())), Ok(()));
    }
}
