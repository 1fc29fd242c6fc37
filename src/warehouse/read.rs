//! Warehouse stage, reading back: what earlier runs committed, as the next run plans its selection and as
//! the events receiver deduplicates. It reads the commit markers (`scans`) first, then opens exactly the
//! Parquet files of committed partitions with a column projection: no query engine, no views, no rules
//! (those are the reports' business, in `report`).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};

use arrow::array::{Array, AsArray, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Int64Type, TimestampMicrosecondType};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::{stream, StreamExt, TryStreamExt};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ProjectionMask;
use serde::{Deserialize, Serialize};

use super::commit::MARKER_FILE;
use super::schema::{timestamp, Table, FINDING_COUNT_COLUMNS};
use super::store::Warehouse;
use super::{unescape_partition_value, FindingCounts, WarehouseError};
use crate::model::{Coverage, CoverageStatus, OsIdentity, Package, PackageType};

/// One image of one platform in one registry, as `image_id` hashes it. The same digest in another
/// repository is another image (its findings rows are its own).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ImageKey {
    pub subscription: String,
    pub registry: String,
    pub repository: String,
    pub digest: String,
    /// `os/arch[/variant]`.
    pub platform: String,
}

impl ImageKey {
    /// The key registry activity is kept by: events name a digest, not a platform, and a push or pull of a
    /// digest counts for every repository that holds it in that registry.
    pub fn activity_key(&self) -> ActivityKey {
        ActivityKey {
            subscription: self.subscription.clone(),
            registry: self.registry.clone(),
            digest: self.digest.clone(),
        }
    }
}

/// A digest in one registry: what pushes and pulls are counted by.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ActivityKey {
    pub subscription: String,
    pub registry: String,
    pub digest: String,
}

/// An image's newest `images` row: the assessment a run may carry, and where its stored packages are.
#[derive(Debug, Clone)]
pub struct StoredImage {
    /// The scan whose findings rows stand for the image.
    pub findings_scan_id: String,
    /// The scan whose `packages` rows hold its inventory.
    pub inventory_scan_id: String,
    pub package_count: u64,
    /// `None` for a row written before Vigil stored per-severity counts.
    pub counts: Option<FindingCounts>,
    pub coverage: Coverage,
    pub os: Option<OsIdentity>,
}

/// The newest push and pull of every digest, by anyone but Vigil.
#[derive(Debug, Clone, Default)]
pub struct LastActivity {
    pub pulls: HashMap<ActivityKey, DateTime<Utc>>,
    pub pushes: HashMap<ActivityKey, DateTime<Utc>>,
}

/// The newest `images` row of every image in a committed scan; newest is the greatest
/// (`scanned_at`, `scan_id`).
///
/// Only the scans since each registry's newest full crawl are read: that crawl's run wrote a row for every
/// image it saw, so older rows are either superseded or of images that no longer exist. The cost of
/// planning a run does not grow with the history kept.
pub async fn newest_images(
    warehouse: &Warehouse,
) -> Result<HashMap<ImageKey, StoredImage>, WarehouseError> {
    let mut newest: HashMap<ImageKey, ((i64, String), StoredImage)> = HashMap::new();
    let scans = committed_scans(warehouse).await?;
    let files = current_files(&scan_files(warehouse, &scans).await?, Table::Images);
    let read = read_files(warehouse, &files, &ImagesColumns::NAMES).await?;
    for (file, batches) in files.iter().zip(read) {
        let [subscription, registry, scan_id] = file.values_array::<3>();
        for batch in batches {
            let columns = ImagesColumns::of(&Rows::new(&batch, &file.path, Table::Images))?;
            for row in 0..batch.num_rows() {
                let key = ImageKey {
                    subscription: subscription.clone(),
                    registry: registry.clone(),
                    repository: columns.repository.value(row).to_string(),
                    digest: columns.digest.value(row).to_string(),
                    platform: columns.platform.value(row).to_string(),
                };
                let order = (columns.scanned_at.value(row), scan_id.clone());
                if newest.get(&key).is_some_and(|(seen, _)| *seen >= order) {
                    continue;
                }
                let stored = columns.stored_image(row, &file.path)?;
                newest.insert(key, (order, stored));
            }
        }
    }
    Ok(newest
        .into_iter()
        .map(|(key, (_, stored))| (key, stored))
        .collect())
}

/// The `images` columns the history needs, of one batch.
struct ImagesColumns {
    repository: StringArray,
    digest: StringArray,
    platform: StringArray,
    findings_scan: StringArray,
    inventory_scan: StringArray,
    status: StringArray,
    reason: StringArray,
    pretty: StringArray,
    os_id: StringArray,
    os_version: StringArray,
    os_ecosystem: StringArray,
    package_count: Int64Array,
    /// In the order of [`FINDING_COUNT_COLUMNS`].
    counts: [Int64Array; 6],
    scanned_at: arrow::array::PrimitiveArray<TimestampMicrosecondType>,
}

impl ImagesColumns {
    const NAMES: [&str; 19] = [
        "repository",
        "image_digest",
        "platform",
        "findings_scan_id",
        "inventory_scan_id",
        "coverage_status",
        "coverage_reason",
        "os",
        "os_id",
        "os_version_id",
        "os_ecosystem",
        "package_count",
        "scanned_at",
        FINDING_COUNT_COLUMNS[0],
        FINDING_COUNT_COLUMNS[1],
        FINDING_COUNT_COLUMNS[2],
        FINDING_COUNT_COLUMNS[3],
        FINDING_COUNT_COLUMNS[4],
        FINDING_COUNT_COLUMNS[5],
    ];

