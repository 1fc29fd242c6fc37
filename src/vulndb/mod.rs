//! The advisory database: the OSV model, import of OSV JSON and zip exports, and the on-disk index.
//!
//! `import`/`update` build a new DB and swap it in atomically; [`Database::open`] loads it without any
//! JSON parsing and indexes it by (ecosystem, normalised package name) for the matcher.

pub mod ecosystem;
mod import;
pub mod osv;
pub mod record;
mod store;
mod update;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use serde::Serialize;

pub use import::{import, ImportReport, MAX_RECORD_BYTES};
pub use record::{
    Advisory, AffectedPackage, AffectedRange, Event, RangeKind, SeverityEntry, SeverityKind,
};
pub use store::{db_path, DB_FILE_NAME, FORMAT_VERSION};
pub use update::{export_url, update, DEFAULT_SOURCE_URL, MAX_DOWNLOAD_BYTES};

/// Why the advisory DB could not be built, updated or opened.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("no advisory DB at {path}: run `vigil db update` or `vigil db import` first")]
    NotFound { path: PathBuf },
    #[error("advisory DB {path} is corrupt: {reason}")]
    Corrupt { path: PathBuf, reason: String },
    #[error(
        "advisory DB {path} has format {found}, this Vigil reads format {expected}: re-import it"
    )]
    IncompatibleFormat {
        path: PathBuf,
        found: u32,
        expected: u32,
    },
    #[error("{path}: not a directory, .json file or .zip export")]
    UnsupportedSource { path: PathBuf },
    #[error("zip archive {path}: {source}")]
    Zip {
        path: PathBuf,
        #[source]
        source: zip::result::ZipError,
    },
    #[error("zip archive {path}: entry {entry}: {source}")]
    ZipEntry {
        path: PathBuf,
        entry: String,
        #[source]
        source: std::io::Error,
    },
    #[error("no usable advisories in {sources}: the existing DB is kept")]
    Empty { sources: String },
    #[error("cannot encode the advisory DB: {0}")]
    Encode(#[source] postcard::Error),
    #[error("invalid advisory source URL {url}: {reason}")]
    InvalidUrl { url: String, reason: String },
    #[error("download of {url} failed: {reason}")]
    Download { url: String, reason: String },
    #[error("download of {url} failed: HTTP status {status}")]
    HttpStatus { url: String, status: u16 },
}

/// What `vigil db status` shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DbStatus {
    pub path: PathBuf,
    /// Advisories in the DB.
    pub advisories: u64,
    /// Advisories per OSV ecosystem string.
    pub counts_per_ecosystem: BTreeMap<String, u64>,
    /// `sha256:<hex>` over the normalised advisories; every finding carries it.
    pub content_hash: String,
    /// RFC 3339 UTC time of the import.
    pub imported_at: String,
    /// `affected[]` entries of ecosystems Vigil cannot match, by ecosystem, from the import.
    pub unknown_ecosystems: BTreeMap<String, u64>,
    /// What the DB was imported from.
    pub sources: Vec<String>,
}

/// Index entry: an affected package of an advisory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AffectedRef {
    /// Index into [`Database::advisories`].
    pub advisory: u32,
    /// Index into that advisory's `affected`.
    pub affected: u32,
}

/// The loaded advisory DB, indexed by (ecosystem, normalised package name).
#[derive(Debug)]
pub struct Database {
    path: PathBuf,
    meta: store::DbMeta,
    advisories: Vec<Advisory>,
    /// ecosystem -> normalised name -> affected entries. Nested so lookups need no allocation.
    index: HashMap<String, HashMap<String, Vec<AffectedRef>>>,
    /// For each advisory, the number of affected entries before it: gives every entry a dense slot.
    affected_offsets: Vec<u32>,
    affected_total: usize,
}

impl Database {
    /// Loads the DB written by [`import`] or [`update`] from `db_dir`.
    pub fn open(db_dir: &Path) -> Result<Database, DbError> {
        let (meta, advisories) = store::read(db_dir)?;
        let mut index: HashMap<String, HashMap<String, Vec<AffectedRef>>> = HashMap::new();
        let mut affected_offsets = Vec::with_capacity(advisories.len());
        let mut affected_total = 0usize;
        for (advisory_index, advisory) in advisories.iter().enumerate() {
            affected_offsets.push(affected_total as u32);
            affected_total += advisory.affected.len();
            for (affected_index, affected) in advisory.affected.iter().enumerate() {
                let Some(info) = ecosystem::info(&affected.ecosystem) else {
                    continue;
                };
                let name = ecosystem::normalize_name(info.naming, &affected.name);
                index
                    .entry(affected.ecosystem.clone())
                    .or_default()
                    .entry(name)
                    .or_default()
                    .push(AffectedRef {
                        advisory: advisory_index as u32,
                        affected: affected_index as u32,
                    });
            }
        }
        Ok(Database {
            path: store::db_path(db_dir),
            meta,
            advisories,
            index,
            affected_offsets,
            affected_total,
        })
    }

    /// Counts, hash and import time of the loaded DB.
    pub fn status(&self) -> DbStatus {
        DbStatus {
            path: self.path.clone(),
            advisories: self.advisories.len() as u64,
            counts_per_ecosystem: self.meta.counts_per_ecosystem.clone(),
            content_hash: self.meta.content_hash.clone(),
            imported_at: self.meta.imported_at.clone(),
            unknown_ecosystems: self.meta.unknown_ecosystems.clone(),
            sources: self.meta.sources.clone(),
        }
    }

    /// The DB's content hash (`sha256:<hex>`).
    pub fn content_hash(&self) -> &str {
        &self.meta.content_hash
    }

    /// All advisories, sorted by id.
    pub fn advisories(&self) -> &[Advisory] {
        &self.advisories
    }

    /// The advisory with `id`, if present.
    pub fn advisory(&self, id: &str) -> Option<&Advisory> {
        self.advisories
            .binary_search_by(|a| a.id.as_str().cmp(id))
            .ok()
            .map(|i| &self.advisories[i])
    }

    /// The affected entries for a package in `ecosystem` (full OSV string, e.g. `Debian:11`) whose
    /// name, normalised as the ecosystem requires, is `normalised_name`.
    pub fn lookup(&self, ecosystem: &str, normalised_name: &str) -> &[AffectedRef] {
        self.index
            .get(ecosystem)
            .and_then(|names| names.get(normalised_name))
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }

    /// How many affected entries the DB holds; [`Database::affected_slot`] numbers them densely.
    pub fn affected_total(&self) -> usize {
        self.affected_total
    }

    /// A dense number in `0..affected_total()` for an index entry, for per-run caches.
    pub fn affected_slot(&self, entry: AffectedRef) -> usize {
        self.affected_offsets[entry.advisory as usize] as usize + entry.affected as usize
    }

    /// Resolves an index entry.
    pub fn resolve(&self, entry: AffectedRef) -> (&Advisory, &AffectedPackage) {
        let advisory = &self.advisories[entry.advisory as usize];
        (advisory, &advisory.affected[entry.affected as usize])
    }
}
