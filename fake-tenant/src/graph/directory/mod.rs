//! Users, deleted items, domains, organization, groups, administrative units, authentication
//! methods and conditional-access policies.
//!
//! Objects are stored with their Graph property names in `state::Collection`s, so reads honour
//! the replication lag (`graph.replication_lag_ms`) while writes and conflict checks use the
//! primary-replica view. Things Graph never returns (password hashes, group membership, the
//! original UPN of a deleted user) live beside the objects, never inside them.

mod administrative_units;
mod auth_methods;
mod authentication_strengths;
mod authorization_info;
mod conditional_access;
mod deleted_items;
mod groups;
mod registration_details;
mod restricted;
mod tenant_info;
mod users;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::routing::{delete, get, post};
use axum::Router;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use crate::error::GraphError;
use crate::graph::odata::{CollectionLocation, QueryRules, ReadRequest};
use crate::state::Collection;
use crate::token::Caller;
use crate::AppState;

/// Directory role template ids that may act on privileged users (Graph's "who can perform
/// sensitive actions" table): Global Administrator and Privileged Authentication Administrator.
const HIGHER_PRIVILEGED_ROLES: [&str; 2] = [
    "62e90394-69f5-4237-9190-012177145e10",
    "7be44c8a-adaf-4e2a-84d6-ab2649e08a13",
];

/// Service maximum of Conditional Access policies per tenant; Microsoft-managed policies do
/// not count against it. Tests may lower it with `graph.ca_policy_limit`.
const CA_POLICY_LIMIT: u64 = 195;

#[derive(Default)]
pub struct DirectoryState {
    pub users: Collection,
    /// Soft-deleted users (`/directory/deletedItems`), restorable for 30 days.
    pub deleted_items: Collection,
    pub domains: Vec<Map<String, Value>>,
    /// Extra organization properties from the seed (id, name and verified domains come from
    /// the tenant and the domains).
    pub organization: Map<String, Value>,
    pub groups: Collection,
    /// Group id (lower case) → member object ids. Membership is a navigation property, so it
    /// is kept outside the group object.
    pub group_members: BTreeMap<String, Vec<String>>,
    pub ca_policies: Collection,
    /// Ids (lower case) of Microsoft-managed CA policies: they cannot be deleted and only their
    /// state and user/group exclusions may change.
    pub microsoft_managed_policies: BTreeSet<String>,
    /// Administrative units, their members and scoped-role members.
    pub units: administrative_units::UnitsState,
    /// User id (lower case) → FIDO2 methods (passkeys) registered for the user.
    pub fido2_methods: BTreeMap<String, Vec<Map<String, Value>>>,
    /// User id (lower case) → salted password hash (`sha256:<salt>:<hex>`); never plaintext.
    password_hashes: BTreeMap<String, String>,
    /// Deleted user id (lower case) → the UPN it had before deletion (Entra prefixes the UPN
    /// of a deleted user with its object id and gives the original back on restore).
    deleted_upns: BTreeMap<String, String>,
}

