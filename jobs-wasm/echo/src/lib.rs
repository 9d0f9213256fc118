//! Fixture: logs its context, params and service settings, prints to stdout and stderr,
//! and writes one metric, so tests can see every path from the runner into a job.

use tgrun_sdk::prelude::*;

fn echo(ctx: &Ctx, params: serde_json::Value) -> Result<()> {
    info!(
        "ctx job={} pipeline={} run_id={} start_time_ms={}",
        ctx.job, ctx.pipeline, ctx.run_id, ctx.start_time_ms
    );
    info!("params {params}");
    info!("settings {}", ctx.settings());
    println!("to stdout");
    eprintln!("to stderr");
    let value = params.get("value").and_then(|v| v.as_f64()).unwrap_or(1.0);
    prometheus::write_metrics(&[Metric::new("echo_value", value).label("job", ctx.job.as_str())])?;
    Ok(())
}

export_job!(echo);
