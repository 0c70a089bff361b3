//! Restricted management administrative units: who may still change their members.
//!
//! "Restricted management administrative units in Microsoft Entra ID" (learn.microsoft.com,
//! entra/identity/role-based-access-control/admin-units-restricted-management):
//! - for administrators not explicitly assigned at the unit's scope, modifying any Entra
//!   property of a member, deleting it and updating its password are blocked — tenant-scoped
//!   administrators (Global Administrator included) and Graph *application permissions* no
//!   longer apply ("Programmability");
//! - a role assigned at the scope of the restricted unit, or of another restricted unit the
//!   object is a member of, lets its holder act (within what the role allows); a role scoped to
//!   a regular unit does not;
//! - assigning licences and updating the usage location stay allowed (operations table).
//!
//! What an administrative-unit-scoped role allows ("Assign Microsoft Entra roles with
//! administrative unit scope", admin-units-assign-roles, and the administrative units FAQ):
//! scoped roles act on non-administrators only for password resets, authentication methods,
//! sensitive properties and deletion — "an administrative unit-scoped administrator can't reset
//! the password of a user who's assigned to a role with an organization-wide scope" — except
//! Privileged Authentication Administrator, whose scoped form covers the authentication methods
//! of "any user (admin or non-admin)". Hence, as the restricted-units page says, a Global
//! Administrator inside a restricted unit cannot have its password reset by anyone.
//!
//! Denials answer 403 `Authorization_RequestDenied` "Insufficient privileges to complete the
//! operation.", Graph's answer to a missing privilege (facts §2); the portal's wording ("This
//! user is a member of a restricted management administrative unit...") is not what Graph
//! sends in its error body as far as any document shows, so callers tell the case apart by the
//! user's `isManagementRestricted`.

use std::collections::BTreeSet;

use serde_json::{Map, Value};

use super::administrative_units::UnitsState;
use crate::error::GraphError;
use crate::state::Tenant;
use crate::token::Caller;

const USER_ADMINISTRATOR: &str = "fe930be7-5e62-47db-91af-98c3a49a38b1";
const HELPDESK_ADMINISTRATOR: &str = "729827e3-9c14-49f7-bb1b-9608f156bbb8";
const PASSWORD_ADMINISTRATOR: &str = "966707d0-3269-4727-9be2-8c3a10f19b9d";
const AUTHENTICATION_ADMINISTRATOR: &str = "c4e39bd9-1100-46d3-8c65-fb160da0071f";
pub(super) const PRIVILEGED_AUTHENTICATION_ADMINISTRATOR: &str =
    "7be44c8a-adaf-4e2a-84d6-ab2649e08a13";

/// User properties whose change is "sensitive" (user update: phones, other mails; plus
/// enabling, renaming) — the same list the privileged-user protection uses.
const SENSITIVE: [&str; 5] = [
    "accountEnabled",
    "userPrincipalName",
    "businessPhones",
    "mobilePhone",
    "otherMails",
];

/// Still allowed for everyone on a member of a restricted unit ("Assign licenses and update the
/// usage location of users in a restricted management administrative unit": allowed).
const ALWAYS_ALLOWED: [&str; 2] = ["usageLocation", "@odata.type"];

/// What a write does to a member, in the terms the documents grant roles by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Action {
    /// Ordinary properties (display name, job title, ...).
    Basic,
    /// `accountEnabled`, UPN, phones, other mails.
    Sensitive,
    Password,
    /// `authorizationInfo.certificateUserIds` (needs Privileged Authentication Administrator).
    CertificateUserIds,
    /// Authentication methods (deleting a passkey).
    Methods,
    Delete,
}

impl Action {
    /// Scoped roles that may perform the action at all.
    fn roles(self) -> &'static [&'static str] {
        match self {
            Action::Basic | Action::Sensitive | Action::Delete => &[USER_ADMINISTRATOR],
            Action::Password => &[
                USER_ADMINISTRATOR,
                HELPDESK_ADMINISTRATOR,
                PASSWORD_ADMINISTRATOR,
                AUTHENTICATION_ADMINISTRATOR,
                PRIVILEGED_AUTHENTICATION_ADMINISTRATOR,
            ],
            Action::CertificateUserIds => &[PRIVILEGED_AUTHENTICATION_ADMINISTRATOR],
            Action::Methods => &[
                AUTHENTICATION_ADMINISTRATOR,
                PRIVILEGED_AUTHENTICATION_ADMINISTRATOR,
            ],
        }
    }

    /// Whether `role`, held at a unit's scope, covers the action on a member that holds a
    /// tenant-wide directory role.
    fn allowed_on_admin(self, role: &str) -> bool {
        match self {
            Action::Basic => true,
            Action::CertificateUserIds | Action::Methods => {
                role.eq_ignore_ascii_case(PRIVILEGED_AUTHENTICATION_ADMINISTRATOR)
            }
            Action::Sensitive | Action::Password | Action::Delete => false,
        }
    }
}

fn actions_for_patch(patch: &Map<String, Value>) -> BTreeSet<Action> {
    patch
        .keys()
        .filter(|k| !ALWAYS_ALLOWED.contains(&k.as_str()))
        .map(|k| match k.as_str() {
            "passwordProfile" => Action::Password,
            "authorizationInfo" => Action::CertificateUserIds,
            k if SENSITIVE.contains(&k) => Action::Sensitive,
            _ => Action::Basic,
        })
        .collect()
}

