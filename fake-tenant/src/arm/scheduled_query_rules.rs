//! Scheduled query rules, a.k.a. log search alerts (`Microsoft.Insights/scheduledQueryRules`,
//! api-versions 2021-08-01 and 2023-12-01).
//!
//! Shapes follow the two `scheduledQueryRule_API.json` files. A rule is stored once, with the
//! union of both versions' properties, and every response is shaped for the api-version of
//! the request: 2021-08-01 has no `identity`, no `ruleResolveConfiguration` and no
//! `actions.actionProperties`, so those are dropped from its requests and its responses.
//!
//! Validation follows the service: severity 0–4, `evaluationFrequency` and `windowSize` from
//! the granularities the service supports, scopes and action groups must exist, every
//! condition needs a query — and, unless `skipQueryValidation` is set, the query must resolve
//! against the scoped workspaces. A query on a table the workspace does not have yet (e.g.
//! `SigninLogs` before any sign-in was exported) fails with 400 `BadRequest` whose message is
//! the serialized Log Analytics error (`BadArgumentError` → `SemanticError` → `SEM0100`
//! "Failed to resolve table or column expression named ..."), as seen from the real service.

use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Map, Value};

use super::kql::{self, Schema};
use super::monitor::alerts;
use super::{
    arm_error, get_reply, invalid_request_content, json_body, json_response, list_reply,
    merge_patch, method_not_allowed, required_location, scoped_key, tags, ArmRequest, ArmState,
    ListScope, Reply, RgScope,
};
use crate::error::ArmError;
use crate::AppState;

pub const API_VERSIONS: &[&str] = &["2023-12-01", "2021-08-01"];

const V2021: &str = "2021-08-01";

/// Evaluation frequencies the service accepts, in minutes.
const FREQUENCIES: &[u64] = &[1, 5, 10, 15, 30, 45, 60, 120, 180, 240, 300, 360, 1440];
/// Window sizes ("granularities") the service accepts, in minutes.
const WINDOW_SIZES: &[u64] = &[5, 10, 15, 30, 45, 60, 120, 180, 240, 300, 360, 1440, 2880];

/// Writable members of `properties` (2023-12-01, a superset of 2021-08-01).
const PROPERTIES: &[&str] = &[
    "actions",
    "autoMitigate",
    "checkWorkspaceAlertsStorageConfigured",
    "criteria",
    "description",
    "displayName",
    "enabled",
    "evaluationFrequency",
    "muteActionsDuration",
    "overrideQueryTimeRange",
    "ruleResolveConfiguration",
    "scopes",
    "severity",
    "skipQueryValidation",
    "targetResourceTypes",
    "windowSize",
];
const CONDITION_MEMBERS: &[&str] = &[
    "dimensions",
    "failingPeriods",
    "metricMeasureColumn",
    "metricName",
    "operator",
    "query",
    "resourceIdColumn",
    "threshold",
    "timeAggregation",
];
const ACTION_MEMBERS: &[&str] = &["actionGroups", "actionProperties", "customProperties"];

const TIME_AGGREGATIONS: &[&str] = &["Count", "Average", "Minimum", "Maximum", "Total"];
const OPERATORS: &[&str] = &[
    "Equals",
    "GreaterThan",
    "GreaterThanOrEqual",
    "LessThan",
    "LessThanOrEqual",
];

/// The canonical id the service reports (it lower-cases the fixed segments).
pub fn rule_id(sub: &str, rg: &str, name: &str) -> String {
    format!("/subscriptions/{sub}/resourcegroups/{rg}/providers/microsoft.insights/scheduledqueryrules/{name}")
}

fn bad_request(message: impl Into<String>) -> Response {
    arm_error(StatusCode::BAD_REQUEST, "BadRequest", message)
}

fn not_found(scope: &RgScope, name: &str) -> Response {
    ArmError::resource_not_found(
        "microsoft.insights/scheduledqueryrules",
        name,
        Some(&scope.resource_group),
    )
    .into_response()
}

