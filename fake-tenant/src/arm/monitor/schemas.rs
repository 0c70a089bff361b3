//! Column lists of the Log Analytics tables Entra exports into, from the Azure Monitor Logs
//! table references ("SigninLogs", "AADNonInteractiveUserSignInLogs", "AuditLogs";
//! MicrosoftDocs/azure-reference-other, `azure-monitor-ref/tables/includes/*-include.md`).
//! Tables the emulator has no schema for (`Heartbeat`, `Usage`, …) are open: any column name
//! resolves, and they hold no rows.

use crate::arm::kql::{ColumnType, Schema, Value};
use serde_json::{Map, Value as Json};

use ColumnType::{Bool, DateTime, Dynamic, Long, Real, Str};

/// Columns of `SigninLogs` (types as the table reference lists them).
const SIGNIN_LOGS: &[(&str, ColumnType)] = &[
    ("AADTenantId", Str),
    ("AlternateSignInName", Str),
    ("AppDisplayName", Str),
    ("AppId", Str),
    ("AppliedConditionalAccessPolicies", Str),
    ("AppliedEventListeners", Dynamic),
    ("AuthenticationContextClassReferences", Str),
    ("AuthenticationDetails", Str),
    ("AuthenticationMethodsUsed", Str),
    ("AuthenticationProcessingDetails", Str),
    ("AuthenticationProtocol", Str),
    ("AuthenticationRequirement", Str),
    ("AuthenticationRequirementPolicies", Str),
    ("AutonomousSystemNumber", Str),
    ("Category", Str),
    ("ClientAppUsed", Str),
    ("ConditionalAccessPolicies", Dynamic),
    ("ConditionalAccessStatus", Str),
    ("CorrelationId", Str),
    ("CreatedDateTime", DateTime),
    ("CrossTenantAccessType", Str),
    ("DeviceDetail", Dynamic),
    ("DurationMs", Long),
    ("FlaggedForReview", Bool),
    ("HomeTenantId", Str),
    ("Id", Str),
    ("Identity", Str),
    ("IPAddress", Str),
    ("IPAddressFromResourceProvider", Str),
    ("IsInteractive", Bool),
    ("IsRisky", Bool),
    ("Level", Str),
    ("Location", Str),
    ("LocationDetails", Dynamic),
    ("MfaDetail", Dynamic),
    ("NetworkLocationDetails", Str),
    ("OperationName", Str),
    ("OperationVersion", Str),
    ("OriginalRequestId", Str),
    ("ProcessingTimeInMilliseconds", Str),
    ("Resource", Str),
    ("ResourceDisplayName", Str),
    ("ResourceGroup", Str),
    ("ResourceId", Str),
    ("ResourceIdentity", Str),
    ("ResourceProvider", Str),
    ("ResourceServicePrincipalId", Str),
    ("ResourceTenantId", Str),
    ("ResultDescription", Str),
    ("ResultSignature", Str),
    ("ResultType", Str),
    ("RiskDetail", Str),
    ("RiskEventTypes", Str),
    ("RiskEventTypes_V2", Str),
    ("RiskLevel", Str),
    ("RiskLevelAggregated", Str),
    ("RiskLevelDuringSignIn", Str),
    ("RiskState", Str),
    ("ServicePrincipalId", Str),
    ("ServicePrincipalName", Str),
    ("SessionLifetimePolicies", Str),
    ("SignInIdentifier", Str),
    ("SignInIdentifierType", Str),
    ("SourceSystem", Str),
    ("Status", Dynamic),
    ("TenantId", Str),
    ("TimeGenerated", DateTime),
    ("TokenIssuerName", Str),
    ("TokenIssuerType", Str),
    ("Type", Str),
    ("UniqueTokenIdentifier", Str),
    ("UserAgent", Str),
    ("UserDisplayName", Str),
    ("UserId", Str),
    ("UserPrincipalName", Str),
    ("UserType", Str),
];

/// Columns of `AADNonInteractiveUserSignInLogs`. Several columns that are dynamic in
/// `SigninLogs` are strings here (the table reference says so).
const NON_INTERACTIVE_SIGNIN_LOGS: &[(&str, ColumnType)] = &[
    ("AlternateSignInName", Str),
    ("AppDisplayName", Str),
    ("AppId", Str),
    ("AppliedEventListeners", Dynamic),
    ("AuthenticationContextClassReferences", Str),
    ("AuthenticationDetails", Str),
    ("AuthenticationMethodsUsed", Str),
    ("AuthenticationProcessingDetails", Str),
    ("AuthenticationProtocol", Str),
    ("AuthenticationRequirement", Str),
    ("AuthenticationRequirementPolicies", Str),
    ("AutonomousSystemNumber", Str),
    ("Category", Str),
    ("ClientAppUsed", Str),
    ("ConditionalAccessPolicies", Str),
    ("ConditionalAccessStatus", Str),
    ("CorrelationId", Str),
    ("CreatedDateTime", DateTime),
    ("CrossTenantAccessType", Str),
    ("DeviceDetail", Str),
    ("DurationMs", Long),
    ("HomeTenantId", Str),
    ("Id", Str),
    ("Identity", Str),
    ("IPAddress", Str),
    ("IsInteractive", Bool),
    ("IsRisky", Bool),
    ("Level", Str),
    ("Location", Str),
    ("LocationDetails", Str),
    ("MfaDetail", Str),
    ("NetworkLocationDetails", Str),
    ("OperationName", Str),
    ("OperationVersion", Str),
    ("OriginalRequestId", Str),
    ("ProcessingTimeInMs", Str),
    ("ResourceDisplayName", Str),
    ("ResourceGroup", Str),
    ("ResourceIdentity", Str),
    ("ResourceServicePrincipalId", Str),
    ("ResourceTenantId", Str),
    ("ResultDescription", Str),
    ("ResultSignature", Str),
    ("ResultType", Str),
    ("RiskDetail", Str),
    ("RiskEventTypes", Str),
    ("RiskEventTypes_V2", Str),
    ("RiskLevelAggregated", Str),
    ("RiskLevelDuringSignIn", Str),
    ("RiskState", Str),
    ("ServicePrincipalId", Str),
    ("SessionLifetimePolicies", Str),
    ("SignInEventTypes", Str),
    ("SignInIdentifierType", Str),
    ("SourceSystem", Str),
    ("Status", Str),
    ("TenantId", Str),
    ("TimeGenerated", DateTime),
    ("TokenIssuerName", Str),
    ("TokenIssuerType", Str),
    ("Type", Str),
    ("UniqueTokenIdentifier", Str),
    ("UserAgent", Str),
    ("UserDisplayName", Str),
    ("UserId", Str),
    ("UserPrincipalName", Str),
    ("UserType", Str),
];

