//! `networkMode`, `dnsServers`, `dnsSearchDomains`, `extraHosts` and `hostname` → the pod's network
//! settings. The containers of a pod share one network namespace, so per-container settings are merged.

use std::net::IpAddr;

use k8s_openapi::api::core::v1::{HostAlias, PodDNSConfig};

use super::TranslateError;
use super::names::{is_dns_label, is_dns_subdomain};
use super::not_honoured::{container_path, nh};
use crate::api::task_definition::{NetworkMode, NotHonouredField, TaskDefinitionSpec};

/// Kubernetes limits of a pod's resolv.conf.
const MAX_NAMESERVERS: usize = 3;
const MAX_SEARCHES: usize = 32;
const MAX_SEARCH_CHARS: usize = 2048;

/// The pod's network settings.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Network {
    pub host_network: bool,
    pub dns_policy: Option<String>,
    pub dns_config: Option<PodDNSConfig>,
    pub host_aliases: Option<Vec<HostAlias>>,
    pub hostname: Option<String>,
}

/// Whether the task uses the node's network (`networkMode: host`).
pub(crate) fn host_network(td: &TaskDefinitionSpec) -> bool {
    td.network_mode == Some(NetworkMode::Host)
}

/// Map the task's network settings.
pub(crate) fn network(
    td: &TaskDefinitionSpec,
    report: &mut Vec<NotHonouredField>,
) -> Result<Network, TranslateError> {
    let host_network = host_network(td);
    let mut nameservers: Vec<String> = Vec::new();
    let mut searches: Vec<String> = Vec::new();
    let mut aliases: Vec<HostAlias> = Vec::new();
    for (i, c) in td.container_definitions.iter().enumerate() {
        let path = container_path(i);
        for (j, server) in c.dns_servers.iter().flatten().enumerate() {
            let ip = parse_ip(server, &format!("{path}.dnsServers[{j}]"))?;
            if !nameservers.contains(&ip) {
                nameservers.push(ip);
            }
        }
        for (j, domain) in c.dns_search_domains.iter().flatten().enumerate() {
            let lower = domain.to_ascii_lowercase();
            if !is_dns_subdomain(lower.trim_end_matches('.')) {
                return Err(TranslateError::invalid(
                    format!("{path}.dnsSearchDomains[{j}]"),
                    domain,
                    "not a valid DNS domain",
                ));
            }
            if !searches.contains(&lower) {
                searches.push(lower);
            }
        }
        for (j, h) in c.extra_hosts.iter().flatten().enumerate() {
            let field = format!("{path}.extraHosts[{j}]");
            let ip = parse_ip(&h.ip_address, &format!("{field}.ipAddress"))?;
            let hostname = h.hostname.to_ascii_lowercase();
            if !is_dns_subdomain(&hostname) {
                return Err(TranslateError::invalid(
                    format!("{field}.hostname"),
                    &h.hostname,
                    "not a valid host name (letters, digits, '-' and '.')",
                ));
            }
            let alias = match aliases.iter_mut().find(|a| a.ip == ip) {
                Some(a) => a,
                None => {
                    aliases.push(HostAlias {
                        ip,
                        hostnames: Some(Vec::new()),
                    });
                    aliases.last_mut().expect("just pushed")
                }
            };
            let names = alias.hostnames.get_or_insert_with(Vec::new);
            if !names.contains(&hostname) {
                names.push(hostname);
            }
        }
    }
    if nameservers.len() > MAX_NAMESERVERS {
        return Err(TranslateError::conflict(
            "containerDefinitions[].dnsServers",
            format!(
                "the containers name {} different DNS servers; a task's containers share one resolv.conf, which holds at most {MAX_NAMESERVERS}",
                nameservers.len()
            ),
        ));
    }
    if searches.len() > MAX_SEARCHES
        || searches.iter().map(|s| s.len() + 1).sum::<usize>() > MAX_SEARCH_CHARS
    {
        return Err(TranslateError::conflict(
            "containerDefinitions[].dnsSearchDomains",
            format!(
                "the containers share one resolv.conf, which holds at most {MAX_SEARCHES} search domains and {MAX_SEARCH_CHARS} characters of them"
            ),
        ));
    }
    // ECS writes the given servers in place of the default resolv.conf.
    let dns_policy = if !nameservers.is_empty() {
        Some("None".to_string())
    } else if host_network {
        Some("ClusterFirstWithHostNet".to_string())
    } else {
        None
    };
    let dns_config = (!nameservers.is_empty() || !searches.is_empty()).then(|| PodDNSConfig {
        nameservers: (!nameservers.is_empty()).then_some(nameservers),
        searches: (!searches.is_empty()).then_some(searches),
        options: None,
    });
    Ok(Network {
        host_network,
        dns_policy,
        dns_config,
        host_aliases: (!aliases.is_empty()).then_some(aliases),
        hostname: hostname(td, host_network, report),
    })
}

