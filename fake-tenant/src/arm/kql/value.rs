//! Scalar values and their comparisons, after the Kusto reference pages "Scalar data types",
//! "String operators", "== (equals) operator", "=~ (equals) operator" and "The dynamic data
//! type". Type mismatches that Kusto reports at query time (comparing a string with a number)
//! compare as null here, which `where` treats as false.

use serde_json::Value as Json;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// Column types of the tables the emulator knows (the Log Analytics table references).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnType {
    Bool,
    Long,
    Real,
    Str,
    DateTime,
    TimeSpan,
    Dynamic,
}

impl ColumnType {
    /// The value a row has in a column it does not carry. Kusto strings are never null (an
    /// absent string is `""`); other types are null.
    pub fn empty(self) -> Value {
        match self {
            ColumnType::Str => Value::Str(String::new()),
            _ => Value::Null,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Long(i64),
    Real(f64),
    Str(String),
    /// Nanoseconds since the Unix epoch, UTC.
    DateTime(i64),
    /// Nanoseconds.
    TimeSpan(i64),
    /// Arrays and property bags. Scalars inside a dynamic value are turned into typed values
    /// when accessed (`TargetResources[0].userPrincipalName` is a string).
    Dynamic(Json),
}

impl Value {
    pub fn from_json(json: Json) -> Value {
        match json {
            Json::Null => Value::Null,
            Json::Bool(b) => Value::Bool(b),
            Json::Number(n) => match n.as_i64() {
                Some(i) => Value::Long(i),
                None => n.as_f64().map(Value::Real).unwrap_or(Value::Null),
            },
            Json::String(s) => Value::Str(s),
            other => Value::Dynamic(other),
        }
    }

    /// The value as a row field of a query result (what the API's JSON would carry).
    pub fn to_json(&self) -> Json {
        match self {
            Value::Null => Json::Null,
            Value::Bool(b) => Json::Bool(*b),
            Value::Long(n) => Json::from(*n),
            Value::Real(r) => serde_json::Number::from_f64(*r)
                .map(Json::Number)
                .unwrap_or(Json::Null),
            Value::Str(s) => Json::String(s.clone()),
            Value::DateTime(_) | Value::TimeSpan(_) => Json::String(self.to_text()),
            Value::Dynamic(j) => j.clone(),
        }
    }

    /// `datetime(…)` literal text: RFC 3339, or a date / date-time without zone (UTC).
    pub fn parse_datetime(raw: &str) -> Option<Value> {
        let raw = raw.trim();
        if let Ok(t) = OffsetDateTime::parse(raw, &Rfc3339) {
            return nanos(t).map(Value::DateTime);
        }
        let with_zone = if raw.len() == 10 {
            format!("{raw}T00:00:00Z")
        } else {
            format!("{}Z", raw.replacen(' ', "T", 1))
        };
        OffsetDateTime::parse(&with_zone, &Rfc3339)
            .ok()
            .and_then(nanos)
            .map(Value::DateTime)
    }

    /// `tostring()`: how the value reads as a string.
    pub fn to_text(&self) -> String {
        match self {
            Value::Null => String::new(),
            Value::Bool(b) => b.to_string(),
            Value::Long(n) => n.to_string(),
            Value::Real(r) => r.to_string(),
            Value::Str(s) => s.clone(),
            Value::DateTime(ns) => OffsetDateTime::from_unix_timestamp_nanos(i128::from(*ns))
                .ok()
                .and_then(|t| t.format(&Rfc3339).ok())
                .unwrap_or_default(),
            Value::TimeSpan(ns) => timespan_text(*ns),
            Value::Dynamic(j) => j.to_string(),
        }
    }

    pub fn is_true(&self) -> bool {
        matches!(self, Value::Bool(true))
    }

    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// `isempty()`: null, or an empty string.
    pub fn is_empty(&self) -> bool {
        match self {
            Value::Null => true,
            Value::Str(s) => s.is_empty(),
            _ => false,
        }
    }

    fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Long(n) => Some(*n as f64),
            Value::Real(r) => Some(*r),
            _ => None,
        }
    }

    /// A key for grouping and `dcount`: equal values (by `==`) get equal keys.
    pub fn group_key(&self) -> String {
        match self {
            Value::Null => "n:".into(),
            Value::Bool(b) => format!("b:{b}"),
            Value::Long(n) => format!("l:{n}"),
            Value::Real(r) => format!("r:{r}"),
            Value::Str(s) => format!("s:{s}"),
            Value::DateTime(n) => format!("d:{n}"),
            Value::TimeSpan(n) => format!("t:{n}"),
            Value::Dynamic(j) => format!("j:{j}"),
        }
    }

