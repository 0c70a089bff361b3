//! Azure Resource Manager: tenant diagnostic settings (microsoft.aadiam), resource groups,
//! Log Analytics workspaces and tables, action groups and scheduled query rules.
//!
//! ARM paths are case-insensitive, so instead of one axum route per path (axum matches
//! case-sensitively) every ARM request lands in [`dispatch`], which parses the path into an
//! [`ArmPath`] and then applies the checks the ARM front door makes before a resource
//! provider sees the request, in ARM's order: `api-version` present and supported, subscription
//! exists, resource group exists. Resource providers' own validation lives in each submodule.
//!
//! Error shapes follow the Swagger files under `specs/azure-rest-api-specs/`: front-door errors
//! are `{"error":{"code","message"}}`; the action group resource provider answers with a
//! top-level `{"code","message"}` (its `ErrorResponse` definition), which clients must parse too.

// Handlers return a finished HTTP response on both paths of `Reply`; boxing the error side
// would only add noise to every early return in a test emulator.
#![allow(clippy::result_large_err)]

pub mod action_groups;
pub mod diagnostic_settings;
pub mod kql;
pub mod monitor;
pub mod rbac;
pub mod resource_groups;
pub mod scheduled_query_rules;
pub mod workspaces;

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::{Extension, Json, Router};
use serde_json::{json, Map, Value};

use crate::error::ArmError;
use crate::state::Collection;
use crate::token::Caller;
use crate::AppState;

pub use workspaces::LogTable;

/// Everything ARM knows about. Resources are stored as the JSON objects the services return,
/// keyed case-insensitively (`sub/rg/name` for resource-group resources, the name for tenant-level
/// diagnostic settings) like ARM's lookups.
#[derive(Default)]
pub struct ArmState {
    /// Subscriptions by lower-cased subscription id. Read-only: seeds define them.
    pub subscriptions: BTreeMap<String, Subscription>,
    pub resource_groups: Collection,
    pub workspaces: Collection,
    /// Tables per workspace (workspace collection key, see [`scoped_key`] → table name → table).
    /// Table names are case-sensitive, as they are in KQL.
    pub tables: BTreeMap<String, BTreeMap<String, LogTable>>,
    pub diagnostic_settings: Collection,
    pub action_groups: Collection,
    pub scheduled_query_rules: Collection,
    /// Simulated sign-in events (`POST /_fake/arm/signins`), oldest first.
    pub signins: Vec<Value>,
    /// Emulated clock, Entra audit log, alert evaluation state and notifications.
    pub monitor: monitor::MonitorState,
    /// Azure role definitions and assignments (authorization of the aadiam provider).
    pub rbac: rbac::RbacState,
}

#[derive(Debug, Clone)]
pub struct Subscription {
    pub id: String,
    pub display_name: String,
}

impl ArmState {
    /// Parses the seed's `arm` part (see `seeds/default/arm.json`). [`ArmState::dump`] writes
    /// the same format, so a dump can seed a new instance.
    pub fn from_seed(seed: &Value) -> Result<Self, String> {
        let mut arm = ArmState::default();
        if seed.is_null() {
            return Ok(arm);
        }
        for sub in array(seed, "subscriptions")? {
            let id = str_field(sub, "subscriptionId", "subscriptions[]")?;
            let display_name = sub["displayName"]
                .as_str()
                .unwrap_or("Azure subscription 1");
            arm.subscriptions.insert(
                id.to_ascii_lowercase(),
                Subscription {
                    id: id.to_owned(),
                    display_name: display_name.to_owned(),
                },
            );
        }
        for rg in array(seed, "resourceGroups")? {
            let sub = arm.seeded_subscription(rg, "resourceGroups[]")?;
            let name = str_field(rg, "name", "resourceGroups[]")?;
            let location = str_field(rg, "location", "resourceGroups[]")?;
            let resource = resource_groups::resource(&sub, name, location, rg.get("tags"));
            arm.resource_groups
                .seed(&resource_groups::key(&sub, name), resource);
        }
        for ws in array(seed, "workspaces")? {
            workspaces::seed_workspace(&mut arm, ws)?;
        }
        for setting in array(seed, "diagnosticSettings")? {
            let name = str_field(setting, "name", "diagnosticSettings[]")?;
            let object = object(setting, "diagnosticSettings[]")?;
            arm.diagnostic_settings
                .seed(&diagnostic_settings::key(name), object);
        }
        for (part, collection) in [
            ("actionGroups", &mut arm.action_groups),
            ("scheduledQueryRules", &mut arm.scheduled_query_rules),
        ] {
            for resource in array(seed, part)? {
                let id = str_field(resource, "id", part)?;
                let parsed = parse_resource_id(id)
                    .filter(|p| !p.name.is_empty())
                    .ok_or_else(|| format!("arm seed: {part}[] id '{id}' is not a resource id"))?;
                let scope = RgScope {
                    subscription: parsed.subscription,
                    resource_group: parsed.resource_group,
                };
                collection.seed(&scoped_key(&scope, &parsed.name), object(resource, part)?);
            }
        }
        arm.signins = array(seed, "signins")?.to_vec();
        arm.rbac = rbac::RbacState::from_seed(seed)?;
        if let Some(monitor) = seed.get("monitor").filter(|m| !m.is_null()) {
            arm.monitor.clock_offset = monitor["clockOffsetSeconds"]
                .as_i64()
                .unwrap_or(0)
                .max(0)
                .saturating_mul(monitor::SECOND);
            for record in array(monitor, "auditLogs")? {
                arm.monitor
                    .audit_log
                    .push(object(record, "monitor.auditLogs[]")?);
            }
        }
        Ok(arm)
    }

