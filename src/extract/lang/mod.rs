//! Extract stage, language side: packages installed by language package managers (pip, npm, cargo,
//! Maven, RubyGems, NuGet), read from their own metadata files in image layers.
//!
//! Unlike OS packages, language packages carry their OSV ecosystem from the start (`PyPI`, `npm`...):
//! it does not depend on the image's os-release, so such images are assessed even without one.

pub mod cargo;
pub mod dotnet;
pub mod java;
pub mod npm;
pub mod python;
pub mod ruby;

use crate::model::{Package, PackageType};

/// A language package as every language extractor reports it; `layer_digest` is left for the merge.
pub(crate) fn lang_package(
    extractor: &'static str,
    ecosystem: &'static str,
    location: &str,
    name: String,
    version: String,
) -> Package {
    Package {
        name,
        version,
        ecosystem: ecosystem.to_string(),
        package_type: PackageType::Language,
        source_name: None,
        source_version: None,
        arch: None,
        extractor: extractor.to_string(),
        location: location.to_string(),
        layer_digest: None,
    }
}

/// The last path component.
pub(crate) fn base_name(path: &str) -> &str {
    // A byte search: this runs in `claims` for every tar entry, where a char-pattern split is costly.
    match path.bytes().rposition(|b| b == b'/') {
        Some(at) => &path[at + 1..],
        None => path,
    }
}

/// The directory part of `path` (`""` at the root).
pub(crate) fn parent(path: &str) -> &str {
    match path.bytes().rposition(|b| b == b'/') {
        Some(at) => &path[..at],
        None => "",
    }
}

/// Keeps error messages short when a value is huge garbage.
pub(crate) fn shorten(text: &str) -> String {
    text.chars().take(80).collect()
}
