//! Matching stage: the finding a match produces, with severity, fix and remediation worked out once so
//! every consumer (table, JSON, warehouse) reports the same thing.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::cvss::{score_v3, score_v4};
use crate::model::{Package, PackageType};
use crate::vulndb::ecosystem::EcosystemInfo;
use crate::vulndb::{Advisory, AffectedPackage, SeverityEntry, SeverityKind};

/// One advisory affecting one installed package.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    /// The advisory id (the "finding ID"), e.g. `DSA-5417-1`.
    pub id: String,
    /// CVE and other ids of the same vulnerability (OSV `aliases` plus CVEs from `related`/`upstream`).
    pub aliases: Arc<[String]>,
    /// The "security check": the advisory summary, else the first line of its details, else its id.
    pub summary: Arc<str>,
    pub details: Arc<str>,
    /// The family users filter by: `Debian`, `Ubuntu`, `Alpine`, `AlmaLinux`, `PyPI`, `crates.io`...
    pub category: String,
    pub package_type: PackageType,
    pub package_name: String,
    pub package_version: String,
    /// The OSV ecosystem the package was matched in, e.g. `Debian:11`.
    pub ecosystem: String,
    /// The source package (dpkg `Source:`, apk origin, source RPM), when known.
    pub source_package: Option<String>,
    /// The package name as the advisory lists it.
    pub advisory_package: String,
    /// The version that was compared: the source version for Debian and Ubuntu, else the package's.
    pub compared_version: String,
    /// The lowest fixed version above the compared version, if the advisory names one.
    pub fixed_version: Option<String>,
    /// Whether a fix exists.
    pub patchable: bool,
    pub cvss_v3_vector: Option<String>,
    /// Base score computed from `cvss_v3_vector`.
    pub cvss_v3_score: Option<f64>,
    pub cvss_v4_vector: Option<String>,
    /// Base score computed from `cvss_v4_vector`.
    pub cvss_v4_score: Option<f64>,
    pub severity: Severity,
    pub severity_source: SeveritySource,
    /// Reference URLs.
    pub references: Arc<[String]>,
    pub published: Option<DateTime<Utc>>,
    pub modified: Option<DateTime<Utc>>,
    /// One line telling the user what to do.
    pub remediation: String,
    /// The layer the package first appears in, carried from the inventory.
    pub layer_digest: Option<String>,
    /// The file the package was read from.
    pub location: String,
    /// The advisory DB's content hash, so every finding says which advisories produced it.
    pub db_content_hash: Arc<str>,
}

/// Qualitative severity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Severity {
    Unknown,
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Critical => "Critical",
            Severity::High => "High",
            Severity::Medium => "Medium",
            Severity::Low => "Low",
            Severity::Unknown => "Unknown",
        }
    }

    /// The CVSS qualitative rating of a base score. A 0.0 score ("None" in CVSS) is reported as Low:
    /// the advisory still exists and users filter on these five levels.
    pub fn from_score(score: f64) -> Severity {
        if score >= 9.0 {
            Severity::Critical
        } else if score >= 7.0 {
            Severity::High
        } else if score >= 4.0 {
            Severity::Medium
        } else {
            Severity::Low
        }
    }

    /// Maps a publisher's word (GHSA, Ubuntu, Red Hat errata) onto the scale; `None` when unrecognised.
    pub fn from_vendor(word: &str) -> Option<Severity> {
        match word.trim().to_ascii_lowercase().as_str() {
            "critical" => Some(Severity::Critical),
            "high" | "important" => Some(Severity::High),
            "medium" | "moderate" => Some(Severity::Medium),
            "low" | "negligible" => Some(Severity::Low),
            _ => None,
        }
    }
}

/// Where a finding's severity came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SeveritySource {
    CvssV3,
    CvssV4,
    Vendor,
    None,
}

/// The severity part of a finding: depends only on the advisory and affected entry, so it is computed
/// once per run per entry, not once per finding.
pub(super) struct Scored {
    /// Text every finding of this advisory shares, built once per run rather than copied per finding.
    aliases: Arc<[String]>,
    summary: Arc<str>,
    details: Arc<str>,
    references: Arc<[String]>,
    published: Option<DateTime<Utc>>,
    modified: Option<DateTime<Utc>>,
    cvss_v3_vector: Option<String>,
    cvss_v3_score: Option<f64>,
    cvss_v4_vector: Option<String>,
    cvss_v4_score: Option<f64>,
    severity: Severity,
    severity_source: SeveritySource,
}

