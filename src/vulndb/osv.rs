//! Advisory DB stage: serde types for OSV records as published (schema 1.x), read leniently.
//!
//! These mirror the JSON on the wire and exist only between reading a file and normalising it into
//! [`crate::vulndb::Advisory`]. Unknown fields are ignored (serde's default) so newer schema versions
//! still load; every field that real exports sometimes omit or set to `null` is optional.

use serde::Deserialize;

/// One OSV record as it appears in a `.json` file or a zip entry.
#[derive(Debug, Clone, Deserialize)]
pub struct OsvRecord {
    pub id: String,
    #[serde(default)]
    pub schema_version: Option<String>,
    #[serde(default)]
    pub modified: Option<String>,
    #[serde(default)]
    pub published: Option<String>,
    /// When set, the record was retracted: it is skipped at import.
    #[serde(default)]
    pub withdrawn: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub aliases: Vec<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub related: Vec<String>,
    /// OSV 1.7 `upstream`: the IDs this record was derived from (CVEs for Ubuntu and Alpine).
    #[serde(default, deserialize_with = "null_as_default")]
    pub upstream: Vec<String>,
    #[serde(default)]
    pub summary: Option<String>,
    #[serde(default)]
    pub details: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub severity: Vec<OsvSeverity>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub affected: Vec<OsvAffected>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub references: Vec<OsvReference>,
    #[serde(default)]
    pub database_specific: Option<serde_json::Value>,
}

/// A `severity[]` entry. `type` is kept as a string: unknown types (e.g. `Ubuntu`) must not fail.
#[derive(Debug, Clone, Deserialize)]
pub struct OsvSeverity {
    #[serde(rename = "type")]
    pub kind: String,
    pub score: String,
}

/// One `affected[]` entry: a package in one ecosystem and the versions of it that are affected.
#[derive(Debug, Clone, Deserialize)]
pub struct OsvAffected {
    #[serde(default)]
    pub package: Option<OsvPackage>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub ranges: Vec<OsvRange>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub versions: Vec<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub severity: Vec<OsvSeverity>,
    #[serde(default)]
    pub database_specific: Option<serde_json::Value>,
}

/// The package an `affected[]` entry names.
#[derive(Debug, Clone, Deserialize)]
pub struct OsvPackage {
    #[serde(default)]
    pub ecosystem: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub purl: Option<String>,
}

/// A `ranges[]` entry. `type` is a string so that unknown range types are skipped, not fatal.
#[derive(Debug, Clone, Deserialize)]
pub struct OsvRange {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub repo: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub events: Vec<OsvEvent>,
}

/// One range event. OSV puts exactly one of these keys in each event object; an object with none of
/// them is tolerated and ignored.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct OsvEvent {
    #[serde(default)]
    pub introduced: Option<String>,
    #[serde(default)]
    pub fixed: Option<String>,
    #[serde(default)]
    pub last_affected: Option<String>,
    #[serde(default)]
    pub limit: Option<String>,
}

/// A `references[]` entry.
#[derive(Debug, Clone, Deserialize)]
pub struct OsvReference {
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub url: String,
}

/// Real exports write `"aliases": null` now and then; treat it like an absent field.
fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tolerates_unknown_fields_nulls_and_unknown_types() {
        let text = r#"{
            "id": "X-1", "aliases": null, "new_field": {"a": 1},
            "severity": [{"type": "Ubuntu", "score": "medium"}],
            "affected": [{"package": {"ecosystem": "Foo", "name": "bar"},
                          "ranges": [{"type": "WEIRD", "events": [{"introduced": "0"}, {"other": "1"}]}]}]
        }"#;
        let record: OsvRecord = serde_json::from_str(text).unwrap();
        assert!(record.aliases.is_empty());
        assert_eq!(record.severity[0].kind, "Ubuntu");
        assert_eq!(record.affected[0].ranges[0].events.len(), 2);
        assert!(record.affected[0].ranges[0].events[1].introduced.is_none());
    }

    #[test]
    fn rejects_a_record_without_id() {
        assert!(serde_json::from_str::<OsvRecord>(r#"{"summary": "x"}"#).is_err());
    }
}
