//! Getting access tokens: one `TokenSource` per authentication method, behind a `TokenCache`
//! that keeps one token per audience (scope), refreshes it ahead of expiry, and lets only one
//! refresh per scope be in flight (concurrent callers wait for it instead of stampeding the
//! token endpoint).

mod certificate;
mod cli;
mod entra;
mod managed_identity;

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use base64::Engine;

use crate::azure::error::{AuthMethodKind, AzureError};
use crate::azure::http::HttpPipeline;
use crate::azure::retry::Deadline;

pub use certificate::ClientCertificate;
pub use cli::AzureCliSource;
pub use entra::{ClientAssertionSource, ClientSecretSource, EntraApp, OidcToken};
pub use managed_identity::{ManagedIdentityEndpoint, ManagedIdentitySource};

use crate::azure::config::{AuthMethod, CertificateSource, OidcTokenSource, ProviderConfig};
use crate::azure::error::AuthError;

/// The token source for the one authentication method `config` resolved to (the provider
/// block applies azurerm's precedence). `env` is only consulted for what the hosting platform
/// announces itself (App Service's `IDENTITY_ENDPOINT` / `IDENTITY_HEADER`). Certificates are
/// loaded here, so a bad file fails `configure` rather than the first resource.
pub fn source_from_config(
    config: &ProviderConfig,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Box<dyn TokenSource>, AuthError> {
    let app = || EntraApp {
        login_endpoint: config.cloud.login.clone(),
        tenant_id: config.tenant_id.clone().unwrap_or_default(),
        client_id: config.client_id.clone().unwrap_or_default(),
    };
    Ok(match &config.auth {
        AuthMethod::ClientSecret { secret } => {
            Box::new(ClientSecretSource::new(app(), secret.expose().to_owned()))
        }
        AuthMethod::ClientCertificate {
            certificate,
            password,
        } => {
            let fail = |problem: String| AuthError {
                method: AuthMethodKind::ClientCertificate,
                attempted: format!(
                    "client_id {} in tenant {}",
                    config.client_id.as_deref().unwrap_or("?"),
                    config.tenant_id.as_deref().unwrap_or("?")
                ),
                problem,
                remedy: "Set client_certificate (base64 PKCS#12 or PEM text) or \
                         client_certificate_path to a PKCS#12 (.pfx/.p12) or PEM file holding \
                         the RSA private key and its certificate, and client_certificate_password \
                         if it is encrypted."
                    .into(),
                code: None,
            };
            let bytes = match certificate {
                CertificateSource::File(path) => std::fs::read(path)
                    .map_err(|e| fail(format!("reading {} failed ({e})", path.display())))?,
                CertificateSource::Inline(text) => inline_certificate(text.expose())
                    .map_err(|e| fail(format!("client_certificate {e}")))?,
            };
            let cert = ClientCertificate::load(&bytes, password.as_ref().map(|p| p.expose()))
                .map_err(fail)?;
            Box::new(ClientAssertionSource::certificate(app(), cert))
        }
        AuthMethod::Oidc { token } => {
            let token = match token {
                OidcTokenSource::Token(t) => OidcToken::Given(t.expose().to_owned()),
                OidcTokenSource::TokenFile(path) => OidcToken::File(path.clone()),
                OidcTokenSource::Request { url, bearer } => OidcToken::Requested {
                    request_url: url.clone(),
                    request_token: bearer.expose().to_owned(),
                },
            };
            Box::new(ClientAssertionSource::oidc(app(), token))
        }
        AuthMethod::ManagedIdentity { endpoint } => Box::new(ManagedIdentitySource::from_env(
            env,
            endpoint.clone(),
            config.client_id.clone(),
        )),
        AuthMethod::AzureCli => Box::new(AzureCliSource::new("az", config.tenant_id.clone())),
    })
}

/// `client_certificate` holds PEM text as is, or base64 of a PKCS#12 archive or PEM file.
fn inline_certificate(text: &str) -> Result<Vec<u8>, String> {
    if text.trim_start().starts_with("-----BEGIN") {
        return Ok(text.as_bytes().to_vec());
    }
    let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    base64::engine::general_purpose::STANDARD
        .decode(compact)
        .map_err(|_| "is neither PEM text nor base64".to_owned())
}

/// An access token. `Debug` never shows it.
#[derive(Clone)]
pub struct AccessToken {
    secret: Arc<str>,
    pub expires_at: Instant,
    pub lifetime: Duration,
}

impl AccessToken {
    pub fn new(secret: String, lifetime: Duration) -> Self {
        crate::azure::redact::register_secret(&secret);
        AccessToken {
            secret: secret.into(),
            expires_at: Instant::now() + lifetime,
            lifetime,
        }
    }

    pub fn secret(&self) -> &str {
        &self.secret
    }

    /// Refresh a little before expiry so no request goes out with a token that dies in
    /// flight: five minutes for real tokens (60-90 min lifetimes), a fifth of the lifetime for
    /// short ones.
    pub fn needs_refresh(&self) -> bool {
        let margin = (self.lifetime / 5).min(Duration::from_secs(300));
        Instant::now() + margin >= self.expires_at
    }

    /// The token's claims. Tokens are opaque to clients in principle, but Entra's are JWTs and
    /// `oid`/`tid`/`appid` are the documented way to learn who we authenticated as.
    pub fn claims(&self) -> Option<serde_json::Value> {
        let payload = self.secret.split('.').nth(1)?;
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload.trim_end_matches('='))
            .ok()?;
        serde_json::from_slice(&bytes).ok()
    }
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessToken")
            .field("secret", &crate::azure::redact::REDACTED)
            .field("lifetime", &self.lifetime)
            .finish()
    }
}

