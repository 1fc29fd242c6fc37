//! Matcher integration tests against real advisories (tests/testdata/osv/records). Each expected finding
//! was checked by hand against the advisory text; the reasoning sits next to it. Every test also checks
//! a near miss that must not match.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use vigil::matcher::{self, Finding, MatchOutput, Severity, SeveritySource};
use vigil::model::{Coverage, CoverageStatus, Inventory, OsIdentity, Package, PackageType};
use vigil::vulndb::{self, Database};

fn testdata() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/testdata/osv")
}

/// One DB for all tests of this binary, imported from the copied records into a temp dir.
fn db() -> &'static Database {
    static DB: OnceLock<(tempfile::TempDir, Database)> = OnceLock::new();
    &DB.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        vulndb::import(dir.path(), &[testdata().join("records")]).unwrap();
        let db = Database::open(dir.path()).unwrap();
        (dir, db)
    })
    .1
}

fn package(ecosystem: &str, kind: PackageType, name: &str, version: &str) -> Package {
    Package {
        name: name.into(),
        version: version.into(),
        ecosystem: ecosystem.into(),
        package_type: kind,
        source_name: None,
        source_version: None,
        arch: None,
        extractor: "test".into(),
        location: "var/lib/test".into(),
        layer_digest: Some(format!("sha256:{}", "ab".repeat(32))),
    }
}

fn os_package(ecosystem: &str, name: &str, version: &str, source: Option<&str>) -> Package {
    let mut p = package(ecosystem, PackageType::Os, name, version);
    p.source_name = source.map(str::to_string);
    p
}

fn lang(ecosystem: &str, name: &str, version: &str) -> Package {
    package(ecosystem, PackageType::Language, name, version)
}

fn run(packages: Vec<Package>) -> MatchOutput {
    run_with_os(packages, None)
}

fn run_with_os(packages: Vec<Package>, os_ecosystem: Option<&str>) -> MatchOutput {
    let inventory = Inventory {
        image: "test".into(),
        digest: None,
        platform: None,
        os: os_ecosystem.map(|e| OsIdentity {
            id: "x".into(),
            version_id: "1".into(),
            pretty_name: None,
            ecosystem: Some(e.into()),
        }),
        packages,
        coverage: Coverage {
            status: CoverageStatus::Complete,
            reason: String::new(),
        },
    };
    matcher::match_inventory(db(), &inventory)
}

fn ids(findings: &[Finding]) -> Vec<&str> {
    let mut ids: Vec<&str> = findings.iter().map(|f| f.id.as_str()).collect();
    ids.sort();
    ids
}

fn finding<'a>(out: &'a MatchOutput, id: &str) -> &'a Finding {
    out.findings
        .iter()
        .find(|f| f.id == id)
        .unwrap_or_else(|| panic!("no finding {id} in {:?}", ids(&out.findings)))
}

