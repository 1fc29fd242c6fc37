//! Registry activity from a real registry: Debian's docker-registry posts its notification webhooks to a
//! running `vigil events serve`; pushes and pulls of manifests become `activity` rows, Vigil's own pulls
//! never do, and duplicates (the registry retries) are stored once.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::common::demo_images::build_demo;
use crate::common::stores::TestWarehouse;
use crate::common::*;
use serde_json::Value;

const TOKEN: &str = "s3cret-webhook-token";

fn config(work: &Path, registry_url: &str, store: &TestWarehouse) -> String {
    let path = work.join("vigil.toml");
    std::fs::write(
        &path,
        format!(
            "advisory_db = \"db\"\ncache = \"cache\"\n{}\n[[subscription]]\nid = \"prod\"\n[[subscription.registry]]\nname = \"main\"\nurl = \"{registry_url}\"\ninsecure_http = true\n",
            store.config_toml()
        ),
    )
    .unwrap();
    path.display().to_string()
}

fn sql(config: &str, query: &str, env: &[(&str, &str)]) -> Vec<Value> {
    let run = vigil(&["sql", query, "--config", config, "--format", "json"], env);
    assert_eq!(run.code, 0, "{query}: {}", run.stderr);
    serde_json::from_str(run.stdout.trim()).unwrap()
}

/// Polls until `query`'s first row's `n` reaches `at_least` (events arrive asynchronously).
fn wait_for(config: &str, query: &str, at_least: u64, env: &[(&str, &str)]) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let n = sql(config, query, env)[0]["n"].as_u64().unwrap_or(0);
        if n >= at_least || Instant::now() > deadline {
            return n;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn webhooks_from_a_real_registry_become_activity_without_vigils_own_pulls(store: &TestWarehouse) {
    let env = store.env_refs();
    let work = tempfile::tempdir().unwrap();
    // The receiver needs the registry's URL in its configuration; the registry needs the receiver's
    // address for its notifications. The receiver's config names the registry by a placeholder URL first.
    let placeholder = config(work.path(), "http://127.0.0.1:9", store);
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
        &[env.as_slice(), &[("HOOK_TOKEN", TOKEN)]].concat(),
    );
    let registry =
        Registry::start_notifying(&format!("http://{}/events/prod/main", server.addr), TOKEN);
    let config = config(work.path(), &registry.url(), store);

    let layout = work.path().join("layout");
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
    let pulled = work.path().join("pulled");
    let pull = std::process::Command::new("skopeo")
        .args(["copy", "--src-tls-verify=false"])
        .arg(format!("docker://{}/apps/python-web:1.4", registry.host()))
        .arg(format!("oci:{}:x", pulled.display()))
        .output()
        .unwrap();
    assert!(
        pull.status.success(),
        "{}",
        String::from_utf8_lossy(&pull.stderr)
    );

    let pushes = wait_for(
        &config,
        "SELECT count(*) AS n FROM activity WHERE action = 'push'",
        2,
        &env,
    );
    assert_eq!(pushes, 2, "one push per manifest, none per blob");
    let pulls = wait_for(
        &config,
        "SELECT count(*) AS n FROM activity WHERE action = 'pull'",
        1,
        &env,
    );
    assert!(pulls >= 1);

    // Vigil's own reads of every manifest (a scan) are not use.
    import_demo_advisories(&["--config", &config]);
    let scan = vigil(&["scan", "--config", &config], &env);
    assert_eq!(scan.code, 0, "{}", scan.stderr);
    std::thread::sleep(Duration::from_secs(2));
    let rows = sql(&config, "SELECT action, repository, digest, tag, user_agent FROM activity ORDER BY action, repository", &env);
    assert!(
        rows.iter()
            .all(|r| !r["user_agent"].as_str().unwrap_or("").starts_with("vigil/")),
        "{rows:?}"
    );
    let pulled_repos: Vec<&str> = rows
        .iter()
        .filter(|r| r["action"] == "pull")
        .map(|r| r["repository"].as_str().unwrap())
        .collect();
    assert!(
        pulled_repos.iter().all(|r| *r == "apps/python-web"),
        "only skopeo's pull: {rows:?}"
    );
    let pushed: Vec<&str> = rows
        .iter()
        .filter(|r| r["action"] == "push")
        .map(|r| r["repository"].as_str().unwrap())
        .collect();
    assert_eq!(pushed, ["apps/python-web", "library/debian"]);

    // The scan's images carry the push and pull times.
    let images = sql(
        &config,
        "SELECT repository, pushed_at, last_pulled_at FROM latest_images ORDER BY repository",
        &env,
    );
    let web = images
        .iter()
        .find(|r| r["repository"] == "apps/python-web")
        .unwrap();
    assert!(
        web["pushed_at"].is_string() && web["last_pulled_at"].is_string(),
        "{web}"
    );
    let debian = images
        .iter()
        .find(|r| r["repository"] == "library/debian")
        .unwrap();
    assert!(
        debian["pushed_at"].is_string() && debian["last_pulled_at"].is_null(),
        "{debian}"
    );

    // Importing the same events again (as the registry's retries would deliver them) stores nothing new.
    let envelope = work.path().join("events.jsonl");
    let digest = web_digest(&config, &env);
    let line = format!(
        r#"{{"events":[{{"id":"manual-1","timestamp":"2026-11-01T00:00:00Z","action":"pull","target":{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{digest}","repository":"apps/python-web"}},"request":{{"useragent":"curl/8"}}}}]}}"#
    );
    std::fs::write(&envelope, format!("{line}\n{line}\n")).unwrap();
    let first = vigil(
        &[
            "events",
            "import",
            envelope.to_str().unwrap(),
            "--config",
            &config,
            "--subscription",
            "prod",
            "--registry",
            "main",
        ],
        &env,
    );
    assert_eq!(first.code, 0, "{}", first.stderr);
    let tally: Value = serde_json::from_str(first.stdout.trim()).unwrap();
    assert_eq!(
        (tally["stored"].as_u64(), tally["duplicates"].as_u64()),
        (Some(1), Some(1))
    );
    let again = vigil(
        &[
            "events",
            "import",
            envelope.to_str().unwrap(),
            "--config",
            &config,
            "--subscription",
            "prod",
            "--registry",
            "main",
        ],
        &env,
    );
    let tally: Value = serde_json::from_str(again.stdout.trim()).unwrap();
    assert_eq!(
        (tally["stored"].as_u64(), tally["duplicates"].as_u64()),
        (Some(0), Some(2))
    );
    let unknown = vigil(
        &[
            "events",
            "import",
            envelope.to_str().unwrap(),
            "--config",
            &config,
            "--subscription",
            "prod",
            "--registry",
            "nope",
        ],
        &env,
    );
    assert_eq!(unknown.code, 2);
    assert!(
        unknown.stderr.contains("no registry prod/nope"),
        "{}",
        unknown.stderr
    );

    assert_eq!(
        server.terminate(),
        Some(0),
        "SIGTERM stops the receiver cleanly"
    );
}

