//! Stopped task retention: examples and properties.

use std::time::Duration;

use k8s_openapi::jiff::Timestamp;
use proptest::prelude::*;

use super::{Retention, select};
use crate::service::plan::{Health, TaskState, TaskView};

fn at(secs: i64) -> Timestamp {
    Timestamp::from_second(1_700_000_000 + secs).unwrap()
}

fn view(name: &str, state: TaskState, stopped: Option<i64>) -> TaskView {
    TaskView {
        name: name.into(),
        deployment: "ecs-svc/1".into(),
        state,
        desired_stopped: false,
        health: Health::Unknown,
        zone: None,
        node: None,
        created_at: at(0),
        started_at: None,
        stopped_at: stopped.map(at),
        stop_code: None,
        stopped_reason: None,
        protected_until: None,
        stuck_rebalancing: false,
    }
}

const HOUR: Retention = Retention {
    keep_for: Duration::from_secs(3600),
    min_bound: 100,
};

#[test]
fn a_stopped_task_is_kept_for_the_retention_then_deleted() {
    let tasks = vec![
        view("old", TaskState::Stopped, Some(0)),
        view("young", TaskState::Stopped, Some(3000)),
        view("up", TaskState::Running, None),
    ];
    let cleanup = select(&tasks, 3, HOUR, at(3600));
    assert_eq!(cleanup.delete, vec!["old".to_owned()]);
    assert_eq!(cleanup.next, Some(Duration::from_secs(3000)));
    let cleanup = select(&tasks, 3, HOUR, at(3599));
    assert!(cleanup.delete.is_empty());
    assert_eq!(cleanup.next, Some(Duration::from_secs(1)));
}

#[test]
fn beyond_the_bound_the_oldest_go_first_whatever_their_age() {
    let retention = Retention {
        keep_for: Duration::from_secs(3600),
        min_bound: 3,
    };
    let tasks: Vec<TaskView> = (0..6)
        .map(|i| view(&format!("s{i}"), TaskState::Stopped, Some(100 - i)))
        .collect();
    // Stopped at 100, 99, … 95: s5 is the oldest.
    let cleanup = select(&tasks, 2, retention, at(200));
    assert_eq!(cleanup.delete, vec!["s5", "s4", "s3"]);
    // desiredCount above the bound raises it.
    assert_eq!(select(&tasks, 5, retention, at(200)).delete, vec!["s5"]);
}

#[test]
fn nothing_stopped_nothing_to_do() {
    let tasks = vec![view("up", TaskState::Running, None)];
    assert_eq!(select(&tasks, 1, HOUR, at(10_000)), Default::default());
}

fn arb_task(i: usize) -> impl Strategy<Value = TaskView> {
    (
        prop_oneof![
            Just(TaskState::Pending),
            Just(TaskState::Running),
            Just(TaskState::Stopping),
            Just(TaskState::Stopped),
            Just(TaskState::Stopped),
        ],
        proptest::option::weighted(0.9, 0i64..200),
    )
        .prop_map(move |(state, stopped)| view(&format!("t{i}"), state, stopped))
}

proptest! {
    #[test]
    fn retention_holds(
        tasks in (0..60usize).prop_flat_map(|n| (0..n).map(arb_task).collect::<Vec<_>>()),
        desired in 0usize..20,
        min_bound in 0usize..20,
        keep_for in 0u64..150,
        now in 0i64..300,
    ) {
        let retention = Retention { keep_for: Duration::from_secs(keep_for), min_bound };
        let now = at(now);
        let cleanup = select(&tasks, desired, retention, now);
        let bound = desired.max(min_bound);
        let by_name = |n: &str| tasks.iter().find(|t| t.name == n).unwrap();
        let age = |t: &TaskView| Duration::try_from(now.duration_since(t.stop_time())).unwrap_or_default();
        // Never a task that is not STOPPED.
        for name in &cleanup.delete {
            prop_assert_eq!(by_name(name).state, TaskState::Stopped);
        }
        let stopped: Vec<&TaskView> = tasks.iter().filter(|t| t.state == TaskState::Stopped).collect();
        let kept: Vec<&&TaskView> = stopped.iter().filter(|t| !cleanup.delete.contains(&t.name)).collect();
        // Never more than the bound kept, and none past its retention.
        prop_assert!(kept.len() <= bound);
        prop_assert!(kept.iter().all(|t| age(t) < retention.keep_for));
        // Under the bound, a task younger than the retention is never deleted.
        if stopped.len() <= bound {
            for name in &cleanup.delete {
                prop_assert!(age(by_name(name)) >= retention.keep_for);
            }
        }
        // What goes for the bound is older than what stays.
        for name in &cleanup.delete {
            let gone = by_name(name);
            if age(gone) < retention.keep_for {
                prop_assert!(kept.iter().all(|k| (k.stop_time(), &k.name) > (gone.stop_time(), &gone.name)));
            }
        }
        // The next wakeup is when the oldest kept one expires.
        let next = kept.iter().map(|t| retention.keep_for - age(t)).min();
        prop_assert_eq!(cleanup.next, next);
    }
}
