//! `/directory/deletedItems`: soft-deleted users, their restore and permanent deletion.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::{Extension, Json};
use serde_json::{Map, Value};

use super::users::{duplicate_upn, USER_RULES};
use super::{authorize_read, location, reader_view, require_permission, USER_READ, USER_WRITE};
use crate::error::GraphError;
use crate::graph::odata::{entity_response, ODataQuery, QueryRules};
use crate::token::Caller;
use crate::AppState;

/// Deleted items are returned whole (there is no default property subset) and always carry
/// their derived type, since the collection is typed as `directoryObject`.
const DELETED_RULES: QueryRules = QueryRules {
    default_select: None,
    ..USER_RULES
};

/// Deleted users stay restorable for 30 days; after that the directory purges them.
const RETENTION: time::Duration = time::Duration::days(30);

fn within_retention(item: &Map<String, Value>) -> bool {
    let deleted = item
        .get("deletedDateTime")
        .and_then(Value::as_str)
        .and_then(|d| {
            time::OffsetDateTime::parse(d, &time::format_description::well_known::Rfc3339).ok()
        });
    deleted.is_none_or(|d| time::OffsetDateTime::now_utc() - d < RETENTION)
}

fn typed(mut user: Map<String, Value>) -> Map<String, Value> {
    let mut out = Map::new();
    out.insert(
        "@odata.type".into(),
        Value::String("#microsoft.graph.user".into()),
    );
    user.remove("@odata.type");
    out.extend(user);
    out
}

/// `GET /directory/deletedItems/microsoft.graph.user`: listing needs the type-cast segment.
pub async fn list_users(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Json<Value>, GraphError> {
    let read = authorize_read(&caller, &USER_READ, &uri, &headers, &DELETED_RULES)?;
    let items = reader_view(&state, |directory, lag| {
        directory
            .deleted_items
            .list(lag)
            .into_iter()
            .filter(|item| within_retention(item))
            .cloned()
            .map(typed)
            .collect()
    });
    let location = location(
        &state,
        "/directory/deletedItems/microsoft.graph.user",
        "directory/deletedItems/microsoft.graph.user",
    );
    Ok(read.collection(items, &location))
}

pub async fn get_one(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Json<Value>, GraphError> {
    if let Some(cast) = id.strip_prefix("microsoft.graph.") {
        // A type-cast segment, not an id (the `{id}` route also catches it).
        return cast_other_than_user(&state, &caller, cast);
    }
    let read = authorize_read(&caller, &USER_READ, &uri, &headers, &DELETED_RULES)?;
    let item = reader_view(&state, |directory, lag| {
        directory
            .deleted_items
            .get(&id, lag)
            .filter(|item| within_retention(item))
            .cloned()
    });
    let item = typed(item.ok_or_else(|| GraphError::not_found(&id))?);
    let location = location(&state, "/directory/deletedItems", "directory/deletedItems");
    Ok(read.entity(&item, &location))
}

/// Types "List deletedItems" can list besides users. The emulator only soft-deletes users, so
/// these lists are empty; any other cast is a segment Graph cannot resolve (400, as for every
/// unknown segment), never a 404 for an "object" named like a type.
const OTHER_DELETED_TYPES: [&str; 8] = [
    "administrativeUnit",
    "application",
    "certificateAuthorityDetail",
    "certificateBasedAuthPki",
    "externalUserProfile",
    "group",
    "pendingExternalUserProfile",
    "servicePrincipal",
];

fn cast_other_than_user(
    state: &AppState,
    caller: &Caller,
    cast: &str,
) -> Result<Json<Value>, GraphError> {
    if !OTHER_DELETED_TYPES.contains(&cast) {
        return Err(GraphError::new(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            format!("Resource not found for the segment 'microsoft.graph.{cast}'."),
        ));
    }
    require_permission(caller, &USER_READ)?;
    Ok(Json(serde_json::json!({
        "@odata.context": format!(
            "{}/v1.0/$metadata#directory/deletedItems/microsoft.graph.{cast}",
            state.base_url()
        ),
        "value": [],
    })))
}

/// Permanent deletion: the object, its password and its authentication methods are gone.
pub async fn purge(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<StatusCode, GraphError> {
    require_permission(&caller, &USER_WRITE)?;
    let mut tenant = state.tenant();
    let directory = &mut tenant.directory;
    if !directory
        .deleted_items
        .get_latest(&id)
        .is_some_and(within_retention)
    {
        return Err(GraphError::not_found(&id));
    }
    let purged = directory.deleted_items.remove(&id);
    let key = id.to_ascii_lowercase();
    directory.deleted_upns.remove(&key);
    directory.password_hashes.remove(&key);
    directory.fido2_methods.remove(&key);
    if let Some(user) = purged {
        crate::audit::user_hard_deleted(&mut tenant, &caller, &user);
    }
    Ok(StatusCode::NO_CONTENT)
}

/// `POST .../restore`: 200 with the restored object; fails while another live object holds
/// the user's original UPN.
pub async fn restore(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Json<Value>, GraphError> {
    require_permission(&caller, &USER_WRITE)?;
    let restored = {
        let mut tenant = state.tenant();
        let directory = &mut tenant.directory;
        let mut user = directory
            .deleted_items
            .get_latest(&id)
            .filter(|item| within_retention(item))
            .cloned()
            .ok_or_else(|| GraphError::not_found(&id))?;
        let key = id.to_ascii_lowercase();
        if let Some(upn) = directory.deleted_upns.get(&key).cloned() {
            if directory.user_by_upn_latest(&upn).is_some() {
                return Err(duplicate_upn());
            }
            user.insert("userPrincipalName".into(), Value::String(upn));
        }
        user.insert("deletedDateTime".into(), Value::Null);
        directory.deleted_items.remove(&id);
        directory.deleted_upns.remove(&key);
        let user_id = user["id"].as_str().unwrap_or(&id).to_owned();
        directory.users.put(&user_id, user.clone());
        crate::audit::user_restored(&mut tenant, &caller, &user);
        user
    };
    let location = location(&state, "/directory/deletedItems", "directoryObjects");
    Ok(Json(entity_response(
        &typed(restored),
        &ODataQuery::default(),
        &DELETED_RULES,
        &location,
    )))
}
