//! Unit tests of the provider block: precedence, every validation, redaction.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use super::config::{self, AuthMethod, CertificateSource, OidcTokenSource, ProviderConfig};
use super::settings::{self, Sources};
use super::*;
use crate::framework::{AttributePath, Diagnostics, Provider, Severity, Value};

const TENANT: &str = "46810bcd-886d-469e-a664-c8d3691d74fd";
const CLIENT: &str = "2b8cc7ca-52fb-4117-a0fe-19eb3a906139";
const OTHER_TENANT: &str = "11111111-2222-3333-4444-555555555555";

/// A provider block as Terraform sends it: every attribute present, null unless set.
fn block(set: &[(&str, Value)]) -> Value {
    let mut attrs: BTreeMap<String, Value> = settings::ALL
        .iter()
        .map(|s| (s.name.to_owned(), Value::Null))
        .collect();
    for (k, v) in set {
        assert!(attrs.contains_key(*k), "unknown attribute {k}");
        attrs.insert((*k).to_owned(), v.clone());
    }
    Value::Object(attrs)
}

fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let map: BTreeMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |name| map.get(name).cloned()
}

fn resolve(config: &Value, env_pairs: &[(&str, &str)]) -> Result<ProviderConfig, Diagnostics> {
    let lookup = env(env_pairs);
    config::resolve(
        &Sources {
            config,
            env: &lookup,
        },
        "1.11.4",
    )
}

fn resolve_err(config: &Value, env_pairs: &[(&str, &str)]) -> Diagnostics {
    match resolve(config, env_pairs) {
        Ok(c) => panic!("expected diagnostics, got {c:?}"),
        Err(d) => d,
    }
}

/// The single error diagnostic at `attr`, whatever else was reported.
fn error_at<'a>(diags: &'a Diagnostics, attr: &str) -> &'a crate::framework::Diagnostic {
    diags
        .iter()
        .find(|d| d.severity == Severity::Error && d.path == Some(AttributePath::root(attr)))
        .unwrap_or_else(|| panic!("no error at {attr}: {diags:#?}"))
}

fn secret_env() -> Vec<(&'static str, &'static str)> {
    vec![
        ("ARM_TENANT_ID", TENANT),
        ("ARM_CLIENT_ID", CLIENT),
        ("ARM_CLIENT_SECRET", "env-secret-value-1"),
    ]
}

// --- precedence -------------------------------------------------------------------------------

#[test]
fn environment_alone_configures_client_secret_auth() {
    let c = resolve(&block(&[]), &secret_env()).unwrap();
    assert_eq!(c.tenant_id.as_deref(), Some(TENANT));
    assert_eq!(c.client_id.as_deref(), Some(CLIENT));
    match &c.auth {
        AuthMethod::ClientSecret { secret } => assert_eq!(secret.expose(), "env-secret-value-1"),
        other => panic!("{other:?}"),
    }
    assert_eq!(c.environment, CloudEnvironment::Public);
    assert_eq!(c.cloud, CloudEnvironment::Public.endpoints());
    assert_eq!(c.terraform_version, "1.11.4");
}

#[test]
fn config_beats_environment() {
    let c = resolve(
        &block(&[
            ("tenant_id", OTHER_TENANT.into()),
            ("client_secret", "config-secret-value".into()),
            ("environment", "china".into()),
        ]),
        &[
            ("ARM_TENANT_ID", TENANT),
            ("ARM_CLIENT_ID", CLIENT),
            ("ARM_CLIENT_SECRET", "env-secret-value-2"),
            ("ARM_ENVIRONMENT", "usgovernment"),
        ],
    )
    .unwrap();
    assert_eq!(c.tenant_id.as_deref(), Some(OTHER_TENANT));
    assert_eq!(
        c.client_id.as_deref(),
        Some(CLIENT),
        "unset in config → env"
    );
    assert_eq!(
        c.auth,
        AuthMethod::ClientSecret {
            secret: Secret::new("config-secret-value")
        }
    );
    assert_eq!(c.environment, CloudEnvironment::China);
}