/// The stored rule as the requested api-version shows it.
fn shaped(rule: &Map<String, Value>, api_version: &str) -> Value {
    let mut rule = rule.clone();
    if api_version == V2021 {
        strip_newer_properties(&mut rule);
    }
    Value::Object(rule)
}

/// Removes what 2021-08-01 does not know.
fn strip_newer_properties(rule: &mut Map<String, Value>) {
    rule.remove("identity");
    if let Some(props) = rule.get_mut("properties").and_then(Value::as_object_mut) {
        props.remove("ruleResolveConfiguration");
        if let Some(actions) = props.get_mut("actions").and_then(Value::as_object_mut) {
            actions.remove("actionProperties");
        }
    }
}

/// `ScheduledQueryRules_ListByResourceGroup` and `ScheduledQueryRules_ListBySubscription`.
pub fn collection(state: &AppState, req: &ArmRequest, scope: ListScope<'_>) -> Reply {
    list_reply(
        state,
        req,
        scope,
        |arm| &arm.scheduled_query_rules,
        |r| shaped(r, req.api_version),
    )
}

pub fn item(state: &AppState, req: &ArmRequest, scope: &RgScope, name: &str) -> Reply {
    let key = scoped_key(scope, name);
    match req.method {
        Method::GET => get_reply(
            state,
            |arm| &arm.scheduled_query_rules,
            &key,
            |r| shaped(r, req.api_version),
            || not_found(scope, name),
        ),
        Method::PUT => {
            let mut body = json_body(req)?;
            if req.api_version == V2021 {
                strip_newer_properties(&mut body);
            }
            let location = required_location(&body)?;
            let tags = tags(&body)?;
            let mut tenant = state.tenant();
            // Evaluations due under the old definition run before it changes.
            alerts::catch_up(&mut tenant);
            let existing = tenant.arm.scheduled_query_rules.get_latest(&key).cloned();
            let created_with = existing
                .as_ref()
                .and_then(|r| r["properties"]["createdWithApiVersion"].as_str())
                .unwrap_or(req.api_version)
                .to_owned();
            let name = existing
                .as_ref()
                .and_then(|r| r["name"].as_str())
                .unwrap_or(name)
                .to_owned();
            let rule = build_rule(
                &tenant.arm,
                scope,
                &name,
                &location,
                tags,
                &body,
                &created_with,
            )?;
            tenant.arm.scheduled_query_rules.put(&key, rule.clone());
            let status = if existing.is_some() {
                StatusCode::OK
            } else {
                // A new rule's evaluation schedule starts at its creation.
                let now = tenant.arm.monitor.now();
                alerts::schedule(&mut tenant.arm.monitor, &key, now);
                StatusCode::CREATED
            };
            Ok(json_response(status, shaped(&rule, req.api_version)))
        }
        Method::PATCH => {
            let mut patch = json_body(req)?;
            if req.api_version == V2021 {
                strip_newer_properties(&mut patch);
            }
            if let Some(other) = patch
                .keys()
                .find(|k| !["tags", "properties", "identity"].contains(&k.as_str()))
            {
                return Err(invalid_request_content(&format!(
                    "Could not find member '{other}' on object of type 'ScheduledQueryRuleResourcePatch'"
                )));
            }
            let mut tenant = state.tenant();
            alerts::catch_up(&mut tenant);
            let Some(existing) = tenant.arm.scheduled_query_rules.get_latest(&key).cloned() else {
                return Err(not_found(scope, name));
            };
            let mut merged = Value::Object(existing.clone());
            if let Some(props) = patch.get("properties") {
                merge_patch(&mut merged["properties"], props);
            }
            if let Some(identity) = patch.get("identity") {
                merged["identity"] = identity.clone();
            }
            let Value::Object(mut merged) = merged else {
                unreachable!("merged an object into an object")
            };
            let tags = if patch.contains_key("tags") {
                tags(&patch)?
            } else {
                existing.get("tags").cloned().unwrap_or_else(|| json!({}))
            };
            merged.insert("tags".into(), tags.clone());
            let location = existing["location"].as_str().unwrap_or_default().to_owned();
            let created_with = existing["properties"]["createdWithApiVersion"]
                .as_str()
                .unwrap_or(req.api_version)
                .to_owned();
            let name = existing["name"].as_str().unwrap_or(name).to_owned();
            let rule = build_rule(
                &tenant.arm,
                scope,
                &name,
                &location,
                tags,
                &merged,
                &created_with,
            )?;
            tenant.arm.scheduled_query_rules.put(&key, rule.clone());
            Ok(json_response(
                StatusCode::OK,
                shaped(&rule, req.api_version),
            ))
        }
        Method::DELETE => {
            let mut tenant = state.tenant();
            alerts::catch_up(&mut tenant);
            alerts::unschedule(&mut tenant.arm.monitor, &key);
            match tenant.arm.scheduled_query_rules.remove(&key) {
                Some(_) => Ok(StatusCode::OK.into_response()),
                None => Ok(StatusCode::NO_CONTENT.into_response()),
            }
        }
        _ => Err(method_not_allowed(&req.method)),
    }
}

