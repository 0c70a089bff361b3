//! Typed errors of the Azure client layer. Resources match on them (`is_not_found`, `code`) to
//! choose a diagnostic; `Display` is written to be used verbatim as a diagnostic detail, so it
//! names the service, the call, the service's own error code and the ids support will ask for.
//! Nothing in here ever holds a credential.

use std::fmt;
use std::time::Duration;

/// Which remote party answered (or failed to).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    Graph,
    ResourceManager,
    /// The Entra token endpoint (`login.microsoftonline.com` or a sovereign equivalent).
    Login,
    /// IMDS or the App Service / Functions identity endpoint.
    ManagedIdentity,
    /// A CI system's OIDC token endpoint (GitHub Actions style request URL).
    OidcIssuer,
}

impl fmt::Display for Service {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Service::Graph => "Microsoft Graph",
            Service::ResourceManager => "Azure Resource Manager",
            Service::Login => "the Microsoft Entra token endpoint",
            Service::ManagedIdentity => "the managed identity endpoint",
            Service::OidcIssuer => "the OIDC token request endpoint",
        })
    }
}

/// One entry of Graph's `error.details`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorDetail {
    pub code: String,
    pub message: String,
    pub target: Option<String>,
}

/// A non-success HTTP answer from Graph or ARM, with the service's error body decoded.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub service: Service,
    pub method: String,
    pub url: String,
    pub status: u16,
    /// Graph / ARM `error.code`, e.g. `Request_ResourceNotFound`, `ResourceGroupNotFound`.
    pub code: Option<String>,
    pub message: Option<String>,
    pub details: Vec<ErrorDetail>,
    /// Graph `innerError.request-id` (or the `request-id` / `x-ms-request-id` header).
    pub request_id: Option<String>,
    /// The id we sent as `client-request-id`, echoed back by the service.
    pub client_request_id: Option<String>,
    /// The wait the service asked for (`Retry-After`), when it sent one.
    pub retry_after: Option<Duration>,
}

impl ApiError {
    /// Builds the error from a response body in the Graph or the ARM shape. Both usually put
    /// `code`/`message` under `error` (only Graph has `innerError`), but some resource providers
    /// answer with them at the top level — Microsoft.Insights action groups declare
    /// `{"code","message"}` as their ErrorResponse — so that shape is read too.
    pub fn from_body(
        service: Service,
        method: &str,
        url: &str,
        status: u16,
        body: Option<&serde_json::Value>,
        header_request_id: Option<String>,
        client_request_id: Option<String>,
    ) -> Self {
        let error = body.and_then(|b| {
            b.get("error")
                .filter(|e| e.is_object())
                .or_else(|| b.get("code").map(|_| b))
        });
        let text = |v: Option<&serde_json::Value>| {
            v.and_then(serde_json::Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
        };
        let inner = error.and_then(|e| e.get("innerError").or_else(|| e.get("innererror")));
        let details = error
            .and_then(|e| e.get("details"))
            .and_then(serde_json::Value::as_array)
            .map(|ds| {
                ds.iter()
                    .map(|d| ErrorDetail {
                        code: text(d.get("code")).unwrap_or_default(),
                        message: text(d.get("message")).unwrap_or_default(),
                        target: text(d.get("target")),
                    })
                    .collect()
            })
            .unwrap_or_default();
        ApiError {
            service,
            method: method.to_owned(),
            url: url.to_owned(),
            status,
            code: text(error.and_then(|e| e.get("code"))),
            message: text(error.and_then(|e| e.get("message"))),
            details,
            request_id: text(inner.and_then(|i| i.get("request-id"))).or(header_request_id),
            client_request_id: text(inner.and_then(|i| i.get("client-request-id")))
                .or(client_request_id),
            retry_after: None,
        }
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} answered HTTP {}", self.service, self.status)?;
        if let Some(code) = &self.code {
            write!(f, " {code}")?;
        }
        if let Some(message) = &self.message {
            write!(f, ": {message}")?;
        }
        for d in &self.details {
            match &d.target {
                Some(t) => write!(f, " [{}: {} (target {t})]", d.code, d.message)?,
                None => write!(f, " [{}: {}]", d.code, d.message)?,
            }
        }
        write!(f, " ({} {}", self.method, self.url)?;
        if let Some(id) = &self.request_id {
            write!(f, ", request-id {id}")?;
        }
        if let Some(id) = &self.client_request_id {
            write!(f, ", client-request-id {id}")?;
        }
        f.write_str(")")
    }
}

/// The authentication method that was tried, as users name it in the provider block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethodKind {
    ClientSecret,
    ClientCertificate,
    Oidc,
    ManagedIdentity,
    AzureCli,
}

impl AuthMethodKind {
    /// The value reported by `breakglass_client_config.authentication_method`.
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMethodKind::ClientSecret => "client_secret",
            AuthMethodKind::ClientCertificate => "client_certificate",
            AuthMethodKind::Oidc => "oidc",
            AuthMethodKind::ManagedIdentity => "managed_identity",
            AuthMethodKind::AzureCli => "azure_cli",
        }
    }
}

impl fmt::Display for AuthMethodKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AuthMethodKind::ClientSecret => "client secret",
            AuthMethodKind::ClientCertificate => "client certificate",
            AuthMethodKind::Oidc => "OIDC federated token",
            AuthMethodKind::ManagedIdentity => "managed identity",
            AuthMethodKind::AzureCli => "Azure CLI",
        })
    }
}

/// Getting a token failed. Says which method, with what (ids and endpoints, never the
/// credential), what went wrong and what to change.
#[derive(Debug, Clone)]
pub struct AuthError {
    pub method: AuthMethodKind,
    /// e.g. "client_id 1111… in tenant 2222… at https://login.microsoftonline.com".
    pub attempted: String,
    /// The cause, e.g. `AADSTS7000215: Invalid client secret provided.`
    pub problem: String,
    /// What the user can do about it.
    pub remedy: String,
    /// The AADSTS error code (`invalid_client`, …) when the token endpoint sent one.
    pub code: Option<String>,
}

