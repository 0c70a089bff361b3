//! The token endpoint (`/{tenant}/oauth2/v2.0/token`), the managed-identity endpoints, the
//! emulated CI OIDC issuer, and the bearer checks every Graph / ARM call goes through.
//!
//! Credential flows follow the Microsoft identity platform documents: client credentials with
//! a shared secret, with a certificate-signed client assertion (PS256 or RS256, `aud` = token
//! endpoint, `iss` = `sub` = client id, `x5t#S256` / `x5t` naming the certificate — "Microsoft
//! identity platform application authentication certificate credentials"), and with a
//! federated (workload identity) assertion matched against the app's federated identity
//! credentials. Failures answer with the AADSTS JSON shape Entra uses.
//!
//! Discovery, as MSAL reads it before its first token request: the OpenID Connect metadata
//! document `/{tenant}/v2.0/.well-known/openid-configuration` and its `jwks_uri` ("OpenID
//! Connect on the Microsoft identity platform"), and instance discovery
//! `/common/discovery/instance?api-version=1.1&authorization_endpoint=…` (MSAL.NET "Custom
//! authority aliases", MSAL Java wiki "Instance Discovery"). Every URL in them is built from
//! the public base URL (`AppState::base_url`).

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::{Path, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use rsa::pkcs8::DecodePublicKey;
use rsa::RsaPublicKey;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use crate::error::{ArmError, GraphError};
use crate::jwt::{self, UnverifiedJwt};
use crate::state::Tenant;
use crate::AppState;

/// Resources whose tokens Graph accepts (public and sovereign clouds; the emulator serves them
/// all on one URL). `00000003-…` is Graph's well-known application id, which v1 tokens carry.
const GRAPH_RESOURCES: [&str; 4] = [
    "https://graph.microsoft.com",
    "https://graph.microsoft.us",
    "https://microsoftgraph.chinacloudapi.cn",
    "00000003-0000-0000-c000-000000000000",
];

/// Resources whose tokens ARM accepts.
const ARM_RESOURCES: [&str; 4] = [
    "https://management.azure.com",
    "https://management.core.windows.net",
    "https://management.usgovcloudapi.net",
    "https://management.chinacloudapi.cn",
];

/// `client_assertion_type` for both certificate and federated assertions (RFC 7523).
const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// Default access-token lifetime; Entra answers `expires_in: 3599` for app tokens.
const DEFAULT_TOKEN_LIFETIME_S: u64 = 3599;

/// Which API a token is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiFamily {
    Graph,
    Arm,
}

impl ApiFamily {
    /// Classifies a resource / audience string, ignoring a trailing slash and case.
    pub fn of_resource(resource: &str) -> Option<ApiFamily> {
        let normalized = resource.trim_end_matches('/').to_ascii_lowercase();
        if GRAPH_RESOURCES.contains(&normalized.as_str()) {
            Some(ApiFamily::Graph)
        } else if ARM_RESOURCES.contains(&normalized.as_str()) {
            Some(ApiFamily::Arm)
        } else {
            None
        }
    }
}

/// A principal tokens can be issued to: an app's service principal or a managed identity.
#[derive(Debug, Clone)]
pub struct Principal {
    pub display_name: String,
    /// Application (client) id.
    pub app_id: String,
    /// Service principal object id.
    pub object_id: String,
    pub app_roles: Vec<String>,
    pub directory_roles: Vec<String>,
}

/// An app registration with its credentials.
#[derive(Debug, Clone)]
pub struct Application {
    pub principal: Principal,
    pub client_secrets: Vec<String>,
    pub certificates: Vec<Certificate>,
    pub federated_credentials: Vec<FederatedCredential>,
}

/// A certificate registered on an app (`keyCredentials` in Graph terms).
#[derive(Debug, Clone)]
pub struct Certificate {
    pub pem: String,
    /// base64url SHA-1 of the DER certificate, as in a JWT `x5t` header.
    pub x5t: String,
    /// base64url SHA-256 of the DER certificate, as in `x5t#S256`.
    pub x5t_s256: String,
    public_key: RsaPublicKey,
}

impl Certificate {
    pub fn from_pem(pem: &str) -> Result<Certificate, String> {
        let (_, parsed) = x509_parser::pem::parse_x509_pem(pem.as_bytes())
            .map_err(|e| format!("not a PEM certificate: {e}"))?;
        let cert = parsed
            .parse_x509()
            .map_err(|e| format!("not an X.509 certificate: {e}"))?;
        let public_key = RsaPublicKey::from_public_key_der(cert.public_key().raw)
            .map_err(|e| format!("certificate key is not RSA: {e}"))?;
        let der = &parsed.contents;
        Ok(Certificate {
            pem: pem.to_owned(),
            x5t: URL_SAFE_NO_PAD.encode(sha1_digest(der)),
            x5t_s256: URL_SAFE_NO_PAD.encode(Sha256::digest(der)),
            public_key,
        })
    }

    /// Upper-case hex SHA-1, the "thumbprint" the portal and AADSTS messages show.
    pub fn thumbprint_hex(&self) -> String {
        URL_SAFE_NO_PAD
            .decode(&self.x5t)
            .unwrap_or_default()
            .iter()
            .map(|b| format!("{b:02X}"))
            .collect()
    }
}

fn sha1_digest(data: &[u8]) -> [u8; 20] {
    use sha1::Digest as _;
    sha1::Sha1::digest(data).into()
}

/// A federated identity credential: a trusted external issuer + subject + audiences.
#[derive(Debug, Clone)]
pub struct FederatedCredential {
    pub name: String,
    pub issuer: String,
    pub subject: String,
    pub audiences: Vec<String>,
}

impl FederatedCredential {
    fn from_json(v: &Value) -> Result<FederatedCredential, String> {
        let field = |name: &str| {
            v[name]
                .as_str()
                .map(str::to_owned)
                .ok_or_else(|| format!("federated identity credential needs string '{name}'"))
        };
        Ok(FederatedCredential {
            name: field("name")?,
            issuer: field("issuer")?,
            subject: field("subject")?,
            audiences: strings(&v["audiences"]),
        })
    }

    fn to_json(&self) -> Value {
        json!({"name": self.name, "issuer": self.issuer, "subject": self.subject, "audiences": self.audiences})
    }
}

/// The emulated CI OIDC issuer (GitHub Actions style), whose ID tokens apps can trust through
/// a federated identity credential.
#[derive(Debug, Clone, Default)]
pub struct CiOidcIssuer {
    pub issuer: String,
    /// The runner's request token (`ACTIONS_ID_TOKEN_REQUEST_TOKEN`).
    pub request_token: String,
    /// `sub` of issued ID tokens unless the setting `auth.ci_oidc_subject` overrides it.
    pub subject: String,
}

