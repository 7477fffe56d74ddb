use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// The Amazon ECS model (TaskDefinition, Task, Service) on Kubernetes.
#[derive(Parser)]
#[command(name = "ecs-operator", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the controllers against the cluster in KUBECONFIG (or the in-cluster configuration).
    Run(RunArgs),
    /// Print every CustomResourceDefinition as YAML (or write one file per kind into a directory).
    Crd {
        /// Write `<plural>.yaml` files into this directory instead of printing.
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Convert Amazon ECS JSON into ecs-operator manifests.
    Import {
        #[command(subcommand)]
        what: ecs_operator::import::ImportCommand,
    },
}

#[derive(clap::Args)]
struct RunArgs {
    /// Namespaces to watch (repeat or comma-separate); all namespaces when absent.
    #[arg(long = "namespace", env = "WATCH_NAMESPACES", value_delimiter = ',')]
    namespaces: Vec<String>,
    /// How long stopped standalone tasks are kept before they are deleted, in seconds.
    #[arg(long, env = "STOPPED_TASK_RETENTION_SECONDS", default_value_t = 3600)]
    stopped_task_retention_seconds: u64,
    /// Stopped tasks a service keeps at most (or desiredCount when larger); beyond it the oldest are
    /// deleted before their retention period ends.
    #[arg(long, env = "STOPPED_SERVICE_TASKS_KEPT", default_value_t = 100)]
    stopped_service_tasks_kept: usize,
    /// How long a task may take to be placed and start before it fails with TaskFailedToStart, in seconds.
    #[arg(long, env = "TASK_START_TIMEOUT_SECONDS", default_value_t = 300)]
    task_start_timeout_seconds: u64,
    /// Seconds a service task without a health check must be RUNNING to count as healthy (ECS: 40).
    #[arg(long, env = "HEALTHY_AFTER_RUNNING_SECONDS", default_value_t = 40)]
    healthy_after_running_seconds: u64,
    /// Seconds a watch may keep failing (RBAC removed, API unreachable) before /healthz fails.
    #[arg(long, env = "WATCH_FAILURE_SECONDS", default_value_t = 60)]
    watch_failure_seconds: u64,
    /// Reconciles each controller (TaskDefinition, Task, Service) runs at once at most; 0: no limit.
    #[arg(long, env = "CONCURRENT_RECONCILES", default_value_t = ecs_operator::context::DEFAULT_CONCURRENT_RECONCILES)]
    concurrent_reconciles: u16,
    /// Seconds a minute of deployment bake times lasts (bakeTimeInMinutes, canary and linear bake
    /// times). 60; for tests only, to run BLUE_GREEN, LINEAR and CANARY deployments quickly.
    #[arg(
        long,
        env = "DEPLOYMENT_MINUTE_SECONDS",
        default_value_t = 60,
        hide = true
    )]
    deployment_minute_seconds: u64,
    /// Log format: `text` or `json`.
    #[arg(long, env = "LOG_FORMAT", default_value = "text")]
    log_format: String,
    /// Log filter, e.g. `info` or `ecs_operator=debug,kube=info`.
    #[arg(long, env = "LOG_LEVEL", default_value = "info")]
    log_level: String,
    /// Kubeconfig file to use instead of $KUBECONFIG or the in-cluster configuration.
    #[arg(long)]
    kubeconfig: Option<PathBuf>,
    /// Run the controllers only while holding a coordination Lease (for several replicas).
    #[arg(long, env = "LEADER_ELECTION", default_value_t = false)]
    leader_election: bool,
    /// Name of the leader Lease.
    #[arg(long, env = "LEASE_NAME", default_value = "ecs-operator")]
    lease_name: String,
    /// Namespace of the leader Lease (the operator's own namespace).
    #[arg(long, env = "POD_NAMESPACE", default_value = "default")]
    lease_namespace: String,
    /// Seconds a leader lease is valid without renewal: how long a standby waits, after it last saw the
    /// lease change, before taking it over from a holder that stopped renewing.
    #[arg(long, env = "LEASE_DURATION_SECONDS", default_value_t = 15)]
    lease_duration_seconds: u64,
    /// Seconds between the renew deadline and the lease's expiry, when --lease-renew-deadline-seconds is
    /// not given (renew deadline = duration - grace).
    #[arg(long, default_value_t = 5)]
    lease_grace_seconds: u64,
    /// Seconds after its last successful renewal at which a leader stops writing and steps down; must be
    /// shorter than the lease duration. Default: duration - grace.
    #[arg(long, env = "LEASE_RENEW_DEADLINE_SECONDS")]
    lease_renew_deadline_seconds: Option<u64>,
    /// Seconds between lease renewals by the leader, and between lease reads by a standby.
    #[arg(long, env = "LEASE_RETRY_PERIOD_SECONDS", default_value_t = 2)]
    lease_retry_period_seconds: u64,
    /// Requests a second the controllers may send to the API server, after a burst (a token bucket, as
    /// client-go's); 0: no budget. Kubernetes' own controllers run at 20 (kube-controller-manager).
    #[arg(long, env = "KUBE_API_QPS", default_value_t = 0.0)]
    kube_api_qps: f64,
    /// Requests the controllers may send at once before --kube-api-qps paces them; at least 1 when
    /// --kube-api-qps is set.
    #[arg(long, env = "KUBE_API_BURST", default_value_t = 30)]
    kube_api_burst: u32,
    /// Address of /healthz, /readyz and /metrics.
    #[arg(long, env = "ADMIN_ADDRESS", default_value = "0.0.0.0:8080")]
    admin_address: std::net::SocketAddr,
}

