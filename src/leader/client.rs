//! The API clients of a replica under leader election: both name the replica in their User-Agent (so the
//! API server's audit log tells replicas apart), and the controllers' client is fenced.

use http::header::USER_AGENT;
use http::{HeaderValue, Request, Response};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use kube::client::retry::RetryPolicy;
use kube::client::{Body, ClientBuilder, ConfigExt};
use tower::retry::RetryLayer;
use tower::util::{Either, MapRequestLayer};
use tower::{BoxError, Service, ServiceBuilder};

use crate::budget::BudgetLayer;
use crate::fence::{Fence, FenceLayer, FencedBody};

/// An HTTP/2 connection quiet this long is pinged (client-go's ReadIdleTimeout).
const HTTP2_PING_AFTER: std::time::Duration = std::time::Duration::from_secs(30);
/// A ping unanswered this long closes the connection (client-go's PingTimeout).
const HTTP2_PING_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(15);

/// `ecs-operator/<version> (<identity>)`.
pub fn user_agent(identity: &str) -> String {
    format!("ecs-operator/{} ({identity})", env!("CARGO_PKG_VERSION"))
}

/// Adds the User-Agent header naming `identity` to every request made with `config`.
pub fn with_user_agent(mut config: kube::Config, identity: &str) -> kube::Config {
    // An identity that is not a valid header value (it comes from POD_NAME or the host name) is left out.
    if let Ok(value) = HeaderValue::from_str(&user_agent(identity)) {
        config.headers.retain(|(name, _)| name != USER_AGENT);
        config.headers.push((USER_AGENT, value));
    }
    config
}

/// A client whose writes pass `fence`, with no request budget.
pub fn fenced(config: &kube::Config, fence: Fence) -> Result<kube::Client, BoxError> {
    controllers(config, Some(fence), None)
}

/// The controllers' client: kube's default stack (base URI, retries, auth, extra headers, TLS and
/// timeouts) over HTTP/2 where the API server offers it, with the request budget, when one is set,
/// and the write fence, under leader election.
/// The fence is innermost, right above the HTTP connection: kube's retries of 429/503/504 back off for
/// up to minutes, and a retry sent after the deadline must be refused too.
pub fn controllers(
    config: &kube::Config,
    fence: Option<Fence>,
    budget: Option<BudgetLayer>,
) -> Result<kube::Client, BoxError> {
    if config.proxy_url.is_some() {
        return Err(
            "an API proxy (proxy-url) is not supported with leader election or a request budget"
                .into(),
        );
    }
    let mut connector = HttpConnector::new();
    connector.enforce_http(false);
    // As Go's (client-go's) connections: every request and watch shares the one HTTP/2 connection,
    // whose small frames must not wait for the ACK of the previous segment (Nagle's algorithm,
    // against the server's delayed ACKs, held each request up to 40 ms).
    connector.set_nodelay(true);
    let connector = https(config, connector)?;
    let mut connector = hyper_timeout::TimeoutConnector::new(connector);
    connector.set_connect_timeout(config.connect_timeout);
    connector.set_read_timeout(config.read_timeout);
    connector.set_write_timeout(config.write_timeout);
    connector.set_reset_reader_on_write(config.reset_reader_on_write);
    let http: hyper_util::client::legacy::Client<_, FencedBody<Body>> =
        hyper_util::client::legacy::Builder::new(TokioExecutor::new())
            // One connection carries every request: a dead one (an API server frozen, a network
            // gone) is found by its pings, as client-go's (30 s idle, 15 s for the answer), not
            // after the kernel's TCP timeout.
            .timer(TokioTimer::new())
            .http2_keep_alive_interval(HTTP2_PING_AFTER)
            .http2_keep_alive_timeout(HTTP2_PING_TIMEOUT)
            .http2_keep_alive_while_idle(true)
            .build(connector);
    let service = stack(config, fence, budget, http)?;
    Ok(ClientBuilder::new(service, config.default_namespace.clone()).build())
}