#[derive(Default)]
pub struct AuthState {
    pub applications: Vec<Application>,
    pub managed_identities: Vec<Principal>,
    /// Value the App Service identity endpoint expects in `X-IDENTITY-HEADER`.
    pub identity_header: String,
    pub ci_oidc: CiOidcIssuer,
    /// Access tokens issued, per client id, so tests can check that callers reuse tokens.
    pub tokens_issued: BTreeMap<String, u64>,
    /// Every JWT the emulator issued (access tokens, CI OIDC ID tokens) or was shown (client
    /// assertions), oldest first, at most [`TOKENS_SEEN_LIMIT`]: the strings a leak search
    /// must not find in a client's logs, state or plans.
    pub tokens_seen: Vec<String>,
}

/// How many JWTs [`AuthState::tokens_seen`] keeps (the oldest go first).
pub const TOKENS_SEEN_LIMIT: usize = 10_000;

impl AuthState {
    /// Remembers a JWT for [`AuthState::tokens_seen`].
    pub fn saw_token(&mut self, token: &str) {
        if self.tokens_seen.len() >= TOKENS_SEEN_LIMIT {
            self.tokens_seen.remove(0);
        }
        self.tokens_seen.push(token.to_owned());
    }
}

/// Who is calling, taken from a verified bearer token and put into the request's extensions by
/// `require_graph_token` / `require_arm_token`. Handlers that enforce permissions take
/// `axum::Extension<Caller>`.
#[derive(Debug, Clone, Default)]
pub struct Caller {
    /// Application (client) id of the calling app or managed identity.
    pub app_id: String,
    /// Object id of the service principal (or user) the token was issued to.
    pub object_id: String,
    /// Application permissions granted (Graph `roles` claim), e.g. `User.ReadWrite.All`.
    pub roles: Vec<String>,
    /// Ids of directory role definitions the principal holds (e.g. Privileged Role
    /// Administrator), used for the "privileged user" write protection.
    pub directory_roles: Vec<String>,
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|s| s.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn principal_from_json(v: &Value, id_key: &str, object_key: &str) -> Result<Principal, String> {
    let app_id = v[id_key]
        .as_str()
        .ok_or_else(|| format!("auth seed: principal without '{id_key}'"))?;
    let object_id = v[object_key]
        .as_str()
        .ok_or_else(|| format!("auth seed: principal '{app_id}' without '{object_key}'"))?;
    Ok(Principal {
        display_name: v["displayName"].as_str().unwrap_or(app_id).to_owned(),
        app_id: app_id.to_ascii_lowercase(),
        object_id: object_id.to_ascii_lowercase(),
        app_roles: strings(&v["appRoles"]),
        directory_roles: strings(&v["directoryRoles"]),
    })
}

impl AuthState {
    pub fn from_seed(seed: &Value, _tenant_id: &str) -> Result<Self, String> {
        let mut state = AuthState::default();
        for app in seed["applications"].as_array().into_iter().flatten() {
            let principal = principal_from_json(app, "appId", "servicePrincipalId")?;
            let certificates = strings(&app["certificates"])
                .iter()
                .map(|pem| Certificate::from_pem(pem))
                .collect::<Result<_, _>>()
                .map_err(|e| format!("auth seed: app '{}': {e}", principal.app_id))?;
            let federated_credentials = app["federatedIdentityCredentials"]
                .as_array()
                .into_iter()
                .flatten()
                .map(FederatedCredential::from_json)
                .collect::<Result<_, _>>()?;
            state.applications.push(Application {
                client_secrets: strings(&app["clientSecrets"]),
                principal,
                certificates,
                federated_credentials,
            });
        }
        for identity in seed["managedIdentities"].as_array().into_iter().flatten() {
            state.managed_identities.push(principal_from_json(
                identity,
                "clientId",
                "principalId",
            )?);
        }
        state.identity_header = seed["managedIdentityEndpoint"]["identityHeader"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let oidc = &seed["ciOidcIssuer"];
        state.ci_oidc = CiOidcIssuer {
            issuer: oidc["issuer"].as_str().unwrap_or_default().to_owned(),
            request_token: oidc["requestToken"].as_str().unwrap_or_default().to_owned(),
            subject: oidc["subject"].as_str().unwrap_or_default().to_owned(),
        };
        Ok(state)
    }

    /// The auth part of a seed that reproduces this state (issued-token counters excluded).
    pub fn dump(&self) -> Value {
        let applications: Vec<Value> = self
            .applications
            .iter()
            .map(|app| {
                json!({
                    "displayName": app.principal.display_name,
                    "appId": app.principal.app_id,
                    "servicePrincipalId": app.principal.object_id,
                    "clientSecrets": app.client_secrets,
                    "certificates": app.certificates.iter().map(|c| c.pem.clone()).collect::<Vec<_>>(),
                    "federatedIdentityCredentials": app.federated_credentials.iter().map(FederatedCredential::to_json).collect::<Vec<_>>(),
                    "appRoles": app.principal.app_roles,
                    "directoryRoles": app.principal.directory_roles,
                })
            })
            .collect();
        let identities: Vec<Value> = self
            .managed_identities
            .iter()
            .map(|mi| {
                json!({
                    "displayName": mi.display_name,
                    "clientId": mi.app_id,
                    "principalId": mi.object_id,
                    "appRoles": mi.app_roles,
                    "directoryRoles": mi.directory_roles,
                })
            })
            .collect();
        json!({
            "applications": applications,
            "managedIdentities": identities,
            "managedIdentityEndpoint": {"identityHeader": self.identity_header},
            "ciOidcIssuer": {
                "issuer": self.ci_oidc.issuer,
                "requestToken": self.ci_oidc.request_token,
                "subject": self.ci_oidc.subject,
            },
        })
    }

    pub fn application(&self, app_id: &str) -> Option<&Application> {
        self.applications
            .iter()
            .find(|a| a.principal.app_id.eq_ignore_ascii_case(app_id))
    }

    fn application_mut(&mut self, app_id: &str) -> Option<&mut Application> {
        self.applications
            .iter_mut()
            .find(|a| a.principal.app_id.eq_ignore_ascii_case(app_id))
    }

    /// The first application in the seed: the provider's own service principal, whose
    /// credentials the binary prints on its ready line.
    pub fn primary_application(&self) -> Option<&Application> {
        self.applications.first()
    }
}

// ---------------------------------------------------------------------------------------------
// AADSTS errors

/// An error from the token endpoint in Entra's shape. `description` is the text after the
/// `AADSTSnnnn: ` prefix; it never includes the presented credential.
#[derive(Debug)]
pub struct AadstsError {
    status: StatusCode,
    error: &'static str,
    code: u32,
    description: String,
}

impl AadstsError {
    fn new(
        status: StatusCode,
        error: &'static str,
        code: u32,
        description: impl Into<String>,
    ) -> Self {
        AadstsError {
            status,
            error,
            code,
            description: description.into(),
        }
    }

