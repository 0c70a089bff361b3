//! How the assignment's failures read, and the plan-time checks against the tenant (the role
//! exists; its PIM settings allow a permanent assignment and say whether a ticket is needed).

use crate::azure::role_management::{
    is_assignment_exists, is_pim_unlicensed, is_policy_violation, AdminAssignmentRules,
    AssignmentKey, RoleManagement,
};
use crate::azure::{AzureClients, AzureError, Deadline};
use crate::framework::{AttributePath, Diagnostic, Diagnostics};

use super::{import_id, RoleAssignmentModel, TIMEOUTS, TYPE_NAME};

pub fn permanence_forbidden(
    key: &AssignmentKey,
    rules: Option<&AdminAssignmentRules>,
) -> Diagnostic {
    let maximum = rules
        .and_then(|r| r.maximum_duration.as_deref())
        .map(|m| format!(", maximum duration {m}"))
        .unwrap_or_default();
    Diagnostic::error(
        "The role's PIM settings forbid a permanent assignment",
        format!(
            "The Privileged Identity Management settings of role {role} require every active \
             assignment to expire (rule Expiration_Admin_Assignment: isExpirationRequired = \
             true{maximum}), so PIM refuses the permanent (noExpiration) assignment this \
             resource makes for principal {principal}. Nothing was written.\n\nEither allow \
             it: Microsoft Entra admin center → Privileged Identity Management → Microsoft \
             Entra roles → Settings → the role → Edit → Assignment → tick \"Allow permanent \
             active assignment\"; or set assignment_method = \"direct\", which creates a direct \
             role assignment that PIM role settings do not govern.",
            role = key.role_definition_id,
            principal = key.principal_id,
        ),
    )
    .at(AttributePath::root("role_definition_id"))
}

/// The tenant has no PIM: say so and name the alternative, never switch silently.
pub fn pim_unlicensed(e: &AzureError) -> Diagnostic {
    Diagnostic::error(
        "This tenant has no Privileged Identity Management",
        format!(
            "PIM needs a Microsoft Entra ID P2 or Microsoft Entra ID Governance licence, and \
             this tenant answered: {e}\n\nSet assignment_method = \"direct\" to make a \
             permanent direct role assignment instead (Graph records no justification or \
             ticket for it), or license the tenant for PIM."
        ),
    )
    .at(AttributePath::root("assignment_method"))
}

pub fn create_error(key: &AssignmentKey, e: AzureError) -> Diagnostic {
    if is_pim_unlicensed(&e) {
        return pim_unlicensed(&e);
    }
    if is_assignment_exists(&e) {
        Diagnostic::error(
            "The principal already holds this role",
            format!(
                "Microsoft Entra already has an active assignment of {what}, so it refused to \
                 create another ({e}).\n\nTo manage the existing assignment with Terraform, \
                 import it instead of creating it:\n  terraform import {TYPE_NAME}.<name> \
                 {id}\n(or an `import` block with id = \"{id}\"), and set assignment_method to \
                 match how it was made.",
                what = key.describe(),
                id = import_id(key),
            ),
        )
    } else if is_policy_violation(&e) {
        let mut d = permanence_forbidden(key, None);
        d.detail.push_str(&format!("\n\nPIM answered: {e}"));
        d
    } else if e.is_not_found() {
        Diagnostic::error(
            "Principal not found",
            format!(
                "Microsoft Entra kept answering that principal {} does not exist while \
                 assigning {} ({e}). A principal created moments ago can take a minute or two \
                 to replicate; if it exists, apply again. Otherwise check principal_id: it must \
                 be the object id of a user, role-assignable group or service principal.",
                key.principal_id,
                key.describe()
            ),
        )
        .at(AttributePath::root("principal_id"))
    } else {
        let mut d = Diagnostic::from(e);
        d.summary = format!("Could not assign {}", key.describe());
        d
    }
}

/// The plan-time checks: the role exists, and for PIM its settings allow what we will ask.
/// A check that cannot run becomes a warning; the apply will report the real answer.
pub async fn check_tenant_at_plan(
    clients: &AzureClients,
    planned: &RoleAssignmentModel,
    writes_pim: bool,
    diagnostics: &mut Diagnostics,
) {
    let (Some(role), Some(_)) = (
        planned.role_definition_id.get(),
        planned.assignment_method.get(),
    ) else {
        return;
    };
    let deadline = Deadline::after(TIMEOUTS.read);
    let rm = RoleManagement::new(&clients.cached.graph);
    let key = AssignmentKey {
        principal_id: planned
            .principal_id
            .as_deref()
            .unwrap_or("(known after apply)")
            .to_owned(),
        role_definition_id: role.clone(),
        directory_scope_id: planned
            .directory_scope_id
            .as_deref()
            .unwrap_or("/")
            .to_owned(),
    };
    let could_not_check = |e: AzureError| {
        Diagnostic::warning(
            "Could not check the role before applying",
            format!(
                "Reading the PIM settings or definition of role {role} failed, so the plan \
                 cannot tell whether the assignment will be accepted: {e}"
            ),
        )
        .at(AttributePath::root("role_definition_id"))
    };
    let rules = if writes_pim {
        match rm.admin_assignment_rules(role, deadline).await {
            Ok(rules) => rules,
            Err(e) if is_pim_unlicensed(&e) => return diagnostics.push(pim_unlicensed(&e)),
            Err(e) => return diagnostics.push(could_not_check(e)),
        }
    } else {
        None
    };
    if let Some(rules) = &rules {
        if rules.expiration_required {
            diagnostics.push(permanence_forbidden(&key, Some(rules)));
        }
        let ticketing = rules.enabled_rules.iter().any(|r| r == "Ticketing");
        if ticketing && planned.ticket_number.is_null() {
            diagnostics.push(
                Diagnostic::error(
                    "The role's PIM settings require a ticket",
                    format!(
                        "The PIM settings of role {role} require ticket information on active \
                         assignments (rule Enablement_Admin_Assignment includes Ticketing). Set \
                         ticket_number (and ticket_system), or use assignment_method = \"direct\"."
                    ),
                )
                .at(AttributePath::root("ticket_number")),
            );
        }
        return;
    }
    // No PIM policy for the role (or a direct assignment): make sure the role exists, since an
    // unknown role id would otherwise look like a principal that has not replicated yet.
    match rm.role_definition_exists(role, &deadline).await {
        Ok(true) => {}
        Ok(false) => diagnostics.push(
            Diagnostic::error(
                "No such directory role",
                format!(
                    "Microsoft Entra has no role definition with id {role}. Use the id of a \
                     built-in role (Global Administrator is \
                     62e90394-69f5-4237-9190-012177145e10) or of a custom role in this tenant."
                ),
            )
            .at(AttributePath::root("role_definition_id")),
        ),
        Err(e) => diagnostics.push(could_not_check(e)),
    }
}
