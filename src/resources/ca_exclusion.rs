//! `breakglass_ca_exclusion`: keeps break-glass accounts (and/or a group) excluded from every
//! conditional-access policy that could lock them out — including policies created after the
//! apply, which the next plan reports as drift.
//!
//! The policies belong to others, so this resource only ever adds or removes its own ids in
//! `excludeUsers` / `excludeGroups`: each write is a read-modify-write of one policy under its
//! `ObjectLocks` entry, sending back the complete `conditions.users` object (Graph's PATCH
//! replaces arrays). Which policies carry the exclusion is recomputed on every read from the
//! tenant: `policy_ids` lists those that do, `missing_policy_ids` the policies in scope that do
//! not; a non-empty `missing_policy_ids` makes the plan propose an update that adds it.
//!
//! A policy holds one entry per excluded principal, whoever added it, so ownership is kept per
//! (policy, principal) pair in `added_exclusions` ([`OwnedExclusions`]): only a pair this
//! resource's own PATCH added is ever taken out again. A principal someone else had already
//! excluded from a policy stays excluded there through updates and destroy.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use async_trait::async_trait;
use futures::stream::{self, StreamExt};
use serde_json::Value as Json;

use super::shared::{self, is_guid};
use crate::azure::conditional_access::{
    self as ca, get_policy, list_policies, lock_key, patch_policy_users, policy, ExclusionMerge,
    MergeEffect, POLICY_STATES,
};
use crate::azure::{AzureClients, AzureError, ConsistencyWait, Deadline};
use crate::framework::{
    ApplyOutcome, Attribute, AttributePath, Block, Diagnostic, Diagnostics, ImportedResource,
    NestingMode, PlanRequest, PlannedChange, ProviderData, Resource, Schema, Type, Value,
};

/// Policy states in scope when `policy_filter.include_states` is not set: everything that is
/// evaluated at sign-in (report-only policies do not block, but turning one on must not be what
/// locks the emergency accounts out).
const DEFAULT_STATES: [&str; 2] = ["enabled", "enabledForReportingButNotEnforced"];

/// CA writes are throttled much harder than the rest of Graph; a few policies at a time keeps
/// a large tenant quick without running into 429s on every request.
const MAX_CONCURRENT_POLICY_WRITES: usize = 4;

const CREATE_TIMEOUT: Duration = Duration::from_secs(30 * 60);
const READ_TIMEOUT: Duration = Duration::from_secs(5 * 60);
const UPDATE_TIMEOUT: Duration = Duration::from_secs(30 * 60);
const DELETE_TIMEOUT: Duration = Duration::from_secs(30 * 60);

pub struct CaExclusionResource;

