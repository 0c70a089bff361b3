//! `/groups`: groups as exclusion targets and their members. Role-assignable groups
//! (`isAssignableToRole`) are seeded like any other; membership is changed through the admin
//! API since Graph's `$ref` writes are outside the subset.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::{Extension, Json};
use serde_json::{Map, Value};

use super::users::DEFAULT_USER_PROPERTIES;
use super::{
    authorize_read, json_object, location, reader_view, require_permission, DirectoryState,
};
use crate::error::GraphError;
use crate::graph::odata::{QueryRules, ReadRequest};
use crate::token::Caller;
use crate::AppState;

const GROUP_RULES: QueryRules = QueryRules {
    entity: "group",
    default_page_size: 100,
    max_top: 999,
    directory_object: true,
    default_select: None,
};

/// Members are mostly users; `$select`/`$filter` names are checked against the user type.
const MEMBER_RULES: QueryRules = QueryRules {
    entity: "user",
    default_page_size: 100,
    max_top: 999,
    directory_object: true,
    default_select: None,
};

const GROUP_READ: [&str; 5] = [
    "Group.Read.All",
    "Group.ReadWrite.All",
    "GroupMember.Read.All",
    "Directory.Read.All",
    "Directory.ReadWrite.All",
];

pub async fn list(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Json<Value>, GraphError> {
    let read = authorize_read(&caller, &GROUP_READ, &uri, &headers, &GROUP_RULES)?;
    let groups = reader_view(&state, |directory, lag| {
        directory.groups.list(lag).into_iter().cloned().collect()
    });
    Ok(read.collection(groups, &location(&state, "/groups", "groups")))
}

pub async fn get_one(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Json<Value>, GraphError> {
    let read = authorize_read(&caller, &GROUP_READ, &uri, &headers, &GROUP_RULES)?;
    let group = reader_view(&state, |directory, lag| {
        directory.groups.get(&id, lag).cloned()
    })
    .ok_or_else(|| GraphError::not_found(&id))?;
    Ok(read.entity(&group, &location(&state, "/groups", "groups")))
}

/// A member as `/members` returns it: a directoryObject told apart by `@odata.type`.
pub(super) fn member_object(
    directory: &DirectoryState,
    member_id: &str,
    lag: std::time::Duration,
) -> Option<(&'static str, Map<String, Value>)> {
    let mut out = Map::new();
    if let Some(user) = directory.users.get(member_id, lag) {
        out.insert(
            "@odata.type".into(),
            Value::String("#microsoft.graph.user".into()),
        );
        for key in DEFAULT_USER_PROPERTIES {
            out.insert(key.into(), user.get(key).cloned().unwrap_or(Value::Null));
        }
        return Some(("microsoft.graph.user", out));
    }
    let group = directory.groups.get(member_id, lag)?;
    out.insert(
        "@odata.type".into(),
        Value::String("#microsoft.graph.group".into()),
    );
    out.extend(group.clone());
    Some(("microsoft.graph.group", out))
}

async fn list_members(
    state: AppState,
    caller: Caller,
    id: String,
    cast: Option<String>,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Json<Value>, GraphError> {
    require_permission(&caller, &GROUP_READ)?;
    if let Some(cast) = &cast {
        if cast != "microsoft.graph.user" && cast != "microsoft.graph.group" {
            return Err(GraphError::new(
                StatusCode::BAD_REQUEST,
                "BadRequest",
                format!("Resource not found for the segment '{cast}'."),
            ));
        }
    }
    let read = ReadRequest::parse(&uri, &headers, MEMBER_RULES)?;
    let members = reader_view(&state, |directory, lag| {
        if directory.groups.get(&id, lag).is_none() {
            return Err(GraphError::not_found(&id));
        }
        Ok(directory
            .group_members
            .get(&id.to_ascii_lowercase())
            .into_iter()
            .flatten()
            .filter_map(|m| member_object(directory, m, lag))
            .filter(|(kind, _)| cast.as_deref().is_none_or(|c| c == *kind))
            .map(|(_, object)| object)
            .collect())
    })?;
    let path = match &cast {
        Some(cast) => format!("/groups/{id}/members/{cast}"),
        None => format!("/groups/{id}/members"),
    };
    let context = match &cast {
        Some(_) => "users",
        None => "directoryObjects",
    };
    Ok(read.collection(members, &location(&state, path, context)))
}

pub async fn members(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Json<Value>, GraphError> {
    list_members(state, caller, id, None, uri, headers).await
}

/// `/groups/{id}/members/microsoft.graph.user`: the type-cast segment narrows the members.
pub async fn members_cast(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((id, cast)): Path<(String, String)>,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Json<Value>, GraphError> {
    list_members(state, caller, id, Some(cast), uri, headers).await
}

/// `POST /_fake/directory/groups/{id}/members` with `{"id": "<user or group id>"}`: adds a
/// member (idempotent). 204, or 404 when the group or the member does not exist.
pub async fn admin_add_member(
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<StatusCode, GraphError> {
    let body = json_object(&body)?;
    let member = body
        .get("id")
        .and_then(Value::as_str)
        .ok_or_else(|| GraphError::bad_request("Body needs the member's \"id\"."))?
        .to_owned();
    let mut tenant = state.tenant();
    let directory = &mut tenant.directory;
    if directory.groups.get_latest(&id).is_none() {
        return Err(GraphError::not_found(&id));
    }
    if directory.users.get_latest(&member).is_none()
        && directory.groups.get_latest(&member).is_none()
    {
        return Err(GraphError::not_found(&member));
    }
    let members = directory
        .group_members
        .entry(id.to_ascii_lowercase())
        .or_default();
    if !members.iter().any(|m| m.eq_ignore_ascii_case(&member)) {
        members.push(member);
    }
    Ok(StatusCode::NO_CONTENT)
}
