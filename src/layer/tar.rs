//! Layer walk: a streaming tar reader written for hostile input. Headers are parsed in place, bodies the
//! walk does not want are skipped inside the read buffer, and nothing is ever allocated by a size the
//! archive declares (GNU long names and PAX headers are bounded), unlike general-purpose tar readers.

use std::io::{self, BufRead, Read};

const BLOCK: usize = 512;

/// Why the tar stream could not be read further.
#[derive(Debug)]
pub(crate) enum TarError {
    /// The underlying reader failed (decompression error, download error).
    Io(io::Error),
    /// The archive itself is malformed or ends early.
    Invalid(String),
    /// An extended header is larger than the configured bound.
    ExtendedTooLarge(u64),
}

impl From<io::Error> for TarError {
    fn from(error: io::Error) -> Self {
        TarError::Io(error)
    }
}

/// The kinds of entries the walk distinguishes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EntryKind {
    File,
    HardLink,
    Symlink,
    Directory,
    /// Devices, fifos, sparse files, volume labels: nothing an extractor reads.
    Other,
}

/// One entry's header, with long names and PAX overrides applied.
#[derive(Debug)]
pub(crate) struct Entry {
    pub kind: EntryKind,
    pub name: Vec<u8>,
    pub link: Vec<u8>,
    /// Bytes of data that follow the header (before padding).
    pub size: u64,
    /// Permission bits from the header's mode field (0 when unreadable), so executables can be told
    /// apart from other files.
    pub mode: u32,
}

/// Reads entries one after another from a buffered, decompressed stream.
pub(crate) struct TarReader<R: BufRead> {
    inner: R,
    /// Uncompressed bytes consumed so far, for error messages and the size limit.
    offset: u64,
    /// Data + padding of the current entry not yet consumed.
    pending: u64,
    max_extended: u64,
    finished: bool,
}

/// Streams one entry's data out of the tar reader. A failure of the layer itself (truncation, a
/// decompression error) is kept in `error` for the walk to report as the layer's failure; the
/// extractor only sees a generic read error.
pub(crate) struct BodyReader<'t, R: BufRead> {
    tar: &'t mut TarReader<R>,
    remaining: u64,
    pub(crate) error: Option<TarError>,
}

impl<R: BufRead> Read for BodyReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.remaining == 0 || buf.is_empty() {
            return Ok(0);
        }
        let available = match self.tar.inner.fill_buf() {
            Ok(available) => available,
            Err(error) => {
                let reason = error.to_string();
                self.error = Some(TarError::Io(error));
                return Err(io::Error::other(format!("layer read failed: {reason}")));
            }
        };
        if available.is_empty() {
            self.error = Some(self.tar.truncated());
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "layer ends inside this file",
            ));
        }
        let step = available
            .len()
            .min(buf.len())
            .min(usize::try_from(self.remaining).unwrap_or(usize::MAX));
        buf[..step].copy_from_slice(&available[..step]);
        self.tar.inner.consume(step);
        self.remaining -= step as u64;
        self.tar.pending -= step as u64;
        self.tar.offset += step as u64;
        Ok(step)
    }
}

/// Verifies a header's checksum: the unsigned (POSIX) or signed (old Sun tar) byte sum, with the
/// checksum field itself counted as spaces.
pub(crate) fn checksum_ok(header: &[u8]) -> bool {
    if header.len() < BLOCK {
        return false;
    }
    let Some(stored) = parse_octal(&header[148..156]) else {
        return false;
    };
    let mut unsigned: u64 = 0;
    let mut signed: i64 = 0;
    for (index, &byte) in header[..BLOCK].iter().enumerate() {
        let byte = if (148..156).contains(&index) {
            b' '
        } else {
            byte
        };
        unsigned += u64::from(byte);
        signed += i64::from(byte as i8);
    }
    stored == unsigned || i64::try_from(stored).is_ok_and(|stored| stored == signed)
}

