//! An emulated Microsoft Entra tenant: token endpoint, Microsoft Graph v1.0 (the subset the
//! provider uses) and Azure Resource Manager, served from one in-memory, stateful model.
//!
//! `app(state)` builds the whole HTTP surface so tests can serve it in-process on an ephemeral
//! port; the `breakglass-fake-tenant` binary serves it for `make demo` and the e2e tests.
//! Behaviour follows the documents listed in `fake-tenant/README.md`, including the awkward parts
//! (asynchronous PIM provisioning, replication lag, throttling, array-replacing PATCH).

pub mod admin;
pub mod arm;
pub mod audit;
pub mod behaviour;
pub mod error;
pub mod graph;
pub mod jwt;
pub mod seed;
pub mod spec;
pub mod state;
pub mod tls;
pub mod token;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Router;

pub use state::AppState;

/// The complete router: token endpoint, Graph under `/v1.0/`, ARM paths, and the test-only
/// admin API under `/_fake/`. Cross-cutting behaviours (request log, faults, throttling,
/// latency, spec validation, bearer checks) are layered here so handlers stay about semantics.
pub fn app(state: AppState) -> Router {
    // Graph is nested as a service, so it routes only after the behaviour layer has run: that
    // layer rewrites the `graph.` namespace alias to `microsoft.graph.` (see
    // `graph::canonical_path`) before the Graph routes see the path.
    let graph = graph::routes()
        .merge(token::graph_routes())
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            token::require_graph_token,
        ))
        .fallback(unknown_path)
        .with_state(state.clone());
    let arm =
        arm::routes()
            .merge(token::arm_routes())
            .route_layer(axum::middleware::from_fn_with_state(
                state.clone(),
                token::require_arm_token,
            ));
    Router::new()
        .merge(token::routes())
        .nest_service("/v1.0", graph)
        .merge(arm)
        .nest("/_fake", admin::routes())
        .fallback(unknown_path)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            behaviour::middleware,
        ))
        .with_state(state)
}

/// A path no area serves. Graph names the segment it could not resolve (we name the last one,
/// which is the unresolvable one for every path shape the provider sends); everything else
/// answers in ARM's error envelope.
async fn unknown_path(original: axum::extract::OriginalUri) -> Response {
    let path = original.path();
    if let Some(graph_path) = path.strip_prefix("/v1.0") {
        let segment = graph_path
            .trim_end_matches('/')
            .rsplit('/')
            .next()
            .unwrap_or_default();
        return error::GraphError::new(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            format!("Resource not found for the segment '{segment}'."),
        )
        .into_response();
    }
    error::ArmError::new(
        StatusCode::NOT_FOUND,
        "NotFound",
        format!("No HTTP resource was found that matches the request URI '{path}'."),
    )
    .into_response()
}
