//! Watch streams whose every failure and success is recorded in [`crate::health::Watches`], under a
//! name saying which controller watches what.

use std::fmt::Debug;
use std::sync::Arc;

use futures::{Stream, StreamExt};
use kube::runtime::watcher;
use kube::{Api, Resource};
use serde::de::DeserializeOwned;

use crate::admin::Admin;

/// The name of `controller`'s watch of `api` (its URL names the kind and the namespace).
pub fn name<K: Resource>(controller: &str, api: &Api<K>) -> String {
    format!("{controller}: {}", api.resource_url())
}

/// [`watcher`] of `api`, recorded under `name`. For a metadata-only watch, give an
/// `Api<PartialObjectMeta<K>>`.
pub fn watch<K>(
    api: Api<K>,
    config: watcher::Config,
    name: String,
    admin: Arc<Admin>,
) -> impl Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send + 'static
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + 'static,
{
    recorded(watcher(api, config), name, admin)
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
