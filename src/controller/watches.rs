//! Watch streams whose every failure and success is recorded in [`crate::health::Watches`], under a
//! name saying which controller watches what.

use std::fmt::Debug;
use std::sync::Arc;

use std::time::Duration;

use futures::{Stream, StreamExt};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Resource};
use serde::de::DeserializeOwned;

use super::backoff::{Hint, Schedule};
use crate::admin::Admin;

/// The name of `controller`'s watch of `api` (its URL names the kind and the namespace).
pub fn name<K: Resource>(controller: &str, api: &Api<K>) -> String {
    format!("{controller}: {}", api.resource_url())
}

/// [`watcher`] of `api`, recorded under `name`, retried after [`RETRY`] when it fails. For a
/// metadata-only watch, give an `Api<PartialObjectMeta<K>>`.
pub fn watch<K>(
    api: Api<K>,
    config: watcher::Config,
    name: String,
    admin: Arc<Admin>,
) -> impl Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send + 'static
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + 'static,
{
    let retry = Retry::new(name.clone());
    recorded(watcher(api, config), name, admin).backoff(retry)
}

/// How a failed watch is retried: 1 s doubling to 5 s, jittered. Short, so the operator sees changes
/// again within seconds of the API server coming back (kube-runtime's default grows to 30 s, and
/// more with jitter, and an outage plus the 410 after it walk it up); never a tight loop.
pub const RETRY: Schedule = Schedule {
    first: Duration::from_secs(1),
    cap: Duration::from_secs(5),
    jitter: 0.2,
};

/// [`RETRY`] for one watch; any event from the watch starts it over.
pub struct Retry {
    name: String,
    failures: u32,
}

impl Retry {
    pub fn new(name: String) -> Self {
        Self { name, failures: 0 }
    }
}

impl Iterator for Retry {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        self.failures = self.failures.saturating_add(1);
        let unit = super::backoff::unit_random(&self.name, self.failures);
        Some(RETRY.delay(self.failures, unit, Hint::default()))
    }
}

impl kube::runtime::utils::Backoff for Retry {
    fn reset(&mut self) {
        self.failures = 0;
    }
}

fn recorded<K: Send + 'static>(
    stream: impl Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send + 'static,
    name: String,
    admin: Arc<Admin>,
) -> impl Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send + 'static {
    stream.inspect(move |event| match event {
        // `Init` only announces a (re)list, before it is tried: not a sign the watch works.
        Ok(watcher::Event::Init) => {}
        Ok(_) => admin.watches.succeeded(&name),
        Err(e) => {
            tracing::warn!(watch = %name, error = %e, "watch failed");
            admin.watches.failed(&name, e)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::runtime::utils::Backoff;

    #[test]
    fn a_failing_watch_retries_within_seconds_and_never_in_a_tight_loop() {
        let mut retry = Retry::new("service: /apis/ecs.operator.dev/v1alpha1/services".into());
        let delays: Vec<Duration> = (0..8).map(|_| retry.next().unwrap()).collect();
        assert!(
            delays.iter().all(|d| *d >= Duration::from_millis(800)),
            "{delays:?}"
        );
        assert!(
            delays.iter().all(|d| *d <= Duration::from_secs(5)),
            "{delays:?}"
        );
        assert!(delays[7] >= Duration::from_secs(4), "it grows: {delays:?}");
        retry.reset();
        assert!(retry.next().unwrap() <= Duration::from_millis(1200));
    }
}
