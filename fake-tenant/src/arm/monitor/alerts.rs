//! Evaluation of scheduled query rules (log search alerts) and the notifications their action
//! groups send.
//!
//! Documents followed (learn.microsoft.com, Azure Monitor):
//! - "Create or edit a log search alert rule": the query runs every `evaluationFrequency` over
//!   the last `windowSize`; "Split by dimensions" groups the result rows by the dimension
//!   columns and evaluates each group separately, firing one alert per group; the measure is
//!   the row count (`timeAggregation: Count`) or an aggregation of `metricMeasureColumn`;
//!   "Number of violations" (`failingPeriods`) fires when at least `minFailingPeriodsToAlert`
//!   of the last `numberOfEvaluationPeriods` aggregation windows breach; "Mute actions"
//!   (`muteActionsDuration`) holds actions back for that long after an alert fired;
//!   "Automatically resolve alerts" (`autoMitigate`) makes the alert stateful.
//! - "What are Azure Monitor alerts?" ("Alerts and state"): stateless alerts fire every time
//!   the condition is met; stateful alerts fire once and not again until resolved, and a log
//!   search alert is resolved when the condition is not met for 10 minutes (frequency 1
//!   minute), three frequency periods (5–15 minutes), two (up to 11 hours) or one (11–12
//!   hours); resolving sends a resolved notification "by using webhooks or email".
//! - "Action groups": every receiver of every enabled action group the rule names is notified;
//!   "Rate limiting for voice, SMS, emails, Azure App Service push notifications, and webhook
//!   posts": at most one SMS and one voice call per number every 5 minutes and 100 emails per
//!   address an hour, across all subscriptions; a rate-limited email address gets one notice.
//!
//! Evaluation instants are `anchor + k × evaluationFrequency` on the emulated clock, anchored
//! at the rule's creation; an evaluation at `T` sees the records with `TimeGenerated` in
//! `(T − windowSize, T]` that had been ingested by `T`. Evaluations run lazily (see the module
//! docs of `monitor`), strictly before "now", so a record stamped after an evaluation ran can
//! never be missed by the next one.

use std::collections::BTreeMap;

use serde_json::{json, Value as Json};

use super::{format_time, schemas, MonitorState, SECOND};
use crate::arm::kql::{self, Catalog, Schema, Table, Value};
use crate::arm::workspaces::workspace_key_for_id;
use crate::arm::{parse_resource_id, scoped_key, ArmState, RgScope};
use crate::state::Tenant;

/// At most this many evaluations of one rule per catch-up; beyond it the rule skips ahead and
/// an evaluation error says how many were skipped.
const MAX_EVALUATIONS: u64 = 10_000;

const MINUTE: i64 = 60 * SECOND;

/// Dimension name → value pairs identifying one alert series.
type Dimensions = Vec<(String, String)>;

/// A rule's schedule and the state of each alert series (condition × dimension values).
#[derive(Debug, Clone)]
pub struct RuleState {
    /// The last evaluation instant (the schedule's anchor before the first one).
    pub last_evaluated: i64,
    pub series: BTreeMap<String, Series>,
}

#[derive(Debug, Clone)]
pub struct Series {
    pub fired: bool,
    pub alert_id: String,
    /// Consecutive evaluations without a breach while fired (stateful rules).
    pub quiet: u32,
    pub muted_until: i64,
}

/// Starts a rule's schedule at `now` (creation).
pub fn schedule(monitor: &mut MonitorState, rule_key: &str, now: i64) {
    monitor.rules.insert(
        rule_key.to_owned(),
        RuleState {
            last_evaluated: now,
            series: BTreeMap::new(),
        },
    );
}

pub fn unschedule(monitor: &mut MonitorState, rule_key: &str) {
    monitor.rules.remove(rule_key);
}

