//! PIM role settings: one `unifiedRoleManagementPolicy` per directory role, assigned to the role
//! by a `unifiedRoleManagementPolicyAssignment` (id `<policyId>_<roleDefinitionId>`), each with
//! the polymorphic rules whose ids follow `<Kind>_<Caller>_<Level>` (facts file, "PIM policies").

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};
use time::Duration;

use super::schedule::parse_iso_duration;

/// The rule a PIM admin assignment request is checked against, and the name Graph reports
/// when it fails (`The following policy rules failed: ["ExpirationRule"]`).
pub const ADMIN_ASSIGNMENT_EXPIRATION_RULE: &str = "Expiration_Admin_Assignment";

#[derive(Debug, Clone)]
pub struct RolePolicy {
    /// The policy object without its `rules` navigation property.
    pub policy: Map<String, Value>,
    pub role_definition_id: String,
    /// Rules in the order Graph lists them.
    pub rules: Vec<Map<String, Value>>,
}

/// What `Expiration_Admin_Assignment` says about active assignments.
#[derive(Debug, Clone, PartialEq)]
pub struct ExpirationRule {
    pub is_expiration_required: bool,
    pub maximum_duration: Option<Duration>,
}

#[derive(Debug, Default, Clone)]
pub struct PolicyStore {
    /// Keyed by lower-cased policy id.
    policies: BTreeMap<String, RolePolicy>,
}

impl PolicyStore {
    /// Builds one policy per role from the seed's `policies` part:
    /// - `idPrefix` + a GUID derived from the role id gives stable policy ids across restarts;
    /// - `ruleTemplate` is the rule list every role starts from;
    /// - `ruleOverrides` maps role id → rule id → a JSON merge patch for that rule, so seed
    ///   variants (`forbid-permanent.json`) change one field with a small patch.
    /// - `explicit` (what `dump` writes) lists fully spelled-out policies instead.
    pub fn from_seed(seed: &Value, role_ids: &[String]) -> Result<Self, String> {
        let mut store = PolicyStore::default();
        if let Some(explicit) = seed.get("explicit").and_then(Value::as_array) {
            for entry in explicit {
                let policy = entry["policy"]
                    .as_object()
                    .ok_or("pim.policies.explicit[].policy must be an object")?
                    .clone();
                let role = entry["roleDefinitionId"]
                    .as_str()
                    .ok_or("pim.policies.explicit[].roleDefinitionId must be a string")?;
                let rules = entry["rules"]
                    .as_array()
                    .map(|r| r.iter().filter_map(|x| x.as_object().cloned()).collect())
                    .unwrap_or_default();
                store.insert(RolePolicy {
                    policy,
                    role_definition_id: role.to_owned(),
                    rules,
                });
            }
            return Ok(store);
        }
        let Some(template) = seed.get("ruleTemplate").and_then(Value::as_array) else {
            return Ok(store);
        };
        let prefix = seed["idPrefix"].as_str().unwrap_or("DirectoryRole_");
        for role in role_ids {
            let overrides = seed["ruleOverrides"]
                .as_object()
                .and_then(|o| o.iter().find(|(k, _)| k.eq_ignore_ascii_case(role)))
                .map(|(_, v)| v);
            let mut rules = Vec::new();
            for rule in template {
                let mut rule = rule.clone();
                let id = rule["id"]
                    .as_str()
                    .ok_or("pim.policies.ruleTemplate[].id must be a string")?
                    .to_owned();
                if let Some(patch) = overrides.and_then(|o| o.get(&id)) {
                    crate::seed::merge_patch(&mut rule, patch);
                }
                rules.push(
                    rule.as_object()
                        .cloned()
                        .ok_or("pim.policies.ruleTemplate[] must hold objects")?,
                );
            }
            let id = format!("{prefix}{}", derived_guid(role));
            let policy = json!({
                "id": id,
                "displayName": "DirectoryRole",
                "description": "DirectoryRole",
                "isOrganizationDefault": false,
                "scopeId": "/",
                "scopeType": "DirectoryRole",
                "lastModifiedDateTime": null,
                "lastModifiedBy": {"displayName": null, "id": null},
            });
            store.insert(RolePolicy {
                policy: policy.as_object().cloned().unwrap_or_default(),
                role_definition_id: role.clone(),
                rules,
            });
        }
        Ok(store)
    }