/// Validates a complete rule (a PUT body, or a stored rule with a PATCH merged in) and
/// returns it as stored.
fn build_rule(
    arm: &ArmState,
    scope: &RgScope,
    name: &str,
    location: &str,
    tags: Value,
    body: &Map<String, Value>,
    created_with: &str,
) -> Result<Map<String, Value>, Response> {
    let kind = match body.get("kind") {
        None | Some(Value::Null) => "LogAlert".to_owned(),
        Some(Value::String(k)) if ["LogAlert", "LogToMetric"].contains(&k.as_str()) => k.clone(),
        Some(other) => {
            return Err(bad_request(format!(
                "The kind '{}' is not supported. Supported kinds are LogAlert and LogToMetric.",
                other.as_str().unwrap_or_default()
            )))
        }
    };
    let Some(input) = body.get("properties").and_then(Value::as_object) else {
        return Err(invalid_request_content(
            "Required property 'properties' not found in JSON",
        ));
    };
    let mut props = input.clone();
    // The provider ignores members it does not declare, and sets the read-only ones itself.
    props.retain(|member, _| PROPERTIES.contains(&member.as_str()));
    let log_alert = kind == "LogAlert";

    match props.get("enabled") {
        Some(Value::Bool(_)) => {}
        _ => {
            return Err(bad_request(
                "The property 'enabled' is required and must be a boolean.",
            ))
        }
    }
    if let Some(severity) = props.get("severity") {
        if severity.as_u64().is_none_or(|s| s > 4) {
            return Err(bad_request(format!(
                "Severity '{severity}' is invalid. Severity must be an integer between 0 and 4."
            )));
        }
    } else if log_alert {
        return Err(bad_request(
            "The property 'severity' is required for log alert rules.",
        ));
    }
    check_duration(
        &props,
        "evaluationFrequency",
        FREQUENCIES,
        log_alert,
        "Supported frequencies",
    )?;
    check_duration(
        &props,
        "windowSize",
        WINDOW_SIZES,
        log_alert,
        "Supported granularities",
    )?;
    for key in ["muteActionsDuration", "overrideQueryTimeRange"] {
        if let Some(v) = props.get(key) {
            if v.as_str().and_then(duration_minutes).is_none() {
                return Err(bad_request(format!(
                    "The property '{key}' value '{v}' is not a valid ISO 8601 duration."
                )));
            }
        }
    }

    // "Stateful alert rules with a frequency of more than 12 hours are not supported" (Create or
    // edit a log search alert rule).
    if log_alert
        && props.get("autoMitigate") == Some(&json!(true))
        && props
            .get("evaluationFrequency")
            .and_then(Value::as_str)
            .and_then(duration_minutes)
            .is_some_and(|m| m > 720)
    {
        return Err(bad_request(
            "Automatically resolving alerts (autoMitigate) is not supported for rules evaluated less often than every 12 hours.",
        ));
    }
    let workspaces = scoped_workspaces(arm, &props)?;
    let conditions = normalized_conditions(&props, log_alert)?;
    props.insert("criteria".into(), json!({ "allOf": conditions }));

    let actions = normalized_actions(arm, &props)?;
    props.insert("actions".into(), actions);

    let skip_validation = props
        .get("skipQueryValidation")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    if !skip_validation {
        check_queries(arm, &workspaces, &conditions, log_alert)?;
    }

    props.insert("createdWithApiVersion".into(), json!(created_with));
    props.insert("isWorkspaceAlertsStorageConfigured".into(), json!(false));
    props
        .entry("checkWorkspaceAlertsStorageConfigured")
        .or_insert(json!(false));
    props.entry("skipQueryValidation").or_insert(json!(false));
    if log_alert {
        props.entry("autoMitigate").or_insert(json!(true));
    }

    let (sub, rg) = super::workspaces::canonical_scope(arm, scope);
    let mut rule = Map::new();
    rule.insert("id".into(), json!(rule_id(&sub, &rg, name)));
    rule.insert("name".into(), json!(name));
    rule.insert(
        "type".into(),
        json!("microsoft.insights/scheduledqueryrules"),
    );
    rule.insert(
        "location".into(),
        json!(super::resource_groups::normalize_location(location)),
    );
    rule.insert("tags".into(), tags);
    rule.insert("kind".into(), json!(kind));
    if let Some(identity) = body.get("identity").filter(|i| !i.is_null()) {
        rule.insert("identity".into(), identity.clone());
    }
    rule.insert("properties".into(), Value::Object(props));
    Ok(rule)
}

