//! Run history: every finished run, persisted in the service's SQL database (MySQL, or the
//! embedded SQLite) by a background writer, in batches, with bounded retention.
//!
//! The writer is fed through a bounded channel so a database slower than the runs cannot
//! grow the runner's memory: past `HISTORY_BUFFER` waiting rows, rows are dropped and
//! counted (`tgrun_history_dropped_total`), never silently. A batch the database refuses
//! is written again row by row, so one bad row never takes other runs' rows with it; rows
//! still refused are counted (`tgrun_history_lost_total`) and logged.
//!
//! The database is the runner's own (`clients::sql::start_history`), never the jobs' pool.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::{mpsc, oneshot};

use crate::bindings::tgrun::job::sql::Value;
use crate::clients::{ClientError, SqlApi};
use crate::config::service::ROUTE_PIPELINE;
use crate::run::outcome::RunReport;

/// Rows that may wait for the writer.
pub const HISTORY_BUFFER: usize = 100_000;
pub use crate::config::runner::Retention;

/// Rows written in one INSERT.
const BATCH: usize = 500;
/// How long the writer gathers rows for a batch that is not full: a commit per run cost a
/// cluster replica running a few hundred runs a second a sixth of its CPU (every index's
/// pages written to the WAL again for one row). `GET /runs` and a stop flush at once.
const LINGER: Duration = Duration::from_millis(100);

/// No key on `run_id`: ids are unique by making (a process's random prefix and a count), no
/// query looks one up, and keeping it unique was a seventh of each row's cost. Tables made
/// before keep theirs, and work the same.
const CREATE: &str = "CREATE TABLE IF NOT EXISTS tgrun_runs (
    run_id VARCHAR(64) NOT NULL,
    job VARCHAR(255) NOT NULL,
    pipeline VARCHAR(255) NOT NULL,
    scheduled_ms BIGINT NOT NULL,
    started_ms BIGINT NOT NULL,
    duration_ms DOUBLE NOT NULL,
    outcome VARCHAR(32) NOT NULL,
    error TEXT,
    module_version VARCHAR(32),
    attempt INT NOT NULL DEFAULT 1)";
const COLUMNS: &str = "run_id, job, pipeline, scheduled_ms, started_ms, duration_ms, outcome, error, module_version, attempt";

/// One row of history, as `GET /runs` answers it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct RunRow {
    pub run_id: String,
    pub job: String,
    pub pipeline: String,
    pub scheduled_ms: i64,
    pub started_ms: i64,
    pub duration_ms: f64,
    pub outcome: String,
    pub error: Option<String>,
    pub module_version: Option<String>,
    /// 1 for a due time's first run, 2 for its first retry, ...
    pub attempt: u32,
}

impl RunRow {
    pub fn of(r: &RunReport) -> Self {
        Self {
            run_id: r.run_id.clone(),
            job: r.job.clone(),
            pipeline: r.pipeline.clone(),
            scheduled_ms: r.scheduled_ms,
            started_ms: r
                .started_at
                .duration_since(SystemTime::UNIX_EPOCH)
                .map(|d| d.as_millis() as i64)
                .unwrap_or(0),
            duration_ms: r.duration.as_secs_f64() * 1e3,
            outcome: r.outcome.name().to_owned(),
            error: (!r.outcome.is_ok()).then(|| r.outcome.detail()),
            module_version: r.module_version.clone(),
            attempt: r.attempt,
        }
    }
}

/// What the writer is sent.
enum Message {
    Row(RunRow),
    /// Answered once every row sent before it has been written.
    Flush(oneshot::Sender<()>),
    /// Applies the retention at once, after the rows sent before it, and answers how it
    /// went. Only the writer prunes: two prunes at once would each take the excess they
    /// counted, and so take it twice.
    Prune(oneshot::Sender<Result<(), ClientError>>),
}

/// The sending side, kept by the scheduler.
pub struct Recorder {
    tx: mpsc::Sender<Message>,
    pub dropped: Arc<AtomicU64>,
    pub written: Arc<AtomicU64>,
    /// Rows the database refused, even alone.
    pub lost: Arc<AtomicU64>,
    db: Arc<dyn SqlApi>,
}

