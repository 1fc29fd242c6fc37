//! Inventory tests against a real registry: layers streamed once and shared across images and runs, merged
//! with whiteouts, and bad layers reported as coverage, never as a clean image.

use crate::common::*;
use serde_json::Value;

const DEBIAN_STATUS: &[u8] = include_bytes!("../testdata/demo/debian12-dpkg-status");
const DEBIAN_OS_RELEASE: &[u8] = include_bytes!("../testdata/demo/debian12-os-release");

fn base_files() -> Vec<(&'static str, &'static [u8])> {
    vec![
        ("etc/os-release", DEBIAN_OS_RELEASE),
        ("var/lib/dpkg/status", DEBIAN_STATUS),
    ]
}

fn inventory_json(image: &str, extra: &[&str]) -> (Vec<Value>, Run) {
    let mut args = vec!["inventory", image, "--insecure-http", "--format", "json"];
    args.extend_from_slice(extra);
    let run = vigil(&args, &[]);
    assert!(run.code == 0 || run.code == 1, "stderr: {}", run.stderr);
    let parsed: Value = serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}\nstderr: {}", run.stdout, run.stderr));
    let list = match parsed {
        Value::Array(items) => items,
        single => vec![single],
    };
    (list, run)
}

fn layer_digests(layout: &LayoutBuilder, manifest: &Descriptor) -> Vec<String> {
    let hex = manifest.digest.strip_prefix("sha256:").unwrap();
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(layout.dir.join("blobs/sha256").join(hex)).unwrap())
            .unwrap();
    manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["digest"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn a_shared_base_layer_is_fetched_once_per_run_and_once_across_runs() {
    let registry = Registry::start();
    let work = tempfile::tempdir().unwrap();
    let mut layout = LayoutBuilder::new(&work.path().join("layout"));
    let base = base_files();
    let first: &[(&str, &[u8])] = &[("srv/app-one", b"one")];
    let second: &[(&str, &[u8])] = &[("srv/app-two", b"two")];
    let one = layout.image_with_layers(&[&base, first], "linux", "amd64", OCI_MANIFEST);
    let two = layout.image_with_layers(&[&base, second], "linux", "arm64", OCI_MANIFEST);
    let windows = layout.image(&[("Files/Windows/win.ini", b"[fonts]")], "windows", "amd64");
    let index = layout.index(&[
        (one.clone(), "linux", "amd64", None),
        (two.clone(), "linux", "arm64", None),
        (windows.clone(), "windows", "amd64", None),
    ]);
    layout.tag(&one, "one");
    layout.tag(&two, "two");
    layout.tag(&index, "multi");
    skopeo_push(
        &layout.dir,
        "one",
        &format!("{}/app/one:1", registry.host()),
        &[],
        None,
    );
    skopeo_push(
        &layout.dir,
        "two",
        &format!("{}/app/two:1", registry.host()),
        &[],
        None,
    );
    skopeo_push(
        &layout.dir,
        "multi",
        &format!("{}/app/multi:1", registry.host()),
        &["--all"],
        None,
    );
    let one_layers = layer_digests(&layout, &one);
    let two_layers = layer_digests(&layout, &two);
    let windows_layers = layer_digests(&layout, &windows);
    assert_eq!(one_layers[0], two_layers[0], "the base layer is shared");
    let base_layer = &one_layers[0];

    // One run over an index: both linux images are read concurrently, the shared layer once.
    let proxy = FaultProxy::recording(registry.port);
    let (inventories, run) = inventory_json(&format!("{}/app/multi:1", proxy.url()), &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(inventories.len(), 3);
    for inventory in &inventories[..2] {
        assert_eq!(inventory["coverage"]["status"], "complete", "{inventory}");
        assert_eq!(inventory["os"]["ecosystem"], "Debian:12");
        let packages = inventory["packages"].as_array().unwrap();
        assert_eq!(packages.len(), 735);
        assert!(packages
            .iter()
            .all(|p| p["layer_digest"] == base_layer.as_str()));
    }
    let windows_inventory = inventories
        .iter()
        .find(|i| i["platform"]["os"] == "windows")
        .unwrap();
    assert_eq!(windows_inventory["coverage"]["status"], "unsupported-os");
    assert!(windows_inventory["coverage"]["reason"]
        .as_str()
        .unwrap()
        .contains("windows"));
    assert_eq!(
        proxy.blob_gets(base_layer),
        1,
        "{:?}",
        proxy.requests.lock().unwrap()
    );
    assert_eq!(proxy.blob_gets(&one_layers[1]), 1);
    assert_eq!(proxy.blob_gets(&two_layers[1]), 1);
    assert_eq!(
        proxy.blob_gets(&windows_layers[0]),
        0,
        "windows layers are never read"
    );
    drop(proxy);

    // Across runs: the layer cache answers for a layer already read by another image.
    let cache = work.path().join("cache");
    let cache_arg = cache.to_str().unwrap();
    let proxy = FaultProxy::recording(registry.port);
    let (first_run, _) = inventory_json(
        &format!("{}/app/one:1", proxy.url()),
        &["--cache", cache_arg],
    );
    let (second_run, _) = inventory_json(
        &format!("{}/app/two:1", proxy.url()),
        &["--cache", cache_arg],
    );
    assert_eq!(proxy.blob_gets(base_layer), 1);
    assert_eq!(proxy.blob_gets(&two_layers[1]), 1);
    let (again, _) = inventory_json(
        &format!("{}/app/two:1", proxy.url()),
        &["--cache", cache_arg],
    );
    assert_eq!(
        proxy.blob_gets(&two_layers[1]),
        1,
        "a cached layer is not downloaded again"
    );
    assert_eq!(again[0]["packages"], second_run[0]["packages"]);
    assert_eq!(first_run[0]["packages"], second_run[0]["packages"]);
}

#[test]
fn a_top_layer_that_deletes_or_replaces_the_dpkg_database_wins() {
    let registry = Registry::start();
    let work = tempfile::tempdir().unwrap();
    let mut layout = LayoutBuilder::new(&work.path().join("layout"));
    let base = base_files();

    let deleted: &[(&str, &[u8])] = &[("var/lib/dpkg/.wh.status", b"")];
    let gone = layout.image_with_layers(&[&base, deleted], "linux", "amd64", OCI_MANIFEST);
    layout.tag(&gone, "gone");

    // A replacement status: the first stanza unchanged, the second with a new version.
    let text = String::from_utf8_lossy(DEBIAN_STATUS);
    let stanzas: Vec<&str> = text.split("\n\n").collect();
    let kept_name = stanzas[0]
        .lines()
        .find_map(|l| l.strip_prefix("Package: "))
        .unwrap()
        .to_string();
    let changed_name = stanzas[1]
        .lines()
        .find_map(|l| l.strip_prefix("Package: "))
        .unwrap()
        .to_string();
    let old_version = stanzas[1]
        .lines()
        .find_map(|l| l.strip_prefix("Version: "))
        .unwrap()
        .to_string();
    let changed = stanzas[1].replace(
        &format!("Version: {old_version}"),
        &format!("Version: {old_version}+vigil1"),
    );
    let replacement = format!("{}\n\n{}\n", stanzas[0], changed);
    let replaced_files: &[(&str, &[u8])] = &[("var/lib/dpkg/status", replacement.as_bytes())];
    let replaced =
        layout.image_with_layers(&[&base, replaced_files], "linux", "amd64", OCI_MANIFEST);
    layout.tag(&replaced, "replaced");
    let layers = layer_digests(&layout, &replaced);

    skopeo_push(
        &layout.dir,
        "gone",
        &format!("{}/deb/gone:1", registry.host()),
        &[],
        None,
    );
    skopeo_push(
        &layout.dir,
        "replaced",
        &format!("{}/deb/replaced:1", registry.host()),
        &[],
        None,
    );

    let (gone_inventory, _) = inventory_json(&format!("{}/deb/gone:1", registry.host()), &[]);
    let inventory = &gone_inventory[0];
    assert_eq!(inventory["os"]["ecosystem"], "Debian:12");
    assert!(
        inventory["packages"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["extractor"] != "os/dpkg"),
        "{inventory}"
    );
    assert_ne!(
        inventory["coverage"]["status"], "complete",
        "an image without packages is never clean: {inventory}"
    );

    let (replaced_inventory, _) =
        inventory_json(&format!("{}/deb/replaced:1", registry.host()), &[]);
    let packages = replaced_inventory[0]["packages"].as_array().unwrap();
    assert_eq!(packages.len(), 2, "{packages:?}");
    let kept = packages
        .iter()
        .find(|p| p["name"] == kept_name.as_str())
        .unwrap();
    let bumped = packages
        .iter()
        .find(|p| p["name"] == changed_name.as_str())
        .unwrap();
    assert_eq!(
        kept["layer_digest"],
        layers[0].as_str(),
        "unchanged package keeps the layer that introduced it"
    );
    assert_eq!(bumped["layer_digest"], layers[1].as_str());
    assert_eq!(bumped["version"], format!("{old_version}+vigil1"));
}

#[test]
fn corrupt_and_tampered_layers_make_the_image_partial_with_the_reason() {
    let registry = Registry::start();
    let work = tempfile::tempdir().unwrap();
    let mut layout = LayoutBuilder::new(&work.path().join("layout"));
    let base = base_files();

    // Real gzip magic and header, then damaged deflate data (skopeo would recompress a blob that is not
    // gzip at all, so the damage has to sit inside a real gzip stream to reach the registry).
    let mut damaged = gzip(&tar_bytes(&[("srv/big", &[7u8; 100_000][..])]));
    let middle = damaged.len() / 2;
    for byte in &mut damaged[middle..middle + 16] {
        *byte ^= 0x5a;
    }
    let garbage = layout.blob(OCI_LAYER_GZIP, &damaged);
    let fake_diff = format!("sha256:{}", "0".repeat(64));
    let base_layer = {
        let tar = tar_bytes(&base);
        let diff = format!(
            "sha256:{}",
            hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&tar))
        );
        (layout.blob(OCI_LAYER_GZIP, &gzip(&tar)), diff)
    };
    let corrupt = layout.image_from_blobs(
        &[base_layer.clone(), (garbage, fake_diff)],
        "linux",
        "amd64",
        OCI_MANIFEST,
    );
    layout.tag(&corrupt, "corrupt");
    let top: &[(&str, &[u8])] = &[("srv/data", b"some application data")];
    let tampered = layout.image_with_layers(&[&base, top], "linux", "amd64", OCI_MANIFEST);
    layout.tag(&tampered, "tampered");
    skopeo_push(
        &layout.dir,
        "corrupt",
        &format!("{}/bad/corrupt:1", registry.host()),
        &[],
        None,
    );
    skopeo_push(
        &layout.dir,
        "tampered",
        &format!("{}/bad/tampered:1", registry.host()),
        &[],
        None,
    );

    let (corrupt_inventory, run) =
        inventory_json(&format!("{}/bad/corrupt:1", registry.host()), &[]);
    assert_eq!(run.code, 0);
    let coverage = &corrupt_inventory[0]["coverage"];
    assert_eq!(coverage["status"], "partial", "{coverage}");
    assert!(
        coverage["reason"].as_str().unwrap().contains("gzip"),
        "{coverage}"
    );
    assert_eq!(
        corrupt_inventory[0]["packages"].as_array().unwrap().len(),
        735,
        "lower layers still count"
    );

    // Overwrite the top layer in the registry's storage: the digest check while streaming catches it.
    let top_layer = &layer_digests(&layout, &tampered)[1];
    let data = registry.blob_data_path(top_layer);
    let mut bytes = std::fs::read(&data).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&data, bytes).unwrap();
    let (tampered_inventory, _) =
        inventory_json(&format!("{}/bad/tampered:1", registry.host()), &[]);
    let coverage = &tampered_inventory[0]["coverage"];
    assert_eq!(coverage["status"], "partial", "{coverage}");
    assert!(
        coverage["reason"]
            .as_str()
            .unwrap()
            .contains("digest mismatch"),
        "{coverage}"
    );

    // A tag that does not exist is a failure of the command, not an empty inventory.
    let missing = vigil(
        &[
            "inventory",
            &format!("{}/bad/none:1", registry.host()),
            "--insecure-http",
        ],
        &[],
    );
    assert_eq!(missing.code, 1);
    assert!(missing.stderr.contains("not found"), "{}", missing.stderr);
}

#[test]
fn the_bundled_layout_reports_coverage_for_every_image() {
    let layout = repo_root().join("examples/demo/layout");
    let image = |name: &str| format!("oci:{}:{name}", layout.display());
    let (debian, _) = inventory_json(&image("library/debian:12"), &[]);
    assert_eq!(debian[0]["packages"].as_array().unwrap().len(), 735);
    let (scratch, _) = inventory_json(&image("apps/scratch:1.0"), &[]);
    assert_eq!(scratch[0]["coverage"]["status"], "no-packages-found");
    assert!(scratch[0]["packages"].as_array().unwrap().is_empty());
    let table = vigil(&["inventory", &image("distroless/base:nonroot")], &[]);
    assert_eq!(table.code, 0, "{}", table.stderr);
    assert!(
        table
            .stdout
            .contains("libsqlite3-0  3.34.1-3  Debian:11  sqlite3"),
        "{}",
        table.stdout
    );
    assert!(table.stdout.contains("coverage: complete"));
}
