//! Every report on a fixture warehouse written by Vigil's own writer, the latest views across scans, and
//! the disable rules: each criterion alone, combined, expired, and scoped elsewhere.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::common;
use chrono::{DateTime, Duration, NaiveDate, Utc};
use vigil::matcher::{Finding, Severity, SeveritySource};
use vigil::model::{Coverage, CoverageStatus, Inventory, PackageType};
use vigil::report::{self, rules, OutputFormat};
use vigil::warehouse::schema::FINDING_COUNT_COLUMNS;
use vigil::warehouse::{self, CrawledRegistry, ScanRun, ScannedImage, Warehouse};

use crate::common::stores::{block_on, TestWarehouse};

/// A finding with the fields the rules and reports look at; the rest are plausible constants.
struct F {
    id: &'static str,
    cve: &'static str,
    category: &'static str,
    package: &'static str,
    summary: &'static str,
    cvss: Option<f64>,
    severity: Severity,
    patchable: bool,
}

fn finding(f: &F) -> Finding {
    Finding {
        id: f.id.to_string(),
        aliases: Arc::from(vec![f.cve.to_string()]),
        summary: Arc::from(f.summary),
        details: Arc::from(format!("Details of {}.", f.id)),
        category: f.category.to_string(),
        package_type: if matches!(f.category, "Debian" | "Alpine") {
            PackageType::Os
        } else {
            PackageType::Language
        },
        package_name: f.package.to_string(),
        package_version: "1.0".to_string(),
        ecosystem: f.category.to_string(),
        source_package: None,
        advisory_package: f.package.to_string(),
        compared_version: "1.0".to_string(),
        fixed_version: f.patchable.then(|| "1.1".to_string()),
        patchable: f.patchable,
        cvss_v3_vector: f
            .cvss
            .map(|_| "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H".to_string()),
        cvss_v3_score: f.cvss,
        cvss_v4_vector: None,
        cvss_v4_score: None,
        severity: f.severity,
        severity_source: if f.cvss.is_some() {
            SeveritySource::CvssV3
        } else {
            SeveritySource::None
        },
        references: Arc::from(vec![format!("https://osv.dev/{}", f.id)]),
        published: None,
        modified: None,
        remediation: if f.patchable {
            format!("Upgrade {} to 1.1", f.package)
        } else {
            "No fix yet".into()
        },
        layer_digest: Some(format!("sha256:{}", "1".repeat(64))),
        location: "var/lib/dpkg/status".to_string(),
        db_content_hash: Arc::from("dbhash"),
    }
}

const FINDINGS: [F; 5] = [
    F {
        id: "DSA-1",
        cve: "CVE-2024-0001",
        category: "Debian",
        package: "openssl",
        summary: "OpenSSL: buffer overflow in X.509",
        cvss: Some(9.8),
        severity: Severity::Critical,
        patchable: true,
    },
    F {
        id: "DSA-2",
        cve: "CVE-2024-0002",
        category: "Debian",
        package: "zlib",
        summary: "zlib: heap overflow in inflate",
        cvss: Some(7.5),
        severity: Severity::High,
        patchable: false,
    },
    F {
        id: "PYSEC-3",
        cve: "CVE-2024-0003",
        category: "PyPI",
        package: "pip",
        summary: "pip: path traversal",
        cvss: Some(3.3),
        severity: Severity::Low,
        patchable: true,
    },
    F {
        id: "GO-4",
        cve: "CVE-2024-0004",
        category: "Go",
        package: "stdlib",
        summary: "net/http: request smuggling",
        cvss: None,
        severity: Severity::Unknown,
        patchable: true,
    },
    F {
        id: "GHSA-5",
        cve: "CVE-2024-0005",
        category: "Maven",
        package: "log4j",
        summary: "log4j: deserialization of untrusted data",
        cvss: Some(5.0),
        severity: Severity::Medium,
        patchable: false,
    },
];

fn image(
    subscription: &str,
    registry: &str,
    repository: &str,
    n: u8,
    findings: &[&F],
    status: CoverageStatus,
) -> ScannedImage {
    ScannedImage {
        subscription: subscription.into(),
        registry: registry.into(),
        repository: repository.into(),
        tags: vec![format!("v{n}")],
        digest: format!("sha256:{}", format!("{n:02x}").repeat(32)),
        platform: "linux/amd64".into(),
        inventory: Inventory {
            image: format!("{registry}/{repository}"),
            digest: None,
            platform: None,
            os: None,
            packages: Vec::new(),
            coverage: Coverage {
                status,
                reason: String::new(),
            },
        },
        findings: findings.iter().map(|f| finding(f)).collect(),
        pushed_at: None,
        last_pulled_at: None,
        selection: warehouse::Selection::Forced,
        inventory_scan_id: None,
        carried: None,
    }
}

