//! Selection: which images a scheduled run looks at, and why. A run compares what the crawl lists with
//! what the warehouse already holds (every image's newest row, its stored inventory) and with the registry
//! activity (pushes and pulls from webhooks or imported event files, Vigil's own pulls excluded).

use std::collections::{BTreeSet, HashMap};
use std::path::Path;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{DataType, Int64Type, TimestampMicrosecondType};
use chrono::{DateTime, Duration, Utc};

use crate::model::{Coverage, CoverageStatus, OsIdentity, Package, PackageType};
use crate::report::{self, ReportError};
use crate::warehouse::schema::FINDING_COUNT_COLUMNS;
use crate::warehouse::FindingCounts;

/// What a schedule asks a run to look at.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    /// Digests never scanned before are fetched and inventoried.
    pub new_images: bool,
    /// Images pulled within this window are re-matched from their stored inventory.
    pub pulled_within: Option<Duration>,
    /// Images pushed within this window are re-matched too.
    pub pushed_within: Option<Duration>,
    /// At most this many new images per run; the rest wait for the next, oldest push first.
    pub max_images: Option<usize>,
}

impl Default for Policy {
    fn default() -> Policy {
        Policy {
            new_images: true,
            pulled_within: None,
            pushed_within: None,
            max_images: None,
        }
    }
}

/// (subscription, registry, repository, digest, platform): one image, as `image_id` hashes it. The same
/// digest in another repository is another image (its findings rows are its own).
pub type ImageKey = (String, String, String, String, String);

/// An image's newest row in the warehouse.
#[derive(Debug, Clone)]
pub struct Previous {
    pub findings_scan_id: String,
    pub inventory_scan_id: String,
    pub package_count: u64,
    /// `None` for a row written before Vigil stored per-severity counts.
    pub counts: Option<FindingCounts>,
    pub coverage: Coverage,
    pub os: Option<OsIdentity>,
}

/// What the warehouse knows before a run.
#[derive(Debug, Default)]
pub struct History {
    pub previous: HashMap<ImageKey, Previous>,
    /// Newest pull and push per (subscription, registry, digest), by anyone but Vigil.
    pub pulls: HashMap<(String, String, String), DateTime<Utc>>,
    pub pushes: HashMap<(String, String, String), DateTime<Utc>>,
}

fn text(batch: &RecordBatch, name: &str) -> Result<arrow::array::StringArray, ReportError> {
    let column = batch
        .column_by_name(name)
        .ok_or_else(|| ReportError::Format(format!("no column {name}")))?;
    let cast = arrow::compute::cast(column, &DataType::Utf8)
        .map_err(|e| ReportError::Format(e.to_string()))?;
    Ok(cast.as_string::<i32>().clone())
}

fn optional(array: &arrow::array::StringArray, row: usize) -> Option<String> {
    (!array.is_null(row)).then(|| array.value(row).to_string())
}

async fn query(root: &Path, sql: &str) -> Result<Vec<RecordBatch>, ReportError> {
    let ctx = report::open_session(root).await?;
    Ok(ctx.sql(sql).await?.collect().await?)
}

