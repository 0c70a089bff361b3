//! Azure Resource Manager over real HTTP: tenant diagnostic settings, resource groups, Log
//! Analytics workspaces and tables, action groups, scheduled query rules — and the sign-in log
//! pipeline that makes `SigninLogs` exist.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::common::{json_body, TestTenant};

// From seeds/default/arm.json.
const SUB: &str = "eeb0c733-9a1c-437b-b310-e18599b1b281";
const RG: &str = "rg-breakglass-monitoring";
const WS: &str = "law-breakglass";
const WS_CUSTOMER_ID: &str = "8c9e0cad-3a03-46b1-a875-820cd81da093";

const DIAG: &str = "2017-04-01";
const RGV: &str = "2021-04-01";
const LAW: &str = "2022-10-01";
const AGV: &str = "2023-01-01";
const SQR_NEW: &str = "2023-12-01";
const SQR_OLD: &str = "2021-08-01";

fn rg_path() -> String {
    format!("/subscriptions/{SUB}/resourceGroups/{RG}")
}

fn workspace_id() -> String {
    format!(
        "{}/providers/Microsoft.OperationalInsights/workspaces/{WS}",
        rg_path()
    )
}

fn diag_path(name: &str) -> String {
    format!("/providers/microsoft.aadiam/diagnosticSettings/{name}?api-version={DIAG}")
}

fn ag_path(name: &str, version: &str) -> String {
    format!(
        "{}/providers/Microsoft.Insights/actionGroups/{name}?api-version={version}",
        rg_path()
    )
}

fn ag_id(name: &str) -> String {
    format!(
        "{}/providers/Microsoft.Insights/actionGroups/{name}",
        rg_path()
    )
}

fn rule_path(name: &str, version: &str) -> String {
    format!(
        "{}/providers/Microsoft.Insights/scheduledQueryRules/{name}?api-version={version}",
        rg_path()
    )
}

fn table_path(table: &str) -> String {
    format!("{}/tables/{table}?api-version={LAW}", workspace_id())
}

fn signin_export(workspace: &str) -> Value {
    json!({"properties": {
        "workspaceId": workspace,
        "logs": [
            {"category": "SignInLogs", "enabled": true},
            {"category": "AuditLogs", "enabled": true},
        ],
    }})
}

fn action_group(short_name: &str) -> Value {
    json!({
        "location": "Global",
        "tags": {},
        "properties": {
            "groupShortName": short_name,
            "enabled": true,
            "emailReceivers": [{"name": "soc-mail", "emailAddress": "soc@contoso.com"}],
            "smsReceivers": [{"name": "oncall-sms", "countryCode": "1", "phoneNumber": "5551234567"}],
            "webhookReceivers": [{"name": "pager", "serviceUri": "https://pager.contoso.com/hook", "useCommonAlertSchema": true}],
        },
    })
}

fn signin_rule(query: &str, action_group: &str) -> Value {
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
            "criteria": {"allOf": [{
                "query": query,
                "timeAggregation": "Count",
                "operator": "GreaterThan",
                "threshold": 0,
            }]},
            "actions": {"actionGroups": [action_group]},
        },
    })
}

/// One way to spoil a valid request body, for table-driven validation tests.
type BodyChange = Box<dyn Fn(&mut Value)>;

const SIGNIN_QUERY: &str =
    "SigninLogs\n| where UserPrincipalName =~ 'bg-01@contoso.onmicrosoft.com'";

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
    let text = response.text().await.expect("body readable");
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("{status}: not JSON: {text}"))
    };
    (status, body)
}

async fn signin(t: &TestTenant, upn: &str) -> Value {
    let response = t
        .admin(Method::POST, "/arm/signins")
        .json(&json!({"userPrincipalName": upn}))
        .send()
        .await
        .expect("admin reachable");
    assert_eq!(response.status(), 200);
    json_body(response).await
}

/// Sign-in export to the seeded workspace plus one sign-in: `SigninLogs` then exists.
async fn make_signin_logs_flow(t: &TestTenant) {
    let (status, body) = send(
        t,
        Method::PUT,
        &diag_path("to-law"),
        Some(&signin_export(&workspace_id())),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    signin(t, "bg-01@contoso.onmicrosoft.com").await;
}

async fn create_action_group(t: &TestTenant, name: &str) -> String {
    let (status, body) = send(
        t,
        Method::PUT,
        &ag_path(name, AGV),
        Some(&action_group("bg-alerts")),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    body["id"].as_str().expect("id").to_owned()
}

#[tokio::test]
async fn missing_or_unknown_api_version_is_rejected_with_the_supported_list() {
    let t = TestTenant::start().await;
    let (status, body) = send(
        &t,
        Method::GET,
        "/providers/microsoft.aadiam/diagnosticSettings",
        None,
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["code"], "MissingApiVersionParameter");

    let (status, body) = send(
        &t,
        Method::GET,
        "/providers/microsoft.aadiam/diagnosticSettings?api-version=2099-01-01",
        None,
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["code"], "InvalidApiVersionParameter");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("'2099-01-01' is invalid"), "{message}");
    assert!(message.contains("2017-04-01"), "{message}");

    let (status, body) = send(
        &t,
        Method::GET,
        &format!(
            "{}?api-version=2019-01-01",
            rule_path("x", SQR_NEW).split('?').next().unwrap()
        ),
        None,
    )
    .await;
    assert_eq!(status, 400);
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("2023-12-01") && message.contains("2021-08-01"),
        "{message}"
    );
    t.assert_no_spec_violations().await;
}

