//! Model-level tests of PIM requests with explicit moments (no waiting); the HTTP behaviour
//! is covered in `fake-tenant/tests/http/pim.rs`.

use std::time::{Duration as StdDuration, Instant};

use axum::http::StatusCode;
use serde_json::{json, Map, Value};

use super::assignments::Moment;
use super::requests::Submission;
use super::PimState;
use crate::error::GraphError;

const GA: &str = "62e90394-69f5-4237-9190-012177145e10";
const READER: &str = "88d8e3e3-8f55-4a1e-953a-9b9898b8876b";
const ALICE: &str = "0b1f9e1c-8d6a-4c55-9a55-3f4f2d0f7a11";

fn state(ga_expiration_required: bool) -> PimState {
    PimState::from_seed(&json!({
        "roleDefinitions": [
            {"id": GA, "displayName": "Global Administrator", "privileged": true},
            {"id": READER, "displayName": "Directory Readers"}
        ],
        "policies": {
            "idPrefix": "DirectoryRole_t_",
            "ruleTemplate": [{
                "@odata.type": "#microsoft.graph.unifiedRoleManagementPolicyExpirationRule",
                "id": "Expiration_Admin_Assignment",
                "isExpirationRequired": false,
                "maximumDuration": "P180D",
                "target": {"caller": "Admin", "level": "Assignment", "operations": ["all"]}
            }],
            "ruleOverrides": {GA: {"Expiration_Admin_Assignment": {"isExpirationRequired": ga_expiration_required}}}
        }
    }))
    .expect("seed parses")
}

fn body(action: &str, role: &str, expiration: Value) -> Map<String, Value> {
    match json!({
        "action": action,
        "principalId": ALICE,
        "roleDefinitionId": role,
        "directoryScopeId": "/",
        "justification": "break-glass account",
        "scheduleInfo": {"expiration": expiration}
    }) {
        Value::Object(map) => map,
        _ => unreachable!(),
    }
}

fn submit(
    pim: &mut PimState,
    body: &Map<String, Value>,
    now: Moment,
    delay_ms: u64,
) -> Result<Map<String, Value>, GraphError> {
    pim.submit_request(Submission {
        body,
        principal_visible: true,
        caller_app_id: "app",
        now,
        provisioning_delay: StdDuration::from_millis(delay_ms),
        replication_lag: StdDuration::ZERO,
    })
}

fn later(now: Moment, ms: u64) -> Moment {
    Moment {
        instant: now.instant + StdDuration::from_millis(ms),
        wall: now.wall + time::Duration::milliseconds(ms as i64),
    }
}

fn permanent() -> Value {
    json!({"type": "noExpiration"})
}

#[test]
fn admin_assign_is_pending_until_the_provisioning_delay_has_passed() {
    let mut pim = state(false);
    let now = Moment::now();
    let answer = submit(&mut pim, &body("adminAssign", GA, permanent()), now, 2000).unwrap();
    assert_eq!(answer["status"], json!("PendingProvisioning"));
    assert_eq!(answer["completedDateTime"], Value::Null);
    assert_eq!(answer["targetScheduleId"], answer["id"]);

    let record = &pim.assignments[0];
    assert!(!record.active(now));
    assert!(!record.active(later(now, 1999)));
    assert!(record.active(later(now, 2000)));
    assert_eq!(
        pim.requests[0].to_json(later(now, 2000).instant)["status"],
        json!("Provisioned")
    );
}

#[test]
fn a_second_assign_conflicts_even_while_the_first_is_pending() {
    let mut pim = state(false);
    let now = Moment::now();
    submit(&mut pim, &body("adminAssign", GA, permanent()), now, 2000).unwrap();
    let err = submit(&mut pim, &body("adminAssign", GA, permanent()), now, 2000).unwrap_err();
    assert_eq!(err.status, StatusCode::BAD_REQUEST);
    assert_eq!(err.code, "RoleAssignmentExists");
    assert_eq!(pim.requests.len(), 1, "a failed request is not recorded");
}

#[test]
fn remove_update_and_extend_need_an_existing_assignment() {
    let mut pim = state(false);
    let now = Moment::now();
    for action in ["adminRemove", "adminUpdate", "adminExtend", "adminRenew"] {
        let err = submit(&mut pim, &body(action, GA, permanent()), now, 0).unwrap_err();
        assert_eq!(err.code, "RoleAssignmentDoesNotExist", "{action}");
    }
}

