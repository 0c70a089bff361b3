//! The traits the provider, its resources and data sources implement. The protocol layer maps
//! each RPC onto one call here; implementations see typed `Value`s and return `Diagnostics`.
//!
//! Order inside every resource file follows the trait: type name + schema, validate, plan,
//! create, read, update, delete, import.

use std::any::Any;
use std::sync::Arc;

use async_trait::async_trait;

use crate::framework::diag::{AttributePath, Diagnostics};
use crate::framework::schema::Schema;
use crate::framework::value::Value;

/// Whatever `Provider::configure` produced (the Azure clients), handed to every resource and
/// data-source call. Resources downcast it to the concrete type they expect.
pub type ProviderData = Arc<dyn Any + Send + Sync>;

#[async_trait]
pub trait Provider: Send + Sync {
    /// The `provider "breakglass"` block schema.
    fn schema(&self) -> Schema;
    /// Static checks of the provider block (may contain unknowns).
    async fn validate_config(&self, config: &Value) -> Diagnostics;
    /// Builds the clients; `terraform_version` is what Terraform reported.
    async fn configure(
        &self,
        config: &Value,
        terraform_version: &str,
    ) -> Result<ProviderData, Diagnostics>;
    fn resources(&self) -> Vec<Arc<dyn Resource>>;
    fn data_sources(&self) -> Vec<Arc<dyn DataSource>>;
}

/// Input to planning. `prior` is null on create; `proposed` is Terraform's merge of config and
/// prior state (null when destroying).
pub struct PlanRequest<'a> {
    pub config: &'a Value,
    pub prior: &'a Value,
    pub proposed: &'a Value,
    pub data: Option<&'a ProviderData>,
}

/// The plan the protocol layer computed with the framework defaults (computed attributes not
/// set in config become unknown on create or change; write-only attributes are null), which a
/// resource may refine in `modify_plan`.
pub struct PlannedChange {
    pub planned: Value,
    pub requires_replace: Vec<AttributePath>,
    pub diagnostics: Diagnostics,
}

/// Result of create/update/read: the state to store, even on partial failure (then with error
/// diagnostics) so Terraform's state keeps matching the tenant.
pub struct ApplyOutcome {
    pub state: Value,
    pub diagnostics: Diagnostics,
}

impl ApplyOutcome {
    pub fn ok(state: Value) -> Self {
        ApplyOutcome {
            state,
            diagnostics: Diagnostics::new(),
        }
    }
    pub fn failed(state: Value, diagnostics: Diagnostics) -> Self {
        ApplyOutcome { state, diagnostics }
    }
}

/// One object found by `terraform import`.
pub struct ImportedResource {
    pub type_name: String,
    pub state: Value,
}

#[async_trait]
pub trait Resource: Send + Sync {
    /// Full type name, e.g. `breakglass_account`.
    fn type_name(&self) -> &'static str;
    fn schema(&self) -> Schema;

    async fn validate(&self, _config: &Value) -> Diagnostics {
        Diagnostics::new()
    }

    /// Refines the default plan: mark replacement, keep stable computed values, check the tenant.
    async fn modify_plan(&self, _req: &PlanRequest<'_>, _plan: &mut PlannedChange) {}

    /// `planned` has unknowns where apply decides; `config` carries write-only values.
    async fn create(&self, data: &ProviderData, config: &Value, planned: &Value) -> ApplyOutcome;

    /// Refreshes state from the tenant. `Ok(None)` means the object is gone (Terraform then
    /// plans to create it again).
    async fn read(&self, data: &ProviderData, state: &Value) -> Result<Option<Value>, Diagnostics>;

    async fn update(
        &self,
        data: &ProviderData,
        config: &Value,
        prior: &Value,
        planned: &Value,
    ) -> ApplyOutcome;

    async fn delete(&self, data: &ProviderData, prior: &Value) -> Diagnostics;

    /// Turns an import id into a minimal state that `read` completes.
    async fn import(
        &self,
        _data: &ProviderData,
        _id: &str,
    ) -> Result<Vec<ImportedResource>, Diagnostics> {
        Err(crate::framework::diag::Diagnostic::error(
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
pub trait DataSource: Send + Sync {
    fn type_name(&self) -> &'static str;
    fn schema(&self) -> Schema;
    async fn validate(&self, _config: &Value) -> Diagnostics {
        Diagnostics::new()
    }
    async fn read(&self, data: &ProviderData, config: &Value) -> Result<Value, Diagnostics>;
}
