//! Schedules stage, cron half: a crontab expression (5 fields, or 6-7 with seconds first, or an `@` shortcut)
//! expanded field by field, translated for the `cron` crate, and asked for its next fire times. Kept apart
//! from loading and rendering because crontab semantics are the subtle part and have their own tests.

use std::collections::BTreeSet;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use super::ScheduleError;

pub(super) const DAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];
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

pub(super) fn list(values: &BTreeSet<u32>) -> String {
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
    schedules: Vec<::cron::Schedule>,
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
        let build = |dom: &str, dow: &str| -> Result<::cron::Schedule, ScheduleError> {
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
            ::cron::Schedule::from_str(&text).map_err(|e| error(e.to_string()))
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
}
