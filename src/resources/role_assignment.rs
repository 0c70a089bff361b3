//! `breakglass_role_assignment`: a permanent, active Microsoft Entra directory role assignment
//! (Global Administrator unless told otherwise) for an emergency-access principal.
//!
//! Two ways to make it, chosen by `assignment_method`:
//! - `pim` (default): a PIM schedule request (`adminAssign`, `noExpiration`), which PIM checks
//!   against the role's settings, records with its justification and ticket, and provisions
//!   asynchronously. The role's settings must allow permanent active assignments; the plan
//!   checks that before anything is written.
//! - `direct`: `POST roleAssignments`, a permanent assignment outside PIM. Role settings do not
//!   apply to it, which is why it is the documented fallback when they forbid permanence, and it
//!   works without PIM licences. Graph records no justification or ticket for it.
//!
//! Identity: Entra allows one active assignment per principal, role and directory scope, so
//! that triple is the resource's id and import id: `<principal_id>/<role_definition_id>` plus
//! the scope when it is not `/` (`…/administrativeUnits/<id>`).

use std::time::Duration;

use async_trait::async_trait;
use tracing::info;

use super::shared::{self, is_guid};
use crate::azure::http::CreateProbe;
use crate::azure::role_management::{
    is_assignment_exists, is_assignment_missing, is_policy_violation, AdminAction,
    AdminAssignmentRules, AssignmentKey, PimSchedule, RequestDetails, RoleManagement,
    ScheduleRequest, GLOBAL_ADMINISTRATOR,
};
use crate::azure::{AzureClients, AzureError, ConsistencyWait, Deadline};
use crate::framework::{
    ApplyOutcome, Attribute, AttributePath, Block, Diagnostic, Diagnostics, ImportedResource,
    NestingMode, PlanRequest, PlannedChange, ProviderData, Resource, Schema, Type, Value,
};

const TYPE_NAME: &str = "breakglass_role_assignment";

/// Recorded by PIM with the request when the configuration gives no justification. PIM's
/// default role settings require a justification for admin assignments.
pub const DEFAULT_JUSTIFICATION: &str =
    "Permanent emergency-access (break-glass) role assignment managed by Terraform";
const REMOVAL_JUSTIFICATION: &str = "Removed by Terraform (breakglass_role_assignment destroyed)";

// PIM provisioning usually takes seconds but can take minutes on a busy tenant.
const CREATE_TIMEOUT: Duration = Duration::from_secs(30 * 60);
const READ_TIMEOUT: Duration = Duration::from_secs(5 * 60);
const UPDATE_TIMEOUT: Duration = Duration::from_secs(30 * 60);
const DELETE_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// The attributes that identify the assignment: changing one means another assignment.
const IDENTITY: [&str; 4] = [
    "principal_id",
    "role_definition_id",
    "directory_scope_id",
    "assignment_method",
];
/// Computed from the PIM schedule; null for `direct` assignments.
const PIM_COMPUTED: [&str; 5] = [
    "schedule_id",
    "status",
    "start_date_time",
    "assignment_type",
    "end_date_time",
];

pub struct RoleAssignmentResource;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Method {
    Pim,
    Direct,
}

impl Method {
    fn parse(text: &str) -> Option<Method> {
        match text {
            "pim" => Some(Method::Pim),
            "direct" => Some(Method::Direct),
            _ => None,
        }
    }
    fn as_str(self) -> &'static str {
        match self {
            Method::Pim => "pim",
            Method::Direct => "direct",
        }
    }
}

/// What the configuration (or state) asks for, once every value is known.
#[derive(Debug, Clone)]
struct Desired {
    key: AssignmentKey,
    method: Method,
    details: RequestDetails,
}

impl Desired {
    fn from_value(v: &Value) -> Result<Desired, Diagnostic> {
        let text = |name: &str| v.get(name).as_str().map(str::to_owned);
        let principal_id = text("principal_id").ok_or_else(|| {
            Diagnostic::error(
                "Missing principal_id",
                "breakglass_role_assignment needs principal_id to be known when it is applied.",
            )
            .at(AttributePath::root("principal_id"))
        })?;
        Ok(Desired {
            key: AssignmentKey {
                principal_id,
                role_definition_id: text("role_definition_id")
                    .unwrap_or_else(|| GLOBAL_ADMINISTRATOR.to_owned()),
                directory_scope_id: text("directory_scope_id").unwrap_or_else(|| "/".to_owned()),
            },
            method: text("assignment_method")
                .and_then(|m| Method::parse(&m))
                .unwrap_or(Method::Pim),
            details: RequestDetails {
                justification: text("justification"),
                ticket_number: text("ticket_number"),
                ticket_system: text("ticket_system"),
            },
        })
    }
}

/// The resource id and import id: `<principal>/<role>` plus the scope unless it is `/`.
fn import_id(key: &AssignmentKey) -> String {
    let scope = if key.directory_scope_id == "/" {
        ""
    } else {
        key.directory_scope_id.as_str()
    };
    format!("{}/{}{scope}", key.principal_id, key.role_definition_id)
}

fn parse_import_id(id: &str) -> Result<AssignmentKey, String> {
    let mut parts = id.splitn(3, '/');
    let principal_id = parts.next().unwrap_or_default();
    let role_definition_id = parts.next().unwrap_or_default();
    let scope = parts.next().unwrap_or_default();
    if !is_guid(principal_id) || !is_guid(role_definition_id) {
        return Err(format!(
            "{id:?} is not a breakglass_role_assignment import id. Use \
             <principal_id>/<role_definition_id> for the whole tenant, or \
             <principal_id>/<role_definition_id>/<directory scope without its leading slash> \
             (e.g. .../administrativeUnits/<id>); both ids are GUIDs."
        ));
    }
    Ok(AssignmentKey {
        principal_id: principal_id.to_owned(),
        role_definition_id: role_definition_id.to_owned(),
        directory_scope_id: format!("/{}", scope.trim_end_matches('/')),
    })
}

/// What the tenant shows for a PIM-managed assignment.
#[derive(Debug, Clone, PartialEq)]
struct PimView {
    schedule: Option<PimSchedule>,
    /// The newest request that granted (or is granting) the assignment: its audit details, and
    /// its status while the schedule is not visible yet.
    request: Option<ScheduleRequest>,
}

impl PimView {
    fn is_provisioned(&self) -> bool {
        self.schedule.is_some() && self.request.as_ref().is_none_or(|r| !r.is_pending())
    }
}

