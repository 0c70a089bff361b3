//! Plan modifiers and semantic equality, declared on attributes and applied by the protocol
//! layer in terraform-plugin-framework's fixed order:
//!
//! 1. defaults (`Attribute::default`) where configuration is null;
//! 2. computed-to-unknown: when the resource changes, computed attributes that configuration
//!    leaves null (and that have no default) become unknown;
//! 3. each attribute's modifiers, in declaration order;
//! 4. the resource's own `modify_plan`.
//!
//! Semantic equality ([`Equality`]) is the framework's custom-type idea reduced to what this
//! provider needs: attributes whose service compares case-insensitively declare it once, and a
//! value that differs from the prior one only in case is no change — when deciding whether the
//! resource changes, whether to replace it, and when a refresh or an apply returns the value
//! in another case (the prior or planned spelling is kept).

use std::sync::Arc;

use crate::framework::value::Value;

/// How values of an attribute compare.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Equality {
    #[default]
    Exact,
    /// Strings, and the strings inside lists, sets and maps, compare ignoring ASCII case.
    CaseInsensitive,
    /// Like `CaseInsensitive`, and white space is ignored too: Azure region names, which ARM
    /// accepts as `West Europe` and reports as `westeurope`.
    CaseAndSpaceInsensitive,
}

impl Equality {
    /// Whether `a` and `b` mean the same under this equality (Terraform's equality otherwise:
    /// set order is irrelevant, `1` equals `1.0`).
    pub fn equal(self, a: &Value, b: &Value) -> bool {
        match self {
            Equality::Exact => same_value(a, b),
            Equality::CaseInsensitive => same_value_by(a, b, &|x, y| x.eq_ignore_ascii_case(y)),
            Equality::CaseAndSpaceInsensitive => same_value_by(a, b, &|x, y| {
                let squeezed = |s: &str| {
                    s.chars()
                        .filter(|c| !c.is_whitespace())
                        .map(|c| c.to_ascii_lowercase())
                        .collect::<String>()
                };
                squeezed(x) == squeezed(y)
            }),
        }
    }
}

/// What a conditional modifier sees: the attribute's prior, planned and configured values.
pub struct ModifierInput<'a> {
    pub prior: &'a Value,
    pub planned: &'a Value,
    pub config: &'a Value,
}

type Condition = dyn Fn(&ModifierInput<'_>) -> bool + Send + Sync;

#[derive(Clone)]
pub enum PlanModifier {
    /// A change of this attribute on an existing resource replaces it.
    RequiresReplace,
    /// Like `RequiresReplace`, only when the condition holds; the description feeds the docs.
    RequiresReplaceIf {
        description: String,
        condition: Arc<Condition>,
    },
    /// An unknown planned value (a computed attribute on a changing resource) keeps the prior
    /// state's value instead: for values that never change once set, such as ids.
    UseStateForUnknown,
}

impl std::fmt::Debug for PlanModifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PlanModifier::RequiresReplace => f.write_str("RequiresReplace"),
            PlanModifier::RequiresReplaceIf { description, .. } => {
                write!(f, "RequiresReplaceIf({description:?})")
            }
            PlanModifier::UseStateForUnknown => f.write_str("UseStateForUnknown"),
        }
    }
}

impl PlanModifier {
    pub fn requires_replace_if(
        description: &str,
        condition: impl Fn(&ModifierInput<'_>) -> bool + Send + Sync + 'static,
    ) -> Self {
        PlanModifier::RequiresReplaceIf {
            description: description.to_owned(),
            condition: Arc::new(condition),
        }
    }

    /// What the docs say about this modifier, if anything.
    pub fn description(&self) -> Option<String> {
        match self {
            PlanModifier::RequiresReplace => Some("changing it replaces the resource".to_owned()),
            PlanModifier::RequiresReplaceIf { description, .. } => Some(description.clone()),
            PlanModifier::UseStateForUnknown => None,
        }
    }
}

/// Value equality as Terraform means it: set order is irrelevant, `1` equals `1.0`.
pub fn same_value(a: &Value, b: &Value) -> bool {
    same_value_by(a, b, &|x, y| x == y)
}

fn same_value_by(a: &Value, b: &Value, strings: &dyn Fn(&str, &str) -> bool) -> bool {
    let eq = |x: &Value, y: &Value| same_value_by(x, y, strings);
    match (a, b) {
        (Value::String(x), Value::String(y)) => strings(x, y),
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::List(x), Value::List(y)) | (Value::Tuple(x), Value::Tuple(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| eq(x, y))
        }
        (Value::Set(x), Value::Set(y)) => {
            x.len() == y.len()
                && x.iter().all(|e| y.iter().any(|f| eq(e, f)))
                && y.iter().all(|f| x.iter().any(|e| eq(e, f)))
        }
        (Value::Map(x), Value::Map(y)) | (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| eq(v, w)))
        }
        (Value::Dynamic(tx, x), Value::Dynamic(ty, y)) => tx == ty && eq(x, y),
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framework::Number;

    #[test]
    fn case_insensitive_equality_reaches_into_collections() {
        let ci = Equality::CaseInsensitive;
        assert!(ci.equal(&"BG@Contoso.com".into(), &"bg@contoso.com".into()));
        assert!(!Equality::Exact.equal(&"BG@Contoso.com".into(), &"bg@contoso.com".into()));
        let a = Value::Set(vec!["ABC".into(), "def".into()]);
        let b = Value::Set(vec!["DEF".into(), "abc".into()]);
        assert!(ci.equal(&a, &b));
        assert!(!ci.equal(&a, &Value::Set(vec!["abc".into()])));
        assert!(!ci.equal(&"a".into(), &Value::Null));
    }

    #[test]
    fn location_equality_ignores_case_and_spaces() {
        let loc = Equality::CaseAndSpaceInsensitive;
        assert!(loc.equal(&"West Europe".into(), &"westeurope".into()));
        assert!(loc.equal(&"global".into(), &"Global".into()));
        assert!(!loc.equal(&"westeurope".into(), &"northeurope".into()));
        assert!(!Equality::CaseInsensitive.equal(&"West Europe".into(), &"westeurope".into()));
    }

    #[test]
    fn exact_equality_ignores_set_order_and_number_representation() {
        let a = Value::Set(vec![Value::from("x"), Value::from("y")]);
        let b = Value::Set(vec![Value::from("y"), Value::from("x")]);
        assert!(same_value(&a, &b));
        assert!(same_value(
            &Value::Number(Number::Int(1)),
            &Value::Number(Number::Float(1.0))
        ));
        assert!(!same_value(
            &Value::List(vec![Value::from("x"), Value::from("y")]),
            &Value::List(vec![Value::from("y"), Value::from("x")])
        ));
    }
}
