//! `/directory/administrativeUnits`: administrative units, their members (`$ref`), their
//! scoped-role members, and `/users/{id}/memberOf`.
//!
//! Documents followed (facts file §3 "Administrative units"):
//! - Graph v1.0 "administrativeUnit resource type", "Create administrativeUnit", "Add a member",
//!   "Add a scopedRoleMember", "List scopedRoleMembers" (learn.microsoft.com/graph/api/...).
//! - "Restricted management administrative units in Microsoft Entra ID" (learn.microsoft.com,
//!   entra/identity/role-based-access-control/admin-units-restricted-management): the
//!   restricted setting is fixed at creation; at most 100 restricted units per tenant; only
//!   security groups (besides users and devices) may be members; Global Administrators and
//!   Privileged Role Administrators at tenant scope manage the units themselves.
//! - "Assign Microsoft Entra roles with administrative unit scope" (admin-units-assign-roles):
//!   which roles can be scoped to a unit and which principals may hold them.
//!
//! How the restriction is enforced on members lives in `restricted.rs`.

use std::collections::BTreeMap;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use base64::Engine;
use serde_json::{json, Map, Value};

use super::groups::member_object;
use super::{
    authorize_read, json_object, location, new_id, reader_view, require_permission, DirectoryState,
    USER_READ,
};
use crate::error::GraphError;
use crate::graph::odata::{entity_response, ODataQuery, QueryRules, ReadRequest};
use crate::state::{Collection, Tenant};
use crate::token::Caller;
use crate::AppState;

/// "A maximum of 100 restricted management administrative units in a tenant" (Restricted
/// management administrative units, Limitations). Tests may lower it with
/// `graph.restricted_unit_limit`. Units without the restriction do not count.
pub const RESTRICTED_UNIT_LIMIT: u64 = 100;

pub(super) const GLOBAL_ADMINISTRATOR: &str = "62e90394-69f5-4237-9190-012177145e10";
pub(super) const PRIVILEGED_ROLE_ADMINISTRATOR: &str = "e8611ab8-c189-46e8-94e1-60213ab1f814";

/// Built-in roles that can be assigned with administrative unit scope (admin-units-assign-roles,
/// "Roles that can be assigned with administrative unit scope"): Authentication, Cloud Device,
/// Groups, Helpdesk, License, Password, Printer, Privileged Authentication, SharePoint, Teams,
/// Teams Devices and User Administrator. Global Administrator and Privileged Role Administrator
/// cannot be (admin-units-restricted-management, Limitations).
const UNIT_SCOPABLE_ROLES: [&str; 12] = [
    "c4e39bd9-1100-46d3-8c65-fb160da0071f",
    "7698a772-787b-4ac8-901f-60d6b08affd2",
    "fdd7a751-b60b-444a-984c-02652fe8fa1c",
    "729827e3-9c14-49f7-bb1b-9608f156bbb8",
    "4d6ac14f-3453-41d0-bef9-a3e0c569773a",
    "966707d0-3269-4727-9be2-8c3a10f19b9d",
    "644ef478-e28f-4e28-b9dc-3fdde9aa0b1f",
    "7be44c8a-adaf-4e2a-84d6-ab2649e08a13",
    "f28a1f50-f6e7-4571-818b-6a12f2af6b6c",
    "69091246-20e8-4a56-aa4d-066075b2a7a8",
    "3d762c5a-1b6c-493f-843e-55a3b42923d4",
    "fe930be7-5e62-47db-91af-98c3a49a38b1",
];

/// Reads: `AdministrativeUnit.Read.All` and up (Get/List administrativeUnit).
const UNIT_READ: [&str; 4] = [
    "AdministrativeUnit.Read.All",
    "AdministrativeUnit.ReadWrite.All",
    "Directory.Read.All",
    "Directory.ReadWrite.All",
];
/// Writes (create, update, delete, members): `AdministrativeUnit.ReadWrite.All`, the only
/// application permission the Create and Add-a-member pages list.
const UNIT_WRITE: [&str; 1] = ["AdministrativeUnit.ReadWrite.All"];
/// List/Get scopedRoleMembers: `RoleManagement.Read.Directory` and up.
const SCOPED_READ: [&str; 4] = [
    "RoleManagement.Read.Directory",
    "RoleManagement.ReadWrite.Directory",
    "Directory.Read.All",
    "Directory.ReadWrite.All",
];
/// Add/remove a scopedRoleMember: `RoleManagement.ReadWrite.Directory`.
const SCOPED_WRITE: [&str; 1] = ["RoleManagement.ReadWrite.Directory"];

const UNIT_RULES: QueryRules = QueryRules {
    entity: "administrativeUnit",
    default_page_size: 100,
    max_top: 999,
    directory_object: true,
    default_select: None,
};

/// Members are users and groups; names are checked against the user type, as for group members.
const MEMBER_RULES: QueryRules = QueryRules {
    entity: "user",
    default_page_size: 100,
    max_top: 999,
    directory_object: true,
    default_select: None,
};

