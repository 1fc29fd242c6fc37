//! Advisory DB stage: the normalised advisory the DB stores, and the conversion from OSV records.
//!
//! Normalising once at import keeps matching cheap (no JSON, no per-run parsing of strings that never
//! change) and gives the content hash a canonical form: the same advisories hash the same whatever
//! files, order or whitespace they came in.

use serde::{Deserialize, Serialize};

use super::ecosystem;
use super::osv::{OsvAffected, OsvRange, OsvRecord, OsvSeverity};

/// One advisory as the DB stores it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Advisory {
    /// The OSV id (`DSA-3029-1`, `ALSA-2025:10549`, `GHSA-...`): the finding ID.
    pub id: String,
    /// OSV `summary`; empty when the record has none.
    pub summary: String,
    pub details: String,
    /// OSV `aliases`, plus the CVE ids found in `related` and `upstream`; sorted, without duplicates.
    pub aliases: Vec<String>,
    pub published: Option<String>,
    pub modified: Option<String>,
    /// Record-level `severity[]` entries, in published order.
    pub severity: Vec<SeverityEntry>,
    /// A severity word the publisher gives outside CVSS: GHSA `database_specific.severity`, an
    /// `Ubuntu` severity entry, or the Red Hat style prefix of an RPM distro summary (`Important: ...`).
    pub vendor_severity: Option<String>,
    /// Reference URLs, in published order.
    pub references: Vec<String>,
    /// Only entries of ecosystems Vigil can match; the others are counted at import.
    pub affected: Vec<AffectedPackage>,
}

/// A `severity[]` entry with its type decoded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeverityEntry {
    pub kind: SeverityKind,
    /// The vector (for CVSS types) or the publisher's text.
    pub score: String,
}

/// OSV severity types; unknown types are kept by name so nothing is lost.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SeverityKind {
    CvssV2,
    CvssV3,
    CvssV4,
    Other(String),
}

/// One affected package of an advisory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AffectedPackage {
    /// The full OSV ecosystem string, e.g. `Debian:11` or `PyPI`.
    pub ecosystem: String,
    /// The package name as published.
    pub name: String,
    /// ECOSYSTEM and SEMVER ranges; GIT ranges name commits, not package versions, and are dropped.
    pub ranges: Vec<AffectedRange>,
    /// Explicitly listed affected versions.
    pub versions: Vec<String>,
    /// Per-package severity (`affected[].severity`, or crates.io's `database_specific.cvss`).
    pub severity: Vec<SeverityEntry>,
}

/// A version range: events in published order (evaluation sorts them).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AffectedRange {
    pub kind: RangeKind,
    pub events: Vec<Event>,
}

/// The range types that apply to package versions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RangeKind {
    Ecosystem,
    Semver,
}

/// A range event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Event {
    Introduced(String),
    Fixed(String),
    LastAffected(String),
    Limit(String),
}

/// Why a record was not turned into an advisory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Skipped {
    /// `withdrawn` is set.
    Withdrawn,
    /// No affected entry of an ecosystem Vigil can match (the unknown ecosystems are counted).
    NoKnownEcosystem,
}

/// The outcome of normalising one record.
#[derive(Debug, Clone)]
pub struct Normalised {
    pub advisory: Result<Advisory, Skipped>,
    /// Ecosystems of `affected[]` entries that were dropped because Vigil cannot match them.
    pub unknown_ecosystems: Vec<String>,
}

/// Turns a parsed OSV record into the stored form.
pub fn normalise(record: OsvRecord) -> Normalised {
    let mut unknown_ecosystems = Vec::new();
    if record
        .withdrawn
        .as_deref()
        .is_some_and(|w| !w.trim().is_empty())
    {
        return Normalised {
            advisory: Err(Skipped::Withdrawn),
            unknown_ecosystems,
        };
    }
    let mut affected = Vec::new();
    for entry in record.affected {
        let ecosystem_name = entry
            .package
            .as_ref()
            .map(|p| p.ecosystem.trim().to_string())
            .unwrap_or_default();
        if ecosystem::info(&ecosystem_name).is_none() {
            unknown_ecosystems.push(ecosystem_name);
            continue;
        }
        if let Some(package) = normalise_affected(entry) {
            affected.push(package);
        }
    }
    if affected.is_empty() {
        return Normalised {
            advisory: Err(Skipped::NoKnownEcosystem),
            unknown_ecosystems,
        };
    }

    let mut aliases: Vec<String> = record
        .aliases
        .iter()
        .map(|a| a.trim().to_string())
        .collect();
    // `related` and `upstream` also carry non-CVE ids (other distros' advisories, CGA-...): only the
    // CVE ids belong in the alias list users search by.
    aliases.extend(
        record
            .related
            .iter()
            .chain(record.upstream.iter())
            .map(|a| a.trim())
            .filter(|a| a.starts_with("CVE-"))
            .map(str::to_string),
    );
    aliases.retain(|a| !a.is_empty() && *a != record.id);
    aliases.sort();
    aliases.dedup();

    let summary = record.summary.unwrap_or_default().trim().to_string();
    let vendor_severity = vendor_severity(&record.database_specific, &record.severity, &summary);
    Advisory {
        id: record.id.trim().to_string(),
        details: record.details.unwrap_or_default(),
        aliases,
        published: record.published,
        modified: record.modified,
        severity: record.severity.iter().map(severity_entry).collect(),
        vendor_severity,
        references: record
            .references
            .into_iter()
            .map(|r| r.url)
            .filter(|u| !u.is_empty())
            .collect(),
        affected,
        summary,
    }
    .into_normalised(unknown_ecosystems)
}

