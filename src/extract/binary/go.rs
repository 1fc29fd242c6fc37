//! Extract stage: `binary/go` reads the build info the Go toolchain embeds in every executable it links
//! (module path and version, dependencies with their replacements, the Go version), so images built
//! `FROM scratch` around a Go binary are not reported clean for lack of a package database.
//!
//! Only ELF is read, and only what is needed: the program headers say where the data segment starts,
//! the `\xff Go buildinf:` magic sits 16-byte aligned near its start, and the strings follow it. The
//! file is streamed, so a large binary is never held whole.

use std::io::{Cursor, Read};

use crate::extract::binary::{elf, is_candidate, MAX_EXECUTABLE_SIZE};
use crate::extract::lang::lang_package;
use crate::extract::{ExtractError, Extracted, Extractor};
use crate::model::Package;

/// The `binary/go` extractor.
#[derive(Debug, Clone, Copy, Default)]
pub struct GoBinary;

/// The extractor's stable name.
pub const NAME: &str = "binary/go";
/// OSV's ecosystem name for Go modules.
pub const ECOSYSTEM: &str = "Go";
/// The module name Go's vulnerability database uses for the standard library and toolchain.
pub const STDLIB: &str = "stdlib";

const MAGIC: &[u8; 14] = b"\xff Go buildinf:";
const ALIGN: usize = 16;
/// Header: magic, pointer size, flags, then two pointers' worth of space (unused when inlined).
const HEADER_SIZE: usize = 32;
/// Go 1.18+ writes the version and module strings inline after the header.
const FLAG_INLINE_STRINGS: u8 = 0x2;
/// Bytes read at a time while looking for the magic.
const CHUNK: usize = 64 * 1024;
/// The module info of real programs is a few KiB; a longer string is corruption.
const MAX_STRING: u64 = 4 * 1024 * 1024;

impl Extractor for GoBinary {
    fn name(&self) -> &'static str {
        NAME
    }

    fn version(&self) -> u32 {
        1
    }

    fn claims(&self, _path: &str) -> bool {
        // Executables are claimed by mode in `claims_entry`; the path alone says nothing.
        false
    }

    fn claims_entry(&self, _path: &str, mode: u32, size: u64) -> bool {
        is_candidate(mode, size, MAX_EXECUTABLE_SIZE)
    }

    fn max_file_size(&self) -> u64 {
        MAX_EXECUTABLE_SIZE
    }

    fn streams(&self) -> bool {
        true
    }

    fn extract(&self, path: &str, contents: &[u8]) -> Result<Extracted, ExtractError> {
        let size = contents.len() as u64;
        self.extract_reader(path, size, &mut Cursor::new(contents))
    }

    fn extract_reader(
        &self,
        path: &str,
        size: u64,
        reader: &mut dyn Read,
    ) -> Result<Extracted, ExtractError> {
        let found = find_build_info(reader, size)
            .map_err(|reason| ExtractError::new(NAME, path, reason))?;
        Ok(Extracted::Packages(match found {
            Some(info) => info.packages(path),
            None => Vec::new(),
        }))
    }
}

/// What a Go binary's build info says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildInfo {
    /// The toolchain, e.g. `go1.22.0`.
    pub go_version: String,
    /// The main module and its version (`(devel)` for a local build).
    pub main: Option<(String, String)>,
    /// Dependencies as (path, version), with `=>` replacements already applied.
    pub deps: Vec<(String, String)>,
}

impl BuildInfo {
    /// The packages to report: the main module, each dependency and the toolchain as `stdlib`.
    /// Versions lose their leading `v`, as OSV's Go ranges spell them.
    pub fn packages(&self, location: &str) -> Vec<Package> {
        let mut packages = Vec::with_capacity(self.deps.len() + 2);
        let mut add = |name: &str, version: &str| {
            let version = version.strip_prefix('v').unwrap_or(version);
            packages.push(lang_package(
                NAME,
                ECOSYSTEM,
                location,
                name.to_string(),
                version.to_string(),
            ));
        };
        if let Some((path, version)) = &self.main {
            add(path, version);
        }
        for (path, version) in &self.deps {
            add(path, version);
        }
        // `go1.22.0 X:boringcrypto` and the like: the version is the first word without `go`.
        let toolchain = self.go_version.split_whitespace().next().unwrap_or("");
        if let Some(version) = toolchain.strip_prefix("go").filter(|v| !v.is_empty()) {
            add(STDLIB, version);
        }
        packages
    }
}

