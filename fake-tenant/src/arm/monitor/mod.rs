//! The Azure Monitor side of the emulated tenant: Entra log records flowing through diagnostic
//! settings into Log Analytics tables, and scheduled query rules evaluated over them.
//!
//! Everything here runs on an **emulated clock**: real time plus an offset that tests advance
//! with `POST /_fake/clock/advance {"seconds": N}`. Log records are stamped with it
//! (`TimeGenerated`), tables become queryable by it, and alert rules are evaluated on it, so a
//! test can move through evaluation periods without waiting. Evaluation is lazy, like PIM
//! provisioning: nothing runs in the background; before anything that depends on alert state
//! (notification reads, clock advances, rule and action-group writes) every enabled rule
//! catches up with the evaluations that are due (see `alerts`).
//!
//! Delivery follows "Configure Microsoft Entra diagnostic settings for activity logs"
//! (learn.microsoft.com): each diagnostic setting that exports a category to a workspace
//! delivers its own copy of every record of that category — two settings exporting the same
//! category to the same workspace ingest it twice — and the category's table is created by the
//! first ingestion ("Entra log tables exist only once logs have flowed", README).

pub mod alerts;
pub mod schemas;
pub mod signins;

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Map, Value as Json_};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::workspaces::{workspace_key_for_id, LogRow, LogTable};
use super::ArmState;
use crate::AppState;

/// Nanoseconds per second, for the clock arithmetic.
pub const SECOND: i64 = 1_000_000_000;

/// The monitoring pipeline's state inside `ArmState`.
#[derive(Default)]
pub struct MonitorState {
    /// How far the emulated clock runs ahead of real time, in nanoseconds (never negative).
    pub clock_offset: i64,
    /// Entra's own audit log (Graph `directoryAudit` shape), oldest first; what diagnostic
    /// settings export as the `AuditLogs` category. Written by `crate::audit`.
    pub audit_log: Vec<Map<String, Json_>>,
    /// Evaluation state per scheduled query rule (collection key).
    pub rules: BTreeMap<String, alerts::RuleState>,
    /// Fired (and resolved) alerts, oldest first.
    pub alerts: Vec<Json_>,
    /// One entry per receiver notified (or rate-limited), oldest first.
    pub notifications: Vec<Json_>,
    /// Evaluations that could not run (a query that no longer parses or binds).
    pub evaluation_errors: Vec<Json_>,
    /// Delivery times per rate-limited address (SMS, voice, email), for the action-group
    /// rate limits.
    pub deliveries: BTreeMap<String, Vec<i64>>,
}

fn real_now() -> i64 {
    i64::try_from(OffsetDateTime::now_utc().unix_timestamp_nanos()).unwrap_or(i64::MAX)
}

impl MonitorState {
    /// The emulated time, in nanoseconds since the epoch.
    pub fn now(&self) -> i64 {
        real_now().saturating_add(self.clock_offset)
    }
}

/// RFC 3339 text of an emulated instant.
pub fn format_time(ns: i64) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ns))
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_default()
}

pub fn parse_time(text: &str) -> Option<i64> {
    OffsetDateTime::parse(text, &Rfc3339)
        .ok()
        .and_then(|t| i64::try_from(t.unix_timestamp_nanos()).ok())
}

/// Entra log category → the Log Analytics table its records land in ("What are the identity
/// logs you can stream to an endpoint?" and the table references).
pub const CATEGORY_TABLES: &[(&str, &str)] = &[
    ("AuditLogs", "AuditLogs"),
    ("SignInLogs", "SigninLogs"),
    (
        "NonInteractiveUserSignInLogs",
        "AADNonInteractiveUserSignInLogs",
    ),
    (
        "ServicePrincipalSignInLogs",
        "AADServicePrincipalSignInLogs",
    ),
    ("ManagedIdentitySignInLogs", "AADManagedIdentitySignInLogs"),
    ("ProvisioningLogs", "AADProvisioningLogs"),
    ("ADFSSignInLogs", "ADFSSignInLogs"),
    ("RiskyUsers", "AADRiskyUsers"),
    ("UserRiskEvents", "AADUserRiskEvents"),
    ("NetworkAccessTrafficLogs", "NetworkAccessTraffic"),
    ("RiskyServicePrincipals", "AADRiskyServicePrincipals"),
    (
        "ServicePrincipalRiskEvents",
        "AADServicePrincipalRiskEvents",
    ),
    (
        "EnrichedOffice365AuditLogs",
        "EnrichedMicrosoft365AuditLogs",
    ),
    ("MicrosoftGraphActivityLogs", "MicrosoftGraphActivityLogs"),
    ("RemoteNetworkHealthLogs", "RemoteNetworkHealthLogs"),
];

/// The table a category's records land in (category matched case-insensitively).
pub fn table_for(category: &str) -> Option<&'static str> {
    CATEGORY_TABLES
        .iter()
        .find(|(c, _)| c.eq_ignore_ascii_case(category))
        .map(|(_, t)| *t)
}

/// A workspace a record went to, for the admin API's answers.
fn delivery(workspace_id: &str, table: &str) -> Json_ {
    json!({"workspaceId": workspace_id, "table": table})
}

