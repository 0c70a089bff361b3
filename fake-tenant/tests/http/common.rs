//! Shared test harness: an in-process emulated tenant on an ephemeral port, bearer tokens for
//! the seed's service principal, and clients for Graph, ARM and the admin API.

#![allow(dead_code)] // each area's tests use a different part of the harness

use fake_tenant::AppState;
use reqwest::{Method, RequestBuilder};
use serde_json::{json, Value};

/// A running emulated tenant plus credentials for the seed's primary service principal.
pub struct TestTenant {
    /// `http://127.0.0.1:PORT`, no trailing slash.
    pub url: String,
    pub state: AppState,
    pub http: reqwest::Client,
    pub tenant_id: String,
    pub client_id: String,
    pub client_secret: String,
    /// Bearer tokens for `https://graph.microsoft.com` and `https://management.azure.com`,
    /// fetched once at start through the token endpoint.
    pub graph_token: String,
    pub arm_token: String,
}

impl TestTenant {
    /// The default seed.
    pub async fn start() -> TestTenant {
        Self::start_seed("default").await
    }

    /// An embedded seed by name (`default`, `forbid-permanent`, `large`) or a seed file path.
    pub async fn start_seed(name: &str) -> TestTenant {
        let seed = fake_tenant::seed::load(name).unwrap_or_else(|e| panic!("seed {name}: {e}"));
        Self::start_with(seed).await
    }

    /// The default seed with a JSON merge patch applied, e.g.
    /// `json!({"pim": {"policies": ...}})`.
    pub async fn start_patched(patch: Value) -> TestTenant {
        let mut seed = fake_tenant::seed::load("default").expect("default seed");
        fake_tenant::seed::merge_patch(&mut seed, &patch);
        Self::start_with(seed).await
    }

    pub async fn start_with(seed: Value) -> TestTenant {
        Self::serve(seed, None).await
    }

    /// The default seed served over HTTPS with a certificate from `ca` for `public_host`,
    /// at the public base URL `https://{public_host}:{port}`. The client trusts only `ca` and
    /// resolves `public_host` to the listener, as DNS would.
    pub async fn start_tls(ca: &TestCa, public_host: &str) -> TestTenant {
        let seed = fake_tenant::seed::load("default").expect("default seed");
        Self::serve(seed, Some((ca, public_host))).await
    }

    async fn serve(seed: Value, tls: Option<(&TestCa, &str)>) -> TestTenant {
        let tenant = fake_tenant::seed::build(&seed).expect("seed builds a tenant");
        let state = AppState::new(tenant);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind an ephemeral port");
        let address = listener.local_addr().expect("local addr");
        let app = fake_tenant::app(state.clone());
        let (url, http, config) = match tls {
            None => (format!("http://{address}"), reqwest::Client::new(), None),
            Some((ca, host)) => {
                let (cert, key) = ca.server_certificate(&[host]);
                let config = fake_tenant::tls::server_config(cert.as_bytes(), key.as_bytes())
                    .expect("TLS config");
                let http = reqwest::Client::builder()
                    .tls_built_in_root_certs(false)
                    .add_root_certificate(
                        reqwest::Certificate::from_pem(ca.cert_pem.as_bytes()).expect("CA"),
                    )
                    .resolve(host, address)
                    .build()
                    .expect("TLS client");
                (
                    format!("https://{host}:{}", address.port()),
                    http,
                    Some(config),
                )
            }
        };
        state.set_base_url(&url);
        tokio::spawn(async move {
            fake_tenant::tls::serve(listener, config, app, std::future::pending())
                .await
                .expect("serve");
        });
        let app0 = &seed["auth"]["applications"][0];
        let mut tenant = TestTenant {
            url,
            state,
            http,
            tenant_id: seed["tenant"]["id"].as_str().expect("tenant id").to_owned(),
            client_id: app0["appId"].as_str().expect("app id").to_owned(),
            client_secret: app0["clientSecrets"][0]
                .as_str()
                .expect("secret")
                .to_owned(),
            graph_token: String::new(),
            arm_token: String::new(),
        };
        tenant.graph_token = tenant
            .token_with_secret("https://graph.microsoft.com/.default")
            .await;
        tenant.arm_token = tenant
            .token_with_secret("https://management.azure.com/.default")
            .await;
        tenant
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }

    pub fn token_endpoint(&self) -> String {
        self.url(&format!("/{}/oauth2/v2.0/token", self.tenant_id))
    }

