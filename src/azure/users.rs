//! Users, deleted users and domains in Microsoft Graph: the typed calls behind
//! `breakglass_account`. Status codes and error bodies follow
//! `specs/msgraph/v1.0-breakglass-facts.md` §3 "Users", "Deleted items" and "Tenant".

use std::time::Duration;

use futures::FutureExt;
use serde::Deserialize;
use serde_json::{json, Map, Value as Json};

use crate::azure::config::Secret;
use crate::azure::consistency::ConsistencyWait;
use crate::azure::error::AzureError;
use crate::azure::graph::GraphClient;
use crate::azure::retry::Deadline;

/// What the account resource reads. `/users` answers with a default subset only, which lacks
/// `accountEnabled`, `createdDateTime` and `onPremisesSyncEnabled` (facts §2, `$select`).
const USER_SELECT: &str = "id,userPrincipalName,displayName,mailNickname,accountEnabled,\
usageLocation,createdDateTime,onPremisesSyncEnabled";

/// The longest a create probe waits for a possibly created user to replicate before it
/// concludes that the create did not happen.
const PROBE_PATIENCE: Duration = Duration::from_secs(10);

/// A user as the account resource sees it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct User {
    pub id: String,
    pub user_principal_name: String,
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub mail_nickname: Option<String>,
    #[serde(default)]
    pub account_enabled: Option<bool>,
    #[serde(default)]
    pub usage_location: Option<String>,
    #[serde(default)]
    pub created_date_time: Option<String>,
    #[serde(default)]
    pub on_premises_sync_enabled: Option<bool>,
}

impl User {
    /// Synced from on-premises Active Directory (Entra Connect / Cloud Sync).
    pub fn is_synced(&self) -> bool {
        self.on_premises_sync_enabled == Some(true)
    }
}

/// A domain of the tenant (`GET /domains/{name}`).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Domain {
    pub id: String,
    #[serde(default)]
    pub authentication_type: Option<String>,
    #[serde(default)]
    pub is_verified: bool,
    #[serde(default)]
    pub is_initial: bool,
}

impl Domain {
    /// Sign-ins for a federated domain are handed to an external identity provider, which is
    /// exactly the dependency an emergency-access account must not have.
    pub fn is_federated(&self) -> bool {
        self.authentication_type
            .as_deref()
            .is_some_and(|t| t.eq_ignore_ascii_case("Federated"))
    }
}

/// The body of `POST /users`.
pub struct NewUser<'a> {
    pub user_principal_name: &'a str,
    pub display_name: &'a str,
    pub mail_nickname: &'a str,
    pub account_enabled: bool,
    pub usage_location: Option<&'a str>,
    pub password: &'a Secret,
    pub force_password_change: bool,
}

impl NewUser<'_> {
    fn body(&self) -> Json {
        let mut body = json!({
            "accountEnabled": self.account_enabled,
            "displayName": self.display_name,
            "mailNickname": self.mail_nickname,
            "userPrincipalName": self.user_principal_name,
            "passwordProfile": {
                "password": self.password.expose(),
                "forceChangePasswordNextSignIn": self.force_password_change,
            },
        });
        if let Some(location) = self.usage_location {
            body["usageLocation"] = json!(location);
        }
        body
    }
}

/// The properties a `PATCH /users/{id}` changes; `None` leaves a property alone.
#[derive(Default)]
pub struct UserChanges {
    pub user_principal_name: Option<String>,
    pub display_name: Option<String>,
    pub mail_nickname: Option<String>,
    pub account_enabled: Option<bool>,
    /// `Some(None)` clears the usage location.
    pub usage_location: Option<Option<String>>,
    /// A new password and whether it must be changed at the next sign-in.
    pub password: Option<(Secret, bool)>,
}

impl UserChanges {
    pub fn is_empty(&self) -> bool {
        self.user_principal_name.is_none()
            && self.display_name.is_none()
            && self.mail_nickname.is_none()
            && self.account_enabled.is_none()
            && self.usage_location.is_none()
            && self.password.is_none()
    }

    fn body(&self) -> Json {
        let mut body = Map::new();
        if let Some(upn) = &self.user_principal_name {
            body.insert("userPrincipalName".into(), json!(upn));
        }
        if let Some(name) = &self.display_name {
            body.insert("displayName".into(), json!(name));
        }
        if let Some(nickname) = &self.mail_nickname {
            body.insert("mailNickname".into(), json!(nickname));
        }
        if let Some(enabled) = self.account_enabled {
            body.insert("accountEnabled".into(), json!(enabled));
        }
        if let Some(location) = &self.usage_location {
            body.insert("usageLocation".into(), json!(location));
        }
        if let Some((password, force_change)) = &self.password {
            body.insert(
                "passwordProfile".into(),
                json!({
                    "password": password.expose(),
                    "forceChangePasswordNextSignIn": force_change,
                }),
            );
        }
        Json::Object(body)
    }