#[test]
fn almalinux_matches_binary_names_with_epoch() {
    // openssl-libs 1:3.0.7-27.el9 (epoch 1, as AlmaLinux 9 ships it). The ALSAs list `openssl-libs`
    // with fixed versions: 2024:0310 -> 1:3.0.7-25.el9_3 (older: not affected), 2024:2447 ->
    // 1:3.0.7-27.el9 (exactly the installed version: the near miss, not affected), 2024:6783 ->
    // 1:3.0.7-28.el9_4, 2024:9333 -> 1:3.2.2-6.el9_5, 2025:1330 -> 1:3.2.2-6.el9_5.1, 2025:21255 ->
    // 1:3.5.1-4.el9_7 (all above: affected). The source RPM `openssl` is listed too; one finding each.
    let out = run(vec![os_package(
        "AlmaLinux:9",
        "openssl-libs",
        "1:3.0.7-27.el9",
        Some("openssl"),
    )]);
    assert_eq!(
        ids(&out.findings),
        vec![
            "ALSA-2024:6783",
            "ALSA-2024:9333",
            "ALSA-2025:1330",
            "ALSA-2025:21255"
        ]
    );
    let f = finding(&out, "ALSA-2024:6783");
    assert_eq!(f.fixed_version.as_deref(), Some("1:3.0.7-28.el9_4"));
    assert!(f.patchable);
    assert_eq!(f.category, "AlmaLinux");
    assert_eq!(&*f.summary, "Moderate: openssl security update");
    // No CVSS in AlmaLinux records: the errata severity word decides.
    assert_eq!(
        (f.severity, f.severity_source),
        (Severity::Medium, SeveritySource::Vendor)
    );
    assert_eq!(
        finding(&out, "ALSA-2025:1330").severity,
        Severity::High,
        "Important"
    );
    assert_eq!(
        f.remediation,
        "upgrade openssl-libs (source openssl) from 1:3.0.7-27.el9 to 1:3.0.7-28.el9_4"
    );
    assert_eq!(
        f.layer_digest.as_deref(),
        Some(&*format!("sha256:{}", "ab".repeat(32)))
    );
    assert_eq!(&*f.db_content_hash, db().content_hash());

    // An explicit zero epoch is the same EVR as none.
    let zero = run(vec![os_package(
        "AlmaLinux:9",
        "openssl-libs",
        "0:3.0.7-27.el9",
        None,
    )]);
    // Epoch 0 < 1: every listed openssl-libs advisory applies.
    assert_eq!(zero.findings.len(), 6);

    // Near misses: another release, and the latest fixed version.
    assert!(run(vec![os_package(
        "AlmaLinux:8",
        "openssl-libs",
        "1:3.0.7-27.el9",
        None
    )])
    .findings
    .is_empty());
    assert!(run(vec![os_package(
        "AlmaLinux:9",
        "openssl-libs",
        "1:3.5.1-4.el9_7",
        None
    )])
    .findings
    .is_empty());
}

#[test]
fn almalinux_matches_binaries_through_their_source_rpm() {
    // ALSA-2025:21926 lists `kernel` (fixed 5.14.0-611.9.1.el9_7) and other kernel subpackages but not
    // `kernel-core`. kernel-core is built from the `kernel` source RPM and shares its EVR, so it matches
    // through its source RPM name.
    let out = run(vec![os_package(
        "AlmaLinux:9",
        "kernel-core",
        "5.14.0-570.12.1.el9_6",
        Some("kernel-5.14.0-570.12.1.el9_6.src.rpm"),
    )]);
    assert_eq!(ids(&out.findings), vec!["ALSA-2025:21926"]);
    let f = &out.findings[0];
    assert_eq!(f.advisory_package, "kernel");
    assert_eq!(f.fixed_version.as_deref(), Some("5.14.0-611.9.1.el9_7"));
    assert_eq!(f.aliases.to_vec(), vec!["CVE-2025-39843"]);
    // Near misses: without a source name kernel-core is not listed; at the fixed EVR it is fixed.
    assert!(run(vec![os_package(
        "AlmaLinux:9",
        "kernel-core",
        "5.14.0-570.12.1.el9_6",
        None
    )])
    .findings
    .is_empty());
    assert!(run(vec![os_package(
        "AlmaLinux:9",
        "kernel-core",
        "5.14.0-611.9.1.el9_7",
        Some("kernel")
    )])
    .findings
    .is_empty());
}

