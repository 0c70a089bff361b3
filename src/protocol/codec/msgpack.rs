//! cty's msgpack encoding of values, read and written directly over byte slices: strings are
//! borrowed from the input until they become owned `Value`s, and nothing is buffered twice.
//! Format reference: the msgpack spec (markers below) and go-cty's `cty/msgpack` package.

use std::collections::btree_map::Entry;
use std::collections::BTreeMap;

use super::{
    parse_number, parse_type_json, type_json, type_label, value_label, CodecError, Problem,
    MAX_DEPTH,
};
use crate::framework::{Number, Type, Value};

/// What cty writes for a wholly unknown value: fixext1, extension type 0, one zero byte (a
/// one-byte payload is shorter on the wire than an empty one).
pub(super) const UNKNOWN: [u8; 3] = [0xd4, 0x00, 0x00];

/// Extension type of an unknown value that carries refinements (Terraform ≥ 1.6).
const REFINED_UNKNOWN_EXT: i8 = 12;

/// cty rejects refinement payloads over 1 KiB as an attempt to make it allocate; so do we.
const MAX_REFINEMENTS_LEN: usize = 1024;

pub(super) fn decode(bytes: &[u8], ty: &Type) -> Result<Value, CodecError> {
    let mut reader = Reader { buf: bytes, pos: 0 };
    let value = reader.value(ty, 0)?;
    match reader.remaining() {
        0 => Ok(value),
        extra => Err(Problem::TrailingBytes(extra).into()),
    }
}

pub(super) fn encode(value: &Value, ty: &Type) -> Result<Vec<u8>, CodecError> {
    let mut writer = Writer {
        out: Vec::with_capacity(256),
    };
    writer.value(value, ty)?;
    Ok(writer.out)
}

