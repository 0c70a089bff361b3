//! `breakglass_ca_exclusion` end to end: real terraform, the provider, and the emulated tenant's
//! 13 seeded conditional-access policies (one with existing user and group exclusions, a
//! workload-identity policy, a Microsoft-managed one, a disabled one).
//!
//! The central promise checked throughout: after every step, each policy equals its state
//! before the test except for our own ids in `excludeUsers` / `excludeGroups` — and an entry
//! that was there before we wrote (someone else's exclusion of the same principal) survives
//! updates and destroy.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;
use std::time::Duration;

use fake_tenant::behaviour::{Family, FaultRule, ThrottleRule};
use serde_json::{json, Value as Json};

use crate::harness::{required_providers, Case, Ctx, FakeTenant, Stage, Step};

const ALICE: &str = "5d2c6f0e-3b1a-4c8e-9f7d-0a1b2c3d4e01";
const DAVE: &str = "5d2c6f0e-3b1a-4c8e-9f7d-0a1b2c3d4e04";
/// `All Staff`: excluded nowhere in the seed.
const ALL_STAFF: &str = "8a7b6c5d-0000-4e1f-9a2b-3c4d5e6f7a03";

const DISABLED_POLICY: &str = "ca000000-0000-4000-8000-000000000006";
const WORKLOAD_POLICY: &str = "ca000000-0000-4000-8000-000000000007";
const MANAGED_POLICY: &str = "ca000000-0000-4000-8000-00000000000f";
const DEVICE_POLICY: &str = "ca000000-0000-4000-8000-000000000003";
const LEGACY_AUTH_POLICY: &str = "ca000000-0000-4000-8000-000000000002";
const ADMIN_MFA_POLICY: &str = "ca000000-0000-4000-8000-000000000004";
const RISK_POLICY: &str = "ca000000-0000-4000-8000-000000000010";
const COUNTRY_POLICY: &str = "ca000000-0000-4000-8000-000000000011";

const ADDRESS: &str = "breakglass_ca_exclusion.emergency";

/// The seeded policies that can apply to users and are enabled or report-only: all but the
/// disabled one and the workload-identity one. The Microsoft-managed policy is among them.
fn seeded_in_scope() -> Vec<String> {
    [
        "01", "02", "03", "04", "05", "08", "0f", "10", "11", "12", "13",
    ]
    .iter()
    .map(|n| format!("ca000000-0000-4000-8000-0000000000{n}"))
    .collect()
}

