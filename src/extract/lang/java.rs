//! Extract stage: `lang/java` reads Java archives (`.jar`, `.war`, `.ear`), including archives nested
//! inside them (fat jars, `WEB-INF/lib`), to name the Maven artifacts an image ships.
//!
//! `META-INF/maven/<group>/<artifact>/pom.properties` is the authority (Maven writes it when packaging);
//! an archive without one falls back to `META-INF/MANIFEST.MF`. Nesting is bounded in depth and in the
//! bytes held, so memory stays bounded whatever an archive contains.

use std::io::{Cursor, Read, Seek};

use zip::ZipArchive;

use crate::extract::lang::{base_name, lang_package, shorten};
use crate::extract::{ExtractError, Extracted, Extractor};
use crate::model::Package;

/// The `lang/java` extractor.
#[derive(Debug, Clone, Copy, Default)]
pub struct Java;

/// The extractor's stable name.
pub const NAME: &str = "lang/java";
/// OSV's ecosystem name for Maven artifacts.
pub const ECOSYSTEM: &str = "Maven";

/// Archives inside archives are opened this deep (outer archive = depth 0); deeper is an error.
pub const MAX_DEPTH: usize = 3;
/// A nested archive is decompressed into memory; larger ones are an error rather than a big read.
pub const MAX_NESTED_SIZE: u64 = 64 * 1024 * 1024;
/// pom.properties and MANIFEST.MF files are tiny; larger ones are not what they claim to be.
const MAX_METADATA_SIZE: u64 = 1024 * 1024;
/// Entries in one archive's directory; real jars have thousands, not millions.
const MAX_ENTRIES: usize = 500_000;

fn is_archive_name(name: &str) -> bool {
    // Compared as bytes: `claims` runs this for every tar entry.
    let bytes = name.as_bytes();
    bytes.len() > 4
        && bytes[bytes.len() - 4] == b'.'
        && [b"jar", b"war", b"ear"]
            .iter()
            .any(|known| bytes[bytes.len() - 3..].eq_ignore_ascii_case(*known))
}

impl Extractor for Java {
    fn name(&self) -> &'static str {
        NAME
    }

    fn version(&self) -> u32 {
        1
    }

    fn claims(&self, path: &str) -> bool {
        is_archive_name(base_name(path))
    }

    fn max_file_size(&self) -> u64 {
        256 * 1024 * 1024
    }

    fn extract(&self, path: &str, contents: &[u8]) -> Result<Extracted, ExtractError> {
        let mut packages = Vec::new();
        scan_archive(path, Cursor::new(contents), 0, &mut packages)
            .map_err(|reason| ExtractError::new(NAME, path, reason))?;
        packages.sort();
        packages.dedup();
        Ok(Extracted::Packages(packages))
    }
}

/// Why a jar/war/ear (or an archive nested in it) could not be read. `entry` names the member inside
/// the archive, so the reason says where in a fat jar the problem is.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// Not a zip archive, or its central directory is damaged.
    #[error("not a readable zip archive: {0}")]
    NotZip(zip::result::ZipError),
    /// More members than [`MAX_ENTRIES`]; reading them all would be an attack on the walk.
    #[error("archive lists {entries} entries, over the limit of {MAX_ENTRIES}")]
    TooManyEntries { entries: usize },
    #[error("{entry}: cannot open entry: {source}")]
    OpenEntry {
        entry: String,
        source: zip::result::ZipError,
    },
    /// The member declares more bytes than the limit for its kind.
    #[error("{entry}: {size} bytes, over the limit of {limit}")]
    EntryTooLarge {
        entry: String,
        size: u64,
        limit: u64,
    },
    #[error("{entry}: cannot read entry: {source}")]
    ReadEntry {
        entry: String,
        source: std::io::Error,
    },
    /// The member inflates past its limit whatever it declares (a zip bomb).
    #[error("{entry}: inflates past the limit of {limit} bytes")]
    InflatesTooFar { entry: String, limit: u64 },
    /// An archive nested deeper than [`MAX_DEPTH`].
    #[error("{entry}: archives nested more than {MAX_DEPTH} deep were not read")]
    NestedTooDeep { entry: String },
    /// A nested archive's own problem, prefixed with where it sits.
    #[error("{entry}: {source}")]
    Nested {
        entry: String,
        source: Box<ArchiveError>,
    },
}

