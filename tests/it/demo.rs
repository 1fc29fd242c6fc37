//! The bundled example images (`examples/demo/layout`): built reproducibly from the real package databases
//! in tests/testdata/demo, and checked to be exactly what is committed.

use std::collections::BTreeMap;
use std::path::Path;

use crate::common::demo_images::build_demo;
use crate::common::*;

/// Every file under `dir` with its bytes.
fn file_contents(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    files_under(dir)
        .into_iter()
        .map(|(relative, path)| (relative, std::fs::read(path).unwrap()))
        .collect()
}

#[test]
fn bundled_demo_layout_is_built_from_testdata() {
    let committed = repo_root().join("examples/demo/layout");
    if std::env::var_os("VIGIL_BLESS").is_some() {
        let _ = std::fs::remove_dir_all(&committed);
        build_demo(&committed, &|repository, tag| format!("{repository}:{tag}"));
    }
    let fresh = tempfile::tempdir().unwrap();
    build_demo(fresh.path(), &|repository, tag| {
        format!("{repository}:{tag}")
    });
    let expected = file_contents(fresh.path());
    let actual = file_contents(&committed);
    assert_eq!(
        expected.keys().collect::<Vec<_>>(),
        actual.keys().collect::<Vec<_>>(),
        "examples/demo/layout is stale: run VIGIL_BLESS=1 cargo test --test it demo::"
    );
    for (name, bytes) in &expected {
        assert!(
            actual[name] == *bytes,
            "{name} differs: run VIGIL_BLESS=1 cargo test --test it demo::"
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
            "apps/go-service:2.1 linux/amd64",
            "apps/java-legacy:0.9 linux/amd64",
            "apps/multi:2.0 linux/amd64",
            "apps/multi:2.0 windows/amd64",
            "apps/python-web:1.4 linux/amd64",
            "apps/scratch:1.0 linux/amd64",
            "distroless/base:nonroot linux/arm64",
            "library/alpine:3.18 linux/amd64",
            "library/debian:12 linux/amd64",
        ]
    );
}
