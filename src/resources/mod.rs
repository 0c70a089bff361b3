//! Resources: one file (or folder) each, every one in the same order — type + schema
//! (descriptions are the docs), validate, plan, create, read, update, delete, import.
//! `shared` holds what all of them need the same way.

pub mod account;
pub mod action_group;
pub mod ca_exclusion;
pub mod entra_diagnostic_setting;
pub mod restricted_unit;
pub mod role_assignment;
pub(crate) mod shared;
pub mod signin_alert;

use std::sync::Arc;

use crate::azure::AzureClients;
use crate::framework::{typed, Resource};

/// Every resource the provider serves.
pub fn all() -> Vec<Arc<dyn Resource<AzureClients>>> {
    vec![
        typed(account::AccountResource),
        typed(action_group::ActionGroupResource),
        typed(ca_exclusion::CaExclusionResource),
        typed(entra_diagnostic_setting::EntraDiagnosticSettingResource),
        typed(role_assignment::RoleAssignmentResource),
        typed(restricted_unit::RestrictedUnitResource),
        typed(signin_alert::SigninAlertResource),
    ]
}
