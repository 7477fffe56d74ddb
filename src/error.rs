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
    /// The reconcile panicked: a bug, reported on the object and retried with backoff instead of
    /// taking the controller down.
    #[error("reconcile panicked: {0}")]
    Panicked(String),
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
            Error::Panicked(_) => "panic",
        }
    }

    /// What this error says about its retry: a conflict resolves at once (the next pass reads fresh),
    /// a throttled request waits at least as long as the server asked (Retry-After, 5 s when unsaid).
    /// Otherwise the controller's exponential backoff decides.
    pub fn retry_hint(&self) -> crate::controller::backoff::Hint {
        use crate::controller::backoff::Hint;
        match self {
            Error::Kube(kube::Error::Api(s)) if s.code == 409 => Hint {
                first: Some(Duration::from_millis(200)),
                ..Hint::default()
            },
            Error::Kube(kube::Error::Api(s)) if s.code == 429 => {
                let seconds = s
                    .details
                    .as_ref()
                    .map(|d| d.retry_after_seconds)
                    .filter(|s| *s > 0)
                    .unwrap_or(5);
                Hint {
                    at_least: Some(Duration::from_secs(seconds.into())),
                    ..Hint::default()
                }
            }
            // The API server is unreachable or failing (a restart, an outage): retry within seconds
            // of it coming back, whatever the object's count of failures.
            Error::Kube(kube::Error::Api(s)) if s.code >= 500 => Hint {
                at_most: Some(API_DOWN_RETRY),
                ..Hint::default()
            },
            Error::Kube(kube::Error::HyperError(_) | kube::Error::Service(_)) => Hint {
                at_most: Some(API_DOWN_RETRY),
                ..Hint::default()
            },
            _ => Hint::default(),
        }
    }
}

/// The longest wait before retrying after the API server itself failed.
const API_DOWN_RETRY: Duration = Duration::from_secs(5);

impl From<tokio::task::JoinError> for Error {
    fn from(e: tokio::task::JoinError) -> Self {
        let why = match e.try_into_panic() {
            Ok(payload) => payload
                .downcast_ref::<&str>()
                .map(|s| (*s).to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "no message".into()),
            Err(e) => e.to_string(),
        };
        Error::Panicked(why)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn api(code: u16, retry_after_seconds: Option<u32>) -> Error {
        let mut status = kube::core::Status::failure("x", "x").with_code(code);
        if let Some(seconds) = retry_after_seconds {
            status.details = Some(
                serde_json::from_value(serde_json::json!({ "retryAfterSeconds": seconds }))
                    .unwrap(),
            );
        }
        Error::Kube(kube::Error::Api(status.boxed()))
    }

    #[test]
    fn hints_follow_the_error() {
        assert_eq!(
            api(409, None).retry_hint().first,
            Some(Duration::from_millis(200))
        );
        assert_eq!(
            api(429, Some(12)).retry_hint().at_least,
            Some(Duration::from_secs(12))
        );
        assert_eq!(
            api(429, None).retry_hint().at_least,
            Some(Duration::from_secs(5))
        );
        // An API server failing or restarting: soon, whatever the object's failure count.
        assert_eq!(
            api(503, Some(3)).retry_hint().at_most,
            Some(Duration::from_secs(5))
        );
        assert_eq!(api(422, None).retry_hint(), Default::default());
        assert_eq!(api(403, None).retry_hint(), Default::default());
    }

    #[tokio::test]
    async fn a_panicked_pass_is_an_error_with_its_message() {
        let pass = tokio::spawn(async { panic!("no zone for {}", "web-1") });
        let e = Error::from(pass.await.unwrap_err());
        assert_eq!(e.category(), "panic");
        assert_eq!(e.to_string(), "reconcile panicked: no zone for web-1");
        let pass = tokio::spawn(async { panic!("static") });
        assert_eq!(
            Error::from(pass.await.unwrap_err()).to_string(),
            "reconcile panicked: static"
        );
    }
}
