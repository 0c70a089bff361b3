//! `breakglass_entra_diagnostic_setting` end to end: real terraform, the provider and the
//! emulated tenant's aadiam provider (Azure RBAC at `/providers/Microsoft.aadiam`, the
//! five-setting limit, log delivery to the workspace).

use reqwest::Method;
use serde_json::{json, Value as Json};

use crate::harness::{Case, Ctx, FakeTenant, Stage, Step};
use crate::monitor_support::{
    app, diagnostic_setting, header, plan_output_matches, plan_proposes, requests, with_bad_line,
    writes, Admin, AADIAM_SETTINGS, BAD_INPUT, WORKSPACE,
};

const ADDRESS: &str = "breakglass_entra_diagnostic_setting.entra";
const NAME: &str = "breakglass-monitoring";
const API: &str = "2017-04-01";
const CONTRIBUTOR: &str = "b24988ac-6180-42a0-ab88-20f7382dd24c";
const READER: &str = "acdd72a7-3385-48ef-bd42-f606fba81ae7";

fn config(extra: &str) -> String {
    format!("{}{}", header(), diagnostic_setting(NAME, extra))
}

fn setting(tenant: &FakeTenant, name: &str) -> Option<Json> {
    let t = tenant.state.tenant();
    t.arm
        .diagnostic_settings
        .get_latest(&name.to_ascii_lowercase())
        .map(|s| Json::Object(s.clone()))
}

fn enabled_categories(setting: &Json) -> Vec<String> {
    let mut c: Vec<String> = setting["properties"]["logs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["enabled"] == true)
        .map(|l| l["category"].as_str().unwrap().to_owned())
        .collect();
    c.sort();
    c
}

fn other_setting(categories: &[&str]) -> Json {
    let logs: Vec<Json> = categories
        .iter()
        .map(|c| json!({"category": c, "enabled": true}))
        .collect();
    json!({"properties": {"workspaceId": WORKSPACE, "logs": logs}})
}

/// Create, plan empty, import by name (in another case too), drift in the tenant shown and
/// healed, categories changed in place, destroy.
#[test]
fn diagnostic_setting_lifecycle() {
    let tenant = FakeTenant::start();
    Case::new()
        .with_tenant(tenant)
        .step(Step::Apply(config("")))
        .step(Step::check(|ctx| {
            let s = setting(ctx.tenant(), NAME).ok_or("the setting is missing")?;
            let want = ["AuditLogs", "NonInteractiveUserSignInLogs", "SignInLogs"];
            if enabled_categories(&s) != want {
                return Err(format!("exports {:?}, expected {want:?}", enabled_categories(&s)));
            }
            if s["properties"]["workspaceId"] != WORKSPACE {
                return Err(format!("exports to {}", s["properties"]["workspaceId"]));
            }
            let id = ctx.state.attribute(ADDRESS, "id")?;
            if id != json!(format!("{AADIAM_SETTINGS}/{NAME}")) {
                return Err(format!("id is {id}"));
            }
            Ok(())
        }))
        .step(Step::import_verify(ADDRESS, NAME, &[]))
        .step(Step::import_verify(ADDRESS, NAME.to_uppercase(), &[]))
        .step(Step::import_verify(
            ADDRESS,
            format!("{AADIAM_SETTINGS}/{NAME}"),
            &[],
        ))
        // Drift: another administrator stops the audit log export.
        .step(Step::check(|ctx| {
            Admin::new(ctx.tenant()).arm(
                Method::PUT,
                &format!("{AADIAM_SETTINGS}/{NAME}"),
                API,
                Some(other_setting(&["SignInLogs"])),
            );
            plan_proposes(ctx, &["~ categories", "\\+ \"AuditLogs\""])
        }))
        .step(Step::Apply(config("")))
        .step(Step::check(|ctx| {
            let s = setting(ctx.tenant(), NAME).ok_or("the setting is missing")?;
            match enabled_categories(&s).len() {
                3 => Ok(()),
                _ => Err(format!("not healed: {:?}", enabled_categories(&s))),
            }
        }))
        // Update in place: more categories (the CISA SCuBA list's risk logs).
        .step(Step::Apply(config(
            "  categories   = [\"SignInLogs\", \"NonInteractiveUserSignInLogs\", \"AuditLogs\", \"RiskyUsers\", \"UserRiskEvents\"]\n",
        )))
        .step(Step::check(|ctx| {
            let s = setting(ctx.tenant(), NAME).ok_or("the setting is missing")?;
            if !enabled_categories(&s).contains(&"RiskyUsers".to_owned()) {
                return Err(format!("not updated: {:?}", enabled_categories(&s)));
            }
            let deletes = requests(ctx.tenant(), "^DELETE$", "diagnosticSettings");
            match deletes.is_empty() {
                true => Ok(()),
                false => Err(format!("an update deleted the setting: {deletes:?}")),
            }
        }))
        .step(Step::destroy_check(|ctx| match setting(ctx.tenant(), NAME) {
            None => Ok(()),
            Some(s) => Err(format!("the setting is still there: {s}")),
        }))
        .run();
}

/// A service principal without an Azure role at /providers/Microsoft.aadiam is told at plan
/// time which role to grant where, and how; nothing is written. Reader there is not enough;
/// Contributor is.
#[test]
fn diagnostic_setting_explains_the_missing_aadiam_role_before_any_write() {
    let tenant = FakeTenant::start();
    let (helpdesk_app, helpdesk_oid, helpdesk_secret) = app("helpdesk-automation");
    let grant = move |ctx: &Ctx<'_>, name: &str, role: &str| {
        let rbac = Admin::as_app(ctx.tenant(), "tenant-rbac-admin");
        rbac.arm(
            Method::PUT,
            &format!("/providers/Microsoft.aadiam/providers/Microsoft.Authorization/roleAssignments/{name}"),
            "2022-04-01",
            Some(json!({"properties": {
                "roleDefinitionId": format!("/providers/Microsoft.Authorization/roleDefinitions/{role}"),
                "principalId": helpdesk_oid,
                "principalType": "ServicePrincipal",
            }})),
        );
    };
    let grant_reader = grant.clone();
    Case::new()
        .with_tenant(tenant)
        .env("ARM_CLIENT_ID", &helpdesk_app)
        .env("ARM_CLIENT_SECRET", &helpdesk_secret)
        .step(Step::expect_error(
            config(""),
            Stage::Plan,
            "Missing Azure role at /providers/Microsoft.aadiam.*374cfff1-0fa8-48d6-a0c2-7cac102135c0 \
             holds no Azure role at /providers/Microsoft.aadiam.*az role assignment create \
             --assignee-object-id 374cfff1-0fa8-48d6-a0c2-7cac102135c0 --assignee-principal-type \
             ServicePrincipal --role Contributor --scope /providers/Microsoft.aadiam",
        ))
        .step(Step::check(|ctx| match writes(ctx.tenant()).as_slice() {
            [] => Ok(()),
            w => Err(format!("the refused plan wrote: {w:?}")),
        }))
        .step(Step::check(move |ctx| {
            grant_reader(ctx, "0f5d7a42-9a31-4e61-8c27-5b1c2d3e4f01", READER);
            Ok(())
        }))
        .step(Step::expect_error(
            config(""),
            Stage::Plan,
            "cannot write diagnostic settings.*holds only Reader at \\(or above\\) /providers/Microsoft.aadiam",
        ))
        .step(Step::check(|ctx| {
            match requests(ctx.tenant(), "^PUT$", "^/providers/microsoft.aadiam/diagnosticSettings").as_slice() {
                [] => Ok(()),
                w => Err(format!("a setting was written: {w:?}")),
            }
        }))
        .step(Step::check(move |ctx| {
            grant(ctx, "0f5d7a42-9a31-4e61-8c27-5b1c2d3e4f02", CONTRIBUTOR);
            Ok(())
        }))
        .step(Step::Apply(config("")))
        .step(Step::check(|ctx| match setting(ctx.tenant(), NAME) {
            Some(_) => Ok(()),
            None => Err("the setting was not created with Contributor".into()),
        }))
        .run();
}

