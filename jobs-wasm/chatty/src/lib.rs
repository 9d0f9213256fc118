//! Fixture: writes far more to stdout than the runner keeps per run.

use std::io::Write;

use tgrun_sdk::prelude::*;

fn chatty(_: &Ctx, _: serde::de::IgnoredAny) -> Result<()> {
    let line = "x".repeat(1023);
    let mut out = std::io::stdout();
    for _ in 0..4096 {
        writeln!(out, "{line}")?;
    }
    info!("chatty done");
    Ok(())
}

export_job!(chatty);
