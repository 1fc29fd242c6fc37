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

    /// Subscription `prod` with registries `main` and `edge`, `lab` with `main`, `empty` with none.
    pub(super) fn configured() -> Configured {
        Configured {
            subscriptions: vec!["prod".into(), "lab".into(), "empty".into()],
            registries: vec!["prod/main".into(), "prod/edge".into(), "lab/main".into()],
        }
    }

    pub(super) fn schedule(name: &str, text: &str) -> Result<Schedule, InvalidSchedule> {
        Schedule::from_text(
            Path::new(&format!("/etc/vigil/schedules/{name}.toml")),
            text,
            &configured(),
        )
    }

    fn strings(values: &[&str]) -> Vec<String> {
        values.iter().map(|v| v.to_string()).collect()
    }

    fn scope(subscriptions: &[&str], registries: &[&str]) -> Result<Vec<String>, InvalidSchedule> {
        resolve_scope(&strings(subscriptions), &strings(registries), &configured())
            .map(|scope| scope.into_iter().collect())
    }

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

    #[test]
    fn duration_edge_cases_and_their_messages() {
        assert_eq!(parse_duration("1s").unwrap(), chrono::Duration::seconds(1));
        assert_eq!(
            parse_duration(" 12h\n").unwrap(),
            chrono::Duration::hours(12)
        );
        assert_eq!(parse_duration("007d").unwrap(), chrono::Duration::days(7));
        for (text, expected) in [
            ("30", "\"30\": give a unit (s, m, h, d, w)"),
            ("", "\"\": give a unit (s, m, h, d, w)"),
            ("d", "\"d\": expected a number then a unit, e.g. 30d"),
            ("-1d", "\"-1d\": expected a number then a unit, e.g. 30d"),
            ("+1d", "\"+1d\": expected a number then a unit, e.g. 30d"),
            // Too many digits for an i64: refused as a number, not as a range.
            (
                "99999999999999999999d",
                "\"99999999999999999999d\": expected a number then a unit, e.g. 30d",
            ),
            ("3y", "\"3y\": unknown unit \"y\" (s, m, h, d, w)"),
            // Units are lower case and follow the number directly.
            ("30D", "\"30D\": unknown unit \"D\" (s, m, h, d, w)"),
            ("30 d", "\"30 d\": unknown unit \" d\" (s, m, h, d, w)"),
            ("1.5h", "\"1.5h\": unknown unit \".5h\" (s, m, h, d, w)"),
            ("0d", "\"0d\": out of range"),
            ("0s", "\"0s\": out of range"),
            // Overflows the multiplication, then chrono's range.
            ("1000000000000000w", "\"1000000000000000w\": out of range"),
            (
                "9223372036854775807s",
                "\"9223372036854775807s\": out of range",
            ),
        ] {
            let error = parse_duration(text).unwrap_err();
            assert_eq!(error.to_string(), expected, "{text:?}");
        }
        assert_eq!(
            parse_duration("3y").unwrap_err(),
            DurationError::UnknownUnit {
                text: "3y".into(),
                unit: "y".into()
            }
        );
    }

    #[test]
    fn scope_is_the_named_subscriptions_and_registries() {
        assert_eq!(scope(&["prod"], &[]).unwrap(), ["prod/edge", "prod/main"]);
        assert_eq!(scope(&[], &["lab/main"]).unwrap(), ["lab/main"]);
        // Neither list: every configured registry.
        assert_eq!(
            scope(&[], &[]).unwrap(),
            ["lab/main", "prod/edge", "prod/main"]
        );
        // Named twice, covered once.
        assert_eq!(
            scope(&["prod", "prod"], &["prod/main"]).unwrap(),
            ["prod/edge", "prod/main"]
        );
    }

    #[test]
    fn subscriptions_and_registries_together_are_a_union() {
        assert_eq!(
            scope(&["lab"], &["prod/edge"]).unwrap(),
            ["lab/main", "prod/edge"]
        );
        let schedule = schedule(
            "both",
            "name = \"both\"\ncron = \"0 * * * *\"\nsubscriptions = [\"lab\"]\nregistries = [\"prod/main\"]\n",
        )
        .unwrap();
        assert_eq!(schedule.scope, ["lab/main", "prod/main"]);
        assert_eq!(
            schedule.registry_pairs().into_iter().collect::<Vec<_>>(),
            [
                ("lab".to_string(), "main".to_string()),
                ("prod".to_string(), "main".to_string())
            ]
        );
    }

    #[test]
    fn a_subscription_without_registries_covers_nothing_rather_than_everything() {
        assert_eq!(scope(&["empty"], &[]).unwrap(), Vec::<String>::new());
        assert_eq!(scope(&["empty"], &["lab/main"]).unwrap(), ["lab/main"]);
    }

    #[test]
    fn unknown_subscriptions_and_registries_are_refused() {
        let error = scope(&["staging"], &[]).unwrap_err();
        assert_eq!(
            error.to_string(),
            "no subscription \"staging\" in the configuration"
        );
        let error = scope(&[], &["prod/nope"]).unwrap_err();
        assert_eq!(
            error.to_string(),
            "no registry \"prod/nope\" in the configuration (write subscription/registry)"
        );
        // A registry is named as subscription/registry: the bare name is not enough, nor a subscription.
        assert!(matches!(
            scope(&[], &["main"]),
            Err(InvalidSchedule::UnknownRegistry { .. })
        ));
        assert!(matches!(
            scope(&[], &["prod"]),
            Err(InvalidSchedule::UnknownRegistry { .. })
        ));
        // The registries list is checked even when the subscriptions already cover everything.
        assert!(matches!(
            scope(&["prod", "lab"], &["lab/nope"]),
            Err(InvalidSchedule::UnknownRegistry { .. })
        ));
        let error = schedule(
            "bad",
            "name = \"bad\"\ncron = \"0 * * * *\"\nregistries = [\"prod/main\", \"lab/edge\"]\n",
        )
        .unwrap_err();
        assert!(
            matches!(&error, InvalidSchedule::UnknownRegistry { registry } if registry == "lab/edge"),
            "{error}"
        );
    }

    #[test]
    fn a_schedule_file_resolves_its_zone_cron_and_policy() {
        let schedule = schedule(
            "nightly",
            "name = \"nightly\"\ncron = \"30 2 * * 1-5\"\ntimezone = \"Europe/Berlin\"\n\
             subscriptions = [\"prod\"]\n[policy]\nnew_images = false\npulled_within = \"30d\"\n\
             pushed_within = \"2w\"\nmax_images = 10\n",
        )
        .unwrap();
        assert_eq!(schedule.name, "nightly");
        assert_eq!(schedule.cron, "30 2 * * 1-5");
        assert_eq!(schedule.timezone, chrono_tz::Europe::Berlin);
        assert_eq!(schedule.cron_spec, "30 2 * * 1-5".parse().unwrap());
        assert_eq!(schedule.scope, ["prod/edge", "prod/main"]);
        assert!(!schedule.policy.new_images);
        assert_eq!(
            schedule.policy.pulled_within,
            Some(chrono::Duration::days(30))
        );
        assert_eq!(
            schedule.policy.pushed_within,
            Some(chrono::Duration::days(14))
        );
        assert_eq!(schedule.policy.max_images, Some(10));
        assert_eq!(
            schedule.path,
            Path::new("/etc/vigil/schedules/nightly.toml")
        );
        // Defaults: UTC, new images on, no windows, no cap.
        let schedule = schedule_defaults();
        assert_eq!(schedule.timezone, Tz::UTC);
        assert!(schedule.policy.new_images);
        assert_eq!(schedule.policy.pulled_within, None);
        assert_eq!(schedule.policy.pushed_within, None);
        assert_eq!(schedule.policy.max_images, None);
    }

    fn schedule_defaults() -> Schedule {
        schedule("hourly", "name = \"hourly\"\ncron = \"@hourly\"\n").unwrap()
    }

    #[test]
    fn bad_schedule_files_name_the_problem() {
        for (name, text, expected) in [
            (
                "bad",
                "name = \"bad\"\ncron = \"0 * * * *\"\ncolour = \"red\"\n",
                "line 3: unknown field `colour`",
            ),
            (
                "bad",
                "name = \"other\"\ncron = \"0 * * * *\"\n",
                "name \"other\" must match the file name \"bad\"",
            ),
            (
                "a.b",
                "name = \"a.b\"\ncron = \"0 * * * *\"\n",
                "name \"a.b\": use letters, digits, - and _",
            ),
            (
                "bad",
                "name = \"bad\"\ncron = \"0 * * * *\"\ntimezone = \"Mars/Olympus\"\n",
                "unknown time zone \"Mars/Olympus\" (an IANA name, e.g. Europe/Berlin)",
            ),
            (
                "bad",
                "name = \"bad\"\ncron = \"0 9 * * 8\"\n",
                "invalid cron expression \"0 9 * * 8\": day of week: 8 is outside 0-7",
            ),
            (
                "bad",
                "name = \"bad\"\ncron = \"0 * * * *\"\n[policy]\npushed_within = \"30\"\n",
                "policy.pushed_within: \"30\": give a unit (s, m, h, d, w)",
            ),
        ] {
            let error = schedule(name, text).unwrap_err();
            assert!(error.to_string().starts_with(expected), "{text}: {error}");
        }
        let error = ScheduleError::Invalid {
            path: PathBuf::from("schedules/bad.toml"),
            problem: schedule("bad", "name = \"bad\"\n").unwrap_err(),
        };
        let text = error.to_string();
        assert!(
            text.starts_with("schedules/bad.toml: ") && text.contains("missing field `cron`"),
            "{text}"
        );
    }

    #[test]
    fn find_names_the_schedules_there_when_one_is_missing() {
        let dir = tempfile::tempdir().unwrap();
        let settings =
            crate::config::load_str("", Path::new("vigil.toml"), dir.path(), &|_: &str| None)
                .unwrap();
        let error = find(dir.path(), &settings, "nightly").unwrap_err();
        assert!(
            error.to_string().ends_with("(the schedules there: none)"),
            "{error}"
        );
        // An absent folder holds no schedules.
        assert!(load_schedules(&dir.path().join("absent"), &settings)
            .unwrap()
            .is_empty());
        std::fs::write(
            dir.path().join("hourly.toml"),
            "name = \"hourly\"\ncron = \"@hourly\"\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("notes.txt"), "not a schedule").unwrap();
        let error = find(dir.path(), &settings, "nightly").unwrap_err();
        assert!(
            matches!(&error, ScheduleError::NotFound { known, .. } if known == "hourly"),
            "{error}"
        );
        assert_eq!(
            find(dir.path(), &settings, "hourly").unwrap().scope,
            Vec::<String>::new()
        );
    }
}