    /// Posts a form to the token endpoint and returns the raw response.
    pub async fn token_request(&self, form: &[(&str, &str)]) -> reqwest::Response {
        self.http
            .post(self.token_endpoint())
            .form(form)
            .send()
            .await
            .expect("token endpoint reachable")
    }

    /// A token for `scope` with the primary app's client secret; panics on failure.
    pub async fn token_with_secret(&self, scope: &str) -> String {
        let response = self
            .token_request(&[
                ("grant_type", "client_credentials"),
                ("client_id", &self.client_id),
                ("client_secret", &self.client_secret),
                ("scope", scope),
            ])
            .await;
        let status = response.status();
        let body: Value = response.json().await.expect("token response is JSON");
        assert_eq!(status, 200, "token request failed: {body}");
        body["access_token"]
            .as_str()
            .expect("access_token")
            .to_owned()
    }

    /// A Graph request (`path` relative to `/v1.0`, e.g. `/users`) with the Graph bearer.
    pub fn graph(&self, method: Method, path: &str) -> RequestBuilder {
        self.http
            .request(method, self.url(&format!("/v1.0{path}")))
            .bearer_auth(&self.graph_token)
    }

    /// An ARM request (`path` from `/subscriptions/...` or `/providers/...`, query included)
    /// with the ARM bearer.
    pub fn arm(&self, method: Method, path: &str) -> RequestBuilder {
        self.http
            .request(method, self.url(path))
            .bearer_auth(&self.arm_token)
    }

    /// An admin request (`path` relative to `/_fake`).
    pub fn admin(&self, method: Method, path: &str) -> RequestBuilder {
        self.http
            .request(method, self.url(&format!("/_fake{path}")))
    }

    /// Merges `settings` into the behaviour settings (`PUT /_fake/settings`).
    pub async fn set_settings(&self, settings: Value) {
        let response = self
            .admin(Method::PUT, "/settings")
            .json(&settings)
            .send()
            .await
            .expect("admin reachable");
        assert!(response.status().is_success(), "PUT /_fake/settings failed");
    }

    /// The request log (`GET /_fake/requests`), optionally filtered, e.g. `?method=POST&path=/v1.0/users`.
    pub async fn requests(&self, query: &str) -> Vec<Value> {
        let body: Value = self
            .admin(Method::GET, &format!("/requests{query}"))
            .send()
            .await
            .expect("admin reachable")
            .json()
            .await
            .expect("request log is JSON");
        body["value"].as_array().cloned().unwrap_or_default()
    }

    /// Response bodies that did not match the specs so far (`GET /_fake/spec-violations`).
    pub async fn spec_violations(&self) -> Vec<Value> {
        let body: Value = self
            .admin(Method::GET, "/spec-violations")
            .send()
            .await
            .expect("admin reachable")
            .json()
            .await
            .expect("violations are JSON");
        body["value"].as_array().cloned().unwrap_or_default()
    }

    /// Asserts no response so far violated the specs; call at the end of a test.
    pub async fn assert_no_spec_violations(&self) {
        let violations = self.spec_violations().await;
        assert!(
            violations.is_empty(),
            "spec violations: {}",
            json!(violations)
        );
    }
}

/// Reads a JSON body, panicking with the status and text when it is not JSON.
pub async fn json_body(response: reqwest::Response) -> Value {
    let status = response.status();
    let text = response.text().await.expect("body readable");
    serde_json::from_str(&text)
        .unwrap_or_else(|_| panic!("status {status}: body is not JSON: {text}"))
}

/// A throw-away certificate authority generated for one test run (no key is committed).
pub struct TestCa {
    pub cert_pem: String,
    params: rcgen::CertificateParams,
    key: rcgen::KeyPair,
}

impl TestCa {
    pub fn new() -> TestCa {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "breakglass fake-tenant test CA");
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::CrlSign,
        ];
        let key = rcgen::KeyPair::generate().expect("CA key");
        let cert = params.self_signed(&key).expect("CA certificate");
        TestCa {
            cert_pem: cert.pem(),
            params,
            key,
        }
    }

    /// A server certificate (PEM) and its key (PKCS#8 PEM) for `names`, signed by this CA.
    pub fn server_certificate(&self, names: &[&str]) -> (String, String) {
        let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        let mut params = rcgen::CertificateParams::new(names).expect("server params");
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
        let key = rcgen::KeyPair::generate().expect("server key");
        let issuer = rcgen::Issuer::from_params(&self.params, &self.key);
        let cert = params.signed_by(&key, &issuer).expect("server certificate");
        (cert.pem(), key.serialize_pem())
    }
}
