//! SQL from jobs, against the embedded SQLite and the real MariaDB on this machine.

use serde_json::json;
use tgrun::Outcome;
use tgrun::clients::{Caps, sql};
use tgrun::sandbox::Sandbox;

use crate::fixtures::{compile, invocation, messages, sandbox_with_sql};

fn unique_table() -> String {
    use std::hash::{BuildHasher, RandomState};
    format!("t_probe_{:x}", RandomState::new().hash_one(1u8) as u32)
}

async fn probe(sb: &Sandbox, params: serde_json::Value) -> Vec<String> {
    let report = sb
        .run(
            &compile(sb, "sql_probe"),
            &invocation("sql_probe", &params.to_string()),
            false,
        )
        .await;
    assert_eq!(report.outcome, Outcome::Ok, "{:?}", report.logs);
    messages(&report)
}

fn value_lines(logs: &[String]) -> Vec<&str> {
    logs.iter()
        .filter_map(|l| l.strip_prefix("value: "))
        .collect()
}

/// What both databases must agree on, after the typed values.
fn assert_common(logs: &[String]) {
    assert!(
        logs.iter()
            .any(|l| l.starts_with("inserted: rows 1 id Some(")),
        "{logs:?}"
    );
    assert!(
        logs.contains(&"columns: i,u,f,s,b,d,j,n".to_owned()),
        "{logs:?}"
    );
    assert!(logs.contains(&"inside: int 1".to_owned()), "{logs:?}");
    assert!(
        logs.contains(&"after: committed int 1 rolled int 0 dropped int 0".to_owned()),
        "{logs:?}"
    );
    let error = logs.iter().find(|l| l.starts_with("error: ")).unwrap();
    assert!(error.starts_with("error: Upstream database: "), "{error}");
    assert!(
        error.contains("no_such_table_here"),
        "the database's own message: {error}"
    );
}

#[tokio::test]
async fn sqlite_round_trips_typed_values_and_transactions() {
    let dir = tempfile::tempdir().unwrap();
    let db = sql::sqlite(&dir.path().join("jobs.sqlite3"), Caps::default())
        .await
        .unwrap();
    let sb = sandbox_with_sql(db);
    let t = unique_table();
    let logs = probe(
        &sb,
        json!({"table": t, "ddl": [format!(
            "CREATE TABLE {t} (id INTEGER PRIMARY KEY AUTOINCREMENT, i INTEGER, u INTEGER, \
             f REAL, s TEXT, b BLOB, d DATETIME, j JSON, n INTEGER)")]}),
    )
    .await;
    assert_eq!(
        value_lines(&logs),
        vec![
            "int -5",
            "int 7",
            "float 2.5",
            "text héllo",
            "bytes [0, 1, 255]",
            "datetime 1700000000000",
            // SQLite has no JSON type: the document comes back as the text it was stored as.
            "text {\"a\":1}",
            "null"
        ]
    );
    assert_common(&logs);
    let logs = probe(&sb, json!({"table": t, "ddl": [], "count_only": true})).await;
    assert_eq!(
        logs,
        vec!["left_open: int 0"],
        "a transaction left open rolls back"
    );
}

#[tokio::test]
async fn mariadb_round_trips_typed_values_and_transactions() {
    let config = json!({"mysql": {"host": "127.0.0.1", "port": 3306, "user": "root",
                                   "password": "", "database": "test"}});
    let db = sql::start(
        config.as_object().unwrap(),
        std::path::Path::new("/nonexistent"),
        Caps::default(),
    )
    .await
    .expect("the MariaDB on 127.0.0.1:3306 (user root, database test)");
    let sb = sandbox_with_sql(db.clone());
    let t = unique_table();
    let logs = probe(
        &sb,
        json!({"table": t, "ddl": [format!(
            "CREATE TABLE {t} (id BIGINT UNSIGNED AUTO_INCREMENT PRIMARY KEY, i BIGINT, \
             u BIGINT UNSIGNED, f DOUBLE, s VARCHAR(100), b VARBINARY(100), d DATETIME(3), \
             j JSON, n INT)")]}),
    )
    .await;
    let values = value_lines(&logs);
    assert_eq!(
        values[..6],
        [
            "int -5",
            "uint 7",
            "float 2.5",
            "text héllo",
            "bytes [0, 1, 255]",
            "datetime 1700000000000"
        ]
    );
    // MariaDB's JSON is LONGTEXT with a binary (utf8mb4_bin) collation, which the protocol
    // reports as a blob: the document comes back unchanged, as bytes.
    assert_eq!(values[6], format!("bytes {:?}", b"{\"a\":1}"));
    assert_eq!(values[7], "null");
    assert_common(&logs);
    let logs = probe(&sb, json!({"table": t, "ddl": [], "count_only": true})).await;
    assert_eq!(
        logs,
        vec!["left_open: int 0"],
        "a transaction left open rolls back"
    );
    db.execute(&format!("DROP TABLE {t}"), &[]).await.unwrap();
}

#[tokio::test]
async fn mariadb_decimals_read_as_exact_text() {
    // `SUM()` of integers answers DECIMAL in MySQL/MariaDB: it used to fail the query.
    let rows = crate::fixtures::mariadb()
        .await
        .query(
            "SELECT CAST(12.50 AS DECIMAL(10,2)), SUM(2), CAST(-0.001 AS DECIMAL(5,3))",
            &[],
        )
        .await
        .unwrap();
    let texts: Vec<String> = rows.rows[0]
        .iter()
        .map(|v| match v {
            tgrun::sql_value::Value::Text(t) => t.clone(),
            other => panic!("not text: {other:?}"),
        })
        .collect();
    assert_eq!(texts, ["12.50", "2", "-0.001"]);
}

