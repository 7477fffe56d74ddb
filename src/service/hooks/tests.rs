use std::collections::BTreeMap;

use k8s_openapi::jiff::{SignedDuration, Timestamp};

use super::action::{self, HookAction};
use super::target::{self, MAX_NAME};
use super::{HookTask, StageInput, StageOutcome, evaluate};
use crate::api::common::Opaque;
use crate::api::lifecycle_hook::{
    LifecycleHook, LifecycleHookAction, LifecycleHookDetail, LifecycleHookStatus,
    LifecycleHookTargetType, LifecycleHookTimeoutConfiguration, LifecycleStage,
};

const DEPLOYMENT: &str = "ecs-svc/3";
const STAGE: LifecycleStage = LifecycleStage::PostScaleUp;

fn t0() -> Timestamp {
    "2026-12-01T12:00:00Z".parse().unwrap()
}

fn task_hook(target: &str, stages: &[LifecycleStage]) -> LifecycleHook {
    LifecycleHook {
        hook_target_arn: Some(target.into()),
        lifecycle_stages: stages.to_vec(),
        hook_details: Some(Opaque(serde_json::json!({"suite": "smoke"}))),
        ..Default::default()
    }
}

fn pause_hook(stages: &[LifecycleStage]) -> LifecycleHook {
    LifecycleHook {
        target_type: Some(LifecycleHookTargetType::Pause),
        lifecycle_stages: stages.to_vec(),
        ..Default::default()
    }
}

fn with_timeout(
    mut hook: LifecycleHook,
    minutes: i32,
    action: LifecycleHookAction,
) -> LifecycleHook {
    hook.timeout_configuration = Some(LifecycleHookTimeoutConfiguration {
        timeout_in_minutes: Some(minutes),
        action: Some(action),
    });
    hook
}

struct World {
    hooks: Vec<LifecycleHook>,
    tasks: BTreeMap<String, HookTask>,
    previous: Vec<LifecycleHookDetail>,
    action: Option<HookAction>,
    now: Timestamp,
}

impl World {
    fn new(hooks: Vec<LifecycleHook>) -> Self {
        Self {
            hooks,
            tasks: BTreeMap::new(),
            previous: Vec::new(),
            action: None,
            now: t0(),
        }
    }

    /// Evaluates and keeps the details, as the stage machine stores them in status.
    fn step(&mut self) -> super::StageEvaluation {
        let out = evaluate(&StageInput {
            service: "web",
            deployment: DEPLOYMENT,
            stage: STAGE,
            hooks: &self.hooks,
            tasks: &self.tasks,
            previous: &self.previous,
            action: self.action.as_ref(),
            now: self.now,
        });
        self.previous = out.details.clone();
        out
    }

    fn name(&self, index: usize) -> String {
        target::task_name("web", DEPLOYMENT, STAGE, index)
    }

    fn exited(&mut self, index: usize, code: i32) {
        self.tasks.insert(
            self.name(index),
            HookTask::Stopped {
                essential_exit_codes: vec![("check".into(), Some(code))],
                stopped_reason: Some("Essential container in task exited".into()),
            },
        );
    }

    fn running(&mut self, index: usize) {
        self.tasks.insert(self.name(index), HookTask::Running);
    }

    fn later(&mut self, minutes: i64) {
        self.now += SignedDuration::from_mins(minutes);
    }
}

#[test]
fn no_hooks_at_a_stage_succeed_at_once() {
    let mut w = World::new(vec![task_hook("check", &[LifecycleStage::PreScaleUp])]);
    let out = w.step();
    assert_eq!(out.outcome, StageOutcome::Succeeded);
    assert!(out.details.is_empty());
    let mut none = World::new(vec![]);
    assert_eq!(none.step().outcome, StageOutcome::Succeeded);
}