    fn insert(&mut self, policy: RolePolicy) {
        let key = policy.policy["id"]
            .as_str()
            .unwrap_or_default()
            .to_ascii_lowercase();
        self.policies.insert(key, policy);
    }

    pub fn get(&self, policy_id: &str) -> Option<&RolePolicy> {
        self.policies.get(&policy_id.to_ascii_lowercase())
    }

    pub fn get_mut(&mut self, policy_id: &str) -> Option<&mut RolePolicy> {
        self.policies.get_mut(&policy_id.to_ascii_lowercase())
    }

    pub fn for_role(&self, role_definition_id: &str) -> Option<&RolePolicy> {
        self.policies.values().find(|p| {
            p.role_definition_id
                .eq_ignore_ascii_case(role_definition_id)
        })
    }

    pub fn all(&self) -> impl Iterator<Item = &RolePolicy> {
        self.policies.values()
    }

    /// The admin-assignment expiration rule of a role's policy; a role without a policy (or
    /// without the rule) allows permanent assignments.
    pub fn admin_assignment_expiration(&self, role_definition_id: &str) -> ExpirationRule {
        let rule = self
            .for_role(role_definition_id)
            .and_then(|p| p.rule(ADMIN_ASSIGNMENT_EXPIRATION_RULE));
        ExpirationRule {
            is_expiration_required: rule
                .and_then(|r| r.get("isExpirationRequired"))
                .and_then(Value::as_bool)
                .unwrap_or(false),
            maximum_duration: rule
                .and_then(|r| r.get("maximumDuration"))
                .and_then(Value::as_str)
                .and_then(parse_iso_duration),
        }
    }

    /// What `dump` writes: every policy spelled out, loadable by `from_seed`.
    pub fn dump(&self) -> Value {
        let explicit: Vec<Value> = self
            .policies
            .values()
            .map(|p| {
                json!({
                    "roleDefinitionId": p.role_definition_id,
                    "policy": p.policy,
                    "rules": p.rules,
                })
            })
            .collect();
        json!({ "explicit": explicit })
    }
}

impl RolePolicy {
    pub fn id(&self) -> &str {
        self.policy["id"].as_str().unwrap_or_default()
    }

    pub fn rule(&self, rule_id: &str) -> Option<&Map<String, Value>> {
        self.rules.iter().find(|r| {
            r.get("id")
                .and_then(Value::as_str)
                .is_some_and(|id| id.eq_ignore_ascii_case(rule_id))
        })
    }

    pub fn rule_mut(&mut self, rule_id: &str) -> Option<&mut Map<String, Value>> {
        self.rules.iter_mut().find(|r| {
            r.get("id")
                .and_then(Value::as_str)
                .is_some_and(|id| id.eq_ignore_ascii_case(rule_id))
        })
    }

    /// The policy object, with `rules` inlined when `$expand`ed.
    pub fn to_json(&self, with_rules: bool) -> Map<String, Value> {
        let mut out = self.policy.clone();
        if with_rules {
            out.insert(
                "rules".into(),
                Value::Array(self.rules.iter().cloned().map(Value::Object).collect()),
            );
        }
        out
    }

    /// The policy assignment that binds this policy to its role. `scope_type` echoes the
    /// caller's spelling: Entra roles are addressed as `DirectoryRole` or, in older examples,
    /// `Directory`, and both name the same assignments.
    pub fn assignment_json(&self, scope_type: &str) -> Map<String, Value> {
        let value = json!({
            "id": format!("{}_{}", self.id(), self.role_definition_id),
            "policyId": self.id(),
            "scopeId": "/",
            "scopeType": scope_type,
            "roleDefinitionId": self.role_definition_id,
        });
        value.as_object().cloned().unwrap_or_default()
    }
}

