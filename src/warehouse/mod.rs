//! The findings warehouse: Parquet files, one folder per table, hive-partitioned by subscription,
//! registry and scan (`findings/subscription=prod/registry=main/scan_id=<id>/part-….parquet`), in a local
//! folder or on object storage ([`store`]).
//!
//! A run commits by manifest ([`commit`]): data files under unique names, one manifest per shard, and the
//! run's `scans` row as the single commit marker, each created conditionally, so a killed run stays
//! invisible and exactly one writer commits. Readers ([`read`]) open exactly the files committed rows name.

pub mod commit;
mod lock;
pub mod read;
pub mod schema;
pub mod store;
pub mod write;

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::matcher::{Finding, Severity};
use crate::model::Inventory;
pub use commit::{CommitInfo, RunRecord, Shard};
pub use lock::{LeaseTiming, RunLock};
pub use schema::Table;
pub use store::{Location, Warehouse};
pub use write::{write_activity, write_rule_change, ActivityRow};

/// Why a run looked at an image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Selection {
    /// A digest never scanned before: inventoried from its layers.
    New,
    /// Pulled within the schedule's window: re-matched.
    Pulled,
    /// Pushed within the schedule's window: re-matched.
    Pushed,
    /// Named on the command line or swept by a run without a policy.
    Forced,
    /// Seen by the crawl but not selected: its previous assessment stands.
    Carried,
}

impl Selection {
    pub const ALL: [Selection; 5] = [
        Selection::New,
        Selection::Pulled,
        Selection::Pushed,
        Selection::Forced,
        Selection::Carried,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Selection::New => "new",
            Selection::Pulled => "pulled",
            Selection::Pushed => "pushed",
            Selection::Forced => "forced",
            Selection::Carried => "carried",
        }
    }
}

/// The assessment an image not re-evaluated keeps from an earlier scan.
#[derive(Debug, Clone)]
pub struct Carried {
    /// The scan whose findings rows stand for this image.
    pub findings_scan_id: String,
    pub package_count: u64,
    pub counts: FindingCounts,
}

/// An image's findings counted by severity, and how many of them an upgrade fixes: stored with each
/// `images` row, so an assessment only reads the findings rows that a disable rule hides.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FindingCounts {
    pub critical: u64,
    pub high: u64,
    pub medium: u64,
    pub low: u64,
    pub unknown: u64,
    pub patchable: u64,
}

impl FindingCounts {
    pub fn of(findings: &[Finding]) -> FindingCounts {
        let mut counts = FindingCounts::default();
        for finding in findings {
            *counts.of_severity(finding.severity) += 1;
            counts.patchable += u64::from(finding.patchable);
        }
        counts
    }

    fn of_severity(&mut self, severity: Severity) -> &mut u64 {
        match severity {
            Severity::Critical => &mut self.critical,
            Severity::High => &mut self.high,
            Severity::Medium => &mut self.medium,
            Severity::Low => &mut self.low,
            Severity::Unknown => &mut self.unknown,
        }
    }

    pub fn total(&self) -> u64 {
        self.critical + self.high + self.medium + self.low + self.unknown
    }

    /// The highest severity counted, if any finding was.
    pub fn highest(&self) -> Option<Severity> {
        [
            (Severity::Critical, self.critical),
            (Severity::High, self.high),
            (Severity::Medium, self.medium),
            (Severity::Low, self.low),
            (Severity::Unknown, self.unknown),
        ]
        .into_iter()
        .find(|&(_, count)| count > 0)
        .map(|(severity, _)| severity)
    }
}

