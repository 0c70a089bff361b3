//! Azure RBAC for the tenant-level `microsoft.aadiam` resource provider: who may read and
//! write Entra diagnostic settings, and the role-assignment API at `/providers/Microsoft.aadiam`.
//!
//! What the documents and field threads establish:
//! - Every ARM call is authorized against Azure role assignments at the request's scope or a
//!   parent scope ("Understand scope for Azure RBAC": assignments are inherited by child
//!   scopes; the root scope `/` is the parent of everything). Entra directory roles (Global
//!   Administrator, Security Administrator) do not count for a service principal's ARM token —
//!   azure-rest-api-specs#11085: an SP holding Global Administrator, and a custom role at
//!   subscription scope, still got 403 on `PUT /providers/microsoft.aadiam/diagnosticSettings`.
//! - A subscription-scope assignment does not cover `/providers/microsoft.aadiam` (it is not a
//!   child of any subscription). What works is an assignment **at `/providers/Microsoft.aadiam`**
//!   (azure-rest-api-specs#11085 comment 1363008480: Contributor there, created with `az role
//!   assignment create --scope "/providers/Microsoft.aadiam"`; Azure/terraform-provider-azapi#247:
//!   the same as a `Microsoft.Authorization/roleAssignments@2022-04-01` PUT with that parent).
//! - Reads need it too: azurerm#12986 shows 403 `AuthorizationFailed` on
//!   `microsoft.aadiam/diagnosticSettings/read`; azurerm#18624 is the same failure on write.
//! - Creating an assignment at that scope needs `Microsoft.Authorization/roleAssignments/write`
//!   there or above — in practice User Access Administrator (or Owner) at root scope, which a
//!   Global Administrator gets by elevating access ("Elevate access to manage all Azure
//!   subscriptions and management groups").
//!
//! The 403 body is ARM's `AuthorizationFailed` ("The client '…' with object id '…' does not have
//! authorization to perform action '…' over scope '…' or the scope is invalid. If access was
//! recently granted, please refresh your credentials.", azurerm#12986). Other ARM paths are not
//! authorized by the emulator (every caller acts as an Owner of the seeded subscription).
//!
//! Built-in role definitions (ids and permissions from "Azure built-in roles"): Owner,
//! Contributor (everything but `Microsoft.Authorization/*/Write|Delete` and elevateAccess),
//! Reader (`*/read`), User Access Administrator (`*/read`, `Microsoft.Authorization/*`,
//! `Microsoft.Support/*`). Seeds may add custom definitions.

use std::time::{Duration, Instant};

use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Map, Value};

use super::{
    arm_error, json_body, json_response, list_response, method_not_allowed, ArmRequest, Reply,
};
use crate::token::Caller;
use crate::AppState;

pub const API_VERSIONS: &[&str] = &["2022-04-01"];

/// The tenant-level scope the aadiam provider's resources live under.
pub const AADIAM_SCOPE: &str = "/providers/Microsoft.aadiam";

pub const OWNER: &str = "8e3af657-a8ff-443c-a75c-2fe8c4bcb635";
pub const CONTRIBUTOR: &str = "b24988ac-6180-42a0-ab88-20f7382dd24c";
pub const READER: &str = "acdd72a7-3385-48ef-bd42-f606fba81ae7";
pub const USER_ACCESS_ADMINISTRATOR: &str = "18d7d88d-d35e-4fb5-a5c3-7773c20a72d9";

#[derive(Debug, Clone)]
pub struct RoleDefinition {
    pub id: String,
    pub name: String,
    pub actions: Vec<String>,
    pub not_actions: Vec<String>,
}

fn builtin(id: &str, name: &str, actions: &[&str], not_actions: &[&str]) -> RoleDefinition {
    RoleDefinition {
        id: id.to_owned(),
        name: name.to_owned(),
        actions: actions.iter().map(|a| (*a).to_owned()).collect(),
        not_actions: not_actions.iter().map(|a| (*a).to_owned()).collect(),
    }
}

fn builtin_definitions() -> Vec<RoleDefinition> {
    vec![
        builtin(OWNER, "Owner", &["*"], &[]),
        builtin(
            CONTRIBUTOR,
            "Contributor",
            &["*"],
            &[
                "Microsoft.Authorization/*/Delete",
                "Microsoft.Authorization/*/Write",
                "Microsoft.Authorization/elevateAccess/Action",
                "Microsoft.Blueprint/blueprintAssignments/write",
                "Microsoft.Blueprint/blueprintAssignments/delete",
                "Microsoft.Compute/galleries/share/action",
                "Microsoft.Purview/consents/write",
                "Microsoft.Purview/consents/delete",
                "Microsoft.Resources/deploymentStacks/manageDenySetting/action",
                "Microsoft.Subscription/cancel/action",
                "Microsoft.Subscription/enable/action",
            ],
        ),
        builtin(READER, "Reader", &["*/read"], &[]),
        builtin(
            USER_ACCESS_ADMINISTRATOR,
            "User Access Administrator",
            &["*/read", "Microsoft.Authorization/*", "Microsoft.Support/*"],
            &[],
        ),
    ]
}