    fn of(rows: &Rows<'_>) -> Result<ImagesColumns, WarehouseError> {
        let [critical, high, medium, low, unknown, patchable] =
            FINDING_COUNT_COLUMNS.map(|name| rows.integers(name));
        Ok(ImagesColumns {
            repository: rows.strings("repository")?,
            digest: rows.strings("image_digest")?,
            platform: rows.strings("platform")?,
            findings_scan: rows.strings("findings_scan_id")?,
            inventory_scan: rows.strings("inventory_scan_id")?,
            status: rows.strings("coverage_status")?,
            reason: rows.strings("coverage_reason")?,
            pretty: rows.strings("os")?,
            os_id: rows.strings("os_id")?,
            os_version: rows.strings("os_version_id")?,
            os_ecosystem: rows.strings("os_ecosystem")?,
            package_count: rows.integers("package_count")?,
            counts: [critical?, high?, medium?, low?, unknown?, patchable?],
            scanned_at: rows.micros("scanned_at")?,
        })
    }

    /// One row as the assessment it stored.
    fn stored_image(&self, row: usize, path: &Path) -> Result<StoredImage, WarehouseError> {
        Ok(StoredImage {
            findings_scan_id: self.findings_scan.value(row).to_string(),
            inventory_scan_id: self.inventory_scan.value(row).to_string(),
            package_count: self.package_count.value(row).max(0) as u64,
            counts: finding_counts(&self.counts, row),
            coverage: Coverage {
                status: coverage_status(self.status.value(row), path)?,
                reason: self.reason.value(row).to_string(),
            },
            os: optional(&self.os_id, row).map(|id| OsIdentity {
                id,
                version_id: optional(&self.os_version, row).unwrap_or_default(),
                pretty_name: optional(&self.pretty, row),
                ecosystem: optional(&self.os_ecosystem, row),
            }),
        })
    }
}

/// The stored counts of one row, or `None` when any is null (a row written before they were stored).
fn finding_counts(counts: &[Int64Array; 6], row: usize) -> Option<FindingCounts> {
    if counts.iter().any(|c| c.is_null(row)) {
        return None;
    }
    let [critical, high, medium, low, unknown, patchable] =
        counts.each_ref().map(|c| c.value(row).max(0) as u64);
    Some(FindingCounts {
        critical,
        high,
        medium,
        low,
        unknown,
        patchable,
    })
}

fn coverage_status(value: &str, path: &Path) -> Result<CoverageStatus, WarehouseError> {
    serde_json::from_value(serde_json::Value::String(value.to_string())).map_err(|_| {
        WarehouseError::Corrupt {
            path: path.to_path_buf(),
            message: format!("unknown coverage_status {value:?}"),
        }
    })
}

/// The newest push and pull per digest and registry, from `activity`: each event counted once (the copy
/// received first, as the `activity` view keeps it), Vigil's own requests (its `User-Agent`) left out and
/// events without a user agent counted.
pub async fn last_activity(warehouse: &Warehouse) -> Result<LastActivity, WarehouseError> {
    let mut by_registry: HashMap<(String, String), Vec<PartitionFile>> = HashMap::new();
    for file in partition_files(warehouse, Table::Activity).await? {
        let [subscription, registry] = file.values_array::<2>();
        by_registry
            .entry((subscription, registry))
            .or_default()
            .push(file);
    }
    let mut last = LastActivity::default();
    for ((subscription, registry), files) in by_registry {
        for event in first_copies(warehouse, &files).await?.into_values() {
            if event.by_vigil {
                continue;
            }
            let newest = match event.action.as_str() {
                "pull" => &mut last.pulls,
                "push" => &mut last.pushes,
                _ => continue,
            };
            let Some(at) = DateTime::from_timestamp_micros(event.occurred_at) else {
                continue;
            };
            let key = ActivityKey {
                subscription: subscription.clone(),
                registry: registry.clone(),
                digest: event.digest,
            };
            let slot = newest.entry(key).or_insert(at);
            *slot = (*slot).max(at);
        }
    }
    Ok(last)
}

/// One stored event, as far as the newest push and pull need it.
struct StoredEvent {
    received_at: i64,
    action: String,
    digest: String,
    occurred_at: i64,
    /// Sent by Vigil's own requests (its `User-Agent`).
    by_vigil: bool,
}

/// The events in one registry's `activity` files by id, each the copy received first: the same event may
/// have been stored twice (a webhook retried while an import ran).
async fn first_copies(
    warehouse: &Warehouse,
    files: &[PartitionFile],
) -> Result<HashMap<String, StoredEvent>, WarehouseError> {
    const COLUMNS: [&str; 6] = [
        "event_id",
        "action",
        "digest",
        "occurred_at",
        "user_agent",
        "received_at",
    ];
    let mut events: HashMap<String, StoredEvent> = HashMap::new();
    let read = read_files(warehouse, files, &COLUMNS).await?;
    for (file, batches) in files.iter().zip(read) {
        for batch in batches {
            let rows = Rows::new(&batch, &file.path, Table::Activity);
            let (event_id, action, digest, user_agent) = (
                rows.strings("event_id")?,
                rows.strings("action")?,
                rows.strings("digest")?,
                rows.strings("user_agent")?,
            );
            let (occurred_at, received_at) =
                (rows.micros("occurred_at")?, rows.micros("received_at")?);
            for row in 0..batch.num_rows() {
                let event = StoredEvent {
                    received_at: received_at.value(row),
                    action: action.value(row).to_string(),
                    digest: digest.value(row).to_string(),
                    occurred_at: occurred_at.value(row),
                    by_vigil: !user_agent.is_null(row)
                        && user_agent
                            .value(row)
                            .starts_with(crate::registry::USER_AGENT_PRODUCT),
                };
                let id = event_id.value(row);
                if events
                    .get(id)
                    .is_none_or(|first| event.received_at < first.received_at)
                {
                    events.insert(id.to_string(), event);
                }
            }
        }
    }
    Ok(events)
}

