//! Label names, label syntax and group label values.

use crate::placement::{
    attribute_label, group_label_value, is_valid_label_key, is_valid_label_value, node_label_value,
};

#[test]
fn attribute_table() {
    assert_eq!(
        attribute_label("ecs.availability-zone"),
        Some("topology.kubernetes.io/zone")
    );
    assert_eq!(
        attribute_label("ecs.instance-type"),
        Some("node.kubernetes.io/instance-type")
    );
    assert_eq!(attribute_label("ecs.os-type"), Some("kubernetes.io/os"));
    assert_eq!(
        attribute_label("ecs.cpu-architecture"),
        Some("kubernetes.io/arch")
    );
    assert_eq!(attribute_label("ecs.ami-id"), Some("ecs.ami-id"));
    assert_eq!(attribute_label("team"), Some("team"));
    assert_eq!(
        attribute_label("example.com/team"),
        Some("example.com/team")
    );
    assert_eq!(attribute_label("bad key"), None);
    assert_eq!(attribute_label("Example.com/team"), None);
}

#[test]
fn value_spelling() {
    assert_eq!(node_label_value("kubernetes.io/os", "LINUX"), "linux");
    assert_eq!(node_label_value("kubernetes.io/arch", "X86_64"), "amd64");
    assert_eq!(node_label_value("kubernetes.io/arch", "arm64"), "arm64");
    assert_eq!(
        node_label_value("topology.kubernetes.io/zone", "US-east-1a"),
        "US-east-1a"
    );
}

#[test]
fn label_keys() {
    for ok in [
        "a",
        "app",
        "A.b-c_d",
        "kubernetes.io/os",
        "a.b.c/x",
        &"n".repeat(63),
        "0x",
    ] {
        assert!(is_valid_label_key(ok), "{ok}");
    }
    let long_prefix = format!("{}/x", "p".repeat(254));
    for bad in [
        "",
        "-a",
        "a-",
        "a b",
        "a:b",
        "/a",
        "a/",
        "a/b/c",
        "A.io/x",
        "a..b/x",
        "-a.io/x",
        &"n".repeat(64),
        &long_prefix,
    ] {
        assert!(!is_valid_label_key(bad), "{bad}");
    }
}

#[test]
fn label_values() {
    for ok in ["", "a", "us-east-1a", "t2.small", "A_b", &"v".repeat(63)] {
        assert!(is_valid_label_value(ok), "{ok}");
    }
    for bad in ["-a", "a.", "a b", "a:b", "a/b", "é", &"v".repeat(64)] {
        assert!(!is_valid_label_value(bad), "{bad}");
    }
}

#[test]
fn group_label_values() {
    assert_eq!(group_label_value("service:web"), "service.web");
    assert_eq!(group_label_value("family:my_app-2"), "family.my_app-2");
    assert_eq!(group_label_value("database"), "database");
    assert_eq!(group_label_value(""), "");

    // Lossy mappings carry a hash of the whole group, so near names stay apart.
    let slash = group_label_value("team/a");
    assert!(
        slash.starts_with("team_a-") && slash.len() == "team_a-".len() + 8,
        "{slash}"
    );
    assert_ne!(slash, group_label_value("team+a"));
    assert_ne!(slash, "team_a");

    // Too long: truncated prefix plus hash, at most 63 characters.
    let long = format!("service:{}", "x".repeat(100));
    let value = group_label_value(&long);
    assert_eq!(value.len(), 63, "{value}");
    assert!(value.starts_with("service.xxx"));
    assert_ne!(
        value,
        group_label_value(&format!("service:{}", "x".repeat(101)))
    );

    // Edges that are not alphanumeric are trimmed; nothing left means the hash alone.
    let edges = group_label_value(":web:");
    assert!(edges.starts_with("web-"), "{edges}");
    let bare = group_label_value("::");
    assert_eq!(bare.len(), 8, "{bare}");

    // Stable across calls and releases: the FNV-1a value, checked independently.
    assert_eq!(group_label_value("a b"), group_label_value("a b"));
    assert_eq!(group_label_value("a b"), "a_b-10a3f9f2");
}
