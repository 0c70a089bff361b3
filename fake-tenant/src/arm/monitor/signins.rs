//! Simulated Entra sign-ins (`POST /_fake/arm/signins`): the event Entra records when someone
//! signs in, written as a `SigninLogs` / `AADNonInteractiveUserSignInLogs` row and delivered
//! through the diagnostic settings that export its category.
//!
//! Columns follow the table references ("SigninLogs", "AADNonInteractiveUserSignInLogs"):
//! `UserId` is the user's object id, `UserPrincipalName` the name signed in with,
//! `IsInteractive`, `ResultType` `"0"` for success or the AADSTS error code of the failure,
//! `ResultDescription` and `Status` (`errorCode`, `failureReason`). "Sign-in logs in Microsoft
//! Entra ID" (learn.microsoft.com): interactive sign-ins are those where the user provides an
//! authentication factor; non-interactive ones are done by a client on the user's behalf.
//! Failure codes and texts from "Microsoft Entra authentication and authorization error codes":
//! 50126 InvalidUserNameOrPassword, 50034 UserAccountNotFound, 50057 UserDisabled.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use super::{deliver, format_time};
use crate::AppState;

/// Sign-in categories a simulated sign-in can belong to (user sign-ins are `SignInLogs` or
/// `NonInteractiveUserSignInLogs`; the others are kept for tests that only need a table).
pub const SIGNIN_CATEGORIES: &[&str] = &[
    "SignInLogs",
    "NonInteractiveUserSignInLogs",
    "ServicePrincipalSignInLogs",
    "ManagedIdentitySignInLogs",
    "ADFSSignInLogs",
];

/// The Azure portal's application id (a well-known first-party app), the default client.
const AZURE_PORTAL_APP_ID: &str = "c44b4083-3bb0-49c1-b47d-974e53cbdf3c";

fn failure_reason(code: &str) -> &'static str {
    match code {
        "0" => "",
        "50126" => "Error validating credentials due to invalid username or password.",
        "50034" => "The user account does not exist in the directory. To sign into this application, the account must be added to the directory.",
        "50057" => "The user account is disabled. The account has been disabled by an administrator.",
        "50053" => "The account is locked because the user tried to sign in too many times with an incorrect user ID or password.",
        _ => "Other.",
    }
}

fn bad_request(message: impl Into<String>) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({"error": message.into()})),
    )
        .into_response()
}

