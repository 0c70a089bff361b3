//! Requests per command (issue 13, P4): the quickstart's apply, a no-change plan (its refresh)
//! and destroy, counted from the emulated tenant's request log, next to the least any client
//! could send for the same work; and a refresh of four accounts in a 195-policy tenant, which
//! must list the conditional-access policies once per `breakglass_ca_exclusion`, not once per
//! account or per policy. Request counts are deterministic; no time is asserted.
//!
//! # The minimum, resource by resource
//!
//! What every resource must send, and why (the same table is in BENCHMARKS.md). Terraform runs
//! a plan and an apply in two provider processes, and each process signs in on its own: one
//! token per service it calls (Graph, ARM). In the apply process Terraform plans every changed
//! resource again before applying it (`PlanResourceChange` before `ApplyResourceChange`), and a
//! provider cannot tell that plan from the first, so a plan-time check counts once in each
//! process that plans the resource. Within one process nothing is read twice: what the process
//! has read (or read back) since its last write of the same collection is known.
//!
//! | resource | plan-time checks (per process) | create | refresh | delete |
//! | --- | --- | --- | --- | --- |
//! | `breakglass_client_config` | – | `GET /organization` | same | – |
//! | `breakglass_account` | the UPN's domain, once per domain | `POST /users` (answers the default property set only), `GET /users/{id}?$select=…` (what state records; also the read-back the next refresh depends on: "Designing for Eventual Consistency for Microsoft Entra"), `GET …/authentication/methods` | the user + its methods | `DELETE /users/{id}` |
//! | `breakglass_role_assignment` | the role's PIM rules, once per role | `POST roleAssignmentScheduleRequests`; status reads until `Provisioned` (none when the answer already is: "Create roleAssignmentScheduleRequest"); the schedule (state's schedule fields) | the schedule + the requests (audit details) | `POST` an `adminRemove`; status reads until `Revoked`; one read showing the schedule gone |
//! | `breakglass_ca_exclusion` | the principals exist (known once the accounts were created or read) | one listing, one `PATCH` per policy in scope (Graph replaces arrays, so the whole `conditions.users`), one listing that shows every write in place (no `If-Match` on policies: a lost update is only seen by reading after it) | one listing | as create, for the policies it owns |
//! | `breakglass_entra_diagnostic_setting` | list the settings, the caller's role assignments at `/providers/Microsoft.aadiam`, the tenant's categories (the last two only when it writes) | `PUT`, one read-back | one listing | `DELETE` |
//! | `breakglass_action_group` | – | `PUT`, one read-back | `GET` | `DELETE` |
//! | `breakglass_signin_alert` | the workspace's tables | two `PUT`s, two read-backs (UPNs known from the accounts) | both rules | two `DELETE`s |
//! | `breakglass_posture` (data source) | – | Global Administrator schedules, the diagnostic settings, per account the user and its groups; policies, rules, groups and methods known from the writes' read-backs | same, sharing the resources' refresh | – |
//!
//! The test tenant answers PIM requests at once (`pim.provisioning_delay_ms` = 0): how many
//! status reads a slower PIM needs depends on how long it takes, a time, which no test
//! asserts. `make bench` counts the same commands at the default 2 s too.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{json, Value as Json};

use crate::harness::{requires_terraform, FakeTenant, Workspace};

const APPLY: &[&str] = &["apply", "-auto-approve", "-input=false", "-no-color"];
const PLAN: &[&str] = &["plan", "-detailed-exitcode", "-input=false", "-no-color"];
const DESTROY: &[&str] = &["destroy", "-auto-approve", "-input=false", "-no-color"];

/// The goal: no command sends more than this many times its minimum.
const ALLOWED_RATIO: f64 = 1.1;

/// What the quickstart holds, for the minimum (counted from the configuration and the tenant,
/// never from what the provider sent).
struct Shape {
    accounts: usize,
    /// Distinct UPN domains of the accounts.
    domains: usize,
    role_assignments: usize,
    /// Distinct roles assigned.
    roles: usize,
    /// Policies in the exclusion's scope that do not exclude the accounts yet.
    policies: usize,
    /// Alert rules the sign-in alert writes (the sign-in rule and its tamper rule).
    alert_rules: usize,
}