impl Recorder {
    /// Creates the table if needed and starts the writer on the current runtime.
    pub async fn start(db: Arc<dyn SqlApi>, retention: Retention) -> Result<Self, ClientError> {
        db.execute(CREATE, &[]).await?;
        // Each ignored if already done (MySQL has no CREATE INDEX IF NOT EXISTS, and
        // neither database has ADD COLUMN IF NOT EXISTS in common). `attempt` came later.
        for upgrade in [
            "ALTER TABLE tgrun_runs ADD COLUMN attempt INT NOT NULL DEFAULT 1",
            "CREATE INDEX tgrun_runs_job ON tgrun_runs (job, started_ms)",
            "CREATE INDEX tgrun_runs_pipeline ON tgrun_runs (pipeline, scheduled_ms)",
            // Retention and the newest runs first walk it instead of sorting the table.
            "CREATE INDEX tgrun_runs_started ON tgrun_runs (started_ms, run_id)",
        ] {
            let _ = db.execute(upgrade, &[]).await;
        }
        let (tx, rx) = mpsc::channel(HISTORY_BUFFER);
        let dropped = Arc::new(AtomicU64::new(0));
        let written = Arc::new(AtomicU64::new(0));
        let lost = Arc::new(AtomicU64::new(0));
        let counts = Counts {
            written: written.clone(),
            lost: lost.clone(),
        };
        tokio::spawn(write_loop(rx, db.clone(), retention, counts));
        Ok(Self {
            tx,
            dropped,
            written,
            lost,
            db,
        })
    }

    /// Applies the retention now (the writer also does, at most once a second).
    pub async fn prune_now(&self) -> Result<(), ClientError> {
        let (tx, rx) = oneshot::channel();
        let gone = || ClientError::Upstream("the run history's writer has stopped".into());
        self.tx.send(Message::Prune(tx)).await.map_err(|_| gone())?;
        rx.await.map_err(|_| gone())?
    }

    /// Waits until every row recorded so far is written, up to `limit`; answers whether
    /// it was.
    pub async fn flush(&self, limit: Duration) -> bool {
        let (tx, rx) = oneshot::channel();
        let sent = async { self.tx.send(Message::Flush(tx)).await.is_ok() && rx.await.is_ok() };
        tokio::time::timeout(limit, sent).await.unwrap_or(false)
    }

    /// The latest due time of `pipeline`'s runs, ms since the Unix epoch.
    pub async fn last_scheduled(&self, pipeline: &str) -> Result<Option<i64>, ClientError> {
        let rows = self
            .db
            .query(
                "SELECT MAX(scheduled_ms) FROM tgrun_runs WHERE pipeline = ?",
                &[Value::Text(pipeline.to_owned())],
            )
            .await?;
        Ok(rows
            .rows
            .first()
            .and_then(|r| r.first())
            .filter(|v| !matches!(v, Value::Null))
            .map(int))
    }

    pub fn record(&self, r: &RunReport) {
        if self.tx.try_send(Message::Row(RunRow::of(r))).is_err()
            && self.dropped.fetch_add(1, Ordering::Relaxed) == 0
        {
            tracing::error!(
                "run history is not keeping up: dropping rows (counted in tgrun_history_dropped_total)"
            );
        }
    }

    /// The most recent runs, newest first, optionally of one job and one outcome.
    pub async fn query(
        &self,
        job: Option<&str>,
        outcome: Option<&str>,
        limit: u64,
    ) -> Result<Vec<RunRow>, ClientError> {
        let mut sql = format!("SELECT {COLUMNS} FROM tgrun_runs WHERE 1 = 1");
        let mut params = Vec::new();
        if let Some(j) = job {
            sql.push_str(" AND job = ?");
            params.push(Value::Text(j.to_owned()));
        }
        if let Some(o) = outcome {
            sql.push_str(" AND outcome = ?");
            params.push(Value::Text(o.to_owned()));
        }
        sql.push_str(&format!(
            " ORDER BY started_ms DESC, run_id DESC LIMIT {limit}"
        ));
        let rows = self.db.query(&sql, &params).await?;
        Ok(rows.rows.into_iter().filter_map(row).collect())
    }
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::Text(s) | Value::Json(s) => Some(s.clone()),
        Value::Bytes(b) => String::from_utf8(b.clone()).ok(),
        _ => None,
    }
}

fn int(v: &Value) -> i64 {
    match v {
        Value::Int(i) => *i,
        Value::Uint(u) => *u as i64,
        Value::Float(f) => *f as i64,
        _ => 0,
    }
}

fn row(v: Vec<Value>) -> Option<RunRow> {
    Some(RunRow {
        run_id: text(&v[0])?,
        job: text(&v[1])?,
        pipeline: text(&v[2])?,
        scheduled_ms: int(&v[3]),
        started_ms: int(&v[4]),
        duration_ms: match &v[5] {
            Value::Float(f) => *f,
            other => int(other) as f64,
        },
        outcome: text(&v[6])?,
        error: text(&v[7]),
        module_version: text(&v[8]),
        attempt: int(&v[9]).max(1) as u32,
    })
}

