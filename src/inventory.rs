//! Image inventory: a manifest's layers, each read from the layer cache or streamed from the source once and
//! walked, merged into the image's [`Inventory`].
//!
//! One [`Inventorier`] serves a whole run: a layer shared by several images is downloaded and parsed once,
//! even when those images are inventoried at the same time, and across runs through the [`LayerCache`].

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use futures::future::join_all;
use oci_client::manifest::OciDescriptor;
use tokio::sync::OnceCell;

use crate::config::{Endpoint, RegistrySettings, Settings};
use crate::extract::{self, Extractor};
use crate::layer::{self, LayerCache, LayerInventory, Limits};
use crate::model::{Coverage, CoverageStatus, Digest, Inventory, Platform};
use crate::registry::crawl::{resolve_tag, SkipReason};
use crate::registry::{ImageRecord, ManifestContent, RegistryError, Source};

/// Counters of what a run read, for reports and tests.
#[derive(Debug, Default)]
pub struct LayerStats {
    /// Layers downloaded and walked.
    pub fetched: AtomicU64,
    /// Layers answered wholly from the cache.
    pub cached: AtomicU64,
    /// Layers whose walk failed.
    pub failed: AtomicU64,
}

/// Inventories images, sharing layer work across them.
pub struct Inventorier {
    cache: Option<LayerCache>,
    extractors: &'static [&'static dyn Extractor],
    limits: Limits,
    in_flight: Mutex<HashMap<Digest, Arc<OnceCell<LayerInventory>>>>,
    /// Walks under way at once. Each holds a rayon thread while it waits for data, and each buffers a
    /// bounded channel of chunks, so this bounds both CPU oversubscription and memory.
    walks: tokio::sync::Semaphore,
    pub stats: LayerStats,
}

/// One single-platform image to inventory.
#[derive(Debug, Clone)]
pub struct ImageTarget {
    pub repository: String,
    /// The single-platform manifest's digest.
    pub digest: Digest,
    /// How the image is shown (`host/repo@digest`, `oci:DIR:repo@digest`).
    pub name: String,
}

impl Inventorier {
    /// An inventorier using every extractor, with the layer cache at `cache_dir` when given.
    pub fn new(cache_dir: Option<&Path>) -> Result<Inventorier, layer::CacheError> {
        let cache = cache_dir.map(LayerCache::open).transpose()?;
        Ok(Inventorier {
            cache,
            extractors: extract::all(),
            limits: Limits::default(),
            in_flight: Mutex::new(HashMap::new()),
            walks: tokio::sync::Semaphore::new(rayon::current_num_threads().max(1) * 2),
            stats: LayerStats::default(),
        })
    }

    /// Inventories one single-platform image. Never fails: what could not be read becomes the
    /// inventory's coverage status and reason.
    pub async fn inventory(&self, source: &Source, target: &ImageTarget) -> Inventory {
        let mut inventory = match self.inventory_inner(source, target).await {
            Ok(inventory) => inventory,
            Err((platform, err)) => Inventory {
                image: String::new(),
                digest: None,
                platform,
                os: None,
                packages: Vec::new(),
                coverage: Coverage {
                    status: CoverageStatus::Failed,
                    reason: err.to_string(),
                },
            },
        };
        inventory.image = target.name.clone();
        inventory.digest = Some(target.digest.clone());
        inventory
    }

    async fn inventory_inner(
        &self,
        source: &Source,
        target: &ImageTarget,
    ) -> Result<Inventory, (Option<Platform>, RegistryError)> {
        let repository = &target.repository;
        let manifest = source
            .manifest(repository, &target.digest.to_string())
            .await
            .map_err(|e| (None, e))?;
        let ManifestContent::Image(image) = manifest.content else {
            return Err((
                None,
                RegistryError::Invalid {
                    what: target.name.clone(),
                    message: "is an index, not a single-platform image".into(),
                },
            ));
        };
        let config_digest = parse_digest(&target.name, &image.config).map_err(|e| (None, e))?;
        let config = source
            .image_config(
                repository,
                &config_digest,
                u64::try_from(image.config.size).ok(),
            )
            .await
            .map_err(|e| (None, e))?;
        let platform = config.platform();
        if platform.os != "linux" {
            // Windows and other non-Linux layers are not read at all: there is nothing Vigil can assess.
            let mut inventory = layer::merge(&[], Some(platform.os.clone()));
            inventory.platform = Some(platform);
            return Ok(inventory);
        }
        let layers = join_all(
            image
                .layers
                .iter()
                .map(|descriptor| self.layer(source, repository, descriptor)),
        )
        .await;
        let mut inventory = layer::merge(&layers, None);
        inventory.platform = Some(platform);
        Ok(inventory)
    }

