//! Administrative units over real HTTP: CRUD with the immutable restriction flag and the
//! restricted-unit limit, members by `$ref`, scoped-role members, `memberOf`; what a restricted
//! unit does to writes on its members; `authorizationInfo.certificateUserIds`; and the
//! authentication-method reads around them (methods by id, registration details,
//! authentication strengths). Every test ends with zero spec violations.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::common::{json_body, TestTenant};

// From seeds/default (directory.json, auth.json, pim.json).
const ALICE: &str = "5d2c6f0e-3b1a-4c8e-9f7d-0a1b2c3d4e01";
const BOB_SYNCED: &str = "5d2c6f0e-3b1a-4c8e-9f7d-0a1b2c3d4e02";
const ERIN: &str = "5d2c6f0e-3b1a-4c8e-9f7d-0a1b2c3d4e06";
const LEGACY_EMERGENCY: &str = "5d2c6f0e-3b1a-4c8e-9f7d-0a1b2c3d4e05";
const EXCLUSION_GROUP: &str = "8a7b6c5d-0000-4e1f-9a2b-3c4d5e6f7a01";
const TIER0_GROUP: &str = "8a7b6c5d-0000-4e1f-9a2b-3c4d5e6f7a02";
const BRANCH_OFFICES_UNIT: &str = "3ed29667-91a0-4a96-9654-80c9dde3898d";
const PROVIDER_SP: &str = "4f97c425-4dcd-40fc-b52d-0e5f5b1ab19b";
const USER_ADMIN_SP: &str = "6ac7e23a-d814-46ba-a36a-c4c4b5b07626";
const PASSWORD_METHOD_ID: &str = "28c10230-6103-485e-b985-444c60001490";
const MISSING_ID: &str = "00000000-0000-4000-8000-0000000000ff";

const GLOBAL_ADMINISTRATOR: &str = "62e90394-69f5-4237-9190-012177145e10";
const USER_ADMINISTRATOR: &str = "fe930be7-5e62-47db-91af-98c3a49a38b1";
const PRIVILEGED_AUTH_ADMIN: &str = "7be44c8a-adaf-4e2a-84d6-ab2649e08a13";
const SECURITY_READER: &str = "5d6b6bb7-de71-4623-b4af-96380a352509";

const UNITS: &str = "/directory/administrativeUnits";
const DENIED: &str = "Insufficient privileges to complete the operation.";

/// Index of a seed application in `auth.applications`.
const HELPDESK_APP: usize = 1;
const USER_ADMIN_APP: usize = 2;

/// A Graph bearer for another seed application.
async fn token_of(t: &TestTenant, seed: &Value, index: usize) -> String {
    let app = &seed["auth"]["applications"][index];
    let response = t
        .token_request(&[
            ("grant_type", "client_credentials"),
            ("client_id", app["appId"].as_str().unwrap()),
            ("client_secret", app["clientSecrets"][0].as_str().unwrap()),
            ("scope", "https://graph.microsoft.com/.default"),
        ])
        .await;
    json_body(response).await["access_token"]
        .as_str()
        .expect("token")
        .to_owned()
}

fn as_app(t: &TestTenant, token: &str, method: Method, path: &str) -> reqwest::RequestBuilder {
    t.http
        .request(method, t.url(&format!("/v1.0{path}")))
        .bearer_auth(token)
}

/// The default seed with extra application permissions for the provider's app.
fn seed_with_provider_roles(extra: &[&str]) -> Value {
    let mut seed = fake_tenant::seed::load("default").unwrap();
    let roles = seed["auth"]["applications"][0]["appRoles"]
        .as_array_mut()
        .unwrap();
    for role in extra {
        roles.push(json!(role));
    }
    seed
}

