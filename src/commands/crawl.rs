//! `vigil crawl`: every image of every configured registry, one line per tag and platform.

use std::io::Write;
use std::process::ExitCode;

use vigil::cli::{CrawlArgs, OutputFormat};
use vigil::registry::CrawlFailure;

use super::output::write_table;

pub async fn run(args: CrawlArgs) -> anyhow::Result<ExitCode> {
    let settings = super::load_settings(&args.config)?;
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
                        i.skip_reason
                            .as_ref()
                            .map_or_else(|| "selected".into(), ToString::to_string),
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
pub fn report_failures(failures: &[CrawlFailure]) -> ExitCode {
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
        ExitCode::from(super::failure::PARTIAL)
    }
}