impl DirectoryState {
    /// Parses the seed's `directory` part (see `seeds/default/directory.json` and README).
    pub fn from_seed(seed: &Value) -> Result<Self, String> {
        let mut state = DirectoryState::default();
        if seed.is_null() {
            return Ok(state);
        }
        for domain in objects(seed, "domains")? {
            let id = domain["id"]
                .as_str()
                .ok_or("directory.domains[]: missing id")?;
            if id.is_empty() {
                return Err("directory.domains[]: empty id".into());
            }
            state.domains.push(domain.clone());
        }
        if let Some(org) = seed.get("organization").and_then(Value::as_object) {
            state.organization = org.clone();
        }
        for user in objects(seed, "users")? {
            let mut user = user.clone();
            let id = seed_id(&user, "users")?;
            let password = user
                .get_mut("passwordProfile")
                .and_then(Value::as_object_mut)
                .and_then(|p| p.insert("password".into(), Value::Null))
                .and_then(|p| p.as_str().map(str::to_owned));
            if let Some(password) = password {
                state.set_password(&id, &password);
            }
            users::fill_defaults(&mut user, None);
            state.users.seed(&id, user);
        }
        // Dumps carry hashes instead of seed passwords.
        for (user_id, hash) in string_map(seed, "passwordHashes")? {
            state.password_hashes.insert(user_id, hash);
        }
        for item in objects(seed, "deletedItems")? {
            let id = seed_id(item, "deletedItems")?;
            state.deleted_items.seed(&id, item.clone());
        }
        for (user_id, upn) in string_map(seed, "deletedUserPrincipalNames")? {
            state.deleted_upns.insert(user_id, upn);
        }
        for group in objects(seed, "groups")? {
            let mut group = group.clone();
            let id = seed_id(&group, "groups")?;
            // `members` is seed-only shorthand for the membership navigation property.
            let members = group
                .remove("members")
                .and_then(|m| m.as_array().cloned())
                .unwrap_or_default();
            let members = members
                .iter()
                .map(|m| m.as_str().map(str::to_owned))
                .collect::<Option<Vec<_>>>()
                .ok_or("directory.groups[].members: ids must be strings")?;
            state.group_members.insert(id.to_ascii_lowercase(), members);
            state.groups.seed(&id, group);
        }
        let managed: Vec<String> = seed["microsoftManagedPolicyIds"]
            .as_array()
            .map(|ids| {
                ids.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_ascii_lowercase)
                    .collect()
            })
            .unwrap_or_default();
        state.microsoft_managed_policies.extend(managed);
        for policy in objects(seed, "conditionalAccessPolicies")? {
            let id = seed_id(policy, "conditionalAccessPolicies")?;
            state.ca_policies.seed(&id, policy.clone());
        }
        if let Some(generator) = seed.get("conditionalAccessPolicyGenerator") {
            conditional_access::generate(&mut state, generator)?;
        }
        if let Some(methods) = seed.get("fido2Methods").and_then(Value::as_object) {
            for (user_id, list) in methods {
                let list = list
                    .as_array()
                    .ok_or("directory.fido2Methods: each user maps to an array")?;
                let list = list
                    .iter()
                    .map(|m| m.as_object().cloned())
                    .collect::<Option<Vec<_>>>()
                    .ok_or("directory.fido2Methods: methods must be objects")?;
                state
                    .fido2_methods
                    .insert(user_id.to_ascii_lowercase(), list);
            }
        }
        state.units = administrative_units::UnitsState::from_seed(seed)?;
        administrative_units::refresh_all(&mut state);
        Ok(state)
    }

    /// Everything this area holds, in seed form (`/_fake/state`): `from_seed(dump())` gives
    /// the same state back. Passwords appear only as salted hashes (`passwordHashes`).
    pub fn dump(&self) -> Value {
        let list = |c: &Collection| -> Vec<Value> {
            c.list_latest()
                .into_iter()
                .cloned()
                .map(Value::Object)
                .collect()
        };
        let groups: Vec<Value> = self
            .groups
            .list_latest()
            .into_iter()
            .map(|g| {
                let mut g = g.clone();
                let key = g["id"].as_str().unwrap_or_default().to_ascii_lowercase();
                let members = self.group_members.get(&key).cloned().unwrap_or_default();
                g.insert("members".into(), json!(members));
                Value::Object(g)
            })
            .collect();
        json!({
            "domains": self.domains,
            "organization": self.organization,
            "users": list(&self.users),
            "passwordHashes": self.password_hashes,
            "deletedItems": list(&self.deleted_items),
            "deletedUserPrincipalNames": self.deleted_upns,
            "groups": groups,
            "microsoftManagedPolicyIds": self.microsoft_managed_policies,
            "conditionalAccessPolicies": list(&self.ca_policies),
            "fido2Methods": self.fido2_methods,
            "administrativeUnits": self.units.dump(),
        })
    }

    fn set_password(&mut self, user_id: &str, password: &str) {
        let salt: [u8; 16] = rand::random();
        let salt = hex(&salt);
        let digest = Sha256::new()
            .chain_update(salt.as_bytes())
            .chain_update(password.as_bytes())
            .finalize();
        self.password_hashes.insert(
            user_id.to_ascii_lowercase(),
            format!("sha256:{salt}:{}", hex(&digest)),
        );
    }

    fn has_password(&self, user_id: &str) -> bool {
        self.password_hashes
            .contains_key(&user_id.to_ascii_lowercase())
    }

    /// Whether `password` is the user's current password (admin API sign-in checks).
    pub fn password_matches(&self, user_id: &str, password: &str) -> bool {
        let Some(stored) = self.password_hashes.get(&user_id.to_ascii_lowercase()) else {
            return false;
        };
        let mut parts = stored.splitn(3, ':');
        let (Some("sha256"), Some(salt), Some(expected)) =
            (parts.next(), parts.next(), parts.next())
        else {
            return false;
        };
        let digest = Sha256::new()
            .chain_update(salt.as_bytes())
            .chain_update(password.as_bytes())
            .finalize();
        hex(&digest) == expected
    }

    /// A verified domain of the tenant, matched case-insensitively.
    fn verified_domain(&self, name: &str) -> Option<&Map<String, Value>> {
        self.domains.iter().find(|d| {
            d["id"]
                .as_str()
                .is_some_and(|id| id.eq_ignore_ascii_case(name))
                && d["isVerified"].as_bool().unwrap_or(false)
        })
    }

    /// The live user whose UPN equals `upn` (case-insensitive), on the primary replica.
    fn user_by_upn_latest(&self, upn: &str) -> Option<&Map<String, Value>> {
        self.users.list_latest().into_iter().find(|u| {
            u["userPrincipalName"]
                .as_str()
                .is_some_and(|x| x.eq_ignore_ascii_case(upn))
        })
    }
}

