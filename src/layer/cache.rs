//! Layer cache: per-layer results on disk, one file per (layer digest, extractor name, extractor
//! version), so a base layer shared by many images is downloaded and parsed once, across runs too, and
//! bumping one extractor's version invalidates only its entries. Entries carry a checksum and are
//! written through a temporary file and a rename; anything that does not verify is treated as missing.

use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::extract::Extractor;
use crate::model::Digest;

use super::{ClaimedFile, ClaimedLink, ExtractorVersion, LayerInventory};

/// Bumped when the entry layout changes; older entries are then ignored.
const FORMAT: u32 = 1;

/// Entries larger than this are not read (a cache file can be damaged or planted).
const MAX_ENTRY_BYTES: u64 = 512 * 1024 * 1024;

/// Why the cache could not be used. Reads never fail this way (a bad entry is a miss); writes and
/// opening the directory can.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error("layer cache {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("layer cache {path}: cannot encode entry: {source}")]
    Encode {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
}

/// One stored entry: the part of a layer's inventory one extractor produced, plus the layer-wide facts.
#[derive(Debug, Serialize, Deserialize)]
struct Entry {
    format: u32,
    digest: Digest,
    extractor: String,
    version: u32,
    files: Vec<ClaimedFile>,
    links: Vec<ClaimedLink>,
    whiteouts: Vec<String>,
    opaque_dirs: Vec<String>,
    problems: Vec<String>,
}

/// What the cache holds for a layer and which extractors still need a walk.
pub struct CacheLookup {
    /// The cached part: only the extractors that hit. Absorb a fresh walk of `missing` into it.
    pub cached: LayerInventory,
    /// Extractors with no valid entry; walk the layer for these only (none: skip the download).
    pub missing: Vec<&'static dyn Extractor>,
}

/// An on-disk cache of layer inventories.
#[derive(Debug, Clone)]
pub struct LayerCache {
    root: PathBuf,
}

