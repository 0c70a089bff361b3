//! Typed models: config, plan and state as plain Rust structs, through serde over
//! [`Value`] — terraform-plugin-framework's `tfsdk:"name"` structs, in Rust.
//!
//! A model field has the attribute's name and one of these types:
//! - [`Tf<T>`] when the value may be null or unknown (configuration and plans);
//! - `Option<T>` when it is only ever null or known (state, or apply-time reads of attributes
//!   configuration always sets);
//! - `T` for values that are always present.
//!
//! `T` is `String`, `bool`, `i64`/`u32`/…, `f64`, `Vec<T>` (lists and sets), `BTreeSet<T>`,
//! `BTreeMap<String, T>` (maps), another model struct (nested blocks and objects), or a
//! `#[serde(rename_all = …)]` unit enum for string attributes with a fixed set of values.
//!
//! [`decode`] turns a value into a model; decoding errors name the attribute, so a wrong type
//! becomes a diagnostic, never a panic. [`encode`] turns a model back into a value; the
//! protocol layer then conforms it to the schema's type (lists become sets where the schema
//! says set, absent attributes become null), so a model may leave out nothing and add nothing:
//! [`field_names`] lets each resource's unit test prove its model and schema have the same
//! fields.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, DeserializeOwned, IntoDeserializer, Visitor};
use serde::ser::{self, Serialize};
use serde::{Deserialize, Deserializer, Serializer};

use crate::framework::diag::{AttributePath, Diagnostic, PathStep};
use crate::framework::types::Type;
use crate::framework::value::{Number, Value};

/// A value that may be null or (during planning) unknown.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Default)]
pub enum Tf<T> {
    #[default]
    Null,
    Unknown,
    Known(T),
}

impl<T> Tf<T> {
    pub fn is_null(&self) -> bool {
        matches!(self, Tf::Null)
    }
    pub fn is_unknown(&self) -> bool {
        matches!(self, Tf::Unknown)
    }
    /// Set in configuration: known, or unknown (it will be known at apply).
    pub fn is_set(&self) -> bool {
        !self.is_null()
    }
    /// The value when known.
    pub fn get(&self) -> Option<&T> {
        match self {
            Tf::Known(v) => Some(v),
            _ => None,
        }
    }
    pub fn into_option(self) -> Option<T> {
        match self {
            Tf::Known(v) => Some(v),
            _ => None,
        }
    }
    pub fn as_ref(&self) -> Tf<&T> {
        match self {
            Tf::Null => Tf::Null,
            Tf::Unknown => Tf::Unknown,
            Tf::Known(v) => Tf::Known(v),
        }
    }
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Tf<U> {
        match self {
            Tf::Null => Tf::Null,
            Tf::Unknown => Tf::Unknown,
            Tf::Known(v) => Tf::Known(f(v)),
        }
    }
    /// The known value, or `default` when null or unknown.
    pub fn unwrap_or(self, default: T) -> T {
        self.into_option().unwrap_or(default)
    }
    /// The known value, or `T::default()` when null or unknown.
    pub fn unwrap_or_default(self) -> T
    where
        T: Default,
    {
        self.into_option().unwrap_or_default()
    }
}

impl Tf<String> {
    pub fn as_deref(&self) -> Option<&str> {
        self.get().map(String::as_str)
    }
}

impl<T: Clone> Tf<T> {
    /// The value of attribute `name`, which must be known here (an id in a stored state, a
    /// configured value at apply time); otherwise an error on the attribute that says how to
    /// recover.
    pub fn required(&self, name: &str) -> Result<T, Diagnostic> {
        self.get().cloned().ok_or_else(|| {
            Diagnostic::error(
                format!("Missing {name}"),
                format!(
                    "`{name}` has no value where the provider needs one. If this is a stored \
                     state, remove the resource from state and import it again."
                ),
            )
            .at(AttributePath::root(name))
        })
    }
}

