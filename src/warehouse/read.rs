//! Warehouse stage, reading back: what earlier runs committed, as the next run plans its selection and as
//! the events receiver deduplicates. It reads the commit markers (`scans`) first, then opens exactly the
//! Parquet files of committed partitions with a column projection: no query engine, no views, no rules
//! (those are the reports' business, in `report`).

use std::collections::{BTreeSet, HashMap, HashSet};
use std::fs::File;
use std::path::{Path, PathBuf};

use arrow::array::{Array, AsArray, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Int64Type, TimestampMicrosecondType};
use chrono::{DateTime, Utc};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ProjectionMask;

use super::schema::{timestamp, Table, FINDING_COUNT_COLUMNS};
use super::{
    committed_scans, partition_dir, unescape_partition_value, FindingCounts, WarehouseError,
};
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
pub fn newest_images(root: &Path) -> Result<HashMap<ImageKey, StoredImage>, WarehouseError> {
    let mut newest: HashMap<ImageKey, ((i64, String), StoredImage)> = HashMap::new();
    for file in committed_files(root, Table::Images)? {
        let [subscription, registry, scan_id] = file.values_array::<3>();
        for batch in read_batches(&file.path, &ImagesColumns::NAMES)? {
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
pub fn last_activity(root: &Path) -> Result<LastActivity, WarehouseError> {
    let mut by_registry: HashMap<(String, String), Vec<PathBuf>> = HashMap::new();
    for file in partition_files(root, Table::Activity)? {
        let [subscription, registry] = file.values_array::<2>();
        by_registry
            .entry((subscription, registry))
            .or_default()
            .push(file.path);
    }
    let mut last = LastActivity::default();
    for ((subscription, registry), files) in by_registry {
        for event in first_copies(&files)?.into_values() {
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
fn first_copies(files: &[PathBuf]) -> Result<HashMap<String, StoredEvent>, WarehouseError> {
    const COLUMNS: [&str; 6] = [
        "event_id",
        "action",
        "digest",
        "occurred_at",
        "user_agent",
        "received_at",
    ];
    let mut events: HashMap<String, StoredEvent> = HashMap::new();
    for path in files {
        for batch in read_batches(path, &COLUMNS)? {
            let rows = Rows::new(&batch, path, Table::Activity);
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
pub fn stored_packages(
    root: &Path,
    wanted: &[(ImageKey, String)],
) -> Result<HashMap<ImageKey, Vec<Package>>, WarehouseError> {
    let mut out: HashMap<ImageKey, Vec<Package>> = HashMap::new();
    if wanted.is_empty() {
        return Ok(out);
    }
    let committed = committed_scans(root)?;
    // One partition per (subscription, registry, scan): which of its images are wanted.
    type Partition<'a> = (&'a str, &'a str, &'a str);
    let mut partitions: HashMap<Partition, HashMap<(&str, &str, &str), &ImageKey>> = HashMap::new();
    for (key, scan_id) in wanted {
        if committed.contains(scan_id) {
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
    for ((subscription, registry, scan_id), images) in partitions {
        let dir = partition_dir(root, Table::Packages, &[subscription, registry, scan_id]);
        for path in parquet_files(&dir)? {
            for batch in read_batches(&path, &COLUMNS)? {
                let rows = Rows::new(&batch, &path, Table::Packages);
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
pub fn activity_event_ids(
    root: &Path,
    subscription: &str,
    registry: &str,
) -> Result<HashSet<String>, WarehouseError> {
    let mut ids = HashSet::new();
    let dir = partition_dir(root, Table::Activity, &[subscription, registry]);
    for path in parquet_files(&dir)? {
        for batch in read_batches(&path, &["event_id"])? {
            let event_id = Rows::new(&batch, &path, Table::Activity).strings("event_id")?;
            ids.extend(event_id.iter().flatten().map(str::to_string));
        }
    }
    Ok(ids)
}

/// One data file of a table with the values of its partition columns, outermost first.
struct PartitionFile {
    values: Vec<String>,
    path: PathBuf,
}

impl PartitionFile {
    fn values_array<const N: usize>(&self) -> [String; N] {
        <[String; N]>::try_from(self.values.clone()).expect("one value per partition column")
    }
}

/// The files of the committed scans of a scan-partitioned table.
fn committed_files(root: &Path, table: Table) -> Result<Vec<PartitionFile>, WarehouseError> {
    let committed: BTreeSet<String> = committed_scans(root)?;
    let mut files = partition_files(root, table)?;
    files.retain(|file| {
        file.values
            .last()
            .is_some_and(|scan| committed.contains(scan))
    });
    Ok(files)
}

/// Every data file of `table` under `col=value/` folders, one level per partition column (the values
/// decoded); anything else (hidden temporary files, stray folders) is not the table's.
fn partition_files(root: &Path, table: Table) -> Result<Vec<PartitionFile>, WarehouseError> {
    let mut level = vec![(Vec::new(), root.join(table.name()))];
    for column in table.partition_columns() {
        let mut next = Vec::new();
        for (values, dir) in level {
            for (name, path) in entries(&dir)? {
                let Some(value) = name
                    .strip_prefix(column)
                    .and_then(|rest| rest.strip_prefix('='))
                else {
                    continue;
                };
                if path.is_dir() {
                    let mut values = values.clone();
                    values.push(unescape_partition_value(value));
                    next.push((values, path));
                }
            }
        }
        level = next;
    }
    let mut files = Vec::new();
    for (values, dir) in level {
        for path in parquet_files(&dir)? {
            files.push(PartitionFile {
                values: values.clone(),
                path,
            });
        }
    }
    Ok(files)
}

/// The entries of a folder by name; none when it does not exist.
fn entries(dir: &Path) -> Result<Vec<(String, PathBuf)>, WarehouseError> {
    let listing = match std::fs::read_dir(dir) {
        Ok(listing) => listing,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(err) => return Err(WarehouseError::io(dir)(err)),
    };
    let mut out = Vec::new();
    for entry in listing {
        let entry = entry.map_err(WarehouseError::io(dir))?;
        if let Ok(name) = entry.file_name().into_string() {
            out.push((name, entry.path()));
        }
    }
    out.sort();
    Ok(out)
}

/// The Parquet files directly in `dir`, as every reader of the warehouse sees them: `*.parquet`, not
/// hidden (a commit stages files as `.NAME.tmp`).
fn parquet_files(dir: &Path) -> Result<Vec<PathBuf>, WarehouseError> {
    Ok(entries(dir)?
        .into_iter()
        .filter(|(name, path)| {
            !name.starts_with('.') && name.ends_with(".parquet") && path.is_file()
        })
        .map(|(_, path)| path)
        .collect())
}

/// Reads the named columns of one file (names it does not hold are left out: older files lack newer
/// nullable columns).
fn read_batches(path: &Path, columns: &[&str]) -> Result<Vec<RecordBatch>, WarehouseError> {
    let corrupt = |message: String| WarehouseError::Corrupt {
        path: path.to_path_buf(),
        message,
    };
    let file = File::open(path).map_err(WarehouseError::io(path))?;
    let builder =
        ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| corrupt(e.to_string()))?;
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
    use crate::warehouse::{commit, ScanRun, ScannedImage, Selection};

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

    #[test]
    fn the_newest_row_of_each_image_from_committed_scans_only() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let old = run(
            "s1",
            "2026-01-01T00:00:00Z",
            vec![image(CoverageStatus::Complete, &["flask", "jinja2"])],
        );
        commit(root, &old).unwrap();
        let new = run(
            "s2",
            "2026-01-02T00:00:00Z",
            vec![image(CoverageStatus::Partial, &["flask"])],
        );
        commit(root, &new).unwrap();
        // A run killed before its commit marker: its partition is there, never read.
        let killed = partition_dir(root, Table::Images, &["prod/eu", "main", "s3"]);
        std::fs::create_dir_all(&killed).unwrap();
        std::fs::copy(
            partition_dir(root, Table::Images, &["prod/eu", "main", "s1"]).join("part-0.parquet"),
            killed.join("part-0.parquet"),
        )
        .unwrap();

        let newest = newest_images(root).unwrap();
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
            root,
            &[(key.clone(), "s1".into()), (key.clone(), "s3".into())],
        )
        .unwrap();
        let names: Vec<&str> = packages[&key].iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["flask", "jinja2"], "from s1; s3 never committed");
    }

    #[test]
    fn an_unknown_coverage_status_or_a_broken_file_is_an_error_naming_the_file() {
        use parquet::arrow::ArrowWriter;

        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        commit(
            root,
            &run(
                "s1",
                "2026-01-01T00:00:00Z",
                vec![image(CoverageStatus::Complete, &[])],
            ),
        )
        .unwrap();
        let path =
            partition_dir(root, Table::Images, &["prod/eu", "main", "s1"]).join("part-0.parquet");
        let schema = Table::Images.file_schema();
        let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
        let batch = read_batches(&path, &names).unwrap().remove(0);
        let index = batch.schema().index_of("coverage_status").unwrap();
        let mut columns = batch.columns().to_vec();
        columns[index] = std::sync::Arc::new(StringArray::from(vec!["bogus"]));
        let bogus = RecordBatch::try_new(batch.schema(), columns).unwrap();
        let mut writer =
            ArrowWriter::try_new(File::create(&path).unwrap(), bogus.schema(), None).unwrap();
        writer.write(&bogus).unwrap();
        writer.close().unwrap();
        let err = newest_images(root).unwrap_err().to_string();
        assert!(
            err.contains("bogus") && err.contains(&path.display().to_string()),
            "{err}"
        );

        std::fs::write(&path, b"not parquet").unwrap();
        let err = newest_images(root).unwrap_err();
        assert!(
            matches!(&err, WarehouseError::Corrupt { path: named, .. } if *named == path),
            "{err}"
        );
    }

    #[test]
    fn activity_counts_each_event_once_without_vigils_own_requests() {
        use crate::warehouse::{write_activity, ActivityRow};

        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
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
        .unwrap();
        let last = last_activity(root).unwrap();
        let key = ActivityKey {
            subscription: "prod".into(),
            registry: "main".into(),
            digest: "sha256:d".into(),
        };
        assert_eq!(last.pulls[&key], at("2026-01-01T00:00:00Z"));
        assert_eq!(last.pushes[&key], at("2026-01-02T00:00:00Z"));
        let ids = activity_event_ids(root, "prod", "main").unwrap();
        assert_eq!(ids.len(), 3);
        assert!(activity_event_ids(root, "prod", "other")
            .unwrap()
            .is_empty());
    }
}
