//! The token endpoint (`/{tenant}/oauth2/v2.0/token`), the managed-identity endpoint, and the
//! bearer checks every Graph / ARM call goes through.

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use axum::Router;
use serde_json::Value;

use crate::AppState;

#[derive(Default)]
pub struct AuthState {}

/// Who is calling, taken from a verified bearer token and put into the request's extensions by
/// `require_graph_token` / `require_arm_token`. Handlers that enforce permissions take
/// `axum::Extension<Caller>`.
#[derive(Debug, Clone, Default)]
pub struct Caller {
    /// Application (client) id of the calling app or managed identity.
    pub app_id: String,
    /// Object id of the service principal (or user) the token was issued to.
    pub object_id: String,
    /// Application permissions granted (Graph `roles` claim), e.g. `User.ReadWrite.All`.
    pub roles: Vec<String>,
    /// Ids of directory role definitions the principal holds (e.g. Privileged Role
    /// Administrator), used for the "privileged user" write protection.
    pub directory_roles: Vec<String>,
}

impl AuthState {
    pub fn from_seed(_seed: &Value, _tenant_id: &str) -> Result<Self, String> {
        Ok(AuthState {})
    }
}

pub fn routes() -> Router<AppState> {
    Router::new()
}

pub async fn require_graph_token(State(_s): State<AppState>, req: Request, next: Next) -> Response {
    next.run(req).await
}

pub async fn require_arm_token(State(_s): State<AppState>, req: Request, next: Next) -> Response {
    next.run(req).await
}
