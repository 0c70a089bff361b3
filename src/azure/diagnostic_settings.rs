//! Microsoft Entra (tenant-level) diagnostic settings: `/providers/microsoft.aadiam/
//! diagnosticSettings/{name}`, api-version 2017-04-01 (`azureactivedirectory.json`) — where the
//! tenant's sign-in and audit logs are exported. Plus the Azure role assignments that decide
//! who may manage them.
//!
//! Facts the resource needs, each from a document:
//! - At most five diagnostic settings per resource, here the tenant ("Azure Monitor service
//!   limits": a hard limit). The sixth PUT is refused with 400 `BadRequest`; the service's exact
//!   text is not documented, so [`is_diagnostic_setting_limit`] recognises the limit by its
//!   number as well as by the wording.
//! - A service principal needs an **Azure** role at `/providers/Microsoft.aadiam` (for example
//!   Contributor), not a subscription role and not an Entra directory role; otherwise ARM
//!   answers 403 `AuthorizationFailed` naming the action and scope (azurerm#12986, #18624;
//!   azure-rest-api-specs#11085 and its workaround comment; Azure/terraform-provider-azapi#247).
//!   [`authorization_failure`] takes the error apart so the diagnostic can say what is missing,
//!   and [`EntraDiagnosticSettings::role_assignments_of`] lets a resource check beforehand.
//! - `logs[].category` is an open enum ("modelAsString"): every Entra log category is
//!   accepted, not only the two the Swagger lists.

use serde_json::{json, Value as Json};

use crate::azure::arm::ArmClient;
use crate::azure::consistency::ConsistencyWait;
use crate::azure::error::AzureError;
use crate::azure::retry::Deadline;

pub const API_VERSION: &str = "2017-04-01";
/// The role-assignment API version (`authorization-RoleAssignmentsCalls.json`).
pub const ROLE_ASSIGNMENTS_API_VERSION: &str = "2022-04-01";
/// The scope the aadiam resource provider authorizes against.
pub const AADIAM_SCOPE: &str = "/providers/Microsoft.aadiam";
/// Azure Monitor's hard limit of diagnostic settings per resource.
pub const MAX_SETTINGS: usize = 5;
/// Built-in Contributor, the role the field threads assign at the aadiam scope.
pub const CONTRIBUTOR_ROLE_ID: &str = "b24988ac-6180-42a0-ab88-20f7382dd24c";

const SETTINGS: &str = "/providers/microsoft.aadiam/diagnosticSettings";

/// Escapes a setting name for the URL path (names may contain spaces: "Log to log analytics").
fn path_of(name: &str) -> String {
    let encoded: String = url::form_urlencoded::byte_serialize(name.as_bytes()).collect();
    // form encoding writes spaces as `+`, which a path does not decode.
    format!("{SETTINGS}/{}", encoded.replace('+', "%20"))
}

/// One exported category.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogCategory {
    pub category: String,
    pub enabled: bool,
}

/// A tenant diagnostic setting as ARM answers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiagnosticSetting {
    pub id: String,
    pub name: String,
    pub workspace_id: Option<String>,
    pub storage_account_id: Option<String>,
    pub event_hub_authorization_rule_id: Option<String>,
    pub event_hub_name: Option<String>,
    pub logs: Vec<LogCategory>,
}

fn non_empty(v: &Json) -> Option<String> {
    v.as_str().filter(|s| !s.is_empty()).map(str::to_owned)
}

impl DiagnosticSetting {
    pub fn from_json(v: &Json) -> DiagnosticSetting {
        let p = &v["properties"];
        DiagnosticSetting {
            id: v["id"].as_str().unwrap_or_default().to_owned(),
            name: v["name"].as_str().unwrap_or_default().to_owned(),
            workspace_id: non_empty(&p["workspaceId"]),
            storage_account_id: non_empty(&p["storageAccountId"]),
            event_hub_authorization_rule_id: non_empty(&p["eventHubAuthorizationRuleId"]),
            event_hub_name: non_empty(&p["eventHubName"]),
            logs: p["logs"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|l| LogCategory {
                    category: l["category"].as_str().unwrap_or_default().to_owned(),
                    enabled: l["enabled"].as_bool().unwrap_or(false),
                })
                .collect(),
        }
    }

    /// The categories exported (enabled), as named by the service.
    pub fn enabled_categories(&self) -> Vec<&str> {
        self.logs
            .iter()
            .filter(|l| l.enabled)
            .map(|l| l.category.as_str())
            .collect()
    }

    /// Whether the setting exports `category` to the workspace `workspace_id` (ids and
    /// categories compared case-insensitively, as ARM does).
    pub fn exports_to(&self, workspace_id: &str, category: &str) -> bool {
        self.workspace_id
            .as_deref()
            .is_some_and(|w| w.eq_ignore_ascii_case(workspace_id))
            && self
                .logs
                .iter()
                .any(|l| l.enabled && l.category.eq_ignore_ascii_case(category))
    }
}

