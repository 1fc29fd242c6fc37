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

pub use self::cron::CronSpec;

#[derive(Debug, thiserror::Error)]
pub enum ScheduleError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
    #[error("no schedule {name:?} in {dir} (the schedules there: {known})")]
    NotFound {
        name: String,
        dir: PathBuf,
        known: String,
    },
    #[error("invalid cron expression {expression:?}: {message}")]
    Cron { expression: String, message: String },
    #[error("{0}")]
    Render(String),
}

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
pub fn parse_duration(text: &str) -> Result<chrono::Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| format!("{text:?}: give a unit (s, m, h, d, w)"))?;
    let (number, unit) = text.split_at(split);
    let number: i64 = number
        .parse()
        .map_err(|_| format!("{text:?}: expected a number then a unit, e.g. 30d"))?;
    let seconds = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 604_800,
        _ => return Err(format!("{text:?}: unknown unit {unit:?} (s, m, h, d, w)")),
    };
    number
        .checked_mul(seconds)
        .and_then(chrono::Duration::try_seconds)
        .filter(|d| *d > chrono::Duration::zero())
        .ok_or_else(|| format!("{text:?}: out of range"))
}

impl Schedule {
    /// Parses one schedule file, checking it against the configuration's registries.
    pub fn load(path: &Path, settings: &Settings) -> Result<Schedule, ScheduleError> {
        let invalid = |message: String| ScheduleError::Invalid {
            path: path.to_path_buf(),
            message,
        };
        let text = std::fs::read_to_string(path).map_err(|source| ScheduleError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let file: ScheduleFile = toml::from_str(&text).map_err(|e| {
            let line = e.span().map(|span| {
                text.as_bytes()[..span.start.min(text.len())]
                    .iter()
                    .filter(|b| **b == b'\n')
                    .count()
                    + 1
            });
            invalid(match line {
                Some(line) => format!("line {line}: {}", e.message()),
                None => e.message().to_string(),
            })
        })?;
        let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("");
        if file.name != stem {
            return Err(invalid(format!(
                "name {:?} must match the file name {stem:?}",
                file.name
            )));
        }
        if file.name.is_empty()
            || !file
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(invalid(format!(
                "name {:?}: use letters, digits, - and _",
                file.name
            )));
        }
        let timezone: Tz = match file.timezone.as_deref() {
            None => Tz::UTC,
            Some(name) => name.parse().map_err(|_| {
                invalid(format!(
                    "unknown time zone {name:?} (an IANA name, e.g. Europe/Berlin)"
                ))
            })?,
        };
        let cron_spec: CronSpec = file
            .cron
            .parse()
            .map_err(|e: ScheduleError| invalid(e.to_string()))?;
        let known: Vec<String> = settings
            .subscriptions
            .iter()
            .flat_map(|s| {
                s.registries
                    .iter()
                    .map(move |r| format!("{}/{}", s.id, r.name))
            })
            .collect();
        let mut scope = BTreeSet::new();
        for subscription in &file.subscriptions {
            let before = scope.len();
            scope.extend(
                known
                    .iter()
                    .filter(|k| k.split('/').next() == Some(subscription))
                    .cloned(),
            );
            if scope.len() == before
                && !settings.subscriptions.iter().any(|s| &s.id == subscription)
            {
                return Err(invalid(format!(
                    "no subscription {subscription:?} in the configuration"
                )));
            }
        }
        for registry in &file.registries {
            if !known.contains(registry) {
                return Err(invalid(format!(
                    "no registry {registry:?} in the configuration (write subscription/registry)"
                )));
            }
            scope.insert(registry.clone());
        }
        if file.subscriptions.is_empty() && file.registries.is_empty() {
            scope.extend(known);
        }
        let window = |value: &Option<String>, key: &str| {
            value
                .as_deref()
                .map(parse_duration)
                .transpose()
                .map_err(|e| invalid(format!("policy.{key}: {e}")))
        };
        let policy = Policy {
            new_images: file.policy.new_images,
            pulled_within: window(&file.policy.pulled_within, "pulled_within")?,
            pushed_within: window(&file.policy.pushed_within, "pushed_within")?,
            max_images: file.policy.max_images,
        };
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
