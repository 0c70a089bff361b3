//! Log Analytics workspaces (`Microsoft.OperationalInsights/workspaces`), their tables, and
//! the rows Entra's logs put into them.
//!
//! Azure Monitor creates a workspace's Entra log tables (`SigninLogs`, `AuditLogs`, ...) the
//! first time such records arrive, not when the diagnostic setting is created. That is why a
//! log alert on `SigninLogs` fails in a fresh workspace even though export is configured. Here a
//! table appears only when `monitor::deliver` ingests a record through an enabled diagnostic
//! setting (a simulated sign-in, a directory change's audit record), once its ingestion delay
//! has passed on the emulated clock.

use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Map, Value};

use super::resource_groups::normalize_location;
use super::{
    arm_error, as_stored, get_reply, json_body, json_response, list_reply, list_response,
    method_not_allowed, required_location, scoped_key, tags, ArmRequest, ArmState, ListScope,
    Reply, RgScope,
};
use crate::error::ArmError;
use crate::state::Tenant;
use crate::AppState;

/// Newest first. 2025-07-01 is azure-mgmt-loganalytics 14's default
/// (`Microsoft.OperationalInsights/stable/2025-07-01`); the workspace and table shapes this
/// emulator returns are the same in every listed version for the members it serves.
pub const API_VERSIONS: &[&str] = &["2025-07-01", "2023-09-01", "2022-10-01", "2020-08-01"];

const TABLE_TYPE: &str = "Microsoft.OperationalInsights/workspaces/tables";
const SKUS: &[&str] = &[
    "Free",
    "Standard",
    "Premium",
    "PerNode",
    "PerGB2018",
    "Standalone",
    "CapacityReservation",
    "LACluster",
];

/// A table in a workspace. `available_at` is the emulated time (ns) from which it is
/// queryable: its first record's ingestion, or the start of time for seeded tables.
#[derive(Debug, Clone)]
pub struct LogTable {
    pub name: String,
    pub available_at: i64,
    pub rows: Vec<LogRow>,
}

/// One record in a table, with the emulated times it was generated and became queryable.
#[derive(Debug, Clone)]
pub struct LogRow {
    pub time_generated: i64,
    pub ingested_at: i64,
    /// Log Analytics column name → value.
    pub record: Map<String, Value>,
}

impl LogTable {
    pub fn is_available(&self, now: i64) -> bool {
        now >= self.available_at
    }
}

/// The canonical id Log Analytics reports for a workspace (it lower-cases the fixed segments).
pub fn workspace_id(sub: &str, rg: &str, name: &str) -> String {
    format!("/subscriptions/{sub}/resourcegroups/{rg}/providers/microsoft.operationalinsights/workspaces/{name}")
}

/// Resolves a workspace resource id (any casing) to its collection key, if it exists.
pub fn workspace_key_for_id(arm: &ArmState, id: &str) -> Option<String> {
    let parsed = super::parse_resource_id(id)?;
    if parsed.resource_type != "microsoft.operationalinsights/workspaces" {
        return None;
    }
    let scope = RgScope {
        subscription: parsed.subscription,
        resource_group: parsed.resource_group,
    };
    let key = scoped_key(&scope, &parsed.name);
    arm.workspaces.get_latest(&key).map(|_| key)
}

/// Whether a table is queryable in the workspace now (emulated clock). Case-sensitive, like
/// KQL.
pub fn has_table(arm: &ArmState, workspace_key: &str, table: &str) -> bool {
    let now = arm.monitor.now();
    arm.tables
        .get(workspace_key)
        .and_then(|tables| tables.get(table))
        .is_some_and(|t| t.is_available(now))
}

