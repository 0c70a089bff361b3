//! `change_exclusions` against the emulated tenant when another process writes the same
//! policy: Graph has no If-Match on conditional-access policies and its PATCH replaces arrays,
//! so of two writers that read the same version the last one wins (fake-tenant README,
//! "Conditional Access policies"). A layer in front of the emulator plays the other writer:
//! right after one of our requests it stores a version of the policy computed from the read
//! before ours, plus an exclusion of its own — exactly what a second pipeline's PATCH does.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use breakglass::azure::conditional_access::{change_exclusions, ExclusionMerge};
use breakglass::azure::{AzureError, Deadline};
use fake_tenant::AppState;
use serde_json::{json, Map, Value as Json};

use crate::azure_support::Emulator;

const POLICY: &str = "ca000000-0000-4000-8000-000000000001";
const OURS: &str = "5d2c6f0e-3b1a-4c8e-9f7d-0a1b2c3d4e01";
/// The other pipeline's account (a seeded user no policy excludes).
const THEIRS: &str = "5d2c6f0e-3b1a-4c8e-9f7d-0a1b2c3d4e04";

fn policy_path() -> String {
    format!("/v1.0/identity/conditionalAccess/policies/{POLICY}")
}

fn stored(state: &AppState) -> Map<String, Json> {
    state
        .tenant()
        .directory
        .ca_policies
        .get_latest(POLICY)
        .cloned()
        .expect("seeded policy")
}