    /// The state in seed format (authoritative view, ignoring replication lag).
    pub fn dump(&self) -> Value {
        let subscriptions: Vec<Value> = self
            .subscriptions
            .values()
            .map(|s| json!({"subscriptionId": s.id, "displayName": s.display_name}))
            .collect();
        let resource_groups: Vec<Value> = self
            .resource_groups
            .list_latest()
            .into_iter()
            .map(|rg| {
                let id = parse_resource_id(rg["id"].as_str().unwrap_or_default());
                json!({
                    "subscriptionId": id.map(|i| i.subscription).unwrap_or_default(),
                    "name": rg["name"],
                    "location": rg["location"],
                    "tags": rg.get("tags").cloned().unwrap_or_else(|| json!({})),
                })
            })
            .collect();
        let workspaces: Vec<Value> = self
            .workspaces
            .list_latest()
            .into_iter()
            .map(|ws| workspaces::dump_workspace(self, ws))
            .collect();
        let objects = |c: &Collection| -> Vec<Value> {
            c.list_latest()
                .into_iter()
                .map(|o| Value::Object(o.clone()))
                .collect()
        };
        let rbac = self.rbac.dump();
        json!({
            "roleDefinitions": rbac["roleDefinitions"],
            "roleAssignments": rbac["roleAssignments"],
            "subscriptions": subscriptions,
            "resourceGroups": resource_groups,
            "workspaces": workspaces,
            "diagnosticSettings": objects(&self.diagnostic_settings),
            "actionGroups": objects(&self.action_groups),
            "scheduledQueryRules": objects(&self.scheduled_query_rules),
            "signins": self.signins,
            // Alert evaluation state and notifications are not part of a dump: a loaded
            // tenant's rules start their schedules at load time.
            "monitor": {
                "clockOffsetSeconds": self.monitor.clock_offset / monitor::SECOND,
                "auditLogs": self.monitor.audit_log,
            },
        })
    }

    fn seeded_subscription(&self, part: &Value, what: &str) -> Result<String, String> {
        let id = str_field(part, "subscriptionId", what)?;
        self.subscriptions
            .get(&id.to_ascii_lowercase())
            .map(|s| s.id.clone())
            .ok_or_else(|| format!("arm seed: {what} names unknown subscription '{id}'"))
    }

    /// The canonical (seeded) spelling of a subscription id, if it exists.
    pub fn subscription(&self, id: &str) -> Option<&Subscription> {
        self.subscriptions.get(&id.to_ascii_lowercase())
    }

    /// The authoritative resource group object (front-door existence checks).
    pub fn resource_group(&self, sub: &str, rg: &str) -> Option<&Map<String, Value>> {
        self.resource_groups
            .get_latest(&resource_groups::key(sub, rg))
    }
}

fn array<'a>(seed: &'a Value, key: &str) -> Result<&'a [Value], String> {
    match seed.get(key) {
        None | Some(Value::Null) => Ok(&[]),
        Some(Value::Array(items)) => Ok(items),
        Some(_) => Err(format!("arm seed: '{key}' must be an array")),
    }
}

fn str_field<'a>(v: &'a Value, key: &str, what: &str) -> Result<&'a str, String> {
    v.get(key)
        .and_then(Value::as_str)
        .ok_or_else(|| format!("arm seed: {what} needs a string '{key}'"))
}

