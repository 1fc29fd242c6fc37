//! Version ordering, one type per scheme (dpkg, apk, rpm, SemVer, Go, PEP 440, Maven).
//!
//! Stage: shared leaf used by the vulnerability database and the matcher. Advisory ranges are only
//! as good as the ordering they are evaluated with, so every scheme follows the rules of the tool the
//! ecosystem itself uses (dpkg 1.21, rpm 4.18, apk-tools 2.14, `packaging` 26, SemVer 2.0, Go's
//! `x/mod/semver`, Maven 3.9 `ComparableVersion`), including which inputs that tool rejects.
//!
//! Parse once, compare many times: every scheme's parsed form compares without allocating.

use std::cmp::Ordering;

pub mod apk;
pub mod dpkg;
pub mod go;
pub mod maven;
pub mod pep440;
pub mod rpm;
pub mod semver;

/// The longest version string any scheme accepts, in bytes.
///
/// No real version comes close (the longest seen in advisories is under 100 bytes); the limit keeps a
/// corrupt or hostile record from making us copy and scan megabytes per comparison.
pub const MAX_VERSION_LEN: usize = 4096;

/// One ordering scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Scheme {
    /// Debian and Ubuntu packages, as `dpkg --compare-versions` orders them.
    Dpkg,
    /// Alpine, Wolfi and Chainguard packages, as apk-tools 2.14 orders them.
    Apk,
    /// RPM packages (`epoch:version-release`), as rpm 4.18 `rpmvercmp` orders them.
    Rpm,
    /// SemVer 2.0 precedence (npm, crates.io); build metadata is ignored.
    Semver,
    /// Go modules, as `golang.org/x/mod/semver` orders them (a missing `v` is added).
    Go,
    /// Python packages, PEP 440 as `packaging` 26 implements it.
    Pep440,
    /// Maven artifacts, as Maven 3.8/3.9 `ComparableVersion` orders them.
    Maven,
}

impl Scheme {
    /// Every scheme, in declaration order.
    pub const ALL: [Scheme; 7] = [
        Scheme::Dpkg,
        Scheme::Apk,
        Scheme::Rpm,
        Scheme::Semver,
        Scheme::Go,
        Scheme::Pep440,
        Scheme::Maven,
    ];

    /// The scheme for an OSV ecosystem string: "Debian:12", "Debian", "Ubuntu:22.04:LTS" -> Dpkg;
    /// "Alpine:v3.18", "Wolfi", "Chainguard" -> Apk; "AlmaLinux:9", "Rocky Linux:9", "Red Hat",
    /// "Mariner", "Azure Linux", "openSUSE", "SUSE" -> Rpm; "npm", "crates.io" -> Semver; "Go" -> Go;
    /// "PyPI" -> Pep440; "Maven" -> Maven. Unknown -> None. The ecosystem's prefix before ':' decides.
    pub fn for_ecosystem(ecosystem: &str) -> Option<Scheme> {
        let prefix = ecosystem.split(':').next().unwrap_or("").trim();
        let scheme = match prefix {
            "Debian" | "Ubuntu" => Scheme::Dpkg,
            "Alpine" | "Wolfi" | "Chainguard" | "Alpaquita" | "BellSoft Hardened Containers" => {
                Scheme::Apk
            }
            "AlmaLinux" | "Rocky Linux" | "Red Hat" | "Mariner" | "Azure Linux" | "openSUSE"
            | "SUSE" | "openEuler" => Scheme::Rpm,
            "npm" | "crates.io" => Scheme::Semver,
            "Go" => Scheme::Go,
            "PyPI" => Scheme::Pep440,
            "Maven" => Scheme::Maven,
            _ => return None,
        };
        Some(scheme)
    }

