//! Fixture: a guest that tries to hurt the runner, one way per `mode`. The runner must end
//! each with a named outcome, keep its own memory bounded and keep every other job on time.

use std::io::Write;

use serde::Deserialize;
use tgrun_sdk::prelude::*;

#[derive(Deserialize)]
struct Params {
    mode: String,
    /// How many (calls, rows, series, bytes) for the modes that count.
    #[serde(default)]
    n: u64,
    /// Statements for the `sql` mode, each run on its own and answered in the log.
    #[serde(default)]
    statements: Vec<String>,
    /// URLs for the `http` mode, each GET on its own and answered in the log.
    #[serde(default)]
    urls: Vec<String>,
}

/// Never inlined and never a tail call, so every level takes a real stack frame.
#[inline(never)]
#[allow(unconditional_recursion)]
fn recurse(depth: u64, pad: &mut [u8; 256]) -> u64 {
    pad[(depth % 256) as usize] = depth as u8;
    let below = recurse(std::hint::black_box(depth + 1), pad);
    std::hint::black_box(below) + u64::from(pad[0])
}

fn hostile(_: &Ctx, p: Params) -> Result<()> {
    match p.mode.as_str() {
        "recurse" => {
            let mut pad = [0u8; 256];
            recurse(0, &mut pad);
        }
        // Millions of cheap host calls: the log budget drops the excess.
        "host_calls" => {
            for i in 0..p.n {
                info!("call {i}");
            }
        }
        "stdout" => {
            let line = "y".repeat(1023);
            let mut out = std::io::stdout();
            for _ in 0..p.n / 1024 {
                writeln!(out, "{line}")?;
            }
        }
        // One write of `n` series: past the per-job cap the whole batch is refused.
        "metrics" => {
            let batch: Vec<Metric> = (0..p.n)
                .map(|i| Metric::new("hostile_series", i as f64).label("i", i.to_string()))
                .collect();
            prometheus::write_metrics(&batch)?;
        }
        // The runner's own series, forged: refused (a job may not write `tgrun_` names).
        "forge_metric" => {
            let forged = Metric::new("tgrun_runs_total", 1e9)
                .label("tgrun_job", "victim")
                .label("outcome", "ok");
            prometheus::write_metrics(&[forged])?;
        }
        // One label value of `n` bytes: past the size cap, refused before it is kept.
        "huge_label" => {
            let big = Metric::new("hostile_big", 1.0).label("v", "x".repeat(p.n as usize));
            prometheus::write_metrics(&[big])?;
        }
        // One series, whatever job the run is: a second job writing it is refused.
        "shared_series" => {
            prometheus::write_metrics(&[Metric::new("hostile_shared", 1.0)])?;
        }
        // An error of `n` bytes: the runner keeps both ends of it, not all of it.
        "huge_error" => {
            bail!("error start {} error end", "e".repeat(p.n as usize));
        }
        // A query answering `n` rows: past the row cap it is refused, not buffered.
        "sql_rows" => {
            let rows = sql::query(
                "WITH RECURSIVE seq(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM seq WHERE n < ?) SELECT n FROM seq",
                &[(p.n as i64).into()],
            )?;
            info!("got {} rows", rows.rows.len());
        }
        // Statements a guest should not get away with (files, state left on a pooled
        // connection, the runner's own tables): each answered `ok ...` or `err ...`.
        "sql" => {
            for statement in &p.statements {
                match sql::query(statement, &[]) {
                    Ok(rows) => info!("ok {statement}: {:?}", rows.rows),
                    Err(e) => info!("err {statement}: {e}"),
                }
            }
        }
        // Transactions: `n` begun at once and held to the end of the run.
        "sql_transactions" => {
            let mut open = Vec::new();
            for i in 0..p.n {
                match sql::begin() {
                    Ok(tx) => {
                        info!("begin {i}: ok");
                        open.push(tx);
                    }
                    Err(e) => info!("begin {i}: {e}"),
                }
            }
            info!("open {}", open.len());
        }
        // An answer of hundreds of MB from a controller: past the cap, refused.
        "api_huge" => {
            let topology =
                api_service::request("huge", "getTopology", &serde_json::json!({}), None)?;
            info!("got {} bytes", topology.to_string().len());
        }
        // Every network's answer at once: what the host holds for them is the run's.
        "api_all" => match api_service::request_all("getTopology", &Default::default(), None) {
            Ok(answers) => {
                let ok = answers.values().filter(|a| a.is_ok()).count();
                info!("ok {ok} of {} answers", answers.len());
                for e in answers.values().filter_map(|a| a.as_ref().err()) {
                    info!("err a network: {e}");
                }
            }
            Err(e) => info!("err request_all: {e}"),
        },
        // A Prometheus that never answers: only the run's deadline ends the call.
        "prometheus_hang" => {
            let r = prometheus::query_latest("up")?;
            info!("answered {}", r.status());
        }
        // Outbound HTTP: each URL answered `ok <status> <bytes> <url>` or `err <kind>: ...`.
        "http" => {
            for url in &p.urls {
                let mut req = tgrun_sdk::http::Outgoing::new("GET", url);
                if p.n > 0 {
                    req = req.timeout(std::time::Duration::from_millis(p.n));
                }
                match tgrun_sdk::http::send(req) {
                    Ok(r) => info!("ok {} {} {}", r.status, r.body.len(), r.url),
                    Err(e) => info!("err {:?}: {e}", e.kind()),
                }
            }
        }
        other => bail!("no mode {other:?}"),
    }
    info!("{} survived", p.mode);
    Ok(())
}

export_job!(hostile);
