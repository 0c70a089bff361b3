//! `breakglass_action_group`: the Azure Monitor action group that mails and texts the people
//! who must know when a break-glass account is used (the resource description tells the
//! story). Order follows the trait: schema, validate, plan, create, read, update, delete,
//! import; `rules` holds the receiver checks.

mod rules;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::shared;
use crate::azure::action_groups::{
    self, is_receiver_rejected, is_short_name_too_long, ActionGroup, ActionGroupSpec, ActionGroups,
    EmailReceiver, SmsReceiver,
};
use crate::azure::arm::ResourceId;
use crate::azure::{AzureClients, Deadline};
use crate::framework::validators::{length_between, not_blank};
use crate::framework::{
    Attribute, AttributePath, Block, Diagnostic, Diagnostics, Failure, ModelPlan, ModelResource,
    Operation, Schema, Tf, TimeoutDefaults, Timeouts, Type, Value,
};

pub struct ActionGroupResource;

const TIMEOUTS: TimeoutDefaults = TimeoutDefaults {
    create: Duration::from_secs(5 * 60),
    read: Duration::from_secs(5 * 60),
    update: Duration::from_secs(5 * 60),
    delete: Duration::from_secs(5 * 60),
    includes: "retries and waiting for Azure Resource Manager's reads to see a write count \
               towards it",
};

