//! Two pipelines at once: two separate Terraform processes — two working directories, two
//! stacks, two break-glass accounts — exclude their accounts from the same 30 conditional-access
//! policies at the same moment, then take the exclusions out again at the same moment,
//! repeated. No exclusion may be lost (an account missing from a policy after its apply, or
//! back in one after its removal), nothing of anyone else's may change, and each state must
//! equal the tenant.
//!
//! The per-policy lock inside one provider process does not cover two processes; Graph has no
//! If-Match on policies and its PATCH replaces arrays, so the emulated tenant lets the last
//! writer win as Graph does. What keeps both exclusions is the provider's read-back
//! (`change_exclusions`: a version neither ours nor one we wrote from, without our change, is a
//! lost update and is merged again) and its sweep after the last write. Every CA request gets
//! 40 ms of latency, the order of a real round trip, so that the two processes' reads and writes
//! interleave instead of each finishing a policy before the other reads it.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Barrier;
use std::time::Duration;

use serde_json::{json, Value as Json};

use super::{commit, run_parallel, soak, workers, write_report, Running, APPLY};
use crate::harness::{
    convergence, required_providers, requires_terraform, FakeTenant, Terraform, Workspace,
};

/// Policies both pipelines exclude their accounts from: the default seed's 11 in scope plus
/// 19 generated report-only ones.
const POLICIES_IN_SCOPE: usize = 30;
const APPLY_LIMIT: Duration = Duration::from_secs(600);
/// The replication lag of the lagging tenants.
const LAG_MS: u64 = 2000;

fn config(name: &str, with_exclusion: bool) -> String {
    let mut hcl = format!(
        "{}\nprovider \"breakglass\" {{}}\n\nresource \"breakglass_account\" \"bg\" {{\n  \
         user_principal_name = \"bg-pipeline-{name}@contoso.onmicrosoft.com\"\n  \
         display_name        = \"Pipeline {name} emergency access\"\n}}\n",
        required_providers()
    );
    if with_exclusion {
        hcl.push_str(
            "\nresource \"breakglass_ca_exclusion\" \"bg\" {\n  user_ids = [breakglass_account.bg.object_id]\n}\n",
        );
    }
    hcl
}

/// A tenant with 30 policies in scope (the generator adds report-only policies until 31
/// count against the limit; the Microsoft-managed one does not count, the disabled and the
/// workload-identity one are out of scope).
fn tenant_with_30_policies(lag_ms: u64) -> (FakeTenant, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let seed = dir.path().join("thirty-policies.json");
    std::fs::write(
        &seed,
        json!({"extends": "default", "directory": {"conditionalAccessPolicyGenerator": {
            "fillTo": 31, "displayNamePrefix": "Pipeline test policy"}}})
        .to_string(),
    )
    .expect("write seed");
    let tenant = FakeTenant::with_seed(seed.to_str().expect("utf-8 path"));
    tenant.admin(
        "PUT",
        "/settings",
        Some(&json!({
            "latency.graph-conditional-access_ms": 40,
            "graph.replication_lag_ms": lag_ms,
        })),
    );
    (tenant, dir)
}

/// What one tenant's rounds found.
#[derive(Debug, Default, Clone)]
struct Tally {
    rounds: usize,
    /// Exclusions an apply should have left and did not (or removals undone).
    lost: usize,
    /// PATCHes beyond one per (policy, pipeline, phase): merges done again after a lost update.
    merged_again: usize,
    /// Anything else that went wrong (a failed apply, a state that differs, others' entries changed).
    failures: Vec<String>,
}