fn check_duration(
    props: &Map<String, Value>,
    key: &str,
    allowed: &[u64],
    required: bool,
    label: &str,
) -> Result<(), Response> {
    let list = allowed
        .iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    match props.get(key) {
        None | Some(Value::Null) if required => Err(bad_request(format!(
            "The property '{key}' is required for log alert rules. {label} are (in minutes): {list}."
        ))),
        None | Some(Value::Null) => Ok(()),
        Some(v) => match v.as_str().and_then(duration_minutes) {
            Some(m) if allowed.contains(&m) => Ok(()),
            _ => Err(bad_request(format!(
                "The property '{key}' value {v} is not supported. {label} are (in minutes): {list}."
            ))),
        },
    }
}

/// Minutes in an ISO 8601 duration of days, hours, minutes and whole seconds
/// (`PT5M`, `PT1H`, `P1D`, `P1DT12H`); `None` for anything else or fractional minutes.
fn duration_minutes(text: &str) -> Option<u64> {
    let rest = text.strip_prefix('P')?;
    let (date, time) = rest.split_once('T').unwrap_or((rest, ""));
    if rest.is_empty() || rest.ends_with('T') {
        return None;
    }
    let mut seconds = 0u64;
    for (part, units) in [
        (date, &[('D', 86_400u64)][..]),
        (time, &[('H', 3600), ('M', 60), ('S', 1)][..]),
    ] {
        let mut number = String::new();
        let mut last_unit = 0;
        for c in part.chars() {
            if c.is_ascii_digit() {
                number.push(c);
                continue;
            }
            let position = units.iter().position(|(u, _)| *u == c)?;
            if number.is_empty() || (last_unit > 0 && position < last_unit) {
                return None;
            }
            seconds += number.parse::<u64>().ok()? * units[position].1;
            number.clear();
            last_unit = position + 1;
        }
        if !number.is_empty() {
            return None;
        }
    }
    (seconds.is_multiple_of(60) && seconds > 0).then_some(seconds / 60)
}

