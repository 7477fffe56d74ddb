//! The AWS CLI's waiters (`aws ecs wait …`): poll every 2 s, print a line on stderr whenever an
//! object's progress changes (so a long wait shows where it is), exit 255 on failure or timeout as
//! the AWS CLI does.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use kube::api::Api;
use serde_json::Value;

use super::{Result, Wait, shapes};
use crate::api::{Service, Task};

/// Where one object stands for a waiter.
#[derive(Debug, PartialEq, Eq)]
pub enum State {
    Done,
    Pending,
    /// The waiter can no longer succeed (the AWS CLI's "failure" acceptor).
    Failed(String),
}

pub async fn run(
    what: Wait,
    services: &Api<Service>,
    tasks: &Api<Task>,
    ns: &str,
) -> Result<ExitCode> {
    match what {
        Wait::ServicesStable {
            services: names,
            timeout,
        } => {
            poll("ServicesStable", &names, timeout, |given| async move {
                let name = shapes::name_of(&given);
                let Some(svc) = services.get_opt(name).await? else {
                    return Ok((String::new(), missing(&shapes::service_arn(ns, name))));
                };
                let described = shapes::service(&svc);
                let current = svc.status.as_ref().and_then(|s| s.observed_generation)
                    == svc.metadata.generation;
                let state = if shapes::is_stable(&described, current) {
                    State::Done
                } else {
                    State::Pending
                };
                Ok((shapes::progress(&described), state))
            })
            .await
        }
        Wait::TasksRunning {
            tasks: names,
            timeout,
        } => tasks_reach(tasks, ns, "TasksRunning", "RUNNING", &names, timeout).await,
        Wait::TasksStopped {
            tasks: names,
            timeout,
        } => tasks_reach(tasks, ns, "TasksStopped", "STOPPED", &names, timeout).await,
    }
}

/// Until every task's lastStatus is `wanted`.
async fn tasks_reach(
    tasks: &Api<Task>,
    ns: &str,
    waiter: &str,
    wanted: &str,
    names: &[String],
    timeout: u64,
) -> Result<ExitCode> {
    poll(waiter, names, timeout, |given| async move {
        let name = shapes::name_of(&given);
        match tasks.get_opt(name).await? {
            Some(t) => Ok(task_state(&shapes::task(&t), wanted)),
            None => Ok((String::new(), missing(&shapes::task_arn(ns, name)))),
        }
    })
    .await
}

fn missing(arn: &str) -> State {
    State::Failed(format!("{arn} is MISSING"))
}

/// A task's progress line and state for a waiter that wants it `wanted` (RUNNING or STOPPED). As the
/// AWS CLI's tasks-running waiter, a task that stopped fails the wait: it will never run again.
pub fn task_state(described: &Value, wanted: &str) -> (String, State) {
    let last = described["lastStatus"].as_str().unwrap_or_default();
    let name = described["taskArn"]
        .as_str()
        .and_then(|a| a.rsplit('/').next())
        .unwrap_or_default();
    let mut line = format!(
        "{name}: {last} (desired {})",
        described["desiredStatus"].as_str().unwrap_or_default()
    );
    if let Some(code) = described["stopCode"].as_str() {
        line.push_str(&format!(", {code}"));
    }
    let state = if last == wanted {
        State::Done
    } else if last == "STOPPED" {
        let reason = described["stoppedReason"].as_str().unwrap_or("stopped");
        State::Failed(format!("{name} is STOPPED: {reason}"))
    } else {
        State::Pending
    };
    (line, state)
}

async fn poll<F, Fut>(
    waiter: &str,
    names: &[String],
    timeout: u64,
    mut check: F,
) -> Result<ExitCode>
where
    F: FnMut(String) -> Fut,
    Fut: Future<Output = Result<(String, State)>>,
{
    let deadline = Instant::now() + Duration::from_secs(timeout);
    let mut last: Vec<String> = vec![String::new(); names.len()];
    loop {
        let mut all = true;
        for (i, given) in names.iter().enumerate() {
            let (line, state) = check(given.clone()).await?;
            if !line.is_empty() && line != last[i] {
                eprintln!("{line}");
                last[i] = line;
            }
            match state {
                State::Done => {}
                State::Pending => all = false,
                State::Failed(why) => {
                    eprintln!("Waiter {waiter} failed: {why}");
                    return Ok(ExitCode::from(255));
                }
            }
        }
        if all {
            return Ok(ExitCode::SUCCESS);
        }
        if Instant::now() >= deadline {
            eprintln!("Waiter {waiter} failed: Max attempts exceeded");
            return Ok(ExitCode::from(255));
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_stopped_task_fails_the_running_waiter_and_satisfies_the_stopped_one() {
        let stopped = json!({"taskArn": "arn:x:task/shop/t1", "lastStatus": "STOPPED",
            "desiredStatus": "STOPPED", "stopCode": "TaskFailedToStart",
            "stoppedReason": "CannotPullContainerError"});
        let (line, state) = task_state(&stopped, "RUNNING");
        assert_eq!(line, "t1: STOPPED (desired STOPPED), TaskFailedToStart");
        assert_eq!(
            state,
            State::Failed("t1 is STOPPED: CannotPullContainerError".into())
        );
        assert_eq!(task_state(&stopped, "STOPPED").1, State::Done);
    }

    #[test]
    fn a_pending_task_keeps_both_waiters_waiting() {
        let pending = json!({"taskArn": "arn:x:task/shop/t1", "lastStatus": "PENDING",
            "desiredStatus": "RUNNING"});
        assert_eq!(task_state(&pending, "RUNNING").1, State::Pending);
        assert_eq!(task_state(&pending, "STOPPED").1, State::Pending);
        let running = json!({"taskArn": "arn:x:task/shop/t1", "lastStatus": "RUNNING"});
        assert_eq!(task_state(&running, "RUNNING").1, State::Done);
    }
}
