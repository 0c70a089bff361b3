//! `breakglass_role_assignment`: a permanent, active Microsoft Entra directory role assignment
//! (Global Administrator unless told otherwise) for an emergency-access principal.
//!
//! Two ways to make it, chosen by `assignment_method`:
//! - `pim` (default): a PIM schedule request (`adminAssign`, `noExpiration`), which PIM checks
//!   against the role's settings, records with its justification and ticket, and provisions
//!   asynchronously. The role's settings must allow permanent active assignments; the plan
//!   checks that before anything is written.
//! - `direct`: `POST roleAssignments`, a permanent assignment outside PIM. Role settings do not
//!   apply to it, which is why it is the documented fallback when they forbid permanence, and it
//!   works without PIM licences. Graph records no justification or ticket for it.
//!
//! Identity: Entra allows one active assignment per principal, role and directory scope, so
//! that triple is the resource's id and import id: `<principal_id>/<role_definition_id>` plus
//! the scope when it is not `/` (`…/administrativeUnits/<id>`).
//!
//! `operations` holds what each method does in the tenant; `errors` the plan-time checks and
//! how failures read.

mod errors;
mod operations;

use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::shared;
use crate::azure::role_management::{
    AssignmentKey, Origin, PimView, RequestDetails, RoleManagement, GLOBAL_ADMINISTRATOR,
};
use crate::azure::{AzureClients, Deadline};
use crate::framework::validators::{
    cross_rule, guid, is_guid, not_blank, one_of, string_rule, Validator,
};
use crate::framework::{
    Attribute, AttributePath, Diagnostic, Diagnostics, Failure, ModelPlan, ModelResource,
    Operation, Schema, Tf, TimeoutDefaults, Timeouts, Type, Value,
};
use errors::check_tenant_at_plan;

const TYPE_NAME: &str = "breakglass_role_assignment";

/// Recorded by PIM with the request when the configuration gives no justification. PIM's
/// default role settings require a justification for admin assignments.
pub const DEFAULT_JUSTIFICATION: &str =
    "Permanent emergency-access (break-glass) role assignment managed by Terraform";
const REMOVAL_JUSTIFICATION: &str = "Removed by Terraform (breakglass_role_assignment destroyed)";

/// PIM provisioning usually takes seconds but can take minutes on a busy tenant.
const TIMEOUTS: TimeoutDefaults = TimeoutDefaults {
    create: Duration::from_secs(30 * 60),
    read: Duration::from_secs(5 * 60),
    update: Duration::from_secs(30 * 60),
    delete: Duration::from_secs(30 * 60),
    includes: "retries, replication and PIM provisioning all count towards it",
};

pub struct RoleAssignmentResource;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    Pim,
    Direct,
}

// ---- schema and model ---------------------------------------------------------------------

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RoleAssignmentModel {
    id: Tf<String>,
    principal_id: Tf<String>,
    role_definition_id: Tf<String>,
    directory_scope_id: Tf<String>,
    justification: Tf<String>,
    ticket_number: Tf<String>,
    ticket_system: Tf<String>,
    assignment_method: Tf<Method>,
    schedule_id: Tf<String>,
    status: Tf<String>,
    start_date_time: Tf<String>,
    assignment_type: Tf<String>,
    end_date_time: Tf<String>,
    deletion_protection: Tf<bool>,
    timeouts: Tf<Timeouts>,
}

/// An audit attribute PIM records with its requests; a direct assignment has none.
fn pim_only(name: &'static str) -> Validator {
    cross_rule(
        "only with `assignment_method = \"pim\"`",
        "Not available for direct assignments",
        move |value, siblings| {
            if value.is_null() || siblings.get("assignment_method") != Value::from("direct") {
                return Ok(());
            }
            Err(format!(
                "is recorded by PIM with its requests. With assignment_method = \"direct\" no \
                 PIM request is made and Graph keeps no {name} for the assignment; remove \
                 {name}, or use assignment_method = \"pim\""
            ))
        },
    )
}

