//! Subscriptions (read-only) and resource groups (`Microsoft.Resources`).
//!
//! Resource group PUT answers 201 on create and 200 on update; PATCH (`ResourceGroups_Update`,
//! "if a field is unspecified, the current value is retained") changes tags and `managedBy`,
//! never the location; HEAD answers 204/404 with no body; DELETE removes the group and every resource in it (ARM deletes contained resources)
//! and answers 200 — the spec also allows 202 + polling, which this emulator never needs.

use axum::http::{Method, StatusCode};
use axum::response::IntoResponse;
use serde_json::{json, Map, Value};

use super::{
    json_body, json_response, list_response, method_not_allowed, required_location,
    resource_group_not_found, tags, ArmRequest, Reply, RgScope,
};
use crate::AppState;

/// Newest first. 2021-04-01 is the version the provider pins; the others are common in SDKs
/// (2025-04-01 is azure-mgmt-resource 26's default: `Microsoft.Resources/stable/2025-04-01`).
pub const API_VERSIONS: &[&str] = &[
    "2025-04-01",
    "2024-03-01",
    "2023-07-01",
    "2022-09-01",
    "2021-04-01",
    "2021-01-01",
    "2020-06-01",
    "2019-10-01",
];

/// `Microsoft.Resources` subscriptions (`Subscriptions_Get`, `Subscriptions_List`,
/// `Tenants_List`). 2016-06-01 is the oldest stable version and still the default of older
/// azure-mgmt-resource `SubscriptionClient`s; 2022-12-01 that of azure-mgmt-resource-subscriptions.
pub const SUBSCRIPTION_API_VERSIONS: &[&str] =
    &["2022-12-01", "2021-01-01", "2020-01-01", "2016-06-01"];

pub fn key(sub: &str, rg: &str) -> String {
    format!("{sub}/{rg}").to_ascii_lowercase()
}

/// A resource group as `GET` returns it.
pub fn resource(sub: &str, name: &str, location: &str, tags: Option<&Value>) -> Map<String, Value> {
    let value = json!({
        "id": format!("/subscriptions/{sub}/resourceGroups/{name}"),
        "name": name,
        "type": "Microsoft.Resources/resourceGroups",
        "location": normalize_location(location),
        "tags": tags.cloned().unwrap_or_else(|| json!({})),
        "properties": {"provisioningState": "Succeeded"},
    });
    match value {
        Value::Object(map) => map,
        _ => unreachable!("json! object literal"),
    }
}

/// ARM stores locations as lower-case names without spaces ("West Europe" → "westeurope").
pub fn normalize_location(location: &str) -> String {
    location
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_ascii_lowercase()
}

pub fn subscription(state: &AppState, req: &ArmRequest, sub: &str) -> Reply {
    if req.method != Method::GET {
        return Err(method_not_allowed(&req.method));
    }
    let tenant = state.tenant();
    let s = tenant
        .arm
        .subscription(sub)
        .ok_or_else(|| super::subscription_not_found(sub))?;
    Ok(json_response(
        StatusCode::OK,
        subscription_json(s, &tenant.tenant_id),
    ))
}

/// `GET /subscriptions`: every seeded subscription (the caller's token reaches all of them),
/// `{"value": [...]}` as `SubscriptionListResult` (no `nextLink`: one page).
pub fn subscriptions(state: &AppState, req: &ArmRequest) -> Reply {
    if req.method != Method::GET {
        return Err(method_not_allowed(&req.method));
    }
    let tenant = state.tenant();
    let items = tenant
        .arm
        .subscriptions
        .values()
        .map(|s| subscription_json(s, &tenant.tenant_id))
        .collect();
    Ok(list_response(items))
}

fn subscription_json(s: &super::Subscription, tenant_id: &str) -> Value {
    json!({
            "id": format!("/subscriptions/{}", s.id),
            "subscriptionId": s.id,
            "tenantId": tenant_id,
            "displayName": s.display_name,
            "state": "Enabled",
            "authorizationSource": "RoleBased",
            "managedByTenants": [],
            "subscriptionPolicies": {
                "locationPlacementId": "Public_2014-09-01",
                "quotaId": "PayAsYouGo_2014-09-01",
                "spendingLimit": "Off",
            },
    })
}

pub fn collection(state: &AppState, req: &ArmRequest, sub: &str) -> Reply {
    if req.method != Method::GET {
        return Err(method_not_allowed(&req.method));
    }
    let tenant = state.tenant();
    let prefix = format!("/subscriptions/{sub}/").to_ascii_lowercase();
    let items = tenant
        .arm
        .resource_groups
        .list(tenant.behaviour.arm_lag())
        .into_iter()
        .filter(|rg| {
            rg["id"]
                .as_str()
                .is_some_and(|id| id.to_ascii_lowercase().starts_with(&prefix))
        })
        .map(|rg| Value::Object(rg.clone()))
        .collect();
    Ok(list_response(items))
}