#[test]
fn debian_matches_by_source_package_and_version_in_its_release() {
    // libssl1.1 is built from the `openssl` source package. Source version 1.1.1n-0+deb11u3 on Debian 11:
    // DSA-5169-1 fixed exactly 1.1.1n-0+deb11u3 (near miss: not affected); DSA-4963-1, 5103-1, 5139-1
    // fixed earlier versions; DSA-5343-1 fixed 1.1.1n-0+deb11u4: the one finding.
    let mut libssl = os_package("", "libssl1.1", "1.1.1n-0+deb11u3", Some("openssl"));
    libssl.source_version = Some("1.1.1n-0+deb11u3".into());
    // The ecosystem comes from the image's os-release when the extractor leaves it empty.
    let out = run_with_os(vec![libssl.clone()], Some("Debian:11"));
    assert_eq!(ids(&out.findings), vec!["DSA-5343-1"]);
    let f = &out.findings[0];
    assert_eq!(f.ecosystem, "Debian:11");
    assert_eq!(f.category, "Debian");
    assert_eq!(f.package_type, PackageType::Os);
    assert_eq!(f.source_package.as_deref(), Some("openssl"));
    assert_eq!(&*f.summary, "openssl - security update");
    assert!(f.aliases.contains(&"CVE-2023-0286".to_string()));
    assert_eq!(
        f.remediation,
        "upgrade libssl1.1 (source openssl) from 1.1.1n-0+deb11u3 to 1.1.1n-0+deb11u4"
    );
    assert_eq!(
        (f.severity, f.severity_source),
        (Severity::Unknown, SeveritySource::None)
    );

    // Near miss: the same source version in Debian 10's advisories (fixes up to 1.1.1n-0+deb10u3, all
    // below deb11u3), and the binary name alone (advisories are keyed by source).
    assert!(run_with_os(vec![libssl.clone()], Some("Debian:10"))
        .findings
        .is_empty());
    assert!(run(vec![os_package(
        "Debian:11",
        "libssl1.1",
        "1.1.1n-0+deb11u3",
        None
    )])
    .findings
    .is_empty());
    // An image with no known release: counted, not matched.
    let out = run(vec![libssl]);
    assert_eq!(out.stats.packages_without_ecosystem, 1);
}

#[test]
fn ubuntu_matches_by_source_in_its_release() {
    // USN-5614-1: wayland fixed in 1.16.0-1ubuntu1.1~18.04.4 on 18.04 and 1.18.0-1ubuntu0.1 on 20.04.
    let mut client = os_package(
        "Ubuntu:18.04:LTS",
        "libwayland-client0",
        "1.16.0-1ubuntu1.1~18.04.3",
        Some("wayland"),
    );
    let out = run(vec![client.clone()]);
    assert_eq!(ids(&out.findings), vec!["USN-5614-1"]);
    assert_eq!(
        out.findings[0].fixed_version.as_deref(),
        Some("1.16.0-1ubuntu1.1~18.04.4")
    );
    // Near miss: 20.04 at exactly its fixed version.
    client.ecosystem = "Ubuntu:20.04:LTS".into();
    client.version = "1.18.0-1ubuntu0.1".into();
    assert!(run(vec![client]).findings.is_empty());
}

#[test]
fn alpine_matches_by_origin_in_its_release() {
    // CVE-2019-1547 for openssl: fixed 1.1.1d-r1 on v3.11 but 1.1.1d-r0 on v3.10. libcrypto1.1 (origin
    // openssl) 1.1.1d-r0 is affected on v3.11 only. CVE-2018-0734 (fixed 1.1.1a-r0) does not apply.
    let libcrypto = os_package("Alpine:v3.11", "libcrypto1.1", "1.1.1d-r0", Some("openssl"));
    let out = run(vec![libcrypto.clone()]);
    assert_eq!(ids(&out.findings), vec!["ALPINE-SECDB-CVE-2019-1547"]);
    let f = &out.findings[0];
    assert_eq!(f.fixed_version.as_deref(), Some("1.1.1d-r1"));
    assert_eq!(f.aliases.to_vec(), vec!["CVE-2019-1547"]);
    // No summary or details in these converted records: the id stands in.
    assert_eq!(&*f.summary, "ALPINE-SECDB-CVE-2019-1547");
    let mut other_release = libcrypto;
    other_release.ecosystem = "Alpine:v3.10".into();
    assert!(run(vec![other_release]).findings.is_empty());
}

/// `name = "..."\nversion = "..."` pairs of a Cargo.lock.
fn cargo_lock_packages(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut name = None;
    for line in text.lines() {
        if let Some(value) = line.strip_prefix("name = ") {
            name = Some(value.trim_matches('"').to_string());
        } else if let (Some(value), Some(n)) = (line.strip_prefix("version = "), name.take()) {
            out.push((n, value.trim_matches('"').to_string()));
        }
    }
    out
}