/// Minutes in an ISO 8601 duration (`PT5M`, `PT1H`, `P1D`).
pub fn duration_nanos(text: &str) -> Option<i64> {
    let rest = text.strip_prefix('P')?;
    let (date, time) = rest.split_once('T').unwrap_or((rest, ""));
    if rest.is_empty() || rest.ends_with('T') {
        return None;
    }
    let mut seconds: i64 = 0;
    for (part, units) in [
        (date, &[('D', 86_400i64)][..]),
        (time, &[('H', 3600), ('M', 60), ('S', 1)][..]),
    ] {
        let mut number = String::new();
        for c in part.chars() {
            if c.is_ascii_digit() {
                number.push(c);
                continue;
            }
            let (_, factor) = units.iter().find(|(u, _)| *u == c)?;
            let n: i64 = number.parse().ok()?;
            seconds = seconds.checked_add(n.checked_mul(*factor)?)?;
            number.clear();
        }
        if !number.is_empty() {
            return None;
        }
    }
    seconds.checked_mul(SECOND).filter(|n| *n > 0)
}

/// How many quiet evaluations resolve a stateful log search alert ("Alerts and state").
fn evaluations_to_resolve(frequency: i64) -> u32 {
    let minutes = frequency / MINUTE;
    match minutes {
        ..=1 => 10,
        2..=15 => 3,
        16..=659 => 2,
        _ => 1,
    }
}

/// Runs every evaluation that is due, for every rule, in time order per rule.
pub fn catch_up(tenant: &mut Tenant) {
    let arm = &mut tenant.arm;
    let now = arm.monitor.now();
    let rules: Vec<(String, serde_json::Map<String, Json>)> = arm
        .scheduled_query_rules
        .list_latest()
        .into_iter()
        .filter_map(|rule| {
            let id = parse_resource_id(rule["id"].as_str()?)?;
            let key = scoped_key(
                &RgScope {
                    subscription: id.subscription,
                    resource_group: id.resource_group,
                },
                &id.name,
            );
            Some((key, rule.clone()))
        })
        .collect();
    for (key, rule) in rules {
        let Some(frequency) = rule["properties"]["evaluationFrequency"]
            .as_str()
            .and_then(duration_nanos)
        else {
            continue;
        };
        let mut state = arm.monitor.rules.remove(&key).unwrap_or(RuleState {
            last_evaluated: now,
            series: BTreeMap::new(),
        });
        let mut done = 0u64;
        while state.last_evaluated.saturating_add(frequency) < now {
            if done == MAX_EVALUATIONS {
                let behind = (now - state.last_evaluated) / frequency;
                arm.monitor.evaluation_errors.push(json!({
                    "ruleId": rule["id"],
                    "time": format_time(now),
                    "error": format!("skipped {behind} evaluations: more than {MAX_EVALUATIONS} were due at once"),
                }));
                state.last_evaluated += behind * frequency;
                break;
            }
            let at = state.last_evaluated + frequency;
            evaluate(arm, &rule, &mut state, at, frequency);
            state.last_evaluated = at;
            done += 1;
        }
        arm.monitor.rules.insert(key, state);
    }
}

/// The tables of the scoped workspaces as a query at `at` sees them.
struct Window<'a> {
    arm: &'a ArmState,
    workspaces: &'a [String],
    from: i64,
    to: i64,
    at: i64,
}

impl Catalog for Window<'_> {
    fn schema(&self, table: &str) -> Option<Schema> {
        self.workspaces
            .iter()
            .any(|ws| {
                self.arm
                    .tables
                    .get(ws)
                    .and_then(|t| t.get(table))
                    .is_some_and(|t| t.available_at <= self.at)
            })
            .then(|| schemas::schema(table))
    }

    fn rows(&self, table: &str) -> Vec<Vec<Value>> {
        let mut rows = Vec::new();
        for ws in self.workspaces {
            let Some(t) = self.arm.tables.get(ws).and_then(|t| t.get(table)) else {
                continue;
            };
            rows.extend(
                t.rows
                    .iter()
                    .filter(|r| {
                        r.time_generated > self.from
                            && r.time_generated <= self.to
                            && r.ingested_at <= self.at
                    })
                    .map(|r| schemas::row(table, &r.record)),
            );
        }
        rows
    }
}