#[async_trait]
impl Resource for CaExclusionResource {
    fn type_name(&self) -> &'static str {
        "breakglass_ca_exclusion"
    }

    fn schema(&self) -> Schema {
        let ids = Type::set(Type::String);
        Schema {
            description:
                "Excludes emergency-access (break-glass) accounts, and/or a group holding \
                them, from every conditional-access policy that could lock them out.\n\n\
                The exclusion is **additive**: policies are owned by others, so the resource only \
                adds its own ids to `conditions.users.excludeUsers` / `excludeGroups` of each \
                policy in scope and, on destroy, removes exactly those ids again. Every other \
                exclusion, include list and setting of a policy is sent back unchanged (each \
                write is a read-modify-write of the whole `conditions.users` object, one writer \
                per policy at a time).\n\n\
                By default a policy is in scope when it is `enabled` or report-only and can apply \
                to users (it includes all users, guests, users, groups or roles); \
                workload-identity policies, which only target service principals, and disabled \
                policies are left alone. Every refresh re-evaluates the tenant: a policy created \
                later, or one from which the exclusion was removed by hand, appears in \
                `missing_policy_ids` and the next plan proposes an update that adds the \
                exclusion to it. Microsoft-managed policies are in scope too: Entra allows \
                their exclusions to be changed.\n\n\
                Destroy, and an update that drops a principal or takes a policy out of scope, \
                remove only the entries this resource added, recorded per policy and principal \
                in `added_exclusions`: a principal that someone else had already excluded from \
                a policy stays excluded there. A policy holds a single entry per principal, so \
                one case cannot be told apart: if someone else adds the same principal to a \
                policy after this resource did (or after a refresh found it removed and the \
                next apply added it back), the entry still counts as this resource's and \
                destroy removes it. For the same reason, do not combine two resources \
                excluding the same principal, nor `create_before_destroy`: the second one finds \
                the entries already there and owns none of them, so destroying the first \
                leaves the principal excluded nowhere until the next apply.\n\n\
                Import with the resource `id`, the comma-separated object ids of the excluded \
                users and groups (each id is looked up to tell users from groups), e.g. \
                `terraform import breakglass_ca_exclusion.emergency \
                5d2c6f0e-3b1a-4c8e-9f7d-0a1b2c3d4e01,8a7b6c5d-0000-4e1f-9a2b-3c4d5e6f7a01`. \
                The imported `policy_filter` is the default one. Import **adopts** every \
                existing exclusion of these principals, in every policy, into \
                `added_exclusions`: importing declares that Terraform manages the exclusion \
                from now on, so a later destroy removes them all. To leave exclusions made \
                outside Terraform in place, create the resource instead of importing it."
                    .to_owned(),
            attributes: vec![
                Attribute::computed(
                    "id",
                    Type::String,
                    "The excluded principals' object ids, lower-case, users then groups, each \
                     part sorted, joined by commas. Also the import id.",
                ),
                Attribute::optional(
                    "user_ids",
                    ids.clone(),
                    "Object ids (GUIDs) of the users to exclude, typically the break-glass \
                     accounts. At least one of `user_ids` and `group_ids` must be set.",
                ),
                Attribute::optional(
                    "group_ids",
                    ids.clone(),
                    "Object ids (GUIDs) of groups to exclude, e.g. a dedicated \
                     emergency-access exclusion group. At least one of `user_ids` and \
                     `group_ids` must be set.",
                ),
                Attribute::computed(
                    "policy_ids",
                    ids.clone(),
                    "Ids of the conditional-access policies that currently exclude every one \
                     of the principals (policies named in `policy_filter.exclude_policy_ids` \
                     are not listed).",
                ),
                Attribute::computed(
                    "added_exclusions",
                    Type::map(Type::set(Type::String)),
                    "The exclusion entries this resource owns: policy id → object ids \
                     (lower-case) of the principals it excluded from that policy. Only these \
                     are removed again, by destroy or by an update that drops a principal or \
                     takes a policy out of scope. An entry that was already in a policy \
                     before this resource wrote to it belongs to whoever added it and is not \
                     listed. A refresh drops entries that are gone from the tenant; one the \
                     next apply adds back is listed again. After `terraform import`: every \
                     exclusion of the principals present at import (adopted).",
                ),
                Attribute::computed(
                    "missing_policy_ids",
                    ids,
                    "Ids of policies in scope that do not (yet) exclude every one of the \
                     principals: new policies, or ones edited by hand. Empty after a \
                     successful apply; when it is not, the plan proposes an update that adds \
                     the exclusion.",
                ),
            ],
            blocks: vec![
                Block {
                    type_name: "policy_filter".into(),
                    nesting: NestingMode::Single,
                    description: "Which conditional-access policies are in scope. Without this \
                        block: every enabled or report-only policy that can apply to users."
                        .into(),
                    attributes: vec![
                        Attribute::optional(
                            "include_states",
                            Type::set(Type::String),
                            "Policy states in scope: any of `enabled`, \
                             `enabledForReportingButNotEnforced` and `disabled`. Default: \
                             `[\"enabled\", \"enabledForReportingButNotEnforced\"]`. Include \
                             `disabled` to have the exclusion in place before a policy is \
                             switched on.",
                        ),
                        Attribute::optional(
                            "exclude_policy_ids",
                            Type::set(Type::String),
                            "Ids (GUIDs) of policies to leave alone. Listing a policy that \
                             already carries the exclusion removes the entries this resource \
                             added to it (see `added_exclusions`); others' stay.",
                        ),
                    ],
                    blocks: vec![],
                    min_items: 0,
                    max_items: 0,
                },
                Block {
                    type_name: "timeouts".into(),
                    nesting: NestingMode::Single,
                    description: "Time limits per operation, as Go durations (`\"30m\"`, \
                        `\"1h\"`). They bound retries after throttling and the waits for \
                        Entra's replicas to agree."
                        .into(),
                    attributes: ["create", "read", "update", "delete"]
                        .into_iter()
                        .map(|op| {
                            let default = match op {
                                "read" => "5m",
                                _ => "30m",
                            };
                            Attribute::optional(
                                op,
                                Type::String,
                                &format!("Time limit for {op} (default `{default}`)."),
                            )
                        })
                        .collect(),
                    blocks: vec![],
                    min_items: 0,
                    max_items: 0,
                },
            ],
            ..Schema::default()
        }
    }

    async fn validate(&self, config: &Value) -> Diagnostics {
        let mut diagnostics = Diagnostics::new();
        let users = config.get("user_ids");
        let groups = config.get("group_ids");
        for (name, value) in [("user_ids", &users), ("group_ids", &groups)] {
            check_guids(value, AttributePath::root(name), &mut diagnostics);
        }
        let no_principals = |v: &Value| v.is_null() || matches!(v, Value::Set(e) if e.is_empty());
        if no_principals(&users) && no_principals(&groups) {
            diagnostics.push(
                Diagnostic::error(
                    "No principal to exclude",
                    "Set `user_ids` (the break-glass accounts) or `group_ids` (a group holding \
                     them), or both; the exclusion needs at least one id.",
                )
                .at(AttributePath::root("user_ids")),
            );
        }

        let filter = config.get("policy_filter");
        let states = filter.get("include_states");
        let states_path = AttributePath::root("policy_filter").attr("include_states");
        if matches!(&states, Value::Set(e) if e.is_empty()) {
            diagnostics.push(
                Diagnostic::error(
                    "No policy state in scope",
                    "`include_states` is empty, so no policy would be in scope. Leave it out \
                     for the default (enabled and report-only policies) or list states.",
                )
                .at(states_path.clone()),
            );
        }
        for state in states.elements() {
            if let Some(s) = state.as_str() {
                if !POLICY_STATES.contains(&s) {
                    diagnostics.push(
                        Diagnostic::error(
                            "Unknown policy state",
                            format!(
                                "{s:?} is not a conditional-access policy state; use one of \
                                 {}.",
                                POLICY_STATES.join(", ")
                            ),
                        )
                        .at(states_path.clone().key(s)),
                    );
                }
            }
        }
        check_guids(
            &filter.get("exclude_policy_ids"),
            AttributePath::root("policy_filter").attr("exclude_policy_ids"),
            &mut diagnostics,
        );

        diagnostics.extend(shared::validate_timeouts(config));
        diagnostics
    }

    async fn modify_plan(&self, req: &PlanRequest<'_>, plan: &mut PlannedChange) {
        if plan.planned.is_null() {
            return;
        }
        let planned = &mut plan.planned;
        let ids_known =
            planned.get("user_ids").is_fully_known() && planned.get("group_ids").is_fully_known();
        if ids_known {
            // The id follows from the principals alone, so it is known at plan time.
            let spec = ExclusionSpec::from_value(planned);
            planned.set("id", Value::String(spec.id()));
        }
        if !req.prior.is_null() && !req.prior.get("missing_policy_ids").elements().is_empty() {
            // Drift found by the refresh (a new policy, an exclusion removed by hand): plan the
            // update that adds the exclusion.
            planned.set("policy_ids", Value::Unknown);
            planned.set("missing_policy_ids", Value::Unknown);
            planned.set("added_exclusions", Value::Unknown);
        }

        let principals_changed = req.prior.is_null()
            || ["user_ids", "group_ids"]
                .iter()
                .any(|a| req.prior.get(a) != planned.get(a));
        if let (true, true, Some(data)) = (ids_known, principals_changed, req.data) {
            let spec = ExclusionSpec::from_value(planned);
            if let Ok(clients) = AzureClients::from_provider_data(data) {
                let warnings = missing_principals(clients, &spec).await;
                plan.diagnostics.extend(warnings);
            }
        }
    }

    async fn create(&self, data: &ProviderData, _config: &Value, planned: &Value) -> ApplyOutcome {
        let clients = match AzureClients::from_provider_data(data) {
            Ok(c) => c,
            Err(d) => return ApplyOutcome::failed(Value::Null, d.into()),
        };
        let deadline = match shared::deadline(planned, "create", CREATE_TIMEOUT) {
            Ok(d) => d,
            Err(d) => return ApplyOutcome::failed(Value::Null, d.into()),
        };
        let spec = ExclusionSpec::from_value(planned);
        let nothing_owned = OwnedExclusions::default();
        match reconcile(clients, &nothing_owned, None, Some(&spec), deadline).await {
            Ok(done) => ApplyOutcome::failed(
                state_for(planned, &spec, &done.policies, &done.owned),
                done.diagnostics,
            ),
            Err(e) => ApplyOutcome::failed(Value::Null, Diagnostic::from(e).into()),
        }
    }

    async fn read(&self, data: &ProviderData, state: &Value) -> Result<Option<Value>, Diagnostics> {
        let clients = AzureClients::from_provider_data(data)?;
        let deadline = shared::deadline(state, "read", READ_TIMEOUT)?;
        let spec = ExclusionSpec::from_value(state);
        let policies = list_policies(&clients.graph, deadline)
            .await
            .map_err(Diagnostic::from)?;
        let mut owned = OwnedExclusions::from_value(&state.get("added_exclusions"));
        owned.retain_present(&policies, &BTreeSet::new());
        Ok(Some(state_for(state, &spec, &policies, &owned)))
    }

    async fn update(
        &self,
        data: &ProviderData,
        _config: &Value,
        prior: &Value,
        planned: &Value,
    ) -> ApplyOutcome {
        let clients = match AzureClients::from_provider_data(data) {
            Ok(c) => c,
            Err(d) => return ApplyOutcome::failed(prior.clone(), d.into()),
        };
        let deadline = match shared::deadline(planned, "update", UPDATE_TIMEOUT) {
            Ok(d) => d,
            Err(d) => return ApplyOutcome::failed(prior.clone(), d.into()),
        };
        let old = ExclusionSpec::from_value(prior);
        let new = ExclusionSpec::from_value(planned);
        let owned = OwnedExclusions::from_value(&prior.get("added_exclusions"));
        match reconcile(clients, &owned, Some(&old), Some(&new), deadline).await {
            Ok(done) => ApplyOutcome::failed(
                state_for(planned, &new, &done.policies, &done.owned),
                done.diagnostics,
            ),
            Err(e) => ApplyOutcome::failed(prior.clone(), Diagnostic::from(e).into()),
        }
    }

    async fn delete(&self, data: &ProviderData, prior: &Value) -> Diagnostics {
        let clients = match AzureClients::from_provider_data(data) {
            Ok(c) => c,
            Err(d) => return d.into(),
        };
        let deadline = match shared::deadline(prior, "delete", DELETE_TIMEOUT) {
            Ok(d) => d,
            Err(d) => return d.into(),
        };
        let old = ExclusionSpec::from_value(prior);
        let owned = OwnedExclusions::from_value(&prior.get("added_exclusions"));
        match reconcile(clients, &owned, Some(&old), None, deadline).await {
            Ok(done) => done.diagnostics,
            Err(e) => Diagnostic::from(e).into(),
        }
    }

    async fn import(
        &self,
        data: &ProviderData,
        id: &str,
    ) -> Result<Vec<ImportedResource>, Diagnostics> {
        let clients = AzureClients::from_provider_data(data)?;
        let deadline = Deadline::after(READ_TIMEOUT);
        let ids: Vec<&str> = id
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect();
        let malformed: Vec<&&str> = ids.iter().filter(|s| !is_guid(s)).collect();
        if ids.is_empty() || !malformed.is_empty() {
            return Err(Diagnostic::error(
                "Invalid import id",
                format!(
                    "Expected the comma-separated object ids (GUIDs) of the excluded users and \
                     groups, e.g. `<user id>,<user id>,<group id>`; got {id:?}."
                ),
            )
            .into());
        }
        let (mut users, mut groups) = (Vec::new(), Vec::new());
        for principal in ids {
            let principal = principal.to_ascii_lowercase();
            let user = clients
                .graph
                .get_optional(&format!("/users/{principal}?$select=id"), &deadline)
                .await
                .map_err(Diagnostic::from)?;
            if user.is_some() {
                users.push(principal);
                continue;
            }
            let group = clients
                .graph
                .get_optional(&format!("/groups/{principal}"), &deadline)
                .await
                .map_err(Diagnostic::from)?;
            if group.is_none() {
                return Err(Diagnostic::error(
                    "Principal not found",
                    format!(
                        "{principal} is neither a user nor a group in this tenant, so it \
                         cannot be part of an imported exclusion. Check the import id."
                    ),
                )
                .into());
            }
            groups.push(principal);
        }
        let as_set = |ids: Vec<String>| {
            if ids.is_empty() {
                Value::Null
            } else {
                Value::Set(ids.into_iter().map(Value::String).collect())
            }
        };
        let skeleton = Value::object([
            ("id", Value::Null),
            ("user_ids", as_set(users)),
            ("group_ids", as_set(groups)),
            ("policy_ids", Value::Null),
            ("missing_policy_ids", Value::Null),
            ("added_exclusions", Value::Null),
            ("policy_filter", Value::Null),
            ("timeouts", Value::Null),
        ]);
        let spec = ExclusionSpec::from_value(&skeleton);
        let policies = list_policies(&clients.graph, deadline)
            .await
            .map_err(Diagnostic::from)?;
        // Import declares the exclusion Terraform's from now on: it adopts what is there.
        let adopted = OwnedExclusions::adopt(&spec, &policies);
        Ok(vec![ImportedResource {
            type_name: self.type_name().to_owned(),
            state: state_for(&skeleton, &spec, &policies, &adopted),
        }])
    }
}

