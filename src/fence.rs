//! The write fence: a client layer that refuses every mutating request once this replica's leadership
//! may have run out. Leadership is valid until the last successful lease renewal's *send* time plus the
//! renew deadline, measured on CLOCK_BOOTTIME ([`Moment`]); a standby can only take over a lease duration
//! (longer) after it saw that renewal. So a leader that was frozen (SIGSTOP, a stalled or suspended VM)
//! and resumes finds its fence closed and writes nothing, even before its election loop gets to run.
//! Checked twice: when the request enters the layer ([`Fenced`]) and when the connection starts writing
//! its body ([`FencedBody`]).

use std::fmt;
use std::future::{Ready, ready};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use futures::future::Either;
use http::{Method, Request};
use http_body::{Frame, SizeHint};
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

/// A service that fails writes at once, without sending them, while the fence is closed, and checks again
/// when the connection starts writing the request's body ([`FencedBody`]).
#[derive(Clone, Debug)]
pub struct Fenced<S> {
    inner: S,
    fence: Fence,
}

impl<S, B> Service<Request<B>> for Fenced<S>
where
    S: Service<Request<FencedBody<B>>, Error = BoxError>,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = Either<Ready<Result<S::Response, BoxError>>, S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let write = is_write(request.method());
        let refused = || Refused {
            method: request.method().clone(),
            path: request.uri().path().to_string(),
        };
        // Checked here, as the request goes out: not when the caller decided to write.
        if write && !self.fence.allows(Moment::now()) {
            return Either::Left(ready(Err(refused().into())));
        }
        let check = write.then(|| (self.fence.clone(), refused()));
        let (parts, body) = request.into_parts();
        let body = FencedBody { inner: body, check };
        Either::Right(self.inner.call(Request::from_parts(parts, body)))
    }
}

/// A request body that checks the fence once more when the connection first asks for its bytes: right
/// before they are written to the socket. Between [`Fenced::call`] and that moment a request may wait for
/// a pooled connection, a TLS handshake or the connection task's turn, and a process frozen there would
/// otherwise send it on resuming. Failing the body aborts the request; the API server discards a request
/// whose body never arrives. (Every write kube sends has a body.)
#[derive(Debug)]
pub struct FencedBody<B> {
    inner: B,
    check: Option<(Fence, Refused)>,
}

impl<B> FencedBody<B> {
    /// A body no fence checks: a client without leader election sends its requests through the same
    /// connection type.
    pub fn unfenced(inner: B) -> Self {
        Self { inner, check: None }
    }
}

impl<B> http_body::Body for FencedBody<B>
where
    B: http_body::Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        if let Some((fence, refused)) = this.check.take()
            && !fence.allows(Moment::now())
        {
            return Poll::Ready(Some(Err(refused.into())));
        }
        Pin::new(&mut this.inner).poll_frame(cx).map_err(Into::into)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
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

    impl<B> Service<Request<B>> for Counter {
        type Response = ();
        type Error = BoxError;
        type Future = std::future::Ready<Result<(), BoxError>>;

        fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
            Poll::Ready(Ok(()))
        }

        fn call(&mut self, _: Request<B>) -> Self::Future {
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

    #[tokio::test]
    async fn the_body_checks_the_fence_again_when_it_is_sent() {
        use http_body_util::BodyExt;
        let fence = Fence::closed();
        fence.open_until(Moment::now() + Duration::from_secs(60));
        let body = |fence: &Fence| FencedBody {
            inner: http_body_util::Full::new(Bytes::from_static(b"{}")),
            check: Some((
                fence.clone(),
                Refused {
                    method: Method::POST,
                    path: "/p".into(),
                },
            )),
        };
        let mut open = body(&fence);
        let frame = open.frame().await.unwrap().unwrap();
        assert_eq!(frame.into_data().unwrap(), Bytes::from_static(b"{}"));
        // Passed the first check, then the validity ran out before the connection took the body.
        let mut late = body(&fence);
        fence.close();
        let err = late.frame().await.unwrap().unwrap_err();
        assert!(err.downcast_ref::<Refused>().is_some(), "{err:?}");
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