/// A workspace catalog for query validation at rule PUT: the tables that exist now.
pub struct Existing<'a> {
    pub arm: &'a ArmState,
    pub workspace: &'a str,
}

impl Catalog for Existing<'_> {
    fn schema(&self, table: &str) -> Option<Schema> {
        crate::arm::workspaces::has_table(self.arm, self.workspace, table)
            .then(|| schemas::schema(table))
    }
    fn rows(&self, _table: &str) -> Vec<Vec<Value>> {
        Vec::new()
    }
}

/// One alert series' measurement in one evaluation.
struct Measurement {
    key: String,
    condition: usize,
    dimensions: Vec<(String, String)>,
    value: f64,
    breached: bool,
}

fn scoped_workspaces(arm: &ArmState, rule: &serde_json::Map<String, Json>) -> Vec<String> {
    rule["properties"]["scopes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Json::as_str)
        .filter_map(|id| workspace_key_for_id(arm, id))
        .collect()
}

fn breaches(operator: &str, value: f64, threshold: f64) -> bool {
    match operator {
        "Equals" => value == threshold,
        "GreaterThan" => value > threshold,
        "GreaterThanOrEqual" => value >= threshold,
        "LessThan" => value < threshold,
        "LessThanOrEqual" => value <= threshold,
        _ => false,
    }
}

/// The series a query result splits into, with their aggregated values.
fn split(result: &Table, condition: &Json) -> Vec<(Vec<(String, String)>, f64)> {
    let dimensions: Vec<&Json> = condition["dimensions"]
        .as_array()
        .map(|d| d.iter().collect())
        .unwrap_or_default();
    let measure = condition["metricMeasureColumn"]
        .as_str()
        .and_then(|c| result.column_index(c));
    let aggregation = condition["timeAggregation"].as_str().unwrap_or("Count");
    let mut groups: Vec<(Dimensions, Vec<&Vec<Value>>)> = Vec::new();
    'rows: for row in &result.rows {
        let mut values = Vec::new();
        for d in &dimensions {
            let name = d["name"].as_str().unwrap_or_default();
            let value = result
                .column_index(name)
                .and_then(|i| row.get(i))
                .map(Value::to_text)
                .unwrap_or_default();
            let listed: Vec<&str> = d["values"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Json::as_str)
                .collect();
            let in_list = listed.iter().any(|v| *v == "*" || *v == value);
            let keep = match d["operator"].as_str().unwrap_or("Include") {
                "Exclude" => !listed.contains(&value.as_str()),
                _ => in_list,
            };
            if !keep {
                continue 'rows;
            }
            values.push((name.to_owned(), value));
        }
        match groups.iter_mut().find(|(k, _)| *k == values) {
            Some((_, rows)) => rows.push(row),
            None => groups.push((values, vec![row])),
        }
    }
    if dimensions.is_empty() && groups.is_empty() {
        groups.push((Vec::new(), Vec::new()));
    }
    groups
        .into_iter()
        .map(|(dims, rows)| {
            let numbers: Vec<f64> = match measure {
                Some(i) => rows
                    .iter()
                    .filter_map(|r| match r.get(i) {
                        Some(Value::Long(n)) => Some(*n as f64),
                        Some(Value::Real(x)) => Some(*x),
                        _ => None,
                    })
                    .collect(),
                None => Vec::new(),
            };
            let value = match aggregation {
                "Total" => numbers.iter().sum(),
                "Average" if !numbers.is_empty() => {
                    numbers.iter().sum::<f64>() / numbers.len() as f64
                }
                "Minimum" => numbers.iter().copied().fold(f64::NAN, f64::min),
                "Maximum" => numbers.iter().copied().fold(f64::NAN, f64::max),
                "Count" if measure.is_some() => numbers.len() as f64,
                "Count" => rows.len() as f64,
                _ => f64::NAN,
            };
            (dims, value)
        })
        .collect()
}