/// Reads the schedule and the requests of `key`. `None` when neither an assignment in force
/// nor a request on its way exists.
async fn observe_pim(
    rm: RoleManagement<'_>,
    key: &AssignmentKey,
    deadline: Deadline,
) -> Result<Option<PimView>, AzureError> {
    let schedule = rm.schedule(key, deadline).await?;
    let requests = rm.requests(key, deadline).await?;
    let granting = requests.iter().rev().filter(|r| r.grants());
    let request = match &schedule {
        // Requests of an earlier assignment of the same triple target another schedule.
        Some(s) => granting
            .clone()
            .find(|r| r.target_schedule_id.as_deref() == Some(s.id.as_str()))
            .cloned(),
        None => granting
            .clone()
            .find(|r| r.action == "adminAssign" && r.is_pending())
            .cloned(),
    };
    if schedule.is_none() && request.is_none() {
        return Ok(None);
    }
    Ok(Some(PimView { schedule, request }))
}

/// The state for `desired` as the tenant shows it. `prior` supplies what the tenant cannot
/// tell (the timeouts block, and audit details when PIM's request log no longer has them).
fn state_value(desired: &Desired, pim: Option<&PimView>, prior: &Value) -> Value {
    let key = &desired.key;
    let mut state = Value::object([
        ("id", Value::from(import_id(key))),
        ("principal_id", Value::from(key.principal_id.as_str())),
        (
            "role_definition_id",
            Value::from(key.role_definition_id.as_str()),
        ),
        (
            "directory_scope_id",
            Value::from(key.directory_scope_id.as_str()),
        ),
        ("assignment_method", Value::from(desired.method.as_str())),
        ("justification", Value::Null),
        ("ticket_number", Value::Null),
        ("ticket_system", Value::Null),
        ("timeouts", prior.get("timeouts")),
    ]);
    for name in PIM_COMPUTED {
        state.set(name, Value::Null);
    }
    let Some(view) = pim else {
        return state;
    };
    let details = view
        .request
        .as_ref()
        .map(|r| r.details.clone())
        .unwrap_or_else(|| desired.details.clone());
    state.set("justification", Value::opt_string(details.justification));
    state.set("ticket_number", Value::opt_string(details.ticket_number));
    state.set("ticket_system", Value::opt_string(details.ticket_system));
    match (&view.schedule, &view.request) {
        (Some(s), _) => {
            state.set("schedule_id", Value::from(s.id.as_str()));
            state.set("status", Value::opt_string(s.status.clone()));
            state.set(
                "start_date_time",
                Value::opt_string(s.start_date_time.clone()),
            );
            state.set(
                "assignment_type",
                Value::opt_string(s.assignment_type.clone()),
            );
            state.set("end_date_time", Value::opt_string(s.expiration.end()));
        }
        (None, Some(r)) => {
            state.set(
                "schedule_id",
                Value::opt_string(r.target_schedule_id.clone()),
            );
            state.set("status", Value::from(r.status.as_str()));
        }
        (None, None) => {}
    }
    state
}

fn describe(key: &AssignmentKey) -> String {
    let role = if key
        .role_definition_id
        .eq_ignore_ascii_case(GLOBAL_ADMINISTRATOR)
    {
        format!("Global Administrator ({})", key.role_definition_id)
    } else {
        format!("role {}", key.role_definition_id)
    };
    format!(
        "{role} for principal {} at scope {}",
        key.principal_id, key.directory_scope_id
    )
}

fn permanence_forbidden(key: &AssignmentKey, rules: Option<&AdminAssignmentRules>) -> Diagnostic {
    let maximum = rules
        .and_then(|r| r.maximum_duration.as_deref())
        .map(|m| format!(", maximum duration {m}"))
        .unwrap_or_default();
    Diagnostic::error(
        "The role's PIM settings forbid a permanent assignment",
        format!(
            "The Privileged Identity Management settings of role {role} require every active \
             assignment to expire (rule Expiration_Admin_Assignment: isExpirationRequired = \
             true{maximum}), so PIM refuses the permanent (noExpiration) assignment this \
             resource makes for principal {principal}. Nothing was written.\n\nEither allow \
             it: Microsoft Entra admin center → Privileged Identity Management → Microsoft \
             Entra roles → Settings → the role → Edit → Assignment → tick \"Allow permanent \
             active assignment\"; or set assignment_method = \"direct\", which creates a direct \
             role assignment that PIM role settings do not govern.",
            role = key.role_definition_id,
            principal = key.principal_id,
        ),
    )
    .at(AttributePath::root("role_definition_id"))
}

fn already_assigned(key: &AssignmentKey, e: &AzureError) -> Diagnostic {
    Diagnostic::error(
        "The principal already holds this role",
        format!(
            "Microsoft Entra already has an active assignment of {what}, so it refused to \
             create another ({e}).\n\nTo manage the existing assignment with Terraform, import \
             it instead of creating it:\n  terraform import {TYPE_NAME}.<name> {id}\n(or an \
             `import` block with id = \"{id}\"), and set assignment_method to match how it was \
             made.",
            what = describe(key),
            id = import_id(key),
        ),
    )
}

fn principal_not_found(key: &AssignmentKey, e: &AzureError) -> Diagnostic {
    Diagnostic::error(
        "Principal not found",
        format!(
            "Microsoft Entra kept answering that principal {} does not exist while assigning \
             {} ({e}). A principal created moments ago can take a minute or two to replicate; \
             if it exists, apply again. Otherwise check principal_id: it must be the object id \
             of a user, role-assignable group or service principal.",
            key.principal_id,
            describe(key)
        ),
    )
    .at(AttributePath::root("principal_id"))
}

/// How long a principal may stay unknown to role management before the create gives up (or
/// the create deadline, if sooner). Replication normally takes seconds to a minute; a
/// principal missing for longer most likely does not exist, and waiting out the whole create
/// timeout would only delay that answer.
const PRINCIPAL_REPLICATION_PATIENCE: Duration = Duration::from_secs(5 * 60);

/// Creates with `send`, retrying while the principal is not found: Entra answers 404 for a
/// principal created moments ago until it has replicated to the role-management service
/// (terraform-provider-azuread#1035), so a principal made in the same apply needs patience.
async fn send_while_principal_replicates<T, F, Fut>(
    clients: &AzureClients,
    key: &AssignmentKey,
    deadline: &Deadline,
    mut send: F,
) -> Result<T, AzureError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, AzureError>>,
{
    let policy = &clients.graph.service().http.policy;
    let patience = Deadline::after(PRINCIPAL_REPLICATION_PATIENCE.min(deadline.remaining()));
    let mut attempt = 0;
    loop {
        attempt += 1;
        match send().await {
            Err(e) if e.is_not_found() => {
                let wait = policy.backoff(attempt).max(Duration::from_millis(500));
                if patience.would_pass(wait) {
                    return Err(e);
                }
                info!(
                    principal_id = %key.principal_id,
                    attempt,
                    wait_ms = wait.as_millis() as u64,
                    "principal not found by role management yet; waiting for it to replicate"
                );
                tokio::time::sleep(wait).await;
            }
            other => return other,
        }
    }
}

