//! Taking due runs one at a time, each taker through an inbox of its own kept for the
//! replica's life ([`Pullers`]). A take is one pull request and its answer; a fetch made
//! its inbox's subscription before and dropped it after, two more protocol messages and
//! two changes of the server's interest graph per run.
//!
//! A pull request for one run ends with exactly one answer on its inbox: the run, or a
//! status (408 when it expired with nothing to take, 409 when the server ended it). An
//! inbox counts the requests it has sent and not yet seen answered, so an answer that
//! comes after its taker gave up (stopped, or timed out below) is read by the inbox's next
//! taker rather than taken for the answer to a later request.

use std::sync::Mutex;
use std::time::Duration;

use anyhow::{Result, anyhow};
use async_nats::jetstream::{self, consumer::PullConsumer, consumer::pull::BatchConfig};
use async_nats::{StatusCode, Subject, Subscriber};
use futures_util::StreamExt;

/// How long past its expiry a request's answer may be late before the request is taken
/// as lost: requests in flight when the connection drops are never answered.
const LOST_AFTER: Duration = Duration::from_secs(5);

/// The replica's inboxes, one per taker at most: a taker borrows one that is idle, or
/// opens one, and gives it back when its take ends however it ends.
pub struct Pullers {
    client: async_nats::Client,
    js: jetstream::Context,
    consumer: PullConsumer,
    idle: Mutex<Vec<Inbox>>,
}

struct Inbox {
    subject: Subject,
    answers: Subscriber,
    /// Requests sent through this inbox not yet answered.
    asked: u32,
}

/// An inbox lent to one take; back to the idle ones when dropped, unless it broke.
struct Lent<'a> {
    pullers: &'a Pullers,
    inbox: Option<Inbox>,
}

impl Drop for Lent<'_> {
    fn drop(&mut self) {
        if let Some(inbox) = self.inbox.take() {
            self.pullers
                .idle
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(inbox);
        }
    }
}

impl Pullers {
    pub fn new(client: async_nats::Client, js: jetstream::Context, consumer: PullConsumer) -> Self {
        Self {
            client,
            js,
            consumer,
            idle: Mutex::new(Vec::new()),
        }
    }

    /// The next due run, waiting at most about `wait`: none when none came.
    pub async fn next(&self, wait: Duration) -> Result<Option<jetstream::Message>> {
        let idle = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let inbox = match idle {
            Some(inbox) => inbox,
            None => {
                let subject = Subject::from(self.client.new_inbox());
                let answers = self
                    .client
                    .subscribe(subject.clone())
                    .await
                    .map_err(|e| anyhow!("subscribing to an inbox: {e}"))?;
                Inbox {
                    subject,
                    answers,
                    asked: 0,
                }
            }
        };
        let mut lent = Lent {
            pullers: self,
            inbox: Some(inbox),
        };
        let inbox = lent.inbox.as_mut().expect("lent until dropped");
        // An answer still owed (its taker gave up) is this take's answer.
        if inbox.asked == 0 {
            let request = BatchConfig {
                batch: 1,
                expires: Some(wait),
                ..Default::default()
            };
            self.consumer
                .request_batch(request, inbox.subject.clone())
                .await
                .map_err(|e| anyhow!("asking for a run: {e}"))?;
            inbox.asked = 1;
        }
        let lost = tokio::time::sleep(wait + LOST_AFTER);
        tokio::pin!(lost);
        loop {
            let answer = tokio::select! {
                answer = inbox.answers.next() => answer,
                _ = &mut lost => {
                    inbox.asked = 0;
                    return Ok(None);
                }
            };
            let Some(message) = answer else {
                // The connection is closed for good: this inbox is of no more use.
                lent.inbox = None;
                return Err(anyhow!("the connection to NATS is closed"));
            };
            match message.status.unwrap_or(StatusCode::OK) {
                StatusCode::IDLE_HEARTBEAT => continue,
                StatusCode::OK => {
                    inbox.asked = inbox.asked.saturating_sub(1);
                    return Ok(Some(jetstream::Message {
                        message,
                        context: self.js.clone(),
                    }));
                }
                StatusCode::TIMEOUT | StatusCode::NOT_FOUND => {
                    inbox.asked = inbox.asked.saturating_sub(1);
                    if inbox.asked == 0 {
                        return Ok(None);
                    }
                }
                status => {
                    inbox.asked = inbox.asked.saturating_sub(1);
                    return Err(anyhow!(
                        "pulling: {status} {}",
                        message.description.as_deref().unwrap_or("")
                    ));
                }
            }
        }
    }
}
