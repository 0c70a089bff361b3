//! Who may still change a member of a restricted management administrative unit, and the
//! diagnostic that says which role at which scope a refused write was missing. Used by the
//! unit (its docs and defaults) and by `breakglass_account`, whose writes are the ones refused.
//!
//! The rules, from "Restricted management administrative units in Microsoft Entra ID" and
//! "Assign Microsoft Entra roles with administrative unit scope" (learn.microsoft.com):
//! - inside a restricted unit, tenant-scoped roles (Global Administrator included) and Graph
//!   application permissions no longer let anyone modify a member, reset its password or delete
//!   it; a role assigned at the scope of that unit (or of another restricted unit the member is
//!   in) does, within what the role allows;
//! - roles scoped to a unit act on *administrators* (users holding a tenant-wide role) only
//!   for ordinary properties; password resets, sensitive properties and deletion are for
//!   non-administrators only, except that Privileged Authentication Administrator covers the
//!   authentication methods of "any user (admin or non-admin)";
//! - hence "a Global Administrator in a restricted management administrative unit can't have
//!   their password reset by any other administrator in the system": it has to be taken out of
//!   the unit first.
//! - `certificateUserIds` of a cloud-only user need at least Privileged Authentication
//!   Administrator ("Mapping to the certificateUserIds attribute in Microsoft Entra ID").

use crate::azure::administrative_units::{AdministrativeUnit, AdministrativeUnits};
use crate::azure::role_management::{RoleManagement, GLOBAL_ADMINISTRATOR};
use crate::azure::users::Users;
use crate::azure::{AzureClients, AzureError, Deadline};
use crate::framework::{AttributePath, Diagnostic};

pub const USER_ADMINISTRATOR: &str = "fe930be7-5e62-47db-91af-98c3a49a38b1";
pub const HELPDESK_ADMINISTRATOR: &str = "729827e3-9c14-49f7-bb1b-9608f156bbb8";
pub const PASSWORD_ADMINISTRATOR: &str = "966707d0-3269-4727-9be2-8c3a10f19b9d";
pub const AUTHENTICATION_ADMINISTRATOR: &str = "c4e39bd9-1100-46d3-8c65-fb160da0071f";
pub const PRIVILEGED_AUTHENTICATION_ADMINISTRATOR: &str = "7be44c8a-adaf-4e2a-84d6-ab2649e08a13";
pub const PRIVILEGED_ROLE_ADMINISTRATOR: &str = "e8611ab8-c189-46e8-94e1-60213ab1f814";

/// Display names of the built-in roles the messages name.
pub fn role_name(id: &str) -> &str {
    let known = [
        (USER_ADMINISTRATOR, "User Administrator"),
        (HELPDESK_ADMINISTRATOR, "Helpdesk Administrator"),
        (PASSWORD_ADMINISTRATOR, "Password Administrator"),
        (AUTHENTICATION_ADMINISTRATOR, "Authentication Administrator"),
        (
            PRIVILEGED_AUTHENTICATION_ADMINISTRATOR,
            "Privileged Authentication Administrator",
        ),
        (
            PRIVILEGED_ROLE_ADMINISTRATOR,
            "Privileged Role Administrator",
        ),
        (GLOBAL_ADMINISTRATOR, "Global Administrator"),
    ];
    known
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(id))
        .map(|(_, name)| *name)
        .unwrap_or(id)
}

/// What a write to a user needs, in the terms the documents grant roles by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// Display name, mail nickname and other ordinary properties.
    Properties,
    /// Sign-in state or user principal name.
    Sensitive,
    Password,
    CertificateUserIds,
    Delete,
}

impl Need {
    fn what(self) -> &'static str {
        match self {
            Need::Properties => "change its properties",
            Need::Sensitive => "change its sign-in state or name",
            Need::Password => "reset its password",
            Need::CertificateUserIds => "write its certificate_user_ids",
            Need::Delete => "delete it",
        }
    }

    /// Roles that do it when assigned at a unit's scope.
    fn roles(self) -> &'static [&'static str] {
        match self {
            Need::Properties | Need::Sensitive | Need::Delete => &[USER_ADMINISTRATOR],
            Need::Password => &[
                PRIVILEGED_AUTHENTICATION_ADMINISTRATOR,
                USER_ADMINISTRATOR,
                HELPDESK_ADMINISTRATOR,
                PASSWORD_ADMINISTRATOR,
                AUTHENTICATION_ADMINISTRATOR,
            ],
            Need::CertificateUserIds => &[PRIVILEGED_AUTHENTICATION_ADMINISTRATOR],
        }
    }

    /// Whether a unit-scoped role can do it to a user holding a tenant-wide role.
    fn possible_on_administrators(self) -> bool {
        matches!(self, Need::Properties | Need::CertificateUserIds)
    }
}

/// Why Graph refused (403) a write to `user_id` when the user is in a restricted unit: which
/// role at which scope the identity Terraform runs as is missing, or — when no unit-scoped role
/// can do it — the documented way out. `None` when the user is in no restricted unit (or that
/// cannot be read), so the caller's own explanation applies.
pub async fn restricted_denial(
    clients: &AzureClients,
    user_id: &str,
    upn: &str,
    needs: &[Need],
    e: &AzureError,
    deadline: &Deadline,
) -> Option<Diagnostic> {
    if e.status() != Some(403) || needs.is_empty() {
        return None;
    }
    let users = Users::new(&clients.graph);
    let restricted = users.is_management_restricted(user_id, deadline).await;
    if !matches!(restricted, Ok(Some(true))) {
        return None;
    }
    let units = AdministrativeUnits::new(&clients.graph)
        .restricted_units_of_user(user_id, *deadline)
        .await
        .unwrap_or_default();
    let tenant_roles: Vec<String> = RoleManagement::new(&clients.graph)
        .assignments_of(user_id, *deadline)
        .await
        .map(|found| {
            found
                .into_iter()
                .filter(|a| a.directory_scope_id == "/")
                .map(|a| role_name(&a.role_definition_id).to_owned())
                .collect()
        })
        .unwrap_or_default();
    Some(explain(upn, &units, &tenant_roles, needs, e))
}