#[test]
fn crates_io_ripgrep_lock_and_older_versions() {
    let lock = std::fs::read_to_string(testdata().join("fixtures/ripgrep-Cargo.lock")).unwrap();
    let pairs = cargo_lock_packages(&lock);
    assert_eq!(pairs.len(), 63);
    // The real lock is patched: crossbeam-epoch 0.9.20 and memmap2 0.9.11 sit exactly at the fixed
    // versions of RUSTSEC-2026-0204 and RUSTSEC-2026-0186 (near misses), everything else is newer.
    let packages: Vec<Package> = pairs.iter().map(|(n, v)| lang("crates.io", n, v)).collect();
    let out = run(packages);
    assert!(out.findings.is_empty(), "{:?}", ids(&out.findings));
    assert_eq!(out.stats.packages_checked, 63);

    let out = run(vec![
        // RUSTSEC-2026-0204: introduced 0.9.0, fixed 0.9.20.
        lang("crates.io", "crossbeam-epoch", "0.9.19"),
        // RUSTSEC-2021-0093: [0, 0.7.4) and [0.8.0, 0.8.1): 0.8.0 is affected, fix 0.8.1.
        lang("crates.io", "crossbeam-deque", "0.8.0"),
        // RUSTSEC-2025-0041: [0.8.0, 0.11.1); CVSS:3.1/AV:N/AC:L/PR:H/UI:N/S:U/C:N/I:H/A:N, which the
        // advisory text itself scores 4.9.
        lang("crates.io", "matrix-sdk-crypto", "0.11.0"),
        // RUSTSEC-2024-0445: fixed 3.4.1, CVSS v4 only.
        lang("crates.io", "cap-primitives", "3.4.0"),
        // RUSTSEC-2020-0053 is withdrawn: near miss.
        lang("crates.io", "dirs", "1.0.5"),
    ]);
    assert_eq!(
        ids(&out.findings),
        vec![
            "RUSTSEC-2021-0093",
            "RUSTSEC-2024-0445",
            "RUSTSEC-2025-0041",
            "RUSTSEC-2026-0204"
        ]
    );
    assert_eq!(
        finding(&out, "RUSTSEC-2021-0093").fixed_version.as_deref(),
        Some("0.8.1")
    );
    let matrix = finding(&out, "RUSTSEC-2025-0041");
    assert_eq!(matrix.cvss_v3_score, Some(4.9));
    assert_eq!(
        (matrix.severity, matrix.severity_source),
        (Severity::Medium, SeveritySource::CvssV3)
    );
    assert_eq!(matrix.category, "crates.io");
    assert_eq!(matrix.package_type, PackageType::Language);
    let cap = finding(&out, "RUSTSEC-2024-0445");
    assert_eq!(cap.severity_source, SeveritySource::CvssV4);
    assert!(cap.cvss_v3_vector.is_none());
    assert!(cap.cvss_v4_score.is_some_and(|s| s > 0.0 && s <= 10.0));
    // A crates.io package never meets the PyPI or OS advisories of the same name.
    assert!(run(vec![lang("PyPI", "crossbeam-epoch", "0.9.19")])
        .findings
        .is_empty());
}

#[test]
fn pypi_real_site_packages() {
    let expected: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(testdata().join("fixtures/python-site-packages-expected.json"))
            .unwrap(),
    )
    .unwrap();
    let packages: Vec<Package> = expected["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            lang(
                "PyPI",
                p["name"].as_str().unwrap(),
                p["version"].as_str().unwrap(),
            )
        })
        .collect();
    // pip 23.2.1: PYSEC-2023-228 (CVE-2023-5752) is [0, 23.3), CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:N/I:L/A:N
    // which NVD scores 3.3 (Low). setuptools 65.5.0: PYSEC-2022-43012 (CVE-2022-40897) is [0, 65.5.1).
    // Near misses: urllib3 2.7.0 is past PYSEC-2023-212's [2.0.0, 2.0.7); idna 3.13 past
    // PYSEC-2024-60's [0.1, 3.7).
    let out = run(packages);
    assert_eq!(
        ids(&out.findings),
        vec!["PYSEC-2022-43012", "PYSEC-2023-228"]
    );
    let pip = finding(&out, "PYSEC-2023-228");
    assert_eq!(pip.fixed_version.as_deref(), Some("23.3"));
    assert_eq!(pip.cvss_v3_score, Some(3.3));
    assert_eq!(pip.severity, Severity::Low);
    // No summary in PyPA records: the first line of the details is the security check.
    assert!(pip
        .summary
        .starts_with("When installing a package from a Mercurial VCS URL"));
    assert_eq!(pip.aliases.to_vec(), vec!["CVE-2023-5752"]);
    // PEP 503: names match whatever their spelling.
    let out = run(vec![
        lang("PyPI", "SetupTools", "65.5.0"),
        lang("PyPI", "setuptools", "65.5.1"),
    ]);
    assert_eq!(ids(&out.findings), vec!["PYSEC-2022-43012"]);
}

