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

fn main() -> ExitCode {
    match Cli::parse().command {
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
