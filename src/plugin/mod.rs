//! `kubectl ecs`: the `aws ecs` verbs people know, against the cluster in KUBECONFIG. Install by
//! putting the `kubectl-ecs` binary on PATH. Output is the AWS CLI's JSON ([`shapes`]); writes use
//! the field manager `kubectl-ecs`.

pub mod shapes;
pub mod table;
mod wait;

use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use k8s_openapi::api::apps::v1::ControllerRevision;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use serde_json::{Value, json};

use crate::api::{Service, Task, TaskDefinition};
use crate::task_definition::revision::{TaskDefinitionRef, object_name};

const FIELD_MANAGER: &str = "kubectl-ecs";

/// The `aws ecs` verbs on ecs-operator's Services, Tasks and TaskDefinitions.
#[derive(Parser, Debug)]
#[command(name = "kubectl-ecs", bin_name = "kubectl ecs", version)]
pub struct Cli {
    /// Namespace (the ECS cluster); default: the kubeconfig context's namespace.
    #[arg(short, long, global = true)]
    pub namespace: Option<String>,
    /// ECS cluster: a namespace name, or a cluster ARN printed by this tool (instead of -n).
    #[arg(long, global = true)]
    pub cluster: Option<String>,
    /// Kubeconfig context to use.
    #[arg(long, global = true)]
    pub context: Option<String>,
    /// `json`: the AWS CLI's shapes, for scripts; `table`: drawn for people, as the ECS console.
    #[arg(long, short, global = true, value_enum, default_value_t = Output::Json)]
    pub output: Output,
    #[command(subcommand)]
    pub verb: Verb,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Output {
    Json,
    Table,
}

#[derive(Subcommand, Debug)]
pub enum Verb {
    /// Start tasks of a task definition (one Task each).
    RunTask {
        #[arg(long)]
        task_definition: String,
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=10))]
        count: u8,
        #[arg(long)]
        started_by: Option<String>,
        #[arg(long)]
        group: Option<String>,
        /// Task overrides as JSON (`{"containerOverrides": [...]}`).
        #[arg(long)]
        overrides: Option<String>,
    },
    /// Stop a task.
    StopTask {
        #[arg(long)]
        task: String,
        #[arg(long)]
        reason: Option<String>,
    },
    /// Change a service's desired count or task definition, or redeploy it.
    UpdateService {
        #[arg(long)]
        service: String,
        #[arg(long)]
        desired_count: Option<i32>,
        #[arg(long)]
        task_definition: Option<String>,
        #[arg(long)]
        force_new_deployment: bool,
    },
    /// Describe services (ECS DescribeServices output).
    DescribeServices {
        #[arg(long, num_args = 1.., required = true)]
        services: Vec<String>,
    },
    /// Describe tasks (ECS DescribeTasks output).
    DescribeTasks {
        #[arg(long, num_args = 1.., required = true)]
        tasks: Vec<String>,
    },
    /// Describe a task definition revision (`family` = its latest ACTIVE revision).
    DescribeTaskDefinition {
        #[arg(long)]
        task_definition: String,
    },
    /// List task ARNs (RUNNING by default, as ECS).
    ListTasks {
        #[arg(long)]
        service_name: Option<String>,
        #[arg(long)]
        family: Option<String>,
        #[arg(long)]
        started_by: Option<String>,
        #[arg(long, default_value = "RUNNING", value_parser = ["RUNNING", "STOPPED"])]
        desired_status: String,
    },
    /// List service ARNs.
    ListServices,
    /// Protect tasks of a service from scale-in and deployments, or end their protection
    /// (annotation `ecs.operator.dev/scale-in-protection`).
    UpdateTaskProtection {
        #[arg(long, num_args = 1..=10, required = true)]
        tasks: Vec<String>,
        #[arg(
            long,
            conflicts_with = "no_protection_enabled",
            required_unless_present = "no_protection_enabled"
        )]
        protection_enabled: bool,
        #[arg(long)]
        no_protection_enabled: bool,
        /// 1 to 2,880 (48 h); ECS's default is 120.
        #[arg(long)]
        expires_in_minutes: Option<i64>,
    },
    /// Task scale-in protection of tasks.
    GetTaskProtection {
        #[arg(long, num_args = 1..=100, required = true)]
        tasks: Vec<String>,
    },
    /// Stop a service deployment in progress and roll back to the last completed one (annotation
    /// `ecs.operator.dev/stop-deployment`).
    StopServiceDeployment {
        /// `arn:aws:ecs:kubernetes:000000000000:service-deployment/<namespace>/<service>/<N>`.
        #[arg(long)]
        service_deployment_arn: String,
        #[arg(long, default_value = "ROLLBACK", value_parser = ["ROLLBACK", "ABORT"])]
        stop_type: String,
    },
    /// Continue or roll back a service deployment paused at a PAUSE lifecycle hook (annotation
    /// `ecs.operator.dev/lifecycle-hook-action`).
    ContinueServiceDeployment {
        /// `arn:aws:ecs:kubernetes:000000000000:service-deployment/<namespace>/<service>/<N>`.
        #[arg(long)]
        service_deployment_arn: String,
        /// The paused hook's `hookId` (`ecs-svc/N/<STAGE>/<index>`, from the service's
        /// `lifecycleHookDetails`).
        #[arg(long)]
        hook_id: String,
        #[arg(long, default_value = "CONTINUE", value_parser = ["CONTINUE", "ROLLBACK"])]
        action: String,
    },
    /// Wait for a condition (`services-stable`, `tasks-running`, `tasks-stopped`).
    Wait {
        #[command(subcommand)]
        what: Wait,
    },
}