impl Advisory {
    fn into_normalised(self, unknown_ecosystems: Vec<String>) -> Normalised {
        Normalised {
            advisory: Ok(self),
            unknown_ecosystems,
        }
    }
}

fn normalise_affected(entry: OsvAffected) -> Option<AffectedPackage> {
    let package = entry.package?;
    let name = package.name.trim().to_string();
    if name.is_empty() {
        return None;
    }
    let mut severity: Vec<SeverityEntry> = entry.severity.iter().map(severity_entry).collect();
    // RustSec puts the CVSS vector of each affected crate in `database_specific.cvss`.
    if let Some(vector) = entry
        .database_specific
        .as_ref()
        .and_then(|d| d.get("cvss"))
        .and_then(|c| c.as_str())
    {
        let kind = if vector.starts_with("CVSS:4") {
            SeverityKind::CvssV4
        } else {
            SeverityKind::CvssV3
        };
        severity.push(SeverityEntry {
            kind,
            score: vector.to_string(),
        });
    }
    Some(AffectedPackage {
        ecosystem: package.ecosystem.trim().to_string(),
        name,
        ranges: entry.ranges.iter().filter_map(normalise_range).collect(),
        versions: entry
            .versions
            .into_iter()
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
            .collect(),
        severity,
    })
}

fn normalise_range(range: &OsvRange) -> Option<AffectedRange> {
    let kind = match range.kind.as_str() {
        "ECOSYSTEM" => RangeKind::Ecosystem,
        "SEMVER" => RangeKind::Semver,
        // GIT ranges name commits; they cannot be compared with installed package versions.
        _ => return None,
    };
    let events = range
        .events
        .iter()
        .filter_map(|event| {
            let text = |v: &String| v.trim().to_string();
            if let Some(v) = &event.introduced {
                Some(Event::Introduced(text(v)))
            } else if let Some(v) = &event.fixed {
                Some(Event::Fixed(text(v)))
            } else if let Some(v) = &event.last_affected {
                Some(Event::LastAffected(text(v)))
            } else {
                event.limit.as_ref().map(|v| Event::Limit(text(v)))
            }
        })
        .collect();
    Some(AffectedRange { kind, events })
}

fn severity_entry(entry: &OsvSeverity) -> SeverityEntry {
    let kind = match entry.kind.as_str() {
        "CVSS_V2" => SeverityKind::CvssV2,
        "CVSS_V3" => SeverityKind::CvssV3,
        "CVSS_V4" => SeverityKind::CvssV4,
        other => SeverityKind::Other(other.to_string()),
    };
    SeverityEntry {
        kind,
        score: entry.score.trim().to_string(),
    }
}

/// The publisher's own severity word, if the record carries one.
fn vendor_severity(
    database_specific: &Option<serde_json::Value>,
    severity: &[OsvSeverity],
    summary: &str,
) -> Option<String> {
    if let Some(word) = database_specific
        .as_ref()
        .and_then(|d| d.get("severity"))
        .and_then(|s| s.as_str())
        .filter(|s| !s.trim().is_empty())
    {
        return Some(word.trim().to_string());
    }
    if let Some(entry) = severity
        .iter()
        .find(|s| !s.kind.starts_with("CVSS") && !s.score.trim().is_empty())
    {
        return Some(entry.score.trim().to_string());
    }
    // Red Hat derived errata (AlmaLinux, Rocky) start their summary with the errata severity.
    let (prefix, _) = summary.split_once(':')?;
    matches!(prefix, "Critical" | "Important" | "Moderate" | "Low").then(|| prefix.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Normalised {
        normalise(serde_json::from_str(text).unwrap())
    }

    #[test]
    fn keeps_cve_ids_from_related_and_drops_git_ranges() {
        let n = parse(
            r#"{"id": "ALSA-1", "summary": "Important: x update", "related": ["CVE-2025-1", "CGA-x"],
                "affected": [{"package": {"ecosystem": "AlmaLinux:9", "name": "x"},
                   "ranges": [{"type": "GIT", "repo": "r", "events": [{"introduced": "abc"}]},
                              {"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "1:2-3"}]}]},
                  {"package": {"ecosystem": "NuGet", "name": "y"}}]}"#,
        );
        let advisory = n.advisory.unwrap();
        assert_eq!(advisory.aliases, vec!["CVE-2025-1"]);
        assert_eq!(advisory.vendor_severity.as_deref(), Some("Important"));
        assert_eq!(advisory.affected.len(), 1);
        assert_eq!(advisory.affected[0].ranges.len(), 1);
        assert_eq!(
            advisory.affected[0].ranges[0].events[1],
            Event::Fixed("1:2-3".into())
        );
        assert_eq!(n.unknown_ecosystems, vec!["NuGet"]);
    }

    #[test]
    fn skips_withdrawn_and_unknown_only_records() {
        let n = parse(
            r#"{"id": "W", "withdrawn": "2024-01-01T00:00:00Z",
                "affected": [{"package": {"ecosystem": "PyPI", "name": "x"}}]}"#,
        );
        assert_eq!(n.advisory.unwrap_err(), Skipped::Withdrawn);
        let n =
            parse(r#"{"id": "U", "affected": [{"package": {"ecosystem": "Hex", "name": "x"}}]}"#);
        assert_eq!(n.advisory.unwrap_err(), Skipped::NoKnownEcosystem);
    }
}
