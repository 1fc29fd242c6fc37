//! Version ordering for pep440 (being written).

use std::cmp::Ordering;

use super::VersionError;

/// A parsed pep440 version.
#[derive(Debug, Clone)]
pub struct Pep440Version {
    text: Box<str>,
}

impl Pep440Version {
    /// Not yet written: always an error.
    pub fn parse(text: &str) -> Result<Pep440Version, VersionError> {
        let _ = Self { text: text.into() };
        Err(VersionError::new(
            "pep440",
            text,
            "the pep440 scheme is not written yet",
        ))
    }

    /// The text the version was parsed from.
    pub fn as_str(&self) -> &str {
        &self.text
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
        self.text.cmp(&other.text)
    }
}
