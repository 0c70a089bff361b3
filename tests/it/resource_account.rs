//! `breakglass_account` end to end: the real terraform, the provider binary and the emulated
//! tenant in-process. Checks look at the tenant model directly (users, deleted items, the
//! salted password hashes, the request log), never at what the provider says about itself.

use std::sync::{Arc, Mutex};

use serde_json::Value as Json;

use crate::harness::{required_providers, Case, Ctx, FakeTenant, Stage, Step};

const ADDRESS: &str = "breakglass_account.bg";

/// A configuration with one account whose body is `body`. Deletion protection is off so the
/// case can end with a destroy; `account_deletion_protection_*` tests it on.
fn account(body: &str) -> String {
    format!(
        "{}\nresource \"breakglass_account\" \"bg\" {{\n{body}\n  deletion_protection = false\n}}\n",
        required_providers()
    )
}

fn basic(upn: &str, display_name: &str) -> String {
    account(&format!(
        "  user_principal_name = \"{upn}\"\n  display_name        = \"{display_name}\""
    ))
}

/// A regex matching `text` in Terraform's output even where it wrapped a diagnostic line
/// (continuation lines start with `│`).
fn phrase(text: &str) -> String {
    text.split_whitespace()
        .map(regex::escape)
        .collect::<Vec<_>>()
        .join(r"[\s│]+")
}

fn state_str(ctx: &Ctx<'_>, name: &str) -> Result<String, String> {
    ctx.state
        .attribute(ADDRESS, name)?
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| format!("{name} is not a string in state"))
}

/// The user as the tenant's primary replica holds it.
fn tenant_user(tenant: &FakeTenant, id: &str) -> Option<Json> {
    let t = tenant.state.tenant();
    t.directory
        .users
        .get_latest(id)
        .map(|u| Json::Object(u.clone()))
}

fn in_deleted_items(tenant: &FakeTenant, id: &str) -> bool {
    let t = tenant.state.tenant();
    t.directory.deleted_items.get_latest(id).is_some()
}

/// The emulator's sign-in check against its salted hash.
fn signs_in_with(tenant: &FakeTenant, id: &str, password: &str) -> bool {
    tenant
        .state
        .tenant()
        .directory
        .password_matches(id, password)
}

/// Request-log entries for `method` whose path matches `path`.
fn requests(tenant: &FakeTenant, method: &str, path: &str) -> Vec<Json> {
    let pattern = regex::Regex::new(path).expect("path regex");
    let t = tenant.state.tenant();
    t.behaviour
        .request_log
        .iter()
        .filter(|r| r["method"] == method)
        .filter(|r| r["path"].as_str().is_some_and(|p| pattern.is_match(p)))
        .cloned()
        .collect()
}

/// Entra's complexity rule, restated independently of the provider's code.
fn meets_complexity(password: &str) -> bool {
    let classes = [
        password.chars().any(|c| c.is_ascii_lowercase()),
        password.chars().any(|c| c.is_ascii_uppercase()),
        password.chars().any(|c| c.is_ascii_digit()),
        password.chars().any(|c| !c.is_ascii_alphanumeric()),
    ];
    (8..=256).contains(&password.len())
        && password.chars().all(|c| c.is_ascii_graphic())
        && classes.iter().filter(|c| **c).count() >= 3
}

/// The raw state file, which must never hold a write-only password.
fn state_file(ctx: &Ctx<'_>) -> String {
    std::fs::read_to_string(ctx.workspace.dir().join("terraform.tfstate")).unwrap_or_default()
}