/// Config, plan and state of a `breakglass_action_group`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ActionGroupModel {
    id: Tf<String>,
    resource_group_name: Tf<String>,
    name: Tf<String>,
    location: Tf<String>,
    short_name: Tf<String>,
    enabled: Tf<bool>,
    tags: Tf<BTreeMap<String, String>>,
    email_receivers: Tf<Vec<EmailReceiverModel>>,
    sms_receivers: Tf<Vec<SmsReceiverModel>>,
    unmanaged_receiver_kinds: Tf<BTreeSet<String>>,
    timeouts: Tf<Timeouts>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EmailReceiverModel {
    name: Tf<String>,
    email_address: Tf<String>,
    use_common_alert_schema: Tf<bool>,
    status: Tf<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SmsReceiverModel {
    name: Tf<String>,
    country_code: Tf<String>,
    phone_number: Tf<String>,
    status: Tf<String>,
}

fn receiver_name() -> Attribute {
    Attribute::required(
        "name",
        Type::String,
        "The receiver's name, unique across all receivers of the group (compared \
         case-insensitively).",
    )
    .validate(not_blank().summary("Invalid receiver name"))
}

fn receiver_status() -> Attribute {
    Attribute::computed(
        "status",
        Type::String,
        "`Enabled`, or `Disabled` when the address unsubscribed from the group (it then gets \
         no alerts; the plan warns).",
    )
}

fn group_schema() -> Schema {
    Schema {
        description: include_str!("description.md").trim_end().to_owned(),
        attributes: vec![
            Attribute::computed(
                "id",
                Type::String,
                "The action group's ARM id, for `breakglass_signin_alert.action_group_ids`. \
                 Also the import id.",
            )
            .use_state_for_unknown()
            .case_insensitive(),
            Attribute::required(
                "resource_group_name",
                Type::String,
                "The resource group the action group lives in (it must exist).",
            )
            .validate(not_blank().summary("Invalid resource group name"))
            .case_insensitive()
            .requires_replace(),
            Attribute::required(
                "name",
                Type::String,
                "The action group's name, unique in its resource group.",
            )
            .validate(not_blank().summary("Invalid action group name"))
            .case_insensitive()
            .requires_replace(),
            Attribute::optional(
                "location",
                Type::String,
                "`Global` (action groups are a global service), or one of the few regions \
                 that host regional action groups.",
            )
            .default("Global")
            .case_and_space_insensitive()
            .requires_replace(),
            Attribute::required(
                "short_name",
                Type::String,
                "Up to 12 characters; prefixes every SMS and e-mail subject (e.g. `bg-alert`).",
            )
            .validate(length_between(1, rules::MAX_SHORT_NAME).summary("Invalid short name")),
            Attribute::optional(
                "enabled",
                Type::Bool,
                "Whether the group notifies anyone. A disabled group sends nothing.",
            )
            .default(true),
            Attribute::optional("tags", Type::map(Type::String), "ARM tags of the group."),
            Attribute::computed(
                "unmanaged_receiver_kinds",
                Type::set(Type::String),
                "Receiver kinds other than e-mail and SMS found on the group in the tenant \
                 (e.g. `webhookReceivers`). Empty after an apply: the group is this \
                 resource's own, and an apply writes it whole.",
            ),
        ],
        blocks: vec![
            Block::list(
                "email_receivers",
                "An e-mail receiver. Repeat the block for each address.",
                vec![
                    receiver_name(),
                    Attribute::required(
                        "email_address",
                        Type::String,
                        "The address alerts are mailed to.",
                    )
                    .validate(rules::email_address()),
                    Attribute::optional(
                        "use_common_alert_schema",
                        Type::Bool,
                        "Send the common alert schema (one JSON shape for every alert type).",
                    )
                    .default(true),
                    receiver_status(),
                ],
            ),
            Block::list(
                "sms_receivers",
                "An SMS receiver. Repeat the block for each phone. Azure Monitor texts each \
                 number at most once every five minutes.",
                vec![
                    receiver_name(),
                    Attribute::required(
                        "country_code",
                        Type::String,
                        "The country calling code, digits only without `+` (e.g. `1`, `31`).",
                    )
                    .validate(rules::country_code()),
                    Attribute::required(
                        "phone_number",
                        Type::String,
                        "The national number, digits only, without the country code.",
                    )
                    .validate(rules::phone_number()),
                    receiver_status(),
                ],
            ),
            TIMEOUTS.block(),
        ],
        ..Schema::default()
    }
}

#[async_trait]
impl ModelResource<AzureClients> for ActionGroupResource {
    type Model = ActionGroupModel;

    fn type_name(&self) -> &'static str {
        "breakglass_action_group"
    }

    fn schema(&self) -> Schema {
        group_schema()
    }

    async fn validate(&self, config: &Value) -> Diagnostics {
        let mut found = Diagnostics::new();
        // Receiver names: unique across both lists, as the service compares them.
        let mut seen: Vec<(String, AttributePath)> = Vec::new();
        let mut any = false;
        for block in ["email_receivers", "sms_receivers"] {
            for (i, receiver) in config.get(block).elements().iter().enumerate() {
                any = true;
                let Some(name) = receiver.get("name").as_str().map(str::to_owned) else {
                    continue;
                };
                let at = AttributePath::root(block).index(i as i64).attr("name");
                if let Some((_, first)) = seen.iter().find(|(n, _)| n.eq_ignore_ascii_case(&name)) {
                    found.push(
                        Diagnostic::error(
                            "Duplicate receiver name",
                            format!(
                                "`{at}` is {name:?}, which `{first}` already uses; receiver \
                                 names must be unique across the group (compared \
                                 case-insensitively)."
                            ),
                        )
                        .at(at.clone()),
                    );
                }
                seen.push((name, at));
            }
        }
        let unknown = |b: &str| config.get(b).is_unknown();
        if !any && !unknown("email_receivers") && !unknown("sms_receivers") {
            found.push(Diagnostic::warning(
                "Action group without receivers",
                "This action group has no e-mail or SMS receiver, so an alert that names it \
                 notifies no one.",
            ));
        }
        found
    }

    async fn modify_plan(&self, plan: &mut ModelPlan<'_, ActionGroupModel, AzureClients>) {
        if let Some(prior) = &plan.prior {
            for d in unsubscribed(prior) {
                plan.diagnostics.push(d);
            }
            // Drift the refresh found: receivers this resource does not manage. The apply
            // writes the group whole, which removes them.
            if prior
                .unmanaged_receiver_kinds
                .get()
                .is_some_and(|k| !k.is_empty())
            {
                plan.planned.unmanaged_receiver_kinds = Tf::Known(BTreeSet::new());
            }
        } else {
            plan.planned.unmanaged_receiver_kinds = Tf::Known(BTreeSet::new());
        }
        if let Some(clients) = plan.data {
            if let Err(d) = shared::subscription(clients, None) {
                plan.diagnostics.push(d);
            }
        }
    }

    async fn create(
        &self,
        clients: &AzureClients,
        _config: ActionGroupModel,
        planned: ActionGroupModel,
    ) -> Result<ActionGroupModel, Failure> {
        let deadline = shared::deadline(&TIMEOUTS, &planned.timeouts, Operation::Create)?;
        let id = group_id(clients, &planned)?;
        put(clients, &id, &planned, &deadline).await
    }

    async fn read(
        &self,
        clients: &AzureClients,
        state: ActionGroupModel,
    ) -> Result<Option<ActionGroupModel>, Diagnostics> {
        let deadline = shared::deadline(&TIMEOUTS, &state.timeouts, Operation::Read)?;
        let id = state_id(&state)?;
        let found = ActionGroups::new(&clients.cached.arm)
            .get(&id, &deadline)
            .await
            .map_err(Diagnostic::from)?;
        Ok(found.map(|g| observed(&g, &state)))
    }

    async fn update(
        &self,
        clients: &AzureClients,
        _config: ActionGroupModel,
        prior: ActionGroupModel,
        planned: ActionGroupModel,
    ) -> Result<ActionGroupModel, Failure> {
        let deadline = shared::deadline(&TIMEOUTS, &planned.timeouts, Operation::Update)?;
        let id = state_id(&prior)?;
        // Compare what would be sent, not the computed attributes (unknown in the plan).
        let mut enabled_as_before = planned.clone();
        enabled_as_before.enabled = prior.enabled.clone();
        let drifted = prior
            .unmanaged_receiver_kinds
            .get()
            .is_some_and(|k| !k.is_empty());
        let only_enabled = !drifted && spec(&id, &enabled_as_before)? == spec(&id, &prior)?;
        if only_enabled {
            // ActionGroupPatchBody: `enabled` (and tags) without sending the receivers again.
            let enabled = planned.enabled.get() != Some(&false);
            let groups = ActionGroups::new(&clients.arm);
            return match groups.set_enabled(&id, enabled, &deadline).await {
                Ok(group) => Ok(observed(&group, &planned)),
                Err(e) => Err(Diagnostic::from(e).into()),
            };
        }
        put(clients, &id, &planned, &deadline).await
    }

    async fn delete(&self, clients: &AzureClients, prior: ActionGroupModel) -> Result<(), Failure> {
        let deadline = shared::deadline(&TIMEOUTS, &prior.timeouts, Operation::Delete)?;
        let id = state_id(&prior)?;
        ActionGroups::new(&clients.arm)
            .delete(&id, &deadline)
            .await
            .map(|_| ())
            .map_err(|e| Diagnostic::from(e).into())
    }

    async fn import(
        &self,
        clients: &AzureClients,
        id: &str,
    ) -> Result<ActionGroupModel, Diagnostics> {
        let parsed = action_groups::parse_id(id.trim())
            .map_err(|why| Diagnostic::error("Invalid import id", format!("{why}.")))?;
        let deadline = Deadline::after(TIMEOUTS.read);
        let group = ActionGroups::new(&clients.arm)
            .get(&parsed, &deadline)
            .await
            .map_err(Diagnostic::from)?
            .ok_or_else(|| {
                Diagnostic::error(
                    "No such action group",
                    format!("Azure Resource Manager has no action group {id}."),
                )
            })?;
        Ok(observed(&group, &ActionGroupModel::default()))
    }
}

