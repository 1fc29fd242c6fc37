//! `vigil daemon`: every schedule on its cron, in one process, plus (optionally) the events receiver with
//! scan on push. Runs take the same scope locks as `vigil run`, so a daemon and a timer never overlap.
//! SIGTERM or SIGINT stops it: no new run starts; a run under way is abandoned, which is safe because a
//! commit is atomic (its staged files are invisible and cleaned up later).

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::mpsc;

use crate::config::{Endpoint, Settings};
use crate::events::{self, PushedImage};
use crate::scan::{self, LockedRun, NoProgress, ScanOptions};
use crate::select::Policy;
use crate::vulndb::Database;

/// How long pushes are gathered before their scan starts, so a burst becomes one run.
const PUSH_DEBOUNCE: Duration = Duration::from_secs(2);
/// At most this many pushed images per scan; more wait for the next.
const PUSH_BATCH: usize = 200;

/// One scheduled job as the daemon needs it.
pub struct Job {
    pub name: String,
    /// The next fire time strictly after the given instant.
    pub next_after: Box<dyn Fn(DateTime<Utc>) -> Option<DateTime<Utc>> + Send + Sync>,
    pub options: ScanOptions,
    /// `subscription/registry` names the job covers (its lock scope).
    pub scope: Vec<String>,
}

/// Where the daemon receives registry webhooks.
pub struct Receiver {
    pub listen: SocketAddr,
    pub token: String,
}

fn open_db(settings: &Settings) -> Option<Arc<Database>> {
    match Database::open(&settings.advisory_db) {
        Ok(db) => Some(Arc::new(db)),
        Err(err) => {
            tracing::error!(%err, db = %settings.advisory_db.display(), "no usable advisory DB; run skipped");
            None
        }
    }
}

async fn run_job(settings: &Settings, job: &Job) {
    let Some(db) = open_db(settings) else { return };
    tracing::info!(schedule = %job.name, "run starts");
    match scan::scan_locked(settings, db, &job.options, &job.scope, false, &NoProgress).await {
        Ok(LockedRun::Done(outcome)) => tracing::info!(
            schedule = %job.name, scan = %outcome.scan_id, seen = outcome.images_seen,
            scanned = outcome.images_scanned, failed = outcome.images_failed, findings = outcome.findings,
            "run committed"
        ),
        Ok(LockedRun::Skipped { lock }) => {
            tracing::warn!(schedule = %job.name, lock = %lock, "skipped: already running")
        }
        Err(err) => tracing::error!(schedule = %job.name, %err, "run failed"),
    }
}

/// Whether a push is scanned: the registry that reported it is configured and served over HTTP (a layout
/// folder has no pushes to scan).
fn scans_pushes_of(settings: &Settings, pushed: &PushedImage) -> bool {
    settings
        .subscriptions
        .iter()
        .filter(|s| s.id == pushed.subscription)
        .flat_map(|s| &s.registries)
        .any(|r| r.name == pushed.registry && matches!(r.endpoint, Endpoint::Http(_)))
}

async fn scan_pushes(settings: &Settings, pushes: Vec<PushedImage>) {
    let Some(db) = open_db(settings) else { return };
    let scope: BTreeSet<String> = pushes
        .iter()
        .map(|p| format!("{}/{}", p.subscription, p.registry))
        .collect();
    let options = ScanOptions {
        pushed: pushes,
        policy: Some(Policy::default()),
        schedule: Some("push".into()),
        ..ScanOptions::default()
    };
    let scope: Vec<String> = scope.into_iter().collect();
    // Wait for a scheduled run of the same registries rather than drop the pushes.
    match scan::scan_locked(settings, db, &options, &scope, true, &NoProgress).await {
        Ok(LockedRun::Done(outcome)) => tracing::info!(
            scan = %outcome.scan_id, scanned = outcome.images_scanned, findings = outcome.findings,
            "scan on push committed"
        ),
        Ok(LockedRun::Skipped { .. }) => {}
        Err(err) => tracing::error!(%err, "scan on push failed"),
    }
}

/// Runs until `shutdown` completes.
pub async fn run(
    settings: Settings,
    jobs: Vec<Job>,
    receiver: Option<Receiver>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let (stop_tx, _) = tokio::sync::broadcast::channel::<()>(1);
    let (push_tx, mut push_rx) = mpsc::unbounded_channel::<PushedImage>();
    let mut server = None;
    if let Some(receiver) = receiver {
        let hook_settings = settings.clone();
        let hook: events::PushHook = Box::new(move |pushed| {
            if scans_pushes_of(&hook_settings, &pushed) {
                let _ = push_tx.send(pushed);
            }
        });
        let mut stop = stop_tx.subscribe();
        let bound = events::Server::bind(
            settings.clone(),
            receiver.listen,
            receiver.token,
            Some(hook),
            async move {
                let _ = stop.recv().await;
            },
        )
        .await?;
        eprintln!("listening on {}", bound.addr);
        server = Some(bound);
    } else {
        drop(push_tx);
    }
    let mut shutdown = std::pin::pin!(shutdown);
    let mut pushes_open = server.is_some();
    loop {
        let now = Utc::now();
        let next = jobs
            .iter()
            .filter_map(|job| (job.next_after)(now).map(|at| (at, job)))
            .min_by_key(|(at, _)| *at);
        let sleep = match &next {
            Some((at, _)) => (*at - now).to_std().unwrap_or_default(),
            None => Duration::from_secs(24 * 3600),
        };
        tokio::select! {
            _ = &mut shutdown => break,
            _ = tokio::time::sleep(sleep), if next.is_some() => {
                let fire = next.map(|(at, _)| at).unwrap_or(now);
                // Every job due at this instant runs, one after another.
                for job in jobs.iter().filter(|job| (job.next_after)(now) == Some(fire)) {
                    tokio::select! {
                        _ = &mut shutdown => return stop(stop_tx, server).await,
                        _ = run_job(&settings, job) => {}
                    }
                }
            }
            first = push_rx.recv(), if pushes_open => {
                let Some(first) = first else { pushes_open = false; continue };
                let mut batch = vec![first];
                let deadline = tokio::time::Instant::now() + PUSH_DEBOUNCE;
                while batch.len() < PUSH_BATCH {
                    match tokio::time::timeout_at(deadline, push_rx.recv()).await {
                        Ok(Some(push)) => batch.push(push),
                        _ => break,
                    }
                }
                batch.sort();
                batch.dedup();
                tokio::select! {
                    _ = &mut shutdown => return stop(stop_tx, server).await,
                    _ = scan_pushes(&settings, batch) => {}
                }
            }
        }
    }
    stop(stop_tx, server).await
}

async fn stop(
    stop_tx: tokio::sync::broadcast::Sender<()>,
    server: Option<events::Server>,
) -> std::io::Result<()> {
    let _ = stop_tx.send(());
    if let Some(server) = server {
        server.wait().await;
    }
    Ok(())
}
