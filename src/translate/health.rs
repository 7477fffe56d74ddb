//! ECS `healthCheck` → exec probes.
//!
//! A readiness probe carries the health check: the task controller turns readiness into the container's
//! and task's `healthStatus`, and the service scheduler replaces service tasks that turn UNHEALTHY. There
//! is never a liveness probe, because ECS never restarts an unhealthy container in place.
//!
//! A startup probe (the same command) is added when the check has a `startPeriod`, so that failures
//! during the start period do not count: it tolerates failures for `startPeriod` seconds, then `retries`
//! more checks, and passes on the first success, after which the readiness probe takes over. It is also
//! what makes the kubelet hold back the containers that wait for a sidecar to be HEALTHY.

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

/// Whether the check has a start period.
pub(crate) fn has_start_period(hc: &HealthCheck) -> bool {
    hc.start_period.is_some_and(|s| s > 0)
}

/// The startup probe: checks every min(interval, startPeriod) seconds, passes on the first success, and
/// gives up (the kubelet then stops the container) only after the start period and `retries` further
/// failures, when ECS would first call the container UNHEALTHY.
pub(crate) fn startup_probe(hc: &HealthCheck, field: &str) -> Result<Probe, TranslateError> {
    let start_period = hc.start_period.unwrap_or(0).max(0);
    let period = if start_period > 0 {
        interval(hc).min(start_period)
    } else {
        interval(hc)
    };
    let grace_checks = (i64::from(start_period) + i64::from(period) - 1) / i64::from(period);
    let threshold = grace_checks + i64::from(retries(hc));
    Ok(Probe {
        period_seconds: Some(period),
        failure_threshold: Some(i32::try_from(threshold).unwrap_or(i32::MAX)),
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
    fn startup_probe_covers_the_start_period_then_the_retries() {
        // interval 30, startPeriod 60: checks every 30 s, 2 grace checks + 3 retries.
        let h = HealthCheck {
            start_period: Some(60),
            ..hc(&["CMD", "true"])
        };
        assert!(has_start_period(&h));
        let p = startup_probe(&h, "h").unwrap();
        assert_eq!(p.period_seconds, Some(30));
        assert_eq!(p.failure_threshold, Some(5));
        assert_eq!(p.success_threshold, Some(1));
        // startPeriod shorter than the interval: checks every startPeriod seconds.
        let h = HealthCheck {
            interval: Some(30),
            start_period: Some(10),
            retries: Some(2),
            ..hc(&["CMD", "true"])
        };
        let p = startup_probe(&h, "h").unwrap();
        assert_eq!(p.period_seconds, Some(10));
        assert_eq!(p.failure_threshold, Some(3));
        // Not a multiple: rounds up so the whole start period is tolerated.
        let h = HealthCheck {
            interval: Some(20),
            start_period: Some(45),
            ..hc(&["CMD", "true"])
        };
        let p = startup_probe(&h, "h").unwrap();
        assert_eq!(p.period_seconds, Some(20));
        assert_eq!(p.failure_threshold, Some(3 + 3));
        assert!(p.period_seconds.unwrap() * (p.failure_threshold.unwrap() - 3) >= 45);
    }

    #[test]
    fn extreme_timings_do_not_overflow() {
        let h = HealthCheck {
            interval: Some(i32::MAX),
            start_period: Some(i32::MAX),
            retries: Some(i32::MAX),
            ..hc(&["CMD", "true"])
        };
        let p = startup_probe(&h, "h").unwrap();
        assert_eq!(p.failure_threshold, Some(i32::MAX));
    }

    #[test]
    fn startup_probe_without_start_period_is_the_check_itself() {
        let h = hc(&["CMD", "true"]);
        assert!(!has_start_period(&h));
        let p = startup_probe(&h, "h").unwrap();
        assert_eq!(p.period_seconds, Some(30));
        assert_eq!(p.failure_threshold, Some(3));
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