const SCOPED_RULES: QueryRules = QueryRules {
    entity: "scopedRoleMembership",
    default_page_size: 100,
    max_top: 999,
    directory_object: false,
    default_select: None,
};

/// `memberOf` mixes groups and units; `$select`/`$filter` names are checked against the unit
/// type, whose common properties (id, displayName, description, visibility) groups share.
const MEMBER_OF_RULES: QueryRules = QueryRules {
    entity: "administrativeUnit",
    default_page_size: 100,
    max_top: 999,
    directory_object: true,
    default_select: None,
};

/// Properties a unit may be created or updated with; the rest of the schema is navigation
/// (`members`, `scopedRoleMembers`, written through their own paths) or read-only.
const WRITABLE: [&str; 7] = [
    "displayName",
    "description",
    "isMemberManagementRestricted",
    "visibility",
    "membershipType",
    "membershipRule",
    "membershipRuleProcessingState",
];

/// Administrative units with their members and scoped-role members. Membership and scoped
/// roles are navigation properties, kept beside the unit objects (like group membership).
#[derive(Default)]
pub struct UnitsState {
    pub units: Collection,
    /// Unit id (lower case) → member object ids, in the order they were added.
    pub members: BTreeMap<String, Vec<String>>,
    /// Unit id (lower case) → `scopedRoleMembership` objects as Graph returns them.
    pub scoped_roles: BTreeMap<String, Vec<Map<String, Value>>>,
}

impl UnitsState {
    /// Seed form: `administrativeUnits: [{id, displayName, ..., members: [ids],
    /// scopedRoleMembers: [{roleId, roleMemberInfo: {id, displayName?}, id?}]}]`.
    pub fn from_seed(seed: &Value) -> Result<Self, String> {
        let mut state = UnitsState::default();
        let Some(units) = seed.get("administrativeUnits").filter(|v| !v.is_null()) else {
            return Ok(state);
        };
        let units = units
            .as_array()
            .ok_or("directory.administrativeUnits: must be an array")?;
        for unit in units {
            let mut unit = unit
                .as_object()
                .cloned()
                .ok_or("directory.administrativeUnits: entries must be objects")?;
            let id = unit["id"]
                .as_str()
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .ok_or("directory.administrativeUnits[]: missing id")?;
            let key = id.to_ascii_lowercase();
            let members = unit
                .remove("members")
                .and_then(|m| m.as_array().cloned())
                .unwrap_or_default()
                .iter()
                .map(|m| m.as_str().map(str::to_owned))
                .collect::<Option<Vec<_>>>()
                .ok_or("directory.administrativeUnits[].members: ids must be strings")?;
            let mut scoped = Vec::new();
            for entry in unit
                .remove("scopedRoleMembers")
                .and_then(|m| m.as_array().cloned())
                .unwrap_or_default()
            {
                let mut entry = entry
                    .as_object()
                    .cloned()
                    .ok_or("directory.administrativeUnits[].scopedRoleMembers: objects")?;
                let role = entry["roleId"].as_str().map(str::to_owned);
                let principal = entry["roleMemberInfo"]["id"].as_str().map(str::to_owned);
                let (Some(role), Some(principal)) = (role, principal) else {
                    return Err("directory.administrativeUnits[].scopedRoleMembers[]: needs roleId and roleMemberInfo.id".into());
                };
                entry
                    .entry("id")
                    .or_insert_with(|| Value::String(membership_id(&role, &principal, &id)));
                entry.insert("administrativeUnitId".into(), Value::String(id.clone()));
                scoped.push(entry);
            }
            fill_unit_defaults(&mut unit);
            state.members.insert(key.clone(), members);
            state.scoped_roles.insert(key, scoped);
            state.units.seed(&id, unit);
        }
        Ok(state)
    }

    /// The seed form of `from_seed`.
    pub fn dump(&self) -> Value {
        let units: Vec<Value> = self
            .units
            .list_latest()
            .into_iter()
            .map(|u| {
                let mut u = u.clone();
                let key = u["id"].as_str().unwrap_or_default().to_ascii_lowercase();
                u.insert(
                    "members".into(),
                    json!(self.members.get(&key).cloned().unwrap_or_default()),
                );
                u.insert(
                    "scopedRoleMembers".into(),
                    json!(self.scoped_roles.get(&key).cloned().unwrap_or_default()),
                );
                Value::Object(u)
            })
            .collect();
        Value::Array(units)
    }

    /// Ids of the restricted units (primary replica) that `object_id` is a member of.
    pub fn restricted_units_of(&self, object_id: &str) -> Vec<String> {
        self.units
            .list_latest()
            .into_iter()
            .filter(|u| u["isMemberManagementRestricted"].as_bool() == Some(true))
            .filter_map(|u| u["id"].as_str())
            .filter(|id| self.has_member(id, object_id))
            .map(str::to_owned)
            .collect()
    }

