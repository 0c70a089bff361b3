//! Data sources: read-only views of the tenant, one per file in the resource-file order
//! (type + schema, validate, read).

pub mod client_config;
pub mod posture;
