//! `breakglass_client_config`: who the provider is signed in as. Like azurerm's and azuread's
//! client-config data sources, and the first path that goes Terraform → provider → Graph, so it
//! doubles as a connectivity check for the configured credentials.
//!
//! The emulated tenant (and this provider's Graph permission set) has no service-principal
//! lookup, so `object_id` comes from the `oid` claim of the Graph access token Entra issued us —
//! the documented way for a client to learn its own principal — and a real Graph call
//! (`GET /organization`) proves the token works and that it belongs to the tenant it claims.

use std::time::Duration;

use async_trait::async_trait;

use crate::azure::{AzureClients, Deadline};
use crate::framework::{Attribute, DataSource, Diagnostic, Diagnostics, Schema, Type, Value};

/// Reads are bounded like a Terraform data source read without `timeouts`.
const READ_TIMEOUT: Duration = Duration::from_secs(5 * 60);

pub struct ClientConfigDataSource;

#[async_trait]
impl DataSource<AzureClients> for ClientConfigDataSource {
    fn type_name(&self) -> &'static str {
        "breakglass_client_config"
    }

    fn schema(&self) -> Schema {
        Schema {
            description: "The identity the provider authenticates as: tenant, application and \
                service principal, and how it signed in. Reading it makes a Microsoft Graph \
                call, so it also proves the provider's credentials work."
                .to_owned(),
            attributes: vec![
                Attribute::computed(
                    "tenant_id",
                    Type::String,
                    "The Microsoft Entra tenant id (GUID) the provider is signed in to.",
                ),
                Attribute::computed(
                    "client_id",
                    Type::String,
                    "The application (client) id of the app registration or managed identity \
                     the provider authenticates as.",
                ),
                Attribute::computed(
                    "object_id",
                    Type::String,
                    "The object id of the authenticated service principal (or managed \
                     identity), as used in role assignments and conditional-access exclusions.",
                ),
                Attribute::computed(
                    "authentication_method",
                    Type::String,
                    "How the provider signed in: `client_secret`, `client_certificate`, \
                     `oidc`, `managed_identity` or `azure_cli`.",
                ),
            ],
            ..Schema::default()
        }
    }

    async fn read(&self, clients: &AzureClients, _config: &Value) -> Result<Value, Diagnostics> {
        let deadline = Deadline::after(READ_TIMEOUT);
        let graph = clients.graph.service();
        let token = clients
            .tokens
            .token(&graph.scope, &deadline)
            .await
            .map_err(Diagnostic::from)?;
        let claims = token.claims().unwrap_or_default();
        let claim = |name: &str| claims.get(name).and_then(|v| v.as_str()).map(str::to_owned);

        let organization = clients
            .cached
            .graph
            .list_all("/organization", deadline)
            .await
            .map_err(Diagnostic::from)?;
        let organization_id = organization
            .first()
            .and_then(|o| o.get("id"))
            .and_then(|v| v.as_str())
            .map(str::to_owned);

        let tenant_id = claim("tid")
            .or(organization_id.clone())
            .or(clients.config.tenant_id.clone());
        if let (Some(tid), Some(org)) = (&tenant_id, &organization_id) {
            if !tid.eq_ignore_ascii_case(org) {
                return Err(Diagnostic::error(
                    "Signed in to an unexpected tenant",
                    format!(
                        "The access token is for tenant {tid}, but Microsoft Graph reports \
                         organization {org}. Check tenant_id and graph_endpoint."
                    ),
                )
                .into());
            }
        }
        let client_id = claim("appid")
            .or_else(|| claim("azp"))
            .or(clients.config.client_id.clone());
        let object_id = claim("oid").ok_or_else(|| {
            Diagnostic::error(
                "Could not determine the signed-in principal",
                "The Microsoft Graph access token carries no `oid` claim.",
            )
        })?;
        Ok(Value::object([
            ("tenant_id", Value::opt_string(tenant_id)),
            ("client_id", Value::opt_string(client_id)),
            ("object_id", Value::String(object_id)),
            (
                "authentication_method",
                Value::from(clients.auth_method().as_str()),
            ),
        ]))
    }
}
