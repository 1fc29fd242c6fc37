//! End to end against a real registry: push the example images, `vigil scan`, and answer every report from
//! the warehouse; disable rules hide findings at query time, without rescanning.

use std::collections::BTreeMap;
use std::path::Path;

use crate::common::demo_images::build_demo;
use crate::common::*;
use serde_json::Value;

/// Pushes the example images to `registry` under their repository names.
fn seed(registry: &Registry, work: &Path) {
    let layout = work.join("layout");
    // skopeo's `oci:DIR:REF` splits at a colon, so the layout names avoid them.
    build_demo(&layout, &|repository, tag| {
        format!("{}--{tag}", repository.replace('/', "_"))
    });
    for (repository, tag) in [
        ("library/debian", "12"),
        ("library/alpine", "3.18"),
        ("distroless/base", "nonroot"),
        ("apps/scratch", "1.0"),
        ("apps/python-web", "1.4"),
        ("apps/go-service", "2.1"),
        ("apps/java-legacy", "0.9"),
    ] {
        let name = format!("{}--{tag}", repository.replace('/', "_"));
        skopeo_push(
            &layout,
            &name,
            &format!("{}/{repository}:{tag}", registry.host()),
            &[],
            None,
        );
    }
    skopeo_push(
        &layout,
        "apps_multi--2.0",
        &format!("{}/apps/multi:2.0", registry.host()),
        &["--all"],
        None,
    );
}

fn config(work: &Path, registry_url: &str) -> String {
    let path = work.join("vigil.toml");
    std::fs::write(
        &path,
        format!(
            "warehouse = \"warehouse\"\nadvisory_db = \"db\"\ncache = \"cache\"\n\n[[subscription]]\nid = \"prod\"\n[[subscription.registry]]\nname = \"main\"\nurl = \"{registry_url}\"\ninsecure_http = true\n"
        ),
    )
    .unwrap();
    path.display().to_string()
}

fn json_rows(run: &Run) -> Vec<Value> {
    assert_eq!(run.code, 0, "stderr: {}", run.stderr);
    match serde_json::from_str::<Value>(run.stdout.trim()) {
        Ok(Value::Array(rows)) => rows,
        Ok(other) => panic!("expected rows, got {other}"),
        Err(err) => panic!("not JSON ({err}): {}", run.stdout),
    }
}

fn report(config: &str, name: &str, params: &[(&str, &str)]) -> Vec<Value> {
    let mut args = vec!["report", name, "--config", config, "--format", "json"];
    let pairs: Vec<String> = params.iter().map(|(k, v)| format!("{k}={v}")).collect();
    for pair in &pairs {
        args.push("-p");
        args.push(pair);
    }
    json_rows(&vigil(&args, &[]))
}

fn sql(config: &str, query: &str) -> Vec<Value> {
    json_rows(&vigil(
        &["sql", query, "--config", config, "--format", "json"],
        &[],
    ))
}

fn count(config: &str, table: &str) -> u64 {
    sql(config, &format!("SELECT count(*) AS n FROM {table}"))[0]["n"]
        .as_u64()
        .unwrap()
}

