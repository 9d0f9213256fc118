//! Prometheus' text exposition format: `name{label="value",...} value [timestamp_ms]`.

/// Escapes a label value so no value can break the format: `\` → `\\`, `"` → `\"`, a
/// newline → `\n`.
pub fn escape_label_value(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    push_escaped(&mut out, v);
    out
}

fn push_escaped(out: &mut String, v: &str) {
    // Most values need no escape: copied whole.
    if !v.contains(['\\', '"', '\n']) {
        out.push_str(v);
        return;
    }
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// The series as written in the exposition, which is also its identity in the cache:
/// labels sorted by name, so the same labels in another order are the same series.
/// Built in one string: it is made for every sample written, on the host-call path.
pub fn series_key(name: &str, labels: &[(String, String)]) -> String {
    if labels.is_empty() {
        return name.to_owned();
    }
    let len = name.len()
        + 2
        + labels
            .iter()
            .map(|(k, v)| k.len() + v.len() + 4)
            .sum::<usize>();
    let mut key = String::with_capacity(len);
    key.push_str(name);
    key.push('{');
    let mut push_label = |(k, v): &(String, String)| {
        if key.len() > name.len() + 1 {
            key.push(',');
        }
        key.push_str(k);
        key.push_str("=\"");
        push_escaped(&mut key, v);
        key.push('"');
    };
    if labels.is_sorted_by(|a, b| a.0 <= b.0) {
        labels.iter().for_each(&mut push_label);
    } else {
        let mut sorted: Vec<&(String, String)> = labels.iter().collect();
        sorted.sort_by(|a, b| a.0.cmp(&b.0));
        sorted.into_iter().for_each(push_label);
    }
    key.push('}');
    key
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
        assert_eq!(
            series_key("m", &l(&[("c", "x\"y"), ("a", "1"), ("b", "")])),
            r#"m{a="1",b="",c="x\"y"}"#
        );
        assert_eq!(series_key("m", &l(&[("a", "1")])), r#"m{a="1"}"#);
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
