//! Azure Monitor action groups (`Microsoft.Insights/actionGroups`, api-version 2023-01-01,
//! `actionGroups_API.json`): who is mailed and texted when an alert fires.
//!
//! The resource provider answers errors in a **top-level** `{"code","message"}` (the Swagger's
//! `ErrorResponse`), which `ApiError::from_body` reads like the usual `{"error":{…}}`. PUT
//! creates or replaces the whole group (201 / 200); PATCH changes only `tags` and
//! `properties.enabled` (`ActionGroupPatchBody`). Action groups are a global service: location
//! `Global` ("Action groups": regional action groups exist in a few regions).

use std::collections::BTreeMap;

use serde_json::{json, Map, Value as Json};

use crate::azure::arm::{ArmClient, ResourceId};
use crate::azure::consistency::ConsistencyWait;
use crate::azure::error::AzureError;
use crate::azure::retry::Deadline;

pub const API_VERSION: &str = "2023-01-01";
pub const NAMESPACE: &str = "Microsoft.Insights";
pub const RESOURCE_TYPE: &str = "actionGroups";
/// "The short name can be up to 12 characters" (it prefixes SMS and email subjects).
pub const MAX_SHORT_NAME: usize = 12;

/// Receiver lists other than email and SMS; the resources do not manage them, but a group
/// changed in the tenant may have some, which a plan should show.
const OTHER_RECEIVER_KINDS: &[&str] = &[
    "webhookReceivers",
    "itsmReceivers",
    "azureAppPushReceivers",
    "automationRunbookReceivers",
    "voiceReceivers",
    "logicAppReceivers",
    "azureFunctionReceivers",
    "armRoleReceivers",
    "eventHubReceivers",
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailReceiver {
    pub name: String,
    pub email_address: String,
    pub use_common_alert_schema: bool,
    /// `Enabled`, `Disabled` or `NotSpecified` (read-only; an address can unsubscribe).
    pub status: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmsReceiver {
    pub name: String,
    /// Digits only, no `+`.
    pub country_code: String,
    /// Digits only, without the country code.
    pub phone_number: String,
    pub status: Option<String>,
}

/// An action group as ARM answers it.
#[derive(Debug, Clone, PartialEq)]
pub struct ActionGroup {
    pub id: String,
    pub name: String,
    pub location: String,
    pub short_name: String,
    pub enabled: bool,
    pub email_receivers: Vec<EmailReceiver>,
    pub sms_receivers: Vec<SmsReceiver>,
    /// Receiver kinds other than email and SMS that hold receivers (e.g. `webhookReceivers`).
    pub other_receiver_kinds: Vec<String>,
    pub tags: BTreeMap<String, String>,
}

fn text(v: &Json, key: &str) -> String {
    v[key].as_str().unwrap_or_default().to_owned()
}

fn tags_of(v: &Json) -> BTreeMap<String, String> {
    v["tags"]
        .as_object()
        .map(|t| {
            t.iter()
                .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_owned())))
                .collect()
        })
        .unwrap_or_default()
}

impl ActionGroup {
    pub fn from_json(v: &Json) -> ActionGroup {
        let p = &v["properties"];
        let list = |kind: &str| p[kind].as_array().cloned().unwrap_or_default();
        ActionGroup {
            id: text(v, "id"),
            name: text(v, "name"),
            location: text(v, "location"),
            short_name: text(p, "groupShortName"),
            enabled: p["enabled"].as_bool().unwrap_or(true),
            email_receivers: list("emailReceivers")
                .iter()
                .map(|r| EmailReceiver {
                    name: text(r, "name"),
                    email_address: text(r, "emailAddress"),
                    use_common_alert_schema: r["useCommonAlertSchema"].as_bool().unwrap_or(false),
                    status: r["status"].as_str().map(str::to_owned),
                })
                .collect(),
            sms_receivers: list("smsReceivers")
                .iter()
                .map(|r| SmsReceiver {
                    name: text(r, "name"),
                    country_code: text(r, "countryCode"),
                    phone_number: text(r, "phoneNumber"),
                    status: r["status"].as_str().map(str::to_owned),
                })
                .collect(),
            other_receiver_kinds: OTHER_RECEIVER_KINDS
                .iter()
                .filter(|k| p[**k].as_array().is_some_and(|a| !a.is_empty()))
                .map(|k| (*k).to_owned())
                .collect(),
            tags: tags_of(v),
        }
    }
}

