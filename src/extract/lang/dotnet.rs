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

/// Parses a deps.json: every `libraries` entry of type `package` as `name/version`. Entries of type
/// `project` (the app and its own projects) and `reference` are local code, not NuGet packages.
pub fn parse_deps(location: &str, contents: &[u8]) -> Result<Vec<Package>, String> {
    let document: Value =
        serde_json::from_slice(contents).map_err(|error| format!("invalid JSON: {error}"))?;
    let Value::Object(document) = document else {
        return Err("expected a JSON object".into());
    };
    let libraries = match document.get("libraries") {
        Some(Value::Object(libraries)) => libraries,
        Some(_) => return Err("`libraries` is not an object".into()),
        None => return Ok(Vec::new()),
    };
    let mut packages = Vec::new();
    for (key, library) in libraries {
        let kind = library.get("type").and_then(Value::as_str).unwrap_or("");
        if kind != "package" {
            continue;
        }
        let Some((name, version)) = key.split_once('/') else {
            return Err(format!(
                "library key {:?} is not `name/version`",
                shorten(key)
            ));
        };
        if name.is_empty() || version.is_empty() {
            return Err(format!("library key {:?} has an empty part", shorten(key)));
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
}
