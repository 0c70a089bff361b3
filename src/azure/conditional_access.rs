//! Conditional-access policies (`/identity/conditionalAccess/policies`) and the one change the
//! provider makes to them: adding or removing principals in `conditions.users.excludeUsers` /
//! `excludeGroups`.
//!
//! CA policies are shared objects — most of each one belongs to whoever wrote it — and Graph's
//! PATCH replaces arrays whole (facts file, "Conditional Access policies"), so an exclusion is
//! always a read-modify-write: read the policy, merge with [`ExclusionMerge`], send back the
//! complete `conditions.users` object. [`change_exclusions`] does exactly that, holding the
//! policy's `ObjectLocks` entry (key: [`lock_key`]) so writers of one policy take turns.

use std::time::{Duration, Instant};

use serde_json::{json, Map, Value as Json};

use crate::azure::consistency::ConsistencyWait;
use crate::azure::error::AzureError;
use crate::azure::graph::GraphClient;
use crate::azure::locks::ObjectLocks;
use crate::azure::retry::Deadline;
use tracing::{debug, warn};

const POLICIES: &str = "/identity/conditionalAccess/policies";

/// The three documented policy states.
pub const POLICY_STATES: [&str; 3] = ["enabled", "disabled", "enabledForReportingButNotEnforced"];

/// The `ObjectLocks` key of one policy (ids compare case-insensitively).
pub fn lock_key(policy_id: &str) -> String {
    format!("ca-policy/{}", policy_id.to_ascii_lowercase())
}

/// Every policy in the tenant, whole (all pages).
pub async fn list_policies(
    graph: &GraphClient,
    deadline: Deadline,
) -> Result<Vec<Json>, AzureError> {
    graph.list_all(POLICIES, deadline).await
}

/// One policy, or `None` when it no longer exists.
pub async fn get_policy(
    graph: &GraphClient,
    policy_id: &str,
    deadline: &Deadline,
) -> Result<Option<Json>, AzureError> {
    graph
        .get_optional(&format!("{POLICIES}/{policy_id}"), deadline)
        .await
}

/// Replaces the policy's `conditions.users` with `users`. Send the complete object: the arrays
/// in it replace the stored ones.
pub async fn patch_policy_users(
    graph: &GraphClient,
    policy_id: &str,
    users: Json,
    deadline: &Deadline,
) -> Result<(), AzureError> {
    graph
        .patch(
            &format!("{POLICIES}/{policy_id}"),
            json!({ "conditions": { "users": users } }),
            deadline,
        )
        .await
}

/// What one [`change_exclusions`] did.
#[derive(Debug)]
pub struct ExclusionWrite {
    /// Set once Graph accepted a PATCH: the entries the writes added (absent from the policy
    /// as read under the lock, so the writer's) and removed. Kept even when the read-back then
    /// fails: the change is in the tenant.
    pub accepted: Option<MergeEffect>,
    /// The policy as read back (as read, when it needed no write); `None` when it is gone.
    pub result: Result<Option<Json>, AzureError>,
    /// The versions of the policy the writes were computed from (see [`PolicyVersion`]).
    pub bases: Vec<PolicyVersion>,
    /// How many times another writer's PATCH replaced ours and the merge was done again.
    pub lost_updates: u32,
    /// When the last accepted PATCH was sent, and how long the replicas took to show it:
    /// another writer's PATCH computed from a read that stale can land that much later.
    pub written_at: Option<Instant>,
    pub observed_lag: Duration,
}

/// One version of a policy as far as an exclusion write is concerned: its modification time
/// and its `conditions.users`. A read showing a version one of our writes was computed from is
/// a replica that has not seen the write yet; any other version without our change was written
/// by someone else after we read — our change was lost (last writer wins: Graph has no ETag or
/// `If-Match` on conditional-access policies, facts file "Conditional Access policies").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyVersion {
    modified: Json,
    users: Json,
}

impl PolicyVersion {
    pub fn of(policy: &Json) -> Self {
        PolicyVersion {
            modified: policy
                .get("modifiedDateTime")
                .cloned()
                .unwrap_or(Json::Null),
            users: policy::users(policy).cloned().unwrap_or(Json::Null),
        }
    }
}