/// The stored packages of the given images, each from the scan named with it (its `inventory_scan_id`),
/// sorted; an image whose scan stored none is absent.
pub async fn stored_packages(
    warehouse: &Warehouse,
    wanted: &[(ImageKey, String)],
) -> Result<HashMap<ImageKey, Vec<Package>>, WarehouseError> {
    let mut out: HashMap<ImageKey, Vec<Package>> = HashMap::new();
    if wanted.is_empty() {
        return Ok(out);
    }
    let scans = committed_scans(warehouse).await?;
    let committed: BTreeSet<&str> = scans.iter().map(|s| s.scan_id.as_str()).collect();
    // One partition per (subscription, registry, scan): which of its images are wanted.
    type Partition<'a> = (&'a str, &'a str, &'a str);
    let mut partitions: HashMap<Partition, HashMap<(&str, &str, &str), &ImageKey>> = HashMap::new();
    for (key, scan_id) in wanted {
        if committed.contains(scan_id.as_str()) {
            partitions
                .entry((&key.subscription, &key.registry, scan_id))
                .or_default()
                .insert((&key.repository, &key.digest, &key.platform), key);
        }
    }
    const COLUMNS: [&str; 13] = [
        "repository",
        "image_digest",
        "platform",
        "name",
        "version",
        "ecosystem",
        "package_type",
        "source_name",
        "source_version",
        "arch",
        "extractor",
        "location",
        "layer_digest",
    ];
    let files: Vec<PartitionFile> = scan_files(warehouse, &scans)
        .await?
        .into_iter()
        .filter(|f| {
            f.table == Table::Packages
                && partitions.contains_key(&(
                    f.values[0].as_str(),
                    f.values[1].as_str(),
                    f.values[2].as_str(),
                ))
        })
        .collect();
    let read = read_files(warehouse, &files, &COLUMNS).await?;
    for (file, batches) in files.iter().zip(read) {
        let images = &partitions[&(
            file.values[0].as_str(),
            file.values[1].as_str(),
            file.values[2].as_str(),
        )];
        {
            for batch in batches {
                let rows = Rows::new(&batch, &file.path, Table::Packages);
                let mut columns = Vec::with_capacity(COLUMNS.len());
                for name in COLUMNS {
                    columns.push(rows.strings(name)?);
                }
                let [repository, digest, platform, name, version, ecosystem, kind, source_name, source_version, arch, extractor, location, layer] =
                    <[StringArray; 13]>::try_from(columns).expect("13 columns");
                for row in 0..batch.num_rows() {
                    let image = (
                        repository.value(row),
                        digest.value(row),
                        platform.value(row),
                    );
                    let Some(key) = images.get(&image) else {
                        continue;
                    };
                    out.entry((*key).clone()).or_default().push(Package {
                        name: name.value(row).to_string(),
                        version: version.value(row).to_string(),
                        ecosystem: ecosystem.value(row).to_string(),
                        package_type: if kind.value(row) == "os" {
                            PackageType::Os
                        } else {
                            PackageType::Language
                        },
                        source_name: optional(&source_name, row),
                        source_version: optional(&source_version, row),
                        arch: optional(&arch, row),
                        extractor: extractor.value(row).to_string(),
                        location: location.value(row).to_string(),
                        layer_digest: optional(&layer, row),
                    });
                }
            }
        }
    }
    for packages in out.values_mut() {
        packages.sort();
        packages.dedup();
    }
    Ok(out)
}

/// The ids of the events already stored for one registry.
pub async fn activity_event_ids(
    warehouse: &Warehouse,
    subscription: &str,
    registry: &str,
) -> Result<HashSet<String>, WarehouseError> {
    let mut ids = HashSet::new();
    let files: Vec<PartitionFile> = partition_files(warehouse, Table::Activity)
        .await?
        .into_iter()
        .filter(|f| f.values == [subscription, registry])
        .collect();
    let read = read_files(warehouse, &files, &["event_id"]).await?;
    for (file, batches) in files.iter().zip(read) {
        for batch in batches {
            let event_id = Rows::new(&batch, &file.path, Table::Activity).strings("event_id")?;
            ids.extend(event_id.iter().flatten().map(str::to_string));
        }
    }
    Ok(ids)
}

/// A committed run, as its `scans` row names it.
#[derive(Debug, Clone)]
pub struct CommittedScan {
    pub scan_id: String,
    /// The data files the run committed (keys, sizes); `None` for a row written before runs named their
    /// files, whose partitions are listed instead.
    pub files: Option<Vec<(String, u64)>>,
    /// Its `scans` file, the commit marker.
    pub marker: PartitionFile,
}

/// Objects read at once.
const READ_CONCURRENCY: usize = 16;

/// Commits write a checkpoint once this many committed runs are not in the newest one.
const CHECKPOINT_EVERY: usize = 32;

