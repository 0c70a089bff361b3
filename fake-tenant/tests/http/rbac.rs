//! Azure RBAC on the tenant-level `microsoft.aadiam` provider: Entra diagnostic settings need
//! an Azure role assignment at `/providers/Microsoft.aadiam` (azure-rest-api-specs#11085,
//! azurerm#12986, #18624); a subscription-scope role does not reach it; such assignments are
//! made with an ARM role-assignment PUT at that scope by someone with
//! `Microsoft.Authorization/roleAssignments/write` there (User Access Administrator at root).

use reqwest::Method;
use serde_json::{json, Value};

use crate::common::{json_body, TestTenant};

const HELPDESK_SP: &str = "374cfff1-0fa8-48d6-a0c2-7cac102135c0";
const CONTRIBUTOR: &str = "b24988ac-6180-42a0-ab88-20f7382dd24c";
const ASSIGNMENTS: &str =
    "/providers/Microsoft.aadiam/providers/Microsoft.Authorization/roleAssignments";

async fn token_of(t: &TestTenant, name: &str) -> String {
    let seed = fake_tenant::seed::load("default").unwrap();
    let apps = seed["auth"]["applications"].as_array().unwrap();
    let app = apps
        .iter()
        .find(|a| a["displayName"] == name)
        .unwrap_or_else(|| panic!("no seed application {name}"));
    let response = t
        .token_request(&[
            ("grant_type", "client_credentials"),
            ("client_id", app["appId"].as_str().unwrap()),
            ("client_secret", app["clientSecrets"][0].as_str().unwrap()),
            ("scope", "https://management.azure.com/.default"),
        ])
        .await;
    json_body(response).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn send(
    t: &TestTenant,
    token: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = t.http.request(method, t.url(path)).bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

fn setting_path(name: &str) -> String {
    format!("/providers/microsoft.aadiam/diagnosticSettings/{name}?api-version=2017-04-01")
}

fn setting() -> Value {
    json!({"properties": {
        "workspaceId": "/subscriptions/eeb0c733-9a1c-437b-b310-e18599b1b281/resourceGroups/rg-breakglass-monitoring/providers/Microsoft.OperationalInsights/workspaces/law-breakglass",
        "logs": [{"category": "SignInLogs", "enabled": true}],
    }})
}

fn grant(role: &str, principal: &str) -> Value {
    json!({"properties": {
        "roleDefinitionId": format!("/providers/Microsoft.Authorization/roleDefinitions/{role}"),
        "principalId": principal,
        "principalType": "ServicePrincipal",
    }})
}

#[tokio::test]
async fn a_subscription_role_does_not_reach_the_aadiam_scope() {
    let t = TestTenant::start().await;
    let helpdesk = token_of(&t, "helpdesk-automation").await;
    for (method, body) in [
        (Method::PUT, Some(setting())),
        (Method::GET, None),
        (Method::DELETE, None),
    ] {
        let (status, body) =
            send(&t, &helpdesk, method.clone(), &setting_path("to-law"), body).await;
        assert_eq!(status, 403, "{method}: {body}");
        assert_eq!(body["error"]["code"], "AuthorizationFailed");
        let message = body["error"]["message"].as_str().unwrap();
        let verb = match method {
            Method::PUT => "write",
            Method::DELETE => "delete",
            _ => "read",
        };
        assert!(
            message.contains(&format!(
                "perform action 'microsoft.aadiam/diagnosticSettings/{verb}'"
            )),
            "{message}"
        );
        assert!(
            message.contains("over scope '/providers/microsoft.aadiam/diagnosticSettings/to-law'"),
            "{message}"
        );
        assert!(
            message.contains(&format!("with object id '{HELPDESK_SP}'")),
            "{message}"
        );
        assert!(
            message.contains("If access was recently granted, please refresh your credentials.")
        );
    }
    let (status, _) = send(
        &t,
        &helpdesk,
        Method::GET,
        "/providers/microsoft.aadiam/diagnosticSettingsCategories?api-version=2017-04-01",
        None,
    )
    .await;
    assert_eq!(status, 403);
    // The provider's own principal holds Contributor at /providers/Microsoft.aadiam (seed).
    let (status, body) = send(
        &t,
        &t.arm_token,
        Method::PUT,
        &setting_path("to-law"),
        Some(setting()),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    // Nothing was written by the refused calls.
    let (_, list) = send(
        &t,
        &t.arm_token,
        Method::GET,
        "/providers/microsoft.aadiam/diagnosticSettings?api-version=2017-04-01",
        None,
    )
    .await;
    assert_eq!(list["value"].as_array().unwrap().len(), 1);
    t.assert_no_spec_violations().await;
}

#[tokio::test]
async fn a_role_assignment_at_the_aadiam_scope_grants_access() {
    let t = TestTenant::start().await;
    let helpdesk = token_of(&t, "helpdesk-automation").await;
    let rbac_admin = token_of(&t, "tenant-rbac-admin").await;
    let path = format!("{ASSIGNMENTS}/2c3d4e5f-6a7b-4c8d-9e0f-1a2b3c4d5e6f?api-version=2022-04-01");
    // Contributor excludes Microsoft.Authorization/*/Write: the provider cannot grant itself.
    let (status, body) = send(
        &t,
        &t.arm_token,
        Method::PUT,
        &path,
        Some(grant(CONTRIBUTOR, HELPDESK_SP)),
    )
    .await;
    assert_eq!(status, 403, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains(
        "'Microsoft.Authorization/roleAssignments/write' over scope '/providers/Microsoft.aadiam'"
    ));
    // User Access Administrator at root scope can.
    let (status, created) = send(
        &t,
        &rbac_admin,
        Method::PUT,
        &path,
        Some(grant(CONTRIBUTOR, HELPDESK_SP)),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(
        created["properties"]["scope"],
        "/providers/Microsoft.aadiam"
    );
    assert_eq!(created["properties"]["principalType"], "ServicePrincipal");
    assert_eq!(
        created["id"],
        json!(format!(
            "{ASSIGNMENTS}/2c3d4e5f-6a7b-4c8d-9e0f-1a2b3c4d5e6f"
        ))
    );
    let (status, body) = send(
        &t,
        &helpdesk,
        Method::PUT,
        &setting_path("helpdesk"),
        Some(setting()),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    // Listing, filtered by principal.
    let (status, list) = send(
        &t,
        &rbac_admin,
        Method::GET,
        &format!("{ASSIGNMENTS}?api-version=2022-04-01&$filter=principalId%20eq%20'{HELPDESK_SP}'"),
        None,
    )
    .await;
    assert_eq!(status, 200);
    let scopes: Vec<&str> = list["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["properties"]["scope"].as_str().unwrap())
        .collect();
    assert!(
        scopes.contains(&"/providers/Microsoft.aadiam"),
        "{scopes:?}"
    );
    // Removing it takes the access away again.
    let (status, _) = send(&t, &rbac_admin, Method::DELETE, &path, None).await;
    assert_eq!(status, 200);
    let (status, _) = send(&t, &helpdesk, Method::GET, &setting_path("helpdesk"), None).await;
    assert_eq!(status, 403);
    t.assert_no_spec_violations().await;
}

#[tokio::test]
async fn role_assignment_requests_are_validated() {
    let t = TestTenant::start().await;
    let rbac_admin = token_of(&t, "tenant-rbac-admin").await;
    let path = |name: &str| format!("{ASSIGNMENTS}/{name}?api-version=2022-04-01");
    let name = "3d4e5f6a-7b8c-4d9e-8f0a-2b3c4d5e6f70";
    let cases = [
        (
            "not-a-guid",
            grant(CONTRIBUTOR, HELPDESK_SP),
            400,
            "InvalidRoleAssignmentId",
        ),
        (
            name,
            grant("00000000-0000-0000-0000-000000000000", HELPDESK_SP),
            400,
            "RoleDefinitionDoesNotExist",
        ),
        (
            name,
            grant(CONTRIBUTOR, "00000000-0000-0000-0000-0000000000aa"),
            400,
            "PrincipalNotFound",
        ),
        // The seeded provider principal already holds Contributor there, under another name.
        (
            name,
            grant(CONTRIBUTOR, "4f97c425-4dcd-40fc-b52d-0e5f5b1ab19b"),
            409,
            "RoleAssignmentExists",
        ),
    ];
    for (name, body, status, code) in cases {
        let (got, answer) = send(&t, &rbac_admin, Method::PUT, &path(name), Some(body)).await;
        assert_eq!(got, status, "{code}: {answer}");
        assert_eq!(answer["error"]["code"], code);
    }
    let (status, body) = send(&t, &rbac_admin, Method::GET, &path(name), None).await;
    assert_eq!(status, 404);
    assert_eq!(body["error"]["code"], "RoleAssignmentNotFound");
    t.assert_no_spec_violations().await;
}

#[tokio::test]
async fn new_assignments_take_effect_after_the_propagation_delay() {
    let t = TestTenant::start().await;
    t.set_settings(json!({"arm.rbac_propagation_ms": 600_000}))
        .await;
    let helpdesk = token_of(&t, "helpdesk-automation").await;
    let rbac_admin = token_of(&t, "tenant-rbac-admin").await;
    let path = format!("{ASSIGNMENTS}/4e5f6a7b-8c9d-4e0f-9a1b-3c4d5e6f7a81?api-version=2022-04-01");
    let (status, _) = send(
        &t,
        &rbac_admin,
        Method::PUT,
        &path,
        Some(grant(CONTRIBUTOR, HELPDESK_SP)),
    )
    .await;
    assert_eq!(status, 201);
    let (status, body) = send(
        &t,
        &helpdesk,
        Method::PUT,
        &setting_path("early"),
        Some(setting()),
    )
    .await;
    assert_eq!(status, 403, "not yet in effect: {body}");
}

#[tokio::test]
async fn dumps_keep_role_assignments() {
    let t = TestTenant::start().await;
    let rbac_admin = token_of(&t, "tenant-rbac-admin").await;
    let path = format!("{ASSIGNMENTS}/5f6a7b8c-9d0e-4f1a-8b2c-4d5e6f7a8b92?api-version=2022-04-01");
    let (status, _) = send(
        &t,
        &rbac_admin,
        Method::PUT,
        &path,
        Some(grant(CONTRIBUTOR, HELPDESK_SP)),
    )
    .await;
    assert_eq!(status, 201);
    let dump: Value = json_body(t.admin(Method::GET, "/state").send().await.unwrap()).await;
    let reloaded = TestTenant::start_with(dump).await;
    let helpdesk = token_of(&reloaded, "helpdesk-automation").await;
    let (status, body) = send(
        &reloaded,
        &helpdesk,
        Method::PUT,
        &setting_path("after-reload"),
        Some(setting()),
    )
    .await;
    assert_eq!(status, 200, "{body}");
}