#[test]
fn a_task_hook_runs_its_task_once_and_succeeds_on_exit_0() {
    let mut w = World::new(vec![task_hook("check:2", &[STAGE])]);
    let out = w.step();
    let StageOutcome::Run(tasks) = &out.outcome else {
        panic!("{:?}", out.outcome)
    };
    assert_eq!(tasks.len(), 1);
    assert_eq!(tasks[0].name, "web-3-hook-postscaleup-0");
    assert_eq!(tasks[0].task_definition, "check:2");
    assert_eq!(tasks[0].hook_id, "ecs-svc/3/POST_SCALE_UP/0");
    let env: BTreeMap<_, _> = tasks[0].environment.iter().cloned().collect();
    assert_eq!(env["ECS_SERVICE_NAME"], "web");
    assert_eq!(env["ECS_SERVICE_DEPLOYMENT_ID"], DEPLOYMENT);
    assert_eq!(env["ECS_LIFECYCLE_STAGE"], "POST_SCALE_UP");
    assert_eq!(env["ECS_LIFECYCLE_HOOK_DETAILS"], r#"{"suite":"smoke"}"#);
    assert_eq!(out.details[0].status, LifecycleHookStatus::InProgress);
    assert_eq!(out.details[0].task_name, None);
    assert_eq!(
        out.details[0].expires_at.0,
        t0() + SignedDuration::from_hours(24),
        "ECS's default timeout: 1440 minutes"
    );

    // Seen running: waits until the timeout, creates nothing more.
    w.running(0);
    w.later(1);
    let out = w.step();
    assert_eq!(
        out.outcome,
        StageOutcome::Wait {
            until: out.details[0].expires_at.clone()
        }
    );
    assert_eq!(
        out.details[0].task_name.as_deref(),
        Some("web-3-hook-postscaleup-0")
    );
    assert_eq!(out.details[0].started_at.0, t0(), "the start is kept");

    w.exited(0, 0);
    let out = w.step();
    assert_eq!(out.outcome, StageOutcome::Succeeded);
    assert_eq!(out.details[0].status, LifecycleHookStatus::Succeeded);
    assert!(out.details[0].ended_at.is_some());
}

#[test]
fn a_converged_stage_evaluates_to_the_same_details() {
    let mut w = World::new(vec![task_hook("check", &[STAGE]), pause_hook(&[STAGE])]);
    w.step();
    w.running(0);
    let first = w.step();
    w.later(1);
    let again = w.step();
    assert_eq!(first.details, again.details, "nothing new: no status write");
}

#[test]
fn two_hooks_at_a_stage_must_both_succeed() {
    let mut w = World::new(vec![
        task_hook("check", &[STAGE]),
        task_hook("smoke", &[LifecycleStage::PreScaleUp, STAGE]),
    ]);
    let StageOutcome::Run(tasks) = w.step().outcome else {
        panic!()
    };
    assert_eq!(tasks.len(), 2);
    assert_ne!(tasks[0].name, tasks[1].name);
    w.exited(0, 0);
    w.running(1);
    assert!(matches!(w.step().outcome, StageOutcome::Wait { .. }));
    w.exited(1, 0);
    assert_eq!(w.step().outcome, StageOutcome::Succeeded);
}

#[test]
fn a_failed_hook_fails_the_stage_and_stops_the_others() {
    let mut w = World::new(vec![
        task_hook("check", &[STAGE]),
        task_hook("smoke", &[STAGE]),
    ]);
    w.step();
    w.running(0);
    w.running(1);
    w.step();
    w.exited(0, 1);
    let out = w.step();
    let StageOutcome::Failed { reason } = &out.outcome else {
        panic!("{:?}", out.outcome)
    };
    assert!(reason.contains("check exited with 1"), "{reason}");
    assert_eq!(out.details[0].status, LifecycleHookStatus::Failed);
    assert_eq!(out.stop, vec![w.name(1)]);
}

#[test]
fn a_task_that_never_ran_fails_its_hook_with_the_stopped_reason() {
    let mut w = World::new(vec![task_hook("check", &[STAGE])]);
    w.step();
    w.tasks.insert(
        w.name(0),
        HookTask::Stopped {
            essential_exit_codes: vec![("check".into(), None)],
            stopped_reason: Some("TaskFailedToStart: image not found".into()),
        },
    );
    let out = w.step();
    assert!(matches!(out.outcome, StageOutcome::Failed { .. }));
    assert!(
        out.details[0]
            .reason
            .as_ref()
            .unwrap()
            .contains("did not run")
    );
}

#[test]
fn a_timeout_follows_its_action() {
    for (action, failed) in [
        (LifecycleHookAction::Rollback, true),
        (LifecycleHookAction::Continue, false),
    ] {
        let mut w = World::new(vec![with_timeout(task_hook("check", &[STAGE]), 5, action)]);
        w.step();
        w.running(0);
        w.later(4);
        assert!(matches!(w.step().outcome, StageOutcome::Wait { .. }));
        w.later(1);
        let out = w.step();
        assert_eq!(
            out.details[0].status,
            LifecycleHookStatus::TimedOut,
            "{action:?}"
        );
        assert_eq!(out.details[0].timeout_action, action);
        assert_eq!(
            out.stop,
            vec![w.name(0)],
            "a timed-out hook task is stopped"
        );
        assert_eq!(
            matches!(out.outcome, StageOutcome::Failed { .. }),
            failed,
            "{action:?}: {:?}",
            out.outcome
        );
        if !failed {
            assert_eq!(out.outcome, StageOutcome::Succeeded);
        }
        // The task stopping afterwards changes nothing: TIMED_OUT is final.
        w.exited(0, 143);
        assert_eq!(w.step().details, out.details);
    }
}

#[test]
fn a_pause_hook_waits_for_continue() {
    let mut w = World::new(vec![with_timeout(
        pause_hook(&[STAGE]),
        10,
        LifecycleHookAction::Rollback,
    )]);
    let out = w.step();
    assert_eq!(out.details[0].status, LifecycleHookStatus::AwaitingAction);
    assert_eq!(
        out.outcome,
        StageOutcome::Wait {
            until: k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                t0() + SignedDuration::from_mins(10)
            )
        }
    );
    assert!(!out.action_applied);
    w.action = Some(action::parse("ecs-svc/3/POST_SCALE_UP=CONTINUE").unwrap());
    w.later(2);
    let out = w.step();
    assert!(out.action_applied);
    assert_eq!(out.outcome, StageOutcome::Succeeded);
    assert_eq!(out.details[0].status, LifecycleHookStatus::Succeeded);
    assert_eq!(out.details[0].action, Some(LifecycleHookAction::Continue));
    // Handled once: the annotation left in place changes nothing more.
    let again = w.step();
    assert!(!again.action_applied);
    assert_eq!(again.details, out.details);
}