/// A GUID-shaped id derived from a name, so generated ids survive restarts.
pub fn derived_guid(name: &str) -> String {
    let digest = Sha256::digest(name.to_ascii_lowercase().as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_random_bytes(bytes)
        .into_uuid()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    const GA: &str = "62e90394-69f5-4237-9190-012177145e10";
    const PRA: &str = "e8611ab8-c189-46e8-94e1-60213ab1f814";

    fn seed(required_for_ga: bool) -> Value {
        json!({
            "idPrefix": "DirectoryRole_t_",
            "ruleTemplate": [
                {"@odata.type": "#microsoft.graph.unifiedRoleManagementPolicyExpirationRule",
                 "id": "Expiration_Admin_Assignment", "isExpirationRequired": true, "maximumDuration": "P180D",
                 "target": {"caller": "Admin", "level": "Assignment", "operations": ["all"]}},
                {"@odata.type": "#microsoft.graph.unifiedRoleManagementPolicyEnablementRule",
                 "id": "Enablement_Admin_Assignment", "enabledRules": ["Justification"],
                 "target": {"caller": "Admin", "level": "Assignment", "operations": ["all"]}}
            ],
            "ruleOverrides": {
                GA: {"Expiration_Admin_Assignment": {"isExpirationRequired": required_for_ga}}
            }
        })
    }

    #[test]
    fn overrides_patch_one_role_and_leave_the_template_for_others() {
        let store = PolicyStore::from_seed(&seed(false), &[GA.into(), PRA.into()]).unwrap();
        let ga = store.admin_assignment_expiration(GA);
        assert!(!ga.is_expiration_required);
        assert_eq!(ga.maximum_duration, Some(Duration::days(180)));
        assert!(
            store
                .admin_assignment_expiration(PRA)
                .is_expiration_required
        );
        let ga_policy = store.for_role(GA).unwrap();
        assert_eq!(ga_policy.rules.len(), 2);
        assert_eq!(
            ga_policy.rule("enablement_admin_assignment").unwrap()["enabledRules"],
            json!(["Justification"])
        );
    }

    #[test]
    fn policy_ids_are_stable_and_distinct_per_role() {
        let a = PolicyStore::from_seed(&seed(false), &[GA.into(), PRA.into()]).unwrap();
        let b = PolicyStore::from_seed(&seed(true), &[GA.into(), PRA.into()]).unwrap();
        assert_eq!(a.for_role(GA).unwrap().id(), b.for_role(GA).unwrap().id());
        assert_ne!(a.for_role(GA).unwrap().id(), a.for_role(PRA).unwrap().id());
        assert!(a.for_role(GA).unwrap().id().starts_with("DirectoryRole_t_"));
        let assignment = a.for_role(GA).unwrap().assignment_json("DirectoryRole");
        assert_eq!(
            assignment["id"],
            json!(format!("{}_{GA}", a.for_role(GA).unwrap().id()))
        );
    }

    #[test]
    fn dump_round_trips_through_from_seed() {
        let a = PolicyStore::from_seed(&seed(true), &[GA.into()]).unwrap();
        let b = PolicyStore::from_seed(&a.dump(), &[]).unwrap();
        assert_eq!(
            b.admin_assignment_expiration(GA),
            a.admin_assignment_expiration(GA)
        );
        assert_eq!(b.for_role(GA).unwrap().id(), a.for_role(GA).unwrap().id());
    }

    #[test]
    fn roles_without_policy_allow_permanent_assignments() {
        let store = PolicyStore::default();
        assert!(!store.admin_assignment_expiration(GA).is_expiration_required);
    }
}