fn workspace_resource(
    sub: &str,
    rg: &str,
    name: &str,
    location: &str,
    customer_id: &str,
    properties: &Map<String, Value>,
    tags: Value,
) -> Map<String, Value> {
    let now = super::now_rfc3339();
    let sku = properties
        .get("sku")
        .and_then(|s| s["name"].as_str())
        .unwrap_or("PerGB2018");
    let retention = properties
        .get("retentionInDays")
        .and_then(Value::as_u64)
        .unwrap_or(30);
    let value = json!({
        "id": workspace_id(sub, rg, name),
        "name": name,
        "type": "Microsoft.OperationalInsights/workspaces",
        "location": normalize_location(location),
        "tags": tags,
        "properties": {
            "customerId": customer_id,
            "provisioningState": "Succeeded",
            "sku": {"name": sku, "lastSkuUpdate": now},
            "retentionInDays": retention,
            "features": {"legacy": 0, "searchVersion": 1, "enableLogAccessUsingOnlyResourcePermissions": true},
            "workspaceCapping": {"dailyQuotaGb": -1.0, "dataIngestionStatus": "RespectQuota"},
            "publicNetworkAccessForIngestion": "Enabled",
            "publicNetworkAccessForQuery": "Enabled",
            "createdDate": now,
            "modifiedDate": now,
        },
    });
    match value {
        Value::Object(map) => map,
        _ => unreachable!("json! object literal"),
    }
}

fn table_resource(workspace_id: &str, name: &str) -> Value {
    json!({
        "id": format!("{workspace_id}/tables/{name}"),
        "name": name,
        "type": TABLE_TYPE,
        "properties": {
            "retentionInDays": 30,
            "totalRetentionInDays": 30,
            "archiveRetentionInDays": 0,
            "retentionInDaysAsDefault": true,
            "totalRetentionInDaysAsDefault": true,
            "plan": "Analytics",
            "provisioningState": "Succeeded",
            "schema": {"name": name, "tableType": "Microsoft", "tableSubType": "Any"},
        },
    })
}

// ---------------------------------------------------------------------------------------------
// Seeds and dumps

/// Seed entry: `{subscriptionId, resourceGroup, name, location, customerId, retentionInDays?,
/// sku?, tags?, tables: ["Heartbeat", ...], logs?: {"SigninLogs": [{ingestedAt, record}]}}`.
pub fn seed_workspace(arm: &mut ArmState, ws: &Value) -> Result<(), String> {
    let what = "workspaces[]";
    let sub = arm.seeded_subscription(ws, what)?;
    let rg_name = super::str_field(ws, "resourceGroup", what)?;
    let rg = arm
        .resource_group(&sub, rg_name)
        .and_then(|rg| rg["name"].as_str())
        .map(str::to_owned)
        .ok_or_else(|| format!("arm seed: workspace names unknown resource group '{rg_name}'"))?;
    let name = super::str_field(ws, "name", what)?;
    let location = super::str_field(ws, "location", what)?;
    let customer_id = super::str_field(ws, "customerId", what)?;
    let mut properties = Map::new();
    if let Some(r) = ws.get("retentionInDays") {
        properties.insert("retentionInDays".into(), r.clone());
    }
    if let Some(sku) = ws.get("sku").and_then(Value::as_str) {
        properties.insert("sku".into(), json!({ "name": sku }));
    }
    let tags = ws.get("tags").cloned().unwrap_or_else(|| json!({}));
    let resource = workspace_resource(&sub, &rg, name, location, customer_id, &properties, tags);
    let scope = RgScope {
        subscription: sub,
        resource_group: rg,
    };
    let key = scoped_key(&scope, name);
    arm.workspaces.seed(&key, resource);
    let tables = arm.tables.entry(key).or_default();
    for table in super::array(ws, "tables")? {
        let table = table
            .as_str()
            .ok_or("arm seed: workspace tables must be strings")?;
        tables.insert(
            table.to_owned(),
            LogTable {
                name: table.to_owned(),
                available_at: i64::MIN,
                rows: Vec::new(),
            },
        );
    }
    if let Some(logs) = ws.get("logs").and_then(Value::as_object) {
        for (table, rows) in logs {
            let entry = tables.entry(table.clone()).or_insert_with(|| LogTable {
                name: table.clone(),
                available_at: i64::MIN,
                rows: Vec::new(),
            });
            for row in rows.as_array().into_iter().flatten() {
                let record = row["record"]
                    .as_object()
                    .cloned()
                    .ok_or("arm seed: workspace logs rows need a 'record' object")?;
                let time = |v: &Value| v.as_str().and_then(super::monitor::parse_time);
                let time_generated = time(&record["TimeGenerated"])
                    .ok_or("arm seed: workspace log records need an RFC 3339 'TimeGenerated'")?;
                let ingested_at = time(&row["ingestedAt"]).unwrap_or(time_generated);
                entry.rows.push(LogRow {
                    time_generated,
                    ingested_at,
                    record,
                });
            }
        }
    }
    Ok(())
}