fn object(v: &Value, what: &str) -> Result<Map<String, Value>, String> {
    v.as_object()
        .cloned()
        .ok_or_else(|| format!("arm seed: {what} entries must be objects"))
}

// ---------------------------------------------------------------------------------------------
// Routing

pub fn routes() -> Router<AppState> {
    // ARM matches paths case-insensitively; clients almost always send these two leading
    // segments in lower case, but accept the other common spellings too.
    let mut router = Router::new();
    for root in [
        "subscriptions",
        "Subscriptions",
        "SUBSCRIPTIONS",
        "providers",
        "Providers",
        "PROVIDERS",
    ] {
        router = router.route(&format!("/{root}/{{*rest}}"), any(dispatch));
    }
    // `GET /subscriptions` (Subscriptions_List) has no segment after the root.
    for root in ["subscriptions", "Subscriptions", "SUBSCRIPTIONS"] {
        router = router.route(&format!("/{root}"), any(dispatch));
    }
    router
}

/// Test-only admin routes for this area, mounted under `/_fake/`.
pub fn admin_routes() -> Router<AppState> {
    Router::new()
        .route(
            "/arm/signins",
            get(monitor::signins::list).post(monitor::signins::simulate),
        )
        .route(
            "/arm/notifications",
            get(monitor::list_notifications).delete(monitor::clear_notifications),
        )
        .route("/arm/alerts", get(monitor::list_alerts))
        .route(
            "/arm/workspaces/{workspace}/logs/{table}",
            get(monitor::list_table_rows),
        )
        .route("/directory/auditLogs", get(monitor::list_audit_logs))
        .route("/clock", get(monitor::get_clock))
        .route("/clock/advance", post(monitor::advance_clock))
}

/// A resource group inside a subscription: the scope of every RG-level resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RgScope {
    pub subscription: String,
    pub resource_group: String,
}

/// The ARM paths this emulator serves, parsed case-insensitively.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArmPath {
    DiagnosticSettings,
    DiagnosticSetting(String),
    DiagnosticSettingsCategories,
    /// `GET /subscriptions`: every subscription the caller can see.
    Subscriptions,
    /// `/providers/Microsoft.aadiam/providers/Microsoft.Authorization/roleAssignments[/{name}]`.
    AadiamRoleAssignments,
    AadiamRoleAssignment(String),
    Subscription(String),
    ResourceGroups(String),
    /// `…/providers/Microsoft.Insights/actionGroups` across a subscription.
    SubscriptionActionGroups(String),
    /// `…/providers/Microsoft.Insights/scheduledQueryRules` across a subscription.
    SubscriptionScheduledQueryRules(String),
    /// `…/providers/Microsoft.OperationalInsights/workspaces` across a subscription.
    SubscriptionWorkspaces(String),
    ResourceGroup(RgScope),
    Workspaces(RgScope),
    Workspace(RgScope, String),
    Tables(RgScope, String),
    Table(RgScope, String, String),
    ActionGroups(RgScope),
    ActionGroup(RgScope, String),
    ScheduledQueryRules(RgScope),
    ScheduledQueryRule(RgScope, String),
}

