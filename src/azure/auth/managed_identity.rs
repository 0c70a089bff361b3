//! Managed identity: the Azure Instance Metadata Service (VMs, scale sets, AKS pods with the
//! IMDS route) and the App Service / Functions identity endpoint, which the platform announces
//! through `IDENTITY_ENDPOINT` and protects with the `IDENTITY_HEADER` value.

use std::time::Duration;

use async_trait::async_trait;
use reqwest::Method;
use serde_json::Value as Json;

use super::{AccessToken, TokenSource};
use crate::azure::error::{AuthError, AuthMethodKind, AzureError, Service};
use crate::azure::http::{ApiRequest, HttpPipeline};
use crate::azure::retry::Deadline;

pub const IMDS_TOKEN_URL: &str = "http://169.254.169.254/metadata/identity/oauth2/token";

pub enum ManagedIdentityEndpoint {
    /// IMDS; `url` is the token path (overridable for tests and private setups).
    Imds { url: String },
    /// App Service / Functions (`IDENTITY_ENDPOINT`, `IDENTITY_HEADER`).
    AppService { endpoint: String, header: String },
}

pub struct ManagedIdentitySource {
    endpoint: ManagedIdentityEndpoint,
    /// A user-assigned identity's client id; `None` picks the system-assigned one.
    client_id: Option<String>,
}

impl ManagedIdentitySource {
    pub fn new(endpoint: ManagedIdentityEndpoint, client_id: Option<String>) -> Self {
        if let ManagedIdentityEndpoint::AppService { header, .. } = &endpoint {
            crate::azure::redact::register_secret(header);
        }
        ManagedIdentitySource {
            endpoint,
            client_id,
        }
    }

    /// The platform's endpoint from the environment: App Service when `IDENTITY_ENDPOINT` and
    /// `IDENTITY_HEADER` are both set, IMDS (at `imds_url` or the well-known address) otherwise.
    pub fn from_env(
        env: &dyn Fn(&str) -> Option<String>,
        imds_url: Option<String>,
        client_id: Option<String>,
    ) -> Self {
        let endpoint = match (env("IDENTITY_ENDPOINT"), env("IDENTITY_HEADER")) {
            (Some(endpoint), Some(header)) if !endpoint.is_empty() && !header.is_empty() => {
                ManagedIdentityEndpoint::AppService { endpoint, header }
            }
            _ => ManagedIdentityEndpoint::Imds {
                url: imds_url.unwrap_or_else(|| IMDS_TOKEN_URL.to_owned()),
            },
        };
        Self::new(endpoint, client_id)
    }

    /// The token request for `scope`: URL and headers (the App Service header is a secret).
    pub fn request(&self, scope: &str) -> ApiRequest<'static, 'static> {
        let resource = super::scope_to_resource(scope);
        let (base, api_version) = match &self.endpoint {
            ManagedIdentityEndpoint::Imds { url } => (url.as_str(), "2018-02-01"),
            ManagedIdentityEndpoint::AppService { endpoint, .. } => {
                (endpoint.as_str(), "2019-08-01")
            }
        };
        let mut query = form_urlencoded::Serializer::new(String::new());
        query.append_pair("api-version", api_version);
        query.append_pair("resource", resource);
        if let Some(id) = &self.client_id {
            query.append_pair("client_id", id);
        }
        let sep = if base.contains('?') { '&' } else { '?' };
        let mut req = ApiRequest::new(
            Service::ManagedIdentity,
            Method::GET,
            format!("{base}{sep}{}", query.finish()),
        );
        match &self.endpoint {
            ManagedIdentityEndpoint::Imds { .. } => req.headers.push(("Metadata", "true".into())),
            ManagedIdentityEndpoint::AppService { header, .. } => {
                req.headers.push(("X-IDENTITY-HEADER", header.clone()))
            }
        }
        req.log_response_body = false;
        req
    }