/// One authentication method.
#[async_trait]
pub trait TokenSource: Send + Sync {
    fn method(&self) -> AuthMethodKind;
    /// What this source uses, for error messages and logs: ids and endpoints, never secrets.
    fn describe(&self) -> String;
    /// Asks for a new token for `scope` (e.g. `https://graph.microsoft.com/.default`).
    async fn fetch(
        &self,
        scope: &str,
        http: &HttpPipeline,
        deadline: &Deadline,
    ) -> Result<AccessToken, AzureError>;
}

type Slot = Arc<tokio::sync::Mutex<Option<AccessToken>>>;

pub struct TokenCache {
    source: Box<dyn TokenSource>,
    http: HttpPipeline,
    slots: Mutex<HashMap<String, Slot>>,
    fetches: AtomicU64,
}

impl TokenCache {
    pub fn new(source: Box<dyn TokenSource>, http: HttpPipeline) -> Self {
        TokenCache {
            source,
            http,
            slots: Mutex::new(HashMap::new()),
            fetches: AtomicU64::new(0),
        }
    }

    pub fn method(&self) -> AuthMethodKind {
        self.source.method()
    }

    pub fn describe(&self) -> String {
        self.source.describe()
    }

    /// How many tokens were requested from the source so far.
    pub fn fetch_count(&self) -> u64 {
        self.fetches.load(Ordering::Relaxed)
    }

    /// A valid token for `scope`, from the cache when it is not close to expiry.
    pub async fn token(&self, scope: &str, deadline: &Deadline) -> Result<AccessToken, AzureError> {
        let slot = self.slot(scope);
        // Holding the slot's async lock across the fetch is what makes the refresh single-flight.
        let mut cached = slot.lock().await;
        if let Some(token) = cached.as_ref().filter(|t| !t.needs_refresh()) {
            return Ok(token.clone());
        }
        self.fetches.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(method = %self.source.method(), scope, "requesting an access token");
        let token = self
            .source
            .fetch(scope, &self.http, deadline)
            .await
            .map_err(|e| self.as_auth_error(e))?;
        tracing::debug!(
            method = %self.source.method(),
            scope,
            lifetime_s = token.lifetime.as_secs(),
            "access token obtained"
        );
        *cached = Some(token.clone());
        Ok(token)
    }

    /// Whatever stopped the sign-in (an unreachable endpoint, a deadline), reported as a
    /// failure of this authentication method so the diagnostic says what was being tried.
    fn as_auth_error(&self, e: AzureError) -> AzureError {
        match e {
            AzureError::Auth(_) => e,
            other => AuthError {
                method: self.source.method(),
                attempted: self.source.describe(),
                problem: other.to_string(),
                remedy: String::new(),
                code: None,
            }
            .into(),
        }
    }

    /// Forgets the cached token for `scope` (after the service rejected it).
    pub async fn invalidate(&self, scope: &str) {
        *self.slot(scope).lock().await = None;
    }

    fn slot(&self, scope: &str) -> Slot {
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        slots.entry(scope.to_owned()).or_default().clone()
    }
}

impl crate::azure::http::BearerTokens for TokenCache {
    fn bearer<'a>(
        &'a self,
        scope: &'a str,
        deadline: &'a Deadline,
    ) -> futures::future::BoxFuture<'a, Result<Arc<str>, AzureError>> {
        Box::pin(async move { self.token(scope, deadline).await.map(|t| t.secret) })
    }

    fn forget<'a>(&'a self, scope: &'a str) -> futures::future::BoxFuture<'a, ()> {
        Box::pin(self.invalidate(scope))
    }
}

/// `https://graph.microsoft.com/.default` → `https://graph.microsoft.com`: managed identity
/// endpoints and the Azure CLI take a resource, not a v2 scope.
pub(crate) fn scope_to_resource(scope: &str) -> &str {
    scope.strip_suffix("/.default").unwrap_or(scope)
}

/// Seconds from a JSON number or a numeric string (IMDS sends `"3599"`).
pub(crate) fn json_seconds(v: Option<&serde_json::Value>) -> Option<u64> {
    match v? {
        serde_json::Value::Number(n) => n.as_u64(),
        serde_json::Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// Lifetime from an absolute `expires_on` (Unix seconds).
pub(crate) fn lifetime_until(expires_on: u64) -> Duration {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    Duration::from_secs(expires_on.saturating_sub(now))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_tokens_refresh_at_a_fifth_of_their_lifetime() {
        let t = AccessToken {
            secret: "x".into(),
            expires_at: Instant::now() + Duration::from_secs(10),
            lifetime: Duration::from_secs(10),
        };
        assert!(!t.needs_refresh());
        let t = AccessToken {
            expires_at: Instant::now() + Duration::from_secs(1),
            ..t
        };
        assert!(t.needs_refresh());
    }

    #[test]
    fn debug_never_prints_the_token() {
        let t = AccessToken {
            secret: "eyJ.secret.sig".into(),
            expires_at: Instant::now(),
            lifetime: Duration::ZERO,
        };
        assert!(!format!("{t:?}").contains("secret.sig"));
    }

    #[test]
    fn scopes_map_to_resources() {
        assert_eq!(
            scope_to_resource("https://graph.microsoft.com/.default"),
            "https://graph.microsoft.com"
        );
    }
}
