//! The seed's Prometheus bumper: reads the latest values of `metric_name` and writes them
//! back as `<metric_name>_plus_<x>` with `x` added, keeping their labels.

use serde::Deserialize;
use tgrun_sdk::prelude::*;

#[derive(Deserialize)]
struct Params {
    metric_name: String,
    x: f64,
}

fn add_x(ctx: &Ctx, p: Params) -> Result<()> {
    let query = prometheus::format_query(&p.metric_name, &[], &[]);
    let response = prometheus::query_latest(&query)?;

    let name = format!("{}_plus_{}", p.metric_name, p.x);
    let metrics: Vec<Metric> = response
        .vector()?
        .iter()
        .map(|s| {
            Metric::new(&name, s.value + p.x)
                .labels(&s.labels)
                .at(ctx.start_time_ms)
        })
        .collect();

    prometheus::write_metrics(&metrics)
}

export_job!(add_x);
