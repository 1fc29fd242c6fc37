//! The integration tests, as one test binary with a module per area (as ripgrep does): the modules share
//! one link of Vigil and DataFusion instead of seventeen binaries each linking them. Run one area with
//! `cargo test --test it crawl::`. Cargo.toml sets `autotests = false`, so a new file here must be listed
//! below; `every_test_file_is_a_module` fails when one is not.

mod common;

mod cli_db;
mod cli_settings;
mod crawl;
mod demo;
mod events;
mod extract;
mod extract_lang;
mod inventory;
mod lang_images;
mod layer;
mod matcher;
mod report;
mod scan;
mod schedule_run;
mod schedules;
mod shards;
mod versions;
mod vulndb;
mod warehouse;

/// With `autotests = false` Cargo builds no test from a file it is not told about: a file in tests/it not
/// declared above, or a new tests/*.rs, would never run. Both must fail here instead.
#[test]
fn every_test_file_is_a_module() {
    let tests = common::repo_root().join("tests");
    let main = std::fs::read_to_string(tests.join("it/main.rs")).unwrap();
    for entry in std::fs::read_dir(tests.join("it")).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        let Some(module) = name.strip_suffix(".rs") else {
            continue;
        };
        if module != "main" {
            assert!(
                main.contains(&format!("\nmod {module};\n")),
                "tests/it/{name} is not declared in tests/it/main.rs, so it never runs"
            );
        }
    }
    let stray: Vec<String> = std::fs::read_dir(&tests)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".rs"))
        .collect();
    assert!(
        stray.is_empty(),
        "{stray:?} in tests/ would never run: move them into tests/it and declare them in main.rs"
    );
}
