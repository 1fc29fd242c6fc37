//! Schedules stage, rendering half: a schedule as systemd `OnCalendar=` lines, a `.service`/`.timer` pair, or a
//! crontab entry, so hosts without `vigil daemon` can fire the same jobs at the same times.

use std::collections::BTreeSet;
use std::path::Path;

use chrono_tz::Tz;

use super::cron::{list, CronSpec, DAYS};
use super::{Schedule, ScheduleError};

impl CronSpec {
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
            return Err(ScheduleError::CrontabHasNoSeconds {
                name: self.name.clone(),
            });
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

#[cfg(test)]
mod tests {
    use chrono::{DateTime, Utc};

    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
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

    #[test]
    fn crontab_lines_keep_the_expression_and_refuse_seconds() {
        let binary = Path::new("/usr/bin/vigil");
        let config = Path::new("/etc/vigil/vigil.toml");
        let nightly = super::super::tests::schedule(
            "nightly",
            "name = \"nightly\"\ncron = \" 30  2 * *   1-5 \"\ntimezone = \"Europe/Berlin\"\n",
        )
        .unwrap();
        assert_eq!(
            nightly.crontab_line(binary, config).unwrap(),
            "CRON_TZ=Europe/Berlin\n30 2 * * 1-5 /usr/bin/vigil run --schedule nightly --config /etc/vigil/vigil.toml\n"
        );
        let hourly =
            super::super::tests::schedule("hourly", "name = \"hourly\"\ncron = \"@hourly\"\n")
                .unwrap();
        assert_eq!(
            hourly.crontab_line(binary, config).unwrap(),
            "CRON_TZ=UTC\n@hourly /usr/bin/vigil run --schedule hourly --config /etc/vigil/vigil.toml\n"
        );
        let often =
            super::super::tests::schedule("often", "name = \"often\"\ncron = \"*/2 * * * * *\"\n")
                .unwrap();
        let error = often.crontab_line(binary, config).unwrap_err();
        assert_eq!(
            error.to_string(),
            "schedule often: crontab has no seconds field; use `vigil schedules systemd often` or `vigil daemon`"
        );
    }

    #[test]
    fn timers_carry_one_on_calendar_line_per_day_rule() {
        let friday =
            super::super::tests::schedule("friday", "name = \"friday\"\ncron = \"0 0 13 * 5\"\n")
                .unwrap();
        let (service, timer) =
            friday.systemd_units(Path::new("/usr/bin/vigil"), Path::new("/etc/vigil.toml"));
        assert!(
            service.contains(
                "ExecStart=/usr/bin/vigil run --schedule friday --config /etc/vigil.toml\n"
            ),
            "{service}"
        );
        assert!(
            timer.contains("OnCalendar=*-*-13 0:0:0 UTC\nOnCalendar=Fri *-*-* 0:0:0 UTC\n"),
            "{timer}"
        );
        assert!(timer.contains("Unit=vigil-friday.service\n"), "{timer}");
    }
}