fn series_key(condition: usize, dimensions: &[(String, String)]) -> String {
    let mut key = condition.to_string();
    for (name, value) in dimensions {
        key.push('\u{1f}');
        key.push_str(name);
        key.push('=');
        key.push_str(value);
    }
    key
}

/// Measures every condition of `rule` at `at`; `Err` carries an evaluation error.
fn measure(
    arm: &ArmState,
    rule: &serde_json::Map<String, Json>,
    at: i64,
) -> Result<Vec<Measurement>, String> {
    let props = &rule["properties"];
    let workspaces = scoped_workspaces(arm, rule);
    let window = props["windowSize"]
        .as_str()
        .and_then(duration_nanos)
        .ok_or("the rule has no valid windowSize")?;
    let range = props["overrideQueryTimeRange"]
        .as_str()
        .and_then(duration_nanos)
        .unwrap_or(window);
    let mut out = Vec::new();
    for (index, condition) in props["criteria"]["allOf"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        let text = condition["query"].as_str().unwrap_or_default();
        let query = kql::parse(text).map_err(|e| e.message())?;
        let periods = condition["failingPeriods"]["numberOfEvaluationPeriods"]
            .as_i64()
            .unwrap_or(1)
            .clamp(1, 6);
        let needed = condition["failingPeriods"]["minFailingPeriodsToAlert"]
            .as_i64()
            .unwrap_or(1)
            .clamp(1, periods);
        let threshold = condition["threshold"].as_f64().unwrap_or(0.0);
        let operator = condition["operator"].as_str().unwrap_or("GreaterThan");
        // Newest window first: its value is the one an alert reports.
        let mut seen: Vec<(String, Dimensions, f64, i64)> = Vec::new();
        for period in 0..periods {
            let (from, to) = if periods == 1 {
                (at - range, at)
            } else {
                (at - (period + 1) * window, at - period * window)
            };
            let catalog = Window {
                arm,
                workspaces: &workspaces,
                from,
                to,
                at,
            };
            let result = kql::run(&query, &catalog, at).map_err(|e| e.message())?;
            for (dimensions, value) in split(&result, condition) {
                let key = series_key(index, &dimensions);
                let breach = i64::from(breaches(operator, value, threshold));
                match seen.iter_mut().find(|(k, ..)| *k == key) {
                    Some(entry) => entry.3 += breach,
                    None => seen.push((key, dimensions, value, breach)),
                }
            }
        }
        out.extend(
            seen.into_iter()
                .map(|(key, dimensions, value, breaching)| Measurement {
                    key,
                    condition: index,
                    dimensions,
                    value,
                    breached: breaching >= needed,
                }),
        );
    }
    Ok(out)
}

