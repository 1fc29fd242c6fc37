//! Integration tests of the language and binary extractors: every language fixture (package-lock,
//! Cargo.lock, Go binary, Python metadata, cargo-auditable binary), run through the explicit extractor
//! list as the layer walk would, gives exactly the packages its expected.json names; archives, gemspecs
//! and deps.json files built here are checked by hand; bad input gives errors, never panics; and layers
//! walked and merged show OS-owned files dropped and scratch images never reported clean.

use std::io::{Cursor, Read, Write};
use std::path::Path;

use crate::common::{files_under, local_fixtures, shared_data};
use serde_json::Value;
use vigil::extract::{self, Extracted, Extractor};
use vigil::layer::{merge, walk, LayerInventory, Limits};
use vigil::model::{CoverageStatus, Digest, Package, PackageType};

/// The fixture kinds this file owns; `every_fixture_directory_has_a_test` keeps the lists honest.
const LANG_FIXTURE_KINDS: [&str; 5] = [
    "package-lock",
    "cargo-lock",
    "go-binary",
    "python-metadata",
    "cargo-auditable",
];
const TAR: &str = "application/vnd.oci.image.layer.v1.tar";

/// Where a fixture file would sit in an image, and its mode. Fixtures keep files under their real
/// names; this places them where the extractors expect installed files.
fn image_path(kind: &str, relative: &str) -> Option<(String, u32)> {
    if relative == "expected.json" || relative.ends_with(".c") || relative == "deps.json" {
        return None;
    }
    let placed = match (kind, relative) {
        ("package-lock", _) => (format!("srv/app/{relative}"), 0o644),
        ("cargo-lock", _) => (format!("src/app/{relative}"), 0o644),
        ("go-binary" | "cargo-auditable", _) => (format!("app/{relative}"), 0o755),
        ("python-metadata", "METADATA") => (
            format!("usr/lib/python3/dist-packages/fixture.dist-info/{relative}"),
            0o644,
        ),
        ("python-metadata", "PKG-INFO") => (
            format!("usr/lib/python3/dist-packages/fixture.egg-info/{relative}"),
            0o644,
        ),
        ("python-metadata", _) => (format!("usr/local/lib/python3.11/{relative}"), 0o644),
        _ => (relative.to_string(), 0o644),
    };
    Some(placed)
}

/// Runs every extractor that claims a fixture file, as the walk does: by path, mode and size, and
/// through the streaming entry point for extractors that stream (fed a few bytes per read, so chunk
/// boundaries are exercised).
fn extract_fixture(kind: &str, dir: &Path) -> Vec<Package> {
    let mut packages = Vec::new();
    for (relative, file) in files_under(dir) {
        let Some((path, mode)) = image_path(kind, &relative) else {
            continue;
        };
        let contents = std::fs::read(&file).unwrap();
        let size = contents.len() as u64;
        for extractor in extract::all() {
            if !extractor.claims_entry(&path, mode, size) {
                continue;
            }
            assert!(size <= extractor.max_file_size());
            let result = if extractor.streams() {
                let streamed = extractor.extract_reader(&path, size, &mut Trickle(&contents[..]));
                assert_eq!(streamed, extractor.extract(&path, &contents), "{path}");
                streamed
            } else {
                extractor.extract(&path, &contents)
            };
            match result {
                Ok(Extracted::Packages(found)) => {
                    for package in &found {
                        assert_eq!(package.extractor, extractor.name());
                        assert_eq!(package.location, path);
                        assert_eq!(package.package_type, PackageType::Language, "{package:?}");
                        assert!(!package.ecosystem.is_empty(), "{package:?}");
                        assert!(package.layer_digest.is_none());
                    }
                    packages.extend(found);
                }
                Ok(other) => panic!("{path}: {other:?}"),
                Err(error) => panic!("{}: {error}", dir.display()),
            }
        }
    }
    packages
}

/// A reader that hands out at most 7 bytes per call.
struct Trickle<'a>(&'a [u8]);

impl Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let step = buf.len().min(7).min(self.0.len());
        buf[..step].copy_from_slice(&self.0[..step]);
        self.0 = &self.0[step..];
        Ok(step)
    }
}

