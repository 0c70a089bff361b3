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

    /// Whether the principal holds an active privileged directory role (e.g. Global
    /// Administrator). DIRECTORY calls this for Graph's privileged-user protection: deleting or
    /// changing sensitive properties of such a user needs a higher-privileged caller.
    /// Placeholder added by DIRECTORY until PIM's assignments exist.
    pub fn holds_privileged_role(&self, _principal_id: &str) -> bool {
        false
    }
}

pub fn routes() -> Router<AppState> {
    Router::new()
}

/// Test-only admin routes for this area, mounted under `/_fake/`.
pub fn admin_routes() -> Router<AppState> {
    Router::new()
}
