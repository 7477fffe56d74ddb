//! `user`, `privileged`, `readonlyRootFilesystem` and `linuxParameters.capabilities` → the container's
//! `securityContext`. Nothing is added that the definition did not ask for.

use k8s_openapi::api::core::v1::{Capabilities, SecurityContext};

use super::TranslateError;
use crate::api::task_definition::ContainerDefinition;

/// Largest uid/gid Kubernetes accepts.
const MAX_ID: i64 = i32::MAX as i64;

/// `uid` or `uid:gid`. Names cannot be resolved before the container starts (the image's /etc/passwd
/// is not visible to the kubelet), and running as some other user is never acceptable, so they are
/// errors.
pub(crate) fn run_as(user: &str, field: &str) -> Result<(i64, Option<i64>), TranslateError> {
    let (u, g) = match user.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (user, None),
    };
    let is_number = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !is_number(u) || g.is_some_and(|g| !is_number(g)) {
        let reason = if user.is_empty()
            || u.is_empty()
            || g == Some("")
            || g.is_some_and(|g| g.contains(':'))
        {
            "not a user; write a numeric uid or uid:gid"
        } else {
            "a user name cannot be resolved before the container starts on Kubernetes; use a numeric uid or uid:gid"
        };
        return Err(TranslateError::invalid(field, user, reason));
    }
    let parse = |s: &str| s.parse::<i64>().ok().filter(|n| *n <= MAX_ID);
    match (parse(u), g.map(parse)) {
        (Some(uid), None) => Ok((uid, None)),
        (Some(uid), Some(Some(gid))) => Ok((uid, Some(gid))),
        _ => Err(TranslateError::invalid(
            field,
            user,
            format!("Kubernetes accepts uids and gids from 0 to {MAX_ID}"),
        )),
    }
}

/// The container's security context, or none when the definition asks for nothing.
pub(crate) fn security_context(
    c: &ContainerDefinition,
    path: &str,
) -> Result<Option<SecurityContext>, TranslateError> {
    let mut sc = SecurityContext::default();
    if let Some(user) = &c.user {
        let (uid, gid) = run_as(user, &format!("{path}.user"))?;
        sc.run_as_user = Some(uid);
        sc.run_as_group = gid;
    }
    if c.privileged == Some(true) {
        sc.privileged = Some(true);
    }
    if let Some(ro) = c.readonly_root_filesystem {
        sc.read_only_root_filesystem = Some(ro);
    }
    if let Some(caps) = c
        .linux_parameters
        .as_ref()
        .and_then(|lp| lp.capabilities.as_ref())
    {
        let list = |v: &Option<Vec<String>>| v.clone().filter(|v| !v.is_empty());
        let (add, drop) = (list(&caps.add), list(&caps.drop));
        if add.is_some() || drop.is_some() {
            sc.capabilities = Some(Capabilities { add, drop });
        }
    }
    Ok((sc != SecurityContext::default()).then_some(sc))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::task_definition::{KernelCapabilities, LinuxParameters};

    const F: &str = "containerDefinitions[1].user";

    #[test]
    fn numeric_users() {
        assert_eq!(run_as("1000", F).unwrap(), (1000, None));
        assert_eq!(run_as("0", F).unwrap(), (0, None));
        assert_eq!(run_as("1000:2000", F).unwrap(), (1000, Some(2000)));
        assert_eq!(run_as("2147483647:0", F).unwrap(), (2_147_483_647, Some(0)));
    }

    #[test]
    fn names_are_refused_with_the_field() {
        for user in ["nginx", "nginx:nginx", "1000:staff", "www-data:33", "root"] {
            let e = run_as(user, F).unwrap_err();
            assert_eq!(
                e.to_string(),
                format!(
                    "{F} {user:?}: a user name cannot be resolved before the container starts on Kubernetes; use a numeric uid or uid:gid"
                )
            );
        }
    }

    #[test]
    fn malformed_users_are_refused() {
        for user in [
            "",
            ":",
            "1000:",
            ":1000",
            "1:2:3",
            "-1",
            "2147483648",
            "1:99999999999",
            " 1",
        ] {
            let e = run_as(user, F).unwrap_err();
            assert!(e.to_string().starts_with(F), "{user}: {e}");
        }
    }

    #[test]
    fn nothing_asked_nothing_set() {
        let c = ContainerDefinition {
            privileged: Some(false),
            ..Default::default()
        };
        assert_eq!(security_context(&c, "c").unwrap(), None);
        assert_eq!(
            security_context(&ContainerDefinition::default(), "c").unwrap(),
            None
        );
    }

    #[test]
    fn everything_asked() {
        let c = ContainerDefinition {
            user: Some("101:101".into()),
            privileged: Some(true),
            readonly_root_filesystem: Some(true),
            linux_parameters: Some(LinuxParameters {
                capabilities: Some(KernelCapabilities {
                    add: Some(vec!["NET_ADMIN".into()]),
                    drop: Some(vec!["ALL".into()]),
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        let sc = security_context(&c, "c").unwrap().unwrap();
        assert_eq!(sc.run_as_user, Some(101));
        assert_eq!(sc.run_as_group, Some(101));
        assert_eq!(sc.privileged, Some(true));
        assert_eq!(sc.read_only_root_filesystem, Some(true));
        let caps = sc.capabilities.unwrap();
        assert_eq!(caps.add, Some(vec!["NET_ADMIN".to_string()]));
        assert_eq!(caps.drop, Some(vec!["ALL".to_string()]));
        assert_eq!(sc.allow_privilege_escalation, None);
    }

    #[test]
    fn read_only_false_is_kept_when_written() {
        let c = ContainerDefinition {
            readonly_root_filesystem: Some(false),
            ..Default::default()
        };
        let sc = security_context(&c, "c").unwrap().unwrap();
        assert_eq!(sc.read_only_root_filesystem, Some(false));
    }

    #[test]
    fn user_error_bubbles_up() {
        let c = ContainerDefinition {
            user: Some("nginx".into()),
            ..Default::default()
        };
        let e = security_context(&c, "containerDefinitions[1]").unwrap_err();
        assert!(e.to_string().starts_with(F));
    }
}
