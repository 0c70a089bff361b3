//! cty's JSON encoding of values: the form of raw state handed to `UpgradeResourceState` and of
//! JSON DynamicValues. It has no unknowns. Like cty's decoder, it is lenient about primitives,
//! because state written long ago may hold a number where a string is now expected: strings
//! accept numbers and bools, numbers accept decimal strings, bools accept "true"/"false".

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::Value as Json;

use super::json_syntax::{self, Node};
use super::{parse_number, type_json, type_label, value_label, CodecError, Problem, MAX_DEPTH};
use crate::framework::{Number, Type, Value};

/// What to do with an object attribute the type does not have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum UndefinedAttributes {
    Reject,
    Ignore,
}

pub(super) fn decode(
    bytes: &[u8],
    ty: &Type,
    undefined: UndefinedAttributes,
) -> Result<Value, CodecError> {
    let tree = json_syntax::parse(bytes)?;
    Decoder { undefined }.value(&tree, ty, 0)
}

pub(super) fn encode(value: &Value, ty: &Type) -> Result<Vec<u8>, CodecError> {
    let mut out = String::with_capacity(256);
    write_value(&mut out, value, ty)?;
    Ok(out.into_bytes())
}

fn node_label(node: &Node<'_>) -> &'static str {
    match node {
        Node::Null => "JSON null",
        Node::Bool(_) => "a JSON bool",
        Node::Number(_) => "a JSON number",
        Node::String(_) => "a JSON string",
        Node::Array(_) => "a JSON array",
        Node::Object(_) => "a JSON object",
    }
}

struct Decoder {
    undefined: UndefinedAttributes,
}

impl Decoder {
    fn value(&self, node: &Node<'_>, ty: &Type, depth: usize) -> Result<Value, CodecError> {
        if depth > MAX_DEPTH {
            return Err(Problem::TooDeep.into());
        }
        let wrong_kind = || -> CodecError {
            Problem::WrongKind {
                expected: match ty {
                    Type::Dynamic => "a dynamic {\"type\", \"value\"} object",
                    other => type_label(other),
                },
                found: node_label(node),
            }
            .into()
        };
        match (node, ty) {
            (Node::Null, _) => Ok(Value::Null),
            (Node::Object(fields), Type::Dynamic) => self.dynamic(fields, depth),
            (Node::String(s), Type::String) => Ok(Value::String(s.as_ref().to_owned())),
            // cty keeps the literal as written, so "1.50" stays "1.50".
            (Node::Number(literal), Type::String) => Ok(Value::String((*literal).to_owned())),
            (Node::Bool(b), Type::String) => Ok(Value::String(b.to_string())),
            (Node::Number(literal), Type::Number) => Ok(Value::Number(parse_number(literal)?)),
            (Node::String(s), Type::Number) => Ok(Value::Number(parse_number(s)?)),
            (Node::Bool(b), Type::Bool) => Ok(Value::Bool(*b)),
            (Node::String(s), Type::Bool) => match s.as_ref() {
                "true" => Ok(Value::Bool(true)),
                "false" => Ok(Value::Bool(false)),
                _ => Err(wrong_kind()),
            },
            (Node::Array(items), Type::List(elem)) => {
                Ok(Value::List(self.elements(items, elem, depth)?))
            }
            (Node::Array(items), Type::Set(elem)) => {
                Ok(Value::Set(self.elements(items, elem, depth)?))
            }
            (Node::Array(items), Type::Tuple(elems)) => {
                if items.len() != elems.len() {
                    return Err(Problem::TupleLength {
                        expected: elems.len(),
                        found: items.len(),
                    }
                    .into());
                }
                items
                    .iter()
                    .zip(elems)
                    .enumerate()
                    .map(|(i, (item, elem))| {
                        self.value(item, elem, depth + 1)
                            .map_err(|e| e.within_index(i))
                    })
                    .collect::<Result<_, _>>()
                    .map(Value::Tuple)
            }
            (Node::Object(fields), Type::Map(elem)) => {
                let mut out = BTreeMap::new();
                for (key, item) in fields {
                    if out.contains_key(key.as_ref()) {
                        return Err(CodecError::new(Problem::DuplicateKey).within_key(key));
                    }
                    let value = self
                        .value(item, elem, depth + 1)
                        .map_err(|e| e.within_key(key))?;
                    out.insert(key.as_ref().to_owned(), value);
                }
                Ok(Value::Map(out))
            }
            (Node::Object(fields), Type::Object(attrs)) => self.object(fields, attrs, depth),
            _ => Err(wrong_kind()),
        }
    }

    fn elements(
        &self,
        items: &[Node<'_>],
        elem: &Type,
        depth: usize,
    ) -> Result<Vec<Value>, CodecError> {
        items
            .iter()
            .enumerate()
            .map(|(i, item)| {
                self.value(item, elem, depth + 1)
                    .map_err(|e| e.within_index(i))
            })
            .collect()
    }

    fn object(
        &self,
        fields: &[(std::borrow::Cow<'_, str>, Node<'_>)],
        attrs: &BTreeMap<String, Type>,
        depth: usize,
    ) -> Result<Value, CodecError> {
        let mut out = BTreeMap::new();
        for (name, item) in fields {
            let Some((attr, attr_ty)) = attrs.get_key_value(name.as_ref()) else {
                match self.undefined {
                    UndefinedAttributes::Ignore => continue,
                    UndefinedAttributes::Reject => {
                        return Err(
                            CodecError::new(Problem::UnsupportedAttribute).within_attribute(name)
                        )
                    }
                }
            };
            if out.contains_key(attr) {
                return Err(CodecError::new(Problem::DuplicateKey).within_attribute(name));
            }
            let value = self
                .value(item, attr_ty, depth + 1)
                .map_err(|e| e.within_attribute(name))?;
            out.insert(attr.clone(), value);
        }
        if out.len() < attrs.len() {
            for name in attrs.keys() {
                out.entry(name.clone()).or_insert(Value::Null);
            }
        }
        Ok(Value::Object(out))
    }

    /// `{"value": …, "type": …}`, in either key order.
    fn dynamic(
        &self,
        fields: &[(std::borrow::Cow<'_, str>, Node<'_>)],
        depth: usize,
    ) -> Result<Value, CodecError> {
        let (mut ty, mut value) = (None, None);
        for (key, node) in fields {
            let slot = match key.as_ref() {
                "type" => &mut ty,
                "value" => &mut value,
                _ => return Err(Problem::MalformedDynamic.into()),
            };
            if slot.replace(node).is_some() {
                return Err(Problem::MalformedDynamic.into());
            }
        }
        let (Some(ty), Some(value)) = (ty, value) else {
            return Err(Problem::MalformedDynamic.into());
        };
        let ty = Type::from_json(&to_serde(ty))
            .map_err(|_| CodecError::new(Problem::InvalidDynamicType))?;
        let value = self.value(value, &ty, depth + 1)?;
        Ok(Value::Dynamic(ty, Box::new(value)))
    }
}

/// `Type::from_json` reads serde_json values; type descriptors are small, so converting the
/// descriptor subtree is cheap.
fn to_serde(node: &Node<'_>) -> Json {
    match node {
        Node::Null => Json::Null,
        Node::Bool(b) => Json::Bool(*b),
        Node::Number(literal) => literal
            .parse::<serde_json::Number>()
            .map_or(Json::Null, Json::Number),
        Node::String(s) => Json::String(s.as_ref().to_owned()),
        Node::Array(items) => Json::Array(items.iter().map(to_serde).collect()),
        Node::Object(fields) => Json::Object(
            fields
                .iter()
                .map(|(k, v)| (k.as_ref().to_owned(), to_serde(v)))
                .collect(),
        ),
    }
}

fn write_value(out: &mut String, value: &Value, ty: &Type) -> Result<(), CodecError> {
    match (value, ty) {
        (Value::Null, _) => out.push_str("null"),
        (Value::Unknown, _) => return Err(Problem::UnknownInJson.into()),
        (Value::Dynamic(carried, inner), Type::Dynamic) => {
            out.push_str("{\"value\":");
            write_value(out, inner, carried)?;
            out.push_str(",\"type\":");
            out.push_str(&type_json(carried));
            out.push('}');
        }
        (other, Type::Dynamic) => {
            return Err(Problem::UntypedDynamic {
                found: value_label(other),
            }
            .into())
        }
        (Value::Bool(b), Type::Bool) => out.push_str(if *b { "true" } else { "false" }),
        (Value::Number(n), Type::Number) => write_number(out, *n)?,
        (Value::String(s), Type::String) => write_string(out, s),
        (Value::List(items) | Value::Set(items), Type::List(elem) | Type::Set(elem)) => {
            write_array(out, items.iter().map(|item| (item, &**elem)))?
        }
        (Value::Tuple(items), Type::Tuple(elems)) => {
            if items.len() != elems.len() {
                return Err(Problem::TupleLength {
                    expected: elems.len(),
                    found: items.len(),
                }
                .into());
            }
            write_array(out, items.iter().zip(elems))?
        }
        (Value::Map(entries), Type::Map(elem)) => {
            out.push('{');
            for (i, (key, item)) in entries.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_string(out, key);
                out.push(':');
                write_value(out, item, elem).map_err(|e| e.within_key(key))?;
            }
            out.push('}');
        }
        (Value::Object(present), Type::Object(attrs)) => {
            if let Some(extra) = present.keys().find(|name| !attrs.contains_key(*name)) {
                return Err(CodecError::new(Problem::UnsupportedAttribute).within_attribute(extra));
            }
            out.push('{');
            for (i, (name, attr_ty)) in attrs.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_string(out, name);
                out.push(':');
                match present.get(name) {
                    Some(item) => {
                        write_value(out, item, attr_ty).map_err(|e| e.within_attribute(name))?
                    }
                    None => out.push_str("null"),
                }
            }
            out.push('}');
        }
        (other, ty) => {
            return Err(Problem::ValueDoesNotMatchType {
                expected: type_label(ty),
                found: value_label(other),
            }
            .into())
        }
    }
    Ok(())
}

