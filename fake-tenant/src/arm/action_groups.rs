//! Action groups (`Microsoft.Insights/actionGroups`, api-version 2023-01-01; 2021-09-01 has the
//! same shape and is accepted): who is notified when an alert fires.
//!
//! Shapes follow `actionGroups_API.json` (2023-01-01). The resource provider's errors are a
//! top-level `{"code","message"}` (the Swagger's `ErrorResponse`), unlike ARM front-door errors.
//! Rules enforced like the service: `location` is `Global` (or one of the regions that host
//! regional action groups), `groupShortName` at most 12 characters, each receiver kind's
//! required properties, receiver names unique within the group, plausible email addresses,
//! numeric phone numbers and absolute http(s) webhook URIs.

use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Map, Value};

use super::{
    as_stored, get_reply, json_body, json_response, list_reply, method_not_allowed,
    required_location, scoped_key, tags, ArmRequest, ListScope, Reply, RgScope,
};
use crate::AppState;

pub const API_VERSIONS: &[&str] = &["2023-01-01", "2021-09-01"];

/// Documented maximum length of `groupShortName` (it prefixes SMS and email subjects).
const MAX_SHORT_NAME: usize = 12;

/// Locations accepted for action groups: the global service plus the regions that host
/// regional action groups.
const LOCATIONS: &[&str] = &[
    "global",
    "swedencentral",
    "germanywestcentral",
    "northcentralus",
    "southcentralus",
    "centralindia",
    "italynorth",
];

/// A receiver kind: its property name, the members it requires (every kind but automation
/// runbooks requires the unique `name`), and every member it declares. Members the provider
/// does not declare are ignored, as ARM resource providers do.
struct ReceiverKind {
    list: &'static str,
    required: &'static [&'static str],
    declared: &'static [&'static str],
}

const RECEIVER_KINDS: &[ReceiverKind] = &[
    ReceiverKind {
        list: "emailReceivers",
        required: &["name", "emailAddress"],
        declared: &["name", "emailAddress", "useCommonAlertSchema"],
    },
    ReceiverKind {
        list: "smsReceivers",
        required: &["name", "countryCode", "phoneNumber"],
        declared: &["name", "countryCode", "phoneNumber"],
    },
    ReceiverKind {
        list: "webhookReceivers",
        required: &["name", "serviceUri"],
        declared: &[
            "name",
            "serviceUri",
            "useCommonAlertSchema",
            "useAadAuth",
            "objectId",
            "identifierUri",
            "tenantId",
        ],
    },
    ReceiverKind {
        list: "itsmReceivers",
        required: &[
            "name",
            "workspaceId",
            "connectionId",
            "ticketConfiguration",
            "region",
        ],
        declared: &[
            "name",
            "workspaceId",
            "connectionId",
            "ticketConfiguration",
            "region",
        ],
    },
    ReceiverKind {
        list: "azureAppPushReceivers",
        required: &["name", "emailAddress"],
        declared: &["name", "emailAddress"],
    },
    ReceiverKind {
        list: "automationRunbookReceivers",
        required: &[
            "automationAccountId",
            "runbookName",
            "webhookResourceId",
            "isGlobalRunbook",
        ],
        declared: &[
            "automationAccountId",
            "runbookName",
            "webhookResourceId",
            "isGlobalRunbook",
            "name",
            "serviceUri",
            "useCommonAlertSchema",
        ],
    },
    ReceiverKind {
        list: "voiceReceivers",
        required: &["name", "countryCode", "phoneNumber"],
        declared: &["name", "countryCode", "phoneNumber"],
    },
    ReceiverKind {
        list: "logicAppReceivers",
        required: &["name", "resourceId", "callbackUrl"],
        declared: &["name", "resourceId", "callbackUrl", "useCommonAlertSchema"],
    },
    ReceiverKind {
        list: "azureFunctionReceivers",
        required: &[
            "name",
            "functionAppResourceId",
            "functionName",
            "httpTriggerUrl",
        ],
        declared: &[
            "name",
            "functionAppResourceId",
            "functionName",
            "httpTriggerUrl",
            "useCommonAlertSchema",
        ],
    },
    ReceiverKind {
        list: "armRoleReceivers",
        required: &["name", "roleId"],
        declared: &["name", "roleId", "useCommonAlertSchema"],
    },
    ReceiverKind {
        list: "eventHubReceivers",
        required: &[
            "name",
            "eventHubNameSpace",
            "eventHubName",
            "subscriptionId",
        ],
        declared: &[
            "name",
            "eventHubNameSpace",
            "eventHubName",
            "subscriptionId",
            "tenantId",
            "useCommonAlertSchema",
        ],
    },
];