#[async_trait]
impl Resource for RoleAssignmentResource {
    fn type_name(&self) -> &'static str {
        TYPE_NAME
    }

    fn schema(&self) -> Schema {
        Schema {
            description: "A permanent, active Microsoft Entra directory role assignment — Global \
                Administrator by default — for an emergency-access (break-glass) principal.\n\n\
                With `assignment_method = \"pim\"` (the default) the assignment is made through \
                a Privileged Identity Management schedule request (`adminAssign` with \
                `noExpiration`), so PIM records the justification and ticket and applies the \
                role's settings. The plan fails, before anything is written, when those settings \
                forbid permanent active assignments (rule `Expiration_Admin_Assignment`); allow \
                permanent active assignment for the role, or use `assignment_method = \"direct\"`, \
                which creates a direct role assignment (`POST roleAssignments`) outside PIM. \
                Creation waits until PIM has provisioned the assignment, and keeps retrying while \
                a principal created in the same apply replicates.\n\n\
                Safety: the resource never shortens an assignment. If something outside \
                Terraform gives it an end date, `end_date_time` shows it and the next apply makes \
                it permanent again (`adminUpdate`). If it is removed outside Terraform, the next \
                plan creates it again. Changing the principal, role, scope or method replaces \
                the assignment (removal first, so the principal is briefly without the role).\n\n\
                Import with `<principal_id>/<role_definition_id>` for the whole tenant, or \
                `<principal_id>/<role_definition_id>/<scope without its leading slash>`, e.g. \
                `terraform import breakglass_role_assignment.ga \
                00000000-0000-0000-0000-000000000001/62e90394-69f5-4237-9190-012177145e10`. The \
                method is detected: an assignment made by a PIM request imports as `pim`, any \
                other as `direct`."
                .to_owned(),
            attributes: vec![
                Attribute::computed(
                    "id",
                    Type::String,
                    "`<principal_id>/<role_definition_id>`, followed by the directory scope when \
                     it is not `/`. Also the import id.",
                ),
                Attribute::required(
                    "principal_id",
                    Type::String,
                    "Object id (GUID) of the user, role-assignable group or service principal \
                     that gets the role. Changing it replaces the assignment.",
                ),
                Attribute::optional_computed(
                    "role_definition_id",
                    Type::String,
                    "Id (GUID) of the directory role; built-in roles have the same id in every \
                     tenant. Defaults to Global Administrator \
                     (`62e90394-69f5-4237-9190-012177145e10`). Changing it replaces the \
                     assignment.",
                ),
                Attribute::optional_computed(
                    "directory_scope_id",
                    Type::String,
                    "Where the role applies: `/` (the default) for the whole tenant, or e.g. \
                     `/administrativeUnits/<id>`. Changing it replaces the assignment.",
                ),
                Attribute::optional_computed(
                    "justification",
                    Type::String,
                    "Why the assignment exists, recorded by PIM with each request. Defaults to \
                     a fixed text for `pim`; changing it records the new text with an \
                     `adminUpdate` request (no interruption). Not available with `direct`: \
                     Graph keeps no justification for direct assignments.",
                ),
                Attribute::optional(
                    "ticket_number",
                    Type::String,
                    "Change or incident ticket recorded by PIM with the request (`pim` only). \
                     Changing it records an `adminUpdate` request.",
                ),
                Attribute::optional(
                    "ticket_system",
                    Type::String,
                    "Name of the ticket system `ticket_number` belongs to (`pim` only).",
                ),
                Attribute::optional_computed(
                    "assignment_method",
                    Type::String,
                    "`pim` (default): a PIM schedule request, subject to the role's PIM \
                     settings. `direct`: a direct role assignment outside PIM, for tenants \
                     whose role settings forbid permanent assignments or that have no PIM. \
                     Changing it replaces the assignment.",
                ),
                Attribute::computed(
                    "schedule_id",
                    Type::String,
                    "Id of the PIM assignment schedule (`pim` only; null for `direct`).",
                ),
                Attribute::computed(
                    "status",
                    Type::String,
                    "PIM status of the assignment: `Provisioned` once it is in force, or the \
                     request's status while PIM is still working on it (`pim` only).",
                ),
                Attribute::computed(
                    "start_date_time",
                    Type::String,
                    "When the assignment took effect, RFC 3339 (`pim` only).",
                ),
                Attribute::computed(
                    "assignment_type",
                    Type::String,
                    "`Assigned` for a standing assignment, `Activated` for an activated \
                     eligibility (`pim` only).",
                ),
                Attribute::computed(
                    "end_date_time",
                    Type::String,
                    "Null while the assignment is permanent. If it was given an end outside \
                     Terraform, this shows the end (or the ISO 8601 duration) and the next \
                     apply makes the assignment permanent again (`pim` only).",
                ),
            ],
            blocks: vec![Block {
                type_name: "timeouts".to_owned(),
                nesting: NestingMode::Single,
                description: "How long each operation may take, as Go durations (`\"30m\"`, \
                    `\"1h\"`): retries, replication and PIM provisioning all count."
                    .to_owned(),
                attributes: vec![
                    Attribute::optional(
                        "create",
                        Type::String,
                        "Creating, including waiting for PIM to provision (default `30m`).",
                    ),
                    Attribute::optional("read", Type::String, "Refreshing (default `5m`)."),
                    Attribute::optional(
                        "update",
                        Type::String,
                        "Updating, including waiting for PIM to provision (default `30m`).",
                    ),
                    Attribute::optional(
                        "delete",
                        Type::String,
                        "Removing, including waiting for PIM to revoke (default `30m`).",
                    ),
                ],
                blocks: vec![],
                // Terraform requires equal bounds for NestingSingle; 0/0 makes it optional.
                min_items: 0,
                max_items: 0,
            }],
            ..Schema::default()
        }
    }

    async fn validate(&self, config: &Value) -> Diagnostics {
        let mut diagnostics = Diagnostics::new();
        let mut problem = |name: &str, summary: &str, detail: String| {
            diagnostics.push(Diagnostic::error(summary, detail).at(AttributePath::root(name)));
        };
        for name in ["principal_id", "role_definition_id"] {
            if let Some(id) = config.get(name).as_str() {
                if !is_guid(id) {
                    problem(
                        name,
                        "Not an object id",
                        format!("{name} must be a GUID such as 62e90394-69f5-4237-9190-012177145e10; got {id:?}."),
                    );
                }
            }
        }
        if let Some(scope) = config.get("directory_scope_id").as_str() {
            if !scope.starts_with('/') {
                problem(
                    "directory_scope_id",
                    "Invalid directory scope",
                    format!("directory_scope_id must start with `/`: `/` for the whole tenant, or e.g. `/administrativeUnits/<id>`; got {scope:?}."),
                );
            }
        }
        let method = config.get("assignment_method");
        if let Some(text) = method.as_str() {
            if Method::parse(text).is_none() {
                problem(
                    "assignment_method",
                    "Invalid assignment method",
                    format!("assignment_method must be \"pim\" or \"direct\"; got {text:?}."),
                );
            }
        }
        for name in ["justification", "ticket_number", "ticket_system"] {
            let value = config.get(name);
            if value.as_str().is_some_and(|s| s.trim().is_empty()) {
                problem(
                    name,
                    "Empty value",
                    format!("{name} must not be empty; leave it out instead."),
                );
            }
            if method.as_str() == Some("direct") && !value.is_null() {
                problem(
                    name,
                    "Not available for direct assignments",
                    format!(
                        "{name} is recorded by PIM with its requests. With assignment_method = \
                         \"direct\" no PIM request is made and Graph keeps no {name} for the \
                         assignment; remove {name}, or use assignment_method = \"pim\"."
                    ),
                );
            }
        }
        diagnostics.extend(shared::validate_timeouts(config));
        diagnostics
    }

    async fn modify_plan(&self, req: &PlanRequest<'_>, plan: &mut PlannedChange) {
        if plan.planned.is_null() {
            return; // destroy
        }
        let config = req.config;
        let planned = &mut plan.planned;
        for (name, default) in [
            ("role_definition_id", GLOBAL_ADMINISTRATOR),
            ("directory_scope_id", "/"),
            ("assignment_method", "pim"),
        ] {
            if config.get(name).is_null() {
                planned.set(name, Value::from(default));
            }
        }
        let method = planned
            .get("assignment_method")
            .as_str()
            .and_then(Method::parse);
        if config.get("justification").is_null() {
            planned.set(
                "justification",
                match method {
                    Some(Method::Pim) => Value::from(DEFAULT_JUSTIFICATION),
                    Some(Method::Direct) => Value::Null,
                    None => Value::Unknown,
                },
            );
        }

        let prior = req.prior;
        let creating = prior.is_null();
        if !creating {
            for name in IDENTITY {
                if planned.get(name) != prior.get(name) {
                    plan.requires_replace.push(AttributePath::root(name));
                }
            }
        }
        let replacing = !plan.requires_replace.is_empty();
        if creating || replacing {
            let key_known = ["principal_id", "role_definition_id", "directory_scope_id"]
                .iter()
                .all(|n| planned.get(n).as_str().is_some());
            let id = match Desired::from_value(planned) {
                Ok(d) if key_known => Value::from(import_id(&d.key)),
                _ => Value::Unknown,
            };
            planned.set("id", id);
            match method {
                Some(Method::Direct) => {
                    for name in PIM_COMPUTED {
                        planned.set(name, Value::Null);
                    }
                }
                // The resource only ever makes permanent assignments.
                Some(Method::Pim) => planned.set("end_date_time", Value::Null),
                None => {}
            }
        } else {
            // In place: the assignment keeps its id and schedule. An adminUpdate re-provisions
            // it, so status and start are only known afterwards.
            for name in ["id", "schedule_id", "assignment_type"] {
                planned.set(name, prior.get(name));
            }
            let admin_update = needs_admin_update(prior, planned);
            for name in ["status", "start_date_time"] {
                planned.set(
                    name,
                    if admin_update {
                        Value::Unknown
                    } else {
                        prior.get(name)
                    },
                );
            }
            // Never plan to keep an end date: an assignment given one outside Terraform is
            // made permanent again.
            planned.set("end_date_time", Value::Null);
        }

        let writes_pim = method == Some(Method::Pim)
            && (creating || replacing || needs_admin_update(prior, planned));
        if let Some(data) = req.data {
            if creating || replacing || writes_pim {
                check_tenant_at_plan(data, planned, method, writes_pim, &mut plan.diagnostics)
                    .await;
            }
        }
    }

    async fn create(&self, data: &ProviderData, _config: &Value, planned: &Value) -> ApplyOutcome {
        let clients = match AzureClients::from_provider_data(data) {
            Ok(c) => c,
            Err(d) => return ApplyOutcome::failed(Value::Null, d.into()),
        };
        let (desired, deadline) = match Desired::from_value(planned)
            .and_then(|d| Ok((d, shared::deadline(planned, "create", CREATE_TIMEOUT)?)))
        {
            Ok(x) => x,
            Err(d) => return ApplyOutcome::failed(Value::Null, d.into()),
        };
        match desired.method {
            Method::Pim => create_pim(clients, &desired, planned, deadline).await,
            Method::Direct => create_direct(clients, &desired, planned, deadline).await,
        }
    }

    async fn read(&self, data: &ProviderData, state: &Value) -> Result<Option<Value>, Diagnostics> {
        let clients = AzureClients::from_provider_data(data)?;
        let desired = Desired::from_value(state)?;
        let deadline = shared::deadline(state, "read", READ_TIMEOUT)?;
        let rm = RoleManagement::new(&clients.graph);
        match desired.method {
            Method::Pim => Ok(observe_pim(rm, &desired.key, deadline)
                .await
                .map_err(Diagnostic::from)?
                .map(|view| state_value(&desired, Some(&view), state))),
            Method::Direct => Ok(rm
                .direct_assignment(&desired.key, deadline)
                .await
                .map_err(Diagnostic::from)?
                .map(|_| state_value(&desired, None, state))),
        }
    }

    async fn update(
        &self,
        data: &ProviderData,
        _config: &Value,
        prior: &Value,
        planned: &Value,
    ) -> ApplyOutcome {
        let clients = match AzureClients::from_provider_data(data) {
            Ok(c) => c,
            Err(d) => return ApplyOutcome::failed(prior.clone(), d.into()),
        };
        let (desired, deadline) = match Desired::from_value(planned)
            .and_then(|d| Ok((d, shared::deadline(planned, "update", UPDATE_TIMEOUT)?)))
        {
            Ok(x) => x,
            Err(d) => return ApplyOutcome::failed(prior.clone(), d.into()),
        };
        if desired.method == Method::Direct || !needs_admin_update(prior, planned) {
            // Only the timeouts changed (or nothing Graph stores): no API call.
            let mut state = planned.clone();
            for name in PIM_COMPUTED {
                if state.get(name).is_unknown() {
                    state.set(name, prior.get(name));
                }
            }
            return ApplyOutcome::ok(state);
        }
        update_pim(clients, &desired, prior, planned, deadline).await
    }

    async fn delete(&self, data: &ProviderData, prior: &Value) -> Diagnostics {
        let result = async {
            let clients = AzureClients::from_provider_data(data)?;
            let desired = Desired::from_value(prior)?;
            let deadline = shared::deadline(prior, "delete", DELETE_TIMEOUT)?;
            match desired.method {
                Method::Pim => delete_pim(clients, &desired.key, deadline).await,
                Method::Direct => delete_direct(clients, &desired.key, deadline).await,
            }
        }
        .await;
        match result {
            Ok(()) => Diagnostics::new(),
            Err(d) => d.into(),
        }
    }

    async fn import(
        &self,
        data: &ProviderData,
        id: &str,
    ) -> Result<Vec<ImportedResource>, Diagnostics> {
        let clients = AzureClients::from_provider_data(data)?;
        let key = parse_import_id(id).map_err(|why| Diagnostic::error("Invalid import id", why))?;
        let deadline = Deadline::after(READ_TIMEOUT);
        let rm = RoleManagement::new(&clients.graph);
        let direct = rm
            .direct_assignment(&key, deadline)
            .await
            .map_err(Diagnostic::from)?;
        let pim = match observe_pim(rm, &key, deadline).await {
            Ok(view) => view,
            // Without PIM (licence or permission) only a direct assignment can be imported.
            Err(e) if direct.is_some() && matches!(e.status(), Some(400 | 403)) => None,
            Err(e) => return Err(Diagnostic::from(e).into()),
        };
        // An assignment made outside PIM also shows up as a schedule, created by the
        // assignment itself rather than by a request.
        let made_by_pim = pim
            .as_ref()
            .and_then(|v| v.schedule.as_ref())
            .is_some_and(|s| {
                direct.as_ref().is_none_or(|d| {
                    !s.id.eq_ignore_ascii_case(&d.id)
                        && s.created_using
                            .as_deref()
                            .is_none_or(|c| !c.eq_ignore_ascii_case(&d.id))
                })
            });
        let method = if made_by_pim || (direct.is_none() && pim.is_some()) {
            Method::Pim
        } else if direct.is_some() {
            Method::Direct
        } else {
            return Err(Diagnostic::error(
                "Cannot import: no such role assignment",
                format!(
                    "Microsoft Entra has no active assignment of {} (import id {id:?}).",
                    describe(&key)
                ),
            )
            .into());
        };
        let desired = Desired {
            key,
            method,
            // Audit details come from PIM's request log when it still has them.
            details: RequestDetails::default(),
        };
        let view = if method == Method::Pim { pim } else { None };
        Ok(vec![ImportedResource {
            type_name: TYPE_NAME.to_owned(),
            state: state_value(&desired, view.as_ref(), &Value::Null),
        }])
    }
}

