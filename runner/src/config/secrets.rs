//! Secrets in the configuration (`overrides.mysql.password`, a Keycloak client secret, a
//! token): answered as `"***"` by `GET /config`, and a `PUT`/`PATCH` that sends `"***"`
//! back keeps the stored value, so an operator can edit what `GET` gave without retyping
//! or erasing a password.

use serde_json::{Map, Value};

/// What is shown instead of a secret.
pub const REDACTED: &str = "***";

/// Whether a key names a secret.
fn is_secret(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    [
        "password",
        "passwd",
        "secret",
        "token",
        "credential",
        "api_key",
        "apikey",
    ]
    .iter()
    .any(|s| k.contains(s))
}

/// `v` with every secret's value (a non-empty string under a secret key) replaced by
/// [`REDACTED`].
pub fn redact(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, v)| {
                    let shown = match v {
                        Value::String(s) if is_secret(k) && !s.is_empty() => {
                            Value::String(REDACTED.into())
                        }
                        other => redact(other),
                    };
                    (k.clone(), shown)
                })
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(redact).collect()),
        other => other.clone(),
    }
}

/// Puts back into `new` each secret it carries as [`REDACTED`] from `stored` (the same key
/// at the same place); one with no stored value is removed rather than saved as `"***"`.
pub fn restore(new: &mut Value, stored: &Value) {
    let Value::Object(m) = new else {
        if let (Value::Array(a), Value::Array(b)) = (new, stored) {
            for (n, s) in a.iter_mut().zip(b) {
                restore(n, s);
            }
        }
        return;
    };
    let empty = Map::new();
    let stored = stored.as_object().unwrap_or(&empty);
    let mut gone = Vec::new();
    for (k, v) in m.iter_mut() {
        if is_secret(k) && v.as_str() == Some(REDACTED) {
            match stored.get(k) {
                Some(s) => *v = s.clone(),
                None => gone.push(k.clone()),
            }
        } else {
            restore(v, stored.get(k).unwrap_or(&Value::Null));
        }
    }
    for k in gone {
        m.remove(&k);
    }
}

/// The secret values of a configuration, masked out of what jobs write: a job may be
/// handed a token in its `params` and log it, or fail with it in its error; neither the
/// runner's log, the dashboard nor the history keeps it (as CI systems mask their secrets).
#[derive(Debug, Default)]
pub struct Mask {
    /// Longest first, so that a secret containing another is masked whole.
    values: Vec<String>,
}

/// Shorter values are not masked: they would blank out ordinary words.
const MASK_MIN_LEN: usize = 4;

impl Mask {
    /// Every non-empty string under a secret key of `raw`, at any depth.
    pub fn of(raw: &Value) -> Self {
        fn collect(v: &Value, under_secret: bool, out: &mut Vec<String>) {
            match v {
                Value::String(s) if under_secret && s.len() >= MASK_MIN_LEN && s != REDACTED => {
                    out.push(s.clone())
                }
                Value::Object(m) => m
                    .iter()
                    .for_each(|(k, v)| collect(v, under_secret || is_secret(k), out)),
                Value::Array(a) => a.iter().for_each(|v| collect(v, under_secret, out)),
                _ => {}
            }
        }
        let mut values = Vec::new();
        collect(raw, false, &mut values);
        values.sort_by(|a, b| b.len().cmp(&a.len()).then(a.cmp(b)));
        values.dedup();
        Self { values }
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// `text` with every secret value replaced by [`REDACTED`].
    pub fn apply(&self, mut text: String) -> String {
        for secret in &self.values {
            if text.contains(secret.as_str()) {
                text = text.replace(secret.as_str(), REDACTED);
            }
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn secrets_are_shown_redacted_and_kept_when_sent_back_redacted() {
        let stored = json!({"overrides": {
            "mysql": {"host": "db", "password": "pw"},
            "apiservice": {"keycloak": {"client_secret": "s3", "host": "k"}},
            "list": [{"token": "t"}]}});
        let shown = redact(&stored);
        assert_eq!(shown["overrides"]["mysql"]["password"], "***");
        assert_eq!(shown["overrides"]["mysql"]["host"], "db");
        assert_eq!(
            shown["overrides"]["apiservice"]["keycloak"]["client_secret"],
            "***"
        );
        assert_eq!(shown["overrides"]["list"][0]["token"], "***");
        assert!(!shown.to_string().contains("pw") && !shown.to_string().contains("s3"));

        // The operator edits what GET gave and sends it back.
        let mut new = shown.clone();
        new["overrides"]["mysql"]["host"] = json!("db2");
        new["overrides"]["new_client"] = json!({"password": "***"});
        restore(&mut new, &stored);
        assert_eq!(new["overrides"]["mysql"]["password"], "pw");
        assert_eq!(new["overrides"]["mysql"]["host"], "db2");
        assert_eq!(
            new["overrides"]["apiservice"]["keycloak"]["client_secret"],
            "s3"
        );
        assert_eq!(new["overrides"]["list"][0]["token"], "t");
        assert_eq!(new["overrides"]["new_client"], json!({}));
        // A new value is taken as sent.
        let mut changed = json!({"overrides": {"mysql": {"password": "new"}}});
        restore(&mut changed, &stored);
        assert_eq!(changed["overrides"]["mysql"]["password"], "new");
    }

    #[test]
    fn the_mask_hides_every_secret_value_and_nothing_else() {
        let raw = json!({"pipelines": {"p": {"jobs": [{"params": {
            "api_token": "tok-123456", "auth": {"credentials": ["user-pw-1", "pw"]},
            "note": "tok-123456 is not a secret here"}}]}},
            "overrides": {"mysql": {"password": "hunter2", "user": "hunter"}}});
        let mask = Mask::of(&raw);
        assert_eq!(
            mask.apply("sent tok-123456 and user-pw-1 as hunter with hunter2; pw".into()),
            "sent *** and *** as hunter with ***; pw"
        );
        assert!(Mask::of(&json!({"token": "***"})).is_empty());
        // A secret containing another is masked whole.
        let nested = Mask::of(&json!({"token": "abcd", "password": "xxabcdxx"}));
        assert_eq!(nested.apply("[xxabcdxx]".into()), "[***]");
    }
}
