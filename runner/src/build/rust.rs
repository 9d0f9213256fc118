//! A Rust job's crate into a component: `cargo build --release --target wasm32-wasip2` (a
//! `cdylib` built for that target is a component), the artifact copied to the output.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

use super::{Built, Options};

const TARGET: &str = "wasm32-wasip2";

pub fn build(dir: &Path, opts: &Options) -> Result<Built> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let out = Command::new(&cargo)
        .args(["build", "--release", "--target", TARGET])
        .args([
            "--message-format",
            "json-render-diagnostics",
            "--manifest-path",
        ])
        .arg(dir.join("Cargo.toml"))
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("cannot run {cargo:?}"))?;
    if !out.status.success() {
        bail!(
            "cargo could not build {} for {TARGET} (above); if the target is missing: \
             rustup target add {TARGET}",
            dir.display()
        );
    }
    let artifact = artifact(&String::from_utf8_lossy(&out.stdout)).with_context(|| {
        format!(
            "{} built no .wasm: a job crate has `crate-type = [\"cdylib\"]`",
            dir.display()
        )
    })?;
    let name = artifact
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let file = super::output_path(opts, &name);
    super::place(&artifact, &file)?;
    Ok(Built {
        file,
        world: "job",
        jobs: vec![],
        from_cache: false,
    })
}

/// The `.wasm` of the last cdylib cargo built, from its JSON messages.
fn artifact(messages: &str) -> Option<PathBuf> {
    messages
        .lines()
        .rev()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|m| m["reason"] == "compiler-artifact")
        .filter(|m| {
            m["target"]["kind"]
                .as_array()
                .is_some_and(|k| k.iter().any(|k| k == "cdylib"))
        })
        .filter_map(|m| {
            m["filenames"]
                .as_array()?
                .iter()
                .filter_map(|f| f.as_str())
                .find(|f| f.ends_with(".wasm"))
                .map(PathBuf::from)
        })
        .next()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cdylibs_wasm_is_found_among_cargos_messages() {
        let messages = r#"{"reason":"compiler-artifact","target":{"kind":["lib"]},"filenames":["/t/libserde.rlib"]}
{"reason":"compiler-message","message":{}}
{"reason":"compiler-artifact","target":{"kind":["cdylib"]},"filenames":["/t/wasm32-wasip2/release/add_x.wasm"]}
{"reason":"build-finished","success":true}"#;
        assert_eq!(
            artifact(messages),
            Some(PathBuf::from("/t/wasm32-wasip2/release/add_x.wasm"))
        );
        assert_eq!(artifact("{\"reason\":\"build-finished\"}"), None);
    }
}
