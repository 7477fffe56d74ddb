//! What a hook runs and under which name: its `hookTargetArn` as a task definition reference, and the
//! deterministic name of its Task. Pure.

use crate::api::LifecycleStage;

/// The task definition `hookTargetArn` names, as `family` or `family:revision`; or why it cannot run.
pub fn task_definition(hook_target_arn: &str) -> Result<String, String> {
    let reference = match hook_target_arn.strip_prefix("arn:") {
        None => hook_target_arn,
        Some(rest) => {
            // arn:<partition>:<service>:<region>:<account>:<resource>
            let parts: Vec<&str> = rest.splitn(5, ':').collect();
            match parts.as_slice() {
                [_, "ecs", _, _, resource] => match resource.strip_prefix("task-definition/") {
                    Some(r) => r,
                    None => return Err(not_a_task_definition(hook_target_arn)),
                },
                [_, "lambda", ..] => {
                    return Err(format!(
                        "hookTargetArn {hook_target_arn} is a Lambda function, which cannot run here: run the hook's logic as a task and name its TaskDefinition ('family', 'family:revision' or its ECS task definition ARN)"
                    ));
                }
                _ => return Err(not_a_task_definition(hook_target_arn)),
            }
        }
    };
    if crate::task_definition::revision::TaskDefinitionRef::parse(reference).is_some()
        && is_family_ref(reference)
    {
        Ok(reference.to_string())
    } else {
        Err(not_a_task_definition(hook_target_arn))
    }
}

fn not_a_task_definition(arn: &str) -> String {
    format!(
        "hookTargetArn {arn} names no TaskDefinition: give 'family', 'family:revision' or arn:aws:ecs:<region>:<account>:task-definition/family:revision"
    )
}

/// `family` a Kubernetes name (TaskDefinitions are objects named by their family), `:N` a positive number.
fn is_family_ref(s: &str) -> bool {
    let family = s.split(':').next().unwrap_or_default();
    !family.is_empty()
        && family.len() <= 253
        && family
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !family.starts_with('-')
        && !family.ends_with('-')
}

/// A short form of the stage for task names.
fn stage_code(stage: LifecycleStage) -> &'static str {
    match stage {
        LifecycleStage::ReconcileService => "reconcile",
        LifecycleStage::PreScaleUp => "prescaleup",
        LifecycleStage::PostScaleUp => "postscaleup",
        LifecycleStage::TestTrafficShift => "testshift",
        LifecycleStage::PostTestTrafficShift => "posttestshift",
        LifecycleStage::ProductionTrafficShift => "prodshift",
        LifecycleStage::PostProductionTrafficShift => "postprodshift",
    }
}

/// The longest task name (it names the task's pod, and is a label value on it).
pub const MAX_NAME: usize = 63;

/// The Task of hook `index` at `stage` of `deployment` (`ecs-svc/N`): `<service>-<N>-hook-<stage>-<index>`,
/// the service name shortened (and made unique by a hash of it) when the whole would pass 63 characters.
/// The same hook run always gets the same name, so a replay's create is refused as a duplicate.
pub fn task_name(service: &str, deployment: &str, stage: LifecycleStage, index: usize) -> String {
    let number = deployment.rsplit('/').next().unwrap_or(deployment);
    let suffix = format!("-{number}-hook-{}-{index}", stage_code(stage));
    if service.len() + suffix.len() <= MAX_NAME {
        return format!("{service}{suffix}");
    }
    let hash = format!("{:08x}", fnv1a(service.as_bytes()) as u32);
    let keep = MAX_NAME.saturating_sub(suffix.len() + hash.len() + 1);
    let head = service[..keep.min(service.len())].trim_end_matches('-');
    format!("{head}-{hash}{suffix}")
}

/// The hook run's id, `<deployment>/<STAGE>/<index>` (`ecs-svc/3/POST_SCALE_UP/0`).
pub fn hook_id(deployment: &str, stage: LifecycleStage, index: usize) -> String {
    format!("{deployment}/{stage}/{index}")
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf29ce484222325u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x100000001b3)
    })
}
