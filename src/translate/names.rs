//! Kubernetes names for ECS names, and the Kubernetes name rules the translation checks against.
//!
//! ECS container and volume names allow uppercase letters and `_`; Kubernetes wants DNS-1123 labels.
//! The mapping is deterministic so that the same task definition always yields the same pod.

use std::collections::BTreeSet;

/// Longest DNS-1123 label.
pub(crate) const MAX_LABEL_LEN: usize = 63;

/// `[a-z0-9]([-a-z0-9]*[a-z0-9])?`, at most 63 characters (container, volume and port-free names).
pub(crate) fn is_dns_label(s: &str) -> bool {
    !s.is_empty() && s.len() <= MAX_LABEL_LEN && is_label_body(s)
}

/// Dot-separated DNS-1123 labels, at most 253 characters (Secret, ServiceAccount and claim names).
pub(crate) fn is_dns_subdomain(s: &str) -> bool {
    !s.is_empty() && s.len() <= 253 && s.split('.').all(|l| !l.is_empty() && is_label_body(l))
}

fn is_label_body(s: &str) -> bool {
    let b = s.as_bytes();
    b.iter()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b.first().is_some_and(u8::is_ascii_alphanumeric)
        && b.last().is_some_and(u8::is_ascii_alphanumeric)
}

/// A container port name (IANA_SVC_NAME): at most 15 of `[a-z0-9-]`, at least one letter, no `-` at
/// either end and no `--`.
pub(crate) fn is_iana_svc_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 15
        && s.bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
        && s.bytes().any(|c| c.is_ascii_lowercase())
        && !s.starts_with('-')
        && !s.ends_with('-')
        && !s.contains("--")
}

/// A key of a Secret's data: `[-._a-zA-Z0-9]+`, at most 253 characters, not `.`, `..` or `..…`.
pub(crate) fn is_secret_key(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_'))
        && s != "."
        && !s.starts_with("..")
}

/// The name part of an annotation key: at most 63 of `[-A-Za-z0-9_.]`, alphanumeric at both ends.
pub(crate) fn is_qualified_name(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= MAX_LABEL_LEN
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
}

/// The DNS label closest to `name`: lowercased, every other character (ECS allows `_`) turned into `-`,
/// trimmed of `-` at both ends and to 63 characters. `fallback` when nothing is left.
pub(crate) fn dns_label(name: &str, fallback: &str) -> String {
    let mapped: String = name
        .chars()
        .map(|c| {
            let c = c.to_ascii_lowercase();
            if c.is_ascii_lowercase() || c.is_ascii_digit() {
                c
            } else {
                '-'
            }
        })
        .collect();
    let trimmed = truncate(mapped.trim_matches('-'), MAX_LABEL_LEN);
    if trimmed.is_empty() {
        fallback.to_string()
    } else {
        trimmed.to_string()
    }
}

/// `s` cut to at most `max` bytes (ASCII input) with no `-` left at the end.
pub(crate) fn truncate(s: &str, max: usize) -> &str {
    let cut = if s.len() > max { &s[..max] } else { s };
    cut.trim_end_matches('-')
}

/// Six hex digits of a 64-bit FNV-1a hash: short, and stable across Rust versions and platforms
/// (unlike `std`'s hasher), so names do not change when the operator is rebuilt.
pub(crate) fn stable_hash(input: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in input.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{:06x}", h >> 40)
}

/// Hands out unique DNS labels. The first claimant of a name keeps it; a later one that maps to the same
/// label gets a hash of its own ECS name appended, so every name is stable for a given definition.
#[derive(Debug, Default)]
pub(crate) struct NameAllocator {
    used: BTreeSet<String>,
}

