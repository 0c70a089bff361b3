//! DynamicValue codec: msgpack (with unknowns) and JSON, decoded against a `Type` into
//! `framework::Value` and encoded back.
//!
//! Terraform core writes these bytes with go-cty's `msgpack` and `json` packages, so the rules
//! here are cty's rules:
//!
//! - Null is msgpack nil / JSON `null`, at every type.
//! - Unknown is a msgpack extension. cty writes a wholly unknown value as the three bytes
//!   `d4 00 00` (fixext1, extension type 0, one zero byte). Since Terraform 1.6 an unknown value
//!   that carries refinements ("not null", "starts with…") is extension type 12 whose payload is a
//!   msgpack map. Both decode to `Value::Unknown`; the provider never uses refinements, so they
//!   are checked for well-formedness and dropped. JSON has no unknowns at all.
//! - Numbers arrive as msgpack ints, floats, or decimal strings (cty's fallback for numbers too
//!   big or too precise for int64/float64). Our `Number` is int64-or-float64, so such strings
//!   become the nearest float.
//! - Objects are maps keyed by attribute name; every attribute of the type is written, in the
//!   type's (sorted) order. Decoding fills attributes missing from the input with null.
//! - Lists, sets and tuples are arrays; maps are maps. Sets keep the order received.
//! - A `dynamic`-typed value carries its type: msgpack `[type-JSON bytes, value]`, JSON
//!   `{"value": …, "type": …}`. A null or unknown dynamic value is written bare.
//!
//! Errors name the attribute path and what was wrong, never the value: values may be secrets.

mod json;
mod json_syntax;
mod msgpack;

use std::fmt;

use crate::framework::{AttributePath, Number, PathStep, Type, Value};

/// Decodes a msgpack DynamicValue (config, plan, state) into a value of type `ty`.
pub fn decode_msgpack(bytes: &[u8], ty: &Type) -> Result<Value, CodecError> {
    msgpack::decode(bytes, ty)
}

/// Encodes `value` as a msgpack DynamicValue of type `ty` in cty's format. The bytes match
/// cty's except that an integral `Number::Float` stays a float64 where cty would write an int;
/// Terraform compares numbers by value, so both read back as the same number.
pub fn encode_msgpack(value: &Value, ty: &Type) -> Result<Vec<u8>, CodecError> {
    msgpack::encode(value, ty)
}

/// Decodes a JSON DynamicValue, rejecting object attributes the type does not have.
pub fn decode_json(bytes: &[u8], ty: &Type) -> Result<Value, CodecError> {
    json::decode(bytes, ty, json::UndefinedAttributes::Reject)
}

/// Decodes raw JSON state (`UpgradeResourceState`) into the current type, dropping object
/// attributes the type no longer has: state written by an older provider version may still
/// carry attributes that were since removed from the schema.
pub fn decode_raw_state(bytes: &[u8], ty: &Type) -> Result<Value, CodecError> {
    json::decode(bytes, ty, json::UndefinedAttributes::Ignore)
}

/// Encodes `value` as JSON of type `ty`. Fails on unknown values, which JSON cannot carry.
pub fn encode_json(value: &Value, ty: &Type) -> Result<Vec<u8>, CodecError> {
    json::encode(value, ty)
}

/// A value that could not be decoded or encoded: where, and why. Deliberately holds no part of
/// the value itself.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{problem} at {}", PathLabel(.path))]
pub struct CodecError {
    /// Path from the root value to the offending part (empty for the root itself).
    pub path: AttributePath,
    pub problem: Problem,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    #[error("input ends in the middle of a value")]
    Truncated,
    #[error("{0} unexpected bytes follow the value")]
    TrailingBytes(usize),
    #[error("byte 0x{0:02x} does not start any msgpack value")]
    InvalidMarker(u8),
    #[error("invalid JSON at line {line}, column {column}")]
    JsonSyntax { line: usize, column: usize },
    #[error("expected {expected}, found {found}")]
    WrongKind {
        expected: &'static str,
        found: &'static str,
    },
    #[error("string is not valid UTF-8")]
    InvalidUtf8,
    #[error("not a finite decimal number")]
    InvalidNumber,
    #[error("NaN is not a number Terraform can represent")]
    NotANumber,
    #[error("infinite numbers cannot be represented in JSON")]
    InfiniteInJson,
    #[error("map and object keys must be strings")]
    NonStringKey,
    #[error("attribute is not part of the type")]
    UnsupportedAttribute,
    #[error("key appears more than once")]
    DuplicateKey,
    #[error("tuple needs {expected} elements, found {found}")]
    TupleLength { expected: usize, found: usize },
    #[error(
        "dynamic value must be a [type, value] pair (msgpack) or {{\"type\", \"value\"}} (JSON)"
    )]
    MalformedDynamic,
    #[error("dynamic value carries an invalid type description")]
    InvalidDynamicType,
    #[error("value of a dynamic attribute must carry its type (Value::Dynamic), found {found}")]
    UntypedDynamic { found: &'static str },
    #[error("unsupported msgpack extension type {code} with a {len}-byte payload")]
    UnsupportedExtension { code: i8, len: usize },
    #[error("refinements of an unknown value are malformed")]
    MalformedRefinements,
    #[error("unknown values cannot be represented in JSON")]
    UnknownInJson,
    #[error("value is {found}, but the type is {expected}")]
    ValueDoesNotMatchType {
        expected: &'static str,
        found: &'static str,
    },
    #[error("values nest deeper than {MAX_DEPTH} levels")]
    TooDeep,
    #[error("collection is too large for msgpack (over 2^32 - 1 entries or bytes)")]
    TooLarge,
}

