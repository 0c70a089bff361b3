//! What is configured, which policies it reaches, which (policy, principal) entries this
//! resource owns, the merge each policy needs, and [`reconcile`]: the writes, a few policies at a
//! time, with the record of what is ours kept by exactly what each accepted write did.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use futures::stream::{self, StreamExt};
use serde_json::Value as Json;

use super::{ExclusionModel, DEFAULT_STATES};
use crate::azure::conditional_access::{
    list_policies, lost_update, policy, write_exclusions, ExclusionMerge, ExclusionWrite,
    PolicyRead, MAX_BASE_AGE, MAX_MERGES,
};
use crate::azure::throttle::Family;
use crate::azure::{AzureClients, AzureError, Deadline};
use crate::framework::{Diagnostic, Diagnostics, Tf};

/// The configured exclusion: who, and which policies are in scope; ids lower-case (object ids
/// compare case-insensitively), sorted, each once.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct ExclusionSpec {
    pub user_ids: Vec<String>,
    pub group_ids: Vec<String>,
    include_states: Vec<String>,
    exclude_policy_ids: Vec<String>,
}

impl ExclusionSpec {
    pub fn of(model: &ExclusionModel) -> Self {
        let lower = |ids: &Tf<BTreeSet<String>>| -> Vec<String> {
            let set: BTreeSet<String> = ids
                .get()
                .into_iter()
                .flatten()
                .map(|s| s.to_ascii_lowercase())
                .collect();
            set.into_iter().collect()
        };
        let filter = model.policy_filter.clone().unwrap_or_default();
        ExclusionSpec {
            user_ids: lower(&model.user_ids),
            group_ids: lower(&model.group_ids),
            include_states: match filter.include_states.into_option() {
                Some(states) => states.into_iter().collect(),
                None => DEFAULT_STATES.map(str::to_owned).to_vec(),
            },
            exclude_policy_ids: lower(&filter.exclude_policy_ids),
        }
    }

    /// The resource id: users then groups, joined by commas.
    pub fn id(&self) -> String {
        self.principals().cloned().collect::<Vec<_>>().join(",")
    }

    fn principals(&self) -> impl Iterator<Item = &String> {
        self.user_ids.iter().chain(&self.group_ids)
    }

    /// The policies that carry the exclusion, and those in scope that lack it (lower-case).
    pub fn coverage(&self, policies: &[Json]) -> (BTreeSet<String>, BTreeSet<String>) {
        let (mut carrying, mut missing) = (BTreeSet::new(), BTreeSet::new());
        for p in policies {
            let id = policy::id(p).to_ascii_lowercase();
            if policy::excludes_all(p, &self.user_ids, &self.group_ids) {
                if !self.leaves_alone(p) {
                    carrying.insert(id);
                }
            } else if self.in_scope(p) {
                missing.insert(id);
            }
        }
        (carrying, missing)
    }

    fn leaves_alone(&self, p: &Json) -> bool {
        self.exclude_policy_ids
            .iter()
            .any(|x| x.eq_ignore_ascii_case(policy::id(p)))
    }

    fn in_scope(&self, p: &Json) -> bool {
        !self.leaves_alone(p)
            && self.include_states.iter().any(|s| s == policy::state(p))
            && policy::targets_users(p)
    }
}

/// The (policy, principal) exclusion entries this resource added and may therefore remove:
/// policy id → principal ids, all lower-case. An entry that was in a policy before our PATCH
/// is someone else's and never recorded here.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct OwnedExclusions(BTreeMap<String, BTreeSet<String>>);

impl OwnedExclusions {
    /// From `added_exclusions`; null (a state written before the attribute existed) owns
    /// nothing, so nothing is ever removed on its account.
    pub fn from_state(recorded: &Tf<BTreeMap<String, BTreeSet<String>>>) -> Self {
        let mut owned = OwnedExclusions::default();
        for (policy_id, principals) in recorded.get().into_iter().flatten() {
            principals.iter().for_each(|p| owned.record(policy_id, p));
        }
        owned
    }

