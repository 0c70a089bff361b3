//! `/users/{id}/authentication/...`: the password method and FIDO2 passkeys. Passkeys cannot be
//! registered through Graph (the CSDL marks them not insertable), so tests register them with
//! `POST /_fake/directory/users/{id}/fido2`; Graph can list, read and delete them.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use base64::Engine;
use serde_json::{Map, Value};

use super::users::find_user;
use super::{
    authorize_read, json_object, location, now, reader_view, require_permission,
    require_privileged_caller_for, DirectoryState,
};
use crate::error::GraphError;
use crate::graph::odata::{CollectionLocation, QueryRules};
use crate::token::Caller;
use crate::AppState;

/// The password method's id is the same in every tenant (facts file §3).
const PASSWORD_METHOD_ID: &str = "28c10230-6103-485e-b985-444c60001490";

const METHOD_RULES: QueryRules = QueryRules {
    entity: "authenticationMethod",
    default_page_size: 999,
    max_top: 999,
    directory_object: false,
    default_select: None,
};

const FIDO2_RULES: QueryRules = QueryRules {
    entity: "fido2AuthenticationMethod",
    ..METHOD_RULES
};

const METHODS_READ: [&str; 2] = [
    "UserAuthenticationMethod.Read.All",
    "UserAuthenticationMethod.ReadWrite.All",
];
const METHODS_WRITE: [&str; 1] = ["UserAuthenticationMethod.ReadWrite.All"];

/// The user's id as the reader sees it (by id or UPN), or 404.
fn visible_user_id(
    directory: &DirectoryState,
    key: &str,
    lag: std::time::Duration,
) -> Result<String, GraphError> {
    find_user(directory, key, lag)
        .and_then(|u| u["id"].as_str().map(str::to_owned))
        .ok_or_else(|| GraphError::not_found(key))
}

fn fido2_of(directory: &DirectoryState, user_id: &str) -> Vec<Map<String, Value>> {
    directory
        .fido2_methods
        .get(&user_id.to_ascii_lowercase())
        .cloned()
        .unwrap_or_default()
}

fn with_type(method: &Map<String, Value>, odata_type: &str) -> Map<String, Value> {
    let mut out = Map::new();
    out.insert("@odata.type".into(), Value::String(odata_type.into()));
    out.extend(method.clone());
    out
}

/// The user's passkeys: addressed as the caller wrote the user (id or UPN), described by id.
fn fido2_location(state: &AppState, key: &str, user_id: &str) -> CollectionLocation {
    location(
        state,
        format!("/users/{key}/authentication/fido2Methods"),
        &format!("users('{user_id}')/authentication/fido2Methods"),
    )
}

/// Every method of the user, each with `@odata.type`: the password (for users with one) and
/// the passkeys. Certificate-based authentication has no per-user method in Graph v1.0 (the
/// methods API lists none, and a certificate binds through `authorizationInfo`), so users with
/// `certificateUserIds` show no extra entry here.
fn methods_of(
    directory: &DirectoryState,
    user_id: &str,
    lag: std::time::Duration,
) -> Vec<Map<String, Value>> {
    let mut methods = Vec::new();
    if directory.has_password(user_id) {
        let user = directory.users.get(user_id, lag);
        let mut password = Map::new();
        password.insert(
            "@odata.type".into(),
            Value::String("#microsoft.graph.passwordAuthenticationMethod".into()),
        );
        password.insert("id".into(), Value::String(PASSWORD_METHOD_ID.into()));
        // The password itself is never returned.
        password.insert("password".into(), Value::Null);
        password.insert(
            "createdDateTime".into(),
            user.and_then(|u| u.get("lastPasswordChangeDateTime"))
                .cloned()
                .unwrap_or(Value::Null),
        );
        methods.push(password);
    }
    methods.extend(
        fido2_of(directory, user_id)
            .iter()
            .map(|m| with_type(m, "#microsoft.graph.fido2AuthenticationMethod")),
    );
    methods
}

fn methods_location(state: &AppState, key: &str, user_id: &str) -> CollectionLocation {
    location(
        state,
        format!("/users/{key}/authentication/methods"),
        &format!("users('{user_id}')/authentication/methods"),
    )
}

