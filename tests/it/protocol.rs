//! The provider binary as go-plugin sees it: launched by hand, launched the way Terraform
//! launches it (cookie, port range, AutoMTLS client certificate), reached over mutual TLS by a
//! gRPC client, health-checked, stopped. Each test spawns the real binary.
//!
//! Async tests run multi-threaded: the gRPC client's connection task must keep answering
//! (HTTP/2 pings during graceful shutdown) while the test thread blocks waiting for the exit.

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use base64::Engine;
use breakglass::protocol::proto::go_plugin::grpc_controller_client::GrpcControllerClient;
use breakglass::protocol::proto::go_plugin::Empty;
use breakglass::protocol::proto::tfplugin6::provider_client::ProviderClient;
use breakglass::protocol::proto::tfplugin6::{get_metadata, get_provider_schema};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::{health_check_response::ServingStatus, HealthCheckRequest};

const BINARY: &str = env!("CARGO_BIN_EXE_terraform-provider-breakglass");
const COOKIE_KEY: &str = "TF_PLUGIN_MAGIC_COOKIE";
const COOKIE_VALUE: &str = "d602bf8f470bc67ca7faa0386276bbdd4330efaf76d1a219cb4d6991ca9872b2";
const MIN_PORT: u16 = 10000;
const MAX_PORT: u16 = 25000;

/// Guards against a hung child; never a measurement.
const PATIENCE: Duration = Duration::from_secs(60);

/// A spawned provider process, killed if a test fails before it exits.
struct PluginProcess {
    /// `None` once `wait_for_exit` has reaped it.
    child: Option<Child>,
    pid: u32,
    stdout_lines: mpsc::Receiver<String>,
    stderr: mpsc::Receiver<String>,
}

impl PluginProcess {
    fn spawn(args: &[&str], env: &[(&str, &str)]) -> PluginProcess {
        let mut command = Command::new(BINARY);
        command
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        // Whatever the developer's shell has set must not leak into the launch contract.
        for (key, _) in std::env::vars() {
            if key.starts_with("PLUGIN_") || key.starts_with("TF_") {
                command.env_remove(key);
            }
        }
        command.envs(env.iter().copied());
        let mut child = command.spawn().expect("spawn provider binary");

        let stdout = child.stdout.take().unwrap();
        let (line_tx, stdout_lines) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if line_tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut stderr_pipe = child.stderr.take().unwrap();
        let (err_tx, stderr) = mpsc::channel();
        thread::spawn(move || {
            let mut text = String::new();
            let _ = stderr_pipe.read_to_string(&mut text);
            let _ = err_tx.send(text);
        });
        PluginProcess {
            pid: child.id(),
            child: Some(child),
            stdout_lines,
            stderr,
        }
    }

    fn launched_by_terraform(client_cert_pem: Option<&str>) -> PluginProcess {
        let min = MIN_PORT.to_string();
        let max = MAX_PORT.to_string();
        let mut env = vec![
            (COOKIE_KEY, COOKIE_VALUE),
            ("PLUGIN_PROTOCOL_VERSIONS", "5,6"),
            ("PLUGIN_MIN_PORT", min.as_str()),
            ("PLUGIN_MAX_PORT", max.as_str()),
            ("TF_LOG_PROVIDER", "debug"),
        ];
        if let Some(pem) = client_cert_pem {
            env.push(("PLUGIN_CLIENT_CERT", pem));
        }
        PluginProcess::spawn(&[], &env)
    }

    fn next_stdout_line(&self) -> String {
        self.stdout_lines
            .recv_timeout(PATIENCE)
            .expect("the provider printed no line on stdout")
    }

    /// Waits for the process to end and returns its status and everything it wrote to stderr.
    fn wait_for_exit(mut self) -> (ExitStatus, String) {
        let (status_tx, status_rx) = mpsc::channel();
        let mut child = self.child.take().expect("process not yet reaped");
        thread::spawn(move || {
            let _ = status_tx.send(child.wait());
        });
        let status = status_rx
            .recv_timeout(PATIENCE)
            .expect("the provider process did not exit")
            .unwrap();
        let stderr = self.stderr.recv_timeout(PATIENCE).unwrap_or_default();
        (status, stderr)
    }

    fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([&format!("-{name}"), &self.pid.to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{name} failed");
    }
}

impl Drop for PluginProcess {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            if let Ok(None) = child.try_wait() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

/// The six fields of go-plugin's handshake line.
struct Handshake {
    core_version: String,
    protocol_version: String,
    network: String,
    address: SocketAddr,
    protocol: String,
    server_cert_der: Vec<u8>,
}

fn parse_handshake(line: &str) -> Handshake {
    let fields: Vec<&str> = line.split('|').collect();
    assert_eq!(
        fields.len(),
        6,
        "handshake line {line:?} must have six fields"
    );
    Handshake {
        core_version: fields[0].to_owned(),
        protocol_version: fields[1].to_owned(),
        network: fields[2].to_owned(),
        address: fields[3].parse().expect("address is host:port"),
        protocol: fields[4].to_owned(),
        // go-plugin decodes with RawStdEncoding: padding would be an error there.
        server_cert_der: STANDARD_NO_PAD
            .decode(fields[5])
            .expect("certificate is unpadded standard base64"),
    }
}

/// A client identity like the one Terraform generates for each provider launch.
struct ClientIdentity {
    cert_pem: String,
    key_pem: String,
}

fn client_identity() -> ClientIdentity {
    let key = rcgen::KeyPair::generate().unwrap();
    let params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
    let cert = params.self_signed(&key).unwrap();
    ClientIdentity {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    }
}

fn pem_from_der(der: &[u8]) -> String {
    let body = STANDARD.encode(der);
    let lines: Vec<&str> = body
        .as_bytes()
        .chunks(64)
        .map(|chunk| std::str::from_utf8(chunk).unwrap())
        .collect();
    format!(
        "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
        lines.join("\n")
    )
}

/// Connects the way go-plugin does: trust exactly the announced certificate for "localhost".
async fn mtls_channel(
    handshake: &Handshake,
    identity: Option<&ClientIdentity>,
) -> Result<Channel, tonic::transport::Error> {
    let mut tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(pem_from_der(
            &handshake.server_cert_der,
        )))
        .domain_name("localhost");
    if let Some(identity) = identity {
        tls = tls.identity(Identity::from_pem(&identity.cert_pem, &identity.key_pem));
    }
    Endpoint::from_shared(format!("https://{}", handshake.address))?
        .tls_config(tls)?
        .connect()
        .await
}

async fn plain_channel(address: SocketAddr) -> Channel {
    Endpoint::from_shared(format!("http://{address}"))
        .unwrap()
        .connect()
        .await
        .expect("plaintext connection in debug mode")
}

#[test]
fn running_by_hand_prints_a_friendly_message_and_exits_1() {
    let plugin = PluginProcess::spawn(&[], &[]);
    let (status, stderr) = plugin.wait_for_exit();
    assert_eq!(status.code(), Some(1), "stderr: {stderr}");
    assert!(
        stderr.contains("is a Terraform plugin, not a program to run by hand"),
        "stderr: {stderr}"
    );
    assert!(stderr.contains("terraform init"), "stderr: {stderr}");
}

#[test]
fn a_terraform_without_protocol_6_is_told_so() {
    let plugin = PluginProcess::spawn(
        &[],
        &[
            (COOKIE_KEY, COOKIE_VALUE),
            ("PLUGIN_PROTOCOL_VERSIONS", "4,5"),
        ],
    );
    let (status, stderr) = plugin.wait_for_exit();
    assert_eq!(status.code(), Some(1), "stderr: {stderr}");
    assert!(stderr.contains("protocol 6"), "stderr: {stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terraform_style_launch_serves_mutual_tls_and_stops_on_shutdown() {
    let terraform = client_identity();
    let plugin = PluginProcess::launched_by_terraform(Some(&terraform.cert_pem));

    let handshake = parse_handshake(&plugin.next_stdout_line());
    assert_eq!(handshake.core_version, "1");
    assert_eq!(handshake.protocol_version, "6");
    assert_eq!(handshake.network, "tcp");
    assert_eq!(handshake.protocol, "grpc");
    assert!(handshake.address.ip().is_loopback());
    assert!((MIN_PORT..=MAX_PORT).contains(&handshake.address.port()));
    let (_, server_cert) = x509_parser::parse_x509_certificate(&handshake.server_cert_der)
        .expect("announced certificate is X.509 DER");
    assert!(server_cert.validity().is_valid());

    let channel = mtls_channel(&handshake, Some(&terraform))
        .await
        .expect("Terraform's own certificate is accepted");

    let health = HealthClient::new(channel.clone())
        .check(HealthCheckRequest {
            service: "plugin".into(),
        })
        .await
        .expect("health check")
        .into_inner();
    assert_eq!(health.status, ServingStatus::Serving as i32);

    let mut provider = ProviderClient::new(channel.clone());
    let schema = provider
        .get_provider_schema(get_provider_schema::Request {})
        .await
        .expect("GetProviderSchema")
        .into_inner();
    let block = schema
        .provider
        .and_then(|s| s.block)
        .expect("provider block");
    assert!(!block.attributes.is_empty());
    assert!(
        block.attributes.iter().all(|a| !a.description.is_empty()),
        "every provider attribute has a description"
    );
    let capabilities = schema.server_capabilities.unwrap();
    assert!(capabilities.plan_destroy && capabilities.get_provider_schema_optional);

    let metadata = provider
        .get_metadata(get_metadata::Request {})
        .await
        .expect("GetMetadata")
        .into_inner();
    assert_eq!(metadata.resources.len(), schema.resource_schemas.len());

    // Ctrl-C reaches every process in the terminal's group; Terraform handles it, we must not.
    plugin.signal("INT");
    provider
        .get_metadata(get_metadata::Request {})
        .await
        .expect("still serving after SIGINT");

    GrpcControllerClient::new(channel)
        .shutdown(Empty {})
        .await
        .expect("Shutdown");
    let (status, stderr) = plugin.wait_for_exit();
    assert!(status.success(), "exit {status}; stderr: {stderr}");
    assert_graceful(&stderr);
}

/// The provider logs a warning when it has to give up waiting for connections to close.
fn assert_graceful(stderr: &str) {
    assert!(
        !stderr.contains("exiting anyway"),
        "shutdown was not graceful; stderr: {stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_without_terraforms_certificate_are_refused() {
    let terraform = client_identity();
    let stranger = client_identity();
    let plugin = PluginProcess::launched_by_terraform(Some(&terraform.cert_pem));
    let handshake = parse_handshake(&plugin.next_stdout_line());

    for (who, identity) in [
        ("no certificate", None),
        ("another certificate", Some(&stranger)),
    ] {
        // With TLS 1.3 the client may finish its side of the handshake before the server
        // rejects its certificate, so the refusal can surface at connect or at the first call.
        let refused = match mtls_channel(&handshake, identity).await {
            Err(_) => true,
            Ok(channel) => ProviderClient::new(channel)
                .get_provider_schema(get_provider_schema::Request {})
                .await
                .is_err(),
        };
        assert!(refused, "a client with {who} was served");
    }

    // The rightful client still gets in afterwards.
    let channel = mtls_channel(&handshake, Some(&terraform)).await.unwrap();
    ProviderClient::new(channel)
        .get_metadata(get_metadata::Request {})
        .await
        .expect("Terraform's certificate is accepted");
}

/// How a TLS client with a chosen certificate and key fared against the plugin port.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    /// Handshake done and the server answered the HTTP/2 preface with bytes (its SETTINGS).
    Served,
    /// The handshake failed, or the server closed or reset instead of answering.
    Refused,
}

/// Presents `chain` with `key` whatever the server asks for — `CertifiedKey::new` does not
/// check that the key belongs to the certificate, which is exactly what an impostor needs.
#[derive(Debug)]
struct Present(std::sync::Arc<rustls::sign::CertifiedKey>);

impl rustls::client::ResolvesClientCert for Present {
    fn resolve(
        &self,
        _: &[&[u8]],
        _: &[rustls::SignatureScheme],
    ) -> Option<std::sync::Arc<rustls::sign::CertifiedKey>> {
        Some(self.0.clone())
    }
    fn has_certs(&self) -> bool {
        true
    }
}

/// Connects with rustls directly (TLS 1.2 or 1.3 only), presenting `cert_pem` signed for by
/// `key_pem` (or no certificate), trusting exactly the announced server certificate, and
/// sends the HTTP/2 client preface.
async fn raw_tls_attempt(
    handshake: &Handshake,
    client: Option<(&str, &str)>,
    version: &'static rustls::SupportedProtocolVersion,
) -> Outcome {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from(handshake.server_cert_der.clone()))
        .unwrap();
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[version])
        .unwrap()
        .with_root_certificates(roots);
    let mut config = match client {
        None => builder.with_no_client_auth(),
        Some((cert_pem, key_pem)) => {
            let chain = vec![CertificateDer::from_pem_slice(cert_pem.as_bytes()).unwrap()];
            let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).unwrap();
            let signer = provider.key_provider.load_private_key(key).unwrap();
            let certified = rustls::sign::CertifiedKey::new(chain, signer);
            builder.with_client_cert_resolver(std::sync::Arc::new(Present(std::sync::Arc::new(
                certified,
            ))))
        }
    };
    config.alpn_protocols = vec![b"h2".to_vec()];
    let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(handshake.address)
        .await
        .unwrap();
    let name = ServerName::try_from("localhost").unwrap();
    let attempt = async {
        let mut tls = connector.connect(name, tcp).await.ok()?;
        tls.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
            .await
            .ok()?;
        // An empty SETTINGS frame, so the server has a complete preface to answer.
        tls.write_all(&[0, 0, 0, 4, 0, 0, 0, 0, 0]).await.ok()?;
        tls.flush().await.ok()?;
        let mut first = [0u8; 9];
        match tls.read(&mut first).await {
            Ok(n) if n > 0 => Some(()),
            _ => None,
        }
    };
    match tokio::time::timeout(PATIENCE, attempt).await {
        Ok(Some(())) => Outcome::Served,
        Ok(None) => Outcome::Refused,
        Err(_) => panic!("the TLS attempt neither finished nor failed"),
    }
}