#[test]
fn admin_remove_takes_effect_after_the_same_delay() {
    let mut pim = state(false);
    let now = Moment::now();
    submit(&mut pim, &body("adminAssign", GA, permanent()), now, 0).unwrap();
    assert_eq!(pim.directory_roles_of(ALICE), vec![GA.to_owned()]);
    assert!(pim.holds_privileged_role(ALICE));

    let removal = submit(&mut pim, &body("adminRemove", GA, Value::Null), now, 1000).unwrap();
    assert_eq!(removal["status"], json!("PendingRevocation"));
    assert!(pim.assignments[0].active(later(now, 999)));
    assert!(!pim.assignments[0].active(later(now, 1000)));
    assert_eq!(
        pim.requests[1].to_json(later(now, 1000).instant)["status"],
        json!("Revoked")
    );
    // Removing twice: the primary already knows it is going away.
    let err = submit(&mut pim, &body("adminRemove", GA, Value::Null), now, 0).unwrap_err();
    assert_eq!(err.code, "RoleAssignmentDoesNotExist");
}

#[test]
fn non_privileged_roles_do_not_make_a_privileged_user() {
    let mut pim = state(false);
    submit(
        &mut pim,
        &body("adminAssign", READER, permanent()),
        Moment::now(),
        0,
    )
    .unwrap();
    assert_eq!(pim.directory_roles_of(ALICE), vec![READER.to_owned()]);
    assert!(!pim.holds_privileged_role(ALICE));
}

#[test]
fn policy_requiring_expiration_rejects_permanent_and_too_long_requests() {
    let mut pim = state(true);
    let now = Moment::now();
    for expiration in [
        permanent(),
        json!({"type": "notSpecified"}),
        json!({"type": "afterDuration", "duration": "P181D"}),
    ] {
        let err = submit(
            &mut pim,
            &body("adminAssign", GA, expiration.clone()),
            now,
            0,
        )
        .unwrap_err();
        assert_eq!(
            err.code, "RoleAssignmentRequestPolicyValidationFailed",
            "{expiration}"
        );
        assert_eq!(
            err.message,
            "The following policy rules failed: [\"ExpirationRule\"]"
        );
    }
    let ok = submit(
        &mut pim,
        &body(
            "adminAssign",
            GA,
            json!({"type": "afterDuration", "duration": "P180D"}),
        ),
        now,
        0,
    )
    .unwrap();
    assert_eq!(
        ok["scheduleInfo"]["expiration"]["type"],
        json!("afterDuration")
    );
    // Other roles keep the template, which allows permanent assignments.
    submit(&mut pim, &body("adminAssign", READER, permanent()), now, 0).unwrap();
}

#[test]
fn admin_update_replaces_the_window_once_provisioned() {
    let mut pim = state(false);
    let now = Moment::now();
    submit(&mut pim, &body("adminAssign", GA, permanent()), now, 0).unwrap();
    let update = body(
        "adminUpdate",
        GA,
        json!({"type": "afterDuration", "duration": "PT1H"}),
    );
    let answer = submit(&mut pim, &update, now, 500).unwrap();
    assert_eq!(
        answer["targetScheduleId"],
        json!(pim.assignments[0].schedule_id)
    );
    let record = &pim.assignments[0];
    assert_eq!(
        record.instance_json(later(now, 100).instant)["endDateTime"],
        Value::Null,
        "the old window holds until the update is provisioned"
    );
    assert!(record.instance_json(later(now, 500).instant)["endDateTime"].is_string());
}

#[test]
fn validation_only_requests_check_everything_and_record_nothing() {
    let mut pim = state(true);
    let now = Moment::now();
    let mut validation = body("adminAssign", GA, permanent());
    validation.insert("isValidationOnly".into(), json!(true));
    let err = submit(&mut pim, &validation, now, 0).unwrap_err();
    assert_eq!(err.code, "RoleAssignmentRequestPolicyValidationFailed");

    validation.insert(
        "scheduleInfo".into(),
        json!({"expiration": {"type": "afterDuration", "duration": "P30D"}}),
    );
    let answer = submit(&mut pim, &validation, now, 0).unwrap();
    assert_eq!(answer["isValidationOnly"], json!(true));
    assert!(pim.assignments.is_empty());
    assert!(pim.requests.is_empty());
}

#[test]
fn unknown_roles_and_unreplicated_principals_are_not_found() {
    let mut pim = state(false);
    let now = Moment::now();
    let unknown_role = body(
        "adminAssign",
        "00000000-0000-0000-0000-000000000001",
        permanent(),
    );
    let err = submit(&mut pim, &unknown_role, now, 0).unwrap_err();
    assert_eq!(err.status, StatusCode::NOT_FOUND);

    let err = pim
        .submit_request(Submission {
            body: &body("adminAssign", GA, permanent()),
            principal_visible: false,
            caller_app_id: "app",
            now,
            provisioning_delay: StdDuration::ZERO,
            replication_lag: StdDuration::ZERO,
        })
        .unwrap_err();
    assert_eq!(err.status, StatusCode::NOT_FOUND);
    assert_eq!(err.code, "Request_ResourceNotFound");
    assert!(err.message.contains(ALICE));
}

