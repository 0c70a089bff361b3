//! HTTP surface of the PIM area: query options, permissions and response envelopes around the
//! model in the sibling modules. Each handler locks the tenant once, without awaiting.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch};
use axum::{Extension, Json, Router};
use serde_json::{Map, Value};

use super::assignments::{role_assignment_id, AssignmentRecord, Moment, ScheduleVersion};
use super::policies::RolePolicy;
use super::requests::Submission;
use super::schedule::{format_timestamp, Schedule};
use super::{PimState, DEFAULT_PROVISIONING_DELAY_MS};
use crate::error::GraphError;
use crate::graph::odata::{
    entity_response, CollectionLocation, CompareOp, Filter, Literal, ODataQuery, QueryRules,
    ReadRequest,
};
use crate::state::Tenant;
use crate::token::Caller;
use crate::AppState;

const DEFINITIONS: &str = "/roleManagement/directory/roleDefinitions";
const ASSIGNMENTS: &str = "/roleManagement/directory/roleAssignments";
const REQUESTS: &str = "/roleManagement/directory/roleAssignmentScheduleRequests";
const SCHEDULES: &str = "/roleManagement/directory/roleAssignmentSchedules";
const INSTANCES: &str = "/roleManagement/directory/roleAssignmentScheduleInstances";
const POLICY_ASSIGNMENTS: &str = "/policies/roleManagementPolicyAssignments";
const POLICIES: &str = "/policies/roleManagementPolicies";

// Application permissions per operation, least privileged first (Graph permission reference).
const READ_ROLES: &[&str] = &[
    "RoleManagement.Read.Directory",
    "RoleManagement.Read.All",
    "Directory.Read.All",
    "RoleManagement.ReadWrite.Directory",
    "Directory.ReadWrite.All",
];
const WRITE_ROLES: &[&str] = &["RoleManagement.ReadWrite.Directory"];
const READ_SCHEDULES: &[&str] = &[
    "RoleAssignmentSchedule.Read.Directory",
    "RoleManagement.Read.Directory",
    "RoleManagement.Read.All",
    "RoleAssignmentSchedule.ReadWrite.Directory",
    "RoleManagement.ReadWrite.Directory",
];
const WRITE_SCHEDULES: &[&str] = &[
    "RoleAssignmentSchedule.ReadWrite.Directory",
    "RoleManagement.ReadWrite.Directory",
];
const READ_POLICIES: &[&str] = &[
    "RoleManagementPolicy.Read.Directory",
    "RoleManagement.Read.Directory",
    "RoleManagement.Read.All",
    "RoleManagementPolicy.ReadWrite.Directory",
    "RoleManagement.ReadWrite.Directory",
];

/// Delegated callers act through their directory roles; these two may manage role assignments.
const ROLE_ADMIN_ROLES: &[&str] = &[
    "62e90394-69f5-4237-9190-012177145e10", // Global Administrator
    "e8611ab8-c189-46e8-94e1-60213ab1f814", // Privileged Role Administrator
];