    fn missing_parameter(name: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            900144,
            format!("The request body must contain the following parameter: '{name}'."),
        )
    }

    fn assertion_time_range(now: i64, nbf: Option<i64>, exp: Option<i64>) -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            700024,
            format!(
                "Client assertion is not within its valid time range. Current time: {}, assertion valid from {}, expiry time of assertion {}. Review the documentation at https://learn.microsoft.com/entra/identity-platform/certificate-credentials .",
                iso_seconds(now),
                iso_seconds(nbf.unwrap_or(0)),
                iso_seconds(exp.unwrap_or(0))
            ),
        )
    }

    fn malformed_assertion() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            50027,
            "JWT token is invalid or malformed.",
        )
    }
}

fn iso_seconds(epoch: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(epoch)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

impl IntoResponse for AadstsError {
    fn into_response(self) -> Response {
        let now = time::OffsetDateTime::now_utc();
        let timestamp = format!(
            "{:04}-{:02}-{:02} {:02}:{:02}:{:02}Z",
            now.year(),
            u8::from(now.month()),
            now.day(),
            now.hour(),
            now.minute(),
            now.second()
        );
        let trace_id = uuid::Uuid::new_v4().to_string();
        let correlation_id = uuid::Uuid::new_v4().to_string();
        let body = json!({
            "error": self.error,
            "error_description": format!(
                "AADSTS{}: {}\r\nTrace ID: {trace_id}\r\nCorrelation ID: {correlation_id}\r\nTimestamp: {timestamp}",
                self.code, self.description
            ),
            "error_codes": [self.code],
            "timestamp": timestamp,
            "trace_id": trace_id,
            "correlation_id": correlation_id,
            "error_uri": format!("https://login.microsoftonline.com/error?code={}", self.code),
        });
        (self.status, Json(body)).into_response()
    }
}

// ---------------------------------------------------------------------------------------------
// Issuing tokens

fn now_epoch() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// A freshly minted access token.
struct IssuedToken {
    access_token: String,
    lifetime_s: u64,
    expires_on: i64,
    not_before: i64,
    resource: String,
}

/// Signs an access token for `principal` and counts it. `appidacr` records how the client
/// authenticated (0 managed identity / none, 1 secret, 2 certificate or assertion).
fn mint(tenant: &mut Tenant, principal: &Principal, resource: &str, appidacr: &str) -> IssuedToken {
    let lifetime_s = tenant
        .behaviour
        .setting_u64("auth.token_lifetime_s", DEFAULT_TOKEN_LIFETIME_S);
    let now = now_epoch();
    let expires_on = now + i64::try_from(lifetime_s).unwrap_or(i64::MAX / 2);
    let issuer = format!("https://sts.windows.net/{}/", tenant.tenant_id);
    let claims = json!({
        "aud": resource,
        "iss": issuer,
        "iat": now,
        "nbf": now,
        "exp": expires_on,
        "appid": principal.app_id,
        "appidacr": appidacr,
        "idp": issuer,
        "idtyp": "app",
        "oid": principal.object_id,
        "roles": principal.app_roles,
        "sub": principal.object_id,
        "tid": tenant.tenant_id,
        "uti": URL_SAFE_NO_PAD.encode(uuid::Uuid::new_v4().as_bytes()),
        "ver": "1.0",
        "wids": principal.directory_roles,
    });
    *tenant
        .auth
        .tokens_issued
        .entry(principal.app_id.clone())
        .or_default() += 1;
    let access_token = jwt::access_token_key().sign(&claims);
    tenant.auth.saw_token(&access_token);
    IssuedToken {
        access_token,
        lifetime_s,
        expires_on,
        not_before: now,
        resource: resource.to_owned(),
    }
}

/// The resource named by a client-credentials `scope` (`<resource>/.default`, exactly one).
fn resource_from_scope(scope: &str, tenant_name: &str) -> Result<(String, ApiFamily), AadstsError> {
    let scope = scope.trim();
    let invalid = || {
        AadstsError::new(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            1002012,
            format!("The provided value for scope {scope} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI)."),
        )
    };
    if scope.split_whitespace().count() != 1 {
        return Err(invalid());
    }
    let resource = scope.strip_suffix("/.default").ok_or_else(invalid)?;
    resource_family(resource, tenant_name).map(|family| (resource.to_owned(), family))
}

fn resource_family(resource: &str, tenant_name: &str) -> Result<ApiFamily, AadstsError> {
    ApiFamily::of_resource(resource).ok_or_else(|| {
        AadstsError::new(
            StatusCode::BAD_REQUEST,
            "invalid_resource",
            500011,
            format!("The resource principal named {resource} was not found in the tenant named {tenant_name}. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You might have sent your authentication request to the wrong tenant."),
        )
    })
}

fn token_response(issued: &IssuedToken) -> Value {
    json!({
        "token_type": "Bearer",
        "expires_in": issued.lifetime_s,
        "ext_expires_in": issued.lifetime_s,
        "access_token": issued.access_token,
    })
}

/// `POST /{tenant}/oauth2/v2.0/token`.
async fn token_endpoint(
    State(state): State<AppState>,
    Path(tenant_segment): Path<String>,
    body: Bytes,
) -> Response {
    let form: BTreeMap<String, String> = form_urlencoded::parse(&body).into_owned().collect();
    let base_url = state.base_url();
    let mut tenant = state.tenant();
    match client_credentials(&mut tenant, &tenant_segment, &form, &base_url) {
        Ok(issued) => Json(token_response(&issued)).into_response(),
        Err(e) => e.into_response(),
    }
}

fn client_credentials(
    tenant: &mut Tenant,
    tenant_segment: &str,
    form: &BTreeMap<String, String>,
    base_url: &str,
) -> Result<IssuedToken, AadstsError> {
    if !tenant_segment.eq_ignore_ascii_case(&tenant.tenant_id) {
        return Err(AadstsError::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            90002,
            format!("Tenant '{tenant_segment}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud. Check with your subscription administrator, this may happen if there are no active subscriptions for the tenant."),
        ));
    }
    let param = |name: &str| form.get(name).map(String::as_str).filter(|v| !v.is_empty());
    let grant_type =
        param("grant_type").ok_or_else(|| AadstsError::missing_parameter("grant_type"))?;
    if grant_type != "client_credentials" {
        return Err(AadstsError::new(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            70003,
            format!("The app requested an unsupported grant type '{grant_type}'."),
        ));
    }
    let client_id =
        param("client_id").ok_or_else(|| AadstsError::missing_parameter("client_id"))?;
    let scope = param("scope").ok_or_else(|| AadstsError::missing_parameter("scope"))?;
    let Some(app) = tenant.auth.application(client_id).cloned() else {
        return Err(AadstsError::new(
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            700016,
            format!("Application with identifier '{client_id}' was not found in the directory '{}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant.", tenant.display_name),
        ));
    };
    let (resource, _) = resource_from_scope(scope, &tenant.display_name)?;

    let appidacr = match (param("client_secret"), param("client_assertion")) {
        (Some(secret), _) => {
            if !app.client_secrets.iter().any(|s| s == secret) {
                return Err(AadstsError::new(
                    StatusCode::UNAUTHORIZED,
                    "invalid_client",
                    7000215,
                    format!("Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '{}'.", app.principal.app_id),
                ));
            }
            "1"
        }
        (None, Some(assertion)) => {
            tenant.auth.saw_token(assertion);
            if param("client_assertion_type") != Some(JWT_BEARER) {
                return Err(AadstsError::new(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    700022,
                    format!("The provided value for the input parameter 'client_assertion_type' is not valid. Expected '{JWT_BEARER}'."),
                ));
            }
            let accepted_audiences = [
                format!("{base_url}/{tenant_segment}/oauth2/v2.0/token"),
                format!("{base_url}/{}/oauth2/v2.0/token", tenant.tenant_id),
                format!("https://login.microsoftonline.com/{tenant_segment}/oauth2/v2.0/token"),
            ];
            verify_client_assertion(&app, assertion, &accepted_audiences, tenant.auth.ci_oidc.issuer.as_str())?;
            "2"
        }
        (None, None) => {
            return Err(AadstsError::new(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                7000218,
                "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
            ))
        }
    };
    Ok(mint(tenant, &app.principal, &resource, appidacr))
}