#[tokio::test]
async fn arm_paths_need_an_arm_token() {
    let t = TestTenant::start().await;
    let url = t.url(&diag_path("x"));
    let anonymous = t.http.get(&url).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);
    let with_graph_token = t
        .http
        .get(&url)
        .bearer_auth(&t.graph_token)
        .send()
        .await
        .unwrap();
    assert_eq!(with_graph_token.status(), 401);
}

#[tokio::test]
async fn unknown_subscription_resource_group_and_resource_are_distinct_404s() {
    let t = TestTenant::start().await;
    let other_sub = "00000000-1111-2222-3333-444444444444";
    let (status, body) = send(
        &t,
        Method::GET,
        &format!("/subscriptions/{other_sub}/resourcegroups/{RG}?api-version={RGV}"),
        None,
    )
    .await;
    assert_eq!(status, 404);
    assert_eq!(body["error"]["code"], "SubscriptionNotFound");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains(other_sub));

    let (status, body) = send(&t, Method::GET, &format!("/subscriptions/{SUB}/resourceGroups/rg-missing/providers/Microsoft.Insights/actionGroups/x?api-version={AGV}"), None).await;
    assert_eq!(status, 404);
    assert_eq!(body["error"]["code"], "ResourceGroupNotFound");

    // The action group provider's own errors are top-level {code, message}.
    let (status, body) = send(&t, Method::GET, &ag_path("missing", AGV), None).await;
    assert_eq!(status, 404);
    assert_eq!(body["code"], "ResourceNotFound");

    let (status, body) = send(&t, Method::GET, &diag_path("missing"), None).await;
    assert_eq!(status, 404);
    assert_eq!(body["error"]["code"], "ResourceNotFound");
    t.assert_no_spec_violations().await;
}

#[tokio::test]
async fn resource_groups_put_get_head_delete_case_insensitively() {
    let t = TestTenant::start().await;
    let path = format!("/subscriptions/{SUB}/resourcegroups/rg-Alerts?api-version={RGV}");
    let body = json!({"location": "West Europe", "tags": {"owner": "secops"}});
    let (status, created) = send(&t, Method::PUT, &path, Some(&body)).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(
        created["id"],
        format!("/subscriptions/{SUB}/resourceGroups/rg-Alerts")
    );
    assert_eq!(created["location"], "westeurope");
    assert_eq!(created["properties"]["provisioningState"], "Succeeded");
    let (status, _) = send(&t, Method::PUT, &path, Some(&body)).await;
    assert_eq!(status, 200, "second PUT updates");

    // ARM paths are case-insensitive; ids keep the casing the group was created with.
    let shouty = format!("/SUBSCRIPTIONS/{SUB}/RESOURCEGROUPS/RG-ALERTS?api-version={RGV}");
    let (status, fetched) = send(&t, Method::GET, &shouty, None).await;
    assert_eq!(status, 200);
    assert_eq!(fetched["name"], "rg-Alerts");
    assert_eq!(fetched["tags"]["owner"], "secops");
    assert_eq!(
        t.arm(Method::HEAD, &path).send().await.unwrap().status(),
        204
    );

    // Deleting the group deletes what is in it.
    let (status, _) = send(&t, Method::PUT, &format!("/subscriptions/{SUB}/resourceGroups/rg-Alerts/providers/Microsoft.Insights/actionGroups/ag1?api-version={AGV}"), Some(&action_group("ag1"))).await;
    assert_eq!(status, 201);
    let (status, _) = send(&t, Method::DELETE, &path, None).await;
    assert_eq!(status, 200);
    assert_eq!(
        t.arm(Method::HEAD, &path).send().await.unwrap().status(),
        404
    );
    let (status, body) = send(&t, Method::GET, &path, None).await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (StatusCode::NOT_FOUND, json!("ResourceGroupNotFound"))
    );
    let (status, _) = send(
        &t,
        Method::PUT,
        &path,
        Some(&body_with_location("westeurope")),
    )
    .await;
    assert_eq!(status, 201);
    let (status, _) = send(&t, Method::GET, &format!("/subscriptions/{SUB}/resourceGroups/rg-Alerts/providers/Microsoft.Insights/actionGroups/ag1?api-version={AGV}"), None).await;
    assert_eq!(status, 404, "the action group went with its resource group");

    let (status, body) = send(&t, Method::PUT, &path, Some(&json!({"tags": {}}))).await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (StatusCode::BAD_REQUEST, json!("LocationRequired"))
    );
    t.assert_no_spec_violations().await;
}

