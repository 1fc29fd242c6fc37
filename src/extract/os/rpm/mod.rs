//! Extract stage: `os/rpm` reads rpm package databases in all three backends rpm has used: SQLite
//! (`rpmdb.sqlite`), NDB (`Packages.db`) and Berkeley DB hash (`Packages`).
//!
//! Each backend only stores header blobs; [`header`] turns a blob into name, epoch, version, release,
//! arch and source RPM. RPM-based advisories (AlmaLinux, Rocky, Red Hat, SUSE) name source packages,
//! so the source RPM's name and version are reported as the package's source.

pub mod bdb;
pub mod files;
pub mod header;
pub mod ndb;
pub mod sqlite;

use crate::extract::os::os_package;
use crate::extract::{ExtractError, Extracted, Extractor};
use crate::model::Package;

pub use header::{parse_header, RpmHeader};

/// The `os/rpm` extractor.
#[derive(Debug, Clone, Copy, Default)]
pub struct Rpm;

/// The extractor's stable name.
pub const NAME: &str = "os/rpm";

/// Why an rpm database could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RpmError {
    /// A header blob is malformed.
    #[error("malformed rpm header: {0}")]
    Header(String),
    /// The SQLite backend could not be read.
    #[error("rpm sqlite database: {0}")]
    Sqlite(String),
    /// The NDB backend is malformed.
    #[error("rpm ndb database: {0}")]
    Ndb(String),
    /// The Berkeley DB backend is malformed.
    #[error("rpm berkeley db: {0}")]
    Bdb(String),
    /// One package's header in an otherwise readable database is malformed.
    #[error("package record {record}: {source}")]
    Record {
        /// The record's position in the database's storage order, from 0.
        record: usize,
        /// What is wrong with it.
        #[source]
        source: Box<RpmError>,
    },
}

/// Which storage format a claimed path holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// `rpmdb.sqlite` (rpm >= 4.16).
    Sqlite,
    /// `Packages.db` (SUSE's native backend).
    Ndb,
    /// `Packages`, a Berkeley DB hash database (rpm < 4.16).
    BerkeleyDb,
}

/// The directories rpm keeps its database in: the classic one and the `/usr` one of newer
/// Fedora/openSUSE releases.
const DB_DIRS: [&str; 2] = ["var/lib/rpm/", "usr/lib/sysimage/rpm/"];

/// The backend a database path holds, or `None` when the path is no rpm database.
pub fn backend_of(path: &str) -> Option<Backend> {
    let file = DB_DIRS.iter().find_map(|dir| path.strip_prefix(dir))?;
    match file {
        "rpmdb.sqlite" => Some(Backend::Sqlite),
        "Packages.db" => Some(Backend::Ndb),
        "Packages" => Some(Backend::BerkeleyDb),
        _ => None,
    }
}

impl Extractor for Rpm {
    fn name(&self) -> &'static str {
        NAME
    }

    fn version(&self) -> u32 {
        1
    }

    fn claims(&self, path: &str) -> bool {
        backend_of(path).is_some()
    }

    /// rpm databases of large images reach a few hundred MiB.
    fn max_file_size(&self) -> u64 {
        512 * 1024 * 1024
    }

    fn extract(&self, path: &str, contents: &[u8]) -> Result<Extracted, ExtractError> {
        let backend = backend_of(path)
            .ok_or_else(|| ExtractError::new(NAME, path, "not an rpm database path"))?;
        read_database(backend, path, contents)
            .map(Extracted::Packages)
            .map_err(|error| ExtractError::new(NAME, path, error.to_string()))
    }
}

/// Reads every installed package of a database in `backend` format. `location` is recorded on each
/// package.
pub fn read_database(
    backend: Backend,
    location: &str,
    contents: &[u8],
) -> Result<Vec<Package>, RpmError> {
    let headers = match backend {
        Backend::Sqlite => parse_all(sqlite::read_blobs(contents)?.iter().map(Vec::as_slice))?,
        Backend::Ndb => parse_all(ndb::read_blobs(contents)?.into_iter())?,
        Backend::BerkeleyDb => parse_all(bdb::read_blobs(contents)?.iter().map(Vec::as_slice))?,
    };
    Ok(headers
        .into_iter()
        .filter(is_software)
        .map(|header| to_package(location, header))
        .collect())
}

/// gpg-pubkey entries are imported signing keys that rpm stores as pseudo packages; they are no
/// installed software and no advisory names them.
fn is_software(header: &RpmHeader) -> bool {
    header.name != "gpg-pubkey"
}

fn parse_all<'a>(blobs: impl Iterator<Item = &'a [u8]>) -> Result<Vec<RpmHeader>, RpmError> {
    blobs
        .enumerate()
        .map(|(record, blob)| {
            parse_header(blob).map_err(|source| RpmError::Record {
                record,
                source: Box::new(source),
            })
        })
        .collect()
}

/// `[epoch:]version-release`, with the epoch only when non-zero, as OSV's RPM ecosystems write it.
pub fn evr(epoch: Option<u32>, version: &str, release: &str) -> String {
    match epoch {
        Some(epoch) if epoch != 0 => format!("{epoch}:{version}-{release}"),
        _ => format!("{version}-{release}"),
    }
}