/// One msgpack item, with scalar payloads already read and container lengths not yet walked.
#[derive(Debug, Clone, Copy)]
enum Item<'a> {
    Nil,
    Bool(bool),
    Int(i64),
    /// A uint64 above `i64::MAX`.
    BigUint(u64),
    Float(f64),
    Str(&'a [u8]),
    Bin(&'a [u8]),
    Array(usize),
    Map(usize),
    Ext(i8, &'a [u8]),
}

impl Item<'_> {
    fn label(&self) -> &'static str {
        match self {
            Item::Nil => "msgpack nil",
            Item::Bool(_) => "a msgpack bool",
            Item::Int(_) | Item::BigUint(_) => "a msgpack integer",
            Item::Float(_) => "a msgpack float",
            Item::Str(_) => "a msgpack string",
            Item::Bin(_) => "msgpack binary",
            Item::Array(_) => "a msgpack array",
            Item::Map(_) => "a msgpack map",
            Item::Ext(..) => "a msgpack extension",
        }
    }
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], CodecError> {
        if n > self.remaining() {
            return Err(Problem::Truncated.into());
        }
        let bytes = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(bytes)
    }

    fn fixed<const N: usize>(&mut self) -> Result<[u8; N], CodecError> {
        let mut out = [0; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    fn u8(&mut self) -> Result<u8, CodecError> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, CodecError> {
        self.fixed().map(u16::from_be_bytes)
    }
    fn u32(&mut self) -> Result<u32, CodecError> {
        self.fixed().map(u32::from_be_bytes)
    }
    fn u64(&mut self) -> Result<u64, CodecError> {
        self.fixed().map(u64::from_be_bytes)
    }

    fn ext(&mut self, len: usize) -> Result<Item<'a>, CodecError> {
        let code = self.u8()? as i8;
        Ok(Item::Ext(code, self.take(len)?))
    }

    fn item(&mut self) -> Result<Item<'a>, CodecError> {
        let marker = self.u8()?;
        let item = match marker {
            0x00..=0x7f => Item::Int(i64::from(marker)),
            0x80..=0x8f => Item::Map(usize::from(marker & 0x0f)),
            0x90..=0x9f => Item::Array(usize::from(marker & 0x0f)),
            0xa0..=0xbf => Item::Str(self.take(usize::from(marker & 0x1f))?),
            0xc0 => Item::Nil,
            0xc2 => Item::Bool(false),
            0xc3 => Item::Bool(true),
            0xc4 => {
                let n = self.u8()?;
                Item::Bin(self.take(usize::from(n))?)
            }
            0xc5 => {
                let n = self.u16()?;
                Item::Bin(self.take(usize::from(n))?)
            }
            0xc6 => {
                let n = self.u32()?;
                Item::Bin(self.take(n as usize)?)
            }
            0xc7 => {
                let n = self.u8()?;
                self.ext(usize::from(n))?
            }
            0xc8 => {
                let n = self.u16()?;
                self.ext(usize::from(n))?
            }
            0xc9 => {
                let n = self.u32()?;
                self.ext(n as usize)?
            }
            0xca => Item::Float(f64::from(f32::from_bits(self.u32()?))),
            0xcb => Item::Float(f64::from_bits(self.u64()?)),
            0xcc => Item::Int(i64::from(self.u8()?)),
            0xcd => Item::Int(i64::from(self.u16()?)),
            0xce => Item::Int(i64::from(self.u32()?)),
            0xcf => {
                let n = self.u64()?;
                i64::try_from(n).map_or(Item::BigUint(n), Item::Int)
            }
            0xd0 => Item::Int(i64::from(self.u8()? as i8)),
            0xd1 => Item::Int(i64::from(self.u16()? as i16)),
            0xd2 => Item::Int(i64::from(self.u32()? as i32)),
            0xd3 => Item::Int(self.u64()? as i64),
            // fixext 1, 2, 4, 8, 16
            0xd4..=0xd8 => self.ext(1 << (marker - 0xd4))?,
            0xd9 => {
                let n = self.u8()?;
                Item::Str(self.take(usize::from(n))?)
            }
            0xda => {
                let n = self.u16()?;
                Item::Str(self.take(usize::from(n))?)
            }
            0xdb => {
                let n = self.u32()?;
                Item::Str(self.take(n as usize)?)
            }
            0xdc => Item::Array(usize::from(self.u16()?)),
            0xdd => Item::Array(self.u32()? as usize),
            0xde => Item::Map(usize::from(self.u16()?)),
            0xdf => Item::Map(self.u32()? as usize),
            0xe0..=0xff => Item::Int(i64::from(marker as i8)),
            0xc1 => return Err(Problem::InvalidMarker(marker).into()),
        };
        Ok(item)
    }

    /// A map key or attribute name. cty's decoder accepts str and bin alike.
    fn key(&mut self) -> Result<&'a str, CodecError> {
        match self.item()? {
            Item::Str(bytes) | Item::Bin(bytes) => utf8(bytes),
            _ => Err(Problem::NonStringKey.into()),
        }
    }

    fn value(&mut self, ty: &Type, depth: usize) -> Result<Value, CodecError> {
        if depth > MAX_DEPTH {
            return Err(Problem::TooDeep.into());
        }
        let item = self.item()?;
        match (item, ty) {
            // cty checks for extensions before anything else: an unknown may stand in for a
            // value of any type, dynamic included.
            (Item::Ext(code, payload), _) => unknown(code, payload),
            (Item::Nil, _) => Ok(Value::Null),
            (Item::Array(len), Type::Dynamic) => self.dynamic(len, depth),
            (Item::Bool(b), Type::Bool) => Ok(Value::Bool(b)),
            (Item::Int(i), Type::Number) => Ok(Value::Number(Number::Int(i))),
            (Item::BigUint(u), Type::Number) => Ok(Value::Number(Number::Float(u as f64))),
            // cty numbers are math/big floats, which cannot hold NaN, so Terraform never sends
            // one; a value unequal to itself would make every plan a change.
            (Item::Float(f), Type::Number) if f.is_nan() => Err(Problem::NotANumber.into()),
            (Item::Float(f), Type::Number) => Ok(Value::Number(Number::Float(f))),
            (Item::Str(bytes) | Item::Bin(bytes), Type::Number) => {
                Ok(Value::Number(parse_number(utf8(bytes)?)?))
            }
            (Item::Str(bytes) | Item::Bin(bytes), Type::String) => {
                Ok(Value::String(utf8(bytes)?.to_owned()))
            }
            (Item::Array(len), Type::List(elem)) => {
                Ok(Value::List(self.elements(len, elem, depth)?))
            }
            (Item::Array(len), Type::Set(elem)) => Ok(Value::Set(self.elements(len, elem, depth)?)),
            (Item::Array(len), Type::Tuple(elems)) => {
                if len != elems.len() {
                    return Err(Problem::TupleLength {
                        expected: elems.len(),
                        found: len,
                    }
                    .into());
                }
                let mut out = Vec::with_capacity(len);
                for (i, elem) in elems.iter().enumerate() {
                    out.push(self.value(elem, depth + 1).map_err(|e| e.within_index(i))?);
                }
                Ok(Value::Tuple(out))
            }
            (Item::Map(len), Type::Map(elem)) => self.map(len, elem, depth),
            (Item::Map(len), Type::Object(attrs)) => self.object(len, attrs, depth),
            (item, ty) => Err(Problem::WrongKind {
                expected: match ty {
                    Type::Dynamic => "a dynamic [type, value] pair",
                    other => type_label(other),
                },
                found: item.label(),
            }
            .into()),
        }
    }

    /// Reserves capacity for a declared length only as far as the input could possibly
    /// hold it (each element takes at least one byte), so a lying header cannot force a huge
    /// allocation.
    fn capacity_for(&self, declared: usize) -> usize {
        declared.min(self.remaining())
    }

    fn elements(
        &mut self,
        len: usize,
        elem: &Type,
        depth: usize,
    ) -> Result<Vec<Value>, CodecError> {
        let mut out = Vec::with_capacity(self.capacity_for(len));
        for i in 0..len {
            out.push(self.value(elem, depth + 1).map_err(|e| e.within_index(i))?);
        }
        Ok(out)
    }

    fn map(&mut self, len: usize, elem: &Type, depth: usize) -> Result<Value, CodecError> {
        let mut out = BTreeMap::new();
        for _ in 0..len {
            let key = self.key()?;
            match out.entry(key.to_owned()) {
                Entry::Occupied(_) => {
                    return Err(CodecError::new(Problem::DuplicateKey).within_key(key))
                }
                Entry::Vacant(slot) => {
                    slot.insert(self.value(elem, depth + 1).map_err(|e| e.within_key(key))?);
                }
            }
        }
        Ok(Value::Map(out))
    }

    fn object(
        &mut self,
        len: usize,
        attrs: &BTreeMap<String, Type>,
        depth: usize,
    ) -> Result<Value, CodecError> {
        let mut out = BTreeMap::new();
        for _ in 0..len {
            let name = self.key()?;
            let Some((attr, attr_ty)) = attrs.get_key_value(name) else {
                return Err(CodecError::new(Problem::UnsupportedAttribute).within_attribute(name));
            };
            match out.entry(attr.clone()) {
                Entry::Occupied(_) => {
                    return Err(CodecError::new(Problem::DuplicateKey).within_attribute(name))
                }
                Entry::Vacant(slot) => {
                    slot.insert(
                        self.value(attr_ty, depth + 1)
                            .map_err(|e| e.within_attribute(name))?,
                    );
                }
            }
        }
        if out.len() < attrs.len() {
            for name in attrs.keys() {
                out.entry(name.clone()).or_insert(Value::Null);
            }
        }
        Ok(Value::Object(out))
    }

    /// `[type JSON, value]`; the value is then read with the type it announces.
    fn dynamic(&mut self, len: usize, depth: usize) -> Result<Value, CodecError> {
        if len != 2 {
            return Err(Problem::MalformedDynamic.into());
        }
        let ty = match self.item()? {
            Item::Str(bytes) | Item::Bin(bytes) => parse_type_json(bytes)?,
            _ => return Err(Problem::MalformedDynamic.into()),
        };
        let value = self.value(&ty, depth + 1)?;
        Ok(Value::Dynamic(ty, Box::new(value)))
    }

    /// Walks over one item without building it (used to validate refinement payloads).
    fn skip(&mut self, depth: usize) -> Result<(), CodecError> {
        if depth > MAX_DEPTH {
            return Err(Problem::TooDeep.into());
        }
        let children = match self.item()? {
            Item::Array(len) => len,
            Item::Map(len) => len.saturating_mul(2),
            _ => 0,
        };
        for _ in 0..children {
            self.skip(depth + 1)?;
        }
        Ok(())
    }
}

