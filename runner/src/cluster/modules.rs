//! Modules across the cluster: an upload to any replica, a rollback on it, or a new file in
//! its modules folder goes into the cluster's JetStream object store,
//! `TGRUN_<name>_MODULES`; every replica follows the store and installs each
//! new version it sees (compiled and checked first, as an upload), and a replica that
//! starts later installs the current versions it finds there.

use std::sync::{Arc, Weak};
use std::time::Duration;

use anyhow::Result;
use async_nats::jetstream::{self, object_store::ObjectStore};
use futures_util::StreamExt;

use super::objects;

use super::replica::Replica;
use crate::sandbox::component::content_version;

pub fn bucket_name(cluster: &str) -> String {
    format!("TGRUN_{cluster}_MODULES")
}

pub struct ModuleStore {
    bucket: ObjectStore,
}

impl ModuleStore {
    pub async fn open(js: &jetstream::Context, cluster: &str) -> Result<Self> {
        let bucket = objects::open(
            js,
            &bucket_name(cluster),
            "tgrun: the modules every replica runs",
        )
        .await?;
        Ok(Self { bucket })
    }

    /// Shares a module version that this replica has installed.
    pub async fn put(&self, job: &str, bytes: &[u8]) -> Result<()> {
        objects::write(&self.bucket, job, bytes).await
    }
}

/// What the modules' file watcher calls with a version loaded from a file: shared with
/// every replica, in the background (the watcher does not wait on the network).
pub fn sharer(store: Arc<ModuleStore>) -> crate::modules::watch::OnNewVersion {
    Arc::new(move |job: String, bytes: Arc<[u8]>| {
        let store = store.clone();
        tokio::spawn(async move {
            match store.put(&job, &bytes).await {
                Ok(()) => tracing::info!(
                    job,
                    "cluster: shared the version loaded from this replica's file"
                ),
                Err(e) => tracing::error!(
                    job,
                    "cluster: the version loaded from this replica's file runs here only: {e:#}"
                ),
            }
        });
    })
}

/// Follows the object store for as long as the service lives: each module's latest
/// version first (a replica starting late catches up), then every new one.
pub async fn follow(store: Arc<ModuleStore>, service: Weak<dyn Replica>) {
    let mut failing = false;
    loop {
        match store.bucket.watch_with_history().await {
            Ok(mut watch) => {
                if failing {
                    tracing::info!("cluster: following module versions again");
                    failing = false;
                }
                while let Some(event) = watch.next().await {
                    let Some(service) = service.upgrade() else {
                        return;
                    };
                    match event {
                        Ok(info) if !info.deleted => {
                            install(&store, &*service, &info.name).await;
                        }
                        Ok(_) => {}
                        Err(e) => {
                            tracing::warn!("cluster: watching module versions: {e}");
                            break;
                        }
                    }
                }
            }
            Err(e) if !failing => {
                tracing::error!("cluster: cannot follow module versions: {e}; retrying every 2 s");
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

/// Installs the store's version of `job` unless it runs already.
async fn install(store: &ModuleStore, service: &dyn Replica, job: &str) {
    // A name in the store is checked before it is read or becomes a path.
    if !crate::config::service::valid_job_name(job) {
        tracing::error!(
            job,
            "cluster: an object in the module store whose name cannot name a module; ignored"
        );
        return;
    }
    let bytes = match objects::read(&store.bucket, job).await {
        Ok(b) => b,
        Err(e) => {
            tracing::error!(job, "cluster: {e:#}");
            return;
        }
    };
    let version = content_version(&bytes);
    // This replica's own upload, or a version seen before.
    if service.module_version(job).as_deref() == Some(version.as_str()) {
        return;
    }
    match service.install_module(job, bytes).await {
        Ok(v) => {
            tracing::info!(job, version = %v, "cluster: installed the version uploaded to the cluster")
        }
        Err(why) => {
            tracing::error!(job, version = %version, "cluster: the version uploaded to the cluster was refused here: {why}")
        }
    }
}
