//! The `provider "breakglass"` block, proven with the real terraform binary: the schema
//! Terraform sees, validation pointing at the offending attribute, configuration from the
//! environment, config-over-environment precedence, and log levels and redaction as Terraform
//! records them.

use crate::harness::{
    required_providers, requires_terraform, Case, FakeTenant, Stage, Step, Workspace,
    PROVIDER_SOURCE,
};

/// Every attribute of the provider block; written out here, independently of the provider's
/// own table, so a renamed or dropped attribute fails this test.
const ATTRIBUTES: [&str; 18] = [
    "tenant_id",
    "client_id",
    "client_secret",
    "client_certificate",
    "client_certificate_path",
    "client_certificate_password",
    "use_oidc",
    "oidc_token",
    "oidc_request_url",
    "oidc_request_token",
    "use_msi",
    "msi_endpoint",
    "use_cli",
    "environment",
    "subscription_id",
    "login_endpoint",
    "graph_endpoint",
    "resource_manager_endpoint",
];

const SENSITIVE: [&str; 5] = [
    "client_secret",
    "client_certificate",
    "client_certificate_password",
    "oidc_token",
    "oidc_request_token",
];

/// A provider block and the smallest use of it. Terraform neither validates nor configures a
/// provider that nothing in the configuration uses (it only reads its schema), so every config
/// that must reach the provider reads the `breakglass_client_config` data source.
fn with_provider_block(body: &str) -> String {
    format!(
        "{}\nprovider \"breakglass\" {{\n{body}\n}}\n\ndata \"breakglass_client_config\" \"current\" {{}}\n",
        required_providers()
    )
}

#[test]
fn providers_schema_shows_every_attribute_with_a_description() {
    let Some(tf) = requires_terraform("1.0") else {
        return;
    };
    let ws = Workspace::new(tf, Vec::new());
    ws.write_config(&format!(
        "{}\nprovider \"breakglass\" {{}}\n",
        required_providers()
    ));
    let out = ws.ok(&["providers", "schema", "-json"]);
    let start = out.text.find('{').unwrap_or(0);
    let schemas: serde_json::Value = serde_json::Deserializer::from_str(&out.text[start..])
        .into_iter()
        .next()
        .and_then(Result::ok)
        .unwrap_or_else(|| panic!("no JSON from providers schema\n{out}"));
    let block = &schemas["provider_schemas"][PROVIDER_SOURCE]["provider"]["block"];
    let attributes = block["attributes"]
        .as_object()
        .unwrap_or_else(|| panic!("no provider attributes in\n{out}"));

    let mut names: Vec<&str> = attributes.keys().map(String::as_str).collect();
    names.sort_unstable();
    let mut expected = ATTRIBUTES.to_vec();
    expected.sort_unstable();
    assert_eq!(names, expected);

    for (name, attribute) in attributes {
        let description = attribute["description"].as_str().unwrap_or_default();
        assert!(
            description.trim().len() > 20,
            "{name} has no real description: {attribute}"
        );
        assert_eq!(attribute["optional"], true, "{name} should be optional");
        assert_eq!(
            attribute["sensitive"].as_bool().unwrap_or(false),
            SENSITIVE.contains(&name.as_str()),
            "{name}: sensitive flag"
        );
    }
    assert_eq!(attributes["use_msi"]["type"], "bool");
    assert_eq!(attributes["tenant_id"]["type"], "string");
    assert!(attributes["tenant_id"]["description"]
        .as_str()
        .unwrap()
        .contains("ARM_TENANT_ID"));
}