impl<T> From<Option<T>> for Tf<T> {
    fn from(o: Option<T>) -> Self {
        match o {
            Some(v) => Tf::Known(v),
            None => Tf::Null,
        }
    }
}

/// serde names the magic newtype by which `Tf` talks to the `Value` (de)serializers here; any
/// other format sees a plain option.
const TF_MARKER: &str = "$breakglass::Tf";
const UNKNOWN_MARKER: &str = "$breakglass::Unknown";

impl<T: Serialize> Serialize for Tf<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Tf::Null => serializer.serialize_none(),
            Tf::Unknown => serializer.serialize_newtype_struct(UNKNOWN_MARKER, &()),
            Tf::Known(v) => v.serialize(serializer),
        }
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Tf<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TfVisitor<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for TfVisitor<T> {
            type Value = Tf<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a Terraform value")
            }
            fn visit_none<E: de::Error>(self) -> Result<Tf<T>, E> {
                Ok(Tf::Null)
            }
            fn visit_unit<E: de::Error>(self) -> Result<Tf<T>, E> {
                Ok(Tf::Unknown)
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Tf<T>, D::Error> {
                T::deserialize(d).map(Tf::Known)
            }
            fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<Tf<T>, D::Error> {
                T::deserialize(d).map(Tf::Known)
            }
        }
        deserializer.deserialize_newtype_struct(TF_MARKER, TfVisitor(std::marker::PhantomData))
    }
}

// ---- errors ---------------------------------------------------------------------------------

/// A value that does not fit its model (or a model that does not fit its schema), with the
/// path of the offending attribute.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelError {
    pub path: Vec<PathStep>,
    pub message: String,
}

impl ModelError {
    fn at(mut self, step: PathStep) -> Self {
        self.path.insert(0, step);
        self
    }

    pub fn attribute_path(&self) -> AttributePath {
        AttributePath(self.path.clone())
    }

    /// The diagnostic for a value the provider could not read: on the attribute's path.
    pub fn into_diagnostic(self) -> Diagnostic {
        let path = self.attribute_path();
        let detail = if path.0.is_empty() {
            format!("{}.", self.message)
        } else {
            format!("`{path}`: {}.", self.message)
        };
        let d = Diagnostic::error("Unexpected value", detail);
        if path.0.is_empty() {
            d
        } else {
            d.at(path)
        }
    }
}

impl fmt::Display for ModelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", AttributePath(self.path.clone()), self.message)
        }
    }
}

impl std::error::Error for ModelError {}

impl de::Error for ModelError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        ModelError {
            path: Vec::new(),
            message: msg.to_string(),
        }
    }
}

impl ser::Error for ModelError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        <ModelError as de::Error>::custom(msg)
    }
}

impl From<ModelError> for Diagnostic {
    fn from(e: ModelError) -> Diagnostic {
        e.into_diagnostic()
    }
}

impl From<ModelError> for crate::framework::diag::Diagnostics {
    fn from(e: ModelError) -> Self {
        e.into_diagnostic().into()
    }
}

// ---- decoding -------------------------------------------------------------------------------

/// A model from a config, plan or state value. An unknown value decodes into `Tf::Unknown`;
/// into an `Option` or plain field it is an error (use [`decode_planned`] where the resource
/// fills unknowns itself).
pub fn decode<T: DeserializeOwned>(value: &Value) -> Result<T, ModelError> {
    T::deserialize(ValueDeserializer {
        value,
        unknown_as_null: false,
    })
}

/// Like [`decode`], with every unknown read as null: for the planned value at apply time,
/// where unknowns are exactly the computed attributes the resource is about to determine.
pub fn decode_planned<T: DeserializeOwned>(value: &Value) -> Result<T, ModelError> {
    T::deserialize(ValueDeserializer {
        value,
        unknown_as_null: true,
    })
}

#[derive(Clone, Copy)]
struct ValueDeserializer<'a> {
    value: &'a Value,
    unknown_as_null: bool,
}

