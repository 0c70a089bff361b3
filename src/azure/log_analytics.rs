//! Log Analytics workspaces and their tables (`Microsoft.OperationalInsights/workspaces`,
//! api-version 2022-10-01): what a diagnostic setting exports to and what an alert rule queries.
//!
//! Azure Monitor creates Entra's tables (`SigninLogs`, `AADNonInteractiveUserSignInLogs`,
//! `AuditLogs`) when the first record arrives, not when export is configured, so "does the
//! workspace have the table yet" is a question the alert resource asks before creating a rule
//! (azurerm#28293, azure-docs#88175). Table names are case-sensitive, as in KQL.

use crate::azure::arm::{ArmClient, ResourceId};
use crate::azure::error::AzureError;
use crate::azure::retry::Deadline;

pub const API_VERSION: &str = "2022-10-01";
pub const NAMESPACE: &str = "Microsoft.OperationalInsights";
pub const RESOURCE_TYPE: &str = "workspaces";

/// A workspace resource id, validated (`/subscriptions/…/resourceGroups/…/providers/
/// Microsoft.OperationalInsights/workspaces/<name>`).
pub fn parse_workspace_id(id: &str) -> Result<ResourceId, String> {
    ResourceId::parse(id, NAMESPACE, RESOURCE_TYPE)
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workspace {
    pub id: String,
    pub name: String,
    pub location: String,
    /// The workspace (customer) id Log Analytics puts into every record's `TenantId`.
    pub customer_id: String,
}

#[derive(Clone, Copy)]
pub struct LogAnalytics<'a> {
    arm: &'a ArmClient,
}

impl<'a> LogAnalytics<'a> {
    pub fn new(arm: &'a ArmClient) -> Self {
        LogAnalytics { arm }
    }

    pub async fn workspace(
        &self,
        id: &ResourceId,
        deadline: &Deadline,
    ) -> Result<Option<Workspace>, AzureError> {
        Ok(self
            .arm
            .get_optional(&id.path(), API_VERSION, deadline)
            .await?
            .map(|v| Workspace {
                id: v["id"].as_str().unwrap_or_default().to_owned(),
                name: v["name"].as_str().unwrap_or_default().to_owned(),
                location: v["location"].as_str().unwrap_or_default().to_owned(),
                customer_id: v["properties"]["customerId"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            }))
    }

    /// The names of the workspace's tables.
    pub async fn tables(
        &self,
        workspace: &ResourceId,
        deadline: &Deadline,
    ) -> Result<Vec<String>, AzureError> {
        let items = self
            .arm
            .list_all(
                &format!("{}/tables", workspace.path()),
                API_VERSION,
                *deadline,
            )
            .await?;
        Ok(items
            .iter()
            .filter_map(|t| t["name"].as_str().map(str::to_owned))
            .collect())
    }

    /// Whether the workspace has `table` now (404 → false; a missing workspace is an error).
    pub async fn has_table(
        &self,
        workspace: &ResourceId,
        table: &str,
        deadline: &Deadline,
    ) -> Result<bool, AzureError> {
        let path = format!("{}/tables/{table}", workspace.path());
        match self.arm.get(&path, API_VERSION, deadline).await {
            Ok(_) => Ok(true),
            // A 404 means "no such table" only if the workspace itself is there.
            Err(e) if e.is_not_found() => match self.workspace(workspace, deadline).await? {
                Some(_) => Ok(false),
                None => Err(e),
            },
            Err(e) => Err(e),
        }
    }
}