/// PEP 503 normalisation, written again here so the test does not trust the code under test.
fn pep503(name: &str) -> String {
    let mut out = String::new();
    let mut separator = false;
    for ch in name.chars() {
        if "-_.".contains(ch) {
            separator = true;
        } else {
            if separator && !out.is_empty() {
                out.push('-');
            }
            separator = false;
            out.push(ch.to_ascii_lowercase());
        }
    }
    out
}

type Row = (String, String, String);

/// The expected (name, version, ecosystem) rows. Two documented mappings from the fixtures' peer
/// spelling to OSV's: Python names are PEP 503-normalised (the fixture's oracle says names must be
/// before matching), and Go's toolchain, listed as `go`, is OSV's module `stdlib`.
fn expected_rows(kind: &str, expected: &Value) -> Vec<Row> {
    let ecosystem = expected["ecosystem"].as_str().unwrap().to_string();
    expected["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|package| {
            let mut name = package["name"].as_str().unwrap().to_string();
            let version = package["version"].as_str().unwrap().to_string();
            if kind == "python-metadata" {
                name = pep503(&name);
            }
            if kind == "go-binary" && name == "go" {
                name = "stdlib".to_string();
            }
            (name, version, ecosystem.clone())
        })
        .collect()
}

/// Asserts the fixture yields exactly its expected packages, listing every difference at once.
fn check_fixture(kind: &str, dir: &Path) {
    let expected: Value =
        serde_json::from_slice(&std::fs::read(dir.join("expected.json")).unwrap()).unwrap();
    let mut want = expected_rows(kind, &expected);
    let mut got: Vec<Row> = extract_fixture(kind, dir)
        .into_iter()
        .map(|p| (p.name, p.version, p.ecosystem))
        .collect();
    want.sort();
    got.sort();
    let mut missing = want.clone();
    let mut unexpected = Vec::new();
    for row in got {
        match missing.iter().position(|w| *w == row) {
            Some(index) => {
                missing.remove(index);
            }
            None => unexpected.push(row),
        }
    }
    assert!(
        missing.is_empty() && unexpected.is_empty(),
        "{}:\n  missing: {missing:?}\n  unexpected: {unexpected:?}",
        dir.display()
    );
}

/// Checks the local copy, and the shared data set's when it is present.
fn check(kind: &str, name: &str) {
    let local = local_fixtures().join(kind).join(name);
    assert!(local.is_dir(), "{} is missing", local.display());
    check_fixture(kind, &local);
    if let Some(shared) = shared_data("fixtures") {
        let shared = shared.join(kind).join(name);
        if shared.is_dir() {
            check_fixture(kind, &shared);
        }
    }
}

macro_rules! fixture_tests {
    ($($test:ident => ($kind:literal, $name:literal),)*) => {
        $(
            #[test]
            fn $test() {
                check($kind, $name);
            }
        )*
        const TESTED: &[(&str, &str)] = &[$(($kind, $name)),*];
    };
}

fixture_tests! {
    package_lock_alias_v2 => ("package-lock", "scalibr-alias.v2"),
    package_lock_bundled_v3 => ("package-lock", "scalibr-bundled-dependencies.v3"),
    package_lock_commits_v2 => ("package-lock", "scalibr-commits.v2"),
    package_lock_nested_dup_v1 => ("package-lock", "scalibr-nested-dependencies-dup.v1"),
    package_lock_nested_dup_v2 => ("package-lock", "scalibr-nested-dependencies-dup.v2"),
    package_lock_optional_v2 => ("package-lock", "scalibr-optional-package.v2"),
    package_lock_groups_v2 => ("package-lock", "scalibr-same-package-different-groups.v2"),
    package_lock_scoped_v2 => ("package-lock", "scalibr-scoped-packages.v2"),
    cargo_lock_deprecated_image => ("cargo-lock", "osv-scanner-image-with-deprecated"),
    cargo_lock_ripgrep => ("cargo-lock", "ripgrep-real"),
    cargo_lock_duplicate => ("cargo-lock", "scalibr-duplicate"),
    cargo_lock_many => ("cargo-lock", "scalibr-many-packages"),
    cargo_lock_build_string => ("cargo-lock", "scalibr-package-with-build-string"),
    cargo_lock_local => ("cargo-lock", "scalibr-two-packages-with-local"),
    go_binary_module_replacement => ("go-binary", "scalibr-module-replacement-linux-amd64"),
    python_real_site_packages => ("python-metadata", "real-site-packages"),
    python_distinfo => ("python-metadata", "scalibr-distinfo_meta"),
    python_egginfo => ("python-metadata", "scalibr-egginfo_pkginfo"),
    cargo_auditable_hello => ("cargo-auditable", "gcc-objcopy-hello"),
}

