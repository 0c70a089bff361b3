//! Resources written against their typed model: [`ModelResource`] is [`Resource`] with config,
//! plan and state already decoded into the resource's model struct, and the state it returns
//! encoded back — the way terraform-plugin-framework resources call `req.Plan.Get(ctx, &m)`
//! and `resp.State.Set(ctx, m)`, done once here instead of in every method.
//!
//! Register one with [`typed`]. A value that does not decode (a wrong type reaching a method)
//! becomes an error diagnostic on its attribute, never a panic.

use std::sync::Arc;

use async_trait::async_trait;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::framework::diag::{AttributePath, Diagnostic, Diagnostics};
use crate::framework::model::{self, decode, decode_planned};
use crate::framework::resource::{
    Applied, ApplyRequest, Failure, ImportedResource, PlanRequest, PlannedChange, Resource,
};
use crate::framework::schema::Schema;
use crate::framework::value::Value;

/// The plan a [`ModelResource`] refines: typed views of the request, and the plan to edit.
pub struct ModelPlan<'a, M, D> {
    /// Configuration (unknown where values come from other resources).
    pub config: M,
    /// The prior state; `None` on create.
    pub prior: Option<M>,
    /// The framework's plan (defaults, computed-to-unknown, attribute modifiers applied);
    /// edit it in place.
    pub planned: M,
    pub requires_replace: &'a mut Vec<AttributePath>,
    pub diagnostics: &'a mut Diagnostics,
    /// The configured clients; `None` while the provider block still has unknown values.
    pub data: Option<&'a D>,
}

#[async_trait]
pub trait ModelResource<D: Send + Sync>: Send + Sync {
    /// Config, plan and state: one struct whose fields are the schema's attributes.
    type Model: Serialize + DeserializeOwned + Send + Sync;

    fn type_name(&self) -> &'static str;
    fn schema(&self) -> Schema;

    /// Checks beyond the attributes' declared validators, on the raw configuration (which may
    /// hold values of the wrong shape: decode only what the check needs).
    async fn validate(&self, _config: &Value) -> Diagnostics {
        Diagnostics::new()
    }

    /// Refines the plan of a create or update (destroy plans are not passed here; see
    /// [`ModelResource::plan_destroy`]).
    async fn modify_plan(&self, _plan: &mut ModelPlan<'_, Self::Model, D>) {}

    /// Checks a planned destroy; an error stops the plan before anything is deleted.
    async fn plan_destroy(&self, _prior: &Self::Model, _diagnostics: &mut Diagnostics) {}

    /// An error when the object in `prior` must not be deleted (deletion protection), for
    /// `action` "destroy" or "replace". The framework asks before planning a destroy or a
    /// replacement and again before calling `delete` (Terraform older than 1.3 does not plan
    /// destroys with the provider), so a protected object is never deleted.
    fn deletion_refused(&self, _prior: &Self::Model, _action: &str) -> Option<Diagnostic> {
        None
    }

    /// `planned` has null where apply decides (its unknowns); `config` carries write-only
    /// values.
    async fn create(
        &self,
        data: &D,
        config: Self::Model,
        planned: Self::Model,
    ) -> Result<Self::Model, Failure>;

    /// `Ok(None)` when the object is gone from the tenant.
    async fn read(&self, data: &D, state: Self::Model) -> Result<Option<Self::Model>, Diagnostics>;

    async fn update(
        &self,
        data: &D,
        config: Self::Model,
        prior: Self::Model,
        planned: Self::Model,
    ) -> Result<Self::Model, Failure>;

    /// On error the object stays in state (`Failure::with_model` when part of it is gone).
    async fn delete(&self, data: &D, prior: Self::Model) -> Result<(), Failure>;

    /// The minimal state (usually the id) that `read` completes.
    async fn import(&self, data: &D, id: &str) -> Result<Self::Model, Diagnostics>;
}

/// A [`ModelResource`] as the protocol layer sees resources.
pub fn typed<D, R>(resource: R) -> Arc<dyn Resource<D>>
where
    D: Send + Sync + 'static,
    R: ModelResource<D> + 'static,
{
    Arc::new(Typed(resource))
}

struct Typed<R>(R);

fn encoded<T: Serialize>(model: &T) -> Result<Value, Diagnostics> {
    model::encode(model).map_err(|e| e.into_diagnostic().into())
}

fn decoded<T: DeserializeOwned>(value: &Value) -> Result<T, Diagnostics> {
    decode(value).map_err(|e| e.into_diagnostic().into())
}

#[async_trait]
impl<D, R> Resource<D> for Typed<R>
where
    D: Send + Sync + 'static,
    R: ModelResource<D>,
{
    fn type_name(&self) -> &'static str {
        self.0.type_name()
    }

