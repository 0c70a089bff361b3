//! `/identity/conditionalAccess/policies`.
//!
//! The behaviour that matters most for break-glass tooling: PATCH merges nested objects but
//! **replaces arrays** — a caller that sends `excludeUsers: [new]` drops every exclusion it did
//! not resend. Referenced users and groups are checked against the directory as the CA service
//! sees it, i.e. through replication lag, so a just-created user can be refused for a while.

use std::collections::BTreeSet;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde_json::{json, Map, Value};

use super::{
    authorize_read, json_object, location, new_id, now, reader_view, require_permission,
    DirectoryState, CA_POLICY_LIMIT,
};
use crate::error::GraphError;
use crate::graph::odata::{
    entity_response, enum_members, CollectionLocation, ODataQuery, QueryRules,
};
use crate::token::Caller;
use crate::AppState;

const CA_RULES: QueryRules = QueryRules {
    entity: "conditionalAccessPolicy",
    default_page_size: 999,
    max_top: 999,
    directory_object: false,
    default_select: None,
};

const POLICY_READ: [&str; 3] = [
    "Policy.Read.All",
    "Policy.Read.ConditionalAccess",
    "Policy.ReadWrite.ConditionalAccess",
];

/// Properties the service sets; values sent for them are ignored.
const READ_ONLY: [&str; 5] = [
    "id",
    "createdDateTime",
    "modifiedDateTime",
    "templateId",
    "deletedDateTime",
];

/// Special values `includeUsers` / `excludeUsers` take besides user ids.
const USER_KEYWORDS: [&str; 3] = ["All", "None", "GuestsOrExternalUsers"];

/// Built-in authentication strengths (fixed ids in every tenant) that a policy may reference
/// by id; the service returns the whole object.
pub(super) fn built_in_authentication_strength(id: &str) -> Option<Value> {
    let (name, description, combinations): (&str, &str, &[&str]) = match id {
        "00000000-0000-0000-0000-000000000002" => (
            "Multifactor authentication",
            "Combinations of methods that satisfy strong authentication, such as a password + SMS",
            &[
                "windowsHelloForBusiness",
                "fido2",
                "x509CertificateMultiFactor",
                "deviceBasedPush",
                "temporaryAccessPassOneTime",
                "temporaryAccessPassMultiUse",
                "password,microsoftAuthenticatorPush",
                "password,softwareOath",
                "password,hardwareOath",
                "password,sms",
                "password,voice",
                "federatedMultiFactor",
                "microsoftAuthenticatorPush,federatedSingleFactor",
                "softwareOath,federatedSingleFactor",
                "hardwareOath,federatedSingleFactor",
                "sms,federatedSingleFactor",
                "voice,federatedSingleFactor",
            ],
        ),
        "00000000-0000-0000-0000-000000000003" => (
            "Passwordless MFA",
            "Passwordless methods that satisfy strong authentication, such as Passwordless sign-in with the Microsoft Authenticator",
            &[
                "windowsHelloForBusiness",
                "fido2",
                "x509CertificateMultiFactor",
                "deviceBasedPush",
            ],
        ),
        "00000000-0000-0000-0000-000000000004" => (
            "Phishing-resistant MFA",
            "Phishing-resistant, Passwordless methods for the strongest authentication, such as a FIDO2 security key",
            &["windowsHelloForBusiness", "fido2", "x509CertificateMultiFactor"],
        ),
        _ => return None,
    };
    Some(json!({
        "id": id,
        "createdDateTime": "2021-12-01T00:00:00Z",
        "modifiedDateTime": "2021-12-01T00:00:00Z",
        "displayName": name,
        "description": description,
        "policyType": "builtIn",
        "requirementsSatisfied": "mfa",
        "allowedCombinations": combinations,
    }))
}

fn can_write(caller: &Caller) -> Result<(), GraphError> {
    // Writing needs Policy.ReadWrite.ConditionalAccess *and* Policy.Read.All (facts file §3).
    require_permission(caller, &["Policy.ReadWrite.ConditionalAccess"])?;
    require_permission(caller, &["Policy.Read.All"])
}

