//! Directory over real HTTP: users (create, read, list, filter, select, paging, update, soft
//! delete, restore, purge), domains, organization, groups and members, authentication methods,
//! and Conditional Access policies (array-replacing PATCH, validation, the 195-policy limit).

use std::collections::BTreeSet;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::common::{json_body, TestTenant};

// From seeds/default/directory.json.
const ALICE: &str = "5d2c6f0e-3b1a-4c8e-9f7d-0a1b2c3d4e01";
const BOB_SYNCED: &str = "5d2c6f0e-3b1a-4c8e-9f7d-0a1b2c3d4e02";
const ERIN: &str = "5d2c6f0e-3b1a-4c8e-9f7d-0a1b2c3d4e06";
const LEGACY_EMERGENCY: &str = "5d2c6f0e-3b1a-4c8e-9f7d-0a1b2c3d4e05";
const EXCLUSION_GROUP: &str = "8a7b6c5d-0000-4e1f-9a2b-3c4d5e6f7a01";
const TIER0_GROUP: &str = "8a7b6c5d-0000-4e1f-9a2b-3c4d5e6f7a02";
const ALL_STAFF_GROUP: &str = "8a7b6c5d-0000-4e1f-9a2b-3c4d5e6f7a03";
const MFA_ALL_USERS: &str = "ca000000-0000-4000-8000-000000000001";
const MICROSOFT_MANAGED: &str = "ca000000-0000-4000-8000-00000000000f";
const PASSWORD_METHOD_ID: &str = "28c10230-6103-485e-b985-444c60001490";
const GLOBAL_ADMINISTRATOR: &str = "62e90394-69f5-4237-9190-012177145e10";
const CA_POLICIES: &str = "/identity/conditionalAccess/policies";

fn new_user(alias: &str, domain: &str) -> Value {
    json!({
        "accountEnabled": true,
        "displayName": format!("Test {alias}"),
        "mailNickname": alias,
        "userPrincipalName": format!("{alias}@{domain}"),
        "passwordProfile": {"password": "Str0ng!Passphrase#42", "forceChangePasswordNextSignIn": false},
    })
}

