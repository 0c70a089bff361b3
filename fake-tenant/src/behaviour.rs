//! Test-controlled behaviours applied to every request: request ids, request log, fault rules,
//! throttling with Retry-After, latency injection, replication lag settings, spec validation.
//!
//! Admin requests (`/_fake/...`) bypass all of this: they are the test's control channel, not
//! part of the emulated services.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use regex::Regex;
use serde_json::{json, Map, Value};

use crate::error::{ArmError, GraphError};
use crate::spec::{self, Api};
use crate::AppState;

/// Request and response bodies larger than this are not buffered for logging (none of the
/// emulated APIs come near it).
const MAX_BUFFERED_BODY: usize = 16 * 1024 * 1024;

/// The API family a request belongs to; throttling, latency and counters are per family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Family {
    Graph,
    /// Conditional-access policies have their own, much stricter, documented limits.
    GraphConditionalAccess,
    Arm,
    Token,
    Admin,
}

impl Family {
    pub fn of_path(path: &str) -> Family {
        if path.starts_with("/_fake/") || path == "/_fake" {
            Family::Admin
        } else if let Some(graph_path) = path.strip_prefix("/v1.0") {
            if graph_path
                .to_ascii_lowercase()
                .starts_with("/identity/conditionalaccess")
            {
                Family::GraphConditionalAccess
            } else {
                Family::Graph
            }
        } else if path.contains("/oauth2/")
            || path.contains("/.well-known/openid-configuration")
            || path.contains("/discovery/")
            || path.starts_with("/metadata/identity")
            || path.starts_with("/msi/")
        {
            Family::Token
        } else {
            Family::Arm
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Family::Graph => "graph",
            Family::GraphConditionalAccess => "graph-conditional-access",
            Family::Arm => "arm",
            Family::Token => "token",
            Family::Admin => "admin",
        }
    }

    pub fn from_name(name: &str) -> Option<Family> {
        [
            Family::Graph,
            Family::GraphConditionalAccess,
            Family::Arm,
            Family::Token,
        ]
        .into_iter()
        .find(|f| f.name() == name)
    }

    fn is_graph(self) -> bool {
        matches!(self, Family::Graph | Family::GraphConditionalAccess)
    }
}

/// When a rule closes the connection instead of answering.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropConnection {
    /// Before the request reaches the service: nothing is processed, no byte is answered.
    BeforeResponse,
    /// After the service processed and committed the request: its answer is lost on the way
    /// back, so the client cannot tell whether the write happened.
    AfterCommit,
}

impl DropConnection {
    fn name(self) -> &'static str {
        match self {
            DropConnection::BeforeResponse => "before_response",
            DropConnection::AfterCommit => "after_commit",
        }
    }
}

/// A fault rule: requests matching `method` and `path` get `effect`, `remaining` more times
/// (`None` = for ever), once `skip` matching requests have gone through untouched. Rules are
/// matched in the order they were added.
#[derive(Debug, Clone)]
pub struct FaultRule {
    pub id: u64,
    pub method: Option<Method>,
    pub path: Regex,
    pub status: Option<StatusCode>,
    pub body: Option<Value>,
    pub retry_after_s: Option<u64>,
    pub delay: Duration,
    pub drop_connection: Option<DropConnection>,
    /// The request waits, unprocessed, until the rule is removed; then its connection is closed
    /// without an answer (a client killed while its request was in flight).
    pub hold: bool,
    /// Matching requests still to let through before the rule takes effect (`after`).
    pub skip: u64,
    pub remaining: Option<u64>,
    pub hits: u64,
}

