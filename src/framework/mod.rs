//! The provider logic layer's vocabulary: types, values, schemas, diagnostics, and the traits
//! resources and data sources implement. Nothing here knows gRPC, msgpack or HTTP; the
//! protocol layer (`src/protocol/`) converts wire messages into these and back.

pub mod diag;
pub mod resource;
pub mod schema;
pub mod types;
pub mod value;

pub use diag::{AttributePath, Diagnostic, Diagnostics, PathStep, Severity};
pub use resource::{
    ApplyOutcome, DataSource, ImportedResource, PlanRequest, PlannedChange, Provider, ProviderData,
    Resource,
};
pub use schema::{Attribute, AttributeKind, Block, NestingMode, Schema};
pub use types::Type;
pub use value::{Number, Value};
