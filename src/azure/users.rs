//! Users, deleted users and domains in Microsoft Graph: the typed calls behind
//! `breakglass_account`. Status codes and error bodies follow
//! `specs/msgraph/v1.0-breakglass-facts.md` §3 "Users", "Deleted items" and "Tenant".

use std::time::Duration;

use futures::{FutureExt, TryStreamExt};
use serde::Deserialize;
use serde_json::{json, Map, Value as Json};

use crate::azure::config::Secret;
use crate::azure::consistency::ConsistencyWait;
use crate::azure::error::AzureError;
use crate::azure::graph::GraphClient;
use crate::azure::retry::Deadline;

/// What the account resource reads. `/users` answers with a default subset only, which lacks
/// `accountEnabled`, `createdDateTime`, `onPremisesSyncEnabled` and `authorizationInfo`
/// (facts §2, `$select`).
const USER_SELECT: &str = "id,userPrincipalName,displayName,mailNickname,accountEnabled,\
usageLocation,createdDateTime,onPremisesSyncEnabled,authorizationInfo";

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
    /// `authorizationInfo` (`certificateUserIds`); `null` when not selected.
    #[serde(default)]
    pub authorization_info: Option<AuthorizationInfo>,
}

/// `authorizationInfo`: the values certificate-based authentication binds a certificate to.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthorizationInfo {
    #[serde(default, deserialize_with = "null_as_empty")]
    pub certificate_user_ids: Vec<String>,
}

fn null_as_empty<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    Ok(Option::<Vec<String>>::deserialize(d)?.unwrap_or_default())
}

impl User {
    /// `authorizationInfo.certificateUserIds` (empty when none, or not selected).
    pub fn certificate_user_ids(&self) -> &[String] {
        self.authorization_info
            .as_ref()
            .map(|a| a.certificate_user_ids.as_slice())
            .unwrap_or_default()
    }

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
    /// The whole new `authorizationInfo.certificateUserIds` (`[]` clears them). Sent in the
    /// same PATCH as the rest, so a refused value (a duplicate) writes nothing at all.
    pub certificate_user_ids: Option<Vec<String>>,
}

