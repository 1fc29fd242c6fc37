//! Registry stage: one face for both image sources, a registry over HTTP and an OCI layout on disk.

use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use futures::Stream;

use super::client::RegistryClient;
use super::error::RegistryError;
use super::layout::OciLayout;
use super::manifest::{FetchedManifest, ImageConfig, MAX_CONFIG_BYTES};
use super::verify::collect_limited;
use crate::config::{Endpoint, RegistrySettings};
use crate::model::Digest;

/// A verified blob as a stream of chunks.
pub type BlobStream = Pin<Box<dyn Stream<Item = Result<Bytes, RegistryError>> + Send>>;

/// Where images are read from.
pub enum Source {
    Registry(RegistryClient),
    Layout(OciLayout),
}

impl Source {
    /// Builds the source a registry's settings name. For HTTP registries this also pings `/v2/`.
    pub async fn connect(settings: Arc<RegistrySettings>) -> Result<Source, RegistryError> {
        match &settings.endpoint {
            Endpoint::Http(url) => {
                let client = RegistryClient::new(url.clone(), settings.clone())?;
                client.ping().await?;
                Ok(Source::Registry(client))
            }
            Endpoint::Layout(path) => Ok(Source::Layout(OciLayout::open(path)?)),
        }
    }

    /// Every repository.
    pub async fn repositories(&self) -> Result<Vec<String>, RegistryError> {
        match self {
            Source::Registry(client) => client.catalog().await,
            Source::Layout(layout) => Ok(layout.repositories()),
        }
    }

    /// Every tag of a repository, sorted; empty when it has none.
    pub async fn tags(&self, repository: &str) -> Result<Vec<String>, RegistryError> {
        match self {
            Source::Registry(client) => client.tags(repository).await,
            Source::Layout(layout) => Ok(layout.tags(repository)),
        }
    }

    /// A manifest or index by tag or digest.
    pub async fn manifest(
        &self,
        repository: &str,
        reference: &str,
    ) -> Result<FetchedManifest, RegistryError> {
        match self {
            Source::Registry(client) => client.manifest(repository, reference).await,
            Source::Layout(layout) => layout.manifest(repository, reference).await,
        }
    }

    /// A blob, digest-verified while it streams.
    pub async fn blob_stream(
        &self,
        repository: &str,
        digest: &Digest,
        expected_size: Option<u64>,
    ) -> Result<BlobStream, RegistryError> {
        Ok(match self {
            Source::Registry(client) => Box::pin(
                client
                    .blob_stream(repository, digest, expected_size)
                    .await?,
            ),
            Source::Layout(layout) => Box::pin(layout.blob_stream(digest, expected_size).await?),
        })
    }

    /// An image's config blob, which names its OS and architecture.
    pub async fn image_config(
        &self,
        repository: &str,
        digest: &Digest,
        expected_size: Option<u64>,
    ) -> Result<ImageConfig, RegistryError> {
        let what = format!("{repository}@{digest} (config)");
        let stream = self.blob_stream(repository, digest, expected_size).await?;
        let body = collect_limited(stream, MAX_CONFIG_BYTES, &what).await?;
        ImageConfig::parse(&what, &body)
    }

    /// How users name an image of this source: `host[:port]/repo@digest` or `oci:DIR:repo@digest`.
    pub fn image_name(&self, repository: &str, digest: &Digest) -> String {
        match self {
            Source::Registry(client) => format!("{}/{repository}@{digest}", client.host()),
            Source::Layout(layout) => {
                format!("oci:{}:{repository}@{digest}", layout.root().display())
            }
        }
    }
}