/// One line of the minimum: who sends what, and how many.
struct Need {
    process: &'static str,
    what: String,
    requests: usize,
}

fn need(process: &'static str, what: impl Into<String>, requests: usize) -> Need {
    Need {
        process,
        what: what.into(),
        requests,
    }
}

/// The plan-time checks of the quickstart's resources in one process that plans them all as
/// changing (see the module docs).
fn plan_checks(process: &'static str, s: &Shape, writes: bool) -> Vec<Need> {
    let mut needs = vec![
        need(process, "account: UPN domain, once per domain", s.domains),
        need(
            process,
            "role assignment: PIM rules, once per role",
            s.roles,
        ),
        need(process, "diagnostic setting: list the settings", 1),
        need(process, "signin alert: the workspace's tables", 1),
    ];
    if writes {
        needs.push(need(
            process,
            "diagnostic setting: caller's role assignments at aadiam, the tenant's categories",
            2,
        ));
    }
    needs
}

fn sign_in(process: &'static str) -> Need {
    need(process, "one token each for Graph and ARM", 2)
}

fn minimum_apply(s: &Shape) -> Vec<Need> {
    let mut needs = vec![
        sign_in("plan"),
        need("plan", "client config: GET /organization", 1),
    ];
    needs.extend(plan_checks("plan", s, true));
    needs.push(sign_in("apply"));
    needs.extend(plan_checks("apply", s, true));
    needs.extend([
        need("apply", "action group: PUT, read-back", 2),
        need("apply", "diagnostic setting: PUT, read-back", 2),
        need(
            "apply",
            "accounts: POST, GET with $select, authentication methods",
            3 * s.accounts,
        ),
        need(
            "apply",
            "role assignments: POST schedule request (answered Provisioned), the schedule",
            2 * s.role_assignments,
        ),
        need(
            "apply",
            format!(
                "CA exclusion: list, PATCH x {} policies, list to verify",
                s.policies
            ),
            s.policies + 2,
        ),
        need(
            "apply",
            "signin alert: PUT and read-back per rule",
            2 * s.alert_rules,
        ),
        need(
            "apply",
            "posture: Global Administrator schedules, diagnostic settings, user + groups per account",
            2 + 2 * s.accounts,
        ),
    ]);
    needs
}

/// The refresh of a no-change plan, or of a destroy's plan.
fn minimum_refresh(process: &'static str, s: &Shape) -> Vec<Need> {
    vec![
        sign_in(process),
        need(process, "client config: GET /organization", 1),
        need(
            process,
            "accounts: the user and its methods",
            2 * s.accounts,
        ),
        need(
            process,
            "role assignments: the schedule and the requests",
            2 * s.role_assignments,
        ),
        need(process, "CA exclusion: one listing", 1),
        need(process, "diagnostic setting: one listing", 1),
        need(process, "action group: GET", 1),
        need(process, "signin alert: GET per rule", s.alert_rules),
        need(
            process,
            "posture: Global Administrator schedules, user + groups per account",
            1 + 2 * s.accounts,
        ),
    ]
}

fn minimum_destroy(s: &Shape) -> Vec<Need> {
    let mut needs = minimum_refresh("plan", s);
    needs.extend([
        sign_in("apply"),
        need("apply", "signin alert: DELETE per rule", s.alert_rules),
        need("apply", "action group: DELETE", 1),
        need("apply", "diagnostic setting: DELETE", 1),
        need(
            "apply",
            "role assignments: POST adminRemove (answered Revoked), the schedule gone",
            2 * s.role_assignments,
        ),
        need(
            "apply",
            format!(
                "CA exclusion: list, PATCH x {} owned policies, list to verify",
                s.policies
            ),
            s.policies + 2,
        ),
        need("apply", "accounts: DELETE", s.accounts),
    ]);
    needs
}

