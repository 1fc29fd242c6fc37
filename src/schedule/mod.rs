//! Schedules: one job per `schedules/*.toml` file, with crontab semantics (day of week 0 and 7 are Sunday;
//! when both day of month and day of week are restricted, either may match), evaluated in the job's time
//! zone, and rendered as systemd timer units or crontab lines.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde::Deserialize;

use crate::config::Settings;
use crate::select::Policy;

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

const DAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];
const MONTHS: [&str; 12] = [
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];

/// Expands a crontab field to its values. `names` maps names to `offset + index`; `max_alias` maps a value
/// above `max` back into range (7 -> 0 for Sunday).
fn expand(
    field: &str,
    min: u32,
    max: u32,
    names: &[&str],
    name_base: u32,
    what: &str,
) -> Result<BTreeSet<u32>, String> {
    let top = if what == "day of week" { 7 } else { max };
    let value = |text: &str| -> Result<u32, String> {
        if let Some(index) = names.iter().position(|n| n.eq_ignore_ascii_case(text)) {
            return Ok(index as u32 + name_base);
        }
        let n: u32 = text.parse().map_err(|_| {
            format!(
                "{what}: {text:?} is not a number{}",
                if names.is_empty() { "" } else { " or a name" }
            )
        })?;
        if n < min || n > top {
            return Err(format!("{what}: {n} is outside {min}-{top}"));
        }
        Ok(n)
    };
    let mut values = BTreeSet::new();
    for part in field.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((range, step)) => {
                let step: u32 = step
                    .parse()
                    .ok()
                    .filter(|s| *s > 0)
                    .ok_or_else(|| format!("{what}: bad step in {part:?}"))?;
                (range, step)
            }
            None => (part, 1),
        };
        let (low, high) = if range == "*" {
            (min, max)
        } else if let Some((a, b)) = range.split_once('-') {
            (value(a)?, value(b)?)
        } else if part.contains('/') {
            (value(range)?, top)
        } else {
            let v = value(range)?;
            (v, v)
        };
        if low > high {
            return Err(format!("{what}: range {range:?} runs backwards"));
        }
        let mut v = low;
        while v <= high {
            values.insert(v);
            v += step;
        }
    }
    if what == "day of week" && values.remove(&7) {
        values.insert(0);
    }
    if values.is_empty() {
        return Err(format!("{what}: empty"));
    }
    Ok(values)
}

fn list(values: &BTreeSet<u32>) -> String {
    values
        .iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// A cron expression in crontab semantics, expanded field by field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CronSpec {
    pub seconds: BTreeSet<u32>,
    pub minutes: BTreeSet<u32>,
    pub hours: BTreeSet<u32>,
    pub days_of_month: BTreeSet<u32>,
    pub months: BTreeSet<u32>,
    /// Sunday = 0.
    pub days_of_week: BTreeSet<u32>,
    /// Neither day field starts with `*`: a time matches when either day field does (crontab's rule);
    /// otherwise both must.
    pub either_day: bool,
    /// The 7th field, when given.
    pub years: Option<String>,
    /// Whether the expression has a seconds field.
    pub with_seconds: bool,
    /// The `cron` crate schedules whose union is this one (two when day of month OR day of week).
    schedules: Vec<cron::Schedule>,
}

impl FromStr for CronSpec {
    type Err = ScheduleError;

