//! `/users`: create, read (by id or UPN), list, update, soft delete.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde_json::{Map, Value};

use super::{
    authorize_read, json_object, location, new_id, now, reader_view, require_permission,
    require_privileged_caller_for, DirectoryState, USER_READ, USER_WRITE,
};
use crate::error::GraphError;
use crate::graph::odata::{entity_response, ODataQuery, QueryRules};
use crate::token::Caller;
use crate::AppState;

/// What `/users` returns without `$select` (facts file §2, `$select` row).
pub(super) const DEFAULT_USER_PROPERTIES: [&str; 11] = [
    "businessPhones",
    "displayName",
    "givenName",
    "jobTitle",
    "mail",
    "mobilePhone",
    "officeLocation",
    "preferredLanguage",
    "surname",
    "userPrincipalName",
    "id",
];

pub(super) const USER_RULES: QueryRules = QueryRules {
    entity: "user",
    default_page_size: 100,
    max_top: 999,
    directory_object: true,
    default_select: Some(&DEFAULT_USER_PROPERTIES),
};

/// Properties whose change on a privileged user needs a higher-privileged caller.
const SENSITIVE_PROPERTIES: [&str; 6] = [
    "accountEnabled",
    "passwordProfile",
    "userPrincipalName",
    "businessPhones",
    "mobilePhone",
    "otherMails",
];

/// Properties the service computes; values sent for them are ignored.
const READ_ONLY_PROPERTIES: [&str; 9] = [
    "id",
    "isManagementRestricted",
    "createdDateTime",
    "deletedDateTime",
    "lastPasswordChangeDateTime",
    "onPremisesSyncEnabled",
    "onPremisesLastSyncDateTime",
    "securityIdentifier",
    "signInActivity",
];

/// What a synced user still lets the cloud change; everything else is mastered on-premises.
const CLOUD_MASTERED_FOR_SYNCED: [&str; 12] = [
    "usageLocation",
    "preferredLanguage",
    "passwordPolicies",
    "aboutMe",
    "birthday",
    "interests",
    "mySite",
    "pastProjects",
    "responsibilities",
    "schools",
    "skills",
    "passwordProfile",
];

const DUPLICATE_UPN: &str =
    "Another object with the same value for property userPrincipalName already exists.";

/// `400 Request_BadRequest` + `ObjectConflict` detail for a UPN taken by another object
/// (facts file §3 Users).
pub(super) fn duplicate_upn() -> GraphError {
    GraphError::bad_request(DUPLICATE_UPN).with_detail(
        "ObjectConflict",
        DUPLICATE_UPN,
        "userPrincipalName",
    )
}

fn property_required() -> GraphError {
    GraphError::bad_request("Property value is required but is empty or missing.")
}

/// Fills the properties Graph always has on a user (empty collections, nulls for the default
/// set) so reads return complete shapes.
pub(super) fn fill_defaults(user: &mut Map<String, Value>, created: Option<&str>) {
    for key in [
        "businessPhones",
        "otherMails",
        "proxyAddresses",
        "identities",
    ] {
        user.entry(key).or_insert_with(|| Value::Array(Vec::new()));
    }
    for key in DEFAULT_USER_PROPERTIES {
        user.entry(key).or_insert(Value::Null);
    }
    user.entry("userType")
        .or_insert_with(|| Value::String("Member".into()));
    user.entry("authorizationInfo")
        .or_insert_with(|| serde_json::json!({"certificateUserIds": []}));
    user.entry("accountEnabled").or_insert(Value::Bool(true));
    user.entry("onPremisesSyncEnabled").or_insert(Value::Null);
    if let Some(created) = created {
        user.insert("createdDateTime".into(), Value::String(created.into()));
        user.insert(
            "lastPasswordChangeDateTime".into(),
            Value::String(created.into()),
        );
    }
}

/// Finds a user by object id or by UPN (case-insensitive), as the reader sees it.
pub(super) fn find_user<'a>(
    directory: &'a DirectoryState,
    key: &str,
    lag: std::time::Duration,
) -> Option<&'a Map<String, Value>> {
    directory.users.get(key, lag).or_else(|| {
        directory.users.list(lag).into_iter().find(|u| {
            u["userPrincipalName"]
                .as_str()
                .is_some_and(|upn| upn.eq_ignore_ascii_case(key))
        })
    })
}

