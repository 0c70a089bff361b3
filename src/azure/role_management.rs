//! Microsoft Entra directory role assignments through Graph's role-management API: PIM schedule
//! requests, schedules and policies, and direct (non-PIM) role assignments.
//!
//! Status codes, error codes and quirks follow `specs/msgraph/v1.0-breakglass-facts.md`
//! ("PIM active assignments", "PIM schedules and instances", "Directory role assignments and
//! definitions", "PIM policies"). Everything is keyed by principal + role + directory scope,
//! the natural key Entra itself enforces (one active assignment per triple).

use std::time::Duration;

use futures::FutureExt;
use serde_json::{json, Value as Json};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::azure::consistency::ConsistencyWait;
use crate::azure::error::AzureError;
use crate::azure::graph::GraphClient;
use crate::azure::http::CreateProbe;
use crate::azure::retry::Deadline;

const REQUESTS: &str = "/roleManagement/directory/roleAssignmentScheduleRequests";
const SCHEDULES: &str = "/roleManagement/directory/roleAssignmentSchedules";
const ASSIGNMENTS: &str = "/roleManagement/directory/roleAssignments";
const DEFINITIONS: &str = "/roleManagement/directory/roleDefinitions";
const POLICY_ASSIGNMENTS: &str = "/policies/roleManagementPolicyAssignments";

/// Built-in Global Administrator; built-in role ids equal their template ids in every tenant.
pub const GLOBAL_ADMINISTRATOR: &str = "62e90394-69f5-4237-9190-012177145e10";

/// Which active assignment: Entra allows one per principal, role and directory scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssignmentKey {
    pub principal_id: String,
    pub role_definition_id: String,
    /// `/` for the whole tenant, `/administrativeUnits/{id}` and the like otherwise.
    pub directory_scope_id: String,
}

impl AssignmentKey {
    /// `$filter` for the collections that index principal and role; the scope is compared
    /// locally because not every collection filters on it.
    fn filter(&self) -> String {
        format!(
            "$filter=principalId eq '{}' and roleDefinitionId eq '{}'",
            odata_literal(&self.principal_id),
            odata_literal(&self.role_definition_id)
        )
    }

    fn matches(&self, object: &Json) -> bool {
        let field = |name: &str| object.get(name).and_then(Json::as_str).unwrap_or_default();
        field("principalId").eq_ignore_ascii_case(&self.principal_id)
            && field("roleDefinitionId").eq_ignore_ascii_case(&self.role_definition_id)
            && field("directoryScopeId").eq_ignore_ascii_case(&self.directory_scope_id)
    }
}

/// Quotes inside OData string literals are doubled.
fn odata_literal(text: &str) -> String {
    text.replace('\'', "''")
}

/// When an active assignment ends, as `scheduleInfo.expiration` says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expiration {
    /// `noExpiration` (or `notSpecified`, which PIM treats the same way for admin assignments).
    Permanent,
    /// `afterDateTime`, or `afterDuration` where Graph also reports the resulting end.
    EndsAt(String),
    /// `afterDuration` without an end date in the answer: the ISO 8601 duration.
    EndsAfter(String),
}

impl Expiration {
    fn from_schedule_info(info: &Json) -> Expiration {
        let expiration = &info["expiration"];
        let end = expiration["endDateTime"].as_str().map(str::to_owned);
        match expiration["type"].as_str().unwrap_or("noExpiration") {
            "noExpiration" | "notSpecified" => Expiration::Permanent,
            _ => match (end, expiration["duration"].as_str()) {
                (Some(end), _) => Expiration::EndsAt(end),
                (None, Some(duration)) => Expiration::EndsAfter(duration.to_owned()),
                // Time-bound without a stated end: show the type rather than pretend it is
                // permanent, so a plan still corrects it.
                (None, None) => Expiration::EndsAfter(
                    expiration["type"].as_str().unwrap_or("unknown").to_owned(),
                ),
            },
        }
    }

    /// What `end_date_time` shows: `None` when permanent.
    pub fn end(&self) -> Option<String> {
        match self {
            Expiration::Permanent => None,
            Expiration::EndsAt(end) => Some(end.clone()),
            Expiration::EndsAfter(duration) => Some(duration.clone()),
        }
    }
}

/// A `unifiedRoleAssignmentSchedule`: the PIM view of an active assignment in force.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PimSchedule {
    pub id: String,
    pub status: Option<String>,
    pub assignment_type: Option<String>,
    pub start_date_time: Option<String>,
    pub expiration: Expiration,
    /// The request (or, for assignments made outside PIM, the role assignment) that created it.
    pub created_using: Option<String>,
}

