//! The traits the provider, its resources and data sources implement. The protocol layer maps
//! each RPC onto one call here; implementations see typed values and return diagnostics.
//!
//! `D` is what `Provider::configure` produced (the Azure clients): every resource and data
//! source receives it typed, as `&D`, never as `dyn Any`.
//!
//! Order inside every resource file follows the trait: type name + schema, validate, plan,
//! create, read, update, delete, import.

use std::sync::Arc;

use async_trait::async_trait;

use crate::framework::diag::{AttributePath, Diagnostic, Diagnostics};
use crate::framework::model::{self, ModelError};
use crate::framework::schema::Schema;
use crate::framework::value::Value;

#[async_trait]
pub trait Provider: Send + Sync {
    /// What `configure` hands every resource and data source.
    type Data: Send + Sync + 'static;

    /// The `provider "breakglass"` block schema.
    fn schema(&self) -> Schema;
    /// Static checks of the provider block beyond its declared validators (may contain
    /// unknowns).
    async fn validate_config(&self, _config: &Value) -> Diagnostics {
        Diagnostics::new()
    }
    /// Builds the clients; `terraform_version` is what Terraform reported.
    async fn configure(
        &self,
        config: &Value,
        terraform_version: &str,
    ) -> Result<Self::Data, Diagnostics>;
    fn resources(&self) -> Vec<Arc<dyn Resource<Self::Data>>>;
    fn data_sources(&self) -> Vec<Arc<dyn DataSource<Self::Data>>>;
}

/// Input to planning. `prior` is null on create; `proposed` is Terraform's merge of config and
/// prior state (null when destroying).
pub struct PlanRequest<'a, D> {
    pub config: &'a Value,
    pub prior: &'a Value,
    pub proposed: &'a Value,
    /// The configured clients; `None` while the provider block still has unknown values.
    pub data: Option<&'a D>,
}

impl<D> PlanRequest<'_, D> {
    pub fn is_create(&self) -> bool {
        self.prior.is_null()
    }
    pub fn is_destroy(&self) -> bool {
        self.proposed.is_null()
    }
}

/// The plan after the framework's steps (defaults, computed-to-unknown, attribute modifiers;
/// write-only attributes null), which a resource may refine in `modify_plan`.
pub struct PlannedChange {
    pub planned: Value,
    pub requires_replace: Vec<AttributePath>,
    pub diagnostics: Diagnostics,
}

impl PlannedChange {
    /// The plan as a typed model.
    pub fn model<T: serde::de::DeserializeOwned>(&self) -> Result<T, ModelError> {
        model::decode(&self.planned)
    }

    /// Replaces the plan with an edited model (the protocol layer shapes it to the schema).
    /// A model that cannot be encoded is an error diagnostic, and the plan stays as it was.
    pub fn set_model<T: serde::Serialize>(&mut self, planned: &T) {
        match model::encode(planned) {
            Ok(v) => self.planned = v,
            Err(e) => self.diagnostics.push(e.into_diagnostic()),
        }
    }
}

/// Input to create and update: `planned` has unknowns where apply decides; `config` carries
/// write-only values; `prior` is null on create.
pub struct ApplyRequest<'a> {
    pub config: &'a Value,
    pub prior: &'a Value,
    pub planned: &'a Value,
}

/// A successful create, update or read-back: the state to store, and any warnings.
#[derive(Debug)]
pub struct Applied {
    pub state: Value,
    pub warnings: Diagnostics,
}

impl Applied {
    pub fn new(state: Value) -> Self {
        Applied {
            state,
            warnings: Diagnostics::new(),
        }
    }

    /// The state encoded from a typed model.
    pub fn from_model<T: serde::Serialize>(state: &T) -> Result<Self, Failure> {
        Ok(Applied::new(model::encode(state)?))
    }
}

/// A failed create or update. The protocol layer applies one rule: the state Terraform keeps
/// is `partial_state` when the resource returned one (something was made or changed before
/// the failure, and state must match the tenant), else the prior state (nothing on create).
#[derive(Debug)]
pub struct Failure {
    pub diagnostics: Diagnostics,
    pub partial_state: Option<Value>,
}

impl Failure {
    /// Nothing changed in the tenant.
    pub fn new(diagnostics: impl Into<Diagnostics>) -> Self {
        Failure {
            diagnostics: diagnostics.into(),
            partial_state: None,
        }
    }

    /// The tenant now holds `state` (e.g. a user created but not yet readable).
    pub fn with_state(mut self, state: Value) -> Self {
        self.partial_state = Some(state);
        self
    }

    /// Like `with_state`, from a typed model (a model that cannot be encoded keeps the prior).
    pub fn with_model<T: serde::Serialize>(self, state: &T) -> Self {
        match model::encode(state) {
            Ok(v) => self.with_state(v),
            Err(e) => {
                let mut f = self;
                f.diagnostics.push(e.into_diagnostic());
                f
            }
        }
    }
}

impl From<Diagnostic> for Failure {
    fn from(d: Diagnostic) -> Self {
        Failure::new(d)
    }
}

impl From<Diagnostics> for Failure {
    fn from(d: Diagnostics) -> Self {
        Failure::new(d)
    }
}

impl From<ModelError> for Failure {
    fn from(e: ModelError) -> Self {
        Failure::new(e.into_diagnostic())
    }
}

/// One object found by `terraform import`.
pub struct ImportedResource {
    pub type_name: String,
    pub state: Value,
}

#[async_trait]
pub trait Resource<D>: Send + Sync {
    /// Full type name, e.g. `breakglass_account`.
    fn type_name(&self) -> &'static str;
    fn schema(&self) -> Schema;

    /// Checks beyond the attributes' declared validators (which the protocol layer has run).
    async fn validate(&self, _config: &Value) -> Diagnostics {
        Diagnostics::new()
    }

    /// Refines the framework's plan: values derived from others, checks against the tenant.
    /// Called on destroy too (`req.is_destroy()`), where it may refuse with an error.
    async fn modify_plan(&self, _req: &PlanRequest<'_, D>, _plan: &mut PlannedChange) {}

    async fn create(&self, data: &D, req: &ApplyRequest<'_>) -> Result<Applied, Failure>;

    /// Refreshes state from the tenant. `Ok(None)` means the object is gone (Terraform then
    /// plans to create it again).
    async fn read(&self, data: &D, state: &Value) -> Result<Option<Value>, Diagnostics>;

    async fn update(&self, data: &D, req: &ApplyRequest<'_>) -> Result<Applied, Failure>;

    /// On error the object stays in state: as `partial_state` when part of it is gone (say
    /// which), else as it was.
    async fn delete(&self, data: &D, prior: &Value) -> Result<(), Failure>;

    /// Turns an import id into a minimal state that `read` completes.
    async fn import(&self, _data: &D, _id: &str) -> Result<Vec<ImportedResource>, Diagnostics> {
        Err(Diagnostic::error(
            "Import not supported",
            format!("{} cannot be imported.", self.type_name()),
        )
        .into())
    }

    /// Upgrades a stored state of an older schema version (already decoded from JSON).
    fn upgrade_state(&self, _from_version: i64, state: Value) -> Result<Value, Diagnostics> {
        Ok(state)
    }
}

#[async_trait]
pub trait DataSource<D>: Send + Sync {
    fn type_name(&self) -> &'static str;
    fn schema(&self) -> Schema;
    /// Checks beyond the attributes' declared validators.
    async fn validate(&self, _config: &Value) -> Diagnostics {
        Diagnostics::new()
    }
    async fn read(&self, data: &D, config: &Value) -> Result<Value, Diagnostics>;
}
