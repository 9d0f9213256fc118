//! The jobs' SQLite connections without the file system: the one place the runner calls
//! SQLite's C API directly (the rest goes through sqlx), so every `unsafe` is here.
//!
//! A job's statements could otherwise reach files (`ATTACH 'path'`, `VACUUM INTO 'path'`,
//! `load_extension`) or leave state on a pooled connection for the next run (`PRAGMA`s,
//! `TEMP` tables). SQLite's authorizer answers for every action of a statement as it is
//! compiled, so the refusals hold whatever the statement's spelling; the limit of attached
//! databases (0) also stops `VACUUM`, which attaches a database of its own.

#![allow(unsafe_code)]

use std::ffi::{CStr, c_char, c_int, c_void};

use libsqlite3_sys as ffi;
use sqlx::sqlite::SqliteConnection;

/// `PRAGMA`s that only read the schema or check it, with any argument.
const READ_PRAGMAS: &[&str] = &[
    "table_info",
    "table_xinfo",
    "table_list",
    "index_list",
    "index_info",
    "index_xinfo",
    "foreign_key_list",
    "foreign_key_check",
    "integrity_check",
    "quick_check",
    "collation_list",
];

/// `PRAGMA`s that may be read (no argument) but not set.
const QUERY_PRAGMAS: &[&str] = &[
    "user_version",
    "application_id",
    "schema_version",
    "data_version",
    "page_count",
    "page_size",
    "freelist_count",
    "encoding",
    "foreign_keys",
    "journal_mode",
];

/// Functions a statement may not call.
const FUNCTIONS: &[&str] = &["load_extension"];

/// What the authorizer answers for one action (the pure part, tested on its own).
fn allowed(action: c_int, arg1: Option<&str>, arg2: Option<&str>) -> bool {
    let lower = |s: Option<&str>| s.map(str::to_ascii_lowercase);
    match action {
        ffi::SQLITE_ATTACH | ffi::SQLITE_DETACH => false,
        ffi::SQLITE_CREATE_TEMP_INDEX
        | ffi::SQLITE_CREATE_TEMP_TABLE
        | ffi::SQLITE_CREATE_TEMP_TRIGGER
        | ffi::SQLITE_CREATE_TEMP_VIEW => false,
        ffi::SQLITE_PRAGMA => match lower(arg1) {
            Some(p) if READ_PRAGMAS.contains(&p.as_str()) => true,
            Some(p) => arg2.is_none() && QUERY_PRAGMAS.contains(&p.as_str()),
            None => false,
        },
        ffi::SQLITE_FUNCTION => !matches!(lower(arg2), Some(f) if FUNCTIONS.contains(&f.as_str())),
        _ => true,
    }
}

/// # Safety
/// Called by SQLite with NUL-terminated strings or nulls, as its authorizer contract says.
unsafe extern "C" fn authorize(
    _data: *mut c_void,
    action: c_int,
    arg1: *const c_char,
    arg2: *const c_char,
    _database: *const c_char,
    _trigger: *const c_char,
) -> c_int {
    // SAFETY: SQLite passes valid C strings or nulls, alive for this call.
    let text = |p: *const c_char| unsafe { (!p.is_null()).then(|| CStr::from_ptr(p)) };
    let (a1, a2) = (text(arg1), text(arg2));
    let a1 = a1.and_then(|s| s.to_str().ok());
    let a2 = a2.and_then(|s| s.to_str().ok());
    if allowed(action, a1, a2) {
        ffi::SQLITE_OK
    } else {
        ffi::SQLITE_DENY
    }
}

/// What one connection of the jobs may hold and do.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Pages the file may have (`max_page_count`).
    max_pages: u64,
    /// Bytes of one string or blob, and of one statement's text.
    max_value_bytes: c_int,
    max_statement_bytes: c_int,
}

/// Bytes of one statement's text: statements are code, values go in parameters.
const MAX_STATEMENT_BYTES: c_int = 1 << 20;
/// The page size the jobs' file is made with (SQLite's default).
const PAGE_BYTES: u64 = 4096;

impl Limits {
    pub fn of(caps: super::Caps) -> Self {
        Self {
            max_pages: (caps.max_db_bytes / PAGE_BYTES).max(1),
            // A value may be as large as a whole answer may be.
            max_value_bytes: c_int::try_from(caps.max_bytes).unwrap_or(c_int::MAX),
            max_statement_bytes: MAX_STATEMENT_BYTES,
        }
    }
}

