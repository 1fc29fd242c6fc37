//! Extract stage: `lang/cargo` reads Rust crates: `Cargo.lock` files, and Rust executables built with
//! cargo-auditable, whose `.dep-v0` ELF section holds the crate list as zlib-compressed JSON. A Rust
//! binary without that section carries no dependable crate list and yields nothing.

use std::io::Read;

use serde::Deserialize;

use crate::extract::binary::{elf, is_candidate};
use crate::extract::lang::{base_name, lang_package, shorten};
use crate::extract::{ExtractError, Extracted, Extractor};
use crate::model::Package;

/// The `lang/cargo` extractor.
#[derive(Debug, Clone, Copy, Default)]
pub struct Cargo;

/// The extractor's stable name.
pub const NAME: &str = "lang/cargo";
/// OSV's ecosystem name for Rust crates.
pub const ECOSYSTEM: &str = "crates.io";

/// Executables up to this size are read whole (the section table sits at the end of an ELF file, so
/// the section cannot be found while streaming); bigger ones are left unclaimed.
pub const MAX_BINARY_SIZE: u64 = 128 * 1024 * 1024;
/// The decompressed crate list of real binaries is tens of KiB; more is a zlib bomb.
const MAX_AUDIT_JSON: u64 = 16 * 1024 * 1024;
/// The ELF section cargo-auditable writes.
pub const AUDIT_SECTION: &str = ".dep-v0";

impl Extractor for Cargo {
    fn name(&self) -> &'static str {
        NAME
    }

    fn version(&self) -> u32 {
        1
    }

    fn claims(&self, path: &str) -> bool {
        base_name(path) == "Cargo.lock"
    }

    fn claims_entry(&self, path: &str, mode: u32, size: u64) -> bool {
        self.claims(path) || is_candidate(mode, size, MAX_BINARY_SIZE)
    }

    fn max_file_size(&self) -> u64 {
        MAX_BINARY_SIZE
    }

    fn extract(&self, path: &str, contents: &[u8]) -> Result<Extracted, ExtractError> {
        let result = if contents.starts_with(elf::MAGIC) {
            parse_auditable(path, contents)
        } else if self.claims(path) {
            parse_lock(path, contents)
        } else {
            // An executable script or a non-ELF file: nothing cargo built.
            Ok(Vec::new())
        };
        result
            .map(Extracted::Packages)
            .map_err(|reason| ExtractError::new(NAME, path, reason))
    }
}

/// Why a `Cargo.lock` or a cargo-auditable section could not be read.
#[derive(Debug, thiserror::Error)]
pub enum CargoError {
    #[error("not UTF-8: {0}")]
    NotUtf8(std::str::Utf8Error),
    /// Not TOML, or TOML without the `[[package]]` shape (the parser's message, on one short line).
    #[error("invalid Cargo.lock: {message}")]
    InvalidLock { message: String },
    /// The executable names the section but its section table cannot be read.
    #[error("{AUDIT_SECTION} present but unreadable: {0}")]
    UnreadableSection(elf::ElfError),
    #[error("{AUDIT_SECTION} is not valid zlib data: {0}")]
    NotZlib(std::io::Error),
    /// Larger than [`MAX_AUDIT_JSON`] once inflated: a bomb, not a crate list.
    #[error("{AUDIT_SECTION} decompresses to more than {MAX_AUDIT_JSON} bytes")]
    SectionTooLarge,
    #[error("{AUDIT_SECTION} holds invalid JSON: {0}")]
    InvalidJson(serde_json::Error),
}

#[derive(Deserialize)]
struct LockFile {
    #[serde(default)]
    package: Vec<LockEntry>,
}

#[derive(Deserialize)]
struct LockEntry {
    name: String,
    version: String,
}

/// Parses a `Cargo.lock`: every `[[package]]` entry, including workspace and path crates (they are
/// what the image built; advisories simply never name them).
pub fn parse_lock(location: &str, contents: &[u8]) -> Result<Vec<Package>, CargoError> {
    let text = std::str::from_utf8(contents).map_err(CargoError::NotUtf8)?;
    let lock: LockFile = toml::from_str(text).map_err(|error| CargoError::InvalidLock {
        message: shorten(&error.to_string().replace('\n', " ")),
    })?;
    Ok(lock
        .package
        .into_iter()
        .map(|entry| lang_package(NAME, ECOSYSTEM, location, entry.name, entry.version))
        .collect())
}