/// What the writer counts.
struct Counts {
    written: Arc<AtomicU64>,
    lost: Arc<AtomicU64>,
}

async fn write_loop(
    mut rx: mpsc::Receiver<Message>,
    db: Arc<dyn SqlApi>,
    retention: Retention,
    counts: Counts,
) {
    let mut last_prune = Instant::now() - Duration::from_secs(3600);
    let mut messages = Vec::with_capacity(BATCH);
    let mut batch = Vec::new();
    let mut flushes = Vec::new();
    let mut prunes = Vec::new();
    let mut kept = Kept::default();
    while rx.recv_many(&mut messages, BATCH).await > 0 {
        linger(&mut rx, &mut messages).await;
        for m in messages.drain(..) {
            match m {
                Message::Row(r) => batch.push(r),
                Message::Flush(done) => flushes.push(done),
                Message::Prune(done) => prunes.push(done),
            }
        }
        if !batch.is_empty() {
            let routes = batch
                .iter()
                .filter(|r| r.pipeline.starts_with(ROUTE_PIPELINE))
                .count() as u64;
            let rows = batch.len() as u64;
            if write_batch(&*db, std::mem::take(&mut batch), &counts).await {
                kept.written(rows - routes, routes);
            } else {
                // Some rows went in, some not: counted again at the next prune.
                kept = Kept::default();
            }
        }
        for done in flushes.drain(..) {
            let _ = done.send(());
        }
        for done in prunes.drain(..) {
            // Asked for: counted afresh, as a caller expects after its own writes.
            kept = Kept::default();
            let _ = done.send(prune(&*db, retention, &mut kept).await);
        }
        // Pruning costs a query or two: at most once a second.
        if last_prune.elapsed() >= Duration::from_secs(1) {
            last_prune = Instant::now();
            if let Err(e) = prune(&*db, retention, &mut kept).await {
                tracing::error!("pruning run history: {e}");
            }
        }
    }
}

/// Adds what comes within [`LINGER`] to `messages` (a batch's first rows), until the batch
/// is full or a flush is asked for.
async fn linger(rx: &mut mpsc::Receiver<Message>, messages: &mut Vec<Message>) {
    let flush = |m: &[Message]| {
        m.iter()
            .any(|m| matches!(m, Message::Flush(_) | Message::Prune(_)))
    };
    if flush(messages) {
        return;
    }
    let until = tokio::time::Instant::now() + LINGER;
    while messages.len() < BATCH {
        let seen = messages.len();
        let more = rx.recv_many(messages, BATCH - seen);
        match tokio::time::timeout_at(until, more).await {
            // Closed: what came is written, and the loop ends.
            Ok(0) | Err(_) => return,
            Ok(_) if flush(&messages[seen..]) => return,
            Ok(_) => {}
        }
    }
}

/// A row's values, in `COLUMNS`' order.
const FIELDS: usize = 10;