#[test]
fn a_pause_hook_rolls_back_on_rollback() {
    let mut w = World::new(vec![pause_hook(&[STAGE])]);
    w.step();
    w.action = Some(action::parse("ecs-svc/3/POST_SCALE_UP=ROLLBACK").unwrap());
    let out = w.step();
    assert!(
        matches!(out.outcome, StageOutcome::Failed { ref reason } if reason.contains("ROLLBACK"))
    );
    assert_eq!(out.details[0].status, LifecycleHookStatus::Failed);
    assert_eq!(out.details[0].action, Some(LifecycleHookAction::Rollback));
}

#[test]
fn a_pause_hook_times_out_into_its_action() {
    for (action, failed) in [
        (LifecycleHookAction::Rollback, true),
        (LifecycleHookAction::Continue, false),
    ] {
        let mut w = World::new(vec![with_timeout(pause_hook(&[STAGE]), 1, action)]);
        w.step();
        w.later(1);
        let out = w.step();
        assert_eq!(out.details[0].status, LifecycleHookStatus::TimedOut);
        assert_eq!(matches!(out.outcome, StageOutcome::Failed { .. }), failed);
        assert!(out.stop.is_empty(), "a pause has no task");
    }
}

#[test]
fn an_action_for_another_deployment_or_stage_is_ignored() {
    for other in [
        "ecs-svc/2/POST_SCALE_UP=CONTINUE",
        "ecs-svc/3/PRE_SCALE_UP=CONTINUE",
        "ecs-svc/33/POST_SCALE_UP=ROLLBACK",
    ] {
        let mut w = World::new(vec![pause_hook(&[STAGE])]);
        w.step();
        w.action = Some(action::parse(other).unwrap());
        let out = w.step();
        assert!(!out.action_applied, "{other}");
        assert_eq!(
            out.details[0].status,
            LifecycleHookStatus::AwaitingAction,
            "{other}"
        );
        assert!(matches!(out.outcome, StageOutcome::Wait { .. }), "{other}");
    }
}

