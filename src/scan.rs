//! Scan: one run of the whole pipeline. Crawl the configured registries (or take the images named), inventory
//! every selected image once, match it against the advisory DB, and commit the run to the warehouse.
//!
//! Failures of one registry, tag or image are recorded in the run (as errors and coverage statuses); only a
//! failed warehouse commit fails the scan.

use std::collections::{BTreeMap, BTreeSet, HashMap};
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
use crate::select::{self, History, ImageKey, Policy, StoredImage};
use crate::vulndb::Database;
use crate::warehouse::{
    self, Carried, CommitInfo, CrawledRegistry, ScanRun, ScannedImage, Selection, WarehouseError,
};

/// Images inventoried and matched at once.
const IMAGE_CONCURRENCY: usize = 8;

/// What to scan and how.
#[derive(Debug, Clone, Default)]
pub struct ScanOptions {
    /// Images named on the command line; empty means crawl every configured registry.
    pub images: Vec<String>,
    /// Allow plain HTTP to a named image's registry when it is not in the configuration.
    pub insecure_http: bool,
    /// Crawl only these (subscription, registry) pairs; `None` crawls every configured registry.
    pub registries: Option<BTreeSet<(String, String)>>,
    /// Select images by this policy; `None` looks at every image (`forced`).
    pub policy: Option<Policy>,
    /// The schedule that started the run, recorded in `scans`.
    pub schedule: Option<String>,
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
    /// Images by why they were looked at (carried ones were not).
    pub selected: BTreeMap<&'static str, u64>,
    pub deferred: u64,
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
    #[error("cannot read what the warehouse holds: {0}")]
    History(#[source] WarehouseError),
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
                let in_scope = options.registries.as_ref().is_none_or(|scope| {
                    scope.contains(&(registry.subscription.clone(), registry.name.clone()))
                });
                if !in_scope {
                    continue;
                }
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
    let mut candidates: BTreeMap<ImageKey, Candidate> = BTreeMap::new();
    for (registry, record) in records {
        let key = ImageKey {
            subscription: registry.subscription.clone(),
            registry: registry.name.clone(),
            repository: record.repository.clone(),
            digest: record.digest.clone(),
            platform: record.platform.clone(),
        };
        let candidate = candidates.entry(key).or_insert_with(|| Candidate {
            registry: registry.clone(),
            repository: record.repository.clone(),
            digest: record.digest.clone(),
            platform: record.platform.clone(),
            tags: BTreeSet::new(),
            skip_reason: record.skip_reason.clone(),
        });
        // An image named by digest has no tag.
        if !record.tag.is_empty() {
            candidate.tags.insert(record.tag);
        }
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
    // What the warehouse holds decides the selection, and its activity gives push and pull times.
    let history = select::load_history(&settings.warehouse)
        .await
        .map_err(ScanError::History)?;
    let (plan, deferred) = plan(to_scan, &history, options.policy.as_ref(), started_at);
    let rematch: Vec<(ImageKey, String)> = plan
        .iter()
        .filter(|p| matches!(p.selection, Selection::Pulled | Selection::Pushed))
        .filter_map(|p| {
            Some((
                p.key.clone(),
                p.previous.as_ref()?.inventory_scan_id.clone(),
            ))
        })
        .collect();
    let stored = select::stored_packages(&settings.warehouse, &rematch)
        .await
        .map_err(ScanError::History)?;
    progress.images(
        plan.iter()
            .filter(|p| p.selection != Selection::Carried)
            .count() as u64,
    );

    // Connect lazily, once per registry, and only to registries with layers to read.
    for planned in plan.iter().filter(|p| reads_layers(p, &stored)) {
        let candidate = &planned.candidate;
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
    let stored = &stored;
    let history = &history;
    let scanned: Vec<ScannedImage> = stream::iter(plan)
        .map(|planned| async move {
            let layers = reads_layers(&planned, stored);
            let Planned {
                key,
                candidate,
                selection,
                previous,
            } = planned;
            let subscription = candidate.registry.subscription.clone();
            let registry = candidate.registry.name.clone();
            let activity_key = key.activity_key();
            let mut image = ScannedImage {
                subscription,
                registry,
                repository: candidate.repository.clone(),
                tags: candidate.tags.iter().cloned().collect(),
                digest: candidate.digest.clone(),
                platform: candidate.platform.clone(),
                inventory: failed_inventory(String::new(), None, String::new()),
                findings: Vec::new(),
                pushed_at: history.pushes.get(&activity_key).copied(),
                last_pulled_at: history.pulls.get(&activity_key).copied(),
                selection,
                inventory_scan_id: None,
                carried: None,
            };
            match previous {
                Some(previous) if selection == Selection::Carried => {
                    image.inventory = stored_inventory(&candidate, &previous, Vec::new());
                    image.inventory_scan_id = Some(previous.inventory_scan_id.clone());
                    image.carried = Some(Carried {
                        findings_scan_id: previous.findings_scan_id,
                        package_count: previous.package_count,
                        counts: previous.counts.unwrap_or_default(),
                    });
                    return image;
                }
                Some(previous) if !layers => {
                    // Re-matched from the stored inventory: not a single layer is fetched.
                    let packages = stored.get(&key).cloned().unwrap_or_default();
                    image.inventory = stored_inventory(&candidate, &previous, packages);
                    image.inventory_scan_id = Some(previous.inventory_scan_id);
                }
                _ => {
                    let source = sources
                        .get(&(
                            candidate.registry.subscription.clone(),
                            candidate.registry.name.clone(),
                        ))
                        .and_then(|(_, source)| source.clone());
                    image.inventory =
                        inventory_candidate(inventorier, source.as_deref(), &candidate).await;
                }
            }
            // Matching one image takes milliseconds: not worth a blocking task.
            image.findings = match_inventory(db_ref, &image.inventory).findings;
            progress.image_done(&image.inventory.image);
            image
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
    let mut selected = BTreeMap::new();
    for image in &scanned {
        *selected.entry(image.selection.as_str()).or_insert(0) += 1;
    }
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
        schedule: options.schedule.clone(),
        deferred,
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
        selected,
        deferred,
    })
}

/// One candidate with why it is looked at and what the warehouse knows of it.
struct Planned {
    key: ImageKey,
    candidate: Candidate,
    selection: Selection,
    previous: Option<StoredImage>,
}

/// Whether a planned image is read from its layers: new and forced ones, and re-matches whose stored
/// inventory is missing.
fn reads_layers(planned: &Planned, stored: &HashMap<ImageKey, Vec<crate::model::Package>>) -> bool {
    match (&planned.previous, planned.selection) {
        (Some(_), Selection::Carried) => false,
        (Some(previous), Selection::Pulled | Selection::Pushed) => {
            previous.package_count > 0 && !stored.contains_key(&planned.key)
        }
        _ => true,
    }
}

/// What a run with a policy does with an image scanned before: re-match it when it was pulled or pushed
/// within the policy's windows, carry its assessment otherwise.
fn known_image(previous: &StoredImage, pulled: bool, pushed: bool) -> Selection {
    if pulled {
        Selection::Pulled
    } else if pushed {
        Selection::Pushed
    } else if previous.counts.is_none() {
        // Stored before Vigil kept per-severity counts: nothing to carry, so it is evaluated again.
        Selection::Forced
    } else {
        Selection::Carried
    }
}

/// Decides what the run does with each candidate under `policy`; returns the plan and how many new images
/// were left for a later run.
fn plan(
    candidates: Vec<Candidate>,
    history: &History,
    policy: Option<&Policy>,
    now: chrono::DateTime<Utc>,
) -> (Vec<Planned>, u64) {
    let within = |window: Option<chrono::Duration>, at: Option<&chrono::DateTime<Utc>>| matches!((window, at), (Some(window), Some(at)) if now - *at <= window);
    let mut planned = Vec::new();
    let mut new = Vec::new();
    for candidate in candidates {
        let key = ImageKey {
            subscription: candidate.registry.subscription.clone(),
            registry: candidate.registry.name.clone(),
            repository: candidate.repository.clone(),
            digest: candidate.digest.clone(),
            platform: candidate.platform.clone(),
        };
        let activity = key.activity_key();
        let previous = history.previous.get(&key).cloned();
        let selection = match (policy, &previous) {
            (None, _) => Selection::Forced,
            (Some(policy), None) => {
                if policy.new_images {
                    let pushed = history.pushes.get(&activity).copied();
                    new.push((pushed, key, candidate));
                }
                continue;
            }
            (Some(policy), Some(previous)) => known_image(
                previous,
                within(policy.pulled_within, history.pulls.get(&activity)),
                within(policy.pushed_within, history.pushes.get(&activity)),
            ),
        };
        planned.push(Planned {
            key,
            candidate,
            selection,
            previous,
        });
    }
    // New images wait their turn oldest push first (unknown push times last, in crawl order).
    new.sort_by_key(|(pushed, _, _)| (pushed.is_none(), *pushed));
    let limit = policy.and_then(|p| p.max_images).unwrap_or(usize::MAX);
    let deferred = new.len().saturating_sub(limit) as u64;
    for (_, key, candidate) in new.into_iter().take(limit) {
        planned.push(Planned {
            key,
            candidate,
            selection: Selection::New,
            previous: None,
        });
    }
    (planned, deferred)
}

/// An inventory rebuilt from what the warehouse stored of an image.
fn stored_inventory(
    candidate: &Candidate,
    previous: &StoredImage,
    packages: Vec<crate::model::Package>,
) -> Inventory {
    Inventory {
        image: format!(
            "{}/{}/{}@{}",
            candidate.registry.subscription,
            candidate.registry.name,
            candidate.repository,
            candidate.digest
        ),
        digest: candidate.digest.parse().ok(),
        platform: candidate.platform.parse().ok(),
        os: previous.os.clone(),
        packages,
        coverage: previous.coverage.clone(),
    }
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

/// What a locked run did.
#[derive(Debug)]
pub enum LockedRun {
    Done(Box<ScanOutcome>),
    /// Another run of the same scope holds the lock.
    Skipped {
        lock: std::path::PathBuf,
    },
}

/// Runs one scan while holding the run lock of its scope (`subscription/registry` names), so two runs
/// over the same registries never overlap: without `wait`, a run that finds the lock taken is skipped.
pub async fn scan_locked(
    settings: &Settings,
    db: Arc<Database>,
    options: &ScanOptions,
    scope: &[String],
    wait: bool,
    progress: &dyn Progress,
) -> Result<LockedRun, ScanError> {
    let root = settings.warehouse.clone();
    let keys = scope.to_vec();
    let lock = tokio::task::spawn_blocking(move || warehouse::RunLock::acquire(&root, &keys, wait))
        .await
        .map_err(|e| ScanError::Task(e.to_string()))??;
    let Some(lock) = lock else {
        let lock = warehouse::RunLock::path_for(&settings.warehouse, scope);
        return Ok(LockedRun::Skipped { lock });
    };
    let outcome = scan(settings, db, options, progress).await;
    drop(lock);
    Ok(LockedRun::Done(Box::new(outcome?)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Coverage;
    use crate::warehouse::FindingCounts;

    #[test]
    fn images_without_stored_counts_are_evaluated_again_instead_of_carried() {
        let mut previous = StoredImage {
            findings_scan_id: "s1".into(),
            inventory_scan_id: "s1".into(),
            package_count: 3,
            counts: Some(FindingCounts::default()),
            coverage: Coverage {
                status: CoverageStatus::Complete,
                reason: String::new(),
            },
            os: None,
        };
        assert_eq!(known_image(&previous, false, false), Selection::Carried);
        assert_eq!(known_image(&previous, true, false), Selection::Pulled);
        assert_eq!(known_image(&previous, false, true), Selection::Pushed);
        previous.counts = None;
        assert_eq!(known_image(&previous, false, false), Selection::Forced);
    }
}