/// Scopes must be existing Log Analytics workspaces; returns their collection keys.
fn scoped_workspaces(arm: &ArmState, props: &Map<String, Value>) -> Result<Vec<String>, Response> {
    let scopes = match props.get("scopes") {
        Some(Value::Array(s)) if !s.is_empty() => s,
        _ => {
            return Err(bad_request(
                "The property 'scopes' is required and must list at least one Log Analytics workspace resource id.",
            ))
        }
    };
    scopes
        .iter()
        .map(|s| {
            let id = s.as_str().unwrap_or_default();
            super::workspaces::workspace_key_for_id(arm, id).ok_or_else(|| {
                bad_request(format!(
                    "The scope '{id}' could not be found. Scopes must be resource ids of existing Log Analytics workspaces."
                ))
            })
        })
        .collect()
}

fn normalized_conditions(
    props: &Map<String, Value>,
    log_alert: bool,
) -> Result<Vec<Value>, Response> {
    let conditions = match props.get("criteria").map(|c| &c["allOf"]) {
        Some(Value::Array(all)) if !all.is_empty() => all.clone(),
        _ => return Err(bad_request(
            "The property 'criteria.allOf' is required and must contain at least one condition.",
        )),
    };
    let mut normalized = Vec::new();
    for (i, condition) in conditions.into_iter().enumerate() {
        let Value::Object(mut condition) = condition else {
            return Err(invalid_request_content(&format!(
                "'properties.criteria.allOf[{i}]' must be an object"
            )));
        };
        let at = format!("criteria.allOf[{i}]");
        let query = condition.get("query").and_then(Value::as_str);
        if query.is_none_or(|q| q.trim().is_empty()) {
            return Err(bad_request(format!(
                "The property '{at}.query' is required."
            )));
        }
        if log_alert {
            for (key, allowed) in [
                ("timeAggregation", TIME_AGGREGATIONS),
                ("operator", OPERATORS),
            ] {
                let value = condition
                    .get(key)
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                if !allowed.contains(&value) {
                    return Err(bad_request(format!(
                        "The property '{at}.{key}' value '{value}' is invalid. Allowed values are: {}.",
                        allowed.join(", ")
                    )));
                }
            }
            if !condition.get("threshold").is_some_and(Value::is_number) {
                return Err(bad_request(format!(
                    "The property '{at}.threshold' is required and must be a number."
                )));
            }
            // Aggregations other than a row count aggregate a numeric column of the result.
            let aggregation = condition.get("timeAggregation").and_then(Value::as_str);
            if aggregation != Some("Count")
                && condition
                    .get("metricMeasureColumn")
                    .and_then(Value::as_str)
                    .is_none_or(str::is_empty)
            {
                return Err(bad_request(format!(
                    "The property '{at}.metricMeasureColumn' is required when timeAggregation is '{}'.",
                    aggregation.unwrap_or_default()
                )));
            }
        }
        condition.retain(|member, _| CONDITION_MEMBERS.contains(&member.as_str()));
        condition.entry("dimensions").or_insert(json!([]));
        condition.entry("failingPeriods").or_insert(json!({
            "numberOfEvaluationPeriods": 1,
            "minFailingPeriodsToAlert": 1,
        }));
        normalized.push(Value::Object(condition));
    }
    Ok(normalized)
}

/// Action groups referenced by the rule must exist.
fn normalized_actions(arm: &ArmState, props: &Map<String, Value>) -> Result<Value, Response> {
    let mut actions = props
        .get("actions")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    actions.retain(|member, _| ACTION_MEMBERS.contains(&member.as_str()));
    let groups = actions
        .get("actionGroups")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for group in &groups {
        let id = group.as_str().unwrap_or_default();
        let exists = super::parse_resource_id(id)
            .filter(|p| p.resource_type == "microsoft.insights/actiongroups")
            .map(|p| {
                let scope = RgScope {
                    subscription: p.subscription,
                    resource_group: p.resource_group,
                };
                arm.action_groups
                    .get_latest(&scoped_key(&scope, &p.name))
                    .is_some()
            })
            .unwrap_or(false);
        if !exists {
            return Err(bad_request(format!(
                "The action group '{id}' could not be found. Action groups referenced by a rule must exist."
            )));
        }
    }
    actions.insert("actionGroups".into(), Value::Array(groups));
    actions.entry("customProperties").or_insert(json!({}));
    actions.entry("actionProperties").or_insert(json!({}));
    Ok(Value::Object(actions))
}

