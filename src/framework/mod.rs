//! The provider logic layer's vocabulary: types, values, schemas with their declared rules
//! (validators, defaults, plan modifiers, semantic equality), typed models, diagnostics, and
//! the traits resources and data sources implement. Nothing here knows gRPC, msgpack or HTTP;
//! the protocol layer (`src/protocol/`) converts wire messages into these, runs the declared
//! rules, and calls the traits.

pub mod diag;
pub mod model;
pub mod plan_modifiers;
pub mod resource;
pub mod schema;
pub mod timeouts;
pub mod typed;
pub mod types;
pub mod validators;
pub mod value;

pub use diag::{AttributePath, Diagnostic, Diagnostics, PathStep, Severity};
pub use model::{decode, decode_planned, encode, ModelError, Tf};
pub use plan_modifiers::{same_value, Equality, PlanModifier};
pub use resource::{
    Applied, ApplyRequest, DataSource, Failure, ImportedResource, PlanRequest, PlannedChange,
    Provider, Resource,
};
pub use schema::{Attribute, AttributeKind, Block, NestingMode, Schema};
pub use timeouts::{Operation, TimeoutDefaults, Timeouts};
pub use typed::{typed, ModelPlan, ModelResource};
pub use types::Type;
pub use value::{Number, Value};
