//! What the alert resource does in the tenant: look the accounts' UPNs up in Graph, build the
//! two rules from the plan, write them (skipping query validation only where a table does not
//! exist yet), and compare what the tenant holds with what would be written (`rule_drift`).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use crate::azure::alert_rules::{
    self, missing_table, Condition, Dimension, ScheduledQueryRule, ScheduledQueryRuleSpec,
    ScheduledQueryRules,
};
use crate::azure::arm::ResourceId;
use crate::azure::log_analytics::{parse_workspace_id, LogAnalytics};
use crate::azure::users::Users;
use crate::azure::{AzureClients, AzureError, Deadline};
use crate::framework::{AttributePath, Diagnostic, Diagnostics};

use super::query::{self, Account, SIGNIN_DIMENSION, TAMPER_DIMENSIONS};
use super::rules::same_duration;

/// The Entra tables the rules read.
pub const SIGNIN_TABLES: [&str; 2] = ["SigninLogs", "AADNonInteractiveUserSignInLogs"];
pub const AUDIT_TABLE: &str = "AuditLogs";

/// How long an apply waits for an account created in the same run to become readable in
/// Graph before it names the account by object id only.
const NEW_ACCOUNT_PATIENCE: Duration = Duration::from_secs(120);

/// Everything both rules are written from, resolved from a plan or a state.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleSettings {
    pub subscription: String,
    pub resource_group: String,
    pub name: String,
    pub location: String,
    pub workspace_id: String,
    pub action_group_ids: Vec<String>,
    pub severity: u8,
    pub evaluation_frequency: String,
    pub window_size: String,
    pub enabled: bool,
    pub auto_mitigate: bool,
    pub tags: BTreeMap<String, String>,
    /// `Some(severity)` when the tamper rule is on.
    pub tamper: Option<u8>,
}

impl RuleSettings {
    pub fn signin_id(&self) -> ResourceId {
        alert_rules::id_of(&self.subscription, &self.resource_group, &self.name)
    }

    pub fn tamper_id(&self) -> ResourceId {
        alert_rules::id_of(
            &self.subscription,
            &self.resource_group,
            &tamper_name(&self.name),
        )
    }

    fn spec(
        &self,
        id: ResourceId,
        display_name: String,
        description: &str,
        severity: u8,
        condition: Condition,
        skip_query_validation: bool,
    ) -> ScheduledQueryRuleSpec {
        ScheduledQueryRuleSpec {
            id,
            location: self.location.clone(),
            display_name: Some(display_name),
            description: Some(description.to_owned()),
            severity,
            enabled: self.enabled,
            evaluation_frequency: self.evaluation_frequency.clone(),
            window_size: self.window_size.clone(),
            scopes: vec![self.workspace_id.clone()],
            conditions: vec![condition],
            action_groups: self.action_group_ids.clone(),
            auto_mitigate: self.auto_mitigate,
            mute_actions_duration: None,
            skip_query_validation,
            tags: self.tags.clone(),
        }
    }

    pub fn signin_spec(&self, query: &str, skip: bool) -> ScheduledQueryRuleSpec {
        self.spec(
            self.signin_id(),
            format!("Break-glass account signed in ({})", self.name),
            "Fires on every sign-in (interactive or not, successful or failed) of the \
             emergency-access accounts. Managed by Terraform (breakglass_signin_alert).",
            self.severity,
            count_condition(query, &[SIGNIN_DIMENSION]),
            skip,
        )
    }

    pub fn tamper_spec(&self, query: &str, severity: u8, skip: bool) -> ScheduledQueryRuleSpec {
        self.spec(
            self.tamper_id(),
            format!(
                "Break-glass accounts or conditional access changed ({})",
                self.name
            ),
            "Fires when an emergency-access account is changed (password, authentication \
             methods, disabled, deleted, roles removed) and when a conditional-access policy is \
             added, changed or deleted. Managed by Terraform (breakglass_signin_alert).",
            severity,
            count_condition(query, &TAMPER_DIMENSIONS),
            skip,
        )
    }
}

/// The tamper rule's name.
pub fn tamper_name(name: &str) -> String {
    format!("{name}-tamper")
}

/// Fire when the query returns any row, one alert per value of each dimension.
fn count_condition(query: &str, dimensions: &[&str]) -> Condition {
    Condition {
        query: query.to_owned(),
        time_aggregation: "Count".into(),
        operator: "GreaterThan".into(),
        threshold: 0.0,
        metric_measure_column: None,
        dimensions: dimensions.iter().map(|d| Dimension::split_by(d)).collect(),
    }
}

// ---- accounts -----------------------------------------------------------------------------