/// The primary-replica user addressed by id or UPN, returning its id.
pub(super) fn find_user_id_latest(directory: &DirectoryState, key: &str) -> Option<String> {
    directory
        .users
        .get_latest(key)
        .or_else(|| directory.user_by_upn_latest(key))
        .and_then(|u| u["id"].as_str().map(str::to_owned))
}

/// Entra's password rules for cloud users: 8–256 characters, three of the four character
/// classes, only ASCII printable characters, and not containing the user's alias.
fn password_is_complex(password: &str, upn: &str) -> bool {
    let length = password.chars().count();
    if !(8..=256).contains(&length) {
        return false;
    }
    if !password.chars().all(|c| c.is_ascii_graphic() || c == ' ') {
        return false;
    }
    let classes = [
        password.chars().any(|c| c.is_ascii_lowercase()),
        password.chars().any(|c| c.is_ascii_uppercase()),
        password.chars().any(|c| c.is_ascii_digit()),
        password.chars().any(|c| !c.is_ascii_alphanumeric()),
    ];
    if classes.iter().filter(|c| **c).count() < 3 {
        return false;
    }
    let alias = upn.split('@').next().unwrap_or("").to_lowercase();
    !(alias.len() >= 3 && password.to_lowercase().contains(&alias))
}

fn complexity_error() -> GraphError {
    GraphError::bad_request(
        "The specified password does not comply with password complexity requirements. Please provide a different password.",
    )
}

/// Checks the UPN's domain against the tenant's verified domains and federation rules.
fn check_upn(
    directory: &DirectoryState,
    upn: &str,
    immutable_id: Option<&str>,
) -> Result<(), GraphError> {
    let domain_error = || {
        GraphError::bad_request(
            "The domain portion of the userPrincipalName property is invalid. You must use one of the verified domain names in your organization.",
        )
    };
    let (alias, domain) = upn.split_once('@').ok_or_else(domain_error)?;
    if alias.is_empty() || domain.contains('@') {
        return Err(domain_error());
    }
    let domain = directory.verified_domain(domain).ok_or_else(domain_error)?;
    let federated = domain["authenticationType"]
        .as_str()
        .is_some_and(|t| t.eq_ignore_ascii_case("Federated"));
    if federated && immutable_id.is_none_or(str::is_empty) {
        // A federated-domain user needs its on-premises source anchor; Graph's answer is the
        // generic invalid-values message.
        return Err(GraphError::bad_request(
            "One or more properties contains invalid values.",
        ));
    }
    Ok(())
}

pub async fn list(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Json<Value>, GraphError> {
    let read = authorize_read(&caller, &USER_READ, &uri, &headers, &USER_RULES)?;
    let users = reader_view(&state, |directory, lag| {
        directory.users.list(lag).into_iter().cloned().collect()
    });
    Ok(read.collection(users, &location(&state, "/users", "users")))
}

pub async fn get_one(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Json<Value>, GraphError> {
    let read = authorize_read(&caller, &USER_READ, &uri, &headers, &USER_RULES)?;
    let user = reader_view(&state, |directory, lag| {
        find_user(directory, &id, lag).cloned()
    })
    .ok_or_else(|| GraphError::not_found(&id))?;
    Ok(read.entity(&user, &location(&state, "/users", "users")))
}

pub async fn create(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    body: Bytes,
) -> Result<Response, GraphError> {
    require_permission(&caller, &USER_WRITE)?;
    let mut body = json_object(&body)?;
    let mut tenant = state.tenant();
    let directory = &mut tenant.directory;

    let upn = body
        .get("userPrincipalName")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_owned);
    let password = body
        .get("passwordProfile")
        .and_then(|p| p.get("password"))
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_owned);
    let has_text = |key: &str| {
        body.get(key)
            .and_then(Value::as_str)
            .is_some_and(|s| !s.trim().is_empty())
    };
    let (Some(upn), Some(password), true, true, true) = (
        upn,
        password,
        body.get("accountEnabled").is_some_and(Value::is_boolean),
        has_text("displayName"),
        has_text("mailNickname"),
    ) else {
        return Err(property_required());
    };
    check_upn(
        directory,
        &upn,
        body.get("onPremisesImmutableId").and_then(Value::as_str),
    )?;
    if directory.user_by_upn_latest(&upn).is_some() {
        return Err(duplicate_upn());
    }
    if !password_is_complex(&password, &upn) {
        return Err(complexity_error());
    }

    for key in READ_ONLY_PROPERTIES {
        body.remove(key);
    }
    body.remove("@odata.type");
    let id = new_id();
    if let Some(profile) = body
        .get_mut("passwordProfile")
        .and_then(Value::as_object_mut)
    {
        profile.insert("password".into(), Value::Null);
    }
    body.insert("id".into(), Value::String(id.clone()));
    fill_defaults(&mut body, Some(&now()));
    directory.set_password(&id, &password);
    directory.users.put(&id, body.clone());
    crate::audit::user_added(&mut tenant, &caller, &id);
    drop(tenant);

    let location = location(&state, "/users", "users");
    let response = entity_response(&body, &ODataQuery::default(), &USER_RULES, &location);
    Ok((StatusCode::CREATED, Json(response)).into_response())
}