fn evaluate(
    arm: &mut ArmState,
    rule: &serde_json::Map<String, Json>,
    state: &mut RuleState,
    at: i64,
    frequency: i64,
) {
    let props = &rule["properties"];
    if props["enabled"] != json!(true) || rule["kind"].as_str().unwrap_or("LogAlert") != "LogAlert"
    {
        return;
    }
    let measurements = match measure(arm, rule, at) {
        Ok(m) => m,
        Err(error) => {
            arm.monitor.evaluation_errors.push(json!({
                "ruleId": rule["id"],
                "time": format_time(at),
                "error": error,
            }));
            return;
        }
    };
    let stateful = props["autoMitigate"].as_bool().unwrap_or(true);
    let mute = props["muteActionsDuration"]
        .as_str()
        .and_then(duration_nanos)
        .unwrap_or(0);
    let mut breached_keys = Vec::new();
    for m in &measurements {
        if !m.breached {
            continue;
        }
        breached_keys.push(m.key.clone());
        let series = state.series.entry(m.key.clone()).or_insert(Series {
            fired: false,
            alert_id: String::new(),
            quiet: 0,
            muted_until: i64::MIN,
        });
        series.quiet = 0;
        if stateful && series.fired {
            continue;
        }
        series.fired = true;
        series.alert_id = uuid::Uuid::new_v4().to_string();
        let muted = series.muted_until > at;
        if !muted && mute > 0 {
            series.muted_until = at.saturating_add(mute);
        }
        let alert = Alert {
            id: series.alert_id.clone(),
            rule,
            condition: m.condition,
            dimensions: &m.dimensions,
            value: m.value,
            at,
        };
        fire(arm, &alert, muted, stateful);
    }
    // Stateful series that did not breach: count quiet evaluations, resolve when enough.
    let resolve_after = evaluations_to_resolve(frequency);
    let mut resolved = Vec::new();
    for (key, series) in state.series.iter_mut() {
        if !series.fired || breached_keys.contains(key) {
            continue;
        }
        if !stateful {
            series.fired = false;
            continue;
        }
        series.quiet += 1;
        if series.quiet >= resolve_after {
            series.fired = false;
            series.quiet = 0;
            resolved.push(series.alert_id.clone());
        }
    }
    for alert_id in resolved {
        resolve(arm, rule, &alert_id, at);
    }
}

struct Alert<'a> {
    id: String,
    rule: &'a serde_json::Map<String, Json>,
    condition: usize,
    dimensions: &'a [(String, String)],
    value: f64,
    at: i64,
}

fn dimensions_json(dimensions: &[(String, String)]) -> Json {
    Json::Array(
        dimensions
            .iter()
            .map(|(name, value)| json!({"name": name, "value": value}))
            .collect(),
    )
}

fn severity(rule: &serde_json::Map<String, Json>) -> String {
    format!(
        "Sev{}",
        rule["properties"]["severity"].as_u64().unwrap_or(4)
    )
}

fn number(value: f64) -> Json {
    serde_json::Number::from_f64(value)
        .map(Json::Number)
        .unwrap_or(Json::Null)
}

fn fire(arm: &mut ArmState, alert: &Alert<'_>, muted: bool, stateful: bool) {
    let props = &alert.rule["properties"];
    let condition = &props["criteria"]["allOf"][alert.condition];
    let window = props["windowSize"]
        .as_str()
        .and_then(duration_nanos)
        .unwrap_or(0);
    let record = json!({
        "alertId": alert.id,
        "ruleId": alert.rule["id"],
        "ruleName": alert.rule["name"],
        "severity": severity(alert.rule),
        "monitorCondition": "Fired",
        "stateful": stateful,
        "firedDateTime": format_time(alert.at),
        "resolvedDateTime": null,
        "conditionIndex": alert.condition,
        "dimensions": dimensions_json(alert.dimensions),
        "metricValue": number(alert.value),
        "operator": condition["operator"],
        "threshold": condition["threshold"],
        "windowStartTime": format_time(alert.at - window),
        "windowEndTime": format_time(alert.at),
        "actionsSuppressed": muted,
    });
    arm.monitor.alerts.push(record.clone());
    if !muted {
        notify(arm, alert.rule, &record, "Fired", alert.at);
    }
}

fn resolve(arm: &mut ArmState, rule: &serde_json::Map<String, Json>, alert_id: &str, at: i64) {
    let Some(record) = arm
        .monitor
        .alerts
        .iter_mut()
        .find(|a| a["alertId"] == json!(alert_id))
    else {
        return;
    };
    record["monitorCondition"] = json!("Resolved");
    record["resolvedDateTime"] = json!(format_time(at));
    let record = record.clone();
    notify(arm, rule, &record, "Resolved", at);
}

