//! DAEMON: one task per eligible node. A node's task is replaced by stopping it first, then starting
//! the new one (at most one task per node at any time).

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet};

use super::deployments::deployment_number;
use super::tasks::TaskView;
use super::work::{Ctx, Launch, Outcome, Work, scale_in_key};
use super::{Input, Start};

/// The nodes a DAEMON service runs on: the eligible ones, and the unavailable ones where a live task
/// of `primary` still runs.
pub(crate) fn node_count(input: &Input, primary: &str) -> usize {
    let kept = input
        .unavailable_nodes
        .iter()
        .filter(|n| !input.nodes.contains(n))
        .filter(|n| {
            input.tasks.iter().any(|t| {
                t.is_live() && t.deployment == primary && t.node.as_deref() == Some(n.as_str())
            })
        })
        .count();
    input.nodes.len() + kept
}

pub(crate) fn plan_daemon<'a>(ctx: &Ctx<'a>, work: &mut Work<'a>) -> Outcome {
    let tasks = work.tasks;
    let primary = ctx.primary.id.as_str();
    let frozen = ctx.launch == Launch::Frozen;
    let alive = tasks.iter().filter(|t| t.is_alive()).count();
    // Alive tasks per node that matches (eligible or not); the rest are on a node that is gone or no
    // longer matches.
    let eligible: BTreeSet<&str> = ctx.input.nodes.iter().map(String::as_str).collect();
    let mut by_node: BTreeMap<&str, Vec<&TaskView>> = ctx
        .input
        .nodes
        .iter()
        .chain(&ctx.input.unavailable_nodes)
        .map(|n| (n.as_str(), Vec::new()))
        .collect();
    let mut stray = Vec::new();
    for t in tasks.iter().filter(|t| t.is_alive()) {
        match t.node.as_deref().and_then(|n| by_node.get_mut(n)) {
            Some(here) => here.push(t),
            None if t.is_live() => stray.push(t),
            None => {}
        }
    }
    work.stop_in_order(&stray, stray.len(), scale_in_key);

    let mut healthy_nodes = 0;
    let mut empty = Vec::new();
    let mut old = Vec::new();
    for (&node, here) in &by_node {
        if here.is_empty() {
            // An unavailable node gets no new task.
            if eligible.contains(node) {
                empty.push(node);
            }
            continue;
        }
        let (mine, theirs): (Vec<&TaskView>, Vec<&TaskView>) = here
            .iter()
            .copied()
            .filter(|t| t.is_live())
            .partition(|t| t.deployment == primary);
        // The node keeps its healthiest (then oldest) PRIMARY task; unhealthy ones and duplicates go.
        let keep = mine
            .iter()
            .copied()
            .filter(|t| !t.is_unhealthy())
            .min_by_key(|t| (Reverse(t.stop_rank()), t.created_at, t.name.as_str()));
        if keep.is_some_and(TaskView::is_healthy) {
            healthy_nodes += 1;
        }
        let extra: Vec<&TaskView> = mine
            .iter()
            .copied()
            .filter(|t| match ctx.launch {
                // A failed deployment's failing tasks go; nothing replaces them.
                Launch::Frozen => !t.is_healthy(),
                _ => Some(t.name.as_str()) != keep.map(|k| k.name.as_str()),
            })
            .collect();
        work.stop_in_order(&extra, extra.len(), scale_in_key);
        if !frozen {
            old.extend(theirs);
        }
    }
    // Old deployments' tasks, within minimumHealthyPercent: oldest deployment first, then by node.
    work.stop_in_order(&old, old.len(), |_, t| {
        (
            deployment_number(&t.deployment).unwrap_or(0),
            t.stop_rank(),
            t.node.as_deref(),
            t.name.as_str(),
        )
    });

    let launching = ctx.launch == Launch::Allowed;
    if launching {
        let room = ctx.max_alive.saturating_sub(alive);
        for node in empty.iter().take(room) {
            work.starts.push(Start {
                deployment: primary.to_owned(),
                task_definition: ctx.primary.task_definition.clone(),
                zone: None,
                rebalancing: false,
                node: Some((*node).to_owned()),
            });
        }
    }
    Outcome {
        primary_healthy: healthy_nodes,
        launch_blocked: ctx.launch == Launch::Throttled && !empty.is_empty(),
        old_targets: None,
    }
}
