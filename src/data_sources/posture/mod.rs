//! `breakglass_posture`: judges the tenant's emergency access — meant for Terraform `check`
//! blocks (Terraform ≥ 1.5), so that `terraform plan` itself warns when it has degraded. It only
//! reads: users, their methods and groups, PIM schedules, conditional-access policies, alert
//! rules, action groups and diagnostic settings, each through the typed client layer. The
//! checks themselves are pure (`checks.rs`), each with its source.

mod checks;

use std::collections::BTreeSet;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use crate::azure::action_groups::{self, ActionGroups};
use crate::azure::alert_rules::{self, ScheduledQueryRule, ScheduledQueryRules};
use crate::azure::conditional_access::{list_policies, policy};
use crate::azure::diagnostic_settings::EntraDiagnosticSettings;
use crate::azure::role_management::{RoleManagement, GLOBAL_ADMINISTRATOR};
use crate::azure::users::{UserReview, Users};
use crate::azure::{AzureClients, AzureError, Deadline};
use crate::framework::validators::{each, guid, size_between};
use crate::framework::{
    decode, encode, Attribute, DataSource, Diagnostic, Diagnostics, NestingMode, Schema, Tf, Type,
    Value,
};
use checks::{AccountObserved, Observed, CHECKS};

pub struct PostureDataSource;