#[test]
fn an_action_does_not_end_a_task_hook() {
    let mut w = World::new(vec![task_hook("check", &[STAGE])]);
    w.step();
    w.running(0);
    w.action = Some(action::parse("ecs-svc/3/POST_SCALE_UP=CONTINUE").unwrap());
    let out = w.step();
    assert!(!out.action_applied);
    assert_eq!(out.details[0].status, LifecycleHookStatus::InProgress);
}

#[test]
fn a_hook_task_deleted_by_a_user_fails_its_hook() {
    let mut w = World::new(vec![task_hook("check", &[STAGE])]);
    w.step();
    w.running(0);
    w.step();
    w.tasks.clear();
    let out = w.step();
    let StageOutcome::Failed { reason } = &out.outcome else {
        panic!("{:?}", out.outcome)
    };
    assert!(
        reason.contains("was deleted before it finished"),
        "{reason}"
    );
}

#[test]
fn a_task_not_yet_seen_is_created_again_not_failed() {
    // A create whose task a later pass does not list yet (or lost): the same name again.
    let mut w = World::new(vec![task_hook("check", &[STAGE])]);
    let first = w.step();
    let again = w.step();
    assert_eq!(first.outcome, again.outcome);
}

#[test]
fn a_lambda_target_fails_with_a_clear_reason() {
    let mut w = World::new(vec![task_hook(
        "arn:aws:lambda:us-east-1:123456789012:function:check",
        &[STAGE],
    )]);
    let out = w.step();
    let StageOutcome::Failed { reason } = &out.outcome else {
        panic!("{:?}", out.outcome)
    };
    assert!(
        reason.contains("Lambda function, which cannot run here"),
        "{reason}"
    );
}

#[test]
fn a_task_that_could_not_be_created_fails_its_hook() {
    let mut w = World::new(vec![task_hook("missing", &[STAGE])]);
    w.step();
    w.tasks.insert(
        w.name(0),
        HookTask::NotCreated("task definition missing not found in namespace shop".into()),
    );
    let out = w.step();
    assert!(
        matches!(out.outcome, StageOutcome::Failed { ref reason } if reason.contains("not found"))
    );
}

#[test]
fn targets_name_task_definitions() {
    assert_eq!(target::task_definition("check").unwrap(), "check");
    assert_eq!(target::task_definition("check:12").unwrap(), "check:12");
    assert_eq!(
        target::task_definition("arn:aws:ecs:us-east-1:123456789012:task-definition/check:12")
            .unwrap(),
        "check:12"
    );
    assert_eq!(
        target::task_definition("arn:aws-cn:ecs:cn-north-1:123456789012:task-definition/check")
            .unwrap(),
        "check"
    );
    for bad in [
        "arn:aws:ecs:us-east-1:123456789012:service/web",
        "arn:aws:s3:::bucket",
        "Check",
        "check:0",
        "check:x",
        "",
    ] {
        assert!(target::task_definition(bad).is_err(), "{bad}");
    }
    assert!(
        target::task_definition("arn:aws:lambda:us-east-1:1:function:f")
            .unwrap_err()
            .contains("Lambda")
    );
}