/// Checks a client assertion: a certificate-signed self-assertion (`iss` = client id) or a
/// federated token from a trusted external issuer.
fn verify_client_assertion(
    app: &Application,
    assertion: &str,
    accepted_audiences: &[String],
    ci_issuer: &str,
) -> Result<(), AadstsError> {
    let jwt = UnverifiedJwt::parse(assertion).ok_or_else(AadstsError::malformed_assertion)?;
    let issuer = jwt.claim_str("iss").unwrap_or_default();
    if issuer.eq_ignore_ascii_case(&app.principal.app_id) {
        verify_certificate_assertion(app, &jwt, accepted_audiences)
    } else {
        verify_federated_assertion(app, &jwt, ci_issuer)
    }
}

fn check_time_range(jwt: &UnverifiedJwt) -> Result<(), AadstsError> {
    let now = now_epoch();
    let (nbf, exp) = (jwt.claim_i64("nbf"), jwt.claim_i64("exp"));
    let expired = exp.is_none_or(|exp| exp <= now);
    let premature = nbf.is_some_and(|nbf| nbf > now);
    if expired || premature {
        return Err(AadstsError::assertion_time_range(now, nbf, exp));
    }
    Ok(())
}

fn verify_certificate_assertion(
    app: &Application,
    jwt: &UnverifiedJwt,
    accepted_audiences: &[String],
) -> Result<(), AadstsError> {
    // base64url in a JWS header has no padding (RFC 7515 §2), but MSAL Python pads its
    // thumbprints (`base64.urlsafe_b64encode`) and Entra accepts them: compare unpadded.
    let unpadded = |name: &str| jwt.header_str(name).map(|t| t.trim_end_matches('='));
    let (by_s256, by_sha1) = (unpadded("x5t#S256"), unpadded("x5t"));
    let certificate = app
        .certificates
        .iter()
        .find(|c| by_s256 == Some(c.x5t_s256.as_str()) || by_sha1 == Some(c.x5t.as_str()));
    let presented_thumbprint: String = by_sha1
        .and_then(|t| URL_SAFE_NO_PAD.decode(t).ok())
        .map(|bytes| bytes.iter().map(|b| format!("{b:02X}")).collect())
        .or_else(|| by_s256.map(str::to_owned))
        .unwrap_or_default();
    let signature_error = |reason: &str| {
        AadstsError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            700027,
            format!("Client assertion contains an invalid signature. [Reason - {reason}, Thumbprint of key used by client: '{presented_thumbprint}', Please visit the Azure Portal, Graph Explorer or directly use MS Graph to see configured keys for app Id '{}'.]", app.principal.app_id),
        )
    };
    let certificate = certificate.ok_or_else(|| signature_error("The key was not found."))?;
    // PS256 is what the document asks for, RS256 what older clients still send.
    if !jwt.verify_with(&certificate.public_key, &["PS256", "RS256"]) {
        return Err(signature_error(
            "The provided signature value did not match the expected signature value.",
        ));
    }
    if jwt.claim_str("sub").map(str::to_ascii_lowercase).as_deref()
        != Some(app.principal.app_id.as_str())
    {
        return Err(AadstsError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            700021,
            "Client assertion application identifier doesn't match 'client_id' parameter. Review the documentation at https://learn.microsoft.com/entra/identity-platform/certificate-credentials .",
        ));
    }
    let audience_ok = jwt.audiences().iter().any(|aud| {
        accepted_audiences
            .iter()
            .any(|a| a.eq_ignore_ascii_case(aud))
    });
    if !audience_ok {
        return Err(AadstsError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            700023,
            "Client assertion audience claim does not match Realm issuer. Review the documentation at https://learn.microsoft.com/entra/identity-platform/certificate-credentials .",
        ));
    }
    check_time_range(jwt)
}

