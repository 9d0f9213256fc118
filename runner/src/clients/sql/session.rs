//! What a job's statement may leave behind on its connection, and how a running statement
//! is stopped when its run ends: so that no run hands the next one (of any job) an open
//! transaction, a variable, a lock, or a statement still running.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use sqlx::MySql;

/// Statements that start with one of these cannot change a MySQL session by themselves.
const CLEAN_STARTS: &[&str] = &[
    "SELECT", "INSERT", "UPDATE", "DELETE", "REPLACE", "WITH", "VALUES", "TABLE", "SHOW",
    "DESCRIBE", "DESC", "EXPLAIN", "CREATE", "ALTER", "DROP", "TRUNCATE", "RENAME", "ANALYZE",
    "OPTIMIZE", "CHECKSUM",
];

/// ... unless they mention one of these: a user variable (`SELECT @x := 1`, `INTO @x`), a
/// lock (`GET_LOCK`, `LOCK TABLES`, `LOCK IN SHARE MODE`), a temporary table, or a comment
/// the server executes (`/*! ... */`).
const DIRTY_WORDS: &[&str] = &["@", "LOCK", "TEMPORARY", "/*!", "/*M!"];

/// Whether a MySQL/MariaDB statement may leave state on its session (a transaction, a
/// variable, a lock, a temporary table, another default database). Decided on the text,
/// conservatively: only a statement known to be clean keeps its connection in the pool; any
/// other closes it after use, which costs the next run a new connection and nothing else.
pub fn mysql_leaves_state(statement: &str) -> bool {
    let upper = statement.to_ascii_uppercase();
    if DIRTY_WORDS.iter().any(|w| upper.contains(w)) {
        return true;
    }
    let first = skip_comments(&upper)
        .split(|c: char| !c.is_ascii_alphabetic())
        .next()
        .unwrap_or("");
    !CLEAN_STARTS.contains(&first)
}

/// The statement past leading blanks and comments (`-- `, `#`, `/* */`).
fn skip_comments(mut s: &str) -> &str {
    loop {
        s = s.trim_start_matches(|c: char| c.is_whitespace() || c == '(');
        if let Some(rest) = s.strip_prefix("/*") {
            s = rest.split_once("*/").map_or("", |(_, r)| r);
        } else if s.starts_with("--") || s.starts_with('#') {
            s = s.split_once('\n').map_or("", |(_, r)| r);
        } else {
            return s;
        }
    }
}

/// How a statement running for a run is stopped when the run ends first.
pub enum Stop {
    /// SQLite: the connection's progress handler reads this flag and interrupts.
    Flag(Arc<AtomicBool>),
    /// MySQL/MariaDB: `KILL QUERY` of the connection's id, sent on a connection of the
    /// runner's own (a user may kill its own statements without any privilege).
    Kill { id: u64, killer: sqlx::Pool<MySql> },
    /// Nothing to stop (a pool without a killer).
    None,
}

impl Stop {
    /// Stops the statement: at once for SQLite, by a task for MySQL (this runs in `Drop`).
    pub fn fire(self) {
        match self {
            Stop::Flag(f) => f.store(true, Ordering::Relaxed),
            Stop::Kill { id, killer } => {
                if let Ok(rt) = tokio::runtime::Handle::try_current() {
                    rt.spawn(async move {
                        let kill = format!("KILL QUERY {id}");
                        if let Err(e) = sqlx::raw_sql(&kill).execute(&killer).await {
                            tracing::warn!("stopping a job's SQL statement (connection {id}): {e}");
                        }
                    });
                }
            }
            Stop::None => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::mysql_leaves_state as dirty;

    #[test]
    fn only_statements_known_to_leave_nothing_keep_their_connection() {
        for clean in [
            "SELECT 1",
            "  select * from t where a = ?",
            "/* note */ INSERT INTO t VALUES (1)",
            "-- why\nUPDATE t SET a = 1",
            "(SELECT 1) UNION (SELECT 2)",
            "CREATE TABLE t (a INT)",
            "WITH x AS (SELECT 1) SELECT * FROM x",
        ] {
            assert!(!dirty(clean), "{clean}");
        }
        for leaves in [
            "BEGIN",
            "start transaction",
            "SET autocommit = 0",
            "SET @x = 1",
            "SELECT @x := 5",
            "SELECT a INTO @v FROM t",
            "SELECT GET_LOCK('x', 0)",
            "LOCK TABLES t WRITE",
            "CREATE TEMPORARY TABLE t (a INT)",
            "USE other",
            "/*!40101 SET NAMES latin1 */",
            "XA START 'x'",
            "PREPARE s FROM 'SELECT 1'",
            "CALL p()",
            "DO SLEEP(1)",
            "HANDLER t OPEN",
            "",
        ] {
            assert!(dirty(leaves), "{leaves}");
        }
    }
}
