//! Declarative validators, attached to attributes in the schema and run centrally by the
//! protocol layer at `terraform validate` (and before every plan), in the spirit of
//! terraform-plugin-framework's `Validators`.
//!
//! Every validator is null/unknown-aware: value rules only see known, non-null values; rules
//! about sibling attributes follow terraform-plugin-framework: `also_requires` and
//! `at_least_one_of` count an unknown sibling as set (it will have a value), `conflicts_with`
//! only fires on a known one (an unknown value may still turn out null). Each carries a markdown description ("must be a
//! GUID") that the docs list under the attribute.
//!
//! A failed rule becomes one error diagnostic on the attribute's path, with a summary the
//! validator (or the schema, via [`Validator::summary`]) chooses and the detail "`path` reason.".
//! Values of sensitive or write-only attributes are never shown: rules format the value through
//! [`Shown`], which prints "the value" for them.

use std::fmt;
use std::sync::Arc;

use crate::framework::value::Value;

/// How a rule may mention the value it rejects: quoted, or "the value" when it is sensitive.
#[derive(Clone, Copy)]
pub struct Shown<'a> {
    value: &'a Value,
    sensitive: bool,
}

impl fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.sensitive {
            return f.write_str("the value");
        }
        match self.value {
            Value::String(s) => write!(f, "{s:?}"),
            Value::Number(n) => match n.as_i64() {
                Some(i) => write!(f, "{i}"),
                None => write!(f, "{}", n.as_f64()),
            },
            Value::Bool(b) => write!(f, "{b}"),
            _ => f.write_str("the value"),
        }
    }
}

/// What a rule sees: the attribute's value and the object that holds it (its siblings).
pub struct Subject<'a> {
    pub value: &'a Value,
    pub siblings: &'a Value,
    pub shown: Shown<'a>,
}

type Rule = dyn Fn(&Subject<'_>) -> Result<(), String> + Send + Sync;

/// One declared rule on an attribute.
#[derive(Clone)]
pub struct Validator {
    description: String,
    summary: String,
    /// Whether the rule runs on null values (sibling rules) — value rules never do.
    on_null: bool,
    /// Whether the rule runs on unknown values — value rules never do.
    on_unknown: bool,
    rule: Arc<Rule>,
}

impl fmt::Debug for Validator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Validator")
            .field("description", &self.description)
            .finish()
    }
}

/// One failed rule, before the runner turns it into a diagnostic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub summary: String,
    /// A clause that follows the attribute path: "must be a GUID, but "x" is not one".
    pub reason: String,
}