/// PIM's own APIs (schedule requests, schedules, instances, role settings) answer this on a
/// tenant without Microsoft Entra ID P2 or ID Governance ("License requirements to use
/// Privileged Identity Management"); direct role assignments and definitions keep working. The
/// code and text are the ones field reports show (JulianHayward/Azure-MG-Sub-Governance-
/// Reporting#114, microsoft/EntraExporter#61, Galvnyz/M365-Assess#117).
fn require_pim_licence(state: &AppState) -> Result<(), GraphError> {
    if state.tenant().pim.licensed {
        Ok(())
    } else {
        Err(GraphError::new(
            StatusCode::BAD_REQUEST,
            "AadPremiumLicenseRequired",
            "The tenant needs an AAD Premium 2 license.",
        ))
    }
}

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(DEFINITIONS, get(list_definitions))
        .route(&format!("{DEFINITIONS}/{{id}}"), get(get_definition))
        .route(ASSIGNMENTS, get(list_assignments).post(create_assignment))
        .route(
            &format!("{ASSIGNMENTS}/{{id}}"),
            get(get_assignment).delete(delete_assignment),
        )
        .route(REQUESTS, get(list_requests).post(create_request))
        .route(
            &format!("{REQUESTS}/{{id}}"),
            get(get_request)
                .delete(request_not_modifiable)
                .patch(request_not_modifiable)
                .put(request_not_modifiable),
        )
        .route(SCHEDULES, get(list_schedules))
        .route(&format!("{SCHEDULES}/{{id}}"), get(get_schedule))
        .route(INSTANCES, get(list_instances))
        .route(POLICY_ASSIGNMENTS, get(list_policy_assignments))
        .route(&format!("{POLICIES}/{{id}}"), get(get_policy))
        .route(&format!("{POLICIES}/{{id}}/rules"), get(list_rules))
        .route(&format!("{POLICIES}/{{id}}/rules/{{rule}}"), get(get_rule))
}

pub fn admin_routes() -> Router<AppState> {
    Router::new().route("/pim/state", get(admin_state)).route(
        "/pim/policies/{policy}/rules/{rule}",
        patch(admin_patch_rule),
    )
}

// ---------------------------------------------------------------------------------------------
// Shared plumbing

fn query_rules(entity: &'static str) -> QueryRules {
    QueryRules {
        entity,
        default_page_size: 100,
        max_top: 999,
        directory_object: false,
        default_select: None,
    }
}

/// A PIM entity set as a reader meets it: its OData type and the permissions that read it.
struct EntitySet {
    entity: &'static str,
    readers: &'static [&'static str],
}

const DEFINITION_SET: EntitySet = EntitySet {
    entity: "unifiedRoleDefinition",
    readers: READ_ROLES,
};
const ASSIGNMENT_SET: EntitySet = EntitySet {
    entity: "unifiedRoleAssignment",
    readers: READ_ROLES,
};
const REQUEST_SET: EntitySet = EntitySet {
    entity: "unifiedRoleAssignmentScheduleRequest",
    readers: READ_SCHEDULES,
};
const SCHEDULE_SET: EntitySet = EntitySet {
    entity: "unifiedRoleAssignmentSchedule",
    readers: READ_SCHEDULES,
};
const INSTANCE_SET: EntitySet = EntitySet {
    entity: "unifiedRoleAssignmentScheduleInstance",
    readers: READ_SCHEDULES,
};
const POLICY_ASSIGNMENT_SET: EntitySet = EntitySet {
    entity: "unifiedRoleManagementPolicyAssignment",
    readers: READ_POLICIES,
};
const POLICY_SET: EntitySet = EntitySet {
    entity: "unifiedRoleManagementPolicy",
    readers: READ_POLICIES,
};
const RULE_SET: EntitySet = EntitySet {
    entity: "unifiedRoleManagementPolicyRule",
    readers: READ_POLICIES,
};

/// The caller may read the entity set, and the query options suit it.
fn authorize_read(
    caller: &Caller,
    set: &EntitySet,
    uri: &Uri,
    headers: &HeaderMap,
) -> Result<ReadRequest, GraphError> {
    require_permission(caller, set.readers)?;
    ReadRequest::parse(uri, headers, query_rules(set.entity))
}

fn location(state: &AppState, path: &str) -> CollectionLocation {
    CollectionLocation::new(state.base_url(), path, path.trim_start_matches('/'))
}

fn require_permission(caller: &Caller, permissions: &[&str]) -> Result<(), GraphError> {
    let has_app_permission = caller
        .roles
        .iter()
        .any(|r| permissions.iter().any(|p| p.eq_ignore_ascii_case(r)));
    let has_admin_role = caller
        .directory_roles
        .iter()
        .any(|r| ROLE_ADMIN_ROLES.iter().any(|a| a.eq_ignore_ascii_case(r)));
    if has_app_permission || has_admin_role {
        Ok(())
    } else {
        Err(GraphError::new(
            StatusCode::FORBIDDEN,
            "Authorization_RequestDenied",
            "Insufficient privileges to complete the operation.",
        ))
    }
}

