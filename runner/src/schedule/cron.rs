//! Cron expressions in a time zone, and when one is next due.
//!
//! Five fields (minute hour day-of-month month day-of-week) with lists, ranges, steps and
//! names, or a macro (`@hourly`, `@daily`, ...). Day-of-month and day-of-week follow cron:
//! when both are restricted, either matching is enough.
//!
//! Daylight saving follows Vixie cron, so a change neither skips nor doubles a run:
//! - a job at fixed hours whose time does not exist (spring forward) runs when the gap
//!   ends, once; one whose time exists twice (fall back) runs at the first, once;
//! - a job whose hour field is every hour follows real time: the missing hour has no runs
//!   (real time has no such hour) and the repeated hour runs twice (it happens twice).

use chrono::TimeZone;
use chrono::{DateTime, Datelike, Duration, LocalResult, NaiveDate, NaiveDateTime, Timelike, Utc};
use chrono_tz::Tz;

/// How far ahead a next run is looked for: an expression due less often is refused.
const HORIZON_DAYS: i64 = 5 * 366;
/// Longest daylight-saving shift looked around (real ones are at most 2 h).
const SHIFT: Duration = Duration::hours(3);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cron {
    minutes: u64,
    hours: u32,
    days: u32,
    months: u16,
    weekdays: u8,
    days_any: bool,
    weekdays_any: bool,
    tz: Tz,
    text: String,
}

impl Cron {
    /// Parses `expr` for the time zone named `tz` (an IANA name such as `Europe/Berlin`).
    pub fn parse(expr: &str, tz: &str) -> Result<Self, String> {
        let tz: Tz = tz.parse().map_err(|_| {
            format!("time zone {tz:?} is not an IANA time zone name such as \"Europe/Berlin\" or \"UTC\"")
        })?;
        let text = expr.trim();
        let expanded = match text {
            "@yearly" | "@annually" => "0 0 1 1 *",
            "@monthly" => "0 0 1 * *",
            "@weekly" => "0 0 * * 0",
            "@daily" | "@midnight" => "0 0 * * *",
            "@hourly" => "0 * * * *",
            m if m.starts_with('@') => {
                return Err(format!(
                    "{m:?} is not a cron macro (@yearly, @monthly, @weekly, @daily, @hourly)"
                ));
            }
            other => other,
        };
        let fields: Vec<&str> = expanded.split_whitespace().collect();
        let [min, hour, dom, month, dow] = fields[..] else {
            return Err(format!(
                "{text:?} has {} fields; cron needs 5: minute hour day-of-month month day-of-week",
                fields.len()
            ));
        };
        let cron = Self {
            minutes: field(min, "minute", 0, 59, &[])?,
            hours: field(hour, "hour", 0, 23, &[])? as u32,
            days: field(dom, "day-of-month", 1, 31, &[])? as u32,
            months: field(month, "month", 1, 12, &MONTHS)? as u16,
            // 7 is Sunday too.
            weekdays: {
                let w = field(dow, "day-of-week", 0, 7, &WEEKDAYS)?;
                ((w | (w >> 7)) & 0x7f) as u8
            },
            days_any: is_any(dom),
            weekdays_any: is_any(dow),
            tz,
            text: text.to_owned(),
        };
        let now = Utc::now();
        if cron.next_after(now).is_none() {
            return Err(format!(
                "{text:?} is never due in the next {} years (a day that does not exist, such as February 30?)",
                HORIZON_DAYS / 366
            ));
        }
        Ok(cron)
    }

    /// The expression as written.
    pub fn text(&self) -> &str {
        &self.text
    }

    pub fn tz(&self) -> Tz {
        self.tz
    }

    /// Whether the hour field matches every hour (then runs follow real time across a
    /// daylight-saving change).
    fn every_hour(&self) -> bool {
        self.hours == (1 << 24) - 1
    }

