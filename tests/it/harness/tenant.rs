//! The emulated tenant, served in-process on an ephemeral loopback port for one test — over
//! plain HTTP, or over HTTPS at a public name only a test proxy resolves (`start_tls`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::thread::JoinHandle;

use fake_tenant::AppState;
use serde_json::Value as Json;

pub struct FakeTenant {
    /// `http://127.0.0.1:<port>`: token endpoint, Graph (`/v1.0`), ARM and `/_fake` admin.
    /// Over TLS, the public URL (`https://<name>`), reachable only through a proxy that maps
    /// the name to `listen`.
    pub base_url: String,
    /// The socket the server listens on (what a proxy connects to).
    pub listen: SocketAddr,
    /// Over TLS: the PEM file with the test CA that signed the server certificate, for
    /// `SSL_CERT_FILE`. The directory holding it lives as long as the tenant.
    pub ca_file: Option<PathBuf>,
    _tls_dir: Option<tempfile::TempDir>,
    /// Direct access to the tenant model, for checks that do not go through HTTP.
    pub state: AppState,
    pub tenant_id: String,
    /// The provider's app registration in the seed, and a secret it accepts.
    pub client_id: String,
    pub client_secret: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<JoinHandle<()>>,
}

impl FakeTenant {
    /// The default seed: tenant, the provider's service principal, directory, PIM and ARM.
    pub fn start() -> FakeTenant {
        FakeTenant::with_seed("default")
    }

    /// A named embedded seed (`forbid-permanent`, …) or a path to a seed file.
    pub fn with_seed(seed: &str) -> FakeTenant {
        FakeTenant::serve(seed, None)
    }

    /// The default seed over HTTPS: a CA generated for this test signs a certificate for
    /// `public_host`, the public base URL is `https://{public_host}` (port 443, which a proxy
    /// maps to the real listener), and `ca_file` holds the CA for the client to trust.
    pub fn start_tls(public_host: &str) -> FakeTenant {
        FakeTenant::serve("default", Some(public_host))
    }

    /// The default seed over HTTPS for clients that connect directly (no proxy): the public
    /// base URL is `https://{host}:{port}` with the real port, `host` must resolve to
    /// 127.0.0.1 (`localhost`).
    pub fn start_tls_direct(host: &str) -> FakeTenant {
        FakeTenant::serve("default", Some(host)).with_port_in_url()
    }

    fn with_port_in_url(mut self) -> FakeTenant {
        self.base_url = format!("{}:{}", self.base_url, self.listen.port());
        self.state.set_base_url(&self.base_url);
        self
    }

