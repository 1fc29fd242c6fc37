//! The warehouse tables' schemas, in one place. Every table is hive-partitioned; the partition columns
//! (`subscription`, `registry`, `scan_id`) live in the folder names, not in the files, and are listed by
//! [`Table::partition_columns`]. README.md's warehouse schema table documents the same columns.

use std::sync::{Arc, LazyLock};

use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};

/// UTC timestamps, microsecond precision (what Parquet, DuckDB and pyarrow all read as `timestamptz`).
pub fn timestamp() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

fn strings() -> DataType {
    DataType::List(Arc::new(Field::new("item", DataType::Utf8, true)))
}

fn field(name: &str, data_type: DataType, nullable: bool) -> Field {
    Field::new(name, data_type, nullable)
}

/// A compact key of one image of one platform in one registry, for joins: the first 8 bytes of the SHA-256
/// of `subscription, registry, repository, digest, platform` (NUL-separated), as a signed integer.
pub fn image_id(
    subscription: &str,
    registry: &str,
    repository: &str,
    digest: &str,
    platform: &str,
) -> i64 {
    use sha2::{Digest as _, Sha256};
    let mut hasher = Sha256::new();
    for part in [subscription, registry, repository, digest, platform] {
        hasher.update(part.as_bytes());
        hasher.update([0u8]);
    }
    let hash = hasher.finalize();
    i64::from_be_bytes(hash[..8].try_into().expect("8 bytes"))
}

/// The tables Vigil writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Table {
    /// One row per (scan, image, platform, package, advisory).
    Findings,
    /// One row per (scan, image, platform).
    Images,
    /// One row per (scan, registry crawled in full): what "still exists" is measured against.
    Crawls,
    /// One row per run; a run's row is its commit marker.
    Scans,
    /// One row per (scan, image, platform, package) for images inventoried from their layers in that scan:
    /// the stored inventory later runs re-match without fetching a layer.
    Packages,
    /// One row per registry event (push or pull of a manifest) received or imported.
    Activity,
    /// One row per change of a disable rule (add, update, delete): the rules and their history.
    DisableRules,
}

impl Table {
    pub const ALL: [Table; 7] = [
        Table::Findings,
        Table::Images,
        Table::Crawls,
        Table::Scans,
        Table::Packages,
        Table::Activity,
        Table::DisableRules,
    ];

    /// The tables whose files a run writes under its `scan_id` partition (the `scans` marker aside).
    pub const SCANNED: [Table; 4] = [
        Table::Findings,
        Table::Images,
        Table::Crawls,
        Table::Packages,
    ];

    /// The table's folder under the warehouse root, and its name in SQL.
    pub fn name(self) -> &'static str {
        match self {
            Table::Findings => "findings",
            Table::Images => "images",
            Table::Crawls => "crawls",
            Table::Scans => "scans",
            Table::Packages => "packages",
            Table::Activity => "activity",
            Table::DisableRules => "disable_rules",
        }
    }

    /// The hive partition columns, outermost first (all strings).
    pub fn partition_columns(self) -> &'static [&'static str] {
        match self {
            Table::Findings | Table::Images | Table::Crawls | Table::Packages => {
                &["subscription", "registry", "scan_id"]
            }
            Table::Activity => &["subscription", "registry"],
            Table::Scans => &["scan_id"],
            Table::DisableRules => &[],
        }
    }

    /// The columns stored in the files (partition columns excluded).
    pub fn file_schema(self) -> SchemaRef {
        match self {
            Table::Findings => FINDINGS.clone(),
            Table::Images => IMAGES.clone(),
            Table::Crawls => CRAWLS.clone(),
            Table::Scans => SCANS.clone(),
            Table::Packages => PACKAGES.clone(),
            Table::Activity => ACTIVITY.clone(),
            Table::DisableRules => DISABLE_RULES.clone(),
        }
    }
}

