//! Task scale-in protection (ECS UpdateTaskProtection / GetTaskProtection), declared by the annotation
//! `ecs.operator.dev/scale-in-protection` whose value is the RFC 3339 time the protection expires.
//!
//! ECS clears `protectionEnabled` once `expiresInMinutes` (1 to 2,880, 120 by default) have passed; here
//! the expiry is in the annotation, so protection ends by itself at that instant and removing the
//! annotation ends it at once.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::{SignedDuration, Timestamp};

use crate::api::task::TaskProtection;
use crate::labels::SCALE_IN_PROTECTION;

/// ECS's default protection period, in minutes.
pub const DEFAULT_EXPIRES_IN_MINUTES: i64 = 120;
/// ECS's longest protection period, in minutes (48 h).
pub const MAX_EXPIRES_IN_MINUTES: i64 = 2880;

/// What the annotation says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Protection {
    /// No annotation.
    Absent,
    /// Protected until then (in the future).
    Until(Timestamp),
    /// The expiry has passed.
    Expired(Timestamp),
    /// Not an RFC 3339 time: treated as unprotected.
    Invalid(String),
}

impl Protection {
    /// Reads the annotation at `now`.
    pub fn read(annotations: Option<&BTreeMap<String, String>>, now: Timestamp) -> Self {
        let Some(value) = annotations.and_then(|a| a.get(SCALE_IN_PROTECTION)) else {
            return Protection::Absent;
        };
        match value.trim().parse::<Timestamp>() {
            Ok(until) if until > now => Protection::Until(until),
            Ok(until) => Protection::Expired(until),
            Err(_) => Protection::Invalid(value.clone()),
        }
    }

    /// The annotation's expiry, if it is a time (past or future).
    pub fn expiry_of(annotations: Option<&BTreeMap<String, String>>) -> Option<Timestamp> {
        annotations?.get(SCALE_IN_PROTECTION)?.trim().parse().ok()
    }

    /// The expiry while protected.
    pub fn until(&self) -> Option<Timestamp> {
        match self {
            Protection::Until(t) => Some(*t),
            _ => None,
        }
    }

    /// `status.protection` (ECS ProtectedTask): None while the annotation never was set.
    pub fn status(&self, previous: Option<&TaskProtection>) -> Option<TaskProtection> {
        match self {
            // Whole seconds, as the API server stores times: otherwise every pass would differ from
            // what was written, and write again.
            Protection::Until(t) => Some(TaskProtection {
                protection_enabled: true,
                expiration_date: Timestamp::from_second(t.as_second()).ok().map(Time),
            }),
            Protection::Absent if previous.is_none() => None,
            _ => Some(TaskProtection::default()),
        }
    }

    /// The `ScaleInProtection` condition: (status, reason, message); None while the annotation never
    /// was set.
    pub fn condition(&self, had_condition: bool) -> Option<(bool, &'static str, String)> {
        Some(match self {
            Protection::Absent if !had_condition => return None,
            Protection::Absent => (
                false,
                "NotProtected",
                format!("no {SCALE_IN_PROTECTION} annotation"),
            ),
            Protection::Until(t) => (true, "Protected", format!("protected until {t}")),
            Protection::Expired(t) => (false, "Expired", format!("protection expired at {t}")),
            Protection::Invalid(v) => (
                false,
                INVALID_REASON,
                format!(
                    "{SCALE_IN_PROTECTION} must be an RFC 3339 time (e.g. 2025-01-01T12:00:00Z), got {v:?}: the task is not protected"
                ),
            ),
        })
    }
}

/// Condition reason (and Warning Event reason) for an annotation that is not a time.
pub const INVALID_REASON: &str = "InvalidScaleInProtection";

