//! `breakglass_signin_alert` end to end: real terraform, the provider and the emulated tenant's
//! Azure Monitor — rules validated against the workspace's tables, evaluated on the emulated
//! clock over simulated sign-ins and Entra audit records, notifications to the action group's
//! receivers (with Azure Monitor's SMS rate limit).
//!
//! Rate limits shape the firing test: Azure Monitor texts a number at most once every five
//! minutes, so each scenario gets its own evaluation period (the clock moves 5 minutes and a
//! second between them) and expects one e-mail and one SMS; a last scenario signs both
//! accounts in within one period and expects two e-mails but one SMS, the other recorded
//! `delivered: false, suppressedReason: "RateLimited"`.

use std::collections::BTreeMap;

use reqwest::Method;
use serde_json::{json, Value as Json};

use crate::harness::{Case, FakeTenant, Stage, Step};
use crate::monitor_support::{
    action_group, diagnostic_setting, header, plan_output_matches, plan_proposes, requests,
    with_bad_line, writes, Admin, ALICE_UPN, BAD_INPUT, EMAIL_AND_SMS, RG, SUB, WORKSPACE,
};

const ADDRESS: &str = "breakglass_signin_alert.bg";
const RULE: &str = "bg-signin";
const TAMPER: &str = "bg-signin-tamper";
const API: &str = "2023-12-01";
const ERIN: &str = "5d2c6f0e-3b1a-4c8e-9f7d-0a1b2c3d4e06";
const ERIN_UPN: &str = "erin@contoso.com";
const PRIMARY_UPN: &str = "bg-01@contoso.onmicrosoft.com";
/// A UPN with a quote in it: the query must carry it as data.
const SECONDARY_UPN: &str = "bg-o'hara@contoso.onmicrosoft.com";
/// One evaluation period (PT5M) and a second: every evaluation that was due has run.
const PERIOD: u64 = 301;

fn rule_path(name: &str) -> String {
    format!("/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.Insights/scheduledQueryRules/{name}")
}

fn alert(accounts: &str, extra: &str) -> String {
    format!(
        "resource \"breakglass_signin_alert\" \"bg\" {{\n  resource_group_name = \"{RG}\"\n  name                = \"{RULE}\"\n  location            = \"westeurope\"\n  accounts            = {accounts}\n  workspace_id        = \"{WORKSPACE}\"\n  action_group_ids    = [breakglass_action_group.oncall.id]\n{extra}}}\n"
    )
}

/// The lifecycle configuration: the action group and an alert watching Erin (a seed user).
fn lifecycle_config(extra: &str) -> String {
    format!(
        "{}{}{}",
        header(),
        action_group(EMAIL_AND_SMS),
        alert(&format!("[\"{ERIN}\"]"), extra)
    )
}

/// The whole monitoring chain: two new accounts, the Entra export, the action group and the
/// alert, wired together as a module would.
fn chain_config(extra: &str) -> String {
    format!(
        "{}\
resource \"breakglass_account\" \"primary\" {{\n  user_principal_name = \"{PRIMARY_UPN}\"\n  display_name        = \"Emergency Access 01\"\n  deletion_protection = false\n}}\n\
resource \"breakglass_account\" \"secondary\" {{\n  user_principal_name = \"{SECONDARY_UPN}\"\n  display_name        = \"Emergency Access 02\"\n  deletion_protection = false\n}}\n\
{}{}{}",
        header(),
        diagnostic_setting("breakglass-monitoring", ""),
        action_group(EMAIL_AND_SMS),
        alert(
            "[breakglass_account.primary.object_id, breakglass_account.secondary.object_id]",
            extra
        )
    )
}

fn stored_rule(tenant: &FakeTenant, name: &str) -> Option<Json> {
    let t = tenant.state.tenant();
    t.arm
        .scheduled_query_rules
        .list_latest()
        .into_iter()
        .find(|r| r["name"] == name)
        .map(|r| Json::Object(r.clone()))
}

