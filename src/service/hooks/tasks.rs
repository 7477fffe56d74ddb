//! The I/O of lifecycle hooks: the hook Tasks of a service, read, created and stopped.
//!
//! A hook Task is a standalone task (never replaced; deleted after the stopped-task retention like any
//! standalone task) that the Service owns for garbage collection only: its owner reference is not a
//! controller reference and it has no `ecs.operator.dev/service` label, so the service's task counts,
//! replacements and load balancer never include it.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{Api, ListParams, ObjectMeta, Patch, PatchParams, PostParams};
use kube::{Resource, ResourceExt};

use super::{HookTask, TaskToCreate};
use crate::api::common::KeyValuePair;
use crate::api::task::{ContainerOverride, DesiredStatus, TaskOverride, TaskSpec};
use crate::api::{Service, Task};
use crate::context::Context;
use crate::error::{Error, is_conflict};
use crate::labels;

/// The field manager of hook task writes.
pub const FIELD_MANAGER: &str = "ecs-operator/lifecycle-hooks";

/// The hook Tasks of `svc`, by name, as the evaluator reads them (only those it owns).
pub async fn hook_tasks(ctx: &Context, svc: &Service) -> Result<BTreeMap<String, HookTask>, Error> {
    let api: Api<Task> = Api::namespaced(ctx.client.clone(), &svc.namespace().unwrap_or_default());
    let list = api
        .list(&ListParams::default().labels(&format!(
            "{}={}",
            labels::LIFECYCLE_HOOK_OF,
            svc.name_any()
        )))
        .await?;
    Ok(list
        .items
        .iter()
        .filter(|t| owned_by(t, svc))
        .map(|t| (t.name_any(), HookTask::of(t)))
        .collect())
}

fn owned_by(task: &Task, svc: &Service) -> bool {
    task.owner_references()
        .iter()
        .any(|o| Some(&o.uid) == svc.meta().uid.as_ref())
}

/// Creates the tasks (a task that already exists, from an earlier pass, is fine). A task whose
/// task definition cannot be resolved is not created: it comes back as [`HookTask::NotCreated`], for
/// the evaluator to fail its hook with the reason.
pub async fn create(
    ctx: &Context,
    svc: &Service,
    tasks: &[TaskToCreate],
) -> Result<BTreeMap<String, HookTask>, Error> {
    let ns = svc.namespace().unwrap_or_default();
    let api: Api<Task> = Api::namespaced(ctx.client.clone(), &ns);
    let mut not_created = BTreeMap::new();
    for t in tasks {
        let (family, revision) =
            match crate::task_definition::resolve(ctx, &ns, &t.task_definition, None).await? {
                Ok(found) => found,
                Err(u) => {
                    not_created.insert(t.name.clone(), HookTask::NotCreated(u.message));
                    continue;
                }
            };
        let Some(spec) =
            crate::task_definition::registered_spec(ctx, &ns, &family, revision).await?
        else {
            not_created.insert(
                t.name.clone(),
                HookTask::NotCreated(format!(
                    "task definition {family}:{revision} is not registered"
                )),
            );
            continue;
        };
        let containers: Vec<String> = spec
            .container_definitions
            .iter()
            .map(|c| c.name.clone())
            .collect();
        let task = build(svc, t, &format!("{family}:{revision}"), &containers);
        match api.create(&PostParams::default(), &task).await {
            Ok(_) => {}
            // Created by an earlier pass; a task of someone else's under the name is never adopted.
            Err(e) if is_conflict(&e) => match api.get_opt(&t.name).await? {
                Some(existing) if owned_by(&existing, svc) => {}
                Some(_) => {
                    not_created.insert(
                        t.name.clone(),
                        HookTask::NotCreated(format!(
                            "a task named {} already exists and is not this hook's",
                            t.name
                        )),
                    );
                }
                None => {}
            },
            // Refused by the Task schema (e.g. hookDetails longer than an environment value may be):
            // retrying cannot help.
            Err(kube::Error::Api(s)) if s.code == 422 => {
                not_created.insert(t.name.clone(), HookTask::NotCreated(s.message.clone()));
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(not_created)
}

/// The Task of one hook run, running `task_definition` (`family:revision`) with the hook's payload in
/// the environment of each of `containers`.
pub fn build(
    svc: &Service,
    t: &TaskToCreate,
    task_definition: &str,
    containers: &[String],
) -> Task {
    let environment: Vec<KeyValuePair> = t
        .environment
        .iter()
        .map(|(k, v)| KeyValuePair {
            name: Some(k.clone()),
            value: Some(v.clone()),
        })
        .collect();
    let overrides = containers
        .iter()
        .map(|name| ContainerOverride {
            name: name.clone(),
            environment: Some(environment.clone()),
            ..Default::default()
        })
        .collect();
    Task {
        metadata: ObjectMeta {
            name: Some(t.name.clone()),
            namespace: svc.namespace(),
            labels: Some(BTreeMap::from([
                (labels::MANAGED_BY.to_string(), labels::MANAGER.to_string()),
                (labels::LIFECYCLE_HOOK_OF.to_string(), svc.name_any()),
            ])),
            annotations: Some(BTreeMap::from([(
                labels::LIFECYCLE_HOOK_ID.to_string(),
                t.hook_id.clone(),
            )])),
            // For garbage collection only: not the controller, so the task stays standalone.
            owner_references: Some(vec![OwnerReference {
                api_version: Service::api_version(&()).into_owned(),
                kind: Service::kind(&()).into_owned(),
                name: svc.name_any(),
                uid: svc.meta().uid.clone().unwrap_or_default(),
                controller: Some(false),
                block_owner_deletion: None,
            }]),
            ..Default::default()
        },
        spec: TaskSpec {
            task_definition: task_definition.to_string(),
            desired_status: DesiredStatus::Running,
            started_by: Some(t.deployment.clone()),
            overrides: Some(TaskOverride {
                container_overrides: Some(overrides),
                ..Default::default()
            }),
            ..Default::default()
        },
        status: None,
    }
}

/// Stops hook tasks (ECS StopTask) whose hook timed out or whose stage failed.
pub async fn stop(
    ctx: &Context,
    svc: &Service,
    names: &[String],
    reason: &str,
) -> Result<(), Error> {
    let api: Api<Task> = Api::namespaced(ctx.client.clone(), &svc.namespace().unwrap_or_default());
    let patch = serde_json::json!({"spec": {"desiredStatus": "STOPPED", "reason": reason}});
    let params = PatchParams {
        field_manager: Some(FIELD_MANAGER.into()),
        ..PatchParams::default()
    };
    for name in names {
        match api.patch(name, &params, &Patch::Merge(&patch)).await {
            Ok(_) => {}
            Err(e) if crate::error::is_not_found(&e) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}
