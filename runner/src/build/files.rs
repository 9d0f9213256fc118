//! The files a Python build takes from this binary (the guest SDK, its tools and pins, the
//! WIT: `build.rs` puts them in), written out once per version of them; and the file trees
//! a build reads and copies.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

include!(concat!(env!("OUT_DIR"), "/guest_files.rs"));

/// The carried files, written under `<cache>/sdk/<their hash>/` (once: a folder there is
/// complete, as it is renamed into place when written). Its `python/`, `shims/`, `tools/`
/// and `wit/` folders are the build's.
pub fn guest_tree(cache: &Path) -> Result<PathBuf> {
    if GUEST_FILES.is_empty() {
        bail!(
            "this tgrun was built without the Python guest SDK beside it (guest-sdk/), so it \
             cannot build Python jobs: build tgrun from its repository"
        );
    }
    let mut inputs = super::Inputs::new("guest files");
    for (place, bytes) in GUEST_FILES {
        inputs.add(place, bytes);
    }
    let root = cache.join("sdk");
    let dir = root.join(inputs.key());
    if dir.is_dir() {
        return Ok(dir);
    }
    let tmp = root.join(format!(".writing-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    for (place, bytes) in GUEST_FILES {
        let path = tmp.join(place);
        std::fs::create_dir_all(path.parent().unwrap_or(&tmp))
            .with_context(|| format!("{}", tmp.display()))?;
        std::fs::write(&path, bytes).with_context(|| format!("writing {}", path.display()))?;
    }
    settle(&tmp, &dir)?;
    let _ = std::fs::remove_dir_all(&tmp);
    Ok(dir)
}

/// Renames the folder `made` to `dir`, its place in the cache, so a folder there is always
/// whole; if another build put one there meanwhile, that one stays.
pub fn settle(made: &Path, dir: &Path) -> Result<()> {
    if let Some(parent) = dir.parent() {
        std::fs::create_dir_all(parent).with_context(|| format!("{}", parent.display()))?;
    }
    match std::fs::rename(made, dir) {
        Ok(()) => Ok(()),
        Err(_) if dir.is_dir() => Ok(()),
        Err(e) => Err(e).with_context(|| format!("writing {}", dir.display())),
    }
}

/// Whether a file or folder is left out of a build: Python's caches, hidden files (`.git`,
/// `.venv`, editors'), compiled bytecode.
fn left_out(name: &str) -> bool {
    name.starts_with('.') || name == "__pycache__" || name.ends_with(".pyc")
}

/// Every file under `dir` that a build takes, as (its path under `dir`, its path), sorted.
pub fn tree(dir: &Path) -> Result<Vec<(PathBuf, PathBuf)>> {
    let mut out = Vec::new();
    walk(dir, Path::new(""), &mut out)?;
    out.sort();
    Ok(out)
}

/// How deep a tree may go: links are followed, and one back up the tree would loop.
const MAX_DEPTH: usize = 32;

fn walk(dir: &Path, rel: &Path, out: &mut Vec<(PathBuf, PathBuf)>) -> Result<()> {
    if rel.components().count() > MAX_DEPTH {
        bail!(
            "{}: more than {MAX_DEPTH} folders deep (a link back up the tree?)",
            dir.display()
        );
    }
    let entries = std::fs::read_dir(dir).with_context(|| format!("{}", dir.display()))?;
    for entry in entries {
        let entry = entry.with_context(|| format!("{}", dir.display()))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if left_out(&name) {
            continue;
        }
        let path = entry.path();
        if path.is_dir() {
            walk(&path, &rel.join(&name), out)?;
        } else if path.is_file() {
            out.push((rel.join(&name), path));
        }
    }
    Ok(())
}

/// Copies the files of `from` that a build takes into `to`.
pub fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    for (rel, path) in tree(from)? {
        let dest = to.join(rel);
        std::fs::create_dir_all(dest.parent().unwrap_or(to))
            .with_context(|| format!("{}", to.display()))?;
        std::fs::copy(&path, &dest).with_context(|| format!("copying {}", path.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sdk_and_the_wit_travel_with_the_binary() {
        let has = |p: &str| GUEST_FILES.iter().any(|(place, _)| *place == p);
        for p in [
            "python/tgrun/__init__.py",
            "python/tglib/clients/prometheus_client.py",
            "python/tgrun/_compat/ssl.py",
            "shims/aiohttp/web.py",
            "shims/aiomysql/sa/result.py",
            "tools/job_names.py",
            "python/requirements-build.txt",
            "wit/job.wit",
            "wit/context.wit",
        ] {
            assert!(has(p), "{p} is not carried");
        }
        assert!(!GUEST_FILES.iter().any(|(p, _)| p.contains("__pycache__")));
    }

    #[test]
    fn a_tree_leaves_out_caches_and_hidden_files() {
        let dir = tempfile::tempdir().unwrap();
        for f in [
            "a.py",
            "sub/b.py",
            "__pycache__/a.cpython-311.pyc",
            ".git/HEAD",
            "sub/.x",
        ] {
            let p = dir.path().join(f);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, f).unwrap();
        }
        let rel: Vec<PathBuf> = tree(dir.path())
            .unwrap()
            .into_iter()
            .map(|(r, _)| r)
            .collect();
        assert_eq!(rel, vec![PathBuf::from("a.py"), PathBuf::from("sub/b.py")]);
        // A link back up the tree is an error, not a walk without end.
        std::os::unix::fs::symlink(dir.path(), dir.path().join("sub/loop")).unwrap();
        let e = tree(dir.path()).unwrap_err().to_string();
        assert!(e.contains("a link back up the tree?"), "{e}");
    }
}
