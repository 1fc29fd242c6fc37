//! Version ordering for npm and crates.io: SemVer 2.0 precedence, build metadata ignored.
//!
//! Stage: version leaf. OSV `SEMVER` ranges of npm and crates.io advisories mean SemVer 2.0 §11
//! precedence, so `1.2.3+a` equals `1.2.3+b` (unlike the `semver` crate's `Ord`, which breaks ties
//! on build metadata). The grammar is strict SemVer 2.0 plus node-semver's tolerance of surrounding
//! whitespace and a leading `v` or `=`. The core here is shared with the Go scheme, which differs
//! only in its grammar.

use std::cmp::Ordering;

use super::VersionError;

const SCHEME: &str = "semver";

/// A parsed SemVer 2.0 version.
#[derive(Debug, Clone)]
pub struct SemverVersion {
    text: Box<str>,
    core: Core,
}

/// Byte ranges of the parts of a SemVer-like version inside its text. Numbers stay as digit runs
/// so that any length compares correctly without parsing into a fixed-width integer.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Core {
    pub major: (usize, usize),
    pub minor: (usize, usize),
    pub patch: (usize, usize),
    /// Empty when there is no pre-release.
    pub prerelease: (usize, usize),
}

/// The grammar variations between the SemVer flavours.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flavour {
    /// Strict SemVer 2.0: all three numbers present, each fitting in a u64.
    Strict,
    /// Go's x/mod/semver: `vMAJOR` and `vMAJOR.MINOR` are shorthands for `.0`, but only without a
    /// pre-release or build suffix; numbers are unbounded.
    Go,
}

impl SemverVersion {
    /// Parses strict SemVer 2.0 after trimming whitespace and a node-semver style `v`/`=` prefix.
    pub fn parse(text: &str) -> Result<SemverVersion, VersionError> {
        let trimmed = text.trim();
        let body = trimmed.trim_start_matches(|c: char| c == 'v' || c == '=' || c.is_whitespace());
        let offset = body.as_ptr() as usize - text.as_ptr() as usize;
        let core = parse_core(body, Flavour::Strict)
            .map_err(|reason| VersionError::new(SCHEME, text, reason))?
            .shifted(offset);
        Ok(SemverVersion {
            text: text.into(),
            core,
        })
    }

    /// The text the version was parsed from.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The pre-release identifiers joined by dots; empty for a release.
    pub fn prerelease(&self) -> &str {
        &self.text[self.core.prerelease.0..self.core.prerelease.1]
    }
}

impl PartialEq for SemverVersion {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for SemverVersion {}

impl PartialOrd for SemverVersion {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for SemverVersion {
    fn cmp(&self, other: &Self) -> Ordering {
        compare_cores(&self.text, &self.core, &other.text, &other.core)
    }
}

impl Core {
    fn shifted(self, offset: usize) -> Core {
        let shift = |(s, e): (usize, usize)| (s + offset, e + offset);
        Core {
            major: shift(self.major),
            minor: shift(self.minor),
            patch: shift(self.patch),
            prerelease: shift(self.prerelease),
        }
    }
}

/// Parses `MAJOR[.MINOR[.PATCH]][-PRERELEASE][+BUILD]` with ranges relative to `text`. Shorthands
/// yield empty minor/patch ranges, which compare as zero.
pub(crate) fn parse_core(text: &str, flavour: Flavour) -> Result<Core, &'static str> {
    let bytes = text.as_bytes();
    let mut pos = 0;
    let major = parse_number(bytes, &mut pos, flavour)?;
    let mut minor = (pos, pos);
    let mut patch = (pos, pos);
    let mut shorthand = false;
    if bytes.get(pos) == Some(&b'.') {
        pos += 1;
        minor = parse_number(bytes, &mut pos, flavour)?;
        if bytes.get(pos) == Some(&b'.') {
            pos += 1;
            patch = parse_number(bytes, &mut pos, flavour)?;
        } else {
            shorthand = true;
            patch = (pos, pos);
        }
    } else {
        shorthand = true;
    }
    if shorthand {
        if flavour == Flavour::Strict {
            return Err("expected MAJOR.MINOR.PATCH");
        }
        if pos != bytes.len() {
            return Err("a shorthand version (vMAJOR or vMAJOR.MINOR) cannot have a suffix");
        }
    }
    let mut prerelease = (pos, pos);
    if bytes.get(pos) == Some(&b'-') {
        pos += 1;
        let start = pos;
        parse_identifiers(bytes, &mut pos, true)?;
        prerelease = (start, pos);
    }
    if bytes.get(pos) == Some(&b'+') {
        pos += 1;
        parse_identifiers(bytes, &mut pos, false)?;
    }
    if pos != bytes.len() {
        return Err("unexpected character after the version");
    }
    Ok(Core {
        major,
        minor,
        patch,
        prerelease,
    })
}

/// A numeric identifier: `0` or a digit run without a leading zero.
fn parse_number(
    bytes: &[u8],
    pos: &mut usize,
    flavour: Flavour,
) -> Result<(usize, usize), &'static str> {
    let start = *pos;
    let len = bytes[start..]
        .iter()
        .take_while(|b| b.is_ascii_digit())
        .count();
    if len == 0 {
        return Err("expected a number");
    }
    if len > 1 && bytes[start] == b'0' {
        return Err("a number must not have leading zeros");
    }
    // u64::MAX has 20 digits; the semver crate (crates.io) rejects anything larger.
    if flavour == Flavour::Strict
        && super::compare_digits(&bytes[start..start + len], b"18446744073709551615")
            == Ordering::Greater
    {
        return Err("a number is larger than 18446744073709551615");
    }
    *pos = start + len;
    Ok((start, start + len))
}

