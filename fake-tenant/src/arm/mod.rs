//! Azure Resource Manager: tenant diagnostic settings (microsoft.aadiam), resource groups,
//! Log Analytics workspaces and tables, action groups and scheduled query rules.

use axum::Router;
use serde_json::Value;

use crate::AppState;

#[derive(Default)]
pub struct ArmState {}

impl ArmState {
    pub fn from_seed(_seed: &Value) -> Result<Self, String> {
        Ok(ArmState {})
    }
}

pub fn routes() -> Router<AppState> {
    Router::new()
}

/// Test-only admin routes for this area, mounted under `/_fake/`.
pub fn admin_routes() -> Router<AppState> {
    Router::new()
}