fn expect(ok: bool, what: impl FnOnce() -> String) -> Result<(), String> {
    if ok {
        Ok(())
    } else {
        Err(what())
    }
}

fn case() -> Case {
    Case::new()
        .with_tenant(FakeTenant::start())
        .env("ARM_SUBSCRIPTION_ID", SUB)
}

// ---------------------------------------------------------------------------------------------
// Lifecycle

/// Create (on a workspace without Entra tables: warned, validation skipped), plan empty,
/// import by id in any case, drift of each kind shown and healed (rule disabled, tamper
/// threshold raised, tamper rule deleted, query edited, account renamed), update in place,
/// tamper rule turned off, destroy.
#[test]
fn signin_alert_lifecycle() {
    case()
        .step(Step::check(|ctx| {
            ctx.workspace.write_config(&lifecycle_config(""));
            let warned = plan_output_matches(
                ctx,
                "The workspace has no Entra log tables yet.*no SigninLogs, \
                 AADNonInteractiveUserSignInLogs, AuditLogs table yet.*skipQueryValidation",
            );
            ctx.workspace.write_config("");
            warned
        }))
        .step(Step::Apply(lifecycle_config("")))
        .step(Step::check(|ctx| {
            let rule = stored_rule(ctx.tenant(), RULE).ok_or("the sign-in rule is missing")?;
            let p = &rule["properties"];
            let condition = &p["criteria"]["allOf"][0];
            let query = condition["query"].as_str().unwrap_or_default();
            expect(p["severity"] == 0 && p["enabled"] == true, || format!("{rule:#}"))?;
            expect(p["autoMitigate"] == false, || "autoMitigate should be false".into())?;
            expect(p["skipQueryValidation"] == true, || {
                "a workspace without SigninLogs needs skipQueryValidation".into()
            })?;
            expect(
                condition["dimensions"] == json!([{"name": "BreakGlassAccount", "operator": "Include", "values": ["*"]}]),
                || format!("dimensions: {}", condition["dimensions"]),
            )?;
            expect(
                query.contains(&format!("UserId in~ (\"{ERIN}\") or UserPrincipalName in~ (\"{ERIN_UPN}\")")),
                || format!("query: {query}"),
            )?;
            let state_query = ctx.state.attribute(ADDRESS, "query")?;
            expect(state_query == query, || format!("state shows {state_query}"))?;
            expect(
                ctx.state.attribute(ADDRESS, "user_principal_names")? == json!({ERIN: ERIN_UPN}),
                || "user_principal_names".into(),
            )?;
            expect(
                ctx.state.attribute(ADDRESS, "query_validation_skipped")? == true,
                || "query_validation_skipped should be true".into(),
            )?;
            let tamper = stored_rule(ctx.tenant(), TAMPER).ok_or("the tamper rule is missing")?;
            let tq = tamper["properties"]["criteria"]["allOf"][0]["query"].as_str().unwrap_or_default();
            expect(
                tamper["properties"]["severity"] == 1
                    && tq.contains(&format!("TargetResources has \"{ERIN}\"")),
                || format!("{tamper:#}"),
            )
        }))
        .step(Step::import_state_verify(ADDRESS, &[]))
        .step(Step::import_verify(ADDRESS, rule_path(RULE).to_uppercase(), &[]))
        // Drift: the rule disabled in the portal.
        .step(Step::check(|ctx| {
            Admin::new(ctx.tenant()).arm(
                Method::PATCH,
                &rule_path(RULE),
                API,
                Some(json!({"properties": {"enabled": false}})),
            );
            plan_proposes(ctx, &["~ enabled += false -> true"])
        }))
        .step(Step::Apply(lifecycle_config("")))
        .step(Step::check(|ctx| {
            let rule = stored_rule(ctx.tenant(), RULE).ok_or("the rule is missing")?;
            expect(rule["properties"]["enabled"] == true, || "not re-enabled".into())
        }))
        // Drift: the tamper rule's threshold raised so it never fires.
        .step(Step::check(|ctx| {
            let admin = Admin::new(ctx.tenant());
            let mut body = admin.arm(Method::GET, &rule_path(TAMPER), API, None);
            body["properties"]["criteria"]["allOf"][0]["threshold"] = json!(1000);
            body["properties"]["skipQueryValidation"] = json!(true);
            for k in ["id", "name", "type"] {
                body.as_object_mut().unwrap().remove(k);
            }
            admin.arm(Method::PUT, &rule_path(TAMPER), API, Some(body));
            plan_proposes(
                ctx,
                &["~ rule_drift", "tamper rule: fires on Count GreaterThan 1000"],
            )
        }))
        .step(Step::Apply(lifecycle_config("")))
        .step(Step::check(|ctx| {
            let t = stored_rule(ctx.tenant(), TAMPER).ok_or("the tamper rule is missing")?;
            let threshold = &t["properties"]["criteria"]["allOf"][0]["threshold"];
            expect(threshold.as_f64() == Some(0.0), || format!("threshold {threshold}"))
        }))
        // Drift: the tamper rule deleted.
        .step(Step::check(|ctx| {
            Admin::new(ctx.tenant()).arm(Method::DELETE, &rule_path(TAMPER), API, None);
            plan_proposes(ctx, &["tamper rule: bg-signin-tamper does not exist"])
        }))
        .step(Step::Apply(lifecycle_config("")))
        .step(Step::check(|ctx| {
            expect(stored_rule(ctx.tenant(), TAMPER).is_some(), || "not recreated".into())
        }))
        // Drift: the query edited to watch nobody.
        .step(Step::check(|ctx| {
            let admin = Admin::new(ctx.tenant());
            let mut body = admin.arm(Method::GET, &rule_path(RULE), API, None);
            body["properties"]["criteria"]["allOf"][0]["query"] = json!(
                "union isfuzzy=true SigninLogs, AADNonInteractiveUserSignInLogs | where UserId in~ (\"00000000-0000-0000-0000-000000000000\") | extend BreakGlassAccount = UserPrincipalName | summarize count() by BreakGlassAccount"
            );
            for k in ["id", "name", "type"] {
                body.as_object_mut().unwrap().remove(k);
            }
            admin.arm(Method::PUT, &rule_path(RULE), API, Some(body));
            plan_proposes(ctx, &["~ query", "00000000-0000-0000-0000-000000000000"])
        }))
        .step(Step::Apply(lifecycle_config("")))
        // The account renamed: the looked-up UPN changes the query.
        .step(Step::check(|ctx| {
            Admin::new(ctx.tenant()).graph(
                Method::PATCH,
                &format!("/users/{ERIN}"),
                Some(json!({"userPrincipalName": "erin.renamed@contoso.com"})),
            );
            plan_proposes(ctx, &["~ query", "erin.renamed@contoso.com"])
        }))
        .step(Step::Apply(lifecycle_config("")))
        .step(Step::check(|ctx| {
            let rule = stored_rule(ctx.tenant(), RULE).ok_or("the rule is missing")?;
            let q = rule["properties"]["criteria"]["allOf"][0]["query"].to_string();
            expect(q.contains("erin.renamed@contoso.com"), || q.clone())
        }))
        // Update in place: severity, schedule, interactive only, tamper severity.
        .step(Step::Apply(lifecycle_config(
            "  severity                = 1\n  evaluation_frequency    = \"PT10M\"\n  window_size             = \"PT10M\"\n  include_non_interactive = false\n  tamper_alert {\n    severity = 3\n  }\n",
        )))
        .step(Step::check(|ctx| {
            let rule = stored_rule(ctx.tenant(), RULE).ok_or("the rule is missing")?;
            let p = &rule["properties"];
            let q = p["criteria"]["allOf"][0]["query"].as_str().unwrap_or_default();
            expect(
                p["severity"] == 1 && p["evaluationFrequency"] == "PT10M" && !q.contains("AADNonInteractive"),
                || format!("{rule:#}"),
            )?;
            let t = stored_rule(ctx.tenant(), TAMPER).ok_or("the tamper rule is missing")?;
            expect(t["properties"]["severity"] == 3, || format!("{t:#}"))?;
            let deletes = requests(ctx.tenant(), "^DELETE$", &format!("scheduledQueryRules/{RULE}$"));
            expect(deletes.is_empty(), || format!("the update replaced the rule: {deletes:?}"))
        }))
        // The tamper rule turned off: deleted, the sign-in rule stays.
        .step(Step::Apply(lifecycle_config(
            "  tamper_alert {\n    enabled = false\n  }\n",
        )))
        .step(Step::check(|ctx| {
            expect(stored_rule(ctx.tenant(), TAMPER).is_none(), || "tamper rule still there".into())?;
            expect(stored_rule(ctx.tenant(), RULE).is_some(), || "sign-in rule gone".into())?;
            expect(
                ctx.state.attribute(ADDRESS, "tamper_alert_id")? == Json::Null,
                || "tamper_alert_id should be null".into(),
            )
        }))
        .step(Step::destroy_check(|ctx| {
            match (stored_rule(ctx.tenant(), RULE), stored_rule(ctx.tenant(), TAMPER)) {
                (None, None) => Ok(()),
                left => Err(format!("rules left: {left:?}")),
            }
        }))
        .run();
}