fn run(at: DateTime<Utc>, crawled: &[(&str, &str)], images: Vec<ScannedImage>) -> ScanRun {
    ScanRun {
        // Fixed, not random: the reports must print the same rows on every store.
        scan_id: format!("{}-00000000", at.format("%Y%m%dT%H%M%S%6fZ")),
        started_at: at,
        finished_at: at + Duration::seconds(3),
        scanner_version: "test".into(),
        db_content_hash: "dbhash".into(),
        images_seen: images.len() as u64,
        images_scanned: images.len() as u64,
        images_failed: 0,
        errors: Vec::new(),
        schedule: None,
        deferred: 0,
        crawled: crawled
            .iter()
            .map(|(s, r)| CrawledRegistry {
                subscription: s.to_string(),
                registry: r.to_string(),
                images_seen: 0,
            })
            .collect(),
        images,
    }
}

/// Two scans. The first: prod/main holds apps/web (all five findings), apps/api (PyPI only) and
/// apps/old (Debian only); staging/main holds apps/web (all five). The second, a day later, crawls
/// prod/main again: apps/old is gone and apps/web was rebuilt without the zlib finding; staging is not
/// crawled, so its image stays latest from the first scan.
fn fixture(root: &Warehouse) -> (DateTime<Utc>, DateTime<Utc>) {
    let all: Vec<&F> = FINDINGS.iter().collect();
    let first_at: DateTime<Utc> = "2026-03-01T10:00:00Z".parse().unwrap();
    let second_at = first_at + Duration::days(1);
    let first = run(
        first_at,
        &[("prod", "main"), ("staging", "main")],
        vec![
            image(
                "prod",
                "main",
                "apps/web",
                1,
                &all,
                CoverageStatus::Complete,
            ),
            image(
                "prod",
                "main",
                "apps/api",
                2,
                &[&FINDINGS[2]],
                CoverageStatus::Complete,
            ),
            image(
                "prod",
                "main",
                "apps/old",
                3,
                &[&FINDINGS[0]],
                CoverageStatus::Complete,
            ),
            image(
                "staging",
                "main",
                "apps/web",
                1,
                &all,
                CoverageStatus::Complete,
            ),
        ],
    );
    block_on(warehouse::commit::commit(root, &first)).unwrap();
    let rebuilt: Vec<&F> = FINDINGS.iter().filter(|f| f.id != "DSA-2").collect();
    let second = run(
        second_at,
        &[("prod", "main")],
        vec![
            // The tag v1 moved to the rebuilt image: the old digest is superseded.
            ScannedImage {
                tags: vec!["v1".into()],
                ..image(
                    "prod",
                    "main",
                    "apps/web",
                    4,
                    &rebuilt,
                    CoverageStatus::Complete,
                )
            },
            image(
                "prod",
                "main",
                "apps/api",
                2,
                &[&FINDINGS[2]],
                CoverageStatus::Complete,
            ),
            image(
                "prod",
                "main",
                "apps/empty",
                5,
                &[],
                CoverageStatus::NoPackagesFound,
            ),
        ],
    );
    block_on(warehouse::commit::commit(root, &second)).unwrap();
    (first_at, second_at)
}