fn parse_body(body: &Bytes) -> Result<Map<String, Value>, GraphError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(GraphError::bad_request(
            "The request body must be a JSON object.",
        )),
        Err(_) => Err(GraphError::bad_request(
            "Unable to read JSON request payload. Please ensure Content-Type header is set and payload is of valid JSON format.",
        )),
    }
}

/// 201 with the new entity as a GET of it would show it without query options.
fn created(
    object: &Map<String, Value>,
    set: &EntitySet,
    location: &CollectionLocation,
) -> Response {
    let body = entity_response(
        object,
        &ODataQuery::default(),
        &query_rules(set.entity),
        location,
    );
    (StatusCode::CREATED, Json(body)).into_response()
}

/// One `$expand` item: `name` or `name($expand=inner)`.
struct Expand {
    name: String,
    inner: Option<String>,
}

/// Navigation properties of the assignment-shaped entity sets (assignments, requests,
/// schedules, instances).
const ASSIGNMENT_NAVIGATION: &[&str] = &["principal", "roleDefinition"];

/// Splits the read's `$expand` at top-level commas and checks each navigation property is one
/// this entity set expands.
fn parse_expand(read: &ReadRequest, allowed: &[&str]) -> Result<Vec<Expand>, GraphError> {
    let Some(raw) = read.query.expand.as_deref() else {
        return Ok(Vec::new());
    };
    let entity = read.rules.entity;
    let mut items = Vec::new();
    let mut depth = 0usize;
    let mut current = String::new();
    for c in raw.chars().chain(std::iter::once(',')) {
        match c {
            '(' => {
                depth += 1;
                current.push(c);
            }
            ')' => {
                depth = depth.saturating_sub(1);
                current.push(c);
            }
            ',' if depth == 0 => {
                let item = std::mem::take(&mut current);
                let item = item.trim();
                if item.is_empty() {
                    continue;
                }
                let (name, inner) = match item.split_once('(') {
                    Some((name, rest)) => {
                        let options = rest.trim_end_matches(')');
                        let inner = options
                            .split(';')
                            .find_map(|o| o.trim().strip_prefix("$expand="))
                            .map(str::to_owned);
                        (name.trim().to_owned(), inner)
                    }
                    None => (item.to_owned(), None),
                };
                if !allowed.iter().any(|a| a.eq_ignore_ascii_case(&name)) {
                    return Err(GraphError::new(
                        StatusCode::BAD_REQUEST,
                        "BadRequest",
                        format!(
                            "Parsing OData Select and Expand failed: Could not find a property named '{name}' on type 'microsoft.graph.{entity}'."
                        ),
                    ));
                }
                items.push(Expand { name, inner });
            }
            _ => current.push(c),
        }
    }
    Ok(items)
}

fn expands(items: &[Expand], name: &str) -> bool {
    items.iter().any(|e| e.name.eq_ignore_ascii_case(name))
}

/// Whether the principal exists and has replicated far enough to be used in an assignment:
/// users and groups as the directory's readers see them (a principal created moments ago is
/// not usable yet), service principals and managed identities from the auth seed.
fn principal_visible(tenant: &Tenant, principal_id: &str) -> bool {
    principal_json(tenant, principal_id).is_some()
}

