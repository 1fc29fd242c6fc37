//! The `vigil` binary: parse the CLI, load settings, run the command, map errors to exit codes.
//!
//! Exit codes: 0 all well; 1 some registries or images failed (listed on stderr); 2 bad config or usage.

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;
use vigil::cli::{Cli, Command, CrawlArgs, LogFormat, LoggingArgs, OutputFormat};
use vigil::config;

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(&cli.logging);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return ExitCode::from(2);
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Crawl(args) => crawl(args).await,
        }
    });
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(2)
        }
    }
}

fn init_logging(args: &LoggingArgs) {
    let level = match (args.quiet, args.verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "info",
        (false, 2) => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("VIGIL_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(format!("vigil={level},warn")));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match args.log_format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

fn load_settings(path: &std::path::Path) -> anyhow::Result<config::Settings> {
    Ok(config::load(path, &|name| std::env::var(name).ok())?)
}

async fn crawl(args: CrawlArgs) -> anyhow::Result<ExitCode> {
    let settings = load_settings(&args.config)?;
    let report = vigil::registry::crawl(&settings).await;
    let mut out = std::io::stdout().lock();
    match args.format {
        OutputFormat::Json => {
            for image in &report.images {
                serde_json::to_writer(&mut out, image)?;
                writeln!(out)?;
            }
        }
        OutputFormat::Table => {
            let rows: Vec<Vec<String>> = report
                .images
                .iter()
                .map(|i| {
                    vec![
                        i.subscription.clone(),
                        i.registry.clone(),
                        i.repository.clone(),
                        i.tag.clone(),
                        i.platform.clone(),
                        i.digest.clone(),
                        i.skip_reason.clone().unwrap_or_else(|| "selected".into()),
                    ]
                })
                .collect();
            write_table(
                &mut out,
                &[
                    "SUBSCRIPTION",
                    "REGISTRY",
                    "REPOSITORY",
                    "TAG",
                    "PLATFORM",
                    "DIGEST",
                    "STATUS",
                ],
                &rows,
            )?;
        }
    }
    out.flush()?;
    Ok(report_failures(&report.failures))
}

/// Lists failures on stderr; exit code 1 when there are any.
fn report_failures(failures: &[vigil::registry::CrawlFailure]) -> ExitCode {
    for failure in failures {
        let mut place = format!("{}/{}", failure.subscription, failure.registry);
        if let Some(repository) = &failure.repository {
            place.push('/');
            place.push_str(repository);
        }
        if let Some(tag) = &failure.tag {
            place.push(':');
            place.push_str(tag);
        }
        eprintln!("failed: {place}: {}", failure.error);
    }
    if failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn write_table(out: &mut impl Write, header: &[&str], rows: &[Vec<String>]) -> std::io::Result<()> {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line =
        |out: &mut dyn Write, cells: &mut dyn Iterator<Item = &str>| -> std::io::Result<()> {
            let text: Vec<String> = cells
                .zip(&widths)
                .map(|(cell, width)| format!("{cell:<width$}"))
                .collect();
            writeln!(out, "{}", text.join("  ").trim_end())
        };
    line(out, &mut header.iter().copied())?;
    for row in rows {
        line(out, &mut row.iter().map(String::as_str))?;
    }
    Ok(())
}
