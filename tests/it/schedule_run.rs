//! Scheduled runs against a real registry whose notifications reach `vigil events serve`: new images are
//! inventoried once; a pulled image is re-matched from its stored inventory against a newly imported
//! advisory without a single blob request; a moved tag supersedes the old digest; overlapping runs of the
//! same scope skip (or wait with `--wait`).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::common::demo_images::build_demo;
use crate::common::*;
use serde_json::Value;

const TOKEN: &str = "hook-token";

struct Setup {
    work: tempfile::TempDir,
    config: String,
}

impl Setup {
    fn path(&self) -> &Path {
        self.work.path()
    }
}

fn write_config(work: &Path, registry_url: &str) -> String {
    let path = work.join("vigil.toml");
    std::fs::write(
        &path,
        format!(
            "warehouse = \"warehouse\"\nadvisory_db = \"db\"\ncache = \"cache\"\nschedules = \"schedules\"\n\n[[subscription]]\nid = \"prod\"\n[[subscription.registry]]\nname = \"main\"\nurl = \"{registry_url}\"\ninsecure_http = true\n"
        ),
    )
    .unwrap();
    std::fs::create_dir_all(work.join("schedules")).unwrap();
    std::fs::write(
        work.join("schedules/hourly.toml"),
        "name = \"hourly\"\ncron = \"0 * * * *\"\ntimezone = \"UTC\"\nregistries = [\"prod/main\"]\n\n[policy]\nnew_images = true\npulled_within = \"30d\"\n",
    )
    .unwrap();
    path.display().to_string()
}

fn sql(config: &str, query: &str) -> Vec<Value> {
    let run = vigil(&["sql", query, "--config", config, "--format", "json"], &[]);
    assert_eq!(run.code, 0, "{query}: {}", run.stderr);
    serde_json::from_str(run.stdout.trim()).unwrap()
}

fn count(config: &str, query: &str) -> u64 {
    sql(config, query)[0]["n"].as_u64().unwrap()
}

/// The demo advisories, optionally without some records, in a folder of their own.
fn advisories(work: &Path, without: &[&str]) -> PathBuf {
    let source = repo_root().join("examples/demo/advisories");
    let target = work.join(format!("advisories-{}", without.len()));
    for ecosystem in ["PyPI", "Go", "Maven"] {
        std::fs::create_dir_all(target.join(ecosystem)).unwrap();
        for entry in std::fs::read_dir(source.join(ecosystem)).unwrap() {
            let entry = entry.unwrap();
            let name = entry.file_name().to_string_lossy().into_owned();
            if without.iter().any(|w| name.starts_with(w)) {
                continue;
            }
            std::fs::copy(entry.path(), target.join(ecosystem).join(&name)).unwrap();
        }
    }
    target
}

fn run_schedule(config: &str, extra: &[&str]) -> Run {
    let mut args = vec!["run", "--schedule", "hourly", "--config", config];
    args.extend_from_slice(extra);
    vigil(&args, &[])
}

fn latest_scan(config: &str) -> Value {
    sql(
        config,
        "SELECT * FROM scans ORDER BY started_at DESC LIMIT 1",
    )
    .remove(0)
}

