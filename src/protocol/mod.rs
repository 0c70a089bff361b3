//! The wire: go-plugin handshake, gRPC services, and the msgpack/JSON value codec. The only
//! module that knows tonic and prost types.

pub mod codec;