    pub fn to_state(&self) -> Tf<BTreeMap<String, BTreeSet<String>>> {
        Tf::Known(self.0.clone())
    }

    /// Every exclusion of `spec`'s principals present in `policies` (import adopts them).
    pub fn adopt(spec: &ExclusionSpec, policies: &[Json]) -> Self {
        let mut owned = OwnedExclusions::default();
        for p in policies {
            for principal in spec
                .principals()
                .filter(|id| policy::excludes_principal(p, id))
            {
                owned.record(policy::id(p), principal);
            }
        }
        owned
    }

    pub fn record(&mut self, policy_id: &str, principal: &str) {
        let principals = self.0.entry(policy_id.to_ascii_lowercase()).or_default();
        principals.insert(principal.to_ascii_lowercase());
    }

    pub fn forget(&mut self, policy_id: &str, principal: &str) {
        let key = policy_id.to_ascii_lowercase();
        if let Some(principals) = self.0.get_mut(&key) {
            principals.remove(&principal.to_ascii_lowercase());
            if principals.is_empty() {
                self.0.remove(&key);
            }
        }
    }

    /// Drops entries the tenant no longer holds — the policy is gone, or someone took the
    /// principal out of it — so that an entry someone else adds later is not mistaken for
    /// ours. Policies in `unknown` (a write failed, their listing may be stale) are kept.
    pub fn retain_present(&mut self, policies: &[Json], unknown: &BTreeSet<String>) {
        let by_id: BTreeMap<String, &Json> = policies
            .iter()
            .map(|p| (policy::id(p).to_ascii_lowercase(), p))
            .collect();
        self.0.retain(|policy_id, principals| {
            if unknown.contains(policy_id) {
                return true;
            }
            let Some(p) = by_id.get(policy_id) else {
                return false;
            };
            principals.retain(|principal| policy::excludes_principal(p, principal));
            !principals.is_empty()
        });
    }
}

/// One policy's planned change.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct PolicyChange {
    pub policy_id: String,
    pub display_name: String,
    pub merge: ExclusionMerge,
}

/// What each policy needs so that exactly the policies in scope of `new` exclude its
/// principals, and the entries in `owned` that are no longer wanted are taken out again —
/// those and no others. `old` (the prior principals, to tell users from groups) is `None` on
/// create, `new` is `None` on delete.
pub(super) fn plan_changes(
    policies: &[Json],
    owned: &OwnedExclusions,
    old: Option<&ExclusionSpec>,
    new: Option<&ExclusionSpec>,
) -> Vec<PolicyChange> {
    let known = |pick: fn(&ExclusionSpec) -> &Vec<String>| -> BTreeSet<&String> {
        old.into_iter().chain(new).flat_map(pick).collect()
    };
    let (users, groups) = (known(|s| &s.user_ids), known(|s| &s.group_ids));
    let mut changes: Vec<PolicyChange> = policies
        .iter()
        .filter_map(|p| {
            let id = policy::id(p);
            let mut merge = ExclusionMerge::default();
            if let Some(new) = new.filter(|n| n.in_scope(p)) {
                merge.add_users = new.user_ids.clone();
                merge.add_groups = new.group_ids.clone();
            }
            let ours = owned.0.get(&id.to_ascii_lowercase()).into_iter().flatten();
            let unwanted: Vec<String> = ours
                .filter(|p| !merge.add_users.contains(p) && !merge.add_groups.contains(p))
                .cloned()
                .collect();
            for principal in unwanted {
                let (user, group) = (users.contains(&principal), groups.contains(&principal));
                // A principal dropped from the configuration while its removal failed is in
                // neither spec any more; its object id can only be in one of the lists, so
                // looking in both takes out just that entry.
                if user || !group {
                    merge.remove_users.push(principal.clone());
                }
                if group || !user {
                    merge.remove_groups.push(principal);
                }
            }
            (merge != ExclusionMerge::default()).then(|| PolicyChange {
                policy_id: id.to_owned(),
                display_name: policy::display_name(p).to_owned(),
                merge,
            })
        })
        .collect();
    changes.sort_by(|a, b| a.policy_id.cmp(&b.policy_id));
    changes
}