/// Parses a NUL/space-padded octal field; `None` when it holds anything else.
fn parse_octal(field: &[u8]) -> Option<u64> {
    let trimmed: &[u8] = {
        let start = field.iter().position(|&b| b != b' ' && b != 0)?;
        let rest = &field[start..];
        let end = rest
            .iter()
            .position(|&b| b == b' ' || b == 0)
            .unwrap_or(rest.len());
        &rest[..end]
    };
    let mut value: u64 = 0;
    for &digit in trimmed {
        if !(b'0'..=b'7').contains(&digit) {
            return None;
        }
        value = value.checked_mul(8)?.checked_add(u64::from(digit - b'0'))?;
    }
    Some(value)
}

/// Parses the size field: octal, or GNU base-256 when the high bit of the first byte is set.
fn parse_size(field: &[u8]) -> Option<u64> {
    if field.first().is_some_and(|&b| b & 0x80 != 0) {
        if field[0] & 0x40 != 0 {
            // Negative base-256 numbers are not sizes.
            return None;
        }
        let mut value: u64 = u64::from(field[0] & 0x3f);
        for &byte in &field[1..] {
            value = value.checked_mul(256)?.checked_add(u64::from(byte))?;
        }
        return Some(value);
    }
    // An all-blank size field means zero.
    if field.iter().all(|&b| b == 0 || b == b' ') {
        return Some(0);
    }
    parse_octal(field)
}

/// The bytes of a NUL-terminated header field.
fn c_field(field: &[u8]) -> &[u8] {
    match field.iter().position(|&b| b == 0) {
        Some(end) => &field[..end],
        None => field,
    }
}

fn padded(size: u64) -> Option<u64> {
    size.checked_add(BLOCK as u64 - 1)
        .map(|s| s / BLOCK as u64 * BLOCK as u64)
}

/// PAX overrides the walk cares about.
#[derive(Default)]
struct PaxOverrides {
    path: Option<Vec<u8>>,
    linkpath: Option<Vec<u8>>,
    size: Option<u64>,
}

fn parse_pax(data: &[u8]) -> Result<PaxOverrides, TarError> {
    let mut overrides = PaxOverrides::default();
    let mut rest = data;
    while !rest.is_empty() {
        // Records are "LEN KEY=VALUE\n" where LEN counts the whole record.
        let space = rest
            .iter()
            .position(|&b| b == b' ')
            .ok_or_else(|| TarError::Invalid("PAX record without a length".into()))?;
        let length: usize = std::str::from_utf8(&rest[..space])
            .ok()
            .and_then(|text| text.parse().ok())
            .ok_or_else(|| TarError::Invalid("PAX record with a bad length".into()))?;
        if length <= space + 1 || length > rest.len() {
            return Err(TarError::Invalid(format!(
                "PAX record length {length} does not fit the header"
            )));
        }
        let record = &rest[space + 1..length];
        let record = record.strip_suffix(b"\n").unwrap_or(record);
        if let Some(eq) = record.iter().position(|&b| b == b'=') {
            let (key, value) = (&record[..eq], &record[eq + 1..]);
            match key {
                b"path" => overrides.path = Some(value.to_vec()),
                b"linkpath" => overrides.linkpath = Some(value.to_vec()),
                b"size" => {
                    let size = std::str::from_utf8(value)
                        .ok()
                        .and_then(|text| text.parse().ok())
                        .ok_or_else(|| TarError::Invalid("PAX size is not a number".into()))?;
                    overrides.size = Some(size);
                }
                _ => {}
            }
        }
        rest = &rest[length..];
    }
    Ok(overrides)
}

impl<R: BufRead> TarReader<R> {
    pub(crate) fn new(inner: R, max_extended: u64) -> Self {
        TarReader {
            inner,
            offset: 0,
            pending: 0,
            max_extended,
            finished: false,
        }
    }

    /// Uncompressed bytes consumed so far.
    pub(crate) fn offset(&self) -> u64 {
        self.offset
    }

    /// Gives back the reader, e.g. to drain trailing padding after the end-of-archive marker.
    pub(crate) fn into_inner(self) -> R {
        self.inner
    }