impl NameAllocator {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// A unique label for `wanted` (`fallback` when `wanted` has no usable character).
    pub(crate) fn allocate(&mut self, wanted: &str, fallback: &str) -> String {
        let base = dns_label(wanted, fallback);
        if self.used.insert(base.clone()) {
            return base;
        }
        for salt in 0u32.. {
            let hash = stable_hash(&format!("{wanted}#{salt}"));
            let stem = truncate(&base, MAX_LABEL_LEN - hash.len() - 1);
            let candidate = format!("{stem}-{hash}");
            if self.used.insert(candidate.clone()) {
                return candidate;
            }
        }
        unreachable!("the salts cannot all collide")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_follow_dns_1123() {
        for ok in ["a", "web", "web-1", "0", &"a".repeat(63)] {
            assert!(is_dns_label(ok), "{ok}");
        }
        for bad in ["", "Web", "web_1", "-web", "web-", "a.b", &"a".repeat(64)] {
            assert!(!is_dns_label(bad), "{bad}");
        }
    }

    #[test]
    fn subdomains_allow_dots_between_labels() {
        for ok in ["db", "db.prod", "my-secret.v1", &"a".repeat(253)] {
            assert!(is_dns_subdomain(ok), "{ok}");
        }
        for bad in [
            "",
            "Db",
            "db_",
            ".db",
            "db.",
            "db..x",
            "a/b",
            &"a".repeat(254),
        ] {
            assert!(!is_dns_subdomain(bad), "{bad}");
        }
    }

    #[test]
    fn port_names_follow_iana_svc_name() {
        for ok in ["http", "web-8080", "h2c", "a1", "abcdefghijklmno"] {
            assert!(is_iana_svc_name(ok), "{ok}");
        }
        for bad in [
            "",
            "8080",
            "-http",
            "http-",
            "ht--tp",
            "HTTP",
            "http_alt",
            "abcdefghijklmnop",
        ] {
            assert!(!is_iana_svc_name(bad), "{bad}");
        }
    }

    #[test]
    fn secret_keys() {
        for ok in ["value", "DB_PASSWORD", "tls.crt", "a-b", ".hidden"] {
            assert!(is_secret_key(ok), "{ok}");
        }
        for bad in ["", ".", "..", "..x", "a/b", "a b", "a:b"] {
            assert!(!is_secret_key(bad), "{bad}");
        }
    }

    #[test]
    fn qualified_names() {
        assert!(is_qualified_name("docker-labels.web"));
        assert!(is_qualified_name("A_b.c"));
        assert!(!is_qualified_name("docker-labels."));
        assert!(!is_qualified_name(&"a".repeat(64)));
    }

    #[test]
    fn dns_label_maps_ecs_names() {
        assert_eq!(dns_label("Web_Server", "c"), "web-server");
        assert_eq!(dns_label("__init__", "c"), "init");
        assert_eq!(dns_label("___", "container"), "container");
        assert_eq!(dns_label(&"A".repeat(80), "c"), "a".repeat(63));
        // Cutting at 63 must not leave a trailing '-'.
        let long = format!("{}_{}", "a".repeat(62), "b".repeat(10));
        assert_eq!(dns_label(&long, "c"), "a".repeat(62));
    }

    #[test]
    fn hash_is_stable_and_short() {
        assert_eq!(stable_hash("web"), stable_hash("web"));
        assert_ne!(stable_hash("web"), stable_hash("Web"));
        assert_eq!(stable_hash("anything").len(), 6);
        // Pinned: a different value would rename containers of running definitions.
        assert_eq!(stable_hash(""), "cbf29c");
    }

    #[test]
    fn allocator_keeps_first_and_hashes_collisions() {
        let mut names = NameAllocator::new();
        assert_eq!(names.allocate("Web", "c"), "web");
        let second = names.allocate("web", "c");
        assert!(second.starts_with("web-") && second.len() == 10, "{second}");
        assert!(is_dns_label(&second));
        let third = names.allocate("WEB", "c");
        assert_ne!(third, second);
        assert!(is_dns_label(&third));
    }

    #[test]
    fn allocator_hashes_long_collisions_within_63() {
        let mut names = NameAllocator::new();
        let a = names.allocate(&format!("{}A", "x".repeat(70)), "c");
        let b = names.allocate(&format!("{}B", "x".repeat(70)), "c");
        assert_eq!(a.len(), 63);
        assert!(b.len() <= 63 && is_dns_label(&b) && a != b, "{b}");
    }
}
