//! `breakglass_restricted_unit`: a restricted management administrative unit holding the
//! emergency accounts, so that tenant-scoped administrators and applications can no longer
//! reset their passwords, change them or delete them; optionally with `managers`, principals
//! given a role at the unit's scope (the identity Terraform runs as, so it can keep managing
//! what such a role may manage). The schema description (`description.md`) tells the whole
//! story, including what no unit-scoped role can do.
//!
//! Order follows the trait: schema, plan, create, read, update, delete, import. `membership`
//! holds the adds and removes of members and managers and what each failure means; `access`
//! who may still change a member, shared with `breakglass_account`'s error messages.

pub(crate) mod access;
mod membership;

use std::collections::BTreeSet;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::shared;
use crate::azure::administrative_units::{
    is_unit_limit, AdministrativeUnit, AdministrativeUnits, NewUnit, UnitChanges,
    RESTRICTED_UNIT_LIMIT,
};
use crate::azure::role_management::{RoleManagement, GLOBAL_ADMINISTRATOR};
use crate::azure::{AzureClients, AzureError, Deadline};
use crate::framework::validators::{each, guid, is_guid, length_between, string_rule};
use crate::framework::{
    Attribute, AttributePath, Block, Diagnostic, Diagnostics, Failure, ModelPlan, ModelResource,
    NestingMode, Operation, Schema, Tf, TimeoutDefaults, Timeouts, Type,
};
use access::{PRIVILEGED_AUTHENTICATION_ADMINISTRATOR, PRIVILEGED_ROLE_ADMINISTRATOR};
use membership::{reconcile, Manager};

const TYPE_NAME: &str = "breakglass_restricted_unit";

const TIMEOUTS: TimeoutDefaults = TimeoutDefaults {
    create: Duration::from_secs(10 * 60),
    read: Duration::from_secs(5 * 60),
    update: Duration::from_secs(10 * 60),
    delete: Duration::from_secs(10 * 60),
    includes: "retries and waits for Microsoft Entra replication count towards it",
};

pub struct RestrictedUnitResource;

// ---- schema and model ---------------------------------------------------------------------

/// Config, plan and state of a `breakglass_restricted_unit`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RestrictedUnitModel {
    id: Tf<String>,
    display_name: Tf<String>,
    description: Tf<String>,
    is_member_management_restricted: Tf<bool>,
    members: Tf<BTreeSet<String>>,
    managers: Tf<Vec<ManagerModel>>,
    deletion_protection: Tf<bool>,
    timeouts: Tf<Timeouts>,
}

/// One element of `managers`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManagerModel {
    principal_id: Tf<String>,
    role_definition_id: Tf<String>,
}

/// The documents name these two as never assignable at administrative-unit scope.
fn scopable_role() -> crate::framework::validators::Validator {
    string_rule(
        "must be a role that can be assigned at administrative-unit scope (not Global \
         Administrator or Privileged Role Administrator)",
        "Role cannot be scoped to a unit",
        |role, shown| {
            let refused = [GLOBAL_ADMINISTRATOR, PRIVILEGED_ROLE_ADMINISTRATOR];
            match refused.iter().any(|r| r.eq_ignore_ascii_case(role)) {
                false => Ok(()),
                true => Err(format!(
                    "is {shown}, {}, which cannot be assigned at administrative-unit scope \
                     (\"Assign Microsoft Entra roles with administrative unit scope\"). Use \
                     Privileged Authentication Administrator (the default) or User \
                     Administrator, for example",
                    access::role_name(role)
                )),
            }
        },
    )
}

fn unit_schema() -> Schema {
    Schema {
        description: include_str!("description.md").trim_end().to_owned(),
        attributes: vec![
            Attribute::computed(
                "id",
                Type::String,
                "The administrative unit's object id. Also the import id.",
            )
            .use_state_for_unknown(),
            Attribute::required(
                "display_name",
                Type::String,
                "The unit's name in the Entra admin center. Not unique in a tenant.",
            )
            .validate(length_between(1, 256).summary("Invalid display name")),
            Attribute::optional(
                "description",
                Type::String,
                "What the unit is for. Unset means none.",
            ),
            Attribute::computed(
                "is_member_management_restricted",
                Type::Bool,
                "Always `true`: the unit is created as a restricted management administrative \
                 unit, and Microsoft Entra cannot change that afterwards. Should the tenant \
                 report `false` (an ordinary unit was imported), the plan replaces the unit, \
                 which `deletion_protection` stops until it is turned off.",
            ),
            Attribute::optional(
                "members",
                Type::set(Type::String),
                "Object ids (GUIDs) of the users (the emergency accounts), security groups or \
                 devices to put in the unit. Only these are ever added or removed: members \
                 added by others stay and are not shown. A listed member removed by hand \
                 shows as a change in the next plan, which adds it back.",
            )
            .case_insensitive()
            .validate(each(guid())),
            shared::deletion_protection_attribute("restricted administrative unit"),
        ],
        blocks: vec![managers_block(), TIMEOUTS.block()],
        ..Schema::default()
    }
}