async fn create_user(t: &TestTenant, body: &Value) -> Value {
    let response = t
        .graph(Method::POST, "/users")
        .json(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    json_body(response).await
}

async fn status_of(request: reqwest::RequestBuilder) -> StatusCode {
    request.send().await.unwrap().status()
}

/// A Graph bearer for the seed's second app, which holds only `User.ReadWrite.All` and no
/// directory role.
async fn helpdesk_token(t: &TestTenant) -> String {
    let seed = fake_tenant::seed::load("default").unwrap();
    let app = &seed["auth"]["applications"][1];
    let response = t
        .token_request(&[
            ("grant_type", "client_credentials"),
            ("client_id", app["appId"].as_str().unwrap()),
            ("client_secret", app["clientSecrets"][0].as_str().unwrap()),
            ("scope", "https://graph.microsoft.com/.default"),
        ])
        .await;
    let body = json_body(response).await;
    body["access_token"].as_str().expect("token").to_owned()
}

fn graph_as(t: &TestTenant, token: &str, method: Method, path: &str) -> reqwest::RequestBuilder {
    t.http
        .request(method, t.url(&format!("/v1.0{path}")))
        .bearer_auth(token)
}

fn assert_graph_error(body: &Value, code: &str, message: &str) {
    assert_eq!(body["error"]["code"], code, "{body}");
    assert_eq!(body["error"]["message"], message, "{body}");
}

#[tokio::test]
async fn create_then_read_by_id_and_by_upn_in_any_case() {
    let t = TestTenant::start().await;
    let created = create_user(&t, &new_user("bg-create", "contoso.onmicrosoft.com")).await;
    let id = created["id"].as_str().unwrap();
    assert_eq!(
        created["userPrincipalName"],
        "bg-create@contoso.onmicrosoft.com"
    );
    assert!(created["@odata.context"]
        .as_str()
        .unwrap()
        .ends_with("/v1.0/$metadata#users/$entity"));
    // The create response carries the default property set, never the password.
    assert!(created.get("accountEnabled").is_none(), "{created}");
    assert!(!created.to_string().contains("Str0ng!Passphrase#42"));

    let by_id = json_body(
        t.graph(Method::GET, &format!("/users/{id}"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(by_id["displayName"], "Test bg-create");
    let by_upn = json_body(
        t.graph(Method::GET, "/users/BG-Create@Contoso.OnMicrosoft.com")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(by_upn["id"], id);

    let selected = json_body(
        t.graph(
            Method::GET,
            &format!("/users/{id}?$select=accountEnabled,createdDateTime,passwordProfile"),
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(selected["accountEnabled"], true);
    assert!(selected["createdDateTime"].is_string());
    assert_eq!(selected["passwordProfile"]["password"], Value::Null);
    assert!(selected.get("displayName").is_none());

    let missing = t
        .graph(Method::GET, "/users/nobody@contoso.com")
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        json_body(missing).await["error"]["code"],
        "Request_ResourceNotFound"
    );

    // The state dump holds a salted hash, not the password.
    let dump = t.state.tenant().directory.dump().to_string();
    assert!(!dump.contains("Str0ng!Passphrase#42"));
    assert!(t
        .state
        .tenant()
        .directory
        .password_matches(id, "Str0ng!Passphrase#42"));
    t.assert_no_spec_violations().await;
}

#[tokio::test]
async fn list_filters_selects_and_pages_with_next_links() {
    let t = TestTenant::start().await;
    for n in 0..5 {
        create_user(&t, &new_user(&format!("pager{n}"), "contoso.com")).await;
    }
    let all = json_body(t.graph(Method::GET, "/users").send().await.unwrap()).await;
    let all_ids: BTreeSet<String> = all["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["id"].as_str().unwrap().to_owned())
        .collect();
    assert!(all_ids.len() >= 11, "seed users plus five new ones");
    assert!(all.get("@odata.nextLink").is_none());
    assert!(
        all["value"][0].get("accountEnabled").is_none(),
        "default set only"
    );

    // $top=3 pages through every user exactly once, following nextLink as given.
    let mut seen = Vec::new();
    let mut pages = 0;
    let mut next = Some(t.url("/v1.0/users?$top=3"));
    while let Some(url) = next {
        let page = json_body(
            t.http
                .get(&url)
                .bearer_auth(&t.graph_token)
                .send()
                .await
                .unwrap(),
        )
        .await;
        pages += 1;
        let value = page["value"].as_array().unwrap();
        assert!(value.len() <= 3);
        seen.extend(value.iter().map(|u| u["id"].as_str().unwrap().to_owned()));
        next = page["@odata.nextLink"].as_str().map(str::to_owned);
        if let Some(link) = &next {
            assert!(
                link.starts_with(&format!("{}/v1.0/users?", t.url)),
                "{link}"
            );
        }
    }
    assert!(pages >= 4, "{pages} pages");
    assert_eq!(seen.len(), all_ids.len(), "no duplicates across pages");
    assert_eq!(seen.into_iter().collect::<BTreeSet<_>>(), all_ids);

    // eq on the UPN ignores case; startsWith and booleans work; $select trims.
    let filtered = json_body(
        t.graph(
            Method::GET,
            "/users?$filter=userPrincipalName eq 'PAGER3@CONTOSO.COM'&$select=id,userPrincipalName,accountEnabled",
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(filtered["value"].as_array().unwrap().len(), 1);
    assert_eq!(
        filtered["value"][0]["userPrincipalName"],
        "pager3@contoso.com"
    );
    assert_eq!(filtered["value"][0]["accountEnabled"], true);
    assert!(filtered["value"][0].get("displayName").is_none());

    let prefixed = json_body(
        t.graph(
            Method::GET,
            "/users?$filter=startsWith(displayName,'test pager')",
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(prefixed["value"].as_array().unwrap().len(), 5);
    let disabled = json_body(
        t.graph(
            Method::GET,
            "/users?$filter=accountEnabled eq false&$select=id",
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(disabled["value"].as_array().unwrap().len(), 1, "{disabled}");

    // Advanced queries need ConsistencyLevel: eventual and $count=true.
    let response = t
        .graph(Method::GET, "/users?$count=true")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let response = t
        .graph(
            Method::GET,
            "/users?$filter=endsWith(userPrincipalName,'@contoso.com')",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        json_body(response).await["error"]["code"],
        "Request_UnsupportedQuery"
    );
    let counted = json_body(
        t.graph(
            Method::GET,
            "/users?$filter=endsWith(userPrincipalName,'@contoso.com')&$count=true",
        )
        .header("ConsistencyLevel", "eventual")
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(
        counted["@odata.count"].as_u64().unwrap() as usize,
        counted["value"].as_array().unwrap().len()
    );

    // $search is tokenized prefix matching and needs the header too.
    let search = "/users?$search=\"displayName:pager\"";
    assert_eq!(
        status_of(t.graph(Method::GET, search)).await,
        StatusCode::BAD_REQUEST
    );
    let found = json_body(
        t.graph(Method::GET, search)
            .header("ConsistencyLevel", "eventual")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(found["value"].as_array().unwrap().len(), 5, "{found}");

    for bad in [
        "/users?$top=1000",
        "/users?$filter=shoeSize eq 'x'",
        "/users?$filter=displayName eq",
    ] {
        assert_eq!(
            status_of(t.graph(Method::GET, bad)).await,
            StatusCode::BAD_REQUEST,
            "{bad}"
        );
    }
    t.assert_no_spec_violations().await;
}

#[tokio::test]
async fn duplicate_upn_is_rejected_with_object_conflict() {
    let t = TestTenant::start().await;
    create_user(&t, &new_user("dup", "contoso.com")).await;
    let response = t
        .graph(Method::POST, "/users")
        .json(&new_user("DUP", "Contoso.com"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body = json_body(response).await;
    assert_graph_error(
        &body,
        "Request_BadRequest",
        "Another object with the same value for property userPrincipalName already exists.",
    );
    assert_eq!(body["error"]["details"][0]["code"], "ObjectConflict");
    assert_eq!(body["error"]["details"][0]["target"], "userPrincipalName");
    assert!(body["error"]["innerError"]["request-id"].is_string());
    t.assert_no_spec_violations().await;
}

#[tokio::test]
async fn create_validates_password_domain_federation_and_required_properties() {
    let t = TestTenant::start().await;
    let complexity = "The specified password does not comply with password complexity requirements. Please provide a different password.";
    for password in ["short1!", "alllowercaseletters", "Contains-Weakpw-alias1"] {
        let mut body = new_user("weakpw", "contoso.com");
        body["passwordProfile"]["password"] = json!(password);
        let response = t
            .graph(Method::POST, "/users")
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{password}");
        assert_graph_error(&json_body(response).await, "Request_BadRequest", complexity);
    }

    let domain_message = "The domain portion of the userPrincipalName property is invalid. You must use one of the verified domain names in your organization.";
    for domain in ["example.org", "contoso.net"] {
        let response = t
            .graph(Method::POST, "/users")
            .json(&new_user("nodomain", domain))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{domain}");
        assert_graph_error(
            &json_body(response).await,
            "Request_BadRequest",
            domain_message,
        );
    }

    // A federated-domain UPN needs onPremisesImmutableId.
    let mut federated = new_user("fed", "fabrikam.com");
    let response = t
        .graph(Method::POST, "/users")
        .json(&federated)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_graph_error(
        &json_body(response).await,
        "Request_BadRequest",
        "One or more properties contains invalid values.",
    );
    federated["onPremisesImmutableId"] = json!("ZmVkLWltbXV0YWJsZS1pZA==");
    create_user(&t, &federated).await;

    // Unknown properties are refused like Graph does; @odata.type is optional and not stored.
    let mut unknown = new_user("unknownprop", "contoso.com");
    unknown["shoeSize"] = json!(42);
    assert_eq!(
        status_of(t.graph(Method::POST, "/users").json(&unknown)).await,
        StatusCode::BAD_REQUEST
    );
    let mut typed = new_user("typed", "contoso.com");
    typed["@odata.type"] = json!("#microsoft.graph.user");
    let created = create_user(&t, &typed).await;
    assert!(created.get("@odata.type").is_none(), "{created}");

    let mut incomplete = new_user("incomplete", "contoso.com");
    incomplete.as_object_mut().unwrap().remove("mailNickname");
    let response = t
        .graph(Method::POST, "/users")
        .json(&incomplete)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_graph_error(
        &json_body(response).await,
        "Request_BadRequest",
        "Property value is required but is empty or missing.",
    );
    t.assert_no_spec_violations().await;
}

#[tokio::test]
async fn patch_changes_only_sent_properties_and_respects_synced_users() {
    let t = TestTenant::start().await;
    let created = create_user(&t, &new_user("patchme", "contoso.com")).await;
    let id = created["id"].as_str().unwrap();
    let response = t
        .graph(Method::PATCH, &format!("/users/{id}"))
        .json(&json!({"jobTitle": "Emergency access", "accountEnabled": false}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert!(response.text().await.unwrap().is_empty());
    let user = json_body(
        t.graph(
            Method::GET,
            &format!("/users/{id}?$select=jobTitle,accountEnabled,displayName"),
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(user["jobTitle"], "Emergency access");
    assert_eq!(user["accountEnabled"], false);
    assert_eq!(user["displayName"], "Test patchme", "untouched");

    // Password change through passwordProfile: complexity applies, the hash changes.
    let weak = t
        .graph(Method::PATCH, &format!("/users/{id}"))
        .json(&json!({"passwordProfile": {"password": "weak"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(weak.status(), StatusCode::BAD_REQUEST);
    let rotated = t
        .graph(Method::PATCH, &format!("/users/{id}"))
        .json(&json!({"passwordProfile": {"password": "R0tated!Passphrase", "forceChangePasswordNextSignIn": false}}))
        .send()
        .await
        .unwrap();
    assert_eq!(rotated.status(), StatusCode::NO_CONTENT);
    assert!(t
        .state
        .tenant()
        .directory
        .password_matches(id, "R0tated!Passphrase"));

    // Synced users: on-premises-mastered properties cannot change in the cloud.
    let response = t
        .graph(Method::PATCH, &format!("/users/{BOB_SYNCED}"))
        .json(&json!({"displayName": "Robert"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_graph_error(
        &json_body(response).await,
        "Request_BadRequest",
        "Unable to update the specified properties for on-premises mastered Directory Sync objects or objects currently undergoing migration.",
    );
    let response = t
        .graph(Method::PATCH, &format!("/users/{BOB_SYNCED}"))
        .json(&json!({"usageLocation": "GB"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);

    // Nor can a synced user be deleted from the cloud.
    assert_eq!(
        status_of(t.graph(Method::DELETE, &format!("/users/{BOB_SYNCED}"))).await,
        StatusCode::BAD_REQUEST
    );

    let missing = t
        .graph(Method::PATCH, "/users/00000000-0000-0000-0000-00000000dead")
        .json(&json!({"jobTitle": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    t.assert_no_spec_violations().await;
}

#[tokio::test]
async fn delete_restore_conflict_and_permanent_delete() {
    let t = TestTenant::start().await;
    let created = create_user(&t, &new_user("lazarus", "contoso.com")).await;
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(
        status_of(t.graph(Method::DELETE, &format!("/users/{id}"))).await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        status_of(t.graph(Method::GET, &format!("/users/{id}"))).await,
        StatusCode::NOT_FOUND
    );

    let deleted = json_body(
        t.graph(Method::GET, &format!("/directory/deletedItems/{id}"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(deleted["@odata.type"], "#microsoft.graph.user");
    assert!(deleted["deletedDateTime"].is_string());
    // Entra frees the UPN by prefixing it with the object id.
    assert_eq!(
        deleted["userPrincipalName"],
        format!("{}lazarus@contoso.com", id.replace('-', ""))
    );
    let listed = json_body(
        t.graph(Method::GET, "/directory/deletedItems/microsoft.graph.user")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert!(listed["value"]
        .as_array()
        .unwrap()
        .iter()
        .any(|u| u["id"] == id.as_str()));

    let restored = t
        .graph(
            Method::POST,
            &format!("/directory/deletedItems/{id}/restore"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(restored.status(), StatusCode::OK);
    let restored = json_body(restored).await;
    assert_eq!(restored["userPrincipalName"], "lazarus@contoso.com");
    assert_eq!(restored["@odata.type"], "#microsoft.graph.user");
    assert_eq!(
        status_of(t.graph(Method::GET, "/users/lazarus@contoso.com")).await,
        StatusCode::OK
    );
    assert!(t
        .state
        .tenant()
        .directory
        .password_matches(&id, "Str0ng!Passphrase#42"));

    // Delete again, reuse the UPN, then restore collides.
    t.graph(Method::DELETE, &format!("/users/{id}"))
        .send()
        .await
        .unwrap();
    create_user(&t, &new_user("lazarus", "contoso.com")).await;
    let conflict = t
        .graph(
            Method::POST,
            &format!("/directory/deletedItems/{id}/restore"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(conflict.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        json_body(conflict).await["error"]["details"][0]["code"],
        "ObjectConflict"
    );

    assert_eq!(
        status_of(t.graph(Method::DELETE, &format!("/directory/deletedItems/{id}"))).await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        status_of(t.graph(Method::GET, &format!("/directory/deletedItems/{id}"))).await,
        StatusCode::NOT_FOUND
    );
    assert!(!t
        .state
        .tenant()
        .directory
        .password_matches(&id, "Str0ng!Passphrase#42"));

    // The seed's contractor was deleted long ago: past the 30-day retention it is gone.
    let expired = "5d2c6f0e-3b1a-4c8e-9f7d-0a1b2c3d4e99";
    for request in [
        t.graph(Method::GET, &format!("/directory/deletedItems/{expired}")),
        t.graph(
            Method::POST,
            &format!("/directory/deletedItems/{expired}/restore"),
        ),
        t.graph(
            Method::DELETE,
            &format!("/directory/deletedItems/{expired}"),
        ),
    ] {
        assert_eq!(status_of(request).await, StatusCode::NOT_FOUND);
    }
    assert!(t
        .state
        .tenant()
        .directory
        .deleted_items
        .get_latest(expired)
        .is_some());
    t.assert_no_spec_violations().await;
}

#[tokio::test]
async fn fresh_user_is_invisible_until_replication_lag_passes() {
    let t = TestTenant::start().await;
    t.set_settings(json!({"graph.replication_lag_ms": 2000}))
        .await;
    let created = create_user(&t, &new_user("eventual", "contoso.com")).await;
    let id = created["id"].as_str().unwrap();

    let first = t
        .graph(Method::GET, &format!("/users/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        first.status(),
        StatusCode::NOT_FOUND,
        "a read right after the write"
    );
    // A CA policy naming the user is refused while the CA service cannot see it yet.
    let exclusion = json!({"conditions": {"users": {"excludeUsers": [LEGACY_EMERGENCY, id]}}});
    let refused = t
        .graph(Method::PATCH, &format!("{CA_POLICIES}/{MFA_ALL_USERS}"))
        .json(&exclusion)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);

    // Poll like a well-behaved client until the replicas agree.
    let mut misses = 1;
    loop {
        let response = t
            .graph(Method::GET, &format!("/users/{id}"))
            .send()
            .await
            .unwrap();
        if response.status() == StatusCode::OK {
            break;
        }
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        misses += 1;
        assert!(misses < 200, "the user never became visible");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(misses >= 1);
    let accepted = t
        .graph(Method::PATCH, &format!("{CA_POLICIES}/{MFA_ALL_USERS}"))
        .json(&exclusion)
        .send()
        .await
        .unwrap();
    assert_eq!(accepted.status(), StatusCode::NO_CONTENT);
    t.assert_no_spec_violations().await;
}

#[tokio::test]
async fn privileged_users_need_a_higher_privileged_caller() {
    let t = TestTenant::start().await;
    let created = create_user(&t, &new_user("glass-admin", "contoso.onmicrosoft.com")).await;
    let id = created["id"].as_str().unwrap();
    let assignment = t
        .graph(Method::POST, "/roleManagement/directory/roleAssignments")
        .json(&json!({"principalId": id, "roleDefinitionId": GLOBAL_ADMINISTRATOR, "directoryScopeId": "/"}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        assignment.status(),
        StatusCode::CREATED,
        "{}",
        assignment.text().await.unwrap()
    );
    assert!(t.state.tenant().pim.holds_privileged_role(id));

    // An app with only User.ReadWrite.All may edit harmless properties, not sensitive ones.
    let helpdesk = helpdesk_token(&t).await;
    let harmless = graph_as(&t, &helpdesk, Method::PATCH, &format!("/users/{id}"))
        .json(&json!({"jobTitle": "Break glass"}));
    assert_eq!(status_of(harmless).await, StatusCode::NO_CONTENT);
    for body in [
        json!({"accountEnabled": false}),
        json!({"passwordProfile": {"password": "An0ther!Passphrase"}}),
        json!({"mobilePhone": "+1 555 0100"}),
    ] {
        let response = graph_as(&t, &helpdesk, Method::PATCH, &format!("/users/{id}"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{body}");
        assert_graph_error(
            &json_body(response).await,
            "Authorization_RequestDenied",
            "Insufficient privileges to complete the operation.",
        );
    }
    let response = graph_as(&t, &helpdesk, Method::DELETE, &format!("/users/{id}"));
    assert_eq!(status_of(response).await, StatusCode::FORBIDDEN);
    // The same app may still delete an ordinary user.
    let ordinary = create_user(&t, &new_user("ordinary", "contoso.com")).await;
    let response = graph_as(
        &t,
        &helpdesk,
        Method::DELETE,
        &format!("/users/{}", ordinary["id"].as_str().unwrap()),
    );
    assert_eq!(status_of(response).await, StatusCode::NO_CONTENT);

    // The provider's app holds Privileged Authentication Administrator.
    let response = t
        .graph(Method::PATCH, &format!("/users/{id}"))
        .json(&json!({"accountEnabled": false}));
    assert_eq!(status_of(response).await, StatusCode::NO_CONTENT);
    assert_eq!(
        status_of(t.graph(Method::DELETE, &format!("/users/{id}"))).await,
        StatusCode::NO_CONTENT
    );

    // Application permissions are checked too: the helpdesk app cannot read CA policies.
    let response = graph_as(&t, &helpdesk, Method::GET, CA_POLICIES);
    assert_eq!(status_of(response).await, StatusCode::FORBIDDEN);
    t.assert_no_spec_violations().await;
}

#[tokio::test]
async fn domains_and_organization_describe_the_tenant() {
    let t = TestTenant::start().await;
    let domains = json_body(t.graph(Method::GET, "/domains").send().await.unwrap()).await;
    let domains = domains["value"].as_array().unwrap();
    let initial: Vec<&Value> = domains.iter().filter(|d| d["isInitial"] == true).collect();
    assert_eq!(initial.len(), 1);
    assert!(initial[0]["id"]
        .as_str()
        .unwrap()
        .ends_with(".onmicrosoft.com"));
    assert!(domains
        .iter()
        .any(|d| d["authenticationType"] == "Federated" && d["isVerified"] == true));
    let one = json_body(
        t.graph(Method::GET, "/domains/CONTOSO.com")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(one["id"], "contoso.com");
    assert_eq!(one["isDefault"], true);
    assert_eq!(
        status_of(t.graph(Method::GET, "/domains/unknown.example")).await,
        StatusCode::NOT_FOUND
    );

    let organization = json_body(t.graph(Method::GET, "/organization").send().await.unwrap()).await;
    let orgs = organization["value"].as_array().unwrap();
    assert_eq!(orgs.len(), 1);
    assert_eq!(orgs[0]["id"], t.tenant_id.as_str());
    let verified: Vec<&str> = orgs[0]["verifiedDomains"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["name"].as_str().unwrap())
        .collect();
    assert!(verified.contains(&"contoso.onmicrosoft.com"));
    assert!(
        !verified.contains(&"contoso.net"),
        "unverified domains are not listed"
    );
    t.assert_no_spec_violations().await;
}

#[tokio::test]
async fn groups_and_typed_members() {
    let t = TestTenant::start().await;
    let tier0 = json_body(
        t.graph(Method::GET, &format!("/groups/{TIER0_GROUP}"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(tier0["isAssignableToRole"], true);

    let members = json_body(
        t.graph(Method::GET, &format!("/groups/{ALL_STAFF_GROUP}/members"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    let members = members["value"].as_array().unwrap();
    assert!(members
        .iter()
        .any(|m| m["@odata.type"] == "#microsoft.graph.group"));
    assert!(members
        .iter()
        .any(|m| m["@odata.type"] == "#microsoft.graph.user"));
    let users_only = json_body(
        t.graph(
            Method::GET,
            &format!(
                "/groups/{ALL_STAFF_GROUP}/members/microsoft.graph.user?$select=id,displayName"
            ),
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    let users_only = users_only["value"].as_array().unwrap();
    assert_eq!(users_only.len(), members.len() - 1);
    assert!(users_only
        .iter()
        .all(|m| m["@odata.type"] == "#microsoft.graph.user"));

    // Membership can be changed through the admin API (Graph's $ref writes are not emulated).
    let response = t
        .admin(
            Method::POST,
            &format!("/directory/groups/{EXCLUSION_GROUP}/members"),
        )
        .json(&json!({"id": ERIN}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let exclusion = json_body(
        t.graph(Method::GET, &format!("/groups/{EXCLUSION_GROUP}/members"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(exclusion["value"].as_array().unwrap().len(), 2);
    assert_eq!(
        status_of(t.graph(
            Method::GET,
            "/groups/00000000-0000-0000-0000-000000000000/members"
        ))
        .await,
        StatusCode::NOT_FOUND
    );
    t.assert_no_spec_violations().await;
}

#[tokio::test]
async fn authentication_methods_and_passkeys() {
    // The provider's app reads methods; give it write access too so a passkey can be deleted.
    let mut seed = fake_tenant::seed::load("default").unwrap();
    seed["auth"]["applications"][0]["appRoles"]
        .as_array_mut()
        .unwrap()
        .push(json!("UserAuthenticationMethod.ReadWrite.All"));
    let t = TestTenant::start_with(seed).await;

    let methods = json_body(
        t.graph(
            Method::GET,
            &format!("/users/{ALICE}/authentication/methods"),
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    let methods = methods["value"].as_array().unwrap();
    assert_eq!(methods.len(), 1);
    assert_eq!(methods[0]["id"], PASSWORD_METHOD_ID);
    assert_eq!(
        methods[0]["@odata.type"],
        "#microsoft.graph.passwordAuthenticationMethod"
    );
    assert_eq!(methods[0]["password"], Value::Null);

    let path = format!("/users/{ERIN}/authentication/fido2Methods");
    let before = json_body(t.graph(Method::GET, &path).send().await.unwrap()).await;
    assert_eq!(before["value"].as_array().unwrap().len(), 0);
    let registered = t
        .admin(Method::POST, &format!("/directory/users/{ERIN}/fido2"))
        .json(&json!({"displayName": "Erin's key", "passkeyType": "deviceBound"}))
        .send()
        .await
        .unwrap();
    assert_eq!(registered.status(), StatusCode::CREATED);
    let key_id = json_body(registered).await["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let listed = json_body(t.graph(Method::GET, &path).send().await.unwrap()).await;
    assert_eq!(listed["value"][0]["displayName"], "Erin's key");
    assert_eq!(listed["value"][0]["attestationLevel"], "attested");
    let all = json_body(
        t.graph(
            Method::GET,
            &format!("/users/{ERIN}/authentication/methods"),
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert!(all["value"]
        .as_array()
        .unwrap()
        .iter()
        .any(|m| m["@odata.type"] == "#microsoft.graph.fido2AuthenticationMethod"));
    let one = json_body(
        t.graph(Method::GET, &format!("{path}/{key_id}"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(one["id"], key_id.as_str());

    // Graph cannot create passkeys, only delete them.
    assert_ne!(
        status_of(
            t.graph(Method::POST, &path)
                .json(&json!({"displayName": "x"}))
        )
        .await,
        StatusCode::CREATED
    );
    assert_eq!(
        status_of(t.graph(Method::DELETE, &format!("{path}/{key_id}"))).await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        status_of(t.graph(Method::GET, &format!("{path}/{key_id}"))).await,
        StatusCode::NOT_FOUND
    );

    // The seeded emergency account already has a passkey.
    let legacy = json_body(
        t.graph(
            Method::GET,
            &format!("/users/{LEGACY_EMERGENCY}/authentication/fido2Methods"),
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(legacy["value"].as_array().unwrap().len(), 1);
    t.assert_no_spec_violations().await;
}

#[tokio::test]
async fn passkey_delete_needs_the_write_permission() {
    let t = TestTenant::start().await;
    let path = format!("/users/{LEGACY_EMERGENCY}/authentication/fido2Methods");
    let listed = json_body(t.graph(Method::GET, &path).send().await.unwrap()).await;
    let key_id = listed["value"][0]["id"].as_str().unwrap();
    let response = t
        .graph(Method::DELETE, &format!("{path}/{key_id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        json_body(response).await["error"]["code"],
        "Authorization_RequestDenied"
    );
}

fn new_policy() -> Value {
    json!({
        "displayName": "Require MFA for Azure portal",
        "state": "enabledForReportingButNotEnforced",
        "conditions": {
            "clientAppTypes": ["all"],
            "applications": {"includeApplications": ["797f4846-ba00-4fd7-ba43-dac1f8f63013"]},
            "users": {"includeUsers": ["All"], "excludeUsers": [LEGACY_EMERGENCY], "excludeGroups": [EXCLUSION_GROUP]}
        },
        "grantControls": {"operator": "OR", "builtInControls": ["mfa"]}
    })
}

#[tokio::test]
async fn conditional_access_crud() {
    let t = TestTenant::start().await;
    let list = json_body(t.graph(Method::GET, CA_POLICIES).send().await.unwrap()).await;
    let policies = list["value"].as_array().unwrap();
    assert!(policies.len() >= 12, "a dozen seeded policies");
    let states: BTreeSet<&str> = policies
        .iter()
        .map(|p| p["state"].as_str().unwrap())
        .collect();
    assert_eq!(
        states,
        BTreeSet::from(["enabled", "disabled", "enabledForReportingButNotEnforced"])
    );

    let response = t
        .graph(Method::POST, CA_POLICIES)
        .json(&new_policy())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let created = json_body(response).await;
    let id = created["id"].as_str().unwrap();
    assert!(created["createdDateTime"].is_string());
    assert_eq!(created["modifiedDateTime"], Value::Null);
    assert_eq!(
        created["conditions"]["users"]["excludeGroups"][0],
        EXCLUSION_GROUP
    );

    let fetched = json_body(
        t.graph(Method::GET, &format!("{CA_POLICIES}/{id}"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(fetched["displayName"], "Require MFA for Azure portal");
    let filtered = json_body(
        t.graph(
            Method::GET,
            &format!("{CA_POLICIES}?$filter=state eq 'disabled'&$select=id,state"),
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert!(filtered["value"]
        .as_array()
        .unwrap()
        .iter()
        .all(|p| p["state"] == "disabled"));

    // Authentication strengths are referenced by id and returned whole.
    let mut strong = new_policy();
    strong["grantControls"] = json!({"operator": "OR", "authenticationStrength": {"id": "00000000-0000-0000-0000-000000000004"}});
    let created = json_body(
        t.graph(Method::POST, CA_POLICIES)
            .json(&strong)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        created["grantControls"]["authenticationStrength"]["displayName"],
        "Phishing-resistant MFA"
    );

    assert_eq!(
        status_of(t.graph(Method::DELETE, &format!("{CA_POLICIES}/{id}"))).await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        status_of(t.graph(Method::GET, &format!("{CA_POLICIES}/{id}"))).await,
        StatusCode::NOT_FOUND
    );
    t.assert_no_spec_violations().await;
}

#[tokio::test]
async fn conditional_access_patch_replaces_arrays_and_loses_unsent_exclusions() {
    let t = TestTenant::start().await;
    let path = format!("{CA_POLICIES}/{MFA_ALL_USERS}");
    let before = json_body(t.graph(Method::GET, &path).send().await.unwrap()).await;
    assert_eq!(
        before["conditions"]["users"]["excludeUsers"],
        json!([LEGACY_EMERGENCY])
    );
    assert_eq!(
        before["conditions"]["users"]["excludeGroups"],
        json!([EXCLUSION_GROUP])
    );

    // A naive caller adds Erin by sending only the new id...
    let response = t
        .graph(Method::PATCH, &path)
        .json(&json!({"conditions": {"users": {"excludeUsers": [ERIN]}}}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let after = json_body(t.graph(Method::GET, &path).send().await.unwrap()).await;
    let users = &after["conditions"]["users"];
    // ...and the existing exclusion is gone: arrays are replaced, not merged.
    assert_eq!(users["excludeUsers"], json!([ERIN]));
    // Objects merge: properties not sent keep their values.
    assert_eq!(users["excludeGroups"], json!([EXCLUSION_GROUP]));
    assert_eq!(users["includeUsers"], json!(["All"]));
    assert_eq!(after["grantControls"], before["grantControls"]);
    assert_eq!(after["displayName"], before["displayName"]);
    assert_ne!(after["modifiedDateTime"], before["modifiedDateTime"]);

    // A policy keeps the id of a user deleted since; resending it is accepted, adding a
    // deleted user is not.
    let doomed = create_user(&t, &new_user("doomed", "contoso.com")).await;
    let doomed_id = doomed["id"].as_str().unwrap();
    let with_doomed = json!({"conditions": {"users": {"excludeUsers": [ERIN, doomed_id]}}});
    assert_eq!(
        status_of(t.graph(Method::PATCH, &path).json(&with_doomed)).await,
        StatusCode::NO_CONTENT
    );
    t.graph(Method::DELETE, &format!("/users/{doomed_id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        status_of(t.graph(Method::PATCH, &path).json(&with_doomed)).await,
        StatusCode::NO_CONTENT
    );
    let other = format!("{CA_POLICIES}/ca000000-0000-4000-8000-000000000002");
    assert_eq!(
        status_of(t.graph(Method::PATCH, &other).json(&with_doomed)).await,
        StatusCode::BAD_REQUEST
    );
    t.assert_no_spec_violations().await;
}

#[tokio::test]
async fn conditional_access_validation() {
    let t = TestTenant::start().await;
    let message = "The server could not process the request because it is malformed or incorrect.";
    // Semantic rules the CA service applies: the generic message plus a detail naming the
    // offending property.
    let mut semantic: Vec<(&str, Value)> = Vec::new();
    let mut no_name = new_policy();
    no_name.as_object_mut().unwrap().remove("displayName");
    semantic.push(("missing displayName", no_name));
    let mut no_conditions = new_policy();
    no_conditions.as_object_mut().unwrap().remove("conditions");
    semantic.push(("missing conditions", no_conditions));
    let mut ghost_user = new_policy();
    ghost_user["conditions"]["users"]["excludeUsers"] =
        json!(["00000000-0000-0000-0000-00000000beef"]);
    semantic.push(("unknown user", ghost_user));
    let mut ghost_group = new_policy();
    ghost_group["conditions"]["users"]["excludeGroups"] =
        json!(["00000000-0000-0000-0000-00000000cafe"]);
    semantic.push(("unknown group", ghost_group));
    let mut evolvable = new_policy();
    evolvable["grantControls"]["builtInControls"] = json!(["riskRemediation"]);
    semantic.push(("evolvable enum without Prefer", evolvable.clone()));
    for (case, body) in semantic {
        let response = t
            .graph(Method::POST, CA_POLICIES)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{case}");
        let body = json_body(response).await;
        assert_graph_error(&body, "BadRequest", message);
        assert!(
            body["error"]["details"][0]["target"].is_string(),
            "{case}: {body}"
        );
    }

    // Values outside an enum never reach the policy store, whichever layer refuses them.
    let mut bad_state = new_policy();
    bad_state["state"] = json!("on");
    let mut bad_control = new_policy();
    bad_control["grantControls"]["builtInControls"] = json!(["mfa", "fingerprint"]);
    let mut bad_client = new_policy();
    bad_client["conditions"]["clientAppTypes"] = json!(["legacy"]);
    for body in [bad_state, bad_control, bad_client] {
        let response = t
            .graph(Method::POST, CA_POLICIES)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{body}");
    }
    let count = t.state.tenant().directory.ca_policies.len_latest();
    assert_eq!(count, 13, "nothing was stored by the refused requests");

    // Members after unknownFutureValue are accepted when the caller opts in.
    let response = t
        .graph(Method::POST, CA_POLICIES)
        .header("Prefer", "include-unknown-enum-members")
        .json(&evolvable)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let id = json_body(response).await["id"].as_str().unwrap().to_owned();
    // ...and shown only to callers that opt in.
    let plain = json_body(
        t.graph(Method::GET, &format!("{CA_POLICIES}/{id}"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        plain["grantControls"]["builtInControls"],
        json!(["unknownFutureValue"])
    );
    let opted_in = json_body(
        t.graph(Method::GET, &format!("{CA_POLICIES}/{id}"))
            .header("Prefer", "include-unknown-enum-members")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        opted_in["grantControls"]["builtInControls"],
        json!(["riskRemediation"])
    );

    // PATCH results are validated as a whole.
    let response = t
        .graph(Method::PATCH, &format!("{CA_POLICIES}/{MFA_ALL_USERS}"))
        .json(&json!({"state": "sometimes"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn microsoft_managed_policy_allows_state_and_exclusions_only() {
    let t = TestTenant::start().await;
    let path = format!("{CA_POLICIES}/{MICROSOFT_MANAGED}");
    let response = t
        .graph(Method::PATCH, &path)
        .json(&json!({"state": "disabled", "conditions": {"users": {"excludeUsers": [LEGACY_EMERGENCY]}}}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let response = t
        .graph(Method::PATCH, &path)
        .json(&json!({"displayName": "Mine now"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        status_of(t.graph(Method::DELETE, &path)).await,
        StatusCode::BAD_REQUEST
    );
    let policy = json_body(t.graph(Method::GET, &path).send().await.unwrap()).await;
    assert_eq!(policy["state"], "disabled");
    assert!(policy["displayName"]
        .as_str()
        .unwrap()
        .starts_with("Microsoft-managed:"));
}

#[tokio::test]
async fn the_196th_policy_is_rejected_in_a_full_tenant() {
    let t = TestTenant::start_seed("large").await;
    let list = json_body(t.graph(Method::GET, CA_POLICIES).send().await.unwrap()).await;
    let policies = list["value"].as_array().unwrap();
    // 195 count against the limit; the Microsoft-managed policy does not.
    assert_eq!(policies.len(), 196);
    assert!(list.get("@odata.nextLink").is_none());

    let response = t
        .graph(Method::POST, CA_POLICIES)
        .json(&new_policy())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body = json_body(response).await;
    assert_eq!(body["error"]["code"], "BadRequest");
    assert!(
        body["error"]["message"].as_str().unwrap().contains("195"),
        "{body}"
    );

    // Freeing a slot makes room for exactly one more.
    let victim = policies
        .iter()
        .find(|p| {
            p["displayName"]
                .as_str()
                .unwrap()
                .starts_with("Benchmark policy")
        })
        .unwrap();
    let victim_path = format!("{CA_POLICIES}/{}", victim["id"].as_str().unwrap());
    assert_eq!(
        status_of(t.graph(Method::DELETE, &victim_path)).await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        status_of(t.graph(Method::POST, CA_POLICIES).json(&new_policy())).await,
        StatusCode::CREATED
    );
    assert_eq!(
        status_of(t.graph(Method::POST, CA_POLICIES).json(&new_policy())).await,
        StatusCode::BAD_REQUEST
    );
    t.assert_no_spec_violations().await;
}
