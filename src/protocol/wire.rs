//! The `tfplugin6.Provider` gRPC service. Each RPC only unpacks its request, decodes it
//! ([`from_proto`]), lets [`crate::protocol::logic`] do the work and encodes the answer ([`to_proto`]).
//!
//! User-facing problems — invalid values, unknown types, failed API calls — travel as
//! diagnostics inside an OK response; a gRPC error status would make Terraform report a broken
//! plugin instead of pointing at the configuration.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, OnceLock};

use futures::FutureExt;
use tonic::{Request, Response, Status};

use crate::framework::{Diagnostic, Diagnostics, Provider, Type, Value};
use crate::protocol::logic::ProviderServer;
use crate::protocol::proto::tfplugin6 as proto;
use crate::protocol::proto::tfplugin6::provider_server::Provider as ProviderRpc;
use crate::protocol::{from_proto, to_proto};

pub struct ProviderService<D> {
    server: ProviderServer<D>,
    /// Built on first request; identical for the life of the process.
    schema: OnceLock<proto::get_provider_schema::Response>,
}

impl<D: Send + Sync + 'static> ProviderService<D> {
    pub fn new(provider: Arc<dyn Provider<Data = D>>) -> Self {
        ProviderService {
            server: ProviderServer::new(provider),
            schema: OnceLock::new(),
        }
    }
}

type Reply<T> = Result<Response<T>, Status>;

/// Responses that can carry diagnostics; lets every handler fail with `?`.
trait CarriesDiagnostics: Default {
    fn set_diagnostics(&mut self, diagnostics: Vec<proto::Diagnostic>);
}

macro_rules! carries_diagnostics {
    ($($response:ty),* $(,)?) => {$(
        impl CarriesDiagnostics for $response {
            fn set_diagnostics(&mut self, diagnostics: Vec<proto::Diagnostic>) {
                self.diagnostics = diagnostics;
            }
        }
    )*};
}

carries_diagnostics!(
    proto::validate_provider_config::Response,
    proto::validate_resource_config::Response,
    proto::validate_data_resource_config::Response,
    proto::validate_ephemeral_resource_config::Response,
    proto::upgrade_resource_state::Response,
    proto::upgrade_resource_identity::Response,
    proto::move_resource_state::Response,
    proto::configure_provider::Response,
    proto::read_resource::Response,
    proto::plan_resource_change::Response,
    proto::apply_resource_change::Response,
    proto::import_resource_state::Response,
    proto::read_data_source::Response,
    proto::open_ephemeral_resource::Response,
    proto::renew_ephemeral_resource::Response,
    proto::close_ephemeral_resource::Response,
);

fn answer<T: CarriesDiagnostics>(result: Result<T, Diagnostics>) -> Reply<T> {
    Ok(Response::new(result.unwrap_or_else(|diagnostics| {
        let mut response = T::default();
        response.set_diagnostics(to_proto::diagnostics(&diagnostics));
        response
    })))
}

/// Runs one RPC's work so that a panic inside it (a bug: no input should reach one) still
/// comes back to Terraform as an error diagnostic, and the process keeps serving the next RPC.
async fn guarded<T: CarriesDiagnostics>(
    rpc: &'static str,
    work: impl Future<Output = Result<T, Diagnostics>>,
) -> Reply<T> {
    match AssertUnwindSafe(work).catch_unwind().await {
        Ok(result) => answer(result),
        Err(_) => {
            // The panic message itself went to stderr through the panic hook; it may quote
            // input, so it is not repeated in the diagnostic.
            tracing::error!(rpc, "a provider bug panicked while handling the request");
            answer(Err(Diagnostic::error(
                "Provider bug",
                format!(
                    "The breakglass provider hit an internal error while handling {rpc} and \
                     stopped that request without changing anything further. Please report \
                     it, with the Terraform version and the command you ran."
                ),
            )
            .into()))
        }
    }
}

fn unsupported(feature: &str) -> Diagnostics {
    Diagnostic::error(
        format!("{feature} not supported"),
        format!("{feature} is not supported by this provider."),
    )
    .into()
}

