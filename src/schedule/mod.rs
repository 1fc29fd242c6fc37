//! Schedules: one job per `schedules/*.toml` file, with crontab semantics (day of week 0 and 7 are Sunday;
//! when both day of month and day of week are restricted, either may match), evaluated in the job's time
//! zone, and rendered as systemd timer units or crontab lines. This module reads and checks the files; the
//! cron expression lives in `cron.rs`, the systemd and crontab rendering in `systemd.rs`.

mod cron;
mod systemd;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde::Deserialize;

use crate::config::Settings;
use crate::select::Policy;

pub use self::cron::{CronError, CronFieldError, CronReason, CronSpec};

/// Why schedules could not be loaded or rendered.
#[derive(Debug, thiserror::Error)]
pub enum ScheduleError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A schedule file that parses but says something wrong; the file is named.
    #[error("{path}: {problem}")]
    Invalid {
        path: PathBuf,
        problem: InvalidSchedule,
    },
    #[error("no schedule {name:?} in {dir} (the schedules there: {known})")]
    NotFound {
        name: String,
        dir: PathBuf,
        known: String,
    },
    /// A schedule with a seconds field asked for as a crontab line.
    #[error(
        "schedule {name}: crontab has no seconds field; use `vigil schedules systemd {name}` or `vigil daemon`"
    )]
    CrontabHasNoSeconds { name: String },
}

/// What is wrong inside one schedule file (the file itself is named by [`ScheduleError::Invalid`]).
#[derive(Debug, thiserror::Error)]
pub enum InvalidSchedule {
    /// Not TOML, or not the schedule file format (an unknown field, a wrong type).
    #[error("{}{message}", line_prefix(.line))]
    Syntax {
        /// 1-based, when toml reports where.
        line: Option<usize>,
        message: String,
    },
    #[error("name {name:?} must match the file name {stem:?}")]
    NameNotFileName { name: String, stem: String },
    #[error("name {name:?}: use letters, digits, - and _")]
    BadName { name: String },
    #[error("unknown time zone {name:?} (an IANA name, e.g. Europe/Berlin)")]
    UnknownTimeZone { name: String },
    #[error("{0}")]
    Cron(CronError),
    #[error("no subscription {subscription:?} in the configuration")]
    UnknownSubscription { subscription: String },
    #[error("no registry {registry:?} in the configuration (write subscription/registry)")]
    UnknownRegistry { registry: String },
    /// `policy.pulled_within` or `policy.pushed_within` is not a duration.
    #[error("policy.{key}: {reason}")]
    Window {
        key: &'static str,
        reason: DurationError,
    },
}

fn line_prefix(line: &Option<usize>) -> String {
    line.map(|line| format!("line {line}: "))
        .unwrap_or_default()
}

/// Why a policy window such as `30d` was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    #[error("{text:?}: give a unit (s, m, h, d, w)")]
    NoUnit { text: String },
    #[error("{text:?}: expected a number then a unit, e.g. 30d")]
    NotANumber { text: String },
    #[error("{text:?}: unknown unit {unit:?} (s, m, h, d, w)")]
    UnknownUnit { text: String, unit: String },
    /// Zero, or too large for a duration.
    #[error("{text:?}: out of range")]
    OutOfRange { text: String },
}

/// A `schedules/*.toml` file as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScheduleFile {
    name: String,
    cron: String,
    #[serde(default)]
    timezone: Option<String>,
    #[serde(default)]
    subscriptions: Vec<String>,
    #[serde(default)]
    registries: Vec<String>,
    #[serde(default)]
    policy: PolicyFile,
}

/// The `[policy]` table as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyFile {
    #[serde(default = "yes")]
    new_images: bool,
    #[serde(default)]
    pulled_within: Option<String>,
    #[serde(default)]
    pushed_within: Option<String>,
    #[serde(default)]
    max_images: Option<usize>,
}

fn yes() -> bool {
    true
}

