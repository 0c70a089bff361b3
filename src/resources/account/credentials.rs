//! The account's sign-in credentials beyond its password: `certificate_user_ids` (the values
//! certificate-based authentication binds a certificate to) and the computed
//! `authentication_methods` (what Graph lists as registered).
//!
//! "Mapping to the certificateUserIds attribute in Microsoft Entra ID": at most 10 values of at
//! most 1024 characters in the documented `X509:<Mapping>` forms, each unique in the tenant;
//! writing them for a cloud-only user needs at least Privileged Authentication Administrator.
//! Graph v1.0 has no per-user certificate method ("Microsoft Entra authentication methods API
//! overview"), so a certificate binding shows in `certificate_user_ids` only, never among the
//! methods.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::errors::api_diagnostic;
use super::AccountModel;
use crate::azure::users::{
    self, is_well_formed_certificate_user_id, Users, MAX_CERTIFICATE_USER_IDS,
};
use crate::azure::{AzureError, Deadline};
use crate::framework::validators::{cross_rule, each, size_between, string_rule};
use crate::framework::{
    Attribute, AttributePath, Diagnostic, Diagnostics, Failure, Tf, Type, Value,
};

/// One entry of `authentication_methods`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct MethodModel {
    #[serde(rename = "type")]
    kind: String,
    id: String,
    display_name: Option<String>,
    phishing_resistant: bool,
}

pub fn certificate_user_ids_attribute() -> Attribute {
    let summary = "Invalid certificate user ids";
    Attribute::optional_computed(
        "certificate_user_ids",
        Type::set(Type::String),
        "Values certificate-based authentication maps a certificate to this account by \
         (`authorizationInfo.certificateUserIds`), e.g. `X509:<PN>bg-01@contoso.com` or \
         `X509:<SKI>…`. Each value can be held by one account in the tenant only. Unset: not \
         managed, and the attribute shows what the tenant holds; `[]` removes them all. \
         Writing them needs the Privileged Authentication Administrator role.",
    )
    .use_state_for_unknown()
    .validate(size_between(0, MAX_CERTIFICATE_USER_IDS).summary(summary))
    .validate(each(
        string_rule(
            "one of the documented `X509:<Mapping>` forms, at most 1024 characters",
            summary,
            |value, shown| match is_well_formed_certificate_user_id(value) {
                true => Ok(()),
                false => Err(format!(
                    "is {shown}, not a certificate user id: use one of the documented forms \
                     (case-sensitive) X509:<PN>…, X509:<RFC822>…, X509:<S>…, X509:<SKI>…, \
                     X509:<SHA1-PUKEY>…, X509:<I>…<S>… or X509:<I>…<SR>…, at most 1024 \
                     characters"
                )),
            },
        )
        .summary(summary),
    ))
    .validate(cross_rule(
        "each value once (compared case-insensitively)",
        summary,
        |value, _| {
            let Value::Set(items) = value else {
                return Ok(());
            };
            let mut seen = BTreeSet::new();
            for item in items.iter().filter_map(Value::as_str) {
                if !seen.insert(item.to_lowercase()) {
                    return Err(format!(
                        "holds {item:?} twice (Microsoft Entra compares them ignoring case)"
                    ));
                }
            }
            Ok(())
        },
    ))
}

pub fn authentication_methods_attribute() -> Attribute {
    let method = Type::Object(
        [
            ("type", Type::String),
            ("id", Type::String),
            ("display_name", Type::String),
            ("phishing_resistant", Type::Bool),
        ]
        .into_iter()
        .map(|(k, t)| (k.to_owned(), t))
        .collect(),
    );
    Attribute::computed(
        "authentication_methods",
        Type::list(method),
        "The authentication methods Microsoft Graph lists as registered for the account \
         (`/users/{id}/authentication/methods`), sorted by type and id: `type` (`password`, \
         `fido2`, `microsoftAuthenticator`, `windowsHelloForBusiness`, …), `id`, \
         `display_name` and `phishing_resistant` (passkeys/FIDO2, Windows Hello for Business, \
         platform credential). A certificate mapping never appears here — Graph v1.0 has no \
         per-user certificate method; see `certificate_user_ids`. Null when the provider's \
         principal lacks `UserAuthenticationMethod.Read.All`.",
    )
    .use_state_for_unknown()
}

/// The registered methods; `Null` when the provider may not read them (a 403), so a missing
/// optional permission never breaks a refresh.
pub async fn registered_methods(
    users: &Users<'_>,
    id: &str,
    deadline: Deadline,
) -> Result<Tf<Vec<MethodModel>>, AzureError> {
    let found = match users.authentication_methods(id, deadline).await {
        Ok(found) => found,
        Err(e) if users::is_request_denied(&e) => {
            tracing::warn!(user = %id, "cannot read authentication methods (UserAuthenticationMethod.Read.All missing?): {e}");
            return Ok(Tf::Null);
        }
        Err(e) => return Err(e),
    };
    let mut methods: Vec<MethodModel> = found
        .unwrap_or_default()
        .into_iter()
        .map(|m| MethodModel {
            kind: m.kind.name().to_owned(),
            phishing_resistant: m.kind.is_phishing_resistant(),
            id: m.id,
            display_name: m.display_name,
        })
        .collect();
    methods.sort();
    Ok(Tf::Known(methods))
}