/// An in-place change Graph has to hear about: new audit details for PIM, or an end date that
/// must go. (Timeouts alone change nothing in the tenant.)
fn needs_admin_update(prior: &Value, planned: &Value) -> bool {
    if prior.is_null() || planned.get("assignment_method").as_str() != Some("pim") {
        return false;
    }
    !prior.get("end_date_time").is_null()
        || ["justification", "ticket_number", "ticket_system"]
            .iter()
            .any(|n| planned.get(n) != prior.get(n))
}

/// The plan-time checks: the role exists, and for PIM its settings allow what we will ask.
/// A check that cannot run becomes a warning; the apply will report the real answer.
async fn check_tenant_at_plan(
    data: &ProviderData,
    planned: &Value,
    method: Option<Method>,
    writes_pim: bool,
    diagnostics: &mut Diagnostics,
) {
    let Some(role) = planned
        .get("role_definition_id")
        .as_str()
        .map(str::to_owned)
    else {
        return;
    };
    if !is_guid(&role) || method.is_none() {
        return;
    }
    let Ok(clients) = AzureClients::from_provider_data(data) else {
        return;
    };
    let deadline =
        shared::deadline(planned, "read", READ_TIMEOUT).unwrap_or(Deadline::after(READ_TIMEOUT));
    let rm = RoleManagement::new(&clients.graph);
    let key = AssignmentKey {
        principal_id: planned
            .get("principal_id")
            .as_str()
            .unwrap_or("(known after apply)")
            .to_owned(),
        role_definition_id: role.clone(),
        directory_scope_id: planned
            .get("directory_scope_id")
            .as_str()
            .unwrap_or("/")
            .to_owned(),
    };
    let could_not_check = |e: AzureError| {
        Diagnostic::warning(
            "Could not check the role before applying",
            format!(
                "Reading the PIM settings or definition of role {role} failed, so the plan \
                 cannot tell whether the assignment will be accepted: {e}"
            ),
        )
        .at(AttributePath::root("role_definition_id"))
    };
    let rules = if writes_pim {
        match rm.admin_assignment_rules(&role, deadline).await {
            Ok(rules) => rules,
            Err(e) => {
                diagnostics.push(could_not_check(e));
                return;
            }
        }
    } else {
        None
    };
    if let Some(rules) = &rules {
        if rules.expiration_required {
            diagnostics.push(permanence_forbidden(&key, Some(rules)));
        }
        let ticketing = rules.enabled_rules.iter().any(|r| r == "Ticketing");
        if ticketing && planned.get("ticket_number").is_null() {
            diagnostics.push(
                Diagnostic::error(
                    "The role's PIM settings require a ticket",
                    format!(
                        "The PIM settings of role {role} require ticket information on active \
                         assignments (rule Enablement_Admin_Assignment includes Ticketing). Set \
                         ticket_number (and ticket_system), or use assignment_method = \"direct\"."
                    ),
                )
                .at(AttributePath::root("ticket_number")),
            );
        }
        return;
    }
    // No PIM policy for the role (or a direct assignment): make sure the role exists, since an
    // unknown role id would otherwise look like a principal that has not replicated yet.
    match rm.role_definition_exists(&role, &deadline).await {
        Ok(true) => {}
        Ok(false) => diagnostics.push(
            Diagnostic::error(
                "No such directory role",
                format!(
                    "Microsoft Entra has no role definition with id {role}. Use the id of a \
                     built-in role (Global Administrator is \
                     62e90394-69f5-4237-9190-012177145e10) or of a custom role in this tenant."
                ),
            )
            .at(AttributePath::root("role_definition_id")),
        ),
        Err(e) => diagnostics.push(could_not_check(e)),
    }
}