/// TLS as kube's own connector, offering HTTP/2 as well as HTTP/1.1 (ALPN). kube's connector speaks
/// HTTP/1.1 only, so every request in flight holds a TLS connection of its own: a thousand tasks
/// starting at once opened about a thousand connections to the API server, each with its TLS
/// session and buffers. Over HTTP/2, as client-go, the requests share one connection; an API server
/// offering only HTTP/1.1 is still spoken to in HTTP/1.1.
fn https(
    config: &kube::Config,
    connector: HttpConnector,
) -> Result<hyper_rustls::HttpsConnector<HttpConnector>, BoxError> {
    let builder = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(config.rustls_client_config()?)
        .https_or_http();
    let builder = match &config.tls_server_name {
        Some(name) => builder.with_server_name_resolver(
            hyper_rustls::FixedServerNameResolver::new(name.clone().try_into()?),
        ),
        None => builder,
    };
    // `DISABLE_HTTP2` set (to anything): HTTP/1.1 only, as client-go honours the same variable.
    Ok(
        if std::env::var_os("DISABLE_HTTP2").is_some_and(|v| !v.is_empty()) {
            builder.enable_http1().wrap_connector(connector)
        } else {
            builder.enable_all_versions().wrap_connector(connector)
        },
    )
}

/// The layers above the HTTP connection: as kube's own, with the budget under the retries and the fence
/// innermost.
///
/// The budget sits below the retry layer, so that each retry takes a token as client-go's do, and
/// above the fence, so that a write waits for its token first and the fence then judges the moment
/// it really goes out: a write that waited past the replica's deadline is refused, not sent.
fn stack<S, B>(
    config: &kube::Config,
    fence: Option<Fence>,
    budget: Option<BudgetLayer>,
    http: S,
) -> Result<
    impl Service<Request<Body>, Response = Response<B>, Error = BoxError, Future: Send> + Send + 'static,
    BoxError,
