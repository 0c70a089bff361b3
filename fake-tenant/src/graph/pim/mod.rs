//! Role definitions, direct role assignments, PIM schedule requests / schedules / instances and
//! PIM policies (`/roleManagement/directory/...`, `/policies/roleManagementPolic...`).
//!
//! Shapes follow `specs/msgraph/v1.0-breakglass-subset.json`; status codes, error codes and the
//! asynchronous provisioning follow `specs/msgraph/v1.0-breakglass-facts.md` ("PIM active
//! assignments", "PIM schedules and instances", "Directory role assignments and definitions",
//! "PIM policies"). Knobs: `pim.provisioning_delay_ms` (see fake-tenant/README.md).

mod assignments;
mod handlers;
mod policies;
mod requests;
mod schedule;

use std::collections::BTreeSet;
use std::time::{Duration as StdDuration, Instant};

use axum::Router;
use serde_json::{json, Map, Value};
use time::OffsetDateTime;

use crate::state::Collection;
use crate::AppState;

use assignments::{role_assignment_id, AssignmentRecord, Moment, ScheduleVersion};
use policies::PolicyStore;
use requests::RequestRecord;
use schedule::{parse_timestamp, Schedule};

/// How long a PIM request takes to provision when `pim.provisioning_delay_ms` is not set.
/// Entra usually needs a few seconds; two keep tests quick while still exercising the wait.
pub const DEFAULT_PROVISIONING_DELAY_MS: u64 = 2000;

#[derive(Default)]
pub struct PimState {
    /// Built-in role definitions as Graph returns them (seeded, read-only).
    definitions: Collection,
    /// Lower-cased ids of the roles Microsoft labels PRIVILEGED. `isPrivileged` is not in the
    /// v1.0 subset, so this stays internal and drives `holds_privileged_role`.
    privileged_roles: BTreeSet<String>,
    /// Every active assignment, however made (direct POST, PIM request, seed).
    assignments: Vec<AssignmentRecord>,
    requests: Vec<RequestRecord>,
    policies: PolicyStore,
    /// Whether the tenant has the Microsoft Entra ID P2 (or Governance) licence PIM needs
    /// ("License requirements to use Privileged Identity Management"); seed `pim.licensed`,
    /// default true.
    pub licensed: bool,
}

