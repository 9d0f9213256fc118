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

/// `v` with every secret's value replaced by [`REDACTED`]: under a secret key, a
/// non-empty string or a number, and every one nested in an object or array there
/// (`"credentials": ["pw"]`, `"secret": {"key": "k"}`).
pub fn redact(v: &Value) -> Value {
    redact_under(v, false)
}

fn redact_under(v: &Value, secret: bool) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, v)| (k.clone(), redact_under(v, secret || is_secret(k))))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(|v| redact_under(v, secret)).collect()),
        Value::String(s) if secret && !s.is_empty() => Value::String(REDACTED.into()),
        Value::Number(_) if secret => Value::String(REDACTED.into()),
        other => other.clone(),
    }
}

/// Puts back into `new` each secret it carries as [`REDACTED`] from `stored`, at the same
/// key path: an object's key, and in an array the element of the same `name` (a job, a
/// pipeline's entry), or of the same index only where the two arrays name none and are
/// as long; reordering a job list never moves one job's secret to another. A `"***"` with
/// no stored value at its path is removed rather than saved as `"***"`; one where no
/// secret can be (under no secret key) is taken as sent.
pub fn restore(new: &mut Value, stored: &Value) {
    restore_under(new, stored, false)
}

fn restore_under(new: &mut Value, stored: &Value, secret: bool) {
    match new {
        Value::Object(m) => {
            let empty = Map::new();
            let stored = stored.as_object().unwrap_or(&empty);
            let mut gone = Vec::new();
            for (k, v) in m.iter_mut() {
                let secret = secret || is_secret(k);
                match (secret && v.as_str() == Some(REDACTED), stored.get(k)) {
                    (true, Some(s)) => *v = s.clone(),
                    (true, None) => gone.push(k.clone()),
                    (false, s) => restore_under(v, s.unwrap_or(&Value::Null), secret),
                }
            }
            for k in gone {
                m.remove(&k);
            }
        }
        Value::Array(a) => {
            let stored = stored.as_array().map(Vec::as_slice).unwrap_or_default();
            let by_index =
                a.len() == stored.len() && a.iter().chain(stored).all(|v| name(v).is_none());
            let mut gone = Vec::new();
            for (i, n) in a.iter_mut().enumerate() {
                let s = match name(n) {
                    Some(own) => stored.iter().find(|s| name(s) == Some(own)),
                    None if by_index => stored.get(i),
                    None => None,
                };
                match (secret && n.as_str() == Some(REDACTED), s) {
                    (true, Some(s)) => *n = s.clone(),
                    (true, None) => gone.push(i),
                    (false, s) => restore_under(n, s.unwrap_or(&Value::Null), secret),
                }
            }
            for i in gone.into_iter().rev() {
                a.remove(i);
            }
        }
        _ => {}
    }
}

/// The `name` of an array's element: what a job or a route entry is known by.
fn name(v: &Value) -> Option<&str> {
    v.get("name")?.as_str()
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
                Value::Number(n) if under_secret && n.to_string().len() >= MASK_MIN_LEN => {
                    out.push(n.to_string())
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
        // A value the stored configuration has under a secret key's object or array is a
        // secret too.
        let nested = json!({"auth": {"credentials": ["user-pw-1", 1234],
                                      "secret": {"key": "k-1", "empty": ""}}});
        let shown = redact(&nested);
        assert_eq!(
            shown,
            json!({"auth": {"credentials": ["***", "***"], "secret": {"key": "***", "empty": ""}}})
        );
        let mut back = shown.clone();
        restore(&mut back, &nested);
        assert_eq!(back, nested);
        // A new value is taken as sent.
        let mut changed = json!({"overrides": {"mysql": {"password": "new"}}});
        restore(&mut changed, &stored);
        assert_eq!(changed["overrides"]["mysql"]["password"], "new");
    }

    #[test]
    fn a_secret_follows_its_job_when_the_list_is_reordered() {
        let stored = json!({"jobs": [
            {"name": "a", "params": {"token": "tok-a"}},
            {"name": "b", "params": {"token": "tok-b"}}]});
        let shown = redact(&stored);
        // The operator swaps the jobs and adds one that copies a redacted token.
        let mut new = json!({"jobs": [shown["jobs"][1].clone(), shown["jobs"][0].clone(),
            {"name": "c", "params": {"token": "***"}}]});
        restore(&mut new, &stored);
        assert_eq!(
            new["jobs"][0],
            json!({"name": "b", "params": {"token": "tok-b"}})
        );
        assert_eq!(
            new["jobs"][1],
            json!({"name": "a", "params": {"token": "tok-a"}})
        );
        assert_eq!(new["jobs"][2], json!({"name": "c", "params": {}}));
        // Unnamed elements keep their place only when nothing moved them: a shorter list
        // restores none.
        let stored = json!({"tokens": ["t-1", "t-2"]});
        let mut same = redact(&stored);
        restore(&mut same, &stored);
        assert_eq!(same, stored);
        let mut shorter = json!({"tokens": ["***"]});
        restore(&mut shorter, &stored);
        assert_eq!(shorter, json!({"tokens": []}));
        // Where no secret can be, "***" is a value like any other.
        let mut plain = json!({"note": "***"});
        restore(&mut plain, &json!({"note": "kept?"}));
        assert_eq!(plain, json!({"note": "***"}));
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