/// The folder of the checkpoints: `scans-<newest scan id>.json`, each listing the committed runs up to that
/// one as their `scans` rows name them. A reader reads the newest checkpoint and only the rows of runs
/// committed after it, so opening the warehouse does not cost a read per run ever committed. The rows stay
/// the truth: a checkpoint only repeats them, and one that cannot be read is passed over.
const CHECKPOINTS: &str = "_checkpoints";

/// One committed run as a checkpoint keeps it.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct CheckpointScan {
    scan_id: String,
    marker_key: String,
    marker_size: u64,
    files: Option<Vec<(String, u64)>>,
}

/// The committed runs, by scan id (oldest first): one list of `scans/`, the newest checkpoint, and one
/// read per row committed after it.
pub async fn committed_scans(warehouse: &Warehouse) -> Result<Vec<CommittedScan>, WarehouseError> {
    Ok(committed_scans_counted(warehouse).await?.0)
}

/// [`committed_scans`], and how many of them were read from their rows (not from a checkpoint).
async fn committed_scans_counted(
    warehouse: &Warehouse,
) -> Result<(Vec<CommittedScan>, usize), WarehouseError> {
    // One listing of the run folders, not of every object below them: a checkpointed run's marker is
    // known to exist, and the newer ones are read anyway (a folder without its marker yet is a commit
    // under way, not a committed run).
    let folders = warehouse.list_folders(Table::Scans.name()).await?;
    let mut known: HashMap<String, CheckpointScan> = newest_checkpoint(warehouse)
        .await?
        .into_iter()
        .map(|scan| (scan.scan_id.clone(), scan))
        .collect();
    let marker_file = |scan_id: &str, key: String, size: u64| PartitionFile {
        table: Table::Scans,
        values: vec![scan_id.to_string()],
        path: PathBuf::from(warehouse.describe(&key)),
        key,
        size,
    };
    let mut scans = Vec::new();
    let mut unread = Vec::new();
    for folder in folders {
        let Some(id) = folder
            .rsplit('/')
            .next()
            .and_then(|name| name.strip_prefix("scan_id="))
        else {
            continue;
        };
        let scan_id = unescape_partition_value(id);
        let key = format!("{folder}/{MARKER_FILE}");
        match known.remove(&scan_id) {
            Some(scan) if scan.marker_key == key => scans.push(CommittedScan {
                marker: marker_file(&scan_id, key, scan.marker_size),
                scan_id,
                files: scan.files,
            }),
            _ => unread.push((scan_id, key)),
        }
    }
    let reads: Vec<_> = unread
        .into_iter()
        .map(|(scan_id, key)| async move {
            let Some(bytes) = warehouse.get(&key).await? else {
                return Ok(None);
            };
            let file = marker_file(&scan_id, key, bytes.len() as u64);
            let batches = batches_of(bytes, &file, &["files", "file_sizes"])?;
            Ok::<_, WarehouseError>(Some(CommittedScan {
                scan_id,
                files: marker_files(&batches, &file.path)?,
                marker: file,
            }))
        })
        .collect();
    let read: Vec<CommittedScan> = stream::iter(reads)
        .buffered(READ_CONCURRENCY)
        .try_filter_map(|scan| async move { Ok(scan) })
        .try_collect()
        .await?;
    let read_from_rows = read.len();
    scans.extend(read);
    scans.sort_by(|a, b| a.scan_id.cmp(&b.scan_id));
    Ok((scans, read_from_rows))
}

/// The runs the newest readable checkpoint lists; none when there is none.
async fn newest_checkpoint(warehouse: &Warehouse) -> Result<Vec<CheckpointScan>, WarehouseError> {
    let mut keys: Vec<String> = warehouse
        .list(CHECKPOINTS)
        .await?
        .into_iter()
        .map(|(key, _)| key)
        .filter(|key| key.ends_with(".json"))
        .collect();
    keys.sort();
    while let Some(key) = keys.pop() {
        let Some(bytes) = warehouse.get(&key).await? else {
            continue;
        };
        match serde_json::from_slice::<Vec<CheckpointScan>>(&bytes) {
            Ok(scans) => return Ok(scans),
            Err(err) => {
                tracing::warn!(checkpoint = %warehouse.describe(&key), "passed over: {err}")
            }
        }
    }
    Ok(Vec::new())
}

/// The committed runs, for a commit that has just created its marker: when enough of them were read from
/// their rows, a new checkpoint is written (and all but the two newest removed).
pub async fn committed_scans_checkpointed(
    warehouse: &Warehouse,
) -> Result<Vec<CommittedScan>, WarehouseError> {
    let (scans, read_from_rows) = committed_scans_counted(warehouse).await?;
    let Some(newest) = scans.last() else {
        return Ok(scans);
    };
    if read_from_rows >= CHECKPOINT_EVERY {
        let checkpoint: Vec<CheckpointScan> = scans
            .iter()
            .map(|scan| CheckpointScan {
                scan_id: scan.scan_id.clone(),
                marker_key: scan.marker.key.clone(),
                marker_size: scan.marker.size,
                files: scan.files.clone(),
            })
            .collect();
        let bytes = serde_json::to_vec(&checkpoint).expect("plain data serializes");
        let key = format!("{CHECKPOINTS}/scans-{}.json", newest.scan_id);
        warehouse.put(&key, bytes.into()).await?;
        let mut old: Vec<String> = warehouse
            .list(CHECKPOINTS)
            .await?
            .into_iter()
            .map(|(key, _)| key)
            .collect();
        old.sort();
        old.truncate(old.len().saturating_sub(2));
        for key in old {
            warehouse.delete(&key).await?;
        }
    }
    Ok(scans)
}

