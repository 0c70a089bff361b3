//! Azure Resource Manager. Every call names its `api-version` (ARM rejects calls without one);
//! collections page with `nextLink`.

use futures::{Stream, TryStreamExt};
use reqwest::Method;
use serde_json::Value as Json;

use crate::azure::error::AzureError;
use crate::azure::retry::Deadline;
use crate::azure::service::{Call, ServiceClient};

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

    /// PUT is create-or-replace in ARM, so it is safe to repeat.
    pub async fn put(
        &self,
        path: &str,
        api_version: &str,
        body: Json,
        deadline: &Deadline,
    ) -> Result<Json, AzureError> {
        let call = Call::new(Method::PUT, with_version(path, api_version)).body(body);
        self.inner.get_json(call, deadline).await
    }

    /// DELETE (200/202/204). `Ok(false)` when there was nothing to delete.
    pub async fn delete(
        &self,
        path: &str,
        api_version: &str,
        deadline: &Deadline,
    ) -> Result<bool, AzureError> {
        let call = Call::new(Method::DELETE, with_version(path, api_version));
        match self.inner.call(call, deadline).await {
            Ok(resp) => Ok(resp.status != 204),
            Err(e) if e.is_not_found() => Ok(false),
            Err(e) => Err(e),
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