    /// One layer's inventory: from the cache, from a walk already under way for another image, or by
    /// streaming and walking it now (only for the extractors the cache lacks).
    pub async fn layer(
        &self,
        source: &Source,
        repository: &str,
        descriptor: &OciDescriptor,
    ) -> LayerInventory {
        let digest = match parse_digest(repository, descriptor) {
            Ok(digest) => digest,
            Err(err) => {
                let placeholder = Digest::sha256_of(descriptor.digest.as_bytes());
                let mut failed = LayerInventory::new(placeholder);
                failed.errors.push(err.to_string());
                return failed;
            }
        };
        let cell = {
            let mut in_flight = self.in_flight.lock().expect("in-flight lock");
            in_flight.entry(digest.clone()).or_default().clone()
        };
        cell.get_or_init(|| self.read_layer(source, repository, descriptor, digest))
            .await
            .clone()
    }

    async fn read_layer(
        &self,
        source: &Source,
        repository: &str,
        descriptor: &OciDescriptor,
        digest: Digest,
    ) -> LayerInventory {
        let (mut inventory, missing) = match &self.cache {
            Some(cache) => {
                let lookup = cache.lookup(&digest, self.extractors);
                (lookup.cached, lookup.missing)
            }
            None => (
                LayerInventory::new(digest.clone()),
                self.extractors.to_vec(),
            ),
        };
        if missing.is_empty() {
            self.stats.cached.fetch_add(1, Ordering::Relaxed);
            return inventory;
        }
        let size = u64::try_from(descriptor.size).ok();
        let _walk = self
            .walks
            .acquire()
            .await
            .expect("the walk semaphore is never closed");
        let fresh = match source.blob_stream(repository, &digest, size).await {
            Ok(stream) => {
                self.stats.fetched.fetch_add(1, Ordering::Relaxed);
                layer::walk_stream(
                    stream,
                    &descriptor.media_type,
                    &digest,
                    &missing,
                    &self.limits,
                )
                .await
                .unwrap_or_else(|err| LayerInventory::failed(digest.clone(), &err))
            }
            Err(err) => {
                let mut failed = LayerInventory::new(digest.clone());
                failed.errors.push(err.to_string());
                failed
            }
        };
        if !fresh.errors.is_empty() {
            self.stats.failed.fetch_add(1, Ordering::Relaxed);
        }
        if let Some(cache) = &self.cache {
            if let Err(err) = cache.put(&fresh) {
                // A cache that cannot be written costs speed on the next run, not correctness.
                tracing::warn!(layer = %digest, error = %err, "cannot write the layer cache");
            }
        }
        if !fresh.errors.is_empty() {
            return fresh;
        }
        inventory.absorb(fresh);
        inventory
    }
}

/// Inventories every platform a tag or digest names: selected platforms are read; platforms Vigil cannot
/// assess (windows) get an `unsupported-os` inventory without reading their layers; attestations and
/// platforms the filter leaves out are returned as skipped records.
pub async fn inventory_reference(
    inventorier: &Inventorier,
    source: &Source,
    settings: &RegistrySettings,
    repository: &str,
    reference: &str,
) -> Result<(Vec<Inventory>, Vec<ImageRecord>), RegistryError> {
    let records = resolve_tag(source, settings, repository, reference).await?;
    let mut skipped = Vec::new();
    let mut work = Vec::new();
    for record in records {
        let digest: Digest = record
            .digest
            .parse()
            .map_err(|e: crate::model::DigestError| RegistryError::Invalid {
                what: format!("{repository}:{reference}"),
                message: e.to_string(),
            })?;
        let target = ImageTarget {
            repository: repository.to_string(),
            name: source.image_name(repository, &digest),
            digest,
        };
        match &record.skip_reason {
            None => work.push((target, None)),
            Some(SkipReason::UnsupportedOs(os)) => {
                let platform = record.platform.parse::<Platform>().ok();
                work.push((target, Some((os.clone(), platform))));
            }
            Some(SkipReason::PlatformFiltered | SkipReason::Attestation) => skipped.push(record),
        }
    }
    let inventories = join_all(work.into_iter().map(|(target, unsupported)| async move {
        match unsupported {
            None => inventorier.inventory(source, &target).await,
            Some((os, platform)) => {
                let mut inventory = layer::merge(&[], Some(os));
                inventory.image = target.name.clone();
                inventory.digest = Some(target.digest.clone());
                inventory.platform = platform;
                inventory
            }
        }
    }))
    .await;
    Ok((inventories, skipped))
}

