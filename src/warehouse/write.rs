//! Writing: Arrow batches from a run, zstd Parquet files under temporary names, and the commit.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use arrow::array::{
    ArrayRef, BooleanArray, Date32Array, Float64Array, Int32Array, Int64Array, ListBuilder,
    RecordBatch, StringArray, StringBuilder, TimestampMicrosecondArray,
};
use chrono::{DateTime, Utc};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::{EnabledStatistics, WriterProperties};

use super::schema::{image_id, Table};
use super::{
    committed_scans, partition_dir, CrawledRegistry, FindingCounts, ScanRun, ScannedImage,
    Selection, WarehouseError,
};
use crate::matcher::{Finding, Severity};

/// The file whose presence in `scans/scan_id=<id>/` commits scan `<id>`.
pub(super) const MARKER_FILE: &str = "part-0.parquet";

/// Rows per row group: large enough for fast scans, small enough that a reader can skip by statistics.
const ROW_GROUP_ROWS: usize = 256 * 1024;

/// Uncommitted partitions older than this are left behind by a killed run and are removed by the next
/// commit. Younger ones may belong to a run committing right now.
const ORPHAN_AGE: Duration = Duration::from_secs(10 * 60);

/// What a commit wrote.
#[derive(Debug, Clone, Default)]
pub struct CommitInfo {
    pub files: Vec<PathBuf>,
    pub findings_rows: u64,
    pub images_rows: u64,
    /// Partitions of killed runs removed.
    pub orphans_removed: u64,
}

fn micros(at: DateTime<Utc>) -> i64 {
    at.timestamp_micros()
}

fn timestamps(values: impl IntoIterator<Item = Option<i64>>) -> ArrayRef {
    Arc::new(TimestampMicrosecondArray::from_iter(values).with_timezone("UTC"))
}

fn strings<'a>(values: impl IntoIterator<Item = Option<&'a str>>) -> ArrayRef {
    Arc::new(StringArray::from_iter(values))
}

fn required<'a>(values: impl IntoIterator<Item = &'a str>) -> ArrayRef {
    Arc::new(StringArray::from_iter_values(values))
}

fn string_lists<'a, L, I>(lists: L) -> ArrayRef
where
    L: IntoIterator<Item = I>,
    I: IntoIterator<Item = &'a str>,
{
    let mut builder = ListBuilder::new(StringBuilder::new());
    for list in lists {
        for value in list {
            builder.values().append_value(value);
        }
        builder.append(true);
    }
    Arc::new(builder.finish())
}

/// The `image_id` of each row's image; rows of one image come together, so each is hashed once.
fn ids<'a>(images: impl IntoIterator<Item = &'a ScannedImage>) -> ArrayRef {
    let mut last: Option<(*const ScannedImage, i64)> = None;
    Arc::new(Int64Array::from_iter_values(images.into_iter().map(
        |i| match last {
            Some((pointer, id)) if std::ptr::eq(pointer, i) => id,
            _ => {
                let id = image_id(
                    &i.subscription,
                    &i.registry,
                    &i.repository,
                    &i.digest,
                    &i.platform,
                );
                last = Some((i, id));
                id
            }
        },
    )))
}

fn batch(table: Table, columns: Vec<ArrayRef>) -> Result<RecordBatch, WarehouseError> {
    RecordBatch::try_new(table.file_schema(), columns).map_err(|source| WarehouseError::Arrow {
        table: table.name(),
        source,
    })
}

/// A severity as the number rules and reports compare (`Unknown` 0 to `Critical` 4).
pub fn severity_rank(severity: Severity) -> i32 {
    match severity {
        Severity::Unknown => 0,
        Severity::Low => 1,
        Severity::Medium => 2,
        Severity::High => 3,
        Severity::Critical => 4,
    }
}

