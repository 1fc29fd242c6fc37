//! `vigil schedules` and `vigil daemon`: the systemd units and crontab lines Vigil prints run it correctly,
//! bad schedule files are clear errors, and the daemon fires schedules on their cron, scans a pushed image
//! within seconds of its webhook, and stops cleanly on SIGTERM.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::common::demo_images::build_demo;
use crate::common::*;
use serde_json::Value;

fn write(work: &Path, registry_url: &str, schedules: &[(&str, &str)]) -> String {
    let path = work.join("vigil.toml");
    std::fs::write(
        &path,
        format!(
            "warehouse = \"warehouse\"\nadvisory_db = \"db\"\ncache = \"cache\"\nschedules = \"schedules\"\n\n[[subscription]]\nid = \"prod\"\n[[subscription.registry]]\nname = \"main\"\nurl = \"{registry_url}\"\ninsecure_http = true\n"
        ),
    )
    .unwrap();
    std::fs::create_dir_all(work.join("schedules")).unwrap();
    for (name, text) in schedules {
        std::fs::write(work.join("schedules").join(format!("{name}.toml")), text).unwrap();
    }
    import_demo_advisories(&["--config", path.to_str().unwrap()]);
    path.display().to_string()
}

fn count(config: &str, query: &str) -> u64 {
    let run = vigil(&["sql", query, "--config", config, "--format", "json"], &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let rows: Value = serde_json::from_str(run.stdout.trim()).unwrap();
    rows[0]["n"].as_u64().unwrap()
}

/// Runs a command line as a shell would (the units and crontab lines are shell-free: split on spaces).
fn run_line(line: &str) -> std::process::Output {
    let parts: Vec<&str> = line.split_whitespace().collect();
    std::process::Command::new(parts[0])
        .args(&parts[1..])
        .output()
        .unwrap()
}

#[test]
fn printed_systemd_units_and_crontab_lines_run_vigil_correctly() {
    let layout = tempfile::tempdir().unwrap();
    build_demo(layout.path(), &|repository, tag| {
        format!("{repository}:{tag}")
    });
    let work = tempfile::tempdir().unwrap();
    let config = write(
        work.path(),
        &format!("oci:{}", layout.path().display()),
        &[("nightly", "name = \"nightly\"\ncron = \"30 2 * * 1-5\"\ntimezone = \"Europe/Berlin\"\nsubscriptions = [\"prod\"]\n[policy]\npulled_within = \"30d\"\n")],
    );

    let list = vigil(
        &["schedules", "list", "--config", &config, "--format", "json"],
        &[],
    );
    assert_eq!(list.code, 0, "{}", list.stderr);
    let jobs: Value = serde_json::from_str(&list.stdout).unwrap();
    assert_eq!(jobs[0]["name"], "nightly");
    assert_eq!(jobs[0]["registries"], serde_json::json!(["prod/main"]));
    let fires: Vec<&str> = jobs[0]["next_fires"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap())
        .collect();
    assert_eq!(fires.len(), 3);
    for fire in &fires {
        let at: chrono::DateTime<chrono::FixedOffset> = fire.parse().unwrap();
        let local = at.with_timezone(&chrono_tz::Europe::Berlin);
        use chrono::{Datelike, Timelike};
        assert_eq!((local.hour(), local.minute()), (2, 30), "{fire}");
        assert!(
            local.weekday().num_days_from_monday() < 5,
            "Monday to Friday: {fire}"
        );
    }

    let units = vigil(
        &["schedules", "systemd", "nightly", "--config", &config],
        &[],
    );
    assert_eq!(units.code, 0, "{}", units.stderr);
    assert!(
        units
            .stdout
            .contains("OnCalendar=Mon,Tue,Wed,Thu,Fri *-*-* 2:30:0 Europe/Berlin"),
        "{}",
        units.stdout
    );
    assert!(
        units.stdout.contains("Persistent=true") && units.stdout.contains("WantedBy=timers.target")
    );
    // The service's command line is a real, working run.
    let exec = units
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .unwrap();
    let output = run_line(exec);
    assert!(
        output.status.success(),
        "{exec}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("9 new"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );

    let crontab = vigil(&["schedules", "crontab", "--config", &config], &[]);
    assert_eq!(crontab.code, 0, "{}", crontab.stderr);
    assert!(
        crontab.stdout.contains("CRON_TZ=Europe/Berlin"),
        "{}",
        crontab.stdout
    );
    let line = crontab
        .stdout
        .lines()
        .find(|l| l.starts_with("30 2 * * 1-5 "))
        .unwrap();
    let command = line.splitn(6, ' ').nth(5).unwrap();
    let output = run_line(command);
    assert!(
        output.status.success(),
        "{command}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("9 carried"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        count(
            &config,
            "SELECT count(*) AS n FROM scans WHERE schedule = 'nightly'"
        ),
        2
    );
    assert_eq!(
        count(&config, "SELECT count(*) AS n FROM latest_findings"),
        41
    );
}

#[test]
fn bad_schedule_files_are_clear_errors() {
    let work = tempfile::tempdir().unwrap();
    for (text, expected) in [
        (
            "name = \"bad\"\ncron = \"0 9 * * 8\"\n",
            "day of week: 8 is outside 0-7",
        ),
        (
            "name = \"bad\"\ncron = \"0 * * * *\"\ncolour = \"red\"\n",
            "line 3",
        ),
        (
            "name = \"other\"\ncron = \"0 * * * *\"\n",
            "must match the file name",
        ),
        (
            "name = \"bad\"\ncron = \"0 * * * *\"\nregistries = [\"prod/nope\"]\n",
            "no registry \"prod/nope\"",
        ),
        (
            "name = \"bad\"\ncron = \"0 * * * *\"\ntimezone = \"Mars/Olympus\"\n",
            "unknown time zone",
        ),
        (
            "name = \"bad\"\ncron = \"0 * * * *\"\n[policy]\npulled_within = \"30\"\n",
            "policy.pulled_within",
        ),
    ] {
        let config = write(work.path(), "http://127.0.0.1:9", &[("bad", text)]);
        let run = vigil(&["schedules", "list", "--config", &config], &[]);
        assert_eq!(run.code, 2, "{text}");
        assert!(
            run.stderr.contains("bad.toml") && run.stderr.contains(expected),
            "{text}: {}",
            run.stderr
        );
    }
    let run = vigil(
        &[
            "run",
            "--schedule",
            "absent",
            "--config",
            &work.path().join("vigil.toml").display().to_string(),
        ],
        &[],
    );
    assert_eq!(run.code, 2);
}

#[test]
fn the_daemon_fires_schedules_scans_pushes_and_stops_on_sigterm() {
    let work = tempfile::tempdir().unwrap();
    // Every 2 seconds (a seconds field), but never new images: only a push can bring one in.
    let schedules = [(
        "often",
        "name = \"often\"\ncron = \"*/2 * * * * *\"\n[policy]\nnew_images = false\npulled_within = \"1d\"\n",
    )];
    // The daemon must know the registry and the registry the daemon: reserve a free port for the
    // registry, start the daemon (it prints its own free port), then the registry on the reserved port.
    let registry_port = free_port();
    let config = write(
        work.path(),
        &format!("http://127.0.0.1:{registry_port}"),
        &schedules,
    );
    let (daemon, registry) = daemon_notified_by(&config, registry_port, "prod/main");
    push_python_web(work.path(), &registry);

    // The push is scanned within seconds, by the push path (the schedule takes no new images).
    let deadline = Instant::now() + Duration::from_secs(30);
    while count(
        &config,
        "SELECT count(*) AS n FROM latest_images WHERE repository = 'apps/python-web'",
    ) == 0
    {
        assert!(
            Instant::now() < deadline,
            "the pushed image was never scanned"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    let pushed = count(
        &config,
        "SELECT count(*) AS n FROM activity WHERE action = 'push'",
    );
    assert_eq!(pushed, 1);
    let by_push = count(
        &config,
        "SELECT count(*) AS n FROM images i JOIN scans s ON i.scan_id = s.scan_id \
         WHERE s.schedule = 'push' AND i.selection = 'new' AND i.repository = 'apps/python-web'",
    );
    assert_eq!(by_push, 1, "scanned by the push path");
    // The schedule fires on its cron: its scans keep appearing, carrying the image.
    let often = "SELECT count(*) AS n FROM scans WHERE schedule = 'often'";
    let scans = count(&config, often);
    let deadline = Instant::now() + Duration::from_secs(20);
    while count(&config, often) <= scans {
        assert!(Instant::now() < deadline, "the schedule did not fire again");
        std::thread::sleep(Duration::from_millis(300));
    }
    assert_eq!(
        count(&config, "SELECT count(*) AS n FROM latest_findings"),
        2
    );
    assert_eq!(
        daemon.terminate(),
        Some(0),
        "SIGTERM stops the daemon cleanly"
    );
}

/// Regression: the push path turned (subscription, registry, repository, digest) into
/// `host/repository@digest` and resolved it back by host, so with two subscriptions whose registries share
/// a host, a push to the second was filed under the first.
#[test]
fn a_push_is_scanned_under_the_subscription_whose_registry_sent_it() {
    let work = tempfile::tempdir().unwrap();
    let registry_port = free_port();
    let url = format!("http://127.0.0.1:{registry_port}");
    let config = write(work.path(), &url, &[]);
    // A second subscription whose registry is the same host, configured after the first.
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str(&format!(
        "\n[[subscription]]\nid = \"staging\"\n[[subscription.registry]]\nname = \"shared\"\nurl = \"{url}\"\ninsecure_http = true\n"
    ));
    std::fs::write(&config, text).unwrap();
    let (daemon, registry) = daemon_notified_by(&config, registry_port, "staging/shared");
    push_python_web(work.path(), &registry);

    let deadline = Instant::now() + Duration::from_secs(30);
    while count(&config, "SELECT count(*) AS n FROM images") == 0 {
        assert!(
            Instant::now() < deadline,
            "the pushed image was never scanned"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    assert_eq!(
        count(
            &config,
            "SELECT count(*) AS n FROM images WHERE subscription = 'staging' AND registry = 'shared' \
             AND repository = 'apps/python-web'"
        ),
        1,
        "filed under the subscription whose registry sent the push"
    );
    assert_eq!(
        count(
            &config,
            "SELECT count(*) AS n FROM images WHERE subscription <> 'staging'"
        ),
        0,
        "nothing filed under the other subscription on the same host"
    );
    assert_eq!(daemon.terminate(), Some(0));
}

/// A free loopback port to give a server that starts later.
fn free_port() -> u16 {
    let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    probe.local_addr().unwrap().port()
}

/// `vigil daemon` receiving webhooks, and a registry on `registry_port` that posts its events to the
/// daemon's `/events/{events_path}`: the daemon must know the registry and the registry the daemon, so the
/// registry's port is reserved first, the daemon prints its own, then the registry starts.
fn daemon_notified_by(
    config: &str,
    registry_port: u16,
    events_path: &str,
) -> (Background, Registry) {
    let daemon = Background::start(
        &[
            "daemon",
            "--config",
            config,
            "--listen",
            "127.0.0.1:0",
            "--token-env",
            "HOOK",
        ],
        &[("HOOK", "t0ken")],
    );
    let url = format!("http://{}/events/{events_path}", daemon.addr);
    let registry = Registry::start_notifying_on(registry_port, &url, "t0ken");
    (daemon, registry)
}

/// Pushes the demo's python-web image to `registry` as `apps/python-web:1.4`.
fn push_python_web(work: &Path, registry: &Registry) {
    let layout = work.join("layout");
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
}