/// Beyond a missing or foreign certificate: a client presenting Terraform's own certificate
/// without its key (the certificate is no secret — it sits in the provider's environment),
/// one whose certificate copies Terraform's names with another key, and one speaking plaintext
/// HTTP/2 — over TLS 1.2 and 1.3 — are all refused by the server, which says so in its log each
/// time, while Terraform's real identity is served by the same client code.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn impostors_are_refused_at_the_tls_handshake() {
    let terraform = client_identity();
    let stranger = client_identity();
    let plugin = PluginProcess::launched_by_terraform(Some(&terraform.cert_pem));
    let handshake = parse_handshake(&plugin.next_stdout_line());

    let mut refusals = 0;
    for version in [&rustls::version::TLS12, &rustls::version::TLS13] {
        assert_eq!(
            raw_tls_attempt(
                &handshake,
                Some((&terraform.cert_pem, &terraform.key_pem)),
                version
            )
            .await,
            Outcome::Served,
            "Terraform's own identity over {version:?}"
        );
        for (who, client) in [
            ("no certificate", None),
            (
                "another certificate",
                Some((stranger.cert_pem.as_str(), stranger.key_pem.as_str())),
            ),
            (
                "Terraform's certificate without its key",
                Some((terraform.cert_pem.as_str(), stranger.key_pem.as_str())),
            ),
        ] {
            assert_eq!(
                raw_tls_attempt(&handshake, client, version).await,
                Outcome::Refused,
                "a client with {who} over {version:?} was served"
            );
            refusals += 1;
        }
    }

    // Plaintext HTTP/2 gets no gRPC answer either.
    let plain = Endpoint::from_shared(format!("http://{}", handshake.address))
        .unwrap()
        .connect()
        .await;
    if let Ok(channel) = plain {
        assert!(
            ProviderClient::new(channel)
                .get_provider_schema(get_provider_schema::Request {})
                .await
                .is_err(),
            "a plaintext client was served"
        );
    }
    refusals += 1;

    // Still serving the rightful client afterwards; then the server's own account of it.
    let channel = mtls_channel(&handshake, Some(&terraform)).await.unwrap();
    ProviderClient::new(channel.clone())
        .get_metadata(get_metadata::Request {})
        .await
        .expect("Terraform's certificate is accepted");
    GrpcControllerClient::new(channel)
        .shutdown(Empty {})
        .await
        .expect("Shutdown");
    let (status, stderr) = plugin.wait_for_exit();
    assert!(status.success(), "exit {status}; stderr: {stderr}");
    // Each refusal is the server's, for the reason the case was built for: no certificate, a
    // certificate other than the pinned one, the pinned one without proof of its key, and
    // bytes that are not TLS at all (tonic retries that connection, hence "at least").
    let refused: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("refused a plugin connection"))
        .collect();
    for (reason, at_least) in [
        ("peer sent no certificates", 2),
        ("ApplicationVerificationFailure", 2),
        ("BadSignature", 2),
        ("InvalidContentType", 1),
    ] {
        let seen = refused.iter().filter(|l| l.contains(reason)).count();
        assert!(
            seen >= at_least && (at_least == 1 || seen == at_least),
            "{seen} refusals for {reason:?}, expected {at_least}\n{stderr}"
        );
    }
    assert!(refused.len() >= refusals, "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_the_provider_cleanly() {
    let terraform = client_identity();
    let plugin = PluginProcess::launched_by_terraform(Some(&terraform.cert_pem));
    let handshake = parse_handshake(&plugin.next_stdout_line());
    let channel = mtls_channel(&handshake, Some(&terraform)).await.unwrap();
    // The connection stays open while the signal arrives, so shutdown has to close it.
    let mut provider = ProviderClient::new(channel);
    provider
        .get_metadata(get_metadata::Request {})
        .await
        .unwrap();
    plugin.signal("TERM");
    let (status, stderr) = plugin.wait_for_exit();
    assert!(status.success(), "exit {status}; stderr: {stderr}");
    assert_graceful(&stderr);
    drop(provider);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn debug_mode_prints_reattach_config_and_outlives_shutdown() {
    let plugin = PluginProcess::spawn(&["--debug"], &[]);
    let reattach = loop {
        let line = plugin.next_stdout_line();
        if let Some(rest) = line.trim().strip_prefix("export TF_REATTACH_PROVIDERS=") {
            break rest.trim_matches('\'').to_owned();
        }
    };
    let config: serde_json::Value = serde_json::from_str(&reattach).expect("reattach JSON");
    let entry = &config["registry.terraform.io/breakglass/breakglass"];
    assert_eq!(entry["Protocol"], "grpc");
    assert_eq!(entry["ProtocolVersion"], 6);
    assert_eq!(entry["Addr"]["Network"], "tcp");
    assert_eq!(entry["Pid"], plugin.pid);
    let address: SocketAddr = entry["Addr"]["String"].as_str().unwrap().parse().unwrap();

    let channel = plain_channel(address).await;
    GrpcControllerClient::new(channel.clone())
        .shutdown(Empty {})
        .await
        .expect("Shutdown is answered");
    // Terraform calls Shutdown after every command; a debug session must survive it.
    ProviderClient::new(channel)
        .get_provider_schema(get_provider_schema::Request {})
        .await
        .expect("still serving after Shutdown in debug mode");

    plugin.signal("INT");
    let (status, stderr) = plugin.wait_for_exit();
    assert!(status.success(), "exit {status}; stderr: {stderr}");
}

// ---------------------------------------------------------------------------------------------
// Real Terraform against a provider served in-process
// ---------------------------------------------------------------------------------------------
//
// The breakglass provider's own resources live elsewhere; these tests drive the protocol layer
// with a small notebook provider whose "tenant" is a map in this process, so every managed
// resource RPC (validate, plan, apply, read, import, upgrade) is exercised by a real Terraform
// and the test can see exactly what the resource received.

mod notebook {
    use std::collections::BTreeMap;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::{Arc, Mutex};

    use async_trait::async_trait;
    use breakglass::framework::{
        Applied, ApplyRequest, Attribute, AttributePath, DataSource, Diagnostic, Diagnostics,
        Failure, ImportedResource, NestingMode, Number, PlanRequest, PlannedChange, Provider,
        Resource, Schema, Type, Value,
    };

    /// What the resource has stored, and every write-only secret it was given.
    #[derive(Default)]
    pub struct Shelf {
        pub notes: Mutex<BTreeMap<String, Value>>,
        pub secrets_received: Mutex<Vec<String>>,
        next_id: AtomicU64,
    }

    pub struct NotebookProvider {
        pub shelf: Arc<Shelf>,
    }

    #[async_trait]
    impl Provider for NotebookProvider {
        type Data = Arc<Shelf>;
        fn schema(&self) -> Schema {
            Schema::default()
        }
        async fn configure(&self, _: &Value, _: &str) -> Result<Arc<Shelf>, Diagnostics> {
            Ok(self.shelf.clone())
        }
        fn resources(&self) -> Vec<Arc<dyn Resource<Arc<Shelf>>>> {
            vec![Arc::new(Note)]
        }
        fn data_sources(&self) -> Vec<Arc<dyn DataSource<Arc<Shelf>>>> {
            Vec::new()
        }
    }

    /// `breakglass_note`: schema version 1 renamed version 0's `title` to `name`.
    struct Note;

    /// Fills what the "remote API" decides: owner kinds.
    fn settle_owners(state: &mut Value) {
        if let Some(Value::List(owners)) = state.get_mut("owners") {
            for owner in owners {
                owner.set("kind", "user".into());
            }
        }
    }

    #[async_trait]
    impl Resource<Arc<Shelf>> for Note {
        fn type_name(&self) -> &'static str {
            "breakglass_note"
        }

        fn schema(&self) -> Schema {
            Schema {
                version: 1,
                description: "A note on a shelf.".into(),
                attributes: vec![
                    Attribute::required("name", Type::String, "Name; changing it replaces."),
                    Attribute::optional("text", Type::String, "Body."),
                    Attribute::optional("tags", Type::set(Type::String), "Tags."),
                    Attribute::computed("id", Type::String, "Shelf id."),
                    Attribute::computed("revision", Type::Number, "Bumped by every update."),
                    Attribute::optional("secret_wo", Type::String, "Never stored.")
                        .sensitive()
                        .write_only(),
                    Attribute::nested(
                        "owners",
                        NestingMode::List,
                        vec![
                            Attribute::required("id", Type::String, "Owner id."),
                            Attribute::computed("kind", Type::String, "Decided remotely."),
                        ],
                        "Owners.",
                    )
                    .make_optional(),
                ],
                ..Schema::default()
            }
        }

        async fn modify_plan(&self, req: &PlanRequest<'_, Arc<Shelf>>, plan: &mut PlannedChange) {
            if req.prior.is_null() || req.proposed.is_null() {
                return;
            }
            if req.config.get("name") != req.prior.get("name") {
                plan.requires_replace.push(AttributePath::root("name"));
            } else {
                // The shelf id never changes in place; without this the default plan would
                // show it as "known after apply" on every update.
                plan.planned.set("id", req.prior.get("id"));
            }
        }

        async fn create(
            &self,
            shelf: &Arc<Shelf>,
            req: &ApplyRequest<'_>,
        ) -> Result<Applied, Failure> {
            let (config, planned) = (req.config, req.planned);
            if let Some(secret) = config.get("secret_wo").as_str() {
                shelf
                    .secrets_received
                    .lock()
                    .unwrap()
                    .push(secret.to_owned());
            }
            let id = format!("note-{}", shelf.next_id.fetch_add(1, Ordering::SeqCst) + 1);
            let mut state = planned.clone();
            state.set("id", id.clone().into());
            state.set("revision", Value::Number(Number::Int(1)));
            // Hand back the secret as a careless resource might; the server must drop it.
            state.set("secret_wo", config.get("secret_wo"));
            settle_owners(&mut state);
            shelf.notes.lock().unwrap().insert(id, state.clone());
            Ok(Applied::new(state))
        }

        async fn read(
            &self,
            shelf: &Arc<Shelf>,
            state: &Value,
        ) -> Result<Option<Value>, Diagnostics> {
            let id = state.get("id");
            let id = id.as_str().unwrap_or_default();
            Ok(shelf.notes.lock().unwrap().get(id).cloned())
        }

        async fn update(
            &self,
            shelf: &Arc<Shelf>,
            req: &ApplyRequest<'_>,
        ) -> Result<Applied, Failure> {
            let (config, prior, planned) = (req.config, req.prior, req.planned);
            if let Some(secret) = config.get("secret_wo").as_str() {
                shelf
                    .secrets_received
                    .lock()
                    .unwrap()
                    .push(secret.to_owned());
            }
            let mut state = planned.clone();
            let revision = prior.get("revision").as_i64().unwrap_or(0) + 1;
            state.set("revision", Value::Number(Number::Int(revision)));
            settle_owners(&mut state);
            let id = state.get("id").as_str().unwrap_or_default().to_owned();
            shelf.notes.lock().unwrap().insert(id, state.clone());
            Ok(Applied::new(state))
        }

        async fn delete(&self, shelf: &Arc<Shelf>, prior: &Value) -> Result<(), Failure> {
            let id = prior.get("id");
            shelf
                .notes
                .lock()
                .unwrap()
                .remove(id.as_str().unwrap_or_default());
            Ok(())
        }

        async fn import(
            &self,
            shelf: &Arc<Shelf>,
            id: &str,
        ) -> Result<Vec<ImportedResource>, Diagnostics> {
            if !shelf.notes.lock().unwrap().contains_key(id) {
                return Err(Diagnostic::error(
                    "No such note",
                    format!("{id:?} is not on the shelf."),
                )
                .into());
            }
            // Only the id: ReadResource, which Terraform calls next, fills in the rest.
            let mut state = Value::object(
                self.schema()
                    .attributes
                    .iter()
                    .map(|a| (a.name.clone(), Value::Null)),
            );
            state.set("id", id.into());
            Ok(vec![ImportedResource {
                type_name: self.type_name().to_owned(),
                state,
            }])
        }

        fn upgrade_state(&self, from_version: i64, mut state: Value) -> Result<Value, Diagnostics> {
            assert_eq!(
                from_version, 0,
                "only version 0 predates the current schema"
            );
            let title = state.get("title");
            if let Value::Object(fields) = &mut state {
                fields.remove("title");
            }
            state.set("name", title);
            // Untyped JSON arrays come in as lists; this attribute is a set.
            let tags = state.get("tags");
            if let Value::List(items) = tags {
                state.set("tags", Value::Set(items));
            }
            if let Some(Value::Number(n)) = state.get_mut("revision") {
                *n = Number::Int(n.as_i64().unwrap_or(0));
            }
            Ok(state)
        }
    }
}

