//! Extract stage: `os/rpm-files` reads which files each rpm package installed (BASENAMES, DIRNAMES and
//! DIRINDEXES of every header), so the merge can drop language packages that rpm itself installed:
//! a `python3-urllib3` rpm is matched against the distro's advisories, never also against PyPI's.
//!
//! It claims the same databases as `os/rpm` and reads them with the same backends; keeping it a
//! separate extractor leaves `os/rpm`'s output and cache entries unchanged.

use super::{backend_of, bdb, header, ndb, sqlite, Backend, RpmError};
use crate::extract::{ExtractError, Extracted, Extractor, OwnedFiles};

/// The `os/rpm-files` extractor.
#[derive(Debug, Clone, Copy, Default)]
pub struct RpmFiles;

/// The extractor's stable name.
pub const NAME: &str = "os/rpm-files";

/// Paths kept per database: a large Fedora image lists a few hundred thousand; more is corruption.
pub const MAX_PATHS: usize = 2_000_000;

impl Extractor for RpmFiles {
    fn name(&self) -> &'static str {
        NAME
    }

    fn version(&self) -> u32 {
        1
    }

    fn claims(&self, path: &str) -> bool {
        backend_of(path).is_some()
    }

    fn max_file_size(&self) -> u64 {
        512 * 1024 * 1024
    }

    fn extract(&self, path: &str, contents: &[u8]) -> Result<Extracted, ExtractError> {
        let backend = backend_of(path)
            .ok_or_else(|| ExtractError::new(NAME, path, "not an rpm database path"))?;
        read_owned_files(backend, contents)
            .map(Extracted::OwnedFiles)
            .map_err(|error| ExtractError::new(NAME, path, error.to_string()))
    }
}

/// Every package's installed files in a database of `backend` format.
pub fn read_owned_files(backend: Backend, contents: &[u8]) -> Result<Vec<OwnedFiles>, RpmError> {
    let blobs: Vec<Vec<u8>> = match backend {
        Backend::Sqlite => sqlite::read_blobs(contents)?,
        Backend::Ndb => ndb::read_blobs(contents)?
            .into_iter()
            .map(<[u8]>::to_vec)
            .collect(),
        Backend::BerkeleyDb => bdb::read_blobs(contents)?,
    };
    let mut owned = Vec::with_capacity(blobs.len());
    let mut total = 0usize;
    for (record, blob) in blobs.iter().enumerate() {
        let (owner, paths) = header::parse_file_list(blob).map_err(|source| RpmError::Record {
            record,
            source: Box::new(source),
        })?;
        if owner == "gpg-pubkey" || paths.is_empty() {
            continue;
        }
        total += paths.len();
        if total > MAX_PATHS {
            return Err(RpmError::Header(format!(
                "more than {MAX_PATHS} installed files listed"
            )));
        }
        owned.push(OwnedFiles { owner, paths });
    }
    Ok(owned)
}