impl Default for PolicyFile {
    fn default() -> PolicyFile {
        PolicyFile {
            new_images: true,
            pulled_within: None,
            pushed_within: None,
            max_images: None,
        }
    }
}

impl ScheduleFile {
    /// Deserializes the file, naming the line toml stopped at.
    fn parse(text: &str) -> Result<ScheduleFile, InvalidSchedule> {
        toml::from_str(text).map_err(|e| InvalidSchedule::Syntax {
            line: e.span().map(|span| {
                text.as_bytes()[..span.start.min(text.len())]
                    .iter()
                    .filter(|b| **b == b'\n')
                    .count()
                    + 1
            }),
            message: e.message().to_string(),
        })
    }
}

impl PolicyFile {
    /// The selection policy, with its windows parsed.
    fn resolve(&self) -> Result<Policy, InvalidSchedule> {
        let window = |value: &Option<String>, key: &'static str| {
            value
                .as_deref()
                .map(parse_duration)
                .transpose()
                .map_err(|reason| InvalidSchedule::Window { key, reason })
        };
        Ok(Policy {
            new_images: self.new_images,
            pulled_within: window(&self.pulled_within, "pulled_within")?,
            pushed_within: window(&self.pushed_within, "pushed_within")?,
            max_images: self.max_images,
        })
    }
}

/// One scheduled job.
#[derive(Debug, Clone)]
pub struct Schedule {
    pub name: String,
    /// The expression as written.
    pub cron: String,
    pub timezone: Tz,
    pub cron_spec: CronSpec,
    /// `subscription/registry` names the job covers, sorted.
    pub scope: Vec<String>,
    pub policy: Policy,
    pub path: PathBuf,
}

/// `30s`, `15m`, `12h`, `30d`, `2w`.
pub fn parse_duration(text: &str) -> Result<chrono::Duration, DurationError> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| DurationError::NoUnit { text: text.into() })?;
    let (number, unit) = text.split_at(split);
    let number: i64 = number
        .parse()
        .map_err(|_| DurationError::NotANumber { text: text.into() })?;
    let seconds = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 604_800,
        _ => {
            return Err(DurationError::UnknownUnit {
                text: text.into(),
                unit: unit.into(),
            })
        }
    };
    number
        .checked_mul(seconds)
        .and_then(chrono::Duration::try_seconds)
        .filter(|d| *d > chrono::Duration::zero())
        .ok_or_else(|| DurationError::OutOfRange { text: text.into() })
}

/// The configured names a schedule may refer to, taken from the settings once per file.
struct Configured {
    /// Subscription ids, including those without registries.
    subscriptions: Vec<String>,
    /// `subscription/registry` names, in configuration order.
    registries: Vec<String>,
}

impl Configured {
    fn from_settings(settings: &Settings) -> Configured {
        Configured {
            subscriptions: settings
                .subscriptions
                .iter()
                .map(|s| s.id.clone())
                .collect(),
            registries: settings
                .subscriptions
                .iter()
                .flat_map(|s| {
                    s.registries
                        .iter()
                        .map(move |r| format!("{}/{}", s.id, r.name))
                })
                .collect(),
        }
    }
}

/// The file name (without `.toml`) is the job's name, so `vigil run --schedule NAME` finds the file.
fn check_name(name: &str, path: &Path) -> Result<(), InvalidSchedule> {
    let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("");
    if name != stem {
        return Err(InvalidSchedule::NameNotFileName {
            name: name.into(),
            stem: stem.into(),
        });
    }
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(InvalidSchedule::BadName { name: name.into() });
    }
    Ok(())
}

/// An IANA time zone; UTC when none is given.
fn parse_timezone(name: Option<&str>) -> Result<Tz, InvalidSchedule> {
    match name {
        None => Ok(Tz::UTC),
        Some(name) => name
            .parse()
            .map_err(|_| InvalidSchedule::UnknownTimeZone { name: name.into() }),
    }
}