/// Serves the notebook provider on a loopback port until dropped.
struct InProcessProvider {
    reattach: String,
    shutdown: breakglass::protocol::ShutdownSignal,
    shelf: std::sync::Arc<notebook::Shelf>,
}

impl InProcessProvider {
    async fn start() -> InProcessProvider {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let shelf = std::sync::Arc::new(notebook::Shelf::default());
        let shutdown = breakglass::protocol::ShutdownSignal::new();
        let provider = std::sync::Arc::new(notebook::NotebookProvider {
            shelf: shelf.clone(),
        });
        tokio::spawn(breakglass::protocol::serve_reattachable(
            provider,
            listener,
            shutdown.clone(),
        ));
        InProcessProvider {
            reattach: breakglass::protocol::handshake::reattach_config(address, std::process::id()),
            shutdown,
            shelf,
        }
    }

    fn note_count(&self) -> usize {
        self.shelf.notes.lock().unwrap().len()
    }
}

impl Drop for InProcessProvider {
    fn drop(&mut self) {
        self.shutdown.trigger();
    }
}

/// The test configuration; `secret` sets the write-only attribute (Terraform >= 1.11 only).
fn note_config(name: &str, text: &str, secret: Option<&str>) -> String {
    let secret = secret
        .map(|s| format!("  secret_wo = \"{s}\"\n"))
        .unwrap_or_default();
    format!(
        "{}\nresource \"breakglass_note\" \"n\" {{\n  name      = \"{name}\"\n  text      = \"{text}\"\n  tags      = [\"b\", \"a\"]\n{secret}  owners    = [{{ id = \"o1\" }}, {{ id = \"o2\" }}]\n}}\n",
        crate::harness::required_providers()
    )
}

