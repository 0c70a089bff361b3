//! `breakglass_action_group` end to end: real terraform, the provider and the emulated
//! tenant's action group service (receiver checks, PUT and PATCH, drift made by another
//! administrator).

use reqwest::Method;
use serde_json::{json, Value as Json};

use crate::harness::{Case, FakeTenant, Stage, Step};
use crate::monitor_support::{
    action_group, header, plan_proposes, requests, with_bad_line, writes, Admin, BAD_INPUT,
    EMAIL_AND_SMS, RG, SUB,
};

const ADDRESS: &str = "breakglass_action_group.oncall";
const API: &str = "2023-01-01";

fn path() -> String {
    format!("/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.Insights/actionGroups/ag-breakglass")
}

fn config(extra: &str) -> String {
    format!("{}{}", header(), action_group(extra))
}

fn group(tenant: &FakeTenant) -> Option<Json> {
    let t = tenant.state.tenant();
    t.arm
        .action_groups
        .list_latest()
        .into_iter()
        .find(|g| g["name"] == "ag-breakglass")
        .map(|g| Json::Object(g.clone()))
}

fn case() -> Case {
    Case::new()
        .with_tenant(FakeTenant::start())
        .env("ARM_SUBSCRIPTION_ID", SUB)
}

/// Create, plan empty, import by id in any case, drift shown and healed (a disabled group, an
/// unmanaged webhook, a changed address), receivers changed in place (PUT), `enabled` alone
/// changed with a PATCH, destroy.
#[test]
fn action_group_lifecycle() {
    case()
        .step(Step::Apply(config(EMAIL_AND_SMS)))
        .step(Step::check(|ctx| {
            let g = group(ctx.tenant()).ok_or("the action group is missing")?;
            let p = &g["properties"];
            let checks = [
                (p["groupShortName"] == "bg-alert", "short name"),
                (p["enabled"] == true, "enabled"),
                (g["location"] == "Global", "location"),
                (p["emailReceivers"][0]["emailAddress"] == "soc@contoso.com", "e-mail"),
                (p["emailReceivers"][0]["useCommonAlertSchema"] == true, "common schema"),
                (p["smsReceivers"][0]["phoneNumber"] == "5551234567", "phone"),
            ];
            if let Some((_, what)) = checks.iter().find(|(ok, _)| !ok) {
                return Err(format!("{what} is wrong: {g:#}"));
            }
            let status = ctx.state.attribute(ADDRESS, "email_receivers")?[0]["status"].clone();
            match status == "Enabled" {
                true => Ok(()),
                false => Err(format!("receiver status is {status}")),
            }
        }))
        .step(Step::import_state_verify(ADDRESS, &[]))
        .step(Step::import_verify(ADDRESS, path().to_uppercase(), &[]))
        .step(Step::import_verify(ADDRESS, path().to_lowercase(), &[]))
        // Drift: someone disables the group and adds a webhook to it.
        .step(Step::check(|ctx| {
            let admin = Admin::new(ctx.tenant());
            let mut body = admin.arm(Method::GET, &path(), API, None);
            body["properties"]["enabled"] = json!(false);
            body["properties"]["webhookReceivers"] =
                json!([{"name": "exfil", "serviceUri": "https://hooks.example.net/x"}]);
            body["properties"]["emailReceivers"][0]["emailAddress"] = json!("attacker@example.net");
            admin.arm(Method::PUT, &path(), API, Some(body));
            plan_proposes(
                ctx,
                &[
                    "~ enabled += false -> true",
                    "webhookReceivers",
                    "\"attacker@example.net\" -> \"soc@contoso.com\"",
                ],
            )
        }))
        .step(Step::Apply(config(EMAIL_AND_SMS)))
        .step(Step::check(|ctx| {
            let g = group(ctx.tenant()).ok_or("the action group is missing")?;
            let p = &g["properties"];
            if p["enabled"] != true
                || p["webhookReceivers"] != json!([])
                || p["emailReceivers"][0]["emailAddress"] != "soc@contoso.com"
            {
                return Err(format!("drift not healed: {g:#}"));
            }
            Ok(())
        }))
        // Update in place: a second address and another phone.
        .step(Step::Apply(config(
            "  email_receivers {\n    name          = \"soc\"\n    email_address = \"soc@contoso.com\"\n  }\n  email_receivers {\n    name                    = \"ciso\"\n    email_address           = \"ciso@contoso.com\"\n    use_common_alert_schema = false\n  }\n  sms_receivers {\n    name         = \"oncall\"\n    country_code = \"31\"\n    phone_number = \"612345678\"\n  }\n",
        )))
        .step(Step::check(|ctx| {
            let g = group(ctx.tenant()).ok_or("the action group is missing")?;
            let p = &g["properties"];
            if p["emailReceivers"][1]["emailAddress"] != "ciso@contoso.com"
                || p["emailReceivers"][1]["useCommonAlertSchema"] != false
                || p["smsReceivers"][0]["countryCode"] != "31"
            {
                return Err(format!("not updated: {g:#}"));
            }
            let deletes = requests(ctx.tenant(), "^DELETE$", "actionGroups");
            match deletes.is_empty() {
                true => Ok(()),
                false => Err(format!("the update replaced the group: {deletes:?}")),
            }
        }))
        // Only `enabled` changes: a PATCH, receivers not sent again.
        .step(Step::Apply(config(
            "  enabled    = false\n  email_receivers {\n    name          = \"soc\"\n    email_address = \"soc@contoso.com\"\n  }\n  email_receivers {\n    name                    = \"ciso\"\n    email_address           = \"ciso@contoso.com\"\n    use_common_alert_schema = false\n  }\n  sms_receivers {\n    name         = \"oncall\"\n    country_code = \"31\"\n    phone_number = \"612345678\"\n  }\n",
        )))
        .step(Step::check(|ctx| {
            let patches = requests(ctx.tenant(), "^PATCH$", "actionGroups/ag-breakglass$");
            let g = group(ctx.tenant()).ok_or("the action group is missing")?;
            match (patches.len(), &g["properties"]["enabled"]) {
                (1, Json::Bool(false)) => Ok(()),
                (n, enabled) => Err(format!("{n} PATCHes, enabled {enabled}")),
            }
        }))
        .step(Step::destroy_check(|ctx| match group(ctx.tenant()) {
            None => Ok(()),
            Some(g) => Err(format!("the group is still there: {g}")),
        }))
        .run();
}

