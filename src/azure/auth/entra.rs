//! The Microsoft identity platform token endpoint (`{login}/{tenant}/oauth2/v2.0/token`) with
//! the client-credentials grant: a client secret, or a client assertion, which is either a JWT
//! we sign with the app's certificate or an OIDC token a CI system issued us (workload identity
//! federation; Entra then checks issuer, subject and audience against the app's federated
//! credential).

use std::time::Duration;

use async_trait::async_trait;
use reqwest::Method;
use serde_json::Value as Json;

use super::{AccessToken, ClientCertificate, TokenSource};
use crate::azure::error::{AuthError, AuthMethodKind, AzureError, Service};
use crate::azure::http::{ApiRequest, Body, HttpPipeline};
use crate::azure::retry::Deadline;

const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// The audience Entra expects in federated tokens (documented default for federated
/// identity credentials); CI token endpoints need it spelled out.
const FEDERATION_AUDIENCE: &str = "api://AzureADTokenExchange";

/// Who we authenticate as, and where.
#[derive(Debug, Clone)]
pub struct EntraApp {
    pub login_endpoint: String,
    pub tenant_id: String,
    pub client_id: String,
}

impl EntraApp {
    pub fn token_endpoint(&self) -> String {
        format!(
            "{}/{}/oauth2/v2.0/token",
            self.login_endpoint.trim_end_matches('/'),
            self.tenant_id
        )
    }

    fn describe(&self) -> String {
        format!(
            "client_id {} in tenant {} at {}",
            self.client_id, self.tenant_id, self.login_endpoint
        )
    }

    async fn request_token(
        &self,
        method: AuthMethodKind,
        scope: &str,
        credential: Vec<(&'static str, String)>,
        http: &HttpPipeline,
        deadline: &Deadline,
    ) -> Result<AccessToken, AzureError> {
        let mut form = vec![
            ("grant_type", "client_credentials".to_owned()),
            ("client_id", self.client_id.clone()),
            ("scope", scope.to_owned()),
        ];
        form.extend(credential);
        let mut req = ApiRequest::new(Service::Login, Method::POST, self.token_endpoint());
        req.body = Body::Form(form);
        req.log_response_body = false;
        let resp = http.execute(&req, deadline).await?;
        let body = resp.body.unwrap_or(Json::Null);
        if resp.status == 200 {
            let token = body["access_token"].as_str().filter(|t| !t.is_empty());
            let lifetime = super::json_seconds(body.get("expires_in"));
            return match (token, lifetime) {
                (Some(t), Some(secs)) => Ok(AccessToken::new(t.to_owned(), Duration::from_secs(secs))),
                _ => Err(AuthError {
                    method,
                    attempted: self.describe(),
                    problem: "the token endpoint answered 200 without access_token/expires_in".into(),
                    remedy: "Check login_endpoint: it must point at a Microsoft identity platform (v2.0) endpoint.".into(),
                    code: None,
                }
                .into()),
            };
        }
        Err(aadsts_error(method, self.describe(), resp.status, &body).into())
    }
}

/// Turns the token endpoint's error body (`error`, `error_description`, `error_codes`) into an
/// AuthError with advice for the AADSTS codes users hit most.
fn aadsts_error(method: AuthMethodKind, attempted: String, status: u16, body: &Json) -> AuthError {
    let code = body["error"].as_str().map(str::to_owned);
    // The description continues with "Trace ID: … Correlation ID: … Timestamp: …" lines.
    let description = body["error_description"]
        .as_str()
        .map(|d| d.lines().next().unwrap_or(d).trim().to_owned())
        .unwrap_or_else(|| format!("HTTP {status} without an error description"));
    let aadsts = body["error_codes"]
        .as_array()
        .and_then(|c| c.first())
        .and_then(Json::as_u64)
        .or_else(|| {
            let digits: String = description
                .strip_prefix("AADSTS")?
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            digits.parse().ok()
        });
    let remedy = match aadsts {
        Some(7000215) | Some(7000216) => "Check client_secret (ARM_CLIENT_SECRET): use the secret's value, not its id, from the app registration's \"Certificates & secrets\" page.",
        Some(7000222) => "The client secret has expired: create a new one on the app registration and update client_secret.",
        Some(700016) => "No application with this client_id exists in the tenant: check client_id and tenant_id (and environment for sovereign clouds).",
        Some(90002) | Some(900023) => "The tenant was not found: check tenant_id and environment.",
        Some(700027) | Some(700023) | Some(50012) => "The client assertion was rejected: upload this certificate's public part to the app registration, or check client_certificate_password and that the certificate has not expired.",
        Some(70021) | Some(700211) | Some(700212) | Some(700213) | Some(700024) => "The federated token was rejected: check the app's federated identity credential (issuer, subject and audience api://AzureADTokenExchange) against the token your CI issues.",
        _ => match method {
            AuthMethodKind::ClientSecret => "Check tenant_id, client_id and client_secret.",
            AuthMethodKind::ClientCertificate => "Check tenant_id, client_id and the certificate registered on the app.",
            _ => "Check tenant_id, client_id and the federated identity credential of the app.",
        },
    };
    AuthError {
        method,
        attempted,
        problem: description,
        remedy: remedy.to_owned(),
        code,
    }
}

/// `client_secret`.
pub struct ClientSecretSource {
    app: EntraApp,
    secret: String,
}

impl ClientSecretSource {
    pub fn new(app: EntraApp, secret: String) -> Self {
        crate::azure::redact::register_secret(&secret);
        ClientSecretSource { app, secret }
    }
}

#[async_trait]
impl TokenSource for ClientSecretSource {
    fn method(&self) -> AuthMethodKind {
        AuthMethodKind::ClientSecret
    }
    fn describe(&self) -> String {
        self.app.describe()
    }
    async fn fetch(
        &self,
        scope: &str,
        http: &HttpPipeline,
        deadline: &Deadline,
    ) -> Result<AccessToken, AzureError> {
        let credential = vec![("client_secret", self.secret.clone())];
        self.app
            .request_token(self.method(), scope, credential, http, deadline)
            .await
    }
}

/// Where a federated (OIDC) token comes from.
pub enum OidcToken {
    /// `oidc_token` / `ARM_OIDC_TOKEN`.
    Given(String),
    /// `oidc_token_file_path`: read again at every sign-in, because projected service-account
    /// tokens (AKS workload identity) are rotated while Terraform runs.
    File(std::path::PathBuf),
    /// GitHub Actions style: GET the request URL with the request token as bearer.
    Requested {
        request_url: String,
        request_token: String,
    },
}

impl OidcToken {
    fn file_error(&self, app: &EntraApp, path: &std::path::Path, problem: String) -> AzureError {
        AuthError {
            method: AuthMethodKind::Oidc,
            attempted: format!("{} with the token file {}", app.describe(), path.display()),
            problem,
            remedy: "Check oidc_token_file_path (ARM_OIDC_TOKEN_FILE_PATH / AZURE_FEDERATED_TOKEN_FILE).".into(),
            code: None,
        }
        .into()
    }

