//! Fixture: the host-call fuzzer's guest. Its params' `ops` (hex) are read as a program:
//! each byte picks a WIT function, the next ones its arguments, sized at and past the
//! runner's bounds (0, 1, 255, 4 KiB, 1 MiB - 1, 1 MiB, 1 MiB + 1, 16 MiB). Every answer is
//! dropped: the runner must end the run as one outcome, keep its pool and counters, and
//! never panic, whatever the sequence.

use tgrun_sdk::prelude::*;
use tgrun_sdk::wit::tgrun::job::{api_service, context, http, logging, prometheus, sql};

#[derive(serde::Deserialize)]
struct Params {
    ops: String,
}

/// The program's bytes, read one at a time (0 once they run out).
struct Program {
    bytes: Vec<u8>,
    at: usize,
}

impl Program {
    fn byte(&mut self) -> u8 {
        let b = self.bytes.get(self.at).copied().unwrap_or(0);
        self.at += 1;
        b
    }

    fn done(&self) -> bool {
        self.at >= self.bytes.len()
    }

    /// A size at or past one of the runner's bounds.
    fn size(&mut self) -> usize {
        match self.byte() % 8 {
            0 => 0,
            1 => 1,
            2 => 255,
            3 => 4 << 10,
            4 => (1 << 20) - 1,
            5 => 1 << 20,
            6 => (1 << 20) + 1,
            _ => 16 << 20,
        }
    }

    /// Text of a chosen size and kind: plain, multi-byte, NULs, deep JSON nesting.
    fn text(&mut self) -> String {
        let n = self.size();
        match self.byte() % 5 {
            0 => "a".repeat(n),
            1 => "é".repeat(n / 2),
            2 => "\0".repeat(n),
            3 => "[".repeat(n),
            _ => format!("{{\"k\": \"{}\"}}", "v".repeat(n)),
        }
    }

    fn float(&mut self) -> f64 {
        match self.byte() % 6 {
            0 => 0.0,
            1 => -1.0,
            2 => f64::NAN,
            3 => f64::INFINITY,
            4 => 1e300,
            _ => 1_700_000_000.0,
        }
    }

    fn value(&mut self) -> sql::Value {
        match self.byte() % 8 {
            0 => sql::Value::Null,
            1 => sql::Value::Int(i64::MIN),
            2 => sql::Value::Uint(u64::MAX),
            3 => sql::Value::Float(self.float()),
            4 => sql::Value::Text(self.text()),
            5 => sql::Value::Bytes(vec![0xff; self.size()]),
            6 => sql::Value::Datetime(i64::MAX),
            _ => sql::Value::Json(self.text()),
        }
    }

    fn values(&mut self) -> Vec<sql::Value> {
        (0..self.byte() % 4).map(|_| self.value()).collect()
    }

    fn statement(&mut self) -> String {
        const KNOWN: &[&str] = &[
            "SELECT ?",
            "SELECT length(?)",
            "CREATE TABLE IF NOT EXISTS fuzz (a)",
            "INSERT INTO fuzz VALUES (?)",
            "SELECT * FROM fuzz",
            "DELETE FROM fuzz",
            "BEGIN",
            "SELECT printf('%.*c', 20000000, 'a')",
            "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 200000) SELECT '' FROM c",
        ];
        let i = self.byte() as usize;
        KNOWN
            .get(i % (KNOWN.len() + 1))
            .map_or_else(|| self.text(), |s| (*s).to_owned())
    }

    fn pairs(&mut self) -> Vec<(String, String)> {
        (0..self.byte() % 4)
            .map(|i| (format!("net_{i}"), self.text()))
            .collect()
    }

    fn range(&mut self) -> prometheus::Range {
        let steps = ["30s", "0s", "1w", "", "99999999999999999999s"];
        let step = steps[self.byte() as usize % steps.len()].to_owned();
        prometheus::Range {
            query: self.text(),
            step,
            start: self.float(),
            end: Some(self.float()),
        }
    }