impl PimSchedule {
    fn from_json(object: &Json) -> PimSchedule {
        let text = |name: &str| object[name].as_str().map(str::to_owned);
        PimSchedule {
            id: text("id").unwrap_or_default(),
            status: text("status"),
            assignment_type: text("assignmentType"),
            start_date_time: object["scheduleInfo"]["startDateTime"]
                .as_str()
                .map(str::to_owned),
            expiration: Expiration::from_schedule_info(&object["scheduleInfo"]),
            created_using: text("createdUsing"),
        }
    }
}

/// The `action` of a schedule request made by an administrator (or app) for someone else.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminAction {
    Assign,
    Update,
    Remove,
}

impl AdminAction {
    fn as_str(self) -> &'static str {
        match self {
            AdminAction::Assign => "adminAssign",
            AdminAction::Update => "adminUpdate",
            AdminAction::Remove => "adminRemove",
        }
    }
}

/// Audit details PIM records with a request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestDetails {
    pub justification: Option<String>,
    pub ticket_number: Option<String>,
    pub ticket_system: Option<String>,
}

/// A `unifiedRoleAssignmentScheduleRequest` as Graph answers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduleRequest {
    pub id: String,
    pub action: String,
    pub status: String,
    pub target_schedule_id: Option<String>,
    pub created_date_time: Option<String>,
    pub permanent: bool,
    pub details: RequestDetails,
}

impl ScheduleRequest {
    fn from_json(object: &Json) -> ScheduleRequest {
        let text = |v: &Json| v.as_str().map(str::to_owned);
        ScheduleRequest {
            id: text(&object["id"]).unwrap_or_default(),
            action: text(&object["action"]).unwrap_or_default(),
            status: text(&object["status"]).unwrap_or_default(),
            target_schedule_id: text(&object["targetScheduleId"]),
            created_date_time: text(&object["createdDateTime"]),
            permanent: object["scheduleInfo"].is_object()
                && Expiration::from_schedule_info(&object["scheduleInfo"]) == Expiration::Permanent,
            details: RequestDetails {
                justification: text(&object["justification"]),
                ticket_number: text(&object["ticketInfo"]["ticketNumber"]),
                ticket_system: text(&object["ticketInfo"]["ticketSystem"]),
            },
        }
    }

    /// Still on its way (`PendingProvisioning`, `Granted`, `PendingScheduleCreation`, …).
    pub fn is_pending(&self) -> bool {
        !self.is_final()
    }

    pub fn is_final(&self) -> bool {
        self.is_provisioned() || self.has_failed() || self.status == "Revoked"
    }

    pub fn is_provisioned(&self) -> bool {
        self.status == "Provisioned"
    }

    /// Terminal states in which the request changed nothing.
    pub fn has_failed(&self) -> bool {
        matches!(
            self.status.as_str(),
            "Failed"
                | "Denied"
                | "Canceled"
                | "Canceling"
                | "AdminDenied"
                | "TimedOut"
                | "ProvisioningFailed"
        )
    }

    /// A request that put (or will put) an assignment in place, as opposed to a removal or a
    /// request that failed.
    pub fn grants(&self) -> bool {
        self.action != AdminAction::Remove.as_str()
            && !self.has_failed()
            && self.status != "Revoked"
            && self.status != "PendingRevocation"
    }

    fn created_at(&self) -> Option<OffsetDateTime> {
        self.created_date_time
            .as_deref()
            .and_then(|t| OffsetDateTime::parse(t, &Rfc3339).ok())
    }
}

/// The admin-assignment rules of a role's PIM policy ("role settings" in the portal).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AdminAssignmentRules {
    /// `Expiration_Admin_Assignment.isExpirationRequired`: when true, PIM refuses permanent
    /// active assignments of the role.
    pub expiration_required: bool,
    pub maximum_duration: Option<String>,
    /// `Enablement_Admin_Assignment.enabledRules`: `Justification`, `Ticketing`, …
    pub enabled_rules: Vec<String>,
}

/// A direct `unifiedRoleAssignment` (made outside PIM).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectAssignment {
    pub id: String,
}

/// A role assignment as `roleAssignments` lists it (direct ones and those PIM provisioned).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedAssignment {
    pub id: String,
    pub principal_id: String,
    pub role_definition_id: String,
    pub directory_scope_id: String,
}

