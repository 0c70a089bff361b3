//! What the provider server does between decoding a request and encoding its answer: look up
//! the resource type, enforce the protocol's rules that no resource should have to remember
//! (declared validators, the framework's planning order, semantic equality on refresh and
//! apply, write-only values never stored, known values after apply, the partial-state rule on
//! failure, a configured provider before touching the tenant), and call the `framework` traits.
//!
//! Everything here speaks `framework` values and diagnostics only; [`super::wire`] converts.
//! `D` is the provider's configured data (the Azure clients), opaque to this layer.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock, RwLock};

use crate::framework::model::conform;
use crate::framework::{
    ApplyRequest, AttributeKind, AttributePath, DataSource, Diagnostic, Diagnostics, Failure,
    ImportedResource, NestingMode, PathStep, PlanRequest, PlannedChange, Provider, Resource,
    Schema, Type, Value,
};
use crate::protocol::plan::{
    framework_plan, has_write_only, keep_equal_spellings, null_write_only, register_sensitive,
};
use crate::protocol::validate::declared_validators;

/// A managed resource type with its schema, computed once per process.
pub struct ResourceEntry<D> {
    pub resource: Arc<dyn Resource<D>>,
    pub schema: Schema,
    pub value_type: Type,
}

/// A data source type with its schema, computed once per process.
pub struct DataSourceEntry<D> {
    pub data_source: Arc<dyn DataSource<D>>,
    pub schema: Schema,
    pub value_type: Type,
}

/// Every schema the provider declares. Terraform asks for them on each of the several
/// process starts of a single command, so they are built once, on first use.
pub struct Catalog<D> {
    pub provider: Schema,
    pub provider_type: Type,
    pub resources: BTreeMap<String, ResourceEntry<D>>,
    pub data_sources: BTreeMap<String, DataSourceEntry<D>>,
}

impl<D: Send + Sync + 'static> Catalog<D> {
    fn build(provider: &dyn Provider<Data = D>) -> Catalog<D> {
        let provider_schema = provider.schema();
        let resources = provider
            .resources()
            .into_iter()
            .map(|resource| {
                let schema = resource.schema();
                let entry = ResourceEntry {
                    value_type: schema.value_type(),
                    schema,
                    resource,
                };
                (entry.resource.type_name().to_owned(), entry)
            })
            .collect();
        let data_sources = provider
            .data_sources()
            .into_iter()
            .map(|data_source| {
                let schema = data_source.schema();
                let entry = DataSourceEntry {
                    value_type: schema.value_type(),
                    schema,
                    data_source,
                };
                (entry.data_source.type_name().to_owned(), entry)
            })
            .collect();
        Catalog {
            provider_type: provider_schema.value_type(),
            provider: provider_schema,
            resources,
            data_sources,
        }
    }
}

/// What Terraform said it can handle (protocol `ClientCapabilities`); absent fields mean an
/// older Terraform that cannot.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClientCapabilities {
    pub deferral_allowed: bool,
    pub write_only_attributes_allowed: bool,
}

/// A state (or a failure) after read, create, update or delete, with its diagnostics.
pub struct Outcome {
    pub state: Value,
    pub diagnostics: Diagnostics,
}

impl Outcome {
    fn ok(state: Value) -> Self {
        Outcome {
            state,
            diagnostics: Diagnostics::new(),
        }
    }
    fn failed(state: Value, diagnostics: Diagnostics) -> Self {
        Outcome { state, diagnostics }
    }
}

/// The provider-independent server state of one provider process.
pub struct ProviderServer<D> {
    provider: Arc<dyn Provider<Data = D>>,
    catalog: OnceLock<Catalog<D>>,
    /// Set by ConfigureProvider; every call that reaches the tenant needs it.
    configured: RwLock<Option<Arc<D>>>,
}

