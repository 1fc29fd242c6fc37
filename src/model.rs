//! Shared nouns of the pipeline: digests, image references, packages, inventories and coverage.
//!
//! Every stage hands these plain values to the next one; nothing here does I/O.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A content digest such as `sha256:9f86d0...`. Only `sha256` and `sha512` are accepted.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Digest {
    algorithm: DigestAlgorithm,
    hex: String,
}

/// The hash algorithms a digest may name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DigestAlgorithm {
    Sha256,
    Sha512,
}

impl DigestAlgorithm {
    /// The algorithm's name as it appears before the colon.
    pub fn as_str(self) -> &'static str {
        match self {
            DigestAlgorithm::Sha256 => "sha256",
            DigestAlgorithm::Sha512 => "sha512",
        }
    }

    fn hex_len(self) -> usize {
        match self {
            DigestAlgorithm::Sha256 => 64,
            DigestAlgorithm::Sha512 => 128,
        }
    }
}

/// Why a string is not a digest.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid digest {input:?}: {reason}")]
pub struct DigestError {
    pub input: String,
    pub reason: &'static str,
}

impl Digest {
    /// The sha256 digest of `data`.
    pub fn sha256_of(data: &[u8]) -> Digest {
        use sha2::Digest as _;
        Digest {
            algorithm: DigestAlgorithm::Sha256,
            hex: hex::encode(sha2::Sha256::digest(data)),
        }
    }

    pub fn algorithm(&self) -> DigestAlgorithm {
        self.algorithm
    }

    /// The lower-case hex part after the colon.
    pub fn hex(&self) -> &str {
        &self.hex
    }
}

impl FromStr for Digest {
    type Err = DigestError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let err = |reason| DigestError {
            input: input.chars().take(200).collect(),
            reason,
        };
        let (algorithm, hex) = input
            .split_once(':')
            .ok_or_else(|| err("no algorithm prefix"))?;
        let algorithm = match algorithm {
            "sha256" => DigestAlgorithm::Sha256,
            "sha512" => DigestAlgorithm::Sha512,
            _ => return Err(err("unsupported algorithm")),
        };
        if hex.len() != algorithm.hex_len() {
            return Err(err("wrong length"));
        }
        if !hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(err("not lower-case hex"));
        }
        Ok(Digest {
            algorithm,
            hex: hex.to_string(),
        })
    }
}

impl TryFrom<String> for Digest {
    type Error = DigestError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        value.parse()
    }
}

impl From<Digest> for String {
    fn from(value: Digest) -> Self {
        value.to_string()
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.algorithm.as_str(), self.hex)
    }
}

/// A platform as OCI describes it: `linux/arm64/v8`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(variant) = &self.variant {
            write!(f, "/{variant}")?;
        }
        Ok(())
    }
}

impl FromStr for Platform {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let mut parts = text.split('/');
        let os = parts.next().filter(|s| !s.is_empty());
        let architecture = parts.next().filter(|s| !s.is_empty());
        let variant = parts.next().map(str::to_string);
        match (os, architecture, parts.next()) {
            (Some(os), Some(architecture), None) => Ok(Platform {
                os: os.to_string(),
                architecture: architecture.to_string(),
                variant,
            }),
            _ => Err(format!(
                "invalid platform {text:?}: expected os/arch[/variant]"
            )),
        }
    }
}

/// Whether a package came from the OS package manager or a language's packaging.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PackageType {
    Os,
    Language,
}

impl PackageType {
    pub fn as_str(self) -> &'static str {
        match self {
            PackageType::Os => "os",
            PackageType::Language => "language",
        }
    }
}