impl ListedAssignment {
    fn from_json(v: &Json) -> Option<Self> {
        let text = |k: &str| v[k].as_str().map(str::to_owned);
        Some(ListedAssignment {
            id: text("id")?,
            principal_id: text("principalId")?,
            role_definition_id: text("roleDefinitionId")?,
            directory_scope_id: text("directoryScopeId").unwrap_or_else(|| "/".to_owned()),
        })
    }
}

/// `RoleAssignmentExists` (PIM) or Graph's conflict answer to a direct assignment: the
/// principal already holds the role at that scope.
pub fn is_assignment_exists(e: &AzureError) -> bool {
    match e.api() {
        Some(api) if api.status == 400 => {
            api.code.as_deref() == Some("RoleAssignmentExists")
                || api
                    .message
                    .as_deref()
                    .is_some_and(|m| m.contains("conflicting object"))
        }
        _ => false,
    }
}

/// `RoleAssignmentDoesNotExist`: an update or removal found nothing in force.
pub fn is_assignment_missing(e: &AzureError) -> bool {
    e.code() == Some("RoleAssignmentDoesNotExist")
}

/// `RoleAssignmentRequestPolicyValidationFailed`: the role's PIM policy refused the request
/// (for a permanent assignment: the `ExpirationRule`).
/// PIM refused because the tenant has no Microsoft Entra ID P2 / ID Governance licence
/// (`AadPremiumLicenseRequired`, "The tenant needs an AAD Premium 2 license.").
pub fn is_pim_unlicensed(e: &AzureError) -> bool {
    matches!(e, AzureError::Api(a) if a.code.as_deref() == Some("AadPremiumLicenseRequired"))
}

pub fn is_policy_violation(e: &AzureError) -> bool {
    e.code() == Some("RoleAssignmentRequestPolicyValidationFailed")
}

/// Typed calls on `/roleManagement/directory` and `/policies/roleManagementPolic…`.
#[derive(Clone, Copy)]
pub struct RoleManagement<'a> {
    graph: &'a GraphClient,
}

impl<'a> RoleManagement<'a> {
    pub fn new(graph: &'a GraphClient) -> Self {
        RoleManagement { graph }
    }

    /// The PIM schedule of the assignment, if one is in force and visible.
    pub async fn schedule(
        &self,
        key: &AssignmentKey,
        deadline: Deadline,
    ) -> Result<Option<PimSchedule>, AzureError> {
        let found = self
            .graph
            .list_all(&format!("{SCHEDULES}?{}", key.filter()), deadline)
            .await?;
        Ok(found
            .iter()
            .find(|s| key.matches(s))
            .map(PimSchedule::from_json))
    }

    /// Every principal with an active assignment of `role_definition_id` at tenant scope in
    /// force now, and whether it is permanent (`roleAssignmentSchedules`, which list direct
    /// assignments too; `roleAssignments` in a tenant without PIM).
    pub async fn active_holders(
        &self,
        role_definition_id: &str,
        deadline: Deadline,
    ) -> Result<Vec<(String, bool)>, AzureError> {
        let path = format!(
            "{SCHEDULES}?$filter=roleDefinitionId eq '{}'",
            odata_literal(role_definition_id)
        );
        let schedules = match self.graph.list_all(&path, deadline).await {
            Ok(schedules) => schedules,
            // Without PIM every assignment is a direct, permanent one.
            Err(e) if is_pim_unlicensed(&e) => {
                let path = path.replacen(SCHEDULES, ASSIGNMENTS, 1);
                self.graph.list_all(&path, deadline).await?
            }
            Err(e) => return Err(e),
        };
        Ok(schedules
            .iter()
            .filter(|s| s["directoryScopeId"].as_str().unwrap_or("/") == "/")
            .map(|s| {
                let principal = s["principalId"].as_str().unwrap_or_default();
                let permanent = PimSchedule::from_json(s).expiration == Expiration::Permanent;
                (principal.to_ascii_lowercase(), permanent)
            })
            .collect())
    }

    /// Every schedule request for the assignment, oldest first (Graph lists them in creation
    /// order; timestamps have whole-second precision, so order, not time, breaks ties).
    pub async fn requests(
        &self,
        key: &AssignmentKey,
        deadline: Deadline,
    ) -> Result<Vec<ScheduleRequest>, AzureError> {
        let found = self
            .graph
            .list_all(&format!("{REQUESTS}?{}", key.filter()), deadline)
            .await?;
        let mut requests: Vec<(usize, ScheduleRequest)> = found
            .iter()
            .filter(|r| key.matches(r))
            .map(ScheduleRequest::from_json)
            .enumerate()
            .collect();
        requests.sort_by_key(|(position, r)| (r.created_at(), *position));
        Ok(requests.into_iter().map(|(_, r)| r).collect())
    }