/// Schema descriptions are the single source of the docs, so every resource and data source
/// attribute — nested ones included — must have one, as Terraform reports them.
#[test]
fn every_resource_and_data_source_attribute_has_a_description() {
    let Some(tf) = requires_terraform("1.0") else {
        return;
    };
    let ws = Workspace::new(tf, Vec::new());
    ws.write_config(&format!(
        "{}\nprovider \"breakglass\" {{}}\n",
        required_providers()
    ));
    let out = ws.ok(&["providers", "schema", "-json"]);
    let start = out.text.find('{').unwrap_or(0);
    let schemas: serde_json::Value = serde_json::Deserializer::from_str(&out.text[start..])
        .into_iter()
        .next()
        .and_then(Result::ok)
        .unwrap_or_else(|| panic!("no JSON from providers schema\n{out}"));
    let provider = &schemas["provider_schemas"][PROVIDER_SOURCE];

    let mut missing = Vec::new();
    let mut checked = 0;
    for kind in [
        "resource_schemas",
        "data_source_schemas",
        "ephemeral_resource_schemas",
    ] {
        for (type_name, schema) in provider[kind].as_object().into_iter().flatten() {
            checked += 1;
            if text(&schema["block"]["description"]).is_empty() {
                missing.push(format!("{type_name} (the type itself)"));
            }
            undocumented(&schema["block"], type_name, &mut missing);
        }
    }
    assert!(
        checked > 0,
        "the provider offers no resource or data source\n{out}"
    );
    assert!(
        missing.is_empty(),
        "attributes without a description:\n  {}",
        missing.join("\n  ")
    );
}

fn text(v: &serde_json::Value) -> &str {
    v.as_str().unwrap_or_default().trim()
}

/// Collects `path.to.attribute` for every attribute or nested block without a description.
fn undocumented(block: &serde_json::Value, path: &str, missing: &mut Vec<String>) {
    for (name, attribute) in block["attributes"].as_object().into_iter().flatten() {
        let here = format!("{path}.{name}");
        if text(&attribute["description"]).is_empty() {
            missing.push(here.clone());
        }
        if attribute["nested_type"].is_object() {
            undocumented(&attribute["nested_type"], &here, missing);
        }
    }
    for (name, nested) in block["block_types"].as_object().into_iter().flatten() {
        let here = format!("{path}.{name}");
        if text(&nested["block"]["description"]).is_empty() {
            missing.push(format!("{here} (block)"));
        }
        undocumented(&nested["block"], &here, missing);
    }
}

#[test]
fn validate_names_the_bad_provider_attribute() {
    // Terraform prints the summary, then quotes the HCL line the attribute path points at.
    let cases = [
        (
            "tenant_id",
            "not-a-guid",
            r#"Invalid `tenant_id`[\s\S]*\d+:\s+tenant_id\s+= "not-a-guid"[\s\S]*must be a GUID"#,
        ),
        (
            "environment",
            "mars",
            r#"Unknown Azure environment[\s\S]*\d+:\s+environment\s+= "mars"[\s\S]*`public`, `usgovernment`, `china`"#,
        ),
        (
            "graph_endpoint",
            "http://example.com",
            r#"Invalid `graph_endpoint`[\s\S]*\d+:\s+graph_endpoint\s+= "http://example.com"[\s\S]*https://"#,
        ),
    ];
    let mut case = Case::new();
    for (attribute, value, pattern) in cases {
        case = case.step(Step::expect_error(
            with_provider_block(&format!("  {attribute} = \"{value}\"")),
            Stage::Validate,
            pattern,
        ));
    }
    case.step(Step::Validate(with_provider_block(
        "  tenant_id   = \"46810bcd-886d-469e-a664-c8d3691d74fd\"\n  environment = \"china\"\n  graph_endpoint = \"http://127.0.0.1:1\"",
    )))
    .run();
}

#[test]
fn validate_explains_conflicting_authentication_methods() {
    Case::new()
        .step(Step::expect_error(
            with_provider_block("  client_secret = \"not-a-real-secret\"\n  use_msi = true"),
            Stage::Validate,
            r"Conflicting authentication methods[\s\S]*`use_msi` selects managed identity[\s\S]*`client_secret`",
        ))
        .run();
}

