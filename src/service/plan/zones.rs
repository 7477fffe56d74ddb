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
