//! Advisory DB stage: the on-disk file (versioned header + postcard payload), its content hash, and
//! the atomic replace.
//!
//! Layout of `advisories.vigildb`:
//! `MAGIC (8) | format u32 LE | meta length u64 LE | payload length u64 LE | sha256(meta ++ payload) (32)
//! | meta (postcard) | payload (postcard Vec<Advisory>)`.
//! The checksum turns any corruption or truncation into a clear error before decoding starts, and the
//! lengths are checked against the file size first so a damaged header cannot make us allocate wildly.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use super::record::Advisory;
use super::DbError;

/// The DB file's name inside the DB directory.
pub const DB_FILE_NAME: &str = "advisories.vigildb";
const MAGIC: &[u8; 8] = b"VIGILDB\0";
/// Bumped whenever the stored types change; an older file then asks for a re-import.
pub const FORMAT_VERSION: u32 = 1;
const HEADER_LEN: usize = 8 + 4 + 8 + 8 + 32;

/// Facts about the DB kept in the file next to the advisories.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DbMeta {
    /// `sha256:<hex>` over the normalised advisories, independent of source file order.
    pub content_hash: String,
    /// RFC 3339 UTC time of the import.
    pub imported_at: String,
    /// Advisories per OSV ecosystem string (an advisory counts once in each ecosystem it names).
    pub counts_per_ecosystem: BTreeMap<String, u64>,
    /// `affected[]` entries of ecosystems Vigil cannot match, by ecosystem.
    pub unknown_ecosystems: BTreeMap<String, u64>,
    /// What was imported (paths or URLs).
    pub sources: Vec<String>,
}

/// The path of the DB file in `db_dir`.
pub fn db_path(db_dir: &Path) -> PathBuf {
    db_dir.join(DB_FILE_NAME)
}

/// The content hash of a set of advisories, which must already be sorted by id and deduplicated.
///
/// Each advisory's canonical postcard encoding is hashed with a length prefix, so the hash depends only
/// on the normalised content.
pub fn content_hash(advisories: &[Advisory]) -> Result<String, DbError> {
    let mut hasher = Sha256::new();
    hasher.update(MAGIC);
    hasher.update(FORMAT_VERSION.to_le_bytes());
    for advisory in advisories {
        let bytes = postcard::to_allocvec(advisory).map_err(DbError::Encode)?;
        hasher.update((bytes.len() as u64).to_le_bytes());
        hasher.update(&bytes);
    }
    Ok(format!("sha256:{}", hex::encode(hasher.finalize())))
}

/// Writes the DB to a temporary file in `db_dir` and renames it over the old one, so readers see either
/// the old or the new DB, never a half-written one.
pub fn write_atomically(
    db_dir: &Path,
    meta: &DbMeta,
    advisories: &[Advisory],
) -> Result<(), DbError> {
    fs::create_dir_all(db_dir).map_err(|source| DbError::Io {
        path: db_dir.to_path_buf(),
        source,
    })?;
    let meta_bytes = postcard::to_allocvec(meta).map_err(DbError::Encode)?;
    let payload = postcard::to_allocvec(advisories).map_err(DbError::Encode)?;
    let mut hasher = Sha256::new();
    hasher.update(&meta_bytes);
    hasher.update(&payload);
    let checksum = hasher.finalize();

    let temp_path = db_dir.join(format!(
        ".{DB_FILE_NAME}.tmp-{}-{:016x}",
        std::process::id(),
        rand::random::<u64>()
    ));
    let io_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| DbError::Io { path, source }
    };
    let result = (|| {
        let mut file = fs::File::create(&temp_path).map_err(io_err(&temp_path))?;
        let mut header = Vec::with_capacity(HEADER_LEN);
        header.extend_from_slice(MAGIC);
        header.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        header.extend_from_slice(&(meta_bytes.len() as u64).to_le_bytes());
        header.extend_from_slice(&(payload.len() as u64).to_le_bytes());
        header.extend_from_slice(&checksum);
        file.write_all(&header).map_err(io_err(&temp_path))?;
        file.write_all(&meta_bytes).map_err(io_err(&temp_path))?;
        file.write_all(&payload).map_err(io_err(&temp_path))?;
        // The data must be on disk before the rename makes it the DB.
        file.sync_all().map_err(io_err(&temp_path))?;
        let final_path = db_path(db_dir);
        fs::rename(&temp_path, &final_path).map_err(io_err(&final_path))?;
        // Persist the rename itself; not every platform lets a directory be opened, so this is best effort.
        if let Ok(dir) = fs::File::open(db_dir) {
            let _ = dir.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&temp_path);
    }
    result
}

/// Reads and verifies the DB file; returns its metadata and advisories.
pub fn read(db_dir: &Path) -> Result<(DbMeta, Vec<Advisory>), DbError> {
    let path = db_path(db_dir);
    let bytes = match fs::read(&path) {
        Ok(bytes) => bytes,
        Err(source) if source.kind() == std::io::ErrorKind::NotFound => {
            return Err(DbError::NotFound { path });
        }
        Err(source) => return Err(DbError::Io { path, source }),
    };
    let corrupt = |reason: String| DbError::Corrupt {
        path: path.clone(),
        reason,
    };
    if bytes.len() < HEADER_LEN || &bytes[..8] != MAGIC {
        return Err(corrupt(
            "not a Vigil advisory DB (bad magic or too short)".into(),
        ));
    }
    let format = u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes"));
    if format != FORMAT_VERSION {
        return Err(DbError::IncompatibleFormat {
            path,
            found: format,
            expected: FORMAT_VERSION,
        });
    }
    let meta_len = u64::from_le_bytes(bytes[12..20].try_into().expect("8 bytes"));
    let payload_len = u64::from_le_bytes(bytes[20..28].try_into().expect("8 bytes"));
    let body = &bytes[HEADER_LEN..];
    // Checked in u128 so absurd lengths in a damaged header cannot overflow.
    if meta_len as u128 + payload_len as u128 != body.len() as u128 {
        return Err(corrupt(format!(
            "header announces {meta_len} + {payload_len} bytes but the file holds {} (truncated?)",
            body.len()
        )));
    }
    if Sha256::digest(body).as_slice() != &bytes[28..60] {
        return Err(corrupt("checksum mismatch".into()));
    }
    let (meta_bytes, payload) = body.split_at(meta_len as usize);
    let meta: DbMeta =
        postcard::from_bytes(meta_bytes).map_err(|e| corrupt(format!("metadata: {e}")))?;
    let advisories: Vec<Advisory> =
        postcard::from_bytes(payload).map_err(|e| corrupt(format!("advisories: {e}")))?;
    Ok((meta, advisories))
}