/// The configured exclusion: who, and which policies are in scope.
#[derive(Debug, Clone, PartialEq)]
struct ExclusionSpec {
    user_ids: Vec<String>,
    group_ids: Vec<String>,
    filter: PolicyFilter,
}

#[derive(Debug, Clone, PartialEq)]
struct PolicyFilter {
    include_states: Vec<String>,
    exclude_policy_ids: Vec<String>,
}

impl ExclusionSpec {
    fn from_value(v: &Value) -> Self {
        let filter = v.get("policy_filter");
        let states = strings(&filter.get("include_states"));
        ExclusionSpec {
            user_ids: lowercase_ids(&v.get("user_ids")),
            group_ids: lowercase_ids(&v.get("group_ids")),
            filter: PolicyFilter {
                include_states: if filter.get("include_states").is_null() {
                    DEFAULT_STATES.iter().map(|s| (*s).to_owned()).collect()
                } else {
                    states
                },
                exclude_policy_ids: lowercase_ids(&filter.get("exclude_policy_ids")),
            },
        }
    }

    fn id(&self) -> String {
        let mut parts = self.user_ids.clone();
        parts.extend(self.group_ids.iter().cloned());
        parts.join(",")
    }

    fn carried_by(&self, policy: &Json) -> bool {
        policy::excludes_all(policy, &self.user_ids, &self.group_ids)
    }

