//! `portMappings` → container ports.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::{Container, ContainerPort};

use super::TranslateError;
use super::names::is_iana_svc_name;
use super::not_honoured::nh;
use crate::api::task_definition::{ContainerDefinition, NotHonouredField, TransportProtocol};

/// The container's ports. With host networking the host port is the container port (Kubernetes requires
/// it); otherwise a host port is set only when one is given (bridge `0` means a dynamic port in ECS, which
/// Kubernetes does not have: the pod IP is reachable directly).
pub(crate) fn ports(
    c: &ContainerDefinition,
    path: &str,
    host_network: bool,
    report: &mut Vec<NotHonouredField>,
) -> Result<Vec<ContainerPort>, TranslateError> {
    let mut out = Vec::new();
    let mut names = BTreeSet::new();
    for (j, pm) in c.port_mappings.iter().flatten().enumerate() {
        let field = format!("{path}.portMappings[{j}]");
        let Some(container_port) = pm.container_port else {
            continue;
        };
        check_port(container_port, &format!("{field}.containerPort"))?;
        let host_port = if host_network {
            Some(container_port)
        } else {
            match pm.host_port.filter(|p| *p > 0) {
                Some(p) => {
                    check_port(p, &format!("{field}.hostPort"))?;
                    Some(p)
                }
                None => None,
            }
        };
        let name = match pm.name.as_deref() {
            None => None,
            Some(ecs_name) => {
                let name = ecs_name.to_ascii_lowercase();
                if !is_iana_svc_name(&name) {
                    report.push(nh(
                        format!("{field}.name"),
                        format!(
                            "{ecs_name:?}: a Kubernetes port name has at most 15 lowercase letters, digits and '-', with at least one letter; the port is kept without a name"
                        ),
                    ));
                    None
                } else if !names.insert(name.clone()) {
                    report.push(nh(
                        format!("{field}.name"),
                        format!(
                            "{ecs_name:?}: another port of this container has the same name; the port is kept without a name"
                        ),
                    ));
                    None
                } else {
                    Some(name)
                }
            }
        };
        out.push(ContainerPort {
            container_port,
            host_port,
            name,
            protocol: Some(
                match pm.protocol.unwrap_or(TransportProtocol::Tcp) {
                    TransportProtocol::Tcp => "TCP",
                    TransportProtocol::Udp => "UDP",
                }
                .to_string(),
            ),
            host_ip: None,
        });
    }
    Ok(out)
}

fn check_port(port: i32, field: &str) -> Result<(), TranslateError> {
    if (1..=65535).contains(&port) {
        Ok(())
    } else {
        Err(TranslateError::invalid(
            field,
            port.to_string(),
            "a port is a number from 1 to 65535",
        ))
    }
}

