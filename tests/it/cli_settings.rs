//! The binary's edge: every command resolves its settings the same way (`--config` > `VIGIL_CONFIG` >
//! `vigil.toml` or the defaults) and ends with an exit code chosen by the kind of error.
//!
//! Self-contained (no shared test helpers) so it runs the binary with exactly the environment it sets.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Runs the `vigil` binary in `dir` with only the given `VIGIL_CONFIG` (none when `None`).
fn vigil(dir: &Path, args: &[&str], vigil_config: Option<&Path>) -> Run {
    let mut command = Command::new(env!("CARGO_BIN_EXE_vigil"));
    command
        .args(args)
        .current_dir(dir)
        .env_remove("VIGIL_CONFIG")
        .env_remove("VIGIL_LOG")
        .stdin(Stdio::null());
    if let Some(config) = vigil_config {
        command.env("VIGIL_CONFIG", config);
    }
    let output = command.output().expect("run vigil");
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

fn osv_records() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/testdata/osv/records/Debian")
}

fn write_config(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("vigil.toml");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn vigil_config_is_honoured_by_db_report_and_sql() {
    let work = tempfile::tempdir().unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    let demo = work.path().join("demo");
    let run = vigil(
        work.path(),
        &["demo", "--dir", demo.to_str().unwrap()],
        None,
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    // The demo's warehouse and DB, named only by a config file relative to its own folder.
    let config = write_config(&demo, "warehouse = \"warehouse\"\nadvisory_db = \"db\"\n");

    let status = vigil(
        elsewhere.path(),
        &["db", "status", "--format", "json"],
        Some(&config),
    );
    assert_eq!(status.code, 0, "{}", status.stderr);
    let status: serde_json::Value = serde_json::from_str(&status.stdout).unwrap();
    assert_eq!(
        Path::new(status["path"].as_str().unwrap()).parent(),
        Some(demo.join("db").as_path()),
        "db status reads the DB the VIGIL_CONFIG file names"
    );

    let sql = vigil(
        elsewhere.path(),
        &["sql", "SELECT count(*) AS n FROM images", "--format", "csv"],
        Some(&config),
    );
    assert_eq!(sql.code, 0, "{}", sql.stderr);
    assert!(!sql.stdout.contains("\n0\n"), "{}", sql.stdout);

    let report = vigil(
        elsewhere.path(),
        &["report", "recommendations", "--format", "json"],
        Some(&config),
    );
    assert_eq!(report.code, 0, "{}", report.stderr);

    // --config beats VIGIL_CONFIG; without either, these commands use the defaults under the working
    // directory (where there is no warehouse).
    let missing = elsewhere.path().join("absent.toml");
    let flag = vigil(
        elsewhere.path(),
        &[
            "sql",
            "SELECT 1",
            "--config",
            config.to_str().unwrap(),
            "--format",
            "csv",
        ],
        Some(&missing),
    );
    assert_eq!(flag.code, 0, "{}", flag.stderr);
    let bad_env = vigil(elsewhere.path(), &["sql", "SELECT 1"], Some(&missing));
    assert_eq!(bad_env.code, 2, "{}", bad_env.stderr);
    assert!(
        bad_env.stderr.contains("cannot read config"),
        "{}",
        bad_env.stderr
    );
    let defaults = vigil(elsewhere.path(), &["sql", "SELECT 1"], None);
    assert_eq!(defaults.code, 3, "{}", defaults.stderr);
    assert!(
        defaults
            .stderr
            .contains("no warehouse at ./vigil-data/warehouse"),
        "{}",
        defaults.stderr
    );
}

#[test]
fn bad_config_exits_2_for_every_command() {
    let work = tempfile::tempdir().unwrap();
    let config = write_config(work.path(), "warehouse = \"w\"\ncolour = \"blue\"\n");
    for args in [
        &["crawl"][..],
        &["sql", "SELECT 1"],
        &["report", "recommendations"],
        &["db", "status"],
        &["rules", "list"],
        &["schedules", "list"],
    ] {
        let run = vigil(work.path(), args, Some(&config));
        assert_eq!(run.code, 2, "{args:?}: {}", run.stderr);
        assert!(run.stderr.contains("colour"), "{args:?}: {}", run.stderr);
    }
    // `crawl` needs a configuration: without --config or VIGIL_CONFIG it reads ./vigil.toml.
    let run = vigil(work.path(), &["crawl"], None);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("colour"), "{}", run.stderr);
}

#[test]
fn unwritable_warehouse_exits_3() {
    let work = tempfile::tempdir().unwrap();
    let demo = work.path().join("demo");
    std::fs::create_dir_all(&demo).unwrap();
    // A regular file where the warehouse directory should be: the scan cannot commit.
    std::fs::write(demo.join("warehouse"), "not a directory").unwrap();
    let run = vigil(
        work.path(),
        &["demo", "--dir", demo.to_str().unwrap()],
        None,
    );
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(run.stderr.starts_with("error: "), "{}", run.stderr);

    let rules = vigil(
        work.path(),
        &[
            "rules",
            "add",
            "--subscription",
            "demo",
            "--finding-id",
            "CVE-2023-0001",
            "--reason",
            "test",
            "--warehouse",
            demo.join("warehouse").to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(rules.code, 3, "{}", rules.stderr);
}

#[test]
fn missing_advisory_db_exits_3() {
    let work = tempfile::tempdir().unwrap();
    let layout = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/demo/layout");
    let config = write_config(
        work.path(),
        &format!(
            "advisory_db = \"no-db-here\"\n[[subscription]]\nid = \"demo\"\n[[subscription.registry]]\nname = \"examples\"\nurl = \"oci:{}\"\n",
            layout.display()
        ),
    );
    let scan = vigil(work.path(), &["scan"], Some(&config));
    assert_eq!(scan.code, 3, "{}", scan.stderr);
    assert!(
        scan.stderr.contains("no usable advisory DB"),
        "{}",
        scan.stderr
    );

    let inventory = work.path().join("inventory.json");
    std::fs::write(
        &inventory,
        r#"{"image":"x","packages":[],"coverage":{"status":"complete"}}"#,
    )
    .unwrap();
    let matched = vigil(
        work.path(),
        &["match", "--inventory", inventory.to_str().unwrap()],
        Some(&config),
    );
    assert_eq!(matched.code, 3, "{}", matched.stderr);
    assert!(matched.stderr.contains("no-db-here"), "{}", matched.stderr);

    // Once imported (through the same VIGIL_CONFIG), both work.
    let import = vigil(
        work.path(),
        &["db", "import", osv_records().to_str().unwrap()],
        Some(&config),
    );
    assert_eq!(import.code, 0, "{}", import.stderr);
    assert!(work.path().join("no-db-here").is_dir());
}

#[test]
fn a_bad_datafusion_setting_exits_2_naming_the_variable() {
    let work = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(work.path().join("warehouse")).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_vigil"))
        .args(["sql", "SELECT 1", "--warehouse", "warehouse"])
        .current_dir(work.path())
        .env_remove("VIGIL_CONFIG")
        .env("DATAFUSION_EXECUTION_TARGET_PARTITIONS", "notanumber")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("DATAFUSION_EXECUTION_TARGET_PARTITIONS"),
        "{stderr}"
    );
}

/// Regression: errors that write their cause into their own message were printed with the cause again
/// (`cannot read config F: No such file or directory (os error 2): No such file or directory (os error 2)`).
#[test]
fn an_error_names_its_cause_once() {
    let work = tempfile::tempdir().unwrap();
    let missing = work.path().join("absent.toml");
    let run = vigil(
        work.path(),
        &["scan", "--config", missing.to_str().unwrap()],
        None,
    );
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("cannot read config"), "{}", run.stderr);
    assert_eq!(
        run.stderr.matches("No such file or directory").count(),
        1,
        "{}",
        run.stderr
    );
}
