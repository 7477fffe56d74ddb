//! What one planning pass carries: the bounds, and the stops and starts decided so far.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::jiff::Timestamp;

use crate::api::service::Deployment;

use super::events::{self, Event};
use super::tasks::TaskView;
use super::{Input, Start, Stop};

/// Whether the PRIMARY may launch tasks now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Launch {
    Allowed,
    /// Waiting out the launch backoff.
    Throttled,
    /// The circuit breaker failed the deployment (no rollback): it launches nothing more.
    Frozen,
}

/// The pass's fixed facts.
pub(crate) struct Ctx<'a> {
    pub input: &'a Input,
    pub desired: usize,
    pub max_alive: usize,
    pub primary: &'a Deployment,
    pub launch: Launch,
}

/// What the rollout logic reports besides stops and starts.
pub(crate) struct Outcome {
    /// Healthy PRIMARY tasks (DAEMON: eligible nodes with one).
    pub primary_healthy: usize,
    /// Tasks are needed but launches wait for the backoff.
    pub launch_blocked: bool,
    /// REPLICA: each old deployment's target (absent: 0), its `desiredCount`. None: the tasks it
    /// keeps.
    pub old_targets: Option<std::collections::BTreeMap<String, usize>>,
}

/// Stops and starts decided so far, and the healthy count they leave.
pub(crate) struct Work<'a> {
    pub tasks: &'a [TaskView],
    pub stopped: BTreeSet<&'a str>,
    pub stops: Vec<Stop>,
    pub starts: Vec<Start>,
    /// Events that come before the stopped/started events.
    pub events: Vec<Event>,
    /// Set when the plan leaves the zones balanced after rebalancing.
    pub balanced: Option<Event>,
    healthy_left: usize,
    min_healthy: usize,
    /// Kept live tasks per zone, maintained as tasks are stopped.
    zone_counts: BTreeMap<&'a str, usize>,
    scaling_reason: String,
    /// For task scale-in protection.
    now: Option<Timestamp>,
}

impl<'a> Work<'a> {
    pub fn new(tasks: &'a [TaskView], min_healthy: usize, primary: &str) -> Self {
        Work {
            tasks,
            stopped: BTreeSet::new(),
            stops: Vec::new(),
            starts: Vec::new(),
            events: Vec::new(),
            balanced: None,
            healthy_left: tasks.iter().filter(|t| t.is_healthy()).count(),
            min_healthy,
            zone_counts: tasks
                .iter()
                .filter(|t| t.is_live())
                .filter_map(|t| t.zone.as_deref())
                .fold(BTreeMap::new(), |mut counts, zone| {
                    *counts.entry(zone).or_default() += 1;
                    counts
                }),
            scaling_reason: events::scaling_reason(primary),
            now: None,
        }
    }

    /// Honours task scale-in protection as of `now`: a protected task is stopped only if it failed
    /// its health checks (ECS protects from scale-in and deployments, not from health replacement).
    pub fn protecting_at(mut self, now: Timestamp) -> Self {
        self.now = Some(now);
        self
    }

    /// Protected at this pass's `now`, and healthy enough for the protection to hold.
    pub fn is_protected(&self, t: &TaskView) -> bool {
        self.now.is_some_and(|now| t.is_protected(now)) && !t.is_unhealthy()
    }

    /// Live tasks not stopped by this plan.
    pub fn kept(&self) -> impl Iterator<Item = &'a TaskView> + '_ {
        self.tasks
            .iter()
            .filter(|t| t.is_live() && !self.stopped.contains(t.name.as_str()))
    }

    /// Stopping a healthy task must leave at least minimumHealthyPercent healthy; any other task
    /// can go.
    pub fn can_stop(&self, t: &TaskView) -> bool {
        t.is_live()
            && !self.stopped.contains(t.name.as_str())
            && !self.is_protected(t)
            && (!t.is_healthy() || self.healthy_left > self.min_healthy)
    }

    pub fn stop(&mut self, t: &'a TaskView) {
        if !self.stopped.insert(t.name.as_str()) {
            return;
        }
        if t.is_healthy() {
            self.healthy_left -= 1;
        }
        if let Some(n) = t.zone.as_deref().and_then(|z| self.zone_counts.get_mut(z)) {
            *n -= 1;
        }
        let reason = if t.is_unhealthy() {
            self.events.push(Event::FailedHealthChecks {
                task: t.name.clone(),
            });
            events::HEALTH_CHECK_REASON.to_owned()
        } else {
            self.scaling_reason.clone()
        };
        self.stops.push(Stop {
            task: t.name.clone(),
            reason,
        });
    }

    /// Kept tasks in `zone` (unplaced tasks count as the fullest zone: they go first).
    pub fn zone_count(&self, zone: Option<&str>) -> usize {
        match zone {
            None => usize::MAX,
            Some(z) => self.zone_counts.get(z).copied().unwrap_or(0),
        }
    }

    /// Stops up to `limit` of `candidates`, each time the stoppable one with the smallest `key`
    /// (recomputed after each stop, as zone counts change). Returns how many it stopped.
    pub fn stop_in_order<K: Ord>(
        &mut self,
        candidates: &[&'a TaskView],
        limit: usize,
        key: impl Fn(&Self, &'a TaskView) -> K,
    ) -> usize {
        let mut done = 0;
        while done < limit {
            let Some(next) = candidates
                .iter()
                .copied()
                .filter(|t| self.can_stop(t))
                .min_by_key(|t| key(self, t))
            else {
                break;
            };
            self.stop(next);
            done += 1;
        }
        done
    }
}

/// Scale-in order: unhealthy, pending, unknown health, healthy; then the zone with the most tasks;
/// then the newest.
pub(crate) fn scale_in_key<'a>(
    work: &Work<'_>,
    t: &'a TaskView,
) -> (u8, Reverse<usize>, Reverse<Timestamp>, Reverse<&'a str>) {
    (
        t.stop_rank(),
        Reverse(work.zone_count(t.zone.as_deref())),
        Reverse(t.created_at),
        Reverse(t.name.as_str()),
    )
}