pub fn dump_workspace(arm: &ArmState, ws: &Map<String, Value>) -> Value {
    let id = super::parse_resource_id(ws["id"].as_str().unwrap_or_default());
    let (sub, rg) = id
        .map(|i| (i.subscription, i.resource_group))
        .unwrap_or_default();
    let name = ws["name"].as_str().unwrap_or_default();
    let key = scoped_key(
        &RgScope {
            subscription: sub.clone(),
            resource_group: rg.clone(),
        },
        name,
    );
    let now = arm.monitor.now();
    let tables: Vec<&str> = arm
        .tables
        .get(&key)
        .map(|t| {
            t.values()
                .filter(|t| t.is_available(now))
                .map(|t| t.name.as_str())
                .collect()
        })
        .unwrap_or_default();
    // Rows keep their emulated times, so a dump reloads into the same query results.
    let logs: Map<String, Value> = arm
        .tables
        .get(&key)
        .map(|t| {
            t.values()
                .filter(|t| !t.rows.is_empty())
                .map(|t| {
                    let rows: Vec<Value> = t
                        .rows
                        .iter()
                        .map(|r| {
                            json!({
                                "ingestedAt": super::monitor::format_time(r.ingested_at),
                                "record": r.record,
                            })
                        })
                        .collect();
                    (t.name.clone(), Value::Array(rows))
                })
                .collect()
        })
        .unwrap_or_default();
    json!({
        "subscriptionId": sub,
        "resourceGroup": rg,
        "name": name,
        "location": ws["location"],
        "customerId": ws["properties"]["customerId"],
        "retentionInDays": ws["properties"]["retentionInDays"],
        "sku": ws["properties"]["sku"]["name"],
        "tags": ws["tags"],
        "tables": tables,
        "logs": logs,
    })
}

// ---------------------------------------------------------------------------------------------
// Handlers

fn workspace_not_found(scope: &RgScope, name: &str) -> Response {
    ArmError::resource_not_found(
        "Microsoft.OperationalInsights/workspaces",
        name,
        Some(&scope.resource_group),
    )
    .into_response()
}

pub fn collection(state: &AppState, req: &ArmRequest, scope: &RgScope) -> Reply {
    list_reply(
        state,
        req,
        ListScope::ResourceGroup(scope),
        |arm| &arm.workspaces,
        as_stored,
    )
}