fn body_with_location(location: &str) -> Value {
    json!({ "location": location })
}

#[tokio::test]
async fn diagnostic_settings_round_trip_and_categories() {
    let t = TestTenant::start().await;
    let (status, categories) = send(
        &t,
        Method::GET,
        &format!("/providers/microsoft.aadiam/diagnosticSettingsCategories?api-version={DIAG}"),
        None,
    )
    .await;
    assert_eq!(status, 200);
    let names: Vec<&str> = categories["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    for expected in [
        "AuditLogs",
        "SignInLogs",
        "NonInteractiveUserSignInLogs",
        "ServicePrincipalSignInLogs",
        "ManagedIdentitySignInLogs",
        "ProvisioningLogs",
    ] {
        assert!(
            names.contains(&expected),
            "{expected} missing from {names:?}"
        );
    }
    assert_eq!(categories["value"][0]["properties"]["categoryType"], "Logs");

    let (status, created) = send(
        &t,
        Method::PUT,
        &diag_path("ToLaw"),
        Some(&signin_export(&workspace_id())),
    )
    .await;
    assert_eq!(status, 200, "{created}");
    assert_eq!(
        created["id"],
        "/providers/microsoft.aadiam/diagnosticSettings/ToLaw"
    );
    assert_eq!(created["properties"]["workspaceId"], workspace_id());
    assert_eq!(
        created["properties"]["logs"][0],
        json!({"category": "SignInLogs", "enabled": true, "retentionPolicy": {"enabled": false, "days": 0}})
    );

    let (status, fetched) = send(&t, Method::GET, &diag_path("tolaw"), None).await;
    assert_eq!(status, 200);
    assert_eq!(fetched, created);
    let (_, list) = send(
        &t,
        Method::GET,
        &format!("/providers/microsoft.aadiam/diagnosticSettings?api-version={DIAG}"),
        None,
    )
    .await;
    assert_eq!(list["value"].as_array().unwrap().len(), 1);

    let (status, _) = send(&t, Method::DELETE, &diag_path("ToLaw"), None).await;
    assert_eq!(status, 200);
    let (status, _) = send(&t, Method::GET, &diag_path("ToLaw"), None).await;
    assert_eq!(status, 404);
    let (status, _) = send(&t, Method::DELETE, &diag_path("ToLaw"), None).await;
    assert_eq!(status, 204, "deleting what is gone is a no-op");
    t.assert_no_spec_violations().await;
}

#[tokio::test]
async fn diagnostic_settings_reject_bad_bodies_and_missing_workspaces() {
    let t = TestTenant::start().await;
    let not_json = t
        .arm(Method::PUT, &diag_path("x"))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(not_json.status(), 400);
    assert_eq!(
        json_body(not_json).await["error"]["code"],
        "InvalidRequestContent"
    );

    let missing_ws = format!("/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.OperationalInsights/workspaces/law-nope");
    let (status, body) = send(
        &t,
        Method::PUT,
        &diag_path("x"),
        Some(&signin_export(&missing_ws)),
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("law-nope"),
        "{body}"
    );

    let (status, body) = send(
        &t,
        Method::PUT,
        &diag_path("x"),
        Some(&signin_export("law-breakglass")),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["code"], "LinkedInvalidPropertyId");

    let unknown_category = json!({"properties": {"workspaceId": workspace_id(), "logs": [{"category": "EverythingLogs", "enabled": true}]}});
    let (status, body) = send(&t, Method::PUT, &diag_path("x"), Some(&unknown_category)).await;
    assert_eq!(status, 400);
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("EverythingLogs"));

    let no_destination =
        json!({"properties": {"logs": [{"category": "AuditLogs", "enabled": true}]}});
    let (status, _) = send(&t, Method::PUT, &diag_path("x"), Some(&no_destination)).await;
    assert_eq!(status, 400);
    let (status, _) = send(&t, Method::GET, &diag_path("x"), None).await;
    assert_eq!(status, 404, "rejected PUTs create nothing");
    t.assert_no_spec_violations().await;
}

#[tokio::test]
async fn a_sixth_diagnostic_setting_is_rejected_but_updates_still_work() {
    let t = TestTenant::start().await;
    for i in 1..=5 {
        let (status, body) = send(
            &t,
            Method::PUT,
            &diag_path(&format!("setting-{i}")),
            Some(&signin_export(&workspace_id())),
        )
        .await;
        assert_eq!(status, 200, "setting {i}: {body}");
    }
    let (status, body) = send(
        &t,
        Method::PUT,
        &diag_path("setting-6"),
        Some(&signin_export(&workspace_id())),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["code"], "BadRequest");
    assert!(
        body["error"]["message"].as_str().unwrap().contains('5'),
        "{body}"
    );

    let (status, _) = send(
        &t,
        Method::PUT,
        &diag_path("SETTING-3"),
        Some(&signin_export(&workspace_id())),
    )
    .await;
    assert_eq!(status, 200, "updating one of the five is not a sixth");
    let (status, _) = send(&t, Method::DELETE, &diag_path("setting-1"), None).await;
    assert_eq!(status, 200);
    let (status, _) = send(
        &t,
        Method::PUT,
        &diag_path("setting-6"),
        Some(&signin_export(&workspace_id())),
    )
    .await;
    assert_eq!(status, 200, "room again after a delete");
    t.assert_no_spec_violations().await;
}

