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

/// An optional `true`/`false` key of `obj` (default false), or the error naming it.
pub fn flag(obj: &Map<String, Value>, key: &str) -> Result<bool, String> {
    match obj.get(key) {
        None => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(other) => Err(format!(
            "'{key}' must be true or false, found {}",
            kind(other)
        )),
    }
}

/// Parses JSON, refusing an object that repeats a key (two pipelines of the same name):
/// serde_json would keep the last silently. The error has the line and column.
pub fn parse_strict(text: &str) -> Result<Value, serde_json::Error> {
    let value = serde_json::from_str(text)?;
    serde_json::from_str::<NoDuplicates>(text)?;
    Ok(value)
}

/// Deserialises any JSON, failing at the first repeated key of an object.
struct NoDuplicates;

impl<'de> serde::Deserialize<'de> for NoDuplicates {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(NoDuplicatesVisitor)
    }
}

struct NoDuplicatesVisitor;

impl<'de> serde::de::Visitor<'de> for NoDuplicatesVisitor {
    type Value = NoDuplicates;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<NoDuplicates, A::Error> {
        let mut seen = std::collections::HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            if !seen.insert(key.clone()) {
                return Err(serde::de::Error::custom(format!(
                    "the key {key:?} appears twice in the same object (the first would be lost)"
                )));
            }
            map.next_value::<NoDuplicates>()?;
        }
        Ok(NoDuplicates)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<NoDuplicates, A::Error> {
        while seq.next_element::<NoDuplicates>()?.is_some() {}
        Ok(NoDuplicates)
    }

    fn visit_bool<E>(self, _: bool) -> Result<NoDuplicates, E> {
        Ok(NoDuplicates)
    }
    fn visit_i64<E>(self, _: i64) -> Result<NoDuplicates, E> {
        Ok(NoDuplicates)
    }
    fn visit_u64<E>(self, _: u64) -> Result<NoDuplicates, E> {
        Ok(NoDuplicates)
    }
    fn visit_f64<E>(self, _: f64) -> Result<NoDuplicates, E> {
        Ok(NoDuplicates)
    }
    fn visit_str<E>(self, _: &str) -> Result<NoDuplicates, E> {
        Ok(NoDuplicates)
    }
    fn visit_unit<E>(self) -> Result<NoDuplicates, E> {
        Ok(NoDuplicates)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_keys_are_refused_with_their_place() {
        let e = parse_strict("{\"pipelines\": {\"a\": {},\n  \"a\": {}}}").unwrap_err();
        assert!(e.to_string().contains("\"a\" appears twice"), "{e}");
        assert_eq!(e.line(), 2);
        assert!(
            parse_strict("[{\"a\": 1}, {\"a\": 2}]").is_ok(),
            "same key, two objects"
        );
    }

    #[test]
    fn suggests_near_keys() {
        assert_eq!(
            suggestion("enable", &["name", "enabled", "params"]).as_deref(),
            Some("enabled")
        );
        assert_eq!(suggestion("zzzzzz", &["name", "enabled"]), None);
    }
}
