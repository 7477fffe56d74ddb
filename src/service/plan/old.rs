//! Old deployments during a rolling deployment. Since November 2025 ECS replaces an unhealthy or
//! stopped task of the revision being replaced with a task of that same revision, not of the new
//! one, and applies a desiredCount change to both revisions. So the COMPLETED deployment being
//! replaced keeps a target (its `desiredCount`): what the new deployment still lacks of
//! minimumHealthyPercent healthy tasks, never more than before (a desiredCount change scales it in
//! proportion). Any other old deployment (FAILED, or replaced before it completed) targets 0.

use std::collections::BTreeMap;

use super::deployments::{deployment_number, is_rollout};
use super::work::Ctx;
use crate::api::service::{DeploymentStatus, RolloutState};

/// Each old deployment's target, by id; absent means 0.
pub(crate) fn targets(ctx: &Ctx<'_>, primary_healthy: usize) -> BTreeMap<String, usize> {
    let previous = &ctx.input.deployments;
    let desired = ctx.desired;
    // The desiredCount the targets were set for: the PRIMARY's, as last written.
    let before = previous
        .iter()
        .find(|d| d.status == DeploymentStatus::Primary)
        .and_then(|d| usize::try_from(d.desired_count).ok())
        .unwrap_or(desired);
    let min_healthy = usize::try_from(
        ctx.input
            .percents
            .min_healthy(i32::try_from(desired).unwrap_or(i32::MAX)),
    )
    .unwrap_or(0);
    let mut cap = min_healthy.saturating_sub(primary_healthy);
    let mut old: Vec<(u64, String, usize)> = previous
        .iter()
        .filter(|d| {
            d.id != ctx.primary.id
                && d.status != DeploymentStatus::Inactive
                && is_rollout(d, RolloutState::Completed)
        })
        .filter_map(|d| {
            let target = usize::try_from(d.desired_count).ok()?;
            let target = if before > 0 && before != desired {
                target.saturating_mul(desired).div_ceil(before)
            } else {
                target
            };
            Some((deployment_number(&d.id)?, d.id.clone(), target))
        })
        .collect();
    // The newest keeps its tasks first: the oldest deployment gives way first.
    old.sort_by_key(|(n, _, _)| std::cmp::Reverse(*n));
    old.into_iter()
        .map(|(_, id, target)| {
            let kept = target.min(cap);
            cap -= kept;
            (id, kept)
        })
        .filter(|(_, t)| *t > 0)
        .collect()
}
