//! The warehouse as other tools see it, and as a killed run leaves it: pyarrow and DuckDB read what Vigil
//! wrote and count the same rows; a run killed anywhere in its commit leaves nothing half-visible.

use std::path::Path;
use std::time::Duration;

use crate::common::stores::{block_on, TestWarehouse};
use crate::common::{self, vigil};
use serde_json::Value;
use vigil::warehouse::{LeaseTiming, RunLock};

fn count(warehouse: &Path, query: &str) -> u64 {
    let run = vigil(
        &[
            "sql",
            query,
            "--warehouse",
            warehouse.to_str().unwrap(),
            "--format",
            "json",
        ],
        &[],
    );
    assert_eq!(run.code, 0, "{query}: {}", run.stderr);
    let rows: Value = serde_json::from_str(run.stdout.trim()).unwrap();
    rows[0]["n"].as_u64().unwrap()
}

fn demo(dir: &Path, env: &[(&str, &str)]) -> common::Run {
    if cfg!(not(debug_assertions)) && env.iter().any(|(name, _)| *name == "VIGIL_FAULT_COMMIT") {
        panic!("the VIGIL_FAULT_COMMIT hook exists only in debug builds: run these tests without --release");
    }
    vigil(&["demo", "--dir", dir.to_str().unwrap()], env)
}

#[test]
fn a_run_killed_mid_commit_leaves_nothing_half_visible() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("demo");
    let warehouse = dir.join("warehouse");

    // Killed before its commit marker: its findings and images files are in place but not visible.
    let killed = demo(&dir, &[("VIGIL_FAULT_COMMIT", "before-marker")]);
    assert_ne!(killed.code, 0, "the fault hook kills the process");
    assert!(
        warehouse.join("findings").is_dir(),
        "the killed run wrote files"
    );
    for view in [
        "scans",
        "findings",
        "images",
        "latest_findings",
        "latest_images",
    ] {
        assert_eq!(
            count(&warehouse, &format!("SELECT count(*) AS n FROM {view}")),
            0,
            "{view}"
        );
    }

    let first = demo(&dir, &[]);
    assert_eq!(first.code, 0, "{}", first.stderr);
    assert_eq!(
        count(&warehouse, "SELECT count(*) AS n FROM latest_findings"),
        41
    );

    // Killed after the first file of a second run went into place: still only the first run is seen.
    let killed = demo(&dir, &[("VIGIL_FAULT_COMMIT", "after-first-file")]);
    assert_ne!(killed.code, 0);
    assert_eq!(count(&warehouse, "SELECT count(*) AS n FROM scans"), 1);
    assert_eq!(count(&warehouse, "SELECT count(*) AS n FROM findings"), 41);
    assert_eq!(count(&warehouse, "SELECT count(*) AS n FROM images"), 9);

    // A rerun commits normally and the latest views hold each finding once.
    let again = demo(&dir, &[]);
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert_eq!(count(&warehouse, "SELECT count(*) AS n FROM scans"), 2);
    assert_eq!(count(&warehouse, "SELECT count(*) AS n FROM findings"), 82);
    assert_eq!(
        count(&warehouse, "SELECT count(*) AS n FROM latest_findings"),
        41
    );
    assert_eq!(
        count(&warehouse, "SELECT count(*) AS n FROM latest_images"),
        9
    );
}

