//! Log search alert rules (`Microsoft.Insights/scheduledQueryRules`, api-version 2023-12-01,
//! `scheduledQueryRule_API.json`).
//!
//! Facts the resources need:
//! - PUT validates the query against every scoped workspace unless `skipQueryValidation` is
//!   set. A table that does not exist yet — `SigninLogs` in a workspace no sign-in has reached
//!   (azurerm#28293, azure-docs#88175) — fails with 400 `BadRequest` whose message is Log
//!   Analytics' error, serialized: `BadArgumentError` → `SemanticError` → `SEM0100` "Failed to
//!   resolve table or column expression named 'X'". [`missing_table`] reads that; [`query_error`]
//!   reads any of them (syntax errors are `SyntaxError` → `SYN0002`).
//! - `evaluationFrequency` / `windowSize` / `muteActionsDuration` are ISO 8601 durations;
//!   `severity` 0–4; `autoMitigate` (default true) makes alerts stateful.
//! - PATCH merges objects and replaces arrays, like the rest of ARM's partial updates.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value as Json};

use crate::azure::arm::{ArmClient, ResourceId};
use crate::azure::consistency::ConsistencyWait;
use crate::azure::error::AzureError;
use crate::azure::retry::Deadline;

pub const API_VERSION: &str = "2023-12-01";
pub const NAMESPACE: &str = "Microsoft.Insights";
pub const RESOURCE_TYPE: &str = "scheduledQueryRules";

/// `Include` (with `*` for every value) or `Exclude` of values of one result column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dimension {
    pub name: String,
    pub operator: String,
    pub values: Vec<String>,
}