impl<'a> ValueDeserializer<'a> {
    fn child(&self, value: &'a Value) -> ValueDeserializer<'a> {
        ValueDeserializer {
            value,
            unknown_as_null: self.unknown_as_null,
        }
    }

    fn inner(&self) -> &'a Value {
        match self.value {
            Value::Dynamic(_, v) => v,
            v => v,
        }
    }

    fn unknown_error(&self) -> ModelError {
        de::Error::custom("the value is not known yet")
    }

    fn integer(&self) -> Result<i64, ModelError> {
        match self.inner() {
            Value::Number(n) => n.as_i64().ok_or_else(|| {
                de::Error::custom(format!(
                    "must be a whole number within ±2^63, got {}",
                    n.as_f64()
                ))
            }),
            Value::Unknown if !self.unknown_as_null => Err(self.unknown_error()),
            other => Err(de::Error::custom(format!(
                "expected a number, got {}",
                kind(other)
            ))),
        }
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Unknown => "an unknown value",
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

macro_rules! deserialize_integer {
    ($($method:ident => $visit:ident as $ty:ty),* $(,)?) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ModelError> {
            let i = self.integer()?;
            let narrowed = <$ty>::try_from(i).map_err(|_| {
                <ModelError as de::Error>::custom(format!("{i} is out of range"))
            })?;
            visitor.$visit(narrowed)
        }
    )*};
}