    fn principals(&self) -> impl Iterator<Item = &String> {
        self.user_ids.iter().chain(&self.group_ids)
    }
}

impl PolicyFilter {
    fn leaves_alone(&self, policy: &Json) -> bool {
        let id = policy::id(policy);
        self.exclude_policy_ids
            .iter()
            .any(|x| x.eq_ignore_ascii_case(id))
    }

    fn in_scope(&self, policy: &Json) -> bool {
        !self.leaves_alone(policy)
            && self
                .include_states
                .iter()
                .any(|s| s == policy::state(policy))
            && policy::targets_users(policy)
    }
}

/// Policies that carry the exclusion and those in scope that lack it, both sorted.
#[derive(Debug, Default, PartialEq)]
struct Coverage {
    carrying: BTreeSet<String>,
    missing: BTreeSet<String>,
}

fn coverage(spec: &ExclusionSpec, policies: &[Json]) -> Coverage {
    let mut out = Coverage::default();
    for p in policies {
        let id = policy::id(p).to_ascii_lowercase();
        if spec.carried_by(p) {
            if !spec.filter.leaves_alone(p) {
                out.carrying.insert(id);
            }
        } else if spec.filter.in_scope(p) {
            out.missing.insert(id);
        }
    }
    out
}

/// `base` (the plan or prior state) with the computed attributes filled in from `policies` and
/// the entries this resource owns.
fn state_for(
    base: &Value,
    spec: &ExclusionSpec,
    policies: &[Json],
    owned: &OwnedExclusions,
) -> Value {
    let coverage = coverage(spec, policies);
    let mut state = base.clone();
    state.set("id", Value::String(spec.id()));
    state.set("policy_ids", string_set(coverage.carrying));
    state.set("missing_policy_ids", string_set(coverage.missing));
    state.set("added_exclusions", owned.to_value());
    state
}

