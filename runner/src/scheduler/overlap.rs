//! Overlap: what a due run does when the job's previous run is still queued or running.
//!
//! tglib enqueues regardless, so a job slower than its period piles up without end. Here
//! each job (pipeline and name) has a [`JobRuns`] that knows its live runs (queued, running,
//! or waiting to retry), and the job's [`Overlap`] policy decides.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use super::Due;
use crate::run::cancel::RunCancel;
use crate::run::overlap::{MAX_WAITING, Overlap};

/// What the policy decided for a due run.
pub enum Admission {
    /// Put it on the queue (it is live from now).
    Enqueue(Due),
    /// Held back until the running one ends (`queue`).
    Held,
    /// Not run, for this reason.
    Skipped(Due, String),
}

/// One job's live runs and the runs it holds back.
#[derive(Debug, Default)]
pub struct JobRuns {
    inner: Mutex<SlotState>,
}

#[derive(Debug, Default)]
struct SlotState {
    /// By the address of the run's canceller (stable while it is held here): an `allow`
    /// job may have thousands live, and each end must be O(1).
    live: HashMap<usize, Arc<RunCancel>>,
    waiting: VecDeque<Due>,
}

impl SlotState {
    fn add(&mut self, cancel: &Arc<RunCancel>) {
        self.live
            .insert(Arc::as_ptr(cancel) as usize, cancel.clone());
    }
}

impl JobRuns {
    fn state(&self) -> std::sync::MutexGuard<'_, SlotState> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Decides what becomes of `inv`, due now, under `policy`. Runs the decision cancels
    /// (`replace`) are told why; the ones that never started are answered for the
    /// caller to record.
    pub fn admit(&self, policy: Overlap, due: Due) -> (Admission, Vec<Due>) {
        let mut s = self.state();
        if (s.live.is_empty() && s.waiting.is_empty()) || policy == Overlap::Allow {
            s.add(&due.inv.cancel);
            return (Admission::Enqueue(due), Vec::new());
        }
        match policy {
            Overlap::Skip | Overlap::Allow => {
                let why = "skipped: the previous run is still queued or running (overlap: skip)";
                (Admission::Skipped(due, why.into()), Vec::new())
            }
            Overlap::Queue if s.waiting.len() < MAX_WAITING => {
                s.waiting.push_back(due);
                (Admission::Held, Vec::new())
            }
            Overlap::Queue => {
                let why = format!(
                    "skipped: {MAX_WAITING} runs already wait behind the running one (overlap: queue)"
                );
                (Admission::Skipped(due, why), Vec::new())
            }
            Overlap::Replace => {
                let why = format!("replaced by the run {} (overlap: replace)", due.inv.run_id);
                for live in s.live.values() {
                    live.cancel(why.clone());
                }
                let dropped: Vec<Due> = s.waiting.drain(..).collect();
                for d in &dropped {
                    d.inv.cancel.cancel(why.clone());
                }
                s.add(&due.inv.cancel);
                (Admission::Enqueue(due), dropped)
            }
        }
    }

    /// A live run has ended for good: it is forgotten, and the next held run (if any) is
    /// answered, live from now, to be run next.
    pub fn finished(&self, cancel: &Arc<RunCancel>) -> Option<Due> {
        let mut s = self.state();
        s.live.remove(&(Arc::as_ptr(cancel) as usize));
        let next = s.waiting.pop_front()?;
        s.add(&next.inv.cancel);
        Some(next)
    }

    /// Cancels every live run and answers the held ones (shutdown).
    pub fn cancel_all(&self, reason: &str) -> Vec<Due> {
        let mut s = self.state();
        for live in s.live.values() {
            live.cancel(reason);
        }
        s.waiting.drain(..).collect()
    }

    /// Runs queued, running or waiting to retry, and runs held back.
    pub fn counts(&self) -> (usize, usize) {
        let s = self.state();
        (s.live.len(), s.waiting.len())
    }
}

/// A job: its pipeline's name, its place in the pipeline and its name. By place, because a
/// pipeline may list one module twice (with other params): two jobs, each with its runs.
type JobKey = (Arc<str>, usize, Arc<str>);

/// Every job's live runs, by pipeline, place and job name.
#[derive(Debug, Default)]
pub struct AllJobRuns {
    by_job: Mutex<HashMap<JobKey, Arc<JobRuns>>>,
}

impl AllJobRuns {
    pub fn get(&self, pipeline: &Arc<str>, index: usize, job: &Arc<str>) -> Arc<JobRuns> {
        let mut by_job = self.by_job.lock().unwrap_or_else(|e| e.into_inner());
        by_job
            .entry((pipeline.clone(), index, job.clone()))
            .or_default()
            .clone()
    }

    pub fn all(&self) -> Vec<Arc<JobRuns>> {
        let by_job = self.by_job.lock().unwrap_or_else(|e| e.into_inner());
        by_job.values().cloned().collect()
    }
}
