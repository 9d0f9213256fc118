//! `runner check FILE.wasm`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Result;

use crate::host::HostClients;
use crate::sandbox::{Sandbox, SandboxSettings};

#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// The component to check.
    file: PathBuf,
}

pub fn check(args: CheckArgs) -> Result<ExitCode> {
    let sandbox = Sandbox::new(
        SandboxSettings {
            max_instances: 1,
            ..SandboxSettings::default()
        },
        Arc::new(HostClients::default()),
    )?;
    let report = sandbox.check(&args.file);
    let name = args.file.display();
    if report.fits() {
        println!("{name}: fits the tgrun:job@0.1.0 world ({})", report.world);
    } else {
        println!(
            "{name}: does not fit the tgrun:job@0.1.0 world ({})",
            report.world
        );
        for p in &report.problems {
            println!("  - {p}");
        }
    }
    if !report.imports.is_empty() {
        println!("imports: {}", report.imports.join(", "));
    }
    if !report.exports.is_empty() {
        println!("exports: {}", report.exports.join(", "));
    }
    Ok(if report.fits() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
