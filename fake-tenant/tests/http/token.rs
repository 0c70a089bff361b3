//! Token endpoint flows, managed identity, the CI OIDC issuer, and bearer enforcement.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use reqwest::Method;
use rsa::pkcs8::DecodePrivateKey;
use rsa::RsaPrivateKey;
use serde_json::{json, Value};

use crate::common::{json_body, TestTenant};

const GRAPH_SCOPE: &str = "https://graph.microsoft.com/.default";
const ARM_SCOPE: &str = "https://management.azure.com/.default";
const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

const CLIENT_CERT: &str = include_str!("fixtures/client-cert.pem");
const CLIENT_CERT_KEY: &str = include_str!("fixtures/client-cert-key.pem");
const UNRELATED_KEY: &str = include_str!("fixtures/unrelated-key.pem");

fn claims_of(token: &str) -> Value {
    let payload = token.split('.').nth(1).expect("JWT has a payload");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("base64url")).expect("JSON")
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// Asserts an AADSTS error body: `error`, the code as prefix and in `error_codes`, ids and time.
async fn assert_aadsts(response: reqwest::Response, status: u16, error: &str, code: u64) -> Value {
    assert_eq!(response.status(), status);
    let body = json_body(response).await;
    assert_eq!(body["error"], json!(error), "{body}");
    let description = body["error_description"].as_str().expect("description");
    assert!(
        description.starts_with(&format!("AADSTS{code}: ")),
        "{description}"
    );
    assert_eq!(body["error_codes"], json!([code]));
    for field in ["timestamp", "trace_id", "correlation_id"] {
        assert!(
            body[field].as_str().is_some_and(|s| !s.is_empty()),
            "{field} missing: {body}"
        );
    }
    body
}

#[tokio::test]
async fn client_secret_grants_graph_and_arm_tokens_with_identity_claims() {
    let t = TestTenant::start().await;
    let response = t
        .token_request(&[
            ("grant_type", "client_credentials"),
            ("client_id", &t.client_id),
            ("client_secret", &t.client_secret),
            ("scope", GRAPH_SCOPE),
        ])
        .await;
    let body = json_body(response).await;
    assert_eq!(body["token_type"], json!("Bearer"));
    assert_eq!(body["expires_in"], json!(3599));
    let claims = claims_of(body["access_token"].as_str().unwrap());
    assert_eq!(claims["aud"], json!("https://graph.microsoft.com"));
    assert_eq!(claims["tid"], json!(t.tenant_id));
    assert_eq!(claims["appid"], json!(t.client_id));
    assert_eq!(claims["oid"], json!("4f97c425-4dcd-40fc-b52d-0e5f5b1ab19b"));
    assert!(claims["roles"]
        .as_array()
        .unwrap()
        .contains(&json!("RoleManagement.ReadWrite.Directory")));
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        3599
    );

    let arm = claims_of(
        &t.token_with_secret("https://management.core.windows.net//.default")
            .await,
    );
    assert_eq!(arm["aud"], json!("https://management.core.windows.net/"));
}

#[tokio::test]
async fn wrong_secret_is_aadsts7000215_and_never_echoes_the_secret() {
    let t = TestTenant::start().await;
    let response = t
        .token_request(&[
            ("grant_type", "client_credentials"),
            ("client_id", &t.client_id),
            ("client_secret", "not-the-secret-xyz"),
            ("scope", GRAPH_SCOPE),
        ])
        .await;
    let body = assert_aadsts(response, 401, "invalid_client", 7000215).await;
    assert!(!body.to_string().contains("not-the-secret-xyz"));
}

#[tokio::test]
async fn unknown_app_tenant_and_resource_are_rejected_with_their_codes() {
    let t = TestTenant::start().await;
    let unknown_app = t
        .token_request(&[
            ("grant_type", "client_credentials"),
            ("client_id", "11111111-2222-3333-4444-555555555555"),
            ("client_secret", "x"),
            ("scope", GRAPH_SCOPE),
        ])
        .await;
    assert_aadsts(unknown_app, 400, "unauthorized_client", 700016).await;

    let wrong_tenant = t
        .http
        .post(t.url("/00000000-1111-2222-3333-444444444444/oauth2/v2.0/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", t.client_id.as_str()),
            ("client_secret", t.client_secret.as_str()),
            ("scope", GRAPH_SCOPE),
        ])
        .send()
        .await
        .unwrap();
    assert_aadsts(wrong_tenant, 400, "invalid_request", 90002).await;

    for (scope, error, code) in [
        (
            "https://graph.microsoft.com/User.Read",
            "invalid_scope",
            1002012,
        ),
        (
            "https://vault.azure.net/.default",
            "invalid_resource",
            500011,
        ),
    ] {
        let response = t
            .token_request(&[
                ("grant_type", "client_credentials"),
                ("client_id", &t.client_id),
                ("client_secret", &t.client_secret),
                ("scope", scope),
            ])
            .await;
        assert_aadsts(response, 400, error, code).await;
    }

    let no_credential = t
        .token_request(&[
            ("grant_type", "client_credentials"),
            ("client_id", &t.client_id),
            ("scope", GRAPH_SCOPE),
        ])
        .await;
    assert_aadsts(no_credential, 401, "invalid_client", 7000218).await;
}

