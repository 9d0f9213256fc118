//! Watching the modules directory: a changed `<name>.wasm` is loaded within a second.
//!
//! Polling file stamps (size, modification time) rather than inotify: it sees the usual
//! write-to-temp-then-rename and editors that write twice alike, works on every file
//! system, and costs one `stat` per module per poll. A change is acted on once the stamp
//! has held still for one poll, so a file still being written is not compiled half-done.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::{FileStamp, ModuleRegistry};
use crate::sandbox::component::World;

/// Time between two looks at the files.
pub const POLL: Duration = Duration::from_millis(200);

/// Told of each new version loaded from a file: its module's name and bytes (in a
/// cluster, it is shared with the other replicas).
pub type OnNewVersion = Arc<dyn Fn(String, Arc<[u8]>) + Send + Sync>;

/// Watches the files of `registry` until `cancel`.
pub async fn watch<W: World>(
    registry: Arc<ModuleRegistry<W>>,
    cancel: CancellationToken,
    on_new: Option<OnNewVersion>,
) {
    let mut pending: HashMap<String, FileStamp> = HashMap::new();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(POLL) => {}
            _ = cancel.cancelled() => return,
        }
        for name in registry.names() {
            let Some(stamp) = registry.path_of(&name).and_then(|p| FileStamp::of(&p)) else {
                pending.remove(&name);
                continue;
            };
            if registry.seen(&name).as_ref() == Some(&stamp) {
                pending.remove(&name);
                continue;
            }
            if pending.get(&name) == Some(&stamp) {
                pending.remove(&name);
                if let (Some(bytes), Some(tell)) = (registry.refresh(&name).await, &on_new) {
                    tell(name, bytes);
                }
            } else {
                pending.insert(name, stamp);
            }
        }
    }
}
