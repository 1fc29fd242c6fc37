//! The commit protocol. Object stores have no atomic rename, so nothing is renamed:
//!
//! 1. A run is joined: the first of its shards to start creates `_runs/<run_id>.json` (a conditional
//!    create), which fixes the run's `scan_id` and start time for every shard.
//! 2. Each shard writes its data files under names no other writer uses
//!    (`<table>/subscription=…/registry=…/scan_id=…/part-<shard>-<attempt>.parquet`), then its manifest
//!    `_manifests/scan_id=<id>/shard-<i>-of-<n>.json`, naming those files: created conditionally, or, by a
//!    rerun of the same shard, replaced only if it is still the version that rerun read (its own earlier
//!    attempt, never another shard's manifest).
//! 3. The shard that finds every manifest in place commits the run: it writes the `crawls` rows of the
//!    registries every shard crawled in full, then creates the commit marker
//!    `scans/scan_id=<id>/part-0.parquet` conditionally. Its row names every file of the run (`files`,
//!    `file_sizes`). Exactly one creator wins; the others find the run committed.
//! 4. The same commit removes what no manifest names: files of this run left by earlier attempts at
//!    once, and files of other runs that never committed once they are older than [`ORPHAN_AGE`] and no
//!    manifest names them (or their run is older than [`ABANDONED_AGE`]).
//!
//! A reader reads `scans` and opens exactly the files its rows name: a run that has not committed, or a
//! file no committed row names, is never read.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::{stream, StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use super::schema::Table;
use super::store::{Created, Warehouse};
use super::write::{
    crawls_batch, encode, findings_batch, images_batch, packages_batch, scans_batch,
};
use super::{partition_key, CrawledRegistry, ScanRun, ScannedImage, Selection, WarehouseError};

/// Files of a run that never committed, and that no manifest names, are removed once this old: younger
/// ones may belong to a shard writing right now.
pub const ORPHAN_AGE: Duration = Duration::from_secs(10 * 60);

/// A run whose shards have not all finished after this long is abandoned: its files are removed.
pub const ABANDONED_AGE: Duration = Duration::from_secs(7 * 24 * 3600);

/// Objects read at once.
const READ_CONCURRENCY: usize = 16;

/// One of `count` workers of a run: it scans the repositories whose stable hash falls to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// From 0 (as a Kubernetes indexed Job's `JOB_COMPLETION_INDEX`).
    pub index: u32,
    pub count: u32,
}

impl Shard {
    /// A run of one process.
    pub const WHOLE: Shard = Shard { index: 0, count: 1 };

    /// `I/N` with `0 <= I < N`.
    pub fn parse(text: &str) -> Result<Shard, String> {
        let (index, count) = text
            .split_once('/')
            .ok_or_else(|| format!("{text:?}: a shard is INDEX/COUNT, e.g. 0/4"))?;
        let number = |part: &str| {
            part.trim()
                .parse::<u32>()
                .map_err(|_| format!("{text:?}: {part:?} is not a number"))
        };
        let (index, count) = (number(index)?, number(count)?);
        if count == 0 || index >= count {
            return Err(format!(
                "{text:?}: the index counts from 0 and must be below the count"
            ));
        }
        Ok(Shard { index, count })
    }

    /// Whether this shard scans `repository`: by a stable hash of (subscription, registry, repository),
    /// so every tag of a repository lands in the same shard, whatever machine computes it.
    pub fn owns(&self, subscription: &str, registry: &str, repository: &str) -> bool {
        if self.count == 1 {
            return true;
        }
        let hash = Sha256::digest(format!("{subscription}\n{registry}\n{repository}").as_bytes());
        let value = u64::from_be_bytes(hash[..8].try_into().expect("eight bytes"));
        value % u64::from(self.count) == u64::from(self.index)
    }

    fn manifest_name(&self) -> String {
        format!("shard-{:04}-of-{:04}.json", self.index, self.count)
    }
}