    /// Skips whatever is left of the current entry's data and padding without copying it.
    pub(crate) fn skip_rest(&mut self) -> Result<(), TarError> {
        while self.pending > 0 {
            let available = self.inner.fill_buf()?;
            if available.is_empty() {
                return Err(self.truncated());
            }
            let step = available
                .len()
                .min(usize::try_from(self.pending).unwrap_or(usize::MAX));
            self.inner.consume(step);
            self.pending -= step as u64;
            self.offset += step as u64;
        }
        Ok(())
    }

    /// Reads the current entry's data (`size` bytes, already checked against a limit by the caller)
    /// and its padding.
    pub(crate) fn read_body(&mut self, size: u64) -> Result<Vec<u8>, TarError> {
        // Grow as the data arrives rather than trusting `size` for the allocation up front.
        let mut data = Vec::with_capacity(usize::try_from(size.min(1 << 20)).unwrap_or(0));
        let mut remaining = size.min(self.pending);
        while remaining > 0 {
            let available = self.inner.fill_buf()?;
            if available.is_empty() {
                return Err(self.truncated());
            }
            let step = available
                .len()
                .min(usize::try_from(remaining).unwrap_or(usize::MAX));
            data.extend_from_slice(&available[..step]);
            self.inner.consume(step);
            remaining -= step as u64;
            self.pending -= step as u64;
            self.offset += step as u64;
        }
        self.skip_rest()?;
        Ok(data)
    }

    /// A reader over the current entry's first `size` data bytes, for extractors that stream a file
    /// instead of holding it. Whatever it leaves unread is skipped by the next `next_entry`.
    pub(crate) fn body_reader(&mut self, size: u64) -> BodyReader<'_, R> {
        let remaining = size.min(self.pending);
        BodyReader {
            tar: self,
            remaining,
            error: None,
        }
    }

    fn truncated(&self) -> TarError {
        TarError::Invalid(format!(
            "archive ends inside an entry ({} bytes missing)",
            self.pending
        ))
    }

    /// Reads one 512-byte block; `Ok(None)` at a clean end of stream.
    fn read_block(&mut self, block: &mut [u8; BLOCK]) -> Result<Option<()>, TarError> {
        let mut filled = 0;
        while filled < BLOCK {
            let available = self.inner.fill_buf()?;
            if available.is_empty() {
                if filled == 0 {
                    return Ok(None);
                }
                return Err(TarError::Invalid(format!(
                    "archive ends inside a header ({filled} of 512 bytes)"
                )));
            }
            let step = available.len().min(BLOCK - filled);
            block[filled..filled + step].copy_from_slice(&available[..step]);
            self.inner.consume(step);
            filled += step;
            self.offset += step as u64;
        }
        Ok(Some(()))
    }

    /// Reads an extended header's data (GNU long name or PAX), bounded by `max_extended`.
    fn read_extended(&mut self, size: u64) -> Result<Vec<u8>, TarError> {
        if size > self.max_extended {
            return Err(TarError::ExtendedTooLarge(size));
        }
        self.pending = padded(size).ok_or_else(|| TarError::Invalid("size overflows".into()))?;
        self.read_body(size)
    }

    /// The next entry's header, after skipping what is left of the previous one. `Ok(None)` at the end
    /// of the archive (two zero blocks, one zero block then end of data, or end of data).
    pub(crate) fn next_entry(&mut self) -> Result<Option<Entry>, TarError> {
        if self.finished {
            return Ok(None);
        }
        self.skip_rest()?;
        let mut long_name: Option<Vec<u8>> = None;
        let mut long_link: Option<Vec<u8>> = None;
        let mut pax = PaxOverrides::default();
        let mut block = [0u8; BLOCK];
        loop {
            let header_offset = self.offset;
            if self.read_block(&mut block)?.is_none() {
                if long_name.is_some() || long_link.is_some() || pax.path.is_some() {
                    return Err(TarError::Invalid(
                        "archive ends after an extended header".into(),
                    ));
                }
                self.finished = true;
                return Ok(None);
            }
            if block.iter().all(|&b| b == 0) {
                // End-of-archive marker: whatever follows is padding.
                self.finished = true;
                return Ok(None);
            }
            if !checksum_ok(&block) {
                return Err(TarError::Invalid(format!(
                    "header at byte {header_offset} has a bad checksum (not a tar entry)"
                )));
            }
            let declared = parse_size(&block[124..136]).ok_or_else(|| {
                TarError::Invalid(format!(
                    "header at byte {header_offset} has a bad size field"
                ))
            })?;
            let typeflag = block[156];
            match typeflag {
                b'L' => {
                    long_name = Some(trim_nul(self.read_extended(declared)?));
                    continue;
                }
                b'K' => {
                    long_link = Some(trim_nul(self.read_extended(declared)?));
                    continue;
                }
                b'x' => {
                    let data = self.read_extended(declared)?;
                    pax = parse_pax(&data)?;
                    continue;
                }
                b'g' => {
                    // Global headers carry defaults (mostly comments); nothing the walk uses.
                    self.read_extended(declared)?;
                    continue;
                }
                _ => {}
            }
            let kind = match typeflag {
                b'0' | b'\0' | b'7' => EntryKind::File,
                b'1' => EntryKind::HardLink,
                b'2' => EntryKind::Symlink,
                b'5' => EntryKind::Directory,
                _ => EntryKind::Other,
            };
            // Links, directories, devices and fifos carry no data whatever their size field says.
            let size = match typeflag {
                b'1' | b'2' | b'3' | b'4' | b'5' | b'6' => 0,
                _ => pax.size.unwrap_or(declared),
            };
            let name = match (long_name.take(), pax.path.take()) {
                (_, Some(path)) => path,
                (Some(name), None) => name,
                (None, None) => header_name(&block),
            };
            let link = match (long_link.take(), pax.linkpath.take()) {
                (_, Some(path)) => path,
                (Some(link), None) => link,
                (None, None) => c_field(&block[157..257]).to_vec(),
            };
            self.pending =
                padded(size).ok_or_else(|| TarError::Invalid("entry size overflows".into()))?;
            let mode = parse_octal(&block[100..108]).map_or(0, |mode| (mode & 0o7777) as u32);
            return Ok(Some(Entry {
                kind,
                name,
                link,
                size,
                mode,
            }));
        }
    }
}