impl FaultRule {
    pub fn from_json(id: u64, v: &Value) -> Result<FaultRule, String> {
        let method = match v.get("method").and_then(Value::as_str) {
            None | Some("*") => None,
            Some(m) => Some(
                Method::from_bytes(m.to_ascii_uppercase().as_bytes())
                    .map_err(|_| format!("fault rule: bad method '{m}'"))?,
            ),
        };
        let pattern = v
            .get("path")
            .and_then(Value::as_str)
            .ok_or("fault rule needs 'path' (a regex matched against the request path)")?;
        let path = Regex::new(pattern).map_err(|e| format!("fault rule: bad path regex: {e}"))?;
        let status = match v.get("status").and_then(Value::as_u64) {
            None => None,
            Some(code) => Some(
                u16::try_from(code)
                    .ok()
                    .and_then(|c| StatusCode::from_u16(c).ok())
                    .ok_or_else(|| format!("fault rule: bad status {code}"))?,
            ),
        };
        let drop_connection = match v.get("drop_connection") {
            None | Some(Value::Null) | Some(Value::Bool(false)) => None,
            Some(Value::Bool(true)) => Some(DropConnection::BeforeResponse),
            Some(Value::String(s)) if s == "before_response" => Some(DropConnection::BeforeResponse),
            Some(Value::String(s)) if s == "after_commit" => Some(DropConnection::AfterCommit),
            Some(other) => {
                return Err(format!(
                    "fault rule: 'drop_connection' must be true, \"before_response\" or \"after_commit\", not {other}"
                ))
            }
        };
        let hold = v.get("hold").and_then(Value::as_bool).unwrap_or(false);
        let delay = Duration::from_millis(v.get("delay_ms").and_then(Value::as_u64).unwrap_or(0));
        if status.is_none() && drop_connection.is_none() && !hold && delay.is_zero() {
            return Err(
                "fault rule needs 'status', 'delay_ms', 'drop_connection' or 'hold'".into(),
            );
        }
        if hold && (status.is_some() || drop_connection.is_some()) {
            return Err(
                "fault rule: 'hold' cannot be combined with 'status' or 'drop_connection'".into(),
            );
        }
        if status.is_some() && drop_connection.is_some() {
            return Err("fault rule: 'status' and 'drop_connection' exclude each other".into());
        }
        let skip = match v.get("after") {
            None | Some(Value::Null) => 0,
            Some(n) => n
                .as_u64()
                .ok_or("fault rule: 'after' must be a non-negative number")?,
        };
        let remaining = match v.get("times") {
            None => Some(1),
            Some(Value::Null) => None,
            Some(n) => Some(
                n.as_u64()
                    .ok_or("fault rule: 'times' must be a number or null")?,
            ),
        };
        Ok(FaultRule {
            id,
            method,
            path,
            status,
            body: v.get("body").cloned(),
            retry_after_s: v.get("retry_after").and_then(Value::as_u64),
            delay,
            drop_connection,
            hold,
            skip,
            remaining,
            hits: 0,
        })
    }

    pub fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "method": self.method.as_ref().map(Method::as_str),
            "path": self.path.as_str(),
            "status": self.status.map(|s| s.as_u16()),
            "body": self.body,
            "retry_after": self.retry_after_s,
            "delay_ms": u64::try_from(self.delay.as_millis()).unwrap_or(u64::MAX),
            "drop_connection": self.drop_connection.map(DropConnection::name),
            "hold": self.hold,
            "after": self.skip,
            "remaining": self.remaining,
            "hits": self.hits,
        })
    }

    fn matches(&self, method: &Method, path: &str) -> bool {
        self.remaining != Some(0)
            && self.method.as_ref().is_none_or(|m| m == method)
            && self.path.is_match(path)
    }
}

/// A fixed-window request limit for one family.
#[derive(Debug, Clone)]
pub struct ThrottleRule {
    pub limit: u64,
    pub window: Duration,
    window_start: Instant,
    count: u64,
}

impl ThrottleRule {
    pub fn new(limit: u64, window: Duration) -> ThrottleRule {
        ThrottleRule {
            limit,
            window,
            window_start: Instant::now(),
            count: 0,
        }
    }

    /// Counts a request; `Some(retry_after_s)` when it is over the limit.
    fn admit(&mut self, now: Instant) -> Option<u64> {
        if now.duration_since(self.window_start) >= self.window {
            self.window_start = now;
            self.count = 0;
        }
        self.count += 1;
        if self.count <= self.limit {
            return None;
        }
        let left = self
            .window
            .saturating_sub(now.duration_since(self.window_start));
        // Retry-After is whole seconds; round up so a caller that honours it is admitted.
        Some(left.as_secs() + u64::from(left.subsec_nanos() > 0))
    }
}

