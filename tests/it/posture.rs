//! `breakglass_posture` in the quickstart's `check` block, end to end: healthy after apply; each
//! degradation someone else makes in the tenant (an exclusion removed, the Global Administrator
//! assignment removed, the sign-in alert disabled, the diagnostic setting deleted, the account
//! taken over by directory synchronization, a new policy without the exclusion) turns into its
//! finding and a warning in `terraform plan`; `terraform apply` repairs what Terraform manages;
//! and destroying the whole procedure leaves every conditional-access policy as it was. A
//! certificate mapping counts as a phishing-resistant method (issue 10).

use reqwest::Method;
use serde_json::{json, Value as Json};

use crate::examples::{quickstart_with_posture, with_modules};
use crate::harness::{Case, Ctx, FakeTenant, Step, Workspace};

const GLOBAL_ADMINISTRATOR: &str = "62e90394-69f5-4237-9190-012177145e10";
const ACCOUNT_01: &str = "module.breakglass.breakglass_account.this[\"01\"]";
const ACCOUNT_02: &str = "module.breakglass.breakglass_account.this[\"02\"]";
const CHECK_FAILED: &str = "Check block assertion failed";
const MFA_POLICY: &str = "ca000000-0000-4000-8000-000000000001";
const ALERT: &str = "/subscriptions/eeb0c733-9a1c-437b-b310-e18599b1b281/resourceGroups/rg-breakglass-monitoring/providers/Microsoft.Insights/scheduledQueryRules/breakglass-signin?api-version=2023-12-01";
const DIAGNOSTIC_SETTING: &str =
    "/providers/microsoft.aadiam/diagnosticSettings/breakglass-entra-logs?api-version=2017-04-01";

fn object_id(ctx: &Ctx<'_>, address: &str) -> Result<String, String> {
    ctx.state
        .attribute(address, "object_id")?
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| format!("{address}.object_id is not a string"))
}

/// What someone else does in the tenant, as the provider's own application would call it.
fn graph(ctx: &Ctx<'_>, method: Method, path: &str, body: Option<Json>) -> Json {
    let tenant = ctx.tenant();
    let (status, answer) = tenant.graph_as(&tenant.client_id, method.clone(), path, body);
    assert!(
        (200..300).contains(&status),
        "{method} {path}: {status} {answer}"
    );
    answer
}

fn arm(ctx: &Ctx<'_>, method: Method, path: &str, body: Option<Json>) {
    let tenant = ctx.tenant();
    let (status, answer) = tenant.arm_as(&tenant.client_id, method.clone(), path, body);
    assert!(
        (200..300).contains(&status),
        "{method} {path}: {status} {answer}"
    );
}

/// `terraform plan` succeeds (a failed check is a warning) and warns with `finding`, and the
/// message names `mentions`.
fn plan_warns(ws: &Workspace, finding: &str, mentions: &str) -> Result<(), String> {
    let out = ws.run(&["plan", "-input=false", "-no-color"]);
    if !out.success() {
        return Err(format!("plan failed\n{out}"));
    }
    let flat = out.flattened();
    if !flat.contains(CHECK_FAILED) || !flat.contains(finding) || !flat.contains(mentions) {
        return Err(format!(
            "expected the check to warn with {finding} naming {mentions:?}\n{out}"
        ));
    }
    Ok(())
}

/// `terraform apply` puts back what Terraform manages; the check passes again afterwards.
fn apply_repairs(ws: &Workspace) -> Result<(), String> {
    let out = ws.run(&["apply", "-auto-approve", "-input=false", "-no-color"]);
    if !out.success() {
        return Err(format!("apply failed\n{out}"));
    }
    check_passes(ws)
}

fn check_passes(ws: &Workspace) -> Result<(), String> {
    let out = ws.run(&["plan", "-input=false", "-no-color"]);
    if !out.success() || out.flattened().contains(CHECK_FAILED) {
        return Err(format!("expected a plan without a check warning\n{out}"));
    }
    Ok(())
}

fn posture_errors(state: &Json) -> Vec<String> {
    state["findings"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|f| f["severity"] == "error")
        .map(|f| format!("{}: {}", f["id"], f["message"]))
        .collect()
}

/// Every conditional-access policy as the tenant holds it, without the modification time.
fn policies(tenant: &FakeTenant) -> Vec<Json> {
    let t = tenant.state.tenant();
    let mut all: Vec<Json> = t
        .directory
        .ca_policies
        .list_latest()
        .into_iter()
        .map(|p| {
            let mut p = p.clone();
            p.remove("modifiedDateTime");
            Json::Object(p)
        })
        .collect();
    all.sort_by(|a, b| a["id"].as_str().cmp(&b["id"].as_str()));
    all
}

