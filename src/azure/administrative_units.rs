//! Administrative units in Microsoft Graph v1.0: the typed calls behind a restricted management
//! administrative unit for emergency accounts — create/read/update/delete a unit, add, list and
//! remove members (`$ref`), add, list and remove scoped role members, and which units a user is
//! in. Status codes, error bodies and limits follow `specs/msgraph/v1.0-breakglass-facts.md`
//! §3 "Administrative units" and "Restricted management administrative units".
//!
//! Facts a caller must know (all cited in the facts file):
//! - `isMemberManagementRestricted` is fixed at creation; a change means a new unit.
//! - A tenant has at most 100 restricted units.
//! - Inside a restricted unit, tenant-scoped roles and Graph application permissions no longer
//!   let anyone change a member; only a role assigned at the unit's scope does, and no such
//!   role resets the password of a member that holds a tenant-wide directory role (a Global
//!   Administrator break-glass account, for one).
//! - Adding or removing members needs Privileged Role Administrator (or Global Administrator)
//!   at tenant scope as well as `AdministrativeUnit.ReadWrite.All`.

use std::collections::BTreeSet;
use std::time::Duration;

use futures::FutureExt;
use serde::Deserialize;
use serde_json::{json, Map, Value as Json};

use crate::azure::consistency::ConsistencyWait;
use crate::azure::error::{AzureError, Service};
use crate::azure::graph::GraphClient;
use crate::azure::retry::Deadline;
use crate::azure::users::path_segment;

const UNITS: &str = "/directory/administrativeUnits";
const UNIT_SELECT: &str =
    "id,displayName,description,isMemberManagementRestricted,visibility,membershipType";

/// How long a create probe waits for a possibly created object to replicate.
const PROBE_PATIENCE: Duration = Duration::from_secs(10);

/// "A maximum of 100 restricted management administrative units in a tenant."
pub const RESTRICTED_UNIT_LIMIT: usize = 100;

/// An administrative unit as Graph returns it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AdministrativeUnit {
    pub id: String,
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    /// `true` for a restricted management administrative unit; `null` reads as `false`.
    #[serde(default, deserialize_with = "null_as_false")]
    pub is_member_management_restricted: bool,
    #[serde(default)]
    pub visibility: Option<String>,
    #[serde(default)]
    pub membership_type: Option<String>,
}

fn null_as_false<'de, D: serde::Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    Ok(Option::<bool>::deserialize(d)?.unwrap_or(false))
}

/// The body of `POST /directory/administrativeUnits`.
pub struct NewUnit<'a> {
    pub display_name: &'a str,
    pub description: Option<&'a str>,
    /// `isMemberManagementRestricted`: cannot be changed afterwards.
    pub restricted: bool,
}

impl NewUnit<'_> {
    fn body(&self) -> Json {
        let mut body = json!({
            "displayName": self.display_name,
            "isMemberManagementRestricted": self.restricted,
        });
        if let Some(description) = self.description {
            body["description"] = json!(description);
        }
        body
    }
}

/// What `PATCH /directory/administrativeUnits/{id}` changes; `None` leaves a property alone.
/// The restriction is deliberately absent: it cannot be changed.
#[derive(Debug, Default, Clone)]
pub struct UnitChanges {
    pub display_name: Option<String>,
    /// `Some(None)` clears the description.
    pub description: Option<Option<String>>,
}

impl UnitChanges {
    pub fn is_empty(&self) -> bool {
        self.display_name.is_none() && self.description.is_none()
    }

    fn body(&self) -> Json {
        let mut body = Map::new();
        if let Some(name) = &self.display_name {
            body.insert("displayName".into(), json!(name));
        }
        if let Some(description) = &self.description {
            body.insert("description".into(), json!(description));
        }
        Json::Object(body)
    }
}

/// What kind of directory object a member is (`@odata.type`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemberKind {
    User,
    Group,
    Device,
    Other(String),
}

impl MemberKind {
    fn from_odata_type(t: Option<&str>) -> Self {
        match t.map(|t| t.trim_start_matches('#')) {
            Some("microsoft.graph.user") => MemberKind::User,
            Some("microsoft.graph.group") => MemberKind::Group,
            Some("microsoft.graph.device") => MemberKind::Device,
            Some(other) => MemberKind::Other(other.to_owned()),
            None => MemberKind::Other(String::new()),
        }
    }
}