// ---- helpers ------------------------------------------------------------------------------

/// The group's id from its name and resource group in the provider's subscription.
fn group_id(clients: &AzureClients, planned: &ActionGroupModel) -> Result<ResourceId, Diagnostic> {
    let subscription = shared::subscription(clients, None)?;
    Ok(action_groups::id_of(
        &subscription,
        &planned
            .resource_group_name
            .required("resource_group_name")?,
        &planned.name.required("name")?,
    ))
}

/// The id of a stored group.
fn state_id(state: &ActionGroupModel) -> Result<ResourceId, Diagnostic> {
    let id = state.id.required("id")?;
    action_groups::parse_id(&id).map_err(|why| {
        Diagnostic::error(
            "Invalid id in state",
            format!("{why}. Remove the resource from state and import it again."),
        )
        .at(AttributePath::root("id"))
    })
}

/// State for `group` as ARM reports it. Names come from the reported id; the protocol layer
/// keeps the configured spelling where only the case differs.
fn observed(group: &ActionGroup, base: &ActionGroupModel) -> ActionGroupModel {
    let parsed = action_groups::parse_id(&group.id).ok();
    let part = |f: fn(&ResourceId) -> &String, fallback: &Tf<String>| match &parsed {
        Some(p) => Tf::Known(f(p).clone()),
        None => fallback.clone(),
    };
    ActionGroupModel {
        id: Tf::Known(group.id.clone()),
        resource_group_name: part(|p| &p.resource_group, &base.resource_group_name),
        name: part(|p| &p.name, &base.name),
        location: Tf::Known(group.location.clone()),
        short_name: Tf::Known(group.short_name.clone()),
        enabled: Tf::Known(group.enabled),
        tags: match (&base.tags, group.tags.is_empty()) {
            // No tags configured and none in the tenant: keep null rather than `{}`.
            (Tf::Null, true) => Tf::Null,
            _ => Tf::Known(group.tags.clone()),
        },
        email_receivers: receivers(&group.email_receivers, |r| EmailReceiverModel {
            name: Tf::Known(r.name.clone()),
            email_address: Tf::Known(r.email_address.clone()),
            use_common_alert_schema: Tf::Known(r.use_common_alert_schema),
            status: r.status.clone().into(),
        }),
        sms_receivers: receivers(&group.sms_receivers, |r| SmsReceiverModel {
            name: Tf::Known(r.name.clone()),
            country_code: Tf::Known(r.country_code.clone()),
            phone_number: Tf::Known(r.phone_number.clone()),
            status: r.status.clone().into(),
        }),
        unmanaged_receiver_kinds: Tf::Known(group.other_receiver_kinds.iter().cloned().collect()),
        timeouts: base.timeouts.clone(),
    }
}