pub async fn list_methods(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(key): Path<String>,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Json<Value>, GraphError> {
    let read = authorize_read(&caller, &METHODS_READ, &uri, &headers, &METHOD_RULES)?;
    let (user_id, methods) = reader_view(&state, |directory, lag| -> Result<_, GraphError> {
        let user_id = visible_user_id(directory, &key, lag)?;
        let methods = methods_of(directory, &user_id, lag);
        Ok((user_id, methods))
    })?;
    Ok(read.collection(methods, &methods_location(&state, &key, &user_id)))
}

/// `GET /users/{id}/authentication/methods/{methodId}`: one method of any kind, or 404.
pub async fn get_method(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((key, method_id)): Path<(String, String)>,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Json<Value>, GraphError> {
    let read = authorize_read(&caller, &METHODS_READ, &uri, &headers, &METHOD_RULES)?;
    let (user_id, method) = reader_view(&state, |directory, lag| -> Result<_, GraphError> {
        let user_id = visible_user_id(directory, &key, lag)?;
        let method = methods_of(directory, &user_id, lag)
            .into_iter()
            .find(|m| m["id"].as_str() == Some(method_id.as_str()));
        Ok((user_id, method))
    })?;
    let method = method.ok_or_else(|| GraphError::not_found(&method_id))?;
    Ok(read.entity(&method, &methods_location(&state, &key, &user_id)))
}

pub async fn list_fido2(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(key): Path<String>,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Json<Value>, GraphError> {
    let read = authorize_read(&caller, &METHODS_READ, &uri, &headers, &FIDO2_RULES)?;
    let (user_id, methods) = reader_view(&state, |directory, lag| -> Result<_, GraphError> {
        let user_id = visible_user_id(directory, &key, lag)?;
        let methods = fido2_of(directory, &user_id);
        Ok((user_id, methods))
    })?;
    Ok(read.collection(methods, &fido2_location(&state, &key, &user_id)))
}

pub async fn get_fido2(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((key, method_id)): Path<(String, String)>,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Json<Value>, GraphError> {
    let read = authorize_read(&caller, &METHODS_READ, &uri, &headers, &FIDO2_RULES)?;
    let (user_id, method) = reader_view(&state, |directory, lag| -> Result<_, GraphError> {
        let user_id = visible_user_id(directory, &key, lag)?;
        let method = fido2_of(directory, &user_id)
            .into_iter()
            .find(|m| m["id"].as_str() == Some(method_id.as_str()));
        Ok((user_id, method))
    })?;
    let method = method.ok_or_else(|| GraphError::not_found(&method_id))?;
    Ok(read.entity(&method, &fido2_location(&state, &key, &user_id)))
}

/// Deleting a passkey of a privileged user is a sensitive action like resetting its password.
pub async fn delete_fido2(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((key, method_id)): Path<(String, String)>,
) -> Result<StatusCode, GraphError> {
    require_permission(&caller, &METHODS_WRITE)?;
    let mut tenant = state.tenant();
    let user_id = super::users::find_user_id_latest(&tenant.directory, &key)
        .ok_or_else(|| GraphError::not_found(&key))?;
    super::restricted::check_method_change(&tenant, &caller, &user_id)?;
    require_privileged_caller_for(&tenant, &caller, &user_id)?;
    let methods = tenant
        .directory
        .fido2_methods
        .entry(user_id.to_ascii_lowercase())
        .or_default();
    let before = methods.len();
    methods.retain(|m| m["id"].as_str() != Some(method_id.as_str()));
    if methods.len() == before {
        return Err(GraphError::not_found(&method_id));
    }
    crate::audit::security_key_deleted(&mut tenant, &caller, &user_id);
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /_fake/directory/users/{id}/fido2`: registers a passkey as if the user had enrolled a
/// security key. Optional body fields: `displayName`, `aaGuid`, `model`, `attestationLevel`,
/// `passkeyType`. 201 with the method.
pub async fn admin_register_fido2(
    State(state): State<AppState>,
    Path(key): Path<String>,
    body: Bytes,
) -> Result<Response, GraphError> {
    let body = if body.is_empty() {
        Map::new()
    } else {
        json_object(&body)?
    };
    let text = |k: &str, default: &str| {
        Value::String(
            body.get(k)
                .and_then(Value::as_str)
                .unwrap_or(default)
                .to_owned(),
        )
    };
    let credential_id: [u8; 32] = rand::random();
    let mut method = Map::new();
    method.insert(
        "id".into(),
        Value::String(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(credential_id)),
    );
    method.insert("displayName".into(), text("displayName", "Security key"));
    method.insert("createdDateTime".into(), Value::String(now()));
    method.insert(
        "aaGuid".into(),
        text("aaGuid", "cb69481e-8ff7-4039-93ec-0a2729a154a8"),
    );
    method.insert("model".into(), text("model", "YubiKey 5 Series with NFC"));
    method.insert("attestationCertificates".into(), Value::Array(Vec::new()));
    method.insert(
        "attestationLevel".into(),
        text("attestationLevel", "attested"),
    );
    method.insert("passkeyType".into(), text("passkeyType", "deviceBound"));

    let mut tenant = state.tenant();
    let user_id = super::users::find_user_id_latest(&tenant.directory, &key)
        .ok_or_else(|| GraphError::not_found(&key))?;
    tenant
        .directory
        .fido2_methods
        .entry(user_id.to_ascii_lowercase())
        .or_default()
        .push(method.clone());
    crate::audit::security_key_registered(&mut tenant, &user_id);
    Ok((StatusCode::CREATED, Json(Value::Object(method))).into_response())
}