fn parse_digest(what: &str, descriptor: &OciDescriptor) -> Result<Digest, RegistryError> {
    descriptor
        .digest
        .parse()
        .map_err(|e: crate::model::DigestError| RegistryError::Invalid {
            what: what.to_string(),
            message: format!("descriptor: {e}"),
        })
}

/// Why an image named on the command line cannot be used. Causes are part of the message, not sources, so
/// they are printed once.
#[derive(Debug, thiserror::Error)]
pub enum ImageRefError {
    #[error(
        "{0:?}: expected oci:DIR:TAG where DIR holds an OCI image layout (an oci-layout file)"
    )]
    NoLayout(String),
    #[error(
        "{0:?}: expected host[:port]/repository[:tag|@digest] (the registry host is required)"
    )]
    NoHost(String),
    #[error("{text:?}: {error}")]
    Digest {
        text: String,
        error: crate::model::DigestError,
    },
    #[error("{text:?}: invalid repository name {repository:?}")]
    Repository { text: String, repository: String },
    #[error("invalid registry host {host:?}: {error}")]
    Host {
        host: String,
        error: url::ParseError,
    },
}

/// For callers that report per-image failures as text (a named image that fails is a status line, not
/// an aborted run).
impl From<ImageRefError> for String {
    fn from(error: ImageRefError) -> String {
        error.to_string()
    }
}

/// An image named on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageRef {
    /// `host[:port]/repo:tag` or `host[:port]/repo@sha256:...`.
    Registry {
        host: String,
        repository: String,
        reference: String,
    },
    /// `oci:DIR:TAG` (TAG may be `repo:tag`) or `oci:DIR@sha256:...`.
    Layout { dir: PathBuf, reference: String },
}

impl ImageRef {
    /// Parses an image reference. For `oci:` references the directory is the longest prefix that holds an
    /// `oci-layout` file, since both directory names and `repo:tag` names may contain colons.
    pub fn parse(text: &str) -> Result<ImageRef, ImageRefError> {
        if let Some(rest) = text.strip_prefix("oci:") {
            let mut candidates: Vec<usize> =
                rest.match_indices([':', '@']).map(|(i, _)| i).collect();
            candidates.reverse();
            for at in candidates {
                let dir = Path::new(&rest[..at]);
                if dir.join("oci-layout").is_file() {
                    return Ok(ImageRef::Layout {
                        dir: dir.to_path_buf(),
                        reference: rest[at + 1..].to_string(),
                    });
                }
            }
            return Err(ImageRefError::NoLayout(text.to_string()));
        }
        let (host, path) = text
            .split_once('/')
            .filter(|(host, _)| host.contains(['.', ':']) || *host == "localhost")
            .ok_or_else(|| ImageRefError::NoHost(text.to_string()))?;
        let (repository, reference) = if let Some((repository, digest)) = path.split_once('@') {
            digest
                .parse::<Digest>()
                .map_err(|error| ImageRefError::Digest {
                    text: text.to_string(),
                    error,
                })?;
            (repository, digest.to_string())
        } else {
            match path.rsplit_once(':') {
                Some((repository, tag)) if !tag.contains('/') => (repository, tag.to_string()),
                _ => (path, "latest".to_string()),
            }
        };
        let valid_repository = !repository.is_empty()
            && repository.split('/').all(|part| {
                !part.is_empty()
                    && part.bytes().all(|b| {
                        b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b)
                    })
            });
        if !valid_repository {
            return Err(ImageRefError::Repository {
                text: text.to_string(),
                repository: repository.to_string(),
            });
        }
        Ok(ImageRef::Registry {
            host: host.to_string(),
            repository: repository.to_string(),
            reference,
        })
    }

    /// The registry settings to reach this image: a configured registry with the same host (its auth, CA
    /// and limits), else an anonymous one (plain HTTP only with `insecure_http`).
    pub fn registry_settings(
        &self,
        settings: Option<&Settings>,
        insecure_http: bool,
    ) -> Result<RegistrySettings, ImageRefError> {
        match self {
            ImageRef::Layout { dir, .. } => {
                Ok(RegistrySettings::ad_hoc(Endpoint::Layout(dir.clone())))
            }
            ImageRef::Registry { host, .. } => {
                let configured = settings
                    .into_iter()
                    .flat_map(|s| &s.subscriptions)
                    .flat_map(|s| &s.registries)
                    .find(|r| matches!(&r.endpoint, Endpoint::Http(url) if url_host(url) == *host));
                if let Some(registry) = configured {
                    return Ok(registry.clone());
                }
                let scheme = if insecure_http { "http" } else { "https" };
                let url = url::Url::parse(&format!("{scheme}://{host}")).map_err(|error| {
                    ImageRefError::Host {
                        host: host.clone(),
                        error,
                    }
                })?;
                Ok(RegistrySettings::ad_hoc(Endpoint::Http(url)))
            }
        }
    }

    /// The repository and the tag or digest inside the source.
    pub fn repository_and_reference(
        &self,
        layout: Option<&crate::registry::OciLayout>,
    ) -> (String, String) {
        match self {
            ImageRef::Registry {
                repository,
                reference,
                ..
            } => (repository.clone(), reference.clone()),
            ImageRef::Layout { reference, .. } => {
                let default = layout
                    .map(|l| l.default_repository().to_string())
                    .unwrap_or_default();
                // A digest is checked first: it contains a colon too, and split as `repo:tag` it would
                // name a repository `sha256`.
                if reference.parse::<Digest>().is_ok() {
                    return (default, reference.clone());
                }
                match reference.rsplit_once(':') {
                    Some((repository, tag)) if !repository.is_empty() => {
                        (repository.to_string(), tag.to_string())
                    }
                    _ => (default, reference.clone()),
                }
            }
        }
    }
}

