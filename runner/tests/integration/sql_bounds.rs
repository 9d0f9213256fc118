//! A job's SQL stays inside its grant (issue 18): no files through SQLite, nothing left on a
//! pooled connection for the next run, no statement outliving its run, one transaction at a
//! time, and the runner's history out of the jobs' reach. Each with `hostile`'s `sql` modes.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use tgrun::clients::sql::{self, HistoryDb};
use tgrun::clients::{Caps, SqlApi};
use tgrun::sandbox::Sandbox;
use tgrun::scheduler::history::{Recorder, Retention};
use tgrun::{Outcome, RunReport};

use crate::fixtures::{compile, invocation, messages, sandbox_with_sql};

/// `hostile` with `params`, within `timeout`.
async fn hostile(sb: &Sandbox, params: serde_json::Value, timeout: Duration) -> RunReport {
    let mut inv = invocation("hostile", &params.to_string());
    inv.limits.timeout = timeout;
    sb.run(&compile(sb, "hostile"), &inv, false).await
}

/// Runs `statements` in one run; answers each statement's log line.
async fn statements(sb: &Sandbox, statements: &[String]) -> Vec<String> {
    let report = hostile(
        sb,
        json!({"mode": "sql", "statements": statements}),
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(report.outcome, Outcome::Ok, "{:?}", report.logs);
    messages(&report)
        .into_iter()
        .filter(|l| l.starts_with("ok ") || l.starts_with("err "))
        .collect()
}

/// Rows as printed, without the variant's type name (`Value::Int(1)` → `Int(1)`).
fn plain(rows: &str) -> String {
    rows.replace("Value::", "")
}

fn unique(prefix: &str) -> String {
    use std::hash::{BuildHasher, RandomState};
    format!("{prefix}_{:x}", RandomState::new().hash_one(3u8) as u32)
}

#[tokio::test]
async fn sqlite_statements_reach_no_file_and_leave_nothing_for_the_next_run() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jobs.sqlite3");
    let db = sql::sqlite(&path, Caps::default()).await.unwrap();
    let sb = sandbox_with_sql(db.clone());
    let attached = dir.path().join("attached.db");
    let vacuumed = dir.path().join("vacuumed.db");
    let refused = [
        format!("ATTACH DATABASE '{}' AS x", attached.display()),
        format!("VACUUM INTO '{}'", vacuumed.display()),
        "SELECT load_extension('/usr/lib/x86_64-linux-gnu/libc.so.6')".into(),
        "PRAGMA journal_mode = DELETE".into(),
        "PRAGMA writable_schema = ON".into(),
        "CREATE TEMP TABLE kept (a)".into(),
        "DETACH DATABASE main".into(),
    ];
    let allowed = [
        "CREATE TABLE t_ok (a)".to_owned(),
        "PRAGMA table_info(t_ok)".into(),
        "BEGIN IMMEDIATE".into(),
    ];
    let lines = statements(&sb, &[&refused[..], &allowed[..]].concat()).await;
    assert_eq!(lines.len(), refused.len() + allowed.len(), "{lines:?}");
    for (line, statement) in lines.iter().zip(&refused) {
        assert!(line.starts_with(&format!("err {statement}:")), "{line}");
    }
    for (line, statement) in lines[refused.len()..].iter().zip(&allowed) {
        assert!(line.starts_with(&format!("ok {statement}:")), "{line}");
    }
    assert!(!attached.exists(), "ATTACH created {}", attached.display());
    assert!(
        !vacuumed.exists(),
        "VACUUM INTO wrote {}",
        vacuumed.display()
    );

    // The raw BEGIN IMMEDIATE left no write lock behind: another connection writes at once
    // (else it waits out the 5 s busy timeout and fails), and the settings stand.
    let other = sql::sqlite(&path, Caps::default()).await.unwrap();
    let write = other.execute("INSERT INTO t_ok VALUES (1)", &[]);
    tokio::time::timeout(Duration::from_secs(3), write)
        .await
        .expect("a job's BEGIN IMMEDIATE still holds the database")
        .unwrap();
    let mode = db.query("PRAGMA journal_mode", &[]).await.unwrap();
    assert_eq!(
        format!("{:?}", mode.rows),
        format!("{:?}", other.query("SELECT 'wal'", &[]).await.unwrap().rows)
    );
}

