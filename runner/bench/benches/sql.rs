//! The cost of the jobs' SQL guards (issue 18: a statement stopped with its run, the
//! connection checked clean, SQLite's authorizer): a job making one query per run against
//! the jobs' pool, and against the runner's own unguarded pool on the same database,
//! interleaved in one run. SQLite (a file) and the machine's MariaDB.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tgrun::clients::{Caps, Clients, SqlApi, sql};
use tgrun::host::HostClients;
use tgrun::sandbox::{Sandbox, SandboxSettings};

use super::{invocation, percentile, table, wasm};

fn sandbox(db: Arc<dyn SqlApi>) -> Sandbox {
    let services = HostClients {
        clients: Clients {
            sql: Some(db),
            ..Clients::default()
        },
        ..HostClients::default()
    };
    Sandbox::new(SandboxSettings::default(), Arc::new(services)).unwrap()
}

/// Per-run times of the `hostile` job's `sql` mode (one `SELECT ?`-free query) on each
/// sandbox, in alternating blocks: sorted samples of each.
async fn interleaved(guarded: &Sandbox, own: &Sandbox) -> (Vec<Duration>, Vec<Duration>) {
    let params = r#"{"mode": "sql", "statements": ["SELECT 1"]}"#;
    let inv = invocation("hostile", params);
    let component = guarded.compile_file(&wasm("hostile")).unwrap();
    let component_own = own.compile_file(&wasm("hostile")).unwrap();
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for round in 0..9 {
        for (sb, c, out) in [(guarded, &component, &mut a), (own, &component_own, &mut b)] {
            for _ in 0..300 {
                let t = Instant::now();
                let r = sb.run(c, &inv, false).await;
                assert!(r.outcome.is_ok(), "{:?}", r.outcome);
                // The first round warms both up.
                if round > 0 {
                    out.push(t.elapsed());
                }
            }
        }
    }
    a.sort();
    b.sort();
    (a, b)
}

fn row(db: &str, guarded: &[Duration], own: &[Duration]) {
    let (g, o) = (percentile(guarded, 0.5), percentile(own, 0.5));
    let extra = g.as_secs_f64() / o.as_secs_f64() - 1.0;
    println!(
        "SQL job on {db}: jobs' pool p50 {:.1} µs (p99 {:.1}), runner's own pool p50 {:.1} µs (p99 {:.1}): guards +{:.1}%",
        g.as_secs_f64() * 1e6,
        percentile(guarded, 0.99).as_secs_f64() * 1e6,
        o.as_secs_f64() * 1e6,
        percentile(own, 0.99).as_secs_f64() * 1e6,
        extra * 100.0
    );
    table::report(
        &format!("SQL job on {db}, one query a run: guarded against unguarded (p50)"),
        format!(
            "{:.1} µs against {:.1} µs (+{:.1}%)",
            g.as_secs_f64() * 1e6,
            o.as_secs_f64() * 1e6,
            extra * 100.0
        ),
    );
}

pub fn guard_cost(rt: &tokio::runtime::Runtime) {
    rt.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bench.sqlite3");
        let jobs = sql::sqlite(&path, Caps::default()).await.unwrap();
        let own = sql::sqlite_for_runner(&path).await.unwrap();
        let (g, o) = interleaved(&sandbox(jobs), &sandbox(own)).await;
        row("SQLite", &g, &o);

        let config =
            serde_json::json!({"mysql": {"host": "127.0.0.1", "port": 3306, "database": "test"}});
        let config = config.as_object().unwrap();
        let Ok(jobs) = sql::start(config, &path, Caps::default()).await else {
            println!("SQL job on MariaDB: skipped, no MariaDB on 127.0.0.1:3306");
            return;
        };
        // The runner's own pool on the same server and database (as a history there would
        // be, were it allowed: here only to measure the guards).
        let own = sql::start_history(config, &sql::HistoryDb::Mysql(serde_json::json!({})))
            .await
            .unwrap();
        let (g, o) = interleaved(&sandbox(jobs), &sandbox(own)).await;
        row("MariaDB", &g, &o);
    });
}