    /// The first time strictly after `after` the expression is due.
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let local = after.with_timezone(&self.tz).naive_local();
        let limit = local + Duration::days(HORIZON_DAYS);
        // Around a daylight-saving change, instants are not in the order of local times
        // (the repeated hour's second pass comes after later local times' first): look at
        // every local time from SHIFT before to SHIFT past the first candidate.
        let mut from = local - SHIFT;
        let (mut best, mut until): (Option<DateTime<Utc>>, Option<NaiveDateTime>) = (None, None);
        while let Some(t) = self.next_local(from, limit) {
            if until.is_some_and(|u| t > u) {
                break;
            }
            for instant in self.instants(t) {
                if instant > after && best.is_none_or(|b| instant < b) {
                    best = Some(instant);
                    until.get_or_insert(t + SHIFT);
                }
            }
            from = t;
        }
        best
    }

    /// The instants a matching local time stands for (see the module's rules).
    fn instants(&self, t: NaiveDateTime) -> Vec<DateTime<Utc>> {
        match self.tz.from_local_datetime(&t) {
            LocalResult::Single(i) => vec![i.to_utc()],
            LocalResult::Ambiguous(first, second) if self.every_hour() => {
                vec![first.to_utc(), second.to_utc()]
            }
            LocalResult::Ambiguous(first, _) => vec![first.to_utc()],
            LocalResult::None if self.every_hour() => Vec::new(),
            // In the gap: the first instant after it (transitions fall on whole minutes).
            LocalResult::None => (1..=24 * 60)
                .map(|m| t + Duration::minutes(m))
                .find_map(|later| self.tz.from_local_datetime(&later).earliest())
                .map(|i| vec![i.to_utc()])
                .unwrap_or_default(),
        }
    }

    /// The first local time strictly after `from`, up to `limit`, matching every field.
    fn next_local(&self, from: NaiveDateTime, limit: NaiveDateTime) -> Option<NaiveDateTime> {
        let mut t = from.with_second(0)?.with_nanosecond(0)? + Duration::minutes(1);
        while t <= limit {
            if self.months & (1 << t.month()) == 0 {
                let (y, m) = if t.month() == 12 {
                    (t.year() + 1, 1)
                } else {
                    (t.year(), t.month() + 1)
                };
                t = NaiveDate::from_ymd_opt(y, m, 1)?.and_hms_opt(0, 0, 0)?;
            } else if !self.day_matches(t.date()) {
                t = t.date().succ_opt()?.and_hms_opt(0, 0, 0)?;
            } else if self.hours & (1 << t.hour()) == 0 {
                t = t.with_minute(0)? + Duration::hours(1);
            } else if self.minutes & (1 << t.minute()) == 0 {
                t += Duration::minutes(1);
            } else {
                return Some(t);
            }
        }
        None
    }

    fn day_matches(&self, d: NaiveDate) -> bool {
        let dom = self.days & (1 << d.day()) != 0;
        let dow = self.weekdays & (1 << d.weekday().num_days_from_sunday()) != 0;
        match (self.days_any, self.weekdays_any) {
            (false, false) => dom || dow,
            _ => dom && dow,
        }
    }
}

const MONTHS: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];
const WEEKDAYS: [&str; 7] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

fn is_any(f: &str) -> bool {
    f == "*" || f == "?"
}

/// A field as a bit set of the values it matches.
fn field(text: &str, what: &str, lo: u32, hi: u32, names: &[&str]) -> Result<u64, String> {
    let bad = |why: String| format!("{what} field {text:?}: {why}");
    let value = |s: &str| -> Result<u32, String> {
        let lower = s.to_ascii_lowercase();
        if let Some(i) = names.iter().position(|n| *n == lower) {
            // Month names count from 1, weekday names from 0.
            return Ok(i as u32 + lo);
        }
        match s.parse::<u32>() {
            Ok(v) if (lo..=hi).contains(&v) => Ok(v),
            _ => Err(bad(format!("{s:?} is not a value from {lo} to {hi}"))),
        }
    };
    let mut set = 0u64;
    for item in text.split(',') {
        let (range, step) = match item.split_once('/') {
            Some((r, s)) => match s.parse::<u32>() {
                Ok(n) if n > 0 => (r, n),
                _ => return Err(bad(format!("step {s:?} must be a positive whole number"))),
            },
            None => (item, 1),
        };
        let (start, end) = if is_any(range) {
            (lo, hi)
        } else if let Some((a, b)) = range.split_once('-') {
            let (a, b) = (value(a)?, value(b)?);
            if a > b {
                return Err(bad(format!("range {range:?} runs backwards")));
            }
            (a, b)
        } else {
            // `5/15` means from 5 to the end, every 15.
            let v = value(range)?;
            (v, if item.contains('/') { hi } else { v })
        };
        for v in (start..=end).step_by(step as usize) {
            set |= 1 << v;
        }
    }
    Ok(set)
}