fn string_set(ids: BTreeSet<String>) -> Value {
    Value::Set(ids.into_iter().map(Value::String).collect())
}

/// The (policy, principal) exclusion entries this resource added and may therefore remove:
/// policy id → principal ids, all lower-case. An entry that was in a policy before our PATCH
/// is someone else's and never recorded here.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct OwnedExclusions(BTreeMap<String, BTreeSet<String>>);

impl OwnedExclusions {
    /// From the `added_exclusions` state value; null (a state written before the attribute
    /// existed) owns nothing, so nothing is ever removed on its account.
    fn from_value(v: &Value) -> Self {
        let mut owned = OwnedExclusions::default();
        for (policy_id, principals) in v.entries().into_iter().flatten() {
            for principal in lowercase_ids(principals) {
                owned.record(policy_id, &principal);
            }
        }
        owned
    }

    fn to_value(&self) -> Value {
        Value::Map(
            self.0
                .iter()
                .map(|(policy_id, principals)| (policy_id.clone(), string_set(principals.clone())))
                .collect(),
        )
    }

    /// Every exclusion of `spec`'s principals present in `policies` (import adopts them).
    fn adopt(spec: &ExclusionSpec, policies: &[Json]) -> Self {
        let mut owned = OwnedExclusions::default();
        for p in policies {
            for principal in spec.principals() {
                if policy::excludes_principal(p, principal) {
                    owned.record(policy::id(p), principal);
                }
            }
        }
        owned
    }