    /// A short lower-case name for logs, errors and storage.
    pub fn name(self) -> &'static str {
        match self {
            Scheme::Dpkg => "dpkg",
            Scheme::Apk => "apk",
            Scheme::Rpm => "rpm",
            Scheme::Semver => "semver",
            Scheme::Go => "go",
            Scheme::Pep440 => "pep440",
            Scheme::Maven => "maven",
        }
    }

    /// Parses a version; Err when the reference implementation rejects it.
    ///
    /// Two rejections are ours rather than the reference's, for every scheme: the empty string (no
    /// advisory or package database means "no version" by it) and strings longer than
    /// [`MAX_VERSION_LEN`].
    pub fn parse(self, text: &str) -> Result<Version, VersionError> {
        if text.is_empty() {
            return Err(VersionError::new(
                self.name(),
                text,
                "version string is empty",
            ));
        }
        if text.len() > MAX_VERSION_LEN {
            return Err(VersionError::new(
                self.name(),
                text,
                format!(
                    "version string is {} bytes, longer than the {MAX_VERSION_LEN}-byte limit",
                    text.len()
                ),
            ));
        }
        Ok(match self {
            Scheme::Dpkg => Version::Dpkg(dpkg::DpkgVersion::parse(text)?),
            Scheme::Apk => Version::Apk(apk::ApkVersion::parse(text)?),
            Scheme::Rpm => Version::Rpm(rpm::RpmVersion::parse(text)?),
            Scheme::Semver => Version::Semver(semver::SemverVersion::parse(text)?),
            Scheme::Go => Version::Go(go::GoVersion::parse(text)?),
            Scheme::Pep440 => Version::Pep440(pep440::Pep440Version::parse(text)?),
            Scheme::Maven => Version::Maven(maven::MavenVersion::parse(text)?),
        })
    }

    /// Convenience: parse both and compare.
    pub fn compare(self, a: &str, b: &str) -> Result<Ordering, VersionError> {
        let a = self.parse(a)?;
        let b = self.parse(b)?;
        // Both come from the same scheme, so the comparison is always defined.
        Ok(a.compare(&b).unwrap_or(Ordering::Equal))
    }
}