impl PimState {
    /// Reads the seed's `pim` part: `roleDefinitions` (with an internal `privileged` flag),
    /// `roleAssignments` (permanent unless `endDateTime` is given; `scheduleId` and
    /// `createdUsing` name the schedule request that made one, else it was made directly) and
    /// `policies` (see
    /// `PolicyStore::from_seed`).
    pub fn from_seed(seed: &Value) -> Result<Self, String> {
        let mut state = PimState::default();
        for definition in seed["roleDefinitions"].as_array().into_iter().flatten() {
            let id = definition["id"]
                .as_str()
                .ok_or("pim.roleDefinitions[].id must be a string")?;
            let display_name = definition["displayName"]
                .as_str()
                .ok_or_else(|| format!("pim.roleDefinitions[{id}].displayName must be a string"))?;
            if definition["privileged"].as_bool().unwrap_or(false) {
                state.privileged_roles.insert(id.to_ascii_lowercase());
            }
            let permissions: Vec<Value> = definition["allowedResourceActions"]
                .as_array()
                .map(|actions| {
                    vec![json!({
                        "allowedResourceActions": actions,
                        "excludedResourceActions": [],
                        "condition": null,
                    })]
                })
                .unwrap_or_default();
            let value = json!({
                "id": id,
                "displayName": display_name,
                "description": definition["description"],
                "isBuiltIn": definition["isBuiltIn"].as_bool().unwrap_or(true),
                "isEnabled": true,
                // Built-in roles: the id is the template id (facts file).
                "templateId": id,
                "version": "1",
                "resourceScopes": ["/"],
                "rolePermissions": permissions,
            });
            state.definitions.seed(id, assignments::object(value));
        }

        let seeded_at = Moment {
            instant: Instant::now() - StdDuration::from_secs(3600),
            wall: OffsetDateTime::now_utc() - time::Duration::days(30),
        };
        for entry in seed["roleAssignments"].as_array().into_iter().flatten() {
            let principal_id = entry["principalId"]
                .as_str()
                .ok_or("pim.roleAssignments[].principalId must be a string")?;
            let role = entry["roleDefinitionId"]
                .as_str()
                .ok_or("pim.roleAssignments[].roleDefinitionId must be a string")?;
            let role = state.role_definition_id(role).ok_or_else(|| {
                format!("pim.roleAssignments[]: role definition {role} is not seeded")
            })?;
            let scope = entry["directoryScopeId"].as_str().unwrap_or("/").to_owned();
            let id = entry["id"]
                .as_str()
                .map(str::to_owned)
                .unwrap_or_else(|| role_assignment_id(&role, principal_id, &scope));
            let start = entry["startDateTime"]
                .as_str()
                .and_then(parse_timestamp)
                .unwrap_or(seeded_at.wall);
            let schedule = match entry["endDateTime"].as_str() {
                Some(end) => Schedule {
                    start,
                    expiration: schedule::Expiration::AfterDateTime(
                        parse_timestamp(end).ok_or_else(|| {
                            format!("pim.roleAssignments[]: endDateTime '{end}' is not RFC 3339")
                        })?,
                    ),
                },
                None => Schedule::permanent_from(start),
            };
            // An assignment made through a schedule request keeps the request's id as its
            // schedule's id and `createdUsing`; one made directly, its own id.
            let made_by = |key: &str| entry[key].as_str().map(str::to_owned);
            state.assignments.push(AssignmentRecord {
                schedule_id: made_by("scheduleId").unwrap_or_else(|| id.clone()),
                created_using: made_by("createdUsing").unwrap_or_else(|| id.clone()),
                id,
                principal_id: principal_id.to_owned(),
                role_definition_id: role,
                directory_scope_id: scope,
                created: seeded_at.wall,
                versions: vec![ScheduleVersion {
                    effective_at: seeded_at.instant,
                    modified: seeded_at.wall,
                    schedule,
                }],
                removal_at: None,
            });
        }

        // Requests a dump recorded (`roleAssignmentScheduleRequests`): history, so PIM's
        // answers (a request's justification and ticket) survive a dump and load. A
        // loaded request has completed; its assignment, if any, is in `roleAssignments`.
        for entry in seed["roleAssignmentScheduleRequests"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let Some(body) = entry.as_object() else {
                return Err("pim.roleAssignmentScheduleRequests[] must be objects".into());
            };
            if body.get("id").and_then(Value::as_str).is_none() {
                return Err("pim.roleAssignmentScheduleRequests[].id must be a string".into());
            }
            let mut body = body.clone();
            body.remove("status");
            body.remove("completedDateTime");
            let removal = body.get("action").and_then(Value::as_str) == Some("adminRemove");
            state.requests.push(requests::RequestRecord {
                body,
                visible_at: seeded_at.instant,
                completes_at: seeded_at.instant,
                completed_wall: seeded_at.wall,
                pending_status: if removal {
                    "PendingRevocation"
                } else {
                    "PendingProvisioning"
                },
                final_status: if removal { "Revoked" } else { "Provisioned" },
            });
        }

        let role_ids: Vec<String> = state
            .definitions
            .list_latest()
            .iter()
            .filter_map(|d| d["id"].as_str().map(str::to_owned))
            .collect();
        state.policies = PolicyStore::from_seed(&seed["policies"], &role_ids)?;
        state.licensed = seed["licensed"].as_bool().unwrap_or(true);
        Ok(state)
    }

