//! The client request budget (`--kube-api-qps`, `--kube-api-burst`): a token bucket every request of the
//! controllers' client passes before it goes out, as Kubernetes' own controllers throttle theirs
//! (client-go: 5/10 by default; kube-controller-manager: 20/30).

pub mod bucket;
pub mod layer;

pub use layer::BudgetLayer;

/// A request budget: `burst` requests at once, then `qps` a second.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Budget {
    pub qps: f64,
    pub burst: u32,
}

impl Budget {
    /// The budget the flags ask for: `None` when qps is 0 (no budget; burst is then not used).
    pub fn new(qps: f64, burst: u32) -> Result<Option<Budget>, String> {
        if !qps.is_finite() || qps < 0.0 {
            return Err(format!(
                "--kube-api-qps must be a number of requests a second, 0 or more (0: no budget), not {qps}"
            ));
        }
        if qps == 0.0 {
            return Ok(None);
        }
        if burst == 0 {
            return Err(format!(
                "--kube-api-burst must be at least 1 when --kube-api-qps is {qps}: a budget with no burst \
                 lets no request through (set --kube-api-qps 0 for no budget)"
            ));
        }
        Ok(Some(Budget { qps, burst }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_qps_is_no_budget_whatever_the_burst() {
        assert_eq!(Budget::new(0.0, 0), Ok(None));
        assert_eq!(Budget::new(0.0, 30), Ok(None));
    }

    #[test]
    fn a_budget_needs_a_burst_of_one_or_more() {
        let err = Budget::new(20.0, 0).unwrap_err();
        assert!(err.contains("--kube-api-burst must be at least 1"), "{err}");
        assert_eq!(
            Budget::new(20.0, 30),
            Ok(Some(Budget {
                qps: 20.0,
                burst: 30
            }))
        );
        assert!(Budget::new(0.5, 1).unwrap().is_some());
    }

    #[test]
    fn a_negative_or_infinite_qps_is_refused() {
        for qps in [-1.0, f64::NAN, f64::INFINITY] {
            assert!(Budget::new(qps, 10).is_err(), "{qps}");
        }
    }
}