#[test]
fn posture_check_warns_on_each_degradation_and_destroy_restores_every_policy_tf1_5() {
    let tenant = FakeTenant::start();
    let before = policies(&tenant);
    with_modules(Case::new())
        .requires("1.5")
        .with_tenant(tenant)
        .env("TF_VAR_deletion_protection", "false")
        .step(Step::Apply(quickstart_with_posture()))
        // Healthy: neither the check's posture nor the module's has an error finding.
        .step(Step::check(|ctx| {
            for address in [
                "data.breakglass_posture.now",
                "module.breakglass.data.breakglass_posture.this",
            ] {
                let posture = ctx
                    .state
                    .resource(address)
                    .ok_or_else(|| format!("{address} is not in state"))?;
                if posture["ok"] != true || !posture_errors(&posture).is_empty() {
                    return Err(format!(
                        "{address} is not ok: {:?}",
                        posture_errors(&posture)
                    ));
                }
            }
            check_passes(ctx.workspace)
        }))
        // Someone removes the account from the MFA policy's exclusions (keeping the others).
        .step(Step::check(|ctx| {
            let id = object_id(ctx, ACCOUNT_01)?;
            let path = format!("/identity/conditionalAccess/policies/{MFA_POLICY}");
            let policy = graph(ctx, Method::GET, &path, None);
            let users = &policy["conditions"]["users"];
            let kept: Vec<&Json> = users["excludeUsers"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|u| u.as_str() != Some(id.as_str()))
                .collect();
            graph(
                ctx,
                Method::PATCH,
                &path,
                Some(json!({"conditions": {"users": {
                    "includeUsers": users["includeUsers"],
                    "excludeUsers": kept,
                    "excludeGroups": users["excludeGroups"],
                }}})),
            );
            plan_warns(ctx.workspace, "account.ca_excluded", "CA001")?;
            apply_repairs(ctx.workspace)
        }))
        // The permanent active Global Administrator assignment goes (what making it
        // eligible-only does to the active one; eligibility itself is outside the Graph subset).
        .step(Step::check(|ctx| {
            let id = object_id(ctx, ACCOUNT_02)?;
            let request = graph(
                ctx,
                Method::POST,
                "/roleManagement/directory/roleAssignmentScheduleRequests",
                Some(json!({
                    "action": "adminRemove",
                    "principalId": id,
                    "roleDefinitionId": GLOBAL_ADMINISTRATOR,
                    "directoryScopeId": "/",
                    "justification": "made eligible-only by another administrator",
                })),
            );
            // PIM completes the request asynchronously (PendingRevocation, then Revoked).
            let path = format!(
                "/roleManagement/directory/roleAssignmentScheduleRequests/{}",
                request["id"].as_str().ok_or("the request has no id")?
            );
            let revoked = (0..300).any(|_| {
                let done = graph(ctx, Method::GET, &path, None)["status"] == "Revoked";
                if !done {
                    std::thread::sleep(std::time::Duration::from_millis(100));
                }
                done
            });
            if !revoked {
                return Err("the removal request never completed".into());
            }
            plan_warns(
                ctx.workspace,
                "account.permanent_global_admin",
                "no active Global Administrator",
            )?;
            apply_repairs(ctx.workspace)
        }))
        // The sign-in alert is disabled.
        .step(Step::check(|ctx| {
            arm(
                ctx,
                Method::PATCH,
                ALERT,
                Some(json!({"properties": {"enabled": false}})),
            );
            plan_warns(
                ctx.workspace,
                "account.signin_alert",
                "No enabled sign-in alert",
            )?;
            apply_repairs(ctx.workspace)
        }))
        // The diagnostic setting that exports the sign-in logs is deleted.
        .step(Step::check(|ctx| {
            arm(ctx, Method::DELETE, DIAGNOSTIC_SETTING, None);
            plan_warns(
                ctx.workspace,
                "workspace.signin_logs",
                "No enabled diagnostic setting",
            )?;
            apply_repairs(ctx.workspace)
        }))
        // A new policy, created without the exclusion.
        .step(Step::check(|ctx| {
            graph(
                ctx,
                Method::POST,
                "/identity/conditionalAccess/policies",
                Some(json!({
                    "displayName": "Require MFA everywhere (added later)",
                    "state": "enabled",
                    "conditions": {
                        "clientAppTypes": ["all"],
                        "applications": {"includeApplications": ["All"]},
                        "users": {"includeUsers": ["All"]},
                    },
                    "grantControls": {"operator": "OR", "builtInControls": ["mfa"]},
                })),
            );
            plan_warns(
                ctx.workspace,
                "account.ca_excluded",
                "Require MFA everywhere (added later)",
            )?;
            apply_repairs(ctx.workspace)
        }))
        // Directory synchronization takes the account over; nothing Terraform can repair, so
        // the source of authority goes back to the cloud afterwards.
        .step(Step::check(|ctx| {
            let id = object_id(ctx, ACCOUNT_01)?;
            let sync = |enabled: bool| {
                ctx.tenant().admin_post(
                    &format!("/directory/users/{id}/sync"),
                    json!({ "enabled": enabled }),
                )
            };
            sync(true);
            plan_warns(
                ctx.workspace,
                "account.cloud_only",
                "synchronized from an on-premises directory",
            )?;
            sync(false);
            check_passes(ctx.workspace)
        }))
        // With the module's deletion protection on (its default), destroy fails at plan and
        // nothing is deleted: the tenant's log shows no DELETE. Then it is turned off again.
        .step(Step::check(|ctx| {
            let apply = ["apply", "-auto-approve", "-input=false", "-no-color"];
            let on = [("TF_VAR_deletion_protection", "true")];
            let protected = ctx.workspace.run_with(&apply, &on);
            if !protected.success() {
                return Err(format!("turning protection on failed\n{protected}"));
            }
            let seen = ctx.tenant().requests().len();
            let destroy = ["destroy", "-auto-approve", "-input=false", "-no-color"];
            let refused = ctx.workspace.run_with(&destroy, &on);
            if refused.success() || !refused.flattened().contains("Deletion protection is on") {
                return Err(format!(
                    "destroy with protection on did not fail on it\n{refused}"
                ));
            }
            let deletes: Vec<String> = ctx.tenant().requests()[seen..]
                .iter()
                .filter(|r| r["method"] == "DELETE")
                .map(|r| r["path"].to_string())
                .collect();
            if !deletes.is_empty() {
                return Err(format!("a refused destroy deleted: {deletes:?}"));
            }
            let off = [("TF_VAR_deletion_protection", "false")];
            let unprotected = ctx.workspace.run_with(&apply, &off);
            match unprotected.success() {
                true => Ok(()),
                false => Err(format!("turning protection off failed\n{unprotected}")),
            }
        }))
        // Destroy (protection off): the accounts are gone, and every policy that existed before
        // the apply is exactly as it was (the one created meanwhile loses only our exclusion).
        .step(Step::destroy_check(move |ctx| {
            let after = policies(ctx.tenant());
            for policy in &before {
                let now = after
                    .iter()
                    .find(|p| p["id"] == policy["id"])
                    .ok_or_else(|| format!("policy {} is gone", policy["id"]))?;
                if now != policy {
                    return Err(format!(
                        "policy {} changed:\nbefore {policy:#}\nafter {now:#}",
                        policy["id"]
                    ));
                }
            }
            let added = after
                .iter()
                .find(|p| p["displayName"] == "Require MFA everywhere (added later)")
                .ok_or("the policy created during the case is gone")?;
            if added["conditions"]["users"]["excludeUsers"] != json!([]) {
                return Err(format!("the later policy still has exclusions: {added:#}"));
            }
            Ok(())
        }))
        .run();
}

