//! Range queries: tglib's step rule and its removal of stale and held samples.

use std::collections::HashMap;

use serde_json::Value;

use super::error::ClientError;

/// tglib's `duration2seconds`: `^[0-9]+[smhdw]$` in seconds.
pub fn duration_seconds(step: &str) -> Result<u64, ClientError> {
    let bad = || {
        ClientError::InvalidArgument(format!(
            "step {step:?} must be a whole number and a unit (s, m, h, d, w), like \"30s\""
        ))
    };
    let unit = step.chars().last().ok_or_else(bad)?;
    let digits = &step[..step.len() - unit.len_utf8()];
    if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit()) {
        return Err(bad());
    }
    let n: u64 = digits.parse().map_err(|_| bad())?;
    let scale = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        'd' => 86_400,
        'w' => 604_800,
        _ => return Err(bad()),
    };
    n.checked_mul(scale).ok_or_else(bad)
}

/// The identity of a series across `q` and `timestamp(q)`: its labels without `__name__`
/// (which `timestamp()` drops).
fn series_identity(series: &Value) -> String {
    let mut labels: Vec<(&String, &Value)> = series["metric"]
        .as_object()
        .map(|m| m.iter().filter(|(k, _)| k.as_str() != "__name__").collect())
        .unwrap_or_default();
    labels.sort_by(|a, b| a.0.cmp(b.0));
    serde_json::to_string(&labels).unwrap_or_default()
}

fn as_f64(v: &Value) -> Option<f64> {
    v.as_f64().or_else(|| v.as_str()?.parse().ok())
}

/// tglib's `query_range`: from the answer to `q`, drop every sample whose own timestamp
/// (from the answer to `timestamp(q)`) is at or before `start - step` (stale: older than the
/// range) or equals the previous sample's (a value held across steps).
///
/// Unlike tglib, series are matched by labels and samples by evaluation time, not by
/// position, so a series missing from one answer cannot shift the others.
pub fn drop_stale_and_held(mut values: Value, timestamps: &Value, start: f64, step: u64) -> Value {
    let mut ts_of: HashMap<String, HashMap<String, f64>> = HashMap::new();
    for series in timestamps["data"]["result"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let by_time = series["values"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|pair| Some((pair[0].to_string(), as_f64(&pair[1])?)))
            .collect();
        ts_of.insert(series_identity(series), by_time);
    }
    let cutoff = start - step as f64;
    // `get_mut`, not `[]`: indexing a JSON value that is not an object for writing panics,
    // and an upstream (or a proxy before it) may answer anything (found by fuzzing).
    if let Some(result) = values
        .pointer_mut("/data/result")
        .and_then(Value::as_array_mut)
    {
        for series in result {
            let Some(times) = ts_of.get(&series_identity(series)) else {
                continue;
            };
            let Some(samples) = series.get_mut("values").and_then(Value::as_array_mut) else {
                continue;
            };
            let mut previous: Option<f64> = None;
            samples.retain(|pair| {
                let Some(&ts) = times.get(&pair[0].to_string()) else {
                    return true;
                };
                let keep = ts > cutoff && previous != Some(ts);
                previous = Some(ts);
                keep
            });
        }
    }
    values
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn steps() {
        assert_eq!(duration_seconds("2m").unwrap(), 120);
        assert_eq!(duration_seconds("30s").unwrap(), 30);
        assert_eq!(duration_seconds("1w").unwrap(), 604_800);
        for bad in ["", "m", "2", "1.5m", "-1s", "2M", "2ms", " 2m"] {
            assert!(duration_seconds(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn stale_and_held_samples_are_dropped() {
        let values = json!({"status": "success", "data": {"resultType": "matrix", "result": [
            {"metric": {"__name__": "m", "a": "1"},
             "values": [[100, "1"], [130, "1"], [160, "2"], [190, "3"]]}]}});
        let ts = json!({"status": "success", "data": {"resultType": "matrix", "result": [
            {"metric": {"a": "1"},
             // 60 is before start - step (100 - 30 = 70): stale. 150 at 160 is held at 190.
             "values": [[100, "60"], [130, "125"], [160, "150"], [190, "150"]]}]}});
        let out = drop_stale_and_held(values, &ts, 100.0, 30);
        assert_eq!(
            out["data"]["result"][0]["values"],
            json!([[130, "1"], [160, "2"]])
        );
    }

    #[test]
    fn answers_of_any_shape_are_left_as_they_are() {
        for odd in [
            json!(0),
            json!("x"),
            json!({"data": 1}),
            json!({"data": {"result": [1, "s"]}}),
        ] {
            assert_eq!(drop_stale_and_held(odd.clone(), &json!([1]), 0.0, 15), odd);
        }
    }

    #[test]
    fn series_are_matched_by_labels_not_position() {
        let values = json!({"data": {"result": [
            {"metric": {"a": "1"}, "values": [[100, "1"]]},
            {"metric": {"a": "2"}, "values": [[100, "1"]]}]}});
        let ts = json!({"data": {"result": [
            {"metric": {"a": "2"}, "values": [[100, "10"]]},
            {"metric": {"a": "1"}, "values": [[100, "95"]]}]}});
        let out = drop_stale_and_held(values, &ts, 100.0, 30);
        assert_eq!(out["data"]["result"][0]["values"], json!([[100, "1"]]));
        assert_eq!(out["data"]["result"][1]["values"], json!([]));
    }
}