fn images_batch(run: &ScanRun, images: &[&ScannedImage]) -> Result<RecordBatch, WarehouseError> {
    let scanned_at = micros(run.started_at);
    let os = |i: &ScannedImage| i.inventory.os.clone();
    let pretty: Vec<Option<String>> = images
        .iter()
        .map(|i| {
            os(i).map(|os| match os.pretty_name {
                Some(pretty) => pretty,
                None => format!("{} {}", os.id, os.version_id).trim().to_string(),
            })
        })
        .collect();
    let package_count = |i: &ScannedImage| match &i.carried {
        Some(c) => c.package_count as i64,
        None => i.inventory.packages.len() as i64,
    };
    let counts: Vec<FindingCounts> = images
        .iter()
        .map(|i| match &i.carried {
            Some(c) => c.counts,
            None => FindingCounts::of(&i.findings),
        })
        .collect();
    let count = |f: fn(&FindingCounts) -> u64| -> ArrayRef {
        Arc::new(Int64Array::from_iter_values(
            counts.iter().map(|c| f(c) as i64),
        ))
    };
    batch(
        Table::Images,
        vec![
            required(images.iter().map(|i| i.repository.as_str())),
            string_lists(images.iter().map(|i| i.tags.iter().map(String::as_str))),
            required(images.iter().map(|i| i.digest.as_str())),
            required(images.iter().map(|i| i.platform.as_str())),
            ids(images.iter().copied()),
            strings(pretty.iter().map(Option::as_deref)),
            strings(
                images
                    .iter()
                    .map(|i| i.inventory.os.as_ref().map(|os| os.id.as_str())),
            ),
            strings(
                images
                    .iter()
                    .map(|i| i.inventory.os.as_ref().map(|os| os.version_id.as_str())),
            ),
            strings(images.iter().map(|i| {
                i.inventory
                    .os
                    .as_ref()
                    .and_then(|os| os.ecosystem.as_deref())
            })),
            Arc::new(Int64Array::from_iter_values(
                images.iter().map(|i| package_count(i)),
            )),
            required(images.iter().map(|i| i.inventory.coverage.status.as_str())),
            required(images.iter().map(|i| i.inventory.coverage.reason.as_str())),
            timestamps(images.iter().map(|i| i.pushed_at.map(micros))),
            timestamps(images.iter().map(|i| i.last_pulled_at.map(micros))),
            count(FindingCounts::total),
            count(|c| c.critical),
            count(|c| c.high),
            count(|c| c.medium),
            count(|c| c.low),
            count(|c| c.unknown),
            count(|c| c.patchable),
            strings(counts.iter().map(|c| c.highest().map(Severity::as_str))),
            required(images.iter().map(|i| i.selection.as_str())),
            required(images.iter().map(|i| match &i.carried {
                Some(c) => c.findings_scan_id.as_str(),
                None => run.scan_id.as_str(),
            })),
            required(
                images
                    .iter()
                    .map(|i| i.inventory_scan_id.as_deref().unwrap_or(&run.scan_id)),
            ),
            timestamps(images.iter().map(|_| Some(scanned_at))),
            required(images.iter().map(|_| run.db_content_hash.as_str())),
            required(images.iter().map(|_| run.scanner_version.as_str())),
        ],
    )
}

fn packages_batch(run: &ScanRun, images: &[&ScannedImage]) -> Result<RecordBatch, WarehouseError> {
    let rows: Vec<(&ScannedImage, &crate::model::Package)> = images
        .iter()
        .filter(|i| i.inventory_scan_id.is_none() && i.carried.is_none())
        .flat_map(|i| i.inventory.packages.iter().map(move |p| (*i, p)))
        .collect();
    let scanned_at = micros(run.started_at);
    batch(
        Table::Packages,
        vec![
            required(rows.iter().map(|(i, _)| i.repository.as_str())),
            required(rows.iter().map(|(i, _)| i.digest.as_str())),
            required(rows.iter().map(|(i, _)| i.platform.as_str())),
            ids(rows.iter().map(|(i, _)| *i)),
            required(rows.iter().map(|(_, p)| p.name.as_str())),
            required(rows.iter().map(|(_, p)| p.version.as_str())),
            required(rows.iter().map(|(_, p)| p.ecosystem.as_str())),
            required(rows.iter().map(|(_, p)| p.package_type.as_str())),
            strings(rows.iter().map(|(_, p)| p.source_name.as_deref())),
            strings(rows.iter().map(|(_, p)| p.source_version.as_deref())),
            strings(rows.iter().map(|(_, p)| p.arch.as_deref())),
            required(rows.iter().map(|(_, p)| p.extractor.as_str())),
            required(rows.iter().map(|(_, p)| p.location.as_str())),
            strings(rows.iter().map(|(_, p)| p.layer_digest.as_deref())),
            timestamps(rows.iter().map(|_| Some(scanned_at))),
        ],
    )
}