/// Receiver kinds with a `useCommonAlertSchema` flag (defaults to false).
const COMMON_SCHEMA_KINDS: &[&str] = &[
    "emailReceivers",
    "webhookReceivers",
    "automationRunbookReceivers",
    "logicAppReceivers",
    "azureFunctionReceivers",
    "armRoleReceivers",
    "eventHubReceivers",
];

/// Receiver kinds whose entries carry a read-only subscription `status`.
const STATUS_KINDS: &[&str] = &["emailReceivers", "smsReceivers"];

/// The canonical id the service reports (note the lower-case provider namespace).
pub fn action_group_id(sub: &str, rg: &str, name: &str) -> String {
    format!(
        "/subscriptions/{sub}/resourceGroups/{rg}/providers/microsoft.insights/actionGroups/{name}"
    )
}

/// An error from the action group resource provider: top-level `{"code","message"}`.
fn rp_error(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    (
        status,
        Json(json!({"code": code, "message": message.into()})),
    )
        .into_response()
}

/// A body the resource provider cannot use, in the provider's error shape.
fn invalid_content(detail: &str) -> Response {
    rp_error(
        StatusCode::BAD_REQUEST,
        "InvalidRequestContent",
        format!("The request content was invalid and could not be deserialized: '{detail}'."),
    )
}

fn not_found(scope: &RgScope, name: &str) -> Response {
    rp_error(
        StatusCode::NOT_FOUND,
        "ResourceNotFound",
        format!(
            "The Resource 'microsoft.insights/actiongroups/{name}' under resource group '{}' was not found.",
            scope.resource_group
        ),
    )
}

/// `ActionGroups_ListByResourceGroup` and `ActionGroups_ListBySubscriptionId`.
pub fn collection(state: &AppState, req: &ArmRequest, scope: ListScope<'_>) -> Reply {
    list_reply(state, req, scope, |arm| &arm.action_groups, as_stored)
}

pub fn item(state: &AppState, req: &ArmRequest, scope: &RgScope, name: &str) -> Reply {
    let key = scoped_key(scope, name);
    match req.method {
        Method::GET => get_reply(
            state,
            |arm| &arm.action_groups,
            &key,
            as_stored,
            || not_found(scope, name),
        ),
        Method::PUT => {
            let body = json_body(req)?;
            let location = required_location(&body)?;
            let location = validated_location(&location)?;
            let tags = tags(&body)?;
            let Some(input) = body.get("properties").and_then(Value::as_object) else {
                return Err(invalid_content(
                    "Required property 'properties' not found in JSON",
                ));
            };
            let properties = validated_properties(input)?;
            let mut tenant = state.tenant();
            let (sub, rg) = super::workspaces::canonical_scope(&tenant.arm, scope);
            let existing = tenant.arm.action_groups.get_latest(&key).cloned();
            let name = existing
                .as_ref()
                .and_then(|ag| ag["name"].as_str())
                .unwrap_or(name)
                .to_owned();
            let resource = json!({
                "id": action_group_id(&sub, &rg, &name),
                "type": "Microsoft.Insights/ActionGroups",
                "name": name,
                "location": location,
                "tags": tags,
                "properties": properties,
            });
            let Value::Object(resource) = resource else {
                unreachable!("json! object literal")
            };
            tenant.arm.action_groups.put(&key, resource.clone());
            let status = if existing.is_some() {
                StatusCode::OK
            } else {
                StatusCode::CREATED
            };
            Ok(json_response(status, Value::Object(resource)))
        }
        Method::PATCH => {
            let body = json_body(req)?;
            let patch_enabled = patch_fields(&body)?;
            let mut tenant = state.tenant();
            let Some(resource) = tenant.arm.action_groups.get_latest(&key).cloned() else {
                return Err(not_found(scope, name));
            };
            let mut resource = resource;
            if body.contains_key("tags") {
                resource.insert("tags".into(), tags(&body)?);
            }
            if let Some(enabled) = patch_enabled {
                resource["properties"]["enabled"] = Value::Bool(enabled);
            }
            tenant.arm.action_groups.put(&key, resource.clone());
            Ok(json_response(StatusCode::OK, Value::Object(resource)))
        }
        Method::DELETE => {
            let mut tenant = state.tenant();
            match tenant.arm.action_groups.remove(&key) {
                Some(_) => Ok(StatusCode::OK.into_response()),
                None => Ok(StatusCode::NO_CONTENT.into_response()),
            }
        }
        _ => Err(method_not_allowed(&req.method)),
    }
}

