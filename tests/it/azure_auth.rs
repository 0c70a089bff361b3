//! Authentication against the emulated tenant: every method that can run here, with a good and
//! a wrong credential; token reuse, refresh and single-flight, measured with the emulator's
//! issued-token counter.

use std::sync::Arc;
use std::time::Duration;

use breakglass::azure::auth::{
    AzureCliSource, ClientAssertionSource, EntraApp, ManagedIdentityEndpoint,
    ManagedIdentitySource, OidcToken,
};
use breakglass::azure::{AuthMethodKind, AzureError};
use breakglass::provider::{AuthMethod, CertificateSource, OidcTokenSource, Secret};
use reqwest::Method;
use serde_json::json;

use crate::azure_support::{deadline, fast_policy, Emulator};

fn auth_error(e: AzureError) -> breakglass::azure::AuthError {
    match e {
        AzureError::Auth(a) => *a,
        other => panic!("expected an authentication error, got: {other}"),
    }
}

#[tokio::test]
async fn client_secret_signs_in_and_reuses_its_token() {
    let tenant = Emulator::start().await;
    let clients = tenant.clients();
    for _ in 0..3 {
        let org = clients
            .graph
            .list_all("/organization", deadline())
            .await
            .unwrap();
        assert_eq!(org[0]["id"], tenant.tenant_id.as_str());
    }
    assert_eq!(clients.auth_method(), AuthMethodKind::ClientSecret);
    assert_eq!(tenant.tokens_issued(&tenant.client_id).await, 1);
    assert_eq!(clients.tokens.fetch_count(), 1);
}

#[tokio::test]
async fn wrong_client_secret_says_what_to_fix_without_the_secret() {
    let tenant = Emulator::start().await;
    let wrong = "fake~not-the-right-secret-0123456789";
    let clients = tenant.clients_for(tenant.config(AuthMethod::ClientSecret {
        secret: Secret::new(wrong),
    }));
    let err = auth_error(
        clients
            .graph
            .get("/organization", &deadline())
            .await
            .unwrap_err(),
    );
    assert_eq!(err.method, AuthMethodKind::ClientSecret);
    assert!(err.problem.starts_with("AADSTS7000215"), "{}", err.problem);
    let shown = err.to_string();
    assert!(shown.contains(&tenant.client_id), "{shown}");
    assert!(shown.contains("client_secret"), "{shown}");
    assert!(!shown.contains(wrong), "{shown}");
    assert!(!shown.contains(&tenant.client_secret), "{shown}");
}

/// A self-signed certificate + key as PEM text, and the certificate alone.
fn certificate_pem() -> (String, String, rsa::RsaPrivateKey) {
    let certificate = crate::harness::ClientCertificate::new("breakglass-it");
    (
        certificate.bundle(),
        certificate.cert.pem(),
        certificate.key,
    )
}