/// A receiver list as state holds it (absent blocks are an empty list in Terraform).
fn receivers<R, M>(remote: &[R], to_model: impl Fn(&R) -> M) -> Tf<Vec<M>> {
    Tf::Known(remote.iter().map(to_model).collect())
}

/// The PUT body from the plan.
fn spec(id: &ResourceId, planned: &ActionGroupModel) -> Result<ActionGroupSpec, Diagnostic> {
    let text = |v: &Tf<String>| v.get().cloned().unwrap_or_default();
    Ok(ActionGroupSpec {
        id: id.clone(),
        short_name: planned.short_name.required("short_name")?,
        enabled: planned.enabled.get() != Some(&false),
        email_receivers: planned
            .email_receivers
            .get()
            .into_iter()
            .flatten()
            .map(|r| EmailReceiver {
                name: text(&r.name),
                email_address: text(&r.email_address),
                use_common_alert_schema: r.use_common_alert_schema.get() != Some(&false),
                status: None,
            })
            .collect(),
        sms_receivers: planned
            .sms_receivers
            .get()
            .into_iter()
            .flatten()
            .map(|r| SmsReceiver {
                name: text(&r.name),
                country_code: text(&r.country_code),
                phone_number: text(&r.phone_number),
                status: None,
            })
            .collect(),
        tags: planned.tags.get().cloned().unwrap_or_default(),
    })
}

async fn put(
    clients: &AzureClients,
    id: &ResourceId,
    planned: &ActionGroupModel,
    deadline: &Deadline,
) -> Result<ActionGroupModel, Failure> {
    let spec = spec(id, planned)?;
    let groups = ActionGroups::new(&clients.arm);
    let written = match groups.put(&spec, deadline).await {
        Ok(group) => group,
        Err(e) if is_short_name_too_long(&e) || is_receiver_rejected(&e) => {
            let summary = match is_short_name_too_long(&e) {
                true => "Short name refused",
                false => "Receiver refused",
            };
            let detail = format!("The action group service refused the group: {e}");
            return Err(Diagnostic::error(summary, detail).into());
        }
        Err(e) => return Err(Diagnostic::from(e).into()),
    };
    match groups.wait_readable(id, deadline).await {
        Ok(group) => Ok(observed(&group, planned)),
        // The group exists as the PUT answered it; state records that.
        Err(e) => Err(Failure::new(Diagnostic::error(
            "Action group written but not yet readable",
            format!(
                "Azure Resource Manager accepted action group {} but did not return it in time: \
                 {e}. It is recorded in state; the next plan refreshes it.",
                id.name
            ),
        ))
        .with_model(&observed(&written, planned))),
    }
}

