//! Extract stage: `os/release` reads `/etc/os-release` or `/usr/lib/os-release` into an [`OsIdentity`].
//!
//! The distro release decides which advisories apply to every OS package of the image, so this is
//! where OSV's ecosystem spelling (`Debian:12`, `Alpine:v3.18`, `Ubuntu:22.04:LTS`) is derived.

use std::collections::HashMap;

use crate::extract::{ExtractError, Extracted, Extractor};
use crate::model::OsIdentity;

/// The `os/release` extractor.
#[derive(Debug, Clone, Copy, Default)]
pub struct OsRelease;

/// The extractor's stable name.
pub const NAME: &str = "os/release";

/// os-release files are a few hundred bytes; anything near this size is not one.
const MAX_SIZE: u64 = 64 * 1024;

impl Extractor for OsRelease {
    fn name(&self) -> &'static str {
        NAME
    }

    fn version(&self) -> u32 {
        1
    }

    fn claims(&self, path: &str) -> bool {
        path == "etc/os-release" || path == "usr/lib/os-release"
    }

    fn max_file_size(&self) -> u64 {
        MAX_SIZE
    }

    fn extract(&self, path: &str, contents: &[u8]) -> Result<Extracted, ExtractError> {
        if contents.len() as u64 > MAX_SIZE {
            let error = OsReleaseError::TooLarge {
                size: contents.len(),
            };
            return Err(ExtractError::new(NAME, path, error));
        }
        parse_os_release(contents)
            .map(Extracted::Os)
            .map_err(|error| ExtractError::new(NAME, path, error))
    }
}

/// Why a claimed os-release file was not read as one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OsReleaseError {
    /// Far larger than any os-release file: something else lives at that path.
    #[error("{size} bytes is too large for an os-release file")]
    TooLarge { size: usize },
    /// Not a single `KEY=value` line: an empty file or not an os-release file at all.
    #[error("no KEY=value lines found")]
    NoFields,
}

/// Parses os-release text into an identity with its OSV ecosystem filled in when known.
///
/// Invalid UTF-8 is replaced rather than rejected: the fields that matter are ASCII, and a stray byte
/// in `PRETTY_NAME` should not cost the image its distro.
pub fn parse_os_release(contents: &[u8]) -> Result<OsIdentity, OsReleaseError> {
    let text = String::from_utf8_lossy(contents);
    let fields = parse_fields(&text);
    if fields.is_empty() {
        return Err(OsReleaseError::NoFields);
    }
    // The os-release specification says a missing ID means "linux".
    let id = fields
        .get("ID")
        .map(|id| id.to_ascii_lowercase())
        .filter(|id| !id.is_empty())
        .unwrap_or_else(|| "linux".to_string());
    let version_id = fields.get("VERSION_ID").cloned().unwrap_or_default();
    let pretty_name = fields.get("PRETTY_NAME").filter(|s| !s.is_empty()).cloned();
    let ecosystem = osv_ecosystem(&id, &version_id);
    Ok(OsIdentity {
        id,
        version_id,
        pretty_name,
        ecosystem,
    })
}

/// Reads `KEY=value` lines, skipping blanks and comments; later assignments win, as in a shell.
fn parse_fields(text: &str) -> HashMap<String, String> {
    let mut fields = HashMap::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let key = key.trim();
        if key.is_empty() || !key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            continue;
        }
        fields.insert(key.to_string(), unquote(value.trim()));
    }
    fields
}

