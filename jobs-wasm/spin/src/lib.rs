//! Fixture: never returns (the runner's time limit must end it).

use tgrun_sdk::prelude::*;

fn spin(_: &Ctx, _: serde::de::IgnoredAny) -> Result<()> {
    info!("spinning");
    let mut x: u64 = 0;
    loop {
        x = std::hint::black_box(x.wrapping_add(1));
    }
}

export_job!(spin);