/// The `files` and `file_sizes` of a marker's row; `None` when the row predates them.
fn marker_files(
    batches: &[RecordBatch],
    path: &Path,
) -> Result<Option<Vec<(String, u64)>>, WarehouseError> {
    let corrupt = |message: &str| WarehouseError::Corrupt {
        path: path.to_path_buf(),
        message: message.to_string(),
    };
    let Some(batch) = batches.iter().find(|b| b.num_rows() > 0) else {
        return Err(corrupt("the commit marker holds no row"));
    };
    let (Some(files), Some(sizes)) = (
        batch.column_by_name("files"),
        batch.column_by_name("file_sizes"),
    ) else {
        return Ok(None);
    };
    if files.is_null(0) {
        return Ok(None);
    }
    let (files, sizes) = (files.as_list_opt::<i32>(), sizes.as_list_opt::<i32>());
    let (Some(files), Some(sizes)) = (files, sizes) else {
        return Err(corrupt("files and file_sizes must be lists"));
    };
    let keys = files.value(0);
    let keys = keys
        .as_string_opt::<i32>()
        .ok_or_else(|| corrupt("files must list strings"))?;
    let sizes = sizes.value(0);
    let sizes = sizes
        .as_primitive_opt::<Int64Type>()
        .ok_or_else(|| corrupt("file_sizes must list integers"))?;
    if keys.len() != sizes.len() || keys.null_count() > 0 || sizes.null_count() > 0 {
        return Err(corrupt("files and file_sizes do not pair up"));
    }
    Ok(Some(
        keys.iter()
            .zip(sizes.iter())
            .map(|(key, size)| {
                (
                    key.unwrap_or_default().to_string(),
                    size.unwrap_or(0).max(0) as u64,
                )
            })
            .collect(),
    ))
}

/// One data file of a table with the values of its partition columns, outermost first.
#[derive(Debug, Clone)]
pub struct PartitionFile {
    pub table: Table,
    pub values: Vec<String>,
    /// Relative to the warehouse root.
    pub key: String,
    pub size: u64,
    /// Where it is, for messages.
    pub path: PathBuf,
}

impl PartitionFile {
    fn values_array<const N: usize>(&self) -> [String; N] {
        <[String; N]>::try_from(self.values.clone()).expect("one value per partition column")
    }

    /// The file at `key`, if it is a data file of a table under `col=value/` folders, one per partition
    /// column (the values decoded); anything else is not a table's.
    fn parse(warehouse: &Warehouse, key: &str, size: u64) -> Option<PartitionFile> {
        let mut parts = key.split('/');
        let folder = parts.next()?;
        let table = *Table::ALL.iter().find(|t| t.name() == folder)?;
        let mut values = Vec::new();
        for column in table.partition_columns() {
            let value = parts.next()?.strip_prefix(column)?.strip_prefix('=')?;
            values.push(unescape_partition_value(value));
        }
        let name = parts.next()?;
        if parts.next().is_some() || name.starts_with('.') || !name.ends_with(".parquet") {
            return None;
        }
        Some(PartitionFile {
            table,
            values,
            key: key.to_string(),
            size,
            path: PathBuf::from(warehouse.describe(key)),
        })
    }
}

/// Every data file of the committed runs: the files their rows name, and for rows written before runs
/// named their files, every file in their partitions (one list per table, only when such rows exist).
pub async fn scan_files(
    warehouse: &Warehouse,
    scans: &[CommittedScan],
) -> Result<Vec<PartitionFile>, WarehouseError> {
    let mut out = Vec::new();
    let mut legacy = BTreeSet::new();
    for scan in scans {
        match &scan.files {
            Some(files) => out.extend(
                files
                    .iter()
                    .filter_map(|(key, size)| PartitionFile::parse(warehouse, key, *size)),
            ),
            None => {
                legacy.insert(scan.scan_id.as_str());
            }
        }
    }
    if !legacy.is_empty() {
        for table in Table::SCANNED {
            for file in partition_files(warehouse, table).await? {
                if file
                    .values
                    .last()
                    .is_some_and(|id| legacy.contains(id.as_str()))
                {
                    out.push(file);
                }
            }
        }
    }
    Ok(out)
}

/// The files of `table` from the scans since each registry's newest full crawl (every scan of a
/// registry never crawled in full). Scan ids sort by start time, and a crawl is dated by its run's.
pub fn current_files(files: &[PartitionFile], table: Table) -> Vec<PartitionFile> {
    let crawled = newest_crawls(files);
    files
        .iter()
        .filter(|f| f.table == table)
        .filter(|f| {
            crawled
                .get(&(f.values[0].as_str(), f.values[1].as_str()))
                .is_none_or(|since| f.values[2].as_str() >= *since)
        })
        .cloned()
        .collect()
}

/// The scan of each registry's newest full crawl, by (subscription, registry).
fn newest_crawls(files: &[PartitionFile]) -> BTreeMap<(&str, &str), &str> {
    let mut crawled: BTreeMap<(&str, &str), &str> = BTreeMap::new();
    for file in files.iter().filter(|f| f.table == Table::Crawls) {
        let scan = crawled
            .entry((file.values[0].as_str(), file.values[1].as_str()))
            .or_insert(file.values[2].as_str());
        *scan = (*scan).max(file.values[2].as_str());
    }
    crawled
}

