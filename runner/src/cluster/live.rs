//! The overlap policy across replicas: which runs of each job are live anywhere in the
//! cluster, kept in JetStream and changed only by compare-and-set.
//!
//! Each job (pipeline, place, name) has one subject in the stream `TGRUN_<name>_LIVE`,
//! which keeps only its latest message: a [`Record`] of the job's live runs (each with a
//! lease its replica renews while it runs) and of the runs waiting behind them (`queue`).
//! A replica changes a record by publishing the new one with
//! `Nats-Expected-Last-Subject-Sequence` set to the one it read, so two replicas deciding
//! at once cannot both win: the loser reads again and decides again. A lease not renewed
//! within `ack_wait` (its replica died) no longer counts. `replace` tells the replica
//! running the previous run to cancel it over a plain NATS subject; should that message
//! be lost, the replica finds out at its next renewal.
//!
//! A replica keeps each job's record as it last read or wrote it, or as the stream's feed
//! told it of another replica's write (`cluster::known`), with its sequence, and tries its
//! next change on that without reading first: admitting a run and releasing it are one
//! round trip each when its record is the latest (the compare-and-set refuses a stale one,
//! and the replica reads and decides again).
//!
//! The decisions themselves are plain functions of a record ([`Record::admit`]), tested
//! without a server.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Result, anyhow, bail};
use async_nats::jetstream::{self, context::PublishErrorKind, stream};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};

use super::WireRun;
use super::connection::MAX_AGE;
use super::known::Known;
use crate::run::cancel::RunCancel;
use crate::run::overlap::{MAX_WAITING, Overlap};

/// How long a run waiting behind a live one (`queue`) is away before it asks again.
pub const WAIT_AGAIN: Duration = Duration::from_millis(500);
/// Attempts at one compare-and-set before giving up (each loss means another replica
/// changed the record in between, and the next read sees its change).
const TRIES: usize = 32;

/// A live run somewhere in the cluster.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Holder {
    /// The run's id on the wire (pipeline, place, job, due time).
    pub id: String,
    /// The run id its replica gave it (the history's).
    pub run_id: String,
    pub scheduled_ms: i64,
    /// The lease: past this (ms since the epoch) without a renewal, the run is taken for
    /// dead with its replica.
    pub until_ms: i64,
    /// Its deliveries that were waits (`queue`), kept for its later attempts (a retry is
    /// delivered again, and attempts are deliveries less waits).
    #[serde(default)]
    pub waits: u32,
}

/// A run waiting for the job's live run to end (`queue`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Waiter {
    pub id: String,
    pub scheduled_ms: i64,
    /// Times it was handed back to wait: its deliveries that were not attempts.
    pub waits: u32,
    /// When it last asked (a waiter that stops asking is forgotten).
    pub seen_ms: i64,
}

/// One job's runs in the cluster.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Record {
    #[serde(default)]
    pub live: Vec<Holder>,
    #[serde(default)]
    pub waiting: Vec<Waiter>,
    /// The latest due time started under `replace`: an older run delivered later (its
    /// replica died) must not replace a newer one.
    #[serde(default)]
    pub newest_ms: i64,
}

/// What the policy decided for a run about to start.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Run it: it is live from now. `waits` of its deliveries were waits, not attempts;
    /// `replaced` are the runs to be told to cancel (`replace`).
    Run { waits: u32, replaced: Vec<Holder> },
    /// Not run, for this reason.
    Skip(String),
    /// Hand it back to wait behind the live run (`queue`).
    Wait,
}

/// What a run asking to start says of itself.
pub struct Asking<'a> {
    pub id: &'a str,
    pub run_id: &'a str,
    pub scheduled_ms: i64,
}

impl Record {
    /// Forgets leases that ran out, and waiters gone longer than the stream keeps a run
    /// (a waiter asks again only when a consumer is free, which under long runs can take a
    /// while; forgetting it sooner would let later runs pass it).
    fn prune(&mut self, now_ms: i64) {
        self.live.retain(|h| h.until_ms >= now_ms);
        let stale = MAX_AGE.as_millis() as i64;
        self.waiting.retain(|w| w.seen_ms + stale >= now_ms);
    }