#[test]
fn a_scan_of_a_real_registry_answers_every_report_and_rules_apply_at_query_time() {
    let registry = Registry::start();
    let work = tempfile::tempdir().unwrap();
    seed(&registry, work.path());
    let config = config(work.path(), &registry.url());
    let advisories = repo_root().join("examples/demo/advisories");
    let import = vigil(
        &[
            "db",
            "import",
            advisories.to_str().unwrap(),
            "--config",
            &config,
        ],
        &[],
    );
    assert_eq!(import.code, 0, "{}", import.stderr);

    let scan = vigil(&["scan", "--config", &config], &[]);
    assert_eq!(scan.code, 0, "stderr: {}", scan.stderr);
    let scan_id = scan.stdout.trim().to_string();
    assert!(!scan_id.is_empty());
    // Nine images (the index counts two platforms), of which the windows one is not readable.
    assert!(
        scan.stderr.contains("9 images seen, 9 scanned, 0 failed"),
        "{}",
        scan.stderr
    );

    // Expected findings, from the advisory sample (see examples/demo/advisories/README.md) against the
    // packages the images hold: python-web has pip 23.2.1 (PYSEC-2023-228, fixed 23.3, CVSS 3.3: Low) and
    // setuptools 65.5.0 (PYSEC-2022-43012, fixed 65.5.1, no score: Unknown); go-service has Go 1.22.0, hit by
    // 34 stdlib advisories (all fixed later, none scored; three more in the sample are for Go 1.24 and 1.25 only); java-legacy has log4j:log4j 1.2.17, hit by five GHSA
    // advisories with no fix (three Critical 9.8, two High 7.5 and 8.8). 41 findings in all.
    let images = count(&config, "latest_images");
    assert_eq!(images, 9);
    assert_eq!(count(&config, "latest_findings"), 41);
    let recommendations = report(&config, "recommendations", &[]);
    assert_eq!(recommendations.len(), 1, "{recommendations:?}");
    let recommendation = &recommendations[0];
    let text = recommendation.to_string();
    assert!(
        text.contains("Vulnerabilities in container registry images should be remediated"),
        "{text}"
    );
    let unhealthy = recommendation
        .as_object()
        .unwrap()
        .iter()
        .find(|(k, _)| k.contains("unhealthy"))
        .map(|(_, v)| v.clone());
    assert_eq!(unhealthy, Some(Value::from(3)), "{text}");

    // The drill-down: registry -> repository -> image -> finding.
    let registries = report(&config, "registries", &[]);
    assert_eq!(registries.len(), 1);
    assert_eq!(registries[0]["registry"], "main");
    let repositories = report(&config, "repositories", &[("registry", "main")]);
    assert_eq!(repositories.len(), 8, "{repositories:?}");
    let java_images = report(
        &config,
        "images",
        &[("registry", "main"), ("repository", "apps/java-legacy")],
    );
    assert_eq!(java_images.len(), 1);
    let java_digest = java_images[0]["digest"].as_str().unwrap().to_string();
    assert!(
        java_images[0].to_string().contains("Unhealthy"),
        "{:?}",
        java_images[0]
    );
    let findings = report(
        &config,
        "findings",
        &[("registry", "main"), ("digest", &java_digest)],
    );
    assert_eq!(findings.len(), 5, "{findings:?}");
    let finding = report(
        &config,
        "finding",
        &[
            ("registry", "main"),
            ("digest", &java_digest),
            ("finding_id", "GHSA-2qrg-x229-3v8q"),
        ],
    );
    assert_eq!(finding.len(), 1);
    let finding_text = finding[0].to_string();
    assert!(finding_text.contains("CVE-2019-17571"), "{finding_text}");
    assert!(finding_text.contains("9.8"), "{finding_text}");

    // Coverage is visible: the scratch image is not reported clean, the windows one says why.
    let coverage: BTreeMap<String, String> = sql(
        &config,
        "SELECT repository, platform, coverage_status FROM latest_images ORDER BY repository, platform",
    )
    .iter()
    .map(|r| {
        (
            format!("{} {}", r["repository"].as_str().unwrap(), r["platform"].as_str().unwrap()),
            r["coverage_status"].as_str().unwrap().to_string(),
        )
    })
    .collect();
    assert_eq!(coverage["apps/scratch linux/amd64"], "no-packages-found");
    assert_eq!(coverage["apps/multi windows/amd64"], "unsupported-os");
    assert_eq!(coverage["library/debian linux/amd64"], "complete");

    let exposure = report(&config, "exposure", &[("advisory", "CVE-2019-17571")]);
    assert_eq!(exposure.len(), 1, "{exposure:?}");
    let usage = report(&config, "usage", &[]);
    assert!(!usage.is_empty());
    let new_since = report(&config, "new_since", &[("since", "2000-01-01")]);
    assert_eq!(new_since.len(), 41);

    // A rule hiding every Go finding: active findings drop by 34 at once, without a rescan.
    let add = vigil(
        &[
            "rules",
            "add",
            "--config",
            &config,
            "--subscription",
            "prod",
            "--category",
            "Go",
            "--reason",
            "the Go service is being retired",
            "--author",
            "tester",
        ],
        &[],
    );
    assert_eq!(add.code, 0, "{}", add.stderr);
    let rule: Value = serde_json::from_str(&add.stdout).unwrap();
    let rule_id = rule["id"].as_str().unwrap().to_string();
    assert_eq!(count(&config, "active_findings"), 7);
    assert_eq!(count(&config, "disabled_findings"), 34);
    let disabled = report(&config, "disabled", &[]);
    assert!(
        disabled.iter().any(|r| r.to_string().contains(&rule_id)),
        "{disabled:?}"
    );
    // The same rule scoped to another subscription hides nothing here.
    let update = vigil(
        &[
            "rules",
            "update",
            &rule_id,
            "--config",
            &config,
            "--subscription",
            "staging",
        ],
        &[],
    );
    assert_eq!(update.code, 0, "{}", update.stderr);
    assert_eq!(count(&config, "active_findings"), 41);
    let delete = vigil(&["rules", "delete", &rule_id, "--config", &config], &[]);
    assert_eq!(delete.code, 0, "{}", delete.stderr);
    let list = vigil(
        &["rules", "list", "--config", &config, "--format", "json"],
        &[],
    );
    assert_eq!(
        serde_json::from_str::<Value>(&list.stdout).unwrap(),
        Value::Array(vec![])
    );

    // Read-only SQL: writes are refused with a clear error.
    let write = vigil(&["sql", "DROP TABLE findings", "--config", &config], &[]);
    assert_ne!(write.code, 0);
    assert!(
        write.stderr.to_lowercase().contains("read-only"),
        "{}",
        write.stderr
    );

    // A second scan reads no layer again and never duplicates findings in the latest views.
    let again = vigil(&["scan", "--config", &config], &[]);
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert!(again.stderr.contains("layers: 0 read"), "{}", again.stderr);
    assert_eq!(count(&config, "latest_findings"), 41);
    assert_eq!(count(&config, "findings"), 82, "history keeps both scans");
}

#[test]
fn the_demo_runs_on_the_embedded_default() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("vigil-demo");
    let run = vigil(&["demo", "--dir", dir.to_str().unwrap()], &[]);
    assert_eq!(run.code, 0, "stderr: {}", run.stderr);
    assert!(
        run.stdout
            .contains("Vulnerabilities in container registry images should be remediated"),
        "{}",
        run.stdout
    );
    assert!(dir.join("warehouse").is_dir());
    // Running it again reuses what it wrote and keeps the latest views free of duplicates.
    let again = vigil(&["demo", "--dir", dir.to_str().unwrap()], &[]);
    assert_eq!(again.code, 0, "stderr: {}", again.stderr);
    let latest = vigil(
        &[
            "sql",
            "SELECT count(*) AS n FROM latest_findings",
            "--warehouse",
            dir.join("warehouse").to_str().unwrap(),
            "--format",
            "json",
        ],
        &[],
    );
    let rows: Value = serde_json::from_str(latest.stdout.trim()).unwrap();
    assert_eq!(rows[0]["n"], 41);
}