/// The principal as a `directoryObject` for `$expand=principal`.
fn principal_json(tenant: &Tenant, principal_id: &str) -> Option<Map<String, Value>> {
    let lag = tenant.behaviour.graph_lag();
    let pick = |odata_type: &str, object: &Map<String, Value>, keys: &[&str]| {
        let mut out = Map::new();
        out.insert("@odata.type".into(), Value::from(odata_type));
        for key in keys {
            out.insert(
                (*key).into(),
                object.get(*key).cloned().unwrap_or(Value::Null),
            );
        }
        out
    };
    if let Some(user) = tenant.directory.users.get(principal_id, lag) {
        return Some(pick(
            "#microsoft.graph.user",
            user,
            &["id", "displayName", "userPrincipalName"],
        ));
    }
    if let Some(group) = tenant.directory.groups.get(principal_id, lag) {
        return Some(pick(
            "#microsoft.graph.group",
            group,
            &["id", "displayName"],
        ));
    }
    let id = principal_id.to_ascii_lowercase();
    let service_principal = tenant
        .auth
        .applications
        .iter()
        .map(|a| &a.principal)
        .chain(tenant.auth.managed_identities.iter())
        .find(|p| p.object_id == id)?;
    // servicePrincipal is outside the subset, so only what directoryObject declares is
    // returned beside the type.
    let mut out = Map::new();
    out.insert(
        "@odata.type".into(),
        Value::from("#microsoft.graph.servicePrincipal"),
    );
    out.insert(
        "id".into(),
        Value::from(service_principal.object_id.clone()),
    );
    Some(out)
}

/// Adds `principal` / `roleDefinition` to an assignment-shaped object when expanded.
fn expand_assignment_like(
    tenant: &Tenant,
    mut object: Map<String, Value>,
    expand: &[Expand],
) -> Map<String, Value> {
    if expands(expand, "principal") {
        let principal = object["principalId"]
            .as_str()
            .and_then(|id| principal_json(tenant, id));
        object.insert(
            "principal".into(),
            principal.map(Value::Object).unwrap_or(Value::Null),
        );
    }
    if expands(expand, "roleDefinition") {
        let definition = object["roleDefinitionId"]
            .as_str()
            .and_then(|id| tenant.pim.role_definition(id))
            .cloned();
        object.insert(
            "roleDefinition".into(),
            definition.map(Value::Object).unwrap_or(Value::Null),
        );
    }
    object
}

/// Answers a read of an assignment-shaped collection: `objects` picks and shapes the records
/// readers see at the moment of the read, then `principal` / `roleDefinition` are expanded.
fn assignment_like_collection(
    state: &AppState,
    read: &ReadRequest,
    path: &str,
    objects: impl FnOnce(&PimState, Moment) -> Vec<Map<String, Value>>,
) -> Result<Json<Value>, GraphError> {
    let expand = parse_expand(read, ASSIGNMENT_NAVIGATION)?;
    let tenant = state.tenant();
    let items = objects(&tenant.pim, Moment::now())
        .into_iter()
        .map(|object| expand_assignment_like(&tenant, object, &expand))
        .collect();
    Ok(read.collection(items, &location(state, path)))
}

/// Answers a read of one assignment-shaped object, 404 when `object` finds no record with
/// `id` that readers see at the moment of the read.
fn assignment_like_entity(
    state: &AppState,
    read: &ReadRequest,
    path: &str,
    id: &str,
    object: impl FnOnce(&PimState, Moment) -> Option<Map<String, Value>>,
) -> Result<Json<Value>, GraphError> {
    let expand = parse_expand(read, ASSIGNMENT_NAVIGATION)?;
    let tenant = state.tenant();
    let object = object(&tenant.pim, Moment::now()).ok_or_else(|| GraphError::not_found(id))?;
    let object = expand_assignment_like(&tenant, object, &expand);
    Ok(read.entity(&object, &location(state, path)))
}

fn provisioning_delay(tenant: &Tenant) -> std::time::Duration {
    std::time::Duration::from_millis(
        tenant
            .behaviour
            .setting_u64("pim.provisioning_delay_ms", DEFAULT_PROVISIONING_DELAY_MS),
    )
}

// ---------------------------------------------------------------------------------------------
// Role definitions

