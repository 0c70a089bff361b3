//! `breakglass_entra_diagnostic_setting`: the tenant diagnostic setting that ships Entra's
//! sign-in and audit logs to Log Analytics (the resource description tells the story). Order
//! follows the trait: schema, plan, create, read, update, delete, import; `errors` holds the
//! diagnostics for the aadiam 403, the five-setting limit and duplicate exports.

mod errors;

use std::collections::BTreeSet;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::shared;
use crate::azure::diagnostic_settings::{
    is_diagnostic_setting_limit, DiagnosticSetting, DiagnosticSettingSpec, EntraDiagnosticSettings,
    MAX_SETTINGS,
};
use crate::azure::log_analytics::parse_workspace_id;
use crate::azure::{AzureClients, AzureError, Deadline};
use crate::framework::validators::{characters, each, not_blank, size_between};
use crate::framework::{
    Attribute, AttributePath, Diagnostic, Diagnostics, Failure, ModelPlan, ModelResource,
    Operation, Schema, Tf, TimeoutDefaults, Timeouts, Type, Value,
};
use errors::{
    aadiam_denied, duplicate_export, limit_reached, read_only_role, Principal, READ_ONLY_ROLES,
    WRITING_ROLES,
};

pub struct EntraDiagnosticSettingResource;

/// What the sign-in and tamper alerts read.
pub const DEFAULT_CATEGORIES: [&str; 3] =
    ["SignInLogs", "NonInteractiveUserSignInLogs", "AuditLogs"];

const TIMEOUTS: TimeoutDefaults = TimeoutDefaults {
    create: Duration::from_secs(5 * 60),
    read: Duration::from_secs(5 * 60),
    update: Duration::from_secs(5 * 60),
    delete: Duration::from_secs(5 * 60),
    includes: "retries and waiting for Azure Resource Manager's reads to see a write count \
               towards it",
};
/// Plan-time checks should not hold a plan up for long.
const PLAN_CHECK_TIMEOUT: Duration = Duration::from_secs(60);

/// Config, plan and state of a `breakglass_entra_diagnostic_setting`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DiagnosticSettingModel {
    id: Tf<String>,
    name: Tf<String>,
    workspace_id: Tf<String>,
    categories: Tf<BTreeSet<String>>,
    timeouts: Tf<Timeouts>,
}

fn setting_schema() -> Schema {
    Schema {
        description: include_str!("description.md").trim_end().to_owned(),
        attributes: vec![
            Attribute::computed(
                "id",
                Type::String,
                "The setting's ARM id, `/providers/microsoft.aadiam/diagnosticSettings/<name>`.",
            )
            .use_state_for_unknown(),
            Attribute::required(
                "name",
                Type::String,
                "The setting's name, unique in the tenant (e.g. `breakglass-monitoring`). Also \
                 the import id.",
            )
            .validate(not_blank().summary("Invalid setting name"))
            .case_insensitive()
            .requires_replace(),
            Attribute::required(
                "workspace_id",
                Type::String,
                "Resource id of the Log Analytics workspace the logs go to \
                 (`/subscriptions/<id>/resourceGroups/<group>/providers/\
                 Microsoft.OperationalInsights/workspaces/<name>`). Changing it moves the \
                 export in place.",
            )
            .validate(shared::arm_id_rule(
                "a Log Analytics workspace",
                parse_workspace_id,
            ))
            .case_insensitive(),
            Attribute::optional(
                "categories",
                Type::set(Type::String),
                "Entra log categories to export. Defaults to `SignInLogs`, \
                 `NonInteractiveUserSignInLogs` and `AuditLogs`, which the sign-in and tamper \
                 alerts read; any category the tenant offers is accepted (the plan checks them \
                 against the tenant's list).",
            )
            .default(Value::string_set(DEFAULT_CATEGORIES))
            .validate(size_between(1, 64).summary("No category to export"))
            .validate(each(
                characters(
                    "letters and digits (a category name such as `AuditLogs`)",
                    |c| c.is_ascii_alphanumeric(),
                )
                .summary("Invalid category"),
            ))
            .case_insensitive(),
        ],
        blocks: vec![TIMEOUTS.block()],
        ..Schema::default()
    }
}

#[async_trait]
impl ModelResource<AzureClients> for EntraDiagnosticSettingResource {
    type Model = DiagnosticSettingModel;

