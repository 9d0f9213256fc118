//! `tgrun new NAME`: a job crate to start from, which builds and passes `tgrun check`.
//!
//! Inside this repository (the default, `jobs-wasm/NAME`) the crate takes its versions from
//! the workspace and `make jobs` builds it with the others. Anywhere else it is a workspace
//! of its own that builds with a plain `cargo build --release --target wasm32-wasip2`,
//! depending on the guest SDK of this runner's version from the registry (crates.io's
//! `tgrun-sdk`), or on a local copy of it (`--sdk PATH`).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};

#[derive(Debug, clap::Args)]
pub struct NewArgs {
    /// The job's name: lowercase letters, digits and `_`, starting with a letter. It names
    /// the crate, the module file (`NAME.wasm`) and the job in `service_config.json`.
    name: String,
    /// Where the crate's folder goes.
    #[arg(long, env = "TGRUN_NEW_DIR", default_value = "jobs-wasm")]
    dir: PathBuf,
    /// A local guest SDK (`guest-sdk/` of this repository) for a crate outside the
    /// workspace, in place of the registry's `tgrun-sdk` of this runner's version.
    #[arg(long, env = "TGRUN_SDK")]
    sdk: Option<PathBuf>,
}

/// Rust's keywords (a job's function is named after it) and the names of crates a job
/// crate cannot take (the workspace's own, and the ones the compiler keeps).
const RESERVED: &[&str] = &[
    "as", "async", "await", "break", "const", "continue", "crate", "dyn", "else", "enum", "extern",
    "false", "fn", "for", "if", "impl", "in", "let", "loop", "match", "mod", "move", "mut", "pub",
    "ref", "return", "self", "static", "struct", "super", "trait", "true", "type", "unsafe", "use",
    "where", "while", "abstract", "become", "box", "do", "final", "gen", "macro", "override",
    "priv", "try", "typeof", "unsized", "virtual", "yield",
];
/// Crate names a job crate cannot take: the workspace's own, and the compiler's.
const TAKEN: &[&str] = &[
    "tgrun",
    "runner",
    "tgrun_sdk",
    "std",
    "core",
    "alloc",
    "proc_macro",
    "test",
];

/// A name fit for a crate, a `.wasm` file (cargo turns `-` into `_`), a Rust function and a
/// job.
fn valid(name: &str) -> bool {
    name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && !RESERVED.contains(&name)
        && !TAKEN.contains(&name)
}

/// The workspace root above `dir` that holds the guest SDK, if any.
fn workspace_of(dir: &Path) -> Option<PathBuf> {
    let abs = std::path::absolute(dir).ok()?;
    abs.ancestors()
        .find(|a| a.join("guest-sdk/Cargo.toml").exists() && a.join("Cargo.toml").exists())
        .map(Path::to_path_buf)
}

const LIB: &str = r#"//! NAME: a periodic job. `run` is called once per due time, in a fresh sandbox.

use tgrun_sdk::prelude::*;

/// The job's `params` in `service_config.json` (unknown keys are an error).
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    /// Who to greet (default: world).
    name: Option<String>,
}

fn NAME(ctx: &Ctx, p: Params) -> Result<()> {
    let name = p.name.as_deref().unwrap_or("world");
    info!("hello {name} from {} (run {})", ctx.pipeline, ctx.run_id);
    // A metric for the runner's /metrics, stamped with the due time.
    prometheus::write_metrics(&[Metric::new("NAME_runs", 1.0)
        .label("name", name)
        .at(ctx.start_time_ms)])?;
    Ok(())
}

export_job!(NAME);
"#;

/// Where a new crate's guest SDK comes from.
enum Sdk {
    /// This repository's workspace (versions and the `guest` profile too).
    Workspace,
    /// A local copy (`--sdk`).
    Path(PathBuf),
    /// The registry: `tgrun-sdk` of this runner's version.
    Registry,
}

