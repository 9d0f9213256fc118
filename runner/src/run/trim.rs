//! Host memory a run made the runner allocate goes back to the kernel after the run, not
//! only to the allocator.
//!
//! A freed buffer goes back to glibc's malloc, which keeps its pages resident when they sit
//! among live allocations or in another thread's arena: 100 runs each reading 100,000 rows
//! (8 at once) left the runner 57 MiB larger for good, though nothing of theirs was live.
//! After a host call that held at least [`LARGE`] for a run, a trim is asked; one task per
//! service trims at most once every [`EVERY`], off the runs' path (`malloc_trim` returns
//! every arena's free pages to the kernel). The one `unsafe` of `run/` is here.

#![allow(unsafe_code)]

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

/// A call that held this much for a run asks for a trim once it has given it back.
pub const LARGE: usize = 1 << 20;
/// At most one trim this often.
const EVERY: Duration = Duration::from_secs(1);

static WANTED: AtomicBool = AtomicBool::new(false);

/// Asks for a trim: a call gave back [`LARGE`] or more.
pub fn ask() {
    WANTED.store(true, Ordering::Relaxed);
}

/// Trims when asked, until `stop`.
pub async fn trimmer(stop: CancellationToken) {
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(EVERY) => {}
        }
        if WANTED.swap(false, Ordering::Relaxed) {
            // It walks and locks every arena: a blocking thread's work, not a worker's.
            let _ = tokio::task::spawn_blocking(trim).await;
        }
    }
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn trim() {
    // SAFETY: malloc_trim only returns free memory to the kernel; it is thread-safe.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn trim() {}