#[test]
fn a_method_chosen_in_config_beats_one_in_the_environment() {
    // ARM_USE_MSI from the runner's environment must not override an explicit secret.
    let mut e = secret_env();
    e.push(("ARM_USE_MSI", "true"));
    let c = resolve(&block(&[("client_secret", "cfg-secret-3".into())]), &e).unwrap();
    assert!(matches!(c.auth, AuthMethod::ClientSecret { .. }), "{c:?}");

    // And an explicit `use_msi = false` switches the environment's choice off.
    let c = resolve(
        &block(&[("use_msi", false.into())]),
        &[("ARM_USE_MSI", "true"), ("ARM_USE_CLI", "true")],
    )
    .unwrap();
    assert_eq!(c.auth, AuthMethod::AzureCli);
}

#[test]
fn environment_only_methods_follow_azurerm_priority() {
    let c = resolve(
        &block(&[]),
        &[
            ("ARM_TENANT_ID", TENANT),
            ("ARM_CLIENT_ID", CLIENT),
            ("ARM_USE_MSI", "true"),
            ("ARM_CLIENT_SECRET", "env-secret-value-4"),
        ],
    )
    .unwrap();
    assert!(matches!(c.auth, AuthMethod::ClientSecret { .. }), "{c:?}");
}

#[test]
fn azure_cli_is_the_fallback_unless_disabled() {
    assert_eq!(
        resolve(&block(&[]), &[]).unwrap().auth,
        AuthMethod::AzureCli
    );
    let d = resolve_err(&block(&[("use_cli", false.into())]), &[]);
    let e = d
        .iter()
        .find(|d| d.summary == "No authentication method configured");
    let detail = &e.expect("diagnostic").detail;
    assert!(
        detail.contains("ARM_CLIENT_SECRET") && detail.contains("use_msi"),
        "{detail}"
    );
}

#[test]
fn boolean_environment_values_are_parsed_strictly() {
    let c = resolve(&block(&[]), &[("ARM_USE_MSI", "TRUE")]).unwrap();
    assert_eq!(c.auth, AuthMethod::ManagedIdentity { endpoint: None });
    let d = resolve_err(&block(&[]), &[("ARM_USE_MSI", "yes please")]);
    let e = error_at(&d, "use_msi");
    assert!(e.summary.contains("ARM_USE_MSI"), "{e:?}");
}