/// What the first shard of a run records for the others.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunRecord {
    pub run_id: String,
    /// The id the run's partitions and `scans` row carry: its start time first, so ids sort by time.
    pub scan_id: String,
    pub started_at: DateTime<Utc>,
    pub shards: u32,
}

/// A run id given on the command line: safe in an object key.
pub fn check_run_id(run_id: &str) -> Result<(), WarehouseError> {
    let fine = !run_id.is_empty()
        && run_id.len() <= 128
        && run_id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && !run_id.starts_with('.');
    if fine {
        Ok(())
    } else {
        Err(WarehouseError::RunId(run_id.to_string()))
    }
}

fn run_key(run_id: &str) -> String {
    format!("_runs/{run_id}.json")
}

fn manifest_dir(scan_id: &str) -> String {
    format!("_manifests/scan_id={scan_id}")
}

/// The file name of a run's commit marker inside its `scans` folder.
pub(super) const MARKER_FILE: &str = "part-0.parquet";

fn marker_key(scan_id: &str) -> String {
    format!("{}/{MARKER_FILE}", partition_key(Table::Scans, &[scan_id]))
}

/// Joins run `run_id` as one of `shards` (creating its record if this shard is the first), or starts a
/// run of its own when no id is given. A run already committed is refused.
pub async fn join_run(
    warehouse: &Warehouse,
    run_id: Option<&str>,
    shards: u32,
    now: DateTime<Utc>,
) -> Result<RunRecord, WarehouseError> {
    let scan_id = super::new_scan_id(now);
    let fresh = RunRecord {
        run_id: run_id.unwrap_or(&scan_id).to_string(),
        scan_id: scan_id.clone(),
        started_at: now,
        shards,
    };
    check_run_id(&fresh.run_id)?;
    let key = run_key(&fresh.run_id);
    let record = match warehouse.create(&key, json(&fresh)?).await? {
        Created::Yes(_) => fresh,
        Created::Exists => read_run(warehouse, &fresh.run_id)
            .await?
            .ok_or_else(|| corrupt(warehouse, &key, "vanished while being read".into()))?,
    };
    if record.shards != shards {
        return Err(WarehouseError::ShardCount {
            run_id: record.run_id,
            started: record.shards,
            given: shards,
        });
    }
    if warehouse.get(&marker_key(&record.scan_id)).await?.is_some() {
        return Err(WarehouseError::AlreadyCommitted(record.run_id));
    }
    Ok(record)
}

/// The record of run `run_id`, if it was started.
pub async fn read_run(
    warehouse: &Warehouse,
    run_id: &str,
) -> Result<Option<RunRecord>, WarehouseError> {
    check_run_id(run_id)?;
    let key = run_key(run_id);
    match warehouse.get(&key).await? {
        Some(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| corrupt(warehouse, &key, e.to_string())),
        None => Ok(None),
    }
}

fn json<T: Serialize>(value: &T) -> Result<Bytes, WarehouseError> {
    Ok(Bytes::from(
        serde_json::to_vec_pretty(value).expect("plain data serializes"),
    ))
}

fn corrupt(warehouse: &Warehouse, key: &str, message: String) -> WarehouseError {
    WarehouseError::Corrupt {
        path: warehouse.describe(key).into(),
        message,
    }
}

/// One data file a shard wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    /// Relative to the warehouse root.
    pub key: String,
    pub size: u64,
    pub rows: u64,
}

/// What one shard of a run saw and wrote.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    pub run_id: String,
    pub scan_id: String,
    pub shard: u32,
    pub shards: u32,
    /// Differs between attempts of the same shard.
    pub attempt: String,
    pub finished_at: DateTime<Utc>,
    pub files: Vec<FileEntry>,
    pub images_seen: u64,
    pub images_scanned: u64,
    pub images_failed: u64,
    pub findings: u64,
    pub errors: Vec<String>,
    pub schedule: Option<String>,
    /// Images by why they were looked at (`new`, `pulled`, `pushed`, `forced`, `carried`).
    pub selected: BTreeMap<String, u64>,
    pub deferred: u64,
    pub db_content_hash: String,
    pub scanner_version: String,
    /// The registries this shard crawled in full, with the images it saw in its share.
    pub crawled: Vec<CrawledRegistry>,
}

