//! `unifiedRoleAssignmentScheduleRequest`: how active assignments are created, changed and
//! removed through PIM, and the errors Graph answers with (facts file, "PIM active
//! assignments").
//!
//! A request completes asynchronously: it is answered `201` with status `PendingProvisioning`
//! (`PendingRevocation` for `adminRemove`) and becomes `Provisioned` (`Revoked`) once the
//! provisioning delay has passed; only then do schedules, instances and `roleAssignments`
//! reflect it.

use std::time::{Duration as StdDuration, Instant};

use axum::http::StatusCode;
use serde_json::{json, Map, Value};
use time::OffsetDateTime;

use super::assignments::{object, role_assignment_id, AssignmentRecord, Moment, ScheduleVersion};
use super::schedule::{format_timestamp, Schedule};
use super::PimState;
use crate::error::GraphError;

/// The admin actions of `unifiedRoleScheduleRequestActions` (the self actions need a signed-in
/// user with an eligibility, which the emulated tenant does not model).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Assign,
    Update,
    Remove,
    Extend,
    Renew,
}

impl Action {
    fn parse(text: &str) -> Result<Self, GraphError> {
        match text {
            "adminAssign" => Ok(Action::Assign),
            "adminUpdate" => Ok(Action::Update),
            "adminRemove" => Ok(Action::Remove),
            "adminExtend" => Ok(Action::Extend),
            "adminRenew" => Ok(Action::Renew),
            // Self actions need a signed-in user holding an eligibility; the emulator's
            // callers are applications and it has no eligibilities, so say so plainly.
            "selfActivate" | "selfDeactivate" | "selfExtend" | "selfRenew" => {
                Err(GraphError::bad_request(format!(
                    "Action '{text}' needs a signed-in user with an eligible assignment; the emulated tenant supports only admin actions (adminAssign, adminUpdate, adminRemove, adminExtend, adminRenew)."
                )))
            }
            other => Err(GraphError::bad_request(format!(
                "Invalid value '{other}' for property 'action'."
            ))),
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Action::Assign => "adminAssign",
            Action::Update => "adminUpdate",
            Action::Remove => "adminRemove",
            Action::Extend => "adminExtend",
            Action::Renew => "adminRenew",
        }
    }
}

/// A stored request. Status and completion time are computed on read from `completes_at`.
#[derive(Debug, Clone)]
pub struct RequestRecord {
    /// Every property except `status` and `completedDateTime`.
    pub body: Map<String, Value>,
    /// When readers first see the request (replication lag).
    pub visible_at: Instant,
    pub completes_at: Instant,
    pub completed_wall: OffsetDateTime,
    pub pending_status: &'static str,
    pub final_status: &'static str,
}

impl RequestRecord {
    pub fn id(&self) -> &str {
        self.body["id"].as_str().unwrap_or_default()
    }

    pub fn to_json(&self, now: Instant) -> Map<String, Value> {
        let done = now >= self.completes_at;
        let mut out = self.body.clone();
        out.insert(
            "status".into(),
            Value::from(if done {
                self.final_status
            } else {
                self.pending_status
            }),
        );
        out.insert(
            "completedDateTime".into(),
            if done {
                Value::from(format_timestamp(self.completed_wall))
            } else {
                Value::Null
            },
        );
        out
    }
}

/// What the handler knows about the world outside PIM when a request arrives.
pub struct Submission<'a> {
    pub body: &'a Map<String, Value>,
    /// Whether the principal exists *and* has replicated to the PIM service (a principal
    /// created moments ago is not usable yet).
    pub principal_visible: bool,
    pub caller_app_id: &'a str,
    pub now: Moment,
    pub provisioning_delay: StdDuration,
    pub replication_lag: StdDuration,
}

pub fn role_assignment_exists() -> GraphError {
    GraphError::new(
        StatusCode::BAD_REQUEST,
        "RoleAssignmentExists",
        "The Role assignment already exists.",
    )
}

pub fn role_assignment_does_not_exist() -> GraphError {
    GraphError::new(
        StatusCode::BAD_REQUEST,
        "RoleAssignmentDoesNotExist",
        "The Role assignment does not exist.",
    )
}

pub fn policy_validation_failed(rules: &[&str]) -> GraphError {
    let list = rules
        .iter()
        .map(|r| format!("\"{r}\""))
        .collect::<Vec<_>>()
        .join(",");
    GraphError::new(
        StatusCode::BAD_REQUEST,
        "RoleAssignmentRequestPolicyValidationFailed",
        format!("The following policy rules failed: [{list}]"),
    )
}

fn required_string<'b>(body: &'b Map<String, Value>, name: &str) -> Result<&'b str, GraphError> {
    match body.get(name) {
        Some(Value::String(s)) if !s.trim().is_empty() => Ok(s),
        _ => Err(GraphError::bad_request(format!(
            "The request property '{name}' is required."
        ))),
    }
}

