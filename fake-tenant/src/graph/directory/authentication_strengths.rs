//! `/policies/authenticationStrengthPolicies`: the built-in authentication strengths —
//! Multifactor authentication (`…0002`), Passwordless MFA (`…0003`) and Phishing-resistant MFA
//! (`…0004`), whose `allowedCombinations` the conditional-access area already uses
//! ("Conditional Access authentication strengths", learn.microsoft.com,
//! entra/identity/authentication/concept-authentication-strengths; "authenticationStrengthPolicy
//! resource type"). Custom strengths cannot be created through the subset, so none exist.
//! Certificate-based authentication counts as phishing-resistant only in its multifactor mode
//! (`x509CertificateMultiFactor`), which all three built-ins list.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, Uri};
use axum::{Extension, Json};
use serde_json::{Map, Value};

use super::conditional_access::built_in_authentication_strength;
use super::{authorize_read, location};
use crate::error::GraphError;
use crate::graph::odata::QueryRules;
use crate::token::Caller;
use crate::AppState;

const BUILT_IN: [&str; 3] = [
    "00000000-0000-0000-0000-000000000002",
    "00000000-0000-0000-0000-000000000003",
    "00000000-0000-0000-0000-000000000004",
];

/// Reading authentication strengths: `Policy.Read.All` or the authentication-method and
/// conditional-access write permissions (List authenticationStrengthPolicies).
const READ: [&str; 3] = [
    "Policy.Read.All",
    "Policy.ReadWrite.AuthenticationMethod",
    "Policy.ReadWrite.ConditionalAccess",
];

const RULES: QueryRules = QueryRules {
    entity: "authenticationStrengthPolicy",
    default_page_size: 999,
    max_top: 999,
    directory_object: false,
    default_select: None,
};

fn all() -> Vec<Map<String, Value>> {
    BUILT_IN
        .iter()
        .filter_map(|id| built_in_authentication_strength(id))
        .filter_map(|v| v.as_object().cloned())
        .collect()
}

fn strengths_location(state: &AppState) -> crate::graph::odata::CollectionLocation {
    location(
        state,
        "/policies/authenticationStrengthPolicies",
        "policies/authenticationStrengthPolicies",
    )
}

pub async fn list(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Json<Value>, GraphError> {
    let read = authorize_read(&caller, &READ, &uri, &headers, &RULES)?;
    Ok(read.collection(all(), &strengths_location(&state)))
}

pub async fn get_one(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Json<Value>, GraphError> {
    let read = authorize_read(&caller, &READ, &uri, &headers, &RULES)?;
    let strength = all()
        .into_iter()
        .find(|s| {
            s["id"]
                .as_str()
                .is_some_and(|x| x.eq_ignore_ascii_case(&id))
        })
        .ok_or_else(|| GraphError::not_found(&id))?;
    Ok(read.entity(&strength, &strengths_location(&state)))
}
