//! `breakglass_ca_exclusion`: keeps break-glass accounts (and/or a group) excluded from every
//! conditional-access policy in scope, including policies created later (the next plan shows
//! them as drift), while adding and removing only its own entries — the schema description
//! tells the whole story. Order follows the trait: schema, plan, create, read, update, delete,
//! import; every validation rule is declared on its attribute. `ownership` holds scope, which
//! entries are ours, the per-policy merges and the writes that keep that record.

mod ownership;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use super::shared;
use crate::azure::conditional_access::{list_policies, POLICY_STATES};
use crate::azure::directory_objects::{self, PrincipalKind};
use crate::azure::{AzureClients, Deadline};
use crate::framework::validators::{cross_rule, each, guid, is_guid, one_of_named, size_between};
use crate::framework::{
    Attribute, AttributePath, Block, Diagnostic, Diagnostics, Failure, ModelPlan, ModelResource,
    Operation, Schema, Tf, TimeoutDefaults, Timeouts, Type, Value,
};
use ownership::{reconcile, ExclusionSpec, OwnedExclusions, Reconciled};

pub struct CaExclusionResource;

/// Policy states in scope when `policy_filter.include_states` is not set: everything that is
/// evaluated at sign-in (report-only policies do not block, but turning one on must not be what
/// locks the emergency accounts out).
const DEFAULT_STATES: [&str; 2] = ["enabled", "enabledForReportingButNotEnforced"];

const TIMEOUTS: TimeoutDefaults = TimeoutDefaults {
    create: Duration::from_secs(30 * 60),
    read: Duration::from_secs(5 * 60),
    update: Duration::from_secs(30 * 60),
    delete: Duration::from_secs(30 * 60),
    includes: "retries after throttling and waits for Entra's replicas to agree count towards it",
};

/// Config, plan and state of a `breakglass_ca_exclusion`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ExclusionModel {
    id: Tf<String>,
    user_ids: Tf<BTreeSet<String>>,
    group_ids: Tf<BTreeSet<String>>,
    policy_ids: Tf<BTreeSet<String>>,
    /// Policy id → the principals this resource excluded from it ([`OwnedExclusions`]).
    added_exclusions: Tf<BTreeMap<String, BTreeSet<String>>>,
    missing_policy_ids: Tf<BTreeSet<String>>,
    policy_filter: Tf<PolicyFilterModel>,
    timeouts: Tf<Timeouts>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PolicyFilterModel {
    include_states: Tf<BTreeSet<String>>,
    exclude_policy_ids: Tf<BTreeSet<String>>,
}

/// Why a configuration without ids is refused (follows "`user_ids` ").
const NO_PRINCIPAL: &str = "and `group_ids` name no principal between them: set `user_ids` (the \
    break-glass accounts), `group_ids` (a group holding them), or both";

fn exclusion_schema() -> Schema {
    let ids = Type::set(Type::String);
    // Unlike `at_least_one_of`, an empty set names no principal (an unknown one will).
    let none = |v: &Value| v.is_null() || matches!(v, Value::Set(e) if e.is_empty());
    Schema {
        description: include_str!("description.md").trim_end().to_owned(),
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
            )
            .case_insensitive()
            .validate(each(guid()))
            .validate(cross_rule(
                "at least one of `user_ids` and `group_ids` must list an id",
                "No principal to exclude",
                move |users, siblings| match none(users) && none(&siblings.get("group_ids")) {
                    true => Err(NO_PRINCIPAL.to_owned()),
                    false => Ok(()),
                },
            )),
            Attribute::optional(
                "group_ids",
                ids.clone(),
                "Object ids (GUIDs) of groups to exclude, e.g. a dedicated \
                 emergency-access exclusion group. At least one of `user_ids` and \
                 `group_ids` must be set.",
            )
            .case_insensitive()
            .validate(each(guid())),
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
                ids.clone(),
                "Ids of policies in scope that do not (yet) exclude every one of the \
                 principals: new policies, or ones edited by hand. Empty after a \
                 successful apply; when it is not, the plan proposes an update that adds \
                 the exclusion.",
            ),
        ],
        blocks: vec![
            Block::single(
                "policy_filter",
                "Which conditional-access policies are in scope. Without this block: every \
                 enabled or report-only policy that can apply to users.",
                vec![
                    Attribute::optional(
                        "include_states",
                        ids.clone(),
                        "Policy states in scope: any of `enabled`, \
                         `enabledForReportingButNotEnforced` and `disabled`. Default: \
                         `[\"enabled\", \"enabledForReportingButNotEnforced\"]`. Include \
                         `disabled` to have the exclusion in place before a policy is \
                         switched on.",
                    )
                    .validate(
                        size_between(1, POLICY_STATES.len()).summary("No policy state in scope"),
                    )
                    .validate(each(
                        one_of_named(&POLICY_STATES, "a conditional-access policy state")
                            .summary("Unknown policy state"),
                    )),
                    Attribute::optional(
                        "exclude_policy_ids",
                        ids,
                        "Ids (GUIDs) of policies to leave alone. Listing a policy that \
                         already carries the exclusion removes the entries this resource \
                         added to it (see `added_exclusions`); others' stay.",
                    )
                    .case_insensitive()
                    .validate(each(guid())),
                ],
            ),
            TIMEOUTS.block(),
        ],
        ..Schema::default()
    }
}

