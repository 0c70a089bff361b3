//! PIM over real HTTP: role definitions, direct role assignments, schedule requests with
//! asynchronous provisioning, schedules and instances, and role management policies.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::common::{json_body, TestTenant};

const GLOBAL_ADMIN: &str = "62e90394-69f5-4237-9190-012177145e10";
const SECURITY_READER: &str = "5d6b6bb7-de71-4623-b4af-96380a352509";
/// The seed's `helpdesk-automation` service principal: exists, holds no directory role.
const HELPDESK_SP: &str = "374cfff1-0fa8-48d6-a0c2-7cac102135c0";
const HELPDESK_APP: &str = "ceee1405-ca1d-44c2-8ee4-03a178f15a19";
const HELPDESK_SECRET: &str = "fake~helpdesk-Q8w2Rk1mZt7Xv4Lp0Nb6";

const REQUESTS: &str = "/roleManagement/directory/roleAssignmentScheduleRequests";

fn assign_body(principal: &str, role: &str, expiration: Value) -> Value {
    json!({
        "action": "adminAssign",
        "principalId": principal,
        "roleDefinitionId": role,
        "directoryScopeId": "/",
        "justification": "Emergency access account",
        "scheduleInfo": {"startDateTime": null, "expiration": expiration}
    })
}

fn remove_body(principal: &str, role: &str) -> Value {
    json!({
        "action": "adminRemove",
        "principalId": principal,
        "roleDefinitionId": role,
        "directoryScopeId": "/"
    })
}

fn filter(property: &str, value: &str) -> String {
    format!("$filter={property}%20eq%20'{value}'")
}

async fn get(t: &TestTenant, path: &str) -> (StatusCode, Value) {
    let response = t.graph(Method::GET, path).send().await.expect("reachable");
    (response.status(), json_body(response).await)
}

async fn post(t: &TestTenant, path: &str, body: &Value) -> (StatusCode, Value) {
    let response = t
        .graph(Method::POST, path)
        .json(body)
        .send()
        .await
        .expect("reachable");
    (response.status(), json_body(response).await)
}

/// `value` of a collection GET that must succeed.
async fn list(t: &TestTenant, path: &str) -> Vec<Value> {
    let (status, body) = get(t, path).await;
    assert_eq!(status, StatusCode::OK, "GET {path}: {body}");
    body["value"].as_array().cloned().expect("a collection")
}