/// The `crawls` files of each registry's newest full crawl: all the latest views need of `crawls`.
pub fn newest_crawl_files(files: &[PartitionFile]) -> Vec<PartitionFile> {
    let crawled = newest_crawls(files);
    files
        .iter()
        .filter(|f| {
            f.table == Table::Crawls
                && crawled.get(&(f.values[0].as_str(), f.values[1].as_str()))
                    == Some(&f.values[2].as_str())
        })
        .cloned()
        .collect()
}

/// Every data file of `table` (one list request); anything not under `col=value/` folders is skipped.
pub async fn partition_files(
    warehouse: &Warehouse,
    table: Table,
) -> Result<Vec<PartitionFile>, WarehouseError> {
    Ok(warehouse
        .list(table.name())
        .await?
        .into_iter()
        .filter_map(|(key, meta)| PartitionFile::parse(warehouse, &key, meta.size))
        .filter(|file| file.table == table)
        .collect())
}

/// Reads the named columns of each file, a few files at once, in the order given.
async fn read_files(
    warehouse: &Warehouse,
    files: &[PartitionFile],
    columns: &[&str],
) -> Result<Vec<Vec<RecordBatch>>, WarehouseError> {
    let reads: Vec<_> = files
        .iter()
        .map(|file| read_batches(warehouse, file, columns))
        .collect();
    stream::iter(reads)
        .buffered(READ_CONCURRENCY)
        .try_collect()
        .await
}

/// Reads the named columns of one file (names it does not hold are left out: older files lack newer
/// nullable columns). One get: Vigil's files are small next to the memory a run holds anyway.
async fn read_batches(
    warehouse: &Warehouse,
    file: &PartitionFile,
    columns: &[&str],
) -> Result<Vec<RecordBatch>, WarehouseError> {
    let bytes = warehouse
        .get(&file.key)
        .await?
        .ok_or_else(|| corrupt(file, "named by a committed run but missing".into()))?;
    batches_of(bytes, file, columns)
}

fn corrupt(file: &PartitionFile, message: String) -> WarehouseError {
    WarehouseError::Corrupt {
        path: file.path.clone(),
        message,
    }
}

/// The `columns` of the Parquet file `file` whose bytes are `bytes`.
fn batches_of(
    bytes: Bytes,
    file: &PartitionFile,
    columns: &[&str],
) -> Result<Vec<RecordBatch>, WarehouseError> {
    let corrupt = |message: String| corrupt(file, message);
    let builder =
        ParquetRecordBatchReaderBuilder::try_new(bytes).map_err(|e| corrupt(e.to_string()))?;
    // Vigil's files are flat: each top-level Arrow field is one root column of the Parquet schema.
    let indices: Vec<usize> = builder
        .schema()
        .fields()
        .iter()
        .enumerate()
        .filter(|(_, field)| columns.contains(&field.name().as_str()))
        .map(|(index, _)| index)
        .collect();
    let projection = ProjectionMask::roots(builder.parquet_schema(), indices);
    let reader = builder
        .with_projection(projection)
        .build()
        .map_err(|e| corrupt(e.to_string()))?;
    reader
        .map(|batch| batch.map_err(|e| corrupt(e.to_string())))
        .collect()
}

/// The columns of one batch read from `path`, typed as `table` declares them.
struct Rows<'a> {
    batch: &'a RecordBatch,
    path: &'a Path,
    table: Table,
}

impl<'a> Rows<'a> {
    fn new(batch: &'a RecordBatch, path: &'a Path, table: Table) -> Rows<'a> {
        Rows { batch, path, table }
    }

    fn corrupt(&self, message: String) -> WarehouseError {
        WarehouseError::Corrupt {
            path: self.path.to_path_buf(),
            message,
        }
    }

    /// A column cast to `data_type`; a nullable column the file lacks reads as nulls.
    fn column(
        &self,
        name: &str,
        data_type: &DataType,
    ) -> Result<arrow::array::ArrayRef, WarehouseError> {
        let Some(column) = self.batch.column_by_name(name) else {
            let schema = self.table.file_schema();
            return match schema.field_with_name(name) {
                Ok(field) if field.is_nullable() => Ok(arrow::array::new_null_array(
                    data_type,
                    self.batch.num_rows(),
                )),
                _ => Err(self.corrupt(format!("no column {name}"))),
            };
        };
        let cast = arrow::compute::cast(column, data_type)
            .map_err(|e| self.corrupt(format!("column {name}: {e}")))?;
        let declared_required = self
            .table
            .file_schema()
            .field_with_name(name)
            .is_ok_and(|field| !field.is_nullable());
        if declared_required && cast.null_count() > 0 {
            return Err(self.corrupt(format!("column {name} holds nulls")));
        }
        Ok(cast)
    }

    fn strings(&self, name: &str) -> Result<StringArray, WarehouseError> {
        Ok(self
            .column(name, &DataType::Utf8)?
            .as_string::<i32>()
            .clone())
    }

    fn integers(&self, name: &str) -> Result<Int64Array, WarehouseError> {
        Ok(self
            .column(name, &DataType::Int64)?
            .as_primitive::<Int64Type>()
            .clone())
    }

    /// A timestamp column as microseconds since the epoch (UTC).
    fn micros(
        &self,
        name: &str,
    ) -> Result<arrow::array::PrimitiveArray<TimestampMicrosecondType>, WarehouseError> {
        Ok(self
            .column(name, &timestamp())?
            .as_primitive::<TimestampMicrosecondType>()
            .clone())
    }
}