/// A location change replaces the rules (ARM marks it create-only); the same region spelled
/// as the portal does (`West Europe`) is no replacement, only an in-place update of the
/// spelling.
#[test]
fn signin_alert_replaces_only_for_location() {
    case()
        .step(Step::Apply(lifecycle_config("")))
        .step(Step::check(|ctx| {
            ctx.workspace
                .write_config(&lifecycle_config("").replace("westeurope", "northeurope"));
            let replaced = plan_proposes(ctx, &["must be replaced", "# forces replacement"]);
            ctx.workspace
                .write_config(&lifecycle_config("").replace("westeurope", "West Europe"));
            let out =
                ctx.workspace
                    .run(&["plan", "-detailed-exitcode", "-input=false", "-no-color"]);
            ctx.workspace.write_config(&lifecycle_config(""));
            replaced?;
            let text = out.flattened();
            expect(
                out.exit_code == Some(2)
                    && text.contains("update in-place")
                    && !text.contains("replaced"),
                || format!("\"West Europe\" is westeurope; expected no replacement\n{out}"),
            )
        }))
        .run();
}

/// The bad-input rows for this resource: a diagnostic on the attribute, and no write.
#[test]
fn signin_alert_bad_input_writes_nothing() {
    let rows: Vec<_> = BAD_INPUT
        .iter()
        .filter(|b| b.resource == "breakglass_signin_alert")
        .collect();
    assert_eq!(rows.len(), 3);
    for bad in rows {
        let cfg = with_bad_line(&lifecycle_config(""), bad);
        let attribute = bad.attribute;
        case()
            .step(Step::expect_error(cfg.clone(), Stage::Validate, bad.says))
            .step(Step::expect_error(cfg, Stage::Apply, bad.says))
            .step(Step::check(move |ctx| {
                match writes(ctx.tenant()).as_slice() {
                    [] => Ok(()),
                    w => Err(format!("bad {attribute} still wrote {w:?}")),
                }
            }))
            .run();
    }
}