/// Schemas nest a handful of levels; anything far deeper is garbage, and a bound keeps hostile
/// input (e.g. dynamic values wrapping dynamic values) from exhausting the stack.
pub(crate) const MAX_DEPTH: usize = 96;

impl CodecError {
    pub(crate) fn new(problem: Problem) -> Self {
        CodecError {
            path: AttributePath::default(),
            problem,
        }
    }

    /// Prefixes the path with the step that led into the failing part. Errors are built
    /// innermost-first, so the success path never pays for path bookkeeping.
    pub(crate) fn within(mut self, step: PathStep) -> Self {
        self.path.0.insert(0, step);
        self
    }

    pub(crate) fn within_attribute(self, name: &str) -> Self {
        self.within(PathStep::Attribute(name.to_owned()))
    }

    pub(crate) fn within_key(self, key: &str) -> Self {
        self.within(PathStep::Key(key.to_owned()))
    }

    pub(crate) fn within_index(self, index: usize) -> Self {
        self.within(PathStep::Index(index as i64))
    }
}

impl From<Problem> for CodecError {
    fn from(problem: Problem) -> Self {
        CodecError::new(problem)
    }
}

struct PathLabel<'a>(&'a AttributePath);

impl fmt::Display for PathLabel<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 .0.is_empty() {
            f.write_str("the root value")
        } else {
            write!(f, "`{}`", self.0)
        }
    }
}

/// Parses cty's decimal string form of a number (used for numbers too big or too precise for
/// int64/float64). Integers that fit stay exact; everything else becomes the nearest float.
pub(crate) fn parse_number(text: &str) -> Result<Number, Problem> {
    if let Ok(i) = text.parse::<i64>() {
        return Ok(Number::Int(i));
    }
    // Rust's float parser also takes "inf" and "NaN"; cty numbers are plain decimals only.
    let decimal = !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'-' | b'+' | b'.' | b'e' | b'E'));
    match text.parse::<f64>() {
        Ok(f) if decimal && f.is_finite() => Ok(Number::Float(f)),
        _ => Err(Problem::InvalidNumber),
    }
}

/// How a type is named in error messages ("expected a list").
pub(crate) fn type_label(ty: &Type) -> &'static str {
    match ty {
        Type::String => "a string",
        Type::Number => "a number",
        Type::Bool => "a bool",
        Type::List(_) => "a list",
        Type::Set(_) => "a set",
        Type::Map(_) => "a map",
        Type::Object(_) => "an object",
        Type::Tuple(_) => "a tuple",
        Type::Dynamic => "a dynamic value",
    }
}

/// How a value's kind is named in error messages; never its content.
pub(crate) fn value_label(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Unknown => "unknown",
        Value::Bool(_) => "a bool",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::List(_) => "a list",
        Value::Set(_) => "a set",
        Value::Map(_) => "a map",
        Value::Object(_) => "an object",
        Value::Tuple(_) => "a tuple",
        Value::Dynamic(..) => "a dynamic value",
    }
}

/// The cty type JSON (`"string"`, `["list","number"]`, …) that dynamic values carry.
pub(crate) fn type_json(ty: &Type) -> String {
    ty.to_json().to_string()
}

