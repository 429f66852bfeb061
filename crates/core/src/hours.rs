//! Working hours: when operators are there to answer. Outside them, a hand-over still
//! queues the conversation but tells the user when to expect an answer.

use chrono::{DateTime, Datelike, NaiveTime, Utc, Weekday};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

/// Opening intervals per weekday (Monday first), in the tenant's time zone.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkingHours {
    /// `days[0]` is Monday; each day a list of `["09:00", "18:00"]` intervals.
    pub days: [Vec<(String, String)>; 7],
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum HoursError {
    #[error("{0:?} is not a time (HH:MM)")]
    BadTime(String),
    #[error("{0}–{1}: the end must be after the start")]
    Backwards(String, String),
    #[error("unknown time zone {0:?}")]
    BadZone(String),
}

impl HoursError {
    /// The problem as a person reads it in their language (`err.<code>`).
    pub fn problem(&self) -> crate::validate::Problem {
        use crate::validate::Problem;
        match self {
            HoursError::BadTime(t) => Problem::new("hours_time").with("time", t),
            HoursError::Backwards(from, to) => Problem::new("hours_backwards")
                .with("from", from)
                .with("to", to),
            HoursError::BadZone(z) => Problem::new("timezone").with("zone", z),
        }
    }
}

pub fn parse_time(s: &str) -> Result<NaiveTime, HoursError> {
    NaiveTime::parse_from_str(s.trim(), "%H:%M").map_err(|_| HoursError::BadTime(s.to_string()))
}

pub fn parse_zone(s: &str) -> Result<Tz, HoursError> {
    s.trim()
        .parse::<Tz>()
        .map_err(|_| HoursError::BadZone(s.to_string()))
}

impl WorkingHours {
    /// Every interval is valid and ends after it starts ("24:00" is not allowed; use 23:59).
    pub fn validate(&self) -> Result<(), HoursError> {
        for day in &self.days {
            for (from, to) in day {
                let (a, b) = (parse_time(from)?, parse_time(to)?);
                if b <= a {
                    return Err(HoursError::Backwards(from.clone(), to.clone()));
                }
            }
        }
        Ok(())
    }

    /// No interval at all means "always open".
    pub fn is_always_open(&self) -> bool {
        self.days.iter().all(Vec::is_empty)
    }

    pub fn is_open(&self, at: DateTime<Utc>, zone: Tz) -> bool {
        if self.is_always_open() {
            return true;
        }
        let local = at.with_timezone(&zone);
        let day = match local.weekday() {
            Weekday::Mon => 0,
            Weekday::Tue => 1,
            Weekday::Wed => 2,
            Weekday::Thu => 3,
            Weekday::Fri => 4,
            Weekday::Sat => 5,
            Weekday::Sun => 6,
        };
        let now = local.time();
        self.days[day].iter().any(|(from, to)| {
            matches!((parse_time(from), parse_time(to)), (Ok(a), Ok(b)) if now >= a && now < b)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn weekdays_9_to_18() -> WorkingHours {
        let mut h = WorkingHours::default();
        for d in 0..5 {
            h.days[d] = vec![("09:00".into(), "18:00".into())];
        }
        h
    }

    #[test]
    fn open_within_hours_in_the_tenants_zone() {
        let h = weekdays_9_to_18();
        let moscow: Tz = "Europe/Moscow".parse().unwrap();
        // Monday 2026-11-23 07:00 UTC = 10:00 in Moscow.
        let at = DateTime::parse_from_rfc3339("2026-11-23T07:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert!(h.is_open(at, moscow));
        assert!(!h.is_open(at, Tz::UTC), "07:00 UTC is before opening");
        // Saturday.
        let sat = DateTime::parse_from_rfc3339("2026-11-28T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert!(!h.is_open(sat, Tz::UTC));
        // The end is exclusive.
        let six = DateTime::parse_from_rfc3339("2026-11-23T18:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert!(!h.is_open(six, Tz::UTC));
    }

    #[test]
    fn no_hours_means_always_open_and_bad_hours_are_rejected() {
        assert!(WorkingHours::default().is_open(Utc::now(), Tz::UTC));
        let mut h = WorkingHours::default();
        h.days[0] = vec![("18:00".into(), "09:00".into())];
        assert!(matches!(h.validate(), Err(HoursError::Backwards(..))));
        h.days[0] = vec![("9am".into(), "18:00".into())];
        assert!(matches!(h.validate(), Err(HoursError::BadTime(_))));
        assert!(parse_zone("Mars/Olympus").is_err());
        assert!(parse_zone("Asia/Yekaterinburg").is_ok());
    }
}
