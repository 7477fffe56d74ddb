//! ECS container `restartPolicy` → Kubernetes container restart policy and rules.
//!
//! Kubernetes 1.35 turned on by default (beta, feature gate `ContainerRestartRules`, KEP-5307) a
//! `restartPolicy` and `restartPolicyRules` on each regular container, which override the pod's
//! `restartPolicy: Never`. A rule's only action is `Restart`, so "restart unless the exit code is
//! ignored" is written as `restartPolicy: Never` plus a `Restart` rule for exit codes `NotIn` the
//! ignored ones; without ignored codes it is simply `restartPolicy: Always`.
//!
//! Kubernetes cannot say "restart only if it ran at least `restartAttemptPeriod` seconds": the kubelet
//! restarts every exit the rules allow, with its own back-off. The task controller decides instead,
//! from the container's exit (its last state): an essential container that exits with an ignored code,
//! or before running `restartAttemptPeriod` seconds, did not restart for ECS, and its task stops. A
//! non-essential container restarted against ECS's rule stays restarted: a single container of a pod
//! cannot be stopped (reported as not honoured).

use k8s_openapi::api::core::v1::{
    Container, ContainerRestartRule, ContainerRestartRuleOnExitCodes,
};

use super::ContainerRole;
use super::not_honoured::nh;
use crate::api::task_definition::{ContainerDefinition, NotHonouredField};

/// Kubernetes accepts at most this many exit codes in one rule.
const MAX_EXIT_CODES: usize = 255;

/// Apply the container's ECS restart policy to `k8s` (a container of role `role`).
pub(crate) fn apply(
    c: &ContainerDefinition,
    role: ContainerRole,
    path: &str,
    k8s: &mut Container,
    report: &mut Vec<NotHonouredField>,
) {
    let Some(rp) = c.restart_policy.as_ref().filter(|rp| rp.enabled) else {
        return;
    };
    let mut ignored: Vec<i32> = rp.ignored_exit_codes.clone().unwrap_or_default();
    ignored.sort_unstable();
    ignored.dedup();
    ignored.truncate(MAX_EXIT_CODES);
    match role {
        ContainerRole::Regular if ignored.is_empty() => {
            k8s.restart_policy = Some("Always".into());
        }
        ContainerRole::Regular => {
            k8s.restart_policy = Some("Never".into());
            k8s.restart_policy_rules = Some(vec![ContainerRestartRule {
                action: "Restart".into(),
                exit_codes: Some(ContainerRestartRuleOnExitCodes {
                    operator: "NotIn".into(),
                    values: Some(ignored),
                }),
            }]);
        }
        ContainerRole::Sidecar => {
            // A native sidecar already restarts on every exit. An essential one exiting with an
            // ignored code stops the task (the task controller reads the exit), as in ECS; a
            // non-essential one cannot be left stopped.
            if !ignored.is_empty() && c.essential == Some(false) {
                report.push(nh(
                    format!("{path}.restartPolicy.ignoredExitCodes"),
                    "the container is not essential and other containers depend on it, so it runs as a native sidecar, which Kubernetes restarts on every exit; ECS would leave it stopped",
                ));
            }
        }
        ContainerRole::Init => report.push(nh(
            format!("{path}.restartPolicy"),
            "other containers wait for this one to complete, so it runs once as an init container and is not restarted",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::task_definition::ContainerRestartPolicy;

    fn def(enabled: bool, ignored: Option<Vec<i32>>) -> ContainerDefinition {
        ContainerDefinition {
            restart_policy: Some(ContainerRestartPolicy {
                enabled,
                ignored_exit_codes: ignored,
                restart_attempt_period: None,
            }),
            ..Default::default()
        }
    }

    fn run(c: &ContainerDefinition, role: ContainerRole) -> (Container, Vec<NotHonouredField>) {
        let mut k8s = Container::default();
        let mut report = vec![];
        apply(c, role, "containerDefinitions[0]", &mut k8s, &mut report);
        (k8s, report)
    }

    #[test]
    fn no_policy_or_disabled_changes_nothing() {
        assert_eq!(
            run(&ContainerDefinition::default(), ContainerRole::Regular).0,
            Container::default()
        );
        assert_eq!(
            run(&def(false, Some(vec![0])), ContainerRole::Regular).0,
            Container::default()
        );
    }

    #[test]
    fn enabled_restarts_always() {
        let (k8s, report) = run(&def(true, None), ContainerRole::Regular);
        assert_eq!(k8s.restart_policy.as_deref(), Some("Always"));
        assert_eq!(k8s.restart_policy_rules, None);
        assert!(report.is_empty());
    }

    #[test]
    fn ignored_exit_codes_restart_on_every_other_code() {
        let (k8s, _) = run(&def(true, Some(vec![143, 0, 0])), ContainerRole::Regular);
        assert_eq!(k8s.restart_policy.as_deref(), Some("Never"));
        let rules = k8s.restart_policy_rules.unwrap();
        assert_eq!(rules.len(), 1);
        assert_eq!(rules[0].action, "Restart");
        let codes = rules[0].exit_codes.as_ref().unwrap();
        assert_eq!(codes.operator, "NotIn");
        assert_eq!(codes.values, Some(vec![0, 143]));
    }

    #[test]
    fn sidecars_and_init_containers_report_what_they_cannot_do() {
        let (k8s, report) = run(&def(true, None), ContainerRole::Sidecar);
        assert_eq!(k8s, Container::default());
        assert!(report.is_empty());
        let (_, report) = run(&def(true, Some(vec![1])), ContainerRole::Sidecar);
        assert!(
            report.is_empty(),
            "an essential sidecar's ignored exit stops the task"
        );
        let non_essential = ContainerDefinition {
            essential: Some(false),
            ..def(true, Some(vec![1]))
        };
        let (_, report) = run(&non_essential, ContainerRole::Sidecar);
        assert_eq!(
            report[0].field,
            "containerDefinitions[0].restartPolicy.ignoredExitCodes"
        );
        let (k8s, report) = run(&def(true, None), ContainerRole::Init);
        assert_eq!(k8s, Container::default());
        assert_eq!(report[0].field, "containerDefinitions[0].restartPolicy");
    }
}