impl<D: Send + Sync + 'static> ProviderServer<D> {
    pub fn new(provider: Arc<dyn Provider<Data = D>>) -> Self {
        ProviderServer {
            provider,
            catalog: OnceLock::new(),
            configured: RwLock::new(None),
        }
    }

    pub fn catalog(&self) -> &Catalog<D> {
        self.catalog
            .get_or_init(|| Catalog::build(self.provider.as_ref()))
    }

    pub fn resource(&self, type_name: &str) -> Result<&ResourceEntry<D>, Diagnostic> {
        self.catalog().resources.get(type_name).ok_or_else(|| {
            Diagnostic::error(
                "Unknown resource type",
                format!(
                    "The breakglass provider has no resource type {type_name:?}. Check the \
                     spelling, or upgrade the provider if the type is newer than this build."
                ),
            )
        })
    }

    pub fn data_source(&self, type_name: &str) -> Result<&DataSourceEntry<D>, Diagnostic> {
        self.catalog().data_sources.get(type_name).ok_or_else(|| {
            Diagnostic::error(
                "Unknown data source",
                format!(
                    "The breakglass provider has no data source {type_name:?}. Check the \
                     spelling, or upgrade the provider if the type is newer than this build."
                ),
            )
        })
    }

    fn configured_data(&self) -> Option<Arc<D>> {
        self.configured
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// The configured clients, or the diagnostic explaining why there are none.
    fn require_configured(&self, action: &str) -> Result<Arc<D>, Diagnostics> {
        self.configured_data().ok_or_else(|| {
            Diagnostic::error(
                "Provider not configured",
                format!(
                    "Terraform asked the breakglass provider to {action} before configuring \
                     it, so there is no connection to the tenant. This is unexpected; please \
                     report it together with the Terraform version and the command you ran."
                ),
            )
            .into()
        })
    }

    // ---- provider ------------------------------------------------------------------------

    pub async fn validate_provider_config(&self, config: &Value) -> Diagnostics {
        register_sensitive(&self.catalog().provider, config);
        let mut diagnostics = declared_validators(&self.catalog().provider, config);
        diagnostics.extend(self.provider.validate_config(config).await);
        diagnostics
    }

    pub async fn configure_provider(&self, config: &Value, terraform_version: &str) -> Diagnostics {
        match self.provider.configure(config, terraform_version).await {
            Ok(data) => {
                *self
                    .configured
                    .write()
                    .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(Arc::new(data));
                Diagnostics::new()
            }
            Err(diagnostics) => diagnostics,
        }
    }

    // ---- managed resources ---------------------------------------------------------------

    pub async fn validate_resource_config(
        &self,
        entry: &ResourceEntry<D>,
        config: &Value,
        capabilities: ClientCapabilities,
    ) -> Diagnostics {
        register_sensitive(&entry.schema, config);
        let mut diagnostics = Diagnostics::new();
        if !capabilities.write_only_attributes_allowed && has_write_only(&entry.schema) {
            // A Terraform that does not know write-only attributes would store the value in
            // plan and state like any other, which is exactly what write-only exists to avoid.
            for path in configured_write_only_paths(&entry.schema, config) {
                diagnostics.push(
                    Diagnostic::error(
                        "Write-only attribute needs Terraform 1.11 or later",
                        format!(
                            "{path} is write-only: its value must never be stored in the state \
                             file, and this version of Terraform would store it. Upgrade \
                             Terraform to 1.11 or later, or leave {path} unset."
                        ),
                    )
                    .at(path.clone()),
                );
            }
        }
        diagnostics.extend(declared_validators(&entry.schema, config));
        diagnostics.extend(entry.resource.validate(config).await);
        diagnostics
    }

    /// Brings a stored state up to the current schema version. `state` was decoded with the
    /// current type when the versions match, untyped otherwise (see `from_proto::raw_state`).
    pub fn upgrade_resource_state(
        &self,
        entry: &ResourceEntry<D>,
        stored_version: i64,
        state: Value,
    ) -> Result<Value, Diagnostics> {
        let current = entry.schema.version;
        let mut upgraded = if stored_version > current {
            return Err(Diagnostic::error(
                "State written by a newer provider",
                format!(
                    "This {} was stored with schema version {stored_version}, but this build \
                     of the breakglass provider only knows versions up to {current}. Use the \
                     provider version that wrote the state, or a newer one.",
                    entry.resource.type_name()
                ),
            )
            .into());
        } else if stored_version < current {
            entry.resource.upgrade_state(stored_version, state)?
        } else {
            state
        };
        null_write_only(&entry.schema, &mut upgraded);
        Ok(upgraded)
    }

    pub async fn read_resource(&self, entry: &ResourceEntry<D>, current: Value) -> Outcome {
        if current.is_null() {
            return Outcome::ok(Value::Null);
        }
        register_sensitive(&entry.schema, &current);
        let data = match self.require_configured("refresh a resource") {
            Ok(data) => data,
            Err(diagnostics) => return Outcome::failed(current, diagnostics),
        };
        match entry.resource.read(&data, &current).await {
            Ok(Some(state)) => match finish_state(entry, state, &current) {
                Ok(state) => Outcome::ok(state),
                Err(diagnostics) => Outcome::failed(current, diagnostics),
            },
            // Gone from the tenant: Terraform drops it from state and plans to create it.
            Ok(None) => Outcome::ok(Value::Null),
            Err(diagnostics) => Outcome::failed(current, diagnostics),
        }
    }

    pub async fn plan_resource_change(
        &self,
        entry: &ResourceEntry<D>,
        config: &Value,
        prior: &Value,
        proposed: &Value,
    ) -> PlannedChange {
        register_sensitive(&entry.schema, config);
        register_sensitive(&entry.schema, prior);
        let framework = framework_plan(&entry.schema, config, prior, proposed);
        let mut change = PlannedChange {
            planned: framework.planned,
            requires_replace: framework.requires_replace,
            diagnostics: Diagnostics::new(),
        };
        let data = self.configured_data();
        let request = PlanRequest {
            config,
            prior,
            proposed,
            data: data.as_deref(),
        };
        entry.resource.modify_plan(&request, &mut change).await;
        if !change.planned.is_null() {
            match conform(std::mem::take(&mut change.planned), &entry.value_type) {
                Ok(planned) => change.planned = planned,
                Err(e) => {
                    change
                        .diagnostics
                        .extend(model_bug(entry.resource.type_name(), e));
                    change.planned = proposed.clone();
                }
            }
        }
        null_write_only(&entry.schema, &mut change.planned);
        change
    }

    /// Create, update or delete, chosen by which of prior and planned state are null. On
    /// failure the state is what the resource reported as made (`Failure::partial_state`),
    /// else the prior state.
    pub async fn apply_resource_change(
        &self,
        entry: &ResourceEntry<D>,
        config: &Value,
        prior: &Value,
        planned: &Value,
    ) -> Outcome {
        if prior.is_null() && planned.is_null() {
            return Outcome::ok(Value::Null);
        }
        register_sensitive(&entry.schema, config);
        register_sensitive(&entry.schema, prior);
        let data = match self.require_configured("change a resource") {
            Ok(data) => data,
            Err(diagnostics) => return Outcome::failed(prior.clone(), diagnostics),
        };
        let resource = &entry.resource;
        if planned.is_null() {
            return match resource.delete(&data, prior).await {
                Ok(()) => Outcome::ok(Value::Null),
                // A failed delete leaves the object in the tenant, so it stays in state: as
                // the resource reports it when part of it is gone, else as it was.
                Err(Failure {
                    mut diagnostics,
                    partial_state,
                }) => match partial_state.map(|s| finish_state(entry, s, prior)) {
                    Some(Ok(state)) => Outcome::failed(state, diagnostics),
                    Some(Err(more)) => {
                        diagnostics.extend(more);
                        Outcome::failed(prior.clone(), diagnostics)
                    }
                    None => Outcome::failed(prior.clone(), diagnostics),
                },
            };
        }
        let request = ApplyRequest {
            config,
            prior,
            planned,
        };
        let result = if prior.is_null() {
            resource.create(&data, &request).await
        } else {
            resource.update(&data, &request).await
        };
        let (state, mut diagnostics) = match result {
            Ok(applied) => (Some(applied.state), applied.warnings),
            Err(Failure {
                diagnostics,
                partial_state,
            }) => (partial_state, diagnostics),
        };
        // Nothing reported as made: the prior state stands exactly as it was (it must not
        // take the plan's configuration-only values, or a failed change would look applied).
        let Some(state) = state else {
            return Outcome::failed(prior.clone(), diagnostics);
        };
        let mut state = match finish_state(entry, state, planned) {
            Ok(state) => state,
            Err(more) => {
                diagnostics.extend(more);
                return Outcome::failed(prior.clone(), diagnostics);
            }
        };
        if let Some(path) = first_unknown_path(&state) {
            // Terraform refuses a state with unknowns; say which attribute instead of its
            // generic "invalid object" error, and keep the rest of the state.
            diagnostics.push(
                Diagnostic::error(
                    "Provider left a value unknown after apply",
                    format!(
                        "{} did not determine {path} while applying. This is a bug in the \
                         breakglass provider; please report it.",
                        resource.type_name()
                    ),
                )
                .at(path),
            );
            unknowns_to_null(&mut state);
        }
        Outcome { state, diagnostics }
    }

    pub async fn import_resource_state(
        &self,
        entry: &ResourceEntry<D>,
        id: &str,
    ) -> Result<Vec<(ImportedResource, &ResourceEntry<D>)>, Diagnostics> {
        let data = self.require_configured("import a resource")?;
        let imported = entry.resource.import(&data, id).await?;
        imported
            .into_iter()
            .map(|mut object| {
                let target = self
                    .resource(&object.type_name)
                    .map_err(Diagnostics::from)?;
                object.state = finish_state(target, object.state, &Value::Null)?;
                Ok((object, target))
            })
            .collect()
    }

    // ---- data sources --------------------------------------------------------------------

    pub async fn validate_data_source_config(
        &self,
        entry: &DataSourceEntry<D>,
        config: &Value,
    ) -> Diagnostics {
        let mut diagnostics = declared_validators(&entry.schema, config);
        diagnostics.extend(entry.data_source.validate(config).await);
        diagnostics
    }

    pub async fn read_data_source(&self, entry: &DataSourceEntry<D>, config: &Value) -> Outcome {
        let data = match self.require_configured("read a data source") {
            Ok(data) => data,
            Err(diagnostics) => return Outcome::failed(Value::Null, diagnostics),
        };
        match entry.data_source.read(&data, config).await {
            Ok(state) => match conform(state, &entry.value_type) {
                Ok(mut state) => {
                    null_write_only(&entry.schema, &mut state);
                    Outcome::ok(state)
                }
                Err(e) => Outcome::failed(Value::Null, model_bug(entry.data_source.type_name(), e)),
            },
            Err(diagnostics) => Outcome::failed(Value::Null, diagnostics),
        }
    }
}

