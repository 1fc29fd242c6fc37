//! Extract stage: `lang/npm` reads npm packages: each installed package's own
//! `node_modules/<name>/package.json` (or `node_modules/@scope/<name>/package.json`), and
//! `package-lock.json` files of lockfile versions 1, 2 and 3 (nested, aliased, bundled and scoped
//! entries included), since images often ship an app's lock file next to its code.

use std::collections::BTreeSet;

use serde_json::{Map, Value};

use crate::extract::lang::{base_name, lang_package, shorten};
use crate::extract::{ExtractError, Extracted, Extractor};
use crate::model::Package;

/// The `lang/npm` extractor.
#[derive(Debug, Clone, Copy, Default)]
pub struct Npm;

/// The extractor's stable name.
pub const NAME: &str = "lang/npm";
/// OSV's ecosystem name for npm packages.
pub const ECOSYSTEM: &str = "npm";

const MODULES: &str = "node_modules/";

/// Whether `path` is the top `package.json` of a package installed under `node_modules`: the part
/// after the last `node_modules/` is exactly `<name>/package.json` or `@scope/<name>/package.json`,
/// so test fixtures and examples inside a package are not mistaken for installed packages.
fn is_installed_manifest(path: &str) -> bool {
    let Some(start) = path.rfind(MODULES) else {
        return false;
    };
    if start > 0 && path.as_bytes()[start - 1] != b'/' {
        return false;
    }
    let Some(rest) = path[start + MODULES.len()..].strip_suffix("/package.json") else {
        return false;
    };
    let mut parts = rest.split('/');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(name), None, None) => !name.is_empty() && !name.starts_with(['.', '@']),
        (Some(scope), Some(name), None) => {
            scope.len() > 1 && scope.starts_with('@') && !name.is_empty()
        }
        _ => false,
    }
}

impl Extractor for Npm {
    fn name(&self) -> &'static str {
        NAME
    }

    fn version(&self) -> u32 {
        1
    }

    fn claims(&self, path: &str) -> bool {
        // Called for every tar entry: reject the vast majority on the suffix alone.
        if !path.ends_with(".json") {
            return false;
        }
        if base_name(path) == "package-lock.json" {
            // A lock file inside node_modules belongs to a published package's development, not to
            // what is installed here.
            return !path.contains(MODULES);
        }
        is_installed_manifest(path)
    }

    fn max_file_size(&self) -> u64 {
        // Lock files of large monorepos reach tens of MiB.
        64 * 1024 * 1024
    }

    fn extract(&self, path: &str, contents: &[u8]) -> Result<Extracted, ExtractError> {
        let result = if base_name(path) == "package-lock.json" {
            parse_lock(path, contents)
        } else {
            parse_manifest(path, contents)
        };
        result
            .map(Extracted::Packages)
            .map_err(|reason| ExtractError::new(NAME, path, reason))
    }
}

