//! What Graph and ARM clients share: a base URL, the token scope of the service, the token
//! cache, the HTTP pipeline and the process's read cache (`read_cache.rs`); plus nextLink
//! paging as an async stream.

use std::collections::VecDeque;
use std::sync::Arc;

use futures::Stream;
use reqwest::Method;
use serde_json::Value as Json;

use crate::azure::auth::TokenCache;
use crate::azure::error::{AzureError, Service};
use crate::azure::http::{ApiRequest, ApiResponse, Body, CreateProbe, HttpPipeline, Resend};
use crate::azure::read_cache::ReadCache;
use crate::azure::retry::Deadline;

#[derive(Clone)]
pub struct ServiceClient {
    pub service: Service,
    /// e.g. `https://graph.microsoft.com/v1.0` or `https://management.azure.com`.
    pub base_url: String,
    /// e.g. `https://graph.microsoft.com/.default`.
    pub scope: String,
    pub tokens: Arc<TokenCache>,
    pub http: HttpPipeline,
    /// Shared by every client of the process; see `read_cache.rs`.
    pub cache: Arc<ReadCache>,
    /// Whether GETs may be answered from `cache` (clients made with `cached()`).
    pub prefer_cache: bool,
}

/// One call, described by its parts; `ServiceClient::call` runs it.
pub struct Call<'a> {
    pub method: Method,
    /// A path below the base URL (`/users/…`) or an absolute URL (a nextLink).
    pub target: String,
    pub body: Option<Json>,
    pub headers: Vec<(&'static str, String)>,
    pub resend: Resend,
    pub probe: Option<&'a CreateProbe<'a>>,
}

impl<'a> Call<'a> {
    pub fn new(method: Method, target: impl Into<String>) -> Self {
        Call {
            method,
            target: target.into(),
            body: None,
            headers: Vec::new(),
            resend: Resend::Idempotent,
            probe: None,
        }
    }
    pub fn body(mut self, body: Json) -> Self {
        self.body = Some(body);
        self
    }
    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }
    /// Marks a create: re-sent after an ambiguous failure only when `probe` finds nothing.
    pub fn create(mut self, probe: &'a CreateProbe<'a>) -> Self {
        self.resend = Resend::ProbeFirst;
        self.probe = Some(probe);
        self
    }
}

impl ServiceClient {
    pub fn url(&self, target: &str) -> String {
        if target.starts_with("http://") || target.starts_with("https://") {
            target.to_owned()
        } else {
            format!("{}{}", self.base_url.trim_end_matches('/'), target)
        }
    }

    pub(crate) fn same_origin(&self, link: &str) -> bool {
        match (
            reqwest::Url::parse(link),
            reqwest::Url::parse(&self.base_url),
        ) {
            (Ok(a), Ok(b)) => a.origin() == b.origin(),
            _ => false,
        }
    }

    /// The same client, with GETs answered from the process's read cache when it holds a
    /// recent answer: for refreshes, plan-time checks and data sources, never for the reads
    /// that wait for a write to show.
    pub fn cached(&self) -> ServiceClient {
        ServiceClient {
            prefer_cache: true,
            ..self.clone()
        }
    }

    /// Runs `call`; any non-2xx final answer becomes an `ApiError`.
    pub async fn call(
        &self,
        call: Call<'_>,
        deadline: &Deadline,
    ) -> Result<ApiResponse, AzureError> {
        let url = self.url(&call.target);
        let read =
            (call.method == Method::GET).then(|| ReadCache::key(self.service, &url, &call.headers));
        let mut _one_at_a_time = None;
        if let (Some(key), true) = (&read, self.prefer_cache) {
            if self.cache.get(key).is_none() {
                _one_at_a_time = Some(self.cache.single_flight(key).await);
            }
            if let Some(body) = self.cache.get(key) {
                tracing::trace!(url = %url, "answered from the read cache");
                return Ok(ApiResponse {
                    status: 200,
                    headers: Default::default(),
                    body: Some(body),
                    request_id: None,
                    client_request_id: String::new(),
                    from_probe: false,
                });
            }
        }
        let began = self.cache.begin();
        let method = call.method;
        if read.is_none() {
            self.cache.invalidate(self.service, &method, &url);
        }
        let mut req = ApiRequest::new(self.service, method.clone(), url.clone());
        if let Some(body) = call.body {
            req.body = Body::Json(body);
        }
        req.headers = call.headers;
        req.auth = Some((&*self.tokens, &self.scope));
        req.resend = call.resend;
        req.probe = call.probe;
        let result = self.http.send(&req, deadline).await;
        match (read, &result) {
            (Some(key), Ok(resp)) => {
                if let Some(body) = &resp.body {
                    tracing::trace!(url = %url, began, "read cache: storing");
                    self.cache.store(self.service, key, &url, began, body);
                }
            }
            (Some(_), Err(_)) => {}
            // Again once answered: a read that started while the write was in flight may have
            // stored what the write replaced.
            (None, _) => self.cache.invalidate(self.service, &method, &url),
        }
        result
    }

    /// GET returning the JSON body.
    pub async fn get_json(&self, call: Call<'_>, deadline: &Deadline) -> Result<Json, AzureError> {
        let method = call.method.to_string();
        let url = self.url(&call.target);
        let resp = self.call(call, deadline).await?;
        resp.body.ok_or_else(|| AzureError::InvalidResponse {
            service: self.service,
            method,
            url,
            reason: "the answer has no body".into(),
        })
    }

    /// Every item of a collection, following the service's next-page link (`@odata.nextLink`
    /// for Graph, `nextLink` for ARM) as given, lazily, one page per poll when the buffer is
    /// empty. The deadline covers the whole listing.
    pub fn items<'a>(
        &'a self,
        first: Call<'a>,
        next_link_key: &'static str,
        deadline: Deadline,
    ) -> impl Stream<Item = Result<Json, AzureError>> + Send + 'a {
        struct Pager<'a> {
            next: Option<Call<'a>>,
            buffer: VecDeque<Json>,
            headers: Vec<(&'static str, String)>,
        }
        let headers = first.headers.clone();
        let start = Pager {
            next: Some(first),
            buffer: VecDeque::new(),
            headers,
        };
        futures::stream::try_unfold(start, move |mut pager| async move {
            loop {
                if let Some(item) = pager.buffer.pop_front() {
                    return Ok(Some((item, pager)));
                }
                let Some(call) = pager.next.take() else {
                    return Ok(None);
                };
                let page = self.get_json(call, &deadline).await?;
                pager.buffer = page
                    .get("value")
                    .and_then(Json::as_array)
                    .cloned()
                    .unwrap_or_default()
                    .into();
                if let Some(link) = page.get(next_link_key).and_then(Json::as_str) {
                    // The bearer token goes wherever the link points: only follow links that
                    // stay on the service's own origin.
                    if !self.same_origin(link) {
                        return Err(AzureError::InvalidResponse {
                            service: self.service,
                            method: "GET".into(),
                            url: self.base_url.clone(),
                            reason: format!("the next-page link {link} leaves the service's host"),
                        });
                    }
                    let mut call = Call::new(Method::GET, link);
                    // Headers such as `ConsistencyLevel: eventual` must accompany every page.
                    call.headers = pager.headers.clone();
                    pager.next = Some(call);
                }
            }
        })
    }
}
