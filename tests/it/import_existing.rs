//! `examples/import-existing/` against a tenant where the hand-run PowerShell procedure ran (the
//! emulated tenant's `script-made` seed, written by `scripts/original-procedure.py --dump`):
//! imported with import blocks (Terraform 1.5+), with config generation, and with `terraform
//! import` one by one (1.0), the first plan creates nothing, destroys nothing and replaces
//! nothing; it only changes in place what the script got wrong, and after apply a plan is empty.

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::Value as Json;

use crate::harness::{requires_terraform, FakeTenant, Workspace};

const ACCOUNT_ID: &str = "4b2f53b1-cd40-453b-bd3b-1e5d06ad287b";
const WORKSPACE_ID: &str = "/subscriptions/eeb0c733-9a1c-437b-b310-e18599b1b281/resourceGroups/rg-breakglass-monitoring/providers/Microsoft.OperationalInsights/workspaces/law-breakglass";

fn example() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/import-existing")
}

fn read(name: &str) -> String {
    fs::read_to_string(example().join(name)).unwrap_or_else(|e| panic!("read {name}: {e}"))
}

/// A workspace for the example against a fresh tenant seeded as the script left it.
fn workspace(min: &str) -> Option<(Workspace, FakeTenant)> {
    let terraform = requires_terraform(min)?;
    let tenant = FakeTenant::with_seed("script-made");
    let ws = Workspace::new(terraform, tenant.provider_env());
    Some((ws, tenant))
}

/// The `terraform import` lines of import.sh, as (address, id).
fn import_commands() -> Vec<(String, String)> {
    read("import.sh")
        .lines()
        .filter_map(|l| l.strip_prefix("terraform import "))
        .map(|rest| {
            let (address, id) = rest.split_once(' ').expect("terraform import ADDRESS ID");
            (address.to_owned(), id.to_owned())
        })
        .collect()
}