fn create_error(key: &AssignmentKey, e: AzureError) -> Diagnostic {
    if is_assignment_exists(&e) {
        already_assigned(key, &e)
    } else if is_policy_violation(&e) {
        let mut d = permanence_forbidden(key, None);
        d.detail.push_str(&format!("\n\nPIM answered: {e}"));
        d
    } else if e.is_not_found() {
        principal_not_found(key, &e)
    } else {
        let mut d = Diagnostic::from(e);
        d.summary = format!("Could not assign {}", describe(key));
        d
    }
}

async fn create_pim(
    clients: &AzureClients,
    desired: &Desired,
    planned: &Value,
    deadline: Deadline,
) -> ApplyOutcome {
    let rm = RoleManagement::new(&clients.graph);
    let key = &desired.key;
    let assign_probe = rm.assign_probe(key, time::OffsetDateTime::now_utc(), deadline);
    let probe: &CreateProbe<'_> = &|| assign_probe();
    let sent = send_while_principal_replicates(clients, key, &deadline, || {
        rm.submit(
            AdminAction::Assign,
            key,
            &desired.details,
            None,
            probe,
            &deadline,
        )
    })
    .await;
    let request = match sent {
        Ok(r) if r.has_failed() => {
            return ApplyOutcome::failed(
                Value::Null,
                Diagnostic::error(
                    "PIM refused the assignment",
                    format!(
                        "PIM request {} for {} ended with status {}.",
                        r.id,
                        describe(key),
                        r.status
                    ),
                )
                .into(),
            )
        }
        Ok(r) => r,
        Err(e) => return ApplyOutcome::failed(Value::Null, create_error(key, e).into()),
    };
    info!(request_id = %request.id, status = %request.status, "PIM accepted the assignment request");

    // From here on the request exists: whatever happens, state must say so.
    let waited = wait_for_provisioning(rm, key, &request, deadline).await;
    finish_pim_write(desired, &request, waited, planned, "create")
}

