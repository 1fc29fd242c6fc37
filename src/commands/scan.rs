//! `vigil scan` and `vigil demo`: the whole pipeline into the warehouse.

use std::collections::BTreeMap;
use std::io::IsTerminal as _;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use vigil::cli::{DemoArgs, ScanArgs};
use vigil::config::Settings;
use vigil::report::{self, OutputFormat};
use vigil::scan::{self, Progress, ScanOptions, ScanOutcome};
use vigil::vulndb::{self, Database};

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

pub async fn run(args: ScanArgs) -> anyhow::Result<ExitCode> {
    let settings = super::load_settings(&args.config)?;
    let options = ScanOptions {
        images: args.images,
        insecure_http: args.insecure_http,
        ..ScanOptions::default()
    };
    let outcome = run_scan(&settings, &options).await?;
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
    let batches =
        report::run_report(&settings.warehouse, "recommendations", &BTreeMap::new()).await?;
    println!("{}", report::format_batches(&batches, OutputFormat::Table)?);
    println!(
        "Warehouse: {} (try `vigil report repositories --warehouse {} -p registry=examples`)",
        settings.warehouse.display(),
        settings.warehouse.display()
    );
    Ok(if outcome.errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(super::failure::PARTIAL)
    })
}