/// A member of a unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitMember {
    pub id: String,
    pub kind: MemberKind,
    pub display_name: Option<String>,
}

/// A role assigned at a unit's scope (`scopedRoleMembership`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScopedRoleMember {
    pub id: String,
    pub administrative_unit_id: String,
    pub role_id: String,
    pub principal_id: String,
    pub principal_display_name: Option<String>,
}

impl ScopedRoleMember {
    fn from_json(v: &Json) -> Option<Self> {
        let text = |v: &Json| v.as_str().map(str::to_owned);
        Some(ScopedRoleMember {
            id: text(&v["id"])?,
            administrative_unit_id: text(&v["administrativeUnitId"]).unwrap_or_default(),
            role_id: text(&v["roleId"])?,
            principal_id: text(&v["roleMemberInfo"]["id"])?,
            principal_display_name: text(&v["roleMemberInfo"]["displayName"]),
        })
    }

    pub fn is(&self, role_id: &str, principal_id: &str) -> bool {
        self.role_id.eq_ignore_ascii_case(role_id)
            && self.principal_id.eq_ignore_ascii_case(principal_id)
    }
}

/// Whether adding a member changed anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberAdded {
    Added,
    /// The object was a member already (Graph's duplicate-reference answer).
    AlreadyMember,
}

/// Typed administrative-unit calls on a Graph client.
pub struct AdministrativeUnits<'a> {
    graph: &'a GraphClient,
}

impl<'a> AdministrativeUnits<'a> {
    pub fn new(graph: &'a GraphClient) -> Self {
        AdministrativeUnits { graph }
    }

    fn unit_path(id: &str) -> String {
        format!("{UNITS}/{}", path_segment(id))
    }

    /// A unit by id; `None` when it is gone (or not replicated yet).
    pub async fn get(
        &self,
        id: &str,
        deadline: &Deadline,
    ) -> Result<Option<AdministrativeUnit>, AzureError> {
        let path = format!("{}?$select={UNIT_SELECT}", Self::unit_path(id));
        match self.graph.get_optional(&path, deadline).await? {
            None => Ok(None),
            Some(body) => parse(body, &path).map(Some),
        }
    }

    /// Units whose display name equals `name` (Graph compares case-insensitively). Display
    /// names are not unique.
    pub async fn find_by_display_name(
        &self,
        name: &str,
        deadline: Deadline,
    ) -> Result<Vec<AdministrativeUnit>, AzureError> {
        let filter = form_urlencoded::byte_serialize(
            format!("displayName eq '{}'", name.replace('\'', "''")).as_bytes(),
        )
        .collect::<String>();
        let path = format!("{UNITS}?$filter={filter}&$select={UNIT_SELECT}");
        self.graph
            .list_all(&path, deadline)
            .await?
            .into_iter()
            .map(|u| parse(u, &path))
            .collect()
    }

    /// Creates the unit. Should the answer get lost, the client looks for a unit of that name
    /// that did not exist before the POST (names are not unique, so one that did is never
    /// mistaken for ours) before sending again, so a retried create cannot make a second unit.
    pub async fn create(
        &self,
        unit: &NewUnit<'_>,
        deadline: &Deadline,
    ) -> Result<AdministrativeUnit, AzureError> {
        let name = unit.display_name.to_owned();
        let before: BTreeSet<String> = self
            .find_by_display_name(&name, *deadline)
            .await?
            .into_iter()
            .map(|u| u.id.to_ascii_lowercase())
            .collect();
        let restricted = unit.restricted;
        let graph = self.graph;
        let deadline_for_probe = *deadline;
        let probe = move || {
            let name = name.clone();
            let before = before.clone();
            async move {
                let deadline = deadline_for_probe;
                let patience = Deadline::after(deadline.remaining().min(PROBE_PATIENCE));
                let units = AdministrativeUnits { graph };
                let wait = ConsistencyWait::new(
                    format!("a possibly created administrative unit {name} to replicate"),
                    patience,
                )
                .consecutive(1);
                let found = wait
                    .until(
                        || async {
                            Ok(units
                                .find_by_display_name(&name, deadline)
                                .await?
                                .into_iter()
                                .find(|u| {
                                    !before.contains(&u.id.to_ascii_lowercase())
                                        && u.is_member_management_restricted == restricted
                                }))
                        },
                        Option::is_some,
                    )
                    .await;
                match found {
                    Ok(Some(u)) => Ok(Some(json!({
                        "id": u.id,
                        "displayName": u.display_name,
                        "description": u.description,
                        "isMemberManagementRestricted": u.is_member_management_restricted,
                    }))),
                    Ok(None) | Err(AzureError::Deadline { .. }) => Ok(None),
                    Err(e) => Err(e),
                }
            }
            .boxed()
        };
        let created = self
            .graph
            .create(UNITS, unit.body(), &probe, deadline)
            .await?;
        parse(created, UNITS)
    }