/// The UPN of each account Graph can read, by lower-case object id.
pub async fn look_up_upns(
    clients: &AzureClients,
    accounts: &BTreeSet<String>,
    wait_for_new: bool,
    deadline: &Deadline,
) -> Result<BTreeMap<String, String>, AzureError> {
    let users = Users::new(&clients.cached.graph);
    let mut found = BTreeMap::new();
    for id in accounts {
        let user = match users.get(id, deadline).await? {
            Some(u) => Some(u),
            // An account created in this apply may not have replicated yet.
            None if wait_for_new => {
                let patience = Deadline::after(NEW_ACCOUNT_PATIENCE.min(deadline.remaining()));
                users.wait_readable(id, &patience).await.ok()
            }
            None => None,
        };
        if let Some(user) = user {
            found.insert(id.to_ascii_lowercase(), user.user_principal_name);
        }
    }
    Ok(found)
}

/// The accounts as the queries name them.
pub fn accounts_of(ids: &BTreeSet<String>, upns: &BTreeMap<String, String>) -> Vec<Account> {
    let mut lower: Vec<String> = ids.iter().map(|i| i.to_ascii_lowercase()).collect();
    lower.sort();
    lower.dedup();
    lower
        .into_iter()
        .map(|id| Account {
            user_principal_name: upns.get(&id).cloned(),
            object_id: id,
        })
        .collect()
}

/// Warnings for accounts Graph does not know: the query still matches their object ids.
pub fn unknown_accounts(ids: &BTreeSet<String>, upns: &BTreeMap<String, String>) -> Diagnostics {
    let mut found = Diagnostics::new();
    for id in ids {
        if !upns.contains_key(&id.to_ascii_lowercase()) {
            found.push(
                Diagnostic::warning(
                    "No user with this object id",
                    format!(
                        "Microsoft Graph has no user {id}, so the alert cannot match its user \
                         principal name and matches the object id only. If the account was \
                         deleted, restore it (deleted users keep their object id for 30 days)."
                    ),
                )
                .at(AttributePath::root("accounts").key(id)),
            );
        }
    }
    found
}

// ---- writing ------------------------------------------------------------------------------

/// Which of `tables` the workspace lacks now (its tables are listed once).
pub async fn missing_tables(
    clients: &AzureClients,
    workspace_id: &str,
    tables: &[&str],
    deadline: &Deadline,
) -> Result<Vec<String>, AzureError> {
    let Ok(workspace) = parse_workspace_id(workspace_id) else {
        return Ok(Vec::new());
    };
    let present = LogAnalytics::new(&clients.cached.arm)
        .tables(&workspace, deadline)
        .await?;
    Ok(tables
        .iter()
        .filter(|t| !present.iter().any(|p| p == *t))
        .map(|t| (*t).to_owned())
        .collect())
}

/// Whether a rule on `tables` must skip validation: when none of them exists (`union
/// isfuzzy=true` needs only one leg), or, for a single table, when it does not.
pub fn must_skip(tables: &[&str], missing: &[String]) -> bool {
    tables.iter().all(|t| missing.iter().any(|m| m == t))
}

/// PUT a rule; when the service still refuses it for a table it cannot resolve (its table
/// list can lag the first ingestion), PUT it again without validation.
pub async fn put_rule(
    clients: &AzureClients,
    mut spec: ScheduledQueryRuleSpec,
    deadline: &Deadline,
) -> Result<ScheduledQueryRule, Diagnostic> {
    let rules = ScheduledQueryRules::new(&clients.arm);
    match rules.put(&spec, deadline).await {
        Ok(rule) => Ok(rule),
        Err(e) if missing_table(&e).is_some() && !spec.skip_query_validation => {
            tracing::info!(rule = %spec.id.name, "the workspace lacks a table the query reads; writing the rule without query validation");
            spec.skip_query_validation = true;
            rules
                .put(&spec, deadline)
                .await
                .map_err(|e| rule_error(e, &spec.id.name))
        }
        Err(e) => Err(rule_error(e, &spec.id.name)),
    }
}

fn rule_error(e: AzureError, name: &str) -> Diagnostic {
    if let Some(table) = missing_table(&e) {
        return Diagnostic::error(
            "The workspace has no such table yet",
            format!(
                "Azure Monitor refused alert rule {name:?} because the workspace has no \
                 {table} table, even with query validation skipped. Entra's tables appear \
                 with the first record a diagnostic setting exports: create the \
                 breakglass_entra_diagnostic_setting first, sign in once with any account (or \
                 wait for the first audit event), allow up to 15 minutes for ingestion, and \
                 apply again (terraform-provider-azurerm#28293, azure-docs#88175)."
            ),
        );
    }
    if let Some(q) = alert_rules::query_error(&e) {
        return Diagnostic::error(
            "Alert query refused",
            format!(
                "Log Analytics refused the query of alert rule {name:?} ({} {}: {}). The \
                 provider writes this query; please report it.",
                q.kind, q.code, q.message
            ),
        );
    }
    let mut d = Diagnostic::from(e);
    d.detail = format!("Alert rule {name:?}: {}", d.detail);
    d
}

