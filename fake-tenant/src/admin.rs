//! The test-only admin API under `/_fake/`: behaviours, fault rules, request log, state dump,
//! reset, counters. Never part of the emulated services' surface.
//!
//! Admin errors are plain `{"error": "<what is wrong>"}`: they are for test authors, not for
//! code that expects service error shapes.

use std::collections::BTreeMap;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use axum::{Json, Router};
use regex::Regex;
use serde_json::{json, Map, Value};

use crate::behaviour::{Family, FaultRule, ThrottleRule};
use crate::state::Tenant;
use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/settings", put(put_settings).get(get_settings))
        .route(
            "/faults",
            post(add_faults).get(list_faults).delete(clear_faults),
        )
        .route("/faults/{id}", delete(remove_fault))
        .route("/throttle", put(put_throttle).get(get_throttle))
        .route("/requests", get(list_requests).delete(clear_requests))
        .route("/counters", get(get_counters).delete(clear_counters))
        .route("/state", get(dump_state).post(load_state))
        .route("/reset", post(reset))
        .route(
            "/spec-violations",
            get(spec_violations).delete(clear_spec_violations),
        )
        .merge(crate::token::admin_routes())
        .merge(crate::graph::directory::admin_routes())
        .merge(crate::graph::pim::admin_routes())
        .merge(crate::arm::admin_routes())
}

fn bad_request(message: impl Into<String>) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({"error": message.into()})),
    )
        .into_response()
}

/// `PUT /_fake/settings`: merges a JSON object into the settings (`null` removes a key).
async fn put_settings(State(state): State<AppState>, Json(body): Json<Value>) -> Response {
    let Value::Object(changes) = body else {
        return bad_request("settings must be a JSON object");
    };
    let mut tenant = state.tenant();
    for (key, value) in changes {
        if value.is_null() {
            tenant.behaviour.settings.remove(&key);
        } else {
            tenant.behaviour.settings.insert(key, value);
        }
    }
    Json(Value::Object(tenant.behaviour.settings.clone())).into_response()
}

async fn get_settings(State(state): State<AppState>) -> Json<Value> {
    Json(Value::Object(state.tenant().behaviour.settings.clone()))
}

/// `POST /_fake/faults`: one rule object or an array of them, appended in order.
async fn add_faults(State(state): State<AppState>, Json(body): Json<Value>) -> Response {
    let specs = match body {
        Value::Array(items) => items,
        single => vec![single],
    };
    let mut tenant = state.tenant();
    let mut added = Vec::new();
    for spec in &specs {
        let id = tenant.behaviour.next_id();
        match FaultRule::from_json(id, spec) {
            Ok(rule) => added.push(rule),
            Err(e) => return bad_request(e),
        }
    }
    let answer: Vec<Value> = added.iter().map(FaultRule::to_json).collect();
    tenant.behaviour.faults.extend(added);
    (StatusCode::CREATED, Json(json!({"value": answer}))).into_response()
}

async fn list_faults(State(state): State<AppState>) -> Json<Value> {
    let tenant = state.tenant();
    let rules: Vec<Value> = tenant
        .behaviour
        .faults
        .iter()
        .map(FaultRule::to_json)
        .collect();
    Json(json!({"value": rules}))
}

async fn clear_faults(State(state): State<AppState>) -> StatusCode {
    state.tenant().behaviour.faults.clear();
    StatusCode::NO_CONTENT
}

async fn remove_fault(State(state): State<AppState>, Path(id): Path<u64>) -> StatusCode {
    let mut tenant = state.tenant();
    let before = tenant.behaviour.faults.len();
    tenant.behaviour.faults.retain(|r| r.id != id);
    if tenant.behaviour.faults.len() == before {
        StatusCode::NOT_FOUND
    } else {
        StatusCode::NO_CONTENT
    }
}

/// `PUT /_fake/throttle`: `{"family": "graph-conditional-access", "limit": 5, "window_s": 10}`
/// (or an array of them); `"limit": null` removes the family's limit.
async fn put_throttle(State(state): State<AppState>, Json(body): Json<Value>) -> Response {
    let specs = match body {
        Value::Array(items) => items,
        single => vec![single],
    };
    let mut parsed = Vec::new();
    for spec in &specs {
        let Some(family) = spec["family"].as_str().and_then(Family::from_name) else {
            return bad_request(
                "throttle needs 'family': graph, graph-conditional-access, arm or token",
            );
        };
        let rule = match (spec.get("limit"), spec["window_s"].as_u64()) {
            (None | Some(Value::Null), _) => None,
            (Some(limit), Some(window_s)) if window_s > 0 => match limit.as_u64() {
                Some(limit) => Some(ThrottleRule::new(limit, Duration::from_secs(window_s))),
                None => return bad_request("'limit' must be a number or null"),
            },
            _ => return bad_request("throttle needs 'window_s' (seconds, > 0) with 'limit'"),
        };
        parsed.push((family, rule));
    }
    let mut tenant = state.tenant();
    for (family, rule) in parsed {
        match rule {
            Some(rule) => tenant.behaviour.throttles.insert(family, rule),
            None => tenant.behaviour.throttles.remove(&family),
        };
    }
    throttle_json(&tenant).into_response()
}