    /// A seed-compatible snapshot: `from_seed(dump())` restores definitions, assignments in
    /// force (with the request that made each), policies and the schedule requests (as
    /// completed).
    pub fn dump(&self) -> Value {
        let now = Moment::now();
        let definitions: Vec<Value> = self
            .definitions
            .list_latest()
            .into_iter()
            .map(|d| {
                let id = d["id"].as_str().unwrap_or_default();
                json!({
                    "id": id,
                    "displayName": d["displayName"],
                    "description": d["description"],
                    "isBuiltIn": d["isBuiltIn"],
                    "privileged": self.privileged_roles.contains(&id.to_ascii_lowercase()),
                    "allowedResourceActions": d["rolePermissions"][0]["allowedResourceActions"],
                })
            })
            .collect();
        let assignments: Vec<Value> = self
            .assignments
            .iter()
            .filter(|a| a.exists_for_writers(now.wall))
            .map(|a| {
                let schedule = a.latest_schedule();
                json!({
                    "id": a.id,
                    "principalId": a.principal_id,
                    "roleDefinitionId": a.role_definition_id,
                    "directoryScopeId": a.directory_scope_id,
                    "startDateTime": schedule::format_timestamp(schedule.start),
                    "endDateTime": schedule.end().map(schedule::format_timestamp),
                    "scheduleId": a.schedule_id,
                    "createdUsing": a.created_using,
                })
            })
            .collect();
        let requests: Vec<Value> = self
            .requests
            .iter()
            .map(|r| Value::Object(r.to_json(now.instant)))
            .collect();
        json!({
            "roleDefinitions": definitions,
            "roleAssignments": assignments,
            "policies": self.policies.dump(),
            "licensed": self.licensed,
            "roleAssignmentScheduleRequests": requests,
        })
    }

    /// Whether the principal holds, right now, a role Microsoft labels privileged (Global
    /// Administrator, Privileged Role Administrator, ...). DIRECTORY uses it for the
    /// privileged-user write protection.
    pub fn holds_privileged_role(&self, principal_id: &str) -> bool {
        self.directory_roles_of(principal_id)
            .iter()
            .any(|role| self.privileged_roles.contains(&role.to_ascii_lowercase()))
    }

    /// Role definition ids of the directory roles the principal holds right now (assignments
    /// that are provisioned, not removed and inside their schedule window).
    pub fn directory_roles_of(&self, principal_id: &str) -> Vec<String> {
        let now = Moment::now();
        let mut roles: Vec<String> = self
            .assignments
            .iter()
            .filter(|a| a.principal_id.eq_ignore_ascii_case(principal_id) && a.active(now))
            .map(|a| a.role_definition_id.clone())
            .collect();
        roles.sort();
        roles.dedup();
        roles
    }

    /// Role definition ids the principal holds right now at exactly `scope`: `/` for the whole
    /// tenant, `/administrativeUnits/{id}` for a role scoped to an administrative unit
    /// (`directoryScopeId` of a direct assignment). DIRECTORY uses it for the restricted
    /// management administrative units, where only the scope of an assignment counts.
    pub fn directory_roles_at(&self, principal_id: &str, scope: &str) -> Vec<String> {
        let now = Moment::now();
        let mut roles: Vec<String> = self
            .assignments
            .iter()
            .filter(|a| {
                a.principal_id.eq_ignore_ascii_case(principal_id)
                    && a.directory_scope_id.eq_ignore_ascii_case(scope)
                    && a.active(now)
            })
            .map(|a| a.role_definition_id.clone())
            .collect();
        roles.sort();
        roles.dedup();
        roles
    }

    /// A role definition as Graph shows it (`id`, `displayName`, ...), by id in any casing.
    pub fn role_definition_json(&self, id: &str) -> Option<&Map<String, Value>> {
        self.role_definition(id)
    }

    /// The canonical id of a role definition, matching case-insensitively.
    fn role_definition_id(&self, id: &str) -> Option<String> {
        self.definitions
            .get_latest(id)
            .and_then(|d| d["id"].as_str())
            .map(str::to_owned)
    }

    fn role_definition(&self, id: &str) -> Option<&Map<String, Value>> {
        self.definitions.get_latest(id)
    }

    /// A role definition's display name (audit records name the role they target).
    pub fn role_display_name(&self, id: &str) -> Option<String> {
        self.role_definition(id)
            .and_then(|d| d["displayName"].as_str())
            .map(str::to_owned)
    }
}

pub fn routes() -> Router<AppState> {
    handlers::routes()
}

/// Test-only admin routes for this area, mounted under `/_fake/`.
pub fn admin_routes() -> Router<AppState> {
    handlers::admin_routes()
}

#[cfg(test)]
mod tests;