#[derive(Default)]
pub struct BehaviourState {
    /// Free-form knobs set through `PUT /_fake/settings` (a JSON object merged into this map)
    /// and read by the areas, e.g. `graph.replication_lag_ms`, `pim.provisioning_delay_ms`.
    /// Keys are documented in fake-tenant/README.md next to the behaviour they drive.
    pub settings: Map<String, Value>,
    pub faults: Vec<FaultRule>,
    pub throttles: BTreeMap<Family, ThrottleRule>,
    /// Logged requests, oldest first, secrets redacted.
    pub request_log: Vec<Value>,
    /// Responses per family and status code.
    pub counters: BTreeMap<Family, BTreeMap<u16, u64>>,
    /// Response bodies that did not match the specs: `{operation, pointer, problem, ...}`.
    pub spec_violations: Vec<Value>,
    next_id: u64,
}

impl BehaviourState {
    /// A numeric setting, or `default` when unset.
    pub fn setting_u64(&self, key: &str, default: u64) -> u64 {
        self.settings
            .get(key)
            .and_then(Value::as_u64)
            .unwrap_or(default)
    }

    pub fn setting_bool(&self, key: &str, default: bool) -> bool {
        self.settings
            .get(key)
            .and_then(Value::as_bool)
            .unwrap_or(default)
    }

    /// Replication lag applied to Graph directory reads (`graph.replication_lag_ms`).
    pub fn graph_lag(&self) -> Duration {
        Duration::from_millis(self.setting_u64("graph.replication_lag_ms", 0))
    }

    /// Replication lag applied to ARM reads (`arm.replication_lag_ms`).
    pub fn arm_lag(&self) -> Duration {
        Duration::from_millis(self.setting_u64("arm.replication_lag_ms", 0))
    }

    /// A new id for fault rules and log entries.
    pub fn next_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// Latency injected into every request of `family` (`latency.<family>_ms`).
    fn latency(&self, family: Family) -> Duration {
        Duration::from_millis(self.setting_u64(&format!("latency.{}_ms", family.name()), 0))
    }

    fn take_fault(&mut self, method: &Method, path: &str) -> Option<FaultRule> {
        for rule in self.faults.iter_mut().filter(|r| r.matches(method, path)) {
            if rule.skip > 0 {
                // Not yet: this request goes on as if the rule were not there.
                rule.skip -= 1;
                continue;
            }
            if let Some(n) = rule.remaining.as_mut() {
                *n -= 1;
            }
            rule.hits += 1;
            return Some(rule.clone());
        }
        None
    }

    /// Whether the fault rule `id` is still installed (a held request waits for its removal).
    fn has_fault(&self, id: u64) -> bool {
        self.faults.iter().any(|r| r.id == id)
    }
}

// ---------------------------------------------------------------------------------------------
// Redaction

/// JSON members whose values are credentials.
const SECRET_KEYS: [&str; 8] = [
    "password",
    "client_secret",
    "client_assertion",
    "assertion",
    "access_token",
    "refresh_token",
    "id_token",
    "secretText",
];

const REDACTED: &str = "[REDACTED]";

/// A compact JWS anywhere in a body is a token (access token, CI ID token): hide it.
fn looks_like_jwt(s: &str) -> bool {
    s.starts_with("eyJ") && s.matches('.').count() == 2
}