/// CA writes are throttled much harder than the rest of Graph; a few policies at a time keeps
/// a large tenant quick without running into 429s on every request.
const MAX_CONCURRENT_POLICY_WRITES: usize = 4;

/// The tenant after [`reconcile`]: the policies as they are now, the entries this resource
/// owns in them, and an error diagnostic naming every policy that could not be changed.
pub(super) struct Reconciled {
    pub policies: Vec<Json>,
    pub owned: OwnedExclusions,
    pub diagnostics: Diagnostics,
}

/// The last listing of the policies, shared by the writes of one reconcile: each merge starts
/// from its copy while that is at most `MAX_BASE_AGE` old, and the first write that finds it
/// older lists again for all of them (one request, however many policies it refreshes). Under
/// the conditional-access limit of one request per second every write finds it older, and a
/// write costs a listing and its PATCH, as a GET before each PATCH would.
struct Listing {
    latest: tokio::sync::Mutex<(Instant, Vec<Json>)>,
}

impl Listing {
    fn new(at: Instant, policies: Vec<Json>) -> Self {
        Listing {
            latest: tokio::sync::Mutex::new((at, policies)),
        }
    }

    async fn replace(&self, at: Instant, policies: Vec<Json>) {
        *self.latest.lock().await = (at, policies);
    }

    /// The copy of `policy_id` to merge into, listing again if the last listing is too old;
    /// `None` when there is none (the write then reads the policy itself).
    async fn base(
        &self,
        clients: &AzureClients,
        policy_id: &str,
        deadline: Deadline,
    ) -> Option<PolicyRead> {
        let mut latest = self.latest.lock().await;
        if latest.0.elapsed() > MAX_BASE_AGE {
            // Aged from its answer: under the rate limit the request may wait for its turn.
            if let Ok(policies) = list_policies(&clients.graph, deadline).await {
                *latest = (Instant::now(), policies);
            }
        }
        let (at, policies) = &*latest;
        let policy = policies
            .iter()
            .find(|p| policy::id(p).eq_ignore_ascii_case(policy_id))?;
        Some(PolicyRead {
            policy: policy.clone(),
            at: *at,
        })
    }
}