#[test]
fn task_names_are_deterministic_distinct_and_bounded() {
    let long = "a".repeat(52);
    let mut names = std::collections::BTreeSet::new();
    for service in ["web", long.as_str(), &format!("{}b", "a".repeat(51))] {
        for stage in LifecycleStage::ALL {
            for index in [0, 9] {
                let name = target::task_name(service, "ecs-svc/123456", stage, index);
                assert!(name.len() <= MAX_NAME, "{name}");
                assert!(
                    name.chars().next().unwrap().is_ascii_alphanumeric()
                        && name.chars().last().unwrap().is_ascii_alphanumeric(),
                    "{name}"
                );
                assert_eq!(
                    name,
                    target::task_name(service, "ecs-svc/123456", stage, index)
                );
                assert!(names.insert(name.clone()), "{name} twice");
            }
        }
    }
}

#[test]
fn actions_parse_in_ecs_words() {
    assert_eq!(
        action::parse("ecs-svc/3/POST_TEST_TRAFFIC_SHIFT=ROLLBACK").unwrap(),
        HookAction {
            deployment: "ecs-svc/3".into(),
            stage: LifecycleStage::PostTestTrafficShift,
            action: LifecycleHookAction::Rollback,
        }
    );
    let formatted = action::format(
        "ecs-svc/3",
        LifecycleStage::PreScaleUp,
        LifecycleHookAction::Continue,
    );
    assert_eq!(
        action::parse(&formatted).unwrap().stage,
        LifecycleStage::PreScaleUp
    );
    for bad in [
        "ecs-svc/3/POST_SCALE_UP",
        "ecs-svc/3/POST_SCALE_UP=continue",
        "ecs-svc/3/BAKE_TIME=CONTINUE",
        "POST_SCALE_UP=CONTINUE",
        "/POST_SCALE_UP=CONTINUE",
    ] {
        let err = action::parse(bad).unwrap_err();
        assert!(
            err.contains("expected '<deployment id>/<lifecycle stage>=CONTINUE'"),
            "{bad}: {err}"
        );
    }
}

#[test]
fn hook_tasks_are_not_service_tasks() {
    use crate::api::{Service, ServiceSpec};
    use kube::ResourceExt;
    let mut svc = Service::new("web", ServiceSpec::default());
    svc.metadata.namespace = Some("shop".into());
    svc.metadata.uid = Some("uid-1".into());
    let create = super::TaskToCreate {
        name: "web-3-hook-postscaleup-0".into(),
        hook_id: "ecs-svc/3/POST_SCALE_UP/0".into(),
        task_definition: "check".into(),
        deployment: DEPLOYMENT.into(),
        environment: vec![("ECS_LIFECYCLE_STAGE".into(), "POST_SCALE_UP".into())],
    };
    let task = super::tasks::build(&svc, &create, "check:2", &["a".into(), "b".into()]);
    assert!(!task.labels().contains_key(crate::labels::SERVICE));
    assert!(super::is_hook_task(&task));
    assert!(!crate::service::build::controlled_by(&task, &svc));
    let owner = &task.owner_references()[0];
    assert_eq!(owner.uid, "uid-1");
    assert_eq!(owner.controller, Some(false));
    assert_eq!(task.spec.task_definition, "check:2");
    assert_eq!(task.spec.started_by.as_deref(), Some(DEPLOYMENT));
    let overrides = task.spec.overrides.unwrap().container_overrides.unwrap();
    assert_eq!(overrides.len(), 2, "every container gets the payload");
}

#[test]
fn a_hook_id_becomes_the_action_of_its_stage() {
    assert_eq!(
        action::for_hook_id(
            "ecs-svc/3",
            "ecs-svc/3/POST_TEST_TRAFFIC_SHIFT/0",
            "ROLLBACK"
        )
        .unwrap(),
        "ecs-svc/3/POST_TEST_TRAFFIC_SHIFT=ROLLBACK"
    );
    for bad in [
        "ecs-svc/2/POST_SCALE_UP/0",
        "ecs-svc/3/POST_SCALE_UP",
        "ecs-svc/3/NOPE/0",
        "x",
    ] {
        assert!(
            action::for_hook_id("ecs-svc/3", bad, "CONTINUE").is_err(),
            "{bad}"
        );
    }
    assert!(action::for_hook_id("ecs-svc/3", "ecs-svc/3/POST_SCALE_UP/0", "STOP").is_err());
}