fn validated_location(location: &str) -> Result<String, Response> {
    let normalized = super::resource_groups::normalize_location(location);
    if !LOCATIONS.contains(&normalized.as_str()) {
        return Err(super::arm_error(
            StatusCode::BAD_REQUEST,
            "LocationNotAvailableForResourceType",
            format!(
                "The provided location '{location}' is not available for resource type 'microsoft.insights/actiongroups'. List of available regions for the resource type is '{}'.",
                LOCATIONS.join(",")
            ),
        ));
    }
    // The service reports the global location as "Global".
    Ok(if normalized == "global" {
        "Global".to_owned()
    } else {
        normalized
    })
}

/// PATCH may change only `tags` and `properties.enabled` (`ActionGroupPatchBody`); other
/// members of `properties` are not the provider's to patch and are ignored.
fn patch_fields(body: &Map<String, Value>) -> Result<Option<bool>, Response> {
    match body.get("properties") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(p)) => match p.get("enabled") {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(_) => Err(invalid_content(
                "Property 'properties.enabled' must be a boolean",
            )),
        },
        Some(_) => Err(invalid_content("Property 'properties' must be an object")),
    }
}

/// Checks a PUT's `properties` and returns them as the service stores them: every receiver
/// list present (empty when not sent), defaults filled in.
fn validated_properties(input: &Map<String, Value>) -> Result<Value, Response> {
    let short_name = match input.get("groupShortName") {
        Some(Value::String(s)) if !s.trim().is_empty() => s.clone(),
        _ => {
            return Err(rp_error(
                StatusCode::BAD_REQUEST,
                "GroupShortNameIsRequired",
                "The action group short name is required. Please specify a short name with '12' or less characters.",
            ))
        }
    };
    if short_name.chars().count() > MAX_SHORT_NAME {
        return Err(rp_error(
            StatusCode::BAD_REQUEST,
            "GroupShortNameIsTooLong",
            format!("The action group short name '{short_name}' is too long. Please specify a short name with '{MAX_SHORT_NAME}' or less characters."),
        ));
    }
    let enabled = match input.get("enabled") {
        None | Some(Value::Null) => true,
        Some(Value::Bool(b)) => *b,
        Some(_) => {
            return Err(invalid_content(
                "Property 'properties.enabled' must be a boolean",
            ))
        }
    };
    let mut properties = Map::new();
    properties.insert("groupShortName".into(), Value::String(short_name));
    properties.insert("enabled".into(), Value::Bool(enabled));
    let mut names: Vec<String> = Vec::new();
    for ReceiverKind {
        list: kind,
        required,
        declared,
    } in RECEIVER_KINDS
    {
        let receivers = match input.get(*kind) {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(r)) => r.clone(),
            Some(_) => {
                return Err(invalid_content(&format!(
                    "Property 'properties.{kind}' must be an array"
                )))
            }
        };
        let mut stored = Vec::new();
        for (i, receiver) in receivers.into_iter().enumerate() {
            let Value::Object(mut receiver) = receiver else {
                return Err(invalid_content(&format!(
                    "'properties.{kind}[{i}]' must be an object"
                )));
            };
            validate_receiver(kind, required, i, &receiver)?;
            receiver.retain(|member, _| declared.contains(&member.as_str()));
            if let Some(name) = receiver.get("name").and_then(Value::as_str) {
                if names.iter().any(|n| n.eq_ignore_ascii_case(name)) {
                    return Err(rp_error(
                        StatusCode::BAD_REQUEST,
                        "ReceiverNameNotUnique",
                        format!("The receiver name '{name}' is used more than once. Receiver names must be unique across all receivers of an action group."),
                    ));
                }
                names.push(name.to_owned());
            }
            if COMMON_SCHEMA_KINDS.contains(kind) {
                receiver
                    .entry("useCommonAlertSchema")
                    .or_insert(Value::Bool(false));
            }
            if STATUS_KINDS.contains(kind) {
                receiver.insert("status".into(), Value::String("Enabled".into()));
            }
            stored.push(Value::Object(receiver));
        }
        properties.insert((*kind).to_owned(), Value::Array(stored));
    }
    Ok(Value::Object(properties))
}