#[test]
fn maven_last_affected_is_inclusive_and_has_no_fix() {
    // GHSA-2qrg-x229-3v8q: log4j:log4j introduced 1.2, last_affected 1.2.17 (inclusive), no fix;
    // CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H = 9.8 (NVD), GHSA severity CRITICAL.
    // GHSA-4265-ccf5-phj5: commons-compress [1.21, 1.26.0).
    let out = run(vec![
        lang("Maven", "log4j:log4j", "1.2.17"),
        lang("Maven", "org.apache.commons:commons-compress", "1.21"),
    ]);
    assert_eq!(
        ids(&out.findings),
        vec!["GHSA-2qrg-x229-3v8q", "GHSA-4265-ccf5-phj5"]
    );
    let log4j = finding(&out, "GHSA-2qrg-x229-3v8q");
    assert!(!log4j.patchable);
    assert!(log4j.fixed_version.is_none());
    assert_eq!(log4j.cvss_v3_score, Some(9.8));
    assert_eq!(log4j.severity, Severity::Critical);
    assert!(log4j
        .remediation
        .starts_with("no fixed version of log4j:log4j"));
    // CVSS:3.1/AV:L/AC:L/PR:N/UI:R/S:U/C:N/I:N/A:H = 5.5 (NVD's score for CVE-2024-26308).
    let compress = finding(&out, "GHSA-4265-ccf5-phj5");
    assert_eq!(compress.cvss_v3_score, Some(5.5));
    assert!(compress.cvss_v4_vector.is_some());
    assert_eq!(compress.fixed_version.as_deref(), Some("1.26.0"));
    // Near misses: just past last_affected, exactly at fixed, and below introduced.
    assert!(run(vec![
        lang("Maven", "log4j:log4j", "1.2.18"),
        lang("Maven", "org.apache.commons:commons-compress", "1.26.0"),
        lang("Maven", "org.apache.commons:commons-compress", "1.20"),
    ])
    .findings
    .is_empty());
}

#[test]
fn os_and_language_never_cross_and_bad_versions_are_counted() {
    let out = run(vec![
        // An OS package claiming a language ecosystem, and the reverse: never matched.
        os_package("PyPI", "pip", "1.0", None),
        lang("Debian:11", "openssl", "1.1.1k-1"),
        // Versions the scheme rejects: counted, never a panic or a finding.
        lang("crates.io", "regex", "not a version"),
        lang("crates.io", "regex", &"9".repeat(10_000)),
        lang("crates.io", "regex", ""),
        // An ecosystem Vigil does not know.
        lang("NuGet", "Newtonsoft.Json", "1.0.0"),
    ]);
    assert!(out.findings.is_empty());
    assert_eq!(out.stats.package_type_mismatches, 2);
    assert_eq!(out.stats.unparsable_package_versions, 3);
    assert_eq!(out.stats.unsupported_ecosystems["NuGet"], 1);
    assert_eq!(out.stats.packages, 6);
}

#[test]
fn findings_round_trip_through_json() {
    let out = run(vec![lang("PyPI", "pip", "23.2.1")]);
    let text = serde_json::to_string(&out).unwrap();
    let back: MatchOutput = serde_json::from_str(&text).unwrap();
    assert_eq!(back, out);
    let value: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(value["findings"][0]["severity_source"], "cvss_v3");
    assert_eq!(value["findings"][0]["package_type"], "language");
    assert_eq!(value["findings"][0]["severity"], "Low");
}
