//! Layer walk benchmark: builds a large, realistically compressible gzip layer once (mixed source-like
//! text and binary-like files around a real dpkg status), then times Vigil's layer walk against a bare
//! inflate of the same file with the same inflater, so the walk's own overhead is visible.
//!
//! `cargo bench --bench layer_walk` builds (or reuses) the default layer and prints both times.
//! `benches/layer_ratio.sh` drives the sub-commands below to compare with GNU gzip and to measure RSS:
//!   layer_walk build SIZE_MIB PATH   build the layer with about SIZE_MIB MiB of uncompressed content
//!   layer_walk walk PATH             one walk with the real extractors
//!   layer_walk inflate PATH          one bare inflate into a sink

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use vigil::layer::{self, Limits};
use vigil::model::Digest;

const GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
const DEFAULT_SIZE_MIB: u64 = 112;

/// A small deterministic generator (xorshift64*), so the same layer comes out on every machine.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const WORDS: &[&str] = &[
    "fn", "let", "mut", "return", "if", "else", "match", "struct", "impl", "pub", "use", "self",
    "config", "buffer", "error", "result", "value", "index", "length", "package", "version",
    "layer", "digest", "registry", "manifest", "stream", "reader", "writer", "handle", "request",
    "response", "{", "}", "(", ")", ";", "=", "->", "&", "0", "1", "42", "\"text\"", "// note:",
    "#include", "static", "const", "void", "int", "char", "while", "for", "break", "continue",
    "null", "true",
];

/// Source-like text: compresses roughly 4:1, like the scripts, docs and configs of a real image.
fn text_file(rng: &mut Rng, size: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(size + 64);
    let mut column = 0;
    while out.len() < size {
        let word = WORDS[rng.below(WORDS.len() as u64) as usize];
        out.extend_from_slice(word.as_bytes());
        column += word.len() + 1;
        if column > 60 + rng.below(40) as usize {
            out.push(b'\n');
            let indent = rng.below(4) as usize * 4;
            out.extend(std::iter::repeat_n(b' ', indent));
            column = 0;
        } else {
            out.push(b' ');
        }
    }
    out.truncate(size);
    out
}

/// Binary-like data: runs of noise between zero padding and repeated tables, about 1.5:1 like
/// executables and shared libraries.
fn binary_file(rng: &mut Rng, size: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(size + 4096);
    while out.len() < size {
        let run = 256 + rng.below(4096) as usize;
        match rng.below(10) {
            0..=5 => out.extend((0..run).map(|_| rng.next() as u8)),
            6 | 7 => out.extend(std::iter::repeat_n(0u8, run)),
            _ => {
                let table: Vec<u8> = (0..16).map(|_| rng.next() as u8).collect();
                out.extend(table.iter().cycle().take(run));
            }
        }
    }
    out.truncate(size);
    out
}

fn append(builder: &mut tar::Builder<impl Write>, path: &str, data: &[u8]) {
    let mut header = tar::Header::new_gnu();
    header.set_size(data.len() as u64);
    header.set_mode(0o644);
    header.set_mtime(1_700_000_000);
    header.set_entry_type(tar::EntryType::Regular);
    builder
        .append_data(&mut header, path, data)
        .expect("append");
}

/// Writes a gzip layer with about `size_mib` MiB of content to `path` (via a temporary file, so an
/// interrupted build never leaves a half layer to be reused).
fn build_layer(size_mib: u64, path: &Path) {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let status = std::fs::read(manifest.join("tests/testdata/layer/debian12/var/lib/dpkg/status"))
        .expect("dpkg status test data");
    let os_release = std::fs::read(manifest.join("tests/testdata/layer/debian12/os-release"))
        .expect("os-release");
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).expect("layer dir");
    }
    let partial = path.with_extension("partial");
    let file = BufWriter::new(File::create(&partial).expect("create layer"));
    let encoder = flate2::write::GzEncoder::new(file, flate2::Compression::new(6));
    let mut builder = tar::Builder::new(encoder);
    append(&mut builder, "etc/os-release", &os_release);
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ size_mib);
    let target = size_mib * 1024 * 1024;
    let mut written = 0u64;
    let mut index = 0u64;
    while written < target {
        let size = (1024 + rng.below(1 << 20) * rng.below(3)) as usize;
        let (path, data) = if rng.below(2) == 0 {
            (
                format!("usr/share/doc/pkg{}/file{index}.txt", index % 97),
                text_file(&mut rng, size),
            )
        } else {
            (
                format!("usr/lib/x86_64-linux-gnu/lib{index}.so"),
                binary_file(&mut rng, size),
            )
        };
        append(&mut builder, &path, &data);
        written += data.len() as u64;
        index += 1;
        if index == 50 {
            // The package database sits in the middle, as in real layers.
            append(&mut builder, "var/lib/dpkg/status", &status);
        }
    }
    let encoder = builder.into_inner().expect("finish tar");
    let mut file = encoder.finish().expect("finish gzip");
    file.flush().expect("flush layer");
    drop(file);
    std::fs::rename(&partial, path).expect("rename layer");
}