    fn type_name(&self) -> &'static str {
        "breakglass_entra_diagnostic_setting"
    }

    fn schema(&self) -> Schema {
        setting_schema()
    }

    async fn modify_plan(&self, plan: &mut ModelPlan<'_, DiagnosticSettingModel, AzureClients>) {
        let Some(clients) = plan.data else {
            return;
        };
        let planned = &plan.planned;
        let writes = plan.prior.as_ref() != Some(planned);
        let checks = plan_checks(clients, planned, writes).await;
        plan.diagnostics.extend(checks);
    }

    async fn create(
        &self,
        clients: &AzureClients,
        _config: DiagnosticSettingModel,
        planned: DiagnosticSettingModel,
    ) -> Result<DiagnosticSettingModel, Failure> {
        let deadline = shared::deadline(&TIMEOUTS, &planned.timeouts, Operation::Create)?;
        write(clients, &planned, &deadline).await
    }

    async fn read(
        &self,
        clients: &AzureClients,
        state: DiagnosticSettingModel,
    ) -> Result<Option<DiagnosticSettingModel>, Diagnostics> {
        let deadline = shared::deadline(&TIMEOUTS, &state.timeouts, Operation::Read)?;
        let name = state.name.required("name")?;
        // The tenant holds at most five settings: the listing reads this one and is the same
        // answer the plan check (limits, duplicate exports) and the posture data source need.
        let settings = EntraDiagnosticSettings::new(&clients.cached.arm);
        match settings.list(&deadline).await {
            Ok(all) => Ok(all
                .iter()
                .find(|s| s.name.eq_ignore_ascii_case(&name))
                .map(|s| observed(s, &state))),
            Err(e) => Err(arm_diagnostic(clients, e, &deadline).await.into()),
        }
    }

    async fn update(
        &self,
        clients: &AzureClients,
        _config: DiagnosticSettingModel,
        _prior: DiagnosticSettingModel,
        planned: DiagnosticSettingModel,
    ) -> Result<DiagnosticSettingModel, Failure> {
        let deadline = shared::deadline(&TIMEOUTS, &planned.timeouts, Operation::Update)?;
        write(clients, &planned, &deadline).await
    }

    async fn delete(
        &self,
        clients: &AzureClients,
        prior: DiagnosticSettingModel,
    ) -> Result<(), Failure> {
        let deadline = shared::deadline(&TIMEOUTS, &prior.timeouts, Operation::Delete)?;
        let name = prior.name.required("name")?;
        match EntraDiagnosticSettings::new(&clients.arm)
            .delete(&name, &deadline)
            .await
        {
            Ok(_) => Ok(()),
            Err(e) => Err(arm_diagnostic(clients, e, &deadline).await.into()),
        }
    }

    async fn import(
        &self,
        clients: &AzureClients,
        id: &str,
    ) -> Result<DiagnosticSettingModel, Diagnostics> {
        let name = import_name(id)?;
        let deadline = Deadline::after(TIMEOUTS.read);
        let settings = EntraDiagnosticSettings::new(&clients.arm);
        let found = match settings.get(&name, &deadline).await {
            Ok(found) => found,
            Err(e) => return Err(arm_diagnostic(clients, e, &deadline).await.into()),
        };
        let setting = found.ok_or_else(|| {
            Diagnostic::error(
                "No such diagnostic setting",
                format!(
                    "The tenant has no Entra diagnostic setting named {name:?}. The names \
                     that exist are listed at /providers/microsoft.aadiam/diagnosticSettings."
                ),
            )
        })?;
        Ok(observed(&setting, &DiagnosticSettingModel::default()))
    }
}

// ---- helpers ------------------------------------------------------------------------------

/// State for `setting` as the tenant reports it (`base` supplies what the tenant does not).
fn observed(setting: &DiagnosticSetting, base: &DiagnosticSettingModel) -> DiagnosticSettingModel {
    DiagnosticSettingModel {
        id: Tf::Known(setting.id.clone()),
        name: Tf::Known(setting.name.clone()),
        workspace_id: setting.workspace_id.clone().into(),
        categories: Tf::Known(
            setting
                .enabled_categories()
                .into_iter()
                .map(str::to_owned)
                .collect(),
        ),
        timeouts: base.timeouts.clone(),
    }
}

/// PUT the setting as planned, then wait until reads see it.
async fn write(
    clients: &AzureClients,
    planned: &DiagnosticSettingModel,
    deadline: &Deadline,
) -> Result<DiagnosticSettingModel, Failure> {
    let spec = DiagnosticSettingSpec {
        name: planned.name.required("name")?,
        workspace_id: planned.workspace_id.required("workspace_id")?,
        categories: planned
            .categories
            .get()
            .map(|c| c.iter().cloned().collect())
            .unwrap_or_else(|| DEFAULT_CATEGORIES.map(str::to_owned).to_vec()),
    };
    let settings = EntraDiagnosticSettings::new(&clients.arm);
    if let Err(e) = settings.put(&spec, deadline).await {
        if is_diagnostic_setting_limit(&e) {
            let existing = settings.list(deadline).await.unwrap_or_default();
            let mut d = limit_reached(&existing, &spec.name);
            d.detail
                .push_str(&format!("\n\nAzure Resource Manager answered: {e}"));
            return Err(d.into());
        }
        return Err(arm_diagnostic(clients, e, deadline).await.into());
    }
    match settings.wait_readable(&spec.name, deadline).await {
        Ok(stored) => Ok(observed(&stored, planned)),
        // The PUT was accepted: the setting is what was planned; the next refresh reads it.
        Err(e) => Err(Failure::new(Diagnostic::error(
            "Diagnostic setting written but not yet readable",
            format!(
                "Azure Resource Manager accepted the diagnostic setting {:?} but did not return \
                 it in time: {e}. It is recorded in state; the next plan refreshes it.",
                spec.name
            ),
        ))
        .with_model(planned)),
    }
}

