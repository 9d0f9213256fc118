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

/// The largest object read: a module upload's limit (the configuration is far smaller).
pub const MAX_OBJECT_BYTES: u64 = crate::modules::MAX_MODULE_BYTES as u64;

/// The object `key`, whole, if it is at most [`MAX_OBJECT_BYTES`]: whoever can write to the
/// store cannot make a replica read without end.
pub async fn read(bucket: &ObjectStore, key: &str) -> Result<Vec<u8>> {
    let object = bucket
        .get(key)
        .await
        .map_err(|e| anyhow!("reading '{key}' from the cluster's object store: {e}"))?;
    let mut bytes = Vec::new();
    object
        .take(MAX_OBJECT_BYTES + 1)
        .read_to_end(&mut bytes)
        .await?;
    if bytes.len() as u64 > MAX_OBJECT_BYTES {
        return Err(anyhow!(
            "'{key}' in the cluster's object store is larger than {MAX_OBJECT_BYTES} bytes; not read"
        ));
    }
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