/// Encodes `value`, turning a failure into one more diagnostic (the response then has no
/// value, which Terraform ignores anyway when there are errors).
fn encode_into(
    value: &Value,
    ty: &Type,
    field: &str,
    diagnostics: &mut Diagnostics,
) -> Option<proto::DynamicValue> {
    match to_proto::dynamic_value(value, ty, field) {
        Ok(encoded) => Some(encoded),
        Err(diagnostic) => {
            diagnostics.push(diagnostic);
            None
        }
    }
}

impl<D: Send + Sync + 'static> ProviderService<D> {
    async fn validate_provider_config(
        &self,
        request: proto::validate_provider_config::Request,
    ) -> Result<proto::validate_provider_config::Response, Diagnostics> {
        let catalog = self.server.catalog();
        let config =
            from_proto::dynamic_value(request.config.as_ref(), &catalog.provider_type, "config")?;
        let diagnostics = self.server.validate_provider_config(&config).await;
        Ok(proto::validate_provider_config::Response {
            diagnostics: to_proto::diagnostics(&diagnostics),
        })
    }

    async fn validate_resource_config(
        &self,
        request: proto::validate_resource_config::Request,
    ) -> Result<proto::validate_resource_config::Response, Diagnostics> {
        let entry = self.server.resource(&request.type_name)?;
        let config =
            from_proto::dynamic_value(request.config.as_ref(), &entry.value_type, "config")?;
        let capabilities = from_proto::client_capabilities(request.client_capabilities.as_ref());
        let diagnostics = self
            .server
            .validate_resource_config(entry, &config, capabilities)
            .await;
        Ok(proto::validate_resource_config::Response {
            diagnostics: to_proto::diagnostics(&diagnostics),
        })
    }

    async fn validate_data_resource_config(
        &self,
        request: proto::validate_data_resource_config::Request,
    ) -> Result<proto::validate_data_resource_config::Response, Diagnostics> {
        let entry = self.server.data_source(&request.type_name)?;
        let config =
            from_proto::dynamic_value(request.config.as_ref(), &entry.value_type, "config")?;
        let diagnostics = self
            .server
            .validate_data_source_config(entry, &config)
            .await;
        Ok(proto::validate_data_resource_config::Response {
            diagnostics: to_proto::diagnostics(&diagnostics),
        })
    }

    async fn upgrade_resource_state(
        &self,
        request: proto::upgrade_resource_state::Request,
    ) -> Result<proto::upgrade_resource_state::Response, Diagnostics> {
        let entry = self.server.resource(&request.type_name)?;
        let stored = from_proto::raw_state(
            request.raw_state.as_ref(),
            request.version,
            &entry.schema,
            &entry.value_type,
        )?;
        let upgraded = self
            .server
            .upgrade_resource_state(entry, request.version, stored)?;
        let upgraded_state =
            to_proto::dynamic_value(&upgraded, &entry.value_type, "upgraded state")?;
        Ok(proto::upgrade_resource_state::Response {
            upgraded_state: Some(upgraded_state),
            diagnostics: Vec::new(),
        })
    }

    async fn configure_provider(
        &self,
        request: proto::configure_provider::Request,
    ) -> Result<proto::configure_provider::Response, Diagnostics> {
        let catalog = self.server.catalog();
        let config =
            from_proto::dynamic_value(request.config.as_ref(), &catalog.provider_type, "config")?;
        let diagnostics = self
            .server
            .configure_provider(&config, &request.terraform_version)
            .await;
        Ok(proto::configure_provider::Response {
            diagnostics: to_proto::diagnostics(&diagnostics),
        })
    }

    async fn read_resource(
        &self,
        request: proto::read_resource::Request,
    ) -> Result<proto::read_resource::Response, Diagnostics> {
        let entry = self.server.resource(&request.type_name)?;
        let ty = &entry.value_type;
        let current =
            from_proto::dynamic_value(request.current_state.as_ref(), ty, "current_state")?;
        let outcome = self.server.read_resource(entry, current).await;
        let mut diagnostics = outcome.diagnostics;
        let new_state = encode_into(&outcome.state, ty, "refreshed state", &mut diagnostics);
        Ok(proto::read_resource::Response {
            new_state,
            diagnostics: to_proto::diagnostics(&diagnostics),
            // Not used by this provider, but it belongs to Terraform's state: hand it back.
            private: request.private,
            ..Default::default()
        })
    }

    async fn plan_resource_change(
        &self,
        request: proto::plan_resource_change::Request,
    ) -> Result<proto::plan_resource_change::Response, Diagnostics> {
        let entry = self.server.resource(&request.type_name)?;
        let ty = &entry.value_type;
        let prior = from_proto::dynamic_value(request.prior_state.as_ref(), ty, "prior_state")?;
        let proposed = from_proto::dynamic_value(
            request.proposed_new_state.as_ref(),
            ty,
            "proposed_new_state",
        )?;
        let config = from_proto::dynamic_value(request.config.as_ref(), ty, "config")?;
        let change = self
            .server
            .plan_resource_change(entry, &config, &prior, &proposed)
            .await;
        let mut diagnostics = change.diagnostics;
        let planned_state = encode_into(&change.planned, ty, "planned state", &mut diagnostics);
        Ok(proto::plan_resource_change::Response {
            planned_state,
            requires_replace: change
                .requires_replace
                .iter()
                .map(to_proto::attribute_path)
                .collect(),
            planned_private: request.prior_private,
            diagnostics: to_proto::diagnostics(&diagnostics),
            ..Default::default()
        })
    }

    async fn apply_resource_change(
        &self,
        request: proto::apply_resource_change::Request,
    ) -> Result<proto::apply_resource_change::Response, Diagnostics> {
        let entry = self.server.resource(&request.type_name)?;
        let ty = &entry.value_type;
        let prior = from_proto::dynamic_value(request.prior_state.as_ref(), ty, "prior_state")?;
        let planned =
            from_proto::dynamic_value(request.planned_state.as_ref(), ty, "planned_state")?;
        let config = from_proto::dynamic_value(request.config.as_ref(), ty, "config")?;
        let outcome = self
            .server
            .apply_resource_change(entry, &config, &prior, &planned)
            .await;
        let mut diagnostics = outcome.diagnostics;
        let new_state = encode_into(&outcome.state, ty, "new state", &mut diagnostics);
        Ok(proto::apply_resource_change::Response {
            new_state,
            private: request.planned_private,
            diagnostics: to_proto::diagnostics(&diagnostics),
            ..Default::default()
        })
    }

    async fn import_resource_state(
        &self,
        request: proto::import_resource_state::Request,
    ) -> Result<proto::import_resource_state::Response, Diagnostics> {
        let entry = self.server.resource(&request.type_name)?;
        let imported = self
            .server
            .import_resource_state(entry, &request.id)
            .await?;
        let imported_resources = imported
            .into_iter()
            .map(|(object, target)| {
                Ok(proto::import_resource_state::ImportedResource {
                    state: Some(to_proto::dynamic_value(
                        &object.state,
                        &target.value_type,
                        "imported state",
                    )?),
                    type_name: object.type_name,
                    ..Default::default()
                })
            })
            .collect::<Result<_, Diagnostic>>()?;
        // Terraform follows up with ReadResource, which fills in the rest of the state.
        Ok(proto::import_resource_state::Response {
            imported_resources,
            ..Default::default()
        })
    }

    async fn read_data_source(
        &self,
        request: proto::read_data_source::Request,
    ) -> Result<proto::read_data_source::Response, Diagnostics> {
        let entry = self.server.data_source(&request.type_name)?;
        let ty = &entry.value_type;
        let config = from_proto::dynamic_value(request.config.as_ref(), ty, "config")?;
        let outcome = self.server.read_data_source(entry, &config).await;
        let mut diagnostics = outcome.diagnostics;
        let state = if diagnostics.has_errors() {
            None
        } else {
            encode_into(&outcome.state, ty, "data source result", &mut diagnostics)
        };
        Ok(proto::read_data_source::Response {
            state,
            diagnostics: to_proto::diagnostics(&diagnostics),
            ..Default::default()
        })
    }
}

