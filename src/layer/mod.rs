//! Layer walk: blob -> decompression -> streaming tar -> the claimed files of one layer, whiteouts recorded.
//!
//! The stage is split so each part can be tested on its own: [`decompress`] picks and checks the
//! decompressor, `tar` is a streaming tar reader that never allocates by a declared size, [`walk`] feeds
//! claimed files to the extractors, [`merge`] turns an image's layers into an [`crate::model::Inventory`],
//! and [`cache`] keeps per-layer results on disk keyed by layer digest and extractor versions.

pub mod cache;
pub mod decompress;
pub mod merge;
mod path;
mod tar;
pub mod walk;

use serde::{Deserialize, Serialize};

use crate::extract::{ExtractError, Extracted};
use crate::model::Digest;

pub use cache::{CacheError, CacheLookup, LayerCache};
pub use decompress::{compression_for_media_type, Compression};
pub use merge::merge;
pub use walk::{walk, walk_stream};

/// Bounds that keep one layer's walk from exhausting memory or time, whatever the blob says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    /// Largest claimed file read into memory; an extractor's own `max_file_size` can only lower it.
    pub max_file_size: u64,
    /// Claimed files read per layer; further claimed files are skipped and the layer marked partial.
    pub max_claimed_files: usize,
    /// Total bytes of claimed files held per layer.
    pub max_claimed_bytes: u64,
    /// Tar entries per layer (headers are cheap, but a stream of millions is an attack, not an image).
    pub max_entries: u64,
    /// Uncompressed bytes per layer; guards against decompression bombs eating the CPU.
    pub max_uncompressed_size: u64,
    /// Longest GNU long name or PAX extended header accepted, in bytes.
    pub max_extended_header: u64,
    /// Whiteouts and opaque directories recorded per layer; more make the merge unreliable (partial).
    pub max_whiteouts: usize,
    /// Claimed symlinks and hard links recorded per layer.
    pub max_links: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_file_size: 256 * 1024 * 1024,
            max_claimed_files: 10_000,
            max_claimed_bytes: 1024 * 1024 * 1024,
            max_entries: 5_000_000,
            max_uncompressed_size: 64 * 1024 * 1024 * 1024,
            max_extended_header: 1024 * 1024,
            max_whiteouts: 1_000_000,
            max_links: 10_000,
        }
    }
}

/// An extractor's name and version: the part of the cache key that says which parser produced a result.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ExtractorVersion {
    pub name: String,
    pub version: u32,
}

/// One claimed regular file of a layer and what its extractor made of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClaimedFile {
    /// Normalised path relative to the image root (`var/lib/dpkg/status`).
    pub path: String,
    pub extractor: String,
    pub extractor_version: u32,
    /// Size the tar header declared.
    pub size: u64,
    /// The parse result, or why the file was not read or not understood (a reason for `partial`).
    pub result: Result<Extracted, FileFailure>,
}

/// Why one claimed file yielded nothing. The walk records it as a [`FileFailure`] and goes on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FileError {
    /// The extractor read the file and refused it.
    #[error(transparent)]
    Extract(#[from] ExtractError),
    /// The file is larger than the extractor's (or the walk's) limit, so it was not read.
    #[error("{extractor}: {path}: file is {size} bytes, over the limit of {limit}; not read")]
    TooLarge {
        extractor: &'static str,
        path: String,
        size: u64,
        limit: u64,
    },
    /// The extractor panicked; the panic was caught so one parser bug cannot end the walk.
    #[error("{extractor}: {path}: extractor panicked on this file")]
    Panicked {
        extractor: &'static str,
        path: String,
    },
}

/// A [`FileError`] as recorded in a [`LayerInventory`]: its text, which the layer cache stores (as a
/// plain JSON string) and the merge turns into a coverage reason. Built from a `FileError` by the walk,
/// or read back from the cache.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct FileFailure(String);

impl FileFailure {
    /// The recorded reason.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<FileError> for FileFailure {
    fn from(error: FileError) -> FileFailure {
        FileFailure(error.to_string())
    }
}

impl std::fmt::Display for FileFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::ops::Deref for FileFailure {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

/// Whether a claimed link is symbolic or a tar hard link.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LinkKind {
    /// Target is relative to the link's directory unless it starts with `/`.
    Symlink,
    /// Target names another entry of the archive, relative to the image root.
    Hardlink,
}

/// A symlink or hard link at a claimed path, resolved later in the merged view of the image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClaimedLink {
    pub path: String,
    /// The extractor that claimed `path`; one record per claiming extractor.
    pub extractor: String,
    /// The link target as the archive stores it (not normalised).
    pub target: String,
    pub kind: LinkKind,
}

/// What one layer holds for the extractors it was walked with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerInventory {
    pub digest: Digest,
    /// The extractors this walk ran; a cache entry exists per element.
    pub extractors: Vec<ExtractorVersion>,
    pub files: Vec<ClaimedFile>,
    pub links: Vec<ClaimedLink>,
    /// Paths deleted from lower layers by `.wh.NAME` entries.
    pub whiteouts: Vec<String>,
    /// Directories whose lower-layer contents are hidden by `.wh..wh..opq`; `""` is the root.
    pub opaque_dirs: Vec<String>,
    /// Deterministic reasons this layer's view is incomplete (limits hit, names that could not be read).
    /// They make the image `partial` but are cached like the rest.
    pub problems: Vec<String>,
    /// Set when the walk itself failed (corrupt compression, truncated tar, download error): nothing
    /// else in this inventory is trustworthy, and it is never cached.
    pub errors: Vec<String>,
}