/// An ARM error as a diagnostic: the missing aadiam role spelled out, anything else as is.
async fn arm_diagnostic(clients: &AzureClients, e: AzureError, deadline: &Deadline) -> Diagnostic {
    let object_id = shared::arm_caller_object_id(clients, deadline)
        .await
        .unwrap_or_default();
    let principal = Principal {
        object_id: &object_id,
        method: clients.auth_method(),
    };
    aadiam_denied(&e, &principal).unwrap_or_else(|| Diagnostic::from(e))
}

/// What the plan can tell before anything is written: the caller's role at the aadiam scope,
/// the five-setting limit, the tenant's categories, and duplicate exports.
async fn plan_checks(
    clients: &AzureClients,
    planned: &DiagnosticSettingModel,
    writes: bool,
) -> Diagnostics {
    let deadline = Deadline::after(PLAN_CHECK_TIMEOUT);
    let mut found = Diagnostics::new();
    let settings = EntraDiagnosticSettings::new(&clients.cached.arm);
    // The three reads are independent: they go out together. The tenant accepted these
    // categories when the setting was written; only a write needs them checked against its
    // list again, and the caller's roles only matter for a write.
    let (existing, read_only, offered) = futures::join!(
        settings.list(&deadline),
        async {
            match writes {
                true => read_only_roles(clients, &deadline).await,
                false => None,
            }
        },
        async {
            match writes && planned.categories.get().is_some() {
                true => settings.categories(&deadline).await.ok(),
                false => None,
            }
        },
    );
    // Listing needs microsoft.aadiam/diagnosticSettings/read: a 403 here means the principal
    // has no role at the scope at all. Any other failure (no token in time, the service
    // unreachable) only means the plan could not check: a warning, and the apply reports
    // what the tenant says.
    let existing = match existing {
        Ok(existing) => existing,
        Err(e) if e.status() == Some(403) => {
            found.push(arm_diagnostic(clients, e, &deadline).await);
            return found;
        }
        Err(e) => {
            found.push(Diagnostic::warning(
                "Diagnostic settings not checked",
                format!(
                    "The tenant's diagnostic settings could not be listed before applying, so                      the plan cannot tell whether the five-setting limit or a duplicate export                      stands in the way: {e}"
                ),
            ));
            return found;
        }
    };
    if let Some(d) = read_only {
        found.push(d);
    }
    let Some(name) = planned.name.get() else {
        return found;
    };
    let others: Vec<&DiagnosticSetting> = existing
        .iter()
        .filter(|s| !s.name.eq_ignore_ascii_case(name))
        .collect();
    if others.len() == existing.len() && existing.len() >= MAX_SETTINGS {
        found.push(limit_reached(&existing, name));
    }
    let Some(categories) = planned.categories.get() else {
        return found;
    };
    if let Some(offered) = offered {
        let unknown: Vec<&String> = categories
            .iter()
            .filter(|c| !offered.iter().any(|o| o.eq_ignore_ascii_case(c)))
            .collect();
        if !unknown.is_empty() {
            found.push(
                Diagnostic::error(
                    "Unknown log category",
                    format!(
                        "The tenant offers no log category {}. It offers: {}.",
                        unknown
                            .iter()
                            .map(|c| format!("{c:?}"))
                            .collect::<Vec<_>>()
                            .join(", "),
                        offered.join(", ")
                    ),
                )
                .at(AttributePath::root("categories")),
            );
        }
    }
    if let Some(workspace) = planned.workspace_id.get() {
        for other in others {
            let shared: Vec<String> = categories
                .iter()
                .filter(|c| other.exports_to(workspace, c))
                .cloned()
                .collect();
            if !shared.is_empty() {
                found.push(duplicate_export(other, &shared));
            }
        }
    }
    found
}