impl Validator {
    fn new(
        description: impl Into<String>,
        summary: &str,
        rule: impl Fn(&Subject<'_>) -> Result<(), String> + Send + Sync + 'static,
    ) -> Self {
        Validator {
            description: description.into(),
            summary: summary.to_owned(),
            on_null: false,
            on_unknown: false,
            rule: Arc::new(rule),
        }
    }

    /// A rule on sibling attributes: it also runs when this attribute is null or unknown.
    fn sibling_rule(
        description: impl Into<String>,
        summary: &str,
        rule: impl Fn(&Subject<'_>) -> Result<(), String> + Send + Sync + 'static,
    ) -> Self {
        Validator {
            on_null: true,
            on_unknown: true,
            ..Self::new(description, summary, rule)
        }
    }

    /// The headline of the diagnostic (defaults per validator, e.g. "Invalid value").
    pub fn summary(mut self, summary: &str) -> Self {
        self.summary = summary.to_owned();
        self
    }

    /// Markdown for the docs: "must be a GUID".
    pub fn description(&self) -> &str {
        &self.description
    }

    /// Runs the rule; `None` when it passes or does not apply to a null/unknown value.
    pub fn check(&self, value: &Value, siblings: &Value, sensitive: bool) -> Option<Violation> {
        if (value.is_null() && !self.on_null) || (value.is_unknown() && !self.on_unknown) {
            return None;
        }
        let subject = Subject {
            value,
            siblings,
            shown: Shown { value, sensitive },
        };
        (self.rule)(&subject).err().map(|reason| Violation {
            summary: self.summary.clone(),
            reason,
        })
    }

    /// The rule on a lone value outside any configuration (e.g. a setting read from the
    /// environment): the reason, if it fails.
    pub fn check_standalone(&self, value: &Value, sensitive: bool) -> Option<String> {
        self.check(value, &Value::Null, sensitive).map(|v| v.reason)
    }
}

// ---- value rules ------------------------------------------------------------------------------

/// A string rule: `check` returns the reason the value is wrong, phrased to follow the
/// attribute path ("must be …"); it gets the value and how to show it.
pub fn string_rule(
    description: impl Into<String>,
    summary: &str,
    check: impl Fn(&str, Shown<'_>) -> Result<(), String> + Send + Sync + 'static,
) -> Validator {
    Validator::new(description, summary, move |s| match s.value {
        Value::String(text) => check(text, s.shown),
        // The type system already refuses other types; nothing to say here.
        _ => Ok(()),
    })
}

/// A directory object id, tenant id or other GUID: `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`
/// (hexadecimal, either case, no braces).
pub fn guid() -> Validator {
    string_rule("must be a GUID", "Not an object id", |text, shown| {
        if is_guid(text) {
            Ok(())
        } else {
            Err(format!(
                "must be a GUID (an object id such as 00000000-0000-0000-0000-000000000000, \
                 not a name or a user principal name), but {shown} is not a GUID"
            ))
        }
    })
}

/// The one GUID rule of the provider.
pub fn is_guid(value: &str) -> bool {
    let groups: Vec<&str> = value.split('-').collect();
    let lengths = [8, 4, 4, 4, 12];
    groups.len() == lengths.len()
        && groups
            .iter()
            .zip(lengths)
            .all(|(g, n)| g.len() == n && g.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// One of a fixed list of strings, compared exactly.
pub fn one_of(allowed: &'static [&'static str]) -> Validator {
    let list = quoted_list(allowed);
    string_rule(
        format!("must be one of {list}"),
        "Invalid value",
        move |text, shown| {
            if allowed.contains(&text) {
                Ok(())
            } else {
                Err(format!(
                    "must be one of {}; got {shown}",
                    quoted_list(allowed)
                ))
            }
        },
    )
}

/// Like [`one_of`], for values the service compares case-insensitively.
pub fn one_of_case_insensitive(allowed: &'static [&'static str]) -> Validator {
    let list = quoted_list(allowed);
    string_rule(
        format!("must be one of {list} (any case)"),
        "Invalid value",
        move |text, shown| {
            if allowed.iter().any(|a| a.eq_ignore_ascii_case(text)) {
                Ok(())
            } else {
                Err(format!(
                    "must be one of {}; got {shown}",
                    quoted_list(allowed)
                ))
            }
        },
    )
}

/// One of a list of values that together have a name: the reason says "`"x"` is not a
/// `noun`" (e.g. "a conditional-access policy state").
pub fn one_of_named(allowed: &'static [&'static str], noun: &'static str) -> Validator {
    let list = quoted_list(allowed);
    string_rule(
        format!("must be {noun}: one of {list}"),
        "Invalid value",
        move |text, shown| {
            if allowed.contains(&text) {
                Ok(())
            } else {
                Err(format!(
                    "must be {noun}, one of {}; {shown} is not {noun}",
                    quoted_list(allowed)
                ))
            }
        },
    )
}

/// A string of `min..=max` characters (Unicode scalar values, as Terraform's `length()`).
pub fn length_between(min: usize, max: usize) -> Validator {
    string_rule(
        format!("must be {min} to {max} characters long"),
        "Invalid length",
        move |text, _| {
            let n = text.chars().count();
            if (min..=max).contains(&n) {
                Ok(())
            } else {
                Err(format!(
                    "must be {min} to {max} characters long, but has {n} characters"
                ))
            }
        },
    )
}

/// Every character of the string must pass `allowed`; `which` names them for the reason
/// ("ASCII letters and digits").
pub fn characters(which: &'static str, allowed: fn(char) -> bool) -> Validator {
    string_rule(
        format!("may contain only {which}"),
        "Invalid characters",
        move |text, shown| match text.chars().all(allowed) {
            true => Ok(()),
            false => Err(format!("may contain only {which}; {shown} does not")),
        },
    )
}

/// A non-empty string that is not only white space.
pub fn not_blank() -> Validator {
    string_rule("must not be empty", "Empty value", |text, _| {
        if text.trim().is_empty() {
            Err("must not be empty; leave it out instead".to_owned())
        } else {
            Ok(())
        }
    })
}

/// A whole number in `min..=max`. Fractions and numbers beyond the range of 64-bit integers
/// fail too (never a panic or a wrap-around).
pub fn int_between(min: i64, max: i64) -> Validator {
    Validator::new(
        format!("must be a whole number from {min} to {max}"),
        "Invalid number",
        move |s| match s.value {
            Value::Number(n) => match n.as_i64() {
                Some(i) if (min..=max).contains(&i) => Ok(()),
                _ => Err(format!(
                    "must be a whole number from {min} to {max}; got {}",
                    s.shown
                )),
            },
            _ => Ok(()),
        },
    )
}

/// A whole number (no fraction, within the range of 64-bit integers).
pub fn whole_number() -> Validator {
    Validator::new("must be a whole number", "Invalid number", |s| {
        match s.value {
            Value::Number(n) if n.as_i64().is_none() => {
                Err(format!("must be a whole number; got {}", s.shown))
            }
            _ => Ok(()),
        }
    })
}

/// A set, list or map with `min..=max` elements (only checked once the collection is known).
pub fn size_between(min: usize, max: usize) -> Validator {
    Validator::new(
        format!("must have {min} to {max} elements"),
        "Invalid number of elements",
        move |s| {
            let n = match s.value {
                Value::List(v) | Value::Set(v) | Value::Tuple(v) => v.len(),
                Value::Map(m) => m.len(),
                _ => return Ok(()),
            };
            if (min..=max).contains(&n) {
                Ok(())
            } else {
                Err(format!("must have {min} to {max} elements, but has {n}"))
            }
        },
    )
}

/// Every element of a list or set (or every value of a map) must pass `inner`. The reason
/// names the element, since Terraform cannot point inside a set.
pub fn each(inner: Validator) -> Validator {
    let description = format!("each element {}", inner.description);
    let summary = inner.summary.clone();
    Validator::new(description, &summary, move |s| {
        let elements: Vec<(String, &Value)> = match s.value {
            Value::List(v) | Value::Tuple(v) => v
                .iter()
                .enumerate()
                .map(|(i, e)| (format!("has an element (index {i}) that"), e))
                .collect(),
            Value::Set(v) => v
                .iter()
                .map(|e| ("has an element that".to_owned(), e))
                .collect(),
            Value::Map(m) => m
                .iter()
                .map(|(k, e)| (format!("has a value (key {k:?}) that"), e))
                .collect(),
            _ => return Ok(()),
        };
        let problems: Vec<String> = elements
            .into_iter()
            .filter_map(|(which, element)| {
                let sensitive = s.shown.sensitive;
                inner
                    .check(element, s.siblings, sensitive)
                    .map(|v| format!("{which} {}", v.reason))
            })
            .collect();
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("; "))
        }
    })
}