/// Log Analytics' validation of each condition's query against each scoped workspace, as the
/// service runs it before storing a rule: the query must parse (else `SyntaxError`/`SYN0002`)
/// and every table and column must resolve in the workspace as it is now (else
/// `SemanticError`/`SEM0100` — the well-known failure of rules on `SigninLogs` before any
/// sign-in was exported). The dimensions and the measure column must be columns of the
/// query's result.
fn check_queries(
    arm: &ArmState,
    workspaces: &[String],
    conditions: &[Value],
    log_alert: bool,
) -> Result<(), Response> {
    for (i, condition) in conditions.iter().enumerate() {
        let text = condition["query"].as_str().unwrap_or_default();
        let query = kql::parse(text).map_err(query_error)?;
        for workspace in workspaces {
            let catalog = alerts::Existing {
                arm,
                workspace: workspace.as_str(),
            };
            let schema = kql::bind(&query, &catalog).map_err(query_error)?;
            if log_alert {
                check_result_columns(&schema, condition, i)?;
            }
        }
    }
    Ok(())
}

fn check_result_columns(schema: &Schema, condition: &Value, index: usize) -> Result<(), Response> {
    let Schema::Known(columns) = schema else {
        return Ok(());
    };
    let has = |name: &str| columns.iter().any(|(c, _)| c == name);
    for dimension in condition["dimensions"].as_array().into_iter().flatten() {
        let name = dimension["name"].as_str().unwrap_or_default();
        if !has(name) {
            return Err(bad_request(format!(
                "The dimension '{name}' of 'criteria.allOf[{index}]' is not a column of the query's result."
            )));
        }
    }
    if let Some(measure) = condition["metricMeasureColumn"].as_str() {
        if !has(measure) {
            return Err(bad_request(format!(
                "The metricMeasureColumn '{measure}' of 'criteria.allOf[{index}]' is not a column of the query's result."
            )));
        }
    }
    Ok(())
}

/// The service wraps Log Analytics' query error, serialized, in an ARM `BadRequest`.
fn query_error(error: kql::QueryError) -> Response {
    let inner = error.to_log_analytics(&uuid::Uuid::new_v4().to_string());
    bad_request(serde_json::to_string_pretty(&inner).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_convert_to_minutes() {
        assert_eq!(duration_minutes("PT5M"), Some(5));
        assert_eq!(duration_minutes("PT1H"), Some(60));
        assert_eq!(duration_minutes("P1D"), Some(1440));
        assert_eq!(duration_minutes("P1DT12H"), Some(2160));
        assert_eq!(duration_minutes("PT30S"), None);
        assert_eq!(duration_minutes("5 minutes"), None);
        assert_eq!(duration_minutes("PT"), None);
        assert_eq!(duration_minutes("PTM"), None);
    }

    #[test]
    fn the_2021_shape_drops_newer_properties() {
        let rule = json!({
            "identity": {"type": "SystemAssigned"},
            "properties": {
                "ruleResolveConfiguration": {"autoResolved": true},
                "actions": {"actionGroups": [], "actionProperties": {}, "customProperties": {}},
            }
        });
        let shaped_2021 = shaped(rule.as_object().unwrap(), V2021);
        assert!(shaped_2021.get("identity").is_none());
        assert!(shaped_2021["properties"]
            .get("ruleResolveConfiguration")
            .is_none());
        assert!(shaped_2021["properties"]["actions"]
            .get("actionProperties")
            .is_none());
        let shaped_2023 = shaped(rule.as_object().unwrap(), "2023-12-01");
        assert_eq!(shaped_2023, rule);
    }
}