#[async_trait]
impl ModelResource<AzureClients> for CaExclusionResource {
    type Model = ExclusionModel;

    fn type_name(&self) -> &'static str {
        "breakglass_ca_exclusion"
    }

    fn schema(&self) -> Schema {
        exclusion_schema()
    }

    async fn modify_plan(&self, plan: &mut ModelPlan<'_, ExclusionModel, AzureClients>) {
        // Nothing to plan for principals not known yet: the configuration is changing then, and
        // the framework has already planned every computed attribute unknown.
        let planned = &mut plan.planned;
        if planned.user_ids.is_unknown() || planned.group_ids.is_unknown() {
            return;
        }
        // The id follows from the principals alone, so it is known at plan time.
        let spec = ExclusionSpec::of(planned);
        planned.id = Tf::Known(spec.id());
        let prior = plan.prior.as_ref();
        let missing = prior.and_then(|p| p.missing_policy_ids.get());
        if missing.is_some_and(|m| !m.is_empty()) {
            // Drift found by the refresh (a new policy, an exclusion removed by hand): plan the
            // update that adds the exclusion.
            planned.policy_ids = Tf::Unknown;
            planned.missing_policy_ids = Tf::Unknown;
            planned.added_exclusions = Tf::Unknown;
        }
        let principals = |m: &ExclusionModel| (m.user_ids.clone(), m.group_ids.clone());
        let changed = prior.is_none_or(|p| principals(p) != principals(planned));
        if let (true, Some(clients)) = (changed, plan.data) {
            plan.diagnostics
                .extend(missing_principals(clients, &spec).await);
        }
    }

    async fn create(
        &self,
        clients: &AzureClients,
        _config: ExclusionModel,
        planned: ExclusionModel,
    ) -> Result<ExclusionModel, Failure> {
        let deadline = shared::deadline(&TIMEOUTS, &planned.timeouts, Operation::Create)?;
        let spec = ExclusionSpec::of(&planned);
        let nothing = OwnedExclusions::default();
        let done = reconcile(clients, &nothing, None, Some(&spec), deadline).await?;
        done.applied(&planned)
    }

    async fn read(
        &self,
        clients: &AzureClients,
        state: ExclusionModel,
    ) -> Result<Option<ExclusionModel>, Diagnostics> {
        let deadline = shared::deadline(&TIMEOUTS, &state.timeouts, Operation::Read)?;
        let policies = list_policies(&clients.cached.graph, deadline).await?;
        let mut owned = OwnedExclusions::from_state(&state.added_exclusions);
        owned.retain_present(&policies, &BTreeSet::new());
        Ok(Some(state_for(&state, &policies, &owned)))
    }

    async fn update(
        &self,
        clients: &AzureClients,
        _config: ExclusionModel,
        prior: ExclusionModel,
        planned: ExclusionModel,
    ) -> Result<ExclusionModel, Failure> {
        let deadline = shared::deadline(&TIMEOUTS, &planned.timeouts, Operation::Update)?;
        let (old, new) = (ExclusionSpec::of(&prior), ExclusionSpec::of(&planned));
        if old == new && planned.policy_ids.is_set() {
            // Only the case of an id changed, which Entra ignores: the plan kept the computed
            // values (the ids compare case-insensitively) and there is nothing to write.
            return Ok(planned);
        }
        let owned = OwnedExclusions::from_state(&prior.added_exclusions);
        let done = reconcile(clients, &owned, Some(&old), Some(&new), deadline).await?;
        done.applied(&planned)
    }

    async fn delete(&self, clients: &AzureClients, prior: ExclusionModel) -> Result<(), Failure> {
        let deadline = shared::deadline(&TIMEOUTS, &prior.timeouts, Operation::Delete)?;
        let owned = OwnedExclusions::from_state(&prior.added_exclusions);
        let old = ExclusionSpec::of(&prior);
        let done = reconcile(clients, &owned, Some(&old), None, deadline).await?;
        if !done.diagnostics.has_errors() {
            return Ok(());
        }
        // Some policies kept their entries: state keeps exactly those, so a later destroy
        // removes them and nothing someone else re-added meanwhile.
        let state = state_for(&prior, &done.policies, &done.owned);
        Err(Failure::new(done.diagnostics).with_model(&state))
    }

    async fn import(
        &self,
        clients: &AzureClients,
        id: &str,
    ) -> Result<ExclusionModel, Diagnostics> {
        let deadline = Deadline::after(TIMEOUTS.read);
        let (mut users, mut groups) = (BTreeSet::new(), BTreeSet::new());
        for principal in import_ids(id)? {
            match directory_objects::kind_of(&clients.graph, &principal, &deadline).await? {
                Some(PrincipalKind::User) => users.insert(principal),
                Some(PrincipalKind::Group) => groups.insert(principal),
                None => {
                    let detail = format!(
                        "{principal} is neither a user nor a group in this tenant, so it cannot \
                         be part of an imported exclusion. Check the import id."
                    );
                    return Err(Diagnostic::error("Principal not found", detail).into());
                }
            };
        }
        let skeleton = ExclusionModel {
            user_ids: Some(users).filter(|s| !s.is_empty()).into(),
            group_ids: Some(groups).filter(|s| !s.is_empty()).into(),
            ..ExclusionModel::default()
        };
        let spec = ExclusionSpec::of(&skeleton);
        let policies = list_policies(&clients.graph, deadline).await?;
        // Import declares the exclusion Terraform's from now on: it adopts what is there.
        let adopted = OwnedExclusions::adopt(&spec, &policies);
        Ok(state_for(&skeleton, &policies, &adopted))
    }
}