impl ArmPath {
    pub fn parse(segments: &[String]) -> Option<ArmPath> {
        let lower: Vec<String> = segments.iter().map(|s| s.to_ascii_lowercase()).collect();
        let l: Vec<&str> = lower.iter().map(String::as_str).collect();
        let s = segments;
        let path = match l.as_slice() {
            ["providers", "microsoft.aadiam", "diagnosticsettings"] => ArmPath::DiagnosticSettings,
            ["providers", "microsoft.aadiam", "diagnosticsettings", _] => {
                ArmPath::DiagnosticSetting(s[3].clone())
            }
            ["providers", "microsoft.aadiam", "diagnosticsettingscategories"] => {
                ArmPath::DiagnosticSettingsCategories
            }
            ["subscriptions"] => ArmPath::Subscriptions,
            ["providers", "microsoft.aadiam", "providers", "microsoft.authorization", "roleassignments"] => {
                ArmPath::AadiamRoleAssignments
            }
            ["providers", "microsoft.aadiam", "providers", "microsoft.authorization", "roleassignments", _] => {
                ArmPath::AadiamRoleAssignment(s[5].clone())
            }
            ["subscriptions", _] => ArmPath::Subscription(s[1].clone()),
            ["subscriptions", _, "resourcegroups"] => ArmPath::ResourceGroups(s[1].clone()),
            ["subscriptions", _, "providers", "microsoft.insights", "actiongroups"] => {
                ArmPath::SubscriptionActionGroups(s[1].clone())
            }
            ["subscriptions", _, "providers", "microsoft.insights", "scheduledqueryrules"] => {
                ArmPath::SubscriptionScheduledQueryRules(s[1].clone())
            }
            ["subscriptions", _, "providers", "microsoft.operationalinsights", "workspaces"] => {
                ArmPath::SubscriptionWorkspaces(s[1].clone())
            }
            ["subscriptions", _, "resourcegroups", _, rest @ ..] => {
                let scope = RgScope {
                    subscription: s[1].clone(),
                    resource_group: s[3].clone(),
                };
                match rest {
                    [] => ArmPath::ResourceGroup(scope),
                    ["providers", "microsoft.operationalinsights", "workspaces"] => {
                        ArmPath::Workspaces(scope)
                    }
                    ["providers", "microsoft.operationalinsights", "workspaces", _] => {
                        ArmPath::Workspace(scope, s[7].clone())
                    }
                    ["providers", "microsoft.operationalinsights", "workspaces", _, "tables"] => {
                        ArmPath::Tables(scope, s[7].clone())
                    }
                    ["providers", "microsoft.operationalinsights", "workspaces", _, "tables", _] => {
                        ArmPath::Table(scope, s[7].clone(), s[9].clone())
                    }
                    ["providers", "microsoft.insights", "actiongroups"] => {
                        ArmPath::ActionGroups(scope)
                    }
                    ["providers", "microsoft.insights", "actiongroups", _] => {
                        ArmPath::ActionGroup(scope, s[7].clone())
                    }
                    ["providers", "microsoft.insights", "scheduledqueryrules"] => {
                        ArmPath::ScheduledQueryRules(scope)
                    }
                    ["providers", "microsoft.insights", "scheduledqueryrules", _] => {
                        ArmPath::ScheduledQueryRule(scope, s[7].clone())
                    }
                    _ => return None,
                }
            }
            _ => return None,
        };
        Some(path)
    }

    /// The api-versions the owning service accepts for this path, newest first (ARM lists
    /// them in its InvalidApiVersionParameter message).
    fn supported_api_versions(&self) -> &'static [&'static str] {
        match self {
            ArmPath::DiagnosticSettings
            | ArmPath::DiagnosticSetting(_)
            | ArmPath::DiagnosticSettingsCategories => diagnostic_settings::API_VERSIONS,
            ArmPath::AadiamRoleAssignments | ArmPath::AadiamRoleAssignment(_) => rbac::API_VERSIONS,
            ArmPath::Subscriptions | ArmPath::Subscription(_) => {
                resource_groups::SUBSCRIPTION_API_VERSIONS
            }
            ArmPath::ResourceGroups(_) | ArmPath::ResourceGroup(_) => resource_groups::API_VERSIONS,
            ArmPath::SubscriptionWorkspaces(_)
            | ArmPath::Workspaces(_)
            | ArmPath::Workspace(..)
            | ArmPath::Tables(..)
            | ArmPath::Table(..) => workspaces::API_VERSIONS,
            ArmPath::SubscriptionActionGroups(_)
            | ArmPath::ActionGroups(_)
            | ArmPath::ActionGroup(..) => action_groups::API_VERSIONS,
            ArmPath::SubscriptionScheduledQueryRules(_)
            | ArmPath::ScheduledQueryRules(_)
            | ArmPath::ScheduledQueryRule(..) => scheduled_query_rules::API_VERSIONS,
        }
    }

    fn subscription(&self) -> Option<&str> {
        match self {
            ArmPath::Subscription(sub)
            | ArmPath::ResourceGroups(sub)
            | ArmPath::SubscriptionActionGroups(sub)
            | ArmPath::SubscriptionScheduledQueryRules(sub)
            | ArmPath::SubscriptionWorkspaces(sub) => Some(sub),
            ArmPath::ResourceGroup(scope)
            | ArmPath::Workspaces(scope)
            | ArmPath::Workspace(scope, _)
            | ArmPath::Tables(scope, _)
            | ArmPath::Table(scope, ..)
            | ArmPath::ActionGroups(scope)
            | ArmPath::ActionGroup(scope, _)
            | ArmPath::ScheduledQueryRules(scope)
            | ArmPath::ScheduledQueryRule(scope, _) => Some(&scope.subscription),
            _ => None,
        }
    }

    /// The resource group that must exist before the resource provider is called.
    fn parent_resource_group(&self) -> Option<&RgScope> {
        match self {
            ArmPath::Workspaces(scope)
            | ArmPath::Workspace(scope, _)
            | ArmPath::Tables(scope, _)
            | ArmPath::Table(scope, ..)
            | ArmPath::ActionGroups(scope)
            | ArmPath::ActionGroup(scope, _)
            | ArmPath::ScheduledQueryRules(scope)
            | ArmPath::ScheduledQueryRule(scope, _) => Some(scope),
            _ => None,
        }
    }
}

