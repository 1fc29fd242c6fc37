//! Extract stage: `lang/dotnet` reads the `<app>.deps.json` file the .NET SDK writes next to every
//! published application; its `libraries` map names each NuGet package the app loads.

use serde_json::Value;

use crate::extract::lang::{lang_package, shorten};
use crate::extract::{ExtractError, Extracted, Extractor};
use crate::model::Package;

/// The `lang/dotnet` extractor.
#[derive(Debug, Clone, Copy, Default)]
pub struct Dotnet;

/// The extractor's stable name.
pub const NAME: &str = "lang/dotnet";
/// OSV's ecosystem name for NuGet packages.
pub const ECOSYSTEM: &str = "NuGet";

impl Extractor for Dotnet {
    fn name(&self) -> &'static str {
        NAME
    }

    fn version(&self) -> u32 {
        1
    }

    fn claims(&self, path: &str) -> bool {
        path.ends_with(".deps.json")
    }

    fn max_file_size(&self) -> u64 {
        32 * 1024 * 1024
    }

    fn extract(&self, path: &str, contents: &[u8]) -> Result<Extracted, ExtractError> {
        parse_deps(path, contents)
            .map(Extracted::Packages)
            .map_err(|reason| ExtractError::new(NAME, path, reason))
    }
}

/// Why a `*.deps.json` could not be read. Keys are shortened.
#[derive(Debug, thiserror::Error)]
pub enum DepsError {
    #[error("invalid JSON: {0}")]
    InvalidJson(serde_json::Error),
    #[error("expected a JSON object")]
    NotAnObject,
    #[error("`libraries` is not an object")]
    LibrariesNotAnObject,
    /// A package library keyed otherwise than `name/version`.
    #[error("library key {key:?} is not `name/version`")]
    KeyWithoutSlash { key: String },
    #[error("library key {key:?} has an empty part")]
    KeyWithEmptyPart { key: String },
}

/// Parses a deps.json: every `libraries` entry of type `package` as `name/version`. Entries of type
/// `project` (the app and its own projects) and `reference` are local code, not NuGet packages.
pub fn parse_deps(location: &str, contents: &[u8]) -> Result<Vec<Package>, DepsError> {
    let document: Value = serde_json::from_slice(contents).map_err(DepsError::InvalidJson)?;
    let Value::Object(document) = document else {
        return Err(DepsError::NotAnObject);
    };
    let libraries = match document.get("libraries") {
        Some(Value::Object(libraries)) => libraries,
        Some(_) => return Err(DepsError::LibrariesNotAnObject),
        None => return Ok(Vec::new()),
    };
    let mut packages = Vec::new();
    for (key, library) in libraries {
        let kind = library.get("type").and_then(Value::as_str).unwrap_or("");
        if kind != "package" {
            continue;
        }
        let Some((name, version)) = key.split_once('/') else {
            return Err(DepsError::KeyWithoutSlash { key: shorten(key) });
        };
        if name.is_empty() || version.is_empty() {
            return Err(DepsError::KeyWithEmptyPart { key: shorten(key) });
        }
        packages.push(lang_package(
            NAME,
            ECOSYSTEM,
            location,
            name.to_string(),
            version.to_string(),
        ));
    }
    Ok(packages)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_input_is_an_error() {
        assert!(Dotnet.claims("app/MyApp.deps.json"));
        assert!(!Dotnet.claims("app/MyApp.runtimeconfig.json"));
        assert!(parse_deps("x", b"{").is_err());
        assert!(parse_deps("x", b"[]").is_err());
        assert!(parse_deps("x", br#"{"libraries":[]}"#).is_err());
        assert!(parse_deps("x", br#"{"libraries":{"NoSlash":{"type":"package"}}}"#).is_err());
        assert!(parse_deps("x", "[".repeat(50_000).as_bytes()).is_err());
        assert!(parse_deps("x", b"{}").unwrap().is_empty());
    }

    /// The reasons become coverage reasons stored in the warehouse: their text must not drift.
    #[test]
    fn reasons_keep_their_text() {
        let cases: [(&[u8], &str); 4] = [
            (b"[]", "expected a JSON object"),
            (br#"{"libraries":[]}"#, "`libraries` is not an object"),
            (
                br#"{"libraries":{"NoSlash":{"type":"package"}}}"#,
                "library key \"NoSlash\" is not `name/version`",
            ),
            (
                br#"{"libraries":{"a/":{"type":"package"}}}"#,
                "library key \"a/\" has an empty part",
            ),
        ];
        for (text, want) in cases {
            assert_eq!(parse_deps("x", text).unwrap_err().to_string(), want);
        }
        let error = parse_deps("x", b"{").unwrap_err();
        assert!(error.to_string().starts_with("invalid JSON: "), "{error}");
    }
}