#[tokio::test]
async fn client_certificate_pem_and_pkcs12_sign_in_and_an_unregistered_one_is_refused() {
    let tenant = Emulator::start().await;
    let (bundle, cert_pem, key) = certificate_pem();

    // Not registered on the app yet: Entra cannot find the key.
    let pem_clients = tenant.clients_for(tenant.config(AuthMethod::ClientCertificate {
        certificate: CertificateSource::Inline(Secret::new(bundle.clone())),
        password: None,
    }));
    let err = auth_error(
        pem_clients
            .graph
            .get("/organization", &deadline())
            .await
            .unwrap_err(),
    );
    assert_eq!(err.method, AuthMethodKind::ClientCertificate);
    assert!(err.problem.starts_with("AADSTS700027"), "{}", err.problem);
    assert!(err.remedy.contains("certificate"), "{}", err.remedy);

    tenant
        .admin(
            Method::POST,
            &format!("/auth/applications/{}/certificates", tenant.client_id),
            Some(json!({"pem": cert_pem})),
        )
        .await;
    pem_clients
        .graph
        .get("/organization", &deadline())
        .await
        .unwrap();
    assert_eq!(pem_clients.auth_method(), AuthMethodKind::ClientCertificate);

    // The same pair as a password-protected PKCS#12 file.
    use rsa::pkcs8::EncodePrivateKey;
    let der = pem::parse(cert_pem.as_bytes()).unwrap().into_contents();
    let chain = p12_keystore::PrivateKeyChain::new(
        vec![7u8],
        p12_keystore::PrivateKey::from_der(key.to_pkcs8_der().unwrap().as_bytes()).unwrap(),
        vec![p12_keystore::Certificate::from_der(&der).unwrap()],
    );
    let mut store = p12_keystore::KeyStore::new();
    store.add_entry("bg", p12_keystore::KeyStoreEntry::PrivateKeyChain(chain));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bg.pfx");
    std::fs::write(&path, store.writer("pfx-pass").write().unwrap()).unwrap();
    let pfx_clients = tenant.clients_for(tenant.config(AuthMethod::ClientCertificate {
        certificate: CertificateSource::File(path.clone()),
        password: Some(Secret::new("pfx-pass")),
    }));
    pfx_clients
        .graph
        .get("/organization", &deadline())
        .await
        .unwrap();

    // A wrong archive password fails while loading, naming the setting but not the value.
    let config = tenant.config(AuthMethod::ClientCertificate {
        certificate: CertificateSource::File(path),
        password: Some(Secret::new("not-the-pfx-pass")),
    });
    let err = breakglass::azure::auth::source_from_config(&config, &|_| None)
        .err()
        .expect("a wrong password must fail");
    assert!(
        err.to_string().contains("client_certificate_password"),
        "{err}"
    );
    assert!(!err.to_string().contains("not-the-pfx-pass"));
}

fn ci_request_token(tenant: &Emulator) -> String {
    tenant.state.tenant().auth.ci_oidc.request_token.clone()
}

#[tokio::test]
async fn oidc_token_requested_from_the_ci_endpoint_signs_in() {
    let tenant = Emulator::start().await;
    let clients = tenant.clients_for(tenant.config(AuthMethod::Oidc {
        token: OidcTokenSource::Request {
            url: format!("{}/_fake/oidc/token", tenant.url),
            bearer: Secret::new(ci_request_token(&tenant)),
        },
    }));
    clients
        .graph
        .get("/organization", &deadline())
        .await
        .unwrap();
    assert_eq!(clients.auth_method(), AuthMethodKind::Oidc);
}

#[tokio::test]
async fn oidc_with_a_wrong_request_token_or_subject_is_refused() {
    let tenant = Emulator::start().await;
    let wrong_bearer = tenant.clients_for(tenant.config(AuthMethod::Oidc {
        token: OidcTokenSource::Request {
            url: format!("{}/_fake/oidc/token", tenant.url),
            bearer: Secret::new("not-the-request-token"),
        },
    }));
    let err = auth_error(
        wrong_bearer
            .graph
            .get("/organization", &deadline())
            .await
            .unwrap_err(),
    );
    assert_eq!(err.method, AuthMethodKind::Oidc);
    assert!(err.remedy.contains("oidc_request_token"), "{}", err.remedy);
    assert!(!err.to_string().contains("not-the-request-token"));

    // A token for a subject the app's federated credential does not trust.
    tenant
        .settings(json!({"auth.ci_oidc_subject": "repo:someone-else/fork:ref:refs/heads/main"}))
        .await;
    let wrong_subject = tenant.clients_for(tenant.config(AuthMethod::Oidc {
        token: OidcTokenSource::Request {
            url: format!("{}/_fake/oidc/token", tenant.url),
            bearer: Secret::new(ci_request_token(&tenant)),
        },
    }));
    let err = auth_error(
        wrong_subject
            .graph
            .get("/organization", &deadline())
            .await
            .unwrap_err(),
    );
    assert!(err.problem.starts_with("AADSTS"), "{}", err.problem);
    assert!(
        err.remedy.contains("federated identity credential"),
        "{}",
        err.remedy
    );
}