/// `managers { … }` blocks: a set of nested *blocks*, not a nested attribute, because Terraform
/// before 1.1 crashes rendering plans of set-nested attributes (hashicorp/terraform#29385).
fn managers_block() -> Block {
    Block {
        type_name: "managers".to_owned(),
        nesting: NestingMode::Set,
        description: "A principal given a role at the unit's scope (a role assignment with \
            `directoryScopeId = /administrativeUnits/<id>`), one block each. Without any, \
            nobody can change the members any more, Terraform included. Only these \
            assignments are added or removed; a listed one removed by hand shows in the next \
            plan."
            .to_owned(),
        attributes: vec![
            Attribute::required(
                "principal_id",
                Type::String,
                "Object id of the user, role-assignable group or service principal (e.g. \
                 `data.breakglass_client_config.current.object_id`, the identity Terraform \
                 runs as).",
            )
            .validate(guid()),
            Attribute::optional(
                "role_definition_id",
                Type::String,
                "The role assigned at the unit's scope. Defaults to Privileged \
                 Authentication Administrator, the unit-scoped role that covers the most of \
                 an emergency account: its certificate_user_ids and authentication methods \
                 (administrator or not) and the password of a non-administrator. User \
                 Administrator (`fe930be7-5e62-47db-91af-98c3a49a38b1`) is needed for its \
                 other properties.",
            )
            .default(PRIVILEGED_AUTHENTICATION_ADMINISTRATOR)
            .validate(guid())
            .validate(scopable_role()),
        ],
        blocks: Vec::new(),
        min_items: 0,
        max_items: 0,
        config_only: false,
    }
}

impl RestrictedUnitModel {
    fn scope(&self) -> String {
        format!(
            "/administrativeUnits/{}",
            self.id.as_deref().unwrap_or_default()
        )
    }

    fn member_ids(&self) -> BTreeSet<String> {
        self.members.get().cloned().unwrap_or_default()
    }

    fn manager_keys(&self) -> Vec<Manager> {
        self.managers
            .get()
            .into_iter()
            .flatten()
            .filter_map(|m| {
                Some(Manager {
                    principal_id: m.principal_id.get()?.clone(),
                    role_definition_id: m
                        .role_definition_id
                        .get()
                        .cloned()
                        .unwrap_or_else(|| PRIVILEGED_AUTHENTICATION_ADMINISTRATOR.to_owned()),
                })
            })
            .collect()
    }

    /// `self` with the unit's own properties as the tenant reports them.
    fn with_unit(&self, unit: &AdministrativeUnit) -> RestrictedUnitModel {
        RestrictedUnitModel {
            id: Tf::Known(unit.id.clone()),
            display_name: unit.display_name.clone().into(),
            description: unit.description.clone().into(),
            is_member_management_restricted: Tf::Known(unit.is_member_management_restricted),
            ..self.clone()
        }
    }
}

fn managers_model(keys: &[Manager]) -> Tf<Vec<ManagerModel>> {
    Tf::Known(
        keys.iter()
            .map(|k| ManagerModel {
                principal_id: Tf::Known(k.principal_id.clone()),
                role_definition_id: Tf::Known(k.role_definition_id.clone()),
            })
            .collect(),
    )
}

#[async_trait]
impl ModelResource<AzureClients> for RestrictedUnitResource {
    type Model = RestrictedUnitModel;

