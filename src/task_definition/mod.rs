//! The TaskDefinition controller: registers a new immutable revision for every spec change and keeps
//! the status (revisions, ACTIVE/INACTIVE, fields not honoured) up to date.

pub mod read;
pub mod revision;
pub mod status;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::apps::v1::ControllerRevision;
use k8s_openapi::apimachinery::pkg::runtime::RawExtension;
use kube::api::{Api, ListParams, ObjectMeta, PostParams};
use kube::core::PartialObjectMeta;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Resource, ResourceExt};
use tracing::info;

use crate::api::task_definition::TaskDefinitionState;
use crate::api::{TaskDefinition, TaskDefinitionSpec};
use crate::context::Context;
use crate::controller::Kind;
use crate::controller::decode::Decoded;
use crate::controller::frame::Frame;
use crate::error::{Error, is_conflict};
use crate::labels;
use revision::{TaskDefinitionRef, object_name, parse_inactive, spec_hash};

/// Field manager of the status this controller writes.
const STATUS_MANAGER: &str = "ecs-operator/taskdefinition-status";
/// Annotation on a ControllerRevision: the spec hash it was registered with.
const HASH: &str = "ecs.operator.dev/spec-hash";

/// Runs the controller for `api` (one namespace, or all) until `shutdown` resolves.
pub async fn run(
    api: Api<Decoded<TaskDefinition>>,
    revisions: Api<PartialObjectMeta<ControllerRevision>>,
    ctx: Arc<Context>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    let frame = Frame::new(
        Kind::new("taskdefinition", false, |ctx| &ctx.task_definition_events),
        api,
        ctx,
    );
    let revisions = frame
        .watch(
            &revisions,
            watcher::Config::default().labels(labels::MANAGED_SELECTOR),
        )
        .touched_objects();
    frame
        .triggers(|c| c.owns_stream(revisions))
        .run(async {}, shutdown, reconcile)
        .await;
}