#[tonic::async_trait]
impl<D: Send + Sync + 'static> ProviderRpc for ProviderService<D> {
    async fn get_metadata(
        &self,
        _request: Request<proto::get_metadata::Request>,
    ) -> Reply<proto::get_metadata::Response> {
        Ok(Response::new(to_proto::metadata(self.server.catalog())))
    }

    async fn get_provider_schema(
        &self,
        _request: Request<proto::get_provider_schema::Request>,
    ) -> Reply<proto::get_provider_schema::Response> {
        let schema = self
            .schema
            .get_or_init(|| to_proto::provider_schema(self.server.catalog()));
        Ok(Response::new(schema.clone()))
    }

    async fn get_resource_identity_schemas(
        &self,
        _request: Request<proto::get_resource_identity_schemas::Request>,
    ) -> Reply<proto::get_resource_identity_schemas::Response> {
        // No resource declares an identity (Terraform >= 1.12 feature); an empty map says so.
        Ok(Response::new(Default::default()))
    }

    async fn validate_provider_config(
        &self,
        request: Request<proto::validate_provider_config::Request>,
    ) -> Reply<proto::validate_provider_config::Response> {
        guarded(
            "validate_provider_config",
            Self::validate_provider_config(self, request.into_inner()),
        )
        .await
    }

    async fn validate_resource_config(
        &self,
        request: Request<proto::validate_resource_config::Request>,
    ) -> Reply<proto::validate_resource_config::Response> {
        guarded(
            "validate_resource_config",
            Self::validate_resource_config(self, request.into_inner()),
        )
        .await
    }

    async fn validate_data_resource_config(
        &self,
        request: Request<proto::validate_data_resource_config::Request>,
    ) -> Reply<proto::validate_data_resource_config::Response> {
        guarded(
            "validate_data_resource_config",
            Self::validate_data_resource_config(self, request.into_inner()),
        )
        .await
    }

    async fn validate_ephemeral_resource_config(
        &self,
        _request: Request<proto::validate_ephemeral_resource_config::Request>,
    ) -> Reply<proto::validate_ephemeral_resource_config::Response> {
        answer(Err(unsupported("Ephemeral resources")))
    }

    async fn upgrade_resource_state(
        &self,
        request: Request<proto::upgrade_resource_state::Request>,
    ) -> Reply<proto::upgrade_resource_state::Response> {
        guarded(
            "upgrade_resource_state",
            Self::upgrade_resource_state(self, request.into_inner()),
        )
        .await
    }

    async fn upgrade_resource_identity(
        &self,
        _request: Request<proto::upgrade_resource_identity::Request>,
    ) -> Reply<proto::upgrade_resource_identity::Response> {
        answer(Err(unsupported("Resource identity")))
    }

    async fn move_resource_state(
        &self,
        _request: Request<proto::move_resource_state::Request>,
    ) -> Reply<proto::move_resource_state::Response> {
        answer(Err(unsupported("Moving state between resource types")))
    }

    async fn configure_provider(
        &self,
        request: Request<proto::configure_provider::Request>,
    ) -> Reply<proto::configure_provider::Response> {
        guarded(
            "configure_provider",
            Self::configure_provider(self, request.into_inner()),
        )
        .await
    }

    async fn read_resource(
        &self,
        request: Request<proto::read_resource::Request>,
    ) -> Reply<proto::read_resource::Response> {
        guarded(
            "read_resource",
            Self::read_resource(self, request.into_inner()),
        )
        .await
    }

    async fn plan_resource_change(
        &self,
        request: Request<proto::plan_resource_change::Request>,
    ) -> Reply<proto::plan_resource_change::Response> {
        guarded(
            "plan_resource_change",
            Self::plan_resource_change(self, request.into_inner()),
        )
        .await
    }

    async fn apply_resource_change(
        &self,
        request: Request<proto::apply_resource_change::Request>,
    ) -> Reply<proto::apply_resource_change::Response> {
        guarded(
            "apply_resource_change",
            Self::apply_resource_change(self, request.into_inner()),
        )
        .await
    }

    async fn import_resource_state(
        &self,
        request: Request<proto::import_resource_state::Request>,
    ) -> Reply<proto::import_resource_state::Response> {
        guarded(
            "import_resource_state",
            Self::import_resource_state(self, request.into_inner()),
        )
        .await
    }

    async fn read_data_source(
        &self,
        request: Request<proto::read_data_source::Request>,
    ) -> Reply<proto::read_data_source::Response> {
        guarded(
            "read_data_source",
            Self::read_data_source(self, request.into_inner()),
        )
        .await
    }

    async fn open_ephemeral_resource(
        &self,
        _request: Request<proto::open_ephemeral_resource::Request>,
    ) -> Reply<proto::open_ephemeral_resource::Response> {
        answer(Err(unsupported("Ephemeral resources")))
    }

    async fn renew_ephemeral_resource(
        &self,
        _request: Request<proto::renew_ephemeral_resource::Request>,
    ) -> Reply<proto::renew_ephemeral_resource::Response> {
        answer(Err(unsupported("Ephemeral resources")))
    }

    async fn close_ephemeral_resource(
        &self,
        _request: Request<proto::close_ephemeral_resource::Request>,
    ) -> Reply<proto::close_ephemeral_resource::Response> {
        answer(Err(unsupported("Ephemeral resources")))
    }

    async fn get_functions(
        &self,
        _request: Request<proto::get_functions::Request>,
    ) -> Reply<proto::get_functions::Response> {
        Ok(Response::new(Default::default()))
    }

    async fn call_function(
        &self,
        request: Request<proto::call_function::Request>,
    ) -> Reply<proto::call_function::Response> {
        // Functions report errors in their own message type, not as diagnostics.
        Ok(Response::new(proto::call_function::Response {
            result: None,
            error: Some(proto::FunctionError {
                text: format!(
                    "Function {:?} is not supported by this provider: it declares no functions.",
                    request.into_inner().name
                ),
                function_argument: None,
            }),
        }))
    }

    async fn stop_provider(
        &self,
        _request: Request<proto::stop_provider::Request>,
    ) -> Reply<proto::stop_provider::Response> {
        // Every API call already runs under its own deadline, so in-flight work ends on its
        // own; Terraform waits for it and then calls Shutdown.
        tracing::info!("Terraform asked the provider to stop");
        Ok(Response::new(proto::stop_provider::Response {
            error: String::new(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use async_trait::async_trait;

    use super::*;
    use crate::framework::{
        Applied, ApplyRequest, Attribute, DataSource, Failure, Resource, Schema, Type, Value,
    };
    use crate::protocol::codec;

    /// A provider with one resource whose create records the config it saw.
    struct Notebook {
        seen_config: Arc<Mutex<Option<Value>>>,
    }

    struct Page {
        seen_config: Arc<Mutex<Option<Value>>>,
    }

    fn page_schema() -> Schema {
        Schema {
            attributes: vec![
                Attribute::required("title", Type::String, "Title."),
                Attribute::computed("id", Type::String, "Id."),
                Attribute::optional("ink_wo", Type::String, "Secret ink.").write_only(),
            ],
            ..Schema::default()
        }
    }

    #[async_trait]
    impl Resource<()> for Page {
        fn type_name(&self) -> &'static str {
            "breakglass_page"
        }
        fn schema(&self) -> Schema {
            page_schema()
        }
        async fn create(&self, _: &(), req: &ApplyRequest<'_>) -> Result<Applied, Failure> {
            *self.seen_config.lock().unwrap() = Some(req.config.clone());
            if req.planned.get("title") == Value::from("panic") {
                panic!("a bug reached by input");
            }
            let mut state = req.planned.clone();
            state.set("id", "p-1".into());
            Ok(Applied::new(state))
        }
        async fn read(&self, _: &(), state: &Value) -> Result<Option<Value>, Diagnostics> {
            Ok(Some(state.clone()))
        }
        async fn update(&self, _: &(), req: &ApplyRequest<'_>) -> Result<Applied, Failure> {
            Ok(Applied::new(req.planned.clone()))
        }
        async fn delete(&self, _: &(), _: &Value) -> Result<(), Failure> {
            Ok(())
        }
    }

    #[async_trait]
    impl Provider for Notebook {
        type Data = ();
        fn schema(&self) -> Schema {
            Schema {
                attributes: vec![Attribute::optional("owner", Type::String, "Owner.")],
                ..Schema::default()
            }
        }
        async fn validate_config(&self, config: &Value) -> Diagnostics {
            if config.get("owner") == Value::from("nobody") {
                Diagnostic::error("Invalid owner", "Pick somebody.")
                    .at(crate::framework::AttributePath::root("owner"))
                    .into()
            } else {
                Diagnostics::new()
            }
        }
        async fn configure(&self, _: &Value, _: &str) -> Result<(), Diagnostics> {
            Ok(())
        }
        fn resources(&self) -> Vec<Arc<dyn Resource<()>>> {
            vec![Arc::new(Page {
                seen_config: self.seen_config.clone(),
            })]
        }
        fn data_sources(&self) -> Vec<Arc<dyn DataSource<()>>> {
            Vec::new()
        }
    }

    fn service() -> (ProviderService<()>, Arc<Mutex<Option<Value>>>) {
        let seen = Arc::new(Mutex::new(None));
        let service = ProviderService::new(Arc::new(Notebook {
            seen_config: seen.clone(),
        }));
        (service, seen)
    }

    fn msgpack(value: &Value, ty: &Type) -> Option<proto::DynamicValue> {
        Some(proto::DynamicValue {
            msgpack: codec::encode_msgpack(value, ty).unwrap(),
            json: Vec::new(),
        })
    }

    #[tokio::test]
    async fn user_errors_are_diagnostics_with_paths_inside_ok_responses() {
        let (service, _) = service();
        let provider_type = Notebook {
            seen_config: Default::default(),
        }
        .schema()
        .value_type();
        let config = Value::object([("owner", Value::from("nobody"))]);
        let response = ProviderRpc::validate_provider_config(
            &service,
            Request::new(proto::validate_provider_config::Request {
                config: msgpack(&config, &provider_type),
            }),
        )
        .await
        .expect("gRPC status stays OK")
        .into_inner();
        assert_eq!(response.diagnostics.len(), 1);
        let path = response.diagnostics[0].attribute.as_ref().unwrap();
        assert_eq!(
            path.steps[0].selector,
            Some(proto::attribute_path::step::Selector::AttributeName(
                "owner".into()
            ))
        );

        let unknown_type = ProviderRpc::read_resource(
            &service,
            Request::new(proto::read_resource::Request {
                type_name: "breakglass_nope".into(),
                ..Default::default()
            }),
        )
        .await
        .expect("gRPC status stays OK")
        .into_inner();
        assert_eq!(unknown_type.diagnostics[0].summary, "Unknown resource type");
    }

    #[tokio::test]
    async fn apply_passes_write_only_config_to_create_but_never_returns_it() {
        let (service, seen) = service();
        let ty = page_schema().value_type();
        ProviderRpc::configure_provider(
            &service,
            Request::new(proto::configure_provider::Request {
                terraform_version: "1.11.4".into(),
                config: msgpack(
                    &Value::object([("owner", Value::Null)]),
                    &Type::Object([("owner".to_owned(), Type::String)].into()),
                ),
                client_capabilities: None,
            }),
        )
        .await
        .unwrap();

        let config = Value::object([
            ("title", Value::from("runbook")),
            ("id", Value::Null),
            ("ink_wo", Value::from("invisible")),
        ]);
        let plan = ProviderRpc::plan_resource_change(
            &service,
            Request::new(proto::plan_resource_change::Request {
                type_name: "breakglass_page".into(),
                prior_state: msgpack(&Value::Null, &ty),
                proposed_new_state: msgpack(&config, &ty),
                config: msgpack(&config, &ty),
                prior_private: b"opaque".to_vec(),
                ..Default::default()
            }),
        )
        .await
        .unwrap()
        .into_inner();
        assert!(plan.diagnostics.is_empty(), "{:?}", plan.diagnostics);
        assert_eq!(plan.planned_private, b"opaque");
        let planned = codec::decode_msgpack(&plan.planned_state.unwrap().msgpack, &ty).unwrap();
        assert_eq!(planned.get("id"), Value::Unknown);
        assert_eq!(planned.get("ink_wo"), Value::Null);

        let applied = ProviderRpc::apply_resource_change(
            &service,
            Request::new(proto::apply_resource_change::Request {
                type_name: "breakglass_page".into(),
                prior_state: msgpack(&Value::Null, &ty),
                planned_state: msgpack(&planned, &ty),
                config: msgpack(&config, &ty),
                ..Default::default()
            }),
        )
        .await
        .unwrap()
        .into_inner();
        assert!(applied.diagnostics.is_empty(), "{:?}", applied.diagnostics);
        let state = codec::decode_msgpack(&applied.new_state.unwrap().msgpack, &ty).unwrap();
        assert_eq!(state.get("id"), Value::from("p-1"));
        assert_eq!(state.get("ink_wo"), Value::Null);
        assert_eq!(
            seen.lock().unwrap().as_ref().unwrap().get("ink_wo"),
            Value::from("invisible")
        );
    }

    #[tokio::test]
    async fn schema_is_built_once_and_advertises_capabilities() {
        let (service, _) = service();
        let first = ProviderRpc::get_provider_schema(
            &service,
            Request::new(proto::get_provider_schema::Request {}),
        )
        .await
        .unwrap()
        .into_inner();
        assert!(first.resource_schemas.contains_key("breakglass_page"));
        let capabilities = first.server_capabilities.unwrap();
        assert!(capabilities.plan_destroy && capabilities.get_provider_schema_optional);
        assert!(service.schema.get().is_some());

        let metadata =
            ProviderRpc::get_metadata(&service, Request::new(proto::get_metadata::Request {}))
                .await
                .unwrap()
                .into_inner();
        assert_eq!(metadata.resources[0].type_name, "breakglass_page");
        assert!(metadata.ephemeral_resources.is_empty());
    }

    #[tokio::test]
    async fn a_panic_in_one_rpc_is_a_diagnostic_and_the_next_rpc_is_served() {
        let (service, _) = service();
        let ty = page_schema().value_type();
        ProviderRpc::configure_provider(
            &service,
            Request::new(proto::configure_provider::Request {
                terraform_version: "1.11.4".into(),
                config: msgpack(
                    &Value::object([("owner", Value::Null)]),
                    &Type::Object([("owner".to_owned(), Type::String)].into()),
                ),
                client_capabilities: None,
            }),
        )
        .await
        .unwrap();
        let planned = Value::object([
            ("title", Value::from("panic")),
            ("id", Value::Unknown),
            ("ink_wo", Value::Null),
        ]);
        let request = || {
            Request::new(proto::apply_resource_change::Request {
                type_name: "breakglass_page".into(),
                prior_state: msgpack(&Value::Null, &ty),
                planned_state: msgpack(&planned, &ty),
                config: msgpack(&planned, &ty),
                ..Default::default()
            })
        };
        let answer = ProviderRpc::apply_resource_change(&service, request())
            .await
            .expect("gRPC status stays OK")
            .into_inner();
        assert_eq!(answer.diagnostics.len(), 1);
        assert_eq!(answer.diagnostics[0].summary, "Provider bug");
        // The same service answers the next request normally.
        let schema = ProviderRpc::get_provider_schema(&service, Request::new(Default::default()))
            .await
            .unwrap()
            .into_inner();
        assert!(schema.resource_schemas.contains_key("breakglass_page"));
    }

    #[tokio::test]
    async fn unsupported_features_answer_with_diagnostics() {
        let (service, _) = service();
        let open = ProviderRpc::open_ephemeral_resource(
            &service,
            Request::new(proto::open_ephemeral_resource::Request::default()),
        )
        .await
        .unwrap()
        .into_inner();
        assert!(open.diagnostics[0]
            .detail
            .contains("not supported by this provider"));
        let call = ProviderRpc::call_function(
            &service,
            Request::new(proto::call_function::Request {
                name: "f".into(),
                arguments: vec![],
            }),
        )
        .await
        .unwrap()
        .into_inner();
        assert!(call.error.unwrap().text.contains("not supported"));
        let functions =
            ProviderRpc::get_functions(&service, Request::new(proto::get_functions::Request {}))
                .await
                .unwrap()
                .into_inner();
        assert!(functions.functions.is_empty());
    }
}