/// What a PUT sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionGroupSpec {
    pub id: ResourceId,
    pub short_name: String,
    pub enabled: bool,
    pub email_receivers: Vec<EmailReceiver>,
    pub sms_receivers: Vec<SmsReceiver>,
    pub tags: BTreeMap<String, String>,
}

impl ActionGroupSpec {
    fn body(&self) -> Json {
        let email: Vec<Json> = self
            .email_receivers
            .iter()
            .map(|r| {
                json!({
                    "name": r.name,
                    "emailAddress": r.email_address,
                    "useCommonAlertSchema": r.use_common_alert_schema,
                })
            })
            .collect();
        let sms: Vec<Json> = self
            .sms_receivers
            .iter()
            .map(|r| json!({"name": r.name, "countryCode": r.country_code, "phoneNumber": r.phone_number}))
            .collect();
        let tags: Map<String, Json> = self
            .tags
            .iter()
            .map(|(k, v)| (k.clone(), Json::String(v.clone())))
            .collect();
        json!({
            "location": "Global",
            "tags": tags,
            "properties": {
                "groupShortName": self.short_name,
                "enabled": self.enabled,
                "emailReceivers": email,
                "smsReceivers": sms,
            },
        })
    }
}

/// The id of an action group, e.g. from an import or another resource's reference.
pub fn parse_id(id: &str) -> Result<ResourceId, String> {
    ResourceId::parse(id, NAMESPACE, RESOURCE_TYPE)
}

pub fn id_of(subscription: &str, resource_group: &str, name: &str) -> ResourceId {
    ResourceId::new(subscription, resource_group, NAMESPACE, RESOURCE_TYPE, name)
}

/// `GroupShortNameIsTooLong`: more than 12 characters.
pub fn is_short_name_too_long(e: &AzureError) -> bool {
    e.code() == Some("GroupShortNameIsTooLong")
}

/// The service refused a receiver (bad address, phone number, country code, duplicate name).
pub fn is_receiver_rejected(e: &AzureError) -> bool {
    matches!(
        e.code(),
        Some(
            "InvalidReceiver"
                | "InvalidEmailAddress"
                | "InvalidCountryCode"
                | "InvalidPhoneNumber"
                | "ReceiverNameNotUnique"
                | "InvalidWebhookUri"
        )
    )
}

#[derive(Clone, Copy)]
pub struct ActionGroups<'a> {
    arm: &'a ArmClient,
}

impl<'a> ActionGroups<'a> {
    pub fn new(arm: &'a ArmClient) -> Self {
        ActionGroups { arm }
    }

    pub async fn get(
        &self,
        id: &ResourceId,
        deadline: &Deadline,
    ) -> Result<Option<ActionGroup>, AzureError> {
        Ok(self
            .arm
            .get_optional(&id.path(), API_VERSION, deadline)
            .await?
            .as_ref()
            .map(ActionGroup::from_json))
    }

    /// Creates or replaces the group.
    pub async fn put(
        &self,
        spec: &ActionGroupSpec,
        deadline: &Deadline,
    ) -> Result<ActionGroup, AzureError> {
        let answer = self
            .arm
            .put(&spec.id.path(), API_VERSION, spec.body(), deadline)
            .await?;
        Ok(ActionGroup::from_json(&answer))
    }

    /// Turns the group on or off without sending its receivers again.
    pub async fn set_enabled(
        &self,
        id: &ResourceId,
        enabled: bool,
        deadline: &Deadline,
    ) -> Result<ActionGroup, AzureError> {
        let answer = self
            .arm
            .patch(
                &id.path(),
                API_VERSION,
                json!({"properties": {"enabled": enabled}}),
                deadline,
            )
            .await?;
        Ok(ActionGroup::from_json(&answer))
    }

    pub async fn delete(&self, id: &ResourceId, deadline: &Deadline) -> Result<bool, AzureError> {
        self.arm.delete(&id.path(), API_VERSION, deadline).await
    }

    /// Waits until reads see the group (ARM reads can lag a fresh write).
    pub async fn wait_readable(
        &self,
        id: &ResourceId,
        deadline: &Deadline,
    ) -> Result<ActionGroup, AzureError> {
        let found = ConsistencyWait::new(
            format!("action group {} to be readable", id.name),
            *deadline,
        )
        .until(|| self.get(id, deadline), Option::is_some)
        .await?;
        found.ok_or_else(|| AzureError::InvalidResponse {
            service: crate::azure::Service::ResourceManager,
            method: "GET".into(),
            url: id.path(),
            reason: "the action group disappeared while waiting for it".into(),
        })
    }
}
