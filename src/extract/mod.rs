//! Extractors: turn the bytes of one claimed file into packages or an OS identity.
//!
//! The layer walk (`crate::layer`) opens files; an extractor only parses. Each extractor has a stable
//! path-like name (`os/dpkg`) and a version number; the layer cache keys results by both, so bumping a
//! version invalidates exactly that extractor's cached results. The one explicit list is [`all`].

use crate::model::{OsIdentity, Package};

/// What one file yielded.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Extracted {
    /// An os-release file.
    Os(OsIdentity),
    /// A package database or manifest. OS extractors leave `Package::ecosystem` empty and
    /// `Package::layer_digest` unset: merging the image's layers fills both.
    Packages(Vec<Package>),
}

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
}

pub mod os;

/// The one explicit list of extractors the layer walk runs, in a stable order.
///
/// Adding a format means adding its module and one line here.
pub fn all() -> &'static [&'static dyn Extractor] {
    static ALL: [&dyn Extractor; 3] = [&os::release::OsRelease, &os::dpkg::Dpkg, &os::apk::Apk];
    &ALL
}

impl ExtractError {
    /// An error of `extractor` about the file at `path`.
    pub fn new(extractor: &'static str, path: &str, reason: impl Into<String>) -> ExtractError {
        ExtractError {
            extractor,
            path: path.to_string(),
            reason: reason.into(),
        }
    }
}
