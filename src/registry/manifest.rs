//! Registry stage: manifests and indexes (OCI and Docker v2), parsed with oci-client's types, and the image
//! config that names a single-platform image's OS and architecture.

use oci_client::manifest::{
    ImageIndexEntry, OciImageIndex, OciImageManifest, IMAGE_MANIFEST_LIST_MEDIA_TYPE,
    IMAGE_MANIFEST_MEDIA_TYPE, OCI_IMAGE_INDEX_MEDIA_TYPE, OCI_IMAGE_MEDIA_TYPE,
};
use serde::Deserialize;

use super::error::RegistryError;
use super::verify::digest_like;
use crate::model::{Digest, Platform};

/// The distribution spec lets registries refuse manifests over 4 MiB; Vigil refuses to read more.
pub const MAX_MANIFEST_BYTES: u64 = 4 << 20;

/// Image configs are small JSON documents; a larger one is refused rather than buffered.
pub const MAX_CONFIG_BYTES: u64 = 16 << 20;

const DOCKER_SCHEMA1: &str = "application/vnd.docker.distribution.manifest.v1+json";
const DOCKER_SCHEMA1_SIGNED: &str = "application/vnd.docker.distribution.manifest.v1+prettyjws";

/// Every manifest media type Vigil reads. Registries answer 404 for OCI types, or convert Docker ones to
/// schema 1, when the `Accept` header leaves them out.
pub const MANIFEST_ACCEPT: &[&str] = &[
    OCI_IMAGE_INDEX_MEDIA_TYPE,
    OCI_IMAGE_MEDIA_TYPE,
    IMAGE_MANIFEST_LIST_MEDIA_TYPE,
    IMAGE_MANIFEST_MEDIA_TYPE,
];

/// A manifest as fetched: its digest (computed from the bytes), media type and parsed content.
#[derive(Debug, Clone)]
pub struct FetchedManifest {
    pub digest: Digest,
    pub media_type: String,
    pub content: ManifestContent,
}

#[derive(Debug, Clone)]
pub enum ManifestContent {
    Image(Box<OciImageManifest>),
    Index(OciImageIndex),
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Probe {
    schema_version: Option<i64>,
    media_type: Option<String>,
    manifests: Option<serde::de::IgnoredAny>,
}

impl FetchedManifest {
    /// Parses manifest bytes. `reference` is the tag or digest it was fetched by: a digest must match.
    pub fn parse(
        what: &str,
        reference: &str,
        body: Vec<u8>,
        content_type: Option<String>,
    ) -> Result<FetchedManifest, RegistryError> {
        let invalid = |message: String| RegistryError::Invalid {
            what: what.to_string(),
            message,
        };
        let digest = match reference.parse::<Digest>() {
            Ok(expected) => {
                let actual = digest_like(&expected, &body);
                if actual != expected.to_string() {
                    return Err(RegistryError::DigestMismatch {
                        what: what.to_string(),
                        expected: expected.to_string(),
                        actual,
                    });
                }
                expected
            }
            Err(_) => Digest::sha256_of(&body),
        };
        let probe: Probe = serde_json::from_slice(&body)
            .map_err(|e| invalid(format!("manifest is not valid JSON: {e}")))?;
        let media_type = probe
            .media_type
            .clone()
            .or(content_type.filter(|t| !t.is_empty() && t != "application/json"))
            .unwrap_or_else(|| {
                // Without a media type, the shape decides (OCI allows omitting it).
                if probe.manifests.is_some() {
                    OCI_IMAGE_INDEX_MEDIA_TYPE.to_string()
                } else {
                    OCI_IMAGE_MEDIA_TYPE.to_string()
                }
            });
        if probe.schema_version == Some(1)
            || media_type == DOCKER_SCHEMA1
            || media_type == DOCKER_SCHEMA1_SIGNED
        {
            return Err(RegistryError::UnsupportedMediaType {
                what: what.to_string(),
                media_type: "Docker schema 1 manifest (deprecated; re-push the image)".into(),
            });
        }
        let content = match media_type.as_str() {
            OCI_IMAGE_INDEX_MEDIA_TYPE | IMAGE_MANIFEST_LIST_MEDIA_TYPE => ManifestContent::Index(
                serde_json::from_slice(&body)
                    .map_err(|e| invalid(format!("invalid index: {e}")))?,
            ),
            OCI_IMAGE_MEDIA_TYPE | IMAGE_MANIFEST_MEDIA_TYPE => ManifestContent::Image(Box::new(
                serde_json::from_slice(&body)
                    .map_err(|e| invalid(format!("invalid manifest: {e}")))?,
            )),
            other => {
                return Err(RegistryError::UnsupportedMediaType {
                    what: what.to_string(),
                    media_type: other.to_string(),
                })
            }
        };
        Ok(FetchedManifest {
            digest,
            media_type,
            content,
        })
    }
}

/// The platform an index entry names, or `unknown/unknown` when it names none.
pub fn entry_platform(entry: &ImageIndexEntry) -> Platform {
    match &entry.platform {
        Some(platform) => Platform {
            os: platform.os.to_string(),
            architecture: platform.architecture.to_string(),
            variant: platform.variant.clone().filter(|v| !v.is_empty()),
        },
        None => Platform {
            os: "unknown".into(),
            architecture: "unknown".into(),
            variant: None,
        },
    }
}

/// Whether an index entry is an attestation or signature rather than an image (buildx marks these).
pub fn is_attestation(entry: &ImageIndexEntry) -> bool {
    entry
        .annotations
        .as_ref()
        .is_some_and(|a| a.contains_key("vnd.docker.reference.type"))
}

/// The part of an image config Vigil needs.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ImageConfig {
    #[serde(default)]
    pub os: String,
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub variant: Option<String>,
    #[serde(default)]
    pub created: Option<String>,
}

