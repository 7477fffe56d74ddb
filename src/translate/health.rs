//! ECS `healthCheck` → exec probes.
//!
//! A readiness probe carries the health check of an essential container: the task controller turns
//! readiness into the container's and task's `healthStatus`, the service scheduler replaces service tasks
//! that turn UNHEALTHY, and the load balancer Service sends traffic only to ready pods. There is never a
//! liveness probe, and no probe that can fail the container: ECS never restarts or stops a container
//! for a failed health check.
//!
//! - `startPeriod`: failures during the start period are ignored by the task controller (a container is
//!   UNHEALTHY only once it was healthy and no longer is, or `startPeriod + interval × retries +
//!   timeout` seconds after it started without passing). A readiness probe that fails never stops the
//!   container, so no startup probe is needed for it (one would stop the container when it gives up).
//! - A non-essential container's health check is not a readiness probe: every container's readiness
//!   makes the pod Ready, and pod readiness is what puts the task in the load balancer, while ECS lets
//!   only essential containers decide task health and load balancer membership.
//! - A container other containers wait for with `HEALTHY` gets a startup probe (the same command): the
//!   kubelet holds back the containers after it until it passes. It tolerates failures for as long as
//!   the task may take to start ([`GATE_FAILURE_THRESHOLD`]): the dependency's `startTimeout` or the
//!   task start timeout stops the task, never the probe.
//! - A command that starts with neither `CMD` nor `CMD-SHELL` is accepted, as ECS accepts it, and
//!   ignored, as Docker ignores it ([`ignored`]): the container has no health check.

use k8s_openapi::api::core::v1::{ExecAction, Probe};

use super::TranslateError;
use super::env::literals;
use crate::api::task_definition::HealthCheck;

/// ECS defaults.
const DEFAULT_INTERVAL: i32 = 30;
const DEFAULT_TIMEOUT: i32 = 5;
const DEFAULT_RETRIES: i32 = 3;

/// The probe command: `CMD` runs the rest as is, `CMD-SHELL` runs the rest (joined by spaces, as Docker
/// does) with `/bin/sh -c`.
pub(crate) fn exec(hc: &HealthCheck, field: &str) -> Result<ExecAction, TranslateError> {
    let command = match hc.command.split_first() {
        Some((kind, rest)) if kind == "CMD" && !rest.is_empty() => rest.to_vec(),
        Some((kind, rest)) if kind == "CMD-SHELL" && !rest.is_empty() => {
            vec!["/bin/sh".into(), "-c".into(), rest.join(" ")]
        }
        _ => {
            return Err(TranslateError::invalid(
                format!("{field}.command"),
                hc.command.join(" "),
                "a health check command is [\"CMD\", executable, args…] or [\"CMD-SHELL\", \"shell command\"]",
            ));
        }
    };
    Ok(ExecAction {
        command: Some(literals(&command)),
    })
}

/// Whether Docker ignores the check: its command starts with neither `CMD` nor `CMD-SHELL` (e.g.
/// `NONE`, or a command line without the form word).
pub(crate) fn ignored(hc: &HealthCheck) -> bool {
    !matches!(
        hc.command.first().map(String::as_str),
        Some("CMD" | "CMD-SHELL")
    )
}

/// Failures a startup gate tolerates: effectively never, so the probe never stops the container.
pub(crate) const GATE_FAILURE_THRESHOLD: i32 = i32::MAX;

fn interval(hc: &HealthCheck) -> i32 {
    hc.interval.unwrap_or(DEFAULT_INTERVAL).max(1)
}

fn retries(hc: &HealthCheck) -> i32 {
    hc.retries.unwrap_or(DEFAULT_RETRIES).max(1)
}

/// The health check as a readiness probe: every `interval` seconds, `timeout` per check, UNHEALTHY after
/// `retries` consecutive failures, healthy again after one success.
pub(crate) fn readiness_probe(hc: &HealthCheck, field: &str) -> Result<Probe, TranslateError> {
    Ok(Probe {
        exec: Some(exec(hc, field)?),
        period_seconds: Some(interval(hc)),
        timeout_seconds: Some(hc.timeout.unwrap_or(DEFAULT_TIMEOUT).max(1)),
        failure_threshold: Some(retries(hc)),
        success_threshold: Some(1),
        ..Default::default()
    })
}

