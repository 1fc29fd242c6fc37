//! Benchmark for the extract stage's cost inside the layer walk: one generated layer of 5 000 small
//! files of mixed types (Python modules and metadata, node_modules manifests and scripts, jars, text,
//! ELF-ish executables, plus real fixture files: a Debian status file, a Go binary, lock files) walked
//! with every extractor and with the OS extractors only. The budget: all extractors add no
//! more than 10% to the walk.
//!
//! Run with `cargo bench --bench extract_overhead`. Runs of the two configurations are interleaved and
//! the best of each is kept, so load on a shared machine falls on both alike.

use std::hint::black_box;
use std::io::{Cursor, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use vigil::extract::{self, Extractor};
use vigil::layer::{walk, Limits};
use vigil::model::Digest;

const FILES: usize = 5_000;
const ROUNDS: usize = 21;

fn fixture(relative: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/testdata/fixtures")
        .join(relative);
    std::fs::read(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

/// Deterministic filler so runs are comparable (xorshift; no dependency needed).
fn filler(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            b"abcdefghijklmnopqrstuvwxyz0123456789 \n"[(state % 38) as usize]
        })
        .collect()
}

fn small_jar(index: usize) -> Vec<u8> {
    let mut writer = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default();
    writer
        .start_file(
            format!("META-INF/maven/org.example/lib{index}/pom.properties"),
            options,
        )
        .unwrap();
    write!(
        writer,
        "groupId=org.example\nartifactId=lib{index}\nversion=1.{index}.0\n"
    )
    .unwrap();
    writer.start_file("org/example/A.class", options).unwrap();
    writer.write_all(&filler(index as u64, 1500)).unwrap();
    writer.finish().unwrap().into_inner()
}

/// An executable-looking file: an ELF64 header with no program or section headers, then filler, so
/// the binary extractors open it, find nothing and move on, as for most of `/usr/bin`.
fn elfish(index: usize) -> Vec<u8> {
    let mut data = vec![0u8; 64];
    data[..4].copy_from_slice(b"\x7fELF");
    data[4] = 2;
    data[5] = 1;
    data.extend(filler(index as u64 + 7, 3000 + index % 2000));
    data
}

fn build_layer() -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    let mut add = |path: &str, mode: u32, data: &[u8]| {
        let mut header = tar::Header::new_gnu();
        header.set_mode(mode);
        header.set_mtime(1_700_000_000);
        header.set_entry_type(tar::EntryType::Regular);
        header.set_size(data.len() as u64);
        builder.append_data(&mut header, path, data).unwrap();
    };
    let mut count = 0usize;
    // Real files first: what a Debian-based app image holds.
    add(
        "etc/os-release",
        0o644,
        &fixture("dpkg/debian12-bookworm-real/os-release"),
    );
    add(
        "var/lib/dpkg/status",
        0o644,
        &fixture("dpkg/debian12-bookworm-real/var/lib/dpkg/status"),
    );
    add(
        "app/server",
        0o755,
        &fixture("go-binary/scalibr-module-replacement-linux-amd64/binary_with_module_replacement-linux-amd64"),
    );
    add(
        "src/app/Cargo.lock",
        0o644,
        &fixture("cargo-lock/ripgrep-real/Cargo.lock"),
    );
    add(
        "srv/web/package-lock.json",
        0o644,
        &fixture("package-lock/scalibr-nested-dependencies-dup.v1/package-lock.json"),
    );
    count += 5;
    let metadata = fixture(
        "python-metadata/real-site-packages/site-packages/requests-2.34.2.dist-info/METADATA",
    );
    let mut index = 0usize;
    while count < FILES {
        let data;
        // Per 40 files, roughly what an application image's directories hold: a dist-info METADATA
        // per dozen Python modules, a package.json per few scripts in node_modules, one jar, and a
        // tenth of the files executable (the OS-only walk claims none of these).
        let (path, mode, bytes): (String, u32, &[u8]) = match index % 40 {
            0..=11 => {
                data = filler(index as u64, 1200);
                (
                    format!("usr/lib/python3/dist-packages/pkg{index}/mod.py"),
                    0o644,
                    &data,
                )
            }
            12 => (
                format!(
                    "usr/local/lib/python3.11/site-packages/dist{index}-1.0.dist-info/METADATA"
                ),
                0o644,
                &metadata,
            ),
            13 | 14 => {
                data = format!(
                    "{{\"name\":\"pkg{index}\",\"version\":\"1.0.{index}\",\"main\":\"index.js\",\"license\":\"MIT\"}}"
                )
                .into_bytes();
                (
                    format!("srv/web/node_modules/pkg{index}/package.json"),
                    0o644,
                    &data,
                )
            }
            15..=22 => {
                data = filler(index as u64, 2000);
                (
                    format!("srv/web/node_modules/pkg{index}/lib/index.js"),
                    0o644,
                    &data,
                )
            }
            23 => {
                data = small_jar(index);
                (format!("opt/app/lib/lib{index}.jar"), 0o644, &data)
            }
            24..=35 => {
                data = filler(index as u64, 800);
                (format!("usr/share/doc/pkg{index}/README"), 0o644, &data)
            }
            _ => {
                data = elfish(index);
                (format!("usr/bin/tool{index}"), 0o755, &data)
            }
        };
        add(&path, mode, bytes);
        count += 1;
        index += 1;
    }
    builder.into_inner().unwrap()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

fn time_walk(blob: &[u8], media_type: &str, extractors: &[&'static dyn Extractor]) -> Duration {
    let digest = Digest::sha256_of(blob);
    let start = Instant::now();
    let inventory = walk(blob, media_type, &digest, extractors, &Limits::default()).unwrap();
    let elapsed = start.elapsed();
    assert!(inventory.errors.is_empty());
    black_box(inventory);
    elapsed
}

fn main() {
    let tar = build_layer();
    let gz = gzip(&tar);
    // `EXTRACT_OVERHEAD_ONCE=os|all` walks the gzip layer once with that extractor set and exits, for
    // `benches/extract_overhead.sh`, which counts the walk's instructions under callgrind: a figure that
    // does not move with the load other processes put on the machine.
    if let Ok(mode) = std::env::var("EXTRACT_OVERHEAD_ONCE") {
        let extractors = if mode == "all" {
            extract::all()
        } else {
            extract::os_only()
        };
        let elapsed = time_walk(
            &gz,
            "application/vnd.oci.image.layer.v1.tar+gzip",
            extractors,
        );
        println!("{mode}: one walk in {:.2} ms", elapsed.as_secs_f64() * 1e3);
        return;
    }
    println!(
        "layer: {FILES} files, {:.1} MiB tar, {:.1} MiB gzip; best of {ROUNDS} interleaved rounds",
        tar.len() as f64 / 1048576.0,
        gz.len() as f64 / 1048576.0
    );
    for (label, blob, media_type) in [
        (
            "tar+gzip",
            &gz,
            "application/vnd.oci.image.layer.v1.tar+gzip",
        ),
        ("plain tar", &tar, "application/vnd.oci.image.layer.v1.tar"),
    ] {
        let mut os_best = Duration::MAX;
        let mut all_best = Duration::MAX;
        for _ in 0..ROUNDS {
            os_best = os_best.min(time_walk(blob, media_type, extract::os_only()));
            all_best = all_best.min(time_walk(blob, media_type, extract::all()));
        }
        println!(
            "{label:>9}: OS extractors only {:>8.2} ms | all extractors {:>8.2} ms | ratio {:.3}",
            os_best.as_secs_f64() * 1e3,
            all_best.as_secs_f64() * 1e3,
            all_best.as_secs_f64() / os_best.as_secs_f64()
        );
        // Where the difference goes: each language/binary extractor added alone to the OS ones.
        let os_only = extract::os_only();
        for extra in &extract::all()[os_only.len()..] {
            let mut list = os_only.to_vec();
            list.push(*extra);
            let best = (0..ROUNDS / 3)
                .map(|_| time_walk(blob, media_type, &list))
                .min()
                .unwrap();
            println!(
                "{:>28}: +{:>6.2} ms",
                extra.name(),
                (best.as_secs_f64() - os_best.as_secs_f64()) * 1e3
            );
        }
    }
}
