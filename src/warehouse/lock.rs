//! Run locks, so two runs over the same registries never overlap. In a local warehouse a lock is an OS
//! file lock under `_locks/`, which goes with the process: a killed run never leaves a stale lock. On object
//! storage it is a lease object `_locks/<scope>.lease`, taken with a conditional create, renewed with
//! conditional replaces while the run goes on, and taken over by another run only once it has expired.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use tokio::task::JoinHandle;

use super::store::{Created, Version, Warehouse};
use super::WarehouseError;

/// How a lease on object storage is held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaseTiming {
    /// How long a lease holds without renewal: a run killed without releasing it blocks others this long.
    pub ttl: Duration,
    /// How often a held lease is renewed (well inside `ttl`).
    pub renew_every: Duration,
    /// How often a run waiting for a lease looks again.
    pub poll: Duration,
}

impl Default for LeaseTiming {
    fn default() -> LeaseTiming {
        LeaseTiming {
            ttl: Duration::from_secs(60),
            renew_every: Duration::from_secs(20),
            poll: Duration::from_secs(2),
        }
    }
}

/// A held run lock; released when dropped (or, for a file lock, when the process ends).
#[derive(Debug)]
pub struct RunLock {
    /// Where the lock is, for messages.
    pub at: String,
    held: Held,
}

#[derive(Debug)]
enum Held {
    File(#[allow(dead_code)] File),
    Lease(LeaseGuard),
}

/// The key of a scope's lock: a readable prefix and a hash of the whole scope.
fn lock_key(scope: &[String], extension: &str) -> String {
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
    format!("_locks/{label}-{}.{extension}", hex::encode(&hash[..8]))
}

impl RunLock {
    /// Where the lock of `scope` lives.
    pub fn describe(warehouse: &Warehouse, scope: &[String]) -> String {
        let extension = if warehouse.local_root().is_some() {
            "lock"
        } else {
            "lease"
        };
        warehouse.describe(&lock_key(scope, extension))
    }

    /// Takes the lock of `scope` (e.g. `["prod/main"]`): `Ok(None)` when another run holds it and `wait`
    /// is false; with `wait`, waits until it is free.
    pub async fn acquire(
        warehouse: &Warehouse,
        scope: &[String],
        wait: bool,
    ) -> Result<Option<RunLock>, WarehouseError> {
        RunLock::acquire_timed(warehouse, scope, wait, LeaseTiming::default()).await
    }

    /// [`RunLock::acquire`] with the lease held as `timing` says (object storage only).
    pub async fn acquire_timed(
        warehouse: &Warehouse,
        scope: &[String],
        wait: bool,
        timing: LeaseTiming,
    ) -> Result<Option<RunLock>, WarehouseError> {
        let at = RunLock::describe(warehouse, scope);
        let held = match warehouse.local_root() {
            Some(root) => {
                let path = root.join(lock_key(scope, "lock"));
                let file = tokio::task::spawn_blocking(move || file_lock(&path, wait))
                    .await
                    .map_err(|e| WarehouseError::Locked(e.to_string()))??;
                file.map(Held::File)
            }
            None => LeaseGuard::take(warehouse, &lock_key(scope, "lease"), wait, timing)
                .await?
                .map(Held::Lease),
        };
        Ok(held.map(|held| RunLock { at, held }))
    }

    /// Releases the lock now: a lease is deleted before this returns (dropping the lock releases it too,
    /// but in the background).
    pub async fn release(self) {
        if let Held::Lease(mut guard) = self.held {
            guard.renewer.abort();
            guard.released = true;
            release_lease(&guard.warehouse, &guard.key, &guard.owner).await;
        }
    }
}

/// Deletes the lease at `key` if `owner` still holds it.
async fn release_lease(warehouse: &Warehouse, key: &str, owner: &str) {
    if let Ok(Some((bytes, _))) = warehouse.get_versioned(key).await {
        if serde_json::from_slice::<Lease>(&bytes).is_ok_and(|l| l.owner == owner) {
            if let Err(err) = warehouse.delete(key).await {
                tracing::warn!(lock = %warehouse.describe(key), "cannot release run lock: {err}");
            }
        }
    }
}

fn file_lock(path: &Path, wait: bool) -> Result<Option<File>, WarehouseError> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(WarehouseError::io(dir))?;
    }
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(WarehouseError::io(path))?;
    if wait {
        file.lock().map_err(WarehouseError::io(path))?;
    } else {
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => return Ok(None),
            Err(TryLockError::Error(err)) => return Err(WarehouseError::io(path)(err)),
        }
    }
    Ok(Some(file))
}