fn objects<'a>(seed: &'a Value, key: &str) -> Result<Vec<&'a Map<String, Value>>, String> {
    match seed.get(key) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| {
                i.as_object()
                    .ok_or_else(|| format!("directory.{key}: entries must be objects"))
            })
            .collect(),
        Some(_) => Err(format!("directory.{key}: must be an array")),
    }
}

/// A seed object of strings keyed by object id (keys lower-cased).
fn string_map(seed: &Value, key: &str) -> Result<Vec<(String, String)>, String> {
    match seed.get(key) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Object(map)) => map
            .iter()
            .map(|(k, v)| {
                v.as_str()
                    .map(|v| (k.to_ascii_lowercase(), v.to_owned()))
                    .ok_or_else(|| format!("directory.{key}.{k}: expected a string"))
            })
            .collect(),
        Some(_) => Err(format!("directory.{key}: must be an object")),
    }
}

fn seed_id(object: &Map<String, Value>, key: &str) -> Result<String, String> {
    object["id"]
        .as_str()
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .ok_or_else(|| format!("directory.{key}[]: missing id"))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Current time as Graph writes it (`2024-05-01T12:00:00Z`).
fn now() -> String {
    let now = time::OffsetDateTime::now_utc();
    let now = now.replace_nanosecond(0).unwrap_or(now);
    now.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// 403 as Graph answers when the caller lacks every one of `permissions`.
fn require_permission(caller: &Caller, permissions: &[&str]) -> Result<(), GraphError> {
    if caller
        .roles
        .iter()
        .any(|r| permissions.iter().any(|p| p.eq_ignore_ascii_case(r)))
    {
        Ok(())
    } else {
        Err(insufficient_privileges())
    }
}

/// The caller may read with one of `permissions`, and the query options suit the entity set.
fn authorize_read(
    caller: &Caller,
    permissions: &[&str],
    uri: &Uri,
    headers: &HeaderMap,
    rules: &QueryRules,
) -> Result<ReadRequest, GraphError> {
    require_permission(caller, permissions)?;
    ReadRequest::parse(uri, headers, rules.clone())
}

/// Runs `read` on the directory as readers see it (objects written within the replication lag
/// are not there yet), holding the tenant lock only for the call.
fn reader_view<T>(state: &AppState, read: impl FnOnce(&DirectoryState, Duration) -> T) -> T {
    let tenant = state.tenant();
    let lag = tenant.behaviour.graph_lag();
    read(&tenant.directory, lag)
}

fn insufficient_privileges() -> GraphError {
    GraphError::new(
        StatusCode::FORBIDDEN,
        "Authorization_RequestDenied",
        "Insufficient privileges to complete the operation.",
    )
}

/// Sensitive actions on a user holding a privileged directory role need a caller that holds a
/// higher-privileged role (facts file §3 Users); `User.ReadWrite.All` alone is not enough.
fn require_privileged_caller_for(
    tenant: &crate::state::Tenant,
    caller: &Caller,
    user_id: &str,
) -> Result<(), GraphError> {
    if !tenant.pim.holds_privileged_role(user_id) {
        return Ok(());
    }
    // Inside a restricted management administrative unit only unit-scoped roles count, and
    // `restricted::check_*` (which every caller of this function runs first) has decided.
    if !tenant
        .directory
        .units
        .restricted_units_of(user_id)
        .is_empty()
    {
        return Ok(());
    }
    let allowed = caller.directory_roles.iter().any(|r| {
        HIGHER_PRIVILEGED_ROLES
            .iter()
            .any(|h| h.eq_ignore_ascii_case(r))
    });
    if allowed {
        Ok(())
    } else {
        Err(insufficient_privileges())
    }
}

/// Parses a JSON object body, answering like Graph when it is not one.
fn json_object(body: &Bytes) -> Result<Map<String, Value>, GraphError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(GraphError::new(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "Unable to read JSON request payload. Please ensure Content-Type header is set and payload is of valid JSON format.",
        )),
    }
}