/// A warning per receiver that unsubscribed (its status is not `Enabled`).
fn unsubscribed(state: &ActionGroupModel) -> Vec<Diagnostic> {
    let mut found = Vec::new();
    let check = |block: &str,
                 i: usize,
                 name: &Tf<String>,
                 status: &Tf<String>,
                 found: &mut Vec<Diagnostic>| {
        if let Some(s) = status.get().filter(|s| !s.eq_ignore_ascii_case("Enabled")) {
            found.push(
                Diagnostic::warning(
                    "Receiver does not get alerts",
                    format!(
                        "Receiver {:?} has status {s:?}: it unsubscribed from this action group \
                         and receives no break-glass alerts until it subscribes again (the \
                         Azure portal's action group page, or the link in an earlier alert).",
                        name.get().cloned().unwrap_or_default()
                    ),
                )
                .at(AttributePath::root(block).index(i as i64).attr("status")),
            );
        }
    };
    for (i, r) in state
        .email_receivers
        .get()
        .into_iter()
        .flatten()
        .enumerate()
    {
        check("email_receivers", i, &r.name, &r.status, &mut found);
    }
    for (i, r) in state.sms_receivers.get().into_iter().flatten().enumerate() {
        check("sms_receivers", i, &r.name, &r.status, &mut found);
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framework::model::field_names;
    use crate::framework::{typed, Severity};
    use crate::protocol::testing;
    use crate::protocol::validate::declared_validators;

    fn config(attrs: &[(&str, Value)]) -> Value {
        testing::config(&group_schema(), attrs)
    }

    fn email(name: &str, address: &str) -> Value {
        Value::object([
            ("name", name.into()),
            ("email_address", address.into()),
            ("use_common_alert_schema", Value::Null),
            ("status", Value::Null),
        ])
    }

    fn sms(name: &str, country: &str, phone: &str) -> Value {
        Value::object([
            ("name", name.into()),
            ("country_code", country.into()),
            ("phone_number", phone.into()),
            ("status", Value::Null),
        ])
    }

    fn group(emails: Vec<Value>, phones: Vec<Value>) -> Value {
        config(&[
            ("resource_group_name", "rg".into()),
            ("name", "ag".into()),
            ("short_name", "bg-alert".into()),
            ("email_receivers", Value::List(emails)),
            ("sms_receivers", Value::List(phones)),
        ])
    }

    #[test]
    fn model_and_schema_have_the_same_fields() {
        let schema = group_schema();
        assert_eq!(field_names::<ActionGroupModel>(), schema.field_names());
        let names = |block: &str| {
            let mut n: Vec<String> = schema
                .block(block)
                .unwrap()
                .attributes
                .iter()
                .map(|a| a.name.clone())
                .collect();
            n.sort();
            n
        };
        assert_eq!(
            field_names::<EmailReceiverModel>(),
            names("email_receivers")
        );
        assert_eq!(field_names::<SmsReceiverModel>(), names("sms_receivers"));
    }

    #[tokio::test]
    async fn bad_receivers_are_diagnostics_on_their_attributes() {
        let cfg = group(
            vec![
                email("soc", "soc@contoso.com"),
                email("SOC", "not-an-address"),
            ],
            vec![sms("oncall", "+1", "555-CALL-NOW")],
        );
        let mut diags = declared_validators(&group_schema(), &cfg);
        diags.extend(ActionGroupResource.validate(&cfg).await);
        let errors: Vec<String> = diags
            .iter()
            .filter(|d| d.severity == Severity::Error)
            .map(|d| d.path.as_ref().unwrap().to_string())
            .collect();
        assert_eq!(
            errors,
            [
                "email_receivers[1].email_address",
                "sms_receivers[0].country_code",
                "sms_receivers[0].phone_number",
                "email_receivers[1].name",
            ]
        );
        let mut long = group(vec![email("soc", "soc@contoso.com")], vec![]);
        long.set("short_name", "thirteen-char".into());
        let diags = declared_validators(&group_schema(), &long);
        assert_eq!(diags.0.len(), 1);
        assert!(
            diags.0[0].detail.contains("1 to 12 characters"),
            "{}",
            diags.0[0].detail
        );
    }

    #[tokio::test]
    async fn no_receivers_is_a_warning() {
        let cfg = group(vec![], vec![]);
        let diags = ActionGroupResource.validate(&cfg).await;
        assert_eq!(diags.0.len(), 1);
        assert_eq!(diags.0[0].severity, Severity::Warning);
    }

    #[tokio::test]
    async fn create_plans_defaults() {
        let cfg = group(vec![email("soc", "soc@contoso.com")], vec![]);
        let change = testing::plan(&*typed(ActionGroupResource), &cfg, &Value::Null).await;
        let planned = change.planned;
        assert_eq!(planned.get("location"), Value::from("Global"));
        assert_eq!(planned.get("enabled"), Value::Bool(true));
        let receivers = planned.get("email_receivers");
        let receiver = &receivers.elements()[0];
        assert_eq!(receiver.get("use_common_alert_schema"), Value::Bool(true));
        assert_eq!(receiver.get("status"), Value::Unknown);
        assert_eq!(planned.get("unmanaged_receiver_kinds"), Value::Set(vec![]));
    }

    #[test]
    fn unsubscribed_receivers_are_warned_about() {
        let state = ActionGroupModel {
            email_receivers: Tf::Known(vec![EmailReceiverModel {
                name: Tf::Known("soc".into()),
                status: Tf::Known("Disabled".into()),
                ..EmailReceiverModel::default()
            }]),
            ..ActionGroupModel::default()
        };
        let found = unsubscribed(&state);
        assert_eq!(found.len(), 1);
        assert_eq!(
            found[0].path.as_ref().unwrap().to_string(),
            "email_receivers[0].status"
        );
    }
}