    fn record(&mut self, policy_id: &str, principal: &str) {
        self.0
            .entry(policy_id.to_ascii_lowercase())
            .or_default()
            .insert(principal.to_ascii_lowercase());
    }

    fn forget(&mut self, policy_id: &str, principal: &str) {
        let key = policy_id.to_ascii_lowercase();
        if let Some(principals) = self.0.get_mut(&key) {
            principals.remove(&principal.to_ascii_lowercase());
            if principals.is_empty() {
                self.0.remove(&key);
            }
        }
    }

    /// The principals this resource owns in one policy.
    fn in_policy(&self, policy_id: &str) -> impl Iterator<Item = &String> {
        self.0
            .get(&policy_id.to_ascii_lowercase())
            .into_iter()
            .flatten()
    }

    /// Drops entries the tenant no longer holds — the policy is gone, or someone took the
    /// principal out of it — so that an entry someone else adds later is not mistaken for
    /// ours. Policies in `unknown` (a write failed, their listing may be stale) are kept.
    fn retain_present(&mut self, policies: &[Json], unknown: &BTreeSet<String>) {
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
struct PolicyChange {
    policy_id: String,
    display_name: String,
    merge: ExclusionMerge,
}

/// What each policy needs so that exactly the policies in scope of `new` exclude its
/// principals, and the entries in `owned` that are no longer wanted are taken out again —
/// those and no others. `old` (the prior principals, to tell users from groups) is `None` on
/// create, `new` is `None` on delete.
fn plan_changes(
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
            let in_scope = new.filter(|n| n.filter.in_scope(p));
            let mut merge = ExclusionMerge::default();
            if let Some(new) = in_scope {
                merge.add_users = new.user_ids.clone();
                merge.add_groups = new.group_ids.clone();
            }
            let wanted = |principal: &String| {
                merge.add_users.contains(principal) || merge.add_groups.contains(principal)
            };
            let unwanted: Vec<String> = owned
                .in_policy(id)
                .filter(|principal| !wanted(principal))
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

/// The tenant after [`reconcile`]: the policies as they are now, the entries this resource
/// owns in them, and an error diagnostic naming every policy that could not be changed.
struct Reconciled {
    policies: Vec<Json>,
    owned: OwnedExclusions,
    diagnostics: Diagnostics,
}

/// Lists the policies, applies the changes `plan_changes` derives from `owned` (at most
/// `MAX_CONCURRENT_POLICY_WRITES` policies at a time), and returns the policies as they are
/// now — confirmed read-backs for the ones written, the listing for the rest — with the
/// ownership record updated by exactly what the accepted PATCHes added and removed. Only the
/// listing failing is an `Err`: then nothing was written.
async fn reconcile(
    clients: &AzureClients,
    owned: &OwnedExclusions,
    old: Option<&ExclusionSpec>,
    new: Option<&ExclusionSpec>,
    deadline: Deadline,
) -> Result<Reconciled, AzureError> {
    let mut policies = list_policies(&clients.graph, deadline).await?;
    let changes = plan_changes(&policies, owned, old, new);
    let results: Vec<(PolicyChange, PolicyWrite)> = stream::iter(changes)
        .map(|change| async move {
            let write = change_policy(clients, &change, deadline).await;
            (change, write)
        })
        .buffer_unordered(MAX_CONCURRENT_POLICY_WRITES)
        .collect()
        .await;

    let mut owned = owned.clone();
    let mut unconfirmed = BTreeSet::new();
    let mut failures = Vec::new();
    for (change, write) in results {
        if let Some(effect) = &write.accepted {
            for principal in &effect.removed {
                owned.forget(&change.policy_id, principal);
            }
            for principal in &effect.added {
                owned.record(&change.policy_id, principal);
            }
        }
        let position = policies
            .iter()
            .position(|p| policy::id(p).eq_ignore_ascii_case(&change.policy_id));
        match (write.result, position) {
            (Ok(Some(now)), Some(i)) => policies[i] = now,
            // Deleted meanwhile: nothing left to exclude from.
            (Ok(None), Some(i)) => {
                policies.remove(i);
            }
            (Ok(_), None) => {}
            (Err(e), _) => {
                unconfirmed.insert(change.policy_id.to_ascii_lowercase());
                failures.push((change, e));
            }
        }
    }
    owned.retain_present(&policies, &unconfirmed);
    let mut diagnostics = Diagnostics::new();
    if !failures.is_empty() {
        failures.sort_by(|a, b| a.0.policy_id.cmp(&b.0.policy_id));
        let lines: Vec<String> = failures
            .iter()
            .map(|(c, e)| format!("- {:?} ({}): {e}", c.display_name, c.policy_id))
            .collect();
        diagnostics.push(Diagnostic::error(
            format!(
                "Could not change the exclusions of {} conditional-access polic{}",
                failures.len(),
                if failures.len() == 1 { "y" } else { "ies" }
            ),
            format!(
                "{}\n\nEvery other policy was updated. `policy_ids` lists the policies that \
                 carry the exclusion now and `missing_policy_ids` those still without it, so \
                 the next plan proposes the remaining changes: fix the cause above and apply \
                 again.",
                lines.join("\n")
            ),
        ));
    }
    Ok(Reconciled {
        policies,
        owned,
        diagnostics,
    })
}

/// What one read-modify-write did.
struct PolicyWrite {
    /// Set once Graph accepted the PATCH: the entries it added (absent from the policy as read
    /// under the lock, so ours) and removed. Kept even when the read-back then fails — the
    /// change is in the tenant.
    accepted: Option<MergeEffect>,
    /// The policy as read back, `None` when it is gone.
    result: Result<Option<Json>, AzureError>,
}

/// One read-modify-write under the policy's lock.
async fn change_policy(
    clients: &AzureClients,
    change: &PolicyChange,
    deadline: Deadline,
) -> PolicyWrite {
    let id = change.policy_id.as_str();
    let _guard = clients.locks.lock(&lock_key(id)).await;
    let unwritten = |result| PolicyWrite {
        accepted: None,
        result,
    };
    let current = match get_policy(&clients.graph, id, &deadline).await {
        Ok(Some(current)) => current,
        other => return unwritten(other),
    };
    // The effect is judged on this read, taken under the lock: an entry in it is someone
    // else's even if it matches one of our principals.
    let Some((merged, effect)) = policy::users(&current)
        .and_then(|u| Some((change.merge.apply(u)?, change.merge.effect(u))))
    else {
        return unwritten(Ok(Some(current)));
    };
    if let Err(e) = patch_policy_users(&clients.graph, id, merged, &deadline).await {
        return unwritten(Err(e));
    }
    // Read back until the replicas agree, so the state we report (and the next writer under
    // this lock) sees the change.
    let result = ConsistencyWait::new(
        format!("conditional-access policy {id} to show the exclusion change"),
        deadline,
    )
    .until(
        || ca::get_policy(&clients.graph, id, &deadline),
        |p: &Option<Json>| p.as_ref().is_none_or(|p| change.merge.is_reflected_in(p)),
    )
    .await;
    PolicyWrite {
        accepted: Some(effect),
        result,
    }
}

/// Warnings for principals that do not exist (yet): a PATCH naming them would be refused.
async fn missing_principals(clients: &AzureClients, spec: &ExclusionSpec) -> Diagnostics {
    let deadline = Deadline::after(READ_TIMEOUT);
    let mut diagnostics = Diagnostics::new();
    for (attribute, kind, path, ids) in [
        ("user_ids", "user", "/users", &spec.user_ids),
        ("group_ids", "group", "/groups", &spec.group_ids),
    ] {
        for id in ids {
            let found = clients
                .graph
                .get_optional(&format!("{path}/{id}"), &deadline)
                .await;
            if let Ok(None) = found {
                diagnostics.push(
                    Diagnostic::warning(
                        format!("No {kind} with this id"),
                        format!(
                            "Microsoft Graph has no {kind} {id}. Conditional access refuses \
                             exclusions of unknown ids, so the apply will fail unless the \
                             {kind} is created first (or has not replicated yet)."
                        ),
                    )
                    .at(AttributePath::root(attribute).key(id)),
                );
            }
        }
    }
    diagnostics
}

fn check_guids(value: &Value, path: AttributePath, diagnostics: &mut Diagnostics) {
    for element in value.elements() {
        if let Some(s) = element.as_str() {
            if !is_guid(s) {
                diagnostics.push(
                    Diagnostic::error(
                        "Not an object id",
                        format!(
                            "{s:?} is not a GUID. Use the object id \
                             (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx), not a name or a user \
                             principal name."
                        ),
                    )
                    .at(path.clone().key(s)),
                );
            }
        }
    }
}

fn strings(v: &Value) -> Vec<String> {
    v.elements()
        .iter()
        .filter_map(|e| e.as_str().map(str::to_owned))
        .collect()
}

/// Set elements lower-cased (object ids compare case-insensitively), sorted, de-duplicated.
fn lowercase_ids(v: &Value) -> Vec<String> {
    let set: BTreeSet<String> = strings(v)
        .into_iter()
        .map(|s| s.to_ascii_lowercase())
        .collect();
    set.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const ALICE: &str = "5d2c6f0e-3b1a-4c8e-9f7d-0a1b2c3d4e01";
    const DAVE: &str = "5d2c6f0e-3b1a-4c8e-9f7d-0a1b2c3d4e04";

    fn policy(id: &str, state: &str, exclude_users: &[&str]) -> Json {
        json!({"id": id, "displayName": id, "state": state, "conditions": {"users": {
            "includeUsers": ["All"], "excludeUsers": exclude_users, "excludeGroups": []}}})
    }

    fn spec(users: &[&str]) -> ExclusionSpec {
        ExclusionSpec::from_value(&Value::object([(
            "user_ids",
            Value::Set(users.iter().map(|u| Value::from(*u)).collect()),
        )]))
    }

    #[test]
    fn id_is_sorted_lowercase_users_then_groups() {
        let v = Value::object([
            (
                "user_ids",
                Value::Set(vec![DAVE.to_uppercase().into(), ALICE.into()]),
            ),
            ("group_ids", Value::Set(vec!["G".into()])),
        ]);
        assert_eq!(
            ExclusionSpec::from_value(&v).id(),
            format!("{ALICE},{DAVE},g")
        );
    }

    #[test]
    fn coverage_reports_policies_lacking_the_exclusion_as_missing() {
        let policies = [
            policy("p1", "enabled", &[ALICE]),
            policy("p2", "enabled", &[]),
            policy("p3", "disabled", &[]),
            policy("p4", "enabledForReportingButNotEnforced", &[]),
        ];
        let c = coverage(&spec(&[ALICE]), &policies);
        assert_eq!(c.carrying, BTreeSet::from(["p1".to_owned()]));
        assert_eq!(c.missing, BTreeSet::from(["p2".into(), "p4".into()]));
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

    fn owned(pairs: &[(&str, &[&str])]) -> OwnedExclusions {
        let mut owned = OwnedExclusions::default();
        for (policy_id, principals) in pairs {
            for principal in *principals {
                owned.record(policy_id, principal);
            }
        }
        owned
    }

    const GROUP: &str = "8a7b6c5d-0000-4e1f-9a2b-3c4d5e6f7a01";

    fn spec_with_group(users: &[&str], group: &str) -> ExclusionSpec {
        ExclusionSpec::from_value(&Value::object([
            (
                "user_ids",
                Value::Set(users.iter().map(|u| Value::from(*u)).collect()),
            ),
            ("group_ids", Value::Set(vec![group.into()])),
        ]))
    }

    fn with_group(mut policy: Json, group: &str) -> Json {
        policy["conditions"]["users"]["excludeGroups"] = json!([group]);
        policy
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
        let value = recorded.to_value();
        assert_eq!(
            value.entries().unwrap()["p1"],
            Value::Set(vec![ALICE.into(), DAVE.into()])
        );
        assert_eq!(OwnedExclusions::from_value(&value), recorded);
        assert_eq!(
            OwnedExclusions::from_value(&Value::Null),
            OwnedExclusions::default()
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
    fn guids_are_checked_strictly() {
        assert!(is_guid(ALICE));
        assert!(is_guid(&ALICE.to_uppercase()));
        assert!(!is_guid("alice@contoso.com"));
        assert!(!is_guid(&format!("{{{ALICE}}}")));
        assert!(!is_guid("5d2c6f0e3b1a4c8e9f7d0a1b2c3d4e01"));
    }

    #[tokio::test]
    async fn validation_names_the_offending_set_element() {
        let config = Value::object([
            (
                "user_ids",
                Value::Set(vec![ALICE.into(), "alice@contoso.com".into()]),
            ),
            (
                "policy_filter",
                Value::object([("include_states", Value::Set(vec!["on".into()]))]),
            ),
        ]);
        let diags = CaExclusionResource.validate(&config).await;
        let paths: Vec<String> = diags
            .iter()
            .map(|d| d.path.as_ref().unwrap().to_string())
            .collect();
        assert_eq!(
            paths,
            [
                "user_ids[\"alice@contoso.com\"]",
                "policy_filter.include_states[\"on\"]"
            ]
        );
        let none = CaExclusionResource
            .validate(&Value::object([("user_ids", Value::Null)]))
            .await;
        assert!(none.iter().any(|d| d.summary == "No principal to exclude"));
    }
}
