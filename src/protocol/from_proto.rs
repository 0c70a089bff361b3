//! Wire messages → `framework` values. Every failure becomes a diagnostic naming the field and,
//! when the codec knows it, the attribute; values themselves never appear in messages.

use crate::framework::{Diagnostic, Number, Schema, Type, Value};
use crate::protocol::codec::{self, CodecError};
use crate::protocol::logic::ClientCapabilities;
use crate::protocol::proto::tfplugin6 as proto;

/// Decodes a DynamicValue Terraform sent for `field` (e.g. "config", "prior_state").
/// An absent or empty value is null, as Terraform means it.
pub fn dynamic_value(
    value: Option<&proto::DynamicValue>,
    ty: &Type,
    field: &str,
) -> Result<Value, Diagnostic> {
    let Some(value) = value else {
        return Ok(Value::Null);
    };
    let decoded = if !value.msgpack.is_empty() {
        codec::decode_msgpack(&value.msgpack, ty)
    } else if !value.json.is_empty() {
        codec::decode_json(&value.json, ty)
    } else {
        return Ok(Value::Null);
    };
    decoded.map_err(|error| undecodable(field, error))
}

/// Decodes stored state for UpgradeResourceState.
///
/// State of the current schema version is decoded with the current type (attributes since
/// removed are dropped). State of an older version has a shape only the resource's
/// `upgrade_state` knows, so it is handed over untyped: JSON objects become objects, arrays
/// become lists, numbers, strings and booleans stay what they are.
pub fn raw_state(
    raw: Option<&proto::RawState>,
    stored_version: i64,
    schema: &Schema,
    ty: &Type,
) -> Result<Value, Diagnostic> {
    let Some(raw) = raw else {
        return Ok(Value::Null);
    };
    if raw.json.is_empty() {
        if raw.flatmap.is_empty() {
            return Ok(Value::Null);
        }
        // Only providers from before Terraform 0.12 wrote flatmap state; this one never did.
        return Err(Diagnostic::error(
            "Unsupported state format",
            "The stored state uses the flatmap format of Terraform 0.11 and earlier, which the \
             breakglass provider never wrote. Remove the resource from state and import it again.",
        ));
    }
    if stored_version == schema.version {
        codec::decode_raw_state(&raw.json, ty).map_err(|error| undecodable("raw_state", error))
    } else {
        let json: serde_json::Value = serde_json::from_slice(&raw.json).map_err(|error| {
            Diagnostic::error(
                "Invalid stored state",
                format!(
                    "The stored state is not valid JSON (line {}, column {}).",
                    error.line(),
                    error.column()
                ),
            )
        })?;
        Ok(untyped_value(&json))
    }
}

/// A JSON document as a value without a schema (see [`raw_state`]).
pub fn untyped_value(json: &serde_json::Value) -> Value {
    use serde_json::Value as Json;
    match json {
        Json::Null => Value::Null,
        Json::Bool(b) => Value::Bool(*b),
        Json::Number(n) => match n.as_i64() {
            Some(i) => Value::Number(Number::Int(i)),
            None => Value::Number(Number::Float(n.as_f64().unwrap_or(f64::NAN))),
        },
        Json::String(s) => Value::String(s.clone()),
        Json::Array(items) => Value::List(items.iter().map(untyped_value).collect()),
        Json::Object(fields) => Value::Object(
            fields
                .iter()
                .map(|(k, v)| (k.clone(), untyped_value(v)))
                .collect(),
        ),
    }
}

pub fn client_capabilities(capabilities: Option<&proto::ClientCapabilities>) -> ClientCapabilities {
    capabilities
        .map(|c| ClientCapabilities {
            deferral_allowed: c.deferral_allowed,
            write_only_attributes_allowed: c.write_only_attributes_allowed,
        })
        .unwrap_or_default()
}

fn undecodable(field: &str, error: CodecError) -> Diagnostic {
    let diagnostic = Diagnostic::error(
        format!("Invalid {field} from Terraform"),
        format!(
            "The breakglass provider could not decode the {field} Terraform sent: {error}. \
             This usually means Terraform holds a schema from another provider version; run \
             `terraform init` again."
        ),
    );
    if error.path.0.is_empty() {
        diagnostic
    } else {
        diagnostic.at(error.path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framework::Attribute;

    fn schema(version: i64) -> Schema {
        Schema {
            version,
            attributes: vec![Attribute::required("name", Type::String, "Name.")],
            ..Schema::default()
        }
    }

    #[test]
    fn absent_and_empty_dynamic_values_are_null() {
        assert_eq!(
            dynamic_value(None, &Type::String, "config"),
            Ok(Value::Null)
        );
        let empty = proto::DynamicValue::default();
        assert_eq!(
            dynamic_value(Some(&empty), &Type::String, "config"),
            Ok(Value::Null)
        );
    }

    #[test]
    fn msgpack_wins_over_json_and_errors_name_the_field() {
        let both = proto::DynamicValue {
            msgpack: vec![0xa1, b'x'], // "x"
            json: b"\"y\"".to_vec(),
        };
        assert_eq!(
            dynamic_value(Some(&both), &Type::String, "config"),
            Ok(Value::from("x"))
        );
        let bad = proto::DynamicValue {
            msgpack: vec![0xc3], // true, where a string is expected
            json: Vec::new(),
        };
        let error = dynamic_value(Some(&bad), &Type::String, "prior_state").unwrap_err();
        assert_eq!(error.summary, "Invalid prior_state from Terraform");
    }

    #[test]
    fn current_version_state_is_typed_and_older_state_untyped() {
        let ty = schema(1).value_type();
        let raw = proto::RawState {
            json: br#"{"name":"a","removed":[1,2.5]}"#.to_vec(),
            ..Default::default()
        };
        let current = raw_state(Some(&raw), 1, &schema(1), &ty).unwrap();
        assert_eq!(current, Value::object([("name", Value::from("a"))]));

        let older = raw_state(Some(&raw), 0, &schema(1), &ty).unwrap();
        assert_eq!(
            older.get("removed"),
            Value::List(vec![
                Value::Number(Number::Int(1)),
                Value::Number(Number::Float(2.5))
            ])
        );
    }

    #[test]
    fn flatmap_state_is_refused_with_advice() {
        let raw = proto::RawState {
            json: Vec::new(),
            flatmap: [("name".to_owned(), "a".to_owned())].into(),
        };
        let error = raw_state(Some(&raw), 0, &schema(0), &schema(0).value_type()).unwrap_err();
        assert!(error.detail.contains("import it again"));
    }
}