/// Reads one entry fully, refusing more than `limit` bytes whatever its header declares.
fn read_entry<R: Read + Seek>(
    archive: &mut ZipArchive<R>,
    index: usize,
    limit: u64,
    inner: &str,
) -> Result<Vec<u8>, ArchiveError> {
    let entry = archive
        .by_index(index)
        .map_err(|source| ArchiveError::OpenEntry {
            entry: inner.to_string(),
            source,
        })?;
    if entry.size() > limit {
        return Err(ArchiveError::EntryTooLarge {
            entry: inner.to_string(),
            size: entry.size(),
            limit,
        });
    }
    let mut data = Vec::with_capacity(usize::try_from(entry.size().min(1 << 20)).unwrap_or(0));
    // The declared size can lie (a zip bomb); `take` bounds what is really inflated.
    entry
        .take(limit + 1)
        .read_to_end(&mut data)
        .map_err(|source| ArchiveError::ReadEntry {
            entry: inner.to_string(),
            source,
        })?;
    if data.len() as u64 > limit {
        return Err(ArchiveError::InflatesTooFar {
            entry: inner.to_string(),
            limit,
        });
    }
    Ok(data)
}

/// Scans one archive (and the archives inside it) for Maven metadata, appending packages. `location`
/// is the archive's path in the image: nested finds are reported at the outer file, which is what the
/// image holds.
fn scan_archive<R: Read + Seek>(
    location: &str,
    reader: R,
    depth: usize,
    packages: &mut Vec<Package>,
) -> Result<(), ArchiveError> {
    let mut archive = ZipArchive::new(reader).map_err(ArchiveError::NotZip)?;
    if archive.len() > MAX_ENTRIES {
        return Err(ArchiveError::TooManyEntries {
            entries: archive.len(),
        });
    }
    let mut poms = Vec::new();
    let mut manifest = None;
    let mut nested = Vec::new();
    for name in archive.file_names() {
        if name.starts_with("META-INF/maven/") && name.ends_with("/pom.properties") {
            poms.push(name.to_string());
        } else if name.eq_ignore_ascii_case("META-INF/MANIFEST.MF") {
            manifest = Some(name.to_string());
        } else if is_archive_name(name) && !name.ends_with('/') {
            nested.push(name.to_string());
        }
    }
    let index_of = |archive: &ZipArchive<R>, name: &str| archive.index_for_name(name);
    let mut found_pom = false;
    for name in &poms {
        let Some(index) = index_of(&archive, name) else {
            continue;
        };
        let data = read_entry(&mut archive, index, MAX_METADATA_SIZE, name)?;
        if let Some(package) = parse_pom_properties(location, &data) {
            packages.push(package);
            found_pom = true;
        }
    }
    if !found_pom {
        if let Some(name) = &manifest {
            if let Some(index) = index_of(&archive, name) {
                let data = read_entry(&mut archive, index, MAX_METADATA_SIZE, name)?;
                if let Some(package) = parse_manifest(location, &data) {
                    packages.push(package);
                }
            }
        }
    }
    for name in &nested {
        if depth + 1 > MAX_DEPTH {
            return Err(ArchiveError::NestedTooDeep {
                entry: name.clone(),
            });
        }
        let Some(index) = index_of(&archive, name) else {
            continue;
        };
        let data = read_entry(&mut archive, index, MAX_NESTED_SIZE, name)?;
        // Only one nested archive's bytes per level are held at a time: memory is bounded by
        // MAX_DEPTH * MAX_NESTED_SIZE on top of the outer file.
        scan_archive(location, Cursor::new(data), depth + 1, packages).map_err(|source| {
            ArchiveError::Nested {
                entry: name.clone(),
                source: Box::new(source),
            }
        })?;
    }
    Ok(())
}

/// `key=value` lines of a Java properties file (comments and blank lines skipped).
fn properties(data: &[u8]) -> impl Iterator<Item = (String, String)> + '_ {
    data.split(|&b| b == b'\n').filter_map(|line| {
        let line = String::from_utf8_lossy(line);
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with('!') {
            return None;
        }
        let (key, value) = line.split_once(['=', ':'])?;
        Some((key.trim().to_string(), value.trim().to_string()))
    })
}

/// A `pom.properties` file: `groupId`, `artifactId` and `version` make the package.
pub fn parse_pom_properties(location: &str, data: &[u8]) -> Option<Package> {
    let (mut group, mut artifact, mut version) = (None, None, None);
    for (key, value) in properties(data) {
        match key.as_str() {
            "groupId" => group = Some(value),
            "artifactId" => artifact = Some(value),
            "version" => version = Some(value),
            _ => {}
        }
    }
    let (group, artifact, version) = (group?, artifact?, version?);
    if group.is_empty() || artifact.is_empty() || version.is_empty() {
        return None;
    }
    Some(lang_package(
        NAME,
        ECOSYSTEM,
        location,
        format!("{group}:{artifact}"),
        version,
    ))
}