/// Whether `policy` (as read) lost the change `merge` made: it does not show the change, and
/// it is none of the versions our writes started from (`bases`), so another writer replaced
/// our PATCH with one computed from an older read.
pub fn lost_update(merge: &ExclusionMerge, bases: &[PolicyVersion], policy: &Json) -> bool {
    !merge.is_reflected_in(policy) && !bases.contains(&PolicyVersion::of(policy))
}

/// Merges of one policy in a single [`change_exclusions`] (or one reconcile): the first write
/// plus the merges done again after another writer replaced ours. Each starts from a fresh
/// read, so only a writer that keeps replacing the policy faster than we read it back exhausts
/// them.
pub const MAX_MERGES: u32 = 6;

/// How old a copy of a policy (from a listing) may be for a merge to be computed from it;
/// older copies are read again (a listing refreshes every policy at once). A PATCH computed
/// from a copy is another writer's lost update if that writer's own PATCH landed after the
/// copy was read, and that writer finds out only by listing again after ours has landed: the
/// exclusion resource's check comes a second after its last write (`SETTLE` in
/// `resources/ca_exclusion/ownership.rs`), so copies may be half of that old and a PATCH built
/// on one still lands — a round trip later — before the other writer looks.
pub const MAX_BASE_AGE: Duration = Duration::from_millis(500);

/// A policy as read at a moment (from a listing or a GET): what a merge may start from.
#[derive(Debug, Clone)]
pub struct PolicyRead {
    pub policy: Json,
    pub at: Instant,
}

impl ExclusionWrite {
    fn new() -> Self {
        ExclusionWrite {
            accepted: None,
            result: Ok(None),
            bases: Vec::new(),
            lost_updates: 0,
            written_at: None,
            observed_lag: Duration::ZERO,
        }
    }
}

impl PolicyVersion {
    fn to_json(&self) -> Json {
        json!([self.modified, self.users])
    }

    fn is_noted(&self, noted: &Json) -> bool {
        noted.as_array().is_some_and(|pair| {
            pair.first() == Some(&self.modified) && pair.get(1) == Some(&self.users)
        })
    }
}

/// `copy` as far as this process knows: a copy showing a version one of our own earlier writes
/// replaced (a replica that has not caught up with it, or a listing taken before it) gets the
/// `conditions.users` that write sent. Any other version is someone's newer write, or ours
/// shown, and stands as read.
fn with_own_write(locks: &ObjectLocks, key: &str, mut copy: Json) -> Json {
    let Some((_, note)) = locks.last_write(key) else {
        return copy;
    };
    let version = PolicyVersion::of(&copy);
    let replaced = note["bases"]
        .as_array()
        .is_some_and(|bases| bases.iter().any(|b| version.is_noted(b)));
    if replaced {
        if let Some(users) = copy.pointer_mut("/conditions/users") {
            *users = note["users"].clone();
        }
    }
    copy
}