    /// The waits of `run`'s own earlier attempt, live here (a retry, a hand-back).
    fn own_waits(&self, run: &Asking) -> u32 {
        self.live
            .iter()
            .find(|h| h.id == run.id)
            .map_or(0, |h| h.waits)
    }

    /// Makes `run` live, with its waits so far.
    fn hold(&mut self, run: &Asking, now_ms: i64, lease: Duration, waits: u32) {
        self.live.retain(|h| h.id != run.id);
        self.live.push(Holder {
            id: run.id.to_owned(),
            run_id: run.run_id.to_owned(),
            scheduled_ms: run.scheduled_ms,
            until_ms: now_ms + lease.as_millis() as i64,
            waits,
        });
    }

    /// Decides for `run` under `policy` (not `allow`, which keeps no record) and changes
    /// the record to match. A live run with the asking run's own id is its own earlier
    /// delivery (its replica died): it does not stand in its way.
    pub fn admit(
        &mut self,
        policy: Overlap,
        run: &Asking,
        now_ms: i64,
        lease: Duration,
    ) -> Decision {
        self.prune(now_ms);
        let own_waits = self.own_waits(run);
        match policy {
            Overlap::Allow | Overlap::Skip => {
                if let Some(other) = self.live.iter().find(|h| h.id != run.id) {
                    return Decision::Skip(format!(
                        "skipped: the previous run ({}) is still running on a replica (overlap: skip)",
                        other.run_id
                    ));
                }
                self.hold(run, now_ms, lease, own_waits);
                Decision::Run {
                    waits: own_waits,
                    replaced: Vec::new(),
                }
            }
            Overlap::Queue => {
                let mine = self.waiting.iter().position(|w| w.id == run.id);
                // Runs start in the order of their due times.
                let older_waits = self
                    .waiting
                    .iter()
                    .any(|w| (w.scheduled_ms, w.id.as_str()) < (run.scheduled_ms, run.id));
                let others_live = self.live.iter().any(|h| h.id != run.id);
                // A run whose earlier attempt holds the job (a retry) goes first: the
                // runs waiting wait for it anyway.
                let own_live = self.live.iter().any(|h| h.id == run.id);
                if own_live || (!others_live && !older_waits) {
                    let waits = own_waits + mine.map_or(0, |i| self.waiting.remove(i).waits);
                    self.hold(run, now_ms, lease, waits);
                    return Decision::Run {
                        waits,
                        replaced: Vec::new(),
                    };
                }
                match mine {
                    Some(i) => {
                        let w = &mut self.waiting[i];
                        w.waits += 1;
                        w.seen_ms = now_ms;
                        Decision::Wait
                    }
                    None if self.waiting.len() >= MAX_WAITING => Decision::Skip(format!(
                        "skipped: {MAX_WAITING} runs already wait behind the running one (overlap: queue)"
                    )),
                    None => {
                        self.waiting.push(Waiter {
                            id: run.id.to_owned(),
                            scheduled_ms: run.scheduled_ms,
                            waits: 1,
                            seen_ms: now_ms,
                        });
                        Decision::Wait
                    }
                }
            }
            Overlap::Replace => {
                if self.newest_ms > run.scheduled_ms {
                    return Decision::Skip(
                        "skipped: a later run of the job has started since (overlap: replace)"
                            .into(),
                    );
                }
                let replaced: Vec<Holder> =
                    self.live.drain(..).filter(|h| h.id != run.id).collect();
                self.waiting.clear();
                self.newest_ms = run.scheduled_ms;
                self.hold(run, now_ms, lease, own_waits);
                Decision::Run {
                    waits: own_waits,
                    replaced,
                }
            }
        }
    }

    /// Renews `id`'s lease. Answers false if the run was replaced meanwhile (it must stop);
    /// a lease that ran out (its replica was cut off a while) is taken back.
    fn renew(&mut self, run: &Asking, now_ms: i64, lease: Duration) -> bool {
        if self.newest_ms > run.scheduled_ms {
            self.live.retain(|h| h.id != run.id);
            return false;
        }
        let waits = self.own_waits(run);
        self.hold(run, now_ms, lease, waits);
        true
    }
}

/// A request to cancel a run, to every replica (the one running it acts).
#[derive(Debug, Serialize, Deserialize)]
struct CancelRequest {
    id: String,
    reason: String,
}