/// What a commit wrote.
#[derive(Debug, Clone, Default)]
pub struct CommitInfo {
    /// The data files this shard wrote (keys relative to the warehouse).
    pub files: Vec<String>,
    pub findings_rows: u64,
    pub images_rows: u64,
    /// Whether this shard's commit also committed the run (it was the last to finish).
    pub run_committed: bool,
    /// Shards whose manifest was still missing.
    pub waiting_for: Vec<u32>,
    /// Files of earlier attempts and of abandoned runs removed.
    pub orphans_removed: u64,
}

/// A test hook: `VIGIL_FAULT_COMMIT=<point>` kills the process at that point of a commit, as a power cut
/// or `kill -9` would, so tests can check what a killed run leaves behind. Only debug builds (the
/// integration tests run the dev-profile binary) have it: a release binary never reads the variable.
#[cfg(debug_assertions)]
fn fault_point(point: &str) {
    if std::env::var("VIGIL_FAULT_COMMIT").is_ok_and(|p| p == point) {
        std::process::abort();
    }
}

/// Release builds carry no fault points.
#[cfg(not(debug_assertions))]
fn fault_point(_point: &str) {}

/// Commits one shard's part of a run: its data files, then its manifest, then, if every shard's
/// manifest is in place, the run.
pub async fn commit_shard(
    warehouse: &Warehouse,
    record: &RunRecord,
    shard: Shard,
    run: &ScanRun,
) -> Result<CommitInfo, WarehouseError> {
    let attempt = format!("{:08x}", rand::random::<u32>());
    let mut info = CommitInfo::default();
    let mut files = Vec::new();
    let prefix = format!("part-{:04}-{attempt}", shard.index);
    for (values, table, batch) in data_batches(run)? {
        let rows = batch.num_rows() as u64;
        match table {
            Table::Images => info.images_rows += rows,
            Table::Findings => info.findings_rows += rows,
            _ => {}
        }
        let values: Vec<&str> = values.iter().map(String::as_str).collect();
        let key = format!("{}/{prefix}.parquet", partition_key(table, &values));
        let bytes = encode(table, &batch)?;
        let size = bytes.len() as u64;
        warehouse.put(&key, bytes).await?;
        files.push(FileEntry { key, size, rows });
        fault_point("after-first-file");
    }
    info.files = files.iter().map(|f| f.key.clone()).collect();
    let manifest = Manifest {
        run_id: record.run_id.clone(),
        scan_id: record.scan_id.clone(),
        shard: shard.index,
        shards: shard.count,
        attempt,
        finished_at: run.finished_at,
        files,
        images_seen: run.images_seen,
        images_scanned: run.images_scanned,
        images_failed: run.images_failed,
        findings: info.findings_rows,
        errors: run.errors.clone(),
        schedule: run.schedule.clone(),
        selected: Selection::ALL
            .iter()
            .map(|s| {
                let n = run.images.iter().filter(|i| i.selection == *s).count() as u64;
                (s.as_str().to_string(), n)
            })
            .collect(),
        deferred: run.deferred,
        db_content_hash: run.db_content_hash.clone(),
        scanner_version: run.scanner_version.clone(),
        crawled: run.crawled.clone(),
    };
    put_manifest(warehouse, &manifest, shard).await?;
    fault_point("after-manifest");
    let outcome = commit_run(warehouse, record).await?;
    info.run_committed = outcome.committed_now;
    info.waiting_for = outcome.waiting_for;
    info.orphans_removed = outcome.orphans_removed;
    Ok(info)
}