/// One read-modify-write of a policy's exclusions under its `ObjectLocks` entry, without a
/// read-back: merge into `base` (a copy from a listing, when it is at most [`MAX_BASE_AGE`] old)
/// or into a fresh read, PATCH the whole `conditions.users` once, and return the policy as the
/// PATCH left it. A write that failed transiently is never re-sent later with its old body: the
/// policy is read again and the merge recomputed, as many times as the pipeline's retry policy
/// gives any request. Whether the write stays in place — another process can replace it, Graph
/// having no `If-Match` on these policies — is for the caller to check afterwards
/// ([`lost_update`]); [`change_exclusions`] and the exclusion resource's reconcile both do.
pub async fn write_exclusions(
    graph: &GraphClient,
    locks: &ObjectLocks,
    policy_id: &str,
    merge: &ExclusionMerge,
    base: Option<PolicyRead>,
    deadline: Deadline,
) -> ExclusionWrite {
    let key = lock_key(policy_id);
    let _guard = locks.lock(&key).await;
    let mut write = ExclusionWrite::new();
    let finish = |mut write: ExclusionWrite, result| {
        write.result = result;
        write
    };
    let fresh = base.filter(|b| b.at.elapsed() <= MAX_BASE_AGE);
    let mut current = match fresh {
        Some(read) => with_own_write(locks, &key, read.policy),
        None => match get_policy(graph, policy_id, &deadline).await {
            Ok(Some(p)) => with_own_write(locks, &key, p),
            other => return finish(write, other),
        },
    };
    // A PATCH that failed without telling whether it took effect (a 5xx, a lost answer).
    let mut in_doubt: Option<MergeEffect> = None;
    let mut failures = 0u32;
    let max_attempts = graph.service().http.policy.max_attempts;
    loop {
        let Some(users) = policy::users(&current) else {
            return finish(write, Ok(Some(current)));
        };
        let Some(merged) = merge.apply(users) else {
            // Our change is in place. After an ambiguous failure, that is our PATCH having
            // landed: its effect is ours.
            if let Some(effect) = in_doubt.take() {
                write.accept(effect);
            }
            return finish(write, Ok(Some(current)));
        };
        in_doubt = None;
        // The effect is judged on this read, taken under the lock: an entry already in it is
        // someone else's even if it names one of the writer's principals.
        let effect = merge.effect(users);
        let base = PolicyVersion::of(&current);
        let sent = Instant::now();
        match patch_policy_users_once(graph, policy_id, merged.clone(), &deadline).await {
            Ok(()) => {
                write.bases.push(base);
                write.accept(effect);
                write.written_at = Some(sent);
                let bases: Vec<Json> = write.bases.iter().map(PolicyVersion::to_json).collect();
                locks.note_write(&key, json!({"users": merged, "bases": bases}));
                if let Some(users) = current.pointer_mut("/conditions/users") {
                    *users = merged;
                }
                return finish(write, Ok(Some(current)));
            }
            // As many attempts as the pipeline gives any request, each after the service's
            // `Retry-After` or a backoff, from a fresh read.
            Err(e) if e.is_transient() && failures + 1 < max_attempts => {
                failures += 1;
                if e.is_ambiguous() {
                    write.bases.push(base);
                    in_doubt = Some(effect);
                }
                let wait = e
                    .retry_after()
                    .unwrap_or_else(|| graph.service().http.policy.backoff(failures));
                if deadline.would_pass(wait) {
                    return finish(write, Err(e));
                }
                debug!(policy_id, failures, wait_ms = wait.as_millis() as u64, error = %e,
                    "exclusion write failed transiently; reading the policy again before the next one");
                tokio::time::sleep(wait).await;
                current = match get_policy(graph, policy_id, &deadline).await {
                    Ok(Some(p)) => with_own_write(locks, &key, p),
                    other => return finish(write, other),
                };
            }
            Err(e) => return finish(write, Err(e)),
        }
    }
}

/// [`write_exclusions`] followed by its read-back: read the policy until the replicas show the
/// change, so that the caller's state and the next writer see it.
///
/// The lock covers writers in this process only. Another process (a second pipeline, the
/// portal) can read the same version and PATCH after us, replacing our array with one that
/// lacks our entry. The read-back detects that — a version that is neither ours nor one we
/// wrote from, without our change ([`lost_update`]) — and merges again from it, up to
/// [`MAX_MERGES`] times. It restores only our own change: entries of others that vanish are
/// not put back (that could undo a deliberate removal); their writers' read-backs guard them.
/// The exclusion resource does the same for all its policies at once, with listings
/// (`resources/ca_exclusion/ownership.rs`).
pub async fn change_exclusions(
    graph: &GraphClient,
    locks: &ObjectLocks,
    policy_id: &str,
    merge: &ExclusionMerge,
    deadline: Deadline,
) -> ExclusionWrite {
    let mut write = write_exclusions(graph, locks, policy_id, merge, None, deadline).await;
    loop {
        if write.accepted.is_none() || !matches!(write.result, Ok(Some(_))) {
            return write;
        }
        let what = format!("conditional-access policy {policy_id} to show the exclusion change");
        let bases = write.bases.clone();
        let first_shown: std::sync::Mutex<Option<Instant>> = std::sync::Mutex::new(None);
        let read_back = ConsistencyWait::new(what, deadline)
            .until_unless(
                || get_policy(graph, policy_id, &deadline),
                |p: &Option<Json>| {
                    let shown = p.as_ref().is_none_or(|p| merge.is_reflected_in(p));
                    if shown {
                        let mut first = first_shown.lock().unwrap_or_else(|e| e.into_inner());
                        first.get_or_insert_with(Instant::now);
                    }
                    shown
                },
                |p: &Option<Json>| p.as_ref().is_some_and(|p| lost_update(merge, &bases, p)),
            )
            .await;
        let first_shown = first_shown.into_inner().unwrap_or_else(|e| e.into_inner());
        if let (Some(sent), Some(shown)) = (write.written_at, first_shown) {
            write.observed_lag = write
                .observed_lag
                .max(shown.saturating_duration_since(sent));
        }
        match read_back {
            Ok(Ok(shown)) => {
                write.result = Ok(shown);
                return write;
            }
            Ok(Err(replaced)) => {
                write.lost_updates += 1;
                if write.lost_updates >= MAX_MERGES {
                    write.result = Err(replaced_too_often(policy_id, write.lost_updates));
                    return write;
                }
                warn!(
                    policy_id,
                    lost_updates = write.lost_updates,
                    "another writer replaced this policy's exclusions with a version computed \
                     before ours (Graph has no If-Match for conditional-access policies); \
                     merging again"
                );
                let base = replaced.map(|policy| PolicyRead {
                    policy,
                    at: Instant::now(),
                });
                let again = write_exclusions(graph, locks, policy_id, merge, base, deadline).await;
                write.absorb(again);
            }
            Err(e) => {
                write.result = Err(e);
                return write;
            }
        }
    }
}

