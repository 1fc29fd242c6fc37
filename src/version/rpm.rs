//! Version ordering for RPM packages: rpm 4.18 `rpmvercmp` over `epoch:version-release`.
//!
//! Stage: version leaf. Red Hat, AlmaLinux, Rocky, SUSE and Azure Linux advisories give EVR strings;
//! rpm splits them like its `parseEVR` (leading digits and a colon make the epoch, the last hyphen
//! starts the release) and compares each part with `rpmvercmp`, where `~` sorts before the end of
//! the string and `^` after it but before any further segment.

use std::cmp::Ordering;

use super::VersionError;

/// A parsed RPM `[epoch:]version[-release]`.
#[derive(Debug, Clone)]
pub struct RpmVersion {
    text: Box<str>,
    /// Digits of the epoch, or None when there was no `digits:` prefix (compared as `0`).
    epoch: Option<(usize, usize)>,
    version: (usize, usize),
    /// None when there is no hyphen; such a version sorts before any release of the same version.
    release: Option<(usize, usize)>,
}

impl RpmVersion {
    /// Splits an EVR string the way rpm's `parseEVR` does. rpm itself rejects nothing here: any
    /// string has an order, so only the limits common to all schemes apply.
    pub fn parse(text: &str) -> Result<RpmVersion, VersionError> {
        let bytes = text.as_bytes();
        let digits_end = bytes.iter().take_while(|b| b.is_ascii_digit()).count();
        // The release starts after the last hyphen that follows the epoch digits.
        let hyphen = text[digits_end..].rfind('-').map(|h| h + digits_end);
        let (epoch, version_start) = if bytes.get(digits_end) == Some(&b':') {
            (Some((0, digits_end)), digits_end + 1)
        } else {
            (None, 0)
        };
        let (version, release) = match hyphen {
            Some(h) => ((version_start, h), Some((h + 1, text.len()))),
            None => ((version_start, text.len()), None),
        };
        Ok(RpmVersion {
            text: text.into(),
            epoch,
            version,
            release,
        })
    }

    /// The text the version was parsed from.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The epoch digits, if the text had an epoch.
    pub fn epoch(&self) -> Option<&str> {
        self.epoch.map(|(s, e)| &self.text[s..e])
    }

    /// The version part.
    pub fn version(&self) -> &str {
        &self.text[self.version.0..self.version.1]
    }

    /// The release part, if the text had a hyphen.
    pub fn release(&self) -> Option<&str> {
        self.release.map(|(s, e)| &self.text[s..e])
    }
}

impl PartialEq for RpmVersion {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for RpmVersion {}

impl PartialOrd for RpmVersion {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for RpmVersion {
    fn cmp(&self, other: &Self) -> Ordering {
        // A missing epoch is "0"; an empty one (":1") is also "0", which the digit comparison gives.
        let epoch_a = self.epoch().unwrap_or("0").as_bytes();
        let epoch_b = other.epoch().unwrap_or("0").as_bytes();
        super::compare_digits(epoch_a, epoch_b)
            .then_with(|| rpmvercmp(self.version().as_bytes(), other.version().as_bytes()))
            .then_with(|| match (self.release(), other.release()) {
                (Some(a), Some(b)) => rpmvercmp(a.as_bytes(), b.as_bytes()),
                // As rpm's labelCompare: an absent release sorts before any present one.
                (a, b) => a.is_some().cmp(&b.is_some()),
            })
    }
}

/// rpm's segment comparison. Bytes that are not ASCII alphanumerics, `~` or `^` only separate
/// segments; numeric segments beat alphabetic ones; numbers compare without leading zeros.
pub fn rpmvercmp(a: &[u8], b: &[u8]) -> Ordering {
    if a == b {
        return Ordering::Equal;
    }
    let is_separator = |c: u8| !c.is_ascii_alphanumeric() && c != b'~' && c != b'^';
    let (mut i, mut j) = (0, 0);
    loop {
        while i < a.len() && is_separator(a[i]) {
            i += 1;
        }
        while j < b.len() && is_separator(b[j]) {
            j += 1;
        }
        let (ca, cb) = (a.get(i).copied(), b.get(j).copied());
        if ca.is_none() && cb.is_none() {
            return Ordering::Equal;
        }
        if ca == Some(b'~') || cb == Some(b'~') {
            if ca != Some(b'~') {
                return Ordering::Greater;
            }
            if cb != Some(b'~') {
                return Ordering::Less;
            }
            i += 1;
            j += 1;
            continue;
        }
        if ca == Some(b'^') || cb == Some(b'^') {
            if ca.is_none() {
                return Ordering::Less;
            }
            if cb.is_none() {
                return Ordering::Greater;
            }
            if ca != Some(b'^') {
                return Ordering::Greater;
            }
            if cb != Some(b'^') {
                return Ordering::Less;
            }
            i += 1;
            j += 1;
            continue;
        }
        let (Some(first), Some(_)) = (ca, cb) else {
            // One side ran out: whichever still has characters wins.
            return if ca.is_none() {
                Ordering::Less
            } else {
                Ordering::Greater
            };
        };
        let numeric = first.is_ascii_digit();
        let in_segment = |c: &u8| {
            if numeric {
                c.is_ascii_digit()
            } else {
                c.is_ascii_alphabetic()
            }
        };
        let end_a = i + a[i..].iter().take_while(|c| in_segment(c)).count();
        let end_b = j + b[j..].iter().take_while(|c| in_segment(c)).count();
        if end_b == j {
            // Segments of different types: the numeric one is newer.
            return if numeric {
                Ordering::Greater
            } else {
                Ordering::Less
            };
        }
        let order = if numeric {
            super::compare_digits(&a[i..end_a], &b[j..end_b])
        } else {
            a[i..end_a].cmp(&b[j..end_b])
        };
        if order != Ordering::Equal {
            return order;
        }
        i = end_a;
        j = end_b;
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::check_lines;
    use super::super::Scheme;
    use super::*;

    #[test]
    fn tricky_orderings() {
        check_lines(
            Scheme::Rpm,
            "
            1.0~rc1 < 1.0
            1.0~rc1~git123 < 1.0~rc1
            1.0 < 1.0^git1
            1.0^git1 < 1.01
            1.0^git1~pre < 1.0^git1
            1.0^20160101 < 1.0.1
            2_0 = 2.0
            10.0001 = 10.1
            6.0.rc1 > 6.0
            1.0a < 1.0aa
            xyz.4 < 8
            1.1.α < 1.1.a
            1.1.α = 1.1.β
            1 < 1-0
            1- = 1-
            1-1. = 1-1
            3 < 1:2
            01:2 = 1:2
            :1 = 1
            a:1 < a1:1
            0+2-n:1 > 0+1-n:1
            99999999999999999999999999 > 99999999999999999999999998
            ",
        );
    }

    #[test]
    fn splits_like_parse_evr() {
        let v = RpmVersion::parse("2:1.0-a-3.el9").unwrap();
        assert_eq!(
            (v.epoch(), v.version(), v.release()),
            (Some("2"), "1.0-a", Some("3.el9"))
        );
        let v = RpmVersion::parse("1.m+e2:1").unwrap();
        assert_eq!(
            (v.epoch(), v.version(), v.release()),
            (None, "1.m+e2:1", None)
        );
    }
}
