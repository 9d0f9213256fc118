//! A guest's stdout or stderr: kept in memory up to a cap, the rest dropped and counted.
//!
//! wasmtime-wasi's `MemoryOutputPipe` traps the guest when full; a job that prints too
//! much is not broken, so here writes past the cap succeed and are only counted.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

use crate::run::budget::{Budget, Held};

#[derive(Debug, Default)]
struct Buffer {
    kept: Vec<u8>,
    dropped: u64,
    /// What `kept` costs the run's memory budget.
    held: Held,
}

/// A capped in-memory output; clones share the same buffer.
#[derive(Debug, Clone)]
pub struct CappedOutput {
    cap: usize,
    buffer: Arc<Mutex<Buffer>>,
}

impl CappedOutput {
    pub fn new(cap: usize) -> Self {
        Self {
            cap,
            buffer: Arc::default(),
        }
    }

    /// Charges what it keeps to a run's memory budget (`memory_mb`): past the budget,
    /// bytes are dropped as past the cap.
    pub fn charged_to(self, budget: Arc<Budget>) -> Self {
        self.buffer.lock().unwrap_or_else(|e| e.into_inner()).held = Held::on(budget);
        self
    }

    /// Appends `bytes`: kept up to the cap and the run's budget, the rest counted as
    /// dropped.
    pub(crate) fn append(&self, bytes: &[u8]) {
        let mut b = self.buffer.lock().unwrap_or_else(|e| e.into_inner());
        let room = self.cap.saturating_sub(b.kept.len());
        let mut take = room.min(bytes.len());
        if take > 0 && b.held.hold(take).is_err() {
            take = 0;
        }
        b.kept.extend_from_slice(&bytes[..take]);
        b.dropped += (bytes.len() - take) as u64;
    }

    /// What was kept, as lines (lossy UTF-8), and how many bytes were dropped.
    pub fn take_lines(&self) -> (Vec<String>, u64) {
        let mut b = self.buffer.lock().unwrap_or_else(|e| e.into_inner());
        let kept = std::mem::take(&mut b.kept);
        b.held.release();
        let text = String::from_utf8_lossy(&kept);
        let lines = text.lines().map(str::to_owned).collect();
        (lines, b.dropped)
    }

    /// Nothing was written to it, kept or dropped.
    pub(crate) fn is_untouched(&self) -> bool {
        let b = self.buffer.lock().unwrap_or_else(|e| e.into_inner());
        b.kept.is_empty() && b.dropped == 0
    }
}

impl IsTerminal for CappedOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for CappedOutput {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for CappedOutput {
    async fn ready(&mut self) {}
}

impl OutputStream for CappedOutput {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.append(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        // Always willing: the cap drops bytes, it never blocks or closes the stream.
        Ok(64 * 1024)
    }
}

impl AsyncWrite for CappedOutput {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.append(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_up_to_the_cap_and_counts_the_rest() {
        let out = CappedOutput::new(10);
        out.append(b"hello\nwor");
        out.append(b"ld and more");
        let (lines, dropped) = out.take_lines();
        assert_eq!(lines, vec!["hello", "worl"]);
        assert_eq!(dropped, 10);
    }

    #[test]
    fn keeps_within_the_runs_budget_and_gives_back_when_taken() {
        let budget = Budget::new(8);
        let out = CappedOutput::new(100).charged_to(budget.clone());
        out.append(b"hello\n");
        out.append(b"world\n");
        assert_eq!(budget.used(), 6);
        let (lines, dropped) = out.take_lines();
        assert_eq!((lines, dropped), (vec!["hello".to_owned()], 6));
        assert_eq!(budget.used(), 0);
    }
}
