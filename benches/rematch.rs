//! Re-matching stored inventories, the work a scheduled run does for pulled and pushed images: read what
//! the warehouse holds (every image's newest row and the activity), read the stored packages of 1 000 images,
//! and match each against the whole shared advisory sample. Target: under 2 s.
//!
//! The 1 000 images each hold the 735 packages of a real Debian dpkg status file
//! (tests/testdata/fixtures/dpkg/debian12-bookworm-real), filed as Debian 11 (the release the shared
//! sample's converted Debian records cover), a tenth of them with every package at an old version, written
//! to a warehouse with Vigil's own writer. Run: `cargo bench --bench rematch` (exits 0 with a message when
//! ../shared/data is absent).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use chrono::Utc;
use vigil::extract::os::dpkg::parse_status;
use vigil::matcher::match_inventory;
use vigil::model::{Coverage, CoverageStatus, Inventory, OsIdentity};
use vigil::select::{self, ImageKey};
use vigil::vulndb::{self, Database};
use vigil::warehouse::{self, ScanRun, ScannedImage, Selection};

const IMAGES: usize = 1_000;
const ROUNDS: usize = 5;

/// The project's shared data set: beside the checkout (`../shared/data`) unless `VIGIL_SHARED_DATA` names it.
fn shared_data() -> PathBuf {
    match std::env::var_os("VIGIL_SHARED_DATA") {
        Some(root) => PathBuf::from(root),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data"),
    }
}

fn main() {
    let shared = shared_data();
    if !shared.join("osv-converted").is_dir() {
        println!(
            "rematch bench: skipped: {} absent; nothing to measure",
            shared.display()
        );
        return;
    }
    let work = tempfile::tempdir().expect("temp dir");
    vulndb::import(
        &work.path().join("db"),
        &[shared.join("osv"), shared.join("osv-converted")],
    )
    .expect("import");
    let db = Arc::new(Database::open(&work.path().join("db")).expect("open"));

    let status = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/testdata/fixtures/dpkg/debian12-bookworm-real/var/lib/dpkg/status"),
    )
    .expect("the dpkg fixture");
    let mut packages = parse_status("var/lib/dpkg/status", &status).expect("parse");
    for package in &mut packages {
        package.ecosystem = "Debian:11".into();
    }
    let os = OsIdentity {
        id: "debian".into(),
        version_id: "11".into(),
        pretty_name: Some("Debian GNU/Linux 11 (bullseye)".into()),
        ecosystem: Some("Debian:11".into()),
    };
    let root = work.path().join("warehouse");
    let started_at = Utc::now();
    let images: Vec<ScannedImage> = (0..IMAGES)
        .map(|i| {
            let mut packages = packages.clone();
            if i % 10 == 0 {
                // An old build: every package (and its source) at a version below every fix.
                for package in &mut packages {
                    package.version = "0.1-1".into();
                    package.source_version = None;
                }
            }
            ScannedImage {
                subscription: "bench".into(),
                registry: "main".into(),
                repository: format!("team/app-{i}"),
                tags: vec!["1.0".into()],
                digest: format!("sha256:{:064x}", i + 1),
                platform: "linux/amd64".into(),
                inventory: Inventory {
                    image: String::new(),
                    digest: None,
                    platform: None,
                    os: Some(os.clone()),
                    packages,
                    coverage: Coverage {
                        status: CoverageStatus::Complete,
                        reason: String::new(),
                    },
                },
                findings: Vec::new(),
                pushed_at: None,
                last_pulled_at: None,
                selection: Selection::New,
                inventory_scan_id: None,
                carried: None,
            }
        })
        .collect();
    let run = ScanRun {
        scan_id: warehouse::new_scan_id(started_at),
        started_at,
        finished_at: started_at,
        scanner_version: "bench".into(),
        db_content_hash: db.content_hash().into(),
        images_seen: IMAGES as u64,
        images_scanned: IMAGES as u64,
        images_failed: 0,
        errors: Vec::new(),
        schedule: None,
        deferred: 0,
        crawled: Vec::new(),
        images,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let store = warehouse::Warehouse::local(&root).expect("a local warehouse");
    runtime
        .block_on(warehouse::commit::commit(&store, &run))
        .expect("commit");
    let mut best = f64::MAX;
    let mut findings = 0;
    for _ in 0..ROUNDS {
        let started = Instant::now();
        let history = runtime
            .block_on(select::load_history(&store))
            .expect("history");
        let wanted: Vec<(ImageKey, String)> = history
            .previous
            .iter()
            .map(|(key, previous)| (key.clone(), previous.inventory_scan_id.clone()))
            .collect();
        let stored = runtime
            .block_on(select::stored_packages(&store, &wanted))
            .expect("packages");
        findings = 0;
        for (key, previous) in &history.previous {
            let inventory = Inventory {
                image: key.digest.clone(),
                digest: None,
                platform: None,
                os: previous.os.clone(),
                packages: stored.get(key).cloned().unwrap_or_default(),
                coverage: previous.coverage.clone(),
            };
            findings += match_inventory(&db, &inventory).findings.len();
        }
        best = best.min(started.elapsed().as_secs_f64());
        assert_eq!(history.previous.len(), IMAGES);
    }
    println!(
        "re-match {IMAGES} stored inventories ({} packages each) against the shared sample: {:.0} ms (best of {ROUNDS}), {findings} findings",
        packages.len(),
        best * 1e3
    );
}
