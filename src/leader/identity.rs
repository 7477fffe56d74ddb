//! Who this replica is, as written in the Lease: the pod name when there is one (the chart sets POD_NAME),
//! else host, pid and a random suffix, so that two processes never share an identity.

/// This process's identity.
pub fn identity() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok());
    from_parts(
        std::env::var("POD_NAME").ok(),
        host,
        std::process::id(),
        random_u32(),
    )
}

fn from_parts(pod_name: Option<String>, host: Option<String>, pid: u32, random: u32) -> String {
    if let Some(pod) = pod_name.filter(|p| !p.trim().is_empty()) {
        return pod.trim().to_string();
    }
    let host = host
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown-host".into());
    format!("{host}_{pid}_{random:08x}")
}

/// Random enough to tell two processes with the same host and pid apart (pid reuse, containers).
fn random_u32() -> u32 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos(),
    );
    h.finish() as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pod_name_when_set() {
        assert_eq!(
            from_parts(Some("op-7d9f".into()), Some("h".into()), 1, 2),
            "op-7d9f"
        );
    }

    #[test]
    fn else_host_pid_and_a_random_suffix() {
        assert_eq!(
            from_parts(None, Some("box\n".into()), 42, 0xab),
            "box_42_000000ab"
        );
        assert_eq!(
            from_parts(Some(" ".into()), None, 42, 1),
            "unknown-host_42_00000001"
        );
        assert_ne!(
            from_parts(None, Some("box".into()), 42, 1),
            from_parts(None, Some("box".into()), 42, 2)
        );
    }
}