/// A role assignment as ARM stores it, plus when it takes effect.
#[derive(Debug, Clone)]
pub struct Assignment {
    pub resource: Map<String, Value>,
    pub effective_at: Instant,
}

impl Assignment {
    fn field(&self, name: &str) -> &str {
        self.resource["properties"][name]
            .as_str()
            .unwrap_or_default()
    }
    fn name(&self) -> &str {
        self.resource["name"].as_str().unwrap_or_default()
    }
}

#[derive(Debug, Clone, Default)]
pub struct RbacState {
    pub definitions: Vec<RoleDefinition>,
    pub assignments: Vec<Assignment>,
}

/// The GUID at the end of `…/roleDefinitions/{guid}` (or a bare GUID).
fn definition_guid(id: &str) -> &str {
    id.rsplit('/').next().unwrap_or(id)
}

fn definition_id(guid: &str) -> String {
    format!("/providers/Microsoft.Authorization/roleDefinitions/{guid}")
}

fn assignment_id(scope: &str, name: &str) -> String {
    format!(
        "{}/providers/Microsoft.Authorization/roleAssignments/{name}",
        scope.trim_end_matches('/')
    )
}

fn now_text() -> String {
    super::now_rfc3339()
}

fn assignment_resource(
    scope: &str,
    name: &str,
    role_guid: &str,
    principal_id: &str,
    principal_type: &str,
    description: Option<&Value>,
    created_by: &str,
) -> Map<String, Value> {
    let now = now_text();
    let value = json!({
        "id": assignment_id(scope, name),
        "type": "Microsoft.Authorization/roleAssignments",
        "name": name,
        "properties": {
            "scope": scope,
            "roleDefinitionId": definition_id(role_guid),
            "principalId": principal_id,
            "principalType": principal_type,
            "createdOn": now,
            "updatedOn": now,
            "createdBy": created_by,
            "updatedBy": created_by,
        },
    });
    // ARM sends `condition`, `conditionVersion`, … as null when unset; the description does
    // not declare them nullable, so unset members are left out.
    let Value::Object(mut map) = value else {
        return Map::new();
    };
    if let (Some(description), Some(Value::Object(props))) = (
        description.filter(|d| d.is_string()),
        map.get_mut("properties"),
    ) {
        props.insert("description".into(), description.clone());
    }
    map
}

impl RbacState {
    /// Seed: `roleDefinitions[] {id, roleName, actions, notActions}` (custom, added to the
    /// built-ins) and `roleAssignments[] {name, scope, roleDefinitionId, principalId,
    /// principalType?}`.
    pub fn from_seed(seed: &Value) -> Result<RbacState, String> {
        let mut state = RbacState {
            definitions: builtin_definitions(),
            assignments: Vec::new(),
        };
        let strings = |v: &Value| -> Vec<String> {
            v.as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        };
        for d in super::array(seed, "roleDefinitions")? {
            let id = super::str_field(d, "id", "roleDefinitions[]")?;
            state.definitions.push(RoleDefinition {
                id: definition_guid(id).to_owned(),
                name: d["roleName"].as_str().unwrap_or(id).to_owned(),
                actions: strings(&d["actions"]),
                not_actions: strings(&d["notActions"]),
            });
        }
        for a in super::array(seed, "roleAssignments")? {
            let what = "roleAssignments[]";
            let name = super::str_field(a, "name", what)?;
            let scope = super::str_field(a, "scope", what)?;
            let role = super::str_field(a, "roleDefinitionId", what)?;
            let principal = super::str_field(a, "principalId", what)?;
            let kind = a["principalType"].as_str().unwrap_or("ServicePrincipal");
            if !state.has_definition(definition_guid(role)) {
                return Err(format!(
                    "arm seed: role assignment '{name}' names unknown role '{role}'"
                ));
            }
            state.assignments.push(Assignment {
                resource: assignment_resource(
                    scope,
                    name,
                    definition_guid(role),
                    principal,
                    kind,
                    a.get("description"),
                    "seed",
                ),
                effective_at: Instant::now() - Duration::from_secs(3600),
            });
        }
        Ok(state)
    }