/// Every data file of one run's images: per (subscription, registry), its images, packages read from
/// layers, and findings.
fn data_batches(
    run: &ScanRun,
) -> Result<Vec<(Vec<String>, Table, arrow::array::RecordBatch)>, WarehouseError> {
    let mut groups: BTreeMap<(&str, &str), Vec<&ScannedImage>> = BTreeMap::new();
    for image in &run.images {
        groups
            .entry((image.subscription.as_str(), image.registry.as_str()))
            .or_default()
            .push(image);
    }
    let mut out = Vec::new();
    for ((subscription, registry), mut images) in groups {
        images.sort_by(|a, b| {
            (&a.repository, &a.digest, &a.platform).cmp(&(&b.repository, &b.digest, &b.platform))
        });
        let values = vec![
            subscription.to_string(),
            registry.to_string(),
            run.scan_id.clone(),
        ];
        out.push((values.clone(), Table::Images, images_batch(run, &images)?));
        for (table, batch) in [
            (Table::Packages, packages_batch(run, &images)?),
            (Table::Findings, findings_batch(run, &images)?),
        ] {
            if batch.num_rows() > 0 {
                out.push((values.clone(), table, batch));
            }
        }
    }
    Ok(out)
}

/// Creates this shard's manifest, or replaces the one an earlier attempt of the same shard left.
async fn put_manifest(
    warehouse: &Warehouse,
    manifest: &Manifest,
    shard: Shard,
) -> Result<(), WarehouseError> {
    let key = manifest_key(&manifest.scan_id, shard);
    let bytes = json(manifest)?;
    if let Created::Yes(_) = warehouse.create(&key, bytes.clone()).await? {
        return Ok(());
    }
    let Some((_, version)) = warehouse.get_versioned(&key).await? else {
        return Err(WarehouseError::ManifestRace(warehouse.describe(&key)));
    };
    match warehouse.replace(&key, bytes, &version).await? {
        Some(_) => Ok(()),
        None => Err(WarehouseError::ManifestRace(warehouse.describe(&key))),
    }
}

/// What committing a run did.
#[derive(Debug, Clone, Default)]
pub struct RunCommit {
    /// This call created the commit marker.
    pub committed_now: bool,
    /// The run was committed already (by another shard, or an earlier `vigil commit`).
    pub already: bool,
    pub waiting_for: Vec<u32>,
    pub orphans_removed: u64,
    pub files: u64,
}

/// Commits the run if every shard's manifest is in place; safe to repeat.
pub async fn commit_run(
    warehouse: &Warehouse,
    record: &RunRecord,
) -> Result<RunCommit, WarehouseError> {
    let mut outcome = RunCommit::default();
    let marker = marker_key(&record.scan_id);
    if warehouse.get(&marker).await?.is_some() {
        outcome.already = true;
        return Ok(outcome);
    }
    let manifests = read_manifests(warehouse, &record.scan_id).await?;
    let present: BTreeSet<u32> = manifests
        .iter()
        .filter(|m| m.shards == record.shards)
        .map(|m| m.shard)
        .collect();
    outcome.waiting_for = (0..record.shards)
        .filter(|i| !present.contains(i))
        .collect();
    if !outcome.waiting_for.is_empty() {
        return Ok(outcome);
    }
    let manifests: Vec<&Manifest> = manifests
        .iter()
        .filter(|m| m.shards == record.shards)
        .collect();
    let mut files: Vec<(String, u64)> = manifests
        .iter()
        .flat_map(|m| m.files.iter().map(|f| (f.key.clone(), f.size)))
        .collect();
    for (crawl, key) in full_crawls(&manifests, &record.scan_id) {
        let batch = crawls_batch(record.started_at, &crawl)?;
        let bytes = encode(Table::Crawls, &batch)?;
        let size = bytes.len() as u64;
        warehouse.put(&key, bytes).await?;
        files.push((key, size));
    }
    files.sort();
    fault_point("before-marker");
    let row = scans_batch(record, &manifests, &files)?;
    match warehouse
        .create(&marker, encode(Table::Scans, &row)?)
        .await?
    {
        Created::Yes(_) => outcome.committed_now = true,
        Created::Exists => {
            outcome.already = true;
            return Ok(outcome);
        }
    }
    outcome.files = files.len() as u64;
    fault_point("after-marker");
    outcome.orphans_removed = remove_orphans(warehouse).await?;
    Ok(outcome)
}