/// Registers the fixture certificate on the primary app and returns its `x5t#S256`.
async fn register_certificate(t: &TestTenant) -> Value {
    let response = t
        .admin(
            Method::POST,
            &format!("/auth/applications/{}/certificates", t.client_id),
        )
        .json(&json!({"pem": CLIENT_CERT}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    json_body(response).await
}

fn certificate_assertion(
    t: &TestTenant,
    key_pem: &str,
    header: Value,
    aud: &str,
    exp_offset: i64,
) -> String {
    let key = RsaPrivateKey::from_pkcs8_pem(key_pem).expect("fixture key");
    let now = now();
    let claims = json!({
        "aud": aud,
        "iss": t.client_id,
        "sub": t.client_id,
        "jti": uuid::Uuid::new_v4().to_string(),
        "nbf": now - 10,
        "exp": now + exp_offset,
    });
    fake_tenant::jwt::sign_with(&key, &header, &claims)
}

async fn exchange_assertion(t: &TestTenant, assertion: &str, scope: &str) -> reqwest::Response {
    t.token_request(&[
        ("grant_type", "client_credentials"),
        ("client_id", &t.client_id),
        ("client_assertion_type", JWT_BEARER),
        ("client_assertion", assertion),
        ("scope", scope),
    ])
    .await
}

#[tokio::test]
async fn certificate_assertion_is_verified_by_thumbprint_signature_audience_and_time() {
    let t = TestTenant::start().await;
    let thumbprints = register_certificate(&t).await;
    let endpoint = t.token_endpoint();
    let s256 = json!({"alg": "RS256", "typ": "JWT", "x5t#S256": thumbprints["x5t#S256"]});

    let good = certificate_assertion(&t, CLIENT_CERT_KEY, s256.clone(), &endpoint, 600);
    let body = json_body(exchange_assertion(&t, &good, ARM_SCOPE).await).await;
    let claims = claims_of(body["access_token"].as_str().expect("token issued"));
    assert_eq!(claims["appidacr"], json!("2"));

    // The SHA-1 `x5t` header names the certificate just as well.
    let sha1 = json!({"alg": "RS256", "typ": "JWT", "x5t": thumbprints["x5t"]});
    let by_sha1 = certificate_assertion(&t, CLIENT_CERT_KEY, sha1, &endpoint, 600);
    assert_eq!(
        exchange_assertion(&t, &by_sha1, ARM_SCOPE).await.status(),
        200
    );

    let forged = certificate_assertion(&t, UNRELATED_KEY, s256.clone(), &endpoint, 600);
    assert_aadsts(
        exchange_assertion(&t, &forged, ARM_SCOPE).await,
        401,
        "invalid_client",
        700027,
    )
    .await;

    let unknown_cert =
        json!({"alg": "RS256", "typ": "JWT", "x5t": URL_SAFE_NO_PAD.encode([7u8; 20])});
    let unknown = certificate_assertion(&t, CLIENT_CERT_KEY, unknown_cert, &endpoint, 600);
    assert_aadsts(
        exchange_assertion(&t, &unknown, ARM_SCOPE).await,
        401,
        "invalid_client",
        700027,
    )
    .await;

    let wrong_aud = certificate_assertion(
        &t,
        CLIENT_CERT_KEY,
        s256.clone(),
        "https://example.org/token",
        600,
    );
    assert_aadsts(
        exchange_assertion(&t, &wrong_aud, ARM_SCOPE).await,
        401,
        "invalid_client",
        700023,
    )
    .await;

    let expired = certificate_assertion(&t, CLIENT_CERT_KEY, s256, &endpoint, -5);
    assert_aadsts(
        exchange_assertion(&t, &expired, ARM_SCOPE).await,
        401,
        "invalid_client",
        700024,
    )
    .await;

    let malformed = exchange_assertion(&t, "not-a-jwt", ARM_SCOPE).await;
    assert_aadsts(malformed, 400, "invalid_request", 50027).await;
}

async fn ci_id_token(t: &TestTenant, request_token: &str) -> reqwest::Response {
    t.admin(
        Method::GET,
        "/oidc/token?audience=api://AzureADTokenExchange",
    )
    .bearer_auth(request_token)
    .send()
    .await
    .unwrap()
}

#[tokio::test]
async fn federated_assertion_from_the_ci_issuer_matches_a_federated_credential() {
    let t = TestTenant::start().await;
    let seed = fake_tenant::seed::load("default").unwrap();
    let request_token = seed["auth"]["ciOidcIssuer"]["requestToken"]
        .as_str()
        .unwrap();

    assert_eq!(ci_id_token(&t, "wrong-request-token").await.status(), 401);

    let id_token = json_body(ci_id_token(&t, request_token).await).await["value"]
        .as_str()
        .unwrap()
        .to_owned();
    let id_claims = claims_of(&id_token);
    assert_eq!(id_claims["aud"], json!("api://AzureADTokenExchange"));
    assert_eq!(
        id_claims["sub"],
        json!("repo:contoso/breakglass:ref:refs/heads/main")
    );
    let body = json_body(exchange_assertion(&t, &id_token, GRAPH_SCOPE).await).await;
    assert!(body["access_token"].is_string(), "{body}");

    // A workflow on another branch presents a subject no credential trusts.
    t.set_settings(
        json!({"auth.ci_oidc_subject": "repo:contoso/breakglass:ref:refs/heads/feature"}),
    )
    .await;
    let other_branch = json_body(ci_id_token(&t, request_token).await).await["value"]
        .as_str()
        .unwrap()
        .to_owned();
    let rejected = assert_aadsts(
        exchange_assertion(&t, &other_branch, GRAPH_SCOPE).await,
        400,
        "invalid_request",
        70021,
    )
    .await;
    assert!(rejected["error_description"]
        .as_str()
        .unwrap()
        .contains("refs/heads/feature"));

    // Registering a credential for that subject makes the same kind of token acceptable.
    let registered = t
        .admin(
            Method::POST,
            &format!(
                "/auth/applications/{}/federatedIdentityCredentials",
                t.client_id
            ),
        )
        .json(&json!({
            "name": "github-feature",
            "issuer": "https://token.actions.githubusercontent.com",
            "subject": "repo:contoso/breakglass:ref:refs/heads/feature",
            "audiences": ["api://AzureADTokenExchange"],
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(registered.status(), 201);
    assert_eq!(
        exchange_assertion(&t, &other_branch, GRAPH_SCOPE)
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn managed_identity_endpoints_need_their_headers_and_issue_usable_tokens() {
    let t = TestTenant::start().await;
    let imds = t.url(
        "/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https://management.azure.com/",
    );
    let without_header = t.http.get(&imds).send().await.unwrap();
    assert_eq!(without_header.status(), 400);
    assert_eq!(
        json_body(without_header).await["error"],
        json!("invalid_request")
    );

    let body = json_body(
        t.http
            .get(&imds)
            .header("Metadata", "true")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        body["client_id"],
        json!("ecf1533d-6baf-4171-a675-34d9f991f1cd")
    );
    assert_eq!(
        body["expires_in"],
        json!("3599"),
        "IMDS numbers are strings"
    );
    let token = body["access_token"].as_str().unwrap();
    let tenants = t
        .http
        .get(t.url("/tenants?api-version=2022-12-01"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(tenants.status(), 200);
    assert_eq!(
        json_body(tenants).await["value"][0]["tenantId"],
        json!(t.tenant_id)
    );

    let unknown = t
        .http
        .get(format!(
            "{imds}&client_id=99999999-9999-9999-9999-999999999999"
        ))
        .header("Metadata", "true")
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 400);

    let app_service =
        t.url("/msi/token?api-version=2019-08-01&resource=https://graph.microsoft.com");
    assert_eq!(t.http.get(&app_service).send().await.unwrap().status(), 400);
    let wrong = t
        .http
        .get(&app_service)
        .header("X-IDENTITY-HEADER", "nope")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    let seed = fake_tenant::seed::load("default").unwrap();
    let header = seed["auth"]["managedIdentityEndpoint"]["identityHeader"]
        .as_str()
        .unwrap();
    let body = json_body(
        t.http
            .get(&app_service)
            .header("X-IDENTITY-HEADER", header)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        claims_of(body["access_token"].as_str().unwrap())["aud"],
        json!("https://graph.microsoft.com")
    );
}

#[tokio::test]
async fn graph_and_arm_enforce_bearer_presence_and_audience() {
    let t = TestTenant::start().await;
    // /me with an app-only token is Graph's own 400: the token itself was accepted.
    let me = t.graph(Method::GET, "/me").send().await.unwrap();
    assert_eq!(me.status(), 400);

    let missing = t.http.get(t.url("/v1.0/me")).send().await.unwrap();
    assert_eq!(missing.status(), 401);
    assert!(missing.headers().contains_key("www-authenticate"));
    assert_eq!(
        json_body(missing).await["error"]["code"],
        json!("InvalidAuthenticationToken")
    );

    let arm_token_on_graph = t
        .http
        .get(t.url("/v1.0/me"))
        .bearer_auth(&t.arm_token)
        .send()
        .await
        .unwrap();
    assert_eq!(arm_token_on_graph.status(), 401);

    let garbage = t
        .http
        .get(t.url("/v1.0/me"))
        .bearer_auth("abc.def.ghi")
        .send()
        .await
        .unwrap();
    assert_eq!(garbage.status(), 401);

    let tenants = "/tenants?api-version=2022-12-01";
    assert_eq!(
        t.arm(Method::GET, tenants).send().await.unwrap().status(),
        200
    );
    let graph_token_on_arm = t
        .http
        .get(t.url(tenants))
        .bearer_auth(&t.graph_token)
        .send()
        .await
        .unwrap();
    assert_eq!(graph_token_on_arm.status(), 401);
    assert!(graph_token_on_arm.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .contains("invalid_token"));
    assert_eq!(
        json_body(graph_token_on_arm).await["error"]["code"],
        json!("InvalidAuthenticationTokenAudience")
    );
    let missing_arm = t.http.get(t.url(tenants)).send().await.unwrap();
    assert_eq!(
        json_body(missing_arm).await["error"]["code"],
        json!("AuthenticationFailed")
    );
}

#[tokio::test]
async fn expired_tokens_are_refused_and_token_issuance_is_counted() {
    let t = TestTenant::start().await;
    let counts = json_body(
        t.admin(Method::GET, "/auth/tokens-issued")
            .send()
            .await
            .unwrap(),
    )
    .await;
    // The harness fetched one Graph and one ARM token at start.
    assert_eq!(counts[&t.client_id], json!(2));

    t.set_settings(json!({"auth.token_lifetime_s": 0})).await;
    let expired = t.token_with_secret(ARM_SCOPE).await;
    let response = t
        .http
        .get(t.url("/tenants?api-version=2022-12-01"))
        .bearer_auth(&expired)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(
        json_body(response).await["error"]["code"],
        json!("ExpiredAuthenticationToken")
    );
    let expired_graph = t.token_with_secret(GRAPH_SCOPE).await;
    let response = t
        .http
        .get(t.url("/v1.0/me"))
        .bearer_auth(&expired_graph)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);

    let counts = json_body(
        t.admin(Method::GET, "/auth/tokens-issued")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(counts[&t.client_id], json!(4));
}

/// Every JWT the emulator issued or was shown is kept for leak searches: the CI ID token, the
/// same token presented as a federated assertion, and the access token it bought.
#[tokio::test]
async fn issued_and_presented_tokens_are_kept_for_leak_searches() {
    let t = TestTenant::start().await;
    let seed = fake_tenant::seed::load("default").unwrap();
    let request_token = seed["auth"]["ciOidcIssuer"]["requestToken"]
        .as_str()
        .unwrap();
    let id_token = json_body(ci_id_token(&t, request_token).await).await["value"]
        .as_str()
        .unwrap()
        .to_owned();
    let body = json_body(exchange_assertion(&t, &id_token, GRAPH_SCOPE).await).await;
    let access_token = body["access_token"].as_str().unwrap().to_owned();
    let seen = json_body(
        t.admin(Method::GET, "/auth/tokens-seen")
            .send()
            .await
            .unwrap(),
    )
    .await;
    let seen: Vec<&str> = seen["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    // The harness's own two tokens at start, the ID token, the assertion (the same string)
    // and the access token, in that order.
    assert_eq!(seen.len(), 5, "{seen:?}");
    assert_eq!(&seen[2..], [&id_token, &id_token, &access_token]);
}
