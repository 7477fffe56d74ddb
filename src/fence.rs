//! The write fence: a client layer that refuses every mutating request once this replica's leadership may
//! have run out. Leadership is valid until the last successful lease renewal's *send* time plus the renew
//! deadline, measured on CLOCK_BOOTTIME ([`Moment`]); a standby can only take over a lease duration (longer) after
//! it saw that renewal. So a leader that was frozen (SIGSTOP, a long GC-like stall, a suspended VM) and
//! resumes finds its fence closed and writes nothing, even before its election loop gets to run.

use std::fmt;
use std::future::{Ready, ready};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use futures::future::Either;
use http::{Method, Request};
use tower::{BoxError, Layer, Service};

use crate::leader::clock::Moment;

/// Until when this replica may write. Shared between the election loop (which opens it after each
/// successful renewal and closes it when leadership ends) and the controllers' client (which checks it).
#[derive(Clone, Debug, Default)]
pub struct Fence(Arc<Mutex<Option<Moment>>>);

impl Fence {
    /// A closed fence: no writes until [`Fence::open_until`].
    pub fn closed() -> Self {
        Self::default()
    }

    /// Writes are allowed before `until`.
    pub fn open_until(&self, until: Moment) {
        *self.lock() = Some(until);
    }

    /// No more writes, whatever the clock says.
    pub fn close(&self) {
        *self.lock() = None;
    }

    /// Whether a write sent at `now` is allowed.
    pub fn allows(&self, now: Moment) -> bool {
        self.lock().is_some_and(|until| now < until)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Moment>> {
        // The value is a plain Option: a panic elsewhere cannot leave it half-written.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Reads pass the fence; everything else (create, update, patch, delete, subresources such as eviction or
/// status) is a write.
pub fn is_write(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// The error a refused request fails with (a `kube::Error::Service` to the caller).
#[derive(Debug)]
pub struct Refused {
    pub method: Method,
    pub path: String,
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "refused {} {}: this replica is not (or no longer surely) the leader",
            self.method, self.path
        )
    }
}

impl std::error::Error for Refused {}

/// A [`Layer`] putting [`Fenced`] in front of a service.
#[derive(Clone, Debug)]
pub struct FenceLayer(pub Fence);

impl<S> Layer<S> for FenceLayer {
    type Service = Fenced<S>;

    fn layer(&self, inner: S) -> Fenced<S> {
        Fenced {
            inner,
            fence: self.0.clone(),
        }
    }
}

/// A service that fails writes at once, without sending them, while the fence is closed.
#[derive(Clone, Debug)]
pub struct Fenced<S> {
    inner: S,
    fence: Fence,
}

impl<S, B> Service<Request<B>> for Fenced<S>
where
    S: Service<Request<B>, Error = BoxError>,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = Either<Ready<Result<S::Response, BoxError>>, S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        // Checked here, as the request goes out: not when the caller decided to write.
        if is_write(request.method()) && !self.fence.allows(Moment::now()) {
            let refused = Refused {
                method: request.method().clone(),
                path: request.uri().path().to_string(),
            };
            return Either::Left(ready(Err(refused.into())));
        }
        Either::Right(self.inner.call(request))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    /// Counts the requests that get through.
    #[derive(Clone, Default)]
    struct Counter(Arc<AtomicUsize>);

    impl Service<Request<()>> for Counter {
        type Response = ();
        type Error = BoxError;
        type Future = std::future::Ready<Result<(), BoxError>>;

        fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
            Poll::Ready(Ok(()))
        }

        fn call(&mut self, _: Request<()>) -> Self::Future {
            self.0.fetch_add(1, Ordering::SeqCst);
            std::future::ready(Ok(()))
        }
    }

    fn request(method: Method) -> Request<()> {
        Request::builder()
            .method(method)
            .uri("/api/v1/namespaces/ns/pods/p")
            .body(())
            .unwrap()
    }

    async fn send(service: &mut Fenced<Counter>, method: Method) -> Result<(), BoxError> {
        service.call(request(method)).await
    }

    #[tokio::test]
    async fn a_closed_fence_refuses_writes_and_lets_reads_through() {
        let counter = Counter::default();
        let mut service = FenceLayer(Fence::closed()).layer(counter.clone());
        for method in [Method::POST, Method::PUT, Method::PATCH, Method::DELETE] {
            let err = send(&mut service, method.clone()).await.unwrap_err();
            let refused = err.downcast_ref::<Refused>().expect("a Refused error");
            assert_eq!(refused.method, method);
            assert_eq!(refused.path, "/api/v1/namespaces/ns/pods/p");
        }
        assert_eq!(counter.0.load(Ordering::SeqCst), 0, "a write went out");
        for method in [Method::GET, Method::HEAD] {
            send(&mut service, method).await.unwrap();
        }
        assert_eq!(counter.0.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn an_open_fence_lets_writes_through_until_its_instant() {
        let counter = Counter::default();
        let fence = Fence::closed();
        let mut service = FenceLayer(fence.clone()).layer(counter.clone());
        fence.open_until(Moment::now() + Duration::from_secs(60));
        send(&mut service, Method::PATCH).await.unwrap();
        assert_eq!(counter.0.load(Ordering::SeqCst), 1);
        // Already past: as a replica resumed after a freeze finds it.
        fence.open_until(Moment::now() - Duration::from_millis(1));
        assert!(send(&mut service, Method::PATCH).await.is_err());
        fence.open_until(Moment::now() + Duration::from_secs(60));
        fence.close();
        assert!(send(&mut service, Method::DELETE).await.is_err());
        assert_eq!(counter.0.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn the_deadline_itself_is_outside() {
        let fence = Fence::closed();
        let until = Moment::now() + Duration::from_secs(10);
        fence.open_until(until);
        assert!(fence.allows(until - Duration::from_nanos(1)));
        assert!(!fence.allows(until));
    }
}
