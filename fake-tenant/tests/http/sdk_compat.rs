//! What Microsoft's own SDKs need from the emulated tenant: HTTPS with a public base URL that
//! every emitted URL follows, MSAL's discovery requests, MSAL-style certificate assertions
//! (padded `x5t`, PS256), Kiota's `graph.` type casts, and the ARM operations and default
//! api-versions of the azure-mgmt-* packages. The official SDKs themselves run against the
//! emulator in `tests/sdk/` (driven by `tests/it/sdk_python.rs`).

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};

use base64::engine::general_purpose::{URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine as _;
use reqwest::Method;
use rsa::pkcs8::DecodePrivateKey;
use rsa::signature::{RandomizedSigner, SignatureEncoding};
use rsa::RsaPrivateKey;
use serde_json::{json, Value};
use sha2::Sha256;

use crate::common::{json_body, TestCa, TestTenant};

const PUBLIC_HOST: &str = "login.contoso.test";
const ARM_SCOPE: &str = "https://management.azure.com/.default";
const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
const CLIENT_CERT: &str = include_str!("fixtures/client-cert.pem");
const CLIENT_CERT_KEY: &str = include_str!("fixtures/client-cert-key.pem");
const SUB: &str = "eeb0c733-9a1c-437b-b310-e18599b1b281";

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

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

/// A client assertion as MSAL builds one; `alg` RS256 or PS256.
fn assertion(t: &TestTenant, header: Value, aud: &str) -> String {
    let key = RsaPrivateKey::from_pkcs8_pem(CLIENT_CERT_KEY).expect("fixture key");
    let now = now();
    let claims = json!({
        "aud": aud, "iss": t.client_id, "sub": t.client_id,
        "jti": uuid::Uuid::new_v4().to_string(), "nbf": now - 10, "exp": now + 600,
    });
    if header["alg"] == "RS256" {
        return fake_tenant::jwt::sign_with(&key, &header, &claims);
    }
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let signature = rsa::pss::SigningKey::<Sha256>::new(key)
        .sign_with_rng(&mut rand::thread_rng(), input.as_bytes());
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature.to_bytes()))
}

async fn exchange(t: &TestTenant, assertion: &str) -> reqwest::Response {
    t.token_request(&[
        ("grant_type", "client_credentials"),
        ("client_id", &t.client_id),
        ("client_assertion_type", JWT_BEARER),
        ("client_assertion", assertion),
        ("scope", ARM_SCOPE),
    ])
    .await
}

async fn aadsts(response: reqwest::Response) -> (u16, String, Value) {
    let status = response.status().as_u16();
    let body = json_body(response).await;
    (
        status,
        body["error"].as_str().unwrap_or("").to_owned(),
        body["error_codes"].clone(),
    )
}