#[tokio::test]
async fn a_run_holds_one_transaction_at_a_time() {
    let db = sql::sqlite(std::path::Path::new(":memory:"), Caps::default())
        .await
        .unwrap();
    let sb = sandbox_with_sql(db);
    let report = hostile(
        &sb,
        json!({"mode": "sql_transactions", "n": 3}),
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(report.outcome, Outcome::Ok, "{:?}", report.logs);
    let logs = messages(&report);
    assert_eq!(logs[0], "begin 0: ok", "{logs:?}");
    for l in &logs[1..3] {
        assert!(
            l.contains("at most 1 open transaction") && l.contains("sql_max_transactions_per_run"),
            "{l}"
        );
    }
    assert!(logs.contains(&"open 1".to_owned()), "{logs:?}");
}

#[tokio::test]
async fn a_sqlite_statement_ends_with_its_run() {
    let dir = tempfile::tempdir().unwrap();
    let db = sql::sqlite(&dir.path().join("jobs.sqlite3"), Caps::default())
        .await
        .unwrap();
    let sb = Arc::new(sandbox_with_sql(db.clone()));
    // As many endless statements as the pool has connections (4), each run given 1 s.
    let endless = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) \
                   SELECT COUNT(*) FROM c";
    let mut runs = tokio::task::JoinSet::new();
    for _ in 0..4 {
        let sb = sb.clone();
        runs.spawn(async move {
            hostile(
                &sb,
                json!({"mode": "sql", "statements": [endless]}),
                Duration::from_secs(1),
            )
            .await
        });
    }
    while let Some(r) = runs.join_next().await {
        let r = r.unwrap();
        assert!(
            matches!(r.outcome, Outcome::Timeout { .. }),
            "{:?}",
            r.outcome
        );
    }
    let started = Instant::now();
    let answer = tokio::time::timeout(Duration::from_secs(5), db.query("SELECT 1", &[])).await;
    assert!(
        matches!(answer, Ok(Ok(_))),
        "the pool is still held by statements of ended runs: {answer:?}"
    );
    eprintln!("pool answered {:?} after the runs ended", started.elapsed());
}

