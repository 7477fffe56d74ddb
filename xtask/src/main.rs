//! Project automation: `cargo xtask <command>`.
//!
//! stdout carries only what a caller is meant to consume (for `cluster up` / `cluster env`: shell lines and,
//! last, the kubeconfig path); all progress goes to stderr.

mod bench;
mod build;
mod cluster;
mod debian;
mod demo;
mod gateway_api;
mod gomod;
mod node;
mod node_image;
mod pki;
mod proc;
mod test;
mod util;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "cargo xtask", about = "Project automation for ecs-operator")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Local test cluster: real kube-apiserver, controller-manager and scheduler, with kwok nodes.
    Cluster {
        #[command(subcommand)]
        command: ClusterCommand,
    },
    /// Run the test suite against the local cluster.
    Test,
    /// Run the demo against the local cluster.
    Demo,
    /// The ECS Service side by side with the Deployment controller, on a cluster of its own.
    Bench {
        /// Task counts to measure, comma-separated.
        #[arg(long, default_value = "100,1000")]
        sizes: String,
        /// Pod deletes per size for the replacement latency.
        #[arg(long, default_value_t = 20)]
        replacements: usize,
        /// Many services too: `SxR`, S Services of R tasks beside S Deployments of R replicas
        /// (e.g. `500x4`).
        #[arg(long)]
        services: Option<String>,
        /// Leave the benchmark's cluster running afterwards.
        #[arg(long)]
        keep: bool,
        /// The operator's client request budget (`--kube-api-qps`); its own default when absent.
        #[arg(long)]
        kube_api_qps: Option<f64>,
        /// The operator's client request burst (`--kube-api-burst`); its own default when absent.
        #[arg(long)]
        kube_api_burst: Option<u32>,
    },
    /// Regenerate the Go wrapper modules in xtask/go/ (go.mod, go.sum) for the given versions.
    GoModUpdate {
        /// k8s.io/kubernetes version, e.g. v1.36.5 (default: the current pin)
        #[arg(long)]
        k8s: Option<String>,
        /// sigs.k8s.io/kwok version (default: the current pin)
        #[arg(long)]
        kwok: Option<String>,
        /// helm.sh/helm/v3 version (default: the current pin)
        #[arg(long)]
        helm: Option<String>,
        /// sigs.k8s.io/metrics-server version (default: the current pin)
        #[arg(long)]
        metrics_server: Option<String>,
    },
}

#[derive(Subcommand)]
enum ClusterCommand {
    /// Build the binaries if needed, start the cluster (or reuse a running one) and print its environment.
    Up {
        /// Also join a real node (containerd and a kubelet on this machine, as root): `real-1`.
        #[arg(long)]
        real_node: bool,
    },
    /// Stop every process of the cluster and remove its state.
    Down,
    /// Print the environment of the running cluster without starting anything.
    Env,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Cluster { command } => match command {
            ClusterCommand::Up { real_node } => {
                let info = cluster::up(real_node)?;
                if info.started_now {
                    eprintln!(
                        "started {} (logs in {})",
                        info.server,
                        info.state_dir.display()
                    );
                }
                print!("{}", info.env_lines());
            }
            ClusterCommand::Down => {
                if let Ok(info) = cluster::env() {
                    demo::stop_operator(&info);
                }
                cluster::down()?
            }
            ClusterCommand::Env => {
                let info = cluster::env()?;
                print!("{}", info.env_lines());
            }
        },
        Command::Test => test::run()?,
        Command::Demo => demo::run()?,
        Command::Bench {
            sizes,
            replacements,
            services,
            keep,
            kube_api_qps,
            kube_api_burst,
        } => bench::run(
            &sizes,
            replacements,
            services.as_deref(),
            keep,
            bench::Budget {
                qps: kube_api_qps,
                burst: kube_api_burst,
            },
        )?,
        Command::GoModUpdate {
            k8s,
            kwok,
            helm,
            metrics_server,
        } => {
            let current = build::Versions::read()?;
            gomod::update(&build::Versions {
                k8s: k8s.unwrap_or(current.k8s),
                kwok: kwok.unwrap_or(current.kwok),
                helm: helm.unwrap_or(current.helm),
                metrics_server: metrics_server.unwrap_or(current.metrics_server),
            })?;
        }
    }
    Ok(())
}
