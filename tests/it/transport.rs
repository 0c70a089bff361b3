//! The provider's transport settings through its own `configure`: `HTTPS_PROXY` is used (an
//! HTTP CONNECT proxy counts the tunnels), `SSL_CERT_FILE` is what makes the test CA trusted,
//! and settings that cannot work are configure-time diagnostics that never show credentials.
//! The full Terraform path over TLS and a proxy is `examples::quickstart_applies_over_tls_…`.

use std::collections::HashMap;
use std::sync::Arc;

use breakglass::azure::AzureClients;
use breakglass::framework::{DataSource, Provider, Value};
use breakglass::provider::BreakglassProvider;

use crate::harness::{ConnectProxy, FakeTenant};

const PUBLIC_HOST: &str = "login.transport.test";

fn provider_with_env(env: Vec<(String, String)>) -> BreakglassProvider {
    let env: HashMap<String, String> = env.into_iter().collect();
    BreakglassProvider::with_env(Arc::new(move |name: &str| env.get(name).cloned()))
}

fn empty_block(provider: &BreakglassProvider) -> Value {
    Value::object(
        provider
            .schema()
            .attributes
            .iter()
            .map(|a| (a.name.clone(), Value::Null)),
    )
}

fn client_config(provider: &BreakglassProvider) -> Arc<dyn DataSource<AzureClients>> {
    provider
        .data_sources()
        .into_iter()
        .find(|d| d.type_name() == "breakglass_client_config")
        .expect("breakglass_client_config is registered")
}

fn with(mut env: Vec<(String, String)>, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    for (k, v) in extra {
        env.retain(|(name, _)| name != k);
        env.push(((*k).to_owned(), (*v).to_owned()));
    }
    env
}

/// Configures the provider with `env` and reads `breakglass_client_config`; the read's error
/// detail on failure.
async fn read_client_config(env: Vec<(String, String)>) -> Result<String, String> {
    let provider = provider_with_env(env);
    let data = provider
        .configure(&empty_block(&provider), "1.11.0")
        .await
        .map_err(|d| format!("configure: {d:?}"))?;
    let state = client_config(&provider)
        .read(&data, &Value::Null)
        .await
        .map_err(|d| format!("{d:?}"))?;
    Ok(state
        .get("tenant_id")
        .as_str()
        .unwrap_or_default()
        .to_owned())
}

#[tokio::test]
async fn requests_go_through_https_proxy_and_trust_the_ca_in_ssl_cert_file() {
    let tenant = FakeTenant::start_tls(PUBLIC_HOST);
    let proxy = ConnectProxy::start(&format!("{PUBLIC_HOST}:443"), tenant.listen);
    let env = with(
        tenant.provider_env(),
        &[("HTTPS_PROXY", proxy.url.as_str())],
    );
    assert!(env.iter().any(|(k, _)| k == "SSL_CERT_FILE"));

    let tenant_id = read_client_config(env.clone()).await.unwrap();
    assert_eq!(tenant_id, tenant.tenant_id);
    let tunnels = proxy.log.connects();
    assert!(tunnels > 0, "the provider did not use HTTPS_PROXY");
    assert!(proxy.log.refused().is_empty(), "{:?}", proxy.log.refused());

    // Without SSL_CERT_FILE the same path fails at the TLS handshake: the CA is trusted only
    // because that variable names it (the platform store and the bundled roots do not hold it).
    let mut untrusted = env.clone();
    untrusted.retain(|(k, _)| k != "SSL_CERT_FILE");
    let failure = read_client_config(untrusted).await.unwrap_err();
    assert!(
        failure.to_lowercase().contains("certificate"),
        "expected a certificate failure: {failure}"
    );
    assert!(
        proxy.log.connects() > tunnels,
        "it still went through the proxy"
    );
}

#[tokio::test]
async fn unusable_proxy_or_trust_settings_are_configure_errors_without_credentials() {
    let tenant = FakeTenant::start();
    let base = tenant.provider_env();
    for (extra, expected) in [
        (
            vec![("SSL_CERT_FILE", "/nonexistent/breakglass-ca.pem")],
            "SSL_CERT_FILE=/nonexistent/breakglass-ca.pem yields no CA certificate",
        ),
        (
            vec![("HTTPS_PROXY", "socks5://svc:hunter2-proxy@proxy.corp:1080")],
            "HTTPS_PROXY names a socks5:// proxy",
        ),
        (
            vec![("http_proxy", "http://[not a host")],
            "http_proxy is not a proxy URL",
        ),
    ] {
        let provider = provider_with_env(with(base.clone(), &extra));
        let diags = match provider.configure(&empty_block(&provider), "1.11.0").await {
            Ok(_) => panic!("{extra:?}: configure should fail"),
            Err(d) => d,
        };
        let d = diags.iter().next().expect("a diagnostic");
        assert_eq!(d.summary, "Invalid proxy or certificate settings");
        assert!(d.detail.contains(expected), "{extra:?}: {}", d.detail);
        assert!(!d.detail.contains("hunter2"), "{}", d.detail);
    }
    // Loopback endpoints are never proxied (Go's rule), so a dead proxy does not matter here.
    let env = with(
        base,
        &[
            ("HTTPS_PROXY", "http://127.0.0.1:9"),
            ("HTTP_PROXY", "http://127.0.0.1:9"),
        ],
    );
    assert_eq!(read_client_config(env).await.unwrap(), tenant.tenant_id);
}