/// Lists the policies, applies the changes `plan_changes` derives from `owned`, checks with
/// listings that every write is in place (`verify`), and returns the policies as they are now
/// with the ownership record updated by exactly what the accepted PATCHes did. Only the first
/// listing failing is an `Err`: then nothing was written.
pub(super) async fn reconcile(
    clients: &AzureClients,
    owned: &OwnedExclusions,
    old: Option<&ExclusionSpec>,
    new: Option<&ExclusionSpec>,
    deadline: Deadline,
) -> Result<Reconciled, AzureError> {
    let mut policies = list_policies(&clients.graph, deadline).await?;
    let changes = plan_changes(&policies, owned, old, new);
    let listing = Listing::new(Instant::now(), policies.clone());
    // Once the tenant throttles conditional access, its requests go one per second
    // (`throttle.rs`): the writes then take turns, so that each merge starts from a copy read
    // just before its own PATCH rather than one that waited in line behind three others.
    let turns = tokio::sync::Mutex::new(());
    let (graph, locks, listing, turns) = (&clients.graph, clients.locks.as_ref(), &listing, &turns);
    let paced = || {
        graph
            .service()
            .http
            .throttle
            .is_paced(Family::ConditionalAccess)
    };
    let write_all = |changes: Vec<PolicyChange>| {
        stream::iter(changes)
            .map(|change| async move {
                let id = &change.policy_id;
                let _turn = match paced() {
                    true => Some(turns.lock().await),
                    false => None,
                };
                let base = listing.base(clients, id, deadline).await;
                let write = write_exclusions(graph, locks, id, &change.merge, base, deadline).await;
                (change, write)
            })
            .buffer_unordered(MAX_CONCURRENT_POLICY_WRITES)
            .collect::<Vec<_>>()
    };
    let mut results = write_all(changes).await;
    results.sort_by(|a: &(PolicyChange, _), b| a.0.policy_id.cmp(&b.0.policy_id));
    if let Some(now) = verify(clients, &mut results, deadline, listing, &write_all).await {
        policies = now;
    }

    let (mut owned, mut unconfirmed, mut failures) = (owned.clone(), BTreeSet::new(), Vec::new());
    for (change, write) in results {
        let id = &change.policy_id;
        for principal in write.accepted.iter().flat_map(|effect| &effect.removed) {
            owned.forget(id, principal);
        }
        for principal in write.accepted.iter().flat_map(|effect| &effect.added) {
            owned.record(id, principal);
        }
        let position = policies
            .iter()
            .position(|p| policy::id(p).eq_ignore_ascii_case(id));
        match (write.result, position) {
            (Ok(Some(now)), Some(i)) => policies[i] = now,
            // Deleted meanwhile: nothing left to exclude from.
            (Ok(None), Some(i)) => drop(policies.remove(i)),
            (Ok(_), None) => {}
            (Err(e), _) => {
                unconfirmed.insert(id.to_ascii_lowercase());
                failures.push(format!("- {:?} ({id}): {e}", change.display_name));
            }
        }
    }
    owned.retain_present(&policies, &unconfirmed);
    let diagnostics = failure_report(failures);
    Ok(Reconciled {
        policies,
        owned,
        diagnostics,
    })
}

/// How long after the last write the first check lists the policies, and the least a final
/// listing must come after it. Another process whose PATCH was computed from a read taken
/// before ours can land after ours: its copy is at most `MAX_BASE_AGE` (half a second) old
/// and its request in flight for about a round trip, so one second covers it on a tenant whose
/// replicas keep up (no lag seen).
const SETTLE: Duration = Duration::from_secs(1);

/// Pause between listings while replicas still show a written policy as it was.
const STALE_RECHECK: Duration = Duration::from_millis(500);

