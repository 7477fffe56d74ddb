//! The errors a reconcile can end with, and their bounded categories (for metrics and logs).

use std::time::Duration;

/// Why a reconcile failed. Problems with the user's objects are not errors: they are conditions and
/// Events; these are the failures worth a retry.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The API server refused or failed a request.
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    /// A stored object could not be read back (e.g. a revision written by another version).
    #[error("{what}: {source}")]
    Decode {
        what: String,
        source: serde_json::Error,
    },
}

impl Error {
    /// A bounded label for metrics: never an object name.
    pub fn category(&self) -> &'static str {
        match self {
            Error::Kube(kube::Error::Api(s)) if s.code == 409 => "conflict",
            Error::Kube(kube::Error::Api(s)) if s.code == 429 => "throttled",
            Error::Kube(kube::Error::Api(s)) if s.code == 404 => "not_found",
            Error::Kube(kube::Error::Api(s)) if s.code == 403 => "forbidden",
            Error::Kube(kube::Error::Api(_)) => "api",
            Error::Kube(_) => "transport",
            Error::Decode { .. } => "decode",
        }
    }

    /// How soon to retry: conflicts resolve at once, the rest back off.
    pub fn retry_after(&self) -> Duration {
        match self.category() {
            "conflict" => Duration::from_millis(200),
            "throttled" => Duration::from_secs(5),
            _ => Duration::from_secs(10),
        }
    }
}

/// Is this API error a 404?
pub fn is_not_found(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 404)
}

/// Is this API error a 409 AlreadyExists/Conflict?
pub fn is_conflict(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 409)
}
