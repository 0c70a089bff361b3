//! `breakglass_signin_alert`: the log search alert rule that fires on every sign-in of the
//! emergency-access accounts, and its tamper companion (the resource description tells the
//! story). Order follows the trait: schema, validate, plan, create, read, update, delete,
//! import. `query` writes the KQL (pure), `rules` holds the schedule validators, `operations`
//! the Graph lookups, the writes and the drift comparison.

mod operations;
pub mod query;
mod rules;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::shared;
use crate::azure::action_groups;
use crate::azure::alert_rules::{ScheduledQueryRule, ScheduledQueryRules};
use crate::azure::log_analytics::parse_workspace_id;
use crate::azure::{AzureClients, Deadline};
use crate::framework::validators::{cross_rule, each, guid, int_between, not_blank, size_between};
use crate::framework::{
    Attribute, AttributePath, Block, Diagnostic, Diagnostics, Failure, ModelPlan, ModelResource,
    Operation, Schema, Tf, TimeoutDefaults, Timeouts, Type, Value,
};
use operations::{
    accounts_of, drift_of, imported_accounts, look_up_upns, missing_tables, must_skip, put_rule,
    rule_id, tamper_name, unknown_accounts, RuleSettings, AUDIT_TABLE, SIGNIN_TABLES,
};
use rules::{same_duration, DEFAULT_DURATION, FREQUENCIES, WINDOW_SIZES};

pub struct SigninAlertResource;

const TIMEOUTS: TimeoutDefaults = TimeoutDefaults {
    create: Duration::from_secs(10 * 60),
    read: Duration::from_secs(5 * 60),
    update: Duration::from_secs(10 * 60),
    delete: Duration::from_secs(5 * 60),
    includes: "looking the accounts up in Microsoft Graph, retries and waiting for Azure \
               Resource Manager's reads to see a write count towards it",
};
/// Plan-time lookups should not hold a plan up for long.
const PLAN_CHECK_TIMEOUT: Duration = Duration::from_secs(60);
/// The tamper rule's severity unless configured: below the sign-in itself (0), above the rest.
const DEFAULT_TAMPER_SEVERITY: i64 = 1;

/// Config, plan and state of a `breakglass_signin_alert`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AlertModel {
    id: Tf<String>,
    resource_group_name: Tf<String>,
    name: Tf<String>,
    location: Tf<String>,
    accounts: Tf<BTreeSet<String>>,
    workspace_id: Tf<String>,
    action_group_ids: Tf<BTreeSet<String>>,
    severity: Tf<i64>,
    evaluation_frequency: Tf<String>,
    window_size: Tf<String>,
    enabled: Tf<bool>,
    auto_mitigate: Tf<bool>,
    include_non_interactive: Tf<bool>,
    tags: Tf<BTreeMap<String, String>>,
    query: Tf<String>,
    user_principal_names: Tf<BTreeMap<String, String>>,
    query_validation_skipped: Tf<bool>,
    tamper_alert_id: Tf<String>,
    tamper_query: Tf<String>,
    rule_drift: Tf<Vec<String>>,
    tamper_alert: Tf<TamperModel>,
    timeouts: Tf<Timeouts>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TamperModel {
    enabled: Tf<bool>,
    severity: Tf<i64>,
}