#[test]
fn malformed_requests_are_bad_requests() {
    let mut pim = state(false);
    let now = Moment::now();
    let mut no_scope = body("adminAssign", GA, permanent());
    no_scope.remove("directoryScopeId");
    let mut self_activate = body("selfActivate", GA, permanent());
    self_activate.insert("action".into(), json!("selfActivate"));
    let bad_duration = body(
        "adminAssign",
        GA,
        json!({"type": "afterDuration", "duration": "P1Y"}),
    );
    for b in [no_scope, self_activate, bad_duration] {
        let err = submit(&mut pim, &b, now, 0).unwrap_err();
        assert_eq!(err.status, StatusCode::BAD_REQUEST, "{b:?}");
    }
}

#[test]
fn default_and_forbid_permanent_seeds_disagree_only_on_global_administrator() {
    let default = PimState::from_seed(&crate::seed::load("default").unwrap()["pim"]).unwrap();
    let forbid =
        PimState::from_seed(&crate::seed::load("forbid-permanent").unwrap()["pim"]).unwrap();
    assert!(
        !default
            .policies
            .admin_assignment_expiration(GA)
            .is_expiration_required
    );
    let rule = forbid.policies.admin_assignment_expiration(GA);
    assert!(rule.is_expiration_required);
    assert_eq!(rule.maximum_duration, Some(time::Duration::days(180)));
    assert!(
        !forbid
            .policies
            .admin_assignment_expiration(READER)
            .is_expiration_required
    );
    // The provider's service principal holds the roles auth.json says it does.
    let sp = "4f97c425-4dcd-40fc-b52d-0e5f5b1ab19b";
    assert_eq!(
        default.directory_roles_of(sp),
        vec![
            "7be44c8a-adaf-4e2a-84d6-ab2649e08a13".to_owned(),
            "e8611ab8-c189-46e8-94e1-60213ab1f814".to_owned()
        ]
    );
}

#[test]
fn dump_restores_assignments_and_policies() {
    let mut pim = state(true);
    submit(
        &mut pim,
        &body(
            "adminAssign",
            GA,
            json!({"type": "afterDuration", "duration": "P30D"}),
        ),
        Moment::now(),
        0,
    )
    .unwrap();
    let restored = PimState::from_seed(&pim.dump()).unwrap();
    assert_eq!(restored.directory_roles_of(ALICE), vec![GA.to_owned()]);
    assert!(restored.holds_privileged_role(ALICE));
    assert!(
        restored
            .policies
            .admin_assignment_expiration(GA)
            .is_expiration_required
    );
    assert!(restored.assignments[0].latest_schedule().end().is_some());
    // The assignment still says which request made it, and the request is still there
    // (completed), with what it recorded.
    let request = pim.requests[0].id().to_owned();
    assert_eq!(restored.assignments[0].created_using, request);
    assert_eq!(restored.assignments[0].schedule_id, request);
    let back = restored.requests[0].to_json(Instant::now());
    assert_eq!(back["id"], json!(request));
    assert_eq!(back["status"], json!("Provisioned"));
    assert_eq!(back["justification"], pim.requests[0].body["justification"]);
}

#[test]
fn the_default_seed_survives_dump_load_dump() {
    let seeded = PimState::from_seed(&crate::seed::load("default").unwrap()["pim"]).unwrap();
    let first = seeded.dump();
    let second = PimState::from_seed(&first).unwrap().dump();
    assert_eq!(first, second);
}

#[test]
fn admin_renew_brings_back_an_expired_assignment() {
    let mut pim = state(false);
    let start = Moment::now();
    let short = json!({"type": "afterDuration", "duration": "PT1H"});
    submit(&mut pim, &body("adminAssign", GA, short.clone()), start, 0).unwrap();
    let expired = later(start, 2 * 3600 * 1000);
    assert!(!pim.assignments[0].active(expired));
    let err = submit(
        &mut pim,
        &body("adminExtend", GA, short.clone()),
        expired,
        0,
    )
    .unwrap_err();
    assert_eq!(
        err.code, "RoleAssignmentDoesNotExist",
        "extend needs one in force"
    );

    let mut renew = body("adminRenew", GA, short);
    renew.insert(
        "scheduleInfo".into(),
        json!({"startDateTime": super::schedule::format_timestamp(expired.wall),
               "expiration": {"type": "afterDuration", "duration": "PT1H"}}),
    );
    submit(&mut pim, &renew, expired, 0).unwrap();
    assert_eq!(pim.assignments.len(), 1, "renewed in place");
    assert!(pim.assignments[0].active(expired));
}
