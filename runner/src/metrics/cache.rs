//! The series cache behind `/metrics`.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::exposition::{format_value, series_key};

/// One sample a job writes.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: Vec<(String, String)>,
    pub value: f64,
    pub time_ms: Option<i64>,
}

/// A batch refused: it would take a job past one of its caps, or write another job's series.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum WriteRefused {
    #[error(
        "job '{job}' may keep at most {cap} series in the metrics cache; it has {held} and this batch adds {adding} new ones"
    )]
    Series {
        job: String,
        cap: usize,
        held: usize,
        adding: usize,
    },
    #[error(
        "job '{job}' may keep at most {cap} bytes of series (names and labels) in the metrics cache; it has {held} and this batch adds {adding}"
    )]
    Bytes {
        job: String,
        cap: usize,
        held: usize,
        adding: usize,
    },
    /// A job writes only its own series: one job cannot overwrite (or hide) another's.
    #[error(
        "series {series} is written by job '{owner}': a job writes only its own series (another may take it once it has not been written for the metrics TTL)"
    )]
    Owned { series: String, owner: String },
}

struct Entry {
    job: String,
    value: f64,
    time_ms: Option<i64>,
    written: Instant,
}

/// What one job holds in the cache.
#[derive(Debug, Default, Clone, Copy)]
struct Held {
    series: usize,
    /// Bytes of the series' keys (name and labels), the bulk of what the cache keeps.
    bytes: usize,
}

/// foldhash, not std's SipHash: every sample written is hashed two or three times, and
/// SipHash was a fifth of a one-series write. Its seed is random per map, as std's.
type Map<V> = HashMap<String, V, foldhash::fast::RandomState>;

#[derive(Default)]
struct Inner {
    series: Map<Entry>,
    per_job: Map<Held>,
    /// When expired series were last swept out on a write.
    swept: Option<Instant>,
}

/// How often a write sweeps out expired series. A sweep looks at every series of every
/// job: done on every write, a one-series write cost microseconds per thousand series held.
/// A scrape, and a write the cap would refuse, always sweep first, so expiry stays exact
/// where it shows.
const SWEEP_EVERY: Duration = Duration::from_secs(1);

/// Bytes of series one job may hold by default: with the series cap, what bounds the
/// cache's memory (and `/metrics`) whatever jobs write; 10,000 series of 1.6 KB.
pub const DEFAULT_BYTES_PER_JOB: usize = 16 << 20;

pub struct MetricsCache {
    inner: Mutex<Inner>,
    /// How long a series is served after its last write.
    ttl: Duration,
    /// Series one job may hold at once.
    per_job_cap: usize,
    /// Bytes of series (keys) one job may hold at once.
    per_job_bytes: usize,
    /// Samples refused (caps, another job's series), over the runner's life.
    refused: AtomicU64,
}

impl MetricsCache {
    pub fn new(ttl: Duration, per_job_cap: usize) -> Self {
        Self {
            inner: Mutex::default(),
            ttl,
            per_job_cap,
            per_job_bytes: DEFAULT_BYTES_PER_JOB,
            refused: AtomicU64::new(0),
        }
    }

    /// The same cache with another cap on the bytes of series one job may hold.
    pub fn with_bytes_per_job(mut self, bytes: usize) -> Self {
        self.per_job_bytes = bytes;
        self
    }

