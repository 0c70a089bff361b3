//! Members and managers of the unit: the adds and removes that take the tenant from one model
//! to another, touching only what the two models list, and the state reached when one of them
//! fails (so state always matches the tenant).
//!
//! Managers are role assignments with `directoryScopeId: /administrativeUnits/{id}`
//! (`POST /roleManagement/directory/roleAssignments`), which take the role *definition* id
//! ("Assign Microsoft Entra roles with administrative unit scope", PowerShell and Graph
//! sections). `scopedRoleMembers` would make the same assignment but wants the id of the
//! activated `directoryRole` object, which differs from the definition id in a real tenant
//! (facts file, "Administrative units").

use std::collections::BTreeSet;

use super::access::role_name;
use super::{ManagerModel, RestrictedUnitModel};
use crate::azure::administrative_units::AdministrativeUnits;
use crate::azure::http::CreateProbe;
use crate::azure::role_management::{
    is_assignment_exists, AssignmentKey, ListedAssignment, RoleManagement,
};
use crate::azure::{AzureClients, AzureError, Deadline};
use crate::framework::{AttributePath, Diagnostic, Diagnostics, Tf};

/// A manager as the tenant knows it: principal and role, compared case-insensitively.
#[derive(Debug, Clone)]
pub struct Manager {
    pub principal_id: String,
    pub role_definition_id: String,
}

impl Manager {
    pub fn of(m: &ManagerModel) -> Manager {
        Manager {
            principal_id: m.principal_id.as_deref().unwrap_or_default().to_owned(),
            role_definition_id: m
                .role_definition_id
                .as_deref()
                .unwrap_or_default()
                .to_owned(),
        }
    }

    pub fn from_listed(a: &ListedAssignment) -> Manager {
        Manager {
            principal_id: a.principal_id.clone(),
            role_definition_id: a.role_definition_id.clone(),
        }
    }

    pub fn is(&self, a: &ListedAssignment) -> bool {
        self.same(&Manager::from_listed(a))
    }

    fn same(&self, other: &Manager) -> bool {
        self.principal_id.eq_ignore_ascii_case(&other.principal_id)
            && self
                .role_definition_id
                .eq_ignore_ascii_case(&other.role_definition_id)
    }

    fn key(&self, scope: &str) -> AssignmentKey {
        AssignmentKey {
            principal_id: self.principal_id.clone(),
            role_definition_id: self.role_definition_id.clone(),
            directory_scope_id: scope.to_owned(),
        }
    }

    fn describe(&self) -> String {
        format!(
            "{} for {}",
            role_name(&self.role_definition_id),
            self.principal_id
        )
    }
}

/// A reconcile that stopped part-way: why, and the model the tenant now matches.
pub struct Incomplete {
    pub diagnostics: Diagnostics,
    pub reached: RestrictedUnitModel,
}

