//! `/domains` and `/organization`: what the tenant is and which domain names it owns.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, Uri};
use axum::{Extension, Json};
use serde_json::{json, Map, Value};

use super::{authorize_read, location};
use crate::error::GraphError;
use crate::graph::odata::QueryRules;
use crate::state::Tenant;
use crate::token::Caller;
use crate::AppState;

const DOMAIN_RULES: QueryRules = QueryRules {
    entity: "domain",
    default_page_size: 999,
    max_top: 999,
    directory_object: false,
    default_select: None,
};

const ORGANIZATION_RULES: QueryRules = QueryRules {
    entity: "organization",
    default_page_size: 999,
    max_top: 999,
    directory_object: false,
    default_select: None,
};

const DOMAIN_READ: [&str; 4] = [
    "Domain.Read.All",
    "Domain.ReadWrite.All",
    "Directory.Read.All",
    "Directory.ReadWrite.All",
];

const ORGANIZATION_READ: [&str; 5] = [
    "Organization.Read.All",
    "Organization.ReadWrite.All",
    "Directory.Read.All",
    "Directory.ReadWrite.All",
    "User.Read.All",
];

fn domains(tenant: &Tenant) -> Vec<Map<String, Value>> {
    tenant.directory.domains.clone()
}

/// The one organization object: id is the tenant id, verifiedDomains mirror `/domains`.
fn organization(tenant: &Tenant) -> Map<String, Value> {
    let verified: Vec<Value> = tenant
        .directory
        .domains
        .iter()
        .filter(|d| d["isVerified"].as_bool().unwrap_or(false))
        .map(|d| {
            json!({
                "name": d["id"],
                "isDefault": d["isDefault"].as_bool().unwrap_or(false),
                "isInitial": d["isInitial"].as_bool().unwrap_or(false),
                "type": d["authenticationType"].as_str().unwrap_or("Managed"),
                "capabilities": "Email, OfficeCommunicationsOnline",
            })
        })
        .collect();
    let mut org = Map::new();
    org.insert("id".into(), Value::String(tenant.tenant_id.clone()));
    org.insert(
        "displayName".into(),
        Value::String(tenant.display_name.clone()),
    );
    org.insert("tenantType".into(), Value::String("AAD".into()));
    for (k, v) in &tenant.directory.organization {
        org.insert(k.clone(), v.clone());
    }
    org.insert("verifiedDomains".into(), Value::Array(verified));
    org
}

pub async fn list_domains(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Json<Value>, GraphError> {
    let read = authorize_read(&caller, &DOMAIN_READ, &uri, &headers, &DOMAIN_RULES)?;
    let items = domains(&state.tenant());
    Ok(read.collection(items, &location(&state, "/domains", "domains")))
}

pub async fn get_domain(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Json<Value>, GraphError> {
    let read = authorize_read(&caller, &DOMAIN_READ, &uri, &headers, &DOMAIN_RULES)?;
    let domain = domains(&state.tenant())
        .into_iter()
        .find(|d| {
            d["id"]
                .as_str()
                .is_some_and(|d| d.eq_ignore_ascii_case(&id))
        })
        .ok_or_else(|| GraphError::not_found(&id))?;
    Ok(read.entity(&domain, &location(&state, "/domains", "domains")))
}

pub async fn list_organization(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Json<Value>, GraphError> {
    let read = authorize_read(
        &caller,
        &ORGANIZATION_READ,
        &uri,
        &headers,
        &ORGANIZATION_RULES,
    )?;
    let org = organization(&state.tenant());
    Ok(read.collection(
        vec![org],
        &location(&state, "/organization", "organization"),
    ))
}

pub async fn get_organization(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Json<Value>, GraphError> {
    let read = authorize_read(
        &caller,
        &ORGANIZATION_READ,
        &uri,
        &headers,
        &ORGANIZATION_RULES,
    )?;
    let org = organization(&state.tenant());
    if !org["id"]
        .as_str()
        .is_some_and(|t| t.eq_ignore_ascii_case(&id))
    {
        return Err(GraphError::not_found(&id));
    }
    Ok(read.entity(&org, &location(&state, "/organization", "organization")))
}