pub fn item(state: &AppState, req: &ArmRequest, scope: &RgScope) -> Reply {
    let key = key(&scope.subscription, &scope.resource_group);
    match req.method {
        Method::GET | Method::HEAD => {
            let tenant = state.tenant();
            let found = tenant
                .arm
                .resource_groups
                .get(&key, tenant.behaviour.arm_lag())
                .cloned();
            match (found, req.method == Method::HEAD) {
                (Some(_), true) => Ok(StatusCode::NO_CONTENT.into_response()),
                (None, true) => Err(StatusCode::NOT_FOUND.into_response()),
                (Some(rg), false) => Ok(json_response(StatusCode::OK, Value::Object(rg))),
                (None, false) => Err(resource_group_not_found(&scope.resource_group)),
            }
        }
        Method::PUT => {
            let body = json_body(req)?;
            let location = required_location(&body)?;
            let tags = tags(&body)?;
            let mut tenant = state.tenant();
            let sub = tenant
                .arm
                .subscription(&scope.subscription)
                .map(|s| s.id.clone())
                .unwrap_or_else(|| scope.subscription.clone());
            let existing = tenant.arm.resource_groups.get_latest(&key).cloned();
            let (status, resource) = match existing {
                Some(mut rg) => {
                    // A resource group's location is fixed at creation.
                    let current = rg["location"].as_str().unwrap_or_default().to_owned();
                    if current != normalize_location(&location) {
                        return Err(super::arm_error(
                            StatusCode::CONFLICT,
                            "InvalidResourceGroupLocation",
                            format!(
                                "Invalid resource group location '{}'. The Resource group already exists in location '{current}'.",
                                normalize_location(&location)
                            ),
                        ));
                    }
                    rg.insert("tags".into(), tags);
                    (StatusCode::OK, rg)
                }
                None => (
                    StatusCode::CREATED,
                    resource(&sub, &scope.resource_group, &location, Some(&tags)),
                ),
            };
            tenant.arm.resource_groups.put(&key, resource.clone());
            Ok(json_response(status, Value::Object(resource)))
        }
        Method::PATCH => {
            let body = json_body(req)?;
            if body.contains_key("location") {
                // `ResourceGroupPatchable` has no location: a group never moves.
                return Err(super::arm_error(
                    StatusCode::BAD_REQUEST,
                    "InvalidRequestContent",
                    "The request content was invalid and could not be deserialized: 'Could not find member 'location' on object of type 'ResourceGroupPatchable'.'.",
                ));
            }
            let mut tenant = state.tenant();
            let Some(mut rg) = tenant.arm.resource_groups.get_latest(&key).cloned() else {
                return Err(resource_group_not_found(&scope.resource_group));
            };
            if body.contains_key("tags") {
                rg.insert("tags".into(), tags(&body)?);
            }
            match body.get("managedBy") {
                Some(Value::String(m)) => {
                    rg.insert("managedBy".into(), Value::String(m.clone()));
                }
                Some(Value::Null) => {
                    rg.remove("managedBy");
                }
                _ => {}
            }
            tenant.arm.resource_groups.put(&key, rg.clone());
            Ok(json_response(StatusCode::OK, Value::Object(rg)))
        }
        Method::DELETE => {
            let mut tenant = state.tenant();
            if tenant.arm.resource_groups.remove(&key).is_none() {
                return Err(resource_group_not_found(&scope.resource_group));
            }
            delete_contained_resources(&mut tenant.arm, scope);
            Ok(StatusCode::OK.into_response())
        }
        _ => Err(method_not_allowed(&req.method)),
    }
}

/// Deleting a resource group deletes everything in it.
fn delete_contained_resources(arm: &mut super::ArmState, scope: &RgScope) {
    let in_group = |id: &super::ResourceId| {
        id.subscription.eq_ignore_ascii_case(&scope.subscription)
            && id
                .resource_group
                .eq_ignore_ascii_case(&scope.resource_group)
    };
    for collection in [
        &mut arm.workspaces,
        &mut arm.action_groups,
        &mut arm.scheduled_query_rules,
    ] {
        let doomed: Vec<String> = collection
            .list_latest()
            .into_iter()
            .filter_map(|r| r["id"].as_str().and_then(super::parse_resource_id))
            .filter(|id| in_group(id))
            .map(|id| super::scoped_key(scope, &id.name))
            .collect();
        for key in doomed {
            collection.remove(&key);
        }
    }
    let table_prefix = super::scoped_key(scope, "");
    arm.tables
        .retain(|workspace, _| !workspace.starts_with(&table_prefix));
}
