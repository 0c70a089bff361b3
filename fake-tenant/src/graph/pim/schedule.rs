//! The time side of PIM: `requestSchedule` (a start plus an `expirationPattern`), the ISO 8601
//! durations PIM policies and requests use (`P180D`, `PT8H`), and Graph's timestamp format.

use serde_json::{json, Map, Value};
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime};

/// Graph timestamps: RFC 3339 in UTC with a `Z`. Whole seconds keep them stable between reads.
pub fn format_timestamp(t: OffsetDateTime) -> String {
    t.replace_nanosecond(0)
        .unwrap_or(t)
        .format(&Rfc3339)
        .unwrap_or_default()
}

pub fn parse_timestamp(text: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(text, &Rfc3339).ok()
}

/// Parses the day-time subset of ISO 8601 durations that Graph's `Edm.Duration` allows
/// (`P[n]DT[n]H[n]M[n]S`, plus weeks). Years and months are rejected: they have no fixed length.
pub fn parse_iso_duration(text: &str) -> Option<Duration> {
    let rest = text.strip_prefix('P')?;
    if rest.is_empty() {
        return None;
    }
    let (date_part, time_part) = match rest.split_once('T') {
        Some((d, t)) if !t.is_empty() => (d, Some(t)),
        Some(_) => return None,
        None => (rest, None),
    };
    let mut total = Duration::ZERO;
    let mut number = String::new();
    for c in date_part.chars() {
        match c {
            '0'..='9' => number.push(c),
            'W' | 'D' => {
                let n: i64 = number.parse().ok()?;
                number.clear();
                total += if c == 'W' {
                    Duration::weeks(n)
                } else {
                    Duration::days(n)
                };
            }
            _ => return None,
        }
    }
    if !number.is_empty() {
        return None;
    }
    for c in time_part.unwrap_or("").chars() {
        match c {
            '0'..='9' | '.' => number.push(c),
            'H' | 'M' | 'S' => {
                let n: f64 = number.parse().ok()?;
                number.clear();
                let seconds = match c {
                    'H' => n * 3600.0,
                    'M' => n * 60.0,
                    _ => n,
                };
                total += Duration::seconds_f64(seconds);
            }
            _ => return None,
        }
    }
    number.is_empty().then_some(total)
}

/// `expirationPattern.type` and what it carries.
#[derive(Debug, Clone, PartialEq)]
pub enum Expiration {
    /// `noExpiration`: a permanent assignment.
    Never,
    /// `notSpecified` (or no expiration sent): the policy decides; we treat it as permanent,
    /// which a policy that requires expiration then rejects.
    NotSpecified,
    AfterDateTime(OffsetDateTime),
    /// The duration as sent (ISO 8601) and its value.
    AfterDuration(String, Duration),
}

/// A request's or a schedule's `scheduleInfo`.
#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    pub start: OffsetDateTime,
    pub expiration: Expiration,
}

impl Schedule {
    pub fn permanent_from(start: OffsetDateTime) -> Self {
        Schedule {
            start,
            expiration: Expiration::Never,
        }
    }

    /// Reads `scheduleInfo` from a request body. A missing start means "now", as in Graph.
    pub fn from_request(info: Option<&Value>, now: OffsetDateTime) -> Result<Self, String> {
        let empty = Map::new();
        let info = match info {
            None | Some(Value::Null) => &empty,
            Some(Value::Object(o)) => o,
            Some(_) => return Err("scheduleInfo must be an object.".into()),
        };
        let start = match info.get("startDateTime") {
            None | Some(Value::Null) => now,
            Some(Value::String(s)) => parse_timestamp(s).ok_or_else(|| {
                format!("scheduleInfo.startDateTime '{s}' is not a valid date-time.")
            })?,
            Some(_) => return Err("scheduleInfo.startDateTime must be a string.".into()),
        };
        let expiration = match info.get("expiration") {
            None | Some(Value::Null) => Expiration::NotSpecified,
            Some(Value::Object(e)) => Self::expiration_from(e)?,
            Some(_) => return Err("scheduleInfo.expiration must be an object.".into()),
        };
        if let Expiration::AfterDateTime(end) = expiration {
            if end <= start {
                return Err(
                    "scheduleInfo.expiration.endDateTime must be later than startDateTime.".into(),
                );
            }
        }
        Ok(Schedule { start, expiration })
    }

    fn expiration_from(e: &Map<String, Value>) -> Result<Expiration, String> {
        let kind = e
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or("notSpecified");
        match kind {
            "noExpiration" => Ok(Expiration::Never),
            "notSpecified" => Ok(Expiration::NotSpecified),
            "afterDateTime" => {
                let text = e.get("endDateTime").and_then(Value::as_str).ok_or(
                    "scheduleInfo.expiration.endDateTime is required when type is afterDateTime.",
                )?;
                parse_timestamp(text).map(Expiration::AfterDateTime).ok_or_else(|| {
                    format!("scheduleInfo.expiration.endDateTime '{text}' is not a valid date-time.")
                })
            }
            "afterDuration" => {
                let text = e.get("duration").and_then(Value::as_str).ok_or(
                    "scheduleInfo.expiration.duration is required when type is afterDuration.",
                )?;
                match parse_iso_duration(text) {
                    Some(d) if d > Duration::ZERO => Ok(Expiration::AfterDuration(text.to_owned(), d)),
                    _ => Err(format!(
                        "scheduleInfo.expiration.duration '{text}' is not a positive ISO 8601 duration."
                    )),
                }
            }
            other => Err(format!(
                "scheduleInfo.expiration.type '{other}' is not one of noExpiration, afterDateTime, afterDuration, notSpecified."
            )),
        }
    }