#[test]
fn every_fixture_directory_has_a_test() {
    let mut roots = vec![local_fixtures()];
    roots.extend(shared_data("fixtures"));
    for root in roots {
        for kind in LANG_FIXTURE_KINDS {
            let Ok(entries) = std::fs::read_dir(root.join(kind)) else {
                assert!(root != local_fixtures(), "local fixtures of {kind} missing");
                continue;
            };
            for entry in entries {
                let name = entry.unwrap().file_name().to_string_lossy().into_owned();
                assert!(
                    TESTED.contains(&(kind, name.as_str())),
                    "{}/{kind}/{name} has no test in tests/it/extract_lang.rs",
                    root.display()
                );
            }
        }
    }
}

fn fixture_bytes(relative: &str) -> Vec<u8> {
    std::fs::read(local_fixtures().join(relative)).unwrap()
}

fn extractor(name: &str) -> &'static dyn Extractor {
    *extract::all().iter().find(|e| e.name() == name).unwrap()
}

fn packages_of(result: Extracted) -> Vec<(String, String)> {
    match result {
        Extracted::Packages(packages) => {
            packages.into_iter().map(|p| (p.name, p.version)).collect()
        }
        other => panic!("{other:?}"),
    }
}

fn zip_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut writer = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for (name, data) in entries {
        writer.start_file(*name, options).unwrap();
        writer.write_all(data).unwrap();
    }
    writer.finish().unwrap().into_inner()
}

#[test]
fn jar_with_pom_properties_and_nested_jars() {
    let inner = zip_of(&[
        (
            "META-INF/maven/com.fasterxml.jackson.core/jackson-databind/pom.properties",
            b"#Generated by Maven\r\nartifactId=jackson-databind\r\ngroupId=com.fasterxml.jackson.core\r\nversion=2.13.4.2\r\n",
        ),
        ("com/fasterxml/jackson/databind/ObjectMapper.class", b"\xca\xfe\xba\xbe"),
    ]);
    // A manifest-only jar (no Maven metadata), as many OSGi bundles ship.
    let bundle = zip_of(&[(
        "META-INF/MANIFEST.MF",
        b"Manifest-Version: 1.0\r\nBundle-SymbolicName: org.apache.commons.commons-text\r\nBundle-Version: 1.9\r\n",
    )]);
    let outer = zip_of(&[
        (
            "META-INF/MANIFEST.MF",
            b"Manifest-Version: 1.0\r\nMain-Class: demo.App\r\n",
        ),
        (
            "META-INF/maven/org.example/demo/pom.properties",
            b"groupId=org.example\nartifactId=demo\nversion=1.0.0\n",
        ),
        ("BOOT-INF/lib/jackson-databind-2.13.4.2.jar", &inner),
        ("BOOT-INF/lib/commons-text-1.9.jar", &bundle),
    ]);
    let java = extractor("lang/java");
    assert!(java.claims("app/demo.jar"));
    let mut got = packages_of(java.extract("app/demo.jar", &outer).unwrap());
    got.sort();
    let want = [
        ("com.fasterxml.jackson.core:jackson-databind", "2.13.4.2"),
        ("org.apache.commons:commons-text", "1.9"),
        ("org.example:demo", "1.0.0"),
    ];
    assert_eq!(
        got,
        want.map(|(n, v)| (n.to_string(), v.to_string())).to_vec()
    );
}

