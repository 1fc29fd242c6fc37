//! Extract stage, binaries: the little of ELF the binary extractors need (program headers to find the
//! data segment, section headers to find a named section), read from byte slices with every offset
//! checked, so a corrupt or hostile file gives an error instead of a panic or a huge allocation.

/// The four bytes every ELF file starts with.
pub const MAGIC: &[u8; 4] = b"\x7fELF";

const PT_LOAD: u32 = 1;
const PF_X: u32 = 1;
const PF_W: u32 = 2;
/// More headers than this is corruption, not a real executable.
const MAX_HEADERS: usize = 0xffff;

/// Why an ELF file could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("ELF: {0}")]
pub struct ElfError(pub String);

/// The identification and header fields of an ELF file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub is_64: bool,
    pub little_endian: bool,
    pub phoff: u64,
    pub phentsize: u16,
    pub phnum: u16,
    pub shoff: u64,
    pub shentsize: u16,
    pub shnum: u16,
    pub shstrndx: u16,
}

/// A section's name offset, file offset and size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Section {
    pub name: u32,
    pub offset: u64,
    pub size: u64,
}

fn err(reason: impl Into<String>) -> ElfError {
    ElfError(reason.into())
}

impl Header {
    /// Parses the ELF header at the start of `bytes`.
    pub fn parse(bytes: &[u8]) -> Result<Header, ElfError> {
        if bytes.len() < 52 || &bytes[..4] != MAGIC {
            return Err(err("not an ELF file or header truncated"));
        }
        let is_64 = match bytes[4] {
            1 => false,
            2 => true,
            other => return Err(err(format!("unknown ELF class {other}"))),
        };
        let little_endian = match bytes[5] {
            1 => true,
            2 => false,
            other => return Err(err(format!("unknown ELF data encoding {other}"))),
        };
        let reader = Reader {
            bytes,
            little_endian,
        };
        let header = if is_64 {
            Header {
                is_64,
                little_endian,
                phoff: reader.u64(32)?,
                shoff: reader.u64(40)?,
                phentsize: reader.u16(54)?,
                phnum: reader.u16(56)?,
                shentsize: reader.u16(58)?,
                shnum: reader.u16(60)?,
                shstrndx: reader.u16(62)?,
            }
        } else {
            Header {
                is_64,
                little_endian,
                phoff: reader.u32(28)?.into(),
                shoff: reader.u32(32)?.into(),
                phentsize: reader.u16(42)?,
                phnum: reader.u16(44)?,
                shentsize: reader.u16(46)?,
                shnum: reader.u16(48)?,
                shstrndx: reader.u16(50)?,
            }
        };
        Ok(header)
    }

    fn reader<'a>(&self, bytes: &'a [u8]) -> Reader<'a> {
        Reader {
            bytes,
            little_endian: self.little_endian,
        }
    }

    /// The file offset of the first writable, non-executable loadable segment (the data segment,
    /// where Go's linker puts its build info), when the program headers lie within `bytes`.
    pub fn data_segment_offset(&self, bytes: &[u8]) -> Result<Option<u64>, ElfError> {
        let reader = self.reader(bytes);
        let entry = usize::from(self.phentsize);
        let minimum = if self.is_64 { 56 } else { 32 };
        if self.phnum == 0 {
            return Ok(None);
        }
        if entry < minimum {
            return Err(err(format!(
                "program header entry size {entry} is too small"
            )));
        }
        let mut best: Option<u64> = None;
        for index in 0..usize::from(self.phnum).min(MAX_HEADERS) {
            let at = offset_of(self.phoff, index, entry)?;
            let kind = reader.u32(at)?;
            let (flags, offset) = if self.is_64 {
                (reader.u32(at + 4)?, reader.u64(at + 8)?)
            } else {
                (reader.u32(at + 24)?, reader.u32(at + 4)?.into())
            };
            if kind == PT_LOAD && flags & (PF_X | PF_W) == PF_W {
                best = Some(best.map_or(offset, |b: u64| b.min(offset)));
            }
        }
        Ok(best)
    }

    /// The section headers, read from the whole file's `bytes`.
    pub fn sections(&self, bytes: &[u8]) -> Result<Vec<Section>, ElfError> {
        let reader = self.reader(bytes);
        let entry = usize::from(self.shentsize);
        let minimum = if self.is_64 { 64 } else { 40 };
        if self.shnum == 0 {
            return Ok(Vec::new());
        }
        if entry < minimum {
            return Err(err(format!(
                "section header entry size {entry} is too small"
            )));
        }
        let count = usize::from(self.shnum);
        // Check the table's end before allocating, so a huge count in a tiny file is refused.
        let end = offset_of(self.shoff, count, entry)?;
        if end > bytes.len() {
            return Err(err(format!(
                "section headers end at byte {end}, past the end of the file ({} bytes)",
                bytes.len()
            )));
        }
        let mut sections = Vec::with_capacity(count);
        for index in 0..count {
            let at = offset_of(self.shoff, index, entry)?;
            let (offset, size) = if self.is_64 {
                (reader.u64(at + 24)?, reader.u64(at + 32)?)
            } else {
                (reader.u32(at + 16)?.into(), reader.u32(at + 20)?.into())
            };
            sections.push(Section {
                name: reader.u32(at)?,
                offset,
                size,
            });
        }
        Ok(sections)
    }

    /// The contents of the section called `name`, or `None` when there is no such section.
    pub fn section_by_name<'a>(
        &self,
        bytes: &'a [u8],
        name: &str,
    ) -> Result<Option<&'a [u8]>, ElfError> {
        let sections = self.sections(bytes)?;
        let Some(names) = sections.get(usize::from(self.shstrndx)) else {
            return Ok(None);
        };
        let names = slice(bytes, names.offset, names.size)?;
        for section in &sections {
            let start = usize::try_from(section.name).unwrap_or(usize::MAX);
            let Some(tail) = names.get(start..) else {
                continue;
            };
            let end = tail.iter().position(|&b| b == 0).unwrap_or(tail.len());
            if &tail[..end] == name.as_bytes() {
                return slice(bytes, section.offset, section.size).map(Some);
            }
        }
        Ok(None)
    }
}

