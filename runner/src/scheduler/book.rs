//! The run book: per job ([`JobId`]), its last run and counters of outcomes and durations,
//! kept as runs finish, for `GET /jobs`, the dashboard and the runner's own metrics (which
//! add up a module's jobs).

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::SystemTime;

use super::per_job::PerJob;
use crate::config::service::MAX_TIMEOUT_S;
use crate::run::JobId;
use crate::run::outcome::RunReport;

/// Upper bounds of the run duration histogram, in seconds: from a trivial run's tenth of a
/// millisecond up to the longest timeout a job may have (a day).
pub const DURATION_BUCKETS: &[f64] = &[
    0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 30.0, 120.0, 600.0, 3600.0,
    21600.0, 86400.0,
];
const _: () = assert!(DURATION_BUCKETS[DURATION_BUCKETS.len() - 1] == MAX_TIMEOUT_S);

#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct JobRecord {
    pub last_run_id: Option<String>,
    pub last_outcome: Option<&'static str>,
    pub last_detail: Option<String>,
    /// When the last run started, ms since the Unix epoch.
    pub last_started_ms: Option<i64>,
    pub last_duration_ms: Option<f64>,
    /// Runs by outcome name.
    pub outcomes: BTreeMap<&'static str, u64>,
    /// Cumulative counts per bucket of [`DURATION_BUCKETS`], then +Inf.
    #[serde(skip)]
    pub buckets: Vec<u64>,
    #[serde(skip)]
    pub duration_sum: f64,
}

impl JobRecord {
    /// Adds `other`'s counts to this one's, and takes its last run if it is the later.
    pub fn absorb(&mut self, other: &JobRecord) {
        for (outcome, n) in &other.outcomes {
            *self.outcomes.entry(outcome).or_default() += n;
        }
        if self.buckets.is_empty() {
            self.buckets = vec![0; other.buckets.len()];
        }
        for (mine, theirs) in self.buckets.iter_mut().zip(&other.buckets) {
            *mine += theirs;
        }
        self.duration_sum += other.duration_sum;
        self.take_last_if_later(other);
    }

    /// Takes `other`'s last run if it started later than this one's.
    pub fn take_last_if_later(&mut self, other: &JobRecord) {
        if other.last_started_ms > self.last_started_ms {
            self.last_run_id = other.last_run_id.clone();
            self.last_outcome = other.last_outcome;
            self.last_detail = other.last_detail.clone();
            self.last_started_ms = other.last_started_ms;
            self.last_duration_ms = other.last_duration_ms;
        }
    }
}

/// Runs counted under one hold of the book's lock when a producer counts a tick's dropped
/// runs: a consumer reporting a run waits for at most this many.
const LOCKED_AT_ONCE: usize = 64;

/// Per job ([`JobId`]), its [`JobRecord`].
#[derive(Debug, Default)]
pub struct RunBook {
    jobs: Mutex<PerJob<JobRecord>>,
}

impl RunBook {
    fn lock(&self) -> std::sync::MutexGuard<'_, PerJob<JobRecord>> {
        self.jobs.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn record(&self, r: &RunReport) {
        let mut jobs = self.lock();
        let rec = jobs.entry(&r.job, &r.pipeline, r.index);
        *rec.outcomes.entry(r.outcome.name()).or_default() += 1;
        // A skipped or dropped run is counted, but the last run is the last that ran.
        if !r.outcome.was_run() {
            return;
        }
        let secs = r.duration.as_secs_f64();
        // The last run id's buffer is reused: recording a run allocates nothing.
        let run_id = rec.last_run_id.get_or_insert_with(String::new);
        run_id.clear();
        run_id.push_str(&r.run_id);
        rec.last_outcome = Some(r.outcome.name());
        rec.last_detail = (!r.outcome.is_ok()).then(|| r.outcome.detail());
        rec.last_started_ms = r
            .started_at
            .duration_since(SystemTime::UNIX_EPOCH)
            .ok()
            .map(|d| d.as_millis() as i64);
        rec.last_duration_ms = Some(secs * 1e3);
        if rec.buckets.is_empty() {
            rec.buckets = vec![0; DURATION_BUCKETS.len() + 1];
        }
        for (i, bound) in DURATION_BUCKETS.iter().enumerate() {
            if secs <= *bound {
                rec.buckets[i] += 1;
            }
        }
        rec.buckets[DURATION_BUCKETS.len()] += 1;
        rec.duration_sum += secs;
    }

    /// Counts a run of `job` that never started, as `outcome`.
    pub fn count_not_run(&self, job: &JobId, outcome: &'static str) {
        self.count_not_run_in(&job.pipeline, [(job.index, &*job.name)], outcome);
    }

    /// Counts a run of each of `jobs` (place, module) of `pipeline` that never started, as
    /// `outcome`, `LOCKED_AT_ONCE` per hold of the lock and without a report each: runs
    /// dropped at an overloaded queue come by the hundred thousand.
    pub fn count_not_run_in<'a>(
        &self,
        pipeline: &str,
        jobs: impl IntoIterator<Item = (usize, &'a str)>,
        outcome: &'static str,
    ) {
        let mut jobs = jobs.into_iter().peekable();
        while jobs.peek().is_some() {
            // A few at a time: a tick's thousands of dropped runs under one lock held the
            // consumers' reports back (measured: 153 waits in 1.5 s at 300,000 runs offered).
            let mut book = self.lock();
            for (index, name) in jobs.by_ref().take(LOCKED_AT_ONCE) {
                *book
                    .entry(name, pipeline, index)
                    .outcomes
                    .entry(outcome)
                    .or_default() += 1;
            }
        }
    }

    /// The record of `job`.
    pub fn get(&self, job: &JobId) -> Option<JobRecord> {
        self.lock().get(job).cloned()
    }

    /// The record of a configured job's row, as an operator reads it: its own counts, and
    /// its last run, or the module's last run by hand if that is later.
    pub fn of_row(&self, job: &JobId) -> Option<JobRecord> {
        let jobs = self.lock();
        let by_hand = jobs.get(&JobId::manual(&job.name));
        let mut rec = jobs.get(job).cloned();
        if let Some(by_hand) = by_hand {
            rec.get_or_insert_with(JobRecord::default)
                .take_last_if_later(by_hand);
        }
        rec
    }

    /// The records of jobs named `name` added up, whatever their pipeline and place.
    pub fn of_name(&self, name: &str) -> Option<JobRecord> {
        let jobs = self.lock();
        let mut records = jobs.of_name(name).peekable();
        records.peek()?;
        Some(sum(records))
    }

    /// The records added up by job name (the runner's own metrics).
    pub fn by_name(&self) -> BTreeMap<String, JobRecord> {
        let jobs = self.lock();
        jobs.names()
            .map(|name| (name.to_owned(), sum(jobs.of_name(name))))
            .collect()
    }
}

/// `records` added up into one.
fn sum<'a>(records: impl Iterator<Item = &'a JobRecord>) -> JobRecord {
    let mut sum = JobRecord::default();
    for r in records {
        sum.absorb(r);
    }
    sum
}