impl Dimension {
    /// One alert per value of `column`.
    pub fn split_by(column: &str) -> Dimension {
        Dimension {
            name: column.to_owned(),
            operator: "Include".into(),
            values: vec!["*".into()],
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    pub query: String,
    /// `Count`, `Average`, `Minimum`, `Maximum`, `Total`.
    pub time_aggregation: String,
    /// `Equals`, `GreaterThan`, `GreaterThanOrEqual`, `LessThan`, `LessThanOrEqual`.
    pub operator: String,
    pub threshold: f64,
    pub metric_measure_column: Option<String>,
    pub dimensions: Vec<Dimension>,
}

impl Condition {
    fn from_json(v: &Json) -> Condition {
        Condition {
            query: v["query"].as_str().unwrap_or_default().to_owned(),
            time_aggregation: v["timeAggregation"].as_str().unwrap_or_default().to_owned(),
            operator: v["operator"].as_str().unwrap_or_default().to_owned(),
            threshold: v["threshold"].as_f64().unwrap_or(0.0),
            metric_measure_column: v["metricMeasureColumn"].as_str().map(str::to_owned),
            dimensions: v["dimensions"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|d| Dimension {
                    name: d["name"].as_str().unwrap_or_default().to_owned(),
                    operator: d["operator"].as_str().unwrap_or_default().to_owned(),
                    values: d["values"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(Json::as_str)
                        .map(str::to_owned)
                        .collect(),
                })
                .collect(),
        }
    }

    fn to_json(&self) -> Json {
        let dimensions: Vec<Json> = self
            .dimensions
            .iter()
            .map(|d| json!({"name": d.name, "operator": d.operator, "values": d.values}))
            .collect();
        let mut c = json!({
            "query": self.query,
            "timeAggregation": self.time_aggregation,
            "operator": self.operator,
            "threshold": self.threshold,
            "dimensions": dimensions,
            "failingPeriods": {"numberOfEvaluationPeriods": 1, "minFailingPeriodsToAlert": 1},
        });
        if let Some(column) = &self.metric_measure_column {
            c["metricMeasureColumn"] = json!(column);
        }
        c
    }
}

/// A rule as ARM answers it (2023-12-01 shape).
#[derive(Debug, Clone, PartialEq)]
pub struct ScheduledQueryRule {
    pub id: String,
    pub name: String,
    pub location: String,
    pub kind: String,
    pub display_name: Option<String>,
    pub description: Option<String>,
    pub severity: u8,
    pub enabled: bool,
    pub evaluation_frequency: String,
    pub window_size: String,
    pub scopes: Vec<String>,
    pub conditions: Vec<Condition>,
    pub action_groups: Vec<String>,
    pub auto_mitigate: bool,
    pub mute_actions_duration: Option<String>,
    pub skip_query_validation: bool,
    pub tags: BTreeMap<String, String>,
}

fn strings(v: &Json) -> Vec<String> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(Json::as_str)
        .map(str::to_owned)
        .collect()
}

impl ScheduledQueryRule {
    pub fn from_json(v: &Json) -> ScheduledQueryRule {
        let p = &v["properties"];
        let text = |x: &Json| x.as_str().map(str::to_owned);
        ScheduledQueryRule {
            id: text(&v["id"]).unwrap_or_default(),
            name: text(&v["name"]).unwrap_or_default(),
            location: text(&v["location"]).unwrap_or_default(),
            kind: text(&v["kind"]).unwrap_or_else(|| "LogAlert".into()),
            display_name: text(&p["displayName"]),
            description: text(&p["description"]),
            severity: p["severity"]
                .as_u64()
                .and_then(|s| u8::try_from(s).ok())
                .unwrap_or(0),
            enabled: p["enabled"].as_bool().unwrap_or(false),
            evaluation_frequency: text(&p["evaluationFrequency"]).unwrap_or_default(),
            window_size: text(&p["windowSize"]).unwrap_or_default(),
            scopes: strings(&p["scopes"]),
            conditions: p["criteria"]["allOf"]
                .as_array()
                .into_iter()
                .flatten()
                .map(Condition::from_json)
                .collect(),
            action_groups: strings(&p["actions"]["actionGroups"]),
            auto_mitigate: p["autoMitigate"].as_bool().unwrap_or(true),
            mute_actions_duration: text(&p["muteActionsDuration"]),
            skip_query_validation: p["skipQueryValidation"].as_bool().unwrap_or(false),
            tags: v["tags"]
                .as_object()
                .map(|t| {
                    t.iter()
                        .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_owned())))
                        .collect()
                })
                .unwrap_or_default(),
        }
    }
}

/// What a PUT sends.
#[derive(Debug, Clone, PartialEq)]
pub struct ScheduledQueryRuleSpec {
    pub id: ResourceId,
    pub location: String,
    pub display_name: Option<String>,
    pub description: Option<String>,
    pub severity: u8,
    pub enabled: bool,
    pub evaluation_frequency: String,
    pub window_size: String,
    pub scopes: Vec<String>,
    pub conditions: Vec<Condition>,
    pub action_groups: Vec<String>,
    pub auto_mitigate: bool,
    pub mute_actions_duration: Option<String>,
    /// Skips the service's query validation (the documented way to create a rule on a table
    /// that does not exist yet).
    pub skip_query_validation: bool,
    pub tags: BTreeMap<String, String>,
}

impl ScheduledQueryRuleSpec {
    fn body(&self) -> Json {
        let conditions: Vec<Json> = self.conditions.iter().map(Condition::to_json).collect();
        let tags: Map<String, Json> = self
            .tags
            .iter()
            .map(|(k, v)| (k.clone(), Json::String(v.clone())))
            .collect();
        let mut properties = json!({
            "severity": self.severity,
            "enabled": self.enabled,
            "evaluationFrequency": self.evaluation_frequency,
            "windowSize": self.window_size,
            "scopes": self.scopes,
            "criteria": {"allOf": conditions},
            "actions": {"actionGroups": self.action_groups},
            "autoMitigate": self.auto_mitigate,
            "skipQueryValidation": self.skip_query_validation,
        });
        for (key, value) in [
            ("displayName", &self.display_name),
            ("description", &self.description),
            ("muteActionsDuration", &self.mute_actions_duration),
        ] {
            if let Some(v) = value {
                properties[key] = json!(v);
            }
        }
        json!({
            "location": self.location,
            "kind": "LogAlert",
            "tags": tags,
            "properties": properties,
        })
    }
}