fn cargo_toml(name: &str, sdk: &Sdk) -> String {
    let head = format!(
        "[package]\nname = \"{name}\"\nversion = \"0.1.0\"\nedition = \"2024\"\npublish = false\n\n[lib]\ncrate-type = [\"cdylib\"]\n\n"
    );
    let dep = match sdk {
        Sdk::Workspace => {
            return format!(
                "{head}[dependencies]\ntgrun-sdk.workspace = true\nserde.workspace = true\nserde_json.workspace = true\n"
            );
        }
        Sdk::Path(path) => format!("{{ path = {:?} }}", path.display().to_string()),
        Sdk::Registry => format!("\"{}\"", env!("CARGO_PKG_VERSION")),
    };
    format!(
        "{head}[dependencies]\ntgrun-sdk = {dep}\nserde = {{ version = \"1\", features = [\"derive\"] }}\nserde_json = \"1\"\n\n\
         # A workspace of its own.\n[workspace]\n\n\
         # Small components: the runner compiles each once and instantiates it on every run.\n\
         [profile.release]\nopt-level = \"s\"\nlto = true\ncodegen-units = 1\nstrip = true\n"
    )
}

pub fn new(args: NewArgs) -> Result<ExitCode> {
    let name = &args.name;
    if !valid(name) {
        bail!(
            "'{name}' cannot name a job: use lowercase letters, digits and '_', starting with a letter, not a Rust keyword nor {} (it names the crate, its function, NAME.wasm and the job)",
            TAKEN.join(", ")
        );
    }
    let folder = args.dir.join(name);
    if folder.exists() {
        bail!(
            "{} exists already: choose another name or remove it",
            folder.display()
        );
    }
    let in_workspace = workspace_of(&args.dir);
    if let Some(root) = &in_workspace {
        // The workspace takes `jobs-wasm/*` as members; a crate elsewhere in it would be
        // neither a member nor a workspace of its own.
        let members = root.join("jobs-wasm");
        if args.dir.canonicalize().ok() != members.canonicalize().ok() {
            bail!(
                "inside this repository a job crate goes in {} (the workspace's members), not {}",
                members.display(),
                args.dir.display()
            );
        }
        if args.sdk.is_some() {
            bail!("inside this repository the crate takes the workspace's SDK: leave out --sdk");
        }
    }
    let sdk = match (&args.sdk, &in_workspace) {
        (Some(sdk), _) => {
            Sdk::Path(std::path::absolute(sdk).with_context(|| format!("--sdk {}", sdk.display()))?)
        }
        (None, Some(_)) => Sdk::Workspace,
        (None, None) => Sdk::Registry,
    };
    if let Sdk::Path(sdk) = &sdk
        && !sdk.join("Cargo.toml").exists()
    {
        bail!("--sdk {}: no Cargo.toml there", sdk.display());
    }
    std::fs::create_dir_all(folder.join("src"))
        .with_context(|| format!("creating {}", folder.display()))?;
    std::fs::write(folder.join("Cargo.toml"), cargo_toml(name, &sdk))?;
    std::fs::write(folder.join("src/lib.rs"), LIB.replace("NAME", name))?;
    let build = match &sdk {
        Sdk::Workspace => format!(
            "make jobs      (or: cargo build --profile guest --target wasm32-wasip2 -p {name})\n  \
             tgrun check target/wasm32-wasip2/guest/{name}.wasm\n  \
             tgrun run target/wasm32-wasip2/guest/{name}.wasm --params '{{\"name\": \"you\"}}'"
        ),
        Sdk::Path(_) | Sdk::Registry => format!(
            "cd {} && cargo build --release --target wasm32-wasip2\n  \
             tgrun check target/wasm32-wasip2/release/{name}.wasm\n  \
             tgrun run target/wasm32-wasip2/release/{name}.wasm --params '{{\"name\": \"you\"}}'",
            folder.display()
        ),
    };
    println!(
        "created the job {name} in {}\n\nnext:\n  {build}\n\nthen copy {name}.wasm into the service's modules folder (or PUT it to /jobs/{name}/module)\nand list {{\"name\": \"{name}\", \"enabled\": true}} in a pipeline's jobs.",
        folder.display()
    );
    if let Sdk::Registry = sdk {
        println!(
            "\nits SDK is tgrun-sdk {0} from crates.io; if that cannot be had there, take a local \
             copy instead (--sdk PATH/guest-sdk), or add to its Cargo.toml:\n  \
             [patch.crates-io]\n  tgrun-sdk = {{ path = \"PATH/guest-sdk\" }}",
            env!("CARGO_PKG_VERSION")
        );
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::valid;

    #[test]
    fn names_that_make_a_crate_a_file_and_a_job() {
        for ok in ["hello", "add_x2", "a"] {
            assert!(valid(ok), "{ok}");
        }
        for bad in [
            "", "Hello", "2x", "add-x", "a.b", "_x", "x y", "match", "tgrun",
        ] {
            assert!(!valid(bad), "{bad}");
        }
    }
}
