//! The test-only admin API under `/_fake/`: behaviours, fault rules, request log, state dump,
//! reset, counters. Never part of the emulated services' surface.

use axum::Router;

use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .merge(crate::token::admin_routes())
        .merge(crate::graph::directory::admin_routes())
        .merge(crate::graph::pim::admin_routes())
        .merge(crate::arm::admin_routes())
}