// ---------------------------------------------------------------------------------------------
// The alert fires

/// The notifications of one rule, as (receiver kind, address, delivered, dimensions).
fn of_rule(
    notifications: &[Json],
    rule: &str,
) -> Vec<(String, String, bool, BTreeMap<String, String>)> {
    notifications
        .iter()
        .filter(|n| n["ruleName"] == rule)
        .map(|n| {
            let dims = n["dimensions"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|d| {
                    (
                        d["name"].as_str().unwrap_or_default().to_owned(),
                        d["value"].as_str().unwrap_or_default().to_owned(),
                    )
                })
                .collect();
            (
                n["receiverKind"].as_str().unwrap_or_default().to_owned(),
                n["address"].as_str().unwrap_or_default().to_owned(),
                n["delivered"] == true,
                dims,
            )
        })
        .collect()
}

/// One e-mail and one SMS for `rule`, both delivered, naming `dimensions`; nothing else.
fn mail_and_text(
    notifications: &[Json],
    rule: &str,
    dimensions: &[(&str, &str)],
) -> Result<(), String> {
    let want: BTreeMap<String, String> = dimensions
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let mut got = of_rule(notifications, rule);
    got.sort();
    let expected = vec![
        (
            "email".to_owned(),
            "soc@contoso.com".to_owned(),
            true,
            want.clone(),
        ),
        ("sms".to_owned(), "+1 5551234567".to_owned(), true, want),
    ];
    expect(got == expected && notifications.len() == 2, || {
        format!("expected one e-mail and one SMS for {rule} {dimensions:?}, got {notifications:#?}")
    })
}

