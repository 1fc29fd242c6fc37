//! Reports over a large warehouse, Vigil (DataFusion) against DuckDB on the same Parquet files.
//!
//! Writes (once, then reuses) a warehouse of `VIGIL_BENCH_ROWS` findings rows (default 10 million) across
//! 5 subscriptions x 20 registries with Vigil's own writer, adds three disable rules, then times the
//! `recommendations`, `images` and `findings` reports: Vigil opening its session and running the report,
//! and DuckDB (benches/warehouse_vs_duckdb.py, run with `VIGIL_PYTHON`) creating the same views over the
//! same files and running the same SQL. Median of 5 runs each after a warm-up; prints the ratios.
//! Run through benches/warehouse_vs_duckdb.sh.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use vigil::matcher::{Finding, Severity, SeveritySource};
use vigil::model::{Coverage, CoverageStatus, Inventory, PackageType};
use vigil::report::{self, rules};
use vigil::warehouse::{self, CrawledRegistry, ScanRun, ScannedImage, Warehouse};

const SUBSCRIPTIONS: usize = 5;
const REGISTRIES: usize = 20;
const FINDINGS_PER_IMAGE: usize = 200;
const ADVISORIES: usize = 5000;
const RUNS: usize = 5;

struct Advisory {
    id: String,
    aliases: Arc<[String]>,
    summary: Arc<str>,
    details: Arc<str>,
    references: Arc<[String]>,
    category: &'static str,
    package: String,
    score: Option<f64>,
    severity: Severity,
    patchable: bool,
}

fn advisories() -> Vec<Advisory> {
    const CATEGORIES: [&str; 6] = ["Debian", "Alpine", "PyPI", "Go", "Maven", "npm"];
    (0..ADVISORIES)
        .map(|n| {
            let score = (n % 7 != 0).then(|| ((n * 37) % 100) as f64 / 10.0);
            Advisory {
                id: format!("ADV-{n:05}"),
                aliases: Arc::from(vec![format!("CVE-2025-{n:05}")]),
                summary: Arc::from(format!(
                    "package-{}: flaw number {n} in input handling",
                    n % 900
                )),
                details: Arc::from(format!(
                    "A flaw in package-{} lets a remote attacker do harm ({n}).",
                    n % 900
                )),
                references: Arc::from(vec![format!("https://example.org/advisories/{n}")]),
                category: CATEGORIES[n % CATEGORIES.len()],
                package: format!("package-{}", n % 900),
                score,
                severity: score.map_or(Severity::Unknown, Severity::from_score),
                patchable: n % 3 != 0,
            }
        })
        .collect()
}

fn finding(advisory: &Advisory, db_hash: &Arc<str>) -> Finding {
    Finding {
        id: advisory.id.clone(),
        aliases: advisory.aliases.clone(),
        summary: advisory.summary.clone(),
        details: advisory.details.clone(),
        category: advisory.category.to_string(),
        package_type: if matches!(advisory.category, "Debian" | "Alpine") {
            PackageType::Os
        } else {
            PackageType::Language
        },
        package_name: advisory.package.clone(),
        package_version: "1.2.3-1".to_string(),
        ecosystem: advisory.category.to_string(),
        source_package: None,
        advisory_package: advisory.package.clone(),
        compared_version: "1.2.3-1".to_string(),
        fixed_version: advisory.patchable.then(|| "1.2.4-1".to_string()),
        patchable: advisory.patchable,
        cvss_v3_vector: advisory
            .score
            .map(|_| "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H".to_string()),
        cvss_v3_score: advisory.score,
        cvss_v4_vector: None,
        cvss_v4_score: None,
        severity: advisory.severity,
        severity_source: if advisory.score.is_some() {
            SeveritySource::CvssV3
        } else {
            SeveritySource::None
        },
        references: advisory.references.clone(),
        published: None,
        modified: None,
        remediation: if advisory.patchable {
            format!("Upgrade {} to 1.2.4-1", advisory.package)
        } else {
            "No fix is available yet".into()
        },
        layer_digest: Some(format!("sha256:{}", "ab".repeat(32))),
        location: "var/lib/dpkg/status".to_string(),
        db_content_hash: db_hash.clone(),
    }
}