#[test]
fn first_set_environment_variable_wins_and_values_are_trimmed() {
    let c = resolve(
        &block(&[]),
        &[
            ("ARM_TENANT_ID", &format!("{TENANT}\n")),
            ("ARM_CLIENT_ID", CLIENT),
            ("ARM_USE_OIDC", "true"),
            ("ARM_OIDC_REQUEST_URL", ""),
            (
                "ACTIONS_ID_TOKEN_REQUEST_URL",
                "https://pipelines.example/idtoken",
            ),
            ("ACTIONS_ID_TOKEN_REQUEST_TOKEN", "gh-request-token-5"),
        ],
    )
    .unwrap();
    assert_eq!(c.tenant_id.as_deref(), Some(TENANT));
    match &c.auth {
        AuthMethod::Oidc {
            token: OidcTokenSource::Request { url, bearer },
        } => {
            assert_eq!(url, "https://pipelines.example/idtoken");
            assert_eq!(bearer.expose(), "gh-request-token-5");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn oidc_token_sources_in_order() {
    let base = [
        ("ARM_TENANT_ID", TENANT),
        ("ARM_CLIENT_ID", CLIENT),
        ("ARM_USE_OIDC", "true"),
    ];
    let with = |extra: &[(&'static str, &'static str)]| {
        let mut e = base.to_vec();
        e.extend_from_slice(extra);
        resolve(&block(&[]), &e)
    };
    let c = with(&[
        ("ARM_OIDC_TOKEN", "oidc-token-6"),
        ("ARM_OIDC_TOKEN_FILE_PATH", "/var/run/token"),
    ])
    .unwrap();
    assert!(matches!(
        c.auth,
        AuthMethod::Oidc {
            token: OidcTokenSource::Token(_)
        }
    ));
    let c = with(&[("ARM_OIDC_TOKEN_FILE_PATH", "/var/run/token")]).unwrap();
    assert_eq!(
        c.auth,
        AuthMethod::Oidc {
            token: OidcTokenSource::TokenFile(PathBuf::from("/var/run/token"))
        }
    );
    let d = with(&[("ARM_OIDC_REQUEST_URL", "https://x.example/t")]).unwrap_err();
    let e = error_at(&d, "oidc_request_token");
    assert!(e.detail.contains("ARM_OIDC_TOKEN_FILE_PATH"), "{e:?}");
}

#[test]
fn endpoint_overrides_replace_urls_but_keep_the_clouds_scopes() {
    let c = resolve(
        &block(&[
            ("environment", "usgovernment".into()),
            ("graph_endpoint", "http://127.0.0.1:4567/".into()),
        ]),
        &[
            ("BREAKGLASS_LOGIN_ENDPOINT", "http://localhost:4567"),
            ("BREAKGLASS_RESOURCE_MANAGER_ENDPOINT", "http://[::1]:4567"),
        ],
    )
    .unwrap();
    let gov = CloudEnvironment::UsGovernment.endpoints();
    assert_eq!(c.cloud.graph, "http://127.0.0.1:4567");
    assert_eq!(c.cloud.login, "http://localhost:4567");
    assert_eq!(c.cloud.resource_manager, "http://[::1]:4567");
    assert_eq!(c.cloud.graph_scope, gov.graph_scope);
    assert_eq!(c.cloud.arm_scope, gov.arm_scope);
    assert_eq!(c.cloud.arm_audience, gov.arm_audience);
}

// --- what each method requires ------------------------------------------------------------------

#[test]
fn missing_tenant_and_client_name_attribute_and_variable() {
    let d = resolve_err(&block(&[("client_secret", "cfg-secret-7".into())]), &[]);
    let tenant = error_at(&d, "tenant_id");
    assert!(tenant.detail.contains("`tenant_id`"), "{tenant:?}");
    assert!(tenant.detail.contains("ARM_TENANT_ID"), "{tenant:?}");
    assert!(tenant.detail.contains("client secret"), "{tenant:?}");
    let client = error_at(&d, "client_id");
    assert!(client.detail.contains("ARM_CLIENT_ID"), "{client:?}");
}

#[test]
fn managed_identity_needs_no_tenant_and_may_name_its_endpoint() {
    let c = resolve(
        &block(&[
            ("use_msi", true.into()),
            ("client_id", CLIENT.into()),
            (
                "msi_endpoint",
                "http://169.254.169.254/metadata/identity/oauth2/token".into(),
            ),
        ]),
        &[],
    )
    .unwrap();
    assert_eq!(c.tenant_id, None);
    assert_eq!(c.client_id.as_deref(), Some(CLIENT));
    assert_eq!(
        c.auth,
        AuthMethod::ManagedIdentity {
            endpoint: Some("http://169.254.169.254/metadata/identity/oauth2/token".into())
        }
    );
}

#[test]
fn certificate_from_path_must_exist() {
    let dir = tempfile::tempdir().unwrap();
    let pfx = dir.path().join("sp.pfx");
    std::fs::write(&pfx, b"not really a pfx").unwrap();
    let mut e = vec![("ARM_TENANT_ID", TENANT), ("ARM_CLIENT_ID", CLIENT)];
    let pfx_str = pfx.to_str().unwrap().to_owned();
    e.push(("ARM_CLIENT_CERTIFICATE_PATH", &pfx_str));
    let c = resolve(&block(&[]), &e).unwrap();
    assert_eq!(
        c.auth,
        AuthMethod::ClientCertificate {
            certificate: CertificateSource::File(pfx.clone()),
            password: None
        }
    );

    let missing = dir.path().join("absent.pfx");
    let d = resolve_err(
        &block(&[("client_certificate_path", missing.to_str().unwrap().into())]),
        &e,
    );
    error_at(&d, "client_certificate_path");
}

#[test]
fn inline_certificate_from_config_beats_a_path_from_the_environment() {
    let c = resolve(
        &block(&[
            ("client_certificate", "TUlJQmNlcnQ=".into()),
            ("client_certificate_password", "pfx-password-8".into()),
        ]),
        &[
            ("ARM_TENANT_ID", TENANT),
            ("ARM_CLIENT_ID", CLIENT),
            ("ARM_CLIENT_CERTIFICATE_PATH", "/nonexistent/sp.pfx"),
        ],
    )
    .unwrap();
    match c.auth {
        AuthMethod::ClientCertificate {
            certificate: CertificateSource::Inline(cert),
            password: Some(pw),
        } => {
            assert_eq!(cert.expose(), "TUlJQmNlcnQ=");
            assert_eq!(pw.expose(), "pfx-password-8");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn environment_values_are_checked_and_reported_with_the_variable_name() {
    let d = resolve_err(
        &block(&[]),
        &[
            ("ARM_TENANT_ID", "contoso.onmicrosoft.com"),
            ("ARM_ENVIRONMENT", "mars"),
            ("BREAKGLASS_GRAPH_ENDPOINT", "http://graph.example"),
        ],
    );
    assert!(error_at(&d, "tenant_id").detail.contains("ARM_TENANT_ID"));
    let env = error_at(&d, "environment");
    assert!(env.detail.contains("ARM_ENVIRONMENT") && env.detail.contains("`usgovernment`"));
    assert!(error_at(&d, "graph_endpoint")
        .detail
        .contains("BREAKGLASS_GRAPH_ENDPOINT"));
}

#[test]
fn unknown_values_cannot_configure_the_provider() {
    let d = resolve_err(&block(&[("tenant_id", Value::Unknown)]), &secret_env());
    error_at(&d, "tenant_id");
}

// --- validate ---------------------------------------------------------------------------------

/// What `terraform validate` reports for the block: the declared validators, then the
/// provider's own cross-attribute rule.
fn validate(config: &Value) -> Diagnostics {
    let schema = BreakglassProvider::new().schema();
    let mut diagnostics = crate::protocol::validate::declared_validators(&schema, config);
    diagnostics.extend(super::validate::validate(config));
    diagnostics
}

#[test]
fn a_valid_block_has_no_diagnostics() {
    let d = validate(&block(&[
        ("tenant_id", TENANT.into()),
        ("client_id", CLIENT.into()),
        ("subscription_id", OTHER_TENANT.into()),
        ("client_secret", "cfg-secret-9".into()),
        ("environment", "public".into()),
        ("login_endpoint", "https://login.example".into()),
        ("graph_endpoint", "http://127.0.0.1:8080".into()),
        ("resource_manager_endpoint", "https://arm.example/".into()),
    ]));
    assert!(d.is_empty(), "{d:#?}");
    assert!(validate(&block(&[])).is_empty());
}

#[test]
fn guids_are_checked_on_each_id_attribute() {
    for attr in ["tenant_id", "client_id", "subscription_id"] {
        let d = validate(&block(&[(attr, "not-a-guid".into())]));
        let e = error_at(&d, attr);
        assert!(e.detail.contains("GUID"), "{e:?}");
    }
}

#[test]
fn unknown_environment_lists_the_valid_ones() {
    let d = validate(&block(&[("environment", "mars".into())]));
    let e = error_at(&d, "environment");
    for name in ["public", "usgovernment", "china"] {
        assert!(e.detail.contains(name), "{e:?}");
    }
}

#[test]
fn remote_plain_http_endpoints_are_rejected() {
    for attr in [
        "login_endpoint",
        "graph_endpoint",
        "resource_manager_endpoint",
        "oidc_request_url",
    ] {
        let d = validate(&block(&[(attr, "http://example.com".into())]));
        let e = error_at(&d, attr);
        assert!(e.detail.contains("https://"), "{e:?}");
        let d = validate(&block(&[(attr, "not a url".into())]));
        error_at(&d, attr);
    }
    let d = validate(&block(&[("msi_endpoint", "http://10.0.0.4/token".into())]));
    error_at(&d, "msi_endpoint");
}

#[test]
fn conflicting_auth_methods_name_both() {
    let d = validate(&block(&[
        ("client_secret", "cfg-secret-10".into()),
        ("use_msi", true.into()),
        ("use_cli", true.into()),
    ]));
    let msi = error_at(&d, "use_msi");
    assert!(msi.detail.contains("`client_secret`"), "{msi:?}");
    assert!(msi.detail.contains("managed identity"), "{msi:?}");
    error_at(&d, "use_cli");
    assert!(
        !d.iter().any(|x| format!("{x:?}").contains("cfg-secret-10")),
        "diagnostics never carry secrets"
    );

    // `false` selects nothing, unknown is not judged yet.
    let d = validate(&block(&[
        ("client_secret", "cfg-secret-10".into()),
        ("use_msi", false.into()),
        ("use_oidc", Value::Unknown),
    ]));
    assert!(d.is_empty(), "{d:#?}");
}

#[test]
fn certificate_and_certificate_path_are_exclusive() {
    let d = validate(&block(&[
        ("client_certificate", "TUlJQmNlcnQ=".into()),
        ("client_certificate_path", "/etc/sp.pfx".into()),
    ]));
    error_at(&d, "client_certificate_path");
}

#[test]
fn inline_certificate_must_be_base64_or_pem() {
    let d = validate(&block(&[("client_certificate", "%%% not base64".into())]));
    let e = error_at(&d, "client_certificate");
    assert!(!e.detail.contains("%%%"), "never echo a certificate");
}

#[test]
fn unknown_values_are_skipped_at_validate_time() {
    let unknowns: Vec<(&str, Value)> = settings::ALL
        .iter()
        .map(|s| (s.name, Value::Unknown))
        .collect();
    assert!(validate(&block(&unknowns)).is_empty());
}

// --- secrets ------------------------------------------------------------------------------------

#[test]
fn debug_of_the_config_never_shows_secrets() {
    let c = resolve(
        &block(&[("client_secret", "dbg-secret-value-11".into())]),
        &secret_env(),
    )
    .unwrap();
    let shown = format!("{c:?} {c:#?}");
    assert!(!shown.contains("dbg-secret-value-11"), "{shown}");
    assert!(shown.contains("[redacted]"), "{shown}");

    let s = Secret::new("display-secret-12");
    assert_eq!(format!("{s}"), "[redacted]");
    assert_eq!(format!("{s:?}"), "[redacted]");
}

#[test]
fn creating_a_secret_registers_it_with_the_logger() {
    let _ = Secret::new("registered-via-config-13");
    // Other tests register secrets in the same process-wide registry, so only the property
    // itself is asserted, not the exact masked text.
    let masked = crate::logging::redact("request failed for registered-via-config-13");
    assert!(!masked.contains("registered-via-config-13"), "{masked}");
    assert!(masked.contains("[redacted]"), "{masked}");
}

// --- the Provider trait -----------------------------------------------------------------------

#[test]
fn schema_lists_every_setting_optional_with_a_description() {
    let schema = BreakglassProvider::with_env(Arc::new(|_: &str| None)).schema();
    assert_eq!(schema.attributes.len(), settings::ALL.len());
    for a in &schema.attributes {
        assert!(a.optional && !a.required && !a.computed, "{}", a.name);
        assert!(!a.description.is_empty(), "{}", a.name);
    }
    let tenant = schema.attribute("tenant_id").unwrap();
    assert!(tenant.description.contains("ARM_TENANT_ID"));
    for secret in [
        "client_secret",
        "client_certificate",
        "client_certificate_password",
        "oidc_token",
        "oidc_request_token",
    ] {
        assert!(schema.attribute(secret).unwrap().sensitive, "{secret}");
    }
    assert!(!schema.attribute("tenant_id").unwrap().sensitive);
}

#[tokio::test]
async fn configure_returns_the_config_as_provider_data() {
    let provider = BreakglassProvider::with_env(Arc::new(|name: &str| {
        secret_env()
            .into_iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.to_owned())
    }));
    let clients = provider.configure(&block(&[]), "1.5.7").await.unwrap();
    let c: &ProviderConfig = &clients.config;
    assert_eq!(c.tenant_id.as_deref(), Some(TENANT));
    assert!(c.user_agent().ends_with("terraform/1.5.7"));

    let Err(diags) = provider
        .configure(&block(&[("tenant_id", "nope".into())]), "1.5.7")
        .await
    else {
        panic!("invalid tenant id is an error");
    };
    error_at(&diags, "tenant_id");
}
