//! One run: a fresh `Store` and instance, the call to `run`, and its outcome.

use std::time::{Duration, Instant, SystemTime};

use wasmtime::component::ResourceTable;
use wasmtime::{Store, Trap, UpdateDeadline};

use super::Sandbox;
use super::component::{HandlerComponent, JobComponent};
use super::output::CappedOutput;
use crate::bindings::handler::tgrun::job::http_types::{Request, Response};
use crate::bindings::{GuestError, RunContext};
use crate::host::journal::{EchoTags, Journal, LogLevel, LogStream};
use crate::host::limits::{MemoryLimitExceeded, MemoryLimiter};
use crate::host::state::{LazyWasi, RunState};
use crate::run::outcome::clip_error;
use crate::run::{Invocation, Outcome, RunLimits, RunReport, WrittenMetric};

/// How long past the deadline a run may still take before it is dropped from outside:
/// covers a host call that does not return (the epoch check only runs in guest code).
const HOST_CALL_GRACE: Duration = Duration::from_millis(100);

enum Ended {
    /// The export returned; a handler's answer with it.
    Returned(Result<Option<Response>, GuestError>),
    Failed(wasmtime::Error),
    Dropped,
    Cancelled(String),
}

/// Which export a run calls.
enum Entry<'a> {
    Job(&'a JobComponent),
    Handler(&'a HandlerComponent, Request),
}

impl Sandbox {
    /// Runs `inv` in a fresh instance of `component`. Never fails: every way a run can
    /// end is an [`Outcome`] in the report. `echo` writes the run's log lines to the
    /// runner's log as they come.
    pub async fn run(&self, component: &JobComponent, inv: &Invocation, echo: bool) -> RunReport {
        self.execute(Entry::Job(component), inv, echo).await.1
    }

    /// Answers `request` in a fresh instance of a route handler, with the limits and
    /// capabilities of `inv`. The response is there when the outcome is `ok`.
    pub async fn handle(
        &self,
        component: &HandlerComponent,
        request: Request,
        inv: &Invocation,
        echo: bool,
    ) -> (Option<Response>, RunReport) {
        self.execute(Entry::Handler(component, request), inv, echo)
            .await
    }

    async fn execute(
        &self,
        entry: Entry<'_>,
        inv: &Invocation,
        echo: bool,
    ) -> (Option<Response>, RunReport) {
        let started_at = SystemTime::now();
        let started = Instant::now();
        // Clamped: an invocation from elsewhere (the cluster's wire, `tgrun run --timeout`)
        // may carry any duration, and `Instant + Duration` panics past the clock's range.
        let deadline = started + inv.limits.timeout.min(crate::config::bounds::DAY);

        let stdout = CappedOutput::new(self.settings.max_output_bytes);
        let stderr = CappedOutput::new(self.settings.max_output_bytes);
        let wasi = LazyWasi::new(stdout.clone(), stderr.clone());
        let tags = echo.then(|| EchoTags {
            job: inv.job.to_string(),
            run_id: inv.run_id.clone(),
        });
        let memory_limit = usize::try_from(inv.limits.memory_bytes).unwrap_or(usize::MAX);
        let state = RunState {
            job: inv.job.to_string(),
            grants: inv.grants,
            wasi,
            table: ResourceTable::new(),
            limiter: MemoryLimiter::new(memory_limit),
            services: self.services.clone(),
            journal: Journal::new(self.settings.max_log_bytes, tags, self.services.mask()),
            open_transactions: 0,
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.limiter);
        if self.settings.epoch_deadlines {
            store.set_epoch_deadline(1);
            // At each epoch tick: stop the guest if its time is up, else let other tasks run.
            store.epoch_deadline_callback(move |_| {
                Ok(if Instant::now() >= deadline {
                    UpdateDeadline::Interrupt
                } else {
                    UpdateDeadline::Yield(1)
                })
            });
        }

        let ctx = RunContext {
            job: inv.job.to_string(),
            run_id: inv.run_id.clone(),
            pipeline: inv.pipeline.to_string(),
            start_time_ms: inv.scheduled_ms,
        };
        let version = match &entry {
            Entry::Job(c) => c.version.clone(),
            Entry::Handler(c, _) => c.version.clone(),
        };
        let call = async {
            match entry {
                Entry::Job(c) => {
                    let job = c.pre.instantiate_async(&mut store).await?;
                    let r = job.call_run(&mut store, &ctx, &inv.params).await?;
                    Ok::<_, wasmtime::Error>(r.map(|()| None))
                }
                Entry::Handler(c, request) => {
                    let handler = c.pre.instantiate_async(&mut store).await?;
                    let r = handler.call_handle(&mut store, &request).await?;
                    Ok(r.map(Some))
                }
            }
        };
        // A cancelled run is dropped where it stands: the guest at its next epoch tick, a
        // host call (an HTTP request, a query) wherever it waits. The run is polled first:
        // one that ends in its first poll (most do) never registers with the token.
        let ended = tokio::select! {
            biased;
            r = tokio::time::timeout_at((deadline + HOST_CALL_GRACE).into(), call) => match r {
                Ok(Ok(returned)) => Ended::Returned(returned),
                Ok(Err(e)) => Ended::Failed(e),
                Err(_) => Ended::Dropped,
            },
            reason = inv.cancel.cancelled() => Ended::Cancelled(reason),
        };
        let duration = started.elapsed();

        let mut state = store.into_data();
        let (out_lines, out_dropped) = stdout.take_lines();
        let (err_lines, err_dropped) = stderr.take_lines();
        let (mut outcome, response) = classify(ended, &state, inv.limits, &err_lines);
        // What the guest wrote into its failure is masked as its log lines are.
        if let Outcome::Error { message, .. } | Outcome::Trap { message } = &mut outcome {
            *message = state.journal.mask(std::mem::take(message));
        }
        for line in out_lines {
            state.journal.log(LogLevel::Info, LogStream::Stdout, line);
        }
        for line in err_lines {
            state.journal.log(LogLevel::Warn, LogStream::Stderr, line);
        }

        let report = RunReport {
            job: inv.job.to_string(),
            run_id: inv.run_id.clone(),
            pipeline: inv.pipeline.to_string(),
            index: inv.index,
            scheduled_ms: inv.scheduled_ms,
            started_at,
            duration,
            outcome,
            logs: state.journal.logs,
            logs_dropped: state.journal.logs_dropped,
            output_dropped: out_dropped + err_dropped,
            metrics: state
                .journal
                .metrics
                .into_iter()
                .map(|m| WrittenMetric {
                    name: m.name,
                    labels: m.labels,
                    value: m.value,
                    time_ms: m.time_ms,
                })
                .collect(),
            module_version: Some(version),
            attempt: inv.attempt,
        };
        (response, report)
    }
}

fn classify(
    ended: Ended,
    state: &RunState,
    limits: RunLimits,
    stderr: &[String],
) -> (Outcome, Option<Response>) {
    let error = match ended {
        Ended::Returned(Ok(response)) => return (Outcome::Ok, response),
        Ended::Returned(Err(e)) => {
            let (kind, message) = guest_error_parts(e);
            let outcome = Outcome::Error {
                kind: kind.into(),
                message: clip_error(message),
            };
            return (outcome, None);
        }
        Ended::Dropped => {
            let outcome = Outcome::Timeout {
                limit: limits.timeout,
            };
            return (outcome, None);
        }
        Ended::Cancelled(reason) => return (Outcome::Cancelled { reason }, None),
        Ended::Failed(e) => e,
    };
    (trapped(error, state, limits, stderr), None)
}

/// How a run that did not return ended.
fn trapped(
    error: wasmtime::Error,
    state: &RunState,
    limits: RunLimits,
    stderr: &[String],
) -> Outcome {
    // The limiter's flag, not only the error, decides: a guest may turn a refused
    // allocation into a trap of its own (an abort) before the error reaches us.
    if state.limiter.hit || error.downcast_ref::<MemoryLimitExceeded>().is_some() {
        return Outcome::MemoryLimit {
            limit_bytes: limits.memory_bytes,
        };
    }
    if matches!(error.downcast_ref::<Trap>(), Some(Trap::Interrupt)) {
        return Outcome::Timeout {
            limit: limits.timeout,
        };
    }
    // The trap itself, not the wasm backtrace (kept for the debug log): an operator wants
    // "unreachable executed" and, for a Rust panic, the panic message from stderr.
    tracing::debug!("run trapped: {error:?}");
    let mut message = match error.downcast_ref::<Trap>() {
        Some(trap) => trap.to_string(),
        None => format!("{error:#}"),
    };
    if let Some(panic) = panic_message(stderr) {
        message = format!("{message}: {panic}");
    }
    Outcome::Trap {
        message: clip_error(message),
    }
}

/// The message of a Rust panic, from the guest's stderr: `panicked at FILE:LINE:COL:` and
/// the lines up to std's `note:` line.
pub(crate) fn panic_message(stderr: &[String]) -> Option<String> {
    let start = stderr.iter().position(|l| l.contains("panicked at "))?;
    let at = stderr[start]
        .split("panicked at ")
        .nth(1)?
        .trim_end_matches(':');
    let text: Vec<&str> = stderr[start + 1..]
        .iter()
        .take_while(|l| !l.starts_with("note: "))
        .map(String::as_str)
        .collect();
    Some(format!("panic at {at}: {}", text.join(" ")))
}

fn guest_error_parts(e: GuestError) -> (&'static str, String) {
    match e {
        GuestError::NotConfigured(m) => ("not-configured", m),
        GuestError::InvalidArgument(m) => ("invalid-argument", m),
        GuestError::Upstream(m) => ("upstream", m),
        GuestError::LimitExceeded(m) => ("limit-exceeded", m),
        GuestError::NotPermitted(m) => ("not-permitted", m),
        GuestError::Failed(m) => ("failed", m),
    }
}