impl ExclusionWrite {
    /// Folds a later change of the same policy into this one: what both writes did, the later
    /// read, every base version.
    pub fn absorb(&mut self, later: ExclusionWrite) {
        if let Some(effect) = later.accepted {
            self.accept(effect);
        }
        self.result = later.result;
        self.bases.extend(later.bases);
        self.lost_updates += later.lost_updates;
        self.written_at = later.written_at.or(self.written_at);
        self.observed_lag = self.observed_lag.max(later.observed_lag);
    }

    /// Adds what one accepted PATCH did to the record.
    fn accept(&mut self, effect: MergeEffect) {
        let all = self.accepted.get_or_insert_with(MergeEffect::default);
        for id in effect.added {
            if !all.added.contains(&id) {
                all.added.push(id);
            }
        }
        for id in effect.removed {
            if !all.removed.contains(&id) {
                all.removed.push(id);
            }
        }
    }
}

async fn patch_policy_users_once(
    graph: &GraphClient,
    policy_id: &str,
    users: Json,
    deadline: &Deadline,
) -> Result<(), AzureError> {
    graph
        .patch_once(
            &format!("{POLICIES}/{policy_id}"),
            json!({ "conditions": { "users": users } }),
            deadline,
        )
        .await
}

fn replaced_too_often(policy_id: &str, merges: u32) -> AzureError {
    AzureError::Contended {
        service: crate::azure::error::Service::Graph,
        object: format!("the exclusions of conditional-access policy {policy_id}"),
        replaced: merges,
    }
}

/// An authentication strength (`/policies/authenticationStrengthPolicies`): which method
/// combinations satisfy it. The built-ins have fixed ids: `…0002` multifactor, `…0003`
/// passwordless, `…0004` phishing-resistant (facts file, "Authentication strengths").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthenticationStrength {
    pub id: String,
    pub display_name: String,
    pub policy_type: Option<String>,
    /// Each entry a comma-separated combination, e.g. `fido2` or `password,sms`.
    pub allowed_combinations: Vec<String>,
}

impl AuthenticationStrength {
    fn from_json(v: &Json) -> Option<Self> {
        Some(AuthenticationStrength {
            id: v["id"].as_str()?.to_owned(),
            display_name: v["displayName"].as_str().unwrap_or_default().to_owned(),
            policy_type: v["policyType"].as_str().map(str::to_owned),
            allowed_combinations: v["allowedCombinations"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Json::as_str)
                .map(str::to_owned)
                .collect(),
        })
    }

    /// Whether a user who signs in with `mode` alone (an `authenticationMethodModes` member
    /// such as `fido2` or `x509CertificateMultiFactor`) satisfies the strength.
    pub fn allows(&self, mode: &str) -> bool {
        self.allowed_combinations
            .iter()
            .any(|c| c.split(',').all(|m| m.trim().eq_ignore_ascii_case(mode)))
    }
}

