//! Kubernetes conditions with observedGeneration, changed only when they change.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;

/// Sets condition `type_` in `conditions`. `lastTransitionTime` moves only when the status flips, so
/// a reconcile that finds nothing new produces an identical list (and writes nothing).
pub fn set(
    conditions: &mut Vec<Condition>,
    type_: &str,
    status: bool,
    reason: &str,
    message: impl Into<String>,
    observed_generation: Option<i64>,
) {
    let status = if status { "True" } else { "False" }.to_string();
    let previous = conditions.iter().position(|c| c.type_ == type_);
    let last_transition_time = match previous {
        Some(i) if conditions[i].status == status => conditions[i].last_transition_time.clone(),
        _ => crate::time::now(),
    };
    let condition = Condition {
        type_: type_.to_string(),
        status,
        reason: reason.to_string(),
        message: message.into(),
        observed_generation,
        last_transition_time,
    };
    match previous {
        Some(i) => conditions[i] = condition,
        None => conditions.push(condition),
    }
}

/// The condition of type `type_`, if any.
pub fn get<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conditions.iter().find(|c| c.type_ == type_)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transition_time_moves_only_when_status_flips() {
        let mut c = Vec::new();
        set(&mut c, "Ready", false, "Pending", "waiting", Some(1));
        let first = c[0].last_transition_time.clone();
        c[0].last_transition_time.0 = first.0 - k8s_openapi::jiff::SignedDuration::from_secs(60);
        let earlier = c[0].last_transition_time.clone();
        set(&mut c, "Ready", false, "Pending", "still waiting", Some(2));
        assert_eq!(c[0].last_transition_time, earlier);
        assert_eq!(c[0].message, "still waiting");
        assert_eq!(c[0].observed_generation, Some(2));
        set(&mut c, "Ready", true, "Running", "running", Some(2));
        assert_ne!(c[0].last_transition_time, earlier);
        assert_eq!(c.len(), 1);
    }
}