#[tokio::test]
async fn oidc_token_given_directly_signs_in() {
    let tenant = Emulator::start().await;
    let answer: serde_json::Value = reqwest::Client::new()
        .get(format!(
            "{}/_fake/oidc/token?audience=api://AzureADTokenExchange",
            tenant.url
        ))
        .bearer_auth(ci_request_token(&tenant))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ci_token = answer["value"].as_str().unwrap().to_owned();
    let app = EntraApp {
        login_endpoint: tenant.url.clone(),
        tenant_id: tenant.tenant_id.clone(),
        client_id: tenant.client_id.clone(),
    };
    let config = tenant.config(AuthMethod::Oidc {
        token: OidcTokenSource::Token(Secret::new(ci_token.clone())),
    });
    let clients = tenant.clients_with_source(
        config,
        Box::new(ClientAssertionSource::oidc(app, OidcToken::Given(ci_token))),
        fast_policy(),
    );
    clients
        .graph
        .get("/organization", &deadline())
        .await
        .unwrap();
}

fn managed_identity(tenant: &Emulator) -> (String, String) {
    let t = tenant.state.tenant();
    let mi = &t.auth.managed_identities[0];
    (mi.app_id.clone(), mi.object_id.clone())
}

#[tokio::test]
async fn imds_managed_identity_signs_in_and_an_unknown_identity_is_refused() {
    let tenant = Emulator::start().await;
    let (mi_client_id, mi_object_id) = managed_identity(&tenant);
    let imds = format!("{}/metadata/identity/oauth2/token", tenant.url);
    let source = ManagedIdentitySource::new(
        ManagedIdentityEndpoint::Imds { url: imds.clone() },
        Some(mi_client_id.clone()),
    );
    let clients = tenant.clients_with_source(
        tenant.config(AuthMethod::ManagedIdentity {
            endpoint: Some(imds.clone()),
        }),
        Box::new(source),
        fast_policy(),
    );
    clients
        .graph
        .get("/organization", &deadline())
        .await
        .unwrap();
    let token = clients
        .tokens
        .token(&clients.graph.service().scope, &deadline())
        .await
        .unwrap();
    assert_eq!(token.claims().unwrap()["oid"], mi_object_id.as_str());

    let unknown = ManagedIdentitySource::new(
        ManagedIdentityEndpoint::Imds { url: imds.clone() },
        Some("00000000-1111-2222-3333-444444444444".into()),
    );
    let clients = tenant.clients_with_source(
        tenant.config(AuthMethod::ManagedIdentity {
            endpoint: Some(imds),
        }),
        Box::new(unknown),
        fast_policy(),
    );
    let err = auth_error(
        clients
            .graph
            .get("/organization", &deadline())
            .await
            .unwrap_err(),
    );
    assert_eq!(err.method, AuthMethodKind::ManagedIdentity);
    assert!(
        err.attempted
            .contains("00000000-1111-2222-3333-444444444444"),
        "{}",
        err.attempted
    );
}

#[tokio::test]
async fn app_service_identity_endpoint_signs_in_and_a_wrong_header_is_refused() {
    let tenant = Emulator::start().await;
    let (mi_client_id, _) = managed_identity(&tenant);
    let header = tenant.state.tenant().auth.identity_header.clone();
    let endpoint = format!("{}/msi/token", tenant.url);
    let env = |name: &str| match name {
        "IDENTITY_ENDPOINT" => Some(endpoint.clone()),
        "IDENTITY_HEADER" => Some(header.clone()),
        _ => None,
    };
    // Through the same path `configure` takes: the App Service variables win over IMDS.
    let config = tenant.config(AuthMethod::ManagedIdentity { endpoint: None });
    let mut config_with_mi = config.clone();
    config_with_mi.client_id = Some(mi_client_id.clone());
    let source = breakglass::azure::auth::source_from_config(&config_with_mi, &env).unwrap();
    assert!(
        source.describe().contains("App Service"),
        "{}",
        source.describe()
    );
    let clients = tenant.clients_with_source(config_with_mi, source, fast_policy());
    clients
        .graph
        .get("/organization", &deadline())
        .await
        .unwrap();

    let wrong = ManagedIdentitySource::new(
        ManagedIdentityEndpoint::AppService {
            endpoint: endpoint.clone(),
            header: "wrong-identity-header".into(),
        },
        Some(mi_client_id),
    );
    let clients = tenant.clients_with_source(config, Box::new(wrong), fast_policy());
    let err = auth_error(
        clients
            .graph
            .get("/organization", &deadline())
            .await
            .unwrap_err(),
    );
    assert_eq!(err.method, AuthMethodKind::ManagedIdentity);
    assert!(err.problem.contains("401"), "{}", err.problem);
    assert!(!err.to_string().contains("wrong-identity-header"));
}

