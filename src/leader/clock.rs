//! The clock of every lease decision and of the write fence: CLOCK_BOOTTIME, a monotonic clock that also
//! counts time the machine spent suspended. (`std::time::Instant` is CLOCK_MONOTONIC on Linux, which
//! stops during a suspend: a leader resumed after one would believe little time had passed and keep
//! writing.) Like CLOCK_MONOTONIC it keeps running while the process is stopped (SIGSTOP) and never jumps
//! with wall-clock changes.

use std::ops::{Add, Sub};
use std::time::Duration;

/// A point in time on CLOCK_BOOTTIME.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Moment(Duration);

impl Moment {
    pub fn now() -> Self {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: clock_gettime writes the timespec we pass; CLOCK_BOOTTIME exists since Linux 2.6.39.
        let rc = unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut ts) };
        assert_eq!(rc, 0, "clock_gettime(CLOCK_BOOTTIME) failed");
        Self(Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32))
    }

    /// Time from `earlier` to `self`, zero if `earlier` is later.
    pub fn saturating_duration_since(self, earlier: Moment) -> Duration {
        self.0.saturating_sub(earlier.0)
    }

    /// The tokio instant about as far from now as `self` (for sleeping until it; tokio's clock is
    /// CLOCK_MONOTONIC, so a sleep across a suspend ends late: decisions re-read [`Moment::now`]).
    pub fn to_tokio(self) -> tokio::time::Instant {
        tokio::time::Instant::now() + self.saturating_duration_since(Moment::now())
    }
}

impl Add<Duration> for Moment {
    type Output = Moment;

    fn add(self, d: Duration) -> Moment {
        Moment(self.0 + d)
    }
}

impl Sub<Duration> for Moment {
    type Output = Moment;

    fn sub(self, d: Duration) -> Moment {
        Moment(self.0.saturating_sub(d))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn it_moves_forward_with_the_monotonic_clock() {
        let (m0, i0) = (Moment::now(), std::time::Instant::now());
        std::thread::sleep(Duration::from_millis(20));
        let (m1, i1) = (Moment::now(), std::time::Instant::now());
        let boot = m1.saturating_duration_since(m0);
        assert!(boot >= Duration::from_millis(20), "{boot:?}");
        // No suspend in between: both clocks agree to within scheduling noise.
        let mono = i1 - i0;
        assert!(
            boot.abs_diff(mono) < Duration::from_millis(5),
            "{boot:?} vs {mono:?}"
        );
        assert_eq!(m0.saturating_duration_since(m1), Duration::ZERO);
    }
}