fn findings_batch(run: &ScanRun, images: &[&ScannedImage]) -> Result<RecordBatch, WarehouseError> {
    let rows: Vec<(&ScannedImage, &Finding)> = images
        .iter()
        .flat_map(|i| i.findings.iter().map(move |f| (*i, f)))
        .collect();
    let scanned_at = micros(run.started_at);
    batch(
        Table::Findings,
        vec![
            required(rows.iter().map(|(i, _)| i.repository.as_str())),
            string_lists(rows.iter().map(|(i, _)| i.tags.iter().map(String::as_str))),
            required(rows.iter().map(|(i, _)| i.digest.as_str())),
            required(rows.iter().map(|(i, _)| i.platform.as_str())),
            ids(rows.iter().map(|(i, _)| *i)),
            required(rows.iter().map(|(_, f)| f.id.as_str())),
            string_lists(
                rows.iter()
                    .map(|(_, f)| f.aliases.iter().map(String::as_str)),
            ),
            required(rows.iter().map(|(_, f)| &*f.summary)),
            required(rows.iter().map(|(_, f)| &*f.details)),
            required(rows.iter().map(|(_, f)| f.category.as_str())),
            required(rows.iter().map(|(_, f)| f.package_type.as_str())),
            required(rows.iter().map(|(_, f)| f.package_name.as_str())),
            required(rows.iter().map(|(_, f)| f.package_version.as_str())),
            required(rows.iter().map(|(_, f)| f.ecosystem.as_str())),
            strings(rows.iter().map(|(_, f)| f.source_package.as_deref())),
            required(rows.iter().map(|(_, f)| f.advisory_package.as_str())),
            required(rows.iter().map(|(_, f)| f.compared_version.as_str())),
            strings(rows.iter().map(|(_, f)| f.fixed_version.as_deref())),
            Arc::new(BooleanArray::from_iter(
                rows.iter().map(|(_, f)| Some(f.patchable)),
            )),
            strings(rows.iter().map(|(_, f)| f.cvss_v3_vector.as_deref())),
            Arc::new(Float64Array::from_iter(
                rows.iter().map(|(_, f)| f.cvss_v3_score),
            )),
            strings(rows.iter().map(|(_, f)| f.cvss_v4_vector.as_deref())),
            Arc::new(Float64Array::from_iter(
                rows.iter().map(|(_, f)| f.cvss_v4_score),
            )),
            required(rows.iter().map(|(_, f)| f.severity.as_str())),
            Arc::new(Int32Array::from_iter_values(
                rows.iter().map(|(_, f)| severity_rank(f.severity)),
            )),
            required(rows.iter().map(|(_, f)| severity_source(f))),
            string_lists(
                rows.iter()
                    .map(|(_, f)| f.references.iter().map(String::as_str)),
            ),
            timestamps(rows.iter().map(|(_, f)| f.published.map(micros))),
            timestamps(rows.iter().map(|(_, f)| f.modified.map(micros))),
            required(rows.iter().map(|(_, f)| f.remediation.as_str())),
            strings(rows.iter().map(|(_, f)| f.layer_digest.as_deref())),
            required(rows.iter().map(|(_, f)| f.location.as_str())),
            timestamps(rows.iter().map(|_| Some(scanned_at))),
            required(rows.iter().map(|(_, f)| &*f.db_content_hash)),
            required(rows.iter().map(|_| run.scanner_version.as_str())),
        ],
    )
}

fn severity_source(finding: &Finding) -> &'static str {
    use crate::matcher::SeveritySource;
    match finding.severity_source {
        SeveritySource::CvssV3 => "cvss_v3",
        SeveritySource::CvssV4 => "cvss_v4",
        SeveritySource::Vendor => "vendor",
        SeveritySource::None => "none",
    }
}

