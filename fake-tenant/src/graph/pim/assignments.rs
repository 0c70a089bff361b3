//! Active role assignments as one record per (principal, role, scope), rendered three ways as
//! Entra shows them: a `unifiedRoleAssignment` (the direct view), a
//! `unifiedRoleAssignmentSchedule` (the PIM plan) and a `unifiedRoleAssignmentScheduleInstance`
//! (the assignment in force right now).
//!
//! Time is modelled lazily: a record carries the instants at which its versions and its removal
//! take effect, and every read computes what is visible at that moment. Nothing runs in the
//! background, so tests observe exactly the documented order of events without races.

use std::time::Instant;

use base64::Engine;
use serde_json::{json, Map, Value};
use time::OffsetDateTime;

use super::schedule::{format_timestamp, Schedule};

/// One version of an assignment's schedule, in force for readers from `effective_at`
/// (creation, `adminUpdate`, `adminExtend` and `adminRenew` each add one).
#[derive(Debug, Clone)]
pub struct ScheduleVersion {
    pub effective_at: Instant,
    pub modified: OffsetDateTime,
    pub schedule: Schedule,
}

#[derive(Debug, Clone)]
pub struct AssignmentRecord {
    /// The `unifiedRoleAssignment` id, also the instance id.
    pub id: String,
    pub principal_id: String,
    pub role_definition_id: String,
    pub directory_scope_id: String,
    /// The `unifiedRoleAssignmentSchedule` id: the id of the request that created it, or the
    /// assignment id for assignments made outside PIM.
    pub schedule_id: String,
    /// `createdUsing`: the id of the request (or assignment) that created the schedule.
    pub created_using: String,
    pub created: OffsetDateTime,
    /// Never empty; the first version's `effective_at` is when the assignment appears.
    pub versions: Vec<ScheduleVersion>,
    /// When a removal (DELETE or `adminRemove`) takes effect for readers.
    pub removal_at: Option<Instant>,
}

/// A moment, on both clocks: `Instant` for delays and lag, wall-clock for schedule windows.
#[derive(Debug, Clone, Copy)]
pub struct Moment {
    pub instant: Instant,
    pub wall: OffsetDateTime,
}

impl Moment {
    pub fn now() -> Self {
        Moment {
            instant: Instant::now(),
            wall: OffsetDateTime::now_utc(),
        }
    }
}

impl AssignmentRecord {
    /// The schedule a reader sees at `now`: the newest version in effect. `None` while the
    /// assignment is still being provisioned (or replicated), or once its removal took effect.
    pub fn visible_schedule(&self, now: Instant) -> Option<&Schedule> {
        if self.removal_at.is_some_and(|r| r <= now) {
            return None;
        }
        self.versions
            .iter()
            .rev()
            .find(|v| v.effective_at <= now)
            .map(|v| &v.schedule)
    }

    fn visible_version(&self, now: Instant) -> Option<&ScheduleVersion> {
        if self.removal_at.is_some_and(|r| r <= now) {
            return None;
        }
        self.versions.iter().rev().find(|v| v.effective_at <= now)
    }

    /// The schedule the primary replica holds (the newest version, pending or not); what
    /// conflict checks for new requests compare against.
    pub fn latest_schedule(&self) -> &Schedule {
        &self.versions[self.versions.len() - 1].schedule
    }

    /// Whether writers see this assignment: not being removed and not expired.
    pub fn exists_for_writers(&self, now: OffsetDateTime) -> bool {
        self.removal_at.is_none() && !self.latest_schedule().has_ended(now)
    }

    /// Readers see the schedule until it ends or is removed.
    pub fn schedule_visible(&self, now: Moment) -> bool {
        self.visible_schedule(now.instant)
            .is_some_and(|s| !s.has_ended(now.wall))
    }

    /// The assignment is in force: visible and inside its window. This is also when Entra
    /// lists it under `roleAssignments`.
    pub fn active(&self, now: Moment) -> bool {
        self.visible_schedule(now.instant)
            .is_some_and(|s| s.is_active_at(now.wall))
    }

    pub fn matches(&self, principal_id: &str, role_definition_id: &str, scope: &str) -> bool {
        self.principal_id.eq_ignore_ascii_case(principal_id)
            && self
                .role_definition_id
                .eq_ignore_ascii_case(role_definition_id)
            && self.directory_scope_id.eq_ignore_ascii_case(scope)
    }

    pub fn role_assignment_json(&self) -> Map<String, Value> {
        object(json!({
            "id": self.id,
            "principalId": self.principal_id,
            "roleDefinitionId": self.role_definition_id,
            "directoryScopeId": self.directory_scope_id,
            "appScopeId": null,
            "condition": null,
        }))
    }

    /// The schedule as a reader sees it at `now` (callers check `schedule_visible` first).
    pub fn schedule_json(&self, now: Instant) -> Map<String, Value> {
        let version = self
            .visible_version(now)
            .unwrap_or(&self.versions[self.versions.len() - 1]);
        object(json!({
            "id": self.schedule_id,
            "principalId": self.principal_id,
            "roleDefinitionId": self.role_definition_id,
            "directoryScopeId": self.directory_scope_id,
            "appScopeId": null,
            "createdUsing": self.created_using,
            "createdDateTime": format_timestamp(self.created),
            "modifiedDateTime": format_timestamp(version.modified),
            "status": "Provisioned",
            "scheduleInfo": version.schedule.to_json(),
            "assignmentType": "Assigned",
            "memberType": "Direct",
        }))
    }

