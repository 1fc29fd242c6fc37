//! Scan: one run of the whole pipeline. Crawl the configured registries (or take the images named), inventory
//! every selected image once, match it against the advisory DB, and commit the run to the warehouse.
//!
//! Failures of one registry, tag or image are recorded in the run (as errors and coverage statuses); only a
//! failed warehouse commit fails the scan.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use chrono::Utc;
use futures::{stream, StreamExt};

use crate::config::{Endpoint, RegistrySettings, Settings};
use crate::inventory::{ImageRef, ImageTarget, Inventorier};
use crate::layer;
use crate::matcher::match_inventory;
use crate::model::{CoverageStatus, Digest, Inventory, Platform};
use crate::registry::crawl::resolve_tag;
use crate::registry::{crawl_registry, ImageRecord, Source};
use crate::vulndb::Database;
use crate::warehouse::{self, CommitInfo, CrawledRegistry, ScanRun, ScannedImage, WarehouseError};

/// Images inventoried and matched at once.
const IMAGE_CONCURRENCY: usize = 8;

/// What to scan and how.
#[derive(Debug, Clone, Default)]
pub struct ScanOptions {
    /// Images named on the command line; empty means crawl every configured registry.
    pub images: Vec<String>,
    /// Allow plain HTTP to a named image's registry when it is not in the configuration.
    pub insecure_http: bool,
}

/// What a scan did.
#[derive(Debug)]
pub struct ScanOutcome {
    pub scan_id: String,
    pub commit: CommitInfo,
    pub images_seen: u64,
    pub images_scanned: u64,
    pub images_failed: u64,
    pub errors: Vec<String>,
    pub findings: u64,
    pub layers_fetched: u64,
    pub layers_cached: u64,
}