/// One image of one platform as a scan saw it.
#[derive(Debug, Clone)]
pub struct ScannedImage {
    pub subscription: String,
    pub registry: String,
    pub repository: String,
    /// Every tag that named this image in the crawl, sorted; empty when it was named by digest.
    pub tags: Vec<String>,
    /// The single-platform manifest digest.
    pub digest: String,
    /// `os/arch[/variant]`.
    pub platform: String,
    pub inventory: Inventory,
    pub findings: Vec<Finding>,
    pub pushed_at: Option<DateTime<Utc>>,
    pub last_pulled_at: Option<DateTime<Utc>>,
    pub selection: Selection,
    /// The scan whose stored packages `inventory` came from; `None` when this run read the layers (its
    /// packages are then stored, for later runs to re-match).
    pub inventory_scan_id: Option<String>,
    /// Set when the image was not re-evaluated: `inventory` and `findings` are then empty.
    pub carried: Option<Carried>,
}

/// One registry crawled in full by a scan: images of it missing from the crawl no longer exist.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CrawledRegistry {
    pub subscription: String,
    pub registry: String,
    /// Distinct (repository, digest, platform) the crawl listed.
    pub images_seen: u64,
}

/// Everything one run commits.
#[derive(Debug, Clone)]
pub struct ScanRun {
    pub scan_id: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    pub scanner_version: String,
    pub db_content_hash: String,
    pub images_seen: u64,
    pub images_scanned: u64,
    pub images_failed: u64,
    pub errors: Vec<String>,
    /// The schedule that started the run, if one did.
    pub schedule: Option<String>,
    /// New images left for a later run by the schedule's `max_images`.
    pub deferred: u64,
    pub crawled: Vec<CrawledRegistry>,
    pub images: Vec<ScannedImage>,
}

/// Why the warehouse could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum WarehouseError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot encode {table}: {source}")]
    Arrow {
        table: &'static str,
        source: arrow::error::ArrowError,
    },
    #[error("cannot encode {table} as Parquet: {source}")]
    Encode {
        table: &'static str,
        source: parquet::errors::ParquetError,
    },
    #[error("cannot read {path}: {message}")]
    Corrupt { path: PathBuf, message: String },
    #[error("run {0} is already committed")]
    AlreadyCommitted(String),
    #[error("warehouse {location}: {message}")]
    Location { location: String, message: String },
    #[error("{at}: {source}")]
    Store {
        at: String,
        source: object_store::Error,
    },
    #[error(
        "{at}: the store refuses conditional writes, which commits need (for S3, set \
         warehouse_options.aws_conditional_put = \"etag\")"
    )]
    NoConditionalWrites { at: String },
    #[error("run id {0:?}: use 1 to 128 of A-Z a-z 0-9 - _ . (not starting with .)")]
    RunId(String),
    #[error("run {run_id} was started with {started} shards, not {given}")]
    ShardCount {
        run_id: String,
        started: u32,
        given: u32,
    },
    #[error("no run {0} in the warehouse (no shard of it has started)")]
    NoSuchRun(String),
    #[error("{0}: another attempt of this shard replaced its manifest at the same time")]
    ManifestRace(String),
    #[error("{0}: the run lock is held by another run")]
    Locked(String),
}

impl WarehouseError {
    /// Whether the warehouse is named or reached wrongly (a configuration mistake, not a failure of a
    /// warehouse that works): an unknown scheme or option, a container or bucket that does not exist,
    /// credentials refused, a store without conditional writes, a bad run id or shard count.
    pub fn is_configuration(&self) -> bool {
        match self {
            WarehouseError::Location { .. }
            | WarehouseError::NoConditionalWrites { .. }
            | WarehouseError::RunId(_)
            | WarehouseError::ShardCount { .. }
            | WarehouseError::NoSuchRun(_) => true,
            WarehouseError::Store { source, .. } => match source {
                object_store::Error::PermissionDenied { .. }
                | object_store::Error::Unauthenticated { .. } => true,
                other => {
                    let text = other.to_string();
                    [
                        "ContainerNotFound",
                        "NoSuchBucket",
                        "AuthenticationFailed",
                        "InvalidAccessKeyId",
                        "SignatureDoesNotMatch",
                        "AuthorizationFailure",
                    ]
                    .iter()
                    .any(|code| text.contains(code))
                }
            },
            _ => false,
        }
    }

