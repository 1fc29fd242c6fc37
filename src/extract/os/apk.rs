//! Extract stage: `os/apk` reads Alpine's (and Wolfi's, Chainguard's) `/lib/apk/db/installed`.
//!
//! Alpine advisories name the origin package (`o:`), e.g. `libcrypto3` comes from `openssl`, so the
//! origin is carried as the source name.

use crate::extract::os::{non_empty, os_package};
use crate::extract::{ExtractError, Extracted, Extractor};
use crate::model::Package;

/// The `os/apk` extractor.
#[derive(Debug, Clone, Copy, Default)]
pub struct Apk;

/// The extractor's stable name.
pub const NAME: &str = "os/apk";

const INSTALLED: &str = "lib/apk/db/installed";

impl Extractor for Apk {
    fn name(&self) -> &'static str {
        NAME
    }

    fn version(&self) -> u32 {
        1
    }

    fn claims(&self, path: &str) -> bool {
        path == INSTALLED
    }

    fn extract(&self, path: &str, contents: &[u8]) -> Result<Extracted, ExtractError> {
        parse_installed(path, contents)
            .map(Extracted::Packages)
            .map_err(|reason| ExtractError::new(NAME, path, reason))
    }
}

/// Why the apk installed database could not be read. Each reason names the line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InstalledError {
    /// A line that is not `K:value` (shortened in `found`).
    #[error("line {line}: expected `K:value`, found {found:?}")]
    NotAField { line: usize, found: String },
    /// A record without a package name.
    #[error("record at line {line}: no P: (name)")]
    NoName { line: usize },
    /// A record without a version, which could not be matched.
    #[error("record at line {line}: package {package:?} has no V: (version)")]
    NoVersion { line: usize, package: String },
}

#[derive(Default)]
struct Record<'a> {
    name: Option<&'a str>,
    version: Option<&'a str>,
    arch: Option<&'a str>,
    origin: Option<&'a str>,
    line: usize,
}

/// Parses the apk installed database: records of `K:value` lines separated by blank lines.
///
/// Only `P:` (name), `V:` (version), `A:` (architecture) and `o:` (origin) are read; the file lists
/// (`F:`, `R:`, `Z:`...) are skipped. A line that is not `K:value` is an error naming its line number.
pub fn parse_installed(location: &str, contents: &[u8]) -> Result<Vec<Package>, InstalledError> {
    let text = String::from_utf8_lossy(contents);
    let mut packages = Vec::new();
    let mut record = Record::default();
    let mut in_record = false;
    for (index, raw_line) in text.split('\n').enumerate() {
        let line_number = index + 1;
        let line = raw_line.strip_suffix('\r').unwrap_or(raw_line);
        if line.trim().is_empty() {
            if in_record {
                finish_record(location, &record, &mut packages)?;
                record = Record::default();
                in_record = false;
            }
            continue;
        }
        let bytes = line.as_bytes();
        if bytes.len() < 2 || bytes[1] != b':' || !bytes[0].is_ascii_alphanumeric() {
            return Err(InstalledError::NotAField {
                line: line_number,
                found: line.chars().take(80).collect(),
            });
        }
        if !in_record {
            in_record = true;
            record.line = line_number;
        }
        // Both indices are ASCII bytes checked above, so slicing at 2 stays on a char boundary.
        let value = &line[2..];
        match bytes[0] {
            b'P' => record.name = Some(value),
            b'V' => record.version = Some(value),
            b'A' => record.arch = Some(value),
            b'o' => record.origin = Some(value),
            _ => {}
        }
    }
    if in_record {
        finish_record(location, &record, &mut packages)?;
    }
    Ok(packages)
}

fn finish_record(
    location: &str,
    record: &Record<'_>,
    packages: &mut Vec<Package>,
) -> Result<(), InstalledError> {
    let Some(name) = record.name.and_then(non_empty) else {
        return Err(InstalledError::NoName { line: record.line });
    };
    let Some(version) = record.version.and_then(non_empty) else {
        return Err(InstalledError::NoVersion {
            line: record.line,
            package: name,
        });
    };
    let mut package = os_package(NAME, location, name.clone(), version.clone());
    // Without an origin the package is its own origin.
    package.source_name = Some(record.origin.and_then(non_empty).unwrap_or(name));
    package.source_version = Some(version);
    package.arch = record.arch.and_then(non_empty);
    packages.push(package);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_only_the_installed_db() {
        for (path, want) in [
            ("lib/apk/db/installed", true),
            ("lib/apk/db/installed.new", false),
            ("usr/lib/apk/db/installed", false),
            ("lib/apk/db/lock", false),
        ] {
            assert_eq!(Apk.claims(path), want, "{path}");
        }
    }

    #[test]
    fn reads_records_with_and_without_origin() {
        let text = b"C:Q1abc=\nP:libcrypto3\nV:3.1.0-r4\nA:x86_64\no:openssl\nF:lib\nR:libcrypto.so.3\n\nP:zlib\nV:1.2.13-r1\n";
        let packages = parse_installed("lib/apk/db/installed", text).unwrap();
        assert_eq!(packages.len(), 2);
        assert_eq!(packages[0].source_name.as_deref(), Some("openssl"));
        assert_eq!(packages[0].arch.as_deref(), Some("x86_64"));
        assert_eq!(packages[1].source_name.as_deref(), Some("zlib"));
        assert_eq!(packages[1].extractor, "os/apk");
    }

    #[test]
    fn malformed_records_are_errors() {
        assert!(parse_installed("x", b"P:a\ngarbage\n").is_err());
        assert!(parse_installed("x", b"V:1\n").is_err());
        assert!(parse_installed("x", b"P:a\n").is_err());
        assert!(parse_installed("x", b"\xff\xfe:\x00").is_err());
        assert_eq!(parse_installed("x", b"").unwrap(), Vec::new());
    }

    /// The reasons become coverage reasons stored in the warehouse: their text must not drift.
    #[test]
    fn reasons_keep_their_text() {
        let cases: [(&[u8], &str); 3] = [
            (
                b"P:a\ngarbage\n",
                "line 2: expected `K:value`, found \"garbage\"",
            ),
            (b"V:1\n", "record at line 1: no P: (name)"),
            (
                b"P:a\n",
                "record at line 1: package \"a\" has no V: (version)",
            ),
        ];
        for (text, want) in cases {
            assert_eq!(parse_installed("x", text).unwrap_err().to_string(), want);
        }
        assert_eq!(
            parse_installed("x", b"\n\nV:1\n").unwrap_err(),
            InstalledError::NoName { line: 3 }
        );
    }
}
