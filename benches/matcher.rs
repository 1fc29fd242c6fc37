//! Matching stage benchmark: DB load time and matching 100 000 packages against the whole shared
//! advisory sample (../shared/data/osv and osv-converted, beside the checkout). Prints its figures; exits 0
//! with a `skipped:` message when the shared data is absent.
//!
//! Run: `cargo bench --bench matcher` (a release build).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use vigil::matcher;
use vigil::model::{Coverage, CoverageStatus, Inventory, Package, PackageType};
use vigil::version::Scheme;
use vigil::vulndb::{self, Database};

const PACKAGES: usize = 100_000;

/// The project's shared data set: beside the checkout (`../shared/data`) unless `VIGIL_SHARED_DATA` names it.
fn shared_data() -> PathBuf {
    match std::env::var_os("VIGIL_SHARED_DATA") {
        Some(root) => PathBuf::from(root),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data"),
    }
}

fn main() {
    let shared = shared_data();
    if !shared.join("osv").is_dir() || !shared.join("osv-converted").is_dir() {
        println!(
            "matcher bench: skipped: {} absent; nothing to measure",
            shared.display()
        );
        return;
    }
    let db_dir = tempfile::tempdir().expect("temp dir");
    let started = Instant::now();
    let report = vulndb::import(
        db_dir.path(),
        &[shared.join("osv"), shared.join("osv-converted")],
    )
    .expect("import");
    println!(
        "import: {} advisories from {} records in {:.0} ms",
        report.advisories,
        report.records_read,
        started.elapsed().as_secs_f64() * 1e3
    );

    // Best of a few loads: the first may pay for a cold page cache.
    let mut load_ms = f64::MAX;
    let mut db = None;
    for _ in 0..5 {
        let started = Instant::now();
        let loaded = Database::open(db_dir.path()).expect("open");
        load_ms = load_ms.min(started.elapsed().as_secs_f64() * 1e3);
        db = Some(loaded);
    }
    let db = db.expect("loaded");
    let size = std::fs::metadata(vulndb::db_path(db_dir.path()))
        .map(|m| m.len())
        .unwrap_or(0);
    println!(
        "load: {load_ms:.1} ms (best of 5) for a {:.1} MB DB",
        size as f64 / 1e6
    );

    for (label, patched) in [
        ("patched (each at its newest fix)", true),
        (
            "vulnerable (each at one advisory's first version or fix)",
            false,
        ),
    ] {
        let inventory = synthetic_inventory(&db, patched);
        let mut best = f64::MAX;
        let mut findings = 0;
        for _ in 0..3 {
            let started = Instant::now();
            let out = matcher::match_inventory(&db, &inventory);
            best = best.min(started.elapsed().as_secs_f64());
            findings = out.findings.len();
            std::hint::black_box(&out);
        }
        println!(
            "match, {label}: {PACKAGES} packages in {:.0} ms (best of 3, one thread), {findings} findings",
            best * 1e3
        );
    }
}

/// The newest fixed version any advisory gives for (ecosystem, name).
fn newest_fixes(db: &Database) -> HashMap<(String, String), String> {
    let mut newest: HashMap<(String, String), String> = HashMap::new();
    for advisory in db.advisories() {
        for affected in &advisory.affected {
            let Some(scheme) = Scheme::for_ecosystem(&affected.ecosystem) else {
                continue;
            };
            for event in affected.ranges.iter().flat_map(|r| &r.events) {
                let vulndb::Event::Fixed(fixed) = event else {
                    continue;
                };
                let key = (affected.ecosystem.clone(), affected.name.clone());
                let newer = match newest.get(&key) {
                    None => scheme.parse(fixed).is_ok(),
                    Some(current) => {
                        scheme.compare(fixed, current) == Ok(std::cmp::Ordering::Greater)
                    }
                };
                if newer {
                    newest.insert(key, fixed.clone());
                }
            }
        }
    }
    newest
}

/// 100 000 packages: every (ecosystem, name) the advisories name, cycled, plus packages with no
/// advisories. `patched`: each at the newest fix any advisory names for it (every range is evaluated,
/// few match, like a maintained image); else at a version taken from one advisory (many match).
fn synthetic_inventory(db: &Database, patched: bool) -> Inventory {
    let newest = if patched {
        newest_fixes(db)
    } else {
        HashMap::new()
    };
    let mut packages = Vec::with_capacity(PACKAGES);
    let mut candidates = Vec::new();
    for advisory in db.advisories() {
        for affected in &advisory.affected {
            let newest_fix = newest
                .get(&(affected.ecosystem.clone(), affected.name.clone()))
                .cloned();
            let version = newest_fix
                .or_else(|| affected.versions.first().cloned())
                .or_else(|| {
                    affected
                        .ranges
                        .iter()
                        .flat_map(|r| &r.events)
                        .find_map(|e| match e {
                            vulndb::Event::Fixed(v) | vulndb::Event::LastAffected(v) => {
                                Some(v.clone())
                            }
                            _ => None,
                        })
                })
                .unwrap_or_else(|| "1.0.0".to_string());
            let package_type = vulndb::ecosystem::info(&affected.ecosystem)
                .map(|i| i.package_type)
                .unwrap_or(PackageType::Language);
            candidates.push((
                affected.ecosystem.clone(),
                affected.name.clone(),
                version,
                package_type,
            ));
        }
    }
    let mut index = 0;
    while packages.len() < PACKAGES {
        // Every fourth package names nothing in the DB, as most of a real image does.
        if packages.len() % 4 == 3 {
            packages.push(package(
                "Debian:11",
                &format!("lib-unlisted-{index}"),
                "1.0-1",
                PackageType::Os,
            ));
        } else {
            let (ecosystem, name, version, package_type) = &candidates[index % candidates.len()];
            packages.push(package(ecosystem, name, version, *package_type));
            index += 1;
        }
    }
    Inventory {
        image: "bench".into(),
        digest: None,
        platform: None,
        os: None,
        packages,
        coverage: Coverage {
            status: CoverageStatus::Complete,
            reason: String::new(),
        },
    }
}

fn package(ecosystem: &str, name: &str, version: &str, package_type: PackageType) -> Package {
    Package {
        name: name.to_string(),
        version: version.to_string(),
        ecosystem: ecosystem.to_string(),
        package_type,
        source_name: None,
        source_version: None,
        arch: None,
        extractor: "bench".into(),
        location: String::new(),
        layer_digest: None,
    }
}