fn location(state: &AppState, path: impl Into<String>, context: &str) -> CollectionLocation {
    CollectionLocation::new(state.base_url(), path, context)
}

/// Read permissions for directory objects: any of these application permissions.
const USER_READ: [&str; 4] = [
    "User.Read.All",
    "User.ReadWrite.All",
    "Directory.Read.All",
    "Directory.ReadWrite.All",
];
const USER_WRITE: [&str; 2] = ["User.ReadWrite.All", "Directory.ReadWrite.All"];

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/users", get(users::list).post(users::create))
        .route(
            "/users/{id}",
            get(users::get_one)
                .patch(users::update)
                .delete(users::delete),
        )
        .route(
            "/users/{id}/memberOf",
            get(administrative_units::user_member_of),
        )
        .route(
            "/users/{id}/authentication/methods",
            get(auth_methods::list_methods),
        )
        .route(
            "/users/{id}/authentication/methods/{method_id}",
            get(auth_methods::get_method),
        )
        .route(
            "/users/{id}/authentication/fido2Methods",
            get(auth_methods::list_fido2),
        )
        .route(
            "/users/{id}/authentication/fido2Methods/{method_id}",
            get(auth_methods::get_fido2).delete(auth_methods::delete_fido2),
        )
        .route(
            "/directory/deletedItems/microsoft.graph.user",
            get(deleted_items::list_users),
        )
        .route(
            "/directory/deletedItems/{id}",
            get(deleted_items::get_one).delete(deleted_items::purge),
        )
        .route(
            "/directory/deletedItems/{id}/restore",
            post(deleted_items::restore),
        )
        .route(
            "/directory/deletedItems/{id}/microsoft.graph.restore",
            post(deleted_items::restore),
        )
        .route(
            "/directory/administrativeUnits",
            get(administrative_units::list).post(administrative_units::create),
        )
        .route(
            "/directory/administrativeUnits/{id}",
            get(administrative_units::get_one)
                .patch(administrative_units::update)
                .delete(administrative_units::delete),
        )
        .route(
            "/directory/administrativeUnits/{id}/members",
            get(administrative_units::list_members),
        )
        .route(
            "/directory/administrativeUnits/{id}/members/$ref",
            get(administrative_units::list_member_refs).post(administrative_units::add_member),
        )
        .route(
            "/directory/administrativeUnits/{id}/members/{member_id}/$ref",
            delete(administrative_units::remove_member),
        )
        .route(
            "/directory/administrativeUnits/{id}/scopedRoleMembers",
            get(administrative_units::list_scoped_role_members)
                .post(administrative_units::add_scoped_role_member),
        )
        .route(
            "/directory/administrativeUnits/{id}/scopedRoleMembers/{membership_id}",
            get(administrative_units::get_scoped_role_member)
                .delete(administrative_units::remove_scoped_role_member),
        )
        .route(
            "/reports/authenticationMethods/userRegistrationDetails",
            get(registration_details::list),
        )
        .route(
            "/reports/authenticationMethods/userRegistrationDetails/{id}",
            get(registration_details::get_one),
        )
        .route(
            "/policies/authenticationStrengthPolicies",
            get(authentication_strengths::list),
        )
        .route(
            "/policies/authenticationStrengthPolicies/{id}",
            get(authentication_strengths::get_one),
        )
        .route("/domains", get(tenant_info::list_domains))
        .route("/domains/{id}", get(tenant_info::get_domain))
        .route("/organization", get(tenant_info::list_organization))
        .route("/organization/{id}", get(tenant_info::get_organization))
        .route("/groups", get(groups::list))
        .route("/groups/{id}", get(groups::get_one))
        .route("/groups/{id}/members", get(groups::members))
        .route("/groups/{id}/members/{cast}", get(groups::members_cast))
        .route(
            "/identity/conditionalAccess/policies",
            get(conditional_access::list).post(conditional_access::create),
        )
        .route(
            "/identity/conditionalAccess/policies/{id}",
            get(conditional_access::get_one)
                .patch(conditional_access::update)
                .delete(conditional_access::delete),
        )
}