/// Certificate-based sign-in counts as a phishing-resistant method in the posture: an account
/// mapped through `certificate_user_ids` (no authentication method object exists for it in
/// Graph v1.0) shows `x509Certificate` among its phishing-resistant methods; one without the
/// mapping shows none.
#[test]
fn posture_counts_a_certificate_mapping_as_phishing_resistant() {
    let config = format!(
        "{}\nprovider \"breakglass\" {{\n  subscription_id = \"eeb0c733-9a1c-437b-b310-e18599b1b281\"\n}}\n\
         resource \"breakglass_account\" \"cba\" {{\n  user_principal_name = \"bg-cba-posture@contoso.onmicrosoft.com\"\n  \
         display_name = \"CBA\"\n  certificate_user_ids = [\"X509:<PN>bg-cba-posture@contoso.com\"]\n  deletion_protection = false\n}}\n\
         resource \"breakglass_account\" \"plain\" {{\n  user_principal_name = \"bg-plain-posture@contoso.onmicrosoft.com\"\n  \
         display_name = \"Plain\"\n  deletion_protection = false\n}}\n\
         data \"breakglass_posture\" \"now\" {{\n  accounts = [breakglass_account.cba.object_id, breakglass_account.plain.object_id]\n}}\n",
        crate::harness::required_providers()
    );
    Case::new()
        .with_tenant(FakeTenant::start())
        .step(Step::Apply(config))
        .step(Step::check(|ctx| {
            let facts = ctx
                .state
                .attribute("data.breakglass_posture.now", "account_facts")?;
            let methods_of = |upn: &str| -> Result<Vec<String>, String> {
                let fact = facts
                    .as_array()
                    .and_then(|f| f.iter().find(|a| a["user_principal_name"] == upn))
                    .ok_or_else(|| format!("no facts for {upn}: {facts}"))?;
                Ok(fact["phishing_resistant_methods"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|m| m.as_str().map(str::to_owned))
                    .collect())
            };
            let cba = methods_of("bg-cba-posture@contoso.onmicrosoft.com")?;
            let plain = methods_of("bg-plain-posture@contoso.onmicrosoft.com")?;
            match (cba.as_slice(), plain.is_empty()) {
                ([only], true) if only == "x509Certificate" => Ok(()),
                _ => Err(format!(
                    "expected [x509Certificate] and []: {cba:?}, {plain:?}"
                )),
            }
        }))
        .step(Step::PlanEmpty)
        .run();
}