fn crawls_batch(run: &ScanRun, crawl: &CrawledRegistry) -> Result<RecordBatch, WarehouseError> {
    batch(
        Table::Crawls,
        vec![
            timestamps([Some(micros(run.started_at))]),
            Arc::new(Int64Array::from_iter_values([crawl.images_seen as i64])),
        ],
    )
}

fn scans_batch(run: &ScanRun, findings: u64) -> Result<RecordBatch, WarehouseError> {
    let selected = |selection: Selection| {
        Arc::new(Int64Array::from_iter_values([run
            .images
            .iter()
            .filter(|i| i.selection == selection)
            .count() as i64])) as ArrayRef
    };
    batch(
        Table::Scans,
        vec![
            timestamps([Some(micros(run.started_at))]),
            timestamps([Some(micros(run.finished_at))]),
            Arc::new(Int64Array::from_iter_values([run.images_seen as i64])),
            Arc::new(Int64Array::from_iter_values([run.images_scanned as i64])),
            Arc::new(Int64Array::from_iter_values([run.images_failed as i64])),
            Arc::new(Int64Array::from_iter_values([findings as i64])),
            strings([run.schedule.as_deref()]),
            selected(Selection::New),
            selected(Selection::Pulled),
            selected(Selection::Pushed),
            selected(Selection::Forced),
            selected(Selection::Carried),
            Arc::new(Int64Array::from_iter_values([run.deferred as i64])),
            string_lists([run.errors.iter().map(String::as_str)]),
            required([run.db_content_hash.as_str()]),
            required([run.scanner_version.as_str()]),
        ],
    )
}

/// The writer settings every table uses: zstd, dictionaries, page statistics.
pub fn writer_properties() -> WriterProperties {
    WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(3).unwrap_or_default()))
        .set_dictionary_enabled(true)
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .set_created_by(format!("vigil {}", env!("CARGO_PKG_VERSION")))
        .build()
}

/// Writes `batch` to a hidden temporary file in `dir` and returns it with the name it takes on commit.
fn stage(
    dir: &Path,
    file: &str,
    batch: &RecordBatch,
) -> Result<(PathBuf, PathBuf), WarehouseError> {
    std::fs::create_dir_all(dir).map_err(WarehouseError::io(dir))?;
    let target = dir.join(file);
    let temporary = dir.join(format!(".{file}.tmp"));
    let out = File::create(&temporary).map_err(WarehouseError::io(&temporary))?;
    let parquet_error = |source| WarehouseError::Parquet {
        path: temporary.clone(),
        source,
    };
    let mut writer = ArrowWriter::try_new(out, batch.schema(), Some(writer_properties()))
        .map_err(parquet_error)?;
    writer.write(batch).map_err(parquet_error)?;
    let out = writer.into_inner().map_err(parquet_error)?;
    out.sync_all().map_err(WarehouseError::io(&temporary))?;
    Ok((temporary, target))
}