fn offset_of(base: u64, index: usize, entry: usize) -> Result<usize, ElfError> {
    usize::try_from(base)
        .ok()
        .and_then(|base| base.checked_add(index.checked_mul(entry)?))
        .ok_or_else(|| err("header table offset overflows"))
}

/// `bytes[offset..offset + size]`, or an error naming the bad range.
pub fn slice(bytes: &[u8], offset: u64, size: u64) -> Result<&[u8], ElfError> {
    let start = usize::try_from(offset).ok();
    let end = start
        .zip(usize::try_from(size).ok())
        .and_then(|(s, n)| s.checked_add(n));
    match (start, end) {
        (Some(start), Some(end)) if end <= bytes.len() => Ok(&bytes[start..end]),
        _ => Err(err(format!(
            "range of {size} bytes at {offset} is outside the file ({} bytes)",
            bytes.len()
        ))),
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    little_endian: bool,
}

impl Reader<'_> {
    fn array<const N: usize>(&self, at: usize) -> Result<[u8; N], ElfError> {
        at.checked_add(N)
            .and_then(|end| self.bytes.get(at..end))
            .and_then(|raw| raw.try_into().ok())
            .ok_or_else(|| err(format!("field at byte {at} is past the end of the data")))
    }

    fn u16(&self, at: usize) -> Result<u16, ElfError> {
        let raw = self.array::<2>(at)?;
        Ok(if self.little_endian {
            u16::from_le_bytes(raw)
        } else {
            u16::from_be_bytes(raw)
        })
    }

    fn u32(&self, at: usize) -> Result<u32, ElfError> {
        let raw = self.array::<4>(at)?;
        Ok(if self.little_endian {
            u32::from_le_bytes(raw)
        } else {
            u32::from_be_bytes(raw)
        })
    }

    fn u64(&self, at: usize) -> Result<u64, ElfError> {
        let raw = self.array::<8>(at)?;
        Ok(if self.little_endian {
            u64::from_le_bytes(raw)
        } else {
            u64::from_be_bytes(raw)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncated_and_hostile_headers_are_errors() {
        assert!(Header::parse(b"\x7fELF").is_err());
        assert!(Header::parse(&[0u8; 64]).is_err());
        let mut bytes = vec![0u8; 64];
        bytes[..4].copy_from_slice(MAGIC);
        bytes[4] = 2;
        bytes[5] = 1;
        // A huge section count and offset in a 64-byte file.
        bytes[40..48].copy_from_slice(&u64::MAX.to_le_bytes());
        bytes[58..60].copy_from_slice(&64u16.to_le_bytes());
        bytes[60..62].copy_from_slice(&0xffffu16.to_le_bytes());
        let header = Header::parse(&bytes).unwrap();
        assert!(header.sections(&bytes).is_err());
        assert!(header.section_by_name(&bytes, ".dep-v0").is_err());
        bytes[32..40].copy_from_slice(&(1u64 << 40).to_le_bytes());
        bytes[54..56].copy_from_slice(&56u16.to_le_bytes());
        bytes[56..58].copy_from_slice(&3u16.to_le_bytes());
        let header = Header::parse(&bytes).unwrap();
        assert!(header.data_segment_offset(&bytes).is_err());
        assert!(slice(&bytes, u64::MAX, 2).is_err());
    }
}
