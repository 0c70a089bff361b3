//! The typed Azure Monitor calls (`azure::diagnostic_settings`, `action_groups`, `alert_rules`,
//! `log_analytics`) against the emulated tenant: round trips, the typed error predicates the
//! resources will turn into diagnostics, and the consistency wait after a write.

use std::collections::BTreeMap;

use breakglass::azure::action_groups::{
    self, ActionGroupSpec, ActionGroups, EmailReceiver, SmsReceiver,
};
use breakglass::azure::alert_rules::{
    self, Condition, Dimension, ScheduledQueryRuleSpec, ScheduledQueryRules,
};
use breakglass::azure::diagnostic_settings::{
    self, DiagnosticSettingSpec, EntraDiagnosticSettings, MAX_SETTINGS,
};
use breakglass::azure::log_analytics::{self, LogAnalytics};
use breakglass::azure::AzureClients;
use breakglass::provider::{AuthMethod, Secret};
use serde_json::json;

use crate::azure_support::{deadline, fast_policy, Emulator};

const SUB: &str = "eeb0c733-9a1c-437b-b310-e18599b1b281";
const RG: &str = "rg-breakglass-monitoring";
const WORKSPACE: &str = "/subscriptions/eeb0c733-9a1c-437b-b310-e18599b1b281/resourceGroups/rg-breakglass-monitoring/providers/Microsoft.OperationalInsights/workspaces/law-breakglass";

/// Clients signed in as the seed's `index`-th application.
fn clients_as(tenant: &Emulator, index: usize) -> AzureClients {
    let seed = fake_tenant::seed::load("default").unwrap();
    let app = &seed["auth"]["applications"][index];
    let mut config = tenant.config(AuthMethod::ClientSecret {
        secret: Secret::new(app["clientSecrets"][0].as_str().unwrap().to_owned()),
    });
    config.client_id = Some(app["appId"].as_str().unwrap().to_owned());
    let source = breakglass::azure::auth::source_from_config(&config, &|_| None).unwrap();
    tenant.clients_with_source(config, source, fast_policy())
}

fn setting(name: &str, categories: &[&str]) -> DiagnosticSettingSpec {
    DiagnosticSettingSpec {
        name: name.to_owned(),
        workspace_id: WORKSPACE.to_owned(),
        categories: categories.iter().map(|c| (*c).to_owned()).collect(),
    }
}

#[tokio::test]
async fn entra_diagnostic_settings_round_trip_and_the_five_setting_limit() {
    let tenant = Emulator::start().await;
    let clients = tenant.clients();
    let settings = EntraDiagnosticSettings::new(&clients.arm);
    let d = deadline();

    let stored = settings
        .put(
            &setting(
                "Log to log analytics",
                &["SignInLogs", "NonInteractiveUserSignInLogs", "AuditLogs"],
            ),
            &d,
        )
        .await
        .unwrap();
    assert_eq!(stored.name, "Log to log analytics");
    assert_eq!(
        stored.enabled_categories(),
        ["SignInLogs", "NonInteractiveUserSignInLogs", "AuditLogs"]
    );
    assert!(stored.exports_to(&WORKSPACE.to_ascii_lowercase(), "signinlogs"));
    let read = settings
        .wait_readable("Log to log analytics", &d)
        .await
        .unwrap();
    assert_eq!(read, stored);
    assert!(settings
        .categories(&d)
        .await
        .unwrap()
        .contains(&"AuditLogs".to_owned()));
    assert_eq!(settings.get("absent", &d).await.unwrap(), None);

    // The provider's principal holds an Azure role at the aadiam scope (seed).
    let roles = settings
        .role_assignments_of(&tenant.object_id, &d)
        .await
        .unwrap();
    assert!(
        roles.iter().any(|r| r.reaches_aadiam()
            && r.role_definition_id == diagnostic_settings::CONTRIBUTOR_ROLE_ID),
        "{roles:?}"
    );

    for i in 1..MAX_SETTINGS {
        settings
            .put(&setting(&format!("team-{i}"), &["AuditLogs"]), &d)
            .await
            .unwrap();
    }
    assert_eq!(settings.list(&d).await.unwrap().len(), MAX_SETTINGS);
    let sixth = settings
        .put(&setting("one-too-many", &["AuditLogs"]), &d)
        .await
        .unwrap_err();
    assert!(
        diagnostic_settings::is_diagnostic_setting_limit(&sixth),
        "{sixth}"
    );
    assert!(!diagnostic_settings::is_aadiam_authorization_failed(&sixth));
    // Updating one of the five is fine.
    settings
        .put(&setting("team-1", &["SignInLogs"]), &d)
        .await
        .unwrap();

    assert!(settings.delete("Log to log analytics", &d).await.unwrap());
    assert!(!settings.delete("Log to log analytics", &d).await.unwrap());
}

