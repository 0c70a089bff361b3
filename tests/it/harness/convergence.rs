//! Does Terraform's state describe the tenant, exactly? After an apply — clean, through
//! injected faults, or after a killed one — compare `terraform show -json` of every stack that
//! used the tenant with the emulated tenant's dump (`GET /_fake/state`) and with a dump taken
//! before the stacks were applied:
//!
//! - **mismatches**: a managed resource in state that the tenant does not hold, or holds with
//!   other values than state claims;
//! - **orphans**: an object the stacks added to the tenant (in the dump now, not in the
//!   baseline) that no resource in state claims — Terraform has lost track of it;
//! - **duplicates**: a natural key held twice — two users with one UPN, two PIM assignments of
//!   one role to one principal at one scope, one id twice in an exclusion list, two Azure role
//!   assignments of one role to one principal at one scope.
//!
//! Resource types plug in through [`MAPPINGS`]: a function from the instance's attributes to the
//! tenant objects it stands for (its claims), reporting every attribute that differs. Azure
//! resources are found generically by their ARM `id` (any resource whose `id` is an ARM resource
//! id), so ARM-backed resources join without a mapping of their own; any other resource type
//! without a mapping is reported as a mismatch, so a new resource cannot silently escape the
//! check.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value as Json;
use sha2::{Digest, Sha256};

use super::workspace::State;

/// One object in the tenant: what kind, and its key there (lower-case).
pub type ObjectKey = (&'static str, String);

/// `user` (object id), `pim-assignment` (assignment id), `ca-exclusion` (`policy/principal`),
/// `arm` (resource id).
const USER: &str = "user";
const PIM_ASSIGNMENT: &str = "pim-assignment";
pub const CA_EXCLUSION: &str = "ca-exclusion";
const ARM: &str = "arm";

/// What [`compare`] found; everything empty means state and tenant agree.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub mismatches: Vec<String>,
    pub orphans: Vec<String>,
    /// The orphans' keys, in the order of `orphans`.
    pub orphan_keys: Vec<ObjectKey>,
    pub duplicates: Vec<String>,
}

impl Verdict {
    pub fn is_clean(&self) -> bool {
        self.mismatches.is_empty() && self.orphans.is_empty() && self.duplicates.is_empty()
    }

    /// `Ok` when clean, else one message listing every finding.
    pub fn into_result(self) -> Result<(), String> {
        if self.is_clean() {
            return Ok(());
        }
        let mut lines = Vec::new();
        for (what, items) in [
            ("state differs from the tenant", &self.mismatches),
            ("orphans (in the tenant, in no state)", &self.orphans),
            ("duplicates", &self.duplicates),
        ] {
            if !items.is_empty() {
                lines.push(format!("{what}:"));
                lines.extend(items.iter().map(|i| format!("  - {i}")));
            }
        }
        Err(lines.join("\n"))
    }
}

/// The tenant as a dump shows it, indexed by object.
pub struct TenantView<'a> {
    pub dump: &'a Json,
    objects: BTreeMap<ObjectKey, Json>,
}

impl<'a> TenantView<'a> {
    pub fn new(dump: &'a Json) -> Self {
        TenantView {
            dump,
            objects: objects(dump),
        }
    }

    pub fn get(&self, kind: &'static str, key: &str) -> Option<&Json> {
        self.objects.get(&(kind, key.to_ascii_lowercase()))
    }

    fn user(&self, id: &str) -> Option<&Json> {
        self.get(USER, id)
    }

    fn policies(&self) -> impl Iterator<Item = &Json> {
        self.dump["directory"]["conditionalAccessPolicies"]
            .as_array()
            .into_iter()
            .flatten()
    }
}

/// The tenant objects an instance stands for, or every way in which it differs from them.
pub type Claims = Result<Vec<ObjectKey>, Vec<String>>;

