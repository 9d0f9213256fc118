//! Configuration across the cluster: a `PUT`/`PATCH /config` applied on one replica is put
//! into the cluster's object store `TGRUN_<name>_CONFIG` (an object store, not a key-value
//! bucket: async-nats cannot create a key-value bucket on the NATS 2.9 servers Debian
//! ships, "data did not match any variant"); every replica follows it and
//! applies each new configuration as if it had been sent to it (validated first: one its
//! files cannot take is logged and changes nothing there).

use std::sync::Weak;

use std::time::{Duration, UNIX_EPOCH};

use anyhow::Result;
use async_nats::jetstream::{self, object_store::ObjectStore};
use futures_util::StreamExt;
use serde_json::Value;

use super::objects;
use super::replica::Replica;

pub fn bucket_name(cluster: &str) -> String {
    format!("TGRUN_{cluster}_CONFIG")
}

const KEY: &str = "service_config";

pub struct ConfigStore {
    bucket: ObjectStore,
}

impl ConfigStore {
    pub async fn open(js: &jetstream::Context, cluster: &str) -> Result<Self> {
        let bucket = objects::open(
            js,
            &bucket_name(cluster),
            "tgrun: the service configuration every replica runs",
        )
        .await?;
        Ok(Self { bucket })
    }

    /// Shares a configuration this replica has applied.
    pub async fn put(&self, config: &Value) -> Result<()> {
        objects::write(&self.bucket, KEY, &serde_json::to_vec(config)?).await
    }
}

/// Follows the bucket for as long as the service lives. At start, the cluster's last
/// configuration is applied only if it is newer than this replica's own file (a file
/// deployed after it wins); every later one is applied as it comes.
pub async fn follow(store: std::sync::Arc<ConfigStore>, service: Weak<dyn Replica>) {
    let mut failing = false;
    let mut first = true;
    loop {
        match store.bucket.watch_with_history().await {
            Ok(mut watch) => {
                failing = false;
                while let Some(info) = watch.next().await {
                    let Some(service) = service.upgrade() else {
                        return;
                    };
                    let info = match info {
                        Ok(i) if i.name == KEY && !i.deleted => i,
                        Ok(_) => continue,
                        Err(e) => {
                            tracing::warn!("cluster: watching the configuration: {e}");
                            break;
                        }
                    };
                    let written_ns = info.modified.map_or(0, |t| t.unix_timestamp_nanos());
                    if std::mem::take(&mut first) && older_than_file(&*service, written_ns) {
                        tracing::info!(
                            "cluster: this replica's configuration file is newer than the cluster's: kept"
                        );
                        continue;
                    }
                    match objects::read(&store.bucket, KEY).await {
                        Ok(bytes) => apply(&*service, &bytes).await,
                        Err(e) => tracing::error!("cluster: {e:#}"),
                    }
                }
            }
            Err(e) if !failing => {
                tracing::error!(
                    "cluster: cannot follow the configuration: {e}; retrying every 2 s"
                );
                failing = true;
            }
            Err(_) => {}
        }
        if service.strong_count() == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

fn older_than_file(service: &dyn Replica, written_ns: i128) -> bool {
    let file = service.config_file();
    let Some(modified) = std::fs::metadata(file).and_then(|m| m.modified()).ok() else {
        return false;
    };
    let file_ns = modified
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i128);
    written_ns < file_ns
}

async fn apply(service: &dyn Replica, bytes: &[u8]) {
    let config: Value = match serde_json::from_slice(bytes) {
        Ok(v) => v,
        Err(e) => {
            tracing::error!("cluster: the cluster's configuration is not JSON: {e}; ignored");
            return;
        }
    };
    // This replica's own change, or one it has applied already.
    if service.config_in_force() == config {
        return;
    }
    match service.apply_config(config).await {
        Ok(changes) => {
            tracing::info!(
                changes,
                "cluster: applied the configuration changed on another replica"
            )
        }
        Err(e) => tracing::error!(
            "cluster: the configuration changed on another replica cannot apply here: {e:#}"
        ),
    }
}
