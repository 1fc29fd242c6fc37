//! Extract stage: `lang/python` reads installed Python distributions: `*.dist-info/METADATA` (wheels,
//! pip) and `*.egg-info/PKG-INFO` or a bare `*.egg-info` file (setuptools, distro-built eggs) directly
//! inside a `site-packages` or `dist-packages` directory.
//!
//! PyPI advisories name projects by their PEP 503 normalised name, so `PyYAML` is reported `pyyaml`.

use crate::extract::lang::{base_name, lang_package, parent, shorten};
use crate::extract::{ExtractError, Extracted, Extractor};
use crate::model::Package;

/// The `lang/python` extractor.
#[derive(Debug, Clone, Copy, Default)]
pub struct Python;

/// The extractor's stable name.
pub const NAME: &str = "lang/python";
/// OSV's ecosystem name for Python packages.
pub const ECOSYSTEM: &str = "PyPI";

/// Whether `dir` is a directory pip installs distributions into.
fn is_install_dir(dir: &str) -> bool {
    let name = base_name(dir);
    name == "site-packages" || name == "dist-packages"
}

impl Extractor for Python {
    fn name(&self) -> &'static str {
        NAME
    }

    fn version(&self) -> u32 {
        1
    }

    fn claims(&self, path: &str) -> bool {
        let file = base_name(path);
        let dir = parent(path);
        if file == "METADATA" {
            // Only a distribution's own metadata directly under the install dir; vendored copies and
            // source trees are not installed distributions.
            return dir.ends_with(".dist-info") && is_install_dir(parent(dir));
        }
        if file == "PKG-INFO" {
            return dir.ends_with(".egg-info") && is_install_dir(parent(dir));
        }
        file.ends_with(".egg-info") && is_install_dir(dir)
    }

    fn max_file_size(&self) -> u64 {
        // Long descriptions make METADATA files of a few hundred KiB at most.
        8 * 1024 * 1024
    }

    fn extract(&self, path: &str, contents: &[u8]) -> Result<Extracted, ExtractError> {
        parse_metadata(path, contents)
            .map(|package| Extracted::Packages(vec![package]))
            .map_err(|reason| ExtractError::new(NAME, path, reason))
    }
}

/// Normalises a project name per PEP 503: lower case, runs of `-`, `_` and `.` become one `-`.
pub fn normalise_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut in_separator = false;
    for ch in name.trim().chars() {
        if matches!(ch, '-' | '_' | '.') {
            in_separator = true;
            continue;
        }
        if in_separator && !out.is_empty() {
            out.push('-');
        }
        in_separator = false;
        out.extend(ch.to_lowercase());
    }
    out
}

/// Why a METADATA / PKG-INFO header could not be read as a distribution. Names are shortened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MetadataError {
    /// A header line without a `:`.
    #[error("expected `Field: value` in the metadata header, found {found:?}")]
    NotAField { found: String },
    /// No `Name:` (or an empty one) before the first blank line.
    #[error("no Name field in the metadata header")]
    NoName,
    /// No `Version:` (or an empty one), so the distribution could not be matched.
    #[error("distribution {name:?} has no Version field")]
    NoVersion { name: String },
    /// A name made of separators only, which PEP 503 turns into nothing.
    #[error("name {name:?} is empty once normalised")]
    EmptyName { name: String },
}