fn verify_federated_assertion(
    app: &Application,
    jwt: &UnverifiedJwt,
    ci_issuer: &str,
) -> Result<(), AadstsError> {
    let issuer = jwt.claim_str("iss").unwrap_or_default();
    // The only external issuer whose keys the emulator knows is its own CI OIDC issuer; a
    // token from any other issuer cannot be validated, as Entra fails to fetch its keys.
    if issuer != ci_issuer || !jwt.verify(jwt::ci_oidc_key().public_key()) {
        return Err(AadstsError::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            50013,
            format!("Assertion failed signature validation. [Reason - The key was not found. Assertion Issuer: '{issuer}'.]"),
        ));
    }
    check_time_range(jwt)?;
    let subject = jwt.claim_str("sub").unwrap_or_default();
    let audiences = jwt.audiences();
    // Matching is exact and case-sensitive (Entra changed to case-sensitive matching in 2025).
    let matched = app.federated_credentials.iter().any(|fic| {
        fic.issuer == issuer
            && fic.subject == subject
            && audiences.iter().any(|aud| fic.audiences.contains(aud))
    });
    if !matched {
        return Err(AadstsError::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            70021,
            format!(
                "No matching federated identity record found for presented assertion. Assertion Issuer: '{issuer}'. Assertion Subject: '{subject}'. Assertion Audience: '{}'.",
                audiences.join(",")
            ),
        ));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Managed identity endpoints

fn identity_error(status: StatusCode, error: &str, description: &str) -> Response {
    (
        status,
        Json(json!({"error": error, "error_description": description})),
    )
        .into_response()
}

/// Why a managed-identity endpoint refused to issue a token.
enum IdentityFailure {
    /// The endpoint's own `invalid_request` answer (400) with this description.
    Endpoint(&'static str),
    /// Entra refused the resource.
    Token(AadstsError),
}

impl IntoResponse for IdentityFailure {
    fn into_response(self) -> Response {
        match self {
            IdentityFailure::Endpoint(description) => {
                identity_error(StatusCode::BAD_REQUEST, "invalid_request", description)
            }
            IdentityFailure::Token(e) => e.into_response(),
        }
    }
}

/// Picks the managed identity a request names (`client_id`, `object_id`/`principal_id`), or
/// the only one when none is named.
fn select_identity(auth: &AuthState, query: &BTreeMap<String, String>) -> Option<Principal> {
    let named = query.get("client_id").map(|id| (id, true)).or_else(|| {
        query
            .get("object_id")
            .or_else(|| query.get("principal_id"))
            .map(|id| (id, false))
    });
    let found = match named {
        Some((id, by_client_id)) => auth.managed_identities.iter().find(|mi| {
            let key = if by_client_id {
                &mi.app_id
            } else {
                &mi.object_id
            };
            key.eq_ignore_ascii_case(id)
        }),
        None if auth.managed_identities.len() == 1 => auth.managed_identities.first(),
        None => None,
    };
    found.cloned()
}

fn managed_identity_token(
    state: &AppState,
    query: &BTreeMap<String, String>,
) -> Result<(IssuedToken, String), IdentityFailure> {
    let Some(resource) = query.get("resource").filter(|r| !r.is_empty()) else {
        return Err(IdentityFailure::Endpoint(
            "Required query variable 'resource' is missing",
        ));
    };
    let mut tenant = state.tenant();
    let identity = select_identity(&tenant.auth, query)
        .ok_or(IdentityFailure::Endpoint("Identity not found"))?;
    let display_name = tenant.display_name.clone();
    resource_family(resource, &display_name).map_err(IdentityFailure::Token)?;
    let issued = mint(&mut tenant, &identity, resource, "0");
    Ok((issued, identity.app_id))
}

/// IMDS: `GET /metadata/identity/oauth2/token?api-version=2018-02-01&resource=…` with
/// `Metadata: true`. Numbers are strings in IMDS responses.
async fn imds_token(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<BTreeMap<String, String>>,
) -> Response {
    if headers.get("metadata").and_then(|v| v.to_str().ok()) != Some("true") {
        return identity_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Required metadata header not specified",
        );
    }
    if !query.contains_key("api-version") {
        return identity_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Required query variable 'api-version' is missing",
        );
    }
    match managed_identity_token(&state, &query) {
        Ok((issued, client_id)) => Json(json!({
            "access_token": issued.access_token,
            "client_id": client_id,
            "expires_in": issued.lifetime_s.to_string(),
            "expires_on": issued.expires_on.to_string(),
            "ext_expires_in": issued.lifetime_s.to_string(),
            "not_before": issued.not_before.to_string(),
            "resource": issued.resource,
            "token_type": "Bearer",
        }))
        .into_response(),
        Err(failure) => failure.into_response(),
    }
}

/// App Service / Functions identity endpoint (`IDENTITY_ENDPOINT`, api-version 2019-08-01),
/// authenticated by the `X-IDENTITY-HEADER` secret the platform injects.
async fn app_service_token(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<BTreeMap<String, String>>,
) -> Response {
    let expected = state.tenant().auth.identity_header.clone();
    match headers
        .get("x-identity-header")
        .and_then(|v| v.to_str().ok())
    {
        None => {
            return identity_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "Required header X-IDENTITY-HEADER not specified",
            )
        }
        Some(presented) if expected.is_empty() || presented != expected => {
            return identity_error(
                StatusCode::UNAUTHORIZED,
                "invalid_request",
                "X-IDENTITY-HEADER does not match",
            )
        }
        Some(_) => {}
    }
    match managed_identity_token(&state, &query) {
        Ok((issued, client_id)) => Json(json!({
            "access_token": issued.access_token,
            "expires_on": issued.expires_on.to_string(),
            "resource": issued.resource,
            "token_type": "Bearer",
            "client_id": client_id,
        }))
        .into_response(),
        Err(failure) => failure.into_response(),
    }
}

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/{tenant}/oauth2/v2.0/token", post(token_endpoint))
        .route(
            "/{tenant}/v2.0/.well-known/openid-configuration",
            get(openid_configuration),
        )
        .route("/{tenant}/discovery/v2.0/keys", get(signing_keys))
        .route("/{tenant}/discovery/instance", get(instance_discovery))
        .route("/metadata/identity/oauth2/token", get(imds_token))
        .route("/msi/token", get(app_service_token))
}

// ---------------------------------------------------------------------------------------------
// Discovery: OpenID Connect metadata, signing keys, instance discovery

/// The tenant a discovery path names, or AADSTS90002 as for the token endpoint. Discovery
/// documents are per tenant: the emulator has one, addressed by its id.
fn discovery_tenant(tenant: &Tenant, segment: &str) -> Result<String, AadstsError> {
    if segment.eq_ignore_ascii_case(&tenant.tenant_id) {
        return Ok(tenant.tenant_id.clone());
    }
    Err(AadstsError::new(
        StatusCode::BAD_REQUEST,
        "invalid_tenant",
        90002,
        format!("Tenant '{segment}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud. Check with your subscription administrator, this may happen if there are no active subscriptions for the tenant."),
    ))
}