const READ_TIMEOUT: Duration = Duration::from_secs(5 * 60);
/// The categories the sign-in checks need exported.
const SIGN_IN_CATEGORIES: [&str; 2] = ["SignInLogs", "NonInteractiveUserSignInLogs"];

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct PostureModel {
    accounts: Tf<BTreeSet<String>>,
    workspace_id: Tf<String>,
    alert_ids: Tf<BTreeSet<String>>,
    ok: Tf<bool>,
    findings: Tf<Vec<FindingModel>>,
    account_facts: Tf<Vec<FactsModel>>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct FindingModel {
    id: String,
    severity: String,
    account: Option<String>,
    message: String,
    remedy: String,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct FactsModel {
    object_id: String,
    user_principal_name: Option<String>,
    cloud_only: bool,
    enabled: bool,
    permanent_global_admin: bool,
    policies_not_excluding: Vec<String>,
    alerted_by: Vec<String>,
    phishing_resistant_methods: Vec<String>,
    last_password_change: Option<String>,
    last_sign_in: Option<String>,
}

fn schema() -> Schema {
    let text = |name: &str, d: &str| Attribute::computed(name, Type::String, d);
    let findings = vec![
        text(
            "id",
            "The check, e.g. `account.ca_excluded` (see the list above).",
        ),
        text("severity", "`error` or `warning`."),
        text(
            "account",
            "Object id of the account the finding is about; null for tenant-wide findings.",
        ),
        text("message", "What is wrong."),
        text("remedy", "What to do about it."),
    ];
    let strings = Type::list(Type::String);
    let facts = vec![
        text("object_id", "The account's object id."),
        text("user_principal_name", "Its user principal name; null when no such user exists."),
        Attribute::computed("cloud_only", Type::Bool, "Not synchronized from on-premises."),
        Attribute::computed("enabled", Type::Bool, "Sign-in is enabled."),
        Attribute::computed("permanent_global_admin", Type::Bool, "Holds Global Administrator permanently and active."),
        Attribute::computed("policies_not_excluding", strings.clone(), "Enabled conditional-access policies that apply to it but do not exclude it (`name (id)`)."),
        Attribute::computed("alerted_by", strings.clone(), "Ids of enabled sign-in alerts that watch it and notify an enabled receiver."),
        Attribute::computed("phishing_resistant_methods", strings, "Phishing-resistant methods registered (`fido2`, …, `x509Certificate` for a certificate mapping)."),
        text("last_password_change", "When its password last changed (RFC 3339), where the tenant exposes it."),
        text("last_sign_in", "When it last signed in (RFC 3339), where the tenant exposes it (`signInActivity`)."),
    ];
    let checks: Vec<String> = CHECKS
        .iter()
        .map(|(id, severity, what)| format!("- `{id}` ({}): {what}.", severity.as_str()))
        .collect();
    Schema {
        description: format!(
            "{}\n\nChecks, with their severity:\n\n{}",
            include_str!("description.md").trim_end(),
            checks.join("\n")
        ),
        attributes: vec![
            Attribute::required(
                "accounts",
                Type::set(Type::String),
                "Object ids of the emergency-access accounts to judge, usually \
                 `breakglass_account.*.object_id`.",
            )
            .case_insensitive()
            .validate(each(guid()))
            .validate(size_between(1, 50)),
            Attribute::optional_computed(
                "workspace_id",
                Type::String,
                "The Log Analytics workspace (resource id) that should receive the sign-in \
                 logs. Unset: the workspace the covering sign-in alerts read.",
            )
            .case_insensitive(),
            Attribute::optional_computed(
                "alert_ids",
                Type::set(Type::String),
                "Resource ids of the sign-in alerts to judge. Unset: every scheduled-query rule \
                 of the provider's subscription (`subscription_id`).",
            )
            .case_insensitive(),
            Attribute::computed("ok", Type::Bool, "True when no finding is an error."),
            Attribute::nested(
                "findings",
                NestingMode::List,
                findings,
                "What is wrong, each with its remedy.",
            )
            .make_computed(),
            Attribute::nested(
                "account_facts",
                NestingMode::List,
                facts,
                "What was found about each account, in the order of `accounts` (sorted).",
            )
            .make_computed(),
        ],
        ..Schema::default()
    }
}

#[async_trait]
impl DataSource<AzureClients> for PostureDataSource {
    fn type_name(&self) -> &'static str {
        "breakglass_posture"
    }

    fn schema(&self) -> Schema {
        schema()
    }

    async fn read(&self, clients: &AzureClients, config: &Value) -> Result<Value, Diagnostics> {
        let config: PostureModel = decode(config).map_err(Diagnostic::from)?;
        let accounts: Vec<String> = config
            .accounts
            .get()
            .into_iter()
            .flatten()
            .map(|a| a.to_ascii_lowercase())
            .collect();
        let deadline = Deadline::after(READ_TIMEOUT);
        let mut observed = observe(clients, &accounts, &config, deadline).await?;
        observed.now = Some(time::OffsetDateTime::now_utc());
        let findings = checks::evaluate(&observed);
        let state = PostureModel {
            workspace_id: observed.workspace_id.clone().into(),
            alert_ids: config.alert_ids,
            ok: Tf::Known(
                !findings
                    .iter()
                    .any(|f| f.severity == checks::Severity::Error),
            ),
            findings: Tf::Known(
                findings
                    .into_iter()
                    .map(|f| FindingModel {
                        id: f.id.to_owned(),
                        severity: f.severity.as_str().to_owned(),
                        account: f.account,
                        message: f.message,
                        remedy: f.remedy,
                    })
                    .collect(),
            ),
            account_facts: Tf::Known(
                observed
                    .accounts
                    .into_iter()
                    .map(|a| FactsModel {
                        cloud_only: !a.synced,
                        object_id: a.object_id,
                        user_principal_name: a.user_principal_name,
                        enabled: a.enabled,
                        permanent_global_admin: a.permanent_global_admin,
                        policies_not_excluding: a.policies_not_excluding,
                        alerted_by: a.alerted_by,
                        phishing_resistant_methods: a.phishing_resistant_methods,
                        last_password_change: a.last_password_change,
                        last_sign_in: a.last_sign_in,
                    })
                    .collect(),
            ),
            accounts: config.accounts,
        };
        Ok(encode(&state).map_err(Diagnostic::from)?)
    }
}

/// What Graph says about one account, read for the checks.
struct AccountRead {
    user: UserReview,
    groups: Vec<String>,
    methods: Option<Vec<crate::azure::users::AuthenticationMethod>>,
    certificate_ids: Option<Vec<String>>,
}

/// One account's user, groups, methods and certificate mapping; `None` when Graph has no such
/// user. Its reads do not depend on one another and go out together.
async fn read_account(
    users: &Users<'_>,
    id: &str,
    deadline: Deadline,
) -> Result<Option<AccountRead>, AzureError> {
    let (user, groups, methods) = futures::join!(
        users.review(id, &deadline),
        users.group_ids(id, deadline),
        users.authentication_methods(id, deadline),
    );
    let Some(user) = user? else {
        return Ok(None);
    };
    let certificate_ids = match user.certificate_user_ids.clone() {
        Some(ids) => Some(ids),
        None => users.certificate_user_ids(id, &deadline).await?,
    };
    Ok(Some(AccountRead {
        user,
        groups: groups?,
        methods: methods?,
        certificate_ids,
    }))
}

/// Reads everything the checks judge. Nothing read here depends on anything else read here
/// (but the diagnostic settings, when the workspace comes from an alert), so the reads go out
/// together: on a real network the data source then costs about one round trip, not twenty.
async fn observe(
    clients: &AzureClients,
    accounts: &[String],
    config: &PostureModel,
    deadline: Deadline,
) -> Result<Observed, AzureError> {
    let users = Users::new(&clients.cached.graph);
    let roles = RoleManagement::new(&clients.cached.graph);
    let settings_reader = EntraDiagnosticSettings::new(&clients.cached.arm);
    let configured_workspace = config.workspace_id.get().cloned();
    let (holders, policies, alerts, reads, early_settings) = futures::join!(
        roles.active_holders(GLOBAL_ADMINISTRATOR, deadline),
        list_policies(&clients.cached.graph, deadline),
        sign_in_alerts(clients, config, deadline),
        futures::future::join_all(accounts.iter().map(|id| read_account(&users, id, deadline))),
        async {
            match &configured_workspace {
                Some(_) => Some(settings_reader.list(&deadline).await),
                None => None,
            }
        },
    );
    let holders = holders?;
    let policies = policies?;
    let (alerts, monitoring_readable) = match alerts {
        Ok(alerts) => (alerts, Ok(())),
        Err(why) => (Vec::new(), Err(why)),
    };
    let mut observed = Observed {
        accounts: Vec::new(),
        global_admins: holders
            .iter()
            .map(|(p, _)| p)
            .collect::<BTreeSet<_>>()
            .len(),
        workspace_id: None,
        exported_categories: BTreeSet::new(),
        monitoring_readable,
        now: None,
    };
    let mut workspaces = BTreeSet::new();
    for (id, read) in accounts.iter().zip(reads) {
        let mut a = AccountObserved {
            object_id: id.clone(),
            ..AccountObserved::default()
        };
        if let Some(AccountRead {
            user,
            groups,
            methods,
            certificate_ids,
        }) = read?
        {
            let upn = user.user_principal_name.clone();
            a.enabled = user.account_enabled != Some(false);
            a.synced = user.on_premises_sync_enabled == Some(true);
            let held: Vec<bool> = holders
                .iter()
                .filter(|(p, _)| p == id)
                .map(|(_, perm)| *perm)
                .collect();
            a.permanent_global_admin = held.contains(&true);
            a.time_bound_global_admin = held.contains(&false);
            a.policies_not_excluding = policies
                .iter()
                .filter(|p| blocks_sign_in(p) && applies_to(p, id, &groups, !held.is_empty()))
                .filter(|p| {
                    !policy::excludes_principal(p, id)
                        && !groups.iter().any(|g| policy::excludes_principal(p, g))
                })
                .map(|p| format!("{} ({})", policy::display_name(p), policy::id(p)))
                .collect();
            for (alert, workspace) in alerts.iter().filter(|(rule, _)| watches(rule, id, &upn)) {
                a.alerted_by.push(alert.id.clone());
                workspaces.extend(workspace.clone());
            }
            if let Some(methods) = methods {
                a.phishing_resistant_methods = methods
                    .iter()
                    .filter(|m| m.kind.is_phishing_resistant())
                    .map(|m| m.kind.name().to_owned())
                    .collect();
            }
            // Certificate-based authentication binds through the mapping, not a method.
            if certificate_ids.is_some_and(|c| !c.is_empty()) {
                a.phishing_resistant_methods
                    .push("x509Certificate".to_owned());
            }
            a.last_password_change = user.last_password_change_date_time;
            a.last_sign_in = user.last_sign_in_date_time;
            a.user_principal_name = Some(upn);
        }
        observed.accounts.push(a);
    }
    observed.workspace_id = configured_workspace.or_else(|| workspaces.into_iter().next());
    if let (Ok(()), Some(ws)) = (&observed.monitoring_readable, &observed.workspace_id) {
        let settings = match early_settings {
            Some(listed) => listed,
            None => settings_reader.list(&deadline).await,
        };
        match settings {
            Ok(settings) => {
                for category in SIGN_IN_CATEGORIES {
                    if settings.iter().any(|s| s.exports_to(ws, category)) {
                        observed.exported_categories.insert(category.to_owned());
                    }
                }
            }
            Err(e) => {
                observed.monitoring_readable =
                    Err(format!("diagnostic settings could not be read ({e})"))
            }
        }
    }
    Ok(observed)
}

/// Enabled sign-in alerts that notify someone, each with the workspaces it reads.
async fn sign_in_alerts(
    clients: &AzureClients,
    config: &PostureModel,
    deadline: Deadline,
) -> Result<Vec<(ScheduledQueryRule, Vec<String>)>, String> {
    let rules = ScheduledQueryRules::new(&clients.cached.arm);
    let all = match config.alert_ids.get() {
        Some(ids) => {
            let mut found = Vec::new();
            for id in ids {
                let rid = alert_rules::parse_id(id).map_err(|e| format!("alert id {id:?}: {e}"))?;
                found.extend(
                    rules
                        .get(&rid, &deadline)
                        .await
                        .map_err(|e| e.to_string())?,
                );
            }
            found
        }
        None => {
            let sub = clients.config.subscription_id.as_deref().ok_or("the provider has no subscription_id (ARM_SUBSCRIPTION_ID) to look for alert rules in")?;
            rules
                .list_in_subscription(sub, deadline)
                .await
                .map_err(|e| e.to_string())?
        }
    };
    let groups = ActionGroups::new(&clients.cached.arm);
    let mut notifying = Vec::new();
    for rule in all.into_iter().filter(|r| r.enabled) {
        let mut receives = false;
        for id in &rule.action_groups {
            let Ok(rid) = action_groups::parse_id(id) else {
                continue;
            };
            if let Some(g) = groups
                .get(&rid, &deadline)
                .await
                .map_err(|e| e.to_string())?
            {
                let enabled = |s: &Option<String>| {
                    s.as_deref()
                        .is_none_or(|s| s.eq_ignore_ascii_case("Enabled"))
                };
                receives |= g.enabled
                    && (g.email_receivers.iter().any(|r| enabled(&r.status))
                        || g.sms_receivers.iter().any(|r| enabled(&r.status))
                        || !g.other_receiver_kinds.is_empty());
            }
        }
        if receives {
            let scopes = rule.scopes.clone();
            notifying.push((rule, scopes));
        }
    }
    Ok(notifying)
}

/// The rule's queries name the account, by object id or UPN (any case), and read a sign-in
/// table.
fn watches(rule: &ScheduledQueryRule, id: &str, upn: &str) -> bool {
    rule.conditions.iter().any(|c| {
        let q = c.query.to_ascii_lowercase();
        q.contains("signinlogs")
            && (q.contains(&id.to_ascii_lowercase()) || q.contains(&upn.to_ascii_lowercase()))
    })
}

/// An enabled policy whose grant or session controls gate sign-in (report-only and disabled
/// policies do not).
fn blocks_sign_in(p: &Json) -> bool {
    let grant = &p["grantControls"];
    policy::state(p) == "enabled"
        && (grant["builtInControls"]
            .as_array()
            .is_some_and(|c| !c.is_empty())
            || !grant["authenticationStrength"].is_null()
            || !p["sessionControls"].is_null())
}

/// Whether the policy's include lists reach the account: all users, the account, one of its
/// groups, or (for a Global Administrator) a role it holds.
fn applies_to(p: &Json, id: &str, groups: &[String], holds_global_admin: bool) -> bool {
    let users = &p["conditions"]["users"];
    let has = |key: &str, wanted: &dyn Fn(&str) -> bool| {
        users[key]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Json::as_str)
            .any(wanted)
    };
    has("includeUsers", &|v| {
        v.eq_ignore_ascii_case("All") || v.eq_ignore_ascii_case(id)
    }) || has("includeGroups", &|v| {
        groups.iter().any(|g| g.eq_ignore_ascii_case(v))
    }) || (holds_global_admin
        && has("includeRoles", &|v| {
            v.eq_ignore_ascii_case(GLOBAL_ADMINISTRATOR)
        }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framework::model::field_names;
    use serde_json::json;

    #[test]
    fn model_and_schema_have_the_same_fields() {
        assert_eq!(field_names::<PostureModel>(), schema().field_names());
    }

    #[test]
    fn blocking_policies_are_enabled_ones_with_controls() {
        let p = |state: &str, grant: Json| json!({"state": state, "grantControls": grant, "sessionControls": null});
        assert!(blocks_sign_in(&p(
            "enabled",
            json!({"builtInControls": ["mfa"]})
        )));
        assert!(blocks_sign_in(&p(
            "enabled",
            json!({"builtInControls": [], "authenticationStrength": {"id": "x"}})
        )));
        assert!(!blocks_sign_in(&p(
            "enabledForReportingButNotEnforced",
            json!({"builtInControls": ["block"]})
        )));
        assert!(!blocks_sign_in(&p(
            "enabled",
            json!({"builtInControls": []})
        )));
    }

    #[test]
    fn include_lists_decide_whether_a_policy_applies() {
        let p = |users: Json| json!({"conditions": {"users": users}});
        assert!(applies_to(
            &p(json!({"includeUsers": ["All"]})),
            "u",
            &[],
            false
        ));
        assert!(applies_to(
            &p(json!({"includeGroups": ["G1"]})),
            "u",
            &["g1".into()],
            false
        ));
        assert!(applies_to(
            &p(json!({"includeRoles": [GLOBAL_ADMINISTRATOR]})),
            "u",
            &[],
            true
        ));
        assert!(!applies_to(
            &p(json!({"includeRoles": [GLOBAL_ADMINISTRATOR]})),
            "u",
            &[],
            false
        ));
        assert!(!applies_to(
            &p(json!({"includeUsers": ["other"]})),
            "u",
            &[],
            false
        ));
    }
}
