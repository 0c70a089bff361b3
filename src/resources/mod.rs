//! Resources: one file each, every file in the same order — type + schema (descriptions are the
//! docs), validate, plan, create, read, update, delete, import.

pub mod account;
pub mod ca_exclusion;
pub mod role_assignment;
mod shared;

use std::sync::Arc;

use crate::framework::Resource;

/// Every resource the provider serves.
pub fn all() -> Vec<Arc<dyn Resource>> {
    vec![
        Arc::new(account::AccountResource),
        Arc::new(ca_exclusion::CaExclusionResource),
        Arc::new(role_assignment::RoleAssignmentResource),
    ]
}