/// `GET /{tenant}/v2.0/.well-known/openid-configuration`: the members of the v2.0 metadata
/// document ("OpenID Connect on the Microsoft identity platform", "Find your app's OpenID
/// configuration document URI"), each endpoint under the public base URL. MSAL reads
/// `authorization_endpoint` and `token_endpoint` (both required); the emulator serves the
/// token endpoint and `jwks_uri`, not the interactive endpoints (authorize, device code,
/// logout), which app-only clients never call.
async fn openid_configuration(
    State(state): State<AppState>,
    Path(tenant_segment): Path<String>,
) -> Response {
    let base = state.base_url();
    let tenant = state.tenant();
    let tid = match discovery_tenant(&tenant, &tenant_segment) {
        Ok(tid) => tid,
        Err(e) => return e.into_response(),
    };
    let authority = format!("{base}/{tid}");
    let host = base.split_once("://").map_or(base.as_str(), |(_, h)| h);
    Json(json!({
        "token_endpoint": format!("{authority}/oauth2/v2.0/token"),
        "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
        "jwks_uri": format!("{authority}/discovery/v2.0/keys"),
        "response_modes_supported": ["query", "fragment", "form_post"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "issuer": format!("{authority}/v2.0"),
        "request_uri_parameter_supported": false,
        "authorization_endpoint": format!("{authority}/oauth2/v2.0/authorize"),
        "device_authorization_endpoint": format!("{authority}/oauth2/v2.0/devicecode"),
        "http_logout_supported": true,
        "frontchannel_logout_supported": true,
        "end_session_endpoint": format!("{authority}/oauth2/v2.0/logout"),
        "claims_supported": ["sub", "iss", "cloud_instance_name", "cloud_instance_host_name", "cloud_graph_host_name", "msgraph_host", "aud", "exp", "iat", "auth_time", "acr", "nonce", "preferred_username", "name", "tid", "ver", "at_hash", "c_hash", "email"],
        "tenant_region_scope": "EU",
        "cloud_instance_name": "microsoftonline.com",
        "cloud_graph_host_name": "graph.windows.net",
        // Graph is served on the same base URL.
        "msgraph_host": host,
    }))
    .into_response()
}

/// `GET /{tenant}/discovery/v2.0/keys`: the JWK set (RFC 7517) with the key access tokens are
/// signed with, so clients that validate tokens can find it by `kid`.
async fn signing_keys(
    State(state): State<AppState>,
    Path(tenant_segment): Path<String>,
) -> Response {
    use rsa::traits::PublicKeyParts as _;
    let base = state.base_url();
    let tenant = state.tenant();
    let tid = match discovery_tenant(&tenant, &tenant_segment) {
        Ok(tid) => tid,
        Err(e) => return e.into_response(),
    };
    let key = jwt::access_token_key();
    let public = key.public_key();
    Json(json!({"keys": [{
        "kty": "RSA",
        "use": "sig",
        "kid": key.kid,
        "n": URL_SAFE_NO_PAD.encode(public.n().to_bytes_be()),
        "e": URL_SAFE_NO_PAD.encode(public.e().to_bytes_be()),
        "issuer": format!("{base}/{tid}/v2.0"),
    }]}))
    .into_response()
}

/// Authority hosts Microsoft's instance discovery knows (MSAL's built-in list of public and
/// sovereign clouds). The emulator stands in for all of them, and for its own host.
const KNOWN_AUTHORITY_HOSTS: [&str; 7] = [
    "login.microsoftonline.com",
    "login.windows.net",
    "login.microsoft.com",
    "sts.windows.net",
    "login.microsoftonline.us",
    "login.partner.microsoftonline.cn",
    "login.chinacloudapi.cn",
];

/// `GET /{common|organizations|tenant}/discovery/instance?api-version=1.1&authorization_endpoint=…`.
///
/// Answers `tenant_discovery_endpoint` — the metadata document of the tenant and protocol
/// version the authorize endpoint names (`…/v2.0/.well-known/openid-configuration` for a
/// `/oauth2/v2.0/authorize` endpoint) — and `metadata`: one entry for this instance, whose
/// `preferred_network`, `preferred_cache` and `aliases` are the emulator's own host. An
/// authorize endpoint on a host the service does not know → 400 `invalid_instance`
/// (AADSTS50049 "Unknown or invalid instance."), as documented. MSAL Python sends
/// `api-version=1.0`, MSAL.NET / Java / Go `1.1`: both are accepted.
async fn instance_discovery(
    State(state): State<AppState>,
    Query(query): Query<BTreeMap<String, String>>,
) -> Response {
    let base = state.base_url();
    match query.get("api-version").map(String::as_str) {
        Some("1.0" | "1.1") => {}
        Some(other) => {
            return AadstsError::new(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                900144,
                format!("The api-version '{other}' is not supported. Use 1.1."),
            )
            .into_response()
        }
        None => return AadstsError::missing_parameter("api-version").into_response(),
    }
    let Some(endpoint) = query.get("authorization_endpoint") else {
        return AadstsError::missing_parameter("authorization_endpoint").into_response();
    };
    let (scheme, own_host) = base.split_once("://").unwrap_or(("https", base.as_str()));
    let (endpoint_host, endpoint_path) = endpoint
        .split_once("://")
        .map(|(_, rest)| rest.split_once('/').unwrap_or((rest, "")))
        .unwrap_or(("", ""));
    // The instance is a host name: MSAL Python builds the authorize URL from the authority's
    // host name alone (no port), so ports are not compared.
    let host_name = |authority: &str| {
        authority
            .rsplit_once(':')
            .filter(|(_, port)| port.chars().all(|c| c.is_ascii_digit()))
            .map_or(authority, |(host, _)| host)
            .to_ascii_lowercase()
    };
    let known = host_name(endpoint_host) == host_name(own_host)
        || KNOWN_AUTHORITY_HOSTS
            .iter()
            .any(|h| h.eq_ignore_ascii_case(endpoint_host));
    // `{tenant}/oauth2/v2.0/authorize` or `{tenant}/oauth2/authorize`.
    let mut segments = endpoint_path.split('/');
    let tenant_segment = segments.next().unwrap_or_default();
    let rest: Vec<&str> = segments.collect();
    let version = match rest.as_slice() {
        ["oauth2", "v2.0", "authorize"] => "/v2.0",
        ["oauth2", "authorize"] => "",
        _ => "?",
    };
    if !known || tenant_segment.is_empty() || version == "?" {
        return AadstsError::new(
            StatusCode::BAD_REQUEST,
            "invalid_instance",
            50049,
            "Unknown or invalid instance.",
        )
        .into_response();
    }
    let host = own_host.to_ascii_lowercase();
    Json(json!({
        "tenant_discovery_endpoint": format!("{scheme}://{own_host}/{tenant_segment}{version}/.well-known/openid-configuration"),
        "api-version": "1.1",
        "metadata": [{
            "preferred_network": host,
            "preferred_cache": host,
            "aliases": [host],
        }],
    }))
    .into_response()
}

// ---------------------------------------------------------------------------------------------
// Admin: credentials and the CI OIDC issuer

/// `GET /_fake/oidc/token?audience=…`, shaped like GitHub Actions' ID-token endpoint:
/// the runner's request token as bearer, `{"value": "<jwt>"}` back.
async fn ci_oidc_token(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<BTreeMap<String, String>>,
) -> Response {
    let tenant = state.tenant();
    let expected = format!("Bearer {}", tenant.auth.ci_oidc.request_token);
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    if tenant.auth.ci_oidc.request_token.is_empty() || presented != Some(expected.as_str()) {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"message": "Bad credentials"})),
        )
            .into_response();
    }
    let subject = tenant
        .behaviour
        .settings
        .get("auth.ci_oidc_subject")
        .and_then(Value::as_str)
        .unwrap_or(&tenant.auth.ci_oidc.subject)
        .to_owned();
    let now = now_epoch();
    let claims = json!({
        "iss": tenant.auth.ci_oidc.issuer,
        "sub": subject,
        "aud": query.get("audience").map(String::as_str).unwrap_or("api://AzureADTokenExchange"),
        "iat": now,
        "nbf": now,
        // GitHub's ID tokens are valid for a few minutes.
        "exp": now + 300,
        "jti": uuid::Uuid::new_v4().to_string(),
    });
    let id_token = jwt::ci_oidc_key().sign(&claims);
    drop(tenant);
    state.tenant().auth.saw_token(&id_token);
    Json(json!({"value": id_token})).into_response()
}

