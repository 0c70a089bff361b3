//! Microsoft Graph v1.0. Paths are relative to `{graph_endpoint}/v1.0`; status codes and quirks
//! follow `specs/msgraph/v1.0-breakglass-facts.md`.

use futures::{Stream, TryStreamExt};
use reqwest::Method;
use serde_json::Value as Json;

use crate::azure::error::AzureError;
use crate::azure::http::CreateProbe;
use crate::azure::retry::Deadline;
use crate::azure::service::{Call, ServiceClient};

#[derive(Clone)]
pub struct GraphClient {
    pub(crate) inner: ServiceClient,
}

impl GraphClient {
    pub fn new(inner: ServiceClient) -> Self {
        GraphClient { inner }
    }

    pub fn service(&self) -> &ServiceClient {
        &self.inner
    }

    pub async fn get(&self, path: &str, deadline: &Deadline) -> Result<Json, AzureError> {
        self.inner
            .get_json(Call::new(Method::GET, path), deadline)
            .await
    }

    /// GET that maps 404 to `None` (the object is gone, or not replicated yet; see
    /// `ConsistencyWait` for the latter).
    pub async fn get_optional(
        &self,
        path: &str,
        deadline: &Deadline,
    ) -> Result<Option<Json>, AzureError> {
        match self.get(path, deadline).await {
            Ok(v) => Ok(Some(v)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Items of a collection across all pages (`@odata.nextLink`).
    pub fn list<'a>(
        &'a self,
        path: &str,
        deadline: Deadline,
    ) -> impl Stream<Item = Result<Json, AzureError>> + Send + 'a {
        self.inner
            .items(Call::new(Method::GET, path), "@odata.nextLink", deadline)
    }

    /// `list` for advanced queries (`$count`, `ne`, `endsWith`…), which Graph only answers with
    /// `ConsistencyLevel: eventual`.
    pub fn list_eventual<'a>(
        &'a self,
        path: &str,
        deadline: Deadline,
    ) -> impl Stream<Item = Result<Json, AzureError>> + Send + 'a {
        let call = Call::new(Method::GET, path).header("ConsistencyLevel", "eventual");
        self.inner.items(call, "@odata.nextLink", deadline)
    }

    pub async fn list_all(&self, path: &str, deadline: Deadline) -> Result<Vec<Json>, AzureError> {
        self.list(path, deadline).try_collect().await
    }

    /// POST that creates an object (201 + the object). `probe` looks the object up by its
    /// natural key (a user's UPN, an assignment's principal+role); it runs before any re-send
    /// after an ambiguous failure, so a create that took effect is not repeated. Directory
    /// reads lag writes, so a probe should give the object a moment to appear (a short
    /// `ConsistencyWait`) before answering "not there".
    pub async fn create<'p>(
        &self,
        path: &str,
        body: Json,
        probe: &'p CreateProbe<'p>,
        deadline: &Deadline,
    ) -> Result<Json, AzureError> {
        let call = Call::new(Method::POST, path).body(body).create(probe);
        self.inner.get_json(call, deadline).await
    }

    /// A POST that is not a create (an action such as `restore`); never re-sent after an
    /// ambiguous failure, since its effect cannot be checked generically.
    pub async fn post_action(
        &self,
        path: &str,
        body: Option<Json>,
        deadline: &Deadline,
    ) -> Result<Option<Json>, AzureError> {
        let mut call = Call::new(Method::POST, path);
        call.body = body;
        // ProbeFirst without a probe: re-sent after a 429 (proved unprocessed), not after a
        // 5xx or a dropped connection.
        call.resend = crate::azure::http::Resend::ProbeFirst;
        Ok(self.inner.call(call, deadline).await?.body)
    }

    /// A POST whose repetition cannot do harm because the caller reads a repeated effect back
    /// as success — adding a `$ref` member, where a second add answers "already exist" — so
    /// it is re-sent after an ambiguous failure like a PUT.
    pub async fn post_idempotent(
        &self,
        path: &str,
        body: Json,
        deadline: &Deadline,
    ) -> Result<Option<Json>, AzureError> {
        let call = Call::new(Method::POST, path).body(body);
        Ok(self.inner.call(call, deadline).await?.body)
    }

    /// PATCH (204). Only the properties sent change, but arrays are replaced whole.
    pub async fn patch(
        &self,
        path: &str,
        body: Json,
        deadline: &Deadline,
    ) -> Result<(), AzureError> {
        self.inner
            .call(Call::new(Method::PATCH, path).body(body), deadline)
            .await
            .map(drop)
    }

    /// PATCH (204) sent once: the write of a read-modify-write (`Resend::Never`). A transient
    /// failure comes back as an error (`is_transient`, with the service's `retry_after`);
    /// the caller reads again and recomputes the body instead of re-sending a stale one.
    pub async fn patch_once(
        &self,
        path: &str,
        body: Json,
        deadline: &Deadline,
    ) -> Result<(), AzureError> {
        let mut call = Call::new(Method::PATCH, path).body(body);
        call.resend = crate::azure::http::Resend::Never;
        self.inner.call(call, deadline).await.map(drop)
    }

    /// DELETE (204). `Ok(false)` when the object was already gone.
    pub async fn delete(&self, path: &str, deadline: &Deadline) -> Result<bool, AzureError> {
        match self
            .inner
            .call(Call::new(Method::DELETE, path), deadline)
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if e.is_not_found() => Ok(false),
            Err(e) => Err(e),
        }
    }
}