/// Why a scan could not be committed.
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    #[error("cannot open the layer cache: {0}")]
    Cache(#[from] layer::CacheError),
    #[error("warehouse commit failed: {0}")]
    Commit(#[from] WarehouseError),
    #[error("warehouse commit task failed: {0}")]
    Task(String),
}

/// Reports progress to whoever drives the scan (a progress bar on a terminal, nothing otherwise).
pub trait Progress: Send + Sync {
    /// The number of images to inventory is known.
    fn images(&self, total: u64);
    /// One image is done.
    fn image_done(&self, name: &str);
}

/// A progress sink that shows nothing.
pub struct NoProgress;

impl Progress for NoProgress {
    fn images(&self, _total: u64) {}
    fn image_done(&self, _name: &str) {}
}

/// Each registry of the run, by (subscription, registry), with its connection once made.
type Sources = BTreeMap<(String, String), (Arc<RegistrySettings>, Option<Arc<Source>>)>;

/// One image of one platform, with every tag that names it.
struct Candidate {
    registry: Arc<RegistrySettings>,
    repository: String,
    digest: String,
    platform: String,
    tags: BTreeSet<String>,
    skip_reason: Option<String>,
}

/// Runs one scan and commits it.
pub async fn scan(
    settings: &Settings,
    db: Arc<Database>,
    options: &ScanOptions,
    progress: &dyn Progress,
) -> Result<ScanOutcome, ScanError> {
    let started_at = Utc::now();
    let scan_id = warehouse::new_scan_id(started_at);
    let inventorier = Inventorier::new(Some(&settings.cache))?;
    let mut errors = Vec::new();
    let mut failed_targets = 0u64;

    // Which registries, and which images in them.
    let mut sources: Sources = BTreeMap::new();
    let mut records: Vec<(Arc<RegistrySettings>, ImageRecord)> = Vec::new();
    let mut crawled = Vec::new();
    if options.images.is_empty() {
        for subscription in &settings.subscriptions {
            for registry in &subscription.registries {
                let registry = Arc::new(registry.clone());
                let report = crawl_registry(registry.clone()).await;
                for failure in &report.failures {
                    failed_targets += 1;
                    errors.push(describe_failure(
                        &failure.subscription,
                        &failure.registry,
                        failure.repository.as_deref(),
                        failure.tag.as_deref(),
                        &failure.error,
                    ));
                }
                // Only a crawl that listed everything says which images no longer exist.
                if report.failures.is_empty() {
                    crawled.push(CrawledRegistry {
                        subscription: registry.subscription.clone(),
                        registry: registry.name.clone(),
                        images_seen: report
                            .images
                            .iter()
                            .map(|r| (&r.repository, &r.digest, &r.platform))
                            .collect::<BTreeSet<_>>()
                            .len() as u64,
                    });
                }
                records.extend(report.images.into_iter().map(|r| (registry.clone(), r)));
                sources.insert(
                    (registry.subscription.clone(), registry.name.clone()),
                    (registry, None),
                );
            }
        }
    } else {
        for text in &options.images {
            match resolve_named(settings, options, text, &mut sources).await {
                Ok(found) => records.extend(found),
                Err(message) => {
                    failed_targets += 1;
                    errors.push(format!("{text}: {message}"));
                }
            }
        }
    }

    // One candidate per (registry, repository, digest, platform): tags naming the same image merge.
    let mut candidates: BTreeMap<(String, String, String, String, String), Candidate> =
        BTreeMap::new();
    for (registry, record) in records {
        let key = (
            registry.subscription.clone(),
            registry.name.clone(),
            record.repository.clone(),
            record.digest.clone(),
            record.platform.clone(),
        );
        candidates
            .entry(key)
            .or_insert_with(|| Candidate {
                registry: registry.clone(),
                repository: record.repository.clone(),
                digest: record.digest.clone(),
                platform: record.platform.clone(),
                tags: BTreeSet::new(),
                skip_reason: record.skip_reason.clone(),
            })
            .tags
            .insert(record.tag.clone());
    }
    let images_seen = candidates.len() as u64;
    let to_scan: Vec<Candidate> = candidates
        .into_values()
        .filter(|c| {
            c.skip_reason
                .as_deref()
                .is_none_or(|reason| reason.starts_with("unsupported-os:"))
        })
        .collect();
    progress.images(to_scan.len() as u64);

    // Connect lazily, once per registry, and only to registries with something to scan.
    for candidate in &to_scan {
        let key = (
            candidate.registry.subscription.clone(),
            candidate.registry.name.clone(),
        );
        let entry = sources
            .entry(key)
            .or_insert_with(|| (candidate.registry.clone(), None));
        if entry.1.is_none() {
            match Source::connect(entry.0.clone()).await {
                Ok(source) => entry.1 = Some(Arc::new(source)),
                Err(err) => errors.push(format!(
                    "{}/{}: {err}",
                    candidate.registry.subscription, candidate.registry.name
                )),
            }
        }
    }

    let inventorier = &inventorier;
    let sources = &sources;
    let db_ref = &db;
    let scanned: Vec<ScannedImage> = stream::iter(to_scan)
        .map(|candidate| async move {
            let source = sources
                .get(&(
                    candidate.registry.subscription.clone(),
                    candidate.registry.name.clone(),
                ))
                .and_then(|(_, source)| source.clone());
            let inventory = inventory_candidate(inventorier, source.as_deref(), &candidate).await;
            // Matching one image takes milliseconds: not worth a blocking task.
            let findings = match_inventory(db_ref, &inventory).findings;
            progress.image_done(&inventory.image);
            ScannedImage {
                subscription: candidate.registry.subscription.clone(),
                registry: candidate.registry.name.clone(),
                repository: candidate.repository.clone(),
                tags: candidate.tags.into_iter().collect(),
                digest: candidate.digest,
                platform: candidate.platform,
                inventory,
                findings,
                pushed_at: None,
                last_pulled_at: None,
            }
        })
        .buffer_unordered(IMAGE_CONCURRENCY)
        .collect()
        .await;

    let images_failed = failed_targets
        + scanned
            .iter()
            .filter(|i| i.inventory.coverage.status == CoverageStatus::Failed)
            .count() as u64;
    for image in &scanned {
        if image.inventory.coverage.status == CoverageStatus::Failed {
            errors.push(format!(
                "{}: {}",
                image.inventory.image, image.inventory.coverage.reason
            ));
        }
    }
    let findings: u64 = scanned.iter().map(|i| i.findings.len() as u64).sum();
    let run = ScanRun {
        scan_id: scan_id.clone(),
        started_at,
        finished_at: Utc::now(),
        scanner_version: env!("CARGO_PKG_VERSION").to_string(),
        db_content_hash: db.content_hash().to_string(),
        images_seen,
        images_scanned: scanned.len() as u64,
        images_failed,
        errors: errors.clone(),
        crawled,
        images: scanned,
    };
    let root = settings.warehouse.clone();
    let commit = tokio::task::spawn_blocking(move || {
        let commit = warehouse::commit(&root, &run);
        commit.map(|info| (info, run.images_scanned))
    })
    .await
    .map_err(|e| ScanError::Task(e.to_string()))??;
    let stats = &inventorier.stats;
    Ok(ScanOutcome {
        scan_id,
        commit: commit.0,
        images_seen,
        images_scanned: commit.1,
        images_failed,
        errors,
        findings,
        layers_fetched: stats.fetched.load(std::sync::atomic::Ordering::Relaxed),
        layers_cached: stats.cached.load(std::sync::atomic::Ordering::Relaxed),
    })
}

fn describe_failure(
    subscription: &str,
    registry: &str,
    repository: Option<&str>,
    tag: Option<&str>,
    error: &str,
) -> String {
    let mut place = format!("{subscription}/{registry}");
    if let Some(repository) = repository {
        place.push('/');
        place.push_str(repository);
    }
    if let Some(tag) = tag {
        place.push(':');
        place.push_str(tag);
    }
    format!("{place}: {error}")
}

/// Resolves an image named on the command line to crawl records of its registry.
async fn resolve_named(
    settings: &Settings,
    options: &ScanOptions,
    text: &str,
    sources: &mut Sources,
) -> Result<Vec<(Arc<RegistrySettings>, ImageRecord)>, String> {
    let image = ImageRef::parse(text)?;
    let mut registry = image.registry_settings(Some(settings), options.insecure_http)?;
    if registry.subscription == "adhoc" {
        // An image outside the configuration is filed under its host (or layout folder).
        registry.name = match &registry.endpoint {
            Endpoint::Http(url) => url
                .host_str()
                .map(|host| match url.port() {
                    Some(port) => format!("{host}_{port}"),
                    None => host.to_string(),
                })
                .unwrap_or_else(|| "adhoc".into()),
            Endpoint::Layout(dir) => dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "layout".into()),
        };
    }
    let key = (registry.subscription.clone(), registry.name.clone());
    let (registry, source) = match sources.get(&key) {
        Some((registry, Some(source))) => (registry.clone(), source.clone()),
        _ => {
            let registry = Arc::new(registry);
            let source = Arc::new(
                Source::connect(registry.clone())
                    .await
                    .map_err(|e| e.to_string())?,
            );
            sources.insert(key, (registry.clone(), Some(source.clone())));
            (registry, source)
        }
    };
    let layout = match source.as_ref() {
        Source::Layout(layout) => Some(layout),
        Source::Registry(_) => None,
    };
    let (repository, reference) = image.repository_and_reference(layout);
    let mut found = resolve_tag(&source, &registry, &repository, &reference)
        .await
        .map_err(|e| e.to_string())?;
    if reference.parse::<Digest>().is_ok() {
        // Named by digest: no tag names it.
        for record in &mut found {
            record.tag = String::new();
        }
    }
    Ok(found.into_iter().map(|r| (registry.clone(), r)).collect())
}