/// Test-only admin routes for this area, mounted under `/_fake/`.
pub fn admin_routes() -> Router<AppState> {
    Router::new()
        .route(
            "/directory/users/{id}/fido2",
            post(auth_methods::admin_register_fido2),
        )
        .route(
            "/directory/groups/{id}/members",
            post(groups::admin_add_member),
        )
        .route("/directory/users/{id}/sync", post(users::admin_set_sync))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_stored_as_salted_hashes() {
        let mut state = DirectoryState::default();
        state.set_password("U1", "Sup3r-Secret!");
        let dump = state.dump().to_string();
        assert!(!dump.contains("Sup3r-Secret!"));
        assert!(state.password_matches("u1", "Sup3r-Secret!"));
        assert!(!state.password_matches("u1", "sup3r-secret!"));
    }

    #[test]
    fn seed_passwords_never_reach_the_stored_user() {
        let seed = json!({
            "domains": [{"id": "contoso.onmicrosoft.com", "isVerified": true}],
            "users": [{"id": "u1", "userPrincipalName": "a@contoso.onmicrosoft.com",
                       "passwordProfile": {"password": "Seed-Passw0rd", "forceChangePasswordNextSignIn": false}}],
        });
        let state = DirectoryState::from_seed(&seed).unwrap();
        let user = state.users.get_latest("u1").unwrap();
        assert_eq!(user["passwordProfile"]["password"], Value::Null);
        assert!(state.password_matches("u1", "Seed-Passw0rd"));
        assert!(!state.dump().to_string().contains("Seed-Passw0rd"));
    }

    #[test]
    fn dump_is_a_seed_that_loads_back_identically() {
        let seed = json!({
            "domains": [{"id": "contoso.com", "isVerified": true}],
            "users": [{"id": "u1", "userPrincipalName": "a@contoso.com",
                       "passwordProfile": {"password": "Seed-Passw0rd"}}],
            "groups": [{"id": "g1", "displayName": "G", "members": ["u1"]}],
            "microsoftManagedPolicyIds": ["P9"],
            "conditionalAccessPolicyGenerator": {"fillTo": 2},
            "fido2Methods": {"u1": [{"id": "k1"}]},
            "administrativeUnits": [{"id": "a1", "displayName": "A", "isMemberManagementRestricted": true,
                                     "members": ["u1"],
                                     "scopedRoleMembers": [{"roleId": "r1", "roleMemberInfo": {"id": "p1"}}]}],
        });
        let mut state = DirectoryState::from_seed(&seed).unwrap();
        let deleted = state.users.remove("u1").unwrap();
        state.deleted_items.seed("u1", deleted);
        state
            .deleted_upns
            .insert("u1".into(), "a@contoso.com".into());
        let dump = state.dump();
        let reloaded = DirectoryState::from_seed(&dump).unwrap();
        assert_eq!(reloaded.dump(), dump);
        assert!(reloaded.password_matches("u1", "Seed-Passw0rd"));
        assert_eq!(reloaded.group_members["g1"], ["u1"]);
        assert_eq!(reloaded.ca_policies.len_latest(), 2);
        assert_eq!(reloaded.units.restricted_units_of("u1"), ["a1"]);
        assert_eq!(reloaded.units.scoped_roles_of_unit("A1")[0]["roleId"], "r1");
    }
}