static FINDINGS: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        field("repository", DataType::Utf8, false),
        field("tags", strings(), false),
        field("image_digest", DataType::Utf8, false),
        field("platform", DataType::Utf8, false),
        field("image_id", DataType::Int64, false),
        field("finding_id", DataType::Utf8, false),
        field("aliases", strings(), false),
        field("summary", DataType::Utf8, false),
        field("details", DataType::Utf8, false),
        field("category", DataType::Utf8, false),
        field("package_type", DataType::Utf8, false),
        field("package_name", DataType::Utf8, false),
        field("package_version", DataType::Utf8, false),
        field("ecosystem", DataType::Utf8, false),
        field("source_package", DataType::Utf8, true),
        field("advisory_package", DataType::Utf8, false),
        field("compared_version", DataType::Utf8, false),
        field("fixed_version", DataType::Utf8, true),
        field("patchable", DataType::Boolean, false),
        field("cvss_v3_vector", DataType::Utf8, true),
        field("cvss_v3_score", DataType::Float64, true),
        field("cvss_v4_vector", DataType::Utf8, true),
        field("cvss_v4_score", DataType::Float64, true),
        field("severity", DataType::Utf8, false),
        field("severity_rank", DataType::Int32, false),
        field("severity_source", DataType::Utf8, false),
        field("references", strings(), false),
        field("published", timestamp(), true),
        field("modified", timestamp(), true),
        field("remediation", DataType::Utf8, false),
        field("layer_digest", DataType::Utf8, true),
        field("location", DataType::Utf8, false),
        field("scanned_at", timestamp(), false),
        field("db_content_hash", DataType::Utf8, false),
        field("scanner_version", DataType::Utf8, false),
    ]))
});

/// The `images` columns of an image's findings by severity (critical to unknown), then the patchable ones.
pub const FINDING_COUNT_COLUMNS: [&str; 6] = [
    "critical_count",
    "high_count",
    "medium_count",
    "low_count",
    "unknown_count",
    "patchable_count",
];

static IMAGES: LazyLock<SchemaRef> = LazyLock::new(|| {
    let mut fields = vec![
        field("repository", DataType::Utf8, false),
        field("tags", strings(), false),
        field("image_digest", DataType::Utf8, false),
        field("platform", DataType::Utf8, false),
        field("image_id", DataType::Int64, false),
        field("os", DataType::Utf8, true),
        field("os_id", DataType::Utf8, true),
        field("os_version_id", DataType::Utf8, true),
        field("os_ecosystem", DataType::Utf8, true),
        field("package_count", DataType::Int64, false),
        field("coverage_status", DataType::Utf8, false),
        field("coverage_reason", DataType::Utf8, false),
        field("pushed_at", timestamp(), true),
        field("last_pulled_at", timestamp(), true),
        field("finding_count", DataType::Int64, false),
    ];
    // Null in rows written before Vigil stored them (read as such from older files).
    fields.extend(FINDING_COUNT_COLUMNS.map(|name| field(name, DataType::Int64, true)));
    fields.extend([
        field("highest_severity", DataType::Utf8, true),
        field("selection", DataType::Utf8, false),
        field("findings_scan_id", DataType::Utf8, false),
        field("inventory_scan_id", DataType::Utf8, false),
        field("scanned_at", timestamp(), false),
        field("db_content_hash", DataType::Utf8, false),
        field("scanner_version", DataType::Utf8, false),
    ]);
    Arc::new(Schema::new(fields))
});

static CRAWLS: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        field("crawled_at", timestamp(), false),
        field("images_seen", DataType::Int64, false),
    ]))
});