    fn failure(&self, problem: String) -> AzureError {
        let remedy = match self.endpoint {
            ManagedIdentityEndpoint::Imds { .. } => "Run where a managed identity is assigned (an Azure VM, scale set or container with IMDS), set client_id for a user-assigned identity, or use another authentication method.",
            ManagedIdentityEndpoint::AppService { .. } => "Check that the App Service / Function has an identity assigned (IDENTITY_ENDPOINT and IDENTITY_HEADER are set by the platform), and client_id for a user-assigned one.",
        };
        AuthError {
            method: AuthMethodKind::ManagedIdentity,
            attempted: self.describe(),
            problem,
            remedy: remedy.into(),
            code: None,
        }
        .into()
    }
}

#[async_trait]
impl TokenSource for ManagedIdentitySource {
    fn method(&self) -> AuthMethodKind {
        AuthMethodKind::ManagedIdentity
    }

    fn describe(&self) -> String {
        let which = match &self.client_id {
            Some(id) => format!("user-assigned identity {id}"),
            None => "the system-assigned identity".to_owned(),
        };
        match &self.endpoint {
            ManagedIdentityEndpoint::Imds { url } => format!("{which} via IMDS at {url}"),
            ManagedIdentityEndpoint::AppService { endpoint, .. } => {
                format!("{which} via the App Service identity endpoint {endpoint}")
            }
        }
    }

    async fn fetch(
        &self,
        scope: &str,
        http: &HttpPipeline,
        deadline: &Deadline,
    ) -> Result<AccessToken, AzureError> {
        let req = self.request(scope);
        let resp = http
            .execute(&req, deadline)
            .await
            .map_err(|e| self.failure(e.to_string()))?;
        let body = resp.body.unwrap_or(Json::Null);
        if resp.status != 200 {
            let detail = body["error_description"]
                .as_str()
                .or_else(|| body["message"].as_str())
                .or_else(|| body["error"].as_str())
                .unwrap_or("no error description");
            return Err(self.failure(format!("HTTP {}: {detail}", resp.status)));
        }
        let token = body["access_token"].as_str().filter(|t| !t.is_empty());
        // `expires_on` (absolute Unix seconds) is always present; `expires_in` only on IMDS.
        let lifetime = super::json_seconds(body.get("expires_in"))
            .map(Duration::from_secs)
            .or_else(|| super::json_seconds(body.get("expires_on")).map(super::lifetime_until));
        match (token, lifetime) {
            (Some(t), Some(l)) => Ok(AccessToken::new(t.to_owned(), l)),
            _ => Err(self.failure("the answer holds no access_token / expiry".into())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn imds_request_has_metadata_header_and_resource() {
        let s = ManagedIdentitySource::from_env(&|_| None, None, Some("uai-1".into()));
        let req = s.request("https://graph.microsoft.com/.default");
        assert_eq!(
            req.url,
            "http://169.254.169.254/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https%3A%2F%2Fgraph.microsoft.com&client_id=uai-1"
        );
        assert_eq!(req.headers, vec![("Metadata", "true".to_owned())]);
    }

    #[test]
    fn app_service_request_uses_identity_endpoint_and_header() {
        let env = |name: &str| match name {
            "IDENTITY_ENDPOINT" => Some("http://127.0.0.1:41741/msi/token".to_owned()),
            "IDENTITY_HEADER" => Some("hdr-value".to_owned()),
            _ => None,
        };
        let s = ManagedIdentitySource::from_env(&env, None, None);
        let req = s.request("https://management.azure.com/.default");
        assert_eq!(
            req.url,
            "http://127.0.0.1:41741/msi/token?api-version=2019-08-01&resource=https%3A%2F%2Fmanagement.azure.com"
        );
        assert_eq!(
            req.headers,
            vec![("X-IDENTITY-HEADER", "hdr-value".to_owned())]
        );
        assert!(s.describe().contains("App Service"));
        assert!(!s.describe().contains("hdr-value"));
    }
}