#[tokio::test]
async fn mariadb_connections_go_back_clean_and_statements_end_with_their_run() {
    let db = crate::fixtures::mariadb().await;
    let sb = sandbox_with_sql(db.clone());
    let t = unique("t_clean");
    db.execute(&format!("CREATE TABLE {t} (a INT)"), &[])
        .await
        .unwrap();
    // A run leaves a variable and autocommit off on its connection, then writes.
    statements(
        &sb,
        &[
            "SET @tgrun_left = 42".into(),
            "SET autocommit = 0".into(),
            "BEGIN".into(),
        ],
    )
    .await;
    // Later runs, on whatever connection the pool lends: none sees them.
    for _ in 0..4 {
        let lines = statements(
            &sb,
            &[
                "SELECT CAST(COALESCE(@tgrun_left, 0) AS SIGNED), @@autocommit".into(),
                format!("INSERT INTO {t} VALUES (1)"),
            ],
        )
        .await;
        assert!(
            plain(&lines[0]).ends_with("[[Int(0), Int(1)]]"),
            "{lines:?}"
        );
    }
    let rows = db
        .query(&format!("SELECT COUNT(*) FROM {t}"), &[])
        .await
        .unwrap();
    assert_eq!(
        plain(&format!("{:?}", rows.rows)),
        "[[Int(4)]]",
        "every insert committed"
    );
    db.execute(&format!("DROP TABLE {t}"), &[]).await.unwrap();

    // Issue 39: a last insert id set by hand reaches no later run, and statements that
    // act on other sessions or the server never reach it.
    statements(&sb, &["SELECT LAST_INSERT_ID(424242)".into()]).await;
    for _ in 0..4 {
        let lines = statements(&sb, &["SELECT LAST_INSERT_ID()".into()]).await;
        assert!(!lines[0].contains("424242"), "{lines:?}");
    }
    for bad in [
        "KILL QUERY 1",
        "SET GLOBAL max_connections = 5",
        "/*!50000 KILL 1 */",
        "PREPARE s FROM 'KILL 1'",
    ] {
        let lines = statements(&sb, &[bad.into()]).await;
        assert!(
            lines[0].starts_with(&format!("err {bad}: ")) && lines[0].contains("from a job"),
            "{lines:?}"
        );
    }
    // A large statement does not outlive its call: each one prepared is closed again on
    // the server (a connection's session counters, read on the same connection); small
    // ones are kept, at most 64 a connection.
    let mut tx = db.begin().await.unwrap();
    // (prepared, closed) on the transaction's connection so far.
    async fn counts(tx: &mut Box<dyn tgrun::clients::SqlTx>) -> (u64, u64) {
        let status = tx
            .query(
                "SELECT VARIABLE_VALUE FROM information_schema.SESSION_STATUS \
                 WHERE VARIABLE_NAME IN ('COM_STMT_PREPARE', 'COM_STMT_CLOSE') \
                 ORDER BY VARIABLE_NAME DESC",
                &[],
            )
            .await
            .unwrap();
        let n = |i: usize| match &status.rows[i][0] {
            tgrun::sql_value::Value::Text(t) => t.parse().unwrap(),
            other => panic!("{other:?}"),
        };
        (n(0), n(1))
    }
    // Twice: the (small) status statement is prepared once, then kept.
    counts(&mut tx).await;
    let (prepared, closed) = counts(&mut tx).await;
    let pad = "-".repeat(8 << 10);
    for i in 0..5 {
        tx.query(
            &format!("SELECT ? + {i} /* {pad} */"),
            &[tgrun::sql_value::Value::Int(1)],
        )
        .await
        .unwrap();
    }
    let (prepared_after, closed_after) = counts(&mut tx).await;
    tx.rollback().await.unwrap();
    assert_eq!(prepared_after - prepared, 5);
    assert_eq!(
        closed_after - closed,
        5,
        "large statements stayed prepared on the server"
    );

    // A statement running past its run's deadline is stopped on the server.
    let marker = unique("sleeping");
    let report = hostile(
        &sb,
        json!({"mode": "sql", "statements": [format!("SELECT SLEEP(30) AS {marker}")]}),
        Duration::from_secs(1),
    )
    .await;
    assert!(
        matches!(report.outcome, Outcome::Timeout { .. }),
        "{:?}",
        report.outcome
    );
    let ended = Instant::now();
    let pattern = [tgrun::sql_value::Value::Text(format!("%{marker}%"))];
    let running = || {
        db.query(
            "SELECT COUNT(*) FROM information_schema.PROCESSLIST \
             WHERE INFO LIKE ? AND ID <> CONNECTION_ID()",
            &pattern,
        )
    };
    loop {
        let rows = running().await.unwrap();
        if plain(&format!("{:?}", rows.rows)) == "[[Int(0)]]" {
            break;
        }
        assert!(
            ended.elapsed() < Duration::from_secs(5),
            "SLEEP(30) still runs on the server {:?} after its run ended",
            ended.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Runs `sql` as root on the machine's MariaDB.
async fn as_root(_: &Arc<dyn SqlApi>, sql: &str) {
    crate::fixtures::mariadb_root(sql).await
}

#[tokio::test]
async fn on_mariadb_a_jobs_user_cannot_touch_the_history_and_history_goes_on() {
    let root = crate::fixtures::mariadb().await;
    let (jobs_db, hist_db, user) = (unique("tgrun_jobs"), unique("tgrun_hist"), unique("tgjob"));
    for s in [
        format!("CREATE DATABASE {jobs_db}"),
        format!("CREATE DATABASE {hist_db}"),
        format!("CREATE USER '{user}'@'localhost' IDENTIFIED BY 'pw'"),
        format!("CREATE USER '{user}'@'%' IDENTIFIED BY 'pw'"),
        format!("GRANT ALL ON {jobs_db}.* TO '{user}'@'localhost'"),
        format!("GRANT ALL ON {jobs_db}.* TO '{user}'@'%'"),
    ] {
        as_root(&root, &s).await;
    }
    // As README's GRANTs: the jobs' user on its database, the history as another user.
    let config = json!({"mysql": {"host": "127.0.0.1", "port": 3306, "user": user,
                                  "password": "pw", "database": jobs_db}});
    let config = config.as_object().unwrap();
    let history = sql::history_db(
        Some(&json!({"user": "root", "database": hist_db})),
        std::path::Path::new("/unused"),
    );
    assert!(matches!(history, HistoryDb::Mysql(_)));
    sql::history_apart(config, &history).unwrap();
    // Issue 39: a history the jobs' credentials reach is refused, saying what to set; with
    // `mysql` alone the history is the runner's own SQLite file.
    let (with_jobs_user, in_jobs_db) = (
        sql::history_db(Some(&json!({"database": hist_db})), "/u".as_ref()),
        sql::history_db(Some(&json!({"user": "root"})), "/u".as_ref()),
    );
    let err = sql::history_apart(config, &with_jobs_user)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(&format!("the jobs' own MySQL user \"{user}\""))
            && err.contains("TGRUN_HISTORY_DB_USER"),
        "{err}"
    );
    let err = sql::history_apart(config, &in_jobs_db)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(&format!("the jobs' database \"{jobs_db}\"")),
        "{err}"
    );
    assert!(matches!(
        sql::history_db(None, "/u".as_ref()),
        HistoryDb::Sqlite(_)
    ));
    let history = sql::start_history(config, &history).await.unwrap();
    assert!(
        history.describe().contains(&hist_db),
        "{}",
        history.describe()
    );
    let rec = Recorder::start(history, Retention::default())
        .await
        .unwrap();
    let jobs = sql::start(config, std::path::Path::new("/unused"), Caps::default())
        .await
        .unwrap();
    let sb = sandbox_with_sql(jobs);

    let attacks = [
        format!("DROP TABLE {hist_db}.tgrun_runs"),
        format!("DELETE FROM {hist_db}.tgrun_runs"),
        format!("UPDATE {hist_db}.tgrun_runs SET outcome = 'ok'"),
    ];
    let report = hostile(
        &sb,
        json!({"mode": "sql", "statements": attacks}),
        Duration::from_secs(10),
    )
    .await;
    let lines: Vec<_> = messages(&report)
        .into_iter()
        .filter(|l| l.starts_with("ok ") || l.starts_with("err "))
        .collect();
    assert_eq!(lines.len(), attacks.len(), "{lines:?}");
    for l in &lines {
        assert!(l.starts_with("err ") && l.contains("denied"), "{l}");
    }
    // The history goes on: the attacker's own run is recorded and read back.
    rec.record(&report);
    assert!(rec.flush(Duration::from_secs(10)).await);
    let rows = rec.query(Some("hostile"), None, 10).await.unwrap();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0].run_id, report.run_id);

    for s in [
        format!("DROP USER '{user}'@'localhost'"),
        format!("DROP USER '{user}'@'%'"),
        format!("DROP DATABASE {jobs_db}"),
        format!("DROP DATABASE {hist_db}"),
    ] {
        as_root(&root, &s).await;
    }
}