/// Checks that every accepted write is in place, with listings of all policies (one request
/// each, whatever the number of policies) instead of a read-back per policy.
///
/// A written policy in a listing either shows the change (confirmed), still shows a version
/// one of our writes started from (a replica that has not caught up: listed again shortly), or
/// shows some other version without the change — another process replaced our PATCH with one
/// computed from an older read ([`lost_update`]); those are merged again from the listed copy
/// (at most `MAX_MERGES` times each). Once replicas are seen lagging by L, a PATCH computed
/// from a read that stale can land up to L after our write and show up another L later, so the
/// last listing must come at least 2L + `SETTLE` after the last write; without lag the first
/// listing, `SETTLE` after the last write, is the only one. Returns the last listing.
async fn verify<F, Fut>(
    clients: &AzureClients,
    results: &mut [(PolicyChange, ExclusionWrite)],
    deadline: Deadline,
    listing: &Listing,
    write_all: &F,
) -> Option<Vec<Json>>
where
    F: Fn(Vec<PolicyChange>) -> Fut,
    Fut: std::future::Future<Output = Vec<(PolicyChange, ExclusionWrite)>>,
{
    let pending = |w: &ExclusionWrite| w.accepted.is_some() && matches!(w.result, Ok(Some(_)));
    if !results.iter().any(|(_, w)| pending(w)) {
        return None;
    }
    // Written policies not yet seen with the change, and whether each was seen stale.
    let mut unconfirmed: BTreeMap<String, bool> = results
        .iter()
        .filter(|(_, w)| pending(w))
        .map(|(c, _)| (c.policy_id.to_ascii_lowercase(), false))
        .collect();
    let mut lag = Duration::ZERO;
    let mut last: Option<Vec<Json>> = None;
    let mut wait_for = SETTLE;
    loop {
        let Some(last_write) = results.iter().filter_map(|(_, w)| w.written_at).max() else {
            return last;
        };
        let settled = last_write + (lag * 2).max(Duration::ZERO) + wait_for;
        let pause = settled.saturating_duration_since(Instant::now());
        if deadline.would_pass(pause) {
            break;
        }
        tokio::time::sleep(pause).await;
        // Sent no earlier than this (what the settle rules compare with); its copies are
        // aged from its answer.
        let listed_at = Instant::now();
        let Ok(now) = list_policies(&clients.graph, deadline).await else {
            // The writes stand as accepted; the next refresh looks again.
            return last;
        };
        listing.replace(Instant::now(), now.clone()).await;
        let mut lost = Vec::new();
        for (change, write) in results.iter_mut().filter(|(_, w)| pending(w)) {
            let key = change.policy_id.to_ascii_lowercase();
            let listed = now
                .iter()
                .find(|p| policy::id(p).eq_ignore_ascii_case(&change.policy_id));
            match listed {
                None => {
                    // Deleted meanwhile: nothing left to exclude from.
                    write.result = Ok(None);
                    unconfirmed.remove(&key);
                }
                Some(p) if change.merge.is_reflected_in(p) => {
                    if unconfirmed.remove(&key) == Some(true) {
                        let shown_after = listed_at
                            .saturating_duration_since(write.written_at.unwrap_or(listed_at));
                        write.observed_lag = write.observed_lag.max(shown_after);
                        lag = lag.max(shown_after);
                    }
                    write.result = Ok(Some(p.clone()));
                }
                Some(p) if lost_update(&change.merge, &write.bases, p) => {
                    write.lost_updates += 1;
                    if write.lost_updates >= MAX_MERGES {
                        write.result = Err(AzureError::Contended {
                            service: crate::azure::Service::Graph,
                            object: format!(
                                "the exclusions of conditional-access policy {}",
                                change.policy_id
                            ),
                            replaced: write.lost_updates,
                        });
                        unconfirmed.remove(&key);
                    } else {
                        lost.push(change.clone());
                        unconfirmed.insert(key, false);
                    }
                }
                Some(_) => {
                    // A replica behind our write.
                    unconfirmed.insert(key, true);
                }
            }
        }
        let final_listing =
            lost.is_empty() && unconfirmed.is_empty() && listed_at >= last_write + lag * 2 + SETTLE;
        last = Some(now);
        if final_listing {
            return last;
        }
        if !lost.is_empty() {
            tracing::warn!(
                policies = lost.len(),
                "exclusions replaced by another writer after our write; merging them again"
            );
            for (change, again) in write_all(lost).await {
                if let Some((_, write)) = results
                    .iter_mut()
                    .find(|(c, _)| c.policy_id == change.policy_id)
                {
                    write.absorb(again);
                }
            }
            wait_for = SETTLE;
        } else if !unconfirmed.is_empty() {
            // Replicas are behind: look again shortly, then settle once they show it.
            wait_for = Duration::ZERO;
            let next = Instant::now() + STALE_RECHECK;
            let pause = next.saturating_duration_since(Instant::now());
            if deadline.would_pass(pause) {
                break;
            }
            tokio::time::sleep(pause).await;
        } else {
            wait_for = SETTLE;
        }
    }
    // Out of time with writes unconfirmed: report them rather than claim them.
    for (change, write) in results.iter_mut() {
        if unconfirmed.contains_key(&change.policy_id.to_ascii_lowercase()) && pending(write) {
            write.result = Err(AzureError::Deadline {
                operation: format!(
                    "Waiting for conditional-access policy {} to show the exclusion change",
                    change.policy_id
                ),
                budget: deadline.budget(),
                attempts: 0,
                last: None,
            });
        }
    }
    last
}