async fn reconcile(cached: Arc<TaskDefinition>, ctx: Arc<Context>) -> Result<Action, Error> {
    let ns = cached.namespace().unwrap_or_default();
    // Decide on a fresh read: the status write is conditional on the version decided on, and the
    // cache can lag for a while (a watch cut by an API server restart).
    let tds: Api<TaskDefinition> = Api::namespaced(ctx.client.clone(), &ns);
    let Some(td) = tds.get_opt(&cached.name_any()).await? else {
        return Ok(Action::await_change());
    };
    // A definition being deleted registers nothing more (its revisions go with it, or are orphaned).
    if td.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let family = td.name_any();
    let api: Api<ControllerRevision> = Api::namespaced(ctx.client.clone(), &ns);
    let list = api
        .list(&ListParams::default().labels(&format!("{}={family}", labels::TASK_DEFINITION)))
        .await?;
    // Revisions left by an earlier TaskDefinition of this family (deleted with --cascade=orphan) are
    // not adopted, but their numbers stay taken: revision numbers are never reused.
    let taken = list.items.iter().map(|r| r.revision).max().unwrap_or(0);
    let mut registered: Vec<ControllerRevision> = list
        .items
        .into_iter()
        .filter(|r| revision::controlled_by(r, &td))
        .collect();
    registered.sort_by_key(|r| r.revision);

    let hash = spec_hash(&td.spec);
    let latest_hash = registered
        .last()
        .and_then(|r| r.annotations().get(HASH).cloned());
    if latest_hash.as_deref() != Some(hash.as_str()) {
        // Numbers are never reused: the high-water mark is the largest of what status recorded and what
        // exists (a deleted ControllerRevision must not free its number).
        let high = td
            .status
            .as_ref()
            .and_then(|s| s.latest_revision)
            .unwrap_or(0)
            .max(taken);
        let mut next = high + 1;
        let mut skipped = Vec::new();
        let created = loop {
            match api
                .create(&PostParams::default(), &revision_object(&td, next, &hash)?)
                .await
            {
                Ok(created) => break created,
                Err(e) if is_conflict(&e) => {
                    let name = object_name(&family, next);
                    match api.get_opt(&name).await? {
                        // Ours: a previous pass registered it; read it back on the next one.
                        Some(r) if revision::controlled_by(&r, &td) => {
                            return Ok(Action::requeue(Duration::from_millis(200)));
                        }
                        // Someone else's object holds the name: never touched, the number skipped.
                        Some(_) if skipped.len() < MAX_SKIPPED_NAMES => {
                            skipped.push(name);
                            next += 1;
                        }
                        Some(_) => {
                            let message = format!(
                                "cannot register {family}:{next}: ControllerRevisions {} exist and belong to something else",
                                skipped.join(", ")
                            );
                            publish(
                                &ctx,
                                &td,
                                EventType::Warning,
                                "RevisionNameConflict",
                                message,
                            )
                            .await;
                            return Ok(Action::requeue(Duration::from_secs(60)));
                        }
                        None => return Ok(Action::requeue(Duration::from_millis(200))),
                    }
                }
                Err(e) => return Err(e.into()),
            }
        };
        if !skipped.is_empty() {
            publish(
                &ctx,
                &td,
                EventType::Warning,
                "RevisionNameConflict",
                format!(
                    "ControllerRevisions {} exist and do not belong to this task definition: left untouched, their numbers skipped",
                    skipped.join(", ")
                ),
            )
            .await;
        }
        info!(taskdefinition = %family, revision = next, "registered");
        publish(
            &ctx,
            &td,
            EventType::Normal,
            "Registered",
            format!("registered task definition {family}:{next}"),
        )
        .await;
        registered.push(created);
    }

    let revisions: Vec<_> = registered
        .iter()
        .map(|r| (r.revision, r.metadata.creation_timestamp.clone()))
        .collect();
    let not_honoured = crate::translate::not_honoured(&td.spec);
    let invalid = crate::translate::translate(&td.spec, None)
        .err()
        .map(|e| e.to_string());
    let status = status::compute(
        &td,
        status::Registered {
            revisions: &revisions,
            inactive: parse_inactive(
                td.annotations()
                    .get(labels::INACTIVE_REVISIONS)
                    .map(String::as_str),
            ),
            not_honoured,
            invalid,
        },
    );
    let prev = td.status.clone().unwrap_or_default();
    if prev.not_honoured != status.not_honoured && !status.not_honoured.is_empty() {
        let fields: Vec<_> = status
            .not_honoured
            .iter()
            .map(|f| f.field.as_str())
            .collect();
        publish(
            &ctx,
            &td,
            EventType::Warning,
            "NotHonoured",
            format!(
                "accepted but not honoured on Kubernetes (see status.notHonoured): {}",
                fields.join(", ")
            ),
        )
        .await;
    }
    let prev_ready = crate::conditions::get(&prev.conditions, "Ready").map(|c| c.reason.clone());
    let ready = crate::conditions::get(&status.conditions, "Ready").cloned();
    if let Some(ready) =
        ready.filter(|r| r.status == "False" && Some(&r.reason) != prev_ready.as_ref())
    {
        publish(&ctx, &td, EventType::Warning, &ready.reason, ready.message).await;
    }
    if td.status.as_ref() != Some(&status) {
        crate::apply::status(&ctx.client, &td, STATUS_MANAGER, &status).await?;
    }
    Ok(Action::await_change())
}

/// How many names held by others one registration skips before it gives up and says so.
const MAX_SKIPPED_NAMES: usize = 20;

fn revision_object(
    td: &TaskDefinition,
    revision: i64,
    hash: &str,
) -> Result<ControllerRevision, Error> {
    let family = td.name_any();
    let owner = td
        .controller_owner_ref(&())
        .expect("a stored object has a uid");
    Ok(ControllerRevision {
        metadata: ObjectMeta {
            name: Some(object_name(&family, revision)),
            namespace: td.namespace(),
            labels: Some(BTreeMap::from([
                (labels::MANAGED_BY.to_string(), labels::MANAGER.to_string()),
                (labels::TASK_DEFINITION.to_string(), family.clone()),
            ])),
            annotations: Some(BTreeMap::from([(HASH.to_string(), hash.to_string())])),
            owner_references: Some(vec![owner]),
            ..Default::default()
        },
        revision,
        data: Some(RawExtension(serde_json::json!({ "spec": td.spec }))),
    })
}

/// Reads the spec registered as `family:revision` in `ns`.
pub async fn registered_spec(
    ctx: &Context,
    ns: &str,
    family: &str,
    revision: i64,
) -> Result<Option<TaskDefinitionSpec>, Error> {
    let api: Api<ControllerRevision> = Api::namespaced(ctx.client.clone(), ns);
    let Some(object) = api.get_opt(&object_name(family, revision)).await? else {
        return Ok(None);
    };
    let data = object.data.map(|d| d.0).unwrap_or_default();
    serde_json::from_value(data["spec"].clone())
        .map(Some)
        .map_err(|source| Error::Decode {
            what: format!("revision {family}:{revision}"),
            source,
        })
}

