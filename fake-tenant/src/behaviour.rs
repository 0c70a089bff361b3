//! Test-controlled behaviours applied to every request: request ids, request log, fault rules,
//! throttling with Retry-After, latency injection, replication lag settings, spec validation.

use std::time::Duration;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use serde_json::{Map, Value};

use crate::AppState;

#[derive(Default)]
pub struct BehaviourState {
    /// Free-form knobs set through `PUT /_fake/settings` (a JSON object merged into this map)
    /// and read by the areas, e.g. `graph.replication_lag_ms`, `pim.provisioning_delay_ms`.
    /// Keys are documented in fake-tenant/README.md next to the behaviour they drive.
    pub settings: Map<String, Value>,
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
}

pub async fn middleware(State(_s): State<AppState>, req: Request, next: Next) -> Response {
    next.run(req).await
}