#[test]
fn scheduled_runs_select_new_rematch_pulled_and_supersede_moved_tags() {
    let work = tempfile::tempdir().unwrap();
    let placeholder = write_config(work.path(), "http://127.0.0.1:9");
    let server = Background::start(
        &[
            "events",
            "serve",
            "--config",
            &placeholder,
            "--listen",
            "127.0.0.1:0",
            "--token-env",
            "HOOK_TOKEN",
        ],
        &[("HOOK_TOKEN", TOKEN)],
    );
    let registry =
        Registry::start_notifying(&format!("http://{}/events/prod/main", server.addr), TOKEN);
    // Vigil talks to the registry through a recording proxy, so its blob requests can be counted.
    let proxy = FaultProxy::recording(registry.port);
    let setup = Setup {
        config: write_config(work.path(), &format!("http://{}", proxy.url())),
        work,
    };
    let config = setup.config.as_str();

    let layout = setup.path().join("layout");
    build_demo(&layout, &|repository, tag| {
        format!("{}--{tag}", repository.replace('/', "_"))
    });
    skopeo_push(
        &layout,
        "library_debian--12",
        &format!("{}/library/debian:12", registry.host()),
        &[],
        None,
    );
    skopeo_push(
        &layout,
        "apps_python-web--1.4",
        &format!("{}/apps/python-web:1.4", registry.host()),
        &[],
        None,
    );

    // The advisory DB first lacks the pip advisory (PYSEC-2023-228).
    let partial = advisories(setup.path(), &["PYSEC-2023-228"]);
    let import = vigil(
        &[
            "db",
            "import",
            partial.to_str().unwrap(),
            "--config",
            config,
        ],
        &[],
    );
    assert_eq!(import.code, 0, "{}", import.stderr);

    // First run: both images are new and read from their layers.
    let first = run_schedule(config, &[]);
    assert_eq!(first.code, 0, "{}", first.stderr);
    assert!(first.stderr.contains("selected: 2 new"), "{}", first.stderr);
    let scan = latest_scan(config);
    assert_eq!(
        (scan["selected_new"].as_u64(), scan["schedule"].as_str()),
        (Some(2), Some("hourly"))
    );
    let web_findings =
        "SELECT count(*) AS n FROM latest_findings WHERE repository = 'apps/python-web'";
    assert_eq!(count(config, web_findings), 1, "setuptools only");

    // Someone pulls the Python image (skopeo, straight from the registry).
    let pulled = setup.path().join("pulled");
    let pull = std::process::Command::new("skopeo")
        .args(["copy", "--quiet", "--src-tls-verify=false"])
        .arg(format!("docker://{}/apps/python-web:1.4", registry.host()))
        .arg(format!("oci:{}:x", pulled.display()))
        .output()
        .unwrap();
    assert!(
        pull.status.success(),
        "{}",
        String::from_utf8_lossy(&pull.stderr)
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while count(
        config,
        "SELECT count(*) AS n FROM activity WHERE action = 'pull'",
    ) == 0
    {
        assert!(Instant::now() < deadline, "the pull event never arrived");
        std::thread::sleep(Duration::from_millis(200));
    }
    // Vigil's first run read both manifests through the proxy; none of those reads is use.
    assert_eq!(
        count(config, "SELECT count(*) AS n FROM activity WHERE action = 'pull' AND repository <> 'apps/python-web'"),
        0
    );

    // The missing advisory arrives; the second run re-matches the pulled image without a blob request.
    let full = advisories(setup.path(), &[]);
    let import = vigil(
        &["db", "import", full.to_str().unwrap(), "--config", config],
        &[],
    );
    assert_eq!(import.code, 0, "{}", import.stderr);
    let blobs_before = proxy
        .requests
        .lock()
        .unwrap()
        .iter()
        .filter(|r| r.contains("/blobs/"))
        .count();
    let second = run_schedule(config, &[]);
    assert_eq!(second.code, 0, "{}", second.stderr);
    let blobs_after = proxy
        .requests
        .lock()
        .unwrap()
        .iter()
        .filter(|r| r.contains("/blobs/"))
        .count();
    assert_eq!(
        blobs_after, blobs_before,
        "no blob fetched: {}",
        second.stderr
    );
    assert!(
        second.stderr.contains("1 carried") && second.stderr.contains("1 pulled"),
        "{}",
        second.stderr
    );
    assert_eq!(
        count(config, web_findings),
        2,
        "the new pip advisory is found"
    );
    let new = sql(config, "SELECT finding_id FROM latest_findings WHERE repository = 'apps/python-web' ORDER BY finding_id");
    assert!(
        new.iter().any(|f| f["finding_id"] == "PYSEC-2023-228"),
        "{new:?}"
    );
    assert_eq!(
        count(config, "SELECT count(*) AS n FROM latest_images"),
        2,
        "the carried image stays latest"
    );
    assert_eq!(
        count(config, "SELECT count(*) AS n FROM latest_findings"),
        2
    );

    // The tag moves to another image: the new digest is new, the old one superseded with its findings.
    skopeo_push(
        &layout,
        "library_alpine--3.18",
        &format!("{}/apps/python-web:1.4", registry.host()),
        &[],
        None,
    );
    // The old image also appears in a second repository: there it is a new image of its own, not a copy
    // of the first repository's assessment.
    skopeo_push(
        &layout,
        "apps_python-web--1.4",
        &format!("{}/apps/copy:1.0", registry.host()),
        &[],
        None,
    );
    let third = run_schedule(config, &[]);
    assert_eq!(third.code, 0, "{}", third.stderr);
    assert!(third.stderr.contains("2 new"), "{}", third.stderr);
    assert_eq!(
        count(
            config,
            "SELECT count(*) AS n FROM latest_findings WHERE repository = 'apps/copy'"
        ),
        2
    );
    let superseded = report_rows(config, "superseded");
    assert_eq!(superseded.len(), 1, "{superseded:?}");
    assert_eq!(superseded[0]["repository"], "apps/python-web");
    assert_eq!(superseded[0]["old_findings"], 2);
    assert_eq!(
        count(config, web_findings),
        0,
        "the alpine image has no PyPI packages"
    );
    drop(server);
}

fn report_rows(config: &str, name: &str) -> Vec<Value> {
    let run = vigil(
        &["report", name, "--config", config, "--format", "json"],
        &[],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    serde_json::from_str(run.stdout.trim()).unwrap()
}

#[test]
fn overlapping_runs_of_one_scope_skip_or_wait() {
    let registry = Registry::start();
    let work = tempfile::tempdir().unwrap();
    let config = write_config(work.path(), &registry.url());
    let layout = work.path().join("layout");
    build_demo(&layout, &|repository, tag| {
        format!("{}--{tag}", repository.replace('/', "_"))
    });
    skopeo_push(
        &layout,
        "apps_python-web--1.4",
        &format!("{}/apps/python-web:1.4", registry.host()),
        &[],
        None,
    );
    import_demo_advisories(&["--config", &config]);

    // Another run holds the scope's lock: this one skips and says so, successfully.
    let warehouse = work.path().join("warehouse");
    let scope = vec!["prod/main".to_string()];
    let store = vigil::warehouse::Warehouse::local(&warehouse).unwrap();
    let held =
        crate::common::stores::block_on(vigil::warehouse::RunLock::acquire(&store, &scope, false))
            .unwrap()
            .unwrap();
    let skipped = run_schedule(&config, &[]);
    assert_eq!(skipped.code, 0, "{}", skipped.stderr);
    assert!(
        skipped.stderr.contains("skipped: already running"),
        "{}",
        skipped.stderr
    );
    assert!(
        !warehouse.join("scans").exists(),
        "a skipped run writes nothing"
    );

    // With --wait it runs once the other run is done.
    let config_for_thread = config.clone();
    let waiter = std::thread::spawn(move || run_schedule(&config_for_thread, &["--wait"]));
    std::thread::sleep(Duration::from_millis(800));
    assert!(!waiter.is_finished(), "--wait waits for the lock");
    drop(held);
    let waited = waiter.join().unwrap();
    assert_eq!(waited.code, 0, "{}", waited.stderr);
    assert_eq!(count(&config, "SELECT count(*) AS n FROM scans"), 1);

    // Two runs started together: each either runs or skips, and the warehouse stays consistent.
    let a = std::thread::spawn({
        let config = config.clone();
        move || run_schedule(&config, &[])
    });
    let b = run_schedule(&config, &[]);
    let a = a.join().unwrap();
    for run in [&a, &b] {
        assert_eq!(run.code, 0, "{}", run.stderr);
    }
    let ran = [&a, &b]
        .iter()
        .filter(|r| !r.stderr.contains("skipped"))
        .count() as u64;
    assert_eq!(count(&config, "SELECT count(*) AS n FROM scans"), 1 + ran);
    assert_eq!(count(&config, "SELECT count(*) AS n FROM latest_images"), 1);
    assert_eq!(
        count(&config, "SELECT count(*) AS n FROM latest_findings"),
        2
    );
}