/// For tests and `/jobs`: a local time in the expression's zone as text.
pub fn local_text(tz: Tz, t: DateTime<Utc>) -> String {
    t.with_timezone(&tz).format("%Y-%m-%d %H:%M %Z").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().to_utc()
    }

    /// Every due time from `from` up to `to`, as local text.
    fn run(expr: &str, tz: &str, from: &str, to: &str) -> Vec<String> {
        let c = Cron::parse(expr, tz).unwrap();
        let (mut t, end) = (utc(from), utc(to));
        let mut out = Vec::new();
        while let Some(n) = c.next_after(t) {
            if n > end {
                break;
            }
            out.push(local_text(c.tz(), n));
            t = n;
        }
        out
    }

    #[test]
    fn fields_lists_ranges_steps_names() {
        let c = Cron::parse("*/15 9-17 * jan,JUL mon-fri", "UTC").unwrap();
        assert_eq!(c.minutes, 1 | 1 << 15 | 1 << 30 | 1 << 45);
        assert_eq!(c.months, 1 << 1 | 1 << 7);
        assert_eq!(c.weekdays, 0b0111110);
        assert_eq!(Cron::parse("0 0 * * 7", "UTC").unwrap().weekdays, 1);
        assert_eq!(
            Cron::parse("5/20 * * * *", "UTC").unwrap().minutes,
            1 << 5 | 1 << 25 | 1 << 45
        );
    }

    #[test]
    fn bad_expressions_name_the_field() {
        let e = Cron::parse("61 * * * *", "UTC").unwrap_err();
        assert!(e.contains("minute field") && e.contains("0 to 59"), "{e}");
        let e = Cron::parse("* * * *", "UTC").unwrap_err();
        assert!(e.contains("has 4 fields"), "{e}");
        let e = Cron::parse("0 0 30 2 *", "UTC").unwrap_err();
        assert!(e.contains("never due"), "{e}");
        let e = Cron::parse("0 0 * * *", "Mars/Olympus").unwrap_err();
        assert!(e.contains("Mars/Olympus"), "{e}");
        let e = Cron::parse("*/0 * * * *", "UTC").unwrap_err();
        assert!(e.contains("step"), "{e}");
        let e = Cron::parse("@reboot", "UTC").unwrap_err();
        assert!(e.contains("macro"), "{e}");
    }

    #[test]
    fn day_of_month_or_day_of_week() {
        // The 13th, or any Friday.
        let got = run(
            "0 12 13 * fri",
            "UTC",
            "2026-02-01T00:00:00Z",
            "2026-02-28T00:00:00Z",
        );
        assert_eq!(
            got,
            [
                "2026-02-06 12:00 UTC",
                "2026-02-13 12:00 UTC",
                "2026-02-20 12:00 UTC",
                "2026-02-27 12:00 UTC"
            ]
        );
    }

    #[test]
    fn spring_forward_runs_a_fixed_time_once_after_the_gap() {
        // Berlin, 2026-03-29: 02:00 CET becomes 03:00 CEST; 02:30 does not exist.
        let got = run(
            "30 2 * * *",
            "Europe/Berlin",
            "2026-03-27T12:00:00Z",
            "2026-03-31T00:00:00Z",
        );
        assert_eq!(
            got,
            [
                "2026-03-28 02:30 CET",
                "2026-03-29 03:00 CEST",
                "2026-03-30 02:30 CEST"
            ]
        );
    }

    #[test]
    fn fall_back_runs_a_fixed_time_once() {
        // Berlin, 2026-10-25: 03:00 CEST becomes 02:00 CET; 02:30 happens twice.
        let got = run(
            "30 2 * * *",
            "Europe/Berlin",
            "2026-10-24T00:00:00Z",
            "2026-10-26T12:00:00Z",
        );
        assert_eq!(
            got,
            [
                "2026-10-24 02:30 CEST",
                "2026-10-25 02:30 CEST",
                "2026-10-26 02:30 CET"
            ]
        );
    }

    #[test]
    fn hourly_jobs_follow_real_time_across_both_changes() {
        let spring = run(
            "15 * * * *",
            "Europe/Berlin",
            "2026-03-29T00:00:00Z",
            "2026-03-29T02:00:00Z",
        );
        assert_eq!(spring, ["2026-03-29 01:15 CET", "2026-03-29 03:15 CEST"]);
        let fall = run(
            "15 * * * *",
            "Europe/Berlin",
            "2026-10-24T23:30:00Z",
            "2026-10-25T02:30:00Z",
        );
        assert_eq!(
            fall,
            [
                "2026-10-25 02:15 CEST",
                "2026-10-25 02:15 CET",
                "2026-10-25 03:15 CET"
            ]
        );
        // One real hour between consecutive runs, every time.
        let c = Cron::parse("15 * * * *", "Europe/Berlin").unwrap();
        let mut t = utc("2026-10-24T20:00:00Z");
        let mut prev = c.next_after(t).unwrap();
        t = prev;
        for _ in 0..12 {
            let n = c.next_after(t).unwrap();
            assert_eq!(n - prev, Duration::hours(1), "after {prev}");
            prev = n;
            t = n;
        }
    }

    #[test]
    fn several_fixed_times_in_the_gap_run_once() {
        let got = run(
            "0,30 2 * * *",
            "Europe/Berlin",
            "2026-03-29T00:00:00Z",
            "2026-03-29T12:00:00Z",
        );
        assert_eq!(got, ["2026-03-29 03:00 CEST"]);
    }

    #[test]
    fn macros_and_utc() {
        let got = run(
            "@daily",
            "UTC",
            "2026-01-01T00:00:00Z",
            "2026-01-03T00:00:00Z",
        );
        assert_eq!(got, ["2026-01-02 00:00 UTC", "2026-01-03 00:00 UTC"]);
    }
}