async fn list_definitions(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Json<Value>, GraphError> {
    let read = authorize_read(&caller, &DEFINITION_SET, &uri, &headers)?;
    // Definitions expand nothing, so the list refuses any `$expand` (400).
    parse_expand(&read, &[])?;
    let tenant = state.tenant();
    let lag = tenant.behaviour.graph_lag();
    let items = tenant
        .pim
        .definitions
        .list(lag)
        .into_iter()
        .cloned()
        .collect();
    Ok(read.collection(items, &location(&state, DEFINITIONS)))
}

async fn get_definition(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Json<Value>, GraphError> {
    let read = authorize_read(&caller, &DEFINITION_SET, &uri, &headers)?;
    let tenant = state.tenant();
    let lag = tenant.behaviour.graph_lag();
    let definition = tenant
        .pim
        .definitions
        .get(&id, lag)
        .ok_or_else(|| GraphError::not_found(&id))?;
    Ok(read.entity(definition, &location(&state, DEFINITIONS)))
}

// ---------------------------------------------------------------------------------------------
// Direct role assignments

impl PimState {
    /// Assignments in force as readers see them, one per id.
    fn active_assignments(&self, now: Moment) -> Vec<&AssignmentRecord> {
        let mut seen = std::collections::BTreeSet::new();
        self.assignments
            .iter()
            .rev()
            .filter(|a| a.active(now))
            .filter(|a| seen.insert(a.id.to_ascii_lowercase()))
            .collect()
    }
}

async fn list_assignments(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Json<Value>, GraphError> {
    let read = authorize_read(&caller, &ASSIGNMENT_SET, &uri, &headers)?;
    assignment_like_collection(&state, &read, ASSIGNMENTS, |pim, now| {
        pim.active_assignments(now)
            .into_iter()
            .map(AssignmentRecord::role_assignment_json)
            .collect()
    })
}

async fn get_assignment(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Json<Value>, GraphError> {
    let read = authorize_read(&caller, &ASSIGNMENT_SET, &uri, &headers)?;
    assignment_like_entity(&state, &read, ASSIGNMENTS, &id, |pim, now| {
        pim.active_assignments(now)
            .into_iter()
            .find(|a| a.id.eq_ignore_ascii_case(&id))
            .map(AssignmentRecord::role_assignment_json)
    })
}

/// `POST /roleManagement/directory/roleAssignments`: a permanent active assignment made outside
/// PIM, so no PIM policy applies. It is visible after the directory's replication lag.
async fn create_assignment(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    body: Bytes,
) -> Result<Response, GraphError> {
    require_permission(&caller, WRITE_ROLES)?;
    let body = parse_body(&body)?;
    let field = |name: &str| -> Result<String, GraphError> {
        body.get(name)
            .and_then(Value::as_str)
            .filter(|s| !s.trim().is_empty())
            .map(str::to_owned)
            .ok_or_else(|| {
                GraphError::bad_request(format!("The request property '{name}' is required."))
            })
    };
    let principal_id = field("principalId")?;
    let role_input = field("roleDefinitionId")?;
    let scope = match body.get("directoryScopeId").and_then(Value::as_str) {
        Some(scope) if scope.starts_with('/') => scope.to_owned(),
        _ => {
            return Err(GraphError::bad_request(
                "Either directoryScopeId or appScopeId must be specified; use '/' for the whole tenant.",
            ))
        }
    };
    let mut tenant = state.tenant();
    let role_definition_id = tenant
        .pim
        .role_definition_id(&role_input)
        .ok_or_else(|| GraphError::not_found(&role_input))?;
    // A principal created moments ago is not usable yet: Graph answers 404 for it
    // (terraform-provider-azuread#1035), and callers retry.
    if !principal_visible(&tenant, &principal_id) {
        return Err(GraphError::not_found(&principal_id));
    }
    let now = Moment::now();
    if tenant.pim.assignments.iter().any(|a| {
        a.matches(&principal_id, &role_definition_id, &scope) && a.exists_for_writers(now.wall)
    }) {
        return Err(GraphError::bad_request(
            "A conflicting object with one or more of the specified property values is present in the directory.",
        ));
    }
    let lag = tenant.behaviour.graph_lag();
    let id = role_assignment_id(&role_definition_id, &principal_id, &scope);
    let record = AssignmentRecord {
        id: id.clone(),
        principal_id,
        role_definition_id,
        directory_scope_id: scope,
        schedule_id: id.clone(),
        created_using: id,
        created: now.wall,
        versions: vec![ScheduleVersion {
            effective_at: now.instant + lag,
            modified: now.wall,
            schedule: Schedule::permanent_from(now.wall),
        }],
        removal_at: None,
    };
    let object = record.role_assignment_json();
    tenant.pim.assignments.push(record);
    drop(tenant);
    Ok(created(
        &object,
        &ASSIGNMENT_SET,
        &location(&state, ASSIGNMENTS),
    ))
}

async fn delete_assignment(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<StatusCode, GraphError> {
    require_permission(&caller, WRITE_ROLES)?;
    let mut tenant = state.tenant();
    let lag = tenant.behaviour.graph_lag();
    let now = Moment::now();
    let record = tenant
        .pim
        .assignments
        .iter_mut()
        .find(|a| a.id.eq_ignore_ascii_case(&id) && a.exists_for_writers(now.wall))
        .ok_or_else(|| GraphError::not_found(&id))?;
    record.removal_at = Some(now.instant + lag);
    let (principal, role) = (
        record.principal_id.clone(),
        record.role_definition_id.clone(),
    );
    crate::audit::role_member_removed(&mut tenant, &caller, &principal, &role);
    Ok(StatusCode::NO_CONTENT)
}

// ---------------------------------------------------------------------------------------------
// Schedule requests

async fn create_request(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    body: Bytes,
) -> Result<Response, GraphError> {
    require_pim_licence(&state)?;
    require_permission(&caller, WRITE_SCHEDULES)?;
    let body = parse_body(&body)?;
    let mut tenant = state.tenant();
    let principal_visible = body
        .get("principalId")
        .and_then(Value::as_str)
        .is_some_and(|id| principal_visible(&tenant, id));
    let submission = Submission {
        body: &body,
        principal_visible,
        caller_app_id: &caller.app_id,
        now: Moment::now(),
        provisioning_delay: provisioning_delay(&tenant),
        replication_lag: tenant.behaviour.graph_lag(),
    };
    let answer = tenant.pim.submit_request(submission)?;
    let delay = provisioning_delay(&tenant);
    crate::audit::pim_request_submitted(&mut tenant, &caller, &answer, delay);
    drop(tenant);
    Ok(created(&answer, &REQUEST_SET, &location(&state, REQUESTS)))
}

async fn list_requests(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Json<Value>, GraphError> {
    require_pim_licence(&state)?;
    let read = authorize_read(&caller, &REQUEST_SET, &uri, &headers)?;
    assignment_like_collection(&state, &read, REQUESTS, |pim, now| {
        pim.requests
            .iter()
            .filter(|r| r.visible_at <= now.instant)
            .map(|r| r.to_json(now.instant))
            .collect()
    })
}

async fn get_request(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Json<Value>, GraphError> {
    require_pim_licence(&state)?;
    let read = authorize_read(&caller, &REQUEST_SET, &uri, &headers)?;
    assignment_like_entity(&state, &read, REQUESTS, &id, |pim, now| {
        pim.requests
            .iter()
            .find(|r| r.id().eq_ignore_ascii_case(&id) && r.visible_at <= now.instant)
            .map(|r| r.to_json(now.instant))
    })
}

/// Requests are a log: they cannot be updated or deleted (facts file). Graph answers methods a
/// target does not support like this.
async fn request_not_modifiable(Extension(caller): Extension<Caller>) -> GraphError {
    if let Err(denied) = require_permission(&caller, WRITE_SCHEDULES) {
        return denied;
    }
    GraphError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "Request_BadRequest",
        "Specified HTTP method is not allowed for the request target.",
    )
}

// ---------------------------------------------------------------------------------------------
// Schedules and instances

async fn list_schedules(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Json<Value>, GraphError> {
    require_pim_licence(&state)?;
    let read = authorize_read(&caller, &SCHEDULE_SET, &uri, &headers)?;
    assignment_like_collection(&state, &read, SCHEDULES, |pim, now| {
        pim.assignments
            .iter()
            .filter(|a| a.schedule_visible(now))
            .map(|a| a.schedule_json(now.instant))
            .collect()
    })
}

async fn get_schedule(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Json<Value>, GraphError> {
    require_pim_licence(&state)?;
    let read = authorize_read(&caller, &SCHEDULE_SET, &uri, &headers)?;
    assignment_like_entity(&state, &read, SCHEDULES, &id, |pim, now| {
        pim.assignments
            .iter()
            .find(|a| a.schedule_id.eq_ignore_ascii_case(&id) && a.schedule_visible(now))
            .map(|a| a.schedule_json(now.instant))
    })
}

async fn list_instances(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Json<Value>, GraphError> {
    require_pim_licence(&state)?;
    let read = authorize_read(&caller, &INSTANCE_SET, &uri, &headers)?;
    assignment_like_collection(&state, &read, INSTANCES, |pim, now| {
        pim.active_assignments(now)
            .into_iter()
            .map(|a| a.instance_json(now.instant))
            .collect()
    })
}

// ---------------------------------------------------------------------------------------------
// Policies

/// The `eq` comparisons of a conjunction (`a eq 'x' and b eq 'y'`), by lower-cased property.
fn equality_terms(filter: &Filter, out: &mut Vec<(String, String)>) -> bool {
    match filter {
        Filter::And(a, b) => equality_terms(a, out) && equality_terms(b, out),
        Filter::Compare {
            path,
            op: CompareOp::Eq,
            value: Literal::String(v),
        } => {
            out.push((path.to_ascii_lowercase(), v.clone()));
            true
        }
        _ => false,
    }
}

fn scope_filter_required() -> GraphError {
    GraphError::new(
        StatusCode::BAD_REQUEST,
        "BadRequest",
        "The $filter query option must name the scope: scopeId eq '/' and scopeType eq 'DirectoryRole' (optionally and roleDefinitionId eq '<id>').",
    )
}

fn policy_json(policy: &RolePolicy, expand: Option<&Expand>) -> Map<String, Value> {
    let with_rules = expand
        .and_then(|e| e.inner.as_deref())
        .is_some_and(|inner| {
            inner
                .split(',')
                .any(|i| i.trim().eq_ignore_ascii_case("rules"))
        });
    policy.to_json(with_rules)
}

/// `GET /policies/roleManagementPolicyAssignments`: the service requires the scope filter; it
/// answers for Entra roles (`scopeType` `DirectoryRole`, or `Directory` in older examples) at
/// scope `/`. Other scopes (PIM for groups) have no policies in this tenant.
async fn list_policy_assignments(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Json<Value>, GraphError> {
    require_pim_licence(&state)?;
    let read = authorize_read(&caller, &POLICY_ASSIGNMENT_SET, &uri, &headers)?;
    let expand = parse_expand(&read, &["policy"])?;
    let mut terms = Vec::new();
    let conjunction = read
        .query
        .filter
        .as_ref()
        .is_some_and(|f| equality_terms(f, &mut terms));
    let term = |name: &str| {
        terms
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let (Some(scope_id), Some(scope_type)) = (term("scopeid"), term("scopetype")) else {
        return Err(scope_filter_required());
    };
    if !conjunction {
        return Err(scope_filter_required());
    }
    let entra_roles = ["DirectoryRole", "Directory"]
        .iter()
        .find(|t| t.eq_ignore_ascii_case(scope_type))
        .copied();
    let tenant = state.tenant();
    let items = match entra_roles {
        Some(spelling) if scope_id == "/" => tenant
            .pim
            .policies
            .all()
            .map(|p| {
                let mut object = p.assignment_json(spelling);
                if let Some(e) = expand
                    .iter()
                    .find(|e| e.name.eq_ignore_ascii_case("policy"))
                {
                    object.insert("policy".into(), Value::Object(policy_json(p, Some(e))));
                }
                object
            })
            .collect(),
        _ => Vec::new(),
    };
    Ok(read.collection(items, &location(&state, POLICY_ASSIGNMENTS)))
}

async fn get_policy(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Json<Value>, GraphError> {
    require_pim_licence(&state)?;
    let read = authorize_read(&caller, &POLICY_SET, &uri, &headers)?;
    let expand = parse_expand(&read, &["rules", "effectiveRules"])?;
    let tenant = state.tenant();
    let policy = tenant
        .pim
        .policies
        .get(&id)
        .ok_or_else(|| GraphError::not_found(&id))?;
    let mut object = policy.to_json(expands(&expand, "rules"));
    if expands(&expand, "effectiveRules") {
        // No inheritance from an organization default here: effective rules are the rules.
        object.insert(
            "effectiveRules".into(),
            Value::Array(policy.rules.iter().cloned().map(Value::Object).collect()),
        );
    }
    Ok(read.entity(&object, &location(&state, POLICIES)))
}

/// A policy's `rules` collection, addressed by the policy's own id.
fn rules_location(state: &AppState, policy: &RolePolicy) -> CollectionLocation {
    CollectionLocation::new(
        state.base_url(),
        format!("{POLICIES}/{}/rules", policy.id()),
        format!("policies/roleManagementPolicies('{}')/rules", policy.id()),
    )
}

async fn list_rules(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Json<Value>, GraphError> {
    require_pim_licence(&state)?;
    let read = authorize_read(&caller, &RULE_SET, &uri, &headers)?;
    let tenant = state.tenant();
    let policy = tenant
        .pim
        .policies
        .get(&id)
        .ok_or_else(|| GraphError::not_found(&id))?;
    Ok(read.collection(policy.rules.clone(), &rules_location(&state, policy)))
}

async fn get_rule(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((id, rule_id)): Path<(String, String)>,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Json<Value>, GraphError> {
    require_pim_licence(&state)?;
    let read = authorize_read(&caller, &RULE_SET, &uri, &headers)?;
    let tenant = state.tenant();
    let policy = tenant
        .pim
        .policies
        .get(&id)
        .ok_or_else(|| GraphError::not_found(&id))?;
    let rule = policy
        .rule(&rule_id)
        .ok_or_else(|| GraphError::not_found(&rule_id))?;
    Ok(read.entity(rule, &rules_location(&state, policy)))
}

// ---------------------------------------------------------------------------------------------
// Admin API

async fn admin_state(State(state): State<AppState>) -> Json<Value> {
    Json(state.tenant().pim.dump())
}

/// `PATCH /_fake/pim/policies/{policy}/rules/{rule}`: a JSON merge patch on one rule, the way
/// an administrator changes role settings in the portal. (Graph's own `PATCH .../rules/{id}`
/// is outside the subset.)
async fn admin_patch_rule(
    State(state): State<AppState>,
    Path((policy_id, rule_id)): Path<(String, String)>,
    body: Bytes,
) -> Result<StatusCode, GraphError> {
    let patch = parse_body(&body)?;
    let mut tenant = state.tenant();
    let policy = tenant
        .pim
        .policies
        .get_mut(&policy_id)
        .ok_or_else(|| GraphError::not_found(&policy_id))?;
    let rule = policy
        .rule_mut(&rule_id)
        .ok_or_else(|| GraphError::not_found(&rule_id))?;
    let mut value = Value::Object(std::mem::take(rule));
    crate::seed::merge_patch(&mut value, &Value::Object(patch));
    *rule = match value {
        Value::Object(map) => map,
        _ => Map::new(),
    };
    policy.policy.insert(
        "lastModifiedDateTime".into(),
        Value::from(format_timestamp(time::OffsetDateTime::now_utc())),
    );
    Ok(StatusCode::NO_CONTENT)
}
