//! Integration tests of the extract stage: every OS package database fixture, run through the explicit
//! extractor list exactly as the layer walk would, gives exactly the packages its expected.json names.
//!
//! The fixtures live in `tests/testdata/fixtures` (see the README there); when the shared data set is
//! present the same checks also run over it, so a newly added shared fixture is caught too.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;
use vigil::extract::{self, Extracted};
use vigil::model::{Package, PackageType};

const SHARED_FIXTURES: &str = "/work/shared/data/fixtures";
const OS_FIXTURE_KINDS: [&str; 3] = ["dpkg", "dpkg-status.d", "apk"];

fn local_fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/testdata/fixtures")
}

/// Every regular file under `dir`, as (path relative to `dir` with `/` separators, full path).
fn files_under(dir: &Path) -> Vec<(String, PathBuf)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(current) = stack.pop() {
        for entry in std::fs::read_dir(&current).unwrap() {
            let entry = entry.unwrap();
            let path = entry.path();
            if entry.file_type().unwrap().is_dir() {
                stack.push(path);
            } else {
                let relative = path.strip_prefix(dir).unwrap();
                let relative: Vec<_> = relative
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
                    .collect();
                out.push((relative.join("/"), path));
            }
        }
    }
    out.sort();
    out
}

/// Runs every extractor that claims a file of the fixture, as the layer walk does.
fn extract_fixture(dir: &Path) -> Vec<Package> {
    let mut packages = Vec::new();
    for (relative, path) in files_under(dir) {
        for extractor in extract::all() {
            if !extractor.claims(&relative) {
                continue;
            }
            let contents = std::fs::read(&path).unwrap();
            assert!(contents.len() as u64 <= extractor.max_file_size());
            match extractor.extract(&relative, &contents) {
                Ok(Extracted::Packages(found)) => {
                    for package in &found {
                        assert_eq!(package.extractor, extractor.name());
                        assert_eq!(package.location, relative);
                        assert_eq!(package.package_type, PackageType::Os);
                        assert!(package.ecosystem.is_empty(), "{package:?}");
                        assert!(package.layer_digest.is_none());
                    }
                    packages.extend(found);
                }
                Ok(Extracted::Os(_)) => {}
                Err(error) => panic!("{}: {error}", dir.display()),
            }
        }
    }
    packages
}

/// The fields a fixture's expected.json states, as `field -> value`; absent fields are not compared.
type Row = BTreeMap<&'static str, String>;

/// Splits `curl-7.76.0-6.cm2.src.rpm` into (`curl`, `7.76.0-6.cm2`).
fn split_source_rpm(file: &str) -> (String, String) {
    let stem = file
        .strip_suffix(".rpm")
        .and_then(|s| s.rsplit_once('.'))
        .map(|(stem, _arch)| stem)
        .unwrap();
    let (rest, release) = stem.rsplit_once('-').unwrap();
    let (name, version) = rest.rsplit_once('-').unwrap();
    (name.to_string(), format!("{version}-{release}"))
}

fn expected_rows(expected: &Value) -> Vec<Row> {
    let mut rows = Vec::new();
    for package in expected["packages"].as_array().unwrap() {
        let text = |key: &str| package.get(key).and_then(Value::as_str).map(str::to_string);
        // dpkg fixtures list every stanza dpkg knows; a scanner reports the installed ones.
        if let Some(status) = text("status_abbrev") {
            if status != "ii" {
                continue;
            }
        }
        let mut row = Row::new();
        row.insert("name", text("name").unwrap());
        let version = text("version").unwrap();
        match text("release") {
            Some(release) => {
                let epoch = package.get("epoch").and_then(Value::as_u64).unwrap_or(0);
                let evr = if epoch == 0 {
                    format!("{version}-{release}")
                } else {
                    format!("{epoch}:{version}-{release}")
                };
                row.insert("version", evr);
            }
            None => {
                row.insert("version", version);
            }
        }
        if let Some(source_rpm) = text("source_rpm") {
            let (name, version) = split_source_rpm(&source_rpm);
            row.insert("source_name", name);
            row.insert("source_version", version);
        }
        if let Some(source) = text("source_name").or_else(|| text("origin")) {
            row.insert("source_name", source);
        }
        if let Some(version) = text("source_version") {
            row.insert("source_version", version);
        }
        if let Some(arch) = text("arch") {
            row.insert("arch", arch);
        }
        rows.push(row);
    }
    rows
}