/// Waits until PIM has provisioned `request` and its schedule reads back consistently.
async fn wait_for_provisioning(
    rm: RoleManagement<'_>,
    key: &AssignmentKey,
    request: &ScheduleRequest,
    deadline: Deadline,
) -> Result<Option<PimView>, AzureError> {
    ConsistencyWait::new(format!("PIM to provision {}", describe(key)), deadline)
        .until(
            || async {
                let view = observe_pim(rm, key, deadline).await?;
                // Our request may not be in the list yet (replication); ask for it directly.
                let ours = rm.request(&request.id, &deadline).await?;
                Ok((view, ours))
            },
            |(view, ours)| match ours {
                Some(r) if r.has_failed() => true,
                Some(r) => {
                    r.is_provisioned()
                        && view.as_ref().is_some_and(|v| {
                            v.is_provisioned()
                                && v.schedule
                                    .as_ref()
                                    .is_some_and(|s| s.expiration.end().is_none())
                        })
                }
                None => false,
            },
        )
        .await
        .and_then(|(view, ours)| match ours {
            Some(r) if r.has_failed() => Err(AzureError::InvalidResponse {
                service: crate::azure::Service::Graph,
                method: "POST".into(),
                url: "roleAssignmentScheduleRequests".into(),
                reason: format!("PIM request {} ended with status {}", r.id, r.status),
            }),
            _ => Ok(view),
        })
}

fn finish_pim_write(
    desired: &Desired,
    request: &ScheduleRequest,
    waited: Result<Option<PimView>, AzureError>,
    planned: &Value,
    operation: &str,
) -> ApplyOutcome {
    match waited {
        Ok(Some(view)) => ApplyOutcome::ok(state_value(desired, Some(&view), planned)),
        Ok(None) => ApplyOutcome::failed(
            Value::Null,
            Diagnostic::error(
                "Assignment vanished",
                format!(
                    "PIM provisioned request {} for {}, but the assignment could not be read \
                     back afterwards; it may have been removed meanwhile.",
                    request.id,
                    describe(&desired.key)
                ),
            )
            .into(),
        ),
        Err(e) => {
            // The request was accepted and may still complete: keep it in state (Terraform
            // marks a failed create tainted), showing how far PIM got.
            let pending = PimView {
                schedule: None,
                request: Some(request.clone()),
            };
            ApplyOutcome::failed(
                state_value(desired, Some(&pending), planned),
                Diagnostic::error(
                    "PIM did not finish provisioning the assignment",
                    format!(
                        "PIM accepted request {} ({} of {}) but it was not provisioned and \
                         readable in time: {e}\n\nThe request may still complete. Raise \
                         timeouts.{operation} if PIM is slow in this tenant, then apply again.",
                        request.id,
                        request.action,
                        describe(&desired.key)
                    ),
                )
                .into(),
            )
        }
    }
}

async fn create_direct(
    clients: &AzureClients,
    desired: &Desired,
    planned: &Value,
    deadline: Deadline,
) -> ApplyOutcome {
    let rm = RoleManagement::new(&clients.graph);
    let key = &desired.key;
    let direct_probe = rm.direct_probe(key, deadline);
    let probe: &CreateProbe<'_> = &|| direct_probe();
    let sent = send_while_principal_replicates(clients, key, &deadline, || {
        rm.create_direct(key, probe, &deadline)
    })
    .await;
    if let Err(e) = sent {
        return ApplyOutcome::failed(Value::Null, create_error(key, e).into());
    }
    let visible = ConsistencyWait::new(
        format!("the assignment of {} to replicate", describe(key)),
        deadline,
    )
    .until(|| rm.direct_assignment(key, deadline), Option::is_some)
    .await;
    let state = state_value(desired, None, planned);
    match visible {
        Ok(_) => ApplyOutcome::ok(state),
        // Created but not yet readable: it exists, so it belongs in state.
        Err(e) => ApplyOutcome::failed(state, Diagnostic::from(e).into()),
    }
}

async fn update_pim(
    clients: &AzureClients,
    desired: &Desired,
    prior: &Value,
    planned: &Value,
    deadline: Deadline,
) -> ApplyOutcome {
    let rm = RoleManagement::new(&clients.graph);
    let key = &desired.key;
    // Re-sending an adminUpdate after an ambiguous failure sets the same values again.
    let resend: &CreateProbe<'_> = &|| Box::pin(async { Ok::<_, AzureError>(None) });
    let start = prior.get("start_date_time").as_str().map(str::to_owned);
    let sent = rm
        .submit(
            AdminAction::Update,
            key,
            &desired.details,
            start.as_deref(),
            resend,
            &deadline,
        )
        .await;
    let request = match sent {
        Ok(r) => r,
        Err(e) if is_assignment_missing(&e) || e.is_not_found() => {
            return ApplyOutcome::failed(
                prior.clone(),
                Diagnostic::error(
                    "The assignment no longer exists",
                    format!(
                        "PIM has no active assignment of {} to update ({e}). Run terraform \
                         apply again: the refresh will notice and plan to create it.",
                        describe(key)
                    ),
                )
                .into(),
            )
        }
        Err(e) if is_policy_violation(&e) => {
            let mut d = permanence_forbidden(key, None);
            d.detail = d
                .detail
                .replace("Nothing was written.", "The assignment was left as it is.");
            d.detail.push_str(&format!("\n\nPIM answered: {e}"));
            return ApplyOutcome::failed(prior.clone(), d.into());
        }
        Err(e) => return ApplyOutcome::failed(prior.clone(), Diagnostic::from(e).into()),
    };
    let waited = wait_for_provisioning(rm, key, &request, deadline).await;
    match waited {
        Err(e) => {
            // The old schedule stays in force until PIM finishes; keep the prior state.
            ApplyOutcome::failed(
                prior.clone(),
                Diagnostic::error(
                    "PIM did not finish updating the assignment",
                    format!(
                        "PIM accepted request {} (adminUpdate of {}) but it was not provisioned \
                         in time: {e}\n\nRaise timeouts.update if PIM is slow, then apply again.",
                        request.id,
                        describe(key)
                    ),
                )
                .into(),
            )
        }
        other => finish_pim_write(desired, &request, other, planned, "update"),
    }
}

