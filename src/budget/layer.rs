//! The client request budget as a tower layer: each request takes a token from the bucket when it is
//! called, and waits for it if the bucket is empty, before the layers below it see the request.
//!
//! A watch is one request: it takes one token when it starts, like any other, and holds nothing while
//! its response streams (client-go throttles a watch once, at its start). The time every request
//! waited is observed in a histogram, so `/metrics` shows when the budget slows the operator.

use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use futures::future::BoxFuture;
use prometheus_client::metrics::histogram::Histogram;
use tower::{BoxError, Layer, Service, ServiceExt};

use super::Budget;
use super::bucket::TokenBucket;

/// A [`Layer`] putting [`Budgeted`] in front of a service; its clones share one bucket.
#[derive(Clone, Debug)]
pub struct BudgetLayer {
    bucket: Arc<Mutex<TokenBucket>>,
    waited: Histogram,
}

impl BudgetLayer {
    /// A full bucket for `budget`; every request's wait is observed in `waited` (in seconds).
    pub fn new(budget: Budget, waited: Histogram) -> Self {
        let bucket = TokenBucket::new(budget.qps, budget.burst, tokio::time::Instant::now());
        Self {
            bucket: Arc::new(Mutex::new(bucket)),
            waited,
        }
    }
}

impl<S> Layer<S> for BudgetLayer {
    type Service = Budgeted<S>;

    fn layer(&self, inner: S) -> Budgeted<S> {
        Budgeted {
            inner,
            bucket: self.bucket.clone(),
            waited: self.waited.clone(),
        }
    }
}

/// A service whose requests wait for a token of the shared bucket before they are passed on.
#[derive(Clone, Debug)]
pub struct Budgeted<S> {
    inner: S,
    bucket: Arc<Mutex<TokenBucket>>,
    waited: Histogram,
}

impl<S, R> Service<R> for Budgeted<S>
where
    S: Service<R> + Clone + Send + 'static,
    S::Error: Into<BoxError>,
    S::Future: Send,
    R: Send + 'static,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = BoxFuture<'static, Result<S::Response, BoxError>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        // Readiness of the inner service is awaited after the wait, by the request's own future.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: R) -> Self::Future {
        let wait = {
            // A plain struct of numbers: a panic elsewhere cannot leave it half-written.
            let mut bucket = self.bucket.lock().unwrap_or_else(|e| e.into_inner());
            bucket.reserve(tokio::time::Instant::now())
        };
        let waited = self.waited.clone();
        // The clone that was made ready (none was: see poll_ready) is not needed; take a fresh one.
        let inner = self.inner.clone();
        Box::pin(async move {
            if !wait.is_zero() {
                tokio::time::sleep(wait).await;
            }
            waited.observe(wait.as_secs_f64());
            inner.oneshot(request).await.map_err(Into::<BoxError>::into)
        })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    /// Counts the requests that reach it; answers `watch` requests never (a watch that streams on).
    #[derive(Clone, Default)]
    struct Server(Arc<AtomicUsize>);

    impl Service<&'static str> for Server {
        type Response = ();
        type Error = BoxError;
        type Future = BoxFuture<'static, Result<(), BoxError>>;

        fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
            Poll::Ready(Ok(()))
        }

        fn call(&mut self, request: &'static str) -> Self::Future {
            self.0.fetch_add(1, Ordering::SeqCst);
            if request == "watch" {
                Box::pin(std::future::pending())
            } else {
                Box::pin(std::future::ready(Ok(())))
            }
        }
    }

    fn budgeted(qps: f64, burst: u32, server: &Server) -> (Budgeted<Server>, Histogram) {
        let waited = Histogram::new([0.1, 1.0]);
        let budget = Budget::new(qps, burst).unwrap().unwrap();
        let layer = BudgetLayer::new(budget, waited.clone());
        (layer.layer(server.clone()), waited)
    }

    /// The `_sum` and `_count` of a histogram, as /metrics shows them.
    pub fn sum_and_count(histogram: &Histogram) -> (f64, u64) {
        let mut registry = prometheus_client::registry::Registry::default();
        registry.register("waited", "", histogram.clone());
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        let value = |suffix: &str| {
            text.lines()
                .find_map(|line| line.strip_prefix(&format!("waited_{suffix} ")))
                .unwrap_or_else(|| panic!("no waited_{suffix} in {text}"))
                .to_string()
        };
        (
            value("sum").parse().unwrap(),
            value("count").parse().unwrap(),
        )
    }

    async fn settle() {
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
    }

    #[tokio::test(start_paused = true)]
    async fn requests_beyond_the_burst_wait_for_their_token() {
        let server = Server::default();
        let (service, waited) = budgeted(2.0, 2, &server);
        let calls: Vec<_> = (0..4)
            .map(|_| tokio::spawn(service.clone().oneshot("get")))
            .collect();
        settle().await;
        assert_eq!(
            server.0.load(Ordering::SeqCst),
            2,
            "the burst goes out at once"
        );
        tokio::time::advance(Duration::from_millis(499)).await;
        settle().await;
        assert_eq!(server.0.load(Ordering::SeqCst), 2, "no token before 500 ms");
        tokio::time::advance(Duration::from_millis(1)).await;
        settle().await;
        assert_eq!(server.0.load(Ordering::SeqCst), 3);
        tokio::time::advance(Duration::from_millis(500)).await;
        settle().await;
        assert_eq!(server.0.load(Ordering::SeqCst), 4);
        for call in calls {
            call.await.unwrap().unwrap();
        }
        let (sum, count) = sum_and_count(&waited);
        assert_eq!(count, 4, "every request is observed");
        assert!((sum - 1.5).abs() < 1e-6, "waited 0 + 0 + 0.5 + 1 s: {sum}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_watch_takes_one_token_at_its_start_and_holds_none() {
        let server = Server::default();
        let (service, _) = budgeted(1.0, 1, &server);
        let watch = tokio::spawn(service.clone().oneshot("watch"));
        settle().await;
        assert_eq!(server.0.load(Ordering::SeqCst), 1);
        // The watch is still streaming; the next request waits one token's time, no longer.
        let get = tokio::spawn(service.clone().oneshot("get"));
        tokio::time::advance(Duration::from_millis(999)).await;
        settle().await;
        assert_eq!(server.0.load(Ordering::SeqCst), 1);
        tokio::time::advance(Duration::from_millis(1)).await;
        get.await.unwrap().unwrap();
        assert!(!watch.is_finished());
        watch.abort();
    }
}
