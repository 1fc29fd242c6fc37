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
        let cache = match self {
            Source::Registry(client) => client.settings().config_cache.as_ref().map(|dir| {
                dir.join(format!(
                    "{}-{}.json",
                    digest.algorithm().as_str(),
                    digest.hex()
                ))
            }),
            Source::Layout(_) => None,
        };
        if let Some(path) = &cache {
            // Content-addressed: a cached copy whose digest still matches is the config.
            if let Ok(body) = std::fs::read(path) {
                if crate::registry::verify::digest_like(digest, &body) == digest.to_string() {
                    return ImageConfig::parse(&what, &body);
                }
            }
        }
        let stream = self.blob_stream(repository, digest, expected_size).await?;
        let body = collect_limited(stream, MAX_CONFIG_BYTES, &what).await?;
        let config = ImageConfig::parse(&what, &body)?;
        if let Some(path) = &cache {
            store_config(path, &body);
        }
        Ok(config)
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

/// Keeps a config blob (already digest-checked) for later runs; a failure only costs a fetch next time.
fn store_config(path: &std::path::Path, body: &[u8]) {
    let Some(dir) = path.parent() else { return };
    let temporary = dir.join(format!(
        ".{}.tmp-{:08x}",
        std::process::id(),
        rand::random::<u32>()
    ));
    let stored = std::fs::create_dir_all(dir)
        .and_then(|()| std::fs::write(&temporary, body))
        .and_then(|()| std::fs::rename(&temporary, path));
    if let Err(err) = stored {
        let _ = std::fs::remove_file(&temporary);
        tracing::debug!(%err, path = %path.display(), "cannot cache an image config");
    }
}
