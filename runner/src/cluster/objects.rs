//! The JetStream object stores a cluster keeps (modules, configuration): opened or
//! created by whichever replica comes first, read whole.

use anyhow::{Result, anyhow};
use async_nats::jetstream::{self, object_store::ObjectStore};
use tokio::io::AsyncReadExt;

/// The bucket `name`, created if no replica has made it yet.
pub async fn open(js: &jetstream::Context, name: &str, description: &str) -> Result<ObjectStore> {
    match js.get_object_store(name).await {
        Ok(b) => Ok(b),
        Err(_) => js
            .create_object_store(jetstream::object_store::Config {
                bucket: name.to_owned(),
                description: Some(description.to_owned()),
                ..Default::default()
            })
            .await
            .map_err(|e| anyhow!("creating the object store {name}: {e}")),
    }
}

/// The object `key`, whole.
pub async fn read(bucket: &ObjectStore, key: &str) -> Result<Vec<u8>> {
    let mut object = bucket
        .get(key)
        .await
        .map_err(|e| anyhow!("reading '{key}' from the cluster's object store: {e}"))?;
    let mut bytes = Vec::new();
    object.read_to_end(&mut bytes).await?;
    Ok(bytes)
}

/// Puts `bytes` as the object `key`.
pub async fn write(bucket: &ObjectStore, key: &str, bytes: &[u8]) -> Result<()> {
    bucket
        .put(key, &mut &bytes[..])
        .await
        .map_err(|e| anyhow!("putting '{key}' into the cluster's object store: {e}"))?;
    Ok(())
}