#[test]
fn jar_nesting_and_bombs_are_bounded() {
    let java = extractor("lang/java");
    // Archives nested deeper than the bound give an error naming the limit.
    let mut nested = zip_of(&[(
        "META-INF/maven/g/a/pom.properties",
        b"groupId=g\nartifactId=a\nversion=1\n",
    )]);
    for level in 0..6 {
        nested = zip_of(&[(&format!("lib/level{level}.jar"), &nested)]);
    }
    let error = java.extract("deep.jar", &nested).unwrap_err();
    assert!(error.reason.contains("nested more than"), "{error}");
    // A pom.properties that inflates far past its limit (a zip bomb) is refused, not inflated.
    let bomb = zip_of(&[(
        "META-INF/maven/g/a/pom.properties",
        &vec![b'a'; 8 * 1024 * 1024],
    )]);
    assert!(bomb.len() < 64 * 1024);
    let error = java.extract("bomb.jar", &bomb).unwrap_err();
    assert!(error.reason.contains("limit"), "{error}");
    // Garbage, truncation and an empty file.
    let good = zip_of(&[("a.txt", b"x")]);
    for bad in [&b""[..], b"PK\x05\x06", &good[..good.len() / 2]] {
        assert!(java.extract("bad.jar", bad).is_err());
    }
}

#[test]
fn gemspec_as_rubygems_writes_it() {
    let gemspec = br#"# -*- encoding: utf-8 -*-
# stub: rack 2.2.4 ruby lib

Gem::Specification.new do |s|
  s.name = "rack".freeze
  s.version = "2.2.4"

  s.required_rubygems_version = Gem::Requirement.new(">= 0".freeze) if s.respond_to? :required_rubygems_version=
  s.require_paths = ["lib".freeze]
  s.authors = ["Leah Neukirchen".freeze]
  s.summary = "A modular Ruby webserver interface".freeze
end
"#;
    let ruby = extractor("lang/ruby");
    let path = "usr/local/bundle/specifications/rack-2.2.4.gemspec";
    assert!(ruby.claims(path));
    let result = ruby.extract(path, gemspec).unwrap();
    assert_eq!(
        packages_of(result.clone()),
        [("rack".to_string(), "2.2.4".to_string())]
    );
    let Extracted::Packages(packages) = result else {
        unreachable!()
    };
    assert_eq!(packages[0].ecosystem, "RubyGems");
    assert!(ruby
        .extract(path, b"Gem::Specification.new do |s|\nend\n")
        .is_err());
    assert!(ruby.extract(path, b"\xc3\x28").is_err());
}

#[test]
fn deps_json_as_dotnet_publish_writes_it() {
    let deps = br#"{
  "runtimeTarget": {"name": ".NETCoreApp,Version=v6.0", "signature": ""},
  "compilationOptions": {},
  "targets": {".NETCoreApp,Version=v6.0": {"MyApp/1.0.0": {"dependencies": {"Newtonsoft.Json": "13.0.1"}}}},
  "libraries": {
    "MyApp/1.0.0": {"type": "project", "serviceable": false, "sha512": ""},
    "Newtonsoft.Json/13.0.1": {"type": "package", "serviceable": true, "sha512": "sha512-x", "path": "newtonsoft.json/13.0.1", "hashPath": "newtonsoft.json.13.0.1.nupkg.sha512"},
    "System.Text.Encodings.Web/4.7.1": {"type": "package", "serviceable": true, "sha512": "sha512-y"}
  }
}"#;
    let dotnet = extractor("lang/dotnet");
    let path = "app/MyApp.deps.json";
    assert!(dotnet.claims(path));
    let mut got = packages_of(dotnet.extract(path, deps).unwrap());
    got.sort();
    assert_eq!(
        got,
        [
            ("Newtonsoft.Json".to_string(), "13.0.1".to_string()),
            ("System.Text.Encodings.Web".to_string(), "4.7.1".to_string())
        ]
    );
    assert!(dotnet.extract(path, b"{\"libraries\": 5}").is_err());
    assert!(dotnet.extract(path, b"\xff").is_err());
}

#[test]
fn bad_input_per_extractor_is_an_error_not_a_panic() {
    let deep_json = "[".repeat(200_000);
    let cases: [(&str, &str, &[u8]); 9] = [
        (
            "lang/npm",
            "app/package-lock.json",
            b"{\"packages\": {\"node_modules/a\": [1]}}",
        ),
        ("lang/npm", "app/package-lock.json", deep_json.as_bytes()),
        ("lang/npm", "app/node_modules/a/package.json", b"\xff\xfe{"),
        (
            "lang/python",
            "usr/lib/python3/dist-packages/a.dist-info/METADATA",
            b"no header here",
        ),
        (
            "lang/cargo",
            "app/Cargo.lock",
            b"[[package]]\nname = \"a\"\n",
        ),
        ("lang/cargo", "app/Cargo.lock", b"\xff\xfe"),
        ("lang/dotnet", "app/a.deps.json", deep_json.as_bytes()),
        ("lang/ruby", "x/specifications/a.gemspec", b"s.name = 'a'\n"),
        ("lang/java", "app/a.jar", b"not a zip"),
    ];
    for (name, path, data) in cases {
        let extractor = extractor(name);
        assert!(extractor.claims(path), "{name} {path}");
        let error = extractor.extract(path, data).unwrap_err();
        assert_eq!(error.extractor, name);
        assert_eq!(error.path, path);
        assert!(!error.reason.is_empty());
    }
}