    fn serve(seed: &str, public_host: Option<&str>) -> FakeTenant {
        let seed_json =
            fake_tenant::seed::load(seed).unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        let tenant =
            fake_tenant::seed::build(&seed_json).unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        let (tenant_id, client_id, client_secret) = provider_identity(&seed_json);
        let state = AppState::new(tenant);

        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        listener
            .set_nonblocking(true)
            .expect("non-blocking listener");
        let listen = listener.local_addr().expect("local addr");
        let (base_url, tls, ca_file, tls_dir) = match public_host {
            None => (format!("http://{listen}"), None, None, None),
            Some(host) => {
                let ca = super::tls::TestCa::new();
                let (cert, key) = ca.server_certificate(&[host]);
                let config = fake_tenant::tls::server_config(cert.as_bytes(), key.as_bytes())
                    .expect("TLS configuration");
                let dir = tempfile::Builder::new()
                    .prefix("breakglass-tls-")
                    .tempdir()
                    .expect("temp dir");
                let ca_file = dir.path().join("test-ca.pem");
                std::fs::write(&ca_file, &ca.cert_pem).expect("write CA");
                (
                    format!("https://{host}"),
                    Some(config),
                    Some(ca_file),
                    Some(dir),
                )
            }
        };
        state.set_base_url(&base_url);

        let app = fake_tenant::app(state.clone());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = std::thread::Builder::new()
            .name("fake-tenant".into())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                    .expect("tokio runtime");
                runtime.block_on(async move {
                    let listener =
                        tokio::net::TcpListener::from_std(listener).expect("tokio listener");
                    fake_tenant::tls::serve(listener, tls, app, async {
                        let _ = stopped.await;
                    })
                    .await
                    .expect("fake tenant server");
                });
            })
            .expect("spawn fake tenant");

        FakeTenant {
            base_url,
            listen,
            ca_file,
            _tls_dir: tls_dir,
            state,
            tenant_id,
            client_id,
            client_secret,
            stop: Some(stop),
            server: Some(server),
        }
    }

    /// What the provider needs to talk to this tenant with client-secret sign-in, as
    /// environment variables (so configs under test can keep an empty provider block).
    pub fn provider_env(&self) -> Vec<(String, String)> {
        [
            ("ARM_TENANT_ID", self.tenant_id.as_str()),
            ("ARM_CLIENT_ID", self.client_id.as_str()),
            ("ARM_CLIENT_SECRET", self.client_secret.as_str()),
            ("BREAKGLASS_LOGIN_ENDPOINT", self.base_url.as_str()),
            ("BREAKGLASS_GRAPH_ENDPOINT", self.base_url.as_str()),
            (
                "BREAKGLASS_RESOURCE_MANAGER_ENDPOINT",
                self.base_url.as_str(),
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .chain(
            self.ca_file
                .iter()
                .map(|f| ("SSL_CERT_FILE".to_owned(), f.display().to_string())),
        )
        .collect()
    }
}

impl FakeTenant {
    /// A test-only admin call (`/_fake{path}`), e.g. registering a passkey the way only a
    /// person with the key could in Entra. Panics unless it succeeds.
    pub fn admin_post(&self, path: &str, body: Json) -> Json {
        let url = format!("{}/_fake{path}", self.base_url);
        let (status, answer) = send(reqwest::Method::POST, &url, None, Some(body));
        assert!(
            (200..300).contains(&status),
            "admin {path}: {status} {answer}"
        );
        answer
    }

    /// A Graph call (`/v1.0{path}`) signed in as the seed application `client_id` with its
    /// first client secret: another identity than the provider's, to see what the tenant lets
    /// it do. Returns the status and the body.
    pub fn graph_as(
        &self,
        client_id: &str,
        method: reqwest::Method,
        path: &str,
        body: Option<Json>,
    ) -> (u16, Json) {
        let bearer = self.token_as(client_id, "https://graph.microsoft.com/.default");
        send(
            method,
            &format!("{}/v1.0{path}", self.base_url),
            Some(&bearer),
            body,
        )
    }

    /// An Azure Resource Manager call (`path` with its `?api-version=`) signed in as the seed
    /// application `client_id`, like `graph_as`.
    pub fn arm_as(
        &self,
        client_id: &str,
        method: reqwest::Method,
        path: &str,
        body: Option<Json>,
    ) -> (u16, Json) {
        let bearer = self.token_as(client_id, "https://management.azure.com/.default");
        send(
            method,
            &format!("{}{path}", self.base_url),
            Some(&bearer),
            body,
        )
    }

    fn token_as(&self, client_id: &str, scope: &str) -> String {
        let secret = {
            let t = self.state.tenant();
            let app = t
                .auth
                .applications
                .iter()
                .find(|a| a.principal.app_id == client_id);
            app.unwrap_or_else(|| panic!("no application {client_id} in the seed"))
                .client_secrets[0]
                .clone()
        };
        let token_url = format!("{}/{}/oauth2/v2.0/token", self.base_url, self.tenant_id);
        let form = format!(
            "grant_type=client_credentials&client_id={client_id}&client_secret={}&scope={}",
            form_urlencoded::byte_serialize(secret.as_bytes()).collect::<String>(),
            form_urlencoded::byte_serialize(scope.as_bytes()).collect::<String>()
        );
        let (status, token) = send_form(&token_url, form);
        assert_eq!(status, 200, "token for {client_id}: {token}");
        token["access_token"]
            .as_str()
            .expect("access_token")
            .to_owned()
    }

    /// A call to the admin API (`/_fake/…`) over HTTP, as a test outside the process would
    /// make it; answers the JSON body (`null` for none). Panics on a non-2xx answer.
    pub fn admin(&self, method: &str, path: &str, body: Option<&Json>) -> Json {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("HTTP method");
        let url = format!("{}/_fake{path}", self.base_url);
        let mut client = reqwest::Client::builder();
        if let Some(ca) = &self.ca_file {
            let pem = std::fs::read(ca).expect("read test CA");
            let host = self
                .base_url
                .trim_start_matches("https://")
                .split(':')
                .next()
                .unwrap_or_default()
                .to_owned();
            client = client
                .add_root_certificate(reqwest::Certificate::from_pem(&pem).expect("test CA"))
                .resolve(&host, self.listen);
        }
        let client = client.build().expect("admin client");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("admin runtime");
        runtime.block_on(async {
            let mut request = client.request(method.clone(), &url);
            if let Some(body) = body {
                request = request.json(body);
            }
            let response = request
                .send()
                .await
                .unwrap_or_else(|e| panic!("{method} {url}: {e}"));
            let status = response.status();
            let text = response.text().await.unwrap_or_default();
            assert!(status.is_success(), "{method} {url}: {status} {text}");
            if text.is_empty() {
                Json::Null
            } else {
                serde_json::from_str(&text).unwrap_or_else(|e| panic!("{url}: {e}: {text}"))
            }
        })
    }

    /// The whole tenant as the emulator dumps it (`GET /_fake/state`).
    pub fn dump(&self) -> Json {
        self.admin("GET", "/state", None)
    }

    /// The request log (`GET /_fake/requests`), oldest first.
    pub fn requests(&self) -> Vec<Json> {
        self.admin("GET", "/requests", None)["value"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

fn send(
    method: reqwest::Method,
    url: &str,
    bearer: Option<&str>,
    body: Option<Json>,
) -> (u16, Json) {
    runtime().block_on(async {
        let mut req = reqwest::Client::new().request(method, url);
        if let Some(token) = bearer {
            req = req.bearer_auth(token);
        }
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req.send().await.expect("request to the emulated tenant");
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Json::Null))
    })
}

fn send_form(url: &str, form: String) -> (u16, Json) {
    runtime().block_on(async {
        let resp = reqwest::Client::new()
            .post(url)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form)
            .send()
            .await
            .expect("token request");
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Json::Null))
    })
}