#[derive(Deserialize)]
struct AuditInfo {
    packages: Vec<AuditPackage>,
}

#[derive(Deserialize)]
struct AuditPackage {
    name: String,
    version: String,
}

/// Reads the cargo-auditable crate list of an ELF executable; an executable without the section
/// yields nothing, a present but corrupt section is an error.
pub fn parse_auditable(location: &str, contents: &[u8]) -> Result<Vec<Package>, CargoError> {
    // Not every ELF-looking file is a well-formed executable; only a readable section table can hold
    // the crate list.
    let Ok(header) = elf::Header::parse(contents) else {
        return Ok(Vec::new());
    };
    let section = match header.section_by_name(contents, AUDIT_SECTION) {
        Ok(Some(section)) => section,
        Ok(None) => return Ok(Vec::new()),
        Err(error) => {
            // A broken section table in a file that is not ours is not our concern, unless the file
            // names our section somewhere, which the table would have led us to.
            if contents
                .windows(AUDIT_SECTION.len())
                .any(|w| w == AUDIT_SECTION.as_bytes())
            {
                return Err(CargoError::UnreadableSection(error));
            }
            return Ok(Vec::new());
        }
    };
    let mut json = Vec::new();
    flate2::read::ZlibDecoder::new(section)
        .take(MAX_AUDIT_JSON + 1)
        .read_to_end(&mut json)
        .map_err(CargoError::NotZlib)?;
    if json.len() as u64 > MAX_AUDIT_JSON {
        return Err(CargoError::SectionTooLarge);
    }
    let info: AuditInfo = serde_json::from_slice(&json).map_err(CargoError::InvalidJson)?;
    Ok(info
        .packages
        .into_iter()
        .map(|entry| lang_package(NAME, ECOSYSTEM, location, entry.name, entry.version))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_lock_files_and_executables() {
        assert!(Cargo.claims("src/app/Cargo.lock"));
        assert!(Cargo.claims("Cargo.lock"));
        assert!(!Cargo.claims("Cargo.toml"));
        assert!(Cargo.claims_entry("usr/bin/rg", 0o755, 4_000_000));
        assert!(!Cargo.claims_entry("usr/bin/rg", 0o644, 4_000_000));
        assert!(!Cargo.claims_entry("usr/bin/huge", 0o755, MAX_BINARY_SIZE + 1));
    }

    #[test]
    fn bad_lock_files_are_errors() {
        assert!(parse_lock("x", b"[[package]]\nname = 1\n").is_err());
        assert!(parse_lock("x", b"[[package]\n").is_err());
        assert!(parse_lock("x", b"\xff\xfe").is_err());
        assert!(parse_lock("x", b"a = ").is_err());
        let deep = format!("a = {}", "[".repeat(100_000));
        assert!(parse_lock("x", deep.as_bytes()).is_err());
        assert!(parse_lock("x", b"").unwrap().is_empty());
    }

    #[test]
    fn non_elf_executables_yield_nothing() {
        let script = b"#!/bin/sh\nexit 0\n";
        assert_eq!(
            Cargo.extract("usr/bin/x", script).unwrap(),
            Extracted::Packages(Vec::new())
        );
    }

    /// The reasons become coverage reasons stored in the warehouse: their text must not drift.
    #[test]
    fn reasons_keep_their_text() {
        let error = parse_lock("x", b"\xff\xfe").unwrap_err();
        assert!(error.to_string().starts_with("not UTF-8: "), "{error}");
        let error = parse_lock("x", b"[[package]\n").unwrap_err();
        assert!(matches!(error, CargoError::InvalidLock { .. }));
        let text = error.to_string();
        assert!(text.starts_with("invalid Cargo.lock: "), "{text}");
        assert!(!text.contains('\n'), "{text}");
        assert_eq!(
            CargoError::SectionTooLarge.to_string(),
            format!(".dep-v0 decompresses to more than {MAX_AUDIT_JSON} bytes")
        );
    }
}
