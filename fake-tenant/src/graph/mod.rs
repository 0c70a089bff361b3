//! Microsoft Graph v1.0, served under `/v1.0/`. Shapes follow `specs/msgraph/`; status codes,
//! error codes and quirks follow `specs/msgraph/v1.0-breakglass-facts.md`.

pub mod directory;
pub mod odata;
pub mod pim;

use axum::Router;

use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .merge(directory::routes())
        .merge(pim::routes())
}
