//! Crawl tests against a real registry (Debian's `docker-registry`), seeded by skopeo from OCI layouts the
//! tests build, with faults injected by a proxy in front of the real server.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Instant;

use crate::common::*;
use serde_json::Value;

fn write_config(dir: &Path, body: &str) -> String {
    let path = dir.join("vigil.toml");
    std::fs::write(&path, body).unwrap();
    path.display().to_string()
}

fn registry_block(name: &str, url: &str, extra: &str) -> String {
    format!(
        "[[subscription.registry]]\nname = \"{name}\"\nurl = \"{url}\"\ninsecure_http = true\nretry = {{ max_attempts = 3, initial_backoff_ms = 50, max_backoff_ms = 5000 }}\n{extra}\n"
    )
}

fn parse_lines(stdout: &str) -> Vec<Value> {
    stdout
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON: {line}: {e}")))
        .collect()
}

/// A layout with a plain image, a three-platform index (two linux, one windows).
fn seed_layout(dir: &Path) -> LayoutBuilder {
    let mut layout = LayoutBuilder::new(dir);
    let os_release: &[u8] = b"ID=debian\nVERSION_ID=\"12\"\n";
    let plain = layout.image(&[("etc/os-release", os_release)], "linux", "amd64");
    layout.tag(&plain, "plain");
    let amd = layout.image(
        &[("etc/os-release", os_release), ("a", b"amd64")],
        "linux",
        "amd64",
    );
    let arm = layout.image(
        &[("etc/os-release", os_release), ("a", b"arm64")],
        "linux",
        "arm64",
    );
    let win = layout.image(&[("Files/readme.txt", b"windows")], "windows", "amd64");
    let index = layout.index(&[
        (amd, "linux", "amd64", None),
        (arm, "linux", "arm64", Some("v8")),
        (win, "windows", "amd64", None),
    ]);
    layout.tag(&index, "multi");
    layout
}