async fn publish(ctx: &Context, td: &TaskDefinition, type_: EventType, reason: &str, note: String) {
    let warning = type_ == EventType::Warning;
    crate::apply::event(
        &ctx.task_definition_events,
        td,
        warning,
        reason,
        &note,
        "Register",
    )
    .await;
}

/// Why a task definition reference cannot be used now: a condition reason and an ECS-worded message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unresolved {
    pub reason: &'static str,
    pub message: String,
}

impl Unresolved {
    fn new(reason: &'static str, message: String) -> Self {
        Self { reason, message }
    }
}

/// Resolves a reference in `ns` (never another namespace) on a fresh read of its TaskDefinition:
/// see [`resolve_on`]. Returns `(family, revision)`. (The Task controller resolves on its cache with
/// [`read::Reader`].)
pub async fn resolve(
    ctx: &Context,
    ns: &str,
    reference: &str,
    in_use: Option<i64>,
) -> Result<Result<(String, i64), Unresolved>, Error> {
    let family = TaskDefinitionRef::parse(reference).map(|r| r.family);
    let td = match family {
        Some(family) => {
            let api: Api<TaskDefinition> = Api::namespaced(ctx.client.clone(), ns);
            api.get_opt(&family).await?
        }
        None => None,
    };
    Ok(resolve_on(reference, td.as_ref(), ns, in_use))
}

/// Resolves `reference` on its family's TaskDefinition `td` (None: there is none): `family` → its
/// latest ACTIVE revision, `family:N` → N, refused when INACTIVE or not registered — except `in_use`,
/// a revision of the family the caller already runs (see [`pick`]).
pub fn resolve_on(
    reference: &str,
    td: Option<&TaskDefinition>,
    ns: &str,
    in_use: Option<i64>,
) -> Result<(String, i64), Unresolved> {
    let Some(reference) = TaskDefinitionRef::parse(reference) else {
        return Err(Unresolved::new(
            "InvalidTaskDefinition",
            format!("taskDefinition {reference:?} is not 'family' or 'family:revision'"),
        ));
    };
    let Some(td) = td else {
        return Err(Unresolved::new(
            "TaskDefinitionNotFound",
            format!("task definition {reference} not found in namespace {ns}"),
        ));
    };
    let status = td.status.clone().unwrap_or_default();
    pick(&reference, &status, ns, in_use).map(|revision| (reference.family, revision))
}

