//! Schedules stage, cron half: a crontab expression (5 fields, or 6-7 with seconds first, or an `@` shortcut)
//! expanded field by field, translated for the `cron` crate, and asked for its next fire times. Kept apart
//! from loading and rendering because crontab semantics are the subtle part and have their own tests.

use std::collections::BTreeSet;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

pub(super) const DAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];
const MONTHS: [&str; 12] = [
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];

/// A cron expression that was refused, with the expression as written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid cron expression {expression:?}: {reason}")]
pub struct CronError {
    pub expression: String,
    pub reason: CronReason,
}

/// Why a cron expression was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CronReason {
    #[error("unknown shortcut {0}")]
    UnknownShortcut(String),
    #[error("{0} fields; expected 5 (crontab), or 6-7 with seconds first")]
    FieldCount(usize),
    #[error(transparent)]
    Field(#[from] CronFieldError),
    /// The `cron` crate refused the translated expression (its year field is passed through unchecked).
    #[error("{0}")]
    Unsupported(String),
}

/// Why one crontab field was refused; `field` names it ("day of week").
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CronFieldError {
    #[error("{field}: {text:?} is not a number")]
    NotANumber { field: &'static str, text: String },
    /// For the fields that also take names (months, days of week).
    #[error("{field}: {text:?} is not a number or a name")]
    NotANumberOrName { field: &'static str, text: String },
    #[error("{field}: {value} is outside {min}-{max}")]
    OutOfRange {
        field: &'static str,
        value: u32,
        min: u32,
        max: u32,
    },
    #[error("{field}: bad step in {part:?}")]
    BadStep { field: &'static str, part: String },
    #[error("{field}: range {range:?} runs backwards")]
    Backwards { field: &'static str, range: String },
    #[error("{field}: empty")]
    Empty { field: &'static str },
}

/// One crontab field's range and names.
struct Field {
    name: &'static str,
    min: u32,
    max: u32,
    /// The largest number accepted as written: above `max` only for day of week, where 7 is Sunday again.
    written_max: u32,
    /// Names for `name_base`, `name_base + 1`, ...
    names: &'static [&'static str],
    name_base: u32,
}

impl Field {
    const fn numeric(name: &'static str, min: u32, max: u32) -> Field {
        Field {
            name,
            min,
            max,
            written_max: max,
            names: &[],
            name_base: 0,
        }
    }

    /// One value as written: a number in range or a name.
    fn value(&self, text: &str) -> Result<u32, CronFieldError> {
        if let Some(index) = self.names.iter().position(|n| n.eq_ignore_ascii_case(text)) {
            return Ok(index as u32 + self.name_base);
        }
        let n: u32 = text.parse().map_err(|_| {
            let (field, text) = (self.name, text.to_string());
            if self.names.is_empty() {
                CronFieldError::NotANumber { field, text }
            } else {
                CronFieldError::NotANumberOrName { field, text }
            }
        })?;
        if n < self.min || n > self.written_max {
            return Err(CronFieldError::OutOfRange {
                field: self.name,
                value: n,
                min: self.min,
                max: self.written_max,
            });
        }
        Ok(n)
    }
}

const SECOND: Field = Field::numeric("second", 0, 59);
const MINUTE: Field = Field::numeric("minute", 0, 59);
const HOUR: Field = Field::numeric("hour", 0, 23);
const DAY_OF_MONTH: Field = Field::numeric("day of month", 1, 31);
const MONTH: Field = Field {
    names: &MONTHS,
    name_base: 1,
    ..Field::numeric("month", 1, 12)
};
const DAY_OF_WEEK: Field = Field {
    written_max: 7,
    names: &DAYS,
    ..Field::numeric("day of week", 0, 6)
};

/// Expands a crontab field (`*`, `a-b`, `a`, lists, `/step`) to its values; a day of week 7 becomes 0.
fn expand(text: &str, field: &Field) -> Result<BTreeSet<u32>, CronFieldError> {
    let mut values = BTreeSet::new();
    for part in text.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((range, step)) => {
                let step: u32 = step.parse().ok().filter(|s| *s > 0).ok_or_else(|| {
                    CronFieldError::BadStep {
                        field: field.name,
                        part: part.into(),
                    }
                })?;
                (range, step)
            }
            None => (part, 1),
        };
        let (low, high) = if range == "*" {
            (field.min, field.max)
        } else if let Some((a, b)) = range.split_once('-') {
            (field.value(a)?, field.value(b)?)
        } else if part.contains('/') {
            (field.value(range)?, field.written_max)
        } else {
            let v = field.value(range)?;
            (v, v)
        };
        if low > high {
            return Err(CronFieldError::Backwards {
                field: field.name,
                range: range.into(),
            });
        }
        let mut v = low;
        while v <= high {
            values.insert(v);
            v += step;
        }
    }
    if field.written_max > field.max && values.remove(&7) {
        values.insert(0);
    }
    if values.is_empty() {
        return Err(CronFieldError::Empty { field: field.name });
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
    type Err = CronError;

    fn from_str(expression: &str) -> Result<CronSpec, CronError> {
        CronSpec::parse(expression).map_err(|reason| CronError {
            expression: expression.to_string(),
            reason,
        })
    }
}

impl CronSpec {
    fn parse(expression: &str) -> Result<CronSpec, CronReason> {
        let text = match expression.trim() {
            "@hourly" => "0 * * * *",
            "@daily" | "@midnight" => "0 0 * * *",
            "@weekly" => "0 0 * * 0",
            "@monthly" => "0 0 1 * *",
            "@yearly" | "@annually" => "0 0 1 1 *",
            other if other.starts_with('@') => {
                return Err(CronReason::UnknownShortcut(other.to_string()))
            }
            other => other,
        };
        let fields: Vec<&str> = text.split_whitespace().collect();
        let (second, rest) = match fields.len() {
            5 => ("0", &fields[..]),
            6 | 7 => (fields[0], &fields[1..]),
            n => return Err(CronReason::FieldCount(n)),
        };
        let restricted = |field: &str| !field.starts_with('*');
        let mut spec = CronSpec {
            seconds: expand(second, &SECOND)?,
            minutes: expand(rest[0], &MINUTE)?,
            hours: expand(rest[1], &HOUR)?,
            days_of_month: expand(rest[2], &DAY_OF_MONTH)?,
            months: expand(rest[3], &MONTH)?,
            days_of_week: expand(rest[4], &DAY_OF_WEEK)?,
            either_day: restricted(rest[2]) && restricted(rest[4]),
            years: rest.get(5).map(|y| y.to_string()),
            with_seconds: fields.len() > 5,
            schedules: Vec::new(),
        };
        spec.schedules = spec.translate()?;
        Ok(spec)
    }

    /// The `cron` crate schedules whose union fires like this expression: the crate ANDs the day fields, so
    /// crontab's OR takes one schedule per day field.
    fn translate(&self) -> Result<Vec<::cron::Schedule>, CronReason> {
        // The cron crate's day of week counts Sunday as 1.
        let dow_text = |days: &BTreeSet<u32>| list(&days.iter().map(|d| d + 1).collect());
        let build = |dom: &str, dow: &str| -> Result<::cron::Schedule, CronReason> {
            let mut text = format!(
                "{} {} {} {dom} {} {dow}",
                list(&self.seconds),
                list(&self.minutes),
                list(&self.hours),
                list(&self.months)
            );
            if let Some(years) = &self.years {
                text.push(' ');
                text.push_str(years);
            }
            ::cron::Schedule::from_str(&text).map_err(|e| CronReason::Unsupported(e.to_string()))
        };
        let dom = list(&self.days_of_month);
        if self.either_day {
            Ok(vec![
                build(&dom, "*")?,
                build("*", &dow_text(&self.days_of_week))?,
            ])
        } else {
            Ok(vec![build(&dom, &dow_text(&self.days_of_week))?])
        }
    }

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

    #[test]
    fn errors_name_the_field_and_the_reason() {
        let reason = |expression: &str| expression.parse::<CronSpec>().unwrap_err().reason;
        assert_eq!(
            reason("0 9 * * 8"),
            CronReason::Field(CronFieldError::OutOfRange {
                field: "day of week",
                value: 8,
                min: 0,
                max: 7
            })
        );
        assert_eq!(
            "0 9 * * 8".parse::<CronSpec>().unwrap_err().to_string(),
            "invalid cron expression \"0 9 * * 8\": day of week: 8 is outside 0-7"
        );
        for (expression, message) in [
            ("@often", "unknown shortcut @often"),
            (
                "* * * *",
                "4 fields; expected 5 (crontab), or 6-7 with seconds first",
            ),
            ("a * * * *", "minute: \"a\" is not a number"),
            (
                "* * * * FUNDAY",
                "day of week: \"FUNDAY\" is not a number or a name",
            ),
            ("* * * FOO *", "month: \"FOO\" is not a number or a name"),
            ("* 24 * * *", "hour: 24 is outside 0-23"),
            ("* * 0 * *", "day of month: 0 is outside 1-31"),
            ("61 * * * * *", "second: 61 is outside 0-59"),
            ("*/0 * * * *", "minute: bad step in \"*/0\""),
            ("*/x * * * *", "minute: bad step in \"*/x\""),
            ("5-1 * * * *", "minute: range \"5-1\" runs backwards"),
            ("* * * DEC-JAN *", "month: range \"DEC-JAN\" runs backwards"),
        ] {
            assert_eq!(reason(expression).to_string(), message, "{expression}");
        }
        // The year field is passed to the cron crate as written; its refusal is reported as it words it.
        assert!(matches!(
            reason("0 0 0 1 1 * nineteen"),
            CronReason::Unsupported(_)
        ));
    }

    #[test]
    fn names_steps_and_sunday_seven_expand_as_in_crontab() {
        let spec: CronSpec = "0 9 1-31/10 jan-mar/2 5-7".parse().unwrap();
        assert_eq!(spec.days_of_month, [1, 11, 21, 31].into());
        assert_eq!(spec.months, [1, 3].into());
        assert_eq!(spec.days_of_week, [0, 5, 6].into());
        assert!(spec.either_day);
        assert!(!spec.with_seconds);
        // A single value with a step runs to the field's end: 7 is the largest day of week, folded to Sunday.
        let spec: CronSpec = "0 9 * * 3/2".parse().unwrap();
        assert_eq!(spec.days_of_week, [0, 3, 5].into());
        assert!(!spec.either_day);
        let spec: CronSpec = "30 */15 * * * *".parse().unwrap();
        assert_eq!(spec.seconds, [30].into());
        assert!(spec.with_seconds);
    }
}
