//! Ordering of resourceVersions: pure.
//!
//! Since Kubernetes 1.35 (KEP-5504) the API server's resourceVersions are comparable: a decimal
//! integer without leading zeros, a longer one being later (apimachinery's
//! `resourceversion.CompareResourceVersion`). A cache works through watch events one by one, so
//! after a fresh read or a write it may show a version between the one it showed and the one read:
//! only the order tells "the cache caught up" from "the cache moved, and is still behind".

use std::cmp::Ordering;

/// How `a` compares with `b`; `None` when either is not a well-formed resourceVersion.
pub fn compare(a: &str, b: &str) -> Option<Ordering> {
    (well_formed(a) && well_formed(b)).then(|| a.len().cmp(&b.len()).then_with(|| a.cmp(b)))
}

fn well_formed(rv: &str) -> bool {
    !rv.is_empty() && !rv.starts_with('0') && rv.bytes().all(|b| b.is_ascii_digit())
}

/// Whether the cache's `seen` version is the `written` one or later. Versions that do not compare
/// count as older unless equal (the caller's record expires, or ends some other way).
pub fn caught_up(seen: Option<&str>, written: Option<&str>) -> bool {
    match (seen, written) {
        (_, None) => true,
        (None, Some(_)) => false,
        (Some(s), Some(w)) => s == w || compare(s, w) == Some(Ordering::Greater),
    }
}

/// Whether a cache showing `seen` is still behind `newest` (what this controller wrote or read): it
/// shows one of the versions `passed_over` (known older), or one that compares older.
pub fn behind(seen: Option<&str>, passed_over: &[String], newest: Option<&str>) -> bool {
    seen.is_some_and(|s| {
        passed_over.iter().any(|p| p == s)
            || newest.and_then(|n| compare(s, n)) == Some(Ordering::Less)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn resource_versions_compare_as_etcd_revisions() {
        assert!(caught_up(Some("10"), Some("10")));
        assert!(caught_up(Some("11"), Some("10")));
        assert!(!caught_up(Some("9"), Some("10")));
        assert!(caught_up(Some("100"), Some("99")));
        assert!(!caught_up(Some("x"), Some("y")));
        assert!(caught_up(Some("x"), Some("x")));
        assert!(!caught_up(None, Some("1")));
        assert!(caught_up(None, None));
    }

    #[test]
    fn ill_formed_versions_do_not_compare() {
        for bad in ["", "0", "012", "1a", "-1", " 1"] {
            assert_eq!(compare(bad, "5"), None, "{bad:?}");
            assert_eq!(compare("5", bad), None, "{bad:?}");
        }
    }

    #[test]
    fn a_cache_between_the_version_passed_over_and_the_newest_is_behind() {
        let passed = ["10".to_string()];
        assert!(behind(Some("10"), &passed, Some("14")));
        // Moved on, one event at a time: still older than what was read.
        assert!(behind(Some("12"), &passed, Some("14")));
        assert!(!behind(Some("14"), &passed, Some("14")));
        assert!(!behind(Some("15"), &passed, Some("14")));
        // Opaque versions: only the ones known to be passed over count as behind.
        let opaque = ["a".to_string()];
        assert!(behind(Some("a"), &opaque, Some("c")));
        assert!(!behind(Some("b"), &opaque, Some("c")));
        assert!(!behind(None, &passed, Some("14")));
    }

    proptest! {
        #[test]
        fn order_is_the_integers_order_beyond_64_bits(a in 1u128.., b in 1u128..) {
            prop_assert_eq!(compare(&a.to_string(), &b.to_string()), Some(a.cmp(&b)));
        }
    }
}