fn digest(subscription: usize, registry: usize, image: usize) -> String {
    format!(
        "sha256:{:064x}",
        (subscription * 1_000_000 + registry * 10_000 + image) as u128 * 0x9e37_79b9_7f4a_7c15
    )
}

fn generate(root: &Path, rows: usize) {
    let store = Warehouse::local(root).expect("a local warehouse");
    let advisories = advisories();
    let db_hash: Arc<str> = Arc::from("bench");
    let images_per_partition = (rows / (SUBSCRIPTIONS * REGISTRIES) / FINDINGS_PER_IMAGE).max(1);
    let started_at: DateTime<Utc> = "2026-11-01T00:00:00Z".parse().unwrap();
    for s in 0..SUBSCRIPTIONS {
        for r in 0..REGISTRIES {
            let subscription = format!("sub-{s}");
            let registry = format!("registry-{r:02}");
            let images: Vec<ScannedImage> = (0..images_per_partition)
                .map(|i| ScannedImage {
                    subscription: subscription.clone(),
                    registry: registry.clone(),
                    repository: format!("team-{}/service-{}", i % 10, i / 10),
                    tags: vec![format!("1.{i}"), "latest".to_string()],
                    digest: digest(s, r, i),
                    platform: "linux/amd64".to_string(),
                    inventory: Inventory {
                        image: String::new(),
                        digest: None,
                        platform: None,
                        os: None,
                        packages: Vec::new(),
                        coverage: Coverage {
                            status: CoverageStatus::Complete,
                            reason: String::new(),
                        },
                    },
                    findings: (0..FINDINGS_PER_IMAGE)
                        .map(|k| {
                            finding(
                                &advisories[(i * 131 + k * 17 + s * 7 + r) % ADVISORIES],
                                &db_hash,
                            )
                        })
                        .collect(),
                    pushed_at: None,
                    last_pulled_at: None,
                    selection: warehouse::Selection::Forced,
                    inventory_scan_id: None,
                    carried: None,
                })
                .collect();
            let at = started_at + chrono::Duration::seconds((s * REGISTRIES + r) as i64);
            let run = ScanRun {
                scan_id: warehouse::new_scan_id(at),
                started_at: at,
                finished_at: at,
                scanner_version: "bench".into(),
                db_content_hash: "bench".into(),
                images_seen: images.len() as u64,
                images_scanned: images.len() as u64,
                images_failed: 0,
                errors: Vec::new(),
                schedule: None,
                deferred: 0,
                crawled: vec![CrawledRegistry {
                    subscription: subscription.clone(),
                    registry: registry.clone(),
                    images_seen: images.len() as u64,
                }],
                images,
            };
            futures::executor::block_on(warehouse::commit::commit(&store, &run))
                .expect("commit a bench run");
        }
    }
    let rule = |subscription: &str, f: &dyn Fn(&mut rules::RuleSpec)| {
        let mut spec = rules::RuleSpec::from_patch(rules::RulePatch {
            subscription: Some(subscription.into()),
            reason: Some("bench".into()),
            author: "bench".into(),
            ..rules::RulePatch::default()
        })
        .expect("a subscription is given");
        f(&mut spec);
        futures::executor::block_on(rules::add(&store, spec)).expect("add a bench rule");
    };
    rule("sub-0", &|s| s.criteria.category = Some("npm".into()));
    rule("sub-1", &|s| {
        s.criteria.severity_below = Some(Severity::Medium)
    });
    rule("sub-2", &|s| {
        s.criteria.repository = Some("team-1/*".into());
        s.criteria.patchable = Some(false);
    });
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

fn main() {
    let rows: usize = std::env::var("VIGIL_BENCH_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000_000);
    let base = std::env::var("VIGIL_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| std::env::temp_dir().join("vigil-bench"));
    let root = base.join(format!("warehouse-{rows}"));
    let done = root.join(".generated");
    if !done.exists() {
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).unwrap();
        let start = Instant::now();
        generate(&root, rows);
        std::fs::write(&done, b"").unwrap();
        eprintln!(
            "generated {rows} rows in {:.1?} at {}",
            start.elapsed(),
            root.display()
        );
    }
    let image_digest = digest(2, 7, 3);
    let reports: Vec<(&str, Vec<(&str, String)>)> = vec![
        ("recommendations", vec![]),
        (
            "images",
            vec![
                ("registry", "registry-07".into()),
                ("repository", "team-3/service-0".into()),
                ("subscription", "sub-2".into()),
            ],
        ),
        (
            "findings",
            vec![
                ("registry", "registry-07".into()),
                ("digest", image_digest.clone()),
                ("subscription", "sub-2".into()),
            ],
        ),
    ];
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let store = Warehouse::local(&root).unwrap();
    let statements = runtime.block_on(report::view_statements(&store)).unwrap();
    let infos = report::list_reports();
    let committed: Vec<String> = runtime
        .block_on(warehouse::read::committed_scans(&store))
        .unwrap()
        .into_iter()
        .map(|scan| scan.scan_id)
        .collect();
    let mut jobs = Vec::new();
    for (name, params) in &reports {
        let params: BTreeMap<String, String> = params
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect();
        let info = infos.iter().find(|r| r.name == *name).unwrap();
        let sql = report::bind_report(info, &params).unwrap();
        let mut times = Vec::new();
        let mut result_rows = 0;
        for run in 0..=RUNS {
            let start = Instant::now();
            let batches = runtime
                .block_on(report::run_report(&store, name, &params))
                .unwrap();
            if run > 0 {
                times.push(start.elapsed());
            }
            result_rows = batches.iter().map(|b| b.num_rows()).sum::<usize>();
        }
        jobs.push(serde_json::json!({"name": name, "sql": sql, "vigil_ms": median(times).as_secs_f64() * 1000.0, "rows": result_rows}));
    }
    let spec = serde_json::json!({"root": root, "committed": committed, "views": statements, "reports": jobs, "runs": RUNS});
    let spec_path = base.join("duckdb-jobs.json");
    std::fs::write(&spec_path, serde_json::to_vec_pretty(&spec).unwrap()).unwrap();

    let python = std::env::var("VIGIL_PYTHON").unwrap_or_else(|_| "python3".into());
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/warehouse_vs_duckdb.py");
    let output = std::process::Command::new(&python)
        .arg(&script)
        .arg(&spec_path)
        .output()
        .expect("run the DuckDB side");
    if !output.status.success() {
        panic!(
            "DuckDB side failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let duck: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    println!(
        "warehouse: {rows} findings rows, {} committed scans, median of {RUNS}",
        committed.len()
    );
    println!(
        "{:<16} {:>10} {:>10} {:>7} {:>8}",
        "report", "vigil ms", "duckdb ms", "ratio", "rows"
    );
    for job in &jobs {
        let name = job["name"].as_str().unwrap();
        let vigil_ms = job["vigil_ms"].as_f64().unwrap();
        let duck_ms = duck[name]["ms"].as_f64().unwrap();
        let duck_rows = duck[name]["rows"].as_u64().unwrap();
        assert_eq!(
            duck_rows,
            job["rows"].as_u64().unwrap(),
            "{name}: DuckDB and Vigil disagree on the row count"
        );
        println!(
            "{name:<16} {vigil_ms:>10.1} {duck_ms:>10.1} {:>6.2}x {duck_rows:>8}",
            vigil_ms / duck_ms
        );
    }
}
