//! Extract stage: `os/dpkg-files` reads dpkg's per-package file lists (`/var/lib/dpkg/info/<pkg>.list`
//! and `<pkg>:<arch>.list`), so the merge can drop language packages that dpkg installed: Debian's
//! `python3-urllib3` is matched against Debian's advisories, never also against PyPI's.
//!
//! Distroless `status.d` layouts ship no file lists (only `.md5sums`), so nothing is owned there and
//! language packages in such images are always reported.

use crate::extract::lang::shorten;
use crate::extract::{ExtractError, Extracted, Extractor, OwnedFiles};

/// The `os/dpkg-files` extractor.
#[derive(Debug, Clone, Copy, Default)]
pub struct DpkgFiles;

/// The extractor's stable name.
pub const NAME: &str = "os/dpkg-files";

const INFO_DIR: &str = "var/lib/dpkg/info/";
/// Lines kept per list: the largest Debian packages list tens of thousands of files.
pub const MAX_PATHS: usize = 1_000_000;

impl Extractor for DpkgFiles {
    fn name(&self) -> &'static str {
        NAME
    }

    fn version(&self) -> u32 {
        1
    }

    fn claims(&self, path: &str) -> bool {
        match path.strip_prefix(INFO_DIR) {
            Some(file) => {
                file.len() > ".list".len() && file.ends_with(".list") && !file.contains('/')
            }
            None => false,
        }
    }

    fn max_file_size(&self) -> u64 {
        64 * 1024 * 1024
    }

    fn extract(&self, path: &str, contents: &[u8]) -> Result<Extracted, ExtractError> {
        parse_list(path, contents)
            .map(|owned| Extracted::OwnedFiles(vec![owned]))
            .map_err(|reason| ExtractError::new(NAME, path, reason))
    }
}

/// Why a dpkg file list could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ListError {
    /// The file is named `.list` or `:arch.list`, so no package owns what it lists.
    #[error("file list has no package name")]
    NoOwner,
    /// dpkg writes absolute paths only; anything else means the file is not a dpkg list.
    #[error("line {line}: {path:?} is not an absolute path")]
    RelativePath { line: usize, path: String },
    /// More lines than [`MAX_PATHS`]: no real package lists that many files.
    #[error("more than {MAX_PATHS} paths listed")]
    TooManyPaths,
}

/// Parses one `.list` file; the owner is the file name without `.list` and without `:<arch>`.
pub fn parse_list(path: &str, contents: &[u8]) -> Result<OwnedFiles, ListError> {
    let file = path.rsplit('/').next().unwrap_or(path);
    let stem = file.strip_suffix(".list").unwrap_or(file);
    let owner = stem.split(':').next().unwrap_or(stem);
    if owner.is_empty() {
        return Err(ListError::NoOwner);
    }
    // Paths are bytes on disk; dpkg writes them as they are, so a Latin-1 name is replaced rather than
    // costing the whole list.
    let text = String::from_utf8_lossy(contents);
    let mut paths = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line = line.trim_end_matches('\r');
        if line.is_empty() || line == "/." {
            continue;
        }
        let Some(relative) = line.strip_prefix('/') else {
            return Err(ListError::RelativePath {
                line: index + 1,
                path: shorten(line),
            });
        };
        if paths.len() >= MAX_PATHS {
            return Err(ListError::TooManyPaths);
        }
        paths.push(relative.to_string());
    }
    Ok(OwnedFiles {
        owner: owner.to_string(),
        paths,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_list_files_only() {
        for (path, want) in [
            ("var/lib/dpkg/info/python3-urllib3.list", true),
            ("var/lib/dpkg/info/libc6:amd64.list", true),
            ("var/lib/dpkg/info/libc6:amd64.md5sums", false),
            ("var/lib/dpkg/info/.list", false),
            ("var/lib/dpkg/status", false),
        ] {
            assert_eq!(DpkgFiles.claims(path), want, "{path}");
        }
    }

    #[test]
    fn parses_owner_and_paths() {
        let list = b"/.\n/usr\n/usr/lib/python3/dist-packages/urllib3-1.26.12.egg-info/PKG-INFO\n";
        let owned = parse_list("var/lib/dpkg/info/python3-urllib3:all.list", list).unwrap();
        assert_eq!(owned.owner, "python3-urllib3");
        assert_eq!(owned.paths.len(), 2);
        assert!(parse_list("var/lib/dpkg/info/x.list", b"relative/path\n").is_err());
        assert!(parse_list("var/lib/dpkg/info/x.list", b"/caf\xe9\n").is_ok());
    }

    /// The reasons become coverage reasons stored in the warehouse: their text must not drift.
    #[test]
    fn reasons_keep_their_text() {
        let error = parse_list("var/lib/dpkg/info/:amd64.list", b"/usr\n").unwrap_err();
        assert_eq!(error, ListError::NoOwner);
        assert_eq!(error.to_string(), "file list has no package name");
        let error = parse_list("var/lib/dpkg/info/x.list", b"/usr\nrelative/path\n").unwrap_err();
        assert_eq!(
            error.to_string(),
            "line 2: \"relative/path\" is not an absolute path"
        );
        assert_eq!(
            ListError::TooManyPaths.to_string(),
            "more than 1000000 paths listed"
        );
    }
}
