//! The bundled example images, built reproducibly from real package databases in tests/testdata: written
//! to `examples/demo/layout` by tests/it/demo.rs and pushed to a real registry by tests/it/scan.rs.

use std::path::Path;

use super::*;

const DEBIAN_STATUS: &[u8] = include_bytes!("../../testdata/demo/debian12-dpkg-status");
const DEBIAN_OS_RELEASE: &[u8] = include_bytes!("../../testdata/demo/debian12-os-release");
const ALPINE_INSTALLED: &[u8] = include_bytes!("../../testdata/demo/alpine318-apk-installed");
const DISTROLESS_SQLITE: &[u8] =
    include_bytes!("../../testdata/demo/distroless-status.d-libsqlite3-0");

const ALPINE_OS_RELEASE: &[u8] = b"NAME=\"Alpine Linux\"\nID=alpine\nVERSION_ID=3.18.0\nPRETTY_NAME=\"Alpine Linux v3.18\"\nHOME_URL=\"https://alpinelinux.org/\"\nBUG_REPORT_URL=\"https://gitlab.alpinelinux.org/alpine/aports/-/issues\"\n";
const DISTROLESS_OS_RELEASE: &[u8] = b"PRETTY_NAME=\"Distroless\"\nNAME=\"Debian GNU/Linux\"\nID=\"debian\"\nVERSION_ID=\"11\"\nVERSION=\"Debian GNU/Linux 11 (bullseye)\"\nHOME_URL=\"https://github.com/GoogleContainerTools/distroless\"\n";

/// Writes the demo images into a layout at `dir`, naming each `name(repository, tag)` in index.json.
pub fn build_demo(dir: &Path, name: &dyn Fn(&str, &str) -> String) {
    let mut layout = LayoutBuilder::new(dir);
    let debian = layout.image(
        &[
            ("etc/os-release", DEBIAN_OS_RELEASE),
            ("var/lib/dpkg/status", DEBIAN_STATUS),
        ],
        "linux",
        "amd64",
    );
    layout.tag(&debian, &name("library/debian", "12"));
    let alpine = layout.image(
        &[
            ("etc/os-release", ALPINE_OS_RELEASE),
            ("lib/apk/db/installed", ALPINE_INSTALLED),
        ],
        "linux",
        "amd64",
    );
    layout.tag(&alpine, &name("library/alpine", "3.18"));
    let distroless = layout.image(
        &[
            ("etc/os-release", DISTROLESS_OS_RELEASE),
            ("var/lib/dpkg/status.d/libsqlite3-0", DISTROLESS_SQLITE),
        ],
        "linux",
        "arm64",
    );
    layout.tag(&distroless, &name("distroless/base", "nonroot"));
    let scratch = layout.image(
        &[("app/hello.txt", b"hello from scratch\n")],
        "linux",
        "amd64",
    );
    layout.tag(&scratch, &name("apps/scratch", "1.0"));
    // Application images whose language packages the bundled advisory sample has findings for.
    let site_packages = repo_root()
        .join("tests/testdata/fixtures/python-metadata/real-site-packages/site-packages");
    let mut metadata: Vec<(String, Vec<u8>)> = std::fs::read_dir(&site_packages)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|dir| dir.join("METADATA").is_file())
        .map(|dir| {
            let name = dir.file_name().unwrap().to_string_lossy().into_owned();
            (
                format!("usr/local/lib/python3.11/site-packages/{name}/METADATA"),
                std::fs::read(dir.join("METADATA")).unwrap(),
            )
        })
        .collect();
    metadata.sort();
    // Both application images sit on the Debian image's base layer, as real images share a base.
    let base: &[(&str, &[u8])] = &[
        ("etc/os-release", DEBIAN_OS_RELEASE),
        ("var/lib/dpkg/status", DEBIAN_STATUS),
    ];
    let python_files: Vec<(&str, &[u8])> = metadata
        .iter()
        .map(|(p, c)| (p.as_str(), c.as_slice()))
        .collect();
    let python = layout.image_with_layers(&[base, &python_files], "linux", "amd64", OCI_MANIFEST);
    layout.tag(&python, &name("apps/python-web", "1.4"));
    let go_binary = std::fs::read(repo_root().join(
        "tests/testdata/fixtures/go-binary/scalibr-module-replacement-linux-amd64/binary_with_module_replacement-linux-amd64",
    ))
    .unwrap();
    let go = layout.image_with_modes(&[("app/server", &go_binary, 0o755)], "linux", "amd64");
    layout.tag(&go, &name("apps/go-service", "2.1"));
    let jar = legacy_jar();
    let jar_layer: &[(&str, &[u8])] = &[("opt/app/lib/log4j-1.2.17.jar", &jar)];
    let java = layout.image_with_layers(&[base, jar_layer], "linux", "amd64", OCI_MANIFEST);
    layout.tag(&java, &name("apps/java-legacy", "0.9"));
    let windows = layout.image(
        &[("Files/Windows/win.ini", b"[fonts]\r\n")],
        "windows",
        "amd64",
    );
    let multi = layout.index(&[
        (debian, "linux", "amd64", None),
        (windows, "windows", "amd64", None),
    ]);
    layout.tag(&multi, &name("apps/multi", "2.0"));
}

/// A jar carrying log4j 1.2.17's Maven coordinates, as the real artifact does, built reproducibly.
pub fn legacy_jar() -> Vec<u8> {
    use std::io::Write as _;
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options =
        zip::write::SimpleFileOptions::default().last_modified_time(zip::DateTime::default());
    writer.start_file("META-INF/MANIFEST.MF", options).unwrap();
    writer
        .write_all(b"Manifest-Version: 1.0\r\nImplementation-Title: log4j\r\nImplementation-Version: 1.2.17\r\n\r\n")
        .unwrap();
    writer
        .start_file("META-INF/maven/log4j/log4j/pom.properties", options)
        .unwrap();
    writer
        .write_all(b"version=1.2.17\ngroupId=log4j\nartifactId=log4j\n")
        .unwrap();
    writer.finish().unwrap().into_inner()
}