// ---- drift ------------------------------------------------------------------------------

/// What differs between `rule` as the tenant holds it and what would be written for it,
/// beyond the attributes that show it themselves, as readable lines.
pub fn drift_of(
    label: &str,
    rule: &ScheduledQueryRule,
    want: &ScheduledQueryRuleSpec,
    compare_attributes: bool,
) -> Vec<String> {
    let mut found = Vec::new();
    let mut note = |what: String| found.push(format!("{label}: {what}"));
    let Some(have) = rule.conditions.first() else {
        note("has no condition".to_owned());
        return found;
    };
    let want_condition = &want.conditions[0];
    if rule.conditions.len() != 1 {
        note(format!(
            "has {} conditions, expected 1",
            rule.conditions.len()
        ));
    }
    if have.time_aggregation != want_condition.time_aggregation
        || have.operator != want_condition.operator
        || have.threshold != want_condition.threshold
        || have.metric_measure_column.is_some()
    {
        note(format!(
            "fires on {} {} {}, expected {} {} {}",
            have.time_aggregation,
            have.operator,
            have.threshold,
            want_condition.time_aggregation,
            want_condition.operator,
            want_condition.threshold
        ));
    }
    if have.dimensions != want_condition.dimensions {
        let names = |d: &[Dimension]| {
            d.iter()
                .map(|d| format!("{} {} {:?}", d.name, d.operator, d.values))
                .collect::<Vec<_>>()
                .join(", ")
        };
        note(format!(
            "splits by [{}], expected [{}]",
            names(&have.dimensions),
            names(&want_condition.dimensions)
        ));
    }
    if rule.kind != "LogAlert" {
        note(format!("is of kind {}, expected LogAlert", rule.kind));
    }
    if rule.mute_actions_duration.is_some() {
        note("mutes its actions after firing, expected never".to_owned());
    }
    if !compare_attributes {
        return found;
    }
    if have.query != want_condition.query {
        note("its query was edited".to_owned());
    }
    if rule.enabled != want.enabled {
        note(format!(
            "enabled is {}, expected {}",
            rule.enabled, want.enabled
        ));
    }
    if rule.severity != want.severity {
        note(format!(
            "severity is {}, expected {}",
            rule.severity, want.severity
        ));
    }
    if !same_duration(&rule.evaluation_frequency, &want.evaluation_frequency)
        || !same_duration(&rule.window_size, &want.window_size)
    {
        note(format!(
            "runs every {} over {}, expected every {} over {}",
            rule.evaluation_frequency,
            rule.window_size,
            want.evaluation_frequency,
            want.window_size
        ));
    }
    if !same_ids(&rule.scopes, &want.scopes) {
        note(format!(
            "reads {:?}, expected {:?}",
            rule.scopes, want.scopes
        ));
    }
    if !same_ids(&rule.action_groups, &want.action_groups) {
        note(format!(
            "notifies {:?}, expected {:?}",
            rule.action_groups, want.action_groups
        ));
    }
    if rule.auto_mitigate != want.auto_mitigate {
        note(format!(
            "autoMitigate is {}, expected {}",
            rule.auto_mitigate, want.auto_mitigate
        ));
    }
    found
}

/// ARM ids compare case-insensitively, as sets.
pub fn same_ids(a: &[String], b: &[String]) -> bool {
    let lower =
        |v: &[String]| -> BTreeSet<String> { v.iter().map(|s| s.to_ascii_lowercase()).collect() };
    lower(a) == lower(b)
}

/// A rule's subscription, resource group and name from its id (case-insensitively).
pub fn rule_id(id: &str) -> Result<ResourceId, Diagnostic> {
    alert_rules::parse_id(id).map_err(|why| {
        Diagnostic::error(
            "Invalid alert rule id",
            format!("{why}. Remove the resource from state and import it again."),
        )
    })
}