pub fn item(state: &AppState, req: &ArmRequest, scope: &RgScope, name: &str) -> Reply {
    let key = scoped_key(scope, name);
    match req.method {
        Method::GET => get_reply(
            state,
            |arm| &arm.workspaces,
            &key,
            as_stored,
            || workspace_not_found(scope, name),
        ),
        Method::PUT => {
            let body = json_body(req)?;
            let location = required_location(&body)?;
            let tags = tags(&body)?;
            let properties = body
                .get("properties")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default();
            validate_workspace_properties(&properties)?;
            let mut tenant = state.tenant();
            let arm = &mut tenant.arm;
            let (sub, rg) = canonical_scope(arm, scope);
            let existing = arm.workspaces.get_latest(&key).cloned();
            let (status, name, customer_id) = match &existing {
                Some(ws) => (
                    StatusCode::OK,
                    ws["name"].as_str().unwrap_or(name).to_owned(),
                    ws["properties"]["customerId"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                ),
                None => (
                    StatusCode::CREATED,
                    name.to_owned(),
                    uuid::Uuid::new_v4().to_string(),
                ),
            };
            let mut resource =
                workspace_resource(&sub, &rg, &name, &location, &customer_id, &properties, tags);
            if let Some(created) = existing
                .as_ref()
                .map(|ws| ws["properties"]["createdDate"].clone())
            {
                resource["properties"]["createdDate"] = created;
            }
            arm.workspaces.put(&key, resource.clone());
            arm.tables.entry(key).or_default();
            Ok(json_response(status, Value::Object(resource)))
        }
        Method::DELETE => {
            let mut tenant = state.tenant();
            if tenant.arm.workspaces.remove(&key).is_none() {
                return Ok(StatusCode::NO_CONTENT.into_response());
            }
            tenant.arm.tables.remove(&key);
            Ok(StatusCode::OK.into_response())
        }
        _ => Err(method_not_allowed(&req.method)),
    }
}

fn validate_workspace_properties(properties: &Map<String, Value>) -> Result<(), Response> {
    if let Some(sku) = properties.get("sku") {
        let name = sku["name"].as_str().unwrap_or_default();
        if !SKUS.iter().any(|s| s.eq_ignore_ascii_case(name)) {
            return Err(arm_error(
                StatusCode::BAD_REQUEST,
                "InvalidParameter",
                format!(
                    "The sku '{name}' is not valid. Valid skus are: {}.",
                    SKUS.join(", ")
                ),
            ));
        }
    }
    if let Some(days) = properties.get("retentionInDays") {
        // PerGB2018 workspaces keep data 30 to 730 days.
        match days.as_u64() {
            Some(d) if (30..=730).contains(&d) => {}
            _ => {
                return Err(arm_error(
                    StatusCode::BAD_REQUEST,
                    "InvalidParameter",
                    format!(
                        "retentionInDays '{days}' is out of range: it must be between 30 and 730."
                    ),
                ))
            }
        }
    }
    Ok(())
}

/// The seeded spelling of the subscription and resource group names.
pub fn canonical_scope(arm: &ArmState, scope: &RgScope) -> (String, String) {
    let sub = arm
        .subscription(&scope.subscription)
        .map(|s| s.id.clone())
        .unwrap_or_else(|| scope.subscription.clone());
    let rg = arm
        .resource_group(&scope.subscription, &scope.resource_group)
        .and_then(|rg| rg["name"].as_str())
        .unwrap_or(&scope.resource_group)
        .to_owned();
    (sub, rg)
}

/// The id of the workspace a tables request names, as readers see it after ARM's replication
/// lag, or the workspace's 404.
fn visible_workspace_id(tenant: &Tenant, scope: &RgScope, ws: &str) -> Result<String, Response> {
    tenant
        .arm
        .workspaces
        .get(&scoped_key(scope, ws), tenant.behaviour.arm_lag())
        .map(|workspace| workspace["id"].as_str().unwrap_or_default().to_owned())
        .ok_or_else(|| workspace_not_found(scope, ws))
}

pub fn tables(state: &AppState, req: &ArmRequest, scope: &RgScope, ws: &str) -> Reply {
    if req.method != Method::GET {
        return Err(method_not_allowed(&req.method));
    }
    let tenant = state.tenant();
    let id = visible_workspace_id(&tenant, scope, ws)?;
    let key = scoped_key(scope, ws);
    let now = tenant.arm.monitor.now();
    let items = tenant
        .arm
        .tables
        .get(&key)
        .map(|tables| {
            tables
                .values()
                .filter(|t| t.is_available(now))
                .map(|t| table_resource(&id, &t.name))
                .collect()
        })
        .unwrap_or_default();
    Ok(list_response(items))
}

pub fn table(state: &AppState, req: &ArmRequest, scope: &RgScope, ws: &str, table: &str) -> Reply {
    if req.method != Method::GET {
        return Err(method_not_allowed(&req.method));
    }
    let tenant = state.tenant();
    let id = visible_workspace_id(&tenant, scope, ws)?;
    if !has_table(&tenant.arm, &scoped_key(scope, ws), table) {
        return Err(ArmError::resource_not_found(
            "Microsoft.OperationalInsights/workspaces/tables",
            &format!("{ws}/{table}"),
            Some(&scope.resource_group),
        )
        .into_response());
    }
    Ok(json_response(StatusCode::OK, table_resource(&id, table)))
}