/// The annotation value for protection of `expires_in_minutes` from `now` (ECS bounds 1 to 2,880).
pub fn annotation_value(now: Timestamp, expires_in_minutes: i64) -> Result<String, String> {
    if !(1..=MAX_EXPIRES_IN_MINUTES).contains(&expires_in_minutes) {
        return Err(format!(
            "expiresInMinutes must be between 1 and {MAX_EXPIRES_IN_MINUTES}, got {expires_in_minutes}"
        ));
    }
    let until = Timestamp::from_second(now.as_second())
        .and_then(|now| now.checked_add(SignedDuration::from_mins(expires_in_minutes)))
        .map_err(|e| e.to_string())?;
    Ok(until.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_second(1_700_000_000 + secs).unwrap()
    }

    fn annotated(value: &str) -> BTreeMap<String, String> {
        BTreeMap::from([(SCALE_IN_PROTECTION.to_string(), value.to_string())])
    }

    #[test]
    fn absent_future_past_and_invalid() {
        let now = at(0);
        assert_eq!(Protection::read(None, now), Protection::Absent);
        let until = at(60);
        assert_eq!(
            Protection::read(Some(&annotated(&until.to_string())), now),
            Protection::Until(until)
        );
        assert_eq!(
            Protection::read(Some(&annotated(&until.to_string())), at(60)),
            Protection::Expired(until),
            "protection ends at the expiry"
        );
        assert_eq!(
            Protection::read(Some(&annotated("tomorrow")), now),
            Protection::Invalid("tomorrow".into())
        );
    }

    #[test]
    fn status_times_are_whole_seconds_as_stored() {
        let until = at(60) + SignedDuration::from_millis(250);
        assert_eq!(
            Protection::Until(until)
                .status(None)
                .unwrap()
                .expiration_date,
            Some(Time(at(60)))
        );
        assert_eq!(
            annotation_value(at(0) + SignedDuration::from_millis(900), 1).unwrap(),
            at(60).to_string()
        );
    }

    #[test]
    fn the_planner_reads_the_expiry_past_or_future() {
        let until = at(60);
        assert_eq!(
            Protection::expiry_of(Some(&annotated(&until.to_string()))),
            Some(until)
        );
        assert_eq!(Protection::expiry_of(Some(&annotated("later"))), None);
        assert_eq!(Protection::expiry_of(None), None);
    }

    #[test]
    fn status_is_ecs_protected_task_shape() {
        let until = at(60);
        assert_eq!(
            Protection::Until(until).status(None),
            Some(TaskProtection {
                protection_enabled: true,
                expiration_date: Some(Time(until)),
            })
        );
        assert_eq!(Protection::Absent.status(None), None);
        let was = TaskProtection {
            protection_enabled: true,
            expiration_date: Some(Time(until)),
        };
        assert_eq!(
            Protection::Absent.status(Some(&was)),
            Some(TaskProtection::default()),
            "removing the annotation clears protectionEnabled"
        );
        assert_eq!(
            Protection::Expired(until).status(None),
            Some(TaskProtection::default())
        );
        assert_eq!(
            Protection::Invalid("x".into()).status(None),
            Some(TaskProtection::default())
        );
    }

    #[test]
    fn invalid_annotation_gets_a_condition() {
        let (ok, reason, message) = Protection::Invalid("soon".into()).condition(false).unwrap();
        assert!(!ok);
        assert_eq!(reason, INVALID_REASON);
        assert!(message.contains("\"soon\""), "{message}");
        assert_eq!(Protection::Absent.condition(false), None);
        assert!(Protection::Absent.condition(true).is_some());
    }

    #[test]
    fn expires_in_minutes_bounds() {
        let now = at(0);
        assert_eq!(
            annotation_value(now, DEFAULT_EXPIRES_IN_MINUTES).unwrap(),
            at(7200).to_string()
        );
        assert_eq!(
            annotation_value(now, MAX_EXPIRES_IN_MINUTES).unwrap(),
            at(2880 * 60).to_string()
        );
        assert!(annotation_value(now, 0).is_err());
        assert!(annotation_value(now, 2881).is_err());
    }
}