    fn has_member(&self, unit_id: &str, object_id: &str) -> bool {
        self.members
            .get(&unit_id.to_ascii_lowercase())
            .is_some_and(|m| m.iter().any(|x| x.eq_ignore_ascii_case(object_id)))
    }

    /// The scoped-role memberships of a unit (primary replica).
    pub fn scoped_roles_of_unit(&self, unit_id: &str) -> &[Map<String, Value>] {
        self.scoped_roles
            .get(&unit_id.to_ascii_lowercase())
            .map(Vec::as_slice)
            .unwrap_or_default()
    }
}

fn fill_unit_defaults(unit: &mut Map<String, Value>) {
    unit.entry("isMemberManagementRestricted")
        .or_insert(Value::Bool(false));
    for key in [
        "description",
        "visibility",
        "membershipType",
        "membershipRule",
        "membershipRuleProcessingState",
        "deletedDateTime",
    ] {
        unit.entry(key).or_insert(Value::Null);
    }
}

/// Recomputes a user's or group's `isManagementRestricted` ("true if the user is a member of a
/// restricted management administrative unit. If not set, the default value is null", user
/// resource type) after its memberships changed. Stored on the object so reads need no hook.
pub(super) fn refresh_management_restricted(directory: &mut DirectoryState, object_id: &str) {
    let restricted = !directory.units.restricted_units_of(object_id).is_empty();
    let object = match directory.users.get_latest_mut(object_id) {
        Some(user) => Some(user),
        None => directory.groups.get_latest_mut(object_id),
    };
    if let Some(object) = object {
        if restricted {
            object.insert("isManagementRestricted".into(), Value::Bool(true));
        } else {
            object.remove("isManagementRestricted");
        }
    }
}

/// Called once the seed's users, groups and units are loaded.
pub(super) fn refresh_all(directory: &mut DirectoryState) {
    let ids: Vec<String> = directory
        .units
        .members
        .values()
        .flatten()
        .cloned()
        .collect();
    for id in ids {
        refresh_management_restricted(directory, &id);
    }
}