#[test]
fn account_lifecycle_with_generated_password() {
    let upn = "bg-lifecycle@contoso.onmicrosoft.com";
    let first_password = Arc::new(Mutex::new(String::new()));
    let remembered = first_password.clone();
    let previous = first_password.clone();
    let updated = account(&format!(
        "  user_principal_name = \"{upn}\"\n  display_name        = \"Break Glass One\"\n  \
         account_enabled     = false\n  usage_location      = \"NL\"\n  \
         password_rotation_trigger = {{ rotated = \"2026-11\" }}"
    ));
    Case::new()
        .with_tenant(FakeTenant::start())
        .step(Step::Apply(basic(upn, "Break Glass 1")))
        .step(Step::check(move |ctx| {
            let id = state_str(ctx, "id")?;
            let password = state_str(ctx, "password")?;
            if password.len() != 64 || !meets_complexity(&password) {
                return Err(format!(
                    "generated password has {} characters or misses complexity",
                    password.len()
                ));
            }
            let tenant = ctx.tenant();
            let user = tenant_user(tenant, &id).ok_or("user not in the tenant")?;
            if user["userPrincipalName"] != upn
                || user["displayName"] != "Break Glass 1"
                || user["mailNickname"] != "bg-lifecycle"
                || user["accountEnabled"] != true
            {
                return Err(format!("tenant user differs from config: {user}"));
            }
            if state_str(ctx, "object_id")? != id {
                return Err("object_id differs from id".into());
            }
            if !signs_in_with(tenant, &id, &password) {
                return Err("the password in state does not sign in".into());
            }
            let posts = requests(tenant, "POST", "^/v1.0/users$");
            if posts.len() != 1 || posts[0].to_string().contains(&password) {
                return Err(format!("expected one redacted POST /users, got {posts:?}"));
            }
            *remembered.lock().unwrap() = password;
            Ok(())
        }))
        .step(Step::import_state_verify(ADDRESS, &["password"]))
        .step(Step::import_verify(
            ADDRESS,
            upn.to_uppercase(),
            &["password"],
        ))
        .step(Step::Apply(updated))
        .step(Step::check(move |ctx| {
            let id = state_str(ctx, "id")?;
            let password = state_str(ctx, "password")?;
            let old = previous.lock().unwrap().clone();
            let tenant = ctx.tenant();
            if password == old || !signs_in_with(tenant, &id, &password) {
                return Err("the rotated password is not the one that signs in".into());
            }
            if signs_in_with(tenant, &id, &old) {
                return Err("the old password still signs in after rotation".into());
            }
            let user = tenant_user(tenant, &id).ok_or("user not in the tenant")?;
            if user["displayName"] != "Break Glass One"
                || user["accountEnabled"] != false
                || user["usageLocation"] != "NL"
            {
                return Err(format!("update did not reach the tenant: {user}"));
            }
            let patches = requests(tenant, "PATCH", &format!("^/v1.0/users/{id}$"));
            // Only what changed is sent: the UPN, name defaults and nickname stay out.
            let mut sent: Vec<String> = patches
                .iter()
                .filter_map(|p| p["requestBody"].as_object())
                .flat_map(|b| b.keys().cloned())
                .collect();
            sent.sort();
            if sent
                != [
                    "accountEnabled",
                    "displayName",
                    "passwordProfile",
                    "usageLocation",
                ]
            {
                return Err(format!(
                    "PATCH sent other properties than the changed ones: {sent:?}"
                ));
            }
            let sent_password = patches
                .iter()
                .any(|p| !p["requestBody"]["passwordProfile"].is_null());
            if !sent_password || patches.iter().any(|p| p.to_string().contains(&password)) {
                return Err(format!("expected a redacted password PATCH: {patches:?}"));
            }
            Ok(())
        }))
        .step(Step::destroy_check(move |ctx| {
            let tenant = ctx.tenant();
            let deleted: Vec<Json> = requests(tenant, "DELETE", "^/v1.0/users/");
            let id = deleted
                .first()
                .and_then(|r| r["path"].as_str())
                .and_then(|p| p.rsplit('/').next())
                .ok_or("no DELETE /users/{id} was sent")?
                .to_owned();
            if tenant_user(tenant, &id).is_some() {
                return Err("the user is still active".into());
            }
            if !in_deleted_items(tenant, &id) {
                return Err("a default destroy must soft-delete (restorable)".into());
            }
            Ok(())
        }))
        .run();
}

fn write_only(upn: &str, version: u32, password: &str) -> String {
    account(&format!(
        "  user_principal_name = \"{upn}\"\n  display_name        = \"Break Glass WO\"\n  \
         password_wo         = \"{password}\"\n  password_wo_version = {version}"
    ))
}