fn excluded(state: &AppState) -> Vec<String> {
    stored(state)["conditions"]["users"]["excludeUsers"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect()
}

/// The other writer: from `original` (what both read), its own exclusion added, stored as a
/// new version — last writer wins.
fn their_write(state: &AppState, original: &Map<String, Json>, n: u32) {
    let mut theirs = original.clone();
    let list = theirs["conditions"]["users"]["excludeUsers"]
        .as_array_mut()
        .unwrap();
    if !list.contains(&json!(THEIRS)) {
        list.push(json!(THEIRS));
    }
    theirs.insert(
        "modifiedDateTime".into(),
        json!(format!("2030-01-01T00:00:{:02}Z", n % 60)),
    );
    state
        .tenant()
        .directory
        .ca_policies
        .put(POLICY, theirs.clone());
}

/// A layer that, after each of the first `times` answers to `method` on the policy with
/// `status`, lets the other writer store its version computed from `original`.
fn other_writer(
    router: axum::Router,
    state: AppState,
    original: Map<String, Json>,
    method: axum::http::Method,
    status: u16,
    times: u32,
) -> (axum::Router, Arc<AtomicU32>) {
    let count = Arc::new(AtomicU32::new(0));
    let seen = count.clone();
    let router = router.layer(axum::middleware::from_fn(
        move |req: axum::extract::Request, next: axum::middleware::Next| {
            let (state, original, seen, method) = (
                state.clone(),
                original.clone(),
                seen.clone(),
                method.clone(),
            );
            async move {
                let hit = req.method() == method && req.uri().path() == policy_path();
                let response = next.run(req).await;
                if hit && response.status().as_u16() == status {
                    let n = seen.fetch_add(1, Ordering::SeqCst);
                    if n < times {
                        their_write(&state, &original, n);
                    }
                }
                response
            }
        },
    ));
    (router, count)
}

fn add_ours() -> ExclusionMerge {
    ExclusionMerge {
        add_users: vec![OURS.to_owned()],
        ..Default::default()
    }
}

async fn start_with_other_writer(
    method: axum::http::Method,
    status: u16,
    times: u32,
) -> (Emulator, Arc<AtomicU32>) {
    let mut counter = None;
    let tenant = Emulator::start_wrapped_with_state(|router, state| {
        let original = stored(state);
        let (router, count) = other_writer(router, state.clone(), original, method, status, times);
        counter = Some(count);
        router
    })
    .await;
    (tenant, counter.expect("layer installed"))
}

fn patches(log: &Json) -> Vec<&Json> {
    log["value"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["method"] == "PATCH")
        .collect()
}

#[tokio::test]
async fn a_write_another_writer_replaced_is_merged_again_keeping_theirs() {
    let (tenant, writes) = start_with_other_writer(axum::http::Method::PATCH, 204, 1).await;
    let clients = tenant.clients();
    let deadline = Deadline::after(Duration::from_secs(60));
    let done = change_exclusions(
        &clients.graph,
        &clients.locks,
        POLICY,
        &add_ours(),
        deadline,
    )
    .await;
    assert_eq!(
        writes.load(Ordering::SeqCst),
        2,
        "the other writer went once"
    );
    assert!(done.result.is_ok(), "{:?}", done.result);
    assert_eq!(done.lost_updates, 1);
    assert_eq!(done.accepted.expect("accepted").added, [OURS]);
    let now = excluded(&tenant.state);
    assert!(now.contains(&OURS.to_owned()), "ours restored: {now:?}");
    assert!(now.contains(&THEIRS.to_owned()), "theirs kept: {now:?}");
    let log = tenant.admin(reqwest::Method::GET, "/requests", None).await;
    assert_eq!(patches(&log).len(), 2, "one write, one merge again");
}

#[tokio::test]
async fn a_throttled_write_is_recomputed_from_a_fresh_read_not_re_sent() {
    // The other writer lands while we wait out the 429's Retry-After; re-sending our body
    // then would drop its exclusion.
    let (tenant, _) = start_with_other_writer(axum::http::Method::PATCH, 429, 1).await;
    tenant
        .admin(
            reqwest::Method::POST,
            "/faults",
            Some(
                json!({"method": "PATCH", "path": policy_path(), "status": 429, "retry_after": 1}),
            ),
        )
        .await;
    let clients = tenant.clients();
    let deadline = Deadline::after(Duration::from_secs(60));
    let done = change_exclusions(
        &clients.graph,
        &clients.locks,
        POLICY,
        &add_ours(),
        deadline,
    )
    .await;
    assert!(done.result.is_ok(), "{:?}", done.result);
    let now = excluded(&tenant.state);
    assert!(
        now.contains(&OURS.to_owned()) && now.contains(&THEIRS.to_owned()),
        "{now:?}"
    );
    // GET, PATCH (429), GET (fresh read), PATCH with their entry in it.
    let log = tenant.admin(reqwest::Method::GET, "/requests", None).await;
    let sent = patches(&log);
    assert_eq!(sent.len(), 2);
    assert_eq!(sent[0]["status"], 429);
    let second = &sent[1]["requestBody"]["conditions"]["users"]["excludeUsers"];
    assert!(
        second.as_array().unwrap().contains(&json!(THEIRS)),
        "the second PATCH was computed from a fresh read: {second}"
    );
}

#[tokio::test]
async fn an_answer_lost_after_commit_still_records_the_entry_as_ours() {
    let tenant = Emulator::start().await;
    tenant
        .admin(
            reqwest::Method::POST,
            "/faults",
            Some(json!({"method": "PATCH", "path": policy_path(), "drop_connection": "after_commit"})),
        )
        .await;
    let clients = tenant.clients();
    let deadline = Deadline::after(Duration::from_secs(60));
    let done = change_exclusions(
        &clients.graph,
        &clients.locks,
        POLICY,
        &add_ours(),
        deadline,
    )
    .await;
    assert!(done.result.is_ok(), "{:?}", done.result);
    assert_eq!(done.accepted.expect("the write landed").added, [OURS]);
    let log = tenant.admin(reqwest::Method::GET, "/requests", None).await;
    assert_eq!(
        patches(&log).len(),
        1,
        "the fresh read showed it: no second write"
    );
    assert_eq!(
        excluded(&tenant.state)
            .iter()
            .filter(|e| *e == OURS)
            .count(),
        1
    );
}

#[tokio::test]
async fn a_writer_that_keeps_replacing_the_policy_ends_in_a_clear_error() {
    let (tenant, _) = start_with_other_writer(axum::http::Method::PATCH, 204, u32::MAX).await;
    let clients = tenant.clients();
    let deadline = Deadline::after(Duration::from_secs(120));
    let done = change_exclusions(
        &clients.graph,
        &clients.locks,
        POLICY,
        &add_ours(),
        deadline,
    )
    .await;
    let error = done
        .result
        .expect_err("cannot win against a writer that always comes last");
    assert!(matches!(error, AzureError::Contended { .. }), "{error}");
    assert!(error
        .to_string()
        .contains("Nothing of anyone else's was removed"));
    // Theirs is there; ours was replaced every time.
    let now = excluded(&tenant.state);
    assert!(now.contains(&THEIRS.to_owned()) && !now.contains(&OURS.to_owned()));
    assert!(
        done.accepted.is_some(),
        "our writes were accepted, then replaced"
    );
}
