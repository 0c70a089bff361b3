//! `breakglass_client_config` read through the provider's own `configure`, against the emulated
//! tenant: the ids must be the seed's, whichever way they were obtained.

use std::collections::HashMap;
use std::sync::Arc;

use breakglass::azure::AzureClients;
use breakglass::framework::{DataSource, Provider, Value};
use breakglass::provider::BreakglassProvider;

use crate::azure_support::Emulator;

fn provider_with_env(env: Vec<(&str, String)>) -> BreakglassProvider {
    let env: HashMap<String, String> = env.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
    BreakglassProvider::with_env(Arc::new(move |name: &str| env.get(name).cloned()))
}

/// The provider block with every attribute left null (settings come from the environment).
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

fn emulator_env(tenant: &Emulator) -> Vec<(&'static str, String)> {
    vec![
        ("ARM_TENANT_ID", tenant.tenant_id.clone()),
        ("ARM_CLIENT_ID", tenant.client_id.clone()),
        ("BREAKGLASS_LOGIN_ENDPOINT", tenant.url.clone()),
        ("BREAKGLASS_GRAPH_ENDPOINT", tenant.url.clone()),
        ("BREAKGLASS_RESOURCE_MANAGER_ENDPOINT", tenant.url.clone()),
    ]
}

#[tokio::test]
async fn client_secret_principal_is_reported_with_a_graph_call() {
    let tenant = Emulator::start().await;
    let mut env = emulator_env(&tenant);
    env.push(("ARM_CLIENT_SECRET", tenant.client_secret.clone()));
    let provider = provider_with_env(env);
    let data = provider
        .configure(&empty_block(&provider), "1.11.0")
        .await
        .unwrap_or_else(|d| panic!("configure: {d:?}"));
    let state = client_config(&provider)
        .read(&data, &Value::Null)
        .await
        .unwrap_or_else(|d| panic!("read: {d:?}"));
    assert_eq!(
        state.get("tenant_id").as_str(),
        Some(tenant.tenant_id.as_str())
    );
    assert_eq!(
        state.get("client_id").as_str(),
        Some(tenant.client_id.as_str())
    );
    assert_eq!(
        state.get("object_id").as_str(),
        Some(tenant.object_id.as_str())
    );
    assert_eq!(
        state.get("authentication_method").as_str(),
        Some("client_secret")
    );
    // The read went to Graph, not only to the token endpoint.
    assert_eq!(
        tenant.requests("GET", "^/v1.0/organization$").await.len(),
        1
    );
}

#[tokio::test]
async fn managed_identity_principal_is_the_identity_not_the_app() {
    let tenant = Emulator::start().await;
    let (mi_client_id, mi_object_id) = {
        let t = tenant.state.tenant();
        let mi = &t.auth.managed_identities[0];
        (mi.app_id.clone(), mi.object_id.clone())
    };
    let mut env = emulator_env(&tenant);
    env.retain(|(k, _)| *k != "ARM_CLIENT_ID");
    env.push(("ARM_CLIENT_ID", mi_client_id.clone()));
    env.push(("ARM_USE_MSI", "true".into()));
    env.push((
        "ARM_MSI_ENDPOINT",
        format!("{}/metadata/identity/oauth2/token", tenant.url),
    ));
    let provider = provider_with_env(env);
    let data = provider
        .configure(&empty_block(&provider), "1.11.0")
        .await
        .unwrap_or_else(|d| panic!("configure: {d:?}"));
    let state = client_config(&provider)
        .read(&data, &Value::Null)
        .await
        .unwrap_or_else(|d| panic!("read: {d:?}"));
    assert_eq!(state.get("object_id").as_str(), Some(mi_object_id.as_str()));
    assert_eq!(state.get("client_id").as_str(), Some(mi_client_id.as_str()));
    assert_eq!(
        state.get("authentication_method").as_str(),
        Some("managed_identity")
    );
}

