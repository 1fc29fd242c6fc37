//! Matching: inventory x advisories -> findings (ranges, source packages, severity, patchable).
//!
//! Each package is looked up under the name its ecosystem's advisories use (the Debian source package,
//! the Alpine origin, the RPM binary or its source RPM, a normalised language package name), only in
//! its own ecosystem string (so a Debian 11 package never meets Debian 10 or PyPI advisories), and its
//! version is compared in that ecosystem's scheme.

pub mod cvss;
mod finding;
pub mod ranges;

use std::cell::OnceCell;
use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::model::{Inventory, Package, PackageType};
use crate::vulndb::ecosystem::{self, EcosystemInfo, Naming};
use crate::vulndb::Database;

pub use finding::{Finding, Severity, SeveritySource};
use ranges::{ParsedAffected, Verdict};

/// What a match run produced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MatchOutput {
    pub findings: Vec<Finding>,
    pub stats: MatchStats,
}

/// Counters a run reports next to its findings, so gaps are visible rather than silent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MatchStats {
    /// Packages in the inventory.
    pub packages: u64,
    /// Packages looked up in the DB (known ecosystem, consistent package type).
    pub packages_checked: u64,
    /// Packages with no ecosystem (OS packages of an image whose release is unknown).
    pub packages_without_ecosystem: u64,
    /// Packages of ecosystems Vigil cannot match, by ecosystem.
    pub unsupported_ecosystems: BTreeMap<String, u64>,
    /// Packages whose type contradicts their ecosystem (an OS package claiming `PyPI`): never matched.
    pub package_type_mismatches: u64,
    /// Packages with advisories to check whose own version does not parse in the ecosystem's scheme.
    pub unparsable_package_versions: u64,
    /// Affected entries that could not be evaluated because an advisory version does not parse.
    pub unparsable_advisory_ranges: u64,
    /// Findings produced.
    pub findings: u64,
    /// The advisory DB's content hash.
    pub db_content_hash: String,
}

/// Matches every package of `inventory` against `db`.
pub fn match_inventory(db: &Database, inventory: &Inventory) -> MatchOutput {
    let mut stats = MatchStats {
        packages: inventory.packages.len() as u64,
        db_content_hash: db.content_hash().to_string(),
        ..MatchStats::default()
    };
    let image_ecosystem = inventory
        .os
        .as_ref()
        .and_then(|os| os.ecosystem.as_deref())
        .unwrap_or("");
    // Advisory ranges are parsed once per run, on first use, however many packages meet them.
    let parsed: Vec<OnceCell<ParsedAffected>> =
        (0..db.affected_total()).map(|_| OnceCell::new()).collect();
    let scored: Vec<OnceCell<finding::Scored>> =
        (0..db.affected_total()).map(|_| OnceCell::new()).collect();
    let caches = Caches {
        parsed: &parsed,
        scored: &scored,
    };
    let db_content_hash: Arc<str> = db.content_hash().into();
    let mut findings = Vec::new();
    for package in &inventory.packages {
        let first = findings.len();
        match_package(
            db,
            &caches,
            package,
            image_ecosystem,
            &db_content_hash,
            &mut stats,
            &mut findings,
        );
        // Findings come out in inventory order (merged inventories are sorted); within one package, by
        // advisory id. Sorting only these few keeps the output deterministic without a global string sort.
        findings[first..].sort_unstable_by(|a: &Finding, b: &Finding| a.id.cmp(&b.id));
    }
    stats.findings = findings.len() as u64;
    MatchOutput { findings, stats }
}

/// Per-run caches indexed by [`Database::affected_slot`].
struct Caches<'a> {
    parsed: &'a [OnceCell<ParsedAffected>],
    scored: &'a [OnceCell<finding::Scored>],
}

/// The names (normalised) and version a package is looked up and compared with.
struct Lookup {
    names: Vec<String>,
    version: String,
}

fn lookup_for(info: &EcosystemInfo, package: &Package) -> Lookup {
    let source = package
        .source_name
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty());
    match info.naming {
        Naming::DebSource => Lookup {
            names: vec![source.unwrap_or(&package.name).to_string()],
            // Debian and Ubuntu advisories give source versions; a binNMU'd binary (`+b1`) differs.
            version: package
                .source_version
                .as_deref()
                .filter(|v| !v.trim().is_empty())
                .unwrap_or(&package.version)
                .to_string(),
        },
        // Subpackages share their origin's version.
        Naming::ApkOrigin => Lookup {
            names: vec![source.unwrap_or(&package.name).to_string()],
            version: package.version.clone(),
        },
        Naming::RpmBinaryOrSource => {
            let mut names = vec![package.name.clone()];
            if let Some(source) = source.map(source_rpm_name) {
                if source != package.name {
                    names.push(source.to_string());
                }
            }
            Lookup {
                names,
                version: rpm_version(&package.version),
            }
        }
        Naming::Pep503 | Naming::CaseInsensitive | Naming::MavenCoordinates | Naming::Exact => {
            Lookup {
                names: vec![ecosystem::normalize_name(info.naming, &package.name)],
                version: package.version.clone(),
            }
        }
    }
}