/// Replaces credential values in a JSON document.
pub fn redact(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (key, member) in map.iter_mut() {
                if SECRET_KEYS.iter().any(|k| k.eq_ignore_ascii_case(key)) && !member.is_null() {
                    *member = Value::String(REDACTED.into());
                } else {
                    redact(member);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(redact),
        Value::String(s) if looks_like_jwt(s) => *s = REDACTED.into(),
        _ => {}
    }
}

/// A body as it goes into the request log: JSON (redacted), a form (redacted), or text.
fn loggable_body(bytes: &Bytes, content_type: Option<&str>) -> Value {
    if bytes.is_empty() {
        return Value::Null;
    }
    if let Ok(mut json) = serde_json::from_slice::<Value>(bytes) {
        redact(&mut json);
        return json;
    }
    if content_type.is_some_and(|c| c.starts_with("application/x-www-form-urlencoded")) {
        let mut form: Map<String, Value> = form_urlencoded::parse(bytes)
            .map(|(k, v)| (k.into_owned(), Value::String(v.into_owned())))
            .collect();
        for (key, value) in form.iter_mut() {
            if SECRET_KEYS.contains(&key.as_str()) {
                *value = Value::String(REDACTED.into());
            }
        }
        return Value::Object(form);
    }
    let text = String::from_utf8_lossy(bytes);
    if looks_like_jwt(text.trim()) {
        Value::String(REDACTED.into())
    } else {
        Value::String(text.into_owned())
    }
}

/// Request headers for the log, without credentials.
fn loggable_headers(headers: &HeaderMap) -> Value {
    let mut out = Map::new();
    for (name, value) in headers {
        let shown = match name.as_str() {
            "authorization" | "x-identity-header" | "cookie" => REDACTED.to_owned(),
            _ => value.to_str().unwrap_or("<binary>").to_owned(),
        };
        out.insert(name.as_str().to_owned(), Value::String(shown));
    }
    Value::Object(out)
}

// ---------------------------------------------------------------------------------------------
// Responses the behaviours produce themselves

fn rfc3339_now_ms() -> String {
    let now = time::OffsetDateTime::now_utc();
    let now = now
        .replace_nanosecond(now.millisecond() as u32 * 1_000_000)
        .unwrap_or(now);
    now.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// The error code a Graph / ARM service uses for an HTTP status, for fault rules without a body.
fn service_error_code(family: Family, status: StatusCode) -> &'static str {
    match (family.is_graph(), status.as_u16()) {
        (true, 400) => "BadRequest",
        (true, 401) => "InvalidAuthenticationToken",
        (true, 403) => "Authorization_RequestDenied",
        (true, 404) => "Request_ResourceNotFound",
        (true, 409) => "Directory_ConcurrencyViolation",
        (_, 412) => "PreconditionFailed",
        (_, 429) => "TooManyRequests",
        (false, 400) => "InvalidRequestContent",
        (false, 401) => "AuthenticationFailed",
        (false, 403) => "AuthorizationFailed",
        (false, 404) => "ResourceNotFound",
        (false, 409) => "Conflict",
        (_, 502) => "BadGateway",
        (_, 503) => "ServiceUnavailable",
        (_, 504) => "GatewayTimeout",
        _ => "InternalServerError",
    }
}

fn service_error(family: Family, status: StatusCode, code: &str, message: &str) -> Response {
    match family {
        Family::Token => (
            status,
            axum::Json(json!({"error": "temporarily_unavailable", "error_description": message})),
        )
            .into_response(),
        f if f.is_graph() => GraphError::new(status, code, message).into_response(),
        _ => ArmError::new(status, code, message).into_response(),
    }
}

fn fault_response(family: Family, rule: &FaultRule, status: StatusCode) -> Response {
    let mut response = match &rule.body {
        Some(body) => (status, axum::Json(body.clone())).into_response(),
        None => service_error(
            family,
            status,
            service_error_code(family, status),
            "Injected fault: the emulated service failed this request.",
        ),
    };
    if let Some(seconds) = rule.retry_after_s {
        response
            .headers_mut()
            .insert("retry-after", HeaderValue::from(seconds));
    }
    response
}

fn throttled_response(family: Family, retry_after_s: u64) -> Response {
    let message = match family {
        Family::Arm => format!("The request is being throttled as the limit has been reached for this operation type. Please try again after '{retry_after_s}' seconds."),
        _ => "Too many requests. Please retry after the interval given in the Retry-After header.".to_owned(),
    };
    let mut response = service_error(
        family,
        StatusCode::TOO_MANY_REQUESTS,
        "TooManyRequests",
        &message,
    );
    response
        .headers_mut()
        .insert("retry-after", HeaderValue::from(retry_after_s));
    response
}

/// A response whose body fails before any byte is written: hyper aborts the connection, so
/// the client sees a dropped connection rather than a status.
fn dropped_connection() -> Response {
    let failing = futures_util::stream::once(async {
        Err::<Bytes, std::io::Error>(std::io::Error::new(
            std::io::ErrorKind::ConnectionAborted,
            "injected dropped connection",
        ))
    });
    Response::new(Body::from_stream(failing))
}

/// `Location` of an entity a Graph POST created: OData requires it on `201 Created` ("OData
/// Version 4.01 Part 1: Protocol", Create an Entity: "a Location header that contains the edit
/// URL or read URL of the created entity"). Built as `{public base}{collection}/{id}`, so it
/// follows the public base URL like every other URL the emulator emits.
fn created_location(
    state: &AppState,
    collection: &str,
    body: Option<&Value>,
) -> Option<HeaderValue> {
    let id = body?.get("id")?.as_str()?;
    let url = format!(
        "{}{}/{id}",
        state.base_url(),
        collection.trim_end_matches('/')
    );
    HeaderValue::from_str(&url).ok()
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty())
}