#[tokio::test]
async fn a_principal_without_a_role_at_the_aadiam_scope_gets_a_typed_authorization_failure() {
    let tenant = Emulator::start().await;
    let helpdesk = clients_as(&tenant, 1);
    let settings = EntraDiagnosticSettings::new(&helpdesk.arm);
    let err = settings
        .put(&setting("to-law", &["SignInLogs"]), &deadline())
        .await
        .unwrap_err();
    assert!(
        diagnostic_settings::is_aadiam_authorization_failed(&err),
        "{err}"
    );
    let failure = diagnostic_settings::authorization_failure(&err).unwrap();
    assert_eq!(failure.object_id, "374cfff1-0fa8-48d6-a0c2-7cac102135c0");
    assert_eq!(failure.action, "microsoft.aadiam/diagnosticSettings/write");
    assert_eq!(
        failure.scope,
        "/providers/microsoft.aadiam/diagnosticSettings/to-law"
    );
    let err = settings.list(&deadline()).await.unwrap_err();
    assert!(
        diagnostic_settings::is_aadiam_authorization_failed(&err),
        "{err}"
    );
    // A 403 is final: no retries.
    assert_eq!(
        tenant
            .requests("PUT", "^/providers/microsoft.aadiam/")
            .await
            .len(),
        1
    );
}

fn group_spec(short_name: &str, email: &str) -> ActionGroupSpec {
    ActionGroupSpec {
        id: action_groups::id_of(SUB, RG, "ag-breakglass"),
        short_name: short_name.to_owned(),
        enabled: true,
        email_receivers: vec![EmailReceiver {
            name: "soc".into(),
            email_address: email.to_owned(),
            use_common_alert_schema: true,
            status: None,
        }],
        sms_receivers: vec![SmsReceiver {
            name: "oncall".into(),
            country_code: "1".into(),
            phone_number: "5551234567".into(),
            status: None,
        }],
        tags: BTreeMap::from([("purpose".to_owned(), "break-glass".to_owned())]),
    }
}

#[tokio::test]
async fn action_groups_are_created_read_patched_and_deleted() {
    let tenant = Emulator::start().await;
    let clients = tenant.clients();
    let groups = ActionGroups::new(&clients.arm);
    let d = deadline();
    let spec = group_spec("bg-alerts", "soc@contoso.com");

    let created = groups.put(&spec, &d).await.unwrap();
    assert_eq!(created.short_name, "bg-alerts");
    assert_eq!(created.location, "Global");
    assert!(created.enabled);
    assert_eq!(created.email_receivers[0].email_address, "soc@contoso.com");
    assert_eq!(
        created.email_receivers[0].status.as_deref(),
        Some("Enabled")
    );
    assert_eq!(created.sms_receivers[0].phone_number, "5551234567");
    assert!(created.other_receiver_kinds.is_empty());
    assert_eq!(created.tags["purpose"], "break-glass");
    let id = action_groups::parse_id(&created.id).unwrap();
    assert!(id.same_as(&spec.id));
    assert_eq!(groups.get(&id, &d).await.unwrap(), Some(created.clone()));

    let disabled = groups.set_enabled(&id, false, &d).await.unwrap();
    assert!(!disabled.enabled);
    assert_eq!(
        disabled.email_receivers, created.email_receivers,
        "PATCH keeps receivers"
    );

    let too_long = groups
        .put(&group_spec("thirteen-char", "soc@contoso.com"), &d)
        .await
        .unwrap_err();
    assert!(
        action_groups::is_short_name_too_long(&too_long),
        "{too_long}"
    );
    let bad_mail = groups
        .put(&group_spec("bg", "not-an-address"), &d)
        .await
        .unwrap_err();
    assert!(action_groups::is_receiver_rejected(&bad_mail), "{bad_mail}");

    assert!(groups.delete(&id, &d).await.unwrap());
    assert_eq!(groups.get(&id, &d).await.unwrap(), None);
    assert!(action_groups::parse_id("/subscriptions/x/resourceGroups/y").is_err());
}

#[tokio::test]
async fn a_fresh_write_is_awaited_until_reads_see_it() {
    let tenant = Emulator::start().await;
    tenant
        .settings(json!({"arm.replication_lag_ms": 1500}))
        .await;
    let clients = tenant.clients();
    let groups = ActionGroups::new(&clients.arm);
    let d = deadline();
    let spec = group_spec("bg-alerts", "soc@contoso.com");
    groups.put(&spec, &d).await.unwrap();
    assert_eq!(
        groups.get(&spec.id, &d).await.unwrap(),
        None,
        "not replicated yet"
    );
    let seen = groups.wait_readable(&spec.id, &d).await.unwrap();
    assert_eq!(seen.short_name, "bg-alerts");
}

