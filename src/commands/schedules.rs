//! `vigil run`, `vigil daemon` and `vigil schedules`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use vigil::cli::{DaemonArgs, RunArgs, SchedulesCommand, TableFormat};
use vigil::config::Settings;
use vigil::daemon::{self, Job};
use vigil::scan::{self, LockedRun, ScanOptions};
use vigil::schedule::{self, Schedule};
use vigil::warehouse::Shard;

use super::output::write_table;
use super::scan::{open_db, print_outcome, Bar};

fn options(schedule: &Schedule) -> ScanOptions {
    ScanOptions {
        registries: Some(schedule.registry_pairs()),
        policy: Some(schedule.policy.clone()),
        schedule: Some(schedule.name.clone()),
        ..ScanOptions::default()
    }
}

pub async fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let settings = super::load_settings(&args.config)?;
    let schedule = schedule::find(&settings.schedules, &settings, &args.schedule)?;
    let db = Arc::new(open_db(&settings)?);
    let bar = Bar::new();
    let options = ScanOptions {
        shard: args.shard.shard.unwrap_or(Shard::WHOLE),
        run_id: args.shard.run_id,
        ..options(&schedule)
    };
    let result = scan::scan_locked(&settings, db, &options, &schedule.scope, args.wait, &bar).await;
    drop(bar);
    let result = match result {
        Ok(result) => result,
        Err(err) => {
            let err = anyhow::Error::from(err);
            return super::scan::committed_already(&err).ok_or(err);
        }
    };
    match result {
        LockedRun::Skipped { lock } => {
            eprintln!(
                "skipped: already running (another run of schedule {}'s registries holds {})",
                schedule.name, lock
            );
            Ok(ExitCode::SUCCESS)
        }
        LockedRun::Done(outcome) => {
            print_outcome(&outcome);
            println!("{}", outcome.scan_id);
            Ok(if outcome.errors.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
    }
}

pub async fn daemon(args: DaemonArgs) -> anyhow::Result<ExitCode> {
    let settings = super::load_settings(&args.config)?;
    let schedules = schedule::load_schedules(&settings.schedules, &settings)?;
    let jobs: Vec<Job> = schedules
        .into_iter()
        .map(|schedule| {
            let options = options(&schedule);
            let scope = schedule.scope.clone();
            let name = schedule.name.clone();
            Job {
                name,
                options,
                scope,
                next_after: Box::new(move |after| schedule.next_fires(after, 1).into_iter().next()),
            }
        })
        .collect();
    let receiver = match (args.listen, args.token_env) {
        (Some(listen), Some(token_env)) => {
            let token = std::env::var(&token_env)
                .ok()
                .filter(|t| !t.is_empty())
                .with_context(|| {
                    format!("--token-env {token_env}: the variable is not set or empty")
                })?;
            Some(daemon::Receiver { listen, token })
        }
        _ => None,
    };
    eprintln!("daemon: {} schedules", jobs.len());
    daemon::run(settings, jobs, receiver, super::events::terminated()).await?;
    Ok(ExitCode::SUCCESS)
}

fn absolute(path: &Path) -> PathBuf {
    std::fs::canonicalize(path)
        .or_else(|_| std::path::absolute(path))
        .unwrap_or_else(|_| path.to_path_buf())
}

fn binary(given: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    match given {
        Some(path) => Ok(absolute(&path)),
        None => Ok(absolute(
            &std::env::current_exe().context("cannot tell where this binary is")?,
        )),
    }
}

fn load(config: &Path) -> anyhow::Result<(Settings, Vec<Schedule>)> {
    let settings = super::load_settings(config)?;
    let schedules = schedule::load_schedules(&settings.schedules, &settings)?;
    Ok((settings, schedules))
}

pub fn schedules(command: SchedulesCommand) -> anyhow::Result<ExitCode> {
    match command {
        SchedulesCommand::List { config, format } => list(&config, format)?,
        SchedulesCommand::Systemd {
            name,
            config,
            binary: given,
        } => systemd(&config, &name, given)?,
        SchedulesCommand::Crontab {
            config,
            binary: given,
        } => crontab(&config, given)?,
    }
    Ok(ExitCode::SUCCESS)
}

/// `vigil schedules list`: each job with its scope, policy and next three fire times.
fn list(config: &Path, format: TableFormat) -> anyhow::Result<()> {
    let (_, schedules) = load(config)?;
    let now = chrono::Utc::now();
    match format {
        TableFormat::Json => {
            let all: Vec<_> = schedules.iter().map(|s| describe(s, now)).collect();
            println!("{}", serde_json::to_string_pretty(&all)?);
        }
        TableFormat::Table | TableFormat::Csv => {
            let rows: Vec<Vec<String>> = schedules.iter().map(|s| table_row(s, now)).collect();
            write_table(
                &mut std::io::stdout().lock(),
                &["NAME", "CRON", "TZ", "REGISTRIES", "POLICY", "NEXT FIRES"],
                &rows,
            )?;
        }
    }
    Ok(())
}

/// One job as JSON: windows in seconds, fire times in RFC 3339.
fn describe(s: &Schedule, now: DateTime<Utc>) -> serde_json::Value {
    let fires: Vec<String> = s
        .next_fires(now, 3)
        .iter()
        .map(|t| t.to_rfc3339())
        .collect();
    let window = |w: Option<chrono::Duration>| w.map(|w| format!("{}s", w.num_seconds()));
    serde_json::json!({
        "name": s.name,
        "cron": s.cron,
        "timezone": s.timezone.name(),
        "registries": s.scope,
        "policy": {
            "new_images": s.policy.new_images,
            "pulled_within": window(s.policy.pulled_within),
            "pushed_within": window(s.policy.pushed_within),
            "max_images": s.policy.max_images,
        },
        "next_fires": fires,
    })
}

/// One job as a table row: the policy abbreviated, windows in days.
fn table_row(s: &Schedule, now: DateTime<Utc>) -> Vec<String> {
    let fires: Vec<String> = s
        .next_fires(now, 3)
        .iter()
        .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
        .collect();
    let mut policy = Vec::new();
    if s.policy.new_images {
        policy.push("new".to_string());
    }
    if let Some(w) = s.policy.pulled_within {
        policy.push(format!("pulled<{}d", w.num_days()));
    }
    if let Some(w) = s.policy.pushed_within {
        policy.push(format!("pushed<{}d", w.num_days()));
    }
    if let Some(max) = s.policy.max_images {
        policy.push(format!("max {max}"));
    }
    vec![
        s.name.clone(),
        s.cron.clone(),
        s.timezone.name().to_string(),
        s.scope.join(","),
        policy.join(" "),
        fires.join(", "),
    ]
}

/// `vigil schedules systemd NAME`: the `.service` and `.timer` units for one job. Every schedule file is
/// loaded first, so a broken neighbour is reported here too, as `list` would.
fn systemd(config: &Path, name: &str, given: Option<PathBuf>) -> anyhow::Result<()> {
    let (settings, _) = load(config)?;
    let schedule = schedule::find(&settings.schedules, &settings, name)?;
    let (service, timer) = schedule.systemd_units(&binary(given)?, &absolute(config));
    println!("# vigil-{name}.service\n{service}\n# vigil-{name}.timer\n{timer}");
    Ok(())
}

/// `vigil schedules crontab`: one crontab entry per job.
fn crontab(config: &Path, given: Option<PathBuf>) -> anyhow::Result<()> {
    let (_, schedules) = load(config)?;
    let binary = binary(given)?;
    let config = absolute(config);
    for schedule in &schedules {
        print!(
            "# {}\n{}",
            schedule.name,
            schedule.crontab_line(&binary, &config)?
        );
    }
    Ok(())
}