// ---- helpers ------------------------------------------------------------------------------

/// `base` (the plan or prior state) with the computed attributes filled in from `policies` and
/// the entries this resource owns.
fn state_for(base: &ExclusionModel, policies: &[Json], owned: &OwnedExclusions) -> ExclusionModel {
    let spec = ExclusionSpec::of(base);
    let (carrying, missing) = spec.coverage(policies);
    ExclusionModel {
        id: Tf::Known(spec.id()),
        policy_ids: Tf::Known(carrying),
        missing_policy_ids: Tf::Known(missing),
        added_exclusions: owned.to_state(),
        ..base.clone()
    }
}

impl Reconciled {
    /// A create's or update's answer: the state as the tenant now is. When some policies could
    /// not be changed the apply fails, with that state kept (the others were written).
    fn applied(self, planned: &ExclusionModel) -> Result<ExclusionModel, Failure> {
        let state = state_for(planned, &self.policies, &self.owned);
        match self.diagnostics {
            failed if failed.has_errors() => Err(Failure::new(failed).with_model(&state)),
            _ => Ok(state),
        }
    }
}

/// The object ids of an import id (comma-separated GUIDs), lower-case.
fn import_ids(id: &str) -> Result<Vec<String>, Diagnostic> {
    let ids: Vec<String> = id
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_ascii_lowercase)
        .collect();
    if ids.is_empty() || !ids.iter().all(|s| is_guid(s)) {
        let detail = format!(
            "Expected the comma-separated object ids (GUIDs) of the excluded users and groups, \
             e.g. `<user id>,<user id>,<group id>`; got {id:?}."
        );
        return Err(Diagnostic::error("Invalid import id", detail));
    }
    Ok(ids)
}

