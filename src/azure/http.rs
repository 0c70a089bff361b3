//! The one place requests leave the provider: `HttpPipeline::execute` adds the bearer token, a
//! `client-request-id`, per-attempt timeouts, retries (see `retry.rs`) and the DEBUG/TRACE log
//! lines, for Graph, ARM and the token endpoints alike.

use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use reqwest::header::HeaderMap;
use reqwest::Method;
use serde_json::Value as Json;
use tracing::{debug, trace, warn};

use crate::azure::error::{ApiError, AzureError, Service};
use crate::azure::redact;
use crate::azure::retry::{self, Deadline, RetryPolicy};
use crate::azure::throttle::{Family, Throttle};
use crate::azure::transport::Transport;

/// What a request carries.
#[derive(Debug, Clone)]
pub enum Body {
    Empty,
    Json(Json),
    /// `application/x-www-form-urlencoded`, used by the token endpoint.
    Form(Vec<(&'static str, String)>),
}

/// Whether a request may be sent again after it possibly reached the service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resend {
    /// GET, PUT, PATCH, DELETE and token requests: repeating them has the same effect.
    Idempotent,
    /// A create (POST). After an answer that leaves open whether it took effect (a 5xx, a
    /// dropped connection, a timeout) the request is re-sent only if the caller's probe says
    /// the object does not exist; a 429 or a refused connection proves it was not processed.
    ProbeFirst,
    /// The write of a read-modify-write: its body was computed from a read, and sending it
    /// again later — after a backoff or a `Retry-After` — could overwrite whatever others wrote
    /// meanwhile. Never re-sent (except at once with a fresh token after a 401); a transient
    /// failure comes back to the caller, who reads again and recomputes the body.
    Never,
}

/// Looks for the object a create would make; `Some(object)` ends the create with that object.
pub type CreateProbe<'a> =
    dyn Fn() -> BoxFuture<'a, Result<Option<Json>, AzureError>> + Send + Sync + 'a;

/// Where a request's bearer token comes from: the token cache in `auth/` implements it, so the
/// pipeline (which the token sources themselves send through) does not depend on how tokens
/// are obtained.
pub trait BearerTokens: Send + Sync {
    /// A valid access token for `scope` (registered for redaction by whoever made it).
    fn bearer<'a>(
        &'a self,
        scope: &'a str,
        deadline: &'a Deadline,
    ) -> BoxFuture<'a, Result<std::sync::Arc<str>, AzureError>>;
    /// Forgets the token for `scope`: the service rejected it.
    fn forget<'a>(&'a self, scope: &'a str) -> BoxFuture<'a, ()>;
}

pub struct ApiRequest<'a, 'p> {
    pub service: Service,
    pub method: Method,
    pub url: String,
    pub body: Body,
    /// Extra headers, e.g. `ConsistencyLevel: eventual`, `Metadata: true`.
    pub headers: Vec<(&'static str, String)>,
    /// Bearer token source and the scope to ask it for (`None` for token requests).
    pub auth: Option<(&'a dyn BearerTokens, &'a str)>,
    pub resend: Resend,
    pub probe: Option<&'p CreateProbe<'p>>,
    /// Token endpoints answer with credentials; their response bodies never reach the log.
    pub log_response_body: bool,
}

impl ApiRequest<'_, '_> {
    pub fn new(service: Service, method: Method, url: impl Into<String>) -> Self {
        ApiRequest {
            service,
            method,
            url: url.into(),
            body: Body::Empty,
            headers: Vec::new(),
            auth: None,
            resend: Resend::Idempotent,
            probe: None,
            log_response_body: true,
        }
    }
}

/// A final HTTP answer (success or not).
#[derive(Debug, Clone)]
pub struct ApiResponse {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Option<Json>,
    pub request_id: Option<String>,
    pub client_request_id: String,
    /// The create's probe found the object after an ambiguous failure; `body` is the probe's.
    pub from_probe: bool,
}

impl ApiResponse {
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// Connect and per-request timeouts plus the retry policy; cheap to clone (reqwest's client is
/// reference counted), so every service client shares one connection pool.
#[derive(Clone)]
pub struct HttpPipeline {
    client: reqwest::Client,
    pub policy: RetryPolicy,
    /// Shared by every clone: after a 429 the whole throttling family waits (`throttle.rs`).
    pub throttle: std::sync::Arc<Throttle>,
}

impl HttpPipeline {
    /// A pipeline with the proxies and trust store of the process environment.
    pub fn new(policy: RetryPolicy, user_agent: &str) -> Result<Self, String> {
        let transport = Transport::from_env(&|name: &str| std::env::var(name).ok())?;
        Self::with_transport(policy, user_agent, transport)
    }

