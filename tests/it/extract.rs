//! Integration tests of the extract stage: every OS package database fixture, run through the explicit
//! extractor list exactly as the layer walk would, gives exactly the packages its expected.json names.
//!
//! The fixtures live in `tests/testdata/fixtures` (see the README there); when the shared data set is
//! present the same checks also run over it, so a newly added shared fixture is caught too.

use std::collections::BTreeMap;
use std::path::Path;

use crate::common::{files_under, local_fixtures, shared_data};
use serde_json::Value;
use vigil::extract::{self, Extracted};
use vigil::model::{Package, PackageType};

const OS_FIXTURE_KINDS: [&str; 6] = [
    "dpkg",
    "dpkg-status.d",
    "apk",
    "rpm-sqlite",
    "rpm-ndb",
    "rpm-bdb",
];

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
                // os/dpkg-files and os/rpm-files report owned paths, checked in tests/it/extract_lang.rs.
                Ok(Extracted::OwnedFiles(_)) => {}
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
        // rpm fixtures give epoch (null or 0 when absent), version and release separately.
        let epoch = package.get("epoch").and_then(Value::as_u64).unwrap_or(0);
        match text("release") {
            Some(release) => {
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
            // The source shares the binary's epoch (one spec file); the file name leaves it out.
            let version = if epoch == 0 {
                version
            } else {
                format!("{epoch}:{version}")
            };
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
    rpm_sqlite_cbl_mariner_2_0 => "rpm-sqlite/go-rpmdb-cbl-mariner-2.0",
    rpm_ndb_sle15_bci => "rpm-ndb/go-rpmdb-sle15-bci",
    rpm_bdb_libuuid => "rpm-bdb/go-rpmdb-libuuid",
}

/// The same checks over the shared data set, when this machine has it.
#[test]
fn every_shared_os_fixture_matches_when_present() {
    let Some(root) = shared_data("fixtures") else {
        return;
    };
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
        "var/lib/rpm/rpmdb.sqlite",
        "var/lib/rpm/Packages.db",
        "var/lib/rpm/Packages",
        "usr/lib/sysimage/rpm/rpmdb.sqlite",
    ];
    for path in paths {
        let claimers: Vec<_> = all
            .iter()
            .filter(|e| e.claims(path))
            .map(|e| e.name())
            // os/rpm-files reads the same databases for their file lists, on purpose: the walk reads
            // a file once and hands it to every claimer.
            .filter(|name| *name != "os/rpm-files")
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

/// The extractor that claims `path`; every path used below is claimed by exactly one.
fn extractor_for(path: &str) -> &'static dyn extract::Extractor {
    *extract::all().iter().find(|e| e.claims(path)).unwrap()
}

fn read_local(fixture_file: &str) -> Vec<u8> {
    std::fs::read(local_fixtures().join(fixture_file)).unwrap()
}

/// Truncating or corrupting a real database must give packages or an error, never a panic; a cut
/// inside the data that holds the packages must be an error (nothing reported clean by omission).
#[test]
fn corrupted_real_rpm_databases_never_panic() {
    let databases = [
        (
            "var/lib/rpm/rpmdb.sqlite",
            "rpm-sqlite/go-rpmdb-cbl-mariner-2.0/var/lib/rpm/rpmdb.sqlite",
        ),
        (
            "var/lib/rpm/Packages.db",
            "rpm-ndb/go-rpmdb-sle15-bci/var/lib/rpm/Packages.db",
        ),
        (
            "var/lib/rpm/Packages",
            "rpm-bdb/go-rpmdb-libuuid/var/lib/rpm/Packages",
        ),
    ];
    for (path, file) in databases {
        let original = read_local(file);
        let extractor = extractor_for(path);
        // Cuts: the header, a few points inside, one byte short.
        let cuts = [
            0,
            10,
            100,
            original.len() / 3,
            original.len() / 2,
            original.len() - 1,
        ];
        for cut in cuts {
            let result = extractor.extract(path, &original[..cut]);
            if cut < original.len() / 2 {
                assert!(result.is_err(), "{path} cut at {cut} was accepted");
            }
        }
        // Deterministic byte corruption spread over the file (a small linear congruential sequence).
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..24 {
            let mut corrupted = original.clone();
            for _ in 0..16 {
                state = state
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                let at = (state >> 33) as usize % corrupted.len();
                corrupted[at] ^= (state >> 13) as u8 | 1;
            }
            let _ = extractor.extract(path, &corrupted);
        }
    }
}

/// An overflow page pointing back into its own chain must be refused, not followed forever.
#[test]
fn bdb_overflow_loop_in_real_database_is_an_error() {
    let path = "var/lib/rpm/Packages";
    let mut db = read_local("rpm-bdb/go-rpmdb-libuuid/var/lib/rpm/Packages");
    // The fixture is little-endian: page size at byte 20 of the metadata page.
    let page_size = u32::from_le_bytes(db[20..24].try_into().unwrap()) as usize;
    let mut looped = 0;
    for number in 1..db.len() / page_size {
        let page = &mut db[number * page_size..(number + 1) * page_size];
        let next = u32::from_le_bytes(page[16..20].try_into().unwrap());
        // Page type 7 is an overflow page; point every chained one back at itself.
        if page[25] == 7 && next != 0 {
            page[16..20].copy_from_slice(&(number as u32).to_le_bytes());
            looped += 1;
        }
    }
    assert!(looped > 0, "the fixture has no multi-page overflow chain");
    let error = extractor_for(path).extract(path, &db).unwrap_err();
    assert!(error.reason.contains("loops"), "{error}");
    assert_eq!(error.extractor, "os/rpm");
}

/// A header blob declaring more data than the database holds is an error naming the record.
#[test]
fn ndb_blob_with_huge_declared_length_is_an_error() {
    let path = "var/lib/rpm/Packages.db";
    let mut db = read_local("rpm-ndb/go-rpmdb-sle15-bci/var/lib/rpm/Packages.db");
    let blob_magic = b"BlbS";
    let at = db.windows(4).position(|w| w == blob_magic).unwrap();
    db[at + 12..at + 16].copy_from_slice(&u32::MAX.to_le_bytes());
    let error = extractor_for(path).extract(path, &db).unwrap_err();
    assert!(error.reason.contains("blob length"), "{error}");

    // The first header blob's index count, made absurd.
    let mut db = read_local("rpm-ndb/go-rpmdb-sle15-bci/var/lib/rpm/Packages.db");
    let at = db.windows(4).position(|w| w == blob_magic).unwrap();
    db[at + 16..at + 20].copy_from_slice(&0x00ff_ffffu32.to_be_bytes());
    let error = extractor_for(path).extract(path, &db).unwrap_err();
    assert!(error.reason.contains("malformed rpm header"), "{error}");
}

#[test]
fn garbage_sqlite_database_is_an_error() {
    let path = "var/lib/rpm/rpmdb.sqlite";
    let original = read_local("rpm-sqlite/go-rpmdb-cbl-mariner-2.0/var/lib/rpm/rpmdb.sqlite");
    // A valid SQLite header followed by garbage pages.
    let mut garbage = original[..100].to_vec();
    garbage.resize(original.len(), 0xa5);
    let error = extractor_for(path).extract(path, &garbage).unwrap_err();
    assert!(error.reason.contains("sqlite"), "{error}");
    // Not SQLite at all.
    let error = extractor_for(path)
        .extract(path, b"this is not a database")
        .unwrap_err();
    assert!(error.reason.contains("bad magic"), "{error}");
}

/// Latin-1 bytes in a real status file cost nothing; binary garbage is an error, never a panic.
#[test]
fn dpkg_invalid_utf8_and_garbage() {
    let path = "var/lib/dpkg/status";
    let mut status = read_local("dpkg/debian12-bookworm-real/var/lib/dpkg/status");
    let description = status
        .windows(13)
        .position(|w| w == b"Description: ")
        .unwrap();
    status[description + 13] = 0xe9;
    status[description + 14] = 0xff;
    let Extracted::Packages(packages) = extractor_for(path).extract(path, &status).unwrap() else {
        panic!("dpkg gave an OS identity");
    };
    assert_eq!(packages.len(), 735);

    let garbage: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 7) as u8)
        .collect();
    assert!(extractor_for(path).extract(path, &garbage).is_err());
    let distroless = "var/lib/dpkg/status.d/libc6";
    assert!(extractor_for(distroless)
        .extract(distroless, b"\x00\x01\x02\xff\xfe")
        .is_err());
}

#[test]
fn apk_truncated_and_garbage_databases() {
    let path = "lib/apk/db/installed";
    let installed = read_local("apk/scalibr-installed/lib/apk/db/installed");
    // A cut in the middle of the last record's name line still leaves `P:` lines intact or errors.
    for cut in [1, 3, installed.len() / 2, installed.len() - 1] {
        let _ = extractor_for(path).extract(path, &installed[..cut]);
    }
    assert!(extractor_for(path).extract(path, &installed[..1]).is_err());
    assert!(extractor_for(path)
        .extract(path, b"\xff\xfe\xfd\n\x00\x01")
        .is_err());
}

#[test]
fn os_release_too_large_is_an_error() {
    let path = "etc/os-release";
    let extractor = extractor_for(path);
    let huge = vec![b'#'; extractor.max_file_size() as usize + 1];
    assert!(extractor.extract(path, &huge).is_err());
}
