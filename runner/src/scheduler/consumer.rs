//! A consumer: takes runs from the queue, runs each in a fresh instance, reports it.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_channel::Receiver;
use tokio_util::sync::CancellationToken;

use super::Shared;
use crate::sandbox::outcome::{Outcome, RunReport};
use crate::sandbox::run::Invocation;

pub async fn consume(queue: Receiver<Invocation>, shared: Arc<Shared>, cancel: CancellationToken) {
    loop {
        let inv = tokio::select! {
            biased;
            _ = cancel.cancelled() => return,
            next = queue.recv() => match next {
                Ok(inv) => inv,
                Err(_) => return,
            },
        };
        let report = run_one(&shared, &inv).await;
        shared.finish(report);
    }
}

/// Runs one invocation in the sandbox, or reports why its module cannot run.
pub async fn run_one(shared: &Shared, inv: &Invocation) -> RunReport {
    match shared.modules.get(&inv.job).await {
        Ok(component) => shared.sandbox.run(&component, inv, true).await,
        Err(outcome) => unrunnable(inv, outcome),
    }
}

fn unrunnable(inv: &Invocation, outcome: Outcome) -> RunReport {
    RunReport {
        job: inv.job.to_string(),
        run_id: inv.run_id.clone(),
        pipeline: inv.pipeline.to_string(),
        scheduled_ms: inv.scheduled_ms,
        started_at: SystemTime::now(),
        duration: Duration::ZERO,
        outcome,
        logs: Vec::new(),
        logs_dropped: 0,
        output_dropped: 0,
        metrics: Vec::new(),
        module_version: None,
    }
}

pub(crate) fn log_outcome(r: &RunReport) {
    let ms = r.duration.as_secs_f64() * 1e3;
    let outcome = r.outcome.name();
    if r.outcome.is_ok() {
        tracing::info!(job = %r.job, run_id = %r.run_id, pipeline = %r.pipeline, outcome,
            duration_ms = format_args!("{ms:.3}"), "run finished");
    } else {
        tracing::error!(job = %r.job, run_id = %r.run_id, pipeline = %r.pipeline, outcome,
            duration_ms = format_args!("{ms:.3}"), "run failed: {}", r.outcome.detail());
    }
}