/// The name of a source RPM given either as a name or as a file name (`openssl-3.0.7-27.el9.src.rpm`).
fn source_rpm_name(source: &str) -> &str {
    let Some(stem) = source
        .strip_suffix(".src.rpm")
        .or_else(|| source.strip_suffix(".nosrc.rpm"))
    else {
        return source;
    };
    // Strip `-version-release`.
    match stem.rsplitn(3, '-').nth(2) {
        Some(name) if !name.is_empty() => name,
        _ => stem,
    }
}

/// AlmaLinux and Rocky write the epoch only when it is non-zero; an explicit `0:` from the package side
/// is dropped so both sides spell the same EVR the same way.
fn rpm_version(version: &str) -> String {
    version.strip_prefix("0:").unwrap_or(version).to_string()
}

fn match_package(
    db: &Database,
    caches: &Caches<'_>,
    package: &Package,
    image_ecosystem: &str,
    db_content_hash: &Arc<str>,
    stats: &mut MatchStats,
    findings: &mut Vec<Finding>,
) {
    let ecosystem_name = if !package.ecosystem.trim().is_empty() {
        package.ecosystem.trim()
    } else if package.package_type == PackageType::Os {
        image_ecosystem
    } else {
        ""
    };
    if ecosystem_name.is_empty() {
        stats.packages_without_ecosystem += 1;
        return;
    }
    let Some(info) = ecosystem::info(ecosystem_name) else {
        *stats
            .unsupported_ecosystems
            .entry(ecosystem_name.to_string())
            .or_default() += 1;
        return;
    };
    // OS packages never meet language advisories and vice versa: a distro's backported fix is invisible
    // to upstream version ranges, which is the classic false positive.
    if info.package_type != package.package_type {
        stats.package_type_mismatches += 1;
        return;
    }
    stats.packages_checked += 1;
    let lookup = lookup_for(info, package);
    let scheme = info.versioning;

    let mut installed = None;
    // Few advisories meet one package: a short list beats a hash set allocated per package.
    let mut seen_advisories: Vec<u32> = Vec::new();
    for name in &lookup.names {
        for &entry in db.lookup(ecosystem_name, name) {
            let installed = match &mut installed {
                Some(parsed) => parsed,
                slot @ None => match scheme.parse(&lookup.version) {
                    Ok(parsed) => slot.insert(Ok(parsed)),
                    Err(error) => {
                        tracing::debug!(package = %package.name, %error, "unparsable package version");
                        stats.unparsable_package_versions += 1;
                        slot.insert(Err(()))
                    }
                },
            };
            let Ok(installed) = installed else {
                return;
            };
            if seen_advisories.contains(&entry.advisory) {
                continue;
            }
            let (advisory, affected) = db.resolve(entry);
            let slot = db.affected_slot(entry);
            let ranges =
                caches.parsed[slot].get_or_init(|| ranges::parse_affected(scheme, affected));
            match ranges::evaluate_parsed(affected, ranges, installed) {
                Verdict::Affected { fixed } => {
                    seen_advisories.push(entry.advisory);
                    let scored =
                        caches.scored[slot].get_or_init(|| finding::score(advisory, affected));
                    findings.push(finding::build(finding::Context {
                        scored,
                        advisory,
                        affected,
                        package,
                        info,
                        ecosystem: ecosystem_name,
                        compared_version: &lookup.version,
                        fixed,
                        db_content_hash,
                    }));
                }
                Verdict::NotAffected => {}
                Verdict::Unknown => stats.unparsable_advisory_ranges += 1,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_rpm_names_from_file_names() {
        assert_eq!(source_rpm_name("openssl-3.0.7-27.el9.src.rpm"), "openssl");
        assert_eq!(source_rpm_name("kernel"), "kernel");
        assert_eq!(
            source_rpm_name("python-urllib3-1.26.5-5.el9.src.rpm"),
            "python-urllib3"
        );
        assert_eq!(source_rpm_name("x.src.rpm"), "x");
        assert_eq!(rpm_version("0:1.2-3.el9"), "1.2-3.el9");
        assert_eq!(rpm_version("1:1.2-3.el9"), "1:1.2-3.el9");
    }
}