/// A receiver name used twice is refused at validate time; a group without subscription
/// configured is refused at plan time.
#[test]
fn action_group_refuses_duplicate_receiver_names_and_a_missing_subscription() {
    let duplicate = config(
        "  email_receivers {\n    name          = \"soc\"\n    email_address = \"soc@contoso.com\"\n  }\n  sms_receivers {\n    name         = \"SOC\"\n    country_code = \"1\"\n    phone_number = \"5551234567\"\n  }\n",
    );
    Case::new()
        .with_tenant(FakeTenant::start())
        .step(Step::expect_error(
            duplicate,
            Stage::Validate,
            "Duplicate receiver name.*`sms_receivers\\[0\\]\\.name` is \"SOC\", which `email_receivers\\[0\\]\\.name` already uses",
        ))
        .step(Step::expect_error(
            config(EMAIL_AND_SMS),
            Stage::Plan,
            "No Azure subscription.*ARM_SUBSCRIPTION_ID",
        ))
        .step(Step::check(|ctx| match writes(ctx.tenant()).as_slice() {
            [] => Ok(()),
            w => Err(format!("wrote {w:?}")),
        }))
        .run();
}

/// The bad-input rows for this resource: a diagnostic on the attribute, and no write.
#[test]
fn action_group_bad_input_writes_nothing() {
    let rows: Vec<_> = BAD_INPUT
        .iter()
        .filter(|b| b.resource == "breakglass_action_group")
        .collect();
    assert_eq!(rows.len(), 3);
    for bad in rows {
        let cfg = with_bad_line(&config(EMAIL_AND_SMS), bad);
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