#[derive(Subcommand, Debug)]
pub enum Wait {
    /// Until every service has one deployment and runningCount = desiredCount (the AWS CLI waiter).
    ServicesStable {
        #[arg(long, num_args = 1.., required = true)]
        services: Vec<String>,
        /// Give up after this many seconds (the AWS CLI waiter: 40 × 15 s).
        #[arg(long, default_value_t = 600)]
        timeout: u64,
    },
    /// Until every task is RUNNING; fails as soon as one has stopped (the AWS CLI waiter).
    TasksRunning {
        #[arg(long, num_args = 1.., required = true)]
        tasks: Vec<String>,
        /// Give up after this many seconds (the AWS CLI waiter: 100 × 6 s).
        #[arg(long, default_value_t = 600)]
        timeout: u64,
    },
    /// Until every task is STOPPED.
    TasksStopped {
        #[arg(long, num_args = 1.., required = true)]
        tasks: Vec<String>,
        /// Give up after this many seconds (the AWS CLI waiter: 100 × 6 s).
        #[arg(long, default_value_t = 600)]
        timeout: u64,
    },
}

/// The binary's entry point.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(254)
        }
    }
}

type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

async fn client(cli: &Cli) -> Result<(Client, String)> {
    let options = kube::config::KubeConfigOptions {
        context: cli.context.clone(),
        ..Default::default()
    };
    let config = match kube::Config::from_kubeconfig(&options).await {
        Ok(c) => c,
        Err(_) if cli.context.is_none() => kube::Config::infer().await?,
        Err(e) => return Err(e.into()),
    };
    let namespace = cli
        .cluster
        .as_deref()
        .map(|c| shapes::name_of(c).to_string())
        .or_else(|| cli.namespace.clone())
        .unwrap_or_else(|| config.default_namespace.clone());
    Ok((Client::try_from(config)?, namespace))
}

fn print(output: Output, value: &Value) {
    if output == Output::Table
        && let Some((out, failures)) = table::render(value)
    {
        print!("{out}");
        eprint!("{failures}");
        return;
    }
    println!(
        "{}",
        serde_json::to_string_pretty(value).expect("JSON always prints")
    );
}

fn missing(arn: String) -> Value {
    json!({"arn": arn, "reason": "MISSING"})
}

