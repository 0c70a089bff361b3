//! Test-controlled behaviours applied to every request: request ids, request log, fault rules,
//! throttling with Retry-After, latency injection, replication lag settings, spec validation.

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;

use crate::AppState;

#[derive(Default)]
pub struct BehaviourState {}

impl BehaviourState {
    /// Replication lag applied to Graph directory reads.
    pub fn graph_lag(&self) -> std::time::Duration {
        std::time::Duration::ZERO
    }
}

pub async fn middleware(State(_s): State<AppState>, req: Request, next: Next) -> Response {
    next.run(req).await
}