#[tokio::test]
async fn over_https_every_emitted_url_follows_the_public_base_url() {
    let ca = TestCa::new();
    let t = TestTenant::start_tls(&ca, PUBLIC_HOST).await;
    assert!(
        t.url.starts_with(&format!("https://{PUBLIC_HOST}:")),
        "{}",
        t.url
    );

    // Paging and context links (Graph).
    let page = json_body(t.graph(Method::GET, "/users?$top=2").send().await.unwrap()).await;
    for link in ["@odata.nextLink", "@odata.context"] {
        let url = page[link]
            .as_str()
            .unwrap_or_else(|| panic!("{link} missing: {page}"));
        assert!(
            url.starts_with(&format!("{}/v1.0/", t.url)),
            "{link}: {url}"
        );
    }
    let next = page["@odata.nextLink"].as_str().unwrap();
    let second = t
        .http
        .get(next)
        .bearer_auth(&t.graph_token)
        .send()
        .await
        .unwrap();
    assert_eq!(second.status(), 200, "the nextLink is followable as given");

    // `Location` of a created entity (OData: 201 carries it).
    let created = t
        .graph(Method::POST, "/users")
        .json(&json!({
            "accountEnabled": true, "displayName": "TLS probe", "mailNickname": "tls-probe",
            "userPrincipalName": "tls-probe@contoso.onmicrosoft.com",
            "passwordProfile": {"password": "Correct-Horse-9-Battery"},
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let location = created.headers()["location"].to_str().unwrap().to_owned();
    let user = json_body(created).await;
    assert_eq!(
        location,
        format!("{}/v1.0/users/{}", t.url, user["id"].as_str().unwrap())
    );
    let fetched = t
        .http
        .get(&location)
        .bearer_auth(&t.graph_token)
        .send()
        .await
        .unwrap();
    assert_eq!(fetched.status(), 200, "Location names the new user");

    // A client assertion's audience is the https token endpoint under the public URL; the
    // plain listen address is not this tenant's token endpoint.
    let thumbprints = register_certificate(&t).await;
    let header = json!({"alg": "PS256", "typ": "JWT", "x5t#S256": thumbprints["x5t#S256"]});
    let good = assertion(&t, header.clone(), &t.token_endpoint());
    assert_eq!(exchange(&t, &good).await.status(), 200);
    let plain = t.token_endpoint().replacen("https://", "http://", 1);
    let refused = assertion(&t, header, &plain);
    let (status, error, codes) = aadsts(exchange(&t, &refused).await).await;
    assert_eq!(
        (status, error.as_str(), codes),
        (401, "invalid_client", json!([700023]))
    );

    // The TLS is real: a client without the test CA cannot even connect.
    let port: u16 = t.url.rsplit(':').next().unwrap().parse().unwrap();
    let untrusting = reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .resolve(
            PUBLIC_HOST,
            std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        )
        .build()
        .unwrap();
    let failure = untrusting
        .get(t.url("/common/discovery/instance"))
        .send()
        .await;
    assert!(
        failure.is_err_and(|e| e.is_connect()),
        "an unknown CA must fail the handshake"
    );
    t.assert_no_spec_violations().await;
}

#[tokio::test]
async fn openid_configuration_and_signing_keys_describe_this_tenant_at_its_public_url() {
    let ca = TestCa::new();
    let t = TestTenant::start_tls(&ca, PUBLIC_HOST).await;
    let authority = format!("{}/{}", t.url, t.tenant_id);
    let doc = json_body(
        t.http
            .get(format!("{authority}/v2.0/.well-known/openid-configuration"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        doc["token_endpoint"],
        json!(format!("{authority}/oauth2/v2.0/token"))
    );
    assert_eq!(
        doc["authorization_endpoint"],
        json!(format!("{authority}/oauth2/v2.0/authorize"))
    );
    assert_eq!(doc["issuer"], json!(format!("{authority}/v2.0")));
    assert!(doc["token_endpoint_auth_methods_supported"]
        .as_array()
        .unwrap()
        .contains(&json!("private_key_jwt")));

    // The advertised token endpoint works; the advertised keys verify what it issues.
    assert_eq!(
        doc["token_endpoint"].as_str(),
        Some(t.token_endpoint().as_str())
    );
    let keys = json_body(
        t.http
            .get(doc["jwks_uri"].as_str().unwrap())
            .send()
            .await
            .unwrap(),
    )
    .await;
    let header: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(t.graph_token.split('.').next().unwrap())
            .unwrap(),
    )
    .unwrap();
    let jwk = keys["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == header["kid"])
        .unwrap_or_else(|| panic!("no key with the token's kid: {keys}"));
    let n =
        rsa::BigUint::from_bytes_be(&URL_SAFE_NO_PAD.decode(jwk["n"].as_str().unwrap()).unwrap());
    let e =
        rsa::BigUint::from_bytes_be(&URL_SAFE_NO_PAD.decode(jwk["e"].as_str().unwrap()).unwrap());
    let public = rsa::RsaPublicKey::new(n, e).unwrap();
    let token = fake_tenant::jwt::UnverifiedJwt::parse(&t.graph_token).unwrap();
    assert!(
        token.verify(&public),
        "the JWKS key verifies an issued access token"
    );

    let unknown = t
        .http
        .get(t.url("/00000000-0000-0000-0000-000000000001/v2.0/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap();
    let (status, error, codes) = aadsts(unknown).await;
    assert_eq!(
        (status, error.as_str(), codes),
        (400, "invalid_tenant", json!([90002]))
    );
}

#[tokio::test]
async fn instance_discovery_answers_as_msal_expects_and_refuses_unknown_instances() {
    let ca = TestCa::new();
    let t = TestTenant::start_tls(&ca, PUBLIC_HOST).await;
    let discover = |authorize: String, version: &'static str| {
        let http = t.http.clone();
        let url = t.url("/common/discovery/instance");
        async move {
            http.get(url)
                .query(&[
                    ("api-version", version),
                    ("authorization_endpoint", &authorize),
                ])
                .send()
                .await
                .unwrap()
        }
    };
    let host = PUBLIC_HOST.to_owned() + ":" + t.url.rsplit(':').next().unwrap();
    for version in ["1.1", "1.0"] {
        let body = json_body(
            discover(
                format!("https://{host}/{}/oauth2/v2.0/authorize", t.tenant_id),
                version,
            )
            .await,
        )
        .await;
        assert_eq!(
            body["tenant_discovery_endpoint"],
            json!(format!(
                "{}/{}/v2.0/.well-known/openid-configuration",
                t.url, t.tenant_id
            )),
            "{body}"
        );
        assert_eq!(body["metadata"][0]["preferred_network"], json!(host));
        assert_eq!(body["metadata"][0]["aliases"], json!([host]));
    }
    // MSAL Python sends the authority's host name without its port: the same instance.
    let portless = json_body(
        discover(
            format!(
                "https://{PUBLIC_HOST}/{}/oauth2/v2.0/authorize",
                t.tenant_id
            ),
            "1.0",
        )
        .await,
    )
    .await;
    assert_eq!(
        portless["tenant_discovery_endpoint"],
        json!(format!(
            "{}/{}/v2.0/.well-known/openid-configuration",
            t.url, t.tenant_id
        )),
        "{portless}"
    );
    // The tenant segment of the authorize URL is mirrored, whatever it is.
    let body = json_body(
        discover(
            format!("https://{host}/organizations/oauth2/v2.0/authorize"),
            "1.1",
        )
        .await,
    )
    .await;
    assert_eq!(
        body["tenant_discovery_endpoint"],
        json!(format!(
            "{}/organizations/v2.0/.well-known/openid-configuration",
            t.url
        ))
    );

    let (status, error, codes) = aadsts(
        discover(
            "https://login.evil.example/common/oauth2/v2.0/authorize".into(),
            "1.1",
        )
        .await,
    )
    .await;
    assert_eq!(
        (status, error.as_str(), codes),
        (400, "invalid_instance", json!([50049]))
    );
    let missing = t
        .http
        .get(t.url("/common/discovery/instance?api-version=1.1"))
        .send()
        .await
        .unwrap();
    assert_eq!(aadsts(missing).await.2, json!([900144]));
}

#[tokio::test]
async fn msal_python_assertions_with_padded_x5t_and_ps256_are_accepted() {
    let t = TestTenant::start().await;
    let thumbprints = register_certificate(&t).await;
    let endpoint = t.token_endpoint();
    // MSAL Python encodes thumbprints with `base64.urlsafe_b64encode`, i.e. with padding.
    let sha1 = URL_SAFE_NO_PAD
        .decode(thumbprints["x5t"].as_str().unwrap())
        .unwrap();
    let sha256 = URL_SAFE_NO_PAD
        .decode(thumbprints["x5t#S256"].as_str().unwrap())
        .unwrap();
    let padded_sha1 = URL_SAFE.encode(&sha1);
    let padded_sha256 = URL_SAFE.encode(&sha256);
    assert!(padded_sha1.ends_with('=') && padded_sha256.ends_with('='));

    for header in [
        json!({"alg": "PS256", "typ": "JWT", "x5t#S256": padded_sha256}),
        json!({"alg": "RS256", "typ": "JWT", "x5t": padded_sha1}),
        json!({"alg": "PS256", "typ": "JWT", "x5t#S256": thumbprints["x5t#S256"]}),
    ] {
        let response = exchange(&t, &assertion(&t, header.clone(), &endpoint)).await;
        assert_eq!(
            response.status(),
            200,
            "{header}: {}",
            response.text().await.unwrap()
        );
    }
    // PS256 is verified, not waved through: a PS256 header over an RS256 signature fails.
    let rs = assertion(
        &t,
        json!({"alg": "RS256", "typ": "JWT", "x5t": padded_sha1}),
        &endpoint,
    );
    let mut parts: Vec<String> = rs.split('.').map(str::to_owned).collect();
    parts[0] = URL_SAFE_NO_PAD
        .encode(json!({"alg": "PS256", "typ": "JWT", "x5t": padded_sha1}).to_string());
    let (status, _, codes) = aadsts(exchange(&t, &parts.join(".")).await).await;
    assert_eq!((status, codes), (401, json!([700027])));
    // Algorithms outside the two are refused.
    let none = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(json!({"alg": "none", "x5t": padded_sha1}).to_string()),
        parts[1]
    );
    assert_eq!(aadsts(exchange(&t, &none).await).await.0, 401);
}

#[tokio::test]
async fn kiota_graph_alias_type_casts_work_like_the_namespace_and_unknown_casts_are_400() {
    let t = TestTenant::start().await;
    let user = json_body(
        t.graph(Method::POST, "/users")
            .json(&json!({
                "accountEnabled": true, "displayName": "Alias probe", "mailNickname": "alias-probe",
                "userPrincipalName": "alias-probe@contoso.onmicrosoft.com",
                "passwordProfile": {"password": "Correct-Horse-9-Battery"},
            }))
            .send()
            .await
            .unwrap(),
    )
    .await;
    let id = user["id"].as_str().unwrap().to_owned();
    let deleted = t
        .graph(Method::DELETE, &format!("/users/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 204);

    let by_alias = json_body(
        t.graph(Method::GET, "/directory/deletedItems/graph.user")
            .send()
            .await
            .unwrap(),
    )
    .await;
    let by_namespace = json_body(
        t.graph(Method::GET, "/directory/deletedItems/microsoft.graph.user")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert!(
        by_alias["value"]
            .as_array()
            .unwrap()
            .iter()
            .any(|u| u["id"] == json!(id)),
        "{by_alias}"
    );
    assert_eq!(by_alias["value"], by_namespace["value"]);

    // Other deletable types list (empty: the emulator soft-deletes only users); a cast that is
    // no type is a segment Graph cannot resolve — not a 404 for an object named like a type.
    let groups = json_body(
        t.graph(Method::GET, "/directory/deletedItems/graph.group")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(groups["value"], json!([]), "{groups}");
    let bogus = t
        .graph(Method::GET, "/directory/deletedItems/graph.banana")
        .send()
        .await
        .unwrap();
    assert_eq!(bogus.status(), 400);
    assert_eq!(json_body(bogus).await["error"]["code"], json!("BadRequest"));

    let restored = t
        .graph(
            Method::POST,
            &format!("/directory/deletedItems/{id}/graph.restore"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(restored.status(), 200);

    let groups_list = json_body(t.graph(Method::GET, "/groups").send().await.unwrap()).await;
    let group = groups_list["value"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["displayName"] == json!("All Staff"))
        .and_then(|g| g["id"].as_str())
        .expect("the seed has the All Staff group")
        .to_owned();
    let alias = json_body(
        t.graph(Method::GET, &format!("/groups/{group}/members/graph.user"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    let namespace = json_body(
        t.graph(
            Method::GET,
            &format!("/groups/{group}/members/microsoft.graph.user"),
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert!(!alias["value"].as_array().unwrap().is_empty(), "{alias}");
    assert_eq!(alias["value"], namespace["value"]);
    // The request log keeps what the client sent.
    let logged = t.requests("?path=graph%5C.user").await;
    assert!(!logged.is_empty());
    t.assert_no_spec_violations().await;
}

#[tokio::test]
async fn arm_serves_what_the_azure_mgmt_packages_call_at_their_default_api_versions() {
    let t = TestTenant::start().await;
    let rg = format!("/subscriptions/{SUB}/resourcegroups/rg-breakglass-monitoring");

    // GET /subscriptions (2016-06-01: older SubscriptionClient default) and /tenants.
    for version in ["2016-06-01", "2022-12-01"] {
        let subs = json_body(
            t.arm(
                Method::GET,
                &format!("/subscriptions?api-version={version}"),
            )
            .send()
            .await
            .unwrap(),
        )
        .await;
        assert_eq!(subs["value"][0]["subscriptionId"], json!(SUB), "{subs}");
        let tenants = t
            .arm(Method::GET, &format!("/tenants?api-version={version}"))
            .send()
            .await
            .unwrap();
        assert_eq!(tenants.status(), 200);
    }
    for bad in ["/tenants", "/tenants?api-version=1999-01-01"] {
        let refused = json_body(t.arm(Method::GET, bad).send().await.unwrap()).await;
        assert!(
            matches!(
                refused["error"]["code"].as_str(),
                Some("MissingApiVersionParameter" | "InvalidApiVersionParameter")
            ),
            "{bad}: {refused}"
        );
    }

    // Resource groups at 2025-04-01, including PATCH (tags replaced, location kept).
    let patched = t
        .arm(Method::PATCH, &format!("{rg}?api-version=2025-04-01"))
        .json(&json!({"tags": {"owner": "secops"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(patched.status(), 200);
    let patched = json_body(patched).await;
    assert_eq!(patched["tags"], json!({"owner": "secops"}));
    assert_eq!(patched["location"], json!("westeurope"));
    let read = json_body(
        t.arm(Method::GET, &format!("{rg}?api-version=2025-04-01"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(read["tags"], json!({"owner": "secops"}));
    let moving = t
        .arm(Method::PATCH, &format!("{rg}?api-version=2025-04-01"))
        .json(&json!({"location": "northeurope"}))
        .send()
        .await
        .unwrap();
    assert_eq!(moving.status(), 400);
    let missing = t
        .arm(
            Method::PATCH,
            &format!("/subscriptions/{SUB}/resourcegroups/nope?api-version=2025-04-01"),
        )
        .json(&json!({"tags": {}}))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);

    // Workspaces at 2025-07-01, listed by resource group and by subscription.
    let by_rg = json_body(
        t.arm(
            Method::GET,
            &format!(
                "{rg}/providers/Microsoft.OperationalInsights/workspaces?api-version=2025-07-01"
            ),
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    let by_sub = json_body(
        t.arm(Method::GET, &format!("/subscriptions/{SUB}/providers/Microsoft.OperationalInsights/workspaces?api-version=2025-07-01"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        by_sub["value"][0]["name"],
        json!("law-breakglass"),
        "{by_sub}"
    );
    assert_eq!(by_rg["value"], by_sub["value"]);
    t.assert_no_spec_violations().await;
}

/// The binary's own flags: `--tls-cert/--tls-key` and `--public-url` with `{port}`.
#[tokio::test]
async fn the_binary_serves_https_at_its_public_url() {
    let ca = TestCa::new();
    let (cert, key) = ca.server_certificate(&["localhost"]);
    let dir = std::env::temp_dir().join(format!("fake-tenant-tls-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("cert.pem"), cert).unwrap();
    std::fs::write(dir.join("key.pem"), key).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_breakglass-fake-tenant"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--public-url",
            "https://localhost:{port}",
        ])
        .arg("--tls-cert")
        .arg(dir.join("cert.pem"))
        .arg("--tls-key")
        .arg(dir.join("key.pem"))
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let ready: Value = serde_json::from_str(&line).unwrap_or_else(|_| panic!("ready line: {line}"));
    let url = ready["url"].as_str().unwrap().to_owned();
    let port = ready["listen"]
        .as_str()
        .unwrap()
        .rsplit(':')
        .next()
        .unwrap()
        .to_owned();
    assert_eq!(url, format!("https://localhost:{port}"));
    let client = reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(ca.cert_pem.as_bytes()).unwrap())
        .build()
        .unwrap();
    let tenant = ready["tenant_id"].as_str().unwrap();
    let doc = client
        .get(format!(
            "{url}/{tenant}/v2.0/.well-known/openid-configuration"
        ))
        .send()
        .await;
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
    let doc: Value = doc.unwrap().json().await.unwrap();
    assert_eq!(
        doc["token_endpoint"],
        json!(format!("{url}/{tenant}/oauth2/v2.0/token"))
    );

    // Bad flags are refused with a message, not a panic.
    let half = Command::new(env!("CARGO_BIN_EXE_breakglass-fake-tenant"))
        .args(["--tls-cert", "x.pem"])
        .output()
        .unwrap();
    assert_eq!(half.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&half.stderr).contains("--tls-cert and --tls-key go together"));
    let bad_url = Command::new(env!("CARGO_BIN_EXE_breakglass-fake-tenant"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--public-url",
            "https://host/v1.0",
        ])
        .output()
        .unwrap();
    assert!(!bad_url.status.success());
    assert!(String::from_utf8_lossy(&bad_url.stderr).contains("--public-url"));
}