/// One ARM request after the front-door checks.
pub struct ArmRequest {
    pub method: Method,
    pub api_version: &'static str,
    pub body: Bytes,
}

/// Handlers answer with a finished response either way; `Err` is an error response.
pub type Reply = Result<Response, Response>;

async fn dispatch(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    method: Method,
    uri: Uri,
    body: Bytes,
) -> Response {
    let segments: Vec<String> = uri
        .path()
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|s| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .into_owned()
        })
        .collect();
    let Some(path) = ArmPath::parse(&segments) else {
        return unknown_path(uri.path());
    };
    let api_version = match check_api_version(&path, uri.query()) {
        Ok(v) => v,
        Err(e) => return e,
    };
    if let Some(sub) = path.subscription() {
        if state.tenant().arm.subscription(sub).is_none() {
            return subscription_not_found(sub);
        }
    }
    if let Some(scope) = path.parent_resource_group() {
        let tenant = state.tenant();
        if tenant
            .arm
            .resource_group(&scope.subscription, &scope.resource_group)
            .is_none()
        {
            return resource_group_not_found(&scope.resource_group);
        }
    }
    // The tenant-level aadiam provider authorizes every call against Azure role assignments
    // (rbac.rs); the request path is the scope ARM names in its AuthorizationFailed message.
    let aadiam = match &path {
        ArmPath::DiagnosticSettings | ArmPath::DiagnosticSetting(_) => Some("diagnosticSettings"),
        ArmPath::DiagnosticSettingsCategories => Some("diagnosticSettingsCategories"),
        _ => None,
    };
    if let Some(resource) = aadiam {
        let scope = segments_path(&segments);
        if let Err(denied) = rbac::authorize(
            &state,
            &caller,
            &rbac::aadiam_action(resource, &method),
            &scope,
        ) {
            return denied;
        }
    }
    let rbac_lag = std::time::Duration::from_millis(
        state
            .tenant()
            .behaviour
            .setting_u64("arm.rbac_propagation_ms", 0),
    );
    let filter = uri.query().and_then(|q| {
        form_urlencoded::parse(q.as_bytes())
            .find(|(k, _)| k == "$filter")
            .map(|(_, v)| v.into_owned())
    });
    let req = ArmRequest {
        method,
        api_version,
        body,
    };
    let reply = match &path {
        ArmPath::DiagnosticSettings => diagnostic_settings::collection(&state, &req),
        ArmPath::DiagnosticSetting(name) => diagnostic_settings::item(&state, &req, name),
        ArmPath::DiagnosticSettingsCategories => diagnostic_settings::categories(&req),
        ArmPath::Subscriptions => resource_groups::subscriptions(&state, &req),
        ArmPath::AadiamRoleAssignments => {
            rbac::collection(&state, &caller, &req, filter.as_deref())
        }
        ArmPath::AadiamRoleAssignment(name) => rbac::item(&state, &caller, &req, name, rbac_lag),
        ArmPath::Subscription(sub) => resource_groups::subscription(&state, &req, sub),
        ArmPath::ResourceGroups(sub) => resource_groups::collection(&state, &req, sub),
        ArmPath::SubscriptionActionGroups(sub) => {
            action_groups::collection(&state, &req, ListScope::Subscription(sub))
        }
        ArmPath::SubscriptionScheduledQueryRules(sub) => {
            scheduled_query_rules::collection(&state, &req, ListScope::Subscription(sub))
        }
        ArmPath::SubscriptionWorkspaces(sub) => list_reply(
            &state,
            &req,
            ListScope::Subscription(sub),
            |arm| &arm.workspaces,
            as_stored,
        ),
        ArmPath::ResourceGroup(scope) => resource_groups::item(&state, &req, scope),
        ArmPath::Workspaces(scope) => workspaces::collection(&state, &req, scope),
        ArmPath::Workspace(scope, ws) => workspaces::item(&state, &req, scope, ws),
        ArmPath::Tables(scope, ws) => workspaces::tables(&state, &req, scope, ws),
        ArmPath::Table(scope, ws, table) => workspaces::table(&state, &req, scope, ws, table),
        ArmPath::ActionGroups(scope) => {
            action_groups::collection(&state, &req, ListScope::ResourceGroup(scope))
        }
        ArmPath::ActionGroup(scope, name) => action_groups::item(&state, &req, scope, name),
        ArmPath::ScheduledQueryRules(scope) => {
            scheduled_query_rules::collection(&state, &req, ListScope::ResourceGroup(scope))
        }
        ArmPath::ScheduledQueryRule(scope, name) => {
            scheduled_query_rules::item(&state, &req, scope, name)
        }
    };
    reply.unwrap_or_else(|e| e)
}