#[test]
fn account_write_only_password_tf1_11() {
    let upn = "bg-wo@contoso.onmicrosoft.com";
    let first = "Wo-First-Passw0rd-7d1f";
    let second = "Wo-Second-Passw0rd-93ac";
    Case::new()
        .requires("1.11")
        .with_tenant(FakeTenant::start())
        .step(Step::Apply(write_only(upn, 1, first)))
        .step(Step::check(move |ctx| {
            let id = state_str(ctx, "id")?;
            if !ctx.state.attribute(ADDRESS, "password")?.is_null() {
                return Err("password must stay null with password_wo".into());
            }
            if state_file(ctx).contains(first) {
                return Err("the write-only password is in the state file".into());
            }
            if !signs_in_with(ctx.tenant(), &id, first) {
                return Err("password_wo was not set in the tenant".into());
            }
            Ok(())
        }))
        .step(Step::import_state_verify(ADDRESS, &["password_wo_version"]))
        .step(Step::Apply(write_only(upn, 2, second)))
        .step(Step::check(move |ctx| {
            let id = state_str(ctx, "id")?;
            let tenant = ctx.tenant();
            if !signs_in_with(tenant, &id, second) || signs_in_with(tenant, &id, first) {
                return Err("bumping password_wo_version did not rotate the password".into());
            }
            let file = state_file(ctx);
            if file.contains(first) || file.contains(second) {
                return Err("a write-only password is in the state file".into());
            }
            Ok(())
        }))
        // A re-create at TRACE: validate, plan and the POST carrying the password.
        .step(Step::check(move |ctx| {
            let out = ctx.workspace.run_with(
                &[
                    "apply",
                    "-auto-approve",
                    "-input=false",
                    "-no-color",
                    &format!("-replace={ADDRESS}"),
                ],
                &[("TF_LOG", "trace")],
            );
            if !out.success() {
                return Err(format!("apply -replace at TF_LOG=trace failed\n{out}"));
            }
            if !out.text.contains("HTTP exchange") {
                return Err("no provider HTTP lines in the trace output".into());
            }
            if out.text.contains(second) {
                return Err("the write-only password appears in the trace output".into());
            }
            let id = ctx.workspace.state().0["values"]["root_module"]["resources"][0]["values"]
                ["id"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            if !signs_in_with(ctx.tenant(), &id, second) {
                return Err("the re-created account does not have password_wo".into());
            }
            Ok(())
        }))
        .step(Step::destroy_check(|ctx| {
            let t = ctx.tenant().state.tenant();
            let active = t
                .directory
                .users
                .list_latest()
                .into_iter()
                .any(|u| u["userPrincipalName"] == "bg-wo@contoso.onmicrosoft.com");
            if active {
                return Err("the account is still active after destroy".into());
            }
            Ok(())
        }))
        .run();
}

#[test]
fn account_trace_log_holds_no_generated_password() {
    let upn = "bg-trace@contoso.onmicrosoft.com";
    Case::new()
        .with_tenant(FakeTenant::start())
        .step(Step::Apply(basic(upn, "Break Glass Trace")))
        .step(Step::check(|ctx| {
            let before = state_str(ctx, "password")?;
            let out = ctx.workspace.run_with(
                &[
                    "apply",
                    "-auto-approve",
                    "-input=false",
                    "-no-color",
                    &format!("-replace={ADDRESS}"),
                ],
                &[("TF_LOG", "trace")],
            );
            if !out.success() {
                return Err(format!("apply -replace at TF_LOG=trace failed\n{out}"));
            }
            if !out.text.contains("HTTP exchange") {
                return Err("no provider HTTP lines in the trace output".into());
            }
            let after = ctx.workspace.state().0["values"]["root_module"]["resources"][0]["values"]
                ["password"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            if after.is_empty() || after == before {
                return Err("the replacement did not generate a new password".into());
            }
            for (which, secret) in [("previous", &before), ("generated", &after)] {
                if out.text.contains(secret.as_str()) {
                    return Err(format!("the {which} password appears in the trace output"));
                }
            }
            Ok(())
        }))
        .run();
}

#[test]
fn account_refuses_duplicates_unsuitable_domains_and_synced_users() {
    Case::new()
        .with_tenant(FakeTenant::start())
        .step(Step::expect_error(
            basic("Emergency-Legacy@contoso.onmicrosoft.com", "Duplicate"),
            Stage::Apply,
            &format!(
                "User already exists[\\s\\S]*{}",
                phrase(
                    "terraform import breakglass_account.NAME 5d2c6f0e-3b1a-4c8e-9f7d-0a1b2c3d4e05"
                )
            ),
        ))
        .step(Step::expect_error(
            basic("bg@contoso.net", "Unverified"),
            Stage::Plan,
            &phrase("contoso.net is a domain of this tenant but is not verified"),
        ))
        .step(Step::expect_error(
            basic("bg@fabrikam.com", "Federated"),
            Stage::Plan,
            &phrase("fabrikam.com is a federated domain"),
        ))
        .step(Step::expect_error(
            basic("bg@nowhere.example", "Foreign"),
            Stage::Plan,
            &phrase("nowhere.example is not a domain of this tenant"),
        ))
        .step(Step::check(|ctx| {
            // Only the duplicate reached POST /users; plan-time failures wrote nothing.
            let posts = requests(ctx.tenant(), "POST", "^/v1.0/users$");
            if posts.len() != 1 {
                return Err(format!("expected only the duplicate's POST, got {posts:?}"));
            }
            Ok(())
        }))
        .step(Step::check(|ctx| {
            // A managed custom domain works, with the advice to use the initial domain.
            ctx.workspace
                .write_config(&basic("bg-custom@contoso.com", "Custom domain"));
            let out = ctx.workspace.run(&["plan", "-input=false", "-no-color"]);
            ctx.workspace.write_config("");
            if !out.success()
                || !out.matches(&regex::Regex::new(&phrase("outside the initial domain")).unwrap())
            {
                return Err(format!("expected a successful plan with a warning\n{out}"));
            }
            Ok(())
        }))
        .step(Step::check(|ctx| {
            ctx.workspace
                .write_config(&basic("bob@contoso.com", "Bob Synced"));
            let out = ctx.workspace.run(&[
                "import",
                "-input=false",
                "-no-color",
                ADDRESS,
                "bob@contoso.com",
            ]);
            ctx.workspace.write_config("");
            let says_why = regex::Regex::new(&phrase("must be cloud-only")).unwrap();
            if out.success() || !out.matches(&says_why) {
                return Err(format!("importing a synced user must fail clearly\n{out}"));
            }
            Ok(())
        }))
        .run();
}

#[test]
fn account_password_checks_happen_at_validate_tf1_11() {
    let weak = "weakpassword-only-lower";
    let upn = "bg-validate@contoso.onmicrosoft.com";
    let both_modes = account(&format!(
        "  user_principal_name = \"{upn}\"\n  display_name        = \"Both\"\n  \
         password_length     = 32\n  password_wo         = \"Str0ng-Enough-Pass\"\n  \
         password_wo_version = 1"
    ));
    Case::new()
        .requires("1.11")
        .with_tenant(FakeTenant::start())
        .step(Step::expect_error(
            write_only(upn, 1, weak),
            Stage::Validate,
            r"Password does not meet Microsoft Entra complexity rules[\s\S]*password_wo",
        ))
        .step(Step::check(move |ctx| {
            ctx.workspace.write_config(&write_only(upn, 1, weak));
            let out = ctx.workspace.run(&["validate", "-no-color"]);
            ctx.workspace.write_config("");
            // Terraform quotes the configuration line itself (`12:   password_wo = …`); the
            // diagnostic's own words must not repeat the value.
            let source_line = regex::Regex::new(r"^\s*\d+:").unwrap();
            let echoed = out
                .text
                .lines()
                .filter(|l| !source_line.is_match(l))
                .any(|l| l.contains(weak));
            if out.success() || echoed {
                return Err(format!(
                    "validate must fail without echoing the value\n{out}"
                ));
            }
            Ok(())
        }))
        .step(Step::expect_error(
            write_only("bg-validate@contoso.onmicrosoft.com", 1, "Bg-Validate-9x"),
            Stage::Validate,
            &phrase("contains the user's alias"),
        ))
        .step(Step::expect_error(
            both_modes,
            Stage::Validate,
            r"Conflicting password settings[\s\S]*password_wo",
        ))
        .step(Step::check(|ctx| {
            let writes = requests(ctx.tenant(), "POST", "^/v1.0/users");
            if !writes.is_empty() {
                return Err(format!("validation errors must write nothing: {writes:?}"));
            }
            Ok(())
        }))
        .run();
}

#[test]
fn account_create_is_clean_under_replication_lag() {
    let tenant = FakeTenant::start();
    tenant
        .state
        .tenant()
        .behaviour
        .settings
        .insert("graph.replication_lag_ms".into(), Json::from(1500));
    Case::new()
        .with_tenant(tenant)
        .step(Step::Apply(basic(
            "bg-lagged@contoso.onmicrosoft.com",
            "Break Glass Lagged",
        )))
        .step(Step::check(|ctx| {
            let id = state_str(ctx, "id")?;
            // The provider waited: a read right after the POST found nothing yet.
            let reads = requests(ctx.tenant(), "GET", &format!("^/v1.0/users/{id}$"));
            if !reads.iter().any(|r| r["status"] == 404) {
                return Err(format!("expected a 404 read during replication: {reads:?}"));
            }
            Ok(())
        }))
        .step(Step::PlanEmpty)
        .step(Step::import_state_verify(ADDRESS, &["password"]))
        .step(Step::destroy_check(|ctx| {
            let t = ctx.tenant().state.tenant();
            let active = t
                .directory
                .users
                .list_latest()
                .into_iter()
                .any(|u| u["userPrincipalName"] == "bg-lagged@contoso.onmicrosoft.com");
            if active {
                return Err("the account is still active after destroy".into());
            }
            Ok(())
        }))
        .run();
}

#[test]
fn account_deleted_out_of_band_is_created_again() {
    let upn = "bg-oob@contoso.onmicrosoft.com";
    let first_id = Arc::new(Mutex::new(String::new()));
    let (recorded, compared) = (first_id.clone(), first_id.clone());
    Case::new()
        .with_tenant(FakeTenant::start())
        .step(Step::Apply(basic(upn, "Break Glass OOB")))
        .step(Step::check(move |ctx| {
            let id = state_str(ctx, "id")?;
            ctx.tenant().state.tenant().directory.users.remove(&id);
            *recorded.lock().unwrap() = id;
            let out =
                ctx.workspace
                    .run(&["plan", "-detailed-exitcode", "-input=false", "-no-color"]);
            if out.exit_code != Some(2) || !out.text.contains("will be created") {
                return Err(format!(
                    "expected a plan to create the account again\n{out}"
                ));
            }
            Ok(())
        }))
        .step(Step::Apply(basic(upn, "Break Glass OOB")))
        .step(Step::check(move |ctx| {
            let id = state_str(ctx, "id")?;
            if id == *compared.lock().unwrap() || tenant_user(ctx.tenant(), &id).is_none() {
                return Err("the account was not created again".into());
            }
            Ok(())
        }))
        .run();
}

#[test]
fn account_permanently_deleted_on_destroy() {
    let config = account(
        "  user_principal_name = \"bg-purge@contoso.onmicrosoft.com\"\n  \
         display_name        = \"Break Glass Purge\"\n  permanently_delete_on_destroy = true",
    );
    let id = Arc::new(Mutex::new(String::new()));
    let (recorded, checked) = (id.clone(), id.clone());
    Case::new()
        .with_tenant(FakeTenant::start())
        .step(Step::Apply(config))
        .step(Step::check(move |ctx| {
            *recorded.lock().unwrap() = state_str(ctx, "id")?;
            Ok(())
        }))
        .step(Step::destroy_check(move |ctx| {
            let id = checked.lock().unwrap().clone();
            let tenant = ctx.tenant();
            if tenant_user(tenant, &id).is_some() || in_deleted_items(tenant, &id) {
                return Err("the account must be gone from users and deleted items".into());
            }
            let purges = requests(
                tenant,
                "DELETE",
                &format!("^/v1.0/directory/deletedItems/{id}$"),
            );
            if purges.is_empty() {
                return Err("no DELETE /directory/deletedItems/{id} was sent".into());
            }
            Ok(())
        }))
        .run();
}

#[test]
fn account_privileged_user_needs_privileged_authentication_administrator() {
    let tenant = FakeTenant::start();
    // `helpdesk-automation` has User.ReadWrite.All but no directory role.
    let (client_id, secret) = {
        let t = tenant.state.tenant();
        let app = t
            .auth
            .applications
            .iter()
            .find(|a| a.principal.app_id == "ceee1405-ca1d-44c2-8ee4-03a178f15a19")
            .expect("helpdesk app in the seed");
        (app.principal.app_id.clone(), app.client_secrets[0].clone())
    };
    let upn = "emergency-legacy@contoso.onmicrosoft.com";
    let rotate = account(&format!(
        "  user_principal_name = \"{upn}\"\n  display_name        = \"Emergency Access (legacy)\"\n  \
         password_rotation_trigger = {{ rotated = \"now\" }}"
    ));
    Case::new()
        .with_tenant(tenant)
        .env("ARM_CLIENT_ID", &client_id)
        .env("ARM_CLIENT_SECRET", &secret)
        .step(Step::check(move |ctx| {
            ctx.workspace
                .write_config(&basic(upn, "Emergency Access (legacy)"));
            let out = ctx
                .workspace
                .run(&["import", "-input=false", "-no-color", ADDRESS, upn]);
            ctx.workspace.write_config("");
            if !out.success() {
                return Err(format!("import of the legacy account failed\n{out}"));
            }
            Ok(())
        }))
        .step(Step::expect_error(
            rotate,
            Stage::Apply,
            &phrase("Privileged Authentication Administrator"),
        ))
        .step(Step::check(|ctx| {
            // The protected user is untouched; forget it so the final destroy leaves it be.
            let out = ctx.workspace.run(&["state", "rm", "-no-color", ADDRESS]);
            if !out.success() {
                return Err(format!("state rm failed\n{out}"));
            }
            let denied = requests(ctx.tenant(), "PATCH", "^/v1.0/users/");
            if denied.iter().any(|r| r["status"] != 403) {
                return Err(format!(
                    "a PATCH of the protected user succeeded: {denied:?}"
                ));
            }
            Ok(())
        }))
        .run();
}

#[test]
fn account_upn_casing_from_the_tenant_is_not_a_change() {
    let upn = "bg-case@contoso.onmicrosoft.com";
    Case::new()
        .with_tenant(FakeTenant::start())
        .step(Step::Apply(basic(upn, "Break Glass Case")))
        .step(Step::check(|ctx| {
            // Someone (or Entra itself) spells the UPN differently; it is the same name.
            let id = state_str(ctx, "id")?;
            let mut t = ctx.tenant().state.tenant();
            let mut user = t.directory.users.get_latest(&id).ok_or("no user")?.clone();
            user.insert(
                "userPrincipalName".into(),
                Json::from("BG-Case@Contoso.OnMicrosoft.com"),
            );
            t.directory.users.put(&id, user);
            Ok(())
        }))
        .step(Step::PlanEmpty)
        .step(Step::check(move |ctx| {
            let kept = state_str(ctx, "user_principal_name")?;
            if kept != upn {
                return Err(format!("state took the tenant's casing: {kept}"));
            }
            Ok(())
        }))
        .run();
}

#[test]
fn account_taken_over_by_directory_sync_is_flagged() {
    Case::new()
        .with_tenant(FakeTenant::start())
        .step(Step::Apply(basic(
            "bg-soft-match@contoso.onmicrosoft.com",
            "Break Glass Soft Match",
        )))
        .step(Step::check(|ctx| {
            let id = state_str(ctx, "id")?;
            let set_synced = |synced: bool| {
                let mut t = ctx.tenant().state.tenant();
                let mut user = t.directory.users.get_latest(&id).cloned().expect("user");
                user.insert("onPremisesSyncEnabled".into(), Json::from(synced));
                t.directory.users.put(&id, user);
            };
            // Entra Connect soft-matched the account.
            set_synced(true);
            let out = ctx.workspace.run(&["plan", "-input=false", "-no-color"]);
            // Undo it, or the synced user could not be deleted at the end.
            set_synced(false);
            let flagged = regex::Regex::new(&phrase("now synced from on-premises")).unwrap();
            if !out.success() || !out.matches(&flagged) {
                return Err(format!("expected a plan warning about the sync\n{out}"));
            }
            Ok(())
        }))
        .run();
}

/// A duration beyond Go's range used to overflow while parsing and crash the provider during
/// `terraform validate` ("Request cancelled"). It is a diagnostic on `timeouts.create`, and
/// the same provider process goes on validating the next resource (whose own error shows up).
#[test]
fn an_enormous_timeout_is_a_diagnostic_and_the_provider_keeps_serving() {
    let config = format!(
        "{}\nresource \"breakglass_account\" \"bg\" {{\n  user_principal_name = \"bg@contoso.onmicrosoft.com\"\n  \
         display_name = \"BG\"\n  timeouts {{\n    create = \"9999999999999999999h\"\n  }}\n}}\n\
         resource \"breakglass_role_assignment\" \"ga\" {{\n  principal_id = \"not-a-guid\"\n}}\n",
        required_providers()
    );
    Case::new()
        .step(Step::expect_error(
            config,
            Stage::Validate,
            r#"(?s)Invalid timeout.*create\s+= "9999999999999999999h".*too long.*Not an object id.*principal_id = "not-a-guid""#,
        ))
        .run();
}

/// After `terraform import` by object id the state holds the tenant's spelling of the UPN, and
/// Terraform itself requires a plan for a non-computed attribute to equal the configuration, so
/// a configuration spelling it in another case plans one in-place update of the UPN's case. The
/// provider knows the two are the same name: applying it sends nothing to Graph, and the next
/// plan is empty.
#[test]
fn account_imported_with_a_differently_cased_upn_settles_without_a_write() {
    let upn = "bg-import-case@contoso.onmicrosoft.com";
    let shouting = basic(&upn.to_uppercase(), "Break Glass Import Case");
    Case::new()
        .with_tenant(FakeTenant::start())
        .step(Step::Apply(basic(upn, "Break Glass Import Case")))
        .step(Step::check(move |ctx| {
            let id = state_str(ctx, "id")?;
            let fresh = ctx.workspace.fresh();
            fresh.write_config(&shouting);
            let import = fresh.run(&["import", "-input=false", "-no-color", ADDRESS, &id]);
            if !import.success() {
                return Err(format!("import failed\n{import}"));
            }
            let before = requests(ctx.tenant(), "PATCH", "^/v1.0/users/").len();
            let plan = fresh.run(&["plan", "-input=false", "-no-color", "-detailed-exitcode"]);
            let only_case = regex::Regex::new(&phrase("1 to change, 0 to destroy")).unwrap();
            if plan.exit_code != Some(2) || !plan.matches(&only_case) {
                return Err(format!(
                    "expected one in-place update of the UPN's case\n{plan}"
                ));
            }
            let apply = fresh.run(&["apply", "-auto-approve", "-input=false", "-no-color"]);
            let after = requests(ctx.tenant(), "PATCH", "^/v1.0/users/").len();
            if !apply.success() || after != before {
                return Err(format!(
                    "applying a case-only change must not write\n{apply}"
                ));
            }
            let again = fresh.run(&["plan", "-input=false", "-no-color", "-detailed-exitcode"]);
            if again.exit_code != Some(0) {
                return Err(format!("the plan after that apply must be empty\n{again}"));
            }
            // Leave the account to the case's own destroy.
            fresh.run(&["state", "rm", ADDRESS]);
            Ok(())
        }))
        .run();
}

/// The emergency account, its Global Administrator role and its CA exclusion, as a stack
/// protects them by default (`deletion_protection` unset) or with protection `off`.
fn protected_stack(protection: Option<bool>, principal_override: Option<&str>) -> String {
    let setting = protection
        .map(|p| format!("  deletion_protection = {p}\n"))
        .unwrap_or_default();
    let principal = principal_override
        .map(|p| format!("\"{p}\""))
        .unwrap_or_else(|| "breakglass_account.bg.object_id".to_owned());
    format!(
        "{}\nresource \"breakglass_account\" \"bg\" {{\n  user_principal_name = \"bg-protected@contoso.onmicrosoft.com\"\n  \
         display_name = \"BG Protected\"\n{setting}}}\n\
         resource \"breakglass_role_assignment\" \"ga\" {{\n  principal_id = {principal}\n{setting}}}\n\
         resource \"breakglass_ca_exclusion\" \"bg\" {{\n  user_ids = [breakglass_account.bg.object_id]\n}}\n",
        required_providers()
    )
}

/// Every conditional-access policy as the tenant holds it, without `modifiedDateTime` (which a
/// PATCH moves even when it restores a policy exactly).
fn ca_policies(tenant: &FakeTenant) -> Json {
    let t = tenant.state.tenant();
    let mut policies: Vec<Json> = t
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
    policies.sort_by_key(|p| p["id"].as_str().unwrap_or_default().to_owned());
    Json::Array(policies)
}

#[test]
fn account_deletion_protection_refuses_destroy_and_replace_and_deletes_nothing() {
    let before = Arc::new(Mutex::new(Json::Null));
    let (keep, compare) = (before.clone(), before.clone());
    Case::new()
        .with_tenant(FakeTenant::start())
        .step(Step::check(move |ctx| {
            *keep.lock().unwrap() = ca_policies(ctx.tenant());
            Ok(())
        }))
        .step(Step::Apply(protected_stack(None, None)))
        .step(Step::check(|ctx| {
            let protected = ctx.state.attribute(ADDRESS, "deletion_protection")?;
            if protected != Json::Bool(true) {
                return Err(format!(
                    "deletion_protection defaults to true, got {protected}"
                ));
            }
            // Destroy: refused at plan (Terraform >= 1.3) or before the delete (older).
            let out = ctx
                .workspace
                .run(&["destroy", "-auto-approve", "-input=false", "-no-color"]);
            let refused = regex::Regex::new(&phrase("Deletion protection is on")).unwrap();
            if out.success() || !out.matches(&refused) || !out.text.contains("deletion_protection")
            {
                return Err(format!(
                    "destroy must be refused naming deletion_protection\n{out}"
                ));
            }
            // Replace: a new principal would delete the assignment first.
            ctx.workspace.write_config(&protected_stack(
                None,
                Some("5d2c6f0e-3b1a-4c8e-9f7d-0a1b2c3d4e01"),
            ));
            let out = ctx
                .workspace
                .run(&["apply", "-auto-approve", "-input=false", "-no-color"]);
            ctx.workspace.write_config(&protected_stack(None, None));
            if out.success() || !out.matches(&refused) {
                return Err(format!(
                    "replacing a protected assignment must be refused\n{out}"
                ));
            }
            let t = ctx.tenant();
            let deletes = requests(t, "DELETE", "^/v1.0/users/");
            let removals: Vec<Json> = requests(t, "POST", "roleAssignmentScheduleRequests$")
                .into_iter()
                .filter(|r| r.to_string().contains("adminRemove"))
                .collect();
            if !deletes.is_empty() || !removals.is_empty() {
                return Err(format!("nothing may be deleted: {deletes:?} {removals:?}"));
            }
            Ok(())
        }))
        .step(Step::Apply(protected_stack(Some(false), None)))
        .step(Step::destroy_check(move |ctx| {
            let id_gone = requests(ctx.tenant(), "DELETE", "^/v1.0/users/").len() == 1;
            let policies = ca_policies(ctx.tenant());
            if !id_gone {
                return Err("the account was not deleted".into());
            }
            if policies != *compare.lock().unwrap() {
                return Err("every CA policy must be exactly as before the apply".into());
            }
            Ok(())
        }))
        .run();
}

// ---- certificate user ids and authentication methods (issue 10) ---------------------------

const PASSWORD_METHOD_ID: &str = "28c10230-6103-485e-b985-444c60001490";

/// Accounts `(alias, extra body lines)` on the initial domain, unprotected.
fn accounts(list: &[(&str, &str)]) -> String {
    let mut hcl = required_providers();
    for (alias, extra) in list {
        let name = match extra.contains("display_name") {
            true => String::new(),
            false => format!("  display_name = \"{alias}\"\n"),
        };
        hcl.push_str(&format!(
            "\nresource \"breakglass_account\" \"{}\" {{\n  user_principal_name = \"{alias}@contoso.onmicrosoft.com\"\n\
             {name}{extra}\n  deletion_protection = false\n}}\n",
            alias.replace('-', "_")
        ));
    }
    hcl
}

fn certificate_ids(values: &[&str]) -> String {
    let quoted: Vec<String> = values.iter().map(|v| format!("{v:?}")).collect();
    format!("  certificate_user_ids = [{}]", quoted.join(", "))
}

/// The user with `upn` as the tenant's primary replica holds it.
fn user_by_upn(tenant: &FakeTenant, upn: &str) -> Option<Json> {
    let t = tenant.state.tenant();
    t.directory
        .users
        .list_latest()
        .into_iter()
        .find(|u| u["userPrincipalName"] == upn)
        .map(|u| Json::Object(u.clone()))
}

/// `authorizationInfo.certificateUserIds` in the tenant, sorted.
fn tenant_certificate_ids(tenant: &FakeTenant, upn: &str) -> Result<Vec<String>, String> {
    let user = user_by_upn(tenant, upn).ok_or(format!("{upn} is not in the tenant"))?;
    let mut ids: Vec<String> = user["authorizationInfo"]["certificateUserIds"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect();
    ids.sort();
    Ok(ids)
}

fn expect_tenant_ids(ctx: &Ctx<'_>, upn: &str, want: &[&str]) -> Result<(), String> {
    let have = tenant_certificate_ids(ctx.tenant(), upn)?;
    let mut want: Vec<String> = want.iter().map(|s| (*s).to_owned()).collect();
    want.sort();
    match have == want {
        true => Ok(()),
        false => Err(format!(
            "{upn} holds {have:?} in the tenant, expected {want:?}"
        )),
    }
}

const PN_A: &str = "X509:<PN>bg-cba-a@contoso.com";
const SKI_A: &str = "X509:<SKI>aB1cD2eF3gH4iJ5kL6mN7oP8qR";
const SKI_B: &str = "X509:<SKI>zY9xW8vU7tS6rQ5pO4nM3lK2jI";

#[test]
fn account_certificate_user_ids_set_updated_cleared_and_methods_listed() {
    let a = "bg-cba-a";
    let upn_a = "bg-cba-a@contoso.onmicrosoft.com";
    let upn_b = "bg-cba-b@contoso.onmicrosoft.com";
    let only_a = |ids: &[&str]| accounts(&[(a, &certificate_ids(ids))]);
    let with_b =
        |b_extra: &str| accounts(&[(a, &certificate_ids(&[PN_A, SKI_A])), ("bg-cba-b", b_extra)]);
    let b_address = "breakglass_account.bg_cba_b";
    Case::new()
        .with_tenant(FakeTenant::start())
        .step(Step::Apply(only_a(&[PN_A, SKI_A])))
        .step(Step::check(move |ctx| {
            expect_tenant_ids(ctx, upn_a, &[PN_A, SKI_A])?;
            let methods = ctx
                .state
                .attribute("breakglass_account.bg_cba_a", "authentication_methods")?;
            let expected = serde_json::json!([{"type": "password", "id": PASSWORD_METHOD_ID,
                "display_name": null, "phishing_resistant": false}]);
            if methods != expected {
                return Err(format!("a new account has only its password: {methods}"));
            }
            Ok(())
        }))
        .step(Step::import_verify(
            "breakglass_account.bg_cba_a",
            upn_a,
            &["password"],
        ))
        // Updated: one value replaced, one kept.
        .step(Step::Apply(only_a(&[PN_A, SKI_B])))
        .step(Step::check(move |ctx| {
            expect_tenant_ids(ctx, upn_a, &[PN_A, SKI_B])
        }))
        .step(Step::Apply(only_a(&[PN_A, SKI_A])))
        // A passkey is registered (the emulator's stand-in for a person with the key); a
        // refresh shows it, phishing-resistant, and plans nothing.
        .step(Step::check(move |ctx| {
            let id = ctx.state.attribute("breakglass_account.bg_cba_a", "id")?;
            let id = id.as_str().ok_or("no id")?;
            ctx.tenant().admin_post(
                &format!("/directory/users/{id}/fido2"),
                serde_json::json!({"displayName": "Vault key 1", "passkeyType": "deviceBound"}),
            );
            let out = ctx.workspace.run(&[
                "apply",
                "-refresh-only",
                "-auto-approve",
                "-input=false",
                "-no-color",
            ]);
            if !out.success() {
                return Err(format!("refresh failed\n{out}"));
            }
            Ok(())
        }))
        .step(Step::PlanEmpty)
        .step(Step::check(|ctx| {
            let methods = ctx
                .state
                .attribute("breakglass_account.bg_cba_a", "authentication_methods")?;
            let kinds: Vec<(&str, bool)> = methods
                .as_array()
                .into_iter()
                .flatten()
                .map(|m| {
                    (
                        m["type"].as_str().unwrap_or_default(),
                        m["phishing_resistant"] == true,
                    )
                })
                .collect();
            let passkey = methods
                .as_array()
                .and_then(|m| m.iter().find(|m| m["type"] == "fido2"))
                .ok_or(format!("no passkey listed: {methods}"))?;
            if kinds != [("fido2", true), ("password", false)]
                || passkey["display_name"] != "Vault key 1"
                || passkey["id"].as_str().is_none_or(str::is_empty)
            {
                return Err(format!("expected the passkey and the password: {methods}"));
            }
            Ok(())
        }))
        // A duplicate on create: refused on the attribute before anything is written.
        .step(Step::expect_error(
            with_b(&certificate_ids(&[SKI_A])),
            Stage::Apply,
            &format!(
                r"{}[\s\S]*certificate_user_ids",
                phrase("Certificate user id already in use")
            ),
        ))
        .step(Step::check(move |ctx| {
            if user_by_upn(ctx.tenant(), upn_b).is_some() {
                return Err("a refused create left the user behind".into());
            }
            let posts = requests(ctx.tenant(), "POST", "^/v1.0/users$");
            if posts.len() != 1 {
                return Err(format!(
                    "only the first account may have been created: {posts:?}"
                ));
            }
            Ok(())
        }))
        // The second account without certificate ids: the attribute shows the tenant's (none).
        .step(Step::Apply(with_b("")))
        .step(Step::check(move |ctx| {
            let ids = ctx.state.attribute(b_address, "certificate_user_ids")?;
            if ids != serde_json::json!([]) {
                return Err(format!("unset shows what the tenant holds (none): {ids}"));
            }
            Ok(())
        }))
        // A duplicate on update, together with a rename: the one PATCH is refused whole.
        .step(Step::expect_error(
            with_b(&format!(
                "  display_name = \"renamed\"\n{}",
                certificate_ids(&[SKI_A])
            )),
            Stage::Apply,
            &format!(
                r"{}[\s\S]*bg-cba-a",
                phrase("Certificate user id already in use")
            ),
        ))
        .step(Step::check(move |ctx| {
            let b = user_by_upn(ctx.tenant(), upn_b).ok_or("the second account is gone")?;
            if b["displayName"] != "bg-cba-b" {
                return Err(format!("the refused update renamed the account: {b}"));
            }
            expect_tenant_ids(ctx, upn_b, &[])?;
            expect_tenant_ids(ctx, upn_a, &[PN_A, SKI_A])
        }))
        // Cleared.
        .step(Step::Apply(only_a(&[])))
        .step(Step::check(move |ctx| expect_tenant_ids(ctx, upn_a, &[])))
        .step(Step::destroy_check(|_| Ok(())))
        .run();
}

#[test]
fn account_create_whose_certificate_ids_are_refused_leaves_no_user() {
    // A soft-deleted user keeps its certificate user ids (the value stays taken), but it is not
    // among /users, so only the write itself can find the conflict: the create is undone.
    let first = accounts(&[("bg-cba-old", &certificate_ids(&[SKI_A]))]);
    let second = accounts(&[("bg-cba-new", &certificate_ids(&[SKI_A]))]);
    let upn_new = "bg-cba-new@contoso.onmicrosoft.com";
    Case::new()
        .with_tenant(FakeTenant::start())
        .step(Step::Apply(first))
        .step(Step::Apply(required_providers()))
        .step(Step::expect_error(
            second,
            Stage::Apply,
            &format!(
                r"{}[\s\S]*certificate_user_ids",
                phrase("Certificate user id already in use")
            ),
        ))
        .step(Step::check(move |ctx| {
            let t = ctx.tenant();
            let posts = requests(t, "POST", "^/v1.0/users$");
            if posts.len() != 2 {
                return Err(format!(
                    "expected the second create to have been tried: {posts:?}"
                ));
            }
            if user_by_upn(t, upn_new).is_some() {
                return Err("the refused create left a live user".into());
            }
            let deleted: Vec<String> = {
                let model = t.state.tenant();
                let items = model.directory.deleted_items.list_latest();
                items
                    .iter()
                    .map(|u| u["userPrincipalName"].to_string())
                    .collect()
            };
            if deleted.iter().any(|u| u.contains("bg-cba-new")) {
                return Err(format!(
                    "the undone create left a deleted user: {deleted:?}"
                ));
            }
            if !ctx.state.is_empty() {
                return Err("nothing may be in state".into());
            }
            Ok(())
        }))
        .run();
}