/// Enabled or report-only and able to apply to a user: the exclusion's default scope.
fn in_scope(policy: &Json) -> bool {
    let state = policy["state"].as_str().unwrap_or_default();
    let users = &policy["conditions"]["users"];
    let listed = |key: &str| users[key].as_array().is_some_and(|l| !l.is_empty());
    let includes_users = users["includeUsers"].as_array().is_some_and(|l| {
        l.iter()
            .any(|u| !u.as_str().unwrap_or_default().eq_ignore_ascii_case("None"))
    });
    matches!(state, "enabled" | "enabledForReportingButNotEnforced")
        && (includes_users
            || listed("includeGroups")
            || listed("includeRoles")
            || !users["includeGuestsOrExternalUsers"].is_null())
}

fn policies_in_scope(tenant: &FakeTenant) -> usize {
    tenant.dump()["directory"]["conditionalAccessPolicies"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| in_scope(p))
        .count()
}

/// `GET /v1.0/users/{id}` for any id: GUID-shaped segments become `{id}`.
fn template(entry: &Json) -> String {
    let path: Vec<String> = entry["path"]
        .as_str()
        .unwrap_or_default()
        .split('/')
        .map(|s| match uuid::Uuid::parse_str(s) {
            Ok(_) => "{id}".to_owned(),
            Err(_) => s.to_owned(),
        })
        .collect();
    format!(
        "{} {}",
        entry["method"].as_str().unwrap_or_default(),
        path.join("/")
    )
}

/// Prints what was sent next to the minimum and returns the ratio.
fn report(command: &str, log: &[Json], needs: &[Need]) -> f64 {
    let minimum: usize = needs.iter().map(|n| n.requests).sum();
    let mut sent: BTreeMap<String, usize> = BTreeMap::new();
    for entry in log {
        *sent.entry(template(entry)).or_default() += 1;
    }
    let ratio = log.len() as f64 / minimum as f64;
    println!(
        "== {command}: {} requests sent, minimum {minimum}, ratio {ratio:.2}",
        log.len()
    );
    println!("   minimum:");
    for n in needs {
        println!("   {:>3}  [{}] {}", n.requests, n.process, n.what);
    }
    println!("   sent:");
    for (what, n) in &sent {
        println!("   {n:>3}  {what}");
    }
    ratio
}

fn quickstart_stack(terraform: &'static crate::harness::Terraform) -> (FakeTenant, Workspace) {
    let tenant = FakeTenant::start();
    // PIM answers at once: the number of status reads then does not depend on time.
    tenant.admin(
        "PUT",
        "/settings",
        Some(&json!({"pim.provisioning_delay_ms": 0})),
    );
    let mut env = tenant.provider_env();
    // The quickstart protects its accounts by default; this test ends with a destroy.
    env.push(("TF_VAR_deletion_protection".into(), "false".into()));
    let ws = Workspace::new(terraform, env);
    crate::harness::copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/modules"),
        &ws.dir().join("modules"),
    );
    ws.write_config(&crate::examples::quickstart());
    (tenant, ws)
}

/// Runs `args`, which must succeed (a plan: report no changes), and returns the requests the
/// tenant served meanwhile.
fn requests_of(tenant: &FakeTenant, ws: &Workspace, args: &[&str]) -> Vec<Json> {
    tenant.admin("DELETE", "/requests", None);
    let out = ws.run(args);
    assert!(out.success(), "{out}");
    tenant.requests()
}