#[test]
fn binaries_with_damaged_build_info_are_errors_and_others_are_empty() {
    let go = extractor("binary/go");
    let cargo = extractor("lang/cargo");
    let binary = fixture_bytes("go-binary/scalibr-module-replacement-linux-amd64/binary_with_module_replacement-linux-amd64");
    let magic = b"\xff Go buildinf:";
    let at = binary
        .windows(magic.len())
        .position(|w| w == magic)
        .unwrap();
    assert_eq!(at % 16, 0);
    // Build info whose module-info length runs past the end of the file.
    let mut truncated = binary[..at + 32 + 1 + 8].to_vec();
    truncated[at + 32] = 8;
    truncated.extend_from_slice(&[0xff, 0xff, 0x03]);
    assert!(go.extract("app/x", &truncated).is_err());
    // A C program without build info is nothing, not an error, for both binary readers.
    let plain = fixture_bytes("cargo-auditable/gcc-objcopy-hello/hello-auditable");
    assert_eq!(
        go.extract("app/x", &plain).unwrap(),
        Extracted::Packages(vec![])
    );
    assert!(packages_of(cargo.extract("app/x", &binary).unwrap()).is_empty());
    // A .dep-v0 section that is not zlib is an error.
    let mut broken = plain.clone();
    let payload = fixture_bytes("cargo-auditable/gcc-objcopy-hello/deps.json");
    let compressed_start = broken
        .windows(2)
        .rposition(|w| w == [0x78, 0xda])
        .expect("zlib header of the section");
    broken[compressed_start + 2..compressed_start + 12].copy_from_slice(&payload[..10]);
    assert!(cargo.extract("app/x", &broken).is_err());
    // Truncating an ELF file anywhere never panics.
    for cut in (0..plain.len()).step_by(97) {
        let _ = cargo.extract("app/x", &plain[..cut]);
        let _ = go.extract("app/x", &binary[..cut.min(binary.len())]);
    }
}

// ---- layers walked and merged ----

struct Entry<'a> {
    path: &'a str,
    mode: u32,
    data: &'a [u8],
}