/// Every authentication strength of the tenant (built-in and custom).
pub async fn authentication_strengths(
    graph: &GraphClient,
    deadline: Deadline,
) -> Result<Vec<AuthenticationStrength>, AzureError> {
    Ok(graph
        .list_all("/policies/authenticationStrengthPolicies", deadline)
        .await?
        .iter()
        .filter_map(AuthenticationStrength::from_json)
        .collect())
}

/// Read-only views of a policy object as Graph returns it.
pub mod policy {
    use serde_json::Value as Json;

    pub fn id(policy: &Json) -> &str {
        policy.get("id").and_then(Json::as_str).unwrap_or_default()
    }

    pub fn display_name(policy: &Json) -> &str {
        policy
            .get("displayName")
            .and_then(Json::as_str)
            .unwrap_or_default()
    }

    pub fn state(policy: &Json) -> &str {
        policy
            .get("state")
            .and_then(Json::as_str)
            .unwrap_or_default()
    }

    /// `conditions.users`, absent or null for workload-identity policies.
    pub fn users(policy: &Json) -> Option<&Json> {
        policy
            .get("conditions")
            .and_then(|c| c.get("users"))
            .filter(|u| u.is_object())
    }

    fn strings<'a>(users: &'a Json, key: &str) -> impl Iterator<Item = &'a str> {
        users
            .get(key)
            .and_then(Json::as_array)
            .into_iter()
            .flatten()
            .filter_map(Json::as_str)
    }

    /// Whether the policy can apply to a user sign-in at all: it includes users (`All`, guests
    /// or ids), groups, roles or guest types. Workload-identity policies target service
    /// principals through `clientApplications` and leave `users` empty (or `None`); a user
    /// cannot be blocked by them.
    pub fn targets_users(policy: &Json) -> bool {
        let Some(users) = users(policy) else {
            return false;
        };
        strings(users, "includeUsers").any(|u| !u.eq_ignore_ascii_case("None"))
            || strings(users, "includeGroups").next().is_some()
            || strings(users, "includeRoles").next().is_some()
            || users
                .get("includeGuestsOrExternalUsers")
                .is_some_and(|g| !g.is_null())
    }

    /// Whether every one of `user_ids` is in `excludeUsers` and every one of `group_ids` in
    /// `excludeGroups` (case-insensitively).
    pub fn excludes_all(policy: &Json, user_ids: &[String], group_ids: &[String]) -> bool {
        let Some(users) = users(policy) else {
            return user_ids.is_empty() && group_ids.is_empty();
        };
        let has = |key: &str, id: &String| strings(users, key).any(|e| e.eq_ignore_ascii_case(id));
        user_ids.iter().all(|id| has("excludeUsers", id))
            && group_ids.iter().all(|id| has("excludeGroups", id))
    }

    /// Whether `principal_id` is in `excludeUsers` or `excludeGroups`. An object id names one
    /// directory object, so at most one of the lists can legitimately hold it.
    pub fn excludes_principal(policy: &Json, principal_id: &str) -> bool {
        users(policy).is_some_and(|u| {
            ["excludeUsers", "excludeGroups"]
                .iter()
                .any(|key| strings(u, key).any(|e| e.eq_ignore_ascii_case(principal_id)))
        })
    }

    /// Whether any of `user_ids` / `group_ids` is excluded.
    pub fn excludes_any(policy: &Json, user_ids: &[String], group_ids: &[String]) -> bool {
        let Some(users) = users(policy) else {
            return false;
        };
        let has = |key: &str, id: &String| strings(users, key).any(|e| e.eq_ignore_ascii_case(id));
        user_ids.iter().any(|id| has("excludeUsers", id))
            || group_ids.iter().any(|id| has("excludeGroups", id))
    }
}

/// Principals to add to or take out of a policy's exclusions. Everything else in
/// `conditions.users` — other principals' exclusions, the include lists, roles, guest settings —
/// is carried over untouched.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExclusionMerge {
    pub add_users: Vec<String>,
    pub add_groups: Vec<String>,
    pub remove_users: Vec<String>,
    pub remove_groups: Vec<String>,
}