    fn from_str(expression: &str) -> Result<CronSpec, ScheduleError> {
        let error = |message: String| ScheduleError::Cron {
            expression: expression.to_string(),
            message,
        };
        let text = match expression.trim() {
            "@hourly" => "0 * * * *",
            "@daily" | "@midnight" => "0 0 * * *",
            "@weekly" => "0 0 * * 0",
            "@monthly" => "0 0 1 * *",
            "@yearly" | "@annually" => "0 0 1 1 *",
            other if other.starts_with('@') => {
                return Err(error(format!("unknown shortcut {other}")))
            }
            other => other,
        };
        let fields: Vec<&str> = text.split_whitespace().collect();
        let (second, rest) = match fields.len() {
            5 => ("0", &fields[..]),
            6 | 7 => (fields[0], &fields[1..]),
            n => {
                return Err(error(format!(
                    "{n} fields; expected 5 (crontab), or 6-7 with seconds first"
                )))
            }
        };
        let restricted = |field: &str| !field.starts_with('*');
        let spec_err = |m: String| error(m);
        let seconds = expand(second, 0, 59, &[], 0, "second").map_err(spec_err)?;
        let minutes = expand(rest[0], 0, 59, &[], 0, "minute").map_err(spec_err)?;
        let hours = expand(rest[1], 0, 23, &[], 0, "hour").map_err(spec_err)?;
        let dom = expand(rest[2], 1, 31, &[], 0, "day of month").map_err(spec_err)?;
        let months = expand(rest[3], 1, 12, &MONTHS, 1, "month").map_err(spec_err)?;
        let dow = expand(rest[4], 0, 6, &DAYS, 0, "day of week").map_err(spec_err)?;
        let years = rest.get(5).map(|y| y.to_string());
        let either_day = restricted(rest[2]) && restricted(rest[4]);
        // The cron crate's day of week counts Sunday as 1.
        let dow_text = |days: &BTreeSet<u32>| list(&days.iter().map(|d| d + 1).collect());
        let build = |dom: &str, dow: &str| -> Result<cron::Schedule, ScheduleError> {
            let mut text = format!(
                "{} {} {} {dom} {} {dow}",
                list(&seconds),
                list(&minutes),
                list(&hours),
                list(&months)
            );
            if let Some(years) = &years {
                text.push(' ');
                text.push_str(years);
            }
            cron::Schedule::from_str(&text).map_err(|e| error(e.to_string()))
        };
        let schedules = if either_day {
            vec![build(&list(&dom), "*")?, build("*", &dow_text(&dow))?]
        } else {
            vec![build(&list(&dom), &dow_text(&dow))?]
        };
        Ok(CronSpec {
            seconds,
            minutes,
            hours,
            days_of_month: dom,
            months,
            days_of_week: dow,
            either_day,
            years,
            with_seconds: fields.len() > 5,
            schedules,
        })
    }
}

impl CronSpec {
    /// The next `n` fire times strictly after `after`, evaluated in `timezone`.
    pub fn next_fires(&self, timezone: Tz, after: DateTime<Utc>, n: usize) -> Vec<DateTime<Utc>> {
        let local = after.with_timezone(&timezone);
        let mut merged: BTreeSet<DateTime<Utc>> = BTreeSet::new();
        for schedule in &self.schedules {
            merged.extend(
                schedule
                    .after(&local)
                    .take(n)
                    .map(|t| t.with_timezone(&Utc)),
            );
        }
        merged.into_iter().take(n).collect()
    }

    /// systemd `OnCalendar=` values equivalent to this expression (two for the day-of-month OR day-of-week
    /// rule).
    pub fn on_calendar(&self, timezone: Tz) -> Vec<String> {
        let all = |values: &BTreeSet<u32>, min: u32, max: u32| {
            if values.len() as u32 == max - min + 1 {
                "*".to_string()
            } else {
                list(values)
            }
        };
        let names = |days: &BTreeSet<u32>| {
            days.iter()
                .map(|d| {
                    let name = DAYS[*d as usize];
                    format!("{}{}", &name[..1], name[1..].to_lowercase())
                })
                .collect::<Vec<_>>()
                .join(",")
        };
        let year = self.years.clone().unwrap_or_else(|| "*".into());
        let time = format!(
            "{}:{}:{}",
            all(&self.hours, 0, 23),
            all(&self.minutes, 0, 59),
            all(&self.seconds, 0, 59)
        );
        let months = all(&self.months, 1, 12);
        let every_day: BTreeSet<u32> = (0..7).collect();
        let line = |dow: &BTreeSet<u32>, dom: Option<&BTreeSet<u32>>| {
            let dom = dom.map(|d| all(d, 1, 31)).unwrap_or_else(|| "*".into());
            let prefix = if dow.len() == 7 {
                String::new()
            } else {
                format!("{} ", names(dow))
            };
            format!("{prefix}{year}-{months}-{dom} {time} {}", timezone.name())
        };
        if self.either_day {
            vec![
                line(&every_day, Some(&self.days_of_month)),
                line(&self.days_of_week, None),
            ]
        } else {
            vec![line(&self.days_of_week, Some(&self.days_of_month))]
        }
    }
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

    /// A oneshot service running this job and a timer firing it like the cron expression.
    pub fn systemd_units(&self, binary: &Path, config: &Path) -> (String, String) {
        let service = format!(
            "[Unit]\nDescription=Vigil scheduled run {name}\nWants=network-online.target\nAfter=network-online.target\n\n\
             [Service]\nType=oneshot\nExecStart={binary} run --schedule {name} --config {config}\n",
            name = self.name,
            binary = binary.display(),
            config = config.display(),
        );
        let mut timer = format!(
            "[Unit]\nDescription=Vigil scheduled run {name} ({cron}, {tz})\n\n[Timer]\n",
            name = self.name,
            cron = self.cron,
            tz = self.timezone.name()
        );
        for calendar in self.cron_spec.on_calendar(self.timezone) {
            timer.push_str(&format!("OnCalendar={calendar}\n"));
        }
        timer.push_str(&format!(
            "Persistent=true\nUnit=vigil-{}.service\n\n[Install]\nWantedBy=timers.target\n",
            self.name
        ));
        (service, timer)
    }

