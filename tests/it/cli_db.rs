//! The advisory DB and matching through the `vigil` binary: `db import`, `db status`, `db update` from a
//! real local HTTP server, and `inventory | match` without a registry.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::Path;

use crate::common::*;
use serde_json::Value;

fn records() -> String {
    repo_root()
        .join("tests/testdata/osv/records")
        .display()
        .to_string()
}

/// Serves `files` (path -> body) over HTTP/1.1 on 127.0.0.1 until the listener is dropped; any other path
/// answers 500, so a failing download can be provoked by name.
fn serve(files: Vec<(String, Vec<u8>)>) -> (u16, std::thread::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let handle = std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { break };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut request_line = String::new();
            if reader.read_line(&mut request_line).is_err() {
                continue;
            }
            loop {
                let mut header = String::new();
                if reader.read_line(&mut header).unwrap_or(0) == 0 || header == "\r\n" {
                    break;
                }
            }
            let path = request_line
                .split_whitespace()
                .nth(1)
                .unwrap_or("")
                .to_string();
            if path == "/stop" {
                break;
            }
            match files.iter().find(|(p, _)| *p == path) {
                Some((_, body)) => {
                    let _ = write!(
                        stream,
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                        body.len()
                    );
                    let _ = stream.write_all(body);
                }
                None => {
                    let _ = stream.write_all(b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
                }
            }
        }
    });
    (port, handle)
}

fn stop(port: u16, handle: std::thread::JoinHandle<()>) {
    if let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) {
        let _ = stream.write_all(b"GET /stop HTTP/1.1\r\n\r\n");
        let mut sink = Vec::new();
        let _ = stream.read_to_end(&mut sink);
    }
    let _ = handle.join();
}

/// A zip of every JSON file under `dir`, as osv.dev exports them.
fn zip_dir(dir: &Path) -> Vec<u8> {
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        writer
            .start_file(path.file_name().unwrap().to_string_lossy(), options)
            .unwrap();
        writer.write_all(&std::fs::read(&path).unwrap()).unwrap();
    }
    writer.finish().unwrap().into_inner()
}