impl ExclusionMerge {
    /// The complete `conditions.users` object to send back, or `None` when `users` already
    /// has the wanted exclusions (no write needed).
    pub fn apply(&self, users: &Json) -> Option<Json> {
        let mut merged: Map<String, Json> = users.as_object().cloned().unwrap_or_default();
        let mut changed = false;
        for (key, add, remove) in [
            ("excludeUsers", &self.add_users, &self.remove_users),
            ("excludeGroups", &self.add_groups, &self.remove_groups),
        ] {
            let current: Vec<Json> = merged
                .get(key)
                .and_then(Json::as_array)
                .cloned()
                .unwrap_or_default();
            let next = merge_ids(&current, add, remove);
            if next != current {
                changed = true;
                merged.insert(key.to_owned(), Json::Array(next));
            }
        }
        changed.then_some(Json::Object(merged))
    }

    /// The ids this merge would really add to `users` (absent now) and take out of it (present
    /// now), lower-case. Only the added ones become the writer's: an entry already there
    /// belongs to whoever put it there.
    pub fn effect(&self, users: &Json) -> MergeEffect {
        let listed = |key: &str, id: &String| {
            users.get(key).and_then(Json::as_array).is_some_and(|l| {
                l.iter()
                    .any(|e| e.as_str().is_some_and(|e| e.eq_ignore_ascii_case(id)))
            })
        };
        let mut effect = MergeEffect::default();
        for (key, add, remove) in [
            ("excludeUsers", &self.add_users, &self.remove_users),
            ("excludeGroups", &self.add_groups, &self.remove_groups),
        ] {
            effect.added.extend(
                add.iter()
                    .filter(|id| !listed(key, id))
                    .map(|id| id.to_ascii_lowercase()),
            );
            effect.removed.extend(
                remove
                    .iter()
                    .filter(|id| listed(key, id))
                    .map(|id| id.to_ascii_lowercase()),
            );
        }
        effect
    }

    /// Whether `policy` shows this merge in effect (for the read-back after a write).
    pub fn is_reflected_in(&self, policy: &Json) -> bool {
        policy::excludes_all(policy, &self.add_users, &self.add_groups)
            && !policy::excludes_any(policy, &self.remove_users, &self.remove_groups)
    }
}

/// The entries one [`ExclusionMerge`] adds and removes on a given policy.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MergeEffect {
    pub added: Vec<String>,
    pub removed: Vec<String>,
}

