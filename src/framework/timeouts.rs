//! The `timeouts` block every resource has, declared once: per-operation defaults that feed
//! both the schema description and the deadline at apply time, Go-duration parsing that never
//! panics, and the validator that rejects a bad duration at `terraform validate`.
//!
//! Durations follow Go's `time.ParseDuration`, which Terraform and every SDK-based provider use
//! for `timeouts`: a sequence of decimal numbers with units `ns`, `us` (`µs`), `ms`, `s`, `m`,
//! `h`, such as `"30m"`, `"1h30m"`, `"1.5s"`; `"0"` alone needs no unit. Like Go, a duration
//! beyond about 292 years (the range of int64 nanoseconds) is an error, not a wrap-around.
//! Negative durations are refused: a deadline in the past would fail every operation.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::framework::diag::{AttributePath, Diagnostic};
use crate::framework::schema::{Attribute, Block};
use crate::framework::types::Type;
use crate::framework::validators::{string_rule, Validator};

/// The four CRUD operations a `timeouts` block bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Create,
    Read,
    Update,
    Delete,
}

impl Operation {
    pub const ALL: [Operation; 4] = [
        Operation::Create,
        Operation::Read,
        Operation::Update,
        Operation::Delete,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Operation::Create => "create",
            Operation::Read => "read",
            Operation::Update => "update",
            Operation::Delete => "delete",
        }
    }
}

/// A resource's default deadline per operation, and what each one waits for (for the docs).
#[derive(Debug, Clone, Copy)]
pub struct TimeoutDefaults {
    pub create: Duration,
    pub read: Duration,
    pub update: Duration,
    pub delete: Duration,
    /// Completes "How long <operation> may take, …" — e.g. "waiting for Microsoft Entra
    /// replication counts towards it".
    pub includes: &'static str,
}

impl TimeoutDefaults {
    pub fn default_for(&self, operation: Operation) -> Duration {
        match operation {
            Operation::Create => self.create,
            Operation::Read => self.read,
            Operation::Update => self.update,
            Operation::Delete => self.delete,
        }
    }

    /// The schema block.
    pub fn block(&self) -> Block {
        let attributes = Operation::ALL
            .iter()
            .map(|&op| {
                Attribute::optional(
                    op.name(),
                    Type::String,
                    &format!(
                        "How long {} may take, as a Go duration such as `\"10m\"` or \
                         `\"1h30m\"`. Defaults to `{}`; {}.",
                        op.name(),
                        format_go_duration(self.default_for(op)),
                        self.includes
                    ),
                )
                .validate(go_duration())
            })
            .collect();
        Block {
            // Deadlines are the provider's own; the tenant never reports them.
            config_only: true,
            ..Block::single(
                "timeouts",
                "Deadlines for each operation, including retries and consistency waits.",
                attributes,
            )
        }
    }

    /// The deadline for `operation` from a decoded `timeouts` block (absent → the default).
    /// A malformed value is an error on `timeouts.<operation>` (validation normally caught it).
    pub fn duration(
        &self,
        timeouts: Option<&Timeouts>,
        operation: Operation,
    ) -> Result<Duration, Diagnostic> {
        match timeouts.and_then(|t| t.get(operation)) {
            None => Ok(self.default_for(operation)),
            Some(text) => parse_go_duration(text).map_err(|reason| {
                Diagnostic::error(
                    "Invalid timeout",
                    format!("`timeouts.{}` {reason}.", operation.name()),
                )
                .at(AttributePath::root("timeouts").attr(operation.name()))
            }),
        }
    }
}

/// The model of the `timeouts` block.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct Timeouts {
    pub create: Option<String>,
    pub read: Option<String>,
    pub update: Option<String>,
    pub delete: Option<String>,
}

impl Timeouts {
    pub fn get(&self, operation: Operation) -> Option<&str> {
        match operation {
            Operation::Create => self.create.as_deref(),
            Operation::Read => self.read.as_deref(),
            Operation::Update => self.update.as_deref(),
            Operation::Delete => self.delete.as_deref(),
        }
    }
}

/// Validator: a Go duration string.
pub fn go_duration() -> Validator {
    string_rule(
        "must be a Go duration such as `\"30m\"`",
        "Invalid timeout",
        |text, _| parse_go_duration(text).map(|_| ()),
    )
}