/// Receiver kinds: property name, the kind's short name, and how to read its address.
const RECEIVERS: &[(&str, &str, &[&str])] = &[
    ("emailReceivers", "email", &["emailAddress"]),
    ("smsReceivers", "sms", &["countryCode", "phoneNumber"]),
    ("voiceReceivers", "voice", &["countryCode", "phoneNumber"]),
    ("azureAppPushReceivers", "azureAppPush", &["emailAddress"]),
    ("webhookReceivers", "webhook", &["serviceUri"]),
    ("logicAppReceivers", "logicApp", &["callbackUrl"]),
    (
        "azureFunctionReceivers",
        "azureFunction",
        &["httpTriggerUrl"],
    ),
    (
        "automationRunbookReceivers",
        "automationRunbook",
        &["webhookResourceId"],
    ),
    ("itsmReceivers", "itsm", &["connectionId"]),
    ("armRoleReceivers", "armRole", &["roleId"]),
    (
        "eventHubReceivers",
        "eventHub",
        &["eventHubNameSpace", "eventHubName"],
    ),
];

fn address(kind: &str, receiver: &Json, fields: &[&str]) -> String {
    let part = |f: &str| receiver[f].as_str().unwrap_or_default().to_owned();
    match kind {
        "sms" | "voice" => format!("+{} {}", part("countryCode"), part("phoneNumber")),
        _ => fields.iter().map(|f| part(f)).collect::<Vec<_>>().join("/"),
    }
}

/// Rate limiting ("Rate limiting for voice, SMS, emails, …"): `None` when the notification
/// may go, else the reason it was suppressed. Also records the delivery.
fn rate_limit(
    monitor: &mut MonitorState,
    kind: &str,
    address: &str,
    at: i64,
) -> Option<&'static str> {
    let (limit, window) = match kind {
        "sms" | "voice" => (1usize, 5 * MINUTE),
        "email" => (100usize, 60 * MINUTE),
        _ => return None,
    };
    let key = format!("{kind}:{}", address.to_lowercase());
    let sent = monitor.deliveries.entry(key).or_default();
    sent.retain(|t| *t > at - window);
    if sent.len() >= limit {
        return Some("RateLimited");
    }
    sent.push(at);
    None
}

fn notify(
    arm: &mut ArmState,
    rule: &serde_json::Map<String, Json>,
    alert: &Json,
    condition: &str,
    at: i64,
) {
    let groups: Vec<String> = rule["properties"]["actions"]["actionGroups"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Json::as_str)
        .map(str::to_owned)
        .collect();
    for group_id in groups {
        let group = parse_resource_id(&group_id).and_then(|p| {
            let key = scoped_key(
                &RgScope {
                    subscription: p.subscription,
                    resource_group: p.resource_group,
                },
                &p.name,
            );
            arm.action_groups.get_latest(&key).cloned()
        });
        // Missing or disabled groups send nothing ("Action groups": a disabled group does not
        // send notifications).
        let Some(group) = group.filter(|g| g["properties"]["enabled"] == json!(true)) else {
            continue;
        };
        for (list, kind, fields) in RECEIVERS {
            // Resolved notifications go out by email and webhook only ("Alerts and state").
            if condition == "Resolved" && !["email", "webhook"].contains(kind) {
                continue;
            }
            for receiver in group["properties"][*list].as_array().into_iter().flatten() {
                if receiver
                    .get("status")
                    .and_then(Json::as_str)
                    .is_some_and(|s| s != "Enabled")
                {
                    continue;
                }
                let to = address(kind, receiver, fields);
                let suppressed = rate_limit(&mut arm.monitor, kind, &to, at);
                let notification = json!({
                    "id": uuid::Uuid::new_v4().to_string(),
                    "alertId": alert["alertId"],
                    "ruleId": alert["ruleId"],
                    "ruleName": alert["ruleName"],
                    "severity": alert["severity"],
                    "monitorCondition": condition,
                    "firedDateTime": alert["firedDateTime"],
                    "resolvedDateTime": alert["resolvedDateTime"],
                    "dimensions": alert["dimensions"],
                    "metricValue": alert["metricValue"],
                    "actionGroupId": group["id"],
                    "receiverKind": kind,
                    "receiverName": receiver["name"],
                    "address": to,
                    "useCommonAlertSchema": receiver.get("useCommonAlertSchema").cloned().unwrap_or(Json::Null),
                    "delivered": suppressed.is_none(),
                    "suppressedReason": suppressed,
                    "sentDateTime": format_time(at),
                });
                arm.monitor.notifications.push(notification);
                if suppressed.is_some() && *kind == "email" {
                    rate_limit_notice(&mut arm.monitor, &to, at);
                }
            }
        }
    }
}

