//! Conformance of every version scheme against the ecosystems' own test vectors.
//!
//! Stage: version leaf, integration test. Reads the copies in `tests/testdata/versions` (see the
//! README there for sources and licences) and requires 100% agreement with the reference
//! implementation each scheme follows. Rows in `exclusions.tsv` are checked against the reference
//! answer given there instead of the file's column. Inputs the reference rejects must give an error;
//! they come from the files themselves (dpkg column 5, `pep440-invalid.txt`, Go's canonical table,
//! `E` in exclusions) and from `rejected.tsv`, which lists, with reasons, the remaining vector inputs
//! the reference rejects. Every disagreement is reported, not just the first.
//!
//! `semver-npm-ranges.tsv` of the shared data is npm *range* syntax, not ordering; OSV advisories do
//! not use it, so it is not copied and not tested here.

use std::cmp::Ordering;
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;

use crate::common::shared_data;
use vigil::version::Scheme;

fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/testdata/versions")
}

fn read(relative: &str) -> String {
    let path = data_dir().join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// Data records split on tabs, with their 1-based starting line numbers; `#` lines and blank lines
/// skipped.
///
/// A few PEP 440 inputs contain a tab and a newline themselves (packaging's whitespace tests), so a
/// record spans lines until it has as many fields as the file's first record, and only the first
/// field may hold the extra tabs: the other fields are taken from the right.
fn rows(text: &str) -> Vec<(usize, Vec<&str>)> {
    let mut records = Vec::new();
    let mut width = None;
    let mut start: Option<(usize, usize)> = None; // (line number, byte offset)
    let mut offset = 0;
    for (index, line) in text.split_inclusive('\n').enumerate() {
        let line_start = offset;
        offset += line.len();
        let content = line.strip_suffix('\n').unwrap_or(line);
        if start.is_none() && (content.starts_with('#') || content.trim().is_empty()) {
            continue;
        }
        let (number, from) = *start.get_or_insert((index + 1, line_start));
        let record = &text[from..offset];
        let record = record.strip_suffix('\n').unwrap_or(record);
        let fields = record.split('\t').count();
        let width = *width.get_or_insert(fields);
        if fields < width {
            continue;
        }
        let mut cols: Vec<&str> = record.rsplitn(width, '\t').collect();
        cols.reverse();
        records.push((number, cols));
        start = None;
    }
    assert!(
        start.is_none(),
        "unterminated record at the end of the file"
    );
    records
}

/// What the reference answers for a pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expected {
    Order(Ordering),
    /// The reference rejects at least one of the two inputs.
    Rejected,
}

fn parse_expected(text: &str) -> Expected {
    match text.trim() {
        "-1" | "lt" => Expected::Order(Ordering::Less),
        "0" | "eq" => Expected::Order(Ordering::Equal),
        "1" | "gt" => Expected::Order(Ordering::Greater),
        "E" | "error" => Expected::Rejected,
        other => panic!("unknown expectation {other:?}"),
    }
}

/// `exclusions.tsv`: (file, a, b) -> the reference's answer.
fn exclusions() -> HashMap<(String, String, String), Expected> {
    rows(&read("exclusions.tsv"))
        .into_iter()
        .map(|(_, cols)| {
            (
                (
                    cols[0].to_string(),
                    cols[1].to_string(),
                    cols[2].to_string(),
                ),
                parse_expected(cols[4]),
            )
        })
        .collect()
}

/// Inputs of the vector files that the scheme's reference rejects: `rejected.tsv`, plus for Go the
/// inputs whose x/mod `Canonical()` is empty.
fn rejected(scheme: Scheme) -> HashSet<String> {
    let mut inputs: HashSet<String> = rows(&read("rejected.tsv"))
        .into_iter()
        .filter(|(_, cols)| cols[0] == scheme.name())
        .map(|(_, cols)| cols[1].to_string())
        .collect();
    if scheme == Scheme::Go {
        inputs.extend(
            rows(&read("go-semver-canonical.tsv"))
                .into_iter()
                .filter(|(_, cols)| cols.get(1).is_none_or(|c| c.is_empty()))
                .map(|(_, cols)| cols[0].to_string()),
        );
    }
    inputs
}

/// Compares one pair and describes a disagreement with the expectation, if any.
fn disagreement(scheme: Scheme, a: &str, b: &str, expected: Expected) -> Option<String> {
    let got = scheme.compare(a, b);
    let mirrored = scheme.compare(b, a);
    match expected {
        Expected::Order(order) => match (&got, &mirrored) {
            (Ok(x), Ok(y)) if *x == order && *y == order.reverse() => None,
            _ => Some(format!(
                "{a:?} vs {b:?}: expected {order:?}, got {got:?} (mirrored {mirrored:?})"
            )),
        },
        Expected::Rejected => match got {
            Err(_) => None,
            Ok(order) => Some(format!(
                "{a:?} vs {b:?}: expected an error (the reference rejects an input), got {order:?}"
            )),
        },
    }
}

