//! One run: a fresh instance (made now, or made ahead by [`super::warm`]), the call to its
//! export, and its outcome.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Instant, SystemTime};

use wasmtime::{Store, Trap};

use super::Sandbox;
use super::component::{Compiled, HandlerComponent, JobComponent, World};
use super::large::{Bound, NoSeat, Seat};
use super::store::HOST_CALL_GRACE;
use super::warm::make_ahead;
use crate::bindings::handler::tgrun::job::http_types::{Request, Response};
use crate::bindings::{GuestError, RunContext};
use crate::host::journal::{EchoTags, LogLevel, LogStream};
use crate::host::limits::MemoryLimitExceeded;
use crate::host::state::RunState;
use crate::run::outcome::clip_error;
use crate::run::{Invocation, Outcome, RunLimits, RunReport, WrittenMetric};

/// How a run begins: its store, its instance if one was made ahead (else the code to make
/// it), and its slot of the large pool if its component runs there.
struct Start<W: World> {
    store: Store<RunState>,
    instance: Option<W::Instance>,
    code: Option<Bound<W>>,
    seat: Option<Seat>,
}

enum Ended {
    /// The export returned; a handler's answer with it.
    Returned(Result<Option<Response>, GuestError>),
    Failed(wasmtime::Error),
    Dropped,
    Cancelled(String),
}

impl Sandbox {
    /// Runs `inv` in a fresh instance of `component`. Never fails: every way a run can
    /// end is an [`Outcome`] in the report. `echo` writes the run's log lines to the
    /// runner's log as they come.
    pub async fn run(
        &self,
        component: &Arc<JobComponent>,
        inv: &Invocation,
        echo: bool,
    ) -> RunReport {
        self.execute(component, (), inv, echo).await.1
    }

    /// Answers `request` in a fresh instance of a route handler, with the limits and
    /// capabilities of `inv`. The response is there when the outcome is `ok`.
    pub async fn handle(
        &self,
        component: &Arc<HandlerComponent>,
        request: Request,
        inv: &Invocation,
        echo: bool,
    ) -> (Option<Response>, RunReport) {
        self.execute(component, request, inv, echo).await
    }

    /// `inv`'s store and instance, or the outcome of a run that never got one: no slot of
    /// the large pool before its deadline or its cancel, or code that could not be bound.
    async fn start<W: World>(
        &self,
        component: &Compiled<W>,
        inv: &Invocation,
        deadline: Instant,
        tags: Option<EchoTags>,
    ) -> Result<Start<W>, Outcome> {
        // An instance made ahead came with its slot of the large pool.
        if let Some((mut store, instance, permit)) = component.warm.take(inv.limits.memory_bytes) {
            self.stores.ready(&mut store, inv, deadline, tags);
            self.ahead.served.fetch_add(1, Ordering::Relaxed);
            return Ok(Start {
                store,
                instance: Some(instance),
                code: None,
                seat: Some(self.large.seated(Some(permit))),
            });
        }
        let seat = match component.is_large() {
            true => Some(
                self.large
                    .seat(&self.ahead, deadline, &inv.cancel)
                    .await
                    .map_err(|no| match no {
                        NoSeat::Timeout => {
                            // Not the guest's time: say so where an operator looks.
                            tracing::warn!(
                                job = %inv.job,
                                run_id = %inv.run_id,
                                "the run timed out waiting for a slot of the large pool: all {} were busy (runner.max_large_instances)",
                                self.settings.large_instances
                            );
                            Outcome::Timeout {
                                limit: inv.limits.timeout,
                            }
                        }
                        NoSeat::Cancelled(reason) => Outcome::Cancelled { reason },
                    })?,
            ),
            false => None,
        };
        // The store is made on the engine the code is bound to (the large pool's of the
        // moment, for a large component).
        let code = self
            .code(component)
            .await
            .map_err(|e| Outcome::ModuleInvalid {
                message: format!("{e:#}"),
            })?;
        let store = self.stores.for_run(&code.engine, inv, deadline, tags);
        Ok(Start {
            store,
            instance: None,
            code: Some(code),
            seat,
        })
    }

