//! The configuration's version: the `ETag` of `GET /config`, checked against `If-Match`
//! on `PUT`/`PATCH` so two operators editing at once cannot undo each other unseen.
//!
//! It is a digest of what `GET /config` shows (secrets as `"***"`), not of the file:
//! a digest of a password is something an open route must not answer (a weak one could be
//! guessed offline), and no write loses a secret it did not mean to change, since `"***"`
//! sent back keeps the stored value. Every replica of a cluster computes the same version
//! for the same configuration.

use serde_json::Value;
use sha2::Digest;

/// The version of `raw` (a `service_config.json`): 16 bytes of SHA-256, in hex.
pub fn of(raw: &Value) -> String {
    of_shown(&super::secrets::redact(raw))
}

/// [`of`] of a configuration already redacted (as `GET /config` shows it).
pub fn of_shown(shown: &Value) -> String {
    let digest = sha2::Sha256::digest(serde_json::to_vec(shown).unwrap_or_default());
    digest[..16].iter().map(|b| format!("{b:02x}")).collect()
}

/// What an `If-Match` header asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expected {
    /// `*`: any version (the configuration exists).
    Any,
    /// One of these versions (entity tags without their quotes; `W/` dropped).
    OneOf(Vec<String>),
}

impl Expected {
    /// Parses an `If-Match` value: `*` or a comma-separated list of entity tags
    /// (`"v1", W/"v2"`). A value that is neither is an error naming it.
    pub fn parse(header: &str) -> Result<Self, String> {
        let header = header.trim();
        if header == "*" {
            return Ok(Self::Any);
        }
        let mut tags = Vec::new();
        for tag in header.split(',') {
            let tag = tag.trim();
            let bare = tag.strip_prefix("W/").unwrap_or(tag);
            match bare
                .strip_prefix('"')
                .and_then(|t| t.strip_suffix('"'))
                .filter(|t| !t.contains('"'))
            {
                Some(t) => tags.push(t.to_owned()),
                None => {
                    return Err(format!(
                        "If-Match {header:?}: expected * or quoted versions, as GET /config's ETag"
                    ));
                }
            }
        }
        Ok(Self::OneOf(tags))
    }

    pub fn matches(&self, version: &str) -> bool {
        match self {
            Self::Any => true,
            Self::OneOf(tags) => tags.iter().any(|t| t == version),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_secret_changes_nothing_shown_and_anything_shown_changes_the_version() {
        let a = json!({"overrides": {"mysql": {"password": "one"}}, "num_consumers": 2});
        let b = json!({"overrides": {"mysql": {"password": "two"}}, "num_consumers": 2});
        let c = json!({"overrides": {"mysql": {"password": "one"}}, "num_consumers": 3});
        assert_eq!(of(&a), of(&b));
        assert_ne!(of(&a), of(&c));
        assert_eq!(of(&a).len(), 32);
    }

    #[test]
    fn if_match_forms() {
        assert_eq!(Expected::parse(" * ").unwrap(), Expected::Any);
        let e = Expected::parse(r#""abc", W/"def""#).unwrap();
        assert!(e.matches("abc") && e.matches("def") && !e.matches("ab"));
        assert!(Expected::parse("abc").is_err());
        assert!(Expected::parse(r#""a"b""#).is_err());
    }
}