    /// The request to a CI OIDC endpoint, with the audience Entra expects appended.
    pub fn request_url(request_url: &str) -> String {
        let sep = if request_url.contains('?') { '&' } else { '?' };
        format!("{request_url}{sep}audience={FEDERATION_AUDIENCE}")
    }

    async fn obtain(
        &self,
        app: &EntraApp,
        http: &HttpPipeline,
        deadline: &Deadline,
    ) -> Result<String, AzureError> {
        let (request_url, request_token) = match self {
            OidcToken::Given(t) => return Ok(t.clone()),
            OidcToken::File(path) => {
                return match std::fs::read_to_string(path) {
                    Ok(t) if !t.trim().is_empty() => {
                        crate::azure::redact::register_secret(t.trim());
                        Ok(t.trim().to_owned())
                    }
                    Ok(_) => Err(self.file_error(app, path, "the file is empty".into())),
                    Err(e) => Err(self.file_error(app, path, format!("reading it failed ({e})"))),
                }
            }
            OidcToken::Requested {
                request_url,
                request_token,
            } => (request_url, request_token),
        };
        let url = Self::request_url(request_url);
        let mut req = ApiRequest::new(Service::OidcIssuer, Method::GET, url.clone());
        req.headers
            .push(("Authorization", format!("Bearer {request_token}")));
        req.log_response_body = false;
        let failed = |problem: String| -> AzureError {
            AuthError {
                method: AuthMethodKind::Oidc,
                attempted: format!("{} with a token requested from {request_url}", app.describe()),
                problem,
                remedy: "Check oidc_request_url and oidc_request_token (ARM_OIDC_REQUEST_URL / ARM_OIDC_REQUEST_TOKEN, or ACTIONS_ID_TOKEN_REQUEST_URL / ACTIONS_ID_TOKEN_REQUEST_TOKEN on GitHub Actions with `permissions: id-token: write`).".into(),
                code: None,
            }
            .into()
        };
        let resp = http.execute(&req, deadline).await?;
        if resp.status != 200 {
            return Err(failed(format!(
                "the OIDC request endpoint answered HTTP {}",
                resp.status
            )));
        }
        let body = resp.body.unwrap_or(Json::Null);
        // GitHub answers {"value": …}; Azure DevOps' OIDC endpoint {"oidcToken": …}.
        let token = body["value"]
            .as_str()
            .or_else(|| body["oidcToken"].as_str())
            .filter(|t| !t.is_empty());
        match token {
            Some(t) => {
                crate::azure::redact::register_secret(t);
                Ok(t.to_owned())
            }
            None => Err(failed(
                "the OIDC request endpoint's answer holds no token".into(),
            )),
        }
    }
}

/// Which JWT stands in for a secret.
pub enum Assertion {
    Certificate(Box<ClientCertificate>),
    Oidc(OidcToken),
}

/// `client_assertion`: a certificate-signed JWT or a federated OIDC token.
pub struct ClientAssertionSource {
    app: EntraApp,
    assertion: Assertion,
}

impl ClientAssertionSource {
    pub fn certificate(app: EntraApp, certificate: ClientCertificate) -> Self {
        ClientAssertionSource {
            app,
            assertion: Assertion::Certificate(Box::new(certificate)),
        }
    }
    pub fn oidc(app: EntraApp, token: OidcToken) -> Self {
        match &token {
            OidcToken::Given(t) => crate::azure::redact::register_secret(t),
            OidcToken::Requested { request_token, .. } => {
                crate::azure::redact::register_secret(request_token)
            }
            OidcToken::File(_) => {}
        }
        ClientAssertionSource {
            app,
            assertion: Assertion::Oidc(token),
        }
    }
}

#[async_trait]
impl TokenSource for ClientAssertionSource {
    fn method(&self) -> AuthMethodKind {
        match self.assertion {
            Assertion::Certificate(_) => AuthMethodKind::ClientCertificate,
            Assertion::Oidc(_) => AuthMethodKind::Oidc,
        }
    }
    fn describe(&self) -> String {
        match &self.assertion {
            Assertion::Certificate(c) => format!(
                "{} with certificate {} (x5t#S256 {})",
                self.app.describe(),
                c.subject(),
                c.thumbprint_s256()
            ),
            Assertion::Oidc(OidcToken::Given(_)) => {
                format!("{} with a given OIDC token", self.app.describe())
            }
            Assertion::Oidc(OidcToken::File(path)) => format!(
                "{} with the OIDC token in {}",
                self.app.describe(),
                path.display()
            ),
            Assertion::Oidc(OidcToken::Requested { request_url, .. }) => format!(
                "{} with an OIDC token requested from {request_url}",
                self.app.describe()
            ),
        }
    }
    async fn fetch(
        &self,
        scope: &str,
        http: &HttpPipeline,
        deadline: &Deadline,
    ) -> Result<AccessToken, AzureError> {
        let jwt = match &self.assertion {
            Assertion::Certificate(c) => c
                .assertion(&self.app.client_id, &self.app.token_endpoint())
                .map_err(|problem| AuthError {
                    method: self.method(),
                    attempted: self.describe(),
                    problem,
                    remedy: "Check the client certificate: it must hold an RSA private key.".into(),
                    code: None,
                })?,
            Assertion::Oidc(t) => t.obtain(&self.app, http, deadline).await?,
        };
        crate::azure::redact::register_secret(&jwt);
        let credential = vec![
            ("client_assertion_type", JWT_BEARER.to_owned()),
            ("client_assertion", jwt),
        ];
        self.app
            .request_token(self.method(), scope, credential, http, deadline)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn ci_request_url_gets_the_federation_audience() {
        assert_eq!(
            OidcToken::request_url("https://ci.example/token?api-version=2.0"),
            "https://ci.example/token?api-version=2.0&audience=api://AzureADTokenExchange"
        );
        assert_eq!(
            OidcToken::request_url("https://ci.example/token"),
            "https://ci.example/token?audience=api://AzureADTokenExchange"
        );
    }

    #[test]
    fn aadsts_codes_get_specific_advice() {
        let body = json!({
            "error": "invalid_client",
            "error_description": "AADSTS7000215: Invalid client secret provided.\r\nTrace ID: 1\r\nCorrelation ID: 2",
            "error_codes": [7000215]
        });
        let e = aadsts_error(
            AuthMethodKind::ClientSecret,
            "client_id x".into(),
            401,
            &body,
        );
        assert_eq!(e.problem, "AADSTS7000215: Invalid client secret provided.");
        assert_eq!(e.code.as_deref(), Some("invalid_client"));
        assert!(e.remedy.contains("secret's value"));
        let shown = e.to_string();
        assert!(shown.contains("client secret") && shown.contains("client_id x"));
    }
}
