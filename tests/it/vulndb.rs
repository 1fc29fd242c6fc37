//! Advisory DB integration tests: import from directories and zips, the content hash, the on-disk
//! format's corruption handling, and `update` against a real HTTP server on 127.0.0.1.

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};

use crate::common::shared_data;
use vigil::vulndb::{self, Database, DbError};

fn testdata() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/testdata/osv/records")
}

/// Writes every `.json` file of `dir` into a zip at `zip_path`, like osv.dev's `all.zip`.
fn zip_dir(dir: &Path, zip_path: &Path) {
    let file = fs::File::create(zip_path).unwrap();
    let mut writer = zip::ZipWriter::new(file);
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    let mut names: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    names.sort();
    for path in names {
        writer
            .start_file(path.file_name().unwrap().to_str().unwrap(), options)
            .unwrap();
        writer.write_all(&fs::read(&path).unwrap()).unwrap();
    }
    writer.finish().unwrap();
}

#[test]
fn imports_a_directory_and_reports_counts_hash_and_status() {
    let db_dir = tempfile::tempdir().unwrap();
    let report = vulndb::import(db_dir.path(), &[testdata()]).unwrap();
    // 7 AlmaLinux + 5 Debian + 2 Alpine + 7 crates.io + 4 PyPI + 2 Maven + 1 Ubuntu = 28 records, of
    // which RUSTSEC-2020-0053 is withdrawn.
    assert_eq!(report.records_read, 28);
    assert_eq!(report.withdrawn, 1);
    assert_eq!(report.advisories, 27);
    assert_eq!(report.invalid_records, 0);
    assert_eq!(report.counts_per_ecosystem["AlmaLinux:9"], 7);
    assert_eq!(report.counts_per_ecosystem["Debian:11"], 5);
    assert_eq!(report.counts_per_ecosystem["crates.io"], 6);
    // CVE-2019-1547 names Alpine v3.7 to v3.11; CVE-2018-0734 only v3.10 and v3.11 among others.
    assert_eq!(report.counts_per_ecosystem["Alpine:v3.11"], 2);
    assert!(report.content_hash.starts_with("sha256:"));

    let db = Database::open(db_dir.path()).unwrap();
    let status = db.status();
    assert_eq!(status.advisories, 27);
    assert_eq!(status.content_hash, report.content_hash);
    assert_eq!(status.counts_per_ecosystem, report.counts_per_ecosystem);
    assert!(chrono::DateTime::parse_from_rfc3339(&status.imported_at).is_ok());
    assert!(db.advisory("RUSTSEC-2020-0053").is_none(), "withdrawn");
    // AlmaLinux puts CVEs in `related`; they become aliases.
    assert_eq!(
        db.advisory("ALSA-2025:21926").unwrap().aliases,
        vec!["CVE-2025-39843"]
    );
    // Unknown-ecosystem and GIT details are dropped, not fatal: the PyPI records carry GIT ranges.
    let pip = db.advisory("PYSEC-2023-228").unwrap();
    assert!(pip.affected[0]
        .ranges
        .iter()
        .all(|r| r.kind != vulndb::RangeKind::Semver || !r.events.is_empty()));
}

#[test]
fn content_hash_ignores_file_order_and_container() {
    let work = tempfile::tempdir().unwrap();
    let first = work.path().join("a");
    let second = work.path().join("b");
    let from_dir = vulndb::import(&first, &[testdata()]).unwrap();
    // The same records from zips, in another order of sources.
    let mut zips = Vec::new();
    for ecosystem in [
        "Ubuntu",
        "PyPI",
        "Maven",
        "Debian",
        "crates.io",
        "Alpine",
        "AlmaLinux",
    ] {
        let zip_path = work.path().join(format!("{ecosystem}.zip"));
        zip_dir(&testdata().join(ecosystem), &zip_path);
        zips.push(zip_path);
    }
    let from_zips = vulndb::import(&second, &zips).unwrap();
    assert_eq!(from_dir.content_hash, from_zips.content_hash);
    assert_eq!(from_dir.advisories, from_zips.advisories);

    // Any change in content changes the hash.
    let third = work.path().join("c");
    let less = vulndb::import(&third, &zips[1..]).unwrap();
    assert_ne!(less.content_hash, from_dir.content_hash);
}

