//! Azure Resource Manager. Every call names its `api-version` (ARM rejects calls without one);
//! collections page with `nextLink`; PUT and DELETE may be long-running operations, which are
//! followed to their end here so resources only ever see the final outcome.

use std::time::Duration;

use futures::{Stream, TryStreamExt};
use reqwest::Method;
use serde_json::Value as Json;
use tracing::info;

use crate::azure::error::{ApiError, AzureError, Service};
use crate::azure::http::ApiResponse;
use crate::azure::retry::{self, Deadline};
use crate::azure::service::{Call, ServiceClient};

/// Poll interval of a long-running operation whose answers carry no `Retry-After`.
const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(5);

#[derive(Clone)]
pub struct ArmClient {
    pub(crate) inner: ServiceClient,
}

fn with_version(path: &str, api_version: &str) -> String {
    let sep = if path.contains('?') { '&' } else { '?' };
    format!("{path}{sep}api-version={api_version}")
}

impl ArmClient {
    pub fn new(inner: ServiceClient) -> Self {
        ArmClient { inner }
    }

    pub fn service(&self) -> &ServiceClient {
        &self.inner
    }

    pub async fn get(
        &self,
        path: &str,
        api_version: &str,
        deadline: &Deadline,
    ) -> Result<Json, AzureError> {
        self.inner
            .get_json(
                Call::new(Method::GET, with_version(path, api_version)),
                deadline,
            )
            .await
    }

