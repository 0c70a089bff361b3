//! DynamicValue codec: msgpack (with unknowns) and JSON, decoded against a `Type` into
//! `framework::Value` and encoded back.
