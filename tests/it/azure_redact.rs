//! Nothing the client layer logs at TRACE contains a credential: run sign-in, a user create
//! with a password, a retried call and a failed sign-in with every event captured, then search
//! the output for each secret used. Checked twice: on the raw event fields (the client layer
//! itself must not emit them) and through the provider's hclog writer (what Terraform sees).

use std::io::Write;
use std::sync::{Arc, Mutex};

use breakglass::provider::{AuthMethod, Secret};
use futures::FutureExt;
use serde_json::json;
use tracing::field::{Field, Visit};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::Layer;

use crate::azure_support::{deadline, user_body, Emulator};

/// Records every event's fields verbatim, with no masking of its own.
#[derive(Clone, Default)]
struct RawCapture(Arc<Mutex<String>>);

struct FieldText<'a>(&'a mut String);

impl Visit for FieldText<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.push_str(&format!(" {}={:?}", field.name(), value));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.push_str(&format!(" {}={}", field.name(), value));
    }
}

impl<S: tracing::Subscriber> Layer<S> for RawCapture {
    fn on_event(&self, event: &tracing::Event<'_>, _ctx: Context<'_, S>) {
        let mut line = format!("{}", event.metadata().level());
        event.record(&mut FieldText(&mut line));
        line.push('\n');
        self.0.lock().unwrap().push_str(&line);
    }
}

#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Write for Buffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Buffer {
    type Writer = Buffer;
    fn make_writer(&'a self) -> Buffer {
        self.clone()
    }
}

/// `tracing` caches per call site whether anyone listens, process-wide; a test running on
/// another thread can cache "nobody" just as this one installs its thread-local capture. So the
/// capture runs alone in a child process of this test binary.
#[test]
fn trace_output_contains_no_secret() {
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--ignored",
            "--exact",
            "azure_redact::capture_trace_in_own_process",
            "--test-threads=1",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("1 passed"),
        "the capture did not run:\n{stdout}"
    );
}

#[tokio::test]
#[ignore = "run in a process of its own by trace_output_contains_no_secret"]
async fn capture_trace_in_own_process() {
    let raw = RawCapture::default();
    let hclog = Buffer::default();
    let subscriber = tracing_subscriber::registry()
        .with(raw.clone())
        .with(breakglass::logging::HclogLayer::new(hclog.clone()));
    // The test runtime is single-threaded, so the thread's default subscriber sees every event.
    let _guard = tracing::subscriber::set_default(subscriber);

    let tenant = Emulator::start().await;
    let password = "Zebra-Quantum-Lantern-42!";
    let clients = tenant.clients();
    tenant
        .fault(json!({"method": "POST", "path": "^/v1.0/users$", "status": 503, "times": 1}))
        .await;
    let graph = clients.graph.clone();
    let probe = move || {
        let graph = graph.clone();
        async move {
            let found = graph
                .list_all(
                    "/users?$filter=userPrincipalName eq 'bg-redact@contoso.onmicrosoft.com'",
                    deadline(),
                )
                .await?;
            Ok(found.into_iter().next())
        }
        .boxed()
    };
    clients
        .graph
        .create(
            "/users",
            user_body("bg-redact", "contoso.onmicrosoft.com", password),
            &probe,
            &deadline(),
        )
        .await
        .unwrap();
    let token = clients
        .tokens
        .token(&clients.graph.service().scope, &deadline())
        .await
        .unwrap();

    let wrong_secret = "fake~wrong-secret-for-the-redaction-test";
    let wrong = tenant.clients_for(tenant.config(AuthMethod::ClientSecret {
        secret: Secret::new(wrong_secret),
    }));
    assert!(wrong.graph.get("/organization", &deadline()).await.is_err());

    let raw = raw.0.lock().unwrap().clone();
    let hclog = String::from_utf8(hclog.0.lock().unwrap().clone()).unwrap();
    // The capture really saw the traffic, bodies included…
    assert!(
        raw.contains("HTTP exchange") && raw.contains("status=201"),
        "{raw}"
    );
    assert!(raw.contains("bg-redact@contoso.onmicrosoft.com"), "{raw}");
    assert!(raw.contains("client_secret=[REDACTED]"), "{raw}");
    // …and none of the secrets.
    for (name, secret) in [
        ("client secret", tenant.client_secret.as_str()),
        ("wrong client secret", wrong_secret),
        ("user password", password),
        ("access token", token.secret()),
    ] {
        assert!(!raw.contains(secret), "{name} in the raw events:\n{raw}");
        assert!(
            !hclog.contains(secret),
            "{name} in the hclog output:\n{hclog}"
        );
    }
}