/// How one resource type is found in the tenant.
pub struct Mapping {
    pub resource_type: &'static str,
    pub claims: fn(&Json, &TenantView<'_>) -> Claims,
}

/// Every resource type the quickstart and the examples use. Add one entry per new resource
/// type that is not an ARM resource (those are found by their `id`).
pub const MAPPINGS: &[Mapping] = &[
    Mapping {
        resource_type: "breakglass_account",
        claims: account_claims,
    },
    Mapping {
        resource_type: "breakglass_role_assignment",
        claims: role_assignment_claims,
    },
    Mapping {
        resource_type: "breakglass_ca_exclusion",
        claims: ca_exclusion_claims,
    },
    Mapping {
        resource_type: "breakglass_signin_alert",
        claims: signin_alert_claims,
    },
];

/// Compares the managed resources of `states` (every stack that used the tenant) with `now`,
/// and the objects added since `baseline` with what those states claim.
pub fn compare(states: &[&State], baseline: &Json, now: &Json) -> Verdict {
    let view = TenantView::new(now);
    let before = objects(baseline);
    let mut verdict = Verdict::default();
    let mut claimed: BTreeMap<ObjectKey, String> = BTreeMap::new();
    for state in states {
        for (address, resource_type, values) in managed_resources(state) {
            let found = match MAPPINGS.iter().find(|m| m.resource_type == resource_type) {
                Some(mapping) => (mapping.claims)(&values, &view),
                None => arm_claims(&resource_type, &values, &view),
            };
            match found {
                Ok(keys) => {
                    for key in keys {
                        if let Some(other) = claimed.insert(key.clone(), address.clone()) {
                            verdict.duplicates.push(format!(
                                "{} {} is claimed by both {other} and {address}",
                                key.0, key.1
                            ));
                        }
                    }
                }
                Err(problems) => verdict
                    .mismatches
                    .extend(problems.into_iter().map(|p| format!("{address}: {p}"))),
            }
        }
    }
    for (key, object) in &view.objects {
        if !before.contains_key(key) && !claimed.contains_key(key) {
            verdict
                .orphans
                .push(format!("{} {} ({})", key.0, key.1, describe(key.0, object)));
            verdict.orphan_keys.push(key.clone());
        }
    }
    verdict.duplicates.extend(duplicates(now));
    verdict
}

/// `(address, type, values)` of every managed resource instance in state.
fn managed_resources(state: &State) -> Vec<(String, String, Json)> {
    fn walk(module: &Json, out: &mut Vec<(String, String, Json)>) {
        for r in module["resources"].as_array().into_iter().flatten() {
            if r["mode"] == "managed" {
                out.push((
                    r["address"].as_str().unwrap_or_default().to_owned(),
                    r["type"].as_str().unwrap_or_default().to_owned(),
                    r["values"].clone(),
                ));
            }
        }
        for child in module["child_modules"].as_array().into_iter().flatten() {
            walk(child, out);
        }
    }
    let mut out = Vec::new();
    walk(&state.0["values"]["root_module"], &mut out);
    out
}

// ---------------------------------------------------------------------------------------------
// The tenant's objects

fn lower(v: &Json) -> String {
    v.as_str().unwrap_or_default().to_ascii_lowercase()
}

fn items(v: &Json) -> impl Iterator<Item = &Json> {
    v.as_array().into_iter().flatten()
}

/// Every object a stack can add, by key.
fn objects(dump: &Json) -> BTreeMap<ObjectKey, Json> {
    let mut out = BTreeMap::new();
    for user in items(&dump["directory"]["users"]) {
        out.insert((USER, lower(&user["id"])), user.clone());
    }
    for assignment in items(&dump["pim"]["roleAssignments"]) {
        out.insert(
            (PIM_ASSIGNMENT, lower(&assignment["id"])),
            assignment.clone(),
        );
    }
    for policy in items(&dump["directory"]["conditionalAccessPolicies"]) {
        for list in ["excludeUsers", "excludeGroups"] {
            for entry in items(&policy["conditions"]["users"][list]) {
                let key = format!("{}/{}", lower(&policy["id"]), lower(entry));
                out.insert(
                    (CA_EXCLUSION, key),
                    serde_json::json!({"policy": policy["id"], "list": list, "principal": entry}),
                );
            }
        }
    }
    for (id, object) in arm_objects(dump) {
        out.insert((ARM, id), object);
    }
    out
}

/// ARM resources in a dump by lower-case resource id. Resources dumped whole carry their
/// `id`; the others are dumped in seed form and their ids are rebuilt as ARM spells them.
fn arm_objects(dump: &Json) -> Vec<(String, Json)> {
    let arm = &dump["arm"];
    let mut out = Vec::new();
    for collection in ["diagnosticSettings", "actionGroups", "scheduledQueryRules"] {
        for object in items(&arm[collection]) {
            out.push((lower(&object["id"]), object.clone()));
        }
    }
    for ra in items(&arm["roleAssignments"]) {
        let id = format!(
            "{}/providers/Microsoft.Authorization/roleAssignments/{}",
            ra["scope"]
                .as_str()
                .unwrap_or_default()
                .trim_end_matches('/'),
            ra["name"].as_str().unwrap_or_default()
        );
        out.push((id.to_ascii_lowercase(), ra.clone()));
    }
    for rg in items(&arm["resourceGroups"]) {
        let id = format!(
            "/subscriptions/{}/resourceGroups/{}",
            rg["subscriptionId"].as_str().unwrap_or_default(),
            rg["name"].as_str().unwrap_or_default()
        );
        out.push((id.to_ascii_lowercase(), rg.clone()));
    }
    for ws in items(&arm["workspaces"]) {
        let id = format!(
            "/subscriptions/{}/resourceGroups/{}/providers/Microsoft.OperationalInsights/workspaces/{}",
            ws["subscriptionId"].as_str().unwrap_or_default(),
            ws["resourceGroup"].as_str().unwrap_or_default(),
            ws["name"].as_str().unwrap_or_default()
        );
        out.push((id.to_ascii_lowercase(), ws.clone()));
    }
    out
}

fn describe(kind: &str, object: &Json) -> String {
    match kind {
        USER => format!(
            "user {}",
            object["userPrincipalName"].as_str().unwrap_or("?")
        ),
        PIM_ASSIGNMENT => format!(
            "role {} for {}",
            object["roleDefinitionId"].as_str().unwrap_or("?"),
            object["principalId"].as_str().unwrap_or("?")
        ),
        CA_EXCLUSION => format!(
            "{} of policy {}",
            object["list"].as_str().unwrap_or("?"),
            object["policy"].as_str().unwrap_or("?")
        ),
        _ => object["name"].as_str().unwrap_or("?").to_owned(),
    }
}

/// Natural keys held more than once anywhere in the tenant.
fn duplicates(dump: &Json) -> Vec<String> {
    let mut out = Vec::new();
    let mut count = |what: String, keys: Vec<String>| {
        let mut seen: BTreeMap<String, usize> = BTreeMap::new();
        for k in keys {
            *seen.entry(k).or_default() += 1;
        }
        for (k, n) in seen.into_iter().filter(|(_, n)| *n > 1) {
            out.push(format!("{what} {k} is held {n} times"));
        }
    };
    count(
        "user principal name".into(),
        items(&dump["directory"]["users"])
            .map(|u| lower(&u["userPrincipalName"]))
            .collect(),
    );
    count(
        "PIM assignment (principal, role, scope)".into(),
        items(&dump["pim"]["roleAssignments"])
            .map(|a| {
                format!(
                    "({}, {}, {})",
                    lower(&a["principalId"]),
                    lower(&a["roleDefinitionId"]),
                    lower(&a["directoryScopeId"])
                )
            })
            .collect(),
    );
    for policy in items(&dump["directory"]["conditionalAccessPolicies"]) {
        for list in ["excludeUsers", "excludeGroups"] {
            count(
                format!("in {list} of policy {}, id", lower(&policy["id"])),
                items(&policy["conditions"]["users"][list])
                    .map(lower)
                    .collect(),
            );
        }
    }
    count(
        "Azure role assignment (scope, principal, role)".into(),
        items(&dump["arm"]["roleAssignments"])
            .map(|a| {
                format!(
                    "({}, {}, {})",
                    lower(&a["scope"]),
                    lower(&a["principalId"]),
                    lower(&a["roleDefinitionId"])
                )
            })
            .collect(),
    );
    out
}

// ---------------------------------------------------------------------------------------------
// Mappings

/// Collects differences; `Ok(claims)` only when there are none.
struct Differences(Vec<String>);

impl Differences {
    fn new() -> Self {
        Differences(Vec::new())
    }

