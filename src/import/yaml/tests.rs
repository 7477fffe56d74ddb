use proptest::prelude::*;
use serde_json::{Value, json};

use super::{is_plain_safe, to_string};

fn read(yaml: &str) -> Value {
    // A YAML 1.2 reader; kubectl's YAML 1.1 reader is used in tests/import.rs.
    serde_yaml_ng::from_str(yaml).unwrap_or_else(|e| panic!("{e}\n{yaml}"))
}

#[test]
fn yaml_11_booleans_and_nulls_are_quoted() {
    for s in [
        "on", "On", "ON", "off", "yes", "Yes", "no", "NO", "y", "Y", "n", "N", "true", "False",
        "null", "~",
    ] {
        assert!(!is_plain_safe(s), "{s}");
        let yaml = to_string(&json!({ "TLS": s }));
        assert_eq!(yaml, format!("TLS: \"{s}\"\n"));
    }
}

#[test]
fn numbers_dates_and_indicators_written_as_strings_are_quoted() {
    for s in [
        "256",
        "0x1F",
        "1_000",
        "1:20",
        "1e3",
        ".inf",
        ".NaN",
        "2001-12-14",
        "-1",
        "+1",
        "=",
        "<<",
        "*ref",
        "&a",
        "!tag",
        "%x",
        "@x",
        "`x",
        "'x",
        "\"x",
        "[a]",
        "{a}",
        "- a",
        "? a",
        "| a",
        "> a",
        "#x",
        "a: b",
        "a #b",
        "a:",
        "",
        " a",
        "a ",
    ] {
        assert!(!is_plain_safe(s), "{s}");
        assert_eq!(read(&to_string(&json!({ "k": s })))["k"], json!(s), "{s}");
    }
}

#[test]
fn ordinary_words_images_and_paths_stay_plain() {
    for s in [
        "nginx",
        "public.ecr.aws/nginx/nginx:1.27",
        "/var/log",
        "awslogs-group",
        "CMD-SHELL",
        "curl -f http://localhost/ || exit 1",
        "ONE_TWO",
        "key=value",
    ] {
        assert!(is_plain_safe(s), "{s}");
    }
    assert_eq!(
        to_string(
            &json!({"image": "nginx:1.27", "options": {"TLS": "on", "awslogs-group": "/ecs/web"}})
        ),
        "image: nginx:1.27\noptions:\n  TLS: \"on\"\n  awslogs-group: /ecs/web\n"
    );
}

#[test]
fn nested_sequences_and_mappings_in_kubectl_layout() {
    let value = json!({
        "spec": {
            "containerDefinitions": [
                {"name": "web", "command": ["sh", "-c", "echo on"], "portMappings": [{"containerPort": 80}]},
                {"name": "log", "essential": false, "environment": []}
            ],
            "tags": {}
        }
    });
    let yaml = to_string(&value);
    assert_eq!(
        yaml,
        "spec:\n  containerDefinitions:\n  - command:\n    - sh\n    - \"-c\"\n    - echo on\n    name: web\n    portMappings:\n    - containerPort: 80\n  - environment: []\n    essential: false\n    name: log\n  tags: {}\n"
    );
    assert_eq!(read(&yaml), value);
}

#[test]
fn multi_line_text_is_a_literal_block() {
    let value = json!({"command": ["#!/bin/sh\nset -e\n\necho ready\n", "a\nb"]});
    let yaml = to_string(&value);
    assert_eq!(
        yaml,
        "command:\n- |\n  #!/bin/sh\n  set -e\n\n  echo ready\n- |-\n  a\n  b\n"
    );
    assert_eq!(read(&yaml), value);
}

#[test]
fn text_a_block_cannot_carry_exactly_is_quoted() {
    for s in [
        " indented\nx",
        "a\n\n",
        "tab\there\nx",
        "trailing \nx",
        "\nleading",
    ] {
        let yaml = to_string(&json!({ "k": s }));
        assert!(yaml.starts_with("k: \""), "{yaml}");
        assert_eq!(read(&yaml)["k"], json!(s));
    }
}

fn tricky_string() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z0-9 :#\\-_./@=+,%'\"\\[\\]{}!&*|>?~`\n\t]{0,12}",
        prop::sample::select(vec![
            "on",
            "off",
            "yes",
            "no",
            "y",
            "n",
            "null",
            "~",
            "1:20",
            "0x10",
            "1e3",
            ".inf",
            "<<",
            "2020-01-01",
            "-",
            "- x",
            "a: b",
            "a #b",
            "|",
            ">",
        ])
        .prop_map(String::from),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        tricky_string().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::btree_map(tricky_string(), inner, 0..5)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #[test]
    fn every_document_reads_back_as_the_same_json(
        map in prop::collection::btree_map(tricky_string(), json_value(), 1..6)
    ) {
        let value = Value::Object(map.into_iter().collect());
        let yaml = to_string(&value);
        prop_assert_eq!(read(&yaml), value, "{}", yaml);
    }

}
