//! The spec walk: drives every vendored Graph and ARM operation the emulator serves (success and
//! error answers) and asserts that no response strayed from the descriptions, and that the walk
//! really covered every served operation.

use std::collections::BTreeSet;

use fake_tenant::spec::{self, Api};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::common::TestTenant;

const ALICE: &str = "5d2c6f0e-3b1a-4c8e-9f7d-0a1b2c3d4e01";
const EXCLUSION_GROUP: &str = "8a7b6c5d-0000-4e1f-9a2b-3c4d5e6f7a01";
const MFA_ALL_USERS: &str = "ca000000-0000-4000-8000-000000000001";
const GLOBAL_ADMIN: &str = "62e90394-69f5-4237-9190-012177145e10";
const SECURITY_READER: &str = "5d6b6bb7-de71-4623-b4af-96380a352509";
const MISSING_ID: &str = "00000000-0000-4000-8000-0000000000ff";
const LEGACY_EMERGENCY: &str = "5d2c6f0e-3b1a-4c8e-9f7d-0a1b2c3d4e05";
const PASSWORD_METHOD_ID: &str = "28c10230-6103-485e-b985-444c60001490";
const PHISHING_RESISTANT: &str = "00000000-0000-0000-0000-000000000004";
const USER_ADMINISTRATOR: &str = "fe930be7-5e62-47db-91af-98c3a49a38b1";
/// The seed's `terraform-breakglass` service principal.
const PROVIDER_SP: &str = "4f97c425-4dcd-40fc-b52d-0e5f5b1ab19b";

const SUB: &str = "eeb0c733-9a1c-437b-b310-e18599b1b281";
const RG: &str = "rg-breakglass-monitoring";
const WORKSPACE: &str = "law-breakglass";

/// Operations the emulator does not serve because the provider never calls them (role
/// assignments are served at `/providers/Microsoft.aadiam` only).
const NOT_SERVED: [&str; 13] = [
    "arm 2022-04-01 RoleAssignments_ListForSubscription",
    "arm 2022-04-01 RoleAssignments_ListForResourceGroup",
    "arm 2022-04-01 RoleAssignments_ListForResource",
    "arm 2022-04-01 RoleAssignments_GetById",
    "arm 2022-04-01 RoleAssignments_CreateById",
    "arm 2022-04-01 RoleAssignments_DeleteById",
    "arm 2017-04-01 Operations_List",
    "arm 2023-01-01 ActionGroups_ListBySubscriptionId",
    "arm 2023-12-01 ScheduledQueryRules_ListBySubscription",
    "arm 2021-08-01 ScheduledQueryRules_ListBySubscription",
    "arm 2023-01-01 ActionGroups_CreateNotificationsAtActionGroupResourceLevel",
    "arm 2023-01-01 ActionGroups_GetTestNotificationsAtActionGroupResourceLevel",
    "arm 2023-01-01 ActionGroups_EnableReceiver",
];

