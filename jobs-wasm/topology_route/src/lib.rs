//! The seed's `GET /topology` route: the topologies `save_topology` saved since `start_dt`
//! (ISO 8601), or 400 with the seed's own messages when it is missing or invalid.

use serde_json::{Value, json};
use tgrun_sdk::http::{Request, Response};
use tgrun_sdk::prelude::*;
use tgrun_sdk::sql::Value as Sql;

fn handle_get_topology(req: &Request) -> Result<Response> {
    let Some(start_dt) = req.query("start_dt") else {
        return Ok(Response::text(
            400,
            "'start_dt' is missing from query string",
        ));
    };
    let Some(start_ms) = iso8601_ms(start_dt) else {
        return Ok(Response::text(
            400,
            format!("'start_dt' is invalid ISO 8601: '{start_dt}'"),
        ));
    };

    let rows = sql::query(
        "SELECT topology FROM topology WHERE last_updated >= ?",
        &[sql::datetime_ms(start_ms)],
    )?;
    let topologies: Vec<Value> = rows
        .rows
        .iter()
        .map(|row| json!({"topology": as_json(&row[0])}))
        .collect();
    Response::json(&topologies)
}

/// A JSON column, however the database hands it back (JSON, text, or bytes on MariaDB).
fn as_json(v: &Sql) -> Value {
    let text = match v {
        Sql::Json(s) | Sql::Text(s) => s.clone(),
        Sql::Bytes(b) => String::from_utf8_lossy(b).into_owned(),
        _ => return Value::Null,
    };
    serde_json::from_str(&text).unwrap_or(Value::String(text))
}

fn digits(s: &str) -> Option<i64> {
    (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
        .then(|| s.parse().ok())
        .flatten()
}

/// Days from 1970-01-01 to a civil date (proleptic Gregorian).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        4 | 6 | 9 | 11 => 30,
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        _ => 31,
    }
}

/// Python's `datetime.fromisoformat` as the seed used it: `YYYY-MM-DD`, then optionally
/// `T` or a space and `HH[:MM[:SS[.fff[fff]]]]`, then optionally `Z` or `±HH:MM`. Naive
/// times are UTC (the seed stored UTC). Milliseconds since the Unix epoch.
fn iso8601_ms(s: &str) -> Option<i64> {
    let date = s.get(..10)?;
    let (y, m, d) = (
        digits(date.get(0..4)?)?,
        digits(date.get(5..7)?)?,
        digits(date.get(8..10)?)?,
    );
    if &date[4..5] != "-" || &date[7..8] != "-" || !(1..=12).contains(&m) {
        return None;
    }
    if d < 1 || d > days_in_month(y, m) {
        return None;
    }
    let mut ms = days_from_civil(y, m, d) * 86_400_000;
    let rest = &s[10..];
    if rest.is_empty() {
        return Some(ms);
    }
    let rest = rest.strip_prefix('T').or_else(|| rest.strip_prefix(' '))?;
    let (time, offset) = match rest.find(['+', '-', 'Z']) {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    let (clock, fraction) = match time.split_once('.') {
        Some((c, f)) => (c, Some(f)),
        None => (time, None),
    };
    let parts: Vec<&str> = clock.split(':').collect();
    if parts.is_empty() || parts.len() > 3 || parts.iter().any(|p| p.len() != 2) {
        return None;
    }
    let limits = [23, 59, 59];
    let mut scale = [3_600_000, 60_000, 1_000].into_iter();
    for (part, limit) in parts.iter().zip(limits) {
        let v = digits(part)?;
        if v > limit {
            return None;
        }
        ms += v * scale.next()?;
    }
    if let Some(f) = fraction {
        if parts.len() != 3 || !(1..=6).contains(&f.len()) {
            return None;
        }
        let micros = digits(f)? * 10_i64.pow(6 - f.len() as u32);
        ms += micros / 1000;
    }
    match offset {
        "" | "Z" => {}
        o => {
            let sign = if o.starts_with('-') { -1 } else { 1 };
            let hm: Vec<&str> = o[1..].split(':').collect();
            if hm.len() != 2 || hm.iter().any(|p| p.len() != 2) {
                return None;
            }
            let (h, mi) = (digits(hm[0])?, digits(hm[1])?);
            if h > 23 || mi > 59 {
                return None;
            }
            ms -= sign * (h * 3_600_000 + mi * 60_000);
        }
    }
    Some(ms)
}

export_handler!(handle_get_topology);

#[cfg(test)]
mod tests {
    use super::iso8601_ms;

    #[test]
    fn iso_dates_as_python_reads_them() {
        assert_eq!(iso8601_ms("1970-01-01"), Some(0));
        assert_eq!(iso8601_ms("2023-11-14T22:13:20"), Some(1_700_000_000_000));
        assert_eq!(iso8601_ms("2023-11-14 22:13:20.5"), Some(1_700_000_000_500));
        assert_eq!(
            iso8601_ms("2023-11-14T23:13:20+01:00"),
            Some(1_700_000_000_000)
        );
        assert_eq!(iso8601_ms("2023-11-14T22:13"), Some(1_699_999_980_000));
        assert_eq!(iso8601_ms("2024-02-29"), Some(1_709_164_800_000));
        for bad in [
            "",
            "yesterday",
            "2023-13-01",
            "2023-02-30",
            "2023-11-14T25:00",
            "2023-11-14X10:00",
            "2023-1-14",
        ] {
            assert_eq!(iso8601_ms(bad), None, "{bad}");
        }
    }
}
