//! Validation of request and response bodies against the vendored structural API descriptions
//! in `specs/` (Graph OpenAPI 3 subset, ARM Swagger 2).

use axum::http::Method;
use serde_json::Value;

/// Which description a request is checked against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    Graph,
    Arm,
}

/// Checks a request body; `Err(message)` is the service's 400 message.
pub fn check_request(
    _api: Api,
    _method: &Method,
    _path: &str,
    _query: &str,
    _body: &Value,
) -> Result<(), String> {
    Ok(())
}

/// Checks a response body; returns the violations found (`{operation, pointer, problem}`).
pub fn check_response(
    _api: Api,
    _method: &Method,
    _path: &str,
    _query: &str,
    _status: u16,
    _body: &Value,
) -> Vec<Value> {
    Vec::new()
}
