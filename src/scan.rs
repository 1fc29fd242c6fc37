//! Scan: one run of the whole pipeline. Crawl the configured registries (or take the images named), inventory
//! every selected image once, match it against the advisory DB, and commit the run to the warehouse.
//!
//! Failures of one registry, tag or image are recorded in the run (as errors and coverage statuses); only a
//! failed warehouse commit fails the scan.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use chrono::Utc;
use futures::{stream, StreamExt};

use crate::config::{Endpoint, RegistryOrigin, RegistrySettings, Settings};
use crate::events::PushedImage;
use crate::inventory::{ImageRef, ImageTarget, Inventorier};
use crate::layer;
use crate::matcher::match_inventory;
use crate::model::{CoverageStatus, Digest, Inventory, Package, Platform};
use crate::registry::crawl::{resolve_tag, SkipReason};
use crate::registry::{crawl_registry, ImageRecord, Source};
use crate::select::{self, History, ImageKey, Policy, StoredImage};
use crate::vulndb::Database;
use crate::warehouse::{
    self, Carried, CommitInfo, CrawledRegistry, RunRecord, ScanRun, ScannedImage, Selection, Shard,
    Warehouse, WarehouseError,
};

/// Images inventoried and matched at once.
const IMAGE_CONCURRENCY: usize = 8;

/// What to scan and how.
#[derive(Debug, Clone)]
pub struct ScanOptions {
    /// Images named on the command line; with `pushed` empty too, every configured registry is crawled.
    pub images: Vec<String>,
    /// Images pushed to configured registries (scan on push), each read from the registry that reported
    /// it (by subscription and name) and filed under it.
    pub pushed: Vec<PushedImage>,
    /// Allow plain HTTP to a named image's registry when it is not in the configuration.
    pub insecure_http: bool,
    /// Crawl only these (subscription, registry) pairs; `None` crawls every configured registry.
    pub registries: Option<BTreeSet<(String, String)>>,
    /// Select images by this policy; `None` looks at every image (`forced`).
    pub policy: Option<Policy>,
    /// The schedule that started the run, recorded in `scans`.
    pub schedule: Option<String>,
    /// Which share of the repositories this process scans (`Shard::WHOLE` when it is alone).
    pub shard: Shard,
    /// The run this process joins; every shard of a run names the same id. `None` starts a run of its own.
    pub run_id: Option<String>,
}

impl Default for ScanOptions {
    fn default() -> ScanOptions {
        ScanOptions {
            images: Vec::new(),
            pushed: Vec::new(),
            insecure_http: false,
            registries: None,
            policy: None,
            schedule: None,
            shard: Shard::WHOLE,
            run_id: None,
        }
    }
}