/// `/a/b/c` from decoded path segments.
fn segments_path(segments: &[String]) -> String {
    format!("/{}", segments.join("/"))
}

fn check_api_version(path: &ArmPath, query: Option<&str>) -> Result<&'static str, Response> {
    check_api_version_in(path.supported_api_versions(), query)
}

/// ARM's `api-version` check against one service's list (also used by `/tenants`).
pub fn check_api_version_in(
    supported: &'static [&'static str],
    query: Option<&str>,
) -> Result<&'static str, Response> {
    let requested = query.and_then(|q| {
        form_urlencoded::parse(q.as_bytes())
            .find(|(k, _)| k.eq_ignore_ascii_case("api-version"))
            .map(|(_, v)| v.into_owned())
    });
    match requested {
        None => Err(arm_error(
            StatusCode::BAD_REQUEST,
            "MissingApiVersionParameter",
            "The api-version query parameter (?api-version=) is required for all requests.",
        )),
        Some(v) if v.is_empty() => Err(arm_error(
            StatusCode::BAD_REQUEST,
            "MissingApiVersionParameter",
            "The api-version query parameter (?api-version=) is required for all requests.",
        )),
        Some(v) => supported
            .iter()
            .find(|s| s.eq_ignore_ascii_case(&v))
            .copied()
            .ok_or_else(|| {
                arm_error(
                    StatusCode::BAD_REQUEST,
                    "InvalidApiVersionParameter",
                    format!(
                        "The api-version '{v}' is invalid. The supported versions are '{}'.",
                        supported.join(",")
                    ),
                )
            }),
    }
}

// ---------------------------------------------------------------------------------------------
// Shared helpers for the resource modules

/// A front-door style error: `{"error":{"code","message"}}`.
pub fn arm_error(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    ArmError::new(status, code, message).into_response()
}

pub fn subscription_not_found(sub: &str) -> Response {
    arm_error(
        StatusCode::NOT_FOUND,
        "SubscriptionNotFound",
        format!("The subscription '{sub}' could not be found."),
    )
}

pub fn resource_group_not_found(rg: &str) -> Response {
    arm_error(
        StatusCode::NOT_FOUND,
        "ResourceGroupNotFound",
        format!("Resource group '{rg}' could not be found."),
    )
}

fn unknown_path(path: &str) -> Response {
    arm_error(
        StatusCode::BAD_REQUEST,
        "InvalidResourceType",
        format!("The resource type for path '{path}' could not be found in the namespaces this emulator serves."),
    )
}

pub fn method_not_allowed(method: &Method) -> Response {
    arm_error(
        StatusCode::METHOD_NOT_ALLOWED,
        "MethodNotAllowed",
        format!("The requested method '{method}' is not allowed for this resource."),
    )
}

/// 400 `InvalidRequestContent`, ARM's answer to a body it cannot deserialize.
pub fn invalid_request_content(detail: &str) -> Response {
    arm_error(
        StatusCode::BAD_REQUEST,
        "InvalidRequestContent",
        format!("The request content was invalid and could not be deserialized: '{detail}'."),
    )
}

/// The request body as a JSON object, or ARM's deserialization error.
pub fn json_body(req: &ArmRequest) -> Result<Map<String, Value>, Response> {
    if req.body.is_empty() {
        return Err(invalid_request_content("The request body is empty"));
    }
    match serde_json::from_slice::<Value>(&req.body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(invalid_request_content(
            "The request body must be a JSON object",
        )),
        Err(e) => Err(invalid_request_content(&format!(
            "Error parsing the request body at line {}, column {}",
            e.line(),
            e.column()
        ))),
    }
}