pub struct LiveRuns {
    client: async_nats::Client,
    js: jetstream::Context,
    stream: stream::Stream,
    /// The stream's name, for errors.
    name: String,
    prefix: String,
    cancel_subject: String,
    lease: Duration,
    /// This replica's runs under a policy, by wire id, for cancel requests.
    running: Arc<Mutex<HashMap<String, Arc<RunCancel>>>>,
    /// Each job's record (by subject) as this replica last read, wrote or was told of it,
    /// and the stream sequence it is at: where the next change starts.
    known: Known,
    /// Reads and writes of records so far (each a round trip to JetStream).
    round_trips: AtomicU64,
}

pub fn stream_name(cluster: &str) -> String {
    format!("TGRUN_{cluster}_LIVE")
}

/// A subject token for any text (pipeline and job names may hold dots and spaces).
fn token(s: &str) -> String {
    s.bytes().map(|b| format!("{b:02x}")).collect()
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

impl LiveRuns {
    /// Opens (or creates) the cluster's record of live runs and starts answering cancel
    /// requests for this replica's runs.
    pub async fn open(
        client: &async_nats::Client,
        js: &jetstream::Context,
        cluster: &str,
        lease: Duration,
    ) -> Result<Self> {
        let name = stream_name(cluster);
        let prefix = format!("tgrun.{cluster}.live");
        let stream = js
            .get_or_create_stream(stream::Config {
                name: name.clone(),
                subjects: vec![format!("{prefix}.>")],
                max_messages_per_subject: 1,
                storage: stream::StorageType::File,
                ..Default::default()
            })
            .await
            .map_err(|e| anyhow!("creating the JetStream stream {name}: {e}"))?;
        let cancel_subject = format!("tgrun.{cluster}.cancel");
        let running: Arc<Mutex<HashMap<String, Arc<RunCancel>>>> = Default::default();
        let mut requests = client
            .subscribe(cancel_subject.clone())
            .await
            .map_err(|e| anyhow!("subscribing to {cancel_subject}: {e}"))?;
        let mine = running.clone();
        tokio::spawn(async move {
            while let Some(msg) = requests.next().await {
                let Ok(req) = serde_json::from_slice::<CancelRequest>(&msg.payload) else {
                    continue;
                };
                let found = mine
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .get(&req.id)
                    .cloned();
                if let Some(cancel) = found {
                    cancel.cancel(req.reason);
                }
            }
        });
        let known = Known::default();
        known.follow(stream.clone(), client.clone(), prefix.clone());
        Ok(Self {
            client: client.clone(),
            js: js.clone(),
            stream,
            name,
            prefix,
            cancel_subject,
            lease,
            running,
            known,
            round_trips: AtomicU64::new(0),
        })
    }

    fn subject(&self, run: &WireRun) -> String {
        format!(
            "{}.{}.{}.{}",
            self.prefix,
            token(&run.pipeline),
            run.index,
            token(&run.job)
        )
    }

    /// The job's record and the stream sequence it is at (0: none yet).
    async fn read(&self, subject: &str) -> Result<(Record, u64)> {
        use jetstream::stream::LastRawMessageErrorKind;
        self.round_trips.fetch_add(1, Ordering::Relaxed);
        match self.stream.get_last_raw_message_by_subject(subject).await {
            Ok(m) => {
                let record = serde_json::from_slice(&m.payload).unwrap_or_else(|e| {
                    tracing::warn!(%subject, "cluster: an unreadable record of live runs ({e}); starting it afresh");
                    Record::default()
                });
                Ok((record, m.sequence))
            }
            Err(e) if e.kind() == LastRawMessageErrorKind::NoMessageFound => {
                Ok((Record::default(), 0))
            }
            Err(e) => Err(anyhow!(
                "reading the live runs of {subject} ({}): {e}",
                self.name
            )),
        }
    }

    /// Applies `change` to the job's record and writes it back if it changed, by
    /// compare-and-set on the record's sequence: starting from the record as this replica
    /// last knew it (no read), and whenever another replica wrote first, all again on what
    /// it wrote.
    async fn update<T>(
        &self,
        run: &WireRun,
        mut change: impl FnMut(&mut Record, i64) -> (bool, T),
    ) -> Result<T> {
        let subject = self.subject(run);
        let mut known = self.known.recall(&subject);
        for _ in 0..TRIES {
            let (mut record, seq, read) = match known.take() {
                Some((record, seq)) => (record, seq, false),
                None => {
                    let (record, seq) = self.read(&subject).await?;
                    (record, seq, true)
                }
            };
            let (changed, out) = change(&mut record, now_ms());
            if !changed {
                // Leaving the record be (a skip, say) is decided on what the stream holds,
                // never on what this replica saw last: nothing written would refuse it.
                if !read {
                    continue;
                }
                self.known.remember(subject, record, seq);
                return Ok(out);
            }
            self.round_trips.fetch_add(1, Ordering::Relaxed);
            let message = jetstream::message::PublishMessage::build()
                .payload(serde_json::to_vec(&record)?.into())
                .expected_last_subject_sequence(seq);
            let written = match self.js.send_publish(subject.clone(), message).await {
                Ok(ack) => ack.await,
                Err(e) => bail!("writing the live runs of {}: {e}", run.id()),
            };
            match written {
                Ok(ack) => {
                    self.known.remember(subject, record, ack.sequence);
                    return Ok(out);
                }
                Err(e) if e.kind() == PublishErrorKind::WrongLastSequence => {
                    // The feed may have brought the write that won meanwhile; else a read.
                    known = self.known.recall(&subject).filter(|(_, at)| *at > seq);
                    continue;
                }
                Err(e) => bail!("writing the live runs of {}: {e}", run.id()),
            }
        }
        bail!(
            "the live runs of {} changed {TRIES} times while deciding; try later",
            run.id()
        )
    }

    /// The stream sequence at which this replica knows `run`'s job's record, if it does.
    pub fn known_sequence(&self, run: &WireRun) -> Option<u64> {
        self.known.sequence(&self.subject(run))
    }

    /// Reads and writes of records this replica made so far: one each way per run when
    /// it starts from the record as it is.
    pub fn round_trips(&self) -> u64 {
        self.round_trips.load(Ordering::Relaxed)
    }

    /// Decides whether `run` starts now under `policy`; a run that starts is live in the
    /// cluster until [`LiveRuns::release`]. Runs it replaces are told to cancel.
    pub async fn admit(&self, policy: Overlap, run: &WireRun, run_id: &str) -> Result<Decision> {
        let id = run.id();
        let asking = Asking {
            id: &id,
            run_id,
            scheduled_ms: run.scheduled_ms,
        };
        let decision = self
            .update(run, |record, now| {
                let before = record.clone();
                let decision = record.admit(policy, &asking, now, self.lease);
                (*record != before, decision)
            })
            .await?;
        if let Decision::Run { replaced, .. } = &decision {
            for old in replaced {
                let request = CancelRequest {
                    id: old.id.clone(),
                    reason: format!("replaced by the run {run_id} (overlap: replace)"),
                };
                let _ = self
                    .client
                    .publish(
                        self.cancel_subject.clone(),
                        serde_json::to_vec(&request)?.into(),
                    )
                    .await;
            }
        }
        Ok(decision)
    }

    /// Renews a live run's lease, for `extra` longer than usual (a retry's backoff); false
    /// if it was replaced meanwhile.
    pub async fn renew(&self, run: &WireRun, run_id: &str, extra: Duration) -> Result<bool> {
        let id = run.id();
        let asking = Asking {
            id: &id,
            run_id,
            scheduled_ms: run.scheduled_ms,
        };
        self.update(run, |record, now| {
            let before = record.clone();
            let held = record.renew(&asking, now, self.lease + extra);
            (*record != before, held)
        })
        .await
    }

    /// The run has ended: no longer live.
    pub async fn release(&self, run: &WireRun) -> Result<()> {
        let id = run.id();
        self.update(run, |record, _| {
            let before = record.live.len();
            record.live.retain(|h| h.id != id);
            (record.live.len() != before, ())
        })
        .await
    }

    /// While `cancel` is tracked, a cancel request for `id` reaches it.
    pub fn track(&self, id: String, cancel: Arc<RunCancel>) {
        self.running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id, cancel);
    }

    pub fn untrack(&self, id: &str) {
        self.running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LEASE: Duration = Duration::from_secs(30);

    fn asking(id: &str, scheduled_ms: i64) -> Asking<'_> {
        Asking {
            id,
            run_id: "r",
            scheduled_ms,
        }
    }

    fn runs(d: &Decision) -> bool {
        matches!(d, Decision::Run { .. })
    }

    #[test]
    fn skip_lets_one_run_live_and_a_dead_replicas_lease_runs_out() {
        let mut r = Record::default();
        assert!(runs(&r.admit(Overlap::Skip, &asking("a", 1), 0, LEASE)));
        let d = r.admit(Overlap::Skip, &asking("b", 2), 10, LEASE);
        assert!(
            matches!(&d, Decision::Skip(why) if why.contains("overlap: skip")),
            "{d:?}"
        );
        // The same run delivered again (its replica died) is not in its own way.
        assert!(runs(&r.admit(Overlap::Skip, &asking("a", 1), 20, LEASE)));
        // Past the lease, a run starts whatever the record says.
        assert!(runs(&r.admit(
            Overlap::Skip,
            &asking("c", 3),
            20 + 30_001,
            LEASE
        )));
        assert_eq!(r.live.len(), 1);
        assert_eq!(r.live[0].id, "c");
    }

    #[test]
    fn queue_holds_runs_back_in_due_order_and_counts_their_waits() {
        let mut r = Record::default();
        assert!(runs(&r.admit(Overlap::Queue, &asking("a", 1), 0, LEASE)));
        // Two arrive behind it, the later first.
        assert_eq!(
            r.admit(Overlap::Queue, &asking("c", 3), 1, LEASE),
            Decision::Wait
        );
        assert_eq!(
            r.admit(Overlap::Queue, &asking("b", 2), 2, LEASE),
            Decision::Wait
        );
        r.live.clear(); // a ended
        // c asks first, but b is due earlier: c waits again.
        assert_eq!(
            r.admit(Overlap::Queue, &asking("c", 3), 3, LEASE),
            Decision::Wait
        );
        assert_eq!(
            r.admit(Overlap::Queue, &asking("b", 2), 4, LEASE),
            Decision::Run {
                waits: 1,
                replaced: vec![]
            }
        );
        r.live.clear();
        assert_eq!(
            r.admit(Overlap::Queue, &asking("c", 3), 5, LEASE),
            Decision::Run {
                waits: 2,
                replaced: vec![]
            }
        );
        // c fails and is retried: its delivery again keeps its waits, and it goes before
        // a run due earlier that arrived meanwhile (c's attempt holds the job anyway).
        assert_eq!(
            r.admit(Overlap::Queue, &asking("b0", 2), 6, LEASE),
            Decision::Wait
        );
        assert_eq!(
            r.admit(Overlap::Queue, &asking("c", 3), 7, LEASE),
            Decision::Run {
                waits: 2,
                replaced: vec![]
            }
        );
        r.waiting.clear();
        // At most MAX_WAITING wait behind c; more are skipped.
        let ids: Vec<String> = (0..=MAX_WAITING).map(|i| format!("w{i}")).collect();
        for (i, id) in ids.iter().enumerate() {
            let d = r.admit(Overlap::Queue, &asking(id, 10 + i as i64), 6, LEASE);
            if i < MAX_WAITING {
                assert_eq!(d, Decision::Wait);
            } else {
                assert!(matches!(d, Decision::Skip(_)), "{d:?}");
            }
        }
    }

    #[test]
    fn replace_takes_the_place_of_the_live_run_and_an_older_run_never_does() {
        let mut r = Record::default();
        assert!(runs(&r.admit(Overlap::Replace, &asking("a", 1), 0, LEASE)));
        match r.admit(Overlap::Replace, &asking("b", 2), 1, LEASE) {
            Decision::Run { replaced, .. } => assert_eq!(replaced[0].id, "a"),
            d => panic!("{d:?}"),
        }
        // a's renewal finds it replaced; b's holds.
        assert!(!r.renew(&asking("a", 1), 2, LEASE));
        assert!(r.renew(&asking("b", 2), 2, LEASE));
        // a delivered again later (say its replica died) does not replace b.
        assert!(matches!(
            r.admit(Overlap::Replace, &asking("a", 1), 3, LEASE),
            Decision::Skip(_)
        ));
        assert_eq!(r.live.len(), 1);
    }

    #[test]
    fn names_become_subject_tokens() {
        assert_eq!(token("a.b c"), "612e622063");
    }
}