/// The registries every shard crawled in full, with the images they saw together, and the key of each
/// one's `crawls` file. (A registry one shard could not crawl is not crawled in full: its images missing
/// from the run must not read as deleted.)
fn full_crawls(manifests: &[&Manifest], scan_id: &str) -> Vec<(CrawledRegistry, String)> {
    let mut seen: BTreeMap<(String, String), (u64, usize)> = BTreeMap::new();
    for manifest in manifests {
        for crawl in &manifest.crawled {
            let entry = seen
                .entry((crawl.subscription.clone(), crawl.registry.clone()))
                .or_default();
            entry.0 += crawl.images_seen;
            entry.1 += 1;
        }
    }
    seen.into_iter()
        .filter(|(_, (_, shards))| *shards == manifests.len())
        .map(|((subscription, registry), (images_seen, _))| {
            let key = partition_key(Table::Crawls, &[&subscription, &registry, scan_id])
                + "/part-0.parquet";
            (
                CrawledRegistry {
                    subscription,
                    registry,
                    images_seen,
                },
                key,
            )
        })
        .collect()
}

/// The manifests of one run, as their shards wrote them.
async fn read_manifests(
    warehouse: &Warehouse,
    scan_id: &str,
) -> Result<Vec<Manifest>, WarehouseError> {
    let keys: Vec<String> = warehouse
        .list(&manifest_dir(scan_id))
        .await?
        .into_iter()
        .map(|(key, _)| key)
        .filter(|key| key.ends_with(".json"))
        .collect();
    let reads: Vec<_> = keys
        .into_iter()
        .map(|key| async move {
            let bytes = warehouse
                .get(&key)
                .await?
                .ok_or_else(|| corrupt(warehouse, &key, "vanished while being read".into()))?;
            serde_json::from_slice::<Manifest>(&bytes)
                .map_err(|e| corrupt(warehouse, &key, e.to_string()))
        })
        .collect();
    stream::iter(reads)
        .buffered(READ_CONCURRENCY)
        .try_collect()
        .await
}

/// Finishes run `run_id` by hand (`vigil commit`): commits it when every shard's manifest is in place.
pub async fn commit_by_id(
    warehouse: &Warehouse,
    run_id: &str,
) -> Result<RunCommit, WarehouseError> {
    let record = read_run(warehouse, run_id)
        .await?
        .ok_or_else(|| WarehouseError::NoSuchRun(run_id.to_string()))?;
    commit_run(warehouse, &record).await
}

