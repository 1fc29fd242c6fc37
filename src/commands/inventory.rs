//! `vigil inventory IMAGE`: the OS identity and packages of one image, every platform of an index.

use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use vigil::cli::{InventoryArgs, OutputFormat};
use vigil::config::{ConfigChoice, Overrides};
use vigil::inventory::{inventory_reference, ImageRef, Inventorier};
use vigil::model::{CoverageStatus, Inventory};
use vigil::registry::Source;

use super::output::write_table;

pub async fn run(args: InventoryArgs) -> anyhow::Result<ExitCode> {
    let settings = super::settings(
        ConfigChoice::Optional(args.config.clone()),
        Overrides {
            cache: args.cache.clone(),
            ..Overrides::default()
        },
    )?;
    let image = ImageRef::parse(&args.image)?;
    let registry = image.registry_settings(Some(&settings), args.insecure_http)?;
    // Unlike the commands that scan, a one-off look leaves no cache behind unless asked to: the layer
    // cache is `--cache`, else the configuration file's, else none.
    let cache = (args.cache.is_some() || settings.config_path.is_some()).then_some(settings.cache);
    let inventorier = Inventorier::new(cache.as_deref()).context("cannot open the layer cache")?;
    let registry = Arc::new(registry);
    let source = match Source::connect(registry.clone()).await {
        Ok(source) => source,
        Err(err) => {
            eprintln!("failed: {}: {err}", args.image);
            return Ok(ExitCode::from(super::failure::PARTIAL));
        }
    };
    let layout = match &source {
        Source::Layout(layout) => Some(layout),
        Source::Registry(_) => None,
    };
    let (repository, reference) = image.repository_and_reference(layout);
    let (inventories, skipped) = match inventory_reference(
        &inventorier,
        &source,
        &registry,
        &repository,
        &reference,
    )
    .await
    {
        Ok(result) => result,
        Err(err) => {
            eprintln!("failed: {}: {err}", args.image);
            return Ok(ExitCode::from(super::failure::PARTIAL));
        }
    };
    for record in &skipped {
        eprintln!(
            "not scanned: {} {} ({})",
            record.platform,
            record.digest,
            record
                .skip_reason
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default()
        );
    }
    let mut out = std::io::stdout().lock();
    match args.format {
        OutputFormat::Json => {
            if let [single] = inventories.as_slice() {
                serde_json::to_writer_pretty(&mut out, single)?;
            } else {
                serde_json::to_writer_pretty(&mut out, &inventories)?;
            }
            writeln!(out)?;
        }
        OutputFormat::Table => {
            for (index, inventory) in inventories.iter().enumerate() {
                if index > 0 {
                    writeln!(out)?;
                }
                print_inventory(&mut out, inventory)?;
            }
        }
    }
    out.flush()?;
    let failed = inventories
        .iter()
        .any(|i| i.coverage.status == CoverageStatus::Failed);
    Ok(if failed {
        ExitCode::from(super::failure::PARTIAL)
    } else {
        ExitCode::SUCCESS
    })
}

fn print_inventory(out: &mut impl Write, inventory: &Inventory) -> std::io::Result<()> {
    writeln!(out, "image:    {}", inventory.image)?;
    if let Some(platform) = &inventory.platform {
        writeln!(out, "platform: {platform}")?;
    }
    match &inventory.os {
        Some(os) => writeln!(
            out,
            "os:       {} {} ({})",
            os.id,
            os.version_id,
            os.ecosystem.as_deref().unwrap_or("no OSV ecosystem")
        )?,
        None => writeln!(out, "os:       unknown")?,
    }
    let coverage = &inventory.coverage;
    if coverage.reason.is_empty() {
        writeln!(out, "coverage: {}", coverage.status.as_str())?;
    } else {
        writeln!(
            out,
            "coverage: {} ({})",
            coverage.status.as_str(),
            coverage.reason
        )?;
    }
    writeln!(out, "packages: {}", inventory.packages.len())?;
    if inventory.packages.is_empty() {
        return Ok(());
    }
    let rows: Vec<Vec<String>> = inventory
        .packages
        .iter()
        .map(|p| {
            vec![
                p.name.clone(),
                p.version.clone(),
                p.ecosystem.clone(),
                p.source_name.clone().unwrap_or_default(),
                p.source_version.clone().unwrap_or_default(),
                p.extractor.clone(),
                p.layer_digest.clone().unwrap_or_default(),
            ]
        })
        .collect();
    write_table(
        out,
        &[
            "NAME",
            "VERSION",
            "ECOSYSTEM",
            "SOURCE_NAME",
            "SOURCE_VERSION",
            "EXTRACTOR",
            "LAYER_DIGEST",
        ],
        &rows,
    )
}