fn admin_error(status: StatusCode, message: String) -> Response {
    (status, Json(json!({"error": message}))).into_response()
}

/// `POST /_fake/auth/applications/{appId}/certificates` with `{"pem": "-----BEGIN CERTIFICATE-----…"}`.
async fn add_certificate(
    State(state): State<AppState>,
    Path(app_id): Path<String>,
    Json(body): Json<Value>,
) -> Response {
    let Some(pem) = body["pem"].as_str() else {
        return admin_error(StatusCode::BAD_REQUEST, "body needs string 'pem'".into());
    };
    let certificate = match Certificate::from_pem(pem) {
        Ok(c) => c,
        Err(e) => return admin_error(StatusCode::BAD_REQUEST, e),
    };
    let mut tenant = state.tenant();
    let Some(app) = tenant.auth.application_mut(&app_id) else {
        return admin_error(
            StatusCode::NOT_FOUND,
            format!("no application with appId '{app_id}'"),
        );
    };
    let answer = json!({
        "thumbprint": certificate.thumbprint_hex(),
        "x5t": certificate.x5t,
        "x5t#S256": certificate.x5t_s256,
    });
    app.certificates.push(certificate);
    (StatusCode::CREATED, Json(answer)).into_response()
}

/// `POST /_fake/auth/applications/{appId}/federatedIdentityCredentials` with
/// `{"name","issuer","subject","audiences"}`.
async fn add_federated_credential(
    State(state): State<AppState>,
    Path(app_id): Path<String>,
    Json(body): Json<Value>,
) -> Response {
    let credential = match FederatedCredential::from_json(&body) {
        Ok(c) => c,
        Err(e) => return admin_error(StatusCode::BAD_REQUEST, e),
    };
    let mut tenant = state.tenant();
    let Some(app) = tenant.auth.application_mut(&app_id) else {
        return admin_error(
            StatusCode::NOT_FOUND,
            format!("no application with appId '{app_id}'"),
        );
    };
    let answer = credential.to_json();
    app.federated_credentials.push(credential);
    (StatusCode::CREATED, Json(answer)).into_response()
}

/// `GET /_fake/auth/tokens-issued`: access tokens issued per client id.
async fn tokens_issued(State(state): State<AppState>) -> Json<Value> {
    let tenant = state.tenant();
    let counts: Map<String, Value> = tenant
        .auth
        .tokens_issued
        .iter()
        .map(|(client, n)| (client.clone(), json!(n)))
        .collect();
    Json(Value::Object(counts))
}

/// `GET /_fake/auth/tokens-seen`: every JWT issued or presented (see
/// [`AuthState::tokens_seen`]), for leak searches by tests that run the emulator binary.
async fn tokens_seen(State(state): State<AppState>) -> Json<Value> {
    Json(json!({"value": state.tenant().auth.tokens_seen}))
}

/// Test-only routes for this area, mounted under `/_fake/`.
pub fn admin_routes() -> Router<AppState> {
    Router::new()
        .route("/oidc/token", get(ci_oidc_token))
        .route(
            "/auth/applications/{app_id}/certificates",
            post(add_certificate),
        )
        .route(
            "/auth/applications/{app_id}/federatedIdentityCredentials",
            post(add_federated_credential),
        )
        .route("/auth/tokens-issued", get(tokens_issued))
        .route("/auth/tokens-seen", get(tokens_seen))
}

// ---------------------------------------------------------------------------------------------
// Identity-bound endpoints served behind the bearer checks

/// `GET /v1.0/me`: app-only tokens have no signed-in user, and Graph says so with a 400.
async fn graph_me() -> Response {
    GraphError::new(
        StatusCode::BAD_REQUEST,
        "BadRequest",
        "/me request is only valid with delegated authentication flow.",
    )
    .into_response()
}

/// Graph routes owned by the identity layer (mounted under `/v1.0`).
pub fn graph_routes() -> Router<AppState> {
    Router::new().route("/me", get(graph_me))
}

/// `GET /tenants?api-version=…` (`Tenants_List`): the tenants the caller can reach through ARM
/// (this one), after ARM's api-version check with the subscriptions service's versions.
async fn arm_tenants(State(state): State<AppState>, uri: axum::http::Uri) -> Response {
    if let Err(refused) = crate::arm::check_api_version_in(
        crate::arm::resource_groups::SUBSCRIPTION_API_VERSIONS,
        uri.query(),
    ) {
        return refused;
    }
    let tenant = state.tenant();
    Json(json!({"value": [{
        "id": format!("/tenants/{}", tenant.tenant_id),
        "tenantId": tenant.tenant_id,
        "displayName": tenant.display_name,
        "tenantCategory": "Home",
    }]}))
    .into_response()
}

/// ARM routes owned by the identity layer.
pub fn arm_routes() -> Router<AppState> {
    Router::new().route("/tenants", get(arm_tenants))
}