/// A `MANIFEST.MF` without Maven metadata: the group from `Implementation-Vendor-Id` (or the
/// bundle's symbolic name), the artifact from `Implementation-Title`, the version from
/// `Implementation-Version` or `Bundle-Version`. Without a group there is no Maven coordinate, so
/// nothing is reported rather than a guess.
pub fn parse_manifest(location: &str, data: &[u8]) -> Option<Package> {
    let text = String::from_utf8_lossy(data);
    let mut fields: Vec<(String, String)> = Vec::new();
    for raw in text.split('\n') {
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        if let Some(continued) = line.strip_prefix(' ') {
            // Manifest lines wrap at 72 bytes with a leading space on the continuation.
            if let Some((_, value)) = fields.last_mut() {
                value.push_str(continued);
            }
            continue;
        }
        if let Some((key, value)) = line.split_once(':') {
            fields.push((key.trim().to_string(), value.trim().to_string()));
        }
    }
    let get = |key: &str| {
        fields
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.split(';').next().unwrap_or("").trim().to_string())
            .filter(|v| !v.is_empty())
    };
    let version = get("Implementation-Version").or_else(|| get("Bundle-Version"))?;
    let symbolic = get("Bundle-SymbolicName");
    let (group, artifact) = match (get("Implementation-Vendor-Id"), get("Implementation-Title")) {
        (Some(group), Some(artifact)) => (group, artifact),
        _ => {
            // OSGi bundles name themselves `group.artifact`; the last dot splits them.
            let symbolic = symbolic?;
            let (group, artifact) = symbolic.rsplit_once('.')?;
            (group.to_string(), artifact.to_string())
        }
    };
    if group.contains(' ') || artifact.contains(' ') {
        // A human title ("Apache Commons Lang"), not a coordinate.
        return None;
    }
    Some(lang_package(
        NAME,
        ECOSYSTEM,
        location,
        format!("{}:{}", shorten(&group), shorten(&artifact)),
        version,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_java_archives() {
        for (path, want) in [
            ("app/app.jar", true),
            ("opt/x/APP.WAR", true),
            ("a.ear", true),
            ("a.jar.sha1", false),
            ("jar", false),
            ("lib/a.zip", false),
        ] {
            assert_eq!(Java.claims(path), want, "{path}");
        }
    }

    #[test]
    fn manifest_fallbacks() {
        let text = b"Manifest-Version: 1.0\r\nImplementation-Vendor-Id: org.example\r\nImplementation-Title: widg\r\n et\r\nImplementation-Version: 2.1\r\n";
        let package = parse_manifest("a.jar", text).unwrap();
        assert_eq!(
            (package.name.as_str(), package.version.as_str()),
            ("org.example:widget", "2.1")
        );
        let osgi = b"Bundle-SymbolicName: org.apache.commons.lang3;singleton:=true\nBundle-Version: 3.12.0\n";
        assert_eq!(
            parse_manifest("a.jar", osgi).unwrap().name,
            "org.apache.commons:lang3"
        );
        assert!(parse_manifest(
            "a.jar",
            b"Implementation-Title: Some Title\nImplementation-Version: 1\n"
        )
        .is_none());
        assert!(parse_pom_properties("a.jar", b"groupId=g\nversion=1\n").is_none());
    }

    #[test]
    fn garbage_is_an_error() {
        assert!(Java.extract("a.jar", b"PK\x03\x04 not really").is_err());
        assert!(Java.extract("a.jar", b"").is_err());
    }

    /// The reasons become coverage reasons stored in the warehouse: their text must not drift.
    #[test]
    fn reasons_keep_their_text() {
        let error = Java.extract("a.jar", b"").unwrap_err();
        assert!(
            error.reason.starts_with("not a readable zip archive: "),
            "{error}"
        );
        let nested = ArchiveError::Nested {
            entry: "lib/a.jar".into(),
            source: Box::new(ArchiveError::NestedTooDeep {
                entry: "lib/b.jar".into(),
            }),
        };
        assert_eq!(
            nested.to_string(),
            format!(
                "lib/a.jar: lib/b.jar: archives nested more than {MAX_DEPTH} deep were not read"
            )
        );
        let bomb = ArchiveError::InflatesTooFar {
            entry: "META-INF/x".into(),
            limit: 10,
        };
        assert_eq!(
            bomb.to_string(),
            "META-INF/x: inflates past the limit of 10 bytes"
        );
    }
}