/// The CA service reports validation failures with a generic top-level message; the detail
/// says which property is wrong.
fn invalid_policy(target: &str, explanation: impl Into<String>) -> GraphError {
    let explanation = explanation.into();
    GraphError::new(
        StatusCode::BAD_REQUEST,
        "BadRequest",
        "The server could not process the request because it is malformed or incorrect.",
    )
    .with_detail("BadRequest", &explanation, target)
}

fn policy_not_found(id: &str) -> GraphError {
    GraphError::not_found(id)
}

fn accepts_evolvable_enums(headers: &HeaderMap) -> bool {
    headers
        .get_all("prefer")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| {
            v.split(',').any(|p| {
                p.trim()
                    .eq_ignore_ascii_case("include-unknown-enum-members")
            })
        })
}

/// Evolvable enum members (after `unknownFutureValue`) are only shown to callers that opt in
/// with `Prefer: include-unknown-enum-members`; others read `unknownFutureValue` instead.
fn present(mut policy: Map<String, Value>, evolvable: bool) -> Map<String, Value> {
    if evolvable {
        return policy;
    }
    let mask = |value: &mut Value, enum_name: &str| {
        let members = enum_members(enum_name);
        let Some(sentinel) = members.iter().position(|m| *m == "unknownFutureValue") else {
            return;
        };
        let Some(items) = value.as_array_mut() else {
            return;
        };
        for item in items {
            let position = item
                .as_str()
                .and_then(|text| members.iter().position(|m| *m == text));
            if position.is_some_and(|p| p > sentinel) {
                *item = Value::String("unknownFutureValue".into());
            }
        }
    };
    if let Some(controls) = policy
        .get_mut("grantControls")
        .and_then(|g| g.get_mut("builtInControls"))
    {
        mask(controls, "conditionalAccessGrantControl");
    }
    if let Some(platforms) = policy
        .get_mut("conditions")
        .and_then(|c| c.get_mut("platforms"))
        .and_then(Value::as_object_mut)
    {
        for key in ["includePlatforms", "excludePlatforms"] {
            if let Some(list) = platforms.get_mut(key) {
                mask(list, "conditionalAccessDevicePlatform");
            }
        }
    }
    policy
}

/// Merges a PATCH body into a policy the way Graph does: nested objects merge property by
/// property, arrays and scalars are replaced wholesale, `null` clears.
pub fn merge_policy(target: &mut Map<String, Value>, patch: &Map<String, Value>) {
    for (key, value) in patch {
        match (target.get_mut(key), value) {
            (Some(Value::Object(existing)), Value::Object(incoming)) => {
                merge_policy(existing, incoming)
            }
            _ => {
                target.insert(key.clone(), value.clone());
            }
        }
    }
}

struct Validation<'a> {
    directory: &'a DirectoryState,
    lag: Duration,
    evolvable: bool,
    /// Ids the stored policy already references. Only ids a write introduces are checked:
    /// a policy keeps the id of a user deleted since, and resending it must stay possible.
    already_referenced: BTreeSet<String>,
}

/// Every id in a policy's `conditions.users` lists, lower-cased.
fn referenced_ids(policy: &Map<String, Value>) -> BTreeSet<String> {
    policy
        .get("conditions")
        .and_then(|c| c.get("users"))
        .and_then(Value::as_object)
        .into_iter()
        .flat_map(|users| users.values())
        .filter_map(Value::as_array)
        .flatten()
        .filter_map(Value::as_str)
        .map(str::to_ascii_lowercase)
        .collect()
}

