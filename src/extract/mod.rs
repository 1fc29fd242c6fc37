//! Extractors: turn the bytes of one claimed file into packages or an OS identity.
//!
//! The layer walk (`crate::layer`) opens files; an extractor only parses. Each extractor has a stable
//! path-like name (`os/dpkg`) and a version number; the layer cache keys results by both, so bumping a
//! version invalidates exactly that extractor's cached results. The one explicit list is [`all`].

use std::io::Read as _;

use crate::model::{OsIdentity, Package};

/// What one file yielded.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Extracted {
    /// An os-release file.
    Os(OsIdentity),
    /// A package database or manifest. OS extractors leave `Package::ecosystem` empty and
    /// `Package::layer_digest` unset: merging the image's layers fills both.
    Packages(Vec<Package>),
    /// Files an OS package manager says it installed (dpkg `.list` files, rpm file lists). The merge
    /// drops language packages found at these paths, so a distro's `python3-urllib3` is matched against
    /// the distro's advisories only, never also against PyPI's.
    OwnedFiles(Vec<OwnedFiles>),
}

/// The files one OS package installed, as its package manager lists them.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct OwnedFiles {
    /// The owning OS package's name.
    pub owner: String,
    /// Paths relative to the image root, without a leading `/` (directories included when the
    /// package manager lists them).
    pub paths: Vec<String>,
}

/// Permission bits of a tar entry that make a file executable by someone.
pub const EXECUTABLE_BITS: u32 = 0o111;

/// Why a claimed file could not be parsed. The image gets `partial` coverage with this reason; the run
/// goes on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{extractor}: {path}: {reason}")]
pub struct ExtractError {
    pub extractor: &'static str,
    pub path: String,
    pub reason: String,
}

/// A parser for one kind of file found in image layers.
pub trait Extractor: Send + Sync {
    /// Stable path-like name, e.g. `os/dpkg`. Never change it: caches and findings carry it.
    fn name(&self) -> &'static str;
    /// Bumped whenever the extractor's output for the same input changes.
    fn version(&self) -> u32;
    /// Whether this extractor wants the file at `path` (relative to the image root, no leading `/`,
    /// no `./`). Called for every tar entry, so it must be cheap and must not allocate.
    fn claims(&self, path: &str) -> bool;
    /// Files larger than this are not read; the image is marked `partial` instead.
    fn max_file_size(&self) -> u64 {
        64 * 1024 * 1024
    }
    /// Parses one claimed file.
    fn extract(&self, path: &str, contents: &[u8]) -> Result<Extracted, ExtractError>;

    /// Whether this extractor wants a regular file, knowing its permission bits and size as well as its
    /// path. The layer walk calls this (not [`Extractor::claims`]) for regular files, so extractors of
    /// executables (Go, cargo-auditable), which can live anywhere, claim by mode. Same cost rules as
    /// `claims`. The default asks `claims`.
    fn claims_entry(&self, path: &str, mode: u32, size: u64) -> bool {
        let _ = (mode, size);
        self.claims(path)
    }

    /// Parses one claimed file from a stream of its `size` bytes, so an extractor that needs only a
    /// small part of a large file (a binary's build info) need not hold it whole. Whatever the
    /// extractor does not read is skipped by the caller. The default reads the file (at most
    /// [`Extractor::max_file_size`] bytes) and calls [`Extractor::extract`].
    fn extract_reader(
        &self,
        path: &str,
        size: u64,
        reader: &mut dyn std::io::Read,
    ) -> Result<Extracted, ExtractError> {
        let limit = self.max_file_size();
        if size > limit {
            return Err(ExtractError::new(
                self.name(),
                path,
                format!("file is {size} bytes, over the limit of {limit}"),
            ));
        }
        let mut contents = Vec::with_capacity(usize::try_from(size.min(1 << 20)).unwrap_or(0));
        std::io::Read::take(reader, size)
            .read_to_end(&mut contents)
            .map_err(|error| {
                ExtractError::new(self.name(), path, format!("read failed: {error}"))
            })?;
        self.extract(path, &contents)
    }

    /// Whether this extractor wants to stream the file through [`Extractor::extract_reader`] rather
    /// than be handed its bytes. Binary extractors say yes; everything else is read once into memory
    /// and shared by all claiming extractors.
    fn streams(&self) -> bool {
        false
    }
}

pub mod binary;
pub mod lang;
pub mod os;

/// The one explicit list of extractors the layer walk runs, in a stable order.
///
/// Adding a format means adding its module and one line here.
pub fn all() -> &'static [&'static dyn Extractor] {
    static ALL: [&dyn Extractor; 13] = [
        &os::release::OsRelease,
        &os::dpkg::Dpkg,
        &os::apk::Apk,
        &os::rpm::Rpm,
        &os::dpkg_files::DpkgFiles,
        &os::rpm::files::RpmFiles,
        &lang::python::Python,
        &lang::npm::Npm,
        &lang::cargo::Cargo,
        &lang::java::Java,
        &lang::ruby::Ruby,
        &lang::dotnet::Dotnet,
        &binary::go::GoBinary,
    ];
    &ALL
}

/// The OS extractors only: the distro identity, the OS package databases and their file lists. The
/// extraction-overhead bench compares a walk with these against one with [`all`].
pub fn os_only() -> &'static [&'static dyn Extractor] {
    &all()[..6]
}

impl ExtractError {
    /// An error of `extractor` about the file at `path`. `reason` is usually a parser's own error
    /// enum; its text is what the image's coverage reason and the layer cache keep.
    pub fn new(
        extractor: &'static str,
        path: &str,
        reason: impl std::fmt::Display,
    ) -> ExtractError {
        ExtractError {
            extractor,
            path: path.to_string(),
            reason: reason.to_string(),
        }
    }
}