/// "When an email address is rate limited, another notification is sent to communicate the
/// rate limiting": once per limiting hour.
fn rate_limit_notice(monitor: &mut MonitorState, address: &str, at: i64) {
    let key = format!("notice:{}", address.to_lowercase());
    let sent = monitor.deliveries.entry(key).or_default();
    sent.retain(|t| *t > at - 60 * MINUTE);
    if !sent.is_empty() {
        return;
    }
    sent.push(at);
    monitor.notifications.push(json!({
        "id": uuid::Uuid::new_v4().to_string(),
        "receiverKind": "email",
        "address": address,
        "rateLimitNotice": true,
        "delivered": true,
        "sentDateTime": format_time(at),
    }));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_resolution_periods() {
        assert_eq!(duration_nanos("PT5M"), Some(5 * MINUTE));
        assert_eq!(duration_nanos("P1DT1H"), Some(25 * 60 * MINUTE));
        assert_eq!(duration_nanos("PT7X"), None);
        assert_eq!(duration_nanos("PT"), None);
        assert_eq!(evaluations_to_resolve(MINUTE), 10);
        assert_eq!(evaluations_to_resolve(5 * MINUTE), 3);
        assert_eq!(evaluations_to_resolve(60 * MINUTE), 2);
        assert_eq!(evaluations_to_resolve(720 * MINUTE), 1);
    }

    #[test]
    fn results_split_by_dimension_and_filter_values() {
        let result = Table {
            columns: vec![
                ("UserPrincipalName".into(), kql::ColumnType::Str),
                ("count_".into(), kql::ColumnType::Long),
            ],
            rows: vec![
                vec![Value::Str("a@x".into()), Value::Long(2)],
                vec![Value::Str("b@x".into()), Value::Long(1)],
            ],
        };
        let all = json!({"timeAggregation": "Count",
            "dimensions": [{"name": "UserPrincipalName", "operator": "Include", "values": ["*"]}]});
        let series = split(&result, &all);
        assert_eq!(series.len(), 2);
        assert_eq!(series[0].1, 1.0, "Count counts rows per series");
        let total = json!({"timeAggregation": "Total", "metricMeasureColumn": "count_",
            "dimensions": [{"name": "UserPrincipalName", "operator": "Exclude", "values": ["b@x"]}]});
        assert_eq!(
            split(&result, &total),
            vec![(vec![("UserPrincipalName".into(), "a@x".into())], 2.0)]
        );
        let none = json!({"timeAggregation": "Count"});
        assert_eq!(split(&result, &none), vec![(vec![], 2.0)]);
    }

    #[test]
    fn sms_is_limited_to_one_per_five_minutes_per_number() {
        let mut m = MonitorState::default();
        assert_eq!(rate_limit(&mut m, "sms", "+1 555", 0), None);
        assert_eq!(
            rate_limit(&mut m, "sms", "+1 555", MINUTE),
            Some("RateLimited")
        );
        assert_eq!(rate_limit(&mut m, "sms", "+1 556", MINUTE), None);
        assert_eq!(rate_limit(&mut m, "sms", "+1 555", 6 * MINUTE), None);
        assert_eq!(rate_limit(&mut m, "webhook", "https://x", 0), None);
    }
}
