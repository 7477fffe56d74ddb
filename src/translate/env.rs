//! `environment` and `secrets` → the container's `env`, and the escaping that keeps ECS strings literal.
//!
//! Kubernetes expands `$(NAME)` in `command`, `args`, `env` values and exec probe commands and turns `$$`
//! into `$`; Docker does neither. Every `$` is therefore written as `$$`, which Kubernetes turns back into
//! exactly the string the task definition holds.

use k8s_openapi::api::core::v1::{EnvVar, EnvVarSource, SecretKeySelector};

use super::TranslateError;
use super::not_honoured::nh;
use super::secrets::secret_ref;
use crate::api::common::KeyValuePair;
use crate::api::task_definition::{ContainerDefinition, NotHonouredField};

/// `s` as a Kubernetes string that expands to exactly `s`.
pub(crate) fn literal(s: &str) -> String {
    s.replace('$', "$$")
}

/// Every string of `v` through [`literal`].
pub(crate) fn literals(v: &[String]) -> Vec<String> {
    v.iter().map(|s| literal(s)).collect()
}

/// The container's `env`: `environment` in order, then `secrets`. A name given twice keeps the place of
/// its first occurrence and the value of its last, as Docker lets a later duplicate win.
pub(crate) fn env(
    c: &ContainerDefinition,
    path: &str,
    report: &mut Vec<NotHonouredField>,
) -> Result<Vec<EnvVar>, TranslateError> {
    let mut out: Vec<EnvVar> = Vec::new();
    for (j, kv) in c.environment.iter().flatten().enumerate() {
        let field = format!("{path}.environment[{j}]");
        let Some(var) = plain(kv, &field, report)? else {
            continue;
        };
        put(&mut out, var);
    }
    for (j, s) in c.secrets.iter().flatten().enumerate() {
        let field = format!("{path}.secrets[{j}]");
        check_name(&s.name, &format!("{field}.name"))?;
        let (r, version) = secret_ref(&s.value_from, &format!("{field}.valueFrom"))?;
        report.extend(version);
        put(
            &mut out,
            EnvVar {
                name: s.name.clone(),
                value: None,
                value_from: Some(EnvVarSource {
                    secret_key_ref: Some(SecretKeySelector {
                        name: r.name,
                        key: r.key,
                        optional: None,
                    }),
                    ..Default::default()
                }),
            },
        );
    }
    Ok(out)
}

/// One `environment` entry.
fn plain(
    kv: &KeyValuePair,
    field: &str,
    report: &mut Vec<NotHonouredField>,
) -> Result<Option<EnvVar>, TranslateError> {
    let Some(name) = kv.name.as_deref().filter(|n| !n.is_empty()) else {
        report.push(nh(field, "an environment variable needs a name"));
        return Ok(None);
    };
    check_name(name, &format!("{field}.name"))?;
    Ok(Some(EnvVar {
        name: name.to_string(),
        value: Some(literal(kv.value.as_deref().unwrap_or_default())),
        value_from: None,
    }))
}

fn put(out: &mut Vec<EnvVar>, var: EnvVar) {
    match out.iter_mut().find(|v| v.name == var.name) {
        Some(existing) => *existing = var,
        None => out.push(var),
    }
}

/// Kubernetes accepts any printable ASCII except `=` in a variable name.
fn check_name(name: &str, field: &str) -> Result<(), TranslateError> {
    if !name.is_empty()
        && name
            .bytes()
            .all(|b| (b' '..=b'~').contains(&b) && b != b'=')
    {
        Ok(())
    } else {
        Err(TranslateError::invalid(
            field,
            name,
            "an environment variable name must be printable ASCII without '='",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::task_definition::Secret;

    fn kv(name: &str, value: &str) -> KeyValuePair {
        KeyValuePair {
            name: Some(name.into()),
            value: Some(value.into()),
        }
    }

    fn values(env: &[EnvVar]) -> Vec<(String, Option<String>)> {
        env.iter()
            .map(|e| (e.name.clone(), e.value.clone()))
            .collect()
    }

    #[test]
    fn dollar_signs_stay_literal() {
        assert_eq!(
            literal("echo $HOME $(date) $$"),
            "echo $$HOME $$(date) $$$$"
        );
        assert_eq!(literal("plain"), "plain");
        assert_eq!(literals(&["$a".into(), "b".into()]), vec!["$$a", "b"]);
    }

    #[test]
    fn environment_keeps_order_and_later_duplicates_win() {
        let c = ContainerDefinition {
            environment: Some(vec![kv("A", "1"), kv("B", "2"), kv("A", "3"), kv("C", "")]),
            ..Default::default()
        };
        let mut report = vec![];
        let env = env(&c, "containerDefinitions[0]", &mut report).unwrap();
        assert_eq!(
            values(&env),
            vec![
                ("A".into(), Some("3".into())),
                ("B".into(), Some("2".into())),
                ("C".into(), Some("".into()))
            ]
        );
        assert!(report.is_empty());
    }

    #[test]
    fn a_missing_value_is_empty_and_a_missing_name_is_reported() {
        let c = ContainerDefinition {
            environment: Some(vec![
                KeyValuePair {
                    name: Some("X".into()),
                    value: None,
                },
                KeyValuePair {
                    name: None,
                    value: Some("v".into()),
                },
            ]),
            ..Default::default()
        };
        let mut report = vec![];
        let env = env(&c, "containerDefinitions[2]", &mut report).unwrap();
        assert_eq!(values(&env), vec![("X".into(), Some("".into()))]);
        assert_eq!(report[0].field, "containerDefinitions[2].environment[1]");
    }

    #[test]
    fn secrets_become_secret_key_refs_after_environment() {
        let c = ContainerDefinition {
            environment: Some(vec![kv("MODE", "prod")]),
            secrets: Some(vec![Secret {
                name: "DB_PASSWORD".into(),
                value_from: "db:password".into(),
            }]),
            ..Default::default()
        };
        let env = env(&c, "containerDefinitions[0]", &mut vec![]).unwrap();
        assert_eq!(env[0].name, "MODE");
        assert_eq!(env[1].name, "DB_PASSWORD");
        assert_eq!(env[1].value, None);
        let r = env[1]
            .value_from
            .as_ref()
            .unwrap()
            .secret_key_ref
            .as_ref()
            .unwrap();
        assert_eq!((r.name.as_str(), r.key.as_str()), ("db", "password"));
    }

    #[test]
    fn bad_secret_reference_fails_with_its_path() {
        let c = ContainerDefinition {
            secrets: Some(vec![Secret {
                name: "X".into(),
                value_from: "arn:aws:s3:::b".into(),
            }]),
            ..Default::default()
        };
        let e = env(&c, "containerDefinitions[1]", &mut vec![]).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("containerDefinitions[1].secrets[0].valueFrom"),
            "{e}"
        );
    }

    #[test]
    fn invalid_names_fail() {
        let c = ContainerDefinition {
            environment: Some(vec![kv("A=B", "1")]),
            ..Default::default()
        };
        let e = env(&c, "containerDefinitions[0]", &mut vec![]).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("containerDefinitions[0].environment[0].name"),
            "{e}"
        );
    }
}