/// Five settings of other teams: a sixth is refused at plan time, naming them; a setting
/// already shipping our categories to the same workspace is warned about.
#[test]
fn diagnostic_setting_limit_and_duplicate_exports() {
    let tenant = FakeTenant::start();
    Case::new()
        .with_tenant(tenant)
        .step(Step::check(|ctx| {
            let admin = Admin::new(ctx.tenant());
            for team in ["soc", "siem", "archive", "sentinel", "audit"] {
                admin.arm(
                    Method::PUT,
                    &format!("{AADIAM_SETTINGS}/{team}"),
                    API,
                    Some(other_setting(&["ProvisioningLogs"])),
                );
            }
            Ok(())
        }))
        .step(Step::expect_error(
            config(""),
            Stage::Plan,
            "Too many Entra diagnostic settings.*at most 5 diagnostic settings.*\"archive\", \"audit\", \"sentinel\", \"siem\", \"soc\"",
        ))
        .step(Step::check(|ctx| {
            match requests(ctx.tenant(), "^PUT$", &format!("diagnosticSettings/{NAME}")).as_slice() {
                [] => Ok(()),
                w => Err(format!("the sixth setting was written: {w:?}")),
            }
        }))
        // Make room, and let one of the others ship sign-ins to the same workspace.
        .step(Step::check(|ctx| {
            let admin = Admin::new(ctx.tenant());
            admin.arm(Method::DELETE, &format!("{AADIAM_SETTINGS}/archive"), API, None);
            admin.arm(
                Method::PUT,
                &format!("{AADIAM_SETTINGS}/siem"),
                API,
                Some(other_setting(&["SignInLogs", "ProvisioningLogs"])),
            );
            Ok(())
        }))
        .step(Step::Apply(config("")))
        .step(Step::check(|ctx| {
            plan_output_matches(
                ctx,
                "Entra logs would be ingested twice.*\"siem\" already exports SignInLogs to this workspace",
            )
        }))
        .run();
}

/// The bad-input rows for this resource: a diagnostic on the attribute, and no write.
#[test]
fn diagnostic_setting_bad_input_writes_nothing() {
    for bad in BAD_INPUT
        .iter()
        .filter(|b| b.resource == "breakglass_entra_diagnostic_setting")
    {
        let tenant = FakeTenant::start();
        let cfg = with_bad_line(&config(""), bad);
        let attribute = bad.attribute;
        Case::new()
            .with_tenant(tenant)
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
