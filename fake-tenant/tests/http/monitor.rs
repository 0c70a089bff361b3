//! The monitoring pipeline over real HTTP: simulated sign-ins and Graph directory changes
//! flow through diagnostic settings into workspace tables, scheduled query rules evaluate over
//! them on the emulated clock, and action groups record one notification per receiver.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::common::{json_body, TestTenant};

const SUB: &str = "eeb0c733-9a1c-437b-b310-e18599b1b281";
const RG: &str = "rg-breakglass-monitoring";
const WS: &str = "law-breakglass";
const PASSWORD: &str = "Corr3ct-Horse-Battery!";

fn rg_path() -> String {
    format!("/subscriptions/{SUB}/resourceGroups/{RG}")
}

fn workspace_id() -> String {
    format!(
        "{}/providers/Microsoft.OperationalInsights/workspaces/{WS}",
        rg_path()
    )
}

async fn send(
    t: &TestTenant,
    method: Method,
    path: &str,
    body: Option<&Value>,
) -> (StatusCode, Value) {
    let mut request = t.arm(method, path);
    if let Some(body) = body {
        request = request.json(body);
    }
    let response = request.send().await.expect("ARM reachable");
    let status = response.status();
    let text = response.text().await.expect("body");
    let body = serde_json::from_str(&text).unwrap_or(Value::Null);
    (status, body)
}

async fn admin(t: &TestTenant, method: Method, path: &str, body: Option<Value>) -> Value {
    let mut request = t.admin(method, path);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("admin reachable");
    assert!(
        response.status().is_success(),
        "{path}: {}",
        response.status()
    );
    json_body(response).await
}