impl Validation<'_> {
    fn check_enum(&self, target: &str, value: &Value, enum_name: &str) -> Result<(), GraphError> {
        let members = enum_members(enum_name);
        let Some(text) = value.as_str() else {
            return Err(invalid_policy(
                target,
                format!("'{target}' must be a string."),
            ));
        };
        let position = members.iter().position(|m| *m == text);
        let sentinel = members.iter().position(|m| *m == "unknownFutureValue");
        let ok = match (position, sentinel) {
            (None, _) => false,
            // `unknownFutureValue` is a placeholder, never a value to send.
            (Some(p), Some(s)) if p == s => false,
            // Members after the sentinel need `Prefer: include-unknown-enum-members`.
            (Some(p), Some(s)) if p > s => self.evolvable,
            _ => true,
        };
        if ok {
            Ok(())
        } else {
            Err(invalid_policy(
                target,
                format!("Invalid value '{text}' for property '{target}'."),
            ))
        }
    }

    fn check_enum_array(
        &self,
        parent: &Value,
        parent_path: &str,
        key: &str,
        enum_name: &str,
    ) -> Result<(), GraphError> {
        let target = format!("{parent_path}.{key}");
        match parent.get(key) {
            None | Some(Value::Null) => Ok(()),
            Some(Value::Array(items)) => items
                .iter()
                .try_for_each(|v| self.check_enum(&target, v, enum_name)),
            Some(_) => Err(invalid_policy(
                &target,
                format!("'{target}' must be an array."),
            )),
        }
    }

    fn check_enum_field(
        &self,
        parent: &Value,
        parent_path: &str,
        key: &str,
        enum_name: &str,
    ) -> Result<(), GraphError> {
        match parent.get(key) {
            None | Some(Value::Null) => Ok(()),
            Some(v) => self.check_enum(&format!("{parent_path}.{key}"), v, enum_name),
        }
    }

    fn id_list<'v>(&self, users: &'v Value, key: &str) -> Result<Vec<&'v str>, GraphError> {
        match users.get(key) {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| {
                    v.as_str().ok_or_else(|| {
                        invalid_policy(
                            &format!("conditions.users.{key}"),
                            "Identifiers must be strings.",
                        )
                    })
                })
                .collect(),
            Some(_) => Err(invalid_policy(
                &format!("conditions.users.{key}"),
                "Must be an array of identifiers.",
            )),
        }
    }

    fn check_users(&self, users: &Value) -> Result<(), GraphError> {
        for key in ["includeUsers", "excludeUsers"] {
            let missing: Vec<&str> = self
                .id_list(users, key)?
                .into_iter()
                .filter(|id| !USER_KEYWORDS.iter().any(|k| k.eq_ignore_ascii_case(id)))
                .filter(|id| !self.already_referenced.contains(&id.to_ascii_lowercase()))
                .filter(|id| self.directory.users.get(id, self.lag).is_none())
                .collect();
            if !missing.is_empty() {
                return Err(invalid_policy(
                    &format!("conditions.users.{key}"),
                    format!(
                        "The policy contains invalid user ids: {}.",
                        missing.join(", ")
                    ),
                ));
            }
        }
        for key in ["includeGroups", "excludeGroups"] {
            let missing: Vec<&str> = self
                .id_list(users, key)?
                .into_iter()
                .filter(|id| !self.already_referenced.contains(&id.to_ascii_lowercase()))
                .filter(|id| self.directory.groups.get(id, self.lag).is_none())
                .collect();
            if !missing.is_empty() {
                return Err(invalid_policy(
                    &format!("conditions.users.{key}"),
                    format!(
                        "The policy contains invalid group ids: {}.",
                        missing.join(", ")
                    ),
                ));
            }
        }
        for key in ["includeRoles", "excludeRoles"] {
            if let Some(bad) = self
                .id_list(users, key)?
                .into_iter()
                .find(|id| uuid::Uuid::parse_str(id).is_err())
            {
                return Err(invalid_policy(
                    &format!("conditions.users.{key}"),
                    format!("The policy contains an invalid role template id: {bad}."),
                ));
            }
        }
        Ok(())
    }

    /// Checks a complete policy (after a PATCH has been merged in).
    fn check(&self, policy: &Map<String, Value>) -> Result<(), GraphError> {
        let policy_value = Value::Object(policy.clone());
        if policy
            .get("displayName")
            .and_then(Value::as_str)
            .is_none_or(|s| s.trim().is_empty())
        {
            return Err(invalid_policy("displayName", "displayName is required."));
        }
        match policy.get("state") {
            None | Some(Value::Null) => {
                return Err(invalid_policy("state", "state is required."));
            }
            Some(state) => self.check_enum("state", state, "conditionalAccessPolicyState")?,
        }
        let Some(conditions) = policy.get("conditions").filter(|c| c.is_object()) else {
            return Err(invalid_policy("conditions", "conditions is required."));
        };

        let users = conditions.get("users").filter(|u| u.is_object());
        let workload = conditions
            .get("clientApplications")
            .and_then(|c| c.get("includeServicePrincipals"))
            .and_then(Value::as_array)
            .is_some_and(|a| !a.is_empty());
        let includes_someone = users.is_some_and(|u| {
            ["includeUsers", "includeGroups", "includeRoles"]
                .iter()
                .any(|k| {
                    u.get(k)
                        .and_then(Value::as_array)
                        .is_some_and(|a| !a.is_empty())
                })
                || u.get("includeGuestsOrExternalUsers")
                    .is_some_and(|g| !g.is_null())
        });
        if !includes_someone && !workload {
            return Err(invalid_policy(
                "conditions.users",
                "The policy must include users, groups, roles or service principals.",
            ));
        }
        if let Some(users) = users {
            self.check_users(users)?;
        }
        let applications = conditions.get("applications").filter(|a| a.is_object());
        let targets_something = applications.is_some_and(|a| {
            [
                "includeApplications",
                "includeUserActions",
                "includeAuthenticationContextClassReferences",
            ]
            .iter()
            .any(|k| {
                a.get(k)
                    .and_then(Value::as_array)
                    .is_some_and(|x| !x.is_empty())
            })
        });
        if !targets_something {
            return Err(invalid_policy(
                "conditions.applications",
                "The policy must include applications, user actions or authentication contexts.",
            ));
        }

        self.check_enum_array(
            conditions,
            "conditions",
            "clientAppTypes",
            "conditionalAccessClientApp",
        )?;
        for key in [
            "signInRiskLevels",
            "userRiskLevels",
            "servicePrincipalRiskLevels",
        ] {
            self.check_enum_array(conditions, "conditions", key, "riskLevel")?;
        }
        if let Some(platforms) = conditions.get("platforms").filter(|p| !p.is_null()) {
            for key in ["includePlatforms", "excludePlatforms"] {
                self.check_enum_array(
                    platforms,
                    "conditions.platforms",
                    key,
                    "conditionalAccessDevicePlatform",
                )?;
            }
        }
        for (path, parent, key) in [
            (
                "conditions.devices",
                conditions.get("devices"),
                "deviceFilter",
            ),
            (
                "conditions.applications",
                conditions.get("applications"),
                "applicationFilter",
            ),
            (
                "conditions.clientApplications",
                conditions.get("clientApplications"),
                "servicePrincipalFilter",
            ),
        ] {
            if let Some(filter) = parent.and_then(|p| p.get(key)).filter(|f| !f.is_null()) {
                self.check_enum_field(filter, &format!("{path}.{key}"), "mode", "filterMode")?;
            }
        }

        if let Some(grant) = policy_value.get("grantControls").filter(|g| !g.is_null()) {
            match grant.get("operator").and_then(Value::as_str) {
                None | Some("AND") | Some("OR") => {}
                Some(other) => {
                    return Err(invalid_policy(
                        "grantControls.operator",
                        format!("Invalid value '{other}' for property 'grantControls.operator'."),
                    ))
                }
            }
            self.check_enum_array(
                grant,
                "grantControls",
                "builtInControls",
                "conditionalAccessGrantControl",
            )?;
        }
        if let Some(session) = policy_value.get("sessionControls").filter(|s| !s.is_null()) {
            if let Some(browser) = session.get("persistentBrowser").filter(|b| !b.is_null()) {
                self.check_enum_field(
                    browser,
                    "sessionControls.persistentBrowser",
                    "mode",
                    "persistentBrowserSessionMode",
                )?;
            }
            if let Some(frequency) = session.get("signInFrequency").filter(|f| !f.is_null()) {
                let path = "sessionControls.signInFrequency";
                self.check_enum_field(frequency, path, "type", "signinFrequencyType")?;
                self.check_enum_field(
                    frequency,
                    path,
                    "authenticationType",
                    "signInFrequencyAuthenticationType",
                )?;
                self.check_enum_field(
                    frequency,
                    path,
                    "frequencyInterval",
                    "signInFrequencyInterval",
                )?;
            }
            if let Some(mcas) = session.get("cloudAppSecurity").filter(|c| !c.is_null()) {
                self.check_enum_field(
                    mcas,
                    "sessionControls.cloudAppSecurity",
                    "cloudAppSecurityType",
                    "cloudAppSecuritySessionControlType",
                )?;
            }
        }
        let has_controls = ["grantControls", "sessionControls"]
            .iter()
            .any(|k| policy.get(*k).is_some_and(|v| !v.is_null()));
        if !has_controls {
            return Err(invalid_policy(
                "grantControls",
                "The policy needs grant controls or session controls.",
            ));
        }
        Ok(())
    }
}

