//! Tasks per availability zone: balance, shortest and longest zones.

use std::collections::BTreeMap;

use super::tasks::TaskView;

/// Tasks per zone over `zones` (each present, possibly 0); tasks in other zones are not counted.
pub(crate) fn counts<'a>(
    zones: &[String],
    tasks: impl IntoIterator<Item = &'a TaskView>,
) -> BTreeMap<String, usize> {
    let mut counts: BTreeMap<String, usize> = zones.iter().map(|z| (z.clone(), 0)).collect();
    for t in tasks {
        if let Some(n) = t.zone.as_ref().and_then(|z| counts.get_mut(z)) {
            *n += 1;
        }
    }
    counts
}

/// Most minus fewest tasks in a zone.
pub(crate) fn skew(counts: &BTreeMap<String, usize>) -> usize {
    let max = counts.values().max().copied().unwrap_or(0);
    let min = counts.values().min().copied().unwrap_or(0);
    max - min
}

/// The zone with the fewest tasks (the first by name among equals).
pub(crate) fn shortest(counts: &BTreeMap<String, usize>) -> Option<String> {
    counts
        .iter()
        .min_by_key(|(_, n)| **n)
        .map(|(z, _)| z.clone())
}

/// The most tasks any zone has.
pub(crate) fn longest(counts: &BTreeMap<String, usize>) -> usize {
    counts.values().max().copied().unwrap_or(0)
}

/// For events, in zone order.
pub(crate) fn listed(counts: &BTreeMap<String, usize>) -> Vec<(String, usize)> {
    counts.iter().map(|(z, n)| (z.clone(), *n)).collect()
}

/// The zones a deployment's launches go to, one after another: each to the zone with the fewest
/// of its tasks so far, the launches before it counted.
pub(crate) struct Launches(Option<BTreeMap<String, usize>>);

impl Launches {
    /// Launches balancing `counts` (tasks per zone).
    pub(crate) fn balancing(counts: BTreeMap<String, usize>) -> Self {
        Self(Some(counts))
    }

    /// For a deployment whose live tasks are `tasks`: balanced over the input's zones when the
    /// service spreads across zones and there are several, otherwise left to the scheduler.
    pub(crate) fn of<'a>(
        input: &super::Input,
        tasks: impl IntoIterator<Item = &'a TaskView>,
    ) -> Self {
        Self((input.zone_spread && input.zones.len() >= 2).then(|| counts(&input.zones, tasks)))
    }

    /// The zone of the next launch (None: no preference).
    pub(crate) fn next(&mut self) -> Option<String> {
        let counts = self.0.as_mut()?;
        let zone = shortest(counts)?;
        *counts.entry(zone.clone()).or_default() += 1;
        Some(zone)
    }
}