/// One call of the walk; panics with the response when the status is not the expected one.
async fn call(
    t: &TestTenant,
    api: Api,
    method: Method,
    path: &str,
    body: Option<Value>,
    expected: u16,
) -> Value {
    let mut request = match api {
        Api::Graph => t.graph(method.clone(), path),
        Api::Arm => t.arm(method.clone(), path),
    };
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("emulator reachable");
    let status = response.status();
    let text = response.text().await.expect("body readable");
    assert_eq!(
        status,
        StatusCode::from_u16(expected).unwrap(),
        "{method} {path}: {text}"
    );
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

/// An ARM token for the seed application named `name` (client secret).
async fn arm_token_of(t: &TestTenant, name: &str) -> String {
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
    let body: Value = response.json().await.unwrap();
    body["access_token"].as_str().unwrap().to_owned()
}

/// `call` with another principal's ARM bearer.
async fn call_as(
    t: &TestTenant,
    token: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
    expected: u16,
) -> Value {
    let mut request = t
        .http
        .request(method.clone(), t.url(path))
        .bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("emulator reachable");
    let status = response.status();
    let text = response.text().await.expect("body readable");
    assert_eq!(status.as_u16(), expected, "{method} {path}: {text}");
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

async fn walk_graph(t: &TestTenant) {
    use Api::Graph as G;
    // Users: list (paged and selected), get by id and UPN, create, update, methods, delete.
    let page = call(t, G, Method::GET, "/users?$top=2", None, 200).await;
    let next = page["@odata.nextLink"].as_str().expect("a second page");
    let second = t
        .http
        .get(next)
        .bearer_auth(&t.graph_token)
        .send()
        .await
        .unwrap();
    assert_eq!(second.status(), 200);
    call(
        t,
        G,
        Method::GET,
        "/users?$select=id,accountEnabled,onPremisesSyncEnabled,createdDateTime",
        None,
        200,
    )
    .await;
    call(
        t,
        G,
        Method::GET,
        "/users?$filter=userPrincipalName%20eq%20'alice@contoso.com'",
        None,
        200,
    )
    .await;
    call(t, G, Method::GET, &format!("/users/{ALICE}"), None, 200).await;
    call(
        t,
        G,
        Method::GET,
        "/users/alice@contoso.com?$select=id,accountEnabled",
        None,
        200,
    )
    .await;
    call(
        t,
        G,
        Method::GET,
        &format!("/users/{MISSING_ID}"),
        None,
        404,
    )
    .await;
    let created = call(
        t,
        G,
        Method::POST,
        "/users",
        Some(json!({
            "accountEnabled": true,
            "displayName": "Break Glass 01",
            "mailNickname": "bg-01",
            "userPrincipalName": "bg-01@contoso.onmicrosoft.com",
            "passwordProfile": {"password": "C0rrect-Horse-Battery-Staple!", "forceChangePasswordNextSignIn": false},
        })),
        201,
    )
    .await;
    let user = created["id"].as_str().expect("created user id").to_owned();
    call(
        t,
        G,
        Method::POST,
        "/users",
        Some(json!({"displayName": "x", "favouriteColour": "red"})),
        400,
    )
    .await;
    call(
        t,
        G,
        Method::PATCH,
        &format!("/users/{user}"),
        Some(json!({"usageLocation": "NL"})),
        204,
    )
    .await;
    call(
        t,
        G,
        Method::GET,
        &format!("/users/{ALICE}/authentication/methods"),
        None,
        200,
    )
    .await;
    call(
        t,
        G,
        Method::GET,
        &format!("/users/{ALICE}/authentication/fido2Methods"),
        None,
        200,
    )
    .await;

    // Directory roles and PIM around the new account.
    call(
        t,
        G,
        Method::GET,
        "/roleManagement/directory/roleDefinitions",
        None,
        200,
    )
    .await;
    call(
        t,
        G,
        Method::GET,
        &format!("/roleManagement/directory/roleDefinitions/{GLOBAL_ADMIN}"),
        None,
        200,
    )
    .await;
    let direct = call(
        t,
        G,
        Method::POST,
        "/roleManagement/directory/roleAssignments",
        Some(json!({"principalId": user, "roleDefinitionId": SECURITY_READER, "directoryScopeId": "/"})),
        201,
    )
    .await;
    let direct_id = direct["id"].as_str().expect("assignment id").to_owned();
    call(
        t,
        G,
        Method::GET,
        &format!("/roleManagement/directory/roleAssignments?$filter=principalId%20eq%20'{user}'"),
        None,
        200,
    )
    .await;
    call(
        t,
        G,
        Method::GET,
        &format!("/roleManagement/directory/roleAssignments/{direct_id}?$expand=principal"),
        None,
        200,
    )
    .await;
    call(
        t,
        G,
        Method::DELETE,
        &format!("/roleManagement/directory/roleAssignments/{direct_id}"),
        None,
        204,
    )
    .await;

    t.set_settings(json!({"pim.provisioning_delay_ms": 0}))
        .await;
    let request = call(
        t,
        G,
        Method::POST,
        "/roleManagement/directory/roleAssignmentScheduleRequests",
        Some(json!({
            "action": "adminAssign",
            "principalId": user,
            "roleDefinitionId": GLOBAL_ADMIN,
            "directoryScopeId": "/",
            "justification": "Emergency access account",
            "scheduleInfo": {"startDateTime": null, "expiration": {"type": "noExpiration"}},
        })),
        201,
    )
    .await;
    let request_id = request["id"].as_str().expect("request id").to_owned();
    call(
        t,
        G,
        Method::GET,
        "/roleManagement/directory/roleAssignmentScheduleRequests",
        None,
        200,
    )
    .await;
    call(
        t,
        G,
        Method::GET,
        &format!("/roleManagement/directory/roleAssignmentScheduleRequests/{request_id}"),
        None,
        200,
    )
    .await;
    let by_principal = format!("$filter=principalId%20eq%20'{user}'");
    let schedules = call(
        t,
        G,
        Method::GET,
        &format!("/roleManagement/directory/roleAssignmentSchedules?{by_principal}"),
        None,
        200,
    )
    .await;
    let schedule_id = schedules["value"][0]["id"]
        .as_str()
        .expect("provisioned schedule")
        .to_owned();
    call(
        t,
        G,
        Method::GET,
        &format!("/roleManagement/directory/roleAssignmentSchedules/{schedule_id}"),
        None,
        200,
    )
    .await;
    call(
        t,
        G,
        Method::GET,
        &format!("/roleManagement/directory/roleAssignmentScheduleInstances?{by_principal}"),
        None,
        200,
    )
    .await;
    let assignments = call(
        t,
        G,
        Method::GET,
        &format!("/policies/roleManagementPolicyAssignments?$filter=scopeId%20eq%20'/'%20and%20scopeType%20eq%20'DirectoryRole'%20and%20roleDefinitionId%20eq%20'{GLOBAL_ADMIN}'"),
        None,
        200,
    )
    .await;
    let policy = assignments["value"][0]["policyId"]
        .as_str()
        .expect("policy id")
        .to_owned();
    call(
        t,
        G,
        Method::GET,
        &format!("/policies/roleManagementPolicies/{policy}"),
        None,
        200,
    )
    .await;
    call(
        t,
        G,
        Method::GET,
        &format!("/policies/roleManagementPolicies/{policy}/rules"),
        None,
        200,
    )
    .await;
    call(
        t,
        G,
        Method::GET,
        &format!("/policies/roleManagementPolicies/{policy}/rules/Expiration_Admin_Assignment"),
        None,
        200,
    )
    .await;

    // Groups, domains, organization.
    call(
        t,
        G,
        Method::GET,
        &format!("/groups/{EXCLUSION_GROUP}"),
        None,
        200,
    )
    .await;
    call(
        t,
        G,
        Method::GET,
        &format!("/groups/{EXCLUSION_GROUP}/members"),
        None,
        200,
    )
    .await;
    call(t, G, Method::GET, "/domains", None, 200).await;
    call(t, G, Method::GET, "/domains/contoso.com", None, 200).await;
    call(t, G, Method::GET, "/domains/nowhere.example", None, 404).await;
    call(t, G, Method::GET, "/organization", None, 200).await;

    // Authentication methods one by one, passkeys, registration details, strengths.
    call(
        t,
        G,
        Method::GET,
        &format!("/users/{ALICE}/authentication/methods/{PASSWORD_METHOD_ID}"),
        None,
        200,
    )
    .await;
    call(
        t,
        G,
        Method::GET,
        &format!("/users/{ALICE}/authentication/methods/{MISSING_ID}"),
        None,
        404,
    )
    .await;
    let keys = call(
        t,
        G,
        Method::GET,
        &format!("/users/{LEGACY_EMERGENCY}/authentication/fido2Methods"),
        None,
        200,
    )
    .await;
    let key = keys["value"][0]["id"].as_str().expect("seeded passkey");
    call(
        t,
        G,
        Method::GET,
        &format!("/users/{LEGACY_EMERGENCY}/authentication/fido2Methods/{key}"),
        None,
        200,
    )
    .await;
    // The provider's app may read methods, not delete them: the documented 403.
    call(
        t,
        G,
        Method::DELETE,
        &format!("/users/{LEGACY_EMERGENCY}/authentication/fido2Methods/{key}"),
        None,
        403,
    )
    .await;
    call(
        t,
        G,
        Method::GET,
        "/reports/authenticationMethods/userRegistrationDetails",
        None,
        200,
    )
    .await;
    call(
        t,
        G,
        Method::GET,
        &format!("/reports/authenticationMethods/userRegistrationDetails/{LEGACY_EMERGENCY}"),
        None,
        200,
    )
    .await;
    call(
        t,
        G,
        Method::GET,
        "/policies/authenticationStrengthPolicies",
        None,
        200,
    )
    .await;
    call(
        t,
        G,
        Method::GET,
        &format!("/policies/authenticationStrengthPolicies/{PHISHING_RESISTANT}"),
        None,
        200,
    )
    .await;

    // Administrative units: a restricted unit with the new account and a scoped role.
    call(
        t,
        G,
        Method::GET,
        "/directory/administrativeUnits",
        None,
        200,
    )
    .await;
    let unit = call(
        t,
        G,
        Method::POST,
        "/directory/administrativeUnits",
        Some(json!({"displayName": "Walk: emergency access", "description": "walk", "isMemberManagementRestricted": true})),
        201,
    )
    .await;
    let unit = unit["id"].as_str().expect("unit id").to_owned();
    let units = format!("/directory/administrativeUnits/{unit}");
    call(t, G, Method::GET, &units, None, 200).await;
    call(
        t,
        G,
        Method::PATCH,
        &units,
        Some(json!({"description": "walk, updated"})),
        204,
    )
    .await;
    call(
        t,
        G,
        Method::PATCH,
        &units,
        Some(json!({"isMemberManagementRestricted": false})),
        400,
    )
    .await;
    call(
        t,
        G,
        Method::POST,
        &format!("{units}/members/$ref"),
        Some(json!({"@odata.id": format!("https://graph.microsoft.com/v1.0/directoryObjects/{user}")})),
        204,
    )
    .await;
    call(
        t,
        G,
        Method::POST,
        &format!("{units}/members/$ref"),
        Some(json!({"@odata.id": format!("https://graph.microsoft.com/v1.0/directoryObjects/{MISSING_ID}")})),
        404,
    )
    .await;
    call(t, G, Method::GET, &format!("{units}/members"), None, 200).await;
    call(
        t,
        G,
        Method::GET,
        &format!("{units}/members/$ref"),
        None,
        200,
    )
    .await;
    call(
        t,
        G,
        Method::GET,
        &format!("/users/{user}/memberOf"),
        None,
        200,
    )
    .await;
    let scoped = call(
        t,
        G,
        Method::POST,
        &format!("{units}/scopedRoleMembers"),
        Some(json!({"roleId": USER_ADMINISTRATOR, "roleMemberInfo": {"id": PROVIDER_SP}})),
        201,
    )
    .await;
    let scoped = scoped["id"].as_str().expect("membership id").to_owned();
    call(
        t,
        G,
        Method::POST,
        &format!("{units}/scopedRoleMembers"),
        Some(json!({"roleId": GLOBAL_ADMIN, "roleMemberInfo": {"id": PROVIDER_SP}})),
        400,
    )
    .await;
    call(
        t,
        G,
        Method::GET,
        &format!("{units}/scopedRoleMembers"),
        None,
        200,
    )
    .await;
    call(
        t,
        G,
        Method::GET,
        &format!("{units}/scopedRoleMembers/{scoped}"),
        None,
        200,
    )
    .await;
    call(
        t,
        G,
        Method::DELETE,
        &format!("{units}/scopedRoleMembers/{scoped}"),
        None,
        204,
    )
    .await;
    call(
        t,
        G,
        Method::DELETE,
        &format!("{units}/members/{user}/$ref"),
        None,
        204,
    )
    .await;
    call(
        t,
        G,
        Method::DELETE,
        &format!("{units}/members/{user}/$ref"),
        None,
        404,
    )
    .await;
    call(t, G, Method::DELETE, &units, None, 204).await;
    call(t, G, Method::GET, &units, None, 404).await;

    // Conditional access: list, get, create, update (state), delete.
    call(
        t,
        G,
        Method::GET,
        "/identity/conditionalAccess/policies",
        None,
        200,
    )
    .await;
    call(
        t,
        G,
        Method::GET,
        &format!("/identity/conditionalAccess/policies/{MFA_ALL_USERS}"),
        None,
        200,
    )
    .await;
    let policy = call(
        t,
        G,
        Method::POST,
        "/identity/conditionalAccess/policies",
        Some(json!({
            "displayName": "Walk: require MFA for admins",
            "state": "enabledForReportingButNotEnforced",
            "conditions": {
                "clientAppTypes": ["all"],
                "applications": {"includeApplications": ["All"]},
                "users": {"includeRoles": [GLOBAL_ADMIN], "excludeUsers": [user], "excludeGroups": [EXCLUSION_GROUP]},
            },
            "grantControls": {"operator": "OR", "builtInControls": ["mfa"]},
        })),
        201,
    )
    .await;
    let policy_id = policy["id"].as_str().expect("policy id").to_owned();
    call(
        t,
        G,
        Method::PATCH,
        &format!("/identity/conditionalAccess/policies/{policy_id}"),
        Some(json!({"state": "disabled"})),
        204,
    )
    .await;
    call(
        t,
        G,
        Method::DELETE,
        &format!("/identity/conditionalAccess/policies/{policy_id}"),
        None,
        204,
    )
    .await;
    call(
        t,
        G,
        Method::GET,
        &format!("/identity/conditionalAccess/policies/{MISSING_ID}"),
        None,
        404,
    )
    .await;

    // Soft delete, deleted item, restore, delete again and purge. The Global Administrator
    // request above is removed first so the account is an ordinary user again.
    call(
        t,
        G,
        Method::POST,
        "/roleManagement/directory/roleAssignmentScheduleRequests",
        Some(json!({"action": "adminRemove", "principalId": user, "roleDefinitionId": GLOBAL_ADMIN, "directoryScopeId": "/"})),
        201,
    )
    .await;
    call(t, G, Method::DELETE, &format!("/users/{user}"), None, 204).await;
    call(
        t,
        G,
        Method::GET,
        &format!("/directory/deletedItems/{user}"),
        None,
        200,
    )
    .await;
    call(
        t,
        G,
        Method::POST,
        &format!("/directory/deletedItems/{user}/restore"),
        None,
        200,
    )
    .await;
    call(t, G, Method::DELETE, &format!("/users/{user}"), None, 204).await;
    call(
        t,
        G,
        Method::DELETE,
        &format!("/directory/deletedItems/{user}"),
        None,
        204,
    )
    .await;
    call(
        t,
        G,
        Method::GET,
        &format!("/directory/deletedItems/{user}"),
        None,
        404,
    )
    .await;
}

async fn walk_arm(t: &TestTenant) {
    use Api::Arm as A;
    let workspace = format!("/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.OperationalInsights/workspaces/{WORKSPACE}");

    // Tenant diagnostic settings (microsoft.aadiam).
    let diag = "/providers/microsoft.aadiam/diagnosticSettings";
    call(
        t,
        A,
        Method::GET,
        "/providers/microsoft.aadiam/diagnosticSettingsCategories?api-version=2017-04-01",
        None,
        200,
    )
    .await;
    call(
        t,
        A,
        Method::GET,
        &format!("{diag}?api-version=2017-04-01"),
        None,
        200,
    )
    .await;
    let setting = format!("{diag}/bg-signins?api-version=2017-04-01");
    call(
        t,
        A,
        Method::PUT,
        &setting,
        Some(json!({"properties": {"workspaceId": workspace, "logs": [{"category": "SignInLogs", "enabled": true}]}})),
        200,
    )
    .await;
    call(t, A, Method::GET, &setting, None, 200).await;
    call(
        t,
        A,
        Method::PUT,
        &setting,
        Some(json!({"properties": {}, "colour": "red"})),
        400,
    )
    .await;
    call(t, A, Method::DELETE, &setting, None, 200).await;
    call(t, A, Method::GET, &setting, None, 404).await;

    // A principal without an Azure role at /providers/Microsoft.aadiam: ARM's 403.
    let helpdesk = arm_token_of(t, "helpdesk-automation").await;
    call_as(
        t,
        &helpdesk,
        Method::GET,
        &format!("{diag}?api-version=2017-04-01"),
        None,
        403,
    )
    .await;

    // Role assignments at /providers/Microsoft.aadiam (2022-04-01), as the seed's RBAC admin.
    let rbac_admin = arm_token_of(t, "tenant-rbac-admin").await;
    let assignments =
        "/providers/Microsoft.aadiam/providers/Microsoft.Authorization/roleAssignments";
    call_as(
        t,
        &rbac_admin,
        Method::GET,
        &format!("{assignments}?api-version=2022-04-01"),
        None,
        200,
    )
    .await;
    call_as(
        t,
        &rbac_admin,
        Method::GET,
        &format!("{assignments}?api-version=2022-04-01&$filter=principalId%20eq%20'374cfff1-0fa8-48d6-a0c2-7cac102135c0'"),
        None,
        200,
    )
    .await;
    let assignment =
        format!("{assignments}/6a1e2f4c-9b3d-4e5a-8c7f-0d1b2a3c4e5f?api-version=2022-04-01");
    let reader = json!({"properties": {
        "roleDefinitionId": "/providers/Microsoft.Authorization/roleDefinitions/acdd72a7-3385-48ef-bd42-f606fba81ae7",
        "principalId": "374cfff1-0fa8-48d6-a0c2-7cac102135c0",
        "principalType": "ServicePrincipal",
    }});
    call(t, A, Method::PUT, &assignment, Some(reader.clone()), 403).await;
    call_as(
        t,
        &rbac_admin,
        Method::PUT,
        &assignment,
        Some(reader.clone()),
        201,
    )
    .await;
    call_as(t, &rbac_admin, Method::PUT, &assignment, Some(reader), 200).await;
    call_as(t, &rbac_admin, Method::GET, &assignment, None, 200).await;
    call_as(
        t,
        &helpdesk,
        Method::GET,
        &format!("{diag}?api-version=2017-04-01"),
        None,
        200,
    )
    .await;
    call_as(t, &rbac_admin, Method::DELETE, &assignment, None, 200).await;
    call_as(t, &rbac_admin, Method::DELETE, &assignment, None, 204).await;
    call_as(t, &rbac_admin, Method::GET, &assignment, None, 404).await;

    // Action groups (2023-01-01).
    let rg = format!("/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.Insights");
    let group = format!("{rg}/actionGroups/ag-walk?api-version=2023-01-01");
    let created = call(
        t,
        A,
        Method::PUT,
        &group,
        Some(json!({
            "location": "Global",
            "properties": {
                "groupShortName": "walk",
                "enabled": true,
                "emailReceivers": [{"name": "soc", "emailAddress": "soc@contoso.com"}],
            },
        })),
        201,
    )
    .await;
    let group_id = created["id"].as_str().expect("action group id").to_owned();
    call(t, A, Method::GET, &group, None, 200).await;
    call(
        t,
        A,
        Method::PATCH,
        &group,
        Some(json!({"tags": {"tier": "0"}, "properties": {"enabled": false}})),
        200,
    )
    .await;
    call(
        t,
        A,
        Method::GET,
        &format!("{rg}/actionGroups?api-version=2023-01-01"),
        None,
        200,
    )
    .await;

    // Scheduled query rules, in both vendored versions, on a table the workspace has.
    for version in ["2023-12-01", "2021-08-01"] {
        let rule = format!("{rg}/scheduledQueryRules/sqr-walk?api-version={version}");
        call(
            t,
            A,
            Method::PUT,
            &rule,
            Some(json!({
                "location": "westeurope",
                "kind": "LogAlert",
                "properties": {
                    "displayName": "Walk rule",
                    "severity": 1,
                    "enabled": true,
                    "evaluationFrequency": "PT5M",
                    "windowSize": "PT5M",
                    "scopes": [workspace],
                    "criteria": {"allOf": [{"query": "Heartbeat | where TimeGenerated > ago(5m)", "timeAggregation": "Count", "operator": "GreaterThan", "threshold": 0}]},
                    "actions": {"actionGroups": [group_id]},
                },
            })),
            201,
        )
        .await;
        call(t, A, Method::GET, &rule, None, 200).await;
        call(
            t,
            A,
            Method::PATCH,
            &rule,
            Some(json!({"properties": {"enabled": false}})),
            200,
        )
        .await;
        call(
            t,
            A,
            Method::GET,
            &format!("{rg}/scheduledQueryRules?api-version={version}"),
            None,
            200,
        )
        .await;
        call(t, A, Method::DELETE, &rule, None, 200).await;
        call(t, A, Method::GET, &rule, None, 404).await;
    }
    call(t, A, Method::DELETE, &group, None, 200).await;
    call(t, A, Method::GET, &group, None, 404).await;
}

/// The vendored operations the request log shows were exercised.
async fn exercised_operations(t: &TestTenant) -> BTreeSet<String> {
    t.requests("")
        .await
        .iter()
        .filter_map(|entry| {
            let api = match entry["family"].as_str()? {
                "graph" | "graph-conditional-access" => Api::Graph,
                "arm" => Api::Arm,
                _ => return None,
            };
            let method = Method::from_bytes(entry["method"].as_str()?.as_bytes()).ok()?;
            spec::operation_key(
                api,
                &method,
                entry["path"].as_str()?,
                entry["query"].as_str()?,
            )
        })
        .collect()
}

#[tokio::test]
async fn every_served_operation_answers_in_the_documented_shape() {
    let t = TestTenant::start().await;
    walk_graph(&t).await;
    walk_arm(&t).await;

    t.assert_no_spec_violations().await;
    let exercised = exercised_operations(&t).await;
    let missed: Vec<String> = spec::operation_keys()
        .into_iter()
        .filter(|key| !exercised.contains(key) && !NOT_SERVED.contains(&key.as_str()))
        .collect();
    assert!(missed.is_empty(), "the walk did not exercise: {missed:?}");
}

#[tokio::test]
async fn response_violations_are_recorded_for_undocumented_shapes() {
    // The walk above passes only if the recorder works: show it catches a wrong shape, using a
    // fault rule that answers a documented path with an undocumented body.
    let t = TestTenant::start().await;
    let response = t
        .admin(Method::POST, "/faults")
        .json(&json!({"path": "^/v1\\.0/domains$", "status": 200, "body": {"value": [{"id": "contoso.com", "colour": "blue"}]}}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    call(&t, Api::Graph, Method::GET, "/domains", None, 200).await;
    let violations = t.spec_violations().await;
    assert_eq!(violations.len(), 1, "{violations:?}");
    assert_eq!(
        violations[0]["operation"],
        json!("domains.domain.ListDomain")
    );
    assert_eq!(violations[0]["pointer"], json!("/value/0/colour"));
}
