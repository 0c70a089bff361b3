//! What the client layer is built from: the provider's resolved configuration (tenant,
//! client, cloud endpoints, exactly one authentication method) and the `Secret` wrapper every
//! credential travels in. `provider::config` resolves the `provider` block and environment
//! into these; nothing here knows Terraform.

use std::fmt;
use std::path::PathBuf;

use crate::azure::cloud::{CloudEndpoints, CloudEnvironment};
use crate::logging;

/// A credential. It cannot be printed: `Debug` and `Display` show `[redacted]`, and creating
/// one registers the value with the logger so it is masked even if it ends up inside some
/// other string (an error body, a URL).
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        let value = value.into();
        logging::register_secret(&value);
        Secret(value)
    }

    /// The credential itself, for the one place that sends it (a token request).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(logging::REDACTED)
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(logging::REDACTED)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderConfig {
    /// Entra tenant id. Always set for client secret, certificate and OIDC sign-in; may be
    /// `None` for managed identity and Azure CLI, whose token sources know their tenant.
    pub tenant_id: Option<String>,
    /// Application (client) id. Always set for client secret, certificate and OIDC; for
    /// managed identity it selects a user-assigned identity; unused by Azure CLI.
    pub client_id: Option<String>,
    pub subscription_id: Option<String>,
    pub auth: AuthMethod,
    pub environment: CloudEnvironment,
    /// The cloud's endpoints with any overrides applied; scopes are always the cloud's.
    pub cloud: CloudEndpoints,
    /// As reported by Terraform in ConfigureProvider, for the User-Agent.
    pub terraform_version: String,
}

impl ProviderConfig {
    /// `terraform-provider-breakglass/0.1.0 terraform/1.11.4`, sent on every request so tenant
    /// audit logs show which tool made a change.
    pub fn user_agent(&self) -> String {
        format!(
            "terraform-provider-breakglass/{} terraform/{}",
            env!("CARGO_PKG_VERSION"),
            self.terraform_version
        )
    }
}

/// How the provider obtains tokens. Exactly one is chosen per configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthMethod {
    /// OAuth client credentials with a client secret.
    ClientSecret { secret: Secret },
    /// OAuth client credentials with a certificate-signed client assertion.
    ClientCertificate {
        certificate: CertificateSource,
        password: Option<Secret>,
    },
    /// Workload identity federation: a CI-issued OIDC token used as the client assertion.
    Oidc { token: OidcTokenSource },
    /// The managed identity of the host. `endpoint` overrides the instance metadata service.
    ManagedIdentity { endpoint: Option<String> },
    /// The account signed in to `az`.
    AzureCli,
}

impl AuthMethod {
    /// Human name for messages ("client secret authentication needs …").
    pub fn label(&self) -> &'static str {
        match self {
            AuthMethod::ClientSecret { .. } => "client secret",
            AuthMethod::ClientCertificate { .. } => "client certificate",
            AuthMethod::Oidc { .. } => "OIDC",
            AuthMethod::ManagedIdentity { .. } => "managed identity",
            AuthMethod::AzureCli => "Azure CLI",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CertificateSource {
    /// PEM text or base64 of a PKCS#12 bundle / PEM, as given in `client_certificate`.
    Inline(Secret),
    /// A file to read at sign-in.
    File(PathBuf),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OidcTokenSource {
    Token(Secret),
    /// Re-read at every sign-in: projected service-account tokens rotate while Terraform runs.
    TokenFile(PathBuf),
    /// GitHub Actions style: GET `url` with `Authorization: Bearer <bearer>`, read `value`.
    Request {
        url: String,
        bearer: Secret,
    },
}