fn directory_scope() -> Validator {
    string_rule(
        "must start with `/`",
        "Invalid directory scope",
        |scope, shown| {
            if scope.starts_with('/') {
                Ok(())
            } else {
                Err(format!(
                    "must start with `/`: `/` for the whole tenant, or e.g. \
                     `/administrativeUnits/<id>`; got {shown}"
                ))
            }
        },
    )
}

fn schema() -> Schema {
    let pim_computed =
        |name: &str, description: &str| Attribute::computed(name, Type::String, description);
    Schema {
        description: include_str!("description.md").trim_end().to_owned(),
        attributes: vec![
            Attribute::computed(
                "id",
                Type::String,
                "`<principal_id>/<role_definition_id>`, followed by the directory scope when \
                 it is not `/`. Also the import id.",
            )
            .use_state_for_unknown(),
            Attribute::required(
                "principal_id",
                Type::String,
                "Object id (GUID) of the user, role-assignable group or service principal \
                 that gets the role.",
            )
            .validate(guid())
            .case_insensitive()
            .requires_replace(),
            Attribute::optional(
                "role_definition_id",
                Type::String,
                "Id (GUID) of the directory role; built-in roles have the same id in every \
                 tenant. The default is Global Administrator.",
            )
            .default(GLOBAL_ADMINISTRATOR)
            .validate(guid())
            .case_insensitive()
            .requires_replace(),
            Attribute::optional(
                "directory_scope_id",
                Type::String,
                "Where the role applies: `/` for the whole tenant, or e.g. \
                 `/administrativeUnits/<id>`.",
            )
            .default("/")
            .validate(directory_scope())
            .requires_replace(),
            Attribute::optional_computed(
                "justification",
                Type::String,
                "Why the assignment exists, recorded by PIM with each request. Defaults to \
                 a fixed text for `pim`; changing it records the new text with an \
                 `adminUpdate` request (no interruption). Graph keeps no justification for \
                 direct assignments.",
            )
            .validate(not_blank())
            .validate(pim_only("justification")),
            Attribute::optional(
                "ticket_number",
                Type::String,
                "Change or incident ticket recorded by PIM with the request. Changing it \
                 records an `adminUpdate` request.",
            )
            .validate(not_blank())
            .validate(pim_only("ticket_number")),
            Attribute::optional(
                "ticket_system",
                Type::String,
                "Name of the ticket system `ticket_number` belongs to.",
            )
            .validate(not_blank())
            .validate(pim_only("ticket_system")),
            Attribute::optional(
                "assignment_method",
                Type::String,
                "`pim`: a PIM schedule request, subject to the role's PIM settings. `direct`: \
                 a direct role assignment outside PIM, for tenants whose role settings forbid \
                 permanent assignments or that have no PIM.",
            )
            .default("pim")
            .validate(one_of(&["pim", "direct"]).summary("Invalid assignment method"))
            .requires_replace(),
            pim_computed(
                "schedule_id",
                "Id of the PIM assignment schedule (`pim` only; null for `direct`).",
            )
            .use_state_for_unknown(),
            pim_computed(
                "status",
                "PIM status of the assignment: `Provisioned` once it is in force, or the \
                 request's status while PIM is still working on it (`pim` only).",
            ),
            pim_computed(
                "start_date_time",
                "When the assignment took effect, RFC 3339 (`pim` only).",
            ),
            pim_computed(
                "assignment_type",
                "`Assigned` for a standing assignment, `Activated` for an activated \
                 eligibility (`pim` only).",
            )
            .use_state_for_unknown(),
            pim_computed(
                "end_date_time",
                "Null while the assignment is permanent. If it was given an end outside \
                 Terraform, this shows the end (or the ISO 8601 duration) and the next \
                 apply makes the assignment permanent again (`pim` only).",
            ),
            shared::deletion_protection_attribute("role assignment"),
        ],
        blocks: vec![TIMEOUTS.block()],
        ..Schema::default()
    }
}

/// What the configuration (or state) asks for, once every value is known.
#[derive(Debug, Clone)]
struct Desired {
    key: AssignmentKey,
    method: Method,
    details: RequestDetails,
}