/// What every state a resource returns goes through: shaped to the schema's type, write-only
/// values nulled, and `kept`'s spelling kept where the attribute's equality says the values
/// mean the same (the prior state on refresh, the plan on apply).
fn finish_state<D>(
    entry: &ResourceEntry<D>,
    state: Value,
    kept: &Value,
) -> Result<Value, Diagnostics> {
    if state.is_null() {
        return Ok(state);
    }
    let mut state =
        conform(state, &entry.value_type).map_err(|e| model_bug(entry.resource.type_name(), e))?;
    null_write_only(&entry.schema, &mut state);
    keep_equal_spellings(&entry.schema, kept, &mut state);
    Ok(state)
}

fn model_bug(type_name: &str, e: crate::framework::ModelError) -> Diagnostics {
    Diagnostic::error(
        "Provider returned a malformed state",
        format!(
            "{type_name} produced a value that does not match its schema ({e}). This is a bug \
             in the breakglass provider; please report it."
        ),
    )
    .into()
}

/// Paths of write-only attributes the configuration sets (unknown counts as set: it will be).
fn configured_write_only_paths(schema: &Schema, config: &Value) -> Vec<AttributePath> {
    fn walk(
        attributes: &[crate::framework::Attribute],
        object: &Value,
        at: &AttributePath,
        out: &mut Vec<AttributePath>,
    ) {
        for attribute in attributes {
            let value = object.get(&attribute.name);
            if value.is_null() {
                continue;
            }
            let path = AttributePath(
                at.0.iter()
                    .cloned()
                    .chain([PathStep::Attribute(attribute.name.clone())])
                    .collect(),
            );
            if attribute.write_only {
                out.push(path);
                continue;
            }
            if let AttributeKind::Nested {
                nesting,
                attributes,
            } = &attribute.kind
            {
                match nesting {
                    NestingMode::Single | NestingMode::Group => {
                        walk(attributes, &value, &path, out)
                    }
                    NestingMode::List => {
                        for (i, item) in value.elements().iter().enumerate() {
                            walk(attributes, item, &path.clone().index(i as i64), out);
                        }
                    }
                    NestingMode::Map => {
                        for (key, item) in value.entries().into_iter().flatten() {
                            walk(attributes, item, &path.clone().key(key), out);
                        }
                    }
                    // Set elements have no address of their own; point at the set.
                    NestingMode::Set => {
                        let mut inner = Vec::new();
                        for item in value.elements() {
                            walk(attributes, item, &path, &mut inner);
                        }
                        if !inner.is_empty() {
                            out.push(path);
                        }
                    }
                }
            }
        }
    }
    let mut out = Vec::new();
    walk(
        &schema.attributes,
        config,
        &AttributePath::default(),
        &mut out,
    );
    out
}