/// Why build info that is present could not be read.
#[derive(Debug, thiserror::Error)]
pub enum BuildInfoError {
    /// Reading the file itself failed.
    #[error("read failed: {0}")]
    Read(std::io::Error),
    #[error("build info ends inside a length")]
    TruncatedLength,
    /// More than ten varint bytes.
    #[error("build info length is not a valid varint")]
    BadVarint,
    /// A string length over [`MAX_STRING`]: corruption, not a real program's module list.
    #[error("build info {what} claims {len} bytes, over the limit of {MAX_STRING}")]
    StringTooLong { what: &'static str, len: u64 },
    #[error("build info ends inside the {what}")]
    TruncatedString { what: &'static str },
    #[error("build info header is truncated")]
    TruncatedHeader,
    /// Before Go 1.18 the header held pointers into the data segment; following them needs the whole
    /// address map. Said rather than reporting the binary empty.
    #[error("build info of Go before 1.18 (pointer format) is not supported")]
    PointerFormat,
    #[error("build info {what} is not UTF-8")]
    NotUtf8 { what: &'static str },
}

/// Reads exactly `buf.len()` bytes unless the stream ends first; returns how many were read.
fn read_up_to(reader: &mut dyn Read, buf: &mut [u8]) -> Result<usize, BuildInfoError> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
            Err(error) => return Err(BuildInfoError::Read(error)),
        }
    }
    Ok(filled)
}

/// A forward-only window over the stream: `data` holds the bytes from absolute offset `start`.
struct Window<'a> {
    reader: &'a mut dyn Read,
    data: Vec<u8>,
    start: u64,
    remaining: u64,
}