/// The revision `reference` means, from the family's status. `in_use` is a revision the caller
/// already runs; as in ECS, deregistering it does not stop what uses it:
/// - `family:N` may name an INACTIVE N if N is `in_use` (a service's own tasks, its PRIMARY);
/// - `family` keeps meaning the revision `in_use` while that is newer than every ACTIVE one, so
///   deregistering the newest revision does not by itself deploy an older one.
pub fn pick(
    reference: &TaskDefinitionRef,
    status: &crate::api::task_definition::TaskDefinitionStatus,
    ns: &str,
    in_use: Option<i64>,
) -> Result<i64, Unresolved> {
    let family = &reference.family;
    let registered = |r: i64| status.revisions.iter().find(|x| x.revision == r);
    let revision = match (reference.revision, status.latest_active_revision) {
        (Some(r), _) => r,
        (None, active) => {
            let kept = in_use
                .filter(|u| registered(*u).is_some())
                .filter(|u| active.is_none_or(|a| *u > a));
            match (kept, active) {
                (Some(u), _) => return Ok(u),
                (None, Some(a)) => a,
                (None, None) if status.latest_revision.is_some() => {
                    return Err(Unresolved::new(
                        "TaskDefinitionInactive",
                        format!(
                            "task definition {reference} has no ACTIVE revision: every revision is deregistered"
                        ),
                    ));
                }
                (None, None) => {
                    return Err(Unresolved::new(
                        "TaskDefinitionNotRegistered",
                        format!("task definition {reference} has no registered revision yet"),
                    ));
                }
            }
        }
    };
    match registered(revision) {
        Some(r) if r.status == TaskDefinitionState::Inactive && in_use != Some(revision) => {
            Err(Unresolved::new(
                "TaskDefinitionInactive",
                format!(
                    "task definition {family}:{revision} is INACTIVE (deregistered): it cannot be used for new tasks"
                ),
            ))
        }
        Some(_) => Ok(revision),
        None => Err(Unresolved::new(
            "TaskDefinitionNotFound",
            format!("task definition {family}:{revision} not found in namespace {ns}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::task_definition::{RevisionStatus, TaskDefinitionStatus};

    /// Revisions 1..=n, those in `inactive` deregistered.
    fn family(n: i64, inactive: &[i64]) -> TaskDefinitionStatus {
        let revisions: Vec<RevisionStatus> = (1..=n)
            .map(|r| RevisionStatus {
                revision: r,
                status: if inactive.contains(&r) {
                    TaskDefinitionState::Inactive
                } else {
                    TaskDefinitionState::Active
                },
                ..Default::default()
            })
            .collect();
        TaskDefinitionStatus {
            latest_revision: (n > 0).then_some(n),
            latest_active_revision: revisions
                .iter()
                .rev()
                .find(|r| r.status == TaskDefinitionState::Active)
                .map(|r| r.revision),
            revisions,
            ..Default::default()
        }
    }

    fn pick_ref(
        reference: &str,
        status: &TaskDefinitionStatus,
        in_use: Option<i64>,
    ) -> Result<i64, &'static str> {
        pick(
            &TaskDefinitionRef::parse(reference).unwrap(),
            status,
            "ns",
            in_use,
        )
        .map_err(|e| e.reason)
    }

    #[test]
    fn a_reference_resolves_on_its_familys_task_definition() {
        let mut td = TaskDefinition::new(
            "web",
            serde_json::from_value(
                serde_json::json!({"containerDefinitions": [{"name": "web", "image": "nginx"}]}),
            )
            .unwrap(),
        );
        td.status = Some(family(3, &[3]));
        let on = |reference: &str, td: Option<&TaskDefinition>| {
            resolve_on(reference, td, "ns", None).map_err(|e| e.reason)
        };
        assert_eq!(on("web", Some(&td)), Ok(("web".to_string(), 2)));
        assert_eq!(on("web:1", Some(&td)), Ok(("web".to_string(), 1)));
        assert_eq!(on("web:3", Some(&td)), Err("TaskDefinitionInactive"));
        assert_eq!(on("web", None), Err("TaskDefinitionNotFound"));
        assert_eq!(on("web:0", Some(&td)), Err("InvalidTaskDefinition"));
    }

    #[test]
    fn family_means_the_latest_active_revision() {
        assert_eq!(pick_ref("web", &family(3, &[]), None), Ok(3));
        assert_eq!(pick_ref("web", &family(3, &[3]), None), Ok(2));
        assert_eq!(
            pick_ref("web", &family(3, &[1, 2, 3]), None),
            Err("TaskDefinitionInactive")
        );
        assert_eq!(
            pick_ref("web", &family(0, &[]), None),
            Err("TaskDefinitionNotRegistered")
        );
    }

    #[test]
    fn deregistering_the_newest_revision_does_not_move_what_runs_it() {
        // The service runs web:3; web:3 is deregistered: it keeps web:3, it does not deploy web:2.
        assert_eq!(pick_ref("web", &family(3, &[3]), Some(3)), Ok(3));
        assert_eq!(pick_ref("web", &family(3, &[1, 2, 3]), Some(3)), Ok(3));
        // A newer ACTIVE revision is a new deployment as usual.
        assert_eq!(pick_ref("web", &family(4, &[3]), Some(3)), Ok(4));
        assert_eq!(pick_ref("web", &family(3, &[]), Some(2)), Ok(3));
        // What runs must still be registered.
        assert_eq!(pick_ref("web", &family(2, &[]), Some(7)), Ok(2));
    }

    #[test]
    fn an_inactive_revision_is_only_for_what_already_uses_it() {
        assert_eq!(
            pick_ref("web:2", &family(3, &[2]), None),
            Err("TaskDefinitionInactive")
        );
        assert_eq!(
            pick_ref("web:2", &family(3, &[2]), Some(3)),
            Err("TaskDefinitionInactive")
        );
        assert_eq!(pick_ref("web:2", &family(3, &[2]), Some(2)), Ok(2));
        assert_eq!(pick_ref("web:2", &family(3, &[]), None), Ok(2));
        assert_eq!(
            pick_ref("web:9", &family(3, &[]), Some(9)),
            Err("TaskDefinitionNotFound")
        );
    }
}