fn throttle_json(tenant: &Tenant) -> Json<Value> {
    let rules: Map<String, Value> = tenant
        .behaviour
        .throttles
        .iter()
        .map(|(family, rule)| {
            (
                family.name().to_owned(),
                json!({"limit": rule.limit, "window_s": rule.window.as_secs()}),
            )
        })
        .collect();
    Json(Value::Object(rules))
}

async fn get_throttle(State(state): State<AppState>) -> Json<Value> {
    throttle_json(&state.tenant())
}

/// `GET /_fake/requests?method=POST&path=<regex>&family=graph`: the request log, oldest first.
async fn list_requests(
    State(state): State<AppState>,
    Query(filter): Query<BTreeMap<String, String>>,
) -> Response {
    let path = match filter.get("path").map(|p| Regex::new(p)) {
        None => None,
        Some(Ok(re)) => Some(re),
        Some(Err(e)) => return bad_request(format!("bad path regex: {e}")),
    };
    let tenant = state.tenant();
    let entries: Vec<Value> = tenant
        .behaviour
        .request_log
        .iter()
        .filter(|e| {
            filter.get("method").is_none_or(|m| {
                e["method"]
                    .as_str()
                    .is_some_and(|x| x.eq_ignore_ascii_case(m))
            }) && filter
                .get("family")
                .is_none_or(|f| e["family"].as_str() == Some(f.as_str()))
                && path
                    .as_ref()
                    .is_none_or(|re| re.is_match(e["path"].as_str().unwrap_or_default()))
        })
        .cloned()
        .collect();
    Json(json!({"value": entries})).into_response()
}

async fn clear_requests(State(state): State<AppState>) -> StatusCode {
    state.tenant().behaviour.request_log.clear();
    StatusCode::NO_CONTENT
}

/// `GET /_fake/counters`: responses per family and status, and access tokens per client.
async fn get_counters(State(state): State<AppState>) -> Json<Value> {
    let tenant = state.tenant();
    let requests: Map<String, Value> = tenant
        .behaviour
        .counters
        .iter()
        .map(|(family, by_status)| {
            let statuses: Map<String, Value> = by_status
                .iter()
                .map(|(status, n)| (status.to_string(), json!(n)))
                .collect();
            (family.name().to_owned(), Value::Object(statuses))
        })
        .collect();
    let tokens: Map<String, Value> = tenant
        .auth
        .tokens_issued
        .iter()
        .map(|(client, n)| (client.clone(), json!(n)))
        .collect();
    Json(json!({"requests": requests, "tokens_issued": tokens}))
}

async fn clear_counters(State(state): State<AppState>) -> StatusCode {
    let mut tenant = state.tenant();
    tenant.behaviour.counters.clear();
    tenant.auth.tokens_issued.clear();
    StatusCode::NO_CONTENT
}

/// The whole tenant as a seed: loading it (`POST /_fake/state` or `--seed`) reproduces it.
pub fn dump(tenant: &Tenant) -> Value {
    json!({
        "tenant": {"id": tenant.tenant_id, "displayName": tenant.display_name},
        "auth": tenant.auth.dump(),
        "directory": tenant.directory.dump(),
        "pim": tenant.pim.dump(),
        "arm": tenant.arm.dump(),
    })
}

async fn dump_state(State(state): State<AppState>) -> Json<Value> {
    Json(dump(&state.tenant()))
}

/// Replaces the tenant with one built from `seed`, keeping settings, fault rules and throttles
/// (they belong to the test, not to the tenant) and the original seed for `reset`.
fn replace_tenant(state: &AppState, seed: &Value, original_seed: Option<Value>) -> Response {
    let mut fresh = match crate::seed::build(seed) {
        Ok(t) => t,
        Err(e) => return bad_request(format!("cannot build a tenant from this state: {e}")),
    };
    let mut tenant = state.tenant();
    fresh.behaviour.settings = std::mem::take(&mut tenant.behaviour.settings);
    fresh.behaviour.faults = std::mem::take(&mut tenant.behaviour.faults);
    fresh.behaviour.throttles = std::mem::take(&mut tenant.behaviour.throttles);
    if let Some(original) = original_seed {
        fresh.seed = original;
    }
    *tenant = fresh;
    StatusCode::NO_CONTENT.into_response()
}

/// `POST /_fake/state`: loads a dump taken with `GET /_fake/state`.
async fn load_state(State(state): State<AppState>, Json(body): Json<Value>) -> Response {
    let original = state.tenant().seed.clone();
    replace_tenant(&state, &body, Some(original))
}

/// `POST /_fake/reset`: back to the seed the instance started with; the request log, counters
/// and spec violations are cleared, and so are settings, faults and throttles.
async fn reset(State(state): State<AppState>) -> Response {
    let seed = state.tenant().seed.clone();
    match crate::seed::build(&seed) {
        Ok(fresh) => {
            *state.tenant() = fresh;
            StatusCode::NO_CONTENT.into_response()
        }
        Err(e) => bad_request(format!("cannot rebuild the seed: {e}")),
    }
}

async fn spec_violations(State(state): State<AppState>) -> Json<Value> {
    Json(json!({"value": state.tenant().behaviour.spec_violations}))
}

async fn clear_spec_violations(State(state): State<AppState>) -> StatusCode {
    state.tenant().behaviour.spec_violations.clear();
    StatusCode::NO_CONTENT
}