fn publish(staged: &(PathBuf, PathBuf)) -> Result<(), WarehouseError> {
    std::fs::rename(&staged.0, &staged.1).map_err(WarehouseError::io(&staged.1))?;
    if let Some(dir) = staged.1.parent() {
        // Make the rename durable before anything that depends on it.
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(WarehouseError::io(dir))?;
    }
    Ok(())
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

/// Commits one run: every file staged, then renamed into place, then the commit marker.
pub fn commit(root: &Path, run: &ScanRun) -> Result<CommitInfo, WarehouseError> {
    let committed = committed_scans(root)?;
    if committed.contains(&run.scan_id) {
        return Err(WarehouseError::AlreadyCommitted(run.scan_id.clone()));
    }
    let mut info = CommitInfo {
        orphans_removed: remove_orphans(root, &committed, &run.scan_id)?,
        ..CommitInfo::default()
    };

    let mut groups: BTreeMap<(&str, &str), Vec<&ScannedImage>> = BTreeMap::new();
    for image in &run.images {
        groups
            .entry((image.subscription.as_str(), image.registry.as_str()))
            .or_default()
            .push(image);
    }
    let mut staged = Vec::new();
    for ((subscription, registry), mut images) in groups {
        images.sort_by(|a, b| {
            (&a.repository, &a.digest, &a.platform).cmp(&(&b.repository, &b.digest, &b.platform))
        });
        let values = [subscription, registry, run.scan_id.as_str()];
        let images_batch = images_batch(run, &images)?;
        info.images_rows += images_batch.num_rows() as u64;
        staged.push(stage(
            &partition_dir(root, Table::Images, &values),
            "part-0.parquet",
            &images_batch,
        )?);
        let packages_batch = packages_batch(run, &images)?;
        if packages_batch.num_rows() > 0 {
            staged.push(stage(
                &partition_dir(root, Table::Packages, &values),
                "part-0.parquet",
                &packages_batch,
            )?);
        }
        let findings_batch = findings_batch(run, &images)?;
        if findings_batch.num_rows() > 0 {
            info.findings_rows += findings_batch.num_rows() as u64;
            staged.push(stage(
                &partition_dir(root, Table::Findings, &values),
                "part-0.parquet",
                &findings_batch,
            )?);
        }
    }
    for crawl in &run.crawled {
        let values = [
            crawl.subscription.as_str(),
            crawl.registry.as_str(),
            run.scan_id.as_str(),
        ];
        staged.push(stage(
            &partition_dir(root, Table::Crawls, &values),
            "part-0.parquet",
            &crawls_batch(run, crawl)?,
        )?);
    }
    let marker = stage(
        &partition_dir(root, Table::Scans, &[run.scan_id.as_str()]),
        MARKER_FILE,
        &scans_batch(run, info.findings_rows)?,
    )?;

    for (n, file) in staged.iter().enumerate() {
        publish(file)?;
        if n == 0 {
            fault_point("after-first-file");
        }
    }
    fault_point("before-marker");
    publish(&marker)?;
    info.files = staged.into_iter().map(|(_, target)| target).collect();
    info.files.push(marker.1);
    Ok(info)
}

/// Removes `scan_id=` partitions (and stray temporary files) of runs that never committed, once they are
/// old enough not to belong to a run committing now.
fn remove_orphans(
    root: &Path,
    committed: &BTreeSet<String>,
    current: &str,
) -> Result<u64, WarehouseError> {
    let now = SystemTime::now();
    let old = |path: &Path| {
        std::fs::metadata(path)
            .and_then(|m| m.modified())
            .is_ok_and(|modified| now.duration_since(modified).unwrap_or_default() > ORPHAN_AGE)
    };
    let mut removed = 0;
    let mut stack: Vec<PathBuf> = Table::ALL.iter().map(|t| root.join(t.name())).collect();
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some(id) = name.strip_prefix("scan_id=") {
                if id != current && !committed.contains(id) && old(&path) {
                    std::fs::remove_dir_all(&path).map_err(WarehouseError::io(&path))?;
                    removed += 1;
                } else if id != current && committed.contains(id) {
                    remove_stale_temporaries(&path, &old)?;
                }
            } else if name.starts_with('.') && name.ends_with(".tmp") && old(&path) {
                std::fs::remove_file(&path).map_err(WarehouseError::io(&path))?;
            } else if entry.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push(path);
            }
        }
    }
    Ok(removed)
}

fn remove_stale_temporaries(dir: &Path, old: &dyn Fn(&Path) -> bool) -> Result<(), WarehouseError> {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') && name.ends_with(".tmp") && old(&path) {
            std::fs::remove_file(&path).map_err(WarehouseError::io(&path))?;
        }
    }
    Ok(())
}

