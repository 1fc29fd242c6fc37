//! Registry stage: a directory in the OCI image layout as an image source, for air-gapped use and the
//! bundled demo images.
//!
//! Tags come from `org.opencontainers.image.ref.name` annotations in `index.json`. A name of the form
//! `repo:tag` names both (a tag cannot hold a colon, so this is unambiguous); a bare name is a tag of the
//! repository named after the layout's folder.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use futures::Stream;
use oci_client::manifest::OciDescriptor;
use serde::Deserialize;
use tokio::io::AsyncReadExt;

use super::error::RegistryError;
use super::manifest::{FetchedManifest, MAX_MANIFEST_BYTES};
use super::verify::verify_stream;
use crate::model::Digest;

const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// An OCI image layout on disk.
#[derive(Debug, Clone)]
pub struct OciLayout {
    root: PathBuf,
    default_repository: String,
    refs: Vec<LayoutRef>,
}

/// One tagged entry of the layout's `index.json`.
#[derive(Debug, Clone)]
pub struct LayoutRef {
    pub repository: String,
    pub tag: String,
    pub descriptor: OciDescriptor,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct LayoutMarker {
    image_layout_version: String,
}

#[derive(Deserialize)]
struct LayoutIndex {
    #[serde(default)]
    manifests: Vec<OciDescriptor>,
}

impl OciLayout {
    /// Opens a layout, reading `oci-layout` and `index.json`.
    pub fn open(root: &Path) -> Result<OciLayout, RegistryError> {
        let io = |path: &Path, source| RegistryError::Io {
            path: path.display().to_string(),
            source,
        };
        let marker_path = root.join("oci-layout");
        let marker = std::fs::read(&marker_path).map_err(|e| io(&marker_path, e))?;
        let marker: LayoutMarker =
            serde_json::from_slice(&marker).map_err(|e| RegistryError::Invalid {
                what: marker_path.display().to_string(),
                message: format!("not an oci-layout file: {e}"),
            })?;
        if !marker.image_layout_version.starts_with("1.") {
            return Err(RegistryError::Invalid {
                what: marker_path.display().to_string(),
                message: format!(
                    "unsupported imageLayoutVersion {:?}",
                    marker.image_layout_version
                ),
            });
        }
        let index_path = root.join("index.json");
        let index = std::fs::read(&index_path).map_err(|e| io(&index_path, e))?;
        let index: LayoutIndex =
            serde_json::from_slice(&index).map_err(|e| RegistryError::Invalid {
                what: index_path.display().to_string(),
                message: format!("invalid index.json: {e}"),
            })?;
        let default_repository = root
            .canonicalize()
            .unwrap_or_else(|_| root.to_path_buf())
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| "layout".to_string());
        let mut refs = Vec::new();
        for descriptor in index.manifests {
            let Some(name) = descriptor
                .annotations
                .as_ref()
                .and_then(|a| a.get(REF_NAME))
                .cloned()
            else {
                continue;
            };
            let (repository, tag) = match name.rsplit_once(':') {
                Some((repository, tag)) if !repository.is_empty() && !tag.contains('/') => {
                    (repository.to_string(), tag.to_string())
                }
                _ => (default_repository.clone(), name),
            };
            refs.push(LayoutRef {
                repository,
                tag,
                descriptor,
            });
        }
        Ok(OciLayout {
            root: root.to_path_buf(),
            default_repository,
            refs,
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The repository that bare ref names belong to.
    pub fn default_repository(&self) -> &str {
        &self.default_repository
    }

    pub fn repositories(&self) -> Vec<String> {
        let mut repositories: Vec<String> =
            self.refs.iter().map(|r| r.repository.clone()).collect();
        repositories.sort();
        repositories.dedup();
        repositories
    }

    pub fn tags(&self, repository: &str) -> Vec<String> {
        let mut tags: Vec<String> = self
            .refs
            .iter()
            .filter(|r| r.repository == repository)
            .map(|r| r.tag.clone())
            .collect();
        tags.sort();
        tags.dedup();
        tags
    }

    fn blob_path(&self, digest: &Digest) -> PathBuf {
        // Digest parsing admits only lower-case hex, so this path cannot leave blobs/.
        self.root
            .join("blobs")
            .join(digest.algorithm().as_str())
            .join(digest.hex())
    }

    /// A manifest by tag (through `index.json`) or digest, verified against its digest.
    pub async fn manifest(
        &self,
        repository: &str,
        reference: &str,
    ) -> Result<FetchedManifest, RegistryError> {
        let what = format!("{}:{repository}:{reference}", self.root.display());
        let (digest, media_type) = match reference.parse::<Digest>() {
            Ok(digest) => (digest, None),
            Err(_) => {
                let found = self
                    .refs
                    .iter()
                    .find(|r| r.repository == repository && r.tag == reference)
                    .ok_or_else(|| RegistryError::NotFound { what: what.clone() })?;
                let digest = found.descriptor.digest.parse::<Digest>().map_err(|e| {
                    RegistryError::Invalid {
                        what: what.clone(),
                        message: e.to_string(),
                    }
                })?;
                (digest, Some(found.descriptor.media_type.clone()))
            }
        };
        let body = self.read_blob(&digest, MAX_MANIFEST_BYTES).await?;
        FetchedManifest::parse(&what, &digest.to_string(), body, media_type)
    }

    /// A whole small blob, verified.
    pub async fn read_blob(&self, digest: &Digest, limit: u64) -> Result<Vec<u8>, RegistryError> {
        let stream = self.blob_stream(digest, None).await?;
        super::verify::collect_limited(stream, limit, &digest.to_string()).await
    }

    /// Streams a blob from disk, verifying its digest as it goes.
    pub async fn blob_stream(
        &self,
        digest: &Digest,
        expected_size: Option<u64>,
    ) -> Result<impl Stream<Item = Result<Bytes, RegistryError>> + Send + use<>, RegistryError>
    {
        let path = self.blob_path(digest);
        let shown = path.display().to_string();
        let file = tokio::fs::File::open(&path).await.map_err(|source| {
            if source.kind() == std::io::ErrorKind::NotFound {
                RegistryError::NotFound {
                    what: shown.clone(),
                }
            } else {
                RegistryError::Io {
                    path: shown.clone(),
                    source,
                }
            }
        })?;
        let reader_path = shown.clone();
        let chunks = futures::stream::unfold(Some(file), move |file| {
            let path = reader_path.clone();
            async move {
                let mut file = file?;
                let mut buffer = vec![0u8; 256 * 1024];
                match file.read(&mut buffer).await {
                    Ok(0) => None,
                    Ok(n) => {
                        buffer.truncate(n);
                        Some((Ok(Bytes::from(buffer)), Some(file)))
                    }
                    Err(source) => Some((Err(RegistryError::Io { path, source }), None)),
                }
            }
        });
        Ok(verify_stream(chunks, digest.clone(), expected_size, shown))
    }
}