fn run(args: RunArgs) -> ExitCode {
    let filter = tracing_subscriber::EnvFilter::try_new(&args.log_level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let logs = tracing_subscriber::fmt().with_env_filter(filter);
    match args.log_format.as_str() {
        "json" => logs.json().init(),
        _ => logs.init(),
    }
    let timings = match lease_timings(&args) {
        Ok(timings) => timings,
        Err(e) => {
            tracing::error!("invalid lease timings: {e}");
            return ExitCode::from(2);
        }
    };
    let budget = match ecs_operator::budget::Budget::new(args.kube_api_qps, args.kube_api_burst) {
        Ok(budget) => budget,
        Err(e) => {
            tracing::error!("invalid request budget: {e}");
            return ExitCode::from(2);
        }
    };
    let options = ecs_operator::run::Options {
        // An empty WATCH_NAMESPACES means all namespaces, not one named "".
        namespaces: args
            .namespaces
            .into_iter()
            .filter(|n| !n.trim().is_empty())
            .collect(),
        config: ecs_operator::context::Config {
            stopped_task_retention: std::time::Duration::from_secs(
                args.stopped_task_retention_seconds,
            ),
            stopped_service_tasks_kept: args.stopped_service_tasks_kept,
            start_timeout: std::time::Duration::from_secs(args.task_start_timeout_seconds),
            concurrent_reconciles: args.concurrent_reconciles,
            healthy_after_running: std::time::Duration::from_secs(
                args.healthy_after_running_seconds,
            ),
            watch_failure_limit: std::time::Duration::from_secs(args.watch_failure_seconds),
            deployment_minute: std::time::Duration::from_secs(
                args.deployment_minute_seconds.max(1),
            ),
        },
        admin: Default::default(),
    };
    let admin = options.admin.clone();
    // The lease client has none: a renewal held back by the controllers' requests could lose the lease.
    let budget = budget.map(|budget| {
        tracing::info!(
            qps = budget.qps,
            burst = budget.burst,
            "client request budget"
        );
        ecs_operator::budget::BudgetLayer::new(budget, admin.metrics.budget_wait.clone())
    });
    let admin_address = args.admin_address;
    let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime");
    runtime.block_on(async {
        let identity = ecs_operator::leader::identity::identity();
        let config = match config(args.kubeconfig.as_deref()).await {
            Ok(config) => ecs_operator::leader::client::with_user_agent(config, &identity),
            Err(e) => {
                tracing::error!(error = %e, "no Kubernetes configuration (KUBECONFIG or in-cluster)");
                return ExitCode::FAILURE;
            }
        };
        let shutdown = async {
            let _ = tokio::signal::ctrl_c().await;
        };
        let terminate = async {
            if let Ok(mut term) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                term.recv().await;
            }
        };
        let stop = async move {
            tokio::select! { _ = shutdown => {}, _ = terminate => {} }
            tracing::info!("shutting down");
        };
        let listener = match ecs_operator::admin::bind(admin_address).await {
            Ok(listener) => listener,
            Err(e) => {
                tracing::error!(error = %e, address = %admin_address, "cannot serve the admin endpoints");
                return ExitCode::FAILURE;
            }
        };
        let stop = futures::FutureExt::shared(futures::FutureExt::boxed(stop));
        if args.leader_election {
            // The controllers write through a fenced client; only the election writes the lease unfenced.
            let fence = ecs_operator::fence::Fence::closed();
            let clients = kube::Client::try_from(config.clone())
                .map_err(|e| e.to_string())
                .and_then(|lease_client| {
                    ecs_operator::leader::client::controllers(&config, Some(fence.clone()), budget)
                        .map(|client| (lease_client, client))
                        .map_err(|e| e.to_string())
                });
            let (lease_client, client) = match clients {
                Ok(clients) => clients,
                Err(e) => {
                    tracing::error!(error = %e, "cannot build the Kubernetes client");
                    return ExitCode::FAILURE;
                }
            };
            let server = tokio::spawn(ecs_operator::admin::serve(listener, admin.clone(), stop.clone()));
            let election = ecs_operator::leader::Election {
                lease_name: args.lease_name,
                namespace: args.lease_namespace,
                identity,
                timings,
            };
            let work = |stop| ecs_operator::run::run(client, options, stop);
            let ended =
                ecs_operator::leader::run_while_leader(lease_client, fence, election, admin, stop, work).await;
            // Shutdown has stopped it already, unless leadership was lost.
            server.abort();
            let _ = server.await;
            match ended {
                ecs_operator::leader::Ended::Shutdown => ExitCode::SUCCESS,
                // Restarting is the simplest way back to a clean standby.
                ecs_operator::leader::Ended::Lost => ExitCode::FAILURE,
            }
        } else {
            let client = match budget {
                // kube's own client goes through an API proxy; ours does not (it speaks HTTP/2).
                None if config.proxy_url.is_some() => kube::Client::try_from(config).map_err(|e| e.to_string()),
                budget => ecs_operator::leader::client::controllers(&config, None, budget).map_err(|e| e.to_string()),
            };
            let client = match client {
                Ok(client) => client,
                Err(e) => {
                    tracing::error!(error = %e, "cannot build the Kubernetes client");
                    return ExitCode::FAILURE;
                }
            };
            let server = tokio::spawn(ecs_operator::admin::serve(listener, admin.clone(), stop.clone()));
            admin.metrics.leader.set(1);
            ecs_operator::run::run(client, options, stop).await;
            server.abort();
            let _ = server.await;
            ExitCode::SUCCESS
        }
    })
}