fn alert_schema() -> Schema {
    let ids = Type::set(Type::String);
    Schema {
        description: include_str!("description.md").trim_end().to_owned(),
        attributes: vec![
            Attribute::computed(
                "id",
                Type::String,
                "The sign-in rule's ARM id. Also the import id.",
            )
            .use_state_for_unknown()
            .case_insensitive(),
            Attribute::required(
                "resource_group_name",
                Type::String,
                "The resource group both rules live in (it must exist).",
            )
            .validate(not_blank().summary("Invalid resource group name"))
            .case_insensitive()
            .requires_replace(),
            Attribute::required(
                "name",
                Type::String,
                "The sign-in rule's name; the tamper rule is `<name>-tamper`.",
            )
            .validate(not_blank().summary("Invalid alert rule name"))
            .case_insensitive()
            .requires_replace(),
            Attribute::required(
                "location",
                Type::String,
                "The rules' Azure region, usually the workspace's (e.g. `westeurope`).",
            )
            .validate(not_blank().summary("Invalid location"))
            .case_and_space_insensitive()
            .requires_replace(),
            Attribute::required(
                "accounts",
                ids.clone(),
                "Object ids of the emergency-access accounts to watch, usually \
                 `breakglass_account.<name>.object_id`; their user principal names are looked \
                 up in Microsoft Graph.",
            )
            .validate(size_between(1, query::MAX_ACCOUNTS).summary("Invalid number of accounts"))
            .validate(each(guid()))
            .case_insensitive(),
            Attribute::required(
                "workspace_id",
                Type::String,
                "Resource id of the Log Analytics workspace Entra's logs are exported to \
                 (`breakglass_entra_diagnostic_setting.workspace_id`).",
            )
            .validate(shared::arm_id_rule(
                "a Log Analytics workspace",
                parse_workspace_id,
            ))
            .case_insensitive(),
            Attribute::required(
                "action_group_ids",
                ids,
                "ARM ids of the action groups to notify (`breakglass_action_group.<name>.id`).",
            )
            .validate(cross_rule(
                "must name at least one action group",
                "No action group",
                |v, _| match v {
                    Value::Set(items) if items.is_empty() => Err(
                        "is empty: an alert that names no action group notifies no one".to_owned(),
                    ),
                    _ => Ok(()),
                },
            ))
            .validate(each(shared::arm_id_rule(
                "an action group",
                action_groups::parse_id,
            )))
            .case_insensitive(),
            Attribute::optional(
                "severity",
                Type::Number,
                "Severity of the sign-in alert, 0 (critical) to 4 (verbose).",
            )
            .default(Value::from(0i64))
            .validate(int_between(0, 4).summary("Invalid severity")),
            Attribute::optional(
                "evaluation_frequency",
                Type::String,
                "How often the rules run, an ISO 8601 duration the service accepts (`PT1M`, \
                 `PT5M`, `PT10M`, `PT15M`, `PT30M`, `PT45M`, `PT1H`, … `P1D`).",
            )
            .default(DEFAULT_DURATION)
            .validate(rules::duration("an evaluation frequency", FREQUENCIES)),
            Attribute::optional(
                "window_size",
                Type::String,
                "How far back each run looks, an ISO 8601 duration the service accepts (`PT5M` \
                 … `P2D`); at least `evaluation_frequency`.",
            )
            .default(DEFAULT_DURATION)
            .validate(rules::duration("a window size", WINDOW_SIZES))
            .validate(rules::window_covers_frequency()),
            Attribute::optional("enabled", Type::Bool, "Whether both rules run.").default(true),
            Attribute::optional(
                "auto_mitigate",
                Type::Bool,
                "Resolve alerts automatically (stateful alerts, which fire once until \
                 resolved). Defaults to `false`: every evaluation that sees a sign-in fires.",
            )
            .default(false),
            Attribute::optional(
                "include_non_interactive",
                Type::Bool,
                "Also watch non-interactive sign-ins (`AADNonInteractiveUserSignInLogs`: \
                 token refreshes and sign-ins a client makes on the user's behalf).",
            )
            .default(true),
            Attribute::optional("tags", Type::map(Type::String), "ARM tags of both rules."),
            Attribute::computed(
                "query",
                Type::String,
                "The sign-in rule's KQL, as stored in the tenant. Written by the provider \
                 from `accounts` and `include_non_interactive`.",
            ),
            Attribute::computed(
                "user_principal_names",
                Type::map(Type::String),
                "The accounts' user principal names as Microsoft Graph reports them, by \
                 (lower-case) object id. An account Graph does not know is missing here and \
                 matched by object id only.",
            ),
            Attribute::computed(
                "query_validation_skipped",
                Type::Bool,
                "Whether a rule was written with `skipQueryValidation` because the workspace \
                 did not have a table its query reads yet (a brand-new workspace).",
            ),
            Attribute::computed(
                "tamper_alert_id",
                Type::String,
                "The tamper rule's ARM id; null when `tamper_alert.enabled` is false.",
            ),
            Attribute::computed(
                "tamper_query",
                Type::String,
                "The tamper rule's KQL, as stored in the tenant.",
            ),
            Attribute::computed(
                "rule_drift",
                Type::list(Type::String),
                "What the last refresh found changed in the tenant beyond the attributes \
                 above: the rules' thresholds, operators and dimensions, the tamper rule's \
                 settings, a tamper rule that was deleted. Empty after an apply; when not, \
                 the plan proposes the update that restores both rules.",
            ),
        ],
        blocks: vec![
            Block::single(
                "tamper_alert",
                "The tamper rule (on even without this block): alerts on changes to the \
                 accounts and to conditional-access policies.",
                vec![
                    Attribute::optional("enabled", Type::Bool, "Whether the tamper rule exists.")
                        .default(true),
                    Attribute::optional(
                        "severity",
                        Type::Number,
                        "Severity of the tamper alert, 0 to 4.",
                    )
                    .default(Value::from(DEFAULT_TAMPER_SEVERITY))
                    .validate(int_between(0, 4).summary("Invalid severity")),
                ],
            ),
            TIMEOUTS.block(),
        ],
        ..Schema::default()
    }
}