fn write_array<'v>(
    out: &mut String,
    items: impl Iterator<Item = (&'v Value, &'v Type)>,
) -> Result<(), CodecError> {
    out.push('[');
    for (i, (item, elem)) in items.enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_value(out, item, elem).map_err(|e| e.within_index(i))?;
    }
    out.push(']');
    Ok(())
}

/// Floats use Rust's shortest round-trip decimal form without exponent (cty also writes plain
/// decimals), plus ".0" when integral so they decode back as floats.
fn write_number(out: &mut String, n: Number) -> Result<(), CodecError> {
    match n {
        // Writing to a String cannot fail.
        Number::Int(i) => {
            let _ = write!(out, "{i}");
        }
        Number::Float(f) if f.is_nan() => return Err(Problem::NotANumber.into()),
        Number::Float(f) if f.is_infinite() => return Err(Problem::InfiniteInJson.into()),
        Number::Float(f) => {
            let start = out.len();
            let _ = write!(out, "{f}");
            if !out[start..].contains('.') {
                out.push_str(".0");
            }
        }
    }
    Ok(())
}

fn write_string(out: &mut String, s: &str) {
    out.push('"');
    let mut plain_from = 0;
    for (i, c) in s.char_indices() {
        let escape = match c {
            '"' => "\\\"",
            '\\' => "\\\\",
            '\n' => "\\n",
            '\r' => "\\r",
            '\t' => "\\t",
            c if c < ' ' => "",
            _ => continue,
        };
        out.push_str(&s[plain_from..i]);
        if escape.is_empty() {
            let _ = write!(out, "\\u{:04x}", c as u32);
        } else {
            out.push_str(escape);
        }
        plain_from = i + c.len_utf8();
    }
    out.push_str(&s[plain_from..]);
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framework::AttributePath;
    use crate::protocol::codec::{decode_json, decode_raw_state, encode_json};

    fn object_type(attrs: &[(&str, Type)]) -> Type {
        Type::Object(
            attrs
                .iter()
                .map(|(k, t)| (k.to_string(), t.clone()))
                .collect(),
        )
    }

    fn encoded(value: &Value, ty: &Type) -> String {
        String::from_utf8(encode_json(value, ty).unwrap()).unwrap()
    }

    #[test]
    fn objects_write_every_attribute_and_decode_missing_ones_as_null() {
        let ty = object_type(&[("name", Type::String), ("count", Type::Number)]);
        let value = Value::object([("name", Value::from("bg-1"))]);
        assert_eq!(encoded(&value, &ty), r#"{"count":null,"name":"bg-1"}"#);
        assert_eq!(
            decode_json(br#"{"name":"bg-1"}"#, &ty).unwrap(),
            Value::object([("count", Value::Null), ("name", Value::from("bg-1"))])
        );
    }

    #[test]
    fn undefined_attributes_are_rejected_except_in_raw_state() {
        let ty = object_type(&[("name", Type::String)]);
        let json = br#"{"name":"bg-1","retired_field":5}"#;
        let err = decode_json(json, &ty).unwrap_err();
        assert_eq!(err.problem, Problem::UnsupportedAttribute);
        assert_eq!(err.path, AttributePath::root("retired_field"));
        assert_eq!(
            decode_raw_state(json, &ty).unwrap(),
            Value::object([("name", Value::from("bg-1"))])
        );
    }

    #[test]
    fn primitives_convert_the_way_cty_does() {
        let number = |j: &str| decode_json(j.as_bytes(), &Type::Number).unwrap();
        assert_eq!(number("7"), 7.into());
        assert_eq!(number("-7"), (-7).into());
        assert_eq!(number("1.5"), Value::Number(Number::Float(1.5)));
        assert_eq!(number("3.0"), Value::Number(Number::Float(3.0)));
        assert_eq!(number("1e3"), Value::Number(Number::Float(1000.0)));
        assert_eq!(number(r#""12""#), 12.into());
        assert_eq!(
            number("18446744073709551615"),
            Value::Number(Number::Float(u64::MAX as f64))
        );
        assert_eq!(
            decode_json(br#""twelve""#, &Type::Number)
                .unwrap_err()
                .problem,
            Problem::InvalidNumber
        );

        let string = |j: &str| decode_json(j.as_bytes(), &Type::String).unwrap();
        assert_eq!(string(r#""x""#), "x".into());
        assert_eq!(string("5"), "5".into());
        assert_eq!(string("true"), "true".into());

        let boolean = |j: &str| decode_json(j.as_bytes(), &Type::Bool).unwrap();
        assert_eq!(boolean("true"), true.into());
        assert_eq!(boolean(r#""false""#), false.into());
        assert!(decode_json(br#""yes""#, &Type::Bool).is_err());
        assert!(decode_json(b"1", &Type::Bool).is_err());
    }

    /// Found by the round-trip property: serde_json's default float parser read this literal
    /// one unit in the last place off, which would make a stored float drift on every refresh.
    #[test]
    fn floats_read_back_bit_for_bit() {
        for f in [
            -1.0735680152959415e-238,
            0.1,
            2.2250738585072014e-308,
            1.7976931348623157e308,
        ] {
            let value = Value::Number(Number::Float(f));
            let text = encode_json(&value, &Type::Number).unwrap();
            assert_eq!(decode_json(&text, &Type::Number).unwrap(), value, "{f:e}");
        }
    }

    #[test]
    fn numbers_read_as_strings_keep_their_literal() {
        assert_eq!(decode_json(b"1.50", &Type::String).unwrap(), "1.50".into());
        assert_eq!(
            decode_json(b"1e400", &Type::String).unwrap(),
            "1e400".into()
        );
        assert_eq!(
            decode_json(b"1e400", &Type::Number).unwrap_err().problem,
            Problem::InvalidNumber
        );
    }

    #[test]
    fn duplicate_keys_are_errors() {
        let ty = object_type(&[("a", Type::Bool)]);
        let err = decode_json(br#"{"a":true,"a":false}"#, &ty).unwrap_err();
        assert_eq!(
            (err.problem, err.path),
            (Problem::DuplicateKey, AttributePath::root("a"))
        );
        let err = decode_json(br#"{"k":true,"k":false}"#, &Type::map(Type::Bool)).unwrap_err();
        assert_eq!(err.problem, Problem::DuplicateKey);
        let err = decode_json(
            br#"{"type":"bool","value":true,"type":"bool"}"#,
            &Type::Dynamic,
        )
        .unwrap_err();
        assert_eq!(err.problem, Problem::MalformedDynamic);
    }

    #[test]
    fn numbers_and_strings_encode_as_valid_json() {
        let num = |n: Number| encoded(&Value::Number(n), &Type::Number);
        assert_eq!(num(Number::Int(-42)), "-42");
        assert_eq!(num(Number::Float(1.5)), "1.5");
        assert_eq!(num(Number::Float(3.0)), "3.0");
        assert_eq!(num(Number::Float(1e21)), "1000000000000000000000.0");
        assert_eq!(
            encode_json(&Value::Number(Number::Float(f64::INFINITY)), &Type::Number)
                .unwrap_err()
                .problem,
            Problem::InfiniteInJson
        );
        assert_eq!(
            encoded(&"a\"b\\c\n\u{1}é".into(), &Type::String),
            r#""a\"b\\c\n\u0001é""#
        );
    }

    #[test]
    fn dynamic_values_are_value_and_type_objects() {
        let value = Value::Dynamic(
            Type::list(Type::String),
            Box::new(Value::List(vec!["a".into()])),
        );
        let text = encoded(&value, &Type::Dynamic);
        assert_eq!(text, r#"{"value":["a"],"type":["list","string"]}"#);
        assert_eq!(decode_json(text.as_bytes(), &Type::Dynamic).unwrap(), value);
        // Type may come first.
        assert_eq!(
            decode_json(
                br#"{"type":["list","string"],"value":["a"]}"#,
                &Type::Dynamic
            )
            .unwrap(),
            value
        );
        assert_eq!(decode_json(b"null", &Type::Dynamic).unwrap(), Value::Null);
        for bad in [
            r#"{"value":"a"}"#,
            r#"{"type":"string"}"#,
            r#"{"type":"string","value":"a","extra":1}"#,
        ] {
            assert_eq!(
                decode_json(bad.as_bytes(), &Type::Dynamic)
                    .unwrap_err()
                    .problem,
                Problem::MalformedDynamic,
                "{bad}"
            );
        }
        assert_eq!(
            decode_json(br#"{"type":"blob","value":"a"}"#, &Type::Dynamic)
                .unwrap_err()
                .problem,
            Problem::InvalidDynamicType
        );
    }

    #[test]
    fn unknowns_cannot_be_written_and_the_error_says_where() {
        let ty = object_type(&[("ids", Type::list(Type::String))]);
        let value = Value::object([("ids", Value::List(vec!["a".into(), Value::Unknown]))]);
        let err = encode_json(&value, &ty).unwrap_err();
        assert_eq!(err.problem, Problem::UnknownInJson);
        assert_eq!(err.path, AttributePath::root("ids").index(1));
    }

    #[test]
    fn structural_mismatches_are_errors_with_paths() {
        let ty = object_type(&[("pair", Type::Tuple(vec![Type::String, Type::Number]))]);
        let err = decode_json(br#"{"pair":["a"]}"#, &ty).unwrap_err();
        assert_eq!(err.path, AttributePath::root("pair"));
        assert_eq!(
            err.problem,
            Problem::TupleLength {
                expected: 2,
                found: 1
            }
        );
        let err = decode_json(br#"{"pair":["a", {}]}"#, &ty).unwrap_err();
        assert_eq!(err.path, AttributePath::root("pair").index(1));
        let err = decode_json(br#"["not an object"]"#, &ty).unwrap_err();
        assert_eq!(err.path, AttributePath::default());
        assert_eq!(
            decode_json(b"{\"pair\": [", &ty).unwrap_err().problem,
            Problem::JsonSyntax {
                line: 1,
                column: 11
            }
        );
    }
}
