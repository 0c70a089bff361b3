//! Tenant-level diagnostic settings (`/providers/microsoft.aadiam/diagnosticSettings`,
//! api-version 2017-04-01): where Entra ID sends its audit and sign-in logs.
//!
//! Shapes follow `azureactivedirectory.json` (2017-04-01). Limits and quirks: at most five
//! settings per tenant (Azure Monitor's documented hard limit for diagnostic settings); the
//! `logs[].category` enum is "modelAsString", so the service accepts every Entra log category,
//! not just the two the Swagger lists; an empty `workspaceId` means "no workspace" (the
//! service's own example sends `""`).

use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Map, Value};

use super::{
    arm_error, invalid_request_content, json_body, json_response, list_response,
    method_not_allowed, ArmRequest, Reply,
};
use crate::error::ArmError;
use crate::AppState;

/// The 2017-04-01-preview spelling appears in the service's own list example.
pub const API_VERSIONS: &[&str] = &["2017-04-01", "2017-04-01-preview"];

/// Azure Monitor allows at most five diagnostic settings per resource (the tenant, here).
pub const MAX_SETTINGS: usize = 5;

const RESOURCE_TYPE: &str = "microsoft.aadiam/diagnosticSettings";

/// Entra log categories and the Log Analytics table each one lands in.
use super::monitor::CATEGORY_TABLES as CATEGORIES;

pub fn key(name: &str) -> String {
    name.to_ascii_lowercase()
}

/// Whether a stored setting exports `category` (enabled) to a workspace.
pub fn exports(setting: &Map<String, Value>, category: &str) -> bool {
    setting["properties"]["logs"]
        .as_array()
        .is_some_and(|logs| {
            logs.iter().any(|log| {
                log["enabled"] == json!(true)
                    && log["category"]
                        .as_str()
                        .is_some_and(|c| c.eq_ignore_ascii_case(category))
            })
        })
}

fn not_found(name: &str) -> Response {
    ArmError::resource_not_found(RESOURCE_TYPE, name, None).into_response()
}

fn bad_request(message: impl Into<String>) -> Response {
    arm_error(StatusCode::BAD_REQUEST, "BadRequest", message)
}

pub fn collection(state: &AppState, req: &ArmRequest) -> Reply {
    if req.method != Method::GET {
        return Err(method_not_allowed(&req.method));
    }
    let tenant = state.tenant();
    let items = tenant
        .arm
        .diagnostic_settings
        .list(tenant.behaviour.arm_lag())
        .into_iter()
        .map(|s| Value::Object(s.clone()))
        .collect();
    Ok(list_response(items))
}

pub fn categories(req: &ArmRequest) -> Reply {
    if req.method != Method::GET {
        return Err(method_not_allowed(&req.method));
    }
    let items = CATEGORIES
        .iter()
        .map(|(name, _)| {
            json!({
                "id": format!("/providers/microsoft.aadiam/diagnosticSettingsCategories/{name}"),
                "name": name,
                "type": "microsoft.aadiam/diagnosticSettingsCategories",
                "properties": {"categoryType": "Logs"},
            })
        })
        .collect();
    Ok(list_response(items))
}

pub fn item(state: &AppState, req: &ArmRequest, name: &str) -> Reply {
    let key = key(name);
    match req.method {
        Method::GET => {
            let tenant = state.tenant();
            tenant
                .arm
                .diagnostic_settings
                .get(&key, tenant.behaviour.arm_lag())
                .map(|s| json_response(StatusCode::OK, Value::Object(s.clone())))
                .ok_or_else(|| not_found(name))
        }
        Method::PUT => {
            let body = json_body(req)?;
            let Some(input) = body.get("properties").and_then(Value::as_object) else {
                return Err(invalid_request_content(
                    "Required property 'properties' not found in JSON",
                ));
            };
            let properties = validated_properties(input)?;
            let mut tenant = state.tenant();
            let arm = &mut tenant.arm;
            if let Some(ws) = non_empty(&properties, "workspaceId") {
                if super::workspaces::workspace_key_for_id(arm, ws).is_none() {
                    return Err(bad_request(format!(
                        "Resource '{ws}' of type 'Microsoft.OperationalInsights/workspaces' was not found. A diagnostic setting can only send logs to an existing Log Analytics workspace."
                    )));
                }
            }
            let existing = arm.diagnostic_settings.get_latest(&key).cloned();
            if existing.is_none() && arm.diagnostic_settings.len_latest() >= MAX_SETTINGS {
                return Err(bad_request(format!(
                    "Diagnostic settings count exceeds the maximum of {MAX_SETTINGS}: this tenant already has {MAX_SETTINGS} diagnostic settings. Delete one, or add categories and destinations to an existing setting."
                )));
            }
            // The name keeps the casing it was created with.
            let name = existing
                .as_ref()
                .and_then(|s| s["name"].as_str())
                .unwrap_or(name)
                .to_owned();
            let setting = json!({
                "id": format!("/providers/microsoft.aadiam/diagnosticSettings/{name}"),
                "name": name,
                "type": RESOURCE_TYPE,
                "properties": properties,
            });
            let Value::Object(setting) = setting else {
                unreachable!("json! object literal")
            };
            arm.diagnostic_settings.put(&key, setting.clone());
            Ok(json_response(StatusCode::OK, Value::Object(setting)))
        }
        Method::DELETE => {
            let mut tenant = state.tenant();
            match tenant.arm.diagnostic_settings.remove(&key) {
                Some(_) => Ok(StatusCode::OK.into_response()),
                None => Ok(StatusCode::NO_CONTENT.into_response()),
            }
        }
        _ => Err(method_not_allowed(&req.method)),
    }
}