fn default_layer_path(size_mib: u64) -> PathBuf {
    let base = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    base.join("vigil-bench")
        .join(format!("layer-{size_mib}mib.tar.gz"))
}

fn ensure_layer(size_mib: u64, path: &Path) {
    if !path.exists() {
        eprintln!("building {} ({size_mib} MiB of content)...", path.display());
        build_layer(size_mib, path);
    }
}

/// One walk; returns the time and the number of dpkg packages found (so the work cannot be skipped).
fn walk_once(path: &Path) -> (Duration, usize) {
    let digest = Digest::sha256_of(path.to_string_lossy().as_bytes());
    let start = Instant::now();
    let file = File::open(path).expect("open layer");
    let inventory = layer::walk(
        file,
        GZIP,
        &digest,
        vigil::extract::all(),
        &Limits::default(),
    )
    .expect("walk");
    let elapsed = start.elapsed();
    let packages = inventory
        .files
        .iter()
        .filter_map(|file| match &file.result {
            Ok(vigil::extract::Extracted::Packages(packages)) => Some(packages.len()),
            _ => None,
        })
        .sum();
    (elapsed, packages)
}

fn inflate_once(path: &Path) -> (Duration, u64) {
    let start = Instant::now();
    let file = File::open(path).expect("open layer");
    let bytes = layer::decompress::inflate_to_sink(file).expect("inflate");
    (start.elapsed(), bytes)
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("build") => {
            let size: u64 = args
                .get(1)
                .and_then(|s| s.parse().ok())
                .expect("build SIZE_MIB PATH");
            let path = PathBuf::from(args.get(2).expect("build SIZE_MIB PATH"));
            ensure_layer(size, &path);
            println!("{}", path.display());
        }
        Some("walk") => {
            let (time, packages) = walk_once(Path::new(args.get(1).expect("walk PATH")));
            println!("walk {:.3} s, {packages} packages", time.as_secs_f64());
        }
        Some("inflate") => {
            let (time, bytes) = inflate_once(Path::new(args.get(1).expect("inflate PATH")));
            println!("inflate {:.3} s, {bytes} bytes", time.as_secs_f64());
        }
        // `cargo bench` passes `--bench`: run the default comparison.
        _ => {
            let path = default_layer_path(DEFAULT_SIZE_MIB);
            ensure_layer(DEFAULT_SIZE_MIB, &path);
            let compressed = std::fs::metadata(&path).expect("layer").len();
            let (_, uncompressed) = inflate_once(&path);
            // Interleaved, so load from other processes falls on both alike.
            let mut walks = Vec::new();
            let mut inflates = Vec::new();
            for _ in 0..5 {
                walks.push(walk_once(&path).0);
                inflates.push(inflate_once(&path).0);
            }
            let (walk, inflate) = (median(walks), median(inflates));
            println!(
                "layer {} : {:.1} MB gzip, {:.1} MB tar",
                path.display(),
                compressed as f64 / 1e6,
                uncompressed as f64 / 1e6
            );
            println!(
                "layer walk   median of 5: {:.3} s ({:.0} MB/s uncompressed)",
                walk.as_secs_f64(),
                uncompressed as f64 / 1e6 / walk.as_secs_f64()
            );
            println!(
                "bare inflate median of 5: {:.3} s ({:.0} MB/s uncompressed)",
                inflate.as_secs_f64(),
                uncompressed as f64 / 1e6 / inflate.as_secs_f64()
            );
            println!(
                "walk / inflate = {:.3}",
                walk.as_secs_f64() / inflate.as_secs_f64()
            );
        }
    }
}