    fn timeout(&mut self) -> Option<u32> {
        [None, Some(0), Some(1), Some(u32::MAX)][self.byte() as usize % 4]
    }
}

fn fuzz_calls(_: &Ctx, p: Params) -> Result<()> {
    let bytes = (0..p.ops.len() / 2)
        .filter_map(|i| u8::from_str_radix(p.ops.get(2 * i..2 * i + 2)?, 16).ok())
        .collect();
    let mut prog = Program { bytes, at: 0 };
    let mut open: Vec<sql::Transaction> = Vec::new();
    let mut calls = 0;
    while !prog.done() && calls < 64 {
        calls += 1;
        match prog.byte() % 22 {
            0 => {
                let levels = [
                    logging::Level::Trace,
                    logging::Level::Debug,
                    logging::Level::Info,
                    logging::Level::Warn,
                    logging::Level::Error,
                ];
                let level = levels[prog.byte() as usize % levels.len()];
                logging::log(level, &prog.text());
            }
            1 => {
                let to = match prog.byte() % 2 {
                    0 => logging::StdStream::Stdout,
                    _ => logging::StdStream::Stderr,
                };
                logging::write_output(to, prog.text().as_bytes());
            }
            2 => drop(context::service_settings()),
            3 => drop(context::pipeline_config()),
            4 => {
                let time = Some(prog.float());
                drop(prometheus::query_latest(&prog.text(), time));
            }
            5 => drop(prometheus::query_range_raw(&prog.range())),
            6 => drop(prometheus::query_range(&prog.range())),
            7 => {
                let metrics: Vec<prometheus::Metric> = (0..prog.size().min(20_000))
                    .map(|i| prometheus::Metric {
                        name: format!("fuzz_{i}"),
                        labels: vec![("l".into(), prog.text())],
                        value: prog.float(),
                        time_ms: None,
                    })
                    .collect();
                drop(prometheus::write_metrics(&metrics));
            }
            8 => drop(api_service::network_names()),
            9 => {
                let (network, endpoint, params) = (prog.text(), prog.text(), prog.text());
                drop(api_service::request(
                    &network,
                    &endpoint,
                    &params,
                    prog.timeout(),
                ));
            }
            10 => drop(api_service::request_all(
                "getTopology",
                &prog.pairs(),
                prog.timeout(),
            )),
            11 => drop(api_service::request_many(
                &prog.text(),
                &prog.pairs(),
                prog.timeout(),
            )),
            12 => drop(sql::query(&prog.statement(), &prog.values())),
            13 => drop(sql::execute(&prog.statement(), &prog.values())),
            14 => {
                if let Ok(tx) = sql::begin() {
                    open.push(tx);
                }
            }
            15 => {
                if let Some(tx) = open.last() {
                    drop(tx.query(&prog.statement(), &prog.values()));
                }
            }
            16 => {
                if let Some(tx) = open.pop() {
                    drop(sql::Transaction::commit(tx));
                }
            }
            17 => {
                if let Some(tx) = open.pop() {
                    drop(sql::Transaction::rollback(tx));
                }
            }
            18 => drop(open.pop()),
            19 => drop(context::environment()),
            20 => {
                let urls = [
                    "http://127.0.0.1:1/",
                    "https://example.invalid/x",
                    "http://[::1]:9/",
                ];
                let url = match prog.byte() as usize % (urls.len() + 1) {
                    i if i < urls.len() => urls[i].to_owned(),
                    _ => prog.text(),
                };
                let method = ["GET", "POST", "BREW"][prog.byte() as usize % 3].to_owned();
                let req = http::OutboundRequest {
                    method,
                    url,
                    headers: prog.pairs(),
                    body: vec![b'b'; prog.size()],
                    timeout_ms: prog.timeout(),
                };
                drop(http::send(&req));
            }
            _ => drop(sql::dialect()),
        }
    }
    // Transactions left open are the runner's to roll back at the run's end.
    std::mem::forget(open);
    info!("{calls} calls");
    Ok(())
}

export_job!(fuzz_calls);
