//! Fixture: sleeps `ms` milliseconds (default 1000) in a host call, then logs "slept".
//! A slow job for overlap, grace-period and deadline tests.

use tgrun_sdk::prelude::*;

#[derive(serde::Deserialize)]
struct Params {
    #[serde(default = "second")]
    ms: u64,
}

fn second() -> u64 {
    1000
}

fn sleeper(_: &Ctx, p: Params) -> Result<()> {
    info!("sleeping {} ms", p.ms);
    std::thread::sleep(std::time::Duration::from_millis(p.ms));
    info!("slept");
    Ok(())
}

export_job!(sleeper);