/// Warnings for principals that do not exist (yet): a PATCH naming them would be refused.
async fn missing_principals(clients: &AzureClients, spec: &ExclusionSpec) -> Diagnostics {
    let deadline = Deadline::after(TIMEOUTS.read);
    let mut warnings = Diagnostics::new();
    for (attribute, kind, ids) in [
        ("user_ids", PrincipalKind::User, &spec.user_ids),
        ("group_ids", PrincipalKind::Group, &spec.group_ids),
    ] {
        for id in ids {
            if let Ok(false) =
                directory_objects::exists(&clients.cached.graph, kind, id, &deadline).await
            {
                let kind = kind.noun();
                let detail = format!(
                    "Microsoft Graph has no {kind} {id}. Conditional access refuses exclusions \
                     of unknown ids, so the apply will fail unless the {kind} is created first \
                     (or has not replicated yet)."
                );
                let warning = Diagnostic::warning(format!("No {kind} with this id"), detail);
                warnings.push(warning.at(AttributePath::root(attribute).key(id)));
            }
        }
    }
    warnings
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framework::model::field_names;
    use crate::framework::Severity;
    use crate::framework::{decode, decode_planned, typed};
    use crate::protocol::testing;
    use crate::protocol::validate::declared_validators;

    const ALICE: &str = "5d2c6f0e-3b1a-4c8e-9f7d-0a1b2c3d4e01";
    const DAVE: &str = "5d2c6f0e-3b1a-4c8e-9f7d-0a1b2c3d4e04";

    fn config(attrs: &[(&str, Value)]) -> Value {
        testing::config(&exclusion_schema(), attrs)
    }

    fn set(items: &[&str]) -> Value {
        Value::Set(items.iter().map(|s| Value::from(*s)).collect())
    }

    fn filter(states: Value) -> (&'static str, Value) {
        (
            "policy_filter",
            Value::object([
                ("include_states", states),
                ("exclude_policy_ids", Value::Null),
            ]),
        )
    }

    /// (path, summary, detail) of every error validation reports.
    async fn errors(cfg: &Value) -> Vec<(String, String, String)> {
        let mut diags = declared_validators(&exclusion_schema(), cfg);
        diags.extend(CaExclusionResource.validate(cfg).await);
        diags
            .iter()
            .filter(|d| d.severity == Severity::Error)
            .map(|d| {
                let path = d.path.as_ref().map(|p| p.to_string()).unwrap_or_default();
                (path, d.summary.clone(), d.detail.clone())
            })
            .collect()
    }

    #[test]
    fn model_and_schema_have_the_same_fields() {
        let schema = exclusion_schema();
        assert_eq!(field_names::<ExclusionModel>(), schema.field_names());
        let block = schema
            .block("policy_filter")
            .expect("the policy_filter block");
        assert_eq!(field_names::<PolicyFilterModel>(), block.field_names());
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
        let cfg = config(&[
            ("user_ids", set(&[ALICE, "alice@contoso.com"])),
            filter(set(&["on"])),
        ]);
        let found = errors(&cfg).await;
        // Terraform cannot point inside a set: the path is the set, the detail names the element.
        let paths: Vec<&str> = found.iter().map(|(p, _, _)| p.as_str()).collect();
        assert_eq!(paths, ["user_ids", "policy_filter.include_states"]);
        assert_eq!(found[0].1, "Not an object id");
        assert!(
            found[0].2.contains("\"alice@contoso.com\" is not a GUID"),
            "{}",
            found[0].2
        );
        assert_eq!(found[1].1, "Unknown policy state");
        assert!(
            found[1]
                .2
                .contains("\"on\" is not a conditional-access policy state"),
            "{}",
            found[1].2
        );

        for nobody in [
            config(&[("user_ids", Value::Null)]),
            config(&[("user_ids", set(&[]))]),
        ] {
            let found = errors(&nobody).await;
            assert_eq!(found.len(), 1, "{found:?}");
            assert_eq!(
                (found[0].0.as_str(), found[0].1.as_str()),
                ("user_ids", "No principal to exclude")
            );
        }
        // An empty user set is fine next to a group; unknown principals count as set.
        let group_only = config(&[("user_ids", set(&[])), ("group_ids", set(&[DAVE]))]);
        assert!(errors(&group_only).await.is_empty());
        assert!(errors(&config(&[("group_ids", Value::Unknown)]))
            .await
            .is_empty());

        let no_states = config(&[("user_ids", set(&[ALICE])), filter(set(&[]))]);
        let found = errors(&no_states).await;
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].1, "No policy state in scope");
        let disabled = config(&[("user_ids", set(&[ALICE])), filter(set(&["disabled"]))]);
        assert!(errors(&disabled).await.is_empty());
    }

    /// The framework's plan followed by the resource's, without a tenant.
    async fn plan(cfg: &Value, prior: &Value) -> Value {
        let change = testing::plan(&*typed(CaExclusionResource), cfg, prior).await;
        assert!(change.diagnostics.is_empty(), "{:?}", change.diagnostics);
        change.planned
    }

    fn applied_state(missing: &[&str]) -> Value {
        config(&[
            ("id", ALICE.into()),
            ("user_ids", set(&[ALICE])),
            ("policy_ids", set(&["p1"])),
            (
                "added_exclusions",
                Value::Map([("p1".to_owned(), set(&[ALICE]))].into()),
            ),
            ("missing_policy_ids", set(missing)),
        ])
    }

    #[tokio::test]
    async fn the_id_is_planned_from_the_principals() {
        let cfg = config(&[("user_ids", set(&[DAVE, &ALICE.to_uppercase()]))]);
        let planned = plan(&cfg, &Value::Null).await;
        assert_eq!(planned.get("id"), Value::from(format!("{ALICE},{DAVE}")));
        assert_eq!(planned.get("policy_ids"), Value::Unknown);
        assert_eq!(planned.get("added_exclusions"), Value::Unknown);

        // A principal not known until apply: everything computed is known after apply.
        let partly = config(&[("user_ids", Value::Set(vec![ALICE.into(), Value::Unknown]))]);
        let planned = plan(&partly, &Value::Null).await;
        assert_eq!(planned.get("id"), Value::Unknown);
        assert_eq!(planned.get("user_ids"), partly.get("user_ids"));
    }

    #[tokio::test]
    async fn drift_found_by_the_refresh_plans_an_update() {
        let cfg = config(&[("user_ids", set(&[ALICE]))]);
        let settled = plan(&cfg, &applied_state(&[])).await;
        assert_eq!(settled, applied_state(&[]));
        let drifted = plan(&cfg, &applied_state(&["p2"])).await;
        assert_eq!(drifted.get("id"), Value::from(ALICE));
        for computed in ["policy_ids", "added_exclusions", "missing_policy_ids"] {
            assert_eq!(drifted.get(computed), Value::Unknown, "{computed}");
        }
    }

    #[tokio::test]
    async fn an_id_in_another_case_keeps_the_computed_values() {
        let cfg = config(&[("user_ids", set(&[&ALICE.to_uppercase()]))]);
        let planned = plan(&cfg, &applied_state(&[])).await;
        assert_eq!(planned.get("user_ids"), cfg.get("user_ids"));
        assert_eq!(planned.get("id"), Value::from(ALICE));
        assert_eq!(planned.get("policy_ids"), set(&["p1"]));
        // So update has nothing to write: the same principals to Entra.
        let planned: ExclusionModel = decode_planned(&planned).unwrap();
        let prior: ExclusionModel = decode(&applied_state(&[])).unwrap();
        assert_eq!(ExclusionSpec::of(&planned), ExclusionSpec::of(&prior));
        assert!(planned.policy_ids.is_set());
    }

    #[test]
    fn import_ids_are_guids_lower_cased() {
        let got = import_ids(&format!(" {}, {DAVE} ,", ALICE.to_uppercase())).unwrap();
        assert_eq!(got, [ALICE, DAVE]);
        for bad in ["", " , ", "alice@contoso.com", &format!("{ALICE},bob")] {
            let e = import_ids(bad).unwrap_err();
            assert_eq!(e.summary, "Invalid import id", "{bad:?}");
        }
    }
}
