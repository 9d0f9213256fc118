//! A replica's connection to its cluster ([`Cluster`]): one JetStream work-queue stream per
//! cluster, which every replica's producers publish due runs to and every replica's
//! consumers pull from, beside the stores of modules, configuration and live runs.
//!
//! JetStream does what a home-made protocol would get wrong: its de-duplication window
//! keeps one message per `Nats-Msg-Id` however many replicas publish it, the work-queue
//! retention deletes a message once acknowledged, and a message not acknowledged within
//! `ack_wait` (its replica died) is delivered again to another consumer.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use async_nats::jetstream::{self, consumer::PullConsumer, stream};

use super::ClusterSettings;
use super::modules::ModuleStore;
use super::wire::WireRun;

/// How long JetStream remembers a message id: replicas publishing the same due time
/// must do so within it (they do within milliseconds; the window covers clock skew and a
/// replica that is briefly behind).
pub const DEDUP_WINDOW: Duration = Duration::from_secs(120);
/// Due runs nobody took within this are dropped by the stream.
pub const MAX_AGE: Duration = Duration::from_secs(3600);
/// The durable consumer every replica pulls through.
const CONSUMER: &str = "runners";
/// How many times a replica tries to find or create the cluster's stream and stores.
const OPEN_TRIES: u64 = 3;
/// Due runs published and not yet acknowledged, at most, all producers together.
/// async-nats holds one of its 5,000 permits for every publish whose acknowledgement is
/// not awaited, and waits for a free one before sending the next: producers sending more
/// than that between them before awaiting any would wait for each other for ever.
pub const PUBLISHING: usize = 1_024;

pub struct Cluster {
    client: async_nats::Client,
    js: jetstream::Context,
    subject: String,
    consumer: PullConsumer,
    /// The inboxes runs are taken through.
    pullers: super::pull::Pullers,
    pub settings: ClusterSettings,
    /// Where module uploads are shared.
    pub modules: Arc<ModuleStore>,
    /// Where configuration changes are shared.
    pub config: Arc<super::config::ConfigStore>,
    /// Which runs are live in the cluster (the overlap policy across replicas).
    pub live: Arc<super::live::LiveRuns>,
    /// Due runs not yet published because NATS did not answer.
    pub outbox: super::outbox::Outbox,
    /// Whether publishing fails now: logged once when it starts and once when it ends,
    /// not once per due run (a thousand jobs a second would flood the log).
    publish_failing: AtomicBool,
    /// Permits for due runs in flight ([`PUBLISHING`]): a batch takes all it needs at
    /// once, so no producer holds some while waiting for more.
    publishing: tokio::sync::Semaphore,
}

/// What a publish did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Published {
    New,
    /// Another replica had published this due run already.
    Duplicate,
}

pub fn stream_name(cluster: &str) -> String {
    format!("TGRUN_{cluster}_RUNS")
}

