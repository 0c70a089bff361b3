//! `breakglass_role_assignment` end to end: real terraform, the provider and the emulated
//! tenant's PIM (asynchronous provisioning, role settings, request log) and direct role
//! assignments. Tenant-side checks read the emulator's PIM model and request log directly.

use serde_json::{json, Value as Json};

use crate::harness::{required_providers, Case, Ctx, FakeTenant, Stage, Step};

const GLOBAL_ADMINISTRATOR: &str = "62e90394-69f5-4237-9190-012177145e10";
const ALICE: &str = "5d2c6f0e-3b1a-4c8e-9f7d-0a1b2c3d4e01";
const ERIN: &str = "5d2c6f0e-3b1a-4c8e-9f7d-0a1b2c3d4e06";
/// Holds Global Administrator in the seed (a direct assignment).
const EMERGENCY_LEGACY: &str = "5d2c6f0e-3b1a-4c8e-9f7d-0a1b2c3d4e05";
const DEFAULT_JUSTIFICATION: &str =
    "Permanent emergency-access (break-glass) role assignment managed by Terraform";

const ADDRESS: &str = "breakglass_role_assignment.ga";
const REQUESTS_PATH: &str = "^/v1.0/roleManagement/directory/roleAssignmentScheduleRequests$";

fn config(principal: &str, extra: &str) -> String {
    format!(
        "{}\nresource \"breakglass_role_assignment\" \"ga\" {{\n  principal_id = \"{principal}\"\n  deletion_protection = false\n{extra}}}\n",
        required_providers()
    )
}

// ---------------------------------------------------------------------------------------------
// Looking into the tenant

/// Global Administrator is in force for the principal right now.
fn holds_global_admin(tenant: &FakeTenant, principal: &str) -> bool {
    tenant
        .state
        .tenant()
        .pim
        .directory_roles_of(principal)
        .iter()
        .any(|r| r.eq_ignore_ascii_case(GLOBAL_ADMINISTRATOR))
}

/// The PIM area's dump: assignments in force (with their end) and every schedule request.
fn pim_dump(tenant: &FakeTenant) -> Json {
    tenant.state.tenant().pim.dump()
}

fn global_admin_assignment(tenant: &FakeTenant, principal: &str) -> Option<Json> {
    pim_dump(tenant)["roleAssignments"]
        .as_array()?
        .iter()
        .find(|a| {
            a["principalId"].as_str() == Some(principal)
                && a["roleDefinitionId"].as_str() == Some(GLOBAL_ADMINISTRATOR)
        })
        .cloned()
}

fn schedule_requests(tenant: &FakeTenant, principal: &str, action: &str) -> Vec<Json> {
    pim_dump(tenant)["roleAssignmentScheduleRequests"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| r["principalId"].as_str() == Some(principal) && r["action"] == action)
        .cloned()
        .collect()
}

/// `(status, method)` of each logged request whose path matches `path`, in order.
fn logged(tenant: &FakeTenant, method: &str, path: &str) -> Vec<Option<u64>> {
    let path = regex::Regex::new(path).unwrap();
    tenant
        .state
        .tenant()
        .behaviour
        .request_log
        .iter()
        .filter(|r| r["method"] == method && path.is_match(r["path"].as_str().unwrap_or_default()))
        .map(|r| r["status"].as_u64())
        .collect()
}

fn set_setting(tenant: &FakeTenant, key: &str, value: Json) {
    tenant
        .state
        .tenant()
        .behaviour
        .settings
        .insert(key.to_owned(), value);
}

fn inject(tenant: &FakeTenant, rule: Json) {
    let mut t = tenant.state.tenant();
    let id = t.behaviour.next_id();
    let rule = fake_tenant::behaviour::FaultRule::from_json(id, &rule).expect("fault rule");
    t.behaviour.faults.push(rule);
}

fn attr(ctx: &Ctx<'_>, name: &str) -> Result<Json, String> {
    ctx.state.attribute(ADDRESS, name)
}