/// `location` is required on tracked resources; ARM checks it before the provider does.
pub fn required_location(body: &Map<String, Value>) -> Result<String, Response> {
    match body.get("location").and_then(Value::as_str) {
        Some(l) if !l.trim().is_empty() => Ok(l.to_owned()),
        _ => Err(arm_error(
            StatusCode::BAD_REQUEST,
            "LocationRequired",
            "The location property is required for this definition.",
        )),
    }
}

/// Tags must be an object of strings.
pub fn tags(body: &Map<String, Value>) -> Result<Value, Response> {
    match body.get("tags") {
        None | Some(Value::Null) => Ok(json!({})),
        Some(Value::Object(t)) if t.values().all(Value::is_string) => Ok(Value::Object(t.clone())),
        Some(_) => Err(invalid_request_content(
            "Property 'tags' must be an object whose values are strings",
        )),
    }
}

pub fn json_response(status: StatusCode, value: Value) -> Response {
    (status, Json(value)).into_response()
}

pub fn list_response(items: Vec<Value>) -> Response {
    json_response(StatusCode::OK, json!({ "value": items }))
}

pub fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// The parts of an RG-level resource id, matched case-insensitively.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceId {
    pub subscription: String,
    pub resource_group: String,
    /// Provider namespace and type segments, lower-cased, e.g. `microsoft.operationalinsights/workspaces`.
    pub resource_type: String,
    pub name: String,
}

/// Parses `/subscriptions/{s}/resourceGroups/{rg}/providers/{ns}/{type}/{name}`; also returns
/// `Some` for a bare resource group id (with empty type and name).
pub fn parse_resource_id(id: &str) -> Option<ResourceId> {
    let parts: Vec<&str> = id.split('/').filter(|s| !s.is_empty()).collect();
    match parts.as_slice() {
        [s, sub, r, rg]
            if s.eq_ignore_ascii_case("subscriptions")
                && r.eq_ignore_ascii_case("resourcegroups") =>
        {
            Some(ResourceId {
                subscription: sub.to_string(),
                resource_group: rg.to_string(),
                resource_type: String::new(),
                name: String::new(),
            })
        }
        [s, sub, r, rg, p, ns, ty, name]
            if s.eq_ignore_ascii_case("subscriptions")
                && r.eq_ignore_ascii_case("resourcegroups")
                && p.eq_ignore_ascii_case("providers") =>
        {
            Some(ResourceId {
                subscription: sub.to_string(),
                resource_group: rg.to_string(),
                resource_type: format!("{ns}/{ty}").to_ascii_lowercase(),
                name: name.to_string(),
            })
        }
        _ => None,
    }
}

/// Whether a stored resource's id lies in the subscription.
pub fn in_subscription(resource: &Map<String, Value>, sub: &str) -> bool {
    resource["id"]
        .as_str()
        .and_then(parse_resource_id)
        .is_some_and(|id| id.subscription.eq_ignore_ascii_case(sub))
}

/// Whether a stored resource's id lies in the resource group.
fn in_resource_group(resource: &Map<String, Value>, scope: &RgScope) -> bool {
    resource["id"]
        .as_str()
        .and_then(parse_resource_id)
        .is_some_and(|id| {
            id.subscription.eq_ignore_ascii_case(&scope.subscription)
                && id
                    .resource_group
                    .eq_ignore_ascii_case(&scope.resource_group)
        })
}

/// What a list operation covers: one resource group (`ListByResourceGroup`) or a whole
/// subscription (`ListBySubscription`).
#[derive(Debug, Clone, Copy)]
pub enum ListScope<'a> {
    ResourceGroup(&'a RgScope),
    Subscription(&'a str),
}

impl ListScope<'_> {
    fn contains(self, resource: &Map<String, Value>) -> bool {
        match self {
            ListScope::ResourceGroup(scope) => in_resource_group(resource, scope),
            ListScope::Subscription(sub) => in_subscription(resource, sub),
        }
    }
}

/// A resource exactly as stored, for resource types whose stored form is what the service
/// returns.
pub fn as_stored(resource: &Map<String, Value>) -> Value {
    Value::Object(resource.clone())
}

