//! The `provider "breakglass"` block: schema, validation, environment fallbacks, configure.
//!
//! - `settings`: the table of attributes and the environment variables each falls back to.
//! - `validate`: config-only checks with attribute paths (Terraform's validate step).
//! - `config`: resolution into the typed [`ProviderConfig`] the Azure client layer consumes.
//! - `cloud`: the public / usgovernment / china endpoint and scope tables.

pub(crate) mod checks;
pub mod config;
pub mod settings;
mod validate;

#[cfg(test)]
mod tests;

use std::sync::Arc;

use async_trait::async_trait;

use crate::azure::{AzureClients, ClientSetupError};
use crate::framework::{
    Attribute, DataSource, Diagnostic, Diagnostics, Provider, Resource, Schema, Type, Value,
};

pub use crate::azure::cloud::{self as cloud, CloudEndpoints, CloudEnvironment};
pub use crate::azure::config::{
    AuthMethod, CertificateSource, OidcTokenSource, ProviderConfig, Secret,
};

/// Reads one environment variable.
pub type EnvLookup = dyn Fn(&str) -> Option<String> + Send + Sync;

pub struct BreakglassProvider {
    env: Arc<EnvLookup>,
}

impl BreakglassProvider {
    /// The provider as Terraform runs it: settings fall back to the process environment.
    pub fn new() -> Self {
        Self::with_env(Arc::new(|name: &str| std::env::var(name).ok()))
    }

    /// A provider reading "environment variables" from `env` (tests use a fixed map).
    pub fn with_env(env: Arc<EnvLookup>) -> Self {
        BreakglassProvider { env }
    }
}

impl Default for BreakglassProvider {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait]
impl Provider for BreakglassProvider {
    type Data = AzureClients;

    fn schema(&self) -> Schema {
        let attributes = settings::ALL
            .iter()
            .map(|s| {
                let ty = match s.kind {
                    settings::SettingKind::String => Type::String,
                    settings::SettingKind::Bool => Type::Bool,
                };
                let mut attr = Attribute::optional(s.name, ty, &s.full_description());
                attr.validators = s.validators();
                if s.sensitive {
                    attr.sensitive()
                } else {
                    attr
                }
            })
            .collect();
        Schema {
            description: "Manages Microsoft Entra emergency-access (\"break-glass\") accounts: \
                the accounts, their role assignments, conditional-access exclusions and sign-in \
                alerts. Every setting can also come from the environment variables azurerm and \
                azuread read, so existing pipelines need no provider block at all."
                .to_owned(),
            attributes,
            ..Schema::default()
        }
    }

    async fn validate_config(&self, config: &Value) -> Diagnostics {
        validate::validate(config)
    }

    async fn configure(
        &self,
        config: &Value,
        terraform_version: &str,
    ) -> Result<AzureClients, Diagnostics> {
        let sources = settings::Sources {
            config,
            env: &*self.env,
        };
        let resolved = config::resolve(&sources, terraform_version)?;
        // Secrets print as [redacted] through `Secret`'s Debug.
        tracing::debug!(config = ?resolved, "resolved provider configuration");
        let clients = AzureClients::from_config(resolved, &*self.env).map_err(|e| match e {
            ClientSetupError::Credentials(e) => Diagnostics::from(Diagnostic::from(e)),
            ClientSetupError::Transport(why) => {
                Diagnostic::error("Invalid proxy or certificate settings", why).into()
            }
            ClientSetupError::Http(why) => {
                Diagnostic::error("Could not set up the HTTP client", why).into()
            }
        })?;
        let configured = &clients.config;
        tracing::info!(
            environment = %configured.environment,
            auth = configured.auth.label(),
            tenant_id = configured.tenant_id.as_deref().unwrap_or("(from token source)"),
            graph_endpoint = %configured.cloud.graph,
            "provider configured"
        );
        Ok(clients)
    }

    fn resources(&self) -> Vec<Arc<dyn Resource<AzureClients>>> {
        crate::resources::all()
    }

    fn data_sources(&self) -> Vec<Arc<dyn DataSource<AzureClients>>> {
        vec![
            Arc::new(crate::data_sources::client_config::ClientConfigDataSource),
            Arc::new(crate::data_sources::posture::PostureDataSource),
        ]
    }
}