/// The startup probe of a container others wait for with `HEALTHY`: checks every `interval` seconds
/// (every `startPeriod` seconds when that is shorter, so a quick start is seen quickly), passes on the
/// first success, and never gives up: the kubelet stops a container whose startup probe gives up, which
/// ECS never does for a health check.
pub(crate) fn startup_gate(hc: &HealthCheck, field: &str) -> Result<Probe, TranslateError> {
    let start_period = hc.start_period.unwrap_or(0).max(0);
    let period = if start_period > 0 {
        interval(hc).min(start_period)
    } else {
        interval(hc)
    };
    Ok(Probe {
        period_seconds: Some(period),
        failure_threshold: Some(GATE_FAILURE_THRESHOLD),
        ..readiness_probe(hc, field)?
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hc(command: &[&str]) -> HealthCheck {
        HealthCheck {
            command: command.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }
    }

    fn cmd(p: &Probe) -> Vec<String> {
        p.exec.as_ref().unwrap().command.clone().unwrap()
    }

    #[test]
    fn cmd_form_runs_the_rest_as_is() {
        let p = readiness_probe(&hc(&["CMD", "curl", "-f", "http://localhost/"]), "h").unwrap();
        assert_eq!(cmd(&p), vec!["curl", "-f", "http://localhost/"]);
    }

    #[test]
    fn shell_form_runs_through_sh() {
        let p = readiness_probe(
            &hc(&["CMD-SHELL", "curl -f http://localhost/ || exit 1"]),
            "h",
        )
        .unwrap();
        assert_eq!(
            cmd(&p),
            vec!["/bin/sh", "-c", "curl -f http://localhost/ || exit 1"]
        );
        // Docker joins the words of a split shell form.
        let p = readiness_probe(&hc(&["CMD-SHELL", "test", "-f", "/ok"]), "h").unwrap();
        assert_eq!(cmd(&p), vec!["/bin/sh", "-c", "test -f /ok"]);
    }

    #[test]
    fn dollars_are_not_expanded_by_the_kubelet() {
        let p = readiness_probe(&hc(&["CMD-SHELL", "test -n \"$PORT\""]), "h").unwrap();
        assert_eq!(cmd(&p)[2], "test -n \"$$PORT\"");
    }

    #[test]
    fn defaults_are_the_ecs_defaults() {
        let p = readiness_probe(&hc(&["CMD", "true"]), "h").unwrap();
        assert_eq!(p.period_seconds, Some(30));
        assert_eq!(p.timeout_seconds, Some(5));
        assert_eq!(p.failure_threshold, Some(3));
        assert_eq!(p.success_threshold, Some(1));
        assert_eq!(p.initial_delay_seconds, None);
    }

    #[test]
    fn explicit_timings_are_kept() {
        let h = HealthCheck {
            interval: Some(10),
            timeout: Some(2),
            retries: Some(5),
            ..hc(&["CMD", "true"])
        };
        let p = readiness_probe(&h, "h").unwrap();
        assert_eq!(
            (p.period_seconds, p.timeout_seconds, p.failure_threshold),
            (Some(10), Some(2), Some(5))
        );
    }

    #[test]
    fn the_startup_gate_never_gives_up() {
        // interval 30, startPeriod 60: checks every 30 s and tolerates every failure.
        let h = HealthCheck {
            start_period: Some(60),
            ..hc(&["CMD", "true"])
        };
        let p = startup_gate(&h, "h").unwrap();
        assert_eq!(p.period_seconds, Some(30));
        assert_eq!(p.failure_threshold, Some(i32::MAX));
        assert_eq!(p.success_threshold, Some(1));
        assert_eq!(cmd(&p), vec!["true"]);
        // startPeriod shorter than the interval: checks every startPeriod seconds.
        let h = HealthCheck {
            interval: Some(30),
            start_period: Some(10),
            retries: Some(2),
            ..hc(&["CMD", "true"])
        };
        let p = startup_gate(&h, "h").unwrap();
        assert_eq!(p.period_seconds, Some(10));
        assert_eq!(p.failure_threshold, Some(i32::MAX));
        // No start period: the check's own interval.
        let p = startup_gate(&hc(&["CMD", "true"]), "h").unwrap();
        assert_eq!(p.period_seconds, Some(30));
        assert_eq!(p.failure_threshold, Some(i32::MAX));
    }

    #[test]
    fn commands_without_cmd_or_cmd_shell_are_ignored() {
        for c in [&["NONE"][..], &["curl", "-f", "localhost"][..], &[][..]] {
            assert!(ignored(&hc(c)), "{c:?}");
        }
        for c in [&["CMD", "true"][..], &["CMD-SHELL", "true"][..]] {
            assert!(!ignored(&hc(c)), "{c:?}");
        }
    }

    #[test]
    fn malformed_commands_are_errors() {
        for c in [
            &[][..],
            &["CMD"][..],
            &["CMD-SHELL"][..],
            &["NONE"][..],
            &["curl", "x"][..],
        ] {
            let e = readiness_probe(&hc(c), "containerDefinitions[0].healthCheck").unwrap_err();
            assert!(
                e.to_string()
                    .starts_with("containerDefinitions[0].healthCheck.command"),
                "{e}"
            );
        }
    }
}
