//! Advisory DB stage: what Vigil knows about each OSV ecosystem (kind, naming, version scheme).
//!
//! Import and matching must agree exactly on how an ecosystem's package names are normalised, or an
//! index lookup silently misses; both therefore go through [`normalize_name`] here.

use crate::model::PackageType;
use crate::version::Scheme;

/// Which package name (and version) an ecosystem's advisories are keyed by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Naming {
    /// Debian, Ubuntu: the dpkg `Source:` package, compared on the source version.
    DebSource,
    /// Alpine and its relatives: the apk origin, compared on the package's own version.
    ApkOrigin,
    /// RPM distros: the binary package name or its source RPM's name, compared on the binary's EVR.
    RpmBinaryOrSource,
    /// PyPI: PEP 503 normalisation (lower case, runs of `-_.` become `-`).
    Pep503,
    /// npm, crates.io: names are unique regardless of case.
    CaseInsensitive,
    /// Maven: `group:artifact`, compared case-insensitively.
    MavenCoordinates,
    /// Go: module paths are case-sensitive and compared as written.
    Exact,
}

/// What Vigil knows about one ecosystem family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EcosystemInfo {
    /// OSV's spelling of the family (the part before the first `:`), also the finding's category.
    pub family: &'static str,
    pub package_type: PackageType,
    pub naming: Naming,
    /// The version ordering its advisories' ranges and its packages' versions are compared with.
    pub versioning: Scheme,
}

const fn os(family: &'static str, naming: Naming, versioning: Scheme) -> EcosystemInfo {
    EcosystemInfo {
        family,
        package_type: PackageType::Os,
        naming,
        versioning,
    }
}

const fn lang(family: &'static str, naming: Naming, versioning: Scheme) -> EcosystemInfo {
    EcosystemInfo {
        family,
        package_type: PackageType::Language,
        naming,
        versioning,
    }
}

/// Every ecosystem family Vigil can match. Records of other ecosystems are counted as unknown at import.
const KNOWN: &[EcosystemInfo] = &[
    os("Debian", Naming::DebSource, Scheme::Dpkg),
    os("Ubuntu", Naming::DebSource, Scheme::Dpkg),
    os("Alpine", Naming::ApkOrigin, Scheme::Apk),
    os("Wolfi", Naming::ApkOrigin, Scheme::Apk),
    os("Chainguard", Naming::ApkOrigin, Scheme::Apk),
    os("AlmaLinux", Naming::RpmBinaryOrSource, Scheme::Rpm),
    os("Rocky Linux", Naming::RpmBinaryOrSource, Scheme::Rpm),
    os("Red Hat", Naming::RpmBinaryOrSource, Scheme::Rpm),
    os("openSUSE", Naming::RpmBinaryOrSource, Scheme::Rpm),
    os("SUSE", Naming::RpmBinaryOrSource, Scheme::Rpm),
    os("Mageia", Naming::RpmBinaryOrSource, Scheme::Rpm),
    os("openEuler", Naming::RpmBinaryOrSource, Scheme::Rpm),
    lang("PyPI", Naming::Pep503, Scheme::Pep440),
    lang("npm", Naming::CaseInsensitive, Scheme::Semver),
    lang("crates.io", Naming::CaseInsensitive, Scheme::Semver),
    lang("Go", Naming::Exact, Scheme::Go),
    lang("Maven", Naming::MavenCoordinates, Scheme::Maven),
];

/// The family of an OSV ecosystem string: `Debian:12` -> `Debian`, `Ubuntu:22.04:LTS` -> `Ubuntu`.
pub fn family(ecosystem: &str) -> &str {
    ecosystem.split(':').next().unwrap_or(ecosystem).trim()
}

/// What Vigil knows about `ecosystem` (full OSV string or family), or `None` when it cannot match it.
pub fn info(ecosystem: &str) -> Option<&'static EcosystemInfo> {
    let family = family(ecosystem);
    KNOWN.iter().find(|info| info.family == family)
}

/// The name as the index stores it for `ecosystem`; both import and lookup use this.
pub fn normalize_name(naming: Naming, name: &str) -> String {
    let name = name.trim();
    match naming {
        Naming::Pep503 => {
            let mut out = String::with_capacity(name.len());
            let mut in_separator_run = false;
            for c in name.chars() {
                if matches!(c, '-' | '_' | '.') {
                    if !in_separator_run {
                        out.push('-');
                    }
                    in_separator_run = true;
                } else {
                    out.extend(c.to_lowercase());
                    in_separator_run = false;
                }
            }
            out
        }
        Naming::CaseInsensitive => name.to_lowercase(),
        // Some tools write Maven coordinates as `group/artifact`; OSV uses `group:artifact`.
        Naming::MavenCoordinates => name.replacen('/', ":", 1).to_lowercase(),
        Naming::DebSource | Naming::ApkOrigin | Naming::RpmBinaryOrSource | Naming::Exact => {
            name.to_string()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_and_kinds() {
        assert_eq!(family("Ubuntu:Pro:16.04:LTS"), "Ubuntu");
        assert_eq!(info("Debian:11").unwrap().naming, Naming::DebSource);
        assert_eq!(info("Rocky Linux:9").unwrap().versioning, Scheme::Rpm);
        assert_eq!(info("PyPI").unwrap().package_type, PackageType::Language);
        assert!(info("NuGet").is_none());
        assert!(info("").is_none());
    }

    #[test]
    fn names_normalise_per_ecosystem() {
        assert_eq!(
            normalize_name(Naming::Pep503, "Zope.Interface__x"),
            "zope-interface-x"
        );
        assert_eq!(normalize_name(Naming::Pep503, "PyYAML"), "pyyaml");
        assert_eq!(
            normalize_name(Naming::CaseInsensitive, "@Babel/Core"),
            "@babel/core"
        );
        assert_eq!(
            normalize_name(
                Naming::MavenCoordinates,
                "org.Apache.logging.log4j/log4j-core"
            ),
            "org.apache.logging.log4j:log4j-core"
        );
        assert_eq!(
            normalize_name(Naming::Exact, "github.com/BurntSushi/toml"),
            "github.com/BurntSushi/toml"
        );
    }
}
