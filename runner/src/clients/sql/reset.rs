//! What a MySQL/MariaDB connection goes back to the jobs' pool without: the session state a
//! job's statement can leave that its text does not show (`session` judges the text).
//!
//! sqlx cannot send `COM_RESET_CONNECTION`, so each connection is taken back by hand as it
//! returns (sqlx's `after_release`, off the run's path): named locks are released however
//! they were taken (`GET_LOCK` inside a view), the last insert id is zeroed, and a session
//! still holding a user variable or a transaction is closed, not lent. A temporary table or
//! a session variable cannot be seen from the session, and only a stored program can make
//! one without saying so in the statement's text; jobs may not create stored programs
//! (`session::mysql_refused`), and while the jobs' user can call stored functions, every
//! connection closes after its call instead of going back.

use std::sync::atomic::{AtomicBool, Ordering};

use sqlx::{MySqlConnection, Row};

/// Stored functions a job's `SELECT` could call, outside the server's own schemas (`sys`'s
/// functions format and read; `mysql`'s routines are procedures, which need `CALL`).
const REACHABLE_FUNCTIONS: &str = "SELECT CONCAT(ROUTINE_SCHEMA, '.', ROUTINE_NAME) \
     FROM information_schema.ROUTINES \
     WHERE ROUTINE_TYPE = 'FUNCTION' AND ROUTINE_SCHEMA NOT IN ('sys', 'mysql') LIMIT 5";

/// Releases every named lock and zeroes the last insert id, and answers how much state the
/// session still holds that a reset cannot take back here (user variables, a transaction).
/// MySQL has no `USER_VARIABLES` table nor `@@in_transaction`: it fails, and there every
/// connection closes after use (correct, at the cost of a connection per call).
const TAKE_BACK: &str = "SELECT RELEASE_ALL_LOCKS(), LAST_INSERT_ID(0), \
     (SELECT COUNT(*) FROM information_schema.USER_VARIABLES) + @@in_transaction";

/// The jobs' pool's view of its sessions, shared by its connections.
#[derive(Default)]
pub struct Sessions {
    /// Whether the jobs' user could call a stored function when a connection last opened.
    functions: AtomicBool,
}

impl Sessions {
    /// As a connection opens: notes whether the jobs' user can call stored functions.
    pub async fn opened(&self, conn: &mut MySqlConnection) {
        let names: Result<Vec<String>, _> = sqlx::query_scalar(REACHABLE_FUNCTIONS)
            .fetch_all(&mut *conn)
            .await;
        let (reachable, what) = match names {
            Ok(names) => (!names.is_empty(), names.join(", ")),
            Err(e) => (true, format!("(cannot list them: {e})")),
        };
        let was = self.functions.swap(reachable, Ordering::Relaxed);
        if reachable && !was {
            tracing::warn!(
                "the jobs' MySQL user can call stored functions ({what}): a function can leave \
                 state on a session that no statement shows, so every connection closes after \
                 its call (a new connection per call) until none is reachable"
            );
        }
    }

    /// As a connection returns: whether it may be lent again, its locks and last insert id
    /// taken back. A connection whose check fails is not trusted.
    pub async fn released(&self, conn: &mut MySqlConnection) -> bool {
        if self.functions.load(Ordering::Relaxed) {
            return false;
        }
        match sqlx::query(TAKE_BACK).fetch_one(&mut *conn).await {
            Ok(row) => row.try_get::<u64, _>(2).is_ok_and(|left| left == 0),
            Err(_) => false,
        }
    }
}