impl UserChanges {
    pub fn is_empty(&self) -> bool {
        self.user_principal_name.is_none()
            && self.display_name.is_none()
            && self.mail_nickname.is_none()
            && self.account_enabled.is_none()
            && self.usage_location.is_none()
            && self.password.is_none()
            && self.certificate_user_ids.is_none()
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
        if let Some(ids) = &self.certificate_user_ids {
            body.insert(
                "authorizationInfo".into(),
                json!({ "certificateUserIds": ids }),
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
            && self.certificate_user_ids.as_ref().is_none_or(|ids| {
                let (mut want, mut have) = (ids.clone(), user.certificate_user_ids().to_vec());
                want.sort();
                have.sort();
                want == have
            })
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

/// A certificate user id (`authorizationInfo.certificateUserIds` entry): `X509:<Mapping>…`
/// ("Mapping to the certificateUserIds attribute in Microsoft Entra ID": at most 10 per user,
/// each at most 1024 characters, unique in the tenant, prefix case-sensitive).
pub const MAX_CERTIFICATE_USER_IDS: usize = 10;
pub const MAX_CERTIFICATE_USER_ID_LENGTH: usize = 1024;

/// The documented `X509:<Mapping>` forms, checked before sending so a plan can say which value
/// is wrong: `<PN>`, `<RFC822>`, `<S>`, `<SKI>`, `<SHA1-PUKEY>`, `<I>…<S>…`, `<I>…<SR>…`.
pub fn is_well_formed_certificate_user_id(value: &str) -> bool {
    let Some(rest) = value.strip_prefix("X509:") else {
        return false;
    };
    if value.chars().count() > MAX_CERTIFICATE_USER_ID_LENGTH {
        return false;
    }
    let simple = ["<PN>", "<RFC822>", "<S>", "<SKI>", "<SHA1-PUKEY>"];
    if let Some(tail) = simple.iter().find_map(|tag| rest.strip_prefix(tag)) {
        return !tail.is_empty();
    }
    let Some(issuer_and) = rest.strip_prefix("<I>") else {
        return false;
    };
    ["<S>", "<SR>"].iter().any(|tag| {
        issuer_and
            .split_once(tag)
            .is_some_and(|(issuer, tail)| !issuer.is_empty() && !tail.is_empty())
    })
}

/// The kind of a registered authentication method, from its `@odata.type`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MethodKind {
    Password,
    /// A passkey (FIDO2 security key or passkey in an authenticator).
    Fido2 {
        /// `deviceBound` or `synced`.
        passkey_type: Option<String>,
        /// `attested` or `notAttested`.
        attestation_level: Option<String>,
        model: Option<String>,
    },
    MicrosoftAuthenticator,
    Phone,
    Email,
    SoftwareOath,
    TemporaryAccessPass,
    WindowsHelloForBusiness,
    PlatformCredential,
    External,
    QrCodePin,
    /// A type this client does not know yet, with its `@odata.type`.
    Other(String),
}

impl MethodKind {
    /// The short name used in plans and state (`password`, `fido2`, ...).
    pub fn name(&self) -> &str {
        match self {
            MethodKind::Password => "password",
            MethodKind::Fido2 { .. } => "fido2",
            MethodKind::MicrosoftAuthenticator => "microsoftAuthenticator",
            MethodKind::Phone => "phone",
            MethodKind::Email => "email",
            MethodKind::SoftwareOath => "softwareOath",
            MethodKind::TemporaryAccessPass => "temporaryAccessPass",
            MethodKind::WindowsHelloForBusiness => "windowsHelloForBusiness",
            MethodKind::PlatformCredential => "platformCredential",
            MethodKind::External => "external",
            MethodKind::QrCodePin => "qrCodePin",
            MethodKind::Other(t) => t,
        }
    }

    /// Phishing-resistant kinds: passkeys (FIDO2), Windows Hello for Business and platform
    /// credential for macOS ("Authentication methods in Microsoft Entra ID"; the
    /// Phishing-resistant MFA strength allows `fido2`, `windowsHelloForBusiness` and
    /// `x509CertificateMultiFactor`). Certificate-based authentication has no per-user method
    /// in Graph v1.0; see `Users::certificate_user_ids`.
    pub fn is_phishing_resistant(&self) -> bool {
        matches!(
            self,
            MethodKind::Fido2 { .. }
                | MethodKind::WindowsHelloForBusiness
                | MethodKind::PlatformCredential
        )
    }
}

/// A registered authentication method (`GET /users/{id}/authentication/methods`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthenticationMethod {
    pub id: String,
    pub kind: MethodKind,
    pub display_name: Option<String>,
    pub created_date_time: Option<String>,
}

impl AuthenticationMethod {
    fn from_json(v: &Json) -> Option<Self> {
        let text = |k: &str| v[k].as_str().map(str::to_owned);
        let odata_type = v["@odata.type"].as_str().unwrap_or_default();
        let kind = match odata_type.trim_start_matches("#microsoft.graph.") {
            "passwordAuthenticationMethod" => MethodKind::Password,
            "fido2AuthenticationMethod" => MethodKind::Fido2 {
                passkey_type: text("passkeyType"),
                attestation_level: text("attestationLevel"),
                model: text("model"),
            },
            "microsoftAuthenticatorAuthenticationMethod" => MethodKind::MicrosoftAuthenticator,
            "phoneAuthenticationMethod" => MethodKind::Phone,
            "emailAuthenticationMethod" => MethodKind::Email,
            "softwareOathAuthenticationMethod" => MethodKind::SoftwareOath,
            "temporaryAccessPassAuthenticationMethod" => MethodKind::TemporaryAccessPass,
            "windowsHelloForBusinessAuthenticationMethod" => MethodKind::WindowsHelloForBusiness,
            "platformCredentialAuthenticationMethod" => MethodKind::PlatformCredential,
            "externalAuthenticationMethod" => MethodKind::External,
            "qrCodePinAuthenticationMethod" => MethodKind::QrCodePin,
            _ => MethodKind::Other(odata_type.to_owned()),
        };
        Some(AuthenticationMethod {
            id: text("id")?,
            kind,
            display_name: text("displayName"),
            created_date_time: text("createdDateTime"),
        })
    }
}

/// A user's row in the registration details report.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RegistrationDetails {
    pub id: String,
    #[serde(default)]
    pub methods_registered: Vec<String>,
    #[serde(default)]
    pub is_admin: Option<bool>,
    #[serde(default)]
    pub is_mfa_registered: bool,
    #[serde(default)]
    pub is_mfa_capable: bool,
    #[serde(default)]
    pub is_passwordless_capable: bool,
    #[serde(default)]
    pub last_updated_date_time: Option<String>,
}

/// What an emergency-access review reads about a user, beyond `User`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserReview {
    pub id: String,
    pub user_principal_name: String,
    #[serde(default)]
    pub account_enabled: Option<bool>,
    #[serde(default)]
    pub on_premises_sync_enabled: Option<bool>,
    #[serde(default)]
    pub last_password_change_date_time: Option<String>,
    /// `signInActivity` (needs `AuditLog.Read.All` and Entra ID P1); `None` when the tenant
    /// does not expose it to the caller.
    #[serde(default)]
    pub last_sign_in_date_time: Option<String>,
    /// `authorizationInfo.certificateUserIds` when the review read them (see `review`).
    #[serde(skip)]
    pub certificate_user_ids: Option<Vec<String>>,
}

