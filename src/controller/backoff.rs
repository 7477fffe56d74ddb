//! How long a failed reconcile waits before the next try: per object, exponential with jitter, reset by
//! a successful reconcile. An error's own [`Hint`] (a 429's Retry-After, a conflict's quick retry) is
//! kept.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The retry schedule: `first`, doubling up to `cap`, each delay moved by up to ±`jitter` of itself.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Schedule {
    pub first: Duration,
    pub cap: Duration,
    /// Fraction of the delay by which it is spread (0.1 = ±10 %), so objects that failed together do
    /// not retry together.
    pub jitter: f64,
}

impl Default for Schedule {
    fn default() -> Self {
        Self {
            first: Duration::from_secs(1),
            cap: Duration::from_secs(300),
            jitter: 0.1,
        }
    }
}

/// What an error says about its own retry.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Hint {
    /// Start doubling from here instead of the schedule's first delay (a conflict resolves at once).
    pub first: Option<Duration>,
    /// Never retry sooner (a 429's Retry-After), even above the cap: the server asked for it.
    pub at_least: Option<Duration>,
    /// Never wait longer: the failure is the API server's, not the object's (it is unreachable or
    /// restarting), and the next pass should come soon after it is back.
    pub at_most: Option<Duration>,
}

impl Schedule {
    /// The delay after the `failures`-th consecutive failure (1 = the first), for a `unit` drawn
    /// uniformly from [0, 1): `first × 2^(failures-1)`, capped, jittered (never above `cap`), and
    /// never below the hint's `at_least`.
    pub fn delay(&self, failures: u32, unit: f64, hint: Hint) -> Duration {
        let doublings = failures.saturating_sub(1).min(31);
        let base = hint
            .first
            .unwrap_or(self.first)
            .saturating_mul(1u32 << doublings)
            .min(self.cap);
        let spread = 1.0 + self.jitter * (2.0 * unit.clamp(0.0, 1.0) - 1.0);
        let cap = hint.at_most.map_or(self.cap, |m| m.min(self.cap));
        let jittered = base.min(cap).mul_f64(spread).min(cap);
        hint.at_least.map_or(jittered, |f| jittered.max(f))
    }
}

/// Consecutive failures per object, shared by a controller's reconcile (which resets) and its error
/// policy (which counts). A deleted object is never reconciled again, so its record would stay:
/// records without a failure for twice the cap are dropped (a failing object fails again within
/// the cap).
#[derive(Debug, Default)]
pub struct Backoffs {
    schedule: Schedule,
    failures: Mutex<HashMap<String, Record>>,
}

#[derive(Clone, Copy, Debug)]
struct Record {
    failures: u32,
    last: Instant,
}

impl Backoffs {
    pub fn new(schedule: Schedule) -> Self {
        Self {
            schedule,
            failures: Mutex::default(),
        }
    }

    /// Counts one more failure of `key` and returns how long to wait before retrying it.
    pub fn failed(&self, key: &str, hint: Hint) -> Duration {
        self.failed_at(key, hint, Instant::now())
    }

    fn failed_at(&self, key: &str, hint: Hint, now: Instant) -> Duration {
        let failures = {
            let mut map = self.failures.lock().expect("not poisoned");
            let horizon = self.schedule.cap.saturating_mul(2);
            map.retain(|_, r| now.saturating_duration_since(r.last) < horizon);
            let r = map.entry(key.to_string()).or_insert(Record {
                failures: 0,
                last: now,
            });
            r.failures = r.failures.saturating_add(1);
            r.last = now;
            r.failures
        };
        self.schedule
            .delay(failures, unit_random(key, failures), hint)
    }

    /// Forgets the failures of `key`: it reconciled.
    pub fn succeeded(&self, key: &str) {
        self.failures.lock().expect("not poisoned").remove(key);
    }

    /// Consecutive failures recorded for `key`.
    pub fn failures(&self, key: &str) -> u32 {
        self.failures
            .lock()
            .expect("not poisoned")
            .get(key)
            .map_or(0, |r| r.failures)
    }
}