pub fn parse_id(id: &str) -> Result<ResourceId, String> {
    ResourceId::parse(id, NAMESPACE, RESOURCE_TYPE)
}

pub fn id_of(subscription: &str, resource_group: &str, name: &str) -> ResourceId {
    ResourceId::new(subscription, resource_group, NAMESPACE, RESOURCE_TYPE, name)
}

/// Log Analytics' query error inside the rule service's 400.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryError {
    /// `SyntaxError` or `SemanticError`.
    pub kind: String,
    /// `SYN0002`, `SEM0100`, …
    pub code: String,
    pub message: String,
    /// Where a syntax error is (line from 1, position from 0).
    pub line: Option<u64>,
    pub pos: Option<u64>,
}

/// The Log Analytics error a rule PUT failed with, when it failed on its query.
pub fn query_error(e: &AzureError) -> Option<QueryError> {
    let api = e.api().filter(|a| a.status == 400)?;
    let inner: Json = serde_json::from_str(api.message.as_deref()?).ok()?;
    let outer = &inner["error"];
    if outer["code"] != "BadArgumentError" {
        return None;
    }
    let kind = &outer["innererror"];
    let innermost = &kind["innererror"];
    Some(QueryError {
        kind: kind["code"].as_str().unwrap_or_default().to_owned(),
        code: innermost["code"].as_str().unwrap_or_default().to_owned(),
        message: innermost["message"]
            .as_str()
            .or(kind["message"].as_str())
            .unwrap_or_default()
            .to_owned(),
        line: innermost["line"].as_u64(),
        pos: innermost["pos"].as_u64(),
    })
}

/// The table a rule PUT could not resolve ("Failed to resolve table or column expression
/// named 'SigninLogs'"), when that is why it failed.
pub fn missing_table(e: &AzureError) -> Option<String> {
    let q = query_error(e).filter(|q| q.kind == "SemanticError")?;
    let marker = "Failed to resolve table or column expression named '";
    let rest = &q.message[q.message.find(marker)? + marker.len()..];
    Some(rest[..rest.find('\'')?].to_owned())
}

/// The rule was refused because a table its query reads does not exist in a scoped
/// workspace (yet).
pub fn is_missing_table_query_error(e: &AzureError) -> bool {
    missing_table(e).is_some()
}

#[derive(Clone, Copy)]
pub struct ScheduledQueryRules<'a> {
    arm: &'a ArmClient,
}

impl<'a> ScheduledQueryRules<'a> {
    pub fn new(arm: &'a ArmClient) -> Self {
        ScheduledQueryRules { arm }
    }

    pub async fn get(
        &self,
        id: &ResourceId,
        deadline: &Deadline,
    ) -> Result<Option<ScheduledQueryRule>, AzureError> {
        Ok(self
            .arm
            .get_optional(&id.path(), API_VERSION, deadline)
            .await?
            .as_ref()
            .map(ScheduledQueryRule::from_json))
    }

    /// Every rule of the subscription (`GET /subscriptions/{s}/providers/
    /// Microsoft.Insights/scheduledQueryRules`).
    pub async fn list_in_subscription(
        &self,
        subscription_id: &str,
        deadline: Deadline,
    ) -> Result<Vec<ScheduledQueryRule>, AzureError> {
        let path = format!(
            "/subscriptions/{subscription_id}/providers/Microsoft.Insights/scheduledQueryRules"
        );
        Ok(self
            .arm
            .list_all(&path, API_VERSION, deadline)
            .await?
            .iter()
            .map(ScheduledQueryRule::from_json)
            .collect())
    }