/// Checks every row of a vector file; `column` is the 0-based column holding the reference answer.
fn check_file(file: &str, scheme: Scheme, column: usize) {
    let excluded = exclusions();
    let rejected = rejected(scheme);
    let text = read(file);
    let mut failures = Vec::new();
    let mut checked = 0;
    for (line, cols) in rows(&text) {
        let (a, b) = (cols[0], cols[1]);
        let key = (file.to_string(), a.to_string(), b.to_string());
        let expected = if let Some(answer) = excluded.get(&key) {
            *answer
        } else if rejected.contains(a) || rejected.contains(b) {
            Expected::Rejected
        } else {
            parse_expected(cols[column])
        };
        checked += 1;
        if let Some(problem) = disagreement(scheme, a, b, expected) {
            failures.push(format!("{file}:{line}: {problem}"));
        }
    }
    assert!(checked > 0, "{file} has no rows");
    assert!(
        failures.is_empty(),
        "{} of {checked} rows of {file} disagree with the reference:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn dpkg_vectors() {
    // Column 5 is `dpkg --compare-versions` of dpkg 1.21; `error` rows must be rejected.
    check_file("dpkg.tsv", Scheme::Dpkg, 4);
}

#[test]
fn debian_advisory_versions() {
    check_file("osv-scalibr-semantic/debian-versions.tsv", Scheme::Dpkg, 2);
    check_file(
        "osv-scalibr-semantic/debian-versions-generated.tsv",
        Scheme::Dpkg,
        2,
    );
}

#[test]
fn rpm_vectors() {
    // Column 4 is rpm.vercmp() of rpm 4.18.
    check_file("rpm.tsv", Scheme::Rpm, 3);
    check_file("osv-scalibr-semantic/redhat-versions.tsv", Scheme::Rpm, 2);
}

#[test]
fn apk_vectors() {
    check_file("apk.tsv", Scheme::Apk, 2);
    check_file("osv-scalibr-semantic/alpine-versions.tsv", Scheme::Apk, 2);
    check_file(
        "osv-scalibr-semantic/alpine-versions-generated.tsv",
        Scheme::Apk,
        2,
    );
}

#[test]
fn semver_vectors() {
    check_file("semver-npm.tsv", Scheme::Semver, 2);
    // Column 5 is SemVer 2.0 precedence; column 3 is the semver crate's Ord (ties on build metadata).
    check_file("semver-cargo.tsv", Scheme::Semver, 4);
    check_file(
        "osv-scalibr-semantic/semver-versions.tsv",
        Scheme::Semver,
        2,
    );
}

#[test]
fn go_vectors() {
    check_file("go-semver.tsv", Scheme::Go, 2);
}

/// x/mod's `Canonical()`: "" marks an input x/mod rejects.
#[test]
fn go_canonical_forms() {
    let mut failures = Vec::new();
    for (line, cols) in rows(&read("go-semver-canonical.tsv")) {
        let (input, canonical) = (cols[0], cols.get(1).copied().unwrap_or(""));
        let parsed = vigil::version::go::GoVersion::parse(input);
        match (parsed, canonical.is_empty()) {
            (Err(_), true) => {}
            (Ok(v), false) if v.canonical() == canonical => {}
            (got, _) => failures.push(format!(
                "line {line}: {input:?}: expected {canonical:?}, got {:?}",
                got.map(|v| v.canonical())
            )),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn pep440_vectors() {
    check_file("pep440.tsv", Scheme::Pep440, 2);
    check_file("osv-scalibr-semantic/pypi-versions.tsv", Scheme::Pep440, 2);
    check_file(
        "osv-scalibr-semantic/pypi-versions-generated.tsv",
        Scheme::Pep440,
        2,
    );
}

#[test]
fn pep440_invalid_versions_are_rejected() {
    let text = read("pep440-invalid.txt");
    let accepted: Vec<&str> = text
        .lines()
        .filter(|line| !line.starts_with('#'))
        .filter(|line| Scheme::Pep440.parse(line).is_ok())
        .collect();
    assert!(
        accepted.is_empty(),
        "accepted but packaging rejects: {accepted:?}"
    );
}

#[test]
fn maven_vectors() {
    // Column 5 is ComparableVersion of Maven 3.8.7 (3.9.9 agrees).
    check_file("maven.tsv", Scheme::Maven, 4);
    check_file("osv-scalibr-semantic/maven-versions.tsv", Scheme::Maven, 2);
    check_file(
        "osv-scalibr-semantic/maven-versions-generated.tsv",
        Scheme::Maven,
        2,
    );
}

/// Every input listed in rejected.tsv must really be rejected by its scheme.
#[test]
fn rejected_list_is_exact() {
    let mut failures = Vec::new();
    for (line, cols) in rows(&read("rejected.tsv")) {
        let scheme = Scheme::ALL
            .into_iter()
            .find(|s| s.name() == cols[0])
            .unwrap_or_else(|| panic!("rejected.tsv:{line}: unknown scheme {:?}", cols[0]));
        if scheme.parse(cols[1]).is_ok() {
            failures.push(format!("rejected.tsv:{line}: {:?} is accepted", cols[1]));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// When the full shared data set is present, the copies here must still be identical to it.
#[test]
fn copies_match_shared_data_when_present() {
    let Some(shared) = shared_data("versions") else {
        return;
    };
    let mut differing = Vec::new();
    for entry in walk(&data_dir()) {
        let relative = entry.strip_prefix(data_dir()).unwrap();
        let original = shared.join(relative);
        // README.md and rejected.tsv are ours, not copies.
        if !original.exists() || relative.ends_with("README.md") {
            continue;
        }
        if std::fs::read(&entry).unwrap() != std::fs::read(&original).unwrap() {
            differing.push(relative.display().to_string());
        }
    }
    assert!(differing.is_empty(), "copies differ: {differing:?}");
}

fn walk(dir: &std::path::Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}