/// Answers a list operation (GET only) on one resource type: the resources in `scope` that
/// readers see after ARM's replication lag, each as `present` shows it.
pub fn list_reply(
    state: &AppState,
    req: &ArmRequest,
    scope: ListScope<'_>,
    resources: fn(&ArmState) -> &Collection,
    present: impl Fn(&Map<String, Value>) -> Value,
) -> Reply {
    if req.method != Method::GET {
        return Err(method_not_allowed(&req.method));
    }
    let tenant = state.tenant();
    let items = resources(&tenant.arm)
        .list(tenant.behaviour.arm_lag())
        .into_iter()
        .filter(|resource| scope.contains(resource))
        .map(present)
        .collect();
    Ok(list_response(items))
}

/// Answers a GET of one resource as readers see it after ARM's replication lag, or with the
/// resource provider's own not-found response.
pub fn get_reply(
    state: &AppState,
    resources: fn(&ArmState) -> &Collection,
    key: &str,
    present: impl FnOnce(&Map<String, Value>) -> Value,
    not_found: impl FnOnce() -> Response,
) -> Reply {
    let tenant = state.tenant();
    resources(&tenant.arm)
        .get(key, tenant.behaviour.arm_lag())
        .map(|resource| json_response(StatusCode::OK, present(resource)))
        .ok_or_else(not_found)
}

/// The collection key for an RG-level resource: lower-cased `sub/rg/name`.
pub fn scoped_key(scope: &RgScope, name: &str) -> String {
    format!("{}/{}/{}", scope.subscription, scope.resource_group, name).to_ascii_lowercase()
}

/// Deep merge for PATCH: objects merge key by key, everything else (arrays included) replaces.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    match (target, patch) {
        (Value::Object(t), Value::Object(p)) => {
            for (k, v) in p {
                match t.get_mut(k) {
                    Some(existing) if existing.is_object() && v.is_object() => {
                        merge_patch(existing, v)
                    }
                    _ => {
                        t.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (t, p) => *t = p.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segs(path: &str) -> Vec<String> {
        path.split('/')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn paths_parse_case_insensitively_and_keep_name_casing() {
        let scope = RgScope {
            subscription: "S1".into(),
            resource_group: "Rg-One".into(),
        };
        assert_eq!(
            ArmPath::parse(&segs("/subscriptions/S1/resourcegroups/Rg-One/providers/microsoft.insights/ACTIONGROUPS/Pager")),
            Some(ArmPath::ActionGroup(scope.clone(), "Pager".into()))
        );
        assert_eq!(
            ArmPath::parse(&segs("/subscriptions/S1/resourceGroups/Rg-One/providers/Microsoft.OperationalInsights/workspaces/Law/tables/SigninLogs")),
            Some(ArmPath::Table(scope, "Law".into(), "SigninLogs".into()))
        );
        assert_eq!(
            ArmPath::parse(&segs(
                "/providers/Microsoft.AADIAM/diagnosticSettings/ToLaw"
            )),
            Some(ArmPath::DiagnosticSetting("ToLaw".into()))
        );
        assert_eq!(
            ArmPath::parse(&segs("/providers/microsoft.aadiam/somethingElse")),
            None
        );
    }

    #[test]
    fn api_version_is_checked_against_the_service_list() {
        let path = ArmPath::DiagnosticSettings;
        assert_eq!(
            check_api_version(&path, Some("api-version=2017-04-01")).ok(),
            Some("2017-04-01")
        );
        let missing = check_api_version(&path, Some("foo=bar")).unwrap_err();
        assert_eq!(missing.status(), StatusCode::BAD_REQUEST);
        assert!(check_api_version(&path, Some("api-version=2099-01-01")).is_err());
    }

    #[test]
    fn resource_ids_parse_for_resources_and_groups() {
        let id = parse_resource_id(
            "/subscriptions/abc/resourcegroups/rg/providers/Microsoft.OperationalInsights/workspaces/law",
        )
        .unwrap();
        assert_eq!(id.resource_type, "microsoft.operationalinsights/workspaces");
        assert_eq!(id.name, "law");
        assert_eq!(
            parse_resource_id("/subscriptions/abc/resourceGroups/rg").map(|i| i.resource_group),
            Some("rg".to_owned())
        );
        assert_eq!(parse_resource_id("not-an-id"), None);
    }

    #[test]
    fn merge_patch_merges_objects_and_replaces_arrays() {
        let mut target = json!({"a": {"b": 1, "c": [1, 2]}, "d": 1});
        merge_patch(&mut target, &json!({"a": {"c": [3]}, "e": true}));
        assert_eq!(target, json!({"a": {"b": 1, "c": [3]}, "d": 1, "e": true}));
    }
}