/// Terraform configures the provider during plan to read the data source; the provider's INFO
/// line (which Terraform copies into its log as `provider.terraform-provider-breakglass:
/// provider configured`) proves ConfigureProvider ran and accepted the environment-only
/// configuration, and the data source's values prove the provider reached the tenant.
#[test]
fn plan_with_a_provider_configured_from_the_environment_succeeds() {
    let Some(tf) = requires_terraform("1.0") else {
        return;
    };
    let tenant = FakeTenant::start();
    let ws = Workspace::new(tf, tenant.provider_env());
    ws.write_config(&with_provider_block(""));
    let log = ws.dir().join("terraform.log");
    let log_path = log.to_str().unwrap();
    let out = ws.run_with(
        &["plan", "-input=false", "-no-color"],
        &[("TF_LOG_PROVIDER", "DEBUG"), ("TF_LOG_PATH", log_path)],
    );
    assert!(out.success(), "plan failed\n{out}");
    assert!(out.text.contains("No changes."), "{out}");

    let log_text = std::fs::read_to_string(&log).unwrap_or_default();
    let configured = log_text
        .lines()
        .find(|l| l.contains("provider configured"))
        .unwrap_or_else(|| panic!("provider was not configured; log:\n{log_text}\n{out}"));
    assert!(configured.contains("[INFO]"), "level kept: {configured}");
    assert!(configured.contains(&tenant.tenant_id), "{configured}");
    assert!(configured.contains("client secret"), "{configured}");
    assert!(configured.contains(&tenant.base_url), "{configured}");
    assert!(
        log_text.contains("resolved provider configuration"),
        "DEBUG lines pass at TF_LOG_PROVIDER=DEBUG"
    );
    assert!(
        !log_text.contains(&tenant.client_secret),
        "the client secret reached the log"
    );
}

#[test]
fn provider_log_level_follows_tf_log_provider() {
    let Some(tf) = requires_terraform("1.0") else {
        return;
    };
    let tenant = FakeTenant::start();
    let ws = Workspace::new(tf, tenant.provider_env());
    ws.write_config(&with_provider_block(""));
    let log = ws.dir().join("info.log");
    let out = ws.run_with(
        &["plan", "-input=false", "-no-color"],
        &[
            ("TF_LOG_PROVIDER", "INFO"),
            ("TF_LOG_PATH", log.to_str().unwrap()),
        ],
    );
    assert!(out.success(), "plan failed\n{out}");
    let log_text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(log_text.contains("provider configured"), "{log_text}");
    assert!(
        !log_text.contains("resolved provider configuration"),
        "a DEBUG line passed TF_LOG_PROVIDER=INFO:\n{log_text}"
    );
}

#[test]
fn block_settings_beat_the_environment() {
    let tenant = FakeTenant::start();
    Case::new()
        .with_tenant(tenant)
        // A broken environment value is harmless when the block sets the attribute …
        .env("ARM_ENVIRONMENT", "mars")
        .step(Step::Apply(with_provider_block(
            "  environment = \"public\"",
        )))
        .step(Step::check(|ctx| {
            let address = "data.breakglass_client_config.current";
            let tenant_id = ctx.state.attribute(address, "tenant_id")?;
            if tenant_id != ctx.tenant().tenant_id.as_str() {
                return Err(format!("signed in to tenant {tenant_id}"));
            }
            let method = ctx.state.attribute(address, "authentication_method")?;
            if method != "client_secret" {
                return Err(format!("authentication_method is {method}"));
            }
            Ok(())
        }))
        // … and is reported, naming the variable, when the block leaves it to the environment.
        .step(Step::expect_error(
            with_provider_block(""),
            Stage::Plan,
            r"Unknown Azure environment[\s\S]*ARM_ENVIRONMENT",
        ))
        .run();
}

#[test]
fn configure_reports_missing_sign_in_details_with_attribute_and_variable() {
    let Some(tf) = requires_terraform("1.0") else {
        return;
    };
    let tenant = FakeTenant::start();
    let mut env = tenant.provider_env();
    env.retain(|(k, _)| k != "ARM_TENANT_ID");
    let ws = Workspace::new(tf, env);
    ws.write_config(&with_provider_block(""));
    let out = ws.run(&["plan", "-input=false", "-no-color"]);
    assert!(!out.success(), "plan without a tenant id succeeded\n{out}");
    let expected = regex::Regex::new(
        r"Missing `tenant_id`[\s\S]*with client secret authentication needs this value\. Set `tenant_id` \(or the ARM_TENANT_ID environment variable\)",
    )
    .unwrap();
    assert!(out.matches(&expected), "{out}");
    assert!(
        !out.text.contains(&tenant.client_secret),
        "a diagnostic echoed the client secret\n{out}"
    );
}

#[test]
fn the_provider_block_example_is_valid() {
    let example = include_str!("../../examples/provider/provider.tf");
    Case::new()
        .step(Step::Validate(format!(
            "{example}\ndata \"breakglass_client_config\" \"current\" {{}}\n"
        )))
        .run();
}
