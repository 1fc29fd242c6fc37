//! Build script: embeds the bundled example images and advisory sample (`examples/demo/`), so `vigil
//! demo` runs with nothing but the binary, and the named reports (`queries/*.sql`).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn collect(dir: &Path, files: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect(&path, files);
        } else {
            files.push(path);
        }
    }
}

fn embed(
    out: &mut String,
    name: &str,
    kind: &str,
    base: &Path,
    files: &[PathBuf],
    value: &dyn Fn(&Path) -> String,
) {
    writeln!(out, "pub static {name}: &[(&str, {kind})] = &[").expect("write to a string");
    for file in files {
        let relative = file.strip_prefix(base).expect("under its folder");
        let relative = relative.to_string_lossy().replace('\\', "/");
        writeln!(out, "    ({relative:?}, {}),", value(file)).expect("write to a string");
    }
    out.push_str("];\n");
}

/// A file of the crate as the path expression the generated code includes: relative to the crate being
/// compiled, not an absolute path of this run, so a build directory shared by two checkouts never
/// embeds the other checkout's files.
fn in_crate(root: &Path, file: &Path) -> String {
    let relative = file.strip_prefix(root).expect("inside the crate");
    let relative = relative.to_string_lossy().replace('\\', "/");
    format!(
        "concat!(env!(\"CARGO_MANIFEST_DIR\"), {:?})",
        format!("/{relative}")
    )
}

fn main() {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").expect("set by cargo"));
    println!("cargo:rerun-if-changed=examples/demo");
    println!("cargo:rerun-if-changed=queries");

    let demo = root.join("examples/demo");
    let mut files = Vec::new();
    collect(&demo, &mut files);
    files.retain(|f| f.file_name().is_some_and(|n| n != "vigil.toml"));
    files.sort();
    let mut code =
        String::from("/// Files of `examples/demo`, relative to it, with their bytes.\n");
    embed(&mut code, "DEMO_FILES", "&[u8]", &demo, &files, &|f| {
        format!("include_bytes!({})", in_crate(&root, f))
    });
    std::fs::write(out_dir.join("demo_files.rs"), code).expect("write demo_files.rs");

    let queries = root.join("queries");
    let mut files = Vec::new();
    collect(&queries, &mut files);
    files.retain(|f| f.extension().is_some_and(|e| e == "sql"));
    files.sort();
    let mut code = String::from("/// The named reports of `queries/`: name (file stem) and SQL.\n");
    embed(&mut code, "REPORTS", "&str", &queries, &files, &|f| {
        format!("include_str!({})", in_crate(&root, f))
    });
    // Names are file stems.
    let code = code.replace(".sql\", include_str!", "\", include_str!");
    std::fs::write(out_dir.join("reports.rs"), code).expect("write reports.rs");
}