async fn send(request: reqwest::RequestBuilder) -> (StatusCode, Value) {
    let response = request.send().await.expect("emulator reachable");
    let status = response.status();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

fn assert_error(status: StatusCode, body: &Value, expected: StatusCode, code: &str) {
    assert_eq!(status, expected, "{body}");
    assert_eq!(body["error"]["code"], code, "{body}");
}

async fn create_unit(t: &TestTenant, name: &str, restricted: bool) -> String {
    let (status, body) = send(t.graph(Method::POST, UNITS).json(&json!({
        "displayName": name,
        "description": "test unit",
        "isMemberManagementRestricted": restricted,
    })))
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["id"].as_str().unwrap().to_owned()
}

async fn add_member(t: &TestTenant, unit: &str, member: &str) -> (StatusCode, Value) {
    send(
        t.graph(Method::POST, &format!("{UNITS}/{unit}/members/$ref"))
            .json(&json!({"@odata.id": format!("https://graph.microsoft.com/v1.0/directoryObjects/{member}")})),
    )
    .await
}

async fn add_scoped_role(
    t: &TestTenant,
    unit: &str,
    role: &str,
    principal: &str,
) -> (StatusCode, Value) {
    send(
        t.graph(Method::POST, &format!("{UNITS}/{unit}/scopedRoleMembers"))
            .json(&json!({"roleId": role, "roleMemberInfo": {"id": principal}})),
    )
    .await
}

async fn create_user(t: &TestTenant, alias: &str) -> String {
    let (status, body) = send(t.graph(Method::POST, "/users").json(&json!({
        "accountEnabled": true,
        "displayName": format!("Test {alias}"),
        "mailNickname": alias,
        "userPrincipalName": format!("{alias}@contoso.onmicrosoft.com"),
        "passwordProfile": {"password": "Str0ng!Passphrase#42", "forceChangePasswordNextSignIn": false},
    })))
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["id"].as_str().unwrap().to_owned()
}

fn password_patch(password: &str) -> Value {
    json!({"passwordProfile": {"password": password, "forceChangePasswordNextSignIn": false}})
}

async fn select(t: &TestTenant, user: &str, properties: &str) -> Value {
    let (status, body) =
        send(t.graph(Method::GET, &format!("/users/{user}?$select={properties}"))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

#[tokio::test]
async fn units_are_created_read_updated_and_deleted_and_the_restriction_flag_is_fixed() {
    let t = TestTenant::start().await;
    let (status, created) = send(t.graph(Method::POST, UNITS).json(&json!({
        "displayName": "Emergency access",
        "description": "Break-glass accounts",
        "isMemberManagementRestricted": true,
    })))
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(created["isMemberManagementRestricted"], true);
    assert_eq!(created["visibility"], Value::Null);
    assert!(created["@odata.context"]
        .as_str()
        .unwrap()
        .ends_with("$metadata#directory/administrativeUnits/$entity"));

    // The flag defaults to false.
    let (_, plain) = send(
        t.graph(Method::POST, UNITS)
            .json(&json!({"displayName": "Plain unit"})),
    )
    .await;
    assert_eq!(plain["isMemberManagementRestricted"], false);

    let (_, listed) = send(t.graph(Method::GET, UNITS)).await;
    let names: Vec<&str> = listed["value"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|u| u["displayName"].as_str())
        .collect();
    assert!(names.contains(&"Emergency access"), "{names:?}");
    assert!(
        names.contains(&"Contoso Branch Offices"),
        "seeded unit: {names:?}"
    );
    let (_, filtered) = send(t.graph(
        Method::GET,
        &format!("{UNITS}?$filter=displayName%20eq%20'emergency%20access'"),
    ))
    .await;
    assert_eq!(filtered["value"].as_array().unwrap().len(), 1);

    let path = format!("{UNITS}/{id}");
    let (status, _) = send(
        t.graph(Method::PATCH, &path)
            .json(&json!({"description": "Only break-glass accounts"})),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    // Changing the restriction after creation is refused; resending the same value is no change.
    let (status, body) = send(
        t.graph(Method::PATCH, &path)
            .json(&json!({"isMemberManagementRestricted": false})),
    )
    .await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "Request_BadRequest");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("isMemberManagementRestricted"));
    let (status, _) = send(
        t.graph(Method::PATCH, &path)
            .json(&json!({"isMemberManagementRestricted": true, "displayName": "Emergency access (restricted)"})),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, read) = send(t.graph(Method::GET, &path)).await;
    assert_eq!(read["isMemberManagementRestricted"], true);
    assert_eq!(read["description"], "Only break-glass accounts");
    assert_eq!(read["displayName"], "Emergency access (restricted)");

    // Bad input.
    let (status, body) = send(
        t.graph(Method::POST, UNITS)
            .json(&json!({"description": "no name"})),
    )
    .await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "Request_BadRequest");
    let (status, body) = send(
        t.graph(Method::POST, UNITS)
            .json(&json!({"displayName": "x", "isMemberManagementRestricted": "yes"})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, body) = send(
        t.graph(Method::PATCH, &format!("{UNITS}/{MISSING_ID}"))
            .json(&json!({"description": "x"})),
    )
    .await;
    assert_error(
        status,
        &body,
        StatusCode::NOT_FOUND,
        "Request_ResourceNotFound",
    );

    let (status, _) = send(t.graph(Method::DELETE, &path)).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = send(t.graph(Method::GET, &path)).await;
    assert_error(
        status,
        &body,
        StatusCode::NOT_FOUND,
        "Request_ResourceNotFound",
    );
    let (status, _) = send(t.graph(Method::DELETE, &path)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    t.assert_no_spec_violations().await;
}

#[tokio::test]
async fn unit_writes_need_the_permission_and_restricted_units_a_tenant_role_manager() {
    // helpdesk-automation gets AdministrativeUnit.ReadWrite.All but still holds no directory role.
    let mut seed = fake_tenant::seed::load("default").unwrap();
    seed["auth"]["applications"][HELPDESK_APP]["appRoles"]
        .as_array_mut()
        .unwrap()
        .push(json!("AdministrativeUnit.ReadWrite.All"));
    let t = TestTenant::start_with(seed.clone()).await;
    let helpdesk = token_of(&t, &seed, HELPDESK_APP).await;
    let plain_seed = fake_tenant::seed::load("default").unwrap();
    let user_admin = token_of(&t, &plain_seed, USER_ADMIN_APP).await;

    // Without AdministrativeUnit.ReadWrite.All: 403.
    let (status, body) =
        send(as_app(&t, &user_admin, Method::POST, UNITS).json(&json!({"displayName": "x"}))).await;
    assert_error(
        status,
        &body,
        StatusCode::FORBIDDEN,
        "Authorization_RequestDenied",
    );
    assert_eq!(body["error"]["message"], DENIED);
    // With it: an ordinary unit is fine, a restricted one needs Global or Privileged Role
    // Administrator, and so does adding members to any unit.
    let (status, body) = send(
        as_app(&t, &helpdesk, Method::POST, UNITS).json(&json!({"displayName": "Helpdesk unit"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let helpdesk_unit = body["id"].as_str().unwrap().to_owned();
    let (status, body) = send(
        as_app(&t, &helpdesk, Method::POST, UNITS)
            .json(&json!({"displayName": "Restricted", "isMemberManagementRestricted": true})),
    )
    .await;
    assert_error(
        status,
        &body,
        StatusCode::FORBIDDEN,
        "Authorization_RequestDenied",
    );
    let (status, body) = send(
        as_app(&t, &helpdesk, Method::POST, &format!("{UNITS}/{helpdesk_unit}/members/$ref"))
            .json(&json!({"@odata.id": format!("https://graph.microsoft.com/v1.0/directoryObjects/{ERIN}")})),
    )
    .await;
    assert_error(
        status,
        &body,
        StatusCode::FORBIDDEN,
        "Authorization_RequestDenied",
    );
    // Reads need a read permission (user-admin-automation has Directory.Read.All).
    let (status, _) = send(as_app(&t, &user_admin, Method::GET, UNITS)).await;
    assert_eq!(status, StatusCode::OK);

    // The provider's app (Privileged Role Administrator) manages restricted units; deleting one
    // needs the same role.
    let restricted = create_unit(&t, "Restricted", true).await;
    let (status, body) = send(as_app(
        &t,
        &helpdesk,
        Method::DELETE,
        &format!("{UNITS}/{restricted}"),
    ))
    .await;
    assert_error(
        status,
        &body,
        StatusCode::FORBIDDEN,
        "Authorization_RequestDenied",
    );
    t.assert_no_spec_violations().await;
}

#[tokio::test]
async fn at_most_one_hundred_restricted_units_exist_in_a_tenant() {
    let t = TestTenant::start().await;
    for i in 0..100 {
        create_unit(&t, &format!("Restricted {i}"), true).await;
    }
    let (status, body) = send(
        t.graph(Method::POST, UNITS)
            .json(&json!({"displayName": "Restricted 101", "isMemberManagementRestricted": true})),
    )
    .await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "Request_BadRequest");
    assert!(
        body["error"]["message"].as_str().unwrap().contains("100"),
        "{body}"
    );
    // Units without the restriction do not count against it.
    create_unit(&t, "Ordinary", false).await;

    // The limit can be lowered for tests; deleting a restricted unit frees a place.
    t.set_settings(json!({"graph.restricted_unit_limit": 101}))
        .await;
    let extra = create_unit(&t, "Restricted 101", true).await;
    let (status, _) = send(
        t.graph(Method::POST, UNITS)
            .json(&json!({"displayName": "Restricted 102", "isMemberManagementRestricted": true})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = send(t.graph(Method::DELETE, &format!("{UNITS}/{extra}"))).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    create_unit(&t, "Restricted 101 again", true).await;
    t.assert_no_spec_violations().await;
}

#[tokio::test]
async fn members_are_added_and_removed_by_reference() {
    // A Microsoft 365 group, which restricted units do not take.
    let mut seed = fake_tenant::seed::load("default").unwrap();
    seed["directory"]["groups"]
        .as_array_mut()
        .unwrap()
        .push(json!({
            "id": "8a7b6c5d-0000-4e1f-9a2b-3c4d5e6f7a09",
            "displayName": "Marketing",
            "mailEnabled": true,
            "securityEnabled": false,
            "groupTypes": ["Unified"],
            "mailNickname": "marketing",
        }));
    let t = TestTenant::start_with(seed).await;
    let unit = create_unit(&t, "Emergency access", true).await;

    let (status, body) = add_member(&t, &unit, LEGACY_EMERGENCY).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let (status, body) = add_member(&t, &unit, LEGACY_EMERGENCY).await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "Request_BadRequest");
    assert_eq!(
        body["error"]["message"],
        "One or more added object references already exist for the following modified properties: 'members'."
    );
    let (status, body) = add_member(&t, &unit, MISSING_ID).await;
    assert_error(
        status,
        &body,
        StatusCode::NOT_FOUND,
        "Request_ResourceNotFound",
    );
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains(MISSING_ID));
    let (status, body) = send(
        t.graph(Method::POST, &format!("{UNITS}/{unit}/members/$ref"))
            .json(&json!({"@odata.id": "not-a-reference"})),
    )
    .await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "Request_BadRequest");
    let (status, body) = send(
        t.graph(Method::POST, &format!("{UNITS}/{unit}/members/$ref"))
            .json(&json!({})),
    )
    .await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "Request_BadRequest");
    // Security groups may join a restricted unit; Microsoft 365 groups may not.
    let (status, _) = add_member(&t, &unit, EXCLUSION_GROUP).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = add_member(&t, &unit, "8a7b6c5d-0000-4e1f-9a2b-3c4d5e6f7a09").await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "Request_BadRequest");
    let (status, _) = add_member(
        &t,
        BRANCH_OFFICES_UNIT,
        "8a7b6c5d-0000-4e1f-9a2b-3c4d5e6f7a09",
    )
    .await;
    assert_eq!(
        status,
        StatusCode::NO_CONTENT,
        "an ordinary unit takes any group"
    );

    let (_, members) = send(t.graph(Method::GET, &format!("{UNITS}/{unit}/members"))).await;
    let members = members["value"].as_array().unwrap();
    assert_eq!(members.len(), 2);
    assert_eq!(members[0]["@odata.type"], "#microsoft.graph.user");
    assert_eq!(members[0]["id"], LEGACY_EMERGENCY);
    assert_eq!(members[1]["@odata.type"], "#microsoft.graph.group");
    let (_, refs) = send(t.graph(Method::GET, &format!("{UNITS}/{unit}/members/$ref"))).await;
    assert_eq!(
        refs["value"][0],
        format!("{}/v1.0/directoryObjects/{LEGACY_EMERGENCY}", t.url)
    );

    // The member now reports the restriction, and lists the unit among its memberships.
    let user = select(&t, LEGACY_EMERGENCY, "id,isManagementRestricted").await;
    assert_eq!(user["isManagementRestricted"], true);
    let (_, groups) = send(t.graph(
        Method::GET,
        &format!("/groups/{EXCLUSION_GROUP}?$select=id,isManagementRestricted"),
    ))
    .await;
    assert_eq!(groups["isManagementRestricted"], true);
    let (_, member_of) =
        send(t.graph(Method::GET, &format!("/users/{LEGACY_EMERGENCY}/memberOf"))).await;
    let kinds: Vec<(&str, &str)> = member_of["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            (
                o["@odata.type"].as_str().unwrap(),
                o["id"].as_str().unwrap(),
            )
        })
        .collect();
    assert!(
        kinds.contains(&("#microsoft.graph.administrativeUnit", unit.as_str())),
        "{kinds:?}"
    );
    assert!(
        kinds.contains(&("#microsoft.graph.group", EXCLUSION_GROUP)),
        "{kinds:?}"
    );

    let path = format!("{UNITS}/{unit}/members/{LEGACY_EMERGENCY}/$ref");
    let (status, _) = send(t.graph(Method::DELETE, &path)).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = send(t.graph(Method::DELETE, &path)).await;
    assert_error(
        status,
        &body,
        StatusCode::NOT_FOUND,
        "Request_ResourceNotFound",
    );
    let user = select(&t, LEGACY_EMERGENCY, "id,isManagementRestricted").await;
    assert_eq!(user["isManagementRestricted"], Value::Null);
    // The flag is read-only: writing it changes nothing.
    let (status, _) = send(
        t.graph(Method::PATCH, &format!("/users/{ALICE}"))
            .json(&json!({"isManagementRestricted": true})),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(
        select(&t, ALICE, "id,isManagementRestricted").await["isManagementRestricted"],
        Value::Null
    );
    let (status, _) = send(t.graph(Method::GET, &format!("{UNITS}/{MISSING_ID}/members"))).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Members of a unit with dynamic membership follow its rule, not $ref writes.
    let (_, dynamic) = send(t.graph(Method::POST, UNITS).json(&json!({
        "displayName": "Dynamic",
        "membershipType": "Dynamic",
        "membershipRule": "(user.department -eq \"Sales\")",
        "membershipRuleProcessingState": "On",
    })))
    .await;
    let (status, _) = add_member(&t, dynamic["id"].as_str().unwrap(), ERIN).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    t.assert_no_spec_violations().await;
}

#[tokio::test]
async fn scoped_role_members_are_added_listed_and_removed() {
    let t = TestTenant::start().await;
    let unit = create_unit(&t, "Emergency access", true).await;
    let (status, created) = add_scoped_role(&t, &unit, USER_ADMINISTRATOR, PROVIDER_SP).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["roleId"], USER_ADMINISTRATOR);
    assert_eq!(created["administrativeUnitId"], unit.as_str());
    assert_eq!(created["roleMemberInfo"]["id"], PROVIDER_SP);
    assert_eq!(
        created["roleMemberInfo"]["displayName"],
        "terraform-breakglass"
    );
    let membership = created["id"].as_str().unwrap().to_owned();

    let (status, body) = add_scoped_role(&t, &unit, USER_ADMINISTRATOR, PROVIDER_SP).await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "Request_BadRequest");
    // Global Administrator cannot be scoped to a unit; unknown roles and principals are 404.
    let (status, body) = add_scoped_role(&t, &unit, GLOBAL_ADMINISTRATOR, PROVIDER_SP).await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "Request_BadRequest");
    let (status, body) = add_scoped_role(&t, &unit, SECURITY_READER, PROVIDER_SP).await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "Request_BadRequest");
    let (status, body) = add_scoped_role(&t, &unit, MISSING_ID, PROVIDER_SP).await;
    assert_error(
        status,
        &body,
        StatusCode::NOT_FOUND,
        "Request_ResourceNotFound",
    );
    let (status, body) = add_scoped_role(&t, &unit, USER_ADMINISTRATOR, MISSING_ID).await;
    assert_error(
        status,
        &body,
        StatusCode::NOT_FOUND,
        "Request_ResourceNotFound",
    );
    // Groups must be role-assignable; users may hold scoped roles.
    let (status, body) = add_scoped_role(&t, &unit, USER_ADMINISTRATOR, EXCLUSION_GROUP).await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "Request_BadRequest");
    let (status, _) = add_scoped_role(&t, &unit, USER_ADMINISTRATOR, TIER0_GROUP).await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _) = add_scoped_role(&t, &unit, PRIVILEGED_AUTH_ADMIN, ALICE).await;
    assert_eq!(status, StatusCode::CREATED);

    let list_path = format!("{UNITS}/{unit}/scopedRoleMembers");
    let (_, listed) = send(t.graph(Method::GET, &list_path)).await;
    assert_eq!(listed["value"].as_array().unwrap().len(), 3);
    let (_, one) = send(t.graph(Method::GET, &format!("{list_path}/{membership}"))).await;
    assert_eq!(one["roleMemberInfo"]["id"], PROVIDER_SP);
    let (status, _) = send(t.graph(Method::DELETE, &format!("{list_path}/{membership}"))).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = send(t.graph(Method::GET, &format!("{list_path}/{membership}"))).await;
    assert_error(
        status,
        &body,
        StatusCode::NOT_FOUND,
        "Request_ResourceNotFound",
    );
    let (status, _) = send(t.graph(Method::DELETE, &format!("{list_path}/{membership}"))).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Writing needs RoleManagement.ReadWrite.Directory; helpdesk-automation lacks it.
    let seed = fake_tenant::seed::load("default").unwrap();
    let helpdesk = token_of(&t, &seed, HELPDESK_APP).await;
    let (status, body) = send(
        as_app(&t, &helpdesk, Method::POST, &list_path)
            .json(&json!({"roleId": USER_ADMINISTRATOR, "roleMemberInfo": {"id": USER_ADMIN_SP}})),
    )
    .await;
    assert_error(
        status,
        &body,
        StatusCode::FORBIDDEN,
        "Authorization_RequestDenied",
    );
    let (status, _) = send(as_app(&t, &helpdesk, Method::GET, &list_path)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // Deleting the unit takes its scoped roles with it.
    let (status, _) = send(t.graph(Method::DELETE, &format!("{UNITS}/{unit}"))).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = send(t.graph(Method::GET, &list_path)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    t.assert_no_spec_violations().await;
}

#[tokio::test]
async fn a_restricted_unit_shields_its_members_from_tenant_admins_and_app_permissions() {
    let seed = seed_with_provider_roles(&["UserAuthenticationMethod.ReadWrite.All"]);
    let t = TestTenant::start_with(seed.clone()).await;
    let user_admin = token_of(&t, &seed, USER_ADMIN_APP).await;
    let helpdesk = token_of(&t, &seed, HELPDESK_APP).await;
    let account = create_user(&t, "bg-shielded").await;
    let path = format!("/users/{account}");

    // Before: the tenant-scoped User Administrator identity resets the password.
    let (status, body) = send(
        as_app(&t, &user_admin, Method::PATCH, &path).json(&password_patch("Be4ore-Restriction!x")),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");

    let unit = create_unit(&t, "Emergency access", true).await;
    assert_eq!(
        add_member(&t, &unit, &account).await.0,
        StatusCode::NO_CONTENT
    );
    let key = json_body(
        t.admin(Method::POST, &format!("/directory/users/{account}/fido2"))
            .send()
            .await
            .unwrap(),
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_owned();

    // After: password reset, property writes, disabling, deleting and method changes are
    // refused to tenant-scoped roles (User Administrator; the provider's Privileged
    // Authentication Administrator) and to application permissions alone.
    for (token, body) in [
        (&user_admin, password_patch("Aft3r-Restriction!x")),
        (&t.graph_token, password_patch("Aft3r-Restriction!x")),
        (&helpdesk, json!({"displayName": "renamed"})),
        (&user_admin, json!({"accountEnabled": false})),
        (
            &t.graph_token,
            json!({"jobTitle": "x", "usageLocation": "NL"}),
        ),
    ] {
        let (status, error) = send(as_app(&t, token, Method::PATCH, &path).json(&body)).await;
        assert_error(
            status,
            &error,
            StatusCode::FORBIDDEN,
            "Authorization_RequestDenied",
        );
        assert_eq!(error["error"]["message"], DENIED);
    }
    let (status, error) = send(as_app(&t, &user_admin, Method::DELETE, &path)).await;
    assert_error(
        status,
        &error,
        StatusCode::FORBIDDEN,
        "Authorization_RequestDenied",
    );
    let key_path = format!("{path}/authentication/fido2Methods/{key}");
    let (status, error) = send(t.graph(Method::DELETE, &key_path)).await;
    assert_error(
        status,
        &error,
        StatusCode::FORBIDDEN,
        "Authorization_RequestDenied",
    );
    // The usage location (and licences) stay writable; reads are unaffected.
    let (status, _) =
        send(as_app(&t, &user_admin, Method::PATCH, &path).json(&json!({"usageLocation": "NL"})))
            .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let user = select(&t, &account, "id,usageLocation,displayName,accountEnabled").await;
    assert_eq!(user["usageLocation"], "NL");
    assert_eq!(user["displayName"], "Test bg-shielded");
    assert_eq!(user["accountEnabled"], true);

    // A role scoped to a *regular* unit the account is also in does not help.
    assert_eq!(
        add_member(&t, BRANCH_OFFICES_UNIT, &account).await.0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        add_scoped_role(&t, BRANCH_OFFICES_UNIT, USER_ADMINISTRATOR, USER_ADMIN_SP)
            .await
            .0,
        StatusCode::CREATED
    );
    let (status, _) = send(
        as_app(&t, &user_admin, Method::PATCH, &path).json(&password_patch("Aft3r-Restriction!x")),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // User Administrator scoped to the restricted unit: the provider's app manages the member
    // again (password, properties, disable), the other identities still cannot.
    assert_eq!(
        add_scoped_role(&t, &unit, USER_ADMINISTRATOR, PROVIDER_SP)
            .await
            .0,
        StatusCode::CREATED
    );
    for body in [
        password_patch("Sc0ped-Rotation!x"),
        json!({"displayName": "Break glass (shielded)"}),
        json!({"accountEnabled": false}),
    ] {
        let (status, error) = send(t.graph(Method::PATCH, &path).json(&body)).await;
        assert_eq!(status, StatusCode::NO_CONTENT, "{body}: {error}");
    }
    let (status, _) = send(
        as_app(&t, &user_admin, Method::PATCH, &path).json(&password_patch("Aft3r-Restriction!x")),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // User Administrator does not cover authentication methods; Authentication or Privileged
    // Authentication Administrator at the unit's scope does.
    let (status, _) = send(t.graph(Method::DELETE, &key_path)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        add_scoped_role(&t, &unit, PRIVILEGED_AUTH_ADMIN, PROVIDER_SP)
            .await
            .0,
        StatusCode::CREATED
    );
    let (status, _) = send(t.graph(Method::DELETE, &key_path)).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = send(t.graph(Method::DELETE, &path)).await;
    assert_eq!(
        status,
        StatusCode::NO_CONTENT,
        "scoped User Administrator may delete"
    );
    t.assert_no_spec_violations().await;
}

#[tokio::test]
async fn a_unit_scoped_role_assignment_counts_like_a_scoped_role_member() {
    let seed = fake_tenant::seed::load("default").unwrap();
    let t = TestTenant::start().await;
    let user_admin = token_of(&t, &seed, USER_ADMIN_APP).await;
    let account = create_user(&t, "bg-assigned").await;
    let unit = create_unit(&t, "Emergency access", true).await;
    add_member(&t, &unit, &account).await;
    let path = format!("/users/{account}");
    let (status, _) = send(
        as_app(&t, &user_admin, Method::PATCH, &path).json(&password_patch("N0t-Yet-Scoped!x")),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // Assign Microsoft Entra roles with administrative unit scope: a role assignment whose
    // directoryScopeId is /administrativeUnits/{id}.
    let (status, body) = send(
        t.graph(Method::POST, "/roleManagement/directory/roleAssignments")
            .json(&json!({
                "principalId": USER_ADMIN_SP,
                "roleDefinitionId": USER_ADMINISTRATOR,
                "directoryScopeId": format!("/administrativeUnits/{unit}"),
            })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = send(
        as_app(&t, &user_admin, Method::PATCH, &path).json(&password_patch("N0w-Scoped-Role!x")),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    t.assert_no_spec_violations().await;
}

#[tokio::test]
async fn nobody_resets_the_password_of_a_global_administrator_inside_a_restricted_unit() {
    let seed = seed_with_provider_roles(&["UserAuthenticationMethod.ReadWrite.All"]);
    let t = TestTenant::start_with(seed).await;
    let unit = create_unit(&t, "Emergency access", true).await;
    // The seeded legacy emergency account holds Global Administrator tenant-wide.
    add_member(&t, &unit, LEGACY_EMERGENCY).await;
    for role in [USER_ADMINISTRATOR, PRIVILEGED_AUTH_ADMIN] {
        assert_eq!(
            add_scoped_role(&t, &unit, role, PROVIDER_SP).await.0,
            StatusCode::CREATED
        );
    }
    let path = format!("/users/{LEGACY_EMERGENCY}");
    // No role that can be scoped to a unit resets a Global Administrator's password, disables
    // or deletes one; ordinary properties and (for Privileged Authentication Administrator)
    // authentication methods and certificate user ids remain manageable.
    for body in [
        password_patch("Never-Applied-1!x"),
        json!({"accountEnabled": false}),
    ] {
        let (status, error) = send(t.graph(Method::PATCH, &path).json(&body)).await;
        assert_error(
            status,
            &error,
            StatusCode::FORBIDDEN,
            "Authorization_RequestDenied",
        );
    }
    let (status, _) = send(t.graph(Method::DELETE, &path)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, body) = send(
        t.graph(Method::PATCH, &path)
            .json(&json!({"jobTitle": "Vault"})),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let (status, body) = send(t.graph(Method::PATCH, &path).json(
        &json!({"authorizationInfo": {"certificateUserIds": ["X509:<PN>emergency-legacy@contoso.onmicrosoft.com"]}}),
    ))
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let keys = json_body(
        t.graph(Method::GET, &format!("{path}/authentication/fido2Methods"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    let key = keys["value"][0]["id"].as_str().unwrap();
    let (status, _) = send(t.graph(
        Method::DELETE,
        &format!("{path}/authentication/fido2Methods/{key}"),
    ))
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);

    // The documented way out: a tenant-scoped Privileged Role Administrator takes the account
    // out of the unit, after which the provider's tenant-wide role works again.
    let (status, _) = send(t.graph(
        Method::DELETE,
        &format!("{UNITS}/{unit}/members/{LEGACY_EMERGENCY}/$ref"),
    ))
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = send(
        t.graph(Method::PATCH, &path)
            .json(&password_patch("Rotated-0utside!x")),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    t.assert_no_spec_violations().await;
}

#[tokio::test]
async fn deleting_a_restricted_unit_lifts_the_protection_from_its_former_members() {
    let seed = fake_tenant::seed::load("default").unwrap();
    let t = TestTenant::start().await;
    let user_admin = token_of(&t, &seed, USER_ADMIN_APP).await;
    let account = create_user(&t, "bg-released").await;
    let unit = create_unit(&t, "Emergency access", true).await;
    add_member(&t, &unit, &account).await;
    let path = format!("/users/{account}");
    let (status, _) = send(
        as_app(&t, &user_admin, Method::PATCH, &path).json(&password_patch("Bl0cked-Reset!xx")),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = send(t.graph(Method::DELETE, &format!("{UNITS}/{unit}"))).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    // The account itself is still there.
    assert_eq!(
        select(&t, &account, "id,isManagementRestricted").await["isManagementRestricted"],
        Value::Null
    );
    let (status, _) = send(
        as_app(&t, &user_admin, Method::PATCH, &path).json(&password_patch("Fr33-Again-Reset!x")),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    t.assert_no_spec_violations().await;
}

#[tokio::test]
async fn certificate_user_ids_are_written_read_and_filtered() {
    let t = TestTenant::start().await;
    let account = create_user(&t, "bg-cba").await;
    // Unset: an empty list.
    assert_eq!(
        select(&t, &account, "id,authorizationInfo").await["authorizationInfo"],
        json!({"certificateUserIds": []})
    );
    let values = json!([
        "X509:<PN>bg-cba@contoso.onmicrosoft.com",
        "X509:<I>DC=com,DC=contoso,CN=CONTOSO-CA<SR>0a1b2c3d4e5f",
    ]);
    let (status, body) = send(
        t.graph(Method::PATCH, &format!("/users/{account}"))
            .json(&json!({"authorizationInfo": {"certificateUserIds": values}})),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let read = select(&t, &account, "id,authorizationInfo").await;
    assert_eq!(read["authorizationInfo"]["certificateUserIds"], values);
    // Not in the default property set.
    let (_, plain) = send(t.graph(Method::GET, &format!("/users/{account}"))).await;
    assert!(plain.get("authorizationInfo").is_none(), "{plain}");

    // Finding the user by a value is an advanced query.
    let filter = "/users?$select=id,authorizationInfo&$count=true&$filter=authorizationInfo/certificateUserIds/any(x:x%20eq%20'X509:%3CPN%3Ebg-cba@contoso.onmicrosoft.com')";
    let (status, found) = send(
        t.graph(Method::GET, filter)
            .header("ConsistencyLevel", "eventual"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{found}");
    assert_eq!(found["@odata.count"], 1);
    assert_eq!(found["value"][0]["id"], account.as_str());
    let (status, body) = send(t.graph(Method::GET, filter)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");

    // Clearing.
    let (status, _) = send(
        t.graph(Method::PATCH, &format!("/users/{account}"))
            .json(&json!({"authorizationInfo": {"certificateUserIds": []}})),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(
        select(&t, &account, "id,authorizationInfo").await["authorizationInfo"]
            ["certificateUserIds"],
        json!([])
    );
    t.assert_no_spec_violations().await;
}

#[tokio::test]
async fn certificate_user_ids_are_unique_in_the_tenant_and_limited() {
    let t = TestTenant::start().await;
    let first = create_user(&t, "bg-cba-1").await;
    let second = create_user(&t, "bg-cba-2").await;
    let set = |user: &str, ids: Value| {
        t.graph(Method::PATCH, &format!("/users/{user}"))
            .json(&json!({"authorizationInfo": {"certificateUserIds": ids}}))
    };
    let (status, _) = send(set(&first, json!(["X509:<SKI>aB1cD2eF3gH4iJ5kL6mN7oP8qR"]))).await;
    assert_eq!(status, StatusCode::NO_CONTENT);

    // The same value on another account (in any case) → the directory's conflict answer, and
    // nothing is written to the second account.
    for value in [
        "X509:<SKI>aB1cD2eF3gH4iJ5kL6mN7oP8qR",
        "X509:<SKI>AB1CD2EF3GH4IJ5KL6MN7OP8QR",
    ] {
        let (status, body) = send(set(
            &second,
            json!(["X509:<PN>bg-cba-2@contoso.onmicrosoft.com", value]),
        ))
        .await;
        assert_error(status, &body, StatusCode::BAD_REQUEST, "Request_BadRequest");
        assert_eq!(
            body["error"]["message"],
            "Another object with the same value for property certificateUserIds already exists."
        );
        assert_eq!(body["error"]["details"][0]["code"], "ObjectConflict");
        assert_eq!(body["error"]["details"][0]["target"], "certificateUserIds");
    }
    assert_eq!(
        select(&t, &second, "id,authorizationInfo").await["authorizationInfo"]
            ["certificateUserIds"],
        json!([])
    );
    // Twice in one list, too.
    let (status, _) = send(set(&second, json!(["X509:<PN>a@b", "X509:<PN>a@b"]))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // Up to 10 values of up to 1024 characters, in the documented X509:<Mapping> forms.
    let ten: Vec<String> = (0..10)
        .map(|i| format!("X509:<PN>bg-{i}@contoso"))
        .collect();
    let (status, body) = send(set(&second, json!(ten))).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let eleven: Vec<String> = (0..11)
        .map(|i| format!("X509:<PN>bg-x{i}@contoso"))
        .collect();
    let long = format!("X509:<S>CN={}", "a".repeat(1020));
    for bad in [
        json!(eleven),
        json!([long]),
        json!(["x509:<PN>lowercase-prefix@contoso"]),
        json!(["bg@contoso.onmicrosoft.com"]),
        json!(["X509:<I>CN=issuer-without-subject"]),
    ] {
        let (status, body) = send(set(&second, bad.clone())).await;
        assert_error(status, &body, StatusCode::BAD_REQUEST, "Request_BadRequest");
        assert_eq!(
            body["error"]["message"],
            "Invalid value specified for property 'certificateUserIds' of resource 'User'.",
            "{bad}"
        );
    }
    // A value of the wrong type is refused by the front layer already.
    let (status, _) = send(set(&second, json!([42]))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let exactly = format!("X509:<S>CN={}", "a".repeat(1024 - "X509:<S>CN=".len()));
    let (status, _) = send(set(&first, json!([exactly]))).await;
    assert_eq!(status, StatusCode::NO_CONTENT);

    // Once the first account gave its value up, another may take it.
    let (status, _) = send(set(
        &second,
        json!(["X509:<SKI>aB1cD2eF3gH4iJ5kL6mN7oP8qR"]),
    ))
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    // A soft-deleted account keeps its values until it is purged.
    let (status, _) = send(t.graph(Method::DELETE, &format!("/users/{second}"))).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = send(set(&first, json!(["X509:<SKI>aB1cD2eF3gH4iJ5kL6mN7oP8qR"]))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    t.assert_no_spec_violations().await;
}

#[tokio::test]
async fn writing_certificate_user_ids_needs_privileged_authentication_administrator() {
    let seed = fake_tenant::seed::load("default").unwrap();
    let t = TestTenant::start().await;
    let user_admin = token_of(&t, &seed, USER_ADMIN_APP).await;
    let helpdesk = token_of(&t, &seed, HELPDESK_APP).await;
    let account = create_user(&t, "bg-cba-role").await;
    let body =
        json!({"authorizationInfo": {"certificateUserIds": ["X509:<PN>bg-cba-role@contoso"]}});
    // User.ReadWrite.All with User Administrator, or alone: not enough for cloud-only users.
    for token in [&user_admin, &helpdesk] {
        let (status, error) =
            send(as_app(&t, token, Method::PATCH, &format!("/users/{account}")).json(&body)).await;
        assert_error(
            status,
            &error,
            StatusCode::FORBIDDEN,
            "Authorization_RequestDenied",
        );
    }
    // The provider's app holds Privileged Authentication Administrator.
    let (status, _) = send(
        t.graph(Method::PATCH, &format!("/users/{account}"))
            .json(&body),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    // Synced users get theirs from Entra Connect only.
    let bob = json!({"authorizationInfo": {"certificateUserIds": ["X509:<PN>bob@contoso.com"]}});
    let (status, error) = send(
        t.graph(Method::PATCH, &format!("/users/{BOB_SYNCED}"))
            .json(&bob),
    )
    .await;
    assert_error(
        status,
        &error,
        StatusCode::BAD_REQUEST,
        "Request_BadRequest",
    );
    assert!(error["error"]["message"]
        .as_str()
        .unwrap()
        .contains("on-premises mastered"));

    // Inside a restricted unit the tenant-wide role no longer applies; the same role scoped to
    // the unit does.
    let unit = create_unit(&t, "Emergency access", true).await;
    add_member(&t, &unit, &account).await;
    let other =
        json!({"authorizationInfo": {"certificateUserIds": ["X509:<PN>bg-cba-role-2@contoso"]}});
    let (status, _) = send(
        t.graph(Method::PATCH, &format!("/users/{account}"))
            .json(&other),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    add_scoped_role(&t, &unit, PRIVILEGED_AUTH_ADMIN, PROVIDER_SP).await;
    let (status, body) = send(
        t.graph(Method::PATCH, &format!("/users/{account}"))
            .json(&other),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    t.assert_no_spec_violations().await;
}

#[tokio::test]
async fn certificate_mapped_users_show_no_extra_method_and_strengths_name_x509() {
    let t = TestTenant::start().await;
    let account = create_user(&t, "bg-methods").await;
    send(t.graph(Method::PATCH, &format!("/users/{account}")).json(
        &json!({"authorizationInfo": {"certificateUserIds": ["X509:<PN>bg-methods@contoso"]}}),
    ))
    .await;
    // Graph v1.0 has no per-user x509 certificate method: the list holds the password only.
    let (_, methods) = send(t.graph(
        Method::GET,
        &format!("/users/{account}/authentication/methods"),
    ))
    .await;
    let kinds: Vec<&str> = methods["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["@odata.type"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["#microsoft.graph.passwordAuthenticationMethod"]);
    let (status, one) = send(t.graph(
        Method::GET,
        &format!("/users/{account}/authentication/methods/{PASSWORD_METHOD_ID}"),
    ))
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(one["password"], Value::Null);

    // A passkey appears as a fido2 method, by id as well.
    let key = json_body(
        t.admin(Method::POST, &format!("/directory/users/{account}/fido2"))
            .json(&json!({"passkeyType": "deviceBound"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    let key_id = key["id"].as_str().unwrap();
    let (status, one) = send(t.graph(
        Method::GET,
        &format!("/users/{account}/authentication/methods/{key_id}"),
    ))
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        one["@odata.type"],
        "#microsoft.graph.fido2AuthenticationMethod"
    );
    let (status, _) = send(t.graph(
        Method::GET,
        &format!("/users/{account}/authentication/methods/{MISSING_ID}"),
    ))
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Registration details: the passkey is registered; nothing is listed for the certificate.
    let (status, row) = send(t.graph(
        Method::GET,
        &format!("/reports/authenticationMethods/userRegistrationDetails/{account}"),
    ))
    .await;
    assert_eq!(status, StatusCode::OK, "{row}");
    assert_eq!(row["methodsRegistered"], json!(["passKeyDeviceBound"]));
    assert_eq!(row["isPasswordlessCapable"], true);
    assert_eq!(row["isMfaRegistered"], true);
    assert_eq!(row["isAdmin"], false);
    assert_eq!(row["userType"], "member");
    let (_, legacy) = send(t.graph(
        Method::GET,
        &format!("/reports/authenticationMethods/userRegistrationDetails/{LEGACY_EMERGENCY}"),
    ))
    .await;
    assert_eq!(legacy["isAdmin"], true);
    let (_, alice) = send(t.graph(
        Method::GET,
        &format!("/reports/authenticationMethods/userRegistrationDetails/{ALICE}"),
    ))
    .await;
    assert_eq!(alice["methodsRegistered"], json!([]));
    assert_eq!(alice["isMfaCapable"], false);
    let (_, admins) = send(t.graph(
        Method::GET,
        "/reports/authenticationMethods/userRegistrationDetails?$filter=isAdmin%20eq%20true",
    ))
    .await;
    let ids: Vec<&str> = admins["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [LEGACY_EMERGENCY]);
    let (status, _) = send(t.graph(
        Method::GET,
        &format!("/reports/authenticationMethods/userRegistrationDetails/{MISSING_ID}"),
    ))
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // The report needs AuditLog.Read.All.
    let seed = fake_tenant::seed::load("default").unwrap();
    let helpdesk = token_of(&t, &seed, HELPDESK_APP).await;
    let (status, _) = send(as_app(
        &t,
        &helpdesk,
        Method::GET,
        "/reports/authenticationMethods/userRegistrationDetails",
    ))
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // Authentication strengths: the three built-ins; certificate-based authentication counts
    // as phishing-resistant in its multifactor mode.
    let (_, strengths) =
        send(t.graph(Method::GET, "/policies/authenticationStrengthPolicies")).await;
    assert_eq!(strengths["value"].as_array().unwrap().len(), 3);
    let (_, phishing_resistant) = send(t.graph(
        Method::GET,
        "/policies/authenticationStrengthPolicies/00000000-0000-0000-0000-000000000004",
    ))
    .await;
    assert_eq!(phishing_resistant["displayName"], "Phishing-resistant MFA");
    assert_eq!(
        phishing_resistant["allowedCombinations"],
        json!([
            "windowsHelloForBusiness",
            "fido2",
            "x509CertificateMultiFactor"
        ])
    );
    let (status, _) = send(t.graph(
        Method::GET,
        &format!("/policies/authenticationStrengthPolicies/{MISSING_ID}"),
    ))
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    t.assert_no_spec_violations().await;
}

#[tokio::test]
async fn member_of_needs_directory_or_user_and_group_read() {
    let seed = fake_tenant::seed::load("default").unwrap();
    let t = TestTenant::start().await;
    let (status, body) = send(t.graph(Method::GET, &format!("/users/{ERIN}/memberOf"))).await;
    assert_eq!(status, StatusCode::OK);
    let ids: Vec<&str> = body["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["id"].as_str().unwrap())
        .collect();
    assert!(ids.contains(&BRANCH_OFFICES_UNIT), "seeded unit: {ids:?}");
    let helpdesk = token_of(&t, &seed, HELPDESK_APP).await;
    let (status, _) = send(as_app(
        &t,
        &helpdesk,
        Method::GET,
        &format!("/users/{ERIN}/memberOf"),
    ))
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = send(t.graph(Method::GET, &format!("/users/{MISSING_ID}/memberOf"))).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    t.assert_no_spec_violations().await;
}

#[tokio::test]
async fn units_survive_a_state_dump_and_reload() {
    let t = TestTenant::start().await;
    let account = create_user(&t, "bg-dumped").await;
    let unit = create_unit(&t, "Emergency access", true).await;
    add_member(&t, &unit, &account).await;
    add_scoped_role(&t, &unit, USER_ADMINISTRATOR, PROVIDER_SP).await;
    let dump = json_body(t.admin(Method::GET, "/state").send().await.unwrap()).await;
    let response = t
        .admin(Method::POST, "/state")
        .json(&dump)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let (_, scoped) =
        send(t.graph(Method::GET, &format!("{UNITS}/{unit}/scopedRoleMembers"))).await;
    assert_eq!(scoped["value"][0]["roleId"], USER_ADMINISTRATOR);
    assert_eq!(
        select(&t, &account, "id,isManagementRestricted").await["isManagementRestricted"],
        true
    );
    let again = json_body(t.admin(Method::GET, "/state").send().await.unwrap()).await;
    assert_eq!(
        again["directory"]["administrativeUnits"],
        dump["directory"]["administrativeUnits"]
    );
    t.assert_no_spec_violations().await;
}