    fn type_name(&self) -> &'static str {
        TYPE_NAME
    }

    fn schema(&self) -> Schema {
        unit_schema()
    }

    fn deletion_refused(&self, prior: &Self::Model, action: &str) -> Option<Diagnostic> {
        shared::protected(
            &prior.deletion_protection,
            "restricted administrative unit",
            action,
        )
    }

    // ---- plan ---------------------------------------------------------------------------

    async fn modify_plan(&self, plan: &mut ModelPlan<'_, RestrictedUnitModel, AzureClients>) {
        plan.planned.is_member_management_restricted = Tf::Known(true);
        let Some(prior) = &plan.prior else { return };
        if prior.is_member_management_restricted.get() == Some(&false) {
            // Entra fixes the flag at creation ("can't be changed once the administrative
            // unit is created"): only a new unit is restricted.
            let path = AttributePath::root("is_member_management_restricted");
            plan.requires_replace.push(path.clone());
            plan.planned.id = Tf::Unknown;
            plan.diagnostics.push(
                Diagnostic::warning(
                    "Administrative unit is not restricted",
                    format!(
                        "Unit {} is an ordinary administrative unit. Restricted management can \
                         only be chosen when a unit is created, so Terraform plans to replace \
                         it with a new, restricted one (members stay users; the old unit and \
                         its other members' grouping go).",
                        prior.id.as_deref().unwrap_or_default()
                    ),
                )
                .at(path),
            );
        }
    }

    // ---- create -------------------------------------------------------------------------

    async fn create(
        &self,
        clients: &AzureClients,
        _config: RestrictedUnitModel,
        planned: RestrictedUnitModel,
    ) -> Result<RestrictedUnitModel, Failure> {
        let deadline = shared::deadline(&TIMEOUTS, &planned.timeouts, Operation::Create)?;
        let name = planned.display_name.as_deref().unwrap_or_default();
        let units = AdministrativeUnits::new(&clients.graph);
        let new = NewUnit {
            display_name: name,
            description: planned.description.as_deref(),
            restricted: true,
        };
        let unit = units
            .create(&new, &deadline)
            .await
            .map_err(|e| unit_error(e, "create", name))?;
        let empty = RestrictedUnitModel {
            members: planned.members.clone().map(|_| BTreeSet::new()),
            managers: planned.managers.clone().map(|_| Vec::new()),
            ..planned.with_unit(&unit)
        };
        let failure = match reconcile(clients, &empty, &planned, &deadline).await {
            Ok(()) => return Ok(planned.with_unit(&unit)),
            Err(failure) => failure,
        };
        // Nothing else knows the unit yet: take it away again rather than leave half of it.
        let mut diagnostics = failure.diagnostics;
        match units.delete(&unit.id, &deadline).await {
            Ok(_) => {
                diagnostics.push(Diagnostic::warning(
                    "Administrative unit removed again",
                    format!(
                        "The unit {name:?} ({}) was created, but completing it failed (see \
                         the error), so it was deleted again; its members are unchanged \
                         users. Fix the cause and apply again.",
                        unit.id
                    ),
                ));
                Err(Failure::new(diagnostics))
            }
            Err(e) => {
                diagnostics.push(Diagnostic::error(
                    "Administrative unit left half-made",
                    format!(
                        "The unit {name:?} ({}) was created but could not be completed nor \
                         deleted again ({e}). It is recorded in state as it is.",
                        unit.id
                    ),
                ));
                Err(Failure::new(diagnostics).with_model(&failure.reached))
            }
        }
    }

    // ---- read ---------------------------------------------------------------------------

    async fn read(
        &self,
        clients: &AzureClients,
        state: RestrictedUnitModel,
    ) -> Result<Option<RestrictedUnitModel>, Diagnostics> {
        let deadline = shared::deadline(&TIMEOUTS, &state.timeouts, Operation::Read)?;
        let id = state.id.required("id")?;
        let units = AdministrativeUnits::new(&clients.graph);
        let Some(unit) = units.get(&id, &deadline).await? else {
            return Ok(None);
        };
        let mut refreshed = state.with_unit(&unit);
        if let Tf::Known(ours) = &state.members {
            let Some(present) = units.member_ids(&id, deadline).await? else {
                return Ok(None);
            };
            let present: BTreeSet<String> =
                present.iter().map(|p| p.to_ascii_lowercase()).collect();
            // Only our members are shown, in the spelling state has: someone else's are not
            // ours to show, and one removed by hand becomes a planned add.
            let kept = ours
                .iter()
                .filter(|m| present.contains(&m.to_ascii_lowercase()));
            refreshed.members = Tf::Known(kept.cloned().collect());
        }
        if let Some(ours) = state.managers.get().filter(|m| !m.is_empty()) {
            let listed = RoleManagement::new(&clients.graph)
                .assignments_at(&state.scope(), deadline)
                .await?;
            let kept = ours.iter().filter(|m| {
                let key = Manager::of(m);
                listed.iter().any(|a| key.is(a))
            });
            refreshed.managers = Tf::Known(kept.cloned().collect());
        }
        Ok(Some(refreshed))
    }

    // ---- update -------------------------------------------------------------------------

    async fn update(
        &self,
        clients: &AzureClients,
        _config: RestrictedUnitModel,
        prior: RestrictedUnitModel,
        planned: RestrictedUnitModel,
    ) -> Result<RestrictedUnitModel, Failure> {
        let deadline = shared::deadline(&TIMEOUTS, &planned.timeouts, Operation::Update)?;
        let id = prior.id.required("id")?;
        let changes = UnitChanges {
            display_name: (planned.display_name != prior.display_name)
                .then(|| planned.display_name.get().cloned())
                .flatten(),
            description: (planned.description != prior.description)
                .then(|| planned.description.get().cloned()),
        };
        let mut reached = RestrictedUnitModel {
            is_member_management_restricted: planned.is_member_management_restricted.clone(),
            ..prior.clone()
        };
        if !changes.is_empty() {
            let name = planned.display_name.as_deref().unwrap_or(&id);
            AdministrativeUnits::new(&clients.graph)
                .update(&id, &changes, &deadline)
                .await
                .map_err(|e| unit_error(e, "update", name))?;
            reached.display_name = planned.display_name.clone();
            reached.description = planned.description.clone();
        }
        match reconcile(clients, &reached, &planned, &deadline).await {
            Ok(()) => Ok(planned),
            Err(failure) => Err(Failure::new(failure.diagnostics).with_model(&failure.reached)),
        }
    }

    // ---- delete -------------------------------------------------------------------------

    async fn delete(
        &self,
        clients: &AzureClients,
        prior: RestrictedUnitModel,
    ) -> Result<(), Failure> {
        let deadline = shared::deadline(&TIMEOUTS, &prior.timeouts, Operation::Delete)?;
        let id = prior.id.required("id")?;
        // Our role assignments at the unit's scope first; then the unit, which releases its
        // members (the users themselves are never touched).
        let none = RestrictedUnitModel {
            members: prior.members.clone(),
            managers: prior.managers.clone().map(|_| Vec::new()),
            ..prior.clone()
        };
        if let Err(failure) = reconcile(clients, &prior, &none, &deadline).await {
            return Err(Failure::new(failure.diagnostics).with_model(&failure.reached));
        }
        let name = prior.display_name.as_deref().unwrap_or(&id);
        AdministrativeUnits::new(&clients.graph)
            .delete(&id, &deadline)
            .await
            .map_err(|e| Failure::new(unit_error(e, "delete", name)).with_model(&none))?;
        Ok(())
    }

    // ---- import -------------------------------------------------------------------------

    async fn import(
        &self,
        clients: &AzureClients,
        id: &str,
    ) -> Result<RestrictedUnitModel, Diagnostics> {
        let id = id.trim();
        if !is_guid(id) {
            let detail = format!(
                "Expected the administrative unit's object id (a GUID); got {id:?}. Find it in \
                 the Entra admin center (Roles & admins > Admin units) or with \
                 GET /directory/administrativeUnits."
            );
            return Err(Diagnostic::error("Invalid import id", detail).into());
        }
        let deadline = Deadline::after(TIMEOUTS.read);
        let units = AdministrativeUnits::new(&clients.graph);
        let unit = units.get(id, &deadline).await?.ok_or_else(|| {
            Diagnostic::error(
                "No such administrative unit",
                format!("Microsoft Entra has no administrative unit with object id {id}."),
            )
        })?;
        // Import declares the unit Terraform's from now on: it adopts the members and the
        // role assignments at its scope that are there.
        let members = units
            .member_ids(&unit.id, deadline)
            .await?
            .unwrap_or_default();
        let scope = format!("/administrativeUnits/{}", unit.id);
        let assignments = RoleManagement::new(&clients.graph)
            .assignments_at(&scope, deadline)
            .await?;
        let managers: Vec<Manager> = assignments.iter().map(Manager::from_listed).collect();
        Ok(RestrictedUnitModel {
            members: Some(members.into_iter().collect::<BTreeSet<_>>())
                .filter(|m| !m.is_empty())
                .into(),
            managers: managers_model(&managers),
            // An imported unit is protected, as a created one is by default.
            deletion_protection: Tf::Known(true),
            ..RestrictedUnitModel::default().with_unit(&unit)
        })
    }
}