fn explain(
    upn: &str,
    units: &[AdministrativeUnit],
    tenant_roles: &[String],
    needs: &[Need],
    e: &AzureError,
) -> Diagnostic {
    let scopes: Vec<String> = units
        .iter()
        .map(|u| format!("/administrativeUnits/{}", u.id))
        .collect();
    let unit_names = match units {
        [] => "a restricted management administrative unit".to_owned(),
        _ => units
            .iter()
            .map(|u| {
                let name = u.display_name.as_deref().unwrap_or("(unnamed)");
                format!("{name:?} (/administrativeUnits/{})", u.id)
            })
            .collect::<Vec<_>>()
            .join(", "),
    };
    let scope = match scopes.as_slice() {
        [] => "the unit's scope (/administrativeUnits/<unit id>)".to_owned(),
        [one] => one.clone(),
        many => format!("one of {}", many.join(", ")),
    };
    let mut lines = vec![format!(
        "Microsoft Entra refused the change to {upn}: {e}\n\n{upn} is a member of the \
         restricted management administrative unit {unit_names}. Inside such a unit, \
         tenant-wide roles (Global Administrator included) and Microsoft Graph application \
         permissions no longer let anyone change the account; only a role assigned at the \
         unit's scope does (\"Restricted management administrative units in Microsoft Entra \
         ID\")."
    )];
    let administrator = !tenant_roles.is_empty();
    let mut impossible = false;
    for need in needs {
        if administrator && !need.possible_on_administrators() {
            impossible = true;
            lines.push(format!(
                "To {}: no role can do this. {upn} holds {} at tenant scope, and no role \
                 that can be assigned at administrative-unit scope may do that to an \
                 administrator (\"Assign Microsoft Entra roles with administrative unit \
                 scope\").",
                need.what(),
                tenant_roles.join(", ")
            ));
        } else {
            let roles = match need.roles() {
                [one] => role_name(one).to_owned(),
                [init @ .., last] => {
                    let init: Vec<&str> = init.iter().map(|r| role_name(r)).collect();
                    format!("one of {} or {}", init.join(", "), role_name(last))
                }
                [] => String::new(),
            };
            lines.push(format!(
                "To {}: the identity Terraform runs as needs {} at scope {scope}. Name it \
                 in `managers` of the breakglass_restricted_unit (the default role, \
                 Privileged Authentication Administrator, covers password resets of \
                 non-administrators and certificate_user_ids of everyone), apply, then \
                 apply this change again.",
                need.what(),
                roles
            ));
        }
    }
    if impossible {
        lines.push(format!(
            "The documented way out (same page, \"Limitations\"): take {upn} out of the unit \
             first. Remove its object id from `members` of the breakglass_restricted_unit and \
             apply (the provider needs Privileged Role Administrator or Global Administrator \
             at tenant scope for that), apply this change, then put the id back into \
             `members` and apply again. The account is unprotected in between."
        ));
    }
    let mut d = Diagnostic::error(
        "Blocked by a restricted management administrative unit",
        lines.join("\n\n"),
    );
    if needs == [Need::CertificateUserIds] {
        d = d.at(AttributePath::root("certificate_user_ids"));
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::azure::error::{ApiError, Service};

    fn forbidden() -> AzureError {
        AzureError::Api(Box::new(ApiError {
            service: Service::Graph,
            method: "PATCH".into(),
            url: "/users/1".into(),
            status: 403,
            code: Some("Authorization_RequestDenied".into()),
            message: Some("Insufficient privileges to complete the operation.".into()),
            details: Vec::new(),
            request_id: None,
            client_request_id: None,
            retry_after: None,
        }))
    }

    fn unit() -> AdministrativeUnit {
        AdministrativeUnit {
            id: "u-1".into(),
            display_name: Some("Emergency access".into()),
            description: None,
            is_member_management_restricted: true,
            visibility: None,
            membership_type: None,
        }
    }

    #[test]
    fn an_administrators_password_has_no_scoped_role_and_the_way_out_is_named() {
        let d = explain(
            "bg@contoso.com",
            &[unit()],
            &["Global Administrator".into()],
            &[Need::Password],
            &forbidden(),
        );
        assert!(d.detail.contains("no role can do this"), "{}", d.detail);
        assert!(d
            .detail
            .contains("holds Global Administrator at tenant scope"));
        assert!(d.detail.contains("take bg@contoso.com out of the unit"));
        assert!(!d.detail.contains("runs as needs"), "{}", d.detail);
    }

    #[test]
    fn a_non_administrator_names_the_missing_role_and_scope() {
        let d = explain(
            "ops@contoso.com",
            &[unit()],
            &[],
            &[Need::Password],
            &forbidden(),
        );
        assert!(d
            .detail
            .contains("needs one of Privileged Authentication Administrator, User Administrator,"));
        assert!(d.detail.contains("at scope /administrativeUnits/u-1"));
        assert!(!d.detail.contains("way out"));
        let certs = explain(
            "bg@contoso.com",
            &[unit()],
            &["Global Administrator".into()],
            &[Need::CertificateUserIds],
            &forbidden(),
        );
        assert!(certs.detail.contains(
            "needs Privileged Authentication Administrator at scope /administrativeUnits/u-1"
        ));
        assert_eq!(
            certs.path,
            Some(AttributePath::root("certificate_user_ids"))
        );
    }
}