    async fn execute<W: World>(
        &self,
        component: &Arc<Compiled<W>>,
        input: W::Input,
        inv: &Invocation,
        echo: bool,
    ) -> (Option<Response>, RunReport) {
        let started_at = SystemTime::now();
        let started = Instant::now();
        // Clamped: an invocation from elsewhere (the cluster's wire, `tgrun run --timeout`)
        // may carry any duration, and `Instant + Duration` panics past the clock's range.
        let deadline = started + inv.limits.timeout.min(crate::config::bounds::DAY);

        let tags = echo.then(|| EchoTags {
            job: inv.job.to_string(),
            run_id: inv.run_id.clone(),
        });
        let Start {
            mut store,
            mut instance,
            code,
            seat,
        } = match self.start(component, inv, deadline, tags).await {
            Ok(start) => start,
            Err(outcome) => {
                let report = report_of(inv, component, started_at, started.elapsed(), outcome);
                return (None, report);
            }
        };
        let (stdout, stderr) = (
            store.data().wasi.stdout().clone(),
            store.data().wasi.stderr().clone(),
        );

        let ctx = RunContext {
            job: inv.job.to_string(),
            run_id: inv.run_id.clone(),
            pipeline: inv.pipeline.to_string(),
            start_time_ms: inv.scheduled_ms,
        };
        let call = async {
            let instance = match (instance.take(), &code) {
                (Some(made_ahead), _) => made_ahead,
                (None, Some(code)) => {
                    let t = Instant::now();
                    let made = code.pre.instantiate(&mut store).await?;
                    component.warm.observe(t.elapsed());
                    made
                }
                (None, None) => unreachable!("a run has its instance or the code to make it"),
            };
            W::call(&instance, &mut store, &ctx, &inv.params, input).await
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

        let (out_lines, out_dropped) = stdout.take_lines();
        let (err_lines, err_dropped) = stderr.take_lines();
        let (mut outcome, response) = classify(ended, store.data(), inv.limits, &err_lines);
        // The store goes back now (its pool slot reset), or, for a component dear to
        // instantiate whose slot no run waits for, to the background where the next run's
        // instance is made with that slot. The slot's permit goes after its store.
        let mut seat = seat;
        let permit = seat.as_mut().and_then(|s| s.permit.take());
        let wanted = permit.is_some() && !self.large.has_waiters();
        let code = match code {
            // It ran in an instance made ahead: the next is made on the engine of the moment.
            None if wanted => self.code(component).await.ok(),
            code => code,
        };
        let next = match (permit, code) {
            (Some(p), Some(c)) if wanted && self.ahead.wants(component) => Ok((p, c)),
            (p, _) => Err(p),
        };
        let mut journal = match next {
            Ok((permit, code)) => {
                let journal =
                    std::mem::replace(&mut store.data_mut().journal, self.stores.journal(None));
                let (memory, timeout) = (inv.limits.memory_bytes, inv.limits.timeout);
                let (stores, ahead) = (self.stores.clone(), self.ahead.clone());
                make_ahead(
                    stores,
                    ahead,
                    component.clone(),
                    code,
                    store,
                    memory,
                    timeout,
                    permit,
                );
                journal
            }
            Err(permit) => {
                let journal = store.into_data().journal;
                drop(permit);
                journal
            }
        };
        drop(seat);
        // The run has ended: its stdout joins its log at no charge (both capped).
        journal.settle();
        // What the guest wrote into its failure is masked as its log lines are.
        if let Outcome::Error { message, .. } | Outcome::Trap { message } = &mut outcome {
            *message = journal.mask(std::mem::take(message));
        }
        for line in out_lines {
            journal.log(LogLevel::Info, LogStream::Stdout, line);
        }
        for line in err_lines {
            journal.log(LogLevel::Warn, LogStream::Stderr, line);
        }

        let mut report = report_of(inv, component, started_at, duration, outcome);
        report.logs = journal.logs;
        report.logs_dropped = journal.logs_dropped;
        report.output_dropped = out_dropped + err_dropped;
        report.metrics = journal
            .metrics
            .into_iter()
            .map(|m| WrittenMetric {
                name: m.name,
                labels: m.labels,
                value: m.value,
                time_ms: m.time_ms,
            })
            .collect();
        (response, report)
    }
}

/// `inv`'s report: `outcome` after `duration`, on `component`'s version; the caller adds
/// what the run wrote, if it ran.
fn report_of<W: World>(
    inv: &Invocation,
    component: &Compiled<W>,
    started_at: SystemTime,
    duration: std::time::Duration,
    outcome: Outcome,
) -> RunReport {
    RunReport {
        started_at,
        duration,
        module_version: Some(component.version.clone()),
        ..inv.not_run(outcome)
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