/// Parses the RFC 822-style header block of a METADATA / PKG-INFO file into one package.
///
/// Only the header (up to the first blank line) is read: the body is the long description, which may
/// itself contain lines that look like headers.
pub fn parse_metadata(location: &str, contents: &[u8]) -> Result<Package, MetadataError> {
    // Only the header (up to the first blank line) matters, and in it only Name and Version, which come
    // first in practice: read line by line and stop as soon as both are known, so neither the rest of the
    // header nor the (often long) description body is decoded.
    let mut name: Option<String> = None;
    let mut version: Option<String> = None;
    for raw_line in contents.split(|byte| *byte == b'\n') {
        let raw_line = raw_line.strip_suffix(b"\r").unwrap_or(raw_line);
        if raw_line.iter().all(u8::is_ascii_whitespace) {
            break;
        }
        if raw_line.starts_with(b" ") || raw_line.starts_with(b"\t") {
            continue;
        }
        let line = String::from_utf8_lossy(raw_line);
        let Some((field, value)) = line.split_once(':') else {
            return Err(MetadataError::NotAField {
                found: shorten(&line),
            });
        };
        let value = value.trim();
        if field.eq_ignore_ascii_case("Name") && name.is_none() {
            name = Some(value.to_string());
        } else if field.eq_ignore_ascii_case("Version") && version.is_none() {
            version = Some(value.to_string());
        }
        if name.is_some() && version.is_some() {
            break;
        }
    }
    let name = name.as_deref();
    let version = version.as_deref();
    let name = name
        .filter(|name| !name.is_empty())
        .ok_or(MetadataError::NoName)?;
    let version = version
        .filter(|version| !version.is_empty())
        .ok_or_else(|| MetadataError::NoVersion {
            name: shorten(name),
        })?;
    let normalised = normalise_name(name);
    if normalised.is_empty() {
        return Err(MetadataError::EmptyName {
            name: shorten(name),
        });
    }
    Ok(lang_package(
        NAME,
        ECOSYSTEM,
        location,
        normalised,
        version.to_string(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_installed_metadata_only() {
        let cases = [
            (
                "usr/lib/python3/dist-packages/urllib3-1.26.12.dist-info/METADATA",
                true,
            ),
            (
                "usr/local/lib/python3.11/site-packages/pip-23.2.1.dist-info/METADATA",
                true,
            ),
            (
                "usr/lib/python3/dist-packages/six-1.16.0.egg-info/PKG-INFO",
                true,
            ),
            ("usr/lib/python3/dist-packages/six-1.16.0.egg-info", true),
            (
                "usr/lib/python3/dist-packages/pip/_vendor/x.dist-info/METADATA",
                false,
            ),
            ("src/project.egg-info/PKG-INFO", false),
            (
                "usr/lib/python3/dist-packages/six-1.16.0.dist-info/RECORD",
                false,
            ),
            ("METADATA", false),
            ("site-packages/a.dist-info/METADATA", true),
        ];
        for (path, want) in cases {
            assert_eq!(Python.claims(path), want, "{path}");
        }
    }

    #[test]
    fn names_are_pep503_normalised() {
        assert_eq!(normalise_name("PyYAML"), "pyyaml");
        assert_eq!(normalise_name("charset_normalizer"), "charset-normalizer");
        assert_eq!(normalise_name("zope.interface"), "zope-interface");
        assert_eq!(normalise_name("A__B-.-C"), "a-b-c");
    }

    #[test]
    fn header_only_and_bad_input() {
        let text = b"Metadata-Version: 2.1\nName: Foo_Bar\nVersion: 1.0\n\nName: not-this\n";
        let package = parse_metadata("x", text).unwrap();
        assert_eq!(
            (package.name.as_str(), package.version.as_str()),
            ("foo-bar", "1.0")
        );
        assert!(parse_metadata("x", b"Version: 1\n").is_err());
        assert!(parse_metadata("x", b"Name: a\n").is_err());
        assert!(parse_metadata("x", b"\xff\xfe\x00garbage").is_err());
        assert!(parse_metadata("x", b"").is_err());
        assert!(parse_metadata("x", b"Name: ---\nVersion: 1\n").is_err());
    }

    /// The reasons become coverage reasons stored in the warehouse: their text must not drift.
    #[test]
    fn reasons_keep_their_text() {
        let cases: [(&[u8], &str); 4] = [
            (
                b"garbage\n",
                "expected `Field: value` in the metadata header, found \"garbage\"",
            ),
            (b"Version: 1\n", "no Name field in the metadata header"),
            (b"Name: a\n", "distribution \"a\" has no Version field"),
            (
                b"Name: ---\nVersion: 1\n",
                "name \"---\" is empty once normalised",
            ),
        ];
        for (text, want) in cases {
            assert_eq!(parse_metadata("x", text).unwrap_err().to_string(), want);
        }
    }
}
