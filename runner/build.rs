//! Build facts the runner reports (`tgrun_build_info`): the version of wasmtime it was
//! built with, as `Cargo.lock` resolved it (wasmtime does not say its own version).

use std::path::Path;

fn main() {
    let manifest = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default();
    let manifest = Path::new(&manifest);
    // The workspace's lock file; a packaged crate carries one of its own.
    let lock = [manifest.join("../Cargo.lock"), manifest.join("Cargo.lock")]
        .into_iter()
        .find(|p| p.exists());
    let version = lock
        .as_deref()
        .and_then(|p| {
            println!("cargo::rerun-if-changed={}", p.display());
            std::fs::read_to_string(p).ok()
        })
        .and_then(|text| wasmtime_version(&text))
        .unwrap_or_else(|| "unknown".into());
    println!("cargo::rustc-env=TGRUN_WASMTIME_VERSION={version}");
    println!("cargo::rerun-if-changed=build.rs");
}

/// The version of the `wasmtime` package in a lock file's text.
fn wasmtime_version(lock: &str) -> Option<String> {
    let mut lines = lock.lines();
    while let Some(line) = lines.next() {
        if line.trim() == "name = \"wasmtime\"" {
            let version = lines.next()?.trim().strip_prefix("version = \"")?;
            return Some(version.trim_end_matches('"').to_owned());
        }
    }
    None
}
