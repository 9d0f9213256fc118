//! Fixture: exercises every SQL call against the table the test names, logging what it
//! sees as `key: value` lines for the test to read.

use serde::Deserialize;
use tgrun_sdk::prelude::*;
use tgrun_sdk::sql::Value;

#[derive(Deserialize)]
struct Params {
    /// Statements to run first (the test's dialect of CREATE TABLE).
    ddl: Vec<String>,
    table: String,
    /// Only count the rows named `left_open` (a second run checks the first's leftovers).
    #[serde(default)]
    count_only: bool,
}

fn show(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Int(i) => format!("int {i}"),
        Value::Uint(u) => format!("uint {u}"),
        Value::Float(f) => format!("float {f}"),
        Value::Text(s) => format!("text {s}"),
        Value::Bytes(b) => format!("bytes {b:?}"),
        Value::Datetime(ms) => format!("datetime {ms}"),
        Value::Json(j) => format!("json {j}"),
    }
}

fn count(table: &str, s: &str) -> Result<String> {
    let rows = sql::query(
        &format!("SELECT COUNT(*) FROM {table} WHERE s = ?"),
        &[s.into()],
    )?;
    Ok(show(&rows.rows[0][0]))
}

fn sql_probe(ctx: &Ctx, p: Params) -> Result<()> {
    let t = &p.table;
    if p.count_only {
        info!("left_open: {}", count(t, "left_open")?);
        return Ok(());
    }
    for statement in &p.ddl {
        sql::execute(statement, &[])?;
    }

    let inserted = sql::execute(
        &format!("INSERT INTO {t} (i, u, f, s, b, d, j, n) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"),
        &[
            Value::Int(-5),
            Value::Uint(7),
            Value::Float(2.5),
            "héllo".into(),
            Value::Bytes(vec![0, 1, 255]),
            sql::datetime_ms(ctx.start_time_ms),
            serde_json::json!({"a": 1}).into(),
            None::<i64>.into(),
        ],
    )?;
    info!(
        "inserted: rows {} id {:?}",
        inserted.rows_affected, inserted.last_insert_id
    );

    let id = inserted.last_insert_id.unwrap_or(0);
    let rows = sql::query(
        &format!("SELECT i, u, f, s, b, d, j, n FROM {t} WHERE id = ?"),
        &[Value::Uint(id)],
    )?;
    info!("columns: {}", rows.columns.join(","));
    for v in &rows.rows[0] {
        info!("value: {}", show(v));
    }

    let tx = sql::begin()?;
    tx.execute(
        &format!("INSERT INTO {t} (s) VALUES (?)"),
        &["rolled".into()],
    )?;
    tx.rollback()?;
    let tx = sql::begin()?;
    tx.execute(
        &format!("INSERT INTO {t} (s) VALUES (?)"),
        &["committed".into()],
    )?;
    let inside = tx.query(
        &format!("SELECT COUNT(*) FROM {t} WHERE s = 'committed'"),
        &[],
    )?;
    info!("inside: {}", show(&inside.rows[0][0]));
    tx.commit()?;
    {
        let tx = sql::begin()?;
        tx.execute(
            &format!("INSERT INTO {t} (s) VALUES (?)"),
            &["dropped".into()],
        )?;
    }
    info!(
        "after: committed {} rolled {} dropped {}",
        count(t, "committed")?,
        count(t, "rolled")?,
        count(t, "dropped")?
    );

    match sql::query("SELECT * FROM no_such_table_here", &[]) {
        Ok(_) => info!("error: none"),
        Err(e) => info!("error: {:?} {}", e.kind(), e.message()),
    }

    // Left open when the run ends: the runner must roll it back.
    let tx = sql::begin()?;
    tx.execute(
        &format!("INSERT INTO {t} (s) VALUES (?)"),
        &["left_open".into()],
    )?;
    std::mem::forget(tx);
    Ok(())
}

export_job!(sql_probe);