fn expect_attr(ctx: &Ctx<'_>, name: &str, want: Json) -> Result<(), String> {
    let got = attr(ctx, name)?;
    if got == want {
        Ok(())
    } else {
        Err(format!("{name} is {got}, expected {want}"))
    }
}

/// Graph as another administrator would use it: the seed app's client-credentials token.
struct GraphAdmin {
    base: String,
    token: String,
    http: reqwest::Client,
    runtime: tokio::runtime::Runtime,
}

impl GraphAdmin {
    fn new(tenant: &FakeTenant) -> GraphAdmin {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let http = reqwest::Client::new();
        let answer: Json = runtime
            .block_on(async {
                http.post(format!(
                    "{}/{}/oauth2/v2.0/token",
                    tenant.base_url, tenant.tenant_id
                ))
                .form(&[
                    ("grant_type", "client_credentials"),
                    ("client_id", tenant.client_id.as_str()),
                    ("client_secret", tenant.client_secret.as_str()),
                    ("scope", "https://graph.microsoft.com/.default"),
                ])
                .send()
                .await?
                .json()
                .await
            })
            .expect("token");
        GraphAdmin {
            base: format!("{}/v1.0", tenant.base_url),
            token: answer["access_token"]
                .as_str()
                .expect("access token")
                .to_owned(),
            http,
            runtime,
        }
    }

    fn post(&self, path: &str, body: Json) -> Json {
        let (status, answer) = self.runtime.block_on(async {
            let response = self
                .http
                .post(format!("{}{path}", self.base))
                .bearer_auth(&self.token)
                .json(&body)
                .send()
                .await
                .expect("POST");
            let status = response.status();
            (status, response.json::<Json>().await.unwrap_or(Json::Null))
        });
        assert!(status.is_success(), "POST {path}: {status} {answer}");
        answer
    }
}

/// A new cloud user, made through Graph the way an account resource would.
fn create_user(tenant: &FakeTenant, alias: &str) -> String {
    let user = GraphAdmin::new(tenant).post(
        "/users",
        json!({
            "accountEnabled": true,
            "displayName": format!("Break glass {alias}"),
            "mailNickname": alias,
            "userPrincipalName": format!("{alias}@contoso.onmicrosoft.com"),
            "passwordProfile": {"password": "Correct-Horse-Battery-9!", "forceChangePasswordNextSignIn": false},
        }),
    );
    user["id"].as_str().expect("user id").to_owned()
}

