//! Role definitions, direct role assignments, PIM schedule requests / schedules / instances and
//! PIM policies (`/roleManagement/directory/...`, `/policies/roleManagementPolicy...`).

use axum::Router;
use serde_json::Value;

use crate::AppState;

#[derive(Default)]
pub struct PimState {}

impl PimState {
    pub fn from_seed(_seed: &Value) -> Result<Self, String> {
        Ok(PimState {})
    }
}

pub fn routes() -> Router<AppState> {
    Router::new()
}

/// Test-only admin routes for this area, mounted under `/_fake/`.
pub fn admin_routes() -> Router<AppState> {
    Router::new()
}