    pub fn dump(&self) -> Value {
        let custom: Vec<Value> = self
            .definitions
            .iter()
            .filter(|d| !builtin_definitions().iter().any(|b| b.id == d.id))
            .map(|d| json!({"id": d.id, "roleName": d.name, "actions": d.actions, "notActions": d.not_actions}))
            .collect();
        let assignments: Vec<Value> = self
            .assignments
            .iter()
            .map(|a| {
                json!({
                    "name": a.name(),
                    "scope": a.field("scope"),
                    "roleDefinitionId": definition_guid(a.field("roleDefinitionId")),
                    "principalId": a.field("principalId"),
                    "principalType": a.field("principalType"),
                })
            })
            .collect();
        json!({"roleDefinitions": custom, "roleAssignments": assignments})
    }

    fn has_definition(&self, guid: &str) -> bool {
        self.definitions
            .iter()
            .any(|d| d.id.eq_ignore_ascii_case(guid))
    }

    /// Whether `principal` may perform `action` at `scope`: some assignment in effect at the
    /// scope or a parent grants it (an `actions` pattern matches and no `notActions` does).
    pub fn allows(&self, principal: &str, action: &str, scope: &str) -> bool {
        let now = Instant::now();
        self.assignments.iter().any(|a| {
            a.effective_at <= now
                && a.field("principalId").eq_ignore_ascii_case(principal)
                && covers(a.field("scope"), scope)
                && self
                    .definitions
                    .iter()
                    .find(|d| {
                        d.id.eq_ignore_ascii_case(definition_guid(a.field("roleDefinitionId")))
                    })
                    .is_some_and(|d| {
                        d.actions.iter().any(|p| action_matches(p, action))
                            && !d.not_actions.iter().any(|p| action_matches(p, action))
                    })
        })
    }
}

/// An assignment at `assigned` applies at `requested` when it is the same scope or a parent.
fn covers(assigned: &str, requested: &str) -> bool {
    let a = assigned.trim_end_matches('/').to_ascii_lowercase();
    let r = requested.trim_end_matches('/').to_ascii_lowercase();
    a.is_empty() || r == a || r.starts_with(&format!("{a}/"))
}

/// Action patterns compare case-insensitively; `*` matches any run of characters ("Azure role
/// definitions": `Microsoft.Authorization/*/Write`, `*/read`).
fn action_matches(pattern: &str, action: &str) -> bool {
    let pattern = pattern.to_ascii_lowercase();
    let action = action.to_ascii_lowercase();
    let parts: Vec<&str> = pattern.split('*').collect();
    let (Some(first), Some(last)) = (parts.first(), parts.last()) else {
        return false;
    };
    if parts.len() == 1 {
        return pattern == action;
    }
    if !action.starts_with(first)
        || !action.ends_with(last)
        || action.len() < first.len() + last.len()
    {
        return false;
    }
    let mut rest = &action[first.len()..action.len() - last.len()];
    for middle in &parts[1..parts.len() - 1] {
        match rest.find(middle) {
            Some(at) => rest = &rest[at + middle.len()..],
            None => return false,
        }
    }
    true
}

/// ARM's 403 for a call the caller's role assignments do not allow.
pub fn authorization_failed(caller: &Caller, action: &str, scope: &str) -> Response {
    arm_error(
        StatusCode::FORBIDDEN,
        "AuthorizationFailed",
        format!(
            "The client '{id}' with object id '{id}' does not have authorization to perform action '{action}' over scope '{scope}' or the scope is invalid. If access was recently granted, please refresh your credentials.",
            id = caller.object_id
        ),
    )
}

/// Checks `action` at `scope` for the caller.
pub fn authorize(
    state: &AppState,
    caller: &Caller,
    action: &str,
    scope: &str,
) -> Result<(), Response> {
    if state
        .tenant()
        .arm
        .rbac
        .allows(&caller.object_id, action, scope)
    {
        Ok(())
    } else {
        Err(authorization_failed(caller, action, scope))
    }
}

/// The aadiam operation a request is, as ARM names it for authorization.
pub fn aadiam_action(resource: &str, method: &Method) -> String {
    let verb = match *method {
        Method::PUT | Method::PATCH | Method::POST => "write",
        Method::DELETE => "delete",
        _ => "read",
    };
    format!("microsoft.aadiam/{resource}/{verb}")
}

// ---------------------------------------------------------------------------------------------
// Role assignments at /providers/Microsoft.aadiam — `authorization-RoleAssignmentsCalls.json`

