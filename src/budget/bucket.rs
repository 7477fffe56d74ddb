//! The token bucket of the client request budget, as client-go's (`flowcontrol.NewTokenBucketRateLimiter`):
//! up to `burst` requests at once, then `qps` a second. Pure: every call takes the time it is asked at.
//!
//! A request that finds no token reserves the next one: the bucket moves its reference time to the
//! moment that token exists and the caller waits until then. So waiters are served in the order they
//! asked, the count of tokens never goes below zero, and no window of one second lets through more
//! than `burst + qps` requests.

use std::time::Duration;

use tokio::time::Instant;

/// A token bucket: `tokens` (0 ..= burst) as of `at`, which may lie in the future when requests wait.
#[derive(Clone, Debug)]
pub struct TokenBucket {
    qps: f64,
    burst: f64,
    tokens: f64,
    at: Instant,
}

impl TokenBucket {
    /// A full bucket at `now`. `qps` > 0 and `burst` >= 1 (see [`super::Budget::new`]).
    pub fn new(qps: f64, burst: u32, now: Instant) -> Self {
        debug_assert!(qps > 0.0 && burst >= 1);
        let burst = f64::from(burst);
        Self {
            qps,
            burst,
            tokens: burst,
            at: now,
        }
    }

    /// Takes one token for a request made at `now`: how long the request must wait before it goes out
    /// (zero while tokens are left).
    pub fn reserve(&mut self, now: Instant) -> Duration {
        // Waiters ahead of this request own the tokens up to `self.at`: refill from there on.
        let from = now.max(self.at);
        let refilled = self.tokens + from.duration_since(self.at).as_secs_f64() * self.qps;
        let tokens = refilled.min(self.burst);
        if tokens >= 1.0 {
            self.tokens = tokens - 1.0;
            self.at = from;
        } else {
            // The missing fraction of a token takes (1 - tokens) / qps to grow; rounded up to the
            // nanosecond so that a grant is never early.
            let nanos = ((1.0 - tokens) / self.qps * 1e9).ceil() as u64;
            let grant = from + Duration::from_nanos(nanos);
            self.tokens = 0.0;
            self.at = grant;
        }
        self.at.duration_since(now)
    }

    /// Tokens available at `now` (for tests and logs): never negative, never above burst.
    pub fn tokens(&self, now: Instant) -> f64 {
        if now <= self.at {
            return self.tokens;
        }
        (self.tokens + now.duration_since(self.at).as_secs_f64() * self.qps).min(self.burst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn a_burst_goes_out_at_once_then_qps_a_second() {
        let t0 = Instant::now();
        let mut bucket = TokenBucket::new(20.0, 30, t0);
        for i in 0..30 {
            assert_eq!(
                bucket.reserve(t0),
                Duration::ZERO,
                "request {i} of the burst"
            );
        }
        // Then one every 50 ms, queued in the order asked.
        for i in 1..=20u64 {
            let wait = bucket.reserve(t0);
            assert!(
                wait.abs_diff(ms(50 * i)) < Duration::from_micros(1),
                "{i}: {wait:?}"
            );
        }
    }

    #[test]
    fn tokens_refill_at_qps_up_to_burst() {
        let t0 = Instant::now();
        let mut bucket = TokenBucket::new(5.0, 10, t0);
        for _ in 0..10 {
            bucket.reserve(t0);
        }
        assert_eq!(bucket.tokens(t0), 0.0);
        assert!((bucket.tokens(t0 + ms(1000)) - 5.0).abs() < 1e-9);
        assert_eq!(bucket.tokens(t0 + ms(60_000)), 10.0, "never above burst");
        // A request after a quiet minute finds a full bucket, not a minute of saved-up tokens.
        let later = t0 + ms(60_000);
        for _ in 0..10 {
            assert_eq!(bucket.reserve(later), Duration::ZERO);
        }
        assert!(bucket.reserve(later) > Duration::ZERO);
    }

    #[test]
    fn waiting_requests_never_drive_the_tokens_negative() {
        let t0 = Instant::now();
        let mut bucket = TokenBucket::new(1.0, 1, t0);
        assert_eq!(bucket.reserve(t0), Duration::ZERO);
        // Three more at once: granted at 1 s, 2 s and 3 s.
        let waits: Vec<_> = (0..3).map(|_| bucket.reserve(t0)).collect();
        assert_eq!(waits, [ms(1000), ms(2000), ms(3000)]);
        for t in [0, 500, 1000, 2500, 3000, 4000] {
            let tokens = bucket.tokens(t0 + ms(t));
            assert!((0.0..=1.0).contains(&tokens), "at {t} ms: {tokens}");
        }
        // The next request, after the queue drained, waits only for its own token.
        assert_eq!(bucket.reserve(t0 + ms(4000)), Duration::ZERO);
    }

    #[test]
    fn a_fractional_qps_spaces_requests_by_its_inverse() {
        let t0 = Instant::now();
        let mut bucket = TokenBucket::new(0.5, 1, t0);
        assert_eq!(bucket.reserve(t0), Duration::ZERO);
        assert_eq!(bucket.reserve(t0 + ms(500)), ms(1500));
    }

    proptest! {
        /// Whatever the times requests are made at, the times they go out never put more than
        /// burst + qps into any one-second window, and each goes out no earlier than it was made.
        #[test]
        fn no_second_lets_through_more_than_burst_plus_qps(
            qps in 1u32..50,
            burst in 1u32..60,
            gaps in proptest::collection::vec(0u64..400, 1..400),
        ) {
            let t0 = Instant::now();
            let mut bucket = TokenBucket::new(f64::from(qps), burst, t0);
            let mut now = t0;
            let mut sent = Vec::new();
            for gap in gaps {
                now += ms(gap);
                let wait = bucket.reserve(now);
                sent.push(now + wait);
                let tokens = bucket.tokens(now);
                prop_assert!((0.0..=f64::from(burst)).contains(&tokens), "{tokens}");
            }
            // Granted in the order asked.
            prop_assert!(sent.windows(2).all(|w| w[0] <= w[1]));
            let limit = (burst + qps) as usize;
            for (i, start) in sent.iter().enumerate() {
                let within = sent[i..].iter().take_while(|t| **t < *start + ms(1000)).count();
                prop_assert!(within <= limit, "{within} requests in the second from {i}, limit {limit}");
            }
        }
    }
}