#[test]
fn quickstart_commands_send_at_most_a_tenth_more_requests_than_the_minimum() {
    let Some(terraform) = requires_terraform("1.0") else {
        return;
    };
    let (tenant, ws) = quickstart_stack(terraform);
    let shape = Shape {
        accounts: 2,
        domains: 1,
        role_assignments: 2,
        roles: 1,
        policies: policies_in_scope(&tenant),
        alert_rules: 2,
    };
    assert!(shape.policies > 0, "the default seed has policies in scope");

    let apply = requests_of(&tenant, &ws, APPLY);
    let plan = requests_of(&tenant, &ws, PLAN);
    let destroy = requests_of(&tenant, &ws, DESTROY);

    let ratios = [
        ("apply", report("apply", &apply, &minimum_apply(&shape))),
        (
            "plan (no changes)",
            report("plan (no changes)", &plan, &minimum_refresh("plan", &shape)),
        ),
        (
            "destroy",
            report("destroy", &destroy, &minimum_destroy(&shape)),
        ),
    ];
    let over: Vec<String> = ratios
        .iter()
        .filter(|(_, r)| *r > ALLOWED_RATIO)
        .map(|(c, r)| format!("{c}: {r:.2}"))
        .collect();
    assert!(
        over.is_empty(),
        "more than {ALLOWED_RATIO}x the minimum (the breakdowns are printed above): {over:?}"
    );
    // No command made a second token request for an audience in one process: apply and
    // destroy run two processes, the plan one, each signing in once per service.
    for (command, log, processes) in [
        ("apply", &apply, 2),
        ("plan", &plan, 1),
        ("destroy", &destroy, 2),
    ] {
        let tokens = log
            .iter()
            .filter(|e| {
                e["path"]
                    .as_str()
                    .is_some_and(|p| p.ends_with("/oauth2/v2.0/token"))
            })
            .count();
        assert_eq!(tokens, 2 * processes, "{command}: token requests");
    }
}

/// Four accounts and one exclusion resource in a tenant with 195 policies: the refresh lists
/// the policies once (one page: Graph returns every policy in one answer unless `$top` is
/// asked) and reads no policy on its own.
#[test]
fn a_refresh_lists_the_policies_once_per_exclusion_not_per_account_or_policy() {
    let Some(terraform) = requires_terraform("1.0") else {
        return;
    };
    let tenant = FakeTenant::with_seed("large");
    let ws = Workspace::new(terraform, tenant.provider_env());
    let mut hcl = format!(
        "{}\nprovider \"breakglass\" {{}}\n",
        crate::harness::required_providers()
    );
    for n in 1..=4 {
        hcl.push_str(&format!(
            "\nresource \"breakglass_account\" \"bg{n}\" {{\n  user_principal_name = \
             \"bg-large-{n}@contoso.onmicrosoft.com\"\n  display_name        = \"Emergency \
             access {n}\"\n}}\n"
        ));
    }
    hcl.push_str(
        "\nresource \"breakglass_ca_exclusion\" \"bg\" {\n  user_ids = [\n    \
         breakglass_account.bg1.object_id,\n    breakglass_account.bg2.object_id,\n    \
         breakglass_account.bg3.object_id,\n    breakglass_account.bg4.object_id,\n  ]\n}\n",
    );
    ws.write_config(&hcl);
    let policies = tenant.dump()["directory"]["conditionalAccessPolicies"]
        .as_array()
        .map_or(0, Vec::len);
    assert!(policies >= 195, "the large seed has {policies} policies");
    let apply = ws.run(APPLY);
    assert!(apply.success(), "{apply}");

    let refresh = requests_of(&tenant, &ws, PLAN);
    let is_ca = |e: &&Json| {
        e["path"]
            .as_str()
            .is_some_and(|p| p.starts_with("/v1.0/identity/conditionalAccess/policies"))
    };
    let listings = refresh
        .iter()
        .filter(is_ca)
        .filter(|e| e["path"] == "/v1.0/identity/conditionalAccess/policies")
        .count();
    let single_reads = refresh
        .iter()
        .filter(is_ca)
        .filter(|e| e["path"] != "/v1.0/identity/conditionalAccess/policies")
        .count();
    println!(
        "refresh of 4 accounts, 1 exclusion, {policies} policies: {} requests, {listings} \
         listing(s) of the policies, {single_reads} reads of single policies",
        refresh.len()
    );
    assert_eq!(
        listings, 1,
        "one listing for the one breakglass_ca_exclusion"
    );
    assert_eq!(single_reads, 0, "no policy is read on its own");
}