fn signin_rule(skip_query_validation: bool, group: &str) -> ScheduledQueryRuleSpec {
    ScheduledQueryRuleSpec {
        id: alert_rules::id_of(SUB, RG, "bg-signin"),
        location: "westeurope".into(),
        display_name: Some("Break-glass account signed in".into()),
        description: None,
        severity: 0,
        enabled: true,
        evaluation_frequency: "PT5M".into(),
        window_size: "PT5M".into(),
        scopes: vec![WORKSPACE.to_owned()],
        conditions: vec![Condition {
            query: "union isfuzzy=true SigninLogs, AADNonInteractiveUserSignInLogs\n\
                    | where UserPrincipalName in~ (\"bg-01@contoso.onmicrosoft.com\")\n\
                    | summarize count() by UserPrincipalName"
                .into(),
            time_aggregation: "Count".into(),
            operator: "GreaterThan".into(),
            threshold: 0.0,
            metric_measure_column: None,
            dimensions: vec![Dimension::split_by("UserPrincipalName")],
        }],
        action_groups: vec![group.to_owned()],
        auto_mitigate: false,
        mute_actions_duration: None,
        skip_query_validation,
        tags: BTreeMap::new(),
    }
}

#[tokio::test]
async fn alert_rules_report_missing_tables_and_can_skip_validation() {
    let tenant = Emulator::start().await;
    let clients = tenant.clients();
    let d = deadline();
    let group = ActionGroups::new(&clients.arm)
        .put(&group_spec("bg-alerts", "soc@contoso.com"), &d)
        .await
        .unwrap();
    let rules = ScheduledQueryRules::new(&clients.arm);
    let logs = LogAnalytics::new(&clients.arm);
    let workspace = log_analytics::parse_workspace_id(WORKSPACE).unwrap();

    // A fresh workspace: no SigninLogs yet, so the service refuses the rule.
    assert!(!logs.has_table(&workspace, "SigninLogs", &d).await.unwrap());
    assert!(logs
        .tables(&workspace, &d)
        .await
        .unwrap()
        .contains(&"Heartbeat".to_owned()));
    let err = rules
        .put(&signin_rule(false, &group.id), &d)
        .await
        .unwrap_err();
    assert!(alert_rules::is_missing_table_query_error(&err), "{err}");
    assert_eq!(
        alert_rules::missing_table(&err).as_deref(),
        Some("SigninLogs")
    );

    // The documented way around it.
    let stored = rules.put(&signin_rule(true, &group.id), &d).await.unwrap();
    assert!(stored.skip_query_validation);
    assert_eq!(stored.severity, 0);
    assert!(!stored.auto_mitigate);
    assert_eq!(
        stored.conditions[0].dimensions,
        vec![Dimension::split_by("UserPrincipalName")]
    );
    assert_eq!(stored.action_groups, vec![group.id.clone()]);
    let id = alert_rules::parse_id(&stored.id).unwrap();
    assert_eq!(rules.get(&id, &d).await.unwrap(), Some(stored.clone()));

    // Once sign-ins flow, the table exists and validation passes.
    EntraDiagnosticSettings::new(&clients.arm)
        .put(&setting("to-law", &["SignInLogs"]), &d)
        .await
        .unwrap();
    tenant
        .admin(
            reqwest::Method::POST,
            "/arm/signins",
            Some(json!({"userPrincipalName": "alice@contoso.com"})),
        )
        .await;
    assert!(logs.has_table(&workspace, "SigninLogs", &d).await.unwrap());
    let validated = rules.put(&signin_rule(false, &group.id), &d).await.unwrap();
    assert!(!validated.skip_query_validation);

    let disabled = rules
        .patch(&id, Some(json!({"enabled": false})), None, &d)
        .await
        .unwrap();
    assert!(!disabled.enabled);
    assert_eq!(
        disabled.conditions, validated.conditions,
        "PATCH keeps the rest"
    );

    // A syntax error is a query error too, but not a missing table.
    let mut bad = signin_rule(false, &group.id);
    bad.conditions[0].query = "SigninLogs | whre x".into();
    let err = rules.put(&bad, &d).await.unwrap_err();
    let q = alert_rules::query_error(&err).unwrap();
    assert_eq!(
        (q.kind.as_str(), q.code.as_str()),
        ("SyntaxError", "SYN0002")
    );
    assert!(!alert_rules::is_missing_table_query_error(&err));

    assert!(rules.delete(&id, &d).await.unwrap());
    assert_eq!(rules.get(&id, &d).await.unwrap(), None);

    // A workspace that does not exist is an error, not "no table".
    let missing =
        log_analytics::parse_workspace_id(&WORKSPACE.replace("law-breakglass", "law-none"))
            .unwrap();
    assert!(logs
        .has_table(&missing, "SigninLogs", &d)
        .await
        .unwrap_err()
        .is_not_found());
    assert_eq!(
        logs.workspace(&workspace, &d)
            .await
            .unwrap()
            .unwrap()
            .customer_id,
        "8c9e0cad-3a03-46b1-a875-820cd81da093"
    );
}