/// Writes `batch` in one statement, or, refused, row by row; counts what is written and
/// what is lost, and logs the loss once per batch. Answers whether it went in whole. The
/// rows' text moves into the bound values: nothing is copied on the way.
async fn write_batch(db: &dyn SqlApi, batch: Vec<RunRow>, counts: &Counts) -> bool {
    let rows = batch.len();
    let params = values(batch);
    let Err(whole) = insert(db, &params).await else {
        counts.written.fetch_add(rows as u64, Ordering::Relaxed);
        return true;
    };
    let mut lost = Vec::new();
    let mut first_error = None;
    for row in params.chunks(FIELDS) {
        match insert(db, row).await {
            Ok(()) => {
                counts.written.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => {
                first_error.get_or_insert(e);
                lost.push(text(&row[0]).unwrap_or_default());
            }
        }
    }
    if let Some(e) = first_error {
        counts.lost.fetch_add(lost.len() as u64, Ordering::Relaxed);
        tracing::error!(
            lost = lost.len(),
            of = rows,
            first_run_id = lost[0],
            "run history rows lost (counted in tgrun_history_lost_total): {e}; the batch failed with: {whole}"
        );
    }
    false
}

fn values(rows: Vec<RunRow>) -> Vec<Value> {
    let mut params = Vec::with_capacity(rows.len() * FIELDS);
    for r in rows {
        params.extend([
            Value::Text(r.run_id),
            Value::Text(r.job),
            Value::Text(r.pipeline),
            Value::Int(r.scheduled_ms),
            Value::Int(r.started_ms),
            Value::Float(r.duration_ms),
            Value::Text(r.outcome),
            r.error.map_or(Value::Null, Value::Text),
            r.module_version.map_or(Value::Null, Value::Text),
            Value::Int(i64::from(r.attempt)),
        ]);
    }
    params
}

/// Inserts the rows whose values `params` holds, `FIELDS` a row.
async fn insert(db: &dyn SqlApi, params: &[Value]) -> Result<(), ClientError> {
    let rows = params.len() / FIELDS;
    let placeholders = vec!["(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"; rows].join(", ");
    db.execute(
        &format!("INSERT INTO tgrun_runs ({COLUMNS}) VALUES {placeholders}"),
        params,
    )
    .await
    .map(|_| ())
}

/// How often the rows kept are counted again rather than followed: other replicas may
/// write to the same database.
const RECOUNT: Duration = Duration::from_secs(60);

/// The rows the writer keeps of each kind (runs of jobs, route requests), counted once
/// and then followed through its own inserts and deletes (counted again every
/// [`RECOUNT`]). A cap is then a delete of the excess along the index on start time; it
/// was a sort of the whole table every second (130 ms of the 2 cores at 100,000 rows).
#[derive(Default)]
struct Kept {
    jobs: Option<u64>,
    routes: Option<u64>,
    counted: Option<Instant>,
}

impl Kept {
    fn written(&mut self, jobs: u64, routes: u64) {
        for (kept, n) in [(&mut self.jobs, jobs), (&mut self.routes, routes)] {
            if let Some(k) = kept {
                *k += n;
            }
        }
    }
}

/// Deletes rows matching `filter` older than `oldest_ms`, and then the oldest past
/// `max_rows`; `kept` follows what is left (counted when unknown).
async fn retain(
    db: &dyn SqlApi,
    filter: &str,
    oldest_ms: i64,
    max_rows: u64,
    kept: &mut Option<u64>,
) -> Result<(), ClientError> {
    let aged = db
        .execute(
            &format!("DELETE FROM tgrun_runs WHERE started_ms < ? AND {filter}"),
            &[Value::Int(oldest_ms)],
        )
        .await?
        .rows_affected;
    let count = match *kept {
        Some(n) => n.saturating_sub(aged),
        None => {
            let rows = db
                .query(
                    &format!("SELECT count(*) FROM tgrun_runs WHERE {filter}"),
                    &[],
                )
                .await?;
            rows.rows.first().map_or(0, |r| int(&r[0]).max(0) as u64)
        }
    };
    *kept = Some(count);
    if count <= max_rows {
        return Ok(());
    }
    // The newest of the rows past the cap; it and everything older go.
    let excess = count - max_rows;
    let past = db
        .query(
            &format!(
                "SELECT started_ms, run_id FROM tgrun_runs WHERE {filter} ORDER BY started_ms, run_id LIMIT 1 OFFSET {}",
                excess - 1
            ),
            &[],
        )
        .await?;
    if let Some(first) = past.rows.first() {
        let (ms, id) = (int(&first[0]), text(&first[1]).unwrap_or_default());
        let deleted = db
            .execute(
                &format!(
                    "DELETE FROM tgrun_runs WHERE {filter} AND (started_ms < ? OR (started_ms = ? AND run_id <= ?))"
                ),
                &[Value::Int(ms), Value::Int(ms), Value::Text(id)],
            )
            .await?
            .rows_affected;
        *kept = Some(count.saturating_sub(deleted));
    }
    Ok(())
}

async fn prune(db: &dyn SqlApi, retention: Retention, kept: &mut Kept) -> Result<(), ClientError> {
    let now_ms = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    let oldest = now_ms - retention.max_age.as_millis() as i64;
    if kept.counted.is_none_or(|at| at.elapsed() >= RECOUNT) {
        *kept = Kept {
            counted: Some(Instant::now()),
            ..Kept::default()
        };
    }
    let routes = format!("pipeline LIKE '{ROUTE_PIPELINE}%'");
    let jobs = format!("pipeline NOT LIKE '{ROUTE_PIPELINE}%'");
    retain(db, &jobs, oldest, retention.max_rows, &mut kept.jobs).await?;
    retain(
        db,
        &routes,
        oldest,
        retention.route_max_rows,
        &mut kept.routes,
    )
    .await?;
    Ok(())
}
