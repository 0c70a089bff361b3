//! The Azure client layer: everything the provider does over HTTP. Resources call typed
//! functions on `AzureClients` (Graph, ARM) and get typed `AzureError`s back; authentication,
//! token caching, retries, paging, redacted logging, consistency waits and per-object locks
//! all live here and nowhere else.
//!
//! Code map:
//! - `auth`: one `TokenSource` per authentication method and the per-audience `TokenCache`.
//! - `http`: the request pipeline (timeouts, retries, create probes, DEBUG/TRACE logging).
//! - `transport`: proxies (Go's `HTTPS_PROXY`/`NO_PROXY` rules) and trusted CAs (platform
//!   store, `SSL_CERT_FILE`/`SSL_CERT_DIR`, bundled roots).
//! - `retry`: `Deadline`, backoff with full jitter, `Retry-After`.
//! - `service`, `graph`, `arm`: service clients and nextLink paging streams.
//! - `consistency`: `ConsistencyWait`; `locks`: `ObjectLocks`.
//! - `read_cache`: recent answers, so one command does not read the same thing twice.
//! - `throttle`: after a 429 the whole family waits; conditional access then goes at its
//!   documented rate.
//! - `error`: `AzureError` and friends; `redact`: what may be logged.
//!
//! Typed APIs, one file per area: Graph `users`, `role_management`, `conditional_access`;
//! ARM `diagnostic_settings` (Entra tenant diagnostic settings and the aadiam role check),
//! `action_groups`, `alert_rules` (log search alert rules), `log_analytics` (workspaces and
//! their tables).

pub mod action_groups;
pub mod administrative_units;
pub mod alert_rules;
pub mod arm;
pub mod auth;
pub mod cloud;
pub mod conditional_access;
pub mod config;
pub mod consistency;
pub mod diagnostic_settings;
pub mod directory_objects;
pub mod error;
pub mod graph;
pub mod http;
pub mod locks;
pub mod log_analytics;
pub mod read_cache;
pub mod redact;
pub mod retry;
pub mod role_management;
pub mod service;
pub mod throttle;
pub mod transport;
pub mod users;

use std::sync::Arc;

pub use arm::ArmClient;
pub use auth::{TokenCache, TokenSource};
pub use consistency::ConsistencyWait;
pub use error::{ApiError, AuthError, AuthMethodKind, AzureError, Service};
pub use graph::GraphClient;
pub use locks::ObjectLocks;
pub use retry::{Deadline, RetryPolicy};

pub use cloud::{CloudEndpoints, CloudEnvironment};
pub use config::{AuthMethod, CertificateSource, OidcTokenSource, ProviderConfig, Secret};

/// Where the services live and which token audience each needs.
#[derive(Debug, Clone)]
pub struct ServiceEndpoints {
    /// Graph root without version, e.g. `https://graph.microsoft.com`.
    pub graph: String,
    pub graph_scope: String,
    /// ARM root, e.g. `https://management.azure.com`.
    pub resource_manager: String,
    pub resource_manager_scope: String,
}

/// Everything resources need to talk to the tenant. `Provider::configure` builds one from the
/// resolved `ProviderConfig`; every resource and data source receives it.
pub struct AzureClients {
    pub config: ProviderConfig,
    pub graph: GraphClient,
    pub arm: ArmClient,
    pub tokens: Arc<TokenCache>,
    pub locks: Arc<ObjectLocks>,
    /// The same clients answering GETs from the process's read cache when it holds a recent
    /// answer (`read_cache.rs`): for refreshes, plan-time checks and data sources. Writes and
    /// the reads that wait for a write to show go through `graph` and `arm`.
    pub cached: CachedClients,
}

/// See `AzureClients::cached`.
pub struct CachedClients {
    pub graph: GraphClient,
    pub arm: ArmClient,
}

impl AzureClients {
    /// Builds the clients for `config`; `env` is the provider's environment lookup (see
    /// `auth::source_from_config`). No request is sent yet: tokens are fetched on first use.
    pub fn from_config(
        config: ProviderConfig,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, ClientSetupError> {
        let source = auth::source_from_config(&config, env)
            .map_err(|e| ClientSetupError::Credentials(AzureError::from(e)))?;
        let endpoints = ServiceEndpoints {
            graph: config.cloud.graph.clone(),
            graph_scope: config.cloud.graph_scope.clone(),
            resource_manager: config.cloud.resource_manager.clone(),
            resource_manager_scope: config.cloud.arm_scope.clone(),
        };
        let user_agent = config.user_agent();
        let transport = transport::Transport::from_env(env).map_err(ClientSetupError::Transport)?;
        Self::with_transport(
            config,
            endpoints,
            source,
            RetryPolicy::default(),
            &user_agent,
            transport,
        )
        .map_err(ClientSetupError::Http)
    }

    /// Clients with the proxies and trust store of the process environment.
    pub fn new(
        config: ProviderConfig,
        endpoints: ServiceEndpoints,
        source: Box<dyn TokenSource>,
        policy: RetryPolicy,
        user_agent: &str,
    ) -> Result<Self, String> {
        let transport = transport::Transport::from_env(&|name: &str| std::env::var(name).ok())?;
        Self::with_transport(config, endpoints, source, policy, user_agent, transport)
    }

    pub fn with_transport(
        config: ProviderConfig,
        endpoints: ServiceEndpoints,
        source: Box<dyn TokenSource>,
        policy: RetryPolicy,
        user_agent: &str,
        transport: transport::Transport,
    ) -> Result<Self, String> {
        let http = http::HttpPipeline::with_transport(policy, user_agent, transport)?;
        let tokens = Arc::new(TokenCache::new(source, http.clone()));
        let cache = Arc::new(read_cache::ReadCache::default());
        let graph = GraphClient::new(service::ServiceClient {
            service: Service::Graph,
            base_url: format!("{}/v1.0", endpoints.graph.trim_end_matches('/')),
            scope: endpoints.graph_scope,
            tokens: tokens.clone(),
            http: http.clone(),
            cache: cache.clone(),
            prefer_cache: false,
        });
        let arm = ArmClient::new(service::ServiceClient {
            service: Service::ResourceManager,
            base_url: endpoints.resource_manager.trim_end_matches('/').to_owned(),
            scope: endpoints.resource_manager_scope,
            tokens: tokens.clone(),
            http,
            cache,
            prefer_cache: false,
        });
        let cached = CachedClients {
            graph: GraphClient::new(graph.service().cached()),
            arm: ArmClient::new(arm.service().cached()),
        };
        Ok(AzureClients {
            config,
            graph,
            arm,
            tokens,
            locks: Arc::new(ObjectLocks::new()),
            cached,
        })
    }

    pub fn auth_method(&self) -> AuthMethodKind {
        self.tokens.method()
    }
}

/// Why the clients could not be built.
#[derive(Debug)]
pub enum ClientSetupError {
    /// The credentials could not be loaded (e.g. an unreadable certificate file).
    Credentials(AzureError),
    /// The proxy or trusted-certificate settings of the environment are unusable.
    Transport(String),
    /// The HTTP client could not be created.
    Http(String),
}
