//! The table `make bench` ends with: each figure beside its target (issue 8) and a verdict,
//! and each comparison as a ratio measured in the same run.

use std::sync::Mutex;

struct Row {
    figure: String,
    value: String,
    target: String,
    verdict: &'static str,
}

static ROWS: Mutex<Vec<Row>> = Mutex::new(Vec::new());

fn push(figure: &str, value: String, target: &str, verdict: &'static str) {
    ROWS.lock().unwrap().push(Row {
        figure: figure.to_owned(),
        value,
        target: target.to_owned(),
        verdict,
    });
}

/// A figure with a target: `pass` says whether it is met.
pub fn target(figure: &str, value: String, target: &str, pass: bool) {
    push(figure, value, target, if pass { "pass" } else { "FAIL" });
}

/// A figure reported without a target.
pub fn report(figure: &str, value: String) {
    push(figure, value, "-", "-");
}

/// Prints the table in Markdown (BENCHMARKS.md keeps the latest).
pub fn print() {
    let rows = ROWS.lock().unwrap();
    if rows.is_empty() {
        return;
    }
    println!("\n| figure | measured | target | verdict |\n| --- | --- | --- | --- |");
    for r in rows.iter() {
        println!(
            "| {} | {} | {} | {} |",
            r.figure, r.value, r.target, r.verdict
        );
    }
}