pub(crate) fn parse_type_json(bytes: &[u8]) -> Result<Type, Problem> {
    let json: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|_| Problem::InvalidDynamicType)?;
    Type::from_json(&json).map_err(|_| Problem::InvalidDynamicType)
}

#[cfg(test)]
mod tests {
    //! Properties over arbitrary (type, value) pairs. Format-specific rules are pinned with
    //! hand-built bytes in the `msgpack` and `json` submodules.

    use std::collections::BTreeMap;

    use proptest::collection::{btree_map, vec};
    use proptest::prelude::*;

    use super::*;

    fn arb_type(allow_dynamic: bool) -> BoxedStrategy<Type> {
        let leaf = if allow_dynamic {
            prop_oneof![
                Just(Type::String),
                Just(Type::Number),
                Just(Type::Bool),
                Just(Type::Dynamic),
            ]
            .boxed()
        } else {
            prop_oneof![Just(Type::String), Just(Type::Number), Just(Type::Bool)].boxed()
        };
        leaf.prop_recursive(4, 32, 4, |inner| {
            prop_oneof![
                inner.clone().prop_map(Type::list),
                inner.clone().prop_map(Type::set),
                inner.clone().prop_map(Type::map),
                vec(inner.clone(), 0..4).prop_map(Type::Tuple),
                btree_map("[a-z_]{1,10}", inner, 0..5).prop_map(Type::Object),
            ]
        })
        .boxed()
    }

    fn arb_number() -> impl Strategy<Value = Number> {
        prop_oneof![
            any::<i64>().prop_map(Number::Int),
            (-1000i64..1000).prop_map(Number::Int),
            any::<f64>()
                .prop_filter("cty numbers are finite", |f| f.is_finite())
                .prop_map(Number::Float),
            (-1000i32..1000).prop_map(|i| Number::Float(f64::from(i) / 8.0)),
        ]
    }

    /// Any value of type `ty`: null, unknown (when allowed) or known, recursively.
    fn arb_value(ty: &Type, unknowns: bool) -> BoxedStrategy<Value> {
        let known = known_value(ty, unknowns);
        if unknowns {
            prop_oneof![1 => Just(Value::Null), 1 => Just(Value::Unknown), 6 => known].boxed()
        } else {
            prop_oneof![1 => Just(Value::Null), 6 => known].boxed()
        }
    }

    fn known_value(ty: &Type, unknowns: bool) -> BoxedStrategy<Value> {
        match ty {
            Type::String => any::<String>().prop_map(Value::String).boxed(),
            Type::Number => arb_number().prop_map(Value::Number).boxed(),
            Type::Bool => any::<bool>().prop_map(Value::Bool).boxed(),
            Type::List(e) => vec(arb_value(e, unknowns), 0..4)
                .prop_map(Value::List)
                .boxed(),
            Type::Set(e) => vec(arb_value(e, unknowns), 0..4)
                .prop_map(Value::Set)
                .boxed(),
            Type::Map(e) => btree_map(any::<String>(), arb_value(e, unknowns), 0..4)
                .prop_map(Value::Map)
                .boxed(),
            Type::Tuple(elems) => elems
                .iter()
                .map(|e| arb_value(e, unknowns))
                .collect::<Vec<_>>()
                .prop_map(Value::Tuple)
                .boxed(),
            Type::Object(attrs) => attrs
                .iter()
                .map(|(name, aty)| {
                    let name = name.clone();
                    arb_value(aty, unknowns).prop_map(move |v| (name.clone(), v))
                })
                .collect::<Vec<_>>()
                .prop_map(|pairs| Value::Object(pairs.into_iter().collect::<BTreeMap<_, _>>()))
                .boxed(),
            // The wrapped type is concrete: nesting dynamics inside dynamics is pinned by unit
            // tests instead, so generation stays bounded.
            Type::Dynamic => arb_type(false)
                .prop_flat_map(move |concrete| {
                    let carried = concrete.clone();
                    arb_value(&concrete, unknowns)
                        .prop_map(move |v| Value::Dynamic(carried.clone(), Box::new(v)))
                })
                .boxed(),
        }
    }