/// Dot-separated non-empty identifiers of `[0-9A-Za-z-]`; in a pre-release, numeric identifiers
/// must not have leading zeros.
fn parse_identifiers(bytes: &[u8], pos: &mut usize, prerelease: bool) -> Result<(), &'static str> {
    loop {
        let start = *pos;
        let len = bytes[start..]
            .iter()
            .take_while(|b| b.is_ascii_alphanumeric() || **b == b'-')
            .count();
        if len == 0 {
            return Err(if prerelease {
                "empty pre-release identifier"
            } else {
                "empty build metadata identifier"
            });
        }
        let ident = &bytes[start..start + len];
        if prerelease && len > 1 && ident[0] == b'0' && ident.iter().all(u8::is_ascii_digit) {
            return Err("a numeric pre-release identifier must not have leading zeros");
        }
        *pos = start + len;
        if bytes.get(*pos) == Some(&b'.') {
            *pos += 1;
        } else {
            return Ok(());
        }
    }
}

/// SemVer 2.0 §11 precedence over two parsed cores.
pub(crate) fn compare_cores(text_a: &str, a: &Core, text_b: &str, b: &Core) -> Ordering {
    let (ta, tb) = (text_a.as_bytes(), text_b.as_bytes());
    let number =
        |x: (usize, usize), y: (usize, usize)| super::compare_digits(&ta[x.0..x.1], &tb[y.0..y.1]);
    number(a.major, b.major)
        .then_with(|| number(a.minor, b.minor))
        .then_with(|| number(a.patch, b.patch))
        .then_with(|| {
            compare_prereleases(
                &ta[a.prerelease.0..a.prerelease.1],
                &tb[b.prerelease.0..b.prerelease.1],
            )
        })
}

/// A release outranks any pre-release; otherwise identifiers compare left to right (numeric ones
/// numerically and below alphanumeric ones, which compare in ASCII order), and a longer list wins
/// when one is a prefix of the other.
fn compare_prereleases(a: &[u8], b: &[u8]) -> Ordering {
    match (a.is_empty(), b.is_empty()) {
        (true, true) => return Ordering::Equal,
        (true, false) => return Ordering::Greater,
        (false, true) => return Ordering::Less,
        (false, false) => {}
    }
    let mut left = a.split(|&c| c == b'.');
    let mut right = b.split(|&c| c == b'.');
    loop {
        match (left.next(), right.next()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(x), Some(y)) => {
                let numeric_x = x.iter().all(u8::is_ascii_digit);
                let numeric_y = y.iter().all(u8::is_ascii_digit);
                let order = match (numeric_x, numeric_y) {
                    (true, true) => super::compare_digits(x, y),
                    (true, false) => Ordering::Less,
                    (false, true) => Ordering::Greater,
                    (false, false) => x.cmp(y),
                };
                if order != Ordering::Equal {
                    return order;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{check_lines, check_rejects};
    use super::super::Scheme;

    #[test]
    fn tricky_orderings() {
        check_lines(
            Scheme::Semver,
            "
            1.0.0-alpha < 1.0.0-alpha.1
            1.0.0-alpha.1 < 1.0.0-alpha.beta
            1.0.0-beta.2 < 1.0.0-beta.11
            1.0.0-rc.1 < 1.0.0
            1.2.3-a.5 < 1.2.3-a.b
            1.2.3-R2 < 1.2.3-r100
            1.2.3-5 < 1.2.3-5-foo
            1.2.3+23 = 1.2.3+42
            1.2.3-beta+build = 1.2.3-beta+other
            v1.2.3 = 1.2.3
            =1.2.3 = 1.2.3
            1.2.3 = v1.2.3
            18446744073709551615.0.0 > 18446744073709551614.0.0
            ",
        );
    }

    #[test]
    fn rejects_what_semver_rejects() {
        check_rejects(
            Scheme::Semver,
            &[
                "1",
                "1.2",
                "1.2.3.4",
                "01.2.3",
                "1.02.3",
                "1.2.3-01",
                "1.2.3-",
                "1.2.3+",
                "1.2.3-a..b",
                "1.2.3-é",
                "1.2.3 4",
                "18446744073709551616.0.0",
                "999999999999999999999999999991",
                "v",
            ],
        );
    }
}