    /// State's `attribute` against the tenant's `property` (both strings compared as given,
    /// or case-insensitively). Null in state means "not managed here": not compared.
    fn same(&mut self, state: &Json, attribute: &str, tenant: &Json, property: &str, fold: bool) {
        let (s, t) = (&state[attribute], &tenant[property]);
        if s.is_null() {
            return;
        }
        let equal = match (s.as_str(), t.as_str()) {
            (Some(a), Some(b)) if fold => a.eq_ignore_ascii_case(b),
            _ => s == t,
        };
        if !equal {
            self.0.push(format!(
                "{attribute} is {s} in state, {property} is {t} in the tenant"
            ));
        }
    }

    fn note(&mut self, problem: String) {
        self.0.push(problem);
    }

    fn finish(self, claims: Vec<ObjectKey>) -> Result<Vec<ObjectKey>, Vec<String>> {
        if self.0.is_empty() {
            Ok(claims)
        } else {
            Err(self.0)
        }
    }
}

fn account_claims(values: &Json, view: &TenantView<'_>) -> Result<Vec<ObjectKey>, Vec<String>> {
    let id = lower(&values["id"]);
    let Some(user) = view.user(&id) else {
        let deleted = items(&view.dump["directory"]["deletedItems"]).any(|d| lower(&d["id"]) == id);
        return Err(vec![if deleted {
            format!("user {id} is in deleted items, state holds it as live")
        } else {
            format!("user {id} does not exist in the tenant")
        }]);
    };
    let mut d = Differences::new();
    d.same(values, "object_id", user, "id", true);
    d.same(
        values,
        "user_principal_name",
        user,
        "userPrincipalName",
        true,
    );
    d.same(values, "display_name", user, "displayName", false);
    d.same(values, "mail_nickname", user, "mailNickname", false);
    d.same(values, "account_enabled", user, "accountEnabled", false);
    d.same(values, "usage_location", user, "usageLocation", false);
    if let Some(password) = values["password"].as_str() {
        let hash = &view.dump["directory"]["passwordHashes"][id.as_str()];
        if !password_matches(hash.as_str().unwrap_or_default(), password) {
            d.note(format!(
                "the password in state does not sign in as user {id} (the tenant's hash differs)"
            ));
        }
    }
    d.finish(vec![(USER, id)])
}

/// The emulator's `sha256:<salt>:<hex digest of salt ‖ password>` (fake-tenant README, dump).
fn password_matches(stored: &str, password: &str) -> bool {
    let mut parts = stored.splitn(3, ':');
    let (Some("sha256"), Some(salt), Some(expected)) = (parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    let digest = Sha256::new()
        .chain_update(salt.as_bytes())
        .chain_update(password.as_bytes())
        .finalize();
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    hex == expected
}

fn role_assignment_claims(
    values: &Json,
    view: &TenantView<'_>,
) -> Result<Vec<ObjectKey>, Vec<String>> {
    let (principal, role) = (
        lower(&values["principal_id"]),
        lower(&values["role_definition_id"]),
    );
    let scope = values["directory_scope_id"]
        .as_str()
        .unwrap_or("/")
        .to_ascii_lowercase();
    let matching: Vec<&Json> = items(&view.dump["pim"]["roleAssignments"])
        .filter(|a| {
            lower(&a["principalId"]) == principal
                && lower(&a["roleDefinitionId"]) == role
                && lower(&a["directoryScopeId"]) == scope
        })
        .collect();
    let mut d = Differences::new();
    match matching.as_slice() {
        [] => d.note(format!(
            "no assignment of role {role} to {principal} at {scope} in the tenant"
        )),
        [one] => {
            d.same(values, "end_date_time", one, "endDateTime", false);
        }
        // Reported by the duplicate check; claim them all so none counts as an orphan too.
        _ => {}
    }
    if let Some(schedule) = values["schedule_id"].as_str() {
        let known = items(&view.dump["pim"]["roleAssignmentScheduleRequests"]).any(|r| {
            lower(&r["targetScheduleId"]) == schedule.to_ascii_lowercase()
                || lower(&r["id"]) == schedule.to_ascii_lowercase()
        });
        if !known {
            d.note(format!("schedule {schedule} is not among PIM's requests"));
        }
    }
    let claims = matching
        .iter()
        .map(|a| (PIM_ASSIGNMENT, lower(&a["id"])))
        .collect();
    d.finish(claims)
}

/// The policy states an exclusion covers when `policy_filter.include_states` is not set.
const DEFAULT_STATES: [&str; 2] = ["enabled", "enabledForReportingButNotEnforced"];

fn ca_exclusion_claims(
    values: &Json,
    view: &TenantView<'_>,
) -> Result<Vec<ObjectKey>, Vec<String>> {
    let users: BTreeSet<String> = items(&values["user_ids"]).map(lower).collect();
    let groups: BTreeSet<String> = items(&values["group_ids"]).map(lower).collect();
    let filter = values["policy_filter"]
        .as_array()
        .and_then(|a| a.first())
        .unwrap_or(&values["policy_filter"]);
    let states: Vec<String> = match filter["include_states"].as_array() {
        Some(s) => s
            .iter()
            .map(|v| v.as_str().unwrap_or_default().to_owned())
            .collect(),
        None => DEFAULT_STATES.map(str::to_owned).to_vec(),
    };
    let left_alone: BTreeSet<String> = items(&filter["exclude_policy_ids"]).map(lower).collect();
    let mut d = Differences::new();
    let excluded = |policy: &Json, list: &str, id: &str| {
        items(&policy["conditions"]["users"][list]).any(|e| lower(e) == id)
    };
    let (mut carrying, mut lacking) = (BTreeSet::new(), BTreeSet::new());
    for policy in view.policies() {
        let id = lower(&policy["id"]);
        if left_alone.contains(&id) {
            continue;
        }
        let all = users.iter().all(|u| excluded(policy, "excludeUsers", u))
            && groups.iter().all(|g| excluded(policy, "excludeGroups", g));
        if all {
            carrying.insert(id);
        } else if states.iter().any(|s| policy["state"] == s.as_str()) && targets_users(policy) {
            lacking.insert(id);
        }
    }
    let in_state =
        |attribute: &str| -> BTreeSet<String> { items(&values[attribute]).map(lower).collect() };
    if in_state("policy_ids") != carrying {
        d.note(format!(
            "policy_ids is {:?} in state, the tenant's policies carrying the exclusion are {carrying:?}",
            in_state("policy_ids")
        ));
    }
    if in_state("missing_policy_ids") != lacking {
        d.note(format!(
            "missing_policy_ids is {:?} in state, the tenant's policies in scope lacking it are {lacking:?}",
            in_state("missing_policy_ids")
        ));
    }
    let mut claims = Vec::new();
    for (policy_id, principals) in values["added_exclusions"].as_object().into_iter().flatten() {
        let policy = view
            .policies()
            .find(|p| lower(&p["id"]) == policy_id.to_ascii_lowercase());
        for principal in items(principals).map(lower) {
            let present = policy.is_some_and(|p| {
                excluded(p, "excludeUsers", &principal) || excluded(p, "excludeGroups", &principal)
            });
            if !present {
                d.note(format!(
                    "added_exclusions records {principal} in policy {policy_id}, the tenant's policy does not exclude it"
                ));
            }
            claims.push((
                CA_EXCLUSION,
                format!("{}/{principal}", policy_id.to_ascii_lowercase()),
            ));
        }
    }
    d.finish(claims)
}

/// Whether a policy can apply to a user sign-in at all (it includes users, groups, roles or
/// guests; workload-identity policies include none).
fn targets_users(policy: &Json) -> bool {
    let users = &policy["conditions"]["users"];
    items(&users["includeUsers"])
        .any(|u| !u.as_str().unwrap_or_default().eq_ignore_ascii_case("None"))
        || items(&users["includeGroups"]).next().is_some()
        || items(&users["includeRoles"]).next().is_some()
        || !users["includeGuestsOrExternalUsers"].is_null()
}

/// A sign-in alert is two scheduled query rules: the sign-in rule (its `id`) and the tamper
/// rule beside it, `<name>-tamper`, which must exist while `tamper_alert.enabled` is true.
fn signin_alert_claims(values: &Json, view: &TenantView<'_>) -> Claims {
    let mut keys = arm_claims("breakglass_signin_alert", values, view)?;
    let tamper = format!("{}-tamper", lower(&values["id"]));
    match view.get(ARM, &tamper) {
        Some(_) => keys.push((ARM, tamper)),
        None if values["tamper_alert"]["enabled"] == Json::Bool(true) => {
            return Err(vec![format!(
                "tamper_alert is enabled but the tenant holds no rule {tamper}"
            )])
        }
        None => {}
    }
    Ok(keys)
}

/// Any resource whose `id` is an ARM resource id claims the ARM object with that id.
fn arm_claims(
    resource_type: &str,
    values: &Json,
    view: &TenantView<'_>,
) -> Result<Vec<ObjectKey>, Vec<String>> {
    let id = values["id"].as_str().unwrap_or_default();
    let lower_id = id.to_ascii_lowercase();
    if !(lower_id.starts_with("/subscriptions/") || lower_id.starts_with("/providers/")) {
        return Err(vec![format!(
            "no tenant mapping for resource type {resource_type}: add one to \
             tests/it/harness/convergence.rs (MAPPINGS)"
        )]);
    }
    match view.get(ARM, &lower_id) {
        Some(_) => Ok(vec![(ARM, lower_id)]),
        None => Err(vec![format!(
            "ARM resource {id} does not exist in the tenant"
        )]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const USER_ID: &str = "e3a8f3ab-9ac8-4add-b4a7-c5fbe3adb29d";
    const GA: &str = "62e90394-69f5-4237-9190-012177145e10";

    fn hash(password: &str) -> String {
        let salt = "00ff";
        let digest = Sha256::new()
            .chain_update(salt.as_bytes())
            .chain_update(password.as_bytes())
            .finalize();
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        format!("sha256:{salt}:{hex}")
    }

    fn baseline() -> Json {
        json!({
            "directory": {
                "users": [{"id": "u-seed", "userPrincipalName": "seed@contoso.com"}],
                "passwordHashes": {},
                "conditionalAccessPolicies": [
                    {"id": "p1", "state": "enabled", "conditions": {"users": {
                        "includeUsers": ["All"], "excludeUsers": ["u-seed"], "excludeGroups": []}}},
                    {"id": "p2", "state": "disabled", "conditions": {"users": {
                        "includeUsers": ["All"], "excludeUsers": [], "excludeGroups": []}}},
                ],
            },
            "pim": {"roleAssignments": [], "roleAssignmentScheduleRequests": []},
            "arm": {"roleAssignments": [], "diagnosticSettings": []},
        })
    }

    /// The tenant after a clean apply of account + role + exclusion.
    fn applied() -> Json {
        let mut now = baseline();
        now["directory"]["users"]
            .as_array_mut()
            .unwrap()
            .push(json!({
            "id": USER_ID, "userPrincipalName": "bg@contoso.com", "displayName": "BG",
            "mailNickname": "bg", "accountEnabled": true}));
        now["directory"]["passwordHashes"][USER_ID] = json!(hash("s3cret"));
        now["directory"]["conditionalAccessPolicies"][0]["conditions"]["users"]["excludeUsers"] =
            json!(["u-seed", USER_ID]);
        now["pim"]["roleAssignments"] = json!([{"id": "a1", "principalId": USER_ID,
            "roleDefinitionId": GA, "directoryScopeId": "/", "endDateTime": null}]);
        now["pim"]["roleAssignmentScheduleRequests"] =
            json!([{"id": "r1", "targetScheduleId": "r1"}]);
        now
    }

    fn state() -> State {
        State(json!({"values": {"root_module": {"resources": [
            {"address": "data.breakglass_client_config.c", "mode": "data",
             "type": "breakglass_client_config", "values": {}},
            {"address": "breakglass_account.a", "mode": "managed", "type": "breakglass_account",
             "values": {"id": USER_ID, "object_id": USER_ID, "user_principal_name": "BG@contoso.com",
                        "display_name": "BG", "mail_nickname": "bg", "account_enabled": true,
                        "usage_location": null, "password": "s3cret"}},
            {"address": "breakglass_role_assignment.r", "mode": "managed",
             "type": "breakglass_role_assignment",
             "values": {"principal_id": USER_ID, "role_definition_id": GA,
                        "directory_scope_id": "/", "end_date_time": null, "schedule_id": "r1"}},
            {"address": "breakglass_ca_exclusion.e", "mode": "managed",
             "type": "breakglass_ca_exclusion",
             "values": {"user_ids": [USER_ID], "group_ids": null, "policy_filter": null,
                        "policy_ids": ["p1"], "missing_policy_ids": [],
                        "added_exclusions": {"p1": [USER_ID]}}},
        ]}}}))
    }

    fn verdict(state: &State, now: &Json) -> Verdict {
        compare(&[state], &baseline(), now)
    }

    #[test]
    fn a_clean_apply_is_clean() {
        assert_eq!(verdict(&state(), &applied()), Verdict::default());
    }

    #[test]
    fn an_object_no_state_claims_is_an_orphan() {
        let mut now = applied();
        now["directory"]["users"]
            .as_array_mut()
            .unwrap()
            .push(json!({
            "id": "u-lost", "userPrincipalName": "lost@contoso.com"}));
        let v = verdict(&state(), &now);
        assert_eq!(v.orphans.len(), 1, "{v:?}");
        assert!(v.orphans[0].contains("lost@contoso.com"));
        // Nothing in state at all: everything the stack made is orphaned.
        let empty = State(json!({"values": {"root_module": {"resources": []}}}));
        assert_eq!(verdict(&empty, &applied()).orphans.len(), 3);
    }

    #[test]
    fn an_exclusion_the_ownership_record_misses_is_an_orphan() {
        let mut s = state();
        s.0["values"]["root_module"]["resources"][3]["values"]["added_exclusions"] = json!({});
        let v = verdict(&s, &applied());
        assert_eq!(
            v.orphans,
            [format!(
                "ca-exclusion p1/{USER_ID} (excludeUsers of policy p1)"
            )]
        );
    }

    #[test]
    fn state_values_the_tenant_does_not_hold_are_mismatches() {
        let mut now = applied();
        now["directory"]["users"][1]["displayName"] = json!("Someone else");
        now["directory"]["passwordHashes"][USER_ID] = json!(hash("other"));
        let v = verdict(&state(), &now);
        assert_eq!(v.mismatches.len(), 2, "{v:?}");
        assert!(v.mismatches[0].contains("display_name"));
        assert!(v.mismatches[1].contains("password"));
        // A resource whose object is gone.
        let mut gone = applied();
        gone["pim"]["roleAssignments"] = json!([]);
        let v = verdict(&state(), &gone);
        assert!(
            v.mismatches
                .iter()
                .any(|m| m.contains("no assignment of role")),
            "{v:?}"
        );
    }

    #[test]
    fn exclusion_lists_in_state_must_match_the_policies() {
        let mut now = applied();
        // The exclusion was lost from p1 (another writer's stale PATCH).
        now["directory"]["conditionalAccessPolicies"][0]["conditions"]["users"]["excludeUsers"] =
            json!(["u-seed"]);
        let v = verdict(&state(), &now);
        assert_eq!(v.mismatches.len(), 3, "{v:?}");
    }

    #[test]
    fn natural_keys_held_twice_are_duplicates() {
        let mut now = applied();
        now["directory"]["conditionalAccessPolicies"][0]["conditions"]["users"]["excludeUsers"] =
            json!(["u-seed", USER_ID, USER_ID.to_uppercase()]);
        now["pim"]["roleAssignments"]
            .as_array_mut()
            .unwrap()
            .push(json!({"id": "a2",
            "principalId": USER_ID, "roleDefinitionId": GA, "directoryScopeId": "/"}));
        let v = verdict(&state(), &now);
        assert_eq!(v.duplicates.len(), 2, "{v:?}");
        assert!(v.orphans.is_empty(), "both assignments are claimed: {v:?}");
    }

    #[test]
    fn arm_resources_are_found_by_id_and_unknown_types_are_reported() {
        let mut now = applied();
        now["arm"]["diagnosticSettings"] = json!([{"id":
            "/providers/microsoft.aadiam/diagnosticSettings/bg", "name": "bg"}]);
        let mut s = state();
        let resources = s.0["values"]["root_module"]["resources"]
            .as_array_mut()
            .unwrap();
        resources.push(
            json!({"address": "breakglass_diagnostic_setting.d", "mode": "managed",
            "type": "breakglass_diagnostic_setting",
            "values": {"id": "/providers/Microsoft.aadiam/diagnosticSettings/BG"}}),
        );
        assert!(verdict(&s, &now).is_clean(), "{:?}", verdict(&s, &now));
        // Without the state resource, the setting is an orphan.
        assert_eq!(verdict(&state(), &now).orphans.len(), 1);
        // A resource type nobody mapped fails the comparison instead of passing unchecked.
        let mut s = state();
        s.0["values"]["root_module"]["resources"]
            .as_array_mut()
            .unwrap()
            .push(json!({
            "address": "breakglass_new.n", "mode": "managed", "type": "breakglass_new",
            "values": {"id": "x"}}));
        let v = verdict(&s, &applied());
        assert!(v.mismatches[0].contains("no tenant mapping for resource type breakglass_new"));
    }
}