/// Stable id of a scoped-role membership: base64url of the role, principal and unit GUIDs
/// (Entra's ids are opaque strings of this kind, not GUIDs).
fn membership_id(role: &str, principal: &str, unit: &str) -> String {
    let guid = |s: &str| {
        uuid::Uuid::parse_str(s)
            .map(|u| u.to_bytes_le().to_vec())
            .unwrap_or_else(|_| s.as_bytes().to_vec())
    };
    let mut bytes = guid(role);
    bytes.extend(guid(principal));
    bytes.extend(guid(unit));
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn unit_location(state: &AppState) -> crate::graph::odata::CollectionLocation {
    location(
        state,
        "/directory/administrativeUnits",
        "directory/administrativeUnits",
    )
}

/// The caller holds Global Administrator or Privileged Role Administrator at tenant scope.
fn holds_unit_manager_role(caller: &Caller) -> bool {
    caller.directory_roles.iter().any(|r| {
        r.eq_ignore_ascii_case(GLOBAL_ADMINISTRATOR)
            || r.eq_ignore_ascii_case(PRIVILEGED_ROLE_ADMINISTRATOR)
    })
}

/// "To add a user, group, or device to an administrative unit, the calling principal must be
/// assigned at least the Privileged Role Administrator Microsoft Entra role" (Add a member),
/// and only Global Administrators and Privileged Role Administrators manage restricted units
/// ("Who can manage restricted management administrative units?").
fn require_unit_manager(caller: &Caller) -> Result<(), GraphError> {
    if holds_unit_manager_role(caller) {
        Ok(())
    } else {
        Err(super::insufficient_privileges())
    }
}

fn bad_request(message: impl Into<String>) -> GraphError {
    GraphError::bad_request(message)
}

/// Validates a create or update body: only writable properties, strings where strings go.
fn checked_body(body: Map<String, Value>) -> Result<Map<String, Value>, GraphError> {
    let mut out = Map::new();
    for (key, value) in body {
        if key == "@odata.type" || key == "id" || key == "deletedDateTime" {
            continue; // read-only or annotations: ignored, as for users
        }
        if key == "members" || key == "scopedRoleMembers" {
            return Err(bad_request(format!(
                "The navigation property '{key}' cannot be written with the administrative unit; use /directory/administrativeUnits/{{id}}/{key}."
            )));
        }
        if !WRITABLE.contains(&key.as_str()) {
            continue;
        }
        if key == "visibility" {
            if let Some(v) = value.as_str() {
                if !["HiddenMembership", "Public"].contains(&v) {
                    return Err(invalid_value("visibility"));
                }
            }
        }
        if key == "membershipType" {
            if let Some(v) = value.as_str() {
                if !["Assigned", "Dynamic"].contains(&v) {
                    return Err(invalid_value("membershipType"));
                }
            }
        }
        if key == "displayName" && value.as_str().is_some_and(|s| s.chars().count() > 256) {
            return Err(invalid_value("displayName"));
        }
        out.insert(key, value);
    }
    Ok(out)
}

fn invalid_value(property: &str) -> GraphError {
    bad_request(format!(
        "Invalid value specified for property '{property}' of resource 'AdministrativeUnit'."
    ))
}

pub async fn list(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Json<Value>, GraphError> {
    let read = authorize_read(&caller, &UNIT_READ, &uri, &headers, &UNIT_RULES)?;
    let units = reader_view(&state, |directory, lag| {
        directory
            .units
            .units
            .list(lag)
            .into_iter()
            .cloned()
            .collect()
    });
    Ok(read.collection(units, &unit_location(&state)))
}

pub async fn get_one(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Json<Value>, GraphError> {
    let read = authorize_read(&caller, &UNIT_READ, &uri, &headers, &UNIT_RULES)?;
    let unit = reader_view(&state, |directory, lag| {
        directory.units.units.get(&id, lag).cloned()
    })
    .ok_or_else(|| GraphError::not_found(&id))?;
    Ok(read.entity(&unit, &unit_location(&state)))
}

/// `POST /directory/administrativeUnits`: 201 with the unit. `displayName` is required;
/// `isMemberManagementRestricted` defaults to false and is fixed from then on.
pub async fn create(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    body: Bytes,
) -> Result<Response, GraphError> {
    require_permission(&caller, &UNIT_WRITE)?;
    let mut unit = checked_body(json_object(&body)?)?;
    if unit
        .get("displayName")
        .and_then(Value::as_str)
        .is_none_or(|s| s.trim().is_empty())
    {
        return Err(bad_request(
            "Property value is required but is empty or missing.",
        ));
    }
    let restricted = match unit.get("isMemberManagementRestricted") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(invalid_value("isMemberManagementRestricted")),
    };
    unit.insert(
        "isMemberManagementRestricted".into(),
        Value::Bool(restricted),
    );
    let mut tenant = state.tenant();
    if restricted {
        require_unit_manager(&caller)?;
        let limit = tenant
            .behaviour
            .setting_u64("graph.restricted_unit_limit", RESTRICTED_UNIT_LIMIT);
        let count = tenant
            .directory
            .units
            .units
            .list_latest()
            .into_iter()
            .filter(|u| u["isMemberManagementRestricted"].as_bool() == Some(true))
            .count() as u64;
        if count >= limit {
            // The limit is documented; the service's wording for it is not (emulator's text).
            return Err(bad_request(format!(
                "The tenant has reached the maximum of {limit} restricted management administrative units."
            )));
        }
    }
    let id = new_id();
    unit.insert("id".into(), Value::String(id.clone()));
    fill_unit_defaults(&mut unit);
    let units = &mut tenant.directory.units;
    units.units.put(&id, unit.clone());
    units.members.insert(id.to_ascii_lowercase(), Vec::new());
    units
        .scoped_roles
        .insert(id.to_ascii_lowercase(), Vec::new());
    drop(tenant);
    let body = entity_response(
        &unit,
        &ODataQuery::default(),
        &UNIT_RULES,
        &unit_location(&state),
    );
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

/// `PATCH /directory/administrativeUnits/{id}`: 204. Changing `isMemberManagementRestricted`
/// is refused ("can't be changed once the administrative unit is created"); sending the value
/// the unit already has is not a change.
pub async fn update(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<StatusCode, GraphError> {
    require_permission(&caller, &UNIT_WRITE)?;
    let patch = checked_body(json_object(&body)?)?;
    let mut tenant = state.tenant();
    let current = tenant
        .directory
        .units
        .units
        .get_latest(&id)
        .cloned()
        .ok_or_else(|| GraphError::not_found(&id))?;
    let restricted = current["isMemberManagementRestricted"].as_bool() == Some(true);
    if let Some(wanted) = patch.get("isMemberManagementRestricted") {
        if wanted.as_bool() != Some(restricted) {
            // Documented as immutable; the service's exact wording is not (emulator's text).
            return Err(bad_request(
                "The property 'isMemberManagementRestricted' cannot be changed after the administrative unit is created.",
            ));
        }
    }
    if restricted {
        require_unit_manager(&caller)?;
    }
    if patch
        .get("displayName")
        .is_some_and(|v| v.as_str().is_none_or(|s| s.trim().is_empty()))
    {
        return Err(bad_request(
            "Property value is required but is empty or missing.",
        ));
    }
    let mut updated = current;
    updated.extend(patch);
    let key = updated["id"].as_str().unwrap_or(&id).to_owned();
    tenant.directory.units.units.put(&key, updated);
    Ok(StatusCode::NO_CONTENT)
}

/// `DELETE /directory/administrativeUnits/{id}`: 204. Members stay (only the unit goes), its
/// scoped-role memberships go with it, and former members of a restricted unit lose the
/// protection. (Entra documents up to 30 minutes for that; the emulator applies it at once.)
pub async fn delete(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<StatusCode, GraphError> {
    require_permission(&caller, &UNIT_WRITE)?;
    let mut tenant = state.tenant();
    let current = tenant
        .directory
        .units
        .units
        .get_latest(&id)
        .cloned()
        .ok_or_else(|| GraphError::not_found(&id))?;
    if current["isMemberManagementRestricted"].as_bool() == Some(true) {
        require_unit_manager(&caller)?;
    }
    let directory = &mut tenant.directory;
    directory.units.units.remove(&id);
    let key = id.to_ascii_lowercase();
    let members = directory.units.members.remove(&key).unwrap_or_default();
    directory.units.scoped_roles.remove(&key);
    for member in members {
        refresh_management_restricted(directory, &member);
    }
    Ok(StatusCode::NO_CONTENT)
}

/// The unit as writers see it, or 404.
fn unit_latest<'a>(tenant: &'a Tenant, id: &str) -> Result<&'a Map<String, Value>, GraphError> {
    tenant
        .directory
        .units
        .units
        .get_latest(id)
        .ok_or_else(|| GraphError::not_found(id))
}

/// The object id an `@odata.id` names: `https://graph.microsoft.com/v1.0/directoryObjects/{id}`
/// (also `/users/{id}`, `/groups/{id}`, `/devices/{id}`, any host and version).
fn referenced_id(reference: &str) -> Option<String> {
    let path = reference.split(['?', '#']).next()?.trim_end_matches('/');
    let mut segments = path.rsplit('/');
    let id = segments.next()?;
    let kind = segments.next()?;
    let known = ["directoryObjects", "users", "groups", "devices"]
        .iter()
        .any(|k| k.eq_ignore_ascii_case(kind));
    (known && !id.is_empty()).then(|| id.to_owned())
}

/// `POST /directory/administrativeUnits/{id}/members/$ref` with `{"@odata.id": ...}`: 204.
/// Users and groups (devices are outside the emulator); restricted units take security groups
/// only. A member already present → 400 as Graph answers for duplicate references.
pub async fn add_member(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<StatusCode, GraphError> {
    require_permission(&caller, &UNIT_WRITE)?;
    require_unit_manager(&caller)?;
    let body = json_object(&body)?;
    let reference = body
        .get("@odata.id")
        .and_then(Value::as_str)
        .ok_or_else(|| bad_request("Property value is required but is empty or missing."))?
        .to_owned();
    let member_id = referenced_id(&reference)
        .ok_or_else(|| bad_request(format!("Invalid object identifier '{reference}'.")))?;
    let mut tenant = state.tenant();
    let unit = unit_latest(&tenant, &id)?;
    let restricted = unit["isMemberManagementRestricted"].as_bool() == Some(true);
    let dynamic = unit["membershipType"]
        .as_str()
        .is_some_and(|t| t.eq_ignore_ascii_case("Dynamic"));
    let unit_id = unit["id"].as_str().unwrap_or(&id).to_owned();
    let directory = &mut tenant.directory;
    if dynamic {
        // Administrative units FAQ: with dynamic membership "you must edit the rules for
        // dynamic membership groups to change membership" (emulator's text).
        return Err(bad_request(
            "Members cannot be added to an administrative unit with dynamic membership; change its membership rule instead.",
        ));
    }
    let canonical = if let Some(user) = directory.users.get_latest(&member_id) {
        user["id"].as_str().unwrap_or(&member_id).to_owned()
    } else if let Some(group) = directory.groups.get_latest(&member_id) {
        // "What objects can be members?": restricted units take security groups, not
        // Microsoft 365, mail-enabled security or distribution groups.
        let unified = group["groupTypes"]
            .as_array()
            .is_some_and(|t| t.iter().any(|g| g == "Unified"));
        let security_only = group["securityEnabled"].as_bool() == Some(true)
            && group["mailEnabled"].as_bool() != Some(true)
            && !unified;
        if restricted && !security_only {
            return Err(bad_request(
                "Only users, devices and security groups can be members of a restricted management administrative unit.",
            ));
        }
        group["id"].as_str().unwrap_or(&member_id).to_owned()
    } else {
        return Err(GraphError::not_found(&member_id));
    };
    let members = directory
        .units
        .members
        .entry(unit_id.to_ascii_lowercase())
        .or_default();
    if members.iter().any(|m| m.eq_ignore_ascii_case(&canonical)) {
        return Err(bad_request(
            "One or more added object references already exist for the following modified properties: 'members'.",
        ));
    }
    members.push(canonical.clone());
    refresh_management_restricted(directory, &canonical);
    Ok(StatusCode::NO_CONTENT)
}

/// `DELETE /directory/administrativeUnits/{id}/members/{memberId}/$ref`: 204; not a member →
/// 404 naming it.
pub async fn remove_member(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((id, member_id)): Path<(String, String)>,
) -> Result<StatusCode, GraphError> {
    require_permission(&caller, &UNIT_WRITE)?;
    require_unit_manager(&caller)?;
    let mut tenant = state.tenant();
    let unit_id = unit_latest(&tenant, &id)?["id"]
        .as_str()
        .unwrap_or(&id)
        .to_owned();
    let directory = &mut tenant.directory;
    let members = directory
        .units
        .members
        .entry(unit_id.to_ascii_lowercase())
        .or_default();
    let before = members.len();
    members.retain(|m| !m.eq_ignore_ascii_case(&member_id));
    if members.len() == before {
        return Err(GraphError::not_found(&member_id));
    }
    refresh_management_restricted(directory, &member_id);
    Ok(StatusCode::NO_CONTENT)
}

/// Member ids of a unit as readers see it (members that no longer exist are left out).
fn visible_members(
    directory: &DirectoryState,
    unit_id: &str,
    lag: Duration,
) -> Result<Vec<Map<String, Value>>, GraphError> {
    if directory.units.units.get(unit_id, lag).is_none() {
        return Err(GraphError::not_found(unit_id));
    }
    Ok(directory
        .units
        .members
        .get(&unit_id.to_ascii_lowercase())
        .into_iter()
        .flatten()
        .filter_map(|m| member_object(directory, m, lag))
        .map(|(_, object)| object)
        .collect())
}

fn require_member_read(caller: &Caller) -> Result<(), GraphError> {
    let mut allowed: Vec<&str> = UNIT_READ.to_vec();
    allowed.extend(USER_READ);
    require_permission(caller, &allowed)
}

/// `GET /directory/administrativeUnits/{id}/members`: directoryObjects with `@odata.type`.
pub async fn list_members(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Json<Value>, GraphError> {
    require_member_read(&caller)?;
    let read = ReadRequest::parse(&uri, &headers, MEMBER_RULES)?;
    let members = reader_view(&state, |directory, lag| {
        visible_members(directory, &id, lag)
    })?;
    Ok(read.collection(
        members,
        &location(
            &state,
            format!("/directory/administrativeUnits/{id}/members"),
            "directoryObjects",
        ),
    ))
}

/// `GET /directory/administrativeUnits/{id}/members/$ref`: the members' URLs
/// (`{base}/v1.0/directoryObjects/{id}`), as strings, the shape the subset declares.
pub async fn list_member_refs(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Json<Value>, GraphError> {
    require_member_read(&caller)?;
    let read = ReadRequest::parse(&uri, &headers, MEMBER_RULES)?;
    let base = state.base_url();
    let members = reader_view(&state, |directory, lag| {
        visible_members(directory, &id, lag)
    })?;
    let ids: Vec<Map<String, Value>> = members
        .iter()
        .filter_map(|m| m.get("id").cloned())
        .map(|id| Map::from_iter([("id".to_owned(), id)]))
        .collect();
    // Paged and filtered like any collection, then each entry becomes its URL.
    let Json(mut body) = read.collection(
        ids,
        &location(
            &state,
            format!("/directory/administrativeUnits/{id}/members/$ref"),
            "Collection(string)",
        ),
    );
    let refs: Vec<Value> = body["value"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| m["id"].as_str())
        .map(|m| Value::String(format!("{base}/v1.0/directoryObjects/{m}")))
        .collect();
    body["value"] = Value::Array(refs);
    Ok(Json(body))
}

fn scoped_location(state: &AppState, unit_id: &str) -> crate::graph::odata::CollectionLocation {
    location(
        state,
        format!("/directory/administrativeUnits/{unit_id}/scopedRoleMembers"),
        &format!("directory/administrativeUnits('{unit_id}')/scopedRoleMembers"),
    )
}

/// A principal that can hold a role: a user, a role-assignable group, or a service principal
/// (app or managed identity). Returns its display name.
fn role_principal(tenant: &Tenant, principal_id: &str) -> Result<Option<String>, GraphError> {
    let directory = &tenant.directory;
    if let Some(user) = directory.users.get_latest(principal_id) {
        return Ok(user["displayName"].as_str().map(str::to_owned));
    }
    if let Some(group) = directory.groups.get_latest(principal_id) {
        // "Security principals that can be assigned with administrative unit scope: users,
        // Microsoft Entra role-assignable groups, service principals" (emulator's text).
        if group["isAssignableToRole"].as_bool() != Some(true) {
            return Err(bad_request(
                "Only users, role-assignable groups and service principals can be assigned a role scoped to an administrative unit.",
            ));
        }
        return Ok(group["displayName"].as_str().map(str::to_owned));
    }
    let auth = &tenant.auth;
    auth.applications
        .iter()
        .map(|a| &a.principal)
        .chain(auth.managed_identities.iter())
        .find(|p| p.object_id.eq_ignore_ascii_case(principal_id))
        .map(|p| Some(p.display_name.clone()))
        .ok_or_else(|| GraphError::not_found(principal_id))
}

/// `POST /directory/administrativeUnits/{id}/scopedRoleMembers` with `{roleId,
/// roleMemberInfo: {id}}`: 201 with the membership. `roleId` is the id of a role definition
/// (template id); see the README for why.
pub async fn add_scoped_role_member(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, GraphError> {
    require_permission(&caller, &SCOPED_WRITE)?;
    let body = json_object(&body)?;
    let role_input = body
        .get("roleId")
        .and_then(Value::as_str)
        .filter(|s| !s.trim().is_empty())
        .ok_or_else(|| bad_request("Property value is required but is empty or missing."))?
        .to_owned();
    let principal_id = body
        .get("roleMemberInfo")
        .and_then(|i| i.get("id"))
        .and_then(Value::as_str)
        .filter(|s| !s.trim().is_empty())
        .ok_or_else(|| bad_request("Property value is required but is empty or missing."))?
        .to_owned();
    let mut tenant = state.tenant();
    let unit = unit_latest(&tenant, &id)?;
    let unit_id = unit["id"].as_str().unwrap_or(&id).to_owned();
    if unit["isMemberManagementRestricted"].as_bool() == Some(true) {
        // "Assign roles or remove role assignments with restricted management administrative
        // unit scope" is for tenant-scoped Global / Privileged Role Administrators.
        require_unit_manager(&caller)?;
    }
    // An unknown role id: 404 naming it (AlexFilipin/ConditionalAccess#46 shows the answer).
    let role = tenant
        .pim
        .role_definition_json(&role_input)
        .ok_or_else(|| GraphError::not_found(&role_input))?;
    let role_id = role["id"].as_str().unwrap_or(&role_input).to_owned();
    if !UNIT_SCOPABLE_ROLES
        .iter()
        .any(|r| r.eq_ignore_ascii_case(&role_id))
    {
        return Err(bad_request(format!(
            "The role '{}' cannot be assigned with administrative unit scope.",
            role["displayName"].as_str().unwrap_or(&role_id)
        )));
    }
    let display_name = role_principal(&tenant, &principal_id)?;
    let key = unit_id.to_ascii_lowercase();
    let existing = tenant.directory.units.scoped_roles.entry(key).or_default();
    if existing.iter().any(|m| {
        m["roleId"]
            .as_str()
            .is_some_and(|r| r.eq_ignore_ascii_case(&role_id))
            && m["roleMemberInfo"]["id"]
                .as_str()
                .is_some_and(|p| p.eq_ignore_ascii_case(&principal_id))
    }) {
        return Err(bad_request(
            "A conflicting object with one or more of the specified property values is present in the directory.",
        ));
    }
    let mut membership = Map::new();
    membership.insert(
        "id".into(),
        Value::String(membership_id(&role_id, &principal_id, &unit_id)),
    );
    membership.insert(
        "administrativeUnitId".into(),
        Value::String(unit_id.clone()),
    );
    membership.insert("roleId".into(), Value::String(role_id));
    membership.insert(
        "roleMemberInfo".into(),
        json!({"id": principal_id, "displayName": display_name}),
    );
    existing.push(membership.clone());
    drop(tenant);
    let body = entity_response(
        &membership,
        &ODataQuery::default(),
        &SCOPED_RULES,
        &scoped_location(&state, &unit_id),
    );
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

/// Scoped-role memberships of a unit as readers see it (the unit must be visible).
fn visible_scoped(
    directory: &DirectoryState,
    unit_id: &str,
    lag: Duration,
) -> Result<Vec<Map<String, Value>>, GraphError> {
    if directory.units.units.get(unit_id, lag).is_none() {
        return Err(GraphError::not_found(unit_id));
    }
    Ok(directory.units.scoped_roles_of_unit(unit_id).to_vec())
}

pub async fn list_scoped_role_members(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Json<Value>, GraphError> {
    let read = authorize_read(&caller, &SCOPED_READ, &uri, &headers, &SCOPED_RULES)?;
    let memberships = reader_view(&state, |directory, lag| visible_scoped(directory, &id, lag))?;
    Ok(read.collection(memberships, &scoped_location(&state, &id)))
}

pub async fn get_scoped_role_member(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((id, membership_id)): Path<(String, String)>,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Json<Value>, GraphError> {
    let read = authorize_read(&caller, &SCOPED_READ, &uri, &headers, &SCOPED_RULES)?;
    let membership = reader_view(&state, |directory, lag| {
        visible_scoped(directory, &id, lag).map(|all| {
            all.into_iter()
                .find(|m| m["id"].as_str() == Some(membership_id.as_str()))
        })
    })?
    .ok_or_else(|| GraphError::not_found(&membership_id))?;
    Ok(read.entity(&membership, &scoped_location(&state, &id)))
}

/// `DELETE .../scopedRoleMembers/{membershipId}`: 204; unknown → 404.
pub async fn remove_scoped_role_member(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((id, membership_id)): Path<(String, String)>,
) -> Result<StatusCode, GraphError> {
    require_permission(&caller, &SCOPED_WRITE)?;
    let mut tenant = state.tenant();
    let unit = unit_latest(&tenant, &id)?;
    let unit_id = unit["id"].as_str().unwrap_or(&id).to_owned();
    if unit["isMemberManagementRestricted"].as_bool() == Some(true) {
        require_unit_manager(&caller)?;
    }
    let memberships = tenant
        .directory
        .units
        .scoped_roles
        .entry(unit_id.to_ascii_lowercase())
        .or_default();
    let before = memberships.len();
    memberships.retain(|m| m["id"].as_str() != Some(membership_id.as_str()));
    if memberships.len() == before {
        return Err(GraphError::not_found(&membership_id));
    }
    Ok(StatusCode::NO_CONTENT)
}

/// Read permissions for `memberOf`: the directory as a whole, or users together with groups.
fn require_member_of_read(caller: &Caller) -> Result<(), GraphError> {
    let has = |names: &[&str]| {
        caller
            .roles
            .iter()
            .any(|r| names.iter().any(|n| n.eq_ignore_ascii_case(r)))
    };
    let directory = has(&["Directory.Read.All", "Directory.ReadWrite.All"]);
    let users_and_groups = has(&USER_READ)
        && has(&[
            "GroupMember.Read.All",
            "GroupMember.ReadWrite.All",
            "Group.Read.All",
            "Group.ReadWrite.All",
        ]);
    if directory || users_and_groups {
        Ok(())
    } else {
        Err(super::insufficient_privileges())
    }
}

/// `GET /users/{id}/memberOf`: the groups and administrative units the user is a direct member
/// of, each with `@odata.type`. (Directory roles, which Entra also lists, are outside the
/// subset's directoryObject types.)
pub async fn user_member_of(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(key): Path<String>,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Json<Value>, GraphError> {
    require_member_of_read(&caller)?;
    let read = ReadRequest::parse(&uri, &headers, MEMBER_OF_RULES)?;
    let (user_id, objects) = reader_view(&state, |directory, lag| -> Result<_, GraphError> {
        let user_id = super::users::find_user(directory, &key, lag)
            .and_then(|u| u["id"].as_str().map(str::to_owned))
            .ok_or_else(|| GraphError::not_found(&key))?;
        let mut objects = Vec::new();
        for group in directory.groups.list(lag) {
            let gid = group["id"].as_str().unwrap_or_default();
            let member = directory
                .group_members
                .get(&gid.to_ascii_lowercase())
                .is_some_and(|m| m.iter().any(|x| x.eq_ignore_ascii_case(&user_id)));
            if member {
                let mut out = Map::new();
                out.insert("@odata.type".into(), json!("#microsoft.graph.group"));
                out.extend(group.clone());
                objects.push(out);
            }
        }
        for unit in directory.units.units.list(lag) {
            let uid = unit["id"].as_str().unwrap_or_default();
            if directory.units.has_member(uid, &user_id) {
                let mut out = Map::new();
                out.insert(
                    "@odata.type".into(),
                    json!("#microsoft.graph.administrativeUnit"),
                );
                out.extend(unit.clone());
                objects.push(out);
            }
        }
        Ok((user_id, objects))
    })?;
    Ok(read.collection(
        objects,
        &location(
            &state,
            format!("/users/{key}/memberOf"),
            &format!("users('{user_id}')/memberOf"),
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_name_directory_objects_by_url() {
        assert_eq!(
            referenced_id("https://graph.microsoft.com/v1.0/directoryObjects/abc"),
            Some("abc".into())
        );
        assert_eq!(
            referenced_id("http://127.0.0.1:9/v1.0/users/u-1"),
            Some("u-1".into())
        );
        assert_eq!(referenced_id("abc"), None);
        assert_eq!(
            referenced_id("https://graph.microsoft.com/v1.0/applications/x"),
            None
        );
    }

    #[test]
    fn membership_ids_are_stable_and_distinct() {
        let a = membership_id(
            "fe930be7-5e62-47db-91af-98c3a49a38b1",
            "4f97c425-4dcd-40fc-b52d-0e5f5b1ab19b",
            "11111111-1111-1111-1111-111111111111",
        );
        let b = membership_id(
            "7be44c8a-adaf-4e2a-84d6-ab2649e08a13",
            "4f97c425-4dcd-40fc-b52d-0e5f5b1ab19b",
            "11111111-1111-1111-1111-111111111111",
        );
        assert_ne!(a, b);
        assert_eq!(
            a,
            membership_id(
                "fe930be7-5e62-47db-91af-98c3a49a38b1",
                "4f97c425-4dcd-40fc-b52d-0e5f5b1ab19b",
                "11111111-1111-1111-1111-111111111111",
            )
        );
    }
}
