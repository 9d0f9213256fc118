//! `"env"`: the environment a job's (or a route's) runs see, and nothing else: a
//! pipeline's `env` for all its jobs, a job's own on top. The runner's own environment
//! never reaches a run.

use std::sync::Arc;

use serde_json::{Map, Value};

use super::values::kind;

/// Variables one job's runs may be given.
pub const MAX_VARIABLES: usize = 256;
/// Bytes of one job's names and values together.
pub const MAX_BYTES: usize = 64 << 10;

/// The variables of `obj`'s `env` over `inherited` (a job's over its pipeline's), in
/// name order; a clear message naming the variable if one is not a variable.
pub fn env(
    obj: &Map<String, Value>,
    inherited: &Arc<[(String, String)]>,
) -> Result<Arc<[(String, String)]>, String> {
    let own = match obj.get("env") {
        None => return Ok(inherited.clone()),
        Some(Value::Object(own)) => own,
        Some(other) => {
            return Err(format!(
                "'env' must be an object of names and string values, such as {{\"QUERY_SERVICE_URL\": \"http://query:8086\"}}, found {}",
                kind(other)
            ));
        }
    };
    let mut vars: std::collections::BTreeMap<String, String> = inherited.iter().cloned().collect();
    for (name, value) in own {
        if !valid_name(name) {
            return Err(format!(
                "'env' name {name:?} is not a variable name (letters, digits and '_', not starting with a digit)"
            ));
        }
        let Value::String(value) = value else {
            return Err(format!(
                "'env' variable {name} must be a string, found {}",
                kind(value)
            ));
        };
        if value.contains('\0') {
            return Err(format!("'env' variable {name} holds a NUL character"));
        }
        vars.insert(name.clone(), value.clone());
    }
    let bytes: usize = vars.iter().map(|(n, v)| n.len() + v.len()).sum();
    if vars.len() > MAX_VARIABLES || bytes > MAX_BYTES {
        return Err(format!(
            "'env' holds {} variables of {bytes} bytes; at most {MAX_VARIABLES} variables of {MAX_BYTES} bytes in all",
            vars.len()
        ));
    }
    Ok(vars.into_iter().collect())
}

/// A POSIX variable name: what a shell, Python's `os.environ` and a Dockerfile's `ENV`
/// all take.
fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn of(v: Value, inherited: &[(&str, &str)]) -> Result<Vec<(String, String)>, String> {
        let inherited: Arc<[(String, String)]> = inherited
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect();
        env(v.as_object().unwrap(), &inherited).map(|e| e.to_vec())
    }

    #[test]
    fn a_jobs_variables_go_over_its_pipelines() {
        let e = of(
            json!({"env": {"B": "job", "C": "c"}}),
            &[("A", "pipeline"), ("B", "pipeline")],
        )
        .unwrap();
        let e: Vec<(&str, &str)> = e.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
        assert_eq!(e, [("A", "pipeline"), ("B", "job"), ("C", "c")]);
        assert_eq!(of(json!({}), &[("A", "a")]).unwrap().len(), 1);
    }

    #[test]
    fn what_is_not_a_variable_is_named() {
        for (bad, says) in [
            (json!({"env": ["A=1"]}), "must be an object"),
            (json!({"env": {"1A": "x"}}), "\"1A\" is not a variable name"),
            (
                json!({"env": {"A-B": "x"}}),
                "\"A-B\" is not a variable name",
            ),
            (
                json!({"env": {"PORT": 8080}}),
                "variable PORT must be a string",
            ),
            (json!({"env": {"A": "a\u{0}b"}}), "variable A holds a NUL"),
            (
                json!({"env": {"A": "x".repeat(MAX_BYTES)}}),
                "at most 256 variables",
            ),
        ] {
            let e = of(bad.clone(), &[]).unwrap_err();
            assert!(e.contains(says), "{bad}: {e}");
        }
    }
}