impl Desired {
    fn from_model(m: &RoleAssignmentModel) -> Result<Desired, Diagnostic> {
        let principal_id = m.principal_id.get().cloned().ok_or_else(|| {
            Diagnostic::error(
                "Missing principal_id",
                "breakglass_role_assignment needs principal_id to be known when it is applied.",
            )
            .at(AttributePath::root("principal_id"))
        })?;
        let text = |t: &Tf<String>| t.get().cloned();
        Ok(Desired {
            key: AssignmentKey {
                principal_id,
                role_definition_id: text(&m.role_definition_id)
                    .unwrap_or_else(|| GLOBAL_ADMINISTRATOR.to_owned()),
                directory_scope_id: text(&m.directory_scope_id).unwrap_or_else(|| "/".to_owned()),
            },
            method: m.assignment_method.get().copied().unwrap_or(Method::Pim),
            details: RequestDetails {
                justification: text(&m.justification),
                ticket_number: text(&m.ticket_number),
                ticket_system: text(&m.ticket_system),
            },
        })
    }

    /// The state as the tenant shows it; the audit details are the desired ones when PIM's
    /// request log no longer has them (the timeouts block is carried over by the framework).
    fn state(&self, pim: Option<&PimView>) -> RoleAssignmentModel {
        let key = &self.key;
        let mut state = RoleAssignmentModel {
            id: Tf::Known(import_id(key)),
            principal_id: Tf::Known(key.principal_id.clone()),
            role_definition_id: Tf::Known(key.role_definition_id.clone()),
            directory_scope_id: Tf::Known(key.directory_scope_id.clone()),
            assignment_method: Tf::Known(self.method),
            ..RoleAssignmentModel::default()
        };
        let Some(view) = pim else {
            return state;
        };
        let details = view
            .request
            .as_ref()
            .map(|r| r.details.clone())
            .unwrap_or_else(|| self.details.clone());
        state.justification = details.justification.into();
        state.ticket_number = details.ticket_number.into();
        state.ticket_system = details.ticket_system.into();
        match (&view.schedule, &view.request) {
            (Some(s), _) => {
                state.schedule_id = Tf::Known(s.id.clone());
                state.status = s.status.clone().into();
                state.start_date_time = s.start_date_time.clone().into();
                state.assignment_type = s.assignment_type.clone().into();
                state.end_date_time = s.expiration.end().into();
            }
            (None, Some(r)) => {
                state.schedule_id = r.target_schedule_id.clone().into();
                state.status = Tf::Known(r.status.clone());
            }
            (None, None) => {}
        }
        state
    }
}

impl RoleAssignmentModel {
    /// An in-place change Graph has to hear about: new audit details for PIM, or an end date
    /// that must go. (Timeouts alone change nothing in the tenant.)
    fn needs_admin_update_from(&self, prior: &RoleAssignmentModel) -> bool {
        self.assignment_method.get() == Some(&Method::Pim)
            && (prior.end_date_time.is_set()
                || self.justification != prior.justification
                || self.ticket_number != prior.ticket_number
                || self.ticket_system != prior.ticket_system)
    }
}

/// The resource id and import id: `<principal>/<role>` plus the scope unless it is `/`.
fn import_id(key: &AssignmentKey) -> String {
    let scope = if key.directory_scope_id == "/" {
        ""
    } else {
        key.directory_scope_id.as_str()
    };
    format!("{}/{}{scope}", key.principal_id, key.role_definition_id)
}

fn parse_import_id(id: &str) -> Result<AssignmentKey, String> {
    let mut parts = id.splitn(3, '/');
    let principal_id = parts.next().unwrap_or_default();
    let role_definition_id = parts.next().unwrap_or_default();
    let scope = parts.next().unwrap_or_default();
    if !is_guid(principal_id) || !is_guid(role_definition_id) {
        return Err(format!(
            "{id:?} is not a breakglass_role_assignment import id. Use \
             <principal_id>/<role_definition_id> for the whole tenant, or \
             <principal_id>/<role_definition_id>/<directory scope without its leading slash> \
             (e.g. .../administrativeUnits/<id>); both ids are GUIDs."
        ));
    }
    Ok(AssignmentKey {
        principal_id: principal_id.to_owned(),
        role_definition_id: role_definition_id.to_owned(),
        directory_scope_id: format!("/{}", scope.trim_end_matches('/')),
    })
}