#[test]
fn pyarrow_and_duckdb_read_the_warehouse_and_agree_with_vigil() {
    let python = std::env::var("VIGIL_PYTHON").expect(
        "VIGIL_PYTHON must name a Python with pyarrow and duckdb: run the tests through `bash .ci/run`, \
         which creates that virtualenv",
    );
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("demo");
    let warehouse = dir.join("warehouse");
    for _ in 0..2 {
        let run = demo(&dir, &[]);
        assert_eq!(run.code, 0, "{}", run.stderr);
    }
    // A killed run's files must not be counted by anyone who honours the commit markers.
    let killed = demo(&dir, &[("VIGIL_FAULT_COMMIT", "before-marker")]);
    assert_ne!(killed.code, 0);

    let script = common::repo_root().join("tests/python/read_warehouse.py");
    let output = std::process::Command::new(python)
        .arg(&script)
        .arg(&warehouse)
        .output()
        .expect("run the Python reader");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let read: Value = serde_json::from_slice(&output.stdout).unwrap();
    let scans = count(&warehouse, "SELECT count(*) AS n FROM scans");
    let findings = count(&warehouse, "SELECT count(*) AS n FROM findings");
    let images = count(&warehouse, "SELECT count(*) AS n FROM images");
    let latest = count(&warehouse, "SELECT count(*) AS n FROM latest_findings");
    assert_eq!((scans, findings, images, latest), (2, 82, 18, 41));
    for reader in ["pyarrow", "duckdb"] {
        assert_eq!(read[reader]["scans"], scans, "{reader}: {read}");
        assert_eq!(read[reader]["findings"], findings, "{reader}: {read}");
        assert_eq!(read[reader]["images"], images, "{reader}: {read}");
    }
    assert_eq!(read["duckdb"]["latest_findings"], latest, "{read}");
    assert_eq!(read["duckdb"]["images_with_wrong_counts"], 0, "{read}");
}

/// Run locks on every store: a held lock excludes another run of the scope (on object storage a lease,
/// renewed while held), is free again once released, and a holder that died without releasing it (its
/// runtime gone) blocks others only until its lease expires.
fn run_locks_exclude_renew_and_expire(store: &TestWarehouse) {
    let scope = vec!["prod/main".to_string()];
    let timing = LeaseTiming {
        ttl: Duration::from_millis(1500),
        renew_every: Duration::from_millis(300),
        poll: Duration::from_millis(100),
    };
    let warehouse = &store.warehouse;
    let try_lock = || block_on(RunLock::acquire_timed(warehouse, &scope, false, timing)).unwrap();
    let held = try_lock().expect("a free lock is taken");
    assert!(try_lock().is_none(), "a held lock excludes");
    let other = block_on(RunLock::acquire_timed(
        warehouse,
        &["prod/other".to_string()],
        false,
        timing,
    ))
    .unwrap();
    assert!(other.is_some(), "another scope runs alongside");
    // Held past its time to live: renewed, so still held.
    std::thread::sleep(Duration::from_millis(2500));
    assert!(try_lock().is_none(), "a renewed lease still excludes");
    block_on(held.release());
    let taken = try_lock().expect("a released lock is free");
    block_on(taken.release());

    // A waiter gets the lock as soon as the holder releases it.
    let held = try_lock().unwrap();
    let waiter = std::thread::spawn({
        let warehouse = store.reopen();
        let scope = scope.clone();
        move || block_on(RunLock::acquire_timed(&warehouse, &scope, true, timing)).unwrap()
    });
    std::thread::sleep(Duration::from_millis(500));
    assert!(!waiter.is_finished(), "the waiter waits");
    block_on(held.release());
    let waited = waiter.join().unwrap().expect("the waiter took the lock");
    block_on(waited.release());

    if warehouse.local_root().is_none() {
        // A holder whose process died: its lease is neither renewed nor released.
        let dead = tokio::runtime::Runtime::new().unwrap();
        let gone = store.reopen();
        let lock = dead
            .block_on(RunLock::acquire_timed(&gone, &scope, false, timing))
            .unwrap()
            .unwrap();
        std::mem::forget(lock);
        drop(dead);
        assert!(try_lock().is_none(), "an unexpired lease excludes");
        std::thread::sleep(timing.ttl + Duration::from_millis(500));
        let taken = try_lock().expect("an expired lease is taken over");
        block_on(taken.release());
    }
}

crate::on_every_store!(run_locks_exclude_renew_and_expire);
