//! `breakglass_client_config` read through the provider's own `configure`, against the emulated
//! tenant: the ids must be the seed's, whichever way they were obtained.

use std::collections::HashMap;
use std::sync::Arc;

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

fn client_config(provider: &BreakglassProvider) -> Arc<dyn DataSource> {
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