#[tokio::test]
async fn wrong_secret_becomes_an_authentication_diagnostic() {
    let tenant = Emulator::start().await;
    let mut env = emulator_env(&tenant);
    env.push(("ARM_CLIENT_SECRET", "fake~definitely-wrong".into()));
    let provider = provider_with_env(env);
    let data = provider
        .configure(&empty_block(&provider), "1.11.0")
        .await
        .unwrap();
    let diags = client_config(&provider)
        .read(&data, &Value::Null)
        .await
        .expect_err("a wrong secret fails the read");
    let d = diags.iter().next().unwrap();
    assert_eq!(d.summary, "Authentication failed");
    assert!(d.detail.contains("AADSTS7000215"), "{}", d.detail);
    assert!(!d.detail.contains("definitely-wrong"), "{}", d.detail);
}

// ---------------------------------------------------------------------------------------------
// End to end: terraform → provider → Graph → emulated tenant.

use crate::harness::{required_providers, Case, ClientCertificate, FakeTenant, Step};

const CLIENT_CONFIG: &str = "data \"breakglass_client_config\" \"current\" {}\n";

fn config() -> String {
    format!("{}\n{CLIENT_CONFIG}", required_providers())
}

/// Adds a fault rule straight into the tenant's behaviour state.
fn inject(tenant: &FakeTenant, rule: serde_json::Value) {
    let mut t = tenant.state.tenant();
    let id = t.behaviour.next_id();
    let rule = fake_tenant::behaviour::FaultRule::from_json(id, &rule).expect("fault rule");
    t.behaviour.faults.push(rule);
}

fn provider_object_id(tenant: &FakeTenant) -> String {
    let t = tenant.state.tenant();
    let app = t.auth.primary_application().expect("seed app");
    app.principal.object_id.clone()
}

fn expect_ids(ctx: &crate::harness::Ctx<'_>) -> Result<(), String> {
    let tenant = ctx.tenant();
    let address = "data.breakglass_client_config.current";
    let attr = |name: &str| ctx.state.attribute(address, name);
    let expected = [
        ("tenant_id", tenant.tenant_id.clone()),
        ("client_id", tenant.client_id.clone()),
        ("object_id", provider_object_id(tenant)),
        ("authentication_method", "client_secret".to_owned()),
    ];
    for (name, want) in expected {
        let got = attr(name)?;
        if got != want.as_str() {
            return Err(format!("{name} is {got}, expected {want}"));
        }
    }
    Ok(())
}

#[test]
fn terraform_reads_client_config_from_the_tenant() {
    Case::new()
        .with_tenant(FakeTenant::start())
        .step(Step::Apply(config()))
        .step(Step::check(expect_ids))
        .run();
}

#[test]
fn terraform_read_survives_two_injected_503s() {
    let tenant = FakeTenant::start();
    inject(
        &tenant,
        serde_json::json!({"method": "GET", "path": "^/v1.0/organization$", "status": 503, "times": 2}),
    );
    Case::new()
        .with_tenant(tenant)
        .step(Step::Apply(config()))
        .step(Step::check(expect_ids))
        .step(Step::check(|ctx| {
            let t = ctx.tenant().state.tenant();
            let statuses: Vec<u64> = t
                .behaviour
                .request_log
                .iter()
                .filter(|r| r["path"] == "/v1.0/organization")
                .filter_map(|r| r["status"].as_u64())
                .collect();
            match statuses.as_slice() {
                [503, 503, 200, ..] => Ok(()),
                other => Err(format!(
                    "expected 503, 503, then 200; the log shows {other:?}"
                )),
            }
        }))
        .run();
}

