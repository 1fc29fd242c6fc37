//! Version ordering for Alpine (and Wolfi/Chainguard) packages, exactly as apk-tools 2.14.
//!
//! Stage: version leaf. Alpine's secdb and OSV records give apk versions
//! (`1.2.3a_rc1_p2-r4`: numbers, one letter, suffixes, revision). apk-tools 2.14 (Alpine 3.18–3.22)
//! walks both strings as a token stream and compares token by token; strings its validator rejects
//! (`1.0bc`, `1.0~git`, `23_foo`) are errors here rather than a guess. Its quirks are kept: a component
//! after a dot with leading zeros sorts below one without (`8.2.001 < 8.2.0`).

use std::cmp::Ordering;

use super::{compare_digits, VersionError};

const SCHEME: &str = "apk";

/// A validated apk version. Comparison re-walks the text, which allocates nothing.
#[derive(Debug, Clone)]
pub struct ApkVersion {
    text: Box<str>,
}

impl ApkVersion {
    /// Accepts what apk-tools 2.14's `apk_version_validate` accepts.
    pub fn parse(text: &str) -> Result<ApkVersion, VersionError> {
        let mut tokens = Tokens::new(text.as_bytes());
        while !matches!(tokens.kind, Kind::End | Kind::Invalid) {
            tokens.get_token();
        }
        if tokens.kind == Kind::Invalid {
            let at = tokens.pos.min(text.len());
            return Err(VersionError::new(
                SCHEME,
                text,
                format!("not a valid apk version (apk-tools rejects it near byte {at})"),
            ));
        }
        Ok(ApkVersion { text: text.into() })
    }

    /// The text the version was parsed from.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

/// apk-tools' token kinds; the declaration order is significant (it decides which token may
/// follow which, and which version is greater when one runs out first).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Invalid,
    DigitOrZero,
    Digit,
    Letter,
    Suffix,
    SuffixNumber,
    RevisionNumber,
    End,
}

/// A token's value. apk uses one integer; we keep digit runs as text so that long numbers (dates
/// with times, `_pre20191002222144`) compare exactly.
#[derive(Debug, Clone, Copy)]
enum Value<'a> {
    Small(i64),
    Digits(&'a [u8]),
}

impl Value<'_> {
    fn compare(self, other: Value<'_>) -> Ordering {
        match (self, other) {
            (Value::Small(a), Value::Small(b)) => a.cmp(&b),
            (Value::Digits(a), Value::Digits(b)) => compare_digits(a, b),
            (Value::Digits(a), Value::Small(b)) => Self::digits_vs_small(a, b),
            (Value::Small(a), Value::Digits(b)) => Self::digits_vs_small(b, a).reverse(),
        }
    }

    fn digits_vs_small(digits: &[u8], small: i64) -> Ordering {
        if small < 0 {
            return Ordering::Greater;
        }
        let digits = super::strip_leading_zeros(digits);
        if digits.len() > 18 {
            return Ordering::Greater;
        }
        let value = digits
            .iter()
            .fold(0i64, |acc, &b| acc * 10 + i64::from(b - b'0'));
        value.cmp(&small)
    }
}

/// apk-tools' tokenizer state over one version string.
#[derive(Clone)]
struct Tokens<'a> {
    bytes: &'a [u8],
    pos: usize,
    kind: Kind,
}

impl<'a> Tokens<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Tokens {
            bytes,
            pos: 0,
            kind: Kind::Digit,
        }
    }

    fn rest(&self) -> &'a [u8] {
        &self.bytes[self.pos.min(self.bytes.len())..]
    }

    /// Decides the kind of the next token from the separator or character class at the cursor.
    fn next_token(&mut self) {
        let rest = self.rest();
        let current = self.kind;
        let mut next = match rest.first() {
            None | Some(0) => Kind::End,
            Some(c)
                if matches!(current, Kind::Digit | Kind::DigitOrZero) && c.is_ascii_lowercase() =>
            {
                Kind::Letter
            }
            Some(c) if current == Kind::Letter && c.is_ascii_digit() => Kind::Digit,
            Some(c) if current == Kind::Suffix && c.is_ascii_digit() => Kind::SuffixNumber,
            Some(c) => {
                let kind = match c {
                    b'.' => Kind::DigitOrZero,
                    b'_' => Kind::Suffix,
                    b'-' if rest.get(1) == Some(&b'r') => {
                        self.pos += 1;
                        Kind::RevisionNumber
                    }
                    _ => Kind::Invalid,
                };
                self.pos += 1;
                kind
            }
        };
        let allowed_step_back = matches!(
            (next, current),
            (Kind::DigitOrZero, Kind::Digit)
                | (Kind::Suffix, Kind::SuffixNumber)
                | (Kind::Digit, Kind::Letter)
        );
        if next < current && !allowed_step_back {
            next = Kind::Invalid;
        }
        self.kind = next;
    }

    /// Reads the token of the current kind and moves to the next one.
    fn get_token(&mut self) -> Value<'a> {
        let rest = self.rest();
        if rest.is_empty() {
            self.kind = Kind::End;
            return Value::Small(0);
        }
        let mut next_kind = None;
        let (value, length) = match self.kind {
            Kind::DigitOrZero if rest[0] == b'0' => {
                // Leading zeros after a dot: the count of zeros, negated, then the rest as a number.
                let zeros = rest.iter().take_while(|&&b| b == b'0').count();
                next_kind = Some(Kind::Digit);
                (Value::Small(-(zeros as i64)), zeros)
            }
            Kind::DigitOrZero | Kind::Digit | Kind::SuffixNumber | Kind::RevisionNumber => {
                let length = rest.iter().take_while(|b| b.is_ascii_digit()).count();
                (Value::Digits(&rest[..length]), length)
            }
            Kind::Letter => (Value::Small(i64::from(rest[0])), 1),
            Kind::Suffix => {
                const PRE: [&str; 4] = ["alpha", "beta", "pre", "rc"];
                const POST: [&str; 5] = ["cvs", "svn", "git", "hg", "p"];
                if let Some(index) = PRE.iter().position(|s| rest.starts_with(s.as_bytes())) {
                    (Value::Small(index as i64 - 4), PRE[index].len())
                } else if let Some(index) = POST.iter().position(|s| rest.starts_with(s.as_bytes()))
                {
                    (Value::Small(index as i64), POST[index].len())
                } else {
                    self.kind = Kind::Invalid;
                    return Value::Small(-1);
                }
            }
            Kind::Invalid | Kind::End => {
                self.kind = Kind::Invalid;
                return Value::Small(-1);
            }
        };
        self.pos += length;
        if self.rest().is_empty() {
            self.kind = Kind::End;
        } else if let Some(kind) = next_kind {
            self.kind = kind;
        } else {
            self.next_token();
        }
        value
    }
}

