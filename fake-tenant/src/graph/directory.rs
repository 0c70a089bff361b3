//! Users, deleted items, domains, organization, groups, authentication methods and
//! conditional-access policies.

use axum::Router;
use serde_json::Value;

use crate::AppState;

#[derive(Default)]
pub struct DirectoryState {}

impl DirectoryState {
    pub fn from_seed(_seed: &Value) -> Result<Self, String> {
        Ok(DirectoryState {})
    }
}

pub fn routes() -> Router<AppState> {
    Router::new()
}

/// Test-only admin routes for this area, mounted under `/_fake/`.
pub fn admin_routes() -> Router<AppState> {
    Router::new()
}