/// The acceptance test the break-glass procedure ends with, offline: each account signing in
/// — interactive and non-interactive, failed and successful, its UPN in another case — mails
/// and texts the receivers within one evaluation period; another user's sign-in notifies no
/// one; a password reset of an account raises the tamper alert.
#[test]
fn signin_alert_fires_for_every_sign_in_of_the_accounts_and_for_tampering() {
    case()
        .step(Step::Apply(chain_config("")))
        .step(Step::check(|ctx| {
            let admin = Admin::new(ctx.tenant());
            let skipped = ctx.state.attribute(ADDRESS, "query_validation_skipped")?;
            expect(skipped == true, || "a fresh workspace has no SigninLogs yet".into())?;
            admin.take_notifications();
            let scenarios: [(&str, Json, &str); 4] = [
                (
                    "primary, interactive, successful",
                    json!({"userPrincipalName": PRIMARY_UPN, "interactive": true}),
                    PRIMARY_UPN,
                ),
                (
                    "primary, non-interactive, failed, UPN in upper case",
                    json!({"userPrincipalName": PRIMARY_UPN.to_uppercase(), "interactive": false, "success": false}),
                    PRIMARY_UPN,
                ),
                (
                    "secondary, interactive, wrong password, UPN in mixed case",
                    json!({"userPrincipalName": "BG-O'Hara@Contoso.onmicrosoft.com", "interactive": true, "password": "not-the-password"}),
                    SECONDARY_UPN,
                ),
                (
                    "secondary, non-interactive, successful",
                    json!({"userPrincipalName": SECONDARY_UPN, "interactive": false}),
                    SECONDARY_UPN,
                ),
            ];
            for (what, event, account) in scenarios {
                let signed_in = admin.sign_in(event);
                let failed = signed_in["resultType"] != "0";
                expect(failed == (what.contains("fail") || what.contains("wrong")), || {
                    format!("{what}: the sign-in was recorded as {signed_in}")
                })?;
                admin.advance(PERIOD);
                let got = admin.take_notifications();
                mail_and_text(&got, RULE, &[("BreakGlassAccount", account)])
                    .map_err(|e| format!("{what}: {e}"))?;
            }
            // Another user: nobody is notified.
            admin.sign_in(json!({"userPrincipalName": ALICE_UPN}));
            admin.advance(PERIOD);
            let got = admin.take_notifications();
            expect(got.is_empty(), || format!("alice's sign-in notified: {got:#?}"))?;

            // Tampering: the primary account's password reset through Graph.
            let primary = ctx.state.attribute("breakglass_account.primary", "object_id")?;
            admin.graph(
                Method::PATCH,
                &format!("/users/{}", primary.as_str().unwrap()),
                Some(json!({"passwordProfile": {"password": "Tamp3red-Passw0rd-!", "forceChangePasswordNextSignIn": false}})),
            );
            admin.advance(PERIOD);
            let got = admin.take_notifications();
            mail_and_text(
                &got,
                TAMPER,
                &[("OperationName", "Reset password"), ("Target", PRIMARY_UPN)],
            )
            .map_err(|e| format!("password reset: {e}"))?;

            // Both accounts within one period: two e-mails, one SMS (rate limit).
            admin.advance(PERIOD);
            admin.take_notifications();
            admin.sign_in(json!({"userPrincipalName": PRIMARY_UPN}));
            admin.sign_in(json!({"userPrincipalName": SECONDARY_UPN}));
            admin.advance(PERIOD);
            let got = admin.take_notifications();
            let signin = of_rule(&got, RULE);
            let mails = signin.iter().filter(|n| n.0 == "email" && n.2).count();
            let texts: Vec<bool> = signin.iter().filter(|n| n.0 == "sms").map(|n| n.2).collect();
            let limited = got
                .iter()
                .filter(|n| n["receiverKind"] == "sms" && n["suppressedReason"] == "RateLimited")
                .count();
            expect(mails == 2 && texts.len() == 2 && limited == 1, || {
                format!("expected 2 e-mails and 1 of 2 SMS delivered: {got:#?}")
            })
        }))
        // Now that logs flow, a write validates the query again.
        .step(Step::Apply(chain_config("  severity = 1\n")))
        .step(Step::check(|ctx| {
            let rule = stored_rule(ctx.tenant(), RULE).ok_or("the rule is missing")?;
            expect(rule["properties"]["skipQueryValidation"] == false, || {
                "the tables exist now; validation should not be skipped".into()
            })?;
            expect(
                ctx.state.attribute(ADDRESS, "query_validation_skipped")? == false,
                || "query_validation_skipped should be false".into(),
            )
        }))
        .run();
}