async fn run(cli: Cli) -> Result<ExitCode> {
    let (client, ns) = client(&cli).await?;
    let tasks: Api<Task> = Api::namespaced(client.clone(), &ns);
    let services: Api<Service> = Api::namespaced(client.clone(), &ns);
    let patch = PatchParams {
        field_manager: Some(FIELD_MANAGER.into()),
        ..Default::default()
    };
    match cli.verb {
        Verb::RunTask {
            task_definition,
            count,
            started_by,
            group,
            overrides,
        } => {
            let reference = shapes::task_definition_of(&task_definition).to_string();
            let family = reference.split(':').next().unwrap_or_default().to_string();
            let overrides: Option<Value> = overrides
                .map(|o| serde_json::from_str(&o))
                .transpose()
                .map_err(|e| format!("--overrides is not JSON: {e}"))?;
            let mut started = Vec::new();
            for _ in 0..count {
                let task: Task = serde_json::from_value(json!({
                    "apiVersion": "ecs.operator.dev/v1alpha1",
                    "kind": "Task",
                    "metadata": {"generateName": format!("{family}-")},
                    "spec": {
                        "taskDefinition": reference,
                        "startedBy": started_by,
                        "group": group,
                        "overrides": overrides,
                    },
                }))?;
                let post = PostParams {
                    field_manager: Some(FIELD_MANAGER.into()),
                    ..Default::default()
                };
                started.push(shapes::task(&tasks.create(&post, &task).await?));
            }
            print(cli.output, &json!({"tasks": started, "failures": []}));
        }
        Verb::StopTask { task, reason } => {
            let name = shapes::name_of(&task);
            let body = json!({"spec": {"desiredStatus": "STOPPED", "reason": reason}});
            let stopped = tasks.patch(name, &patch, &Patch::Merge(&body)).await?;
            print(cli.output, &json!({"task": shapes::task(&stopped)}));
        }
        Verb::UpdateService {
            service,
            desired_count,
            task_definition,
            force_new_deployment,
        } => {
            let name = shapes::name_of(&service);
            let mut spec = serde_json::Map::new();
            if let Some(n) = desired_count {
                spec.insert("desiredCount".into(), json!(n));
            }
            if let Some(td) = task_definition {
                spec.insert(
                    "taskDefinition".into(),
                    json!(shapes::task_definition_of(&td)),
                );
            }
            if force_new_deployment {
                // Any new value redeploys; the time says when it was asked for.
                spec.insert(
                    "forceNewDeployment".into(),
                    json!(k8s_openapi::jiff::Timestamp::now().to_string()),
                );
            }
            let updated = services
                .patch(name, &patch, &Patch::Merge(&json!({ "spec": spec })))
                .await?;
            print(cli.output, &json!({"service": shapes::service(&updated)}));
        }
        Verb::DescribeServices { services: names } => {
            let (mut found, mut failures) = (Vec::new(), Vec::new());
            for given in &names {
                let name = shapes::name_of(given);
                match services.get_opt(name).await? {
                    Some(s) => found.push(shapes::service(&s)),
                    None => failures.push(missing(shapes::service_arn(&ns, name))),
                }
            }
            print(
                cli.output,
                &json!({"services": found, "failures": failures}),
            );
        }
        Verb::DescribeTasks { tasks: names } => {
            let (mut found, mut failures) = (Vec::new(), Vec::new());
            for given in &names {
                let name = shapes::name_of(given);
                match tasks.get_opt(name).await? {
                    Some(t) => found.push(shapes::task(&t)),
                    None => failures.push(missing(shapes::task_arn(&ns, name))),
                }
            }
            print(cli.output, &json!({"tasks": found, "failures": failures}));
        }
        Verb::DescribeTaskDefinition { task_definition } => {
            let given = shapes::task_definition_of(&task_definition);
            let reference = TaskDefinitionRef::parse(given)
                .ok_or_else(|| format!("{given:?} is not 'family' or 'family:revision'"))?;
            let tds: Api<TaskDefinition> = Api::namespaced(client.clone(), &ns);
            let not_found = || format!("Unable to describe task definition {given} in {ns}");
            let td = tds
                .get_opt(&reference.family)
                .await?
                .ok_or_else(not_found)?;
            let status = td.status.clone().unwrap_or_default();
            let revision = reference
                .revision
                .or(status.latest_active_revision)
                .ok_or_else(not_found)?;
            let revisions: Api<ControllerRevision> = Api::namespaced(client.clone(), &ns);
            let registered = revisions
                .get_opt(&object_name(&reference.family, revision))
                .await?
                .ok_or_else(not_found)?;
            let data = registered.data.map(|d| d.0).unwrap_or_default();
            let spec = serde_json::from_value(data["spec"].clone())?;
            print(
                cli.output,
                &shapes::task_definition(&reference.family, revision, &spec, &status),
            );
        }
        Verb::ListTasks {
            service_name,
            family,
            started_by,
            desired_status,
        } => {
            let mut params = ListParams::default();
            if let Some(s) = &service_name {
                params = params.labels(&format!("{}={}", crate::labels::SERVICE, s));
            }
            let arns: Vec<String> = tasks
                .list(&params)
                .await?
                .items
                .iter()
                .filter(|t| {
                    let described = shapes::task(t);
                    described["desiredStatus"] == desired_status.as_str()
                        && family.as_ref().is_none_or(|f| {
                            t.spec.task_definition.split(':').next() == Some(f.as_str())
                        })
                        && started_by
                            .as_ref()
                            .is_none_or(|s| described["startedBy"] == s.as_str())
                })
                .map(|t| shapes::task_arn(&ns, &t.name_any()))
                .collect();
            print(cli.output, &json!({ "taskArns": arns }));
        }
        Verb::ListServices => {
            let arns: Vec<String> = services
                .list(&ListParams::default())
                .await?
                .items
                .iter()
                .map(|s| shapes::service_arn(&ns, &s.name_any()))
                .collect();
            print(cli.output, &json!({ "serviceArns": arns }));
        }
        Verb::UpdateTaskProtection {
            tasks: names,
            protection_enabled,
            no_protection_enabled: _,
            expires_in_minutes,
        } => {
            let now = k8s_openapi::jiff::Timestamp::now();
            let value = if protection_enabled {
                let minutes = expires_in_minutes
                    .unwrap_or(crate::task::protection::DEFAULT_EXPIRES_IN_MINUTES);
                Some(crate::task::protection::annotation_value(now, minutes)?)
            } else {
                None
            };
            let (mut found, mut failures) = (Vec::new(), Vec::new());
            for given in &names {
                let name = shapes::name_of(given);
                let arn = shapes::task_arn(&ns, name);
                let Some(task) = tasks.get_opt(name).await? else {
                    failures.push(missing(arn));
                    continue;
                };
                // ECS protects only tasks of a service.
                if !task
                    .owner_references()
                    .iter()
                    .any(|o| o.controller == Some(true) && o.kind == "Service")
                {
                    failures.push(json!({
                        "arn": arn,
                        "reason": "TASK_NOT_VALID",
                        "detail": "The task does not belong to a service",
                    }));
                    continue;
                }
                let body = json!({"metadata": {"annotations": {
                    crate::labels::SCALE_IN_PROTECTION: value,
                }}});
                let updated = tasks.patch(name, &patch, &Patch::Merge(&body)).await?;
                found.push(shapes::protected_task(&updated, now));
            }
            print(
                cli.output,
                &json!({"protectedTasks": found, "failures": failures}),
            );
        }
        Verb::GetTaskProtection { tasks: names } => {
            let now = k8s_openapi::jiff::Timestamp::now();
            let (mut found, mut failures) = (Vec::new(), Vec::new());
            for given in &names {
                let name = shapes::name_of(given);
                match tasks.get_opt(name).await? {
                    Some(t) => found.push(shapes::protected_task(&t, now)),
                    None => failures.push(missing(shapes::task_arn(&ns, name))),
                }
            }
            print(
                cli.output,
                &json!({"protectedTasks": found, "failures": failures}),
            );
        }
        Verb::StopServiceDeployment {
            service_deployment_arn,
            stop_type,
        } => {
            let (service, deployment) = shapes::service_deployment_of(&service_deployment_arn)
                .ok_or_else(|| {
                    format!(
                        "{service_deployment_arn:?} is not a service deployment ARN (…:service-deployment/<namespace>/<service>/<N>)"
                    )
                })?;
            let body = json!({"metadata": {"annotations": {
                crate::labels::STOP_DEPLOYMENT: deployment,
                crate::labels::STOP_DEPLOYMENT_TYPE: stop_type,
            }}});
            let updated = services
                .patch(service, &patch, &Patch::Merge(&body))
                .await?;
            print(
                cli.output,
                &json!({"serviceDeploymentArn": shapes::service_deployment_arn(
                    &ns,
                    &updated.name_any(),
                    &deployment,
                )}),
            );
        }
        Verb::ContinueServiceDeployment {
            service_deployment_arn,
            hook_id,
            action,
        } => {
            let (service, deployment) = shapes::service_deployment_of(&service_deployment_arn)
                .ok_or_else(|| {
                    format!(
                        "{service_deployment_arn:?} is not a service deployment ARN (…:service-deployment/<namespace>/<service>/<N>)"
                    )
                })?;
            let value = crate::service::hooks::action::for_hook_id(&deployment, &hook_id, &action)?;
            let body = json!({"metadata": {"annotations": {
                crate::labels::LIFECYCLE_HOOK_ACTION: value,
            }}});
            let updated = services
                .patch(service, &patch, &Patch::Merge(&body))
                .await?;
            print(
                cli.output,
                &json!({"serviceDeploymentArn": shapes::service_deployment_arn(
                    &ns,
                    &updated.name_any(),
                    &deployment,
                )}),
            );
        }
        Verb::Wait { what } => return wait::run(what, &services, &tasks, &ns).await,
    }
    Ok(ExitCode::SUCCESS)
}