impl Window<'_> {
    /// Appends up to `want` more bytes; returns how many arrived.
    fn grow(&mut self, want: usize) -> Result<usize, BuildInfoError> {
        let want = want.min(usize::try_from(self.remaining).unwrap_or(usize::MAX));
        // `read_to_end` on a bounded reader fills spare capacity without zeroing it first.
        let got = (&mut *self.reader)
            .take(want as u64)
            .read_to_end(&mut self.data)
            .map_err(BuildInfoError::Read)?;
        self.remaining -= got as u64;
        Ok(got)
    }

    /// Makes sure `data` holds at least `len` bytes, reading more as needed.
    fn ensure(&mut self, len: usize) -> Result<bool, BuildInfoError> {
        while self.data.len() < len {
            if self.grow(len - self.data.len())? == 0 {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Drops everything before `keep_from` (a position inside `data`).
    fn discard_before(&mut self, keep_from: usize) {
        self.data.drain(..keep_from);
        self.start += keep_from as u64;
    }

    /// Skips forward to absolute offset `target` without keeping the bytes.
    fn skip_to(&mut self, target: u64) -> Result<(), BuildInfoError> {
        let end = self.start + self.data.len() as u64;
        if target <= end {
            return Ok(());
        }
        self.discard_before(self.data.len());
        let mut sink = vec![0u8; CHUNK];
        let mut left = target - end;
        while left > 0 && self.remaining > 0 {
            let step = usize::try_from(left.min(CHUNK as u64)).unwrap_or(CHUNK);
            let step = step.min(usize::try_from(self.remaining).unwrap_or(usize::MAX));
            let got = read_up_to(self.reader, &mut sink[..step])?;
            if got == 0 {
                break;
            }
            self.remaining -= got as u64;
            left -= got as u64;
            self.start += got as u64;
        }
        Ok(())
    }
}

/// Streams a file of `size` bytes looking for Go build info. `Ok(None)` when it is not an ELF file or
/// carries no build info (a C program, a static binary stripped of it); `Err` when build info is there
/// but malformed.
pub fn find_build_info(
    reader: &mut dyn Read,
    size: u64,
) -> Result<Option<BuildInfo>, BuildInfoError> {
    let mut window = Window {
        reader,
        data: Vec::with_capacity(CHUNK),
        start: 0,
        remaining: size,
    };
    window.grow(CHUNK)?;
    if !window.data.starts_with(elf::MAGIC) {
        return Ok(None);
    }
    // A file that starts like ELF but whose headers do not parse is not something Go linked.
    let Ok(header) = elf::Header::parse(&window.data) else {
        return Ok(None);
    };
    // Start at the data segment when the program headers say where it is. An executable with no writable
    // loadable segment was not linked by Go (its linker always writes build info into one); only when the
    // program headers lie beyond the first chunk is the whole file scanned.
    let data_start = match header.data_segment_offset(&window.data) {
        Ok(Some(offset)) => offset,
        Ok(None) => return Ok(None),
        Err(_) => 0,
    };
    let aligned_start = data_start - data_start % ALIGN as u64;
    window.skip_to(aligned_start)?;
    if aligned_start > window.start {
        // A file shorter than its own program headers say ends here with nothing kept.
        let skip = usize::try_from(aligned_start - window.start).unwrap_or(usize::MAX);
        window.discard_before(skip.min(window.data.len()));
    }
    loop {
        // Candidate positions are 16-byte aligned in the file; `start` stays aligned because only
        // whole aligned blocks are ever discarded.
        let first = (ALIGN - (window.start % ALIGN as u64) as usize) % ALIGN;
        let mut at = first;
        while at + MAGIC.len() <= window.data.len() {
            if window.data[at..].starts_with(MAGIC) {
                window.discard_before(at);
                return parse_at(&mut window).map(Some);
            }
            at += ALIGN;
        }
        if window.remaining == 0 {
            return Ok(None);
        }
        // Keep the unexamined tail (an aligned position whose magic might straddle the next read).
        window.discard_before(at.min(window.data.len()));
        window.grow(CHUNK)?;
    }
}

/// Reads Go's unsigned varint (at most 10 bytes).
fn read_varint(window: &mut Window<'_>, at: &mut usize) -> Result<u64, BuildInfoError> {
    let mut value = 0u64;
    for shift in (0..70).step_by(7) {
        if !window.ensure(*at + 1)? {
            return Err(BuildInfoError::TruncatedLength);
        }
        let byte = window.data[*at];
        *at += 1;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(BuildInfoError::BadVarint)
}

fn read_bytes(
    window: &mut Window<'_>,
    at: &mut usize,
    what: &'static str,
) -> Result<Vec<u8>, BuildInfoError> {
    let len = read_varint(window, at)?;
    if len > MAX_STRING {
        return Err(BuildInfoError::StringTooLong { what, len });
    }
    let len = len as usize;
    if !window.ensure(*at + len)? {
        return Err(BuildInfoError::TruncatedString { what });
    }
    let bytes = window.data[*at..*at + len].to_vec();
    *at += len;
    Ok(bytes)
}

/// Parses the build info whose magic starts `window.data`.
fn parse_at(window: &mut Window<'_>) -> Result<BuildInfo, BuildInfoError> {
    if !window.ensure(HEADER_SIZE)? {
        return Err(BuildInfoError::TruncatedHeader);
    }
    let flags = window.data[15];
    if flags & FLAG_INLINE_STRINGS == 0 {
        return Err(BuildInfoError::PointerFormat);
    }
    let mut at = HEADER_SIZE;
    let go_version = String::from_utf8(read_bytes(window, &mut at, "Go version")?)
        .map_err(|_| BuildInfoError::NotUtf8 { what: "Go version" })?;
    let mut modinfo = read_bytes(window, &mut at, "module info")?;
    // The linker wraps the text in two 16-byte binary sentinels; drop them before decoding.
    if modinfo.len() >= 33 && modinfo[modinfo.len() - 17] == b'\n' {
        modinfo.truncate(modinfo.len() - 16);
        modinfo.drain(..16);
    }
    let modinfo = String::from_utf8(modinfo).map_err(|_| BuildInfoError::NotUtf8 {
        what: "module info",
    })?;
    Ok(parse_modinfo(go_version, &modinfo))
}

/// Parses the module info text (`path`, `mod`, `dep`, `=>` and `build` lines, tab-separated), with
/// the linker's sentinels already removed.
pub fn parse_modinfo(go_version: String, text: &str) -> BuildInfo {
    let mut info = BuildInfo {
        go_version,
        main: None,
        deps: Vec::new(),
    };
    for line in text.lines() {
        let mut fields = line.split('\t');
        let (kind, path, version) = (fields.next(), fields.next(), fields.next());
        match (kind, path) {
            (Some("mod"), Some(path)) if !path.is_empty() => {
                info.main = Some((path.to_string(), version.unwrap_or("").to_string()));
            }
            (Some("dep"), Some(path)) if !path.is_empty() => {
                info.deps
                    .push((path.to_string(), version.unwrap_or("").to_string()));
            }
            (Some("=>"), Some(path)) => {
                // A replacement of the dependency on the line before. A local directory has no
                // version: that code is not the published module, so no advisory applies to it.
                let version = version.unwrap_or("");
                if version.is_empty() {
                    info.deps.pop();
                } else if let Some(last) = info.deps.last_mut() {
                    *last = (path.to_string(), version.to_string());
                }
            }
            _ => {}
        }
    }
    info
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_executables_by_mode_and_size() {
        assert!(GoBinary.claims_entry("app/server", 0o755, 10_000));
        assert!(GoBinary.claims_entry("x", 0o100, 10_000));
        assert!(!GoBinary.claims_entry("app/server", 0o644, 10_000));
        assert!(!GoBinary.claims_entry("app/server", 0o755, 10));
        assert!(!GoBinary.claims_entry("app/server", 0o755, MAX_EXECUTABLE_SIZE + 1));
        assert!(!GoBinary.claims("usr/bin/go"));
    }

    #[test]
    fn modinfo_with_replacements() {
        let text = "path\tex\nmod\tex\t(devel)\t\ndep\ta.com/x\tv1.0.0\th1:\n=>\tb.com/x\tv1.1.0\th1:\ndep\tc.com/y\tv0.1.0\t\n=>\t../local\t\t\nbuild\t-compiler=gc\n";
        let info = parse_modinfo("go1.22.0".into(), text);
        assert_eq!(info.main, Some(("ex".into(), "(devel)".into())));
        assert_eq!(info.deps, [("b.com/x".to_string(), "v1.1.0".to_string())]);
        let names: Vec<_> = info
            .packages("p")
            .into_iter()
            .map(|p| (p.name, p.version))
            .collect();
        assert_eq!(names[2], ("stdlib".to_string(), "1.22.0".to_string()));
    }

    #[test]
    fn not_elf_is_nothing_and_bad_build_info_is_an_error() {
        let script = b"#!/bin/sh\necho hello\n".repeat(20);
        assert_eq!(
            find_build_info(&mut &script[..], script.len() as u64).unwrap(),
            None
        );
        // An ELF64 file whose one program header is a writable PT_LOAD segment at offset 128 (where Go's
        // linker puts build info), holding a magic whose string length is absurd.
        let mut file = vec![0u8; 256];
        file[..4].copy_from_slice(elf::MAGIC);
        file[4] = 2;
        file[5] = 1;
        file[32..40].copy_from_slice(&64u64.to_le_bytes()); // e_phoff
        file[54..56].copy_from_slice(&56u16.to_le_bytes()); // e_phentsize
        file[56..58].copy_from_slice(&1u16.to_le_bytes()); // e_phnum
        file[64..68].copy_from_slice(&1u32.to_le_bytes()); // PT_LOAD
        file[68..72].copy_from_slice(&6u32.to_le_bytes()); // PF_R | PF_W
        file[72..80].copy_from_slice(&128u64.to_le_bytes()); // p_offset
        file[128..142].copy_from_slice(MAGIC);
        // Without a writable loadable segment the same bytes are not a Go executable at all.
        let mut no_segments = file.clone();
        no_segments[56..58].copy_from_slice(&0u16.to_le_bytes());
        assert_eq!(
            find_build_info(&mut &no_segments[..], no_segments.len() as u64).unwrap(),
            None
        );
        file[142] = 8;
        file[143] = FLAG_INLINE_STRINGS;
        file[160..170].copy_from_slice(&[0xff; 10]);
        let error = find_build_info(&mut &file[..], file.len() as u64).unwrap_err();
        assert!(
            matches!(
                error,
                BuildInfoError::BadVarint | BuildInfoError::StringTooLong { .. }
            ),
            "{error}"
        );
        file[160..165].copy_from_slice(&[0xff, 0xff, 0xff, 0xff, 0x0f]);
        let error = find_build_info(&mut &file[..], file.len() as u64).unwrap_err();
        assert!(error.to_string().contains("limit"), "{error}");
        file[143] = 0;
        let error = find_build_info(&mut &file[..], file.len() as u64).unwrap_err();
        assert!(error.to_string().contains("1.18"), "{error}");
        // Truncated right after the magic.
        let error = find_build_info(&mut &file[..150], 150).unwrap_err();
        assert!(error.to_string().contains("truncated"), "{error}");
    }
}