    /// A pipeline with explicit proxy and trust settings (see `transport.rs`): the bundled
    /// roots plus `transport.extra_roots`, and `transport.proxy` deciding per URL. reqwest's
    /// own environment proxy lookup is switched off so that only Go's rules apply.
    pub fn with_transport(
        policy: RetryPolicy,
        user_agent: &str,
        transport: Transport,
    ) -> Result<Self, String> {
        let mut builder = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .user_agent(user_agent)
            .no_proxy();
        for der in &transport.extra_roots {
            match reqwest::Certificate::from_der(der) {
                Ok(cert) => builder = builder.add_root_certificate(cert),
                Err(e) => {
                    debug!(error = %e, "skipping a trust-store entry that is not a certificate")
                }
            }
        }
        if !transport.proxy.is_empty() {
            debug!(proxies = %transport.proxy.describe(), "requests go through proxies (NO_PROXY and loopback excepted)");
            let proxy = transport.proxy;
            builder = builder.proxy(reqwest::Proxy::custom(move |url| proxy.proxy_for(url)));
        }
        let client = builder
            .build()
            .map_err(|e| format!("building the HTTP client failed: {e}"))?;
        Ok(HttpPipeline {
            client,
            policy,
            throttle: std::sync::Arc::new(Throttle::new()),
        })
    }

    /// Sends `req` until it succeeds, fails for good, or the deadline leaves no room for another
    /// attempt. Non-2xx answers that are not retried come back as `Ok` so that callers with
    /// their own error format (the token endpoint) can read them; see `send` for the usual path.
    pub async fn execute(
        &self,
        req: &ApiRequest<'_, '_>,
        deadline: &Deadline,
    ) -> Result<ApiResponse, AzureError> {
        let operation = format!("{} {}", req.method, req.url);
        let mut attempt: u32 = 0;
        let mut token_refreshed = false;
        // Set when the previous attempt may have been processed by the service.
        let mut ambiguous = false;
        loop {
            attempt += 1;
            if ambiguous && req.resend == Resend::ProbeFirst {
                if let Some(probe) = req.probe {
                    if let Some(found) = probe().await? {
                        debug!(url = %req.url, attempt, "create found its object after an ambiguous failure; not re-sending");
                        return Ok(ApiResponse {
                            status: 200,
                            headers: HeaderMap::new(),
                            body: Some(found),
                            request_id: None,
                            client_request_id: String::new(),
                            from_probe: true,
                        });
                    }
                }
            }
            let outcome = self.attempt(req, deadline, attempt).await;
            let (failure, server_wait) = match outcome {
                Ok(resp) if resp.is_success() => return Ok(resp),
                Ok(resp) if resp.status == 401 && req.auth.is_some() && !token_refreshed => {
                    // A token the cache still trusts was rejected (revoked, clock skew): get a
                    // fresh one once before giving up.
                    if let Some((tokens, scope)) = req.auth {
                        tokens.forget(scope).await;
                    }
                    token_refreshed = true;
                    ambiguous = false;
                    continue;
                }
                Ok(resp) if retry::is_retryable_status(resp.status) => {
                    ambiguous = resp.status != 429;
                    let wait = retry::retry_after(&resp.headers);
                    if resp.status == 429 {
                        self.throttle
                            .throttled(Family::of(req.service, &req.url), wait);
                    }
                    (Attempt::Answer(resp), wait)
                }
                Ok(resp) => return Ok(resp),
                Err(AttemptError::Final(e)) => return Err(e),
                Err(AttemptError::Transport { error, not_sent }) => {
                    ambiguous = !not_sent;
                    (Attempt::Transport(error), None)
                }
            };
            let last = || match &failure {
                Attempt::Answer(resp) => AzureError::from(self.api_error(req, resp)),
                Attempt::Transport(e) => e.clone(),
            };
            if ambiguous && req.resend == Resend::ProbeFirst && req.probe.is_none() {
                // Without a way to check, re-sending could create a duplicate.
                return Err(last());
            }
            if req.resend == Resend::Never {
                return Err(last());
            }
            if attempt >= self.policy.max_attempts {
                return match failure {
                    Attempt::Answer(resp) => Ok(resp),
                    Attempt::Transport(e) => Err(e),
                };
            }
            let wait = server_wait.unwrap_or_else(|| self.policy.backoff(attempt));
            if deadline.would_pass(wait) {
                return Err(AzureError::Deadline {
                    operation,
                    budget: deadline.budget(),
                    attempts: attempt,
                    last: Some(Box::new(last())),
                });
            }
            debug!(
                url = %req.url,
                attempt,
                wait_ms = wait.as_millis() as u64,
                server_requested = server_wait.is_some(),
                "retrying after a transient failure"
            );
            tokio::time::sleep(wait).await;
        }
    }

