//! ECS `secrets[].valueFrom` → a key of a Kubernetes Secret in the task's namespace.
//!
//! The operator never reads Secret values: it only writes `secretKeyRef`s, which the kubelet resolves in
//! the pod's own namespace, so a task can never reach another namespace's Secrets.
//!
//! | valueFrom | Secret | key |
//! |---|---|---|
//! | `name:key` | `name` | `key` |
//! | `name` | `name` | `value` |
//! | `arn:aws:secretsmanager:REGION:ACCT:secret:NAME[:JSON_KEY[:STAGE[:VERSION]]]` | NAME without its `-XXXXXX` suffix | JSON_KEY, else `value` |
//! | `arn:aws:ssm:REGION:ACCT:parameter/PATH/NAME` or `/PATH/NAME` | `path-name` (lowercased) | `value` |

use super::names::{is_dns_subdomain, is_secret_key};
use super::not_honoured::nh;
use crate::api::task_definition::NotHonouredField;

use super::TranslateError;

/// Where a secret's value lives in Kubernetes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SecretRef {
    /// Secret name (same namespace as the task).
    pub name: String,
    /// Key in the Secret's data.
    pub key: String,
}

/// The key used when `valueFrom` names no key: a Secret holding one value.
pub(crate) const DEFAULT_KEY: &str = "value";

/// Map one `valueFrom`. `field` is its JSON path, for messages. Version stages and ids of Secrets
/// Manager ARNs select a version a Kubernetes Secret does not have, so they come back as not honoured.
pub(crate) fn secret_ref(
    value_from: &str,
    field: &str,
) -> Result<(SecretRef, Option<NotHonouredField>), TranslateError> {
    let invalid = |reason: String| TranslateError::invalid(field, value_from, reason);
    let mut version = None;
    let (name, key) = if let Some(rest) = value_from.strip_prefix("arn:") {
        // arn:PARTITION:SERVICE:REGION:ACCOUNT:RESOURCE…
        let parts: Vec<&str> = rest.split(':').collect();
        if parts.len() < 5 {
            return Err(invalid(
                "not a complete ARN; write arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME, an SSM parameter ARN, or name:key of a Secret in the task's namespace".into(),
            ));
        }
        match parts[1] {
            "secretsmanager" => {
                if parts[4] != "secret" || parts.len() < 6 || parts[5].is_empty() {
                    return Err(invalid(
                        "a Secrets Manager reference must be arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME[:JSON_KEY[:VERSION_STAGE[:VERSION_ID]]]".into(),
                    ));
                }
                if parts.len() > 9 {
                    return Err(invalid(
                        "too many ':' parts after the secret name; the form is …:secret:NAME[:JSON_KEY[:VERSION_STAGE[:VERSION_ID]]]".into(),
                    ));
                }
                let stage = parts.get(7).filter(|s| !s.is_empty());
                let id = parts.get(8).filter(|s| !s.is_empty());
                if stage.is_some() || id.is_some() {
                    version = Some(nh(
                        field,
                        "the version stage / version id select a Secrets Manager version; a Kubernetes Secret has one value per key, which is used",
                    ));
                }
                let key = parts
                    .get(6)
                    .filter(|k| !k.is_empty())
                    .map_or(DEFAULT_KEY, |k| k);
                (strip_random_suffix(parts[5]).to_string(), key.to_string())
            }
            "ssm" => {
                let resource = parts[4..].join(":");
                match resource.strip_prefix("parameter") {
                    Some(path) if path.starts_with('/') => {
                        (ssm_secret_name(path), DEFAULT_KEY.to_string())
                    }
                    _ => {
                        return Err(invalid(
                            "an SSM reference must be arn:aws:ssm:REGION:ACCOUNT:parameter/NAME or …:parameter/PATH/NAME".into(),
                        ));
                    }
                }
            }
            service => {
                return Err(invalid(format!(
                    "the ARN names the AWS service {service:?}; only Secrets Manager and SSM Parameter Store references map to Kubernetes Secrets (or write name:key of a Secret in the task's namespace)"
                )));
            }
        }
    } else if value_from.starts_with('/') {
        (ssm_secret_name(value_from), DEFAULT_KEY.to_string())
    } else if let Some((name, key)) = value_from.split_once(':') {
        (name.to_string(), key.to_string())
    } else {
        (value_from.to_string(), DEFAULT_KEY.to_string())
    };
    if !is_dns_subdomain(&name) {
        return Err(invalid(format!(
            "it refers to the Kubernetes Secret {name:?}, which is not a valid Secret name (lowercase letters, digits, '-' and '.', at most 253 characters); create the Secret under a valid name and write name:key"
        )));
    }
    if !is_secret_key(&key) {
        return Err(invalid(format!(
            "it refers to the key {key:?} of Secret {name:?}, which is not a valid Secret key (letters, digits, '-', '_' and '.'); use a valid key"
        )));
    }
    Ok((SecretRef { name, key }, version))
}

