//! Creating many objects as the ReplicaSet controller does (`slowStartBatch`): batches of 1, 2, 4, …,
//! each batch concurrently; a batch with a failure ends the pass and the rest is left for the next.
//! A wrong spec or an exhausted quota then costs a handful of failed requests, not thousands.

use std::future::Future;

/// Runs `create` on `items` in doubling batches starting at `initial`. Returns the results of every
/// create that succeeded and the first error, if a batch failed (later items were not tried).
pub async fn run<T, R, E, F, Fut>(
    items: Vec<T>,
    initial: usize,
    mut create: F,
) -> (Vec<R>, Option<E>)
where
    F: FnMut(T) -> Fut,
    Fut: Future<Output = Result<R, E>>,
{
    let mut done = Vec::new();
    let mut items = items.into_iter();
    let mut batch = initial.max(1);
    loop {
        let creates: Vec<Fut> = items.by_ref().take(batch).map(&mut create).collect();
        if creates.is_empty() {
            return (done, None);
        }
        let mut failed = None;
        for result in futures::future::join_all(creates).await {
            match result {
                Ok(r) => done.push(r),
                Err(e) => {
                    failed.get_or_insert(e);
                }
            }
        }
        if failed.is_some() {
            return (done, failed);
        }
        batch = batch.saturating_mul(2);
    }
}

#[cfg(test)]
mod tests {
    use std::cell::{Cell, RefCell};

    use super::*;

    type Outcome = (Vec<usize>, Option<String>);

    /// Runs `items` through [`run`] with a fake create that fails on `fail`; returns the result and
    /// the batches: items grouped by how many creates had finished when each was started.
    fn batches(items: usize, fail: &[usize]) -> (Outcome, Vec<Vec<usize>>) {
        let finished = Cell::new(0);
        let started = RefCell::new(Vec::<(usize, usize)>::new());
        let result = futures::executor::block_on(run((0..items).collect(), 1, |i| {
            started.borrow_mut().push((finished.get(), i));
            let (finished, fails) = (&finished, fail.contains(&i));
            async move {
                finished.set(finished.get() + 1);
                if fails {
                    Err(format!("item {i} refused"))
                } else {
                    Ok(i)
                }
            }
        }));
        let mut groups: Vec<Vec<usize>> = Vec::new();
        let mut last = None;
        for (at, i) in started.into_inner() {
            if last != Some(at) {
                groups.push(Vec::new());
                last = Some(at);
            }
            groups.last_mut().unwrap().push(i);
        }
        (result, groups)
    }

    #[test]
    fn batches_double() {
        let ((done, error), groups) = batches(10, &[]);
        assert_eq!(done, (0..10).collect::<Vec<_>>());
        assert_eq!(error, None);
        assert_eq!(
            groups,
            [vec![0], vec![1, 2], vec![3, 4, 5, 6], vec![7, 8, 9]]
        );
    }

    #[test]
    fn a_failed_batch_ends_the_pass() {
        let ((done, error), groups) = batches(5000, &[4]);
        // 1 + 2 + 4 tried, the batch with the failure finished, nothing after it.
        assert_eq!(groups, [vec![0], vec![1, 2], vec![3, 4, 5, 6]]);
        assert_eq!(done, [0, 1, 2, 3, 5, 6]);
        assert_eq!(error.as_deref(), Some("item 4 refused"));
    }

    #[test]
    fn the_first_error_is_reported() {
        let ((done, error), _) = batches(3, &[1, 2]);
        assert_eq!(done, [0]);
        assert_eq!(error.as_deref(), Some("item 1 refused"));
    }

    #[test]
    fn nothing_to_create_creates_nothing() {
        let ((done, error), groups) = batches(0, &[]);
        assert!(done.is_empty() && error.is_none() && groups.is_empty());
    }
}