fn excluded_ids(policy: &Json) -> Vec<String> {
    policy["conditions"]["users"]["excludeUsers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().map(str::to_ascii_lowercase))
        .collect()
}

/// Enabled or report-only, and able to apply to a user (the exclusion's default scope).
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

/// Both pipelines run `args`-style applies of their config at the same moment.
fn both_at_once(
    pipelines: &[(Workspace, String)],
    with_exclusion: bool,
) -> Vec<(Option<i32>, String)> {
    let barrier = Barrier::new(pipelines.len());
    std::thread::scope(|scope| {
        let handles: Vec<_> = pipelines
            .iter()
            .map(|(ws, name)| {
                let barrier = &barrier;
                scope.spawn(move || {
                    ws.write_config(&config(name, with_exclusion));
                    barrier.wait();
                    Running::start(ws, APPLY).finish(APPLY_LIMIT)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or((None, "panicked".into())))
            .collect()
    })
}

fn run_tenant(terraform: &'static Terraform, rounds: usize, lag_ms: u64) -> Tally {
    let (tenant, _seed_dir) = tenant_with_30_policies(lag_ms);
    let baseline = tenant.dump();
    let pipelines: Vec<(Workspace, String)> = ["a", "b"]
        .iter()
        .map(|n| {
            (
                Workspace::new(terraform, tenant.provider_env()),
                (*n).to_owned(),
            )
        })
        .collect();
    let mut tally = Tally::default();
    let policies_of = |dump: &Json| -> BTreeMap<String, Json> {
        dump["directory"]["conditionalAccessPolicies"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|p| (p["id"].as_str().unwrap_or_default().to_owned(), p.clone()))
            .collect()
    };
    let before = policies_of(&baseline);
    let scope: Vec<String> = before
        .iter()
        .filter(|(_, p)| in_scope(p))
        .map(|(id, _)| id.clone())
        .collect();
    if scope.len() != POLICIES_IN_SCOPE {
        tally.failures.push(format!(
            "{} policies in scope, expected {POLICIES_IN_SCOPE}",
            scope.len()
        ));
        return tally;
    }
    // The accounts first (the race is about the policies).
    for (code, text) in both_at_once(&pipelines, false) {
        if code != Some(0) {
            tally
                .failures
                .push(format!("creating the accounts failed\n{text}"));
            return tally;
        }
    }
    let accounts: Vec<String> = pipelines
        .iter()
        .map(|(ws, _)| {
            ws.state()
                .attribute("breakglass_account.bg", "object_id")
                .ok()
                .and_then(|v| v.as_str().map(str::to_ascii_lowercase))
                .unwrap_or_default()
        })
        .collect();

    for _ in 0..rounds {
        tally.rounds += 1;
        for with_exclusion in [true, false] {
            let patches_before = patch_count(&tenant);
            let phase = if with_exclusion { "exclude" } else { "remove" };
            for ((code, text), (_, name)) in both_at_once(&pipelines, with_exclusion)
                .iter()
                .zip(&pipelines)
            {
                if *code != Some(0) {
                    tally
                        .failures
                        .push(format!("pipeline {name}, {phase}: apply failed\n{text}"));
                }
            }
            let dump = tenant.dump();
            let now = policies_of(&dump);
            for id in &scope {
                let ids = now.get(id).map(excluded_ids).unwrap_or_default();
                for account in &accounts {
                    if ids.contains(account) != with_exclusion {
                        tally.lost += 1;
                        tally.failures.push(format!(
                            "{phase}: policy {id} {} account {account}",
                            if with_exclusion {
                                "lacks"
                            } else {
                                "still excludes"
                            }
                        ));
                    }
                }
            }
            // Nobody else's exclusions (or anything else in a policy) changed.
            for (id, was) in &before {
                let mut is = now.get(id).cloned().unwrap_or(Json::Null);
                if let Some(list) = is
                    .pointer_mut("/conditions/users/excludeUsers")
                    .and_then(Json::as_array_mut)
                {
                    list.retain(|e| {
                        !accounts
                            .iter()
                            .any(|a| e.as_str().is_some_and(|e| e.eq_ignore_ascii_case(a)))
                    });
                }
                let strip = |p: &Json| {
                    let mut p = p.clone();
                    if let Some(o) = p.as_object_mut() {
                        o.remove("modifiedDateTime");
                    }
                    p
                };
                if strip(&is) != strip(was) {
                    tally.failures.push(format!(
                        "{phase}: policy {id} changed beyond our exclusions"
                    ));
                }
            }
            let states: Vec<_> = pipelines.iter().map(|(ws, _)| ws.state()).collect();
            let refs: Vec<_> = states.iter().collect();
            if let Err(why) = convergence::compare(&refs, &baseline, &dump).into_result() {
                tally
                    .failures
                    .push(format!("{phase}: state differs from the tenant:\n{why}"));
            }
            let expected = 2 * POLICIES_IN_SCOPE;
            tally.merged_again += (patch_count(&tenant) - patches_before).saturating_sub(expected);
        }
    }
    tally
}

/// Accepted CA writes so far: the tenant's 204 answers on conditional-access paths (PATCH is
/// the only CA request the provider sends that answers 204).
fn patch_count(tenant: &FakeTenant) -> usize {
    let counters = tenant.admin("GET", "/counters", None);
    counters["requests"]["graph-conditional-access"]["204"]
        .as_u64()
        .unwrap_or(0) as usize
}

#[test]
fn two_pipelines_excluding_at_once_lose_no_exclusion() {
    let Some(terraform) = requires_terraform("1.0") else {
        return;
    };
    // `make test`: five tenants with one round each, side by side, one of them with 2 s of
    // replication lag on Graph reads (a read can then be 2 s stale, so a PATCH computed from it
    // can replace an exclusion well after its own read-back began); soak: four tenants with ten
    // rounds each, two of them lagging.
    let (tenants, rounds, lagging) = if soak() { (4, 10, 2) } else { (5, 1, 1) };
    let jobs: Vec<u64> = (0..tenants)
        .map(|i| if i < lagging { LAG_MS } else { 0 })
        .collect();
    let tallies = run_parallel(
        &jobs,
        workers(tenants),
        |lag_ms| run_tenant(terraform, rounds, *lag_ms),
        |panic| Tally {
            failures: vec![panic],
            ..Tally::default()
        },
    );
    let rounds: usize = tallies.iter().map(|t| t.rounds).sum();
    let lost: usize = tallies.iter().map(|t| t.lost).sum();
    let merged_again: usize = tallies.iter().map(|t| t.merged_again).sum();
    let failures: Vec<&String> = tallies.iter().flat_map(|t| &t.failures).collect();
    let mut md = String::new();
    let _ = writeln!(
        md,
        "Commit `{}`; {} run; {tenants} tenants × {} rounds ({lagging} of the tenants with \
         {LAG_MS} ms replication lag on Graph reads); each round: both pipelines exclude \
         their account from the same {POLICIES_IN_SCOPE} policies at once, then both remove it \
         at once.\n\n| rounds | exclusions checked | lost | PATCHes merged again after a lost update | failures |\n| --- | --- | --- | --- | --- |\n| {rounds} | {} | {lost} | {merged_again} | {} |",
        commit(),
        if soak() { "soak" } else { "`make test`" },
        rounds / tenants.max(1),
        rounds * 2 * 2 * POLICIES_IN_SCOPE,
        failures.len()
    );
    write_report("two-pipelines", &md);
    assert!(
        failures.is_empty(),
        "{} problems:\n{}\n\n{md}",
        failures.len(),
        failures
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    );
}