    /// Whether `user` already shows every non-secret change (a replica that has caught up).
    pub fn visible_in(&self, user: &User) -> bool {
        let upn_ok = self
            .user_principal_name
            .as_ref()
            .is_none_or(|u| u.eq_ignore_ascii_case(&user.user_principal_name));
        upn_ok
            && self
                .display_name
                .as_ref()
                .is_none_or(|n| user.display_name.as_ref() == Some(n))
            && self
                .mail_nickname
                .as_ref()
                .is_none_or(|n| user.mail_nickname.as_ref() == Some(n))
            && self
                .account_enabled
                .is_none_or(|e| user.account_enabled == Some(e))
            && self
                .usage_location
                .as_ref()
                .is_none_or(|l| &user.usage_location == l)
    }
}

/// Typed user calls on a Graph client.
pub struct Users<'a> {
    graph: &'a GraphClient,
}

impl<'a> Users<'a> {
    pub fn new(graph: &'a GraphClient) -> Self {
        Users { graph }
    }

    /// A user by object id or by UPN (Graph matches UPNs case-insensitively); `None` when no
    /// such user is visible (gone, or not replicated yet).
    pub async fn get(&self, key: &str, deadline: &Deadline) -> Result<Option<User>, AzureError> {
        let path = format!("/users/{}?$select={USER_SELECT}", path_segment(key));
        match self.graph.get_optional(&path, deadline).await? {
            None => Ok(None),
            Some(body) => parse_user(body, &path).map(Some),
        }
    }

    /// Creates the user. Should the answer get lost (5xx, dropped connection), the client
    /// looks the UPN up before sending again, giving replication a moment, so a retried
    /// create cannot make a second user.
    pub async fn create(
        &self,
        user: &NewUser<'_>,
        deadline: &Deadline,
    ) -> Result<User, AzureError> {
        let upn = user.user_principal_name.to_owned();
        let graph = self.graph;
        let deadline_for_probe = *deadline;
        let probe = move || {
            let upn = upn.clone();
            async move {
                let deadline = deadline_for_probe;
                let patience = Deadline::after(deadline.remaining().min(PROBE_PATIENCE));
                let wait = ConsistencyWait::new(
                    format!("a possibly created user {upn} to replicate"),
                    patience,
                )
                .consecutive(1);
                let users = Users { graph };
                match wait
                    .until(|| users.get(&upn, &deadline), Option::is_some)
                    .await
                {
                    Ok(found) => Ok(found
                        .map(|u| json!({"id": u.id, "userPrincipalName": u.user_principal_name}))),
                    Err(AzureError::Deadline { .. }) => Ok(None),
                    Err(e) => Err(e),
                }
            }
            .boxed()
        };
        let created = self
            .graph
            .create("/users", user.body(), &probe, deadline)
            .await?;
        parse_user(created, "/users")
    }

    /// Reads the user until replicas agree it exists (or the deadline passes).
    pub async fn wait_readable(&self, id: &str, deadline: &Deadline) -> Result<User, AzureError> {
        self.wait_until(id, &format!("user {id} to be readable"), deadline, |_| true)
            .await
    }

    /// Reads the user until `holds` is true for it in consecutive reads. A user that stays
    /// missing ends in a deadline error.
    pub async fn wait_until(
        &self,
        id: &str,
        what: &str,
        deadline: &Deadline,
        holds: impl Fn(&User) -> bool,
    ) -> Result<User, AzureError> {
        let found = ConsistencyWait::new(what, *deadline)
            .until(
                || self.get(id, deadline),
                |u| u.as_ref().is_some_and(&holds),
            )
            .await?;
        found.ok_or_else(|| AzureError::InvalidResponse {
            service: crate::azure::Service::Graph,
            method: "GET".into(),
            url: format!("/users/{id}"),
            reason: "the user disappeared while waiting for it".into(),
        })
    }

    /// `PATCH /users/{id}` with exactly the changed properties.
    pub async fn update(
        &self,
        id: &str,
        changes: &UserChanges,
        deadline: &Deadline,
    ) -> Result<(), AzureError> {
        let path = format!("/users/{}", path_segment(id));
        self.graph.patch(&path, changes.body(), deadline).await
    }

    /// Soft delete: the user moves to deleted items, restorable for 30 days. `Ok(false)` when
    /// it was already gone.
    pub async fn delete(&self, id: &str, deadline: &Deadline) -> Result<bool, AzureError> {
        let path = format!("/users/{}", path_segment(id));
        self.graph.delete(&path, deadline).await
    }

    /// Whether a soft-deleted user is visible in deleted items.
    pub async fn deleted_item_exists(
        &self,
        id: &str,
        deadline: &Deadline,
    ) -> Result<bool, AzureError> {
        let path = format!("/directory/deletedItems/{}", path_segment(id));
        Ok(self.graph.get_optional(&path, deadline).await?.is_some())
    }