    /// Ordering for `<`, `>`, sort and min/max; `None` when the types do not compare.
    pub fn compare(&self, other: &Value) -> Option<std::cmp::Ordering> {
        match (self, other) {
            (Value::Str(a), Value::Str(b)) => Some(a.cmp(b)),
            (Value::DateTime(a), Value::DateTime(b)) | (Value::TimeSpan(a), Value::TimeSpan(b)) => {
                Some(a.cmp(b))
            }
            (Value::Bool(a), Value::Bool(b)) => Some(a.cmp(b)),
            (Value::Long(a), Value::Long(b)) => Some(a.cmp(b)),
            (a, b) => match (a.as_f64(), b.as_f64()) {
                (Some(x), Some(y)) => x.partial_cmp(&y),
                _ => None,
            },
        }
    }

    /// A total order over all values for `sort` and `top` (sorting must never see an
    /// inconsistent comparison): values order by type first, then by value.
    pub fn total_cmp(&self, other: &Value) -> std::cmp::Ordering {
        fn rank(v: &Value) -> u8 {
            match v {
                Value::Null => 0,
                Value::Bool(_) => 1,
                Value::Long(_) | Value::Real(_) => 2,
                Value::DateTime(_) => 3,
                Value::TimeSpan(_) => 4,
                Value::Str(_) => 5,
                Value::Dynamic(_) => 6,
            }
        }
        match (self, other) {
            (Value::Long(a), Value::Long(b)) => a.cmp(b),
            (a, b) if rank(a) == 2 && rank(b) == 2 => {
                let x = a.as_f64().unwrap_or(0.0);
                let y = b.as_f64().unwrap_or(0.0);
                x.total_cmp(&y)
            }
            (Value::Dynamic(a), Value::Dynamic(b)) => a.to_string().cmp(&b.to_string()),
            (a, b) if rank(a) == rank(b) => a.compare(b).unwrap_or(std::cmp::Ordering::Equal),
            (a, b) => rank(a).cmp(&rank(b)),
        }
    }

    /// `==` (case-sensitive for strings, "== (equals) operator"); null when either side is
    /// null or the types do not compare.
    pub fn equals(&self, other: &Value) -> Value {
        if self.is_null() || other.is_null() {
            return Value::Null;
        }
        match (self, other) {
            (Value::Dynamic(a), Value::Dynamic(b)) => Value::Bool(a == b),
            _ => match self.compare(other) {
                Some(o) => Value::Bool(o == std::cmp::Ordering::Equal),
                None => Value::Null,
            },
        }
    }

    /// `=~`: equality of strings ignoring case ("=~ (equals) operator"); other types as `==`.
    pub fn equals_ignore_case(&self, other: &Value) -> Value {
        match (self, other) {
            (Value::Str(a), Value::Str(b)) => Value::Bool(a.to_lowercase() == b.to_lowercase()),
            _ => self.equals(other),
        }
    }
}

fn nanos(t: OffsetDateTime) -> Option<i64> {
    i64::try_from(t.unix_timestamp_nanos()).ok()
}

/// Kusto's timespan text: `[-][d.]hh:mm:ss[.fffffff]`.
fn timespan_text(ns: i64) -> String {
    let sign = if ns < 0 { "-" } else { "" };
    let total = ns.unsigned_abs();
    let ticks = (total % 1_000_000_000) / 100;
    let seconds = total / 1_000_000_000;
    let (days, rest) = (seconds / 86_400, seconds % 86_400);
    let (h, m, s) = (rest / 3600, (rest % 3600) / 60, rest % 60);
    let mut text = String::from(sign);
    if days > 0 {
        text.push_str(&format!("{days}."));
    }
    text.push_str(&format!("{h:02}:{m:02}:{s:02}"));
    if ticks > 0 {
        text.push_str(&format!(".{ticks:07}"));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equality_follows_kusto() {
        let a = Value::Str("BG@Contoso.com".into());
        let b = Value::Str("bg@contoso.com".into());
        assert_eq!(a.equals(&b), Value::Bool(false), "== is case-sensitive");
        assert_eq!(a.equals_ignore_case(&b), Value::Bool(true), "=~ is not");
        assert_eq!(Value::Long(1).equals(&Value::Real(1.0)), Value::Bool(true));
        assert_eq!(a.equals(&Value::Long(1)), Value::Null);
        assert_eq!(Value::Null.equals(&Value::Null), Value::Null);
    }

    #[test]
    fn datetimes_and_timespans_read_like_kusto() {
        let Some(Value::DateTime(ns)) = Value::parse_datetime("2024-05-01T12:00:00Z") else {
            panic!("datetime parses");
        };
        assert_eq!(Value::DateTime(ns).to_text(), "2024-05-01T12:00:00Z");
        assert!(Value::parse_datetime("2024-05-01").is_some());
        assert!(Value::parse_datetime("not a date").is_none());
        assert_eq!(Value::TimeSpan(300_000_000_000).to_text(), "00:05:00");
        assert_eq!(Value::TimeSpan(90_061_000_000_000).to_text(), "1.01:01:01");
    }
}