/// Why a `package.json` or `package-lock.json` could not be read. Keys are shortened; `found` is the
/// kind of JSON value met where an object was expected.
#[derive(Debug, thiserror::Error)]
pub enum NpmError {
    #[error("invalid JSON: {0}")]
    InvalidJson(serde_json::Error),
    /// The document is JSON but not an object.
    #[error("expected a JSON object, found {found}")]
    NotAnObject { found: &'static str },
    /// A lock file's `packages` member is not an object.
    #[error("`packages` is {found}, not an object")]
    PackagesNotAnObject { found: &'static str },
    /// A lock file's (v1) `dependencies` member is not an object.
    #[error("`dependencies` is {found}, not an object")]
    DependenciesNotAnObject { found: &'static str },
    /// One entry of `packages` is not an object.
    #[error("packages[{key:?}] is not an object")]
    PackageEntry { key: String },
    /// One entry of a v1 `dependencies` tree is not an object.
    #[error("dependencies[{key:?}] is not an object")]
    DependencyEntry { key: String },
    /// The nested `dependencies` of a v1 entry is not an object.
    #[error("dependencies[{key:?}].dependencies is {found}")]
    NestedDependencies { key: String, found: &'static str },
}

fn parse_json(contents: &[u8]) -> Result<Map<String, Value>, NpmError> {
    // serde_json stops at 128 levels of nesting on its own, so deep garbage is an error, not a crash.
    match serde_json::from_slice::<Value>(contents) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(other) => Err(NpmError::NotAnObject {
            found: kind(&other),
        }),
        Err(error) => Err(NpmError::InvalidJson(error)),
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// An installed package's own `package.json`: one package, or none when it names no version (npm
/// leaves such a manifest behind for links and placeholders).
pub fn parse_manifest(location: &str, contents: &[u8]) -> Result<Vec<Package>, NpmError> {
    /// Only the two fields that matter are kept; serde skips the rest without building them.
    #[derive(serde::Deserialize)]
    struct Manifest {
        #[serde(default)]
        name: Option<Value>,
        #[serde(default)]
        version: Option<Value>,
    }
    let manifest: Manifest = match serde_json::from_slice::<Manifest>(contents) {
        Ok(manifest) => manifest,
        // Not an object, not JSON, or an object serde's struct reading refuses (a repeated key): the
        // generic parse says which, or reads it.
        Err(_) => {
            let mut map = parse_json(contents)?;
            Manifest {
                name: map.remove("name"),
                version: map.remove("version"),
            }
        }
    };
    let text = |value: &Option<Value>| {
        value
            .as_ref()
            .and_then(Value::as_str)
            .map(str::trim)
            .map(str::to_string)
    };
    match (text(&manifest.name), text(&manifest.version)) {
        (Some(name), Some(version)) if !name.is_empty() && !version.is_empty() => {
            Ok(vec![lang_package(NAME, ECOSYSTEM, location, name, version)])
        }
        _ => Ok(Vec::new()),
    }
}

/// Identity of a lock entry: the same name and version from two git commits are two packages.
type Seen = BTreeSet<(String, String, String)>;

/// The commit a git-resolved entry points at (`...#<commit>`), empty for registry entries.
fn commit_of(resolved: &str) -> &str {
    if resolved.starts_with("git") || resolved.contains(".git#") {
        resolved
            .rsplit_once('#')
            .map(|(_, commit)| commit)
            .unwrap_or("")
    } else {
        ""
    }
}

fn push(
    location: &str,
    seen: &mut Seen,
    packages: &mut Vec<Package>,
    name: &str,
    version: &str,
    commit: &str,
) {
    if name.is_empty() {
        return;
    }
    if seen.insert((name.to_string(), version.to_string(), commit.to_string())) {
        packages.push(lang_package(
            NAME,
            ECOSYSTEM,
            location,
            name.to_string(),
            version.to_string(),
        ));
    }
}

/// Parses a `package-lock.json`. Version 2 and 3 files list every installed path under `packages`;
/// version 1 files (and v2's compatibility copy, ignored when `packages` exists) nest `dependencies`.
pub fn parse_lock(location: &str, contents: &[u8]) -> Result<Vec<Package>, NpmError> {
    let lock = parse_json(contents)?;
    let mut packages = Vec::new();
    let mut seen = Seen::new();
    match (lock.get("packages"), lock.get("dependencies")) {
        (Some(Value::Object(entries)), _) => {
            for (key, entry) in entries {
                // "" is the project itself; keys without node_modules/ are workspace members, which
                // are local code, not registry packages.
                let Some(start) = key.rfind(MODULES) else {
                    continue;
                };
                let Value::Object(entry) = entry else {
                    return Err(NpmError::PackageEntry { key: shorten(key) });
                };
                if entry.get("link").and_then(Value::as_bool) == Some(true) {
                    // A link's target is listed under its own key.
                    continue;
                }
                let text = |field: &str| entry.get(field).and_then(Value::as_str).unwrap_or("");
                // An aliased install (`"string-width-cjs": "npm:string-width@4"`) keeps the real
                // name in `name`; otherwise the path names it.
                let name = match text("name") {
                    "" => &key[start + MODULES.len()..],
                    name => name,
                };
                push(
                    location,
                    &mut seen,
                    &mut packages,
                    name,
                    text("version"),
                    commit_of(text("resolved")),
                );
            }
        }
        (Some(other), _) => return Err(NpmError::PackagesNotAnObject { found: kind(other) }),
        (None, Some(Value::Object(dependencies))) => {
            walk_v1(location, dependencies, &mut seen, &mut packages)?
        }
        (None, Some(other)) => {
            return Err(NpmError::DependenciesNotAnObject { found: kind(other) })
        }
        (None, None) => {}
    }
    Ok(packages)
}

/// Walks a version 1 `dependencies` tree. Recursion depth is bounded by serde_json's own nesting
/// limit on the parsed document.
fn walk_v1(
    location: &str,
    dependencies: &Map<String, Value>,
    seen: &mut Seen,
    packages: &mut Vec<Package>,
) -> Result<(), NpmError> {
    for (key, entry) in dependencies {
        let Value::Object(entry) = entry else {
            return Err(NpmError::DependencyEntry { key: shorten(key) });
        };
        let raw_version = entry.get("version").and_then(Value::as_str).unwrap_or("");
        let (name, version, commit) = if let Some(alias) = raw_version.strip_prefix("npm:") {
            // `npm:<real name>@<version>`; the real name may itself be scoped (`@scope/x@1`).
            match alias.rsplit_once('@') {
                Some((name, version)) if !name.is_empty() => (name, version, ""),
                _ => (key.as_str(), "", ""),
            }
        } else if raw_version.starts_with("file:") {
            // Local directories are project code, not registry packages.
            ("", "", "")
        } else if raw_version.contains("://") || raw_version.starts_with("git") {
            // A git dependency: v1 records only the URL, so the version is unknown.
            (key.as_str(), "", commit_of(raw_version))
        } else {
            (key.as_str(), raw_version, "")
        };
        push(location, seen, packages, name, version, commit);
        match entry.get("dependencies") {
            Some(Value::Object(nested)) => walk_v1(location, nested, seen, packages)?,
            Some(other) => {
                return Err(NpmError::NestedDependencies {
                    key: shorten(key),
                    found: kind(other),
                })
            }
            None => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_installed_manifests_and_lock_files() {
        let cases = [
            ("usr/lib/node_modules/npm/package.json", true),
            ("app/node_modules/@babel/core/package.json", true),
            ("app/node_modules/a/node_modules/b/package.json", true),
            ("app/node_modules/a/test/fixtures/package.json", false),
            ("app/node_modules/@scope/package.json", false),
            ("app/node_modules/.bin/package.json", false),
            ("app/package.json", false),
            ("app/package-lock.json", true),
            ("package-lock.json", true),
            ("app/node_modules/a/package-lock.json", false),
            ("app/my_node_modules/a/package.json", false),
            ("node_modules/a/package.json", true),
        ];
        for (path, want) in cases {
            assert_eq!(Npm.claims(path), want, "{path}");
        }
    }

    #[test]
    fn v1_aliases_git_and_file_dependencies() {
        let lock = br#"{"lockfileVersion":1,"dependencies":{
            "a":{"version":"1.0.0","dependencies":{"b":{"version":"2.0.0"}}},
            "c":{"version":"npm:@scope/real@3.1.0"},
            "d":{"version":"git+ssh://git@github.com/x/d.git#abc"},
            "e":{"version":"file:../e"}}}"#;
        let packages = parse_lock("package-lock.json", lock).unwrap();
        let got: Vec<(&str, &str)> = packages
            .iter()
            .map(|p| (p.name.as_str(), p.version.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("a", "1.0.0"),
                ("b", "2.0.0"),
                ("@scope/real", "3.1.0"),
                ("d", "")
            ]
        );
    }

    #[test]
    fn bad_input_is_an_error() {
        assert!(parse_lock("x", b"{").is_err());
        assert!(parse_lock("x", b"[]").is_err());
        assert!(parse_lock("x", br#"{"packages":[]}"#).is_err());
        assert!(parse_lock("x", br#"{"packages":{"node_modules/a":1}}"#).is_err());
        assert!(parse_lock("x", br#"{"dependencies":{"a":{"dependencies":3}}}"#).is_err());
        assert!(parse_lock("x", b"\xff\xfe").is_err());
        let deep = "[".repeat(100_000);
        assert!(parse_lock("x", deep.as_bytes()).is_err());
        assert!(parse_manifest("x", b"not json").is_err());
        assert!(parse_manifest("x", br#"{"name":"a"}"#).unwrap().is_empty());
    }

    /// The reasons become coverage reasons stored in the warehouse: their text must not drift.
    #[test]
    fn reasons_keep_their_text() {
        let cases: [(&[u8], &str); 6] = [
            (b"[]", "expected a JSON object, found an array"),
            (
                br#"{"packages":1}"#,
                "`packages` is a number, not an object",
            ),
            (
                br#"{"dependencies":"x"}"#,
                "`dependencies` is a string, not an object",
            ),
            (
                br#"{"packages":{"node_modules/a":1}}"#,
                "packages[\"node_modules/a\"] is not an object",
            ),
            (
                br#"{"dependencies":{"a":null}}"#,
                "dependencies[\"a\"] is not an object",
            ),
            (
                br#"{"dependencies":{"a":{"version":"1","dependencies":[]}}}"#,
                "dependencies[\"a\"].dependencies is an array",
            ),
        ];
        for (text, want) in cases {
            assert_eq!(parse_lock("x", text).unwrap_err().to_string(), want);
        }
        let error = parse_manifest("x", b"not json").unwrap_err();
        assert!(matches!(error, NpmError::InvalidJson(_)));
        assert!(error.to_string().starts_with("invalid JSON: "), "{error}");
    }
}
