//! Planning as Terraform and the protocol layer do it, for resources' unit tests: Terraform's
//! proposed new state, the framework's steps, the resource's `modify_plan`, the state shaped to
//! the schema.

use crate::framework::model::conform;
use crate::framework::{Diagnostics, PlanRequest, PlannedChange, Resource, Schema, Value};
use crate::protocol::plan::{framework_plan, null_write_only};

/// Terraform's proposal (`objchange.ProposedNew`, top level): configured values, and the prior
/// value of every computed attribute the configuration leaves null.
pub fn proposed(resource: &dyn Resource<impl Send + Sync>, config: &Value, prior: &Value) -> Value {
    if config.is_null() || prior.is_null() {
        return config.clone();
    }
    let schema = resource.schema();
    let mut proposed = config.clone();
    for a in schema.attributes.iter().filter(|a| a.computed) {
        if config.get(&a.name).is_null() {
            proposed.set(&a.name, prior.get(&a.name));
        }
    }
    proposed
}

/// The plan the provider would answer for `config` over `prior`, without a tenant.
pub async fn plan<D: Send + Sync>(
    resource: &dyn Resource<D>,
    config: &Value,
    prior: &Value,
) -> PlannedChange {
    let schema = resource.schema();
    let proposed = proposed(resource, config, prior);
    let framework = framework_plan(&schema, config, prior, &proposed);
    let mut change = PlannedChange {
        planned: framework.planned,
        requires_replace: framework.requires_replace,
        diagnostics: Diagnostics::new(),
    };
    let request = PlanRequest {
        config,
        prior,
        proposed: &proposed,
        data: None,
    };
    resource.modify_plan(&request, &mut change).await;
    if !change.planned.is_null() {
        change.planned = conform(change.planned, &schema.value_type()).expect("plan fits schema");
        null_write_only(&schema, &mut change.planned);
    }
    change
}

/// A configuration of `schema`: every attribute null, then `attrs` set (top level).
pub fn config(schema: &Schema, attrs: &[(&str, Value)]) -> Value {
    let mut v = conform(Value::object([("id", Value::Null)]), &schema.value_type())
        .expect("a null object conforms to its schema");
    for (k, val) in attrs {
        v.set(k, val.clone());
    }
    v
}
