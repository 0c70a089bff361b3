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
    child: Child,
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
            child,
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
        let mut child = std::mem::replace(&mut self.child, dummy_child());
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
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{name} failed");
    }
}

/// A finished placeholder so `wait_for_exit` can move the real child out of `self`.
fn dummy_child() -> Child {
    let mut child = Command::new("true").spawn().expect("spawn true");
    let _ = child.wait();
    child
}

impl Drop for PluginProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
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
    assert_eq!(entry["Pid"], plugin.child.id());
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