/// Takes the unit (`from.id`) from `from`'s members and managers to `to`'s: managers added,
/// members added, members removed, managers removed, each one request. Stops at the first
/// failure, with `reached` = `from` plus what was done.
pub async fn reconcile(
    clients: &AzureClients,
    from: &RestrictedUnitModel,
    to: &RestrictedUnitModel,
    deadline: &Deadline,
) -> Result<(), Incomplete> {
    let unit_id = from.id.as_deref().unwrap_or_default().to_owned();
    let scope = from.scope();
    let units = AdministrativeUnits::new(&clients.graph);
    let rm = RoleManagement::new(&clients.graph);
    let mut reached = from.clone();
    let (have_members, want_members) = (from.member_ids(), to.member_ids());
    let (have_managers, want_managers) = (from.manager_keys(), to.manager_keys());
    let lacks = |set: &BTreeSet<String>, id: &str| !set.iter().any(|m| m.eq_ignore_ascii_case(id));
    let lacks_manager = |list: &[Manager], m: &Manager| !list.iter().any(|x| x.same(m));

    for manager in want_managers
        .iter()
        .filter(|m| lacks_manager(&have_managers, m))
    {
        let key = manager.key(&scope);
        let direct_probe = rm.direct_probe(&key, *deadline);
        let probe: &CreateProbe<'_> = &|| direct_probe();
        let created = rm
            .while_principal_replicates(&key, deadline, || rm.create_direct(&key, probe, deadline))
            .await;
        match created {
            Ok(_) => {}
            Err(e) if is_assignment_exists(&e) => {}
            Err(e) => return Err(stop(reached, manager_error(e, manager, &scope, "assign"))),
        }
        push_manager(&mut reached, manager);
    }
    for member in want_members.iter().filter(|m| lacks(&have_members, m)) {
        if let Err(e) = units.add_member(&unit_id, member, deadline).await {
            return Err(stop(reached, member_error(e, member, "add")));
        }
        reached.members = Tf::Known(
            reached
                .member_ids()
                .into_iter()
                .chain([member.clone()])
                .collect(),
        );
    }
    for member in have_members.iter().filter(|m| lacks(&want_members, m)) {
        if let Err(e) = units.remove_member(&unit_id, member, deadline).await {
            return Err(stop(reached, member_error(e, member, "remove")));
        }
        let left = reached.member_ids().into_iter().filter(|m| m != member);
        reached.members = Tf::Known(left.collect());
    }
    for manager in have_managers
        .iter()
        .filter(|m| lacks_manager(&want_managers, m))
    {
        let key = manager.key(&scope);
        let removed = async {
            if let Some(found) = rm.direct_assignment(&key, *deadline).await? {
                rm.delete_direct(&found.id, deadline).await?;
            }
            Ok::<_, AzureError>(())
        };
        if let Err(e) = removed.await {
            return Err(stop(reached, manager_error(e, manager, &scope, "remove")));
        }
        if let Tf::Known(list) = &mut reached.managers {
            list.retain(|m| !Manager::of(m).same(manager));
        }
    }
    Ok(())
}

fn stop(reached: RestrictedUnitModel, d: Diagnostic) -> Incomplete {
    Incomplete {
        diagnostics: d.into(),
        reached,
    }
}

fn push_manager(model: &mut RestrictedUnitModel, m: &Manager) {
    let entry = ManagerModel {
        principal_id: Tf::Known(m.principal_id.clone()),
        role_definition_id: Tf::Known(m.role_definition_id.clone()),
    };
    match &mut model.managers {
        Tf::Known(list) => list.push(entry),
        other => *other = Tf::Known(vec![entry]),
    }
}

fn member_error(e: AzureError, member: &str, action: &str) -> Diagnostic {
    let hint = match e.status() {
        Some(404) => format!(
            " No directory object {member} exists (or it has not replicated yet): check the id."
        ),
        Some(403) => " Adding and removing members of a restricted management administrative \
             unit needs AdministrativeUnit.ReadWrite.All and the Privileged Role Administrator \
             (or Global Administrator) role at tenant scope."
            .to_owned(),
        Some(400) => " A restricted unit takes users, devices and security groups only \
             (no Microsoft 365, mail-enabled or distribution groups)."
            .to_owned(),
        _ => String::new(),
    };
    let mut d = Diagnostic::from(e);
    d.detail = format!("Could not {action} member {member}: {}{hint}", d.detail);
    d.at(AttributePath::root("members"))
}

fn manager_error(e: AzureError, m: &Manager, scope: &str, action: &str) -> Diagnostic {
    let hint = match e.status() {
        Some(400) => " Only some roles can be assigned at administrative-unit scope: \
             Authentication, Cloud Device, Groups, Helpdesk, License, Password, Printer, \
             Privileged Authentication, SharePoint, Teams, Teams Devices and User \
             Administrator, and custom roles with user, group or device permissions \
             (\"Assign Microsoft Entra roles with administrative unit scope\")."
            .to_owned(),
        Some(404) => format!(
            " Either principal {} or role {} does not exist (or has not replicated yet).",
            m.principal_id, m.role_definition_id
        ),
        Some(403) => " Assigning roles at a restricted unit's scope needs \
             RoleManagement.ReadWrite.Directory and the Privileged Role Administrator (or \
             Global Administrator) role at tenant scope."
            .to_owned(),
        _ => String::new(),
    };
    let mut d = Diagnostic::from(e);
    d.detail = format!(
        "Could not {action} {} at scope {scope}: {}{hint}",
        m.describe(),
        d.detail
    );
    d.at(AttributePath::root("managers"))
}
