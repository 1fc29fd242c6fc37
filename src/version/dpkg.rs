//! Version ordering for Debian and Ubuntu packages, exactly as `dpkg --compare-versions` (dpkg 1.21).
//!
//! Stage: version leaf. Debian advisories give fixed versions in dpkg syntax
//! (`[epoch:]upstream[-revision]`), where `~` sorts before everything, even the end of the string.

use std::cmp::Ordering;

use super::VersionError;

const SCHEME: &str = "dpkg";

/// A parsed dpkg version: `[epoch:]upstream[-revision]`.
#[derive(Debug, Clone)]
pub struct DpkgVersion {
    text: Box<str>,
    epoch: u32,
    /// Byte range of the upstream part within `text`.
    upstream: (usize, usize),
    /// Byte range of the revision within `text`; empty when there is no hyphen.
    revision: (usize, usize),
}

impl DpkgVersion {
    /// Parses like dpkg's `parseversion`: surrounding blanks are trimmed, embedded blanks are
    /// rejected, the epoch must be a decimal number in `0..=i32::MAX`, and neither the upstream part
    /// nor a present revision may be empty.
    ///
    /// dpkg only *warns* about a version that does not start with a digit or that contains
    /// characters outside its alphabet, and still compares it; so do we.
    pub fn parse(text: &str) -> Result<DpkgVersion, VersionError> {
        let err = |reason: &str| VersionError::new(SCHEME, text, reason);
        let is_blank = |c: char| c == ' ' || c == '\t';
        let trimmed = text.trim_start_matches(is_blank);
        if trimmed.is_empty() {
            return Err(err("version string is empty"));
        }
        let trimmed = trimmed.trim_end_matches(is_blank);
        if trimmed.contains(is_blank) {
            return Err(err("version string has embedded spaces"));
        }
        let offset = text.len() - text.trim_start_matches(is_blank).len();
        let (epoch, body_start) = match trimmed.find(':') {
            Some(colon) => (parse_epoch(&trimmed[..colon]).map_err(err)?, colon + 1),
            None => (0, 0),
        };
        let body = &trimmed[body_start..];
        if body_start > 0 && body.is_empty() {
            return Err(err("nothing after colon in version number"));
        }
        let (upstream, revision) = match body.rfind('-') {
            Some(hyphen) => {
                if hyphen + 1 == body.len() {
                    return Err(err("revision number is empty"));
                }
                ((0, hyphen), (hyphen + 1, body.len()))
            }
            None => ((0, body.len()), (body.len(), body.len())),
        };
        if upstream.0 == upstream.1 {
            return Err(err("version number is empty"));
        }
        let base = offset + body_start;
        Ok(DpkgVersion {
            text: text.into(),
            epoch,
            upstream: (base + upstream.0, base + upstream.1),
            revision: (base + revision.0, base + revision.1),
        })
    }

    /// The text the version was parsed from.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The epoch (0 when absent).
    pub fn epoch(&self) -> u32 {
        self.epoch
    }

    /// The upstream version, between the epoch and the last hyphen.
    pub fn upstream(&self) -> &str {
        &self.text[self.upstream.0..self.upstream.1]
    }

    /// The Debian revision after the last hyphen; empty when absent.
    pub fn revision(&self) -> &str {
        &self.text[self.revision.0..self.revision.1]
    }
}

/// The epoch as `strtol` reads it: an optional sign, decimal digits, nothing else before the colon.
fn parse_epoch(text: &str) -> Result<u32, &'static str> {
    let (negative, digits) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    if digits.is_empty() {
        // strtol consumed nothing: with no digits the colon is not where the number ended.
        return Err(if text.is_empty() {
            "epoch in version is empty"
        } else {
            "epoch in version is not number"
        });
    }
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err("epoch in version is not number");
    }
    let digits = super::strip_leading_zeros(digits.as_bytes());
    if digits.len() > 10 {
        return Err("epoch in version is too big");
    }
    let value: u64 = digits
        .iter()
        .fold(0, |acc, &b| acc * 10 + u64::from(b - b'0'));
    if negative && value != 0 {
        return Err("epoch in version is negative");
    }
    if value > i32::MAX as u64 {
        return Err("epoch in version is too big");
    }
    Ok(value as u32)
}