fn first_unknown_path(value: &Value) -> Option<AttributePath> {
    fn walk(value: &Value, at: &mut Vec<PathStep>) -> bool {
        match value {
            Value::Unknown => true,
            Value::Object(m) => m.iter().any(|(k, v)| {
                at.push(PathStep::Attribute(k.clone()));
                walk(v, at) || {
                    at.pop();
                    false
                }
            }),
            Value::Map(m) => m.iter().any(|(k, v)| {
                at.push(PathStep::Key(k.clone()));
                walk(v, at) || {
                    at.pop();
                    false
                }
            }),
            Value::List(items) | Value::Tuple(items) => items.iter().enumerate().any(|(i, v)| {
                at.push(PathStep::Index(i as i64));
                walk(v, at) || {
                    at.pop();
                    false
                }
            }),
            // A set element has no address; the set itself is the closest path.
            Value::Set(items) => items.iter().any(|v| !v.is_fully_known()),
            Value::Dynamic(_, v) => walk(v, at),
            _ => false,
        }
    }
    let mut at = Vec::new();
    walk(value, &mut at).then_some(AttributePath(at))
}

fn unknowns_to_null(value: &mut Value) {
    match value {
        Value::Unknown => *value = Value::Null,
        Value::Object(m) | Value::Map(m) => m.values_mut().for_each(unknowns_to_null),
        Value::List(items) | Value::Set(items) | Value::Tuple(items) => {
            items.iter_mut().for_each(unknowns_to_null)
        }
        Value::Dynamic(_, v) => unknowns_to_null(v),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Mutex;

    use async_trait::async_trait;

    use super::*;
    use crate::framework::{Applied, Attribute};

    /// A resource that records which lifecycle method ran and echoes back what a careless
    /// implementation might: planned values including secrets and unknowns.
    struct Recorder {
        calls: Mutex<Vec<&'static str>>,
        leave_unknown: bool,
    }

    impl Recorder {
        fn new() -> Arc<Self> {
            Arc::new(Recorder {
                calls: Mutex::new(Vec::new()),
                leave_unknown: false,
            })
        }
        fn calls(&self) -> Vec<&'static str> {
            self.calls.lock().unwrap().clone()
        }
        fn record(&self, call: &'static str) {
            self.calls.lock().unwrap().push(call);
        }
    }

    fn vault_schema() -> Schema {
        Schema {
            version: 1,
            attributes: vec![
                Attribute::required("name", Type::String, "Name."),
                Attribute::computed("id", Type::String, "Id."),
                Attribute::optional("secret_wo", Type::String, "Secret.")
                    .sensitive()
                    .write_only(),
            ],
            ..Schema::default()
        }
    }

    #[async_trait]
    impl Resource<()> for Recorder {
        fn type_name(&self) -> &'static str {
            "breakglass_vault"
        }
        fn schema(&self) -> Schema {
            vault_schema()
        }
        async fn modify_plan(&self, _req: &PlanRequest<'_, ()>, plan: &mut PlannedChange) {
            self.record("modify_plan");
            // Careless: copies the secret from config into the plan.
            plan.planned.set("secret_wo", Value::from("leaked"));
        }
        async fn create(&self, _: &(), req: &ApplyRequest<'_>) -> Result<Applied, Failure> {
            self.record("create");
            let mut state = req.planned.clone();
            if !self.leave_unknown {
                state.set("id", Value::from("id-1"));
            }
            state.set("secret_wo", req.config.get("secret_wo"));
            if state.get("name") == Value::from("half-made") {
                return Err(
                    Failure::new(Diagnostic::error("boom", "failed late")).with_state(state)
                );
            }
            if state.get("name") == Value::from("nothing-made") {
                return Err(Failure::new(Diagnostic::error("boom", "failed early")));
            }
            Ok(Applied::new(state))
        }
        async fn read(&self, _: &(), state: &Value) -> Result<Option<Value>, Diagnostics> {
            self.record("read");
            let mut state = state.clone();
            state.set("secret_wo", Value::from("leaked"));
            Ok(Some(state))
        }
        async fn update(&self, _: &(), req: &ApplyRequest<'_>) -> Result<Applied, Failure> {
            self.record("update");
            Ok(Applied::new(req.planned.clone()))
        }
        async fn delete(&self, _: &(), _prior: &Value) -> Result<(), Failure> {
            self.record("delete");
            Ok(())
        }
        fn upgrade_state(&self, from_version: i64, mut state: Value) -> Result<Value, Diagnostics> {
            self.record("upgrade_state");
            state.set(
                "name",
                Value::from(format!("upgraded from v{from_version}")),
            );
            Ok(state)
        }
    }

    struct TestProvider {
        vault: Arc<Recorder>,
        configures: AtomicUsize,
    }

    #[async_trait]
    impl Provider for TestProvider {
        type Data = ();
        fn schema(&self) -> Schema {
            Schema::default()
        }
        async fn configure(&self, _: &Value, _: &str) -> Result<(), Diagnostics> {
            self.configures.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }
        fn resources(&self) -> Vec<Arc<dyn Resource<()>>> {
            vec![self.vault.clone()]
        }
        fn data_sources(&self) -> Vec<Arc<dyn DataSource<()>>> {
            Vec::new()
        }
    }

    fn server_with(vault: Arc<Recorder>) -> ProviderServer<()> {
        ProviderServer::new(Arc::new(TestProvider {
            vault,
            configures: AtomicUsize::new(0),
        }))
    }

    fn vault(name: &str, id: Value, secret: Value) -> Value {
        Value::object([("name", name.into()), ("id", id), ("secret_wo", secret)])
    }

    #[tokio::test]
    async fn unconfigured_provider_yields_a_diagnostic_not_a_panic() {
        let recorder = Recorder::new();
        let server = server_with(recorder.clone());
        let entry = server.resource("breakglass_vault").unwrap();
        let planned = vault("a", Value::Unknown, Value::Null);
        let outcome = server
            .apply_resource_change(entry, &planned, &Value::Null, &planned)
            .await;
        assert!(outcome.diagnostics.has_errors());
        assert_eq!(
            outcome.diagnostics.0[0].summary,
            "Provider not configured".to_owned()
        );
        assert!(recorder.calls().is_empty());

        let read = server
            .read_resource(entry, vault("a", "id-1".into(), Value::Null))
            .await;
        assert!(read.diagnostics.has_errors());
    }

    #[tokio::test]
    async fn apply_dispatches_on_nullness_and_strips_write_only_values() {
        let recorder = Recorder::new();
        let server = server_with(recorder.clone());
        assert!(server
            .configure_provider(&Value::Object(Default::default()), "1.11.4")
            .await
            .is_empty());
        let entry = server.resource("breakglass_vault").unwrap();

        let config = vault("a", Value::Null, "hunter2".into());
        let plan = server
            .plan_resource_change(entry, &config, &Value::Null, &config)
            .await;
        assert_eq!(plan.planned, vault("a", Value::Unknown, Value::Null));

        let created = server
            .apply_resource_change(entry, &config, &Value::Null, &plan.planned)
            .await;
        assert!(created.diagnostics.is_empty());
        assert_eq!(created.state, vault("a", "id-1".into(), Value::Null));

        let renamed = vault("b", "id-1".into(), Value::Null);
        let updated = server
            .apply_resource_change(entry, &renamed, &created.state, &renamed)
            .await;
        assert_eq!(updated.state, renamed);

        let refreshed = server.read_resource(entry, renamed.clone()).await;
        assert_eq!(refreshed.state.get("secret_wo"), Value::Null);

        let deleted = server
            .apply_resource_change(entry, &Value::Null, &renamed, &Value::Null)
            .await;
        assert_eq!(deleted.state, Value::Null);
        assert_eq!(
            recorder.calls(),
            ["modify_plan", "create", "update", "read", "delete"]
        );
    }

    #[tokio::test]
    async fn unknown_left_after_apply_is_reported_with_its_path() {
        let recorder = Arc::new(Recorder {
            calls: Mutex::new(Vec::new()),
            leave_unknown: true,
        });
        let server = server_with(recorder);
        server
            .configure_provider(&Value::Object(Default::default()), "1.11.4")
            .await;
        let entry = server.resource("breakglass_vault").unwrap();
        let planned = vault("a", Value::Unknown, Value::Null);
        let outcome = server
            .apply_resource_change(entry, &planned, &Value::Null, &planned)
            .await;
        assert!(outcome.diagnostics.has_errors());
        assert_eq!(
            outcome.diagnostics.0[0].path,
            Some(AttributePath::root("id"))
        );
        assert!(outcome.state.is_fully_known());
    }

    #[tokio::test]
    async fn write_only_values_need_a_capable_terraform() {
        let server = server_with(Recorder::new());
        let entry = server.resource("breakglass_vault").unwrap();
        let config = vault("a", Value::Null, "hunter2".into());

        let old = server
            .validate_resource_config(entry, &config, ClientCapabilities::default())
            .await;
        assert!(old.has_errors());
        assert_eq!(old.0[0].path, Some(AttributePath::root("secret_wo")));

        let capable = ClientCapabilities {
            write_only_attributes_allowed: true,
            ..Default::default()
        };
        assert!(server
            .validate_resource_config(entry, &config, capable)
            .await
            .is_empty());
        let unset = vault("a", Value::Null, Value::Null);
        assert!(server
            .validate_resource_config(entry, &unset, ClientCapabilities::default())
            .await
            .is_empty());
    }

    #[test]
    fn state_upgrade_runs_only_for_older_versions() {
        let recorder = Recorder::new();
        let server = server_with(recorder.clone());
        let entry = server.resource("breakglass_vault").unwrap();
        let stored = vault("a", "id-1".into(), "leaked".into());

        let same = server
            .upgrade_resource_state(entry, 1, stored.clone())
            .unwrap();
        assert_eq!(same, vault("a", "id-1".into(), Value::Null));
        assert!(recorder.calls().is_empty());

        let older = server
            .upgrade_resource_state(entry, 0, stored.clone())
            .unwrap();
        assert_eq!(older.get("name"), Value::from("upgraded from v0"));
        assert_eq!(recorder.calls(), ["upgrade_state"]);

        let newer = server.upgrade_resource_state(entry, 2, stored).unwrap_err();
        assert!(newer.has_errors());
    }

    #[tokio::test]
    async fn a_failed_create_keeps_what_the_resource_says_it_made() {
        let server = server_with(Recorder::new());
        server
            .configure_provider(&Value::Object(Default::default()), "1.11.4")
            .await;
        let entry = server.resource("breakglass_vault").unwrap();
        let half = vault("half-made", Value::Unknown, Value::Null);
        let outcome = server
            .apply_resource_change(entry, &half, &Value::Null, &half)
            .await;
        assert!(outcome.diagnostics.has_errors());
        assert_eq!(
            outcome.state,
            vault("half-made", "id-1".into(), Value::Null)
        );

        let nothing = vault("nothing-made", Value::Unknown, Value::Null);
        let outcome = server
            .apply_resource_change(entry, &nothing, &Value::Null, &nothing)
            .await;
        assert!(outcome.diagnostics.has_errors());
        assert_eq!(outcome.state, Value::Null);
    }

    #[test]
    fn unknown_type_names_are_diagnostics() {
        let server = server_with(Recorder::new());
        assert!(server.resource("breakglass_nope").is_err());
        assert!(server.data_source("breakglass_vault").is_err());
    }
}
