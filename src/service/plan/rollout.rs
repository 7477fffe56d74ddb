//! REPLICA: rolling deployments, self-healing, scale-in and AZ rebalancing within
//! minimumHealthyPercent / maximumPercent.

use std::cmp::Reverse;
use std::collections::BTreeMap;

use k8s_openapi::jiff::Timestamp;

use super::Start;
use super::deployments::{deployment_number, is_rollout};
use super::events::Event;
use super::tasks::{TaskState, TaskView};
use super::work::{Ctx, Launch, Outcome, Work, scale_in_key};
use super::{old, zones};
use crate::api::service::RolloutState;

pub(crate) fn plan_replica<'a>(ctx: &Ctx<'a>, work: &mut Work<'a>) -> Outcome {
    let tasks = work.tasks;
    let primary = ctx.primary.id.as_str();
    let desired = ctx.desired;
    // Stopping tasks still hold resources: they count toward maximumPercent.
    let alive = tasks.iter().filter(|t| t.is_alive()).count();
    let stopping = tasks.iter().filter(|t| t.is_stopping()).count();
    let (mine, old): (Vec<&TaskView>, Vec<&TaskView>) = tasks
        .iter()
        .filter(|t| t.is_live())
        .partition(|t| t.deployment == primary);
    let primary_healthy = mine.iter().filter(|t| t.is_healthy()).count();

    if ctx.launch == Launch::Frozen {
        // The failed deployment launches nothing more; its failing tasks (unhealthy, or not started
        // yet) go, the rest keeps serving: a RUNNING task whose health is not known yet is not failing.
        let failing: Vec<&TaskView> = mine
            .iter()
            .copied()
            .filter(|t| t.is_unhealthy() || t.state == TaskState::Pending)
            .collect();
        work.stop_in_order(&failing, failing.len(), scale_in_key);
        let kept: Vec<&TaskView> = work.kept().collect();
        work.stop_in_order(&kept, kept.len().saturating_sub(desired), scale_in_key);
        return Outcome {
            primary_healthy,
            launch_blocked: false,
            old_targets: None,
        };
    }

    // Old deployments: their unhealthy tasks stop at once, their other tasks beyond the deployment's
    // target (the not healthy ones first, healthy ones as far as minimumHealthyPercent allows);
    // oldest deployment first, then the fullest zone, then the newest. What a target still lacks
    // (tasks that stopped or were unhealthy) starts again in its own revision, before the PRIMARY's
    // tasks.
    let old_targets = old::targets(ctx, primary_healthy);
    let (old_unhealthy, old_rest): (Vec<&TaskView>, Vec<&TaskView>) =
        old.iter().copied().partition(|t| t.is_unhealthy());
    work.stop_in_order(&old_unhealthy, old_unhealthy.len(), |w, t| {
        (
            deployment_number(&t.deployment).unwrap_or(0),
            scale_in_key(w, t),
        )
    });
    let mut room = ctx.max_alive.saturating_sub(alive);
    let mut old_ids: Vec<&str> = old_rest.iter().map(|t| t.deployment.as_str()).collect();
    old_ids.extend(old_targets.keys().map(String::as_str));
    old_ids.sort_by_key(|id| deployment_number(id));
    old_ids.dedup();
    for id in old_ids {
        let target = old_targets.get(id).copied().unwrap_or(0);
        let kept: Vec<&TaskView> = old_rest
            .iter()
            .copied()
            .filter(|t| t.deployment == id)
            .collect();
        work.stop_in_order(&kept, kept.len().saturating_sub(target), scale_in_key);
        let Some(deployment) = ctx.input.deployments.iter().find(|d| d.id == id) else {
            continue;
        };
        let missing = target.saturating_sub(kept.len()).min(room);
        room -= missing;
        let mut launches = zones::Launches::of(ctx.input, kept.iter().copied());
        for _ in 0..missing {
            work.starts.push(Start {
                deployment: id.to_owned(),
                task_definition: deployment.task_definition.clone(),
                zone: launches.next(),
                rebalancing: false,
                node: None,
            });
        }
    }

    let (unhealthy, good): (Vec<&TaskView>, Vec<&TaskView>) =
        mine.iter().copied().partition(|t| t.is_unhealthy());
    // A task started to rebalance into a zone with no room moves nothing: it holds no place (a task
    // lost meanwhile is replaced) and, while it waits to fail to start, no other rebalancing starts.
    let good: Vec<&TaskView> = good.into_iter().filter(|t| !t.stuck_rebalancing).collect();
    let need = desired.saturating_sub(good.len());
    let launching = ctx.launch == Launch::Allowed;
    let mut starts = if launching { need.min(room) } else { 0 };

    // Unhealthy tasks: replaced first where maximumPercent allows, each stopped once a replacement is
    // healthy; where no replacement can start, stopped one at a time to make room.
    let covered = (unhealthy.len() + primary_healthy).saturating_sub(desired);
    let mut replace = covered.min(unhealthy.len());
    if replace == 0 && !unhealthy.is_empty() && starts == 0 && need > 0 && stopping == 0 {
        replace = 1;
    }
    work.stop_in_order(&unhealthy, replace, scale_in_key);

    let mut pin = None;
    let mut rebalancing = false;
    if zone_aware(ctx, &mine, &old, &unhealthy, &good) {
        let mut counts = zones::counts(&ctx.input.zones, good.iter().copied());
        if good.len() > desired {
            rebalance_surplus(work, &good, good.len() - desired, &mut counts);
        } else if good.len() == desired
            && stopping == 0
            && good.iter().all(|t| t.is_healthy())
            && zones::skew(&counts) > 1
        {
            // AZ rebalancing: a task in the shortest zone first, then (as surplus) one out of the
            // longest; or, if maximumPercent leaves no room, the other way round.
            // A longest zone whose tasks are all protected from scale-in has nothing to give.
            let longest = zones::longest(&counts);
            let movable = good.iter().any(|t| {
                t.zone.as_ref().and_then(|z| counts.get(z)) == Some(&longest)
                    && !work.is_protected(t)
            });
            if room > 0 && movable {
                work.events.push(Event::NotAzBalanced {
                    zones: zones::listed(&counts),
                });
                starts = 1;
                rebalancing = true;
            } else if room == 0 {
                let candidates: Vec<&TaskView> = good
                    .iter()
                    .copied()
                    .filter(|t| t.zone.as_ref().and_then(|z| counts.get(z)) == Some(&longest))
                    .collect();
                if candidates.iter().any(|t| work.can_stop(t)) {
                    work.events.push(Event::NotAzBalanced {
                        zones: zones::listed(&counts),
                    });
                    work.stop_in_order(&candidates, 1, newest_first);
                }
            }
        }
        pin = Some(counts);
    } else if good.len() > desired {
        work.stop_in_order(&good, good.len() - desired, scale_in_key);
    }

    // Each launch goes to the zone with the fewest of the deployment's tasks (ECS places each task
    // it starts by the service's strategy): a deployment starts balanced, with nothing left for AZ
    // rebalancing to move afterwards.
    let mut launches = match pin {
        Some(counts) => zones::Launches::balancing(counts),
        None => zones::Launches::of(ctx.input, good.iter().copied()),
    };
    for _ in 0..starts {
        let zone = launches.next();
        work.starts.push(Start {
            deployment: primary.to_owned(),
            task_definition: ctx.primary.task_definition.clone(),
            rebalancing: rebalancing && zone.is_some(),
            zone,
            node: None,
        });
    }
    Outcome {
        primary_healthy,
        launch_blocked: !launching && need > 0,
        old_targets: Some(old_targets),
    }
}