impl AlertModel {
    /// `Some(severity)` when the tamper rule is on (the default, also without the block).
    fn tamper(&self) -> Option<u8> {
        match self.tamper_alert.get() {
            Some(t) if t.enabled.get() == Some(&false) => None,
            Some(t) => Some(t.severity.get().copied().unwrap_or(DEFAULT_TAMPER_SEVERITY) as u8),
            None => Some(DEFAULT_TAMPER_SEVERITY as u8),
        }
    }

    fn accounts(&self) -> BTreeSet<String> {
        self.accounts.get().cloned().unwrap_or_default()
    }

    fn include_non_interactive(&self) -> bool {
        self.include_non_interactive.get() != Some(&false)
    }

    /// The signin and tamper queries for the accounts with these UPNs.
    fn queries(&self, upns: &BTreeMap<String, String>) -> (String, Option<String>) {
        let accounts = accounts_of(&self.accounts(), upns);
        (
            query::signin_query(&accounts, self.include_non_interactive()),
            self.tamper().map(|_| query::tamper_query(&accounts)),
        )
    }

    /// What both rules are written from. `subscription` comes from the provider or the
    /// workspace.
    fn settings(&self, clients: &AzureClients) -> Result<RuleSettings, Diagnostic> {
        let workspace_id = self.workspace_id.required("workspace_id")?;
        let workspace_subscription = parse_workspace_id(&workspace_id)
            .ok()
            .map(|w| w.subscription);
        Ok(RuleSettings {
            subscription: shared::subscription(clients, workspace_subscription.as_deref())?,
            resource_group: self.resource_group_name.required("resource_group_name")?,
            name: self.name.required("name")?,
            location: self.location.required("location")?,
            workspace_id,
            action_group_ids: self
                .action_group_ids
                .required("action_group_ids")?
                .into_iter()
                .collect(),
            severity: self.severity.get().copied().unwrap_or(0) as u8,
            evaluation_frequency: self
                .evaluation_frequency
                .get()
                .cloned()
                .unwrap_or_else(|| DEFAULT_DURATION.into()),
            window_size: self
                .window_size
                .get()
                .cloned()
                .unwrap_or_else(|| DEFAULT_DURATION.into()),
            enabled: self.enabled.get() != Some(&false),
            auto_mitigate: self.auto_mitigate.get() == Some(&true),
            tags: self.tags.get().cloned().unwrap_or_default(),
            tamper: self.tamper(),
        })
    }
}

#[async_trait]
impl ModelResource<AzureClients> for SigninAlertResource {
    type Model = AlertModel;