pub async fn update(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(key): Path<String>,
    body: Bytes,
) -> Result<StatusCode, GraphError> {
    require_permission(&caller, &USER_WRITE)?;
    let patch = json_object(&body)?;
    let mut tenant = state.tenant();
    let id =
        find_user_id_latest(&tenant.directory, &key).ok_or_else(|| GraphError::not_found(&key))?;
    super::restricted::check_user_update(&tenant, &caller, &id, &patch)?;
    if patch
        .keys()
        .any(|k| SENSITIVE_PROPERTIES.contains(&k.as_str()))
    {
        require_privileged_caller_for(&tenant, &caller, &id)?;
    }
    let patch = super::authorization_info::checked_patch(&tenant, &caller, &id, patch)?;
    let directory = &mut tenant.directory;
    let current = directory
        .users
        .get_latest(&id)
        .cloned()
        .ok_or_else(|| GraphError::not_found(&key))?;

    if current["onPremisesSyncEnabled"].as_bool() == Some(true)
        && patch
            .keys()
            .any(|k| !CLOUD_MASTERED_FOR_SYNCED.contains(&k.as_str()))
    {
        return Err(synced_object_error());
    }

    let mut updated = current.clone();
    let mut new_password = None;
    for (key, value) in patch {
        if READ_ONLY_PROPERTIES.contains(&key.as_str()) || key == "@odata.type" {
            continue;
        }
        match key.as_str() {
            "userPrincipalName" => {
                let upn = value.as_str().unwrap_or_default();
                let immutable = updated
                    .get("onPremisesImmutableId")
                    .and_then(Value::as_str)
                    .map(str::to_owned);
                check_upn(directory, upn, immutable.as_deref())?;
                if directory
                    .user_by_upn_latest(upn)
                    .is_some_and(|other| other["id"] != current["id"])
                {
                    return Err(duplicate_upn());
                }
                updated.insert(key, value);
            }
            "passwordProfile" => {
                let mut profile = value.as_object().cloned().unwrap_or_default();
                if let Some(password) = profile.get("password").and_then(Value::as_str) {
                    new_password = Some(password.to_owned());
                }
                profile.insert("password".into(), Value::Null);
                updated.insert(key, Value::Object(profile));
            }
            "accountEnabled" | "displayName" | "mailNickname" if value.is_null() => {
                return Err(property_required());
            }
            _ => {
                updated.insert(key, value);
            }
        }
    }
    if let Some(password) = &new_password {
        let upn = updated["userPrincipalName"].as_str().unwrap_or_default();
        if !password_is_complex(password, upn) {
            return Err(complexity_error());
        }
        directory.set_password(&id, password);
        updated.insert("lastPasswordChangeDateTime".into(), Value::String(now()));
    }
    directory.users.put(&id, updated);
    crate::audit::user_updated(&mut tenant, &caller, &current, &id, new_password.is_some());
    Ok(StatusCode::NO_CONTENT)
}

