//! Build script: embeds the bundled example images and advisory sample (`examples/demo/`) into the binary,
//! so `vigil demo` runs from anywhere, with nothing but the binary.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn collect(root: &Path, dir: &Path, files: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect(root, &path, files);
        } else if path.file_name().is_some_and(|n| n != "vigil.toml") {
            files.push(path);
        }
    }
}

fn main() {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let demo = root.join("examples/demo");
    println!("cargo:rerun-if-changed=examples/demo");
    let mut files = Vec::new();
    collect(&demo, &demo, &mut files);
    files.sort();
    let mut code = String::from("/// Files of `examples/demo`, relative to it, with their bytes.\npub static DEMO_FILES: &[(&str, &[u8])] = &[\n");
    for file in &files {
        let relative = file.strip_prefix(&demo).expect("under examples/demo");
        let relative = relative.to_string_lossy().replace('\\', "/");
        writeln!(code, "    ({relative:?}, include_bytes!({:?})),", file.display().to_string())
            .expect("write to a string");
    }
    code.push_str("];\n");
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("set by cargo")).join("demo_files.rs");
    std::fs::write(out, code).expect("write demo_files.rs");
}