/// Removes data files no committed run and no live manifest names: those of this run's earlier attempts
/// and of runs killed before they committed.
async fn remove_orphans(warehouse: &Warehouse) -> Result<u64, WarehouseError> {
    let committed = super::read::committed_scans_checkpointed(warehouse).await?;
    let mut named: HashMap<&str, BTreeSet<&str>> = HashMap::new();
    for scan in &committed {
        if let Some(files) = &scan.files {
            named
                .entry(&scan.scan_id)
                .or_default()
                .extend(files.iter().map(|(key, _)| key.as_str()));
        }
    }
    // Runs not committed yet: the files their manifests name stay, unless the run was abandoned.
    let now = Utc::now();
    let old = |at: DateTime<Utc>, age: Duration| (now - at).to_std().is_ok_and(|d| d > age);
    let mut pending: HashMap<String, BTreeSet<String>> = HashMap::new();
    for (key, meta) in warehouse.list("_manifests").await? {
        let Some(scan_id) = key
            .split('/')
            .nth(1)
            .and_then(|dir| dir.strip_prefix("scan_id="))
        else {
            continue;
        };
        if named.contains_key(scan_id) || old(meta.last_modified, ABANDONED_AGE) {
            continue;
        }
        if let Some(bytes) = warehouse.get(&key).await? {
            if let Ok(manifest) = serde_json::from_slice::<Manifest>(&bytes) {
                pending
                    .entry(scan_id.to_string())
                    .or_default()
                    .extend(manifest.files.into_iter().map(|f| f.key));
            }
        }
    }
    let committed_ids: BTreeSet<&str> = committed.iter().map(|s| s.scan_id.as_str()).collect();
    let mut removed = 0;
    for table in Table::SCANNED {
        for (key, meta) in warehouse.list(table.name()).await? {
            let Some(scan_id) = key
                .split('/')
                .find_map(|part| part.strip_prefix("scan_id="))
            else {
                continue;
            };
            let scan_id = super::unescape_partition_value(scan_id);
            let orphan = match named.get(scan_id.as_str()) {
                // A committed run: what its row does not name is an earlier attempt's.
                Some(files) => !files.contains(key.as_str()),
                // Committed before runs named their files: every file of it counts.
                None if committed_ids.contains(scan_id.as_str()) => false,
                None => {
                    let listed = pending.get(&scan_id).is_some_and(|f| f.contains(&key));
                    !listed && old(meta.last_modified, ORPHAN_AGE)
                }
            };
            if orphan {
                warehouse.delete(&key).await?;
                removed += 1;
            }
        }
    }
    Ok(removed)
}

/// Commits a run of one process whose run id is its scan id: a [`ScanRun`] built by hand (tests, benches).
pub async fn commit(warehouse: &Warehouse, run: &ScanRun) -> Result<CommitInfo, WarehouseError> {
    let record = RunRecord {
        run_id: run.scan_id.clone(),
        scan_id: run.scan_id.clone(),
        started_at: run.started_at,
        shards: 1,
    };
    check_run_id(&record.run_id)?;
    if let Created::Exists = warehouse
        .create(&run_key(&record.run_id), json(&record)?)
        .await?
    {
        if warehouse.get(&marker_key(&record.scan_id)).await?.is_some() {
            return Err(WarehouseError::AlreadyCommitted(record.run_id));
        }
    }
    commit_shard(warehouse, &record, Shard::WHOLE, run).await
}

/// Where shard `shard` of run `scan_id` keeps its manifest.
fn manifest_key(scan_id: &str, shard: Shard) -> String {
    format!("{}/{}", manifest_dir(scan_id), shard.manifest_name())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_parse_from_zero_and_split_repositories_stably() {
        assert_eq!(Shard::parse("0/4").unwrap(), Shard { index: 0, count: 4 });
        for bad in ["4/4", "1/0", "x/2", "3"] {
            assert!(Shard::parse(bad).is_err(), "{bad}");
        }
        let shards: Vec<Shard> = (0..4).map(|index| Shard { index, count: 4 }).collect();
        let mut per_shard = [0; 4];
        for n in 0..1000 {
            let repo = format!("team/app-{n}");
            let owners: Vec<usize> = (0..4)
                .filter(|&i| shards[i].owns("prod", "main", &repo))
                .collect();
            assert_eq!(owners.len(), 1, "{repo} belongs to exactly one shard");
            per_shard[owners[0]] += 1;
        }
        assert!(per_shard.iter().all(|&n| n > 200), "{per_shard:?}");
        assert!(Shard::WHOLE.owns("a", "b", "c"));
    }

    #[test]
    fn run_ids_are_checked_before_they_become_keys() {
        for good in ["nightly-2026-12-04", "job_7.a"] {
            check_run_id(good).unwrap();
        }
        for bad in ["", "../x", "a/b", ".hidden", "a b"] {
            assert!(check_run_id(bad).is_err(), "{bad:?}");
        }
    }
}