    pub fn instance_json(&self, now: Instant) -> Map<String, Value> {
        let schedule = self
            .visible_schedule(now)
            .unwrap_or_else(|| self.latest_schedule());
        object(json!({
            "id": self.id,
            "principalId": self.principal_id,
            "roleDefinitionId": self.role_definition_id,
            "directoryScopeId": self.directory_scope_id,
            "appScopeId": null,
            "startDateTime": format_timestamp(schedule.start),
            "endDateTime": schedule.end().map(format_timestamp),
            "assignmentType": "Assigned",
            "memberType": "Direct",
            "roleAssignmentOriginId": self.id,
            "roleAssignmentScheduleId": self.schedule_id,
        }))
    }
}

/// Role assignment ids as Entra forms them for tenant-wide assignments: the role definition
/// GUID and the principal GUID in their .NET byte layout, base64url-encoded, plus `-1`
/// (e.g. `lAPpYvVpN0KRkAEhdxReE...-1` for Global Administrator). Deterministic, so a second
/// assignment of the same role to the same principal has the same id. Other scopes, or ids
/// that are not GUIDs, get a random id.
pub fn role_assignment_id(role_definition_id: &str, principal_id: &str, scope: &str) -> String {
    let role = uuid::Uuid::parse_str(role_definition_id);
    let principal = uuid::Uuid::parse_str(principal_id);
    match (role, principal) {
        (Ok(role), Ok(principal)) if scope == "/" => {
            let mut bytes = Vec::with_capacity(32);
            bytes.extend_from_slice(&role.to_bytes_le());
            bytes.extend_from_slice(&principal.to_bytes_le());
            format!(
                "{}-1",
                base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
            )
        }
        _ => uuid::Uuid::new_v4().to_string(),
    }
}

pub fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration as StdDuration;

    use super::*;
    use time::Duration;

    const GA: &str = "62e90394-69f5-4237-9190-012177145e10";

    fn record(now: Moment, appears_after: StdDuration, schedule: Schedule) -> AssignmentRecord {
        AssignmentRecord {
            id: role_assignment_id(GA, "11111111-2222-3333-4444-555555555555", "/"),
            principal_id: "11111111-2222-3333-4444-555555555555".into(),
            role_definition_id: GA.into(),
            directory_scope_id: "/".into(),
            schedule_id: "req".into(),
            created_using: "req".into(),
            created: now.wall,
            versions: vec![ScheduleVersion {
                effective_at: now.instant + appears_after,
                modified: now.wall,
                schedule,
            }],
            removal_at: None,
        }
    }

    #[test]
    fn global_administrator_assignment_ids_start_like_entra_ones() {
        // 62e90394-69f5-4237-... in .NET byte order base64url-encodes to "lAPpYvVpN0KRkA...",
        // the prefix every Global Administrator assignment id in Graph's examples has.
        let id = role_assignment_id(GA, "11111111-2222-3333-4444-555555555555", "/");
        assert!(id.starts_with("lAPpYvVpN0KRkAEhdxReE"), "{id}");
        assert!(id.ends_with("-1"));
        assert_eq!(
            id,
            role_assignment_id(GA, "11111111-2222-3333-4444-555555555555", "/")
        );
        assert_ne!(
            role_assignment_id(
                GA,
                "11111111-2222-3333-4444-555555555555",
                "/administrativeUnits/x"
            ),
            id
        );
    }

    #[test]
    fn an_assignment_appears_only_once_provisioned() {
        let now = Moment::now();
        let r = record(
            now,
            StdDuration::from_secs(2),
            Schedule::permanent_from(now.wall),
        );
        assert!(!r.active(now));
        assert!(
            r.exists_for_writers(now.wall),
            "the primary knows it at once"
        );
        let later = Moment {
            instant: now.instant + StdDuration::from_secs(2),
            wall: now.wall + Duration::seconds(2),
        };
        assert!(r.active(later));
        assert_eq!(r.instance_json(later.instant)["endDateTime"], Value::Null);
    }

    #[test]
    fn removal_hides_it_from_readers_when_it_takes_effect() {
        let now = Moment::now();
        let mut r = record(now, StdDuration::ZERO, Schedule::permanent_from(now.wall));
        r.removal_at = Some(now.instant + StdDuration::from_secs(1));
        assert!(!r.exists_for_writers(now.wall));
        assert!(
            r.active(now),
            "readers still see it during the removal delay"
        );
        let later = Moment {
            instant: now.instant + StdDuration::from_secs(1),
            wall: now.wall,
        };
        assert!(!r.active(later));
        assert!(!r.schedule_visible(later));
    }

    #[test]
    fn a_future_schedule_is_visible_but_not_active_and_expired_ones_vanish() {
        let now = Moment::now();
        let future = Schedule {
            start: now.wall + Duration::hours(1),
            expiration: super::super::schedule::Expiration::AfterDuration(
                "PT2H".into(),
                Duration::hours(2),
            ),
        };
        let r = record(now, StdDuration::ZERO, future);
        assert!(r.schedule_visible(now));
        assert!(!r.active(now));
        let after_end = Moment {
            instant: now.instant,
            wall: now.wall + Duration::hours(4),
        };
        assert!(!r.schedule_visible(after_end));
        assert!(!r.exists_for_writers(after_end.wall));
    }
}