/// Projects an extracted package onto the fields named in `fields`.
fn project(package: &Package, fields: &[&'static str]) -> Row {
    let mut row = Row::new();
    for &field in fields {
        let value = match field {
            "name" => Some(package.name.clone()),
            "version" => Some(package.version.clone()),
            "source_name" => package.source_name.clone(),
            "source_version" => package.source_version.clone(),
            "arch" => package.arch.clone(),
            other => panic!("unknown field {other}"),
        };
        row.insert(field, value.unwrap_or_else(|| "<none>".to_string()));
    }
    row
}

/// Asserts that `dir` (a fixture directory with expected.json) yields exactly its expected packages,
/// listing every missing and unexpected package at once.
fn check_fixture(dir: &Path) {
    let expected: Value =
        serde_json::from_slice(&std::fs::read(dir.join("expected.json")).unwrap()).unwrap();
    let mut want = expected_rows(&expected);
    let mut fields: Vec<&'static str> = want.iter().flat_map(|row| row.keys().copied()).collect();
    fields.sort();
    fields.dedup();
    let packages = extract_fixture(dir);
    let mut got: Vec<Row> = packages.iter().map(|p| project(p, &fields)).collect();
    want.sort();
    got.sort();

    let mut missing = Vec::new();
    let mut unexpected = Vec::new();
    let (mut i, mut j) = (0, 0);
    while i < want.len() || j < got.len() {
        match (want.get(i), got.get(j)) {
            (Some(w), Some(g)) if w == g => {
                i += 1;
                j += 1;
            }
            (Some(w), Some(g)) if w < g => {
                missing.push(w.clone());
                i += 1;
            }
            (Some(_), Some(g)) => {
                unexpected.push(g.clone());
                j += 1;
            }
            (Some(w), None) => {
                missing.push(w.clone());
                i += 1;
            }
            (None, Some(g)) => {
                unexpected.push(g.clone());
                j += 1;
            }
            (None, None) => unreachable!(),
        }
    }
    assert!(
        missing.is_empty() && unexpected.is_empty(),
        "{}: {} expected, {} extracted\nmissing: {missing:#?}\nunexpected: {unexpected:#?}",
        dir.display(),
        want.len(),
        got.len()
    );
    if let Some(count) = expected.get("installed_count").and_then(Value::as_u64) {
        assert_eq!(packages.len() as u64, count, "{}", dir.display());
    }
    for banned in expected
        .get("must_not_report")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let name = banned["name"].as_str().unwrap();
        assert!(
            !packages.iter().any(|p| p.name == name),
            "{}: reported {name}, which must not be",
            dir.display()
        );
    }
}

macro_rules! fixture_tests {
    ($($test:ident => $dir:literal,)*) => {
        $(
            #[test]
            fn $test() {
                check_fixture(&local_fixtures().join($dir));
            }
        )*

        /// Keeps the list above in step with the fixture directories on disk.
        #[test]
        fn every_local_fixture_has_a_test() {
            let mut listed = vec![$($dir),*];
            listed.sort();
            let mut on_disk = Vec::new();
            for kind in OS_FIXTURE_KINDS {
                for entry in std::fs::read_dir(local_fixtures().join(kind)).unwrap() {
                    on_disk.push(format!("{kind}/{}", entry.unwrap().file_name().to_string_lossy()));
                }
            }
            on_disk.sort();
            assert_eq!(listed, on_disk);
        }
    };
}

fixture_tests! {
    dpkg_scalibr_valid => "dpkg/scalibr-valid",
    dpkg_debian12_bookworm_real => "dpkg/debian12-bookworm-real",
    dpkg_status_d_scalibr_foo => "dpkg-status.d/scalibr-foo",
    dpkg_status_d_syft_distroless => "dpkg-status.d/syft-distroless",
    apk_scalibr_installed => "apk/scalibr-installed",
    apk_syft_multiple_2 => "apk/syft-multiple-2",
}

/// The same checks over the shared data set, when this machine has it.
#[test]
fn every_shared_os_fixture_matches_when_present() {
    let root = Path::new(SHARED_FIXTURES);
    if !root.is_dir() {
        return;
    }
    for kind in OS_FIXTURE_KINDS {
        let Ok(entries) = std::fs::read_dir(root.join(kind)) else {
            continue;
        };
        for entry in entries {
            check_fixture(&entry.unwrap().path());
        }
    }
}

#[test]
fn debian12_os_release_gives_debian_12() {
    let path = local_fixtures().join("dpkg/debian12-bookworm-real/os-release");
    let contents = std::fs::read(path).unwrap();
    let extractor = extract::all()
        .iter()
        .find(|e| e.claims("etc/os-release"))
        .unwrap();
    assert_eq!(extractor.name(), "os/release");
    let Extracted::Os(os) = extractor.extract("etc/os-release", &contents).unwrap() else {
        panic!("os-release gave packages");
    };
    assert_eq!(os.id, "debian");
    assert_eq!(os.version_id, "12");
    assert_eq!(os.ecosystem.as_deref(), Some("Debian:12"));
    assert_eq!(
        os.pretty_name.as_deref(),
        Some("Debian GNU/Linux 12 (bookworm)")
    );
}

#[test]
fn extractor_list_has_unique_stable_names_and_disjoint_claims() {
    let all = extract::all();
    let mut names: Vec<_> = all.iter().map(|e| e.name()).collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), all.len());
    for extractor in all {
        assert!(extractor.version() >= 1);
        assert!(extractor.name().starts_with("os/") || extractor.name().contains('/'));
    }
    let paths = [
        "etc/os-release",
        "usr/lib/os-release",
        "var/lib/dpkg/status",
        "var/lib/dpkg/status.d/libc6",
        "lib/apk/db/installed",
    ];
    for path in paths {
        let claimers: Vec<_> = all
            .iter()
            .filter(|e| e.claims(path))
            .map(|e| e.name())
            .collect();
        assert!(claimers.len() <= 1, "{path} claimed by {claimers:?}");
    }
    for path in [
        "",
        "etc/passwd",
        "var/lib/dpkg/status.d/x.md5sums",
        "usr/bin/ls",
    ] {
        assert!(all.iter().all(|e| !e.claims(path)), "{path}");
    }
}

#[test]
fn source_rpm_helper_splits_names() {
    assert_eq!(
        split_source_rpm("curl-7.76.0-6.cm2.src.rpm"),
        ("curl".to_string(), "7.76.0-6.cm2".to_string())
    );
}