/// `current` without the ids in `remove` (case-insensitively), then every id of `add` not yet
/// present appended once. Entries that are not ours keep their order and spelling; duplicates
/// already in `current` are left as they are — they are someone else's.
fn merge_ids(current: &[Json], add: &[String], remove: &[String]) -> Vec<Json> {
    let is_in = |list: &[String], entry: &Json| {
        entry
            .as_str()
            .is_some_and(|e| list.iter().any(|id| id.eq_ignore_ascii_case(e)))
    };
    let mut out: Vec<Json> = current
        .iter()
        .filter(|e| !is_in(remove, e))
        .cloned()
        .collect();
    for id in add {
        let present = out
            .iter()
            .any(|e| e.as_str().is_some_and(|e| e.eq_ignore_ascii_case(id)));
        if !present {
            out.push(Json::String(id.clone()));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALICE: &str = "5d2c6f0e-3b1a-4c8e-9f7d-0a1b2c3d4e01";
    const LEGACY: &str = "5d2c6f0e-3b1a-4c8e-9f7d-0a1b2c3d4e05";
    const GROUP: &str = "8a7b6c5d-0000-4e1f-9a2b-3c4d5e6f7a01";

    fn users() -> Json {
        json!({
            "includeUsers": ["All"],
            "excludeUsers": [LEGACY],
            "includeGroups": [],
            "excludeGroups": [GROUP],
            "includeRoles": [],
            "excludeRoles": ["d29b2b05-8046-44ba-8758-1e26182fcf32"],
            "includeGuestsOrExternalUsers": null,
            "excludeGuestsOrExternalUsers": null
        })
    }

    fn add_alice() -> ExclusionMerge {
        ExclusionMerge {
            add_users: vec![ALICE.into()],
            ..Default::default()
        }
    }

    #[test]
    fn adding_keeps_every_other_exclusion_and_member() {
        let merged = add_alice().apply(&users()).expect("a change");
        assert_eq!(merged["excludeUsers"], json!([LEGACY, ALICE]));
        let mut expected = users();
        expected["excludeUsers"] = json!([LEGACY, ALICE]);
        assert_eq!(merged, expected, "nothing but excludeUsers may change");
    }

    #[test]
    fn merging_twice_is_a_no_op() {
        let once = add_alice().apply(&users()).unwrap();
        assert_eq!(add_alice().apply(&once), None);
    }

    #[test]
    fn ids_already_present_in_another_case_are_not_duplicated() {
        let merge = ExclusionMerge {
            add_users: vec![LEGACY.to_uppercase()],
            add_groups: vec![GROUP.to_uppercase()],
            ..Default::default()
        };
        assert_eq!(merge.apply(&users()), None);
    }

    #[test]
    fn removing_takes_out_only_our_ids_in_any_case() {
        let with_alice = add_alice().apply(&users()).unwrap();
        let merge = ExclusionMerge {
            remove_users: vec![ALICE.to_uppercase()],
            ..Default::default()
        };
        assert_eq!(merge.apply(&with_alice), Some(users()));
        // Removing what is not there leaves the policy alone.
        assert_eq!(merge.apply(&users()), None);
    }

    #[test]
    fn missing_or_null_arrays_are_created() {
        let merge = ExclusionMerge {
            add_users: vec![ALICE.into()],
            add_groups: vec![GROUP.into()],
            ..Default::default()
        };
        let merged = merge
            .apply(&json!({"includeUsers": ["All"], "excludeGroups": null}))
            .unwrap();
        assert_eq!(
            merged,
            json!({"includeUsers": ["All"], "excludeGroups": [GROUP], "excludeUsers": [ALICE]})
        );
    }

    #[test]
    fn read_back_check_sees_additions_and_removals() {
        let policy = |users: Json| json!({"conditions": {"users": users}});
        let merged = add_alice().apply(&users()).unwrap();
        assert!(add_alice().is_reflected_in(&policy(merged.clone())));
        assert!(!add_alice().is_reflected_in(&policy(users())));
        let removal = ExclusionMerge {
            remove_users: vec![ALICE.into()],
            ..Default::default()
        };
        assert!(!removal.is_reflected_in(&policy(merged)));
        assert!(removal.is_reflected_in(&policy(users())));
    }

    #[test]
    fn effect_names_only_entries_that_change() {
        let merge = ExclusionMerge {
            add_users: vec![ALICE.into(), LEGACY.to_uppercase()],
            add_groups: vec![GROUP.into()],
            remove_users: vec!["5d2c6f0e-3b1a-4c8e-9f7d-0a1b2c3d4e09".into()],
            remove_groups: vec![GROUP.to_uppercase()],
        };
        let effect = merge.effect(&users());
        // LEGACY and GROUP were there before: not added by this merge.
        assert_eq!(effect.added, [ALICE]);
        // The absent user is not reported as removed; the group is, lower-cased.
        assert_eq!(effect.removed, [GROUP]);
    }

    #[test]
    fn excludes_principal_looks_in_both_lists() {
        let policy = json!({"conditions": {"users": users()}});
        assert!(policy::excludes_principal(&policy, &LEGACY.to_uppercase()));
        assert!(policy::excludes_principal(&policy, GROUP));
        assert!(!policy::excludes_principal(&policy, ALICE));
        assert!(!policy::excludes_principal(
            &json!({"conditions": {"users": null}}),
            ALICE
        ));
    }

    #[test]
    fn workload_identity_policies_do_not_target_users() {
        let workload = json!({"conditions": {"users": null, "clientApplications": {
            "includeServicePrincipals": ["ServicePrincipalsInMyTenant"]}}});
        assert!(!policy::targets_users(&workload));
        let none = json!({"conditions": {"users": {"includeUsers": ["None"]}}});
        assert!(!policy::targets_users(&none));
        let roles = json!({"conditions": {"users": {"includeUsers": [], "includeRoles": ["r"]}}});
        assert!(policy::targets_users(&roles));
        assert!(policy::targets_users(
            &json!({"conditions": {"users": users()}})
        ));
    }
}
