//! Prometheus' text exposition format: `name{label="value",...} value [timestamp_ms]`.

/// Escapes a label value so no value can break the format: `\` → `\\`, `"` → `\"`, a
/// newline → `\n`.
pub fn escape_label_value(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// The series as written in the exposition, which is also its identity in the cache:
/// labels sorted by name, so the same labels in another order are the same series.
pub fn series_key(name: &str, labels: &[(String, String)]) -> String {
    if labels.is_empty() {
        return name.to_owned();
    }
    let mut sorted: Vec<&(String, String)> = labels.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    let inner: Vec<String> = sorted
        .iter()
        .map(|(k, v)| format!("{k}=\"{}\"", escape_label_value(v)))
        .collect();
    format!("{name}{{{}}}", inner.join(","))
}

/// A sample value as Prometheus parses it (`NaN`, `+Inf`, `-Inf` for the special values).
pub fn format_value(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        format!("{v}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn l(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn label_values_are_escaped_never_raw() {
        assert_eq!(
            series_key("m", &l(&[("a", "say \"hi\"\\now\nnext")])),
            r#"m{a="say \"hi\"\\now\nnext"}"#
        );
    }

    #[test]
    fn label_order_does_not_make_another_series() {
        assert_eq!(
            series_key("m", &l(&[("b", "2"), ("a", "1")])),
            series_key("m", &l(&[("a", "1"), ("b", "2")]))
        );
        assert_eq!(series_key("m", &[]), "m");
    }

    #[test]
    fn special_values() {
        assert_eq!(format_value(f64::NAN), "NaN");
        assert_eq!(format_value(f64::INFINITY), "+Inf");
        assert_eq!(format_value(f64::NEG_INFINITY), "-Inf");
        assert_eq!(format_value(10.0), "10");
        assert_eq!(format_value(0.25), "0.25");
    }
}