/// What a PUT sends: a workspace destination and the categories to export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiagnosticSettingSpec {
    pub name: String,
    pub workspace_id: String,
    pub categories: Vec<String>,
}

impl DiagnosticSettingSpec {
    fn body(&self) -> Json {
        let logs: Vec<Json> = self
            .categories
            .iter()
            .map(|c| json!({"category": c, "enabled": true}))
            .collect();
        json!({"properties": {"workspaceId": self.workspace_id, "logs": logs}})
    }
}

/// An Azure role assignment (only what the resources read).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleAssignment {
    pub id: String,
    pub scope: String,
    /// The role definition's GUID.
    pub role_definition_id: String,
    pub principal_id: String,
}

impl RoleAssignment {
    fn from_json(v: &Json) -> RoleAssignment {
        let p = &v["properties"];
        let text = |k: &str| p[k].as_str().unwrap_or_default().to_owned();
        let role = text("roleDefinitionId");
        RoleAssignment {
            id: v["id"].as_str().unwrap_or_default().to_owned(),
            scope: text("scope"),
            role_definition_id: role.rsplit('/').next().unwrap_or_default().to_owned(),
            principal_id: text("principalId"),
        }
    }

    /// Whether the assignment applies at `/providers/Microsoft.aadiam` (there or at the root).
    pub fn reaches_aadiam(&self) -> bool {
        let scope = self.scope.trim_end_matches('/');
        scope.is_empty() || scope.eq_ignore_ascii_case(AADIAM_SCOPE)
    }
}

/// What ARM's 403 `AuthorizationFailed` says: who, which action, at which scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizationFailure {
    pub client: String,
    pub object_id: String,
    pub action: String,
    pub scope: String,
}

/// Reads ARM's 403 text: "The client '…' with object id '…' does not have authorization to
/// perform action '…' over scope '…' or the scope is invalid. …".
pub fn authorization_failure(e: &AzureError) -> Option<AuthorizationFailure> {
    let api = e.api().filter(|a| a.status == 403)?;
    if api.code.as_deref() != Some("AuthorizationFailed") {
        return None;
    }
    let message = api.message.as_deref()?;
    let after = |marker: &str| -> Option<String> {
        let rest = &message[message.find(marker)? + marker.len()..];
        Some(rest[..rest.find('\'')?].to_owned())
    };
    Some(AuthorizationFailure {
        client: after("The client '")?,
        object_id: after("with object id '").unwrap_or_default(),
        action: after("perform action '")?,
        scope: after("over scope '")?,
    })
}

/// 403 `AuthorizationFailed` on a `microsoft.aadiam` action: the principal lacks an Azure role
/// at `/providers/Microsoft.aadiam`.
pub fn is_aadiam_authorization_failed(e: &AzureError) -> bool {
    authorization_failure(e).is_some_and(|f| {
        f.action
            .to_ascii_lowercase()
            .starts_with("microsoft.aadiam/")
            || f.scope
                .to_ascii_lowercase()
                .starts_with(&AADIAM_SCOPE.to_ascii_lowercase())
    })
}

/// 400 because the tenant already has the maximum number of diagnostic settings.
pub fn is_diagnostic_setting_limit(e: &AzureError) -> bool {
    let Some(api) = e.api().filter(|a| a.status == 400) else {
        return false;
    };
    let message = api
        .message
        .as_deref()
        .unwrap_or_default()
        .to_ascii_lowercase();
    message.contains("diagnostic setting")
        && (message.contains(&format!("maximum of {MAX_SETTINGS}"))
            || message.contains("exceeds")
            || message.contains("limit"))
}

/// Typed calls on the tenant's diagnostic settings.
#[derive(Clone, Copy)]
pub struct EntraDiagnosticSettings<'a> {
    arm: &'a ArmClient,
}

impl<'a> EntraDiagnosticSettings<'a> {
    pub fn new(arm: &'a ArmClient) -> Self {
        EntraDiagnosticSettings { arm }
    }

    /// One setting by name; `None` when it does not exist (or has not replicated yet).
    pub async fn get(
        &self,
        name: &str,
        deadline: &Deadline,
    ) -> Result<Option<DiagnosticSetting>, AzureError> {
        Ok(self
            .arm
            .get_optional(&path_of(name), API_VERSION, deadline)
            .await?
            .as_ref()
            .map(DiagnosticSetting::from_json))
    }

    /// Every diagnostic setting of the tenant (those of other teams included).
    pub async fn list(&self, deadline: &Deadline) -> Result<Vec<DiagnosticSetting>, AzureError> {
        let items = self.arm.list_all(SETTINGS, API_VERSION, *deadline).await?;
        Ok(items.iter().map(DiagnosticSetting::from_json).collect())
    }

    /// Creates or replaces a setting (PUT answers 200 with the stored setting).
    pub async fn put(
        &self,
        spec: &DiagnosticSettingSpec,
        deadline: &Deadline,
    ) -> Result<DiagnosticSetting, AzureError> {
        let answer = self
            .arm
            .put(&path_of(&spec.name), API_VERSION, spec.body(), deadline)
            .await?;
        Ok(DiagnosticSetting::from_json(&answer))
    }