    /// `execute`, with any non-2xx answer turned into a typed `ApiError`.
    pub async fn send(
        &self,
        req: &ApiRequest<'_, '_>,
        deadline: &Deadline,
    ) -> Result<ApiResponse, AzureError> {
        let resp = self.execute(req, deadline).await?;
        if resp.is_success() {
            Ok(resp)
        } else {
            Err(self.api_error(req, &resp).into())
        }
    }

    pub fn api_error(&self, req: &ApiRequest<'_, '_>, resp: &ApiResponse) -> ApiError {
        let mut error = ApiError::from_body(
            req.service,
            req.method.as_str(),
            &req.url,
            resp.status,
            resp.body.as_ref(),
            resp.request_id.clone(),
            Some(resp.client_request_id.clone()),
        );
        error.retry_after = retry::retry_after(&resp.headers);
        error
    }

    async fn attempt(
        &self,
        req: &ApiRequest<'_, '_>,
        deadline: &Deadline,
        attempt: u32,
    ) -> Result<ApiResponse, AttemptError> {
        if deadline.is_expired() {
            return Err(AttemptError::Final(AzureError::Deadline {
                operation: format!("{} {}", req.method, req.url),
                budget: deadline.budget(),
                attempts: attempt - 1,
                last: None,
            }));
        }
        self.throttle.admit(Family::of(req.service, &req.url)).await;
        let client_request_id = uuid::Uuid::new_v4().to_string();
        let mut builder = self
            .client
            .request(req.method.clone(), &req.url)
            .timeout(self.policy.request_timeout.min(deadline.remaining()))
            .header("client-request-id", &client_request_id)
            .header("x-ms-client-request-id", &client_request_id)
            .header("return-client-request-id", "true");
        for (name, value) in &req.headers {
            builder = builder.header(*name, value);
        }
        if let Some((tokens, scope)) = req.auth {
            let token = tokens
                .bearer(scope, deadline)
                .await
                .map_err(AttemptError::Final)?;
            builder = builder.bearer_auth(&*token);
        }
        builder = match &req.body {
            Body::Empty => builder,
            Body::Json(j) => builder.json(j),
            Body::Form(fields) => builder.form(fields),
        };
        if tracing::enabled!(tracing::Level::TRACE) {
            let headers: Vec<String> = req
                .headers
                .iter()
                .map(|(n, v)| format!("{n}: {}", redact::header_value(n, v)))
                .collect();
            let body = match &req.body {
                Body::Empty => String::new(),
                Body::Json(j) => redact::json_body(j).to_string(),
                Body::Form(f) => redact::form_body(f),
            };
            trace!(method = %req.method, url = %req.url, attempt, headers = ?headers, body = %body, "request");
        }

        let started = Instant::now();
        let family = Family::of(req.service, &req.url);
        let result = builder.send().await;
        self.throttle.completed(family);
        let resp = match result {
            Ok(r) => r,
            Err(e) => {
                let elapsed_ms = started.elapsed().as_millis() as u64;
                warn!(method = %req.method, url = %req.url, attempt, elapsed_ms, error = %transport_reason(&e), "HTTP request failed without an answer");
                if is_untrusted_certificate(&e) {
                    // Retrying cannot help: the server (or a TLS-inspecting proxy) presents a
                    // certificate no trusted CA issued.
                    return Err(AttemptError::Final(AzureError::Transport {
                        service: req.service,
                        method: req.method.to_string(),
                        url: req.url.clone(),
                        reason: format!(
                            "{}. The server's TLS certificate is not trusted: if a proxy or TLS \
                             inspection re-signs traffic, add its CA certificate to the system \
                             trust store or name it in SSL_CERT_FILE",
                            transport_reason(&e)
                        ),
                    }));
                }
                return Err(AttemptError::Transport {
                    not_sent: e.is_connect(),
                    error: AzureError::Transport {
                        service: req.service,
                        method: req.method.to_string(),
                        url: req.url.clone(),
                        reason: transport_reason(&e),
                    },
                });
            }
        };
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let bytes = match resp.bytes().await {
            Ok(b) => b,
            Err(e) => {
                return Err(AttemptError::Transport {
                    not_sent: false,
                    error: AzureError::Transport {
                        service: req.service,
                        method: req.method.to_string(),
                        url: req.url.clone(),
                        reason: format!("reading the response failed: {}", transport_reason(&e)),
                    },
                })
            }
        };
        let elapsed_ms = started.elapsed().as_millis() as u64;
        let request_id = [
            "request-id",
            "x-ms-request-id",
            "x-ms-correlation-request-id",
        ]
        .iter()
        .find_map(|h| headers.get(*h).and_then(|v| v.to_str().ok()))
        .map(str::to_owned);
        debug!(
            method = %req.method,
            url = %req.url,
            status,
            elapsed_ms,
            attempt,
            request_id = request_id.as_deref().unwrap_or(""),
            client_request_id = %client_request_id,
            "HTTP exchange"
        );
        let body = if bytes.is_empty() {
            None
        } else {
            match serde_json::from_slice::<Json>(&bytes) {
                Ok(j) => Some(j),
                Err(_) if !(200..300).contains(&status) => None,
                Err(e) => {
                    return Err(AttemptError::Final(AzureError::InvalidResponse {
                        service: req.service,
                        method: req.method.to_string(),
                        url: req.url.clone(),
                        reason: format!("the body is not JSON ({e})"),
                    }))
                }
            }
        };
        if tracing::enabled!(tracing::Level::TRACE) {
            let logged = match (&body, req.log_response_body) {
                (Some(j), true) => redact::json_body(j).to_string(),
                (Some(_), false) => "[withheld: credential response]".to_owned(),
                (None, _) => String::new(),
            };
            trace!(method = %req.method, url = %req.url, status, body = %logged, "response");
        }
        Ok(ApiResponse {
            status,
            headers,
            body,
            request_id,
            client_request_id,
            from_probe: false,
        })
    }
}

enum Attempt {
    Answer(ApiResponse),
    Transport(AzureError),
}

enum AttemptError {
    /// Not worth retrying (a token could not be obtained, a malformed 2xx).
    Final(AzureError),
    /// No answer. `not_sent` when the connection was never established.
    Transport { error: AzureError, not_sent: bool },
}

/// Whether the request failed because certificate verification failed (rustls's verdict,
/// somewhere in reqwest's error chain, possibly inside an `io::Error`).
fn is_untrusted_certificate(e: &reqwest::Error) -> bool {
    let is_cert_error = |err: &(dyn std::error::Error + 'static)| {
        matches!(
            err.downcast_ref::<rustls::Error>(),
            Some(rustls::Error::InvalidCertificate(_) | rustls::Error::NoCertificatesPresented)
        )
    };
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if is_cert_error(s)
            || s.downcast_ref::<std::io::Error>()
                .and_then(|io| io.get_ref())
                .is_some_and(|inner| is_cert_error(inner))
        {
            return true;
        }
        source = s.source();
    }
    false
}

/// reqwest's error chain, flattened: the top level alone ("error sending request") says little.
fn transport_reason(e: &reqwest::Error) -> String {
    let mut reason = if e.is_timeout() {
        "timed out".to_owned()
    } else if e.is_connect() {
        "connection failed".to_owned()
    } else {
        "request failed".to_owned()
    };
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        reason.push_str(": ");
        reason.push_str(&s.to_string());
        source = s.source();
    }
    reason
}
