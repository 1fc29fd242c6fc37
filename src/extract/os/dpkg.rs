//! Extract stage: `os/dpkg` reads Debian-family package databases: `/var/lib/dpkg/status` and the
//! one-file-per-package `/var/lib/dpkg/status.d/*` that distroless images ship instead.
//!
//! Debian and Ubuntu advisories name source packages, so the `Source:` field (and the source version
//! in its parentheses) is carried along with each binary package.

use crate::extract::os::{non_empty, os_package};
use crate::extract::{ExtractError, Extracted, Extractor};
use crate::model::Package;

/// The `os/dpkg` extractor.
#[derive(Debug, Clone, Copy, Default)]
pub struct Dpkg;

/// The extractor's stable name.
pub const NAME: &str = "os/dpkg";

const STATUS_FILE: &str = "var/lib/dpkg/status";
const STATUS_DIR: &str = "var/lib/dpkg/status.d/";

impl Extractor for Dpkg {
    fn name(&self) -> &'static str {
        NAME
    }

    fn version(&self) -> u32 {
        1
    }

    fn claims(&self, path: &str) -> bool {
        if path == STATUS_FILE {
            return true;
        }
        // status.d holds one stanza file per package plus its `.md5sums` list, which is not a stanza.
        match path.strip_prefix(STATUS_DIR) {
            Some(file) => {
                !file.is_empty()
                    && !file.contains('/')
                    && !file.starts_with('.')
                    && !file.ends_with(".md5sums")
            }
            None => false,
        }
    }

    fn extract(&self, path: &str, contents: &[u8]) -> Result<Extracted, ExtractError> {
        parse_status(path, contents)
            .map(Extracted::Packages)
            .map_err(|reason| ExtractError::new(NAME, path, reason))
    }
}

/// Why a dpkg status file (or a status.d file) could not be read. Each reason names the line, so a
/// broken database can be found in the image.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StatusError {
    /// An indented line before any `Field:` line.
    #[error("line {line}: continuation line outside any stanza")]
    ContinuationOutsideStanza { line: usize },
    /// A line that is neither a field, a continuation nor a comment (shortened in `found`).
    #[error("line {line}: expected `Field: value`, found {found:?}")]
    NotAField { line: usize, found: String },
    /// Text without a single field: not a dpkg database.
    #[error("no dpkg fields found")]
    NoFields,
    /// A stanza without a package name.
    #[error("stanza at line {line}: no Package field")]
    NoPackage { line: usize },
    /// An installed package without a version, which could not be matched.
    #[error("stanza at line {line}: installed package {package:?} has no Version")]
    NoVersion { line: usize, package: String },
}

/// One stanza's fields of interest, borrowed from the file's text.
#[derive(Default)]
struct Stanza<'a> {
    package: Option<&'a str>,
    version: Option<&'a str>,
    architecture: Option<&'a str>,
    source: Option<&'a str>,
    status: Option<&'a str>,
    /// Line number where the stanza starts, for error messages.
    line: usize,
}