/// What a scan did.
#[derive(Debug)]
pub struct ScanOutcome {
    pub scan_id: String,
    pub run_id: String,
    pub shard: Shard,
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
    #[error("cannot take the run lock: {0}")]
    Lock(#[source] WarehouseError),
    #[error("cannot read what the warehouse holds: {0}")]
    History(#[source] WarehouseError),
    #[error("cannot start the run: {0}")]
    Join(#[source] WarehouseError),
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
    skip_reason: Option<SkipReason>,
}

/// Runs one scan and commits it. The steps, in pipeline order: gather the images (a crawl, or the images
/// named or pushed), plan what to do with each, load the stored packages of those re-matched, connect to the
/// registries whose layers are read, inventory and match every image, assemble the run, commit it.
pub async fn scan(
    settings: &Settings,
    db: Arc<Database>,
    options: &ScanOptions,
    progress: &dyn Progress,
) -> Result<ScanOutcome, ScanError> {
    let store = settings.open_warehouse().map_err(ScanError::Join)?;
    // Every shard of a run takes its scan id and start time from the run's record.
    let record = warehouse::commit::join_run(
        &store,
        options.run_id.as_deref(),
        options.shard.count,
        Utc::now(),
    )
    .await
    .map_err(ScanError::Join)?;
    let (scan_id, started_at) = (record.scan_id.clone(), record.started_at);
    let inventorier = Inventorier::new(Some(&settings.cache))?;

    let Gathered {
        mut sources,
        records,
        crawled,
        mut errors,
        failed_targets,
    } = gather(settings, options).await;
    let candidates = merge_tags(records);
    let images_seen = candidates.len() as u64;

    // What the warehouse holds decides the selection, and its activity gives push and pull times.
    let history = select::load_history(&store)
        .await
        .map_err(ScanError::History)?;
    let (plan, deferred) = plan(
        scannable(candidates),
        &history,
        options.policy.as_ref(),
        started_at,
    );
    let stored = load_stored_packages(&store, &plan).await?;
    progress.images(
        plan.iter()
            .filter(|p| p.selection != Selection::Carried)
            .count() as u64,
    );
    connect(&plan, &stored, &mut sources, &mut errors).await;

    let context = Evaluation {
        inventorier: &inventorier,
        sources: &sources,
        db: &db,
        stored: &stored,
        history: &history,
        progress,
    };
    let scanned: Vec<ScannedImage> = stream::iter(plan)
        .map(|planned| evaluate(planned, &context))
        .buffer_unordered(IMAGE_CONCURRENCY)
        .collect()
        .await;

    let run = assemble_run(
        scan_id,
        started_at,
        &db,
        options,
        Assembled {
            images_seen,
            failed_targets,
            errors,
            deferred,
            crawled,
            scanned,
        },
    );
    let outcome_base = summarize(&run, &record, options.shard);
    let commit = warehouse::commit::commit_shard(&store, &record, options.shard, &run).await?;
    let stats = &inventorier.stats;
    Ok(ScanOutcome {
        commit,
        layers_fetched: stats.fetched.load(std::sync::atomic::Ordering::Relaxed),
        layers_cached: stats.cached.load(std::sync::atomic::Ordering::Relaxed),
        ..outcome_base
    })
}

/// Where a run starts: every image listed (by a crawl, by name or by a push), the registries they are in, and what
/// could not be listed.
#[derive(Default)]
struct Gathered {
    sources: Sources,
    records: Vec<(Arc<RegistrySettings>, ImageRecord)>,
    /// The registries listed in full (their missing images no longer exist).
    crawled: Vec<CrawledRegistry>,
    errors: Vec<String>,
    /// Registries, repositories, tags and named images that could not be listed.
    failed_targets: u64,
}

/// Step 1: the images of the run, from a crawl of the configured registries in scope, or from the images
/// named and pushed.
async fn gather(settings: &Settings, options: &ScanOptions) -> Gathered {
    let mut gathered = Gathered::default();
    if options.images.is_empty() && options.pushed.is_empty() {
        for registry in settings.subscriptions.iter().flat_map(|s| &s.registries) {
            let in_scope = options.registries.as_ref().is_none_or(|scope| {
                scope.contains(&(registry.subscription.clone(), registry.name.clone()))
            });
            if in_scope {
                crawl_into(Arc::new(registry.clone()), options.shard, &mut gathered).await;
            }
        }
        return gathered;
    }
    for text in &options.images {
        let found = resolve_named(settings, options, text, &mut gathered.sources).await;
        gathered.add(text, found);
    }
    for pushed in &options.pushed {
        let found = resolve_pushed(settings, pushed, &mut gathered.sources).await;
        let name = format!(
            "{}/{}/{}@{}",
            pushed.subscription, pushed.registry, pushed.repository, pushed.digest
        );
        gathered.add(&name, found);
    }
    // A shard scans only its repositories' images, whoever named them.
    let shard = options.shard;
    gathered.records.retain(|(registry, record)| {
        shard.owns(&registry.subscription, &registry.name, &record.repository)
    });
    gathered
}

impl Gathered {
    /// Adds the records of an image named or pushed, or why it could not be resolved.
    fn add(
        &mut self,
        name: &str,
        found: Result<Vec<(Arc<RegistrySettings>, ImageRecord)>, String>,
    ) {
        match found {
            Ok(found) => self.records.extend(found),
            Err(message) => {
                self.failed_targets += 1;
                self.errors.push(format!("{name}: {message}"));
            }
        }
    }
}

/// Crawls one registry into `gathered`.
async fn crawl_into(registry: Arc<RegistrySettings>, shard: Shard, gathered: &mut Gathered) {
    let report = crawl_registry(registry.clone(), shard).await;
    for failure in &report.failures {
        gathered.failed_targets += 1;
        gathered.errors.push(describe_failure(
            &failure.subscription,
            &failure.registry,
            failure.repository.as_deref(),
            failure.tag.as_deref(),
            &failure.error,
        ));
    }
    // Only a crawl that listed everything says which images no longer exist.
    if report.failures.is_empty() {
        gathered.crawled.push(CrawledRegistry {
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
    gathered
        .records
        .extend(report.images.into_iter().map(|r| (registry.clone(), r)));
    gathered.sources.insert(
        (registry.subscription.clone(), registry.name.clone()),
        (registry, None),
    );
}

/// Step 2a: one candidate per image (registry, repository, digest, platform), with every tag naming it.
fn merge_tags(records: Vec<(Arc<RegistrySettings>, ImageRecord)>) -> Vec<Candidate> {
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
    candidates.into_values().collect()
}

/// Step 2b: the candidates a run assesses: selected platforms, and those of an OS Vigil cannot assess
/// (recorded as such); filtered platforms and attestations are left out.
fn scannable(candidates: Vec<Candidate>) -> Vec<Candidate> {
    candidates
        .into_iter()
        .filter(|c| matches!(c.skip_reason, None | Some(SkipReason::UnsupportedOs(_))))
        .collect()
}

/// Step 3: the stored packages of the images re-matched from the warehouse.
async fn load_stored_packages(
    store: &Warehouse,
    plan: &[Planned],
) -> Result<HashMap<ImageKey, Vec<Package>>, ScanError> {
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
    select::stored_packages(store, &rematch)
        .await
        .map_err(ScanError::History)
}

/// Step 4: connect, once per registry, to the registries with layers to read (and no others).
async fn connect(
    plan: &[Planned],
    stored: &HashMap<ImageKey, Vec<Package>>,
    sources: &mut Sources,
    errors: &mut Vec<String>,
) {
    for planned in plan.iter().filter(|p| reads_layers(p, stored)) {
        let registry = &planned.candidate.registry;
        let entry = sources
            .entry((registry.subscription.clone(), registry.name.clone()))
            .or_insert_with(|| (registry.clone(), None));
        if entry.1.is_none() {
            match Source::connect(entry.0.clone()).await {
                Ok(source) => entry.1 = Some(Arc::new(source)),
                Err(err) => errors.push(format!(
                    "{}/{}: {err}",
                    registry.subscription, registry.name
                )),
            }
        }
    }
}

/// What evaluating an image needs, shared by the images evaluated at once.
struct Evaluation<'a> {
    inventorier: &'a Inventorier,
    sources: &'a Sources,
    db: &'a Database,
    stored: &'a HashMap<ImageKey, Vec<Package>>,
    history: &'a History,
    progress: &'a dyn Progress,
}

/// Step 5: one image's assessment. A carried image keeps its previous one; a re-matched image's stored
/// inventory is matched again without fetching a layer; any other image is read from its layers.
async fn evaluate(planned: Planned, context: &Evaluation<'_>) -> ScannedImage {
    let layers = reads_layers(&planned, context.stored);
    let Planned {
        key,
        candidate,
        selection,
        previous,
    } = planned;
    let activity_key = key.activity_key();
    let mut image = ScannedImage {
        subscription: key.subscription.clone(),
        registry: key.registry.clone(),
        repository: candidate.repository.clone(),
        tags: candidate.tags.iter().cloned().collect(),
        digest: candidate.digest.clone(),
        platform: candidate.platform.clone(),
        inventory: failed_inventory(String::new(), None, String::new()),
        findings: Vec::new(),
        pushed_at: context.history.pushes.get(&activity_key).copied(),
        last_pulled_at: context.history.pulls.get(&activity_key).copied(),
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
            let packages = context.stored.get(&key).cloned().unwrap_or_default();
            image.inventory = stored_inventory(&candidate, &previous, packages);
            image.inventory_scan_id = Some(previous.inventory_scan_id);
        }
        _ => {
            let source = context
                .sources
                .get(&(key.subscription.clone(), key.registry.clone()))
                .and_then(|(_, source)| source.clone());
            image.inventory =
                inventory_candidate(context.inventorier, source.as_deref(), &candidate).await;
        }
    }
    // Matching one image takes milliseconds: not worth a blocking task.
    image.findings = match_inventory(context.db, &image.inventory).findings;
    context.progress.image_done(&image.inventory.image);
    image
}

/// What a run found, before it is a [`ScanRun`].
struct Assembled {
    images_seen: u64,
    failed_targets: u64,
    errors: Vec<String>,
    deferred: u64,
    crawled: Vec<CrawledRegistry>,
    scanned: Vec<ScannedImage>,
}

/// Step 6: the run as it is committed; every image that could not be read adds its error.
fn assemble_run(
    scan_id: String,
    started_at: chrono::DateTime<Utc>,
    db: &Database,
    options: &ScanOptions,
    assembled: Assembled,
) -> ScanRun {
    let Assembled {
        images_seen,
        failed_targets,
        mut errors,
        deferred,
        crawled,
        scanned,
    } = assembled;
    let failed: Vec<&ScannedImage> = scanned
        .iter()
        .filter(|i| i.inventory.coverage.status == CoverageStatus::Failed)
        .collect();
    for image in &failed {
        errors.push(format!(
            "{}: {}",
            image.inventory.image, image.inventory.coverage.reason
        ));
    }
    ScanRun {
        scan_id,
        started_at,
        finished_at: Utc::now(),
        scanner_version: env!("CARGO_PKG_VERSION").to_string(),
        db_content_hash: db.content_hash().to_string(),
        images_seen,
        images_scanned: scanned.len() as u64,
        images_failed: failed_targets + failed.len() as u64,
        errors,
        schedule: options.schedule.clone(),
        deferred,
        crawled,
        images: scanned,
    }
}

/// What the outcome reports of a run (the commit and layer counts are filled in after the commit).
fn summarize(run: &ScanRun, record: &RunRecord, shard: Shard) -> ScanOutcome {
    let mut selected = BTreeMap::new();
    for image in &run.images {
        *selected.entry(image.selection.as_str()).or_insert(0) += 1;
    }
    ScanOutcome {
        scan_id: run.scan_id.clone(),
        run_id: record.run_id.clone(),
        shard,
        commit: CommitInfo::default(),
        images_seen: run.images_seen,
        images_scanned: run.images_scanned,
        images_failed: run.images_failed,
        errors: run.errors.clone(),
        findings: run.images.iter().map(|i| i.findings.len() as u64).sum(),
        layers_fetched: 0,
        layers_cached: 0,
        selected,
        deferred: run.deferred,
    }
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
fn reads_layers(planned: &Planned, stored: &HashMap<ImageKey, Vec<Package>>) -> bool {
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
    packages: Vec<Package>,
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
    if registry.origin == RegistryOrigin::AdHoc {
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
    let (registry, source) = connected(sources, registry).await?;
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

/// Resolves an image pushed to a configured registry: the registry named by the push's subscription and
/// name (never another registry on the same host), the image by its digest.
async fn resolve_pushed(
    settings: &Settings,
    pushed: &PushedImage,
    sources: &mut Sources,
) -> Result<Vec<(Arc<RegistrySettings>, ImageRecord)>, String> {
    let registry = settings
        .subscriptions
        .iter()
        .filter(|s| s.id == pushed.subscription)
        .flat_map(|s| &s.registries)
        .find(|r| r.name == pushed.registry)
        .ok_or("no such registry in the configuration")?;
    let (registry, source) = connected(sources, registry.clone()).await?;
    let mut found = resolve_tag(&source, &registry, &pushed.repository, &pushed.digest)
        .await
        .map_err(|e| e.to_string())?;
    // Named by digest: no tag names it.
    for record in &mut found {
        record.tag = String::new();
    }
    Ok(found.into_iter().map(|r| (registry.clone(), r)).collect())
}

/// The connection to a registry: the one made earlier in this run, or a new one (remembered).
async fn connected(
    sources: &mut Sources,
    registry: RegistrySettings,
) -> Result<(Arc<RegistrySettings>, Arc<Source>), String> {
    let key = (registry.subscription.clone(), registry.name.clone());
    if let Some((registry, Some(source))) = sources.get(&key) {
        return Ok((registry.clone(), source.clone()));
    }
    let registry = Arc::new(registry);
    let source = Arc::new(
        Source::connect(registry.clone())
            .await
            .map_err(|e| e.to_string())?,
    );
    sources.insert(key, (registry.clone(), Some(source.clone())));
    Ok((registry, source))
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
    if let Some(SkipReason::UnsupportedOs(os)) = &candidate.skip_reason {
        let mut inventory = layer::merge(&[], Some(os.clone()));
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
        lock: String,
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
    let store = settings.open_warehouse().map_err(ScanError::Join)?;
    // Shards of one run work side by side: each holds the lock of its own share.
    let mut keys = scope.to_vec();
    if options.shard.count > 1 {
        keys.push(format!(
            "shard {}/{}",
            options.shard.index, options.shard.count
        ));
    }
    let lock = warehouse::RunLock::acquire(&store, &keys, wait)
        .await
        .map_err(ScanError::Lock)?;
    let Some(lock) = lock else {
        let lock = warehouse::RunLock::describe(&store, &keys);
        return Ok(LockedRun::Skipped { lock });
    };
    let outcome = scan(settings, db, options, progress).await;
    lock.release().await;
    Ok(LockedRun::Done(Box::new(outcome?)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Coverage;
    use crate::select::ActivityKey;
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

    fn registry() -> Arc<RegistrySettings> {
        Arc::new(RegistrySettings::ad_hoc(Endpoint::Layout(
            "/nowhere".into(),
        )))
    }

    fn candidate(registry: &Arc<RegistrySettings>, repository: &str) -> Candidate {
        Candidate {
            registry: registry.clone(),
            repository: repository.into(),
            digest: format!("sha256:{repository}"),
            platform: "linux/amd64".into(),
            tags: BTreeSet::new(),
            skip_reason: None,
        }
    }

    fn stored() -> StoredImage {
        StoredImage {
            findings_scan_id: "s1".into(),
            inventory_scan_id: "s1".into(),
            package_count: 3,
            counts: Some(FindingCounts::default()),
            coverage: Coverage {
                status: CoverageStatus::Complete,
                reason: String::new(),
            },
            os: None,
        }
    }

    fn now() -> chrono::DateTime<Utc> {
        "2026-12-01T12:00:00Z".parse().unwrap()
    }

    fn hours_ago(hours: i64) -> chrono::DateTime<Utc> {
        now() - chrono::Duration::hours(hours)
    }

    /// The key of a candidate, and of its digest's activity.
    fn keys(candidate: &Candidate) -> (ImageKey, ActivityKey) {
        let key = ImageKey {
            subscription: candidate.registry.subscription.clone(),
            registry: candidate.registry.name.clone(),
            repository: candidate.repository.clone(),
            digest: candidate.digest.clone(),
            platform: candidate.platform.clone(),
        };
        let activity = key.activity_key();
        (key, activity)
    }

    /// The planned repositories with their selections, in plan order.
    fn planned(plan: &[Planned]) -> Vec<(&str, Selection)> {
        plan.iter()
            .map(|p| (p.candidate.repository.as_str(), p.selection))
            .collect()
    }

    #[test]
    fn max_images_keeps_the_oldest_pushes_and_defers_the_rest_unknown_push_times_last() {
        let registry = registry();
        let mut history = History::default();
        let pushed = [("a", Some(3)), ("b", Some(1)), ("c", None), ("d", Some(2))];
        for (repository, hours) in pushed {
            if let Some(hours) = hours {
                let (_, activity) = keys(&candidate(&registry, repository));
                history.pushes.insert(activity, hours_ago(hours));
            }
        }
        let candidates = || Vec::from(pushed.map(|(r, _)| candidate(&registry, r)));
        let policy = |max_images| Policy {
            max_images,
            ..Policy::default()
        };
        let (images, deferred) = plan(candidates(), &history, Some(&policy(Some(2))), now());
        assert_eq!(
            planned(&images),
            [("a", Selection::New), ("d", Selection::New)]
        );
        assert_eq!(deferred, 2);
        let (images, deferred) = plan(candidates(), &history, Some(&policy(Some(3))), now());
        assert_eq!(
            planned(&images).iter().map(|p| p.0).collect::<Vec<_>>(),
            ["a", "d", "b"]
        );
        assert_eq!(deferred, 1);
        let (images, deferred) = plan(candidates(), &history, Some(&policy(None)), now());
        assert_eq!(
            planned(&images).iter().map(|p| p.0).collect::<Vec<_>>(),
            ["a", "d", "b", "c"],
            "unknown push times last"
        );
        assert_eq!(deferred, 0);
    }

    #[test]
    fn known_images_are_rematched_within_the_windows_and_carried_outside() {
        let registry = registry();
        let mut history = History::default();
        // (repository, pulled hours ago, pushed hours ago)
        let activity = [
            ("pulled-recently", Some(1), None),
            ("pulled-long-ago", Some(48), None),
            ("pushed-recently", None, Some(30)),
            ("pushed-long-ago", None, Some(24 * 10)),
            ("both", Some(2), Some(2)),
            ("quiet", None, None),
        ];
        for (repository, pulled, pushed) in activity {
            let (key, activity) = keys(&candidate(&registry, repository));
            history.previous.insert(key, stored());
            if let Some(hours) = pulled {
                history.pulls.insert(activity.clone(), hours_ago(hours));
            }
            if let Some(hours) = pushed {
                history.pushes.insert(activity, hours_ago(hours));
            }
        }
        let policy = Policy {
            new_images: true,
            pulled_within: Some(chrono::Duration::days(1)),
            pushed_within: Some(chrono::Duration::days(7)),
            max_images: Some(0),
        };
        let candidates = Vec::from(activity.map(|(r, _, _)| candidate(&registry, r)));
        let (images, deferred) = plan(candidates, &history, Some(&policy), now());
        assert_eq!(
            planned(&images),
            [
                ("pulled-recently", Selection::Pulled),
                ("pulled-long-ago", Selection::Carried),
                ("pushed-recently", Selection::Pushed),
                ("pushed-long-ago", Selection::Carried),
                ("both", Selection::Pulled),
                ("quiet", Selection::Carried),
            ]
        );
        assert_eq!(deferred, 0, "max_images bounds new images only");
        assert!(images.iter().all(|p| p.previous.is_some()));
    }

    #[test]
    fn without_a_policy_every_image_is_forced() {
        let registry = registry();
        let mut history = History::default();
        let known = candidate(&registry, "known");
        history.previous.insert(keys(&known).0, stored());
        let candidates = vec![known, candidate(&registry, "new")];
        let (images, deferred) = plan(candidates, &history, None, now());
        assert_eq!(
            planned(&images),
            [("known", Selection::Forced), ("new", Selection::Forced)]
        );
        assert_eq!(deferred, 0);
        assert!(images[0].previous.is_some() && images[1].previous.is_none());
    }

    #[test]
    fn new_images_false_leaves_new_digests_out_without_deferring_them() {
        let registry = registry();
        let mut history = History::default();
        let known = candidate(&registry, "known");
        history.previous.insert(keys(&known).0, stored());
        let candidates = vec![candidate(&registry, "new"), known];
        let policy = Policy {
            new_images: false,
            ..Policy::default()
        };
        let (images, deferred) = plan(candidates, &history, Some(&policy), now());
        assert_eq!(planned(&images), [("known", Selection::Carried)]);
        assert_eq!(deferred, 0);
    }
}
