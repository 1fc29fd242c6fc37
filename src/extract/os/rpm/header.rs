//! Extract stage, rpm: parses one rpm header blob, the record every rpm database backend stores.
//!
//! A blob is `il` (index entry count) and `dl` (data length), both big-endian u32, then `il` 16-byte
//! index entries (tag, type, offset, count) and a `dl`-byte data store. Databases come from untrusted
//! images, so every count, offset and string is checked against the blob before it is used.

use super::RpmError;

/// Tag numbers from rpm's `rpmtag.h` that Vigil reads; each constant is `RPMTAG_<NAME>`.
pub mod tag {
    pub const NAME: u32 = 1000;
    pub const VERSION: u32 = 1001;
    pub const RELEASE: u32 = 1002;
    pub const EPOCH: u32 = 1003;
    pub const VENDOR: u32 = 1011;
    pub const ARCH: u32 = 1022;
    pub const SOURCERPM: u32 = 1044;
    pub const DIRINDEXES: u32 = 1116;
    pub const BASENAMES: u32 = 1117;
    pub const DIRNAMES: u32 = 1118;
}

/// Entry data types from `rpmtag.h`.
mod kind {
    pub const INT32: u32 = 4;
    pub const STRING: u32 = 6;
    pub const STRING_ARRAY: u32 = 8;
    pub const I18NSTRING: u32 = 9;
}

/// rpm itself refuses headers with more tags than this (`hdrchkTags`).
const MAX_ENTRIES: u32 = 0xffff;
/// rpm itself refuses data stores larger than this (`hdrchkData`).
const MAX_DATA: u32 = 0x0fff_ffff;
const INDEX_ENTRY_SIZE: usize = 16;

/// The fields of one installed package's header that matter for matching.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RpmHeader {
    /// `NAME`, e.g. `libuuid`.
    pub name: String,
    /// `None` when the header has no EPOCH tag, which rpm treats as epoch 0.
    pub epoch: Option<u32>,
    /// `VERSION`, e.g. `2.32.1`.
    pub version: String,
    /// `RELEASE`, e.g. `42.el8_8`.
    pub release: String,
    /// `ARCH`, e.g. `x86_64` or `noarch`.
    pub arch: Option<String>,
    /// The source RPM's file name, e.g. `curl-7.76.0-6.cm2.src.rpm`.
    pub source_rpm: Option<String>,
    /// `VENDOR`, e.g. `Red Hat, Inc.`.
    pub vendor: Option<String>,
}

#[derive(Debug, Clone, Copy)]
struct IndexEntry {
    tag: u32,
    kind: u32,
    offset: u32,
    count: u32,
}

/// A validated view of a header blob.
struct Header<'a> {
    entries: Vec<IndexEntry>,
    data: &'a [u8],
}

fn be_u32(bytes: &[u8], at: usize) -> Option<u32> {
    let slice = bytes.get(at..at.checked_add(4)?)?;
    Some(u32::from_be_bytes(slice.try_into().ok()?))
}

