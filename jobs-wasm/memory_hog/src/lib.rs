//! Fixture: allocates and touches memory until the runner's memory limit stops it.

use tgrun_sdk::prelude::*;

fn memory_hog(_: &Ctx, _: serde::de::IgnoredAny) -> Result<()> {
    let mut hoard: Vec<Vec<u8>> = Vec::new();
    loop {
        hoard.push(vec![1u8; 1 << 20]);
        std::hint::black_box(&hoard);
    }
}

export_job!(memory_hog);
