//! Version ordering for Python packages: PEP 440 exactly as `packaging` 26 (`Version`) implements it.
//!
//! Stage: version leaf. PyPI advisories list versions as uploaded, in any of PEP 440's spellings
//! (`1.0RC1`, `1.0-r2`, `v1.0.post`); `packaging` normalises them and orders by
//! `(epoch, release without trailing zeros, pre, post, dev, local)`. Legacy strings that `packaging`
//! no longer accepts (`0.9-doduo`) are errors, as there.

use std::cmp::Ordering;

use super::{compare_digits, VersionError};

const SCHEME: &str = "pep440";

type Span = (usize, usize);

/// A parsed PEP 440 version. Numbers are kept as digit runs of the text, so any size compares
/// correctly (Python integers are unbounded) and parsing allocates only the stored text.
#[derive(Debug, Clone)]
pub struct Pep440Version {
    text: Box<str>,
    epoch: Option<Span>,
    /// The release segment, digits separated by `.`.
    release: Span,
    pre: Option<(PreKind, Option<Span>)>,
    /// The post-release number; `Some(None)` is a post-release without a number (`.post` = `.post0`).
    post: Option<Option<Span>>,
    dev: Option<Option<Span>>,
    /// The local label after `+`, segments separated by `.`, `-` or `_`.
    local: Option<Span>,
}

/// Pre-release kinds in their normalised order: `a` < `b` < `rc`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum PreKind {
    Alpha,
    Beta,
    ReleaseCandidate,
}

/// A cursor over the lower-cased comparison of the input.
struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    /// Consumes one of `-`, `_`, `.` if present.
    fn separator(&mut self) -> bool {
        if matches!(self.peek(), Some(b'-' | b'_' | b'.')) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn digits(&mut self) -> Option<Span> {
        let start = self.pos;
        while self.peek().is_some_and(|b| b.is_ascii_digit()) {
            self.pos += 1;
        }
        (self.pos > start).then_some((start, self.pos))
    }

    /// Consumes the first of `words` (tried in order, case-insensitively) that the input continues
    /// with, returning its index.
    fn word(&mut self, words: &[&str]) -> Option<usize> {
        let rest = &self.bytes[self.pos..];
        let index = words.iter().position(|w| {
            rest.len() >= w.len() && rest[..w.len()].eq_ignore_ascii_case(w.as_bytes())
        })?;
        self.pos += words[index].len();
        Some(index)
    }
}

/// The parts of `VERSION_PATTERN`, in the order the regex reads them. Each optional part restores the
/// cursor when it is absent, as the regex backtracks.
impl Cursor<'_> {
    /// `[N!]N(.N)*`: an epoch is digits followed by `!`; otherwise those digits start the release.
    fn epoch_and_release(&mut self) -> Result<(Option<Span>, Span), &'static str> {
        let first = self.digits().ok_or("expected a release number")?;
        let mut epoch = None;
        let release_start;
        if self.peek() == Some(b'!') {
            epoch = Some(first);
            self.pos += 1;
            release_start = self.pos;
            self.digits()
                .ok_or("expected a release number after the epoch")?;
        } else {
            release_start = first.0;
        }
        while self.peek() == Some(b'.')
            && self.bytes.get(self.pos + 1).is_some_and(u8::is_ascii_digit)
        {
            self.pos += 1;
            self.digits();
        }
        Ok((epoch, (release_start, self.pos)))
    }

    /// `[{a|b|rc}N]` in any of its spellings.
    fn pre_release(&mut self) -> Option<(PreKind, Option<Span>)> {
        let save = self.pos;
        self.separator();
        let words = ["alpha", "a", "beta", "b", "preview", "pre", "c", "rc"];
        match self.word(&words) {
            Some(index) => {
                let kind = match index {
                    0 | 1 => PreKind::Alpha,
                    2 | 3 => PreKind::Beta,
                    _ => PreKind::ReleaseCandidate,
                };
                // The regex takes the optional separator greedily even without a number
                // ("1.0a-" is valid); a later part never needs it, as it may have its own.
                self.separator();
                Some((kind, self.digits()))
            }
            None => {
                self.pos = save;
                None
            }
        }
    }

    /// `[.postN]`, also spelled `-N`, `rev` or `r`.
    fn post_release(&mut self) -> Option<Option<Span>> {
        let save = self.pos;
        if self.peek() == Some(b'-') && self.bytes.get(self.pos + 1).is_some_and(u8::is_ascii_digit)
        {
            self.pos += 1;
            return Some(self.digits());
        }
        self.separator();
        match self.word(&["post", "rev", "r"]) {
            Some(_) => {
                self.separator();
                Some(self.digits())
            }
            None => {
                self.pos = save;
                None
            }
        }
    }

    /// `[.devN]`.
    fn dev_release(&mut self) -> Option<Option<Span>> {
        let save = self.pos;
        self.separator();
        match self.word(&["dev"]) {
            Some(_) => {
                self.separator();
                Some(self.digits())
            }
            None => {
                self.pos = save;
                None
            }
        }
    }

    /// `[+label]`: alphanumeric segments separated by `.`, `-` or `_`.
    fn local_label(&mut self) -> Result<Option<Span>, &'static str> {
        if self.peek() != Some(b'+') {
            return Ok(None);
        }
        self.pos += 1;
        let start = self.pos;
        loop {
            let segment = self.pos;
            while self.peek().is_some_and(|b| b.is_ascii_alphanumeric()) {
                self.pos += 1;
            }
            if self.pos == segment {
                return Err("empty or invalid local version segment");
            }
            let next = self.bytes.get(self.pos + 1).copied();
            if matches!(self.peek(), Some(b'-' | b'_' | b'.'))
                && next.is_some_and(|b| b.is_ascii_alphanumeric())
            {
                self.pos += 1;
            } else {
                break;
            }
        }
        Ok(Some((start, self.pos)))
    }
}