#[test]
fn invalid_records_are_counted_not_fatal_and_empty_imports_keep_the_old_db() {
    let work = tempfile::tempdir().unwrap();
    let source = work.path().join("src");
    fs::create_dir(&source).unwrap();
    fs::copy(
        testdata().join("PyPI/PYSEC-2023-228.json"),
        source.join("good.json"),
    )
    .unwrap();
    fs::write(
        source.join("broken.json"),
        b"{\"id\": \"X\", \"affected\": [",
    )
    .unwrap();
    fs::write(source.join("binary.json"), [0xff, 0xfe, 0x00, 0x80]).unwrap();
    fs::write(source.join("noid.json"), b"{\"summary\": \"no id\"}").unwrap();
    let db_dir = work.path().join("db");
    let report = vulndb::import(&db_dir, std::slice::from_ref(&source)).unwrap();
    assert_eq!(report.advisories, 1);
    assert_eq!(report.invalid_records, 3);
    assert_eq!(report.invalid_examples.len(), 3);
    assert!(report
        .invalid_examples
        .iter()
        .any(|e| e.contains("broken.json")));
    let hash = report.content_hash;

    // Nothing usable: error, and the previous DB is untouched.
    let empty = work.path().join("empty");
    fs::create_dir(&empty).unwrap();
    fs::write(empty.join("bad.json"), b"not json").unwrap();
    let err = vulndb::import(&db_dir, &[empty]).unwrap_err();
    assert!(matches!(err, DbError::Empty { .. }), "{err}");
    assert_eq!(Database::open(&db_dir).unwrap().content_hash(), hash);

    // A source that is neither a directory, .json nor .zip.
    let other = work.path().join("x.txt");
    fs::write(&other, b"x").unwrap();
    assert!(matches!(
        vulndb::import(&db_dir, &[other]).unwrap_err(),
        DbError::UnsupportedSource { .. }
    ));
    // A path that does not exist.
    assert!(matches!(
        vulndb::import(&db_dir, &[work.path().join("missing")]).unwrap_err(),
        DbError::Io { .. }
    ));
}

#[test]
fn oversized_records_are_refused_without_reading_them() {
    let work = tempfile::tempdir().unwrap();
    let source = work.path().join("src");
    fs::create_dir(&source).unwrap();
    fs::copy(
        testdata().join("PyPI/PYSEC-2023-228.json"),
        source.join("good.json"),
    )
    .unwrap();
    // A sparse file: huge on paper, no disk used.
    let huge = fs::File::create(source.join("huge.json")).unwrap();
    huge.set_len(vulndb::MAX_RECORD_BYTES + 1).unwrap();
    let report = vulndb::import(&work.path().join("db"), &[source]).unwrap();
    assert_eq!(report.advisories, 1);
    assert_eq!(report.invalid_records, 1);
    assert!(report.invalid_examples[0].contains("record limit"));
}

#[test]
fn truncated_or_corrupt_zips_fail_the_import_and_keep_the_old_db() {
    let work = tempfile::tempdir().unwrap();
    let db_dir = work.path().join("db");
    let good = vulndb::import(&db_dir, &[testdata().join("PyPI")]).unwrap();

    let zip_path = work.path().join("all.zip");
    zip_dir(&testdata().join("AlmaLinux"), &zip_path);
    let bytes = fs::read(&zip_path).unwrap();
    let truncated = work.path().join("truncated.zip");
    fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    let err = vulndb::import(&db_dir, &[truncated]).unwrap_err();
    assert!(matches!(err, DbError::Zip { .. }), "{err}");

    // Flip bytes inside the first entry's compressed data: the CRC check must catch it.
    let mut damaged = bytes.clone();
    for byte in &mut damaged[100..140] {
        *byte ^= 0x5a;
    }
    let damaged_path = work.path().join("damaged.zip");
    fs::write(&damaged_path, &damaged).unwrap();
    let err = vulndb::import(&db_dir, &[damaged_path]).unwrap_err();
    assert!(
        matches!(err, DbError::ZipEntry { .. } | DbError::Zip { .. }),
        "{err}"
    );

    let not_zip = work.path().join("text.zip");
    fs::write(&not_zip, b"this is not a zip archive at all").unwrap();
    assert!(matches!(
        vulndb::import(&db_dir, &[not_zip]).unwrap_err(),
        DbError::Zip { .. }
    ));
    assert_eq!(
        Database::open(&db_dir).unwrap().content_hash(),
        good.content_hash
    );
}