// ---------------------------------------------------------------------------------------------
// Bearer checks

/// Why a bearer token was refused.
#[derive(Debug, PartialEq, Eq)]
enum BearerRejection {
    Missing,
    Malformed,
    BadSignature,
    Expired { exp: i64, now: i64 },
    WrongAudience(String),
    WrongTenant,
}

fn verify_bearer(
    state: &AppState,
    headers: &HeaderMap,
    family: ApiFamily,
) -> Result<Caller, BearerRejection> {
    let value = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .ok_or(BearerRejection::Missing)?;
    let token = value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or(BearerRejection::Missing)?;
    let jwt = UnverifiedJwt::parse(token).ok_or(BearerRejection::Malformed)?;
    if !jwt.verify(jwt::access_token_key().public_key()) {
        return Err(BearerRejection::BadSignature);
    }
    let audience = jwt.claim_str("aud").unwrap_or_default().to_owned();
    if ApiFamily::of_resource(&audience) != Some(family) {
        return Err(BearerRejection::WrongAudience(audience));
    }
    let now = now_epoch();
    let exp = jwt.claim_i64("exp").unwrap_or(0);
    if exp <= now {
        return Err(BearerRejection::Expired { exp, now });
    }
    let tenant_id = state.tenant().tenant_id.clone();
    if !jwt
        .claim_str("tid")
        .is_some_and(|tid| tid.eq_ignore_ascii_case(&tenant_id))
    {
        return Err(BearerRejection::WrongTenant);
    }
    let list = |name: &str| jwt.claims.get(name).map(strings).unwrap_or_default();
    Ok(Caller {
        app_id: jwt.claim_str("appid").unwrap_or_default().to_owned(),
        object_id: jwt.claim_str("oid").unwrap_or_default().to_owned(),
        roles: list("roles"),
        directory_roles: list("wids"),
    })
}

fn graph_unauthorized(rejection: &BearerRejection) -> Response {
    let message = match rejection {
        BearerRejection::Missing => "Access token is empty.",
        BearerRejection::Malformed => "IDX14100: JWT is not well formed, there are no dots (.).",
        BearerRejection::BadSignature => "Access token validation failure. Invalid signature.",
        BearerRejection::Expired { .. } => "Lifetime validation failed, the token is expired.",
        BearerRejection::WrongAudience(_) => "Access token validation failure. Invalid audience.",
        BearerRejection::WrongTenant => "Access token validation failure. Invalid issuer.",
    };
    let mut response = GraphError::new(
        StatusCode::UNAUTHORIZED,
        "InvalidAuthenticationToken",
        message,
    )
    .into_response();
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static(
            "Bearer realm=\"\", authorization_uri=\"https://login.microsoftonline.com/common/oauth2/authorize\", client_id=\"00000003-0000-0000-c000-000000000000\"",
        ),
    );
    response
}

fn arm_unauthorized(rejection: &BearerRejection, tenant_id: &str) -> Response {
    let (code, message, description) = match rejection {
        BearerRejection::Missing => (
            "AuthenticationFailed",
            "Authentication failed. The 'Authorization' header is missing.".to_owned(),
            "The authentication failed because of missing 'Authorization' header.",
        ),
        BearerRejection::Malformed | BearerRejection::BadSignature | BearerRejection::WrongTenant => (
            "InvalidAuthenticationToken",
            "The access token is invalid.".to_owned(),
            "The access token is invalid.",
        ),
        BearerRejection::Expired { exp, now } => (
            "ExpiredAuthenticationToken",
            format!(
                "The access token expiry UTC time '{}' is earlier than current UTC time '{}'.",
                iso_seconds(*exp),
                iso_seconds(*now)
            ),
            "The access token has expired.",
        ),
        BearerRejection::WrongAudience(aud) => (
            "InvalidAuthenticationTokenAudience",
            format!("The access token has been obtained for wrong audience or resource '{aud}'. It should exactly match with one of the allowed audiences 'https://management.core.windows.net/','https://management.core.windows.net','https://management.azure.com/','https://management.azure.com'."),
            "The access token has been obtained for wrong audience or resource.",
        ),
    };
    let mut response = ArmError::new(StatusCode::UNAUTHORIZED, code, message).into_response();
    let challenge = format!(
        "Bearer authorization_uri=\"https://login.microsoftonline.com/{tenant_id}\", error=\"invalid_token\", error_description=\"{description}\""
    );
    if let Ok(value) = HeaderValue::from_str(&challenge) {
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, value);
    }
    response
}

pub async fn require_graph_token(
    State(state): State<AppState>,
    mut req: Request,
    next: Next,
) -> Response {
    match verify_bearer(&state, req.headers(), ApiFamily::Graph) {
        Ok(caller) => {
            req.extensions_mut().insert(caller);
            next.run(req).await
        }
        Err(rejection) => graph_unauthorized(&rejection),
    }
}

pub async fn require_arm_token(
    State(state): State<AppState>,
    mut req: Request,
    next: Next,
) -> Response {
    match verify_bearer(&state, req.headers(), ApiFamily::Arm) {
        Ok(caller) => {
            req.extensions_mut().insert(caller);
            next.run(req).await
        }
        Err(rejection) => {
            let tenant_id = state.tenant().tenant_id.clone();
            arm_unauthorized(&rejection, &tenant_id)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resources_classify_with_or_without_trailing_slash() {
        assert_eq!(
            ApiFamily::of_resource("https://graph.microsoft.com/"),
            Some(ApiFamily::Graph)
        );
        assert_eq!(
            ApiFamily::of_resource("https://graph.microsoft.us"),
            Some(ApiFamily::Graph)
        );
        assert_eq!(
            ApiFamily::of_resource("https://management.core.windows.net/"),
            Some(ApiFamily::Arm)
        );
        assert_eq!(
            ApiFamily::of_resource("https://management.chinacloudapi.cn"),
            Some(ApiFamily::Arm)
        );
        assert_eq!(ApiFamily::of_resource("https://vault.azure.net"), None);
    }

    #[test]
    fn scope_must_be_one_resource_with_default_suffix() {
        assert!(resource_from_scope("https://graph.microsoft.com/.default", "Contoso").is_ok());
        assert!(resource_from_scope("https://management.azure.com//.default", "Contoso").is_ok());
        let err =
            resource_from_scope("https://graph.microsoft.com/User.Read", "Contoso").unwrap_err();
        assert_eq!(err.code, 1002012);
        let err = resource_from_scope("https://example.org/.default", "Contoso").unwrap_err();
        assert_eq!(err.code, 500011);
    }
}