fn trim_nul(mut data: Vec<u8>) -> Vec<u8> {
    while data.last() == Some(&0) {
        data.pop();
    }
    data
}

/// The entry name from the header, joining the ustar prefix when the header is ustar (GNU headers use
/// that area for other fields).
fn header_name(block: &[u8; BLOCK]) -> Vec<u8> {
    let name = c_field(&block[0..100]);
    let is_ustar = &block[257..263] == b"ustar\0";
    let prefix = if is_ustar {
        c_field(&block[345..500])
    } else {
        &[]
    };
    if prefix.is_empty() {
        name.to_vec()
    } else {
        let mut joined = Vec::with_capacity(prefix.len() + 1 + name.len());
        joined.extend_from_slice(prefix);
        joined.push(b'/');
        joined.extend_from_slice(name);
        joined
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn octal_and_base256_sizes() {
        assert_eq!(parse_size(b"00000001750\0"), Some(1000));
        assert_eq!(parse_size(b"     1750 \0\0"), Some(1000));
        assert_eq!(parse_size(&[0u8; 12]), Some(0));
        let mut big = [0u8; 12];
        big[0] = 0x80;
        big[11] = 0x01;
        big[10] = 0x01;
        assert_eq!(parse_size(&big), Some(257));
        assert_eq!(parse_size(b"0000000x750\0"), None);
        let overflow = [
            0x80u8, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        ];
        assert_eq!(parse_size(&overflow), None);
    }

    #[test]
    fn pax_records_parse_and_reject_bad_lengths() {
        let data = b"30 path=var/lib/dpkg/status.x\n11 size=42\n";
        let pax = parse_pax(data).unwrap();
        assert_eq!(pax.path.as_deref(), Some(&b"var/lib/dpkg/status.x"[..]));
        assert_eq!(pax.size, Some(42));
        assert!(parse_pax(b"999 path=x\n").is_err());
        assert!(parse_pax(b"nolength").is_err());
        assert!(parse_pax(b"2 x").is_err());
    }
}