/// Inventories a candidate; platforms Vigil cannot assess get their coverage without a layer read.
async fn inventory_candidate(
    inventorier: &Inventorier,
    source: Option<&Source>,
    candidate: &Candidate,
) -> Inventory {
    let platform = candidate.platform.parse::<Platform>().ok();
    let digest = candidate.digest.parse::<Digest>().ok();
    let name = match (source, &digest) {
        (Some(source), Some(digest)) => source.image_name(&candidate.repository, digest),
        _ => format!("{}@{}", candidate.repository, candidate.digest),
    };
    if let Some(os) = candidate
        .skip_reason
        .as_deref()
        .and_then(|r| r.strip_prefix("unsupported-os:"))
    {
        let mut inventory = layer::merge(&[], Some(os.to_string()));
        inventory.image = name;
        inventory.digest = digest;
        inventory.platform = platform;
        return inventory;
    }
    let (Some(source), Some(digest)) = (source, digest) else {
        return failed_inventory(name, platform, "the registry could not be reached".into());
    };
    let target = ImageTarget {
        repository: candidate.repository.clone(),
        digest,
        name,
    };
    inventorier.inventory(source, &target).await
}

fn failed_inventory(name: String, platform: Option<Platform>, reason: String) -> Inventory {
    Inventory {
        image: name,
        digest: None,
        platform,
        os: None,
        packages: Vec::new(),
        coverage: crate::model::Coverage {
            status: CoverageStatus::Failed,
            reason,
        },
    }
}