impl PartialEq for DpkgVersion {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for DpkgVersion {}

impl PartialOrd for DpkgVersion {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for DpkgVersion {
    fn cmp(&self, other: &Self) -> Ordering {
        self.epoch
            .cmp(&other.epoch)
            .then_with(|| verrevcmp(self.upstream().as_bytes(), other.upstream().as_bytes()))
            .then_with(|| verrevcmp(self.revision().as_bytes(), other.revision().as_bytes()))
    }
}

/// dpkg's weight of a non-digit byte: `~` first, then the end of the string and digits, then letters,
/// then everything else. dpkg reads bytes as (signed) `char`, so a byte above 0x7f weighs its
/// unsigned value: after letters, before ASCII punctuation.
fn order(byte: Option<u8>) -> i32 {
    match byte {
        None => 0,
        Some(b) if b.is_ascii_digit() => 0,
        Some(b) if b.is_ascii_alphabetic() => i32::from(b),
        Some(b'~') => -1,
        Some(b) if b >= 0x80 => i32::from(b),
        Some(b) => i32::from(b) + 256,
    }
}

/// dpkg's `verrevcmp`: alternating non-digit runs (compared by [`order`]) and digit runs (compared
/// numerically).
fn verrevcmp(a: &[u8], b: &[u8]) -> Ordering {
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        while (i < a.len() && !a[i].is_ascii_digit()) || (j < b.len() && !b[j].is_ascii_digit()) {
            let ac = order(a.get(i).copied());
            let bc = order(b.get(j).copied());
            if ac != bc {
                return ac.cmp(&bc);
            }
            i += 1;
            j += 1;
        }
        let start_a = i;
        while i < a.len() && a[i].is_ascii_digit() {
            i += 1;
        }
        let start_b = j;
        while j < b.len() && b[j].is_ascii_digit() {
            j += 1;
        }
        let numeric = super::compare_digits(&a[start_a..i], &b[start_b..j]);
        if numeric != Ordering::Equal {
            return numeric;
        }
    }
    Ordering::Equal
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{check_lines, check_rejects};
    use super::super::Scheme;
    use super::*;

    #[test]
    fn tricky_orderings() {
        check_lines(
            Scheme::Dpkg,
            "
            1.0~rc1 < 1.0
            1.0~~ < 1.0~
            1.0~ < 1.0
            1.0 < 1.0+b1
            1.0 < 1.0a
            1.0a < 1.0.
            1.0 = 1.00
            1.0 = 0:1.0
            1.0 = 1.0-0
            1:0.1 > 9.9
            1.2-3-5 > 1.2-5
            0foo.bar > 0foo1bar
            1.0é < 1.0.
            1.0é > 1.0z
            2.4.7-1 < 2.4.7-z
            1.0-1~bpo1 < 1.0-1
            a1 < b1
            +1:2 = 1:2
            -0:2 = 2
            7:1-a:b-5 = 7:1-a:b-5
            99999999999999999999999999 > 99999999999999999999999998
            ",
        );
    }

    #[test]
    fn parts_are_split_at_first_colon_and_last_hyphen() {
        let v = DpkgVersion::parse(" 2:1.0-a:b-3\t").unwrap();
        assert_eq!((v.epoch(), v.upstream(), v.revision()), (2, "1.0-a:b", "3"));
    }

    #[test]
    fn rejects_what_dpkg_rejects() {
        check_rejects(
            Scheme::Dpkg,
            &[
                "0foo-",
                "-0.6.5",
                ":1",
                "1:",
                "0x1:2",
                "-1:2",
                "2147483648:1",
                "99999999999999999999:1",
                "1.0 1",
                "  ",
                "1:-1",
            ],
        );
        assert!(DpkgVersion::parse("2147483647:1").is_ok());
    }
}