async fn delete_pim(
    clients: &AzureClients,
    key: &AssignmentKey,
    deadline: Deadline,
) -> Result<(), Diagnostic> {
    let rm = RoleManagement::new(&clients.graph);
    let details = RequestDetails {
        justification: Some(REMOVAL_JUSTIFICATION.to_owned()),
        ..RequestDetails::default()
    };
    // A re-sent removal of an assignment already being removed answers
    // RoleAssignmentDoesNotExist, which counts as done below.
    let resend: &CreateProbe<'_> = &|| Box::pin(async { Ok::<_, AzureError>(None) });
    match rm
        .submit(AdminAction::Remove, key, &details, None, resend, &deadline)
        .await
    {
        Ok(request) => info!(request_id = %request.id, "PIM accepted the removal request"),
        // Already gone, or its principal is: nothing left to remove.
        Err(e) if is_assignment_missing(&e) || e.is_not_found() => {}
        Err(e) => {
            let mut d = Diagnostic::from(e);
            d.summary = format!("Could not remove {}", describe(key));
            return Err(d);
        }
    }
    ConsistencyWait::new(format!("PIM to revoke {}", describe(key)), deadline)
        .until(|| rm.schedule(key, deadline), Option::is_none)
        .await
        .map(drop)
        .map_err(Diagnostic::from)
}