impl Cluster {
    /// Connects to the cluster's NATS servers and makes sure the stream and the durable
    /// consumer exist (the first replica creates them; the others find them).
    pub async fn connect(settings: &ClusterSettings) -> Result<Self> {
        let servers = settings.servers.join(",");
        let client = super::auth::options(&settings.auth, settings.tls.as_ref())
            .await?
            .name(format!("tgrun {}", settings.name))
            .connection_timeout(Duration::from_secs(5))
            .connect(servers.as_str())
            .await
            .map_err(|e| anyhow!("{e}{}", super::auth::hint(&e.to_string())))
            .with_context(|| format!("connecting to NATS at {servers} (runner.cluster.nats)"))?;
        let js = jetstream::new(client.clone());
        // Replicas started together create the same stream and stores at the same
        // moment; one that loses such a race is refused, and finds on a second try what
        // the winner made.
        let mut tries = 0;
        loop {
            tries += 1;
            match Self::open(client.clone(), js.clone(), settings).await {
                Ok(cluster) => return Ok(cluster),
                Err(e) if tries < OPEN_TRIES => {
                    tracing::warn!("cluster: {e:#}; trying again");
                    tokio::time::sleep(Duration::from_millis(250 * tries)).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// The cluster's stream, consumer and stores, each found or created.
    async fn open(
        client: async_nats::Client,
        js: jetstream::Context,
        settings: &ClusterSettings,
    ) -> Result<Self> {
        let subject = format!("tgrun.{}.runs", settings.name);
        let name = stream_name(&settings.name);
        let stream = js
            .get_or_create_stream(stream::Config {
                name: name.clone(),
                subjects: vec![subject.clone()],
                retention: stream::RetentionPolicy::WorkQueue,
                storage: stream::StorageType::File,
                duplicate_window: DEDUP_WINDOW,
                max_age: MAX_AGE,
                ..Default::default()
            })
            .await
            .map_err(|e| anyhow!("creating the JetStream stream {name}: {e}"))?;
        let consumer: PullConsumer = stream
            .get_or_create_consumer(
                CONSUMER,
                jetstream::consumer::pull::Config {
                    durable_name: Some(CONSUMER.into()),
                    ack_policy: jetstream::consumer::AckPolicy::Explicit,
                    ack_wait: settings.ack_wait,
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| anyhow!("creating the consumer {CONSUMER} of {name}: {e}"))?;
        let modules = Arc::new(ModuleStore::open(&js, &settings.name).await?);
        let config = Arc::new(super::config::ConfigStore::open(&js, &settings.name).await?);
        let live = Arc::new(
            super::live::LiveRuns::open(&client, &js, &settings.name, settings.ack_wait).await?,
        );
        Ok(Self {
            live,
            outbox: Default::default(),
            publish_failing: AtomicBool::new(false),
            publishing: tokio::sync::Semaphore::new(PUBLISHING),
            config,
            modules,
            pullers: super::pull::Pullers::new(client.clone(), js.clone(), consumer.clone()),
            client,
            js,
            subject,
            consumer,
            settings: settings.clone(),
        })
    }

    /// Publishes a due time's runs: a batch sent first, then its acknowledgements awaited
    /// together (one round trip for up to [`PUBLISHING`] runs, not one per job). Answers
    /// each run's outcome in order.
    pub async fn publish(&self, runs: &[WireRun]) -> Vec<Result<Published>> {
        let mut outcomes = Vec::with_capacity(runs.len());
        for batch in runs.chunks(PUBLISHING) {
            let _permits = self
                .publishing
                .acquire_many(batch.len() as u32)
                .await
                .expect("the publishing semaphore is never closed");
            let mut sent = Vec::with_capacity(batch.len());
            for run in batch {
                let message = jetstream::message::PublishMessage::build()
                    .payload(serde_json::to_vec(run).unwrap_or_default().into())
                    .message_id(run.id());
                sent.push(self.js.send_publish(self.subject.clone(), message).await);
            }
            for (run, sent) in batch.iter().zip(sent) {
                let ack = match sent {
                    Ok(ack) => ack
                        .await
                        .map_err(|e| anyhow!("publishing {}: {e}", run.id())),
                    Err(e) => Err(anyhow!("publishing {}: {e}", run.id())),
                };
                outcomes.push(ack.map(|a| {
                    if a.duplicate {
                        Published::Duplicate
                    } else {
                        Published::New
                    }
                }));
            }
        }
        outcomes
    }

    /// Logs the first failure to publish of an outage and the first success after it.
    pub fn note_publishing(&self, failure: Option<&anyhow::Error>) {
        let was = self
            .publish_failing
            .swap(failure.is_some(), Ordering::Relaxed);
        match failure {
            Some(e) if !was => tracing::error!(
                "cluster: due runs cannot be published: {e:#}; they are kept and published when NATS answers (up to {} s after their due time)",
                (DEDUP_WINDOW / 2).as_secs()
            ),
            Some(e) => tracing::debug!("cluster: publishing: {e:#}"),
            None if was => tracing::info!("cluster: publishing due runs again"),
            None => {}
        }
    }

    /// The next due run for this replica, waiting at most about `wait`.
    pub async fn next(&self, wait: Duration) -> Result<Option<jetstream::Message>> {
        self.pullers
            .next(wait)
            .await
            .map_err(|e| anyhow!("pulling from {}: {e:#}", stream_name(&self.settings.name)))
    }

    /// Due runs in the stream that no replica has taken yet.
    pub async fn waiting(&self) -> Result<u64> {
        let info = self.consumer.get_info().await.map_err(|e| {
            anyhow!(
                "asking {} for its depth: {e}",
                stream_name(&self.settings.name)
            )
        })?;
        Ok(info.num_pending)
    }

    /// Whether the NATS connection is up.
    pub fn connected(&self) -> bool {
        self.client.connection_state() == async_nats::connection::State::Connected
    }

    /// Deletes the cluster's streams, module store and configuration bucket (tests, and an
    /// operator retiring a cluster).
    pub async fn delete(settings: &ClusterSettings) -> Result<()> {
        let client = super::auth::options(&settings.auth, settings.tls.as_ref())
            .await?
            .connect(settings.servers.join(","))
            .await?;
        let js = jetstream::new(client);
        js.delete_stream(stream_name(&settings.name))
            .await
            .map_err(|e| anyhow!("deleting {}: {e}", stream_name(&settings.name)))?;
        let modules = super::modules::bucket_name(&settings.name);
        // Absent when no replica got as far as creating them.
        let _ = js
            .delete_stream(super::live::stream_name(&settings.name))
            .await;
        let _ = js.delete_object_store(&modules).await;
        let _ = js
            .delete_object_store(super::config::bucket_name(&settings.name))
            .await;
        Ok(())
    }
}