/// Percent-encodes an extractor name into one safe file-name component (`os/dpkg` -> `os%2Fdpkg`);
/// unlike replacing characters, distinct names never collide.
fn encode_name(name: &str) -> String {
    let mut encoded = String::with_capacity(name.len() + 4);
    for byte in name.bytes() {
        if byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_' {
            encoded.push(byte as char);
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

impl LayerCache {
    /// Opens (creating if needed) a cache rooted at `dir`.
    pub fn open(dir: impl Into<PathBuf>) -> Result<LayerCache, CacheError> {
        let root = dir.into();
        fs::create_dir_all(&root).map_err(|source| CacheError::Io {
            path: root.clone(),
            source,
        })?;
        Ok(LayerCache { root })
    }

    /// The directory of a layer's entries, sharded by the first two hex digits.
    fn layer_dir(&self, digest: &Digest) -> PathBuf {
        let hex = digest.hex();
        self.root
            .join(digest.algorithm().as_str())
            .join(&hex[..2])
            .join(hex)
    }

    fn entry_path(&self, digest: &Digest, name: &str, version: u32) -> PathBuf {
        self.layer_dir(digest)
            .join(format!("{}@v{version}.json", encode_name(name)))
    }

    /// Reads and verifies one entry; any problem is a miss.
    fn read_entry(&self, digest: &Digest, name: &str, version: u32) -> Option<Entry> {
        let path = self.entry_path(digest, name, version);
        let file = fs::File::open(&path).ok()?;
        let mut bytes = Vec::new();
        file.take(MAX_ENTRY_BYTES + 1)
            .read_to_end(&mut bytes)
            .ok()?;
        match verify(&bytes, digest, name, version) {
            Ok(entry) => Some(entry),
            Err(reason) => {
                tracing::warn!(path = %path.display(), reason, "ignoring corrupt layer cache entry");
                None
            }
        }
    }

    /// Splits `extractors` into what the cache holds for `digest` and what still needs a walk.
    pub fn lookup(&self, digest: &Digest, extractors: &[&'static dyn Extractor]) -> CacheLookup {
        let mut cached = LayerInventory::new(digest.clone());
        let mut missing = Vec::new();
        for extractor in extractors {
            match self.read_entry(digest, extractor.name(), extractor.version()) {
                Some(entry) => {
                    let mut part = LayerInventory::new(digest.clone());
                    part.extractors.push(ExtractorVersion {
                        name: entry.extractor,
                        version: entry.version,
                    });
                    part.files = entry.files;
                    part.links = entry.links;
                    part.whiteouts = entry.whiteouts;
                    part.opaque_dirs = entry.opaque_dirs;
                    part.problems = entry.problems;
                    cached.absorb(part);
                }
                None => missing.push(*extractor),
            }
        }
        CacheLookup { cached, missing }
    }

    /// The extractors with no valid entry for `digest`. Empty means the layer need not be downloaded.
    pub fn missing_extractors(
        &self,
        digest: &Digest,
        extractors: &[&'static dyn Extractor],
    ) -> Vec<&'static dyn Extractor> {
        self.lookup(digest, extractors).missing
    }

    /// The whole inventory of `digest` for `extractors` when every one of them is cached.
    pub fn get(
        &self,
        digest: &Digest,
        extractors: &[&'static dyn Extractor],
    ) -> Option<LayerInventory> {
        let lookup = self.lookup(digest, extractors);
        lookup.missing.is_empty().then_some(lookup.cached)
    }

    /// Stores one entry per extractor the inventory was walked with. A failed walk (`errors` not empty)
    /// is not stored: it may be a passing network fault. Returns the number of entries written.
    pub fn put(&self, inventory: &LayerInventory) -> Result<usize, CacheError> {
        if !inventory.errors.is_empty() {
            return Ok(0);
        }
        let dir = self.layer_dir(&inventory.digest);
        fs::create_dir_all(&dir).map_err(|source| CacheError::Io {
            path: dir.clone(),
            source,
        })?;
        for extractor in &inventory.extractors {
            let entry = Entry {
                format: FORMAT,
                digest: inventory.digest.clone(),
                extractor: extractor.name.clone(),
                version: extractor.version,
                files: inventory
                    .files
                    .iter()
                    .filter(|file| file.extractor == extractor.name)
                    .cloned()
                    .collect(),
                links: inventory
                    .links
                    .iter()
                    .filter(|link| link.extractor == extractor.name)
                    .cloned()
                    .collect(),
                whiteouts: inventory.whiteouts.clone(),
                opaque_dirs: inventory.opaque_dirs.clone(),
                problems: inventory.problems.clone(),
            };
            let path = self.entry_path(&inventory.digest, &extractor.name, extractor.version);
            let body = serde_json::to_vec(&entry).map_err(|source| CacheError::Encode {
                path: path.clone(),
                source,
            })?;
            write_atomically(&dir, &path, &body).map_err(|source| CacheError::Io {
                path: path.clone(),
                source,
            })?;
        }
        Ok(inventory.extractors.len())
    }
}

/// Checks the header line (`sha256:<hex of body>`) and that the entry is the one asked for.
fn verify(bytes: &[u8], digest: &Digest, name: &str, version: u32) -> Result<Entry, &'static str> {
    if bytes.len() as u64 > MAX_ENTRY_BYTES {
        return Err("entry too large");
    }
    let newline = bytes
        .iter()
        .position(|&b| b == b'\n')
        .ok_or("no header line")?;
    let (header, body) = (&bytes[..newline], &bytes[newline + 1..]);
    let expected = Digest::sha256_of(body).to_string();
    if header != expected.as_bytes() {
        return Err("checksum mismatch");
    }
    let entry: Entry = serde_json::from_slice(body).map_err(|_| "not a valid entry")?;
    if entry.format != FORMAT
        || &entry.digest != digest
        || entry.extractor != name
        || entry.version != version
    {
        return Err("entry is for another key or format");
    }
    Ok(entry)
}

/// Writes `body` under a checksum header to a temporary file in `dir`, then renames it over `path`, so
/// readers see the old entry or the new one, never half of one.
fn write_atomically(dir: &Path, path: &Path, body: &[u8]) -> io::Result<()> {
    let temporary = dir.join(format!(
        ".tmp-{}-{:016x}",
        std::process::id(),
        rand::random::<u64>()
    ));
    let result = (|| {
        let mut file = fs::File::create(&temporary)?;
        file.write_all(Digest::sha256_of(body).to_string().as_bytes())?;
        file.write_all(b"\n")?;
        file.write_all(body)?;
        file.flush()?;
        drop(file);
        fs::rename(&temporary, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&temporary);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_encode_without_collisions() {
        assert_eq!(encode_name("os/dpkg"), "os%2Fdpkg");
        assert_ne!(encode_name("os/dpkg"), encode_name("os_dpkg"));
        assert_eq!(encode_name("../x"), "%2E%2E%2Fx");
    }
}
