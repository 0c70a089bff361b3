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