#[test]
fn import_status_and_match_through_the_cli() {
    let work = tempfile::tempdir().unwrap();
    let db = work.path().join("db");
    let db_arg = db.to_str().unwrap();
    let import = vigil(&["db", "import", &records(), "--db", db_arg], &[]);
    assert_eq!(import.code, 0, "{}", import.stderr);
    assert!(import.stdout.starts_with("imported "), "{}", import.stdout);

    let status = vigil(&["db", "status", "--db", db_arg, "--format", "json"], &[]);
    assert_eq!(status.code, 0, "{}", status.stderr);
    let status: Value = serde_json::from_str(&status.stdout).unwrap();
    let hash = status["content_hash"].as_str().unwrap().to_string();
    assert!(hash.starts_with("sha256:"), "{hash}");
    assert!(
        status["counts_per_ecosystem"]["Debian:11"]
            .as_u64()
            .unwrap()
            >= 4
    );

    // An inventory of a Debian 11 image holding libssl1.1 from openssl 1.1.1n-0+deb11u3: DSA-5343-1 fixed
    // deb11u4 (a finding); DSA-5169-1 fixed exactly deb11u3 (not one).
    let inventory = serde_json::json!({
        "image": "example/debian:11",
        "os": {"id": "debian", "version_id": "11", "ecosystem": "Debian:11"},
        "packages": [{
            "name": "libssl1.1", "version": "1.1.1n-0+deb11u3", "package_type": "os",
            "source_name": "openssl", "source_version": "1.1.1n-0+deb11u3",
            "extractor": "os/dpkg", "location": "var/lib/dpkg/status"
        }],
        "coverage": {"status": "complete", "reason": ""}
    });
    let inventory_path = work.path().join("inventory.json");
    std::fs::write(&inventory_path, inventory.to_string()).unwrap();
    let inventory_arg = inventory_path.to_str().unwrap();
    let matched = vigil(
        &[
            "match",
            "--inventory",
            inventory_arg,
            "--db",
            db_arg,
            "--format",
            "json",
        ],
        &[],
    );
    assert_eq!(matched.code, 0, "{}", matched.stderr);
    let output: Value = serde_json::from_str(&matched.stdout).unwrap();
    let ids: Vec<&str> = output["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["DSA-5343-1"]);
    assert_eq!(output["findings"][0]["db_content_hash"], hash.as_str());
    assert_eq!(output["findings"][0]["fixed_version"], "1.1.1n-0+deb11u4");

    let table = vigil(
        &["match", "--inventory", inventory_arg, "--db", db_arg],
        &[],
    );
    assert_eq!(table.code, 0);
    assert!(table.stdout.lines().next().unwrap().starts_with("ID"));
    assert!(table.stdout.contains("DSA-5343-1"), "{}", table.stdout);
    assert!(table.stdout.contains("1.1.1n-0+deb11u4"));

    // `inventory --format json` feeds `match` directly; an image of unknown coverage is flagged on stderr.
    let layout = repo_root().join("examples/demo/layout");
    let scratch = vigil(
        &[
            "inventory",
            &format!("oci:{}:apps/scratch:1.0", layout.display()),
            "--format",
            "json",
        ],
        &[],
    );
    assert_eq!(scratch.code, 0, "{}", scratch.stderr);
    std::fs::write(&inventory_path, &scratch.stdout).unwrap();
    let matched = vigil(
        &["match", "--inventory", inventory_arg, "--db", db_arg],
        &[],
    );
    assert_eq!(matched.code, 0, "{}", matched.stderr);
    assert!(
        matched.stderr.contains("coverage no-packages-found"),
        "{}",
        matched.stderr
    );

    // Bad input: clear errors, usage exit 2 for an unreadable inventory, 1 for a missing DB.
    std::fs::write(&inventory_path, "{\"not\": \"an inventory\"}").unwrap();
    let bad = vigil(
        &["match", "--inventory", inventory_arg, "--db", db_arg],
        &[],
    );
    assert_eq!(bad.code, 2);
    assert!(
        bad.stderr.contains("is not a vigil inventory"),
        "{}",
        bad.stderr
    );
    let missing = vigil(
        &[
            "db",
            "status",
            "--db",
            work.path().join("none").to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(missing.code, 1);
}

#[test]
fn db_update_swaps_in_only_a_complete_download() {
    let work = tempfile::tempdir().unwrap();
    let db = work.path().join("db");
    let db_arg = db.to_str().unwrap();
    let debian = zip_dir(&repo_root().join("tests/testdata/osv/records/Debian"));
    let alpine = zip_dir(&repo_root().join("tests/testdata/osv/records/Alpine"));
    let truncated = debian[..debian.len() / 2].to_vec();
    let (port, server) = serve(vec![
        ("/Debian/all.zip".into(), debian),
        ("/Alpine/all.zip".into(), alpine),
        ("/Broken/all.zip".into(), truncated),
    ]);
    let source = format!("http://127.0.0.1:{port}");

    let good = vigil(
        &[
            "db",
            "update",
            "--db",
            db_arg,
            "--source",
            &source,
            "--ecosystem",
            "Debian",
            "--ecosystem",
            "Alpine",
        ],
        &[],
    );
    assert_eq!(good.code, 0, "{}", good.stderr);
    let status = |db_arg: &str| -> Value {
        let run = vigil(&["db", "status", "--db", db_arg, "--format", "json"], &[]);
        assert_eq!(run.code, 0, "{}", run.stderr);
        serde_json::from_str(&run.stdout).unwrap()
    };
    let before = status(db_arg);
    assert!(before["sources"]
        .as_array()
        .unwrap()
        .iter()
        .any(|s| s.as_str().unwrap().ends_with("/Alpine/all.zip")));

    // A truncated zip, then a 500: both fail with exit 1 and the last good DB stays.
    for ecosystem in ["Broken", "Missing"] {
        let bad = vigil(
            &[
                "db",
                "update",
                "--db",
                db_arg,
                "--source",
                &source,
                "--ecosystem",
                "Debian",
                "--ecosystem",
                ecosystem,
            ],
            &[],
        );
        assert_eq!(bad.code, 1, "{ecosystem}: {}", bad.stderr);
        assert!(bad.stderr.starts_with("error: "), "{}", bad.stderr);
        assert_eq!(
            status(db_arg),
            before,
            "{ecosystem}: the last good DB must stay"
        );
    }
    stop(port, server);
}