/// An error when every role the caller holds at (or above) the aadiam scope is one that can
/// only read. Unknown (custom) roles may grant the write, so they pass; a listing we may not
/// read decides nothing.
async fn read_only_roles(clients: &AzureClients, deadline: &Deadline) -> Option<Diagnostic> {
    let object_id = shared::arm_caller_object_id(clients, deadline).await.ok()?;
    let assignments = EntraDiagnosticSettings::new(&clients.cached.arm)
        .role_assignments_of(&object_id, deadline)
        .await
        .ok()?;
    let reaching: Vec<&str> = assignments
        .iter()
        .filter(|a| a.reaches_aadiam())
        .map(|a| a.role_definition_id.as_str())
        .collect();
    let named = |table: &[(&str, &'static str)], id: &str| {
        table
            .iter()
            .find(|(r, _)| r.eq_ignore_ascii_case(id))
            .map(|(_, n)| *n)
    };
    if reaching.is_empty() || reaching.iter().any(|r| named(WRITING_ROLES, r).is_some()) {
        return None;
    }
    let read_only: Option<BTreeSet<&str>> =
        reaching.iter().map(|r| named(READ_ONLY_ROLES, r)).collect();
    let roles: Vec<&str> = read_only?.into_iter().collect();
    let principal = Principal {
        object_id: &object_id,
        method: clients.auth_method(),
    };
    Some(read_only_role(&principal, &roles))
}

/// The setting name of an import id: the name itself, or the setting's full ARM id.
fn import_name(id: &str) -> Result<String, Diagnostic> {
    let id = id.trim();
    const PREFIX: &str = "/providers/microsoft.aadiam/diagnosticsettings/";
    let name = match id.get(..PREFIX.len()) {
        Some(head) if head.eq_ignore_ascii_case(PREFIX) => &id[PREFIX.len()..],
        _ => id,
    };
    if name.trim().is_empty() || name.contains('/') {
        return Err(Diagnostic::error(
            "Invalid import id",
            format!(
                "Expected the diagnostic setting's name (or its id \
                 /providers/microsoft.aadiam/diagnosticSettings/<name>); got {id:?}."
            ),
        ));
    }
    Ok(name.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framework::model::field_names;
    use crate::framework::{typed, Severity};
    use crate::protocol::testing;
    use crate::protocol::validate::declared_validators;

    fn config(attrs: &[(&str, Value)]) -> Value {
        testing::config(&setting_schema(), attrs)
    }

    const WORKSPACE: &str = "/subscriptions/eeb0c733-9a1c-437b-b310-e18599b1b281/resourceGroups/rg/providers/Microsoft.OperationalInsights/workspaces/law";

    #[test]
    fn model_and_schema_have_the_same_fields() {
        assert_eq!(
            field_names::<DiagnosticSettingModel>(),
            setting_schema().field_names()
        );
    }

    #[test]
    fn bad_input_is_a_diagnostic_on_its_attribute() {
        let errors = |cfg: &Value| -> Vec<(String, String)> {
            declared_validators(&setting_schema(), cfg)
                .iter()
                .filter(|d| d.severity == Severity::Error)
                .map(|d| (d.path.as_ref().unwrap().to_string(), d.detail.clone()))
                .collect()
        };
        let ok = config(&[("name", "bg".into()), ("workspace_id", WORKSPACE.into())]);
        assert!(errors(&ok).is_empty());
        let found = errors(&config(&[
            ("name", "bg".into()),
            ("workspace_id", "law-breakglass".into()),
        ]));
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].0, "workspace_id");
        assert!(
            found[0].1.contains("Log Analytics workspace"),
            "{}",
            found[0].1
        );
        let found = errors(&config(&[
            ("name", " ".into()),
            ("workspace_id", WORKSPACE.into()),
            ("categories", Value::string_set(["Sign In Logs"])),
        ]));
        let paths: Vec<&str> = found.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(paths, ["name", "categories"]);
    }

    #[tokio::test]
    async fn categories_default_to_what_the_alerts_read() {
        let cfg = config(&[("name", "bg".into()), ("workspace_id", WORKSPACE.into())]);
        let change =
            testing::plan(&*typed(EntraDiagnosticSettingResource), &cfg, &Value::Null).await;
        assert!(change.diagnostics.is_empty(), "{:?}", change.diagnostics);
        assert_eq!(
            change.planned.get("categories"),
            Value::string_set(DEFAULT_CATEGORIES)
        );
        assert_eq!(change.planned.get("id"), Value::Unknown);
    }

    #[test]
    fn import_ids_are_names_or_full_ids() {
        assert_eq!(import_name("Log to law").unwrap(), "Log to law");
        assert_eq!(
            import_name("/providers/Microsoft.AADIAM/diagnosticSettings/bg").unwrap(),
            "bg"
        );
        for bad in [
            "",
            "  ",
            "/providers/microsoft.aadiam/diagnosticSettings/",
            "a/b",
        ] {
            assert_eq!(import_name(bad).unwrap_err().summary, "Invalid import id");
        }
    }
}
