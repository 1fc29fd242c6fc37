//! Registry stage: the crawl. Lists every repository, tag and platform of every configured registry.
//!
//! Failures of one registry, repository or tag are recorded as data and the crawl goes on.

use std::sync::Arc;

use futures::{stream, StreamExt};
use serde::Serialize;

use super::error::RegistryError;
use super::manifest::{entry_platform, is_attestation, FetchedManifest, ManifestContent};
use super::source::Source;
use crate::config::{RegistrySettings, Settings};
use crate::model::Digest;
use crate::warehouse::Shard;

/// One image of one platform under one tag.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImageRecord {
    pub subscription: String,
    pub registry: String,
    pub repository: String,
    pub tag: String,
    /// The single-platform manifest's digest.
    pub digest: String,
    pub media_type: String,
    /// `os/arch[/variant]`.
    pub platform: String,
    /// The index this manifest was listed in, when the tag names an index.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub index_digest: Option<String>,
    /// Whether the platform filter selects this image for scanning.
    pub selected: bool,
    /// Why an image is not selected.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skip_reason: Option<SkipReason>,
}

/// Why a listed image is not read from its layers. Displayed (and serialized) as `unsupported-os:OS`,
/// `platform-filtered` or `attestation`, the strings `vigil crawl` prints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SkipReason {
    /// An OS Vigil cannot assess (e.g. `windows`): such an image is still recorded, as `unsupported-os`,
    /// without a layer read.
    UnsupportedOs(String),
    /// Left out by the registry's `platforms` globs.
    PlatformFiltered,
    /// An attestation manifest listed in an index: not an image.
    Attestation,
}

impl std::fmt::Display for SkipReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SkipReason::UnsupportedOs(os) => write!(f, "unsupported-os:{os}"),
            SkipReason::PlatformFiltered => f.write_str("platform-filtered"),
            SkipReason::Attestation => f.write_str("attestation"),
        }
    }
}

