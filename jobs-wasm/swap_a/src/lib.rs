//! Fixture: version A of a job that is swapped while it runs; writes `swap_value 1`.

use tgrun_sdk::prelude::*;

fn swapper(_: &Ctx, _: serde::de::IgnoredAny) -> Result<()> {
    prometheus::write_metrics(&[Metric::new("swap_value", 1.0)])
}

export_job!(swapper);