    /// A crontab entry (with a `CRON_TZ=` line, honoured by cronie) running this job.
    pub fn crontab_line(&self, binary: &Path, config: &Path) -> Result<String, ScheduleError> {
        if self.cron_spec.with_seconds {
            return Err(ScheduleError::Render(format!(
                "schedule {}: crontab has no seconds field; use `vigil schedules systemd {}` or `vigil daemon`",
                self.name, self.name
            )));
        }
        let expression = match self.cron.trim() {
            shortcut if shortcut.starts_with('@') => shortcut.to_string(),
            fields => fields.split_whitespace().collect::<Vec<_>>().join(" "),
        };
        Ok(format!(
            "CRON_TZ={}\n{expression} {} run --schedule {} --config {}\n",
            self.timezone.name(),
            binary.display(),
            self.name,
            config.display()
        ))
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

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    fn fires(expression: &str, tz: Tz, after: &str, n: usize) -> Vec<String> {
        let spec: CronSpec = expression.parse().unwrap_or_else(|e| panic!("{e}"));
        spec.next_fires(tz, at(after), n)
            .iter()
            .map(|t| t.format("%a %Y-%m-%d %H:%M:%S").to_string())
            .collect()
    }

    // 2026-11-02 is a Monday.
    const MONDAY: &str = "2026-11-02T00:00:30Z";

    #[test]
    fn day_of_week_means_what_it_means_in_crontab() {
        assert_eq!(
            fires("0 9 * * 1-5", Tz::UTC, "2026-11-06T10:00:00Z", 2),
            ["Mon 2026-11-09 09:00:00", "Tue 2026-11-10 09:00:00"]
        );
        assert_eq!(
            fires("0 9 * * 0", Tz::UTC, MONDAY, 1),
            ["Sun 2026-11-08 09:00:00"]
        );
        assert_eq!(
            fires("0 9 * * 7", Tz::UTC, MONDAY, 1),
            ["Sun 2026-11-08 09:00:00"]
        );
        assert_eq!(
            fires("0 9 * * 5-7", Tz::UTC, MONDAY, 3),
            [
                "Fri 2026-11-06 09:00:00",
                "Sat 2026-11-07 09:00:00",
                "Sun 2026-11-08 09:00:00"
            ]
        );
        assert_eq!(
            fires("0 9 * * sun,WED", Tz::UTC, MONDAY, 2),
            ["Wed 2026-11-04 09:00:00", "Sun 2026-11-08 09:00:00"]
        );
        assert_eq!(
            fires("0 9 * * MON-FRI", Tz::UTC, "2026-11-07T00:00:00Z", 1),
            ["Mon 2026-11-09 09:00:00"]
        );
        // Steps and lists: */2 is Sun, Tue, Thu, Sat; 1-5/2 is Mon, Wed, Fri.
        assert_eq!(
            fires("0 9 * * */2", Tz::UTC, MONDAY, 3),
            [
                "Tue 2026-11-03 09:00:00",
                "Thu 2026-11-05 09:00:00",
                "Sat 2026-11-07 09:00:00"
            ]
        );
        assert_eq!(
            fires("0 9 * * 1-5/2", Tz::UTC, MONDAY, 3),
            [
                "Mon 2026-11-02 09:00:00",
                "Wed 2026-11-04 09:00:00",
                "Fri 2026-11-06 09:00:00"
            ]
        );
    }

    #[test]
    fn day_of_month_or_day_of_week_when_both_are_restricted() {
        // Every 13th and every Friday.
        assert_eq!(
            fires("0 0 13 * 5", Tz::UTC, "2026-11-01T00:00:00Z", 4),
            [
                "Fri 2026-11-06 00:00:00",
                "Fri 2026-11-13 00:00:00",
                "Fri 2026-11-20 00:00:00",
                "Fri 2026-11-27 00:00:00"
            ]
        );
        assert_eq!(
            fires("0 0 13 * 5", Tz::UTC, "2026-11-28T00:00:00Z", 3),
            [
                "Fri 2026-12-04 00:00:00",
                "Fri 2026-12-11 00:00:00",
                "Sun 2026-12-13 00:00:00"
            ]
        );
        // A day-of-week field starting with * does not restrict: AND semantics, as in cron.
        assert_eq!(
            fires("0 0 13 * */1", Tz::UTC, "2026-11-01T00:00:00Z", 1),
            ["Fri 2026-11-13 00:00:00"]
        );
    }

    #[test]
    fn minutes_hours_months_shortcuts_and_seconds() {
        assert_eq!(
            fires("*/20 8-9 * * *", Tz::UTC, MONDAY, 3),
            [
                "Mon 2026-11-02 08:00:00",
                "Mon 2026-11-02 08:20:00",
                "Mon 2026-11-02 08:40:00"
            ]
        );
        assert_eq!(
            fires("0 0 1 jan,JUL *", Tz::UTC, MONDAY, 2),
            ["Fri 2027-01-01 00:00:00", "Thu 2027-07-01 00:00:00"]
        );
        assert_eq!(
            fires("@hourly", Tz::UTC, MONDAY, 1),
            ["Mon 2026-11-02 01:00:00"]
        );
        assert_eq!(
            fires("@weekly", Tz::UTC, MONDAY, 1),
            ["Sun 2026-11-08 00:00:00"]
        );
        assert_eq!(
            fires("@monthly", Tz::UTC, MONDAY, 1),
            ["Tue 2026-12-01 00:00:00"]
        );
        assert_eq!(
            fires("30 */15 * * * *", Tz::UTC, MONDAY, 2),
            ["Mon 2026-11-02 00:15:30", "Mon 2026-11-02 00:30:30"]
        );
        assert_eq!(
            fires("0 0 12 1 1 * 2030", Tz::UTC, MONDAY, 1),
            ["Tue 2030-01-01 12:00:00"]
        );
    }

    #[test]
    fn time_zones_follow_daylight_saving() {
        let berlin: Tz = "Europe/Berlin".parse().unwrap();
        assert_eq!(
            fires("0 9 * * *", berlin, "2026-01-10T12:00:00Z", 1),
            ["Sun 2026-01-11 08:00:00"]
        );
        assert_eq!(
            fires("0 9 * * *", berlin, "2026-07-10T12:00:00Z", 1),
            ["Sat 2026-07-11 07:00:00"]
        );
    }

    #[test]
    fn bad_expressions_are_clear_errors_never_panics() {
        for bad in [
            "",
            "* * * *",
            "* * * * * * * *",
            "60 * * * *",
            "* 24 * * *",
            "* * 0 * *",
            "* * * 13 *",
            "* * * * 8",
            "5-1 * * * *",
            "*/0 * * * *",
            "a b c d e",
            "* * * * MON-",
            "@often",
            ",,, * * * *",
            "*/ * * * *",
            "1-2-3 * * * *",
            "* * * * FUNDAY",
            "\u{e9} * * * *",
        ] {
            let result = bad.parse::<CronSpec>();
            assert!(result.is_err(), "{bad:?} was accepted");
            assert!(result
                .unwrap_err()
                .to_string()
                .contains("invalid cron expression"));
        }
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
    fn systemd_calendars_match_the_next_fire_times() {
        // Checked against systemd-analyze when it is installed (it is in CI: Debian's systemd package).
        let Ok(probe) = std::process::Command::new("systemd-analyze")
            .arg("--version")
            .output()
        else {
            eprintln!(
                "systemd-analyze is not installed: OnCalendar lines not checked against systemd"
            );
            return;
        };
        assert!(probe.status.success());
        let berlin: Tz = "Europe/Berlin".parse().unwrap();
        for (expression, tz) in [
            ("0 * * * *", Tz::UTC),
            ("30 2 * * *", Tz::UTC),
            ("0 9 * * 1-5", berlin),
            ("0 0 13 * 5", Tz::UTC),
            ("*/20 8-9 * * 0,6", Tz::UTC),
            ("15 4 1 jan,jul *", berlin),
            ("30 */15 * * * *", Tz::UTC),
        ] {
            let spec: CronSpec = expression.parse().unwrap();
            let base = at("2026-11-02T00:00:30Z");
            let expected = spec.next_fires(tz, base, 1)[0];
            let mut earliest: Option<DateTime<Utc>> = None;
            for calendar in spec.on_calendar(tz) {
                let output = std::process::Command::new("systemd-analyze")
                    .args(["calendar", "--base-time=2026-11-02 00:00:30 UTC", &calendar])
                    .env("TZ", "UTC")
                    .output()
                    .unwrap();
                let text = String::from_utf8_lossy(&output.stdout);
                assert!(
                    output.status.success(),
                    "{calendar}: {}",
                    String::from_utf8_lossy(&output.stderr)
                );
                let line = text
                    .lines()
                    .find(|l| l.trim_start().starts_with("Next elapse:"))
                    .unwrap();
                let when = line.split_once(':').unwrap().1.trim();
                // e.g. "Mon 2026-11-02 01:00:00 UTC"
                let parsed =
                    chrono::NaiveDateTime::parse_from_str(&when[4..23], "%Y-%m-%d %H:%M:%S")
                        .unwrap()
                        .and_utc();
                earliest = Some(earliest.map_or(parsed, |e| e.min(parsed)));
            }
            assert_eq!(earliest, Some(expected), "{expression} in {tz}");
        }
    }
}