    fn type_name(&self) -> &'static str {
        "breakglass_signin_alert"
    }

    fn schema(&self) -> Schema {
        alert_schema()
    }

    async fn validate(&self, config: &Value) -> Diagnostics {
        let mut found = Diagnostics::new();
        // Stateless alerts over overlapping windows fire again for the same sign-in.
        let minutes = |name: &str, default: &str| match config.get(name) {
            Value::Null => shared::iso_duration_minutes(default).ok(),
            v => v
                .as_str()
                .and_then(|t| shared::iso_duration_minutes(t).ok()),
        };
        let (window, frequency) = (
            minutes("window_size", DEFAULT_DURATION),
            minutes("evaluation_frequency", DEFAULT_DURATION),
        );
        if let (Some(w), Some(f)) = (window, frequency) {
            if w > f && config.get("auto_mitigate").as_bool() != Some(true) {
                found.push(
                    Diagnostic::warning(
                        "Every sign-in alerts more than once",
                        format!(
                            "`window_size` ({w} minutes) is longer than `evaluation_frequency` \
                             ({f} minutes) and alerts are stateless (`auto_mitigate = false`), \
                             so each sign-in is seen by {} evaluations and alerts that often. \
                             Make them equal to alert once per sign-in.",
                            w.div_ceil(f)
                        ),
                    )
                    .at(AttributePath::root("window_size")),
                );
            }
        }
        found
    }

    async fn modify_plan(&self, plan: &mut ModelPlan<'_, AlertModel, AzureClients>) {
        let prior = plan.prior.clone();
        let planned = &mut plan.planned;
        let tamper_on = planned.tamper().is_some();
        planned.rule_drift = Tf::Known(Vec::new());
        if !tamper_on {
            planned.tamper_alert_id = Tf::Null;
            planned.tamper_query = Tf::Null;
        } else if let Some(p) = prior.as_ref().filter(|p| p.tamper_alert_id.is_set()) {
            // The tamper rule keeps its id while name and resource group stay.
            planned.tamper_alert_id = p.tamper_alert_id.clone();
        } else {
            planned.tamper_alert_id = Tf::Unknown;
        }

        // The queries follow from the accounts and their UPNs, so a plan shows them.
        if let Some(ids) = planned.accounts.get().cloned() {
            let reuse = prior.as_ref().and_then(|p| {
                let same = p.accounts.get().is_some_and(|a| lower(a) == lower(&ids));
                same.then(|| p.user_principal_names.get().cloned())
                    .flatten()
            });
            let upns = match (reuse, plan.data) {
                (Some(upns), _) => Some(upns),
                (None, Some(clients)) => {
                    let deadline = Deadline::after(PLAN_CHECK_TIMEOUT);
                    match look_up_upns(clients, &ids, false, &deadline).await {
                        Ok(upns) => {
                            plan.diagnostics.extend(unknown_accounts(&ids, &upns));
                            Some(upns)
                        }
                        Err(e) => {
                            let mut d = Diagnostic::from(e);
                            d.summary = "Cannot look the accounts up".into();
                            plan.diagnostics.push(d.at(AttributePath::root("accounts")));
                            None
                        }
                    }
                }
                (None, None) => None,
            };
            if let Some(upns) = upns {
                let (signin, tamper) = planned.queries(&upns);
                planned.query = Tf::Known(signin);
                planned.tamper_query = tamper.map_or(Tf::Null, Tf::Known);
                planned.user_principal_names = Tf::Known(upns);
            }
        }

        // Anything to write? Then whether validation is skipped is decided at apply.
        match &prior {
            Some(p) if p == planned => {}
            Some(_) | None => planned.query_validation_skipped = Tf::Unknown,
        }

        // A workspace without the tables yet: the rules will be written without validation.
        let workspace_changes =
            prior.as_ref().map(|p| &p.workspace_id) != Some(&planned.workspace_id);
        if let (true, Some(clients), Some(workspace)) = (
            workspace_changes,
            plan.data,
            planned.workspace_id.get().cloned(),
        ) {
            let deadline = Deadline::after(PLAN_CHECK_TIMEOUT);
            let include = planned.include_non_interactive();
            if let Ok(missing) = missing_tables(
                clients,
                &workspace,
                &[SIGNIN_TABLES[0], SIGNIN_TABLES[1], AUDIT_TABLE],
                &deadline,
            )
            .await
            {
                let read: Vec<&str> = match include {
                    true => SIGNIN_TABLES.to_vec(),
                    false => vec![SIGNIN_TABLES[0]],
                };
                let mut absent: Vec<String> = missing
                    .iter()
                    .filter(|m| read.contains(&m.as_str()))
                    .cloned()
                    .collect();
                if tamper_on && missing.iter().any(|m| m == AUDIT_TABLE) {
                    absent.push(AUDIT_TABLE.to_owned());
                }
                if !absent.is_empty() {
                    plan.diagnostics.push(no_tables_yet(&absent));
                }
            }
        }
    }

    async fn create(
        &self,
        clients: &AzureClients,
        _config: AlertModel,
        planned: AlertModel,
    ) -> Result<AlertModel, Failure> {
        let deadline = shared::deadline(&TIMEOUTS, &planned.timeouts, Operation::Create)?;
        write(clients, &planned, None, &deadline).await
    }

    async fn read(
        &self,
        clients: &AzureClients,
        state: AlertModel,
    ) -> Result<Option<AlertModel>, Diagnostics> {
        let deadline = shared::deadline(&TIMEOUTS, &state.timeouts, Operation::Read)?;
        let id = rule_id(&state.id.required("id")?)?;
        let rules = ScheduledQueryRules::new(&clients.cached.arm);
        let Some(rule) = rules.get(&id, &deadline).await.map_err(Diagnostic::from)? else {
            return Ok(None);
        };
        let tamper_id = operations_tamper_id(&id);
        let tamper = match state.tamper().is_some() || state.tamper_alert_id.is_set() {
            true => rules
                .get(&tamper_id, &deadline)
                .await
                .map_err(Diagnostic::from)?,
            false => None,
        };
        let upns = look_up_upns(clients, &state.accounts(), false, &deadline)
            .await
            .map_err(Diagnostic::from)?;
        Ok(Some(observed(
            clients,
            &state,
            &rule,
            tamper.as_ref(),
            upns,
        )?))
    }

    async fn update(
        &self,
        clients: &AzureClients,
        _config: AlertModel,
        prior: AlertModel,
        planned: AlertModel,
    ) -> Result<AlertModel, Failure> {
        let deadline = shared::deadline(&TIMEOUTS, &planned.timeouts, Operation::Update)?;
        write(clients, &planned, Some(&prior), &deadline).await
    }

    async fn delete(&self, clients: &AzureClients, prior: AlertModel) -> Result<(), Failure> {
        let deadline = shared::deadline(&TIMEOUTS, &prior.timeouts, Operation::Delete)?;
        let rules = ScheduledQueryRules::new(&clients.arm);
        let id = rule_id(&prior.id.required("id")?)?;
        if let Some(tamper) = prior.tamper_alert_id.get() {
            rules
                .delete(&rule_id(tamper)?, &deadline)
                .await
                .map_err(Diagnostic::from)?;
        }
        rules
            .delete(&id, &deadline)
            .await
            .map_err(|e| {
                // The tamper rule is gone already: state keeps only the sign-in rule.
                let left = AlertModel {
                    tamper_alert_id: Tf::Null,
                    tamper_query: Tf::Null,
                    ..prior.clone()
                };
                Failure::new(Diagnostic::from(e)).with_model(&left)
            })
            .map(|_| ())
    }

    async fn import(&self, clients: &AzureClients, id: &str) -> Result<AlertModel, Diagnostics> {
        let parsed = rule_id(id.trim()).map_err(|mut d| {
            d.summary = "Invalid import id".into();
            d
        })?;
        let deadline = Deadline::after(TIMEOUTS.read);
        let rules = ScheduledQueryRules::new(&clients.arm);
        let rule = rules
            .get(&parsed, &deadline)
            .await
            .map_err(Diagnostic::from)?
            .ok_or_else(|| {
                Diagnostic::error(
                    "No such alert rule",
                    format!("Azure Resource Manager has no scheduled query rule {id}."),
                )
            })?;
        let accounts = imported_accounts(clients, &rule, &deadline).await?;
        let include_non_interactive = rule
            .conditions
            .first()
            .is_some_and(|c| c.query.contains(SIGNIN_TABLES[1]));
        let tamper = rules
            .get(&operations_tamper_id(&parsed), &deadline)
            .await
            .map_err(Diagnostic::from)?;
        let skeleton = AlertModel {
            id: Tf::Known(rule.id.clone()),
            accounts: Tf::Known(accounts),
            include_non_interactive: Tf::Known(include_non_interactive),
            ..AlertModel::default()
        };
        let upns = look_up_upns(clients, &skeleton.accounts(), false, &deadline)
            .await
            .map_err(Diagnostic::from)?;
        observed(clients, &skeleton, &rule, tamper.as_ref(), upns).map_err(Diagnostics::from)
    }
}