/// Delivers one Entra log record of `category` through every diagnostic setting that exports
/// the category to a workspace. `record` carries Log Analytics column names; `TenantId` (the
/// workspace's customer id) and `Type` are set per destination. The record becomes queryable
/// `ingestion_delay` nanoseconds after its `TimeGenerated`. Returns where it went.
pub fn deliver(
    arm: &mut ArmState,
    category: &str,
    record: &Map<String, Json_>,
    time_generated: i64,
    ingestion_delay: i64,
) -> Vec<Json_> {
    let Some(table) = table_for(category) else {
        return Vec::new();
    };
    let destinations: Vec<(String, String)> = arm
        .diagnostic_settings
        .list_latest()
        .into_iter()
        .filter(|s| super::diagnostic_settings::exports(s, category))
        .filter_map(|s| s["properties"]["workspaceId"].as_str())
        .filter_map(|id| workspace_key_for_id(arm, id).map(|key| (key, id.to_owned())))
        .collect();
    let ingested_at = time_generated.saturating_add(ingestion_delay.max(0));
    let mut delivered = Vec::new();
    for (key, workspace_id) in destinations {
        let customer_id = arm
            .workspaces
            .get_latest(&key)
            .map(|ws| ws["properties"]["customerId"].clone())
            .unwrap_or(Json_::Null);
        let mut copy = record.clone();
        copy.insert("TenantId".into(), customer_id);
        copy.insert("Type".into(), json!(table));
        let tables = arm.tables.entry(key).or_default();
        let entry = tables.entry(table.to_owned()).or_insert_with(|| LogTable {
            name: table.to_owned(),
            available_at: ingested_at,
            rows: Vec::new(),
        });
        entry.available_at = entry.available_at.min(ingested_at);
        entry.rows.push(LogRow {
            time_generated,
            ingested_at,
            record: copy,
        });
        delivered.push(delivery(&workspace_id, table));
    }
    delivered
}

// ---------------------------------------------------------------------------------------------
// Admin API

fn admin_error(message: impl Into<String>) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({"error": message.into()})),
    )
        .into_response()
}

fn clock_json(monitor: &MonitorState) -> Json_ {
    json!({
        "now": format_time(monitor.now()),
        "offsetSeconds": monitor.clock_offset / SECOND,
    })
}

/// `GET /_fake/clock`: the emulated time and its offset from real time.
pub async fn get_clock(State(state): State<AppState>) -> Json<Json_> {
    Json(clock_json(&state.tenant().arm.monitor))
}

/// `POST /_fake/clock/advance {"seconds": N}`: moves the emulated clock forward (N > 0), then
/// runs every alert evaluation that became due.
pub async fn advance_clock(State(state): State<AppState>, Json(body): Json<Json_>) -> Response {
    let Some(seconds) = body["seconds"].as_i64().filter(|s| *s > 0) else {
        return admin_error("advance needs 'seconds', a positive integer");
    };
    let Some(step) = seconds.checked_mul(SECOND) else {
        return admin_error("'seconds' is too large");
    };
    let mut tenant = state.tenant();
    let monitor = &mut tenant.arm.monitor;
    monitor.clock_offset = monitor.clock_offset.saturating_add(step);
    alerts::catch_up(&mut tenant);
    Json(clock_json(&tenant.arm.monitor)).into_response()
}

/// `GET /_fake/arm/notifications`: every receiver notified so far, after running the
/// evaluations that are due.
pub async fn list_notifications(State(state): State<AppState>) -> Json<Json_> {
    let mut tenant = state.tenant();
    alerts::catch_up(&mut tenant);
    Json(json!({"value": tenant.arm.monitor.notifications}))
}

/// `DELETE /_fake/arm/notifications`: forgets the notifications (not the alert state).
pub async fn clear_notifications(State(state): State<AppState>) -> StatusCode {
    let mut tenant = state.tenant();
    alerts::catch_up(&mut tenant);
    tenant.arm.monitor.notifications.clear();
    StatusCode::NO_CONTENT
}

/// `GET /_fake/arm/alerts`: fired and resolved alerts, and evaluations that failed.
pub async fn list_alerts(State(state): State<AppState>) -> Json<Json_> {
    let mut tenant = state.tenant();
    alerts::catch_up(&mut tenant);
    let monitor = &tenant.arm.monitor;
    Json(json!({
        "value": monitor.alerts,
        "evaluationErrors": monitor.evaluation_errors,
    }))
}

/// `GET /_fake/directory/auditLogs`: Entra's audit log (records whose activity time has come).
pub async fn list_audit_logs(State(state): State<AppState>) -> Json<Json_> {
    let tenant = state.tenant();
    let now = tenant.arm.monitor.now();
    let records: Vec<Json_> = tenant
        .arm
        .monitor
        .audit_log
        .iter()
        .filter(|r| {
            r["activityDateTime"]
                .as_str()
                .and_then(parse_time)
                .is_none_or(|t| t <= now)
        })
        .cloned()
        .map(Json_::Object)
        .collect();
    Json(json!({ "value": records }))
}

/// `GET /_fake/arm/workspaces/{name}/logs/{table}`: the rows a workspace table holds (as Log
/// Analytics would return them for `Table`), oldest first, with their ingestion times.
pub async fn list_table_rows(
    State(state): State<AppState>,
    axum::extract::Path((workspace, table)): axum::extract::Path<(String, String)>,
) -> Response {
    let tenant = state.tenant();
    let arm = &tenant.arm;
    let key = arm
        .workspaces
        .list_latest()
        .into_iter()
        .find(|ws| {
            ws["name"]
                .as_str()
                .is_some_and(|n| n.eq_ignore_ascii_case(&workspace))
        })
        .and_then(|ws| ws["id"].as_str())
        .and_then(|id| workspace_key_for_id(arm, id));
    let Some(key) = key else {
        return admin_error(format!("no workspace named '{workspace}'"));
    };
    let rows: Vec<Json_> = arm
        .tables
        .get(&key)
        .and_then(|t| t.get(&table))
        .map(|t| {
            t.rows
                .iter()
                .map(|r| {
                    json!({
                        "ingestedAt": format_time(r.ingested_at),
                        "record": r.record,
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    Json(json!({ "value": rows })).into_response()
}