/// Moves past a number token with no digits (only the stream after leading zeros has one).
fn skip_empty_number(tokens: &mut Tokens<'_>) {
    if tokens.kind == Kind::Digit && !tokens.rest().first().is_some_and(u8::is_ascii_digit) {
        tokens.get_token();
    }
}

impl PartialEq for ApkVersion {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for ApkVersion {}

impl PartialOrd for ApkVersion {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for ApkVersion {
    /// apk-tools' `apk_version_compare_blob_fuzzy` without fuzziness.
    fn cmp(&self, other: &Self) -> Ordering {
        let mut a = Tokens::new(self.text.as_bytes());
        let mut b = Tokens::new(other.text.as_bytes());
        let (mut av, mut bv) = (Value::Small(0), Value::Small(0));
        while a.kind == b.kind
            && !matches!(a.kind, Kind::End | Kind::Invalid)
            && av.compare(bv) == Ordering::Equal
        {
            av = a.get_token();
            bv = b.get_token();
        }
        let order = av.compare(bv);
        if order != Ordering::Equal || a.kind == b.kind {
            return order;
        }
        // Equal so far and one version goes on: it is greater, unless what follows is a
        // pre-release suffix (`_alpha`, `_beta`, `_pre`, `_rc`). A zero-padded component
        // (`6.0_pre1`) leaves an empty number token before the suffix; it carries no value, so
        // look past it, as apk-tools 2.14 does (`6.0_pre1 < 6.0`).
        skip_empty_number(&mut a);
        skip_empty_number(&mut b);
        if a.kind == Kind::Suffix && a.clone().get_token().compare(Value::Small(0)).is_lt() {
            return Ordering::Less;
        }
        if b.kind == Kind::Suffix && b.clone().get_token().compare(Value::Small(0)).is_lt() {
            return Ordering::Greater;
        }
        b.kind.cmp(&a.kind)
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{check_lines, check_rejects};
    use super::super::Scheme;

    #[test]
    fn tricky_orderings() {
        check_lines(
            Scheme::Apk,
            "
            1.0_alpha < 1.0_beta
            1.0_rc1 < 1.0
            1.0 < 1.0_p1
            1.0_p1 < 1.0a
            1.0a < 1.0.1
            1.0-r1 > 1.0
            1.0-r1 < 1.0-r2
            1-r = 1-r0
            1-r1 = 1-r01
            8.2.0 > 8.2.001
            8.2.0015 > 8.2.002
            1.0 > 1.00
            6.0_pre1 < 6.0
            6.0_rc1 < 6.0
            6.0_p1 > 6.0
            6.00a < 6.0
            1.0.1 < 1.06-r1
            10.0.0-r2 < 10.01.0-r0
            0.r1 > 0r2
            1.0.0_pre20191002222144-r0 < 1.0.0_pre20210530193627-r0
            1.0_git20240101 > 1.0_cvs20240101
            2.34 > 0.1.0_alpha
            ",
        );
    }

    #[test]
    fn rejects_what_apk_tools_2_14_rejects() {
        check_rejects(
            Scheme::Apk,
            &[
                "1.0bc",
                "23_foo",
                "1.0~1234",
                "1.2.0A",
                "1-r-0",
                "1-ruff",
                "0.1_foobar",
                "0.1-pre1.1",
                "0.1-r2.1",
                "0.1__alpha",
                "0.1_1_alpha",
            ],
        );
        // apk-tools 3 rejects these, 2.14's validator lets them through.
        for lenient in [".1", "a", "_pre1", "-r1", "0.1_", "0.1-r2-r3", "1-r"] {
            assert!(Scheme::Apk.parse(lenient).is_ok(), "{lenient}");
        }
    }
}