    /// Permanently deletes a soft-deleted user. A deletion only just made may not have reached
    /// deleted items on every replica, and a purge that lands on one that has not seen it would
    /// answer 404 and leave the user restorable; so first wait until deleted items shows it.
    /// `Ok(false)` when there was nothing to purge.
    pub async fn purge_deleted(
        &self,
        id: &str,
        just_deleted: bool,
        deadline: &Deadline,
    ) -> Result<bool, AzureError> {
        if just_deleted {
            ConsistencyWait::new(
                format!("deleted user {id} to appear in deleted items"),
                *deadline,
            )
            .consecutive(1)
            .until(|| self.deleted_item_exists(id, deadline), |found| *found)
            .await?;
        }
        let path = format!("/directory/deletedItems/{}", path_segment(id));
        self.graph.delete(&path, deadline).await
    }

    /// A domain of the tenant by name; `None` when the tenant has no such domain.
    pub async fn domain(
        &self,
        name: &str,
        deadline: &Deadline,
    ) -> Result<Option<Domain>, AzureError> {
        let path = format!("/domains/{}", path_segment(name));
        match self.graph.get_optional(&path, deadline).await? {
            None => Ok(None),
            Some(body) => {
                serde_json::from_value(body)
                    .map(Some)
                    .map_err(|e| AzureError::InvalidResponse {
                        service: crate::azure::Service::Graph,
                        method: "GET".into(),
                        url: path,
                        reason: format!("the domain is not in the expected shape ({e})"),
                    })
            }
        }
    }
}

fn parse_user(body: Json, path: &str) -> Result<User, AzureError> {
    serde_json::from_value(body).map_err(|e| AzureError::InvalidResponse {
        service: crate::azure::Service::Graph,
        method: "GET".into(),
        url: path.to_owned(),
        reason: format!("the user is not in the expected shape ({e})"),
    })
}

/// Percent-encodes one path segment. UPN aliases may hold `#`, `'`, `&` and friends, which
/// would otherwise end the path or start a query.
pub(crate) fn path_segment(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    for byte in raw.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'@' => {
                out.push(byte as char)
            }
            other => out.push_str(&format!("%{other:02X}")),
        }
    }
    out
}

// ---- what Graph's answers mean ------------------------------------------------------------

/// Another object already holds the UPN (`400` with an `ObjectConflict` detail).
pub fn is_upn_conflict(e: &AzureError) -> bool {
    e.api().is_some_and(|a| {
        a.details.iter().any(|d| d.code == "ObjectConflict")
            || a.message
                .as_deref()
                .is_some_and(|m| m.contains("same value for property userPrincipalName"))
    })
}

/// The UPN's domain is not a verified domain of the tenant.
pub fn is_invalid_upn_domain(e: &AzureError) -> bool {
    e.status() == Some(400)
        && e.api()
            .and_then(|a| a.message.as_deref())
            .is_some_and(|m| m.contains("domain portion of the userPrincipalName"))
}

/// The password was refused by the tenant's password policy.
pub fn is_password_policy_violation(e: &AzureError) -> bool {
    e.status() == Some(400)
        && e.api()
            .and_then(|a| a.message.as_deref())
            .is_some_and(|m| m.contains("password complexity"))
}

/// `403 Authorization_RequestDenied`: a missing permission, or the privileged-user protection.
pub fn is_request_denied(e: &AzureError) -> bool {
    e.status() == Some(403)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_segments_keep_upns_readable_and_escape_the_rest() {
        assert_eq!(
            path_segment("bg-1@contoso.onmicrosoft.com"),
            "bg-1@contoso.onmicrosoft.com"
        );
        assert_eq!(path_segment("o'neil#1@x.com"), "o%27neil%231@x.com");
        assert_eq!(path_segment("a b/c?d"), "a%20b%2Fc%3Fd");
    }

    #[test]
    fn patch_bodies_hold_only_the_changes() {
        let changes = UserChanges {
            display_name: Some("BG 2".into()),
            usage_location: Some(None),
            ..UserChanges::default()
        };
        assert_eq!(
            changes.body(),
            json!({"displayName": "BG 2", "usageLocation": null})
        );
        assert!(!changes.is_empty());
        assert!(UserChanges::default().is_empty());
    }

    #[test]
    fn a_replica_has_caught_up_when_every_change_shows() {
        let user = User {
            id: "1".into(),
            user_principal_name: "BG@contoso.com".into(),
            display_name: Some("BG 2".into()),
            mail_nickname: Some("bg".into()),
            account_enabled: Some(false),
            usage_location: None,
            created_date_time: None,
            on_premises_sync_enabled: None,
        };
        let mut changes = UserChanges {
            user_principal_name: Some("bg@contoso.com".into()),
            display_name: Some("BG 2".into()),
            account_enabled: Some(false),
            usage_location: Some(None),
            ..UserChanges::default()
        };
        assert!(changes.visible_in(&user));
        changes.display_name = Some("BG 3".into());
        assert!(!changes.visible_in(&user));
    }
}