/// Request-id headers as each service sets them: Graph echoes `client-request-id` (or reuses
/// its own id), ARM echoes `x-ms-correlation-request-id`.
fn request_ids(family: Family, headers: &HeaderMap) -> Vec<(&'static str, String)> {
    let id = uuid::Uuid::new_v4().to_string();
    if family.is_graph() {
        let client = header_str(headers, "client-request-id")
            .unwrap_or(&id)
            .to_owned();
        vec![("request-id", id), ("client-request-id", client)]
    } else if family == Family::Arm {
        let correlation = header_str(headers, "x-ms-correlation-request-id")
            .map(str::to_owned)
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        vec![
            ("x-ms-request-id", id),
            ("x-ms-correlation-request-id", correlation),
        ]
    } else {
        vec![("x-ms-request-id", id)]
    }
}

/// Puts the request ids into a Graph error body's `innerError`.
fn fill_inner_error(body: &mut Value, ids: &[(&'static str, String)]) -> bool {
    let Some(inner) = body
        .pointer_mut("/error/innerError")
        .and_then(Value::as_object_mut)
    else {
        return false;
    };
    for (name, value) in ids {
        inner.insert((*name).to_owned(), Value::String(value.clone()));
    }
    true
}

// ---------------------------------------------------------------------------------------------
// The middleware

pub async fn middleware(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let path = req.uri().path().to_owned();
    let family = Family::of_path(&path);
    if family == Family::Admin {
        return next.run(req).await;
    }
    let received = Instant::now();
    let received_at = rfc3339_now_ms();
    let method = req.method().clone();
    let query = req.uri().query().unwrap_or_default().to_owned();
    let (mut parts, body) = req.into_parts();
    // Graph's `graph.` namespace alias means `microsoft.graph.`: routing and the spec checks
    // see the spelled-out form, the request log what the client sent.
    let canonical = if family.is_graph() {
        crate::graph::canonical_path(&path)
    } else {
        None
    };
    if let Some(canonical) = &canonical {
        let rewritten = match parts.uri.query() {
            Some(q) => format!("{canonical}?{q}"),
            None => canonical.clone(),
        };
        if let Ok(uri) = rewritten.parse() {
            parts.uri = uri;
        }
    }
    let spec_path = canonical.as_deref().unwrap_or(&path).to_owned();
    let request_bytes = match axum::body::to_bytes(body, MAX_BUFFERED_BODY).await {
        Ok(bytes) => bytes,
        Err(_) => return (StatusCode::PAYLOAD_TOO_LARGE, "request body too large").into_response(),
    };
    let ids = request_ids(family, &parts.headers);

    let (fault, throttled, latency) = {
        let mut tenant = state.tenant();
        let behaviour = &mut tenant.behaviour;
        let fault = behaviour.take_fault(&method, &path);
        let throttled = behaviour
            .throttles
            .get_mut(&family)
            .and_then(|rule| rule.admit(received));
        (fault, throttled, behaviour.latency(family))
    };
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }

    let mut response = None;
    if let Some(rule) = &fault {
        if !rule.delay.is_zero() {
            tokio::time::sleep(rule.delay).await;
        }
        if rule.hold {
            // Parked until the test removes the rule; the request is then abandoned unprocessed,
            // as if its client had died with it in flight.
            while state.tenant().behaviour.has_fault(rule.id) {
                tokio::time::sleep(HOLD_POLL).await;
            }
            response = Some(dropped_connection());
        } else if rule.drop_connection == Some(DropConnection::BeforeResponse) {
            response = Some(dropped_connection());
        } else if let Some(status) = rule.status {
            response = Some(fault_response(family, rule, status));
        }
    }
    if response.is_none() {
        if let Some(retry_after) = throttled {
            response = Some(throttled_response(family, retry_after));
        }
    }
    let api = match family {
        Family::Graph | Family::GraphConditionalAccess => Some(Api::Graph),
        Family::Arm => Some(Api::Arm),
        _ => None,
    };
    let request_json: Option<Value> = serde_json::from_slice(&request_bytes).ok();
    if response.is_none() {
        if let (Some(api), Some(body)) = (api, request_json.as_ref()) {
            if let Err(problem) = spec::check_request(api, &method, &spec_path, &query, body) {
                response = Some(match api {
                    Api::Graph => GraphError::bad_request(problem).into_response(),
                    Api::Arm => {
                        ArmError::new(StatusCode::BAD_REQUEST, "InvalidRequestContent", problem)
                            .into_response()
                    }
                });
            }
        }
    }
    let dropped_unprocessed = fault
        .as_ref()
        .is_some_and(|f| f.hold || f.drop_connection == Some(DropConnection::BeforeResponse));
    let response = match response {
        Some(r) => r,
        None => {
            let req = Request::from_parts(parts.clone(), Body::from(request_bytes.clone()));
            next.run(req).await
        }
    };
    let logged_fault = fault.as_ref().map(FaultRule::log_entry);
    if dropped_unprocessed {
        record(
            &state,
            family,
            &method,
            &path,
            &query,
            &parts.headers,
            &request_bytes,
            Logged {
                status: None,
                committed_status: None,
                fault: logged_fault,
            },
            &Value::Null,
            received,
            &received_at,
        );
        return response;
    }
    let lost_after_commit = fault
        .as_ref()
        .is_some_and(|f| f.drop_connection == Some(DropConnection::AfterCommit));

    let (mut response_parts, body) = response.into_parts();
    let mut response_bytes = axum::body::to_bytes(body, MAX_BUFFERED_BODY)
        .await
        .unwrap_or_default();
    let mut response_json: Option<Value> = serde_json::from_slice(&response_bytes).ok();
    if family.is_graph() && response_parts.status.as_u16() >= 400 {
        if let Some(json) = response_json.as_mut() {
            if fill_inner_error(json, &ids) {
                response_bytes = Bytes::from(json.to_string());
                response_parts
                    .headers
                    .remove(axum::http::header::CONTENT_LENGTH);
            }
        }
    }
    if family.is_graph() && response_parts.status == StatusCode::CREATED {
        if let Some(location) = created_location(&state, &spec_path, response_json.as_ref()) {
            response_parts
                .headers
                .entry(axum::http::header::LOCATION)
                .or_insert(location);
        }
    }
    for (name, value) in &ids {
        if let Ok(value) = HeaderValue::from_str(value) {
            response_parts
                .headers
                .insert(HeaderName::from_static(name), value);
        }
    }
    if let (Some(api), Some(json)) = (api, response_json.as_ref()) {
        let violations = spec::check_response(
            api,
            &method,
            &spec_path,
            &query,
            response_parts.status.as_u16(),
            json,
        );
        if !violations.is_empty() {
            state.tenant().behaviour.spec_violations.extend(violations);
        }
    }
    let mut logged_response = response_json.clone().unwrap_or_else(|| {
        if response_bytes.is_empty() {
            Value::Null
        } else {
            Value::String(String::from_utf8_lossy(&response_bytes).into_owned())
        }
    });
    redact(&mut logged_response);
    let status = Some(response_parts.status);
    record(
        &state,
        family,
        &method,
        &path,
        &query,
        &parts.headers,
        &request_bytes,
        Logged {
            status: if lost_after_commit { None } else { status },
            committed_status: if lost_after_commit { status } else { None },
            fault: logged_fault,
        },
        &logged_response,
        received,
        &received_at,
    );
    if lost_after_commit {
        // The service did its work (and the state above has it); only the answer is lost.
        return dropped_connection();
    }
    Response::from_parts(response_parts, Body::from(response_bytes))
}

/// How often a held request looks whether its rule is gone.
const HOLD_POLL: Duration = Duration::from_millis(20);

/// What the log says about the outcome of one request.
struct Logged {
    /// The status the client received; `None` when the connection was closed instead.
    status: Option<StatusCode>,
    /// For an answer lost after the service committed: the status it had produced.
    committed_status: Option<StatusCode>,
    /// The fault rule that touched the request, if any.
    fault: Option<Value>,
}

impl FaultRule {
    /// `{id, kind}` for the request log: which rule touched a request and how.
    fn log_entry(&self) -> Value {
        let kind = if self.hold {
            "hold"
        } else if let Some(drop) = self.drop_connection {
            drop.name()
        } else if self.status.is_some() {
            "status"
        } else {
            "delay"
        };
        json!({"id": self.id, "kind": kind})
    }
}

/// Appends a request-log entry and counts the response.
#[allow(clippy::too_many_arguments)]
fn record(
    state: &AppState,
    family: Family,
    method: &Method,
    path: &str,
    query: &str,
    headers: &HeaderMap,
    request_bytes: &Bytes,
    outcome: Logged,
    response_body: &Value,
    received: Instant,
    received_at: &str,
) {
    let status = outcome.status;
    let content_type = header_str(headers, "content-type");
    let entry_body = loggable_body(request_bytes, content_type);
    let duration_ms = u64::try_from(received.elapsed().as_millis()).unwrap_or(u64::MAX);
    let mut tenant = state.tenant();
    let behaviour = &mut tenant.behaviour;
    let id = behaviour.next_id();
    behaviour.request_log.push(json!({
        "id": id,
        "family": family.name(),
        "method": method.as_str(),
        "path": path,
        "query": query,
        // `null` when the connection was dropped on purpose.
        "status": status.map(|s| s.as_u16()),
        "committedStatus": outcome.committed_status.map(|s| s.as_u16()),
        "fault": outcome.fault,
        "requestHeaders": loggable_headers(headers),
        "requestBody": entry_body,
        "responseBody": response_body,
        "receivedAt": received_at,
        "durationMs": duration_ms,
    }));
    *behaviour
        .counters
        .entry(family)
        .or_default()
        .entry(status.map_or(0, |s| s.as_u16()))
        .or_default() += 1;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_follow_the_path() {
        assert_eq!(Family::of_path("/v1.0/users"), Family::Graph);
        assert_eq!(
            Family::of_path("/v1.0/identity/conditionalAccess/policies/x"),
            Family::GraphConditionalAccess
        );
        assert_eq!(Family::of_path("/abc/oauth2/v2.0/token"), Family::Token);
        assert_eq!(
            Family::of_path("/subscriptions/1/resourceGroups/rg"),
            Family::Arm
        );
        assert_eq!(Family::of_path("/_fake/requests"), Family::Admin);
    }

    #[test]
    fn redaction_hides_credentials_and_tokens_but_keeps_the_rest() {
        let mut body = json!({
            "displayName": "BG 1",
            "passwordProfile": {"password": "Sup3r$ecret!", "forceChangePasswordNextSignIn": false},
            "value": "eyJhbGciOi.eyJzdWIiOi.c2ln",
        });
        redact(&mut body);
        assert_eq!(body["displayName"], json!("BG 1"));
        assert_eq!(body["passwordProfile"]["password"], json!(REDACTED));
        assert_eq!(
            body["passwordProfile"]["forceChangePasswordNextSignIn"],
            json!(false)
        );
        assert_eq!(body["value"], json!(REDACTED));
        let form = loggable_body(
            &Bytes::from("grant_type=client_credentials&client_secret=s3cr3t&scope=x"),
            Some("application/x-www-form-urlencoded"),
        );
        assert_eq!(form["client_secret"], json!(REDACTED));
        assert_eq!(form["grant_type"], json!("client_credentials"));
    }

    #[test]
    fn throttle_window_admits_limit_then_names_the_wait() {
        let mut rule = ThrottleRule::new(2, Duration::from_secs(10));
        let start = rule.window_start;
        assert_eq!(rule.admit(start), None);
        assert_eq!(rule.admit(start + Duration::from_secs(1)), None);
        assert_eq!(rule.admit(start + Duration::from_millis(2500)), Some(8));
        assert_eq!(
            rule.admit(start + Duration::from_secs(11)),
            None,
            "new window"
        );
    }

    #[test]
    fn fault_rules_count_down_and_default_to_once() {
        let rule = FaultRule::from_json(
            1,
            &json!({"method": "get", "path": "^/v1\\.0/users$", "status": 503}),
        )
        .unwrap();
        let mut state = BehaviourState {
            faults: vec![rule],
            ..Default::default()
        };
        assert!(state.take_fault(&Method::POST, "/v1.0/users").is_none());
        assert!(state.take_fault(&Method::GET, "/v1.0/users").is_some());
        assert!(state.take_fault(&Method::GET, "/v1.0/users").is_none());
        assert!(FaultRule::from_json(2, &json!({"path": "x"})).is_err());
    }
}
