//! What a replica knows of each job's record of live runs ([`Known`]): the record and its
//! stream sequence as it last read or wrote it, or as the live stream's feed told it of
//! another replica's write.
//!
//! A compare-and-set on a record another replica changed since is refused, and the replica
//! must read and write again: three round trips instead of one. With every replica taking
//! runs of every job, that was most admits at three replicas. The feed (an ordered push
//! consumer of the live stream, new messages only) keeps the records current, so a change
//! usually starts from the record as it is. It is only a hint: the compare-and-set still
//! decides, and a feed that lags or breaks costs round trips, never a wrong decision.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use async_nats::jetstream::consumer::DeliverPolicy;
use async_nats::jetstream::consumer::push::OrderedConfig;
use async_nats::jetstream::stream;
use futures_util::StreamExt;
use tokio_util::sync::CancellationToken;

use super::live::Record;

/// Jobs whose record a replica keeps; past this it forgets them all (jobs dropped from
/// the configuration must not pile up) and reads each again once. The feed adds no job
/// past it.
const KNOWN_MAX: usize = 4_096;
/// How long the feed waits before starting again after it broke (NATS away, stream gone).
const FEED_AGAIN: Duration = Duration::from_secs(1);

type Records = Mutex<HashMap<String, (Record, u64)>>;

/// What keeping a job not known yet does when `KNOWN_MAX` jobs are.
enum Full {
    /// Forgets them all first (this replica's own read or write).
    Forget,
    /// Keeps nothing (the feed's news of a job this replica may never run).
    Skip,
}

/// Each job's record by subject, with the stream sequence it is at.
#[derive(Default)]
pub struct Known {
    records: Arc<Records>,
    /// Ends the feed (and its hold on the connection) with this.
    stop: CancellationToken,
}

impl Drop for Known {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl Known {
    fn lock(records: &Records) -> std::sync::MutexGuard<'_, HashMap<String, (Record, u64)>> {
        records.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The job's record as last known, taken out (a consumer changing it at the same time
    /// reads its own).
    pub fn recall(&self, subject: &str) -> Option<(Record, u64)> {
        Self::lock(&self.records).remove(subject)
    }

    /// The stream sequence the job's record is known at.
    pub fn sequence(&self, subject: &str) -> Option<u64> {
        Self::lock(&self.records).get(subject).map(|(_, seq)| *seq)
    }

    /// Keeps `record` at `seq` unless a later one is known already (the feed may bring
    /// another replica's write before this replica's own answer).
    pub fn remember(&self, subject: String, record: Record, seq: u64) {
        Self::keep(&self.records, subject, record, seq, Full::Forget);
    }

    /// Whether a record of `subject` at `seq` would be kept: newer than what is known, or
    /// of a job not known yet while there is room. Asked before the feed parses one.
    fn wants(records: &Records, subject: &str, seq: u64) -> bool {
        let known = Self::lock(records);
        match known.get(subject) {
            Some((_, at)) => *at < seq,
            None => known.len() < KNOWN_MAX,
        }
    }

    /// Keeps `record` at `seq` when it is newer than what is known; a job not known yet
    /// when `KNOWN_MAX` are is kept after forgetting them all, or not at all.
    fn keep(records: &Records, subject: String, record: Record, seq: u64, full: Full) {
        let mut known = Self::lock(records);
        match known.get(&subject) {
            Some((_, at)) if *at >= seq => return,
            None if known.len() >= KNOWN_MAX => match full {
                Full::Forget => known.clear(),
                Full::Skip => return,
            },
            _ => {}
        }
        known.insert(subject, (record, seq));
    }

    /// Follows every write to `stream` under `prefix` from now on, until this is dropped.
    pub fn follow(&self, stream: stream::Stream, client: async_nats::Client, prefix: String) {
        let records = Arc::downgrade(&self.records);
        let stop = self.stop.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    fed = feed(&stream, &client, &prefix, &records) => if let Err(e) = fed {
                        tracing::debug!("cluster: the live runs' feed stopped: {e}; starting again");
                    },
                }
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(FEED_AGAIN) => {}
                }
            }
        });
    }
}

/// One ordered consumer's life: answers when it breaks or the records are dropped.
async fn feed(
    stream: &stream::Stream,
    client: &async_nats::Client,
    prefix: &str,
    records: &Weak<Records>,
) -> anyhow::Result<()> {
    let consumer = stream
        .create_consumer(OrderedConfig {
            deliver_subject: client.new_inbox(),
            filter_subject: format!("{prefix}.>"),
            deliver_policy: DeliverPolicy::New,
            ..Default::default()
        })
        .await?;
    let mut messages = consumer.messages().await?;
    while let Some(message) = messages.next().await {
        let message = message?;
        let Some(records) = records.upgrade() else {
            return Ok(());
        };
        let Ok(seq) = message.info().map(|i| i.stream_sequence) else {
            continue;
        };
        // This replica's own writes come back too, already known: not parsed again.
        if !Known::wants(&records, &message.subject, seq) {
            continue;
        }
        let Ok(record) = serde_json::from_slice::<Record>(&message.payload) else {
            continue;
        };
        Known::keep(
            &records,
            message.subject.to_string(),
            record,
            seq,
            Full::Skip,
        );
    }
    Ok(())
}