// ---------------------------------------------------------------------------------------------
// The query against an independent KQL implementation

mod query_semantics {
    use breakglass::resources::signin_alert::query::{signin_query, tamper_query, Account};
    use fake_tenant::arm::kql::{self, Catalog, Schema, Value};
    use fake_tenant::arm::monitor::schemas;
    use proptest::prelude::*;
    use serde_json::{json, Map, Value as Json};

    /// Rows of the sign-in tables and `AuditLogs`, as the emulator's workspaces hold them.
    struct Rows {
        signins: Vec<Map<String, Json>>,
        audit: Vec<Map<String, Json>>,
    }

    impl Catalog for Rows {
        fn schema(&self, table: &str) -> Option<Schema> {
            ["SigninLogs", "AADNonInteractiveUserSignInLogs", "AuditLogs"]
                .contains(&table)
                .then(|| schemas::schema(table))
        }
        fn rows(&self, table: &str) -> Vec<Vec<Value>> {
            let records = match table {
                "SigninLogs" => &self.signins,
                "AuditLogs" => &self.audit,
                _ => return Vec::new(),
            };
            records.iter().map(|r| schemas::row(table, r)).collect()
        }
    }

    fn signin(user_id: &str, upn: &str) -> Map<String, Json> {
        let Json::Object(m) = json!({
            "TimeGenerated": "2026-01-01T00:00:00Z", "UserId": user_id,
            "UserPrincipalName": upn, "ResultType": "50126", "Category": "SignInLogs",
        }) else {
            unreachable!()
        };
        m
    }

