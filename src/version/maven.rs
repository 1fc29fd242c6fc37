//! Version ordering for maven (being written).

use std::cmp::Ordering;

use super::VersionError;

/// A parsed maven version.
#[derive(Debug, Clone)]
pub struct MavenVersion {
    text: Box<str>,
}

impl MavenVersion {
    /// Not yet written: always an error.
    pub fn parse(text: &str) -> Result<MavenVersion, VersionError> {
        let _ = Self { text: text.into() };
        Err(VersionError::new(
            "maven",
            text,
            "the maven scheme is not written yet",
        ))
    }

    /// The text the version was parsed from.
    pub fn as_str(&self) -> &str {
        &self.text
    }
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
        self.text.cmp(&other.text)
    }
}
