//! What a job's statement may leave behind on its connection, and how a running statement
//! is stopped when its run ends: so that no run hands the next one (of any job) an open
//! transaction, a variable, a lock, or a statement still running.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use sqlx::MySql;

/// Statements that start with one of these cannot change a MySQL session by themselves.
const CLEAN_STARTS: &[&str] = &[
    "SELECT", "INSERT", "UPDATE", "DELETE", "REPLACE", "WITH", "VALUES", "TABLE", "SHOW",
    "DESCRIBE", "DESC", "EXPLAIN", "CREATE", "ALTER", "DROP", "TRUNCATE", "RENAME", "ANALYZE",
    "OPTIMIZE", "CHECKSUM",
];

/// ... unless they mention one of these: a user variable (`SELECT @x := 1`, `INTO @x`), a
/// lock (`GET_LOCK`, `LOCK TABLES`, `LOCK IN SHARE MODE`), a temporary table, a comment
/// the server executes (`/*! ... */`), or the session's last insert id set by hand
/// (`LAST_INSERT_ID(42)`, which the next run of any job would read).
const DIRTY_WORDS: &[&str] = &["@", "LOCK", "TEMPORARY", "/*!", "/*M!", "LAST_INSERT_ID"];

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

/// Statements that act on other sessions, the server or its users, starting with these
/// words: a job's user may `KILL` any connection of the same user (another job's) with no
/// privilege at all, and whatever else the operator granted it stays the operator's.
const REFUSED_STARTS: &[&[&str]] = &[
    &["KILL"],
    &["SHUTDOWN"],
    &["RESTART"],
    &["SET", "GLOBAL"],
    &["SET", "PERSIST"],
    &["SET", "PERSIST_ONLY"],
    &["SET", "PASSWORD"],
    &["SET", "DEFAULT", "ROLE"],
    &["SET", "ROLE"],
    &["FLUSH"],
    &["RESET"],
    &["PURGE"],
    &["INSTALL"],
    &["UNINSTALL"],
    &["GRANT"],
    &["REVOKE"],
    &["BINLOG"],
    &["CHANGE"],
    &["START", "SLAVE"],
    &["START", "REPLICA"],
    &["START", "ALL"],
    &["STOP"],
    &["CACHE", "INDEX"],
    &["LOAD"],
    // Dynamic SQL runs a string the checks above never see (`PREPARE s FROM 'KILL 7'`).
    &["PREPARE"],
    &["EXECUTE"],
    &["DEALLOCATE"],
    // An event runs later, as its definer (this same user), outside any run.
    &["CREATE", "EVENT"],
    &["ALTER", "EVENT"],
    &["CREATE", "USER"],
    &["DROP", "USER"],
    &["ALTER", "USER"],
    &["RENAME", "USER"],
    &["CREATE", "ROLE"],
    &["DROP", "ROLE"],
    &["CREATE", "SERVER"],
    &["ALTER", "SERVER"],
    &["DROP", "SERVER"],
];

/// Why a job's MySQL/MariaDB statement is refused before it reaches the server, if it is:
/// it acts beyond the job's own session and data (see [`REFUSED_STARTS`]), writes the
/// server's files (`INTO OUTFILE`), or hides a statement in a comment the server executes
/// (`/*! KILL 7 */`).
pub fn mysql_refused(statement: &str) -> Option<String> {
    let upper = statement.to_ascii_uppercase();
    if upper.contains("/*!") || upper.contains("/*M!") {
        return Some(
            "a comment the server executes (/*! ... */) is not accepted from a job".into(),
        );
    }
    let words: Vec<&str> = skip_comments(&upper)
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '@'))
        .filter(|w| !w.is_empty())
        .take(3)
        .collect();
    let words: Vec<&str> = words
        .iter()
        .map(|w| match *w {
            "@@GLOBAL" => "GLOBAL",
            "@@PERSIST" => "PERSIST",
            w => w,
        })
        .collect();
    if let Some(start) = REFUSED_STARTS
        .iter()
        .find(|s| words.len() >= s.len() && words[..s.len()] == s[..])
    {
        return Some(format!(
            "{} statements act beyond the job's own session and are not accepted from a job",
            start.join(" ")
        ));
    }
    if let Some(kind) = stored_program(&upper) {
        return Some(format!(
            "CREATE {kind} makes code the server runs later in other jobs' sessions; it is not accepted from a job"
        ));
    }
    if upper.contains("OUTFILE") || upper.contains("DUMPFILE") {
        return Some(
            "writing the server's files (INTO OUTFILE/DUMPFILE) is not accepted from a job".into(),
        );
    }
    None
}

