//! `vigil db import|update|status` and `vigil match`: the advisory database and matching without a registry.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use vigil::cli::{DbCommand, MatchArgs, OutputFormat};
use vigil::config::Overrides;
use vigil::matcher::{match_inventory, MatchOutput};
use vigil::model::Inventory;
use vigil::vulndb::{self, Database, ImportReport};

use super::output::write_table;

pub async fn run(command: DbCommand) -> anyhow::Result<ExitCode> {
    match command {
        DbCommand::Import { paths, location } => {
            let dir = super::db_settings(&location, Overrides::default())?.advisory_db;
            let result = tokio::task::spawn_blocking(move || vulndb::import(&dir, &paths))
                .await
                .context("import task failed")?;
            Ok(print_import(result))
        }
        DbCommand::Update {
            source,
            ecosystems,
            location,
        } => {
            let settings = super::db_settings(
                &location,
                Overrides {
                    advisory_source: source,
                    advisory_ecosystems: ecosystems,
                    ..Overrides::default()
                },
            )?;
            Ok(print_import(
                vulndb::update(
                    &settings.advisory_db,
                    &settings.advisory_source,
                    &settings.advisory_ecosystems,
                )
                .await,
            ))
        }
        DbCommand::Status { location, format } => {
            let dir = super::db_settings(&location, Overrides::default())?.advisory_db;
            let db = match Database::open(&dir) {
                Ok(db) => db,
                Err(err) => {
                    eprintln!("error: {err}");
                    return Ok(ExitCode::from(super::failure::PARTIAL));
                }
            };
            let status = db.status();
            let mut out = std::io::stdout().lock();
            match format {
                OutputFormat::Json => {
                    serde_json::to_writer_pretty(&mut out, &status)?;
                    writeln!(out)?;
                }
                OutputFormat::Table => {
                    writeln!(out, "path:         {}", status.path.display())?;
                    writeln!(out, "advisories:   {}", status.advisories)?;
                    writeln!(out, "content hash: {}", status.content_hash)?;
                    writeln!(out, "imported at:  {}", status.imported_at)?;
                    writeln!(out, "sources:      {}", status.sources.join(", "))?;
                    let rows: Vec<Vec<String>> = status
                        .counts_per_ecosystem
                        .iter()
                        .map(|(ecosystem, count)| vec![ecosystem.clone(), count.to_string()])
                        .collect();
                    writeln!(out)?;
                    write_table(&mut out, &["ECOSYSTEM", "ADVISORIES"], &rows)?;
                    for (ecosystem, count) in &status.unknown_ecosystems {
                        writeln!(out, "not matchable: {ecosystem} ({count} affected entries)")?;
                    }
                }
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Prints an import's outcome: a summary on stdout, skipped records on stderr; exit 1 when the import
/// failed (the previous DB is still in place).
fn print_import(result: Result<ImportReport, vulndb::DbError>) -> ExitCode {
    match result {
        Ok(report) => {
            println!(
                "imported {} advisories ({} records read, {} withdrawn, {} duplicates), content hash {}",
                report.advisories,
                report.records_read,
                report.withdrawn,
                report.duplicates,
                report.content_hash
            );
            for (ecosystem, count) in &report.counts_per_ecosystem {
                println!("  {ecosystem}: {count}");
            }
            if report.invalid_records > 0 {
                eprintln!("skipped {} invalid records:", report.invalid_records);
                for example in &report.invalid_examples {
                    eprintln!("  {example}");
                }
            }
            for (ecosystem, count) in &report.unknown_ecosystems {
                eprintln!("not matchable: {ecosystem} ({count} affected entries)");
            }
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::from(super::failure::PARTIAL)
        }
    }
}

/// Why an inventory file given to `vigil match` cannot be read: a usage error (exit 2). The cause is the
/// error's source, printed after it.
#[derive(Debug, thiserror::Error)]
pub enum InventoryFileError {
    #[error("cannot read inventory {path}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not JSON")]
    NotJson {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("{path} is not a vigil inventory")]
    NotInventory {
        path: PathBuf,
        source: serde_json::Error,
    },
}

/// Reads an inventory file: one inventory object or an array of them.
fn read_inventories(path: &Path) -> Result<Vec<Inventory>, InventoryFileError> {
    let text = std::fs::read_to_string(path).map_err(|source| InventoryFileError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let value: serde_json::Value =
        serde_json::from_str(&text).map_err(|source| InventoryFileError::NotJson {
            path: path.to_path_buf(),
            source,
        })?;
    let inventories = if value.is_array() {
        serde_json::from_value(value)
    } else {
        serde_json::from_value(value).map(|one| vec![one])
    };
    inventories.map_err(|source| InventoryFileError::NotInventory {
        path: path.to_path_buf(),
        source,
    })
}

pub fn run_match(args: MatchArgs) -> anyhow::Result<ExitCode> {
    let inventories = read_inventories(&args.inventory)?;
    let dir = super::db_settings(&args.location, Overrides::default())?.advisory_db;
    // Matching cannot be done without the DB: exit 3 (see `failure`), unlike `db status`, whose answer
    // "no usable DB" is exit 1.
    let db = Database::open(&dir)?;
    let outputs: Vec<MatchOutput> = inventories
        .iter()
        .map(|inventory| match_inventory(&db, inventory))
        .collect();
    let mut out = std::io::stdout().lock();
    match args.format {
        OutputFormat::Json => {
            if let [single] = outputs.as_slice() {
                serde_json::to_writer_pretty(&mut out, single)?;
            } else {
                serde_json::to_writer_pretty(&mut out, &outputs)?;
            }
            writeln!(out)?;
        }
        OutputFormat::Table => {
            let rows: Vec<Vec<String>> = outputs
                .iter()
                .flat_map(|o| &o.findings)
                .map(|f| {
                    vec![
                        f.id.clone(),
                        f.aliases.join(","),
                        f.package_name.clone(),
                        f.package_version.clone(),
                        f.fixed_version.clone().unwrap_or_else(|| "-".into()),
                        f.severity.as_str().to_string(),
                        f.cvss_v3_score
                            .map(|s| format!("{s:.1}"))
                            .unwrap_or_default(),
                        f.summary.to_string(),
                    ]
                })
                .collect();
            write_table(
                &mut out,
                &[
                    "ID", "ALIASES", "PACKAGE", "VERSION", "FIXED", "SEVERITY", "CVSS3", "SUMMARY",
                ],
                &rows,
            )?;
        }
    }
    for (inventory, output) in inventories.iter().zip(&outputs) {
        let stats = &output.stats;
        if stats.packages_without_ecosystem
            + stats.unparsable_package_versions
            + stats.unparsable_advisory_ranges
            > 0
        {
            eprintln!(
                "note: {}: {} packages without an ecosystem, {} unparsable package versions, {} unparsable advisory ranges",
                inventory.image,
                stats.packages_without_ecosystem,
                stats.unparsable_package_versions,
                stats.unparsable_advisory_ranges
            );
        }
        if inventory.coverage.status != vigil::model::CoverageStatus::Complete {
            eprintln!(
                "note: {}: coverage {} ({}): findings may be incomplete",
                inventory.image,
                inventory.coverage.status.as_str(),
                inventory.coverage.reason
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