/// The lease timings from the flags: the renew deadline defaults to duration - grace.
fn lease_timings(args: &RunArgs) -> Result<ecs_operator::leader::decide::Timings, String> {
    ecs_operator::leader::decide::Timings::from_seconds(
        args.lease_duration_seconds,
        args.lease_renew_deadline_seconds,
        args.lease_grace_seconds,
        args.lease_retry_period_seconds,
    )
}

async fn config(
    kubeconfig: Option<&std::path::Path>,
) -> Result<kube::Config, Box<dyn std::error::Error>> {
    let Some(path) = kubeconfig else {
        return Ok(kube::Config::infer().await?);
    };
    let kubeconfig = kube::config::Kubeconfig::read_from(path)?;
    Ok(kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default()).await?)
}

/// With `--features dhat-heap`: every allocation is recorded, and `dhat-heap.json` (in the working
/// directory) says which code held the most memory at the peak and at exit (docs/benchmarks.md).
#[cfg(feature = "dhat-heap")]
#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

fn main() -> ExitCode {
    #[cfg(feature = "dhat-heap")]
    let _profiler = dhat::Profiler::new_heap();
    match Cli::parse().command {
        Command::Run(args) => return run(args),
        Command::Import { what } => return ecs_operator::import::run(what),
        Command::Crd { dir: None } => print!("{}", ecs_operator::crd::all_yaml()),
        Command::Crd { dir: Some(dir) } => {
            for (file, crd) in ecs_operator::crd::all() {
                let path = dir.join(file);
                if let Err(e) = std::fs::write(&path, ecs_operator::crd::to_yaml(&crd)) {
                    eprintln!("error: cannot write {}: {e}", path.display());
                    return ExitCode::FAILURE;
                }
            }
        }
    }
    ExitCode::SUCCESS
}