/// Replaces an authentication strength given by id with the built-in object the service
/// returns; unknown ids are refused.
fn expand_authentication_strength(policy: &mut Map<String, Value>) -> Result<(), GraphError> {
    let Some(strength) = policy
        .get_mut("grantControls")
        .and_then(Value::as_object_mut)
        .and_then(|g| g.get_mut("authenticationStrength"))
        .filter(|s| !s.is_null())
    else {
        return Ok(());
    };
    let id = strength.get("id").and_then(Value::as_str).unwrap_or("");
    match built_in_authentication_strength(id) {
        Some(full) => {
            *strength = full;
            Ok(())
        }
        None => Err(invalid_policy(
            "grantControls.authenticationStrength",
            format!("Authentication strength '{id}' does not exist."),
        )),
    }
}

fn is_managed(directory: &DirectoryState, id: &str) -> bool {
    directory
        .microsoft_managed_policies
        .contains(&id.to_ascii_lowercase())
}

/// Policies that count against the service maximum (Microsoft-managed ones do not).
fn counted_policies(directory: &DirectoryState) -> usize {
    directory
        .ca_policies
        .list_latest()
        .into_iter()
        .filter(|p| !is_managed(directory, p["id"].as_str().unwrap_or_default()))
        .count()
}

/// The parts of a Microsoft-managed policy that administrators may not change: everything
/// except `state` and the user/group exclusions.
fn managed_fixed_part(policy: &Map<String, Value>) -> Map<String, Value> {
    let mut fixed = policy.clone();
    for key in ["state", "modifiedDateTime"] {
        fixed.remove(key);
    }
    if let Some(users) = fixed
        .get_mut("conditions")
        .and_then(Value::as_object_mut)
        .and_then(|c| c.get_mut("users"))
        .and_then(Value::as_object_mut)
    {
        users.remove("excludeUsers");
        users.remove("excludeGroups");
    }
    fixed
}