/// Splits a source RPM file name such as `curl-7.76.0-6.cm2.src.rpm` into name (`curl`) and
/// `version-release` (`7.76.0-6.cm2`). Returns `None` when the name does not have that shape.
pub fn split_source_rpm(file: &str) -> Option<(&str, &str)> {
    let stem = file.strip_suffix(".rpm")?;
    // The architecture field is `src` or `nosrc`.
    let (stem, _arch) = stem.rsplit_once('.')?;
    let (name_version, _release) = stem.rsplit_once('-')?;
    let (name, _version) = name_version.rsplit_once('-')?;
    if name.is_empty() {
        return None;
    }
    Some((name, &stem[name.len() + 1..]))
}

fn to_package(location: &str, header: RpmHeader) -> Package {
    let version = evr(header.epoch, &header.version, &header.release);
    let mut package = os_package(NAME, location, header.name.clone(), version.clone());
    let source = header.source_rpm.as_deref().and_then(split_source_rpm);
    match source {
        Some((source_name, source_version)) => {
            package.source_name = Some(source_name.to_string());
            // A source RPM's file name omits the epoch, but the epoch is set once in the spec file
            // and shared by every binary package built from it, so it belongs to the source too.
            package.source_version = Some(match header.epoch {
                Some(epoch) if epoch != 0 => format!("{epoch}:{source_version}"),
                _ => source_version.to_string(),
            });
        }
        // No (parsable) source RPM: the package stands for itself.
        None => {
            package.source_name = Some(header.name);
            package.source_version = Some(version);
        }
    }
    package.arch = header.arch;
    package
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_database_paths_by_backend() {
        let cases = [
            ("var/lib/rpm/rpmdb.sqlite", Some(Backend::Sqlite)),
            ("usr/lib/sysimage/rpm/rpmdb.sqlite", Some(Backend::Sqlite)),
            ("var/lib/rpm/Packages.db", Some(Backend::Ndb)),
            ("usr/lib/sysimage/rpm/Packages.db", Some(Backend::Ndb)),
            ("var/lib/rpm/Packages", Some(Backend::BerkeleyDb)),
            ("var/lib/rpm/Name", None),
            ("var/lib/rpm/rpmdb.sqlite-wal", None),
            ("var/lib/rpm/sub/Packages", None),
            ("opt/var/lib/rpm/Packages", None),
        ];
        for (path, want) in cases {
            assert_eq!(backend_of(path), want, "{path}");
            assert_eq!(Rpm.claims(path), want.is_some(), "{path}");
        }
    }

    #[test]
    fn versions_and_source_rpms() {
        assert_eq!(evr(None, "1.0", "1.el9"), "1.0-1.el9");
        assert_eq!(evr(Some(0), "1.0", "1.el9"), "1.0-1.el9");
        assert_eq!(evr(Some(2), "1.0", "1.el9"), "2:1.0-1.el9");
        assert_eq!(
            split_source_rpm("curl-7.76.0-6.cm2.src.rpm"),
            Some(("curl", "7.76.0-6.cm2"))
        );
        assert_eq!(
            split_source_rpm("gcc11-11.2.1+git610-1.3.9.src.rpm"),
            Some(("gcc11", "11.2.1+git610-1.3.9"))
        );
        assert_eq!(
            split_source_rpm("python3-pip-21.2.3-6.el9.nosrc.rpm"),
            Some(("python3-pip", "21.2.3-6.el9"))
        );
        assert_eq!(split_source_rpm("garbage"), None);
        assert_eq!(split_source_rpm("-1-2.src.rpm"), None);
    }

    #[test]
    fn a_header_becomes_a_package_with_its_source() {
        let blob = header::tests::sample_blob();
        let package = to_package("var/lib/rpm/Packages", parse_header(&blob).unwrap());
        assert_eq!(package.version, "1:7.76.0-6.cm2");
        assert_eq!(package.source_name.as_deref(), Some("curl"));
        assert_eq!(package.source_version.as_deref(), Some("1:7.76.0-6.cm2"));
        assert_eq!(package.arch.as_deref(), Some("x86_64"));
        assert_eq!(package.extractor, NAME);
    }

    #[test]
    fn signing_keys_are_not_packages() {
        let mut header = parse_header(&header::tests::sample_blob()).unwrap();
        assert!(is_software(&header));
        header.name = "gpg-pubkey".to_string();
        assert!(!is_software(&header));
    }

    #[test]
    fn garbage_databases_are_errors_in_every_backend() {
        for path in [
            "var/lib/rpm/rpmdb.sqlite",
            "var/lib/rpm/Packages.db",
            "var/lib/rpm/Packages",
        ] {
            for garbage in [&b""[..], &[0u8; 100][..], &[0xffu8; 8192][..]] {
                let error = Rpm.extract(path, garbage).unwrap_err();
                assert_eq!(error.extractor, NAME);
                assert_eq!(error.path, path);
            }
        }
    }
}