// ---- helpers ------------------------------------------------------------------------------

fn lower(ids: &BTreeSet<String>) -> BTreeSet<String> {
    ids.iter().map(|i| i.to_ascii_lowercase()).collect()
}

/// The tamper rule next to the sign-in rule `id`.
fn operations_tamper_id(id: &crate::azure::arm::ResourceId) -> crate::azure::arm::ResourceId {
    crate::azure::alert_rules::id_of(&id.subscription, &id.resource_group, &tamper_name(&id.name))
}

/// The plan-time warning for a workspace without the tables yet.
fn no_tables_yet(tables: &[String]) -> Diagnostic {
    Diagnostic::warning(
        "The workspace has no Entra log tables yet",
        format!(
            "The workspace has no {} table yet: Azure Monitor creates Entra's tables when the \
             first record arrives through a diagnostic setting, not when export is configured. \
             Azure Monitor would refuse a rule whose query reads a missing table \
             (terraform-provider-azurerm#28293, azure-docs#88175), so the rules are written \
             with skipQueryValidation, the API's documented switch for deploying a rule \
             before its table exists, and start alerting once logs arrive \
             (`query_validation_skipped` records it). Make sure a \
             breakglass_entra_diagnostic_setting exports SignInLogs, \
             NonInteractiveUserSignInLogs and AuditLogs to this workspace.",
            tables.join(", ")
        ),
    )
    .at(AttributePath::root("workspace_id"))
}

