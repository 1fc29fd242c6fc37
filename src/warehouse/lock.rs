//! Run locks: an OS file lock per scope under `<warehouse>/_locks/`, so two runs over the same registries
//! never overlap. The lock goes with the process, so a killed run never leaves a stale lock behind.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

use super::WarehouseError;

/// A held run lock; released when dropped (or when the process ends).
#[derive(Debug)]
pub struct RunLock {
    _file: File,
    pub path: PathBuf,
}

/// The lock file of a scope: a readable prefix and a hash of the whole scope.
fn lock_path(root: &Path, scope: &[String]) -> PathBuf {
    let mut sorted = scope.to_vec();
    sorted.sort();
    sorted.dedup();
    let hash = Sha256::digest(sorted.join("\n").as_bytes());
    let label: String = sorted
        .first()
        .map(|s| {
            s.chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                        c
                    } else {
                        '_'
                    }
                })
                .take(40)
                .collect()
        })
        .unwrap_or_else(|| "all".into());
    root.join("_locks")
        .join(format!("{label}-{}.lock", hex::encode(&hash[..8])))
}

impl RunLock {
    /// Where the lock of `scope` lives.
    pub fn path_for(root: &Path, scope: &[String]) -> PathBuf {
        lock_path(root, scope)
    }

    /// Takes the lock of `scope` (e.g. `["prod/main"]`): `Ok(None)` when another run holds it and `wait`
    /// is false; with `wait`, blocks until it is free.
    pub fn acquire(
        root: &Path,
        scope: &[String],
        wait: bool,
    ) -> Result<Option<RunLock>, WarehouseError> {
        let path = lock_path(root, scope);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(WarehouseError::io(dir))?;
        }
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(WarehouseError::io(&path))?;
        if wait {
            file.lock().map_err(WarehouseError::io(&path))?;
        } else {
            match file.try_lock() {
                Ok(()) => {}
                Err(TryLockError::WouldBlock) => return Ok(None),
                Err(TryLockError::Error(err)) => return Err(WarehouseError::io(&path)(err)),
            }
        }
        Ok(Some(RunLock { _file: file, path }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scope_is_locked_once_and_freed_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let scope = vec!["prod/main".to_string()];
        let held = RunLock::acquire(dir.path(), &scope, false)
            .unwrap()
            .unwrap();
        assert!(RunLock::acquire(dir.path(), &scope, false)
            .unwrap()
            .is_none());
        let other = RunLock::acquire(dir.path(), &["prod/other".to_string()], false).unwrap();
        assert!(other.is_some(), "another scope runs alongside");
        drop(held);
        assert!(RunLock::acquire(dir.path(), &scope, false)
            .unwrap()
            .is_some());
    }
}