/// The unit's own create, update and delete failures.
fn unit_error(e: AzureError, action: &str, name: &str) -> Diagnostic {
    if is_unit_limit(&e) {
        return Diagnostic::error(
            "Restricted administrative unit limit reached",
            format!(
                "Microsoft Entra refused to create {name:?}: the tenant already holds the \
                 maximum of {RESTRICTED_UNIT_LIMIT} restricted management administrative units \
                 (\"Restricted management administrative units in Microsoft Entra ID\", \
                 Limitations). Delete one that is no longer needed, or put the accounts into an \
                 existing restricted unit (terraform import {TYPE_NAME}.NAME <unit id>). The \
                 service said: {e}"
            ),
        );
    }
    let hint = match e.status() {
        Some(403) => {
            " Managing restricted management administrative units needs the Microsoft \
             Graph application permission AdministrativeUnit.ReadWrite.All and the \
             Privileged Role Administrator (or Global Administrator) role at tenant scope."
        }
        _ => "",
    };
    let mut d = Diagnostic::from(e);
    d.detail = format!(
        "Could not {action} administrative unit {name:?}: {}{hint}",
        d.detail
    );
    d
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framework::model::{conform, field_names};
    use crate::framework::{typed, Value};
    use crate::protocol::testing;
    use crate::protocol::validate::declared_validators;

    const BG: &str = "5d2c6f0e-3b1a-4c8e-9f7d-0a1b2c3d4e01";

    fn config(pairs: &[(&str, Value)]) -> Value {
        let mut v = conform(
            Value::object([("id", Value::Null)]),
            &unit_schema().value_type(),
        )
        .unwrap();
        for (k, val) in pairs {
            v.set(k, val.clone());
        }
        v
    }

    fn manager(principal: &str, role: Value) -> Value {
        Value::object([
            ("principal_id", Value::from(principal)),
            ("role_definition_id", role),
        ])
    }

    #[test]
    fn model_and_schema_have_the_same_fields() {
        assert_eq!(
            field_names::<RestrictedUnitModel>(),
            unit_schema().field_names()
        );
    }

    #[test]
    fn validation_points_at_the_attribute() {
        let bad = config(&[
            ("display_name", Value::from("")),
            ("members", Value::Set(vec!["bg@contoso.com".into()])),
            (
                "managers",
                Value::Set(vec![manager(BG, Value::from(GLOBAL_ADMINISTRATOR))]),
            ),
        ]);
        let paths: Vec<String> = declared_validators(&unit_schema(), &bad)
            .iter()
            .map(|d| d.path.as_ref().unwrap().to_string())
            .collect();
        assert_eq!(
            paths,
            ["display_name", "members", "managers.role_definition_id"]
        );
        let ok = config(&[
            ("display_name", Value::from("Emergency access")),
            ("members", Value::Set(vec![BG.into()])),
            ("managers", Value::Set(vec![manager(BG, Value::Null)])),
        ]);
        assert!(declared_validators(&unit_schema(), &ok).is_empty());
    }

    #[tokio::test]
    async fn a_manager_without_a_role_gets_the_default_and_the_unit_is_restricted() {
        let cfg = config(&[
            ("display_name", Value::from("Emergency access")),
            ("managers", Value::Set(vec![manager(BG, Value::Null)])),
        ]);
        let plan = testing::plan(&*typed(RestrictedUnitResource), &cfg, &Value::Null).await;
        let managers = plan.planned.get("managers");
        assert_eq!(
            managers.elements()[0].get("role_definition_id"),
            Value::from(PRIVILEGED_AUTHENTICATION_ADMINISTRATOR)
        );
        assert_eq!(
            plan.planned.get("is_member_management_restricted"),
            Value::Bool(true)
        );
        assert_eq!(plan.planned.get("deletion_protection"), Value::Bool(true));
    }

    #[tokio::test]
    async fn an_unrestricted_unit_is_planned_for_replacement() {
        let mut prior = config(&[
            ("id", Value::from("3ed29667-91a0-4a96-9654-80c9dde3898d")),
            ("display_name", Value::from("Branch offices")),
            ("is_member_management_restricted", Value::Bool(false)),
            ("deletion_protection", Value::Bool(false)),
        ]);
        let mut cfg = prior.clone();
        cfg.set("id", Value::Null);
        cfg.set("is_member_management_restricted", Value::Null);
        let plan = testing::plan(&*typed(RestrictedUnitResource), &cfg, &prior).await;
        assert_eq!(
            plan.requires_replace,
            [AttributePath::root("is_member_management_restricted")]
        );
        assert!(!plan.diagnostics.has_errors(), "{:?}", plan.diagnostics);

        prior.set("is_member_management_restricted", Value::Bool(true));
        let plan = testing::plan(&*typed(RestrictedUnitResource), &cfg, &prior).await;
        assert!(plan.requires_replace.is_empty());
        assert_eq!(plan.planned, prior, "nothing to do for a restricted unit");
    }
}