    /// `PATCH` with exactly the changed properties.
    pub async fn update(
        &self,
        id: &str,
        changes: &UnitChanges,
        deadline: &Deadline,
    ) -> Result<(), AzureError> {
        self.graph
            .patch(&Self::unit_path(id), changes.body(), deadline)
            .await
    }

    /// Deletes the unit (its members stay). `Ok(false)` when it was already gone.
    pub async fn delete(&self, id: &str, deadline: &Deadline) -> Result<bool, AzureError> {
        self.graph.delete(&Self::unit_path(id), deadline).await
    }

    /// Adds a user, group or device by object id. A member that is already there is reported,
    /// not an error, which also makes a re-sent add harmless.
    pub async fn add_member(
        &self,
        unit_id: &str,
        object_id: &str,
        deadline: &Deadline,
    ) -> Result<MemberAdded, AzureError> {
        let path = format!("{}/members/$ref", Self::unit_path(unit_id));
        // The reference names the object on the service the client talks to: the Graph root
        // of the configured cloud (or the emulator).
        let reference = format!(
            "{}/directoryObjects/{}",
            self.graph.service().base_url.trim_end_matches('/'),
            path_segment(object_id)
        );
        match self
            .graph
            .post_idempotent(&path, json!({"@odata.id": reference}), deadline)
            .await
        {
            Ok(_) => Ok(MemberAdded::Added),
            Err(e) if is_already_member(&e) => Ok(MemberAdded::AlreadyMember),
            Err(e) => Err(e),
        }
    }

    /// Removes a member. `Ok(false)` when it was not a member (or the unit is gone).
    pub async fn remove_member(
        &self,
        unit_id: &str,
        object_id: &str,
        deadline: &Deadline,
    ) -> Result<bool, AzureError> {
        let path = format!(
            "{}/members/{}/$ref",
            Self::unit_path(unit_id),
            path_segment(object_id)
        );
        self.graph.delete(&path, deadline).await
    }

