//! Version ordering for Go modules, exactly as `golang.org/x/mod/semver.Compare`.
//!
//! Stage: version leaf. Go module versions are SemVer with a mandatory `v` (OSV records omit it, so
//! a missing `v` is added), the shorthands `v1` and `v1.2`, unbounded numbers, and build metadata
//! such as `+incompatible` that never affects the order. x/mod treats any string it cannot parse as
//! invalid; we return an error for those instead of sorting them first.

use std::cmp::Ordering;

use super::semver::{compare_cores, parse_core, Core, Flavour};
use super::VersionError;

const SCHEME: &str = "go";

/// A parsed Go module version.
#[derive(Debug, Clone)]
pub struct GoVersion {
    text: Box<str>,
    core: Core,
}

impl GoVersion {
    /// Parses like x/mod's `semver.IsValid`, after adding a `v` when the text does not start with one.
    pub fn parse(text: &str) -> Result<GoVersion, VersionError> {
        let body = text.strip_prefix('v').unwrap_or(text);
        let offset = text.len() - body.len();
        let core = parse_core(body, Flavour::Go)
            .map_err(|reason| VersionError::new(SCHEME, text, reason))?;
        let shift = |(s, e): (usize, usize)| (s + offset, e + offset);
        Ok(GoVersion {
            text: text.into(),
            core: Core {
                major: shift(core.major),
                minor: shift(core.minor),
                patch: shift(core.patch),
                prerelease: shift(core.prerelease),
            },
        })
    }

    /// The text the version was parsed from.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// x/mod's `semver.Canonical`: `vMAJOR.MINOR.PATCH[-PRERELEASE]`, shorthands expanded and build
    /// metadata dropped.
    pub fn canonical(&self) -> String {
        let part = |(s, e): (usize, usize)| {
            if s == e {
                "0"
            } else {
                &self.text[s..e]
            }
        };
        let mut out = format!(
            "v{}.{}.{}",
            part(self.core.major),
            part(self.core.minor),
            part(self.core.patch)
        );
        let (s, e) = self.core.prerelease;
        if s != e {
            out.push('-');
            out.push_str(&self.text[s..e]);
        }
        out
    }
}

impl PartialEq for GoVersion {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for GoVersion {}

impl PartialOrd for GoVersion {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for GoVersion {
    fn cmp(&self, other: &Self) -> Ordering {
        compare_cores(&self.text, &self.core, &other.text, &other.core)
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{check_lines, check_rejects};
    use super::super::Scheme;
    use super::*;

    #[test]
    fn tricky_orderings() {
        check_lines(
            Scheme::Go,
            "
            v1 = v1.0.0
            v1.2 = v1.2.0
            1.2.3 = v1.2.3
            v1.19 > v1.2
            v2.0.0+incompatible = v2.0.0
            v2.0.0+incompatible > v1.9.9
            v0.0.0-20210101000000-abcdef123456 < v0.0.0
            v0.0.0-20210101000000-abcdef123456 < v0.0.0-20210102000000-abcdef123456
            v1.0.0-beta.2 < v1.0.0-beta.11
            v1.2.3-456 < v1.2.3-456a
            v99999999999999999999999999.0.0 > v99999999999999999999999998.0.0
            ",
        );
    }

    #[test]
    fn canonical_matches_x_mod() {
        for (input, canonical) in [
            ("v1", "v1.0.0"),
            ("1.2", "v1.2.0"),
            ("v1.2.3-pre+meta", "v1.2.3-pre"),
            ("v2.3.4+incompatible", "v2.3.4"),
        ] {
            assert_eq!(GoVersion::parse(input).unwrap().canonical(), canonical);
        }
    }

    #[test]
    fn rejects_what_x_mod_rejects() {
        check_rejects(
            Scheme::Go,
            &[
                "bad",
                "v1-pre",
                "v1+meta",
                "v1.2-pre",
                "v1.2+meta",
                "v01.2.3",
                "v1.2.3-01",
                "vv1.2.3",
                "v1.2.3.4",
                "V1.2.3",
                " v1.2.3",
            ],
        );
    }
}