/// A number in [0, 1) that differs between objects, attempts and runs (jitter needs no better).
pub(crate) fn unit_random(key: &str, attempt: u32) -> f64 {
    use std::hash::{BuildHasher, Hash, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    key.hash(&mut h);
    attempt.hash(&mut h);
    (h.finish() >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    const NO_JITTER: Schedule = Schedule {
        first: Duration::from_secs(1),
        cap: Duration::from_secs(300),
        jitter: 0.0,
    };

    #[test]
    fn delays_double_from_the_first_up_to_the_cap() {
        let delays: Vec<u64> = (1..=12)
            .map(|n| NO_JITTER.delay(n, 0.5, NONE).as_secs())
            .collect();
        assert_eq!(delays, [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300, 300]);
        // Far past the cap, nothing overflows.
        assert_eq!(
            NO_JITTER.delay(u32::MAX, 0.5, NONE),
            Duration::from_secs(300)
        );
        // Zero failures is treated as the first.
        assert_eq!(NO_JITTER.delay(0, 0.5, NONE), Duration::from_secs(1));
    }

    #[test]
    fn jitter_spreads_within_its_fraction_and_never_above_the_cap() {
        let s = Schedule::default();
        assert_eq!(s.delay(4, 0.0, NONE), Duration::from_millis(7200));
        assert_eq!(s.delay(4, 0.5, NONE), Duration::from_secs(8));
        assert!(s.delay(4, 0.999_999, NONE) < Duration::from_millis(8800));
        assert!(s.delay(4, 0.999_999, NONE) > Duration::from_millis(8799));
        assert_eq!(s.delay(20, 0.999_999, NONE), s.cap);
        assert!(s.delay(20, 0.0, NONE) >= Duration::from_secs(270));
    }

    const NONE: Hint = Hint {
        first: None,
        at_least: None,
        at_most: None,
    };

    #[test]
    fn retry_after_is_a_floor() {
        let hint = Hint {
            at_least: Some(Duration::from_secs(30)),
            ..NONE
        };
        assert_eq!(NO_JITTER.delay(1, 0.5, hint), Duration::from_secs(30));
        assert_eq!(NO_JITTER.delay(7, 0.5, hint), Duration::from_secs(64));
        // Honoured even above the cap: the server asked for it.
        let long = Hint {
            at_least: Some(Duration::from_secs(600)),
            ..NONE
        };
        assert_eq!(NO_JITTER.delay(12, 0.5, long), Duration::from_secs(600));
    }

    #[test]
    fn a_quick_first_retry_still_doubles() {
        let quick = Hint {
            first: Some(Duration::from_millis(200)),
            ..NONE
        };
        let delays: Vec<u128> = (1..=4)
            .map(|n| NO_JITTER.delay(n, 0.5, quick).as_millis())
            .collect();
        assert_eq!(delays, [200, 400, 800, 1600]);
        assert_eq!(NO_JITTER.delay(30, 0.5, quick), NO_JITTER.cap);
    }

    #[test]
    fn an_unavailable_api_server_is_retried_within_seconds_however_often_it_failed() {
        let down = Hint {
            at_most: Some(Duration::from_secs(5)),
            ..NONE
        };
        for n in 1..=40 {
            assert!(
                NO_JITTER.delay(n, 0.5, down) <= Duration::from_secs(5),
                "{n}"
            );
        }
        let s = Schedule::default();
        assert!(s.delay(30, 0.999_999, down) <= Duration::from_secs(5));
        assert_eq!(NO_JITTER.delay(1, 0.5, down), Duration::from_secs(1));
    }

    #[test]
    fn failures_count_per_object_and_reset_on_success() {
        let b = Backoffs::new(NO_JITTER);
        assert_eq!(b.failed("ns/a", NONE), Duration::from_secs(1));
        assert_eq!(b.failed("ns/a", NONE), Duration::from_secs(2));
        assert_eq!(b.failed("ns/a", NONE), Duration::from_secs(4));
        assert_eq!(b.failed("ns/b", NONE), Duration::from_secs(1));
        assert_eq!(b.failures("ns/a"), 3);
        b.succeeded("ns/a");
        assert_eq!(b.failures("ns/a"), 0);
        assert_eq!(b.failed("ns/a", NONE), Duration::from_secs(1));
        assert_eq!(b.failures("ns/b"), 1);
    }

    #[test]
    fn records_of_objects_that_stopped_failing_are_dropped() {
        let b = Backoffs::new(NO_JITTER);
        let t0 = Instant::now();
        b.failed_at("ns/deleted", NONE, t0);
        b.failed_at("ns/failing", NONE, t0);
        // Still failing: it fails again within the cap and keeps its count.
        b.failed_at("ns/failing", NONE, t0 + Duration::from_secs(300));
        b.failed_at("ns/other", NONE, t0 + Duration::from_secs(600));
        assert_eq!(b.failures("ns/deleted"), 0);
        assert_eq!(b.failures("ns/failing"), 2);
        assert_eq!(b.failures.lock().unwrap().len(), 2);
    }

    #[test]
    fn random_units_stay_in_range() {
        for n in 0..1000 {
            let u = unit_random("ns/x", n);
            assert!((0.0..1.0).contains(&u), "{u}");
        }
    }
}