fn config(users: &[&str], groups: &[&str]) -> String {
    let list = |ids: &[&str]| {
        ids.iter()
            .map(|i| format!("\"{i}\""))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let groups = if groups.is_empty() {
        String::new()
    } else {
        format!("  group_ids = [{}]\n", list(groups))
    };
    format!(
        "{}\nresource \"breakglass_ca_exclusion\" \"emergency\" {{\n  user_ids  = [{}]\n{groups}}}\n",
        required_providers(),
        list(users)
    )
}

/// Every policy as the tenant holds it now, by id.
fn policies(tenant: &FakeTenant) -> BTreeMap<String, Json> {
    let t = tenant.state.tenant();
    t.directory
        .ca_policies
        .list_latest()
        .into_iter()
        .map(|p| {
            (
                p["id"].as_str().unwrap_or_default().to_owned(),
                Json::Object(p.clone()),
            )
        })
        .collect()
}

/// `policy` without `ids` in its exclusions and without the modification time: what it must
/// look like if nothing but our exclusion changed.
fn without_ours(policy: &Json, ids: &[&str]) -> Json {
    let mut p = policy.clone();
    if let Some(o) = p.as_object_mut() {
        o.remove("modifiedDateTime");
    }
    let users = &mut p["conditions"]["users"];
    for key in ["excludeUsers", "excludeGroups"] {
        if let Some(list) = users.get_mut(key).and_then(Json::as_array_mut) {
            list.retain(|e| {
                !ids.iter()
                    .any(|id| e.as_str().is_some_and(|e| e.eq_ignore_ascii_case(id)))
            });
        }
    }
    p
}

fn excludes(policy: &Json, key: &str, id: &str) -> bool {
    policy["conditions"]["users"][key]
        .as_array()
        .is_some_and(|l| l.iter().any(|e| e.as_str() == Some(id)))
}

/// Every policy in `before` is unchanged apart from our ids; the ones in `carrying` exclude
/// every user and group of ours, all others exclude none of them.
fn expect_tenant(
    ctx: &Ctx<'_>,
    before: &BTreeMap<String, Json>,
    carrying: &[String],
    users: &[&str],
    groups: &[&str],
) -> Result<(), String> {
    let now = policies(ctx.tenant());
    let ours: Vec<&str> = users.iter().chain(groups).copied().collect();
    for (id, was) in before {
        let is = now.get(id).ok_or(format!("policy {id} disappeared"))?;
        if without_ours(is, &ours) != without_ours(was, &[]) {
            return Err(format!(
                "policy {id} changed beyond our exclusion:\nbefore {was:#}\nnow {is:#}"
            ));
        }
    }
    for (id, policy) in &now {
        let should = carrying.contains(id);
        for (key, ids) in [("excludeUsers", users), ("excludeGroups", groups)] {
            for principal in ids.iter() {
                if excludes(policy, key, principal) != should {
                    return Err(format!(
                        "policy {id}: {key} {} {principal}",
                        if should { "lacks" } else { "still has" }
                    ));
                }
            }
        }
    }
    Ok(())
}

fn state_set(ctx: &Ctx<'_>, attribute: &str) -> Result<Vec<String>, String> {
    let mut ids: Vec<String> = ctx
        .state
        .attribute(ADDRESS, attribute)?
        .as_array()
        .ok_or(format!("{attribute} is not a set"))?
        .iter()
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect();
    ids.sort();
    Ok(ids)
}

fn expect_state(ctx: &Ctx<'_>, carrying: &[String], missing: &[&str]) -> Result<(), String> {
    let mut carrying = carrying.to_vec();
    carrying.sort();
    let got = state_set(ctx, "policy_ids")?;
    if got != carrying {
        return Err(format!("policy_ids = {got:?}, expected {carrying:?}"));
    }
    let got = state_set(ctx, "missing_policy_ids")?;
    if got != missing {
        return Err(format!(
            "missing_policy_ids = {got:?}, expected {missing:?}"
        ));
    }
    Ok(())
}

/// `terraform plan` must propose a change to the exclusion, naming `policy_id`.
fn expect_plan_diff(ctx: &Ctx<'_>, policy_id: &str) -> Result<(), String> {
    let out = ctx
        .workspace
        .run(&["plan", "-detailed-exitcode", "-input=false", "-no-color"]);
    if out.exit_code != Some(2) {
        return Err(format!("expected a plan with changes (exit 2)\n{out}"));
    }
    if !out.text.contains("missing_policy_ids") || !out.text.contains(policy_id) {
        return Err(format!(
            "the plan does not show {policy_id} as missing\n{out}"
        ));
    }
    if !out.text.contains("1 to change") {
        return Err(format!("expected an in-place update\n{out}"));
    }
    Ok(())
}

/// Microsoft Graph as another administrator would use it, out of band.
struct Graph<'a> {
    tenant: &'a FakeTenant,
    runtime: tokio::runtime::Runtime,
    http: reqwest::Client,
    token: String,
}