#[tokio::test]
async fn a_query_past_the_row_cap_is_refused() {
    let db = sql::sqlite(
        std::path::Path::new(":memory:"),
        Caps {
            max_rows: 10,
            max_bytes: 1 << 20,
            ..Caps::default()
        },
    )
    .await
    .unwrap();
    let err = db
        .query(
            "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 50) SELECT x FROM c",
            &[],
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, tgrun::clients::ClientError::LimitExceeded(_)),
        "{err:?}"
    );
    assert!(err.to_string().contains("more than 10 rows"), "{err}");
    let ok = db
        .query("SELECT 1 AS one UNION ALL SELECT 2", &[])
        .await
        .unwrap();
    assert_eq!(ok.rows.len(), 2);
    assert_eq!(ok.columns, vec!["one"]);
}

/// Issue 39: one job's writes cannot fill the disk the runner shares (the file is bounded
/// by `sql_max_db_mb`), and one value or statement is bounded (no single SQLite operation
/// works on a string larger than an answer may be).
#[tokio::test]
async fn the_embedded_sqlite_file_and_its_values_are_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jobs.sqlite3");
    let db = sql::sqlite(
        &path,
        Caps {
            max_bytes: 1 << 20,
            max_db_bytes: 2 << 20,
            ..Caps::default()
        },
    )
    .await
    .unwrap();
    db.execute("CREATE TABLE big (b BLOB)", &[]).await.unwrap();
    let mut full = None;
    for _ in 0..8 {
        match db
            .execute("INSERT INTO big VALUES (randomblob(900000))", &[])
            .await
        {
            Ok(_) => {}
            Err(e) => {
                full = Some(e);
                break;
            }
        }
    }
    let full = full.expect("8 blobs of 900 kB fitted in a 2 MiB database");
    assert!(full.to_string().contains("full"), "{full}");
    let on_disk = std::fs::metadata(&path).unwrap().len()
        + std::fs::metadata(dir.path().join("jobs.sqlite3-wal"))
            .map(|m| m.len())
            .unwrap_or(0);
    assert!(on_disk < 6 << 20, "{on_disk} bytes on disk");
    // A value past the bound is refused as it would be made (printf makes none).
    let err = db
        .query("SELECT length(zeroblob(8000000))", &[])
        .await
        .unwrap_err();
    assert!(err.to_string().contains("too big"), "{err}");
    let none = db
        .query("SELECT length(printf('%.*c', 8000000, 'a'))", &[])
        .await
        .unwrap();
    assert_eq!(format!("{:?}", none.rows), "[[Value::Null]]");
    // A statement's text is code, bounded too.
    let long = format!("SELECT 1{}", " + 1".repeat(600_000));
    let err = db.query(&long, &[]).await.unwrap_err();
    assert!(
        err.to_string().contains("too big") || err.to_string().contains("too long"),
        "{err}"
    );
}

/// Each database says its dialect, so a job can compile statements for it (tglib's
/// `MySQLClient` compiles SQLAlchemy statements with it).
#[tokio::test]
async fn each_database_names_its_dialect() {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = sql::sqlite(&dir.path().join("d.sqlite3"), Caps::default())
        .await
        .unwrap();
    assert_eq!(sqlite.dialect(), "sqlite");
    assert_eq!(crate::fixtures::mariadb().await.dialect(), "mysql");
}

/// Issue 39: SQLite has one writer. A job's transaction holding it is rolled back after
/// `sql_max_write_transaction_s`, so other jobs' writes wait that long at most, not for
/// the holder's whole run; the holder's later calls say why.
#[tokio::test]
async fn a_write_transaction_on_the_embedded_sqlite_is_bounded_in_time() {
    let dir = tempfile::tempdir().unwrap();
    let db = sql::sqlite(
        &dir.path().join("jobs.sqlite3"),
        Caps {
            max_write_transaction_s: 1,
            ..Caps::default()
        },
    )
    .await
    .unwrap();
    db.execute("CREATE TABLE w (a INT)", &[]).await.unwrap();
    let mut held = db.begin().await.unwrap();
    held.execute("INSERT INTO w VALUES (1)", &[]).await.unwrap();
    let started = std::time::Instant::now();
    db.execute("INSERT INTO w VALUES (2)", &[]).await.unwrap();
    let waited = started.elapsed();
    assert!(waited < std::time::Duration::from_secs(4), "{waited:?}");
    let err = held
        .execute("INSERT INTO w VALUES (3)", &[])
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("rolled back after 1 s")
            && err.to_string().contains("sql_max_write_transaction_s"),
        "{err}"
    );
    assert!(held.commit().await.is_err());
    let rows = db.query("SELECT a FROM w ORDER BY a", &[]).await.unwrap();
    assert_eq!(format!("{:?}", rows.rows), "[[Value::Int(2)]]");
    // A transaction that ends in time commits as ever.
    let mut quick = db.begin().await.unwrap();
    quick
        .execute("INSERT INTO w VALUES (4)", &[])
        .await
        .unwrap();
    quick.commit().await.unwrap();
    let rows = db.query("SELECT COUNT(*) FROM w", &[]).await.unwrap();
    assert_eq!(format!("{:?}", rows.rows), "[[Value::Int(2)]]");
}