/// The certificate user ids to write on create, when there are any.
fn to_write(planned: &AccountModel) -> Option<Vec<String>> {
    let ids = planned.certificate_user_ids.get()?;
    (!ids.is_empty()).then(|| ids.iter().cloned().collect())
}

/// Before a create: an error on the attribute when another account already holds one of the
/// values, so nothing is written at all. (A value taken meanwhile, or held by a soft-deleted
/// user, is still refused by the write, and `complete_create` undoes the create.)
pub async fn refuse_taken(
    users: &Users<'_>,
    planned: &AccountModel,
    deadline: &Deadline,
) -> Result<(), Diagnostic> {
    let ids = to_write(planned).unwrap_or_default();
    match first_taken(users, &ids, "", deadline).await {
        Some((value, holders)) => Err(conflict(&value, &holders, None)),
        None => Ok(()),
    }
}

/// The first of `ids` some live account other than `own_id` holds, with its holders named
/// "upn (object id)". A lookup that fails counts as free: the write checks again.
async fn first_taken(
    users: &Users<'_>,
    ids: &[String],
    own_id: &str,
    deadline: &Deadline,
) -> Option<(String, String)> {
    for value in ids {
        let holders = users.holders_of_certificate_user_id(value, *deadline).await;
        let mut names = Vec::new();
        for holder in holders.unwrap_or_default() {
            if !holder.eq_ignore_ascii_case(own_id) {
                names.push(match users.get(&holder, deadline).await {
                    Ok(Some(u)) => format!("{} ({holder})", u.user_principal_name),
                    _ => holder,
                });
            }
        }
        if !names.is_empty() {
            return Some((value.clone(), names.join(", ")));
        }
    }
    None
}

/// After the user exists: its certificate user ids and its registered methods. A refused
/// write deletes and purges the user again (it never held anything), so a failed create leaves
/// nothing behind; only if that fails too does the user stay in state.
pub async fn complete_create(
    users: &Users<'_>,
    mut state: AccountModel,
    planned: &AccountModel,
    deadline: &Deadline,
) -> Result<AccountModel, Failure> {
    let id = state.id.as_deref().unwrap_or_default().to_owned();
    if let Some(ids) = to_write(planned) {
        if let Err(e) = users.set_certificate_user_ids(&id, &ids, deadline).await {
            let why = match write_error(users, &e, &ids, &id, deadline).await {
                Some(d) => d,
                None => api_diagnostic(e, "map certificates to", state.upn()),
            };
            let undone = match users.delete(&id, deadline).await {
                Ok(deleted) => users.purge_deleted(&id, deleted, deadline).await.map(drop),
                Err(e) => Err(e),
            };
            let Err(e) = undone else {
                return Err(Failure::new(why));
            };
            let kept = Diagnostic::error(
                "Account created without its certificate user ids",
                format!(
                    "User {id} was created, but its certificate user ids were refused and \
                     removing the user again failed: {e}. It is recorded in state."
                ),
            );
            return Err(Failure::new(Diagnostics(vec![why, kept])).with_model(&state));
        }
        state.certificate_user_ids = planned.certificate_user_ids.clone();
    }
    state.authentication_methods = registered_methods(users, &id, *deadline)
        .await
        .unwrap_or(Tf::Null);
    Ok(state)
}

/// A refused write of certificate user ids, as a diagnostic on the attribute; `None` when the
/// error is about something else.
pub async fn write_error(
    users: &Users<'_>,
    e: &AzureError,
    ids: &[String],
    own_id: &str,
    deadline: &Deadline,
) -> Option<Diagnostic> {
    let at = AttributePath::root("certificate_user_ids");
    if users::is_certificate_user_id_conflict(e) {
        let (value, holders) = first_taken(users, ids, own_id, deadline).await.unwrap_or((
            "One of the values".to_owned(),
            "another (perhaps soft-deleted) account".to_owned(),
        ));
        return Some(conflict(&value, &holders, Some(e)));
    }
    if users::is_certificate_user_ids_invalid(e) {
        let detail = format!("Microsoft Entra refused the certificate user ids: {e}");
        return Some(Diagnostic::error("Invalid certificate user ids", detail).at(at));
    }
    if users::is_request_denied(e) {
        let detail = format!(
            "Microsoft Entra refused to write the certificate user ids: {e}\n\nFor cloud-only \
             users this needs at least the Privileged Authentication Administrator role \
             (\"Mapping to the certificateUserIds attribute in Microsoft Entra ID\"). Assign it \
             to the provider's service principal (tenant-wide, or at the scope of an \
             administrative unit the account is in), then apply again."
        );
        let summary = "Privileged Authentication Administrator needed";
        return Some(Diagnostic::error(summary, detail).at(at));
    }
    None
}

fn conflict(value: &str, holders: &str, e: Option<&AzureError>) -> Diagnostic {
    let service = e
        .map(|e| format!(" The service said: {e}"))
        .unwrap_or_default();
    Diagnostic::error(
        "Certificate user id already in use",
        format!(
            "{value} is already a certificate user id of {holders}: Microsoft Entra allows each \
             value on one account of the tenant only (soft-deleted users keep theirs until \
             they are purged). Nothing was written.{service}"
        ),
    )
    .at(AttributePath::root("certificate_user_ids"))
}
