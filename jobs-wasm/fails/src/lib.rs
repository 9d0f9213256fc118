//! Fixture: returns an error value with a message.

use tgrun_sdk::prelude::*;

fn fails(_: &Ctx, _: serde::de::IgnoredAny) -> Result<()> {
    bail!("fixture failure: the job said no")
}

export_job!(fails);
