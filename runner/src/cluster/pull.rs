//! Taking due runs one at a time, each taker through an inbox kept from one take to the
//! next ([`Pullers`]). A take is one pull request and its answer; a fetch made its inbox's
//! subscription before and dropped it after, two more protocol messages and two changes
//! of the server's interest graph per run.
//!
//! A pull request for one run ends with exactly one answer on its inbox: the run, or a
//! status (408 when it expired with nothing to take, 409 when the server ended it). Only
//! an inbox whose request was answered goes back to be used again. A take given up while
//! its request waits (its consumer stopped) drops its inbox: JetStream then drops the
//! request, as it does any whose inbox nobody listens to, so a run is never handed to an
//! inbox nobody reads (it would wait there for `ack_wait` before going elsewhere).

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
/// opens one, and gives it back when its request was answered (see [`Lent`]).
pub struct Pullers {
    client: async_nats::Client,
    js: jetstream::Context,
    consumer: PullConsumer,
    idle: Mutex<Vec<Inbox>>,
}

struct Inbox {
    subject: Subject,
    answers: Subscriber,
}

/// An inbox lent to one take: back to the idle ones when dropped with its request
/// answered; else dropped with it (unsubscribed).
struct Lent<'a> {
    pullers: &'a Pullers,
    inbox: Option<Inbox>,
    /// A request sent through it is not answered yet.
    asked: bool,
}

impl Drop for Lent<'_> {
    fn drop(&mut self) {
        if let Some(inbox) = self.inbox.take().filter(|_| !self.asked) {
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
                Inbox { subject, answers }
            }
        };
        let mut lent = Lent {
            pullers: self,
            inbox: Some(inbox),
            asked: false,
        };
        let inbox = lent.inbox.as_mut().expect("lent until dropped");
        let request = BatchConfig {
            batch: 1,
            expires: Some(wait),
            ..Default::default()
        };
        self.consumer
            .request_batch(request, inbox.subject.clone())
            .await
            .map_err(|e| anyhow!("asking for a run: {e}"))?;
        lent.asked = true;
        let lost = tokio::time::sleep(wait + LOST_AFTER);
        tokio::pin!(lost);
        loop {
            let answer = tokio::select! {
                answer = inbox.answers.next() => answer,
                // Never answered (the connection dropped it): the inbox goes with it, so
                // that an answer coming after all finds nobody listening.
                _ = &mut lost => return Ok(None),
            };
            let Some(message) = answer else {
                // The connection is closed for good: the inbox goes with it.
                return Err(anyhow!("the connection to NATS is closed"));
            };
            match message.status.unwrap_or(StatusCode::OK) {
                StatusCode::IDLE_HEARTBEAT => continue,
                StatusCode::OK => {
                    lent.asked = false;
                    return Ok(Some(jetstream::Message {
                        message,
                        context: self.js.clone(),
                    }));
                }
                StatusCode::TIMEOUT | StatusCode::NOT_FOUND => {
                    lent.asked = false;
                    return Ok(None);
                }
                status => {
                    lent.asked = false;
                    return Err(anyhow!(
                        "pulling: {status} {}",
                        message.description.as_deref().unwrap_or("")
                    ));
                }
            }
        }
    }
}