#[test]
fn damaged_db_files_give_clear_errors() {
    let work = tempfile::tempdir().unwrap();
    let db_dir = work.path().join("db");
    assert!(matches!(
        Database::open(&db_dir).unwrap_err(),
        DbError::NotFound { .. }
    ));
    vulndb::import(&db_dir, &[testdata().join("crates.io")]).unwrap();
    let path = vulndb::db_path(&db_dir);
    let bytes = fs::read(&path).unwrap();

    fs::write(&path, &bytes[..bytes.len() - 10]).unwrap();
    let err = Database::open(&db_dir).unwrap_err();
    assert!(matches!(err, DbError::Corrupt { .. }), "{err}");
    assert!(err.to_string().contains("truncated"));

    let mut flipped = bytes.clone();
    let last = flipped.len() - 1;
    flipped[last] ^= 1;
    fs::write(&path, &flipped).unwrap();
    let err = Database::open(&db_dir).unwrap_err();
    assert!(err.to_string().contains("checksum"), "{err}");

    // A header announcing absurd lengths must not allocate them.
    let mut lying = bytes.clone();
    lying[12..20].copy_from_slice(&u64::MAX.to_le_bytes());
    fs::write(&path, &lying).unwrap();
    assert!(matches!(
        Database::open(&db_dir).unwrap_err(),
        DbError::Corrupt { .. }
    ));

    let mut newer = bytes.clone();
    newer[8..12].copy_from_slice(&999u32.to_le_bytes());
    fs::write(&path, &newer).unwrap();
    assert!(matches!(
        Database::open(&db_dir).unwrap_err(),
        DbError::IncompatibleFormat { found: 999, .. }
    ));

    fs::write(&path, b"garbage").unwrap();
    assert!(matches!(
        Database::open(&db_dir).unwrap_err(),
        DbError::Corrupt { .. }
    ));
    // No temp files are left behind by the imports.
    let leftovers: Vec<_> = fs::read_dir(&db_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n != vulndb::DB_FILE_NAME)
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

/// A minimal real HTTP/1.1 server on 127.0.0.1:0 serving files from `root`. Paths under `/error500/`
/// answer 500; paths under `/cut/` announce the full length but close after half the body.
struct FileServer {
    base_url: String,
}

impl FileServer {
    fn start(root: PathBuf) -> FileServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let root = root.clone();
                std::thread::spawn(move || serve(stream, &root));
            }
        });
        FileServer {
            base_url: format!("http://127.0.0.1:{port}"),
        }
    }
}

fn serve(mut stream: TcpStream, root: &Path) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return;
    }
    loop {
        let mut header = String::new();
        match reader.read_line(&mut header) {
            Ok(0) | Err(_) => break,
            Ok(_) if header == "\r\n" => break,
            Ok(_) => {}
        }
    }
    let path = request_line.split(' ').nth(1).unwrap_or("/").to_string();
    let respond = |stream: &mut TcpStream, status: &str, body: &[u8], send: usize| {
        let head = format!(
            "HTTP/1.1 {status}\r\nContent-Length: {}\r\nContent-Type: application/zip\r\nConnection: close\r\n\r\n",
            body.len()
        );
        let _ = stream.write_all(head.as_bytes());
        let _ = stream.write_all(&body[..send]);
        let _ = stream.flush();
    };
    if path.starts_with("/error500/") {
        respond(&mut stream, "500 Internal Server Error", b"boom", 4);
        return;
    }
    let (cut, relative) = match path.strip_prefix("/cut/") {
        Some(rest) => (true, rest.to_string()),
        None => (false, path.trim_start_matches('/').to_string()),
    };
    let relative = relative.replace("%20", " ");
    match fs::File::open(root.join(&relative)) {
        Ok(mut file) => {
            let mut body = Vec::new();
            file.read_to_end(&mut body).unwrap();
            let send = if cut { body.len() / 2 } else { body.len() };
            respond(&mut stream, "200 OK", &body, send);
        }
        Err(_) => respond(&mut stream, "404 Not Found", b"", 0),
    }
}