/// One installed package, as an extractor reports it and the matcher consumes it.
///
/// `ecosystem` is OSV's spelling (`Debian:12`, `Alpine:v3.18`, `AlmaLinux:9`, `PyPI`, `npm`...). OS
/// extractors leave it empty: the image's `os/release` decides it when layers are merged. RPM versions are
/// `[epoch:]version-release` with the epoch only when it is non-zero.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Package {
    pub name: String,
    pub version: String,
    #[serde(default)]
    pub ecosystem: String,
    pub package_type: PackageType,
    /// The name advisories of the ecosystem use when it differs from `name`: dpkg `Source:`, apk origin,
    /// the source RPM's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arch: Option<String>,
    /// The extractor's stable name, e.g. `os/dpkg`.
    pub extractor: String,
    /// The file the package was read from, relative to the image root, without a leading slash.
    #[serde(default)]
    pub location: String,
    /// The digest of the lowest layer where the package appears with this version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layer_digest: Option<String>,
}

/// The operating system an image says it is, from `/etc/os-release` or `/usr/lib/os-release`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct OsIdentity {
    /// `ID=` (e.g. `debian`, `alpine`, `almalinux`).
    pub id: String,
    /// `VERSION_ID=` (e.g. `12`, `3.18.4`).
    #[serde(default)]
    pub version_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pretty_name: Option<String>,
    /// The OSV ecosystem of the distro release when Vigil knows it (`Debian:12`, `Alpine:v3.18`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ecosystem: Option<String>,
}

/// How completely an image could be assessed. Nothing is ever reported clean by omission: an image whose
/// packages could not be read carries a status other than `Complete` and a reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CoverageStatus {
    /// Every layer was read and the OS and its package database were recognised.
    Complete,
    /// Some layers or files could not be read, or limits were hit; the reason says which.
    Partial,
    /// No os-release file, and packages could not be attributed to a distro release.
    NoOsRelease,
    /// The image's OS is one Vigil cannot assess (e.g. windows); the reason names it.
    UnsupportedOs,
    /// Nothing recognisable was found (scratch with a binary that carries no build info).
    NoPackagesFound,
    /// The image could not be read at all.
    Failed,
}

impl CoverageStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CoverageStatus::Complete => "complete",
            CoverageStatus::Partial => "partial",
            CoverageStatus::NoOsRelease => "no-os-release",
            CoverageStatus::UnsupportedOs => "unsupported-os",
            CoverageStatus::NoPackagesFound => "no-packages-found",
            CoverageStatus::Failed => "failed",
        }
    }
}

/// A coverage status with the reason behind it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Coverage {
    pub status: CoverageStatus,
    #[serde(default)]
    pub reason: String,
}

/// What an image holds: its OS and packages, with how complete that view is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Inventory {
    /// `host[:port]/repo@digest`, `oci:DIR:TAG`, or whatever named the image.
    #[serde(default)]
    pub image: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<Digest>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub os: Option<OsIdentity>,
    pub packages: Vec<Package>,
    pub coverage: Coverage,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_round_trips_and_rejects_garbage() {
        let text = format!("sha256:{}", "ab".repeat(32));
        let digest: Digest = text.parse().unwrap();
        assert_eq!(digest.to_string(), text);
        assert!("sha256:ABC".parse::<Digest>().is_err());
        assert!(format!("md5:{}", "a".repeat(32)).parse::<Digest>().is_err());
        assert!(format!("sha256:{}", "A".repeat(64))
            .parse::<Digest>()
            .is_err());
        assert!("nocolon".parse::<Digest>().is_err());
        assert_eq!(
            Digest::sha256_of(b"").to_string(),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn platform_parses_with_and_without_variant() {
        let platform: Platform = "linux/arm64/v8".parse().unwrap();
        assert_eq!(platform.variant.as_deref(), Some("v8"));
        assert_eq!(platform.to_string(), "linux/arm64/v8");
        assert_eq!(
            "linux/amd64".parse::<Platform>().unwrap().to_string(),
            "linux/amd64"
        );
        assert!("linux".parse::<Platform>().is_err());
        assert!("a/b/c/d".parse::<Platform>().is_err());
    }
}