/// An extension value is always an unknown (cty defines no other extension). Per cty: a payload
/// of at most one byte is a plain unknown whatever its type code; a longer payload must be a
/// refinement map under type code 12.
fn unknown(code: i8, payload: &[u8]) -> Result<Value, CodecError> {
    if payload.len() <= 1 {
        return Ok(Value::Unknown);
    }
    if code != REFINED_UNKNOWN_EXT {
        return Err(Problem::UnsupportedExtension {
            code,
            len: payload.len(),
        }
        .into());
    }
    if payload.len() > MAX_REFINEMENTS_LEN {
        return Err(Problem::MalformedRefinements.into());
    }
    let mut refinements = Reader {
        buf: payload,
        pos: 0,
    };
    // The refinements themselves are dropped, but the payload must still be a well-formed
    // map; trailing bytes after it are reserved by cty for future use and ignored.
    match refinements.item() {
        Ok(Item::Map(_)) => {
            refinements.pos = 0;
            refinements
                .skip(0)
                .map_err(|_| CodecError::new(Problem::MalformedRefinements))?;
            Ok(Value::Unknown)
        }
        _ => Err(Problem::MalformedRefinements.into()),
    }
}

fn utf8(bytes: &[u8]) -> Result<&str, CodecError> {
    std::str::from_utf8(bytes).map_err(|_| Problem::InvalidUtf8.into())
}

struct Writer {
    out: Vec<u8>,
}

/// The length-header markers of one msgpack family: an optional fix form (base marker, largest
/// length it holds) and the 8-bit (not all families have one), 16-bit and 32-bit forms.
#[derive(Clone, Copy)]
struct HeaderForms {
    fix: Option<(u8, usize)>,
    m8: Option<u8>,
    m16: u8,
    m32: u8,
}