impl<'a> Header<'a> {
    fn parse(blob: &'a [u8]) -> Result<Header<'a>, RpmError> {
        let malformed = |reason: String| RpmError::Header(reason);
        let il = be_u32(blob, 0)
            .ok_or_else(|| malformed(format!("{} bytes is too short for a header", blob.len())))?;
        let dl = be_u32(blob, 4)
            .ok_or_else(|| malformed(format!("{} bytes is too short for a header", blob.len())))?;
        if il == 0 || il > MAX_ENTRIES {
            return Err(malformed(format!("index entry count {il} out of range")));
        }
        if dl > MAX_DATA {
            return Err(malformed(format!("data length {dl} out of range")));
        }
        // Both factors are bounded above, so this cannot overflow a usize.
        let index_end = 8 + il as usize * INDEX_ENTRY_SIZE;
        let data_end = index_end + dl as usize;
        if blob.len() < data_end {
            return Err(malformed(format!(
                "header declares {il} entries and {dl} data bytes ({data_end} bytes) but the blob has {}",
                blob.len()
            )));
        }
        let mut entries = Vec::with_capacity(il as usize);
        for at in (8..index_end).step_by(INDEX_ENTRY_SIZE) {
            // The bounds were checked above; `?` only guards against a logic slip.
            let read = |field: usize| {
                be_u32(blob, at + field).ok_or_else(|| malformed("index entry cut short".into()))
            };
            entries.push(IndexEntry {
                tag: read(0)?,
                kind: read(4)?,
                offset: read(8)?,
                count: read(12)?,
            });
        }
        Ok(Header {
            entries,
            data: &blob[index_end..data_end],
        })
    }

    fn find(&self, tag: u32) -> Option<IndexEntry> {
        self.entries.iter().copied().find(|entry| entry.tag == tag)
    }

    /// The first string of a STRING, STRING_ARRAY or I18NSTRING entry.
    fn string(&self, tag: u32) -> Result<Option<String>, RpmError> {
        let Some(entry) = self.find(tag) else {
            return Ok(None);
        };
        if !matches!(
            entry.kind,
            kind::STRING | kind::STRING_ARRAY | kind::I18NSTRING
        ) {
            return Err(RpmError::Header(format!(
                "tag {tag} has type {} where a string was expected",
                entry.kind
            )));
        }
        let start = entry.offset as usize;
        let rest = self.data.get(start..).ok_or_else(|| {
            RpmError::Header(format!(
                "tag {tag} offset {start} is past the {}-byte data store",
                self.data.len()
            ))
        })?;
        let length = rest.iter().position(|&b| b == 0).ok_or_else(|| {
            RpmError::Header(format!("tag {tag} string at {start} is not terminated"))
        })?;
        Ok(Some(String::from_utf8_lossy(&rest[..length]).into_owned()))
    }

    /// The first value of an INT32 entry.
    fn int32(&self, tag: u32) -> Result<Option<u32>, RpmError> {
        let Some(entry) = self.find(tag) else {
            return Ok(None);
        };
        if entry.kind != kind::INT32 || entry.count == 0 {
            return Err(RpmError::Header(format!(
                "tag {tag} has type {} and count {} where an INT32 was expected",
                entry.kind, entry.count
            )));
        }
        be_u32(self.data, entry.offset as usize)
            .map(Some)
            .ok_or_else(|| {
                RpmError::Header(format!(
                    "tag {tag} offset {} is past the {}-byte data store",
                    entry.offset,
                    self.data.len()
                ))
            })
    }
}

impl Header<'_> {
    /// Every string of a STRING_ARRAY entry (at most `count`, each checked against the data store).
    fn strings(&self, tag: u32) -> Result<Vec<String>, RpmError> {
        let Some(entry) = self.find(tag) else {
            return Ok(Vec::new());
        };
        if entry.kind != kind::STRING_ARRAY {
            return Err(RpmError::Header(format!(
                "tag {tag} has type {} where a string array was expected",
                entry.kind
            )));
        }
        let mut rest = self.data.get(entry.offset as usize..).ok_or_else(|| {
            RpmError::Header(format!(
                "tag {tag} offset {} is past the data store",
                entry.offset
            ))
        })?;
        // Each string takes at least its NUL byte, so a count larger than the data is a lie; check
        // before allocating for it.
        if entry.count as usize > rest.len() {
            return Err(RpmError::Header(format!(
                "tag {tag} claims {} strings in {} bytes",
                entry.count,
                rest.len()
            )));
        }
        let mut out = Vec::with_capacity(entry.count as usize);
        for _ in 0..entry.count {
            let length = rest.iter().position(|&b| b == 0).ok_or_else(|| {
                RpmError::Header(format!("tag {tag} string array is not terminated"))
            })?;
            out.push(String::from_utf8_lossy(&rest[..length]).into_owned());
            rest = &rest[length + 1..];
        }
        Ok(out)
    }

    /// Every value of an INT32 entry.
    fn int32s(&self, tag: u32) -> Result<Vec<u32>, RpmError> {
        let Some(entry) = self.find(tag) else {
            return Ok(Vec::new());
        };
        if entry.kind != kind::INT32 {
            return Err(RpmError::Header(format!(
                "tag {tag} has type {} where INT32 values were expected",
                entry.kind
            )));
        }
        let start = entry.offset as usize;
        let end = (entry.count as usize)
            .checked_mul(4)
            .and_then(|len| start.checked_add(len))
            .filter(|&end| end <= self.data.len())
            .ok_or_else(|| {
                RpmError::Header(format!(
                    "tag {tag}: {} INT32 values at {start} overrun the data store",
                    entry.count
                ))
            })?;
        Ok(self.data[start..end]
            .chunks_exact(4)
            .map(|raw| u32::from_be_bytes([raw[0], raw[1], raw[2], raw[3]]))
            .collect())
    }
}

/// Reads the package name and the files it installed (DIRNAMES[DIRINDEXES[i]] + BASENAMES[i]) from a
/// header blob, as paths without the leading `/`.
pub fn parse_file_list(blob: &[u8]) -> Result<(String, Vec<String>), RpmError> {
    let header = Header::parse(blob)?;
    let name = header
        .string(tag::NAME)?
        .filter(|name| !name.is_empty())
        .ok_or_else(|| RpmError::Header("no NAME (tag 1000)".into()))?;
    let base_names = header.strings(tag::BASENAMES)?;
    let dir_names = header.strings(tag::DIRNAMES)?;
    let dir_indexes = header.int32s(tag::DIRINDEXES)?;
    if base_names.len() != dir_indexes.len() {
        return Err(RpmError::Header(format!(
            "{} base names but {} directory indexes",
            base_names.len(),
            dir_indexes.len()
        )));
    }
    let mut paths = Vec::with_capacity(base_names.len());
    for (base, index) in base_names.iter().zip(dir_indexes) {
        let dir = dir_names.get(index as usize).ok_or_else(|| {
            RpmError::Header(format!(
                "directory index {index} is past the {} directory names",
                dir_names.len()
            ))
        })?;
        let full = format!("{dir}{base}");
        paths.push(full.trim_start_matches('/').to_string());
    }
    Ok((name, paths))
}

