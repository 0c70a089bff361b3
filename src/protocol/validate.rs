//! Runs the validators declared on a schema's attributes over a configuration, with the
//! attribute path of each failure, before any resource-specific `validate`.
//!
//! One rule holds for every attribute without being declared: a list, set or map (or a nested
//! attribute's collection of objects) has no `null` elements. Terraform passes `[null]` or
//! `[var.unset]` through unchanged, and no model can hold one (a `Vec<String>` has no null), so
//! it would otherwise surface at plan time as an undecodable value.
//!
//! Nested attributes and blocks are walked: single objects by attribute name, list elements by
//! index, map values by key. Set elements have no address Terraform can show, so a failure
//! inside a set points at the set (the validator's reason names the element).

use crate::framework::validators::Violation;
use crate::framework::{
    Attribute, AttributeKind, AttributePath, Block, Diagnostic, Diagnostics, NestingMode, Schema,
    Value,
};

/// Every declared validator's verdict on `config`.
pub fn declared_validators(schema: &Schema, config: &Value) -> Diagnostics {
    let mut diagnostics = Diagnostics::new();
    walk_object(
        &schema.attributes,
        &schema.blocks,
        config,
        &AttributePath::default(),
        &mut diagnostics,
    );
    diagnostics
}

fn walk_object(
    attributes: &[Attribute],
    blocks: &[Block],
    object: &Value,
    at: &AttributePath,
    out: &mut Diagnostics,
) {
    if !matches!(object, Value::Object(_)) {
        return;
    }
    for attribute in attributes {
        let value = object.get(&attribute.name);
        let path = at.clone().attr(&attribute.name);
        let sensitive = attribute.sensitive || attribute.write_only;
        // Nested objects' own attributes are walked below; only their collection is checked here.
        let deep = matches!(attribute.kind, AttributeKind::Typed(_));
        null_elements(&value, &path, deep, out);
        for validator in &attribute.validators {
            if let Some(violation) = validator.check(&value, object, sensitive) {
                out.push(diagnostic(violation, &path));
            }
        }
        if let AttributeKind::Nested {
            nesting,
            attributes: nested,
        } = &attribute.kind
        {
            walk_nested(*nesting, nested, &[], &value, &path, out);
        }
    }
    for block in blocks {
        let value = object.get(&block.type_name);
        let path = at.clone().attr(&block.type_name);
        walk_nested(
            block.nesting,
            &block.attributes,
            &block.blocks,
            &value,
            &path,
            out,
        );
    }
}

fn walk_nested(
    nesting: NestingMode,
    attributes: &[Attribute],
    blocks: &[Block],
    value: &Value,
    path: &AttributePath,
    out: &mut Diagnostics,
) {
    match nesting {
        NestingMode::Single | NestingMode::Group => {
            walk_object(attributes, blocks, value, path, out)
        }
        NestingMode::List => {
            for (i, item) in value.elements().iter().enumerate() {
                walk_object(attributes, blocks, item, &path.clone().index(i as i64), out);
            }
        }
        NestingMode::Set => {
            for item in value.elements() {
                walk_object(attributes, blocks, item, path, out);
            }
        }
        NestingMode::Map => {
            for (key, item) in value.entries().into_iter().flatten() {
                walk_object(attributes, blocks, item, &path.clone().key(key), out);
            }
        }
    }
}

/// The no-null-elements rule (module docs) on a collection value, at every depth when `deep`.
/// Objects may hold null attributes; only collection elements are checked.
fn null_elements(value: &Value, path: &AttributePath, deep: bool, out: &mut Diagnostics) {
    let null_at = |at: AttributePath, out: &mut Diagnostics| {
        out.push(
            Diagnostic::error(
                "Null element",
                format!(
                    "`{path}` has a null element. Lists, sets and maps here cannot hold null: \
                     remove it, or drop nulls from a computed list with `compact()`."
                ),
            )
            .at(at),
        )
    };
    match value {
        Value::List(items) => {
            for (i, item) in items.iter().enumerate() {
                let at = path.clone().index(i as i64);
                if item.is_null() {
                    null_at(at, out);
                } else if deep {
                    null_elements(item, &at, deep, out);
                }
            }
        }
        // Set elements have no address: the set is the closest path.
        Value::Set(items) => {
            if items.iter().any(Value::is_null) {
                null_at(path.clone(), out);
            }
            for item in items.iter().filter(|i| deep && !i.is_null()) {
                null_elements(item, path, deep, out);
            }
        }
        Value::Map(entries) => {
            for (key, item) in entries {
                let at = path.clone().key(key);
                if item.is_null() {
                    null_at(at, out);
                } else if deep {
                    null_elements(item, &at, deep, out);
                }
            }
        }
        Value::Object(attributes) if deep => {
            for (name, item) in attributes {
                null_elements(item, &path.clone().attr(name), deep, out);
            }
        }
        _ => {}
    }
}