impl std::fmt::Display for Scheme {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A parsed version of one scheme. Cheap to compare (parse once, compare many times: the matcher
/// compares 100 000 packages against advisory ranges in under a second).
#[derive(Debug, Clone)]
pub enum Version {
    Dpkg(dpkg::DpkgVersion),
    Apk(apk::ApkVersion),
    Rpm(rpm::RpmVersion),
    Semver(semver::SemverVersion),
    Go(go::GoVersion),
    Pep440(pep440::Pep440Version),
    Maven(maven::MavenVersion),
}

impl Version {
    /// The scheme this version was parsed with.
    pub fn scheme(&self) -> Scheme {
        match self {
            Version::Dpkg(_) => Scheme::Dpkg,
            Version::Apk(_) => Scheme::Apk,
            Version::Rpm(_) => Scheme::Rpm,
            Version::Semver(_) => Scheme::Semver,
            Version::Go(_) => Scheme::Go,
            Version::Pep440(_) => Scheme::Pep440,
            Version::Maven(_) => Scheme::Maven,
        }
    }

    /// Orders two versions of the same scheme. None when the schemes differ.
    pub fn compare(&self, other: &Version) -> Option<Ordering> {
        Some(match (self, other) {
            (Version::Dpkg(a), Version::Dpkg(b)) => a.cmp(b),
            (Version::Apk(a), Version::Apk(b)) => a.cmp(b),
            (Version::Rpm(a), Version::Rpm(b)) => a.cmp(b),
            (Version::Semver(a), Version::Semver(b)) => a.cmp(b),
            (Version::Go(a), Version::Go(b)) => a.cmp(b),
            (Version::Pep440(a), Version::Pep440(b)) => a.cmp(b),
            (Version::Maven(a), Version::Maven(b)) => a.cmp(b),
            _ => return None,
        })
    }

    /// The text the version was parsed from.
    pub fn as_str(&self) -> &str {
        match self {
            Version::Dpkg(v) => v.as_str(),
            Version::Apk(v) => v.as_str(),
            Version::Rpm(v) => v.as_str(),
            Version::Semver(v) => v.as_str(),
            Version::Go(v) => v.as_str(),
            Version::Pep440(v) => v.as_str(),
            Version::Maven(v) => v.as_str(),
        }
    }
}

impl PartialEq for Version {
    /// Equal in the scheme's order (dpkg `1.0` equals `1.00`); never equal across schemes.
    fn eq(&self, other: &Version) -> bool {
        self.compare(other) == Some(Ordering::Equal)
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Version) -> Option<Ordering> {
        self.compare(other)
    }
}

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a string is not a version of a scheme.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {scheme} version {input:?}: {reason}")]
pub struct VersionError {
    /// The scheme's [`Scheme::name`].
    pub scheme: &'static str,
    /// The rejected input, cut to its first 200 characters so a huge input cannot flood logs.
    pub input: String,
    /// What is wrong with it, in the reference implementation's terms where it has any.
    pub reason: String,
}

impl VersionError {
    pub(crate) fn new(
        scheme: &'static str,
        input: &str,
        reason: impl Into<String>,
    ) -> VersionError {
        VersionError {
            scheme,
            input: input.chars().take(200).collect(),
            reason: reason.into(),
        }
    }
}

/// Compares two runs of ASCII digits as unbounded non-negative integers: leading zeros are ignored,
/// then the longer run is larger, then the first differing digit decides.
///
/// Several references compare numbers this way (rpm, apk, Go) and the others use unbounded integers
/// (Python, Java `BigInteger`), so no scheme needs to parse numbers into a fixed-width type.
pub(crate) fn compare_digits(a: &[u8], b: &[u8]) -> Ordering {
    let a = strip_leading_zeros(a);
    let b = strip_leading_zeros(b);
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

/// The digit run without its leading zeros (`"000"` becomes `""`, which compares as zero).
pub(crate) fn strip_leading_zeros(digits: &[u8]) -> &[u8] {
    let zeros = digits.iter().take_while(|&&b| b == b'0').count();
    &digits[zeros..]
}

#[cfg(test)]
pub(crate) mod test_support {
    use super::Scheme;
    use std::cmp::Ordering;

    /// Checks lines of the form `a < b`, `a = b` or `a > b` (one per line, `#` comments allowed),
    /// reporting every line that disagrees rather than stopping at the first.
    pub fn check_lines(scheme: Scheme, lines: &str) {
        let mut failures = Vec::new();
        for line in lines.lines().map(str::trim) {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let parts: Vec<&str> = line.split_whitespace().collect();
            assert_eq!(parts.len(), 3, "malformed test line {line:?}");
            let expected = match parts[1] {
                "<" => Ordering::Less,
                "=" => Ordering::Equal,
                ">" => Ordering::Greater,
                other => panic!("unknown operator {other:?} in {line:?}"),
            };
            match scheme.compare(parts[0], parts[2]) {
                Ok(got) if got == expected => {}
                other => failures.push(format!("{line}: got {other:?}")),
            }
            // The mirrored comparison must agree too.
            match scheme.compare(parts[2], parts[0]) {
                Ok(got) if got == expected.reverse() => {}
                other => failures.push(format!("{line} (mirrored): got {other:?}")),
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    /// Checks that every input is rejected.
    pub fn check_rejects(scheme: Scheme, inputs: &[&str]) {
        let accepted: Vec<_> = inputs
            .iter()
            .filter(|input| scheme.parse(input).is_ok())
            .collect();
        assert!(
            accepted.is_empty(),
            "accepted but should reject: {accepted:?}"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ecosystems_map_to_schemes() {
        let cases = [
            ("Debian:12", Some(Scheme::Dpkg)),
            ("Debian", Some(Scheme::Dpkg)),
            ("Ubuntu:22.04:LTS", Some(Scheme::Dpkg)),
            ("Alpine:v3.18", Some(Scheme::Apk)),
            ("Wolfi", Some(Scheme::Apk)),
            ("Chainguard", Some(Scheme::Apk)),
            ("AlmaLinux:9", Some(Scheme::Rpm)),
            ("Rocky Linux:9", Some(Scheme::Rpm)),
            ("Red Hat", Some(Scheme::Rpm)),
            ("Red Hat:enterprise_linux:9::appstream", Some(Scheme::Rpm)),
            ("Mariner", Some(Scheme::Rpm)),
            ("Azure Linux", Some(Scheme::Rpm)),
            ("openSUSE", Some(Scheme::Rpm)),
            ("SUSE", Some(Scheme::Rpm)),
            ("npm", Some(Scheme::Semver)),
            ("crates.io", Some(Scheme::Semver)),
            ("Go", Some(Scheme::Go)),
            ("PyPI", Some(Scheme::Pep440)),
            ("Maven", Some(Scheme::Maven)),
            ("Packagist", None),
            ("", None),
            ("debian", None),
        ];
        for (ecosystem, expected) in cases {
            assert_eq!(Scheme::for_ecosystem(ecosystem), expected, "{ecosystem}");
        }
    }

    #[test]
    fn names_are_distinct() {
        let mut names: Vec<_> = Scheme::ALL.iter().map(|s| s.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Scheme::ALL.len());
    }

    #[test]
    fn versions_of_different_schemes_do_not_compare() {
        let a = Scheme::Dpkg.parse("1.0").unwrap();
        let b = Scheme::Rpm.parse("1.0").unwrap();
        assert_eq!(a.compare(&b), None);
        assert_ne!(a, b);
        assert_eq!(a.partial_cmp(&b), None);
        let c = Scheme::Dpkg.parse("1.00").unwrap();
        assert_eq!(a, c);
        assert_eq!(a.scheme(), Scheme::Dpkg);
    }

    /// Odd inputs must give an answer or an error, never a panic, in every scheme.
    #[test]
    fn odd_inputs_never_panic() {
        let huge_digits = "9".repeat(MAX_VERSION_LEN);
        let huge_dots = ".".repeat(MAX_VERSION_LEN);
        let too_long = "1".repeat(MAX_VERSION_LEN + 1);
        let nested = "1-".repeat(MAX_VERSION_LEN / 2);
        let hyphens = "-".repeat(MAX_VERSION_LEN);
        let switches = "a1".repeat(MAX_VERSION_LEN / 2);
        let inputs: Vec<&str> = vec![
            "",
            " ",
            "\t",
            ".",
            "..",
            "-",
            "--",
            "+",
            "~",
            "^",
            ":",
            "::",
            "_",
            "v",
            "=",
            "!",
            "0",
            "00",
            "0:",
            ":0",
            "1:",
            "-1",
            "1-",
            "1..2",
            "1.-2",
            "é",
            "1.0é",
            "１.２",
            "1.0\u{0}",
            "\u{feff}1.0",
            "v1.2.3-α",
            "1!2!3",
            "1+2+3",
            "18446744073709551616.0.0",
            "99999999999999999999999999999999.1",
            "1.0-SNAPSHOT",
            huge_digits.as_str(),
            huge_dots.as_str(),
            too_long.as_str(),
            nested.as_str(),
            hyphens.as_str(),
            switches.as_str(),
        ];
        for scheme in Scheme::ALL {
            for a in &inputs {
                let parsed = scheme.parse(a);
                if let Err(err) = &parsed {
                    assert!(err.input.chars().count() <= 200);
                    assert_eq!(err.scheme, scheme.name());
                }
                for b in &inputs {
                    let _ = scheme.compare(a, b);
                }
            }
            assert!(scheme.parse("").is_err());
            assert!(scheme.parse(&too_long).is_err());
        }
    }

    #[test]
    fn digit_runs_compare_as_integers() {
        assert_eq!(compare_digits(b"0010", b"10"), Ordering::Equal);
        assert_eq!(compare_digits(b"", b"000"), Ordering::Equal);
        assert_eq!(compare_digits(b"9", b"10"), Ordering::Less);
        assert_eq!(
            compare_digits(b"99999999999999999999999", b"99999999999999999999998"),
            Ordering::Greater
        );
    }
}