#[tokio::test]
async fn tokens_are_refreshed_before_they_expire() {
    let tenant = Emulator::start().await;
    // Four-second tokens: refreshed once less than a fifth of the lifetime (0.8 s) is left.
    tenant.settings(json!({"auth.token_lifetime_s": 4})).await;
    let clients = tenant.clients();
    clients
        .graph
        .get("/organization", &deadline())
        .await
        .unwrap();
    clients
        .graph
        .get("/organization", &deadline())
        .await
        .unwrap();
    assert_eq!(tenant.tokens_issued(&tenant.client_id).await, 1);
    tokio::time::sleep(Duration::from_millis(3400)).await;
    clients
        .graph
        .get("/organization", &deadline())
        .await
        .unwrap();
    assert_eq!(tenant.tokens_issued(&tenant.client_id).await, 2);
    // No Graph call was refused for an expired token along the way.
    let refused = tenant.requests("GET", "^/v1.0/organization$").await;
    assert!(refused.iter().all(|r| r["status"] == 200), "{refused:?}");
}

#[tokio::test]
async fn concurrent_callers_share_one_token_request() {
    let tenant = Emulator::start().await;
    let clients = Arc::new(tenant.clients());
    let calls: Vec<_> = (0..8)
        .map(|_| {
            let clients = clients.clone();
            tokio::spawn(async move { clients.graph.get("/organization", &deadline()).await })
        })
        .collect();
    for call in calls {
        call.await.unwrap().unwrap();
    }
    assert_eq!(tenant.tokens_issued(&tenant.client_id).await, 1);
}

/// The Azure CLI cannot run here; a stand-in `az` script records its arguments and prints what
/// `az account get-access-token` prints, with a token the emulator really issued, so the whole
/// path (subprocess, parsing, use against Graph) is exercised.
#[tokio::test]
async fn azure_cli_token_is_used_and_a_logged_out_cli_is_explained() {
    let tenant = Emulator::start().await;
    let token = tenant
        .clients()
        .tokens
        .token("https://graph.microsoft.com/.default", &deadline())
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let args_file = dir.path().join("args");
    let expires_on = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 3000;
    let script = dir.path().join("az");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\necho \"$@\" > '{}'\necho '{{\"accessToken\":\"{}\",\"expires_on\":{expires_on},\"tokenType\":\"Bearer\"}}'\n",
            args_file.display(),
            token.secret()
        ),
    )
    .unwrap();
    make_executable(&script);

    let config = tenant.config(AuthMethod::AzureCli);
    let clients = tenant.clients_with_source(
        config.clone(),
        Box::new(AzureCliSource::new(
            script.display().to_string(),
            Some(tenant.tenant_id.clone()),
        )),
        fast_policy(),
    );
    clients
        .graph
        .get("/organization", &deadline())
        .await
        .unwrap();
    assert_eq!(
        std::fs::read_to_string(&args_file).unwrap().trim(),
        format!(
            "account get-access-token --output json --resource https://graph.microsoft.com --tenant {}",
            tenant.tenant_id
        )
    );

    let logged_out = dir.path().join("az-logged-out");
    std::fs::write(
        &logged_out,
        "#!/bin/sh\necho \"ERROR: Please run 'az login' to setup account.\" >&2\nexit 1\n",
    )
    .unwrap();
    make_executable(&logged_out);
    let clients = tenant.clients_with_source(
        config,
        Box::new(AzureCliSource::new(logged_out.display().to_string(), None)),
        fast_policy(),
    );
    let err = auth_error(
        clients
            .graph
            .get("/organization", &deadline())
            .await
            .unwrap_err(),
    );
    assert_eq!(err.method, AuthMethodKind::AzureCli);
    assert!(err.problem.contains("az login"), "{}", err.problem);
    assert!(err.remedy.contains("az login"), "{}", err.remedy);
}

fn make_executable(path: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}
