//! Error bodies in the exact shapes the real services return.
//!
//! Graph: `{"error":{"code","message","innerError":{"date","request-id","client-request-id"}}}`
//! (facts file §2). ARM: `{"error":{"code","message"}}` (common-types ErrorResponse).
//! AADSTS token errors live in `token.rs`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

/// A Graph error response. `details` is optional (`[{code, message, target}]`).
#[derive(Debug, Clone)]
pub struct GraphError {
    pub status: StatusCode,
    pub code: String,
    pub message: String,
    pub details: Vec<Value>,
}

impl GraphError {
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        GraphError {
            status,
            code: code.to_owned(),
            message: message.into(),
            details: Vec::new(),
        }
    }

    pub fn with_detail(mut self, code: &str, message: &str, target: &str) -> Self {
        self.details
            .push(json!({"code": code, "message": message, "target": target}));
        self
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "Request_BadRequest", message)
    }

    /// Directory objects that do not exist (or are not yet replicated).
    pub fn not_found(id: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "Request_ResourceNotFound",
            format!("Resource '{id}' does not exist or one of its queried reference-property objects are not present."),
        )
    }
}

impl IntoResponse for GraphError {
    fn into_response(self) -> Response {
        let now = time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
        let mut error = json!({
            "code": self.code,
            "message": self.message,
            // request-id / client-request-id are filled in by the behaviour middleware, which
            // knows the ids it put on the response headers.
            "innerError": {"date": now, "request-id": "", "client-request-id": ""},
        });
        if !self.details.is_empty() {
            error["details"] = Value::Array(self.details);
        }
        (self.status, axum::Json(json!({ "error": error }))).into_response()
    }
}

/// An ARM error response.
#[derive(Debug, Clone)]
pub struct ArmError {
    pub status: StatusCode,
    pub code: String,
    pub message: String,
}

impl ArmError {
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        ArmError {
            status,
            code: code.to_owned(),
            message: message.into(),
        }
    }

    /// `ResourceNotFound` as ARM returns it for a missing resource.
    pub fn resource_not_found(
        resource_type: &str,
        name: &str,
        resource_group: Option<&str>,
    ) -> Self {
        let msg = match resource_group {
            Some(rg) => format!("The Resource '{resource_type}/{name}' under resource group '{rg}' was not found. For more details please go to https://aka.ms/ARMResourceNotFoundFix"),
            None => format!("The Resource '{resource_type}/{name}' was not found."),
        };
        Self::new(StatusCode::NOT_FOUND, "ResourceNotFound", msg)
    }
}

impl IntoResponse for ArmError {
    fn into_response(self) -> Response {
        (
            self.status,
            axum::Json(json!({"error": {"code": self.code, "message": self.message}})),
        )
            .into_response()
    }
}
