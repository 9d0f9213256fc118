//! Compiled code on disk: one uncompressed file per component and engine settings, loaded
//! by mapping it. A component's code and its memory's initial image are then the file's
//! pages (clean, shared with the page cache, given back by the kernel under pressure, only
//! those touched resident) instead of a copy on the heap: wasmtime's own cache decompresses
//! an entry into memory, 47 MB of anonymous memory for a Python component's 30 MB `.wasm`.
//!
//! A file is written once (to a name of its own, synced, then renamed into place) and never
//! rewritten in place: a mapped file changing under the runner would be a crash. Entries
//! unused the longest are removed past [`MAX_ENTRIES`] or [`MAX_BYTES`]; one that cannot be
//! loaded (another wasmtime, a corrupt file) is compiled again and replaced.
//!
//! Loading native code from a file is trusting the file: the cache directory must be the
//! runner's own (as the modules directory is), as it was with wasmtime's cache.

#![allow(unsafe_code)]

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{Context, Result};
use wasmtime::Engine;
use wasmtime::component::Component;

/// Entries kept at most; past either bound the least recently used go.
const MAX_ENTRIES: usize = 256;
const MAX_BYTES: u64 = 4 << 30;
const SUFFIX: &str = "cwasm";

pub struct CodeCache {
    dir: PathBuf,
    /// This engine's settings, as a name part: code of other settings is another entry.
    engine_key: String,
    hits: AtomicUsize,
    misses: AtomicUsize,
}

