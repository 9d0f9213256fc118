//! `GET /metrics`: the series jobs wrote (a scrape does not clear them), then the runner's
//! own: runs by job and outcome, run durations, queue depth, dropped runs and skipped
//! ticks, refused metric samples, module version per job.

use std::fmt::Write;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

use crate::metrics::escape_label_value as esc;
use crate::scheduler::Stats;
use crate::scheduler::book::DURATION_BUCKETS;
use crate::server::AppState;

pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let service = &state.service;
    let mut out = service.services.metrics.render();
    let shared = &service.shared;
    let book = shared.reports.book.by_name();

    out.push_str("# TYPE tgrun_runs_total counter\n");
    for (job, rec) in &book {
        for (outcome, n) in &rec.outcomes {
            let _ = writeln!(
                out,
                "tgrun_runs_total{{job=\"{}\",outcome=\"{outcome}\"}} {n}",
                esc(job)
            );
        }
    }
    out.push_str("# TYPE tgrun_run_duration_seconds histogram\n");
    for (job, rec) in &book {
        let job = esc(job);
        for (bound, n) in DURATION_BUCKETS.iter().zip(&rec.buckets) {
            let _ = writeln!(
                out,
                "tgrun_run_duration_seconds_bucket{{job=\"{job}\",le=\"{bound}\"}} {n}"
            );
        }
        let count = rec.buckets.last().copied().unwrap_or(0);
        let _ = writeln!(
            out,
            "tgrun_run_duration_seconds_bucket{{job=\"{job}\",le=\"+Inf\"}} {count}"
        );
        let _ = writeln!(
            out,
            "tgrun_run_duration_seconds_sum{{job=\"{job}\"}} {}",
            rec.duration_sum
        );
        let _ = writeln!(
            out,
            "tgrun_run_duration_seconds_count{{job=\"{job}\"}} {count}"
        );
    }
    let gauges = [
        (
            "tgrun_queue_depth",
            "gauge",
            service.queue_depth().await as u64,
        ),
        (
            "tgrun_runs_dropped_total",
            "counter",
            Stats::get(&shared.reports.stats.dropped),
        ),
        (
            "tgrun_producer_ticks_skipped_total",
            "counter",
            Stats::get(&shared.reports.stats.missed_ticks),
        ),
        (
            "tgrun_runs_skipped_total",
            "counter",
            Stats::get(&shared.reports.stats.skipped),
        ),
        (
            "tgrun_runs_cancelled_total",
            "counter",
            Stats::get(&shared.reports.stats.cancelled),
        ),
        (
            "tgrun_retries_total",
            "counter",
            Stats::get(&shared.reports.stats.retried),
        ),
        (
            "tgrun_metrics_samples_refused_total",
            "counter",
            service.services.metrics.refused(),
        ),
        (
            "tgrun_history_dropped_total",
            "counter",
            shared
                .reports
                .history
                .as_ref()
                .map_or(0, |h| Stats::get(&h.dropped)),
        ),
        (
            "tgrun_history_lost_total",
            "counter",
            shared
                .reports
                .history
                .as_ref()
                .map_or(0, |h| Stats::get(&h.lost)),
        ),
    ];
    for (name, kind, value) in gauges {
        let _ = writeln!(out, "# TYPE {name} {kind}\n{name} {value}");
    }
    out.push_str("# TYPE tgrun_module_info gauge\n");
    for (job, version) in shared.execution.modules.versions() {
        let _ = writeln!(
            out,
            "tgrun_module_info{{job=\"{}\",version=\"{version}\"}} 1",
            esc(&job)
        );
    }
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        out,
    )
}