// ---- sibling rules ----------------------------------------------------------------------------

/// Setting this attribute excludes setting any of `others` (siblings in the same object).
pub fn conflicts_with(others: &'static [&'static str]) -> Validator {
    Validator::sibling_rule(
        format!("conflicts with {}", code_list(others)),
        "Conflicting attributes",
        move |s| {
            if s.value.is_null() {
                return Ok(());
            }
            let set: Vec<&str> = others
                .iter()
                .copied()
                .filter(|o| {
                    // An unknown sibling may still turn out null: only a known one conflicts
                    // (terraform-plugin-framework's ConflictsWith does the same).
                    let v = s.siblings.get(o);
                    !v.is_null() && !v.is_unknown()
                })
                .collect();
            if set.is_empty() {
                Ok(())
            } else {
                Err(format!(
                    "cannot be set together with {}; set only one of them",
                    code_list(&set)
                ))
            }
        },
    )
}

/// Setting this attribute requires every one of `others` to be set too.
pub fn also_requires(others: &'static [&'static str]) -> Validator {
    Validator::sibling_rule(
        format!("requires {}", code_list(others)),
        "Missing required attribute",
        move |s| {
            if s.value.is_null() {
                return Ok(());
            }
            let missing: Vec<&str> = others
                .iter()
                .copied()
                .filter(|o| s.siblings.get(o).is_null())
                .collect();
            if missing.is_empty() {
                Ok(())
            } else {
                Err(format!("needs {} to be set as well", code_list(&missing)))
            }
        },
    )
}

/// At least one of this attribute and `others` must be set (declare it on one of them).
pub fn at_least_one_of(others: &'static [&'static str]) -> Validator {
    Validator::sibling_rule(
        format!("at least one of this and {} must be set", code_list(others)),
        "Missing attribute",
        move |s| {
            if !s.value.is_null() || others.iter().any(|o| !s.siblings.get(o).is_null()) {
                Ok(())
            } else {
                Err(format!(
                    "or {} must be set; set at least one of them",
                    code_list(others)
                ))
            }
        },
    )
}

/// A rule over the whole object the attribute sits in, for cross-attribute checks that none of
/// the above expresses. `check` gets this attribute's value and its siblings.
pub fn cross_rule(
    description: impl Into<String>,
    summary: &str,
    check: impl Fn(&Value, &Value) -> Result<(), String> + Send + Sync + 'static,
) -> Validator {
    Validator::sibling_rule(description, summary, move |s| check(s.value, s.siblings))
}