impl Drop for FakeTenant {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(server) = self.server.take() {
            let _ = server.join();
        }
    }
}

/// Tenant id and the first app registration's id and secret, read from the seed itself so the
/// harness follows whatever the emulator is seeded with.
fn provider_identity(seed: &Json) -> (String, String, String) {
    let tenant_id = seed["tenant"]["id"]
        .as_str()
        .expect("seed has tenant.id")
        .to_owned();
    let app = &seed["auth"]["applications"][0];
    let client_id = app["appId"]
        .as_str()
        .expect("seed has an application")
        .to_owned();
    let client_secret = app["clientSecrets"][0]
        .as_str()
        .expect("the application has a client secret")
        .to_owned();
    (tenant_id, client_id, client_secret)
}

/// A self-signed client certificate with its RSA key, for certificate sign-in tests.
pub struct ClientCertificate {
    pub key: rsa::RsaPrivateKey,
    pub key_pem: String,
    pub cert: rcgen::Certificate,
}

impl ClientCertificate {
    /// A new 2048-bit key and a certificate for `subject`.
    pub fn new(subject: &str) -> ClientCertificate {
        use rsa::pkcs8::EncodePrivateKey;
        let key = rsa::RsaPrivateKey::new(&mut rand::thread_rng(), 2048).expect("RSA key");
        let key_pem = key
            .to_pkcs8_pem(rsa::pkcs8::LineEnding::LF)
            .expect("key PEM")
            .to_string();
        let key_pair = rcgen::KeyPair::from_pem(&key_pem).expect("key pair");
        let cert = rcgen::CertificateParams::new(vec![subject.into()])
            .expect("certificate parameters")
            .self_signed(&key_pair)
            .expect("self-signed certificate");
        ClientCertificate { key, key_pem, cert }
    }

    /// Certificate and key in one PEM file, as `ARM_CLIENT_CERTIFICATE_PATH` accepts.
    pub fn bundle(&self) -> String {
        format!("{}{}", self.cert.pem(), self.key_pem)
    }
}

impl FakeTenant {
    /// Registers `certificate` on the provider's seed application, as uploading it to the app
    /// registration does in Entra.
    pub fn register_client_certificate(&self, certificate: &ClientCertificate) {
        let registered = fake_tenant::token::Certificate::from_pem(&certificate.cert.pem())
            .expect("certificate the emulator reads");
        let client_id = self.client_id.clone();
        let mut t = self.state.tenant();
        t.auth
            .applications
            .iter_mut()
            .find(|a| a.principal.app_id.eq_ignore_ascii_case(&client_id))
            .expect("seed app")
            .certificates
            .push(registered);
    }
}
