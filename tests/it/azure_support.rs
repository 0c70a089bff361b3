//! Shared pieces of the Azure client-layer tests: the emulated tenant served in-process on the
//! test's own runtime (optionally behind an extra layer that misbehaves the way a network can),
//! `AzureClients` pointed at it, and the admin API calls the tests assert with.

#![allow(dead_code)] // each test module uses a different part

use std::time::Duration;

use breakglass::azure::{AzureClients, Deadline, RetryPolicy, ServiceEndpoints, TokenSource};
use breakglass::provider::{AuthMethod, CloudEnvironment, ProviderConfig};
use fake_tenant::AppState;
use serde_json::{json, Value as Json};

pub struct Emulator {
    pub url: String,
    pub state: AppState,
    pub tenant_id: String,
    pub client_id: String,
    pub client_secret: String,
    /// Object id of the provider app's service principal.
    pub object_id: String,
    admin: reqwest::Client,
}

impl Emulator {
    pub async fn start() -> Emulator {
        Self::start_wrapped(|router| router).await
    }

    /// Serves `wrap(app(state))`, so a test can put a misbehaving layer in front.
    pub async fn start_wrapped(wrap: impl FnOnce(axum::Router) -> axum::Router) -> Emulator {
        Self::start_wrapped_with_state(|router, _| wrap(router)).await
    }

    /// `start_wrapped` for a layer that also changes the tenant itself (another writer).
    pub async fn start_wrapped_with_state(
        wrap: impl FnOnce(axum::Router, &AppState) -> axum::Router,
    ) -> Emulator {
        let seed = fake_tenant::seed::load("default").expect("default seed");
        let tenant = fake_tenant::seed::build(&seed).expect("seed builds");
        let state = AppState::new(tenant);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        state.set_base_url(&url);
        let app = wrap(fake_tenant::app(state.clone()), &state);
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        let app0 = &seed["auth"]["applications"][0];
        Emulator {
            url,
            state,
            tenant_id: seed["tenant"]["id"].as_str().unwrap().to_owned(),
            client_id: app0["appId"].as_str().unwrap().to_owned(),
            client_secret: app0["clientSecrets"][0].as_str().unwrap().to_owned(),
            object_id: app0["servicePrincipalId"].as_str().unwrap().to_owned(),
            admin: reqwest::Client::new(),
        }
    }

    /// A provider configuration pointing every endpoint at the emulator.
    pub fn config(&self, auth: AuthMethod) -> ProviderConfig {
        let mut cloud = CloudEnvironment::Public.endpoints();
        cloud.login = self.url.clone();
        cloud.graph = self.url.clone();
        cloud.resource_manager = self.url.clone();
        ProviderConfig {
            tenant_id: Some(self.tenant_id.clone()),
            client_id: Some(self.client_id.clone()),
            subscription_id: None,
            auth,
            environment: CloudEnvironment::Public,
            cloud,
            terraform_version: "test".into(),
        }
    }

    /// Clients for `config` with a retry policy fast enough for tests.
    pub fn clients_for(&self, config: ProviderConfig) -> AzureClients {
        let source = breakglass::azure::auth::source_from_config(&config, &|_| None)
            .unwrap_or_else(|e| panic!("token source: {e}"));
        self.clients_with_source(config, source, fast_policy())
    }

    pub fn clients_with_source(
        &self,
        config: ProviderConfig,
        source: Box<dyn TokenSource>,
        policy: RetryPolicy,
    ) -> AzureClients {
        let endpoints = ServiceEndpoints {
            graph: config.cloud.graph.clone(),
            graph_scope: config.cloud.graph_scope.clone(),
            resource_manager: config.cloud.resource_manager.clone(),
            resource_manager_scope: config.cloud.arm_scope.clone(),
        };
        AzureClients::new(config, endpoints, source, policy, "breakglass-tests").unwrap()
    }

    /// Clients signed in with the seed app's client secret.
    pub fn clients(&self) -> AzureClients {
        self.clients_with_policy(fast_policy())
    }

    pub fn clients_with_policy(&self, policy: RetryPolicy) -> AzureClients {
        let config = self.config(AuthMethod::ClientSecret {
            secret: breakglass::provider::Secret::new(self.client_secret.clone()),
        });
        let source = breakglass::azure::auth::source_from_config(&config, &|_| None).unwrap();
        self.clients_with_source(config, source, policy)
    }

    pub async fn admin(&self, method: reqwest::Method, path: &str, body: Option<Json>) -> Json {
        let mut req = self
            .admin
            .request(method, format!("{}/_fake{path}", self.url));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("admin call");
        assert!(
            resp.status().is_success(),
            "admin {path}: {}",
            resp.status()
        );
        resp.json().await.unwrap_or(Json::Null)
    }

    pub async fn settings(&self, settings: Json) {
        self.admin(reqwest::Method::PUT, "/settings", Some(settings))
            .await;
    }

    pub async fn fault(&self, rule: Json) {
        self.admin(reqwest::Method::POST, "/faults", Some(rule))
            .await;
    }

    /// Request-log entries whose path matches the regex `path`.
    pub async fn requests(&self, method: &str, path: &str) -> Vec<Json> {
        let query = form_urlencoded::Serializer::new(String::new())
            .append_pair("method", method)
            .append_pair("path", path)
            .finish();
        let log = self
            .admin(reqwest::Method::GET, &format!("/requests?{query}"), None)
            .await;
        log.get("value")
            .or(Some(&log))
            .and_then(Json::as_array)
            .cloned()
            .unwrap_or_default()
    }

    /// Access tokens the emulator issued to `client_id` so far.
    pub async fn tokens_issued(&self, client_id: &str) -> u64 {
        let counts = self
            .admin(reqwest::Method::GET, "/auth/tokens-issued", None)
            .await;
        counts[client_id.to_ascii_lowercase()].as_u64().unwrap_or(0)
    }
}

pub fn fast_policy() -> RetryPolicy {
    RetryPolicy {
        base_delay: Duration::from_millis(20),
        max_delay: Duration::from_millis(200),
        max_attempts: 6,
        request_timeout: Duration::from_secs(10),
    }
}

pub fn deadline() -> Deadline {
    Deadline::after(Duration::from_secs(30))
}

/// Milliseconds between two request-log `receivedAt` timestamps (RFC 3339).
pub fn gap_ms(earlier: &Json, later: &Json) -> i128 {
    let parse = |e: &Json| {
        time::OffsetDateTime::parse(
            e["receivedAt"].as_str().expect("receivedAt"),
            &time::format_description::well_known::Rfc3339,
        )
        .expect("RFC 3339 receivedAt")
    };
    (parse(later) - parse(earlier)).whole_milliseconds()
}

/// A user body the emulator accepts, on the tenant's initial domain.
pub fn user_body(alias: &str, domain: &str, password: &str) -> Json {
    json!({
        "accountEnabled": true,
        "displayName": format!("Break glass {alias}"),
        "mailNickname": alias,
        "userPrincipalName": format!("{alias}@{domain}"),
        "passwordProfile": {"password": password, "forceChangePasswordNextSignIn": false},
    })
}
