//! Writing: Arrow batches from a run and zstd Parquet files (the commit that publishes them is in
//! `commit`), and the append-only tables (rule changes, registry activity).

use std::sync::Arc;

use arrow::array::{
    ArrayRef, BooleanArray, Date32Array, Float64Array, Int32Array, Int64Array, Int64Builder,
    ListBuilder, RecordBatch, StringArray, StringBuilder, TimestampMicrosecondArray,
};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::{EnabledStatistics, WriterProperties};

use super::commit::{Manifest, RunRecord};
use super::schema::{image_id, Table};
use super::store::Warehouse;
use super::{
    partition_key, CrawledRegistry, FindingCounts, ScanRun, ScannedImage, Selection, WarehouseError,
};
use crate::matcher::{Finding, Severity};

/// Rows per row group: large enough for fast scans, small enough that a reader can skip by statistics.
const ROW_GROUP_ROWS: usize = 256 * 1024;

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

pub(super) fn images_batch(
    run: &ScanRun,
    images: &[&ScannedImage],
) -> Result<RecordBatch, WarehouseError> {
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

pub(super) fn packages_batch(
    run: &ScanRun,
    images: &[&ScannedImage],
) -> Result<RecordBatch, WarehouseError> {
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

pub(super) fn findings_batch(
    run: &ScanRun,
    images: &[&ScannedImage],
) -> Result<RecordBatch, WarehouseError> {
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

pub(super) fn crawls_batch(
    crawled_at: DateTime<Utc>,
    crawl: &CrawledRegistry,
) -> Result<RecordBatch, WarehouseError> {
    batch(
        Table::Crawls,
        vec![
            timestamps([Some(micros(crawled_at))]),
            Arc::new(Int64Array::from_iter_values([crawl.images_seen as i64])),
        ],
    )
}

/// The run's one `scans` row, from every shard's manifest: its commit marker.
pub(super) fn scans_batch(
    record: &RunRecord,
    manifests: &[&Manifest],
    files: &[(String, u64)],
) -> Result<RecordBatch, WarehouseError> {
    let sum = |f: fn(&Manifest) -> u64| {
        Arc::new(Int64Array::from_iter_values([manifests
            .iter()
            .map(|m| f(m) as i64)
            .sum::<i64>()])) as ArrayRef
    };
    let selected = |selection: Selection| {
        Arc::new(Int64Array::from_iter_values([manifests
            .iter()
            .map(|m| m.selected.get(selection.as_str()).copied().unwrap_or(0) as i64)
            .sum::<i64>()])) as ArrayRef
    };
    let finished_at = manifests
        .iter()
        .map(|m| m.finished_at)
        .max()
        .unwrap_or(record.started_at);
    let first = manifests.first();
    let text = |f: fn(&Manifest) -> &str| first.map(|m| f(m)).unwrap_or_default();
    let schedule = first.and_then(|m| m.schedule.as_deref());
    let mut sizes = ListBuilder::new(Int64Builder::new());
    for (_, size) in files {
        sizes.values().append_value(*size as i64);
    }
    sizes.append(true);
    batch(
        Table::Scans,
        vec![
            timestamps([Some(micros(record.started_at))]),
            timestamps([Some(micros(finished_at))]),
            sum(|m| m.images_seen),
            sum(|m| m.images_scanned),
            sum(|m| m.images_failed),
            sum(|m| m.findings),
            strings([schedule]),
            selected(Selection::New),
            selected(Selection::Pulled),
            selected(Selection::Pushed),
            selected(Selection::Forced),
            selected(Selection::Carried),
            sum(|m| m.deferred),
            string_lists([manifests
                .iter()
                .flat_map(|m| m.errors.iter().map(String::as_str))]),
            required([text(|m| m.db_content_hash.as_str())]),
            required([text(|m| m.scanner_version.as_str())]),
            strings([Some(record.run_id.as_str())]),
            Arc::new(Int64Array::from_iter_values([i64::from(record.shards)])),
            string_lists([files.iter().map(|(key, _)| key.as_str())]),
            Arc::new(sizes.finish()),
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

/// One table's rows as a zstd Parquet file, in memory (a run's batches are in memory already).
pub(super) fn encode(table: Table, batch: &RecordBatch) -> Result<Bytes, WarehouseError> {
    let parquet_error = |source| WarehouseError::Encode {
        table: table.name(),
        source,
    };
    let mut writer = ArrowWriter::try_new(Vec::new(), batch.schema(), Some(writer_properties()))
        .map_err(parquet_error)?;
    writer.write(batch).map_err(parquet_error)?;
    Ok(Bytes::from(writer.into_inner().map_err(parquet_error)?))
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

/// Appends one rule change to `disable_rules/` as its own file, written in one put; file names are unique,
/// so concurrent changes never overwrite each other. Returns the file's key.
pub async fn write_rule_change(
    warehouse: &Warehouse,
    change: &RuleChange<'_>,
) -> Result<String, WarehouseError> {
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
    let suffix: u32 = rand::random();
    let name = format!(
        "{}-{}-v{}-{suffix:08x}.parquet",
        change.updated_at.format("%Y%m%dT%H%M%S%6fZ"),
        change.rule_id,
        change.version
    );
    let key = format!("{}/{name}", partition_key(Table::DisableRules, &[]));
    warehouse
        .put(&key, encode(Table::DisableRules, &batch)?)
        .await?;
    Ok(key)
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

/// Appends events of one registry to `activity/` as one file, durable on return; returns its key.
pub async fn write_activity(
    warehouse: &Warehouse,
    subscription: &str,
    registry: &str,
    rows: &[ActivityRow],
) -> Result<Option<String>, WarehouseError> {
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
    let name = format!(
        "events-{}-{:08x}.parquet",
        Utc::now().format("%Y%m%dT%H%M%S%6fZ"),
        rand::random::<u32>()
    );
    let key = format!(
        "{}/{name}",
        partition_key(Table::Activity, &[subscription, registry])
    );
    warehouse
        .put(&key, encode(Table::Activity, &batch)?)
        .await?;
    Ok(Some(key))
}
