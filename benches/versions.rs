//! Benchmark for the version stage: parse and compare throughput on real advisory versions.
//!
//! The matcher compares every inventoried package against the range events of its advisories, so
//! what matters is parse-once cost and compare cost. Run with `cargo bench --bench versions` (or
//! `cargo test --bench versions` for the unoptimised figure).

use std::collections::BTreeSet;
use std::hint::black_box;
use std::time::Instant;

use vigil::version::{Scheme, Version};

fn main() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/testdata/versions");
    let files = [
        (
            Scheme::Dpkg,
            "osv-scalibr-semantic/debian-versions-generated.tsv",
        ),
        (
            Scheme::Apk,
            "osv-scalibr-semantic/alpine-versions-generated.tsv",
        ),
        (Scheme::Rpm, "osv-scalibr-semantic/redhat-versions.tsv"),
        (Scheme::Semver, "osv-scalibr-semantic/semver-versions.tsv"),
        (Scheme::Go, "go-semver.tsv"),
        (
            Scheme::Pep440,
            "osv-scalibr-semantic/pypi-versions-generated.tsv",
        ),
        (
            Scheme::Maven,
            "osv-scalibr-semantic/maven-versions-generated.tsv",
        ),
    ];
    for (scheme, file) in files {
        let text = std::fs::read_to_string(dir.join(file)).expect("vector file");
        let inputs: BTreeSet<&str> = text
            .lines()
            .filter(|l| !l.starts_with('#'))
            .flat_map(|l| l.split('\t').take(2))
            .collect();
        let start = Instant::now();
        let parsed: Vec<Version> = inputs.iter().filter_map(|v| scheme.parse(v).ok()).collect();
        let parse_time = start.elapsed();
        if parsed.len() < 2 {
            continue;
        }
        // 400 000 comparisons: about 100 000 packages against four range events each.
        let comparisons = 400_000usize;
        let start = Instant::now();
        let mut less = 0usize;
        for i in 0..comparisons {
            let a = &parsed[i % parsed.len()];
            let b = &parsed[(i * 7919 + 13) % parsed.len()];
            if black_box(a.compare(b)) == Some(std::cmp::Ordering::Less) {
                less += 1;
            }
        }
        let compare_time = start.elapsed();
        println!(
            "{:<7} {:>6} versions parsed in {:>8.2?} ({:>6.0} ns each); {comparisons} comparisons in {:>8.2?} ({:>5.0} ns each; {less} less)",
            scheme.name(),
            parsed.len(),
            parse_time,
            parse_time.as_nanos() as f64 / parsed.len() as f64,
            compare_time,
            compare_time.as_nanos() as f64 / comparisons as f64,
        );
    }
}
