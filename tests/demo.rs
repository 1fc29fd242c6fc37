//! The bundled example images (`examples/demo/layout`): built reproducibly from the real package databases
//! in tests/testdata/demo, and checked to be exactly what is committed.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::*;

const DEBIAN_STATUS: &[u8] = include_bytes!("testdata/demo/debian12-dpkg-status");
const DEBIAN_OS_RELEASE: &[u8] = include_bytes!("testdata/demo/debian12-os-release");
const ALPINE_INSTALLED: &[u8] = include_bytes!("testdata/demo/alpine318-apk-installed");
const DISTROLESS_SQLITE: &[u8] = include_bytes!("testdata/demo/distroless-status.d-libsqlite3-0");

const ALPINE_OS_RELEASE: &[u8] = b"NAME=\"Alpine Linux\"\nID=alpine\nVERSION_ID=3.18.0\nPRETTY_NAME=\"Alpine Linux v3.18\"\nHOME_URL=\"https://alpinelinux.org/\"\nBUG_REPORT_URL=\"https://gitlab.alpinelinux.org/alpine/aports/-/issues\"\n";
const DISTROLESS_OS_RELEASE: &[u8] = b"PRETTY_NAME=\"Distroless\"\nNAME=\"Debian GNU/Linux\"\nID=\"debian\"\nVERSION_ID=\"11\"\nVERSION=\"Debian GNU/Linux 11 (bullseye)\"\nHOME_URL=\"https://github.com/GoogleContainerTools/distroless\"\n";

/// Writes the demo layout into `dir`.
fn build_demo(dir: &Path) {
    let mut layout = LayoutBuilder::new(dir);
    let debian = layout.image(
        &[
            ("etc/os-release", DEBIAN_OS_RELEASE),
            ("var/lib/dpkg/status", DEBIAN_STATUS),
        ],
        "linux",
        "amd64",
    );
    layout.tag(&debian, "library/debian:12");
    let alpine = layout.image(
        &[
            ("etc/os-release", ALPINE_OS_RELEASE),
            ("lib/apk/db/installed", ALPINE_INSTALLED),
        ],
        "linux",
        "amd64",
    );
    layout.tag(&alpine, "library/alpine:3.18");
    let distroless = layout.image(
        &[
            ("etc/os-release", DISTROLESS_OS_RELEASE),
            ("var/lib/dpkg/status.d/libsqlite3-0", DISTROLESS_SQLITE),
        ],
        "linux",
        "arm64",
    );
    layout.tag(&distroless, "distroless/base:nonroot");
    let scratch = layout.image(
        &[("app/hello.txt", b"hello from scratch\n")],
        "linux",
        "amd64",
    );
    layout.tag(&scratch, "apps/scratch:1.0");
    let windows = layout.image(
        &[("Files/Windows/win.ini", b"[fonts]\r\n")],
        "windows",
        "amd64",
    );
    let multi = layout.index(&[
        (debian, "linux", "amd64", None),
        (windows, "windows", "amd64", None),
    ]);
    layout.tag(&multi, "apps/multi:2.0");
}

fn files_under(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut files = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(current) = stack.pop() {
        for entry in std::fs::read_dir(&current).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let relative = path.strip_prefix(dir).unwrap().display().to_string();
                files.insert(relative, std::fs::read(&path).unwrap());
            }
        }
    }
    files
}

#[test]
fn bundled_demo_layout_is_built_from_testdata() {
    let committed = repo_root().join("examples/demo/layout");
    if std::env::var_os("VIGIL_BLESS").is_some() {
        let _ = std::fs::remove_dir_all(&committed);
        build_demo(&committed);
    }
    let fresh = tempfile::tempdir().unwrap();
    build_demo(fresh.path());
    let expected = files_under(fresh.path());
    let actual = files_under(&committed);
    assert_eq!(
        expected.keys().collect::<Vec<_>>(),
        actual.keys().collect::<Vec<_>>(),
        "examples/demo/layout is stale: run VIGIL_BLESS=1 cargo test --test demo"
    );
    for (name, bytes) in &expected {
        assert!(
            actual[name] == *bytes,
            "{name} differs: run VIGIL_BLESS=1 cargo test --test demo"
        );
    }
}

#[test]
fn demo_config_crawls_the_bundled_layout() {
    let run = vigil(
        &[
            "crawl",
            "--config",
            repo_root()
                .join("examples/demo/vigil.toml")
                .to_str()
                .unwrap(),
            "--format",
            "json",
        ],
        &[],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let lines: Vec<serde_json::Value> = run
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let names: Vec<String> = lines
        .iter()
        .map(|l| {
            format!(
                "{}:{} {}",
                l["repository"].as_str().unwrap(),
                l["tag"].as_str().unwrap(),
                l["platform"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        names,
        [
            "apps/multi:2.0 linux/amd64",
            "apps/multi:2.0 windows/amd64",
            "apps/scratch:1.0 linux/amd64",
            "distroless/base:nonroot linux/arm64",
            "library/alpine:3.18 linux/amd64",
            "library/debian:12 linux/amd64",
        ]
    );
}