impl ImageConfig {
    pub fn parse(what: &str, body: &[u8]) -> Result<ImageConfig, RegistryError> {
        serde_json::from_slice(body).map_err(|e| RegistryError::Invalid {
            what: what.to_string(),
            message: format!("image config is not valid JSON: {e}"),
        })
    }

    pub fn platform(&self) -> Platform {
        let or_unknown = |s: &str| {
            if s.is_empty() {
                "unknown".to_string()
            } else {
                s.to_string()
            }
        };
        Platform {
            os: or_unknown(&self.os),
            architecture: or_unknown(&self.architecture),
            variant: self.variant.clone().filter(|v| !v.is_empty()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_shapes_and_checks_digests() {
        let index = br#"{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa","size":1,"platform":{"os":"windows","architecture":"amd64","os.version":"10.0.17763.1"}}]}"#;
        let parsed = FetchedManifest::parse("x", "latest", index.to_vec(), None).unwrap();
        let ManifestContent::Index(index_content) = &parsed.content else {
            panic!("expected an index");
        };
        assert_eq!(
            entry_platform(&index_content.manifests[0]).to_string(),
            "windows/amd64"
        );
        assert_eq!(parsed.media_type, OCI_IMAGE_INDEX_MEDIA_TYPE);

        let wrong = format!("sha256:{}", "0".repeat(64));
        let err = FetchedManifest::parse("x", &wrong, index.to_vec(), None).unwrap_err();
        assert!(matches!(err, RegistryError::DigestMismatch { .. }));

        let schema1 = br#"{"schemaVersion":1,"name":"x","tag":"y","fsLayers":[]}"#;
        let err = FetchedManifest::parse("x", "y", schema1.to_vec(), None).unwrap_err();
        assert!(err.to_string().contains("schema 1"), "{err}");

        let err = FetchedManifest::parse("x", "y", b"{not json".to_vec(), None).unwrap_err();
        assert!(err.to_string().contains("not valid JSON"));

        let odd = br#"{"schemaVersion":2,"mediaType":"application/vnd.example+json"}"#;
        let err = FetchedManifest::parse("x", "y", odd.to_vec(), None).unwrap_err();
        assert!(matches!(err, RegistryError::UnsupportedMediaType { .. }));
    }

    #[test]
    fn config_platform_defaults_to_unknown() {
        let config = ImageConfig::parse(
            "c",
            br#"{"architecture":"arm","os":"linux","variant":"v7"}"#,
        )
        .unwrap();
        assert_eq!(config.platform().to_string(), "linux/arm/v7");
        assert_eq!(
            ImageConfig::parse("c", b"{}")
                .unwrap()
                .platform()
                .to_string(),
            "unknown/unknown"
        );
    }
}