/// Issue 39: a query's rows are the run's while the host holds them (charged to its
/// `memory_mb` as they are read, not built first and refused after), and an empty cell
/// costs what holding it costs (20,000 x 50 of `''` passed a cap of 1 MiB as 0 bytes).
#[tokio::test]
async fn rows_the_host_holds_are_charged_to_the_run_and_empty_cells_count() {
    let dir = tempfile::tempdir().unwrap();
    let db = sql::sqlite(
        &dir.path().join("jobs.sqlite3"),
        Caps {
            max_bytes: 1 << 20,
            ..Caps::default()
        },
    )
    .await
    .unwrap();
    let empties = format!(
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 20000) \
         SELECT {} FROM c",
        vec!["''"; 50].join(", ")
    );
    let err = db.query(&empties, &[]).await.unwrap_err();
    assert!(err.to_string().contains("more than 1048576 bytes"), "{err}");

    // 2,000 rows of 10 kB: 20 MB, under the query cap of 64 MiB, over a run of 8 MiB.
    let db = sql::sqlite(&dir.path().join("big.sqlite3"), Caps::default())
        .await
        .unwrap();
    let sb = sandbox_with_sql(db);
    let big = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 2000) \
               SELECT printf('%.10000c', 'a') FROM c";
    let mut inv = invocation(
        "hostile",
        &json!({"mode": "sql", "statements": [big]}).to_string(),
    );
    inv.limits.memory_bytes = 8 << 20;
    let report = sb.run(&compile(&sb, "hostile"), &inv, false).await;
    assert_eq!(report.outcome, Outcome::Ok, "{:?}", report.outcome);
    let said = messages(&report).join("\n");
    assert!(
        said.contains("err WITH RECURSIVE") && said.contains("memory budget of 8388608 bytes"),
        "{said}"
    );
}

/// The worker threads of the jobs' SQLite connections, by name.
fn sqlite_workers() -> usize {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .filter(|name| name.starts_with("sqlx-sqlite"))
        .count()
}