impl Serialize for SkipReason {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// A registry, repository or tag that could not be read.
#[derive(Debug, Clone, Serialize)]
pub struct CrawlFailure {
    pub subscription: String,
    pub registry: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repository: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    pub error: String,
}

/// Everything a crawl saw.
#[derive(Debug, Default, Clone, Serialize)]
pub struct CrawlReport {
    pub images: Vec<ImageRecord>,
    pub failures: Vec<CrawlFailure>,
}

/// Crawls every registry of every subscription, registries one after another (each has its own bound).
pub async fn crawl(settings: &Settings) -> CrawlReport {
    let mut report = CrawlReport::default();
    for subscription in &settings.subscriptions {
        for registry in &subscription.registries {
            let part = crawl_registry(Arc::new(registry.clone()), Shard::WHOLE).await;
            report.images.extend(part.images);
            report.failures.extend(part.failures);
        }
    }
    report
}

/// Crawls one registry, or the share of its repositories that falls to `shard`.
pub async fn crawl_registry(settings: Arc<RegistrySettings>, shard: Shard) -> CrawlReport {
    let failure = |repository: Option<&str>, tag: Option<&str>, err: &RegistryError| CrawlFailure {
        subscription: settings.subscription.clone(),
        registry: settings.name.clone(),
        repository: repository.map(str::to_string),
        tag: tag.map(str::to_string),
        error: err.to_string(),
    };
    let mut report = CrawlReport::default();
    let source = match Source::connect(settings.clone()).await {
        Ok(source) => source,
        Err(err) => {
            report.failures.push(failure(None, None, &err));
            return report;
        }
    };
    let repositories = match source.repositories().await {
        Ok(repositories) => repositories,
        Err(err) => {
            report.failures.push(failure(None, None, &err));
            return report;
        }
    };
    let source = &source;
    let settings_ref = &settings;
    let failure = &failure;
    let concurrency = settings.max_concurrency.max(1);
    let per_repository = stream::iter(
        repositories
            .into_iter()
            .filter(|r| settings_ref.wants_repository(r))
            .filter(|r| shard.owns(&settings_ref.subscription, &settings_ref.name, r)),
    )
    .map(|repository| async move {
        let mut part = CrawlReport::default();
        let tags = match source.tags(&repository).await {
            Ok(tags) => tags,
            Err(err) => {
                part.failures.push(failure(Some(&repository), None, &err));
                return part;
            }
        };
        let results: Vec<_> = stream::iter(tags)
            .map(|tag| {
                let repository = repository.clone();
                async move {
                    let result = resolve_tag(source, settings_ref, &repository, &tag).await;
                    (tag, result)
                }
            })
            .buffer_unordered(concurrency)
            .collect()
            .await;
        for (tag, result) in results {
            match result {
                Ok(images) => part.images.extend(images),
                Err(err) => part
                    .failures
                    .push(failure(Some(&repository), Some(&tag), &err)),
            }
        }
        part
    })
    .buffer_unordered(concurrency)
    .collect::<Vec<_>>()
    .await;
    for part in per_repository {
        report.images.extend(part.images);
        report.failures.extend(part.failures);
    }
    report.images.sort_by(|a, b| {
        (&a.repository, &a.tag, &a.platform, &a.digest).cmp(&(
            &b.repository,
            &b.tag,
            &b.platform,
            &b.digest,
        ))
    });
    report
        .failures
        .sort_by(|a, b| (&a.repository, &a.tag).cmp(&(&b.repository, &b.tag)));
    report
}

/// Turns a tag into one record per platform.
pub async fn resolve_tag(
    source: &Source,
    settings: &RegistrySettings,
    repository: &str,
    tag: &str,
) -> Result<Vec<ImageRecord>, RegistryError> {
    let manifest = source.manifest(repository, tag).await?;
    let mut records = Vec::new();
    resolve_manifest(
        source,
        settings,
        repository,
        tag,
        manifest,
        None,
        0,
        &mut records,
    )
    .await?;
    Ok(records)
}

#[allow(clippy::too_many_arguments)]
async fn resolve_manifest(
    source: &Source,
    settings: &RegistrySettings,
    repository: &str,
    tag: &str,
    manifest: FetchedManifest,
    index_digest: Option<&Digest>,
    depth: usize,
    records: &mut Vec<ImageRecord>,
) -> Result<(), RegistryError> {
    let record = |digest: String,
                  media_type: String,
                  platform: String,
                  skip: Option<SkipReason>| ImageRecord {
        subscription: settings.subscription.clone(),
        registry: settings.name.clone(),
        repository: repository.to_string(),
        tag: tag.to_string(),
        digest,
        media_type,
        platform,
        index_digest: index_digest.map(Digest::to_string),
        selected: skip.is_none(),
        skip_reason: skip,
    };
    match manifest.content {
        ManifestContent::Image(image) => {
            let config_digest: Digest =
                image
                    .config
                    .digest
                    .parse()
                    .map_err(|e: crate::model::DigestError| RegistryError::Invalid {
                        what: format!("{repository}:{tag}"),
                        message: format!("config descriptor: {e}"),
                    })?;
            let size = u64::try_from(image.config.size).ok();
            let config = source
                .image_config(repository, &config_digest, size)
                .await?;
            let platform = config.platform().to_string();
            let skip = skip_reason(settings, &config.os, &platform);
            records.push(record(
                manifest.digest.to_string(),
                manifest.media_type,
                platform,
                skip,
            ));
        }
        ManifestContent::Index(index) => {
            for entry in &index.manifests {
                let platform = entry_platform(entry);
                let platform_text = platform.to_string();
                let is_nested_index = entry.media_type
                    == oci_client::manifest::OCI_IMAGE_INDEX_MEDIA_TYPE
                    || entry.media_type == oci_client::manifest::IMAGE_MANIFEST_LIST_MEDIA_TYPE;
                if is_nested_index {
                    if depth >= 2 {
                        return Err(RegistryError::Invalid {
                            what: format!("{repository}:{tag}"),
                            message: "indexes nested more than two deep".into(),
                        });
                    }
                    let nested = Box::pin(source.manifest(repository, &entry.digest)).await?;
                    Box::pin(resolve_manifest(
                        source,
                        settings,
                        repository,
                        tag,
                        nested,
                        Some(&manifest.digest),
                        depth + 1,
                        records,
                    ))
                    .await?;
                    continue;
                }
                let skip = if is_attestation(entry) {
                    Some(SkipReason::Attestation)
                } else {
                    skip_reason(settings, &platform.os, &platform_text)
                };
                records.push(ImageRecord {
                    index_digest: Some(manifest.digest.to_string()),
                    ..record(
                        entry.digest.clone(),
                        entry.media_type.clone(),
                        platform_text,
                        skip,
                    )
                });
            }
        }
    }
    Ok(())
}

/// Why a platform is not scanned, if it is not.
fn skip_reason(settings: &RegistrySettings, os: &str, platform: &str) -> Option<SkipReason> {
    if os != "linux" {
        return Some(SkipReason::UnsupportedOs(os.to_string()));
    }
    (!settings.wants_platform(platform)).then_some(SkipReason::PlatformFiltered)
}

#[cfg(test)]
mod tests {
    use super::SkipReason;

    #[test]
    fn skip_reasons_read_as_vigil_crawl_prints_them() {
        let reasons = [
            (
                SkipReason::UnsupportedOs("windows".into()),
                "unsupported-os:windows",
            ),
            (SkipReason::PlatformFiltered, "platform-filtered"),
            (SkipReason::Attestation, "attestation"),
        ];
        for (reason, text) in reasons {
            assert_eq!(reason.to_string(), text);
            assert_eq!(serde_json::to_value(&reason).unwrap(), text);
        }
    }
}
