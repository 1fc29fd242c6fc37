//! `vigil scan` and `vigil demo`: the whole pipeline into the warehouse.

use std::collections::BTreeMap;
use std::io::IsTerminal as _;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use vigil::cli::{CommitArgs, DemoArgs, ScanArgs};
use vigil::config::Settings;
use vigil::report::{self, OutputFormat};
use vigil::scan::{self, Progress, ScanOptions, ScanOutcome};
use vigil::vulndb::{self, Database};
use vigil::warehouse::{commit, Shard, WarehouseError};

/// A progress bar on a terminal; nothing otherwise (cron and journald get the summary only).
pub struct Bar(Option<indicatif::ProgressBar>);

impl Bar {
    pub fn new() -> Bar {
        if !std::io::stderr().is_terminal() {
            return Bar(None);
        }
        let bar = indicatif::ProgressBar::new(0);
        bar.set_style(
            indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} images {msg}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        Bar(Some(bar))
    }
}

impl Progress for Bar {
    fn images(&self, total: u64) {
        if let Some(bar) = &self.0 {
            bar.set_length(total);
        }
    }
    fn image_done(&self, name: &str) {
        if let Some(bar) = &self.0 {
            bar.set_message(name.to_string());
            bar.inc(1);
        }
    }
}

impl Drop for Bar {
    fn drop(&mut self) {
        if let Some(bar) = &self.0 {
            bar.finish_and_clear();
        }
    }
}

/// Opens the configured advisory DB, or says how to make one.
pub fn open_db(settings: &Settings) -> anyhow::Result<Database> {
    Database::open(&settings.advisory_db).with_context(|| {
        format!(
            "no usable advisory DB at {} (run `vigil db update` or `vigil db import`)",
            settings.advisory_db.display()
        )
    })
}

async fn run_scan(settings: &Settings, options: &ScanOptions) -> anyhow::Result<ScanOutcome> {
    let db = open_db(settings)?;
    let bar = Bar::new();
    let outcome = scan::scan(settings, Arc::new(db), options, &bar).await?;
    drop(bar);
    Ok(outcome)
}

pub fn print_outcome(outcome: &ScanOutcome) {
    eprintln!(
        "scan {}: {} images seen, {} scanned, {} failed, {} findings; layers: {} read, {} from cache",
        outcome.scan_id,
        outcome.images_seen,
        outcome.images_scanned,
        outcome.images_failed,
        outcome.findings,
        outcome.layers_fetched,
        outcome.layers_cached
    );
    if outcome.shard.count > 1 {
        let commit = &outcome.commit;
        let state = if commit.run_committed {
            "this shard finished last and committed the run".to_string()
        } else if commit.waiting_for.is_empty() {
            "the run is committed".to_string()
        } else {
            format!(
                "the run commits when shards {} finish",
                commit
                    .waiting_for
                    .iter()
                    .map(u32::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        eprintln!(
            "shard {}/{} of run {}: {} files written; {state}",
            outcome.shard.index,
            outcome.shard.count,
            outcome.run_id,
            commit.files.len()
        );
    }
    if !outcome.selected.is_empty() || outcome.deferred > 0 {
        let mut parts: Vec<String> = outcome
            .selected
            .iter()
            .map(|(why, n)| format!("{n} {why}"))
            .collect();
        if outcome.deferred > 0 {
            parts.push(format!("{} deferred", outcome.deferred));
        }
        eprintln!("selected: {}", parts.join(", "));
    }
    for error in &outcome.errors {
        eprintln!("failed: {error}");
    }
}

/// A shard rerun after its run was committed has nothing to do: says so, exit 0.
pub fn committed_already(error: &anyhow::Error) -> Option<ExitCode> {
    let run = error.chain().find_map(|cause| match cause.downcast_ref() {
        Some(WarehouseError::AlreadyCommitted(run)) => Some(run.clone()),
        _ => None,
    })?;
    eprintln!("run {run} is already committed: nothing to do");
    Some(ExitCode::SUCCESS)
}

pub async fn run(args: ScanArgs) -> anyhow::Result<ExitCode> {
    let settings = super::load_settings(&args.config)?;
    let options = ScanOptions {
        images: args.images,
        insecure_http: args.insecure_http,
        shard: args.shard.shard.unwrap_or(Shard::WHOLE),
        run_id: args.shard.run_id,
        ..ScanOptions::default()
    };
    let outcome = match run_scan(&settings, &options).await {
        Ok(outcome) => outcome,
        Err(err) => return committed_already(&err).ok_or(err),
    };
    print_outcome(&outcome);
    println!("{}", outcome.scan_id);
    Ok(if outcome.errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(super::failure::PARTIAL)
    })
}

pub async fn demo(args: DemoArgs) -> anyhow::Result<ExitCode> {
    let settings = vigil::demo::prepare(&args.dir)?;
    let advisories = vigil::demo::advisories(&args.dir);
    let db_dir = settings.advisory_db.clone();
    tokio::task::spawn_blocking(move || vulndb::import(&db_dir, &[advisories]))
        .await
        .context("advisory import task failed")??;
    let outcome = run_scan(&settings, &ScanOptions::default()).await?;
    print_outcome(&outcome);
    let warehouse = settings.open_warehouse()?;
    let batches = report::run_report(&warehouse, "recommendations", &BTreeMap::new()).await?;
    println!("{}", report::format_batches(&batches, OutputFormat::Table)?);
    println!(
        "Warehouse: {} (try `vigil report repositories --warehouse {} -p registry=examples`)",
        settings.warehouse, settings.warehouse
    );
    Ok(if outcome.errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(super::failure::PARTIAL)
    })
}

/// `vigil commit`: commits a run whose shards have all written their manifests.
pub async fn commit(args: CommitArgs) -> anyhow::Result<ExitCode> {
    let warehouse = super::warehouse_settings(&args.location)?.open_warehouse()?;
    let outcome = commit::commit_by_id(&warehouse, &args.run_id).await?;
    if outcome.already {
        eprintln!("run {} is already committed", args.run_id);
    } else if outcome.committed_now {
        eprintln!(
            "run {} committed: {} files; {} orphaned files removed",
            args.run_id, outcome.files, outcome.orphans_removed
        );
    } else {
        let missing: Vec<String> = outcome.waiting_for.iter().map(u32::to_string).collect();
        eprintln!(
            "run {} is not committed: shards {} have not written their manifests",
            args.run_id,
            missing.join(", ")
        );
        return Ok(ExitCode::from(super::failure::PARTIAL));
    }
    Ok(ExitCode::SUCCESS)
}