fn web_digest(config: &str, env: &[(&str, &str)]) -> String {
    sql(
        config,
        "SELECT image_digest FROM latest_images WHERE repository = 'apps/python-web'",
        env,
    )[0]["image_digest"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn the_receiver_refuses_wrong_tokens_and_bad_envelopes() {
    let work = tempfile::tempdir().unwrap();
    let store = TestWarehouse::local();
    let config = config(work.path(), "http://127.0.0.1:9", &store);
    let server = Background::start(
        &[
            "events",
            "serve",
            "--config",
            &config,
            "--listen",
            "127.0.0.1:0",
            "--token-env",
            "HOOK_TOKEN",
        ],
        &[("HOOK_TOKEN", TOKEN)],
    );
    let post = |path: &str, token: &str, body: &str| -> String {
        let output = std::process::Command::new("curl")
            .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", "POST"])
            .args(["-H", &format!("Authorization: Bearer {token}")])
            .args([
                "-H",
                "Content-Type: application/vnd.docker.distribution.events.v1+json",
            ])
            .args(["--data-binary", body])
            .arg(format!("http://{}{path}", server.addr))
            .output()
            .unwrap();
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    assert_eq!(post("/events/prod/main", "wrong", "{\"events\":[]}"), "401");
    assert_eq!(post("/events/prod/main", TOKEN, "{not json"), "400");
    assert_eq!(
        post("/events/prod/elsewhere", TOKEN, "{\"events\":[]}"),
        "404"
    );
    assert_eq!(post("/events/prod/main", TOKEN, "{\"events\":[]}"), "200");
}

crate::on_every_store!(webhooks_from_a_real_registry_become_activity_without_vigils_own_pulls);