async fn delete_direct(
    clients: &AzureClients,
    key: &AssignmentKey,
    deadline: Deadline,
) -> Result<(), Diagnostic> {
    let rm = RoleManagement::new(&clients.graph);
    if let Some(assignment) = rm
        .direct_assignment(key, deadline)
        .await
        .map_err(Diagnostic::from)?
    {
        rm.delete_direct(&assignment.id, &deadline)
            .await
            .map_err(Diagnostic::from)?;
    }
    ConsistencyWait::new(
        format!("the removal of {} to replicate", describe(key)),
        deadline,
    )
    .until(|| rm.direct_assignment(key, deadline), Option::is_none)
    .await
    .map(drop)
    .map_err(Diagnostic::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALICE: &str = "5d2c6f0e-3b1a-4c8e-9f7d-0a1b2c3d4e01";

    fn config(pairs: &[(&str, Value)]) -> Value {
        let schema = RoleAssignmentResource.schema();
        let mut v = Value::object(
            schema
                .attributes
                .iter()
                .map(|a| (a.name.clone(), Value::Null))
                .chain([("timeouts".to_owned(), Value::Null)]),
        );
        for (k, val) in pairs {
            v.set(k, val.clone());
        }
        v
    }

    #[test]
    fn import_ids_round_trip_with_and_without_a_scope() {
        let tenant_wide = AssignmentKey {
            principal_id: ALICE.into(),
            role_definition_id: GLOBAL_ADMINISTRATOR.into(),
            directory_scope_id: "/".into(),
        };
        let id = import_id(&tenant_wide);
        assert_eq!(id, format!("{ALICE}/{GLOBAL_ADMINISTRATOR}"));
        assert_eq!(parse_import_id(&id).unwrap(), tenant_wide);
        assert_eq!(parse_import_id(&format!("{id}/")).unwrap(), tenant_wide);

        let unit = AssignmentKey {
            directory_scope_id: "/administrativeUnits/8a7b6c5d-0000-4e1f-9a2b-3c4d5e6f7a09".into(),
            ..tenant_wide
        };
        let id = import_id(&unit);
        assert!(id.ends_with("/administrativeUnits/8a7b6c5d-0000-4e1f-9a2b-3c4d5e6f7a09"));
        assert_eq!(parse_import_id(&id).unwrap(), unit);

        let err = parse_import_id("alice@contoso.com").unwrap_err();
        assert!(err.contains("<principal_id>/<role_definition_id>"), "{err}");
        assert!(parse_import_id(ALICE).is_err());
    }

    #[test]
    fn guids_are_checked_strictly() {
        assert!(is_guid(ALICE));
        assert!(is_guid(&GLOBAL_ADMINISTRATOR.to_uppercase()));
        assert!(!is_guid("{5d2c6f0e-3b1a-4c8e-9f7d-0a1b2c3d4e01}"));
        assert!(!is_guid("5d2c6f0e3b1a4c8e9f7d0a1b2c3d4e01"));
        assert!(!is_guid("5d2c6f0e-3b1a-4c8e-9f7d-0a1b2c3d4e0g"));
    }

    #[tokio::test]
    async fn validation_points_at_the_attribute() {
        let bad = config(&[
            ("principal_id", Value::from("alice@contoso.com")),
            ("role_definition_id", Value::from("Global Administrator")),
            ("directory_scope_id", Value::from("tenant")),
            ("assignment_method", Value::from("eligible")),
        ]);
        let diags = RoleAssignmentResource.validate(&bad).await;
        let paths: Vec<String> = diags
            .iter()
            .map(|d| d.path.as_ref().unwrap().to_string())
            .collect();
        assert_eq!(
            paths,
            [
                "principal_id",
                "role_definition_id",
                "directory_scope_id",
                "assignment_method"
            ]
        );

        let direct_with_ticket = config(&[
            ("principal_id", Value::from(ALICE)),
            ("assignment_method", Value::from("direct")),
            ("ticket_number", Value::from("CHG-1")),
        ]);
        let diags = RoleAssignmentResource.validate(&direct_with_ticket).await;
        assert_eq!(diags.0.len(), 1, "{diags:?}");
        assert_eq!(diags.0[0].path, Some(AttributePath::root("ticket_number")));

        // Unknown values (from other resources) are not judged yet.
        let unknown = config(&[("principal_id", Value::Unknown)]);
        assert!(RoleAssignmentResource.validate(&unknown).await.is_empty());

        let good = config(&[
            ("principal_id", Value::from(ALICE)),
            (
                "timeouts",
                Value::object([
                    ("create", Value::from("10m")),
                    ("read", Value::Null),
                    ("update", Value::Null),
                    ("delete", Value::from("soon")),
                ]),
            ),
        ]);
        let diags = RoleAssignmentResource.validate(&good).await;
        assert_eq!(diags.0.len(), 1);
        assert_eq!(
            diags.0[0].path.as_ref().unwrap().to_string(),
            "timeouts.delete"
        );
    }

    #[tokio::test]
    async fn create_plan_fills_defaults_and_a_known_id() {
        let cfg = config(&[("principal_id", Value::from(ALICE))]);
        let mut proposed = cfg.clone();
        for name in [
            "id",
            "role_definition_id",
            "directory_scope_id",
            "justification",
        ] {
            proposed.set(name, Value::Unknown);
        }
        let mut plan = PlannedChange {
            planned: proposed.clone(),
            requires_replace: vec![],
            diagnostics: Diagnostics::new(),
        };
        let req = PlanRequest {
            config: &cfg,
            prior: &Value::Null,
            proposed: &proposed,
            data: None,
        };
        RoleAssignmentResource.modify_plan(&req, &mut plan).await;
        let p = &plan.planned;
        assert_eq!(
            p.get("role_definition_id"),
            Value::from(GLOBAL_ADMINISTRATOR)
        );
        assert_eq!(p.get("directory_scope_id"), Value::from("/"));
        assert_eq!(p.get("assignment_method"), Value::from("pim"));
        assert_eq!(p.get("justification"), Value::from(DEFAULT_JUSTIFICATION));
        assert_eq!(
            p.get("id"),
            Value::from(format!("{ALICE}/{GLOBAL_ADMINISTRATOR}"))
        );
        assert_eq!(p.get("end_date_time"), Value::Null);
        assert!(plan.requires_replace.is_empty());
    }

    fn prior_pim_state(end: Value) -> Value {
        let mut s = config(&[
            ("id", Value::from(format!("{ALICE}/{GLOBAL_ADMINISTRATOR}"))),
            ("principal_id", Value::from(ALICE)),
            ("role_definition_id", Value::from(GLOBAL_ADMINISTRATOR)),
            ("directory_scope_id", Value::from("/")),
            ("assignment_method", Value::from("pim")),
            ("justification", Value::from(DEFAULT_JUSTIFICATION)),
            ("schedule_id", Value::from("sched-1")),
            ("status", Value::from("Provisioned")),
            ("start_date_time", Value::from("2026-01-01T00:00:00Z")),
            ("assignment_type", Value::from("Assigned")),
        ]);
        s.set("end_date_time", end);
        s
    }

    async fn plan_update(prior: &Value, cfg: &Value) -> PlannedChange {
        // Terraform's proposal: config values, prior values for unset computed attributes.
        let mut proposed = prior.clone();
        for (k, v) in cfg.entries().unwrap() {
            if !v.is_null() {
                proposed.set(k, v.clone());
            }
        }
        let schema = RoleAssignmentResource.schema();
        let mut plan = PlannedChange {
            planned: crate::protocol::plan::default_plan(&schema, cfg, prior, &proposed),
            requires_replace: vec![],
            diagnostics: Diagnostics::new(),
        };
        let req = PlanRequest {
            config: cfg,
            prior,
            proposed: &proposed,
            data: None,
        };
        RoleAssignmentResource.modify_plan(&req, &mut plan).await;
        plan
    }

    #[tokio::test]
    async fn an_end_set_outside_terraform_is_planned_away_in_place() {
        let cfg = config(&[("principal_id", Value::from(ALICE))]);
        let permanent = prior_pim_state(Value::Null);
        let plan = plan_update(&permanent, &cfg).await;
        assert_eq!(plan.planned, permanent, "nothing to do for a permanent one");

        let time_bound = prior_pim_state(Value::from("2026-02-01T00:00:00Z"));
        let plan = plan_update(&time_bound, &cfg).await;
        assert!(plan.requires_replace.is_empty());
        assert_eq!(plan.planned.get("end_date_time"), Value::Null);
        assert_eq!(plan.planned.get("schedule_id"), Value::from("sched-1"));
        assert_eq!(plan.planned.get("status"), Value::Unknown);
        assert!(needs_admin_update(&time_bound, &plan.planned));
    }

    #[tokio::test]
    async fn identity_changes_replace_and_audit_changes_update() {
        let prior = prior_pim_state(Value::Null);
        let other_role = config(&[
            ("principal_id", Value::from(ALICE)),
            (
                "role_definition_id",
                Value::from("e8611ab8-c189-46e8-94e1-60213ab1f814"),
            ),
        ]);
        let plan = plan_update(&prior, &other_role).await;
        assert_eq!(
            plan.requires_replace,
            [AttributePath::root("role_definition_id")]
        );

        let ticket = config(&[
            ("principal_id", Value::from(ALICE)),
            ("ticket_number", Value::from("CHG-7")),
        ]);
        let plan = plan_update(&prior, &ticket).await;
        assert!(plan.requires_replace.is_empty());
        assert!(needs_admin_update(&prior, &plan.planned));
        assert_eq!(plan.planned.get("id"), prior.get("id"));
    }

    #[test]
    fn state_shows_the_schedule_and_the_newest_request_details() {
        let desired = Desired::from_value(&prior_pim_state(Value::Null)).unwrap();
        let view = PimView {
            schedule: Some(PimSchedule {
                id: "sched-1".into(),
                status: Some("Provisioned".into()),
                assignment_type: Some("Assigned".into()),
                start_date_time: Some("2026-01-01T00:00:00Z".into()),
                expiration: crate::azure::role_management::Expiration::EndsAt(
                    "2026-03-01T00:00:00Z".into(),
                ),
                created_using: Some("sched-1".into()),
            }),
            request: Some(ScheduleRequest {
                id: "req-2".into(),
                action: "adminUpdate".into(),
                status: "Provisioned".into(),
                target_schedule_id: Some("sched-1".into()),
                created_date_time: None,
                permanent: true,
                details: RequestDetails {
                    justification: Some("Audit 2026".into()),
                    ticket_number: Some("CHG-9".into()),
                    ticket_system: None,
                },
            }),
        };
        let state = state_value(&desired, Some(&view), &Value::Null);
        assert_eq!(state.get("justification"), Value::from("Audit 2026"));
        assert_eq!(state.get("ticket_number"), Value::from("CHG-9"));
        assert_eq!(
            state.get("end_date_time"),
            Value::from("2026-03-01T00:00:00Z")
        );
        assert_eq!(state.get("schedule_id"), Value::from("sched-1"));

        let direct = Desired {
            method: Method::Direct,
            ..desired
        };
        let state = state_value(&direct, None, &Value::Null);
        for name in PIM_COMPUTED
            .iter()
            .chain(&["justification", "ticket_number"])
        {
            assert_eq!(state.get(name), Value::Null, "{name}");
        }
        assert_eq!(state.get("assignment_method"), Value::from("direct"));
    }
}