fn optional(array: &StringArray, row: usize) -> Option<String> {
    (!array.is_null(row)).then(|| array.value(row).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Inventory;
    use crate::warehouse::commit::commit;
    use crate::warehouse::{partition_key, ScanRun, ScannedImage, Selection};

    fn image(status: CoverageStatus, packages: &[&str]) -> ScannedImage {
        ScannedImage {
            subscription: "prod/eu".into(),
            registry: "main".into(),
            repository: "apps/web".into(),
            tags: vec!["1.0".into()],
            digest: format!("sha256:{}", "a".repeat(64)),
            platform: "linux/amd64".into(),
            inventory: Inventory {
                image: "web".into(),
                digest: None,
                platform: None,
                os: None,
                packages: packages
                    .iter()
                    .map(|name| Package {
                        name: name.to_string(),
                        version: "1.0".into(),
                        ecosystem: "PyPI".into(),
                        package_type: PackageType::Language,
                        source_name: None,
                        source_version: None,
                        arch: None,
                        extractor: "lang/python".into(),
                        location: "/app".into(),
                        layer_digest: None,
                    })
                    .collect(),
                coverage: Coverage {
                    status,
                    reason: String::new(),
                },
            },
            findings: Vec::new(),
            pushed_at: None,
            last_pulled_at: None,
            selection: Selection::Forced,
            inventory_scan_id: None,
            carried: None,
        }
    }

    fn run(scan_id: &str, started_at: &str, images: Vec<ScannedImage>) -> ScanRun {
        let started_at = started_at.parse().unwrap();
        ScanRun {
            scan_id: scan_id.into(),
            started_at,
            finished_at: started_at,
            scanner_version: "test".into(),
            db_content_hash: "hash".into(),
            images_seen: images.len() as u64,
            images_scanned: images.len() as u64,
            images_failed: 0,
            errors: Vec::new(),
            schedule: None,
            deferred: 0,
            crawled: Vec::new(),
            images,
        }
    }

    /// The images file a commit wrote.
    fn images_file(root: &Path, info: &crate::warehouse::CommitInfo) -> PathBuf {
        let key = info
            .files
            .iter()
            .find(|key| key.starts_with("images/"))
            .expect("an images file");
        root.join(key)
    }

    #[tokio::test]
    async fn the_newest_row_of_each_image_from_committed_scans_only() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let warehouse = Warehouse::local(root).unwrap();
        let old = run(
            "s1",
            "2026-01-01T00:00:00Z",
            vec![image(CoverageStatus::Complete, &["flask", "jinja2"])],
        );
        let first = commit(&warehouse, &old).await.unwrap();
        let new = run(
            "s2",
            "2026-01-02T00:00:00Z",
            vec![image(CoverageStatus::Partial, &["flask"])],
        );
        commit(&warehouse, &new).await.unwrap();
        // A run killed before its commit marker: its partition is there, never read.
        let killed = root.join(partition_key(Table::Images, &["prod/eu", "main", "s3"]));
        std::fs::create_dir_all(&killed).unwrap();
        std::fs::copy(images_file(root, &first), killed.join("part-0.parquet")).unwrap();

        let newest = newest_images(&warehouse).await.unwrap();
        let key = ImageKey {
            subscription: "prod/eu".into(),
            registry: "main".into(),
            repository: "apps/web".into(),
            digest: format!("sha256:{}", "a".repeat(64)),
            platform: "linux/amd64".into(),
        };
        assert_eq!(newest.len(), 1);
        let stored = &newest[&key];
        assert_eq!(stored.findings_scan_id, "s2");
        assert_eq!(stored.coverage.status, CoverageStatus::Partial);
        assert_eq!(stored.counts, Some(FindingCounts::default()));

        let packages = stored_packages(
            &warehouse,
            &[(key.clone(), "s1".into()), (key.clone(), "s3".into())],
        )
        .await
        .unwrap();
        let names: Vec<&str> = packages[&key].iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["flask", "jinja2"], "from s1; s3 never committed");
    }

    #[tokio::test]
    async fn an_unknown_coverage_status_or_a_broken_file_is_an_error_naming_the_file() {
        use parquet::arrow::ArrowWriter;

        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let warehouse = Warehouse::local(root).unwrap();
        let info = commit(
            &warehouse,
            &run(
                "s1",
                "2026-01-01T00:00:00Z",
                vec![image(CoverageStatus::Complete, &[])],
            ),
        )
        .await
        .unwrap();
        let path = images_file(root, &info);
        let bytes = bytes::Bytes::from(std::fs::read(&path).unwrap());
        let batch = ParquetRecordBatchReaderBuilder::try_new(bytes)
            .unwrap()
            .build()
            .unwrap()
            .next()
            .unwrap()
            .unwrap();
        let index = batch.schema().index_of("coverage_status").unwrap();
        let mut columns = batch.columns().to_vec();
        columns[index] = std::sync::Arc::new(StringArray::from(vec!["bogus"]));
        let bogus = RecordBatch::try_new(batch.schema(), columns).unwrap();
        let mut writer =
            ArrowWriter::try_new(std::fs::File::create(&path).unwrap(), bogus.schema(), None)
                .unwrap();
        writer.write(&bogus).unwrap();
        writer.close().unwrap();
        let err = newest_images(&warehouse).await.unwrap_err().to_string();
        assert!(
            err.contains("bogus") && err.contains(&path.display().to_string()),
            "{err}"
        );

        std::fs::write(&path, b"not parquet").unwrap();
        let err = newest_images(&warehouse).await.unwrap_err();
        assert!(
            matches!(&err, WarehouseError::Corrupt { path: named, .. } if *named == path),
            "{err}"
        );
    }

    #[tokio::test]
    async fn activity_counts_each_event_once_without_vigils_own_requests() {
        use crate::warehouse::{write_activity, ActivityRow};

        let dir = tempfile::tempdir().unwrap();
        let root = &Warehouse::local(dir.path()).unwrap();
        let at = |text: &str| text.parse::<DateTime<Utc>>().unwrap();
        let row = |id: &str, action: &str, occurred: &str, agent: Option<&str>, received: &str| {
            ActivityRow {
                event_id: id.into(),
                action: action.into(),
                repository: "apps/web".into(),
                digest: "sha256:d".into(),
                tag: None,
                media_type: "application/vnd.oci.image.manifest.v1+json".into(),
                occurred_at: at(occurred),
                user_agent: agent.map(str::to_string),
                source: None,
                received_at: at(received),
            }
        };
        write_activity(
            root,
            "prod",
            "main",
            &[
                row(
                    "e1",
                    "pull",
                    "2026-01-01T00:00:00Z",
                    None,
                    "2026-01-01T00:00:00Z",
                ),
                row(
                    "e2",
                    "push",
                    "2026-01-02T00:00:00Z",
                    Some("docker/27"),
                    "2026-01-02T00:00:00Z",
                ),
                row(
                    "e3",
                    "pull",
                    "2026-01-05T00:00:00Z",
                    Some("vigil/0.1.0"),
                    "2026-01-05T00:00:00Z",
                ),
            ],
        )
        .await
        .unwrap();
        // The same pull stored again later, received after the first copy: the first copy counts.
        write_activity(
            root,
            "prod",
            "main",
            &[row(
                "e1",
                "pull",
                "2026-01-09T00:00:00Z",
                None,
                "2026-01-09T00:00:00Z",
            )],
        )
        .await
        .unwrap();
        let last = last_activity(root).await.unwrap();
        let key = ActivityKey {
            subscription: "prod".into(),
            registry: "main".into(),
            digest: "sha256:d".into(),
        };
        assert_eq!(last.pulls[&key], at("2026-01-01T00:00:00Z"));
        assert_eq!(last.pushes[&key], at("2026-01-02T00:00:00Z"));
        let ids = activity_event_ids(root, "prod", "main").await.unwrap();
        assert_eq!(ids.len(), 3);
        assert!(activity_event_ids(root, "prod", "other")
            .await
            .unwrap()
            .is_empty());
    }

    #[tokio::test]
    async fn a_checkpoint_spares_reading_every_run_and_never_hides_one() {
        let dir = tempfile::tempdir().unwrap();
        let warehouse = Warehouse::local(dir.path()).unwrap();
        let mut ids = Vec::new();
        for n in 0..CHECKPOINT_EVERY + 3 {
            let id = format!("s{n:03}");
            let at = format!("2026-01-01T00:{:02}:{:02}Z", n / 60, n % 60);
            commit(
                &warehouse,
                &run(&id, &at, vec![image(CoverageStatus::Complete, &["flask"])]),
            )
            .await
            .unwrap();
            ids.push(id);
        }
        let checkpoints = warehouse.list(CHECKPOINTS).await.unwrap();
        assert_eq!(checkpoints.len(), 1, "{checkpoints:?}");
        let (scans, read_from_rows) = committed_scans_counted(&warehouse).await.unwrap();
        let listed: Vec<&str> = scans.iter().map(|s| s.scan_id.as_str()).collect();
        assert_eq!(
            listed, ids,
            "every committed run, the newer ones from their rows"
        );
        assert!(
            read_from_rows < CHECKPOINT_EVERY,
            "{read_from_rows} rows read"
        );
        assert!(scans
            .iter()
            .all(|s| s.files.as_ref().is_some_and(|f| !f.is_empty())));

        // A checkpoint that cannot be read is passed over: the rows are the truth.
        std::fs::write(dir.path().join(&checkpoints[0].0), b"{not json").unwrap();
        let (again, read_from_rows) = committed_scans_counted(&warehouse).await.unwrap();
        assert_eq!(again.len(), ids.len());
        assert_eq!(read_from_rows, ids.len());
    }

    #[tokio::test]
    async fn a_run_folder_without_its_marker_is_not_a_committed_run() {
        let dir = tempfile::tempdir().unwrap();
        let warehouse = Warehouse::local(dir.path()).unwrap();
        commit(
            &warehouse,
            &run(
                "s1",
                "2026-01-01T00:00:00Z",
                vec![image(CoverageStatus::Complete, &["flask"])],
            ),
        )
        .await
        .unwrap();
        // A commit under way: its folder exists, its marker is still a staging file.
        let folder = dir.path().join("scans/scan_id=s2");
        std::fs::create_dir_all(&folder).unwrap();
        std::fs::write(folder.join("part-0.parquet#1"), b"half").unwrap();
        let scans = committed_scans(&warehouse).await.unwrap();
        let ids: Vec<&str> = scans.iter().map(|s| s.scan_id.as_str()).collect();
        assert_eq!(ids, ["s1"]);
    }
}