#[tokio::test]
async fn update_downloads_zips_and_keeps_the_last_good_db_on_any_failure() {
    let work = tempfile::tempdir().unwrap();
    let served = work.path().join("served");
    for ecosystem in ["PyPI", "crates.io"] {
        fs::create_dir_all(served.join(ecosystem)).unwrap();
        zip_dir(
            &testdata().join(ecosystem),
            &served.join(ecosystem).join("all.zip"),
        );
    }
    // A truncated export served in full with a correct length: the download succeeds, the import fails.
    fs::create_dir_all(served.join("Maven")).unwrap();
    let bytes = fs::read(served.join("PyPI/all.zip")).unwrap();
    fs::write(served.join("Maven/all.zip"), &bytes[..bytes.len() - 30]).unwrap();
    let server = FileServer::start(served.clone());
    let db_dir = work.path().join("db");
    let ecosystems = |names: &[&str]| names.iter().map(|s| s.to_string()).collect::<Vec<_>>();

    let report = vulndb::update(
        &db_dir,
        &server.base_url,
        &ecosystems(&["PyPI", "crates.io"]),
    )
    .await
    .unwrap();
    assert_eq!(report.advisories, 4 + 6);
    let good_hash = report.content_hash.clone();
    let status = Database::open(&db_dir).unwrap().status();
    assert_eq!(status.content_hash, good_hash);
    assert!(status.sources[0].ends_with("/PyPI/all.zip"));

    // 500 from the server.
    let err = vulndb::update(
        &db_dir,
        &format!("{}/error500", server.base_url),
        &ecosystems(&["PyPI"]),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(err, DbError::HttpStatus { status: 500, .. }),
        "{err}"
    );
    // 404 for an ecosystem the server does not have.
    let err = vulndb::update(&db_dir, &server.base_url, &ecosystems(&["PyPI", "Go"]))
        .await
        .unwrap_err();
    assert!(
        matches!(err, DbError::HttpStatus { status: 404, .. }),
        "{err}"
    );
    // The connection closes mid-body.
    let err = vulndb::update(
        &db_dir,
        &format!("{}/cut", server.base_url),
        &ecosystems(&["PyPI"]),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, DbError::Download { .. }), "{err}");
    // A complete download of a truncated zip.
    let err = vulndb::update(&db_dir, &server.base_url, &ecosystems(&["PyPI", "Maven"]))
        .await
        .unwrap_err();
    assert!(matches!(err, DbError::Zip { .. }), "{err}");
    // Nothing listens here any more.
    let closed = TcpListener::bind("127.0.0.1:0").unwrap();
    let closed_url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    assert!(vulndb::update(&db_dir, &closed_url, &ecosystems(&["PyPI"]))
        .await
        .is_err());

    // After every failure the last good DB is still the one in use, and no staging files remain.
    assert_eq!(Database::open(&db_dir).unwrap().content_hash(), good_hash);
    let leftovers: Vec<_> = fs::read_dir(&db_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n != vulndb::DB_FILE_NAME)
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn imports_the_full_shared_sample_when_present() {
    let Some(osv) = shared_data("osv") else {
        return;
    };
    let db_dir = tempfile::tempdir().unwrap();
    let report = vulndb::import(
        db_dir.path(),
        &[osv.clone(), osv.with_file_name("osv-converted")],
    )
    .unwrap();
    // The shared README: 13 crates.io, 7 Go, 6 PyPI and 3 Ubuntu records are withdrawn.
    assert_eq!(report.withdrawn, 13 + 7 + 6 + 3);
    assert_eq!(report.invalid_records, 0, "{:?}", report.invalid_examples);
    assert!(report.unknown_ecosystems.contains_key("NuGet"));
    assert!(report.advisories > 9_000);
    let db = Database::open(db_dir.path()).unwrap();
    assert_eq!(db.status().advisories, report.advisories);
}