/// Hardens a new connection of the jobs' pool (sqlx's `after_connect`).
pub async fn harden(conn: &mut SqliteConnection, limits: Limits) -> Result<(), sqlx::Error> {
    let mut handle = conn.lock_handle().await?;
    let db = handle.as_raw_handle().as_ptr();
    // SAFETY: the handle is locked out of sqlx's worker for this block, and each call
    // takes it as its first argument as documented; the authorizer is a plain function
    // with no user data, so nothing it points to can outlive the connection.
    let failed = unsafe {
        let mut out: c_int = 0;
        let configs = [
            (ffi::SQLITE_DBCONFIG_ENABLE_LOAD_EXTENSION, 0),
            (ffi::SQLITE_DBCONFIG_DEFENSIVE, 1),
            (ffi::SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0),
        ];
        let mut failed = None;
        for (op, value) in configs {
            if ffi::sqlite3_db_config(db, op, value, &mut out as *mut c_int) != ffi::SQLITE_OK {
                failed = Some(op);
            }
        }
        ffi::sqlite3_limit(db, ffi::SQLITE_LIMIT_ATTACHED, 0);
        // One value, and one statement's text, bounded: a job's `printf('%.*c', 1e9, 'a')`
        // is refused (`string or blob too big`) instead of made.
        ffi::sqlite3_limit(db, ffi::SQLITE_LIMIT_LENGTH, limits.max_value_bytes);
        ffi::sqlite3_limit(db, ffi::SQLITE_LIMIT_SQL_LENGTH, limits.max_statement_bytes);
        // The file's size: set before the authorizer, which refuses any job's PRAGMA.
        let pragma =
            std::ffi::CString::new(format!("PRAGMA max_page_count = {}", limits.max_pages))
                .expect("no NUL in a number");
        if ffi::sqlite3_exec(
            db,
            pragma.as_ptr(),
            None,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
        ) != ffi::SQLITE_OK
        {
            failed = Some(-2);
        }
        if ffi::sqlite3_set_authorizer(db, Some(authorize), std::ptr::null_mut()) != ffi::SQLITE_OK
        {
            failed = Some(-1);
        }
        failed
    };
    match failed {
        None => Ok(()),
        Some(op) => Err(sqlx::Error::Configuration(
            format!("cannot restrict a SQLite connection (setting {op})").into(),
        )),
    }
}

/// Whether the connection is outside any transaction (a job's raw `BEGIN` left none open).
pub async fn in_autocommit(conn: &mut SqliteConnection) -> bool {
    match conn.lock_handle().await {
        // SAFETY: the handle is locked out of sqlx's worker while it is read.
        Ok(mut h) => unsafe { ffi::sqlite3_get_autocommit(h.as_raw_handle().as_ptr()) != 0 },
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_extensions_temp_objects_and_setting_pragmas_are_refused() {
        assert!(!allowed(ffi::SQLITE_ATTACH, Some("/tmp/x"), None));
        assert!(!allowed(ffi::SQLITE_DETACH, Some("x"), None));
        assert!(!allowed(ffi::SQLITE_CREATE_TEMP_TABLE, Some("t"), None));
        assert!(!allowed(
            ffi::SQLITE_PRAGMA,
            Some("journal_mode"),
            Some("off")
        ));
        assert!(!allowed(ffi::SQLITE_PRAGMA, Some("writable_schema"), None));
        assert!(!allowed(
            ffi::SQLITE_PRAGMA,
            Some("Foreign_Keys"),
            Some("ON")
        ));
        assert!(!allowed(ffi::SQLITE_FUNCTION, None, Some("LOAD_EXTENSION")));
        assert!(allowed(ffi::SQLITE_PRAGMA, Some("table_info"), Some("t")));
        assert!(allowed(ffi::SQLITE_PRAGMA, Some("user_version"), None));
        assert!(allowed(ffi::SQLITE_FUNCTION, None, Some("max")));
        assert!(allowed(ffi::SQLITE_INSERT, Some("t"), None));
        assert!(allowed(ffi::SQLITE_TRANSACTION, Some("BEGIN"), None));
    }
}