#[test]
fn crawl_lists_every_tag_and_platform_exactly_once_across_pages() {
    let registry = Registry::start();
    let work = tempfile::tempdir().unwrap();
    let layout = seed_layout(&work.path().join("layout"));
    let host = registry.host();
    // Five single-tag repositories plus one with many tags, so `n=2` catalog paging takes several pages.
    let repositories = [
        "team-a/api",
        "team-a/web",
        "team-b/api",
        "tools/debug",
        "zeta",
    ];
    for repository in repositories {
        skopeo_push(
            &layout.dir,
            "plain",
            &format!("{host}/{repository}:1.0"),
            &[],
            None,
        );
    }
    let many_tags: Vec<String> = (0..12).map(|i| format!("v{i:02}")).collect();
    for tag in &many_tags {
        skopeo_push(
            &layout.dir,
            "plain",
            &format!("{host}/many/tags:{tag}"),
            &[],
            None,
        );
    }
    skopeo_push(
        &layout.dir,
        "multi",
        &format!("{host}/multi:latest"),
        &["--all"],
        None,
    );
    skopeo_push(
        &layout.dir,
        "plain",
        &format!("{host}/legacy:v2"),
        &["--format", "v2s2"],
        None,
    );

    let config = write_config(
        work.path(),
        &format!(
            "[[subscription]]\nid = \"prod\"\n{}{}",
            registry_block("main", &registry.url(), "page_size = 2"),
            registry_block(
                "team-a-only",
                &registry.url(),
                "repositories = [\"team-a/*\"]"
            ),
        ),
    );
    let run = vigil(&["crawl", "--config", &config], &[]);
    assert_eq!(run.code, 0, "stderr: {}", run.stderr);
    let lines = parse_lines(&run.stdout);

    let main: Vec<&Value> = lines.iter().filter(|l| l["registry"] == "main").collect();
    let seen: Vec<(String, String, String)> = main
        .iter()
        .map(|l| {
            (
                l["repository"].as_str().unwrap().to_string(),
                l["tag"].as_str().unwrap().to_string(),
                l["platform"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let unique: BTreeSet<_> = seen.iter().cloned().collect();
    assert_eq!(
        unique.len(),
        seen.len(),
        "an image was listed twice: {seen:?}"
    );
    let mut expected = BTreeSet::new();
    for repository in repositories {
        expected.insert((
            repository.to_string(),
            "1.0".to_string(),
            "linux/amd64".to_string(),
        ));
    }
    for tag in &many_tags {
        expected.insert(("many/tags".into(), tag.clone(), "linux/amd64".into()));
    }
    for platform in ["linux/amd64", "linux/arm64/v8", "windows/amd64"] {
        expected.insert(("multi".into(), "latest".into(), platform.to_string()));
    }
    expected.insert(("legacy".into(), "v2".into(), "linux/amd64".into()));
    assert_eq!(unique, expected);

    for line in &main {
        assert_eq!(line["subscription"], "prod");
        let digest = line["digest"].as_str().unwrap();
        assert!(
            digest.starts_with("sha256:") && digest.len() == 71,
            "{digest}"
        );
    }
    let windows = main
        .iter()
        .find(|l| l["platform"] == "windows/amd64")
        .unwrap();
    assert_eq!(windows["selected"], false);
    assert_eq!(windows["skip_reason"], "unsupported-os:windows");
    let arm = main
        .iter()
        .find(|l| l["platform"] == "linux/arm64/v8")
        .unwrap();
    assert_eq!(arm["selected"], true);
    assert!(arm["index_digest"].as_str().unwrap().starts_with("sha256:"));
    assert_eq!(arm["media_type"], OCI_MANIFEST);
    let legacy = main.iter().find(|l| l["repository"] == "legacy").unwrap();
    assert_eq!(
        legacy["media_type"],
        "application/vnd.docker.distribution.manifest.v2+json"
    );
    assert!(legacy.get("index_digest").is_none());

    // The glob-filtered registry sees exactly the two team-a repositories.
    let filtered: BTreeSet<&str> = lines
        .iter()
        .filter(|l| l["registry"] == "team-a-only")
        .map(|l| l["repository"].as_str().unwrap())
        .collect();
    assert_eq!(filtered, BTreeSet::from(["team-a/api", "team-a/web"]));

    // The table format carries the same rows.
    let table = vigil(&["crawl", "--config", &config, "--format", "table"], &[]);
    assert_eq!(table.code, 0);
    assert_eq!(table.stdout.lines().count(), lines.len() + 1);
    assert!(table.stdout.starts_with("SUBSCRIPTION"));
    assert!(table.stdout.contains("unsupported-os:windows"));
}

#[test]
fn basic_auth_works_and_secrets_never_appear() {
    let auth = BasicAuth {
        username: "scanner".into(),
        password: "Tr0ub4dor-xyzzy-secret".into(),
    };
    let registry = Registry::start_with(Some(&auth));
    let work = tempfile::tempdir().unwrap();
    let layout = seed_layout(&work.path().join("layout"));
    skopeo_push(
        &layout.dir,
        "plain",
        &format!("{}/private/app:1", registry.host()),
        &[],
        Some(&auth),
    );

    let config = write_config(
        work.path(),
        &format!(
            "[[subscription]]\nid = \"prod\"\n{}",
            registry_block(
                "main",
                &registry.url(),
                "auth = { kind = \"basic\", username = \"scanner\", password_env = \"VIGIL_TEST_PASSWORD\" }"
            )
        ),
    );
    let good = vigil(
        &["-vvv", "crawl", "--config", &config],
        &[("VIGIL_TEST_PASSWORD", &auth.password)],
    );
    assert_eq!(good.code, 0, "stderr: {}", good.stderr);
    let lines = parse_lines(&good.stdout);
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["repository"], "private/app");

    let wrong_password = "wrong-password-plugh";
    let bad = vigil(
        &["-vvv", "crawl", "--config", &config],
        &[("VIGIL_TEST_PASSWORD", wrong_password)],
    );
    assert_eq!(bad.code, 1, "stderr: {}", bad.stderr);
    assert!(
        bad.stderr.contains("authentication failed"),
        "{}",
        bad.stderr
    );
    assert!(bad.stdout.is_empty());

    let missing = vigil(&["crawl", "--config", &config], &[]);
    assert_eq!(missing.code, 2);
    assert!(
        missing.stderr.contains("VIGIL_TEST_PASSWORD"),
        "{}",
        missing.stderr
    );

    // Anonymous against a registry that demands credentials: a clear error, exit 1.
    let anonymous_config = write_config(
        work.path(),
        &format!(
            "[[subscription]]\nid = \"prod\"\n{}",
            registry_block("main", &registry.url(), "")
        ),
    );
    let anonymous = vigil(&["crawl", "--config", &anonymous_config], &[]);
    assert_eq!(anonymous.code, 1);
    assert!(
        anonymous.stderr.contains("authentication required"),
        "{}",
        anonymous.stderr
    );

    use base64::Engine as _;
    for run in [&good, &bad, &missing, &anonymous] {
        for secret in [auth.password.as_str(), wrong_password] {
            let encoded =
                base64::engine::general_purpose::STANDARD.encode(format!("scanner:{secret}"));
            for output in [&run.stdout, &run.stderr] {
                assert!(!output.contains(secret), "secret leaked: {output}");
                assert!(
                    !output.contains(&encoded),
                    "encoded secret leaked: {output}"
                );
            }
        }
    }
}

#[test]
fn tampered_blob_is_reported_and_the_crawl_goes_on() {
    let registry = Registry::start();
    let work = tempfile::tempdir().unwrap();
    let mut layout = seed_layout(&work.path().join("layout"));
    let other = layout.image(
        &[("etc/os-release", b"ID=alpine\nVERSION_ID=3.18.4\n")],
        "linux",
        "arm64",
    );
    layout.tag(&other, "other");
    skopeo_push(
        &layout.dir,
        "plain",
        &format!("{}/good:1", registry.host()),
        &[],
        None,
    );
    skopeo_push(
        &layout.dir,
        "other",
        &format!("{}/bad:1", registry.host()),
        &[],
        None,
    );

    // Overwrite the config blob of `bad` in the registry's storage with other bytes of the same length.
    let manifest: Value = serde_json::from_slice(
        &std::fs::read(
            layout
                .dir
                .join("blobs/sha256")
                .join(other.digest.strip_prefix("sha256:").unwrap()),
        )
        .unwrap(),
    )
    .unwrap();
    let config_digest = manifest["config"]["digest"].as_str().unwrap();
    let data = registry.blob_data_path(config_digest);
    let original = std::fs::read(&data).unwrap();
    let tampered = String::from_utf8(original.clone())
        .unwrap()
        .replace("arm64", "amd64");
    assert_eq!(tampered.len(), original.len());
    std::fs::write(&data, tampered).unwrap();

    let config = write_config(
        work.path(),
        &format!(
            "[[subscription]]\nid = \"prod\"\n{}",
            registry_block("main", &registry.url(), "")
        ),
    );
    let run = vigil(&["crawl", "--config", &config], &[]);
    assert_eq!(run.code, 1, "stderr: {}", run.stderr);
    assert!(
        run.stderr.contains("failed: prod/main/bad:1"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("digest mismatch"), "{}", run.stderr);
    assert!(run.stderr.contains(config_digest), "{}", run.stderr);
    let lines = parse_lines(&run.stdout);
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["repository"], "good");
}

#[test]
fn throttled_requests_are_retried_after_retry_after() {
    let registry = Registry::start();
    let work = tempfile::tempdir().unwrap();
    let layout = seed_layout(&work.path().join("layout"));
    skopeo_push(
        &layout.dir,
        "plain",
        &format!("{}/app:1", registry.host()),
        &[],
        None,
    );
    skopeo_push(
        &layout.dir,
        "multi",
        &format!("{}/app:multi", registry.host()),
        &["--all"],
        None,
    );
    let proxy = FaultProxy::start(registry.port, "/tags/list", 2, "1");

    let config = write_config(
        work.path(),
        &format!(
            "[[subscription]]\nid = \"prod\"\n{}",
            registry_block("main", &format!("http://127.0.0.1:{}", proxy.port), "")
        ),
    );
    let started = Instant::now();
    let run = vigil(&["crawl", "--config", &config], &[]);
    let elapsed = started.elapsed();
    assert_eq!(run.code, 0, "stderr: {}", run.stderr);
    assert_eq!(parse_lines(&run.stdout).len(), 4);
    assert_eq!(proxy.throttled.load(std::sync::atomic::Ordering::SeqCst), 2);
    // Two throttled attempts, each answered with Retry-After: 1, so at least two seconds of waiting; the
    // configured exponential backoff alone (50 ms, 100 ms) would have been far shorter.
    assert!(
        elapsed.as_secs_f64() >= 2.0,
        "retried too early: {elapsed:?}"
    );

    // With fewer attempts than throttled answers, the tag list fails clearly and the run exits 1.
    let proxy = FaultProxy::start(registry.port, "/tags/list", 10, "0");
    let config = write_config(
        work.path(),
        &format!(
            "[[subscription]]\nid = \"prod\"\n{}",
            registry_block("main", &format!("http://127.0.0.1:{}", proxy.port), "")
        ),
    );
    let run = vigil(&["crawl", "--config", &config], &[]);
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("HTTP 429"), "{}", run.stderr);
    assert_eq!(proxy.throttled.load(std::sync::atomic::Ordering::SeqCst), 3);
}

#[test]
fn oci_layout_source_lists_its_tags_and_platforms() {
    let work = tempfile::tempdir().unwrap();
    let mut layout = seed_layout(&work.path().join("demo"));
    let named = layout.image(
        &[("etc/os-release", b"ID=alpine\nVERSION_ID=3.18.4\n")],
        "linux",
        "amd64",
    );
    layout.tag(&named, "library/alpine:3.18");
    let config = write_config(
        work.path(),
        &format!(
            "[[subscription]]\nid = \"local\"\n[[subscription.registry]]\nname = \"layout\"\nurl = \"oci:{}\"\n",
            layout.dir.display()
        ),
    );
    let run = vigil(&["crawl", "--config", &config], &[]);
    assert_eq!(run.code, 0, "stderr: {}", run.stderr);
    let seen: BTreeSet<(String, String, String, bool)> = parse_lines(&run.stdout)
        .iter()
        .map(|l| {
            (
                l["repository"].as_str().unwrap().to_string(),
                l["tag"].as_str().unwrap().to_string(),
                l["platform"].as_str().unwrap().to_string(),
                l["selected"].as_bool().unwrap(),
            )
        })
        .collect();
    let expected: BTreeSet<(String, String, String, bool)> = [
        ("demo", "plain", "linux/amd64", true),
        ("demo", "multi", "linux/amd64", true),
        ("demo", "multi", "linux/arm64/v8", true),
        ("demo", "multi", "windows/amd64", false),
        ("library/alpine", "3.18", "linux/amd64", true),
    ]
    .iter()
    .map(|(r, t, p, s)| (r.to_string(), t.to_string(), p.to_string(), *s))
    .collect();
    assert_eq!(seen, expected);

    // A layout with a missing blob: that tag fails, the others are still listed.
    std::fs::remove_file(
        layout
            .dir
            .join("blobs/sha256")
            .join(named.digest.strip_prefix("sha256:").unwrap()),
    )
    .unwrap();
    let run = vigil(&["crawl", "--config", &config], &[]);
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("library/alpine:3.18"), "{}", run.stderr);
    assert_eq!(parse_lines(&run.stdout).len(), 4);
}

#[test]
fn bad_config_and_unreachable_registries_have_distinct_exit_codes() {
    let work = tempfile::tempdir().unwrap();
    let config = write_config(work.path(), "[[subscription]]\nid = \"prod\"\nbogus = 1\n");
    let run = vigil(&["crawl", "--config", &config], &[]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("line 3"), "{}", run.stderr);
    assert!(run.stderr.contains("bogus"), "{}", run.stderr);

    let missing = vigil(&["crawl", "--config", "/nonexistent/vigil.toml"], &[]);
    assert_eq!(missing.code, 2);
    assert!(missing.stderr.contains("cannot read config"));

    let usage = vigil(&["crawl", "--format", "yaml"], &[]);
    assert_eq!(usage.code, 2);

    // A port nothing listens on: connection errors are retried, then reported; exit 1.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = write_config(
        work.path(),
        &format!(
            "[[subscription]]\nid = \"prod\"\n{}",
            registry_block("gone", &format!("http://127.0.0.1:{port}"), "")
        ),
    );
    let run = vigil(&["crawl", "--config", &config], &[]);
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("failed: prod/gone"), "{}", run.stderr);
    assert!(run.stderr.contains("connection failed"), "{}", run.stderr);

    let version = vigil(&["--version"], &[]);
    assert_eq!(version.code, 0);
    assert_eq!(
        version.stdout.trim(),
        format!("vigil {}", env!("CARGO_PKG_VERSION"))
    );
}