    /// Creates or replaces the rule.
    pub async fn put(
        &self,
        spec: &ScheduledQueryRuleSpec,
        deadline: &Deadline,
    ) -> Result<ScheduledQueryRule, AzureError> {
        let answer = self
            .arm
            .put(&spec.id.path(), API_VERSION, spec.body(), deadline)
            .await?;
        Ok(ScheduledQueryRule::from_json(&answer))
    }

    /// A partial update: `properties` (objects merge, arrays replace) and/or `tags`.
    pub async fn patch(
        &self,
        id: &ResourceId,
        properties: Option<Json>,
        tags: Option<&BTreeMap<String, String>>,
        deadline: &Deadline,
    ) -> Result<ScheduledQueryRule, AzureError> {
        let mut body = Map::new();
        if let Some(p) = properties {
            body.insert("properties".into(), p);
        }
        if let Some(tags) = tags {
            body.insert("tags".into(), json!(tags));
        }
        let answer = self
            .arm
            .patch(&id.path(), API_VERSION, Json::Object(body), deadline)
            .await?;
        Ok(ScheduledQueryRule::from_json(&answer))
    }

    pub async fn delete(&self, id: &ResourceId, deadline: &Deadline) -> Result<bool, AzureError> {
        self.arm.delete(&id.path(), API_VERSION, deadline).await
    }

    /// Waits until reads see the rule (ARM reads can lag a fresh write).
    pub async fn wait_readable(
        &self,
        id: &ResourceId,
        deadline: &Deadline,
    ) -> Result<ScheduledQueryRule, AzureError> {
        let found =
            ConsistencyWait::new(format!("alert rule {} to be readable", id.name), *deadline)
                .until(|| self.get(id, deadline), Option::is_some)
                .await?;
        found.ok_or_else(|| AzureError::InvalidResponse {
            service: crate::azure::Service::ResourceManager,
            method: "GET".into(),
            url: id.path(),
            reason: "the alert rule disappeared while waiting for it".into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::azure::error::{ApiError, Service};

    fn rule_error(inner: Json) -> AzureError {
        let body = json!({"error": {"code": "BadRequest", "message": inner.to_string()}});
        ApiError::from_body(
            Service::ResourceManager,
            "PUT",
            "https://arm/x",
            400,
            Some(&body),
            None,
            None,
        )
        .into()
    }

    #[test]
    fn missing_tables_are_read_from_the_serialized_log_analytics_error() {
        let e = rule_error(
            json!({"error": {"message": "The request had some invalid properties", "code": "BadArgumentError",
            "innererror": {"code": "SemanticError", "message": "A semantic error occurred.",
                "innererror": {"code": "SEM0100", "message": "'where' operator: Failed to resolve table or column expression named 'SigninLogs'"}}}}),
        );
        assert_eq!(missing_table(&e).as_deref(), Some("SigninLogs"));
        assert!(is_missing_table_query_error(&e));
        let syntax = rule_error(json!({"error": {"message": "x", "code": "BadArgumentError",
            "innererror": {"code": "SyntaxError", "message": "A recognition error occurred in the query.",
                "innererror": {"code": "SYN0002", "message": "Query could not be parsed at 'x' on line [1,4]", "line": 1, "pos": 4, "token": "x"}}}}));
        let q = query_error(&syntax).unwrap();
        assert_eq!(
            (q.kind.as_str(), q.code.as_str(), q.line, q.pos),
            ("SyntaxError", "SYN0002", Some(1), Some(4))
        );
        assert!(!is_missing_table_query_error(&syntax));
        let plain = ApiError::from_body(
            Service::ResourceManager,
            "PUT",
            "u",
            400,
            Some(&json!({"error": {"code": "BadRequest", "message": "Severity '5' is invalid."}})),
            None,
            None,
        )
        .into();
        assert_eq!(query_error(&plain), None);
    }
}
