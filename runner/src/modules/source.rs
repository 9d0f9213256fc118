//! A loaded version's bytes, kept where they cost no memory: a file of the compiled-code
//! cache's `sources/`, named by its content and written once, read back when a rollback or
//! another replica needs them. In memory only when there is no cache (a Python component
//! is 30 MB; a module's current and previous versions were both held).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::sandbox::component::content_hash;

/// Files kept at most in `sources/`; the least recently kept go first.
const MAX_KEPT: usize = 256;

pub(crate) struct Source {
    /// The SHA-256 of the bytes, hex.
    pub hash: String,
    kept: Kept,
}

enum Kept {
    File(PathBuf),
    Memory(Arc<[u8]>),
}

impl Source {
    /// `bytes` (whose SHA-256 is `hash`) kept in `cache_dir`'s `sources/`, or in memory
    /// without one or when it cannot be written.
    pub fn keep(bytes: Arc<[u8]>, hash: String, cache_dir: Option<&Path>) -> Self {
        let Some(dir) = cache_dir.map(|d| d.join("sources")) else {
            return Self::in_memory(bytes, hash);
        };
        let path = dir.join(format!("{hash}.wasm"));
        // Written even when there: a file changed or cut since is made whole again, and
        // the newest is the last the trim removes.
        let kept = std::fs::create_dir_all(&dir)
            .and_then(|()| crate::config::atomic::write(&path, &bytes));
        match kept {
            Ok(()) => {
                trim(&dir);
                Self {
                    hash,
                    kept: Kept::File(path),
                }
            }
            Err(e) => {
                tracing::warn!(
                    "keeping a module's bytes in {}: {e}; they stay in memory",
                    path.display()
                );
                Self::in_memory(bytes, hash)
            }
        }
    }

    fn in_memory(bytes: Arc<[u8]>, hash: String) -> Self {
        Self {
            hash,
            kept: Kept::Memory(bytes),
        }
    }

    /// The bytes again, checked against their hash (a kept file removed or changed since
    /// is an error naming it, never another module's bytes).
    pub fn bytes(&self) -> std::io::Result<Arc<[u8]>> {
        match &self.kept {
            Kept::Memory(b) => Ok(b.clone()),
            Kept::File(path) => {
                let bytes = std::fs::read(path)?;
                if content_hash(&bytes) != self.hash {
                    return Err(std::io::Error::other(format!(
                        "{} no longer holds the version's bytes",
                        path.display()
                    )));
                }
                Ok(bytes.into())
            }
        }
    }
}

/// Removes the least recently kept files past [`MAX_KEPT`].
fn trim(dir: &Path) {
    let Ok(read) = std::fs::read_dir(dir) else {
        return;
    };
    let mut files: Vec<(std::time::SystemTime, PathBuf)> = read
        .filter_map(|e| {
            let e = e.ok()?;
            let path = e.path();
            (path.extension()? == "wasm").then_some(())?;
            Some((e.metadata().ok()?.modified().ok()?, path))
        })
        .collect();
    if files.len() <= MAX_KEPT {
        return;
    }
    files.sort_by_key(|f| std::cmp::Reverse(f.0));
    for (_, path) in &files[MAX_KEPT..] {
        let _ = std::fs::remove_file(path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_kept_on_disk_come_back_checked() {
        let dir = tempfile::tempdir().unwrap();
        let bytes: Arc<[u8]> = Arc::from(&b"\0asm component bytes"[..]);
        let hash = content_hash(&bytes);
        let kept = Source::keep(bytes.clone(), hash.clone(), Some(dir.path()));
        assert!(matches!(kept.kept, Kept::File(_)));
        assert_eq!(kept.bytes().unwrap(), bytes);
        let file = dir.path().join("sources").join(format!("{hash}.wasm"));
        std::fs::write(&file, b"other").unwrap();
        let err = kept.bytes().unwrap_err().to_string();
        assert!(err.contains("no longer holds"), "{err}");
        std::fs::remove_file(&file).unwrap();
        assert!(kept.bytes().is_err());
        // Without a cache: in memory.
        let held = Source::keep(bytes.clone(), hash, None);
        assert_eq!(held.bytes().unwrap(), bytes);
    }
}
