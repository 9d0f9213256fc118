//! `tgrun build PATH`: a job's folder, from anywhere on disk, into a component (see
//! [`crate::build`]). Prints where it went, its world and, for a tglib service, its jobs.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use serde_json::json;

use super::Output;

#[derive(Debug, clap::Args)]
pub struct BuildArgs {
    /// The folder: a Rust job's crate (`Cargo.toml`), a Python job (`app.py`) or a tglib
    /// service's package (`jobs.py`, `routes.py`, `main.py` and what they import).
    path: PathBuf,
    /// Where the component goes (default: `<folder or crate name>.wasm` here).
    #[arg(short = 'o', long = "out")]
    out: Option<PathBuf>,
    #[command(flatten)]
    how: BuildFlags,
    /// `text`, or `json` (one object, for scripts and CI).
    #[arg(long, env = "TGRUN_OUTPUT", value_enum, default_value_t = Output::Text)]
    output: Output,
}

/// How a Python folder builds: `tgrun build`'s and `tgrun test`'s.
#[derive(Debug, clap::Args)]
pub struct BuildFlags {
    /// A folder to add to a Python build's path, e.g. generated Thrift types (repeatable).
    #[arg(long = "path", value_name = "DIR")]
    paths: Vec<PathBuf>,
    /// A dependency (its import name) whose compiled extensions may be left out because it
    /// runs without them (repeatable).
    #[arg(long = "allow-native", value_name = "PACKAGE")]
    allow_native: Vec<String>,
    /// What Python builds fetch and make, kept between builds (default:
    /// `$XDG_CACHE_HOME/tgrun` or `~/.cache/tgrun`).
    #[arg(long, env = "TGRUN_CACHE_DIR")]
    cache_dir: Option<PathBuf>,
}

impl BuildFlags {
    /// The build's options, its component going to `out`.
    pub fn options(self, out: Option<PathBuf>) -> crate::build::Options {
        crate::build::Options {
            out,
            paths: self.paths,
            allow_native: self.allow_native,
            cache: self
                .cache_dir
                .unwrap_or_else(crate::build::default_cache_dir),
        }
    }
}

pub fn build(args: BuildArgs) -> Result<ExitCode> {
    let opts = args.how.options(args.out);
    let built = crate::build::build(&args.path, &opts)?;
    match args.output {
        Output::Json => println!("{}", json!(built)),
        Output::Text => {
            let how = if built.from_cache {
                " (unchanged: from the build cache)"
            } else {
                ""
            };
            println!(
                "built {} (world {}){how}",
                built.file.display(),
                built.world
            );
            if !built.jobs.is_empty() {
                println!("jobs: {}", built.jobs.join(", "));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