    pub fn end(&self) -> Option<OffsetDateTime> {
        match &self.expiration {
            Expiration::Never | Expiration::NotSpecified => None,
            Expiration::AfterDateTime(end) => Some(*end),
            Expiration::AfterDuration(_, d) => Some(self.start + *d),
        }
    }

    /// How long the assignment lasts; `None` when permanent.
    pub fn length(&self) -> Option<Duration> {
        self.end().map(|end| end - self.start)
    }

    /// Whether the schedule has ended by `t` (permanent schedules never do).
    pub fn has_ended(&self, t: OffsetDateTime) -> bool {
        self.end().is_some_and(|end| end <= t)
    }

    pub fn is_active_at(&self, t: OffsetDateTime) -> bool {
        self.start <= t && !self.has_ended(t)
    }

    /// The `requestSchedule` JSON Graph returns.
    pub fn to_json(&self) -> Value {
        let (kind, end, duration) = match &self.expiration {
            Expiration::Never => ("noExpiration", None, None),
            Expiration::NotSpecified => ("notSpecified", None, None),
            Expiration::AfterDateTime(end) => ("afterDateTime", Some(*end), None),
            Expiration::AfterDuration(text, _) => ("afterDuration", self.end(), Some(text.clone())),
        };
        json!({
            "startDateTime": format_timestamp(self.start),
            "recurrence": null,
            "expiration": {
                "type": kind,
                "endDateTime": end.map(format_timestamp),
                "duration": duration,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn iso_durations_in_the_graph_subset_parse() {
        assert_eq!(parse_iso_duration("P180D"), Some(Duration::days(180)));
        assert_eq!(parse_iso_duration("PT8H"), Some(Duration::hours(8)));
        assert_eq!(
            parse_iso_duration("P1DT2H30M"),
            Some(Duration::days(1) + Duration::hours(2) + Duration::minutes(30))
        );
        assert_eq!(
            parse_iso_duration("PT1.5S"),
            Some(Duration::milliseconds(1500))
        );
        assert_eq!(parse_iso_duration("P2W"), Some(Duration::weeks(2)));
    }

    #[test]
    fn durations_without_fixed_length_or_malformed_are_rejected() {
        for bad in ["P1Y", "P1M", "P", "PT", "180D", "P1DT", "PT5", "P5X"] {
            assert_eq!(parse_iso_duration(bad), None, "{bad}");
        }
    }

    #[test]
    fn request_schedule_defaults_to_now_and_unspecified_expiration() {
        let now = datetime!(2026-01-01 00:00 UTC);
        let s = Schedule::from_request(None, now).unwrap();
        assert_eq!(s.start, now);
        assert_eq!(s.expiration, Expiration::NotSpecified);
        assert_eq!(s.end(), None);
    }

    #[test]
    fn after_duration_ends_relative_to_start() {
        let now = datetime!(2026-01-01 00:00 UTC);
        let info = json!({
            "startDateTime": "2026-02-01T00:00:00Z",
            "expiration": {"type": "afterDuration", "duration": "P10D"}
        });
        let s = Schedule::from_request(Some(&info), now).unwrap();
        assert_eq!(s.end(), Some(datetime!(2026-02-11 00:00 UTC)));
        assert_eq!(s.length(), Some(Duration::days(10)));
        assert!(!s.is_active_at(now), "starts in the future");
        assert!(s.is_active_at(datetime!(2026-02-05 00:00 UTC)));
        assert!(s.has_ended(datetime!(2026-02-11 00:00 UTC)));
        assert_eq!(
            s.to_json()["expiration"],
            json!({"type": "afterDuration", "endDateTime": "2026-02-11T00:00:00Z", "duration": "P10D"})
        );
    }

    #[test]
    fn malformed_expirations_are_explained() {
        let now = datetime!(2026-01-01 00:00 UTC);
        let cases = [
            json!({"expiration": {"type": "afterDateTime"}}),
            json!({"expiration": {"type": "afterDuration", "duration": "P1Y"}}),
            json!({"expiration": {"type": "forever"}}),
            json!({"startDateTime": "yesterday"}),
            json!({"startDateTime": "2026-01-02T00:00:00Z",
                   "expiration": {"type": "afterDateTime", "endDateTime": "2026-01-01T00:00:00Z"}}),
        ];
        for case in cases {
            assert!(Schedule::from_request(Some(&case), now).is_err(), "{case}");
        }
    }
}