/// A host port can be bound once per protocol in a pod. `containers` pairs each container with the JSON
/// path of its definition.
pub(crate) fn check_host_ports<'a>(
    containers: impl IntoIterator<Item = (&'a Container, String)>,
) -> Result<(), TranslateError> {
    let mut seen: BTreeMap<(i32, String), String> = BTreeMap::new();
    for (c, path) in containers {
        for p in c.ports.iter().flatten() {
            let Some(host_port) = p.host_port else {
                continue;
            };
            let protocol = p.protocol.clone().unwrap_or_else(|| "TCP".into());
            if let Some(first) = seen.insert((host_port, protocol.clone()), path.clone()) {
                return Err(TranslateError::conflict(
                    format!("{path}.portMappings"),
                    format!(
                        "host port {host_port}/{protocol} is also bound by {first}; a host port can be bound once per task"
                    ),
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::task_definition::PortMapping;

    fn pm(container_port: i32, host_port: Option<i32>, name: Option<&str>) -> PortMapping {
        PortMapping {
            container_port: Some(container_port),
            host_port,
            name: name.map(Into::into),
            ..Default::default()
        }
    }

    fn with(mappings: Vec<PortMapping>) -> ContainerDefinition {
        ContainerDefinition {
            port_mappings: Some(mappings),
            ..Default::default()
        }
    }

    #[test]
    fn container_ports_with_protocol_and_name() {
        let c = with(vec![
            pm(80, None, Some("HTTP")),
            PortMapping {
                protocol: Some(TransportProtocol::Udp),
                ..pm(53, Some(0), Some("dns"))
            },
        ]);
        let mut report = vec![];
        let p = ports(&c, "c", false, &mut report).unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!(
            (
                p[0].container_port,
                p[0].host_port,
                p[0].name.as_deref(),
                p[0].protocol.as_deref()
            ),
            (80, None, Some("http"), Some("TCP"))
        );
        assert_eq!(
            (
                p[1].container_port,
                p[1].host_port,
                p[1].protocol.as_deref()
            ),
            (53, None, Some("UDP"))
        );
        assert!(report.is_empty());
    }

    #[test]
    fn host_port_only_when_positive() {
        let c = with(vec![pm(8080, Some(80), None), pm(9090, Some(0), None)]);
        let p = ports(&c, "c", false, &mut vec![]).unwrap();
        assert_eq!(p[0].host_port, Some(80));
        assert_eq!(p[1].host_port, None);
    }

    #[test]
    fn host_network_binds_the_container_port() {
        let c = with(vec![pm(8080, None, None)]);
        let p = ports(&c, "c", true, &mut vec![]).unwrap();
        assert_eq!(p[0].host_port, Some(8080));
    }

    #[test]
    fn invalid_or_duplicate_names_are_dropped_and_reported() {
        let c = with(vec![
            pm(80, None, Some("http_alt")),
            pm(81, None, Some("a-very-long-port-name")),
            pm(82, None, Some("web")),
            pm(83, None, Some("WEB")),
            pm(84, None, Some("8080")),
        ]);
        let mut report = vec![];
        let p = ports(&c, "containerDefinitions[0]", false, &mut report).unwrap();
        let names: Vec<_> = p.iter().map(|p| p.name.as_deref()).collect();
        assert_eq!(names, vec![None, None, Some("web"), None, None]);
        let fields: Vec<_> = report.iter().map(|f| f.field.as_str()).collect();
        assert_eq!(
            fields,
            vec![
                "containerDefinitions[0].portMappings[0].name",
                "containerDefinitions[0].portMappings[1].name",
                "containerDefinitions[0].portMappings[3].name",
                "containerDefinitions[0].portMappings[4].name",
            ]
        );
    }

    #[test]
    fn ranges_only_are_skipped() {
        let c = with(vec![PortMapping {
            container_port_range: Some("8000-8010".into()),
            ..Default::default()
        }]);
        assert!(ports(&c, "c", false, &mut vec![]).unwrap().is_empty());
    }

    #[test]
    fn out_of_range_ports_are_errors() {
        let e = ports(&with(vec![pm(0, None, None)]), "c", false, &mut vec![]).unwrap_err();
        assert!(e.to_string().starts_with("c.portMappings[0].containerPort"));
        let e = ports(
            &with(vec![pm(80, Some(70000), None)]),
            "c",
            false,
            &mut vec![],
        )
        .unwrap_err();
        assert!(e.to_string().starts_with("c.portMappings[0].hostPort"));
    }

    #[test]
    fn a_host_port_is_bound_once_per_protocol() {
        let a = Container {
            ports: Some(
                ports(&with(vec![pm(80, Some(80), None)]), "a", false, &mut vec![]).unwrap(),
            ),
            ..Default::default()
        };
        let b = a.clone();
        let udp = Container {
            ports: Some(
                ports(
                    &with(vec![PortMapping {
                        protocol: Some(TransportProtocol::Udp),
                        ..pm(80, Some(80), None)
                    }]),
                    "u",
                    false,
                    &mut vec![],
                )
                .unwrap(),
            ),
            ..Default::default()
        };
        check_host_ports([
            (&a, "containerDefinitions[0]".to_string()),
            (&udp, "x".into()),
        ])
        .unwrap();
        let e = check_host_ports([
            (&a, "containerDefinitions[0]".to_string()),
            (&b, "containerDefinitions[1]".to_string()),
        ])
        .unwrap_err();
        assert!(
            e.to_string()
                .starts_with("containerDefinitions[1].portMappings")
        );
        assert!(e.to_string().contains("containerDefinitions[0]"));
    }
}