/// Removes shell-style quotes. Double quotes allow backslash escapes of `"`, `\`, `$` and `` ` ``;
/// single quotes are literal. An unterminated quote keeps the rest of the line, which is what a
/// lenient reader of a slightly broken file wants.
fn unquote(value: &str) -> String {
    let mut chars = value.chars();
    match chars.next() {
        Some('"') => {
            let mut out = String::with_capacity(value.len());
            while let Some(c) = chars.next() {
                match c {
                    '"' => break,
                    '\\' => match chars.next() {
                        Some(next @ ('"' | '\\' | '$' | '`')) => out.push(next),
                        Some(next) => {
                            out.push('\\');
                            out.push(next);
                        }
                        None => out.push('\\'),
                    },
                    _ => out.push(c),
                }
            }
            out
        }
        Some('\'') => chars.take_while(|&c| c != '\'').collect(),
        // An unquoted value ends at whitespace or a trailing comment.
        _ => value
            .split(|c: char| c.is_whitespace() || c == '#')
            .next()
            .unwrap_or_default()
            .to_string(),
    }
}

/// The OSV ecosystem string of a distro release, from os-release's `ID` and `VERSION_ID`.
///
/// Returns `None` when OSV has no ecosystem for the distro or the release cannot be told from
/// os-release alone (Debian testing/sid have no `VERSION_ID`; Red Hat's OSV ecosystems name a CPE
/// product and repository such as `Red Hat:enterprise_linux:9::appstream`, which os-release does not
/// carry).
pub fn osv_ecosystem(id: &str, version_id: &str) -> Option<String> {
    let version_id = version_id.trim();
    let major = version_id.split('.').next().unwrap_or_default();
    let numeric = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    match id.trim().to_ascii_lowercase().as_str() {
        "debian" => numeric(major).then(|| format!("Debian:{major}")),
        "ubuntu" => {
            let (year, month) = version_id.split_once('.')?;
            if !numeric(year) || !numeric(month) {
                return None;
            }
            // LTS releases are the April releases of even years (14.04, 22.04, 24.04); OSV marks them.
            let lts = month == "04" && year.parse::<u32>().ok()? % 2 == 0;
            Some(if lts {
                format!("Ubuntu:{version_id}:LTS")
            } else {
                format!("Ubuntu:{version_id}")
            })
        }
        "alpine" => {
            let mut parts = version_id.split('.');
            let (major, minor) = (parts.next()?, parts.next()?);
            // Edge snapshots (`3.19_alpha20231219`) are no release OSV knows.
            (numeric(major) && numeric(minor)).then(|| format!("Alpine:v{major}.{minor}"))
        }
        "almalinux" => numeric(major).then(|| format!("AlmaLinux:{major}")),
        "rocky" => numeric(major).then(|| format!("Rocky Linux:{major}")),
        "opensuse-leap" => {
            let mut parts = version_id.split('.');
            let (major, minor) = (parts.next()?, parts.next()?);
            (numeric(major) && numeric(minor)).then(|| format!("openSUSE:Leap {major}.{minor}"))
        }
        "opensuse-tumbleweed" => Some("openSUSE:Tumbleweed".to_string()),
        "sles" => {
            let mut parts = version_id.split('.');
            let major = parts.next()?;
            if !numeric(major) {
                return None;
            }
            // SLES 15.5 is "15 SP5"; a bare "15" is the GA release without a service pack.
            match parts.next() {
                Some("0") | None => Some(format!("SUSE:Linux Enterprise Server {major}")),
                Some(sp) if numeric(sp) => {
                    Some(format!("SUSE:Linux Enterprise Server {major} SP{sp}"))
                }
                Some(_) => None,
            }
        }
        "mariner" => {
            let mut parts = version_id.split('.');
            let (major, minor) = (parts.next()?, parts.next().unwrap_or("0"));
            (numeric(major) && numeric(minor)).then(|| format!("Mariner:{major}.{minor}"))
        }
        "azurelinux" => numeric(major).then(|| format!("Azure Linux:{major}")),
        "photon" => {
            let mut parts = version_id.split('.');
            let (major, minor) = (parts.next()?, parts.next().unwrap_or("0"));
            (numeric(major) && numeric(minor)).then(|| format!("Photon OS:{major}.{minor}"))
        }
        "mageia" => numeric(major).then(|| format!("Mageia:{major}")),
        "wolfi" => Some("Wolfi".to_string()),
        "chainguard" => Some("Chainguard".to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_distros_to_osv_ecosystems() {
        let cases = [
            ("debian", "12", Some("Debian:12")),
            ("debian", "", None),
            ("ubuntu", "22.04", Some("Ubuntu:22.04:LTS")),
            ("ubuntu", "24.04", Some("Ubuntu:24.04:LTS")),
            ("ubuntu", "23.10", Some("Ubuntu:23.10")),
            ("ubuntu", "25.04", Some("Ubuntu:25.04")),
            ("ubuntu", "", None),
            ("alpine", "3.18.4", Some("Alpine:v3.18")),
            ("alpine", "3.19_alpha20231219", None),
            ("almalinux", "9.3", Some("AlmaLinux:9")),
            ("rocky", "8.9", Some("Rocky Linux:8")),
            ("rhel", "9.3", None),
            ("opensuse-leap", "15.5", Some("openSUSE:Leap 15.5")),
            (
                "opensuse-tumbleweed",
                "20240101",
                Some("openSUSE:Tumbleweed"),
            ),
            ("sles", "15.5", Some("SUSE:Linux Enterprise Server 15 SP5")),
            ("sles", "15", Some("SUSE:Linux Enterprise Server 15")),
            ("mariner", "2.0", Some("Mariner:2.0")),
            ("azurelinux", "3.0", Some("Azure Linux:3")),
            ("photon", "3.0", Some("Photon OS:3.0")),
            ("mageia", "9", Some("Mageia:9")),
            ("wolfi", "20230201", Some("Wolfi")),
            ("centos", "7", None),
            ("chainguard", "", Some("Chainguard")),
            ("arch", "", None),
        ];
        for (id, version_id, want) in cases {
            assert_eq!(
                osv_ecosystem(id, version_id).as_deref(),
                want,
                "{id} {version_id}"
            );
        }
    }

    #[test]
    fn parses_quotes_comments_and_blank_lines() {
        let text = b"# a comment\n\nNAME=\"Debian GNU/Linux\"\nID=debian\nVERSION_ID='12'\n  PRETTY_NAME=\"Debian \\\"x\\\" 12\"  \nBROKEN LINE\n";
        let os = parse_os_release(text).unwrap();
        assert_eq!(os.id, "debian");
        assert_eq!(os.version_id, "12");
        assert_eq!(os.pretty_name.as_deref(), Some("Debian \"x\" 12"));
        assert_eq!(os.ecosystem.as_deref(), Some("Debian:12"));
    }

    #[test]
    fn debian_sid_has_no_ecosystem_but_keeps_identity() {
        let os =
            parse_os_release(b"PRETTY_NAME=\"Debian GNU/Linux trixie/sid\"\nID=debian\n").unwrap();
        assert_eq!(os.id, "debian");
        assert_eq!(os.version_id, "");
        assert_eq!(os.ecosystem, None);
    }

    #[test]
    fn garbage_is_an_error_and_invalid_utf8_is_tolerated() {
        assert!(parse_os_release(b"").is_err());
        assert!(parse_os_release(b"\xff\xfe\x00garbage").is_err());
        let os = parse_os_release(b"ID=alpine\nVERSION_ID=3.18.4\nPRETTY_NAME=\"\xff\"\n").unwrap();
        assert_eq!(os.ecosystem.as_deref(), Some("Alpine:v3.18"));
    }

    /// The reasons become coverage reasons stored in the warehouse: their text must not drift.
    #[test]
    fn reasons_keep_their_text() {
        assert_eq!(parse_os_release(b"").unwrap_err(), OsReleaseError::NoFields);
        assert_eq!(
            OsReleaseError::NoFields.to_string(),
            "no KEY=value lines found"
        );
        let error = OsRelease
            .extract("etc/os-release", &vec![b'A'; 70_000])
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            "os/release: etc/os-release: 70000 bytes is too large for an os-release file"
        );
    }
}