fn parse_ip(s: &str, field: &str) -> Result<String, TranslateError> {
    s.trim()
        .parse::<IpAddr>()
        .map(|ip| ip.to_string())
        .map_err(|_| TranslateError::invalid(field, s, "not an IPv4 or IPv6 address"))
}

/// A pod has one hostname: a container's `hostname` is honoured only when it is the task's only
/// container, the task has its own network namespace, and the name is a DNS label.
fn hostname(
    td: &TaskDefinitionSpec,
    host_network: bool,
    report: &mut Vec<NotHonouredField>,
) -> Option<String> {
    let single = td.container_definitions.len() == 1;
    let mut out = None;
    for (i, c) in td.container_definitions.iter().enumerate() {
        let Some(name) = &c.hostname else {
            continue;
        };
        let field = format!("{}.hostname", container_path(i));
        let lower = name.to_ascii_lowercase();
        if host_network {
            report.push(nh(
                field,
                "with networkMode host the pod has the node's hostname",
            ));
        } else if !single {
            report.push(nh(
                field,
                "the containers of a pod share one hostname; it is set only for a task with one container",
            ));
        } else if !is_dns_label(&lower) {
            report.push(nh(
                field,
                format!(
                    "{name:?}: a pod hostname is one DNS label (at most 63 letters, digits and '-', no dots)"
                ),
            ));
        } else {
            out = Some(lower);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::task_definition::{ContainerDefinition, HostEntry};

    fn td(mode: Option<NetworkMode>, containers: Vec<ContainerDefinition>) -> TaskDefinitionSpec {
        TaskDefinitionSpec {
            network_mode: mode,
            container_definitions: containers,
            ..Default::default()
        }
    }

    fn c() -> ContainerDefinition {
        ContainerDefinition {
            name: "c".into(),
            image: "img".into(),
            ..Default::default()
        }
    }

    #[test]
    fn default_network_sets_nothing() {
        for mode in [
            None,
            Some(NetworkMode::Bridge),
            Some(NetworkMode::Awsvpc),
            Some(NetworkMode::None),
        ] {
            let n = network(&td(mode, vec![c()]), &mut vec![]).unwrap();
            assert_eq!(n, Network::default(), "{mode:?}");
        }
    }

    #[test]
    fn host_mode_uses_the_node_network_with_cluster_dns() {
        let n = network(&td(Some(NetworkMode::Host), vec![c()]), &mut vec![]).unwrap();
        assert!(n.host_network);
        assert_eq!(n.dns_policy.as_deref(), Some("ClusterFirstWithHostNet"));
    }

    #[test]
    fn dns_servers_replace_resolv_conf() {
        let a = ContainerDefinition {
            dns_servers: Some(vec!["10.0.0.2".into(), "1.1.1.1".into()]),
            dns_search_domains: Some(vec!["Corp.Example.com".into()]),
            ..c()
        };
        let b = ContainerDefinition {
            dns_servers: Some(vec!["1.1.1.1".into(), "2001:db8::1".into()]),
            dns_search_domains: Some(vec!["corp.example.com".into(), "svc.local".into()]),
            ..c()
        };
        let n = network(&td(Some(NetworkMode::Host), vec![a, b]), &mut vec![]).unwrap();
        assert_eq!(n.dns_policy.as_deref(), Some("None"));
        let cfg = n.dns_config.unwrap();
        assert_eq!(
            cfg.nameservers.unwrap(),
            vec!["10.0.0.2", "1.1.1.1", "2001:db8::1"]
        );
        assert_eq!(cfg.searches.unwrap(), vec!["corp.example.com", "svc.local"]);
    }

    #[test]
    fn search_domains_alone_keep_the_default_policy() {
        let a = ContainerDefinition {
            dns_search_domains: Some(vec!["example.com.".into()]),
            ..c()
        };
        let n = network(&td(None, vec![a]), &mut vec![]).unwrap();
        assert_eq!(n.dns_policy, None);
        assert_eq!(
            n.dns_config.unwrap().searches.unwrap(),
            vec!["example.com."]
        );
    }

    #[test]
    fn dns_limits_and_bad_values_are_errors() {
        let many = ContainerDefinition {
            dns_servers: Some(vec!["1.1.1.1".into(), "8.8.8.8".into(), "9.9.9.9".into()]),
            ..c()
        };
        let more = ContainerDefinition {
            dns_servers: Some(vec!["8.8.4.4".into()]),
            ..c()
        };
        assert!(network(&td(None, vec![many, more]), &mut vec![]).is_err());
        let bad = ContainerDefinition {
            dns_servers: Some(vec!["dns.example.com".into()]),
            ..c()
        };
        let e = network(&td(None, vec![bad]), &mut vec![]).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("containerDefinitions[0].dnsServers[0]")
        );
        let bad = ContainerDefinition {
            dns_search_domains: Some(vec!["bad_domain".into()]),
            ..c()
        };
        assert!(network(&td(None, vec![bad]), &mut vec![]).is_err());
    }

    #[test]
    fn extra_hosts_are_grouped_by_ip() {
        let a = ContainerDefinition {
            extra_hosts: Some(vec![
                HostEntry {
                    hostname: "DB".into(),
                    ip_address: "10.0.0.5".into(),
                },
                HostEntry {
                    hostname: "cache".into(),
                    ip_address: "10.0.0.6".into(),
                },
            ]),
            ..c()
        };
        let b = ContainerDefinition {
            extra_hosts: Some(vec![
                HostEntry {
                    hostname: "db.internal".into(),
                    ip_address: "10.0.0.5".into(),
                },
                HostEntry {
                    hostname: "db".into(),
                    ip_address: "10.0.0.5".into(),
                },
            ]),
            ..c()
        };
        let n = network(&td(None, vec![a, b]), &mut vec![]).unwrap();
        let aliases = n.host_aliases.unwrap();
        assert_eq!(aliases.len(), 2);
        assert_eq!(aliases[0].ip, "10.0.0.5");
        assert_eq!(
            aliases[0].hostnames.as_deref().unwrap(),
            ["db", "db.internal"]
        );
        assert_eq!(aliases[1].hostnames.as_deref().unwrap(), ["cache"]);
        let bad = ContainerDefinition {
            extra_hosts: Some(vec![HostEntry {
                hostname: "x".into(),
                ip_address: "not-an-ip".into(),
            }]),
            ..c()
        };
        let e = network(&td(None, vec![bad]), &mut vec![]).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("containerDefinitions[0].extraHosts[0].ipAddress")
        );
    }

    #[test]
    fn hostname_of_a_single_container() {
        let one = ContainerDefinition {
            hostname: Some("Web-1".into()),
            ..c()
        };
        let mut report = vec![];
        let n = network(&td(None, vec![one.clone()]), &mut report).unwrap();
        assert_eq!(n.hostname.as_deref(), Some("web-1"));
        assert!(report.is_empty());

        let n = network(&td(None, vec![one.clone(), c()]), &mut report).unwrap();
        assert_eq!(n.hostname, None);
        assert_eq!(
            report.pop().unwrap().field,
            "containerDefinitions[0].hostname"
        );

        let n = network(&td(Some(NetworkMode::Host), vec![one]), &mut report).unwrap();
        assert_eq!(n.hostname, None);
        assert_eq!(
            report.pop().unwrap().field,
            "containerDefinitions[0].hostname"
        );

        let fqdn = ContainerDefinition {
            hostname: Some("web.example.com".into()),
            ..c()
        };
        let n = network(&td(None, vec![fqdn]), &mut report).unwrap();
        assert_eq!(n.hostname, None);
        assert_eq!(
            report.pop().unwrap().field,
            "containerDefinitions[0].hostname"
        );
    }
}