/// `terraform plan -detailed-exitcode`: 0 means no changes.
fn plan_exit_code(ws: &crate::harness::Workspace) -> Option<i32> {
    let out = ws.run(&["plan", "-detailed-exitcode", "-no-color"]);
    assert!(
        matches!(out.exit_code, Some(0) | Some(2)),
        "plan failed\n{out}"
    );
    out.exit_code
}

/// Create, no-op plan, update, replace, import, state upgrade and destroy of one note, driven
/// by `terraform`. With `write_only`, the note also carries a write-only secret.
async fn drive_note_lifecycle(terraform: &'static crate::harness::Terraform, write_only: bool) {
    let provider = InProcessProvider::start().await;
    let ws = crate::harness::Workspace::new(
        terraform,
        vec![("TF_REATTACH_PROVIDERS".into(), provider.reattach.clone())],
    );
    let address = "breakglass_note.n";
    let secret = |s| write_only.then_some(s);

    // Create: computed values are decided at apply; a write-only secret reaches the resource
    // but neither the state nor the state file.
    ws.write_config(&note_config("alpha", "hello", secret("s3cret-one")));
    ws.ok(&["apply", "-auto-approve", "-no-color"]);
    let state = ws.state();
    let created = state.resource(address).expect("note in state");
    assert_eq!(created["id"], "note-1");
    assert_eq!(created["revision"], 1);
    assert_eq!(created["owners"][1]["kind"], "user");
    if write_only {
        assert_eq!(created["secret_wo"], serde_json::Value::Null);
        assert_eq!(
            *provider.shelf.secrets_received.lock().unwrap(),
            ["s3cret-one"]
        );
        let state_file = std::fs::read_to_string(ws.dir().join("terraform.tfstate")).unwrap();
        assert!(!state_file.contains("s3cret-one"), "secret stored in state");
    }

    // Nothing changed: the default plan keeps prior computed values, and neither the set's
    // order nor a configured secret counts as a change.
    assert_eq!(plan_exit_code(&ws), Some(0));

    // In-place update: computed values not set in config become unknown and are re-decided.
    ws.write_config(&note_config("alpha", "edited", secret("s3cret-one")));
    ws.ok(&["apply", "-auto-approve", "-no-color"]);
    let updated = ws.state().resource(address).unwrap();
    assert_eq!(updated["id"], "note-1");
    assert_eq!(updated["revision"], 2);
    assert_eq!(updated["text"], "edited");

    // Renaming requires replacement (modify_plan's requires_replace reaches Terraform).
    ws.write_config(&note_config("beta", "edited", secret("s3cret-two")));
    let plan = ws.ok(&["plan", "-no-color"]);
    assert!(plan.text.contains("must be replaced"), "{plan}");
    ws.ok(&["apply", "-auto-approve", "-no-color"]);
    let replaced = ws.state().resource(address).unwrap();
    assert_eq!(replaced["id"], "note-2");
    assert_eq!(provider.note_count(), 1);

    // Import: the id alone, completed by ReadResource, reproduces the state.
    ws.ok(&["state", "rm", "-no-color", address]);
    ws.ok(&["import", "-no-color", address, "note-2"]);
    let imported = ws.state().resource(address).unwrap();
    assert_eq!(imported, replaced);
    assert_eq!(plan_exit_code(&ws), Some(0));

    // Upgrade: rewrite the stored state as schema version 0 (`title` instead of `name`);
    // Terraform sends it through UpgradeResourceState and the plan stays empty.
    let state_path = ws.dir().join("terraform.tfstate");
    let mut stored: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&state_path).unwrap()).unwrap();
    let instance = &mut stored["resources"][0]["instances"][0];
    instance["schema_version"] = 0.into();
    let attributes = instance["attributes"].as_object_mut().unwrap();
    let name = attributes.remove("name").unwrap();
    attributes.insert("title".into(), name);
    std::fs::write(&state_path, serde_json::to_string_pretty(&stored).unwrap()).unwrap();
    assert_eq!(plan_exit_code(&ws), Some(0));

    // Destroy plans through the provider (plan_destroy) and removes the note.
    ws.ok(&["destroy", "-auto-approve", "-no-color"]);
    assert!(ws.state().is_empty());
    assert_eq!(provider.note_count(), 0);

    if !write_only {
        // A Terraform that cannot keep write-only values out of state is refused them, at the
        // attribute, before anything is planned.
        ws.write_config(&note_config("gamma", "x", Some("s3cret-three")));
        let refused = ws.run(&["validate", "-no-color"]);
        assert!(!refused.success(), "{refused}");
        assert!(
            refused
                .flattened()
                .contains("Write-only attribute needs Terraform 1.11"),
            "{refused}"
        );
        assert!(refused.text.contains("secret_wo"), "{refused}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_terraform_drives_the_whole_resource_lifecycle_tf1_11() {
    if let Some(terraform) = crate::harness::requires_terraform("1.11") {
        drive_note_lifecycle(terraform, true).await;
    }
}

/// Terraform 1.0 predates client capabilities, write-only attributes and several protocol
/// fields; the same lifecycle (without the secret) must work with it. `make tools` leaves a
/// 1.0 in `.tools/bin` when PATH has no Terraform; without one this test says SKIP (the
/// `_tf1_0` suffix makes nextest show that line, see .config/nextest.toml).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oldest_supported_terraform_drives_the_resource_lifecycle_tf1_0() {
    let candidate = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(".tools/bin/terraform");
    let version = std::process::Command::new(&candidate)
        .arg("version")
        .output()
        .ok()
        .and_then(|out| {
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            crate::harness::Version::parse(text.lines().next()?.trim_start_matches("Terraform v"))
        });
    let Some(version) = version.filter(|v| *v < crate::harness::Version(1, 11, 0)) else {
        eprintln!(
            "SKIP oldest_supported_terraform_drives_the_resource_lifecycle_tf1_0: no Terraform older \
             than 1.11 at {}",
            candidate.display()
        );
        return;
    };
    let terraform: &'static crate::harness::Terraform =
        Box::leak(Box::new(crate::harness::Terraform {
            path: candidate,
            version,
        }));
    drive_note_lifecycle(terraform, false).await;
}