pub(super) fn synced_object_error() -> GraphError {
    GraphError::bad_request(
        "Unable to update the specified properties for on-premises mastered Directory Sync objects or objects currently undergoing migration.",
    )
}

pub async fn delete(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(key): Path<String>,
) -> Result<StatusCode, GraphError> {
    require_permission(&caller, &USER_WRITE)?;
    let mut tenant = state.tenant();
    let id =
        find_user_id_latest(&tenant.directory, &key).ok_or_else(|| GraphError::not_found(&key))?;
    super::restricted::check_user_delete(&tenant, &caller, &id)?;
    require_privileged_caller_for(&tenant, &caller, &id)?;
    let directory = &mut tenant.directory;
    if directory
        .users
        .get_latest(&id)
        .is_some_and(|u| u["onPremisesSyncEnabled"].as_bool() == Some(true))
    {
        return Err(synced_object_error());
    }
    let mut user = directory
        .users
        .remove(&id)
        .ok_or_else(|| GraphError::not_found(&key))?;
    // Entra frees the UPN of a deleted user by prefixing it with the object id (no dashes);
    // restore gives the original back.
    let original_upn = user["userPrincipalName"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    user.insert(
        "userPrincipalName".into(),
        Value::String(format!("{}{original_upn}", id.replace('-', ""))),
    );
    user.insert("deletedDateTime".into(), Value::String(now()));
    directory
        .deleted_upns
        .insert(id.to_ascii_lowercase(), original_upn);
    directory.deleted_items.put(&id, user);
    crate::audit::user_deleted(&mut tenant, &caller, &id);
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /_fake/directory/users/{id}/sync` with `{"enabled": true|false}`: what Microsoft Entra
/// Connect does to a cloud account outside Graph. `true` is a hard match (an on-premises object
/// whose source anchor equals the user's `onPremisesImmutableId`, or a new one): from then on
/// the user is synchronized, `onPremisesSyncEnabled` is `true`, and its synced properties are
/// read-only in Graph. `false` is the object's source of authority moved back to the cloud: it
/// is cloud-only again (`onPremisesSyncEnabled` `false`). No Graph operation does either.
pub async fn admin_set_sync(
    State(state): State<AppState>,
    Path(key): Path<String>,
    body: Bytes,
) -> Result<Response, GraphError> {
    let body = json_object(&body)?;
    let Some(enabled) = body.get("enabled").and_then(Value::as_bool) else {
        return Err(property_required());
    };
    let mut tenant = state.tenant();
    let id =
        find_user_id_latest(&tenant.directory, &key).ok_or_else(|| GraphError::not_found(&key))?;
    let user = tenant
        .directory
        .users
        .get_latest(&id)
        .cloned()
        .ok_or_else(|| GraphError::not_found(&key))?;
    let mut updated = user;
    updated.insert("onPremisesSyncEnabled".into(), Value::Bool(enabled));
    if enabled {
        if updated
            .get("onPremisesImmutableId")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
        {
            let anchor: [u8; 16] = rand::random();
            updated.insert(
                "onPremisesImmutableId".into(),
                Value::String(base64::Engine::encode(
                    &base64::engine::general_purpose::STANDARD,
                    anchor,
                )),
            );
        }
        updated.insert("onPremisesLastSyncDateTime".into(), Value::String(now()));
    }
    tenant.directory.users.put(&id, updated.clone());
    Ok(Json(Value::Object(updated)).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_rules() {
        let upn = "breakglass1@contoso.com";
        assert!(password_is_complex("Corr3ct-Horse", upn));
        assert!(
            password_is_complex("correct-horse-7", upn),
            "3 of 4 classes"
        );
        assert!(!password_is_complex("Sh0rt!", upn), "too short");
        assert!(!password_is_complex("alllowercaseletters", upn));
        assert!(!password_is_complex("lowercase-only", upn), "2 classes");
        assert!(
            !password_is_complex("X-Breakglass1-9", upn),
            "contains the alias"
        );
        assert!(!password_is_complex("Pässwörd-123", upn), "non-ASCII");
        assert!(!password_is_complex(
            &format!("Aa1{}", "x".repeat(254)),
            upn
        ));
    }
}