/// An administrator's PIM request outside Terraform, waited on until PIM has provisioned it.
fn pim_request_out_of_band(tenant: &FakeTenant, body: Json) {
    let request = GraphAdmin::new(tenant).post(
        "/roleManagement/directory/roleAssignmentScheduleRequests",
        body,
    );
    let id = request["id"].as_str().unwrap().to_owned();
    for _ in 0..200 {
        let status = pim_dump(tenant)["roleAssignmentScheduleRequests"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["id"] == id.as_str())
            .map(|r| r["status"].clone());
        if matches!(
            status.as_ref().and_then(Json::as_str),
            Some("Provisioned" | "Revoked")
        ) {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!("out-of-band PIM request {id} was never provisioned");
}

/// `terraform plan` proposes changes and its output matches `pattern`.
fn plan_proposes(pattern: &'static str) -> impl Fn(&Ctx<'_>) -> Result<(), String> {
    move |ctx| {
        let out = ctx
            .workspace
            .run(&["plan", "-detailed-exitcode", "-input=false", "-no-color"]);
        let pattern = regex::Regex::new(pattern).unwrap();
        if out.exit_code == Some(2) && out.matches(&pattern) {
            Ok(())
        } else {
            Err(format!("expected a plan matching /{pattern}/\n{out}"))
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Cases

/// The main story: a fresh account gets permanent Global Administrator through PIM. Apply
/// waits out PIM's asynchronous provisioning, import reproduces the state, a new ticket is
/// recorded in place with adminUpdate, and destroy revokes the schedule.
#[test]
fn pim_gives_a_new_account_permanent_global_admin_and_revokes_it_on_destroy() {
    let tenant = FakeTenant::start();
    // Long enough that a create which did not wait would see nothing provisioned.
    set_setting(&tenant, "pim.provisioning_delay_ms", json!(1500));
    let user = create_user(&tenant, "bg-pim-1");
    let u = user.clone();
    let u2 = user.clone();
    let u3 = user.clone();
    let u4 = user.clone();
    Case::new()
        .with_tenant(tenant)
        .step(Step::Apply(config(
            &user,
            "  timeouts {\n    create = \"5m\"\n  }\n",
        )))
        .step(Step::check(move |ctx| {
            expect_attr(ctx, "id", json!(format!("{u}/{GLOBAL_ADMINISTRATOR}")))?;
            expect_attr(ctx, "status", json!("Provisioned"))?;
            expect_attr(ctx, "assignment_method", json!("pim"))?;
            expect_attr(ctx, "assignment_type", json!("Assigned"))?;
            expect_attr(ctx, "end_date_time", Json::Null)?;
            expect_attr(ctx, "justification", json!(DEFAULT_JUSTIFICATION))?;
            let tenant = ctx.tenant();
            if !holds_global_admin(tenant, &u) {
                return Err("the user does not hold Global Administrator".into());
            }
            let assignment = global_admin_assignment(tenant, &u).ok_or("no assignment")?;
            if !assignment["endDateTime"].is_null() {
                return Err(format!("assignment is not permanent: {assignment}"));
            }
            let assigns = schedule_requests(tenant, &u, "adminAssign");
            if assigns.len() != 1 {
                return Err(format!("expected one adminAssign, got {assigns:?}"));
            }
            // The schedule PIM created is the one in state.
            expect_attr(ctx, "schedule_id", assigns[0]["targetScheduleId"].clone())?;
            if assigns[0]["scheduleInfo"]["expiration"]["type"] != "noExpiration" {
                return Err(format!("not a permanent request: {}", assigns[0]));
            }
            Ok(())
        }))
        .step(Step::import_state_verify(ADDRESS, &["timeouts"]))
        .step(Step::Apply(config(
            &user,
            "  justification = \"Annual break-glass review 2026\"\n  ticket_number = \"CHG-4711\"\n  ticket_system = \"ServiceNow\"\n",
        )))
        .step(Step::check(move |ctx| {
            expect_attr(ctx, "ticket_number", json!("CHG-4711"))?;
            expect_attr(ctx, "status", json!("Provisioned"))?;
            let tenant = ctx.tenant();
            let updates = schedule_requests(tenant, &u2, "adminUpdate");
            match updates.as_slice() {
                [update] if update["ticketInfo"]["ticketNumber"] == "CHG-4711"
                    && update["justification"] == "Annual break-glass review 2026"
                    && update["scheduleInfo"]["expiration"]["type"] == "noExpiration" => {}
                other => return Err(format!("expected one adminUpdate with the ticket: {other:?}")),
            }
            // In place: still the one assignment, never removed.
            if !schedule_requests(tenant, &u2, "adminRemove").is_empty() {
                return Err("an update must not remove the assignment".into());
            }
            if !holds_global_admin(tenant, &u2) {
                return Err("Global Administrator lost during the update".into());
            }
            Ok(())
        }))
        .step(Step::import_state_verify(ADDRESS, &[]))
        .step(Step::destroy_check(move |ctx| {
            let tenant = ctx.tenant();
            if holds_global_admin(tenant, &u3) || global_admin_assignment(tenant, &u3).is_some() {
                return Err("Global Administrator is still assigned after destroy".into());
            }
            let removals = schedule_requests(tenant, &u4, "adminRemove");
            if removals.len() != 1 {
                return Err(format!("expected one adminRemove, got {removals:?}"));
            }
            Ok(())
        }))
        .run();
}

/// Role settings that forbid permanent active assignments fail the plan on
/// role_definition_id, before anything is written; the documented fallback (`direct`) then
/// works through its whole lifecycle.
#[test]
fn forbidden_permanence_fails_the_plan_and_direct_assignment_is_the_fallback() {
    let pim_config = config(
        ALICE,
        &format!("  role_definition_id = \"{GLOBAL_ADMINISTRATOR}\"\n"),
    );
    let direct = config(ALICE, "  assignment_method = \"direct\"\n");
    Case::new()
        .with_tenant(FakeTenant::with_seed("forbid-permanent"))
        .step(Step::expect_error(
            pim_config,
            Stage::Plan,
            // The diagnostic names the rule and both fixes, and points at the attribute line.
            r#"(?s)forbid a permanent assignment.*role_definition_id = "62e90394.*isExpirationRequired.*Allow permanent active assignment.*assignment_method = "direct""#,
        ))
        .step(Step::check(|ctx| {
            let posts = logged(ctx.tenant(), "POST", REQUESTS_PATH);
            if !posts.is_empty() {
                return Err(format!("the plan sent schedule requests: {posts:?}"));
            }
            if holds_global_admin(ctx.tenant(), ALICE) {
                return Err("Alice got Global Administrator".into());
            }
            Ok(())
        }))
        .step(Step::Apply(direct))
        .step(Step::check(|ctx| {
            expect_attr(ctx, "assignment_method", json!("direct"))?;
            expect_attr(ctx, "schedule_id", Json::Null)?;
            expect_attr(ctx, "justification", Json::Null)?;
            let tenant = ctx.tenant();
            if !holds_global_admin(tenant, ALICE) {
                return Err("Alice does not hold Global Administrator".into());
            }
            let direct_posts = logged(tenant, "POST", "^/v1.0/roleManagement/directory/roleAssignments$");
            if direct_posts != [Some(201)] {
                return Err(format!("expected one direct POST, got {direct_posts:?}"));
            }
            if !logged(tenant, "POST", REQUESTS_PATH).is_empty() {
                return Err("direct must not go through PIM".into());
            }
            Ok(())
        }))
        .step(Step::import_state_verify(ADDRESS, &[]))
        .step(Step::destroy_check(|ctx| {
            let tenant = ctx.tenant();
            if holds_global_admin(tenant, ALICE) || global_admin_assignment(tenant, ALICE).is_some() {
                return Err("the direct assignment is still there".into());
            }
            let deletes = logged(tenant, "DELETE", "^/v1.0/roleManagement/directory/roleAssignments/");
            if deletes != [Some(204)] {
                return Err(format!("expected one DELETE, got {deletes:?}"));
            }
            Ok(())
        }))
        .run();
}

/// A principal that already holds the role: the error says so and gives the exact import
/// command; nothing is created or changed.
#[test]
fn an_existing_assignment_is_reported_with_the_import_command() {
    Case::new()
        .with_tenant(FakeTenant::start())
        .step(Step::expect_error(
            config(EMERGENCY_LEGACY, ""),
            Stage::Apply,
            &format!(
                "already holds this role.*RoleAssignmentExists.*terraform import breakglass_role_assignment.<name> {EMERGENCY_LEGACY}/{GLOBAL_ADMINISTRATOR}"
            ),
        ))
        .step(Step::check(|ctx| {
            let tenant = ctx.tenant();
            if !ctx.state.is_empty() {
                return Err("a refused create must leave nothing in state".into());
            }
            if logged(tenant, "POST", REQUESTS_PATH) != [Some(400)] {
                return Err("expected exactly one refused request".into());
            }
            if !holds_global_admin(tenant, EMERGENCY_LEGACY) {
                return Err("the existing assignment was disturbed".into());
            }
            Ok(())
        }))
        // Importing it, as suggested, gives a direct assignment (made outside PIM).
        .step(Step::check(|ctx| {
            let ws = ctx.workspace;
            // As written after an import: deletion protection left at its default, which the
            // import sets (the state is removed below, before the case's destroy).
            let imported = config(EMERGENCY_LEGACY, "  assignment_method = \"direct\"\n")
                .replace("  deletion_protection = false\n", "");
            ws.write_config(&imported);
            let id = format!("{EMERGENCY_LEGACY}/{GLOBAL_ADMINISTRATOR}");
            let out = ws.run(&["import", "-input=false", "-no-color", ADDRESS, &id]);
            if !out.success() {
                return Err(format!("import failed\n{out}"));
            }
            let plan = ws.run(&["plan", "-detailed-exitcode", "-input=false", "-no-color"]);
            // Leave state empty again so the case's final destroy keeps the seeded assignment.
            let rm = ws.run(&["state", "rm", ADDRESS]);
            if plan.exit_code != Some(0) {
                return Err(format!("plan after import is not empty\n{plan}"));
            }
            if !rm.success() {
                return Err(format!("state rm failed\n{rm}"));
            }
            Ok(())
        }))
        .run();
}

/// Role settings that demand ticket information (Enablement_Admin_Assignment: Ticketing) fail
/// the plan on ticket_number until one is given; with it, PIM records the ticket.
#[test]
fn role_settings_that_require_a_ticket_fail_the_plan_without_one() {
    let dir = tempfile::tempdir().expect("temp dir");
    let seed = dir.path().join("ticketing.json");
    let rules = json!({GLOBAL_ADMINISTRATOR: {
        "Enablement_Admin_Assignment": {"enabledRules": ["Justification", "Ticketing"]}
    }});
    let patch = json!({"extends": "default", "pim": {"policies": {"ruleOverrides": rules}}});
    std::fs::write(&seed, patch.to_string()).expect("write seed");
    let tenant = FakeTenant::with_seed(seed.to_str().expect("utf-8 path"));
    set_setting(&tenant, "pim.provisioning_delay_ms", json!(300));
    Case::new()
        .with_tenant(tenant)
        .step(Step::expect_error(
            config(ALICE, ""),
            Stage::Plan,
            r"(?s)require a ticket.*Ticketing.*Set ticket_number",
        ))
        .step(Step::check(|ctx| {
            let posts = logged(ctx.tenant(), "POST", REQUESTS_PATH);
            if posts.is_empty() {
                Ok(())
            } else {
                Err(format!("the plan sent schedule requests: {posts:?}"))
            }
        }))
        .step(Step::Apply(config(
            ALICE,
            "  ticket_number = \"INC-0815\"\n  ticket_system = \"Jira\"\n",
        )))
        .step(Step::check(|ctx| {
            let assigns = schedule_requests(ctx.tenant(), ALICE, "adminAssign");
            match assigns.as_slice() {
                [a] if a["ticketInfo"]
                    == json!({"ticketNumber": "INC-0815", "ticketSystem": "Jira"}) =>
                {
                    Ok(())
                }
                other => Err(format!(
                    "expected one adminAssign with the ticket: {other:?}"
                )),
            }
        }))
        .step(Step::import_state_verify(ADDRESS, &[]))
        .run();
}

/// Changes made outside Terraform are corrected: an end date set by another administrator is
/// removed in place, and an assignment removed outside Terraform is created again.
#[test]
fn out_of_band_expiry_is_made_permanent_and_removal_is_recreated() {
    let tenant = FakeTenant::start();
    set_setting(&tenant, "pim.provisioning_delay_ms", json!(300));
    let cfg = config(ERIN, "");
    Case::new()
        .with_tenant(tenant)
        .step(Step::Apply(cfg.clone()))
        .step(Step::check(|ctx| {
            pim_request_out_of_band(
                ctx.tenant(),
                json!({
                    "action": "adminUpdate",
                    "principalId": ERIN,
                    "roleDefinitionId": GLOBAL_ADMINISTRATOR,
                    "directoryScopeId": "/",
                    "justification": "Temporary until review",
                    "scheduleInfo": {"expiration": {"type": "afterDuration", "duration": "P30D"}},
                }),
            );
            Ok(())
        }))
        .step(Step::check(plan_proposes(
            r"(?s)breakglass_role_assignment.ga will be updated in-place.*end_date_time\s+=\s+.*-> null",
        )))
        .step(Step::Apply(cfg.clone()))
        .step(Step::check(|ctx| {
            expect_attr(ctx, "end_date_time", Json::Null)?;
            expect_attr(ctx, "justification", json!(DEFAULT_JUSTIFICATION))?;
            let assignment = global_admin_assignment(ctx.tenant(), ERIN).ok_or("no assignment")?;
            if !assignment["endDateTime"].is_null() {
                return Err(format!("still time-bound: {assignment}"));
            }
            pim_request_out_of_band(
                ctx.tenant(),
                json!({
                    "action": "adminRemove",
                    "principalId": ERIN,
                    "roleDefinitionId": GLOBAL_ADMINISTRATOR,
                    "directoryScopeId": "/",
                }),
            );
            Ok(())
        }))
        .step(Step::check(plan_proposes(
            r"breakglass_role_assignment.ga will be created",
        )))
        .step(Step::Apply(cfg))
        .step(Step::check(|ctx| {
            if !holds_global_admin(ctx.tenant(), ERIN) {
                return Err("Global Administrator was not assigned again".into());
            }
            expect_attr(ctx, "status", json!("Provisioned"))
        }))
        .run();
}

/// A 503 on the create: the probe finds no accepted request, so the create is sent once more,
/// and PIM ends up with exactly one request and one assignment.
#[test]
fn a_503_on_the_schedule_request_still_makes_exactly_one_request() {
    let tenant = FakeTenant::start();
    set_setting(&tenant, "pim.provisioning_delay_ms", json!(300));
    inject(
        &tenant,
        json!({"method": "POST", "path": REQUESTS_PATH, "status": 503, "times": 1}),
    );
    Case::new()
        .with_tenant(tenant)
        .step(Step::Apply(config(ALICE, "")))
        .step(Step::check(|ctx| {
            let tenant = ctx.tenant();
            let posts = logged(tenant, "POST", REQUESTS_PATH);
            if posts != [Some(503), Some(201)] {
                return Err(format!("expected 503 then 201, got {posts:?}"));
            }
            // The probe looked for an accepted request before sending again.
            let log = tenant.state.tenant().behaviour.request_log.clone();
            let position = |status: u64| {
                log.iter().position(|r| {
                    r["method"] == "POST"
                        && r["status"] == status
                        && r["path"]
                            .as_str()
                            .is_some_and(|p| p.ends_with("roleAssignmentScheduleRequests"))
                })
            };
            let (first, second) = (position(503).unwrap(), position(201).unwrap());
            let probed = log[first..second].iter().any(|r| {
                r["method"] == "GET"
                    && r["path"]
                        .as_str()
                        .is_some_and(|p| p.ends_with("roleAssignmentScheduleRequests"))
            });
            if !probed {
                return Err("no probe between the two POSTs".into());
            }
            let assigns = schedule_requests(tenant, ALICE, "adminAssign");
            if assigns.len() != 1 {
                return Err(format!("expected one request in PIM, got {assigns:?}"));
            }
            if !holds_global_admin(tenant, ALICE) {
                return Err("Alice does not hold Global Administrator".into());
            }
            Ok(())
        }))
        .run();
}

/// A principal created in the same apply can be unknown to role management for a while
/// (terraform-provider-azuread#1035): the 404s are retried until it is found.
#[test]
fn a_principal_that_has_not_replicated_yet_is_retried() {
    let tenant = FakeTenant::start();
    set_setting(&tenant, "pim.provisioning_delay_ms", json!(300));
    // Graph's answer for a principal role management cannot see yet.
    inject(
        &tenant,
        json!({
            "method": "POST", "path": REQUESTS_PATH, "status": 404, "times": 2,
            "body": {"error": {
                "code": "Request_ResourceNotFound",
                "message": format!("Resource '{ALICE}' does not exist or one of its queried reference-property objects are not present."),
                "innerError": {}
            }}
        }),
    );
    Case::new()
        .with_tenant(tenant)
        .step(Step::Apply(config(ALICE, "")))
        .step(Step::check(|ctx| {
            let tenant = ctx.tenant();
            let posts = logged(tenant, "POST", REQUESTS_PATH);
            if posts != [Some(404), Some(404), Some(201)] {
                return Err(format!("expected 404, 404, 201; got {posts:?}"));
            }
            if !holds_global_admin(tenant, ALICE) {
                return Err("Alice does not hold Global Administrator".into());
            }
            Ok(())
        }))
        .run();
}

/// The same, with real replication lag instead of an injected answer: a user created through
/// Graph moments before the apply is not yet a usable principal, and the create waits for it.
#[test]
fn a_user_created_moments_before_the_apply_gets_the_role_once_replicated() {
    let tenant = FakeTenant::start();
    set_setting(&tenant, "pim.provisioning_delay_ms", json!(300));
    // Longer than terraform takes to reach the create, so the first attempt must meet the lag.
    set_setting(&tenant, "graph.replication_lag_ms", json!(12_000));
    let user = create_user(&tenant, "bg-lagged");
    let u = user.clone();
    Case::new()
        .with_tenant(tenant)
        .step(Step::Apply(config(&user, "")))
        .step(Step::check(move |ctx| {
            let tenant = ctx.tenant();
            let posts = logged(tenant, "POST", REQUESTS_PATH);
            let (last, retries) = posts.split_last().ok_or("no request was sent")?;
            if *last != Some(201) || retries.is_empty() || retries.iter().any(|s| *s != Some(404)) {
                return Err(format!(
                    "expected 404s while replicating, then 201; got {posts:?}"
                ));
            }
            if schedule_requests(tenant, &u, "adminAssign").len() != 1 {
                return Err("expected exactly one adminAssign".into());
            }
            if !holds_global_admin(tenant, &u) {
                return Err("the new user does not hold Global Administrator".into());
            }
            expect_attr(ctx, "status", json!("Provisioned"))
        }))
        .run();
}

/// Static mistakes fail `terraform validate` on the attribute, without a tenant.
#[test]
fn invalid_values_fail_validation_on_their_attribute() {
    Case::new()
        .step(Step::expect_error(
            config("alice@contoso.com", ""),
            Stage::Validate,
            r#"(?s)Not an object id.*principal_id = "alice@contoso.com".*must be a GUID"#,
        ))
        .step(Step::expect_error(
            config(ALICE, "  assignment_method = \"eligible\"\n"),
            Stage::Validate,
            r#"(?s)Invalid assignment method.*assignment_method = "eligible""#,
        ))
        .step(Step::expect_error(
            config(
                ALICE,
                "  assignment_method = \"direct\"\n  ticket_number = \"CHG-1\"\n",
            ),
            Stage::Validate,
            r#"(?s)Not available for direct assignments.*ticket_number = "CHG-1""#,
        ))
        .run();
}

/// A tenant without Microsoft Entra ID P2 has no PIM: the plan fails on assignment_method with
/// the documented licence error and the `direct` alternative — nothing is sent, and nothing
/// switches by itself; `direct` then works, and reads and imports without PIM.
#[test]
fn a_tenant_without_pim_fails_the_plan_and_suggests_direct() {
    let direct = config(ALICE, "  assignment_method = \"direct\"\n");
    Case::new()
        .with_tenant(FakeTenant::with_seed("no-p2"))
        .step(Step::expect_error(
            config(ALICE, ""),
            Stage::Plan,
            r#"(?s)no Privileged Identity Management.*AadPremiumLicenseRequired.*assignment_method = "direct""#,
        ))
        .step(Step::check(|ctx| {
            let writes: Vec<Json> = ctx
                .tenant()
                .state
                .tenant()
                .behaviour
                .request_log
                .iter()
                .filter(|r| r["method"] == "POST" && r["family"] != "token")
                .cloned()
                .collect();
            if !writes.is_empty() {
                return Err(format!("a refused plan wrote: {writes:?}"));
            }
            Ok(())
        }))
        .step(Step::Apply(direct))
        .step(Step::check(|ctx| {
            expect_attr(ctx, "assignment_method", json!("direct"))?;
            if !holds_global_admin(ctx.tenant(), ALICE) {
                return Err("Alice does not hold Global Administrator".into());
            }
            Ok(())
        }))
        .step(Step::import_state_verify(ADDRESS, &[]))
        .run();
}