pub(super) fn score(advisory: &Advisory, affected: &AffectedPackage) -> Scored {
    let severities: Vec<&SeverityEntry> = affected
        .severity
        .iter()
        .chain(advisory.severity.iter())
        .collect();
    let (cvss_v3_vector, cvss_v3_score) =
        first_scored(&severities, &SeverityKind::CvssV3, score_v3);
    let (cvss_v4_vector, cvss_v4_score) =
        first_scored(&severities, &SeverityKind::CvssV4, score_v4);
    let vendor = advisory
        .vendor_severity
        .as_deref()
        .and_then(Severity::from_vendor);
    let (severity, severity_source) = if let Some(score) = cvss_v3_score {
        (Severity::from_score(score), SeveritySource::CvssV3)
    } else if let Some(score) = cvss_v4_score {
        (Severity::from_score(score), SeveritySource::CvssV4)
    } else if let Some(vendor) = vendor {
        (vendor, SeveritySource::Vendor)
    } else {
        (Severity::Unknown, SeveritySource::None)
    };
    let summary = if !advisory.summary.is_empty() {
        advisory.summary.clone()
    } else if let Some(line) = advisory
        .details
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
    {
        line.to_string()
    } else {
        advisory.id.clone()
    };
    Scored {
        aliases: advisory.aliases.clone().into(),
        summary: summary.into(),
        details: advisory.details.as_str().into(),
        references: advisory.references.clone().into(),
        published: timestamp(&advisory.published),
        modified: timestamp(&advisory.modified),
        cvss_v3_vector,
        cvss_v3_score,
        cvss_v4_vector,
        cvss_v4_score,
        severity,
        severity_source,
    }
}

pub(super) struct Context<'a> {
    pub scored: &'a Scored,
    pub advisory: &'a Advisory,
    pub affected: &'a AffectedPackage,
    pub package: &'a Package,
    pub info: &'a EcosystemInfo,
    pub ecosystem: &'a str,
    pub compared_version: &'a str,
    pub fixed: Option<String>,
    pub db_content_hash: &'a Arc<str>,
}

/// The first vector of `kind` that scores, preferring the affected entry's own severity.
fn first_scored(
    entries: &[&SeverityEntry],
    kind: &SeverityKind,
    score: fn(&str) -> Result<f64, super::cvss::CvssError>,
) -> (Option<String>, Option<f64>) {
    let mut first_vector = None;
    for entry in entries.iter().filter(|e| e.kind == *kind) {
        if let Ok(value) = score(&entry.score) {
            return (Some(entry.score.clone()), Some(value));
        }
        first_vector.get_or_insert_with(|| entry.score.clone());
    }
    // A vector that does not score is still carried, without a score.
    (first_vector, None)
}

fn timestamp(text: &Option<String>) -> Option<DateTime<Utc>> {
    text.as_deref()
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc))
}

pub(super) fn build(context: Context<'_>) -> Finding {
    let Context {
        scored,
        advisory,
        affected,
        package,
        info,
        ecosystem,
        compared_version,
        fixed,
        db_content_hash,
    } = context;
    let source_package = package
        .source_name
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string);
    let subject = match &source_package {
        Some(source) if *source != package.name => format!("{} (source {source})", package.name),
        _ => package.name.clone(),
    };
    let remediation = match &fixed {
        Some(fixed) => format!("upgrade {subject} from {compared_version} to {fixed}"),
        None => format!(
            "no fixed version of {subject} is known for {}; {compared_version} stays affected",
            advisory.id
        ),
    };

    Finding {
        id: advisory.id.clone(),
        aliases: scored.aliases.clone(),
        summary: scored.summary.clone(),
        details: scored.details.clone(),
        category: info.family.to_string(),
        package_type: package.package_type,
        package_name: package.name.clone(),
        package_version: package.version.clone(),
        ecosystem: ecosystem.to_string(),
        source_package,
        advisory_package: affected.name.clone(),
        compared_version: compared_version.to_string(),
        patchable: fixed.is_some(),
        fixed_version: fixed,
        cvss_v3_vector: scored.cvss_v3_vector.clone(),
        cvss_v3_score: scored.cvss_v3_score,
        cvss_v4_vector: scored.cvss_v4_vector.clone(),
        cvss_v4_score: scored.cvss_v4_score,
        severity: scored.severity,
        severity_source: scored.severity_source,
        references: scored.references.clone(),
        published: scored.published,
        modified: scored.modified,
        remediation,
        layer_digest: package.layer_digest.clone(),
        location: package.location.clone(),
        db_content_hash: db_content_hash.clone(),
    }
}