/// Columns of `AuditLogs`.
const AUDIT_LOGS: &[(&str, ColumnType)] = &[
    ("AADOperationType", Str),
    ("AADTenantId", Str),
    ("ActivityDateTime", DateTime),
    ("ActivityDisplayName", Str),
    ("AdditionalDetails", Dynamic),
    ("Category", Str),
    ("CorrelationId", Str),
    ("DurationMs", Long),
    ("Id", Str),
    ("Identity", Str),
    ("InitiatedBy", Dynamic),
    ("Level", Str),
    ("Location", Str),
    ("LoggedByService", Str),
    ("OperationName", Str),
    ("OperationVersion", Str),
    ("Resource", Str),
    ("ResourceGroup", Str),
    ("ResourceId", Str),
    ("ResourceProvider", Str),
    ("Result", Str),
    ("ResultDescription", Str),
    ("ResultReason", Str),
    ("ResultSignature", Str),
    ("ResultType", Str),
    ("SourceSystem", Str),
    ("TargetResources", Dynamic),
    ("TimeGenerated", DateTime),
    ("Type", Str),
];

fn columns_of(table: &str) -> Option<&'static [(&'static str, ColumnType)]> {
    match table {
        "SigninLogs" => Some(SIGNIN_LOGS),
        "AADNonInteractiveUserSignInLogs" => Some(NON_INTERACTIVE_SIGNIN_LOGS),
        "AuditLogs" => Some(AUDIT_LOGS),
        _ => None,
    }
}

/// The schema binding uses for a table the workspace has.
pub fn schema(table: &str) -> Schema {
    match columns_of(table) {
        Some(columns) => Schema::Known(
            columns
                .iter()
                .map(|(name, ty)| ((*name).to_owned(), *ty))
                .collect(),
        ),
        None => Schema::Open,
    }
}

/// A stored record (JSON, Log Analytics column names) as a typed row in schema order.
pub fn row(table: &str, record: &Map<String, Json>) -> Vec<Value> {
    let Some(columns) = columns_of(table) else {
        return Vec::new();
    };
    columns
        .iter()
        .map(|(name, ty)| typed(record.get(*name), *ty))
        .collect()
}

fn typed(field: Option<&Json>, ty: ColumnType) -> Value {
    let Some(field) = field.filter(|f| !f.is_null()) else {
        return ty.empty();
    };
    match ty {
        Str => Value::Str(match field {
            Json::String(s) => s.clone(),
            other => other.to_string(),
        }),
        Bool => field.as_bool().map(Value::Bool).unwrap_or(Value::Null),
        Long => field.as_i64().map(Value::Long).unwrap_or(Value::Null),
        Real => field.as_f64().map(Value::Real).unwrap_or(Value::Null),
        DateTime => field
            .as_str()
            .and_then(Value::parse_datetime)
            .unwrap_or(Value::Null),
        ColumnType::TimeSpan => Value::Null,
        Dynamic => Value::from_json(field.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn records_become_typed_rows_and_strings_never_null() {
        let record = json!({"UserPrincipalName": "bg@contoso.com", "IsInteractive": true,
                            "TimeGenerated": "2024-05-01T12:00:00Z", "Status": {"errorCode": 0}});
        let row = row("SigninLogs", record.as_object().unwrap());
        let at = |name: &str| SIGNIN_LOGS.iter().position(|(n, _)| *n == name).unwrap();
        assert_eq!(
            row[at("UserPrincipalName")],
            Value::Str("bg@contoso.com".into())
        );
        assert_eq!(row[at("IsInteractive")], Value::Bool(true));
        assert!(matches!(row[at("TimeGenerated")], Value::DateTime(_)));
        assert!(matches!(row[at("Status")], Value::Dynamic(_)));
        assert_eq!(row[at("UserId")], Value::Str(String::new()));
        assert_eq!(row[at("IsRisky")], Value::Null);
        assert_eq!(schema("Heartbeat"), Schema::Open);
    }
}
