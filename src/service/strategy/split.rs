//! CANARY and LINEAR without a Gateway API route: the production share is carried by endpoint
//! counts. The production Kubernetes Service selects the tasks labelled as in production traffic,
//! and [`counts`] chooses how many ready tasks of each revision carry the label so that green's
//! share of the endpoints is as near the planned percentage as the task counts allow.
//!
//! What this guarantees is a share of endpoints, so of new connections spread evenly over them
//! (kube-proxy picks an endpoint per connection), not of requests: long-lived connections keep the
//! endpoint they opened with.

/// How many of `blue_ready` and `green_ready` tasks serve production so that green's share of them
/// is nearest `percent`. Strictly between 0 and 100 with tasks on both sides, both get at least one;
/// among equally near choices the one with more tasks serving wins (more capacity). At 0 and 100 %
/// all of one revision serves; a revision with no ready task gets nothing, whatever the percentage.
pub fn counts(blue_ready: usize, green_ready: usize, percent: f64) -> (usize, usize) {
    // A revision with no ready task takes nothing; the other takes everything.
    if green_ready == 0 {
        return (blue_ready, 0);
    }
    if blue_ready == 0 {
        return (0, green_ready);
    }
    if percent <= 0.0 {
        return (blue_ready, 0);
    }
    if percent >= 100.0 {
        return (0, green_ready);
    }
    let p = percent / 100.0;
    let mut best = (blue_ready, 1);
    let mut best_error = f64::INFINITY;
    for g in 1..=green_ready {
        // g / (b + g) = p  ⇔  b = g (1 - p) / p: the nearest whole numbers around it.
        let ideal = g as f64 * (1.0 - p) / p;
        for b in [ideal.floor(), ideal.ceil()] {
            let b = (b.max(1.0) as usize).min(blue_ready);
            let error = (g as f64 / (b + g) as f64 - p).abs();
            let better = error < best_error - 1e-12
                || ((error - best_error).abs() <= 1e-12 && b + g > best.0 + best.1);
            if better {
                best = (b, g);
                best_error = error;
            }
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_canary_of_five_percent_over_twenty_tasks_is_one_in_twenty() {
        assert_eq!(counts(20, 20, 5.0), (19, 1));
        assert_eq!(counts(10, 10, 50.0), (10, 10));
        assert_eq!(counts(4, 4, 25.0), (3, 1));
        // Fewer tasks than the share needs: the nearest that both revisions can do.
        assert_eq!(counts(3, 3, 5.0), (3, 1));
    }

    #[test]
    fn the_ends_are_all_of_one_revision() {
        assert_eq!(counts(5, 5, 0.0), (5, 0));
        assert_eq!(counts(5, 5, 100.0), (0, 5));
        assert_eq!(counts(0, 5, 30.0), (0, 5), "no blue ready: green serves");
        assert_eq!(counts(5, 0, 30.0), (5, 0), "no green ready: blue serves");
        assert_eq!(
            counts(0, 1, 0.0),
            (0, 1),
            "no blue ready: green serves, even at 0 %"
        );
    }

    proptest! {
        #[test]
        fn the_split_is_the_nearest_possible(b in 0usize..30, g in 0usize..30, tenths in 0u32..=1000) {
            let percent = f64::from(tenths) / 10.0;
            let (cb, cg) = counts(b, g, percent);
            prop_assert!(cb <= b && cg <= g);
            prop_assert!(cb + cg > 0 || b + g == 0, "someone serves when anyone can");
            if b > 0 && g > 0 && percent > 0.0 && percent < 100.0 {
                prop_assert!(cb >= 1 && cg >= 1);
                let error = |x: usize, y: usize| (y as f64 / (x + y) as f64 - percent / 100.0).abs();
                let mine = error(cb, cg);
                for x in 1..=b {
                    for y in 1..=g {
                        prop_assert!(mine <= error(x, y) + 1e-9, "({x},{y}) is nearer than ({cb},{cg})");
                    }
                }
            }
        }
    }
}