impl fmt::Display for AuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Authenticating with {} ({}) failed: {}",
            self.method, self.attempted, self.problem
        )?;
        if !self.remedy.is_empty() {
            write!(f, "\n\n{}", self.remedy)?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone)]
pub enum AzureError {
    Auth(Box<AuthError>),
    Api(Box<ApiError>),
    /// No HTTP answer at all: DNS, connect, TLS, reset connection, per-request timeout.
    Transport {
        service: Service,
        method: String,
        url: String,
        reason: String,
    },
    /// The operation's deadline (Terraform `timeouts`) ran out while retrying or waiting.
    Deadline {
        operation: String,
        budget: Duration,
        attempts: u32,
        last: Option<Box<AzureError>>,
    },
    /// Another writer kept replacing a shared object while we changed it (a read-modify-write
    /// whose result was overwritten every time we read it back).
    Contended {
        service: Service,
        /// The object, e.g. "conditional-access policy 1234…".
        object: String,
        /// How often our change was replaced.
        replaced: u32,
    },
    /// A 2xx answer we could not make sense of.
    InvalidResponse {
        service: Service,
        method: String,
        url: String,
        reason: String,
    },
}

impl AzureError {
    pub fn status(&self) -> Option<u16> {
        match self {
            AzureError::Api(e) => Some(e.status),
            AzureError::Deadline { last: Some(l), .. } => l.status(),
            _ => None,
        }
    }

    /// The Graph / ARM `error.code`.
    pub fn code(&self) -> Option<&str> {
        match self {
            AzureError::Api(e) => e.code.as_deref(),
            AzureError::Auth(e) => e.code.as_deref(),
            _ => None,
        }
    }

    pub fn is_not_found(&self) -> bool {
        matches!(self, AzureError::Api(e) if e.status == 404)
    }

    /// A failure worth trying again after a while: a status the services document as
    /// transient (429, 500, 502, 503, 504), or no answer at all.
    pub fn is_transient(&self) -> bool {
        match self {
            AzureError::Api(e) => crate::azure::retry::is_retryable_status(e.status),
            AzureError::Transport { .. } => true,
            _ => false,
        }
    }

    /// Whether the request may have taken effect even though it failed: a 5xx or a lost answer
    /// (a 429 was refused before any processing).
    pub fn is_ambiguous(&self) -> bool {
        match self {
            AzureError::Api(e) => e.status >= 500,
            AzureError::Transport { .. } => true,
            _ => false,
        }
    }

    /// The wait the service asked for with its answer (`Retry-After`).
    pub fn retry_after(&self) -> Option<Duration> {
        self.api().and_then(|e| e.retry_after)
    }

    pub fn api(&self) -> Option<&ApiError> {
        match self {
            AzureError::Api(e) => Some(e),
            _ => None,
        }
    }
}

impl fmt::Display for AzureError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AzureError::Auth(e) => e.fmt(f),
            AzureError::Api(e) => e.fmt(f),
            AzureError::Transport {
                service,
                method,
                url,
                reason,
            } => write!(
                f,
                "Could not reach {service} ({method} {url}): {reason}. Check the endpoint \
                 settings and the network path (proxy, firewall) to it."
            ),
            AzureError::Deadline {
                operation,
                budget,
                attempts,
                last,
            } => {
                write!(
                    f,
                    "{operation} did not complete within its {}s deadline ({attempts} attempt{}).",
                    budget.as_secs_f64().round(),
                    if *attempts == 1 { "" } else { "s" }
                )?;
                if let Some(last) = last {
                    write!(f, " Last error: {last}")?;
                }
                f.write_str(
                    " Raise the timeout in the resource's `timeouts` block if the service is slow.",
                )
            }
            AzureError::InvalidResponse {
                service,
                method,
                url,
                reason,
            } => write!(
                f,
                "{service} sent an unexpected answer to {method} {url}: {reason}"
            ),
            AzureError::Contended {
                service,
                object,
                replaced,
            } => write!(
                f,
                "Another writer replaced {object} {replaced} times in a row with a version \
                 lacking this change ({service} offers no If-Match to prevent it). Nothing of \
                 anyone else's was removed; apply again once the other writer has finished."
            ),
        }
    }
}

impl std::error::Error for AzureError {}

impl From<AuthError> for AzureError {
    fn from(e: AuthError) -> Self {
        AzureError::Auth(Box::new(e))
    }
}

impl From<ApiError> for AzureError {
    fn from(e: ApiError) -> Self {
        AzureError::Api(Box::new(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(body: serde_json::Value) -> ApiError {
        ApiError::from_body(
            Service::ResourceManager,
            "PUT",
            "https://arm/x",
            400,
            Some(&body),
            None,
            None,
        )
    }

    #[test]
    fn reads_code_and_message_under_error() {
        let e = parse(json!({"error": {"code": "InvalidRequestContent", "message": "bad body"}}));
        assert_eq!(e.code.as_deref(), Some("InvalidRequestContent"));
        assert_eq!(e.message.as_deref(), Some("bad body"));
    }

    #[test]
    fn reads_the_top_level_shape_action_groups_use() {
        let e = parse(json!({"code": "GroupShortNameIsTooLong", "message": "too long"}));
        assert_eq!(e.code.as_deref(), Some("GroupShortNameIsTooLong"));
        assert_eq!(e.message.as_deref(), Some("too long"));
        assert!(
            e.to_string().contains("GroupShortNameIsTooLong: too long"),
            "{e}"
        );
    }
}
