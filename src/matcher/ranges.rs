//! Matching stage: decides whether one installed version falls in one advisory's affected entry.
//!
//! One function evaluates OSV ranges for every scheme (after rustsec's `OsvRange::affects`): events are
//! parsed in the package's scheme, sorted, and walked. An event version the scheme rejects makes the
//! range unknown, which is reported, never guessed at.

use std::cmp::Ordering;

use crate::version::{Scheme, Version};
use crate::vulndb::{AffectedPackage, AffectedRange, Event};

/// The verdict for one affected entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The version is affected; `fixed` is the lowest fix above it in the ranges that affect it.
    Affected {
        fixed: Option<String>,
    },
    NotAffected,
    /// No range affects the version, and at least one range could not be evaluated because one of its
    /// versions does not parse in the scheme.
    Unknown,
}

/// A parsed event bound; `introduced: "0"` is OSV's "from the very first version", below everything.
enum Bound {
    Zero,
    At(Version),
}

impl Bound {
    fn cmp_version(&self, version: &Version) -> Ordering {
        match self {
            Bound::Zero => Ordering::Less,
            Bound::At(bound) => bound.compare(version).unwrap_or(Ordering::Equal),
        }
    }

    fn cmp_bound(&self, other: &Bound) -> Ordering {
        match (self, other) {
            (Bound::Zero, Bound::Zero) => Ordering::Equal,
            (Bound::Zero, Bound::At(_)) => Ordering::Less,
            (Bound::At(_), Bound::Zero) => Ordering::Greater,
            (Bound::At(a), Bound::At(b)) => a.compare(b).unwrap_or(Ordering::Equal),
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Introduced,
    Fixed,
    LastAffected,
    Limit,
}

/// An affected entry's ranges with their events parsed and sorted once per run, however many packages
/// are compared with them. `None` marks a range with a version the scheme rejects.
pub struct ParsedAffected {
    ranges: Vec<Option<Vec<(Kind, Bound)>>>,
    /// The explicit `versions` list, parsed and sorted for binary search (PyPI and Maven lists run to
    /// hundreds of entries); entries the scheme rejects can still match by exact text.
    versions: Vec<Version>,
}

/// Parses and sorts every range of `affected` in `scheme`.
pub fn parse_affected(scheme: Scheme, affected: &AffectedPackage) -> ParsedAffected {
    ParsedAffected {
        ranges: affected
            .ranges
            .iter()
            .map(|range| parse_range(scheme, range))
            .collect(),
        versions: {
            let mut versions: Vec<Version> = affected
                .versions
                .iter()
                .filter_map(|v| scheme.parse(v).ok())
                .collect();
            versions.sort_by(|a, b| a.compare(b).unwrap_or(Ordering::Equal));
            versions
        },
    }
}

/// Evaluates `affected` for `installed`, parsed in `scheme`.
pub fn evaluate(scheme: Scheme, affected: &AffectedPackage, installed: &Version) -> Verdict {
    evaluate_parsed(affected, &parse_affected(scheme, affected), installed)
}

/// Like [`evaluate`], with the ranges already parsed by [`parse_affected`].
pub fn evaluate_parsed(
    affected: &AffectedPackage,
    parsed: &ParsedAffected,
    installed: &Version,
) -> Verdict {
    let mut unknown = false;
    let mut fixed: Option<&Version> = None;
    let mut hit = false;
    for range in &parsed.ranges {
        let Some(events) = range else {
            unknown = true;
            continue;
        };
        if range_affects(events, installed) {
            hit = true;
            for (kind, bound) in events {
                if let (Kind::Fixed, Bound::At(v)) = (kind, bound) {
                    let above = v.compare(installed) == Some(Ordering::Greater);
                    let lower = fixed.is_none_or(|f| v.compare(f) == Some(Ordering::Less));
                    if above && lower {
                        fixed = Some(v);
                    }
                }
            }
        }
    }
    if !hit {
        hit = parsed
            .versions
            .binary_search_by(|v| v.compare(installed).unwrap_or(Ordering::Equal))
            .is_ok()
            || affected
                .versions
                .iter()
                .any(|listed| listed == installed.as_str());
    }
    if hit {
        Verdict::Affected {
            fixed: fixed.map(|v| v.as_str().to_string()),
        }
    } else if unknown {
        Verdict::Unknown
    } else {
        Verdict::NotAffected
    }
}

/// `None` when an event's version does not parse.
fn parse_range(scheme: Scheme, range: &AffectedRange) -> Option<Vec<(Kind, Bound)>> {
    let mut events: Vec<(Kind, Bound)> = Vec::with_capacity(range.events.len());
    for event in &range.events {
        let (kind, text) = match event {
            Event::Introduced(v) => (Kind::Introduced, v),
            Event::Fixed(v) => (Kind::Fixed, v),
            Event::LastAffected(v) => (Kind::LastAffected, v),
            Event::Limit(v) => (Kind::Limit, v),
        };
        let bound = if kind == Kind::Introduced && text == "0" {
            Bound::Zero
        } else if kind == Kind::Limit && text == "*" {
            // `limit: "*"` means no limit.
            continue;
        } else {
            Bound::At(scheme.parse(text).ok()?)
        };
        events.push((kind, bound));
    }
    // Stable sort: events at the same version keep their published order.
    events.sort_by(|a, b| a.1.cmp_bound(&b.1));
    Some(events)
}

/// Walks sorted events: introduced opens, fixed closes at its version, last_affected closes after it;
/// a limit at or below the version excludes it.
fn range_affects(events: &[(Kind, Bound)], installed: &Version) -> bool {
    let mut affected = false;
    for (kind, bound) in events {
        let relation = bound.cmp_version(installed); // bound vs installed
        match kind {
            Kind::Introduced if relation != Ordering::Greater => affected = true,
            Kind::Fixed if relation != Ordering::Greater => affected = false,
            Kind::LastAffected if relation == Ordering::Less => affected = false,
            _ => {}
        }
    }
    let beyond_limit = events.iter().any(|(kind, bound)| {
        *kind == Kind::Limit && bound.cmp_version(installed) != Ordering::Greater
    });
    affected && !beyond_limit
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vulndb::RangeKind;

    fn affected(events: Vec<Event>, versions: &[&str]) -> AffectedPackage {
        AffectedPackage {
            ecosystem: "PyPI".into(),
            name: "x".into(),
            ranges: vec![AffectedRange {
                kind: RangeKind::Ecosystem,
                events,
            }],
            versions: versions.iter().map(|v| v.to_string()).collect(),
            severity: vec![],
        }
    }

    fn verdict(scheme: Scheme, entry: &AffectedPackage, version: &str) -> Verdict {
        evaluate(scheme, entry, &scheme.parse(version).unwrap())
    }

    #[test]
    fn introduced_fixed_and_last_affected_boundaries() {
        use Event::*;
        let entry = affected(
            vec![
                Introduced("1.0.0".into()),
                Fixed("1.5.0".into()),
                Introduced("2.0.0".into()),
                LastAffected("2.3.0".into()),
            ],
            &[],
        );
        let s = Scheme::Semver;
        assert_eq!(verdict(s, &entry, "0.9.0"), Verdict::NotAffected);
        assert_eq!(
            verdict(s, &entry, "1.0.0"),
            Verdict::Affected {
                fixed: Some("1.5.0".into())
            }
        );
        assert_eq!(verdict(s, &entry, "1.5.0"), Verdict::NotAffected);
        assert_eq!(
            verdict(s, &entry, "2.3.0"),
            Verdict::Affected { fixed: None }
        );
        assert_eq!(verdict(s, &entry, "2.3.1"), Verdict::NotAffected);
    }

    #[test]
    fn limit_and_unparsable_events() {
        use Event::*;
        let s = Scheme::Semver;
        let entry = affected(vec![Introduced("0".into()), Limit("3.0.0".into())], &[]);
        assert_eq!(
            verdict(s, &entry, "2.0.0"),
            Verdict::Affected { fixed: None }
        );
        assert_eq!(verdict(s, &entry, "3.0.0"), Verdict::NotAffected);
        let entry = affected(
            vec![Introduced("0".into()), Fixed("not a version!".into())],
            &[],
        );
        assert_eq!(verdict(s, &entry, "2.0.0"), Verdict::Unknown);
        // An explicit versions entry still decides when the range cannot.
        let entry = affected(
            vec![Introduced("0".into()), Fixed("???".into())],
            &["2.0.0"],
        );
        assert_eq!(
            verdict(s, &entry, "2.0.0"),
            Verdict::Affected { fixed: None }
        );
    }
}