/// State for the rules as the tenant holds them. Attributes the rules do not carry (the
/// accounts, `include_non_interactive`, the tamper block) come from `base`.
fn observed(
    clients: &AzureClients,
    base: &AlertModel,
    rule: &ScheduledQueryRule,
    tamper: Option<&ScheduledQueryRule>,
    upns: BTreeMap<String, String>,
) -> Result<AlertModel, Diagnostic> {
    let id = rule_id(&rule.id)?;
    // Durations: keep the stored spelling of the same length (`PT1H` for `PT60M`).
    let duration = |stored: &Tf<String>, have: &str| match stored.get() {
        Some(s) if same_duration(s, have) => stored.clone(),
        _ => Tf::Known(have.to_owned()),
    };
    let mut state = AlertModel {
        id: Tf::Known(rule.id.clone()),
        resource_group_name: Tf::Known(id.resource_group.clone()),
        name: Tf::Known(id.name.clone()),
        location: Tf::Known(rule.location.clone()),
        workspace_id: rule.scopes.first().cloned().into(),
        action_group_ids: Tf::Known(rule.action_groups.iter().cloned().collect()),
        severity: Tf::Known(i64::from(rule.severity)),
        evaluation_frequency: duration(&base.evaluation_frequency, &rule.evaluation_frequency),
        window_size: duration(&base.window_size, &rule.window_size),
        enabled: Tf::Known(rule.enabled),
        auto_mitigate: Tf::Known(rule.auto_mitigate),
        tags: match (&base.tags, rule.tags.is_empty()) {
            (Tf::Null, true) => Tf::Null,
            _ => Tf::Known(rule.tags.clone()),
        },
        query: rule.conditions.first().map(|c| c.query.clone()).into(),
        user_principal_names: Tf::Known(upns.clone()),
        query_validation_skipped: Tf::Known(
            rule.skip_query_validation || tamper.is_some_and(|t| t.skip_query_validation),
        ),
        tamper_alert_id: tamper.map(|t| t.id.clone()).into(),
        tamper_query: tamper
            .and_then(|t| t.conditions.first())
            .map(|c| c.query.clone())
            .into(),
        rule_drift: Tf::Known(Vec::new()),
        ..base.clone()
    };
    // What would be written now, to compare the rest of both rules with.
    let Ok(settings) = state.settings(clients) else {
        return Ok(state);
    };
    let (signin_query, tamper_query) = state.queries(&upns);
    let mut drift = drift_of(
        "sign-in rule",
        rule,
        &settings.signin_spec(&signin_query, false),
        false,
    );
    match (settings.tamper, tamper, tamper_query) {
        (Some(severity), Some(t), Some(q)) => drift.extend(drift_of(
            "tamper rule",
            t,
            &settings.tamper_spec(&q, severity, false),
            true,
        )),
        (Some(_), None, _) => drift.push(format!(
            "tamper rule: {} does not exist",
            tamper_name(&settings.name)
        )),
        _ => {}
    }
    state.rule_drift = Tf::Known(drift);
    Ok(state)
}

