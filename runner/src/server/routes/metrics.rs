//! `GET /metrics`: the series jobs wrote (a scrape does not clear them), then the runner's
//! own: build, runs by job and outcome, run durations, queue depth, skipped ticks, retries,
//! refused metric samples, history losses, module version per job, and the process'.
//!
//! The runner's label for a job is `tgrun_job`, never `job`: `job` is the label Prometheus
//! gives each scrape target, which a series of the same label would overwrite (or, with
//! `honor_labels`, be overwritten by).

use std::fmt::Write;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

use crate::metrics::escape_label_value as esc;
use crate::scheduler::Stats;
use crate::scheduler::book::DURATION_BUCKETS;
use crate::server::AppState;

/// The version of wasmtime the runner was built with (read from `Cargo.lock` by build.rs).
pub const WASMTIME_VERSION: &str = env!("TGRUN_WASMTIME_VERSION");

/// `# HELP` and `# TYPE` lines of a family.
fn head(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let service = &state.service;
    let mut out = service.services.metrics.render();
    let shared = &service.shared;
    let book = shared.reports.book.by_name();

    head(
        &mut out,
        "tgrun_build_info",
        "gauge",
        "The runner's version and the wasmtime it runs jobs on; always 1.",
    );
    let _ = writeln!(
        out,
        "tgrun_build_info{{version=\"{}\",wasmtime=\"{WASMTIME_VERSION}\"}} 1",
        env!("CARGO_PKG_VERSION")
    );
    head(
        &mut out,
        "tgrun_runs_total",
        "counter",
        "Runs by job and outcome: ok, error, timeout, memory_limit, trap, module_missing, \
         module_invalid, or not started: skipped, dropped, cancelled.",
    );
    for (job, rec) in &book {
        for (outcome, n) in &rec.outcomes {
            let _ = writeln!(
                out,
                "tgrun_runs_total{{tgrun_job=\"{}\",outcome=\"{outcome}\"}} {n}",
                esc(job)
            );
        }
    }
    head(
        &mut out,
        "tgrun_run_duration_seconds",
        "histogram",
        "How long the runs that started took, by job, in seconds.",
    );
    for (job, rec) in &book {
        let job = esc(job);
        for (bound, n) in DURATION_BUCKETS.iter().zip(&rec.buckets) {
            let _ = writeln!(
                out,
                "tgrun_run_duration_seconds_bucket{{tgrun_job=\"{job}\",le=\"{bound}\"}} {n}"
            );
        }
        let count = rec.buckets.last().copied().unwrap_or(0);
        let _ = writeln!(
            out,
            "tgrun_run_duration_seconds_bucket{{tgrun_job=\"{job}\",le=\"+Inf\"}} {count}\n\
             tgrun_run_duration_seconds_sum{{tgrun_job=\"{job}\"}} {}\n\
             tgrun_run_duration_seconds_count{{tgrun_job=\"{job}\"}} {count}",
            rec.duration_sum
        );
    }
    let stats = &shared.reports.stats;
    let history = shared.reports.history.as_ref();
    let (made_ahead, ahead_discarded) = shared.execution.sandbox.ahead_stats();
    let large = shared.execution.sandbox.large_stats();
    let single = [
        (
            "tgrun_queue_depth",
            "gauge",
            "Runs waiting in the queue for a consumer.",
            service.queue_depth().await as u64,
        ),
        (
            "tgrun_producer_ticks_skipped_total",
            "counter",
            "Due times that passed without a run (the runner down, paused or behind).",
            Stats::get(&stats.missed_ticks),
        ),
        (
            "tgrun_retries_total",
            "counter",
            "Retries of failed runs started.",
            Stats::get(&stats.retried),
        ),
        (
            "tgrun_metrics_samples_refused_total",
            "counter",
            "Metric samples jobs wrote that the runner refused (a cap, or another job's series).",
            service.services.metrics.refused(),
        ),
        (
            "tgrun_history_dropped_total",
            "counter",
            "Run reports the history could not keep up with and dropped.",
            history.map_or(0, |h| Stats::get(&h.dropped)),
        ),
        (
            "tgrun_history_lost_total",
            "counter",
            "Run reports the history failed to write.",
            history.map_or(0, |h| Stats::get(&h.lost)),
        ),
        (
            "tgrun_sql_abandoned_statements",
            "gauge",
            "Statements of ended runs still running, each holding a connection of the jobs' pool (a SQLite operation that does not stop).",
            crate::clients::sql::session::abandoned_statements() as u64,
        ),
        (
            "tgrun_runs_made_ahead_total",
            "counter",
            "Runs that took an instance made ahead of them (components slow to instantiate).",
            made_ahead,
        ),
        (
            "tgrun_made_ahead_discarded_total",
            "counter",
            "Instances made ahead and thrown away unused (their start called a client or logged).",
            ahead_discarded,
        ),
        (
            "tgrun_large_instances_running",
            "gauge",
            "Instances of large components (Python jobs) running now, each holding a slot of the large pool.",
            large.running,
        ),
        (
            "tgrun_large_instances_parked",
            "gauge",
            "Instances of large components made ahead of their run and waiting, each holding a slot of the large pool.",
            large.parked,
        ),
        (
            "tgrun_large_memory_kept_bytes",
            "gauge",
            "Bytes the large pool's free slots keep resident for the next runs (given back when the pool is idle).",
            large.kept_bytes,
        ),
        (
            "tgrun_large_pool_trims_total",
            "counter",
            "Times the large pool, idle, gave its memory back.",
            large.trims,
        ),
    ];
    for (name, kind, help, value) in single {
        head(&mut out, name, kind, help);
        let _ = writeln!(out, "{name} {value}");
    }
    head(
        &mut out,
        "tgrun_module_info",
        "gauge",
        "The version (first 16 hex digits of the component's sha256) each module runs; always 1.",
    );
    for (module, version) in shared.execution.modules.versions() {
        let _ = writeln!(
            out,
            "tgrun_module_info{{module=\"{}\",version=\"{version}\"}} 1",
            esc(&module)
        );
    }
    head(
        &mut out,
        "tgrun_http_requests_total",
        "counter",
        "Jobs' outbound HTTP requests, by origin and outcome (answered, refused, timeout, failed, limit_exceeded, invalid, cancelled).",
    );
    for ((origin, outcome), n) in service.services.http.counts() {
        let _ = writeln!(
            out,
            "tgrun_http_requests_total{{origin=\"{}\",outcome=\"{outcome}\"}} {n}",
            esc(&origin)
        );
    }
    crate::metrics::process::render(&mut out);
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        out,
    )
}
