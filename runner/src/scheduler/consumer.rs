//! A consumer: takes runs from the queue (whichever it is), runs each in a fresh
//! instance, reports it, and settles it: done, a retry after its backoff, or handed back.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::Shared;
use super::queue::{Lease, RunQueue, Settle};
use crate::run::outcome::Outcome;

/// Takes runs from `queue` until `stop`: each runs in a fresh instance while its lease is
/// kept alive, its report is recorded, and the lease is settled by what the run came to.
pub async fn consume(queue: Arc<dyn RunQueue>, shared: Arc<Shared>, stop: CancellationToken) {
    while let Some(lease) = queue.take(&stop).await {
        let mut next = Some(lease);
        while let Some(lease) = next {
            let how = run_leased(&shared, &*lease).await;
            next = lease.settle(how).await;
        }
        // A busy queue and quick runs may never make a consumer wait: it gives its worker
        // thread back now and then (tokio's budget), so timers, producers and the HTTP
        // server on that thread are not starved.
        tokio::task::consume_budget().await;
    }
}

/// Runs the leased run, records its report, and answers how to settle it.
async fn run_leased(shared: &Shared, lease: &dyn Lease) -> Settle {
    let due = lease.due();
    let inv = &due.inv;
    let report = if inv.cancel.is_cancelled() {
        inv.not_run(Outcome::Cancelled {
            reason: inv.cancel.reason(),
        })
    } else {
        tokio::select! {
            report = shared.execution.run(inv) => report,
            never = lease.keep_alive() => match never {},
        }
    };
    // No retry once the runner stops (a consumer told to stop by a smaller configuration
    // still settles its run as a retry).
    let retry_in = if report.outcome.is_retryable() && !shared.stopping.is_cancelled() {
        due.retry.delay_before(inv.attempt + 1)
    } else {
        None
    };
    let cut_short =
        matches!(report.outcome, Outcome::Cancelled { .. }) && shared.stopping.is_cancelled();
    shared.reports.finish(report);
    match retry_in {
        Some(delay) => Settle::RetryAfter(delay),
        None if cut_short => Settle::HandBack,
        None => Settle::Done,
    }
}