/// Create or update both rules as planned (and remove the tamper rule when it was turned off).
async fn write(
    clients: &AzureClients,
    planned: &AlertModel,
    prior: Option<&AlertModel>,
    deadline: &Deadline,
) -> Result<AlertModel, Failure> {
    let settings = planned.settings(clients)?;
    let ids = planned.accounts();
    let upns = match planned.user_principal_names.get() {
        Some(upns) => upns.clone(),
        None => look_up_upns(clients, &ids, true, deadline)
            .await
            .map_err(Diagnostic::from)?,
    };
    let (built_signin, built_tamper) = planned.queries(&upns);
    // A known planned query is what the plan promised; it was built the same way.
    let signin_query = planned.query.get().cloned().unwrap_or(built_signin);
    let tamper_query = planned.tamper_query.get().cloned().or(built_tamper);

    let signin_tables: &[&str] = match planned.include_non_interactive() {
        true => &SIGNIN_TABLES,
        false => &SIGNIN_TABLES[..1],
    };
    let missing = missing_tables(
        clients,
        &settings.workspace_id,
        &[SIGNIN_TABLES[0], SIGNIN_TABLES[1], AUDIT_TABLE],
        deadline,
    )
    .await
    .map_err(Diagnostic::from)?;

    let signin = put_rule(
        clients,
        settings.signin_spec(&signin_query, must_skip(signin_tables, &missing)),
        deadline,
    )
    .await?;
    let rules = ScheduledQueryRules::new(&clients.arm);
    // What the tenant holds so far, should a later step fail.
    let partial = |tamper: Option<&ScheduledQueryRule>| {
        observed(clients, planned, &signin, tamper, upns.clone())
            .unwrap_or_else(|_| planned.clone())
    };

    let tamper = match (settings.tamper, tamper_query) {
        (Some(severity), Some(q)) => {
            let spec = settings.tamper_spec(&q, severity, must_skip(&[AUDIT_TABLE], &missing));
            match put_rule(clients, spec, deadline).await {
                Ok(rule) => Some(rule),
                Err(d) => {
                    // The sign-in rule was written; a tamper rule from before may still exist.
                    let mut left = partial(None);
                    left.tamper_alert_id = prior.map_or(Tf::Null, |p| p.tamper_alert_id.clone());
                    return Err(Failure::new(d).with_model(&left));
                }
            }
        }
        _ => {
            if let Some(old) = prior.and_then(|p| p.tamper_alert_id.get()) {
                if let Err(e) = rules.delete(&rule_id(old)?, deadline).await {
                    let mut left = partial(None);
                    left.tamper_alert_id = Tf::Known(old.clone());
                    return Err(Failure::new(Diagnostic::from(e)).with_model(&left));
                }
            }
            None
        }
    };

    // ARM reads can lag a fresh write: wait until both rules read back.
    let signin_id = rule_id(&signin.id)?;
    let read_signin = rules.wait_readable(&signin_id, deadline).await;
    let read_tamper = match &tamper {
        Some(t) => Some(rules.wait_readable(&rule_id(&t.id)?, deadline).await),
        None => None,
    };
    match (read_signin, read_tamper.transpose()) {
        (Ok(s), Ok(t)) => Ok(observed(clients, planned, &s, t.as_ref(), upns)?),
        (Err(e), _) | (_, Err(e)) => Err(Failure::new(Diagnostic::error(
            "Alert rules written but not yet readable",
            format!(
                "Azure Resource Manager accepted the alert rules but did not return them in \
                 time: {e}. They are recorded in state; the next plan refreshes them."
            ),
        ))
        .with_model(&partial(tamper.as_ref()))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framework::model::{conform, field_names};
    use crate::framework::{typed, Severity};
    use crate::protocol::testing;
    use crate::protocol::validate::declared_validators;

    const A: &str = "5d2c6f0e-3b1a-4c8e-9f7d-0a1b2c3d4e01";
    const WORKSPACE: &str = "/subscriptions/eeb0c733-9a1c-437b-b310-e18599b1b281/resourceGroups/rg/providers/Microsoft.OperationalInsights/workspaces/law";
    const GROUP: &str = "/subscriptions/eeb0c733-9a1c-437b-b310-e18599b1b281/resourceGroups/rg/providers/Microsoft.Insights/actionGroups/ag";

    fn config(attrs: &[(&str, Value)]) -> Value {
        let mut v = conform(
            Value::object([("id", Value::Null)]),
            &alert_schema().value_type(),
        )
        .unwrap();
        for (k, val) in [
            ("resource_group_name", Value::from("rg")),
            ("name", "bg".into()),
            ("location", "westeurope".into()),
            ("accounts", Value::string_set([A])),
            ("workspace_id", WORKSPACE.into()),
            ("action_group_ids", Value::string_set([GROUP])),
        ] {
            v.set(k, val);
        }
        for (k, val) in attrs {
            v.set(k, val.clone());
        }
        v
    }

    fn error_paths(cfg: &Value) -> Vec<String> {
        declared_validators(&alert_schema(), cfg)
            .iter()
            .filter(|d| d.severity == Severity::Error)
            .map(|d| d.path.as_ref().unwrap().to_string())
            .collect()
    }

    #[test]
    fn model_and_schema_have_the_same_fields() {
        let schema = alert_schema();
        assert_eq!(field_names::<AlertModel>(), schema.field_names());
        let block = schema
            .block("tamper_alert")
            .expect("the tamper_alert block");
        assert_eq!(field_names::<TamperModel>(), block.field_names());
    }

    #[test]
    fn bad_input_is_refused_on_its_attribute() {
        assert!(error_paths(&config(&[])).is_empty());
        let number = |n: i64| Value::from(n);
        for (attrs, path) in [
            (vec![("severity", number(5))], "severity"),
            (
                vec![("evaluation_frequency", "PT7X".into())],
                "evaluation_frequency",
            ),
            (vec![("window_size", "PT7X".into())], "window_size"),
            (
                vec![("workspace_id", "law-breakglass".into())],
                "workspace_id",
            ),
            (
                vec![("accounts", Value::string_set(["bg@contoso.com"]))],
                "accounts",
            ),
            (
                vec![("action_group_ids", Value::string_set(["ag"]))],
                "action_group_ids",
            ),
            (
                vec![("action_group_ids", Value::Set(vec![]))],
                "action_group_ids",
            ),
            (
                vec![("evaluation_frequency", "PT15M".into())],
                "window_size",
            ),
        ] {
            assert_eq!(error_paths(&config(&attrs)), [path], "{attrs:?}");
        }
    }

    #[tokio::test]
    async fn overlapping_stateless_windows_are_warned_about() {
        let cfg = config(&[("window_size", "PT15M".into())]);
        let found = SigninAlertResource.validate(&cfg).await;
        assert_eq!(found.0.len(), 1);
        assert!(
            found.0[0].detail.contains("seen by 3 evaluations"),
            "{}",
            found.0[0].detail
        );
        assert!(SigninAlertResource.validate(&config(&[])).await.is_empty());
    }

    #[tokio::test]
    async fn without_a_tenant_the_plan_keeps_the_queries_unknown_and_the_defaults_known() {
        let cfg = config(&[]);
        let change = testing::plan(&*typed(SigninAlertResource), &cfg, &Value::Null).await;
        assert!(change.diagnostics.is_empty(), "{:?}", change.diagnostics);
        let planned = change.planned;
        assert_eq!(planned.get("severity"), Value::from(0i64));
        assert_eq!(planned.get("evaluation_frequency"), Value::from("PT5M"));
        assert_eq!(planned.get("auto_mitigate"), Value::Bool(false));
        assert_eq!(planned.get("query"), Value::Unknown);
        assert_eq!(planned.get("tamper_alert_id"), Value::Unknown);
        assert_eq!(planned.get("rule_drift"), Value::List(vec![]));
        let mut off = cfg.clone();
        off.set(
            "tamper_alert",
            Value::object([("enabled", Value::Bool(false)), ("severity", Value::Null)]),
        );
        let change = testing::plan(&*typed(SigninAlertResource), &off, &Value::Null).await;
        assert_eq!(change.planned.get("tamper_alert_id"), Value::Null);
        assert_eq!(change.planned.get("tamper_query"), Value::Null);
    }

    #[test]
    fn the_tamper_rule_is_on_without_a_block() {
        let mut m = AlertModel::default();
        assert_eq!(m.tamper(), Some(1));
        m.tamper_alert = Tf::Known(TamperModel {
            enabled: Tf::Known(true),
            severity: Tf::Known(3),
        });
        assert_eq!(m.tamper(), Some(3));
        m.tamper_alert = Tf::Known(TamperModel {
            enabled: Tf::Known(false),
            severity: Tf::Null,
        });
        assert_eq!(m.tamper(), None);
    }
}