/// `POST /_fake/arm/signins`: `{"userPrincipalName"? | "userId"?, "interactive"? (true),
/// "password"?, "success"? (true), "resultType"?, "category"?, "appDisplayName"?, "appId"?,
/// "ipAddress"?}`.
///
/// The outcome, in this order: a name no directory user has → 50034; an explicit
/// `resultType`; a disabled user → 50057; a `password` → checked against the user's (hashed)
/// password, 50126 when wrong; `success: false` → 50126; otherwise success. The password is
/// never stored or echoed.
pub async fn simulate(State(state): State<AppState>, Json(event): Json<Value>) -> Response {
    let text = |key: &str| {
        event[key]
            .as_str()
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    let upn_given = text("userPrincipalName");
    let id_given = text("userId");
    if upn_given.is_none() && id_given.is_none() {
        return bad_request("a sign-in needs 'userPrincipalName' or 'userId'");
    }
    let category = match (text("category"), event["interactive"].as_bool()) {
        (Some(c), _) => match SIGNIN_CATEGORIES
            .iter()
            .find(|k| k.eq_ignore_ascii_case(&c))
        {
            Some(c) => *c,
            None => {
                return bad_request(format!(
                    "category '{c}' is not a sign-in log category; use one of {}",
                    SIGNIN_CATEGORIES.join(", ")
                ))
            }
        },
        (None, Some(false)) => "NonInteractiveUserSignInLogs",
        (None, _) => "SignInLogs",
    };
    let mut tenant = state.tenant();
    let user = {
        let users = &tenant.directory.users;
        match (&id_given, &upn_given) {
            (Some(id), _) => users.get_latest(id).cloned(),
            (None, Some(upn)) => users
                .list_latest()
                .into_iter()
                .find(|u| {
                    u["userPrincipalName"]
                        .as_str()
                        .is_some_and(|x| x.eq_ignore_ascii_case(upn))
                })
                .cloned(),
            (None, None) => None,
        }
    };
    let user_id = user
        .as_ref()
        .and_then(|u| u["id"].as_str())
        .map(str::to_owned);
    let result = match (&user, text("resultType")) {
        (None, _) => "50034".to_owned(),
        (Some(_), Some(code)) => code,
        (Some(u), None) if u["accountEnabled"] == json!(false) => "50057".to_owned(),
        (Some(_), None) => match event["password"].as_str() {
            Some(password) => {
                let id = user_id.clone().unwrap_or_default();
                if tenant.directory.password_matches(&id, password) {
                    "0".to_owned()
                } else {
                    "50126".to_owned()
                }
            }
            None if event["success"] == json!(false) => "50126".to_owned(),
            None => "0".to_owned(),
        },
    };
    let upn = upn_given
        .or_else(|| {
            user.as_ref()
                .and_then(|u| u["userPrincipalName"].as_str())
                .map(str::to_owned)
        })
        .unwrap_or_default();
    let display_name = user
        .as_ref()
        .and_then(|u| u["displayName"].as_str())
        .unwrap_or_default()
        .to_owned();
    let tenant_id = tenant.tenant_id.clone();
    let delay = i64::try_from(
        tenant
            .behaviour
            .setting_u64("arm.signin_log_ingestion_delay_ms", 0),
    )
    .unwrap_or(0)
    .saturating_mul(1_000_000);
    let now = tenant.arm.monitor.now();
    let at = format_time(now);
    let interactive = category != "NonInteractiveUserSignInLogs";
    let table = super::table_for(category).unwrap_or("SigninLogs");
    let error_code: i64 = result.parse().unwrap_or(0);
    let id = uuid::Uuid::new_v4().to_string();
    let app_display_name = text("appDisplayName").unwrap_or_else(|| "Azure Portal".into());
    let app_id = text("appId").unwrap_or_else(|| AZURE_PORTAL_APP_ID.into());
    let ip = text("ipAddress").unwrap_or_else(|| "203.0.113.10".into());
    let record = json!({
        "SourceSystem": "Azure AD",
        "TimeGenerated": at,
        "CreatedDateTime": at,
        "Id": id,
        "CorrelationId": uuid::Uuid::new_v4().to_string(),
        "OriginalRequestId": id,
        "UniqueTokenIdentifier": id,
        "OperationName": "Sign-in activity",
        "OperationVersion": "1.0",
        "Category": category,
        "Level": "4",
        "Location": "US",
        "ResultType": result,
        "ResultSignature": "None",
        "ResultDescription": failure_reason(&result),
        "Status": {"errorCode": error_code, "failureReason": failure_reason(&result)},
        "Identity": display_name,
        "UserDisplayName": display_name,
        "UserId": user_id.clone().unwrap_or_default(),
        "UserPrincipalName": upn,
        "AlternateSignInName": upn,
        "SignInIdentifier": upn,
        "SignInIdentifierType": "userPrincipalName",
        "UserType": "Member",
        "IsInteractive": interactive,
        "IsRisky": false,
        "AppDisplayName": app_display_name,
        "AppId": app_id,
        "ClientAppUsed": if interactive { "Browser" } else { "Mobile Apps and Desktop clients" },
        "IPAddress": ip,
        "ConditionalAccessStatus": "notApplied",
        "AuthenticationRequirement": "singleFactorAuthentication",
        "ResourceDisplayName": "Windows Azure Service Management API",
        "AADTenantId": tenant_id,
        "HomeTenantId": tenant_id,
        "ResourceTenantId": tenant_id,
        "TokenIssuerType": "AzureAD",
        "Type": table,
    });
    let Value::Object(record) = record else {
        return bad_request("internal: sign-in record is not an object");
    };
    let delivered = deliver(&mut tenant.arm, category, &record, now, delay);
    let answer = json!({
        "id": id,
        "userPrincipalName": upn,
        "userId": user_id,
        "category": category,
        "isInteractive": interactive,
        "resultType": result,
        "createdDateTime": at,
        "deliveredTo": delivered,
    });
    tenant.arm.signins.push(answer.clone());
    (StatusCode::OK, Json(answer)).into_response()
}

/// `GET /_fake/arm/signins`: the simulated sign-ins so far and where they were delivered.
pub async fn list(State(state): State<AppState>) -> Response {
    let tenant = state.tenant();
    Json(json!({ "value": tenant.arm.signins })).into_response()
}