/// Issue 39, hole 4: one SQLite operation never reaches the progress handler, so a
/// statement of a run that timed out keeps running on its connection's thread. Such
/// statements hold their connections (at most the pool's 4), never a new thread each,
/// and are counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statements_that_do_not_stop_hold_at_most_the_pools_connections() {
    let dir = tempfile::tempdir().unwrap();
    let db = sql::sqlite(&dir.path().join("jobs.sqlite3"), Caps::default())
        .await
        .unwrap();
    let sb = sandbox_with_sql(db);
    let before = sqlite_workers();
    // A haystack of 8 MB of 'a' and a needle of 4 MB of 'a' then 'b': one `instr` step
    // compares about 4 MB at each of 4 million places.
    let forever = "SELECT instr(printf('%.*c', 8000000, 'a'), printf('%.*c', 4000000, 'a') || 'b')";
    for _ in 0..6 {
        let report = hostile(
            &sb,
            json!({"mode": "sql", "statements": [forever]}),
            Duration::from_secs(1),
        )
        .await;
        assert!(
            matches!(report.outcome, Outcome::Timeout { .. }),
            "{:?}",
            report.outcome
        );
    }
    let workers = sqlite_workers() - before;
    assert!(
        (1..=4).contains(&workers),
        "{workers} connection threads for the jobs' pool of 4"
    );
    assert_eq!(
        tgrun::clients::sql::session::abandoned_statements(),
        4,
        "statements still running"
    );
}

/// Issue 39, hole 12: state a statement leaves where its text does not show it reaches no
/// later run: a named lock or a last insert id taken inside a view, a temporary table made
/// by a stored function. Clean connections are still lent again.
#[tokio::test]
async fn mariadb_state_left_through_views_and_functions_reaches_no_later_run() {
    let (lock, v1, v2) = (unique("named"), unique("v_one"), unique("v_two"));
    crate::fixtures::mariadb_root(&format!(
        "CREATE VIEW {v1} AS SELECT GET_LOCK('{lock}', 0) AS got; \
         CREATE VIEW {v2} AS SELECT LAST_INSERT_ID(424243) AS x"
    ))
    .await;
    let db = crate::fixtures::mariadb().await;
    let sb = sandbox_with_sql(db.clone());
    // A clean connection goes back (checked off the run's path): runs one after another
    // are mostly lent the same one.
    let mut ids = std::collections::BTreeSet::new();
    for _ in 0..6 {
        ids.insert(statements(&sb, &["SELECT CONNECTION_ID()".into()]).await[0].clone());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        ids.len() < 4,
        "clean connections were not lent again: {ids:?}"
    );

    let lines = statements(
        &sb,
        &[format!("SELECT * FROM {v1}"), format!("SELECT * FROM {v2}")],
    )
    .await;
    assert!(
        plain(&lines[0]).ends_with("[[Int(1)]]") && plain(&lines[1]).contains("(424243)]]"),
        "{lines:?}"
    );
    // The lock does not stay with an idle pooled connection.
    let free = [tgrun::sql_value::Value::Text(lock.clone())];
    let started = Instant::now();
    loop {
        let rows = db.query("SELECT IS_FREE_LOCK(?)", &free).await.unwrap();
        if plain(&format!("{:?}", rows.rows)) == "[[Int(1)]]" {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "lock {lock} still held {:?} after its run",
            started.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for _ in 0..4 {
        let lines = statements(&sb, &["SELECT LAST_INSERT_ID()".into()]).await;
        assert!(!lines[0].contains("424243"), "{lines:?}");
    }

    // A job may not make a stored program; one the operator made, reachable, means no
    // connection is lent twice.
    let lines = statements(
        &sb,
        &["CREATE FUNCTION tgrun_f() RETURNS INT RETURN 1".into()],
    )
    .await;
    assert!(
        lines[0].starts_with("err ") && lines[0].contains("from a job"),
        "{lines:?}"
    );
    let (f, tmp) = (unique("f_tmp"), unique("tmp"));
    // The function does make a temporary table (read in the same session).
    crate::fixtures::mariadb_root(&format!(
        "CREATE FUNCTION {f}() RETURNS INT BEGIN CREATE TEMPORARY TABLE {tmp} (a INT); RETURN 1; END; \
         SELECT {f}(); SELECT COUNT(*) FROM {tmp}"
    ))
    .await;
    let db = crate::fixtures::mariadb().await;
    let sb = sandbox_with_sql(db);
    let mut ids = std::collections::BTreeSet::new();
    let mut seen = Vec::new();
    for _ in 0..4 {
        let lines = statements(
            &sb,
            &[format!("SELECT {f}()"), "SELECT CONNECTION_ID()".into()],
        )
        .await;
        ids.insert(lines[1].clone());
        seen.push(statements(&sb, &[format!("SELECT COUNT(*) FROM {tmp}")]).await[0].clone());
    }
    crate::fixtures::mariadb_root(&format!("DROP FUNCTION {f}; DROP VIEW {v1}, {v2}")).await;
    assert!(
        seen.iter().all(|l| l.starts_with("err ")),
        "a later run reads the temporary table: {seen:?}"
    );
    assert_eq!(ids.len(), 4, "a connection was lent twice: {ids:?}");
}
