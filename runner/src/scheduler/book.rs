//! The run book: per job, its last run and counters of outcomes and durations, kept as
//! runs finish, for `GET /jobs` and the runner's own metrics.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::SystemTime;

use crate::run::outcome::RunReport;

/// Upper bounds of the run duration histogram, in seconds.
pub const DURATION_BUCKETS: &[f64] = &[
    0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 30.0, 120.0,
];

#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct JobRecord {
    pub last_run_id: Option<String>,
    pub last_outcome: Option<String>,
    pub last_detail: Option<String>,
    /// When the last run started, ms since the Unix epoch.
    pub last_started_ms: Option<i64>,
    pub last_duration_ms: Option<f64>,
    /// Runs by outcome name.
    pub outcomes: BTreeMap<String, u64>,
    /// Cumulative counts per bucket of [`DURATION_BUCKETS`], then +Inf.
    #[serde(skip)]
    pub buckets: Vec<u64>,
    #[serde(skip)]
    pub duration_sum: f64,
}

#[derive(Debug, Default)]
pub struct RunBook {
    jobs: Mutex<BTreeMap<String, JobRecord>>,
}

impl RunBook {
    pub fn record(&self, r: &RunReport) {
        let mut jobs = self.jobs.lock().unwrap_or_else(|e| e.into_inner());
        // Runs of a known job (nearly all of them) do not copy its name.
        if !jobs.contains_key(&r.job) {
            jobs.insert(r.job.clone(), JobRecord::default());
        }
        let Some(rec) = jobs.get_mut(&r.job) else {
            return;
        };
        match rec.outcomes.get_mut(r.outcome.name()) {
            Some(n) => *n += 1,
            None => {
                rec.outcomes.insert(r.outcome.name().to_owned(), 1);
            }
        }
        // A skipped or dropped run is counted, but the last run is the last that ran.
        if !r.outcome.was_run() {
            return;
        }
        let secs = r.duration.as_secs_f64();
        rec.last_run_id = Some(r.run_id.clone());
        rec.last_outcome = Some(r.outcome.name().to_owned());
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

    /// Counts `n` runs of `job` that never started, as `outcome` (no report: dropped runs
    /// at an overloaded queue come by the hundred thousand).
    pub fn count_not_run(&self, job: &str, outcome: &str, n: u64) {
        let mut jobs = self.jobs.lock().unwrap_or_else(|e| e.into_inner());
        let rec = match jobs.get_mut(job) {
            Some(rec) => rec,
            None => jobs.entry(job.to_owned()).or_default(),
        };
        match rec.outcomes.get_mut(outcome) {
            Some(c) => *c += n,
            None => {
                rec.outcomes.insert(outcome.to_owned(), n);
            }
        }
    }

    pub fn get(&self, job: &str) -> Option<JobRecord> {
        self.jobs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(job)
            .cloned()
    }

    pub fn all(&self) -> BTreeMap<String, JobRecord> {
        self.jobs.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}