/// Reads the newest row of every image ever scanned, and the registry activity.
pub async fn load_history(root: &Path) -> Result<History, ReportError> {
    let mut history = History::default();
    if !root.is_dir() {
        return Ok(history);
    }
    let images = query(
        root,
        "SELECT subscription, registry, repository, image_digest, platform, findings_scan_id, \
         inventory_scan_id, package_count, critical_count, high_count, medium_count, low_count, unknown_count, \
         patchable_count, coverage_status, coverage_reason, \
         os, os_id, os_version_id, os_ecosystem FROM (SELECT i.*, row_number() OVER (PARTITION BY image_id \
         ORDER BY scanned_at DESC, scan_id DESC) AS newest FROM images i) ranked WHERE newest = 1",
    )
    .await?;
    for batch in &images {
        let [sub, reg, repository, digest, platform, findings_scan, inventory_scan, status, reason, pretty, os_id, os_version, os_ecosystem] =
            [
                "subscription",
                "registry",
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
            ]
            .map(|name| text(batch, name));
        let (sub, reg, repository, digest, platform) =
            (sub?, reg?, repository?, digest?, platform?);
        let (findings_scan, inventory_scan, status, reason) =
            (findings_scan?, inventory_scan?, status?, reason?);
        let (pretty, os_id, os_version, os_ecosystem) =
            (pretty?, os_id?, os_version?, os_ecosystem?);
        let count = |name: &str| {
            arrow::compute::cast(
                batch.column_by_name(name).expect("selected"),
                &DataType::Int64,
            )
            .map(|a| a.as_primitive::<Int64Type>().clone())
            .map_err(|e| ReportError::Format(e.to_string()))
        };
        let packages = count("package_count")?;
        let [critical, high, medium, low, unknown, patchable] = FINDING_COUNT_COLUMNS.map(count);
        let severities = [critical?, high?, medium?, low?, unknown?, patchable?];
        for row in 0..batch.num_rows() {
            let status: CoverageStatus =
                serde_json::from_value(serde_json::Value::String(status.value(row).to_string()))
                    .unwrap_or(CoverageStatus::Failed);
            history.previous.insert(
                (
                    sub.value(row).to_string(),
                    reg.value(row).to_string(),
                    repository.value(row).to_string(),
                    digest.value(row).to_string(),
                    platform.value(row).to_string(),
                ),
                Previous {
                    findings_scan_id: findings_scan.value(row).to_string(),
                    inventory_scan_id: inventory_scan.value(row).to_string(),
                    package_count: packages.value(row).max(0) as u64,
                    counts: (!severities.iter().any(|c| c.is_null(row))).then(|| {
                        let [critical, high, medium, low, unknown, patchable] =
                            severities.each_ref().map(|c| c.value(row).max(0) as u64);
                        FindingCounts {
                            critical,
                            high,
                            medium,
                            low,
                            unknown,
                            patchable,
                        }
                    }),
                    coverage: Coverage {
                        status,
                        reason: reason.value(row).to_string(),
                    },
                    os: optional(&os_id, row).map(|id| OsIdentity {
                        id,
                        version_id: optional(&os_version, row).unwrap_or_default(),
                        pretty_name: optional(&pretty, row),
                        ecosystem: optional(&os_ecosystem, row),
                    }),
                },
            );
        }
    }
    let activity = query(
        root,
        &format!(
            "SELECT subscription, registry, digest, action, max(occurred_at) AS at FROM activity \
             WHERE user_agent IS NULL OR user_agent NOT LIKE '{}%' GROUP BY subscription, registry, digest, action",
            crate::registry::USER_AGENT_PRODUCT
        ),
    )
    .await?;
    for batch in &activity {
        let (sub, reg, digest, action) = (
            text(batch, "subscription")?,
            text(batch, "registry")?,
            text(batch, "digest")?,
            text(batch, "action")?,
        );
        let at = arrow::compute::cast(
            batch.column_by_name("at").expect("selected"),
            &DataType::Timestamp(arrow::datatypes::TimeUnit::Microsecond, None),
        )
        .map_err(|e| ReportError::Format(e.to_string()))?;
        let at = at.as_primitive::<TimestampMicrosecondType>();
        for row in 0..batch.num_rows() {
            let Some(when) = DateTime::from_timestamp_micros(at.value(row)) else {
                continue;
            };
            let key = (
                sub.value(row).to_string(),
                reg.value(row).to_string(),
                digest.value(row).to_string(),
            );
            match action.value(row) {
                "pull" => history.pulls.insert(key, when),
                "push" => history.pushes.insert(key, when),
                _ => None,
            };
        }
    }
    Ok(history)
}

/// The stored packages of the given images, from the scans that inventoried them.
pub async fn stored_packages(
    root: &Path,
    wanted: &[(ImageKey, String)],
) -> Result<HashMap<ImageKey, Vec<Package>>, ReportError> {
    let mut out: HashMap<ImageKey, Vec<Package>> = HashMap::new();
    if wanted.is_empty() {
        return Ok(out);
    }
    let quote = |s: &str| format!("'{}'", s.replace('\'', "''"));
    let scans: BTreeSet<&str> = wanted.iter().map(|(_, scan)| scan.as_str()).collect();
    let digests: BTreeSet<&str> = wanted.iter().map(|(key, _)| key.3.as_str()).collect();
    let sql = format!(
        "SELECT DISTINCT subscription, registry, repository, image_digest, platform, scan_id, name, version, ecosystem, \
         package_type, source_name, source_version, arch, extractor, location, layer_digest FROM packages \
         WHERE scan_id IN ({}) AND image_digest IN ({})",
        scans.iter().map(|s| quote(s)).collect::<Vec<_>>().join(", "),
        digests.iter().map(|s| quote(s)).collect::<Vec<_>>().join(", ")
    );
    let wanted: HashMap<&ImageKey, &str> = wanted.iter().map(|(k, s)| (k, s.as_str())).collect();
    for batch in query(root, &sql).await? {
        let names = [
            "subscription",
            "registry",
            "repository",
            "image_digest",
            "platform",
            "scan_id",
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
        let mut columns = Vec::with_capacity(names.len());
        for name in names {
            columns.push(text(&batch, name)?);
        }
        let [sub, reg, repository, digest, platform, scan, name, version, ecosystem, kind, source_name, source_version, arch, extractor, location, layer] =
            <[_; 16]>::try_from(columns).expect("16 columns");
        for row in 0..batch.num_rows() {
            let key = (
                sub.value(row).to_string(),
                reg.value(row).to_string(),
                repository.value(row).to_string(),
                digest.value(row).to_string(),
                platform.value(row).to_string(),
            );
            if wanted.get(&key).is_none_or(|s| *s != scan.value(row)) {
                continue;
            }
            out.entry(key).or_default().push(Package {
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
    for packages in out.values_mut() {
        packages.sort();
    }
    Ok(out)
}