    pub(crate) fn io(path: &Path) -> impl FnOnce(std::io::Error) -> WarehouseError + '_ {
        move |source| WarehouseError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// A new scan id: its UTC start time (so ids sort by time) and a random suffix (so two runs started in
/// the same second differ). Only `[0-9A-Za-z-]`: safe in a folder name.
pub fn new_scan_id(started_at: DateTime<Utc>) -> String {
    let suffix: u32 = rand::random();
    format!("{}-{suffix:08x}", started_at.format("%Y%m%dT%H%M%S%.6fZ")).replace('.', "")
}

/// Escapes a partition value for a folder name the way Hive does: every byte outside `[A-Za-z0-9._-]`
/// becomes `%XX`. DataFusion, pyarrow and DuckDB decode it back.
pub fn escape_partition_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric()
            || matches!(byte, b'-' | b'_')
            || (byte == b'.' && !out.is_empty())
        {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    if out.is_empty() {
        // An empty folder name is not a partition.
        out.push_str("%00");
    }
    out
}

/// Decodes a partition value escaped by [`escape_partition_value`] (or by another Hive-style writer):
/// `%XX` becomes that byte; anything else is kept as it is.
pub fn unescape_partition_value(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut at = 0;
    while at < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[at] == b'%' && at + 2 < bytes.len() {
            if let (Some(high), Some(low)) = (hex(bytes[at + 1]), hex(bytes[at + 2])) {
                out.push((high * 16 + low) as u8);
                at += 3;
                continue;
            }
        }
        out.push(bytes[at]);
        at += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The key of one partition of `table` inside the warehouse: `table/col=value/...`.
pub fn partition_key(table: Table, values: &[&str]) -> String {
    let mut key = table.name().to_string();
    for (column, value) in table.partition_columns().iter().zip(values) {
        key.push_str(&format!("/{column}={}", escape_partition_value(value)));
    }
    key
}

/// The folder of one partition of a local warehouse at `root`.
pub fn partition_dir(root: &Path, table: Table, values: &[&str]) -> PathBuf {
    root.join(partition_key(table, values))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_highest_severity_is_the_first_counted_from_critical_down() {
        let none = FindingCounts::default();
        assert_eq!((none.total(), none.highest()), (0, None));
        let some = FindingCounts {
            medium: 2,
            unknown: 1,
            patchable: 3,
            ..FindingCounts::default()
        };
        assert_eq!((some.total(), some.highest()), (3, Some(Severity::Medium)));
        let unknown_only = FindingCounts {
            unknown: 1,
            ..FindingCounts::default()
        };
        assert_eq!(unknown_only.highest(), Some(Severity::Unknown));
    }

    #[test]
    fn partition_values_are_escaped_like_hive() {
        assert_eq!(escape_partition_value("prod-1"), "prod-1");
        assert_eq!(escape_partition_value("a/b c=d%"), "a%2Fb%20c%3Dd%25");
        assert_eq!(escape_partition_value(".."), "%2E.");
        assert_eq!(escape_partition_value(""), "%00");
        assert_eq!(escape_partition_value("é"), "%C3%A9");
        for value in ["prod-1", "a/b c=d%", "..", ".x", "é", "100%"] {
            assert_eq!(
                unescape_partition_value(&escape_partition_value(value)),
                value
            );
        }
        assert_eq!(unescape_partition_value("a%2"), "a%2");
        assert_eq!(unescape_partition_value("a%zz"), "a%zz");
    }

    #[test]
    fn scan_ids_sort_by_time_and_are_folder_safe() {
        let a = new_scan_id("2026-01-02T03:04:05.123456Z".parse().unwrap());
        let b = new_scan_id("2026-01-02T03:04:06Z".parse().unwrap());
        assert!(a < b, "{a} {b}");
        assert!(a.starts_with("20260102T030405123456Z-"), "{a}");
        assert!(a.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'));
    }
}