fn diagnostic(violation: Violation, path: &AttributePath) -> Diagnostic {
    Diagnostic::error(violation.summary, format!("`{path}` {}.", violation.reason)).at(path.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framework::validators::{conflicts_with, each, guid, int_between};
    use crate::framework::{Number, Type};

    fn schema() -> Schema {
        Schema {
            attributes: vec![
                Attribute::optional("ids", Type::set(Type::String), "Ids.").validate(each(guid())),
                Attribute::optional("count", Type::Number, "Count.")
                    .validate(int_between(0, 4))
                    .validate(conflicts_with(&["secret"])),
                Attribute::optional("secret", Type::String, "Secret.")
                    .sensitive()
                    .validate(guid()),
            ],
            blocks: vec![Block {
                type_name: "items".into(),
                nesting: NestingMode::List,
                description: "Items.".into(),
                attributes: vec![Attribute::required("id", Type::String, "Id.").validate(guid())],
                blocks: vec![],
                min_items: 0,
                max_items: 0,
                config_only: false,
            }],
            ..Schema::default()
        }
    }

    #[test]
    fn each_failure_is_a_diagnostic_on_its_path() {
        let config = Value::object([
            ("ids", Value::Set(vec!["nope".into()])),
            ("count", Value::Number(Number::Int(9))),
            ("secret", "hunter2".into()),
            (
                "items",
                Value::List(vec![
                    Value::object([("id", "46810bcd-886d-469e-a664-c8d3691d74fd".into())]),
                    Value::object([("id", "x".into())]),
                ]),
            ),
        ]);
        let diags = declared_validators(&schema(), &config);
        let paths: Vec<String> = diags
            .iter()
            .map(|d| d.path.as_ref().unwrap().to_string())
            .collect();
        assert_eq!(paths, ["ids", "count", "count", "secret", "items[1].id"]);
        assert!(diags.iter().all(|d| !d.detail.contains("hunter2")));
        assert!(diags.iter().next().unwrap().detail.contains("\"nope\""));
    }

    #[test]
    fn null_elements_are_refused_at_their_path() {
        let config = Value::object([
            ("ids", Value::Set(vec![Value::Null, Value::Unknown])),
            (
                "items",
                Value::List(vec![Value::object([("id", Value::Null)])]),
            ),
        ]);
        let diags = declared_validators(&schema(), &config);
        let paths: Vec<String> = diags
            .iter()
            .map(|d| d.path.as_ref().unwrap().to_string())
            .collect();
        // A null attribute inside an object is fine; a null element of a collection is not.
        assert_eq!(paths, ["ids"]);
        assert_eq!(diags.iter().next().unwrap().summary, "Null element");

        let nested = Schema {
            attributes: vec![Attribute::optional(
                "tags",
                Type::map(Type::list(Type::String)),
                "Tags.",
            )],
            ..Schema::default()
        };
        let config = Value::object([(
            "tags",
            Value::Map([("a".to_owned(), Value::List(vec!["x".into(), Value::Null]))].into()),
        )]);
        let diags = declared_validators(&nested, &config);
        assert_eq!(
            diags.iter().next().unwrap().path,
            Some(AttributePath::root("tags").key("a").index(1))
        );
    }

    #[test]
    fn unknown_and_null_configuration_passes() {
        let config = Value::object([
            ("ids", Value::Unknown),
            ("count", Value::Null),
            ("secret", Value::Unknown),
            ("items", Value::Unknown),
        ]);
        assert!(declared_validators(&schema(), &config).is_empty());
    }
}