    /// The members with their kinds; `None` when the unit does not exist.
    pub async fn members(
        &self,
        unit_id: &str,
        deadline: Deadline,
    ) -> Result<Option<Vec<UnitMember>>, AzureError> {
        let path = format!("{}/members", Self::unit_path(unit_id));
        match self.graph.list_all(&path, deadline).await {
            Ok(items) => Ok(Some(
                items
                    .iter()
                    .filter_map(|m| {
                        Some(UnitMember {
                            id: m["id"].as_str()?.to_owned(),
                            kind: MemberKind::from_odata_type(m["@odata.type"].as_str()),
                            display_name: m["displayName"].as_str().map(str::to_owned),
                        })
                    })
                    .collect(),
            )),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Member object ids through `members/$ref`, the lightest read. Entries may come as URL
    /// strings (the vendored description) or as `{"@odata.id": url}` objects (what Graph's
    /// documentation shows, with a root URL it calls not correct); the id is read from the
    /// URL's `directoryObjects/{id}` part either way. `None` when the unit does not exist.
    pub async fn member_ids(
        &self,
        unit_id: &str,
        deadline: Deadline,
    ) -> Result<Option<Vec<String>>, AzureError> {
        let path = format!("{}/members/$ref", Self::unit_path(unit_id));
        match self.graph.list_all(&path, deadline).await {
            Ok(items) => Ok(Some(
                items
                    .iter()
                    .filter_map(|item| {
                        let url = item.as_str().or_else(|| item["@odata.id"].as_str())?;
                        id_from_reference(url)
                    })
                    .collect(),
            )),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Assigns `role_id` to `principal_id` at the unit's scope. Graph documents `roleId` as the
    /// id of the activated directory role object; the emulator takes the role definition
    /// (template) id, and `POST /roleManagement/directory/roleAssignments` with
    /// `directoryScopeId: /administrativeUnits/{id}` is the template-id way on both. A retried
    /// add first looks for the membership, so it cannot be made twice.
    pub async fn add_scoped_role_member(
        &self,
        unit_id: &str,
        role_id: &str,
        principal_id: &str,
        deadline: &Deadline,
    ) -> Result<ScopedRoleMember, AzureError> {
        let path = format!("{}/scopedRoleMembers", Self::unit_path(unit_id));
        let graph = self.graph;
        let (unit, role, principal) = (
            unit_id.to_owned(),
            role_id.to_owned(),
            principal_id.to_owned(),
        );
        let deadline_for_probe = *deadline;
        let probe = move || {
            let (unit, role, principal) = (unit.clone(), role.clone(), principal.clone());
            async move {
                let deadline = deadline_for_probe;
                let units = AdministrativeUnits { graph };
                let wait = ConsistencyWait::new(
                    "a possibly created scoped role member to replicate",
                    Deadline::after(deadline.remaining().min(PROBE_PATIENCE)),
                )
                .consecutive(1);
                let found = wait
                    .until(
                        || async {
                            Ok(units
                                .scoped_role_members(&unit, deadline)
                                .await?
                                .unwrap_or_default()
                                .into_iter()
                                .find(|m| m.is(&role, &principal)))
                        },
                        Option::is_some,
                    )
                    .await;
                match found {
                    Ok(Some(m)) => Ok(Some(json!({
                        "id": m.id,
                        "administrativeUnitId": m.administrative_unit_id,
                        "roleId": m.role_id,
                        "roleMemberInfo": {"id": m.principal_id, "displayName": m.principal_display_name},
                    }))),
                    Ok(None) | Err(AzureError::Deadline { .. }) => Ok(None),
                    Err(e) => Err(e),
                }
            }
            .boxed()
        };
        let body = json!({"roleId": role_id, "roleMemberInfo": {"id": principal_id}});
        let created = self.graph.create(&path, body, &probe, deadline).await?;
        ScopedRoleMember::from_json(&created).ok_or_else(|| AzureError::InvalidResponse {
            service: Service::Graph,
            method: "POST".into(),
            url: path,
            reason: "the scoped role member is not in the expected shape".into(),
        })
    }

    /// The roles assigned at the unit's scope; `None` when the unit does not exist.
    pub async fn scoped_role_members(
        &self,
        unit_id: &str,
        deadline: Deadline,
    ) -> Result<Option<Vec<ScopedRoleMember>>, AzureError> {
        let path = format!("{}/scopedRoleMembers", Self::unit_path(unit_id));
        match self.graph.list_all(&path, deadline).await {
            Ok(items) => Ok(Some(
                items
                    .iter()
                    .filter_map(ScopedRoleMember::from_json)
                    .collect(),
            )),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Removes a scoped role member by its membership id. `Ok(false)` when it was gone.
    pub async fn remove_scoped_role_member(
        &self,
        unit_id: &str,
        membership_id: &str,
        deadline: &Deadline,
    ) -> Result<bool, AzureError> {
        let path = format!(
            "{}/scopedRoleMembers/{}",
            Self::unit_path(unit_id),
            path_segment(membership_id)
        );
        self.graph.delete(&path, deadline).await
    }

    /// The administrative units `user_id` is a direct member of (`GET /users/{id}/memberOf`,
    /// keeping the units); `None` when the user does not exist.
    pub async fn units_of_user(
        &self,
        user_id: &str,
        deadline: Deadline,
    ) -> Result<Option<Vec<AdministrativeUnit>>, AzureError> {
        let path = format!("/users/{}/memberOf", path_segment(user_id));
        match self.graph.list_all(&path, deadline).await {
            Ok(items) => items
                .into_iter()
                .filter(|o| {
                    o["@odata.type"].as_str().map(|t| t.trim_start_matches('#'))
                        == Some("microsoft.graph.administrativeUnit")
                })
                .map(|o| parse(o, &path))
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The restricted management administrative units `user_id` is in: the units whose scoped
    /// roles decide who may still change the user.
    pub async fn restricted_units_of_user(
        &self,
        user_id: &str,
        deadline: Deadline,
    ) -> Result<Vec<AdministrativeUnit>, AzureError> {
        Ok(self
            .units_of_user(user_id, deadline)
            .await?
            .unwrap_or_default()
            .into_iter()
            .filter(|u| u.is_member_management_restricted)
            .collect())
    }
}

fn parse(body: Json, path: &str) -> Result<AdministrativeUnit, AzureError> {
    serde_json::from_value(body).map_err(|e| AzureError::InvalidResponse {
        service: Service::Graph,
        method: "GET".into(),
        url: path.to_owned(),
        reason: format!("the administrative unit is not in the expected shape ({e})"),
    })
}

/// The object id in a `$ref` URL: the segment after `directoryObjects` (Graph appends a type
/// segment such as `Microsoft.DirectoryServices.User`), else the last segment.
fn id_from_reference(url: &str) -> Option<String> {
    let path = url.split(['?', '#']).next()?.trim_end_matches('/');
    let segments: Vec<&str> = path.split('/').collect();
    let after = segments
        .iter()
        .position(|s| s.eq_ignore_ascii_case("directoryObjects"))
        .and_then(|i| segments.get(i + 1));
    after
        .or(segments.last())
        .filter(|s| !s.is_empty())
        .map(|s| (*s).to_owned())
}

// ---- what Graph's answers mean ------------------------------------------------------------

fn message_contains(e: &AzureError, needle: &str) -> bool {
    e.api()
        .and_then(|a| a.message.as_deref())
        .is_some_and(|m| m.contains(needle))
}

/// A 403 on a write to a user that is a member of a restricted management administrative unit:
/// the caller holds no suitable role at the unit's scope (tenant-wide roles and application
/// permissions no longer count). Graph's error body is its generic "Insufficient privileges"
/// answer, so the caller passes what it knows about the target — its `isManagementRestricted`
/// (`Users::is_management_restricted`) or the units from `restricted_units_of_user`.
pub fn is_restricted_unit_denied(e: &AzureError, target_is_restricted: bool) -> bool {
    target_is_restricted && e.status() == Some(403)
}

/// A restricted unit could not be created because the tenant has the maximum (100). The limit
/// is documented; the service's text is not, so this matches the directory's quota code and
/// the emulator's wording.
pub fn is_unit_limit(e: &AzureError) -> bool {
    e.status() == Some(400)
        && (e.code() == Some("Directory_QuotaExceeded")
            || message_contains(e, "restricted management administrative units"))
}

/// An attempt to change `isMemberManagementRestricted` after creation.
pub fn is_restriction_change_refused(e: &AzureError) -> bool {
    e.status() == Some(400) && message_contains(e, "isMemberManagementRestricted")
}

/// The object is a member already (Graph's duplicate-reference answer).
pub fn is_already_member(e: &AzureError) -> bool {
    e.status() == Some(400) && message_contains(e, "added object references already exist")
}

/// The role cannot be assigned at administrative-unit scope (Global Administrator, Privileged
/// Role Administrator, and every role not on the documented list).
pub fn is_role_not_scopable(e: &AzureError) -> bool {
    e.status() == Some(400) && message_contains(e, "administrative unit scope")
}

/// The same role is already assigned to the principal at the unit's scope.
pub fn is_scoped_role_conflict(e: &AzureError) -> bool {
    e.status() == Some(400) && message_contains(e, "conflicting object")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_urls_name_their_object() {
        assert_eq!(
            id_from_reference("https://graph.microsoft.com/v1.0/directoryObjects/abc"),
            Some("abc".into())
        );
        assert_eq!(
            id_from_reference(
                "https://graph.microsoft.com/v2/t/directoryObjects/abc/Microsoft.DirectoryServices.User"
            ),
            Some("abc".into())
        );
        assert_eq!(
            id_from_reference("https://x/v1.0/users/u1"),
            Some("u1".into())
        );
    }

    #[test]
    fn unit_patches_hold_only_the_changes() {
        let changes = UnitChanges {
            description: Some(None),
            ..UnitChanges::default()
        };
        assert_eq!(changes.body(), json!({"description": null}));
        assert!(UnitChanges::default().is_empty());
        assert_eq!(
            NewUnit {
                display_name: "BG",
                description: None,
                restricted: true
            }
            .body(),
            json!({"displayName": "BG", "isMemberManagementRestricted": true})
        );
    }

    #[test]
    fn a_null_restriction_reads_as_unrestricted() {
        let unit: AdministrativeUnit = serde_json::from_value(
            json!({"id": "1", "displayName": "x", "isMemberManagementRestricted": null}),
        )
        .unwrap();
        assert!(!unit.is_member_management_restricted);
    }
}