fn url_host(url: &url::Url) -> String {
    match url.port() {
        Some(port) => format!("{}:{port}", url.host_str().unwrap_or_default()),
        None => url.host_str().unwrap_or_default().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_registry_references() {
        let digest = format!("sha256:{}", "a".repeat(64));
        let cases = [
            (
                "127.0.0.1:5000/team/app:1.2",
                "127.0.0.1:5000",
                "team/app",
                "1.2",
            ),
            (
                "registry.example.com/app",
                "registry.example.com",
                "app",
                "latest",
            ),
            ("localhost/app:x", "localhost", "app", "x"),
        ];
        for (text, host, repository, reference) in cases {
            assert_eq!(
                ImageRef::parse(text).unwrap(),
                ImageRef::Registry {
                    host: host.into(),
                    repository: repository.into(),
                    reference: reference.into()
                },
                "{text}"
            );
        }
        let with_digest = ImageRef::parse(&format!("r.example:443/a/b@{digest}")).unwrap();
        assert!(matches!(with_digest, ImageRef::Registry { reference, .. } if reference == digest));
        for bad in [
            "app:1",
            "r.example/",
            "r.example/UPPER:1",
            "r.example/a@sha256:zz",
            "oci:/nonexistent:tag",
        ] {
            assert!(ImageRef::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn oci_references_find_the_layout_directory() {
        let dir = tempfile::tempdir().unwrap();
        let layout = dir.path().join("odd:name");
        std::fs::create_dir_all(&layout).unwrap();
        std::fs::write(layout.join("oci-layout"), "{}").unwrap();
        let text = format!("oci:{}:library/debian:12", layout.display());
        assert_eq!(
            ImageRef::parse(&text).unwrap(),
            ImageRef::Layout {
                dir: layout.clone(),
                reference: "library/debian:12".into()
            }
        );
        let parsed = ImageRef::parse(&text).unwrap();
        assert_eq!(
            parsed.repository_and_reference(None),
            ("library/debian".to_string(), "12".to_string())
        );
    }

    #[test]
    fn oci_digest_reference_is_not_read_as_a_sha256_repository() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("oci-layout"), "{}").unwrap();
        let digest = format!("sha256:{}", "b".repeat(64));
        let parsed = ImageRef::parse(&format!("oci:{}@{digest}", dir.path().display())).unwrap();
        assert_eq!(
            parsed,
            ImageRef::Layout {
                dir: dir.path().to_path_buf(),
                reference: digest.clone()
            }
        );
        assert_eq!(
            parsed.repository_and_reference(None),
            (String::new(), digest)
        );
    }
}