/// One error naming every policy that could not be changed (one line each), if any.
fn failure_report(lines: Vec<String>) -> Diagnostics {
    let (n, plural) = (lines.len(), if lines.len() == 1 { "y" } else { "ies" });
    let summary =
        format!("Could not change the exclusions of {n} conditional-access polic{plural}");
    let detail = format!(
        "{}\n\nEvery other policy was updated. `policy_ids` lists the policies that carry the \
         exclusion now and `missing_policy_ids` those still without it, so the next plan \
         proposes the remaining changes: fix the cause above and apply again.",
        lines.join("\n")
    );
    match n {
        0 => Diagnostics::new(),
        _ => Diagnostic::error(summary, detail).into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const ALICE: &str = "5d2c6f0e-3b1a-4c8e-9f7d-0a1b2c3d4e01";
    const DAVE: &str = "5d2c6f0e-3b1a-4c8e-9f7d-0a1b2c3d4e04";
    const GROUP: &str = "8a7b6c5d-0000-4e1f-9a2b-3c4d5e6f7a01";

    fn policy(id: &str, state: &str, exclude_users: &[&str]) -> Json {
        json!({"id": id, "displayName": id, "state": state, "conditions": {"users": {
            "includeUsers": ["All"], "excludeUsers": exclude_users, "excludeGroups": []}}})
    }

    fn ids(ids: &[&str]) -> Tf<BTreeSet<String>> {
        Tf::Known(ids.iter().map(|s| (*s).to_owned()).collect())
    }

    fn spec(users: &[&str]) -> ExclusionSpec {
        ExclusionSpec::of(&ExclusionModel {
            user_ids: ids(users),
            ..ExclusionModel::default()
        })
    }

    fn spec_with_group(users: &[&str], group: &str) -> ExclusionSpec {
        ExclusionSpec::of(&ExclusionModel {
            user_ids: ids(users),
            group_ids: ids(&[group]),
            ..ExclusionModel::default()
        })
    }

    fn with_group(mut policy: Json, group: &str) -> Json {
        policy["conditions"]["users"]["excludeGroups"] = json!([group]);
        policy
    }

    fn owned(pairs: &[(&str, &[&str])]) -> OwnedExclusions {
        let mut owned = OwnedExclusions::default();
        for (policy_id, principals) in pairs {
            for principal in *principals {
                owned.record(policy_id, principal);
            }
        }
        owned
    }

    #[test]
    fn id_is_sorted_lowercase_users_then_groups() {
        let model = ExclusionModel {
            user_ids: ids(&[&DAVE.to_uppercase(), ALICE]),
            group_ids: ids(&["G"]),
            ..ExclusionModel::default()
        };
        assert_eq!(ExclusionSpec::of(&model).id(), format!("{ALICE},{DAVE},g"));
    }

    #[test]
    fn coverage_reports_policies_lacking_the_exclusion_as_missing() {
        let policies = [
            policy("p1", "enabled", &[ALICE]),
            policy("p2", "enabled", &[]),
            policy("p3", "disabled", &[]),
            policy("p4", "enabledForReportingButNotEnforced", &[]),
        ];
        let (carrying, missing) = spec(&[ALICE]).coverage(&policies);
        assert_eq!(carrying, BTreeSet::from(["p1".to_owned()]));
        assert_eq!(missing, BTreeSet::from(["p2".into(), "p4".into()]));
    }

    #[test]
    fn create_adds_to_policies_in_scope_only() {
        let policies = [
            policy("p1", "enabled", &[ALICE]),
            policy("p2", "enabled", &[]),
            policy("p3", "disabled", &[]),
        ];
        let nothing = OwnedExclusions::default();
        let changes = plan_changes(&policies, &nothing, None, Some(&spec(&[ALICE])));
        let ids: Vec<&str> = changes.iter().map(|c| c.policy_id.as_str()).collect();
        // p1 already carries it; `change_policy` finds nothing to write there.
        assert_eq!(ids, ["p1", "p2"]);
        assert!(changes.iter().all(|c| c.merge.remove_users.is_empty()));
    }

    #[test]
    fn update_removes_dropped_principals_from_touched_policies_only() {
        let policies = [
            policy("p1", "enabled", &[ALICE, DAVE]),
            policy("p2", "disabled", &[ALICE, DAVE]),
            policy("p3", "enabled", &[DAVE]),
        ];
        let old = spec(&[ALICE, DAVE]);
        let new = spec(&[ALICE]);
        let touched = owned(&[("p1", &[ALICE, DAVE]), ("p2", &[ALICE, DAVE])]);
        let changes = plan_changes(&policies, &touched, Some(&old), Some(&new));
        let p1 = &changes[0];
        assert_eq!(p1.merge.add_users, [ALICE]);
        assert_eq!(p1.merge.remove_users, [DAVE]);
        // p2 left the scope (disabled): all of ours comes out.
        let p2 = &changes[1];
        assert!(p2.merge.add_users.is_empty());
        assert_eq!(p2.merge.remove_users, [ALICE, DAVE]);
        // p3's exclusion of Dave was never ours to remove.
        assert_eq!(changes[2].policy_id, "p3");
        assert!(changes[2].merge.remove_users.is_empty());
    }

    #[test]
    fn delete_touches_only_recorded_policies() {
        let policies = [
            policy("p1", "enabled", &[ALICE]),
            policy("p2", "enabled", &[ALICE]),
        ];
        let recorded = owned(&[("p2", &[ALICE])]);
        let changes = plan_changes(&policies, &recorded, Some(&spec(&[ALICE])), None);
        assert_eq!(changes.len(), 1);
        assert_eq!(changes[0].policy_id, "p2");
        assert_eq!(changes[0].merge.remove_users, [ALICE]);
    }

    #[test]
    fn delete_removes_only_owned_pairs_even_where_the_principal_is_excluded() {
        // Alice is excluded from both policies, the group from both, but this resource added
        // only Alice to p1 and the group to p2: the other two entries were there before.
        let policies = [
            with_group(policy("p1", "enabled", &[ALICE]), GROUP),
            with_group(policy("p2", "enabled", &[ALICE]), GROUP),
        ];
        let recorded = owned(&[("p1", &[ALICE]), ("p2", &[GROUP])]);
        let old = spec_with_group(&[ALICE], GROUP);
        let changes = plan_changes(&policies, &recorded, Some(&old), None);
        assert_eq!(changes.len(), 2);
        assert_eq!(changes[0].merge.remove_users, [ALICE]);
        assert!(changes[0].merge.remove_groups.is_empty());
        assert!(changes[1].merge.remove_users.is_empty());
        assert_eq!(changes[1].merge.remove_groups, [GROUP]);
    }

    #[test]
    fn nothing_recorded_means_nothing_removed() {
        let policies = [policy("p1", "enabled", &[ALICE, DAVE])];
        let changes = plan_changes(
            &policies,
            &OwnedExclusions::default(),
            Some(&spec(&[ALICE, DAVE])),
            Some(&spec(&[ALICE])),
        );
        assert_eq!(changes.len(), 1);
        assert_eq!(changes[0].merge.add_users, [ALICE]);
        assert!(changes[0].merge.remove_users.is_empty());
        assert!(changes[0].merge.remove_groups.is_empty());
    }

    #[test]
    fn a_principal_no_longer_configured_is_looked_for_in_both_lists() {
        // Dave's removal failed in an earlier update, so he is only in the record now.
        let policies = [policy("p1", "enabled", &[ALICE, DAVE])];
        let recorded = owned(&[("p1", &[ALICE, DAVE])]);
        let now = spec(&[ALICE]);
        let changes = plan_changes(&policies, &recorded, Some(&now), Some(&now));
        assert_eq!(changes[0].merge.remove_users, [DAVE]);
        assert_eq!(changes[0].merge.remove_groups, [DAVE]);
    }

    #[test]
    fn ownership_round_trips_through_state_lower_case() {
        let recorded = owned(&[("P1", &[&ALICE.to_uppercase(), DAVE]), ("p2", &[GROUP])]);
        let state = recorded.to_state();
        assert_eq!(
            state.get().unwrap()["p1"],
            BTreeSet::from([ALICE.to_owned(), DAVE.to_owned()])
        );
        assert_eq!(OwnedExclusions::from_state(&state), recorded);
        assert_eq!(
            OwnedExclusions::from_state(&Tf::Null),
            OwnedExclusions::default()
        );
        // A hand-edited state in upper case still owns the same entries.
        let shouting = Tf::Known(BTreeMap::from([(
            "P2".to_owned(),
            BTreeSet::from([GROUP.to_uppercase()]),
        )]));
        assert_eq!(
            OwnedExclusions::from_state(&shouting),
            owned(&[("p2", &[GROUP])])
        );
    }

    #[test]
    fn forgetting_the_last_principal_drops_the_policy() {
        let mut recorded = owned(&[("p1", &[ALICE])]);
        recorded.forget("P1", &ALICE.to_uppercase());
        assert_eq!(recorded, OwnedExclusions::default());
    }

    #[test]
    fn refresh_forgets_entries_gone_from_the_tenant_but_not_unconfirmed_policies() {
        let policies = [
            // Someone took Dave out of p1 by hand.
            policy("p1", "enabled", &[ALICE]),
            // p3's write failed: its listing may predate our change.
            policy("p3", "enabled", &[]),
        ];
        let mut recorded = owned(&[
            ("p1", &[ALICE, DAVE]),
            ("p2", &[ALICE]), // deleted
            ("p3", &[ALICE]),
        ]);
        recorded.retain_present(&policies, &BTreeSet::from(["p3".to_owned()]));
        assert_eq!(recorded, owned(&[("p1", &[ALICE]), ("p3", &[ALICE])]));
    }

    #[test]
    fn import_adopts_every_existing_entry_of_the_principals() {
        let policies = [
            with_group(policy("p1", "enabled", &[ALICE]), GROUP),
            policy("p2", "disabled", &[ALICE]),
            policy("p3", "enabled", &[DAVE]),
        ];
        let adopted = OwnedExclusions::adopt(&spec_with_group(&[ALICE], GROUP), &policies);
        assert_eq!(adopted, owned(&[("p1", &[ALICE, GROUP]), ("p2", &[ALICE])]));
    }

    #[test]
    fn policy_filter_defaults_and_exclusions() {
        let model = ExclusionModel {
            user_ids: ids(&[ALICE]),
            policy_filter: Tf::Known(super::super::PolicyFilterModel {
                include_states: ids(&["disabled"]),
                exclude_policy_ids: ids(&["P2"]),
            }),
            ..ExclusionModel::default()
        };
        let policies = [
            policy("p1", "disabled", &[]),
            policy("p2", "disabled", &[ALICE]),
            policy("p3", "enabled", &[]),
        ];
        let (carrying, missing) = ExclusionSpec::of(&model).coverage(&policies);
        // p2 carries the exclusion but is left alone, so it is listed nowhere.
        assert!(carrying.is_empty());
        assert_eq!(missing, BTreeSet::from(["p1".to_owned()]));
        // Without a filter: enabled and report-only policies.
        assert_eq!(spec(&[ALICE]).include_states, DEFAULT_STATES);
    }
}