    /// GET that maps 404 (`ResourceNotFound`, `ResourceGroupNotFound`, …) to `None`.
    pub async fn get_optional(
        &self,
        path: &str,
        api_version: &str,
        deadline: &Deadline,
    ) -> Result<Option<Json>, AzureError> {
        match self.get(path, api_version, deadline).await {
            Ok(v) => Ok(Some(v)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// PUT is create-or-replace in ARM, so it is safe to repeat. A long-running PUT is followed
    /// to its end and the resource is then read back, as ARM's async-operation guidance says.
    pub async fn put(
        &self,
        path: &str,
        api_version: &str,
        body: Json,
        deadline: &Deadline,
    ) -> Result<Json, AzureError> {
        let url = with_version(path, api_version);
        let resp = self
            .inner
            .call(Call::new(Method::PUT, url.clone()).body(body), deadline)
            .await?;
        if self.finish_long_running(&resp, &url, deadline).await? {
            return self.get(path, api_version, deadline).await;
        }
        resp.body.ok_or_else(|| AzureError::InvalidResponse {
            service: Service::ResourceManager,
            method: "PUT".into(),
            url: self.inner.url(&url),
            reason: "the answer has no body".into(),
        })
    }

    /// PATCH (a partial update, where the resource provider supports one). A long-running
    /// PATCH is followed like a PUT.
    pub async fn patch(
        &self,
        path: &str,
        api_version: &str,
        body: Json,
        deadline: &Deadline,
    ) -> Result<Json, AzureError> {
        let url = with_version(path, api_version);
        let resp = self
            .inner
            .call(Call::new(Method::PATCH, url.clone()).body(body), deadline)
            .await?;
        if self.finish_long_running(&resp, &url, deadline).await? {
            return self.get(path, api_version, deadline).await;
        }
        resp.body.ok_or_else(|| AzureError::InvalidResponse {
            service: Service::ResourceManager,
            method: "PATCH".into(),
            url: self.inner.url(&url),
            reason: "the answer has no body".into(),
        })
    }

    /// DELETE (200/202/204). `Ok(false)` when there was nothing to delete. A long-running
    /// delete (202) is followed until the resource is gone.
    pub async fn delete(
        &self,
        path: &str,
        api_version: &str,
        deadline: &Deadline,
    ) -> Result<bool, AzureError> {
        let url = with_version(path, api_version);
        match self
            .inner
            .call(Call::new(Method::DELETE, url.clone()), deadline)
            .await
        {
            Ok(resp) => {
                self.finish_long_running(&resp, &url, deadline).await?;
                Ok(resp.status != 204)
            }
            Err(e) if e.is_not_found() => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Polls a long-running operation announced by `resp` until it ends. Returns whether there
    /// was one. `Azure-AsyncOperation` is preferred over `Location` (ARM's documented order):
    /// its body says `Succeeded`, `Failed` or `Canceled`; a `Location` answers 202 until done.
    async fn finish_long_running(
        &self,
        resp: &ApiResponse,
        operation_url: &str,
        deadline: &Deadline,
    ) -> Result<bool, AzureError> {
        let header = |name: &str| {
            resp.headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let monitor = match (header("azure-asyncoperation"), header("location")) {
            (Some(url), _) => Monitor::AsyncOperation(url),
            (None, Some(url)) if resp.status == 202 => Monitor::Location(url),
            _ => return Ok(false),
        };
        let url = match &monitor {
            Monitor::AsyncOperation(u) | Monitor::Location(u) => u.clone(),
        };
        if !self.inner.same_origin(&url) {
            return Err(AzureError::InvalidResponse {
                service: Service::ResourceManager,
                method: "GET".into(),
                url: self.inner.url(operation_url),
                reason: format!("the operation status URL {url} leaves the service's host"),
            });
        }
        let mut wait = retry::retry_after(&resp.headers).unwrap_or(DEFAULT_POLL_INTERVAL);
        let mut polls = 0u32;
        loop {
            if deadline.would_pass(wait) {
                return Err(AzureError::Deadline {
                    operation: format!("The ARM operation {}", self.inner.url(operation_url)),
                    budget: deadline.budget(),
                    attempts: polls,
                    last: None,
                });
            }
            tokio::time::sleep(wait).await;
            polls += 1;
            let status = self
                .inner
                .call(Call::new(Method::GET, url.clone()), deadline)
                .await?;
            wait = retry::retry_after(&status.headers).unwrap_or(DEFAULT_POLL_INTERVAL);
            match &monitor {
                Monitor::Location(_) if status.status == 202 => {}
                Monitor::Location(_) => return Ok(true),
                Monitor::AsyncOperation(_) => {
                    let body = status.body.unwrap_or(Json::Null);
                    match body["status"].as_str().unwrap_or("InProgress") {
                        "Succeeded" => return Ok(true),
                        state @ ("Failed" | "Canceled") => {
                            let mut error = ApiError::from_body(
                                Service::ResourceManager,
                                "GET",
                                &url,
                                status.status,
                                Some(&body),
                                status.request_id.clone(),
                                Some(status.client_request_id.clone()),
                            );
                            error.message = Some(format!(
                                "the long-running operation {}: {}",
                                state.to_ascii_lowercase(),
                                error.message.as_deref().unwrap_or("no reason given")
                            ));
                            return Err(error.into());
                        }
                        other => {
                            info!(operation = %self.inner.url(operation_url), state = other, polls, "waiting for a long-running ARM operation");
                        }
                    }
                }
            }
        }
    }

    pub fn list<'a>(
        &'a self,
        path: &str,
        api_version: &str,
        deadline: Deadline,
    ) -> impl Stream<Item = Result<Json, AzureError>> + Send + 'a {
        let call = Call::new(Method::GET, with_version(path, api_version));
        self.inner.items(call, "nextLink", deadline)
    }

    pub async fn list_all(
        &self,
        path: &str,
        api_version: &str,
        deadline: Deadline,
    ) -> Result<Vec<Json>, AzureError> {
        self.list(path, api_version, deadline).try_collect().await
    }
}

enum Monitor {
    AsyncOperation(String),
    Location(String),
}

/// An ARM id of a resource inside a resource group:
/// `/subscriptions/{s}/resourceGroups/{rg}/providers/{namespace}/{type}/{name}`. ARM compares
/// ids case-insensitively; the parts keep the casing they were given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceId {
    pub subscription: String,
    pub resource_group: String,
    /// e.g. `Microsoft.OperationalInsights`.
    pub namespace: String,
    /// e.g. `workspaces`.
    pub resource_type: String,
    pub name: String,
}

impl ResourceId {
    /// Parses `id`, which must name a resource of `namespace/resource_type` (compared
    /// case-insensitively). The error says what shape was expected.
    pub fn parse(id: &str, namespace: &str, resource_type: &str) -> Result<ResourceId, String> {
        let expected = || {
            format!(
                "'{id}' is not a {namespace}/{resource_type} resource id: expected \
                 /subscriptions/<subscription id>/resourceGroups/<resource group>/providers/\
                 {namespace}/{resource_type}/<name>"
            )
        };
        let parts: Vec<&str> = id.split('/').collect();
        let ["", s, sub, r, rg, p, ns, ty, name] = parts.as_slice() else {
            return Err(expected());
        };
        let fixed_ok = s.eq_ignore_ascii_case("subscriptions")
            && r.eq_ignore_ascii_case("resourceGroups")
            && p.eq_ignore_ascii_case("providers")
            && ns.eq_ignore_ascii_case(namespace)
            && ty.eq_ignore_ascii_case(resource_type);
        let names_ok = [sub, rg, name].iter().all(|n| {
            !n.is_empty() && !n.contains(|c: char| c.is_whitespace() || "?#%".contains(c))
        });
        if !(fixed_ok && names_ok) {
            return Err(expected());
        }
        Ok(ResourceId {
            subscription: (*sub).to_owned(),
            resource_group: (*rg).to_owned(),
            namespace: (*ns).to_owned(),
            resource_type: (*ty).to_owned(),
            name: (*name).to_owned(),
        })
    }

    pub fn new(
        subscription: &str,
        resource_group: &str,
        namespace: &str,
        resource_type: &str,
        name: &str,
    ) -> ResourceId {
        ResourceId {
            subscription: subscription.to_owned(),
            resource_group: resource_group.to_owned(),
            namespace: namespace.to_owned(),
            resource_type: resource_type.to_owned(),
            name: name.to_owned(),
        }
    }

    /// The path of the resource (without api-version).
    pub fn path(&self) -> String {
        format!(
            "/subscriptions/{}/resourceGroups/{}/providers/{}/{}/{}",
            self.subscription, self.resource_group, self.namespace, self.resource_type, self.name
        )
    }

    /// Whether two ids name the same resource (ARM ids compare case-insensitively).
    pub fn same_as(&self, other: &ResourceId) -> bool {
        self.path().eq_ignore_ascii_case(&other.path())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_ids_parse_case_insensitively_and_refuse_other_shapes() {
        let id = ResourceId::parse(
            "/subscriptions/s1/resourcegroups/rg/providers/microsoft.operationalinsights/workspaces/law",
            "Microsoft.OperationalInsights",
            "workspaces",
        )
        .unwrap();
        assert_eq!(id.name, "law");
        assert_eq!(id.resource_group, "rg");
        for bad in [
            "",
            "law",
            "/subscriptions/s1/resourceGroups/rg",
            "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.Insights/actionGroups/ag",
            "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.OperationalInsights/workspaces/",
            "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.OperationalInsights/workspaces/a b",
            "subscriptions/s1/resourceGroups/rg/providers/Microsoft.OperationalInsights/workspaces/law",
        ] {
            let err = ResourceId::parse(bad, "Microsoft.OperationalInsights", "workspaces")
                .unwrap_err();
            assert!(err.contains("expected /subscriptions/"), "{err}");
        }
    }
}