/// Parses a dpkg status file (or one status.d file) and returns its installed packages.
///
/// A stanza without a `Status:` field counts as installed: distroless status.d files carry none. A
/// stanza whose status is anything but `installed` (removed, config-files, half-installed...) is
/// skipped, since its files are not on disk. Bytes that are not UTF-8 are replaced, because legacy
/// descriptions in Latin-1 must not cost the whole database.
pub fn parse_status(location: &str, contents: &[u8]) -> Result<Vec<Package>, StatusError> {
    let text = String::from_utf8_lossy(contents);
    let mut packages = Vec::new();
    let mut stanza = Stanza::default();
    let mut in_stanza = false;
    let mut saw_field = false;

    for (index, raw_line) in text.split('\n').enumerate() {
        let line_number = index + 1;
        let line = raw_line.strip_suffix('\r').unwrap_or(raw_line);
        if line.trim().is_empty() {
            if in_stanza {
                finish_stanza(location, &stanza, &mut packages)?;
                stanza = Stanza::default();
                in_stanza = false;
            }
            continue;
        }
        if line.starts_with(' ') || line.starts_with('\t') {
            // A continuation of a multi-line field (Description, Conffiles); none of them matter here.
            if !in_stanza {
                return Err(StatusError::ContinuationOutsideStanza { line: line_number });
            }
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        let Some((field, value)) = line.split_once(':') else {
            return Err(StatusError::NotAField {
                line: line_number,
                found: truncate(line),
            });
        };
        if !in_stanza {
            in_stanza = true;
            stanza.line = line_number;
        }
        saw_field = true;
        let value = value.trim();
        // Field names are case-insensitive in deb822.
        let field = field.trim();
        if field.eq_ignore_ascii_case("Package") {
            stanza.package = Some(value);
        } else if field.eq_ignore_ascii_case("Version") {
            stanza.version = Some(value);
        } else if field.eq_ignore_ascii_case("Architecture") {
            stanza.architecture = Some(value);
        } else if field.eq_ignore_ascii_case("Source") {
            stanza.source = Some(value);
        } else if field.eq_ignore_ascii_case("Status") {
            stanza.status = Some(value);
        }
    }
    if in_stanza {
        finish_stanza(location, &stanza, &mut packages)?;
    }
    if !saw_field && !text.trim().is_empty() {
        return Err(StatusError::NoFields);
    }
    Ok(packages)
}

/// Turns a complete stanza into a package when it describes an installed one.
fn finish_stanza(
    location: &str,
    stanza: &Stanza<'_>,
    packages: &mut Vec<Package>,
) -> Result<(), StatusError> {
    let Some(name) = stanza.package.filter(|name| !name.is_empty()) else {
        return Err(StatusError::NoPackage { line: stanza.line });
    };
    if let Some(status) = stanza.status {
        // `Status: want flag state`; only the state says whether the files are on disk. `hold ok
        // installed` is as installed as `install ok installed`.
        if status.split_whitespace().nth(2) != Some("installed") {
            return Ok(());
        }
    }
    let Some(version) = stanza.version.and_then(non_empty) else {
        return Err(StatusError::NoVersion {
            line: stanza.line,
            package: name.to_string(),
        });
    };
    let (source_name, source_version) = match stanza.source.and_then(non_empty) {
        Some(source) => split_source(&source),
        None => (None, None),
    };
    let mut package = os_package(NAME, location, name.to_string(), version.clone());
    package.source_name = Some(source_name.unwrap_or_else(|| name.to_string()));
    // The source version differs from the binary's only when `Source:` says so, e.g. binNMUs
    // (`5.2.15-2+b8` built from source `5.2.15-2`).
    package.source_version = Some(source_version.unwrap_or(version));
    package.arch = stanza.architecture.and_then(non_empty);
    packages.push(package);
    Ok(())
}

/// Splits `name (version)` into its parts; a bare `name` has no version.
fn split_source(source: &str) -> (Option<String>, Option<String>) {
    match source.split_once('(') {
        Some((name, rest)) => {
            let version = rest.split(')').next().unwrap_or_default();
            (non_empty(name), non_empty(version))
        }
        None => (non_empty(source), None),
    }
}

/// Keeps error messages short when a line is huge garbage.
fn truncate(line: &str) -> String {
    line.chars().take(80).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_status_and_status_d_but_not_md5sums() {
        let cases = [
            ("var/lib/dpkg/status", true),
            ("var/lib/dpkg/status.d/libc6", true),
            ("var/lib/dpkg/status.d/libc6.md5sums", false),
            ("var/lib/dpkg/status.d/", false),
            ("var/lib/dpkg/status.d/sub/file", false),
            ("var/lib/dpkg/status-old", false),
            ("var/lib/dpkg/available", false),
            ("etc/var/lib/dpkg/status", false),
        ];
        for (path, want) in cases {
            assert_eq!(Dpkg.claims(path), want, "{path}");
        }
    }

    #[test]
    fn source_with_and_without_version() {
        let text = b"Package: bash\nStatus: install ok installed\nVersion: 5.2.15-2+b8\nSource: bash (5.2.15-2)\nArchitecture: amd64\nDescription: shell\n more text\n .\n\nPackage: libacl1\nStatus: hold ok installed\nSource: acl\nVersion: 2.3.1-3\n\nPackage: gone\nStatus: deinstall ok config-files\nVersion: 1\n";
        let packages = parse_status("var/lib/dpkg/status", text).unwrap();
        assert_eq!(packages.len(), 2);
        assert_eq!(packages[0].source_name.as_deref(), Some("bash"));
        assert_eq!(packages[0].source_version.as_deref(), Some("5.2.15-2"));
        assert_eq!(packages[0].arch.as_deref(), Some("amd64"));
        assert_eq!(packages[1].source_name.as_deref(), Some("acl"));
        assert_eq!(packages[1].source_version.as_deref(), Some("2.3.1-3"));
        assert_eq!(packages[1].arch, None);
    }

    #[test]
    fn bad_input_is_an_error_not_a_panic() {
        assert!(parse_status("x", b"\xff\xfe garbage without colon\n").is_err());
        assert!(parse_status("x", b" continuation first\n").is_err());
        assert!(parse_status("x", b"Version: 1\nStatus: install ok installed\n").is_err());
        assert!(parse_status("x", b"Package: a\nStatus: install ok installed\n").is_err());
        assert_eq!(parse_status("x", b"\n\n").unwrap(), Vec::new());
        // Invalid UTF-8 inside a description is tolerated.
        let packages =
            parse_status("x", b"Package: a\nVersion: 1\nDescription: caf\xe9\n").unwrap();
        assert_eq!(packages[0].name, "a");
    }

    /// The reasons become coverage reasons stored in the warehouse: their text must not drift.
    #[test]
    fn reasons_keep_their_text() {
        let cases: [(&[u8], &str); 5] = [
            (
                b" continuation first\n",
                "line 1: continuation line outside any stanza",
            ),
            (
                b"Package: a\ngarbage\n",
                "line 2: expected `Field: value`, found \"garbage\"",
            ),
            (b"# only a comment\n", "no dpkg fields found"),
            (
                b"Version: 1\nStatus: install ok installed\n",
                "stanza at line 1: no Package field",
            ),
            (
                b"\nPackage: a\nStatus: install ok installed\n",
                "stanza at line 2: installed package \"a\" has no Version",
            ),
        ];
        for (text, want) in cases {
            assert_eq!(parse_status("x", text).unwrap_err().to_string(), want);
        }
        assert_eq!(
            parse_status("x", b"Package: a\n").unwrap_err(),
            StatusError::NoVersion {
                line: 1,
                package: "a".into()
            }
        );
    }
}
