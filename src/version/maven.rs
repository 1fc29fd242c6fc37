//! Version ordering for Maven artifacts, exactly as `ComparableVersion` of Maven 3.8/3.9.
//!
//! Stage: version leaf. Maven accepts any string as a version and orders it by splitting it into
//! numbers and qualifiers: `.` separates items, `-` and every switch between digits and letters
//! open a nested list, trailing "null" items (`0`, `ga`, `final`, `release`, empty) are dropped, and
//! known qualifiers order `alpha < beta < milestone < rc < snapshot < (release) < sp`, before any
//! unknown qualifier (compared as text). Maven 4 changed some of these rules; advisories are written
//! against the 3.x behaviour, which is what we follow.

use std::cmp::Ordering;

use super::{compare_digits, VersionError};

type Span = (usize, usize);

/// A parsed Maven version.
#[derive(Debug, Clone)]
pub struct MavenVersion {
    text: Box<str>,
    /// The lower-cased text that item spans point into.
    lower: Box<str>,
    items: Vec<Item>,
}

/// One item of a parsed version.
#[derive(Debug, Clone)]
enum Item {
    /// Digits without leading zeros (Maven's Int/Long/BigInteger items compare as one numeric kind).
    Number(Span),
    Qualifier(Qualifier),
    List(Vec<Item>),
}

/// A string item after Maven's aliases (`ga`/`final`/`release` = release, `cr` = `rc`, and a lone
/// `a`/`b`/`m` followed by a digit = alpha/beta/milestone).
#[derive(Debug, Clone, Copy)]
enum Qualifier {
    /// Index in `alpha, beta, milestone, rc, snapshot, "", sp`.
    Known(u8),
    Unknown(Span),
}

/// The deepest list nesting we accept. Maven has no limit, but comparing and dropping nested lists
/// recurses, and a hostile `-----…` must not overflow the stack; real versions nest under 20 deep.
pub const MAX_NESTING: usize = 256;

/// The index of the release (empty) qualifier among the known ones.
const RELEASE: u8 = 5;

impl MavenVersion {
    /// Parses like `ComparableVersion.parseVersion`. Maven rejects no string, so only the limits
    /// common to all schemes apply.
    ///
    /// Two documented differences: Java's `Character.isDigit` also accepts non-ASCII decimal digits
    /// (`١٢`), which we treat as letters like every non-ASCII character; and versions nesting deeper
    /// than [`MAX_NESTING`] lists are rejected.
    pub fn parse(text: &str) -> Result<MavenVersion, VersionError> {
        let lower: Box<str> = text.to_lowercase().into();
        let bytes = lower.as_bytes();
        // The chain of open lists: each `-` or digit/letter switch nests a new list as the last item
        // of the current one, so the structure is a chain and can be built level by level.
        let mut levels: Vec<Vec<Item>> = vec![Vec::new()];
        let mut is_digit = false;
        let mut start = 0;
        for (i, &c) in bytes.iter().enumerate() {
            let current = levels.last_mut().expect("at least one level");
            match c {
                b'.' | b'-' => {
                    if i == start {
                        current.push(Item::Number((i, i)));
                    } else {
                        current.push(item(&lower, is_digit, (start, i), false));
                    }
                    start = i + 1;
                    if c == b'-' {
                        levels.push(Vec::new());
                    }
                }
                b'0'..=b'9' => {
                    if !is_digit && i > start {
                        // `.X1` is treated as `-X1`: a qualifier never continues a list of numbers.
                        if !current.is_empty() {
                            levels.push(Vec::new());
                        }
                        let current = levels.last_mut().expect("at least one level");
                        current.push(item(&lower, false, (start, i), true));
                        start = i;
                        levels.push(Vec::new());
                    }
                    is_digit = true;
                }
                _ => {
                    if is_digit && i > start {
                        current.push(item(&lower, true, (start, i), false));
                        start = i;
                        levels.push(Vec::new());
                    }
                    is_digit = false;
                }
            }
        }
        if bytes.len() > start {
            // As above, a trailing `.X` is treated as `-X`.
            if !is_digit && !levels.last().expect("at least one level").is_empty() {
                levels.push(Vec::new());
            }
            let current = levels.last_mut().expect("at least one level");
            current.push(item(&lower, is_digit, (start, bytes.len()), false));
        }
        if levels.len() > MAX_NESTING {
            return Err(VersionError::new(
                "maven",
                text,
                format!(
                    "{} nested items (each '-' or digit/letter switch nests one); the limit is {MAX_NESTING}",
                    levels.len()
                ),
            ));
        }
        // Close the lists innermost first, normalising each before it joins its parent.
        let mut inner = levels.pop().expect("at least one level");
        normalize(&mut inner);
        while let Some(mut parent) = levels.pop() {
            parent.push(Item::List(inner));
            normalize(&mut parent);
            inner = parent;
        }
        Ok(MavenVersion {
            text: text.into(),
            lower,
            items: inner,
        })
    }