static SCANS: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        field("started_at", timestamp(), false),
        field("finished_at", timestamp(), false),
        field("images_seen", DataType::Int64, false),
        field("images_scanned", DataType::Int64, false),
        field("images_failed", DataType::Int64, false),
        field("findings", DataType::Int64, false),
        field("schedule", DataType::Utf8, true),
        field("selected_new", DataType::Int64, false),
        field("selected_pulled", DataType::Int64, false),
        field("selected_pushed", DataType::Int64, false),
        field("selected_forced", DataType::Int64, false),
        field("carried", DataType::Int64, false),
        field("deferred", DataType::Int64, false),
        field("errors", strings(), false),
        field("db_content_hash", DataType::Utf8, false),
        field("scanner_version", DataType::Utf8, false),
        // Written since runs commit by manifest (null in older rows): the run id the shards shared, how
        // many shards ran, and every data file the run committed with its size, keys relative to the
        // warehouse root. Readers open exactly these files.
        field("run_id", DataType::Utf8, true),
        field("shards", DataType::Int64, true),
        field("files", strings(), true),
        field(
            "file_sizes",
            DataType::List(Arc::new(Field::new("item", DataType::Int64, true))),
            true,
        ),
    ]))
});

static PACKAGES: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        field("repository", DataType::Utf8, false),
        field("image_digest", DataType::Utf8, false),
        field("platform", DataType::Utf8, false),
        field("image_id", DataType::Int64, false),
        field("name", DataType::Utf8, false),
        field("version", DataType::Utf8, false),
        field("ecosystem", DataType::Utf8, false),
        field("package_type", DataType::Utf8, false),
        field("source_name", DataType::Utf8, true),
        field("source_version", DataType::Utf8, true),
        field("arch", DataType::Utf8, true),
        field("extractor", DataType::Utf8, false),
        field("location", DataType::Utf8, false),
        field("layer_digest", DataType::Utf8, true),
        field("scanned_at", timestamp(), false),
    ]))
});

static ACTIVITY: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        field("event_id", DataType::Utf8, false),
        field("action", DataType::Utf8, false),
        field("repository", DataType::Utf8, false),
        field("digest", DataType::Utf8, false),
        field("tag", DataType::Utf8, true),
        field("media_type", DataType::Utf8, false),
        field("occurred_at", timestamp(), false),
        field("user_agent", DataType::Utf8, true),
        field("source", DataType::Utf8, true),
        field("received_at", timestamp(), false),
    ]))
});

static DISABLE_RULES: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        field("rule_id", DataType::Utf8, false),
        field("version", DataType::Int64, false),
        field("op", DataType::Utf8, false),
        field("subscription", DataType::Utf8, false),
        field("registry", DataType::Utf8, true),
        field("repository_glob", DataType::Utf8, true),
        field("repository_like", DataType::Utf8, true),
        field("finding_id", DataType::Utf8, true),
        field("category", DataType::Utf8, true),
        field("security_check_contains", DataType::Utf8, true),
        field("cvss_below", DataType::Float64, true),
        field("severity_below", DataType::Utf8, true),
        field("severity_below_rank", DataType::Int32, true),
        field("patchable", DataType::Boolean, true),
        field("reason", DataType::Utf8, false),
        field("expires", DataType::Date32, true),
        field("author", DataType::Utf8, false),
        field("updated_at", timestamp(), false),
    ]))
});

/// The full schema a reader sees: the file columns, then the partition columns.
pub fn table_schema(table: Table) -> SchemaRef {
    let mut fields: Vec<Field> = table
        .file_schema()
        .fields()
        .iter()
        .map(|f| f.as_ref().clone())
        .collect();
    fields.extend(
        table
            .partition_columns()
            .iter()
            .map(|name| Field::new(*name, partition_type(), false)),
    );
    Arc::new(Schema::new(fields))
}

/// How readers type a partition column. (Dictionary-encoded columns were measured on the 10 M-row bench:
/// the rule join got faster, grouping on them slower, and the reports no faster. Utf8View, for partition
/// and file columns alike, made the reports up to 10% faster but hits a DataFusion 55 bug: the simplifier
/// turns `c = 'x' AND 'x' = c` on a Utf8View column into `false`.)
pub fn partition_type() -> DataType {
    DataType::Utf8
}
