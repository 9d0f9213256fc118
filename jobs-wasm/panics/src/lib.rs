//! Fixture: panics (a trap, not an error value).

use tgrun_sdk::prelude::*;

fn panics(_: &Ctx, _: serde::de::IgnoredAny) -> Result<()> {
    let v: Vec<u32> = std::hint::black_box(Vec::new());
    panic!("fixture panic: index {} of an empty vector", v.len() + 3);
}

export_job!(panics);