/// Conditional access under its documented limit — one request per second per tenant for all
/// apps ("Microsoft Graph service-specific throttling limits") — plus 429s with `Retry-After`
/// that the limit does not explain: the exclusion lands on every policy with no failure, and
/// once the tenant has refused a burst the provider keeps to the rate (`src/azure/throttle.rs`)
/// instead of running into the limit again: the only requests the limit refuses are the
/// first writes sent at once before it was known.
#[test]
fn a_throttled_tenant_gets_every_exclusion_without_a_failure() {
    let Some(terraform) = requires_terraform("1.0") else {
        return;
    };
    // 30 policies in scope: the default seed's 11 plus generated report-only ones.
    let dir = tempfile::tempdir().expect("temp dir");
    let seed = dir.path().join("thirty-policies.json");
    std::fs::write(
        &seed,
        json!({"extends": "default", "directory": {"conditionalAccessPolicyGenerator": {
            "fillTo": 31, "displayNamePrefix": "Throttled test policy"}}})
        .to_string(),
    )
    .expect("write seed");
    let tenant = FakeTenant::with_seed(seed.to_str().expect("utf-8 path"));
    let policies = policies_in_scope(&tenant);
    tenant.admin(
        "PUT",
        "/throttle",
        Some(&json!({"family": "graph-conditional-access", "limit": 1, "window_s": 1})),
    );
    tenant.admin(
        "POST",
        "/faults",
        Some(&json!([{
            "method": "PATCH",
            "path": ".*/identity/conditionalAccess/policies/.*",
            "status": 429,
            "retry_after": 1,
            "after": 10,
            "times": 3
        }])),
    );
    let ws = Workspace::new(terraform, tenant.provider_env());
    let mut hcl = format!(
        "{}\nprovider \"breakglass\" {{}}\n",
        crate::harness::required_providers()
    );
    for n in ["a", "b"] {
        hcl.push_str(&format!(
            "\nresource \"breakglass_account\" \"{n}\" {{\n  user_principal_name = \
             \"bg-throttled-{n}@contoso.onmicrosoft.com\"\n  display_name        = \
             \"Throttled {n}\"\n}}\n"
        ));
    }
    hcl.push_str(
        "\nresource \"breakglass_ca_exclusion\" \"both\" {\n  user_ids = \
         [breakglass_account.a.object_id, breakglass_account.b.object_id]\n}\n",
    );
    ws.write_config(&hcl);
    let apply = ws.run(APPLY);
    assert!(apply.success(), "{apply}");
    let log = tenant.requests();
    let plan = ws.run(PLAN);
    assert_eq!(
        plan.exit_code,
        Some(0),
        "the plan after apply is empty\n{plan}"
    );

    let state = tenant.dump();
    let accounts: Vec<String> = state["directory"]["users"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|u| {
            u["userPrincipalName"]
                .as_str()
                .is_some_and(|upn| upn.starts_with("bg-throttled-"))
        })
        .filter_map(|u| u["id"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(accounts.len(), 2);
    let lacking: Vec<String> = state["directory"]["conditionalAccessPolicies"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| in_scope(p))
        .filter(|p| {
            let excluded = &p["conditions"]["users"]["excludeUsers"];
            !accounts
                .iter()
                .all(|a| excluded.as_array().is_some_and(|l| l.contains(&json!(a))))
        })
        .filter_map(|p| p["id"].as_str().map(str::to_owned))
        .collect();
    assert!(
        lacking.is_empty(),
        "policies without the exclusion: {lacking:?}"
    );

    let ca: Vec<&Json> = log
        .iter()
        .filter(|e| e["family"] == "graph-conditional-access")
        .collect();
    let refused_by_limit = ca
        .iter()
        .filter(|e| e["status"] == 429 && e["fault"].is_null())
        .count();
    let injected = ca.iter().filter(|e| !e["fault"].is_null()).count();
    println!(
        "{policies} policies under 1 request/s: {} conditional-access requests, {injected} \
         injected 429s, {refused_by_limit} refused by the limit",
        ca.len()
    );
    assert_eq!(injected, 3, "the injected 429s were met");
    // The first writes go out together (four at a time) before the limit is known; after
    // that nothing is sent faster than it allows.
    assert!(
        refused_by_limit <= 4,
        "{refused_by_limit} requests refused by the limit after it was known"
    );
}
