//! The programs a build runs (Python, pip, componentize-py): a failure says what was being
//! done and the end of what the program printed.

use std::path::Path;
use std::process::{Command, Output};

use anyhow::{Context, Result, bail};

/// Runs `cmd`; a failure says `what` and the last lines the program printed.
pub fn run(cmd: &mut Command, what: &str) -> Result<Output> {
    let out = cmd
        .output()
        .with_context(|| format!("{what}: cannot run {:?}", cmd.get_program()))?;
    if !out.status.success() {
        let printed = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        bail!("{what} failed:\n{}", tail(&printed, 30));
    }
    Ok(out)
}

/// `python -m pip VERB`, quiet.
pub fn pip(python: &Path, verb: &str) -> Command {
    let mut cmd = Command::new(python);
    cmd.args(["-m", "pip", verb, "--quiet", "--disable-pip-version-check"]);
    cmd
}

/// The last `n` lines of `text`.
fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.trim_end().lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
