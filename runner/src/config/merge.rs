//! tglib's deep merge of `overrides` into `config.json`: objects merge key by key,
//! everything else is replaced.

use serde_json::{Map, Value};

pub fn deep_merge(base: &mut Map<String, Value>, overrides: &Map<String, Value>) {
    for (key, value) in overrides {
        match (base.get_mut(key), value) {
            (Some(Value::Object(b)), Value::Object(o)) => deep_merge(b, o),
            _ => {
                base.insert(key.clone(), value.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn objects_merge_and_the_rest_is_replaced() {
        let mut base = json!({"mysql": {"host": "db", "port": 3306}, "list": [1, 2], "x": 1})
            .as_object()
            .cloned()
            .unwrap();
        let o = json!({"mysql": {"host": "localhost"}, "list": [3], "y": {"z": 1}});
        deep_merge(&mut base, o.as_object().unwrap());
        assert_eq!(
            Value::Object(base),
            json!({"mysql": {"host": "localhost", "port": 3306}, "list": [3], "x": 1, "y": {"z": 1}})
        );
    }
}
