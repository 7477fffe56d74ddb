//! The operator's own endpoints: `/healthz` (the process serves and no watch is wedged), `/readyz`
//! (caches synced, controllers running) and `/metrics` (Prometheus text format).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use tracing::{info, warn};

/// Labels of per-controller metrics: bounded (a controller name), never an object name.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ControllerLabels {
    pub controller: &'static str,
}

/// Labels of error counters: controller and a bounded error category.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabels {
    pub controller: &'static str,
    pub category: &'static str,
}

/// Labels of state gauges (`lastStatus`, `rolloutState`: small fixed sets).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StateLabels {
    pub state: String,
}

fn duration_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 16))
}

/// Every metric the operator exports.
pub struct Metrics {
    registry: Registry,
    pub reconciles: Family<ControllerLabels, Counter>,
    pub errors: Family<ErrorLabels, Counter>,
    pub duration: Family<ControllerLabels, Histogram, fn() -> Histogram>,
    pub in_flight: Family<ControllerLabels, Gauge>,
    pub tasks: Family<StateLabels, Gauge>,
    pub deployments: Family<StateLabels, Gauge>,
    pub leader: Gauge,
    /// Time each request of the controllers' client waited for the request budget.
    pub budget_wait: Histogram,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("ecs_operator");
        let reconciles = Family::<ControllerLabels, Counter>::default();
        let errors = Family::<ErrorLabels, Counter>::default();
        let duration =
            Family::<ControllerLabels, Histogram, fn() -> Histogram>::new_with_constructor(
                duration_histogram,
            );
        let in_flight = Family::<ControllerLabels, Gauge>::default();
        let tasks = Family::<StateLabels, Gauge>::default();
        let deployments = Family::<StateLabels, Gauge>::default();
        let leader = Gauge::default();
        let budget_wait = duration_histogram();
        registry.register(
            "reconciles",
            "Reconciles run, by controller",
            reconciles.clone(),
        );
        registry.register(
            "reconcile_errors",
            "Reconciles that failed, by controller and error category",
            errors.clone(),
        );
        registry.register(
            "reconcile_duration_seconds",
            "Time spent in a reconcile, by controller",
            duration.clone(),
        );
        registry.register(
            "reconciles_in_flight",
            "Reconciles running now (the work queue being drained), by controller",
            in_flight.clone(),
        );
        registry.register("tasks", "Tasks by lastStatus", tasks.clone());
        registry.register(
            "service_deployments",
            "Service deployments by rolloutState",
            deployments.clone(),
        );
        registry.register(
            "leader",
            "1 when this replica holds the leader lease (or runs without leader election)",
            leader.clone(),
        );
        registry.register(
            "client_budget_wait_seconds",
            "Time API requests waited for the client request budget (--kube-api-qps, --kube-api-burst); \
             its count is the requests made, its sum the time they were held back",
            budget_wait.clone(),
        );
        Self {
            registry,
            reconciles,
            errors,
            duration,
            in_flight,
            tasks,
            deployments,
            leader,
            budget_wait,
        }
    }
}

impl Metrics {
    /// Measures one reconcile: counts it, times it, and counts its error category if it fails.
    pub async fn measure<T, E, F>(
        &self,
        controller: &'static str,
        category: impl Fn(&E) -> &'static str,
        f: F,
    ) -> Result<T, E>
    where
        F: std::future::Future<Output = Result<T, E>>,
    {
        let labels = ControllerLabels { controller };
        // In flight before counted, so "counted and not in flight" means finished.
        self.in_flight.get_or_create(&labels).inc();
        self.reconciles.get_or_create(&labels).inc();
        let start = std::time::Instant::now();
        let result = f.await;
        self.duration
            .get_or_create(&labels)
            .observe(start.elapsed().as_secs_f64());
        self.in_flight.get_or_create(&labels).dec();
        if let Err(e) = &result {
            self.errors
                .get_or_create(&ErrorLabels {
                    controller,
                    category: category(e),
                })
                .inc();
        }
        result
    }

    /// Reconciles running now, over every controller.
    pub fn reconciles_in_flight(&self) -> i64 {
        ["task", "taskdefinition", "service"]
            .into_iter()
            .map(|controller| {
                self.in_flight
                    .get_or_create(&ControllerLabels { controller })
                    .get()
            })
            .sum()
    }

    /// Replaces a state gauge family with fresh counts.
    pub fn set_states(
        family: &Family<StateLabels, Gauge>,
        counts: impl IntoIterator<Item = (String, i64)>,
    ) {
        family.clear();
        for (state, n) in counts {
            family.get_or_create(&StateLabels { state }).set(n);
        }
    }

    /// The Prometheus text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }
}

/// What the endpoints report.
#[derive(Default)]
pub struct Admin {
    pub ready: AtomicBool,
    pub metrics: Metrics,
    /// Failing watches: past their bound, `/healthz` fails.
    pub watches: crate::health::Watches,
}

/// Binds the endpoints' address (so a taken port fails the start, not the shutdown).
pub async fn bind(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    info!(addr = %listener.local_addr()?, "serving /healthz, /readyz and /metrics");
    Ok(listener)
}

/// Serves the endpoints until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    admin: Arc<Admin>,
    shutdown: impl std::future::Future<Output = ()>,
) -> std::io::Result<()> {
    tokio::pin!(shutdown);
    loop {
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => accepted?,
            _ = &mut shutdown => return Ok(()),
        };
        let admin = admin.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| respond(req, admin.clone()));
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(Duration::from_secs(5))
                .serve_connection(TokioIo::new(stream), service);
            if let Err(e) = conn.await {
                warn!(error = %e, "admin connection failed");
            }
        });
    }
}

async fn respond(
    req: Request<Incoming>,
    admin: Arc<Admin>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let (status, content_type, body) = match req.uri().path() {
        "/healthz" => match admin.watches.check() {
            Ok(()) => (StatusCode::OK, "text/plain", "ok".to_string()),
            Err(why) => (StatusCode::SERVICE_UNAVAILABLE, "text/plain", why),
        },
        "/readyz" if admin.ready.load(Ordering::Relaxed) => {
            (StatusCode::OK, "text/plain", "ok".to_string())
        }
        "/readyz" => (
            StatusCode::SERVICE_UNAVAILABLE,
            "text/plain",
            "caches not synced".to_string(),
        ),
        "/metrics" => (
            StatusCode::OK,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            admin.metrics.encode(),
        ),
        _ => (StatusCode::NOT_FOUND, "text/plain", "not found".to_string()),
    };
    Ok(Response::builder()
        .status(status)
        .header("content-type", content_type)
        .body(Full::new(Bytes::from(body)))
        .expect("a valid response"))
}