    /// One request by id; `None` while it has not replicated yet (or never existed).
    pub async fn request(
        &self,
        id: &str,
        deadline: &Deadline,
    ) -> Result<Option<ScheduleRequest>, AzureError> {
        Ok(self
            .graph
            .get_optional(&format!("{REQUESTS}/{id}"), deadline)
            .await?
            .as_ref()
            .map(ScheduleRequest::from_json))
    }

    /// POSTs a schedule request. For `adminAssign` and `adminUpdate` the schedule has no end
    /// (`noExpiration`) and starts at `start` (now when `None`). `probe` runs before a re-send
    /// after an ambiguous failure (see `GraphClient::create`).
    pub async fn submit<'p>(
        &self,
        action: AdminAction,
        key: &AssignmentKey,
        details: &RequestDetails,
        start: Option<&str>,
        probe: &'p CreateProbe<'p>,
        deadline: &Deadline,
    ) -> Result<ScheduleRequest, AzureError> {
        let body = request_body(action, key, details, start);
        let answer = self.graph.create(REQUESTS, body, probe, deadline).await?;
        Ok(ScheduleRequest::from_json(&answer))
    }

    /// Looks for a permanent `adminAssign` for `key` made at or after `since`: what a create
    /// that may have reached the service would have left behind. Waits a moment for it to
    /// replicate before answering "no".
    pub fn assign_probe(
        self,
        key: &'a AssignmentKey,
        since: OffsetDateTime,
        deadline: Deadline,
    ) -> impl Fn() -> futures::future::BoxFuture<'a, Result<Option<Json>, AzureError>> + Send + Sync + 'a
    {
        move || {
            let rm = self;
            async move {
                let wait = crate::azure::ConsistencyWait::new(
                    "a possibly accepted PIM request to replicate",
                    Deadline::after(PROBE_PATIENCE.min(deadline.remaining())),
                )
                .consecutive(1);
                let found = wait
                    .until(
                        || async {
                            let requests = rm.requests(key, deadline).await?;
                            Ok(requests.into_iter().rev().find(|r| {
                                r.action == AdminAction::Assign.as_str()
                                    && r.permanent
                                    && r.grants()
                                    // Creation times have second precision and clocks
                                    // drift: allow a few minutes of skew.
                                    && r.created_at().is_some_and(|t| {
                                        t >= since - time::Duration::minutes(PROBE_SKEW_MINUTES)
                                    })
                            }))
                        },
                        Option::is_some,
                    )
                    .await;
                match found {
                    Ok(Some(request)) => Ok(Some(json!({
                        "id": request.id,
                        "action": request.action,
                        "status": request.status,
                        "targetScheduleId": request.target_schedule_id,
                        "createdDateTime": request.created_date_time,
                        "justification": request.details.justification,
                        "ticketInfo": {
                            "ticketNumber": request.details.ticket_number,
                            "ticketSystem": request.details.ticket_system,
                        },
                        "scheduleInfo": {"expiration": {"type": "noExpiration"}},
                    }))),
                    Ok(None) | Err(AzureError::Deadline { .. }) => Ok(None),
                    Err(e) => Err(e),
                }
            }
            .boxed()
        }
    }

    /// The direct role assignment for `key`, if Graph lists one.
    pub async fn direct_assignment(
        &self,
        key: &AssignmentKey,
        deadline: Deadline,
    ) -> Result<Option<DirectAssignment>, AzureError> {
        let found = self
            .graph
            .list_all(&format!("{ASSIGNMENTS}?{}", key.filter()), deadline)
            .await?;
        Ok(found
            .iter()
            .find(|a| key.matches(a))
            .map(|a| DirectAssignment {
                id: a["id"].as_str().unwrap_or_default().to_owned(),
            }))
    }

    /// Every role assignment of `principal_id` (any scope): what it holds tenant-wide, e.g.
    /// whether a user is an administrator in the sense of administrative-unit-scoped roles.
    pub async fn assignments_of(
        &self,
        principal_id: &str,
        deadline: Deadline,
    ) -> Result<Vec<ListedAssignment>, AzureError> {
        self.listed("principalId", principal_id, deadline).await
    }

    /// Every role assignment at `directory_scope_id` (e.g. `/administrativeUnits/{id}`).
    pub async fn assignments_at(
        &self,
        directory_scope_id: &str,
        deadline: Deadline,
    ) -> Result<Vec<ListedAssignment>, AzureError> {
        let found = self
            .listed("directoryScopeId", directory_scope_id, deadline)
            .await?;
        // Compared here too: not every replica filters on the scope.
        Ok(found
            .into_iter()
            .filter(|a| {
                a.directory_scope_id
                    .eq_ignore_ascii_case(directory_scope_id)
            })
            .collect())
    }

    async fn listed(
        &self,
        property: &str,
        value: &str,
        deadline: Deadline,
    ) -> Result<Vec<ListedAssignment>, AzureError> {
        let filter = format!("{property} eq '{}'", odata_literal(value));
        let path = format!(
            "{ASSIGNMENTS}?$filter={}",
            form_urlencoded::byte_serialize(filter.as_bytes()).collect::<String>()
        );
        let found = self.graph.list_all(&path, deadline).await?;
        Ok(found
            .iter()
            .filter_map(ListedAssignment::from_json)
            .collect())
    }

    /// Looks for the direct assignment a create may have made, waiting a moment for it to
    /// replicate before answering "no".
    pub fn direct_probe(
        self,
        key: &'a AssignmentKey,
        deadline: Deadline,
    ) -> impl Fn() -> futures::future::BoxFuture<'a, Result<Option<Json>, AzureError>> + Send + Sync + 'a
    {
        move || {
            let rm = self;
            async move {
                let wait = crate::azure::ConsistencyWait::new(
                    "a possibly created role assignment to replicate",
                    Deadline::after(PROBE_PATIENCE.min(deadline.remaining())),
                )
                .consecutive(1);
                match wait
                    .until(|| rm.direct_assignment(key, deadline), Option::is_some)
                    .await
                {
                    Ok(Some(found)) => Ok(Some(json!({"id": found.id}))),
                    Ok(None) | Err(AzureError::Deadline { .. }) => Ok(None),
                    Err(e) => Err(e),
                }
            }
            .boxed()
        }
    }

    /// `POST roleAssignments`: a permanent assignment outside PIM. `probe` as for `submit`.
    pub async fn create_direct<'p>(
        &self,
        key: &AssignmentKey,
        probe: &'p CreateProbe<'p>,
        deadline: &Deadline,
    ) -> Result<DirectAssignment, AzureError> {
        let body = json!({
            "principalId": key.principal_id,
            "roleDefinitionId": key.role_definition_id,
            "directoryScopeId": key.directory_scope_id,
        });
        let answer = self
            .graph
            .create(ASSIGNMENTS, body, probe, deadline)
            .await?;
        Ok(DirectAssignment {
            id: answer["id"].as_str().unwrap_or_default().to_owned(),
        })
    }

    /// `DELETE roleAssignments/{id}`; `Ok(false)` when it was already gone.
    pub async fn delete_direct(&self, id: &str, deadline: &Deadline) -> Result<bool, AzureError> {
        self.graph
            .delete(&format!("{ASSIGNMENTS}/{id}"), deadline)
            .await
    }

    /// The admin-assignment rules of the role's PIM policy at tenant scope; `None` when the
    /// tenant has no policy for the role (unknown role, or no PIM for it).
    pub async fn admin_assignment_rules(
        &self,
        role_definition_id: &str,
        deadline: Deadline,
    ) -> Result<Option<AdminAssignmentRules>, AzureError> {
        // Policies of Entra roles always live at scope '/', whatever the assignment's scope.
        let path = format!(
            "{POLICY_ASSIGNMENTS}?$filter=scopeId eq '/' and scopeType eq 'DirectoryRole' and \
             roleDefinitionId eq '{}'&$expand=policy($expand=rules)",
            odata_literal(role_definition_id)
        );
        let assignments = self.graph.list_all(&path, deadline).await?;
        let Some(assignment) = assignments.first() else {
            return Ok(None);
        };
        let rules = assignment["policy"]["rules"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let rule = |id: &str| rules.iter().find(|r| r["id"].as_str() == Some(id));
        let expiration = rule("Expiration_Admin_Assignment");
        Ok(Some(AdminAssignmentRules {
            expiration_required: expiration
                .and_then(|r| r["isExpirationRequired"].as_bool())
                .unwrap_or(false),
            maximum_duration: expiration
                .and_then(|r| r["maximumDuration"].as_str())
                .map(str::to_owned),
            enabled_rules: rule("Enablement_Admin_Assignment")
                .and_then(|r| r["enabledRules"].as_array())
                .map(|a| {
                    a.iter()
                        .filter_map(Json::as_str)
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default(),
        }))
    }

    /// Whether the tenant knows the role definition.
    pub async fn role_definition_exists(
        &self,
        role_definition_id: &str,
        deadline: &Deadline,
    ) -> Result<bool, AzureError> {
        Ok(self
            .graph
            .get_optional(&format!("{DEFINITIONS}/{role_definition_id}"), deadline)
            .await?
            .is_some())
    }
}

/// How long a create probe waits for a request the service may have accepted to show up.
const PROBE_PATIENCE: std::time::Duration = std::time::Duration::from_secs(5);
const PROBE_SKEW_MINUTES: i64 = 5;

fn request_body(
    action: AdminAction,
    key: &AssignmentKey,
    details: &RequestDetails,
    start: Option<&str>,
) -> Json {
    let mut body = json!({
        "action": action.as_str(),
        "principalId": key.principal_id,
        "roleDefinitionId": key.role_definition_id,
        "directoryScopeId": key.directory_scope_id,
    });
    if let Some(justification) = &details.justification {
        body["justification"] = json!(justification);
    }
    if details.ticket_number.is_some() || details.ticket_system.is_some() {
        body["ticketInfo"] = json!({
            "ticketNumber": details.ticket_number,
            "ticketSystem": details.ticket_system,
        });
    }
    if action != AdminAction::Remove {
        let start = start.map(str::to_owned).unwrap_or_else(now_rfc3339);
        body["scheduleInfo"] = json!({
            "startDateTime": start,
            "expiration": {"type": "noExpiration"},
        });
    }
    body
}

// ---- lifecycle: observing an assignment and waiting for PIM -------------------------------

/// What the tenant shows for a PIM-managed assignment.
#[derive(Debug, Clone, PartialEq)]
pub struct PimView {
    pub schedule: Option<PimSchedule>,
    /// The newest request that granted (or is granting) the assignment: its audit details, and
    /// its status while the schedule is not visible yet.
    pub request: Option<ScheduleRequest>,
}

/// How an existing assignment was made, as far as Graph can tell.
#[derive(Debug, Clone, PartialEq)]
pub enum Origin {
    /// By a PIM request (or only visible to PIM).
    Pim(Box<PimView>),
    /// Outside PIM, by `POST roleAssignments`.
    Direct,
}

/// How long a principal may stay unknown to role management before a create gives up (or the
/// create deadline, if sooner). Replication normally takes seconds to a minute; a principal
/// missing for longer most likely does not exist.
const PRINCIPAL_REPLICATION_PATIENCE: Duration = Duration::from_secs(5 * 60);

/// When a pending PIM request's status is read: first a second after it was accepted, then
/// every half second (`until_final` slows down after ten seconds). PIM provisions
/// asynchronously and takes seconds ("Create roleAssignmentScheduleRequest": the request is
/// answered while its status is still pending), so asking sooner or more often costs requests
/// — each counted against Graph's limits — and gains at most half a second.
const PIM_STATUS_FIRST: Duration = Duration::from_secs(1);
const PIM_STATUS_POLL: Duration = Duration::from_millis(500);

impl AssignmentKey {
    /// "Global Administrator (62e9…) for principal … at scope /", for messages.
    pub fn describe(&self) -> String {
        let role = if self
            .role_definition_id
            .eq_ignore_ascii_case(GLOBAL_ADMINISTRATOR)
        {
            format!("Global Administrator ({})", self.role_definition_id)
        } else {
            format!("role {}", self.role_definition_id)
        };
        format!(
            "{role} for principal {} at scope {}",
            self.principal_id, self.directory_scope_id
        )
    }
}

impl RoleManagement<'_> {
    /// The schedule and the granting request of `key`; `None` when neither an assignment in
    /// force nor a request on its way exists.
    pub async fn observe(
        &self,
        key: &AssignmentKey,
        deadline: Deadline,
    ) -> Result<Option<PimView>, AzureError> {
        let schedule = self.schedule(key, deadline).await?;
        let requests = self.requests(key, deadline).await?;
        let mut granting = requests.iter().rev().filter(|r| r.grants());
        let request = match &schedule {
            // Requests of an earlier assignment of the same triple target another schedule.
            Some(s) => granting.find(|r| r.target_schedule_id.as_deref() == Some(s.id.as_str())),
            None => granting.find(|r| r.action == "adminAssign" && r.is_pending()),
        }
        .cloned();
        if schedule.is_none() && request.is_none() {
            return Ok(None);
        }
        Ok(Some(PimView { schedule, request }))
    }

    /// How the assignment of `key` was made; `None` when there is none.
    pub async fn origin(
        &self,
        key: &AssignmentKey,
        deadline: Deadline,
    ) -> Result<Option<Origin>, AzureError> {
        let direct = self.direct_assignment(key, deadline).await?;
        let pim = match self.observe(key, deadline).await {
            Ok(view) => view,
            // Without PIM (licence or permission) only a direct assignment can be seen.
            Err(e) if direct.is_some() && matches!(e.status(), Some(400 | 403)) => None,
            Err(e) => return Err(e),
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
        Ok(match (pim, direct) {
            (Some(view), _) if made_by_pim => Some(Origin::Pim(Box::new(view))),
            (Some(view), None) => Some(Origin::Pim(Box::new(view))),
            (_, Some(_)) => Some(Origin::Direct),
            (None, None) => None,
        })
    }

    /// Runs `send` (a create) again while role management answers that the principal does not
    /// exist: Entra answers 404 for a principal created moments ago until it has replicated to
    /// the role-management service (terraform-provider-azuread#1035).
    pub async fn while_principal_replicates<T, F, Fut>(
        &self,
        key: &AssignmentKey,
        deadline: &Deadline,
        mut send: F,
    ) -> Result<T, AzureError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, AzureError>>,
    {
        let policy = &self.graph.service().http.policy;
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
                    tracing::info!(
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

    /// Waits until PIM has provisioned `request` — permanently — and its schedule reads back.
    /// The request's own status is what PIM reports progress on ("Create
    /// roleAssignmentScheduleRequest": `PendingProvisioning` until the assignment is in
    /// force, then `Provisioned`, a final state), so only the request is polled (a second after
    /// it was accepted, then every half second); then the schedule it made is read once (or,
    /// should replicas lag, until they agree). A request PIM failed is an error.
    pub async fn wait_provisioned(
        &self,
        key: &AssignmentKey,
        request: &ScheduleRequest,
        deadline: Deadline,
    ) -> Result<Option<PimView>, AzureError> {
        let ours = self
            .wait_request_final(key, request, "provision", deadline)
            .await?;
        if ours.has_failed() {
            return Err(AzureError::InvalidResponse {
                service: crate::azure::Service::Graph,
                method: "POST".into(),
                url: REQUESTS.into(),
                reason: format!("PIM request {} ended with status {}", ours.id, ours.status),
            });
        }
        let schedule = ConsistencyWait::new(
            format!("the schedule of {} to replicate", key.describe()),
            deadline,
        )
        .until(
            || self.schedule(key, deadline),
            |s| s.as_ref().is_some_and(|s| s.expiration.end().is_none()),
        )
        .await?;
        Ok(Some(PimView {
            schedule,
            request: Some(ours),
        }))
    }

    /// Polls `request` (by id) until PIM reports a final status. Until it has replicated, a
    /// read of it may 404; that is waited out like a pending status.
    async fn wait_request_final(
        &self,
        key: &AssignmentKey,
        request: &ScheduleRequest,
        verb: &str,
        deadline: Deadline,
    ) -> Result<ScheduleRequest, AzureError> {
        if request.is_final() {
            return Ok(request.clone());
        }
        let found = ConsistencyWait::new(format!("PIM to {verb} {}", key.describe()), deadline)
            .interval(PIM_STATUS_POLL)
            .until_final(
                PIM_STATUS_FIRST,
                || self.request(&request.id, &deadline),
                |r| r.as_ref().is_some_and(ScheduleRequest::is_final),
            )
            .await?;
        Ok(found.unwrap_or_else(|| request.clone()))
    }

    /// Waits until the removal `request` (if one was made) is final and no schedule of `key` is
    /// visible any more.
    pub async fn wait_revoked(
        &self,
        key: &AssignmentKey,
        request: Option<&ScheduleRequest>,
        deadline: Deadline,
    ) -> Result<(), AzureError> {
        if let Some(request) = request {
            self.wait_request_final(key, request, "revoke", deadline)
                .await?;
        }
        ConsistencyWait::new(format!("PIM to revoke {}", key.describe()), deadline)
            .until(|| self.schedule(key, deadline), Option::is_none)
            .await
            .map(drop)
    }

    /// Waits until the direct assignment of `key` is visible (`present`) or gone.
    pub async fn wait_direct(
        &self,
        key: &AssignmentKey,
        present: bool,
        deadline: Deadline,
    ) -> Result<(), AzureError> {
        let what = if present { "assignment" } else { "removal" };
        ConsistencyWait::new(
            format!("the {what} of {} to replicate", key.describe()),
            deadline,
        )
        .until(
            || self.direct_assignment(key, deadline),
            |a| a.is_some() == present,
        )
        .await
        .map(drop)
    }
}

pub fn now_rfc3339() -> String {
    OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .unwrap_or_else(|_| OffsetDateTime::now_utc())
        .format(&Rfc3339)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> AssignmentKey {
        AssignmentKey {
            principal_id: "5d2c6f0e-3b1a-4c8e-9f7d-0a1b2c3d4e01".into(),
            role_definition_id: GLOBAL_ADMINISTRATOR.into(),
            directory_scope_id: "/".into(),
        }
    }

    #[test]
    fn assign_and_update_ask_for_a_schedule_without_end_remove_for_none() {
        let details = RequestDetails {
            justification: Some("Emergency access".into()),
            ticket_number: Some("CHG-1".into()),
            ticket_system: None,
        };
        let assign = request_body(
            AdminAction::Assign,
            &key(),
            &details,
            Some("2026-01-01T00:00:00Z"),
        );
        assert_eq!(assign["action"], "adminAssign");
        assert_eq!(assign["scheduleInfo"]["expiration"]["type"], "noExpiration");
        assert_eq!(
            assign["scheduleInfo"]["startDateTime"],
            "2026-01-01T00:00:00Z"
        );
        assert_eq!(assign["ticketInfo"]["ticketNumber"], "CHG-1");
        assert_eq!(assign["ticketInfo"]["ticketSystem"], Json::Null);
        assert_eq!(assign["directoryScopeId"], "/");

        let remove = request_body(
            AdminAction::Remove,
            &key(),
            &RequestDetails::default(),
            None,
        );
        assert_eq!(remove["action"], "adminRemove");
        assert!(remove.get("scheduleInfo").is_none());
        assert!(remove.get("ticketInfo").is_none());
        assert!(remove.get("justification").is_none());
    }

    #[test]
    fn expiration_types_map_to_an_end_or_none() {
        let info = |e: Json| json!({"startDateTime": "2026-01-01T00:00:00Z", "expiration": e});
        let read = |e: Json| Expiration::from_schedule_info(&info(e));
        assert_eq!(read(json!({"type": "noExpiration"})), Expiration::Permanent);
        assert_eq!(read(json!({"type": "notSpecified"})), Expiration::Permanent);
        assert_eq!(
            read(json!({"type": "afterDateTime", "endDateTime": "2026-02-01T00:00:00Z"})).end(),
            Some("2026-02-01T00:00:00Z".into())
        );
        assert_eq!(
            read(json!({"type": "afterDuration", "duration": "P30D", "endDateTime": null})).end(),
            Some("P30D".into())
        );
        assert!(read(json!({"type": "afterDuration"})).end().is_some());
    }

    #[test]
    fn keys_match_case_insensitively_and_include_the_scope() {
        let k = key();
        let mut object = json!({
            "principalId": "5D2C6F0E-3B1A-4C8E-9F7D-0A1B2C3D4E01",
            "roleDefinitionId": GLOBAL_ADMINISTRATOR,
            "directoryScopeId": "/",
        });
        assert!(k.matches(&object));
        object["directoryScopeId"] = json!("/administrativeUnits/x");
        assert!(!k.matches(&object));
    }

    #[test]
    fn request_states_split_into_pending_granted_and_failed() {
        let request = |action: &str, status: &str| {
            ScheduleRequest::from_json(&json!({
                "id": "r", "action": action, "status": status,
                "scheduleInfo": {"expiration": {"type": "noExpiration"}},
            }))
        };
        assert!(request("adminAssign", "PendingProvisioning").is_pending());
        assert!(request("adminAssign", "Granted").is_pending());
        assert!(request("adminAssign", "Provisioned").grants());
        assert!(request("adminAssign", "Provisioned").permanent);
        assert!(!request("adminAssign", "Failed").grants());
        assert!(request("adminAssign", "Failed").is_final());
        assert!(!request("adminRemove", "Revoked").grants());
    }

    #[test]
    fn filters_quote_their_literals() {
        let k = AssignmentKey {
            principal_id: "o'brien".into(),
            ..key()
        };
        assert!(
            k.filter().contains("principalId eq 'o''brien'"),
            "{}",
            k.filter()
        );
    }
}