/// Parses a header blob as stored in an rpm database (without the 8-byte magic that `.rpm` files
/// carry) into the package's identity.
pub fn parse_header(blob: &[u8]) -> Result<RpmHeader, RpmError> {
    let header = Header::parse(blob)?;
    let required = |tag: u32, what: &str| -> Result<String, RpmError> {
        header
            .string(tag)?
            .filter(|value| !value.is_empty())
            .ok_or_else(|| RpmError::Header(format!("no {what} (tag {tag})")))
    };
    Ok(RpmHeader {
        name: required(tag::NAME, "NAME")?,
        version: required(tag::VERSION, "VERSION")?,
        release: required(tag::RELEASE, "RELEASE")?,
        epoch: header.int32(tag::EPOCH)?,
        arch: header.string(tag::ARCH)?.filter(|s| !s.is_empty()),
        source_rpm: header.string(tag::SOURCERPM)?.filter(|s| !s.is_empty()),
        vendor: header.string(tag::VENDOR)?.filter(|s| !s.is_empty()),
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Builds a header blob from (tag, type, payload) entries, aligning INT32 data as rpm does.
    pub(crate) fn build_blob(entries: &[(u32, u32, Vec<u8>)]) -> Vec<u8> {
        let mut index = Vec::new();
        let mut data = Vec::new();
        for (tag, kind, payload) in entries {
            if *kind == kind::INT32 {
                while data.len() % 4 != 0 {
                    data.push(0);
                }
            }
            let count = if *kind == kind::INT32 {
                payload.len() / 4
            } else {
                1
            };
            index.extend_from_slice(&tag.to_be_bytes());
            index.extend_from_slice(&kind.to_be_bytes());
            index.extend_from_slice(&(data.len() as u32).to_be_bytes());
            index.extend_from_slice(&(count as u32).to_be_bytes());
            data.extend_from_slice(payload);
        }
        let mut blob = Vec::new();
        blob.extend_from_slice(&(entries.len() as u32).to_be_bytes());
        blob.extend_from_slice(&(data.len() as u32).to_be_bytes());
        blob.extend_from_slice(&index);
        blob.extend_from_slice(&data);
        blob
    }

    pub(crate) fn string(value: &str) -> Vec<u8> {
        let mut bytes = value.as_bytes().to_vec();
        bytes.push(0);
        bytes
    }

    pub(crate) fn sample_blob() -> Vec<u8> {
        build_blob(&[
            (tag::NAME, kind::STRING, string("curl")),
            (tag::VERSION, kind::STRING, string("7.76.0")),
            (tag::RELEASE, kind::STRING, string("6.cm2")),
            (tag::EPOCH, kind::INT32, 1u32.to_be_bytes().to_vec()),
            (tag::ARCH, kind::STRING, string("x86_64")),
            (
                tag::SOURCERPM,
                kind::STRING,
                string("curl-7.76.0-6.cm2.src.rpm"),
            ),
        ])
    }

    #[test]
    fn reads_a_well_formed_header() {
        let header = parse_header(&sample_blob()).unwrap();
        assert_eq!(header.name, "curl");
        assert_eq!(header.epoch, Some(1));
        assert_eq!(header.release, "6.cm2");
        assert_eq!(header.arch.as_deref(), Some("x86_64"));
        assert_eq!(header.vendor, None);
    }

    #[test]
    fn every_truncation_is_an_error_not_a_panic() {
        let blob = sample_blob();
        for cut in 0..blob.len() {
            assert!(parse_header(&blob[..cut]).is_err(), "cut at {cut}");
        }
    }

    #[test]
    fn huge_declared_sizes_and_bad_offsets_are_errors() {
        // 65535 entries declared in a 16-byte blob: refused before anything is allocated for them.
        let mut blob = vec![0, 0, 0xff, 0xff, 0, 0, 0, 0];
        blob.extend_from_slice(&[0; 8]);
        assert!(parse_header(&blob).is_err());
        assert!(parse_header(&[0xff; 64]).is_err());
        assert!(parse_header(&[0; 64]).is_err());

        // An offset far past the data store.
        let mut blob = sample_blob();
        blob[8 + 8..8 + 12].copy_from_slice(&0x7fff_fff0u32.to_be_bytes());
        assert!(parse_header(&blob).is_err());

        // An unterminated string at the end of the data store.
        let blob = build_blob(&[(tag::NAME, kind::STRING, b"curl".to_vec())]);
        let error = parse_header(&blob).unwrap_err().to_string();
        assert!(error.contains("not terminated"), "{error}");

        // A string tag with an integer type.
        let blob = build_blob(&[(tag::NAME, kind::INT32, vec![0, 0, 0, 1])]);
        assert!(parse_header(&blob).is_err());
    }
}