impl PimState {
    /// Validates and (unless `isValidationOnly`) records a schedule request, returning the
    /// `201` body.
    pub fn submit_request(&mut self, s: Submission<'_>) -> Result<Map<String, Value>, GraphError> {
        let body = s.body;
        let action = Action::parse(required_string(body, "action")?)?;
        let principal_id = required_string(body, "principalId")?.to_owned();
        let role_input = required_string(body, "roleDefinitionId")?;
        let scope = match body.get("directoryScopeId") {
            Some(Value::String(scope)) if scope.starts_with('/') => scope.clone(),
            Some(Value::String(scope)) => {
                return Err(GraphError::bad_request(format!(
                    "directoryScopeId '{scope}' is not valid; use '/' for the whole tenant."
                )))
            }
            _ => {
                return Err(GraphError::bad_request(
                    "Either directoryScopeId or appScopeId must be specified.",
                ))
            }
        };
        let is_validation_only = match body.get("isValidationOnly") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => {
                return Err(GraphError::bad_request(
                    "The request property 'isValidationOnly' must be a boolean.",
                ))
            }
        };
        let role_definition_id = self
            .role_definition_id(role_input)
            .ok_or_else(|| GraphError::not_found(role_input))?;
        if !s.principal_visible {
            return Err(GraphError::not_found(&principal_id));
        }
        let schedule = if action == Action::Remove {
            None
        } else {
            Some(
                Schedule::from_request(body.get("scheduleInfo"), s.now.wall)
                    .map_err(GraphError::bad_request)?,
            )
        };
        // adminRenew brings back an assignment that has expired (or is about to); every other
        // action works on assignments in force.
        let existing = self.assignments.iter().rposition(|a| {
            a.matches(&principal_id, &role_definition_id, &scope)
                && if action == Action::Renew {
                    a.removal_at.is_none()
                } else {
                    a.exists_for_writers(s.now.wall)
                }
        });
        match (action, existing) {
            (Action::Assign, Some(_)) => return Err(role_assignment_exists()),
            (Action::Update | Action::Remove | Action::Extend | Action::Renew, None) => {
                return Err(role_assignment_does_not_exist())
            }
            _ => {}
        }
        if let Some(schedule) = &schedule {
            self.check_expiration_policy(&role_definition_id, schedule)?;
        }

        let request_id = uuid::Uuid::new_v4().to_string();
        let target_schedule_id = match existing {
            Some(i) => self.assignments[i].schedule_id.clone(),
            None => request_id.clone(),
        };
        let effective_at = s.now.instant + s.provisioning_delay;
        let mut response = object(json!({
            "id": request_id,
            "action": action.as_str(),
            "principalId": principal_id,
            "roleDefinitionId": role_definition_id,
            "directoryScopeId": scope,
            "appScopeId": null,
            "isValidationOnly": is_validation_only,
            "targetScheduleId": target_schedule_id,
            "justification": body.get("justification").cloned().unwrap_or(Value::Null),
            "scheduleInfo": schedule.as_ref().map(Schedule::to_json).unwrap_or(Value::Null),
            "ticketInfo": {
                "ticketNumber": body.get("ticketInfo").and_then(|t| t.get("ticketNumber")).cloned().unwrap_or(Value::Null),
                "ticketSystem": body.get("ticketInfo").and_then(|t| t.get("ticketSystem")).cloned().unwrap_or(Value::Null),
            },
            "createdDateTime": format_timestamp(s.now.wall),
            "createdBy": {
                "application": {"id": s.caller_app_id, "displayName": null},
                "user": null,
                "device": null,
            },
            "approvalId": null,
            "customData": null,
        }));
        let (pending_status, final_status) = if action == Action::Remove {
            ("PendingRevocation", "Revoked")
        } else {
            ("PendingProvisioning", "Provisioned")
        };
        if is_validation_only {
            // Validation only: every check above ran, nothing is recorded.
            response.insert("status".into(), Value::from("Granted"));
            response.insert("completedDateTime".into(), Value::Null);
            return Ok(response);
        }

        match (existing, schedule) {
            (None, Some(schedule)) => self.assignments.push(AssignmentRecord {
                id: role_assignment_id(&role_definition_id, &principal_id, &scope),
                principal_id,
                role_definition_id,
                directory_scope_id: scope,
                schedule_id: request_id.clone(),
                created_using: request_id.clone(),
                created: s.now.wall,
                versions: vec![ScheduleVersion {
                    effective_at,
                    modified: s.now.wall,
                    schedule,
                }],
                removal_at: None,
            }),
            (Some(i), Some(schedule)) => self.assignments[i].versions.push(ScheduleVersion {
                effective_at,
                modified: s.now.wall,
                schedule,
            }),
            (Some(i), None) => self.assignments[i].removal_at = Some(effective_at),
            (None, None) => unreachable!("adminRemove without an assignment was rejected above"),
        }
        let record = RequestRecord {
            body: response,
            visible_at: s.now.instant + s.replication_lag,
            completes_at: effective_at,
            completed_wall: s.now.wall
                + time::Duration::try_from(s.provisioning_delay).unwrap_or(time::Duration::ZERO),
            pending_status,
            final_status,
        };
        let answer = record.to_json(s.now.instant);
        self.requests.push(record);
        Ok(answer)
    }

    /// `Expiration_Admin_Assignment`: when expiration is required, a permanent request fails,
    /// and so does one longer than `maximumDuration`.
    fn check_expiration_policy(
        &self,
        role_definition_id: &str,
        schedule: &Schedule,
    ) -> Result<(), GraphError> {
        let rule = self
            .policies
            .admin_assignment_expiration(role_definition_id);
        if !rule.is_expiration_required {
            return Ok(());
        }
        let too_long = match (schedule.length(), rule.maximum_duration) {
            (None, _) => true,
            (Some(length), Some(max)) => length > max,
            (Some(_), None) => false,
        };
        if too_long {
            return Err(policy_validation_failed(&["ExpirationRule"]));
        }
        Ok(())
    }
}
