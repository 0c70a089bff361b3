//! `/reports/authenticationMethods/userRegistrationDetails[/{id}]`: per user, which
//! authentication methods are registered and what the user is capable of
//! ("userRegistrationDetails resource type", "Get userRegistrationDetails",
//! learn.microsoft.com/graph). Computed from what the emulator knows about each user:
//! - `methodsRegistered`: one entry per passkey, `passKeyDeviceBound` or `passKeySynced` by
//!   its `passkeyType` (the names Graph's registration and usage reports use). The password is
//!   not a registered MFA/SSPR method and is not listed. Certificate-based authentication needs
//!   no registration (a user is bound through `certificateUserIds` or the UPN), and no
//!   document says the report lists it, so it is not listed either;
//! - `isMfaRegistered`/`isMfaCapable`/`isPasswordlessCapable`: a passkey is registered (the
//!   emulator has no authentication methods policy that could disallow it);
//! - `isAdmin`: the user holds a directory role at tenant scope;
//! - SSPR flags false (no SSPR methods are modelled), system-preferred MFA enabled (Microsoft
//!   managed default), `userPreferredMethodForSecondaryAuthentication` `none`.
//!
//! Permission: `AuditLog.Read.All` (the only one the Get page lists for applications).

use axum::extract::{Path, State};
use axum::http::{HeaderMap, Uri};
use axum::{Extension, Json};
use serde_json::{json, Map, Value};

use super::{authorize_read, location, now};
use crate::error::GraphError;
use crate::graph::odata::QueryRules;
use crate::state::Tenant;
use crate::token::Caller;
use crate::AppState;

const READ: [&str; 1] = ["AuditLog.Read.All"];

const RULES: QueryRules = QueryRules {
    entity: "userRegistrationDetails",
    default_page_size: 100,
    max_top: 999,
    directory_object: false,
    default_select: None,
};

fn details_for(tenant: &Tenant, user: &Map<String, Value>) -> Map<String, Value> {
    let id = user["id"].as_str().unwrap_or_default();
    let methods: Vec<Value> = tenant
        .directory
        .fido2_methods
        .get(&id.to_ascii_lowercase())
        .into_iter()
        .flatten()
        .map(|m| match m["passkeyType"].as_str() {
            Some("synced") => json!("passKeySynced"),
            _ => json!("passKeyDeviceBound"),
        })
        .collect();
    let strong = !methods.is_empty();
    let user_type = match user["userType"].as_str() {
        Some(t) if t.eq_ignore_ascii_case("Guest") => "guest",
        _ => "member",
    };
    let updated = user["lastPasswordChangeDateTime"]
        .as_str()
        .or(user["createdDateTime"].as_str())
        .map(str::to_owned)
        .unwrap_or_else(now);
    let mut out = Map::new();
    out.insert("id".into(), json!(id));
    out.insert(
        "userPrincipalName".into(),
        user["userPrincipalName"].clone(),
    );
    out.insert(
        "userDisplayName".into(),
        json!(user["displayName"].as_str().unwrap_or_default()),
    );
    out.insert("userType".into(), json!(user_type));
    out.insert(
        "isAdmin".into(),
        json!(!tenant.pim.directory_roles_at(id, "/").is_empty()),
    );
    out.insert("isMfaRegistered".into(), json!(strong));
    out.insert("isMfaCapable".into(), json!(strong));
    out.insert("isPasswordlessCapable".into(), json!(strong));
    out.insert("isSsprRegistered".into(), json!(false));
    out.insert("isSsprEnabled".into(), json!(false));
    out.insert("isSsprCapable".into(), json!(false));
    out.insert(
        "isSystemPreferredAuthenticationMethodEnabled".into(),
        json!(true),
    );
    out.insert("systemPreferredAuthenticationMethods".into(), json!([]));
    out.insert(
        "userPreferredMethodForSecondaryAuthentication".into(),
        json!("none"),
    );
    out.insert("methodsRegistered".into(), Value::Array(methods));
    out.insert("lastUpdatedDateTime".into(), json!(updated));
    out
}

fn report_location(state: &AppState) -> crate::graph::odata::CollectionLocation {
    location(
        state,
        "/reports/authenticationMethods/userRegistrationDetails",
        "reports/authenticationMethods/userRegistrationDetails",
    )
}

pub async fn list(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Json<Value>, GraphError> {
    let read = authorize_read(&caller, &READ, &uri, &headers, &RULES)?;
    let rows = {
        let tenant = state.tenant();
        let lag = tenant.behaviour.graph_lag();
        tenant
            .directory
            .users
            .list(lag)
            .into_iter()
            .map(|u| details_for(&tenant, u))
            .collect()
    };
    Ok(read.collection(rows, &report_location(&state)))
}

/// By user object id; an unknown id → 404.
pub async fn get_one(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Json<Value>, GraphError> {
    let read = authorize_read(&caller, &READ, &uri, &headers, &RULES)?;
    let row = {
        let tenant = state.tenant();
        let lag = tenant.behaviour.graph_lag();
        tenant
            .directory
            .users
            .get(&id, lag)
            .map(|u| details_for(&tenant, u))
    }
    .ok_or_else(|| GraphError::not_found(&id))?;
    Ok(read.entity(&row, &report_location(&state)))
}