fn rows(batches: &[arrow::array::RecordBatch]) -> Vec<serde_json::Value> {
    let text = report::format_batches(batches, OutputFormat::Json).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn report(root: &Warehouse, name: &str, params: &[(&str, &str)]) -> Vec<serde_json::Value> {
    let params: BTreeMap<String, String> = params
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    rows(
        &block_on(report::run_report(root, name, &params))
            .unwrap_or_else(|e| panic!("{name}: {e}")),
    )
}

/// The active findings the image assessments add up to, by severity and in all.
fn assessed(root: &Warehouse) -> u64 {
    let batches = block_on(report::run_sql(
            root,
            "SELECT sum(active_findings) AS n, sum(critical + high + medium + low + unknown) AS by_severity, \
             sum(patchable) AS patchable FROM image_assessments",
        ))
        .unwrap();
    let row = &rows(&batches)[0];
    let patchable = count(root, "active_findings WHERE patchable");
    assert_eq!(row["by_severity"], row["n"], "{row}");
    assert_eq!(row["patchable"].as_u64(), Some(patchable), "{row}");
    row["n"].as_u64().unwrap()
}

fn count(root: &Warehouse, view: &str) -> u64 {
    let batches = block_on(report::run_sql(
        root,
        &format!("SELECT count(*) AS n FROM {view}"),
    ))
    .unwrap();
    rows(&batches)[0]["n"].as_u64().unwrap()
}

fn latest_views_follow_crawls_and_keep_history(store: &TestWarehouse) {
    let dir = &store.warehouse;
    fixture(dir);
    // History: 5 + 1 + 1 + 5 in the first scan, 4 + 1 in the second.
    assert_eq!(count(dir, "findings"), 17);
    assert_eq!(count(dir, "images"), 7);
    // Latest: prod web (4) + api (1) + empty (0) from the second scan, staging web (5) from the first.
    assert_eq!(count(dir, "latest_images"), 4);
    assert_eq!(count(dir, "latest_findings"), 10);
    assert_eq!(count(dir, "active_findings"), 10);
    assert_eq!(count(dir, "disabled_findings"), 0);
}

/// A run that carries an image (not re-evaluated) writes no findings for it: its assessment counts the
/// findings of the scan that last evaluated it, and nothing of an older scan of the same image.
fn carried_images_are_assessed_from_the_scan_that_evaluated_them(store: &TestWarehouse) {
    let root = &store.warehouse;
    let at: DateTime<Utc> = "2026-03-01T10:00:00Z".parse().unwrap();
    let all: Vec<&F> = FINDINGS.iter().collect();
    let web = |findings: &[&F]| {
        image(
            "prod",
            "main",
            "apps/web",
            1,
            findings,
            CoverageStatus::Complete,
        )
    };
    block_on(warehouse::commit::commit(
        root,
        &run(at, &[("prod", "main")], vec![web(&all)]),
    ))
    .unwrap();
    // Re-evaluated against a newer advisory DB: only two findings left.
    let evaluated = run(
        at + Duration::hours(1),
        &[("prod", "main")],
        vec![web(&all[..2])],
    );
    block_on(warehouse::commit::commit(root, &evaluated)).unwrap();
    let carried = ScannedImage {
        findings: Vec::new(),
        selection: warehouse::Selection::Carried,
        carried: Some(warehouse::Carried {
            findings_scan_id: evaluated.scan_id.clone(),
            package_count: 0,
            counts: warehouse::FindingCounts::of(&evaluated.images[0].findings),
        }),
        ..web(&[])
    };
    block_on(warehouse::commit::commit(
        root,
        &run(at + Duration::hours(2), &[("prod", "main")], vec![carried]),
    ))
    .unwrap();

    assert_eq!(count(root, "latest_images"), 1);
    assert_eq!(count(root, "latest_findings"), 2);
    let images = report(
        root,
        "images",
        &[("registry", "main"), ("repository", "apps/web")],
    );
    assert_eq!(images.len(), 1, "{images:?}");
    assert_eq!(images[0]["findings"], 2, "{images:?}");
    assert_eq!(images[0]["assessment"], "Unhealthy", "{images:?}");
    let summary = report(root, "recommendations", &[]);
    assert_eq!(summary[0]["findings"], 2, "{summary:?}");

    // A rule hides one of the two: subtracted from the evaluating scan's counts once, not once per scan
    // that ever found it (the first scan did too), and not zero times (the carrying scan has no rows).
    block_on(rules::add(
        root,
        spec(|s| s.criteria.finding_id = Some(all[0].id.into())),
    ))
    .unwrap();
    let summary = report(root, "recommendations", &[]);
    assert_eq!(summary[0]["findings"], 1, "{summary:?}");
    assert_eq!(assessed(root), 1);
}

/// A warehouse written before `images` stored per-severity counts: its rows read the counts as null, the
/// reports still answer from `finding_count`, and the history says the counts are unknown (a scheduled run
/// then evaluates those images again instead of carrying them: see src/scan.rs).
#[test]
fn images_rows_without_stored_counts_still_answer() {
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    use parquet::arrow::ArrowWriter;

    let store = TestWarehouse::local();
    let root = &store.warehouse;
    fixture(root);
    let findings = report(root, "recommendations", &[])[0]["findings"].clone();
    // Files as Vigil wrote them before it stored per-severity counts, and `scans` rows from before runs
    // named their files (read by listing their partitions).
    let folder = root.local_root().unwrap();
    let rewrite = |path: &std::path::Path, drop: &[&str]| {
        let reader = ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(path).unwrap())
            .unwrap()
            .build()
            .unwrap();
        let batches: Vec<_> = reader
            .map(|batch| {
                let batch = batch.unwrap();
                let keep: Vec<usize> = (0..batch.num_columns())
                    .filter(|&i| !drop.contains(&batch.schema().field(i).name().as_str()))
                    .collect();
                batch.project(&keep).unwrap()
            })
            .collect();
        let mut writer = ArrowWriter::try_new(
            std::fs::File::create(path).unwrap(),
            batches[0].schema(),
            None,
        )
        .unwrap();
        for batch in &batches {
            writer.write(batch).unwrap();
        }
        writer.close().unwrap();
    };
    for (_, path) in common::files_under(&folder.join("images")) {
        rewrite(&path, &FINDING_COUNT_COLUMNS);
    }
    for (_, path) in common::files_under(&folder.join("scans")) {
        rewrite(&path, &["run_id", "shards", "files", "file_sizes"]);
    }

    let summary = &report(root, "recommendations", &[])[0];
    assert_eq!(summary["findings"], findings, "{summary}");
    let history = block_on(vigil::select::load_history(root)).unwrap();
    assert!(!history.previous.is_empty());
    assert!(history.previous.values().all(|p| p.counts.is_none()));
}