/// Secrets Manager appends `-` and six random characters to every secret name in its ARNs; the Secret
/// in Kubernetes is created under the name the user chose.
fn strip_random_suffix(name: &str) -> &str {
    let b = name.as_bytes();
    if b.len() > 7
        && b[b.len() - 7] == b'-'
        && b[b.len() - 6..].iter().all(u8::is_ascii_alphanumeric)
    {
        &name[..name.len() - 7]
    } else {
        name
    }
}

/// `/PATH/NAME` → `path-name`: Secret names cannot hold `/`.
fn ssm_secret_name(path: &str) -> String {
    path.replace('/', "-")
        .to_ascii_lowercase()
        .trim_start_matches('-')
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    const F: &str = "containerDefinitions[0].secrets[0].valueFrom";

    fn ok(value_from: &str) -> (String, String) {
        let (r, _) = secret_ref(value_from, F).unwrap();
        (r.name, r.key)
    }

    fn pair(name: &str, key: &str) -> (String, String) {
        (name.to_string(), key.to_string())
    }

    #[test]
    fn name_and_key() {
        assert_eq!(ok("db-creds:password"), pair("db-creds", "password"));
        assert_eq!(ok("db-creds:DB_PASSWORD"), pair("db-creds", "DB_PASSWORD"));
        assert_eq!(ok("tls.v1:tls.crt"), pair("tls.v1", "tls.crt"));
    }

    #[test]
    fn name_alone_uses_value_key() {
        assert_eq!(ok("api-token"), pair("api-token", "value"));
    }

    #[test]
    fn secrets_manager_arn() {
        let arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:prod-db-AbC123";
        assert_eq!(ok(arn), pair("prod-db", "value"));
        assert_eq!(
            ok(&format!("{arn}:password::")),
            pair("prod-db", "password")
        );
        assert_eq!(ok(&format!("{arn}:password")), pair("prod-db", "password"));
        // A partial ARN (no random suffix) keeps the whole name.
        assert_eq!(
            ok("arn:aws:secretsmanager:us-east-1:123456789012:secret:db"),
            pair("db", "value")
        );
        // Other partitions.
        assert_eq!(
            ok("arn:aws-cn:secretsmanager:cn-north-1:123456789012:secret:db-xYz789"),
            pair("db", "value")
        );
        // An empty JSON key falls back to value.
        assert_eq!(
            ok("arn:aws:secretsmanager:us-east-1:1:secret:db-xYz789::AWSCURRENT:"),
            pair("db", "value")
        );
    }

    #[test]
    fn secrets_manager_versions_are_reported() {
        let (_, v) = secret_ref(
            "arn:aws:secretsmanager:us-east-1:1:secret:db-xYz789:password:AWSPREVIOUS:",
            F,
        )
        .unwrap();
        assert_eq!(v.unwrap().field, F);
        let (_, v) = secret_ref(
            "arn:aws:secretsmanager:us-east-1:1:secret:db-xYz789:password::1234-abcd",
            F,
        )
        .unwrap();
        assert!(v.is_some());
        let (_, v) =
            secret_ref("arn:aws:secretsmanager:us-east-1:1:secret:db:password::", F).unwrap();
        assert!(v.is_none());
    }

    #[test]
    fn ssm_parameters() {
        assert_eq!(
            ok("arn:aws:ssm:us-east-1:123456789012:parameter/prod/DB/password"),
            pair("prod-db-password", "value")
        );
        assert_eq!(
            ok("arn:aws:ssm:us-east-1:123456789012:parameter/token"),
            pair("token", "value")
        );
        assert_eq!(ok("/prod/api/Token"), pair("prod-api-token", "value"));
    }

    #[test]
    fn invalid_references_name_the_field() {
        for bad in [
            "arn:aws:s3:::bucket/key",
            "arn:aws:kms:us-east-1:1:key/abc",
            "arn:aws:secretsmanager:us-east-1:1:notsecret:x",
            "arn:aws:secretsmanager:us-east-1:1:secret:",
            "arn:aws:secretsmanager:us-east-1:1:secret:a:b:c:d:e",
            "arn:aws:ssm:us-east-1:1:document/x",
            "arn:aws",
            "Db_Creds:password",
            "db:pass/word",
            "db:",
            ":key",
            "a/b",
            "/prod/db_password",
            "arn:aws:secretsmanager:us-east-1:1:secret:Prod_DB-AbC123",
            "",
        ] {
            let e = secret_ref(bad, F).unwrap_err();
            assert!(e.to_string().starts_with(F), "{bad}: {e}");
        }
        let e = secret_ref("arn:aws:s3:::bucket/key", F).unwrap_err();
        assert!(e.to_string().contains("\"s3\""), "{e}");
    }

    #[test]
    fn suffix_is_stripped_only_when_it_looks_random() {
        assert_eq!(strip_random_suffix("db-AbC123"), "db");
        assert_eq!(strip_random_suffix("db-AbC12"), "db-AbC12");
        assert_eq!(strip_random_suffix("-AbC123"), "-AbC123");
        assert_eq!(strip_random_suffix("db_AbC123"), "db_AbC123");
    }
}