/// Python's `str.isspace`, which `packaging` strips with.
fn is_python_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

impl Pep440Version {
    /// Parses like `packaging.version.Version`: the `VERSION_PATTERN` regex, case-insensitive, with
    /// surrounding whitespace allowed.
    pub fn parse(text: &str) -> Result<Pep440Version, VersionError> {
        let err = |reason: &str| VersionError::new(SCHEME, text, reason);
        let body = text.trim_matches(is_python_space);
        let offset = body.as_ptr() as usize - text.as_ptr() as usize;
        let mut at = Cursor {
            bytes: text.as_bytes(),
            pos: offset,
        };
        let end = offset + body.len();
        if matches!(at.peek(), Some(b'v' | b'V')) {
            at.pos += 1;
        }
        let (epoch, release) = at.epoch_and_release().map_err(err)?;
        let pre = at.pre_release();
        let post = at.post_release();
        let dev = at.dev_release();
        let local = at.local_label().map_err(err)?;
        if at.pos != end {
            return Err(err("not a PEP 440 version"));
        }
        Ok(Pep440Version {
            text: text.into(),
            epoch,
            release,
            pre,
            post,
            dev,
            local,
        })
    }

    /// The text the version was parsed from.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// True for pre-releases and development releases (`packaging`'s `is_prerelease`).
    pub fn is_prerelease(&self) -> bool {
        self.pre.is_some() || self.dev.is_some()
    }

    fn span(&self, (s, e): Span) -> &[u8] {
        &self.text.as_bytes()[s..e]
    }

    fn compare_release(&self, other: &Self) -> Ordering {
        // Missing components count as zero, which is what stripping trailing zeros achieves.
        let mut left = self.span(self.release).split(|&b| b == b'.');
        let mut right = other.span(other.release).split(|&b| b == b'.');
        loop {
            match (left.next(), right.next()) {
                (None, None) => return Ordering::Equal,
                (x, y) => {
                    let order = compare_digits(x.unwrap_or(b"0"), y.unwrap_or(b"0"));
                    if order != Ordering::Equal {
                        return order;
                    }
                }
            }
        }
    }

    /// `packaging`'s pre key: a dev release with no pre or post part sorts before all
    /// pre-releases of its release; a version with no pre part after all of them.
    fn pre_key(&self) -> (u8, Option<(PreKind, &[u8])>) {
        match self.pre {
            None if self.post.is_none() && self.dev.is_some() => (0, None),
            None => (2, None),
            Some((kind, number)) => (1, Some((kind, self.number(number)))),
        }
    }

    fn number(&self, span: Option<Span>) -> &[u8] {
        span.map_or(b"0".as_slice(), |s| self.span(s))
    }