/// AZ rebalancing applies once the service is steady: rebalancing on, several zones with nodes, the
/// PRIMARY COMPLETED and alone, nothing unhealthy or throttled, every task's zone known.
fn zone_aware(
    ctx: &Ctx<'_>,
    mine: &[&TaskView],
    old: &[&TaskView],
    unhealthy: &[&TaskView],
    good: &[&TaskView],
) -> bool {
    let zones = &ctx.input.zones;
    ctx.input.az_rebalancing
        && zones.len() >= 2
        && ctx.desired >= 1
        && ctx.launch == Launch::Allowed
        && is_rollout(ctx.primary, RolloutState::Completed)
        && old.is_empty()
        && !ctx
            .input
            .tasks
            .iter()
            .any(|t| t.is_alive() && t.deployment != ctx.primary.id)
        && unhealthy.is_empty()
        && mine.len() == good.len()
        && good
            .iter()
            .all(|t| t.zone.as_ref().is_some_and(|z| zones.contains(z)))
}

/// Surplus tasks leave from the longest zones only, so that the rest stays balanced (a pending task
/// in a short zone is the rebalancing task: it stays).
fn rebalance_surplus<'a>(
    work: &mut Work<'a>,
    good: &[&'a TaskView],
    surplus: usize,
    counts: &mut BTreeMap<String, usize>,
) {
    let mut stopped = 0;
    while stopped < surplus {
        let longest = zones::longest(counts);
        let candidates: Vec<&TaskView> = good
            .iter()
            .copied()
            .filter(|t| t.zone.as_ref().and_then(|z| counts.get(z)) == Some(&longest))
            .collect();
        let before = work.stops.len();
        work.stop_in_order(&candidates, 1, newest_first);
        let Some(stop) = work.stops.get(before) else {
            break;
        };
        if let Some(zone) = good
            .iter()
            .find(|t| t.name == stop.task)
            .and_then(|t| t.zone.as_ref())
            && let Some(n) = counts.get_mut(zone)
        {
            *n -= 1;
        }
        stopped += 1;
    }
    if stopped == surplus && zones::skew(counts) <= 1 {
        work.balanced = Some(Event::AzBalanced {
            zones: zones::listed(counts),
        });
    }
}

/// Within a zone: not healthy first, then the newest.
fn newest_first<'a>(_: &Work<'_>, t: &'a TaskView) -> (u8, Reverse<Timestamp>, Reverse<&'a str>) {
    (
        t.stop_rank(),
        Reverse(t.created_at),
        Reverse(t.name.as_str()),
    )
}