impl<'de> Deserializer<'de> for ValueDeserializer<'_> {
    type Error = ModelError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ModelError> {
        match self.inner() {
            Value::Null => visitor.visit_unit(),
            Value::Unknown if self.unknown_as_null => visitor.visit_unit(),
            Value::Unknown => Err(self.unknown_error()),
            Value::Bool(b) => visitor.visit_bool(*b),
            Value::Number(Number::Int(i)) => visitor.visit_i64(*i),
            Value::Number(Number::Float(f)) => visitor.visit_f64(*f),
            Value::String(s) => visitor.visit_str(s),
            Value::List(items) | Value::Set(items) | Value::Tuple(items) => {
                visitor.visit_seq(SeqAccess {
                    items: items.iter().enumerate(),
                    parent: self,
                })
            }
            Value::Map(entries) | Value::Object(entries) => visitor.visit_map(MapAccess {
                entries: entries.iter(),
                pending: None,
                parent: self,
            }),
            Value::Dynamic(..) => unreachable!("inner() unwraps dynamic values"),
        }
    }

    deserialize_integer! {
        deserialize_i8 => visit_i8 as i8,
        deserialize_i16 => visit_i16 as i16,
        deserialize_i32 => visit_i32 as i32,
        deserialize_i64 => visit_i64 as i64,
        deserialize_u8 => visit_u8 as u8,
        deserialize_u16 => visit_u16 as u16,
        deserialize_u32 => visit_u32 as u32,
        deserialize_u64 => visit_u64 as u64,
    }

    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ModelError> {
        match self.inner() {
            Value::Number(n) => visitor.visit_f64(n.as_f64()),
            _ => self.deserialize_any(visitor),
        }
    }

    fn deserialize_f32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ModelError> {
        self.deserialize_f64(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ModelError> {
        match self.inner() {
            Value::Null => visitor.visit_none(),
            Value::Unknown if self.unknown_as_null => visitor.visit_none(),
            Value::Unknown => Err(self.unknown_error()),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, ModelError> {
        if name == TF_MARKER {
            let inner = self.inner();
            return match inner {
                Value::Null => visitor.visit_none(),
                Value::Unknown if self.unknown_as_null => visitor.visit_none(),
                Value::Unknown => visitor.visit_unit(),
                // A collection or object holding unknowns is not known yet as a whole; at
                // apply time (`decode_planned`) its unknown parts read as null.
                _ if !inner.is_fully_known() && !self.unknown_as_null => visitor.visit_unit(),
                _ => visitor.visit_newtype_struct(self),
            };
        }
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, ModelError> {
        match self.inner() {
            Value::String(s) => visitor.visit_enum(s.as_str().into_deserializer()),
            other => Err(de::Error::custom(format!(
                "expected a string, got {}",
                kind(other)
            ))),
        }
    }

    serde::forward_to_deserialize_any! {
        bool char str string bytes byte_buf unit unit_struct seq tuple tuple_struct map struct
        identifier ignored_any i128 u128
    }
}

struct SeqAccess<'a, I> {
    items: I,
    parent: ValueDeserializer<'a>,
}

impl<'de, 'a, I: Iterator<Item = (usize, &'a Value)>> de::SeqAccess<'de> for SeqAccess<'a, I> {
    type Error = ModelError;
    fn next_element_seed<T: de::DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, ModelError> {
        match self.items.next() {
            None => Ok(None),
            Some((i, item)) => seed
                .deserialize(self.parent.child(item))
                .map(Some)
                .map_err(|e| e.at(PathStep::Index(i as i64))),
        }
    }
}

struct MapAccess<'a, I> {
    entries: I,
    pending: Option<(&'a String, &'a Value)>,
    parent: ValueDeserializer<'a>,
}

impl<'de, 'a, I: Iterator<Item = (&'a String, &'a Value)>> de::MapAccess<'de> for MapAccess<'a, I> {
    type Error = ModelError;
    fn next_key_seed<K: de::DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, ModelError> {
        match self.entries.next() {
            None => Ok(None),
            Some((k, v)) => {
                self.pending = Some((k, v));
                seed.deserialize(k.as_str().into_deserializer()).map(Some)
            }
        }
    }
    fn next_value_seed<V: de::DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, ModelError> {
        let (k, v) = self
            .pending
            .take()
            .ok_or_else(|| <ModelError as de::Error>::custom("value without a key"))?;
        seed.deserialize(self.parent.child(v))
            .map_err(|e| e.at(PathStep::Attribute(k.clone())))
    }
}

// ---- encoding -------------------------------------------------------------------------------

/// A value from a model: lists for sequences, objects for structs and maps. The protocol layer
/// conforms it to the schema ([`conform`]) before it reaches Terraform.
pub fn encode<T: Serialize>(model: &T) -> Result<Value, ModelError> {
    model.serialize(ValueSerializer)
}

struct ValueSerializer;

impl Serializer for ValueSerializer {
    type Ok = Value;
    type Error = ModelError;
    type SerializeSeq = SeqBuilder;
    type SerializeTuple = SeqBuilder;
    type SerializeTupleStruct = SeqBuilder;
    type SerializeTupleVariant = ser::Impossible<Value, ModelError>;
    type SerializeMap = MapBuilder;
    type SerializeStruct = MapBuilder;
    type SerializeStructVariant = ser::Impossible<Value, ModelError>;

    fn serialize_bool(self, v: bool) -> Result<Value, ModelError> {
        Ok(Value::Bool(v))
    }
    fn serialize_i8(self, v: i8) -> Result<Value, ModelError> {
        self.serialize_i64(v.into())
    }
    fn serialize_i16(self, v: i16) -> Result<Value, ModelError> {
        self.serialize_i64(v.into())
    }
    fn serialize_i32(self, v: i32) -> Result<Value, ModelError> {
        self.serialize_i64(v.into())
    }
    fn serialize_i64(self, v: i64) -> Result<Value, ModelError> {
        Ok(Value::Number(Number::Int(v)))
    }
    fn serialize_u8(self, v: u8) -> Result<Value, ModelError> {
        self.serialize_i64(v.into())
    }
    fn serialize_u16(self, v: u16) -> Result<Value, ModelError> {
        self.serialize_i64(v.into())
    }
    fn serialize_u32(self, v: u32) -> Result<Value, ModelError> {
        self.serialize_i64(v.into())
    }
    fn serialize_u64(self, v: u64) -> Result<Value, ModelError> {
        Ok(Value::Number(match i64::try_from(v) {
            Ok(i) => Number::Int(i),
            Err(_) => Number::Float(v as f64),
        }))
    }
    fn serialize_f32(self, v: f32) -> Result<Value, ModelError> {
        self.serialize_f64(v.into())
    }
    fn serialize_f64(self, v: f64) -> Result<Value, ModelError> {
        Ok(Value::Number(Number::Float(v)))
    }
    fn serialize_char(self, v: char) -> Result<Value, ModelError> {
        Ok(Value::String(v.to_string()))
    }
    fn serialize_str(self, v: &str) -> Result<Value, ModelError> {
        Ok(Value::String(v.to_owned()))
    }
    fn serialize_bytes(self, _: &[u8]) -> Result<Value, ModelError> {
        Err(ser::Error::custom("bytes have no Terraform type"))
    }
    fn serialize_none(self) -> Result<Value, ModelError> {
        Ok(Value::Null)
    }
    fn serialize_some<T: ?Sized + Serialize>(self, value: &T) -> Result<Value, ModelError> {
        value.serialize(self)
    }
    fn serialize_unit(self) -> Result<Value, ModelError> {
        Ok(Value::Null)
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<Value, ModelError> {
        Ok(Value::Null)
    }
    fn serialize_unit_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
    ) -> Result<Value, ModelError> {
        Ok(Value::String(variant.to_owned()))
    }
    fn serialize_newtype_struct<T: ?Sized + Serialize>(
        self,
        name: &'static str,
        value: &T,
    ) -> Result<Value, ModelError> {
        if name == UNKNOWN_MARKER {
            return Ok(Value::Unknown);
        }
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: ?Sized + Serialize>(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        _: &T,
    ) -> Result<Value, ModelError> {
        Err(ser::Error::custom(format!(
            "enum variant {variant} with data has no Terraform type"
        )))
    }
    fn serialize_seq(self, len: Option<usize>) -> Result<SeqBuilder, ModelError> {
        Ok(SeqBuilder(Vec::with_capacity(len.unwrap_or(0))))
    }
    fn serialize_tuple(self, len: usize) -> Result<SeqBuilder, ModelError> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_struct(self, _: &'static str, len: usize) -> Result<SeqBuilder, ModelError> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant, ModelError> {
        Err(ser::Error::custom(format!(
            "enum variant {variant} with data has no Terraform type"
        )))
    }
    fn serialize_map(self, _: Option<usize>) -> Result<MapBuilder, ModelError> {
        Ok(MapBuilder::default())
    }
    fn serialize_struct(self, _: &'static str, _: usize) -> Result<MapBuilder, ModelError> {
        Ok(MapBuilder::default())
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant, ModelError> {
        Err(ser::Error::custom(format!(
            "enum variant {variant} with data has no Terraform type"
        )))
    }
}

struct SeqBuilder(Vec<Value>);

impl ser::SerializeSeq for SeqBuilder {
    type Ok = Value;
    type Error = ModelError;
    fn serialize_element<T: ?Sized + Serialize>(&mut self, value: &T) -> Result<(), ModelError> {
        let i = self.0.len() as i64;
        self.0.push(
            value
                .serialize(ValueSerializer)
                .map_err(|e| e.at(PathStep::Index(i)))?,
        );
        Ok(())
    }
    fn end(self) -> Result<Value, ModelError> {
        Ok(Value::List(self.0))
    }
}

impl ser::SerializeTuple for SeqBuilder {
    type Ok = Value;
    type Error = ModelError;
    fn serialize_element<T: ?Sized + Serialize>(&mut self, value: &T) -> Result<(), ModelError> {
        ser::SerializeSeq::serialize_element(self, value)
    }
    fn end(self) -> Result<Value, ModelError> {
        ser::SerializeSeq::end(self)
    }
}

impl ser::SerializeTupleStruct for SeqBuilder {
    type Ok = Value;
    type Error = ModelError;
    fn serialize_field<T: ?Sized + Serialize>(&mut self, value: &T) -> Result<(), ModelError> {
        ser::SerializeSeq::serialize_element(self, value)
    }
    fn end(self) -> Result<Value, ModelError> {
        ser::SerializeSeq::end(self)
    }
}

#[derive(Default)]
struct MapBuilder {
    entries: BTreeMap<String, Value>,
    key: Option<String>,
}

impl ser::SerializeMap for MapBuilder {
    type Ok = Value;
    type Error = ModelError;
    fn serialize_key<T: ?Sized + Serialize>(&mut self, key: &T) -> Result<(), ModelError> {
        match key.serialize(ValueSerializer)? {
            Value::String(s) => {
                self.key = Some(s);
                Ok(())
            }
            _ => Err(ser::Error::custom("map keys must be strings")),
        }
    }
    fn serialize_value<T: ?Sized + Serialize>(&mut self, value: &T) -> Result<(), ModelError> {
        let key = self
            .key
            .take()
            .ok_or_else(|| <ModelError as ser::Error>::custom("map value without a key"))?;
        let v = value
            .serialize(ValueSerializer)
            .map_err(|e| e.at(PathStep::Key(key.clone())))?;
        self.entries.insert(key, v);
        Ok(())
    }
    fn end(self) -> Result<Value, ModelError> {
        Ok(Value::Map(self.entries))
    }
}

impl ser::SerializeStruct for MapBuilder {
    type Ok = Value;
    type Error = ModelError;
    fn serialize_field<T: ?Sized + Serialize>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), ModelError> {
        let v = value
            .serialize(ValueSerializer)
            .map_err(|e| e.at(PathStep::Attribute(key.to_owned())))?;
        self.entries.insert(key.to_owned(), v);
        Ok(())
    }
    fn end(self) -> Result<Value, ModelError> {
        Ok(Value::Object(self.entries))
    }
}

/// Shapes a loosely built value (from [`encode`] or by hand) into `ty`: sequences become the
/// list or set the type says, objects and maps swap as the type says, attributes the value
/// lacks become null. An attribute the type does not have, or a value of the wrong kind, is an
/// error: the model and the schema disagree.
pub fn conform(value: Value, ty: &Type) -> Result<Value, ModelError> {
    let mismatch = |v: &Value| {
        Err(<ModelError as de::Error>::custom(format!(
            "expected {}, got {}",
            describe(ty),
            kind(v)
        )))
    };
    match (value, ty) {
        (v @ (Value::Null | Value::Unknown), _) => Ok(v),
        (v, Type::Dynamic) => Ok(v),
        (v @ Value::String(_), Type::String) => Ok(v),
        (v @ Value::Number(_), Type::Number) => Ok(v),
        (v @ Value::Bool(_), Type::Bool) => Ok(v),
        (Value::List(items) | Value::Set(items) | Value::Tuple(items), Type::List(t)) => {
            conform_items(items, t).map(Value::List)
        }
        (Value::List(items) | Value::Set(items) | Value::Tuple(items), Type::Set(t)) => {
            let mut out: Vec<Value> = Vec::with_capacity(items.len());
            for v in conform_items(items, t)? {
                // Sets hold each known element once. Elements holding unknowns are never
                // merged: cty keeps `[a.id, b.id]` as two unknown elements until both are
                // known, and a plan with one would not match the configuration.
                if !v.is_fully_known() || !out.contains(&v) {
                    out.push(v);
                }
            }
            Ok(Value::Set(out))
        }
        (Value::Map(entries) | Value::Object(entries), Type::Map(t)) => {
            let mut out = BTreeMap::new();
            for (k, v) in entries {
                let v = conform(v, t).map_err(|e| e.at(PathStep::Key(k.clone())))?;
                out.insert(k, v);
            }
            Ok(Value::Map(out))
        }
        (Value::Map(mut entries) | Value::Object(mut entries), Type::Object(attrs)) => {
            if let Some(extra) = entries.keys().find(|k| !attrs.contains_key(*k)) {
                return Err(<ModelError as de::Error>::custom(format!(
                    "`{extra}` is not an attribute of this object"
                )));
            }
            let mut out = BTreeMap::new();
            for (name, t) in attrs {
                let v = entries.remove(name).unwrap_or(Value::Null);
                let v = conform(v, t).map_err(|e| e.at(PathStep::Attribute(name.clone())))?;
                out.insert(name.clone(), v);
            }
            Ok(Value::Object(out))
        }
        (v, _) => mismatch(&v),
    }
}

fn conform_items(items: Vec<Value>, t: &Type) -> Result<Vec<Value>, ModelError> {
    items
        .into_iter()
        .enumerate()
        .map(|(i, v)| conform(v, t).map_err(|e| e.at(PathStep::Index(i as i64))))
        .collect()
}

fn describe(ty: &Type) -> &'static str {
    match ty {
        Type::String => "a string",
        Type::Number => "a number",
        Type::Bool => "a bool",
        Type::List(_) => "a list",
        Type::Set(_) => "a set",
        Type::Map(_) => "a map",
        Type::Object(_) => "an object",
        Type::Tuple(_) => "a tuple",
        Type::Dynamic => "any value",
    }
}

// ---- field names ----------------------------------------------------------------------------

/// The field names of a model struct, sorted: what its `Deserialize` asks for. Resources
/// compare them with `Schema::field_names` in a unit test.
pub fn field_names<T: DeserializeOwned>() -> Vec<String> {
    struct Fields;
    #[derive(Debug)]
    struct Found(Vec<String>);
    impl fmt::Display for Found {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "fields {:?}", self.0)
        }
    }
    impl std::error::Error for Found {}
    impl de::Error for Found {
        fn custom<M: fmt::Display>(msg: M) -> Self {
            Found(vec![format!("!{msg}")])
        }
    }
    impl<'de> Deserializer<'de> for Fields {
        type Error = Found;
        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Found> {
            Err(Found(Vec::new()))
        }
        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _: &'static str,
            fields: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, Found> {
            Err(Found(fields.iter().map(|f| (*f).to_owned()).collect()))
        }
        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes
            byte_buf option unit unit_struct newtype_struct seq tuple tuple_struct map enum
            identifier ignored_any
        }
    }
    let mut names = match T::deserialize(Fields) {
        Err(Found(names)) => names,
        Ok(_) => Vec::new(),
    };
    names.sort();
    names
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use serde::{Deserialize, Serialize};

    use super::*;

    #[derive(Debug, Deserialize, Serialize, PartialEq)]
    #[serde(rename_all = "lowercase")]
    enum Method {
        Pim,
        Direct,
    }

    #[derive(Debug, Deserialize, Serialize, PartialEq, Default)]
    struct Timeouts {
        create: Option<String>,
    }

    #[derive(Debug, Deserialize, Serialize, PartialEq)]
    struct Model {
        id: Tf<String>,
        name: String,
        count: Option<i64>,
        enabled: Tf<bool>,
        method: Tf<Method>,
        ids: Tf<BTreeSet<String>>,
        tags: Option<BTreeMap<String, String>>,
        timeouts: Option<Timeouts>,
    }

    fn schema_type() -> Type {
        Type::Object(
            [
                ("id", Type::String),
                ("name", Type::String),
                ("count", Type::Number),
                ("enabled", Type::Bool),
                ("method", Type::String),
                ("ids", Type::set(Type::String)),
                ("tags", Type::map(Type::String)),
                (
                    "timeouts",
                    Type::Object([("create".to_owned(), Type::String)].into()),
                ),
            ]
            .into_iter()
            .map(|(k, t)| (k.to_owned(), t))
            .collect(),
        )
    }

    fn value() -> Value {
        Value::object([
            ("id", Value::Unknown),
            ("name", "bg".into()),
            ("count", Value::Number(Number::Float(3.0))),
            ("enabled", Value::Null),
            ("method", "pim".into()),
            ("ids", Value::Set(vec!["b".into(), "a".into()])),
            (
                "tags",
                Value::Map([("k".to_owned(), Value::from("v"))].into()),
            ),
            ("timeouts", Value::Null),
        ])
    }

    #[test]
    fn decodes_null_unknown_and_known() {
        let m: Model = decode(&value()).unwrap();
        assert_eq!(m.id, Tf::Unknown);
        assert_eq!(m.name, "bg");
        assert_eq!(m.count, Some(3));
        assert_eq!(m.enabled, Tf::Null);
        assert_eq!(m.method, Tf::Known(Method::Pim));
        assert_eq!(m.ids.get().unwrap().len(), 2);
        assert_eq!(m.timeouts, None);
    }

    #[test]
    fn round_trips_through_the_schema_type() {
        let m: Model = decode(&value()).unwrap();
        let encoded = conform(encode(&m).unwrap(), &schema_type()).unwrap();
        let mut expected = value();
        expected.set("count", Value::Number(Number::Int(3)));
        expected.set("ids", Value::Set(vec!["a".into(), "b".into()]));
        assert_eq!(encoded, expected);
    }

    #[test]
    fn errors_name_the_attribute_and_never_panic() {
        let mut v = value();
        v.set("count", Value::Number(Number::Float(1e300)));
        let e = decode::<Model>(&v).unwrap_err();
        assert_eq!(e.attribute_path().to_string(), "count");
        let mut v = value();
        v.set("count", Value::Number(Number::Float(2.5)));
        assert!(decode::<Model>(&v).is_err());
        let mut v = value();
        v.set("method", "eligible".into());
        assert_eq!(
            decode::<Model>(&v)
                .unwrap_err()
                .attribute_path()
                .to_string(),
            "method"
        );
        let mut v = value();
        v.set("count", Value::Unknown);
        assert!(decode::<Model>(&v).is_err());
        assert_eq!(decode_planned::<Model>(&v).unwrap().count, None);
        assert!(decode::<Model>(&Value::String("x".into())).is_err());
    }

    #[test]
    fn a_collection_with_unknown_elements_is_unknown_as_a_whole() {
        let mut v = value();
        v.set("ids", Value::Set(vec!["a".into(), Value::Unknown]));
        assert_eq!(decode::<Model>(&v).unwrap().ids, Tf::Unknown);
        v.set("ids", Value::Unknown);
        assert_eq!(decode_planned::<Model>(&v).unwrap().ids, Tf::Null);
    }

    #[test]
    fn conform_keeps_every_unknown_set_element() {
        // `user_ids = [a.object_id, b.object_id]` before apply: two unknowns, not one.
        let two = Value::Set(vec![Value::Unknown, Value::Unknown, "a".into(), "a".into()]);
        assert_eq!(
            conform(two, &Type::set(Type::String)).unwrap(),
            Value::Set(vec![Value::Unknown, Value::Unknown, "a".into()])
        );
        let partly = Value::List(vec![
            Value::List(vec![Value::Unknown]),
            Value::List(vec![Value::Unknown]),
        ]);
        assert_eq!(
            conform(partly, &Type::set(Type::list(Type::String)))
                .unwrap()
                .elements()
                .len(),
            2
        );
    }

    #[test]
    fn conform_refuses_attributes_the_schema_lacks() {
        let v = Value::object([("bogus", Value::from("x"))]);
        let e = conform(v, &schema_type()).unwrap_err();
        assert!(e.message.contains("bogus"), "{e}");
    }

    #[test]
    fn field_names_come_from_the_struct() {
        assert_eq!(
            field_names::<Model>(),
            ["count", "enabled", "id", "ids", "method", "name", "tags", "timeouts"]
        );
    }
}