fn non_empty<'a>(properties: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    properties
        .get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

/// Checks a PUT's `properties` and returns them as the service stores them.
fn validated_properties(input: &Map<String, Value>) -> Result<Map<String, Value>, Response> {
    let mut properties = Map::new();
    for key in [
        "storageAccountId",
        "workspaceId",
        "eventHubAuthorizationRuleId",
        "eventHubName",
        "serviceBusRuleId",
    ] {
        match input.get(key) {
            None | Some(Value::Null) => {}
            Some(Value::String(s)) => {
                if key != "eventHubName" && !s.is_empty() && !is_resource_id(s) {
                    return Err(arm_error(
                        StatusCode::BAD_REQUEST,
                        "LinkedInvalidPropertyId",
                        format!("Property id '{s}' at path 'properties.{key}' is invalid. Expect fully qualified resource Id that start with '/subscriptions/{{subscriptionId}}' or '/providers/{{resourceProviderNamespace}}/'."),
                    ));
                }
                properties.insert(key.to_owned(), Value::String(s.clone()));
            }
            Some(_) => {
                return Err(invalid_request_content(&format!(
                    "Property 'properties.{key}' must be a string"
                )))
            }
        }
    }
    if [
        "workspaceId",
        "storageAccountId",
        "eventHubAuthorizationRuleId",
        "serviceBusRuleId",
    ]
    .iter()
    .all(|k| non_empty(&properties, k).is_none())
    {
        return Err(bad_request(
            "A diagnostic setting needs at least one destination: set workspaceId, storageAccountId or eventHubAuthorizationRuleId.",
        ));
    }
    let logs = match input.get("logs") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(logs)) => logs.clone(),
        Some(_) => {
            return Err(invalid_request_content(
                "Property 'properties.logs' must be an array",
            ))
        }
    };
    let mut seen: Vec<String> = Vec::new();
    let mut normalized = Vec::new();
    for (i, log) in logs.iter().enumerate() {
        let category = log["category"].as_str().unwrap_or_default();
        if !CATEGORIES
            .iter()
            .any(|(c, _)| c.eq_ignore_ascii_case(category))
        {
            return Err(bad_request(format!(
                "Category '{category}' at 'properties.logs[{i}]' is not supported. Supported categories are: {}.",
                CATEGORIES.iter().map(|(c, _)| *c).collect::<Vec<_>>().join(", ")
            )));
        }
        if seen.iter().any(|s| s.eq_ignore_ascii_case(category)) {
            return Err(bad_request(format!(
                "Category '{category}' appears more than once in 'properties.logs'."
            )));
        }
        seen.push(category.to_owned());
        let Some(enabled) = log["enabled"].as_bool() else {
            return Err(invalid_request_content(&format!(
                "Required property 'enabled' not found in 'properties.logs[{i}]'"
            )));
        };
        let retention = match log.get("retentionPolicy") {
            None | Some(Value::Null) => json!({"enabled": false, "days": 0}),
            Some(policy) => match (policy["enabled"].as_bool(), policy["days"].as_u64()) {
                (Some(enabled), Some(days)) => json!({"enabled": enabled, "days": days}),
                _ => {
                    return Err(invalid_request_content(&format!(
                        "'properties.logs[{i}].retentionPolicy' needs 'enabled' (boolean) and 'days' (integer, 0 or more)"
                    )))
                }
            },
        };
        normalized.push(json!({
            "category": category,
            "enabled": enabled,
            "retentionPolicy": retention,
        }));
    }
    properties.insert("logs".into(), Value::Array(normalized));
    Ok(properties)
}

fn is_resource_id(s: &str) -> bool {
    let lower = s.to_ascii_lowercase();
    lower.starts_with("/subscriptions/") || lower.starts_with("/providers/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn categories_map_to_their_tables() {
        use super::super::monitor::table_for;
        assert_eq!(table_for("SignInLogs"), Some("SigninLogs"));
        assert_eq!(
            table_for("noninteractiveusersigninlogs"),
            Some("AADNonInteractiveUserSignInLogs")
        );
        assert_eq!(table_for("AuditLogs"), Some("AuditLogs"));
        assert_eq!(table_for("Nope"), None);
    }

    #[test]
    fn properties_need_a_destination_and_known_categories() {
        let no_destination = json!({"logs": [{"category": "AuditLogs", "enabled": true}]});
        assert!(validated_properties(no_destination.as_object().unwrap()).is_err());
        let unknown = json!({"workspaceId": "/subscriptions/x/resourceGroups/r/providers/Microsoft.OperationalInsights/workspaces/w",
                             "logs": [{"category": "Nope", "enabled": true}]});
        assert!(validated_properties(unknown.as_object().unwrap()).is_err());
        let ok = json!({"workspaceId": "/subscriptions/x/resourceGroups/r/providers/Microsoft.OperationalInsights/workspaces/w",
                        "logs": [{"category": "SignInLogs", "enabled": true}]});
        let props = validated_properties(ok.as_object().unwrap()).unwrap();
        assert_eq!(
            props["logs"][0]["retentionPolicy"],
            json!({"enabled": false, "days": 0})
        );
    }
}
