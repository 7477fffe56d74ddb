//! The API clients of a replica under leader election: both name the replica in their User-Agent (so the
//! API server's audit log tells replicas apart), and the controllers' client is fenced.

use http::HeaderValue;
use http::header::USER_AGENT;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use kube::client::retry::RetryPolicy;
use kube::client::{ClientBuilder, ConfigExt};
use tower::retry::RetryLayer;
use tower::{BoxError, ServiceBuilder};

use crate::fence::{Fence, FenceLayer};

/// `ecs-operator/<version> (<identity>)`.
pub fn user_agent(identity: &str) -> String {
    format!("ecs-operator/{} ({identity})", env!("CARGO_PKG_VERSION"))
}

/// Adds the User-Agent header naming `identity` to every request made with `config`.
pub fn with_user_agent(mut config: kube::Config, identity: &str) -> kube::Config {
    // An identity that is not a valid header value (it comes from POD_NAME or the host name) is left out.
    if let Ok(value) = HeaderValue::from_str(&user_agent(identity)) {
        config.headers.retain(|(name, _)| name != USER_AGENT);
        config.headers.push((USER_AGENT, value));
    }
    config
}

/// A client whose writes pass `fence`. The stack is kube's default one (base URI, retries, auth, extra
/// headers, TLS and timeouts) with the fence innermost, right above the HTTP connection: kube's retries of
/// 429/503/504 back off for up to minutes, and a retry sent after the deadline must be refused too.
pub fn fenced(config: &kube::Config, fence: Fence) -> Result<kube::Client, BoxError> {
    if config.proxy_url.is_some() {
        return Err("an API proxy (proxy-url) is not supported with leader election".into());
    }
    let mut connector = HttpConnector::new();
    connector.enforce_http(false);
    let connector = config.rustls_https_connector_with_connector(connector)?;
    let mut connector = hyper_timeout::TimeoutConnector::new(connector);
    connector.set_connect_timeout(config.connect_timeout);
    connector.set_read_timeout(config.read_timeout);
    connector.set_write_timeout(config.write_timeout);
    connector.set_reset_reader_on_write(config.reset_reader_on_write);
    let http: hyper_util::client::legacy::Client<_, kube::client::Body> =
        hyper_util::client::legacy::Builder::new(TokioExecutor::new()).build(connector);
    let service = ServiceBuilder::new()
        .layer(config.base_uri_layer())
        .option_layer(
            config
                .default_retry
                .then(|| RetryLayer::new(RetryPolicy::server_retry())),
        )
        .option_layer(config.auth_layer()?)
        .layer(config.extra_headers_layer()?)
        .layer(FenceLayer(fence))
        .map_err(BoxError::from)
        .service(http);
    Ok(ClientBuilder::new(service, config.default_namespace.clone()).build())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_user_agent_names_the_replica() {
        let config = kube::Config::new("https://127.0.0.1:6443".parse().unwrap());
        let config = with_user_agent(config, "replica-a");
        let ua: Vec<_> = config
            .headers
            .iter()
            .filter(|(n, _)| n == USER_AGENT)
            .collect();
        assert_eq!(ua.len(), 1);
        assert_eq!(
            ua[0].1,
            format!("ecs-operator/{} (replica-a)", env!("CARGO_PKG_VERSION"))
        );
    }
}