/// The import blocks of imports.tf, as (to, id).
fn import_blocks() -> Vec<(String, String)> {
    let block = regex::Regex::new(r#"import \{\s*to = (\S+)\s*id = "([^"]+)"\s*\}"#).unwrap();
    block
        .captures_iter(&read("imports.tf"))
        .map(|c| (c[1].to_owned(), c[2].to_owned()))
        .collect()
}

/// Plans into a file and returns each resource change as (address, actions, importing).
fn planned_changes(ws: &Workspace, extra: &[&str]) -> Vec<(String, Vec<String>, bool)> {
    let mut args = vec!["plan", "-input=false", "-no-color", "-out=adopt.tfplan"];
    args.extend_from_slice(extra);
    ws.ok(&args);
    let shown = ws.ok(&["show", "-json", "adopt.tfplan"]);
    let json = shown
        .text
        .lines()
        .find(|l| l.starts_with('{'))
        .unwrap_or("");
    let plan: Json = serde_json::from_str(json).unwrap_or_else(|e| panic!("plan JSON: {e}"));
    plan["resource_changes"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| {
            let actions = c["change"]["actions"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|a| a.as_str().unwrap_or_default().to_owned())
                .collect();
            let importing = c["change"].get("importing").is_some_and(|i| !i.is_null());
            (
                c["address"].as_str().unwrap_or_default().to_owned(),
                actions,
                importing,
            )
        })
        .collect()
}

/// No create, delete or replace anywhere; the listed addresses are updated in place.
fn only_in_place(changes: &[(String, Vec<String>, bool)], updated: &[&str]) {
    for (address, actions, _) in changes {
        assert!(
            actions.iter().all(|a| a == "no-op" || a == "update" || a == "read"),
            "{address} is planned for {actions:?}: adopting must not create, delete or replace\n{changes:#?}"
        );
    }
    for address in updated {
        assert!(
            changes
                .iter()
                .any(|(a, actions, _)| a == address && actions == &["update"]),
            "{address} should be improved in place\n{changes:#?}"
        );
    }
}

/// What the script got wrong, improved in the tenant after the apply.
fn improvements_applied(tenant: &FakeTenant) {
    let t = tenant.state.tenant();
    let dump = t.arm.dump();
    let setting = dump["diagnosticSettings"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|s| s["name"] == "EntraSignInLogs")
        .expect("the diagnostic setting");
    let categories: Vec<&str> = setting["properties"]["logs"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|l| l["enabled"] == true)
        .filter_map(|l| l["category"].as_str())
        .collect();
    for wanted in ["SignInLogs", "NonInteractiveUserSignInLogs", "AuditLogs"] {
        assert!(
            categories.contains(&wanted),
            "{wanted} not exported: {categories:?}"
        );
    }
    assert_eq!(setting["properties"]["workspaceId"], WORKSPACE_ID);
    let rules: Vec<&Json> = dump["scheduledQueryRules"]
        .as_array()
        .into_iter()
        .flatten()
        .collect();
    let signin = rules
        .iter()
        .find(|r| r["name"] == "alert-breakglass-signin")
        .expect("the sign-in rule");
    let query = signin["properties"]["criteria"]["allOf"][0]["query"]
        .as_str()
        .unwrap_or_default();
    assert!(
        query.contains(ACCOUNT_ID) && query.contains("in~") && !query.contains("=="),
        "the alert still has the script's case-sensitive query: {query}"
    );
    assert!(
        rules
            .iter()
            .any(|r| r["name"] == "alert-breakglass-signin-tamper"),
        "no tamper rule was added"
    );
    // Every enabled user policy excludes the account (the script's exclusions are kept).
    for policy in t.directory.ca_policies.list_latest() {
        let users = &policy["conditions"]["users"];
        if policy["state"] == "enabled"
            && users["includeUsers"]
                .as_array()
                .is_some_and(|u| !u.is_empty())
        {
            assert!(
                users["excludeUsers"]
                    .as_array()
                    .is_some_and(|ids| ids.iter().any(|id| id == ACCOUNT_ID)),
                "{} does not exclude the account",
                policy["displayName"]
            );
        }
    }
}

fn apply_then_plan_is_empty(ws: &Workspace) {
    ws.ok(&[
        "apply",
        "-auto-approve",
        "-input=false",
        "-no-color",
        "adopt.tfplan",
    ]);
    let changes = planned_changes(ws, &[]);
    assert!(
        changes.iter().all(|(_, actions, _)| actions == &["no-op"]),
        "the plan after apply is not empty: {changes:#?}"
    );
}

const IMPROVED: &[&str] = &[
    "breakglass_account.bkr_admin01",
    "breakglass_entra_diagnostic_setting.signin_logs",
    "breakglass_signin_alert.breakglass",
];

#[test]
fn import_blocks_and_import_sh_name_the_same_objects() {
    let mut blocks = import_blocks();
    let mut commands = import_commands();
    blocks.sort();
    commands.sort();
    assert_eq!(blocks.len(), 6, "imports.tf: {blocks:?}");
    assert_eq!(blocks, commands, "imports.tf and import.sh disagree");
}

#[test]
fn script_made_tenant_adopted_with_import_blocks_changes_only_in_place_tf1_5() {
    let Some((ws, tenant)) = workspace("1.5") else {
        return;
    };
    fs::write(ws.dir().join("imports.tf"), read("imports.tf")).expect("imports.tf");
    ws.write_config(&read("main.tf"));
    let changes = planned_changes(&ws, &[]);
    only_in_place(&changes, IMPROVED);
    let imported = changes
        .iter()
        .filter(|(_, _, importing)| *importing)
        .count();
    assert_eq!(imported, 6, "every import block imports: {changes:#?}");
    apply_then_plan_is_empty(&ws);
    improvements_applied(&tenant);
}

/// Config generation from the import blocks alone: the generated HCL is valid for this provider
/// and describes the tenant as it is, so its plan imports everything and changes one thing in
/// place: the alert's query, which this resource always writes itself (the script's
/// case-sensitive UPN match becomes the provider's KQL, plus the tamper rule).
#[test]
fn script_made_tenant_generated_config_plans_imports_only_tf1_5() {
    let Some((ws, _tenant)) = workspace("1.5") else {
        return;
    };
    let main = read("main.tf");
    // Only the terraform and provider blocks: the resources come from generation.
    let header_end = main.find("resource \"").expect("resources in main.tf");
    ws.write_config(&main[..header_end]);
    fs::write(ws.dir().join("imports.tf"), read("imports.tf")).expect("imports.tf");
    let generated = ws.run(&[
        "plan",
        "-input=false",
        "-no-color",
        "-generate-config-out=generated.tf",
    ]);
    assert!(generated.success(), "config generation failed\n{generated}");
    let hcl = fs::read_to_string(ws.dir().join("generated.tf")).expect("generated.tf");
    for (to, _) in import_blocks() {
        let (kind, name) = to.split_once('.').expect("type.name");
        assert!(
            hcl.contains(&format!("resource \"{kind}\" \"{name}\"")),
            "{to} not generated:\n{hcl}"
        );
    }
    const ALERT: &str = "breakglass_signin_alert.breakglass";
    let changes = planned_changes(&ws, &[]);
    only_in_place(&changes, &[ALERT]);
    let changed: Vec<_> = changes
        .iter()
        .filter(|(address, actions, _)| actions != &["no-op"] && address != ALERT)
        .collect();
    assert!(
        changed.is_empty(),
        "the generated config is not what the tenant holds: {changed:#?}\n{hcl}"
    );
    let imported = changes
        .iter()
        .filter(|(_, _, importing)| *importing)
        .count();
    assert_eq!(imported, 6, "every import block imports: {changes:#?}");
}

#[test]
fn script_made_tenant_adopted_with_terraform_import_changes_only_in_place() {
    let Some((ws, tenant)) = workspace("1.0") else {
        return;
    };
    ws.write_config(&read("main.tf"));
    for (address, id) in import_commands() {
        ws.ok(&["import", "-input=false", "-no-color", &address, &id]);
    }
    let changes = planned_changes(&ws, &[]);
    only_in_place(&changes, IMPROVED);
    apply_then_plan_is_empty(&ws);
    improvements_applied(&tenant);
}