/// What a `CREATE` statement makes, when it is a stored program: code that runs later in
/// whichever session calls it or writes its table, beyond what any statement's text shows
/// (a function that creates a temporary table, a trigger that takes a lock). Decided by the
/// first word naming a kind of object, quoted names left out (`CREATE TABLE event (...)`
/// makes a table; `CREATE DEFINER=CURRENT_USER() FUNCTION` a function).
fn stored_program(upper: &str) -> Option<&'static str> {
    let mut words = unquoted_words(skip_comments(upper));
    if words.next()? != "CREATE" {
        return None;
    }
    for word in words.take(16) {
        match word {
            "FUNCTION" => return Some("FUNCTION"),
            "PROCEDURE" => return Some("PROCEDURE"),
            "TRIGGER" => return Some("TRIGGER"),
            "EVENT" => return Some("EVENT"),
            "PACKAGE" => return Some("PACKAGE"),
            "TABLE" | "VIEW" | "INDEX" | "DATABASE" | "SCHEMA" | "SEQUENCE" | "USER" | "ROLE"
            | "SERVER" | "TABLESPACE" | "TEMPORARY" => return None,
            _ => {}
        }
    }
    None
}

/// The words of `s` (letters, digits, `_`) outside quotes (`'...'`, `"..."`, `` `...` ``).
fn unquoted_words(s: &str) -> impl Iterator<Item = &str> {
    let mut quote = None;
    s.split(move |c: char| {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if matches!(c, '\'' | '"' | '`') => quote = Some(c),
            None => return !(c.is_ascii_alphanumeric() || c == '_'),
        }
        true
    })
    .filter(|w| !w.is_empty())
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

/// Statements of ended runs still running on their connections (SQLite: one operation
/// that never reaches the stop flag), each holding a connection of the pool.
static ABANDONED: AtomicUsize = AtomicUsize::new(0);

/// How many statements of ended runs are still running (`/readyz`, `/metrics`).
pub fn abandoned_statements() -> usize {
    ABANDONED.load(Ordering::Relaxed)
}

/// Keeps `conn`, whose statement's run has ended, out of the pool until the statement
/// stops (its next command waits behind it), then closes it. Without a runtime (a drop at
/// shutdown) it is closed at once.
pub fn abandon<DB: sqlx::Database>(conn: sqlx::pool::PoolConnection<DB>) {
    use sqlx::Connection;
    let Ok(rt) = tokio::runtime::Handle::try_current() else {
        return;
    };
    ABANDONED.fetch_add(1, Ordering::Relaxed);
    rt.spawn(async move {
        let mut conn = conn;
        let _ = conn.ping().await;
        ABANDONED.fetch_sub(1, Ordering::Relaxed);
        drop(conn);
    });
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
    use super::mysql_refused as refused;

    #[test]
    fn statements_that_act_on_other_sessions_or_the_server_are_refused() {
        for bad in [
            "KILL QUERY 7",
            "kill 7",
            "/* x */ KILL CONNECTION 7",
            "SHUTDOWN",
            "SET GLOBAL max_connections = 1",
            "set @@global.max_connections = 1",
            "SET PERSIST x = 1",
            "FLUSH PRIVILEGES",
            "RESET MASTER",
            "GRANT ALL ON *.* TO x",
            "CREATE USER x",
            "PREPARE s FROM 'KILL 7'",
            "EXECUTE s",
            "CREATE EVENT e ON SCHEDULE EVERY 1 SECOND DO KILL 7",
            "/*!50000 KILL 7 */",
            "SELECT 1 /*M!100000 , SLEEP(1) */",
            "SELECT * FROM t INTO OUTFILE '/tmp/x'",
            "LOAD DATA INFILE '/etc/passwd' INTO TABLE t",
            "STOP SLAVE",
            "INSTALL PLUGIN x SONAME 'x.so'",
            // Stored programs run later in other jobs' sessions.
            "CREATE FUNCTION f() RETURNS INT RETURN 1",
            "create or replace definer=current_user() function f() returns int return 1",
            "CREATE DEFINER=`table`@`%` PROCEDURE p() SELECT 1",
            "CREATE AGGREGATE FUNCTION g(x INT) RETURNS INT BEGIN RETURN 1; END",
            "CREATE TRIGGER tr BEFORE INSERT ON t FOR EACH ROW SET @x = 1",
            "/* x */ CREATE OR REPLACE PACKAGE pk AS FUNCTION f RETURN INT; END",
        ] {
            assert!(refused(bad).is_some(), "{bad}");
        }
        for fine in [
            "SELECT 1",
            "SET @x = 1",
            "SET SESSION sql_mode = ''",
            "START TRANSACTION",
            "INSERT INTO killers VALUES (1)",
            "CREATE TABLE grants (a INT)",
            "SELECT LAST_INSERT_ID()",
            "DELETE FROM t WHERE note = 'FLUSH'",
            "CREATE TABLE event (trigger_at INT, `function` TEXT)",
            "CREATE TABLE `trigger` (a INT)",
            "CREATE OR REPLACE VIEW v AS SELECT 'CREATE FUNCTION' AS f",
            "CREATE UNIQUE INDEX procedure_i ON t (a)",
        ] {
            assert!(refused(fine).is_none(), "{fine}: {:?}", refused(fine));
        }
    }

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
            "SELECT LAST_INSERT_ID(424242)",
            "",
        ] {
            assert!(dirty(leaves), "{leaves}");
        }
    }
}