/// A check that runs `terraform plan` at TF_LOG=trace and searches the whole output
/// (Terraform's and the provider's lines) for each of `secrets` and for any JWT.
fn trace_holds_none_of(
    secrets: Vec<String>,
) -> impl Fn(&crate::harness::Ctx<'_>) -> Result<(), String> + 'static {
    move |ctx| {
        let out = ctx.workspace.run_with(
            &["plan", "-no-color", "-input=false"],
            &[("TF_LOG", "trace")],
        );
        if !out.success() {
            return Err(format!("plan at TF_LOG=trace failed\n{out}"));
        }
        // The provider's own lines made it into the capture.
        if !out.text.contains("HTTP exchange") {
            return Err(format!(
                "no provider HTTP log lines in the trace output\n{out}"
            ));
        }
        for (i, secret) in secrets.iter().enumerate() {
            if out.text.contains(secret.as_str()) {
                return Err(format!("secret #{i} appears in the trace output"));
            }
        }
        // Access tokens and assertions are JWTs; their header always starts with `eyJ`.
        if let Some(at) = out.text.find("eyJ") {
            let around = &out.text[at.saturating_sub(80)..(at + 40).min(out.text.len())];
            return Err(format!("a JWT appears in the trace output: …{around}…"));
        }
        Ok(())
    }
}

#[test]
fn trace_logs_of_terraform_and_provider_hold_no_secret() {
    let tenant = FakeTenant::start();
    let secret = tenant.client_secret.clone();
    Case::new()
        .with_tenant(tenant)
        .step(Step::Apply(config()))
        .step(Step::check(trace_holds_none_of(vec![secret])))
        .run();
}

#[test]
fn trace_logs_hold_no_oidc_request_token_or_federated_token() {
    let tenant = FakeTenant::start();
    let request_token = tenant.state.tenant().auth.ci_oidc.request_token.clone();
    let request_url = format!("{}/_fake/oidc/token", tenant.base_url);
    Case::new()
        .with_tenant(tenant)
        .env("ARM_CLIENT_SECRET", "")
        .env("ARM_USE_OIDC", "true")
        .env("ARM_OIDC_REQUEST_URL", &request_url)
        .env("ARM_OIDC_REQUEST_TOKEN", &request_token)
        .step(Step::Apply(config()))
        .step(Step::check(trace_holds_none_of(vec![request_token])))
        .run();
}

/// Checks `authentication_method` and `object_id` of the data source.
fn expect_principal(
    method: &'static str,
    object_id: String,
) -> impl Fn(&crate::harness::Ctx<'_>) -> Result<(), String> + 'static {
    move |ctx| {
        let address = "data.breakglass_client_config.current";
        let got_method = ctx.state.attribute(address, "authentication_method")?;
        let got_object = ctx.state.attribute(address, "object_id")?;
        if got_method != method || got_object != object_id.as_str() {
            return Err(format!(
                "expected {method} as {object_id}, got {got_method} as {got_object}"
            ));
        }
        Ok(())
    }
}

#[test]
fn terraform_signs_in_with_a_ci_oidc_token() {
    let tenant = FakeTenant::start();
    let request_token = tenant.state.tenant().auth.ci_oidc.request_token.clone();
    let request_url = format!("{}/_fake/oidc/token", tenant.base_url);
    let object_id = provider_object_id(&tenant);
    Case::new()
        .with_tenant(tenant)
        .env("ARM_CLIENT_SECRET", "")
        .env("ARM_USE_OIDC", "true")
        .env("ACTIONS_ID_TOKEN_REQUEST_URL", &request_url)
        .env("ACTIONS_ID_TOKEN_REQUEST_TOKEN", &request_token)
        .step(Step::Apply(config()))
        .step(Step::check(expect_principal("oidc", object_id)))
        .run();
}

#[test]
fn terraform_signs_in_with_a_managed_identity() {
    let tenant = FakeTenant::start();
    let (mi_client_id, mi_object_id) = {
        let t = tenant.state.tenant();
        let mi = &t.auth.managed_identities[0];
        (mi.app_id.clone(), mi.object_id.clone())
    };
    let imds = format!("{}/metadata/identity/oauth2/token", tenant.base_url);
    Case::new()
        .with_tenant(tenant)
        .env("ARM_CLIENT_SECRET", "")
        .env("ARM_CLIENT_ID", &mi_client_id)
        .env("ARM_USE_MSI", "true")
        .env("ARM_MSI_ENDPOINT", &imds)
        .step(Step::Apply(config()))
        .step(Step::check(expect_principal(
            "managed_identity",
            mi_object_id,
        )))
        .run();
}

#[test]
fn terraform_signs_in_with_a_client_certificate_file() {
    let tenant = FakeTenant::start();
    let certificate = ClientCertificate::new("breakglass-e2e");
    tenant.register_client_certificate(&certificate);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("client.pem");
    std::fs::write(&path, certificate.bundle()).unwrap();
    let object_id = provider_object_id(&tenant);
    Case::new()
        .with_tenant(tenant)
        .env("ARM_CLIENT_SECRET", "")
        .env("ARM_CLIENT_CERTIFICATE_PATH", path.to_str().unwrap())
        .step(Step::Apply(config()))
        .step(Step::check(expect_principal(
            "client_certificate",
            object_id,
        )))
        .run();
}