#[tokio::test]
async fn seeded_workspace_has_tables_but_no_signin_logs() {
    let t = TestTenant::start().await;
    let (status, ws) = send(
        &t,
        Method::GET,
        &format!("{}?api-version={LAW}", workspace_id()),
        None,
    )
    .await;
    assert_eq!(status, 200, "{ws}");
    assert_eq!(ws["properties"]["customerId"], WS_CUSTOMER_ID);
    assert_eq!(ws["type"], "Microsoft.OperationalInsights/workspaces");
    assert!(ws["id"]
        .as_str()
        .unwrap()
        .eq_ignore_ascii_case(&workspace_id()));

    let (status, tables) = send(
        &t,
        Method::GET,
        &format!("{}/tables?api-version=2023-09-01", workspace_id()),
        None,
    )
    .await;
    assert_eq!(status, 200);
    let names: Vec<&str> = tables["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"Heartbeat"), "{names:?}");
    assert!(!names.contains(&"SigninLogs"), "{names:?}");
    let (status, heartbeat) = send(&t, Method::GET, &table_path("Heartbeat"), None).await;
    assert_eq!(status, 200);
    assert_eq!(heartbeat["properties"]["schema"]["name"], "Heartbeat");
    let (status, _) = send(&t, Method::GET, &table_path("SigninLogs"), None).await;
    assert_eq!(status, 404);

    let new_ws = format!(
        "{}/providers/Microsoft.OperationalInsights/workspaces/law-second?api-version={LAW}",
        rg_path()
    );
    let (status, created) = send(&t, Method::PUT, &new_ws, Some(&json!({"location": "westeurope", "properties": {"sku": {"name": "PerGB2018"}, "retentionInDays": 30}}))).await;
    assert_eq!(status, 201, "{created}");
    let customer_id = created["properties"]["customerId"].as_str().unwrap();
    assert!(uuid::Uuid::parse_str(customer_id).is_ok(), "{customer_id}");
    let (status, again) = send(
        &t,
        Method::PUT,
        &new_ws,
        Some(&json!({"location": "westeurope", "properties": {"retentionInDays": 60}})),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        again["properties"]["customerId"], customer_id,
        "customerId is stable"
    );
    let (status, _) = send(
        &t,
        Method::PUT,
        &new_ws,
        Some(&json!({"location": "westeurope", "properties": {"retentionInDays": 5}})),
    )
    .await;
    assert_eq!(status, 400);
    t.assert_no_spec_violations().await;
}

#[tokio::test]
async fn alert_on_signin_logs_fails_until_a_signin_is_exported_then_succeeds() {
    let t = TestTenant::start().await;
    let ag = create_action_group(&t, "ag-breakglass").await;
    let rule = signin_rule(SIGNIN_QUERY, &ag);

    // Fresh workspace: no SigninLogs table, so query validation fails like the real service.
    let (status, body) = send(
        &t,
        Method::PUT,
        &rule_path("bg-signin", SQR_NEW),
        Some(&rule),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "BadRequest");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains(
            "'where' operator: Failed to resolve table or column expression named 'SigninLogs'"
        ),
        "{message}"
    );
    let inner: Value =
        serde_json::from_str(message).expect("the message is the serialized Log Analytics error");
    assert_eq!(inner["error"]["code"], "BadArgumentError");
    assert_eq!(
        inner["error"]["innererror"]["innererror"]["code"],
        "SEM0100"
    );

    // A sign-in before any export reaches no workspace.
    let before = signin(&t, "bg-01@contoso.onmicrosoft.com").await;
    assert_eq!(before["deliveredTo"], json!([]));
    // Export configured, but no sign-in since: still no table.
    let (status, _) = send(
        &t,
        Method::PUT,
        &diag_path("to-law"),
        Some(&signin_export(&workspace_id())),
    )
    .await;
    assert_eq!(status, 200);
    let (status, _) = send(&t, Method::GET, &table_path("SigninLogs"), None).await;
    assert_eq!(status, 404);
    let (status, _) = send(
        &t,
        Method::PUT,
        &rule_path("bg-signin", SQR_NEW),
        Some(&rule),
    )
    .await;
    assert_eq!(status, 400);

    // A sign-in after the export: the table exists and the rule is accepted.
    let after = signin(&t, "bg-01@contoso.onmicrosoft.com").await;
    assert_eq!(after["deliveredTo"][0]["table"], "SigninLogs");
    let (status, table) = send(&t, Method::GET, &table_path("SigninLogs"), None).await;
    assert_eq!(status, 200, "{table}");
    let (status, created) = send(
        &t,
        Method::PUT,
        &rule_path("bg-signin", SQR_NEW),
        Some(&rule),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(
        created["properties"]["criteria"]["allOf"][0]["query"],
        SIGNIN_QUERY
    );

    // KQL table names are case-sensitive.
    let lower = signin_rule("signinlogs | take 1", &ag);
    let (status, _) = send(
        &t,
        Method::PUT,
        &rule_path("bg-lower", SQR_NEW),
        Some(&lower),
    )
    .await;
    assert_eq!(status, 400);
    t.assert_no_spec_violations().await;
}

#[tokio::test]
async fn exporting_to_another_workspace_does_not_create_the_table_here() {
    let t = TestTenant::start().await;
    let other = format!(
        "{}/providers/Microsoft.OperationalInsights/workspaces/law-other",
        rg_path()
    );
    let (status, _) = send(
        &t,
        Method::PUT,
        &format!("{other}?api-version={LAW}"),
        Some(&json!({"location": "westeurope"})),
    )
    .await;
    assert_eq!(status, 201);
    let (status, _) = send(
        &t,
        Method::PUT,
        &diag_path("to-other"),
        Some(&signin_export(&other)),
    )
    .await;
    assert_eq!(status, 200);
    let disabled = json!({"properties": {"workspaceId": workspace_id(), "logs": [{"category": "SignInLogs", "enabled": false}, {"category": "AuditLogs", "enabled": true}]}});
    let (status, _) = send(&t, Method::PUT, &diag_path("audit-only"), Some(&disabled)).await;
    assert_eq!(status, 200);
    signin(&t, "bg-01@contoso.onmicrosoft.com").await;
    let (status, _) = send(&t, Method::GET, &table_path("SigninLogs"), None).await;
    assert_eq!(status, 404, "sign-ins went to law-other only");
    let (status, _) = send(
        &t,
        Method::GET,
        &format!("{other}/tables/SigninLogs?api-version={LAW}"),
        None,
    )
    .await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn ingestion_delay_holds_the_table_back_until_it_passes() {
    let t = TestTenant::start().await;
    t.set_settings(json!({"arm.signin_log_ingestion_delay_ms": 1500}))
        .await;
    make_signin_logs_flow(&t).await;
    let (status, _) = send(&t, Method::GET, &table_path("SigninLogs"), None).await;
    assert_eq!(status, 404, "still ingesting");
    let mut appeared = false;
    for _ in 0..100 {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        if send(&t, Method::GET, &table_path("SigninLogs"), None)
            .await
            .0
            == 200
        {
            appeared = true;
            break;
        }
    }
    assert!(
        appeared,
        "SigninLogs never appeared after the ingestion delay"
    );
}

#[tokio::test]
async fn scheduled_query_rules_answer_in_the_shape_of_the_requested_version() {
    let t = TestTenant::start().await;
    make_signin_logs_flow(&t).await;
    let ag = create_action_group(&t, "ag-breakglass").await;
    let mut rule = signin_rule(SIGNIN_QUERY, &ag);
    rule["properties"]["ruleResolveConfiguration"] =
        json!({"autoResolved": true, "timeToResolve": "PT30M"});
    rule["properties"]["actions"]["actionProperties"] =
        json!({"Email.Subject": "Break-glass sign-in"});

    let (status, created) = send(
        &t,
        Method::PUT,
        &rule_path("bg-signin", SQR_NEW),
        Some(&rule),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["type"], "microsoft.insights/scheduledqueryrules");
    assert_eq!(created["id"], format!("/subscriptions/{SUB}/resourcegroups/{RG}/providers/microsoft.insights/scheduledqueryrules/bg-signin"));
    assert_eq!(created["properties"]["createdWithApiVersion"], SQR_NEW);
    assert_eq!(
        created["properties"]["ruleResolveConfiguration"]["timeToResolve"],
        "PT30M"
    );
    assert_eq!(
        created["properties"]["criteria"]["allOf"][0]["failingPeriods"],
        json!({"numberOfEvaluationPeriods": 1, "minFailingPeriodsToAlert": 1})
    );

    let (status, old_shape) = send(&t, Method::GET, &rule_path("bg-signin", SQR_OLD), None).await;
    assert_eq!(status, 200);
    assert!(
        old_shape["properties"]
            .get("ruleResolveConfiguration")
            .is_none(),
        "{old_shape}"
    );
    assert!(
        old_shape["properties"]["actions"]
            .get("actionProperties")
            .is_none(),
        "{old_shape}"
    );
    assert_eq!(
        old_shape["properties"]["actions"]["actionGroups"],
        json!([ag])
    );

    // PATCH through the old version leaves the newer properties alone.
    let (status, patched) = send(
        &t,
        Method::PATCH,
        &rule_path("BG-SIGNIN", SQR_OLD),
        Some(&json!({"properties": {"enabled": false}, "tags": {"team": "secops"}})),
    )
    .await;
    assert_eq!(status, 200, "{patched}");
    assert_eq!(patched["properties"]["enabled"], false);
    assert!(patched["properties"]
        .get("ruleResolveConfiguration")
        .is_none());
    let (_, new_shape) = send(&t, Method::GET, &rule_path("bg-signin", SQR_NEW), None).await;
    assert_eq!(new_shape["properties"]["enabled"], false);
    assert_eq!(new_shape["tags"]["team"], "secops");
    assert_eq!(
        new_shape["properties"]["ruleResolveConfiguration"]["autoResolved"],
        true
    );

    // A PUT through 2021-08-01 replaces the rule (200) with what that version knows: the
    // newer members, and members no version declares, are ignored.
    let mut old_rule = rule.clone();
    old_rule["properties"]["mood"] = json!("calm");
    let (status, replaced) = send(
        &t,
        Method::PUT,
        &rule_path("bg-signin", SQR_OLD),
        Some(&old_rule),
    )
    .await;
    assert_eq!(status, 200, "{replaced}");
    let (_, after) = send(&t, Method::GET, &rule_path("bg-signin", SQR_NEW), None).await;
    assert!(
        after["properties"]
            .get("ruleResolveConfiguration")
            .is_none(),
        "{after}"
    );
    assert!(
        after["properties"]["actions"]
            .get("actionProperties")
            .is_some_and(|a| a == &json!({})),
        "{after}"
    );
    assert!(after["properties"].get("mood").is_none(), "{after}");
    assert_eq!(after["properties"]["createdWithApiVersion"], SQR_NEW);

    let (_, list) = send(
        &t,
        Method::GET,
        &format!(
            "{}/providers/Microsoft.Insights/scheduledQueryRules?api-version={SQR_NEW}",
            rg_path()
        ),
        None,
    )
    .await;
    assert_eq!(list["value"].as_array().unwrap().len(), 1);
    let (_, by_subscription) = send(
        &t,
        Method::GET,
        &format!("/subscriptions/{SUB}/providers/Microsoft.Insights/scheduledQueryRules?api-version={SQR_OLD}"),
        None,
    )
    .await;
    assert_eq!(by_subscription["value"][0]["name"], "bg-signin");
    assert!(by_subscription["value"][0]["properties"]["actions"]
        .get("actionProperties")
        .is_none());
    let (status, _) = send(&t, Method::DELETE, &rule_path("bg-signin", SQR_NEW), None).await;
    assert_eq!(status, 200);
    let (status, _) = send(&t, Method::GET, &rule_path("bg-signin", SQR_NEW), None).await;
    assert_eq!(status, 404);
    t.assert_no_spec_violations().await;
}

#[tokio::test]
async fn scheduled_query_rules_are_validated_like_the_service() {
    let t = TestTenant::start().await;
    make_signin_logs_flow(&t).await;
    let ag = create_action_group(&t, "ag-breakglass").await;
    let base = signin_rule(SIGNIN_QUERY, &ag);
    let cases: Vec<(&str, BodyChange, &str)> = vec![
        (
            "severity 5",
            Box::new(|r| r["properties"]["severity"] = json!(5)),
            "Severity",
        ),
        (
            "frequency PT7M",
            Box::new(|r| r["properties"]["evaluationFrequency"] = json!("PT7M")),
            "Supported frequencies",
        ),
        (
            "window P3D",
            Box::new(|r| r["properties"]["windowSize"] = json!("P3D")),
            "Supported granularities",
        ),
        (
            "missing query",
            Box::new(|r| r["properties"]["criteria"]["allOf"][0]["query"] = json!("")),
            "query",
        ),
        (
            "no conditions",
            Box::new(|r| r["properties"]["criteria"] = json!({"allOf": []})),
            "criteria.allOf",
        ),
        (
            "unknown scope",
            Box::new(|r| {
                r["properties"]["scopes"] = json!([format!(
                    "{}/providers/Microsoft.OperationalInsights/workspaces/law-nope",
                    rg_path()
                )])
            }),
            "law-nope",
        ),
        (
            "unknown action group",
            Box::new(|r| r["properties"]["actions"]["actionGroups"] = json!([ag_id("ag-nope")])),
            "ag-nope",
        ),
        (
            "bad operator",
            Box::new(|r| r["properties"]["criteria"]["allOf"][0]["operator"] = json!("Sometimes")),
            "operator",
        ),
    ];
    for (what, change, expected) in cases {
        let mut rule = base.clone();
        change(&mut rule);
        let (status, body) = send(&t, Method::PUT, &rule_path("bad", SQR_NEW), Some(&rule)).await;
        assert_eq!(status, 400, "{what}: {body}");
        let message = body["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(expected), "{what}: {message}");
    }
    let (status, _) = send(&t, Method::GET, &rule_path("bad", SQR_NEW), None).await;
    assert_eq!(status, 404, "no rejected rule was stored");

    // skipQueryValidation bypasses the table check, as in the service.
    let mut skip = signin_rule("AADNonInteractiveUserSignInLogs | take 1", &ag);
    skip["properties"]["skipQueryValidation"] = json!(true);
    let (status, body) = send(&t, Method::PUT, &rule_path("skip", SQR_OLD), Some(&skip)).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["properties"]["createdWithApiVersion"], SQR_OLD);
    t.assert_no_spec_violations().await;
}

#[tokio::test]
async fn action_groups_round_trip_with_service_defaults() {
    let t = TestTenant::start().await;
    let (status, created) = send(
        &t,
        Method::PUT,
        &ag_path("ag-breakglass", AGV),
        Some(&action_group("bg-alerts")),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["id"], format!("/subscriptions/{SUB}/resourceGroups/{RG}/providers/microsoft.insights/actionGroups/ag-breakglass"));
    assert_eq!(created["type"], "Microsoft.Insights/ActionGroups");
    assert_eq!(created["location"], "Global");
    let props = &created["properties"];
    assert_eq!(props["emailReceivers"][0]["status"], "Enabled");
    assert_eq!(props["emailReceivers"][0]["useCommonAlertSchema"], false);
    assert_eq!(props["smsReceivers"][0]["status"], "Enabled");
    assert_eq!(props["webhookReceivers"][0]["useCommonAlertSchema"], true);
    assert_eq!(props["voiceReceivers"], json!([]));
    assert_eq!(props["armRoleReceivers"], json!([]));

    let (status, _) = send(
        &t,
        Method::PUT,
        &ag_path("ag-breakglass", "2021-09-01"),
        Some(&action_group("bg-alerts")),
    )
    .await;
    assert_eq!(status, 200, "second PUT (older version) updates");
    let (status, patched) = send(
        &t,
        Method::PATCH,
        &ag_path("AG-BREAKGLASS", AGV),
        Some(&json!({"tags": {"tier": "0"}, "properties": {"enabled": false}})),
    )
    .await;
    assert_eq!(status, 200, "{patched}");
    assert_eq!(patched["properties"]["enabled"], false);
    assert_eq!(patched["tags"]["tier"], "0");
    assert_eq!(
        patched["properties"]["emailReceivers"],
        created["properties"]["emailReceivers"]
    );
    let (status, ignored) = send(
        &t,
        Method::PATCH,
        &ag_path("ag-breakglass", AGV),
        Some(&json!({"properties": {"groupShortName": "x", "enabled": false}})),
    )
    .await;
    assert_eq!(status, 200, "{ignored}");
    assert_eq!(
        ignored["properties"]["groupShortName"], "bg-alerts",
        "PATCH changes only tags and enabled"
    );

    let mut with_extra = action_group("bg-alerts");
    with_extra["properties"]["emailReceivers"][0]["nickname"] = json!("soc");
    with_extra["properties"]["mood"] = json!("calm");
    let (status, replaced) = send(
        &t,
        Method::PUT,
        &ag_path("ag-breakglass", AGV),
        Some(&with_extra),
    )
    .await;
    assert_eq!(status, 200, "{replaced}");
    assert!(replaced["properties"].get("mood").is_none(), "{replaced}");
    assert!(replaced["properties"]["emailReceivers"][0]
        .get("nickname")
        .is_none());
    let (status, patched) = send(
        &t,
        Method::PATCH,
        &ag_path("ag-breakglass", AGV),
        Some(&json!({"tags": {"tier": "0"}, "properties": {"enabled": false}})),
    )
    .await;
    assert_eq!(status, 200, "{patched}");

    let (_, fetched) = send(&t, Method::GET, &ag_path("ag-breakglass", AGV), None).await;
    assert_eq!(fetched, patched);
    let (_, list) = send(
        &t,
        Method::GET,
        &format!(
            "{}/providers/microsoft.insights/actionGroups?api-version={AGV}",
            rg_path()
        ),
        None,
    )
    .await;
    assert_eq!(list["value"].as_array().unwrap().len(), 1);
    let (_, by_subscription) = send(
        &t,
        Method::GET,
        &format!(
            "/subscriptions/{SUB}/providers/microsoft.insights/actionGroups?api-version={AGV}"
        ),
        None,
    )
    .await;
    assert_eq!(by_subscription["value"], list["value"]);

    let (status, _) = send(&t, Method::DELETE, &ag_path("ag-breakglass", AGV), None).await;
    assert_eq!(status, 200);
    let (status, _) = send(&t, Method::DELETE, &ag_path("ag-breakglass", AGV), None).await;
    assert_eq!(status, 204);
    t.assert_no_spec_violations().await;
}

#[tokio::test]
async fn action_groups_are_validated_like_the_service() {
    let t = TestTenant::start().await;
    let cases: Vec<(&str, BodyChange, StatusCode, &str)> = vec![
        (
            "short name 13",
            Box::new(|g| g["properties"]["groupShortName"] = json!("breakglass-13")),
            StatusCode::BAD_REQUEST,
            "GroupShortNameIsTooLong",
        ),
        (
            "duplicate names",
            Box::new(|g| g["properties"]["smsReceivers"][0]["name"] = json!("SOC-MAIL")),
            StatusCode::BAD_REQUEST,
            "ReceiverNameNotUnique",
        ),
        (
            "bad email",
            Box::new(|g| {
                g["properties"]["emailReceivers"][0]["emailAddress"] = json!("soc.contoso.com")
            }),
            StatusCode::BAD_REQUEST,
            "InvalidEmailAddress",
        ),
        (
            "phone with +",
            Box::new(|g| g["properties"]["smsReceivers"][0]["countryCode"] = json!("+1")),
            StatusCode::BAD_REQUEST,
            "InvalidCountryCode",
        ),
        (
            "webhook not a URL",
            Box::new(|g| g["properties"]["webhookReceivers"][0]["serviceUri"] = json!("pager")),
            StatusCode::BAD_REQUEST,
            "InvalidWebhookUri",
        ),
    ];
    for (what, change, status_expected, code) in cases {
        let mut group = action_group("bg-alerts");
        change(&mut group);
        let (status, body) = send(&t, Method::PUT, &ag_path("ag-bad", AGV), Some(&group)).await;
        assert_eq!(status, status_expected, "{what}: {body}");
        assert_eq!(body["code"], code, "{what}: {body}");
    }
    // A receiver without its required address is refused (by request validation against the
    // spec's `required` list, or by the provider's own receiver check).
    let mut no_email = action_group("bg-alerts");
    no_email["properties"]["emailReceivers"][0]
        .as_object_mut()
        .unwrap()
        .remove("emailAddress");
    let (status, body) = send(&t, Method::PUT, &ag_path("ag-bad", AGV), Some(&no_email)).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.to_string().contains("emailAddress"), "{body}");

    let mut regional = action_group("bg-alerts");
    regional["location"] = json!("westeurope");
    let (status, body) = send(&t, Method::PUT, &ag_path("ag-bad", AGV), Some(&regional)).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["code"], "LocationNotAvailableForResourceType");
    regional["location"] = json!("swedencentral");
    let (status, _) = send(
        &t,
        Method::PUT,
        &ag_path("ag-regional", AGV),
        Some(&regional),
    )
    .await;
    assert_eq!(status, 201, "regional action groups exist in a few regions");
    let (status, _) = send(&t, Method::GET, &ag_path("ag-bad", AGV), None).await;
    assert_eq!(status, 404);
    t.assert_no_spec_violations().await;
}