impl<'a> Graph<'a> {
    fn new(tenant: &'a FakeTenant) -> Graph<'a> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let http = reqwest::Client::new();
        let token = runtime.block_on(async {
            let resp: Json = http
                .post(format!(
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
                .await
                .expect("token request")
                .json()
                .await
                .expect("token response");
            resp["access_token"]
                .as_str()
                .expect("access_token")
                .to_owned()
        });
        Graph {
            tenant,
            runtime,
            http,
            token,
        }
    }

    fn send(&self, method: reqwest::Method, path: &str, body: Option<Json>) -> Json {
        self.runtime.block_on(async {
            let mut req = self
                .http
                .request(method, format!("{}/v1.0{path}", self.tenant.base_url))
                .bearer_auth(&self.token);
            if let Some(body) = body {
                req = req.json(&body);
            }
            let resp = req.send().await.expect("graph request");
            let status = resp.status();
            let body: Json = resp.json().await.unwrap_or(Json::Null);
            assert!(status.is_success(), "{path}: {status} {body}");
            body
        })
    }
}

fn new_policy_body() -> Json {
    json!({
        "displayName": "CA100: Require MFA for all cloud apps (added by the security team)",
        "state": "enabled",
        "conditions": {
            "clientAppTypes": ["all"],
            "applications": {"includeApplications": ["All"]},
            "users": {"includeUsers": ["All"], "excludeUsers": [], "excludeGroups": []}
        },
        "grantControls": {"operator": "OR", "builtInControls": ["mfa"]}
    })
}

#[test]
fn resource_ca_exclusion_lifecycle_keeps_every_other_exclusion() {
    let tenant = FakeTenant::start();
    let before = policies(&tenant);
    assert_eq!(before.len(), 13, "the default seed has 13 CA policies");
    let in_scope = seeded_in_scope();
    // Filled in when the security team's policy is created out of band.
    let new_policy: Rc<RefCell<Option<(String, Json)>>> = Rc::default();

    let users = [ALICE, DAVE];
    let with_new = {
        let new_policy = new_policy.clone();
        let in_scope = in_scope.clone();
        move || {
            let mut ids = in_scope.clone();
            ids.extend(new_policy.borrow().as_ref().map(|(id, _)| id.clone()));
            ids
        }
    };
    let before_and_new = {
        let before = before.clone();
        let new_policy = new_policy.clone();
        move || {
            let mut all = before.clone();
            if let Some((id, p)) = new_policy.borrow().as_ref() {
                all.insert(id.clone(), p.clone());
            }
            all
        }
    };

    Case::new()
        .with_tenant(tenant)
        .step(Step::Apply(config(&users, &[])))
        .step(Step::check({
            let (before, in_scope) = (before.clone(), in_scope.clone());
            move |ctx| {
                expect_state(ctx, &in_scope, &[])?;
                expect_tenant(ctx, &before, &in_scope, &users, &[])?;
                let now = policies(ctx.tenant());
                // Untouched: disabled and workload-identity policies are out of scope.
                for id in [DISABLED_POLICY, WORKLOAD_POLICY] {
                    if now[id] != before[id] {
                        return Err(format!("{id} was written to"));
                    }
                }
                if !excludes(&now[MANAGED_POLICY], "excludeUsers", ALICE) {
                    return Err("the Microsoft-managed policy lacks the exclusion".into());
                }
                Ok(())
            }
        }))
        .step(Step::import_state_verify(ADDRESS, &[]))
        // The security team adds a policy next month: the plan must show it.
        .step(Step::check({
            let new_policy = new_policy.clone();
            move |ctx| {
                let graph = Graph::new(ctx.tenant());
                let created = graph.send(
                    reqwest::Method::POST,
                    "/identity/conditionalAccess/policies",
                    Some(new_policy_body()),
                );
                let id = created["id"].as_str().ok_or("no id")?.to_owned();
                let stored = policies(ctx.tenant())[&id].clone();
                *new_policy.borrow_mut() = Some((id.clone(), stored));
                expect_plan_diff(ctx, &id)
            }
        }))
        .step(Step::Apply(config(&users, &[])))
        .step(Step::check({
            let (with_new, before_and_new) = (with_new.clone(), before_and_new.clone());
            move |ctx| {
                expect_state(ctx, &with_new(), &[])?;
                expect_tenant(ctx, &before_and_new(), &with_new(), &users, &[])
            }
        }))
        // Someone removes our exclusion from one policy by hand (sending the rest back).
        .step(Step::check(|ctx| {
            let graph = Graph::new(ctx.tenant());
            let path = format!("/identity/conditionalAccess/policies/{COUNTRY_POLICY}");
            let policy = graph.send(reqwest::Method::GET, &path, None);
            let mut users = policy["conditions"]["users"].clone();
            users["excludeUsers"]
                .as_array_mut()
                .ok_or("no excludeUsers")?
                .retain(|e| e != ALICE);
            graph.send(
                reqwest::Method::PATCH,
                &path,
                Some(json!({"conditions": {"users": users}})),
            );
            expect_plan_diff(ctx, COUNTRY_POLICY)
        }))
        // The fix, together with a new exclusion group.
        .step(Step::Apply(config(&users, &[ALL_STAFF])))
        .step(Step::check({
            let (with_new, before_and_new) = (with_new.clone(), before_and_new.clone());
            move |ctx| {
                expect_state(ctx, &with_new(), &[])?;
                // Alice's entry on the country policy, removed by hand and added back, is
                // ours again: the refresh forgot it, the apply recorded it anew.
                expect_owned(
                    ctx,
                    ADDRESS,
                    &ownership(&with_new(), &[ALICE, DAVE, ALL_STAFF], &[]),
                )?;
                expect_tenant(ctx, &before_and_new(), &with_new(), &users, &[ALL_STAFF])
            }
        }))
        .step(Step::destroy_check({
            let before_and_new = before_and_new.clone();
            move |ctx| expect_tenant(ctx, &before_and_new(), &[], &users, &[ALL_STAFF])
        }))
        .run();
}

/// Excludes `principal` from a policy the way another administrator would: through Graph,
/// sending the rest of `conditions.users` back.
fn exclude_out_of_band(graph: &Graph<'_>, policy_id: &str, key: &str, principal: &str) {
    let path = format!("/identity/conditionalAccess/policies/{policy_id}");
    let policy = graph.send(reqwest::Method::GET, &path, None);
    let mut users = policy["conditions"]["users"].clone();
    match users[key].as_array_mut() {
        Some(list) => list.push(json!(principal)),
        None => users[key] = json!([principal]),
    }
    graph.send(
        reqwest::Method::PATCH,
        &path,
        Some(json!({"conditions": {"users": users}})),
    );
}

/// Every policy is exactly as it was in `before` (modification times aside).
fn expect_unchanged(ctx: &Ctx<'_>, before: &BTreeMap<String, Json>) -> Result<(), String> {
    let now = policies(ctx.tenant());
    for (id, was) in before {
        let is = now.get(id).ok_or(format!("policy {id} disappeared"))?;
        if without_ours(is, &[]) != without_ours(was, &[]) {
            return Err(format!(
                "policy {id} is not as it was:
before {was:#}
now {is:#}"
            ));
        }
    }
    Ok(())
}

/// The `added_exclusions` the resource should record: every principal on every policy in
/// `policy_ids`, except the entries someone else had made first.
fn ownership(
    policy_ids: &[String],
    principals: &[&str],
    pre_existing: &[(&str, &str)],
) -> BTreeMap<String, BTreeSet<String>> {
    let mut owned = BTreeMap::new();
    for policy in policy_ids {
        let ours: BTreeSet<String> = principals
            .iter()
            .filter(|p| !pre_existing.contains(&(policy.as_str(), **p)))
            .map(|p| (*p).to_owned())
            .collect();
        if !ours.is_empty() {
            owned.insert(policy.clone(), ours);
        }
    }
    owned
}

fn expect_owned(
    ctx: &Ctx<'_>,
    address: &str,
    expected: &BTreeMap<String, BTreeSet<String>>,
) -> Result<(), String> {
    let got = ctx.state.attribute(address, "added_exclusions")?;
    let got: BTreeMap<String, BTreeSet<String>> =
        serde_json::from_value(got).map_err(|e| format!("added_exclusions: {e}"))?;
    if &got != expected {
        return Err(format!(
            "added_exclusions = {got:#?}
expected {expected:#?}"
        ));
    }
    Ok(())
}

/// Someone else had excluded Alice from two policies and the All Staff group from a third
/// before the resource existed. Those three entries are theirs: the resource must not record
/// them as its own, and destroy must leave them, while removing every entry it added.
#[test]
fn resource_ca_exclusion_destroy_keeps_exclusions_someone_else_made_first() {
    let tenant = FakeTenant::start();
    let theirs = [
        (LEGACY_AUTH_POLICY, "excludeUsers", ALICE),
        (RISK_POLICY, "excludeUsers", ALICE),
        (ADMIN_MFA_POLICY, "excludeGroups", ALL_STAFF),
    ];
    {
        let graph = Graph::new(&tenant);
        for (policy, key, principal) in theirs {
            exclude_out_of_band(&graph, policy, key, principal);
        }
    }
    let before = policies(&tenant);
    let in_scope = seeded_in_scope();
    let pre_existing: Vec<(&str, &str)> = theirs.iter().map(|(p, _, id)| (*p, *id)).collect();
    Case::new()
        .with_tenant(tenant)
        .step(Step::Apply(config(&[ALICE], &[ALL_STAFF])))
        .step(Step::check(move |ctx| {
            expect_state(ctx, &in_scope, &[])?;
            expect_owned(
                ctx,
                ADDRESS,
                &ownership(&in_scope, &[ALICE, ALL_STAFF], &pre_existing),
            )
        }))
        .step(Step::destroy_check(move |ctx| {
            let now = policies(ctx.tenant());
            for (policy, key, principal) in theirs {
                if !excludes(&now[policy], key, principal) {
                    return Err(format!(
                        "destroy removed {principal} from {key} of {policy}, an exclusion \
                         that was there before the resource"
                    ));
                }
            }
            // Everything we added is gone, everything else is as it was.
            expect_unchanged(ctx, &before)
        }))
        .run();
}

/// Dropping Dave from `user_ids` takes him out of the policies where the resource added him,
/// not out of the one where someone else had excluded him already.
#[test]
fn resource_ca_exclusion_update_dropping_a_principal_removes_only_our_entries() {
    let tenant = FakeTenant::start();
    exclude_out_of_band(
        &Graph::new(&tenant),
        LEGACY_AUTH_POLICY,
        "excludeUsers",
        DAVE,
    );
    let before = policies(&tenant);
    let in_scope = seeded_in_scope();
    Case::new()
        .with_tenant(tenant)
        .step(Step::Apply(config(&[ALICE, DAVE], &[])))
        .step(Step::check({
            let in_scope = in_scope.clone();
            move |ctx| {
                expect_state(ctx, &in_scope, &[])?;
                expect_owned(
                    ctx,
                    ADDRESS,
                    &ownership(&in_scope, &[ALICE, DAVE], &[(LEGACY_AUTH_POLICY, DAVE)]),
                )
            }
        }))
        .step(Step::Apply(config(&[ALICE], &[])))
        .step(Step::check({
            let before = before.clone();
            move |ctx| {
                expect_state(ctx, &in_scope, &[])?;
                expect_owned(ctx, ADDRESS, &ownership(&in_scope, &[ALICE], &[]))?;
                let now = policies(ctx.tenant());
                for (id, policy) in &now {
                    let should = id == LEGACY_AUTH_POLICY;
                    if excludes(policy, "excludeUsers", DAVE) != should {
                        return Err(format!(
                            "policy {id}: Dave {} excluded after the update",
                            if should { "is no longer" } else { "is still" }
                        ));
                    }
                }
                // Apart from Alice, every policy is as before, Dave's old entry included.
                expect_tenant(ctx, &before, &in_scope, &[ALICE], &[])
            }
        }))
        .step(Step::destroy_check(move |ctx| {
            expect_unchanged(ctx, &before)
        }))
        .run();
}

/// Adds a fault rule straight into the tenant's behaviour state.
fn inject_fault(tenant: &FakeTenant, rule: Json) {
    let mut t = tenant.state.tenant();
    let id = t.behaviour.next_id();
    let rule = FaultRule::from_json(id, &rule).expect("fault rule");
    t.behaviour.faults.push(rule);
}

fn ca_requests(tenant: &FakeTenant) -> Vec<Json> {
    let t = tenant.state.tenant();
    t.behaviour
        .request_log
        .iter()
        .filter(|e| e["family"] == "graph-conditional-access")
        .cloned()
        .collect()
}

#[test]
fn resource_ca_exclusion_honours_conditional_access_throttling() {
    let tenant = FakeTenant::start();
    let before = policies(&tenant);
    tenant.state.tenant().behaviour.throttles.insert(
        Family::GraphConditionalAccess,
        ThrottleRule::new(6, Duration::from_secs(1)),
    );
    let in_scope = seeded_in_scope();
    Case::new()
        .with_tenant(tenant)
        .step(Step::Apply(config(&[ALICE], &[])))
        .step(Step::check(move |ctx| {
            expect_state(ctx, &in_scope, &[])?;
            expect_tenant(ctx, &before, &in_scope, &[ALICE], &[])?;
            let log = ca_requests(ctx.tenant());
            let throttled: Vec<&Json> = log.iter().filter(|e| e["status"] == 429).collect();
            if throttled.is_empty() {
                return Err("the throttle never answered 429; the test proves nothing".into());
            }
            // Every throttled request was sent again later and went through.
            for t in &throttled {
                let retried = log.iter().any(|e| {
                    e["id"].as_u64() > t["id"].as_u64()
                        && e["method"] == t["method"]
                        && e["path"] == t["path"]
                        && e["status"]
                            .as_u64()
                            .is_some_and(|s| (200..300).contains(&s))
                });
                if !retried {
                    return Err(format!("{} {} was not retried", t["method"], t["path"]));
                }
            }
            Ok(())
        }))
        .run();
}

#[test]
fn resource_ca_exclusion_partial_failure_records_exactly_the_written_policies() {
    let tenant = FakeTenant::start();
    let before = policies(&tenant);
    // Ten 503s in a row exhaust the client's retries for this one policy.
    inject_fault(
        &tenant,
        json!({
            "method": "PATCH",
            "path": format!("^/v1.0/identity/conditionalAccess/policies/{DEVICE_POLICY}$"),
            "status": 503,
            "retry_after": 0,
            "times": 10
        }),
    );
    let in_scope = seeded_in_scope();
    let written: Vec<String> = in_scope
        .iter()
        .filter(|id| *id != DEVICE_POLICY)
        .cloned()
        .collect();
    Case::new()
        .with_tenant(tenant)
        .step(Step::expect_error(
            config(&[ALICE], &[]),
            Stage::Apply,
            &format!("Could not change the exclusions of 1 conditional-access policy.*CA003.*{DEVICE_POLICY}"),
        ))
        .step(Step::check({
            let before = before.clone();
            move |ctx| {
                expect_state(ctx, &written, &[DEVICE_POLICY])?;
                // The failed policy was never written: nothing there is ours.
                expect_owned(ctx, ADDRESS, &ownership(&written, &[ALICE], &[]))?;
                expect_tenant(ctx, &before, &written, &[ALICE], &[])
            }
        }))
        .step(Step::Apply(config(&[ALICE], &[])))
        .step(Step::check(move |ctx| {
            expect_state(ctx, &in_scope, &[])?;
            expect_owned(ctx, ADDRESS, &ownership(&in_scope, &[ALICE], &[]))?;
            expect_tenant(ctx, &before, &in_scope, &[ALICE], &[])
        }))
        .run();
}

#[test]
fn resource_ca_exclusion_validation_names_the_attribute() {
    let filter = |states: &str| {
        format!(
            "{}\nresource \"breakglass_ca_exclusion\" \"emergency\" {{\n  user_ids = [\"{ALICE}\"]\n  policy_filter {{\n    include_states = [{states}]\n  }}\n}}\n",
            required_providers()
        )
    };
    Case::new()
        .step(Step::expect_error(
            config(&[ALICE, "alice@contoso.com"], &[]),
            Stage::Validate,
            r#"Not an object id.*on main.tf line \d+.*user_ids.*"alice@contoso.com" is not a GUID"#,
        ))
        .step(Step::expect_error(
            filter("\"enabled\", \"on\""),
            Stage::Validate,
            r#"Unknown policy state.*include_states.*"on" is not a conditional-access policy state"#,
        ))
        .step(Step::expect_error(
            format!(
                "{}\nresource \"breakglass_ca_exclusion\" \"emergency\" {{\n  user_ids = []\n}}\n",
                required_providers()
            ),
            Stage::Validate,
            "No principal to exclude",
        ))
        .step(Step::Validate(filter("\"disabled\"")))
        .run();
}

#[test]
fn resource_ca_exclusion_plan_warns_about_unknown_users() {
    let stranger = "0badc0de-0000-4000-8000-000000000001";
    Case::new()
        .with_tenant(FakeTenant::start())
        .step(Step::check(move |ctx| {
            ctx.workspace.write_config(&config(&[ALICE, stranger], &[]));
            let out = ctx.workspace.run(&["plan", "-input=false", "-no-color"]);
            if !out.success() {
                return Err(format!("plan failed\n{out}"));
            }
            let flat = out.flattened();
            if !flat.contains("Warning: No user with this id") || !flat.contains(stranger) {
                return Err(format!("no warning about {stranger}\n{out}"));
            }
            if flat.contains(&format!("no user {ALICE}")) {
                return Err(format!("warned about an existing user\n{out}"));
            }
            ctx.workspace.write_config("");
            Ok(())
        }))
        .run();
}

/// The documented example, applied as written: `policy_filter` brings the disabled policy into
/// scope and leaves the excluded one alone.
#[test]
fn resource_ca_exclusion_example_applies_with_its_policy_filter() {
    const SESSION_POLICY: &str = "ca000000-0000-4000-8000-000000000012";
    const EXCLUSION_GROUP: &str = "8a7b6c5d-0000-4e1f-9a2b-3c4d5e6f7a01";
    let example = include_str!("../../examples/resources/breakglass_ca_exclusion/resource.tf");
    // The example may declare its own provider requirements.
    let config = if example.contains("required_providers") {
        example.to_owned()
    } else {
        format!("{}\n{example}", required_providers())
    };
    let tenant = FakeTenant::start();
    let before = policies(&tenant);
    let mut in_scope: Vec<String> = seeded_in_scope()
        .into_iter()
        .filter(|id| id != SESSION_POLICY)
        .collect();
    in_scope.push(DISABLED_POLICY.to_owned());
    // The seed already excludes CA-Exclusion-EmergencyAccess from every policy but the
    // Microsoft-managed one (and the workload-identity one, out of scope): those entries are
    // someone else's, and the resource adds the group only to the managed policy.
    let mut owned = ownership(&in_scope, &[ALICE, DAVE], &[]);
    owned
        .get_mut(MANAGED_POLICY)
        .expect("the managed policy is in scope")
        .insert(EXCLUSION_GROUP.to_owned());
    Case::new()
        .with_tenant(tenant)
        .step(Step::Apply(config))
        .step(Step::check({
            let before = before.clone();
            move |ctx| {
                expect_state(ctx, &in_scope, &[])?;
                expect_owned(ctx, ADDRESS, &owned)?;
                let now = policies(ctx.tenant());
                if now[SESSION_POLICY] != before[SESSION_POLICY] {
                    return Err("the policy in exclude_policy_ids was written to".into());
                }
                for id in &in_scope {
                    if !excludes(&now[id.as_str()], "excludeUsers", DAVE) {
                        return Err(format!("{id} lacks the exclusion"));
                    }
                }
                Ok(())
            }
        }))
        // The group stays excluded wherever it was before: only our entries come out.
        .step(Step::destroy_check(move |ctx| {
            let now = policies(ctx.tenant());
            for (id, was) in &before {
                if excludes(was, "excludeGroups", EXCLUSION_GROUP)
                    && !excludes(&now[id], "excludeGroups", EXCLUSION_GROUP)
                {
                    return Err(format!(
                        "destroy removed the pre-existing exclusion of \
                         CA-Exclusion-EmergencyAccess from {id}"
                    ));
                }
            }
            expect_unchanged(ctx, &before)
        }))
        .run();
}

/// Terraform applies independent resources in parallel. Two exclusions writing the same
/// policies at the same moment must both survive: each read-modify-write holds the policy's
/// lock, so neither PATCH is built from a read that misses the other's addition. (Without the
/// lock, one read-back never sees its own id and the short create timeout fails the apply.)
#[test]
fn resource_ca_exclusion_parallel_resources_do_not_overwrite_each_other() {
    let tenant = FakeTenant::start();
    let before = policies(&tenant);
    let in_scope = seeded_in_scope();
    let two = format!(
        "{}\n{}",
        required_providers(),
        [("alice", ALICE), ("dave", DAVE)]
            .iter()
            .map(|(name, id)| format!(
                "resource \"breakglass_ca_exclusion\" \"{name}\" {{\n  user_ids = [\"{id}\"]\n  timeouts {{\n    create  = \"45s\"\n    delete  = \"45s\"\n  }}\n}}\n"
            ))
            .collect::<String>()
    );
    Case::new()
        .with_tenant(tenant)
        .step(Step::Apply(two))
        .step(Step::check({
            let before = before.clone();
            move |ctx| expect_tenant(ctx, &before, &in_scope, &[ALICE, DAVE], &[])
        }))
        .step(Step::destroy_check(move |ctx| {
            expect_tenant(ctx, &before, &[], &[ALICE, DAVE], &[])
        }))
        .run();
}