fn quoted_list(items: &[&str]) -> String {
    items
        .iter()
        .map(|i| format!("`{i}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn code_list(items: &[&str]) -> String {
    match items {
        [] => String::new(),
        [one] => format!("`{one}`"),
        [init @ .., last] => format!(
            "{} and `{last}`",
            init.iter()
                .map(|i| format!("`{i}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framework::Number;

    fn object(pairs: &[(&str, Value)]) -> Value {
        Value::object(pairs.iter().map(|(k, v)| (*k, v.clone())))
    }

    #[test]
    fn value_rules_skip_null_and_unknown() {
        for v in [
            guid(),
            one_of(&["a"]),
            length_between(1, 2),
            int_between(0, 4),
        ] {
            assert_eq!(v.check(&Value::Null, &Value::Null, false), None);
            assert_eq!(v.check(&Value::Unknown, &Value::Null, false), None);
        }
    }

    #[test]
    fn guid_rule_names_the_value_unless_sensitive() {
        let v = guid();
        assert_eq!(
            v.check(
                &"46810bcd-886d-469e-a664-c8d3691d74fd".into(),
                &Value::Null,
                false
            ),
            None
        );
        let open = v
            .check(&"alice@contoso.com".into(), &Value::Null, false)
            .unwrap();
        assert!(open.reason.contains("\"alice@contoso.com\" is not a GUID"));
        assert_eq!(open.summary, "Not an object id");
        let hidden = v.check(&"s3cret".into(), &Value::Null, true).unwrap();
        assert!(!hidden.reason.contains("s3cret"), "{}", hidden.reason);
        for bad in [
            "",
            "46810bcd886d469ea664c8d3691d74fd",
            "{46810bcd-886d-469e-a664-c8d3691d74fd}",
            "g6810bcd-886d-469e-a664-c8d3691d74fd",
            "46810bcd-886d-469e-a664-c8d3691d74fdx",
        ] {
            assert!(!is_guid(bad), "{bad:?}");
        }
    }

    #[test]
    fn numbers_outside_i64_or_with_fractions_fail_without_panicking() {
        let v = int_between(0, 4);
        for bad in [
            Value::Number(Number::Float(1e300)),
            Value::Number(Number::Float(-1e300)),
            Value::Number(Number::Float(2.5)),
            Value::Number(Number::Float(f64::NAN)),
            Value::Number(Number::Int(i64::MIN)),
            Value::Number(Number::Int(5)),
        ] {
            assert!(v.check(&bad, &Value::Null, false).is_some(), "{bad:?}");
        }
        assert_eq!(
            v.check(&Value::Number(Number::Float(4.0)), &Value::Null, false),
            None
        );
    }

    #[test]
    fn length_counts_characters_not_bytes() {
        let v = length_between(1, 3);
        assert_eq!(v.check(&"äöü".into(), &Value::Null, false), None);
        assert!(v.check(&"abcd".into(), &Value::Null, false).is_some());
        assert!(v.check(&"".into(), &Value::Null, false).is_some());
    }

    #[test]
    fn sibling_rules_treat_unknown_as_the_framework_does() {
        let c = conflicts_with(&["b"]);
        let both = object(&[("a", "x".into()), ("b", Value::Unknown)]);
        assert_eq!(c.check(&"x".into(), &both, false), None);
        let known = object(&[("a", "x".into()), ("b", "y".into())]);
        assert!(c.check(&Value::Unknown, &known, false).is_some());
        let alone = object(&[("a", "x".into()), ("b", Value::Null)]);
        assert_eq!(c.check(&"x".into(), &alone, false), None);
        assert_eq!(c.check(&Value::Null, &both, false), None);

        let r = also_requires(&["b"]);
        assert!(r.check(&Value::Unknown, &alone, false).is_some());
        assert_eq!(r.check(&Value::Null, &alone, false), None);

        let one = at_least_one_of(&["b"]);
        let none = object(&[("a", Value::Null), ("b", Value::Null)]);
        assert!(one.check(&Value::Null, &none, false).is_some());
        assert_eq!(one.check(&Value::Null, &both, false), None);
    }

    #[test]
    fn each_names_the_offending_elements() {
        let v = each(guid());
        let set = Value::Set(vec![
            "46810bcd-886d-469e-a664-c8d3691d74fd".into(),
            "alice@contoso.com".into(),
            Value::Unknown,
        ]);
        let violation = v.check(&set, &Value::Null, false).unwrap();
        assert!(violation.reason.contains("\"alice@contoso.com\""));
        assert_eq!(violation.summary, "Not an object id");
        assert!(v.description().starts_with("each element must be a GUID"));
    }

    #[test]
    fn summaries_can_be_chosen_by_the_schema() {
        let v = one_of(&["pim", "direct"]).summary("Invalid assignment method");
        let violation = v.check(&"eligible".into(), &Value::Null, false).unwrap();
        assert_eq!(violation.summary, "Invalid assignment method");
        assert!(violation.reason.contains("`pim`, `direct`"));
    }
}
