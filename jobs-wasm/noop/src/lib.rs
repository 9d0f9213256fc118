//! Fixture: a job that does nothing, for benchmarks and scheduling tests.

use tgrun_sdk::prelude::*;

fn noop(_: &Ctx, _: serde::de::IgnoredAny) -> Result<()> {
    Ok(())
}

export_job!(noop);