/// The accounts a stored sign-in query names, for import: the object ids of a query this
/// provider wrote, or else the users whose principal names a query written by hand compares
/// `UserPrincipalName` with (looked up in Graph; the next apply rewrites the query).
pub async fn imported_accounts(
    clients: &AzureClients,
    rule: &ScheduledQueryRule,
    deadline: &Deadline,
) -> Result<BTreeSet<String>, Diagnostic> {
    let text = rule
        .conditions
        .first()
        .map(|c| c.query.as_str())
        .unwrap_or("");
    if let Some(ids) = query::accounts_in(text).filter(|ids| !ids.is_empty()) {
        return Ok(ids.into_iter().collect());
    }
    let Some(upns) = query::upns_in(text) else {
        return Err(Diagnostic::error(
            "Not a break-glass sign-in alert",
            format!(
                "The query of alert rule {:?} neither is one breakglass_signin_alert writes \
                 (`| where UserId in~ (…)`) nor compares `UserPrincipalName` with the accounts' \
                 names, so the accounts it watches cannot be read back. Import a rule that \
                 names them, or let this resource create a new one.",
                rule.name
            ),
        ));
    };
    let users = Users::new(&clients.graph);
    let mut ids = BTreeSet::new();
    for upn in upns {
        match users.get(&upn, deadline).await.map_err(Diagnostic::from)? {
            Some(user) => {
                ids.insert(user.id.to_ascii_lowercase());
            }
            None => {
                return Err(Diagnostic::error(
                    "Unknown account in the alert's query",
                    format!(
                        "The query of alert rule {:?} watches {upn:?}, which Microsoft Graph \
                         does not know. Import the rule once the account exists, or let this \
                         resource create a new rule.",
                        rule.name
                    ),
                ))
            }
        }
    }
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> RuleSettings {
        RuleSettings {
            subscription: "s".into(),
            resource_group: "rg".into(),
            name: "bg".into(),
            location: "westeurope".into(),
            workspace_id: "/subscriptions/s/resourceGroups/rg/providers/Microsoft.OperationalInsights/workspaces/law".into(),
            action_group_ids: vec!["/subscriptions/s/resourceGroups/rg/providers/Microsoft.Insights/actionGroups/ag".into()],
            severity: 0,
            evaluation_frequency: "PT5M".into(),
            window_size: "PT5M".into(),
            enabled: true,
            auto_mitigate: false,
            tags: BTreeMap::new(),
            tamper: Some(1),
        }
    }

    fn stored(spec: &ScheduledQueryRuleSpec) -> ScheduledQueryRule {
        ScheduledQueryRule {
            id: spec.id.path().to_ascii_lowercase(),
            name: spec.id.name.clone(),
            location: spec.location.clone(),
            kind: "LogAlert".into(),
            display_name: spec.display_name.clone(),
            description: spec.description.clone(),
            severity: spec.severity,
            enabled: spec.enabled,
            evaluation_frequency: "PT5M".into(),
            window_size: "PT5M".into(),
            scopes: spec.scopes.iter().map(|s| s.to_ascii_uppercase()).collect(),
            conditions: spec.conditions.clone(),
            action_groups: spec.action_groups.clone(),
            auto_mitigate: spec.auto_mitigate,
            mute_actions_duration: None,
            skip_query_validation: false,
            tags: BTreeMap::new(),
        }
    }

    #[test]
    fn a_rule_as_written_has_no_drift_and_each_change_is_named() {
        let s = settings();
        let spec = s.tamper_spec(
            "AuditLogs | summarize count() by OperationName, Target",
            1,
            false,
        );
        let mut rule = stored(&spec);
        assert_eq!(
            drift_of("tamper rule", &rule, &spec, true),
            Vec::<String>::new()
        );
        rule.conditions[0].threshold = 100.0;
        rule.enabled = false;
        rule.conditions[0].dimensions.clear();
        let drift = drift_of("tamper rule", &rule, &spec, true);
        assert_eq!(drift.len(), 3, "{drift:?}");
        assert!(
            drift[0].contains("fires on Count GreaterThan 100"),
            "{drift:?}"
        );
        assert!(
            drift[2].contains("enabled is false, expected true"),
            "{drift:?}"
        );
        // The sign-in rule's own attributes show drift themselves.
        assert_eq!(drift_of("sign-in rule", &rule, &spec, false).len(), 2);
    }

    #[test]
    fn validation_is_skipped_only_when_no_table_of_the_union_exists() {
        let missing = |t: &[&str]| t.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert!(must_skip(&SIGNIN_TABLES, &missing(&SIGNIN_TABLES)));
        assert!(!must_skip(
            &SIGNIN_TABLES,
            &missing(&["AADNonInteractiveUserSignInLogs"])
        ));
        assert!(must_skip(&["SigninLogs"], &missing(&["SigninLogs"])));
        assert!(!must_skip(&[AUDIT_TABLE], &[]));
    }

    #[test]
    fn accounts_are_lower_cased_and_named_by_upn_where_known() {
        let ids: BTreeSet<String> = ["B-2".to_owned(), "a-1".to_owned()].into();
        let upns = BTreeMap::from([("a-1".to_owned(), "a@x.com".to_owned())]);
        let accounts = accounts_of(&ids, &upns);
        assert_eq!(accounts[0].object_id, "a-1");
        assert_eq!(accounts[0].user_principal_name.as_deref(), Some("a@x.com"));
        assert_eq!(accounts[1].object_id, "b-2");
        assert_eq!(accounts[1].user_principal_name, None);
        assert_eq!(unknown_accounts(&ids, &upns).0.len(), 1);
    }
}