impl CodeCache {
    /// The cache in `dir` (made if missing), for `engine`'s code.
    pub fn new(dir: &Path, engine: &Engine) -> Result<Self> {
        // Absolute: the configuration directory may be given relative, the process' working
        // directory is not the cache's concern.
        let dir = std::path::absolute(dir)
            .with_context(|| format!("the compiled-code cache in {}", dir.display()))?
            .join("components");
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("making the compiled-code cache {}", dir.display()))?;
        let mut h = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut h);
        Ok(Self {
            dir,
            engine_key: format!("{:016x}", h.finish()),
            hits: AtomicUsize::new(0),
            misses: AtomicUsize::new(0),
        })
    }

    /// Loads served from the cache, and compiles that filled it.
    pub fn stats(&self) -> (usize, usize) {
        (
            self.hits.load(Ordering::Relaxed),
            self.misses.load(Ordering::Relaxed),
        )
    }

    fn entry(&self, version: &str) -> PathBuf {
        self.dir
            .join(format!("{version}-{}.{SUFFIX}", self.engine_key))
    }

    /// `bytes` compiled, from the cache when an entry of them is there (`version`: their
    /// SHA-256, hex), else compiled and kept. A compile error is the component's.
    pub fn load(&self, engine: &Engine, bytes: &[u8], version: &str) -> Result<Component> {
        let path = self.entry(version);
        if path.is_file() {
            // SAFETY: an entry is a file this cache wrote from `precompile_component`,
            // renamed into place whole and never changed after; wasmtime refuses one of
            // another version or other settings (it is then compiled again below).
            match unsafe { Component::deserialize_file(engine, &path) } {
                Ok(component) => {
                    self.hits.fetch_add(1, Ordering::Relaxed);
                    // Its time of use, for the trim (best effort).
                    let _ = std::fs::File::options()
                        .append(true)
                        .open(&path)
                        .and_then(|f| f.set_modified(std::time::SystemTime::now()));
                    return Ok(component);
                }
                Err(e) => {
                    tracing::warn!(
                        "compiled-code cache: {} cannot be loaded ({e:#}); compiling again",
                        path.display()
                    );
                    let _ = std::fs::remove_file(&path);
                }
            }
        }
        let compiled = engine
            .precompile_component(bytes)
            .map_err(anyhow::Error::from)?;
        self.misses.fetch_add(1, Ordering::Relaxed);
        match self.keep(&path, &compiled) {
            // SAFETY: as above; the file was just written from `compiled`.
            Ok(()) => match unsafe { Component::deserialize_file(engine, &path) } {
                Ok(component) => return Ok(component),
                Err(e) => tracing::warn!(
                    "compiled-code cache: {} cannot be loaded back: {e:#}",
                    path.display()
                ),
            },
            Err(e) => tracing::warn!(
                "compiled-code cache: {} not written ({e:#}); this module's code stays on the heap",
                path.display()
            ),
        }
        // SAFETY: `compiled` is this engine's own output of a moment ago.
        unsafe { Component::deserialize(engine, &compiled) }.map_err(anyhow::Error::from)
    }

    /// [`CodeCache::load`], and the entry's file, open (`None` if the code could not be
    /// kept on file): the large pool binds the component again from it.
    pub fn load_with_file(
        &self,
        engine: &Engine,
        bytes: &[u8],
        version: &str,
    ) -> Result<(Component, Option<std::fs::File>)> {
        let component = self.load(engine, bytes, version)?;
        Ok((component, std::fs::File::open(self.entry(version)).ok()))
    }

    /// Writes `compiled` as the entry `path`, whole and durable before it has the name (a
    /// torn file after a crash would be native code half written), then trims the cache.
    fn keep(&self, path: &Path, compiled: &[u8]) -> Result<()> {
        crate::config::atomic::write(path, compiled)?;
        self.trim();
        Ok(())
    }

    /// Removes the least recently used entries past the bounds. An entry mapped by a
    /// running component stays readable to it (removing a name does not change a file).
    fn trim(&self) {
        let Ok(dir) = std::fs::read_dir(&self.dir) else {
            return;
        };
        let mut entries: Vec<(std::time::SystemTime, u64, PathBuf)> = dir
            .filter_map(|e| {
                let e = e.ok()?;
                let path = e.path();
                (path.extension()? == SUFFIX).then_some(())?;
                let meta = e.metadata().ok()?;
                Some((meta.modified().ok()?, meta.len(), path))
            })
            .collect();
        entries.sort_by_key(|e| std::cmp::Reverse(e.0));
        let mut total = 0;
        for (i, (_, len, path)) in entries.iter().enumerate() {
            total += len;
            if i >= MAX_ENTRIES || total > MAX_BYTES {
                let _ = std::fs::remove_file(path);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EMPTY: &str = "(component)";

    #[test]
    fn the_large_pools_engine_reads_the_same_entries() {
        // The large pool's engines use the sandbox's own cache (keyed by the sandbox's
        // engine): their code must be the same, or each load would find another engine's
        // entry, compile again and replace it.
        use crate::sandbox::SandboxSettings;
        use crate::sandbox::engine::{Pool, build};
        let dir = tempfile::tempdir().unwrap();
        let settings = SandboxSettings::default();
        let small = build(&settings, Pool::Small).unwrap();
        let large = build(&settings, Pool::Large).unwrap();
        let key = |e: &Engine| CodeCache::new(dir.path(), e).unwrap().engine_key;
        assert_eq!(key(&small), key(&large));
    }

    #[test]
    fn an_entry_is_written_once_mapped_after_and_replaced_when_it_cannot_load() {
        let dir = tempfile::tempdir().unwrap();
        let engine = Engine::default();
        let bytes = wat::parse_str(EMPTY).unwrap();
        let cache = CodeCache::new(dir.path(), &engine).unwrap();
        cache.load(&engine, &bytes, "v1").unwrap();
        assert_eq!(cache.stats(), (0, 1));
        let entry = cache.entry("v1");
        assert!(entry.is_file());
        cache.load(&engine, &bytes, "v1").unwrap();
        assert_eq!(cache.stats(), (1, 1));
        // A corrupt entry: compiled again and rewritten, not an error.
        std::fs::write(&entry, b"not code").unwrap();
        cache.load(&engine, &bytes, "v1").unwrap();
        assert_eq!(cache.stats(), (1, 2));
        cache.load(&engine, &bytes, "v1").unwrap();
        assert_eq!(cache.stats(), (2, 2));
        // A compile error is the component's, and nothing is kept of it.
        let err = cache
            .load(&engine, b"\0asm\x0d\0\x01\0junk", "bad")
            .unwrap_err();
        assert!(!format!("{err:#}").is_empty());
        assert!(!cache.entry("bad").exists());
    }
}