    fn schema(&self) -> Schema {
        self.0.schema()
    }

    async fn validate(&self, config: &Value) -> Diagnostics {
        self.0.validate(config).await
    }

    async fn modify_plan(&self, req: &PlanRequest<'_, D>, plan: &mut PlannedChange) {
        if req.is_destroy() {
            match decoded::<R::Model>(req.prior) {
                Ok(prior) => {
                    plan.diagnostics
                        .extend(self.0.deletion_refused(&prior, "destroy"));
                    self.0.plan_destroy(&prior, &mut plan.diagnostics).await
                }
                Err(d) => plan.diagnostics.extend(d),
            }
            return;
        }
        let models = (
            decoded::<R::Model>(req.config),
            decoded::<Option<R::Model>>(req.prior),
            decoded::<R::Model>(&plan.planned),
        );
        let (config, prior, planned) = match models {
            (Ok(c), Ok(p), Ok(n)) => (c, p, n),
            (Err(d), _, _) | (_, Err(d), _) | (_, _, Err(d)) => {
                return plan.diagnostics.extend(d);
            }
        };
        // What the plan looks like through the model before the resource touches it: a value
        // holding unknowns decodes as unknown as a whole, so an attribute the resource leaves
        // alone must keep its exact original value (Terraform checks it against config).
        let baseline = match encoded(&planned) {
            Ok(v) => v,
            Err(d) => return plan.diagnostics.extend(d),
        };
        let mut typed = ModelPlan {
            config,
            prior,
            planned,
            requires_replace: &mut plan.requires_replace,
            diagnostics: &mut plan.diagnostics,
            data: req.data,
        };
        self.0.modify_plan(&mut typed).await;
        if !typed.requires_replace.is_empty() {
            if let Some(prior) = &typed.prior {
                typed
                    .diagnostics
                    .extend(self.0.deletion_refused(prior, "replace"));
            }
        }
        let edited = match encoded(&typed.planned) {
            Ok(v) => v,
            Err(d) => return plan.diagnostics.extend(d),
        };
        if let (Some(before), Some(after)) = (baseline.entries(), edited.entries()) {
            for (name, value) in after {
                if before.get(name) != Some(value) {
                    plan.planned.set(name, value.clone());
                }
            }
        }
    }

    async fn create(&self, data: &D, req: &ApplyRequest<'_>) -> Result<Applied, Failure> {
        let config = decode(req.config)?;
        let planned = decode_planned(req.planned)?;
        let state = self.0.create(data, config, planned).await?;
        Applied::from_model(&state)
    }

    async fn read(&self, data: &D, state: &Value) -> Result<Option<Value>, Diagnostics> {
        let state = decoded(state)?;
        match self.0.read(data, state).await? {
            Some(refreshed) => Ok(Some(encoded(&refreshed)?)),
            None => Ok(None),
        }
    }

    async fn update(&self, data: &D, req: &ApplyRequest<'_>) -> Result<Applied, Failure> {
        let config = decode(req.config)?;
        let prior = decode(req.prior)?;
        let planned = decode_planned(req.planned)?;
        let state = self.0.update(data, config, prior, planned).await?;
        Applied::from_model(&state)
    }

    async fn delete(&self, data: &D, prior: &Value) -> Result<(), Failure> {
        let prior = decode(prior)?;
        if let Some(refused) = self.0.deletion_refused(&prior, "destroy") {
            return Err(refused.into());
        }
        self.0.delete(data, prior).await
    }

    async fn import(&self, data: &D, id: &str) -> Result<Vec<ImportedResource>, Diagnostics> {
        let state = self.0.import(data, id).await?;
        Ok(vec![ImportedResource {
            type_name: self.0.type_name().to_owned(),
            state: encoded(&state)?,
        }])
    }
}