/// One change of a disable rule, as stored.
#[derive(Debug, Clone)]
pub struct RuleChange<'a> {
    pub rule_id: &'a str,
    pub version: i64,
    pub op: &'a str,
    pub subscription: &'a str,
    pub registry: Option<&'a str>,
    pub repository_glob: Option<&'a str>,
    pub repository_like: Option<&'a str>,
    pub finding_id: Option<&'a str>,
    pub category: Option<&'a str>,
    pub security_check_contains: Option<&'a str>,
    pub cvss_below: Option<f64>,
    pub severity_below: Option<Severity>,
    pub patchable: Option<bool>,
    pub reason: &'a str,
    /// Days since 1970-01-01.
    pub expires: Option<i32>,
    pub author: &'a str,
    pub updated_at: DateTime<Utc>,
}

/// Appends one rule change to `disable_rules/` as its own file, written and renamed atomically; file names
/// are unique, so concurrent changes never overwrite each other.
pub fn write_rule_change(root: &Path, change: &RuleChange<'_>) -> Result<PathBuf, WarehouseError> {
    let columns: Vec<ArrayRef> = vec![
        required([change.rule_id]),
        Arc::new(Int64Array::from_iter_values([change.version])),
        required([change.op]),
        required([change.subscription]),
        strings([change.registry]),
        strings([change.repository_glob]),
        strings([change.repository_like]),
        strings([change.finding_id]),
        strings([change.category]),
        strings([change.security_check_contains]),
        Arc::new(Float64Array::from_iter([change.cvss_below])),
        strings([change.severity_below.map(Severity::as_str)]),
        Arc::new(Int32Array::from_iter([change
            .severity_below
            .map(severity_rank)])),
        Arc::new(BooleanArray::from_iter([change.patchable])),
        required([change.reason]),
        Arc::new(Date32Array::from_iter([change.expires])),
        required([change.author]),
        timestamps([Some(micros(change.updated_at))]),
    ];
    let batch = batch(Table::DisableRules, columns)?;
    let dir = partition_dir(root, Table::DisableRules, &[]);
    let suffix: u32 = rand::random();
    let name = format!(
        "{}-{}-v{}-{suffix:08x}.parquet",
        change.updated_at.format("%Y%m%dT%H%M%S%6fZ"),
        change.rule_id,
        change.version
    );
    let staged = stage(&dir, &name, &batch)?;
    publish(&staged)?;
    Ok(staged.1)
}

/// One registry event, as stored in `activity`.
#[derive(Debug, Clone, PartialEq)]
pub struct ActivityRow {
    pub event_id: String,
    /// `push` or `pull`.
    pub action: String,
    pub repository: String,
    pub digest: String,
    pub tag: Option<String>,
    pub media_type: String,
    pub occurred_at: DateTime<Utc>,
    pub user_agent: Option<String>,
    /// Where the request came from (the registry's `request.addr`).
    pub source: Option<String>,
    pub received_at: DateTime<Utc>,
}

/// Appends events of one registry to `activity/` as one file, durable (synced and renamed) on return.
pub fn write_activity(
    root: &Path,
    subscription: &str,
    registry: &str,
    rows: &[ActivityRow],
) -> Result<Option<PathBuf>, WarehouseError> {
    if rows.is_empty() {
        return Ok(None);
    }
    let columns: Vec<ArrayRef> = vec![
        required(rows.iter().map(|r| r.event_id.as_str())),
        required(rows.iter().map(|r| r.action.as_str())),
        required(rows.iter().map(|r| r.repository.as_str())),
        required(rows.iter().map(|r| r.digest.as_str())),
        strings(rows.iter().map(|r| r.tag.as_deref())),
        required(rows.iter().map(|r| r.media_type.as_str())),
        timestamps(rows.iter().map(|r| Some(micros(r.occurred_at)))),
        strings(rows.iter().map(|r| r.user_agent.as_deref())),
        strings(rows.iter().map(|r| r.source.as_deref())),
        timestamps(rows.iter().map(|r| Some(micros(r.received_at)))),
    ];
    let batch = batch(Table::Activity, columns)?;
    let dir = partition_dir(root, Table::Activity, &[subscription, registry]);
    let name = format!(
        "events-{}-{:08x}.parquet",
        Utc::now().format("%Y%m%dT%H%M%S%6fZ"),
        rand::random::<u32>()
    );
    let staged = stage(&dir, &name, &batch)?;
    publish(&staged)?;
    Ok(Some(staged.1))
}