fn policies_location(state: &AppState) -> CollectionLocation {
    location(
        state,
        "/identity/conditionalAccess/policies",
        "identity/conditionalAccess/policies",
    )
}

pub async fn list(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Json<Value>, GraphError> {
    let read = authorize_read(&caller, &POLICY_READ, &uri, &headers, &CA_RULES)?;
    let policies = reader_view(&state, |directory, lag| {
        directory
            .ca_policies
            .list(lag)
            .into_iter()
            .cloned()
            .map(|p| present(p, accepts_evolvable_enums(&headers)))
            .collect()
    });
    Ok(read.collection(policies, &policies_location(&state)))
}

pub async fn get_one(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Json<Value>, GraphError> {
    let read = authorize_read(&caller, &POLICY_READ, &uri, &headers, &CA_RULES)?;
    let policy = reader_view(&state, |directory, lag| {
        directory.ca_policies.get(&id, lag).cloned()
    });
    let policy = present(
        policy.ok_or_else(|| policy_not_found(&id))?,
        accepts_evolvable_enums(&headers),
    );
    Ok(read.entity(&policy, &policies_location(&state)))
}

pub async fn create(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, GraphError> {
    can_write(&caller)?;
    let mut policy = json_object(&body)?;
    let created = {
        let mut tenant = state.tenant();
        let lag = tenant.behaviour.graph_lag();
        let limit = tenant
            .behaviour
            .setting_u64("graph.ca_policy_limit", CA_POLICY_LIMIT) as usize;
        let directory = &mut tenant.directory;
        if counted_policies(directory) >= limit {
            return Err(GraphError::new(
                StatusCode::BAD_REQUEST,
                "BadRequest",
                format!("The tenant has reached the maximum of {limit} Conditional Access policies. Delete a policy before creating a new one."),
            ));
        }
        for key in READ_ONLY {
            policy.remove(key);
        }
        policy.remove("@odata.type");
        Validation {
            directory,
            lag,
            evolvable: accepts_evolvable_enums(&headers),
            already_referenced: BTreeSet::new(),
        }
        .check(&policy)?;
        expand_authentication_strength(&mut policy)?;
        let id = new_id();
        let mut stored = Map::new();
        stored.insert("id".into(), Value::String(id.clone()));
        stored.insert("templateId".into(), Value::Null);
        stored.insert("displayName".into(), policy["displayName"].clone());
        stored.insert("createdDateTime".into(), Value::String(now()));
        stored.insert("modifiedDateTime".into(), Value::Null);
        for (k, v) in policy {
            stored.entry(k).or_insert(v);
        }
        for key in ["description", "grantControls", "sessionControls"] {
            stored.entry(key).or_insert(Value::Null);
        }
        directory.ca_policies.put(&id, stored.clone());
        crate::audit::ca_policy_changed(&mut tenant, &caller, None, Some(&stored));
        stored
    };
    let created = present(created, accepts_evolvable_enums(&headers));
    let body = entity_response(
        &created,
        &ODataQuery::default(),
        &CA_RULES,
        &policies_location(&state),
    );
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

pub async fn update(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<StatusCode, GraphError> {
    can_write(&caller)?;
    let mut patch = json_object(&body)?;
    for key in READ_ONLY {
        patch.remove(key);
    }
    patch.remove("@odata.type");
    let mut tenant = state.tenant();
    let lag = tenant.behaviour.graph_lag();
    let directory = &mut tenant.directory;
    let current = directory
        .ca_policies
        .get_latest(&id)
        .cloned()
        .ok_or_else(|| policy_not_found(&id))?;
    let mut updated = current.clone();
    merge_policy(&mut updated, &patch);
    if is_managed(directory, &id) && managed_fixed_part(&updated) != managed_fixed_part(&current) {
        return Err(invalid_policy(
            "conditions",
            "Microsoft-managed policies only allow changes to state and to excluded users and groups.",
        ));
    }
    Validation {
        directory,
        lag,
        evolvable: accepts_evolvable_enums(&headers),
        already_referenced: referenced_ids(&current),
    }
    .check(&updated)?;
    if patch
        .get("grantControls")
        .and_then(|g| g.get("authenticationStrength"))
        .is_some()
    {
        expand_authentication_strength(&mut updated)?;
    }
    updated.insert("modifiedDateTime".into(), Value::String(now()));
    let key = current["id"].as_str().unwrap_or(&id).to_owned();
    directory.ca_policies.put(&key, updated.clone());
    crate::audit::ca_policy_changed(&mut tenant, &caller, Some(&current), Some(&updated));
    Ok(StatusCode::NO_CONTENT)
}

pub async fn delete(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<StatusCode, GraphError> {
    can_write(&caller)?;
    let mut tenant = state.tenant();
    let directory = &mut tenant.directory;
    if directory.ca_policies.get_latest(&id).is_none() {
        return Err(policy_not_found(&id));
    }
    if is_managed(directory, &id) {
        // Microsoft-managed policies can be turned off or set to report-only, not removed.
        return Err(invalid_policy(
            "id",
            "Microsoft-managed policies cannot be deleted; set their state to disabled instead.",
        ));
    }
    let removed = directory.ca_policies.remove(&id);
    crate::audit::ca_policy_changed(&mut tenant, &caller, removed.as_ref(), None);
    Ok(StatusCode::NO_CONTENT)
}

/// Seed generator (`conditionalAccessPolicyGenerator`): adds report-only policies until the
/// tenant holds `fillTo` policies that count against the limit. Ids are deterministic so
/// seeds are reproducible. Keys: `fillTo` (number), `displayNamePrefix` (string).
pub fn generate(state: &mut DirectoryState, generator: &Value) -> Result<(), String> {
    let fill_to = generator["fillTo"]
        .as_u64()
        .ok_or("directory.conditionalAccessPolicyGenerator.fillTo: expected a number")?
        as usize;
    let prefix = generator["displayNamePrefix"]
        .as_str()
        .unwrap_or("Generated policy");
    let mut n = 0u64;
    while counted_policies(state) < fill_to {
        n += 1;
        let id = format!("0000ca00-0000-4000-8000-{n:012}");
        let controls = if n.is_multiple_of(2) {
            "mfa"
        } else {
            "compliantDevice"
        };
        let policy = json!({
            "id": id,
            "templateId": null,
            "displayName": format!("{prefix} {n:03}"),
            "createdDateTime": "2024-01-15T08:00:00Z",
            "modifiedDateTime": null,
            "state": "enabledForReportingButNotEnforced",
            "conditions": {
                "userRiskLevels": [],
                "signInRiskLevels": [],
                "clientAppTypes": ["all"],
                "servicePrincipalRiskLevels": [],
                "platforms": null,
                "locations": null,
                "devices": null,
                "clientApplications": null,
                "applications": {
                    "includeApplications": ["All"],
                    "excludeApplications": [],
                    "includeUserActions": [],
                    "includeAuthenticationContextClassReferences": [],
                    "applicationFilter": null
                },
                "users": {
                    "includeUsers": ["All"],
                    "excludeUsers": [],
                    "includeGroups": [],
                    "excludeGroups": [],
                    "includeRoles": [],
                    "excludeRoles": [],
                    "includeGuestsOrExternalUsers": null,
                    "excludeGuestsOrExternalUsers": null
                }
            },
            "grantControls": {
                "operator": "OR",
                "builtInControls": [controls],
                "customAuthenticationFactors": [],
                "termsOfUse": []
            },
            "sessionControls": null
        });
        let Value::Object(policy) = policy else {
            unreachable!("json! object literal")
        };
        state.ca_policies.seed(&id, policy);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patch_merges_objects_and_replaces_arrays() {
        let mut policy = json!({
            "displayName": "p",
            "conditions": {"users": {"includeUsers": ["All"], "excludeUsers": ["a", "b"]},
                           "clientAppTypes": ["all"]},
        })
        .as_object()
        .unwrap()
        .clone();
        let patch = json!({"conditions": {"users": {"excludeUsers": ["c"]}}});
        merge_policy(&mut policy, patch.as_object().unwrap());
        assert_eq!(
            policy["conditions"],
            json!({"users": {"includeUsers": ["All"], "excludeUsers": ["c"]},
                   "clientAppTypes": ["all"]})
        );
    }

    #[test]
    fn generator_fills_to_the_requested_count() {
        let mut state = DirectoryState::default();
        generate(&mut state, &json!({"fillTo": 7})).unwrap();
        assert_eq!(counted_policies(&state), 7);
    }
}