    /// Samples refused so far.
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Writes a batch for `job`: all of it, or (past a cap, or touching another job's
    /// series) none of it.
    pub fn write(&self, job: &str, samples: &[Sample]) -> Result<(), WriteRefused> {
        let now = Instant::now();
        let keyed: Vec<(String, &Sample)> = samples
            .iter()
            .map(|s| (series_key(&s.name, &s.labels), s))
            .collect();
        let mut inner = self.lock();
        if inner
            .swept
            .is_none_or(|t| now.duration_since(t) >= SWEEP_EVERY)
        {
            expire(&mut inner, now, self.ttl);
        }
        let mut verdict = self.check(&inner, job, &keyed);
        if verdict.is_err() && inner.swept != Some(now) {
            // Series past their time may be what refuses the batch.
            expire(&mut inner, now, self.ttl);
            verdict = self.check(&inner, job, &keyed);
        }
        if let Err(refused) = verdict {
            self.refused
                .fetch_add(samples.len() as u64, Ordering::Relaxed);
            return Err(refused);
        }
        for (key, s) in keyed {
            // A series the job rewrites (the usual case) is updated where it is; `check`
            // made sure no other job holds any of them.
            if let Some(e) = inner.series.get_mut(&key) {
                (e.value, e.time_ms, e.written) = (s.value, s.time_ms, now);
                continue;
            }
            let held = inner.per_job.entry(job.to_owned()).or_default();
            held.series += 1;
            held.bytes += key.len();
            let entry = Entry {
                job: job.to_owned(),
                value: s.value,
                time_ms: s.time_ms,
                written: now,
            };
            inner.series.insert(key, entry);
        }
        Ok(())
    }

    /// Whether `job` may write `keyed`: none of it another job's, and within its caps.
    fn check(
        &self,
        inner: &Inner,
        job: &str,
        keyed: &[(String, &Sample)],
    ) -> Result<(), WriteRefused> {
        let mut new_keys: Vec<&str> = Vec::new();
        for (key, _) in keyed {
            match inner.series.get(key) {
                Some(e) if e.job == job => {}
                Some(e) => {
                    return Err(WriteRefused::Owned {
                        series: key.clone(),
                        owner: e.job.clone(),
                    });
                }
                None => new_keys.push(key),
            }
        }
        new_keys.sort_unstable();
        new_keys.dedup();
        let held = inner.per_job.get(job).copied().unwrap_or_default();
        if held.series + new_keys.len() > self.per_job_cap {
            return Err(WriteRefused::Series {
                job: job.to_owned(),
                cap: self.per_job_cap,
                held: held.series,
                adding: new_keys.len(),
            });
        }
        let adding: usize = new_keys.iter().map(|k| k.len()).sum();
        if held.bytes + adding > self.per_job_bytes {
            return Err(WriteRefused::Bytes {
                job: job.to_owned(),
                cap: self.per_job_bytes,
                held: held.bytes,
                adding,
            });
        }
        Ok(())
    }

    /// The cache in the text exposition format, one series a line, sorted, each metric's
    /// series together under a `# HELP` and `# TYPE` of their own (`untyped`: a job says
    /// nothing of its series' types), as a scrape's parser and `promtool` want them.
    pub fn render(&self) -> String {
        let mut inner = self.lock();
        expire(&mut inner, Instant::now(), self.ttl);
        let mut lines: Vec<(&str, String)> = inner
            .series
            .iter()
            .map(|(key, e)| {
                let name = key.split_once('{').map_or(key.as_str(), |(name, _)| name);
                let line = match e.time_ms {
                    Some(t) => format!("{key} {} {t}\n", format_value(e.value)),
                    None => format!("{key} {}\n", format_value(e.value)),
                };
                (name, line)
            })
            .collect();
        // By name first: `foo_bar` would otherwise sort between `foo` and `foo{...}`.
        lines.sort_unstable();
        let mut out = String::with_capacity(lines.iter().map(|(_, l)| l.len()).sum());
        let mut family = None;
        for (name, line) in &lines {
            if family != Some(*name) {
                family = Some(*name);
                out.push_str(&format!(
                    "# HELP {name} Written by a job.\n# TYPE {name} untyped\n"
                ));
            }
            out.push_str(line);
        }
        out
    }

    /// Series held now.
    pub fn len(&self) -> usize {
        self.lock().series.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn release(inner: &mut Inner, job: &str, bytes: usize) {
    if let Some(held) = inner.per_job.get_mut(job) {
        held.series = held.series.saturating_sub(1);
        held.bytes = held.bytes.saturating_sub(bytes);
        if held.series == 0 {
            inner.per_job.remove(job);
        }
    }
}

fn expire(inner: &mut Inner, now: Instant, ttl: Duration) {
    inner.swept = Some(now);
    let expired: Vec<String> = inner
        .series
        .iter()
        .filter(|(_, e)| now.duration_since(e.written) > ttl)
        .map(|(k, _)| k.clone())
        .collect();
    for key in expired {
        if let Some(e) = inner.series.remove(&key) {
            release(inner, &e.job, key.len());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The scrape's sample lines, without the families' `#` lines.
    fn samples(c: &MetricsCache) -> String {
        let text = c.render();
        text.lines()
            .filter(|l| !l.starts_with('#'))
            .map(|l| format!("{l}\n"))
            .collect()
    }

    #[test]
    fn each_metric_is_one_family_with_help_and_type() {
        let c = MetricsCache::new(Duration::from_secs(60), 10);
        c.write(
            "j",
            &[
                s("foo", &[("a", "1")], 1.0),
                s("foo_bar", &[], 2.0),
                s("foo", &[], 3.0),
            ],
        )
        .unwrap();
        assert_eq!(
            c.render(),
            "# HELP foo Written by a job.\n# TYPE foo untyped\nfoo 3 1000\nfoo{a=\"1\"} 1 1000\n\
             # HELP foo_bar Written by a job.\n# TYPE foo_bar untyped\nfoo_bar 2 1000\n"
        );
    }

    fn s(name: &str, labels: &[(&str, &str)], value: f64) -> Sample {
        Sample {
            name: name.into(),
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            value,
            time_ms: Some(1000),
        }
    }

    #[test]
    fn a_scrape_does_not_clear_and_a_write_replaces() {
        let c = MetricsCache::new(Duration::from_secs(60), 10);
        c.write("j", &[s("m", &[("a", "1")], 1.0)]).unwrap();
        assert_eq!(samples(&c), "m{a=\"1\"} 1 1000\n");
        assert_eq!(
            samples(&c),
            "m{a=\"1\"} 1 1000\n",
            "a second scraper sees it too"
        );
        c.write("j", &[s("m", &[("a", "1")], 2.0)]).unwrap();
        assert_eq!(samples(&c), "m{a=\"1\"} 2 1000\n");
    }

    #[test]
    fn series_expire() {
        let c = MetricsCache::new(Duration::from_millis(0), 10);
        c.write("j", &[s("m", &[], 1.0)]).unwrap();
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(samples(&c), "");
        assert!(c.is_empty());
    }

    #[test]
    fn expired_series_never_hold_a_job_at_its_cap() {
        let c = MetricsCache::new(Duration::from_millis(20), 1);
        c.write("j", &[s("m", &[("a", "1")], 1.0)]).unwrap();
        std::thread::sleep(Duration::from_millis(40));
        // Within a second of the last sweep, but the expired series does not count.
        c.write("j", &[s("m", &[("a", "2")], 1.0)]).unwrap();
        assert_eq!(samples(&c), "m{a=\"2\"} 1 1000\n");
    }

    #[test]
    fn the_per_job_cap_refuses_the_whole_batch_and_counts_it() {
        let c = MetricsCache::new(Duration::from_secs(60), 2);
        c.write(
            "j",
            &[s("m", &[("a", "1")], 1.0), s("m", &[("a", "2")], 1.0)],
        )
        .unwrap();
        // Overwriting held series is fine at the cap.
        c.write("j", &[s("m", &[("a", "1")], 5.0)]).unwrap();
        let err = c
            .write(
                "j",
                &[s("m", &[("a", "2")], 1.0), s("m", &[("a", "3")], 1.0)],
            )
            .unwrap_err();
        assert_eq!(
            err,
            WriteRefused::Series {
                job: "j".into(),
                cap: 2,
                held: 2,
                adding: 1
            }
        );
        assert_eq!(c.refused(), 2);
        assert_eq!(c.len(), 2, "nothing of the refused batch was written");
        // Another job has its own cap.
        c.write("k", &[s("n", &[], 1.0)]).unwrap();
        assert_eq!(c.len(), 3);
    }

    #[test]
    fn a_job_writes_only_its_own_series_until_they_expire() {
        let c = MetricsCache::new(Duration::from_millis(30), 10);
        c.write("owner", &[s("m", &[("a", "1")], 1.0)]).unwrap();
        let err = c
            .write("thief", &[s("other", &[], 1.0), s("m", &[("a", "1")], 9.0)])
            .unwrap_err();
        assert_eq!(
            err,
            WriteRefused::Owned {
                series: "m{a=\"1\"}".into(),
                owner: "owner".into()
            }
        );
        assert_eq!(
            samples(&c),
            "m{a=\"1\"} 1 1000\n",
            "neither sample was written"
        );
        assert_eq!(c.refused(), 2);
        // Once the owner stops writing it, the series is free.
        std::thread::sleep(Duration::from_millis(60));
        c.write("thief", &[s("m", &[("a", "1")], 9.0)]).unwrap();
        assert_eq!(samples(&c), "m{a=\"1\"} 9 1000\n");
    }

    #[test]
    fn the_bytes_a_job_holds_are_capped_and_given_back_when_series_expire() {
        // Each key `m{a="N"}` is 8 bytes.
        let c = MetricsCache::new(Duration::from_millis(30), 100).with_bytes_per_job(20);
        c.write(
            "j",
            &[s("m", &[("a", "1")], 1.0), s("m", &[("a", "2")], 1.0)],
        )
        .unwrap();
        let err = c.write("j", &[s("m", &[("a", "3")], 1.0)]).unwrap_err();
        assert_eq!(
            err,
            WriteRefused::Bytes {
                job: "j".into(),
                cap: 20,
                held: 16,
                adding: 8
            }
        );
        // Rewriting held series costs nothing new.
        c.write("j", &[s("m", &[("a", "1")], 2.0)]).unwrap();
        std::thread::sleep(Duration::from_millis(60));
        c.write(
            "j",
            &[s("m", &[("a", "3")], 1.0), s("m", &[("a", "4")], 1.0)],
        )
        .unwrap();
    }
}