#[async_trait]
impl ModelResource<AzureClients> for RoleAssignmentResource {
    type Model = RoleAssignmentModel;

    fn type_name(&self) -> &'static str {
        TYPE_NAME
    }

    fn schema(&self) -> Schema {
        schema()
    }

    fn deletion_refused(&self, prior: &Self::Model, action: &str) -> Option<Diagnostic> {
        shared::protected(&prior.deletion_protection, "role assignment", action)
    }

    // Validation is wholly declared on the schema.

    async fn modify_plan(&self, plan: &mut ModelPlan<'_, RoleAssignmentModel, AzureClients>) {
        let planned = &mut plan.planned;
        let method = planned.assignment_method.get().copied();
        if plan.config.justification.is_null() {
            planned.justification = match planned.assignment_method {
                Tf::Known(Method::Pim) => Tf::Known(DEFAULT_JUSTIFICATION.to_owned()),
                Tf::Known(Method::Direct) | Tf::Null => Tf::Null,
                Tf::Unknown => Tf::Unknown,
            };
        }
        let in_place = plan
            .prior
            .as_ref()
            .filter(|_| plan.requires_replace.is_empty());
        let writes_pim = match in_place {
            None => {
                let key_known = planned.principal_id.get().is_some()
                    && planned.role_definition_id.get().is_some()
                    && planned.directory_scope_id.get().is_some();
                planned.id = match Desired::from_model(planned) {
                    Ok(d) if key_known => Tf::Known(import_id(&d.key)),
                    _ => Tf::Unknown,
                };
                // A new assignment: PIM decides its schedule; a direct one has none.
                let pim_value = match method {
                    Some(Method::Direct) => Tf::Null,
                    _ => Tf::Unknown,
                };
                planned.schedule_id = pim_value.clone();
                planned.assignment_type = pim_value.clone();
                if method == Some(Method::Direct) {
                    planned.status = Tf::Null;
                    planned.start_date_time = Tf::Null;
                }
                method == Some(Method::Pim)
            }
            Some(prior) => {
                // In place: the assignment keeps its id and schedule. An adminUpdate
                // re-provisions it, so status and start are only known afterwards.
                let admin_update = planned.needs_admin_update_from(prior);
                let after_update =
                    |v: &Tf<String>| if admin_update { Tf::Unknown } else { v.clone() };
                planned.status = after_update(&prior.status);
                planned.start_date_time = after_update(&prior.start_date_time);
                admin_update
            }
        };
        // The resource only ever makes permanent assignments: an end date set outside
        // Terraform is planned away.
        planned.end_date_time = Tf::Null;

        if let Some(clients) = plan.data {
            if in_place.is_none() || writes_pim {
                check_tenant_at_plan(clients, &plan.planned, writes_pim, plan.diagnostics).await;
            }
        }
    }

    async fn create(
        &self,
        clients: &AzureClients,
        _config: RoleAssignmentModel,
        planned: RoleAssignmentModel,
    ) -> Result<RoleAssignmentModel, Failure> {
        let desired = Desired::from_model(&planned)?;
        let deadline = shared::deadline(&TIMEOUTS, &planned.timeouts, Operation::Create)?;
        match desired.method {
            Method::Pim => operations::create_pim(clients, &desired, deadline).await,
            Method::Direct => operations::create_direct(clients, &desired, deadline).await,
        }
    }

    async fn read(
        &self,
        clients: &AzureClients,
        state: RoleAssignmentModel,
    ) -> Result<Option<RoleAssignmentModel>, Diagnostics> {
        let desired = Desired::from_model(&state)?;
        let deadline = shared::deadline(&TIMEOUTS, &state.timeouts, Operation::Read)?;
        let rm = RoleManagement::new(&clients.cached.graph);
        let found = match desired.method {
            Method::Pim => rm
                .observe(&desired.key, deadline)
                .await
                .map_err(Diagnostic::from)?
                .map(|view| desired.state(Some(&view))),
            Method::Direct => rm
                .direct_assignment(&desired.key, deadline)
                .await
                .map_err(Diagnostic::from)?
                .map(|_| desired.state(None)),
        };
        Ok(found)
    }

    async fn update(
        &self,
        clients: &AzureClients,
        _config: RoleAssignmentModel,
        prior: RoleAssignmentModel,
        mut planned: RoleAssignmentModel,
    ) -> Result<RoleAssignmentModel, Failure> {
        let desired = Desired::from_model(&planned)?;
        let deadline = shared::deadline(&TIMEOUTS, &planned.timeouts, Operation::Update)?;
        if desired.method == Method::Pim && planned.needs_admin_update_from(&prior) {
            return operations::update_pim(clients, &desired, &prior, deadline).await;
        }
        // Only the timeouts changed (or nothing Graph stores): no API call.
        planned.status = prior.status;
        planned.start_date_time = prior.start_date_time;
        Ok(planned)
    }

    async fn delete(
        &self,
        clients: &AzureClients,
        prior: RoleAssignmentModel,
    ) -> Result<(), Failure> {
        let desired = Desired::from_model(&prior)?;
        let deadline = shared::deadline(&TIMEOUTS, &prior.timeouts, Operation::Delete)?;
        match desired.method {
            Method::Pim => operations::delete_pim(clients, &desired.key, deadline).await,
            Method::Direct => operations::delete_direct(clients, &desired.key, deadline).await,
        }
        .map_err(Failure::from)
    }

    async fn import(
        &self,
        clients: &AzureClients,
        id: &str,
    ) -> Result<RoleAssignmentModel, Diagnostics> {
        let key = parse_import_id(id).map_err(|why| Diagnostic::error("Invalid import id", why))?;
        let deadline = Deadline::after(TIMEOUTS.read);
        let origin = RoleManagement::new(&clients.graph)
            .origin(&key, deadline)
            .await
            .map_err(Diagnostic::from)?;
        let (method, view) = match origin {
            Some(Origin::Pim(view)) => (Method::Pim, Some(*view)),
            Some(Origin::Direct) => (Method::Direct, None),
            None => {
                return Err(Diagnostic::error(
                    "Cannot import: no such role assignment",
                    format!(
                        "Microsoft Entra has no active assignment of {} (import id {id:?}).",
                        key.describe()
                    ),
                )
                .into())
            }
        };
        // Audit details come from PIM's request log when it still has them.
        let desired = Desired {
            key,
            method,
            details: RequestDetails::default(),
        };
        Ok(RoleAssignmentModel {
            // An imported assignment is protected, as a created one is by default.
            deletion_protection: Tf::Known(true),
            ..desired.state(view.as_ref())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::azure::role_management::{Expiration, PimSchedule, ScheduleRequest};
    use crate::framework::model::{conform, field_names};
    use crate::framework::{decode, typed, PlannedChange};
    use crate::protocol::testing;
    use crate::protocol::validate::declared_validators;

    const ALICE: &str = "5d2c6f0e-3b1a-4c8e-9f7d-0a1b2c3d4e01";

    fn config(pairs: &[(&str, Value)]) -> Value {
        let mut v = conform(Value::object([("id", Value::Null)]), &schema().value_type()).unwrap();
        for (k, val) in pairs {
            v.set(k, val.clone());
        }
        v
    }

    #[test]
    fn model_and_schema_have_the_same_fields() {
        assert_eq!(field_names::<RoleAssignmentModel>(), schema().field_names());
    }

    #[test]
    fn import_ids_round_trip_with_and_without_a_scope() {
        let tenant_wide = AssignmentKey {
            principal_id: ALICE.into(),
            role_definition_id: GLOBAL_ADMINISTRATOR.into(),
            directory_scope_id: "/".into(),
        };
        let id = import_id(&tenant_wide);
        assert_eq!(id, format!("{ALICE}/{GLOBAL_ADMINISTRATOR}"));
        assert_eq!(parse_import_id(&id).unwrap(), tenant_wide);
        assert_eq!(parse_import_id(&format!("{id}/")).unwrap(), tenant_wide);

        let unit = AssignmentKey {
            directory_scope_id: "/administrativeUnits/8a7b6c5d-0000-4e1f-9a2b-3c4d5e6f7a09".into(),
            ..tenant_wide
        };
        let id = import_id(&unit);
        assert!(id.ends_with("/administrativeUnits/8a7b6c5d-0000-4e1f-9a2b-3c4d5e6f7a09"));
        assert_eq!(parse_import_id(&id).unwrap(), unit);

        let err = parse_import_id("alice@contoso.com").unwrap_err();
        assert!(err.contains("<principal_id>/<role_definition_id>"), "{err}");
        assert!(parse_import_id(ALICE).is_err());
    }

    fn error_paths(cfg: &Value) -> Vec<String> {
        declared_validators(&schema(), cfg)
            .iter()
            .map(|d| d.path.as_ref().unwrap().to_string())
            .collect()
    }

    #[test]
    fn validation_points_at_the_attribute() {
        let bad = config(&[
            ("principal_id", Value::from("alice@contoso.com")),
            ("role_definition_id", Value::from("Global Administrator")),
            ("directory_scope_id", Value::from("tenant")),
            ("assignment_method", Value::from("eligible")),
        ]);
        assert_eq!(
            error_paths(&bad),
            [
                "principal_id",
                "role_definition_id",
                "directory_scope_id",
                "assignment_method"
            ]
        );
        let direct_with_ticket = config(&[
            ("principal_id", Value::from(ALICE)),
            ("assignment_method", Value::from("direct")),
            ("ticket_number", Value::from("CHG-1")),
        ]);
        assert_eq!(error_paths(&direct_with_ticket), ["ticket_number"]);
        // Unknown values (from other resources) are not judged yet.
        assert!(error_paths(&config(&[("principal_id", Value::Unknown)])).is_empty());
        let blank = config(&[
            ("principal_id", ALICE.into()),
            ("justification", " ".into()),
        ]);
        assert_eq!(error_paths(&blank), ["justification"]);
    }

    /// The framework's plan followed by the resource's, without a tenant.
    async fn plan(prior: &Value, cfg: &Value) -> PlannedChange {
        testing::plan(&*typed(RoleAssignmentResource), cfg, prior).await
    }

    #[tokio::test]
    async fn create_plan_fills_defaults_and_a_known_id() {
        let cfg = config(&[("principal_id", Value::from(ALICE))]);
        let plan = plan(&Value::Null, &cfg).await;
        let p = &plan.planned;
        assert_eq!(
            p.get("role_definition_id"),
            Value::from(GLOBAL_ADMINISTRATOR)
        );
        assert_eq!(p.get("directory_scope_id"), Value::from("/"));
        assert_eq!(p.get("assignment_method"), Value::from("pim"));
        assert_eq!(p.get("justification"), Value::from(DEFAULT_JUSTIFICATION));
        assert_eq!(
            p.get("id"),
            Value::from(format!("{ALICE}/{GLOBAL_ADMINISTRATOR}"))
        );
        assert_eq!(p.get("end_date_time"), Value::Null);
        assert_eq!(p.get("schedule_id"), Value::Unknown);
        assert!(plan.requires_replace.is_empty());
    }

    fn prior_pim_state(end: Value) -> Value {
        config(&[
            ("id", Value::from(format!("{ALICE}/{GLOBAL_ADMINISTRATOR}"))),
            ("principal_id", Value::from(ALICE)),
            ("role_definition_id", Value::from(GLOBAL_ADMINISTRATOR)),
            ("directory_scope_id", Value::from("/")),
            ("assignment_method", Value::from("pim")),
            ("justification", Value::from(DEFAULT_JUSTIFICATION)),
            ("schedule_id", Value::from("sched-1")),
            ("status", Value::from("Provisioned")),
            ("start_date_time", Value::from("2026-01-01T00:00:00Z")),
            ("assignment_type", Value::from("Assigned")),
            ("end_date_time", end),
            ("deletion_protection", Value::Bool(true)),
        ])
    }

    #[tokio::test]
    async fn an_end_set_outside_terraform_is_planned_away_in_place() {
        let cfg = config(&[("principal_id", Value::from(ALICE))]);
        let permanent = prior_pim_state(Value::Null);
        let plan_1 = plan(&permanent, &cfg).await;
        assert_eq!(
            plan_1.planned, permanent,
            "nothing to do for a permanent one"
        );

        let time_bound = prior_pim_state(Value::from("2026-02-01T00:00:00Z"));
        let plan_2 = plan(&time_bound, &cfg).await;
        assert!(plan_2.requires_replace.is_empty());
        assert_eq!(plan_2.planned.get("end_date_time"), Value::Null);
        assert_eq!(plan_2.planned.get("schedule_id"), Value::from("sched-1"));
        assert_eq!(plan_2.planned.get("status"), Value::Unknown);
        let (planned, prior): (RoleAssignmentModel, RoleAssignmentModel) = (
            decode(&plan_2.planned).unwrap(),
            decode(&time_bound).unwrap(),
        );
        assert!(planned.needs_admin_update_from(&prior));
    }

    #[tokio::test]
    async fn identity_changes_replace_and_audit_changes_update() {
        let prior = prior_pim_state(Value::Null);
        let other_role = config(&[
            ("principal_id", Value::from(ALICE)),
            (
                "role_definition_id",
                Value::from("e8611ab8-c189-46e8-94e1-60213ab1f814"),
            ),
        ]);
        let replaced = plan(&prior, &other_role).await;
        assert_eq!(
            replaced.requires_replace,
            [AttributePath::root("role_definition_id")]
        );

        // The same principal spelled in upper case is the same assignment.
        let shouting = config(&[("principal_id", Value::from(ALICE.to_uppercase()))]);
        assert!(plan(&prior, &shouting).await.requires_replace.is_empty());

        let ticket = config(&[
            ("principal_id", Value::from(ALICE)),
            ("ticket_number", Value::from("CHG-7")),
        ]);
        let updated = plan(&prior, &ticket).await;
        assert!(updated.requires_replace.is_empty());
        assert_eq!(updated.planned.get("id"), prior.get("id"));
        assert_eq!(updated.planned.get("status"), Value::Unknown);
    }

    #[test]
    fn state_shows_the_schedule_and_the_newest_request_details() {
        let desired = Desired::from_model(&decode(&prior_pim_state(Value::Null)).unwrap()).unwrap();
        let view = PimView {
            schedule: Some(PimSchedule {
                id: "sched-1".into(),
                status: Some("Provisioned".into()),
                assignment_type: Some("Assigned".into()),
                start_date_time: Some("2026-01-01T00:00:00Z".into()),
                expiration: Expiration::EndsAt("2026-03-01T00:00:00Z".into()),
                created_using: Some("sched-1".into()),
            }),
            request: Some(ScheduleRequest {
                id: "req-2".into(),
                action: "adminUpdate".into(),
                status: "Provisioned".into(),
                target_schedule_id: Some("sched-1".into()),
                created_date_time: None,
                permanent: true,
                details: RequestDetails {
                    justification: Some("Audit 2026".into()),
                    ticket_number: Some("CHG-9".into()),
                    ticket_system: None,
                },
            }),
        };
        let state = desired.state(Some(&view));
        assert_eq!(state.justification.as_deref(), Some("Audit 2026"));
        assert_eq!(state.ticket_number.as_deref(), Some("CHG-9"));
        assert_eq!(state.end_date_time.as_deref(), Some("2026-03-01T00:00:00Z"));
        assert_eq!(state.schedule_id.as_deref(), Some("sched-1"));

        let direct = Desired {
            method: Method::Direct,
            ..desired
        };
        let state = direct.state(None);
        for v in [
            &state.schedule_id,
            &state.status,
            &state.justification,
            &state.ticket_number,
        ] {
            assert!(v.is_null());
        }
        assert_eq!(state.assignment_method, Tf::Known(Method::Direct));
    }
}
