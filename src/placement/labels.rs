//! Kubernetes label names for ECS attributes and task groups, and label syntax checks.

/// The pod label carrying a task's ECS group (`service:web`, `family:web`, …), through [`group_label_value`].
/// `task:group` terms select pods by it.
pub const GROUP_LABEL: &str = "ecs.operator.dev/group";

/// Node label for `attribute:ecs.availability-zone`.
pub const ZONE_LABEL: &str = "topology.kubernetes.io/zone";
/// Node label for `attribute:ecs.instance-type`.
pub const INSTANCE_TYPE_LABEL: &str = "node.kubernetes.io/instance-type";
/// Node label for `attribute:ecs.os-type`.
pub const OS_LABEL: &str = "kubernetes.io/os";
/// Node label for `attribute:ecs.cpu-architecture`.
pub const ARCH_LABEL: &str = "kubernetes.io/arch";
/// Node label for `ec2InstanceId`, and the topology of `instanceId`/`host` spread and `distinctInstance`.
pub const HOSTNAME_LABEL: &str = "kubernetes.io/hostname";

/// The node label key standing for an ECS attribute, or `None` when the attribute name cannot be a label key.
pub fn attribute_label(name: &str) -> Option<&str> {
    match name {
        "ecs.availability-zone" => Some(ZONE_LABEL),
        "ecs.instance-type" => Some(INSTANCE_TYPE_LABEL),
        "ecs.os-type" => Some(OS_LABEL),
        "ecs.cpu-architecture" => Some(ARCH_LABEL),
        other if is_valid_label_key(other) => Some(other),
        _ => None,
    }
}

/// The node label value standing for an ECS attribute value under label `key`: ECS spells operating systems and
/// architectures differently from Kubernetes (`LINUX`/`linux`, `x86_64`/`amd64`).
pub fn node_label_value(key: &str, ecs_value: &str) -> String {
    match key {
        OS_LABEL => ecs_value.to_ascii_lowercase(),
        ARCH_LABEL => match ecs_value.to_ascii_lowercase().as_str() {
            "x86_64" => "amd64".to_string(),
            other => other.to_string(),
        },
        _ => ecs_value.to_string(),
    }
}

/// The value of [`GROUP_LABEL`] for an ECS task group.
///
/// Label values allow at most 63 characters of `[A-Za-z0-9._-]`, starting and ending alphanumeric, while ECS
/// groups contain `:`. So `:` becomes `.` (`service:web` → `service.web`). Any other change (another character
/// replaced by `_`, an edge trimmed, or truncation past 63 characters) could make two groups collide, so then
/// the value is a readable prefix plus `-` and eight hex digits of a stable (FNV-1a) hash of the whole group.
/// The result is always a valid label value and depends only on `group`.
pub fn group_label_value(group: &str) -> String {
    let mut lossless = true;
    let mapped: String = group
        .chars()
        .map(|c| match c {
            ':' => '.',
            c if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') => c,
            _ => {
                lossless = false;
                '_'
            }
        })
        .collect();
    if lossless && is_valid_label_value(&mapped) {
        return mapped;
    }
    let hash = format!("{:08x}", fnv1a32(group.as_bytes()));
    // 63 = prefix + '-' + 8 hash digits. `mapped` is ASCII, so byte and character counts agree.
    let prefix = mapped.trim_start_matches(|c: char| !c.is_ascii_alphanumeric());
    let prefix = prefix.get(..prefix.len().min(54)).unwrap_or_default();
    let prefix = prefix.trim_end_matches(|c: char| !c.is_ascii_alphanumeric());
    if prefix.is_empty() {
        hash
    } else {
        format!("{prefix}-{hash}")
    }
}

/// 32-bit FNV-1a: tiny, and unlike `std`'s hasher its output is fixed forever, as label values must be.
fn fnv1a32(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5, |h, &b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    })
}

/// Whether `key` is a valid label key: `[prefix/]name`, the prefix a DNS subdomain of at most 253 characters,
/// the name at most 63 characters of `[A-Za-z0-9._-]` starting and ending alphanumeric.
pub fn is_valid_label_key(key: &str) -> bool {
    match key.split_once('/') {
        Some((prefix, name)) => is_dns_subdomain(prefix) && is_label_name(name),
        None => is_label_name(key),
    }
}

/// Whether `value` is a valid label value: empty, or a valid label name.
pub fn is_valid_label_value(value: &str) -> bool {
    value.is_empty() || is_label_name(value)
}

fn is_label_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 63
        && bytes.first().is_some_and(u8::is_ascii_alphanumeric)
        && bytes.last().is_some_and(u8::is_ascii_alphanumeric)
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

fn is_dns_subdomain(prefix: &str) -> bool {
    prefix.len() <= 253
        && prefix.split('.').all(|part| {
            let bytes = part.as_bytes();
            let edge = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
            bytes.first().is_some_and(edge)
                && bytes.last().is_some_and(edge)
                && bytes.iter().all(|b| edge(b) || *b == b'-')
        })
}
