//! Timestamps as Kubernetes stores them.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

/// Now, truncated to whole seconds as the API server stores it, so that a status written and read
/// back compares equal (otherwise every reconcile would see a change and write again).
pub fn now() -> Time {
    Time(truncate(Timestamp::now()))
}

/// Truncates to whole seconds.
pub fn truncate(t: Timestamp) -> Timestamp {
    Timestamp::from_second(t.as_second()).expect("in range")
}