#[tokio::test]
async fn replication_lag_hides_a_fresh_action_group_from_readers_only() {
    let t = TestTenant::start().await;
    t.set_settings(json!({"arm.replication_lag_ms": 600_000}))
        .await;
    let (status, _) = send(
        &t,
        Method::PUT,
        &ag_path("ag-lagged", AGV),
        Some(&action_group("bg-alerts")),
    )
    .await;
    assert_eq!(status, 201);
    let (status, _) = send(&t, Method::GET, &ag_path("ag-lagged", AGV), None).await;
    assert_eq!(status, 404, "not replicated yet");
    let (status, _) = send(
        &t,
        Method::PUT,
        &ag_path("ag-lagged", AGV),
        Some(&action_group("bg-alerts")),
    )
    .await;
    assert_eq!(status, 200, "the primary knows it exists");
}

#[tokio::test]
async fn arm_state_dumps_in_seed_format() {
    let t = TestTenant::start().await;
    make_signin_logs_flow(&t).await;
    create_action_group(&t, "ag-breakglass").await;
    let dump = t.state.tenant().arm.dump();
    let restored = fake_tenant::arm::ArmState::from_seed(&dump).expect("a dump seeds a tenant");
    assert_eq!(restored.dump(), dump);
    let tables = dump["workspaces"][0]["tables"].as_array().unwrap();
    assert!(tables.contains(&json!("SigninLogs")), "{tables:?}");
    assert_eq!(dump["diagnosticSettings"].as_array().unwrap().len(), 1);
    assert_eq!(dump["actionGroups"].as_array().unwrap().len(), 1);

    // A tenant seeded from the dump serves what was dumped, and SigninLogs is still there.
    let ag = ag_id("ag-breakglass");
    let (status, _) = send(
        &t,
        Method::PUT,
        &rule_path("bg-signin", SQR_NEW),
        Some(&signin_rule(SIGNIN_QUERY, &ag)),
    )
    .await;
    assert_eq!(status, 201);
    let dump = t.state.tenant().arm.dump();
    let copy = TestTenant::start_patched(json!({ "arm": dump })).await;
    for path in [
        ag_path("ag-breakglass", AGV),
        rule_path("bg-signin", SQR_NEW),
        diag_path("to-law"),
        table_path("SigninLogs"),
    ] {
        let (status, body) = send(&copy, Method::GET, &path, None).await;
        assert_eq!(status, 200, "{path}: {body}");
    }
}