    /// The `BreakGlassAccount` values the query returns.
    fn matched(query: &str, rows: &Rows) -> Vec<String> {
        let parsed = kql::parse(query).unwrap_or_else(|e| panic!("{e:?}\n{query}"));
        let table = kql::run(&parsed, rows, 0).unwrap_or_else(|e| panic!("{e:?}\n{query}"));
        let i = table
            .column_index("BreakGlassAccount")
            .expect("dimension column");
        let mut out: Vec<String> = table.rows.iter().map(|r| r[i].to_text()).collect();
        out.sort();
        out
    }

    fn upn_text() -> impl Strategy<Value = String> {
        let pieces = prop_oneof![
            Just("\"".to_owned()),
            Just("'".to_owned()),
            Just("\\".to_owned()),
            Just(") or UserId != \"".to_owned()),
            Just("\" or true or \"".to_owned()),
            Just("\n| take 0\n//".to_owned()),
            "[a-zA-Z0-9._-]{1,6}",
        ];
        prop::collection::vec(pieces, 1..6).prop_map(|p| format!("{}@contoso.com", p.concat()))
    }

    const ID: &str = "5d2c6f0e-3b1a-4c8e-9f7d-0a1b2c3d4e01";
    const OTHER: &str = "5d2c6f0e-3b1a-4c8e-9f7d-0a1b2c3d4eff";

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Whatever the UPN, the emulator's KQL finds exactly the account's sign-ins — by id,
        /// or by the UPN in another case — and never a decoy whose UPN spells an injection.
        #[test]
        fn the_query_matches_the_account_and_nothing_else(upn in upn_text(), decoy in upn_text()) {
            prop_assume!(!decoy.eq_ignore_ascii_case(&upn));
            let accounts = [Account { object_id: ID.into(), user_principal_name: Some(upn.clone()) }];
            let q = signin_query(&accounts, true);
            let rows = Rows {
                signins: vec![
                    signin(ID, "someone-else@contoso.com"),
                    signin("", &upn.to_uppercase()),
                    signin(OTHER, &decoy),
                    signin(OTHER, &format!("{upn}x")),
                ],
                audit: Vec::new(),
            };
            // One series, named by the account's UPN, counting the id and the UPN match.
            let got = matched(&q, &rows);
            prop_assert_eq!(got.len(), 1, "{}", q);
            prop_assert_eq!(&got[0], &upn);
            prop_assert!(kql::parse(&tamper_query(&accounts)).is_ok());
        }
    }

    #[test]
    fn the_tamper_query_matches_changes_to_the_accounts_and_any_policy_change() {
        let accounts = [Account {
            object_id: ID.into(),
            user_principal_name: Some("bg@contoso.com".into()),
        }];
        let record = |operation: &str, target: &str| {
            let Json::Object(m) = json!({
                "TimeGenerated": "2026-01-01T00:00:00Z", "OperationName": operation,
                "Category": "UserManagement",
                "TargetResources": [{"id": target, "type": "User"}],
            }) else {
                unreachable!()
            };
            m
        };
        let rows = Rows {
            signins: Vec::new(),
            audit: vec![
                record("Reset password", ID),
                record("Delete user", ID),
                record("Reset password", OTHER),
                record("Update user", ID),
                record("update conditional access policy", "policy-1"),
            ],
        };
        let parsed = kql::parse(&tamper_query(&accounts)).unwrap();
        let table = kql::run(&parsed, &rows, 0).unwrap();
        let (op, target) = (
            table.column_index("OperationName").unwrap(),
            table.column_index("Target").unwrap(),
        );
        let mut got: Vec<(String, String)> = table
            .rows
            .iter()
            .map(|r| (r[op].to_text(), r[target].to_text()))
            .collect();
        got.sort();
        assert_eq!(
            got,
            [
                ("Delete user".to_owned(), "bg@contoso.com".to_owned()),
                ("Reset password".to_owned(), "bg@contoso.com".to_owned()),
                (
                    "update conditional access policy".to_owned(),
                    "conditional-access policy".to_owned()
                ),
            ]
        );
    }
}
