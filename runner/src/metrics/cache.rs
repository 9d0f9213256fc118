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

/// A batch refused because it would take a job past its cap on series.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error(
    "job '{job}' may keep at most {cap} series in the metrics cache; it has {held} and this batch adds {adding} new ones"
)]
pub struct WriteRefused {
    pub job: String,
    pub cap: usize,
    pub held: usize,
    pub adding: usize,
}

struct Entry {
    job: String,
    value: f64,
    time_ms: Option<i64>,
    written: Instant,
}

/// foldhash, not std's SipHash: every sample written is hashed two or three times, and
/// SipHash was a fifth of a one-series write. Its seed is random per map, as std's.
type Map<V> = HashMap<String, V, foldhash::fast::RandomState>;

#[derive(Default)]
struct Inner {
    series: Map<Entry>,
    per_job: Map<usize>,
    /// When expired series were last swept out on a write.
    swept: Option<Instant>,
}

/// How often a write sweeps out expired series. A sweep looks at every series of every
/// job: done on every write, a one-series write cost microseconds per thousand series held.
/// A scrape, and a write the cap would refuse, always sweep first, so expiry stays exact
/// where it shows.
const SWEEP_EVERY: Duration = Duration::from_secs(1);

pub struct MetricsCache {
    inner: Mutex<Inner>,
    /// How long a series is served after its last write.
    ttl: Duration,
    /// Series one job may hold at once.
    per_job_cap: usize,
    /// Samples refused for the cap, over the runner's life.
    refused: AtomicU64,
}

impl MetricsCache {
    pub fn new(ttl: Duration, per_job_cap: usize) -> Self {
        Self {
            inner: Mutex::default(),
            ttl,
            per_job_cap,
            refused: AtomicU64::new(0),
        }
    }

    /// Samples refused for the per-job cap so far.
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Writes a batch for `job`: all of it, or (past the cap) none of it.
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
        let (mut held, mut adding) = self.counts(&inner, job, &keyed);
        if held + adding > self.per_job_cap && inner.swept != Some(now) {
            // Series past their time may be what holds the job at its cap.
            expire(&mut inner, now, self.ttl);
            (held, adding) = self.counts(&inner, job, &keyed);
        }
        if held + adding > self.per_job_cap {
            self.refused
                .fetch_add(samples.len() as u64, Ordering::Relaxed);
            return Err(WriteRefused {
                job: job.to_owned(),
                cap: self.per_job_cap,
                held,
                adding,
            });
        }
        for (key, s) in keyed {
            // A series the job rewrites (the usual case) is updated where it is.
            if let Some(e) = inner.series.get_mut(&key).filter(|e| e.job == job) {
                (e.value, e.time_ms, e.written) = (s.value, s.time_ms, now);
                continue;
            }
            let entry = Entry {
                job: job.to_owned(),
                value: s.value,
                time_ms: s.time_ms,
                written: now,
            };
            match inner.series.insert(key, entry) {
                Some(old) if old.job == job => {}
                Some(old) => {
                    release(&mut inner, &old.job);
                    *inner.per_job.entry(job.to_owned()).or_default() += 1;
                }
                None => *inner.per_job.entry(job.to_owned()).or_default() += 1,
            }
        }
        Ok(())
    }

    /// The series `job` holds, and how many of `keyed` it does not hold yet.
    fn counts(&self, inner: &Inner, job: &str, keyed: &[(String, &Sample)]) -> (usize, usize) {
        let held = inner.per_job.get(job).copied().unwrap_or(0);
        let mut new_keys: Vec<&str> = keyed
            .iter()
            .filter(|(k, _)| inner.series.get(k).is_none_or(|e| e.job != job))
            .map(|(k, _)| k.as_str())
            .collect();
        new_keys.sort_unstable();
        new_keys.dedup();
        (held, new_keys.len())
    }

    /// The cache in the text exposition format, one series a line, sorted.
    pub fn render(&self) -> String {
        let mut inner = self.lock();
        expire(&mut inner, Instant::now(), self.ttl);
        let mut lines: Vec<String> = inner
            .series
            .iter()
            .map(|(key, e)| match e.time_ms {
                Some(t) => format!("{key} {} {t}\n", format_value(e.value)),
                None => format!("{key} {}\n", format_value(e.value)),
            })
            .collect();
        lines.sort_unstable();
        lines.concat()
    }

    /// Series held now.
    pub fn len(&self) -> usize {
        self.lock().series.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn release(inner: &mut Inner, job: &str) {
    if let Some(n) = inner.per_job.get_mut(job) {
        *n = n.saturating_sub(1);
        if *n == 0 {
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
            release(inner, &e.job);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(c.render(), "m{a=\"1\"} 1 1000\n");
        assert_eq!(
            c.render(),
            "m{a=\"1\"} 1 1000\n",
            "a second scraper sees it too"
        );
        c.write("j", &[s("m", &[("a", "1")], 2.0)]).unwrap();
        assert_eq!(c.render(), "m{a=\"1\"} 2 1000\n");
    }

    #[test]
    fn series_expire() {
        let c = MetricsCache::new(Duration::from_millis(0), 10);
        c.write("j", &[s("m", &[], 1.0)]).unwrap();
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(c.render(), "");
        assert!(c.is_empty());
    }

    #[test]
    fn expired_series_never_hold_a_job_at_its_cap() {
        let c = MetricsCache::new(Duration::from_millis(20), 1);
        c.write("j", &[s("m", &[("a", "1")], 1.0)]).unwrap();
        std::thread::sleep(Duration::from_millis(40));
        // Within a second of the last sweep, but the expired series does not count.
        c.write("j", &[s("m", &[("a", "2")], 1.0)]).unwrap();
        assert_eq!(c.render(), "m{a=\"2\"} 1 1000\n");
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
        assert_eq!((err.held, err.adding, err.cap), (2, 1, 2));
        assert_eq!(c.refused(), 2);
        assert_eq!(c.len(), 2, "nothing of the refused batch was written");
        // Another job has its own cap.
        c.write("k", &[s("n", &[], 1.0)]).unwrap();
        assert_eq!(c.len(), 3);
    }
}
