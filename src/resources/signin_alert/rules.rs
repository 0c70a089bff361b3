//! The schedule rules of log search alerts, as declared validators.
//!
//! `evaluationFrequency` and `windowSize` are ISO 8601 durations, and the service accepts only
//! some: 1, 5, 10, 15, 30, 45, 60, 120, 180, 240, 300, 360 or 1440 minutes for the frequency and
//! 5 … 2880 minutes for the window (the lists the service prints in its own refusal,
//! azure-rest-api-specs#21258; "Create or edit a log search alert rule"). `severity` is 0
//! (critical) to 4 (verbose).

use crate::framework::validators::{cross_rule, string_rule, Validator};
use crate::framework::Value;
use crate::resources::shared::iso_duration_minutes;

/// Evaluation frequencies the service accepts, in minutes.
pub const FREQUENCIES: &[u64] = &[1, 5, 10, 15, 30, 45, 60, 120, 180, 240, 300, 360, 1440];
/// Window sizes (look-back periods) the service accepts, in minutes.
pub const WINDOW_SIZES: &[u64] = &[5, 10, 15, 30, 45, 60, 120, 180, 240, 300, 360, 1440, 2880];

/// `PT5M` for 5, `PT1H` for 60, `P1D` for 1440: how the docs list the accepted values.
pub fn iso_minutes(minutes: u64) -> String {
    match minutes {
        m if m.is_multiple_of(1440) => format!("P{}D", m / 1440),
        m if m.is_multiple_of(60) => format!("PT{}H", m / 60),
        m => format!("PT{m}M"),
    }
}

fn listed(allowed: &[u64]) -> String {
    allowed
        .iter()
        .map(|m| format!("`{}`", iso_minutes(*m)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// An ISO 8601 duration of one of the `allowed` lengths; `what` names it ("an evaluation
/// frequency").
pub fn duration(what: &'static str, allowed: &'static [u64]) -> Validator {
    string_rule(
        format!(
            "must be an ISO 8601 duration the service accepts as {what}: one of {}",
            listed(allowed)
        ),
        "Invalid duration",
        move |text, _| match iso_duration_minutes(text) {
            Ok(m) if allowed.contains(&m) => Ok(()),
            Ok(m) => Err(format!(
                "must be one of the durations the service accepts as {what} ({}); {text:?} is \
                 {m} minutes",
                listed(allowed)
            )),
            Err(why) => Err(format!("must be an ISO 8601 duration: {why}")),
        },
    )
}

/// Both schedule attributes default to this.
pub const DEFAULT_DURATION: &str = "PT5M";

/// The window must cover the time since the previous evaluation, or sign-ins in between are
/// never evaluated. A value left out counts as its default.
pub fn window_covers_frequency() -> Validator {
    cross_rule(
        "must be at least as long as `evaluation_frequency`",
        "Window shorter than the evaluation frequency",
        |window, siblings| {
            let minutes = |v: &Value| match v {
                Value::Null => iso_duration_minutes(DEFAULT_DURATION).ok(),
                v => v.as_str().and_then(|t| iso_duration_minutes(t).ok()),
            };
            match (
                minutes(window),
                minutes(&siblings.get("evaluation_frequency")),
            ) {
                (Some(w), Some(f)) if w < f => Err(format!(
                    "({w} minutes) is shorter than `evaluation_frequency` ({f} minutes): the \
                     rule would look back over only part of the time since its previous run, \
                     and a sign-in in the gap would never alert. Make the window at least as \
                     long as the frequency (equal, e.g. both `PT5M`, evaluates every sign-in \
                     exactly once)"
                )),
                _ => Ok(()),
            }
        },
    )
}

/// Whether two durations mean the same (`PT60M` and `PT1H`).
pub fn same_duration(a: &str, b: &str) -> bool {
    a == b
        || matches!(
            (iso_duration_minutes(a), iso_duration_minutes(b)),
            (Ok(x), Ok(y)) if x == y
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_are_checked_against_the_accepted_lists() {
        let frequency = duration("an evaluation frequency", FREQUENCIES);
        assert!(frequency.check_standalone(&"PT5M".into(), false).is_none());
        assert!(frequency.check_standalone(&"PT1H".into(), false).is_none());
        assert!(frequency.check_standalone(&"PT60M".into(), false).is_none());
        let bad = frequency.check_standalone(&"PT7X".into(), false).unwrap();
        assert!(bad.contains("must be an ISO 8601 duration"), "{bad}");
        let odd = frequency.check_standalone(&"PT7M".into(), false).unwrap();
        assert!(odd.contains("`PT5M`, `PT10M`"), "{odd}");
        assert!(odd.contains("is 7 minutes"), "{odd}");
        let window = duration("a window size", WINDOW_SIZES);
        assert!(window.check_standalone(&"PT1M".into(), false).is_some());
        assert!(window.check_standalone(&"P2D".into(), false).is_none());
        assert_eq!(iso_minutes(2880), "P2D");
        assert_eq!(iso_minutes(90), "PT90M");
        assert!(same_duration("PT1H", "PT60M"));
        assert!(!same_duration("PT1H", "PT5M"));
    }

    #[test]
    fn a_window_shorter_than_the_frequency_is_refused() {
        let rule = window_covers_frequency();
        let siblings = Value::object([("evaluation_frequency", Value::from("PT15M"))]);
        assert!(rule.check(&"PT5M".into(), &siblings, false).is_some());
        assert!(rule.check(&"PT15M".into(), &siblings, false).is_none());
        assert!(rule.check(&"PT30M".into(), &siblings, false).is_none());
        let unknown = Value::object([("evaluation_frequency", Value::Unknown)]);
        assert!(rule.check(&"PT5M".into(), &unknown, false).is_none());
        // The default window (PT5M) is too short for a 15-minute frequency.
        assert!(rule.check(&Value::Null, &siblings, false).is_some());
        let defaults = Value::object([("evaluation_frequency", Value::Null)]);
        assert!(rule.check(&Value::Null, &defaults, false).is_none());
    }
}