impl LayerInventory {
    /// An empty inventory for `digest`, as a walk starts it.
    pub fn new(digest: Digest) -> LayerInventory {
        LayerInventory {
            digest,
            extractors: Vec::new(),
            files: Vec::new(),
            links: Vec::new(),
            whiteouts: Vec::new(),
            opaque_dirs: Vec::new(),
            problems: Vec::new(),
            errors: Vec::new(),
        }
    }

    /// The inventory of a layer whose walk failed, so [`merge`] reports the image as partial instead of
    /// silently leaving the layer out.
    pub fn failed(digest: Digest, error: &LayerError) -> LayerInventory {
        let mut inventory = LayerInventory::new(digest);
        inventory.errors.push(error.to_string());
        inventory
    }

    /// Adds the results of another walk of the same layer (e.g. cached extractors + freshly walked
    /// missing ones). Layer-wide facts (whiteouts, opaque dirs) are the same for both walks and are
    /// de-duplicated.
    pub fn absorb(&mut self, other: LayerInventory) {
        for extractor in other.extractors {
            if !self.extractors.contains(&extractor) {
                self.extractors.push(extractor);
            }
        }
        self.files.extend(other.files);
        self.links.extend(other.links);
        extend_unique(&mut self.whiteouts, other.whiteouts);
        extend_unique(&mut self.opaque_dirs, other.opaque_dirs);
        extend_unique(&mut self.problems, other.problems);
        self.errors.extend(other.errors);
    }
}

fn extend_unique(into: &mut Vec<String>, from: Vec<String>) {
    let mut seen: std::collections::HashSet<String> = into.iter().cloned().collect();
    for item in from {
        if seen.insert(item.clone()) {
            into.push(item);
        }
    }
}

/// Why one layer could not be walked. The layer gets [`LayerInventory::failed`]; the run goes on.
#[derive(Debug, thiserror::Error)]
pub enum LayerError {
    /// The media type is not a layer type Vigil reads.
    #[error("layer {digest}: unsupported media type {media_type:?}")]
    UnsupportedMediaType { digest: Digest, media_type: String },
    /// The data is not in the compression the media type names, nor any other known one.
    #[error("layer {digest}: media type {media_type:?} means {expected} but the data starts with {found}")]
    BadMagic {
        digest: Digest,
        media_type: String,
        expected: &'static str,
        found: String,
    },
    /// The decompressor rejected the data.
    #[error(
        "layer {digest}: corrupt {compression} data after {offset} uncompressed bytes: {source}"
    )]
    Decompress {
        digest: Digest,
        compression: &'static str,
        offset: u64,
        #[source]
        source: std::io::Error,
    },
    /// The tar stream is malformed or truncated.
    #[error("layer {digest}: invalid tar at byte {offset}: {reason}")]
    Tar {
        digest: Digest,
        offset: u64,
        reason: String,
    },
    /// Reading the blob itself failed (download error, file error).
    #[error("layer {digest}: reading the blob failed after {offset} uncompressed bytes: {source}")]
    Read {
        digest: Digest,
        offset: u64,
        #[source]
        source: std::io::Error,
    },
    /// A limit that makes the rest of the layer unreadable was hit.
    #[error("layer {digest}: {what} over the limit of {limit}")]
    LimitExceeded {
        digest: Digest,
        what: &'static str,
        limit: u64,
    },
    /// The worker running the walk went away (its thread panicked or the pool shut down).
    #[error("layer {digest}: the walk worker ended without a result")]
    WorkerLost { digest: Digest },
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The layer cache stores claimed files as JSON: a recorded failure must stay the plain string it
    /// was before failures were typed, so existing cache entries still read.
    #[test]
    fn a_recorded_failure_is_stored_as_its_text() {
        let failure = FileFailure::from(FileError::TooLarge {
            extractor: "os/dpkg",
            path: "var/lib/dpkg/status".into(),
            size: 20,
            limit: 10,
        });
        let file = ClaimedFile {
            path: "var/lib/dpkg/status".into(),
            extractor: "os/dpkg".into(),
            extractor_version: 1,
            size: 20,
            result: Err(failure.clone()),
        };
        let json = serde_json::to_string(&file).unwrap();
        let text = "os/dpkg: var/lib/dpkg/status: file is 20 bytes, over the limit of 10; not read";
        assert!(
            json.contains(&format!(r#""result":{{"Err":"{text}"}}"#)),
            "{json}"
        );
        let back: ClaimedFile = serde_json::from_str(&json).unwrap();
        assert_eq!(back.result, Err(failure));
        let panicked = FileError::Panicked {
            extractor: "os/dpkg",
            path: "x".into(),
        };
        assert_eq!(
            FileFailure::from(panicked).as_str(),
            "os/dpkg: x: extractor panicked on this file"
        );
        let refused = FileError::from(ExtractError::new("os/apk", "lib/apk/db/installed", "bad"));
        assert_eq!(refused.to_string(), "os/apk: lib/apk/db/installed: bad");
    }
}