    /// `Ok(false)` when there was nothing to delete.
    pub async fn delete(&self, name: &str, deadline: &Deadline) -> Result<bool, AzureError> {
        self.arm.delete(&path_of(name), API_VERSION, deadline).await
    }

    /// Waits until reads see the setting (ARM reads can lag a fresh write).
    pub async fn wait_readable(
        &self,
        name: &str,
        deadline: &Deadline,
    ) -> Result<DiagnosticSetting, AzureError> {
        let found = ConsistencyWait::new(
            format!("diagnostic setting {name} to be readable"),
            *deadline,
        )
        .until(|| self.get(name, deadline), Option::is_some)
        .await?;
        found.ok_or_else(|| AzureError::InvalidResponse {
            service: crate::azure::Service::ResourceManager,
            method: "GET".into(),
            url: path_of(name),
            reason: "the diagnostic setting disappeared while waiting for it".into(),
        })
    }

    /// The categories the tenant offers (`diagnosticSettingsCategories`).
    pub async fn categories(&self, deadline: &Deadline) -> Result<Vec<String>, AzureError> {
        let items = self
            .arm
            .list_all(
                "/providers/microsoft.aadiam/diagnosticSettingsCategories",
                API_VERSION,
                *deadline,
            )
            .await?;
        Ok(items
            .iter()
            .filter_map(|c| c["name"].as_str().map(str::to_owned))
            .collect())
    }

    /// The Azure role assignments of `principal_id` at, above or below
    /// `/providers/Microsoft.aadiam` (needs `Microsoft.Authorization/roleAssignments/read`
    /// there, which Contributor and Reader have). Use [`RoleAssignment::reaches_aadiam`].
    pub async fn role_assignments_of(
        &self,
        principal_id: &str,
        deadline: &Deadline,
    ) -> Result<Vec<RoleAssignment>, AzureError> {
        let filter: String = url::form_urlencoded::byte_serialize(
            format!("principalId eq '{principal_id}'").as_bytes(),
        )
        .collect();
        let path = format!(
            "{AADIAM_SCOPE}/providers/Microsoft.Authorization/roleAssignments?$filter={}",
            filter.replace('+', "%20")
        );
        let items = self
            .arm
            .list_all(&path, ROLE_ASSIGNMENTS_API_VERSION, *deadline)
            .await?;
        Ok(items.iter().map(RoleAssignment::from_json).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::azure::error::{ApiError, Service};

    fn api(status: u16, body: Json) -> AzureError {
        ApiError::from_body(
            Service::ResourceManager,
            "PUT",
            "https://arm/x",
            status,
            Some(&body),
            None,
            None,
        )
        .into()
    }

    #[test]
    fn authorization_failures_are_taken_apart() {
        let e = api(
            403,
            json!({"error": {"code": "AuthorizationFailed", "message": "The client 'abc' with object id 'abc' does not have authorization to perform action 'microsoft.aadiam/diagnosticSettings/write' over scope '/providers/microsoft.aadiam/diagnosticSettings/Log to log analytics' or the scope is invalid. If access was recently granted, please refresh your credentials."}}),
        );
        let f = authorization_failure(&e).unwrap();
        assert_eq!(f.action, "microsoft.aadiam/diagnosticSettings/write");
        assert_eq!(
            f.scope,
            "/providers/microsoft.aadiam/diagnosticSettings/Log to log analytics"
        );
        assert_eq!(f.object_id, "abc");
        assert!(is_aadiam_authorization_failed(&e));
        let other = api(
            403,
            json!({"error": {"code": "AuthorizationFailed", "message": "The client 'abc' with object id 'abc' does not have authorization to perform action 'Microsoft.Insights/actionGroups/write' over scope '/subscriptions/s' or the scope is invalid."}}),
        );
        assert!(!is_aadiam_authorization_failed(&other));
        assert!(!is_aadiam_authorization_failed(&api(
            403,
            json!({"error": {"code": "Forbidden", "message": "x"}})
        )));
    }

    #[test]
    fn the_limit_is_recognised_by_its_number_or_wording() {
        let e = api(
            400,
            json!({"error": {"code": "BadRequest", "message": "Diagnostic settings count exceeds the maximum of 5: this tenant already has 5 diagnostic settings."}}),
        );
        assert!(is_diagnostic_setting_limit(&e));
        assert!(!is_diagnostic_setting_limit(&api(
            400,
            json!({"error": {"code": "BadRequest", "message": "Category 'X' is not supported."}})
        )));
    }

    #[test]
    fn names_are_escaped_in_the_path() {
        assert_eq!(
            path_of("Log to log analytics"),
            "/providers/microsoft.aadiam/diagnosticSettings/Log%20to%20log%20analytics"
        );
        assert_eq!(
            path_of("a/b?c"),
            "/providers/microsoft.aadiam/diagnosticSettings/a%2Fb%3Fc"
        );
    }
}