/// Go's `time.ParseDuration`, restricted to non-negative values. The error is a clause that
/// follows the attribute path.
pub fn parse_go_duration(text: &str) -> Result<Duration, String> {
    let bad = || {
        format!(
            "must be a duration such as \"30m\", \"1h30m\" or \"90s\" (a number with a unit: \
             h, m, s, ms, us, ns), got {text:?}"
        )
    };
    let too_long = || {
        format!("is too long: {text:?} is beyond the longest duration Go accepts (about 2562047h)")
    };
    let mut rest = text.trim();
    if let Some(unsigned) = rest.strip_prefix('+') {
        rest = unsigned;
    } else if rest.starts_with('-') {
        return Err(format!("must not be negative, got {text:?}"));
    }
    if rest == "0" {
        return Ok(Duration::ZERO);
    }
    if rest.is_empty() {
        return Err(bad());
    }
    // Go keeps the total in int64 nanoseconds; so do we, with checked arithmetic.
    let mut total_nanos: u128 = 0;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let number = &rest[..number_len];
        rest = &rest[number_len..];
        let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
        if whole.is_empty() && fraction.is_empty() || fraction.contains('.') {
            return Err(bad());
        }
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let nanos_per_unit: u128 = match &rest[..unit_len] {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60 * 1_000_000_000,
            "h" => 3_600 * 1_000_000_000,
            _ => return Err(bad()),
        };
        rest = &rest[unit_len..];
        // Digits beyond u128 are certainly beyond the limit; parse without overflow.
        let whole_value: u128 = if whole.is_empty() {
            0
        } else if whole.len() > 30 {
            return Err(too_long());
        } else {
            whole.parse().map_err(|_| bad())?
        };
        let mut part = whole_value
            .checked_mul(nanos_per_unit)
            .ok_or_else(too_long)?;
        // The fraction contributes at most one unit; only its leading digits matter.
        let mut scale = nanos_per_unit;
        for digit in fraction.chars().take(30) {
            scale /= 10;
            let d = digit.to_digit(10).ok_or_else(bad)? as u128;
            part += d * scale;
        }
        total_nanos = total_nanos.checked_add(part).ok_or_else(too_long)?;
        if total_nanos > i64::MAX as u128 {
            return Err(too_long());
        }
    }
    Ok(Duration::from_nanos(total_nanos as u64))
}

/// A duration as Go prints it, shortened: `30m`, `1h`, `1h30m`, `90s` → `1m30s`.
pub fn format_go_duration(d: Duration) -> String {
    let secs = d.as_secs();
    if secs == 0 {
        return format!("{}ms", d.as_millis());
    }
    let (h, m, s) = (secs / 3600, secs % 3600 / 60, secs % 60);
    let mut out = String::new();
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if m > 0 {
        out.push_str(&format!("{m}m"));
    }
    if s > 0 {
        out.push_str(&format!("{s}s"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        let ok = |t: &str| parse_go_duration(t).unwrap();
        assert_eq!(ok("30m"), Duration::from_secs(1800));
        assert_eq!(ok("1h30m"), Duration::from_secs(5400));
        assert_eq!(ok("1.5s"), Duration::from_millis(1500));
        assert_eq!(ok("250ms"), Duration::from_millis(250));
        assert_eq!(ok(".5h"), Duration::from_secs(1800));
        assert_eq!(ok("0"), Duration::ZERO);
        assert_eq!(ok("2562047h"), Duration::from_secs(2_562_047 * 3600));
        for bad in [
            "30", "5d", "", "h", ".h", "1..5s", "1.2.3s", "-5m", "1h 30m", "∞",
        ] {
            assert!(parse_go_duration(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn huge_durations_are_errors_not_panics() {
        for huge in [
            "9999999999999999999h",
            "2562048h",
            "99999999999999999999999999999999999999999999h",
            "9223372036854775808ns",
            "1.9999999999999999999999999999999999999999h9999999999999999h",
        ] {
            let e = parse_go_duration(huge).unwrap_err();
            assert!(e.contains("too long"), "{huge}: {e}");
        }
    }

    #[test]
    fn defaults_feed_the_description_and_the_deadline() {
        let defaults = TimeoutDefaults {
            create: Duration::from_secs(30 * 60),
            read: Duration::from_secs(5 * 60),
            update: Duration::from_secs(90),
            delete: Duration::from_secs(3600),
            includes: "retries count towards it",
        };
        let block = defaults.block();
        assert!(block.attributes[0].description.contains("`30m`"));
        assert!(block.attributes[2].description.contains("`1m30s`"));
        assert!(block.attributes[3].description.contains("`1h`"));
        let t = Timeouts {
            create: Some("2m".into()),
            delete: Some("9999999999999999999h".into()),
            ..Timeouts::default()
        };
        assert_eq!(
            defaults.duration(Some(&t), Operation::Create).unwrap(),
            Duration::from_secs(120)
        );
        assert_eq!(
            defaults.duration(Some(&t), Operation::Read).unwrap(),
            Duration::from_secs(300)
        );
        let d = defaults.duration(Some(&t), Operation::Delete).unwrap_err();
        assert_eq!(d.path.unwrap().to_string(), "timeouts.delete");
    }
}