fn not_found(name: &str) -> Response {
    arm_error(
        StatusCode::NOT_FOUND,
        "RoleAssignmentNotFound",
        format!("The role assignment '{name}' is not found."),
    )
}

fn bad_request(code: &str, message: impl Into<String>) -> Response {
    arm_error(StatusCode::BAD_REQUEST, code, message)
}

fn action(verb: &str) -> String {
    format!("Microsoft.Authorization/roleAssignments/{verb}")
}

/// The principal's type as the directory knows it, or `None` when it does not exist.
fn principal_type(state: &AppState, id: &str) -> Option<&'static str> {
    let tenant = state.tenant();
    if tenant.directory.users.get_latest(id).is_some() {
        return Some("User");
    }
    if tenant.directory.groups.get_latest(id).is_some() {
        return Some("Group");
    }
    let auth = &tenant.auth;
    auth.applications
        .iter()
        .map(|a| &a.principal)
        .chain(auth.managed_identities.iter())
        .any(|p| p.object_id.eq_ignore_ascii_case(id))
        .then_some("ServicePrincipal")
}

/// `GET …/roleAssignments` at the aadiam scope: assignments at, above or below it;
/// `$filter=principalId eq '{id}'` narrows.
pub fn collection(
    state: &AppState,
    caller: &Caller,
    req: &ArmRequest,
    filter: Option<&str>,
) -> Reply {
    if req.method != Method::GET {
        return Err(method_not_allowed(&req.method));
    }
    authorize(state, caller, &action("read"), AADIAM_SCOPE)?;
    let principal = filter.and_then(|f| {
        let rest = f.trim().strip_prefix("principalId eq ")?;
        Some(rest.trim().trim_matches('\'').to_ascii_lowercase())
    });
    let tenant = state.tenant();
    let items = tenant
        .arm
        .rbac
        .assignments
        .iter()
        .filter(|a| {
            covers(a.field("scope"), AADIAM_SCOPE) || covers(AADIAM_SCOPE, a.field("scope"))
        })
        .filter(|a| {
            principal
                .as_deref()
                .is_none_or(|p| a.field("principalId").eq_ignore_ascii_case(p))
        })
        .map(|a| Value::Object(a.resource.clone()))
        .collect();
    Ok(list_response(items))
}