/// The `subscription/registry` names a job covers: every registry of each named subscription plus each named
/// registry; when neither list is given, every configured registry.
fn resolve_scope(
    subscriptions: &[String],
    registries: &[String],
    configured: &Configured,
) -> Result<BTreeSet<String>, InvalidSchedule> {
    let mut scope = BTreeSet::new();
    for subscription in subscriptions {
        let before = scope.len();
        scope.extend(
            configured
                .registries
                .iter()
                .filter(|k| k.split('/').next() == Some(subscription))
                .cloned(),
        );
        if scope.len() == before && !configured.subscriptions.contains(subscription) {
            return Err(InvalidSchedule::UnknownSubscription {
                subscription: subscription.clone(),
            });
        }
    }
    for registry in registries {
        if !configured.registries.contains(registry) {
            return Err(InvalidSchedule::UnknownRegistry {
                registry: registry.clone(),
            });
        }
        scope.insert(registry.clone());
    }
    if subscriptions.is_empty() && registries.is_empty() {
        scope.extend(configured.registries.iter().cloned());
    }
    Ok(scope)
}

impl Schedule {
    /// Parses one schedule file, checking it against the configuration's registries.
    pub fn load(path: &Path, settings: &Settings) -> Result<Schedule, ScheduleError> {
        let text = std::fs::read_to_string(path).map_err(|source| ScheduleError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Schedule::from_text(path, &text, &Configured::from_settings(settings)).map_err(|problem| {
            ScheduleError::Invalid {
                path: path.to_path_buf(),
                problem,
            }
        })
    }

    /// The checks of [`Schedule::load`] in file order, on text already read.
    fn from_text(
        path: &Path,
        text: &str,
        configured: &Configured,
    ) -> Result<Schedule, InvalidSchedule> {
        let file = ScheduleFile::parse(text)?;
        check_name(&file.name, path)?;
        let timezone = parse_timezone(file.timezone.as_deref())?;
        let cron_spec: CronSpec = file.cron.parse().map_err(InvalidSchedule::Cron)?;
        let scope = resolve_scope(&file.subscriptions, &file.registries, configured)?;
        let policy = file.policy.resolve()?;
        Ok(Schedule {
            name: file.name,
            cron: file.cron,
            timezone,
            cron_spec,
            scope: scope.into_iter().collect(),
            policy,
            path: path.to_path_buf(),
        })
    }

    /// The next `n` fire times after `after`.
    pub fn next_fires(&self, after: DateTime<Utc>, n: usize) -> Vec<DateTime<Utc>> {
        self.cron_spec.next_fires(self.timezone, after, n)
    }

    /// The registries the job covers, as (subscription, registry).
    pub fn registry_pairs(&self) -> BTreeSet<(String, String)> {
        self.scope
            .iter()
            .filter_map(|s| s.split_once('/'))
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }
}

/// Every schedule in `dir`, by name; an absent folder holds none.
pub fn load_schedules(dir: &Path, settings: &Settings) -> Result<Vec<Schedule>, ScheduleError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(ScheduleError::Io {
                path: dir.to_path_buf(),
                source,
            })
        }
    };
    let mut paths: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    paths.sort();
    paths.iter().map(|p| Schedule::load(p, settings)).collect()
}

/// The schedule named `name` in `dir`.
pub fn find(dir: &Path, settings: &Settings, name: &str) -> Result<Schedule, ScheduleError> {
    let schedules = load_schedules(dir, settings)?;
    let known = schedules
        .iter()
        .map(|s| s.name.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    schedules
        .iter()
        .find(|s| s.name == name)
        .cloned()
        .ok_or_else(|| ScheduleError::NotFound {
            name: name.to_string(),
            dir: dir.to_path_buf(),
            known: if known.is_empty() {
                "none".into()
            } else {
                known
            },
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30d").unwrap(), chrono::Duration::days(30));
        assert_eq!(parse_duration("2w").unwrap(), chrono::Duration::days(14));
        assert_eq!(
            parse_duration("90m").unwrap(),
            chrono::Duration::minutes(90)
        );
        for bad in ["30", "d", "-1d", "0d", "3y", "99999999999999999999d", ""] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
    }
}
