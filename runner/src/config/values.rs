//! Small helpers to read typed values out of JSON with errors that say what was found.

use serde_json::{Map, Value};

/// What a JSON value is, for messages.
pub fn kind(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => format!("the boolean {b}"),
        Value::Number(n) => format!("the number {n}"),
        Value::String(s) => format!("the string {s:?}"),
        Value::Array(_) => "an array".into(),
        Value::Object(_) => "an object".into(),
    }
}

/// The known key nearest to `key`, if it looks like a typo of it.
pub fn suggestion(key: &str, known: &[&str]) -> Option<String> {
    known
        .iter()
        .map(|k| (distance(&key.to_lowercase(), k), *k))
        .filter(|(d, _)| *d <= 2)
        .min()
        .map(|(_, k)| k.to_owned())
}

fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for j in 0..b.len() {
            let cur = row[j + 1];
            row[j + 1] = if ca == b[j] {
                prev
            } else {
                1 + prev.min(row[j]).min(row[j + 1])
            };
            prev = cur;
        }
    }
    row[b.len()]
}

/// Every key of `obj` that is not in `known`, as "unknown key 'k' (did you mean 'x'?)".
pub fn unknown_keys(obj: &Map<String, Value>, known: &[&str]) -> Option<String> {
    let key = obj.keys().find(|k| !known.contains(&k.as_str()))?;
    Some(match suggestion(key, known) {
        Some(s) => format!("unknown key '{key}' (did you mean '{s}'?)"),
        None => format!("unknown key '{key}' (known keys: {})", known.join(", ")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_near_keys() {
        assert_eq!(
            suggestion("enable", &["name", "enabled", "params"]).as_deref(),
            Some("enabled")
        );
        assert_eq!(suggestion("zzzzzz", &["name", "enabled"]), None);
    }
}