/// What a lease object holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Lease {
    /// Unique per holder.
    owner: String,
    /// The host and process, for whoever looks at a held lock.
    holder: String,
    expires_at: DateTime<Utc>,
}

impl Lease {
    fn new(owner: &str, ttl: Duration) -> Lease {
        Lease {
            owner: owner.to_string(),
            holder: format!(
                "{} pid {}",
                std::env::var("HOSTNAME").unwrap_or_else(|_| "unknown host".into()),
                std::process::id()
            ),
            expires_at: Utc::now()
                + chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::MAX),
        }
    }

    fn bytes(&self) -> Bytes {
        Bytes::from(serde_json::to_vec(self).expect("plain data serializes"))
    }
}

/// A held lease: renewed in the background, deleted on drop.
#[derive(Debug)]
struct LeaseGuard {
    renewer: JoinHandle<()>,
    warehouse: Warehouse,
    key: String,
    owner: String,
    released: bool,
}

impl LeaseGuard {
    async fn take(
        warehouse: &Warehouse,
        key: &str,
        wait: bool,
        timing: LeaseTiming,
    ) -> Result<Option<LeaseGuard>, WarehouseError> {
        let owner = format!("{:016x}", rand::random::<u64>());
        loop {
            if let Some(version) = try_take(warehouse, key, &owner, timing.ttl).await? {
                let renewer = tokio::spawn(renew(
                    warehouse.clone(),
                    key.to_string(),
                    owner.clone(),
                    version,
                    timing,
                ));
                return Ok(Some(LeaseGuard {
                    renewer,
                    warehouse: warehouse.clone(),
                    key: key.to_string(),
                    owner,
                    released: false,
                }));
            }
            if !wait {
                return Ok(None);
            }
            tokio::time::sleep(timing.poll).await;
        }
    }
}

/// One attempt at the lease: created if absent, taken over if expired.
async fn try_take(
    warehouse: &Warehouse,
    key: &str,
    owner: &str,
    ttl: Duration,
) -> Result<Option<Version>, WarehouseError> {
    let lease = Lease::new(owner, ttl);
    if let Created::Yes(version) = warehouse.create(key, lease.bytes()).await? {
        return Ok(Some(version));
    }
    let Some((bytes, version)) = warehouse.get_versioned(key).await? else {
        return Ok(None);
    };
    let expired = match serde_json::from_slice::<Lease>(&bytes) {
        Ok(held) => held.expires_at < Utc::now(),
        // A lease nobody can read blocks nobody.
        Err(_) => true,
    };
    if !expired {
        return Ok(None);
    }
    warehouse.replace(key, lease.bytes(), &version).await
}

/// Renews the lease until the guard is dropped; a renewal lost to another writer stops it (the lease was
/// taken over after expiring: the run then no longer holds it, which is logged).
async fn renew(
    warehouse: Warehouse,
    key: String,
    owner: String,
    mut version: Version,
    timing: LeaseTiming,
) {
    let lease_holder = Arc::new(owner);
    loop {
        tokio::time::sleep(timing.renew_every).await;
        match warehouse
            .replace(
                &key,
                Lease::new(&lease_holder, timing.ttl).bytes(),
                &version,
            )
            .await
        {
            Ok(Some(next)) => version = next,
            Ok(None) => {
                tracing::error!(lock = %warehouse.describe(&key), "run lock lost: another run took it over");
                return;
            }
            Err(err) => {
                tracing::warn!(lock = %warehouse.describe(&key), "cannot renew run lock: {err}")
            }
        }
    }
}

impl Drop for LeaseGuard {
    fn drop(&mut self) {
        self.renewer.abort();
        if self.released {
            return;
        }
        let (warehouse, key, owner) =
            (self.warehouse.clone(), self.key.clone(), self.owner.clone());
        // Released in the background; if the runtime is gone, the lease simply expires.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move { release_lease(&warehouse, &key, &owner).await });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_scope_is_locked_once_and_freed_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let warehouse = Warehouse::local(dir.path()).unwrap();
        let scope = vec!["prod/main".to_string()];
        let held = RunLock::acquire(&warehouse, &scope, false)
            .await
            .unwrap()
            .unwrap();
        assert!(RunLock::acquire(&warehouse, &scope, false)
            .await
            .unwrap()
            .is_none());
        let other = RunLock::acquire(&warehouse, &["prod/other".to_string()], false)
            .await
            .unwrap();
        assert!(other.is_some(), "another scope runs alongside");
        drop(held);
        assert!(RunLock::acquire(&warehouse, &scope, false)
            .await
            .unwrap()
            .is_some());
    }
}