    fn typed_value(unknowns: bool) -> impl Strategy<Value = (Type, Value)> {
        arb_type(true).prop_flat_map(move |ty| {
            let value = arb_value(&ty, unknowns);
            (Just(ty), value)
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn msgpack_round_trips((ty, value) in typed_value(true)) {
            let bytes = encode_msgpack(&value, &ty).map_err(|e| TestCaseError::fail(e.to_string()))?;
            let decoded = decode_msgpack(&bytes, &ty).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(decoded, value);
        }

        #[test]
        fn json_round_trips_known_values((ty, value) in typed_value(false)) {
            let bytes = encode_json(&value, &ty).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert!(serde_json::from_slice::<serde_json::Value>(&bytes).is_ok(), "not JSON");
            let decoded = decode_json(&bytes, &ty).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(decoded, value);
        }

        #[test]
        fn json_encoding_fails_exactly_when_something_is_unknown((ty, value) in typed_value(true)) {
            match encode_json(&value, &ty) {
                Ok(_) => prop_assert!(value.is_fully_known()),
                Err(e) => {
                    prop_assert!(!value.is_fully_known());
                    prop_assert_eq!(e.problem, Problem::UnknownInJson);
                }
            }
        }

        /// msgpack values are self-delimiting, so no strict prefix of an encoding is a value:
        /// a cut-off message must be an error, never a silently shorter value.
        #[test]
        fn truncated_msgpack_is_an_error((ty, value) in typed_value(true), cut in any::<prop::sample::Index>()) {
            let bytes = encode_msgpack(&value, &ty).map_err(|e| TestCaseError::fail(e.to_string()))?;
            let len = cut.index(bytes.len());
            prop_assert!(decode_msgpack(&bytes[..len], &ty).is_err());
        }

        #[test]
        fn garbage_never_panics(ty in arb_type(true), bytes in vec(any::<u8>(), 0..64)) {
            let _ = decode_msgpack(&bytes, &ty);
            let _ = decode_json(&bytes, &ty);
        }

        /// Flipping bytes of a valid encoding exercises deeper decoder paths than pure noise.
        #[test]
        fn corrupted_msgpack_never_panics(
            (ty, value) in typed_value(true),
            flips in vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
        ) {
            let mut bytes = encode_msgpack(&value, &ty).map_err(|e| TestCaseError::fail(e.to_string()))?;
            for (at, byte) in flips {
                let i = at.index(bytes.len());
                bytes[i] = byte;
            }
            let _ = decode_msgpack(&bytes, &ty);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// JSON decoding (DynamicValue and raw state) of a valid encoding with bytes flipped or
        /// cut off: an error or a value of the type, never a panic.
        #[test]
        fn corrupted_json_never_panics(
            (ty, value) in typed_value(false),
            flips in vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
            cut in any::<prop::sample::Index>(),
        ) {
            let mut bytes = encode_json(&value, &ty).map_err(|e| TestCaseError::fail(e.to_string()))?;
            for (at, byte) in flips {
                let i = at.index(bytes.len());
                bytes[i] = byte;
            }
            for bytes in [&bytes[..], &bytes[..cut.index(bytes.len())]] {
                let _ = decode_json(bytes, &ty);
                let _ = decode_raw_state(bytes, &ty);
            }
        }

        /// Stored state round-trips through JSON, and state written by an older schema with an
        /// attribute since removed still loads (the attribute is dropped), where a JSON
        /// DynamicValue carrying it is refused.
        #[test]
        fn raw_state_round_trips_and_drops_removed_attributes(
            attrs in btree_map("[a-z_]{1,10}", arb_type(false), 1..5),
            seed in any::<u64>(),
        ) {
            let ty = Type::Object(attrs);
            let mut runner = proptest::test_runner::TestRunner::new_with_rng(
                Default::default(),
                proptest::test_runner::TestRng::from_seed(
                    proptest::test_runner::RngAlgorithm::ChaCha,
                    &[seed.to_le_bytes(), [0; 8], [0; 8], [0; 8]].concat(),
                ),
            );
            let value = known_value(&ty, false).new_tree(&mut runner).unwrap().current();
            let bytes = encode_json(&value, &ty).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(decode_raw_state(&bytes, &ty).ok(), Some(value.clone()));
            // Spliced in as text: a serde_json round trip would not keep every float exact.
            prop_assert_eq!(bytes.first(), Some(&b'{'));
            let older = [&b"{\"zz_removed_attribute\": [\"old\", 1.5],"[..], &bytes[1..]].concat();
            prop_assert_eq!(decode_raw_state(&older, &ty).ok(), Some(value));
            prop_assert_eq!(
                decode_json(&older, &ty).map_err(|e| e.problem),
                Err(Problem::UnsupportedAttribute)
            );
        }
    }

    /// Terraform evaluates `1/0` to +Inf and sends it as a msgpack float: it decodes (the
    /// validators refuse it where a whole number is wanted), and JSON refuses to store it.
    #[test]
    fn infinities_travel_in_msgpack_and_are_refused_in_json() {
        for f in [f64::INFINITY, f64::NEG_INFINITY] {
            let value = Value::Number(Number::Float(f));
            let bytes = encode_msgpack(&value, &Type::Number).unwrap();
            assert_eq!(decode_msgpack(&bytes, &Type::Number), Ok(value.clone()));
            assert_eq!(
                encode_json(&value, &Type::Number).map_err(|e| e.problem),
                Err(Problem::InfiniteInJson)
            );
        }
        let nan = encode_msgpack(&Value::Number(Number::Float(f64::NAN)), &Type::Number);
        assert!(nan.is_err());
        // A float64 NaN from the wire: 0xcb + the IEEE bits of a quiet NaN.
        let wire_nan = [0xcb, 0x7f, 0xf8, 0, 0, 0, 0, 0, 0];
        assert_eq!(
            decode_msgpack(&wire_nan, &Type::Number).map_err(|e| e.problem),
            Err(Problem::NotANumber)
        );
    }

    #[test]
    fn error_names_the_nested_path() {
        let ty = Type::Object(BTreeMap::from([(
            "members".to_owned(),
            Type::list(Type::Object(BTreeMap::from([(
                "name".to_owned(),
                Type::String,
            )]))),
        )]));
        // {"members": [{"name": "a"}, {"name": 7}]}
        let bytes = [
            0x81, 0xa7, b'm', b'e', b'm', b'b', b'e', b'r', b's', 0x92, 0x81, 0xa4, b'n', b'a',
            b'm', b'e', 0xa1, b'a', 0x81, 0xa4, b'n', b'a', b'm', b'e', 0x07,
        ];
        let err = decode_msgpack(&bytes, &ty).unwrap_err();
        assert_eq!(
            err.path,
            AttributePath::root("members").index(1).attr("name")
        );
        assert_eq!(
            err.problem,
            Problem::WrongKind {
                expected: "a string",
                found: "a msgpack integer"
            }
        );
        assert_eq!(
            err.to_string(),
            "expected a string, found a msgpack integer at `members[1].name`"
        );

        let json = br#"{"members": [{"name": "a"}, {"name": [1]}]}"#;
        let err = decode_json(json, &ty).unwrap_err();
        assert_eq!(
            err.path,
            AttributePath::root("members").index(1).attr("name")
        );
    }

    #[test]
    fn errors_never_echo_the_value() {
        let ty = Type::Object(BTreeMap::from([("secret".to_owned(), Type::Number)]));
        let password = "correct-horse-battery-staple";
        let mut bytes = vec![0x81, 0xa6];
        bytes.extend_from_slice(b"secret");
        bytes.push(0xa0 | password.len() as u8);
        bytes.extend_from_slice(password.as_bytes());
        let err = decode_msgpack(&bytes, &ty).unwrap_err();
        assert_eq!(err.problem, Problem::InvalidNumber);
        assert!(!err.to_string().contains(password));
        assert!(!format!("{err:?}").contains(password));

        let json = format!(r#"{{"secret": "{password}"}}"#);
        let err = decode_json(json.as_bytes(), &ty).unwrap_err();
        assert!(!err.to_string().contains(password));
        assert!(!format!("{err:?}").contains(password));
    }

    #[test]
    fn number_strings_parse_as_decimals_only() {
        assert_eq!(parse_number("42"), Ok(Number::Int(42)));
        assert_eq!(parse_number("-7"), Ok(Number::Int(-7)));
        assert_eq!(parse_number("2.5"), Ok(Number::Float(2.5)));
        assert_eq!(parse_number("1e3"), Ok(Number::Float(1000.0)));
        // Beyond int64: cty sends these as strings; we keep the nearest float.
        assert_eq!(
            parse_number("123456789012345678901234567890"),
            Ok(Number::Float(1.2345678901234568e29))
        );
        for bad in [
            "", "inf", "NaN", "infinity", "0x10", "1e999", "twelve", " 1",
        ] {
            assert_eq!(parse_number(bad), Err(Problem::InvalidNumber), "{bad:?}");
        }
    }

    #[test]
    fn root_errors_say_so() {
        let err = decode_msgpack(&[], &Type::String).unwrap_err();
        assert_eq!(
            err.to_string(),
            "input ends in the middle of a value at the root value"
        );
    }
}
