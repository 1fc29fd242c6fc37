//! Version ordering for apk (being written).

use std::cmp::Ordering;

use super::VersionError;

/// A parsed apk version.
#[derive(Debug, Clone)]
pub struct ApkVersion {
    text: Box<str>,
}

impl ApkVersion {
    /// Not yet written: always an error.
    pub fn parse(text: &str) -> Result<ApkVersion, VersionError> {
        let _ = Self { text: text.into() };
        Err(VersionError::new(
            "apk",
            text,
            "the apk scheme is not written yet",
        ))
    }

    /// The text the version was parsed from.
    pub fn as_str(&self) -> &str {
        &self.text
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
    fn cmp(&self, other: &Self) -> Ordering {
        self.text.cmp(&other.text)
    }
}
