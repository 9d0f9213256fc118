//! Fixture for `make bench`: `n` of one thing per run, so that a run of `n` against a run of
//! 0 gives the cost of one: a short log line, a one-series metric write, or a round of
//! CPU-bound work (for the cost of deadlines).

use serde::Deserialize;
use tgrun_sdk::log::{Level, log};
use tgrun_sdk::prelude::*;

#[derive(Deserialize)]
struct Params {
    mode: String,
    n: u64,
}

fn bench_calls(_: &Ctx, p: Params) -> Result<()> {
    match p.mode.as_str() {
        "log" => {
            for _ in 0..p.n {
                log(Level::Info, "a short log line");
            }
        }
        "metric" => {
            let one = [Metric::new("bench_series", 1.0).label("job", "bench")];
            for _ in 0..p.n {
                prometheus::write_metrics(&one)?;
            }
        }
        "cpu" => {
            // xorshift: no memory traffic, no calls; black_box keeps the loop.
            let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
            for _ in 0..p.n {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x = std::hint::black_box(x);
            }
            if x == 0 {
                bail!("unreachable: xorshift never reaches 0");
            }
        }
        other => bail!("no mode {other:?}"),
    }
    Ok(())
}

export_job!(bench_calls);