/// Role definition ids the caller holds at the scope of `unit_id`: scoped-role memberships of
/// the unit (directly, or through a group the caller is a member of) and direct role
/// assignments whose `directoryScopeId` is `/administrativeUnits/{unit_id}`.
pub(super) fn roles_scoped_to(tenant: &Tenant, caller: &Caller, unit_id: &str) -> BTreeSet<String> {
    let directory = &tenant.directory;
    let in_group = |group_id: &str| {
        directory
            .group_members
            .get(&group_id.to_ascii_lowercase())
            .is_some_and(|m| m.iter().any(|x| x.eq_ignore_ascii_case(&caller.object_id)))
    };
    let mut roles: BTreeSet<String> = directory
        .units
        .scoped_roles_of_unit(unit_id)
        .iter()
        .filter(|m| {
            m["roleMemberInfo"]["id"]
                .as_str()
                .is_some_and(|p| p.eq_ignore_ascii_case(&caller.object_id) || in_group(p))
        })
        .filter_map(|m| m["roleId"].as_str())
        .map(str::to_ascii_lowercase)
        .collect();
    roles.extend(
        tenant
            .pim
            .directory_roles_at(
                &caller.object_id,
                &format!("/administrativeUnits/{unit_id}"),
            )
            .into_iter()
            .map(|r| r.to_ascii_lowercase()),
    );
    roles
}

/// Whether the caller may perform every one of `actions` on `user_id`. Users outside every
/// restricted unit are not this module's business (`Ok`).
fn check(
    tenant: &Tenant,
    caller: &Caller,
    user_id: &str,
    actions: &BTreeSet<Action>,
) -> Result<(), GraphError> {
    if actions.is_empty() {
        return Ok(());
    }
    let units: &UnitsState = &tenant.directory.units;
    let restricted = units.restricted_units_of(user_id);
    if restricted.is_empty() {
        return Ok(());
    }
    let held: BTreeSet<String> = restricted
        .iter()
        .flat_map(|unit| roles_scoped_to(tenant, caller, unit))
        .collect();
    let target_is_admin = !tenant.pim.directory_roles_at(user_id, "/").is_empty();
    let permitted = actions.iter().all(|action| {
        action.roles().iter().any(|role| {
            held.contains(&role.to_ascii_lowercase())
                && (!target_is_admin || action.allowed_on_admin(role))
        })
    });
    if permitted {
        Ok(())
    } else {
        Err(super::insufficient_privileges())
    }
}

/// `PATCH /users/{id}` on a member of a restricted unit.
pub(super) fn check_user_update(
    tenant: &Tenant,
    caller: &Caller,
    user_id: &str,
    patch: &Map<String, Value>,
) -> Result<(), GraphError> {
    check(tenant, caller, user_id, &actions_for_patch(patch))
}

/// `DELETE /users/{id}` on a member of a restricted unit.
pub(super) fn check_user_delete(
    tenant: &Tenant,
    caller: &Caller,
    user_id: &str,
) -> Result<(), GraphError> {
    check(tenant, caller, user_id, &BTreeSet::from([Action::Delete]))
}

/// Changing (deleting) an authentication method of a member of a restricted unit.
pub(super) fn check_method_change(
    tenant: &Tenant,
    caller: &Caller,
    user_id: &str,
) -> Result<(), GraphError> {
    check(tenant, caller, user_id, &BTreeSet::from([Action::Methods]))
}

/// Whether the caller holds Privileged Authentication Administrator scoped to a unit (regular
/// or restricted) the user is a member of: enough to write `certificateUserIds` there.
pub(super) fn holds_scoped_privileged_authentication_admin(
    tenant: &Tenant,
    caller: &Caller,
    user_id: &str,
) -> bool {
    let units = &tenant.directory.units;
    units
        .units
        .list_latest()
        .into_iter()
        .filter_map(|u| u["id"].as_str())
        .filter(|unit| {
            units
                .members
                .get(&unit.to_ascii_lowercase())
                .is_some_and(|m| m.iter().any(|x| x.eq_ignore_ascii_case(user_id)))
        })
        .any(|unit| {
            roles_scoped_to(tenant, caller, unit).contains(PRIVILEGED_AUTHENTICATION_ADMINISTRATOR)
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn patches_map_to_the_actions_roles_are_granted_for() {
        let patch = json!({"usageLocation": "NL"});
        assert!(actions_for_patch(patch.as_object().unwrap()).is_empty());
        let patch = json!({"displayName": "x", "passwordProfile": {}, "accountEnabled": false});
        let actions = actions_for_patch(patch.as_object().unwrap());
        assert_eq!(
            actions,
            BTreeSet::from([Action::Basic, Action::Sensitive, Action::Password])
        );
    }

    #[test]
    fn no_scoped_role_resets_an_administrators_password() {
        for role in Action::Password.roles() {
            assert!(!Action::Password.allowed_on_admin(role));
        }
        assert!(Action::Methods.allowed_on_admin(PRIVILEGED_AUTHENTICATION_ADMINISTRATOR));
        assert!(!Action::Methods.allowed_on_admin(AUTHENTICATION_ADMINISTRATOR));
    }
}