const STR: HeaderForms = HeaderForms {
    fix: Some((0xa0, 31)),
    m8: Some(0xd9),
    m16: 0xda,
    m32: 0xdb,
};
const BIN: HeaderForms = HeaderForms {
    fix: None,
    m8: Some(0xc4),
    m16: 0xc5,
    m32: 0xc6,
};
const ARRAY: HeaderForms = HeaderForms {
    fix: Some((0x90, 15)),
    m8: None,
    m16: 0xdc,
    m32: 0xdd,
};
const MAP: HeaderForms = HeaderForms {
    fix: Some((0x80, 15)),
    m8: None,
    m16: 0xde,
    m32: 0xdf,
};

impl Writer {
    fn value(&mut self, value: &Value, ty: &Type) -> Result<(), CodecError> {
        match (value, ty) {
            (Value::Null, _) => self.out.push(0xc0),
            (Value::Unknown, _) => self.out.extend_from_slice(&UNKNOWN),
            (Value::Dynamic(carried, inner), Type::Dynamic) => {
                self.array_len(2)?;
                self.bin(type_json(carried).as_bytes())?;
                self.value(inner, carried)?;
            }
            (other, Type::Dynamic) => {
                return Err(Problem::UntypedDynamic {
                    found: value_label(other),
                }
                .into())
            }
            (Value::Bool(b), Type::Bool) => self.out.push(if *b { 0xc3 } else { 0xc2 }),
            (Value::Number(n), Type::Number) => self.number(*n)?,
            (Value::String(s), Type::String) => self.str(s)?,
            // Lists and sets share the array form, so either value kind is accepted for
            // either type.
            (Value::List(items) | Value::Set(items), Type::List(elem) | Type::Set(elem)) => {
                self.array_len(items.len())?;
                for (i, item) in items.iter().enumerate() {
                    self.value(item, elem).map_err(|e| e.within_index(i))?;
                }
            }
            (Value::Tuple(items), Type::Tuple(elems)) => {
                if items.len() != elems.len() {
                    return Err(Problem::TupleLength {
                        expected: elems.len(),
                        found: items.len(),
                    }
                    .into());
                }
                self.array_len(items.len())?;
                for (i, (item, elem)) in items.iter().zip(elems).enumerate() {
                    self.value(item, elem).map_err(|e| e.within_index(i))?;
                }
            }
            (Value::Map(entries), Type::Map(elem)) => {
                self.map_len(entries.len())?;
                for (key, item) in entries {
                    self.str(key)?;
                    self.value(item, elem).map_err(|e| e.within_key(key))?;
                }
            }
            (Value::Object(present), Type::Object(attrs)) => self.object(present, attrs)?,
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

    /// Every attribute of the type, in the type's sorted order (as cty writes them); an
    /// attribute the value lacks is written as null.
    fn object(
        &mut self,
        present: &BTreeMap<String, Value>,
        attrs: &BTreeMap<String, Type>,
    ) -> Result<(), CodecError> {
        if let Some(extra) = present.keys().find(|name| !attrs.contains_key(*name)) {
            return Err(CodecError::new(Problem::UnsupportedAttribute).within_attribute(extra));
        }
        self.map_len(attrs.len())?;
        for (name, attr_ty) in attrs {
            self.str(name)?;
            match present.get(name) {
                Some(item) => self
                    .value(item, attr_ty)
                    .map_err(|e| e.within_attribute(name))?,
                None => self.out.push(0xc0),
            }
        }
        Ok(())
    }

    /// Integers take the smallest msgpack form (as cty's encoder does). Floats are always
    /// float64, even when integral: Terraform compares numbers by value, and keeping the form
    /// makes our own decode return exactly the `Number` that was encoded.
    fn number(&mut self, n: Number) -> Result<(), CodecError> {
        match n {
            Number::Int(i) => self.int(i),
            Number::Float(f) if f.is_nan() => return Err(Problem::NotANumber.into()),
            Number::Float(f) => {
                self.out.push(0xcb);
                self.out.extend_from_slice(&f.to_bits().to_be_bytes());
            }
        }
        Ok(())
    }

    fn int(&mut self, i: i64) {
        let out = &mut self.out;
        match i {
            // positive and negative fixint
            -32..=0x7f => out.push(i as u8),
            0x80..=0xff => out.extend_from_slice(&[0xcc, i as u8]),
            0x100..=0xffff => {
                out.push(0xcd);
                out.extend_from_slice(&(i as u16).to_be_bytes());
            }
            0x1_0000..=0xffff_ffff => {
                out.push(0xce);
                out.extend_from_slice(&(i as u32).to_be_bytes());
            }
            0x1_0000_0000.. => {
                out.push(0xcf);
                out.extend_from_slice(&(i as u64).to_be_bytes());
            }
            -0x80..=-33 => out.extend_from_slice(&[0xd0, i as u8]),
            -0x8000..=-0x81 => {
                out.push(0xd1);
                out.extend_from_slice(&(i as i16).to_be_bytes());
            }
            -0x8000_0000..=-0x8001 => {
                out.push(0xd2);
                out.extend_from_slice(&(i as i32).to_be_bytes());
            }
            _ => {
                out.push(0xd3);
                out.extend_from_slice(&i.to_be_bytes());
            }
        }
    }

    /// Writes a length header: the fix form when it fits, else the shortest of the 8-, 16- and
    /// 32-bit forms the format has.
    fn header(&mut self, len: usize, form: HeaderForms) -> Result<(), CodecError> {
        match form {
            HeaderForms {
                fix: Some((base, max)),
                ..
            } if len <= max => self.out.push(base | len as u8),
            HeaderForms { m8: Some(m8), .. } if len <= 0xff => {
                self.out.extend_from_slice(&[m8, len as u8])
            }
            HeaderForms { m16, .. } if len <= 0xffff => {
                self.out.push(m16);
                self.out.extend_from_slice(&(len as u16).to_be_bytes());
            }
            HeaderForms { m32, .. } => {
                let len = u32::try_from(len).map_err(|_| CodecError::new(Problem::TooLarge))?;
                self.out.push(m32);
                self.out.extend_from_slice(&len.to_be_bytes());
            }
        }
        Ok(())
    }

    fn str(&mut self, s: &str) -> Result<(), CodecError> {
        self.header(s.len(), STR)?;
        self.out.extend_from_slice(s.as_bytes());
        Ok(())
    }

    fn bin(&mut self, bytes: &[u8]) -> Result<(), CodecError> {
        self.header(bytes.len(), BIN)?;
        self.out.extend_from_slice(bytes);
        Ok(())
    }

    fn array_len(&mut self, len: usize) -> Result<(), CodecError> {
        self.header(len, ARRAY)
    }

    fn map_len(&mut self, len: usize) -> Result<(), CodecError> {
        self.header(len, MAP)
    }
}

#[cfg(test)]
mod tests {
    //! Byte vectors written from the msgpack spec and go-cty's encoder behaviour.

    use std::collections::BTreeMap;

    use super::*;
    use crate::framework::AttributePath;
    use crate::protocol::codec::{decode_msgpack, encode_msgpack};

    fn object_type(attrs: &[(&str, Type)]) -> Type {
        Type::Object(
            attrs
                .iter()
                .map(|(k, t)| (k.to_string(), t.clone()))
                .collect(),
        )
    }

    fn decode_err(bytes: &[u8], ty: &Type) -> CodecError {
        decode_msgpack(bytes, ty).expect_err("decoding should fail")
    }

    #[test]
    fn unknown_is_cty_fixext1_type_zero() {
        for ty in [
            Type::String,
            Type::Number,
            Type::list(Type::Bool),
            object_type(&[("a", Type::String)]),
            Type::Dynamic,
        ] {
            assert_eq!(
                encode_msgpack(&Value::Unknown, &ty).unwrap(),
                [0xd4, 0x00, 0x00]
            );
            assert_eq!(
                decode_msgpack(&[0xd4, 0x00, 0x00], &ty).unwrap(),
                Value::Unknown
            );
        }
    }

    #[test]
    fn short_extensions_of_any_type_code_are_plain_unknowns() {
        // ext8 with an empty payload, and fixext1 with another code: cty reads both as unknown.
        assert_eq!(
            decode_msgpack(&[0xc7, 0x00, 0x00], &Type::String).unwrap(),
            Value::Unknown
        );
        assert_eq!(
            decode_msgpack(&[0xd4, 0x05, 0x00], &Type::String).unwrap(),
            Value::Unknown
        );
    }

    #[test]
    fn refined_unknowns_decode_as_unknown() {
        // {1: false} — "definitely not null".
        let not_null = [0xc7, 0x03, 0x0c, 0x81, 0x01, 0xc2];
        assert_eq!(
            decode_msgpack(&not_null, &Type::String).unwrap(),
            Value::Unknown
        );
        // {1: false, 2: "ab"} — not null, string prefix "ab".
        let prefix = [0xc7, 0x07, 0x0c, 0x82, 0x01, 0xc2, 0x02, 0xa2, b'a', b'b'];
        assert_eq!(
            decode_msgpack(&prefix, &Type::String).unwrap(),
            Value::Unknown
        );
        // fixext4 holding {1: false} and one byte of padding, which cty reserves and ignores.
        let padded = [0xd6, 0x0c, 0x81, 0x01, 0xc2, 0x00];
        assert_eq!(
            decode_msgpack(&padded, &Type::Number).unwrap(),
            Value::Unknown
        );
        // {3: [0, true]} — number lower bound, inclusive.
        let lower = [0xc7, 0x05, 0x0c, 0x81, 0x03, 0x92, 0x00, 0xc3];
        assert_eq!(
            decode_msgpack(&lower, &Type::Number).unwrap(),
            Value::Unknown
        );
        // Inside a list, next to a known element.
        let list = [0x92, 0xc7, 0x03, 0x0c, 0x81, 0x01, 0xc2, 0xa1, b'x'];
        assert_eq!(
            decode_msgpack(&list, &Type::list(Type::String)).unwrap(),
            Value::List(vec![Value::Unknown, "x".into()])
        );
    }

    #[test]
    fn malformed_refinements_are_errors() {
        // Payload is a string, not a map.
        let not_a_map = [0xc7, 0x03, 0x0c, 0xa2, b'a', b'b'];
        assert_eq!(
            decode_err(&not_a_map, &Type::String).problem,
            Problem::MalformedRefinements
        );
        // Map announces two entries but holds one.
        let short_map = [0xc7, 0x03, 0x0c, 0x82, 0x01, 0xc2];
        assert_eq!(
            decode_err(&short_map, &Type::String).problem,
            Problem::MalformedRefinements
        );
        // A multi-byte payload under a type code other than 12 is not ours.
        let foreign = [0xd5, 0x05, 0x81, 0x01];
        assert_eq!(
            decode_err(&foreign, &Type::String).problem,
            Problem::UnsupportedExtension { code: 5, len: 2 }
        );
    }

    #[test]
    fn null_is_nil_at_every_type() {
        for ty in [
            Type::String,
            Type::Number,
            Type::Bool,
            Type::set(Type::String),
            Type::map(Type::Number),
            Type::Tuple(vec![Type::String]),
            object_type(&[("a", Type::String)]),
            Type::Dynamic,
        ] {
            assert_eq!(decode_msgpack(&[0xc0], &ty).unwrap(), Value::Null);
            assert_eq!(encode_msgpack(&Value::Null, &ty).unwrap(), [0xc0]);
        }
    }

    #[test]
    fn numbers_arrive_in_every_msgpack_form() {
        let cases: &[(&[u8], Number)] = &[
            (&[0x05], Number::Int(5)),
            (&[0xff], Number::Int(-1)),
            (&[0xcc, 0xc8], Number::Int(200)),
            (&[0xcd, 0x01, 0x00], Number::Int(256)),
            (&[0xd0, 0x80], Number::Int(-128)),
            (&[0xd1, 0xff, 0x38], Number::Int(-200)),
            (&[0xd3, 0x80, 0, 0, 0, 0, 0, 0, 0], Number::Int(i64::MIN)),
            (
                &[0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
                Number::Float(u64::MAX as f64),
            ),
            (&[0xca, 0x3f, 0x00, 0x00, 0x00], Number::Float(0.5)),
            (&[0xcb, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0], Number::Float(1.5)),
            (&[0xa2, b'4', b'2'], Number::Int(42)),
            (&[0xa3, b'0', b'.', b'1'], Number::Float(0.1)),
            // A number too large for int64, sent as a decimal string.
            (
                b"\xb61234567890123456789012",
                Number::Float(1234567890123456789012.0),
            ),
        ];
        for (bytes, expected) in cases {
            assert_eq!(
                decode_msgpack(bytes, &Type::Number).unwrap(),
                Value::Number(*expected),
                "{bytes:02x?}"
            );
        }
        assert_eq!(
            decode_err(&[0xa3, b'a', b'b', b'c'], &Type::Number).problem,
            Problem::InvalidNumber
        );
    }

    #[test]
    fn numbers_encode_compactly() {
        let cases: &[(Number, &[u8])] = &[
            (Number::Int(0), &[0x00]),
            (Number::Int(127), &[0x7f]),
            (Number::Int(-32), &[0xe0]),
            (Number::Int(-33), &[0xd0, 0xdf]),
            (Number::Int(200), &[0xcc, 0xc8]),
            (Number::Int(-200), &[0xd1, 0xff, 0x38]),
            (Number::Int(70_000), &[0xce, 0x00, 0x01, 0x11, 0x70]),
            (
                Number::Int(i64::MAX),
                &[0xcf, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
            ),
            (Number::Int(i64::MIN), &[0xd3, 0x80, 0, 0, 0, 0, 0, 0, 0]),
            (Number::Float(1.5), &[0xcb, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0]),
            (
                Number::Float(f64::INFINITY),
                &[0xcb, 0x7f, 0xf0, 0, 0, 0, 0, 0, 0],
            ),
        ];
        for (n, expected) in cases {
            assert_eq!(
                encode_msgpack(&Value::Number(*n), &Type::Number).unwrap(),
                *expected,
                "{n:?}"
            );
        }
        assert_eq!(
            encode_msgpack(&Value::Number(Number::Float(f64::NAN)), &Type::Number)
                .unwrap_err()
                .problem,
            Problem::NotANumber
        );
    }

    #[test]
    fn strings_and_bools() {
        assert_eq!(
            encode_msgpack(&"hi".into(), &Type::String).unwrap(),
            [0xa2, b'h', b'i']
        );
        let long = "x".repeat(40);
        let encoded = encode_msgpack(&long.as_str().into(), &Type::String).unwrap();
        assert_eq!(&encoded[..2], &[0xd9, 40]);
        assert_eq!(
            decode_msgpack(&encoded, &Type::String).unwrap(),
            Value::String(long)
        );
        // str16 and bin8 forms are accepted too.
        assert_eq!(
            decode_msgpack(&[0xda, 0x00, 0x01, b'z'], &Type::String).unwrap(),
            Value::from("z")
        );
        assert_eq!(
            decode_msgpack(&[0xc4, 0x01, b'z'], &Type::String).unwrap(),
            Value::from("z")
        );
        assert_eq!(
            decode_err(&[0xa2, 0xff, 0xfe], &Type::String).problem,
            Problem::InvalidUtf8
        );
        assert_eq!(encode_msgpack(&true.into(), &Type::Bool).unwrap(), [0xc3]);
        assert_eq!(
            decode_msgpack(&[0xc2], &Type::Bool).unwrap(),
            Value::Bool(false)
        );
    }

    #[test]
    fn objects_are_maps_with_every_attribute_in_type_order() {
        let ty = object_type(&[("b", Type::Number), ("a", Type::String)]);
        // The value lacks `b`: it is written as nil, after `a` (sorted order).
        let value = Value::object([("a", Value::from("x"))]);
        let bytes = encode_msgpack(&value, &ty).unwrap();
        assert_eq!(bytes, [0x82, 0xa1, b'a', 0xa1, b'x', 0xa1, b'b', 0xc0]);

        // Decoding fills the missing attribute with null, whatever the key order.
        let reversed = [0x81, 0xa1, b'a', 0xa1, b'x'];
        assert_eq!(
            decode_msgpack(&reversed, &ty).unwrap(),
            Value::object([("a", Value::from("x")), ("b", Value::Null)])
        );
    }

    #[test]
    fn object_attribute_errors_name_the_attribute() {
        let ty = object_type(&[("a", Type::String)]);
        let extra = [0x82, 0xa1, b'a', 0xc0, 0xa1, b'c', 0xc0];
        let err = decode_err(&extra, &ty);
        assert_eq!(err.problem, Problem::UnsupportedAttribute);
        assert_eq!(err.path, AttributePath::root("c"));

        let twice = [0x82, 0xa1, b'a', 0xc0, 0xa1, b'a', 0xc0];
        assert_eq!(decode_err(&twice, &ty).problem, Problem::DuplicateKey);

        let int_key = [0x81, 0x01, 0xc0];
        assert_eq!(decode_err(&int_key, &ty).problem, Problem::NonStringKey);

        let err = encode_msgpack(&Value::object([("zzz", Value::Null)]), &ty).unwrap_err();
        assert_eq!(err.problem, Problem::UnsupportedAttribute);
        assert_eq!(err.path, AttributePath::root("zzz"));
    }

    #[test]
    fn collections_are_arrays_and_maps() {
        let list = [0x92, 0xa1, b'a', 0xc0];
        assert_eq!(
            decode_msgpack(&list, &Type::list(Type::String)).unwrap(),
            Value::List(vec!["a".into(), Value::Null])
        );
        // Sets keep the order received and are not deduplicated.
        let set = [0x93, 0x02, 0x01, 0x02];
        assert_eq!(
            decode_msgpack(&set, &Type::set(Type::Number)).unwrap(),
            Value::Set(vec![2.into(), 1.into(), 2.into()])
        );
        let tuple_ty = Type::Tuple(vec![Type::String, Type::Bool]);
        let tuple = [0x92, 0xa1, b'a', 0xc3];
        assert_eq!(
            decode_msgpack(&tuple, &tuple_ty).unwrap(),
            Value::Tuple(vec!["a".into(), true.into()])
        );
        assert_eq!(
            decode_err(&[0x91, 0xa1, b'a'], &tuple_ty).problem,
            Problem::TupleLength {
                expected: 2,
                found: 1
            }
        );
        let map_ty = Type::map(Type::Bool);
        let map = [0x82, 0xa1, b'x', 0xc3, 0xa1, b'y', 0xd4, 0x00, 0x00];
        let value = Value::Map(BTreeMap::from([
            ("x".to_owned(), Value::Bool(true)),
            ("y".to_owned(), Value::Unknown),
        ]));
        assert_eq!(decode_msgpack(&map, &map_ty).unwrap(), value);
        assert_eq!(encode_msgpack(&value, &map_ty).unwrap(), map);
        let err = decode_err(&[0x81, 0xa1, b'k', 0xa1, b'v'], &map_ty);
        assert_eq!(
            err.path,
            AttributePath(vec![crate::framework::PathStep::Key("k".into())])
        );
    }

    #[test]
    fn dynamic_values_carry_their_type_json() {
        // [bin8 `"string"`, "hi"], as cty writes it.
        let mut bytes = vec![0x92, 0xc4, 0x08];
        bytes.extend_from_slice(br#""string""#);
        bytes.extend_from_slice(&[0xa2, b'h', b'i']);
        let value = Value::Dynamic(Type::String, Box::new("hi".into()));
        assert_eq!(decode_msgpack(&bytes, &Type::Dynamic).unwrap(), value);
        assert_eq!(encode_msgpack(&value, &Type::Dynamic).unwrap(), bytes);

        // The type JSON may also arrive as a msgpack string.
        let ty_json = br#"["object",{"a":"bool"}]"#;
        let mut bytes = vec![0x92, 0xa0 | ty_json.len() as u8];
        bytes.extend_from_slice(ty_json);
        bytes.extend_from_slice(&[0x81, 0xa1, b'a', 0xc3]);
        assert_eq!(
            decode_msgpack(&bytes, &Type::Dynamic).unwrap(),
            Value::Dynamic(
                object_type(&[("a", Type::Bool)]),
                Box::new(Value::object([("a", Value::Bool(true))]))
            )
        );

        // A known type with a null or unknown value keeps the wrapper.
        let mut null_string = vec![0x92, 0xc4, 0x08];
        null_string.extend_from_slice(br#""string""#);
        null_string.push(0xc0);
        let value = Value::Dynamic(Type::String, Box::new(Value::Null));
        assert_eq!(decode_msgpack(&null_string, &Type::Dynamic).unwrap(), value);
        assert_eq!(encode_msgpack(&value, &Type::Dynamic).unwrap(), null_string);

        // list(dynamic) holding a bare unknown and a wrapped number.
        let value = Value::Dynamic(
            Type::list(Type::Dynamic),
            Box::new(Value::List(vec![
                Value::Unknown,
                Value::Dynamic(Type::Number, Box::new(3.into())),
            ])),
        );
        let bytes = encode_msgpack(&value, &Type::Dynamic).unwrap();
        assert_eq!(decode_msgpack(&bytes, &Type::Dynamic).unwrap(), value);
    }

    #[test]
    fn malformed_dynamic_values_are_errors() {
        let three = [0x93, 0xc4, 0x01, b'1', 0xc0, 0xc0];
        assert_eq!(
            decode_err(&three, &Type::Dynamic).problem,
            Problem::MalformedDynamic
        );
        let bad_type = [0x92, 0xa5, b'"', b'f', b'o', b'o', b'"', 0xc0];
        assert_eq!(
            decode_err(&bad_type, &Type::Dynamic).problem,
            Problem::InvalidDynamicType
        );
        let not_pair = [0xa1, b'x'];
        assert_eq!(
            decode_err(&not_pair, &Type::Dynamic).problem,
            Problem::WrongKind {
                expected: "a dynamic [type, value] pair",
                found: "a msgpack string"
            }
        );
        assert_eq!(
            encode_msgpack(&"x".into(), &Type::Dynamic)
                .unwrap_err()
                .problem,
            Problem::UntypedDynamic { found: "a string" }
        );
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert_eq!(decode_err(&[], &Type::String).problem, Problem::Truncated);
        assert_eq!(
            decode_err(&[0xc1], &Type::String).problem,
            Problem::InvalidMarker(0xc1)
        );
        assert_eq!(
            decode_err(&[0xa5, b'a'], &Type::String).problem,
            Problem::Truncated
        );
        assert_eq!(
            decode_err(&[0xc0, 0xc0], &Type::String).problem,
            Problem::TrailingBytes(1)
        );
        // An array claiming four billion elements must not allocate for them.
        assert_eq!(
            decode_err(
                &[0xdd, 0xff, 0xff, 0xff, 0xff, 0xc0],
                &Type::list(Type::String)
            )
            .problem,
            Problem::Truncated
        );
        let err = decode_err(
            &[0x81, 0xa1, b'a', 0x92],
            &object_type(&[("a", Type::Bool)]),
        );
        assert_eq!(err.path, AttributePath::root("a"));
        assert_eq!(
            err.problem,
            Problem::WrongKind {
                expected: "a bool",
                found: "a msgpack array"
            }
        );
    }

    #[test]
    fn deeply_nested_dynamics_stop_at_the_depth_limit() {
        // ["dynamic", ["dynamic", [...]]] thousands deep: bounded, not a stack overflow.
        let mut bytes = Vec::new();
        for _ in 0..10_000 {
            bytes.extend_from_slice(&[0x92, 0xa9]);
            bytes.extend_from_slice(br#""dynamic""#);
        }
        bytes.push(0xc0);
        assert_eq!(decode_err(&bytes, &Type::Dynamic).problem, Problem::TooDeep);
    }

    #[test]
    fn encode_rejects_values_of_the_wrong_kind_with_their_path() {
        let ty = object_type(&[("tags", Type::map(Type::String))]);
        let value = Value::object([(
            "tags",
            Value::Map(BTreeMap::from([("env".to_owned(), Value::from(true))])),
        )]);
        let err = encode_msgpack(&value, &ty).unwrap_err();
        assert_eq!(err.path, AttributePath::root("tags").key("env"));
        assert_eq!(
            err.problem,
            Problem::ValueDoesNotMatchType {
                expected: "a string",
                found: "a bool"
            }
        );
    }
}