fn layer(entries: &[Entry<'_>]) -> LayerInventory {
    let mut builder = tar::Builder::new(Vec::new());
    for entry in entries {
        let mut header = tar::Header::new_gnu();
        header.set_mode(entry.mode);
        header.set_mtime(1_700_000_000);
        header.set_entry_type(tar::EntryType::Regular);
        header.set_size(entry.data.len() as u64);
        builder
            .append_data(&mut header, entry.path, entry.data)
            .unwrap();
    }
    let blob = builder.into_inner().unwrap();
    walk(
        &blob[..],
        TAR,
        &Digest::sha256_of(&blob),
        extract::all(),
        &Limits::default(),
    )
    .unwrap()
}

fn file<'a>(path: &'a str, data: &'a [u8]) -> Entry<'a> {
    Entry {
        path,
        mode: 0o644,
        data,
    }
}

#[test]
fn distroless_status_d_with_several_packages_and_md5sums() {
    let foo = fixture_bytes("dpkg-status.d/scalibr-foo/var/lib/dpkg/status.d/foo");
    let foo_sums = fixture_bytes("dpkg-status.d/scalibr-foo/var/lib/dpkg/status.d/foo.md5sums");
    let sqlite = fixture_bytes("dpkg-status.d/syft-distroless/var/lib/dpkg/status.d/libsqlite3-0");
    let sqlite_sums =
        fixture_bytes("dpkg-status.d/syft-distroless/var/lib/dpkg/status.d/libsqlite3-0.md5sums");
    let base_files = b"Package: base-files\nVersion: 11.1+deb11u8\nArchitecture: arm64\nMaintainer: Santiago Vila <sanvila@debian.org>\n";
    let os_release = b"PRETTY_NAME=\"Distroless\"\nNAME=\"Debian GNU/Linux\"\nID=\"debian\"\nVERSION_ID=\"11\"\n";
    let inventory = merge(
        &[layer(&[
            file("etc/os-release", os_release),
            file("var/lib/dpkg/status.d/base", base_files),
            file("var/lib/dpkg/status.d/foo", &foo),
            file("var/lib/dpkg/status.d/foo.md5sums", &foo_sums),
            file("var/lib/dpkg/status.d/libsqlite3-0", &sqlite),
            file("var/lib/dpkg/status.d/libsqlite3-0.md5sums", &sqlite_sums),
        ])],
        None,
    );
    let got: Vec<_> = inventory
        .packages
        .iter()
        .map(|p| (p.name.as_str(), p.version.as_str(), p.ecosystem.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            ("base-files", "11.1+deb11u8", "Debian:11"),
            ("foo", "1.2.3", "Debian:11"),
            ("libsqlite3-0", "3.34.1-3", "Debian:11"),
        ]
    );
    assert_eq!(
        inventory.coverage.status,
        CoverageStatus::Complete,
        "{:?}",
        inventory.coverage
    );
}

#[test]
fn language_packages_installed_by_dpkg_are_reported_once_as_os_packages() {
    let status = b"Package: python3-urllib3\nStatus: install ok installed\nVersion: 1.26.12-1\nArchitecture: all\n";
    let metadata = b"Metadata-Version: 2.1\nName: urllib3\nVersion: 1.26.12\n";
    let list = b"/.\n/usr\n/usr/lib/python3/dist-packages\n/usr/lib/python3/dist-packages/urllib3-1.26.12.egg-info\n/usr/lib/python3/dist-packages/urllib3-1.26.12.egg-info/PKG-INFO\n";
    let pip_metadata = fixture_bytes("python-metadata/scalibr-distinfo_meta/METADATA");
    let os_release = b"ID=debian\nVERSION_ID=\"12\"\n";
    let inventory = merge(
        &[
            layer(&[
                file("etc/os-release", os_release),
                file("var/lib/dpkg/status", status),
                file("var/lib/dpkg/info/python3-urllib3.list", list),
                file(
                    "usr/lib/python3/dist-packages/urllib3-1.26.12.egg-info/PKG-INFO",
                    metadata,
                ),
            ]),
            // pip-installed on top: not owned by dpkg, so it stays a PyPI package.
            layer(&[file(
                "usr/local/lib/python3.11/site-packages/pip-22.2.2.dist-info/METADATA",
                &pip_metadata,
            )]),
        ],
        None,
    );
    let mut got: Vec<_> = inventory
        .packages
        .iter()
        .map(|p| (p.name.as_str(), p.ecosystem.as_str(), p.package_type))
        .collect();
    got.sort();
    assert_eq!(
        got,
        [
            ("pip", "PyPI", PackageType::Language),
            ("python3-urllib3", "Debian:12", PackageType::Os),
        ]
    );
    assert_eq!(inventory.coverage.status, CoverageStatus::Complete);
}

#[test]
fn scratch_images_are_never_reported_clean_by_mistake() {
    // Only a static binary without build info: nothing found, and said so.
    let plain = fixture_bytes("cargo-auditable/gcc-objcopy-hello/hello-auditable");
    let text_only = merge(&[layer(&[file("etc/motd", b"hello\n")])], None);
    assert_eq!(text_only.coverage.status, CoverageStatus::NoPackagesFound);
    assert!(!text_only.coverage.reason.is_empty());
    // Language packages without os-release are still assessed: each carries its own ecosystem.
    let lock = fixture_bytes("cargo-lock/scalibr-duplicate/Cargo.lock");
    let with_lock = merge(
        &[layer(&[
            file("app/Cargo.lock", &lock),
            Entry {
                path: "app/hello",
                mode: 0o644,
                data: &plain,
            },
        ])],
        None,
    );
    assert_eq!(with_lock.coverage.status, CoverageStatus::Complete);
    assert_eq!(with_lock.packages.len(), 2);
    assert!(with_lock
        .packages
        .iter()
        .all(|p| p.ecosystem == "crates.io"));
}

#[test]
fn extracted_owned_files_round_trip_through_json() {
    let owned = Extracted::OwnedFiles(vec![extract::OwnedFiles {
        owner: "python3-urllib3".into(),
        paths: vec!["usr/lib/python3/dist-packages/urllib3".into()],
    }]);
    let text = serde_json::to_string(&owned).unwrap();
    assert_eq!(serde_json::from_str::<Extracted>(&text).unwrap(), owned);
}

#[test]
fn rpm_file_lists_are_read_from_the_real_databases() {
    let files = extractor("os/rpm-files");
    for (relative, path) in [
        (
            "rpm-bdb/go-rpmdb-libuuid/var/lib/rpm/Packages",
            "var/lib/rpm/Packages",
        ),
        (
            "rpm-sqlite/go-rpmdb-cbl-mariner-2.0/var/lib/rpm/rpmdb.sqlite",
            "var/lib/rpm/rpmdb.sqlite",
        ),
    ] {
        let Ok(Extracted::OwnedFiles(lists)) = files.extract(path, &fixture_bytes(relative)) else {
            panic!("{relative}: no file lists");
        };
        assert!(!lists.is_empty(), "{relative}");
        let owns = |owner: &str, path: &str| {
            lists
                .iter()
                .any(|l| l.owner == owner && l.paths.iter().any(|p| p == path))
        };
        assert!(
            owns("libuuid", "usr/lib64/libuuid.so.1") || owns("mariner-release", "etc/issue"),
            "{relative}"
        );
        for list in &lists {
            assert!(
                list.paths
                    .iter()
                    .all(|p| !p.starts_with('/') && !p.is_empty()),
                "{}",
                list.owner
            );
        }
    }
    assert!(files.extract("var/lib/rpm/Packages", b"garbage").is_err());
}

const GO_BINARY: &str =
    "go-binary/scalibr-module-replacement-linux-amd64/binary_with_module_replacement-linux-amd64";

#[test]
fn scratch_image_with_a_go_binary_is_assessed_through_the_walk() {
    let binary = fixture_bytes(GO_BINARY);
    let inventory = merge(
        &[layer(&[Entry {
            path: "ko-app/server",
            mode: 0o755,
            data: &binary,
        }])],
        None,
    );
    let mut got: Vec<_> = inventory
        .packages
        .iter()
        .map(|p| (p.name.as_str(), p.version.as_str(), p.ecosystem.as_str()))
        .collect();
    got.sort();
    assert_eq!(
        got,
        [
            ("binary_with_module_replacement", "(devel)", "Go"),
            (
                "github.com/golang/xerrors",
                "0.0.0-20220907171357-04be3eba64a2",
                "Go"
            ),
            ("stdlib", "1.22.0", "Go"),
        ]
    );
    assert_eq!(inventory.coverage.status, CoverageStatus::Complete);
    // The same bytes without an executable bit are not claimed: nothing found, and said so.
    let not_executable = merge(&[layer(&[file("ko-app/server", &binary)])], None);
    assert_eq!(
        not_executable.coverage.status,
        CoverageStatus::NoPackagesFound
    );
}

fn tar_of(path: &str, mode: u32, data: &[u8]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_mode(mode);
    header.set_entry_type(tar::EntryType::Regular);
    header.set_size(data.len() as u64);
    builder.append_data(&mut header, path, data).unwrap();
    builder.into_inner().unwrap()
}

#[test]
fn a_binary_claimed_by_one_streaming_extractor_is_streamed_and_truncation_fails_the_layer() {
    let go: &[&'static dyn Extractor] = &[extractor("binary/go")];
    let blob = tar_of("app/server", 0o755, &fixture_bytes(GO_BINARY));
    let inventory = walk(
        &blob[..],
        TAR,
        &Digest::sha256_of(&blob),
        go,
        &Limits::default(),
    )
    .unwrap();
    assert_eq!(inventory.files.len(), 1);
    let Ok(Extracted::Packages(packages)) = &inventory.files[0].result else {
        panic!("{:?}", inventory.files[0].result);
    };
    assert_eq!(packages.len(), 3);
    // A layer cut off inside the binary is the layer's failure, not an empty binary.
    let cut = &blob[..blob.len() / 2];
    assert!(walk(cut, TAR, &Digest::sha256_of(cut), go, &Limits::default()).is_err());
}