/// A cloud-only account with a known password; returns its object id.
async fn create_account(t: &TestTenant, upn: &str) -> String {
    let alias = upn.split('@').next().unwrap();
    let response = t
        .graph(Method::POST, "/users")
        .json(&json!({
            "accountEnabled": true,
            "displayName": format!("Emergency {alias}"),
            "mailNickname": alias,
            "userPrincipalName": upn,
            "passwordProfile": {"password": PASSWORD, "forceChangePasswordNextSignIn": false},
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    json_body(response).await["id"].as_str().unwrap().to_owned()
}

/// Exports the categories to the seeded workspace.
async fn export(t: &TestTenant, name: &str, categories: &[&str]) {
    let logs: Vec<Value> = categories
        .iter()
        .map(|c| json!({"category": c, "enabled": true}))
        .collect();
    let (status, body) = send(
        t,
        Method::PUT,
        &format!("/providers/microsoft.aadiam/diagnosticSettings/{name}?api-version=2017-04-01"),
        Some(&json!({"properties": {"workspaceId": workspace_id(), "logs": logs}})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
}

async fn sign_in(t: &TestTenant, body: Value) -> Value {
    admin(t, Method::POST, "/arm/signins", Some(body)).await
}

async fn action_group(t: &TestTenant, name: &str, enabled: bool) -> String {
    let (status, body) = send(
        t,
        Method::PUT,
        &format!(
            "{}/providers/Microsoft.Insights/actionGroups/{name}?api-version=2023-01-01",
            rg_path()
        ),
        Some(&json!({
            "location": "Global",
            "properties": {
                "groupShortName": "bg-alerts",
                "enabled": enabled,
                "emailReceivers": [{"name": "soc-mail", "emailAddress": "soc@contoso.com", "useCommonAlertSchema": true}],
                "smsReceivers": [{"name": "oncall-sms", "countryCode": "1", "phoneNumber": "5551234567"}],
                "webhookReceivers": [{"name": "pager", "serviceUri": "https://pager.contoso.com/hook"}],
            },
        })),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    body["id"].as_str().unwrap().to_owned()
}

fn rule_body(query: &str, group: &str, auto_mitigate: bool, dimension: Option<&str>) -> Value {
    let dimensions: Vec<Value> = dimension
        .map(|d| vec![json!({"name": d, "operator": "Include", "values": ["*"]})])
        .unwrap_or_default();
    json!({
        "location": "westeurope",
        "kind": "LogAlert",
        "properties": {
            "displayName": "Break-glass account signed in",
            "severity": 0,
            "enabled": true,
            "evaluationFrequency": "PT5M",
            "windowSize": "PT5M",
            "scopes": [workspace_id()],
            "autoMitigate": auto_mitigate,
            "criteria": {"allOf": [{
                "query": query,
                "timeAggregation": "Count",
                "operator": "GreaterThan",
                "threshold": 0,
                "dimensions": dimensions,
            }]},
            "actions": {"actionGroups": [group]},
        },
    })
}

async fn put_rule(t: &TestTenant, name: &str, body: &Value) -> (StatusCode, Value) {
    send(
        t,
        Method::PUT,
        &format!(
            "{}/providers/Microsoft.Insights/scheduledQueryRules/{name}?api-version=2023-12-01",
            rg_path()
        ),
        Some(body),
    )
    .await
}

async fn advance(t: &TestTenant, seconds: i64) {
    admin(
        t,
        Method::POST,
        "/clock/advance",
        Some(json!({"seconds": seconds})),
    )
    .await;
}

async fn notifications(t: &TestTenant) -> Vec<Value> {
    admin(t, Method::GET, "/arm/notifications", None).await["value"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// The provider-style query: both sign-in tables, object id or UPN, one series per account.
fn signin_query(ids: &[&str], upns: &[&str]) -> String {
    let quote = |xs: &[&str]| {
        xs.iter()
            .map(|x| format!("\"{x}\""))
            .collect::<Vec<_>>()
            .join(", ")
    };
    format!(
        "union isfuzzy=true SigninLogs, AADNonInteractiveUserSignInLogs\n\
         | where UserId in~ ({}) or UserPrincipalName in~ ({})\n\
         | summarize count() by UserPrincipalName",
        quote(ids),
        quote(upns)
    )
}

/// Export, one account, an action group and the sign-in rule; tables exist after a first
/// sign-in of someone else.
struct Setup {
    t: TestTenant,
    account: String,
    group: String,
}

async fn setup(auto_mitigate: bool) -> Setup {
    let t = TestTenant::start().await;
    export(
        &t,
        "entra-to-law",
        &["SignInLogs", "NonInteractiveUserSignInLogs", "AuditLogs"],
    )
    .await;
    // Tables are created by the first ingestion: a sign-in of another user, both kinds.
    sign_in(&t, json!({"userPrincipalName": "alice@contoso.com"})).await;
    sign_in(
        &t,
        json!({"userPrincipalName": "alice@contoso.com", "interactive": false}),
    )
    .await;
    let account = create_account(&t, "bg-01@contoso.onmicrosoft.com").await;
    let group = action_group(&t, "ag-breakglass", true).await;
    let query = signin_query(&[&account], &["bg-01@contoso.onmicrosoft.com"]);
    let (status, body) = put_rule(
        &t,
        "bg-signin",
        &rule_body(&query, &group, auto_mitigate, Some("UserPrincipalName")),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    Setup { t, account, group }
}

#[tokio::test]
async fn a_sign_in_notifies_every_receiver_within_one_evaluation_period() {
    let s = setup(false).await;
    sign_in(
        &s.t,
        json!({"userPrincipalName": "bg-01@contoso.onmicrosoft.com"}),
    )
    .await;
    assert!(
        notifications(&s.t).await.is_empty(),
        "no evaluation has run yet"
    );
    advance(&s.t, 300).await;
    let sent = notifications(&s.t).await;
    let kinds: Vec<&str> = sent
        .iter()
        .map(|n| n["receiverKind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["email", "sms", "webhook"], "{sent:?}");
    let email = &sent[0];
    assert_eq!(email["address"], "soc@contoso.com");
    assert_eq!(sent[1]["address"], "+1 5551234567");
    assert_eq!(email["severity"], "Sev0");
    assert_eq!(email["monitorCondition"], "Fired");
    assert_eq!(email["delivered"], true);
    assert_eq!(email["actionGroupId"], json!(s.group));
    assert!(email["ruleId"]
        .as_str()
        .unwrap()
        .ends_with("/scheduledqueryrules/bg-signin"));
    assert_eq!(
        email["dimensions"],
        json!([{"name": "UserPrincipalName", "value": "bg-01@contoso.onmicrosoft.com"}])
    );
    // The sign-in is out of the window at the next evaluation: a stateless rule stays quiet.
    advance(&s.t, 300).await;
    assert_eq!(notifications(&s.t).await.len(), 3);
    s.t.assert_no_spec_violations().await;
}

#[tokio::test]
async fn another_users_sign_in_notifies_no_one() {
    let s = setup(false).await;
    sign_in(&s.t, json!({"userPrincipalName": "erin@contoso.com"})).await;
    advance(&s.t, 600).await;
    assert!(notifications(&s.t).await.is_empty());
    let alerts = admin(&s.t, Method::GET, "/arm/alerts", None).await;
    assert_eq!(alerts["value"], json!([]));
    assert_eq!(alerts["evaluationErrors"], json!([]));
}

#[tokio::test]
async fn the_upn_matches_case_insensitively_without_the_object_id() {
    let s = setup(false).await;
    // A rule that only knows the UPN, in lower case; the sign-in name arrives in upper case.
    let query = "SigninLogs | where UserPrincipalName =~ 'bg-01@contoso.onmicrosoft.com'";
    let (status, body) = put_rule(&s.t, "bg-upn", &rule_body(query, &s.group, false, None)).await;
    assert_eq!(status, 201, "{body}");
    let exact = "SigninLogs | where UserPrincipalName == 'bg-01@contoso.onmicrosoft.com'";
    let (status, body) = put_rule(&s.t, "bg-exact", &rule_body(exact, &s.group, false, None)).await;
    assert_eq!(status, 201, "{body}");
    let answer = sign_in(
        &s.t,
        json!({"userPrincipalName": "BG-01@CONTOSO.ONMICROSOFT.COM"}),
    )
    .await;
    assert_eq!(answer["userId"], json!(s.account), "the directory user");
    advance(&s.t, 300).await;
    let rules: Vec<String> = notifications(&s.t)
        .await
        .iter()
        .map(|n| n["ruleName"].as_str().unwrap().to_owned())
        .collect();
    assert!(rules.iter().any(|r| r == "bg-upn"), "{rules:?}");
    assert!(
        !rules.iter().any(|r| r == "bg-exact"),
        "== is case-sensitive: {rules:?}"
    );
}

#[tokio::test]
async fn failed_sign_ins_with_a_wrong_password_alert_too() {
    let s = setup(false).await;
    let wrong = sign_in(
        &s.t,
        json!({"userPrincipalName": "bg-01@contoso.onmicrosoft.com", "password": "not-the-password"}),
    )
    .await;
    assert_eq!(wrong["resultType"], "50126");
    let right = sign_in(
        &s.t,
        json!({"userPrincipalName": "bg-01@contoso.onmicrosoft.com", "password": PASSWORD}),
    )
    .await;
    assert_eq!(right["resultType"], "0");
    let rows = admin(
        &s.t,
        Method::GET,
        &format!("/arm/workspaces/{WS}/logs/SigninLogs"),
        None,
    )
    .await;
    let records: Vec<&Value> = rows["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| &r["record"])
        .filter(|r| r["UserId"] == json!(s.account))
        .collect();
    assert_eq!(records.len(), 2);
    assert_eq!(records[0]["ResultType"], "50126");
    assert_eq!(records[0]["Status"]["errorCode"], 50126);
    assert_eq!(records[0]["IsInteractive"], true);
    assert!(
        !rows.to_string().contains(PASSWORD),
        "passwords never stored"
    );
    advance(&s.t, 300).await;
    let sent = notifications(&s.t).await;
    assert_eq!(
        sent.len(),
        3,
        "one alert for the account's two sign-ins: {sent:?}"
    );
}

#[tokio::test]
async fn non_interactive_sign_ins_land_in_their_own_table_and_alert() {
    let s = setup(false).await;
    let answer = sign_in(&s.t, json!({"userId": s.account, "interactive": false})).await;
    assert_eq!(answer["category"], "NonInteractiveUserSignInLogs");
    assert_eq!(
        answer["deliveredTo"][0]["table"],
        "AADNonInteractiveUserSignInLogs"
    );
    assert_eq!(answer["userPrincipalName"], "bg-01@contoso.onmicrosoft.com");
    advance(&s.t, 300).await;
    assert_eq!(notifications(&s.t).await.len(), 3);
}

#[tokio::test]
async fn one_alert_per_account_and_sms_rate_limited_per_number() {
    let s = setup(false).await;
    let second = create_account(&s.t, "bg-02@contoso.onmicrosoft.com").await;
    let query = signin_query(
        &[&s.account, &second],
        &[
            "bg-01@contoso.onmicrosoft.com",
            "bg-02@contoso.onmicrosoft.com",
        ],
    );
    let (status, body) = put_rule(
        &s.t,
        "bg-signin",
        &rule_body(&query, &s.group, false, Some("UserPrincipalName")),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    sign_in(&s.t, json!({"userId": s.account})).await;
    sign_in(&s.t, json!({"userId": second, "interactive": false})).await;
    advance(&s.t, 300).await;
    let sent = notifications(&s.t).await;
    let per = |kind: &str, account: &str| {
        sent.iter()
            .filter(|n| n["receiverKind"] == kind && n["dimensions"][0]["value"] == account)
            .collect::<Vec<_>>()
    };
    for account in [
        "bg-01@contoso.onmicrosoft.com",
        "bg-02@contoso.onmicrosoft.com",
    ] {
        assert_eq!(per("email", account).len(), 1, "{sent:?}");
        assert_eq!(per("webhook", account).len(), 1, "{sent:?}");
        assert_eq!(per("sms", account).len(), 1, "{sent:?}");
    }
    // "No more than one SMS every 5 minutes" per number: the second account's SMS is held back.
    let sms: Vec<&Value> = sent.iter().filter(|n| n["receiverKind"] == "sms").collect();
    assert_eq!(sms[0]["delivered"], true);
    assert_eq!(sms[1]["delivered"], false);
    assert_eq!(sms[1]["suppressedReason"], "RateLimited");
    let alerts = admin(&s.t, Method::GET, "/arm/alerts", None).await;
    assert_eq!(alerts["value"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn a_stateful_alert_fires_once_and_resolves_by_email_and_webhook() {
    let s = setup(true).await;
    sign_in(&s.t, json!({"userId": s.account})).await;
    advance(&s.t, 300).await;
    assert_eq!(notifications(&s.t).await.len(), 3);
    // Still signing in: the alert is already fired, no new notifications.
    sign_in(&s.t, json!({"userId": s.account})).await;
    advance(&s.t, 300).await;
    assert_eq!(notifications(&s.t).await.len(), 3);
    // Three quiet 5-minute periods resolve it ("Alerts and state").
    advance(&s.t, 900).await;
    let sent = notifications(&s.t).await;
    let resolved: Vec<&str> = sent
        .iter()
        .filter(|n| n["monitorCondition"] == "Resolved")
        .map(|n| n["receiverKind"].as_str().unwrap())
        .collect();
    assert_eq!(resolved, ["email", "webhook"], "{sent:?}");
    let alerts = admin(&s.t, Method::GET, "/arm/alerts", None).await;
    assert_eq!(alerts["value"][0]["monitorCondition"], "Resolved");
}

#[tokio::test]
async fn disabled_rules_and_action_groups_send_nothing() {
    let s = setup(false).await;
    let quiet_group = action_group(&s.t, "ag-disabled", false).await;
    let query = signin_query(&[&s.account], &[]);
    let (status, body) = put_rule(
        &s.t,
        "bg-quiet",
        &rule_body(&query, &quiet_group, false, None),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let (status, _) = send(
        &s.t,
        Method::PATCH,
        &format!(
            "{}/providers/Microsoft.Insights/scheduledQueryRules/bg-signin?api-version=2023-12-01",
            rg_path()
        ),
        Some(&json!({"properties": {"enabled": false}})),
    )
    .await;
    assert_eq!(status, 200);
    sign_in(&s.t, json!({"userId": s.account})).await;
    advance(&s.t, 300).await;
    assert!(notifications(&s.t).await.is_empty());
    let alerts = admin(&s.t, Method::GET, "/arm/alerts", None).await;
    let fired: Vec<&str> = alerts["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["ruleName"].as_str().unwrap())
        .collect();
    assert_eq!(
        fired,
        ["bg-quiet"],
        "the enabled rule fired into a disabled group"
    );
}

#[tokio::test]
async fn a_tamper_operation_on_the_account_notifies() {
    let s = setup(false).await;
    let query = format!(
        "AuditLogs\n\
         | where OperationName in~ ('Reset password', 'Update user', 'Disable account', 'Delete user', \
           'Admin deleted security info', 'Remove member from role', 'Update Conditional Access policy', \
           'Delete Conditional Access policy')\n\
         | where TargetResources has '{}'\n\
         | extend Target = tostring(TargetResources[0].id)\n\
         | summarize count() by Target, OperationName",
        s.account
    );
    let (status, body) = put_rule(
        &s.t,
        "bg-tamper",
        &rule_body(&query, &s.group, false, Some("OperationName")),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let response = s
        .t
        .graph(Method::PATCH, &format!("/users/{}", s.account))
        .json(&json!({"passwordProfile": {"password": "An0ther-Passw0rd!", "forceChangePasswordNextSignIn": false}}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    advance(&s.t, 300).await;
    let sent = notifications(&s.t).await;
    assert_eq!(sent.len(), 3, "{sent:?}");
    assert_eq!(sent[0]["ruleName"], "bg-tamper");
    assert_eq!(
        sent[0]["dimensions"],
        json!([{"name": "OperationName", "value": "Reset password"}])
    );
}

#[tokio::test]
async fn directory_changes_write_the_documented_audit_activities() {
    let t = TestTenant::start().await;
    export(&t, "audit-to-law", &["AuditLogs"]).await;
    let account = create_account(&t, "bg-03@contoso.onmicrosoft.com").await;
    let patch = |body: Value| {
        let t = &t;
        let account = account.clone();
        async move {
            let r = t
                .graph(Method::PATCH, &format!("/users/{account}"))
                .json(&body)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 204);
        }
    };
    patch(json!({"displayName": "Break Glass 03"})).await;
    patch(json!({"accountEnabled": false})).await;
    patch(json!({"passwordProfile": {"password": "An0ther-Passw0rd!"}})).await;
    let key = admin(
        &t,
        Method::POST,
        &format!("/directory/users/{account}/fido2"),
        Some(json!({})),
    )
    .await;
    let r = t
        .graph(
            Method::DELETE,
            &format!(
                "/users/{account}/authentication/fido2Methods/{}",
                key["id"].as_str().unwrap()
            ),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        403,
        "the default app lacks UserAuthenticationMethod.ReadWrite.All"
    );
    // CA policy lifecycle.
    let policy = t
        .graph(Method::POST, "/identity/conditionalAccess/policies")
        .json(&json!({
            "displayName": "Block legacy auth (test)",
            "state": "enabledForReportingButNotEnforced",
            "conditions": {"users": {"includeUsers": ["All"]}, "applications": {"includeApplications": ["All"]}, "clientAppTypes": ["exchangeActiveSync", "other"]},
            "grantControls": {"operator": "OR", "builtInControls": ["block"]},
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(policy.status(), 201);
    let policy_id = json_body(policy).await["id"].as_str().unwrap().to_owned();
    let path = format!("/identity/conditionalAccess/policies/{policy_id}");
    let r = t
        .graph(Method::PATCH, &path)
        .json(&json!({"state": "disabled"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let r = t.graph(Method::DELETE, &path).send().await.unwrap();
    assert_eq!(r.status(), 204);
    // Direct role assignment removed.
    let assignment = t
        .graph(Method::POST, "/roleManagement/directory/roleAssignments")
        .json(&json!({"principalId": account, "roleDefinitionId": "62e90394-69f5-4237-9190-012177145e10", "directoryScopeId": "/"}))
        .send()
        .await
        .unwrap();
    assert_eq!(assignment.status(), 201);
    let assignment_id = json_body(assignment).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = t
        .graph(
            Method::DELETE,
            &format!("/roleManagement/directory/roleAssignments/{assignment_id}"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    // Delete, restore, delete, purge.
    for (method, path) in [
        (Method::DELETE, format!("/users/{account}")),
        (
            Method::POST,
            format!("/directory/deletedItems/{account}/restore"),
        ),
        (Method::DELETE, format!("/users/{account}")),
        (Method::DELETE, format!("/directory/deletedItems/{account}")),
    ] {
        let r = t.graph(method, &path).send().await.unwrap();
        assert!(r.status().is_success(), "{path}: {}", r.status());
    }

    let log = admin(&t, Method::GET, "/directory/auditLogs", None).await;
    let activities: Vec<(String, String, String)> = log["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["loggedByService"].as_str().unwrap().to_owned(),
                r["category"].as_str().unwrap().to_owned(),
                r["activityDisplayName"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let expect = |service: &str, category: &str, name: &str| {
        assert!(
            activities.contains(&(service.into(), category.into(), name.into())),
            "{service}/{category}/{name} missing from {activities:?}"
        );
    };
    expect("Core Directory", "UserManagement", "Update user");
    expect("Core Directory", "UserManagement", "Disable account");
    expect("Core Directory", "UserManagement", "Reset password");
    expect(
        "Authentication Methods",
        "UserManagement",
        "User registered security info",
    );
    expect(
        "Device Registration Service",
        "UserManagement",
        "Add FIDO2 security key",
    );
    expect(
        "Conditional Access",
        "Policy",
        "Add Conditional Access policy",
    );
    expect(
        "Conditional Access",
        "Policy",
        "Update Conditional Access policy",
    );
    expect(
        "Conditional Access",
        "Policy",
        "Delete Conditional Access policy",
    );
    expect(
        "Core Directory",
        "RoleManagement",
        "Remove member from role",
    );
    expect("Core Directory", "UserManagement", "Delete user");
    expect("Core Directory", "UserManagement", "Restore user");
    expect("Core Directory", "UserManagement", "Hard Delete user");
    assert!(
        !activities
            .iter()
            .any(|(_, _, n)| n == "Admin deleted security info"),
        "a refused delete is not audited"
    );
    let records = log["value"].as_array().unwrap();
    let reset = records
        .iter()
        .find(|r| r["activityDisplayName"] == "Reset password")
        .unwrap();
    assert_eq!(reset["result"], "success");
    assert_eq!(reset["initiatedBy"]["app"]["appId"], json!(t.client_id));
    assert_eq!(
        reset["initiatedBy"]["app"]["displayName"],
        "terraform-breakglass"
    );
    assert_eq!(reset["targetResources"][0]["id"], json!(account));
    assert_eq!(reset["targetResources"][0]["type"], "User");
    assert_eq!(
        reset["targetResources"][0]["userPrincipalName"],
        "bg-03@contoso.onmicrosoft.com"
    );
    let update = records
        .iter()
        .find(|r| r["activityDisplayName"] == "Update user")
        .unwrap();
    assert_eq!(
        update["targetResources"][0]["modifiedProperties"][0]["displayName"],
        "DisplayName"
    );
    let deleted = records
        .iter()
        .find(|r| r["activityDisplayName"] == "Delete user")
        .unwrap();
    let prefixed = format!("{}bg-03@contoso.onmicrosoft.com", account.replace('-', ""));
    assert_eq!(
        deleted["targetResources"][0]["userPrincipalName"],
        json!(prefixed)
    );
    // Exported as AuditLogs rows; the table appeared with the first record.
    let rows = admin(
        &t,
        Method::GET,
        &format!("/arm/workspaces/{WS}/logs/AuditLogs"),
        None,
    )
    .await;
    let names: Vec<&str> = rows["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["record"]["OperationName"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"Reset password"), "{names:?}");
    assert_eq!(rows["value"][0]["record"]["Type"], "AuditLogs");
    let (status, _) = send(
        &t,
        Method::GET,
        &format!("{}/tables/AuditLogs?api-version=2022-10-01", workspace_id()),
        None,
    )
    .await;
    assert_eq!(status, 200);
    t.assert_no_spec_violations().await;
}

#[tokio::test]
async fn pim_removals_are_audited_when_requested_and_when_done() {
    let t = TestTenant::start().await;
    t.set_settings(json!({"pim.provisioning_delay_ms": 60_000}))
        .await;
    let legacy = "5d2c6f0e-3b1a-4c8e-9f7d-0a1b2c3d4e05";
    let r = t
        .graph(
            Method::POST,
            "/roleManagement/directory/roleAssignmentScheduleRequests",
        )
        .json(&json!({
            "action": "adminRemove",
            "principalId": legacy,
            "roleDefinitionId": "62e90394-69f5-4237-9190-012177145e10",
            "directoryScopeId": "/",
            "justification": "test",
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    let names = |log: &Value| -> Vec<String> {
        log["value"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["activityDisplayName"].as_str().unwrap().to_owned())
            .collect()
    };
    let now = admin(&t, Method::GET, "/directory/auditLogs", None).await;
    assert_eq!(
        names(&now),
        ["Remove member from role in PIM requested (permanent)"]
    );
    assert_eq!(now["value"][0]["loggedByService"], "PIM");
    advance(&t, 61).await;
    let later = admin(&t, Method::GET, "/directory/auditLogs", None).await;
    assert_eq!(
        names(&later),
        [
            "Remove member from role in PIM requested (permanent)",
            "Remove member from role in PIM completed (permanent)",
            "Remove member from role",
        ]
    );
    assert_eq!(
        later["value"][2]["targetResources"][1]["displayName"],
        "Global Administrator"
    );
}

#[tokio::test]
async fn queries_are_validated_like_log_analytics() {
    let s = setup(false).await;
    let check = |query: &str| rule_body(query, &s.group, false, None);
    // Syntax error: Log Analytics' SYN0002 inside the ARM BadRequest message.
    let (status, body) = put_rule(&s.t, "bad", &check("SigninLogs | whre UserId == 'x'")).await;
    assert_eq!(status, 400);
    let inner: Value = serde_json::from_str(body["error"]["message"].as_str().unwrap()).unwrap();
    assert_eq!(inner["error"]["innererror"]["code"], "SyntaxError");
    assert_eq!(
        inner["error"]["innererror"]["innererror"]["code"],
        "SYN0002"
    );
    assert_eq!(inner["error"]["innererror"]["innererror"]["token"], "whre");
    // Unknown column: SEM0100.
    let (status, body) =
        put_rule(&s.t, "bad", &check("SigninLogs | where NoSuchColumn == 1")).await;
    assert_eq!(status, 400);
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("SEM0100"), "{message}");
    assert!(
        message.contains("Failed to resolve scalar expression named 'NoSuchColumn'"),
        "{message}"
    );
    // A fuzzy union needs one existing table; a strict one needs all.
    let (status, body) = put_rule(
        &s.t,
        "fuzzy",
        &check("union isfuzzy=true SigninLogs, AADRiskyUsers | count"),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let (status, _) = put_rule(
        &s.t,
        "strict",
        &check("union SigninLogs, AADRiskyUsers | count"),
    )
    .await;
    assert_eq!(status, 400);
    // skipQueryValidation stores what the service would refuse.
    let mut skipped = check("union SigninLogs, AADRiskyUsers | count");
    skipped["properties"]["skipQueryValidation"] = json!(true);
    let (status, body) = put_rule(&s.t, "strict", &skipped).await;
    assert_eq!(status, 201, "{body}");
    // Dimensions must be result columns.
    let (status, body) = put_rule(
        &s.t,
        "dim",
        &rule_body(
            "SigninLogs | summarize count() by UserId",
            &s.group,
            false,
            Some("UserPrincipalName"),
        ),
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("dimension"),
        "{body}"
    );
    // The skipped rule cannot run (its second table never appears): evaluation errors say so.
    advance(&s.t, 300).await;
    let alerts = admin(&s.t, Method::GET, "/arm/alerts", None).await;
    let errors = alerts["evaluationErrors"].as_array().unwrap();
    assert!(
        errors
            .iter()
            .any(|e| e["ruleId"].as_str().unwrap().ends_with("/strict")),
        "{errors:?}"
    );
}

#[tokio::test]
async fn the_clock_only_moves_forward_through_the_admin_api() {
    let t = TestTenant::start().await;
    let before = admin(&t, Method::GET, "/clock", None).await;
    assert_eq!(before["offsetSeconds"], 0);
    advance(&t, 3600).await;
    let after = admin(&t, Method::GET, "/clock", None).await;
    assert_eq!(after["offsetSeconds"], 3600);
    for bad in [
        json!({"seconds": 0}),
        json!({"seconds": -5}),
        json!({"minutes": 1}),
    ] {
        let r = t
            .admin(Method::POST, "/clock/advance")
            .json(&bad)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{bad}");
    }
    // Log records carry the emulated time.
    export(&t, "to-law", &["SignInLogs"]).await;
    let signed = sign_in(&t, json!({"userPrincipalName": "alice@contoso.com"})).await;
    let stamped = time::OffsetDateTime::parse(
        signed["createdDateTime"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let now = time::OffsetDateTime::now_utc();
    assert!(
        stamped - now > time::Duration::minutes(59),
        "{stamped} vs {now}"
    );
}

#[tokio::test]
async fn an_administrators_passkey_deletion_is_audited() {
    let mut seed = fake_tenant::seed::load("default").unwrap();
    seed["auth"]["applications"][0]["appRoles"]
        .as_array_mut()
        .unwrap()
        .push(json!("UserAuthenticationMethod.ReadWrite.All"));
    let t = TestTenant::start_with(seed).await;
    let account = create_account(&t, "bg-04@contoso.onmicrosoft.com").await;
    let key = admin(
        &t,
        Method::POST,
        &format!("/directory/users/{account}/fido2"),
        Some(json!({})),
    )
    .await;
    let r = t
        .graph(
            Method::DELETE,
            &format!(
                "/users/{account}/authentication/fido2Methods/{}",
                key["id"].as_str().unwrap()
            ),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let log = admin(&t, Method::GET, "/directory/auditLogs", None).await;
    let records = log["value"].as_array().unwrap();
    let find = |name: &str| {
        records
            .iter()
            .find(|r| r["activityDisplayName"] == name)
            .unwrap_or_else(|| panic!("{name} missing: {records:?}"))
    };
    let registered = find("User registered security info");
    assert_eq!(registered["loggedByService"], "Authentication Methods");
    assert_eq!(registered["initiatedBy"]["user"]["id"], json!(account));
    let deleted = find("Admin deleted security info");
    assert_eq!(deleted["category"], "UserManagement");
    assert_eq!(deleted["initiatedBy"]["app"]["appId"], json!(t.client_id));
    assert_eq!(deleted["targetResources"][0]["id"], json!(account));
    assert_eq!(
        find("Delete FIDO2 security key(s)")["loggedByService"],
        "Device Registration Service"
    );
}