fn validate_receiver(
    kind: &str,
    required: &[&str],
    index: usize,
    receiver: &Map<String, Value>,
) -> Result<(), Response> {
    let at = format!("properties.{kind}[{index}]");
    for field in required {
        let present = match receiver.get(*field) {
            Some(Value::String(s)) => !s.trim().is_empty(),
            Some(Value::Bool(_)) => true,
            _ => false,
        };
        if !present {
            return Err(rp_error(
                StatusCode::BAD_REQUEST,
                "InvalidReceiver",
                format!("The property '{field}' of '{at}' is required."),
            ));
        }
    }
    let text = |field: &str| {
        receiver
            .get(field)
            .and_then(Value::as_str)
            .unwrap_or_default()
    };
    match kind {
        "emailReceivers" | "azureAppPushReceivers" => {
            let email = text("emailAddress");
            if !is_plausible_email(email) {
                return Err(rp_error(
                    StatusCode::BAD_REQUEST,
                    "InvalidEmailAddress",
                    format!("The email address '{email}' of '{at}' is not valid."),
                ));
            }
        }
        "smsReceivers" | "voiceReceivers" => {
            let country = text("countryCode");
            let phone = text("phoneNumber");
            let digits = |s: &str| s.chars().all(|c| c.is_ascii_digit());
            if !(digits(country) && (1..=3).contains(&country.len())) {
                return Err(rp_error(
                    StatusCode::BAD_REQUEST,
                    "InvalidCountryCode",
                    format!("The country code '{country}' of '{at}' is not valid: use 1 to 3 digits without '+'."),
                ));
            }
            if !(digits(phone) && (4..=15).contains(&phone.len())) {
                return Err(rp_error(
                    StatusCode::BAD_REQUEST,
                    "InvalidPhoneNumber",
                    format!("The phone number '{phone}' of '{at}' is not valid: use digits only, without the country code."),
                ));
            }
        }
        "webhookReceivers" => {
            let uri = text("serviceUri");
            if !(uri.starts_with("https://") || uri.starts_with("http://")) || uri.len() < 10 {
                return Err(rp_error(
                    StatusCode::BAD_REQUEST,
                    "InvalidWebhookUri",
                    format!("The service URI '{uri}' of '{at}' is not a valid absolute http or https URI."),
                ));
            }
        }
        _ => {}
    }
    Ok(())
}

fn is_plausible_email(email: &str) -> bool {
    let Some((local, domain)) = email.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !email.contains(char::is_whitespace)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn properties_get_defaults_and_all_receiver_lists() {
        let input = json!({
            "groupShortName": "bg-alerts",
            "emailReceivers": [{"name": "soc", "emailAddress": "soc@contoso.com"}],
        });
        let props = validated_properties(input.as_object().unwrap()).unwrap();
        assert_eq!(props["enabled"], json!(true));
        assert_eq!(props["emailReceivers"][0]["status"], json!("Enabled"));
        assert_eq!(
            props["emailReceivers"][0]["useCommonAlertSchema"],
            json!(false)
        );
        assert_eq!(props["voiceReceivers"], json!([]));
    }

    #[test]
    fn short_name_length_and_receiver_rules_are_enforced() {
        let long = json!({"groupShortName": "thirteen-char"});
        assert!(validated_properties(long.as_object().unwrap()).is_err());
        let dup = json!({"groupShortName": "bg",
            "emailReceivers": [{"name": "a", "emailAddress": "a@b.com"}],
            "smsReceivers": [{"name": "A", "countryCode": "1", "phoneNumber": "5551234567"}]});
        assert!(validated_properties(dup.as_object().unwrap()).is_err());
        assert!(!is_plausible_email("not-an-email"));
        assert!(is_plausible_email("soc@contoso.com"));
    }
}