    /// The text the version was parsed from.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

/// `parseItem` and the `StringItem` constructor.
fn item(lower: &str, is_digit: bool, (start, end): Span, followed_by_digit: bool) -> Item {
    let bytes = lower.as_bytes();
    if is_digit {
        let zeros = bytes[start..end].iter().take_while(|&&b| b == b'0').count();
        return Item::Number((start + zeros, end));
    }
    let mut value = &lower[start..end];
    if followed_by_digit && value.len() == 1 {
        value = match value {
            "a" => "alpha",
            "b" => "beta",
            "m" => "milestone",
            other => other,
        };
    }
    let value = match value {
        "ga" | "final" | "release" => "",
        "cr" => "rc",
        other => other,
    };
    let known = ["alpha", "beta", "milestone", "rc", "snapshot", "", "sp"];
    match known.iter().position(|k| *k == value) {
        Some(index) => Item::Qualifier(Qualifier::Known(index as u8)),
        None => Item::Qualifier(Qualifier::Unknown((start, end))),
    }
}

impl Item {
    fn is_null(&self) -> bool {
        match self {
            Item::Number((s, e)) => s == e,
            Item::Qualifier(Qualifier::Known(index)) => *index == RELEASE,
            Item::Qualifier(Qualifier::Unknown(_)) => false,
            Item::List(items) => items.is_empty(),
        }
    }
}

/// Drops trailing null items, looking through (but keeping) non-null nested lists, as
/// `ListItem.normalize` does.
fn normalize(items: &mut Vec<Item>) {
    let mut i = items.len();
    while i > 0 {
        i -= 1;
        if items[i].is_null() {
            items.remove(i);
        } else if !matches!(items[i], Item::List(_)) {
            break;
        }
    }
}

/// `Item.compareTo(null)`: how an item compares with a missing one.
fn compare_with_missing(item: &Item) -> Ordering {
    match item {
        Item::Number((s, e)) => {
            if s == e {
                Ordering::Equal
            } else {
                Ordering::Greater
            }
        }
        Item::Qualifier(Qualifier::Known(index)) => index.cmp(&RELEASE),
        // "7-<text>" against "5": unknown qualifiers are above the release.
        Item::Qualifier(Qualifier::Unknown(_)) => Ordering::Greater,
        Item::List(items) => items
            .iter()
            .map(compare_with_missing)
            .find(|o| o.is_ne())
            .unwrap_or(Ordering::Equal),
    }
}

/// `Item.compareTo(other)` for two present items.
fn compare_items(a: &Item, lower_a: &str, b: &Item, lower_b: &str) -> Ordering {
    match (a, b) {
        (Item::Number(x), Item::Number(y)) => {
            compare_digits(&lower_a.as_bytes()[x.0..x.1], &lower_b.as_bytes()[y.0..y.1])
        }
        (Item::Number(_), _) => Ordering::Greater,
        (Item::Qualifier(_), Item::Number(_)) => Ordering::Less,
        (Item::Qualifier(x), Item::Qualifier(y)) => match (x, y) {
            (Qualifier::Known(i), Qualifier::Known(j)) => i.cmp(j),
            (Qualifier::Known(_), Qualifier::Unknown(_)) => Ordering::Less,
            (Qualifier::Unknown(_), Qualifier::Known(_)) => Ordering::Greater,
            // Java compares strings by UTF-16 code units.
            (Qualifier::Unknown(s), Qualifier::Unknown(t)) => lower_a[s.0..s.1]
                .encode_utf16()
                .cmp(lower_b[t.0..t.1].encode_utf16()),
        },
        (Item::Qualifier(_), Item::List(_)) => Ordering::Less,
        (Item::List(_), Item::Number(_)) => Ordering::Less,
        (Item::List(_), Item::Qualifier(_)) => Ordering::Greater,
        (Item::List(x), Item::List(y)) => compare_lists(x, lower_a, y, lower_b),
    }
}

fn compare_lists(a: &[Item], lower_a: &str, b: &[Item], lower_b: &str) -> Ordering {
    for i in 0..a.len().max(b.len()) {
        let order = match (a.get(i), b.get(i)) {
            (Some(x), Some(y)) => compare_items(x, lower_a, y, lower_b),
            (Some(x), None) => compare_with_missing(x),
            (None, Some(y)) => compare_with_missing(y).reverse(),
            (None, None) => Ordering::Equal,
        };
        if order.is_ne() {
            return order;
        }
    }
    Ordering::Equal
}

impl PartialEq for MavenVersion {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for MavenVersion {}

impl PartialOrd for MavenVersion {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for MavenVersion {
    fn cmp(&self, other: &Self) -> Ordering {
        compare_lists(&self.items, &self.lower, &other.items, &other.lower)
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::check_lines;
    use super::super::Scheme;

    #[test]
    fn tricky_orderings() {
        check_lines(
            Scheme::Maven,
            "
            1 = 1.0.0
            1-ga = 1
            1-final = 1.0
            1-release = 1
            1.0-1 = 1-1
            1-alpha < 1-beta
            1-a1 = 1-alpha-1
            1-beta < 1-milestone
            1-m1 = 1-milestone-1
            1-milestone < 1-rc
            1-cr = 1-rc
            1-rc < 1-snapshot
            1-SNAPSHOT < 1
            1 < 1-sp
            1-sp < 1-abc
            1-abc < 1-abd
            1-abc < 1-1
            1-1 < 1.1
            1.0.0.RELEASE = 1
            1.0.0.Final = 1.0.0
            2.0.0.a < 2-1
            1-0.1 > 1
            99999999999999999999999 > 99999999999999999999998
            1.01 = 1.1
            ",
        );
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_stack_overflow() {
        let deep = "1-".repeat(super::MAX_NESTING + 1);
        assert!(Scheme::Maven.parse(&deep).is_err());
        let fine = "1-".repeat(super::MAX_NESTING / 2);
        assert!(Scheme::Maven.parse(&fine).is_ok());
    }
}