fn every_report_answers_on_the_fixture_warehouse(store: &TestWarehouse) {
    let root = &store.warehouse;
    let (first_at, _) = fixture(root);

    let recommendation = &report(root, "recommendations", &[])[0];
    assert_eq!(
        recommendation["recommendation"],
        "Vulnerabilities in container registry images should be remediated"
    );
    assert_eq!(recommendation["unhealthy_images"], 3, "{recommendation}");
    assert_eq!(
        recommendation["not_fully_assessed_images"], 1,
        "{recommendation}"
    );
    assert_eq!(recommendation["affected_registries"], 2);
    assert_eq!(recommendation["critical"], 2);
    assert_eq!(recommendation["high"], 1);
    assert_eq!(recommendation["findings"], 10);
    // Patchable: DSA-1, PYSEC-3, GO-4 in prod web; PYSEC-3 in api; DSA-1, PYSEC-3, GO-4 in staging web.
    assert_eq!(recommendation["patchable_findings"], 7);
    let prod_only = &report(root, "recommendations", &[("subscription", "prod")])[0];
    assert_eq!(prod_only["unhealthy_images"], 2);

    let registries = report(root, "registries", &[]);
    assert_eq!(registries.len(), 2);
    assert!(registries.iter().all(|r| r["registry"] == "main"));
    let repositories = report(
        root,
        "repositories",
        &[("registry", "main"), ("subscription", "prod")],
    );
    let names: Vec<&str> = repositories
        .iter()
        .map(|r| r["repository"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["apps/web", "apps/api", "apps/empty"],
        "apps/old is gone"
    );

    let images = report(
        root,
        "images",
        &[
            ("registry", "main"),
            ("repository", "apps/web"),
            ("subscription", "prod"),
        ],
    );
    assert_eq!(images.len(), 1);
    assert_eq!(images[0]["assessment"], "Unhealthy");
    assert_eq!(images[0]["severity"], "Critical");
    assert_eq!(images[0]["tags"], "v1");
    let empty = report(
        root,
        "images",
        &[("registry", "main"), ("repository", "apps/empty")],
    );
    assert_eq!(empty[0]["assessment"], "Not fully assessed");
    assert_eq!(empty[0]["coverage_status"], "no-packages-found");

    let digest = images[0]["digest"].as_str().unwrap().to_string();
    let findings = report(
        root,
        "findings",
        &[
            ("registry", "main"),
            ("digest", &digest),
            ("subscription", "prod"),
        ],
    );
    let ids: Vec<&str> = findings
        .iter()
        .map(|f| f["finding_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["DSA-1", "GHSA-5", "PYSEC-3", "GO-4"], "worst first");
    let finding = report(
        root,
        "finding",
        &[
            ("registry", "main"),
            ("digest", &digest),
            ("finding_id", "DSA-1"),
            ("subscription", "prod"),
        ],
    );
    assert_eq!(finding.len(), 1);
    assert_eq!(finding[0]["cve_ids"], serde_json::json!(["CVE-2024-0001"]));
    assert_eq!(finding[0]["cvss_v3_score"], 9.8);
    assert_eq!(finding[0]["remediation"], "Upgrade openssl to 1.1");
    assert_eq!(
        finding[0]["references"],
        serde_json::json!(["https://osv.dev/DSA-1"])
    );
    assert!(finding[0].get("disabled_by").is_none_or(|v| v.is_null()));

    let score = report(root, "secure_score", &[]);
    let prod = score.iter().find(|r| r["subscription"] == "prod").unwrap();
    assert_eq!(prod["images"], 3);
    assert_eq!(prod["healthy_images"], 0);
    assert_eq!(prod["secure_score_percent"], 0.0);

    // Exposure as of a past date sees the first scan: zlib (DSA-2) was in prod web and staging web.
    let before_second = (first_at + Duration::hours(1)).to_rfc3339();
    let past = report(
        root,
        "exposure",
        &[("advisory", "CVE-2024-0002"), ("as_of", &before_second)],
    );
    assert_eq!(past.len(), 2, "{past:?}");
    let now = report(root, "exposure", &[("advisory", "DSA-2")]);
    assert_eq!(now.len(), 1, "only staging still has it: {now:?}");
    assert_eq!(now[0]["subscription"], "staging");
    let before_any = report(
        root,
        "exposure",
        &[("advisory", "DSA-1"), ("as_of", "2026-01-01")],
    );
    assert!(before_any.is_empty());

    // New since the first scan: nothing in prod (every finding existed then), and none in staging.
    assert_eq!(
        report(root, "new_since", &[("since", "2026-03-01T12:00:00Z")]).len(),
        0
    );
    assert_eq!(
        report(root, "new_since", &[("since", "2026-02-01")]).len(),
        10
    );

    let usage = report(root, "usage", &[]);
    let day1: Vec<_> = usage.iter().filter(|r| r["day"] == "2026-03-01").collect();
    assert_eq!(day1.len(), 2);
    let prod_day1 = day1.iter().find(|r| r["subscription"] == "prod").unwrap();
    assert_eq!(prod_day1["images_scanned"], 3);
    let prod_day2 = usage.iter().find(|r| r["day"] == "2026-03-02").unwrap();
    assert_eq!(prod_day2["images_scanned"], 3);

    assert!(report(root, "disabled", &[]).is_empty());

    // The tag v1 moved from digest 01 (five findings) to 04; apps/old's digest is gone, not superseded.
    let superseded = report(root, "superseded", &[]);
    assert_eq!(superseded.len(), 1, "{superseded:?}");
    assert_eq!(superseded[0]["tag"], "v1");
    assert_eq!(
        superseded[0]["old_digest"],
        format!("sha256:{}", "01".repeat(32))
    );
    assert_eq!(
        superseded[0]["new_digest"],
        format!("sha256:{}", "04".repeat(32))
    );
    assert_eq!(superseded[0]["old_findings"], 5);
    assert_eq!(superseded[0]["new_active_findings"], 4);
}

fn report_parameters_are_checked_and_quoted(store: &TestWarehouse) {
    let dir = &store.warehouse;
    fixture(dir);
    let params = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    let missing = block_on(report::run_report(
        dir,
        "images",
        &params(&[("registry", "main")]),
    ));
    assert!(missing
        .unwrap_err()
        .to_string()
        .contains("missing parameter repository"));
    let unknown = block_on(report::run_report(
        dir,
        "registries",
        &params(&[("colour", "red")]),
    ));
    assert!(unknown
        .unwrap_err()
        .to_string()
        .contains("unknown parameter"));
    let nope = block_on(report::run_report(dir, "nope", &params(&[])));
    assert!(nope.unwrap_err().to_string().contains("recommendations"));
    // A quote in a value is data, not SQL.
    let injected = block_on(report::run_report(
        dir,
        "repositories",
        &params(&[("registry", "main' OR '1'='1")]),
    ))
    .unwrap();
    assert_eq!(injected.iter().map(|b| b.num_rows()).sum::<usize>(), 0);
    // Every report declares what it answers and every parameter it uses.
    for info in report::list_reports() {
        assert!(
            !info.description.is_empty(),
            "{} has no `-- answers:` line",
            info.name
        );
        let all: BTreeMap<String, String> = info
            .params
            .iter()
            .map(|p| (p.name.clone(), "2026-01-01".to_string()))
            .collect();
        report::bind_report(&info, &all).unwrap_or_else(|e| panic!("{e}"));
    }
    assert_eq!(report::list_reports().len(), 12);
}

fn sql_is_read_only(store: &TestWarehouse) {
    let dir = &store.warehouse;
    fixture(dir);
    for statement in [
        "DROP TABLE findings",
        "CREATE TABLE x AS SELECT 1",
        "INSERT INTO disable_rules SELECT * FROM disable_rules",
        "CREATE VIEW v AS SELECT 1",
        "SET datafusion.execution.batch_size = 1",
    ] {
        let err = block_on(report::run_sql(dir, statement)).unwrap_err();
        assert!(err.to_string().contains("read-only"), "{statement}: {err}");
    }
    let ok = block_on(report::run_sql(dir, "SHOW TABLES")).unwrap();
    assert!(!ok.is_empty());
    if let Some(folder) = dir.local_root() {
        let absent = Warehouse::local(&folder.join("absent")).unwrap();
        let none = block_on(report::run_sql(&absent, "SELECT 1"));
        assert!(none.unwrap_err().to_string().contains("no warehouse"));
    }
}

fn spec(f: impl FnOnce(&mut rules::RuleSpec)) -> rules::RuleSpec {
    let mut spec = rules::RuleSpec::from_patch(rules::RulePatch {
        subscription: Some("prod".into()),
        reason: Some("accepted risk".into()),
        author: "tester".into(),
        ..rules::RulePatch::default()
    })
    .unwrap();
    f(&mut spec);
    spec
}

/// Active prod findings after adding one rule, then the rule is deleted again.
fn hidden_by(root: &Warehouse, rule: rules::RuleSpec) -> u64 {
    let before = count(root, "active_findings");
    let added = block_on(rules::add(root, rule)).unwrap();
    let after = count(root, "active_findings");
    assert_eq!(
        count(root, "disabled_findings"),
        before - after,
        "each hidden finding is listed once"
    );
    assert_eq!(
        assessed(root),
        after,
        "the assessments count what active_findings lists"
    );
    block_on(rules::delete(root, &added.id, "tester")).unwrap();
    assert_eq!(
        count(root, "active_findings"),
        before,
        "deleting a rule shows its findings again"
    );
    before - after
}

fn each_rule_criterion_alone_combined_expired_and_scoped(store: &TestWarehouse) {
    let root = &store.warehouse;
    fixture(root);
    // Latest prod findings: web has DSA-1 (Critical 9.8, patchable), PYSEC-3 (Low 3.3, patchable),
    // GO-4 (Unknown, no score, patchable), GHSA-5 (Medium 5.0, not patchable); api has PYSEC-3.
    assert_eq!(
        hidden_by(
            root,
            spec(|s| s.criteria.finding_id = Some("PYSEC-3".into()))
        ),
        2
    );
    assert_eq!(
        hidden_by(
            root,
            spec(|s| s.criteria.finding_id = Some("CVE-2024-0001".into()))
        ),
        1,
        "by CVE alias"
    );
    assert_eq!(
        hidden_by(root, spec(|s| s.criteria.category = Some("go".into()))),
        1,
        "category, any case"
    );
    assert_eq!(
        hidden_by(
            root,
            spec(|s| s.criteria.security_check_contains = Some("TRAVERSAL".into()))
        ),
        2
    );
    assert_eq!(
        hidden_by(root, spec(|s| s.criteria.cvss_below = Some(5.5))),
        3,
        "3.3 twice and 5.0; no score is not below"
    );
    assert_eq!(
        hidden_by(
            root,
            spec(|s| s.criteria.severity_below = Some(Severity::High))
        ),
        3,
        "Low twice and Medium; Unknown stays"
    );
    assert_eq!(
        hidden_by(root, spec(|s| s.criteria.patchable = Some(false))),
        1
    );
    assert_eq!(
        hidden_by(root, spec(|s| s.criteria.patchable = Some(true))),
        4
    );
    assert_eq!(
        hidden_by(
            root,
            spec(|s| s.criteria.repository = Some("apps/a*".into()))
        ),
        1
    );
    assert_eq!(
        hidden_by(root, spec(|s| s.criteria.registry = Some("other".into()))),
        0
    );
    // Combined: every criterion must hold.
    assert_eq!(
        hidden_by(
            root,
            spec(|s| {
                s.criteria.category = Some("PyPI".into());
                s.criteria.repository = Some("apps/web".into());
            })
        ),
        1
    );
    assert_eq!(
        hidden_by(
            root,
            spec(|s| {
                s.criteria.patchable = Some(true);
                s.criteria.severity_below = Some(Severity::Medium);
            })
        ),
        2
    );
    // Expired rules hide nothing; a rule expiring tomorrow still applies today.
    let today = Utc::now().date_naive();
    assert_eq!(
        hidden_by(
            root,
            spec(|s| {
                s.criteria.category = Some("PyPI".into());
                s.expires = Some(today);
            })
        ),
        0
    );
    assert_eq!(
        hidden_by(
            root,
            spec(|s| {
                s.criteria.category = Some("PyPI".into());
                s.expires = today.succ_opt();
            })
        ),
        2
    );
    // Scoped elsewhere: a staging rule leaves prod alone and hides staging's one PyPI finding.
    assert_eq!(
        hidden_by(
            root,
            spec(|s| {
                s.subscription = "staging".into();
                s.criteria.category = Some("PyPI".into());
            })
        ),
        1
    );
    assert_eq!(
        hidden_by(
            root,
            spec(|s| {
                s.subscription = "elsewhere".into();
                s.criteria.category = Some("PyPI".into());
            })
        ),
        0
    );
}

/// Rules that overlap (one for the whole subscription, two for one of its registries that hide a finding
/// in common) hide each finding once in the assessments, as in `active_findings`.
fn overlapping_rules_hide_a_finding_once(store: &TestWarehouse) {
    let root = &store.warehouse;
    fixture(root);
    for rule in [
        // Only this rule hides GHSA-5 in prod's registry `main`.
        spec(|s| s.criteria.finding_id = Some("GHSA-5".into())),
        // Both of these hide PYSEC-3 (PyPI, Low, patchable), in web and in api.
        spec(|s| {
            s.criteria.registry = Some("main".into());
            s.criteria.category = Some("PyPI".into());
        }),
        spec(|s| {
            s.criteria.registry = Some("main".into());
            s.criteria.patchable = Some(true);
            s.criteria.severity_below = Some(Severity::High);
        }),
        spec(|s| {
            s.subscription = "staging".into();
            s.criteria.registry = Some("main".into());
        }),
    ] {
        block_on(rules::add(root, rule)).unwrap();
    }
    // The views put literals on either side of `=`: DataFusion 55 turns `c = 'x' AND 'x' = c` into `false`
    // on Utf8View columns, which is why partition columns are read as Utf8.
    assert_eq!(
        count(
            root,
            "findings WHERE subscription = 'prod' AND 'prod' = subscription"
        ),
        count(root, "findings WHERE subscription = 'prod'")
    );
    // prod web keeps DSA-1 (Critical) and GO-4 (Unknown); staging's registry rule hides all of staging.
    assert_eq!(count(root, "active_findings"), 2);
    assert_eq!(assessed(root), 2);
    // Once per rule: GHSA-5, PYSEC-3 twice by two rules, staging's five.
    assert_eq!(count(root, "disabled_findings"), 1 + 2 * 2 + 5);
    let summary = &report(root, "recommendations", &[])[0];
    assert_eq!(
        (
            &summary["critical"],
            &summary["unknown"],
            &summary["findings"]
        ),
        (&1.into(), &1.into(), &2.into()),
        "{summary}"
    );
}

fn rules_are_viewed_changed_and_deleted_with_history(store: &TestWarehouse) {
    let root = &store.warehouse;
    fixture(root);
    let rule = block_on(rules::add(
        root,
        spec(|s| s.criteria.category = Some("Debian".into())),
    ))
    .unwrap();
    assert_eq!(count(root, "active_findings"), 9);
    let disabled = report(root, "disabled", &[]);
    assert_eq!(disabled.len(), 1);
    assert_eq!(disabled[0]["rule_id"], rule.id.as_str());
    assert_eq!(disabled[0]["hidden_findings"], 1);
    // The disabled finding no longer counts: secure score and recommendation follow at once.
    let finding_digest = report(
        root,
        "images",
        &[
            ("registry", "main"),
            ("repository", "apps/web"),
            ("subscription", "prod"),
        ],
    )[0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let finding = report(
        root,
        "finding",
        &[
            ("registry", "main"),
            ("digest", &finding_digest),
            ("finding_id", "DSA-1"),
            ("subscription", "prod"),
        ],
    );
    assert_eq!(finding[0]["disabled_by"], rule.id.as_str());

    let updated = block_on(rules::update(
        root,
        &rule.id,
        rules::RulePatch {
            criteria: rules::RuleCriteria {
                category: Some("Maven".into()),
                ..Default::default()
            },
            author: "second".into(),
            ..Default::default()
        },
    ))
    .unwrap();
    assert_eq!(updated.version, 2);
    assert_eq!(
        block_on(rules::show(root, &rule.id))
            .unwrap()
            .spec
            .criteria
            .category
            .as_deref(),
        Some("Maven")
    );
    assert_eq!(
        count(root, "active_findings"),
        9,
        "GHSA-5 hidden instead of DSA-1"
    );
    let cleared = block_on(rules::update(
        root,
        &rule.id,
        rules::RulePatch {
            clear: vec![rules::ClearField::parse("category").unwrap()],
            author: "third".into(),
            ..Default::default()
        },
    ));
    assert!(
        cleared.unwrap_err().to_string().contains("at least one"),
        "a rule must keep a criterion"
    );
    block_on(rules::delete(root, &rule.id, "fourth")).unwrap();
    assert!(block_on(rules::list(root, None)).unwrap().is_empty());
    let history = block_on(rules::history(root, &rule.id)).unwrap();
    let ops: Vec<(&str, &str)> = history
        .iter()
        .map(|r| (r.op.as_str(), r.spec.author.as_str()))
        .collect();
    assert_eq!(
        ops,
        [
            ("add", "tester"),
            ("update", "second"),
            ("delete", "fourth")
        ]
    );
    assert!(block_on(rules::show(root, &rule.id)).is_err());

    // Invalid rules are refused with a reason.
    assert!(
        block_on(rules::add(root, spec(|_| {}))).is_err(),
        "no criterion"
    );
    assert!(block_on(rules::add(
        root,
        spec(|s| {
            s.criteria.cvss_below = Some(11.0);
        })
    ))
    .is_err());
    assert!(block_on(rules::add(
        root,
        spec(|s| {
            s.criteria.category = Some("Go".into());
            s.reason = " ".into();
        })
    ))
    .is_err());
    let _ = NaiveDate::from_ymd_opt(2026, 1, 1);
}

/// The requests of one `recommendations` session: `(gets, lists)`.
fn session_requests(root: &Warehouse) -> (u64, u64) {
    let counts = root.requests();
    let (gets, lists, _, _) = counts.snapshot();
    report(root, "recommendations", &[]);
    let (gets_after, lists_after, _, _) = counts.snapshot();
    (gets_after - gets, lists_after - lists)
}

/// A report session lists four folders (`scans`, `_checkpoints`, and the append-only `activity` and
/// `disable_rules`) and
/// reads committed files only: the files of runs that never committed cost it nothing, even when they are
/// not Parquet at all.
fn a_report_session_reads_committed_files_only(store: &TestWarehouse) {
    let root = &store.warehouse;
    fixture(root);
    block_on(rules::add(
        root,
        spec(|s| s.criteria.category = Some("Debian".into())),
    ))
    .unwrap();
    let (gets, lists) = session_requests(root);
    assert_eq!(
        lists, 4,
        "scans, _checkpoints, activity and disable_rules are listed once each"
    );
    let scans = block_on(warehouse::read::committed_scans(root)).unwrap();
    let files: usize = scans
        .iter()
        .map(|s| 1 + s.files.as_ref().map_or(0, Vec::len))
        .sum::<usize>()
        + 1;
    // At most one get per committed file (markers, data, the rule): a small file's footer read brings it
    // whole, and the session serves its page reads and second scans from that.
    eprintln!(
        "a recommendations session: {gets} gets and {lists} lists for {files} committed files"
    );
    assert!(gets as usize <= files, "{gets} gets for {files} files");

    for n in 0..20 {
        let key = format!(
            "findings/subscription=prod/registry=main/scan_id=29990101T000000000000Z-{n:08x}/part-0000-00000000.parquet"
        );
        block_on(root.put(
            &key,
            bytes::Bytes::from_static(b"a killed run's file, not Parquet"),
        ))
        .unwrap();
    }
    assert_eq!(
        session_requests(root),
        (gets, lists),
        "uncommitted runs cost a session nothing"
    );
}

crate::on_every_store!(
    a_report_session_reads_committed_files_only,
    latest_views_follow_crawls_and_keep_history,
    carried_images_are_assessed_from_the_scan_that_evaluated_them,
    every_report_answers_on_the_fixture_warehouse,
    report_parameters_are_checked_and_quoted,
    each_rule_criterion_alone_combined_expired_and_scoped,
    overlapping_rules_hide_a_finding_once,
    rules_are_viewed_changed_and_deleted_with_history,
    sql_is_read_only,
);

/// Every report prints the same rows from the same runs on a folder, Azurite and the S3 server.
#[test]
fn every_report_prints_identical_rows_on_every_store() {
    let mut stores = vec![("local", TestWarehouse::local())];
    stores.extend(TestWarehouse::azurite().map(|s| ("azurite", s)));
    stores.extend(TestWarehouse::s3().map(|s| ("s3", s)));
    let digest = format!("sha256:{}", "04".repeat(32));
    let mut printed: Vec<(&str, BTreeMap<String, String>)> = Vec::new();
    for (name, store) in &stores {
        fixture(&store.warehouse);
        let mut reports = BTreeMap::new();
        for info in report::list_reports() {
            let params: Vec<(&str, &str)> = info
                .params
                .iter()
                .filter(|p| p.required)
                .map(|p| match p.name.as_str() {
                    "advisory" => ("advisory", "DSA-2"),
                    "finding_id" => ("finding_id", "GO-4"),
                    "since" => ("since", "2026-02-01"),
                    "registry" => ("registry", "main"),
                    "repository" => ("repository", "apps/web"),
                    "digest" => ("digest", digest.as_str()),
                    other => panic!("report {} takes {other}: give it a value", info.name),
                })
                .collect();
            let rows = report(&store.warehouse, &info.name, &params);
            // The same rows; rows that tie on a report's ORDER BY may come in either order.
            let mut rows: Vec<String> = rows.iter().map(|row| row.to_string()).collect();
            rows.sort();
            reports.insert(info.name.clone(), rows.join("\n"));
        }
        printed.push((name, reports));
    }
    let (first, expected) = &printed[0];
    assert!(
        expected.values().any(|rows| rows.lines().count() > 2),
        "the reports print rows"
    );
    for (name, reports) in &printed[1..] {
        for (report_name, rows) in reports {
            assert_eq!(
                rows, &expected[report_name],
                "{report_name} on {name} vs {first}"
            );
        }
    }
}
