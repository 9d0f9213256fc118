//! Fixture: counts its runs in a global. Every run is a fresh instance, so every run
//! must log `count=1`.

use std::sync::atomic::{AtomicU64, Ordering};

use tgrun_sdk::prelude::*;

static COUNT: AtomicU64 = AtomicU64::new(0);

fn counter(_: &Ctx, _: serde::de::IgnoredAny) -> Result<()> {
    let count = COUNT.fetch_add(1, Ordering::SeqCst) + 1;
    info!("count={count}");
    Ok(())
}

export_job!(counter);