>
where
    S: Service<Request<FencedBody<Body>>, Response = Response<B>> + Clone + Send + 'static,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    let fence = match fence {
        Some(fence) => Either::Left(FenceLayer(fence)),
        None => Either::Right(MapRequestLayer::new(|request: Request<Body>| {
            request.map(FencedBody::unfenced)
        })),
    };
    Ok(ServiceBuilder::new()
        .layer(config.base_uri_layer())
        .option_layer(
            config
                .default_retry
                .then(|| RetryLayer::new(RetryPolicy::server_retry())),
        )
        .option_layer(budget)
        .option_layer(config.auth_layer()?)
        .layer(config.extra_headers_layer()?)
        .layer(fence)
        .map_err(Into::<BoxError>::into)
        .service(http))
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::fence::Refused;
    use crate::leader::clock::Moment;
    use prometheus_client::metrics::histogram::Histogram;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;
    use tower::ServiceExt;

    /// An API server that answers 429 Too Many Requests, and whose first answer arrives after the
    /// replica's validity ran out (the fence closes while the request is out).
    #[derive(Clone)]
    struct Throttling {
        requests: Arc<AtomicUsize>,
        fence: Fence,
    }

    impl Service<Request<FencedBody<Body>>> for Throttling {
        type Response = Response<Body>;
        type Error = BoxError;
        type Future = std::future::Ready<Result<Response<Body>, BoxError>>;

        fn poll_ready(
            &mut self,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Result<(), BoxError>> {
            std::task::Poll::Ready(Ok(()))
        }

        fn call(&mut self, _: Request<FencedBody<Body>>) -> Self::Future {
            self.requests.fetch_add(1, Ordering::SeqCst);
            self.fence.close();
            let mut response = Response::new(Body::empty());
            *response.status_mut() = http::StatusCode::TOO_MANY_REQUESTS;
            std::future::ready(Ok(response))
        }
    }

    #[tokio::test]
    async fn a_retry_after_the_deadline_is_refused_too() {
        let config = kube::Config::new("https://127.0.0.1:6443".parse().unwrap());
        assert!(config.default_retry, "kube retries by default");
        let fence = Fence::closed();
        fence.open_until(Moment::now() + Duration::from_secs(60));
        let server = Throttling {
            requests: Arc::default(),
            fence: fence.clone(),
        };
        let service = stack(&config, Some(fence), None, server.clone()).unwrap();
        let request = Request::post("/api/v1/namespaces/ns/configmaps")
            .body(Body::from(b"{}".to_vec()))
            .unwrap();
        let err = match service.oneshot(request).await {
            Ok(response) => panic!("not refused: {}", response.status()),
            Err(err) => err,
        };
        assert!(err.downcast_ref::<Refused>().is_some(), "{err:?}");
        assert_eq!(
            server.requests.load(Ordering::SeqCst),
            1,
            "only the first attempt went out"
        );
    }

    /// An API server that answers 429 to its first `throttled` requests and 200 after.
    #[derive(Clone, Default)]
    struct Answering {
        requests: Arc<AtomicUsize>,
        throttled: usize,
    }

    impl Service<Request<FencedBody<Body>>> for Answering {
        type Response = Response<Body>;
        type Error = BoxError;
        type Future = std::future::Ready<Result<Response<Body>, BoxError>>;

        fn poll_ready(
            &mut self,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Result<(), BoxError>> {
            std::task::Poll::Ready(Ok(()))
        }

        fn call(&mut self, _: Request<FencedBody<Body>>) -> Self::Future {
            let n = self.requests.fetch_add(1, Ordering::SeqCst);
            let mut response = Response::new(Body::empty());
            if n < self.throttled {
                *response.status_mut() = http::StatusCode::TOO_MANY_REQUESTS;
            }
            std::future::ready(Ok(response))
        }
    }

    fn budget(qps: f64, burst: u32) -> (BudgetLayer, Histogram) {
        let waited = Histogram::new([0.1, 1.0]);
        let budget = crate::budget::Budget::new(qps, burst).unwrap().unwrap();
        (BudgetLayer::new(budget, waited.clone()), waited)
    }

    fn post() -> Request<Body> {
        Request::post("/api/v1/namespaces/ns/configmaps")
            .body(Body::from(b"{}".to_vec()))
            .unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn each_retry_takes_a_token_of_the_budget() {
        let config = kube::Config::new("https://127.0.0.1:6443".parse().unwrap());
        let (budget, waited) = budget(1.0, 1);
        let server = Answering {
            throttled: 2,
            ..Default::default()
        };
        let service = stack(&config, None, Some(budget), server.clone()).unwrap();
        let response = service.oneshot(post()).await.unwrap();
        assert_eq!(response.status(), http::StatusCode::OK);
        assert_eq!(server.requests.load(Ordering::SeqCst), 3);
        let (sum, count) = crate::budget::layer::tests::sum_and_count(&waited);
        assert_eq!(count, 3, "every attempt passed the budget");
        assert!(sum >= 1.9, "the retries waited for tokens: {sum}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_write_that_waited_for_its_token_past_the_deadline_is_refused() {
        let config = kube::Config::new("https://127.0.0.1:6443".parse().unwrap());
        let fence = Fence::closed();
        fence.open_until(Moment::now() + Duration::from_secs(60));
        let (budget, _) = budget(1.0, 1);
        let server = Answering::default();
        let mut service =
            stack(&config, Some(fence.clone()), Some(budget), server.clone()).unwrap();
        let first = service.ready().await.unwrap().call(post()).await.unwrap();
        assert_eq!(first.status(), http::StatusCode::OK);
        // The second waits a second for its token; the replica's validity ends meanwhile.
        let second = service.ready().await.unwrap().call(post());
        let deadline = async {
            tokio::time::sleep(Duration::from_millis(500)).await;
            fence.close();
        };
        let (second, ()) = tokio::join!(second, deadline);
        let err = second.expect_err("a write after the deadline went out");
        assert!(err.downcast_ref::<Refused>().is_some(), "{err:?}");
        assert_eq!(server.requests.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn the_user_agent_names_the_replica() {
        let config = kube::Config::new("https://127.0.0.1:6443".parse().unwrap());
        let config = with_user_agent(config, "replica-a");
        let ua: Vec<_> = config
            .headers
            .iter()
            .filter(|(n, _)| n == USER_AGENT)
            .collect();
        assert_eq!(ua.len(), 1);
        assert_eq!(
            ua[0].1,
            format!("ecs-operator/{} (replica-a)", env!("CARGO_PKG_VERSION"))
        );
    }
}