fn parse_review(user: &Json, path: &str) -> Result<UserReview, AzureError> {
    serde_json::from_value(user.clone()).map_err(|e| AzureError::InvalidResponse {
        service: crate::azure::Service::Graph,
        method: "GET".into(),
        url: path.to_owned(),
        reason: e.to_string(),
    })
}

fn sign_in_time(user: &Json) -> Option<String> {
    user["signInActivity"]["lastSignInDateTime"]
        .as_str()
        .map(str::to_owned)
}

fn certificate_ids(user: &Json) -> Vec<String> {
    user["authorizationInfo"]["certificateUserIds"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Json::as_str)
        .map(str::to_owned)
        .collect()
}

impl Users<'_> {
    /// The review facts of a user; `None` when the user does not exist. One read asks for
    /// everything, `signInActivity` and `authorizationInfo` included (both "returned only on
    /// `$select`", and selectable with the rest); where the caller may not read
    /// `signInActivity` (it needs `AuditLog.Read.All` and Entra ID P1) that read is refused
    /// whole, and the facts are read again in parts: the base properties, then the sign-in
    /// activity on its own (absent if refused too). `certificate_user_ids` is then left
    /// unread (`None`).
    pub async fn review(
        &self,
        id: &str,
        deadline: &Deadline,
    ) -> Result<Option<UserReview>, AzureError> {
        let base =
            "id,userPrincipalName,accountEnabled,onPremisesSyncEnabled,lastPasswordChangeDateTime";
        let whole = format!(
            "/users/{}?$select={base},signInActivity,authorizationInfo",
            path_segment(id)
        );
        match self.graph.get_optional(&whole, deadline).await {
            Ok(None) => return Ok(None),
            Ok(Some(user)) => {
                let mut review = parse_review(&user, &whole)?;
                review.last_sign_in_date_time = sign_in_time(&user);
                review.certificate_user_ids = Some(certificate_ids(&user));
                return Ok(Some(review));
            }
            Err(e) if matches!(e.status(), Some(400 | 403)) => {}
            Err(e) => return Err(e),
        }
        let path = format!("/users/{}?$select={base}", path_segment(id));
        let Some(user) = self.graph.get_optional(&path, deadline).await? else {
            return Ok(None);
        };
        let mut review = parse_review(&user, &path)?;
        let activity = format!("/users/{}?$select=id,signInActivity", path_segment(id));
        review.last_sign_in_date_time = match self.graph.get_optional(&activity, deadline).await {
            Ok(Some(u)) => sign_in_time(&u),
            _ => None,
        };
        Ok(Some(review))
    }

    /// The groups `id` is a direct member of (`GET /users/{id}/memberOf`, groups only).
    pub async fn group_ids(&self, id: &str, deadline: Deadline) -> Result<Vec<String>, AzureError> {
        let path = format!("/users/{}/memberOf", path_segment(id));
        Ok(self
            .graph
            .list_all(&path, deadline)
            .await?
            .iter()
            .filter(|o| o["@odata.type"].as_str() == Some("#microsoft.graph.group"))
            .filter_map(|o| o["id"].as_str().map(str::to_ascii_lowercase))
            .collect())
    }

    /// The user's `authorizationInfo.certificateUserIds`; `None` when the user is not visible.
    pub async fn certificate_user_ids(
        &self,
        id: &str,
        deadline: &Deadline,
    ) -> Result<Option<Vec<String>>, AzureError> {
        let path = format!("/users/{}?$select=id,authorizationInfo", path_segment(id));
        Ok(self
            .graph
            .get_optional(&path, deadline)
            .await?
            .map(|u| certificate_ids(&u)))
    }

    /// Replaces the user's certificate user ids (the array is replaced whole; `[]` clears).
    /// Graph refuses duplicates anywhere in the tenant (`is_certificate_user_id_conflict`) and
    /// needs Privileged Authentication Administrator for cloud-only users.
    pub async fn set_certificate_user_ids(
        &self,
        id: &str,
        values: &[String],
        deadline: &Deadline,
    ) -> Result<(), AzureError> {
        let path = format!("/users/{}", path_segment(id));
        self.graph
            .patch(
                &path,
                json!({"authorizationInfo": {"certificateUserIds": values}}),
                deadline,
            )
            .await
    }

    /// Ids of the users holding `value` among their certificate user ids (an advanced query:
    /// `$count=true` and `ConsistencyLevel: eventual`), e.g. to name the account a conflict is
    /// with.
    pub async fn holders_of_certificate_user_id(
        &self,
        value: &str,
        deadline: Deadline,
    ) -> Result<Vec<String>, AzureError> {
        let filter = format!(
            "authorizationInfo/certificateUserIds/any(x:x eq '{}')",
            value.replace('\'', "''")
        );
        let path = format!(
            "/users?$select=id&$count=true&$filter={}",
            form_urlencoded::byte_serialize(filter.as_bytes()).collect::<String>()
        );
        let found: Vec<Json> = self
            .graph
            .list_eventual(&path, deadline)
            .try_collect()
            .await?;
        Ok(found
            .iter()
            .filter_map(|u| u["id"].as_str().map(str::to_owned))
            .collect())
    }

    /// The user's `isManagementRestricted`: `true` when it is a member of a restricted
    /// management administrative unit (then only roles scoped to that unit can change it).
    /// `None` when the user is not visible.
    pub async fn is_management_restricted(
        &self,
        id: &str,
        deadline: &Deadline,
    ) -> Result<Option<bool>, AzureError> {
        let path = format!(
            "/users/{}?$select=id,isManagementRestricted",
            path_segment(id)
        );
        Ok(self
            .graph
            .get_optional(&path, deadline)
            .await?
            .map(|u| u["isManagementRestricted"].as_bool().unwrap_or(false)))
    }

    /// The user's registered authentication methods with their kinds; `None` when the user is
    /// not visible.
    pub async fn authentication_methods(
        &self,
        id: &str,
        deadline: Deadline,
    ) -> Result<Option<Vec<AuthenticationMethod>>, AzureError> {
        let path = format!("/users/{}/authentication/methods", path_segment(id));
        match self.graph.list_all(&path, deadline).await {
            Ok(items) => Ok(Some(
                items
                    .iter()
                    .filter_map(AuthenticationMethod::from_json)
                    .collect(),
            )),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The user's row in the authentication-methods registration report (needs
    /// `AuditLog.Read.All`); `None` when the report has no row for the user.
    pub async fn registration_details(
        &self,
        id: &str,
        deadline: &Deadline,
    ) -> Result<Option<RegistrationDetails>, AzureError> {
        let path = format!(
            "/reports/authenticationMethods/userRegistrationDetails/{}",
            path_segment(id)
        );
        match self.graph.get_optional(&path, deadline).await? {
            None => Ok(None),
            Some(body) => {
                serde_json::from_value(body)
                    .map(Some)
                    .map_err(|e| AzureError::InvalidResponse {
                        service: crate::azure::Service::Graph,
                        method: "GET".into(),
                        url: path,
                        reason: format!(
                            "the registration details are not in the expected shape ({e})"
                        ),
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

/// Another object already holds the UPN (`400` with an `ObjectConflict` detail). A conflict
/// detail that names another property (`certificateUserIds`) is not a UPN conflict.
pub fn is_upn_conflict(e: &AzureError) -> bool {
    e.api().is_some_and(|a| {
        a.details.iter().any(|d| {
            d.code == "ObjectConflict"
                && d.target
                    .as_deref()
                    .is_none_or(|t| t.eq_ignore_ascii_case("userPrincipalName"))
        }) || a
            .message
            .as_deref()
            .is_some_and(|m| m.contains("same value for property userPrincipalName"))
    })
}

/// A certificate user id is already held by another account in the tenant (or repeated in the
/// list): `400` with an `ObjectConflict` detail naming `certificateUserIds`, or the directory's
/// "same value for property certificateUserIds" message.
pub fn is_certificate_user_id_conflict(e: &AzureError) -> bool {
    e.status() == Some(400)
        && e.api().is_some_and(|a| {
            a.details.iter().any(|d| {
                d.code == "ObjectConflict"
                    && d.target
                        .as_deref()
                        .is_some_and(|t| t.eq_ignore_ascii_case("certificateUserIds"))
            }) || a
                .message
                .as_deref()
                .is_some_and(|m| m.contains("same value for property certificateUserIds"))
        })
}

/// The certificate user ids were refused as malformed (wrong form, more than 10, too long).
pub fn is_certificate_user_ids_invalid(e: &AzureError) -> bool {
    e.status() == Some(400)
        && !is_certificate_user_id_conflict(e)
        && e.api()
            .and_then(|a| a.message.as_deref())
            .is_some_and(|m| m.contains("certificateUserIds"))
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
            authorization_info: None,
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