    fn compare_local(&self, other: &Self) -> Ordering {
        let (a, b) = match (self.local, other.local) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(a), Some(b)) => (self.span(a), other.span(b)),
        };
        let is_separator = |c: &u8| matches!(c, b'.' | b'-' | b'_');
        let mut left = a.split(is_separator);
        let mut right = b.split(is_separator);
        loop {
            let order = match (left.next(), right.next()) {
                (None, None) => return Ordering::Equal,
                (None, Some(_)) => return Ordering::Less,
                (Some(_), None) => return Ordering::Greater,
                (Some(x), Some(y)) => {
                    let numeric_x = x.iter().all(u8::is_ascii_digit);
                    let numeric_y = y.iter().all(u8::is_ascii_digit);
                    match (numeric_x, numeric_y) {
                        (true, true) => compare_digits(x, y),
                        // Numeric segments sort after alphanumeric ones.
                        (true, false) => Ordering::Greater,
                        (false, true) => Ordering::Less,
                        (false, false) => x
                            .iter()
                            .map(u8::to_ascii_lowercase)
                            .cmp(y.iter().map(u8::to_ascii_lowercase)),
                    }
                }
            };
            if order != Ordering::Equal {
                return order;
            }
        }
    }
}

impl PartialEq for Pep440Version {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Pep440Version {}

impl PartialOrd for Pep440Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Pep440Version {
    fn cmp(&self, other: &Self) -> Ordering {
        compare_digits(self.number(self.epoch), other.number(other.epoch))
            .then_with(|| self.compare_release(other))
            .then_with(|| {
                let (rank_a, pre_a) = self.pre_key();
                let (rank_b, pre_b) = other.pre_key();
                rank_a.cmp(&rank_b).then_with(|| match (pre_a, pre_b) {
                    (Some((ka, na)), Some((kb, nb))) => ka.cmp(&kb).then(compare_digits(na, nb)),
                    _ => Ordering::Equal,
                })
            })
            .then_with(|| match (self.post, other.post) {
                (None, None) => Ordering::Equal,
                (None, Some(_)) => Ordering::Less,
                (Some(_), None) => Ordering::Greater,
                (Some(a), Some(b)) => compare_digits(self.number(a), other.number(b)),
            })
            .then_with(|| match (self.dev, other.dev) {
                (None, None) => Ordering::Equal,
                // No dev part sorts after every dev release.
                (None, Some(_)) => Ordering::Greater,
                (Some(_), None) => Ordering::Less,
                (Some(a), Some(b)) => compare_digits(self.number(a), other.number(b)),
            })
            .then_with(|| self.compare_local(other))
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{check_lines, check_rejects};
    use super::super::Scheme;

    #[test]
    fn tricky_orderings() {
        check_lines(
            Scheme::Pep440,
            "
            1.0.dev0 < 1.0a0
            1.0a1.dev1 < 1.0a1
            1.0a1 < 1.0b1
            1.0b1 < 1.0rc1
            1.0rc1 = 1.0c1
            1.0rc1 < 1.0
            1.0 = 1.0.0
            1.0 < 1.0+local
            1.0+abc < 1.0+1
            1.0+1.a < 1.0+1.a.0
            1.0+ABC = 1.0+abc
            1.0 < 1.0.post0.dev0
            1.0.post0.dev0 < 1.0.post0
            1.0.post = 1.0.post0
            1.0-1 = 1.0.post1
            1.0-r1 = 1.0.post1
            1.0a = 1.0a0
            1.0alpha1 = 1.0a1
            1.0-preview-1 = 1.0rc1
            V1.0 = 1.0
            1!0.1 > 999
            1.0a- = 1.0a0
            1.0.post.dev = 1.0.post0.dev0
            1.0a.-post1 = 1.0a0.post1
            99999999999999999999999 > 99999999999999999999998
            ",
        );
    }

    #[test]
    fn rejects_what_packaging_rejects() {
        check_rejects(
            Scheme::Pep440,
            &[
                "0.9-doduo",
                "1.0-",
                "1.0+",
                "1.0+a+",
                "1.0.",
                ".1",
                "1..0",
                "1.0+_foo",
                "1.0a1a",
                "1!",
                "!1",
                "1.0 a1",
                "v",
                "1.0+İ",
            ],
        );
    }
}