/// Polls a schedule request until it reaches `status` (the emulator provisions lazily after
/// `pim.provisioning_delay_ms`); a 404 means the request has not replicated yet. Gives up
/// after 150 polls.
async fn wait_for_request_status(t: &TestTenant, id: &str, status: &str) -> Value {
    for _ in 0..150 {
        let (code, body) = get(t, &format!("{REQUESTS}/{id}")).await;
        assert!(
            code == StatusCode::OK || code == StatusCode::NOT_FOUND,
            "{code}: {body}"
        );
        if body["status"] == json!(status) {
            return body;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("request {id} never reached status {status}");
}

fn error_code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or_default()
}

#[tokio::test]
async fn role_definitions_are_the_built_in_roles_with_their_well_known_ids() {
    let t = TestTenant::start().await;
    let definitions = list(&t, "/roleManagement/directory/roleDefinitions").await;
    let ga = definitions
        .iter()
        .find(|d| d["id"] == json!(GLOBAL_ADMIN))
        .expect("Global Administrator is listed");
    assert_eq!(ga["displayName"], json!("Global Administrator"));
    assert_eq!(ga["isBuiltIn"], json!(true));
    assert_eq!(ga["templateId"], json!(GLOBAL_ADMIN));
    assert!(definitions
        .iter()
        .any(|d| d["id"] == json!("e8611ab8-c189-46e8-94e1-60213ab1f814")));

    let filtered = list(
        &t,
        "/roleManagement/directory/roleDefinitions?$filter=displayName%20eq%20'Privileged%20Role%20Administrator'",
    )
    .await;
    assert_eq!(filtered.len(), 1);
    assert_eq!(
        filtered[0]["id"],
        json!("e8611ab8-c189-46e8-94e1-60213ab1f814")
    );

    let (status, one) = get(
        &t,
        &format!("/roleManagement/directory/roleDefinitions/{GLOBAL_ADMIN}"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(one["id"], json!(GLOBAL_ADMIN));
    assert!(one["rolePermissions"][0]["allowedResourceActions"].is_array());

    let (status, missing) = get(
        &t,
        "/roleManagement/directory/roleDefinitions/00000000-0000-0000-0000-00000000beef",
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(error_code(&missing), "Request_ResourceNotFound");
    t.assert_no_spec_violations().await;
}

#[tokio::test]
async fn direct_role_assignment_create_filter_get_duplicate_delete() {
    let t = TestTenant::start().await;
    let path = "/roleManagement/directory/roleAssignments";
    let body = json!({
        "principalId": HELPDESK_SP,
        "roleDefinitionId": SECURITY_READER,
        "directoryScopeId": "/"
    });
    let (status, created) = post(&t, path, &body).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["id"].as_str().expect("id").to_owned();
    assert_eq!(created["principalId"], json!(HELPDESK_SP));
    assert_eq!(created["roleDefinitionId"], json!(SECURITY_READER));

    let by_principal = list(
        &t,
        &format!("{path}?{}", filter("principalId", HELPDESK_SP)),
    )
    .await;
    assert_eq!(by_principal.len(), 1, "{by_principal:?}");
    assert_eq!(by_principal[0]["id"], json!(id));
    let by_role = list(
        &t,
        &format!("{path}?{}", filter("roleDefinitionId", SECURITY_READER)),
    )
    .await;
    assert!(by_role.iter().any(|a| a["id"] == json!(id)));
    let other_role = list(
        &t,
        &format!("{path}?{}", filter("roleDefinitionId", GLOBAL_ADMIN)),
    )
    .await;
    assert!(other_role.iter().all(|a| a["id"] != json!(id)));

    let (status, fetched) = get(&t, &format!("{path}/{id}?$expand=principal")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(fetched["principal"]["id"], json!(HELPDESK_SP));

    let (status, duplicate) = post(&t, path, &body).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error_code(&duplicate), "Request_BadRequest");
    assert!(duplicate["error"]["message"]
        .as_str()
        .unwrap()
        .contains("conflicting object"));

    let deleted = t
        .graph(Method::DELETE, &format!("{path}/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    let (status, _) = get(&t, &format!("{path}/{id}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let again = t
        .graph(Method::DELETE, &format!("{path}/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::NOT_FOUND);
    t.assert_no_spec_violations().await;
}

#[tokio::test]
async fn direct_role_assignment_needs_an_existing_principal_and_role() {
    let t = TestTenant::start().await;
    let path = "/roleManagement/directory/roleAssignments";
    let ghost = "9d9d9d9d-0000-4000-8000-000000000001";
    let (status, body) = post(
        &t,
        path,
        &json!({"principalId": ghost, "roleDefinitionId": GLOBAL_ADMIN, "directoryScopeId": "/"}),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(error_code(&body), "Request_ResourceNotFound");
    assert!(body["error"]["message"].as_str().unwrap().contains(ghost));

    let (status, body) = post(
        &t,
        path,
        &json!({"principalId": HELPDESK_SP, "roleDefinitionId": ghost, "directoryScopeId": "/"}),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
}

#[tokio::test]
async fn permanent_assignment_request_provisions_after_the_delay_and_is_removed_after_it() {
    let t = TestTenant::start().await;
    t.set_settings(json!({"pim.provisioning_delay_ms": 4000}))
        .await;
    let by_principal = filter("principalId", HELPDESK_SP);
    let schedules = format!("/roleManagement/directory/roleAssignmentSchedules?{by_principal}");
    let instances =
        format!("/roleManagement/directory/roleAssignmentScheduleInstances?{by_principal}");
    let assignments = format!("/roleManagement/directory/roleAssignments?{by_principal}");

    let (status, request) = post(
        &t,
        REQUESTS,
        &assign_body(HELPDESK_SP, GLOBAL_ADMIN, json!({"type": "noExpiration"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{request}");
    assert_eq!(request["status"], json!("PendingProvisioning"));
    assert_eq!(request["action"], json!("adminAssign"));
    assert_eq!(
        request["scheduleInfo"]["expiration"]["type"],
        json!("noExpiration")
    );
    let request_id = request["id"].as_str().unwrap().to_owned();

    // Before provisioning nothing else shows the assignment.
    assert!(list(&t, &schedules).await.is_empty());
    assert!(list(&t, &instances).await.is_empty());
    assert!(list(&t, &assignments).await.is_empty());

    let provisioned = wait_for_request_status(&t, &request_id, "Provisioned").await;
    assert!(provisioned["completedDateTime"].is_string());

    let schedule_list = list(&t, &schedules).await;
    assert_eq!(schedule_list.len(), 1, "{schedule_list:?}");
    let schedule = &schedule_list[0];
    assert_eq!(schedule["id"], request["targetScheduleId"]);
    assert_eq!(schedule["roleDefinitionId"], json!(GLOBAL_ADMIN));
    assert_eq!(schedule["assignmentType"], json!("Assigned"));
    assert_eq!(schedule["memberType"], json!("Direct"));
    assert_eq!(schedule["status"], json!("Provisioned"));
    assert_eq!(schedule["createdUsing"], json!(request_id));
    let (status, by_id) = get(
        &t,
        &format!(
            "/roleManagement/directory/roleAssignmentSchedules/{}",
            schedule["id"].as_str().unwrap()
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(by_id["id"], schedule["id"]);

    let instance_list = list(&t, &instances).await;
    assert_eq!(instance_list.len(), 1);
    assert_eq!(instance_list[0]["endDateTime"], Value::Null, "permanent");
    assert!(instance_list[0]["startDateTime"].is_string());
    let assignment_list = list(&t, &assignments).await;
    assert_eq!(assignment_list.len(), 1);
    assert_eq!(assignment_list[0]["id"], instance_list[0]["id"]);

    // The principal already holds the role: a second request conflicts.
    let (status, duplicate) = post(
        &t,
        REQUESTS,
        &assign_body(HELPDESK_SP, GLOBAL_ADMIN, json!({"type": "noExpiration"})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error_code(&duplicate), "RoleAssignmentExists");
    assert_eq!(
        duplicate["error"]["message"],
        json!("The Role assignment already exists.")
    );

    // adminRemove: still visible until the removal is provisioned.
    let (status, removal) = post(&t, REQUESTS, &remove_body(HELPDESK_SP, GLOBAL_ADMIN)).await;
    assert_eq!(status, StatusCode::CREATED, "{removal}");
    assert_eq!(removal["status"], json!("PendingRevocation"));
    assert_eq!(list(&t, &instances).await.len(), 1);
    wait_for_request_status(&t, removal["id"].as_str().unwrap(), "Revoked").await;
    assert!(list(&t, &schedules).await.is_empty());
    assert!(list(&t, &instances).await.is_empty());
    assert!(list(&t, &assignments).await.is_empty());

    let (status, gone) = post(&t, REQUESTS, &remove_body(HELPDESK_SP, GLOBAL_ADMIN)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error_code(&gone), "RoleAssignmentDoesNotExist");

    // Both requests stay in the log, filterable by principal.
    let logged = list(&t, &format!("{REQUESTS}?{by_principal}")).await;
    assert_eq!(logged.len(), 2);
    t.assert_no_spec_violations().await;
}

#[tokio::test]
async fn removing_an_assignment_that_does_not_exist_fails() {
    let t = TestTenant::start().await;
    let (status, body) = post(&t, REQUESTS, &remove_body(HELPDESK_SP, SECURITY_READER)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error_code(&body), "RoleAssignmentDoesNotExist");
    let mut update = assign_body(
        HELPDESK_SP,
        SECURITY_READER,
        json!({"type": "noExpiration"}),
    );
    update["action"] = json!("adminUpdate");
    let (status, body) = post(&t, REQUESTS, &update).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error_code(&body), "RoleAssignmentDoesNotExist");
}

#[tokio::test]
async fn forbid_permanent_seed_rejects_permanent_and_too_long_assignments() {
    let t = TestTenant::start_seed("forbid-permanent").await;
    t.set_settings(json!({"pim.provisioning_delay_ms": 0}))
        .await;
    let (status, body) = post(
        &t,
        REQUESTS,
        &assign_body(HELPDESK_SP, GLOBAL_ADMIN, json!({"type": "noExpiration"})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        error_code(&body),
        "RoleAssignmentRequestPolicyValidationFailed"
    );
    assert_eq!(
        body["error"]["message"],
        json!("The following policy rules failed: [\"ExpirationRule\"]")
    );
    let (status, _) = post(
        &t,
        REQUESTS,
        &assign_body(
            HELPDESK_SP,
            GLOBAL_ADMIN,
            json!({"type": "afterDuration", "duration": "P365D"}),
        ),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "longer than maximumDuration P180D"
    );

    let (status, ok) = post(
        &t,
        REQUESTS,
        &assign_body(
            HELPDESK_SP,
            GLOBAL_ADMIN,
            json!({"type": "afterDuration", "duration": "P30D"}),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{ok}");
    wait_for_request_status(&t, ok["id"].as_str().unwrap(), "Provisioned").await;
    let instances = list(
        &t,
        &format!(
            "/roleManagement/directory/roleAssignmentScheduleInstances?{}",
            filter("principalId", HELPDESK_SP)
        ),
    )
    .await;
    assert_eq!(instances.len(), 1);
    assert!(instances[0]["endDateTime"].is_string(), "time-bound");
    t.assert_no_spec_violations().await;
}

#[tokio::test]
async fn schedule_requests_cannot_be_deleted_or_patched() {
    let t = TestTenant::start().await;
    let (status, request) = post(
        &t,
        REQUESTS,
        &assign_body(
            HELPDESK_SP,
            SECURITY_READER,
            json!({"type": "noExpiration"}),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let path = format!("{REQUESTS}/{}", request["id"].as_str().unwrap());
    for method in [Method::DELETE, Method::PATCH] {
        let response = t
            .graph(method.clone(), &path)
            .json(&json!({"justification": "changed"}))
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            StatusCode::METHOD_NOT_ALLOWED,
            "{method}"
        );
        let body = json_body(response).await;
        assert_eq!(error_code(&body), "Request_BadRequest");
    }
    let (status, still_there) = get(&t, &path).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        still_there["justification"],
        json!("Emergency access account")
    );
}

#[tokio::test]
async fn validation_only_request_creates_nothing() {
    let t = TestTenant::start().await;
    t.set_settings(json!({"pim.provisioning_delay_ms": 0}))
        .await;
    let mut body = assign_body(HELPDESK_SP, GLOBAL_ADMIN, json!({"type": "noExpiration"}));
    body["isValidationOnly"] = json!(true);
    let (status, answer) = post(&t, REQUESTS, &body).await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    assert_eq!(answer["isValidationOnly"], json!(true));
    let by_principal = filter("principalId", HELPDESK_SP);
    assert!(list(&t, &format!("{REQUESTS}?{by_principal}"))
        .await
        .is_empty());
    assert!(list(
        &t,
        &format!("/roleManagement/directory/roleAssignmentSchedules?{by_principal}")
    )
    .await
    .is_empty());
    let (status, _) = get(
        &t,
        &format!("{REQUESTS}/{}", answer["id"].as_str().unwrap()),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // A real request afterwards is not a duplicate of the validation.
    body["isValidationOnly"] = json!(false);
    let (status, _) = post(&t, REQUESTS, &body).await;
    assert_eq!(status, StatusCode::CREATED);
}

#[tokio::test]
async fn policy_assignments_need_the_scope_filter_and_expand_to_rules() {
    let t = TestTenant::start().await;
    let path = "/policies/roleManagementPolicyAssignments";
    for query in [
        "",
        "?$filter=scopeId%20eq%20'/'",
        "?$filter=roleDefinitionId%20eq%20'x'",
    ] {
        let (status, body) = get(&t, &format!("{path}{query}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {body}");
    }

    let scope = "$filter=scopeId%20eq%20'/'%20and%20scopeType%20eq%20'DirectoryRole'";
    let all = list(&t, &format!("{path}?{scope}")).await;
    assert!(all.len() > 1, "one policy per role");
    let one = list(
        &t,
        &format!(
            "{path}?{scope}%20and%20roleDefinitionId%20eq%20'{GLOBAL_ADMIN}'&$expand=policy($expand=rules)"
        ),
    )
    .await;
    assert_eq!(one.len(), 1);
    let assignment = &one[0];
    let policy_id = assignment["policyId"].as_str().unwrap().to_owned();
    assert_eq!(
        assignment["id"],
        json!(format!("{policy_id}_{GLOBAL_ADMIN}"))
    );
    assert_eq!(assignment["scopeType"], json!("DirectoryRole"));
    let rules = assignment["policy"]["rules"]
        .as_array()
        .expect("rules expanded");
    let expiration = rules
        .iter()
        .find(|r| r["id"] == json!("Expiration_Admin_Assignment"))
        .expect("admin assignment expiration rule");
    assert_eq!(
        expiration["@odata.type"],
        json!("#microsoft.graph.unifiedRoleManagementPolicyExpirationRule")
    );
    assert_eq!(expiration["isExpirationRequired"], json!(false));
    assert_eq!(expiration["target"]["level"], json!("Assignment"));

    // Older examples say `Directory`; the same assignments answer.
    let legacy = list(
        &t,
        &format!("{path}?$filter=scopeId%20eq%20'/'%20and%20scopeType%20eq%20'Directory'"),
    )
    .await;
    assert_eq!(legacy.len(), all.len());

    let (status, policy) = get(
        &t,
        &format!("/policies/roleManagementPolicies/{policy_id}?$expand=rules"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(policy["id"], json!(policy_id));
    assert_eq!(policy["rules"].as_array().unwrap().len(), rules.len());
    let rule_list = list(
        &t,
        &format!("/policies/roleManagementPolicies/{policy_id}/rules"),
    )
    .await;
    assert_eq!(rule_list.len(), rules.len());
    let (status, rule) = get(
        &t,
        &format!("/policies/roleManagementPolicies/{policy_id}/rules/Expiration_Admin_Assignment"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(rule["maximumDuration"], json!("P180D"));
    t.assert_no_spec_violations().await;
}

#[tokio::test]
async fn changing_the_expiration_rule_changes_what_requests_may_do() {
    let t = TestTenant::start().await;
    let scope = "$filter=scopeId%20eq%20'/'%20and%20scopeType%20eq%20'DirectoryRole'";
    let one = list(
        &t,
        &format!(
            "/policies/roleManagementPolicyAssignments?{scope}%20and%20roleDefinitionId%20eq%20'{GLOBAL_ADMIN}'"
        ),
    )
    .await;
    let policy_id = one[0]["policyId"].as_str().unwrap();
    let patched = t
        .admin(
            Method::PATCH,
            &format!("/pim/policies/{policy_id}/rules/Expiration_Admin_Assignment"),
        )
        .json(&json!({"isExpirationRequired": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(patched.status(), StatusCode::NO_CONTENT);
    let (status, body) = post(
        &t,
        REQUESTS,
        &assign_body(HELPDESK_SP, GLOBAL_ADMIN, json!({"type": "noExpiration"})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        error_code(&body),
        "RoleAssignmentRequestPolicyValidationFailed"
    );
}

#[tokio::test]
async fn callers_without_role_management_permissions_are_denied() {
    let t = TestTenant::start().await;
    let response = t
        .token_request(&[
            ("grant_type", "client_credentials"),
            ("client_id", HELPDESK_APP),
            ("client_secret", HELPDESK_SECRET),
            ("scope", "https://graph.microsoft.com/.default"),
        ])
        .await;
    let token = json_body(response).await["access_token"]
        .as_str()
        .expect("helpdesk app gets a token")
        .to_owned();
    for (method, path) in [
        (Method::GET, "/roleManagement/directory/roleDefinitions"),
        (Method::POST, REQUESTS),
        (
            Method::GET,
            "/policies/roleManagementPolicyAssignments?$filter=scopeId%20eq%20'/'%20and%20scopeType%20eq%20'DirectoryRole'",
        ),
    ] {
        let response = t
            .http
            .request(method.clone(), t.url(&format!("/v1.0{path}")))
            .bearer_auth(&token)
            .json(&assign_body(HELPDESK_SP, GLOBAL_ADMIN, json!({"type": "noExpiration"})))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{method} {path}");
        let body = json_body(response).await;
        assert_eq!(error_code(&body), "Authorization_RequestDenied");
    }
}

/// A user created moments ago is not yet usable as a principal (facts §2 "consistency"):
/// PIM answers 404 until the directory has replicated it, and a caller that retries wins.
#[tokio::test]
async fn a_principal_that_has_not_replicated_yet_is_not_found_until_it_has() {
    let t = TestTenant::start().await;
    t.set_settings(json!({"graph.replication_lag_ms": 1500, "pim.provisioning_delay_ms": 0}))
        .await;
    let (status, user) = post(
        &t,
        "/users",
        &json!({
            "accountEnabled": true,
            "displayName": "Emergency Access 01",
            "mailNickname": "ea01",
            "userPrincipalName": "ea01@contoso.onmicrosoft.com",
            "passwordProfile": {"password": "Tr0ub4dor&3-horse-battery", "forceChangePasswordNextSignIn": false}
        }),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{user}");
    let user_id = user["id"].as_str().unwrap().to_owned();
    let body = assign_body(&user_id, GLOBAL_ADMIN, json!({"type": "noExpiration"}));

    let (status, first) = post(&t, REQUESTS, &body).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{first}");
    assert_eq!(error_code(&first), "Request_ResourceNotFound");

    let mut attempts = 1;
    let accepted = loop {
        tokio::time::sleep(Duration::from_millis(250)).await;
        attempts += 1;
        let (status, answer) = post(&t, REQUESTS, &body).await;
        if status == StatusCode::CREATED {
            break answer;
        }
        assert_eq!(status, StatusCode::NOT_FOUND, "{answer}");
        assert!(attempts < 60, "the user never replicated");
    };
    wait_for_request_status(&t, accepted["id"].as_str().unwrap(), "Provisioned").await;
    // The request log shows the rejected attempts before the accepted one.
    let posts = t
        .requests(&format!("?method=POST&path=/v1.0{REQUESTS}"))
        .await;
    assert_eq!(posts.len(), attempts, "{posts:?}");
}

#[tokio::test]
async fn the_seeded_emergency_account_holds_global_administrator() {
    let t = TestTenant::start().await;
    let legacy = "5d2c6f0e-3b1a-4c8e-9f7d-0a1b2c3d4e05";
    let holders = list(
        &t,
        &format!(
            "/roleManagement/directory/roleAssignments?{}&$expand=principal",
            filter("roleDefinitionId", GLOBAL_ADMIN)
        ),
    )
    .await;
    let legacy_assignment = holders
        .iter()
        .find(|a| a["principalId"] == json!(legacy))
        .expect("emergency-legacy is a Global Administrator");
    assert_eq!(
        legacy_assignment["principal"]["userPrincipalName"],
        json!("emergency-legacy@contoso.onmicrosoft.com")
    );
    let instances = list(
        &t,
        &format!(
            "/roleManagement/directory/roleAssignmentScheduleInstances?{}",
            filter("principalId", legacy)
        ),
    )
    .await;
    assert_eq!(instances.len(), 1);
    assert_eq!(instances[0]["endDateTime"], Value::Null);
}

/// The directory's privileged-user protection reads PIM: once a Global Administrator
/// assignment is provisioned, an app with only `User.ReadWrite.All` may no longer change the
/// user's sensitive properties.
#[tokio::test]
async fn a_provisioned_global_administrator_is_protected_from_user_administrators_apps() {
    let t = TestTenant::start().await;
    t.set_settings(json!({"pim.provisioning_delay_ms": 0}))
        .await;
    let erin = "5d2c6f0e-3b1a-4c8e-9f7d-0a1b2c3d4e06";
    let helpdesk_token = json_body(
        t.token_request(&[
            ("grant_type", "client_credentials"),
            ("client_id", HELPDESK_APP),
            ("client_secret", HELPDESK_SECRET),
            ("scope", "https://graph.microsoft.com/.default"),
        ])
        .await,
    )
    .await["access_token"]
        .as_str()
        .expect("token")
        .to_owned();
    let disable = || {
        t.http
            .patch(t.url(&format!("/v1.0/users/{erin}")))
            .bearer_auth(&helpdesk_token)
            .json(&json!({"accountEnabled": true}))
            .send()
    };
    assert_eq!(disable().await.unwrap().status(), StatusCode::NO_CONTENT);

    let (status, request) = post(
        &t,
        REQUESTS,
        &assign_body(erin, GLOBAL_ADMIN, json!({"type": "noExpiration"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{request}");
    wait_for_request_status(&t, request["id"].as_str().unwrap(), "Provisioned").await;

    let denied = disable().await.unwrap();
    assert_eq!(denied.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        error_code(&json_body(denied).await),
        "Authorization_RequestDenied"
    );
}