pub fn item(
    state: &AppState,
    caller: &Caller,
    req: &ArmRequest,
    name: &str,
    lag: Duration,
) -> Reply {
    match req.method {
        Method::GET => {
            authorize(state, caller, &action("read"), AADIAM_SCOPE)?;
            let tenant = state.tenant();
            tenant
                .arm
                .rbac
                .assignments
                .iter()
                .find(|a| {
                    a.name().eq_ignore_ascii_case(name)
                        && a.field("scope").eq_ignore_ascii_case(AADIAM_SCOPE)
                })
                .map(|a| json_response(StatusCode::OK, Value::Object(a.resource.clone())))
                .ok_or_else(|| not_found(name))
        }
        Method::PUT => {
            authorize(state, caller, &action("write"), AADIAM_SCOPE)?;
            if uuid::Uuid::parse_str(name).is_err() {
                return Err(bad_request(
                    "InvalidRoleAssignmentId",
                    format!("The role assignment ID '{name}' is not valid. The role assignment ID must be a GUID."),
                ));
            }
            let body = json_body(req)?;
            let props = body
                .get("properties")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default();
            let text = |k: &str| {
                props
                    .get(k)
                    .and_then(Value::as_str)
                    .filter(|s| !s.is_empty())
            };
            let (Some(role), Some(principal)) = (text("roleDefinitionId"), text("principalId"))
            else {
                return Err(super::invalid_request_content(
                    "Required properties 'roleDefinitionId' and 'principalId' not found in 'properties'",
                ));
            };
            let role_guid = definition_guid(role).to_owned();
            if !state.tenant().arm.rbac.has_definition(&role_guid) {
                return Err(bad_request(
                    "RoleDefinitionDoesNotExist",
                    format!("The specified role definition with ID '{role_guid}' does not exist."),
                ));
            }
            let Some(kind) = principal_type(state, principal) else {
                let tenant_id = state.tenant().tenant_id.clone();
                return Err(bad_request(
                    "PrincipalNotFound",
                    format!("Principal {principal} does not exist in the directory {tenant_id}. Check that you have the correct principal ID. If you are creating this principal and then immediately assigning a role, this error might be related to a replication delay. In this case, set the role assignment principalType property to a value, such as ServicePrincipal, User, or Group.  See https://aka.ms/docs-principaltype"),
                ));
            };
            let mut tenant = state.tenant();
            let rbac = &mut tenant.arm.rbac;
            let same = |a: &Assignment| {
                a.field("principalId").eq_ignore_ascii_case(principal)
                    && definition_guid(a.field("roleDefinitionId")).eq_ignore_ascii_case(&role_guid)
                    && a.field("scope").eq_ignore_ascii_case(AADIAM_SCOPE)
            };
            if let Some(existing) = rbac
                .assignments
                .iter()
                .find(|a| a.name().eq_ignore_ascii_case(name))
            {
                if same(existing) {
                    return Ok(json_response(
                        StatusCode::OK,
                        Value::Object(existing.resource.clone()),
                    ));
                }
                return Err(bad_request(
                    "RoleAssignmentUpdateNotPermitted",
                    "Tenant ID, application ID, principal ID, and scope are not allowed to be updated.",
                ));
            }
            if rbac.assignments.iter().any(same) {
                return Err(arm_error(
                    StatusCode::CONFLICT,
                    "RoleAssignmentExists",
                    "The role assignment already exists.",
                ));
            }
            let resource = assignment_resource(
                AADIAM_SCOPE,
                &name.to_ascii_lowercase(),
                &role_guid,
                principal,
                kind,
                props.get("description"),
                &caller.object_id,
            );
            rbac.assignments.push(Assignment {
                resource: resource.clone(),
                effective_at: Instant::now() + lag,
            });
            Ok(json_response(StatusCode::CREATED, Value::Object(resource)))
        }
        Method::DELETE => {
            authorize(state, caller, &action("delete"), AADIAM_SCOPE)?;
            let mut tenant = state.tenant();
            let rbac = &mut tenant.arm.rbac;
            let Some(at) = rbac.assignments.iter().position(|a| {
                a.name().eq_ignore_ascii_case(name)
                    && a.field("scope").eq_ignore_ascii_case(AADIAM_SCOPE)
            }) else {
                return Ok(StatusCode::NO_CONTENT.into_response());
            };
            let removed = rbac.assignments.remove(at);
            Ok(json_response(
                StatusCode::OK,
                Value::Object(removed.resource),
            ))
        }
        _ => Err(method_not_allowed(&req.method)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn action_patterns_match_like_azure_rbac() {
        assert!(action_matches(
            "*",
            "microsoft.aadiam/diagnosticSettings/write"
        ));
        assert!(action_matches(
            "*/read",
            "microsoft.aadiam/diagnosticSettings/read"
        ));
        assert!(!action_matches(
            "*/read",
            "microsoft.aadiam/diagnosticSettings/write"
        ));
        assert!(action_matches(
            "Microsoft.Authorization/*/Write",
            "Microsoft.Authorization/roleAssignments/write"
        ));
        assert!(action_matches(
            "Microsoft.AADIAM/diagnosticSettings/*",
            "microsoft.aadiam/diagnosticSettings/delete"
        ));
        assert!(!action_matches(
            "Microsoft.Insights/DiagnosticSettings/*",
            "microsoft.aadiam/diagnosticSettings/write"
        ));
    }

    #[test]
    fn scopes_are_inherited_by_children_only() {
        assert!(covers(
            "/",
            "/providers/microsoft.aadiam/diagnosticSettings/x"
        ));
        assert!(covers(
            "/providers/Microsoft.aadiam",
            "/providers/microsoft.aadiam/diagnosticSettings/x"
        ));
        assert!(!covers("/subscriptions/s", "/providers/microsoft.aadiam"));
        assert!(!covers(
            "/providers/Microsoft.aadiamx",
            "/providers/microsoft.aadiam"
        ));
    }

    #[test]
    fn contributor_writes_settings_but_not_role_assignments() {
        let seed = json!({"roleAssignments": [
            {"name": "a", "scope": "/providers/Microsoft.aadiam", "roleDefinitionId": CONTRIBUTOR, "principalId": "p"},
            {"name": "b", "scope": "/subscriptions/s", "roleDefinitionId": OWNER, "principalId": "q"},
        ]});
        let rbac = RbacState::from_seed(&seed).unwrap();
        let write = "microsoft.aadiam/diagnosticSettings/write";
        assert!(rbac.allows(
            "P",
            write,
            "/providers/microsoft.aadiam/diagnosticSettings/x"
        ));
        assert!(!rbac.allows(
            "p",
            "Microsoft.Authorization/roleAssignments/write",
            AADIAM_SCOPE
        ));
        assert!(!rbac.allows(
            "q",
            write,
            "/providers/microsoft.aadiam/diagnosticSettings/x"
        ));
    }
}
